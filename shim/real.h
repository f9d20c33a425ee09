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

#include <link.h>
#include <stdatomic.h>
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
	int (*get_max_out_record_payload)(const mbedtls_ssl_context *);
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
/* Several Mbed TLS copies (issue 12): true once the loaded libmbedtls/libmbedcrypto objects are
 * more than the one `real` was bound to (two at start, a plugin's copy loaded later, or one loaded
 * after a first call found none). Never cleared. From then on no new connection is taken over,
 * and each pass-through call goes to the copy its caller binds to (real_for_caller). */
extern atomic_bool real_many;
/* Looks for Mbed TLS objects loaded since the last look and sets real_many (one lock and one
 * loader callback when nothing was loaded). Called where a context or a config starts, which
 * every copy's user does before anything else. */
void real_note_loads(void);
/* The real functions for a call whose return address is ret, once real_many is set: those the
 * caller's object binds to without the shim (its own dependency scope: a plugin's libmbedtls; a
 * libmbedtls's internal calls, itself), else the first copy's (`real`). shim/caller.c. */
const struct real_fns *real_for_caller(const void *ret);

/* For caller.c: fills f with each wrapped function from dlopen handle first (NULL: none), else
 * from then (RTLD_NEXT or NULL), else its stub. */
void real_fill(struct real_fns *f, void *first, void *then);
/* dl_iterate_phdr under the lock fork() takes first. */
void real_walk(int (*cb)(struct dl_phdr_info *info, size_t size, void *arg), void *arg);

#endif
