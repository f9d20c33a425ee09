/* SPDX-License-Identifier: Apache-2.0 */
#include "bioproof.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/ssl.h>

static void fail(struct bioproof *p, const char *why)
{
	if (!p->why)
		p->why = why; /* the first broken rule is the one the log names */
}

bool bioproof_begin(struct bioproof_call *k, struct bioproof *p, enum dir d,
		    const unsigned char *buf, size_t len, long max_wait)
{
	*k = (struct bioproof_call){ .p = p, .d = d, .buf = buf, .len = len, .max_wait = max_wait };
	p->calls_open++;
	if (d == DIR_TX || len <= p->copy_cap)
		return true;
	/* Allocated here, never inside the libc call (which may be a signal handler's). */
	unsigned char *copy = malloc(len);
	if (!copy) {
		fail(p, BIOPROOF_NO_MEM);
		return false;
	}
	bioproof_release(p);
	p->copy = copy;
	p->copy_cap = len;
	return true;
}

/* The first n bytes of iov compared with (TX) or copied to (RX) at, n fitting in both. */
static bool walk(const struct iovec *iov, int iovcnt, size_t n, unsigned char *at, bool copy)
{
	for (int i = 0; i < iovcnt && n; i++) {
		size_t part = iov[i].iov_len < n ? iov[i].iov_len : n;
		if (copy)
			memcpy(at, iov[i].iov_base, part);
		else if (memcmp(at, iov[i].iov_base, part))
			return false;
		at += part;
		n -= part;
	}
	return n == 0; /* libc never moves more than the vector holds: else a lie to refuse */
}

void bioproof_data(struct bioproof_call *k, enum dir d, int fd, unsigned gen,
		   const struct iovec *iov, int iovcnt, ssize_t result, unsigned how)
{
	struct bioproof *p = k->p;
	if (!p->have_fd) {
		p->have_fd = true;
		p->fd = fd;
		p->gen = gen;
	} else if (fd != p->fd || gen != p->gen) {
		fail(p, BIOPROOF_TWO_FDS);
	}
	/* After a would-block the plain answer is to return: a call now is a retry (after a wait
	 * of its own, or at once: emulating a blocking socket), which the shim would not make. */
	if (k->would_block)
		fail(p, BIOPROOF_OWN_WAY);
	if (how & BIOPROOF_DONTWAIT)
		p->dontwait[d] = true;
	if (result < 0 && (how & BIOPROOF_WOULD_BLOCK)) {
		p->would_block[d] = true;
		k->would_block |= d == k->d;
	}
	if (result <= 0)
		return;
	if (d != k->d) {
		/* A write in a receive callback puts bytes on the wire Mbed TLS never gave; a read in
		 * a send callback consumes bytes Mbed TLS never sees. */
		fail(p, d == DIR_TX ? BIOPROOF_DIFFER : BIOPROOF_AHEAD);
		return;
	}
	size_t n = (size_t)result;
	if (n > k->len - k->bytes) {
		/* TX: the socket took bytes Mbed TLS never gave; RX: more than the BIO may return. */
		fail(p, k->d == DIR_TX ? BIOPROOF_DIFFER : BIOPROOF_AHEAD);
		k->bytes = k->len;
		return;
	}
	/* TX compares against Mbed TLS's buffer (const: never written, copy is false). */
	unsigned char *at =
		k->d == DIR_TX ? (unsigned char *)(uintptr_t)k->buf + k->bytes : p->copy + k->bytes;
	if (!walk(iov, iovcnt, n, at, k->d == DIR_RX))
		fail(p, BIOPROOF_DIFFER);
	k->bytes += n;
}

void bioproof_unseen(struct bioproof_call *k)
{
	fail(k->p, BIOPROOF_UNSEEN);
}

void bioproof_fail(struct bioproof *p, const char *why)
{
	fail(p, why);
}

void bioproof_wait(struct bioproof_call *k, long timeout_ms)
{
	/* After the hand-off nobody would wait this way: a finite wait is lost (or, with no data,
	 * could become a wait for ever). Mbed TLS's own read timeout the shim keeps (recv.c), so a
	 * wait up to it is no loss, and one for ever is longer than it. */
	if (timeout_ms >= 0 ? timeout_ms > k->max_wait : k->max_wait >= 0)
		fail(k->p, BIOPROOF_WAITS);
	/* For ever in a plain callback: harmless on a blocking socket; on a non-blocking one the BIO
	 * emulates blocking where the shim would answer WANT_READ/WANT_WRITE (the mode is read at the
	 * decision: bioproof_answer_verdict). */
	else if (timeout_ms < 0 && !k->forever_ok)
		k->p->waits_forever = true;
}

