/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by mbed-server and mbed-client: see common.h. */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#if MBEDTLS_VERSION_MAJOR >= 3
#include <psa/crypto.h>
#endif

_Thread_local struct conn *conn_current;

/* ---- options ---------------------------------------------------------------------------- */

enum optid {
	OPT_PORT,
	OPT_PORT_FILE,
	OPT_HOST,
	OPT_CERT,
	OPT_TLS,
	OPT_SUITE,
	OPT_NONBLOCK,
	OPT_BIO,
	OPT_READ_TIMEOUT,
	OPT_DELAY,
	OPT_TICKETS,
	OPT_RESUME,
	OPT_CLIENT_CERT,
	OPT_CHAIN,
	OPT_HRR,
	OPT_CHUNK,
	OPT_PRE,
	OPT_UP,
	OPT_DOWN,
	OPT_ECHO,
	OPT_SEND_FILE,
	OPT_RECV_FILE,
	OPT_CONNECTIONS,
	OPT_PARALLEL,
	OPT_SERVE,
	OPT_THREADS,
	OPT_KEYLOG,
	OPT_HELP,
	OPT_COUNT
};

#define BOTH (ROLE_CLIENT | ROLE_SERVER)
static const struct optdef {
	const char *name, *arg; /* arg NULL: a flag */
	int roles;
	const char *help;
} optdefs[OPT_COUNT] = {
	[OPT_PORT] = { "port", "N", BOTH,
		       "server: port to listen on, 0 = any (default), printed as"
		       " \"PORT <n>\"; client: port to connect to (default 4433)" },
	[OPT_PORT_FILE] = { "port-file", "FILE", ROLE_SERVER, "also write the port to FILE" },
	[OPT_HOST] = { "host", "ADDR", BOTH,
		       "address to connect to / listen on (default 127.0.0.1)" },
	[OPT_CERT] = { "cert", "DIR", BOTH,
		       "certificates from tests/apps/gen-certs (default: the"
		       " build's certs/, found from the binary's path)" },
	[OPT_TLS] = { "tls", "1.2|1.3|any", BOTH, "protocol version (default any)" },
	[OPT_SUITE] = { "suite", "NAME", BOTH,
			"offer/accept only this Mbed TLS ciphersuite (and,"
			" without --tls, only its protocol version)" },
	[OPT_NONBLOCK] = { "nonblock", NULL, BOTH, "non-blocking socket and a poll() loop" },
	[OPT_BIO] = { "bio", "MODE", BOTH,
		      "BIO callbacks: net (mbedtls_net_*, the default); the app's own: sync"
		      " (send/recv), sync-rw (write/read), sync-iov (writev/readv), sync-msg"
		      " (sendmsg/recvmsg), own-wait (sync, polls 10 s before each recv),"
		      " timeout-error (SO_RCVTIMEO 10 s, its EAGAIN an error of its own),"
		      " poll-first (polls for ever before each recv),"
		      " buffering (reads ahead), async (other threads do the"
		      " I/O), two-socket (copies to a second socket), lie-count (one send reports"
		      " a byte it sends later), lie-fewer (one send reports a byte fewer), "
		      "lie-bytes (XORed on the wire), switch-fd"
		      " (moves to a dup mid-handshake); see tests/apps/bio.h" },
	[OPT_READ_TIMEOUT] = { "read-timeout", "MS", BOTH,
			       "mbedtls_ssl_conf_read_timeout and the"
			       " recv_timeout callback; timeouts in data phases are counted and "
			       "retried" },
	[OPT_DELAY] = { "delay", "MS", BOTH,
			"pause after the handshake (to make the peer's reads time"
			" out)" },
	[OPT_TICKETS] = { "tickets", "N", ROLE_SERVER,
			  "TLS 1.3 tickets to send per connection; N > 0"
			  " also enables TLS 1.2 tickets (default 0: no ticket callback)" },
	[OPT_RESUME] = { "resume", NULL, ROLE_CLIENT,
			 "resume each connection after the first with the"
			 " previous one's session (default --connections 2); prints RESUMED "
			 "yes|no" },
	[OPT_CLIENT_CERT] = { "client-cert", NULL, BOTH,
			      "client authentication (required by the"
			      " server)" },
	[OPT_CHAIN] = { "chain", "N", ROLE_SERVER,
			"present a certificate under N intermediate CAs"
			" (1-8)" },
	[OPT_HRR] = { "hrr", NULL, BOTH,
		      "TLS 1.3 HelloRetryRequest: the client's key share is X25519,"
		      " which the server does not accept" },
	[OPT_CHUNK] = { "chunk", "BYTES", BOTH, "size of each write and read (default 16K)" },
	[OPT_PRE] = { "pre-data", "BYTES", BOTH,
		      "request/response of BYTES each way right after the"
		      " handshake" },
	[OPT_UP] = { "up", "BYTES", BOTH, "bytes from client to server (default 0)" },
	[OPT_DOWN] = { "down", "BYTES", BOTH,
		       "bytes from server to client, after the up phase"
		       " (default 0)" },
	[OPT_ECHO] = { "echo", NULL, BOTH,
		       "server: send back all it receives until the client"
		       " closes; client: read each --up chunk back and check it (for echo "
		       "servers)" },
	[OPT_SEND_FILE] = { "send-file", "FILE", BOTH,
			    "send FILE as this side's bulk data instead of"
			    " the generated stream" },
	[OPT_RECV_FILE] = { "recv-file", "FILE", BOTH,
			    "store the peer's bulk data in FILE, reading"
			    " until it closes, instead of checking the stream (one connection)" },
	[OPT_CONNECTIONS] = { "connections", "N", ROLE_CLIENT,
			      "connections in sequence (default 1)" },
	[OPT_PARALLEL] = { "parallel", "N", ROLE_CLIENT,
			   "threads, each making --connections"
			   " connections (default 1)" },
	[OPT_SERVE] = { "serve", "N", ROLE_SERVER, "exit after N connections (default 0: never)" },
	[OPT_THREADS] = { "threads", NULL, ROLE_SERVER,
			  "a thread and a fresh context per connection"
			  " (default: one at a time, mbedtls_ssl_session_reset between them)" },
	[OPT_KEYLOG] = { "keylog", "FILE", BOTH,
			 "append the secrets to FILE in NSS key log format" },
	[OPT_HELP] = { "help", NULL, BOTH, "this text" },
};

