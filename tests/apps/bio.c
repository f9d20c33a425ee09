/* SPDX-License-Identifier: Apache-2.0 */
/* The apps' own BIO callbacks: see bio.h. Errors map as mbedtls_net_send/recv map them, so a
 * mode changes how the bytes travel, never what the app sees. */
#include "bio.h"
#include "bio-async.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

_Thread_local unsigned long bio_calls;

static const char *const names[BIO_MODE_COUNT] = {
	[BIO_NET] = "net",
	[BIO_SYNC] = "sync",
	[BIO_SYNC_RW] = "sync-rw",
	[BIO_SYNC_IOV] = "sync-iov",
	[BIO_SYNC_MSG] = "sync-msg",
	[BIO_OWN_WAIT] = "own-wait",
	[BIO_TIMEOUT_ERROR] = "timeout-error",
	[BIO_POLL_FIRST] = "poll-first",
	[BIO_BUFFERING] = "buffering",
	[BIO_ASYNC] = "async",
	[BIO_TWO_SOCKET] = "two-socket",
	[BIO_LIE_COUNT] = "lie-count",
	[BIO_LIE_FEWER] = "lie-fewer",
	[BIO_LIE_BYTES] = "lie-bytes",
	[BIO_SWITCH_FD] = "switch-fd",
};

int bio_mode_parse(const char *name)
{
	for (int m = 0; m < BIO_MODE_COUNT; m++)
		if (!strcmp(name, names[m]))
			return m;
	return -1;
}

const char *bio_mode_list(void)
{
	static char list[200];
	for (int m = 0; !list[0] && m < BIO_MODE_COUNT; m++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", m ? "|" : "",
			 names[m]);
	return list;
}

static void bio_die(const char *what)
{
	fprintf(stderr, "ERROR --bio: %s: %s\n", what, strerror(errno));
	exit(1);
}

int bio_io_error(bool sending)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return sending ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_SSL_WANT_READ;
	if (errno == EPIPE || errno == ECONNRESET)
		return MBEDTLS_ERR_NET_CONN_RESET;
	return sending ? MBEDTLS_ERR_NET_SEND_FAILED : MBEDTLS_ERR_NET_RECV_FAILED;
}

static int result(ssize_t r, bool sending)
{
	return r >= 0 ? (int)r : bio_io_error(sending);
}

/* ---- the stateless modes: the context is the mbedtls_net_context, read at each call -------- */

static int fd_of(void *ctx)
{
	return ((mbedtls_net_context *)ctx)->fd;
}

/* An entry of a callback, counted; a context whose socket was freed gets what
 * mbedtls_net_send/recv answer. */
#define ENTER(ctx)                                      \
	int fd = fd_of(ctx);                            \
	bio_calls++;                                    \
	if (fd < 0) {                                   \
		return MBEDTLS_ERR_NET_INVALID_CONTEXT; \
	}

/* send/recv on the socket: the sync mode, and what the modes with state build on. */
static int sock_send(mbedtls_net_context *net, const unsigned char *buf, size_t len)
{
	return net->fd < 0 ? MBEDTLS_ERR_NET_INVALID_CONTEXT
			   : result(send(net->fd, buf, len, MSG_NOSIGNAL), true);
}

static int sock_recv(mbedtls_net_context *net, unsigned char *buf, size_t len)
{
	return net->fd < 0 ? MBEDTLS_ERR_NET_INVALID_CONTEXT
			   : result(recv(net->fd, buf, len, 0), false);
}

static int sync_send(void *ctx, const unsigned char *buf, size_t len)
{
	bio_calls++;
	return sock_send(ctx, buf, len);
}

static int sync_recv(void *ctx, unsigned char *buf, size_t len)
{
	bio_calls++;
	return sock_recv(ctx, buf, len);
}

