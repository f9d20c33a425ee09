/* SPDX-License-Identifier: Apache-2.0 */
#include "io.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>
#include <mbedtls/net_sockets.h>

#include "config.h"
#include "log.h"
#include "recv.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define RECORD_PAYLOAD IO_BUFFER_LEN
#define CTRL_MAX IO_BUFFER_LEN /* the largest post-handshake message accepted (a ticket is ~1 KiB) */
#define HS_KEY_UPDATE 24 /* RFC 8446 (Mbed TLS 3.6 has no name for it) */

/* Records the kernel makes of n bytes sent at once: a send without MSG_MORE closes its last record. */
static uint64_t records_of(size_t n)
{
	return (n + RECORD_PAYLOAD - 1) / RECORD_PAYLOAD;
}

/* ---- TX ---- */

static int send_error(int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	if (err == EPIPE || err == ECONNRESET)
		return MBEDTLS_ERR_NET_CONN_RESET;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int send_control(struct conn *c, unsigned char type, const void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cm) = type;
	/* A control record is sent whole or not at all. */
	if (sendmsg(c->fd, &msg, 0) < 0)
		return send_error(errno);
	c->tx_records++;
	return 0;
}

/* TLS 1.3: our KeyUpdate (update_not_requested), then the next TX key; the kernel encrypts the
 * message under the current one. 0, WANT_WRITE (nothing sent: the next write tries again), or an
 * error. When this process cannot install a next key, nothing is sent and records go on under
 * the current one, as in Mbed TLS, which never rekeys: said once per key, asked again at each
 * write (a probe that failed for a passing reason may succeed later). */
static int send_key_update(struct conn *c)
{
	const char *why = conn_rekey_refusal(c, KTLS_DIR_TX, true);
	if (why) {
		if (!c->tx_overdue_logged)
			log_msg(LOG_ERROR, "fd=%d: the TX key is due for replacement (%llu records, "
				"KTLS_SHIM_REKEY_RECORDS=%lu) but cannot be replaced: %s; records go on "
				"under it", c->fd, (unsigned long long)c->tx_records,
				config_get()->rekey_records, why);
		c->tx_overdue_logged = true;
		c->tx_update_due = false;
		return 0;
	}
	static const unsigned char key_update[] = { HS_KEY_UPDATE, 0, 0, 1, 0 };
	int ret = send_control(c, MBEDTLS_SSL_MSG_HANDSHAKE, key_update, sizeof(key_update));
	if (ret)
		return ret;
	int err = conn_rekey(c, KTLS_DIR_TX);
	if (err) {
		/* The peer now expects the next key: nothing under the old one may follow. */
		log_msg(LOG_ERROR, "fd=%d: TX key update failed (%s); closing the connection", c->fd,
			strerror(-err));
		shutdown(c->fd, SHUT_RDWR);
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	}
	c->tx_update_due = false;
	return 0;
}

/* Records the current TX key may still carry before our own KeyUpdate (KTLS_SHIM_REKEY_RECORDS);
 * UINT64_MAX where there is no limit (TLS 1.2, or the setting is 0). */
static uint64_t records_left(const struct conn *c)
{
	unsigned long limit = config_get()->rekey_records;
	if (c->version != TLS_1_3 || !limit)
		return UINT64_MAX;
	return c->tx_records < limit ? limit - c->tx_records : 0;
}

/* Before new data: the KeyUpdate the peer asked for, or ours when this key carried its share. */
static int tx_key_update_if_due(struct conn *c)
{
	if (c->version != TLS_1_3)
		return 0;
	/* After fork other processes write under this key too: the kernel's record number counts
	 * every record (two system calls per write, on forked connections only). */
	uint64_t seq;
	if (config_get()->rekey_records && conn_tx_shared(c) &&
	    ktls_query(c->fd, KTLS_DIR_TX, NULL, NULL, &seq) == 0 && seq > c->tx_records)
		c->tx_records = seq;
	if (!(c->tx_update_due || records_left(c) == 0))
		return 0;
	return send_key_update(c);
}

/* Sends what must go before new data: a KeyUpdate that is due, then what an earlier io_write
 * took. 0 once nothing is left. */
static int flush_pending(struct conn *c)
{
	struct io_state *io = &c->io;
	int ret = tx_key_update_if_due(c);
	if (ret)
		return ret;
	while (io->pending_off < io->pending_len) {
		ssize_t n = send(c->fd, io->pending + io->pending_off, io->pending_len - io->pending_off, 0);
		if (n < 0)
			return send_error(errno);
		io->pending_off += (size_t)n;
		c->tx_records += records_of((size_t)n);
	}
	io->pending_len = io->pending_off = 0;
	return 0;
}

