/* SPDX-License-Identifier: Apache-2.0 */
/* Test-only LD_PRELOAD library: makes the kernel look as if it refused one kTLS step, so the
 * fallback ladder can be forced, or as if its kTLS produced wrong records, so the self-test's
 * failure path can be forced on a good kernel.
 * KTLS_TEST_REFUSE=ulp|tx|rx|nopad picks the setsockopt that fails (ENOENT for the ULP, EINVAL
 * for a direction, ENOPROTOOPT for TLS_RX_EXPECT_NO_PAD as before Linux 6.0), all others pass
 * through.
 * KTLS_TEST_CORRUPT=tx|rx installs every TLS_TX (or TLS_RX) with the low bit of rec_seq flipped
 * (the last byte of every crypto_info): the kernel then seals (opens) each record with a wrong
 * nonce or AAD, as a kernel with a broken cipher does.
 * KTLS_TEST_ULP_ENOMEM=N fails the Nth TCP_ULP of the process with ENOMEM (a transient failure).
 * KTLS_TEST_SOCKET_EMFILE=N: the first N socket() calls after the first TCP_ULP (the shim's own,
 * such as its rekey probe's: the app's socket exists by then) fail with EMFILE, a passing
 * failure. */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static atomic_bool ulp_seen;
static atomic_long emfile_done;

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	static int (*next)(int, int, int, const void *, socklen_t);
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "setsockopt");
	if (level == SOL_TCP && name == TCP_ULP)
		atomic_store(&ulp_seen, true);
	static atomic_int ulps;
	const char *nth = getenv("KTLS_TEST_ULP_ENOMEM");
	if (nth && *nth && level == SOL_TCP && name == TCP_ULP &&
	    atomic_fetch_add(&ulps, 1) + 1 == atoi(nth)) {
		errno = ENOMEM;
		return -1;
	}
	const char *refuse = getenv("KTLS_TEST_REFUSE");
	if (refuse) {
		if (!strcmp(refuse, "ulp") && level == SOL_TCP && name == TCP_ULP) {
			errno = ENOENT;
			return -1;
		}
		if (level == SOL_TLS && ((!strcmp(refuse, "tx") && name == TLS_TX) ||
					 (!strcmp(refuse, "rx") && name == TLS_RX))) {
			errno = EINVAL;
			return -1;
		}
		if (!strcmp(refuse, "nopad") && level == SOL_TLS && name == TLS_RX_EXPECT_NO_PAD) {
			errno = ENOPROTOOPT;
			return -1;
		}
	}
	const char *corrupt = getenv("KTLS_TEST_CORRUPT");
	unsigned char info[64];
	if (corrupt && level == SOL_TLS && len > sizeof(struct tls_crypto_info) &&
	    len <= sizeof(info) &&
	    ((!strcmp(corrupt, "tx") && name == TLS_TX) ||
	     (!strcmp(corrupt, "rx") && name == TLS_RX))) {
		memcpy(info, val, len);
		info[len - 1] ^= 1;
		int rc = next(fd, level, name, info, len);
		explicit_bzero(info, sizeof(info));
		return rc;
	}
	return next(fd, level, name, val, len);
}

int socket(int domain, int type, int protocol)
{
	static int (*next)(int, int, int);
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "socket");
	const char *n = getenv("KTLS_TEST_SOCKET_EMFILE");
	if (n && atomic_load(&ulp_seen) && atomic_fetch_add(&emfile_done, 1) < atol(n)) {
		errno = EMFILE;
		return -1;
	}
	return next(domain, type, protocol);
}
