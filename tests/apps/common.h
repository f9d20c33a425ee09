/* SPDX-License-Identifier: Apache-2.0 */
/* What mbed-server and mbed-client share: options, the Mbed TLS setup, and one connection's
 * exchange (handshake, verifiable data phases, shutdown). These apps are ordinary Mbed TLS 3.6
 * programs that know nothing of ktlsshim: public API, mbedtls_net_* sockets, set_bio. */
#ifndef APPS_COMMON_H
#define APPS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>

#include "bio.h"

/* The apps are also built against Mbed TLS 2.28 (build/apps228): TLS 1.2 only, and a few 3.6
 * names spelled the 2.28 way. */
#if MBEDTLS_VERSION_MAJOR == 2
#define MBEDTLS_SSL_VERSION_TLS1_2		    0x0303
#define MBEDTLS_SSL_VERSION_TLS1_3		    0x0304
#define mbedtls_ssl_get_version_number(ssl)	    MBEDTLS_SSL_VERSION_TLS1_2
#define MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET 1 /* TLS 1.3's: never returned by 2.28 */
#define mbedtls_pk_parse_keyfile(ctx, path, pwd, rng, p_rng) \
	mbedtls_pk_parse_keyfile(ctx, path, pwd)
#endif

enum role { ROLE_CLIENT = 1, ROLE_SERVER = 2 };

struct opts {
	enum role role;
	const char *host, *port, *port_file, *cert_dir, *keylog;
	/* Replace the generated stream of one direction by a file (for peers that are not ours). */
	const char *send_file, *recv_file;
	int tls_version; /* mbedtls_ssl_protocol_version, 0 = both 1.2 and 1.3 */
	int suite[2];	 /* one ciphersuite id and the list's 0, or suite[0] == 0 */
	bool nonblock, resume, client_cert, hrr, threads, echo;
	uint32_t read_timeout_ms, delay_ms;
	int tickets, chain, connections, parallel, serve;
	size_t chunk;
	uint64_t pre, up, down; /* bytes: pre-data each way, client->server, server->client */
	enum bio_mode bio;
};

/* Parses argv for ROLE; prints usage and exits on --help (0) or a bad option (2). */
void opts_parse(struct opts *o, enum role role, int argc, char **argv);

/* Process-wide setup for either role: RNG, PSA, certificates and the common part of the
 * config (versions, suite, groups, authentication, timeout). Exits on failure. */
mbedtls_ssl_config *tls_setup(const struct opts *o);
/* The process's RNG, for Mbed TLS calls that take one. */
int tls_rng(void *ctx, unsigned char *out, size_t len);
/* mbedtls_ssl_init + setup, and what an app sets once per context (keylog, hostname). */
void tls_context_init(mbedtls_ssl_context *ssl, const struct opts *o);

/* Prints "ERROR <what>: -0x.... <text>" and exits 1 (process-level failures). */
void die_mbedtls(const char *what, int ret);
/* Prints "ERROR <what>: <strerror(errno)>" and exits 1. */
void die_errno(const char *what);

struct conn {
	const struct opts *o;
	int idx; /* printed in the CONN line */
	mbedtls_ssl_context *ssl;
	mbedtls_net_context net; /* connected; conn_run frees it */
	uint16_t client_port;	 /* seeds the streams: both ends know it, unique per connection */
	bool full_handshake;	 /* client: the server's certificate chain was verified */
	bool resumed;
	/* Client with --resume: the newest session seen, for the next connection. */
	mbedtls_ssl_session *session;
	bool got_session;
	int timeouts;		 /* MBEDTLS_ERR_SSL_TIMEOUT returns retried in data phases */
	const char *peer_close;	 /* how the peer ended: "notify" (close_notify) or "eof" */
	uint64_t sent, received; /* bulk bytes (up/down phases) */
	unsigned char *buf;	 /* o->chunk bytes */
	struct bio *bio;	 /* --bio's state (NULL: none) */
	/* --bio: its callbacks' calls in the handshake */
	unsigned long bio_calls_hs;
};

/* The server's handshake callbacks run on the connection's thread: this finds its conn. */
extern _Thread_local struct conn *conn_current;

/* Runs one connection on c->net with the context c->ssl (fresh or session_reset by the caller):
 * handshake, pre-data, up, down, shutdown; prints the CONN line, or an ERROR line and returns -1.
 * Frees c->net. */
int conn_run(struct conn *c);

#endif
