/* SPDX-License-Identifier: Apache-2.0 */
#include "stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#define MAX_REASONS 32

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long connections, tx_kernel, rx_kernel;
static struct {
	const char *why;
	unsigned long count;
} reasons[MAX_REASONS];

static void count_reason(const char *why)
{
	for (int i = 0; i < MAX_REASONS; i++) {
		if (!reasons[i].why)
			reasons[i].why = why;
		if (!strcmp(reasons[i].why, why)) {
			reasons[i].count++;
			return;
		}
	}
}

static void summary(void)
{
	char line[1024];
	pthread_mutex_lock(&lock);
	int n = snprintf(line, sizeof(line), "stats: connections=%lu tx_kernel=%lu rx_kernel=%lu",
			 connections, tx_kernel, rx_kernel);
	for (int i = 0; i < MAX_REASONS && reasons[i].why && n < (int)sizeof(line); i++)
		n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s=%lu", i ? "," : " fallbacks: ",
			      reasons[i].why, reasons[i].count);
	pthread_mutex_unlock(&lock);
	/* Operators asked for this line: it is printed whatever KTLS_SHIM_LOG says. */
	log_always("%s", line);
}

void stats_connection(const char *tx_why, const char *rx_why)
{
	if (!config_get()->stats)
		return;
	pthread_mutex_lock(&lock);
	connections++;
	if (tx_why)
		count_reason(tx_why);
	else
		tx_kernel++;
	if (rx_why && (!tx_why || strcmp(tx_why, rx_why)))
		count_reason(rx_why);
	if (!rx_why)
		rx_kernel++;
	pthread_mutex_unlock(&lock);
}

/* A child forked while another thread counted would hang at exit in summary(). */
static void fork_prepare(void) { pthread_mutex_lock(&lock); }
static void fork_release(void) { pthread_mutex_unlock(&lock); }

/* Registered at load time, so that a process that made no connection says so too. */
__attribute__((constructor)) static void stats_at_load(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_release);
	const struct shim_config *cfg = config_get();
	if (cfg->stats && !cfg->disable)
		atexit(summary);
}
