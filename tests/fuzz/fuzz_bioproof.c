/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the custom-BIO proof (shim/bioproof.c) driven by random BIO calls, honest or
 * lying, with an oracle of its own: whenever the verdict says "proven" on descriptor F, the bytes
 * that went out on F are exactly the bytes Mbed TLS sent, the bytes read from F exactly the bytes
 * Mbed TLS received, nothing moved on another descriptor, F was never replaced, and no call the
 * watch cannot follow and no wait of the BIO's own happened; every would-block was answered
 * WANT_READ/WANT_WRITE (or by the bytes moved before it), and where the socket's mode lets a
 * call return EAGAIN such an answer was seen. No lying sequence is ever proven.
 *
 * Input: byte 0 the socket's mode at the decision (bit 0 O_NONBLOCK, bit 1 SO_RCVTIMEO, bit 2
 * SO_SNDTIMEO); then a list of BIO calls. Per call: byte 0 bit 0 the direction, bit 1 a recv_timeout (max
 * wait 1000 ms), bits 2-3 how many libc events (0-3), bits 4-7 the buffer length (1-16); then per
 * event two bytes (kind, amount); then one byte for the BIO's return and, for a send, the buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/ssl.h>

#include "bioproof.h"

#define CHECK(x)                          \
	do {                              \
		if (!(x))                 \
			__builtin_trap(); \
	} while (0)

#define MAXSTREAM 65536
#define NFD	  2 /* descriptors 3 and 4 */

struct stream {
	unsigned char b[MAXSTREAM];
	size_t n;
};

static struct {
	struct stream mbed[DIR_COUNT];	    /* what Mbed TLS sent (TX) and received (RX) */
	struct stream wire[NFD][DIR_COUNT]; /* what went out on and was read from each descriptor */
	unsigned gen[NFD];		    /* each descriptor's generation now */
	unsigned used_gen[NFD];		    /* its generation at its first use, +1 (0: unused) */
	bool replaced[NFD];		    /* used, then closed or replaced */
	bool forbidden;			    /* an unseen call, an own wait or own answer happened */
	bool nonblock, timeout[DIR_COUNT];  /* the socket's mode at the decision */
	bool dontwait[DIR_COUNT];	    /* MSG_DONTWAIT asked in that direction */
	bool forever;			    /* a wait for ever in a plain callback */
	bool would_block[DIR_COUNT];	    /* a data call of that direction met EAGAIN */
	bool answered[DIR_COUNT];	    /* a would-block answered WANT_READ / WANT_WRITE */
	bool blocked;			    /* this call had a would-block of its direction */
	size_t moved;			    /* bytes this call moved in its direction */
} m;

struct input {
	const uint8_t *p;
	size_t left;
};

