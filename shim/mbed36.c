/* SPDX-License-Identifier: Apache-2.0 */
/* The adapter for Mbed TLS 3.6 (libmbedtls.so.21), compiled against 3.6's headers. Every function
 * comes from the process's library through bind(); nothing here is linked. 3.6 is the core's own
 * vocabulary: the ids pass unchanged. */
#include <mbedtls/ssl.h>

#include "adapter-crypto.h"

#define SAME(core, mbed) ((int)(core) == (int)(mbed))
_Static_assert(SAME(CORE_EXPORT_TLS12_MASTER_SECRET, MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET) &&
		       SAME(CORE_PRF_NONE, MBEDTLS_SSL_TLS_PRF_NONE) &&
		       SAME(CORE_PRF_SHA384, MBEDTLS_SSL_TLS_PRF_SHA384) &&
		       SAME(CORE_PRF_SHA256, MBEDTLS_SSL_TLS_PRF_SHA256) &&
		       SAME(CORE_MD_SHA256, MBEDTLS_MD_SHA256) &&
		       SAME(CORE_MD_SHA384, MBEDTLS_MD_SHA384),
	       "adapter.h's core vocabulary is Mbed TLS 3.6's");
#undef SAME

static __typeof__(mbedtls_ssl_set_export_keys_cb) *set_export_fn;

static int tls_prf(int prf_type, const unsigned char *secret, size_t secret_len, const char *label,
		   const unsigned char *random, size_t random_len, unsigned char *out,
		   size_t out_len)
{
	return tls_prf_fn((mbedtls_tls_prf_types)prf_type, secret, secret_len, label, random,
			  random_len, out, out_len);
}

static int hkdf_expand(int md_type, const unsigned char *prk, size_t prk_len,
		       const unsigned char *info, size_t info_len, unsigned char *out,
		       size_t out_len)
{
	return hkdf_expand_md((mbedtls_md_type_t)md_type, prk, prk_len, info, info_len, out,
			      out_len);
}

static void export_keys(void *p, mbedtls_ssl_key_export_type type, const unsigned char *secret,
			size_t secret_len, const unsigned char client_random[32],
			const unsigned char server_random[32], mbedtls_tls_prf_types prf_type)
{
	capture_export_keys(p, (int)type, secret, secret_len, client_random, server_random,
			    (int)prf_type);
}

static void set_export_keys_cb(mbedtls_ssl_context *ssl, const mbedtls_ssl_config *conf, void *p)
{
	(void)conf; /* 3.6 exports per context */
	set_export_fn(ssl, export_keys, p);
}

static const char *bind(void *(*lookup)(const char *name));

struct mbed_adapter mbed_adapter_36 = {
	.abi = 0x0306,
	.bind = bind,
	.set_export_keys_cb = set_export_keys_cb,
	.tls_prf = tls_prf,
	.hkdf_expand = hkdf_expand,
	.aead_open = aead_open,
	.aead_seal = aead_seal,
};

static const char *bind(void *(*lookup)(const char *name))
{
	const struct adapter_sym syms[] = {
		ADAPTER_SYM(mbed_adapter_36.suite_id, "mbedtls_ssl_get_ciphersuite_id_from_ssl"),
		ADAPTER_SYM(mbed_adapter_36.suite_name, "mbedtls_ssl_get_ciphersuite"),
		ADAPTER_SYM(mbed_adapter_36.version_name, "mbedtls_ssl_get_version"),
		ADAPTER_SYM(mbed_adapter_36.max_out_payload,
			    "mbedtls_ssl_get_max_out_record_payload"),
		ADAPTER_SYM(set_export_fn, "mbedtls_ssl_set_export_keys_cb"),
		ADAPTER_CRYPTO_SYMS,
	};
	return adapter_bind(syms, sizeof(syms) / sizeof(syms[0]), lookup);
}
