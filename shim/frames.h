/* SPDX-License-Identifier: Apache-2.0 */
/* The contexts each thread is inside a real Mbed TLS call on (interpose.c pushes a frame around
 * each such call): whose call a wrapper sees, and whose keys a context-less export callback
 * carries (frame_export_target, adapter.h). */
#ifndef KTLSSHIM_FRAMES_H
#define KTLSSHIM_FRAMES_H

#include <stdbool.h>
#include <mbedtls/ssl.h>

/* The innermost real call on this thread; each frame lives on the stack of its wrapper. */
struct frame {
	const mbedtls_ssl_context *ssl;
	const struct frame *up;
};
extern __thread const struct frame *frame_top;

/* Whether this thread is inside a real Mbed TLS call on ssl (the chain is as long as the
 * nesting: one or two frames). */
bool frame_in_call(const mbedtls_ssl_context *ssl);

#endif
