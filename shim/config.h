/* SPDX-License-Identifier: Apache-2.0 */
/* KTLS_SHIM_* environment settings, read once per process. */
#ifndef KTLSSHIM_CONFIG_H
#define KTLSSHIM_CONFIG_H

#include <stdbool.h>

#include "dir.h"

enum log_level { LOG_OFF = 0, LOG_ERROR, LOG_INFO, LOG_DEBUG };

struct shim_config {
	bool disable;	      /* KTLS_SHIM_DISABLE: pure pass-through */
	bool dirs[DIR_COUNT]; /* KTLS_SHIM_DIRECTIONS, by enum dir */
	unsigned ciphers;     /* KTLS_SHIM_CIPHERS: bit (1 << enum kcipher) per allowed cipher */
	bool tls12, tls13;    /* KTLS_SHIM_VERSIONS */
	enum log_level log;   /* KTLS_SHIM_LOG */
	const char *log_file; /* KTLS_SHIM_LOG_FILE, NULL = stderr */
	bool strict;	      /* KTLS_SHIM_STRICT */
	bool stats;	      /* KTLS_SHIM_STATS */
	bool selftest;	      /* KTLS_SHIM_SELFTEST: test the kernel's records before trusting it */
	bool custom_bio; /* KTLS_SHIM_CUSTOM_BIO: offload a custom BIO once its socket is proven */
	unsigned long
		rekey_records; /* KTLS_SHIM_REKEY_RECORDS: TLS 1.3 TX records per key, 0 = never */
};

/* RFC 8446 5.5: AES-GCM stays within its safety margin for 2^24.5 full records per key. The default
 * rekeys at 2^24; larger settings are refused. */
#define CONFIG_REKEY_DEFAULT 16777216UL
#define CONFIG_REKEY_MAX     23726566UL

/* Reports every bad value through report(line) (one line each, no newline) and falls back to the
 * documented default for that variable. getenv_fn lets the parser be tested without a process. */
void config_parse(struct shim_config *c, const char *(*getenv_fn)(const char *),
		  void (*report)(const char *line));

/* The process's configuration (parsed on first use, thread-safe). */
const struct shim_config *config_get(void);

#endif
