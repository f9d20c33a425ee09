/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for shim/record.c: framing of a byte stream into TLS records with fixed verdicts
 * (split headers, zero and maximum lengths, garbage), beside tests/fuzz/fuzz_record.c, which
 * checks that any chunking frames alike. TAP output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "tap.h"

#define PLAN 12

/* What the sink saw. */
struct seen {
	int begins, ends;
	size_t body; /* body bytes */
	unsigned char first_type;
	size_t first_len;
};

static void on_begin(void *arg, const unsigned char hdr[REC_HDR_LEN])
{
	struct seen *s = arg;
	if (s->begins++ == 0) {
		s->first_type = hdr[0];
		s->first_len = (size_t)hdr[3] << 8 | hdr[4];
	}
}

static void on_body(void *arg, const unsigned char *p, size_t n)
{
	(void)p;
	((struct seen *)arg)->body += n;
}

static void on_end(void *arg)
{
	((struct seen *)arg)->ends++;
}

static const struct rec_sink sink = { on_begin, on_body, on_end };

/* A record of type `type`, legacy version 3.minor, announcing `len` body bytes, of which `have`
 * follow (0x5a each); its length. */
static size_t record(unsigned char *out, unsigned type, unsigned minor, size_t len, size_t have)
{
	out[0] = (unsigned char)type;
	out[1] = 3;
	out[2] = (unsigned char)minor;
	out[3] = (unsigned char)(len >> 8);
	out[4] = (unsigned char)len;
	memset(out + REC_HDR_LEN, 0x5a, have);
	return REC_HDR_LEN + have;
}

/* Feeds buf in pieces of `step` bytes (0: whole) into a fresh parser. */
static struct seen feed(const unsigned char *buf, size_t n, size_t step, struct rec_parser *p)
{
	struct seen s = { 0 };
	memset(p, 0, sizeof(*p));
	if (!step)
		step = n;
	for (size_t off = 0; off < n; off += step)
		rec_feed(p, buf + off, n - off < step ? n - off : step, &sink, &s);
	return s;
}

static void test_whole_and_split(unsigned char *buf)
{
	struct rec_parser p;
	size_t n = record(buf, REC_APPDATA, 3, 300, 300);
	struct seen s = feed(buf, n, 0, &p);
	tap_ok(s.begins == 1 && s.ends == 1 && s.body == 300 && s.first_type == REC_APPDATA &&
		       s.first_len == 300 && rec_at_boundary(&p),
	       "one record whole: begin, 300 body bytes, end, at a boundary");
	s = feed(buf, n, 1, &p);
	tap_ok(s.begins == 1 && s.ends == 1 && s.body == 300 && s.first_len == 300 &&
		       rec_at_boundary(&p),
	       "the same record one byte at a time: the same");

	memset(&p, 0, sizeof(p));
	s = (struct seen){ 0 };
	rec_feed(&p, buf, 3, &sink, &s); /* header cut after its version */
	int mid_header = !rec_at_boundary(&p) && s.begins == 0;
	rec_feed(&p, buf + 3, 100, &sink, &s);
	int mid_body = !rec_at_boundary(&p) && s.begins == 1 && s.ends == 0;
	rec_feed(&p, buf + 103, n - 103, &sink, &s);
	tap_ok(mid_header && mid_body && s.ends == 1 && rec_at_boundary(&p),
	       "not at a boundary inside the header or the body; at one after");
}

static void test_lengths(unsigned char *buf)
{
	struct rec_parser p;
	size_t n = record(buf, REC_HANDSHAKE, 3, 0, 0);
	n += record(buf + n, REC_ALERT, 3, 2, 2);
	struct seen s = feed(buf, n, 0, &p);
	tap_ok(s.begins == 2 && s.ends == 2 && s.body == 2 && s.first_type == REC_HANDSHAKE &&
		       s.first_len == 0 && rec_at_boundary(&p),
	       "an empty record then an alert in one buffer: two records");

	n = record(buf, REC_APPDATA, 3, REC_MAX_BODY, REC_MAX_BODY);
	s = feed(buf, n, 7, &p);
	tap_ok(REC_MAX_BODY == 18432 && s.begins == 1 && s.ends == 1 && s.body == 18432 &&
		       rec_at_boundary(&p),
	       "2^14 + 2048 bytes (the largest TLS 1.2 ciphertext): accepted");

	n = record(buf, REC_APPDATA, 3, REC_MAX_BODY + 1, 10);
	s = feed(buf, n, 0, &p);
	tap_ok(s.begins == 0 && s.body == 0 && p.broken && !rec_at_boundary(&p),
	       "2^14 + 2049 bytes: broken, no record begun");
}

/* A header that is not TLS: no record begins, and nothing fed afterwards is framed. */
static int rejects(unsigned type, unsigned major)
{
	unsigned char buf[64];
	struct rec_parser p;
	size_t n = record(buf, type, 3, 4, 4);
	buf[1] = (unsigned char)major;
	n += record(buf + n, REC_APPDATA, 3, 4, 4); /* a good record after the bad one */
	struct seen s = feed(buf, n, 0, &p);
	return s.begins == 0 && s.body == 0 && p.broken && !rec_at_boundary(&p);
}

static void test_garbage(unsigned char *buf)
{
	tap_ok(rejects(19, 3) && rejects(24, 3) && rejects(0, 3) && rejects(0xff, 3),
	       "content types 19, 24, 0, 255: broken, the good record after is not framed");
	tap_ok(rejects(REC_APPDATA, 2) && rejects(REC_APPDATA, 0x16),
	       "major version 2 or 0x16: broken");

	struct rec_parser p;
	static const char http[] = "GET / HTTP/1.1\r\n\r\n";
	struct seen s = feed((const unsigned char *)http, sizeof(http) - 1, 0, &p);
	tap_ok(s.begins == 0 && p.broken && !rec_at_boundary(&p), "plain HTTP: broken");

	/* Broken stays broken: a good record fed later, in another call, is not framed either. */
	size_t n = record(buf, REC_APPDATA, 3, 1, 1);
	s = (struct seen){ 0 };
	rec_feed(&p, buf, n, &sink, &s);
	tap_ok(s.begins == 0 && !rec_at_boundary(&p), "once broken, later calls frame nothing");

	n = record(buf, REC_CCS, 1, 1, 1); /* SSL 3.0-era minor versions are still framed */
	n += record(buf + n, REC_APPDATA, 4, 1, 1);
	s = feed(buf, n, 0, &p);
	tap_ok(s.begins == 2 && s.ends == 2 && rec_at_boundary(&p),
	       "minor versions 1 and 4 are framed (only the major is checked)");
}

static void test_nothing(void)
{
	struct rec_parser p = { 0 };
	struct seen s = { 0 };
	rec_feed(&p, (const unsigned char *)"", 0, &sink, &s);
	tap_ok(s.begins == 0 && rec_at_boundary(&p), "nothing fed: at a boundary");
}

int main(void)
{
	unsigned char *buf = malloc(2 * (REC_HDR_LEN + REC_MAX_BODY + 1));
	if (!buf)
		return 1;
	tap_plan(PLAN);
	test_whole_and_split(buf);
	test_lengths(buf);
	test_garbage(buf);
	test_nothing();
	free(buf);
	return tap_done();
}
