/* SPDX-License-Identifier: Apache-2.0 */
/* The watch of a custom BIO's data calls: libc's read, write and socket calls, interposed. Not
 * seen: raw system calls, io_uring, and calls libc makes internally (stdio on a socket): a BIO
 * that moves its bytes that way shows no socket call and is refused; docs/design.md says so. */
#include "biowatch.h"

#include <dlfcn.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fdwatch.h"

#define EXPORT BIOWATCH_EXPORT

/* The fortified entry points (_FORTIFY_SOURCE), declared by libc's headers only when in use. */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags, struct sockaddr *addr,
		       socklen_t *alen);

#define WATCHED(X)    \
	X(read)       \
	X(write)      \
	X(readv)      \
	X(writev)     \
	X(recv)       \
	X(send)       \
	X(recvfrom)   \
	X(sendto)     \
	X(recvmsg)    \
	X(sendmsg)    \
	X(__read_chk) \
	X(__recv_chk) \
	X(__recvfrom_chk)

/* libc's own definitions (always there: a program that calls __read_chk has a libc with it),
 * taken before main as shim/fdwatch.c does, or at the first call made before the constructors. */
NEXT_TABLE(WATCHED)

/* Flags whose bytes the watch follows; any other (MSG_PEEK, MSG_OOB, MSG_TRUNC, MSG_ZEROCOPY...)
 * moves bytes it cannot account for. */
#define RECV_OK (MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)
#define SEND_OK (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE)

/* Called as the libc call returns (errno still its own); flags: its MSG_* flags. */
static ssize_t seen(struct bioproof_call *k, enum dir d, int fd, unsigned gen,
		    const struct iovec *iov, int iovcnt, ssize_t r, int flags)
{
	unsigned how = flags & MSG_DONTWAIT ? BIOPROOF_DONTWAIT : 0;
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		how |= BIOPROOF_WOULD_BLOCK;
	BIOWATCH_REPORT(k, bioproof_data(k, d, fd, gen, iov, iovcnt, r, how));
	return r;
}

static ssize_t seen1(struct bioproof_call *k, enum dir d, int fd, unsigned gen, const void *buf,
		     ssize_t r, int flags)
{
	struct iovec v = { .iov_base = (void *)(uintptr_t)buf, .iov_len = r > 0 ? (size_t)r : 0 };
	return seen(k, d, fd, gen, &v, 1, r, flags);
}

static void unseen(struct bioproof_call *k, bool really)
{
	if (really)
		BIOWATCH_REPORT(k, bioproof_unseen(k));
}

/* Ancillary data (descriptors, credentials) is not bytes of the stream: not followed. */
static bool odd_msg(const struct msghdr *msg, int flags, int ok)
{
	return (flags & ~ok) || !msg || msg->msg_controllen;
}

/* Each wrapper: outside a watched BIO call libc's function at once (READY); inside one
 * (IN_BIO), the descriptor's generation read before the call and what it moved reported after. */
IN_BIO ssize_t read_in_bio(struct bioproof_call *k, int fd, void *buf, size_t n)
{
	if (!k)
		return NEXT(read)(fd, buf, n);
	unsigned gen = fdwatch_gen(fd);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(read)(fd, buf, n), 0);
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, read) ? next.read(fd, buf, n) : read_in_bio(k, fd, buf, n);
}
/* glibc exports these names of its read, write and send too. */
EXPORT ssize_t __read(int fd, void *buf, size_t n) __attribute__((alias("read")));

IN_BIO ssize_t read_chk_in_bio(struct bioproof_call *k, int fd, void *buf, size_t n, size_t buflen)
{
	if (!k)
		return NEXT(__read_chk)(fd, buf, n, buflen);
	unsigned gen = fdwatch_gen(fd);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(__read_chk)(fd, buf, n, buflen), 0);
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, __read_chk) ? next.__read_chk(fd, buf, n, buflen)
				    : read_chk_in_bio(k, fd, buf, n, buflen);
}

IN_BIO ssize_t write_in_bio(struct bioproof_call *k, int fd, const void *buf, size_t n)
{
	if (!k)
		return NEXT(write)(fd, buf, n);
	unsigned gen = fdwatch_gen(fd);
	return seen1(k, DIR_TX, fd, gen, buf, NEXT(write)(fd, buf, n), 0);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, write) ? next.write(fd, buf, n) : write_in_bio(k, fd, buf, n);
}
EXPORT ssize_t __write(int fd, const void *buf, size_t n) __attribute__((alias("write")));

IN_BIO ssize_t recv_in_bio(struct bioproof_call *k, int fd, void *buf, size_t n, int flags)
{
	if (!k)
		return NEXT(recv)(fd, buf, n, flags);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~RECV_OK);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(recv)(fd, buf, n, flags), flags);
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, recv) ? next.recv(fd, buf, n, flags) : recv_in_bio(k, fd, buf, n, flags);
}

IN_BIO ssize_t recv_chk_in_bio(struct bioproof_call *k, int fd, void *buf, size_t n, size_t buflen,
			       int flags)
{
	if (!k)
		return NEXT(__recv_chk)(fd, buf, n, buflen, flags);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~RECV_OK);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(__recv_chk)(fd, buf, n, buflen, flags), flags);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, __recv_chk) ? next.__recv_chk(fd, buf, n, buflen, flags)
				    : recv_chk_in_bio(k, fd, buf, n, buflen, flags);
}

