/* SPDX-License-Identifier: Apache-2.0 */
/* What tools/bench measures inside a benchmarked process: when each handshake started and ended
 * (for the shim, "ended" includes the hand-off), and the clocks and CPU times at the last hand-off
 * and at exit, so the driver can take the data phase alone. Used by libbenchprobe.so (preloaded
 * into the stand-in apps) and linked into the bench helpers (ktls-pair, ossl-bulk).
 *
 * At exit one line goes to $BENCH_PROBE_OUT (appended with one write):
 *   probe pid=P conns=N hs_ns=D1,D2,... hs_cpu_ns=C1,C2,... handoff_mono=T handoff_real=T
 *         last_read_mono=T exit_mono=T exit_real=T cpu_handoff=U:S cpu_exit=U:S
 * times in ns: each handshake's wall time and the CPU time of its thread during it (no waiting for
 * the peer in that one), CLOCK_MONOTONIC and CLOCK_REALTIME, getrusage user:system.
 * last_read_mono is the last read that returned data (0: none): the end of a transfer as the
 * receiver saw it, before the close_notify exchange (which Nagle's algorithm and delayed ACKs can
 * stretch by 40 ms in programs without TCP_NODELAY, like the stand-in apps).
 * With BENCH_PROBE_MARK=1 each hand-off also makes one access("/.ktlsshim-bench-handoff") call,
 * a marker in strace logs; under callgrind each hand-off dumps the counters. Either way the part
 * after the last hand-off is the data phase, and a part between two hand-offs is one whole
 * connection (close, accept or connect, handshake, hand-off) without the process start-up. */
#ifndef BENCH_PROBE_H
#define BENCH_PROBE_H

void probe_hs_begin(void);
void probe_hs_end(void);
void probe_report(void);
/* Call after each read that returned data. */
void probe_data_read(void);

#endif
