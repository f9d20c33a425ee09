/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for log_format (shim/log.c): the prefix, the newline, and the cut of a long line.
 * TAP output. */
#include <stdarg.h>
#include <string.h>

#include "log.h"
#include "tap.h"

#define PLAN 5

static size_t fmt(char *line, size_t cap, int pid, const char *f, ...)
	__attribute__((format(printf, 4, 5)));
static size_t fmt(char *line, size_t cap, int pid, const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	size_t n = log_format(line, cap, pid, f, ap);
	va_end(ap);
	return n;
}

int main(void)
{
	char line[1024], big[1100];
	size_t n;

	tap_plan(PLAN);
	n = fmt(line, sizeof(line), 4242, "TX in the kernel (%s)", "AES-128-GCM");
	tap_ok(n == 47 && !memcmp(line, "ktlsshim[4242]: TX in the kernel (AES-128-GCM)\n", 47),
	       "prefix, message, newline: %zu bytes", n);

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	n = fmt(line, sizeof(line), 7, "%s", big);
	tap_ok(n == sizeof(line) - 1 && line[n - 1] == '\n' && line[n - 2] == 'a' &&
		       !memcmp(line, "ktlsshim[7]: aaa", 16),
	       "a message too long is cut to 1023 bytes, the newline kept (%zu)", n);

	/* The longest message that fits whole: 1024 - 1 (newline) - 1 (vsnprintf's NUL) - prefix. */
	size_t fits = sizeof(line) - 2 - strlen("ktlsshim[7]: ");
	big[fits] = 0;
	n = fmt(line, sizeof(line), 7, "%s", big);
	tap_ok(n == sizeof(line) - 1 && line[n - 1] == '\n' && line[n - 2] == 'a',
	       "a message of exactly the room left: whole (%zu)", n);
	/* One byte more: vsnprintf cuts it and ends with a NUL, which must not reach the log. */
	big[fits] = 'a';
	big[fits + 1] = 0;
	n = fmt(line, sizeof(line), 7, "%s", big);
	tap_ok(n == sizeof(line) - 1 && line[n - 1] == '\n' && memchr(line, 0, n) == NULL,
	       "one byte more than the room: cut by one, no NUL in the line (%zu)", n);
	big[fits - 1] = 0;
	n = fmt(line, sizeof(line), 7, "%s", big);
	tap_ok(n == sizeof(line) - 2 && line[n - 1] == '\n',
	       "one byte shorter: one byte less (%zu)", n);
	return tap_done();
}
