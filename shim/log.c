/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

static int log_fd = STDERR_FILENO;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

/* A daemon that closed its stderr (or the log file) may have a TCP connection on that number now:
 * a line written there would land in its byte stream, in clear or inside a kernel-TLS record.
 * Unix sockets (journald's stderr) and files are fine. One system call per line. */
static bool lands_in_a_connection(int fd)
{
	int proto = 0;
	socklen_t len = sizeof(proto);
	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0 && proto == IPPROTO_TCP;
}

static void log_open(void)
{
	const char *path = config_get()->log_file;
	if (!path)
		return;
	/* O_APPEND + one write() per line: lines from many processes never interleave. O_NOFOLLOW:
	 * a symlink planted at the path does not redirect the lines into another file. */
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	int err = errno;
	if (fd >= 0)
		log_fd = fd;
	else if (!lands_in_a_connection(STDERR_FILENO))
		dprintf(STDERR_FILENO,
			"ktlsshim[%d]: KTLS_SHIM_LOG_FILE not opened (%s); logging to "
			"stderr\n",
			(int)getpid(), strerror(err));
}

size_t log_format(char *line, size_t cap, int pid, const char *fmt, va_list ap)
{
	int n = snprintf(line, cap, "ktlsshim[%d]: ", pid);
	n += vsnprintf(line + n, cap - (size_t)n - 1, fmt, ap);
	if (n > (int)cap - 2)
		n = (int)cap - 2;
	line[n++] = '\n';
	return (size_t)n;
}

static void log_line(const char *fmt, va_list ap)
{
	pthread_once(&log_once, log_open);
	char line[1024];
	size_t n = log_format(line, sizeof(line), (int)getpid(), fmt, ap);
	if (lands_in_a_connection(log_fd) || write(log_fd, line, n) < 0)
		return;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	va_list ap;
	va_start(ap, fmt);
	log_line(fmt, ap);
	va_end(ap);
}

void log_always(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_line(fmt, ap);
	va_end(ap);
}
