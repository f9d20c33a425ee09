/* SPDX-License-Identifier: Apache-2.0 */
/* lifecycle: an ordinary Mbed TLS 3.6 or 2.28 program (public API, mbedtls_net_* sockets) that
 * treats its contexts the way careless daemons do, with both ends of every connection in this one
 * process. tests/lifecycle.bats runs each case without and with the shim preloaded and compares
 * the printed lines: an app must see exactly what plain Mbed TLS gives it.
 *
 * usage: lifecycle CERTDIR CASE [N]
 * Cases: fd-closed, fd-reused, set-bio-dup, set-bio-other, fd-reconnect, mode-change,
 * partial-read, write-contract (each for TLS 1.3 and 1.2, the abuse on the client end and then on
 * the server end), nested (TLS inside TLS, both versions), ticket, reset [N], free-thread [N],
 * fork-child, fork-parent, fork-alternate, fork-threads [N]; versions (the TLS versions it runs).
 * LIFECYCLE_BIO=sync (or sync-rw, sync-iov, sync-msg: tests/apps/bio.h) gives every TCP end the
 * app's own BIO callbacks instead of mbedtls_net_*, without a read timeout (mode-change then
 * also reads against the socket's own SO_RCVTIMEO).
 * Built against 2.28 (no TLS 1.3) it runs the TLS 1.2 half of each case, the cases that use one
 * connection run it with TLS 1.2, and ticket (TLS 1.3 only) fails.
 * Output: one line per step ("STEP: ok", "STEP: -0x0045", "STEP: eof", "STEP: 17 bytes"), then
 * "PASS CASE" (exit 0), or "FAIL ..." (exit 1), or "HANG in STEP" (exit 3, from a watchdog). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/debug.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#include "../apps/bio.h"

#define WATCHDOG_S 60

#if MBEDTLS_VERSION_MAJOR >= 3
#define HAVE_TLS13		 true
#define parse_keyfile(key, path) mbedtls_pk_parse_keyfile(key, path, NULL, rng, NULL)
/* Exactly one version offered: TLS 1.3 or TLS 1.2. */
static void conf_version(mbedtls_ssl_config *conf, bool tls13)
{
	mbedtls_ssl_protocol_version v =
		tls13 ? MBEDTLS_SSL_VERSION_TLS1_3 : MBEDTLS_SSL_VERSION_TLS1_2;
	mbedtls_ssl_conf_min_tls_version(conf, v);
	mbedtls_ssl_conf_max_tls_version(conf, v);
}
#else /* 2.28: TLS 1.2 is the newest version; its key parser takes no RNG */
#define HAVE_TLS13		 false
#define parse_keyfile(key, path) mbedtls_pk_parse_keyfile(key, path, NULL)
static void conf_version(mbedtls_ssl_config *conf, bool tls13)
{
	(void)tls13; /* offer_named never asks for TLS 1.3 here */
	mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
				     MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3,
				     MBEDTLS_SSL_MINOR_VERSION_3);
}
#endif

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_ssl_config cconf, sconf;
static mbedtls_x509_crt ca, srv_crt[2];
static mbedtls_pk_context srv_key[2];
static mbedtls_net_context listener;
static char port[16];
static atomic_int failures;
static enum bio_mode bio_mode; /* LIFECYCLE_BIO: every TCP end's callbacks (net by default) */

/* Where the program is, for the watchdog's message (a step that never returns is a hang). */
static _Atomic(const char *) current_step = "start";

static void on_alarm(int sig)
{
	(void)sig;
	char msg[200];
	int n = snprintf(msg, sizeof(msg), "HANG in %s\n", current_step);
	if (write(STDOUT_FILENO, msg, (size_t)n) < 0)
		_exit(4);
	_exit(3);
}

static void die(const char *what, int ret)
{
	char text[120];
	mbedtls_strerror(ret, text, sizeof(text));
	printf("FAIL %s: -0x%04x %s\n", what, (unsigned)-ret, text);
	exit(1);
}

static void fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("FAIL ", stdout);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	failures++;
}

static int rng(void *p, unsigned char *out, size_t len)
{
	(void)p;
	return mbedtls_ctr_drbg_random(&drbg, out, len);
}

/* A result as the tests compare it: "ok", "eof", "N bytes" or the Mbed TLS code. */
static const char *res(int ret, char buf[32])
{
	if (ret == 0)
		return "ok";
	if (ret > 0)
		snprintf(buf, 32, "%d bytes", ret);
	else
		snprintf(buf, 32, "-0x%04x", (unsigned)-ret);
	return buf;
}

static void step(const char *name, int ret)
{
	char b[32];
	printf("%s: %s\n", name, res(ret, b));
}

/* A read's result: 0 is the end of the stream. */
static void step_read(const char *name, int ret)
{
	if (ret == 0)
		printf("%s: eof\n", name);
	else
		step(name, ret);
}

/* ---- setup ---------------------------------------------------------------------------------- */

static void load(const char *dir, const char *name, mbedtls_x509_crt *crt, mbedtls_pk_context *key)
{
	char path[4096];
	int ret;
	snprintf(path, sizeof(path), "%s/%s.crt", dir, name);
	if ((ret = mbedtls_x509_crt_parse_file(crt, path)))
		die(path, ret);
	if (!key)
		return;
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	if ((ret = parse_keyfile(key, path)))
		die(path, ret);
	if ((ret = mbedtls_ssl_conf_own_cert(&sconf, crt, key)))
		die("conf_own_cert", ret);
}

