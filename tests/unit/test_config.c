/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for config_parse (shim/config.c): the KTLS_SHIM_* variables through a fake getenv and a
 * report function that collects lines, so no process environment is involved. TAP output.
 *
 * Each case is one check: the parsed configuration equals the expected one field by field, and
 * exactly the expected report lines were produced (none for a valid value, exactly one naming the
 * variable and the value for a bad one). On a mismatch the differences are printed as diagnostics. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keys.h"
#include "tap.h"

#define BIT(c) (1u << (c))
#define GCM128 BIT(KCIPHER_AES_GCM_128)
#define GCM256 BIT(KCIPHER_AES_GCM_256)
#define CCM128 BIT(KCIPHER_AES_CCM_128)
#define CHACHA BIT(KCIPHER_CHACHA20_POLY1305)
#define ALL    (GCM128 | GCM256 | CCM128 | CHACHA)

/* The eleven documented variables, in the order of README's table. */
static const char *const vars[] = {
	"KTLS_SHIM_DISABLE",  "KTLS_SHIM_DIRECTIONS", "KTLS_SHIM_CIPHERS",
	"KTLS_SHIM_VERSIONS", "KTLS_SHIM_LOG",	      "KTLS_SHIM_LOG_FILE",
	"KTLS_SHIM_STRICT",   "KTLS_SHIM_STATS",      "KTLS_SHIM_REKEY_RECORDS",
	"KTLS_SHIM_SELFTEST", "KTLS_SHIM_CUSTOM_BIO",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

/* ---- the fake environment and report sink ---------------------------------------------------- */

#define MAX_ENV	    16
#define MAX_REPORTS 16
static struct {
	char name[64];
	const char *value;
} env[MAX_ENV];
static int nenv;
static char asked[MAX_ENV * 4][64]; /* every name config_parse asked for */
static int nasked;
static char reports[MAX_REPORTS][600];
static int nreports;

static const char *fake_getenv(const char *name)
{
	if (nasked < (int)(sizeof(asked) / sizeof(asked[0])))
		snprintf(asked[nasked++], sizeof(asked[0]), "%s", name);
	for (int i = 0; i < nenv; i++)
		if (!strcmp(env[i].name, name))
			return env[i].value;
	return NULL;
}

static void fake_report(const char *line)
{
	if (nreports < MAX_REPORTS)
		snprintf(reports[nreports], sizeof(reports[0]), "%s", line);
	nreports++;
}

/* Sets the environment from "NAME=value" strings (value may be empty; it is everything after the
 * first '='). The strings must outlive the parse. */
static void set_env(const char *const *assign, int n)
{
	nenv = nasked = nreports = 0;
	for (int i = 0; i < n; i++) {
		const char *eq = strchr(assign[i], '=');
		if (!eq || nenv == MAX_ENV || (size_t)(eq - assign[i]) >= sizeof(env[0].name)) {
			fprintf(stderr, "test_config: bad assignment in the test: %s\n", assign[i]);
			exit(2);
		}
		snprintf(env[nenv].name, sizeof(env[0].name), "%.*s", (int)(eq - assign[i]),
			 assign[i]);
		env[nenv++].value = eq + 1;
	}
}

/* Parses into a struct first filled with garbage: config_parse must set every field itself. */
static struct shim_config parse_env(const char *const *assign, int n)
{
	struct shim_config c;
	memset(&c, 0xa5, sizeof(c));
	set_env(assign, n);
	config_parse(&c, fake_getenv, fake_report);
	return c;
}

static struct shim_config parse1(const char *assign)
{
	return parse_env(&assign, assign ? 1 : 0);
}

/* ---- expectations ---------------------------------------------------------------------------- */

static struct shim_config defaults(void)
{
	return (struct shim_config){ .disable = false,
				     .dirs = { [DIR_TX] = true, [DIR_RX] = true },
				     .ciphers = ALL,
				     .tls12 = true,
				     .tls13 = true,
				     .log = LOG_ERROR,
				     .log_file = NULL,
				     .strict = false,
				     .stats = false,
				     .rekey_records = 16777216,
				     .selftest = true,
				     .custom_bio = true };
}

/* Prints every field that differs; true when none does. */
static bool same_config(const struct shim_config *got, const struct shim_config *want)
{
	bool same = true;
#define FIELD(f, fmt, cast)                                                                \
	if (got->f != want->f) {                                                           \
		tap_diag("  %s: got " fmt ", want " fmt, #f, (cast)got->f, (cast)want->f); \
		same = false;                                                              \
	}
	FIELD(disable, "%d", int)
	FIELD(dirs[DIR_TX], "%d", int)
	FIELD(dirs[DIR_RX], "%d", int)
	FIELD(ciphers, "0x%x", unsigned)
	FIELD(tls12, "%d", int)
	FIELD(tls13, "%d", int)
	FIELD(log, "%d", int)
	FIELD(strict, "%d", int)
	FIELD(stats, "%d", int)
	FIELD(selftest, "%d", int)
	FIELD(custom_bio, "%d", int)
	FIELD(rekey_records, "%lu", unsigned long)
#undef FIELD
	const char *g = got->log_file, *w = want->log_file;
	if ((g == NULL) != (w == NULL) || (g && strcmp(g, w))) {
		tap_diag("  log_file: got %s, want %s", g ? g : "(null)", w ? w : "(null)");
		same = false;
	}
	return same;
}

static void show_reports(void)
{
	for (int i = 0; i < nreports && i < MAX_REPORTS; i++)
		tap_diag("  report: %s", reports[i]);
}

/* A valid setting: parses to want, reports nothing. */
static void check_valid(const char *assign, struct shim_config want)
{
	struct shim_config got = parse1(assign);
	bool same = same_config(&got, &want);
	if (nreports)
		show_reports();
	tap_ok(same && nreports == 0, "valid: %s", assign);
}

/* The line a bad value must produce, exactly. */
static void want_line(char *buf, size_t n, const char *var, const char *value)
{
	static const struct {
		const char *var, *expected, *dflt;
	} help[] = {
		{ "KTLS_SHIM_DISABLE", "0 or 1", "0" },
		{ "KTLS_SHIM_STRICT", "0 or 1", "0" },
		{ "KTLS_SHIM_STATS", "0 or 1", "0" },
		{ "KTLS_SHIM_SELFTEST", "0 or 1", "1" },
		{ "KTLS_SHIM_CUSTOM_BIO", "0 or 1", "1" },
		{ "KTLS_SHIM_DIRECTIONS", "tx, rx or both", "both" },
		{ "KTLS_SHIM_CIPHERS",
		  "a comma list of AES-128-GCM, AES-256-GCM, AES-128-CCM, CHACHA20-POLY1305",
		  "all four" },
		{ "KTLS_SHIM_VERSIONS", "1.2, 1.3 or 1.2,1.3", "1.2,1.3" },
		{ "KTLS_SHIM_LOG", "off, error, info or debug", "error" },
		{ "KTLS_SHIM_REKEY_RECORDS", "0 (never) or 1 to 23726566", "16777216" },
	};
	for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++)
		if (!strcmp(help[i].var, var)) {
			snprintf(buf, n, "ktlsshim: %s='%s' is not valid (expected %s); using %s",
				 var, value, help[i].expected, help[i].dflt);
			return;
		}
	snprintf(buf, n, "(no bad value exists for %s)", var);
}

/* A bad value: exactly one report line, that exact line (variable, value, what is expected, the
 * default used), no newline in it, and the whole configuration at its defaults. */
static void check_bad(const char *var, const char *value)
{
	char assign[300], line[700];
	snprintf(assign, sizeof(assign), "%s=%s", var, value);
	const char *a = assign;
	struct shim_config got = parse_env(&a, 1), want = defaults();
	bool same = same_config(&got, &want);
	want_line(line, sizeof(line), var, value);
	bool one = nreports == 1 && !strcmp(reports[0], line) && !strchr(reports[0], '\n');
	if (!one) {
		tap_diag("  want 1 report: %s", line);
		tap_diag("  got %d:", nreports);
		show_reports();
	}
	tap_ok(same && one, "bad value reported once, default kept: %s='%s'", var, value);
}

/* ---- cases ----------------------------------------------------------------------------------- */

struct valid_case {
	const char *assign;
	void (*edit)(struct shim_config *);
};

static void e_none(struct shim_config *c)
{
	(void)c;
}
static void e_disable(struct shim_config *c)
{
	c->disable = true;
}
static void e_strict(struct shim_config *c)
{
	c->strict = true;
}
static void e_stats(struct shim_config *c)
{
	c->stats = true;
}
static void e_no_selftest(struct shim_config *c)
{
	c->selftest = false;
}
static void e_no_custom_bio(struct shim_config *c)
{
	c->custom_bio = false;
}
static void e_tx_only(struct shim_config *c)
{
	c->dirs[DIR_RX] = false;
}
static void e_rx_only(struct shim_config *c)
{
	c->dirs[DIR_TX] = false;
}
static void e_gcm128(struct shim_config *c)
{
	c->ciphers = GCM128;
}
static void e_gcm256(struct shim_config *c)
{
	c->ciphers = GCM256;
}
static void e_ccm128(struct shim_config *c)
{
	c->ciphers = CCM128;
}
static void e_chacha(struct shim_config *c)
{
	c->ciphers = CHACHA;
}
static void e_gcms(struct shim_config *c)
{
	c->ciphers = GCM128 | GCM256;
}
static void e_no_ccm(struct shim_config *c)
{
	c->ciphers = GCM128 | GCM256 | CHACHA;
}
static void e_tls12(struct shim_config *c)
{
	c->tls13 = false;
}
static void e_tls13(struct shim_config *c)
{
	c->tls12 = false;
}
static void e_log_off(struct shim_config *c)
{
	c->log = LOG_OFF;
}
static void e_log_info(struct shim_config *c)
{
	c->log = LOG_INFO;
}
static void e_log_debug(struct shim_config *c)
{
	c->log = LOG_DEBUG;
}
static void e_log_file(struct shim_config *c)
{
	c->log_file = "/var/log/ktlsshim.log";
}
static void e_log_file_rel(struct shim_config *c)
{
	c->log_file = "shim log.txt";
}
static void e_rekey_never(struct shim_config *c)
{
	c->rekey_records = 0;
}
static void e_rekey_1(struct shim_config *c)
{
	c->rekey_records = 1;
}
static void e_rekey_1000(struct shim_config *c)
{
	c->rekey_records = 1000;
}
static void e_rekey_max(struct shim_config *c)
{
	c->rekey_records = 23726566;
}

static const struct valid_case valid_cases[] = {
	/* booleans: 1/yes/true/on and 0/no/false/off, the words in any case */
	{ "KTLS_SHIM_DISABLE=1", e_disable },
	{ "KTLS_SHIM_DISABLE=yes", e_disable },
	{ "KTLS_SHIM_DISABLE=YES", e_disable },
	{ "KTLS_SHIM_DISABLE=true", e_disable },
	{ "KTLS_SHIM_DISABLE=True", e_disable },
	{ "KTLS_SHIM_DISABLE=on", e_disable },
	{ "KTLS_SHIM_DISABLE=ON", e_disable },
	{ "KTLS_SHIM_DISABLE=0", e_none },
	{ "KTLS_SHIM_DISABLE=no", e_none },
	{ "KTLS_SHIM_DISABLE=No", e_none },
	{ "KTLS_SHIM_DISABLE=false", e_none },
	{ "KTLS_SHIM_DISABLE=FALSE", e_none },
	{ "KTLS_SHIM_DISABLE=off", e_none },
	{ "KTLS_SHIM_DISABLE=Off", e_none },
	{ "KTLS_SHIM_STRICT=1", e_strict },
	{ "KTLS_SHIM_STRICT=yes", e_strict },
	{ "KTLS_SHIM_STRICT=TRUE", e_strict },
	{ "KTLS_SHIM_STRICT=on", e_strict },
	{ "KTLS_SHIM_STRICT=0", e_none },
	{ "KTLS_SHIM_STRICT=NO", e_none },
	{ "KTLS_SHIM_STRICT=false", e_none },
	{ "KTLS_SHIM_STRICT=OFF", e_none },
	{ "KTLS_SHIM_STATS=1", e_stats },
	{ "KTLS_SHIM_STATS=Yes", e_stats },
	{ "KTLS_SHIM_STATS=true", e_stats },
	{ "KTLS_SHIM_STATS=On", e_stats },
	{ "KTLS_SHIM_STATS=0", e_none },
	{ "KTLS_SHIM_STATS=no", e_none },
	{ "KTLS_SHIM_STATS=False", e_none },
	{ "KTLS_SHIM_STATS=off", e_none },
	{ "KTLS_SHIM_SELFTEST=0", e_no_selftest },
	{ "KTLS_SHIM_SELFTEST=off", e_no_selftest },
	{ "KTLS_SHIM_SELFTEST=1", e_none },
	{ "KTLS_SHIM_CUSTOM_BIO=0", e_no_custom_bio },
	{ "KTLS_SHIM_CUSTOM_BIO=no", e_no_custom_bio },
	{ "KTLS_SHIM_CUSTOM_BIO=1", e_none },
	/* directions, any case */
	{ "KTLS_SHIM_DIRECTIONS=both", e_none },
	{ "KTLS_SHIM_DIRECTIONS=BOTH", e_none },
	{ "KTLS_SHIM_DIRECTIONS=Both", e_none },
	{ "KTLS_SHIM_DIRECTIONS=tx", e_tx_only },
	{ "KTLS_SHIM_DIRECTIONS=TX", e_tx_only },
	{ "KTLS_SHIM_DIRECTIONS=Tx", e_tx_only },
	{ "KTLS_SHIM_DIRECTIONS=rx", e_rx_only },
	{ "KTLS_SHIM_DIRECTIONS=RX", e_rx_only },
	{ "KTLS_SHIM_DIRECTIONS=rX", e_rx_only },
	/* ciphers: each alone, any case, lists in any order, duplicates */
	{ "KTLS_SHIM_CIPHERS=AES-128-GCM", e_gcm128 },
	{ "KTLS_SHIM_CIPHERS=aes-128-gcm", e_gcm128 },
	{ "KTLS_SHIM_CIPHERS=Aes-128-Gcm", e_gcm128 },
	{ "KTLS_SHIM_CIPHERS=AES-256-GCM", e_gcm256 },
	{ "KTLS_SHIM_CIPHERS=aes-256-gcm", e_gcm256 },
	{ "KTLS_SHIM_CIPHERS=AES-128-CCM", e_ccm128 },
	{ "KTLS_SHIM_CIPHERS=aes-128-ccm", e_ccm128 },
	{ "KTLS_SHIM_CIPHERS=CHACHA20-POLY1305", e_chacha },
	{ "KTLS_SHIM_CIPHERS=chacha20-poly1305", e_chacha },
	{ "KTLS_SHIM_CIPHERS=AES-128-GCM,AES-256-GCM", e_gcms },
	{ "KTLS_SHIM_CIPHERS=aes-256-gcm,AES-128-GCM", e_gcms },
	{ "KTLS_SHIM_CIPHERS=AES-128-GCM,AES-128-GCM,aes-256-gcm", e_gcms },
	{ "KTLS_SHIM_CIPHERS=CHACHA20-POLY1305,AES-256-GCM,AES-128-GCM", e_no_ccm },
	{ "KTLS_SHIM_CIPHERS=AES-128-GCM,AES-256-GCM,AES-128-CCM,CHACHA20-POLY1305", e_none },
	{ "KTLS_SHIM_CIPHERS=chacha20-poly1305,aes-128-ccm,aes-256-gcm,aes-128-gcm", e_none },
	/* versions */
	{ "KTLS_SHIM_VERSIONS=1.2", e_tls12 },
	{ "KTLS_SHIM_VERSIONS=1.3", e_tls13 },
	{ "KTLS_SHIM_VERSIONS=1.2,1.3", e_none },
	{ "KTLS_SHIM_VERSIONS=1.3,1.2", e_none },
	{ "KTLS_SHIM_VERSIONS=1.3,1.3", e_tls13 },
	/* log levels, any case */
	{ "KTLS_SHIM_LOG=off", e_log_off },
	{ "KTLS_SHIM_LOG=OFF", e_log_off },
	{ "KTLS_SHIM_LOG=error", e_none },
	{ "KTLS_SHIM_LOG=Error", e_none },
	{ "KTLS_SHIM_LOG=info", e_log_info },
	{ "KTLS_SHIM_LOG=INFO", e_log_info },
	{ "KTLS_SHIM_LOG=debug", e_log_debug },
	{ "KTLS_SHIM_LOG=DeBuG", e_log_debug },
	/* a log file: taken as it is */
	{ "KTLS_SHIM_LOG_FILE=/var/log/ktlsshim.log", e_log_file },
	{ "KTLS_SHIM_LOG_FILE=shim log.txt", e_log_file_rel },
	/* records per TX key: 0 = never, up to the AES-GCM limit */
	{ "KTLS_SHIM_REKEY_RECORDS=0", e_rekey_never },
	{ "KTLS_SHIM_REKEY_RECORDS=1", e_rekey_1 },
	{ "KTLS_SHIM_REKEY_RECORDS=1000", e_rekey_1000 },
	{ "KTLS_SHIM_REKEY_RECORDS=001000", e_rekey_1000 },
	{ "KTLS_SHIM_REKEY_RECORDS=16777216", e_none },
	{ "KTLS_SHIM_REKEY_RECORDS=23726566", e_rekey_max },
};
#define NVALID (sizeof(valid_cases) / sizeof(valid_cases[0]))

static const char *const bad_cases[][2] = {
	/* booleans */
	{ "KTLS_SHIM_DISABLE", "2" },
	{ "KTLS_SHIM_DISABLE", "enable" },
	{ "KTLS_SHIM_DISABLE", " 1" },
	{ "KTLS_SHIM_DISABLE", "1 " },
	{ "KTLS_SHIM_DISABLE", "-1" },
	{ "KTLS_SHIM_STRICT", "y" },
	{ "KTLS_SHIM_STRICT", "10" },
	{ "KTLS_SHIM_STRICT", "strict" },
	{ "KTLS_SHIM_STATS", "n" },
	{ "KTLS_SHIM_STATS", "enabled" },
	{ "KTLS_SHIM_STATS", "00" },
	{ "KTLS_SHIM_SELFTEST", "skip" },
	{ "KTLS_SHIM_CUSTOM_BIO", "proven" },
	/* directions */
	{ "KTLS_SHIM_DIRECTIONS", "none" },
	{ "KTLS_SHIM_DIRECTIONS", "tx,rx" },
	{ "KTLS_SHIM_DIRECTIONS", "t" },
	{ "KTLS_SHIM_DIRECTIONS", " tx" },
	{ "KTLS_SHIM_DIRECTIONS", "send" },
	/* ciphers: unknown names, near misses, broken lists */
	{ "KTLS_SHIM_CIPHERS", "AES-128-CCM-8" },
	{ "KTLS_SHIM_CIPHERS", "AES-256-CCM" },
	{ "KTLS_SHIM_CIPHERS", "AES128GCM" },
	{ "KTLS_SHIM_CIPHERS", "AES-128-GC" },
	{ "KTLS_SHIM_CIPHERS", "AES-128-GCMX" },
	{ "KTLS_SHIM_CIPHERS", "none" },
	{ "KTLS_SHIM_CIPHERS", "," },
	{ "KTLS_SHIM_CIPHERS", "AES-128-GCM," },
	{ "KTLS_SHIM_CIPHERS", ",AES-128-GCM" },
	{ "KTLS_SHIM_CIPHERS", "AES-128-GCM,,AES-256-GCM" },
	{ "KTLS_SHIM_CIPHERS", "AES-128-GCM, AES-256-GCM" },
	{ "KTLS_SHIM_CIPHERS", "AES-128-GCM,RC4" },
	/* versions */
	{ "KTLS_SHIM_VERSIONS", "1.1" },
	{ "KTLS_SHIM_VERSIONS", "1.0,1.2" },
	{ "KTLS_SHIM_VERSIONS", "1.2,1.4" },
	{ "KTLS_SHIM_VERSIONS", "13" },
	{ "KTLS_SHIM_VERSIONS", "1.3," },
	{ "KTLS_SHIM_VERSIONS", "tls1.3" },
	{ "KTLS_SHIM_VERSIONS", "1.2;1.3" },
	{ "KTLS_SHIM_VERSIONS", "1.2, 1.3" },
	/* log levels */
	{ "KTLS_SHIM_LOG", "verbose" },
	{ "KTLS_SHIM_LOG", "warn" },
	{ "KTLS_SHIM_LOG", "2" },
	{ "KTLS_SHIM_LOG", "information" },
	{ "KTLS_SHIM_LOG", "inf" },
	/* records per key */
	{ "KTLS_SHIM_REKEY_RECORDS", "23726567" },
	{ "KTLS_SHIM_REKEY_RECORDS", "-1" },
	{ "KTLS_SHIM_REKEY_RECORDS", "1k" },
	{ "KTLS_SHIM_REKEY_RECORDS", " 1000" },
	{ "KTLS_SHIM_REKEY_RECORDS", "1e6" },
	{ "KTLS_SHIM_REKEY_RECORDS", "99999999999999999999" },
	{ "KTLS_SHIM_REKEY_RECORDS", "never" },
};
#define NBAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

/* Checks outside the tables, counted here for the plan. */
#define NOTHER 9

/* No variable set: the documented defaults, no report, and the parser asked for exactly the eleven
 * documented variables (each at least once, nothing else). */
static void test_defaults(void)
{
	struct shim_config got = parse1(NULL), want = defaults();
	bool same = same_config(&got, &want);
	bool names_ok = true;
	for (size_t v = 0; v < NVARS; v++) {
		bool seen = false;
		for (int i = 0; i < nasked; i++)
			seen |= !strcmp(asked[i], vars[v]);
		if (!seen) {
			tap_diag("  never asked for %s", vars[v]);
			names_ok = false;
		}
	}
	for (int i = 0; i < nasked; i++) {
		bool known = false;
		for (size_t v = 0; v < NVARS; v++)
			known |= !strcmp(asked[i], vars[v]);
		if (!known) {
			tap_diag("  asked for an undocumented variable %s", asked[i]);
			names_ok = false;
		}
	}
	if (nreports)
		show_reports();
	tap_ok(same && names_ok && nreports == 0, "no variable set: defaults (both directions, all "
						  "four ciphers, 1.2 and 1.3, log error "
						  "to stderr, not disabled, not strict, no stats), "
						  "nothing reported, only the 11 variables read");
}

/* An empty value is the same as an unset variable: for each variable alone, then all at once. */
static void test_empty(void)
{
	char assign[NVARS][64];
	const char *all[NVARS];
	bool ok = true;
	for (size_t v = 0; v < NVARS; v++) {
		snprintf(assign[v], sizeof(assign[v]), "%s=", vars[v]);
		all[v] = assign[v];
		struct shim_config got = parse1(assign[v]), want = defaults();
		if (!same_config(&got, &want) || nreports) {
			tap_diag("  %s: not the same as unset", assign[v]);
			show_reports();
			ok = false;
		}
	}
	struct shim_config got = parse_env(all, NVARS), want = defaults();
	if (!same_config(&got, &want) || nreports) {
		tap_diag("  all eleven empty: not the same as unset");
		show_reports();
		ok = false;
	}
	tap_ok(ok,
	       "an empty value is the same as unset, for each of the 11 variables and all at once");
}

/* Every variable set to a non-default valid value at once: each one takes effect. */
static void test_all_valid_together(void)
{
	const char *all[] = { "KTLS_SHIM_DISABLE=1",
			      "KTLS_SHIM_DIRECTIONS=rx",
			      "KTLS_SHIM_CIPHERS=aes-256-gcm,chacha20-poly1305",
			      "KTLS_SHIM_VERSIONS=1.3",
			      "KTLS_SHIM_LOG=debug",
			      "KTLS_SHIM_LOG_FILE=/tmp/x.log",
			      "KTLS_SHIM_STRICT=1",
			      "KTLS_SHIM_STATS=1",
			      "KTLS_SHIM_REKEY_RECORDS=1000",
			      "KTLS_SHIM_SELFTEST=0",
			      "KTLS_SHIM_CUSTOM_BIO=0" };
	struct shim_config got = parse_env(all, 11);
	struct shim_config want = { .disable = true,
				    .dirs = { [DIR_TX] = false, [DIR_RX] = true },
				    .ciphers = GCM256 | CHACHA,
				    .tls12 = false,
				    .tls13 = true,
				    .log = LOG_DEBUG,
				    .log_file = "/tmp/x.log",
				    .strict = true,
				    .stats = true,
				    .rekey_records = 1000,
				    .selftest = false,
				    .custom_bio = false };
	bool same = same_config(&got, &want);
	if (nreports)
		show_reports();
	tap_ok(same && nreports == 0,
	       "all eleven variables set at once: each takes effect, nothing reported");
}

/* Every variable bad at once: one line per variable (ten: LOG_FILE takes any value), each
 * naming its own variable and value, and every setting at its default. */
static void test_all_bad_together(void)
{
	static const char *const all[] = {
		"KTLS_SHIM_DISABLE=maybe",	"KTLS_SHIM_DIRECTIONS=sideways",
		"KTLS_SHIM_CIPHERS=DES",	"KTLS_SHIM_VERSIONS=2.0",
		"KTLS_SHIM_LOG=loud",		"KTLS_SHIM_STRICT=very",
		"KTLS_SHIM_STATS=please",	"KTLS_SHIM_REKEY_RECORDS=lots",
		"KTLS_SHIM_SELFTEST=sometimes", "KTLS_SHIM_CUSTOM_BIO=perhaps",
	};
	const int n = (int)(sizeof(all) / sizeof(all[0]));
	struct shim_config got = parse_env(all, n), want = defaults();
	bool ok = same_config(&got, &want) && nreports == n;
	for (int i = 0; i < n && ok; i++) {
		const char *eq = strchr(all[i], '=');
		char expect[700];
		/* Find the report for this variable and check it is exactly the documented line. */
		char var[64];
		snprintf(var, sizeof(var), "%.*s", (int)(eq - all[i]), all[i]);
		want_line(expect, sizeof(expect), var, eq + 1);
		int found = 0;
		for (int r = 0; r < nreports && r < MAX_REPORTS; r++)
			found += !strcmp(reports[r], expect);
		if (found != 1) {
			tap_diag("  want exactly once: %s", expect);
			ok = false;
		}
	}
	if (!ok) {
		tap_diag("  got %d reports:", nreports);
		show_reports();
	}
	tap_ok(ok, "eight bad values at once: eight lines, one per variable, every setting at its "
		   "default");
}

/* A bad value of one variable does not disturb the valid ones around it. */
static void test_bad_among_valid(void)
{
	const char *all[] = { "KTLS_SHIM_DIRECTIONS=tx", "KTLS_SHIM_CIPHERS=AES-128-GCM,bogus",
			      "KTLS_SHIM_LOG=info", "KTLS_SHIM_VERSIONS=1.2", "KTLS_SHIM_STATS=1" };
	struct shim_config got = parse_env(all, 5), want = defaults();
	want.dirs[DIR_RX] = false;
	want.log = LOG_INFO;
	want.tls13 = false;
	want.stats = true;
	char expect[700];
	want_line(expect, sizeof(expect), "KTLS_SHIM_CIPHERS", "AES-128-GCM,bogus");
	bool same = same_config(&got, &want);
	bool one = nreports == 1 && !strcmp(reports[0], expect);
	if (!one) {
		tap_diag("  want: %s", expect);
		show_reports();
	}
	tap_ok(same && one, "one bad list among valid settings: only that variable falls back (to "
			    "all four ciphers)");
}

/* A very long bad value is cut, but the report is still one line naming the variable. */
static void test_long_value(void)
{
	static char value[4096];
	memset(value, 'x', sizeof(value) - 1);
	char assign[4200];
	snprintf(assign, sizeof(assign), "KTLS_SHIM_LOG=%s", value);
	const char *a = assign;
	struct shim_config got = parse_env(&a, 1), want = defaults();
	bool same = same_config(&got, &want);
	bool one = nreports == 1 && !strncmp(reports[0], "ktlsshim: KTLS_SHIM_LOG='xxxx", 29) &&
		   strstr(reports[0], "; using error") && !strchr(reports[0], '\n') &&
		   strlen(reports[0]) < 600;
	if (!one)
		show_reports();
	tap_ok(same && one, "a 4 KiB bad value: one line (value cut), default kept");
}

/* The parse is idempotent and starts from scratch: a second parse with fewer variables does not
 * keep anything of the first. */
static void test_reparse(void)
{
	const char *first[] = { "KTLS_SHIM_DIRECTIONS=rx", "KTLS_SHIM_LOG=off",
				"KTLS_SHIM_LOG_FILE=/tmp/a", "KTLS_SHIM_STRICT=1" };
	struct shim_config c;
	set_env(first, 4);
	config_parse(&c, fake_getenv, fake_report);
	set_env(NULL, 0);
	config_parse(&c, fake_getenv, fake_report);
	struct shim_config want = defaults();
	tap_ok(same_config(&c, &want) && nreports == 0,
	       "a second parse of an empty environment into the same struct gives the defaults");
}

/* The case of variable names matters (environment names are case-sensitive). */
static void test_name_case(void)
{
	struct shim_config got = parse1("ktls_shim_disable=1"), want = defaults();
	tap_ok(same_config(&got, &want) && nreports == 0,
	       "ktls_shim_disable=1 (lower-case name) is not KTLS_SHIM_DISABLE");
}

/* Boolean bad values report "using 0" and leave every boolean false. */
static void test_bool_defaults(void)
{
	const char *all[] = { "KTLS_SHIM_DISABLE=x", "KTLS_SHIM_STRICT=x", "KTLS_SHIM_STATS=x" };
	struct shim_config got = parse_env(all, 3);
	bool ok = !got.disable && !got.strict && !got.stats && nreports == 3;
	for (int i = 0; i < nreports && i < MAX_REPORTS && ok; i++)
		ok = strstr(reports[i], "(expected 0 or 1); using 0") != NULL;
	if (!ok)
		show_reports();
	tap_ok(ok, "bad booleans: each says 'expected 0 or 1; using 0' and stays off");
}

int main(void)
{
	tap_plan((int)(NVALID + NBAD + NOTHER));

	test_defaults();
	test_empty();
	for (size_t i = 0; i < NVALID; i++) {
		struct shim_config want = defaults();
		valid_cases[i].edit(&want);
		check_valid(valid_cases[i].assign, want);
	}
	for (size_t i = 0; i < NBAD; i++)
		check_bad(bad_cases[i][0], bad_cases[i][1]);
	test_all_valid_together();
	test_all_bad_together();
	test_bad_among_valid();
	test_long_value();
	test_reparse();
	test_name_case();
	test_bool_defaults();
	return tap_done();
}
