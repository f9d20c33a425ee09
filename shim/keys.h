/* SPDX-License-Identifier: Apache-2.0 */
/* Record key material for the kernel, derived with public Mbed TLS APIs only. Pure: no I/O. */
#ifndef KTLSSHIM_KEYS_H
#define KTLSSHIM_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "cipher.h"

#define KEYS_MAX_SECRET 48 /* SHA-384 */
#define KEYS_MAX_KEY	32
#define KEYS_IV_LEN	CIPHER_NONCE_LEN

/* What a ciphersuite means for the kernel. Whitelisted entries never have KCIPHER_NONE: a suite the
 * kernel cannot take has no entry, and keys_suite returns NULL for it. */
struct suite_info {
	uint16_t id;
	uint16_t version; /* TLS_1_2 or TLS_1_3 */
	enum kcipher cipher;
	int md_type; /* mbedtls_md_type_t of the suite's hash */
};

/* Looks a ciphersuite id up in the whitelist; returns NULL when the kernel cannot carry it. */
const struct suite_info *keys_suite(uint16_t suite_id);

/* One direction's record protection: key and the 12-byte nonce base (TLS 1.3 iv, or TLS 1.2
 * salt in the first 4 bytes for GCM/CCM, or the 12-byte ChaCha iv). */
struct traffic_keys {
	unsigned char key[KEYS_MAX_KEY];
	size_t key_len;
	unsigned char iv[KEYS_IV_LEN];
	size_t iv_len; /* fixed iv length (see cipher_fixed_iv_len) */
};

/* Every function below that returns int: 0 on success, else a negative Mbed TLS error code
 * (MBEDTLS_ERR_SSL_BAD_INPUT_DATA / MBEDTLS_ERR_HKDF_BAD_INPUT_DATA for bad arguments); on failure
 * the outputs are zeroed. md_type must be MBEDTLS_MD_SHA256 or MBEDTLS_MD_SHA384. */

/* HKDF-Expand-Label (RFC 8446 7.1) with an empty (ctx NULL, ctx_len 0) or given context. */
int keys_hkdf_expand_label(int md_type, const unsigned char *secret, size_t secret_len,
			   const char *label, const unsigned char *ctx, size_t ctx_len,
			   unsigned char *out, size_t out_len);

/* TLS 1.3: key and iv from a traffic secret; secret_len must be the suite's hash length. Take the
 * suite from keys_suite: Mbed TLS 3.6's export callback passes MBEDTLS_SSL_TLS_PRF_NONE for
 * TLS 1.3 secrets, so its prf type says nothing about the hash there. */
int keys_tls13_traffic(const struct suite_info *s, const unsigned char *secret, size_t secret_len,
		       struct traffic_keys *out);

/* TLS 1.3: the next application traffic secret ("traffic upd"), in place; unchanged on error. */
int keys_tls13_next_secret(int md_type, unsigned char *secret, size_t secret_len);

/* TLS 1.2 (AEAD suites): the key block from the master secret through the PRF; fills the client's
 * and the server's write keys. prf_type is the mbedtls_tls_prf_types the export callback gave; it
 * must match the suite's hash (a mismatch means the suite was misidentified, and is refused). */
int keys_tls12_traffic(const struct suite_info *s, int prf_type, const unsigned char master[48],
		       const unsigned char client_random[32], const unsigned char server_random[32],
		       struct traffic_keys *client_write, struct traffic_keys *server_write);

/* Zeroize with a barrier the compiler cannot remove. */
void keys_wipe(void *p, size_t n);

#endif