static void setup(const char *certs)
{
	int ret;
	signal(SIGPIPE, SIG_IGN); /* a write to a peer that closed is an error, not a death */
	if (psa_crypto_init() != PSA_SUCCESS)
		die("psa_crypto_init", -1);
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0)))
		die("ctr_drbg_seed", ret);
	mbedtls_x509_crt_init(&ca);
	load(certs, "ca", &ca, NULL);
	mbedtls_ssl_config *confs[2] = { &cconf, &sconf };
	for (int i = 0; i < 2; i++) {
		mbedtls_ssl_config_init(confs[i]);
		if ((ret = mbedtls_ssl_config_defaults(
			     confs[i], i ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
			     MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)))
			die("config_defaults", ret);
		mbedtls_ssl_conf_rng(confs[i], rng, NULL);
		mbedtls_ssl_conf_ca_chain(confs[i], &ca, NULL);
	}
	mbedtls_ssl_conf_authmode(&cconf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_authmode(&sconf, MBEDTLS_SSL_VERIFY_NONE);
	/* Both kinds of server key, so ECDHE-RSA and ECDHE-ECDSA suites both work. */
	for (int i = 0; i < 2; i++) {
		mbedtls_x509_crt_init(&srv_crt[i]);
		mbedtls_pk_init(&srv_key[i]);
		load(certs, i ? "server-ec" : "server-rsa", &srv_crt[i], &srv_key[i]);
	}
	mbedtls_net_init(&listener);
	if ((ret = mbedtls_net_bind(&listener, "127.0.0.1", "0", MBEDTLS_NET_PROTO_TCP)))
		die("net_bind", ret);
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	if (getsockname(listener.fd, (struct sockaddr *)&sa, &len))
		die("getsockname", -1);
	snprintf(port, sizeof(port), "%u", ntohs(sa.sin_port));
}

/* The client's offer: one version and one suite (the server accepts its defaults). */
struct offer {
	const char *name;
	bool tls13;
	int suite[2];
};

static void offer_apply(const struct offer *o)
{
	conf_version(&cconf, o->tls13);
	mbedtls_ssl_conf_ciphersuites(&cconf, o->suite);
}

static struct offer offer_named(const char *version, const char *suite)
{
	struct offer o = { .name = suite };
	o.tls13 = strcmp(version, "1.2");
	if (o.tls13 && !HAVE_TLS13)
		die("TLS 1.3 (this Mbed TLS has none)", -1);
	o.suite[0] = mbedtls_ssl_get_ciphersuite_id(suite);
	if (!o.suite[0])
		die(suite, -1);
	return o;
}

/* Whether this Mbed TLS has VERSION ("1.3" or "1.2"). */
static bool runs(const char *version)
{
	return HAVE_TLS13 || !strcmp(version, "1.2");
}

/* The newest version this Mbed TLS has, for the cases that use one connection. */
static struct offer offer_newest(void)
{
	return HAVE_TLS13 ? offer_named("1.3", "TLS1-3-AES-128-GCM-SHA256")
			  : offer_named("1.2", "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256");
}

/* ---- one connection, both ends ---------------------------------------------------------------- */

struct end {
	mbedtls_ssl_context ssl;
	mbedtls_net_context net;
	bool client;
};

struct pair {
	struct end c, s;
};

static void end_init(struct end *e, bool client)
{
	int ret;
	e->client = client;
	mbedtls_ssl_init(&e->ssl);
	mbedtls_net_init(&e->net);
	if ((ret = mbedtls_ssl_setup(&e->ssl, client ? &cconf : &sconf)))
		die("ssl_setup", ret);
	if (client && (ret = mbedtls_ssl_set_hostname(&e->ssl, "localhost")))
		die("set_hostname", ret);
}

static void end_bio(struct end *e, mbedtls_net_context *net)
{
	bio_start(&e->ssl, net, bio_mode, 0); /* stateless modes only: nothing to end */
}

static void end_free(struct end *e)
{
	mbedtls_ssl_free(&e->ssl);
	mbedtls_net_free(&e->net);
}

/* A TCP connection to our own listener, in two steps (the kernel completes it in the backlog):
 * the client's socket, then the server's. */
/* Without TCP_NODELAY a handshake flight of several small writes waits for the peer's delayed
 * ACK (40 ms), and a thousand handshakes take minutes. */
static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void tcp_connect(mbedtls_net_context *cn)
{
	int ret = mbedtls_net_connect(cn, "127.0.0.1", port, MBEDTLS_NET_PROTO_TCP);
	if (ret)
		die("net_connect", ret);
	nodelay(cn->fd);
}

static void tcp_accept(mbedtls_net_context *sn)
{
	int ret = mbedtls_net_accept(&listener, sn, NULL, 0, NULL);
	if (ret)
		die("net_accept", ret);
	nodelay(sn->fd);
}

static void tcp_pair(mbedtls_net_context *cn, mbedtls_net_context *sn)
{
	tcp_connect(cn);
	tcp_accept(sn);
}

static bool want(int ret)
{
	return ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE;
}

/* Both handshakes in this thread, stepped in turn, waiting on the descriptors cfd and sfd (the
 * sockets under the two ends, non-blocking). */
static int step_handshakes(struct pair *p, int cfd, int sfd)
{
	current_step = "handshake";
	int rc = MBEDTLS_ERR_SSL_WANT_READ, rs = MBEDTLS_ERR_SSL_WANT_READ;
	while (want(rc) || want(rs)) {
		if (want(rc))
			rc = mbedtls_ssl_handshake(&p->c.ssl);
		if (want(rs))
			rs = mbedtls_ssl_handshake(&p->s.ssl);
		if (want(rc) || want(rs)) {
			/* Only the ends still waiting; a negative fd is ignored by poll. */
			struct pollfd pf[2] = { { .fd = want(rc) ? cfd : -1, .events = POLLIN },
						{ .fd = want(rs) ? sfd : -1, .events = POLLIN } };
			poll(pf, 2, 50);
		}
	}
	return rc ? rc : rs;
}

/* Both handshakes in this thread: non-blocking sockets, stepped in turn; blocking again after. */
static int handshake(struct pair *p)
{
	mbedtls_net_set_nonblock(&p->c.net);
	mbedtls_net_set_nonblock(&p->s.net);
	int ret = step_handshakes(p, p->c.net.fd, p->s.net.fd);
	mbedtls_net_set_block(&p->c.net);
	mbedtls_net_set_block(&p->s.net);
	return ret;
}

static void pair_open(struct pair *p)
{
	end_init(&p->c, true);
	end_init(&p->s, false);
	tcp_pair(&p->c.net, &p->s.net);
	end_bio(&p->c, &p->c.net);
	end_bio(&p->s, &p->s.net);
	int ret = handshake(p);
	if (ret)
		die("handshake", ret);
}

