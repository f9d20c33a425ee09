/* SPDX-License-Identifier: Apache-2.0 */
#include "recv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/tls.h>
#include <mbedtls/net_sockets.h>

#include "conf.h"
#include "control.h"
#include "io.h"
#include "log.h"

/* The two answers of recv_record/recv_waiting that are not the socket's errno: bytes without
 * the kernel's record type (not a kernel-TLS socket), and the config's read timeout ran out. */
#define NOT_KTLS     (-EPROTOTYPE)
#define RECV_TIMEOUT (-ETIME)

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* What Mbed TLS's net_recv says for errno. */
static int recv_error(int err)
{
	switch (err) {
	case EAGAIN:
#if EWOULDBLOCK != EAGAIN
	case EWOULDBLOCK:
#endif
	case EINTR: return MBEDTLS_ERR_SSL_WANT_READ;
	case EPIPE:
	case ECONNRESET: return MBEDTLS_ERR_NET_CONN_RESET;
	case EBADMSG: return MBEDTLS_ERR_SSL_INVALID_MAC;
	case EMSGSIZE:
		/* A header announcing more than a record may hold: Mbed TLS's own word for it is
		 * "more data than fits" (BAD_INPUT_DATA). */
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	case EINVAL: return MBEDTLS_ERR_SSL_INVALID_RECORD;
	case EKEYEXPIRED:
		/* Decryption paused at a KeyUpdate no new key followed (6.14+): Mbed TLS's word for
		 * a KeyUpdate. */
		return MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
	default: return MBEDTLS_ERR_NET_RECV_FAILED;
	}
}

/* One recvmsg with flags: bytes read (0 = EOF), the record type and whether they end the record
 * (the kernel's MSG_EOR: a buffer shorter than the record leaves the rest for the next read), or
 * -errno, or NOT_KTLS. kTLS gives every record's type as a cmsg; bytes without one came from a
 * plain socket, and are never taken for decrypted data. */
