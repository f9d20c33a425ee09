/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for shim/bioproof.c, the custom-BIO proof: one honest BIO proven, then each rule
 * broken once by a BIO that lies in that one way, and the verdict naming that rule. TAP. */
#include <stdio.h>
#include <string.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "bioproof.h"
#include "biowatch.h"
#include "tap.h"

#define FD   3
#define GEN  7
/* WANT_READ or WANT_WRITE: any error; nothing was moved, or the BIO says so. */
#define WANT MBEDTLS_ERR_SSL_WANT_WRITE

static struct bioproof p;

static void fresh(void)
{
	bioproof_release(&p);
	p = (struct bioproof){ 0 };
}

static const struct iovec *iov1(const char *s)
{
	static struct iovec v;
	v = (struct iovec){ .iov_base = (void *)s, .iov_len = strlen(s) };
	return &v;
}

/* A send call: Mbed TLS gives `mbed`; inside, the BIO writes `wire` (NULL: no libc call) on fd,
 * the socket taking `took` bytes of it; the BIO returns ret. */
static void tx(const char *mbed, int fd, unsigned gen, const char *wire, long took, int ret)
{
	struct bioproof_call k;
	bioproof_begin(&k, &p, DIR_TX, (const unsigned char *)mbed, strlen(mbed), -1);
	if (wire)
		bioproof_data(&k, DIR_TX, fd, gen, iov1(wire), 1, took, 0);
	bioproof_end(&k, ret);
}

/* A receive call of len bytes: libc returns `wire` (NULL: no libc call), the BIO puts `out` in
 * Mbed TLS's buffer and returns ret. */
static void rx(size_t len, int fd, unsigned gen, const char *wire, const char *out, int ret)
{
	unsigned char buf[64] = { 0 };
	struct bioproof_call k;
	bioproof_begin(&k, &p, DIR_RX, buf, len, -1);
	if (wire)
		bioproof_data(&k, DIR_RX, fd, gen, iov1(wire), 1, (long)strlen(wire), 0);
	if (out)
		memcpy(buf, out, strlen(out));
	bioproof_end(&k, ret);
}

/* The honest pair of calls that proves both directions on FD. */
static void honest(void)
{
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(16, FD, GEN, "world", "world", 5);
}

static void expect(const char *want, const char *what)
{
	int fd;
	const char *got = bioproof_verdict(&p, GEN, &fd);
	bool ok = want ? got && !strcmp(got, want) : !got && fd == FD;
	tap_ok(ok, "%s: %s", what, got ? got : "proven");
	if (!ok)
		tap_diag("  want: %s", want ? want : "proven");
	fresh();
}

static void test_honest(void)
{
	honest();
	expect(NULL, "a synchronous BIO, both directions, one descriptor");
	tx("hello", FD, GEN, "hello", 3, 3); /* a short send, reported as such */
	tx("lo", FD, GEN, "lo", 2, 2);
	tx("abc", FD, GEN, "abc", -1, WANT); /* nothing taken: WANT_WRITE is true */
	rx(16, FD, GEN, "", NULL, WANT);     /* EAGAIN: nothing read */
	rx(16, FD, GEN, "world", "world", 5);
	expect(NULL, "short sends, WANT_WRITE and WANT_READ with nothing moved");
	struct iovec two[2] = { { .iov_base = "hel", .iov_len = 3 },
				{ .iov_base = "lo", .iov_len = 2 } };
	struct bioproof_call k;
	bioproof_begin(&k, &p, DIR_TX, (const unsigned char *)"hello", 5, -1);
	bioproof_data(&k, DIR_TX, FD, GEN, two, 2, 5, 0);
	bioproof_end(&k, 5);
	rx(16, FD, GEN, "world", "world", 5);
	expect(NULL, "a vector of buffers, in order");
}

