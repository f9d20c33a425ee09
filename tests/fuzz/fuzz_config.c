/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: config_parse (shim/config.c) with the input split into variable values.
 *
 * Input: values separated by '\n', assigned in order to the KTLS_SHIM_* variables below; a value
 * that is exactly "-" means "unset". Every report line must be a NUL-terminated line without a
 * newline, and the result must hold the documented invariants (a bad value falls back to its
 * default, so at least one direction, cipher and version is always allowed). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define CHECK(x)                          \
	do {                              \
		if (!(x))                 \
			__builtin_trap(); \
	} while (0)

static const char *const vars[] = {
	"KTLS_SHIM_DISABLE",  "KTLS_SHIM_DIRECTIONS", "KTLS_SHIM_CIPHERS",
	"KTLS_SHIM_VERSIONS", "KTLS_SHIM_LOG",	      "KTLS_SHIM_LOG_FILE",
	"KTLS_SHIM_STRICT",   "KTLS_SHIM_STATS",      "KTLS_SHIM_REKEY_RECORDS",
	"KTLS_SHIM_SELFTEST", "KTLS_SHIM_CUSTOM_BIO",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))
static char *values[NVARS];
static unsigned reports;

static const char *get(const char *name)
{
	for (size_t i = 0; i < NVARS; i++)
		if (!strcmp(name, vars[i]))
			return values[i];
	CHECK(!"config_parse asked for a variable the fuzzer does not know");
	return NULL;
}

static void report(const char *line)
{
	CHECK(line);
	size_t n = strlen(line);
	CHECK(n > 0 && n < 512);
	CHECK(!memchr(line, '\n', n));
	reports++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* One heap copy per value, exactly sized: ASan sees any read past a value's end. */
	size_t off = 0;
	for (size_t i = 0; i < NVARS; i++) {
		values[i] = NULL;
		if (off > size)
			continue;
		const uint8_t *nl = memchr(data + off, '\n', size - off);
		size_t len = nl ? (size_t)(nl - (data + off)) : size - off;
		if (!(len == 1 && data[off] == '-')) {
			values[i] = malloc(len + 1);
			memcpy(values[i], data + off, len);
			values[i][len] = 0;
		}
		off += len + 1;
	}
	reports = 0;
	struct shim_config c;
	config_parse(&c, get, report);
	CHECK(c.dirs[DIR_TX] || c.dirs[DIR_RX]);
	CHECK(c.tls12 || c.tls13);
	CHECK(c.ciphers != 0 && (c.ciphers & ~0x1eu) == 0);
	CHECK(c.log <= LOG_DEBUG);
	CHECK(c.rekey_records <= CONFIG_REKEY_MAX);
	CHECK(reports <= NVARS);
	/* A log file, when set, is the variable's own value. */
	CHECK(!c.log_file || c.log_file == values[5]);
	for (size_t i = 0; i < NVARS; i++)
		free(values[i]);
	return 0;
}