/* A finite wait of the app's own, then the read: what many programs' BIOs do. */
static int sync_recv_timeout(void *ctx, unsigned char *buf, size_t len, uint32_t timeout)
{
	ENTER(ctx);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, timeout ? (int)timeout : -1);
	if (n == 0)
		return MBEDTLS_ERR_SSL_TIMEOUT;
	return n < 0 ? bio_io_error(false) : sock_recv(ctx, buf, len);
}

/* A wait of the app's own, longer than any Mbed TLS gave it: after a hand-off nobody would keep
 * it (the app gives up after 10 s without data; here it never has to). */
static int own_wait_recv(void *ctx, unsigned char *buf, size_t len)
{
	ENTER(ctx);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int n = poll(&p, 1, 10000);
	if (n <= 0)
		return n == 0 ? MBEDTLS_ERR_SSL_WANT_READ : bio_io_error(false);
	return sock_recv(ctx, buf, len);
}

/* A timeout of the socket (SO_RCVTIMEO) told as an error of the app's own. */
static int timeout_error_recv(void *ctx, unsigned char *buf, size_t len)
{
	ENTER(ctx);
	ssize_t r = recv(fd, buf, len, 0);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return MBEDTLS_ERR_NET_RECV_FAILED;
	return result(r, false);
}

/* No timeout of its own, yet never WANT_READ on a non-blocking socket: blocking, emulated. */
static int poll_first_recv(void *ctx, unsigned char *buf, size_t len)
{
	ENTER(ctx);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, -1) < 0 ? bio_io_error(false) : sock_recv(ctx, buf, len);
}

static int rw_send(void *ctx, const unsigned char *buf, size_t len)
{
	ENTER(ctx);
	return result(write(fd, buf, len), true);
}

static int rw_recv(void *ctx, unsigned char *buf, size_t len)
{
	ENTER(ctx);
	return result(read(fd, buf, len), false);
}

/* Two halves, so that a watcher must join the pieces of one call. */
static int iov_send(void *ctx, const unsigned char *buf, size_t len)
{
	ENTER(ctx);
	struct iovec v[2] = { { (void *)buf, len / 2 },
			      { (void *)(buf + len / 2), len - len / 2 } };
	return result(writev(fd, v, 2), true);
}

static int iov_recv(void *ctx, unsigned char *buf, size_t len)
{
	ENTER(ctx);
	struct iovec v[2] = { { buf, len / 2 }, { buf + len / 2, len - len / 2 } };
	return result(readv(fd, v, 2), false);
}

static int msg_send(void *ctx, const unsigned char *buf, size_t len)
{
	ENTER(ctx);
	struct iovec v = { (void *)buf, len };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	return result(sendmsg(fd, &m, MSG_NOSIGNAL), true);
}

static int msg_recv(void *ctx, unsigned char *buf, size_t len)
{
	ENTER(ctx);
	struct iovec v = { buf, len };
	struct msghdr m = { .msg_iov = &v, .msg_iovlen = 1 };
	return result(recvmsg(fd, &m, 0), false);
}

static const struct {
	mbedtls_ssl_send_t *send;
	mbedtls_ssl_recv_t *recv;
} stateless[] = {
	[BIO_NET] = { mbedtls_net_send, mbedtls_net_recv },
	[BIO_SYNC] = { sync_send, sync_recv },
	[BIO_SYNC_RW] = { rw_send, rw_recv },
	[BIO_SYNC_IOV] = { iov_send, iov_recv },
	[BIO_SYNC_MSG] = { msg_send, msg_recv },
	[BIO_OWN_WAIT] = { sync_send, own_wait_recv },
	[BIO_TIMEOUT_ERROR] = { sync_send, timeout_error_recv },
	[BIO_POLL_FIRST] = { sync_send, poll_first_recv },
};

/* ---- the modes with state ------------------------------------------------------------------- */

#define XOR_KEY 0x5a