static void test_send_lies(void)
{
	tx("hello", FD, GEN, "hello", 3, 5);
	rx(16, FD, GEN, "world", "world", 5);
	expect(BIOPROOF_MORE, "send reports 5, the socket took 3");
	tx("hello", FD, GEN, "hello", 5, 3);
	rx(16, FD, GEN, "world", "world", 5);
	expect(BIOPROOF_FEWER, "send reports 3, the socket took 5");
	tx("hello", FD, GEN, "hello", 2, WANT);
	rx(16, FD, GEN, "world", "world", 5);
	expect(BIOPROOF_FEWER, "WANT_WRITE after the socket took bytes");
	tx("hello", FD, GEN, NULL, 0, 5);
	rx(16, FD, GEN, "world", "world", 5);
	expect(BIOPROOF_ASYNC, "send returns 5 without a socket call");
	tx("hello", FD, GEN, "HELLO", 5, 5);
	rx(16, FD, GEN, "world", "world", 5);
	expect(BIOPROOF_DIFFER, "send transforms the bytes");
	tx("hello", FD, GEN, "hello!", 6, 5);
	rx(16, FD, GEN, "world", "world", 5);
	expect(BIOPROOF_DIFFER, "the socket took more than Mbed TLS gave");
	tx("hello", FD, GEN, "lo", 2, 2); /* the tail first */
	rx(16, FD, GEN, "world", "world", 5);
	expect(BIOPROOF_DIFFER, "bytes out of order");
}

static void test_recv_lies(void)
{
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(16, FD, GEN, "world and more", "world", 5);
	expect(BIOPROOF_AHEAD, "read 14, returned 5: read ahead");
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(4, FD, GEN, "world", "worl", 4);
	expect(BIOPROOF_AHEAD, "libc returned more than Mbed TLS asked for");
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(16, FD, GEN, "world", NULL, WANT);
	expect(BIOPROOF_AHEAD, "read 5, returned WANT_READ");
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(16, FD, GEN, NULL, "world", 5);
	expect(BIOPROOF_ASYNC, "returned 5 without a socket call (buffering BIO)");
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(16, FD, GEN, "world", "WORLD", 5);
	expect(BIOPROOF_DIFFER, "returned other bytes than libc's");
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(16, FD, GEN, "wor", "world", 5);
	expect(BIOPROOF_DIFFER, "returned 5, libc gave 3");
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(4, FD, GEN, "worl", "worl", 9);
	expect(BIOPROOF_DIFFER, "returned more than Mbed TLS asked for");
}

static void test_descriptors(void)
{
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(16, FD + 1, GEN, "world", "world", 5);
	expect(BIOPROOF_TWO_FDS, "sends on one descriptor, receives on another");
	tx("hello", FD, GEN, "hello", 5, 5);
	rx(16, FD, GEN + 1, "world", "world", 5);
	expect(BIOPROOF_TWO_FDS, "the number closed and reused between calls");
	honest();
	int fd;
	const char *why = bioproof_verdict(&p, GEN + 1, &fd);
	tap_ok(why && !strcmp(why, BIOPROOF_TWO_FDS),
	       "the number closed or replaced after the last call");
	fresh();
	struct bioproof_call k;
	bioproof_begin(&k, &p, DIR_TX, (const unsigned char *)"hello", 5, -1);
	bioproof_data(&k, DIR_TX, FD + 1, GEN, iov1("x"), 1, -1, 0); /* a failed call counts too */
	bioproof_data(&k, DIR_TX, FD, GEN, iov1("hello"), 1, 5, 0);
	bioproof_end(&k, 5);
	rx(16, FD, GEN, "world", "world", 5);
	expect(BIOPROOF_TWO_FDS, "a failed call on another descriptor first");
}

