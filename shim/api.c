/* SPDX-License-Identifier: Apache-2.0 */
/* The public API of include/ktlsshim.h, over the same per-context state the interposition uses. */
#include "ktlsshim.h"

#include <string.h>

#include "config.h"
#include "conn.h"
#include "handoff.h"
#include "keys.h"
#include "real.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT const char *ktlsshim_strerror(int err)
{
	switch (err) {
	case KTLSSHIM_OK: return "ok";
	case KTLSSHIM_ERR_UNKNOWN_CONTEXT: return "context not set up while the shim was loaded";
	case KTLSSHIM_ERR_HANDSHAKE: return "handshake not over";
	case KTLSSHIM_ERR_BUSY:
		return "Mbed TLS still holds data of that direction; try again later";
	case KTLSSHIM_ERR_UNSUPPORTED:
		return "connection not supported by kTLS (version, suite, DTLS, renegotiation, "
		       "fragment length)";
	case KTLSSHIM_ERR_NO_SOCKET: return "BIO is not a TCP socket the shim can prove";
	case KTLSSHIM_ERR_KERNEL:
		return "the kernel refused (no kTLS, or cipher not available) or failed the "
		       "self-test";
	case KTLSSHIM_ERR_UNPROVEN: return "sequence number could not be proven";
	case KTLSSHIM_ERR_DECIDED: return "direction already stays in user space or was exported";
	case KTLSSHIM_ERR_BAD_INPUT: return "bad input";
	case KTLSSHIM_ERR_DISABLED:
		return "disabled (KTLS_SHIM_* settings, or not Mbed TLS 3.6 or 2.28)";
	}
	return "unknown error";
}

/* The context's state, or the API error that explains its absence. */
static struct conn *lookup(const mbedtls_ssl_context *ssl, int *err)
{
	*err = KTLSSHIM_ERR_BAD_INPUT;
	if (!ssl)
		return NULL;
	*err = KTLSSHIM_ERR_DISABLED;
	if (config_get()->disable || !real_resolve())
		return NULL;
	struct conn *c = conn_find(ssl);
	*err = c ? KTLSSHIM_OK : KTLSSHIM_ERR_UNKNOWN_CONTEXT;
	return c;
}

EXPORT int ktlsshim_set_manual(mbedtls_ssl_context *ssl)
{
	int err;
	struct conn *c = lookup(ssl, &err);
	if (c)
		c->manual = true;
	return err;
}

EXPORT int ktlsshim_offloaded(const mbedtls_ssl_context *ssl)
{
	int err;
	struct conn *c = lookup(ssl, &err);
	if (!c)
		return err;
	return (c->ks.owner[DIR_TX] == OWNER_KERNEL ? KTLSSHIM_TX : 0) |
	       (c->ks.owner[DIR_RX] == OWNER_KERNEL ? KTLSSHIM_RX : 0);
}

/* The API's answer for one direction after a hand-off. */
static int direction_result(const struct conn *c, enum dir d)
{
	switch (c->ks.owner[d]) {
	case OWNER_KERNEL: return KTLSSHIM_OK;
	case OWNER_UNDECIDED: return KTLSSHIM_ERR_BUSY;
	case OWNER_APP: return KTLSSHIM_ERR_DECIDED;
	case OWNER_USER: break;
	}
	return c->dir[d].code;
}

EXPORT int ktlsshim_offload(mbedtls_ssl_context *ssl, int dirs)
{
	int err;
	struct conn *c = lookup(ssl, &err);
	if (!c)
		return err;
	if (!dirs || (dirs & ~(KTLSSHIM_TX | KTLSSHIM_RX)))
		return KTLSSHIM_ERR_BAD_INPUT;
	if (!c->handshake_done)
		return KTLSSHIM_ERR_HANDSHAKE;
	const bool want[DIR_COUNT] = {
		[DIR_TX] = dirs & KTLSSHIM_TX, [DIR_RX] = dirs & KTLSSHIM_RX
	};
	handoff(c, want);
	if (want[DIR_TX] && (err = direction_result(c, DIR_TX)))
		return err;
	return want[DIR_RX] ? direction_result(c, DIR_RX) : KTLSSHIM_OK;
}

EXPORT int ktlsshim_export(mbedtls_ssl_context *ssl, int dir, struct ktlsshim_crypto_info *out)
{
	int err;
	struct conn *c = lookup(ssl, &err);
	if (!c)
		return err;
	if (!out || (dir != KTLSSHIM_TX && dir != KTLSSHIM_RX))
		return KTLSSHIM_ERR_BAD_INPUT;
	union ktls_kinfo u;
	size_t len = 0;
	err = handoff_export(c, dir == KTLSSHIM_TX ? DIR_TX : DIR_RX, &u, &len);
	if (err == KTLSSHIM_OK) {
		_Static_assert(sizeof(out->u) == sizeof(u),
			       "the public union mirrors the kernel's");
		memcpy(&out->u, &u, sizeof(u));
		out->len = len;
	}
	keys_wipe(&u, sizeof(u));
	return err;
}

EXPORT size_t ktlsshim_debug_count(const void *bytes, size_t len)
{
	return bytes && len >= 4 ? conn_debug_count(bytes, len) : 0;
}
