/* SPDX-License-Identifier: Apache-2.0 */
/* KTLS_SHIM_STATS=1: counts what happened to each connection, one summary line at exit. */
#ifndef KTLSSHIM_STATS_H
#define KTLSSHIM_STATS_H

#include <stdbool.h>

/* One connection whose directions are decided; why_* is NULL for a kernel-owned direction. */
void stats_connection(const char *tx_why, const char *rx_why);

#endif
