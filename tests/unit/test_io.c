/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel I/O path (shim/io.c, shim/recv.c, shim/control.c) through a socket seam: this
 * program defines send, sendmsg and recvmsg, so the shim's calls on the test socket reach a mock
 * that plays a kTLS socket (records with their type as a cmsg, MSG_EOR at a record's end, errors
 * on demand) and keeps what was sent. Other descriptors reach libc. The socket itself is one end
 * of a real socketpair, for poll(). Every verdict is fixed: the Mbed TLS error, or the bytes. */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <linux/tls.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "conf.h"
#include "fdwatch.h"
#include "io.h"
#include "ksock.h"
#include "recv.h"
#include "tap.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* ---- the seam ---- */

struct rec {
	unsigned char type;
	unsigned char data[64];
	size_t len, off;
	int err;      /* recvmsg fails with it (the entry is used up) */
	bool no_type; /* bytes without the kernel's record type */
};
static struct rec script[8];
static size_t nscript, cur;

struct sent {
	unsigned char type;
	unsigned char data[64];
	size_t len;
};
static struct sent sent_log[8];
static size_t nsent;
static int send_err;	    /* the next send/sendmsg fails with it */
static ssize_t send_accept; /* the next send takes at most this many bytes (0: all) */
static int test_fd = -1;

static void expect(unsigned char type, const void *data, size_t len)
{
	struct rec *r = &script[nscript++];
	*r = (struct rec){ .type = type, .len = len };
	if (len)
		memcpy(r->data, data, len);
}

static void expect_err(int err)
{
	script[nscript++] = (struct rec){ .err = err };
}

static void set_type(struct msghdr *msg, unsigned char type)
{
	struct cmsghdr *cm = CMSG_FIRSTHDR(msg);
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_GET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(1);
	*CMSG_DATA(cm) = type;
	msg->msg_controllen = CMSG_SPACE(1);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (fd != test_fd) {
		ssize_t (*next)(int, struct msghdr *, int) =
			(ssize_t(*)(int, struct msghdr *, int))dlsym(RTLD_NEXT, "recvmsg");
		return next(fd, msg, flags);
	}
	if (cur == nscript) {
		errno = EAGAIN;
		return -1;
	}
	struct rec *r = &script[cur];
	if (r->err || r->len == 0) {
		cur++;
		msg->msg_controllen = 0;
		errno = r->err;
		return r->err ? -1 : 0;
	}
	size_t left = r->len - r->off,
	       n = left < msg->msg_iov[0].iov_len ? left : msg->msg_iov[0].iov_len;
	memcpy(msg->msg_iov[0].iov_base, r->data + r->off, n);
	msg->msg_flags = n == left ? MSG_EOR : 0;
	if (r->no_type)
		msg->msg_controllen = 0;
	else
		set_type(msg, r->type);
	if (!(flags & MSG_PEEK) && (r->off += n) == r->len)
		cur++;
	return (ssize_t)n;
}

