/* SPDX-License-Identifier: Apache-2.0 */
/* Finds the process's own Mbed TLS at first use and picks the adapter for its version.
 *
 * The shim links no Mbed TLS: a library it pulled into the global scope would capture the symbols
 * of a different Mbed TLS the program dlopen()s later (Debian 12's lighttpd loads mod_mbedtls on
 * 2.28 that way). The program's copy is the libmbedtls.so.* object already loaded when an
 * interposed function is first called (its caller needs it); every symbol is taken from that
 * object's own scope (it and its dependencies libmbedcrypto/libmbedx509), which also reaches
 * copies dlopen()ed RTLD_LOCAL. Everything is resolved once; no call pays for it again. */
#include "forklock.h"
#include "real.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* ---- stubs: what a symbol the running Mbed TLS lacks does when called anyway ---- */

#define UNAVAILABLE MBEDTLS_ERR_SSL_FEATURE_UNAVAILABLE
typedef mbedtls_ssl_context ctx_t;
typedef mbedtls_ssl_config conf_t;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
static void ctx_void(ctx_t *s)
{
}
static int ctx_int(ctx_t *s)
{
	return UNAVAILABLE;
}
static int setup_stub(ctx_t *s, const conf_t *c)
{
	return UNAVAILABLE;
}
static void set_bio_stub(ctx_t *s, void *p, mbedtls_ssl_send_t *f, mbedtls_ssl_recv_t *r,
			 mbedtls_ssl_recv_timeout_t *t)
{
}
static void export_stub(ctx_t *s, mbedtls_ssl_export_keys_t *f, void *p)
{
}
static int read_stub(ctx_t *s, unsigned char *b, size_t n)
{
	return UNAVAILABLE;
}
static int write_stub(ctx_t *s, const unsigned char *b, size_t n)
{
	return UNAVAILABLE;
}
static int alert_stub(ctx_t *s, unsigned char l, unsigned char m)
{
	return UNAVAILABLE;
}
static size_t avail_stub(const ctx_t *s)
{
	return 0;
}
static int pending_stub(const ctx_t *s)
{
	return 0;
}
static void conf_void(conf_t *c)
{
}
static int defaults_stub(conf_t *c, int e, int t, int p)
{
	return UNAVAILABLE;
}
static void conf_int(conf_t *c, int v)
{
}
static void conf_u32(conf_t *c, uint32_t v)
{
}
static void conf_export_stub(conf_t *c, void (*f)(void), void *p)
{
}
#pragma GCC diagnostic pop

#define STUBS                                                                                  \
	{                                                                                      \
		.init = ctx_void, .setup = setup_stub, .set_bio = set_bio_stub,                \
		.set_export_keys_cb = export_stub, .handshake = ctx_int,                       \
		.handshake_step = ctx_int, .read = read_stub, .write = write_stub,             \
		.close_notify = ctx_int, .send_alert_message = alert_stub,                     \
		.get_bytes_avail = avail_stub, .check_pending = pending_stub,                  \
		.get_max_out_record_payload = pending_stub, .session_reset = ctx_int,          \
		.free = ctx_void, .renegotiate = ctx_int, .config_init = conf_void,            \
		.config_defaults = defaults_stub, .config_free = conf_void,                    \
		.conf_endpoint = conf_int, .conf_transport = conf_int,                         \
		.conf_renegotiation = conf_int, .conf_read_timeout = conf_u32,                 \
		.conf_signal_tickets = conf_int, .conf_export_keys_cb = conf_export_stub,      \
		.conf_export_keys_ext_cb = conf_export_stub,                                   \
		/* net_send, net_recv, net_recv_timeout: NULL (only compared, never called) */ \
	}
struct real_fns real = STUBS;
static const struct real_fns stubs = STUBS;
#undef STUBS

/* Where each wrapped function's real one goes, by name. */
#define F(field, name)                                 \
	{                                              \
		name, offsetof(struct real_fns, field) \
	}
