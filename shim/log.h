/* SPDX-License-Identifier: Apache-2.0 */
/* One-line log records to stderr or KTLS_SHIM_LOG_FILE. Never given key material. */
#ifndef KTLSSHIM_LOG_H
#define KTLSSHIM_LOG_H

#include "config.h"

__attribute__((format(printf, 2, 3))) void log_msg(enum log_level level, const char *fmt, ...);
/* A line written whatever the level (the exit summary the operator asked for). */
__attribute__((format(printf, 1, 2))) void log_always(const char *fmt, ...);
#define log_enabled(level) (config_get()->log >= (level))

#endif
