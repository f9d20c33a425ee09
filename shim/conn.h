/* SPDX-License-Identifier: Apache-2.0 */
/* Per-context state: what the shim knows about one mbedtls_ssl_context, and the hand-off. */
#ifndef KTLSSHIM_CONN_H
#define KTLSSHIM_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <mbedtls/ssl.h>

#include "keys.h"
#include "ktls.h"
#include "seq.h"

enum dir_state {
	DIR_UNDECIDED = 0, /* Mbed TLS carries it; the shim may still hand it to the kernel */
	DIR_KERNEL,        /* the kernel owns it for the rest of the connection */
	DIR_USER,          /* stays in Mbed TLS (refused or not possible) */
	DIR_EXPORTED,      /* handed to the application (ktlsshim_export): nobody here touches it */
};

enum secret_slot { SEC_CLIENT_HS, SEC_SERVER_HS, SEC_CLIENT_APP, SEC_SERVER_APP, SEC_COUNT };

/* Kernel-side I/O state: bytes a write took but the socket did not (Mbed TLS's WANT_WRITE
 * contract), and a control record read in pieces. */
struct io_state {
	unsigned char *pending;
	size_t pending_len, pending_off; /* unsent bytes of the taken record */
	size_t pending_result;            /* what the completing call returns */
	unsigned char *ctrl;
	size_t ctrl_len;
	unsigned char ctrl_type;
	bool rx_partial; /* the last data read ended inside a record: the kernel holds the rest */
};

struct conn {
	mbedtls_ssl_context *ssl;
	struct conn *next; /* hash chain */
	const mbedtls_ssl_config *conf;

	/* The application's BIO, called by the shim's wrappers. */
	void *app_bio;
	mbedtls_ssl_send_t *app_send;
	mbedtls_ssl_recv_t *app_recv;
	mbedtls_ssl_recv_timeout_t *app_recv_timeout;
	bool bio_wrapped;
	/* The application's export-keys callback, chained. */
	mbedtls_ssl_export_keys_t *app_export;
	void *app_export_p;

	/* Secrets, from the export-keys callback; wiped once both directions are decided. */
	uint16_t version;
	int prf_type;
	unsigned char master[48];
	unsigned char randoms[64]; /* client_random || server_random */
	unsigned char secret[SEC_COUNT][KEYS_MAX_SECRET];
	size_t secret_len[SEC_COUNT];

	struct seq_dir tx, rx;
	bool handshake_done;   /* mbedtls_ssl_handshake() returned 0 */
	bool send_incomplete;  /* the last f_send left bytes in Mbed TLS's output buffer */
	bool write_pending;    /* the last top-level call returned WANT_WRITE */
	bool user_data_read;   /* a top-level read returned application data from Mbed TLS */

	enum dir_state tx_state, rx_state;
	const char *tx_why, *rx_why; /* why a direction stays in user space */
	int tx_code, rx_code;        /* the same as KTLSSHIM_ERR_* */
	bool logged, ulp;
	/* The socket the kernel-owned directions live on (TCP_ULP attached), to know it again when
	 * the application's BIO names another descriptor; bio_moved: set_bio was called since. */
	dev_t sock_dev;
	ino_t sock_ino;
	unsigned fd_gen; /* fdwatch_gen(fd) when the socket was last proven */
	bool bio_moved;
	bool strict_failed; /* KTLS_SHIM_STRICT refused a connection that stayed in user space */
	bool manual;        /* ktlsshim_set_manual: only the API hands this context off */
	int fd;
	/* TLS 1.3 directions the kernel owns: the traffic secret of the NEXT generation, for a
	 * KeyUpdate. Never the current one (the kernel holds those keys and the exported secrets are
	 * wiped at the hand-off); wiped when the connection ends. Indexed by enum ktls_dir. */
	const struct suite_info *suite;
	unsigned char next_secret[2][KEYS_MAX_SECRET];
	size_t next_secret_len[2];
	unsigned key_updates[2];  /* KeyUpdates done per direction, for the log */
	uint64_t tx_records;      /* records sent under the current TX key (an upper bound) */
	bool tx_update_due;       /* the peer asked for our KeyUpdate: it goes before more data */
	bool tx_overdue_logged;   /* the log said once that the current TX key cannot be replaced */
	/* A copy made by fork(): the original process alone changes this socket's keys (hand-off,
	 * KeyUpdate both ways), so no (key, sequence) pair is ever installed twice. */
	bool forked;
	pid_t pid;         /* the process that made this connection */
	unsigned tx_forks; /* fork() calls in this process before TX moved to the kernel */
	struct io_state io;
};

