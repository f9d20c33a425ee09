/* SPDX-License-Identifier: Apache-2.0 */
/* openssl-peer: an OpenSSL (libssl) peer for the stand-in apps that sends TLS 1.3 KeyUpdates on
 * a schedule, to test what the shim does with them. OpenSSL itself answers a KeyUpdate that asks
 * for one and checks every record, so a peer that ends with "OK" decrypted all of ours.
 *
 *   openssl-peer --server [--port N] --cert DIR [--tls 1.2|1.3] [KEYUPDATE OPTIONS]
 *       accepts one connection and echoes every byte back until the client closes.
 *   openssl-peer --client --port N --cert DIR [--tls 1.2|1.3] --bytes N [--chunk N] [KU OPTIONS]
 *       sends N bytes of a seeded stream in chunks and checks each chunk's echo.
 *   KeyUpdate options: --key-update-every BYTES (after each BYTES written), --request (ask the
 *       peer to update too: s_client's 'K' instead of 'k').
 * Prints "PORT n" (server) and at the end "OK bytes=N key_updates=M" on stdout; exit 1 on error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct opts {
	bool server;
	int port;
	const char *cert;
	int version; /* TLS1_2_VERSION, TLS1_3_VERSION or 0 (any) */
	size_t bytes, chunk, ku_every;
	bool request;
};

static void die(const char *what)
{
	fprintf(stderr, "openssl-peer: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static size_t number(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end == 'K')
		v <<= 10, end++;
	else if (*end == 'M')
		v <<= 20, end++;
	if (*end || end == s)
		die("bad number");
	return (size_t)v;
}

static struct opts parse(int argc, char **argv)
{
	struct opts o = { .chunk = 16384 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--server"))
			o.server = true;
		else if (!strcmp(a, "--client"))
			o.server = false;
		else if (!strcmp(a, "--request"))
			o.request = true;
		else if (!v)
			die("an option wants a value");
		else if (!strcmp(a, "--port"))
			o.port = (int)number(v), i++;
		else if (!strcmp(a, "--cert"))
			o.cert = v, i++;
		else if (!strcmp(a, "--tls"))
			o.version = !strcmp(v, "1.2")	? TLS1_2_VERSION
				    : !strcmp(v, "1.3") ? TLS1_3_VERSION
							: 0,
			i++;
		else if (!strcmp(a, "--bytes"))
			o.bytes = number(v), i++;
		else if (!strcmp(a, "--chunk"))
			o.chunk = number(v), i++;
		else if (!strcmp(a, "--key-update-every"))
			o.ku_every = number(v), i++;
		else
			die("unknown option");
	}
	if (!o.cert || o.chunk == 0 || o.chunk > (1u << 20))
		die("usage: see the comment at the top of tests/peers/openssl-peer.c");
	return o;
}

/* The seeded stream: the same bytes for the sender and the checker. */
static void fill(unsigned char *p, size_t n, uint64_t *state)
{
	for (size_t i = 0; i < n; i++) {
		*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
		p[i] = (unsigned char)(*state >> 56);
	}
}

static SSL_CTX *context(const struct opts *o)
{
	SSL_CTX *ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
	char path[4096];
	if (!ctx)
		die("SSL_CTX_new");
	if (o->version && (!SSL_CTX_set_min_proto_version(ctx, o->version) ||
			   !SSL_CTX_set_max_proto_version(ctx, o->version)))
		die("protocol version");
	if (o->server) {
		snprintf(path, sizeof(path), "%s/server-rsa.crt", o->cert);
		if (SSL_CTX_use_certificate_chain_file(ctx, path) != 1)
			die("server certificate");
		snprintf(path, sizeof(path), "%s/server-rsa.key", o->cert);
		if (SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM) != 1)
			die("server key");
	} else {
		snprintf(path, sizeof(path), "%s/ca.crt", o->cert);
		if (SSL_CTX_load_verify_locations(ctx, path, NULL) != 1)
			die("CA");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	/* No tickets: the stand-in apps would drop them anyway; fewer records to think about. */
	SSL_CTX_set_num_tickets(ctx, 0);
	return ctx;
}

static int connect_or_accept(const struct opts *o)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if (!o->server) {
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
			die("connect");
		return fd;
	}
	int one = 1;
	socklen_t len = sizeof(a);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 1) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		die("listen");
	printf("PORT %d\n", ntohs(a.sin_port));
	fflush(stdout);
	int c = accept(fd, NULL, NULL);
	if (c < 0)
		die("accept");
	close(fd);
	return c;
}

/* One KeyUpdate per ku_every bytes written (TLS 1.3 only); OpenSSL sends it with the next write. */
static void maybe_key_update(SSL *ssl, const struct opts *o, size_t *since, size_t written,
			     unsigned *count)
{
	*since += written;
	if (!o->ku_every || *since < o->ku_every || SSL_version(ssl) != TLS1_3_VERSION)
		return;
	*since = 0;
	if (!SSL_key_update(ssl,
			    o->request ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED))
		die("SSL_key_update");
	(*count)++;
}

static void write_all(SSL *ssl, const unsigned char *p, size_t n)
{
	size_t done;
	if (SSL_write_ex(ssl, p, n, &done) != 1 || done != n)
		die("SSL_write");
}

int main(int argc, char **argv)
{
	struct opts o = parse(argc, argv);
	signal(SIGPIPE, SIG_IGN); /* a peer that drops the connection is an error to report */
	SSL_CTX *ctx = context(&o);
	int fd = connect_or_accept(&o);
	SSL *ssl = SSL_new(ctx);
	if (!ssl || !SSL_set_fd(ssl, fd))
		die("SSL_new");
	if ((o.server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1)
		die("handshake");

	unsigned char *buf = malloc(o.chunk), *want = malloc(o.chunk);
	size_t total = 0, since = 0, n;
	unsigned updates = 0;
	uint64_t seed = 0x6b746c73; /* "ktls" */
	if (!buf || !want)
		die("out of memory");
	if (o.server) {
		/* Echo until the client's close_notify (or EOF). */
		while (SSL_read_ex(ssl, buf, o.chunk, &n) == 1) {
			write_all(ssl, buf, n);
			total += n;
			maybe_key_update(ssl, &o, &since, n, &updates);
		}
		int err = SSL_get_error(ssl, 0);
		if (err != SSL_ERROR_ZERO_RETURN)
			die("SSL_read");
	} else {
		while (total < o.bytes) {
			size_t len = o.bytes - total < o.chunk ? o.bytes - total : o.chunk;
			uint64_t check = seed;
			fill(buf, len, &seed);
			write_all(ssl, buf, len);
			maybe_key_update(ssl, &o, &since, len, &updates);
			fill(want, len, &check);
			for (size_t got = 0; got < len; got += n)
				if (SSL_read_ex(ssl, buf + got, len - got, &n) != 1)
					die("SSL_read of the echo");
			if (memcmp(buf, want, len))
				die("the echo differs from what was sent");
			total += len;
		}
	}
	SSL_shutdown(ssl);
	printf("OK bytes=%zu key_updates=%u\n", total, updates);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	free(buf);
	free(want);
	return 0;
}
