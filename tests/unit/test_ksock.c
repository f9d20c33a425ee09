/* SPDX-License-Identifier: Apache-2.0 */
/* A connection's process (shim/ksock.c): ksock_pid answers without a system call per call, yet a
 * child made by libc's fork or by a raw fork system call (no atfork handler runs) must see every
 * connection of its parent as a copy, and its own new ones as its own. */
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ksock.h"
#include "tap.h"

/* In the child: 0 when it sees the parent's connection as a copy and its own as not, and knows
 * its own id; else which check failed. */
static int child_checks(const struct ksock *parents)
{
	struct ksock own = { .fd = -1 };
	ksock_reset(&own);
	if (ksock_pid() != getpid())
		return 1;
	if (!ksock_is_copy(parents))
		return 2;
	return ksock_is_copy(&own) ? 3 : 0;
}

/* The child's verdict (child_checks), or 100 when it could not run. */
static int in_child(bool raw, const struct ksock *parents)
{
	pid_t pid = raw ? (pid_t)syscall(SYS_fork) : fork();
	if (pid == 0)
		_exit(child_checks(parents));
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 100;
	return WEXITSTATUS(status);
}

int main(void)
{
	tap_plan(5);
	struct ksock ks = { .fd = -1 };
	ksock_reset(&ks);
	tap_ok(ksock_pid() == getpid(), "ksock_pid is this process's id");
	tap_ok(!ksock_is_copy(&ks), "a connection made here is not a copy");
	tap_ok(in_child(false, &ks) == 0,
	       "after fork(): the parent's connection is a copy in the child");
	tap_ok(in_child(true, &ks) == 0,
	       "after a raw fork system call (no atfork handler): the same");
	tap_ok(ksock_pid() == getpid() && !ksock_is_copy(&ks),
	       "the parent still owns its connection");
	ksock_free(&ks);
	return tap_done();
}
