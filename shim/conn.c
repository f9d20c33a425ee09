/* SPDX-License-Identifier: Apache-2.0 */
#include "conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <mbedtls/net_sockets.h>

#include "config.h"
#include "fdwatch.h"
#include "ktlsshim.h"
#include "io.h"
#include "ktls.h"
#include "log.h"
#include "real.h"
#include "selftest.h"
#include "stats.h"

/* ---- context map: a fixed hash table, lock held only for lookup and insert/remove ---- */

#define BUCKETS 1024
static struct conn *buckets[BUCKETS];
/* A mutex, not an rwlock: a forked child must be able to release it (below), and glibc's rwlock
 * remembers its writer by a thread id the child no longer has. Held only for a bucket walk. */
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t bucket_of(const void *p)
{
	uintptr_t v = (uintptr_t)p;
	return (size_t)((v >> 4) ^ (v >> 14)) % BUCKETS;
}

struct conn *conn_find(const mbedtls_ssl_context *ssl)
{
	pthread_mutex_lock(&map_lock);
	struct conn *c = buckets[bucket_of(ssl)];
	while (c && c->ssl != ssl)
		c = c->next;
	pthread_mutex_unlock(&map_lock);
	return c;
}

struct conn *conn_get(mbedtls_ssl_context *ssl)
{
	struct conn *c = conn_find(ssl);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ssl = ssl;
	c->fd = -1;
	c->pid = getpid();
	pthread_mutex_lock(&map_lock);
	size_t b = bucket_of(ssl);
	c->next = buckets[b];
	buckets[b] = c;
	pthread_mutex_unlock(&map_lock);
	return c;
}

static void wipe_secrets(struct conn *c)
{
	keys_wipe(c->master, sizeof(c->master));
	keys_wipe(c->secret, sizeof(c->secret));
	memset(c->secret_len, 0, sizeof(c->secret_len));
}

static void wipe_next_secrets(struct conn *c)
{
	keys_wipe(c->next_secret, sizeof(c->next_secret));
	memset(c->next_secret_len, 0, sizeof(c->next_secret_len));
}

void conn_reset(struct conn *c)
{
	wipe_secrets(c);
	wipe_next_secrets(c);
	c->suite = NULL;
	memset(c->key_updates, 0, sizeof(c->key_updates));
	c->tx_records = 0;
	c->tx_update_due = c->tx_overdue_logged = c->forked = false;
	c->pid = getpid(); /* a new connection belongs to the process that makes it */
	seq_reset(&c->tx);
	seq_reset(&c->rx);
	io_reset(&c->io);
	c->version = 0;
	c->handshake_done = c->send_incomplete = c->write_pending = c->user_data_read = false;
	c->tx_state = c->rx_state = DIR_UNDECIDED;
	c->tx_why = c->rx_why = NULL;
	c->logged = c->ulp = c->strict_failed = c->bio_moved = false;
	c->tx_code = c->rx_code = 0;
	c->fd = -1;
}

void conn_drop(const mbedtls_ssl_context *ssl)
{
	pthread_mutex_lock(&map_lock);
	struct conn **pp = &buckets[bucket_of(ssl)];
	while (*pp && (*pp)->ssl != ssl)
		pp = &(*pp)->next;
	struct conn *c = *pp;
	if (c)
		*pp = c->next;
	pthread_mutex_unlock(&map_lock);
	if (c) {
		conn_reset(c);
		io_free(&c->io);
		free(c);
	}
}

static size_t count_in(const void *hay, size_t hay_len, const void *bytes, size_t len)
{
	if (!hay)
		return 0;
	size_t n = 0;
	const unsigned char *p = hay, *end = p + hay_len;
	while ((size_t)(end - p) >= len && (p = memmem(p, (size_t)(end - p), bytes, len))) {
		n++;
		p++;
	}
	return n;
}

static size_t count_in_seq(const struct seq_dir *d, const void *bytes, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nrec && i < SEQ_MAX_STORED; i++)
		n += count_in(d->recs[i].data, d->recs[i].have, bytes, len);
	return n;
}