IN_BIO ssize_t recvfrom_in_bio(struct bioproof_call *k, int fd, void *buf, size_t n, int flags,
			       struct sockaddr *addr, socklen_t *alen)
{
	if (!k)
		return NEXT(recvfrom)(fd, buf, n, flags, addr, alen);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~RECV_OK);
	return seen1(k, DIR_RX, fd, gen, buf, NEXT(recvfrom)(fd, buf, n, flags, addr, alen), flags);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
			socklen_t *alen)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, recvfrom) ? next.recvfrom(fd, buf, n, flags, addr, alen)
				  : recvfrom_in_bio(k, fd, buf, n, flags, addr, alen);
}

IN_BIO ssize_t recvfrom_chk_in_bio(struct bioproof_call *k, int fd, void *buf, size_t n,
				   size_t buflen, int flags, struct sockaddr *addr, socklen_t *alen)
{
	if (!k)
		return NEXT(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, alen);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~RECV_OK);
	return seen1(k, DIR_RX, fd, gen, buf,
		     NEXT(__recvfrom_chk)(fd, buf, n, buflen, flags, addr, alen), flags);
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
			      struct sockaddr *addr, socklen_t *alen)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, __recvfrom_chk)
		       ? next.__recvfrom_chk(fd, buf, n, buflen, flags, addr, alen)
		       : recvfrom_chk_in_bio(k, fd, buf, n, buflen, flags, addr, alen);
}

IN_BIO ssize_t send_in_bio(struct bioproof_call *k, int fd, const void *buf, size_t n, int flags)
{
	if (!k)
		return NEXT(send)(fd, buf, n, flags);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~SEND_OK);
	return seen1(k, DIR_TX, fd, gen, buf, NEXT(send)(fd, buf, n, flags), flags);
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, send) ? next.send(fd, buf, n, flags) : send_in_bio(k, fd, buf, n, flags);
}
EXPORT ssize_t __send(int fd, const void *buf, size_t n, int flags) __attribute__((alias("send")));

/* On a connected TCP socket the address is ignored; on anything else the hand-off refuses. */
IN_BIO ssize_t sendto_in_bio(struct bioproof_call *k, int fd, const void *buf, size_t n, int flags,
			     const struct sockaddr *addr, socklen_t alen)
{
	if (!k)
		return NEXT(sendto)(fd, buf, n, flags, addr, alen);
	unsigned gen = fdwatch_gen(fd);
	unseen(k, flags & ~SEND_OK);
	return seen1(k, DIR_TX, fd, gen, buf, NEXT(sendto)(fd, buf, n, flags, addr, alen), flags);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
		      socklen_t alen)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, sendto) ? next.sendto(fd, buf, n, flags, addr, alen)
				: sendto_in_bio(k, fd, buf, n, flags, addr, alen);
}

IN_BIO ssize_t readv_in_bio(struct bioproof_call *k, int fd, const struct iovec *iov, int cnt)
{
	if (!k)
		return NEXT(readv)(fd, iov, cnt);
	unsigned gen = fdwatch_gen(fd);
	return seen(k, DIR_RX, fd, gen, iov, cnt, NEXT(readv)(fd, iov, cnt), 0);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, readv) ? next.readv(fd, iov, cnt) : readv_in_bio(k, fd, iov, cnt);
}

IN_BIO ssize_t writev_in_bio(struct bioproof_call *k, int fd, const struct iovec *iov, int cnt)
{
	if (!k)
		return NEXT(writev)(fd, iov, cnt);
	unsigned gen = fdwatch_gen(fd);
	return seen(k, DIR_TX, fd, gen, iov, cnt, NEXT(writev)(fd, iov, cnt), 0);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, writev) ? next.writev(fd, iov, cnt) : writev_in_bio(k, fd, iov, cnt);
}

IN_BIO ssize_t recvmsg_in_bio(struct bioproof_call *k, int fd, struct msghdr *msg, int flags)
{
	if (!k)
		return NEXT(recvmsg)(fd, msg, flags);
	unsigned gen = fdwatch_gen(fd);
	bool odd = odd_msg(msg, flags, RECV_OK);
	unseen(k, odd);
	ssize_t r = NEXT(recvmsg)(fd, msg, flags);
	return odd ? r : seen(k, DIR_RX, fd, gen, msg->msg_iov, (int)msg->msg_iovlen, r, flags);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, recvmsg) ? next.recvmsg(fd, msg, flags) : recvmsg_in_bio(k, fd, msg, flags);
}

IN_BIO ssize_t sendmsg_in_bio(struct bioproof_call *k, int fd, const struct msghdr *msg, int flags)
{
	if (!k)
		return NEXT(sendmsg)(fd, msg, flags);
	unsigned gen = fdwatch_gen(fd);
	bool odd = odd_msg(msg, flags, SEND_OK);
	unseen(k, odd);
	ssize_t r = NEXT(sendmsg)(fd, msg, flags);
	return odd ? r : seen(k, DIR_TX, fd, gen, msg->msg_iov, (int)msg->msg_iovlen, r, flags);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct bioproof_call *k = biowatch_top;
	return READY(k, sendmsg) ? next.sendmsg(fd, msg, flags) : sendmsg_in_bio(k, fd, msg, flags);
}
