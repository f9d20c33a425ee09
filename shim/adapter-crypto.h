/* SPDX-License-Identifier: Apache-2.0 */
/* The crypto every adapter needs (TLS 1.2 PRF, HKDF-Expand, one AEAD record operation), written
 * once and compiled into each adapter file against that file's own Mbed TLS headers: struct sizes
 * (the cipher context on the stack) and enum values are that version's. Include it after them. */
#ifndef KTLSSHIM_ADAPTER_CRYPTO_H
#define KTLSSHIM_ADAPTER_CRYPTO_H

#include <mbedtls/cipher.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/ssl.h>

#include "adapter.h"

static __typeof__(mbedtls_ssl_tls_prf) *tls_prf_fn;
static __typeof__(mbedtls_md_info_from_type) *md_info_fn;
static __typeof__(mbedtls_hkdf_expand) *hkdf_expand_fn;
static __typeof__(mbedtls_cipher_info_from_type) *cipher_info_fn;
static __typeof__(mbedtls_cipher_init) *cipher_init_fn;
static __typeof__(mbedtls_cipher_setup) *cipher_setup_fn;
static __typeof__(mbedtls_cipher_setkey) *cipher_setkey_fn;
static __typeof__(mbedtls_cipher_auth_decrypt_ext) *auth_decrypt_fn;
static __typeof__(mbedtls_cipher_auth_encrypt_ext) *auth_encrypt_fn;
static __typeof__(mbedtls_cipher_free) *cipher_free_fn;

/* A function an adapter takes from the process's library, by name. */
struct adapter_sym {
	const char *name;
	void **slot;
};
#define ADAPTER_SYM(slot, name)        \
	{                              \
		name, (void **)&(slot) \
	}
#define ADAPTER_CRYPTO_SYMS                                                      \
	ADAPTER_SYM(tls_prf_fn, "mbedtls_ssl_tls_prf"),                          \
		ADAPTER_SYM(md_info_fn, "mbedtls_md_info_from_type"),            \
		ADAPTER_SYM(hkdf_expand_fn, "mbedtls_hkdf_expand"),              \
		ADAPTER_SYM(cipher_info_fn, "mbedtls_cipher_info_from_type"),    \
		ADAPTER_SYM(cipher_init_fn, "mbedtls_cipher_init"),              \
		ADAPTER_SYM(cipher_setup_fn, "mbedtls_cipher_setup"),            \
		ADAPTER_SYM(cipher_setkey_fn, "mbedtls_cipher_setkey"),          \
		ADAPTER_SYM(auth_decrypt_fn, "mbedtls_cipher_auth_decrypt_ext"), \
		ADAPTER_SYM(auth_encrypt_fn, "mbedtls_cipher_auth_encrypt_ext"), \
		ADAPTER_SYM(cipher_free_fn, "mbedtls_cipher_free")

/* Fills every slot; NULL, or the name of the first symbol the library lacks. */
static const char *adapter_bind(const struct adapter_sym *syms, size_t n,
				void *(*lookup)(const char *name))
{
	for (size_t i = 0; i < n; i++)
		if (!(*syms[i].slot = lookup(syms[i].name)))
			return syms[i].name;
	return NULL;
}

static int hkdf_expand_md(mbedtls_md_type_t md_type, const unsigned char *prk, size_t prk_len,
			  const unsigned char *info, size_t info_len, unsigned char *out,
			  size_t out_len)
{
	const mbedtls_md_info_t *md = md_info_fn(md_type);
	if (!md)
		return MBEDTLS_ERR_HKDF_BAD_INPUT_DATA;
	return hkdf_expand_fn(md, prk, prk_len, info, info_len, out, out_len);
}

static mbedtls_cipher_type_t cipher_type(enum kcipher c)
{
	switch (c) {
	case KCIPHER_AES_GCM_128: return MBEDTLS_CIPHER_AES_128_GCM;
	case KCIPHER_AES_GCM_256: return MBEDTLS_CIPHER_AES_256_GCM;
	case KCIPHER_AES_CCM_128: return MBEDTLS_CIPHER_AES_128_CCM;
	case KCIPHER_CHACHA20_POLY1305: return MBEDTLS_CIPHER_CHACHA20_POLY1305;
	default: return MBEDTLS_CIPHER_NONE;
	}
}

#define ADAPTER_TAG_LEN 16

/* One AEAD operation on a record body with a 12-byte nonce and a 16-byte tag: decrypt (in is
 * ciphertext || tag, out gets in_len - 16 bytes) or encrypt (out gets in_len + 16 bytes). */
static int aead(mbedtls_operation_t op, enum kcipher c, const unsigned char *key, size_t key_len,
		const unsigned char nonce[CIPHER_NONCE_LEN], const unsigned char *aad,
		size_t aad_len, const unsigned char *in, size_t in_len, unsigned char *out)
{
	const mbedtls_cipher_info_t *info = cipher_info_fn(cipher_type(c));
	if (!info || (op == MBEDTLS_DECRYPT && in_len < ADAPTER_TAG_LEN))
		return MBEDTLS_ERR_CIPHER_BAD_INPUT_DATA;
	mbedtls_cipher_context_t ctx;
	size_t out_len = 0;
	cipher_init_fn(&ctx);
	int ret = cipher_setup_fn(&ctx, info);
	if (!ret)
		ret = cipher_setkey_fn(&ctx, key, (int)(key_len * 8), op);
	if (!ret && op == MBEDTLS_DECRYPT)
		ret = auth_decrypt_fn(&ctx, nonce, CIPHER_NONCE_LEN, aad, aad_len, in, in_len, out,
				      in_len, &out_len, ADAPTER_TAG_LEN);
	else if (!ret)
		ret = auth_encrypt_fn(&ctx, nonce, CIPHER_NONCE_LEN, aad, aad_len, in, in_len, out,
				      in_len + ADAPTER_TAG_LEN, &out_len, ADAPTER_TAG_LEN);
	cipher_free_fn(&ctx); /* wipes the key schedule */
	return ret;
}

static int aead_open(enum kcipher c, const unsigned char *key, size_t key_len,
		     const unsigned char nonce[CIPHER_NONCE_LEN], const unsigned char *aad,
		     size_t aad_len, const unsigned char *in, size_t in_len, unsigned char *out)
{
	return aead(MBEDTLS_DECRYPT, c, key, key_len, nonce, aad, aad_len, in, in_len, out);
}

static int aead_seal(enum kcipher c, const unsigned char *key, size_t key_len,
		     const unsigned char nonce[CIPHER_NONCE_LEN], const unsigned char *aad,
		     size_t aad_len, const unsigned char *in, size_t in_len, unsigned char *out)
{
	return aead(MBEDTLS_ENCRYPT, c, key, key_len, nonce, aad, aad_len, in, in_len, out);
}

#endif
