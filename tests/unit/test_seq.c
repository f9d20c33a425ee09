/* SPDX-License-Identifier: Apache-2.0 */
/* The sequence-number mechanism (shim/seq.c) against real Mbed TLS 3.6 handshakes, with no kernel:
 * a client and a server in one process talk over a socketpair through BIO callbacks that feed the
 * trackers exactly as the shim's do. After the handshake (and optional user-space data) every
 * tracker predicts its next sequence number; then each side writes one more record through Mbed
 * TLS, and that record must authenticate under the application key at the predicted number. An
 * off-by-one in either direction fails the AEAD check. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#include "keys.h"
#include "seq.h"
#include "tap.h"

enum { C_HS, S_HS, C_APP, S_APP };

struct side {
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	int fd;
	bool server;
	struct seq_dir tx, rx;
	uint16_t version;
	int prf;
	unsigned char master[48], randoms[64];
	unsigned char secret[4][48];
	size_t secret_len[4];
	size_t max_send; /* non-zero: each send takes at most this, and every other one WANT_WRITE */
	unsigned sends;
	bool capture; /* keep the bytes that pass (tx or rx) from now on */
	unsigned char last[REC_HDR_LEN + REC_MAX_BODY], first_in[REC_HDR_LEN + REC_MAX_BODY];
	size_t last_len, first_in_len;
};

/* Appends to a capture buffer up to its size. */
static void keep(unsigned char *dst, size_t *have, size_t cap, const unsigned char *p, size_t n)
{
	if (*have + n > cap)
		n = cap - *have;
	memcpy(dst + *have, p, n);
	*have += n;
}

struct tcase {
	const char *name;
	int tls; /* 2 or 3 */
	int suite;
	int tickets;
	bool client_cert, hrr, resume;
	int chain;
	size_t pre_data;
	size_t max_send;
};

static mbedtls_ctr_drbg_context drbg;
static mbedtls_entropy_context entropy;
static mbedtls_x509_crt ca, srv_crt, cli_crt, chain_crt;
static mbedtls_pk_context srv_key, cli_key, chain_key;
static mbedtls_ssl_ticket_context ticket_ctx;

static int bio_send(void *p, const unsigned char *buf, size_t len)
{
	struct side *s = p;
	if (s->max_send) {
		/* A congested non-blocking socket: partial sends and WANT_WRITE, in every phase. */
		if (s->sends++ % 2 == 0)
			return MBEDTLS_ERR_SSL_WANT_WRITE;
		if (len > s->max_send)
			len = s->max_send;
	}
	ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
	if (n < 0)
		return MBEDTLS_ERR_NET_SEND_FAILED;
	seq_feed(&s->tx, buf, (size_t)n);
	if (s->capture)
		keep(s->last, &s->last_len, sizeof(s->last), buf, (size_t)n);
	return (int)n;
}

static int bio_recv(void *p, unsigned char *buf, size_t len)
{
	struct side *s = p;
	ssize_t n = recv(s->fd, buf, len, 0);
	if (n < 0)
		return MBEDTLS_ERR_NET_RECV_FAILED;
	seq_feed(&s->rx, buf, (size_t)n);
	if (s->capture)
		keep(s->first_in, &s->first_in_len, sizeof(s->first_in), buf, (size_t)n);
	return (int)n;
}

static void export_cb(void *p, mbedtls_ssl_key_export_type type, const unsigned char *secret,
		      size_t len, const unsigned char cr[32], const unsigned char sr[32],
		      mbedtls_tls_prf_types prf)
{
	struct side *s = p;
	int slot = -1;
	if (type == MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET) {
		memcpy(s->master, secret, 48);
		memcpy(s->randoms, cr, 32);
		memcpy(s->randoms + 32, sr, 32);
		s->prf = prf;
		s->version = 0x0303;
	} else if (type == MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_HANDSHAKE_TRAFFIC_SECRET) {
		slot = C_HS;
	} else if (type == MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_HANDSHAKE_TRAFFIC_SECRET) {
		slot = S_HS;
	} else if (type == MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_APPLICATION_TRAFFIC_SECRET) {
		slot = C_APP;
	} else if (type == MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_APPLICATION_TRAFFIC_SECRET) {
		slot = S_APP;
	}
	if (slot >= 0) {
		memcpy(s->secret[slot], secret, len);
		s->secret_len[slot] = len;
		s->version = 0x0304;
	}
	s->tx.version = s->rx.version = s->version;
}

