/* SPDX-License-Identifier: Apache-2.0 */
#include "handoff.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "capture.h"
#include "conf.h"
#include "config.h"
#include "io.h"
#include "ktlsshim.h"
#include "log.h"
#include "real.h"
#include "rekey.h"
#include "selftest.h"
#include "stats.h"

void handoff_handshake_done(struct conn *c)
{
	if (c->handshake_done)
		return;
	c->handshake_done = true;
	for (int d = 0; c->pre && d < DIR_COUNT; d++)
		seq_seal(&c->pre->seq[d]);
}

/* The kernel's TLS ULP takes TCP sockets only. The protocol is asked, not left to TCP_ULP: some
 * kernels pass TCP options of an MPTCP or SMC socket on to a TCP socket underneath, which the
 * data would then bypass. The type is not asked: a raw IP socket of protocol TCP also says TCP
 * here, and the kernel refuses TCP_ULP on it (attach_ulp: no offload). */
static bool is_tcp(int fd)
{
	int proto = 0;
	socklen_t l = sizeof(proto);
	return fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0 &&
	       proto == IPPROTO_TCP;
}

/* why: the log's words; code: the same for the API (KTLSSHIM_ERR_*). */
static void decide(struct conn *c, enum dir d, enum owner o, const char *why, int code)
{
	if (c->ks.owner[d] != OWNER_UNDECIDED)
		return;
	c->ks.owner[d] = o;
	c->dir[d].why = why;
	c->dir[d].code = code;
}

static void refuse_both(struct conn *c, const char *why, int code)
{
	decide(c, DIR_TX, OWNER_USER, why, code);
	decide(c, DIR_RX, OWNER_USER, why, code);
}

/* What the configuration (KTLS_SHIM_VERSIONS, KTLS_SHIM_CIPHERS) says of the suite. */
static const char *config_refusal(uint16_t version, const struct suite_info *s)
{
	const struct shim_config *cfg = config_get();
	if ((version == TLS_1_2 && !cfg->tls12) || (version == TLS_1_3 && !cfg->tls13))
		return "version disabled by KTLS_SHIM_VERSIONS";
	if (!(cfg->ciphers & (1u << s->cipher)))
		return "cipher disabled by KTLS_SHIM_CIPHERS";
	return NULL;
}

/* Conditions on the records: NULL when the shim can know and derive this connection's record
 * state, else why not (*code: KTLSSHIM_ERR_*). */
static const char *record_refusal(struct conn *c, const struct suite_info **suite, int *code)
{
	struct conf_facts f = conf_lookup(c->ks.conf);
	uint16_t version = c->ks.version;
	*code = KTLSSHIM_ERR_UNSUPPORTED;
	if (!c->pre)
		return "out of memory";
	if (!c->bio_wrapped) {
		*code = KTLSSHIM_ERR_KERNEL;
		return capture_stopped() ? "kernel has no kTLS" : "no BIO";
	}
	if (f.transport == MBEDTLS_SSL_TRANSPORT_DATAGRAM)
		return "DTLS";
	if (f.renegotiation == MBEDTLS_SSL_RENEGOTIATION_ENABLED)
		return "renegotiation enabled";
	if (version == 0)
		return "no secrets exported";
	/* The parent may hand this socket to the kernel too: two installs could repeat a nonce. */
	*code = KTLSSHIM_ERR_UNPROVEN;
	if (ksock_is_copy(&c->ks))
		return "fork() before the hand-off";
	*code = KTLSSHIM_ERR_UNSUPPORTED;
	*suite = keys_suite((uint16_t)real_adapter()->suite_id(c->ks.ssl));
	if (!*suite || (*suite)->version != version)
		return "suite not supported by kTLS";
	/* 16384, or 16383 in TLS 1.3 where Mbed TLS counts the inner content type: anything less
	 * is a negotiated maximum fragment length the kernel would not respect. */
	if (real_adapter()->max_out_payload(c->ks.ssl) < 16384 - (version == TLS_1_3))
		return "max_fragment_length negotiated";
	*code = KTLSSHIM_ERR_DISABLED;
	return config_refusal(version, *suite);
}

