/* SPDX-License-Identifier: Apache-2.0 */
/* ktlsshim: kernel TLS for Mbed TLS 3.6 and 2.28 connections (2.28: TLS 1.2).
 *
 * Preloaded (LD_PRELOAD=libktlsshim.so), the library hands every eligible connection to the kernel
 * by itself. Linked (`pkg-config --libs ktlsshim`, placed before Mbed TLS on the link line so that
 * its wrappers see the handshake), this API also lets an application ask what the kernel carries,
 * hand a connection off at a moment it chooses, or take the kernel parameters of a direction and
 * install kTLS itself (io_uring, its own socket layer). No Mbed TLS internals are involved. */
#ifndef KTLSSHIM_H
#define KTLSSHIM_H

#include <stddef.h>
#include <linux/tls.h>
#include <mbedtls/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KTLSSHIM_TX 1
#define KTLSSHIM_RX 2

#define KTLSSHIM_OK		     0
#define KTLSSHIM_ERR_UNKNOWN_CONTEXT (-1) /* not set up while the shim was loaded */
#define KTLSSHIM_ERR_HANDSHAKE	     (-2) /* the handshake is not over yet */
#define KTLSSHIM_ERR_BUSY	     (-3) /* Mbed TLS still holds data of that direction: retry later */
#define KTLSSHIM_ERR_UNSUPPORTED     (-4) /* version, suite, DTLS, renegotiation, fragment length */
#define KTLSSHIM_ERR_NO_SOCKET	     (-5) /* the BIO is not a TCP socket the shim can prove */
#define KTLSSHIM_ERR_KERNEL \
	(-6) /* the kernel refused (no kTLS, cipher missing) or failed its self-test */
#define KTLSSHIM_ERR_UNPROVEN  (-7) /* the sequence number could not be proven */
#define KTLSSHIM_ERR_DECIDED   (-8) /* that direction already stays in user space or was exported */
#define KTLSSHIM_ERR_BAD_INPUT (-9)
#define KTLSSHIM_ERR_DISABLED  (-10) /* KTLS_SHIM_DISABLE, settings, or not Mbed TLS 3.6/2.28 */

/* A message for a KTLSSHIM_ERR_* code. */
const char *ktlsshim_strerror(int err);

/* Stops the automatic hand-off for this context (call it after mbedtls_ssl_setup): the shim
 * then moves a direction only when ktlsshim_offload or ktlsshim_export asks. */
int ktlsshim_set_manual(mbedtls_ssl_context *ssl);

/* Which directions the kernel carries for this context: a mask of KTLSSHIM_TX and KTLSSHIM_RX
 * (exported directions not included), or a negative KTLSSHIM_ERR_* code. */
int ktlsshim_offloaded(const mbedtls_ssl_context *ssl);

/* Moves the asked directions (mask) to the kernel now, when that is provably safe. Returns
 * KTLSSHIM_OK when every asked direction is in the kernel, else why the first one is not. Call it
 * from the thread that uses the context, not from inside an Mbed TLS callback. */
int ktlsshim_offload(mbedtls_ssl_context *ssl, int dirs);

/* The kernel's crypto_info for one direction, ready for
 * setsockopt(fd, SOL_TLS, dir == KTLSSHIM_TX ? TLS_TX : TLS_RX, &ci.u, ci.len). */
struct ktlsshim_crypto_info {
	union {
		struct tls_crypto_info info; /* version and cipher_type */
		struct tls12_crypto_info_aes_gcm_128 aes_gcm_128;
		struct tls12_crypto_info_aes_gcm_256 aes_gcm_256;
		struct tls12_crypto_info_aes_ccm_128 aes_ccm_128;
		struct tls12_crypto_info_chacha20_poly1305 chacha20_poly1305;
	} u;
	size_t len;
};

/* Exports one direction (KTLSSHIM_TX or KTLSSHIM_RX) for the application to install itself.
 * From then on that direction belongs to the application: the shim never offloads it, and Mbed
 * TLS is stopped from using it (mbedtls_ssl_read/write on it return
 * MBEDTLS_ERR_SSL_BAD_INPUT_DATA), because its own sequence number would be stale. The key is
 * written only into *out; wipe it (mbedtls_platform_zeroize) once the kernel has it. */
int ktlsshim_export(mbedtls_ssl_context *ssl, int dir, struct ktlsshim_crypto_info *out);

/* A debugging aid for tests and audits: how many copies of these bytes (len >= 4) the shim's
 * state holds, over every connection it tracks (the per-connection state, its buffers and stored
 * records). Once a connection's directions are decided, each secret, key and IV Mbed TLS exported
 * or the shim derived for it must count 0. */
size_t ktlsshim_debug_count(const void *bytes, size_t len);

#ifdef __cplusplus
}
#endif

#endif
