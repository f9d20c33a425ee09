/* SPDX-License-Identifier: Apache-2.0 */
/* load-client: many threads, each making many TLS connections to an echo server (mbed-server
 * --threads --echo), every connection with its own version and suite from a fixed mix and its own
 * amount of data, checked byte for byte when it comes back. An ordinary Mbed TLS 3.6 program:
 * public API, mbedtls_net_* sockets, a fresh context per connection.
 *
 * usage: load-client --port P [--threads T] [--connections N] [--cert DIR] [--server-pid PID]
 *                    [--max-size BYTES]
 * Prints, at the end:
 *   MIX <version> <suite> <connections>          (one line per entry of the mix)
 *   RSS <who> warm=<KiB> end=<KiB>               (client, and server with --server-pid; "warm"
 *                                                 is taken when a tenth of the connections are done)
 *   LOAD threads=T connections=T*N ok=<n> failed=<n>
 * and "ERROR thread=<t> conn=<i> <suite> <what>: -0x<code>" for each failed connection (a thread
 * stops at its first failure). Exit status 0 only when every connection was byte-exact. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#define CHUNK 16384

/* Every version and suite the kernel can carry, and two it cannot (those stay in Mbed TLS). */
static const struct {
	const char *suite;
	int version; /* mbedtls_ssl_protocol_version */
} mix[] = {
	{ "TLS1-3-AES-128-GCM-SHA256", MBEDTLS_SSL_VERSION_TLS1_3 },
	{ "TLS-ECDHE-RSA-WITH-AES-128-GCM-SHA256", MBEDTLS_SSL_VERSION_TLS1_2 },
	{ "TLS1-3-AES-256-GCM-SHA384", MBEDTLS_SSL_VERSION_TLS1_3 },
	{ "TLS-ECDHE-ECDSA-WITH-AES-256-GCM-SHA384", MBEDTLS_SSL_VERSION_TLS1_2 },
	{ "TLS1-3-CHACHA20-POLY1305-SHA256", MBEDTLS_SSL_VERSION_TLS1_3 },
	{ "TLS-ECDHE-RSA-WITH-CHACHA20-POLY1305-SHA256", MBEDTLS_SSL_VERSION_TLS1_2 },
	{ "TLS1-3-AES-128-CCM-SHA256", MBEDTLS_SSL_VERSION_TLS1_3 },
	{ "TLS-ECDHE-ECDSA-WITH-AES-128-CCM", MBEDTLS_SSL_VERSION_TLS1_2 },
	{ "TLS1-3-AES-128-CCM-8-SHA256", MBEDTLS_SSL_VERSION_TLS1_3 },
	{ "TLS-ECDHE-RSA-WITH-AES-128-CBC-SHA256", MBEDTLS_SSL_VERSION_TLS1_2 },
};
#define MIX_N (sizeof(mix) / sizeof(mix[0]))

/* Data per connection, cycled: small requests, exactly one record, one byte over, several. */
static const size_t sizes[] = { 1, 1000, 16384, 16385, 40000, 4096, 100000 };
#define SIZES_N (sizeof(sizes) / sizeof(sizes[0]))

static const char *port = "4433", *cert_dir;
static int threads = 64, connections = 1000;
static long server_pid;
static size_t max_size = SIZE_MAX;

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_x509_crt ca;
static mbedtls_ssl_config confs[MIX_N];
static int suite_ids[MIX_N][2];

static atomic_int done_count, ok_count, failed_count;
static atomic_int per_mix[MIX_N];
static long rss_warm[2] = { -1, -1 };
static atomic_flag warm_taken = ATOMIC_FLAG_INIT;

static void die(const char *what, int ret)
{
	char text[120];
	mbedtls_strerror(ret, text, sizeof(text));
	fprintf(stderr, "ERROR %s: -0x%04x %s\n", what, (unsigned)-ret, text);
	exit(1);
}

static int rng(void *p, unsigned char *out, size_t len)
{
	(void)p;
	return mbedtls_ctr_drbg_random(&drbg, out, len); /* locks: safe from any thread */
}

