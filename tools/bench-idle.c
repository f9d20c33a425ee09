/* SPDX-License-Identifier: Apache-2.0 */
/* bench-idle server|client [stand-in app options]: memory per idle connection (make bench).
 *
 * N connections (the client's --connections N, the server's --serve N), one after another, each through the handshake (with the shim
 * preloaded: the hand-off too) and one byte each way, all kept open; then the process's memory
 * with all of them idle, against the same before the first:
 *
 *   IDLE role=server conns=N rss_kib=BEFORE,AFTER heap=BEFORE,AFTER slab_kib=BEFORE,AFTER
 *
 * rss: VmRSS; heap: malloc's bytes in use (mallinfo2: arena and mmapped chunks); slab: the
 * kernel's Slab line of /proc/meminfo (the whole system: both ends' sockets and kTLS contexts).
 * Then the client closes every connection and the server reads each to its end. Built on the
 * stand-in apps' common code (tests/apps/common.c): the same Mbed TLS configuration. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include "../tests/apps/common.h"

/* A "Name:   value kB" line of a /proc file, in KiB; -1 when absent. */
static long proc_kib(const char *path, const char *name)
{
	FILE *f = fopen(path, "r");
	char line[256];
	long v = -1;
	size_t n = strlen(name);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, name, n) && line[n] == ':') {
			v = strtol(line + n + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return v;
}

struct mem {
	long rss_kib, slab_kib;
	size_t heap;
};

static struct mem mem_now(void)
{
	struct mallinfo2 mi = mallinfo2();
	return (struct mem){ .rss_kib = proc_kib("/proc/self/status", "VmRSS"),
			     .slab_kib = proc_kib("/proc/meminfo", "Slab"),
			     .heap = mi.uordblks + mi.hblkhd };
}

/* Room for n connections and a few more descriptors. */
static void raise_fd_limit(int n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 64;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want;
	if (rl.rlim_max < want)
		rl.rlim_max = want; /* root (the test VM) may raise it */
	if (setrlimit(RLIMIT_NOFILE, &rl))
		die_errno("setrlimit RLIMIT_NOFILE");
}

static void announce_port(const struct opts *o, const mbedtls_net_context *listener)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	if (getsockname(listener->fd, (struct sockaddr *)&sa, &len))
		die_errno("getsockname");
	printf("PORT %u\n", ntohs(sa.sin_port));
	if (!o->port_file)
		return;
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", o->port_file);
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(f) ||
	    rename(tmp, o->port_file))
		die_errno(o->port_file);
}

/* Handshake, then one byte each way (the client writes first). */
static void start(mbedtls_ssl_context *ssl, mbedtls_net_context *net, const struct opts *o)
{
	tls_context_init(ssl, o);
	mbedtls_ssl_set_bio(ssl, net, mbedtls_net_send, mbedtls_net_recv, NULL);
	int ret;
	while ((ret = mbedtls_ssl_handshake(ssl)) != 0)
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			die_mbedtls("mbedtls_ssl_handshake", ret);
	unsigned char b = 'x';
	bool client = o->role == ROLE_CLIENT;
	if (client && (ret = mbedtls_ssl_write(ssl, &b, 1)) != 1)
		die_mbedtls("mbedtls_ssl_write", ret);
	if ((ret = mbedtls_ssl_read(ssl, &b, 1)) != 1)
		die_mbedtls("mbedtls_ssl_read", ret);
	if (!client && (ret = mbedtls_ssl_write(ssl, &b, 1)) != 1)
		die_mbedtls("mbedtls_ssl_write", ret);
}

/* The server waits for each connection's end (close_notify or EOF) before letting it go. */
static void finish(mbedtls_ssl_context *ssl, mbedtls_net_context *net, const struct opts *o)
{
	unsigned char b;
	if (o->role == ROLE_SERVER)
		while (mbedtls_ssl_read(ssl, &b, 1) > 0)
			continue;
	else
		mbedtls_ssl_close_notify(ssl);
	mbedtls_net_free(net);
	mbedtls_ssl_free(ssl);
}

int main(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		fprintf(stderr,
			"usage: bench-idle server|client [mbed-server/mbed-client options]\n");
		return 2;
	}
	struct opts o;
	enum role role = argv[1][0] == 's' ? ROLE_SERVER : ROLE_CLIENT;
	opts_parse(&o, role, argc - 1, argv + 1);
	int n = role == ROLE_SERVER ? o.serve : o.connections;
	if (n < 1)
		n = 1;
	raise_fd_limit(n);
	tls_setup(&o);
	mbedtls_ssl_context *ssl = calloc((size_t)n, sizeof(*ssl));
	mbedtls_net_context *net = calloc((size_t)n, sizeof(*net)), listener;
	if (!ssl || !net)
		die_errno("calloc");
	int ret;
	if (role == ROLE_SERVER) {
		mbedtls_net_init(&listener);
		if ((ret = mbedtls_net_bind(&listener, o.host, o.port ? o.port : "0",
					    MBEDTLS_NET_PROTO_TCP)))
			die_mbedtls("mbedtls_net_bind", ret);
		announce_port(&o, &listener);
	}
	struct mem before = mem_now();
	for (int i = 0; i < n; i++) {
		mbedtls_net_init(&net[i]);
		ret = role == ROLE_SERVER
			      ? mbedtls_net_accept(&listener, &net[i], NULL, 0, NULL)
			      : mbedtls_net_connect(&net[i], o.host, o.port, MBEDTLS_NET_PROTO_TCP);
		if (ret)
			die_mbedtls(role == ROLE_SERVER ? "mbedtls_net_accept"
							: "mbedtls_net_connect",
				    ret);
		start(&ssl[i], &net[i], &o);
	}
	struct mem after = mem_now();
	printf("IDLE role=%s conns=%d rss_kib=%ld,%ld heap=%zu,%zu slab_kib=%ld,%ld\n", argv[1], n,
	       before.rss_kib, after.rss_kib, before.heap, after.heap, before.slab_kib,
	       after.slab_kib);
	for (int i = 0; i < n; i++)
		finish(&ssl[i], &net[i], &o);
	if (role == ROLE_SERVER)
		mbedtls_net_free(&listener);
	free(ssl);
	free(net);
	return 0;
}
