/* SPDX-License-Identifier: Apache-2.0 */
#include "real.h"

#include <dlfcn.h>
#include <pthread.h>
#include <mbedtls/version.h>

#include "log.h"

struct real_fns real;
static bool usable;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* RTLD_NEXT: the definition after ours in the lookup order, i.e. Mbed TLS's own. */
#define NEXT(field, name) (*(void **)&real.field = dlsym(RTLD_NEXT, name))

static void resolve(void)
{
	bool all = NEXT(init, "mbedtls_ssl_init") && NEXT(setup, "mbedtls_ssl_setup") &&
		   NEXT(set_bio, "mbedtls_ssl_set_bio") &&
		   NEXT(set_export_keys_cb, "mbedtls_ssl_set_export_keys_cb") &&
		   NEXT(handshake, "mbedtls_ssl_handshake") &&
		   NEXT(handshake_step, "mbedtls_ssl_handshake_step") &&
		   NEXT(read, "mbedtls_ssl_read") && NEXT(write, "mbedtls_ssl_write") &&
		   NEXT(close_notify, "mbedtls_ssl_close_notify") &&
		   NEXT(send_alert_message, "mbedtls_ssl_send_alert_message") &&
		   NEXT(get_bytes_avail, "mbedtls_ssl_get_bytes_avail") &&
		   NEXT(check_pending, "mbedtls_ssl_check_pending") &&
		   NEXT(session_reset, "mbedtls_ssl_session_reset") && NEXT(free, "mbedtls_ssl_free") &&
		   NEXT(renegotiate, "mbedtls_ssl_renegotiate") &&
		   NEXT(config_init, "mbedtls_ssl_config_init") &&
		   NEXT(config_defaults, "mbedtls_ssl_config_defaults") &&
		   NEXT(config_free, "mbedtls_ssl_config_free") &&
		   NEXT(conf_endpoint, "mbedtls_ssl_conf_endpoint") &&
		   NEXT(conf_transport, "mbedtls_ssl_conf_transport") &&
		   NEXT(conf_renegotiation, "mbedtls_ssl_conf_renegotiation") &&
		   NEXT(conf_read_timeout, "mbedtls_ssl_conf_read_timeout") &&
		   NEXT(conf_signal_tickets, "mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets");
	/* RTLD_DEFAULT: the same canonical address the application took of these functions. */
	*(void **)&real.net_send = dlsym(RTLD_DEFAULT, "mbedtls_net_send");
	*(void **)&real.net_recv = dlsym(RTLD_DEFAULT, "mbedtls_net_recv");
	*(void **)&real.net_recv_timeout = dlsym(RTLD_DEFAULT, "mbedtls_net_recv_timeout");
	if (!all) {
		log_msg(LOG_ERROR, "Mbed TLS 3.6 symbols not found: passing every call through");
		return;
	}
	/* The shim reads public struct fields and sizes compiled from 3.6 headers. */
	unsigned running = mbedtls_version_get_number();
	if ((running >> 16) != (MBEDTLS_VERSION_NUMBER >> 16)) {
		log_msg(LOG_ERROR, "running Mbed TLS %u.%u, built for %u.%u: passing every call through",
			running >> 24, (running >> 16) & 0xff, MBEDTLS_VERSION_MAJOR, MBEDTLS_VERSION_MINOR);
		return;
	}
	usable = true;
}

bool real_resolve(void)
{
	pthread_once(&once, resolve);
	return usable;
}
