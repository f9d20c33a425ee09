/* SPDX-License-Identifier: Apache-2.0 */
/* The watch: libc's data and wait calls, interposed. Not seen: raw system calls, io_uring, and
 * calls libc makes internally (stdio on a socket): a BIO that moves its bytes that way shows no
 * socket call and is refused; docs/design.md says so. */
#include "biowatch.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fdwatch.h"

#define EXPORT __attribute__((visibility("default")))

/* The fortified entry points (_FORTIFY_SOURCE), declared by libc's headers only when in use. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *addr,
		       socklen_t *alen);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *ss,
		size_t fdslen);

#define WATCHED(X)                                                                          \
	X(read)                                                                             \
	X(write)                                                                            \
	X(readv)                                                                            \
	X(writev) X(recv) X(send) X(recvfrom) X(sendto) X(recvmsg) X(sendmsg) X(__read_chk) \
		X(__recv_chk) X(__recvfrom_chk) X(poll) X(ppoll) X(select) X(pselect)       \
			X(__poll_chk) X(__ppoll_chk) X(sendfile) X(sendfile64) X(splice)    \
				X(sendmmsg) X(recvmmsg)
#define MEMBER(f)  __typeof__(f) *f;
#define RESOLVE(f) *(void **)&next.f = dlsym(RTLD_NEXT, #f);

/* libc's own definitions (always there: a program that calls __read_chk has a libc with it),
 * taken before main as shim/fdwatch.c does, or at the first call made before the constructors. */
static struct {
	WATCHED(MEMBER)
	atomic_bool done;
} next;

__attribute__((constructor)) static void resolve_next(void)
{
	WATCHED(RESOLVE)
	atomic_store(&next.done, true);
}

#define NEXT(f) \
	(atomic_load_explicit(&next.done, memory_order_acquire) ? (void)0 : resolve_next(), next.f)

/* Reports to the proof with errno kept. A libc call from a signal handler that interrupted a
 * report cannot be followed: it fails the proof. */
#define REPORT(k, stmt)                     \
	do {                                \
		int saved_errno = errno;    \
		if ((k)->busy) {            \
			bioproof_unseen(k); \
		} else {                    \
			(k)->busy = true;   \
			stmt;               \
			(k)->busy = false;  \
		}                           \
		errno = saved_errno;        \
	} while (0)

/* Flags whose bytes the watch follows; any other (MSG_PEEK, MSG_OOB, MSG_TRUNC, MSG_ZEROCOPY...)
 * moves bytes it cannot account for. */
#define RECV_OK (MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)
#define SEND_OK (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE)

static ssize_t seen(struct bioproof_call *k, enum dir d, int fd, unsigned gen,
		    const struct iovec *iov, int iovcnt, ssize_t r)
{
	REPORT(k, bioproof_data(k, d, fd, gen, iov, iovcnt, r));
	return r;
}

static ssize_t seen1(struct bioproof_call *k, enum dir d, int fd, unsigned gen, const void *buf,
		     ssize_t r)
{
	struct iovec v = { .iov_base = (void *)(uintptr_t)buf, .iov_len = r > 0 ? (size_t)r : 0 };
	return seen(k, d, fd, gen, &v, 1, r);
}

/* k may be NULL (outside a BIO call): then nothing is reported. */
static void unseen(struct bioproof_call *k, bool really)
{
	if (__builtin_expect(k != NULL, 0) && really)
		REPORT(k, bioproof_unseen(k));
}

static void waits(struct bioproof_call *k, long ms)
{
	if (__builtin_expect(k != NULL, 0))
		REPORT(k, bioproof_wait(k, ms));
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

/* Every wrapper: outside a watched BIO call (k NULL), libc's function at once; inside one, the
 * descriptor's generation read before the call, and what the call did reported after it. */
#define OUTSIDE(k) __builtin_expect((k) == NULL, 1)

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(read)(fd, buf, n);
	unsigned gen = fdwatch_gen(fd);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(read)(fd, buf, n));
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(__read_chk)(fd, buf, n, buflen);
	unsigned gen = fdwatch_gen(fd);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(__read_chk)(fd, buf, n, buflen));
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(write)(fd, buf, n);
	unsigned gen = fdwatch_gen(fd);
	return seen1(k, DIR_TX, fd, gen, buf, NEXT(write)(fd, buf, n));
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(recv)(fd, buf, n, flags);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~RECV_OK);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(recv)(fd, buf, n, flags));
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(__recv_chk)(fd, buf, n, buflen, flags);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~RECV_OK);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(__recv_chk)(fd, buf, n, buflen, flags));
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			socklen_t *alen)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(recvfrom)(fd, buf, n, flags, addr, alen);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~RECV_OK);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(recvfrom)(fd, buf, n, flags, addr, alen));
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
			      struct sockaddr *addr, socklen_t *alen)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, alen);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~RECV_OK);
	return seen1(k, DIR_RX, fd, gen, buf,
		     NEXT(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, alen));
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(send)(fd, buf, n, flags);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~SEND_OK);
	return seen1(k, DIR_TX, fd, gen, buf, NEXT(send)(fd, buf, n, flags));
}