static void pattern(unsigned char *buf, size_t n, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

static int write_all(struct end *e, const unsigned char *buf, size_t n)
{
	for (size_t off = 0; off < n;) {
		int ret = mbedtls_ssl_write(&e->ssl, buf + off, n - off);
		if (want(ret))
			continue;
		if (ret < 0)
			return ret;
		off += (size_t)ret;
	}
	return 0;
}

/* Exactly n bytes, or the error / "eof" (0) that stopped it; *got says how far it came. */
static int read_exact(struct end *e, unsigned char *buf, size_t n, size_t *got)
{
	for (*got = 0; *got < n;) {
		int ret = mbedtls_ssl_read(&e->ssl, buf + *got, n - *got);
		if (want(ret))
			continue;
		if (ret <= 0)
			return ret;
		*got += (size_t)ret;
	}
	return (int)n;
}

/* n pattern bytes from one end to the other, checked: 0, or the error of the write or read. */
static int send_checked(struct end *from, struct end *to, size_t n, uint32_t seed)
{
	static _Thread_local unsigned char out[65536], in[65536];
	if (n > sizeof(out))
		n = sizeof(out);
	pattern(out, n, seed);
	int ret = write_all(from, out, n);
	if (ret)
		return ret;
	size_t got;
	ret = read_exact(to, in, n, &got);
	if (ret != (int)n)
		return ret == 0 ? MBEDTLS_ERR_SSL_CONN_EOF : ret;
	if (memcmp(in, out, n)) {
		fail("%zu bytes arrived changed", n);
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	}
	return 0;
}

/* Request and answer, as the tests' "exchange": the first error, or 0. */
static int exchange(struct pair *p, size_t n, uint32_t seed)
{
	current_step = "exchange";
	int ret = send_checked(&p->c, &p->s, n, seed);
	return ret ? ret : send_checked(&p->s, &p->c, n, seed + 1);
}

/* close_notify from one end, read by the other, answered, read back. */
static int shutdown_pair(struct end *first, struct end *second)
{
	unsigned char b[64];
	current_step = "shutdown";
	int ret = mbedtls_ssl_close_notify(&first->ssl);
	if (ret)
		return ret;
	ret = mbedtls_ssl_read(&second->ssl, b, sizeof(b));
	if (ret != MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY)
		return ret == 0 ? MBEDTLS_ERR_SSL_CONN_EOF : ret;
	ret = mbedtls_ssl_close_notify(&second->ssl);
	if (ret)
		return ret;
	ret = mbedtls_ssl_read(&first->ssl, b, sizeof(b));
	return ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == 0 ? 0 : ret;
}

/* Whether bytes wait in a socket (nothing should, after a clean exchange). */
static int socket_pending(int fd)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	return poll(&pf, 1, 100) > 0 && (pf.revents & POLLIN);
}

/* ---- cases: the abuse is done to one end ("abused"), the other end ("peer") is well behaved --- */

static const char *const combos[][2] = {
	{ "1.3", "TLS1-3-AES-128-GCM-SHA256" },
	{ "1.2", "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256" },
};

typedef void (*abuse_fn)(struct pair *p, struct end *abused, struct end *peer);

/* What an app gets from a context whose socket is gone: one write, one read, close_notify. */
static void use_dead(struct end *e)
{
	unsigned char b[64] = "must not be sent anywhere";
	current_step = "write on the dead context";
	step("  write", mbedtls_ssl_write(&e->ssl, b, 25));
	current_step = "read on the dead context";
	step_read("  read", mbedtls_ssl_read(&e->ssl, b, sizeof(b)));
	current_step = "close_notify on the dead context";
	step("  close_notify", mbedtls_ssl_close_notify(&e->ssl));
}

/* The app frees its socket (mbedtls_net_free: closed, fd -1) and goes on with the context. */
static void abuse_fd_closed(struct pair *p, struct end *abused, struct end *peer)
{
	(void)p;
	mbedtls_net_free(&abused->net);
	use_dead(abused);
	/* The peer sees the connection end: EOF, as after any close without close_notify. */
	unsigned char b[64];
	current_step = "peer read";
	step_read("  peer read", mbedtls_ssl_read(&peer->ssl, b, sizeof(b)));
}

/* As fd-closed, and a new connection takes the same fd number before the old context is used:
 * nothing may reach or be taken from the new connection. */
static void abuse_fd_reused(struct pair *p, struct end *abused, struct end *peer)
{
	(void)p;
	int old_fd = abused->net.fd;
	struct pair q;
	end_init(&q.c, true);
	end_init(&q.s, false);
	/* The new connection's end of the same role gets the lowest free number: the old one. */
	if (abused->client) {
		mbedtls_net_free(&abused->net);
		tcp_pair(&q.c.net, &q.s.net);
	} else {
		tcp_connect(&q.c.net);
		mbedtls_net_free(&abused->net);
		tcp_accept(&q.s.net);
	}
	struct end *twin = abused->client ? &q.c : &q.s;
	printf("  fd reused: %s\n", twin->net.fd == old_fd ? "yes" : "no");
	if (twin->net.fd != old_fd)
		fail("the new connection did not get fd %d", old_fd);
	end_bio(&q.c, &q.c.net);
	end_bio(&q.s, &q.s.net);
	int ret = handshake(&q);
	step("  new connection handshake", ret);
	step("  new connection exchange", ret ? ret : exchange(&q, 1000, 7));
	use_dead(abused);
	/* The new connection carries on, byte-exact, and holds nothing extra. */
	step("  new connection exchange after", exchange(&q, 20000, 8));
	printf("  new connection: stray bytes: %s, %s\n",
	       socket_pending(q.c.net.fd) ? "client" : "none",
	       socket_pending(q.s.net.fd) ? "server" : "none");
	step("  new connection shutdown", shutdown_pair(&q.c, &q.s));
	end_free(&q.c);
	end_free(&q.s);
	unsigned char b[64];
	current_step = "peer read";
	step_read("  peer read", mbedtls_ssl_read(&peer->ssl, b, sizeof(b)));
}

/* The app moves the connection to another descriptor of the same socket (dup), closes the old
 * one (close, not mbedtls_net_free, whose shutdown would end the socket itself), and goes on:
 * the TLS stream is the same. */
