/* SPDX-License-Identifier: Apache-2.0 */
/* Test-only plugin for tests/realapps/two-copies.py: built twice, once linked with Mbed TLS 2.28
 * and once with 3.6, each loaded RTLD_LOCAL into one process. Each side_* function calls the
 * Mbed TLS function of the same name from this object, so the call binds in this object's scope,
 * its own copy, unless something in front of it (the shim) forwards it elsewhere. No Mbed TLS
 * header: contexts are opaque buffers, and these prototypes are the same in both versions. */
#define FWD(ret, name, params, args)            \
	ret mbedtls_ssl_##name params;          \
	ret side_##name params                  \
	{                                       \
		return mbedtls_ssl_##name args; \
	}

typedef void *p;
FWD(void, init, (p s), (s))
FWD(int, setup, (p s, p c), (s, c))
FWD(void, set_bio, (p s, p b, p f, p r, p t), (s, b, f, r, t))
FWD(int, handshake, (p s), (s))
FWD(int, read, (p s, p b, unsigned long n), (s, b, n))
FWD(int, write, (p s, p b, unsigned long n), (s, b, n))
FWD(int, close_notify, (p s), (s))
FWD(void, free, (p s), (s))
FWD(void, config_init, (p c), (c))
FWD(int, config_defaults, (p c, int e, int t, int r), (c, e, t, r))
FWD(void, config_free, (p c), (c))

/* 2.x only (the config's key export setters): weak, so that the 3.6 side (which never calls
 * them) loads without them; -1 where the library lacks one. */
#define FWD_2X(name)                                                  \
	void mbedtls_ssl_##name(p c, p f, p a) __attribute__((weak)); \
	int side_##name(p c, p f, p a)                                \
	{                                                             \
		if (!mbedtls_ssl_##name)                              \
			return -1;                                    \
		mbedtls_ssl_##name(c, f, a);                          \
		return 0;                                             \
	}
FWD_2X(conf_export_keys_ext_cb)
FWD_2X(conf_export_keys_cb)
