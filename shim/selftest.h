/* SPDX-License-Identifier: Apache-2.0 */
/* Does this kernel's kTLS do (TLS version, cipher, direction) right? A known-answer test against
 * Mbed TLS in user space on a throw-away loopback pair, with fixed test keys: records the kernel
 * seals must be exactly what Mbed TLS seals (and open in user space), and records Mbed TLS seals
 * must open through the kernel. Run once per process per combination and cached; see
 * docs/design.md ("Kernel self-test"). */
#ifndef KTLSSHIM_SELFTEST_H
#define KTLSSHIM_SELFTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "keys.h"
#include "ktls.h"

enum selftest_verdict {
	SELFTEST_PASSED = 0,  /* the kernel's records match Mbed TLS's */
	SELFTEST_WRONG,	      /* the kernel sealed or opened a record wrong: never trust it */
	SELFTEST_REFUSED,     /* the kernel does not take this combination (EINVAL, EOPNOTSUPP) */
	SELFTEST_UNAVAILABLE, /* could not run now (no socket, no loopback, timeout): not cached */
};

/* The verdict for one combination (version TLS_1_2 or TLS_1_3). The first call runs the test for
 * both directions of (version, cipher) on one loopback pair; definitive verdicts are cached for
 * the life of the process (a forked child inherits them: same kernel), UNAVAILABLE never is.
 * Thread- and fork-safe: atomics only, no lock; racing first calls each run the test, and a WRONG
 * verdict always wins over PASSED. errno is preserved. */
enum selftest_verdict selftest_check(uint16_t version, enum kcipher c, enum dir d);

/* For the hand-off: NULL when the kernel may have this direction (or KTLS_SHIM_SELFTEST=0), else why
 * not ("kernel self-test
 * failed", logged once per process per combination; "kernel refused TLS_TX"/"..._RX"; "kernel
 * self-test could not run"). */
const char *selftest_refusal(uint16_t version, enum kcipher c, enum dir d);

/* TLS 1.3 RX of cipher c may get TLS_RX_EXPECT_NO_PAD: in this process the self-test ran (with
 * KTLS_SHIM_RX_NO_PAD=1) and, with the option set, the kernel gave a padded record and the one after
 * it back exactly. Without that proof (KTLS_SHIM_SELFTEST=0 included): false. */
bool selftest_no_pad_ok(enum kcipher c);

/* "passed", "failed", "refused", "not run". */
const char *selftest_verdict_str(enum selftest_verdict v);

#endif
