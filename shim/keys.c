/* SPDX-License-Identifier: Apache-2.0 */
/* Record key material for the kernel: the ciphersuite whitelist, TLS 1.3 HKDF-Expand-Label and the
 * TLS 1.2 key block. The HKDF and the PRF are the process's Mbed TLS's public ones, reached through
 * the adapter for its version (real.h), so that the shim depends on no symbol Mbed TLS exports but
 * does not promise to keep. */
#include "keys.h"

#include <string.h>

#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>

#include "real.h"

/* Short names for the table only. */
#define V12    TLS_1_2
#define V13    TLS_1_3
#define GCM128 KCIPHER_AES_GCM_128
#define GCM256 KCIPHER_AES_GCM_256
#define CCM128 KCIPHER_AES_CCM_128
#define CHACHA KCIPHER_CHACHA20_POLY1305
#define SHA256 MBEDTLS_MD_SHA256
#define SHA384 MBEDTLS_MD_SHA384

/* The kernel takes AES-128-GCM, AES-256-GCM, AES-128-CCM (16-byte tag) and ChaCha20-Poly1305.
 * Anything else (CBC, ARIA, Camellia, NULL, CCM_8, AES-256-CCM) stays in user space, so the list
 * names suites one by one instead of deriving them from Mbed TLS's tables. The key exchange does
 * not matter to the record layer; every TLS 1.2 suite Mbed TLS 3.6 implements with one of those
 * ciphers is here. The PRF hash of every TLS 1.2 CCM and ChaCha suite is SHA-256 (RFC 6655,
 * RFC 7905). */
static const struct suite_info suites[] = {
	/* TLS 1.3 (RFC 8446 B.4); not 0x1305 AES_128_CCM_8, whose 8-byte tag the kernel lacks. */
	{ MBEDTLS_TLS1_3_AES_128_GCM_SHA256, V13, GCM128, SHA256 },
	{ MBEDTLS_TLS1_3_AES_256_GCM_SHA384, V13, GCM256, SHA384 },
	{ MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256, V13, CHACHA, SHA256 },
	{ MBEDTLS_TLS1_3_AES_128_CCM_SHA256, V13, CCM128, SHA256 },

	/* TLS 1.2 AES-128-GCM */
	{ MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, V12, GCM128, SHA256 },
	{ MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, V12, GCM128, SHA256 },
	{ MBEDTLS_TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256, V12, GCM128, SHA256 },
	{ MBEDTLS_TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256, V12, GCM128, SHA256 },
	{ MBEDTLS_TLS_DHE_RSA_WITH_AES_128_GCM_SHA256, V12, GCM128, SHA256 },
	{ MBEDTLS_TLS_RSA_WITH_AES_128_GCM_SHA256, V12, GCM128, SHA256 },
	{ MBEDTLS_TLS_PSK_WITH_AES_128_GCM_SHA256, V12, GCM128, SHA256 },
	{ MBEDTLS_TLS_DHE_PSK_WITH_AES_128_GCM_SHA256, V12, GCM128, SHA256 },
	{ MBEDTLS_TLS_RSA_PSK_WITH_AES_128_GCM_SHA256, V12, GCM128, SHA256 },

	/* TLS 1.2 AES-256-GCM */
	{ MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, V12, GCM256, SHA384 },
	{ MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, V12, GCM256, SHA384 },
	{ MBEDTLS_TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384, V12, GCM256, SHA384 },
	{ MBEDTLS_TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384, V12, GCM256, SHA384 },
	{ MBEDTLS_TLS_DHE_RSA_WITH_AES_256_GCM_SHA384, V12, GCM256, SHA384 },
	{ MBEDTLS_TLS_RSA_WITH_AES_256_GCM_SHA384, V12, GCM256, SHA384 },
	{ MBEDTLS_TLS_PSK_WITH_AES_256_GCM_SHA384, V12, GCM256, SHA384 },
	{ MBEDTLS_TLS_DHE_PSK_WITH_AES_256_GCM_SHA384, V12, GCM256, SHA384 },
	{ MBEDTLS_TLS_RSA_PSK_WITH_AES_256_GCM_SHA384, V12, GCM256, SHA384 },

	/* TLS 1.2 AES-128-CCM, 16-byte tag only (the _CCM_8 ids and AES-256-CCM are left out). */
	{ MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CCM, V12, CCM128, SHA256 },
	{ MBEDTLS_TLS_DHE_RSA_WITH_AES_128_CCM, V12, CCM128, SHA256 },
	{ MBEDTLS_TLS_RSA_WITH_AES_128_CCM, V12, CCM128, SHA256 },
	{ MBEDTLS_TLS_PSK_WITH_AES_128_CCM, V12, CCM128, SHA256 },
	{ MBEDTLS_TLS_DHE_PSK_WITH_AES_128_CCM, V12, CCM128, SHA256 },

	/* TLS 1.2 ChaCha20-Poly1305 (RFC 7905) */
	{ MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, V12, CHACHA, SHA256 },
	{ MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, V12, CHACHA, SHA256 },
	{ MBEDTLS_TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256, V12, CHACHA, SHA256 },
	{ MBEDTLS_TLS_PSK_WITH_CHACHA20_POLY1305_SHA256, V12, CHACHA, SHA256 },
	{ MBEDTLS_TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256, V12, CHACHA, SHA256 },
	{ MBEDTLS_TLS_DHE_PSK_WITH_CHACHA20_POLY1305_SHA256, V12, CHACHA, SHA256 },
	{ MBEDTLS_TLS_RSA_PSK_WITH_CHACHA20_POLY1305_SHA256, V12, CHACHA, SHA256 },
};

