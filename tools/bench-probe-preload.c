/* SPDX-License-Identifier: Apache-2.0 */
/* libbenchprobe.so: preloaded before the shim (or alone, for plain Mbed TLS), it times each
 * mbedtls_ssl_handshake from its first call to its first 0 on a context: the handshake plus, when
 * the shim is loaded behind it, the shim's hand-off (which happens inside that call). The calls
 * Mbed TLS makes to itself also land here; a context already done is simply passed through until
 * session_reset/setup/free starts a new connection on it; mbedtls_ssl_read notes when data last
 * arrived. See bench-probe.h for what is reported.
 *
 * With BENCH_PROBE_NODELAY=1 it also sets TCP_NODELAY on every connected and accepted socket: the
 * stand-in apps do not, so each handshake flight written as several records waits for a delayed
 * ACK (tens of milliseconds per handshake on loopback) and that wait, not the handshake or the
 * hand-off, would be what a short-connection benchmark measures. */
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "bench-probe.h"

#define EXPORT __attribute__((visibility("default")))

/* The contexts whose handshake is done (few: one per connection in flight). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const void *done[1024];

static int is_done(const void *ssl)
{
	int r = 0;
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < sizeof(done) / sizeof(done[0]) && !r; i++)
		r = done[i] == ssl;
	pthread_mutex_unlock(&lock);
	return r;
}

static void set_done(const void *ssl, int on)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++) {
		if (on ? done[i] == NULL : done[i] == ssl) {
			done[i] = on ? ssl : NULL;
			if (on)
				break;
		}
	}
	pthread_mutex_unlock(&lock);
}

static void *next(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);
	if (!f)
		abort(); /* preloaded into something that is not an Mbed TLS program */
	return f;
}

EXPORT int mbedtls_ssl_handshake(void *ssl)
{
	static int (*real)(void *);
	if (!real)
		*(void **)&real = next("mbedtls_ssl_handshake");
	if (is_done(ssl))
		return real(ssl);
	probe_hs_begin();
	int ret = real(ssl);
	if (ret == 0) {
		probe_hs_end();
		set_done(ssl, 1);
	}
	return ret;
}

EXPORT int mbedtls_ssl_session_reset(void *ssl)
{
	static int (*real)(void *);
	if (!real)
		*(void **)&real = next("mbedtls_ssl_session_reset");
	set_done(ssl, 0);
	return real(ssl);
}

EXPORT int mbedtls_ssl_setup(void *ssl, const void *conf)
{
	static int (*real)(void *, const void *);
	if (!real)
		*(void **)&real = next("mbedtls_ssl_setup");
	set_done(ssl, 0);
	return real(ssl, conf);
}

EXPORT void mbedtls_ssl_free(void *ssl)
{
	static void (*real)(void *);
	if (!real)
		*(void **)&real = next("mbedtls_ssl_free");
	set_done(ssl, 0);
	real(ssl);
}

EXPORT int mbedtls_ssl_read(void *ssl, unsigned char *buf, size_t len)
{
	static int (*real)(void *, unsigned char *, size_t);
	if (!real)
		*(void **)&real = next("mbedtls_ssl_read");
	int ret = real(ssl, buf, len);
	if (ret > 0)
		probe_data_read();
	return ret;
}

static int nodelay_wanted(void)
{
	static int wanted = -1;
	if (wanted < 0) {
		const char *e = getenv("BENCH_PROBE_NODELAY");
		wanted = e && *e == '1';
	}
	return wanted;
}

static void nodelay(int fd)
{
	int one = 1;
	if (fd >= 0 && nodelay_wanted())
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	static int (*real)(int, const struct sockaddr *, socklen_t);
	if (!real)
		*(void **)&real = next("connect");
	int ret = real(fd, addr, len);
	if (ret == 0)
		nodelay(fd);
	return ret;
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	static int (*real)(int, struct sockaddr *, socklen_t *);
	if (!real)
		*(void **)&real = next("accept");
	int ret = real(fd, addr, len);
	nodelay(ret);
	return ret;
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	static int (*real)(int, struct sockaddr *, socklen_t *, int);
	if (!real)
		*(void **)&real = next("accept4");
	int ret = real(fd, addr, len, flags);
	nodelay(ret);
	return ret;
}

__attribute__((destructor)) static void report(void)
{
	probe_report();
}