static void abuse_set_bio_dup(struct pair *p, struct end *abused, struct end *peer)
{
	(void)peer;
	mbedtls_net_context *moved = malloc(sizeof(*moved));
	mbedtls_net_init(moved);
	moved->fd = dup(abused->net.fd);
	end_bio(abused, moved);
	close(abused->net.fd);
	abused->net.fd = -1;
	step("  exchange on the dup", exchange(p, 30000, 11));
	step("  shutdown", shutdown_pair(&p->c, &p->s));
	abused->net = *moved; /* end_free closes it */
	free(moved);
}

/* The app moves the connection to a different TCP connection, and so does the peer (both close
 * the old sockets, the abused end first): plain Mbed TLS just writes the next records into the
 * new socket. */
static void abuse_set_bio_other(struct pair *p, struct end *abused, struct end *peer)
{
	mbedtls_net_context an, pn;
	mbedtls_net_init(&an);
	mbedtls_net_init(&pn);
	if (abused->client)
		tcp_pair(&an, &pn);
	else
		tcp_pair(&pn, &an);
	mbedtls_net_free(&abused->net);
	abused->net = an;
	end_bio(abused, &abused->net);
	mbedtls_net_free(&peer->net);
	peer->net = pn;
	end_bio(peer, &peer->net);
	step("  exchange on the new socket", exchange(p, 30000, 13));
	step("  shutdown", shutdown_pair(&p->c, &p->s));
}

/* ---- the kernel I/O path: what an app may do to an offloaded connection ------------------- */

/* A plain TCP listener on 127.0.0.1 (not TLS): its port, and its descriptor in *fd. */
static void plain_listener(mbedtls_net_context *l, char out_port[16])
{
	mbedtls_net_init(l);
	int ret = mbedtls_net_bind(l, "127.0.0.1", "0", MBEDTLS_NET_PROTO_TCP);
	if (ret)
		die("net_bind", ret);
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	if (getsockname(l->fd, (struct sockaddr *)&sa, &len))
		die("getsockname", -1);
	snprintf(out_port, 16, "%u", ntohs(sa.sin_port));
}

/* The app frees its socket and connects the SAME mbedtls_net_context to another server (a plain
 * TCP one): the number comes back. Nothing of the old connection may reach the new one in clear,
 * and nothing the new one sends may be taken for data of the old one. */
static void abuse_fd_reconnect(struct pair *p, struct end *abused, struct end *peer)
{
	(void)p;
	mbedtls_net_context l, other;
	char lport[16];
	plain_listener(&l, lport);
	int old_fd = abused->net.fd;
	mbedtls_net_free(&abused->net);
	int ret = mbedtls_net_connect(&abused->net, "127.0.0.1", lport, MBEDTLS_NET_PROTO_TCP);
	if (ret)
		die("net_connect", ret);
	if ((ret = mbedtls_net_accept(&l, &other, NULL, 0, NULL)))
		die("net_accept", ret);
	printf("  fd reused: %s\n", abused->net.fd == old_fd ? "yes" : "no");
	static const char secret[] = "SECRET-PLAINTEXT";
	current_step = "write on the new socket";
	step("  write", mbedtls_ssl_write(&abused->ssl, (const unsigned char *)secret, 16));
	unsigned char got[256];
	int n = socket_pending(other.fd) ? (int)recv(other.fd, got, sizeof(got), 0) : 0;
	printf("  plaintext on the new connection: %s\n",
	       n > 0 && memmem(got, (size_t)n, secret, 16) ? "yes" : "no");
	static const char inject[] = "INJECTED-CLEARTEXT";
	if (send(other.fd, inject, 18, 0) != 18)
		die("send", -1);
	current_step = "read on the new socket";
	n = mbedtls_ssl_read(&abused->ssl, got, sizeof(got));
	step_read("  read", n);
	printf("  cleartext taken as data: %s\n",
	       n > 0 && memmem(got, (size_t)n, "INJECTED", 8) ? "yes" : "no");
	mbedtls_net_free(&other);
	mbedtls_net_free(&l);
	current_step = "peer read";
	step_read("  peer read", mbedtls_ssl_read(&peer->ssl, got, sizeof(got)));
}

/* The peer sends after a delay, from another thread. */
struct delayed {
	struct end *from;
	int delay_ms;
	pthread_t t;
};