static ssize_t log_send(unsigned char type, const void *buf, size_t len)
{
	if (send_err) {
		errno = send_err;
		send_err = 0;
		return -1;
	}
	if (send_accept && (size_t)send_accept < len)
		len = (size_t)send_accept;
	send_accept = 0;
	struct sent *s = &sent_log[nsent < 8 ? nsent++ : 7];
	s->type = type;
	s->len = len;
	memcpy(s->data, buf, len < sizeof(s->data) ? len : sizeof(s->data));
	return (ssize_t)len;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (fd != test_fd) {
		ssize_t (*next)(int, const struct msghdr *, int) =
			(ssize_t(*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
		return next(fd, msg, flags);
	}
	struct cmsghdr *cm = CMSG_FIRSTHDR((struct msghdr *)msg);
	unsigned char type = cm && cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_SET_RECORD_TYPE
				     ? *CMSG_DATA(cm)
				     : 0;
	return log_send(type, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	if (fd != test_fd) {
		ssize_t (*next)(int, const void *, size_t, int) =
			(ssize_t(*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
		return next(fd, buf, len, flags);
	}
	return log_send(MBEDTLS_SSL_MSG_APPLICATION_DATA, buf, len);
}

/* ---- a kernel-owned socket on the seam ---- */

static const char client_conf, server_conf; /* stand for configs: only their addresses count */
static mbedtls_net_context net;
static mbedtls_ssl_context ssl;

static void setup(struct ksock *ks, uint16_t version, bool server)
{
	ksock_free(ks);
	*ks = (struct ksock){ .fd = test_fd,
			      .net = &net,
			      .net_send = true,
			      .net_bio = true,
			      .ssl = &ssl,
			      .version = version,
			      .pid = getpid() };
	ks->conf = (const mbedtls_ssl_config *)(server ? &server_conf : &client_conf);
	ks->fd_gen = fdwatch_gen(test_fd);
	ks->owner[DIR_TX] = ks->owner[DIR_RX] = OWNER_KERNEL;
	net.fd = test_fd;
	nscript = cur = nsent = 0;
}

static bool sent_alert(size_t i, unsigned char level, unsigned char desc)
{
	const unsigned char want[2] = { level, desc };
	return nsent > i && sent_log[i].type == MBEDTLS_SSL_MSG_ALERT && sent_log[i].len == 2 &&
	       memcmp(sent_log[i].data, want, 2) == 0;
}

static const unsigned char hello[] = "hello";

/* ---- TX ---- */

static void test_write(struct ksock *ks)
{
	static unsigned char big[40000];
	setup(ks, TLS_1_3, false);
	tap_ok(io_write(ks, big, sizeof(big)) == 16384 && nsent == 1 && sent_log[0].len == 16384,
	       "write: one record (16384 bytes) per call, one send");
	tap_ok(ks->tx_records == 1, "write: the record is counted");
	tap_ok(io_write(ks, big, 0) == 0 && nsent == 1, "write of 0 bytes: 0, nothing sent");

	setup(ks, TLS_1_2, false);
	send_accept = 1000;
	tap_ok(io_write(ks, big, 5000) == MBEDTLS_ERR_SSL_WANT_WRITE, "short send: WANT_WRITE");
	tap_ok(io_write(ks, NULL, 0) == 5000 && nsent == 2 && sent_log[1].len == 4000,
	       "its retry (NULL buffer) sends the rest and returns the whole record");

	setup(ks, TLS_1_2, false);
	send_err = EAGAIN;
	tap_ok(io_write(ks, hello, 5) == MBEDTLS_ERR_SSL_WANT_WRITE && nsent == 0,
	       "EAGAIN: WANT_WRITE");
	tap_ok(io_write(ks, hello, 5) == 5 && nsent == 1 && memcmp(sent_log[0].data, hello, 5) == 0,
	       "the retry sends the bytes taken");
	send_err = EINTR;
	tap_ok(io_write(ks, hello, 5) == MBEDTLS_ERR_SSL_WANT_WRITE, "EINTR: WANT_WRITE");
	io_write(ks, NULL, 0);
	send_err = EPIPE;
	tap_ok(io_write(ks, hello, 5) == MBEDTLS_ERR_NET_CONN_RESET, "EPIPE: CONN_RESET");

	setup(ks, TLS_1_2, false);
	tap_ok(io_send_alert(ks, MBEDTLS_SSL_ALERT_LEVEL_WARNING,
			     MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY) == 0 &&
		       sent_alert(0, MBEDTLS_SSL_ALERT_LEVEL_WARNING,
				  MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY),
	       "alert: one control record of type 21");
	net.fd = -1;
	tap_ok(io_write(ks, hello, 5) == MBEDTLS_ERR_NET_INVALID_CONTEXT && nsent == 1,
	       "after mbedtls_net_free: INVALID_CONTEXT, nothing sent");
}

/* A custom BIO's socket (issue 15): its context is the app's own, never read as a net context. */
static void test_custom_bio(struct ksock *ks)
{
	setup(ks, TLS_1_3, false);
	ks->net = NULL; /* read as mbedtls_net_context, it would crash */
	ks->net_send = ks->net_bio = false;
	tap_ok(io_write(ks, hello, 5) == 5 && nsent == 1,
	       "custom BIO: the proven descriptor written, the app's context not read");
	ks->moved = true; /* set_bio with other callbacks after the hand-off */
	tap_ok(io_write(ks, hello, 5) == MBEDTLS_ERR_SSL_BAD_INPUT_DATA && nsent == 1,
	       "custom BIO replaced after the hand-off: BAD_INPUT_DATA, nothing sent");
}

/* ---- RX: data ---- */

static void test_read_data(struct ksock *ks)
{
	unsigned char buf[64];
	setup(ks, TLS_1_3, false);
	expect(MBEDTLS_SSL_MSG_APPLICATION_DATA, hello, 5);
	tap_ok(recv_read(ks, buf, sizeof(buf)) == 5 && memcmp(buf, hello, 5) == 0 &&
		       !ks->io.rx_partial,
	       "a whole data record");
	expect(MBEDTLS_SSL_MSG_APPLICATION_DATA, hello, 5);
	tap_ok(recv_read(ks, buf, 2) == 2 && ks->io.rx_partial, "a partial read: the rest stays");
	tap_ok(recv_bytes_avail(ks) == 3, "bytes_avail: the rest of the record (3)");
	tap_ok(recv_read(ks, buf, sizeof(buf)) == 3 && memcmp(buf, "llo", 3) == 0 &&
		       !ks->io.rx_partial,
	       "the rest, then at a record boundary");
	tap_ok(recv_bytes_avail(ks) == 0, "bytes_avail at a boundary: 0");
	tap_ok(recv_read(ks, buf, sizeof(buf)) == MBEDTLS_ERR_SSL_WANT_READ,
	       "nothing there: WANT_READ");
	expect_err(EINTR);
	tap_ok(recv_read(ks, buf, sizeof(buf)) == MBEDTLS_ERR_SSL_WANT_READ, "EINTR: WANT_READ");
	expect_err(EBADMSG);
	tap_ok(recv_read(ks, buf, sizeof(buf)) == MBEDTLS_ERR_SSL_INVALID_MAC &&
		       sent_alert(0, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
				  MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC),
	       "EBADMSG: INVALID_MAC and a bad_record_mac alert");
	expect_err(EKEYEXPIRED);
	tap_ok(recv_read(ks, buf, sizeof(buf)) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE,
	       "EKEYEXPIRED (paused at a KeyUpdate): UNEXPECTED_MESSAGE");
	expect(0, NULL, 0);
	tap_ok(recv_read(ks, buf, sizeof(buf)) == 0, "EOF: 0");
	expect(MBEDTLS_SSL_MSG_APPLICATION_DATA, hello, 5);
	script[nscript - 1].no_type = true;
	tap_ok(recv_read(ks, buf, sizeof(buf)) == MBEDTLS_ERR_SSL_BAD_INPUT_DATA,
	       "bytes without a record type (not kTLS): BAD_INPUT_DATA");
}

static void test_timeout(struct ksock *ks)
{
	unsigned char buf[16];
	struct timespec a, b;
	setup(ks, TLS_1_3, false);
	ks->waits = true;
	conf_note_read_timeout(ks->conf, 50);
	clock_gettime(CLOCK_MONOTONIC, &a);
	int ret = recv_read(ks, buf, sizeof(buf));
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	tap_ok(ret == MBEDTLS_ERR_SSL_TIMEOUT && ms >= 45,
	       "read timeout (50 ms): TIMEOUT after %ld ms", ms);
	conf_note_read_timeout(ks->conf, 0);
}

/* ---- RX: control records ---- */

static int read_one(struct ksock *ks)
{
	unsigned char buf[64];
	return recv_read(ks, buf, sizeof(buf));
}

static void test_alerts(struct ksock *ks)
{
	const unsigned char warning[] = { MBEDTLS_SSL_ALERT_LEVEL_WARNING,
					  MBEDTLS_SSL_ALERT_MSG_USER_CANCELED };
	const unsigned char close_notify[] = { MBEDTLS_SSL_ALERT_LEVEL_WARNING,
					       MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY };
	const unsigned char fatal[] = { MBEDTLS_SSL_ALERT_LEVEL_FATAL,
					MBEDTLS_SSL_ALERT_MSG_HANDSHAKE_FAILURE };
	const unsigned char three[] = { 1, 0, 0 };
	setup(ks, TLS_1_3, false);
	expect(MBEDTLS_SSL_MSG_ALERT, warning, 2);
	expect(MBEDTLS_SSL_MSG_APPLICATION_DATA, hello, 5);
	tap_ok(read_one(ks) == 5, "a warning alert is ignored, the data after it returned");
	expect(MBEDTLS_SSL_MSG_ALERT, close_notify, 2);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY,
	       "close_notify: PEER_CLOSE_NOTIFY");
	expect(MBEDTLS_SSL_MSG_ALERT, fatal, 2);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE,
	       "fatal alert: FATAL_ALERT_MESSAGE");
	expect(MBEDTLS_SSL_MSG_ALERT, three, 3);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_INVALID_RECORD,
	       "a 3-byte alert record: INVALID_RECORD");
	expect(MBEDTLS_SSL_MSG_CHANGE_CIPHER_SPEC, three, 1);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE,
	       "a CCS record: UNEXPECTED_MESSAGE");
	expect(99, three, 1);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE,
	       "an unknown record type: UNEXPECTED_MESSAGE");
	tap_ok(nsent == 0, "none of these sent anything");
}