static void usage(enum role role, FILE *out)
{
	const char *me = role == ROLE_SERVER ? "server" : "client";
	fprintf(out,
		"usage: mbed-%s [OPTION]...\n"
		"An ordinary Mbed TLS 3.6 %s exchanging a verifiable byte stream.\n"
		"BYTES take a K or M suffix (KiB, MiB). The %s's options are accepted and "
		"ignored.\n\n",
		me, me, role == ROLE_SERVER ? "client" : "server");
	for (int i = 0; i < OPT_COUNT; i++) {
		const struct optdef *d = &optdefs[i];
		if (!(d->roles & role))
			continue;
		char lhs[64];
		snprintf(lhs, sizeof(lhs), "--%s%s%s", d->name, d->arg ? " " : "",
			 d->arg ? d->arg : "");
		fprintf(out, "  %-24s", lhs);
		/* The help, word-wrapped to 100 columns under its own indent. */
		int col = 26;
		for (const char *w = d->help; *w;) {
			int len = (int)strcspn(w, " ");
			if (col + 1 + len > 100) {
				fprintf(out, "\n%26s", "");
				col = 26;
			}
			col += fprintf(out, " %.*s", len, w);
			w += len + (w[len] == ' ');
		}
		fputc('\n', out);
	}
}

static void bad_usage(enum role role, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("ERROR ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	usage(role, stderr);
	exit(2);
}

/* A byte count: digits with an optional K or M (binary) suffix. */
static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return false;
	unsigned shift = 0;
	if (*end == 'K' || *end == 'k')
		shift = 10, end++;
	else if (*end == 'M' || *end == 'm')
		shift = 20, end++;
	if (*end || v > (UINT64_MAX >> shift))
		return false;
	*out = (uint64_t)v << shift;
	return true;
}

static int parse_count(enum role role, const char *name, const char *s, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		bad_usage(role, "--%s wants a number from %ld to %ld, not '%s'", name, min, max, s);
	return (int)v;
}