size_t conn_debug_count(const void *bytes, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&map_lock);
	for (size_t b = 0; b < BUCKETS; b++)
		for (const struct conn *c = buckets[b]; c; c = c->next) {
			n += count_in(c, sizeof(*c), bytes, len);
			n += count_in(c->io.pending, IO_BUFFER_LEN, bytes, len);
			n += count_in(c->io.ctrl, IO_BUFFER_LEN, bytes, len);
			n += count_in_seq(&c->tx, bytes, len) + count_in_seq(&c->rx, bytes, len);
		}
	pthread_mutex_unlock(&map_lock);
	return n;
}

/* ---- configuration facts, keyed by mbedtls_ssl_config address ---- */

struct conf_facts {
	const mbedtls_ssl_config *conf;
	struct conf_facts *next;
	int endpoint, transport, renegotiation, signal_tickets;
	uint32_t read_timeout;
};
static struct conf_facts *confs;
static pthread_mutex_t conf_lock = PTHREAD_MUTEX_INITIALIZER;

static atomic_uint forks; /* fork() calls so far, counted as each begins */

/* fork() copies a lock that another thread holds as held forever: the child would hang in its
 * next mbedtls_ssl_* call. Both locks are taken around fork and released on both sides. */
static void fork_prepare(void)
{
	atomic_fetch_add(&forks, 1);
	pthread_mutex_lock(&conf_lock);
	pthread_mutex_lock(&map_lock);
}

static void fork_release(void)
{
	pthread_mutex_unlock(&map_lock);
	pthread_mutex_unlock(&conf_lock);
}

/* Parent and child now share each socket's kernel record state, but each has its own copy of
 * the next secrets: two rekeys would install the same key at sequence 0 twice. The parent keeps
 * the right to change keys; the child forgets what it must not use (no log here: a lock another
 * thread held at fork may guard the log). */
static void fork_child(void)
{
	fork_release();
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct conn *c = buckets[b]; c; c = c->next) {
			c->forked = true;
			c->tx_update_due = false; /* the parent answers the peer's request */
			wipe_next_secrets(c);
		}
}

/* A copy made by fork(): by libc's fork (the atfork handler said so), or by a raw clone or
 * syscall(SYS_fork), which runs no handler: then the process id tells. */
static bool is_copy(const struct conn *c)
{
	return c->forked || c->pid != getpid();
}

__attribute__((constructor)) static void conn_atfork(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_child);
}

/* Returns a copy so callers never hold the lock; defaults are Mbed TLS's own (zeroed config). */
static struct conf_facts conf_lookup(const mbedtls_ssl_config *conf)
{
	struct conf_facts out = { .conf = conf };
	pthread_mutex_lock(&conf_lock);
	for (struct conf_facts *f = confs; f; f = f->next)
		if (f->conf == conf) {
			out = *f;
			break;
		}
	pthread_mutex_unlock(&conf_lock);
	return out;
}

#define CONF_UPDATE(conf, stmt)                                        \
	do {                                                           \
		pthread_mutex_lock(&conf_lock);                        \
		struct conf_facts *f = confs;                          \
		while (f && f->conf != (conf))                         \
			f = f->next;                                   \
		if (!f && (f = calloc(1, sizeof(*f)))) {               \
			f->conf = (conf);                              \
			f->next = confs;                               \
			confs = f;                                     \
		}                                                      \
		if (f)                                                 \
			stmt;                                          \
		pthread_mutex_unlock(&conf_lock);                      \
	} while (0)

void conf_note_endpoint(const mbedtls_ssl_config *conf, int v) { CONF_UPDATE(conf, f->endpoint = v); }
void conf_note_transport(const mbedtls_ssl_config *conf, int v) { CONF_UPDATE(conf, f->transport = v); }
void conf_note_renegotiation(const mbedtls_ssl_config *conf, int v) { CONF_UPDATE(conf, f->renegotiation = v); }
void conf_note_read_timeout(const mbedtls_ssl_config *conf, uint32_t v) { CONF_UPDATE(conf, f->read_timeout = v); }
void conf_note_signal_tickets(const mbedtls_ssl_config *conf, int v) { CONF_UPDATE(conf, f->signal_tickets = v); }

void conf_forget(const mbedtls_ssl_config *conf)
{
	pthread_mutex_lock(&conf_lock);
	struct conf_facts **pp = &confs;
	while (*pp && (*pp)->conf != conf)
		pp = &(*pp)->next;
	struct conf_facts *f = *pp;
	if (f)
		*pp = f->next;
	pthread_mutex_unlock(&conf_lock);
	free(f);
}