static void *delayed_send(void *arg)
{
	struct delayed *d = arg;
	usleep((useconds_t)d->delay_ms * 1000);
	write_all(d->from, (const unsigned char *)"nine byte", 9);
	return NULL;
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* One read with the app's recv_timeout callback while the peer sends 9 bytes 500 ms later. */
static void read_delayed(struct end *abused, struct end *peer, const char *name)
{
	struct delayed d = { .from = peer, .delay_ms = 500 };
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pthread_create(&d.t, NULL, delayed_send, &d);
	unsigned char b[64];
	int ret = mbedtls_ssl_read(&abused->ssl, b, sizeof(b)); /* Mbed TLS waits in select */
	long ms = ms_since(&t0);
	pthread_join(d.t, NULL);
	step_read(name, ret);
	printf("  waited for the data: %s\n", ms >= 400 ? "yes" : "no");
}

static void *server_handshake(void *arg)
{
	struct end *s = arg;
	return (void *)(intptr_t)mbedtls_ssl_handshake(&s->ssl);
}

/* pair_open for apps whose BIO waits with a read timeout (mbedtls_net_recv_timeout, 3 s), or
 * in the socket with LIFECYCLE_BIO: blocking sockets, the server's handshake on a thread; the hand-off is at its end. */
static void pair_open_timeout(struct pair *p)
{
	end_init(&p->c, true);
	end_init(&p->s, false);
	tcp_pair(&p->c.net, &p->s.net);
	mbedtls_ssl_conf_read_timeout(&cconf, 3000);
	mbedtls_ssl_conf_read_timeout(&sconf, 3000);
	/* An app's own BIO waits in the socket instead (a timeout of its own stays in Mbed TLS). */
	uint32_t timeout = bio_mode == BIO_NET ? 3000 : 0;
	bio_start(&p->c.ssl, &p->c.net, bio_mode, timeout);
	bio_start(&p->s.ssl, &p->s.net, bio_mode, timeout);
	current_step = "handshake";
	pthread_t t;
	void *rs;
	pthread_create(&t, NULL, server_handshake, &p->s);
	int rc = mbedtls_ssl_handshake(&p->c.ssl);
	pthread_join(t, &rs);
	if (rc || rs)
		die("handshake", rc ? rc : (int)(intptr_t)rs);
}

/* An app's own BIO on a blocking socket with a short SO_RCVTIMEO and nothing to read: its recv
 * gives up when the socket's timeout expires (EAGAIN: WANT_READ), and so must the shim's. */
static void read_rcvtimeo(struct end *e)
{
	struct timeval short_wait = { .tv_usec = 300000 }, mine = { .tv_sec = 7 };
	setsockopt(e->net.fd, SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof(short_wait));
	current_step = "read, SO_RCVTIMEO 300 ms";
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned char b[64];
	int ret = mbedtls_ssl_read(&e->ssl, b, sizeof(b));
	long ms = ms_since(&t0);
	step_read("  read, SO_RCVTIMEO 300 ms", ret);
	printf("  returned after the socket's timeout: %s\n",
	       ms >= 250 && ms < 3000 ? "yes" : "no");
	setsockopt(e->net.fd, SOL_SOCKET, SO_RCVTIMEO, &mine, sizeof(mine));
}

/* The app's BIO waits with the config's read timeout (mbedtls_net_recv_timeout), or, with its
 * own callbacks, in the socket; after the hand-off it sets its own SO_RCVTIMEO (with its own
 * callbacks also a short one), and later makes the socket non-blocking. */
static void abuse_mode_change(struct pair *p, struct end *abused, struct end *peer)
{
	(void)p;
	struct timeval mine = { .tv_sec = 7 }, now;
	socklen_t l = sizeof(now);
	setsockopt(abused->net.fd, SOL_SOCKET, SO_RCVTIMEO, &mine, sizeof(mine));
	current_step = "read, blocking socket";
	read_delayed(abused, peer, "  read, blocking");
	getsockopt(abused->net.fd, SOL_SOCKET, SO_RCVTIMEO, &now, &l);
	printf("  the app's SO_RCVTIMEO kept: %s\n", now.tv_sec == 7 ? "yes" : "no");
	if (bio_mode != BIO_NET)
		read_rcvtimeo(abused);
	mbedtls_net_set_nonblock(&abused->net);
	current_step = "read, non-blocking socket";
	read_delayed(abused, peer, "  read, non-blocking");
	mbedtls_net_set_block(&abused->net);
}

/* Edge-triggered event loops: after part of a record, what is left is announced. */
static void abuse_partial_read(struct pair *p, struct end *abused, struct end *peer)
{
	(void)p;
	unsigned char out[1000], in[1000];
	pattern(out, sizeof(out), 21);
	current_step = "partial read";
	step("  peer write", write_all(peer, out, sizeof(out)));
	size_t got;
	step("  read 100", read_exact(abused, in, 100, &got));
	printf("  bytes_avail: %zu, check_pending: %d\n", mbedtls_ssl_get_bytes_avail(&abused->ssl),
	       mbedtls_ssl_check_pending(&abused->ssl));
	int ret = mbedtls_ssl_read(&abused->ssl, in + 100, sizeof(in) - 100);
	step("  read the rest", ret);
	printf("  bytes_avail: %zu, check_pending: %d\n", mbedtls_ssl_get_bytes_avail(&abused->ssl),
	       mbedtls_ssl_check_pending(&abused->ssl));
	printf("  bytes intact: %s\n", ret == 900 && !memcmp(in, out, sizeof(out)) ? "yes" : "no");
	step("  exchange after", exchange(p, 3000, 22));
}

/* Mbed TLS's write contract: a zero-length write, then a write of more than a record. */
static void abuse_write_contract(struct pair *p, struct end *abused, struct end *peer)
{
	static unsigned char big[40000];
	unsigned char b[64];
	current_step = "zero-length write";
	step("  zero-length write", mbedtls_ssl_write(&abused->ssl, b, 0));
	step("  write after it",
	     mbedtls_ssl_write(&abused->ssl, (const unsigned char *)"after", 5));
	current_step = "peer read";
	step_read("  peer read", mbedtls_ssl_read(&peer->ssl, b, sizeof(b)));
	pattern(big, sizeof(big), 31);
	current_step = "large write";
	int ret = mbedtls_ssl_write(&abused->ssl, big, sizeof(big));
	step("  large write", ret);
	size_t got, sent = ret > 0 ? (size_t)ret : 0;
	step("  write the rest", write_all(abused, big + sent, sizeof(big) - sent));
	static unsigned char in[sizeof(big)];
	step("  peer read all", read_exact(peer, in, sizeof(in), &got));
	printf("  bytes intact: %s\n", !memcmp(in, big, sizeof(big)) ? "yes" : "no");
	step("  exchange after", exchange(p, 3000, 32));
}

static void run_abuse(const char *name, abuse_fn fn)
{
	for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
		for (int client = 1; client >= 0 && runs(combos[i][0]); client--) {
			struct offer o = offer_named(combos[i][0], combos[i][1]);
			offer_apply(&o);
			printf("%s TLS %s, abused end: %s\n", name, combos[i][0],
			       client ? "client" : "server");
			alarm(30);
			struct pair p;
			if (fn == abuse_mode_change)
				pair_open_timeout(&p);
			else
				pair_open(&p);
			step("  exchange before", exchange(&p, 5000, 1));
			fn(&p, client ? &p.c : &p.s, client ? &p.s : &p.c);
			current_step = "free";
			end_free(&p.c);
			end_free(&p.s);
		}
	}
}

/* ---- ticket: a TLS 1.3 ticket the client did not ask for, after the hand-off --------------- */

static atomic_int ticket_said; /* debug lines that say a NewSessionTicket was ignored */

static void debug_line(void *p, int level, const char *file, int line, const char *msg)
{
	(void)p, (void)file, (void)line;
	if (level == 3 && strstr(msg, "NewSessionTicket") && strstr(msg, "gnor"))
		ticket_said++;
}

