/* SPDX-License-Identifier: Apache-2.0 */
#include "io.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>
#include <mbedtls/net_sockets.h>

#include "config.h"
#include "ktls.h"
#include "log.h"
#include "real.h"
#include "rekey.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define HS_KEY_UPDATE 24 /* RFC 8446 (Mbed TLS 3.6 has no name for it) */

/* Records the kernel makes of n bytes sent at once: a send without MSG_MORE closes its last record. */
static uint64_t records_of(size_t n)
{
	return (n + IO_RECORD_PAYLOAD - 1) / IO_RECORD_PAYLOAD;
}

static int send_error(int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	if (err == EPIPE || err == ECONNRESET)
		return MBEDTLS_ERR_NET_CONN_RESET;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int send_control(struct ksock *ks, unsigned char type, const void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cm) = type;
	/* A control record is sent whole or not at all. */
	if (sendmsg(ks->fd, &msg, 0) < 0)
		return send_error(errno);
	ks->tx_records++;
	return 0;
}

/* TLS 1.3: our KeyUpdate (update_not_requested), then the next TX key; the kernel encrypts the
 * message under the current one. When this process cannot install a next key, nothing is sent
 * and records go on under the current one, as in Mbed TLS, which never rekeys: said once per
 * key, asked again at each write (a probe that failed for a passing reason may succeed later). */
static int send_key_update(struct ksock *ks)
{
	const char *why = rekey_refusal(ks, DIR_TX, true);
	if (why) {
		if (!ks->tx_overdue_logged)
			log_msg(LOG_ERROR,
				"fd=%d: the TX key is due for replacement (%llu records, "
				"KTLS_SHIM_REKEY_RECORDS=%lu) but cannot be replaced: %s; records "
				"go on "
				"under it",
				ks->fd, (unsigned long long)ks->tx_records,
				config_get()->rekey_records, why);
		ks->tx_overdue_logged = true;
		ks->tx_update_due = false;
		return 0;
	}
	static const unsigned char key_update[] = { HS_KEY_UPDATE, 0, 0, 1, 0 };
	int ret = send_control(ks, MBEDTLS_SSL_MSG_HANDSHAKE, key_update, sizeof(key_update));
	if (ret)
		return ret;
	int err = rekey(ks, DIR_TX);
	if (err) {
		/* The peer now expects the next key: nothing under the old one may follow. */
		log_msg(LOG_ERROR, "fd=%d: TX key update failed (%s); closing the connection",
			ks->fd, strerror(-err));
		shutdown(ks->fd, SHUT_RDWR);
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	}
	ks->tx_update_due = false;
	return 0;
}

/* Records the current TX key may still carry before our own KeyUpdate (KTLS_SHIM_REKEY_RECORDS);
 * UINT64_MAX where there is no limit (TLS 1.2, or the setting is 0). */
static uint64_t records_left(const struct ksock *ks)
{
	unsigned long limit = config_get()->rekey_records;
	if (ks->version != TLS_1_3 || !limit)
		return UINT64_MAX;
	return ks->tx_records < limit ? limit - ks->tx_records : 0;
}

int io_key_update_if_due(struct ksock *ks)
{
	if (ks->version != TLS_1_3)
		return 0;
	/* After fork other processes write under this key too: the kernel's record number counts
	 * every record (two system calls per write, on forked connections only). */
	uint64_t seq;
	if (config_get()->rekey_records && ksock_tx_shared(ks) &&
	    ktls_query(ks->fd, DIR_TX, NULL, NULL, &seq) == 0 && seq > ks->tx_records)
		ks->tx_records = seq;
	if (!(ks->tx_update_due || records_left(ks) == 0))
		return 0;
	return send_key_update(ks);
}

/* Sends what must go before new data: a KeyUpdate that is due, then what an earlier io_write
 * took. 0 once nothing is left. */