bool conn_is_server(const struct conn *c)
{
	return conf_lookup(c->conf).endpoint == MBEDTLS_SSL_IS_SERVER;
}

uint32_t conn_read_timeout(const struct conn *c)
{
	return conf_lookup(c->conf).read_timeout;
}


/* ---- the BIO around the application's: every record passes here, and is counted ---- */

/* Set once a kernel refused the TLS ULP with ENOENT: new connections are not even watched. */
static atomic_bool kernel_lacks_ktls;

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	struct conn *c = ctx;
	if (c->tx_state == DIR_KERNEL || c->tx_state == DIR_EXPORTED) {
		/* Mbed TLS's own counter is behind the kernel's: its record would reuse a nonce. */
		log_msg(LOG_ERROR, "fd=%d: Mbed TLS tried to write after the kernel took TX; refused", c->fd);
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	}
	int ret = c->app_send(c->app_bio, buf, len);
	c->send_incomplete = ret != (int)len;
	if (ret > 0 && c->tx_state == DIR_UNDECIDED)
		seq_feed(&c->tx, buf, (size_t)ret);
	return ret;
}

static int recv_result(struct conn *c, const unsigned char *buf, int ret)
{
	if (ret > 0 && c->rx_state == DIR_UNDECIDED)
		seq_feed(&c->rx, buf, (size_t)ret);
	return ret;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	struct conn *c = ctx;
	if (c->rx_state == DIR_KERNEL || c->rx_state == DIR_EXPORTED)
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR; /* the socket now yields plaintext */
	return recv_result(c, buf, c->app_recv(c->app_bio, buf, len));
}

static int bio_recv_timeout(void *ctx, unsigned char *buf, size_t len, uint32_t timeout)
{
	struct conn *c = ctx;
	if (c->rx_state == DIR_KERNEL || c->rx_state == DIR_EXPORTED)
		return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
	return recv_result(c, buf, c->app_recv_timeout(c->app_bio, buf, len, timeout));
}

void conn_set_bio(struct conn *c, void *bio, mbedtls_ssl_send_t *s, mbedtls_ssl_recv_t *r,
		  mbedtls_ssl_recv_timeout_t *rt)
{
	c->app_bio = bio;
	c->app_send = s;
	c->app_recv = r;
	c->app_recv_timeout = rt;
	/* The kernel's record state stays on its socket: the next kernel-side call checks where
	 * the new BIO points. */
	if (c->tx_state == DIR_KERNEL || c->rx_state == DIR_KERNEL)
		c->bio_moved = true;
	c->bio_wrapped = !atomic_load(&kernel_lacks_ktls) && s && (r || rt);
	if (c->bio_wrapped)
		real.set_bio(c->ssl, c, bio_send, r ? bio_recv : NULL, rt ? bio_recv_timeout : NULL);
	else
		real.set_bio(c->ssl, bio, s, r, rt);
}

/* ---- secrets ---- */

void conn_export_keys(void *p, int type, const unsigned char *secret, size_t secret_len,
		      const unsigned char client_random[32], const unsigned char server_random[32],
		      int prf_type)
{
	struct conn *c = p;
	int slot = -1;
	switch (type) {
	case MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET:
		if (secret_len == sizeof(c->master)) {
			memcpy(c->master, secret, secret_len);
			memcpy(c->randoms, client_random, 32);
			memcpy(c->randoms + 32, server_random, 32);
			c->prf_type = prf_type;
			c->version = 0x0303;
		}
		break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_HANDSHAKE_TRAFFIC_SECRET: slot = SEC_CLIENT_HS; break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_HANDSHAKE_TRAFFIC_SECRET: slot = SEC_SERVER_HS; break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_APPLICATION_TRAFFIC_SECRET: slot = SEC_CLIENT_APP; break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_APPLICATION_TRAFFIC_SECRET: slot = SEC_SERVER_APP; break;
	default: break;
	}
	if (slot >= 0 && secret_len <= KEYS_MAX_SECRET) {
		memcpy(c->secret[slot], secret, secret_len);
		c->secret_len[slot] = secret_len;
		c->version = 0x0304;
	}
	c->tx.version = c->rx.version = c->version;
	if (c->app_export)
		c->app_export(c->app_export_p, (mbedtls_ssl_key_export_type)type, secret, secret_len,
			      client_random, server_random, (mbedtls_tls_prf_types)prf_type);
}

