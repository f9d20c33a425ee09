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

/* One direction before and at the hand-off (who owns it is ks.owner[]). */
struct conn_dir {
	struct seq_dir seq; /* its records, framed and counted (capture.c) */
	const char *why;    /* why it stays in user space, for the log */
	int code;	    /* the same as KTLSSHIM_ERR_*, for the API */
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
	/* The application's export-keys callback, chained. */
	mbedtls_ssl_export_keys_t *app_export;
	void *app_export_p;

	/* Secrets, from the export-keys callback; wiped once both directions are decided. */
	int prf_type;
	unsigned char master[48];
	unsigned char randoms[64]; /* client_random || server_random */
	unsigned char secret[SEC_COUNT][KEYS_MAX_SECRET];
	size_t secret_len[SEC_COUNT];

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
/* The secrets exported for the hand-off, wiped. */
void conn_wipe_secrets(struct conn *c);
/* ktlsshim_debug_count: copies of bytes in every tracked connection's memory. */
size_t conn_debug_count(const void *bytes, size_t len);

#endif
