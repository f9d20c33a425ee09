/* SPDX-License-Identifier: Apache-2.0 */
/* A custom BIO call left by siglongjmp (the classic alarm() timeout around a blocking recv): the
 * app gives up on the connection and goes on with ordinary libc calls from frames as deep as the
 * BIO's was, on a stack the handshake's frames used. With the shim preloaded nothing may change:
 * no crash, the calls' results its own (tests/custombio.bats). usage: bio-escape; prints "done". */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/ssl.h>
#include <netinet/in.h>
#include <psa/crypto.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static sigjmp_buf timed_out;

static void on_alarm(int sig)
{
	(void)sig;
	siglongjmp(timed_out, 1);
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	return (int)send(*(int *)ctx, buf, len, 0);
}

/* The peer never answers: the alarm ends the wait by jumping out of this call. */
static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	alarm(1);
	ssize_t n = recv(*(int *)ctx, buf, len, 0);
	alarm(0);
	return (int)n;
}

/* A silent peer on loopback: connected, accepted, never read from. */
static int silent_pair(int *peer)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int lis = socket(AF_INET, SOCK_STREAM, 0), fd = socket(AF_INET, SOCK_STREAM, 0);
	if (lis < 0 || fd < 0 || bind(lis, (struct sockaddr *)&a, l) || listen(lis, 1) ||
	    getsockname(lis, (struct sockaddr *)&a, &l) || connect(fd, (struct sockaddr *)&a, l))
		return -1;
	*peer = accept(lis, NULL, NULL);
	close(lis);
	return *peer < 0 ? -1 : fd;
}

/* Ordinary calls from deep frames that overwrite the stack the handshake used. */
static __attribute__((noinline)) int go_on(int depth, int fd)
{
	volatile char scratch[512];
	memset((char *)scratch, depth, sizeof(scratch));
	if (depth)
		return go_on(depth - 1, fd) + scratch[0] - depth;
	char b[1];
	return (int)(write(fd, "x", 1) + read(fd, b, 0));
}

int main(void)
{
	int peer, fd = silent_pair(&peer);
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	mbedtls_ssl_context ssl;
	if (fd < 0 || psa_crypto_init() != PSA_SUCCESS)
		return 2;
	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ssl_config_init(&conf);
	mbedtls_ssl_init(&ssl);
	if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0) ||
	    mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
					MBEDTLS_SSL_PRESET_DEFAULT))
		return 2;
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	if (mbedtls_ssl_setup(&ssl, &conf))
		return 2;
	mbedtls_ssl_set_bio(&ssl, &fd, bio_send, bio_recv, NULL);
	signal(SIGALRM, on_alarm);
	if (sigsetjmp(timed_out, 1) == 0) {
		fprintf(stderr, "bio-escape: handshake returned %d without a timeout\n",
			mbedtls_ssl_handshake(&ssl));
		return 3;
	}
	mbedtls_ssl_free(&ssl);
	int r = go_on(64, fd);
	printf("%s\n", r == 1 ? "done" : "a call's result changed");
	return r == 1 ? 0 : 4;
}
