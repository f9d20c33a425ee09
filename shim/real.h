/* SPDX-License-Identifier: Apache-2.0 */
/* The process's own Mbed TLS, found at run time: the library links none (docs/design.md, "The
 * adapter seam").
 *
 * real: the library's functions behind the ones the shim interposes, for passing calls through.
 * Their signatures are the same in every Mbed TLS that has them (contexts go by pointer), so they
 * serve any version; one a version lacks is a stub that fails cleanly, never NULL.
 *
 * struct mbed_adapter (adapter.h): everything else the core needs from Mbed TLS, for one ABI,
 * compiled against that version's own headers. */
#ifndef KTLSSHIM_REAL_H
#define KTLSSHIM_REAL_H

#include <stdbool.h>
#include <mbedtls/ssl.h>

#include "adapter.h"

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
	/* 2.x only (3.6 has none): their callback types are 2.x's, passed through untouched. */
	void (*conf_export_keys_cb)(mbedtls_ssl_config *, void (*)(void), void *);
	void (*conf_export_keys_ext_cb)(mbedtls_ssl_config *, void (*)(void), void *);
	/* Not interposed: compared against the app's BIO callbacks to find its socket (NULL when
	 * the process has none). */
	mbedtls_ssl_send_t *net_send;
	mbedtls_ssl_recv_t *net_recv;
	mbedtls_ssl_recv_timeout_t *net_recv_timeout;
};

extern struct real_fns real;

/* Finds the process's Mbed TLS on the first call (thread-safe; later calls cost a pthread_once).
 * True when its version has an adapter and the shim may act; false: pure pass-through, said once
 * at info level. The real functions are set either way. */
bool real_resolve(void);
/* The adapter real_resolve chose, or NULL. */
const struct mbed_adapter *real_adapter(void);
/* For a new connection only: false once a second Mbed TLS copy has been loaded since (a plugin
 * dlopen()ed later), when no new connection may be taken over. Cheap while nothing is loaded. */
bool real_one_copy(void);

#endif
