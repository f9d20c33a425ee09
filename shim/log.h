/* SPDX-License-Identifier: Apache-2.0 */
/* One-line log records to stderr or KTLS_SHIM_LOG_FILE. Never given key material. */
#ifndef KTLSSHIM_LOG_H
#define KTLSSHIM_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include "config.h"

__attribute__((format(printf, 2, 3))) void log_msg(enum log_level level, const char *fmt, ...);
/* A line written whatever the level (the exit summary the operator asked for). */
__attribute__((format(printf, 1, 2))) void log_always(const char *fmt, ...);
/* The line as written (pure; tests/unit/test_log.c): "ktlsshim[pid]: ", the message and a
 * newline, cut to cap - 1 bytes (the newline kept; no NUL counted). cap must exceed the prefix + 2.
 * Its length. */
__attribute__((format(printf, 4, 0))) size_t log_format(char *line, size_t cap, int pid,
							const char *fmt, va_list ap);
#define log_enabled(level) (config_get()->log >= (level))

#endif
