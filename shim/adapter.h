/* SPDX-License-Identifier: Apache-2.0 */
/* The seam between the core and one Mbed TLS ABI (docs/design.md, "The adapter seam").
 *
 * This header includes no Mbed TLS header: each adapter file includes its own version's, and the
 * core its 3.6 ones. Contexts and configs go by pointer (the struct tags are the same in every
 * version). The core speaks Mbed TLS 3.6's vocabulary, spelled out below as plain ints so that an
 * adapter compiled against other headers translates to it (mbed36.c checks the values). */
#ifndef KTLSSHIM_ADAPTER_H
#define KTLSSHIM_ADAPTER_H

#include <stdbool.h>
#include <stddef.h>

#include "cipher.h"

struct mbedtls_ssl_context;
struct mbedtls_ssl_config;

/* 3.6's mbedtls_ssl_key_export_type, mbedtls_tls_prf_types and mbedtls_md_type_t values the core
 * uses. */
enum {
	CORE_EXPORT_TLS12_MASTER_SECRET = 0,
	CORE_PRF_NONE = 0,
	CORE_PRF_SHA384 = 1,
	CORE_PRF_SHA256 = 2,
	CORE_MD_SHA256 = 9,
	CORE_MD_SHA384 = 10,
};

/* Where an adapter delivers the secrets its Mbed TLS exports, in 3.6's terms (capture.c): p is
 * what the core gave set_export_keys_cb. It chains the application's 3.6 per-context callback. */
void capture_export_keys(void *p, int type, const unsigned char *secret, size_t secret_len,
			 const unsigned char client_random[32],
			 const unsigned char server_random[32], int prf_type);

/* For an export callback that names no context (2.28's, on the config): the p to deliver with for
 * the context this thread is inside a real Mbed TLS call on, when that context is the core's and
 * was set up with conf; else NULL and *why (NULL when the context is simply not the core's). */
void *frame_export_target(const struct mbedtls_ssl_config *conf, const char **why);

struct mbed_adapter {
	unsigned abi; /* major << 8 | minor of the headers it was compiled against: 0x0306 */
	/* Takes every function the adapter calls from lookup (the process's Mbed TLS); returns
	 * NULL, or the name of the first one that library lacks (then the adapter is not used). */
	const char *(*bind)(void *(*lookup)(const char *name));

	/* Facts about a context whose handshake is over. */
	int (*suite_id)(const struct mbedtls_ssl_context *ssl);
	const char *(*suite_name)(const struct mbedtls_ssl_context *ssl);
	const char *(*version_name)(const struct mbedtls_ssl_context *ssl);
	int (*max_out_payload)(const struct mbedtls_ssl_context *ssl);

	/* Key export: from now on, deliver ssl's secrets to capture_export_keys with p. conf is the
	 * config ssl was set up with. */
	void (*set_export_keys_cb)(struct mbedtls_ssl_context *ssl,
				   const struct mbedtls_ssl_config *conf, void *p);
	/* The application sets an export callback on a config (2.x: ext is false for
	 * mbedtls_ssl_conf_export_keys_cb, true for _ext_cb); f is that version's callback type.
	 * True when the adapter keeps it: the config was hooked, or is hooked now when hook is
	 * true; false: the caller passes the call on untouched. NULL for an ABI without config
	 * callbacks. */
	bool (*conf_export_keys_cb)(struct mbedtls_ssl_config *conf, bool ext, void (*f)(void),
				    void *p, bool hook);
	/* A config is initialised or freed: forget what was kept for it (NULL: nothing kept). */
	void (*conf_forget)(const struct mbedtls_ssl_config *conf);

	/* Crypto for keys.c and seq.c, ids in the core's terms; 0 or a negative Mbed TLS error. */
	int (*tls_prf)(int prf_type, const unsigned char *secret, size_t secret_len,
		       const char *label, const unsigned char *random, size_t random_len,
		       unsigned char *out, size_t out_len);
	int (*hkdf_expand)(int md_type, const unsigned char *prk, size_t prk_len,
			   const unsigned char *info, size_t info_len, unsigned char *out,
			   size_t out_len);
	/* Authenticated decryption of one record body with a 12-byte nonce and a 16-byte tag. */
	int (*aead_open)(enum kcipher c, const unsigned char *key, size_t key_len,
			 const unsigned char nonce[CIPHER_NONCE_LEN], const unsigned char *aad,
			 size_t aad_len, const unsigned char *in, size_t in_len,
			 unsigned char *out);
	/* The reverse, for the kernel self-test: out gets in_len bytes of ciphertext, then the tag. */
	int (*aead_seal)(enum kcipher c, const unsigned char *key, size_t key_len,
			 const unsigned char nonce[CIPHER_NONCE_LEN], const unsigned char *aad,
			 size_t aad_len, const unsigned char *in, size_t in_len,
			 unsigned char *out);
};

/* One per supported ABI (shim/mbed36.c, shim/mbed228.c). */
extern struct mbed_adapter mbed_adapter_36;
extern struct mbed_adapter mbed_adapter_228;

#endif