void conn_set_export_cb(struct conn *c, mbedtls_ssl_export_keys_t *f, void *p)
{
	c->app_export = f;
	c->app_export_p = p;
	real_adapter()->set_export_keys_cb(c->ssl, c->conf, c);
}

/* ---- hand-off ---- */

void conn_handshake_done(struct conn *c)
{
	if (c->handshake_done)
		return;
	c->handshake_done = true;
	seq_seal(&c->tx);
	seq_seal(&c->rx);
}

/* The application's fd, when its BIO is Mbed TLS's own plain socket functions; else -1. */
static int bio_fd(const struct conn *c)
{
	if (!c->app_bio || !real.net_send || c->app_send != real.net_send)
		return -1;
	if (c->app_recv && c->app_recv != real.net_recv)
		return -1;
	if (c->app_recv_timeout && c->app_recv_timeout != real.net_recv_timeout)
		return -1;
	return ((const mbedtls_net_context *)c->app_bio)->fd;
}

/* The kernel's TLS ULP takes TCP sockets only. */
static bool is_tcp(int fd)
{
	int type = 0, proto = 0;
	socklen_t l = sizeof(type);
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) || type != SOCK_STREAM)
		return false;
	l = sizeof(proto);
	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0 && proto == IPPROTO_TCP;
}

/* why: the log's words; code: the same for the API (KTLSSHIM_ERR_*). */
static void decide(struct conn *c, bool tx, enum dir_state s, const char *why, int code)
{
	if (tx && c->tx_state == DIR_UNDECIDED) {
		c->tx_state = s;
		c->tx_why = why;
		c->tx_code = code;
	} else if (!tx && c->rx_state == DIR_UNDECIDED) {
		c->rx_state = s;
		c->rx_why = why;
		c->rx_code = code;
	}
}

static void refuse_both(struct conn *c, const char *why, int code)
{
	decide(c, true, DIR_USER, why, code);
	decide(c, false, DIR_USER, why, code);
}

/* Conditions on the records: NULL when the shim can know and derive this connection's record
 * state, else why not (*code: KTLSSHIM_ERR_*). */
static const char *record_refusal(struct conn *c, const struct suite_info **suite, int *code)
{
	const struct shim_config *cfg = config_get();
	struct conf_facts f = conf_lookup(c->conf);
	*code = KTLSSHIM_ERR_UNSUPPORTED;
	if (!c->bio_wrapped) {
		*code = KTLSSHIM_ERR_KERNEL;
		return atomic_load(&kernel_lacks_ktls) ? "kernel has no kTLS" : "no BIO";
	}
	if (f.transport == MBEDTLS_SSL_TRANSPORT_DATAGRAM)
		return "DTLS";
	if (f.renegotiation == MBEDTLS_SSL_RENEGOTIATION_ENABLED)
		return "renegotiation enabled";
	if (c->version == 0)
		return "no secrets exported";
	/* The parent may hand this socket to the kernel too: two installs could repeat a nonce. */
	*code = KTLSSHIM_ERR_UNPROVEN;
	if (is_copy(c))
		return "fork() before the hand-off";
	*code = KTLSSHIM_ERR_UNSUPPORTED;
	*suite = keys_suite((uint16_t)real_adapter()->suite_id(c->ssl));
	if (!*suite || (*suite)->version != c->version)
		return "suite not supported by kTLS";
	/* 16384, or 16383 in TLS 1.3 where Mbed TLS counts the inner content type: anything less
	 * is a negotiated maximum fragment length the kernel would not respect. */
	if (real_adapter()->max_out_payload(c->ssl) < 16384 - (c->version == 0x0304))
		return "max_fragment_length negotiated";
	*code = KTLSSHIM_ERR_DISABLED;
	if ((c->version == 0x0303 && !cfg->tls12) || (c->version == 0x0304 && !cfg->tls13))
		return "version disabled by KTLS_SHIM_VERSIONS";
	if (!(cfg->ciphers & (1u << (*suite)->cipher)))
		return "cipher disabled by KTLS_SHIM_CIPHERS";
	return NULL;
}

