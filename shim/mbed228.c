/* SPDX-License-Identifier: Apache-2.0 */
/* The adapter for Mbed TLS 2.28 (libmbedtls.so.14), compiled against 2.28's headers only (the
 * Makefile gives this file no 3.6 include path). It translates to the core's 3.6 vocabulary
 * (adapter.h) and captures keys from 2.28's export callback, which is set on the config and names
 * no context (docs/design.md, "Key capture on 2.28").
 *
 * 2.28 has one p for both config callbacks (mbedtls_ssl_conf_export_keys_cb and _ext_cb) and
 * calls each it has, ignoring what they return. A config the shim hooks carries only the shim's
 * _ext_cb, with p = the config's record below; the record keeps what the application set, and the
 * shim's callback calls those the same way 2.28 would have: the plain one, then the _ext one,
 * each with the application's p. */
#include <pthread.h>
#include <stdlib.h>

#include <mbedtls/ssl.h>
#include <mbedtls/version.h>

#include "forklock.h"
#include "adapter-crypto.h"
#include "log.h"

#if MBEDTLS_VERSION_MAJOR >= 3
#error "shim/mbed228.c must be compiled against the Mbed TLS 2.28 headers"
#endif

static __typeof__(mbedtls_ssl_get_ciphersuite) *suite_name_fn;
static __typeof__(mbedtls_ssl_get_ciphersuite_id) *suite_id_fn;
static __typeof__(mbedtls_ssl_conf_export_keys_cb) *conf_export_fn;
static __typeof__(mbedtls_ssl_conf_export_keys_ext_cb) *conf_export_ext_fn;

/* ---- the core's ids ---- */

static int core_prf(mbedtls_tls_prf_types prf)
{
	return prf == MBEDTLS_SSL_TLS_PRF_SHA256   ? CORE_PRF_SHA256
	       : prf == MBEDTLS_SSL_TLS_PRF_SHA384 ? CORE_PRF_SHA384
						   : CORE_PRF_NONE;
}

static int tls_prf(int prf_type, const unsigned char *secret, size_t secret_len, const char *label,
		   const unsigned char *random, size_t random_len, unsigned char *out,
		   size_t out_len)
{
	mbedtls_tls_prf_types prf = prf_type == CORE_PRF_SHA256	  ? MBEDTLS_SSL_TLS_PRF_SHA256
				    : prf_type == CORE_PRF_SHA384 ? MBEDTLS_SSL_TLS_PRF_SHA384
								  : MBEDTLS_SSL_TLS_PRF_NONE;
	return tls_prf_fn(prf, secret, secret_len, label, random, random_len, out, out_len);
}

static int hkdf_expand(int md_type, const unsigned char *prk, size_t prk_len,
		       const unsigned char *info, size_t info_len, unsigned char *out,
		       size_t out_len)
{
	mbedtls_md_type_t md = md_type == CORE_MD_SHA256   ? MBEDTLS_MD_SHA256
			       : md_type == CORE_MD_SHA384 ? MBEDTLS_MD_SHA384
							   : MBEDTLS_MD_NONE;
	return hkdf_expand_md(md, prk, prk_len, info, info_len, out, out_len);
}

static int suite_id(const mbedtls_ssl_context *ssl)
{
	const char *name = suite_name_fn(ssl);
	return name ? suite_id_fn(name) : 0;
}

/* ---- key capture: the configs the shim hooked ---- */

struct hooked {
	const mbedtls_ssl_config *conf;
	mbedtls_ssl_export_keys_t *app; /* what the application set, or NULL */
	mbedtls_ssl_export_keys_ext_t *app_ext;
	void *app_p;
	struct hooked *next;
};
static struct hooked *hooked_list;
static pthread_mutex_t hooked_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void mbed228_at_load(void)
{
	forklock_add(&hooked_lock); /* fork() while another thread sets up or exports keys */
}

static struct hooked *find_locked(const mbedtls_ssl_config *conf)
{
	struct hooked *h = hooked_list;
	while (h && h->conf != conf)
		h = h->next;
	return h;
}