static void test_handshake_messages(struct ksock *ks)
{
	const unsigned char ticket[] = { MBEDTLS_SSL_HS_NEW_SESSION_TICKET, 0, 0, 4, 1, 2, 3, 4 };
	const unsigned char hello_request[] = { MBEDTLS_SSL_HS_HELLO_REQUEST, 0, 0, 0 };
	setup(ks, TLS_1_3, false);
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ticket, 8);
	expect(MBEDTLS_SSL_MSG_APPLICATION_DATA, hello, 5);
	tap_ok(read_one(ks) == 5 && nsent == 0,
	       "TLS 1.3 client: a ticket is dropped, the data returned");
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ticket, 3);
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ticket + 3, 5);
	expect(MBEDTLS_SSL_MSG_APPLICATION_DATA, hello, 5);
	tap_ok(read_one(ks) == 5 && ks->io.ctrl_len == 0,
	       "a ticket cut over two records, then data");
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ticket, 3);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_WANT_READ && ks->io.ctrl_len == 3,
	       "half a message, then nothing: WANT_READ, the half kept");
	expect(MBEDTLS_SSL_MSG_ALERT, ticket, 2);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE,
	       "a message cut off by another record type: UNEXPECTED_MESSAGE");
	setup(ks, TLS_1_3, true);
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ticket, 8);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE,
	       "TLS 1.3 server: a ticket is UNEXPECTED_MESSAGE");

	setup(ks, TLS_1_2, false);
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, hello_request, 4);
	expect(MBEDTLS_SSL_MSG_APPLICATION_DATA, hello, 5);
	tap_ok(read_one(ks) == 5 && sent_alert(0, MBEDTLS_SSL_ALERT_LEVEL_WARNING,
					       MBEDTLS_SSL_ALERT_MSG_NO_RENEGOTIATION),
	       "TLS 1.2 HelloRequest: a no_renegotiation warning, the connection goes on");
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ticket, 8);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE,
	       "TLS 1.2: another handshake message is UNEXPECTED_MESSAGE");
}