/* Record conditions, plus a socket the shim installs the keys on. */
static const char *connection_refusal(struct conn *c, const struct suite_info **suite, int *code)
{
	c->fd = bio_fd(c); /* first: the log names the connection whatever the verdict */
	const char *why = record_refusal(c, suite, code);
	if (why)
		return why;
	/* Checked last: a kernel without kTLS costs no system call here. */
	*code = KTLSSHIM_ERR_NO_SOCKET;
	if (!is_tcp(c->fd))
		c->fd = -1;
	return c->fd < 0 ? "custom BIO (socket not proven)" : NULL;
}

/* TLS 1.3: the secret slots of one direction (a client's TX and a server's RX are the client's). */
static int hs_slot_of(const struct conn *c, bool tx)
{
	return tx != conn_is_server(c) ? SEC_CLIENT_HS : SEC_SERVER_HS;
}

static int app_slot_of(const struct conn *c, bool tx)
{
	return tx != conn_is_server(c) ? SEC_CLIENT_APP : SEC_SERVER_APP;
}

/* The keys Mbed TLS uses in one direction: handshake epoch (1.3) and current application epoch. */
static bool direction_keys(struct conn *c, const struct suite_info *s, bool tx,
			   struct traffic_keys *hs, struct traffic_keys *app)
{
	if (s->version == 0x0303) {
		bool client_side = tx != conn_is_server(c); /* the client's write keys */
		struct traffic_keys cw, sw;
		if (keys_tls12_traffic(s, c->prf_type, c->master, c->randoms, c->randoms + 32, &cw, &sw))
			return false;
		*app = client_side ? cw : sw;
		keys_wipe(&cw, sizeof(cw));
		keys_wipe(&sw, sizeof(sw));
		return true;
	}
	int hs_slot = hs_slot_of(c, tx), app_slot = app_slot_of(c, tx);
	if (!c->secret_len[hs_slot] || !c->secret_len[app_slot])
		return false;
	return keys_tls13_traffic(s, c->secret[hs_slot], c->secret_len[hs_slot], hs) == 0 &&
	       keys_tls13_traffic(s, c->secret[app_slot], c->secret_len[app_slot], app) == 0;
}

/* The proven kernel parameters of one direction, or why not (*code). p->keys is wiped by the
 * caller. */
static const char *direction_params(struct conn *c, const struct suite_info *s, bool tx,
				    struct ktls_params *p, int *code)
{
	struct traffic_keys hs = { 0 }, app = { 0 };
	const char *why = NULL;
	*p = (struct ktls_params){ .version = s->version, .cipher = s->cipher };
	*code = KTLSSHIM_ERR_UNPROVEN;
	if (!direction_keys(c, s, tx, &hs, &app)) {
		why = "key derivation failed";
	} else {
		enum seq_result r = seq_resolve(tx ? &c->tx : &c->rx, s, &hs, &app, &p->seq);
		if (r == SEQ_OK)
			p->keys = app;
		else
			why = seq_result_str(r);
	}
	keys_wipe(&hs, sizeof(hs));
	keys_wipe(&app, sizeof(app));
	return why;
}

/* Whether the kernel takes a second TLS_TX/TLS_RX: 0 not known yet, 1 yes, -1 no (EBUSY, or rekey
 * counters missing from /proc/net/tls_stat: the kernel's own answers). A probe that failed
 * otherwise (EMFILE, seccomp, no loopback) is not an answer and is not kept. */
static atomic_int kernel_rekeys;
static atomic_bool probe_failure_logged;

/* 1 the kernel rekeys, 0 it cannot, < 0 not known: with probe, the probe failed this time (asked
 * again next time); without, nothing was asked that costs a socket (the caller's own install
 * will tell). */
static int kernel_rekey_answer(bool probe)
{
	int v = atomic_load(&kernel_rekeys);
	if (v)
		return v > 0;
	if (ktls_stat_rekey() == 0) {
		atomic_store(&kernel_rekeys, -1);
		return 0;
	}
	if (!probe)
		return -EAGAIN;
	int r = ktls_probe_rekey(); /* racing threads store the same answer */
	if (r >= 0)
		atomic_store(&kernel_rekeys, r ? 1 : -1);
	else if (!atomic_exchange(&probe_failure_logged, true))
		log_msg(LOG_ERROR, "TLS 1.3 rekey probe failed (%s); next secrets are kept and the kernel "
			"is asked again when a key must change", strerror(-r));
	return r;
}