/* Lookup by context address; NULL when the shim does not know it. */
struct conn *conn_find(const mbedtls_ssl_context *ssl);
struct conn *conn_get(mbedtls_ssl_context *ssl);  /* creates on first use */
void conn_drop(const mbedtls_ssl_context *ssl);   /* forgets and frees */
/* A new connection on the same context: everything but the BIO and the callback chain. */
void conn_reset(struct conn *c);

/* Configuration facts the shim needs and Mbed TLS keeps in private fields. */
void conf_note_endpoint(const mbedtls_ssl_config *conf, int endpoint);
void conf_note_transport(const mbedtls_ssl_config *conf, int transport);
void conf_note_renegotiation(const mbedtls_ssl_config *conf, int enabled);
void conf_note_read_timeout(const mbedtls_ssl_config *conf, uint32_t ms);
void conf_note_signal_tickets(const mbedtls_ssl_config *conf, int enabled);
void conf_forget(const mbedtls_ssl_config *conf);
bool conn_is_server(const struct conn *c);
/* The config's read timeout (ms, 0 = none) now: Mbed TLS reads it at every call. */
uint32_t conn_read_timeout(const struct conn *c);

/* The shim's BIO and export-keys callbacks around the application's. */
void conn_set_bio(struct conn *c, void *bio, mbedtls_ssl_send_t *s, mbedtls_ssl_recv_t *r,
		  mbedtls_ssl_recv_timeout_t *rt);
void conn_set_export_cb(struct conn *c, mbedtls_ssl_export_keys_t *f, void *p);

/* The handshake is over (mbedtls_ssl_handshake returned 0). */
void conn_handshake_done(struct conn *c);
/* Moves the wanted directions to the kernel when that is provably safe; call only at top level. */
void conn_handoff(struct conn *c, bool want_tx, bool want_rx);
/* The automatic hand-off: both directions, unless the application took control. */
void conn_try_handoff(struct conn *c);
/* The proven kernel parameters of one direction for the application, which then owns it:
 * KTLSSHIM_OK or a KTLSSHIM_ERR_* code. */
int conn_export(struct conn *c, bool tx, union ktls_kinfo *out, size_t *out_len);
/* TLS 1.3 KeyUpdate on a kernel-owned direction: installs the next generation's key (sequence 0)
 * and ratchets the kept secret. 0, or -errno (-EBUSY: the kernel cannot rekey, before 6.14;
 * -ENOKEY: no next secret here). */
int conn_rekey(struct conn *c, enum ktls_dir dir);
/* NULL when this process may install the next key of direction dir now (TLS 1.3, Linux 6.14+),
 * else why not, for the log. Whether the kernel can rekey is learned once per process; with
 * probe, by a rekey on a throw-away socket when nothing else told (a probe that failed for a
 * passing reason, EMFILE, seccomp, no loopback, is asked again next time); without, the
 * caller's own install is the test. */
const char *conn_rekey_refusal(struct conn *c, enum ktls_dir dir, bool probe);
/* The process forked since TX moved to the kernel: another process may write under its key. */
bool conn_tx_shared(const struct conn *c);
/* ktlsshim_debug_count: copies of bytes in every tracked connection's memory. */
size_t conn_debug_count(const void *bytes, size_t len);
/* Before any kernel-side I/O: 0 when c->fd is still the application's socket (following it to
 * another descriptor of the same socket, e.g. after dup + set_bio), else the error the call
 * returns: MBEDTLS_ERR_NET_INVALID_CONTEXT once the app freed its socket (what
 * mbedtls_net_send/recv say), MBEDTLS_ERR_SSL_BAD_INPUT_DATA when it moved the connection to
 * another socket or BIO, or the number now names another socket (the kernel's record state cannot
 * follow). Two compares on the hot path; a system call only after the number was closed or
 * replaced (fdwatch.h), to prove the socket again (identity and TLS ULP). */
int conn_io_socket(struct conn *c);
/* Sends an alert on whichever side owns TX. */
int conn_send_alert(struct conn *c, unsigned char level, unsigned char desc);

#endif