static const struct {
	const char *name;
	size_t at;
} wrapped[] = {
	F(init, "mbedtls_ssl_init"),
	F(setup, "mbedtls_ssl_setup"),
	F(set_bio, "mbedtls_ssl_set_bio"),
	F(set_export_keys_cb, "mbedtls_ssl_set_export_keys_cb"),
	F(handshake, "mbedtls_ssl_handshake"),
	F(handshake_step, "mbedtls_ssl_handshake_step"),
	F(read, "mbedtls_ssl_read"),
	F(write, "mbedtls_ssl_write"),
	F(close_notify, "mbedtls_ssl_close_notify"),
	F(send_alert_message, "mbedtls_ssl_send_alert_message"),
	F(get_bytes_avail, "mbedtls_ssl_get_bytes_avail"),
	F(check_pending, "mbedtls_ssl_check_pending"),
	F(get_max_out_record_payload, "mbedtls_ssl_get_max_out_record_payload"),
	F(session_reset, "mbedtls_ssl_session_reset"),
	F(free, "mbedtls_ssl_free"),
	F(renegotiate, "mbedtls_ssl_renegotiate"),
	F(config_init, "mbedtls_ssl_config_init"),
	F(config_defaults, "mbedtls_ssl_config_defaults"),
	F(config_free, "mbedtls_ssl_config_free"),
	F(conf_endpoint, "mbedtls_ssl_conf_endpoint"),
	F(conf_transport, "mbedtls_ssl_conf_transport"),
	F(conf_renegotiation, "mbedtls_ssl_conf_renegotiation"),
	F(conf_read_timeout, "mbedtls_ssl_conf_read_timeout"),
	F(conf_signal_tickets, "mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets"),
	F(conf_export_keys_cb, "mbedtls_ssl_conf_export_keys_cb"),
	F(conf_export_keys_ext_cb, "mbedtls_ssl_conf_export_keys_ext_cb"),
	F(net_send, "mbedtls_net_send"),
	F(net_recv, "mbedtls_net_recv"),
	F(net_recv_timeout, "mbedtls_net_recv_timeout"),
};
#undef F

void real_fill(struct real_fns *f, void *first, void *then)
{
	for (size_t i = 0; i < sizeof(wrapped) / sizeof(wrapped[0]); i++) {
		void *p = first ? dlsym(first, wrapped[i].name) : NULL;
		if (!p && then)
			p = dlsym(then, wrapped[i].name);
		void **slot = (void **)((char *)f + wrapped[i].at);
		*slot = p ? p : *(void *const *)((const char *)&stubs + wrapped[i].at);
	}
}

static struct mbed_adapter *const adapters[] = { &mbed_adapter_36, &mbed_adapter_228 };

static void *lib; /* dlopen handle of the process's libmbedtls, or NULL */
static const struct mbed_adapter *chosen;
static bool usable; /* chosen != NULL, read by every wrapper call: one byte load */
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* ---- the loaded Mbed TLS objects (dl_iterate_phdr) ---- */

struct scan {
	unsigned ssl, crypto;	 /* libmbedtls.so* and libmbedcrypto.so* objects loaded */
	char ssl_path[4096];	 /* the first libmbedtls's path */
	unsigned long long adds; /* the loader's count of objects ever loaded */
};

static int scan_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *s = arg;
	(void)size;
	s->adds = info->dlpi_adds;
	const char *base = strrchr(info->dlpi_name, '/');
	base = base ? base + 1 : info->dlpi_name;
	if (strncmp(base, "libmbedtls.so", 13) == 0 && s->ssl++ == 0 &&
	    strlen(info->dlpi_name) < sizeof(s->ssl_path))
		strcpy(s->ssl_path, info->dlpi_name);
	else if (strncmp(base, "libmbedcrypto.so", 16) == 0)
		s->crypto++;
	return 0;
}

static void *lookup(const char *name)
{
	return lib ? dlsym(lib, name) : NULL;
}