/* Record conditions, plus a socket the shim installs the keys on. */
static const char *connection_refusal(struct conn *c, const struct suite_info **suite, int *code)
{
	const char *bio_why;
	c->ks.fd = capture_bio_fd(c, &bio_why); /* first: the log names the connection whatever the
						    verdict */
	const char *why = record_refusal(c, suite, code);
	if (why)
		return why;
	*code = KTLSSHIM_ERR_NO_SOCKET;
	if (bio_why)
		return bio_why;
	/* Checked last: a kernel without kTLS costs no system call here. */
	if (is_tcp(c->ks.fd))
		return NULL;
	c->ks.fd = -1;
	return c->custom ? BIOPROOF_NOT_TCP : "not a TCP socket";
}

/* TLS 1.3: the secret slots of one direction (a client's TX and a server's RX are the client's). */
static int hs_slot_of(const struct conn *c, enum dir d)
{
	return (d == DIR_TX) != conf_is_server(c->ks.conf) ? SEC_CLIENT_HS : SEC_SERVER_HS;
}

static int app_slot_of(const struct conn *c, enum dir d)
{
	return (d == DIR_TX) != conf_is_server(c->ks.conf) ? SEC_CLIENT_APP : SEC_SERVER_APP;
}

/* The keys Mbed TLS uses in one direction: handshake epoch (1.3) and current application epoch. */
static bool direction_keys(struct conn *c, const struct suite_info *s, enum dir d,
			   struct traffic_keys *hs, struct traffic_keys *app)
{
	const struct conn_pre *pre = c->pre;
	if (s->version == TLS_1_2) {
		bool client_side =
			(d == DIR_TX) != conf_is_server(c->ks.conf); /* the client's write keys */
		struct traffic_keys cw, sw;
		if (keys_tls12_traffic(s, pre->prf_type, pre->master, pre->randoms,
				       pre->randoms + 32, &cw, &sw))
			return false;
		*app = client_side ? cw : sw;
		keys_wipe(&cw, sizeof(cw));
		keys_wipe(&sw, sizeof(sw));
		return true;
	}
	int hs_slot = hs_slot_of(c, d), app_slot = app_slot_of(c, d);
	if (!pre->secret_len[hs_slot] || !pre->secret_len[app_slot])
		return false;
	return keys_tls13_traffic(s, pre->secret[hs_slot], pre->secret_len[hs_slot], hs) == 0 &&
	       keys_tls13_traffic(s, pre->secret[app_slot], pre->secret_len[app_slot], app) == 0;
}

/* The proven kernel parameters of one direction, or why not (*code). p->keys is wiped by the
 * caller. */
static const char *direction_params(struct conn *c, const struct suite_info *s, enum dir d,
				    struct ktls_params *p, int *code)
{
	struct traffic_keys hs = { 0 }, app = { 0 };
	const char *why = NULL;
	*p = (struct ktls_params){ .version = s->version, .cipher = s->cipher };
	*code = KTLSSHIM_ERR_UNPROVEN;
	if (!direction_keys(c, s, d, &hs, &app)) {
		why = "key derivation failed";
	} else {
		enum seq_result r = seq_resolve(&c->pre->seq[d], s, &hs, &app, &p->seq);
		if (r == SEQ_OK)
			p->keys = app;
		else
			why = seq_result_str(r);
	}
	keys_wipe(&hs, sizeof(hs));
	keys_wipe(&app, sizeof(app));
	return why;
}

/* TLS 1.3 RX, once installed: expect unpadded records (zero-copy receive), where the self-test
 * proved this kernel still gives a padded record back exactly (Linux 6.1 does not). Only a hint: a
 * padded record is decrypted a second time, and a kernel without the option keeps copying; the
 * direction is the kernel's either way, so a refusal changes nothing. */
static void expect_no_pad(int fd, enum kcipher c)
{
	int e = config_get()->rx_no_pad && selftest_no_pad_ok(c) ? ktls_rx_no_pad(fd) : 0;
	if (e)
		log_msg(LOG_DEBUG, "fd=%d rx: no zero-copy receive (errno %d)", fd, -e);
}