static ssize_t recv_record(struct ksock *ks, unsigned char *buf, size_t len, int flags,
			   unsigned char *type, bool *eor)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(ks->fd, &msg, flags);
	if (n < 0)
		return -errno;
	*eor = (msg.msg_flags & MSG_EOR) != 0;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	if (cm && cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
		*type = *CMSG_DATA(cm);
	else if (n > 0)
		return NOT_KTLS;
	return n;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds until end (now_ms() time), -1 for ever (end 0). */
static int ms_left(int64_t end)
{
	if (!end)
		return -1;
	int64_t l = end - now_ms();
	return l <= 0 ? 0 : l < INT_MAX ? (int)l : INT_MAX;
}

/* poll() said readable, yet no whole record is there: part of one arrived (6.1's poll wakes on
 * that, 7.2's does not). Waits for the rest without spinning: a blocking socket in one recvmsg
 * under SO_RCVTIMEO for the time left (the app's value, read just before, put back after), a
 * non-blocking one in naps of 1 to 16 ms. */
static ssize_t recv_rest(struct ksock *ks, unsigned char *buf, size_t len, unsigned char *type,
			 bool *eor, int64_t end, int *nap)
{
	int left = ms_left(end), fl = fcntl(ks->fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK)) {
		if (left < 0)
			return recv_record(ks, buf, len, 0, type, eor);
		struct timeval app, tv = { .tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000 };
		socklen_t l = sizeof(app);
		if (left == 0 || getsockopt(ks->fd, SOL_SOCKET, SO_RCVTIMEO, &app, &l))
			return -EAGAIN;
		setsockopt(ks->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ssize_t n = recv_record(ks, buf, len, 0, type, eor);
		setsockopt(ks->fd, SOL_SOCKET, SO_RCVTIMEO, &app, sizeof(app));
		return n;
	}
	poll(NULL, 0, left >= 0 && left < *nap ? left : *nap);
	if (*nap < 16)
		*nap *= 2;
	return recv_record(ks, buf, len, MSG_DONTWAIT, type, eor);
}

/* recv_record as the application's own BIO would wait. mbedtls_net_recv reads in the socket's
 * mode of the moment. mbedtls_net_recv_timeout first waits until the socket is readable, for the
 * config's read timeout as it is now (0: for ever), then reads: here a read that finds nothing
 * waits in poll() and reads again, until a whole record is there or the time is up
 * (RECV_TIMEOUT). The socket's mode and the app's SO_RCVTIMEO are the app's own. */
static ssize_t recv_waiting(struct ksock *ks, unsigned char *buf, size_t len, unsigned char *type,
			    bool *eor)
{
	if (!ks->waits)
		return recv_record(ks, buf, len, 0, type, eor);
	ssize_t n = recv_record(ks, buf, len, MSG_DONTWAIT, type, eor);
	uint32_t timeout = n == -EAGAIN ? conf_read_timeout(ks->conf) : 0;
	int64_t end = timeout ? now_ms() + timeout : 0;
	int nap = 1;
	while (n == -EAGAIN) {
		int left = ms_left(end);
		struct pollfd pfd = { .fd = ks->fd, .events = POLLIN };
		int r = left == 0 ? 0 : poll(&pfd, 1, left);
		if (r == 0)
			return RECV_TIMEOUT;
		if (r < 0)
			return -errno;
		n = recv_record(ks, buf, len, MSG_DONTWAIT, type, eor);
		if (n == -EAGAIN)
			n = recv_rest(ks, buf, len, type, eor, end, &nap);
	}
	return n;
}

/* The Mbed TLS error for what recv_record or recv_waiting returned below 0. */
static int recv_failed(const struct ksock *ks, ssize_t n)
{
	if (n == NOT_KTLS) {
		log_msg(LOG_ERROR,
			"fd=%d: bytes without a record type: not the kernel-TLS socket any "
			"more; refused",
			ks->fd);
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	}
	return n == RECV_TIMEOUT ? MBEDTLS_ERR_SSL_TIMEOUT : recv_error((int)-n);
}

/* One read that finishes a control message a small read cut: straight into the control buffer.
 * 0 to read on, else what recv_read returns (EOF is 0 there, as Mbed TLS reports it: *done). */
static int finish_control(struct ksock *ks, bool *done)
{
	struct io_state *io = &ks->io;
	unsigned char type = 0;
	bool eor = false;
	int err = 0;
	ssize_t n = recv_waiting(ks, io->ctrl + io->ctrl_len, IO_BUFFER_LEN - io->ctrl_len, &type,
				 &eor);
	*done = n <= 0;
	if (n <= 0)
		return n ? recv_failed(ks, n) : 0;
	*done = control_absorb(ks, type, io->ctrl + io->ctrl_len, (size_t)n, eor, &err) ==
		CTRL_FAILED;
	return err;
}

int recv_read(struct ksock *ks, unsigned char *buf, size_t len)
{
	int err = ksock_check(ks);
	if (err)
		return err;
	if (len == 0)
		return 0;
	for (;;) {
		bool done;
		if (ks->io.ctrl_len) {
			int ret = finish_control(ks, &done);
			if (done)
				return ret;
			continue;
		}
		unsigned char type = 0;
		bool eor = false;
		ssize_t n = recv_waiting(ks, buf, len, &type, &eor);
		int ret = n < 0 ? recv_failed(ks, n) : (int)n;
		if (ret == MBEDTLS_ERR_SSL_INVALID_MAC)
			io_alert(ks, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
				 MBEDTLS_SSL_ALERT_MSG_BAD_RECORD_MAC);
		if (ret <= 0)
			return ret; /* EOF (0, as Mbed TLS reports it) or an error */
		if (type == MBEDTLS_SSL_MSG_APPLICATION_DATA) {
			ks->io.rx_partial = !eor;
			return ret;
		}
		if (control_absorb(ks, type, buf, (size_t)n, eor, &err) == CTRL_FAILED)
			return err;
		/* CTRL_CONSUMED or CTRL_NEED_MORE: read on (blocking) or report WANT_READ from
		 * the next recvmsg (non-blocking). */
	}
}

size_t recv_bytes_avail(struct ksock *ks)
{
	struct io_state *io = &ks->io;
	if (!io->rx_partial || ksock_check(ks))
		return 0;
	/* The rest of the record the app is reading, and maybe more records already decrypted:
	 * peeked into a buffer held only meanwhile (on the heap: an app thread's stack may be
	 * small). */
	unsigned char *peek = malloc(IO_BUFFER_LEN);
	if (!peek)
		return 0;
	unsigned char type = 0;
	bool eor;
	ssize_t n = recv_record(ks, peek, IO_BUFFER_LEN, MSG_PEEK | MSG_DONTWAIT, &type, &eor);
	if (n > 0)
		explicit_bzero(peek, (size_t)n); /* plaintext the app has not read yet */
	free(peek);
	if (n <= 0 || type != MBEDTLS_SSL_MSG_APPLICATION_DATA) {
		io->rx_partial = false; /* nothing of it left after all */
		return 0;
	}
	return (size_t)n;
}