static void test_other_rules(void)
{
	honest();
	struct bioproof_call k;
	bioproof_begin(&k, &p, DIR_TX, (const unsigned char *)"x", 1, -1);
	bioproof_unseen(&k);
	bioproof_data(&k, DIR_TX, FD, GEN, iov1("x"), 1, 1, 0);
	bioproof_end(&k, 1);
	expect(BIOPROOF_UNSEEN, "a call the watch cannot see (sticky after proven calls)");
	honest();
	bioproof_begin(&k, &p, DIR_TX, (const unsigned char *)"x", 1, -1);
	bioproof_wait(&k, 100);
	bioproof_end(&k, WANT);
	expect(BIOPROOF_WAITS, "a send callback that polls for 100 ms");
	honest();
	unsigned char buf[8];
	bioproof_begin(&k, &p, DIR_RX, buf, sizeof(buf), 1000);
	bioproof_wait(&k, 1000);
	bioproof_end(&k, WANT);
	expect(NULL, "recv_timeout waiting up to Mbed TLS's timeout");
	honest();
	bioproof_begin(&k, &p, DIR_RX, buf, sizeof(buf), 1000);
	bioproof_wait(&k, -1);
	bioproof_end(&k, WANT);
	expect(BIOPROOF_WAITS, "recv_timeout waiting for ever where Mbed TLS gave 1000 ms");
	honest();
	bioproof_begin(&k, &p, DIR_RX, buf, sizeof(buf), -1);
	k.forever_ok = true;
	bioproof_wait(&k, -1);
	bioproof_end(&k, WANT);
	expect(NULL, "recv_timeout waiting for ever where Mbed TLS gave 0 (for ever)");
	honest();
	bioproof_begin(&k, &p, DIR_RX, buf, sizeof(buf), 1000);
	bioproof_wait(&k, 1001);
	bioproof_end(&k, WANT);
	expect(BIOPROOF_WAITS, "recv_timeout waiting longer than Mbed TLS's timeout");
	honest();
	bioproof_begin(&k, &p, DIR_RX, buf, sizeof(buf), -1);
	bioproof_wait(&k, 0);
	bioproof_end(&k, WANT);
	expect(BIOPROOF_WAITS, "a plain recv callback that polls without waiting");
	tx("hello", FD, GEN, "hello", 5, 5);
	expect(BIOPROOF_ONE_WAY, "only the send direction proven");
	rx(16, FD, GEN, "world", "world", 5);
	expect(BIOPROOF_ONE_WAY, "only the receive direction proven");
	bioproof_begin(&k, &p, DIR_RX, buf, sizeof(buf), -1);
	bioproof_data(&k, DIR_TX, FD, GEN, iov1("ping"), 1, 4, 0);
	bioproof_end(&k, WANT);
	honest();
	expect(BIOPROOF_DIFFER, "a write inside a receive callback");
	bioproof_begin(&k, &p, DIR_TX, (const unsigned char *)"x", 1, -1);
	bioproof_data(&k, DIR_RX, FD, GEN, iov1("peek"), 1, 4, 0);
	bioproof_data(&k, DIR_TX, FD, GEN, iov1("x"), 1, 1, 0);
	bioproof_end(&k, 1);
	honest();
	expect(BIOPROOF_AHEAD, "a read inside a send callback");
}

/* A call of direction d whose one data call fails with how (BIOPROOF_WOULD_BLOCK...), then
 * `again` (NULL: none) moves bytes; the BIO returns ret. */
static void blocked(enum dir d, unsigned how, const char *again, int ret)
{
	unsigned char buf[16] = "hello";
	struct bioproof_call k;
	bioproof_begin(&k, &p, d, buf, 5, -1);
	bioproof_data(&k, d, FD, GEN, iov1(""), 1, -1, how);
	if (again)
		bioproof_data(&k, d, FD, GEN, iov1(again), 1, (long)strlen(again), 0);
	bioproof_end(&k, ret);
}

/* The verdicts on a socket with O_NONBLOCK (nb) and a receive / send timeout (rto, sto): the
 * connection's, else the first direction kept in Mbed TLS (RX, then TX). */
static const char *mode_verdict(bool nb, bool rto, bool sto, const char *why[DIR_COUNT])
{
	const bool timeout[DIR_COUNT] = { [DIR_RX] = rto, [DIR_TX] = sto };
	int fd;
	const char *got = bioproof_verdict(&p, GEN, &fd);
	why[DIR_TX] = why[DIR_RX] = NULL;
	if (!got)
		got = bioproof_answer_verdict(&p, nb, timeout, why);
	return got ? got : why[DIR_RX] ? why[DIR_RX] : why[DIR_TX];
}

