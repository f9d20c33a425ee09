/* KTLS_SHIM_* environment settings, read once per process. */
#ifndef KTLSSHIM_CONFIG_H
#define KTLSSHIM_CONFIG_H

#include <stdbool.h>

enum log_level { LOG_OFF = 0, LOG_ERROR, LOG_INFO, LOG_DEBUG };

struct shim_config {
	bool disable;          /* KTLS_SHIM_DISABLE: pure pass-through */
	bool tx, rx;           /* KTLS_SHIM_DIRECTIONS */
	unsigned ciphers;      /* KTLS_SHIM_CIPHERS: bit (1 << enum kcipher) per allowed cipher */
	bool tls12, tls13;     /* KTLS_SHIM_VERSIONS */
	enum log_level log;    /* KTLS_SHIM_LOG */
	const char *log_file;  /* KTLS_SHIM_LOG_FILE, NULL = stderr */
	bool strict;           /* KTLS_SHIM_STRICT */
	bool stats;            /* KTLS_SHIM_STATS */
};

/* Reports every bad value through report(line) (one line each, no newline) and falls back to the
 * documented default for that variable. getenv_fn lets the parser be tested without a process. */
void config_parse(struct shim_config *c, const char *(*getenv_fn)(const char *),
		  void (*report)(const char *line));

/* The process's configuration (parsed on first use, thread-safe). */
const struct shim_config *config_get(void);

#endif
