/* SPDX-License-Identifier: Apache-2.0 */
/* secret-scan: after the hand-off, no secret, key or IV of the connection is left in the shim's
 * memory or in its log. A TLS client (linked with the shim, like export-server) collects what the
 * export-keys callback gives the application, derives the record keys and IVs from it (public Mbed
 * TLS APIs), and asks ktlsshim_debug_count for each. In manual mode it first checks that the hook
 * does find the secrets while the shim still needs them (so a 0 later means something), then
 * hands off with ktlsshim_offload. Finally it searches the shim's log (KTLS_SHIM_LOG_FILE) for each
 * one, raw and in hex. TLS 1.3: the next generation's traffic secrets, which the shim keeps for
 * a KeyUpdate only where the kernel can rekey, are counted apart ("next=").
 * usage: secret-scan PORT CERTDIR TLS auto|manual   (the server: mbed-server --echo)
 * Prints "SCAN ..." and exits 0 when nothing was found where it must not be. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <psa/crypto.h>

#include "ktlsshim.h"

#define MAX_NEEDLES 16

struct needle {
	const char *name;
	unsigned char b[64];
	size_t len;
};
static struct needle needles[MAX_NEEDLES];
static int nneedles;
/* TLS 1.3: the next generation's traffic secrets, which the shim keeps only where the kernel can
 * rekey (for a KeyUpdate); counted apart. */
static struct needle next[2];

static struct {
	unsigned char secret[4][64]; /* TLS 1.3: c hs, s hs, c app, s app */
	size_t secret_len[4];
	unsigned char master[48];
	unsigned char
		randoms[64]; /* server_random || client_random, as the TLS 1.2 key block wants */
	mbedtls_tls_prf_types prf;
	int tls12;
} cap;

static void die(const char *what, int err)
{
	fprintf(stderr, "ERROR %s: %d\n", what, err);
	exit(1);
}

static void add(const char *name, const unsigned char *b, size_t len)
{
	if (nneedles < MAX_NEEDLES && len >= 4 && len <= sizeof(needles[0].b)) {
		needles[nneedles].name = name;
		memcpy(needles[nneedles].b, b, len);
		needles[nneedles++].len = len;
	}
}

static void export_cb(void *p, mbedtls_ssl_key_export_type type, const unsigned char *secret,
		      size_t len, const unsigned char cr[32], const unsigned char sr[32],
		      mbedtls_tls_prf_types prf)
{
	(void)p;
	int slot = type == MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_HANDSHAKE_TRAFFIC_SECRET     ? 0
		   : type == MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_HANDSHAKE_TRAFFIC_SECRET   ? 1
		   : type == MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_APPLICATION_TRAFFIC_SECRET ? 2
		   : type == MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_APPLICATION_TRAFFIC_SECRET ? 3
											     : -1;
	if (slot >= 0 && len <= 64) {
		memcpy(cap.secret[slot], secret, len);
		cap.secret_len[slot] = len;
	} else if (type == MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET && len == 48) {
		memcpy(cap.master, secret, 48);
		memcpy(cap.randoms, sr, 32);
		memcpy(cap.randoms + 32, cr, 32);
		cap.prf = prf;
		cap.tls12 = 1;
	}
}

/* RFC 8446 7.1 with an empty context. */
static void expand_label(mbedtls_md_type_t md, const unsigned char *secret, size_t slen,
			 const char *label, unsigned char *out, size_t olen)
{
	unsigned char info[64];
	size_t ll = strlen(label), n = 0;
	info[n++] = (unsigned char)(olen >> 8);
	info[n++] = (unsigned char)olen;
	info[n++] = (unsigned char)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, ll);
	n += 6 + ll;
	info[n++] = 0;
	if (mbedtls_hkdf_expand(mbedtls_md_info_from_type(md), secret, slen, info, n, out, olen))
		die("hkdf", 0);
}

/* Every secret, key and IV of the connection, as the shim would have derived them. */
static void collect(const char *suite)
{
	size_t key_len = strstr(suite, "AES-256") || strstr(suite, "CHACHA") ? 32 : 16;
	static const char *const names[4] = { "client hs secret", "server hs secret",
					      "client app secret", "server app secret" };
	static const char *const kn[2][2] = { { "client key", "client iv" },
					      { "server key", "server iv" } };
	if (cap.tls12) {
		size_t iv_len = strstr(suite, "CHACHA") ? 12 : 4;
		unsigned char kb[2 * 32 + 2 * 12];
		if (mbedtls_ssl_tls_prf(cap.prf, cap.master, 48, "key expansion", cap.randoms, 64,
					kb, 2 * key_len + 2 * iv_len))
			die("prf", 0);
		add("master secret", cap.master, 48);
		for (int s = 0; s < 2; s++) {
			add(kn[s][0], kb + s * key_len, key_len);
			add(kn[s][1], kb + 2 * key_len + s * iv_len, iv_len);
		}
		return;
	}
	mbedtls_md_type_t md = strstr(suite, "SHA384") ? MBEDTLS_MD_SHA384 : MBEDTLS_MD_SHA256;
	static unsigned char derived[4][2][32];
	for (int i = 0; i < 4; i++) {
		if (!cap.secret_len[i])
			die("a TLS 1.3 secret was not exported", i);
		add(names[i], cap.secret[i], cap.secret_len[i]);
		expand_label(md, cap.secret[i], cap.secret_len[i], "key", derived[i][0], key_len);
		expand_label(md, cap.secret[i], cap.secret_len[i], "iv", derived[i][1], 12);
		add(kn[i % 2][0], derived[i][0], key_len);
		add(kn[i % 2][1], derived[i][1], 12);
	}
	for (int i = 0; i < 2; i++) {
		next[i].name = i ? "server next app secret" : "client next app secret";
		next[i].len = cap.secret_len[2 + i];
		expand_label(md, cap.secret[2 + i], next[i].len, "traffic upd", next[i].b,
			     next[i].len);
	}
}

