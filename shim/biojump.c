/* SPDX-License-Identifier: Apache-2.0 */
/* longjmp out of a watched BIO call (a timeout by alarm() and siglongjmp is the classic): the call
 * never returns, so its watch would be left on this thread pointing into a dead frame. Interposed,
 * each jump first fails the watched calls' proofs and gives the watch up (biowatch_leave). */
#include "biowatch.h"

#include <dlfcn.h>
#include <setjmp.h>

#define EXPORT BIOWATCH_EXPORT

/* Fortified (_FORTIFY_SOURCE) longjmp, declared by no header. */
void __longjmp_chk(struct __jmp_buf_tag env[1], int val) __attribute__((noreturn));

#define WATCHED(X) \
	X(longjmp) \
	X(__longjmp_chk)

NEXT_TABLE(WATCHED)

/* libc's longjmp, _longjmp and siglongjmp are one function: so are the shim's. */
EXPORT void longjmp(struct __jmp_buf_tag env[1], int val)
{
	biowatch_leave();
	NEXT(longjmp)(env, val);
	__builtin_unreachable(); /* libc's is noreturn: its pointer type does not say so */
}

EXPORT void _longjmp(struct __jmp_buf_tag env[1], int val) __attribute__((alias("longjmp")));
EXPORT void siglongjmp(struct __jmp_buf_tag env[1], int val) __attribute__((alias("longjmp")));

EXPORT void __longjmp_chk(struct __jmp_buf_tag env[1], int val)
{
	biowatch_leave();
	NEXT(__longjmp_chk)(env, val);
	__builtin_unreachable();
}
