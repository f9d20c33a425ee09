/* SPDX-License-Identifier: Apache-2.0 */
/* The ciphers kTLS carries: one table row each, read by keys, ktls, seq, config and selftest.
 * Mbed TLS's own cipher ids stay in the adapters (shim/mbed36.c), the suite ids in keys.c. Pure. */
#ifndef KTLSSHIM_CIPHER_H
#define KTLSSHIM_CIPHER_H

#include <stddef.h>
#include <stdint.h>

#include "tlsver.h"

enum kcipher {
	KCIPHER_NONE = 0,
	KCIPHER_AES_GCM_128,
	KCIPHER_AES_GCM_256,
	KCIPHER_AES_CCM_128,
	KCIPHER_CHACHA20_POLY1305,
};
/* One past the last cipher: arrays indexed by enum kcipher have this many entries. */
#define KCIPHER_COUNT (KCIPHER_CHACHA20_POLY1305 + 1)
#define KCIPHER_FIRST KCIPHER_AES_GCM_128

/* Every AEAD kTLS carries has a 12-byte nonce: fixed part (salt, or the whole iv) + explicit part. */
#define CIPHER_NONCE_LEN 12

/* The kernel's crypto_info for a cipher (struct tls12_crypto_info_*): its size, and where each
 * field sits and how long it is. The nonce base Mbed TLS derives is salt || iv (12 bytes). */
struct cipher_desc {
	const char *name;     /* as the log and KTLS_SHIM_CIPHERS spell it */
	uint16_t kernel_type; /* TLS_CIPHER_* */
	uint8_t key_len, salt_len, iv_len, tag_len, rec_seq_len;
	uint8_t tls12_fixed_iv; /* implicit nonce bytes in TLS 1.2; TLS 1.3 always has 12 */
	uint16_t info_size;
	uint16_t key_off, salt_off, iv_off, rec_seq_off;
};

/* The row of c, or NULL for KCIPHER_NONE and anything out of range. */
const struct cipher_desc *cipher_get(enum kcipher c);
/* The cipher whose kernel type is type, or KCIPHER_NONE. */
enum kcipher cipher_by_kernel_type(unsigned type);
/* "AES-128-GCM" ...; "none" for a value with no row. */
const char *cipher_name(enum kcipher c);
/* Key length, 0 for a value with no row. */
size_t cipher_key_len(enum kcipher c);
/* Length of the implicit (fixed) IV: 4 for GCM/CCM in TLS 1.2, 12 for ChaCha and for TLS 1.3;
 * 0 for a cipher or version kTLS does not carry. */
size_t cipher_fixed_iv_len(enum kcipher c, uint16_t version);
/* Bytes of nonce each record carries in clear before its ciphertext: 8 for GCM/CCM in TLS 1.2,
 * else 0 (RFC 5288, RFC 6655; ChaCha RFC 7905 and TLS 1.3 have none). */
size_t cipher_explicit_nonce_len(enum kcipher c, uint16_t version);

#endif
