/* SPDX-License-Identifier: Apache-2.0 */
/* The hand-off: whether and when a direction may move to the kernel, and the move. */
#ifndef KTLSSHIM_HANDOFF_H
#define KTLSSHIM_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"
#include "dir.h"
#include "ktls.h"

/* The handshake is over (mbedtls_ssl_handshake returned 0). */
void handoff_handshake_done(struct conn *c);
/* Moves the wanted directions to the kernel when that is provably safe; call only at top level. */
void handoff(struct conn *c, const bool want[DIR_COUNT]);
/* The automatic hand-off: both directions, unless the application took control. */
void handoff_auto(struct conn *c);
/* The proven kernel parameters of one direction for the application, which then owns it:
 * KTLSSHIM_OK or a KTLSSHIM_ERR_* code. */
int handoff_export(struct conn *c, enum dir d, union ktls_kinfo *out, size_t *out_len);

#endif