static void expect_mode(bool nb, bool rto, bool sto, const char *want, const char *what)
{
	const char *why[DIR_COUNT];
	const char *got = mode_verdict(nb, rto, sto, why);
	bool ok = want ? got && !strcmp(got, want) : !got;
	tap_ok(ok, "%s: %s", what, got ? got : "proven");
	if (!ok)
		tap_diag("  want: %s", want ? want : "proven");
}

/* One direction kept in Mbed TLS (why), the other offloaded. */
static void expect_one_way(bool nb, bool rto, bool sto, enum dir kept, const char *want,
			   const char *what)
{
	const char *why[DIR_COUNT];
	const char *got = mode_verdict(nb, rto, sto, why);
	bool ok = why[kept] && !strcmp(why[kept], want) && !why[1 - kept];
	tap_ok(ok, "%s: %s %s", what, kept == DIR_TX ? "TX" : "RX", got ? got : "proven");
}

#define RD  MBEDTLS_ERR_SSL_WANT_READ
#define WR  MBEDTLS_ERR_SSL_WANT_WRITE
#define EWB BIOPROOF_WOULD_BLOCK

/* How a BIO answers a would-block (EAGAIN): as Mbed TLS's contract says, or its own way. */
static void test_would_block(void)
{
	honest();
	expect_mode(false, false, false, NULL, "blocking socket, no timeout: no answer needed");
	expect_mode(true, false, false, BIOPROOF_UNANSWERED, "O_NONBLOCK, no would-block seen");
	expect_mode(false, true, false, BIOPROOF_UNANSWERED, "SO_RCVTIMEO, no would-block seen");
	expect_mode(false, false, true, BIOPROOF_UNANSWERED, "SO_SNDTIMEO, no would-block seen");
	fresh();
	honest();
	blocked(DIR_RX, EWB, NULL, RD);
	expect_one_way(true, false, false, DIR_TX, BIOPROOF_UNANSWERED,
		       "O_NONBLOCK, EAGAIN answered WANT_READ: TX, never seen answering, stays");
	expect_mode(false, true, false, NULL, "SO_RCVTIMEO, EAGAIN answered WANT_READ");
	expect_mode(false, true, true, BIOPROOF_UNANSWERED, "SO_SNDTIMEO too: TX's answer unseen");
	fresh();
	honest();
	blocked(DIR_TX, EWB, NULL, WR);
	expect_mode(false, true, true, BIOPROOF_UNANSWERED, "TX answered WANT_WRITE, RX unseen");
	expect_one_way(true, false, true, DIR_RX, BIOPROOF_UNANSWERED,
		       "O_NONBLOCK and SO_SNDTIMEO, WANT_WRITE seen: RX stays");
	fresh();
	honest();
	blocked(DIR_RX, EWB, NULL, MBEDTLS_ERR_NET_RECV_FAILED);
	expect(BIOPROOF_OWN_WAY, "EAGAIN answered with an error of its own (a timeout)");
	honest();
	blocked(DIR_RX, EWB, NULL, 0);
	expect(BIOPROOF_OWN_WAY, "EAGAIN answered as the end of the stream");
	honest();
	blocked(DIR_RX, EWB, "world", 5);
	expect(BIOPROOF_OWN_WAY, "EAGAIN, then a retry (after a wait of its own)");
	honest();
	blocked(DIR_TX, EWB, NULL, RD);
	expect(BIOPROOF_OWN_WAY, "a send's EAGAIN answered WANT_READ");
	blocked(DIR_RX, EWB, NULL, RD);
	blocked(DIR_RX, 0, NULL,
		MBEDTLS_ERR_NET_RECV_FAILED); /* another error: not a would-block */
	honest();
	expect(NULL, "WANT_READ seen, then an error that is no would-block");
}