static void handoff_direction(struct conn *c, const struct suite_info *s, enum dir d)
{
	/* First: does this kernel seal and open this combination right (cached per process)? */
	const char *why = selftest_refusal(s->version, s->cipher, d);
	if (why) {
		decide(c, d, OWNER_USER, why, KTLSSHIM_ERR_KERNEL);
		return;
	}
	struct ktls_params p;
	int code;
	/* Read before the install: a fork() in another thread meanwhile counts as sharing TX. */
	unsigned forks_before = ksock_forks();
	why = direction_params(c, s, d, &p, &code);
	if (!why && ktls_install(c->ks.fd, d, &p)) {
		why = d == DIR_TX ? "kernel refused TLS_TX" : "kernel refused TLS_RX";
		code = KTLSSHIM_ERR_KERNEL;
	}
	if (!why) {
		log_msg(LOG_DEBUG, "fd=%d %s seq=%llu", c->ks.fd, dir_name(d),
			(unsigned long long)p.seq);
		if (d == DIR_RX && s->version == TLS_1_3)
			expect_no_pad(c->ks.fd, s->cipher);
		int slot = app_slot_of(c, d);
		rekey_keep_next(&c->ks, s, d, c->pre->secret[slot], c->pre->secret_len[slot]);
		if (d == DIR_TX) {
			c->ks.tx_records = p.seq;
			c->ks.tx_forks = forks_before;
		}
	}
	keys_wipe(&p, sizeof(p));
	decide(c, d, why ? OWNER_USER : OWNER_KERNEL, why, why ? code : 0);
}

static bool is_idle(const struct conn *c, enum dir d)
{
	if (d == DIR_TX)
		return !c->send_incomplete && !c->write_pending &&
		       rec_at_boundary(&c->pre->seq[d].parser);
	return rec_at_boundary(&c->pre->seq[d].parser) && real.get_bytes_avail(c->ks.ssl) == 0 &&
	       real.check_pending(c->ks.ssl) == 0;
}

static const char *owner_name(enum owner o)
{
	return o == OWNER_KERNEL ? "kernel" : o == OWNER_APP ? "app" : "user";
}

static bool decided(const struct conn *c)
{
	return c->ks.owner[DIR_TX] != OWNER_UNDECIDED && c->ks.owner[DIR_RX] != OWNER_UNDECIDED;
}

/* KTLS_SHIM_STRICT: a connection the configuration wanted in the kernel, and that stays in user
 * space, fails. */
static void strict_verdict(struct conn *c)
{
	const struct shim_config *cfg = config_get();
	const struct conn_dir *tx = &c->dir[DIR_TX], *rx = &c->dir[DIR_RX];
	bool short_of_wish = false;
	for (enum dir d = 0; d < DIR_COUNT; d++)
		short_of_wish |= cfg->dirs[d] && c->ks.owner[d] == OWNER_USER;
	if (!cfg->strict || !short_of_wish)
		return;
	c->strict_failed = true;
	log_msg(LOG_ERROR,
		"fd=%d: KTLS_SHIM_STRICT: not offloaded (tx %s, rx %s); failing the connection",
		c->ks.fd, tx->why ? tx->why : "kernel", rx->why ? rx->why : "kernel");
	io_alert(&c->ks, MBEDTLS_SSL_ALERT_LEVEL_FATAL, MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR);
}

/* Once per connection, when both directions are decided: the log line, the statistics, and
 * KTLS_SHIM_STRICT's verdict. */
static void conclude(struct conn *c)
{
	if (c->logged || !decided(c))
		return;
	c->logged = true;
	const struct conn_dir *tx = &c->dir[DIR_TX], *rx = &c->dir[DIR_RX];
	stats_connection(c->ks.owner[DIR_TX] == OWNER_USER ? tx->why : NULL,
			 c->ks.owner[DIR_RX] == OWNER_USER ? rx->why : NULL);
	strict_verdict(c);
	const char *suite = real_adapter()->suite_name(c->ks.ssl);
	log_msg(LOG_INFO, "fd=%d role=%s version=%s suite=%s tx=%s%s%s%s rx=%s%s%s%s", c->ks.fd,
		conf_is_server(c->ks.conf) ? "server" : "client",
		real_adapter()->version_name(c->ks.ssl), suite ? suite : "?",
		owner_name(c->ks.owner[DIR_TX]), tx->why ? "(" : "", tx->why ? tx->why : "",
		tx->why ? ")" : "", owner_name(c->ks.owner[DIR_RX]), rx->why ? "(" : "",
		rx->why ? rx->why : "", rx->why ? ")" : "");
}

/* Once both directions are decided nothing needs the secrets or the stored records. */
static void settle(struct conn *c)
{
	if (decided(c)) {
		conn_release_pre(c);
		bioproof_release(&c->proof);
	}
	conclude(c);
}

/* A TLS 1.3 client that asked to see tickets gets them from Mbed TLS: they come before the
 * server's first data, so RX waits for that. */
static bool rx_waits_for_tickets(const struct conn *c)
{
	return c->ks.version == TLS_1_3 && !conf_is_server(c->ks.conf) &&
	       conf_lookup(c->ks.conf).signal_tickets && !c->user_data_read;
}