/* On a connected TCP socket the address is ignored; on anything else the hand-off refuses. */
EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
		      socklen_t alen)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(sendto)(fd, buf, n, flags, addr, alen);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~SEND_OK);
	return seen1(k, DIR_TX, fd, gen, buf, NEXT(sendto)(fd, buf, n, flags, addr, alen));
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(readv)(fd, iov, cnt);
	unsigned gen = fdwatch_gen(fd);
	return seen(k, DIR_RX, fd, gen, iov, cnt, NEXT(readv)(fd, iov, cnt));
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(writev)(fd, iov, cnt);
	unsigned gen = fdwatch_gen(fd);
	return seen(k, DIR_TX, fd, gen, iov, cnt, NEXT(writev)(fd, iov, cnt));
}

/* Ancillary data (descriptors, credentials) is not bytes of the stream: not followed. */
static bool odd_msg(const struct msghdr *msg, int flags, int ok)
{
	return (flags & ~ok) || !msg || msg->msg_controllen;
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(recvmsg)(fd, msg, flags);
	unsigned gen = fdwatch_gen(fd);
	bool odd = odd_msg(msg, flags, RECV_OK);
	unseen(k, odd);
	ssize_t r = NEXT(recvmsg)(fd, msg, flags);
	return odd ? r : seen(k, DIR_RX, fd, gen, msg->msg_iov, (int)msg->msg_iovlen, r);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct bioproof_call *k = biowatch_top;
	if (OUTSIDE(k))
		return NEXT(sendmsg)(fd, msg, flags);
	unsigned gen = fdwatch_gen(fd);
	bool odd = odd_msg(msg, flags, SEND_OK);
	unseen(k, odd);
	ssize_t r = NEXT(sendmsg)(fd, msg, flags);
	return odd ? r : seen(k, DIR_TX, fd, gen, msg->msg_iov, (int)msg->msg_iovlen, r);
}

/* Bytes moved without passing through the process, or many messages at once: not followed. */
EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	unseen(biowatch_top, true);
	return NEXT(sendfile)(out, in, off, n);
}

EXPORT ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
	unseen(biowatch_top, true);
	return NEXT(sendfile64)(out, in, off, n);
}

EXPORT ssize_t splice(int in, off64_t *in_off, int out, off64_t *out_off, size_t n, unsigned flags)
{
	unseen(biowatch_top, true);
	return NEXT(splice)(in, in_off, out, out_off, n, flags);
}

EXPORT int sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	unseen(biowatch_top, true);
	return NEXT(sendmmsg)(fd, v, n, flags);
}

EXPORT int recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *ts)
{
	unseen(biowatch_top, true);
	return NEXT(recvmmsg)(fd, v, n, flags, ts);
}

/* Waits: a finite one inside a BIO call is the BIO's own timeout (bioproof_wait). */
EXPORT int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	waits(biowatch_top, timeout);
	return NEXT(poll)(fds, n, timeout);
}

EXPORT int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	waits(biowatch_top, timeout);
	return NEXT(__poll_chk)(fds, n, timeout, fdslen);
}

EXPORT int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *ss)
{
	waits(biowatch_top, TS_MS(ts));
	return NEXT(ppoll)(fds, n, ts, ss);
}

EXPORT int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *ss,
		       size_t fdslen)
{
	waits(biowatch_top, TS_MS(ts));
	return NEXT(__ppoll_chk)(fds, n, ts, ss, fdslen);
}

EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	waits(biowatch_top, TV_MS(tv));
	return NEXT(select)(n, r, w, e, tv);
}

EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
		   const sigset_t *ss)
{
	waits(biowatch_top, TS_MS(ts));
	return NEXT(pselect)(n, r, w, e, ts, ss);
}
