/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the pure parts of shim/stats.c: how connections are counted and the exact
 * KTLS_SHIM_STATS exit line (documented in man/ktlsshim.7; tests/controls.bats reads it). TAP. */
#include <stdio.h>
#include <string.h>

#include "stats.h"
#include "tap.h"

#define PLAN 6

static void test_counting(void)
{
	struct stats_counts s = { 0 };
	char line[1024];

	stats_format(&s, line, sizeof(line));
	tap_ok(!strcmp(line, "stats: connections=0 tx_kernel=0 rx_kernel=0"),
	       "no connection: three zero counts, no fallbacks: %s", line);

	stats_count(&s, NULL, NULL);
	stats_count(&s, NULL, NULL);
	stats_count(&s, "cipher disabled by KTLS_SHIM_CIPHERS",
		    "cipher disabled by KTLS_SHIM_CIPHERS");
	stats_count(&s, NULL, "kernel refused TLS_RX");
	stats_count(&s, "kernel refused TLS_TX", "kernel refused TLS_RX");
	tap_ok(s.connections == 5 && s.tx_kernel == 3 && s.rx_kernel == 2,
	       "5 connections: TX in the kernel 3 times, RX 2 times");
	tap_ok(s.reasons[0].count == 1 && s.reasons[1].count == 2 && s.reasons[2].count == 1 &&
		       s.reasons[3].why == NULL,
	       "a reason both directions share counts once; each other reason per direction");
	stats_format(&s, line, sizeof(line));
	tap_ok(!strcmp(line, "stats: connections=5 tx_kernel=3 rx_kernel=2 fallbacks: "
			     "cipher disabled by KTLS_SHIM_CIPHERS=1,kernel refused TLS_RX=2,"
			     "kernel refused TLS_TX=1"),
	       "the line, reasons in first-seen order: %s", line);
}

static void test_limits(void)
{
	static char names[STATS_MAX_REASONS + 1][16];
	struct stats_counts s = { 0 };

	for (int i = 0; i <= STATS_MAX_REASONS; i++) {
		snprintf(names[i], sizeof(names[i]), "r%d", i);
		stats_count(&s, names[i], NULL);
	}
	tap_ok(s.connections == STATS_MAX_REASONS + 1 &&
		       s.reasons[STATS_MAX_REASONS - 1].count == 1 &&
		       !strcmp(s.reasons[STATS_MAX_REASONS - 1].why, "r31"),
	       "33 distinct reasons: the first 32 kept, every connection counted");

	char small[40];
	memset(small, 'x', sizeof(small));
	stats_format(&s, small, sizeof(small));
	tap_ok(small[sizeof(small) - 1] == 0 && strlen(small) == sizeof(small) - 1 &&
		       !strncmp(small, "stats: connections=33 ", 22),
	       "a line longer than the buffer is cut and terminated: %s", small);
}

int main(void)
{
	tap_plan(PLAN);
	test_counting();
	test_limits();
	return tap_done();
}