static unsigned take(struct input *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

static void append(struct stream *s, const unsigned char *b, size_t n)
{
	if (s->n + n > MAXSTREAM)
		n = MAXSTREAM - s->n; /* past the cap nothing is compared: inputs stay short */
	memcpy(s->b + s->n, b, n);
	s->n += n;
}

static void use_fd(int i)
{
	if (!m.used_gen[i])
		m.used_gen[i] = m.gen[i] + 1;
	else if (m.used_gen[i] != m.gen[i] + 1)
		m.replaced[i] = true;
}

/* One libc event inside the call: a data call (either direction, either descriptor, honest bytes
 * or not, failed or not: kind bit 4 fails it, bit 5 with EAGAIN; bit 6 asks MSG_DONTWAIT), a call
 * the watch cannot see, a wait, or the descriptor replaced. */
static void event(struct bioproof_call *k, struct input *in, unsigned char *rxbuf, size_t *rxn)
{
	unsigned kind = take(in), amount = take(in);
	int i = (kind >> 3) & 1;
	if ((kind & 7) == 5) {
		bioproof_unseen(k);
		m.forbidden = true;
		return;
	}
	if ((kind & 7) == 6) {
		static const long waits[4] = { -1, 0, 1000, 2000 };
		long w = waits[amount & 3];
		bioproof_wait(k, w);
		m.forbidden |= w >= 0 ? w > k->max_wait : k->max_wait >= 0;
		m.forever |= w < 0 && k->max_wait < 0;
		return;
	}
	if ((kind & 7) == 7) {
		m.gen[i]++;
		return;
	}
	enum dir d = (kind & 1) ? DIR_RX : DIR_TX;
	unsigned char bytes[32];
	size_t n = amount & 31;
	for (size_t j = 0; j < n; j++) /* honest TX bytes: the next ones of Mbed TLS's buffer */
		bytes[j] = (kind & 2) && d == DIR_TX && k->d == DIR_TX && k->bytes + j < k->len
				   ? k->buf[k->bytes + j]
				   : (unsigned char)(amount * 31 + j * 7);
	long r = (kind & 0x14) ? -1 : (long)n;
	unsigned how = (r < 0 && (kind & 0x20) ? BIOPROOF_WOULD_BLOCK : 0) |
		       (kind & 0x40 ? BIOPROOF_DONTWAIT : 0);
	struct iovec v = { .iov_base = bytes, .iov_len = n };
	use_fd(i);
	bioproof_data(k, d, 3 + i, m.gen[i], &v, 1, r, how);
	m.forbidden |= m.blocked; /* a retry after a would-block */
	m.blocked |= (how & BIOPROOF_WOULD_BLOCK) && d == k->d;
	m.would_block[d] |= (how & BIOPROOF_WOULD_BLOCK) != 0;
	m.dontwait[d] |= (how & BIOPROOF_DONTWAIT) != 0;
	if (r > 0 && d == k->d)
		m.moved += n;
	if (r > 0)
		append(&m.wire[i][d], bytes, n);
	if (r > 0 && d == DIR_RX && k->d == DIR_RX) /* what an honest BIO would return */
		for (size_t j = 0; j < n && *rxn < k->len; j++)
			rxbuf[(*rxn)++] = bytes[j];
}

static bool same(const struct stream *a, const struct stream *b)
{
	return a->n == b->n && !memcmp(a->b, b->b, a->n);
}

/* Direction d may be offloaded: where its calls may return EAGAIN, its own WANT answer was seen,
 * and an EAGAIN it met came from a mode still in force. */
static bool answer_known(enum dir d)
{
	bool may_block = m.nonblock || m.dontwait[d] || m.timeout[d];
	return (!may_block || m.answered[d]) && (may_block || !m.would_block[d]);
}

/* What holds for the whole connection: no blocking emulated, no MSG_DONTWAIT on a blocking one. */
static bool mode_kept(void)
{
	return !(m.nonblock && m.forever) &&
	       (m.nonblock || !(m.dontwait[DIR_TX] || m.dontwait[DIR_RX]));
}

/* The oracle, after every call. */
static void check(const struct bioproof *p)
{
	int fd;
	unsigned gen_now = p->have_fd && p->fd >= 3 && p->fd < 3 + NFD ? m.gen[p->fd - 3] : 0;
	const char *why[DIR_COUNT];
	if (bioproof_verdict(p, gen_now, &fd) ||
	    bioproof_answer_verdict(p, m.nonblock, m.timeout, why))
		return;
	CHECK(mode_kept());
	for (int d = 0; d < DIR_COUNT; d++)
		CHECK(why[d] || answer_known((enum dir)d));
	CHECK(fd == 3 || fd == 4);
	int i = fd - 3, o = 1 - i;
	CHECK(!m.forbidden && !m.replaced[i] && m.used_gen[i] == m.gen[i] + 1);
	CHECK(same(&m.mbed[DIR_TX], &m.wire[i][DIR_TX]));
	CHECK(same(&m.mbed[DIR_RX], &m.wire[i][DIR_RX]));
	CHECK(!m.used_gen[o] && !m.wire[o][DIR_TX].n && !m.wire[o][DIR_RX].n);
	CHECK(m.mbed[DIR_TX].n && m.mbed[DIR_RX].n);
}

static void one_call(struct bioproof *p, struct input *in)
{
	unsigned head = take(in);
	enum dir d = (head & 1) ? DIR_RX : DIR_TX;
	size_t len = 1 + (head >> 4);
	unsigned char buf[16] = { 0 }, rxbuf[16] = { 0 };
	size_t rxn = 0;
	if (d == DIR_TX)
		for (size_t j = 0; j < len; j++)
			buf[j] = (unsigned char)take(in);
	struct bioproof_call k;
	if (!bioproof_begin(&k, p, d, buf, len, d == DIR_RX && (head & 2) ? 1000 : -1))
		return;
	m.blocked = false;
	m.moved = 0;
	for (unsigned e = (head >> 2) & 3; e; e--)
		event(&k, in, rxbuf, &rxn);
	/* The return: what was moved (honest), WANT_READ or WANT_WRITE, or anything from -1 to
	 * len + 2. */
	unsigned rb = take(in);
	int ret = (rb & 1)   ? (int)(d == DIR_TX ? k.bytes : rxn)
		  : (rb & 4) ? ((rb & 8) ? MBEDTLS_ERR_SSL_WANT_READ : MBEDTLS_ERR_SSL_WANT_WRITE)
			     : (int)(rb >> 4) % ((int)len + 4) - 1;
	int want = d == DIR_TX ? MBEDTLS_ERR_SSL_WANT_WRITE : MBEDTLS_ERR_SSL_WANT_READ;
	if (m.blocked && ret == want && !m.moved)
		m.answered[d] = true;
	else if (m.blocked && (ret <= 0 || (size_t)ret != m.moved))
		m.forbidden = true; /* answered its own way */
	if (d == DIR_RX) {
		memcpy(buf, rxbuf, rxn);
		if (rb & 2)
			buf[0] ^= 1; /* a BIO that changes a byte */
	}
	bioproof_end(&k, ret);
	if (ret >
	    0) /* a receive beyond len would overrun Mbed TLS: capped, the oracle still sees */
		append(&m.mbed[d], buf, (size_t)ret < len ? (size_t)ret : len);
	if (d == DIR_RX && ret > (int)len)
		m.forbidden = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bioproof p = { 0 };
	struct input in = { .p = data, .left = size };
	memset(&m, 0, sizeof(m));
	unsigned mode = take(&in);
	m.nonblock = mode & 1;
	m.timeout[DIR_RX] = mode & 2;
	m.timeout[DIR_TX] = mode & 4;
	while (in.left) {
		one_call(&p, &in);
		check(&p);
	}
	bioproof_release(&p);
	return 0;
}
