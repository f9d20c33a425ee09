/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cipher.h"

/* Bit (1 << enum kcipher) of every row of the cipher table. */
#define ALL_CIPHERS (((1u << KCIPHER_COUNT) - 1) & ~(1u << KCIPHER_NONE))

static void bad_value(void (*report)(const char *), const char *var, const char *value,
		      const char *expected, const char *dflt)
{
	/* Control characters would let a value forge log lines: shown as '?'. */
	char shown[201];
	size_t n = 0;
	for (; n < sizeof(shown) - 1 && value[n]; n++)
		shown[n] = (unsigned char)value[n] < 0x20 || value[n] == 0x7f ? '?' : value[n];
	shown[n] = 0;
	char line[512];
	snprintf(line, sizeof(line), "ktlsshim: %s='%s' is not valid (expected %s); using %s", var,
		 shown, expected, dflt);
	report(line);
}

static bool parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "false") ||
		 !strcasecmp(v, "off"))
		*out = false;
	else
		return false;
	return true;
}

static void read_bool(const char *(*get)(const char *), void (*report)(const char *),
		      const char *var, bool *out)
{
	const char *v = get(var);
	if (v && *v && !parse_bool(v, out))
		bad_value(report, var, v, "0 or 1", *out ? "1" : "0");
}

/* Decimal digits only (no sign, no suffix), at most max. */
static bool parse_count(const char *v, unsigned long max, unsigned long *out)
{
	unsigned long n = 0;
	if (!*v || strlen(v) > 9)
		return false;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		n = n * 10 + (unsigned long)(*p - '0');
	}
	if (n > max)
		return false;
	*out = n;
	return true;
}

/* Splits a comma list and maps each item through match(); false on any unknown item. */
static bool parse_list(const char *v, unsigned *bits, int (*match)(const char *item, size_t n))
{
	unsigned acc = 0;
	const char *p = v;
	while (*p) {
		size_t n = strcspn(p, ",");
		if (n == 0)
			return false;
		int bit = match(p, n);
		if (bit < 0)
			return false;
		acc |= 1u << bit;
		p += n;
		if (*p == ',' && !*++p)
			return false;
	}
	if (!acc)
		return false;
	*bits = acc;
	return true;
}

static int match_cipher(const char *item, size_t n)
{
	for (int c = KCIPHER_FIRST; c < KCIPHER_COUNT; c++) {
		const char *name = cipher_name((enum kcipher)c);
		if (strlen(name) == n && !strncasecmp(item, name, n))
			return c;
	}
	return -1;
}

/* "a comma list of " and the table's names, for the message about a bad KTLS_SHIM_CIPHERS. */
static const char *cipher_list(char *buf, size_t n)
{
	size_t used = (size_t)snprintf(buf, n, "a comma list of ");
	for (int c = KCIPHER_FIRST; c < KCIPHER_COUNT && used < n; c++)
		used += (size_t)snprintf(buf + used, n - used, "%s%s",
					 c > KCIPHER_FIRST ? ", " : "",
					 cipher_name((enum kcipher)c));
	return buf;
}

static int match_version(const char *item, size_t n)
{
	if (n == 3 && !strncmp(item, "1.2", 3))
		return 0;
	if (n == 3 && !strncmp(item, "1.3", 3))
		return 1;
	return -1;
}

void config_parse(struct shim_config *c, const char *(*get)(const char *),
		  void (*report)(const char *line))
{
	*c = (struct shim_config){ .dirs = { [DIR_TX] = true, [DIR_RX] = true },
				   .ciphers = ALL_CIPHERS,
				   .tls12 = true,
				   .tls13 = true,
				   .log = LOG_ERROR,
				   .selftest = true,
				   .custom_bio = true,
				   .rekey_records = CONFIG_REKEY_DEFAULT };
	const char *v;

	read_bool(get, report, "KTLS_SHIM_DISABLE", &c->disable);
	read_bool(get, report, "KTLS_SHIM_STRICT", &c->strict);
	read_bool(get, report, "KTLS_SHIM_STATS", &c->stats);
	read_bool(get, report, "KTLS_SHIM_SELFTEST", &c->selftest);
	read_bool(get, report, "KTLS_SHIM_CUSTOM_BIO", &c->custom_bio);

	if ((v = get("KTLS_SHIM_DIRECTIONS")) && *v) {
		if (!strcasecmp(v, "tx"))
			c->dirs[DIR_RX] = false;
		else if (!strcasecmp(v, "rx"))
			c->dirs[DIR_TX] = false;
		else if (strcasecmp(v, "both"))
			bad_value(report, "KTLS_SHIM_DIRECTIONS", v, "tx, rx or both", "both");
	}
	if ((v = get("KTLS_SHIM_CIPHERS")) && *v && !parse_list(v, &c->ciphers, match_cipher)) {
		char list[128];
		bad_value(report, "KTLS_SHIM_CIPHERS", v, cipher_list(list, sizeof(list)),
			  "all four");
	}
	if ((v = get("KTLS_SHIM_VERSIONS")) && *v) {
		unsigned bits;
		if (parse_list(v, &bits, match_version)) {
			c->tls12 = bits & 1;
			c->tls13 = bits & 2;
		} else {
			bad_value(report, "KTLS_SHIM_VERSIONS", v, "1.2, 1.3 or 1.2,1.3",
				  "1.2,1.3");
		}
	}
	if ((v = get("KTLS_SHIM_LOG")) && *v) {
		static const char *const names[] = { "off", "error", "info", "debug" };
		size_t i;
		for (i = 0; i < 4 && strcasecmp(v, names[i]); i++)
			;
		if (i < 4)
			c->log = (enum log_level)i;
		else
			bad_value(report, "KTLS_SHIM_LOG", v, "off, error, info or debug", "error");
	}
	if ((v = get("KTLS_SHIM_LOG_FILE")) && *v)
		c->log_file = v;
	if ((v = get("KTLS_SHIM_REKEY_RECORDS")) && *v &&
	    !parse_count(v, CONFIG_REKEY_MAX, &c->rekey_records))
		bad_value(report, "KTLS_SHIM_REKEY_RECORDS", v, "0 (never) or 1 to 23726566",
			  "16777216");
}

static struct shim_config config;
static pthread_once_t config_once = PTHREAD_ONCE_INIT;

/* secure_getenv: in a setuid, setgid or file-capability program (AT_SECURE) the environment is
 * the caller's, not the operator's: no KTLS_SHIM_* is read there (no log file it names is opened,
 * no setting weakened), and the shim runs with its defaults. */
static const char *process_getenv(const char *name)
{
	return secure_getenv(name);
}

/* Bad values are reported on stderr before the log exists: a misconfiguration must be visible. */
static void report_stderr(const char *line)
{
	char buf[600];
	int n = snprintf(buf, sizeof(buf), "%s\n", line);
	if (n > 0 && write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

static void config_init(void)
{
	config_parse(&config, process_getenv, report_stderr);
}

const struct shim_config *config_get(void)
{
	pthread_once(&config_once, config_init);
	return &config;
}

/* Read at load time, so that a bad value is reported when the program starts. */
__attribute__((constructor)) static void config_at_load(void)
{
	config_get();
}
