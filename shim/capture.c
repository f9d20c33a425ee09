/* SPDX-License-Identifier: Apache-2.0 */
#include "capture.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <mbedtls/net_sockets.h>

#include "biowatch.h"
#include "config.h"
#include "fdwatch.h"
#include "log.h"
#include "real.h"

__thread struct bioproof_call *biowatch_top;
__thread bool biowatch_broken;
__thread const void *biowatch_frame;
__thread bool biowatch_left;

static atomic_bool kernel_lacks_ktls;

void capture_stop(void)
{
	atomic_store(&kernel_lacks_ktls, true);
}

bool capture_stopped(void)
{
	return atomic_load(&kernel_lacks_ktls);
}

enum bio_kind { BIO_SEND, BIO_RECV, BIO_RECV_TIMEOUT };

static int call_app(struct conn *c, enum bio_kind kind, unsigned char *buf, size_t len,
		    uint32_t timeout)
{
	switch (kind) {
	case BIO_SEND: return c->app_send(c->app_bio, buf, len);
	case BIO_RECV: return c->app_recv(c->app_bio, buf, len);
	default: return c->app_recv_timeout(c->app_bio, buf, len, timeout);
	}
}

/* A custom BIO is watched from its first call until both directions are decided, unless its
 * proof already failed (then nothing can make it proven) or the configuration says no. */
static bool proof_open(const struct conn *c)
{
	return c->custom && !c->proof.why && config_get()->custom_bio &&
	       (c->ks.owner[DIR_TX] == OWNER_UNDECIDED || c->ks.owner[DIR_RX] == OWNER_UNDECIDED);
}

/* The application's callback, under the watch while the proof is open. */
static int call_bio(struct conn *c, enum bio_kind kind, unsigned char *buf, size_t len,
		    uint32_t timeout)
{
	/* Mbed TLS's read timeout stays the shim's after the hand-off (recv.c): waiting up to it is
	 * no loss; 0 is for ever there, so any finite wait is the BIO's own. */
	long max_wait = kind == BIO_RECV_TIMEOUT && timeout ? (long)timeout : -1;
	struct bioproof_call k;
	c->bio_called = true;
	if (!proof_open(c) ||
	    !bioproof_begin(&k, &c->proof, kind == BIO_SEND ? DIR_TX : DIR_RX, buf, len, max_wait))
		return call_app(c, kind, buf, len, timeout);
	k.forever_ok = kind == BIO_RECV_TIMEOUT; /* the shim waits as Mbed TLS asked (recv.c) */
	if (!biowatch_push(&k, __builtin_frame_address(0)))
		return call_app(c, kind, buf, len, timeout);
	int ret;
	pthread_cleanup_push(biowatch_pop, &k);
	ret = call_app(c, kind, buf, len, timeout);
	pthread_cleanup_pop(1);
	bioproof_end(&k, ret);
	return ret;
}

static bool taken(const struct conn *c, enum dir d)
{
	return c->ks.owner[d] == OWNER_KERNEL || c->ks.owner[d] == OWNER_APP;
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct conn *c = ctx;
	if (taken(c, DIR_TX)) {
		/* Mbed TLS's own counter is behind the kernel's: its record would reuse a nonce. */
		log_msg(LOG_ERROR,
			"fd=%d: Mbed TLS tried to write after the kernel took TX; refused",
			c->ks.fd);
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	}
	/* Never written through: the receive callbacks share call_bio. */
	int ret = call_bio(c, BIO_SEND, (unsigned char *)(uintptr_t)buf, len, 0);
	c->send_incomplete = ret != (int)len;
	if (ret > 0 && c->ks.owner[DIR_TX] == OWNER_UNDECIDED && c->pre)
		seq_feed(&c->pre->seq[DIR_TX], buf, (size_t)ret);
	return ret;
}

static int recv_result(struct conn *c, const unsigned char *buf, int ret)
{
	if (ret > 0 && c->ks.owner[DIR_RX] == OWNER_UNDECIDED && c->pre)
		seq_feed(&c->pre->seq[DIR_RX], buf, (size_t)ret);
	return ret;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct conn *c = ctx;
	if (taken(c, DIR_RX))
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR; /* the socket now yields plaintext */
	return recv_result(c, buf, call_bio(c, BIO_RECV, buf, len, 0));
}

static int bio_recv_timeout(void *ctx, unsigned char *buf, size_t len, uint32_t timeout)
{
	struct conn *c = ctx;
	if (taken(c, DIR_RX))
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	return recv_result(c, buf, call_bio(c, BIO_RECV_TIMEOUT, buf, len, timeout));
}

/* Whether the application's BIO is Mbed TLS's own plain socket functions. */
static bool is_net_bio(const struct conn *c)
{
	if (!c->app_bio || !real.net_send || c->app_send != real.net_send)
		return false;
	if (c->app_recv && c->app_recv != real.net_recv)
		return false;
	return !c->app_recv_timeout || c->app_recv_timeout == real.net_recv_timeout;
}

/* SO_RCVTIMEO or SO_SNDTIMEO set (or unreadable: unsure counts as set). */
static bool has_timeout(int fd, int opt)
{
	struct timeval tv = { 0 };
	socklen_t l = sizeof(tv);
	return getsockopt(fd, SOL_SOCKET, opt, &tv, &l) || tv.tv_sec || tv.tv_usec;
}