int io_write(struct conn *c, const unsigned char *buf, size_t len)
{
	struct io_state *io = &c->io;
	int err = conn_io_socket(c);
	if (err)
		return err;
	if (io->pending_len) {
		/* The retry of a write that returned WANT_WRITE; buf may be NULL (lighttpd does it). */
		int ret = flush_pending(c);
		return ret ? ret : (int)io->pending_result;
	}
	if (len == 0)
		return 0;
	if (!buf)
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	/* A KeyUpdate that is due goes before this data. When the socket has no room for it, the
	 * data is taken below like a short send, and the retry sends both, in that order. */
	size_t sent = 0;
	int ret = tx_key_update_if_due(c);
	if (ret && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
		return ret;
	if (!ret) {
		/* One record per call, as Mbed TLS writes: an app that reads between its writes keeps
		 * doing so, instead of blocking in one long send while its peer does the same; and
		 * the KeyUpdate check comes before each record. The kernel's record holds 16 384 bytes
		 * (Mbed TLS's TLS 1.3 record one less: matching it would cut 16 KiB writes in two). */
		if (len > RECORD_PAYLOAD)
			len = RECORD_PAYLOAD;
		ssize_t n = send(c->fd, buf, len, 0);
		if (n < 0 && send_error(errno) != MBEDTLS_ERR_SSL_WANT_WRITE)
			return send_error(errno);
		sent = n < 0 ? 0 : (size_t)n;
		c->tx_records += records_of(sent);
		if (sent >= RECORD_PAYLOAD || sent == len)
			return (int)sent;
	}
	/* Less than one record went out: as Mbed TLS does with its output buffer, keep the rest of
	 * the record and report WANT_WRITE; the retry completes it and returns the record length. */
	size_t record = len < RECORD_PAYLOAD ? len : RECORD_PAYLOAD;
	if (!io->pending && !(io->pending = malloc(RECORD_PAYLOAD)))
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	memcpy(io->pending, buf + sent, record - sent);
	io->pending_len = record - sent;
	io->pending_off = 0;
	io->pending_result = record;
	return MBEDTLS_ERR_SSL_WANT_WRITE;
}

int io_send_alert(struct conn *c, unsigned char level, unsigned char desc)
{
	int err = conn_io_socket(c);
	if (err)
		return err;
	/* Bytes a write already took go first, as Mbed TLS flushes before an alert. */
	int ret = flush_pending(c);
	if (ret)
		return ret;
	unsigned char alert[2] = { level, desc };
	return send_control(c, MBEDTLS_SSL_MSG_ALERT, alert, sizeof(alert));
}

/* ---- RX ---- */

static int fatal(struct conn *c, unsigned char desc, int ret)
{
	conn_send_alert(c, MBEDTLS_SSL_ALERT_LEVEL_FATAL, desc);
	return ret;
}

/* A TLS 1.3 KeyUpdate under kernel RX: m is the whole message, last tells whether it ended its
 * record. The kernel paused decryption at it (6.14+) until the next key is installed. */
static int key_update_received(struct conn *c, const unsigned char *m, bool last)
{
	/* RFC 8446 4.6.3 and 5.1: one byte, 0 or 1, and the last message of its record. */
	if (!last)
		return fatal(c, MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE, MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE);
	if (m[4] > 1)
		return fatal(c, MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER, MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER);
	bool requested = m[4] == 1;
	/* What Mbed TLS itself would do with it (it has no KeyUpdate), when the shim cannot follow. */
	const char *why = NULL;
	if (requested && c->tx_state != DIR_KERNEL)
		why = "the peer asks for our KeyUpdate and TX is not in the kernel";
	else if (requested && (why = conn_rekey_refusal(c, KTLS_DIR_TX, false)))
		; /* checked first: once RX follows, the peer waits for ours */
	else if (!(why = conn_rekey_refusal(c, KTLS_DIR_RX, false))) {
		int err = conn_rekey(c, KTLS_DIR_RX);
		if (err == -EBUSY)
			why = "the kernel cannot rekey (Linux 6.14 or later can)";
		else if (err)
			why = "no next key";
	}
	if (why) {
		log_msg(LOG_ERROR, "fd=%d: KeyUpdate received; %s: failing the connection as Mbed TLS does",
			c->fd, why);
		return MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
	}
	if (requested) {
		/* Now; when the socket has no room, before the next data (flush_pending). */
		c->tx_update_due = true;
		int ret = tx_key_update_if_due(c);
		if (ret && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			return ret;
	}
	return CTRL_CONSUMED;
}

/* A handshake message not complete yet: read on, unless the record ended inside a KeyUpdate
 * (RFC 8446 5.1: a record boundary must not cut it, the key changes after it). */
static int incomplete(struct conn *c, bool key_update, bool eor)
{
	if (key_update && eor)
		return fatal(c, MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE, MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE);
	return CTRL_NEED_MORE;
}

/* Mbed TLS tells the app's debug callback (level 3) that it ignores a ticket; so does the shim,
 * through the same function: exported by libmbedtls, declared in its internal headers only,
 * absent without MBEDTLS_DEBUG_C (then nothing is said, as by Mbed TLS). */
typedef void debug_print_fn(const mbedtls_ssl_context *, int, const char *, int, const char *, ...);

static void ticket_ignored(struct conn *c)
{
	static _Atomic(debug_print_fn *) print;
	static atomic_bool looked;
	if (!atomic_load(&looked)) {
		atomic_store(&print, (debug_print_fn *)dlsym(RTLD_DEFAULT, "mbedtls_debug_print_msg"));
		atomic_store(&looked, true);
	}
	debug_print_fn *f = atomic_load(&print);
	if (f)
		f(c->ssl, 3, __FILE__, __LINE__,
		  "NewSessionTicket received after the hand-off: ignored, the app did not ask for tickets");
	log_msg(LOG_DEBUG, "fd=%d: NewSessionTicket ignored (the app did not ask for tickets)", c->fd);
}

/* What Mbed TLS does with one post-handshake message in io->ctrl (eor: its bytes end a record):
 * an Mbed TLS error, or CTRL_CONSUMED (dropped or answered; read on), or CTRL_NEED_MORE
 * (incomplete). */
static int handle_control(struct conn *c, size_t *used, bool eor)
{
	struct io_state *io = &c->io;
	const unsigned char *m = io->ctrl;
	if (io->ctrl_type == MBEDTLS_SSL_MSG_ALERT) {
		if (io->ctrl_len < 2)
			return CTRL_NEED_MORE;
		*used = 2;
		if (io->ctrl_len != 2)
			return MBEDTLS_ERR_SSL_INVALID_RECORD;
		if (m[0] == MBEDTLS_SSL_ALERT_LEVEL_FATAL)
			return MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE;
		if (m[1] == MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY)
			return MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY;
		return CTRL_CONSUMED; /* other warnings are ignored */
	}
	if (io->ctrl_type != MBEDTLS_SSL_MSG_HANDSHAKE)
		return MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
	bool key_update = c->version == TLS_1_3 && m[0] == HS_KEY_UPDATE;
	if (io->ctrl_len < 4)
		return incomplete(c, key_update, eor);
	size_t body = ((size_t)m[1] << 16) | ((size_t)m[2] << 8) | m[3];
	if (key_update && body != 1)
		return fatal(c, MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR, MBEDTLS_ERR_SSL_DECODE_ERROR);
	if (4 + body > CTRL_MAX)
		return MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
	if (io->ctrl_len < 4 + body)
		return incomplete(c, key_update, eor);
	*used = 4 + body;
	bool server = conn_is_server(c);
	if (c->version == TLS_1_3) {
		/* Tickets are dropped as Mbed TLS does when the app did not ask for them. */
		if (!server && m[0] == MBEDTLS_SSL_HS_NEW_SESSION_TICKET) {
			ticket_ignored(c);
			return CTRL_CONSUMED;
		}
		if (m[0] == HS_KEY_UPDATE)
			return key_update_received(c, m, eor && io->ctrl_len == *used);
		return MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
	}
	/* TLS 1.2 renegotiation requests: refused with a warning, the connection goes on. */
	if ((!server && m[0] == MBEDTLS_SSL_HS_HELLO_REQUEST && body == 0) ||
	    (server && m[0] == MBEDTLS_SSL_HS_CLIENT_HELLO)) {
		int ret = conn_send_alert(c, MBEDTLS_SSL_ALERT_LEVEL_WARNING,
					  MBEDTLS_SSL_ALERT_MSG_NO_RENEGOTIATION);
		return ret ? ret : CTRL_CONSUMED;
	}
	return MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
}

int io_absorb_control(struct conn *c, unsigned char type, const unsigned char *p, size_t n,
		      bool eor)
{
	struct io_state *io = &c->io;
	if (io->ctrl_len && io->ctrl_type != type)
		return MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE; /* a message cut off by another record */
	if (!io->ctrl && !(io->ctrl = calloc(1, CTRL_MAX)))
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	if (io->ctrl_len + n > CTRL_MAX)
		return MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
	if (p != io->ctrl + io->ctrl_len)
		memcpy(io->ctrl + io->ctrl_len, p, n);
	io->ctrl_len += n;
	io->ctrl_type = type;
	for (;;) {
		size_t used = 0;
		int v = handle_control(c, &used, eor);
		if (v < 0) {
			io->ctrl_len = 0;
			return v;
		}
		if (v == CTRL_NEED_MORE)
			return CTRL_NEED_MORE;
		memmove(io->ctrl, io->ctrl + used, io->ctrl_len - used);
		io->ctrl_len -= used;
		if (io->ctrl_len == 0)
			return CTRL_CONSUMED;
	}
}

int io_read(struct conn *c, unsigned char *buf, size_t len)
{
	struct io_state *io = &c->io;
	int err = conn_io_socket(c);
	if (err)
		return err;
	if (len == 0)
		return 0;
	for (;;) {
		unsigned char type = 0;
		bool eor = false;
		ssize_t n;
		int ret;
		if (io->ctrl_len) {
			/* Finish the message a small read cut: straight into the control buffer. */
			n = recv_waiting(c, io->ctrl + io->ctrl_len, CTRL_MAX - io->ctrl_len, &type, &eor);
			if (n <= 0)
				return n ? recv_failed(c, n) : 0; /* EOF is 0, as Mbed TLS reports it */
			ret = io_absorb_control(c, type, io->ctrl + io->ctrl_len, (size_t)n, eor);
		} else {
			n = recv_waiting(c, buf, len, &type, &eor);
			ret = n < 0 ? recv_failed(c, n) : (int)n;
			if (ret == MBEDTLS_ERR_SSL_INVALID_MAC)
				conn_send_alert(c, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
						MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC);
			if (ret <= 0)
				return ret; /* EOF (0, as Mbed TLS reports it) or an error */
			if (type == MBEDTLS_SSL_MSG_APPLICATION_DATA) {
				io->rx_partial = !eor;
				return ret;
			}
			ret = io_absorb_control(c, type, buf, (size_t)n, eor);
		}
		if (ret < 0)
			return ret;
		/* CTRL_CONSUMED or CTRL_NEED_MORE: read on (blocking) or report WANT_READ from
		 * the next recvmsg (non-blocking). */
	}
}

/* The buffers held plaintext (data taken for sending, post-handshake messages): wiped. */
static void wipe_buffers(struct io_state *io)
{
	if (io->pending)
		keys_wipe(io->pending, RECORD_PAYLOAD);
	if (io->ctrl)
		keys_wipe(io->ctrl, CTRL_MAX);
}

size_t io_bytes_avail(struct conn *c)
{
	struct io_state *io = &c->io;
	if (!io->rx_partial || conn_io_socket(c))
		return 0;
	/* The rest of the record the app is reading, and maybe more records already decrypted:
	 * peeked into the control buffer, which is empty while a data record is being read. */
	if (!io->ctrl && !(io->ctrl = calloc(1, CTRL_MAX)))
		return 0;
	unsigned char type = 0;
	bool eor;
	ssize_t n = recv_record(c, io->ctrl, CTRL_MAX, MSG_PEEK | MSG_DONTWAIT, &type, &eor);
	if (n <= 0 || type != MBEDTLS_SSL_MSG_APPLICATION_DATA) {
		io->rx_partial = false; /* nothing of it left after all */
		return 0;
	}
	explicit_bzero(io->ctrl, (size_t)n); /* plaintext the app has not read yet */
	return (size_t)n;
}

void io_reset(struct io_state *io)
{
	wipe_buffers(io);
	io->pending_len = io->pending_off = io->pending_result = 0;
	io->ctrl_len = 0;
	io->rx_partial = false;
}

void io_free(struct io_state *io)
{
	wipe_buffers(io);
	free(io->pending);
	free(io->ctrl);
	*io = (struct io_state){ 0 };
}