struct bio {
	enum bio_mode mode;
	mbedtls_net_context *net;
	unsigned calls; /* switch-fd: callback calls so far */
	int held;	/* lie-count: the byte reported sent but not yet sent, or -1 */
	bool lied;
	bool owed; /* lie-fewer: the socket took a byte more than reported; Mbed TLS resends it */
	size_t rpos, rlen; /* buffering: rbuf[rpos, rlen) not yet given to Mbed TLS */
	unsigned char rbuf[4096];
	int copy_fd, sink_fd; /* two-socket: the copies go into copy_fd, drained from sink_fd */
	pthread_t drain;
	struct async *async;
};

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static int buffered_recv(struct bio *b, unsigned char *buf, size_t len)
{
	if (b->rpos == b->rlen) {
		int r = sock_recv(b->net, b->rbuf, sizeof(b->rbuf));
		if (r <= 0)
			return r;
		b->rpos = 0;
		b->rlen = (size_t)r;
	}
	size_t n = min_size(len, b->rlen - b->rpos);
	memcpy(buf, b->rbuf + b->rpos, n);
	b->rpos += n;
	return (int)n;
}

/* lie-count: the byte held back goes out first at the next call, so the stream stays intact
 * as long as Mbed TLS keeps calling the BIO (it does: each flight is followed by a read). */
static int flush_held(struct bio *b)
{
	unsigned char c = (unsigned char)b->held;
	if (b->held < 0)
		return 0;
	int r = sock_send(b->net, &c, 1);
	if (r == 1)
		b->held = -1;
	return r == 1 ? 0 : r < 0 ? r : MBEDTLS_ERR_SSL_WANT_WRITE;
}

static int lie_send(struct bio *b, const unsigned char *buf, size_t len)
{
	int ret = flush_held(b);
	if (ret)
		return ret;
	if (b->lied || len < 2)
		return sock_send(b->net, buf, len);
	ret = sock_send(b->net, buf, len - 1);
	if (ret != (int)len - 1)
		return ret;
	b->lied = true;
	b->held = buf[len - 1];
	return (int)len; /* the lie: one byte more than the socket took */
}

/* lie-fewer: one send reports a byte fewer than the socket took; Mbed TLS gives that byte again
 * at the next call, which skips it, so the stream stays intact. */
static int fewer_send(struct bio *b, const unsigned char *buf, size_t len)
{
	int ret;
	if (b->owed) {
		ret = len == 1 ? 0 : sock_send(b->net, buf + 1, len - 1);
		b->owed = ret < 0;
		return ret < 0 ? ret : ret + 1;
	}
	if (b->lied || len < 2)
		return sock_send(b->net, buf, len);
	if ((ret = sock_send(b->net, buf, len)) != (int)len)
		return ret;
	b->lied = b->owed = true;
	return (int)len - 1; /* the lie: one byte fewer than the socket took */
}

static int xor_send(struct bio *b, const unsigned char *buf, size_t len)
{
	unsigned char tmp[4096];
	size_t n = min_size(len, sizeof(tmp));
	for (size_t i = 0; i < n; i++)
		tmp[i] = buf[i] ^ XOR_KEY;
	return sock_send(b->net, tmp, n); /* a short send: Mbed TLS sends the rest next */
}

static int xor_recv(struct bio *b, unsigned char *buf, size_t len)
{
	int r = sock_recv(b->net, buf, len);
	for (int i = 0; i < r; i++)
		buf[i] ^= XOR_KEY;
	return r;
}

static void copy_out(struct bio *b, const unsigned char *buf, int n)
{
	for (ssize_t off = 0, r; off < n; off += r)
		if ((r = send(b->copy_fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL)) <= 0)
			bio_die("two-socket copy");
}

static void *drain(void *arg)
{
	struct bio *b = arg;
	unsigned char sink[16384];
	while (recv(b->sink_fd, sink, sizeof(sink), 0) > 0)
		;
	return NULL;
}

