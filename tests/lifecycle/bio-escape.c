/* SPDX-License-Identifier: Apache-2.0 */
/* A BIO call left by siglongjmp (the classic alarm() timeout around a blocking recv): the app
 * gives up on the connection, tries again on a new context from a deeper frame (three rounds),
 * then goes on with ordinary libc calls from frames as deep as the BIO's was, on a stack the
 * handshakes' frames used. With the shim preloaded nothing may change: no crash, the calls'
 * results its own (tests/custombio.bats). usage: bio-escape [net|coro]: the app's own BIO
 * callbacks, or Mbed TLS's mbedtls_net_send/recv; coro: a coroutine parked inside the BIO recv is
 * abandoned, its stack unmapped, and another coroutine goes on. Prints "done". */
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <netinet/in.h>
#include <psa/crypto.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <ucontext.h>
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

static bool use_net;

/* One handshake on a new context against the silent peer, left by the alarm's jump. */
static int one_round(mbedtls_ssl_config *conf, int fd)
{
	mbedtls_ssl_context ssl;
	mbedtls_net_context net = { .fd = fd };
	mbedtls_ssl_init(&ssl);
	if (mbedtls_ssl_setup(&ssl, conf))
		return 2;
	if (use_net)
		mbedtls_ssl_set_bio(&ssl, &net, mbedtls_net_send, mbedtls_net_recv, NULL);
	else
		mbedtls_ssl_set_bio(&ssl, &fd, bio_send, bio_recv, NULL);
	if (sigsetjmp(timed_out, 1) == 0) {
		alarm(1); /* mbedtls_net_recv waits with no timeout of its own */
		fprintf(stderr, "bio-escape: handshake returned %d without a timeout\n",
			mbedtls_ssl_handshake(&ssl));
		return 3;
	}
	mbedtls_ssl_free(&ssl);
	return 0;
}

/* The next round from a frame deeper than the last one's. */
static __attribute__((noinline)) int round_at(int depth, mbedtls_ssl_config *conf, int fd)
{
	volatile char pad[256];
	pad[0] = (char)depth;
	return depth ? round_at(depth - 1, conf, fd) + pad[0] - depth : one_round(conf, fd);
}

/* ---- coro: the handshake in a coroutine that parks inside its BIO recv and never resumes ---- */
static ucontext_t main_ctx, coro_ctx;
static mbedtls_ssl_config *coro_conf;
static int coro_fd, coro_result;

static int parking_recv(void *ctx, unsigned char *buf, size_t len)
{
	(void)ctx, (void)buf, (void)len;
	swapcontext(&coro_ctx, &main_ctx); /* "would block": the scheduler never comes back */
	return MBEDTLS_ERR_SSL_WANT_READ;
}

static void coro_handshake(void)
{
	static mbedtls_ssl_context ssl;
	mbedtls_ssl_init(&ssl);
	if (mbedtls_ssl_setup(&ssl, coro_conf) == 0) {
		mbedtls_ssl_set_bio(&ssl, &coro_fd, bio_send, parking_recv, NULL);
		mbedtls_ssl_handshake(&ssl);
	}
}

static void coro_go_on(void)
{
	coro_result = go_on(8, coro_fd);
}

/* Runs f on a new mmap()ed stack until it returns or parks; frees the stack after. */
static int on_new_stack(void (*f)(void))
{
	size_t size = 256 * 1024;
	void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (stack == MAP_FAILED || getcontext(&coro_ctx))
		return -1;
	coro_ctx.uc_stack.ss_sp = stack;
	coro_ctx.uc_stack.ss_size = size;
	coro_ctx.uc_link = &main_ctx;
	makecontext(&coro_ctx, f, 0);
	swapcontext(&main_ctx, &coro_ctx);
	return munmap(stack, size);
}

static int coro_main(mbedtls_ssl_config *conf, int fd)
{
	coro_conf = conf;
	coro_fd = fd;
	if (on_new_stack(coro_handshake) || on_new_stack(coro_go_on))
		return 2;
	return coro_result == 1 ? 0 : 4;
}

int main(int argc, char **argv)
{
	use_net = argc > 1 && !strcmp(argv[1], "net");
	int peer, fd = silent_pair(&peer);
	mbedtls_entropy_context ent;
	mbedtls_ctr_drbg_context drbg;
	mbedtls_ssl_config conf;
	if (fd < 0 || psa_crypto_init() != PSA_SUCCESS)
		return 2;
	mbedtls_entropy_init(&ent);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ssl_config_init(&conf);
	if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &ent, NULL, 0) ||
	    mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
					MBEDTLS_SSL_PRESET_DEFAULT))
		return 2;
	mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	if (argc > 1 && !strcmp(argv[1], "coro")) {
		int e = coro_main(&conf, fd);
		printf("%s\n", e ? "a call's result changed" : "done");
		return e;
	}
	signal(SIGALRM, on_alarm);
	for (int round = 0; round < 3; round++) {
		int e = round_at(round * 4, &conf, fd);
		if (e)
			return e;
	}
	int r = go_on(64, fd);
	printf("%s\n", r == 1 ? "done" : "a call's result changed");
	return r == 1 ? 0 : 4;
}