/* Mbed TLS ignores it (ticket signalling is off by default) and says so at debug level 3. */
static void case_ticket(void)
{
	mbedtls_ssl_ticket_context tickets;
	mbedtls_ssl_ticket_init(&tickets);
	int ret = mbedtls_ssl_ticket_setup(&tickets, rng, NULL, MBEDTLS_CIPHER_AES_256_GCM, 86400);
	if (ret)
		die("ticket_setup", ret);
	mbedtls_ssl_conf_session_tickets_cb(&sconf, mbedtls_ssl_ticket_write,
					    mbedtls_ssl_ticket_parse, &tickets);
	mbedtls_ssl_conf_dbg(&cconf, debug_line, NULL);
	mbedtls_debug_set_threshold(3);
	const struct offer o = offer_named("1.3", "TLS1-3-AES-128-GCM-SHA256");
	offer_apply(&o);
	struct pair p;
	pair_open(&p);
	step("exchange", exchange(&p, 5000, 51));
	mbedtls_debug_set_threshold(0);
	printf("ticket ignored, said to the debug callback: %s\n", ticket_said > 0 ? "yes" : "no");
	step("shutdown", shutdown_pair(&p.c, &p.s));
	end_free(&p.c);
	end_free(&p.s);
	mbedtls_ssl_ticket_free(&tickets);
}

/* ---- nested: TLS inside TLS, the inner connection's BIO is the outer (offloaded) one ------ */

static int inner_send(void *ctx, const unsigned char *buf, size_t len)
{
	return mbedtls_ssl_write(ctx, buf, len);
}

static int inner_recv(void *ctx, unsigned char *buf, size_t len)
{
	return mbedtls_ssl_read(ctx, buf, len);
}

static void case_nested(void)
{
	for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
		if (!runs(combos[i][0]))
			continue;
		struct offer o = offer_named(combos[i][0], combos[i][1]);
		offer_apply(&o);
		printf("nested TLS %s\n", combos[i][0]);
		alarm(30);
		struct pair outer, inner;
		pair_open(&outer);
		step("  outer exchange before", exchange(&outer, 5000, 41));
		mbedtls_net_set_nonblock(&outer.c.net);
		mbedtls_net_set_nonblock(&outer.s.net);
		end_init(&inner.c, true);
		end_init(&inner.s, false);
		mbedtls_ssl_set_bio(&inner.c.ssl, &outer.c.ssl, inner_send, inner_recv, NULL);
		mbedtls_ssl_set_bio(&inner.s.ssl, &outer.s.ssl, inner_send, inner_recv, NULL);
		int ret = step_handshakes(&inner, outer.c.net.fd, outer.s.net.fd);
		step("  inner handshake", ret);
		if (!ret) {
			step("  inner exchange", exchange(&inner, 20000, 42));
			step("  inner shutdown", shutdown_pair(&inner.c, &inner.s));
		}
		mbedtls_ssl_free(&inner.c.ssl);
		mbedtls_ssl_free(&inner.s.ssl);
		mbedtls_net_set_block(&outer.c.net);
		mbedtls_net_set_block(&outer.s.net);
		step("  outer exchange after", exchange(&outer, 5000, 43));
		step("  outer shutdown", shutdown_pair(&outer.c, &outer.s));
		end_free(&outer.c);
		end_free(&outer.s);
	}
}

/* ---- reset: one context per end, mbedtls_ssl_session_reset between N connections ---------- */

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static const char *const mix[][2] = {
	{ "1.3", "TLS1-3-AES-128-GCM-SHA256" },
	{ "1.2", "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256" },
	{ "1.3", "TLS1-3-AES-256-GCM-SHA384" },
	{ "1.2", "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384" },
	{ "1.3", "TLS1-3-CHACHA20-POLY1305-SHA256" },
	{ "1.2", "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256" },
	{ "1.3", "TLS1-3-AES-128-CCM-SHA256" },
	{ "1.2", "TLS-ECDHE-ECDSA-WITH-AES-128-CCM" },
	/* Suites the kernel cannot carry: these connections stay in Mbed TLS. */
	{ "1.3", "TLS1-3-AES-128-CCM-8-SHA256" },
	{ "1.2", "TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256" },
};
#define MIX_N (sizeof(mix) / sizeof(mix[0]))

static void case_reset(int n)
{
	struct pair p;
	end_init(&p.c, true);
	end_init(&p.s, false);
	/* Every other connection the app calls set_bio again; the others reuse the net contexts that
	 * set_bio got once (connect/accept refill them), as many servers do. */
	end_bio(&p.c, &p.c.net);
	end_bio(&p.s, &p.s.net);
	/* The mix's entries this Mbed TLS has (2.28: the TLS 1.2 half, the same share for the kernel). */
	size_t use[MIX_N], m = 0;
	for (size_t k = 0; k < MIX_N; k++)
		if (runs(mix[k][0]))
			use[m++] = k;
	int per[MIX_N] = { 0 };
	long rss_warm = 0;
	int warm = n / 10;
	for (int i = 0; i < n; i++) {
		const size_t k = use[i % m];
		const struct offer o = offer_named(mix[k][0], mix[k][1]);
		offer_apply(&o);
		if (i > 0) {
			int r1 = mbedtls_ssl_session_reset(&p.c.ssl),
			    r2 = mbedtls_ssl_session_reset(&p.s.ssl);
			if (r1 || r2)
				die("session_reset", r1 ? r1 : r2);
		}
		tcp_pair(&p.c.net, &p.s.net);
		if (i % 2) {
			end_bio(&p.c, &p.c.net);
			end_bio(&p.s, &p.s.net);
		}
		int ret = handshake(&p);
		if (!ret)
			ret = exchange(&p, 1000 + (size_t)(i % 7) * 5000, (uint32_t)i);
		if (!ret)
			ret = shutdown_pair(i % 2 ? &p.s : &p.c, i % 2 ? &p.c : &p.s);
		if (ret) {
			char b[32];
			fail("connection %d (%s): %s", i, o.name, res(ret, b));
			break;
		}
		if (strcmp(mbedtls_ssl_get_ciphersuite(&p.c.ssl), o.name))
			fail("connection %d: suite %s, not %s", i,
			     mbedtls_ssl_get_ciphersuite(&p.c.ssl), o.name);
		per[k]++;
		mbedtls_net_free(&p.c.net);
		mbedtls_net_free(&p.s.net);
		if (i + 1 == warm)
			rss_warm = rss_kib();
	}
	for (size_t k = 0; k < MIX_N; k++)
		if (runs(mix[k][0]))
			printf("  %s %s: %d connections\n", mix[k][0], mix[k][1], per[k]);
	/* stderr: the figures differ from run to run, the compared output must not. */
	fprintf(stderr, "RSS reset: connections=%d warm=%ld KiB end=%ld KiB\n", n, rss_warm,
		rss_kib());
	end_free(&p.c);
	end_free(&p.s);
}