/* The TLS ULP on the socket, once per connection. */
static void attach_ulp(struct conn *c)
{
	if (c->ulp)
		return;
	int err = ktls_attach_ulp(c->ks.fd);
	if (err == -ENOENT)
		capture_stop();
	if (err)
		refuse_both(c, err == -ENOENT ? "kernel has no kTLS" : "TCP_ULP tls refused",
			    KTLSSHIM_ERR_KERNEL);
	c->ulp = err == 0 && ksock_note_socket(&c->ks);
	if (c->ulp && !capture_same_socket(c))
		refuse_both(c, BIOPROOF_TWO_FDS, KTLSSHIM_ERR_NO_SOCKET);
}

/* A custom BIO's direction whose answer to a would-block was not seen on a socket that does not
 * block: asked once more at the app's next read or write (the automatic hand-off), as a program
 * that steps its handshake on a non-blocking socket often makes it blocking right after. */
static bool bio_defer(struct conn *c, enum dir d)
{
	if (c->manual || c->bio_deferred || strcmp(c->bio_dir_why[d], BIOPROOF_UNANSWERED))
		return false;
	c->bio_deferred = true;
	c->defer_forks = ksock_forks();
	return true;
}

/* A fork() since a direction was deferred: the child holds Mbed TLS's state of it (the same key
 * at the same sequence number), so the kernel must not get it here either. */
static void refuse_forked_deferral(struct conn *c)
{
	for (enum dir d = 0; d < DIR_COUNT; d++)
		if (c->bio_deferred && c->ks.owner[d] == OWNER_UNDECIDED &&
		    ksock_forks() != c->defer_forks)
			decide(c, d, OWNER_USER, "fork() before the hand-off",
			       KTLSSHIM_ERR_UNPROVEN);
}

void handoff(struct conn *c, const bool want[DIR_COUNT])
{
	if (!c->handshake_done || decided(c))
		return;
	const struct shim_config *cfg = config_get();
	const struct suite_info *suite = NULL;
	int code;
	const char *why = connection_refusal(c, &suite, &code);
	bool defer[DIR_COUNT] = { false, false };
	if (why) {
		refuse_both(c, why, code);
	} else {
		for (enum dir d = 0; d < DIR_COUNT; d++)
			if (!cfg->dirs[d])
				decide(c, d, OWNER_USER, "KTLS_SHIM_DIRECTIONS",
				       KTLSSHIM_ERR_DISABLED);
			else if (c->bio_dir_why[d] && !(defer[d] = bio_defer(c, d)))
				decide(c, d, OWNER_USER, c->bio_dir_why[d], KTLSSHIM_ERR_NO_SOCKET);
		refuse_forked_deferral(c);
		attach_ulp(c);
		for (int i = 0; i < DIR_COUNT; i++) {
			enum dir d = (enum dir)i;
			if (want[d] && !defer[d] && c->ulp && c->ks.owner[d] == OWNER_UNDECIDED &&
			    !(d == DIR_RX && rx_waits_for_tickets(c)) && is_idle(c, d))
				handoff_direction(c, suite, d);
		}
	}
	settle(c);
}

void handoff_auto(struct conn *c)
{
	static const bool both[DIR_COUNT] = { true, true };
	if (!c->manual)
		handoff(c, both);
}

int handoff_export(struct conn *c, enum dir d, union ktls_kinfo *out, size_t *out_len)
{
	if (c->ks.owner[d] != OWNER_UNDECIDED)
		return KTLSSHIM_ERR_DECIDED;
	if (!c->handshake_done)
		return KTLSSHIM_ERR_HANDSHAKE;
	const struct suite_info *suite = NULL;
	int code;
	if (record_refusal(c, &suite, &code))
		return code;
	if (!is_idle(c, d) || (d == DIR_RX && rx_waits_for_tickets(c)))
		return KTLSSHIM_ERR_BUSY;
	struct ktls_params p;
	const char *why = direction_params(c, suite, d, &p, &code);
	if (!why && ktls_build(&p, out, out_len) != 0) {
		why = "kernel parameters";
		code = KTLSSHIM_ERR_UNSUPPORTED;
	}
	keys_wipe(&p, sizeof(p));
	if (why)
		return code;
	decide(c, d, OWNER_APP, NULL, 0);
	settle(c);
	return KTLSSHIM_OK;
}
