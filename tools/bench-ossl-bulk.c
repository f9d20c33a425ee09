/* SPDX-License-Identifier: Apache-2.0 */
/* ossl-bulk: OpenSSL's own kTLS as the reference a user could switch to. The same transfer as the
 * stand-in apps (--send-file/--recv-file in --chunk writes and reads, close_notify both ways) with
 * libssl; kTLS is whatever the OpenSSL configuration asks for (tools/bench sets OPENSSL_CONF to a
 * file with "Options = KTLS"). Prints "DONE bytes=N ktls_tx=0|1 ktls_rx=0|1" per connection: what
 * OpenSSL really offloaded (3.0 offloads TLS 1.2 both ways, TLS 1.3 sending only).
 *
 *   ossl-bulk --server [--port N] [--port-file F] --cert DIR [--tls 1.2|1.3] (--send-file F|--recv-file F)
 *   ossl-bulk --client --port N --cert DIR ... (the same)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench-net.h"
#include "bench-probe.h"

static const char usage[] =
	"usage: ossl-bulk --server|--client [--port N] [--port-file F] --cert DIR [--tls 1.2|1.3]\n"
	"                 [--send-file F | --recv-file F] [--chunk BYTES] [--connections N]\n";

static void die_ssl(const char *what)
{
	fprintf(stderr, "ossl-bulk: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static SSL_CTX *context(const struct bench_opts *o)
{
	char crt[4096], key[4096];
	SSL_CTX *ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
	int v = o->tls == 13 ? TLS1_3_VERSION : TLS1_2_VERSION;
	if (!ctx || !SSL_CTX_set_min_proto_version(ctx, v) ||
	    !SSL_CTX_set_max_proto_version(ctx, v))
		die_ssl("SSL_CTX");
	/* AES-128-GCM like every other case; no tickets, as the stand-in apps send none. */
	if (!SSL_CTX_set_cipher_list(ctx, "ECDHE-RSA-AES128-GCM-SHA256") ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") ||
	    !SSL_CTX_set_num_tickets(ctx, 0))
		die_ssl("cipher");
	if (o->server) {
		snprintf(crt, sizeof(crt), "%s/server-rsa.crt", o->cert);
		snprintf(key, sizeof(key), "%s/server-rsa.key", o->cert);
		if (SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
			die_ssl("server certificate");
	} else {
		snprintf(crt, sizeof(crt), "%s/ca.crt", o->cert);
		if (SSL_CTX_load_verify_locations(ctx, crt, NULL) != 1)
			die_ssl("CA");
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
}

static int ssl_fail(SSL *ssl, int ret, const char *what)
{
	int e = SSL_get_error(ssl, ret);
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	fprintf(stderr, "ossl-bulk: %s: SSL error %d (%s)\n", what, e, strerror(errno));
	ERR_print_errors_fp(stderr);
	exit(1);
}

static uint64_t transfer(SSL *ssl, const struct bench_opts *o, unsigned char *buf)
{
	uint64_t total = 0;
	int file = bench_open(o->send_file ? o->send_file : o->recv_file, !o->send_file), n;
	if (o->send_file) {
		ssize_t r;
		while ((r = read(file, buf, o->chunk)) > 0) {
			/* SSL_write writes all of it (no partial writes unless asked for). */
			if ((n = SSL_write(ssl, buf, (int)r)) <= 0)
				ssl_fail(ssl, n, "SSL_write");
			total += (uint64_t)r;
		}
		if (r < 0)
			die_ssl("read --send-file");
		/* close_notify first, then wait for the peer's. */
		if (SSL_shutdown(ssl) < 0)
			die_ssl("SSL_shutdown");
		while ((n = SSL_read(ssl, buf, (int)o->chunk)) > 0)
			;
		if (n < 0)
			ssl_fail(ssl, n, "waiting for close_notify");
	} else {
		while ((n = SSL_read(ssl, buf, (int)o->chunk)) > 0) {
			probe_data_read();
			if (file >= 0 && write(file, buf, (size_t)n) != n)
				die_ssl("write --recv-file");
			total += (uint64_t)n;
		}
		ssl_fail(ssl, n, "SSL_read");
		if (SSL_shutdown(ssl) < 0)
			die_ssl("SSL_shutdown (answer)");
	}
	if (file >= 0)
		close(file);
	return total;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	bench_parse(&o, argc, argv, usage);
	if (!o.cert) {
		fputs(usage, stderr);
		return 2;
	}
	unsigned char *buf = malloc(o.chunk);
	if (!buf)
		die_ssl("malloc");
	SSL_CTX *ctx = context(&o);
	int lfd = o.server ? bench_listen(&o) : -1;
	for (int i = 0; i < o.connections; i++) {
		int fd = o.server ? bench_accept(lfd) : bench_connect(&o);
		SSL *ssl = SSL_new(ctx);
		if (!ssl || !SSL_set_fd(ssl, fd) || (!o.server && !SSL_set1_host(ssl, "localhost")))
			die_ssl("SSL_new");
		probe_hs_begin();
		int ret = o.server ? SSL_accept(ssl) : SSL_connect(ssl);
		if (ret != 1)
			ssl_fail(ssl, ret, "handshake");
		probe_hs_end();
		int ktx = BIO_get_ktls_send(SSL_get_wbio(ssl)) > 0;
		int krx = BIO_get_ktls_recv(SSL_get_rbio(ssl)) > 0;
		uint64_t bytes = transfer(ssl, &o, buf);
		printf("DONE bytes=%llu ktls_tx=%d ktls_rx=%d\n", (unsigned long long)bytes, ktx,
		       krx);
		SSL_free(ssl);
		close(fd);
	}
	SSL_CTX_free(ctx);
	probe_report();
	return 0;
}
