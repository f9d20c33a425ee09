/* SPDX-License-Identifier: Apache-2.0 */
/* Test-only LD_PRELOAD library: makes the kernel look as if it refused one kTLS step, so the
 * fallback ladder can be forced. KTLS_TEST_REFUSE=ulp|tx|rx picks the setsockopt that fails
 * (ENOENT for the ULP, EINVAL for a direction), all others pass through. */
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/tls.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	static int (*next)(int, int, int, const void *, socklen_t);
	if (!next)
		*(void **)&next = dlsym(RTLD_NEXT, "setsockopt");
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
