/* SPDX-License-Identifier: Apache-2.0 */
/* Per-context state: what the shim knows about one mbedtls_ssl_context, and the map that finds
 * it by the context's address. */
#ifndef KTLSSHIM_CONN_H
#define KTLSSHIM_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <mbedtls/ssl.h>

#include "bioproof.h"
#include "dir.h"
#include "keys.h"
#include "ksock.h"
#include "seq.h"

enum secret_slot { SEC_CLIENT_HS, SEC_SERVER_HS, SEC_CLIENT_APP, SEC_SERVER_APP, SEC_COUNT };

/* What only the hand-off needs: the secrets Mbed TLS exported and each direction's records, framed
 * and counted (capture.c). Allocated with each connection, wiped and freed as soon as both
 * directions are decided: an offloaded connection holds none of it. */
struct conn_pre {
	int prf_type;
	unsigned char master[48];
	unsigned char randoms[64]; /* client_random || server_random */
	unsigned char secret[SEC_COUNT][KEYS_MAX_SECRET];
	size_t secret_len[SEC_COUNT];
	struct seq_dir seq[DIR_COUNT];
};

/* Why a direction stays in user space (who owns it is ks.owner[]). */
struct conn_dir {
	const char *why; /* for the log */
	int code;	 /* the same as KTLSSHIM_ERR_*, for the API */
};

struct conn {
	struct conn *next; /* hash chain */

	/* The application's BIO, called by the shim's wrappers. */
	void *app_bio;
	mbedtls_ssl_send_t *app_send;
	mbedtls_ssl_recv_t *app_recv;
	mbedtls_ssl_recv_timeout_t *app_recv_timeout;
	bool bio_wrapped;
	/* A BIO other than Mbed TLS's plain socket functions: the socket behind it must be proven
	 * (bioproof.h) from the first BIO call to the hand-off. */
	bool custom;
	bool bio_called; /* a BIO call was made on this connection */
	struct bioproof proof;
	const char *bio_dir_why[DIR_COUNT]; /* a direction the proof keeps in Mbed TLS, and why */
	bool bio_deferred; /* a BIO's unseen answer was asked again at the next call (handoff.c) */
	unsigned defer_forks; /* fork() calls counted when it was deferred */
	/* The application's export-keys callback, chained. */
	mbedtls_ssl_export_keys_t *app_export;
	void *app_export_p;

	/* The hand-off's state; NULL once both directions are decided (or when it could not be
	 * allocated: then nothing is offloaded). */
	struct conn_pre *pre;

	struct conn_dir dir[DIR_COUNT];
	bool handshake_done;  /* mbedtls_ssl_handshake() returned 0 */
	bool send_incomplete; /* the last f_send left bytes in Mbed TLS's output buffer */
	bool write_pending;   /* the last top-level call returned WANT_WRITE */
	bool user_data_read;  /* a top-level read returned application data from Mbed TLS */
	bool logged, ulp;
	bool strict_failed; /* KTLS_SHIM_STRICT refused a connection that stayed in user space */
	bool manual;	    /* ktlsshim_set_manual: only the API hands this context off */
	/* The socket, its owners per direction, the context (ks.ssl: the map's key), its config and
	 * TLS version: what the kernel-side I/O needs. */
	struct ksock ks;
};

/* Lookup by context address; NULL when the shim does not know it. */
struct conn *conn_find(const mbedtls_ssl_context *ssl);
struct conn *conn_get(mbedtls_ssl_context *ssl); /* creates on first use */
void conn_drop(const mbedtls_ssl_context *ssl);	 /* forgets and frees */
/* A new connection on the same context: everything but the BIO, the config and the callbacks. */
void conn_reset(struct conn *c);
/* Both directions are decided: the hand-off's state wiped and freed. */
void conn_release_pre(struct conn *c);
/* ktlsshim_debug_count: copies of bytes in every tracked connection's memory. */
size_t conn_debug_count(const void *bytes, size_t len);

#endif
