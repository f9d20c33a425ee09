/* SPDX-License-Identifier: Apache-2.0 */
/* The real Mbed TLS functions behind the ones the shim interposes, resolved once (RTLD_NEXT). */
#ifndef KTLSSHIM_REAL_H
#define KTLSSHIM_REAL_H

#include <stdbool.h>
#include <mbedtls/ssl.h>

struct real_fns {
	void (*init)(mbedtls_ssl_context *);
	int (*setup)(mbedtls_ssl_context *, const mbedtls_ssl_config *);
	void (*set_bio)(mbedtls_ssl_context *, void *, mbedtls_ssl_send_t *, mbedtls_ssl_recv_t *,
			mbedtls_ssl_recv_timeout_t *);
	void (*set_export_keys_cb)(mbedtls_ssl_context *, mbedtls_ssl_export_keys_t *, void *);
	int (*handshake)(mbedtls_ssl_context *);
	int (*handshake_step)(mbedtls_ssl_context *);
	int (*read)(mbedtls_ssl_context *, unsigned char *, size_t);
	int (*write)(mbedtls_ssl_context *, const unsigned char *, size_t);
	int (*close_notify)(mbedtls_ssl_context *);
	int (*send_alert_message)(mbedtls_ssl_context *, unsigned char, unsigned char);
	size_t (*get_bytes_avail)(const mbedtls_ssl_context *);
	int (*check_pending)(const mbedtls_ssl_context *);
	int (*session_reset)(mbedtls_ssl_context *);
	void (*free)(mbedtls_ssl_context *);
	int (*renegotiate)(mbedtls_ssl_context *);
	void (*config_init)(mbedtls_ssl_config *);
	int (*config_defaults)(mbedtls_ssl_config *, int, int, int);
	void (*config_free)(mbedtls_ssl_config *);
	void (*conf_endpoint)(mbedtls_ssl_config *, int);
	void (*conf_transport)(mbedtls_ssl_config *, int);
	void (*conf_renegotiation)(mbedtls_ssl_config *, int);
	void (*conf_read_timeout)(mbedtls_ssl_config *, uint32_t);
	void (*conf_signal_tickets)(mbedtls_ssl_config *, int);
	/* Not interposed: compared against the app's BIO callbacks to find its socket. */
	mbedtls_ssl_send_t *net_send;
	mbedtls_ssl_recv_t *net_recv;
	mbedtls_ssl_recv_timeout_t *net_recv_timeout;
};

extern struct real_fns real;

/* Resolves every pointer once. False when the running Mbed TLS is not the 3.6 the shim was built
 * for (struct layouts would differ): then the shim only passes calls through. */
bool real_resolve(void);

#endif
