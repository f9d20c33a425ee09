/* SPDX-License-Identifier: Apache-2.0 */
/* --bio async: see bio-async.h. The callbacks make no socket call at all: what a watcher of the
 * BIO's calls must see as "not proven". */
#include "bio-async.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CAP 65536

struct async {
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;  /* any change of the buffers or the flags */
	pthread_t reader, writer;
	int fd, rx_err, tx_err; /* errno of a thread's failed call */
	bool eof, stop;
	size_t rx_len, tx_len;
	unsigned char rx[CAP], tx[CAP];
};

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Waits for the socket (50 ms at most, so that a stop is seen). */
static void wait_fd(struct async *a, short events)
{
	struct pollfd p = { .fd = a->fd, .events = events };
	poll(&p, 1, 50);
}

static void *reader(void *arg)
{
	struct async *a = arg;
	unsigned char tmp[16384];
	for (;;) {
		pthread_mutex_lock(&a->lock);
		while (a->rx_len == CAP && !a->stop)
			pthread_cond_wait(&a->cond, &a->lock);
		size_t room = CAP - a->rx_len;
		bool stop = a->stop;
		pthread_mutex_unlock(&a->lock);
		if (stop)
			return NULL;
		wait_fd(a, POLLIN);
		ssize_t r = recv(a->fd, tmp, min_size(room, sizeof(tmp)), MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		pthread_mutex_lock(&a->lock);
		if (r > 0)
			memcpy(a->rx + a->rx_len, tmp, (size_t)r), a->rx_len += (size_t)r;
		else if (r == 0)
			a->eof = true;
		else
			a->rx_err = errno;
		pthread_cond_broadcast(&a->cond);
		pthread_mutex_unlock(&a->lock);
		if (r <= 0)
			return NULL;
	}
}

/* Sends from the front of tx while the callbacks append behind it (disjoint bytes). */
static void *writer(void *arg)
{
	struct async *a = arg;
	pthread_mutex_lock(&a->lock);
	for (;;) {
		while (a->tx_len == 0 && !a->stop)
			pthread_cond_wait(&a->cond, &a->lock);
		if (a->tx_len == 0 || a->tx_err)
			break;
		size_t n = a->tx_len;
		pthread_mutex_unlock(&a->lock);
		ssize_t r = send(a->fd, a->tx, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		int err = errno;
		if (r < 0 && (err == EAGAIN || err == EINTR))
			wait_fd(a, POLLOUT);
		pthread_mutex_lock(&a->lock);
		if (r > 0) {
			memmove(a->tx, a->tx + r, a->tx_len - (size_t)r);
			a->tx_len -= (size_t)r;
		} else if (err != EAGAIN && err != EINTR) {
			a->tx_err = err;
		}
		pthread_cond_broadcast(&a->cond);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

struct async *async_start(int fd)
{
	struct async *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->fd = fd;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	if ((errno = pthread_create(&a->reader, NULL, reader, a)) ||
	    (errno = pthread_create(&a->writer, NULL, writer, a)))
		return NULL; /* the caller exits */
	return a;
}

int async_send(struct async *a, const unsigned char *buf, size_t len)
{
	pthread_mutex_lock(&a->lock);
	while (a->tx_len == CAP && !a->tx_err)
		pthread_cond_wait(&a->cond, &a->lock);
	int ret;
	if (a->tx_err) {
		errno = a->tx_err;
		ret = bio_io_error(true);
	} else {
		size_t n = min_size(len, CAP - a->tx_len);
		memcpy(a->tx + a->tx_len, buf, n);
		a->tx_len += n;
		ret = (int)n;
		pthread_cond_broadcast(&a->cond);
	}
	pthread_mutex_unlock(&a->lock);
	return ret;
}

int async_recv(struct async *a, unsigned char *buf, size_t len)
{
	pthread_mutex_lock(&a->lock);
	while (!a->rx_len && !a->eof && !a->rx_err)
		pthread_cond_wait(&a->cond, &a->lock);
	int ret = 0; /* the peer closed */
	if (a->rx_len) {
		size_t n = min_size(len, a->rx_len);
		memcpy(buf, a->rx, n);
		memmove(a->rx, a->rx + n, a->rx_len - n);
		a->rx_len -= n;
		ret = (int)n;
		pthread_cond_broadcast(&a->cond);
	} else if (a->rx_err) {
		errno = a->rx_err;
		ret = bio_io_error(false);
	}
	pthread_mutex_unlock(&a->lock);
	return ret;
}

void async_end(struct async *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->writer, NULL); /* after it has sent everything */
	pthread_join(a->reader, NULL);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	free(a);
}
