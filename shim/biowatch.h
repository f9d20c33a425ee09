/* SPDX-License-Identifier: Apache-2.0 */
/* The libc calls a custom BIO may make, interposed: inside a watched BIO call (this thread's
 * innermost) each is reported to the proof (bioproof.h); outside one it costs one thread-local
 * test before libc's own function. */
#ifndef KTLSSHIM_BIOWATCH_H
#define KTLSSHIM_BIOWATCH_H

#include "bioproof.h"

/* This thread's innermost watched BIO call (defined in capture.c, which pushes, so that the unit
 * tests link the shim without this file's libc functions). initial-exec: one load, no call. */
extern __thread struct bioproof_call *biowatch_top __attribute__((tls_model("initial-exec")));

/* The calls of this thread go to k until the matching pop (nested BIO calls: the innermost). */
static inline void biowatch_push(struct bioproof_call *k)
{
	k->outer = biowatch_top;
	biowatch_top = k;
}

/* void *: also a pthread cleanup handler, so that a cancelled BIO call leaves no watch behind. */
static inline void biowatch_pop(void *k)
{
	biowatch_top = ((struct bioproof_call *)k)->outer;
}

#endif
