/* SPDX-License-Identifier: Apache-2.0 */
/* longjmp out of a watched BIO call (a timeout by alarm() and siglongjmp is the classic), or a
 * coroutine switch inside one: the call may never return, so its watch would be left on this
 * thread pointing into a dead frame. Interposed, each first fails the watched calls' proofs and
 * gives the watch up (biowatch_leave); a longjmp also has the Mbed TLS calls it left dropped
 * (frames.h). */
#include "biowatch.h"
#include "frames.h"

#include <dlfcn.h>
#include <setjmp.h>
#include <ucontext.h>

#define EXPORT BIOWATCH_EXPORT

/* Fortified (_FORTIFY_SOURCE) longjmp, declared by no header. */
void __longjmp_chk(struct __jmp_buf_tag env[1], int val) __attribute__((noreturn));

#define WATCHED(X)       \
	X(longjmp)       \
	X(__longjmp_chk) \
	X(swapcontext)   \
	X(setcontext)

NEXT_TABLE(WATCHED)

/* libc's longjmp, _longjmp and siglongjmp are one function: so are the shim's. */
EXPORT void longjmp(struct __jmp_buf_tag env[1], int val)
{
	biowatch_leave();
	frames_jumped = true; /* the Mbed TLS calls it leaves are dropped at the next one */
	NEXT(longjmp)(env, val);
	__builtin_unreachable(); /* libc's is noreturn: its pointer type does not say so */
}

EXPORT void _longjmp(struct __jmp_buf_tag env[1], int val) __attribute__((alias("longjmp")));
EXPORT void siglongjmp(struct __jmp_buf_tag env[1], int val) __attribute__((alias("longjmp")));

EXPORT void __longjmp_chk(struct __jmp_buf_tag env[1], int val)
{
	biowatch_leave();
	frames_jumped = true;
	NEXT(__longjmp_chk)(env, val);
	__builtin_unreachable();
}

/* A coroutine switched away inside a BIO call may never come back (its stack freed): its watch
 * is given up at the switch, and the call, if resumed, returns unproven. */
EXPORT int swapcontext(ucontext_t *from, const ucontext_t *to)
{
	biowatch_leave();
	return NEXT(swapcontext)(from, to);
}

EXPORT int setcontext(const ucontext_t *to)
{
	biowatch_leave();
	return NEXT(setcontext)(to);
}