void opts_parse(struct opts *o, enum role role, int argc, char **argv)
{
	*o = (struct opts){
		.role = role,
		.host = "127.0.0.1",
		.port = role == ROLE_SERVER ? "0" : "4433",
		.chunk = 16384,
		.connections = 1,
		.parallel = 1,
	};
	struct option longopts[OPT_COUNT + 1];
	for (int i = 0; i < OPT_COUNT; i++)
		longopts[i] = (struct option){ optdefs[i].name,
					       optdefs[i].arg ? required_argument : no_argument,
					       NULL, 256 + i };
	longopts[OPT_COUNT] = (struct option){ 0 };

	bool connections_given = false;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c < 256)
			bad_usage(role, "unknown option");
		enum optid id = (enum optid)(c - 256);
		const char *name = optdefs[id].name;
		/* The other side's options are accepted and ignored: tests can give both apps one
		 * argument list. */
		if (!(optdefs[id].roles & role))
			continue;
		uint64_t size = 0;
		if ((id == OPT_CHUNK || id == OPT_PRE || id == OPT_UP || id == OPT_DOWN) &&
		    !parse_size(optarg, &size))
			bad_usage(role, "--%s wants a byte count like 100, 64K or 1M, not '%s'",
				  name, optarg);
		switch (id) {
		case OPT_PORT: o->port = optarg; break;
		case OPT_PORT_FILE: o->port_file = optarg; break;
		case OPT_HOST: o->host = optarg; break;
		case OPT_CERT: o->cert_dir = optarg; break;
		case OPT_TLS:
			if (!strcmp(optarg, "1.2"))
				o->tls_version = MBEDTLS_SSL_VERSION_TLS1_2;
			else if (!strcmp(optarg, "1.3") && MBEDTLS_VERSION_MAJOR >= 3)
				o->tls_version = MBEDTLS_SSL_VERSION_TLS1_3;
			else if (!strcmp(optarg, "any"))
				o->tls_version = 0;
			else
				bad_usage(role, "--tls wants 1.2, 1.3 or any");
			break;
		case OPT_SUITE:
			o->suite[0] = mbedtls_ssl_get_ciphersuite_id(optarg);
			if (!o->suite[0])
				bad_usage(role, "unknown ciphersuite '%s'", optarg);
			break;
		case OPT_NONBLOCK: o->nonblock = true; break;
		case OPT_BIO:
			if (bio_mode_parse(optarg) < 0)
				bad_usage(role, "--bio wants one of %s", bio_mode_list());
			o->bio = (enum bio_mode)bio_mode_parse(optarg);
			break;
		case OPT_READ_TIMEOUT:
			o->read_timeout_ms = (uint32_t)parse_count(role, name, optarg, 1, INT_MAX);
			break;
		case OPT_DELAY:
			o->delay_ms = (uint32_t)parse_count(role, name, optarg, 0, INT_MAX);
			break;
		case OPT_TICKETS: o->tickets = parse_count(role, name, optarg, 0, 100); break;
		case OPT_RESUME: o->resume = true; break;
		case OPT_CLIENT_CERT: o->client_cert = true; break;
		case OPT_CHAIN: o->chain = parse_count(role, name, optarg, 1, 8); break;
		case OPT_HRR: o->hrr = true; break;
		case OPT_CHUNK:
			if (size == 0 || size > (16u << 20))
				bad_usage(role, "--chunk wants 1 byte to 16M");
			o->chunk = (size_t)size;
			break;
		case OPT_PRE: o->pre = size; break;
		case OPT_UP: o->up = size; break;
		case OPT_DOWN: o->down = size; break;
		case OPT_ECHO: o->echo = true; break;
		case OPT_SEND_FILE: o->send_file = optarg; break;
		case OPT_RECV_FILE: o->recv_file = optarg; break;
		case OPT_CONNECTIONS:
			o->connections = parse_count(role, name, optarg, 1, 1000000);
			connections_given = true;
			break;
		case OPT_PARALLEL: o->parallel = parse_count(role, name, optarg, 1, 1024); break;
		case OPT_SERVE: o->serve = parse_count(role, name, optarg, 0, INT_MAX); break;
		case OPT_THREADS: o->threads = true; break;
		case OPT_KEYLOG: o->keylog = optarg; break;
		case OPT_HELP: usage(role, stdout); exit(0);
		case OPT_COUNT: break;
		}
	}
	if (optind < argc)
		bad_usage(role, "unexpected argument '%s'", argv[optind]);
	/* A lone TLS 1.2 suite with TLS 1.3 also enabled fails the handshake (1.3 is chosen, with
	 * no suite for it): a suite implies its version. */
	if (o->suite[0] && !o->tls_version)
		o->tls_version =
			strncmp(mbedtls_ssl_get_ciphersuite_name(o->suite[0]), "TLS1-3-", 7)
				? MBEDTLS_SSL_VERSION_TLS1_2
				: MBEDTLS_SSL_VERSION_TLS1_3;
	if (o->resume && !connections_given)
		o->connections = 2;
	if (o->recv_file &&
	    (role == ROLE_SERVER ? o->serve != 1 : o->connections * o->parallel != 1))
		bad_usage(role, "--recv-file is for one connection (%s)",
			  role == ROLE_SERVER ? "--serve 1" : "no --connections/--parallel");
	/* The server's incoming data ends with the client's close: nothing can follow it. */
	if (role == ROLE_SERVER && o->recv_file && (o->down || o->send_file))
		bad_usage(role, "--recv-file on the server leaves no room for a down phase");
	if (o->read_timeout_ms && o->bio != BIO_NET && o->bio != BIO_SYNC)
		bad_usage(role, "--read-timeout works with --bio net or sync only");
	if (o->echo && (o->down || o->recv_file || (role == ROLE_SERVER && o->send_file)))
		bad_usage(role, "--echo takes no --down or --recv-file, and on the server no"
				" --send-file");
}

/* ---- process-wide TLS setup ------------------------------------------------------------- */

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_ssl_config conf;
static mbedtls_x509_crt ca_crt, own_crt[2];
static mbedtls_pk_context own_key[2];
static int keylog_fd = -1;

/* The application's own key export: one NSS key log line per secret, written with a single
 * O_APPEND write so that threads and processes sharing the file do not interleave lines. */
