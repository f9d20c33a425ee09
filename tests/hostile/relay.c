/* SPDX-License-Identifier: Apache-2.0 */
/* relay: a man-in-the-middle on loopback between a TLS client and server, for tests/hostile.bats.
 *
 * usage: relay --port SERVER_PORT [--host ADDR] [--fault F] [--dir s2c|c2s] [--after N]
 *              [--stall MS] [--settle MS] [--connections N] [--dump PREFIX]
 *
 * Listens on ADDR (default 127.0.0.1) port 0 and prints "PORT n"; for each of --connections
 * (default 1) accepted connections, connects to ADDR:SERVER_PORT and forwards both ways, one whole
 * TLS record (5-byte header + body) at a time. On the first connection only, in direction --dir
 * (default s2c: server to client), it counts full application records (body >= 16384 bytes: never
 * a handshake record, in TLS 1.2 or 1.3) and applies fault F to the record after the first
 * --after N (default 2) of them, so the fault always lands after the handshake, in bulk data. Before
 * the faulty record it pauses --settle MS (default 300; everything before it has been forwarded), so
 * that the receiver has finished its hand-off to the kernel before the fault arrives:
 *
 *   none       forward unchanged
 *   flip       flip one bit in the middle of the record's body
 *   truncate   send the header and half the body, then close both connections (FIN)
 *   oversize   send a header announcing 2^14 + 2048 + 1 bytes (more than any TLS version allows;
 *              --oversize-len N to choose) and the original body, then close
 *   alert      inject the plaintext alert record 21 3 3 0 2 2 40 (fatal handshake_failure) before
 *              the record, then go on forwarding
 *   keyupdate  inject a plaintext TLS 1.3 KeyUpdate record (22 3 3 0 5 24 0 0 1 0) before it
 *   reset      send the header and half the body, then reset both connections (SO_LINGER 0)
 *   stall      send the header and half the body, stop forwarding for --stall MS (default 1500),
 *              then go on
 *   gap        stop forwarding for --stall MS between two records (nothing half-sent), then go on
 *
 * --dump PREFIX writes the bytes each connection carried as PREFIX.<i>.c2s and PREFIX.<i>.s2c (as
 * received from each end, before any fault): real record streams, e.g. for the fuzzers' seeds.
 *
 * Prints "FAULT <f> conn=0 dir=<d> record=<n> len=<body>" when it applied the fault, and
 * "DONE conn=<i> c2s=<bytes> s2c=<bytes>" after each connection. Exit 0, or 1 on a setup error. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR	  5
#define FULL_BODY 16384
#define BUFCAP	  (HDR + 65535 + 1)

enum fault {
	F_NONE,
	F_FLIP,
	F_TRUNCATE,
	F_OVERSIZE,
	F_ALERT,
	F_KEYUPDATE,
	F_RESET,
	F_STALL,
	F_GAP
};
static const char *const fault_names[] = { "none",	"flip",	 "truncate", "oversize", "alert",
					   "keyupdate", "reset", "stall",    "gap" };

struct dir {
	int src, dst;
	const char *name;
	bool faulty;   /* the fault goes into this direction (this connection) */
	bool eof;      /* src ended; dst was shut down for writing */
	unsigned full; /* full application records forwarded */
	unsigned records;
	unsigned long long bytes;
	size_t have;
	unsigned char buf[BUFCAP];
};

static enum fault fault = F_NONE;
static unsigned after = 2;
static unsigned stall_ms = 1500;
static unsigned settle_ms = 300;
static unsigned oversize_len = 16384 + 2048 + 1;
static const char *dump_prefix;
static FILE *dump[2];