/* TLS 1.3, a direction the kernel now owns: the next generation's secret, for a KeyUpdate; not
 * kept where the kernel has said it cannot rekey. */
static void keep_next_secret(struct conn *c, const struct suite_info *s, bool tx)
{
	int d = tx ? KTLS_DIR_TX : KTLS_DIR_RX, slot = app_slot_of(c, tx);
	if (s->version != 0x0304 || !c->secret_len[slot] || kernel_rekey_answer(false) == 0)
		return;
	c->suite = s;
	memcpy(c->next_secret[d], c->secret[slot], c->secret_len[slot]);
	c->next_secret_len[d] = c->secret_len[slot];
	if (keys_tls13_next_secret(s->md_type, c->next_secret[d], c->next_secret_len[d])) {
		keys_wipe(c->next_secret[d], sizeof(c->next_secret[d]));
		c->next_secret_len[d] = 0;
	}
}

bool conn_tx_shared(const struct conn *c)
{
	return c->tx_forks != atomic_load(&forks);
}

const char *conn_rekey_refusal(struct conn *c, enum ktls_dir d, bool probe)
{
	if (is_copy(c))
		return "this process is a fork() child: only the parent changes this socket's keys";
	int k = kernel_rekey_answer(probe);
	if (k == 0) {
		wipe_next_secrets(c); /* useless here, as in every other connection */
		return "the kernel cannot rekey (Linux 6.14 or later can)";
	}
	if (!c->next_secret_len[d])
		return "no next secret";
	return k < 0 && probe ? "the kernel's rekey probe failed; asked again at the next write" : NULL;
}

int conn_rekey(struct conn *c, enum ktls_dir d)
{
	if (!c->suite || !c->next_secret_len[d] || is_copy(c))
		return -ENOKEY;
	struct ktls_params p = { .version = c->suite->version, .cipher = c->suite->cipher, .seq = 0 };
	int rc = keys_tls13_traffic(c->suite, c->next_secret[d], c->next_secret_len[d], &p.keys)
			 ? -ENOKEY
			 : ktls_install(c->fd, d, &p);
	keys_wipe(&p, sizeof(p));
	if (rc == -EBUSY) {
		/* The kernel cannot rekey (before 6.14): no connection here needs the secrets. */
		atomic_store(&kernel_rekeys, -1);
		wipe_next_secrets(c);
	}
	if (rc)
		return rc;
	atomic_store(&kernel_rekeys, 1);
	if (keys_tls13_next_secret(c->suite->md_type, c->next_secret[d], c->next_secret_len[d])) {
		keys_wipe(c->next_secret[d], sizeof(c->next_secret[d]));
		c->next_secret_len[d] = 0; /* the next KeyUpdate fails cleanly */
	}
	c->key_updates[d]++;
	if (d == KTLS_DIR_RX) {
		log_msg(LOG_DEBUG, "fd=%d rx key update %u", c->fd, c->key_updates[d]);
		return 0;
	}
	log_msg(LOG_DEBUG, "fd=%d tx key update %u after %llu records", c->fd, c->key_updates[d],
		(unsigned long long)c->tx_records);
	c->tx_records = 0;
	c->tx_overdue_logged = false;
	return 0;
}

static void handoff_direction(struct conn *c, const struct suite_info *s, bool tx)
{
	/* First: does this kernel seal and open this combination right (cached per process)? */
	const char *why = selftest_refusal(s->version, s->cipher, tx ? KTLS_DIR_TX : KTLS_DIR_RX);
	if (why) {
		decide(c, tx, DIR_USER, why, KTLSSHIM_ERR_KERNEL);
		return;
	}
	struct ktls_params p;
	int code;
	/* Read before the install: a fork() in another thread meanwhile counts as sharing TX. */
	unsigned forks_before = atomic_load(&forks);
	why = direction_params(c, s, tx, &p, &code);
	if (!why && ktls_install(c->fd, tx ? KTLS_DIR_TX : KTLS_DIR_RX, &p)) {
		why = tx ? "kernel refused TLS_TX" : "kernel refused TLS_RX";
		code = KTLSSHIM_ERR_KERNEL;
	}
	if (!why) {
		log_msg(LOG_DEBUG, "fd=%d %s seq=%llu", c->fd, tx ? "tx" : "rx", (unsigned long long)p.seq);
		keep_next_secret(c, s, tx);
		if (tx) {
			c->tx_records = p.seq;
			c->tx_forks = forks_before;
		}
	}
	keys_wipe(&p, sizeof(p));
	decide(c, tx, why ? DIR_USER : DIR_KERNEL, why, why ? code : 0);
}

