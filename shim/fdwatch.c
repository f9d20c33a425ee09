/* SPDX-License-Identifier: Apache-2.0 */
/* The libc calls that close or replace a descriptor, interposed to bump its generation first
 * (before the number can be reused): close, dup2, dup3, close_range, closefrom, fclose. Not seen:
 * raw system calls, io_uring, and closes inside libc (freopen); docs/reliability.md says so. */
#include "fdwatch.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))

atomic_uint fdwatch_gens[FDWATCH_SLOTS];

static void bump(int fd)
{
	if (fd >= 0)
		atomic_fetch_add(&fdwatch_gens[(unsigned)fd & (FDWATCH_SLOTS - 1)], 1);
}

static void bump_range(unsigned first, unsigned last)
{
	if (last < first)
		return;
	if (last - first >= FDWATCH_SLOTS - 1)
		last = first + FDWATCH_SLOTS - 1; /* every slot */
	for (unsigned fd = first; fd <= last && fd >= first; fd++)
		atomic_fetch_add(&fdwatch_gens[fd & (FDWATCH_SLOTS - 1)], 1);
}

/* libc's own definitions, taken before main: the first close() may come from a signal handler or
 * from the child of a fork in a threaded program, where dlsym could deadlock. A call made before
 * the constructors ran (another library's constructor) looks them up then. */
static struct {
	int (*close)(int);
	int (*dup2)(int, int);
	int (*dup3)(int, int, int);
	int (*close_range)(unsigned, unsigned, int);
	void (*closefrom)(int);
	int (*fclose)(FILE *);
	atomic_bool done;
} next;

__attribute__((constructor)) static void resolve_next(void)
{
	*(void **)&next.close = dlsym(RTLD_NEXT, "close");
	*(void **)&next.dup2 = dlsym(RTLD_NEXT, "dup2");
	*(void **)&next.dup3 = dlsym(RTLD_NEXT, "dup3");
	*(void **)&next.close_range = dlsym(RTLD_NEXT, "close_range");
	*(void **)&next.closefrom = dlsym(RTLD_NEXT, "closefrom");
	*(void **)&next.fclose = dlsym(RTLD_NEXT, "fclose");
	atomic_store(&next.done, true);
}

#define NEXT(name) (atomic_load(&next.done) ? (void)0 : resolve_next(), next.name)

EXPORT int close(int fd)
{
	bump(fd);
	int (*f)(int) = NEXT(close);
	return f ? f(fd) : (int)syscall(SYS_close, fd);
}

EXPORT int dup2(int oldfd, int newfd)
{
	if (oldfd != newfd)
		bump(newfd);
	int (*f)(int, int) = NEXT(dup2);
	return f ? f(oldfd, newfd) : (errno = ENOSYS, -1);
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	bump(newfd);
	int (*f)(int, int, int) = NEXT(dup3);
	return f ? f(oldfd, newfd, flags) : (errno = ENOSYS, -1);
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	bump_range(first, last); /* CLOSE_RANGE_CLOEXEC too: harmless, and simpler */
	int (*f)(unsigned, unsigned, int) = NEXT(close_range);
	return f ? f(first, last, flags) : (errno = ENOSYS, -1);
}

EXPORT void closefrom(int lowfd)
{
	bump_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0u);
	void (*f)(int) = NEXT(closefrom);
	if (f)
		f(lowfd);
}

EXPORT int fclose(FILE *stream)
{
	if (stream)
		bump(fileno(stream));
	int (*f)(FILE *) = NEXT(fclose);
	return f ? f(stream) : EOF;
}
