/* SPDX-License-Identifier: Apache-2.0 */
/* The libc calls a custom BIO may make, interposed (biowatch.c, biowait.c): inside a watched BIO
 * call (this thread's innermost) each is reported to the proof (bioproof.h); outside one it costs
 * one thread-local test before libc's own function. */
#ifndef KTLSSHIM_BIOWATCH_H
#define KTLSSHIM_BIOWATCH_H

#include <errno.h>
#include <stdatomic.h>

#include "bioproof.h"

/* This thread's innermost watched BIO call (defined in capture.c, which pushes, so that the unit
 * tests link the shim without this file's libc functions). initial-exec: one load, no call. */
extern __thread struct bioproof_call *biowatch_top __attribute__((tls_model("initial-exec")));

/* Set once a BIO call ended while another was innermost: calls interleave on this thread (its
 * coroutines switch inside BIO calls), so no call here can be attributed any more. */
extern __thread bool biowatch_broken __attribute__((tls_model("initial-exec")));
/* The watch was given up at a longjmp or a context switch (biowatch_leave): a call that still
 * returns finds none, and fails alone. */
extern __thread bool biowatch_left __attribute__((tls_model("initial-exec")));

/* The frame of the function that made the innermost watched BIO call (its caller's frames are
 * above it, its callback's below: the stack grows down). */
extern __thread const void *biowatch_frame __attribute__((tls_model("initial-exec")));

/* Whether the innermost watch can still be the BIO call this code runs in: a live one made the
 * call from a frame above this one. A frame at or above it means the call was left without
 * returning (a longjmp the shim did not see, an exception through C frames) or this runs on
 * another stack (a coroutine's, a signal stack): the watch is given up without touching it (it
 * may be gone), and a call that does return fails its proof at the pop. */
static inline bool biowatch_live(void)
{
	if (__builtin_expect(
		    (const char *)__builtin_frame_address(0) < (const char *)biowatch_frame, 1))
		return true;
	biowatch_top = NULL;
	biowatch_frame = NULL;
	biowatch_broken = true;
	return false;
}

/* The calls of this thread go to k until the matching pop (nested BIO calls: the innermost);
 * frame: the caller's __builtin_frame_address(0). False, and the proof failed, on a thread whose
 * calls interleave. */
static inline bool biowatch_push(struct bioproof_call *k, const void *frame)
{
	if (biowatch_broken) {
		bioproof_fail(k->p, BIOPROOF_INTERLEAVED);
		return false;
	}
	/* A BIO call that makes another connection's BIO call (TLS inside TLS, or its bytes mirrored
	 * through another connection): what that moves is the other's, never this one's proof. */
	if (biowatch_top && biowatch_live())
		bioproof_fail(biowatch_top->p, BIOPROOF_NESTED);
	if (!biowatch_top)
		biowatch_left = false;
	k->outer = biowatch_top;
	k->outer_frame = biowatch_frame;
	biowatch_top = k;
	biowatch_frame = frame;
	return true;
}

/* A longjmp on this thread (biowait.c): it may leave the watched calls without returning. Each
 * fails its proof (live: the jump starts inside them) and the watch is given up. */
static inline void biowatch_leave(void)
{
	if (__builtin_expect(biowatch_top == NULL, 1) || !biowatch_live())
		return;
	for (struct bioproof_call *k = biowatch_top; k; k = k->outer)
		bioproof_fail(k->p, BIOPROOF_ESCAPED);
	biowatch_top = NULL;
	biowatch_frame = NULL;
	biowatch_left = true;
}

/* The shim's own kernel-side I/O inside a watched BIO call (TLS inside TLS, the outer connection
 * in the kernel): the bytes pass the kernel's TLS, not as the BIO gave them; never a proof. */
static inline void biowatch_unseen(void)
{
	if (__builtin_expect(biowatch_top != NULL, 0) && biowatch_live())
		bioproof_unseen(biowatch_top);
}

/* void *: also a pthread cleanup handler, so that a cancelled BIO call leaves no watch behind. */
static inline void biowatch_pop(void *p)
{
	struct bioproof_call *k = p;
	if (__builtin_expect(biowatch_top == k, 1)) {
		biowatch_top = k->outer;
		biowatch_frame = k->outer_frame;
		return;
	}
	/* Given up at a longjmp that stayed inside it, or a coroutine switch: failed already. */
	if (!biowatch_top && biowatch_left) {
		bioproof_fail(k->p, BIOPROOF_ESCAPED);
		return;
	}
	/* Not the innermost: its outer link may name a call that already ended. */
	biowatch_broken = true;
	biowatch_top = NULL;
	biowatch_frame = NULL;
	bioproof_fail(k->p, BIOPROOF_INTERLEAVED);
}

/* ---- for the two interposition files, biowatch.c (data calls) and biowait.c (waits, and the
 * calls the watch cannot follow): each has its own table `next` of libc's functions and its own
 * resolve_next() ---- */

#define BIOWATCH_EXPORT __attribute__((visibility("default")))
#define NEXT_MEMBER(f)	__typeof__(f) *f;
#define NEXT_RESOLVE(f) *(void **)&next.f = dlsym(RTLD_NEXT, #f);
/* The file's table `next` of the functions LIST names and resolve_next(), run before main. */
#define NEXT_TABLE(LIST)                                            \
	static struct {                                             \
		LIST(NEXT_MEMBER)                                   \
		atomic_bool done;                                   \
	} next;                                                     \
	__attribute__((constructor)) static void resolve_next(void) \
	{                                                           \
		LIST(NEXT_RESOLVE)                                  \
		atomic_store(&next.done, true);                     \
	}
/* libc's function, resolved first when called before the constructors ran. */
#define NEXT(f) \
	(atomic_load_explicit(&next.done, memory_order_acquire) ? (void)0 : resolve_next(), next.f)
/* Outside a watched BIO call (k NULL) with libc's function known: that function at once, nothing
 * saved; anything else (IN_BIO, a separate function) resolves first or watches the call. */
#define READY(k, f) __builtin_expect((k) == NULL && __atomic_load_n(&next.f, __ATOMIC_RELAXED), 1)
#define IN_BIO	    static __attribute__((noinline, cold))

/* Reports to the proof with errno kept. A libc call from a signal handler that interrupted a
 * report cannot be followed: it fails the proof. */
#define BIOWATCH_REPORT(k, stmt)            \
	do {                                \
		int saved_errno = errno;    \
		if (!biowatch_live()) {     \
		} else if ((k)->busy) {     \
			bioproof_unseen(k); \
		} else {                    \
			(k)->busy = true;   \
			stmt;               \
			(k)->busy = false;  \
		}                           \
		errno = saved_errno;        \
	} while (0)

#endif