/* Bytes moved before a would-block, reported, are a socket's own answer; MSG_DONTWAIT makes a
 * blocking socket one that does not block. */
static void test_would_block_more(void)
{
	struct bioproof_call k;
	bioproof_begin(&k, &p, DIR_TX, (const unsigned char *)"hello", 5, -1);
	bioproof_data(&k, DIR_TX, FD, GEN, iov1("hel"), 1, 3, 0);
	bioproof_data(&k, DIR_TX, FD, GEN, iov1(""), 1, -1, EWB);
	bioproof_end(&k, 3);
	rx(16, FD, GEN, "world", "world", 5);
	expect_mode(false, false, false, BIOPROOF_MODE_CHANGES,
		    "a short send ended by EAGAIN, on a socket that blocks now");
	expect_mode(true, false, false, BIOPROOF_UNANSWERED,
		    "a short send ended by EAGAIN, O_NONBLOCK: WANT_WRITE never seen");
	expect_mode(false, false, true, BIOPROOF_UNANSWERED, "... no answer seen for it");
	fresh();
	honest();
	unsigned char buf[8];
	bioproof_begin(&k, &p, DIR_RX, buf, sizeof(buf), -1);
	bioproof_data(&k, DIR_RX, FD, GEN, iov1("world"), 1, 5, BIOPROOF_DONTWAIT);
	memcpy(buf, "world", 5);
	bioproof_end(&k, 5);
	expect_mode(false, false, false, BIOPROOF_DONTWAIT_BLOCKING,
		    "MSG_DONTWAIT on a blocking socket, no would-block seen");
	blocked(DIR_RX, EWB | BIOPROOF_DONTWAIT, NULL, RD);
	expect_mode(false, false, false, BIOPROOF_DONTWAIT_BLOCKING,
		    "MSG_DONTWAIT on a blocking socket, EAGAIN answered WANT_READ");
	expect_one_way(true, false, false, DIR_TX, BIOPROOF_UNANSWERED,
		       "MSG_DONTWAIT on a non-blocking socket, RX answered: TX stays");
	blocked(DIR_TX, EWB, NULL, WR);
	expect_mode(true, false, false, NULL, "O_NONBLOCK, both directions answered WANT_*");
	fresh();
}

/* A wait for ever inside a plain callback emulates blocking on a non-blocking socket. */
static void test_wait_forever(void)
{
	honest();
	blocked(DIR_RX, EWB, NULL, RD);
	struct bioproof_call k;
	bioproof_begin(&k, &p, DIR_TX, (const unsigned char *)"hello", 5, -1);
	bioproof_wait(&k, -1);
	bioproof_data(&k, DIR_TX, FD, GEN, iov1("hello"), 1, 5, 0);
	bioproof_end(&k, 5);
	expect_mode(false, true, false, NULL,
		    "a send that polls for ever on a blocking socket (a receive timeout)");
	expect_mode(true, false, false, BIOPROOF_EMULATES_BLOCKING,
		    "the same on a non-blocking socket, though WANT_READ was seen");
	fresh();
}

/* The watch stack (biowatch.h): nested calls go to the innermost; a call that ends while another
 * is innermost (coroutines switching inside BIO calls) fails both, and every later one. */
