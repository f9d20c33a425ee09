/* SPDX-License-Identifier: Apache-2.0 */
/* The per-thread frames of real Mbed TLS calls (frames.h). */
#include "frames.h"

#include "adapter.h"
#include "conn.h"

__thread struct frame frames[FRAMES_MAX];
__thread unsigned frames_depth;
__thread bool frames_jumped;

void frames_prune(const void *here)
{
	while (frames_depth && (frames_depth > FRAMES_MAX ||
				(const char *)frames[frames_depth - 1].at <= (const char *)here))
		frames_depth--;
	if (!frames_depth)
		frames_jumped = false; /* nothing older left to doubt */
}

bool frame_in_call(const mbedtls_ssl_context *ssl)
{
	if (__builtin_expect(frames_jumped, 0))
		frames_prune(__builtin_frame_address(0));
	unsigned n = frames_depth < FRAMES_MAX ? frames_depth : FRAMES_MAX;
	for (unsigned i = 0; i < n; i++)
		if (frames[i].ssl == ssl)
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
	if (!frames_depth || frames_depth > FRAMES_MAX) {
		*why = "keys exported outside any Mbed TLS call the shim saw";
		return NULL;
	}
	struct conn *c = conn_find(frames[frames_depth - 1].ssl);
	if (c && c->ks.conf != conf) {
		*why = "keys exported for a config that is not the calling context's";
		return NULL;
	}
	return c;
}