#undef V12
#undef V13
#undef GCM128
#undef GCM256
#undef CCM128
#undef CHACHA
#undef SHA256
#undef SHA384

const struct suite_info *keys_suite(uint16_t suite_id)
{
	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i].id == suite_id)
			return &suites[i];
	return NULL;
}

void keys_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		explicit_bzero(p, n);
}

/* Hash length of a suite hash (SHA-256/384: the only hashes a whitelisted suite uses and the only
 * ones KEYS_MAX_SECRET is sized for), else 0. */
static size_t md_len(int md_type)
{
	return md_type == MBEDTLS_MD_SHA256 ? 32 : md_type == MBEDTLS_MD_SHA384 ? 48 : 0;
}

int keys_hkdf_expand_label(int md_type, const unsigned char *secret, size_t secret_len,
			   const char *label, const unsigned char *ctx, size_t ctx_len,
			   unsigned char *out, size_t out_len)
{
	static const char prefix[] = "tls13 ";
	const size_t prefix_len = sizeof(prefix) - 1;
	/* uint16 length, then opaque label<7..255>, then opaque context<0..255> (RFC 8446 7.1). */
	unsigned char info[2 + 1 + 255 + 1 + 255];
	const struct mbed_adapter *mbed = real_adapter();
	size_t label_len, n = 0;
	int ret;

	if (out == NULL)
		return MBEDTLS_ERR_HKDF_BAD_INPUT_DATA;
	label_len = label != NULL ? strlen(label) : 0;
	if (mbed == NULL || md_len(md_type) == 0 || secret == NULL || label == NULL ||
	    (ctx == NULL && ctx_len > 0) || prefix_len + label_len > 255 || ctx_len > 255 ||
	    out_len == 0 || out_len > 0xffff) {
		keys_wipe(out, out_len);
		return MBEDTLS_ERR_HKDF_BAD_INPUT_DATA;
	}

	info[n++] = (unsigned char)(out_len >> 8);
	info[n++] = (unsigned char)out_len;
	info[n++] = (unsigned char)(prefix_len + label_len);
	memcpy(info + n, prefix, prefix_len);
	n += prefix_len;
	memcpy(info + n, label, label_len);
	n += label_len;
	info[n++] = (unsigned char)ctx_len;
	if (ctx_len > 0)
		memcpy(info + n, ctx, ctx_len);
	n += ctx_len;

	/* Expand only: a TLS 1.3 traffic secret already is a PRK (RFC 8446 7.1), so no Extract step. */
	ret = mbed->hkdf_expand(md_type, secret, secret_len, info, n, out, out_len);
	keys_wipe(info, n);
	if (ret != 0)
		keys_wipe(out, out_len);
	return ret;
}

int keys_tls13_traffic(const struct suite_info *s, const unsigned char *secret, size_t secret_len,
		       struct traffic_keys *out)
{
	size_t key_len;
	int ret;

	if (out == NULL)
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	memset(out, 0, sizeof(*out));
	if (s == NULL || s->version != TLS_1_3 || secret == NULL)
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	key_len = cipher_key_len(s->cipher);
	/* A traffic secret is exactly Hash.length long; anything else means the caller mixed up
	 * suites or secrets, and a wrong key would only surface as a bad_record_mac later. */
	if (key_len == 0 || secret_len != md_len(s->md_type))
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;