static int export_keys(void *p, const unsigned char *ms, const unsigned char *kb, size_t maclen,
		       size_t keylen, size_t ivlen, const unsigned char client_random[32],
		       const unsigned char server_random[32], mbedtls_tls_prf_types prf)
{
	pthread_mutex_lock(&hooked_lock);
	struct hooked *h = hooked_list;
	while (h && h != p)
		h = h->next;
	/* A copy: the application may set another callback meanwhile. Not ours (the config's
	 * callback and p came apart): nothing to chain, nothing captured. */
	struct hooked app = h ? *h : (struct hooked){ 0 };
	pthread_mutex_unlock(&hooked_lock);
	if (!h) {
		log_msg(LOG_ERROR, "2.28 key export with an unknown context; ignored");
		return 0;
	}
	const char *why = NULL;
	void *target = frame_export_target(app.conf, &why);
	if (target && core_prf(prf) != CORE_PRF_NONE)
		capture_export_keys(target, CORE_EXPORT_TLS12_MASTER_SECRET, ms, 48, client_random,
				    server_random, core_prf(prf));
	else if (why)
		log_msg(LOG_INFO, "%s: that connection stays in Mbed TLS", why);
	int ret = 0;
	if (app.app)
		ret = app.app(app.app_p, ms, kb, maclen, keylen, ivlen);
	if (app.app_ext)
		ret = app.app_ext(app.app_p, ms, kb, maclen, keylen, ivlen, client_random,
				  server_random, prf);
	return ret;
}

/* The record of conf, hooked on first use; NULL when out of memory (then nothing is hooked). */
static struct hooked *hook_locked(const mbedtls_ssl_config *conf)
{
	struct hooked *h = find_locked(conf);
	if (h || !(h = calloc(1, sizeof(*h))))
		return h;
	h->conf = conf;
	h->next = hooked_list;
	hooked_list = h;
	/* The config is the application's own mutable object; setup only takes it as const. */
	mbedtls_ssl_config *c = (mbedtls_ssl_config *)conf;
	conf_export_fn(c, NULL, h);
	conf_export_ext_fn(c, export_keys, h);
	return h;
}

static void set_export_keys_cb(mbedtls_ssl_context *ssl, const mbedtls_ssl_config *conf, void *p)
{
	(void)ssl, (void)p; /* found again from the thread's frames when the keys come */
	if (!conf)	    /* not set up yet: mbedtls_ssl_setup comes back here with its config */
		return;
	pthread_mutex_lock(&hooked_lock);
	hook_locked(conf);
	pthread_mutex_unlock(&hooked_lock);
}

static bool conf_export_keys_cb(mbedtls_ssl_config *conf, bool ext, void (*f)(void), void *p,
				bool hook)
{
	pthread_mutex_lock(&hooked_lock);
	struct hooked *h = hook ? hook_locked(conf) : find_locked(conf);
	if (h && ext)
		h->app_ext = (mbedtls_ssl_export_keys_ext_t *)f;
	else if (h)
		h->app = (mbedtls_ssl_export_keys_t *)f;
	if (h)
		h->app_p = p;
	pthread_mutex_unlock(&hooked_lock);
	return h != NULL;
}

static void conf_forget(const mbedtls_ssl_config *conf)
{
	pthread_mutex_lock(&hooked_lock);
	struct hooked **pp = &hooked_list;
	while (*pp && (*pp)->conf != conf)
		pp = &(*pp)->next;
	struct hooked *h = *pp;
	if (h)
		*pp = h->next;
	pthread_mutex_unlock(&hooked_lock);
	free(h);
}

static const char *bind(void *(*lookup)(const char *name));

struct mbed_adapter mbed_adapter_228 = {
	.abi = 0x021C,
	.bind = bind,
	.suite_id = suite_id,
	.set_export_keys_cb = set_export_keys_cb,
	.conf_export_keys_cb = conf_export_keys_cb,
	.conf_forget = conf_forget,
	.tls_prf = tls_prf,
	.hkdf_expand = hkdf_expand,
	.aead_open = aead_open,
	.aead_seal = aead_seal,
};

static const char *bind(void *(*lookup)(const char *name))
{
	const struct adapter_sym syms[] = {
		ADAPTER_SYM(suite_name_fn, "mbedtls_ssl_get_ciphersuite"),
		ADAPTER_SYM(suite_id_fn, "mbedtls_ssl_get_ciphersuite_id"),
		ADAPTER_SYM(mbed_adapter_228.suite_name, "mbedtls_ssl_get_ciphersuite"),
		ADAPTER_SYM(mbed_adapter_228.version_name, "mbedtls_ssl_get_version"),
		ADAPTER_SYM(mbed_adapter_228.max_out_payload,
			    "mbedtls_ssl_get_max_out_record_payload"),
		ADAPTER_SYM(conf_export_fn, "mbedtls_ssl_conf_export_keys_cb"),
		ADAPTER_SYM(conf_export_ext_fn, "mbedtls_ssl_conf_export_keys_ext_cb"),
		ADAPTER_CRYPTO_SYMS,
	};
	return adapter_bind(syms, sizeof(syms) / sizeof(syms[0]), lookup);
}
