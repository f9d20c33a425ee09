/* SPDX-License-Identifier: Apache-2.0 */
#include "control.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "io.h"
#include "log.h"
#include "rekey.h"

#define CTRL_MAX \
	IO_BUFFER_LEN	 /* the largest post-handshake message accepted (a ticket is ~1 KiB) */
#define HS_KEY_UPDATE 24 /* RFC 8446 (Mbed TLS 3.6 has no name for it) */

static enum ctrl_verdict failed(int *err, int e)
{
	*err = e;
	return CTRL_FAILED;
}

/* A fatal alert on whichever side owns TX, then the error. */
static enum ctrl_verdict fatal(struct ksock *ks, unsigned char desc, int e, int *err)
{
	io_alert(ks, MBEDTLS_SSL_ALERT_LEVEL_FATAL, desc);
	return failed(err, e);
}

/* Why the shim cannot follow a KeyUpdate (requested: the peer wants ours too), NULL once RX has
 * the next key. What Mbed TLS itself would do with it (it has no KeyUpdate) then follows. */
static const char *follow_key_update(struct ksock *ks, bool requested)
{
	const char *why = NULL;
	if (requested && ks->owner[DIR_TX] != OWNER_KERNEL)
		return "the peer asks for our KeyUpdate and TX is not in the kernel";
	/* TX checked first: once RX follows, the peer waits for ours. */
	if ((requested && (why = rekey_refusal(ks, DIR_TX, false))) ||
	    (why = rekey_refusal(ks, DIR_RX, false)))
		return why;
	int e = rekey(ks, DIR_RX);
	if (e == -EBUSY)
		return "the kernel cannot rekey (Linux 6.14 or later can)";
	return e ? "no next key" : NULL;
}

/* A TLS 1.3 KeyUpdate under kernel RX: m is the whole message, last tells whether it ended its
 * record. The kernel paused decryption at it (6.14+) until the next key is installed. */
