/* SPDX-License-Identifier: Apache-2.0 */
/* The interposed Mbed TLS symbols: with the API and fdwatch.c's libc calls, all the library exports.
 *
 * Mbed TLS calls its own exported functions through the PLT, so these wrappers also see the calls
 * it makes to itself (the implicit handshake inside read and write, alerts inside read). Each
 * thread keeps the contexts it is inside a real Mbed TLS call on: a call on one of those is Mbed
 * TLS's own, a call on any other context is the application's, even from inside a callback (TLS
 * inside TLS: the inner connection's BIO reads and writes the outer one). A direction moves to
 * the kernel only at the top level of ITS context, never in the middle of a library call on it. */
#include <mbedtls/ssl.h>

#include "capture.h"
#include "conf.h"
#include "config.h"
#include "conn.h"
#include "frames.h"
#include "handoff.h"
#include "io.h"
#include "real.h"
#include "recv.h"

#define EXPORT __attribute__((visibility("default")))

/* Whether the kernel owns direction d of c (c may be NULL). */
static bool kernel_owns(const struct conn *c, enum dir d)
{
	return c && c->ks.owner[d] == OWNER_KERNEL;
}

/* The context's state when the shim is active for it, else NULL (pure pass-through). */
static struct conn *active(const mbedtls_ssl_context *ssl)
{
	if (!real_resolve() || config_get()->disable)
		return NULL;
	return conn_find(ssl);
}

/* A context not known yet is taken over only while the process has one Mbed TLS. */
static struct conn *active_or_new(mbedtls_ssl_context *ssl)
{
	if (!real_resolve() || config_get()->disable)
		return NULL;
	struct conn *c = conn_find(ssl);
	return c || atomic_load(&real_many) ? c : conn_get(ssl);
}

/* The real function for the wrapper's caller. Expands only in an exported wrapper, for its own
 * return address. One byte load while the process has one Mbed TLS copy (real.h: real_many). */
#define REAL(field)                                                                  \
	(__builtin_expect(atomic_load_explicit(&real_many, memory_order_relaxed), 0) \
		 ? real_for_caller(__builtin_return_address(0))->field               \
		 : real.field)

/* A real call on ssl, known as such to the wrappers it reaches. */
#define NESTED(ssl_, call)                                                \
	__extension__({                                                   \
		unsigned d_ __attribute__((cleanup(frames_leave))) =      \
			frames_enter((ssl_), __builtin_frame_address(0)); \
		__auto_type r_ = (call);                                  \
		(void)d_;                                                 \
		r_;                                                       \
	})

/* Runs the handshake the way mbedtls_ssl_read/write would, so that the hand-off can happen
 * before the first record of data, at top level. */
static int finish_handshake(struct conn *c)
{
	/* real, not REAL(): this is no exported wrapper, and c was made while the process had one
	 * Mbed TLS copy, real's. */
	int ret = NESTED(c->ks.ssl, real.handshake(c->ks.ssl));
	if (ret == 0) {
		handoff_handshake_done(c);
		handoff_auto(c);
	}
	return c->strict_failed ? MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE : ret;
}

enum serve { SERVE_MBEDTLS, SERVE_KERNEL, SERVE_ERROR };

/* The start of the application's read or write: finish the handshake as Mbed TLS would, try the
 * hand-off, then say who serves the call, or SERVE_ERROR with the Mbed TLS error in *err. */
static enum serve route_call(struct conn *c, enum dir d, int *err)
{
	if (!c->handshake_done && (*err = finish_handshake(c)))
		return SERVE_ERROR;
	handoff_auto(c);
	*err = c->strict_failed ? MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE
	       : c->ks.owner[d] == OWNER_APP
		       ? MBEDTLS_ERR_SSL_BAD_INPUT_DATA /* the app owns it now */
		       : 0;
	if (*err)
		return SERVE_ERROR;
	return c->ks.owner[d] == OWNER_KERNEL ? SERVE_KERNEL : SERVE_MBEDTLS;
}

EXPORT void mbedtls_ssl_init(mbedtls_ssl_context *ssl)
{
	real_resolve();
	real_note_loads(); /* a copy's user starts here: its calls must reach it from now on */
	conn_drop(ssl);	   /* a context at a reused address starts clean */
	REAL(init)(ssl);
}

EXPORT int mbedtls_ssl_setup(mbedtls_ssl_context *ssl, const mbedtls_ssl_config *conf)
{
	real_resolve();
	real_note_loads();
	int ret = REAL(setup)(ssl, conf);
	struct conn *c = ret == 0 ? active_or_new(ssl) : NULL;
	if (c) {
		c->ks.conf = conf;
		capture_set_export_cb(c, c->app_export, c->app_export_p);
	}
	return ret;
}

