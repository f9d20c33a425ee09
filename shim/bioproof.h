/* SPDX-License-Identifier: Apache-2.0 */
/* The proof that an application's own BIO callbacks are a plain TCP socket: the bookkeeping of the
 * libc calls seen inside each BIO call (biowatch.c feeds it), and the verdict per connection. Pure:
 * no system call, no global state. docs/design.md, "Custom BIO proof", gives the rules. */
#ifndef KTLSSHIM_BIOPROOF_H
#define KTLSSHIM_BIOPROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "dir.h"

/* The reasons a connection stays in Mbed TLS because of its BIO (the log's words). */
#define BIOPROOF_OFF "custom BIO: offload turned off (KTLS_SHIM_CUSTOM_BIO=0)"
#define BIOPROOF_ASYNC \
	"custom BIO: no socket call on this thread inside the BIO (asynchronous or buffering BIO)"
#define BIOPROOF_AHEAD	     "custom BIO: read ahead (the BIO kept bytes it read from the socket)"
#define BIOPROOF_DIFFER	     "custom BIO: bytes differ from the socket's"
#define BIOPROOF_MORE	     "custom BIO: reported more bytes than the socket took"
#define BIOPROOF_FEWER	     "custom BIO: reported fewer bytes than the socket took"
#define BIOPROOF_TWO_FDS     "custom BIO: two descriptors"
#define BIOPROOF_NOT_TCP     "custom BIO: not a TCP socket"
#define BIOPROOF_UNSEEN	     "custom BIO: a call the watch cannot see"
#define BIOPROOF_WAITS	     "custom BIO: waits with its own timeout"
#define BIOPROOF_ONE_WAY     "custom BIO: not proven in both directions"
#define BIOPROOF_NO_MEM	     "custom BIO: no memory for the proof"
#define BIOPROOF_INTERLEAVED "custom BIO: calls interleaved on one thread (coroutines)"
#define BIOPROOF_OWN_WAY     "custom BIO: answers a would-block its own way"
#define BIOPROOF_UNANSWERED \
	"custom BIO: its socket can time out or not block, and the BIO's answer was not seen"
#define BIOPROOF_EMULATES_BLOCKING \
	"custom BIO: makes its non-blocking socket block (waits for ever inside the BIO)"
#define BIOPROOF_MODE_CHANGES                                                                  \
	"custom BIO: its socket's mode changes between calls (a would-block on a socket that " \
	"blocks)"
#define BIOPROOF_NESTED "custom BIO: calls another connection's Mbed TLS inside its callbacks"
#define BIOPROOF_ESCAPED \
	"custom BIO: a call did not return (longjmp, an exception, a coroutine switched away)"
#define BIOPROOF_DONTWAIT_BLOCKING                                                                 \
	"custom BIO: asks MSG_DONTWAIT of a blocking socket (the shim's I/O follows the socket's " \
	"mode)"

/* What a data call tells beyond its bytes (bioproof_data's how). */
#define BIOPROOF_WOULD_BLOCK 1u /* it failed with EAGAIN or EWOULDBLOCK */
#define BIOPROOF_DONTWAIT    2u /* it asked MSG_DONTWAIT: that direction never blocks */

/* One connection's proof. All zero is the start. */
struct bioproof {
	bool have_fd;
	int fd;			/* the one descriptor seen so far */
	unsigned gen;		/* its generation (fdwatch.h) when first seen */
	const char *why;	/* sticky: the first rule broken; NULL while the proof holds */
	bool proven[DIR_COUNT]; /* a call of that direction moved bytes and was proven */
	/* A would-block of that direction answered WANT_READ / WANT_WRITE, as Mbed TLS's contract
	 * (and the shim after the hand-off) answers it. */
	bool answers_want[DIR_COUNT];
	bool dontwait[DIR_COUNT]; /* MSG_DONTWAIT seen in that direction */
	bool waits_forever;	  /* a wait for ever inside a callback where Mbed TLS would not */
	bool would_block[DIR_COUNT]; /* a data call of that direction failed with EAGAIN */
	unsigned calls_open;	     /* begun and not ended: left by a longjmp or an exception */
	/* RX: the bytes libc returned in the current call, compared when the BIO returns. Exists
	 * only until the decision (bioproof_release). */
	unsigned char *copy;
	size_t copy_cap;
};

/* One BIO call under watch. */
struct bioproof_call {
	struct bioproof *p;
	enum dir d;
	const unsigned char *buf; /* Mbed TLS's buffer and length */
	size_t len;
	size_t bytes;	    /* TX: bytes the socket took, each checked; RX: bytes libc returned */
	long max_wait;	    /* the longest finite wait allowed inside, in ms; -1: none */
	bool would_block;   /* a data call of this call's direction failed with EAGAIN */
	bool forever_ok;    /* a recv_timeout call: Mbed TLS's own timeout 0 waits for ever too */
	volatile bool busy; /* a libc call is being recorded (a signal handler's call taints) */
	struct bioproof_call *outer; /* the watch stack (biowatch.c) */
	const void *outer_frame;     /* and the frame of the outer call */
};

/* Starts a call: false (and the proof fails) when the RX copy cannot be allocated. max_wait: the
 * timeout Mbed TLS gave a recv_timeout callback (a wait up to it is Mbed TLS's own), else -1. */
bool bioproof_begin(struct bioproof_call *k, struct bioproof *p, enum dir d,
		    const unsigned char *buf, size_t len, long max_wait);
/* A data call of direction d on fd (generation gen) that moved result bytes through iov (< 0:
 * it failed); how: BIOPROOF_WOULD_BLOCK, BIOPROOF_DONTWAIT. */
void bioproof_data(struct bioproof_call *k, enum dir d, int fd, unsigned gen,
		   const struct iovec *iov, int iovcnt, ssize_t result, unsigned how);
void bioproof_unseen(struct bioproof_call *k); /* a call whose bytes the watch cannot follow */
void bioproof_fail(struct bioproof *p, const char *why);      /* a rule of the watch's own */
void bioproof_wait(struct bioproof_call *k, long timeout_ms); /* poll/select; < 0: no timeout */
void bioproof_end(struct bioproof_call *k, int ret);	      /* the BIO returned ret */

/* NULL and *fd when proven (gen_now: the descriptor's generation now), else why not. */
const char *bioproof_verdict(const struct bioproof *p, unsigned gen_now, int *fd);
/* After a NULL verdict, for each direction: NULL when the BIO's answer to a would-block is known
 * wherever the socket may not block, else why not. nonblock: O_NONBLOCK on the socket;
 * timeout[d]: SO_RCVTIMEO (RX) / SO_SNDTIMEO (TX) set. Returns the reason both share, if any. */
const char *bioproof_answer_verdict(const struct bioproof *p, bool nonblock,
				    const bool timeout[DIR_COUNT], const char *why[DIR_COUNT]);
/* The decision is made: the copy is wiped and freed (the verdict stays). */
void bioproof_release(struct bioproof *p);

#endif