/* The socket the kernel-owned directions will live on, as conn_io_socket checks it: its identity,
 * and the descriptor's generation (read first: a close during the hand-off shows later). */
static bool note_socket(struct conn *c)
{
	c->fd_gen = fdwatch_gen(c->fd);
	struct stat st;
	if (fstat(c->fd, &st))
		return false;
	c->sock_dev = st.st_dev;
	c->sock_ino = st.st_ino;
	return true;
}

static bool tx_is_idle(const struct conn *c)
{
	return !c->send_incomplete && !c->write_pending && rec_at_boundary(&c->tx.parser);
}

static bool rx_is_idle(const struct conn *c)
{
	return rec_at_boundary(&c->rx.parser) && real.get_bytes_avail(c->ssl) == 0 &&
	       real.check_pending(c->ssl) == 0;
}

static const char *state_name(enum dir_state s)
{
	return s == DIR_KERNEL ? "kernel" : s == DIR_EXPORTED ? "app" : "user";
}

/* Once per connection, when both directions are decided: the log line, the statistics, and
 * KTLS_SHIM_STRICT's verdict. */
static void conclude(struct conn *c)
{
	if (c->logged || c->tx_state == DIR_UNDECIDED || c->rx_state == DIR_UNDECIDED)
		return;
	c->logged = true;
	stats_connection(c->tx_state == DIR_USER ? c->tx_why : NULL,
			 c->rx_state == DIR_USER ? c->rx_why : NULL);
	const struct shim_config *cfg = config_get();
	if (cfg->strict && ((cfg->tx && c->tx_state == DIR_USER) || (cfg->rx && c->rx_state == DIR_USER))) {
		c->strict_failed = true;
		log_msg(LOG_ERROR, "fd=%d: KTLS_SHIM_STRICT: not offloaded (tx %s, rx %s); failing the connection",
			c->fd, c->tx_why ? c->tx_why : "kernel", c->rx_why ? c->rx_why : "kernel");
		conn_send_alert(c, MBEDTLS_SSL_ALERT_LEVEL_FATAL, MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR);
	}
	const char *suite = real_adapter()->suite_name(c->ssl);
	log_msg(LOG_INFO, "fd=%d role=%s version=%s suite=%s tx=%s%s%s%s rx=%s%s%s%s", c->fd,
		conn_is_server(c) ? "server" : "client", real_adapter()->version_name(c->ssl),
		suite ? suite : "?", state_name(c->tx_state),
		c->tx_why ? "(" : "", c->tx_why ? c->tx_why : "", c->tx_why ? ")" : "",
		state_name(c->rx_state), c->rx_why ? "(" : "",
		c->rx_why ? c->rx_why : "", c->rx_why ? ")" : "");
}

/* Once both directions are decided nothing needs the secrets or the stored records. */
static void settle(struct conn *c)
{
	if (c->tx_state != DIR_UNDECIDED && c->rx_state != DIR_UNDECIDED) {
		wipe_secrets(c);
		seq_reset(&c->tx);
		seq_reset(&c->rx);
	}
	conclude(c);
}

/* A TLS 1.3 client that asked to see tickets gets them from Mbed TLS: they come before the
 * server's first data, so RX waits for that. */
static bool rx_waits_for_tickets(const struct conn *c)
{
	return c->version == 0x0304 && !conn_is_server(c) && conf_lookup(c->conf).signal_tickets &&
	       !c->user_data_read;
}

