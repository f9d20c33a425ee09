/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny TAP producer for the unit tests: tap_plan(N) first, then one tap_ok/tap_mem_eq per check,
 * and `return tap_done();` from main (non-zero when a check failed or the count is off the plan).
 * Header-only and static, so each test program has its own counters. */
#ifndef KTLSSHIM_TAP_H
#define KTLSSHIM_TAP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct tap_state {
	int planned, run, failed;
};

static inline struct tap_state *tap_state(void)
{
	static struct tap_state st;
	return &st;
}

static inline void tap_plan(int n)
{
	tap_state()->planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void tap_vresult(int pass, const char *fmt, va_list ap)
{
	struct tap_state *st = tap_state();

	st->run++;
	if (!pass)
		st->failed++;
	printf("%s %d - ", pass ? "ok" : "not ok", st->run);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
}

/* One check: prints "ok K - ..." or "not ok K - ..."; returns pass, for callers' diagnostics. */
__attribute__((format(printf, 2, 3))) static inline int tap_ok(int pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass != 0, fmt, ap);
	va_end(ap);
	return pass != 0;
}

/* A "# ..." diagnostic line (TAP consumers show it, never count it). */
__attribute__((format(printf, 1, 2))) static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static inline void tap_diag_hex(const char *what, const void *p, size_t n)
{
	const unsigned char *b = p;

	printf("#   %-5s ", what);
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
	putchar('\n');
}

/* One check that n bytes equal the expected ones; on a mismatch both are printed as hex. */
__attribute__((format(printf, 4, 5))) static inline int
tap_mem_eq(const void *got, const void *want, size_t n, const char *fmt, ...)
{
	int pass = got != NULL && want != NULL && memcmp(got, want, n) == 0;
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, fmt, ap);
	va_end(ap);
	if (!pass && got != NULL && want != NULL) {
		tap_diag_hex("got", got, n);
		tap_diag_hex("want", want, n);
	}
	return pass;
}

/* Hex text (whitespace ignored) to bytes; returns the byte count, or 0 on bad input or overflow.
 * For writing test vectors the way RFCs print them. */
static inline size_t tap_unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (; *hex != '\0'; hex++) {
		int v;
		char c = *hex;

		if (c == ' ' || c == '\n' || c == '\t' || c == ':')
			continue;
		if (c >= '0' && c <= '9')
			v = c - '0';
		else if (c >= 'a' && c <= 'f')
			v = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v = c - 'A' + 10;
		else
			return 0;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap)
			return 0;
		out[n++] = (unsigned char)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? n : 0;
}

/* Exit status for main: 0 only when every planned check ran and passed. */
static inline int tap_done(void)
{
	struct tap_state *st = tap_state();

	if (st->run != st->planned)
		tap_diag("planned %d checks but ran %d", st->planned, st->run);
	if (st->failed > 0)
		tap_diag("failed %d of %d checks", st->failed, st->run);
	fflush(stdout);
	return st->failed > 0 || st->run != st->planned;
}

#endif
