/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: rec_feed (shim/record.c) with arbitrary chunking.
 *
 * Input: byte 0 seeds the chunk sizes (an xorshift sequence, 1..byte 0 + 1 bytes each, or 1 byte
 * at a time when byte 0 is 0); the rest is the byte stream. The same stream is framed once whole
 * and once in chunks: both must give the same records (type, length, body bytes), in order, and
 * the same end state; every body callback must stay inside its record and inside the buffer fed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

#define MAX_EVENTS 4096

struct trace {
	const unsigned char *lo, *hi; /* the buffer being fed */
	size_t nrec;
	unsigned char type[MAX_EVENTS];
	size_t len[MAX_EVENTS], got[MAX_EVENTS];
	uint32_t sum[MAX_EVENTS]; /* a checksum of each record's body */
	int open;		  /* inside a record (begin seen, end not yet) */
};

#define CHECK(x)                          \
	do {                              \
		if (!(x))                 \
			__builtin_trap(); \
	} while (0)

static void t_begin(void *arg, const unsigned char hdr[REC_HDR_LEN])
{
	struct trace *t = arg;
	CHECK(!t->open);
	CHECK(hdr[0] >= REC_CCS && hdr[0] <= REC_APPDATA && hdr[1] == 3);
	size_t len = ((size_t)hdr[3] << 8) | hdr[4];
	CHECK(len <= REC_MAX_BODY);
	t->open = 1;
	if (t->nrec < MAX_EVENTS) {
		t->type[t->nrec] = hdr[0];
		t->len[t->nrec] = len;
		t->got[t->nrec] = 0;
		t->sum[t->nrec] = 0;
	}
	t->nrec++;
}

static void t_body(void *arg, const unsigned char *p, size_t n)
{
	struct trace *t = arg;
	CHECK(t->open && n > 0);
	CHECK(p >= t->lo && p + n <= t->hi);
	size_t i = t->nrec - 1;
	if (i < MAX_EVENTS) {
		t->got[i] += n;
		CHECK(t->got[i] <= t->len[i]);
		for (size_t k = 0; k < n; k++)
			t->sum[i] = t->sum[i] * 31 + p[k];
	}
}

static void t_end(void *arg)
{
	struct trace *t = arg;
	CHECK(t->open);
	size_t i = t->nrec - 1;
	if (i < MAX_EVENTS)
		CHECK(t->got[i] == t->len[i]);
	t->open = 0;
}

static const struct rec_sink sink = { t_begin, t_body, t_end };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned maxchunk = data[0];
	const unsigned char *s = data + 1;
	size_t n = size - 1;

	static struct trace whole, parts;
	memset(&whole, 0, sizeof(whole));
	memset(&parts, 0, sizeof(parts));
	struct rec_parser p1 = { 0 }, p2 = { 0 };

	whole.lo = s, whole.hi = s + n;
	rec_feed(&p1, s, n, &sink, &whole);

	uint32_t x = 0x9e3779b9u ^ maxchunk;
	for (size_t off = 0; off < n;) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		size_t c = maxchunk ? 1 + x % ((size_t)maxchunk + 1) : 1;
		if (c > n - off)
			c = n - off;
		/* Each chunk from its own heap copy: ASan sees any read outside it. */
		unsigned char *chunk = malloc(c);
		memcpy(chunk, s + off, c);
		parts.lo = chunk, parts.hi = chunk + c;
		rec_feed(&p2, chunk, c, &sink, &parts);
		free(chunk);
		off += c;
	}

	CHECK(whole.nrec == parts.nrec && whole.open == parts.open);
	for (size_t i = 0; i < whole.nrec && i < MAX_EVENTS; i++)
		CHECK(whole.type[i] == parts.type[i] && whole.len[i] == parts.len[i] &&
		      whole.got[i] == parts.got[i] && whole.sum[i] == parts.sum[i]);
	CHECK(p1.broken == p2.broken && p1.hdr_have == p2.hdr_have && p1.body_left == p2.body_left);
	CHECK(rec_at_boundary(&p1) == rec_at_boundary(&p2));
	CHECK(rec_at_boundary(&p1) == (!p1.broken && p1.hdr_have == 0));
	return 0;
}
