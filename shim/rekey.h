/* SPDX-License-Identifier: Apache-2.0 */
/* TLS 1.3 KeyUpdate on kernel-owned directions: the next secrets, whether this kernel and this
 * process may install a next key, and the install. */
#ifndef KTLSSHIM_REKEY_H
#define KTLSSHIM_REKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "dir.h"
#include "keys.h"
#include "ksock.h"
#include "ktls.h"

/* Whether the kernel takes a second TLS_TX/TLS_RX, in ktls.h's convention: 1 yes, 0 no,
 * negative not known. */
enum rekey_answer { REKEY_UNKNOWN = -1, REKEY_NO = 0, REKEY_YES = 1 };

/* The kernel self-test's socket answers whether this kernel can rekey, so that no other probe
 * socket is made for it: p, a TLS 1.3 TX just installed on fd (no record sent yet), installed
 * again, when the answer is not known yet. A failure other than the kernel's EBUSY leaves it
 * unknown (asked again later). */
void rekey_ask_on(int fd, const struct ktls_params *p);
/* At the hand-off of direction d (TLS 1.3): keeps the next generation of its current traffic
 * secret; nothing when the kernel has said it cannot rekey. */
void rekey_keep_next(struct ksock *ks, const struct suite_info *s, enum dir d,
		     const unsigned char *secret, size_t secret_len);
/* NULL when this process may install the next key of direction d now (TLS 1.3, Linux 6.14+),
 * else why not, for the log. Whether the kernel can rekey is learned once per process; with
 * probe, by a rekey on a throw-away socket when nothing else told (a probe that failed for a
 * passing reason, EMFILE, seccomp, no loopback, is asked again next time); without, the
 * caller's own install is the test. */
const char *rekey_refusal(struct ksock *ks, enum dir d, bool probe);
/* Installs the next generation's key of direction d (sequence 0) and ratchets the kept secret.
 * 0, or -errno (-EBUSY: the kernel cannot rekey, before 6.14; -ENOKEY: no next secret here). */
int rekey(struct ksock *ks, enum dir d);

#endif