static void test_watch_stack(void)
{
	struct bioproof outer_p = { 0 }, inner_p = { 0 }, later_p = { 0 };
	struct bioproof_call outer, inner, later;
	unsigned char buf[4] = { 0 };
	bioproof_begin(&outer, &outer_p, DIR_RX, buf, sizeof(buf), -1);
	bioproof_begin(&inner, &inner_p, DIR_RX, buf, sizeof(buf), -1);
	/* As pushed by callers above this frame, the outer one higher (the stack grows down). */
	const char *frame = __builtin_frame_address(0);
	bool pushed = biowatch_push(&outer, frame + 8192) && biowatch_push(&inner, frame + 4096) &&
		      biowatch_top == &inner;
	biowatch_pop(&inner);
	tap_ok(pushed && biowatch_top == &outer && !inner_p.why && !biowatch_broken &&
		       outer_p.why && !strcmp(outer_p.why, BIOPROOF_NESTED),
	       "nested BIO calls: the innermost watched, the outer one again after it returns, "
	       "failed (another connection's bytes passed inside it)");
	pushed = biowatch_push(&inner, frame + 4096);
	biowatch_pop(&outer); /* ends first: a switch to another coroutine */
	biowatch_pop(&inner);
	bioproof_begin(&later, &later_p, DIR_RX, buf, sizeof(buf), -1);
	bool refused = !biowatch_push(&later, frame + 4096);
	tap_ok(pushed && refused && biowatch_top == NULL && outer_p.why &&
		       later_p.why == inner_p.why && inner_p.why &&
		       !strcmp(inner_p.why, BIOPROOF_INTERLEAVED),
	       "interleaved calls on one thread: both failed, no watch left, later ones refused");
	bioproof_release(&outer_p);
	bioproof_release(&inner_p);
	bioproof_release(&later_p);
}

/* Called from below the frame that pushed: where a live watch's libc calls come from. */
static __attribute__((noinline)) bool live_from_below(void)
{
	return biowatch_live();
}

/* A longjmp seen by the shim, from inside the BIO call (below the frame that pushed). */
static __attribute__((noinline)) void leave_from_below(void)
{
	biowatch_leave();
}

/* A BIO call left without returning: a longjmp the shim sees (biowatch_leave) fails every watched
 * call; one it does not see shows as a libc call from a frame above the watch's, which gives the
 * watch up untouched; the proof of a call that never ended is refused. */
static void test_watch_escape(void)
{
	struct bioproof a_p = { 0 }, b_p = { 0 };
	struct bioproof_call a, b;
	unsigned char buf[4] = { 0 };
	biowatch_broken = false; /* test_watch_stack broke this thread on purpose */
	bioproof_begin(&a, &a_p, DIR_RX, buf, sizeof(buf), -1);
	bioproof_begin(&b, &b_p, DIR_TX, buf, 1, -1);
	const char *frame = __builtin_frame_address(0);
	bool ok = biowatch_push(&a, frame + 8192) && biowatch_push(&b, frame + 4096) &&
		  live_from_below();
	leave_from_below();
	tap_ok(ok && biowatch_top == NULL && b_p.why && !strcmp(b_p.why, BIOPROOF_ESCAPED) &&
		       a_p.why && !strcmp(a_p.why, BIOPROOF_NESTED),
	       "a longjmp out of nested BIO calls: both proofs fail, no watch left");
	struct bioproof c_p = { 0 };
	struct bioproof_call c;
	bioproof_begin(&c, &c_p, DIR_RX, buf, sizeof(buf), -1);
	/* As if pushed by a frame below this one, since returned from without a pop. */
	ok = biowatch_push(&c, frame - 4096) && !live_from_below();
	tap_ok(ok && biowatch_top == NULL && biowatch_broken && !c_p.why,
	       "a libc call from above the watch's frame: the watch given up, not touched");
	biowatch_broken = false;
	int fd;
	const char *why = bioproof_verdict(&c_p, GEN, &fd);
	tap_ok(why && !strcmp(why, BIOPROOF_ESCAPED), "a proof with a call that never ended: %s",
	       why ? why : "proven");
	fresh();
	honest();
	blocked(DIR_RX, EWB, NULL, RD);
	expect_mode(
		false, false, false, BIOPROOF_MODE_CHANGES,
		"EAGAIN answered WANT_READ, the socket blocking at the decision (mode toggled)");
	fresh();
	bioproof_release(&a_p);
	bioproof_release(&b_p);
	bioproof_release(&c_p);
}

int main(void)
{
	tap_plan(61);
	test_honest();
	test_send_lies();
	test_recv_lies();
	test_descriptors();
	test_other_rules();
	test_would_block();
	test_would_block_more();
	test_wait_forever();
	test_watch_stack();
	test_watch_escape();
	return tap_done();
}