EXPORT void mbedtls_ssl_set_bio(mbedtls_ssl_context *ssl, void *p_bio, mbedtls_ssl_send_t *f_send,
				mbedtls_ssl_recv_t *f_recv,
				mbedtls_ssl_recv_timeout_t *f_recv_timeout)
{
	real_resolve();
	struct conn *c = active_or_new(ssl);
	if (c)
		capture_set_bio(c, p_bio, f_send, f_recv, f_recv_timeout);
	else
		REAL(set_bio)(ssl, p_bio, f_send, f_recv, f_recv_timeout);
}

EXPORT void mbedtls_ssl_set_export_keys_cb(mbedtls_ssl_context *ssl, mbedtls_ssl_export_keys_t *f,
					   void *p)
{
	real_resolve();
	struct conn *c = active_or_new(ssl);
	if (c)
		capture_set_export_cb(c, f, p);
	else
		REAL(set_export_keys_cb)(ssl, f, p);
}

EXPORT int mbedtls_ssl_handshake(mbedtls_ssl_context *ssl)
{
	struct conn *c = active(ssl);
	if (!c)
		return NESTED(ssl, REAL(handshake)(ssl));
	if (frame_in_call(ssl)) {
		/* Inside read/write: the library goes on with the records itself. */
		int ret = NESTED(ssl, REAL(handshake)(ssl));
		if (ret == 0)
			handoff_handshake_done(c);
		return ret;
	}
	return finish_handshake(c);
}

EXPORT int mbedtls_ssl_handshake_step(mbedtls_ssl_context *ssl)
{
	real_resolve();
	return NESTED(ssl, REAL(handshake_step)(ssl));
}

EXPORT int mbedtls_ssl_read(mbedtls_ssl_context *ssl, unsigned char *buf, size_t len)
{
	struct conn *c = frame_in_call(ssl) ? NULL : active(ssl);
	if (c) {
		int err;
		enum serve by = route_call(c, DIR_RX, &err);
		if (by != SERVE_MBEDTLS)
			return by == SERVE_KERNEL ? recv_read(&c->ks, buf, len) : err;
	}
	int ret = NESTED(ssl, REAL(read)(ssl, buf, len));
	if (c) {
		c->write_pending = ret == MBEDTLS_ERR_SSL_WANT_WRITE;
		c->user_data_read |= ret > 0;
	}
	return ret;
}

EXPORT int mbedtls_ssl_write(mbedtls_ssl_context *ssl, const unsigned char *buf, size_t len)
{
	struct conn *c = frame_in_call(ssl) ? NULL : active(ssl);
	if (c) {
		int err;
		enum serve by = route_call(c, DIR_TX, &err);
		if (by != SERVE_MBEDTLS)
			return by == SERVE_KERNEL ? io_write(&c->ks, buf, len) : err;
	}
	int ret = NESTED(ssl, REAL(write)(ssl, buf, len));
	if (c)
		c->write_pending = ret == MBEDTLS_ERR_SSL_WANT_WRITE;
	return ret;
}

EXPORT int mbedtls_ssl_close_notify(mbedtls_ssl_context *ssl)
{
	struct conn *c = active(ssl);
	if (kernel_owns(c, DIR_TX))
		return io_send_alert(&c->ks, MBEDTLS_SSL_ALERT_LEVEL_WARNING,
				     MBEDTLS_SSL_ALERT_MSG_CLOSE_NOTIFY);
	int ret = NESTED(ssl, REAL(close_notify)(ssl));
	if (c && !frame_in_call(ssl))
		c->write_pending = ret == MBEDTLS_ERR_SSL_WANT_WRITE;
	return ret;
}

EXPORT int mbedtls_ssl_send_alert_message(mbedtls_ssl_context *ssl, unsigned char level,
					  unsigned char message)
{
	struct conn *c = active(ssl);
	if (kernel_owns(c, DIR_TX))
		return io_send_alert(&c->ks, level, message);
	return NESTED(ssl, REAL(send_alert_message)(ssl, level, message));
}

EXPORT size_t mbedtls_ssl_get_bytes_avail(const mbedtls_ssl_context *ssl)
{
	struct conn *c = active(ssl);
	return kernel_owns(c, DIR_RX) ? recv_bytes_avail(&c->ks) : REAL(get_bytes_avail)(ssl);
}

EXPORT int mbedtls_ssl_check_pending(const mbedtls_ssl_context *ssl)
{
	struct conn *c = active(ssl);
	return kernel_owns(c, DIR_RX) ? recv_bytes_avail(&c->ks) > 0 : REAL(check_pending)(ssl);
}

/* With TX in the kernel a write may hold a whole kernel record, 16 384 bytes in TLS 1.3 too (Mbed
 * TLS counts the inner content type in its own buffer: 16 383). A daemon that cuts its writes to
 * this answer (lighttpd) then sends whole records, not one of 16 383 bytes and one of 1. */
