/* SPDX-License-Identifier: Apache-2.0 */
/* http-load: the HTTPS load client of tools/bench-daemon. CLIENTS threads each fetch PATH from
 * 127.0.0.1:PORT over TLS 1.3 (AES-128-GCM, OpenSSL, the server's certificate checked against
 * CA) in a loop, for SECONDS or until REQUESTS responses came in all; with --close each request
 * is a new connection and a full handshake (no resumption), else one keep-alive connection per
 * thread, connected (handshake done) before the clock starts. Every response must be "200" with a
 * Content-Length, and its body is read whole. One client for every server compared, so its own
 * cost is the same in each run.
 *
 *   http-load --port N --cafile F --path P [--clients C] [--close] (--seconds S | --requests R)
 * Prints "start" when the clock starts (the caller samples the server there), then at the end
 * "requests=N bytes=B seconds=S connections=C errors=E" (bytes: bodies only; connections: made
 * after the start); exit 1 when any request failed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

static struct {
	int port, clients;
	const char *cafile, *path;
	bool close;
	double seconds;
	long requests;
} opt = { .clients = 1 };

static SSL_CTX *ctx;
static atomic_long done, bytes, errors, started, conns;
static double t_end; /* CLOCK_MONOTONIC seconds; 0 = run by request count */
/* Twice: every keep-alive connection made; then t_end set, the clock runs. */
static pthread_barrier_t ready;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A TLS connection to the server, or NULL. */
static SSL *dial(int *fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)opt.port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;
	*fd = socket(AF_INET, SOCK_STREAM, 0);
	if (*fd < 0)
		return NULL;
	/* Requests are small writes: no Nagle wait between them and the delayed ACK. */
	setsockopt(*fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	SSL *s = NULL;
	if (connect(*fd, (struct sockaddr *)&a, sizeof(a)) == 0 && (s = SSL_new(ctx)) &&
	    SSL_set_fd(s, *fd) == 1 && SSL_set_tlsext_host_name(s, "localhost") == 1 &&
	    SSL_connect(s) == 1)
		return s;
	SSL_free(s);
	close(*fd);
	return NULL;
}

/* Reads one response: the headers into buf, then Content-Length bytes of body. Its body length,
 * or -1. */
static long response(SSL *s)
{
	char buf[16384];
	size_t have = 0;
	char *end = NULL;
	while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
		if (have == sizeof(buf))
			return -1;
		int n = SSL_read(s, buf + have, (int)(sizeof(buf) - have));
		if (n <= 0)
			return -1;
		have += (size_t)n;
	}
	*end = 0;
	const char *cl = strcasestr(buf, "\r\nContent-Length:");
	if (strncmp(buf, "HTTP/1.1 200", 12) || !cl)
		return -1;
	long len = atol(cl + 17);
	long left = len - (long)(have - (size_t)(end + 4 - buf));
	while (left > 0) {
		int n = SSL_read(s, buf, left < (long)sizeof(buf) ? (int)left : (int)sizeof(buf));
		if (n <= 0)
			return -1;
		left -= n;
	}
	return left == 0 ? len : -1;
}

static bool more(void)
{
	return t_end ? now() < t_end : atomic_fetch_add(&started, 1) < opt.requests;
}

static void *client(void *arg)
{
	(void)arg;
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", opt.path,
			 opt.close ? "Connection: close\r\n" : "");
	int fd = -1;
	SSL *s = opt.close ? NULL : dial(&fd);
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&ready);
	while (more()) {
		if (!s && !(s = dial(&fd))) {
			atomic_fetch_add(&errors, 1);
			break;
		}
		if (opt.close)
			atomic_fetch_add(&conns, 1);
		long len = SSL_write(s, req, n) == n ? response(s) : -1;
		if (len < 0)
			atomic_fetch_add(&errors, 1);
		else if (!t_end || now() < t_end) {
			atomic_fetch_add(&done, 1);
			atomic_fetch_add(&bytes, len);
		}
		if (len < 0 || opt.close) {
			SSL_free(
				s); /* no close_notify: the server closes after Connection: close */
			close(fd);
			s = NULL;
		}
	}
	if (s) {
		SSL_shutdown(s);
		SSL_free(s);
		close(fd);
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: http-load --port N --cafile F --path P [--clients C] [--close] "
			"(--seconds S | --requests R)\n");
	exit(2);
}

static void parse(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--close")) {
			opt.close = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--port"))
			opt.port = atoi(v);
		else if (!strcmp(a, "--cafile"))
			opt.cafile = v;
		else if (!strcmp(a, "--path"))
			opt.path = v;
		else if (!strcmp(a, "--clients"))
			opt.clients = atoi(v);
		else if (!strcmp(a, "--seconds"))
			opt.seconds = atof(v);
		else if (!strcmp(a, "--requests"))
			opt.requests = atol(v);
		else
			usage();
	}
	if (opt.port <= 0 || !opt.cafile || !opt.path || opt.clients < 1 || opt.clients > 1024 ||
	    (opt.seconds > 0) == (opt.requests > 0))
		usage();
}

int main(int argc, char **argv)
{
	parse(argc, argv);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") ||
	    SSL_CTX_load_verify_locations(ctx, opt.cafile, NULL) != 1) {
		fprintf(stderr, "http-load: cannot set up OpenSSL\n");
		return 1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	pthread_t *t = calloc((size_t)opt.clients, sizeof(*t));
	pthread_barrier_init(&ready, NULL, (unsigned)opt.clients + 1);
	for (int i = 0; i < opt.clients; i++)
		if (pthread_create(&t[i], NULL, client, NULL)) {
			fprintf(stderr, "http-load: no thread\n");
			return 1;
		}
	pthread_barrier_wait(&ready);
	printf("start\n");
	fflush(stdout);
	double t0 = now();
	t_end = opt.seconds > 0 ? t0 + opt.seconds : 0;
	pthread_barrier_wait(&ready);
	for (int i = 0; i < opt.clients; i++)
		pthread_join(t[i], NULL);
	double secs = t_end ? opt.seconds : now() - t0;
	printf("requests=%ld bytes=%ld seconds=%.3f connections=%ld errors=%ld\n",
	       atomic_load(&done), atomic_load(&bytes), secs, atomic_load(&conns),
	       atomic_load(&errors));
	free(t);
	SSL_CTX_free(ctx);
	return atomic_load(&errors) ? 1 : 0;
}