/* Copies of the next secrets in the shim's memory: one per direction it keeps for a KeyUpdate. */
static size_t next_in_shim(void)
{
	size_t n = 0;
	for (int i = 0; i < 2; i++)
		if (next[i].len)
			n += ktlsshim_debug_count(next[i].b, next[i].len);
	return n;
}

/* How many needles the shim's memory holds (each counted once per copy). */
static size_t in_shim(int verbose)
{
	size_t total = 0;
	for (int i = 0; i < nneedles; i++) {
		size_t n = ktlsshim_debug_count(needles[i].b, needles[i].len);
		if (n && verbose)
			printf("FOUND %s in shim memory (%zu)\n", needles[i].name, n);
		total += n;
	}
	return total;
}

static size_t in_log(const char *path)
{
	FILE *f = path ? fopen(path, "rb") : NULL;
	if (!f)
		return 0;
	static char text[1 << 20];
	size_t len = fread(text, 1, sizeof(text) - 1, f), found = 0;
	fclose(f);
	text[len] = 0;
	for (int i = 0; i < nneedles; i++) {
		char hex[2][129];
		for (size_t j = 0; j < needles[i].len; j++) {
			snprintf(hex[0] + 2 * j, 3, "%02x", needles[i].b[j]);
			snprintf(hex[1] + 2 * j, 3, "%02X", needles[i].b[j]);
		}
		int raw = memmem(text, len, needles[i].b, needles[i].len) != NULL;
		int hx = strstr(text, hex[0]) || strstr(text, hex[1]);
		if (raw || hx) {
			printf("FOUND %s in the log\n", needles[i].name);
			found++;
		}
	}
	return found;
}

int main(int argc, char **argv)
{
	if (argc != 5)
		die("usage: secret-scan PORT CERTDIR TLS auto|manual", 2);
	int manual = !strcmp(argv[4], "manual"), ret;
	char path[512];
	mbedtls_net_context net;
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;

	psa_crypto_init();
	mbedtls_net_init(&net);
	mbedtls_ssl_init(&ssl);
	mbedtls_ssl_config_init(&conf);
	mbedtls_x509_crt_init(&ca);
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0);
	snprintf(path, sizeof(path), "%s/ca.crt", argv[2]);
	if ((ret = mbedtls_x509_crt_parse_file(&ca, path)))
		die("CA", ret);
	mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
				    MBEDTLS_SSL_PRESET_DEFAULT);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_protocol_version v =
		strcmp(argv[3], "1.2") ? MBEDTLS_SSL_VERSION_TLS1_3 : MBEDTLS_SSL_VERSION_TLS1_2;
	mbedtls_ssl_conf_min_tls_version(&conf, v);
	mbedtls_ssl_conf_max_tls_version(&conf, v);
	if ((ret = mbedtls_ssl_setup(&ssl, &conf)) ||
	    (ret = mbedtls_ssl_set_hostname(&ssl, "localhost")))
		die("setup", ret);
	mbedtls_ssl_set_export_keys_cb(&ssl, export_cb, NULL);
	if (manual && (ret = ktlsshim_set_manual(&ssl)))
		die(ktlsshim_strerror(ret), ret);
	if ((ret = mbedtls_net_connect(&net, "127.0.0.1", argv[1], MBEDTLS_NET_PROTO_TCP)))
		die("connect", ret);
	mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
	while ((ret = mbedtls_ssl_handshake(&ssl)) != 0)
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			die("handshake", ret);
	collect(mbedtls_ssl_get_ciphersuite(&ssl));

	size_t before = 0;
	if (manual) {
		/* The hook must see the secrets while the shim still needs them for the hand-off. */
		before = in_shim(0);
		if (before == 0)
			die("the hook found nothing before the hand-off", 0);
		ret = ktlsshim_offload(&ssl, KTLSSHIM_TX | KTLSSHIM_RX);
		printf("OFFLOAD %s\n", ktlsshim_strerror(ret));
	}
	/* Traffic both ways after the hand-off, then the scan. */
	static const unsigned char hello[] = "hello through the kernel";
	unsigned char back[sizeof(hello)];
	if ((ret = mbedtls_ssl_write(&ssl, hello, sizeof(hello))) != (int)sizeof(hello))
		die("write", ret);
	for (size_t got = 0; got < sizeof(hello); got += (size_t)ret)
		if ((ret = mbedtls_ssl_read(&ssl, back + got, sizeof(hello) - got)) <= 0)
			die("read", ret);
	if (memcmp(back, hello, sizeof(hello)))
		die("echo differs", 0);
	size_t after = in_shim(1), next_kept = next_in_shim();
	mbedtls_ssl_close_notify(&ssl);
	for (int i = 0; i < 2; i++)
		if (next[i].len)
			add(next[i].name, next[i].b, next[i].len); /* never in the log either */
	size_t logged = in_log(getenv("KTLS_SHIM_LOG_FILE"));
	printf("SCAN %s %s needles=%d before=%zu after=%zu next=%zu in_log=%zu offloaded=%d\n",
	       mbedtls_ssl_get_version(&ssl), mbedtls_ssl_get_ciphersuite(&ssl), nneedles, before,
	       after, next_kept, logged, ktlsshim_offloaded(&ssl));
	mbedtls_ssl_free(&ssl);
	mbedtls_ssl_config_free(&conf);
	mbedtls_x509_crt_free(&ca);
	mbedtls_net_free(&net);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return after || logged;
}