EXPORT int mbedtls_ssl_get_max_out_record_payload(const mbedtls_ssl_context *ssl)
{
	struct conn *c = frame_in_call(ssl) ? NULL : active(ssl);
	return kernel_owns(c, DIR_TX) ? IO_RECORD_PAYLOAD : REAL(get_max_out_record_payload)(ssl);
}

EXPORT int mbedtls_ssl_session_reset(mbedtls_ssl_context *ssl)
{
	real_resolve();
	int ret = NESTED(ssl, REAL(session_reset)(ssl));
	struct conn *c = active(ssl);
	if (c)
		conn_reset(c);
	return ret;
}

EXPORT void mbedtls_ssl_free(mbedtls_ssl_context *ssl)
{
	real_resolve();
	conn_drop(ssl);
	REAL(free)(ssl);
}

EXPORT int mbedtls_ssl_renegotiate(mbedtls_ssl_context *ssl)
{
	struct conn *c = active(ssl);
	if (kernel_owns(c, DIR_TX) || kernel_owns(c, DIR_RX))
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA; /* the kernel cannot give the records back */
	return NESTED(ssl, REAL(renegotiate)(ssl));
}

/* What an adapter keeps for a config goes with it. */
static void adapter_conf_forget(const mbedtls_ssl_config *conf)
{
	const struct mbed_adapter *a = real_adapter();
	if (a && a->conf_forget)
		a->conf_forget(conf);
}

EXPORT void mbedtls_ssl_config_init(mbedtls_ssl_config *conf)
{
	real_resolve();
	real_note_loads();
	conf_forget(conf);
	adapter_conf_forget(conf);
	REAL(config_init)(conf);
}

EXPORT void mbedtls_ssl_config_free(mbedtls_ssl_config *conf)
{
	real_resolve();
	conf_forget(conf);
	adapter_conf_forget(conf);
	REAL(config_free)(conf);
}

EXPORT int mbedtls_ssl_config_defaults(mbedtls_ssl_config *conf, int endpoint, int transport,
				       int preset)
{
	real_resolve();
	/* Mbed TLS resets ticket signalling here without going through the setter. */
	conf_note_signal_tickets(conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_DISABLED);
	return REAL(config_defaults)(conf, endpoint, transport, preset);
}

EXPORT void mbedtls_ssl_conf_endpoint(mbedtls_ssl_config *conf, int endpoint)
{
	real_resolve();
	conf_note_endpoint(conf, endpoint);
	REAL(conf_endpoint)(conf, endpoint);
}

EXPORT void mbedtls_ssl_conf_transport(mbedtls_ssl_config *conf, int transport)
{
	real_resolve();
	conf_note_transport(conf, transport);
	REAL(conf_transport)(conf, transport);
}

EXPORT void mbedtls_ssl_conf_renegotiation(mbedtls_ssl_config *conf, int renegotiation)
{
	real_resolve();
	conf_note_renegotiation(conf, renegotiation);
	REAL(conf_renegotiation)(conf, renegotiation);
}

EXPORT void mbedtls_ssl_conf_read_timeout(mbedtls_ssl_config *conf, uint32_t timeout)
{
	real_resolve();
	conf_note_read_timeout(conf, timeout);
	REAL(conf_read_timeout)(conf, timeout);
}

EXPORT void mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(mbedtls_ssl_config *conf,
								     int signal)
{
	real_resolve();
	conf_note_signal_tickets(conf, signal);
	REAL(conf_signal_tickets)(conf, signal);
}

/* Mbed TLS 2.x sets key export on the config (3.6 has neither setter, so in a 3.6 process these
 * are never called). f is 2.x's callback type, opaque here: the adapter keeps it and chains it
 * from its own callback (shim/mbed228.c). With several copies the config may be another copy's:
 * it goes to the caller's copy untouched (fwd, taken in the exported wrapper). */
typedef void conf_export_fn(mbedtls_ssl_config *conf, void (*f)(void), void *p);

static void conf_export(mbedtls_ssl_config *conf, bool ext, void (*f)(void), void *p,
			conf_export_fn *fwd)
{
	bool usable = real_resolve() && !config_get()->disable;
	const struct mbed_adapter *a = usable ? real_adapter() : NULL;
	/* With several copies no new config is hooked, but one hooked before keeps the shim's
	 * callback with the shim's p: the app's callback must go to the adapter's record too. */
	if (!(a && a->conf_export_keys_cb &&
	      a->conf_export_keys_cb(conf, ext, f, p, !atomic_load(&real_many))))
		fwd(conf, f, p);
}

EXPORT void mbedtls_ssl_conf_export_keys_cb(mbedtls_ssl_config *conf, void (*f)(void), void *p)
{
	conf_export(conf, false, f, p, REAL(conf_export_keys_cb));
}

EXPORT void mbedtls_ssl_conf_export_keys_ext_cb(mbedtls_ssl_config *conf, void (*f)(void), void *p)
{
	conf_export(conf, true, f, p, REAL(conf_export_keys_ext_cb));
}