static void load_pki(const char *dir)
{
	char path[512], kpath[512];
#define LOAD_CRT(crt, name) \
	(snprintf(path, sizeof(path), "%s/%s", dir, name), mbedtls_x509_crt_parse_file(crt, path))
#define LOAD_KEY(pk, name)                                   \
	(snprintf(kpath, sizeof(kpath), "%s/%s", dir, name), \
	 mbedtls_pk_parse_keyfile(pk, kpath, NULL, mbedtls_ctr_drbg_random, &drbg))
	mbedtls_x509_crt_init(&ca);
	mbedtls_x509_crt_init(&srv_crt);
	mbedtls_x509_crt_init(&cli_crt);
	mbedtls_x509_crt_init(&chain_crt);
	mbedtls_pk_init(&srv_key);
	mbedtls_pk_init(&cli_key);
	mbedtls_pk_init(&chain_key);
	if (LOAD_CRT(&ca, "ca.crt") || LOAD_CRT(&srv_crt, "server-ec.crt") ||
	    LOAD_CRT(&cli_crt, "client.crt") || LOAD_CRT(&chain_crt, "chain-8.crt") ||
	    LOAD_KEY(&srv_key, "server-ec.key") || LOAD_KEY(&cli_key, "client.key") ||
	    LOAD_KEY(&chain_key, "chain.key")) {
		fprintf(stderr, "cannot load the test PKI from %s (run tests/apps/gen-certs)\n",
			dir);
		exit(2);
	}
}

static const uint16_t groups_client_hrr[] = { MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
					      MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, 0 };
static const uint16_t groups_server_hrr[] = { MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1, 0 };

