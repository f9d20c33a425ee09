/* SPDX-License-Identifier: Apache-2.0 */
/* Test-only witness for tests/realapps.bats: preloaded IN FRONT of the shim
 * (LD_PRELOAD=libtrace-write.so:libktlsshim.so), it sees every mbedtls_ssl_write the program makes
 * and what it got back, and forwards the call unchanged to the next definition (the shim's, or
 * Mbed TLS's without the shim). At exit it appends one line to $TRACE_WRITE_FILE:
 *
 *   trace-write pid=N calls=N bytes=N want_write=N null_retries=N null_completed=N null_mismatch=N
 *
 * want_write: calls that returned MBEDTLS_ERR_SSL_WANT_WRITE; null_retries: calls with a NULL
 * buffer (lighttpd's retry after WANT_WRITE); null_completed: those that returned > 0;
 * null_mismatch: those that returned a positive length other than the one asked for (lighttpd
 * marks that many bytes written, so anything but the length of the original write loses data). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define WANT_WRITE (-0x6880) /* MBEDTLS_ERR_SSL_WANT_WRITE */

typedef int write_fn(void *ssl, const unsigned char *buf, size_t len);

static unsigned long calls, bytes, want_write, null_retries, null_completed, null_mismatch;

__attribute__((visibility("default"))) int mbedtls_ssl_write(void *ssl, const unsigned char *buf,
							     size_t len)
{
	static write_fn *next;
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "mbedtls_ssl_write");
	int ret = next(ssl, buf, len);
	/* Single-threaded programs (lighttpd); plain counters are enough. */
	calls++;
	if (ret > 0)
		bytes += (unsigned long)ret;
	if (ret == WANT_WRITE)
		want_write++;
	if (!buf) {
		null_retries++;
		if (ret > 0) {
			null_completed++;
			if ((size_t)ret != len)
				null_mismatch++;
		}
	}
	return ret;
}

__attribute__((destructor)) static void report(void)
{
	const char *path = getenv("TRACE_WRITE_FILE");
	if (!path)
		return;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	dprintf(fd,
		"trace-write pid=%d calls=%lu bytes=%lu want_write=%lu null_retries=%lu "
		"null_completed=%lu null_mismatch=%lu\n",
		(int)getpid(), calls, bytes, want_write, null_retries, null_completed,
		null_mismatch);
	close(fd);
}
