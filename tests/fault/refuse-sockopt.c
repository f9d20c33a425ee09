/* Test-only LD_PRELOAD library: makes the kernel look as if it refused one kTLS step, so the
 * fallback ladder can be forced. KTLS_TEST_REFUSE=ulp|tx|rx picks the setsockopt that fails
 * (ENOENT for the ULP, EINVAL for a direction), all others pass through.
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