static void side_setup(struct side *s, const struct tcase *t, bool server, int fd,
		       const int *suites)
{
	memset(s, 0, sizeof(*s));
	s->server = server;
	s->fd = fd;
	mbedtls_ssl_config_init(&s->conf);
	mbedtls_ssl_config_defaults(&s->conf,
				    server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
				    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	mbedtls_ssl_conf_rng(&s->conf, mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ssl_conf_ciphersuites(&s->conf, suites);
	mbedtls_ssl_protocol_version v =
		t->tls == 2 ? MBEDTLS_SSL_VERSION_TLS1_2 : MBEDTLS_SSL_VERSION_TLS1_3;
	mbedtls_ssl_conf_min_tls_version(&s->conf, v);
	mbedtls_ssl_conf_max_tls_version(&s->conf, v);
	mbedtls_ssl_conf_ca_chain(&s->conf, &ca, NULL);
	if (server) {
		if (t->chain)
			mbedtls_ssl_conf_own_cert(&s->conf, &chain_crt, &chain_key);
		else
			mbedtls_ssl_conf_own_cert(&s->conf, &srv_crt, &srv_key);
		mbedtls_ssl_conf_authmode(&s->conf, t->client_cert ? MBEDTLS_SSL_VERIFY_REQUIRED
								   : MBEDTLS_SSL_VERIFY_NONE);
		if (t->tickets) {
			mbedtls_ssl_conf_session_tickets_cb(&s->conf, mbedtls_ssl_ticket_write,
							    mbedtls_ssl_ticket_parse, &ticket_ctx);
			mbedtls_ssl_conf_new_session_tickets(&s->conf, (uint16_t)t->tickets);
		}
		if (t->hrr)
			mbedtls_ssl_conf_groups(&s->conf, groups_server_hrr);
	} else {
		mbedtls_ssl_conf_authmode(&s->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
		if (t->client_cert)
			mbedtls_ssl_conf_own_cert(&s->conf, &cli_crt, &cli_key);
		if (t->hrr)
			mbedtls_ssl_conf_groups(&s->conf, groups_client_hrr);
		if (t->resume)
			mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
				&s->conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
	}
	mbedtls_ssl_init(&s->ssl);
	mbedtls_ssl_setup(&s->ssl, &s->conf);
	if (!server)
		mbedtls_ssl_set_hostname(&s->ssl, "localhost");
	mbedtls_ssl_set_bio(&s->ssl, s, bio_send, bio_recv, NULL);
	mbedtls_ssl_set_export_keys_cb(&s->ssl, export_cb, s);
	s->max_send = t->max_send;
}

/* Repeats an Mbed TLS call while it asks to be called again (the WANT_WRITE of max_send). */
#define RETRY(call)                                                                          \
	__extension__({                                                                      \
		int r_;                                                                      \
		do                                                                           \
			r_ = (call);                                                         \
		while (r_ == MBEDTLS_ERR_SSL_WANT_WRITE || r_ == MBEDTLS_ERR_SSL_WANT_READ); \
		r_;                                                                          \
	})

static void side_free(struct side *s)
{
	seq_reset(&s->tx);
	seq_reset(&s->rx);
	mbedtls_ssl_free(&s->ssl);
	mbedtls_ssl_config_free(&s->conf);
	close(s->fd);
}

static void *server_handshake(void *p)
{
	struct side *s = p;
	return (void *)(intptr_t)RETRY(mbedtls_ssl_handshake(&s->ssl));
}

/* Both handshakes, concurrently; 0 or the first error. */
static int handshake_pair(struct side *c, struct side *s)
{
	pthread_t th;
	pthread_create(&th, NULL, server_handshake, s);
	int cret = RETRY(mbedtls_ssl_handshake(&c->ssl));
	void *sret;
	pthread_join(th, &sret);
	if (cret || sret) {
		char buf[128];
		mbedtls_strerror(cret ? cret : (int)(intptr_t)sret, buf, sizeof(buf));
		tap_diag("handshake failed: client -0x%04x server -0x%04x (%s)", (unsigned)-cret,
			 (unsigned)-(int)(intptr_t)sret, buf);
		return -1;
	}
	seq_seal(&c->tx);
	seq_seal(&c->rx);
	seq_seal(&s->tx);
	seq_seal(&s->rx);
	return 0;
}

static int write_all(struct side *s, const unsigned char *p, size_t n)
{
	while (n) {
		int r = mbedtls_ssl_write(&s->ssl, p, n);
		if (r == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue; /* the same arguments again, as Mbed TLS requires */
		if (r < 0)
			return r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Reads exactly n bytes; tickets signalled to the client are fine (they are what --resume wants). */
static int read_all(struct side *s, size_t n)
{
	unsigned char buf[4096];
	while (n) {
		int r = mbedtls_ssl_read(&s->ssl, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r == MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET ||
		    r == MBEDTLS_ERR_SSL_WANT_READ)
			continue;
		if (r <= 0)
			return r ? r : -1;
		n -= (size_t)r;
	}
	return 0;
}

struct writer {
	struct side *s;
	size_t n;
	int ret;
};

static void *writer_thread(void *p)
{
	struct writer *w = p;
	unsigned char *buf = calloc(1, w->n);
	w->ret = write_all(w->s, buf, w->n);
	free(buf);
	return NULL;
}

/* n bytes from a to b in user space (a writer thread so large amounts cannot deadlock). */
static int transfer(struct side *a, struct side *b, size_t n)
{
	struct writer w = { a, n, 0 };
	pthread_t th;
	pthread_create(&th, NULL, writer_thread, &w);
	int r = read_all(b, n);
	pthread_join(th, NULL);
	return r ? r : w.ret;
}

/* The keys the writer of this direction uses: handshake epoch and application epoch. */
static bool writer_keys(struct side *s, const struct suite_info *si, bool client_writes,
			struct traffic_keys *hs, struct traffic_keys *app)
{
	if (si->version == 0x0303) {
		struct traffic_keys cw, sw;
		if (keys_tls12_traffic(si, s->prf, s->master, s->randoms, s->randoms + 32, &cw,
				       &sw))
			return false;
		*app = client_writes ? cw : sw;
		return true;
	}
	int h = client_writes ? C_HS : S_HS, a = client_writes ? C_APP : S_APP;
	return keys_tls13_traffic(si, s->secret[h], s->secret_len[h], hs) == 0 &&
	       keys_tls13_traffic(si, s->secret[a], s->secret_len[a], app) == 0;
}

/* The first whole record in a capture, as (pointer, length); length 0 when there is none. */
static size_t first_record(const unsigned char *p, size_t have)
{
	if (have < REC_HDR_LEN)
		return 0;
	size_t len = REC_HDR_LEN + (((size_t)p[3] << 8) | p[4]);
	return len <= have ? len : 0;
}

/* Predicts with each side's own tracker, then checks the next record the writer writes and the
 * next record the reader reads (not the same one when tickets are still in flight). */
static void check_direction(const struct tcase *t, struct side *w, struct side *r,
			    const struct suite_info *si)
{
	struct traffic_keys hs, app;
	bool client_writes = !w->server;
	uint64_t tx_seq = ~0ull, rx_seq = ~0ull;
	int ok_keys = writer_keys(w, si, client_writes, &hs, &app);
	enum seq_result rt = seq_resolve(&w->tx, si, &hs, &app, &tx_seq);
	enum seq_result rr = seq_resolve(&r->rx, si, &hs, &app, &rx_seq);
	const char *dir = client_writes ? "client->server" : "server->client";
	w->capture = r->capture = true;
	w->last_len = r->first_in_len = 0;
	int wr = write_all(w, (const unsigned char *)"next", 4);
	int rd = read_all(r, 4);
	w->capture = r->capture = false;
	tap_ok(ok_keys && rt == SEQ_OK && wr == 0 &&
		       seq_record_opens(si, &app, tx_seq, w->last, w->last_len),
	       "%s %s: the writer's next record authenticates at its predicted number %llu (%s)",
	       t->name, dir, (unsigned long long)tx_seq, seq_result_str(rt));
	tap_ok(ok_keys && rr == SEQ_OK && rd == 0 &&
		       seq_record_opens(si, &app, rx_seq, r->first_in,
					first_record(r->first_in, r->first_in_len)),
	       "%s %s: the reader's next record authenticates at its predicted number %llu (%s)",
	       t->name, dir, (unsigned long long)rx_seq, seq_result_str(rr));
	/* The kernel self-test's known answers come from seq_record_seal: it must write exactly the
	 * record Mbed TLS wrote. TLS 1.3: the inner content type after the data, then the zeros Mbed
	 * TLS pads with (MBEDTLS_SSL_CID_TLS1_3_PADDING_GRANULARITY), as many as its record has. */
	unsigned char plain[48] = { 'n', 'e', 'x', 't', REC_APPDATA }, sealed[96];
	size_t plain_len = 4;
	if (si->version == 0x0304 && w->last_len >= REC_HDR_LEN + 16 + 5 &&
	    w->last_len <= REC_HDR_LEN + 16 + sizeof(plain))
		plain_len = w->last_len - REC_HDR_LEN - 16;
	size_t sealed_len = seq_record_seal(si, &app, tx_seq, REC_APPDATA, plain, plain_len, sealed,
					    sizeof(sealed));
	tap_ok(sealed_len && sealed_len == w->last_len && !memcmp(sealed, w->last, sealed_len),
	       "%s %s: seq_record_seal writes exactly Mbed TLS's record", t->name, dir);
	keys_wipe(&hs, sizeof(hs));
	keys_wipe(&app, sizeof(app));
}

static void run_case(const struct tcase *t)
{
	int suites[2] = { t->suite, 0 };
	mbedtls_ssl_session saved;
	mbedtls_ssl_session_init(&saved);
	int rounds = t->resume ? 2 : 1;
	for (int round = 0; round < rounds; round++) {
		int sv[2];
		socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
		struct side *c = calloc(1, sizeof(*c)), *s = calloc(1, sizeof(*s));
		side_setup(c, t, false, sv[0], suites);
		side_setup(s, t, true, sv[1], suites);
		if (round == 1)
			mbedtls_ssl_set_session(&c->ssl, &saved);
		if (handshake_pair(c, s) != 0) {
			tap_ok(0, "%s: handshake", t->name);
			tap_ok(0, "%s: (skipped)", t->name);
		} else if (round == 0 && t->resume) {
			/* The ticket reaches the client with data that follows it. */
			int r = transfer(s, c, 1);
			if (r == 0)
				r = mbedtls_ssl_get_session(&c->ssl, &saved);
			if (r)
				tap_diag("%s: first connection: -0x%04x", t->name, (unsigned)-r);
		} else {
			const struct suite_info *si = keys_suite(
				(uint16_t)mbedtls_ssl_get_ciphersuite_id_from_ssl(&c->ssl));
			if (t->pre_data) {
				int r = transfer(c, s, t->pre_data);
				if (!r)
					r = transfer(s, c, t->pre_data);
				if (r)
					tap_diag("%s: pre-data: -0x%04x", t->name, (unsigned)-r);
			}
			if (t->resume)
				tap_diag("%s: resumed session", t->name);
			check_direction(t, c, s, si);
			check_direction(t, s, c, si);
		}
		side_free(c);
		side_free(s);
		free(c);
		free(s);
	}
	mbedtls_ssl_session_free(&saved);
}

int main(int argc, char **argv)
{
	static const struct tcase cases[] = {
		{ "1.3 AES-128-GCM no tickets", 3, MBEDTLS_TLS1_3_AES_128_GCM_SHA256, 0, false,
		  false, false, 0, 0, 0 },
		{ "1.3 ChaCha 1 ticket", 3, MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256, 1, false,
		  false, false, 0, 0, 0 },
		{ "1.3 AES-256-GCM 3 tickets + data", 3, MBEDTLS_TLS1_3_AES_256_GCM_SHA384, 3,
		  false, false, false, 0, 100000, 0 },
		{ "1.3 AES-128-CCM client cert", 3, MBEDTLS_TLS1_3_AES_128_CCM_SHA256, 1, true,
		  false, false, 0, 0, 0 },
		{ "1.3 HelloRetryRequest", 3, MBEDTLS_TLS1_3_AES_128_GCM_SHA256, 2, false, true,
		  false, 0, 0, 0 },
		{ "1.3 chain of 8 + client cert", 3, MBEDTLS_TLS1_3_AES_128_GCM_SHA256, 1, true,
		  false, false, 8, 0, 0 },
		{ "1.3 PSK resumption", 3, MBEDTLS_TLS1_3_AES_128_GCM_SHA256, 3, false, false, true,
		  0, 5000, 0 },
		{ "1.2 ECDHE-ECDSA AES-128-GCM", 2, MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		  0, false, false, false, 0, 0, 0 },
		{ "1.2 ECDHE-ECDSA AES-256-GCM + data", 2,
		  MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, 0, false, false, false, 0, 70000,
		  0 },
		{ "1.2 ECDHE-ECDSA ChaCha client cert", 2,
		  MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 0, true, false, false, 0,
		  0, 0 },
		{ "1.2 ECDHE-ECDSA AES-128-CCM", 2, MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CCM, 0,
		  false, false, false, 0, 0, 0 },
		{ "1.2 ticket resumption", 2, MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 1,
		  false, false, true, 0, 3000, 0 },
		{ "1.3 partial sends + WANT_WRITE", 3, MBEDTLS_TLS1_3_AES_128_GCM_SHA256, 2, true,
		  false, false, 0, 20000, 7 },
		{ "1.2 partial sends + WANT_WRITE", 2,
		  MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 0, true, false, false, 0,
		  20000, 7 },
	};
	size_t n = sizeof(cases) / sizeof(cases[0]);
	const char *dir = argc > 1 ? argv[1] : "build/certs";

	psa_crypto_init();
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0);
	load_pki(dir);
	mbedtls_ssl_ticket_init(&ticket_ctx);
	mbedtls_ssl_ticket_setup(&ticket_ctx, mbedtls_ctr_drbg_random, &drbg,
				 MBEDTLS_CIPHER_AES_256_GCM, 3600);

	tap_plan((int)(6 * n));
	for (size_t i = 0; i < n; i++)
		run_case(&cases[i]);

	mbedtls_ssl_ticket_free(&ticket_ctx);
	mbedtls_x509_crt_free(&ca);
	mbedtls_x509_crt_free(&srv_crt);
	mbedtls_x509_crt_free(&cli_crt);
	mbedtls_x509_crt_free(&chain_crt);
	mbedtls_pk_free(&srv_key);
	mbedtls_pk_free(&cli_key);
	mbedtls_pk_free(&chain_key);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return tap_done();
}
