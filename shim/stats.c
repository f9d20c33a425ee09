/* SPDX-License-Identifier: Apache-2.0 */
#include "stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "forklock.h"
#include "log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct stats_counts counts;

static void count_reason(struct stats_counts *s, const char *why)
{
	for (int i = 0; i < STATS_MAX_REASONS; i++) {
		if (!s->reasons[i].why)
			s->reasons[i].why = why;
		if (!strcmp(s->reasons[i].why, why)) {
			s->reasons[i].count++;
			return;
		}
	}
}

void stats_count(struct stats_counts *s, const char *tx_why, const char *rx_why)
{
	s->connections++;
	if (tx_why)
		count_reason(s, tx_why);
	else
		s->tx_kernel++;
	if (rx_why && (!tx_why || strcmp(tx_why, rx_why)))
		count_reason(s, rx_why);
	if (!rx_why)
		s->rx_kernel++;
}

void stats_format(const struct stats_counts *s, char *line, size_t cap)
{
	int n = snprintf(line, cap, "stats: connections=%lu tx_kernel=%lu rx_kernel=%lu",
			 s->connections, s->tx_kernel, s->rx_kernel);
	for (int i = 0; i < STATS_MAX_REASONS && s->reasons[i].why && n >= 0 && (size_t)n < cap;
	     i++)
		n += snprintf(line + n, cap - (size_t)n, "%s%s=%lu",
			      i ? "," : " fallbacks: ", s->reasons[i].why, s->reasons[i].count);
}

static void summary(void)
{
	char line[1024];
	pthread_mutex_lock(&lock);
	stats_format(&counts, line, sizeof(line));
	pthread_mutex_unlock(&lock);
	/* Operators asked for this line: it is printed whatever KTLS_SHIM_LOG says. */
	log_always("%s", line);
}

void stats_connection(const char *tx_why, const char *rx_why)
{
	if (!config_get()->stats)
		return;
	pthread_mutex_lock(&lock);
	stats_count(&counts, tx_why, rx_why);
	pthread_mutex_unlock(&lock);
}

/* Registered at load time, so that a process that made no connection says so too. */
__attribute__((constructor)) static void stats_at_load(void)
{
	forklock_add(&lock); /* a child forked while another thread counted would hang at exit */
	const struct shim_config *cfg = config_get();
	if (cfg->stats && !cfg->disable)
		atexit(summary);
}