static void end_tx(struct bioproof_call *k, int ret)
{
	if (ret < 0) {
		if (k->bytes)
			fail(k->p, BIOPROOF_FEWER); /* WANT_WRITE or an error after bytes went */
		return;
	}
	if ((size_t)ret > k->bytes)
		fail(k->p, k->bytes ? BIOPROOF_MORE : BIOPROOF_ASYNC);
	else if ((size_t)ret < k->bytes)
		fail(k->p, BIOPROOF_FEWER);
	else if (ret > 0)
		k->p->proven[DIR_TX] = true;
}

static void end_rx(struct bioproof_call *k, int ret)
{
	struct bioproof *p = k->p;
	if (ret <= 0) {
		if (k->bytes)
			fail(p, BIOPROOF_AHEAD); /* read, yet nothing returned: kept or lost */
		return;
	}
	if ((size_t)ret > k->len)
		fail(p, BIOPROOF_DIFFER); /* more than Mbed TLS asked for */
	else if (k->bytes == 0)
		fail(p, BIOPROOF_ASYNC);
	else if (k->bytes > (size_t)ret)
		fail(p, BIOPROOF_AHEAD);
	else if (k->bytes < (size_t)ret || memcmp(p->copy, k->buf, (size_t)ret))
		fail(p, BIOPROOF_DIFFER);
	else
		p->proven[DIR_RX] = true;
}

/* How the BIO answered a would-block: WANT_READ / WANT_WRITE with nothing moved is what the shim
 * answers after the hand-off; the bytes moved before it, reported, are what a socket reports. */
static void end_would_block(struct bioproof_call *k, int ret)
{
	int want = k->d == DIR_TX ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_SSL_WANT_READ;
	if (ret == want && !k->bytes)
		k->p->answers_want[k->d] = true;
	else if (ret <= 0 || (size_t)ret != k->bytes)
		fail(k->p, BIOPROOF_OWN_WAY); /* its own error (a timeout), or EOF, or a lie */
}

void bioproof_end(struct bioproof_call *k, int ret)
{
	k->p->calls_open--;
	if (k->d == DIR_TX)
		end_tx(k, ret);
	else
		end_rx(k, ret);
	if (k->would_block)
		end_would_block(k, ret);
	if (k->d == DIR_RX && k->bytes)
		explicit_bzero(k->p->copy, k->bytes); /* ciphertext, but nobody needs it now */
}

const char *bioproof_verdict(const struct bioproof *p, unsigned gen_now, int *fd)
{
	*fd = p->have_fd ? p->fd : -1;
	if (p->why)
		return p->why;
	/* A call left without returning: what it moved was never checked. */
	if (p->calls_open)
		return BIOPROOF_ESCAPED;
	if (!p->proven[DIR_TX] || !p->proven[DIR_RX])
		return BIOPROOF_ONE_WAY;
	/* Closed or replaced since it was first seen: maybe not the socket the bytes went to. */
	if (gen_now != p->gen)
		return BIOPROOF_TWO_FDS;
	return NULL;
}

/* The BIO's answer where direction d can meet EAGAIN: a timeout (rarely met in a handshake) or
 * O_NONBLOCK / MSG_DONTWAIT (met on receive in nearly every handshake, on send in almost none).
 * Each direction needs its own answer seen: a callback may pass the would-block on in one
 * direction and wait by itself in the other, which the shim could not do after the hand-off. */
static const char *direction_answer(const struct bioproof *p, bool nonblock, bool timeout,
				    enum dir d)
{
	bool may_block = nonblock || p->dontwait[d] || timeout;
	if (p->would_block[d] && !may_block)
		return BIOPROOF_MODE_CHANGES; /* its EAGAIN came from a mode that is gone */
	return may_block && !p->answers_want[d] ? BIOPROOF_UNANSWERED : NULL;
}

const char *bioproof_answer_verdict(const struct bioproof *p, bool nonblock,
				    const bool timeout[DIR_COUNT], const char *why[DIR_COUNT])
{
	why[DIR_TX] = why[DIR_RX] = NULL;
	if (nonblock && p->waits_forever)
		return BIOPROOF_EMULATES_BLOCKING;
	/* The shim's I/O after the hand-off blocks where such a call would not. */
	if (!nonblock && (p->dontwait[DIR_TX] || p->dontwait[DIR_RX]))
		return BIOPROOF_DONTWAIT_BLOCKING;
	for (int d = 0; d < DIR_COUNT; d++)
		why[d] = direction_answer(p, nonblock, timeout[d], (enum dir)d);
	return why[DIR_TX] && why[DIR_RX] ? why[DIR_RX] : NULL;
}

void bioproof_release(struct bioproof *p)
{
	free(p->copy);
	p->copy = NULL;
	p->copy_cap = 0;
}