static void keylog_line(const char *label, const unsigned char client_random[32],
			const unsigned char *secret, size_t secret_len)
{
	char line[64 + 2 * 32 + 2 * 64 + 4];
	size_t n = (size_t)snprintf(line, sizeof(line), "%s ", label);
	for (int i = 0; client_random && i < 32; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x", client_random[i]);
	if (client_random)
		line[n++] = ' ';
	for (size_t i = 0; i < secret_len && n + 3 < sizeof(line); i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "%02x", secret[i]);
	line[n++] = '\n';
	if (write(keylog_fd, line, n) != (ssize_t)n)
		fprintf(stderr, "WARNING keylog write: %s\n", strerror(errno));
}

#if MBEDTLS_VERSION_MAJOR == 2
/* 2.28's older callback (no randoms): a comment line of the key log. */
static int keylog_export_228_ms(void *p, const unsigned char *ms, const unsigned char *kb,
				size_t maclen, size_t keylen, size_t ivlen)
{
	(void)p, (void)kb, (void)maclen, (void)keylen, (void)ivlen;
	keylog_line("# MASTER_SECRET", NULL, ms, 48);
	return 0;
}

static int keylog_export_228(void *p, const unsigned char *ms, const unsigned char *kb,
			     size_t maclen, size_t keylen, size_t ivlen,
			     const unsigned char client_random[32],
			     const unsigned char server_random[32], mbedtls_tls_prf_types prf)
{
	(void)p, (void)kb, (void)maclen, (void)keylen, (void)ivlen, (void)server_random, (void)prf;
	keylog_line("CLIENT_RANDOM", client_random, ms, 48);
	return 0;
}
#else
static void keylog_export(void *p, mbedtls_ssl_key_export_type type, const unsigned char *secret,
			  size_t secret_len, const unsigned char client_random[32],
			  const unsigned char server_random[32], mbedtls_tls_prf_types prf)
{
	(void)p, (void)server_random, (void)prf;
	const char *label;
	switch (type) {
	case MBEDTLS_SSL_KEY_EXPORT_TLS12_MASTER_SECRET: label = "CLIENT_RANDOM"; break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_HANDSHAKE_TRAFFIC_SECRET:
		label = "CLIENT_HANDSHAKE_TRAFFIC_SECRET";
		break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_HANDSHAKE_TRAFFIC_SECRET:
		label = "SERVER_HANDSHAKE_TRAFFIC_SECRET";
		break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_CLIENT_APPLICATION_TRAFFIC_SECRET:
		label = "CLIENT_TRAFFIC_SECRET_0";
		break;
	case MBEDTLS_SSL_KEY_EXPORT_TLS1_3_SERVER_APPLICATION_TRAFFIC_SECRET:
		label = "SERVER_TRAFFIC_SECRET_0";
		break;
	default: return; /* early secrets: these apps send no early data */
	}
	keylog_line(label, client_random, secret, secret_len);
}
#endif

#if MBEDTLS_VERSION_MAJOR >= 3
/* --hrr: the client's first group (its only key share) is one the server does not take, so a
 * TLS 1.3 server must answer with HelloRetryRequest for the client's second group. */
static const uint16_t hrr_client_groups[] = { MBEDTLS_SSL_IANA_TLS_GROUP_X25519,
					      MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
					      MBEDTLS_SSL_IANA_TLS_GROUP_NONE };
static const uint16_t hrr_server_groups[] = { MBEDTLS_SSL_IANA_TLS_GROUP_SECP256R1,
					      MBEDTLS_SSL_IANA_TLS_GROUP_SECP384R1,
					      MBEDTLS_SSL_IANA_TLS_GROUP_NONE };
#endif

void die_mbedtls(const char *what, int ret)
{
	char text[200];
	mbedtls_strerror(ret, text, sizeof(text));
	fprintf(stderr, "ERROR %s: -0x%04x %s\n", what, (unsigned)-ret, text);
	exit(1);
}

void die_errno(const char *what)
{
	fprintf(stderr, "ERROR %s: %s\n", what, strerror(errno));
	exit(1);
}

int tls_rng(void *ctx, unsigned char *out, size_t len)
{
	(void)ctx;
	return mbedtls_ctr_drbg_random(&drbg, out, len); /* locks: safe from any thread */
}

/* The certificates sit in build/certs; the binary in build/apps or build/asan/apps. */
static const char *default_cert_dir(void)
{
	static char dir[PATH_MAX];
	char exe[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		die_errno("readlink /proc/self/exe");
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	static const char *const up[] = { "/../certs", "/../../certs" };
	for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++) {
		char probe[PATH_MAX + 16];
		snprintf(dir, sizeof(dir), "%s%s", exe, up[i]);
		snprintf(probe, sizeof(probe), "%s/ca.crt", dir);
		if (access(probe, R_OK) == 0)
			return dir;
	}
	fprintf(stderr,
		"ERROR no certificates next to %s: run tests/apps/gen-certs or pass --cert\n", exe);
	exit(1);
}

static void load_pair(const char *dir, const char *crt, const char *key, mbedtls_x509_crt *c,
		      mbedtls_pk_context *k)
{
	char path[PATH_MAX + 32];
	int ret;
	snprintf(path, sizeof(path), "%s/%s", dir, crt);
	if ((ret = mbedtls_x509_crt_parse_file(c, path)) != 0)
		die_mbedtls(path, ret);
	snprintf(path, sizeof(path), "%s/%s", dir, key);
	if ((ret = mbedtls_pk_parse_keyfile(k, path, NULL, tls_rng, NULL)) != 0)
		die_mbedtls(path, ret);
	if ((ret = mbedtls_ssl_conf_own_cert(&conf, c, k)) != 0)
		die_mbedtls("mbedtls_ssl_conf_own_cert", ret);
}

mbedtls_ssl_config *tls_setup(const struct opts *o)
{
	bool server = o->role == ROLE_SERVER;
	int ret;

	/* A peer that closes first must not kill us with SIGPIPE on our close_notify. */
	signal(SIGPIPE, SIG_IGN);
	/* Lines are read by tests while we run. */
	setvbuf(stdout, NULL, _IOLBF, 0);

#if MBEDTLS_VERSION_MAJOR >= 3
	/* TLS 1.3 uses PSA crypto, which the application must start. */
	psa_status_t st = psa_crypto_init();
	if (st != PSA_SUCCESS) {
		fprintf(stderr, "ERROR psa_crypto_init: %d\n", (int)st);
		exit(1);
	}
#endif
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	static const char pers[] = "ktlsshim test app";
	if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
					 (const unsigned char *)pers, sizeof(pers))) != 0)
		die_mbedtls("mbedtls_ctr_drbg_seed", ret);

	mbedtls_ssl_config_init(&conf);
	if ((ret = mbedtls_ssl_config_defaults(
		     &conf, server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
		     MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
		die_mbedtls("mbedtls_ssl_config_defaults", ret);
	mbedtls_ssl_conf_rng(&conf, tls_rng, NULL);
#if MBEDTLS_VERSION_MAJOR >= 3
	if (o->tls_version) {
		mbedtls_ssl_conf_min_tls_version(&conf,
						 (mbedtls_ssl_protocol_version)o->tls_version);
		mbedtls_ssl_conf_max_tls_version(&conf,
						 (mbedtls_ssl_protocol_version)o->tls_version);
	}
	if (o->hrr)
		mbedtls_ssl_conf_groups(&conf, server ? hrr_server_groups : hrr_client_groups);
#else /* 2.28: TLS 1.2 is the newest; --hrr is TLS 1.3's */
	mbedtls_ssl_conf_min_version(&conf, MBEDTLS_SSL_MAJOR_VERSION_3,
				     MBEDTLS_SSL_MINOR_VERSION_3);
#endif
	if (o->suite[0])
		mbedtls_ssl_conf_ciphersuites(&conf, o->suite);
	if (o->read_timeout_ms)
		mbedtls_ssl_conf_read_timeout(&conf, o->read_timeout_ms);

	const char *dir = o->cert_dir ? o->cert_dir : default_cert_dir();
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	mbedtls_x509_crt_init(&ca_crt);
	if ((ret = mbedtls_x509_crt_parse_file(&ca_crt, path)) != 0)
		die_mbedtls(path, ret);
	mbedtls_ssl_conf_ca_chain(&conf, &ca_crt, NULL);
	/* The client always checks the server; the server asks only with --client-cert. */
	mbedtls_ssl_conf_authmode(&conf, !server || o->client_cert ? MBEDTLS_SSL_VERIFY_REQUIRED
								   : MBEDTLS_SSL_VERIFY_NONE);
	for (int i = 0; i < 2; i++) {
		mbedtls_x509_crt_init(&own_crt[i]);
		mbedtls_pk_init(&own_key[i]);
	}
	if (server && o->chain) {
		char crt[32];
		snprintf(crt, sizeof(crt), "chain-%d.crt", o->chain);
		load_pair(dir, crt, "chain.key", &own_crt[0], &own_key[0]);
	} else if (server) {
		/* Both kinds, so that ECDHE-RSA and ECDHE-ECDSA suites (e.g. the CCM ones) work. */
		load_pair(dir, "server-rsa.crt", "server-rsa.key", &own_crt[0], &own_key[0]);
		load_pair(dir, "server-ec.crt", "server-ec.key", &own_crt[1], &own_key[1]);
	} else if (o->client_cert) {
		load_pair(dir, "client.crt", "client.key", &own_crt[0], &own_key[0]);
	}

	if (o->keylog &&
	    (keylog_fd = open(o->keylog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
		die_errno(o->keylog);
	return &conf;
}

void tls_context_init(mbedtls_ssl_context *ssl, const struct opts *o)
{
	int ret;
	mbedtls_ssl_init(ssl);
	if ((ret = mbedtls_ssl_setup(ssl, &conf)) != 0)
		die_mbedtls("mbedtls_ssl_setup", ret);
#if MBEDTLS_VERSION_MAJOR >= 3
	if (keylog_fd >= 0)
		mbedtls_ssl_set_export_keys_cb(ssl, keylog_export, NULL);
#else
	/* 2.28 exports on the config; both setters, after setup, as an application may. */
	if (keylog_fd >= 0) {
		mbedtls_ssl_conf_export_keys_cb(&conf, keylog_export_228_ms, NULL);
		mbedtls_ssl_conf_export_keys_ext_cb(&conf, keylog_export_228, NULL);
	}
#endif
	/* Verification is required, and Mbed TLS 3.6 insists on a name to check. */
	if (o->role == ROLE_CLIENT && (ret = mbedtls_ssl_set_hostname(ssl, "localhost")) != 0)
		die_mbedtls("mbedtls_ssl_set_hostname", ret);
}

/* ---- the verifiable stream -------------------------------------------------------------- */

/* Each data phase is its own xorshift64 keystream, seeded by the phase and the client's port, so
 * bytes from another phase or another connection do not pass for the right ones. */
enum phase { PH_PRE_UP = 1, PH_PRE_DOWN, PH_UP, PH_DOWN };
static const char *const phase_name[] = {
	[PH_PRE_UP] = "pre-data up",
	[PH_PRE_DOWN] = "pre-data down",
	[PH_UP] = "up",
	[PH_DOWN] = "down",
};

struct stream {
	uint64_t state, word, off;
};

static void stream_init(struct stream *s, uint16_t port, enum phase ph)
{
	/* splitmix64 of the seed: a well-mixed, non-zero xorshift state. */
	uint64_t z = ((uint64_t)port << 8 | (uint64_t)ph) + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	*s = (struct stream){ .state = (z ^ (z >> 31)) | 1 };
}

static unsigned char stream_byte(struct stream *s)
{
	if ((s->off & 7) == 0) {
		s->state ^= s->state << 13;
		s->state ^= s->state >> 7;
		s->state ^= s->state << 17;
		s->word = s->state;
	}
	return (unsigned char)(s->word >> (8 * (s->off++ & 7)));
}

/* ---- one connection --------------------------------------------------------------------- */

static int conn_errorf(const struct conn *c, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "ERROR conn=%d %s\n", c->idx, msg);
	return -1;
}

static int conn_fail(const struct conn *c, const char *what, int ret)
{
	char text[200];
	mbedtls_strerror(ret, text, sizeof(text));
	return conn_errorf(c, "%s: -0x%04x %s", what, (unsigned)-ret, text);
}

static bool want_io(int ret)
{
	return ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE;
}

/* Sleeps until the socket can do what Mbed TLS waits for. With blocking sockets WANT_* only
 * follows an interrupted call, and poll() returns at once. */
static void wait_io(const struct conn *c, int want)
{
	struct pollfd p = { .fd = c->net.fd,
			    .events = want == MBEDTLS_ERR_SSL_WANT_WRITE ? POLLOUT : POLLIN };
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
}

/* Client with --resume: keep the session (a TLS 1.2 one after the handshake, or the TLS 1.3
 * ticket just signalled) for the next connection. */
static int keep_session(struct conn *c)
{
	if (!c->session)
		return 0;
	mbedtls_ssl_session_free(c->session);
	mbedtls_ssl_session_init(c->session);
	int ret = mbedtls_ssl_get_session(c->ssl, c->session);
	c->got_session = ret == 0;
	return ret;
}

/* Runs a handshake-type call (handshake, close_notify) to completion. */
static int drive(struct conn *c, int (*call)(mbedtls_ssl_context *))
{
	for (;;) {
		int ret = call(c->ssl);
		if (want_io(ret))
			wait_io(c, ret);
		else if (ret != MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET ||
			 (ret = keep_session(c)))
			return ret;
	}
}

static int write_all(struct conn *c, const unsigned char *p, size_t len)
{
	size_t off = 0;
	while (off < len) {
		/* After WANT_* the retry has the same arguments, as Mbed TLS requires. */
		int ret = mbedtls_ssl_write(c->ssl, p + off, len - off);
		if (ret >= 0)
			off += (size_t)
				ret; /* records are at most 16 KiB: a big write goes piecewise */
		else if (want_io(ret))
			wait_io(c, ret);
		else if (ret != MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET ||
			 (ret = keep_session(c)))
			return ret;
	}
	return 0;
}

/* One mbedtls_ssl_read: the byte count, 0 once the peer has closed (c->peer_close says how),
 * or an Mbed TLS error. */
static int read_some(struct conn *c, unsigned char *p, size_t len)
{
	for (;;) {
		int ret = mbedtls_ssl_read(c->ssl, p, len);
		switch (ret) {
		case 0: /* Mbed TLS maps EOF without close_notify to 0 */
			c->peer_close = "eof";
			return 0;
		case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY: c->peer_close = "notify"; return 0;
		case MBEDTLS_ERR_SSL_WANT_READ:
		case MBEDTLS_ERR_SSL_WANT_WRITE: wait_io(c, ret); break;
		case MBEDTLS_ERR_SSL_TIMEOUT:
			/* Over TCP a timeout loses nothing (a partial record stays buffered): retry. */
			c->timeouts++;
			break;
		case MBEDTLS_ERR_SSL_RECEIVED_NEW_SESSION_TICKET:
			if ((ret = keep_session(c)) != 0)
				return ret;
			break;
		default: return ret;
		}
	}
}

/* This side's outgoing bytes of a phase: N bytes of the phase's stream, or all of a file. */
struct source {
	struct stream s;
	uint64_t left;
	int fd; /* >= 0: read from this file instead */
};

static void source_init(struct source *src, const struct conn *c, enum phase ph, uint64_t n, int fd)
{
	stream_init(&src->s, c->client_port, ph);
	src->left = n;
	src->fd = fd;
}

/* Fills up to LEN bytes of BUF: the count, 0 at the end, or -1 after reporting an error. */
static ssize_t source_next(const struct conn *c, struct source *src, unsigned char *buf, size_t len)
{
	if (src->fd >= 0) {
		ssize_t r = read(src->fd, buf, len);
		if (r < 0)
			conn_errorf(c, "reading --send-file: %s", strerror(errno));
		return r;
	}
	if (len > src->left)
		len = (size_t)src->left;
	for (size_t i = 0; i < len; i++)
		buf[i] = stream_byte(&src->s);
	src->left -= len;
	return (ssize_t)len;
}

/* Reads exactly LEN bytes into P, OFF bytes into a phase of TOTAL (for the messages). */
static int read_exact(struct conn *c, const char *what, unsigned char *p, size_t len, uint64_t off,
		      uint64_t total)
{
	for (size_t got = 0; got < len;) {
		int ret = read_some(c, p + got, len - got);
		if (ret < 0)
			return conn_fail(c, what, ret);
		if (ret == 0)
			return conn_errorf(c, "%s: peer closed (%s) after %llu of %llu bytes", what,
					   c->peer_close, (unsigned long long)(off + got),
					   (unsigned long long)total);
		got += (size_t)ret;
	}
	return 0;
}

/* Checks LEN received bytes against the expected ones, OFF bytes into the phase. */
static int compare(const struct conn *c, const char *what, const unsigned char *got,
		   const unsigned char *expect, size_t len, uint64_t off)
{
	for (size_t i = 0; i < len; i++)
		if (got[i] != expect[i])
			return conn_errorf(c, "%s: byte at offset %llu is 0x%02x, expected 0x%02x",
					   what, (unsigned long long)(off + i), got[i], expect[i]);
	return 0;
}

/* Sends the phase's source in chunks; counts the bytes in *sent. */
static int send_phase(struct conn *c, enum phase ph, uint64_t n, int fd, uint64_t *sent)
{
	struct source src;
	ssize_t len;
	source_init(&src, c, ph, n, fd);
	while ((len = source_next(c, &src, c->buf, c->o->chunk)) > 0) {
		int ret = write_all(c, c->buf, (size_t)len);
		if (ret)
			return conn_fail(c, phase_name[ph], ret);
		*sent += (uint64_t)len;
	}
	return (int)len;
}

/* Receives the phase's N bytes, a chunk at a time, and checks each against the stream; or, when
 * FD >= 0, copies everything to FD until the peer closes. Counts the bytes in *received. */
static int recv_phase(struct conn *c, enum phase ph, uint64_t n, int fd, uint64_t *received)
{
	unsigned char *expect = c->buf + c->o->chunk;
	if (fd < 0) {
		struct source src;
		ssize_t len;
		source_init(&src, c, ph, n, -1);
		while ((len = source_next(c, &src, expect, c->o->chunk)) > 0) {
			if (read_exact(c, phase_name[ph], c->buf, (size_t)len, *received, n) ||
			    compare(c, phase_name[ph], c->buf, expect, (size_t)len, *received))
				return -1;
			*received += (uint64_t)len;
		}
		return 0;
	}
	int ret;
	while ((ret = read_some(c, c->buf, c->o->chunk)) > 0) {
		if (write(fd, c->buf, (size_t)ret) != ret)
			return conn_errorf(c, "%s: writing --recv-file: %s", phase_name[ph],
					   strerror(errno));
		*received += (uint64_t)ret;
	}
	return ret < 0 ? conn_fail(c, phase_name[ph], ret) : 0;
}

/* Client --echo: each chunk of the up data (stream or --send-file) goes out and must come back
 * before the next, so no amount can deadlock. */
static int echo_client(struct conn *c, int fd)
{
	unsigned char *back = c->buf + c->o->chunk;
	struct source src;
	ssize_t len;
	source_init(&src, c, PH_UP, c->o->up, fd);
	while ((len = source_next(c, &src, c->buf, c->o->chunk)) > 0) {
		int ret = write_all(c, c->buf, (size_t)len);
		if (ret)
			return conn_fail(c, "echo", ret);
		c->sent += (uint64_t)len;
		if (read_exact(c, "echo", back, (size_t)len, c->received, c->sent) ||
		    compare(c, "echo", back, c->buf, (size_t)len, c->received))
			return -1;
		c->received += (uint64_t)len;
	}
	return (int)len;
}

/* Server --echo: whatever arrives goes back, until the client closes. */
static int echo_server(struct conn *c)
{
	int n;
	while ((n = read_some(c, c->buf, c->o->chunk)) > 0) {
		c->received += (uint64_t)n;
		int ret = write_all(c, c->buf, (size_t)n);
		if (ret)
			return conn_fail(c, "echo", ret);
		c->sent += (uint64_t)n;
	}
	return n < 0 ? conn_fail(c, "echo", n) : 0;
}

/* The clean shutdown, the same for both apps and any peer: the side that sent the last data
 * (the server when there is a down phase, else the client) sends close_notify first. The other
 * side, having read all it expected, must then read close_notify (or a bare EOF) and no more
 * data, and answers close_notify with its own. The first side reads that answer (or EOF) before
 * closing its socket, so neither closes with unread data that would turn into a reset. */
static int conn_shutdown(struct conn *c, bool closer)
{
	int ret;
	if (closer && (ret = drive(c, mbedtls_ssl_close_notify)) != 0)
		return conn_fail(c, "close_notify", ret);
	if (!c->peer_close) {
		ret = read_some(c, c->buf, c->o->chunk);
		if (ret > 0)
			return conn_errorf(c,
					   "%d unexpected bytes after the last phase (sent %llu,"
					   " received %llu)",
					   ret, (unsigned long long)c->sent,
					   (unsigned long long)c->received);
		if (ret < 0)
			return conn_fail(c, "waiting for close_notify", ret);
	}
	/* A peer that closed first need not wait for the answer (openssl s_client does not). */
	if (!closer && !strcmp(c->peer_close, "notify") &&
	    (ret = drive(c, mbedtls_ssl_close_notify)) != 0 && ret != MBEDTLS_ERR_NET_CONN_RESET)
		return conn_fail(c, "close_notify", ret);
	return 0;
}

/* The client's verify callback runs only when the server sends its certificate, that is, in a
 * full handshake: this is how the client sees that a resumption was accepted. */
static int note_verify(void *p, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
	(void)crt, (void)depth, (void)flags;
	((struct conn *)p)->full_handshake = true;
	return 0;
}

static uint16_t client_port(const struct conn *c)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	int r = c->o->role == ROLE_CLIENT ? getsockname(c->net.fd, (struct sockaddr *)&sa, &len)
					  : getpeername(c->net.fd, (struct sockaddr *)&sa, &len);
	if (r < 0)
		return 0;
	return ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
					      : ((struct sockaddr_in *)&sa)->sin_port);
}

static int open_file(const struct conn *c, const char *path, int flags)
{
	int fd = path ? open(path, flags | O_CLOEXEC, 0644) : -1;
	if (path && fd < 0)
		conn_errorf(c, "%s: %s", path, strerror(errno));
	return fd;
}

static int conn_exchange(struct conn *c)
{
	const struct opts *o = c->o;
	bool client = o->role == ROLE_CLIENT;
	int ret;

	if ((ret = drive(c, mbedtls_ssl_handshake)) != 0)
		return conn_fail(c, "handshake", ret);
	c->bio_calls_hs = bio_calls;
	/* TLS 1.2 sessions can be taken right away; TLS 1.3 ones come as tickets, later. */
	if (client && o->resume &&
	    mbedtls_ssl_get_version_number(c->ssl) == MBEDTLS_SSL_VERSION_TLS1_2 &&
	    (ret = keep_session(c)) != 0)
		return conn_fail(c, "mbedtls_ssl_get_session", ret);
	if (client)
		c->resumed = !c->full_handshake;
	if (o->delay_ms)
		usleep(o->delay_ms * 1000u);

	uint64_t pre_sent = 0, pre_received = 0;
	if (o->pre && client &&
	    (send_phase(c, PH_PRE_UP, o->pre, -1, &pre_sent) ||
	     recv_phase(c, PH_PRE_DOWN, o->pre, -1, &pre_received)))
		return -1;
	if (o->pre && !client &&
	    (recv_phase(c, PH_PRE_UP, o->pre, -1, &pre_received) ||
	     send_phase(c, PH_PRE_DOWN, o->pre, -1, &pre_sent)))
		return -1;

	int send_fd = open_file(c, o->send_file, O_RDONLY);
	int recv_fd = open_file(c, o->recv_file, O_WRONLY | O_CREAT | O_TRUNC);
	if ((o->send_file && send_fd < 0) || (o->recv_file && recv_fd < 0))
		ret = -1;
	else if (o->echo)
		ret = client ? echo_client(c, send_fd) : echo_server(c);
	else if (client)
		ret = (o->up || send_fd >= 0 ? send_phase(c, PH_UP, o->up, send_fd, &c->sent)
					     : 0) ||
		      (o->down || recv_fd >= 0
			       ? recv_phase(c, PH_DOWN, o->down, recv_fd, &c->received)
			       : 0);
	else
		ret = (o->up || recv_fd >= 0 ? recv_phase(c, PH_UP, o->up, recv_fd, &c->received)
					     : 0) ||
		      (o->down || send_fd >= 0 ? send_phase(c, PH_DOWN, o->down, send_fd, &c->sent)
					       : 0);
	if (send_fd >= 0)
		close(send_fd);
	if (recv_fd >= 0)
		close(recv_fd);
	if (ret)
		return -1;

	bool down_phase = o->down || (client ? o->recv_file : o->send_file);
	return conn_shutdown(c, down_phase != client);
}

int conn_run(struct conn *c)
{
	const struct opts *o = c->o;
	bool client = o->role == ROLE_CLIENT;

	conn_current = c;
	bio_calls = 0; /* a connection runs on one thread: the count is its own */
	c->client_port = client_port(c);
	if (o->nonblock)
		mbedtls_net_set_nonblock(&c->net);
	c->bio = bio_start(c->ssl, &c->net, o->bio, o->read_timeout_ms);
	if (client)
		mbedtls_ssl_set_verify(c->ssl, note_verify, c);
	c->buf = malloc(2 * o->chunk); /* what was read, and what was expected */
	int ret = c->buf ? conn_exchange(c) : conn_errorf(c, "out of memory");
	if (ret == 0) {
		printf("CONN %d version=%s suite=%s up=%llu down=%llu resumed=%s close=%s"
		       " timeouts=%d\n",
		       c->idx, mbedtls_ssl_get_version(c->ssl), mbedtls_ssl_get_ciphersuite(c->ssl),
		       (unsigned long long)(client ? c->sent : c->received),
		       (unsigned long long)(client ? c->received : c->sent),
		       c->resumed ? "yes" : "no", c->peer_close, c->timeouts);
		if (client && o->resume)
			printf("RESUMED %s\n", c->resumed ? "yes" : "no");
		/* After a hand-off the shim calls none of the app's callbacks. */
		if (o->bio != BIO_NET)
			printf("BIO %d calls: handshake=%lu after=%lu\n", c->idx, c->bio_calls_hs,
			       bio_calls - c->bio_calls_hs);
	}
	free(c->buf);
	c->buf = NULL;
	bio_end(c->bio);
	c->bio = NULL;
	mbedtls_net_free(&c->net);
	conn_current = NULL;
	return ret;
}
