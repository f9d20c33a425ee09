/* SPDX-License-Identifier: Apache-2.0 */
/* The contexts each thread is inside a real Mbed TLS call on (interpose.c pushes a frame around
 * each such call): whose call a wrapper sees, and whose keys a context-less export callback
 * carries (frame_export_target, adapter.h). */
#ifndef KTLSSHIM_FRAMES_H
#define KTLSSHIM_FRAMES_H

#include <stdbool.h>
#include <mbedtls/ssl.h>

/* A real call on ssl, made by the wrapper whose stack frame is at `at`. Kept in thread-local
 * memory, never on the app's stack: a call left by longjmp leaves no pointer into a dead frame. */
struct frame {
	const mbedtls_ssl_context *ssl;
	const void *at;
};
#define FRAMES_MAX 16 /* nesting is one or two deep; beyond this a call is not recorded */
extern __thread struct frame frames[FRAMES_MAX];
extern __thread unsigned frames_depth; /* calls entered and not left (may exceed FRAMES_MAX) */
extern __thread bool frames_jumped;    /* a longjmp since the last prune (biojump.c) */

/* After a longjmp: the calls whose wrapper's frame is at or below `here` (the stack grows down)
 * were left without returning; they are dropped. */
void frames_prune(const void *here);

/* Enters a call on ssl from the wrapper frame `at`; returns the depth frames_leave restores. */
static inline unsigned frames_enter(const mbedtls_ssl_context *ssl, const void *at)
{
	if (__builtin_expect(frames_jumped, 0))
		frames_prune(at);
	unsigned d = frames_depth;
	if (d < FRAMES_MAX)
		frames[d] = (struct frame){ ssl, at };
	frames_depth = d + 1;
	return d;
}

/* A cleanup handler: runs when the call returns and when an exception unwinds through it. */
static inline void frames_leave(const unsigned *depth)
{
	frames_depth = *depth;
}

/* Whether this thread is inside a real Mbed TLS call on ssl. */
bool frame_in_call(const mbedtls_ssl_context *ssl);

#endif