static void test_key_updates(struct ksock *ks)
{
	const unsigned char ku[] = { 24, 0, 0, 1, 0 };
	const unsigned char ku_bad[] = { 24, 0, 0, 1, 2 };
	const unsigned char ku_long[] = { 24, 0, 0, 2, 0, 0 };
	setup(ks, TLS_1_3, false);
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ku, 5);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE && nsent == 0,
	       "KeyUpdate without a next secret: UNEXPECTED_MESSAGE (as Mbed TLS), no alert");
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ku_bad, 5);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_ILLEGAL_PARAMETER &&
		       sent_alert(0, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
				  MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER),
	       "KeyUpdate of value 2: ILLEGAL_PARAMETER and its alert");
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ku_long, 6);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_DECODE_ERROR &&
		       sent_alert(1, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
				  MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR),
	       "KeyUpdate with a 2-byte body: DECODE_ERROR and its alert");
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ku, 3);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE &&
		       sent_alert(2, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
				  MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE),
	       "a record that ends inside a KeyUpdate: UNEXPECTED_MESSAGE and its alert");
	unsigned char two[10];
	memcpy(two, ku, 5);
	memcpy(two + 5, ku, 5);
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, two, 10);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE &&
		       sent_alert(3, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
				  MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE),
	       "a KeyUpdate not last in its record: UNEXPECTED_MESSAGE and its alert");
	setup(ks, TLS_1_2, false);
	expect(MBEDTLS_SSL_MSG_HANDSHAKE, ku, 5);
	tap_ok(read_one(ks) == MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE && nsent == 0,
	       "TLS 1.2: a KeyUpdate is UNEXPECTED_MESSAGE");
}

int main(void)
{
	int fds[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds))
		return 1;
	setenv("KTLS_SHIM_LOG", "off", 1);
	test_fd = fds[0];
	mbedtls_ssl_init(&ssl);
	conf_note_endpoint((const mbedtls_ssl_config *)&server_conf, MBEDTLS_SSL_IS_SERVER);
	tap_plan(45);
	struct ksock ks = { 0 };
	test_write(&ks);
	test_custom_bio(&ks);
	test_read_data(&ks);
	test_timeout(&ks);
	test_alerts(&ks);
	test_handshake_messages(&ks);
	test_key_updates(&ks);
	ksock_free(&ks);
	return tap_done();
}