/* ---- free-thread: handshake on one thread, data on another, mbedtls_ssl_free on a third ---- */

struct job {
	struct pair p;
	int ret;
};

static void *data_thread(void *arg)
{
	struct job *j = arg;
	j->ret = exchange(&j->p, 20000, 5);
	if (!j->ret)
		j->ret = shutdown_pair(&j->p.c, &j->p.s);
	return NULL;
}

static void *free_thread(void *arg)
{
	struct job *j = arg;
	end_free(&j->p.c);
	end_free(&j->p.s);
	return NULL;
}

/* Each of W workers opens its own connection; then contexts change hands: worker k's are used
 * by a new thread and freed by the thread of worker k+1, while the others still run. */
#define FREE_WORKERS 8
static struct job *jobs[FREE_WORKERS];
static pthread_barrier_t free_barrier;

static void *free_worker(void *arg)
{
	int k = (int)(intptr_t)arg;
	pthread_t t;
	pthread_create(&t, NULL, data_thread, jobs[k]);
	pthread_join(t, NULL);
	pthread_barrier_wait(&free_barrier);
	free_thread(jobs[(k + 1) % FREE_WORKERS]);
	return NULL;
}

static pthread_mutex_t handshake_lock = PTHREAD_MUTEX_INITIALIZER;

static void *open_worker(void *arg)
{
	struct job *j = arg;
	/* One accept at a time on the shared listener, so the pairs match up. */
	pthread_mutex_lock(&handshake_lock);
	end_init(&j->p.c, true);
	end_init(&j->p.s, false);
	tcp_pair(&j->p.c.net, &j->p.s.net);
	pthread_mutex_unlock(&handshake_lock);
	end_bio(&j->p.c, &j->p.c.net);
	end_bio(&j->p.s, &j->p.s.net);
	j->ret = handshake(&j->p);
	return NULL;
}

static void case_free_thread(int rounds)
{
	/* Two versions in turn (2.28: two TLS 1.2 suites). */
	const struct offer o[2] = {
		HAVE_TLS13 ? offer_named("1.3", "TLS1-3-AES-256-GCM-SHA384")
			   : offer_named("1.2", "TLS-ECDHE-RSA-WITH-AES-256-GCM-SHA384"),
		offer_named("1.2", "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256")
	};
	int bad = 0;
	for (int r = 0; r < rounds; r++) {
		offer_apply(&o[r % 2]);
		pthread_t t[FREE_WORKERS];
		for (int k = 0; k < FREE_WORKERS; k++) {
			jobs[k] = calloc(1, sizeof(struct job));
			pthread_create(&t[k], NULL, open_worker, jobs[k]);
		}
		for (int k = 0; k < FREE_WORKERS; k++)
			pthread_join(t[k], NULL);
		for (int k = 0; k < FREE_WORKERS; k++)
			bad += jobs[k]->ret != 0;
		pthread_barrier_init(&free_barrier, NULL, FREE_WORKERS);
		for (int k = 0; k < FREE_WORKERS; k++)
			pthread_create(&t[k], NULL, free_worker, (void *)(intptr_t)k);
		for (int k = 0; k < FREE_WORKERS; k++)
			pthread_join(t[k], NULL);
		pthread_barrier_destroy(&free_barrier);
		for (int k = 0; k < FREE_WORKERS; k++) {
			bad += jobs[k]->ret != 0;
			free(jobs[k]);
		}
	}
	printf("free-thread: %d rounds of %d connections, failures: %d\n", rounds, FREE_WORKERS,
	       bad);
	if (bad)
		fail("%d connections failed", bad);
}

/* ---- fork ---------------------------------------------------------------------------------- */