/* The socket's mode now: where a call can return EAGAIN, the BIO's answer to it must have been
 * seen (bioproof_answer_verdict), or after the hand-off the shim would answer in its place. */
static const char *answer_refusal(struct conn *c, int fd)
{
	int fl = fcntl(fd, F_GETFL);
	bool timeout[DIR_COUNT];
	timeout[DIR_TX] = has_timeout(fd, SO_SNDTIMEO);
	timeout[DIR_RX] = has_timeout(fd, SO_RCVTIMEO);
	return bioproof_answer_verdict(&c->proof, fl < 0 || (fl & O_NONBLOCK), timeout,
				       c->bio_dir_why);
}

int capture_bio_fd(struct conn *c, const char **why)
{
	*why = NULL;
	c->bio_dir_why[DIR_TX] = c->bio_dir_why[DIR_RX] = NULL;
	if (!c->custom)
		return ((const mbedtls_net_context *)c->app_bio)->fd;
	if (!config_get()->custom_bio) {
		*why = BIOPROOF_OFF;
		return -1;
	}
	int fd;
	const struct bioproof *p = &c->proof;
	*why = bioproof_verdict(p, p->have_fd ? fdwatch_gen(p->fd) : 0, &fd);
	if (!*why)
		*why = answer_refusal(c, fd);
	return fd;
}

bool capture_same_socket(const struct conn *c)
{
	return !c->custom || c->ks.fd_gen == c->proof.gen;
}

void capture_set_bio(struct conn *c, void *bio, mbedtls_ssl_send_t *s, mbedtls_ssl_recv_t *r,
		     mbedtls_ssl_recv_timeout_t *rt)
{
	bool same = bio == c->app_bio && s == c->app_send && r == c->app_recv &&
		    rt == c->app_recv_timeout;
	c->app_bio = bio;
	c->app_send = s;
	c->app_recv = r;
	c->app_recv_timeout = rt;
	/* What the kernel-side I/O needs to know of the BIO to follow the socket. The kernel's
	 * record state stays on its socket: the next kernel-side call checks where the new BIO
	 * points. */
	c->ks.net = bio;
	c->ks.net_send = s == real.net_send;
	c->ks.net_bio = is_net_bio(c);
	c->ks.waits = rt != NULL;
	/* Once watched, a connection stays custom: the bytes already counted went through it. One
	 * that becomes custom after BIO calls had calls nobody watched. */
	bool was_custom = c->custom;
	c->custom = !c->ks.net_bio || c->proof.have_fd || c->proof.why;
	if (c->custom && !was_custom && c->bio_called)
		bioproof_fail(&c->proof, BIOPROOF_UNSEEN);
	/* A custom BIO proven before cannot be followed to other callbacks: nothing proves them. */
	if ((c->ks.owner[DIR_TX] == OWNER_KERNEL || c->ks.owner[DIR_RX] == OWNER_KERNEL) &&
	    (c->ks.net_bio || !same))
		c->ks.moved = true;
	c->bio_wrapped = !capture_stopped() && s && (r || rt);
	if (c->bio_wrapped)
		real.set_bio(c->ks.ssl, c, bio_send, r ? bio_recv : NULL,
			     rt ? bio_recv_timeout : NULL);
	else
		real.set_bio(c->ks.ssl, bio, s, r, rt);
}

void capture_export_keys(void *p, int type, const unsigned char *secret, size_t secret_len,
			 const unsigned char client_random[32],
			 const unsigned char server_random[32], int prf_type)
{
	struct conn *c = p;
	struct conn_pre *pre = c->pre;
	int slot = -1;
	switch (type) {
	case MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET:
		if (pre && secret_len == sizeof(pre->master)) {
			memcpy(pre->master, secret, secret_len);
			memcpy(pre->randoms, client_random, 32);
			memcpy(pre->randoms + 32, server_random, 32);
			pre->prf_type = prf_type;
			c->ks.version = TLS_1_2;
		}
		break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_HANDSHAKE_TRAFFIC_SECRET:
		slot = SEC_CLIENT_HS;
		break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_HANDSHAKE_TRAFFIC_SECRET:
		slot = SEC_SERVER_HS;
		break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_APPLICATION_TRAFFIC_SECRET:
		slot = SEC_CLIENT_APP;
		break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_APPLICATION_TRAFFIC_SECRET:
		slot = SEC_SERVER_APP;
		break;
	default: break;
	}
	if (pre && slot >= 0 && secret_len <= KEYS_MAX_SECRET) {
		memcpy(pre->secret[slot], secret, secret_len);
		pre->secret_len[slot] = secret_len;
		c->ks.version = TLS_1_3;
	}
	if (pre)
		pre->seq[DIR_TX].version = pre->seq[DIR_RX].version = c->ks.version;
	if (c->app_export)
		c->app_export(c->app_export_p, (mbedtls_ssl_key_export_type)type, secret,
			      secret_len, client_random, server_random,
			      (mbedtls_tls_prf_types)prf_type);
}

void capture_set_export_cb(struct conn *c, mbedtls_ssl_export_keys_t *f, void *p)
{
	c->app_export = f;
	c->app_export_p = p;
	real_adapter()->set_export_keys_cb(c->ks.ssl, c->ks.conf, c);
}