void conn_handoff(struct conn *c, bool want_tx, bool want_rx)
{
	if (!c->handshake_done || (c->tx_state != DIR_UNDECIDED && c->rx_state != DIR_UNDECIDED))
		return;
	const struct shim_config *cfg = config_get();
	const struct suite_info *suite = NULL;
	int code;
	const char *why = connection_refusal(c, &suite, &code);
	if (why) {
		refuse_both(c, why, code);
	} else {
		if (!cfg->tx)
			decide(c, true, DIR_USER, "KTLS_SHIM_DIRECTIONS", KTLSSHIM_ERR_DISABLED);
		if (!cfg->rx)
			decide(c, false, DIR_USER, "KTLS_SHIM_DIRECTIONS", KTLSSHIM_ERR_DISABLED);
		if (!c->ulp) {
			int err = ktls_attach_ulp(c->fd);
			if (err == -ENOENT)
				atomic_store(&kernel_lacks_ktls, true);
			if (err)
				refuse_both(c, err == -ENOENT ? "kernel has no kTLS" : "TCP_ULP tls refused",
					    KTLSSHIM_ERR_KERNEL);
			c->ulp = err == 0 && note_socket(c);
		}
		if (want_tx && c->ulp && c->tx_state == DIR_UNDECIDED && tx_is_idle(c))
			handoff_direction(c, suite, true);
		if (want_rx && c->ulp && c->rx_state == DIR_UNDECIDED && !rx_waits_for_tickets(c) &&
		    rx_is_idle(c)) {
			handoff_direction(c, suite, false);
		}
	}
	settle(c);
}

void conn_try_handoff(struct conn *c)
{
	if (!c->manual)
		conn_handoff(c, true, true);
}

int conn_export(struct conn *c, bool tx, union ktls_kinfo *out, size_t *out_len)
{
	if ((tx ? c->tx_state : c->rx_state) != DIR_UNDECIDED)
		return KTLSSHIM_ERR_DECIDED;
	if (!c->handshake_done)
		return KTLSSHIM_ERR_HANDSHAKE;
	const struct suite_info *suite = NULL;
	int code;
	if (record_refusal(c, &suite, &code))
		return code;
	if (tx ? !tx_is_idle(c) : !rx_is_idle(c) || rx_waits_for_tickets(c))
		return KTLSSHIM_ERR_BUSY;
	struct ktls_params p;
	const char *why = direction_params(c, suite, tx, &p, &code);
	if (!why && ktls_build(&p, out, out_len) != 0) {
		why = "kernel parameters";
		code = KTLSSHIM_ERR_UNSUPPORTED;
	}
	keys_wipe(&p, sizeof(p));
	if (why)
		return code;
	decide(c, tx, DIR_EXPORTED, NULL, 0);
	settle(c);
	return KTLSSHIM_OK;
}

int conn_send_alert(struct conn *c, unsigned char level, unsigned char desc)
{
	if (c->tx_state == DIR_KERNEL)
		return io_send_alert(c, level, desc);
	return real.send_alert_message(c->ssl, level, desc);
}

/* Whether fd is the kernel-TLS socket set up at the hand-off: the same socket (st_dev/st_ino),
 * TLS ULP attached. Notes the descriptor's generation, read before the checks. */
static bool is_our_socket(struct conn *c, int fd)
{
	unsigned gen = fdwatch_gen(fd);
	struct stat st;
	char ulp[16] = "";
	socklen_t l = sizeof(ulp) - 1;
	if (fd < 0 || fstat(fd, &st) || st.st_dev != c->sock_dev || st.st_ino != c->sock_ino ||
	    getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &l) || strcmp(ulp, "tls"))
		return false;
	c->fd_gen = gen;
	return true;
}

int conn_io_socket(struct conn *c)
{
	const mbedtls_net_context *net = c->app_bio;
	/* The hot path: the BIO names the same number, and nothing closed or replaced it since. */
	if (!c->bio_moved && net->fd == c->fd && fdwatch_gen(c->fd) == c->fd_gen)
		return 0;
	/* The app freed its socket (mbedtls_net_free sets -1): Mbed TLS's own answer. */
	if (c->app_send == real.net_send && net && net->fd < 0)
		return MBEDTLS_ERR_NET_INVALID_CONTEXT;
	/* Another descriptor, a BIO set after the hand-off, or a number closed or replaced since: the
	 * same socket is followed; anything else gets nothing, above all no plaintext. */
	int fd = bio_fd(c);
	if (is_our_socket(c, fd)) {
		c->fd = fd;
		c->bio_moved = false;
		return 0;
	}
	log_msg(LOG_ERROR, "fd=%d: the application moved the connection to another socket or BIO, or "
		"closed its socket; the kernel keeps its records on the old socket", c->fd);
	return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
}
