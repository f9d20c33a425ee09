/* SPDX-License-Identifier: Apache-2.0 */
/* Reading one record from a kernel-RX socket, waiting as the application's own BIO would. */
#include "recv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/tls.h>
#include <mbedtls/net_sockets.h>

#include "log.h"

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
	case EINTR:
		return MBEDTLS_ERR_SSL_WANT_READ;
	case EPIPE:
	case ECONNRESET:
		return MBEDTLS_ERR_NET_CONN_RESET;
	case EBADMSG:
		return MBEDTLS_ERR_SSL_INVALID_MAC;
	case EMSGSIZE:
		/* A header announcing more than a record may hold: Mbed TLS's own word for it is
		 * "more data than fits" (BAD_INPUT_DATA). */
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	case EINVAL:
		return MBEDTLS_ERR_SSL_INVALID_RECORD;
	case EKEYEXPIRED:
		/* Decryption paused at a KeyUpdate no new key followed (6.14+): Mbed TLS's word for
		 * a KeyUpdate. */
		return MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE;
	default:
		return MBEDTLS_ERR_NET_RECV_FAILED;
	}
}

ssize_t recv_record(struct conn *c, unsigned char *buf, size_t len, int flags, unsigned char *type,
		    bool *eor)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))];
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(c->fd, &msg, flags);
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
static ssize_t recv_rest(struct conn *c, unsigned char *buf, size_t len, unsigned char *type,
			 bool *eor, int64_t end, int *nap)
{
	int left = ms_left(end), fl = fcntl(c->fd, F_GETFL);
	if (fl >= 0 && !(fl & O_NONBLOCK)) {
		if (left < 0)
			return recv_record(c, buf, len, 0, type, eor);
		struct timeval app, tv = { .tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000 };
		socklen_t l = sizeof(app);
		if (left == 0 || getsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &app, &l))
			return -EAGAIN;
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		ssize_t n = recv_record(c, buf, len, 0, type, eor);
		setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &app, sizeof(app));
		return n;
	}
	poll(NULL, 0, left >= 0 && left < *nap ? left : *nap);
	if (*nap < 16)
		*nap *= 2;
	return recv_record(c, buf, len, MSG_DONTWAIT, type, eor);
}

ssize_t recv_waiting(struct conn *c, unsigned char *buf, size_t len, unsigned char *type,
		     bool *eor)
{
	if (!c->app_recv_timeout)
		return recv_record(c, buf, len, 0, type, eor);
	ssize_t n = recv_record(c, buf, len, MSG_DONTWAIT, type, eor);
	uint32_t timeout = n == -EAGAIN ? conn_read_timeout(c) : 0;
	int64_t end = timeout ? now_ms() + timeout : 0;
	int nap = 1;
	while (n == -EAGAIN) {
		int left = ms_left(end);
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
		int r = left == 0 ? 0 : poll(&pfd, 1, left);
		if (r == 0)
			return MBEDTLS_ERR_SSL_TIMEOUT;
		if (r < 0)
			return -errno;
		n = recv_record(c, buf, len, MSG_DONTWAIT, type, eor);
		if (n == -EAGAIN)
			n = recv_rest(c, buf, len, type, eor, end, &nap);
	}
	return n;
}

int recv_failed(struct conn *c, ssize_t n)
{
	if (n == NOT_KTLS) {
		log_msg(LOG_ERROR, "fd=%d: bytes without a record type: not the kernel-TLS socket any "
			"more; refused", c->fd);
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	}
	return n == MBEDTLS_ERR_SSL_TIMEOUT ? (int)n : recv_error((int)-n);
}
