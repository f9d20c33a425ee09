/* SPDX-License-Identifier: Apache-2.0 */
/* The watch of a custom BIO's waits (poll, select: a finite one is the BIO's own timeout) and of
 * the calls whose bytes it cannot follow (sendfile, splice, many messages at once): interposed. */
#include "biowatch.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#define EXPORT BIOWATCH_EXPORT

/* Fortified (_FORTIFY_SOURCE), declared by libc's headers only when in use. */
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *ss,
		size_t fdslen);

#define WATCHED(X)      \
	X(poll)         \
	X(ppoll)        \
	X(select)       \
	X(pselect)      \
	X(__poll_chk)   \
	X(__ppoll_chk)  \
	X(epoll_wait)   \
	X(epoll_pwait)  \
	X(epoll_pwait2) \
	X(sendfile)     \
	X(sendfile64)   \
	X(splice)       \
	X(sendmmsg)     \
	X(recvmmsg)

/* libc's own definitions, as in biowatch.c. */
NEXT_TABLE(WATCHED)

static void unseen(struct bioproof_call *k)
{
	BIOWATCH_REPORT(k, bioproof_unseen(k));
}

static void waits(struct bioproof_call *k, long ms)
{
	BIOWATCH_REPORT(k, bioproof_wait(k, ms));
}

/* A struct timespec or timeval as a wait in ms, rounded up; NULL waits for ever (-1). */
static long wait_ms(long sec, long part, long per_ms)
{
	if (sec < 0 || part < 0)
		return 0;
	if (sec > LONG_MAX / 1000 - 1)
		return LONG_MAX;
	return sec * 1000 + (part + per_ms - 1) / per_ms;
}

#define TS_MS(ts) ((ts) ? wait_ms((ts)->tv_sec, (ts)->tv_nsec, 1000000) : -1)
#define TV_MS(tv) ((tv) ? wait_ms((tv)->tv_sec, (tv)->tv_usec, 1000) : -1)

/* Bytes moved without passing through the process, or many messages at once: not followed. */
IN_BIO ssize_t sendfile_in_bio(struct bioproof_call *k, int out, int in, off_t *off, size_t n)
{
	if (!k)
		return NEXT(sendfile)(out, in, off, n);
	unseen(k);
	return NEXT(sendfile)(out, in, off, n);
}

EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, sendfile) ? next.sendfile(out, in, off, n)
				  : sendfile_in_bio(k, out, in, off, n);
}

IN_BIO ssize_t sendfile64_in_bio(struct bioproof_call *k, int out, int in, off64_t *off, size_t n)
{
	if (!k)
		return NEXT(sendfile64)(out, in, off, n);
	unseen(k);
	return NEXT(sendfile64)(out, in, off, n);
}

EXPORT ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, sendfile64) ? next.sendfile64(out, in, off, n)
				    : sendfile64_in_bio(k, out, in, off, n);
}

IN_BIO ssize_t splice_in_bio(struct bioproof_call *k, int in, off64_t *in_off, int out,
			     off64_t *out_off, size_t n, unsigned flags)
{
	if (!k)
		return NEXT(splice)(in, in_off, out, out_off, n, flags);
	unseen(k);
	return NEXT(splice)(in, in_off, out, out_off, n, flags);
}

EXPORT ssize_t splice(int in, off64_t *in_off, int out, off64_t *out_off, size_t n, unsigned flags)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, splice) ? next.splice(in, in_off, out, out_off, n, flags)
				: splice_in_bio(k, in, in_off, out, out_off, n, flags);
}

IN_BIO int sendmmsg_in_bio(struct bioproof_call *k, int fd, struct mmsghdr *v, unsigned n,
			   int flags)
{
	if (!k)
		return NEXT(sendmmsg)(fd, v, n, flags);
	unseen(k);
	return NEXT(sendmmsg)(fd, v, n, flags);
}

EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, sendmmsg) ? next.sendmmsg(fd, v, n, flags)
				  : sendmmsg_in_bio(k, fd, v, n, flags);
}

IN_BIO int recvmmsg_in_bio(struct bioproof_call *k, int fd, struct mmsghdr *v, unsigned n,
			   int flags, struct timespec *ts)
{
	if (!k)
		return NEXT(recvmmsg)(fd, v, n, flags, ts);
	unseen(k);
	return NEXT(recvmmsg)(fd, v, n, flags, ts);
}

EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *ts)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, recvmmsg) ? next.recvmmsg(fd, v, n, flags, ts)
				  : recvmmsg_in_bio(k, fd, v, n, flags, ts);
}

/* Waits: a finite one inside a BIO call is the BIO's own timeout (bioproof_wait). */
IN_BIO int poll_in_bio(struct bioproof_call *k, struct pollfd *fds, nfds_t n, int timeout)
{
	if (!k)
		return NEXT(poll)(fds, n, timeout);
	waits(k, timeout);
	return NEXT(poll)(fds, n, timeout);
}

EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, poll) ? next.poll(fds, n, timeout) : poll_in_bio(k, fds, n, timeout);
}
/* glibc exports these names of its poll and select too. */
EXPORT int __poll(struct pollfd *fds, nfds_t n, int timeout) __attribute__((alias("poll")));

IN_BIO int poll_chk_in_bio(struct bioproof_call *k, struct pollfd *fds, nfds_t n, int timeout,
			   size_t fdslen)
{
	if (!k)
		return NEXT(__poll_chk)(fds, n, timeout, fdslen);
	waits(k, timeout);
	return NEXT(__poll_chk)(fds, n, timeout, fdslen);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, __poll_chk) ? next.__poll_chk(fds, n, timeout, fdslen)
				    : poll_chk_in_bio(k, fds, n, timeout, fdslen);
}

IN_BIO int ppoll_in_bio(struct bioproof_call *k, struct pollfd *fds, nfds_t n,
			const struct timespec *ts, const sigset_t *ss)
{
	if (!k)
		return NEXT(ppoll)(fds, n, ts, ss);
	waits(k, TS_MS(ts));
	return NEXT(ppoll)(fds, n, ts, ss);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *ss)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, ppoll) ? next.ppoll(fds, n, ts, ss) : ppoll_in_bio(k, fds, n, ts, ss);
}

IN_BIO int ppoll_chk_in_bio(struct bioproof_call *k, struct pollfd *fds, nfds_t n,
			    const struct timespec *ts, const sigset_t *ss, size_t fdslen)
{
	if (!k)
		return NEXT(__ppoll_chk)(fds, n, ts, ss, fdslen);
	waits(k, TS_MS(ts));
	return NEXT(__ppoll_chk)(fds, n, ts, ss, fdslen);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *ss,
		       size_t fdslen)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, __ppoll_chk) ? next.__ppoll_chk(fds, n, ts, ss, fdslen)
				     : ppoll_chk_in_bio(k, fds, n, ts, ss, fdslen);
}

IN_BIO int epoll_wait_in_bio(struct bioproof_call *k, int ep, struct epoll_event *ev, int n,
			     int timeout)
{
	if (!k)
		return NEXT(epoll_wait)(ep, ev, n, timeout);
	waits(k, timeout);
	return NEXT(epoll_wait)(ep, ev, n, timeout);
}

EXPORT int epoll_wait(int ep, struct epoll_event *ev, int n, int timeout)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, epoll_wait) ? next.epoll_wait(ep, ev, n, timeout)
				    : epoll_wait_in_bio(k, ep, ev, n, timeout);
}

IN_BIO int epoll_pwait_in_bio(struct bioproof_call *k, int ep, struct epoll_event *ev, int n,
			      int timeout, const sigset_t *ss)
{
	if (!k)
		return NEXT(epoll_pwait)(ep, ev, n, timeout, ss);
	waits(k, timeout);
	return NEXT(epoll_pwait)(ep, ev, n, timeout, ss);
}

EXPORT int epoll_pwait(int ep, struct epoll_event *ev, int n, int timeout, const sigset_t *ss)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, epoll_pwait) ? next.epoll_pwait(ep, ev, n, timeout, ss)
				     : epoll_pwait_in_bio(k, ep, ev, n, timeout, ss);
}

IN_BIO int epoll_pwait2_in_bio(struct bioproof_call *k, int ep, struct epoll_event *ev, int n,
			       const struct timespec *ts, const sigset_t *ss)
{
	if (!k)
		return NEXT(epoll_pwait2)(ep, ev, n, ts, ss);
	waits(k, TS_MS(ts));
	return NEXT(epoll_pwait2)(ep, ev, n, ts, ss);
}

EXPORT int epoll_pwait2(int ep, struct epoll_event *ev, int n, const struct timespec *ts,
			const sigset_t *ss)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, epoll_pwait2) ? next.epoll_pwait2(ep, ev, n, ts, ss)
				      : epoll_pwait2_in_bio(k, ep, ev, n, ts, ss);
}

IN_BIO int select_in_bio(struct bioproof_call *k, int n, fd_set *r, fd_set *w, fd_set *e,
			 struct timeval *tv)
{
	if (!k)
		return NEXT(select)(n, r, w, e, tv);
	waits(k, TV_MS(tv));
	return NEXT(select)(n, r, w, e, tv);
}

EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, select) ? next.select(n, r, w, e, tv) : select_in_bio(k, n, r, w, e, tv);
}
EXPORT int __select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
	__attribute__((alias("select")));

IN_BIO int pselect_in_bio(struct bioproof_call *k, int n, fd_set *r, fd_set *w, fd_set *e,
			  const struct timespec *ts, const sigset_t *ss)
{
	if (!k)
		return NEXT(pselect)(n, r, w, e, ts, ss);
	waits(k, TS_MS(ts));
	return NEXT(pselect)(n, r, w, e, ts, ss);
}

EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
		   const sigset_t *ss)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, pselect) ? next.pselect(n, r, w, e, ts, ss)
				 : pselect_in_bio(k, n, r, w, e, ts, ss);
}
