/* SPDX-License-Identifier: Apache-2.0 */
/* Test-only timing for tests/realapps-bio.bats: preloaded IN FRONT of the shim
 * (LD_PRELOAD=libslow-send.so:libktlsshim.so), it sleeps SLOW_SEND_MS milliseconds after each of
 * the first SLOW_SEND_COUNT send() calls of the process, then returns what the next send() (the
 * shim's, or libc's) returned. The peer's answer to each handshake flight is then already waiting
 * when the program reads: a BIO that polls only after EAGAIN (libgit2 with a server timeout)
 * goes through its handshake without ever polling, on a socket it has made non-blocking. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

typedef ssize_t send_fn(int fd, const void *buf, size_t len, int flags);

__attribute__((visibility("default"))) ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static send_fn *next;
	static long left = -1, ms;
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "send");
	ssize_t ret = next(fd, buf, len, flags);
	/* Single-threaded programs (git-client); plain counters are enough. */
	if (left < 0) {
		const char *c = getenv("SLOW_SEND_COUNT"), *m = getenv("SLOW_SEND_MS");
		left = c ? atol(c) : 0;
		ms = m ? atol(m) : 0;
	}
	if (left > 0) {
		left--;
		struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
		nanosleep(&t, NULL);
	}
	return ret;
}
