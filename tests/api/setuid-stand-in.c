/* SPDX-License-Identifier: Apache-2.0 */
/* setuid-stand-in: a program linked with the shim, which the dynamic loader then loads into it
 * as /etc/ld.so.preload would (a setuid program ignores LD_PRELOAD of a library outside the
 * trusted directories; a library it links by absolute path is loaded). tests/controls.bats
 * installs a setuid-root copy and runs it as an unprivileged user: the shim's constructors and
 * its exit handler run in a secure-execution (AT_SECURE) process. Prints that mode and exits. */
#include <stdio.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "ktlsshim.h"

int main(void)
{
	/* The call keeps the shim a needed library whatever the linker's --as-needed says. */
	printf("AT_SECURE=%lu euid=%d uid=%d api=%s\n", getauxval(AT_SECURE), (int)geteuid(),
	       (int)getuid(), ktlsshim_strerror(KTLSSHIM_OK));
	return 0;
}