/* The adapter for the running library, or NULL with *why set. */
static const struct mbed_adapter *choose(const struct scan *s, unsigned *version, const char **why)
{
	if (s->ssl == 0) {
		*why = dlsym(RTLD_NEXT, "mbedtls_ssl_init")
			       ? "Mbed TLS is not a shared libmbedtls here"
			       : "no Mbed TLS in the process";
		return NULL;
	}
	if (s->ssl > 1 || s->crypto > 1) {
		*why = "two Mbed TLS copies in the process";
		return NULL;
	}
	unsigned (*get_version)(void);
	*(void **)&get_version = lookup("mbedtls_version_get_number");
	if (!lib || !get_version) {
		*why = "cannot read the Mbed TLS version";
		return NULL;
	}
	*version = get_version();
	*why = "no adapter for this version yet";
	for (size_t i = 0; i < sizeof(adapters) / sizeof(adapters[0]); i++) {
		if (adapters[i]->abi != *version >> 16)
			continue;
		static char lacks[128];
		const char *missing = adapters[i]->bind(lookup);
		if (!missing)
			return adapters[i];
		snprintf(lacks, sizeof(lacks), "it lacks %s", missing);
		*why = lacks;
	}
	return NULL;
}

/* dl_iterate_phdr holds the loader's lock while it walks, and a fork() copies that lock as held
 * into the child, which then hangs in its next walk (glibc 2.36). The shim's walks run under
 * scan_lock, which fork() takes first (below): none is under way when the process is copied. */
static pthread_mutex_t scan_lock = PTHREAD_MUTEX_INITIALIZER;

__attribute__((constructor)) static void real_at_load(void)
{
	forklock_add(&scan_lock);
}

void real_walk(int (*cb)(struct dl_phdr_info *, size_t, void *), void *arg)
{
	pthread_mutex_lock(&scan_lock);
	dl_iterate_phdr(cb, arg);
	pthread_mutex_unlock(&scan_lock);
}

atomic_bool real_many;
static atomic_ullong seen_adds;

/* Whether the copies loaded are more than the one resolve() bound `real` to. */
static bool many_copies(const struct scan *s)
{
	return s->ssl > 1 || s->crypto > 1 || (s->ssl == 1 && !lib);
}

static void resolve(void)
{
	struct scan s = { 0 };
	real_walk(scan_object, &s);
	atomic_store(&seen_adds, s.adds);
	/* RTLD_NOLOAD: only the copy already there. The reference it takes keeps the library
	 * loaded while the pointers below are in use. */
	if (s.ssl >= 1 && s.ssl_path[0])
		lib = dlopen(s.ssl_path, RTLD_LAZY | RTLD_NOLOAD);
	/* Each symbol on its own: from the program's libmbedtls, else the next definition after
	 * the shim (an Mbed TLS built into another object); one neither has keeps its stub. */
	real_fill(&real, lib, RTLD_NEXT);
	atomic_store(&real_many, many_copies(&s));
	unsigned v = 0;
	const char *why = NULL;
	chosen = choose(&s, &v, &why);
	usable = chosen != NULL;
	if (usable)
		return;
	const char *base = strrchr(s.ssl_path, '/');
	if (v)
		log_msg(LOG_INFO, "Mbed TLS %u.%u.%u (%s): %s; passing every call through", v >> 24,
			(v >> 16) & 0xff, (v >> 8) & 0xff, base ? base + 1 : s.ssl_path, why);
	else
		log_msg(LOG_INFO, "%s; passing every call through", why);
}

bool real_resolve(void)
{
	pthread_once(&once, resolve);
	return usable;
}

const struct mbed_adapter *real_adapter(void)
{
	pthread_once(&once, resolve);
	return chosen;
}

static int first_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	*(unsigned long long *)arg = info->dlpi_adds;
	return 1;
}

void real_note_loads(void)
{
	if (atomic_load_explicit(&real_many, memory_order_relaxed))
		return;
	struct scan s = { 0 };
	unsigned long long adds = 0;
	pthread_mutex_lock(&scan_lock);
	dl_iterate_phdr(first_object, &adds);
	if (adds != atomic_load(&seen_adds)) {
		dl_iterate_phdr(scan_object, &s);
		atomic_store(&seen_adds, s.adds);
	}
	pthread_mutex_unlock(&scan_lock);
	if (s.adds && many_copies(&s) && !atomic_exchange(&real_many, true))
		log_msg(LOG_INFO, "another Mbed TLS copy was loaded; new connections pass through, "
				  "each call to its caller's copy");
}
