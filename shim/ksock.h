/* SPDX-License-Identifier: Apache-2.0 */
/* The state of a socket whose record layer the kernel owns (or may come to own): what the I/O
 * path, the rekey and the socket following need, and nothing of the hand-off. Embedded in struct
 * conn; io.c, control.c, recv.c and rekey.c see only this. */
#ifndef KTLSSHIM_KSOCK_H
#define KTLSSHIM_KSOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "dir.h"
#include "keys.h"
#include "tlsver.h"

/* Who carries a direction's records. */
enum owner {
	OWNER_UNDECIDED = 0, /* Mbed TLS carries it; the shim may still hand it to the kernel */
	OWNER_KERNEL,	     /* the kernel owns it for the rest of the connection */
	OWNER_USER,	     /* stays in Mbed TLS (refused or not possible) */
	OWNER_APP, /* handed to the application (ktlsshim_export): nobody here touches it */
};

/* Size of each I/O buffer (a record's payload; a post-handshake message). */
#define IO_BUFFER_LEN 16384

/* Bytes a write took but the socket did not (Mbed TLS's WANT_WRITE contract), and a control
 * record read in pieces. */
struct io_state {
	unsigned char *pending;
	size_t pending_len, pending_off; /* unsent bytes of the taken record */
	size_t pending_result;		 /* what the completing call returns */
	unsigned char *ctrl;
	size_t ctrl_len;
	unsigned char ctrl_type;
	bool rx_partial; /* the last data read ended inside a record: the kernel holds the rest */
};

struct ksock {
	/* The socket: its number, its identity (st_dev/st_ino) and the number's generation
	 * (fdwatch.h) when it was last proven; -1 until the hand-off finds a TCP socket. */
	int fd;
	dev_t dev;
	ino_t ino;
	unsigned fd_gen;
	/* The application's BIO as the socket following sees it (capture.c sets it). */
	const mbedtls_net_context *net; /* its context */
	bool net_send;			/* its send is mbedtls_net_send */
	bool net_bio;			/* the whole BIO is Mbed TLS's plain socket functions */
	bool waits; /* it has a recv_timeout: wait as mbedtls_net_recv_timeout */
	bool moved; /* set_bio was called since the kernel took a direction (for a custom BIO: with
		     * other callbacks or context) */
	mbedtls_ssl_context *ssl;	/* for Mbed TLS's own alerts and debug callback only */
	const mbedtls_ssl_config *conf; /* its endpoint and read timeout, read when needed */
	uint16_t version;		/* 0, TLS_1_2 or TLS_1_3 (from the export callback) */
	enum owner owner[DIR_COUNT];
	/* TLS 1.3 directions the kernel owns: the traffic secret of the NEXT generation, for a
	 * KeyUpdate. Never the current one (the kernel holds those keys and the exported secrets
	 * are wiped at the hand-off); wiped when the connection ends. */
	const struct suite_info *suite;
	unsigned char next_secret[DIR_COUNT][KEYS_MAX_SECRET];
	size_t next_secret_len[DIR_COUNT];
	unsigned key_updates[DIR_COUNT]; /* KeyUpdates done, for the log */
	uint64_t tx_records;	/* records sent under the current TX key (an upper bound) */
	bool tx_update_due;	/* the peer asked for our KeyUpdate: it goes before more data */
	bool tx_overdue_logged; /* the log said once that the current TX key cannot be replaced */
	/* A copy made by fork(): the original process alone changes this socket's keys (hand-off,
	 * KeyUpdate both ways), so no (key, sequence) pair is ever installed twice. */
	bool forked;
	pid_t pid;	   /* the process that made this connection */
	unsigned tx_forks; /* fork() calls in this process before TX moved to the kernel */
	struct io_state io;
};

/* A new connection (ssl, conf kept): everything forgotten, secrets and buffers wiped. */
void ksock_reset(struct ksock *ks);
void ksock_free(struct ksock *ks); /* ksock_reset, and the buffers freed */
void ksock_wipe_next_secrets(struct ksock *ks);

/* The socket the kernel-owned directions will live on: notes its identity and the number's
 * generation (read first: a close during the hand-off shows later). */
bool ksock_note_socket(struct ksock *ks);
/* Before any kernel-side I/O: 0 when ks->fd is still the application's socket (following it to
 * another descriptor of the same socket, e.g. after dup + set_bio), else the error the call
 * returns: MBEDTLS_ERR_NET_INVALID_CONTEXT once the app freed its socket (what
 * mbedtls_net_send/recv say), MBEDTLS_ERR_SSL_BAD_INPUT_DATA when it moved the connection to
 * another socket or BIO, or the number now names another socket (the kernel's record state cannot
 * follow). Two compares on the hot path; a system call only after the number was closed or
 * replaced (fdwatch.h), to prove the socket again (identity and TLS ULP). */
int ksock_check(struct ksock *ks);

/* fork(): calls counted so far in this process (read before an install), whether this socket's
 * TX key may be written by another process too, whether this is a copy made by fork(). */
unsigned ksock_forks(void);
bool ksock_tx_shared(const struct ksock *ks);
bool ksock_is_copy(const struct ksock *ks);
/* In a forked child: the parent keeps the right to change keys, the child forgets its copy of
 * the next secrets. No lock, no log (the child of a threaded process). */
void ksock_forked(struct ksock *ks);

#endif