/* two-socket: a loopback TCP connection of its own, one end written, the other drained. */
static void copy_start(struct bio *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &sl))
		bio_die("two-socket listener");
	b->copy_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (b->copy_fd < 0 || connect(b->copy_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (b->sink_fd = accept(l, NULL, NULL)) < 0)
		bio_die("two-socket connection");
	close(l);
	if ((errno = pthread_create(&b->drain, NULL, drain, b)) != 0)
		bio_die("pthread_create");
}

/* switch-fd: at its third call the BIO moves to a dup of the socket and closes the old number. */
static void maybe_switch(struct bio *b)
{
	if (++b->calls != 3 || b->net->fd < 0)
		return;
	int fd = dup(b->net->fd);
	if (fd < 0)
		bio_die("dup");
	close(b->net->fd);
	b->net->fd = fd;
}

static int state_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct bio *b = ctx;
	int r;
	bio_calls++;
	switch (b->mode) {
	case BIO_ASYNC: return async_send(b->async, buf, len);
	case BIO_LIE_COUNT: return lie_send(b, buf, len);
	case BIO_LIE_FEWER: return fewer_send(b, buf, len);
	case BIO_LIE_BYTES: return xor_send(b, buf, len);
	case BIO_TWO_SOCKET:
		if ((r = sock_send(b->net, buf, len)) > 0)
			copy_out(b, buf, r);
		return r;
	case BIO_SWITCH_FD: maybe_switch(b); return sock_send(b->net, buf, len);
	default: return sock_send(b->net, buf, len);
	}
}

static int state_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct bio *b = ctx;
	int r;
	bio_calls++;
	switch (b->mode) {
	case BIO_ASYNC: return async_recv(b->async, buf, len);
	case BIO_BUFFERING: return buffered_recv(b, buf, len);
	case BIO_LIE_COUNT: return (r = flush_held(b)) ? r : sock_recv(b->net, buf, len);
	case BIO_LIE_BYTES: return xor_recv(b, buf, len);
	case BIO_TWO_SOCKET:
		if ((r = sock_recv(b->net, buf, len)) > 0)
			copy_out(b, buf, r);
		return r;
	case BIO_SWITCH_FD: maybe_switch(b); return sock_recv(b->net, buf, len);
	default: return sock_recv(b->net, buf, len);
	}
}

struct bio *bio_start(mbedtls_ssl_context *ssl, mbedtls_net_context *net, enum bio_mode mode,
		      uint32_t read_timeout_ms)
{
	if (read_timeout_ms && mode != BIO_NET && mode != BIO_SYNC) {
		fprintf(stderr, "ERROR --bio %s has no read timeout (net and sync have)\n",
			names[mode]);
		exit(2);
	}
	struct timeval tv = { .tv_sec = 10 };
	if (mode == BIO_TIMEOUT_ERROR &&
	    setsockopt(net->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		bio_die("SO_RCVTIMEO");
	if (BIO_STATELESS(mode)) {
		mbedtls_ssl_set_bio(ssl, net, stateless[mode].send, stateless[mode].recv,
				    !read_timeout_ms  ? NULL
				    : mode == BIO_NET ? mbedtls_net_recv_timeout
						      : sync_recv_timeout);
		return NULL;
	}
	struct bio *b = calloc(1, sizeof(*b));
	if (!b)
		bio_die("calloc");
	*b = (struct bio){ .mode = mode, .net = net, .held = -1, .copy_fd = -1, .sink_fd = -1 };
	if (mode == BIO_TWO_SOCKET)
		copy_start(b);
	if (mode == BIO_ASYNC && !(b->async = async_start(net->fd)))
		bio_die("async threads");
	mbedtls_ssl_set_bio(ssl, b, state_send, state_recv, NULL);
	return b;
}

void bio_end(struct bio *b)
{
	if (!b)
		return;
	if (b->mode == BIO_LIE_COUNT)
		flush_held(b);
	async_end(b->async);
	if (b->copy_fd >= 0) {
		close(b->copy_fd); /* the drain thread reads the end of the stream */
		pthread_join(b->drain, NULL);
		close(b->sink_fd);
	}
	free(b);
}