static void die(const char *what)
{
	fprintf(stderr, "relay: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* 0, or -1 when the peer is gone (EPIPE, ECONNRESET, ...). */
static int write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void reset_close(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

enum verdict { GO_ON = 0, CLOSE = 1, RESET = 2 };

/* Applies the fault to the record rec (header + body of len bytes) going to d->dst. */
static enum verdict apply_fault(struct dir *d, unsigned char *rec, size_t len)
{
	static const unsigned char alert[] = { 21, 3, 3, 0, 2, 2, 40 };
	static const unsigned char keyupdate[] = { 22, 3, 3, 0, 5, 24, 0, 0, 1, 0 };
	size_t half = HDR + len / 2;
	sleep_ms(settle_ms);
	printf("FAULT %s conn=0 dir=%s record=%u len=%zu\n", fault_names[fault], d->name,
	       d->records, len);
	fflush(stdout);
	switch (fault) {
	case F_NONE: break;
	case F_FLIP: rec[HDR + len / 2] ^= 0x10; break;
	case F_TRUNCATE: write_all(d->dst, rec, half); return CLOSE;
	case F_OVERSIZE: {
		unsigned big = oversize_len;
		rec[3] = (unsigned char)(big >> 8);
		rec[4] = (unsigned char)big;
		write_all(d->dst, rec, HDR + len);
		return CLOSE;
	}
	case F_ALERT:
		if (write_all(d->dst, alert, sizeof(alert)))
			return CLOSE;
		break;
	case F_KEYUPDATE:
		if (write_all(d->dst, keyupdate, sizeof(keyupdate)))
			return CLOSE;
		break;
	case F_RESET:
		write_all(d->dst, rec, half);
		usleep(50 * 1000); /* let the half record reach the receiver before the RST */
		return RESET;
	case F_GAP: sleep_ms(stall_ms); break;
	case F_STALL: {
		if (write_all(d->dst, rec, half))
			return CLOSE;
		sleep_ms(stall_ms);
		return write_all(d->dst, rec + half, HDR + len - half) ? CLOSE : GO_ON;
	}
	}
	return write_all(d->dst, rec, HDR + len) ? CLOSE : GO_ON;
}

/* Forwards every whole record in d->buf; a partial one stays (all of it at EOF). */
static enum verdict forward(struct dir *d)
{
	size_t off = 0;
	enum verdict v = GO_ON;
	while (v == GO_ON && d->have - off >= HDR) {
		unsigned char *rec = d->buf + off;
		size_t len = ((size_t)rec[3] << 8) | rec[4];
		if (d->have - off < HDR + len)
			break;
		if (d->faulty && len >= FULL_BODY && d->full++ == after) {
			d->faulty = false;
			v = apply_fault(d, rec, len);
		} else if (write_all(d->dst, rec, HDR + len)) {
			v = CLOSE;
		}
		d->records++;
		off += HDR + len;
	}
	memmove(d->buf, d->buf + off, d->have - off);
	d->have -= off;
	if (v == GO_ON && d->eof && d->have) {
		if (write_all(d->dst, d->buf, d->have))
			v = CLOSE;
		d->have = 0;
	}
	return v;
}

/* The server's end sees the relay's source port; the stand-in apps seed their data streams with
 * the client's port, so the relay connects from the client's port on another loopback address
 * (127.0.0.2; any 127/8 address is local), or from any port if that fails. */
static int connect_server(const char *host, int port, int cfd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	if (getpeername(cfd, (struct sockaddr *)&peer, &plen) == 0 && peer.sin_family == AF_INET) {
		struct sockaddr_in src = { .sin_family = AF_INET,
					   .sin_port = peer.sin_port,
					   .sin_addr.s_addr = htonl(0x7f000002) };
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
			fprintf(stderr,
				"relay: cannot bind 127.0.0.2:%u (%s): the server sees"
				" another client port\n",
				ntohs(peer.sin_port), strerror(errno));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void relay_conn(int idx, int cfd, int sfd, bool fault_s2c)
{
	static struct dir dirs[2];
	struct dir *c2s = &dirs[0], *s2c = &dirs[1];
	*c2s = (struct dir){ .src = cfd, .dst = sfd, .name = "c2s" };
	*s2c = (struct dir){ .src = sfd, .dst = cfd, .name = "s2c" };
	if (idx == 0 && fault != F_NONE)
		(fault_s2c ? s2c : c2s)->faulty = true;
	if (dump_prefix) {
		char path[4096];
		for (int i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "%s.%d.%s", dump_prefix, idx, dirs[i].name);
			if (!(dump[i] = fopen(path, "w")))
				die(path);
		}
	}
	enum verdict v = GO_ON;
	while (v == GO_ON && !(c2s->eof && s2c->eof)) {
		struct pollfd p[2] = { { .fd = c2s->eof ? -1 : cfd, .events = POLLIN },
				       { .fd = s2c->eof ? -1 : sfd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("poll");
		}
		for (int i = 0; i < 2 && v == GO_ON; i++) {
			struct dir *d = &dirs[i];
			if (!p[i].revents)
				continue;
			ssize_t n = recv(d->src, d->buf + d->have, BUFCAP - d->have, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				v = CLOSE; /* reset by the endpoint: end both */
				break;
			}
			if (n == 0) {
				d->eof = true;
			} else {
				if (dump[i])
					fwrite(d->buf + d->have, 1, (size_t)n, dump[i]);
				d->have += (size_t)n;
				d->bytes += (unsigned long long)n;
			}
			v = forward(d);
			if (v == GO_ON && d->eof)
				shutdown(d->dst, SHUT_WR);
		}
	}
	if (v == RESET) {
		reset_close(cfd);
		reset_close(sfd);
	} else {
		close(cfd);
		close(sfd);
	}
	for (int i = 0; i < 2; i++)
		if (dump[i]) {
			fclose(dump[i]);
			dump[i] = NULL;
		}
	printf("DONE conn=%d c2s=%llu s2c=%llu\n", idx, c2s->bytes, s2c->bytes);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: relay --port SERVER_PORT [--host ADDR] [--fault none|flip|truncate|"
		"oversize|alert|keyupdate|reset|stall|gap] [--dir s2c|c2s] [--after N] [--stall MS]"
		" [--settle MS] [--oversize-len N] [--connections N] [--dump PREFIX]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 0, connections = 1;
	bool fault_s2c = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--port"))
			port = atoi(v);
		else if (!strcmp(a, "--host"))
			host = v;
		else if (!strcmp(a, "--after"))
			after = (unsigned)atoi(v);
		else if (!strcmp(a, "--oversize-len"))
			oversize_len = (unsigned)atoi(v) & 0xffff;
		else if (!strcmp(a, "--settle"))
			settle_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--stall"))
			stall_ms = (unsigned)atoi(v);
		else if (!strcmp(a, "--dump"))
			dump_prefix = v;
		else if (!strcmp(a, "--connections"))
			connections = atoi(v);
		else if (!strcmp(a, "--dir") && (!strcmp(v, "s2c") || !strcmp(v, "c2s")))
			fault_s2c = !strcmp(v, "s2c");
		else if (!strcmp(a, "--fault")) {
			size_t f;
			for (f = 0; f < sizeof(fault_names) / sizeof(fault_names[0]); f++)
				if (!strcmp(v, fault_names[f]))
					break;
			if (f == sizeof(fault_names) / sizeof(fault_names[0]))
				usage();
			fault = (enum fault)f;
		} else
			usage();
	}
	if (port <= 0 || port > 65535 || connections < 1)
		usage();
	signal(SIGPIPE, SIG_IGN);

	struct sockaddr_in sa = { .sin_family = AF_INET };
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		usage();
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0)
		die("listen");
	socklen_t len = sizeof(sa);
	if (getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		die("getsockname");
	printf("PORT %u\n", ntohs(sa.sin_port));
	fflush(stdout);

	for (int i = 0; i < connections; i++) {
		int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			die("accept");
		}
		int one = 1;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		int sfd = connect_server(host, port, cfd);
		if (sfd < 0)
			die("connect to the server");
		relay_conn(i, cfd, sfd, fault_s2c);
	}
	close(lfd);
	return 0;
}
