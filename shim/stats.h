/* SPDX-License-Identifier: Apache-2.0 */
/* KTLS_SHIM_STATS=1: counts what happened to each connection, one summary line at exit. */
#ifndef KTLSSHIM_STATS_H
#define KTLSSHIM_STATS_H

#include <stdbool.h>
#include <stddef.h>

#define STATS_MAX_REASONS 32

/* The counts behind the exit line. Reasons are the fallback strings (static, compared by value);
 * past STATS_MAX_REASONS distinct ones, new ones go uncounted. */
struct stats_counts {
	unsigned long connections, tx_kernel, rx_kernel;
	struct {
		const char *why;
		unsigned long count;
	} reasons[STATS_MAX_REASONS];
};

/* Pure parts (tests/unit/test_stats.c): one connection into *s, and the line for *s, cut to fit
 * cap bytes (NUL included). A reason both directions share counts once. */
void stats_count(struct stats_counts *s, const char *tx_why, const char *rx_why);
void stats_format(const struct stats_counts *s, char *line, size_t cap);

/* One connection whose directions are decided; why_* is NULL for a kernel-owned direction. */
void stats_connection(const char *tx_why, const char *rx_why);

#endif