static int flush_pending(struct ksock *ks)
{
	struct io_state *io = &ks->io;
	int ret = io_key_update_if_due(ks);
	if (ret)
		return ret;
	while (io->pending_off < io->pending_len) {
		ssize_t n = send(ks->fd, io->pending + io->pending_off,
				 io->pending_len - io->pending_off, 0);
		if (n < 0)
			return send_error(errno);
		io->pending_off += (size_t)n;
		ks->tx_records += records_of((size_t)n);
	}
	io->pending_len = io->pending_off = 0;
	if (io->pending) {
		/* Sent: the buffer goes (wiped: it held plaintext), so an idle connection keeps none. */
		keys_wipe(io->pending, IO_RECORD_PAYLOAD);
		free(io->pending);
		io->pending = NULL;
	}
	return 0;
}

/* Less than one record went out: as Mbed TLS does with its output buffer, keep the rest of the
 * record and report WANT_WRITE; the retry completes it and returns the record length. */
static int keep_rest(struct io_state *io, const unsigned char *buf, size_t len, size_t sent)
{
	size_t record = len < IO_RECORD_PAYLOAD ? len : IO_RECORD_PAYLOAD;
	if (!io->pending && !(io->pending = malloc(IO_RECORD_PAYLOAD)))
		return MBEDTLS_ERR_SSL_ALLOC_FAILED;
	memcpy(io->pending, buf + sent, record - sent);
	io->pending_len = record - sent;
	io->pending_off = 0;
	io->pending_result = record;
	return MBEDTLS_ERR_SSL_WANT_WRITE;
}

int io_write(struct ksock *ks, const unsigned char *buf, size_t len)
{
	struct io_state *io = &ks->io;
	int err = ksock_check(ks);
	if (err)
		return err;
	if (io->pending_len) {
		/* The retry of a write that returned WANT_WRITE; buf may be NULL (lighttpd does it). */
		int ret = flush_pending(ks);
		return ret ? ret : (int)io->pending_result;
	}
	if (len == 0)
		return 0;
	if (!buf)
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	/* A KeyUpdate that is due goes before this data. When the socket has no room for it, the
	 * data is taken like a short send, and the retry sends both, in that order. */
	size_t sent = 0;
	int ret = io_key_update_if_due(ks);
	if (ret && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
		return ret;
	if (!ret) {
		/* One record per call, as Mbed TLS writes: an app that reads between its writes keeps
		 * doing so, instead of blocking in one long send while its peer does the same; and
		 * the KeyUpdate check comes before each record. The kernel's record holds 16 384 bytes
		 * (Mbed TLS's TLS 1.3 record one less: matching it would cut 16 KiB writes in two). */
		if (len > IO_RECORD_PAYLOAD)
			len = IO_RECORD_PAYLOAD;
		ssize_t n = send(ks->fd, buf, len, 0);
		if (n < 0 && send_error(errno) != MBEDTLS_ERR_SSL_WANT_WRITE)
			return send_error(errno);
		sent = n < 0 ? 0 : (size_t)n;
		ks->tx_records += records_of(sent);
		if (sent >= IO_RECORD_PAYLOAD || sent == len)
			return (int)sent;
	}
	return keep_rest(io, buf, len, sent);
}

int io_send_alert(struct ksock *ks, unsigned char level, unsigned char desc)
{
	int err = ksock_check(ks);
	if (err)
		return err;
	/* Bytes a write already took go first, as Mbed TLS flushes before an alert. */
	int ret = flush_pending(ks);
	if (ret)
		return ret;
	unsigned char alert[2] = { level, desc };
	return send_control(ks, MBEDTLS_SSL_MSG_ALERT, alert, sizeof(alert));
}

int io_alert(struct ksock *ks, unsigned char level, unsigned char desc)
{
	if (ks->owner[DIR_TX] == OWNER_KERNEL)
		return io_send_alert(ks, level, desc);
	return real.send_alert_message(ks->ssl, level, desc);
}