/* VmRSS of a process in KiB, -1 when it cannot be read. */
static long rss_kib(long pid)
{
	char path[64], line[256];
	if (pid)
		snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	FILE *f = fopen(path, "r");
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static void setup(void)
{
	int ret;
	if (psa_crypto_init() != PSA_SUCCESS)
		die("psa_crypto_init", -1);
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0)))
		die("ctr_drbg_seed", ret);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/ca.crt", cert_dir);
	mbedtls_x509_crt_init(&ca);
	if ((ret = mbedtls_x509_crt_parse_file(&ca, path)))
		die(path, ret);
	for (size_t i = 0; i < MIX_N; i++) {
		mbedtls_ssl_config *c = &confs[i];
		mbedtls_ssl_config_init(c);
		if ((ret = mbedtls_ssl_config_defaults(c, MBEDTLS_SSL_IS_CLIENT,
						       MBEDTLS_SSL_TRANSPORT_STREAM,
						       MBEDTLS_SSL_PRESET_DEFAULT)))
			die("config_defaults", ret);
		mbedtls_ssl_conf_rng(c, rng, NULL);
		mbedtls_ssl_conf_ca_chain(c, &ca, NULL);
		mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_REQUIRED);
		mbedtls_ssl_conf_min_tls_version(c, (mbedtls_ssl_protocol_version)mix[i].version);
		mbedtls_ssl_conf_max_tls_version(c, (mbedtls_ssl_protocol_version)mix[i].version);
		suite_ids[i][0] = mbedtls_ssl_get_ciphersuite_id(mix[i].suite);
		if (!suite_ids[i][0])
			die(mix[i].suite, -1);
		mbedtls_ssl_conf_ciphersuites(c, suite_ids[i]);
	}
}

static void fill(unsigned char *buf, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull | 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (unsigned char)(x >> 32);
	}
}

static bool want(int ret)
{
	return ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE;
}

/* One connection: handshake, SIZE bytes echoed in chunks and compared, close_notify both ways.
 * 0, or an Mbed TLS error with *what naming the step. */
