/* SPDX-License-Identifier: Apache-2.0 */
/* The adapter for Mbed TLS 3.6 (libmbedtls.so.21), compiled against 3.6's headers: struct sizes
 * (the cipher context on the stack) and constants are that version's. Every function comes from
 * the process's library through bind(); nothing here is linked. */
#include "real.h"

#include <mbedtls/cipher.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/ssl.h>

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

static int tls_prf(int prf_type, const unsigned char *secret, size_t secret_len, const char *label,
		   const unsigned char *random, size_t random_len, unsigned char *out, size_t out_len)
{
	return tls_prf_fn((mbedtls_tls_prf_types)prf_type, secret, secret_len, label, random,
			  random_len, out, out_len);
}

static int hkdf_expand(int md_type, const unsigned char *prk, size_t prk_len,
		       const unsigned char *info, size_t info_len, unsigned char *out, size_t out_len)
{
	const mbedtls_md_info_t *md = md_info_fn((mbedtls_md_type_t)md_type);
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

#define TAG_LEN 16

/* One AEAD operation on a record body with a 12-byte nonce and a 16-byte tag: decrypt (in is
 * ciphertext || tag, out gets in_len - 16 bytes) or encrypt (out gets in_len + 16 bytes). */
static int aead(mbedtls_operation_t op, enum kcipher c, const unsigned char *key, size_t key_len,
		const unsigned char nonce[CIPHER_NONCE_LEN], const unsigned char *aad, size_t aad_len,
		const unsigned char *in, size_t in_len, unsigned char *out)
{
	const mbedtls_cipher_info_t *info = cipher_info_fn(cipher_type(c));
	if (!info || (op == MBEDTLS_DECRYPT && in_len < TAG_LEN))
		return MBEDTLS_ERR_CIPHER_BAD_INPUT_DATA;
	mbedtls_cipher_context_t ctx;
	size_t out_len = 0;
	cipher_init_fn(&ctx);
	int ret = cipher_setup_fn(&ctx, info);
	if (!ret)
		ret = cipher_setkey_fn(&ctx, key, (int)(key_len * 8), op);
	if (!ret && op == MBEDTLS_DECRYPT)
		ret = auth_decrypt_fn(&ctx, nonce, CIPHER_NONCE_LEN, aad, aad_len, in, in_len, out, in_len,
				      &out_len, TAG_LEN);
	else if (!ret)
		ret = auth_encrypt_fn(&ctx, nonce, CIPHER_NONCE_LEN, aad, aad_len, in, in_len, out,
				      in_len + TAG_LEN, &out_len, TAG_LEN);
	cipher_free_fn(&ctx); /* wipes the key schedule */
	return ret;
}

static int aead_open(enum kcipher c, const unsigned char *key, size_t key_len,
		     const unsigned char nonce[CIPHER_NONCE_LEN], const unsigned char *aad, size_t aad_len,
		     const unsigned char *in, size_t in_len, unsigned char *out)
{
	return aead(MBEDTLS_DECRYPT, c, key, key_len, nonce, aad, aad_len, in, in_len, out);
}

static int aead_seal(enum kcipher c, const unsigned char *key, size_t key_len,
		     const unsigned char nonce[CIPHER_NONCE_LEN], const unsigned char *aad, size_t aad_len,
		     const unsigned char *in, size_t in_len, unsigned char *out)
{
	return aead(MBEDTLS_ENCRYPT, c, key, key_len, nonce, aad, aad_len, in, in_len, out);
}

static const char *bind(void *(*lookup)(const char *name));

struct mbed_adapter mbed_adapter_36 = {
	.abi = 0x0306,
	.bind = bind,
	.tls_prf = tls_prf,
	.hkdf_expand = hkdf_expand,
	.aead_open = aead_open,
	.aead_seal = aead_seal,
};

static const char *bind(void *(*lookup)(const char *name))
{
#define S(slot, name) { name, (void **)&(slot) }
	const struct { const char *name; void **slot; } syms[] = {
		S(mbed_adapter_36.suite_id, "mbedtls_ssl_get_ciphersuite_id_from_ssl"),
		S(mbed_adapter_36.suite_name, "mbedtls_ssl_get_ciphersuite"),
		S(mbed_adapter_36.version_name, "mbedtls_ssl_get_version"),
		S(mbed_adapter_36.max_out_payload, "mbedtls_ssl_get_max_out_record_payload"),
		S(mbed_adapter_36.set_export_keys_cb, "mbedtls_ssl_set_export_keys_cb"),
		S(tls_prf_fn, "mbedtls_ssl_tls_prf"),
		S(md_info_fn, "mbedtls_md_info_from_type"),
		S(hkdf_expand_fn, "mbedtls_hkdf_expand"),
		S(cipher_info_fn, "mbedtls_cipher_info_from_type"),
		S(cipher_init_fn, "mbedtls_cipher_init"),
		S(cipher_setup_fn, "mbedtls_cipher_setup"),
		S(cipher_setkey_fn, "mbedtls_cipher_setkey"),
		S(auth_decrypt_fn, "mbedtls_cipher_auth_decrypt_ext"),
		S(auth_encrypt_fn, "mbedtls_cipher_auth_encrypt_ext"),
		S(cipher_free_fn, "mbedtls_cipher_free"),
	};
#undef S
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++)
		if (!(*syms[i].slot = lookup(syms[i].name)))
			return syms[i].name;
	return NULL;
}
