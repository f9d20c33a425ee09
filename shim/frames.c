/* SPDX-License-Identifier: Apache-2.0 */
/* The per-thread frames of real Mbed TLS calls (frames.h). */
#include "frames.h"

#include "adapter.h"
#include "conn.h"

__thread const struct frame *frame_top;

bool frame_in_call(const mbedtls_ssl_context *ssl)
{
	for (const struct frame *f = frame_top; f; f = f->up)
		if (f->ssl == ssl)
			return true;
	return false;
}

/* Mbed TLS 2.28 derives a context's keys inside its handshake step, which runs only inside a
 * wrapped call on that context (mbedtls_ssl_handshake, _handshake_step, or read/write doing an
 * implicit handshake; each pushes a frame), on the calling thread. So the innermost frame is the
 * context whose keys these are, unless the application drove a handshake through a function the
 * shim does not wrap; the config check catches a frame that cannot be it. A wrong match would
 * still fail the sequence proof (the keys would not open the peer's record). */
void *frame_export_target(const struct mbedtls_ssl_config *conf, const char **why)
{
	*why = NULL;
	if (!frame_top) {
		*why = "keys exported outside any Mbed TLS call the shim saw";
		return NULL;
	}
	struct conn *c = conn_find(frame_top->ssl);
	if (c && c->conf != conf) {
		*why = "keys exported for a config that is not the calling context's";
		return NULL;
	}
	return c;
}