static enum ctrl_verdict key_update_received(struct ksock *ks, const unsigned char *m, bool last,
					     int *err)
{
	/* RFC 8446 4.6.3 and 5.1: one byte, 0 or 1, and the last message of its record. */
	if (!last)
		return fatal(ks, MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE,
			     MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE, err);
	if (m[4] > 1)
		return fatal(ks, MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER,
			     MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER, err);
	bool requested = m[4] == 1;
	const char *why = follow_key_update(ks, requested);
	if (why) {
		log_msg(LOG_ERROR,
			"fd=%d: KeyUpdate received; %s: failing the connection as Mbed TLS does",
			ks->fd, why);
		return failed(err, MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE);
	}
	if (requested) {
		/* Now; when the socket has no room, before the next data. */
		ks->tx_update_due = true;
		int ret = io_key_update_if_due(ks);
		if (ret && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			return failed(err, ret);
	}
	return CTRL_CONSUMED;
}

/* A handshake message not complete yet: read on, unless the record ended inside a KeyUpdate
 * (RFC 8446 5.1: a record boundary must not cut it, the key changes after it). */
static enum ctrl_verdict incomplete(struct ksock *ks, bool key_update, bool eor, int *err)
{
	if (key_update && eor)
		return fatal(ks, MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE,
			     MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE, err);
	return CTRL_NEED_MORE;
}

/* Mbed TLS tells the app's debug callback (level 3) that it ignores a ticket; so does the shim,
 * through the same function: exported by libmbedtls, declared in its internal headers only,
 * absent without MBEDTLS_DEBUG_C (then nothing is said, as by Mbed TLS). */
typedef void debug_print_fn(const mbedtls_ssl_context *, int, const char *, int, const char *, ...);

static void ticket_ignored(struct ksock *ks)
{
	static _Atomic(debug_print_fn *) print;
	static atomic_bool looked;
	if (!atomic_load(&looked)) {
		atomic_store(&print,
			     (debug_print_fn *)dlsym(RTLD_DEFAULT, "mbedtls_debug_print_msg"));
		atomic_store(&looked, true);
	}
	debug_print_fn *f = atomic_load(&print);
	if (f)
		f(ks->ssl, 3, __FILE__, __LINE__,
		  "NewSessionTicket received after the hand-off: ignored, the app did not ask for "
		  "tickets");
	log_msg(LOG_DEBUG, "fd=%d: NewSessionTicket ignored (the app did not ask for tickets)",
		ks->fd);
}

static enum ctrl_verdict alert(const struct io_state *io, size_t *used, int *err)
{
	const unsigned char *m = io->ctrl;
	if (io->ctrl_len < 2)
		return CTRL_NEED_MORE;
	*used = 2;
	if (io->ctrl_len != 2)
		return failed(err, MBEDTLS_ERR_SSL_INVALID_RECORD);
	if (m[0] == MBEDTLS_SSL_ALERT_LEVEL_FATAL)
		return failed(err, MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE);
	if (m[1] == MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY)
		return failed(err, MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
	return CTRL_CONSUMED; /* other warnings are ignored */
}

/* A complete handshake message m of body length `body` (eor: its bytes end a record). */
static enum ctrl_verdict handshake(struct ksock *ks, const unsigned char *m, size_t body, bool eor,
				   int *err)
{
	bool server = conf_is_server(ks->conf);
	if (ks->version == TLS_1_3) {
		/* Tickets are dropped as Mbed TLS does when the app did not ask for them. */
		if (!server && m[0] == MBEDTLS_SSL_HS_NEW_SESSION_TICKET) {
			ticket_ignored(ks);
			return CTRL_CONSUMED;
		}
		if (m[0] == HS_KEY_UPDATE)
			return key_update_received(ks, m, eor, err);
		return failed(err, MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE);
	}
	/* TLS 1.2 renegotiation requests: refused with a warning, the connection goes on. */
	if ((!server && m[0] == MBEDTLS_SSL_HS_HELLO_REQUEST && body == 0) ||
	    (server && m[0] == MBEDTLS_SSL_HS_CLIENT_HELLO)) {
		int ret = io_alert(ks, MBEDTLS_SSL_ALERT_LEVEL_WARNING,
				   MBEDTLS_SSL_ALERT_MSG_NO_RENEGOTIATION);
		return ret ? failed(err, ret) : CTRL_CONSUMED;
	}
	return failed(err, MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE);
}

/* What Mbed TLS does with the first post-handshake message in io->ctrl (eor: its bytes end a
 * record); *used: its length once complete. */
static enum ctrl_verdict handle_control(struct ksock *ks, size_t *used, bool eor, int *err)
{
	struct io_state *io = &ks->io;
	const unsigned char *m = io->ctrl;
	if (io->ctrl_type == MBEDTLS_SSL_MSG_ALERT)
		return alert(io, used, err);
	if (io->ctrl_type != MBEDTLS_SSL_MSG_HANDSHAKE)
		return failed(err, MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE);
	bool key_update = ks->version == TLS_1_3 && m[0] == HS_KEY_UPDATE;
	if (io->ctrl_len < 4)
		return incomplete(ks, key_update, eor, err);
	size_t body = ((size_t)m[1] << 16) | ((size_t)m[2] << 8) | m[3];
	if (key_update && body != 1)
		return fatal(ks, MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR, MBEDTLS_ERR_SSL_DECODE_ERROR,
			     err);
	if (4 + body > CTRL_MAX)
		return failed(err, MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE);
	if (io->ctrl_len < 4 + body)
		return incomplete(ks, key_update, eor, err);
	*used = 4 + body;
	return handshake(ks, m, body, eor && io->ctrl_len == *used, err);
}

/* Holding nothing, the buffer goes (wiped: it held handshake messages): an idle connection keeps
 * no buffer. */
static void release_ctrl(struct io_state *io)
{
	if (io->ctrl_len || !io->ctrl)
		return;
	keys_wipe(io->ctrl, CTRL_MAX);
	free(io->ctrl);
	io->ctrl = NULL;
}

enum ctrl_verdict control_absorb(struct ksock *ks, unsigned char type, const unsigned char *p,
				 size_t n, bool eor, int *err)
{
	struct io_state *io = &ks->io;
	if (io->ctrl_len && io->ctrl_type != type)
		return failed(
			err,
			MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE); /* a message cut off by another record */
	if (!io->ctrl && !(io->ctrl = calloc(1, CTRL_MAX)))
		return failed(err, MBEDTLS_ERR_SSL_ALLOC_FAILED);
	if (io->ctrl_len + n > CTRL_MAX)
		return failed(err, MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE);
	if (p != io->ctrl + io->ctrl_len)
		memcpy(io->ctrl + io->ctrl_len, p, n);
	io->ctrl_len += n;
	io->ctrl_type = type;
	for (;;) {
		size_t used = 0;
		enum ctrl_verdict v = handle_control(ks, &used, eor, err);
		if (v == CTRL_FAILED)
			io->ctrl_len = 0;
		if (v == CTRL_CONSUMED) {
			memmove(io->ctrl, io->ctrl + used, io->ctrl_len - used);
			io->ctrl_len -= used;
			if (io->ctrl_len)
				continue;
		}
		release_ctrl(io);
		return v;
	}
}
