/* SPDX-License-Identifier: Apache-2.0 */
/* fork-echo: an ordinary Mbed TLS 3.6 TLS 1.3 client that forks after the handshake; parent and
 * child then take turns on the one connection (a pipe passes the turn), each echoing BYTES
 * through an echo server (tests/peers/openssl-peer.c --server) in 16 KiB writes and checking
 * every byte that comes back. tests/keyupdate.bats runs it with the shim and a small
 * KTLS_SHIM_REKEY_RECORDS, so that keys change during the turns: the OpenSSL peer decrypts every
 * record of both processes in order, which it cannot do if any (key, sequence number) pair was
 * used twice.
 *
 * usage: fork-echo CERTDIR PORT TURNS BYTES
 * Output: "turn N parent|child: ok" or the Mbed TLS error of that turn, then "PASS fork-echo"
 * (exit 0) or "FAIL ..." (exit 1). Turns alternate: 0, 2, ... are the parent's; every turn is
 * taken, also after a failed one. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <psa/crypto.h>

#define CHUNK 16384

static mbedtls_ssl_context ssl;
static mbedtls_net_context net;

static void die(const char *what, int ret)
{
	printf("FAIL %s: -0x%04x\n", what, (unsigned)-ret);
	exit(1);
}

static void connect_tls(const char *certs, const char *port)
{
	static mbedtls_entropy_context entropy;
	static mbedtls_ctr_drbg_context drbg;
	static mbedtls_ssl_config conf;
	static mbedtls_x509_crt ca;
	static const int suites[] = { MBEDTLS_TLS1_3_AES_128_GCM_SHA256, 0 };
	char path[4096];
	int ret;
	if (psa_crypto_init() != PSA_SUCCESS)
		die("psa_crypto_init", -1);
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_x509_crt_init(&ca);
	mbedtls_ssl_config_init(&conf);
	mbedtls_ssl_init(&ssl);
	mbedtls_net_init(&net);
	snprintf(path, sizeof(path), "%s/ca.crt", certs);
	if ((ret = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0)) ||
	    (ret = mbedtls_x509_crt_parse_file(&ca, path)) ||
	    (ret = mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT,
					       MBEDTLS_SSL_TRANSPORT_STREAM,
					       MBEDTLS_SSL_PRESET_DEFAULT)))
		die("setup", ret);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ssl_conf_ca_chain(&conf, &ca, NULL);
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_min_tls_version(&conf, MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_max_tls_version(&conf, MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_ciphersuites(&conf, suites);
	if ((ret = mbedtls_ssl_setup(&ssl, &conf)) ||
	    (ret = mbedtls_ssl_set_hostname(&ssl, "localhost")) ||
	    (ret = mbedtls_net_connect(&net, "127.0.0.1", port, MBEDTLS_NET_PROTO_TCP)))
		die("connect", ret);
	mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
	while ((ret = mbedtls_ssl_handshake(&ssl)) != 0)
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			die("handshake", ret);
}

/* The bytes of one turn: different in every turn and every chunk. */
static void fill(unsigned char *p, int turn, size_t off)
{
	for (size_t i = 0; i < CHUNK; i++)
		p[i] = (unsigned char)(turn * 131 + (off + i) * 7 + ((off + i) >> 9));
}

/* One turn: bytes out in 16 KiB writes, each echoed back and compared. 0 or the Mbed TLS error. */
static int turn_echo(int turn, size_t bytes)
{
	static unsigned char out[CHUNK], in[CHUNK];
	for (size_t off = 0; off < bytes; off += CHUNK) {
		fill(out, turn, off);
		for (size_t done = 0; done < CHUNK;) {
			int r = mbedtls_ssl_write(&ssl, out + done, CHUNK - done);
			if (r <= 0)
				return r ? r : -1;
			done += (size_t)r;
		}
		for (size_t got = 0; got < CHUNK;) {
			int r = mbedtls_ssl_read(&ssl, in + got, CHUNK - got);
			if (r <= 0)
				return r ? r : -1; /* 0: the peer closed */
			got += (size_t)r;
		}
		if (memcmp(in, out, CHUNK))
			return -2;
	}
	return 0;
}

/* Waits for the turn token on fd: false when the other process ended instead. */
static int wait_turn(int fd)
{
	char t;
	return read(fd, &t, 1) == 1;
}

int main(int argc, char **argv)
{
	if (argc != 5)
		die("usage: fork-echo CERTDIR PORT TURNS BYTES", -1);
	int turns = atoi(argv[3]);
	size_t bytes = (size_t)strtoull(argv[4], NULL, 10);
	signal(SIGPIPE, SIG_IGN);
	alarm(120); /* a hang is a failure, not a stuck test */
	connect_tls(argv[1], argv[2]);
	int to_child[2], to_parent[2];
	if (pipe(to_child) || pipe(to_parent))
		die("pipe", -1);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		die("fork", -1);
	int child = pid == 0, me = child ? to_child[0] : to_parent[0];
	int other = child ? to_parent[1] : to_child[1];
	close(child ? to_child[1] : to_parent[1]);
	close(child ? to_parent[0] : to_child[0]);
	/* A failed turn still passes the turn on: what the other process then gets is part of
	 * the result. */
	int failed = 0;
	for (int t = child; t < turns; t += 2) {
		if (t > 0 && !wait_turn(me)) {
			printf("turn %d %s: the other process ended\n", t,
			       child ? "child" : "parent");
			failed = 1;
			break;
		}
		int r = turn_echo(t, bytes);
		printf("turn %d %s: ", t, child ? "child" : "parent");
		if (r)
			printf("-0x%04x\n", (unsigned)-r);
		else
			printf("ok\n");
		fflush(stdout);
		failed |= r != 0;
		if (write(other, "t", 1) != 1)
			failed = 1;
	}
	close(other);
	if (child) {
		/* Its copy only: mbedtls_net_free's shutdown would end the parent's connection too. */
		mbedtls_ssl_free(&ssl);
		close(net.fd);
		fflush(stdout);
		_exit(failed);
	}
	while (wait_turn(me))
		; /* the child's last turn */
	int st;
	waitpid(pid, &st, 0);
	failed |= !WIFEXITED(st) || WEXITSTATUS(st);
	int r = mbedtls_ssl_close_notify(&ssl);
	if (!failed && r)
		die("close_notify", r);
	mbedtls_ssl_free(&ssl);
	mbedtls_net_free(&net);
	printf(failed ? "FAIL fork-echo\n" : "PASS fork-echo\n");
	return failed;
}