static int one_connection(mbedtls_ssl_context *ssl, mbedtls_net_context *net, size_t size,
			  uint64_t seed, const char **what)
{
	static _Thread_local unsigned char out[CHUNK], in[CHUNK];
	int ret;
	*what = "connect";
	if ((ret = mbedtls_net_connect(net, "127.0.0.1", port, MBEDTLS_NET_PROTO_TCP)))
		return ret;
	mbedtls_ssl_set_bio(ssl, net, mbedtls_net_send, mbedtls_net_recv, NULL);
	*what = "handshake";
	while ((ret = mbedtls_ssl_handshake(ssl)) != 0)
		if (!want(ret))
			return ret;
	for (size_t off = 0; off < size;) {
		size_t n = size - off < CHUNK ? size - off : CHUNK;
		fill(out, n, seed + off);
		*what = "write";
		for (size_t w = 0; w < n;) {
			ret = mbedtls_ssl_write(ssl, out + w, n - w);
			if (want(ret))
				continue;
			if (ret < 0)
				return ret;
			w += (size_t)ret;
		}
		*what = "read";
		for (size_t r = 0; r < n;) {
			ret = mbedtls_ssl_read(ssl, in + r, n - r);
			if (want(ret))
				continue;
			if (ret <= 0)
				return ret ? ret : MBEDTLS_ERR_SSL_CONN_EOF;
			r += (size_t)ret;
		}
		*what = "compare";
		if (memcmp(in, out, n))
			return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
		off += n;
	}
	*what = "close_notify";
	while ((ret = mbedtls_ssl_close_notify(ssl)) != 0)
		if (!want(ret))
			return ret;
	*what = "reading the answer to close_notify";
	do
		ret = mbedtls_ssl_read(ssl, in, sizeof(in));
	while (want(ret));
	return ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == 0 ? 0
	       : ret > 0 ? MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE
			 : ret;
}

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg;
	int total = threads * connections;
	for (int i = 0; i < connections; i++) {
		size_t m = (size_t)(t + i) % MIX_N;
		size_t size = sizes[(size_t)(t * 3 + i) % SIZES_N];
		if (size > max_size)
			size = max_size;
		mbedtls_ssl_context ssl;
		mbedtls_net_context net;
		mbedtls_ssl_init(&ssl);
		mbedtls_net_init(&net);
		const char *what = "setup";
		int ret = mbedtls_ssl_setup(&ssl, &confs[m]);
		if (!ret)
			ret = mbedtls_ssl_set_hostname(&ssl, "localhost");
		if (!ret)
			ret = one_connection(&ssl, &net, size, ((uint64_t)t << 32) | (uint64_t)i,
					     &what);
		if (!ret && strcmp(mbedtls_ssl_get_ciphersuite(&ssl), mix[m].suite)) {
			what = "negotiated another suite";
			ret = MBEDTLS_ERR_SSL_INTERNAL_ERROR;
		}
		mbedtls_ssl_free(&ssl);
		mbedtls_net_free(&net);
		if (ret) {
			char text[120];
			mbedtls_strerror(ret, text, sizeof(text));
			printf("ERROR thread=%d conn=%d %s %s: -0x%04x %s\n", t, i, mix[m].suite,
			       what, (unsigned)-ret, text);
			atomic_fetch_add(&failed_count, 1);
			break;
		}
		atomic_fetch_add(&ok_count, 1);
		atomic_fetch_add(&per_mix[m], 1);
		/* Warm: a tenth done (thread stacks, arenas, caches have all been made once). */
		if (atomic_fetch_add(&done_count, 1) + 1 >= total / 10 &&
		    !atomic_flag_test_and_set(&warm_taken)) {
			rss_warm[0] = rss_kib(0);
			rss_warm[1] = server_pid ? rss_kib(server_pid) : -1;
		}
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: load-client --port P [--threads T] [--connections N] [--cert DIR]"
			" [--server-pid PID] [--max-size BYTES]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "threads", required_argument, NULL, 't' },
		{ "connections", required_argument, NULL, 'n' },
		{ "cert", required_argument, NULL, 'c' },
		{ "server-pid", required_argument, NULL, 's' },
		{ "max-size", required_argument, NULL, 'm' },
		{ 0 },
	};
	int o;
	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (o) {
		case 'p': port = optarg; break;
		case 't': threads = atoi(optarg); break;
		case 'n': connections = atoi(optarg); break;
		case 'c': cert_dir = optarg; break;
		case 's': server_pid = atol(optarg); break;
		case 'm': max_size = (size_t)atol(optarg); break;
		default: usage();
		}
	}
	if (!cert_dir || threads < 1 || connections < 1 || optind < argc)
		usage();
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	setup();

	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	for (int t = 0; t < threads; t++)
		if ((errno = pthread_create(&tid[t], NULL, worker, (void *)(intptr_t)t))) {
			perror("pthread_create");
			return 1;
		}
	for (int t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
	free(tid);

	for (size_t i = 0; i < MIX_N; i++)
		printf("MIX %s %s %d\n",
		       mix[i].version == MBEDTLS_SSL_VERSION_TLS1_3 ? "1.3" : "1.2", mix[i].suite,
		       atomic_load(&per_mix[i]));
	printf("RSS client warm=%ld end=%ld\n", rss_warm[0], rss_kib(0));
	if (server_pid)
		printf("RSS server warm=%ld end=%ld\n", rss_warm[1], rss_kib(server_pid));
	printf("LOAD threads=%d connections=%d ok=%d failed=%d\n", threads, threads * connections,
	       atomic_load(&ok_count), atomic_load(&failed_count));

	for (size_t i = 0; i < MIX_N; i++)
		mbedtls_ssl_config_free(&confs[i]);
	mbedtls_x509_crt_free(&ca);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	mbedtls_psa_crypto_free();
	return atomic_load(&failed_count) || atomic_load(&ok_count) != threads * connections;
}