	/* RFC 8446 7.3: [sender]_write_key/iv = HKDF-Expand-Label(secret, "key"/"iv", "", len). */
	ret = keys_hkdf_expand_label(s->md_type, secret, secret_len, "key", NULL, 0, out->key,
				     key_len);
	if (ret == 0)
		ret = keys_hkdf_expand_label(s->md_type, secret, secret_len, "iv", NULL, 0, out->iv,
					     KEYS_IV_LEN);
	if (ret != 0) {
		keys_wipe(out, sizeof(*out));
		return ret;
	}
	out->key_len = key_len;
	out->iv_len = cipher_fixed_iv_len(s->cipher, TLS_1_3);
	return 0;
}

int keys_tls13_next_secret(int md_type, unsigned char *secret, size_t secret_len)
{
	unsigned char next[KEYS_MAX_SECRET];
	int ret;

	if (secret == NULL || secret_len == 0 || secret_len != md_len(md_type) ||
	    secret_len > sizeof(next))
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	/* RFC 8446 7.2: application_traffic_secret_N+1 =
	 *   HKDF-Expand-Label(application_traffic_secret_N, "traffic upd", "", Hash.length).
	 * Into a scratch buffer first: HKDF-Expand reads the PRK again for every output block, so
	 * writing over it in place would only work by accident of the output being one block. */
	ret = keys_hkdf_expand_label(md_type, secret, secret_len, "traffic upd", NULL, 0, next,
				     secret_len);
	if (ret == 0)
		memcpy(secret, next, secret_len);
	keys_wipe(next, sizeof(next));
	return ret;
}

int keys_tls12_traffic(const struct suite_info *s, int prf_type, const unsigned char master[48],
		       const unsigned char client_random[32], const unsigned char server_random[32],
		       struct traffic_keys *client_write, struct traffic_keys *server_write)
{
	/* Largest AEAD key block: 2 * 32-byte key + 2 * 12-byte ChaCha iv. */
	unsigned char block[2 * KEYS_MAX_KEY + 2 * KEYS_IV_LEN];
	unsigned char randoms[64];
	size_t key_len, iv_len, block_len;
	const struct mbed_adapter *mbed = real_adapter();
	int prf_md, ret;

	if (client_write == NULL || server_write == NULL)
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	memset(client_write, 0, sizeof(*client_write));
	memset(server_write, 0, sizeof(*server_write));
	if (mbed == NULL || s == NULL || s->version != TLS_1_2 || master == NULL ||
	    client_random == NULL || server_random == NULL)
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	key_len = cipher_key_len(s->cipher);
	iv_len = cipher_fixed_iv_len(s->cipher, TLS_1_2);
	if (key_len == 0 || iv_len == 0)
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;

	/* The PRF the handshake used is the suite's hash (RFC 5246 5); if the export callback reports
	 * another, the suite was identified wrongly, and keys from it would be garbage. */
	switch (prf_type) {
	case MBEDTLS_SSL_TLS_PRF_SHA256: prf_md = MBEDTLS_MD_SHA256; break;
	case MBEDTLS_SSL_TLS_PRF_SHA384: prf_md = MBEDTLS_MD_SHA384; break;
	default: return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
	}
	if (prf_md != s->md_type)
		return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;

	/* RFC 5246 6.3: key_block = PRF(master_secret, "key expansion", server_random + client_random)
	 * -- server first here, unlike the master secret derivation. AEAD suites have no MAC keys, so
	 * the block is client_write_key, server_write_key, client_write_IV, server_write_IV. */
	memcpy(randoms, server_random, 32);
	memcpy(randoms + 32, client_random, 32);
	block_len = 2 * key_len + 2 * iv_len;
	ret = mbed->tls_prf(prf_type, master, 48, "key expansion", randoms, sizeof(randoms), block,
			    block_len);
	if (ret == 0) {
		memcpy(client_write->key, block, key_len);
		memcpy(server_write->key, block + key_len, key_len);
		memcpy(client_write->iv, block + 2 * key_len, iv_len);
		memcpy(server_write->iv, block + 2 * key_len + iv_len, iv_len);
		client_write->key_len = server_write->key_len = key_len;
		client_write->iv_len = server_write->iv_len = iv_len;
	}
	keys_wipe(block, sizeof(block));
	return ret;
}