/* The child's status, or 124 when it did not end within the watchdog's time. */
static int wait_child(pid_t pid)
{
	int st;
	for (int i = 0; i < WATCHDOG_S * 500; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(2000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return 124;
}

/* fork after the hand-off: WHO ("child", "parent" or "both") goes on with the client end, the
 * other process frees its copy of the contexts (mbedtls_ssl_free, mbedtls_net_free). With "both",
 * the parent and then the child and then the parent again exchange data. */
static void case_fork(const char *who)
{
	const struct offer o = offer_newest();
	offer_apply(&o);
	struct pair p;
	pair_open(&p);
	step("exchange before fork", exchange(&p, 5000, 1));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", -1);
	if (pid == 0) {
		/* The child owns the client end only when told; the server end is the parent's. */
		alarm(WATCHDOG_S);
		int ret = 0;
		if (!strcmp(who, "parent")) {
			/* close, not mbedtls_net_free: its shutdown would end the parent's socket too
			 * (with or without the shim). */
			mbedtls_ssl_free(&p.c.ssl);
			close(p.c.net.fd);
		} else {
			ret = write_all(&p.c, (const unsigned char *)"child says hi", 13);
			unsigned char b[64];
			size_t got;
			int r = ret ? ret : read_exact(&p.c, b, 13, &got);
			printf("child exchange: %s\n",
			       r == 13 && !memcmp(b, "child says hi", 13) ? "ok" : "failed");
			ret = r == 13 ? 0 : 1;
			if (!strcmp(who, "child"))
				step("child close_notify", mbedtls_ssl_close_notify(&p.c.ssl));
			mbedtls_ssl_free(
				&p.c.ssl); /* its copy; the parent's is still in use with "both" */
		}
		fflush(stdout);
		_exit(ret ? 1 : 0);
	}
	int echoed = 0;
	if (strcmp(who, "parent")) {
		/* The server end (this process) echoes the child's message. */
		unsigned char b[64];
		size_t got;
		echoed = read_exact(&p.s, b, 13, &got);
		if (echoed == 13)
			echoed = write_all(&p.s, b, 13);
	}
	/* Printed after the child's lines, so that the output's order is fixed. */
	int child = wait_child(pid);
	if (strcmp(who, "parent"))
		step("server echoed the child", echoed);
	printf("child exit: %d\n", child);
	if (!strcmp(who, "child")) {
		unsigned char b[64];
		step_read("server read after the child's close_notify",
			  mbedtls_ssl_read(&p.s.ssl, b, sizeof(b)));
		mbedtls_ssl_free(&p.c.ssl); /* the parent's copy of the child's end */
		mbedtls_net_free(&p.c.net);
	} else {
		/* "parent": the child has freed its copy; "both": the child used the connection. */
		step("parent exchange after the child", exchange(&p, 5000, 3));
		step("shutdown", shutdown_pair(&p.c, &p.s));
		end_free(&p.c);
	}
	end_free(&p.s);
}

/* fork while other threads keep calling Mbed TLS (lookups on a live context, and contexts
 * set up and freed): every child must be able to free its inherited contexts and set up a new
 * one, and exit. A lock the fork caught held would hang the child. */
static atomic_bool stop_hammer;

static void *hammer(void *arg)
{
	struct pair *p = arg;
	unsigned long n = 0;
	while (!atomic_load(&stop_hammer)) {
		if (n++ % 64 == 0) {
			struct end e;
			end_init(&e, n % 2);
			end_free(&e);
		}
		if (mbedtls_ssl_get_bytes_avail(&p->c.ssl) || mbedtls_ssl_check_pending(&p->s.ssl))
			fail("bytes available on an idle connection");
	}
	return NULL;
}

static void case_fork_threads(int forks)
{
	const struct offer o = offer_newest();
	offer_apply(&o);
	struct pair p;
	pair_open(&p);
	step("exchange before", exchange(&p, 5000, 1));
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, hammer, &p);
	int hung = 0, bad = 0;
	fflush(stdout);
	/* A few hung children prove the point; waiting for more only costs time. */
	int forked = 0;
	for (int i = 0; i < forks && hung < 3; i++, forked++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork", -1);
		if (pid == 0) {
			signal(SIGALRM, SIG_DFL);
			alarm(5);
			/* close, not mbedtls_net_free: shutdown would end the parent's sockets. */
			mbedtls_ssl_free(&p.c.ssl);
			mbedtls_ssl_free(&p.s.ssl);
			close(p.c.net.fd);
			close(p.s.net.fd);
			struct end e;
			end_init(&e, true);
			end_free(&e);
			_exit(0);
		}
		int st = wait_child(pid);
		hung += st == 124 || st == 128 + SIGALRM;
		if (st)
			printf("child %d: exit %d\n", i, st);
		bad += st != 0;
	}
	atomic_store(&stop_hammer, true);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	printf("fork-threads: %d children, hung: %d, failed: %d\n", forked, hung, bad);
	fflush(stdout);
	if (bad)
		fail("%d of %d children did not exit cleanly (%d hung)", bad, forks, hung);
	step("exchange after", exchange(&p, 5000, 2));
	step("shutdown", shutdown_pair(&p.c, &p.s));
	end_free(&p.c);
	end_free(&p.s);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: lifecycle CERTDIR CASE [N]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGALRM, on_alarm);
	alarm(WATCHDOG_S * 5);
	setup(argv[1]);
	const char *bio = getenv("LIFECYCLE_BIO");
	int m = bio ? bio_mode_parse(bio) : BIO_NET;
	if (m < 0 || !BIO_STATELESS(m)) {
		fprintf(stderr, "LIFECYCLE_BIO: net, sync, sync-rw, sync-iov or sync-msg\n");
		return 2;
	}
	bio_mode = (enum bio_mode)m;
	const char *c = argv[2];
	int n = argc > 3 ? atoi(argv[3]) : 0;
	if (!strcmp(c, "fd-closed"))
		run_abuse(c, abuse_fd_closed);
	else if (!strcmp(c, "fd-reused"))
		run_abuse(c, abuse_fd_reused);
	else if (!strcmp(c, "set-bio-dup"))
		run_abuse(c, abuse_set_bio_dup);
	else if (!strcmp(c, "set-bio-other"))
		run_abuse(c, abuse_set_bio_other);
	else if (!strcmp(c, "fd-reconnect"))
		run_abuse(c, abuse_fd_reconnect);
	else if (!strcmp(c, "mode-change"))
		run_abuse(c, abuse_mode_change);
	else if (!strcmp(c, "partial-read"))
		run_abuse(c, abuse_partial_read);
	else if (!strcmp(c, "write-contract"))
		run_abuse(c, abuse_write_contract);
	else if (!strcmp(c, "nested"))
		case_nested();
	else if (!strcmp(c, "versions"))
		printf("versions:%s 1.2\n", HAVE_TLS13 ? " 1.3" : "");
	else if (!strcmp(c, "ticket"))
		case_ticket();
	else if (!strcmp(c, "reset"))
		case_reset(n ? n : 1000);
	else if (!strcmp(c, "free-thread"))
		case_free_thread(n ? n : 20);
	else if (!strcmp(c, "fork-child"))
		case_fork("child");
	else if (!strcmp(c, "fork-parent"))
		case_fork("parent");
	else if (!strcmp(c, "fork-alternate"))
		case_fork("both");
	else if (!strcmp(c, "fork-threads"))
		case_fork_threads(n ? n : 200);
	else {
		fprintf(stderr, "unknown case %s\n", c);
		return 2;
	}
	mbedtls_net_free(&listener);
	for (int i = 0; i < 2; i++) {
		mbedtls_x509_crt_free(&srv_crt[i]);
		mbedtls_pk_free(&srv_key[i]);
	}
	mbedtls_x509_crt_free(&ca);
	mbedtls_ssl_config_free(&cconf);
	mbedtls_ssl_config_free(&sconf);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	mbedtls_psa_crypto_free();
	if (failures)
		return 1;
	printf("PASS %s\n", c);
	return 0;
}
