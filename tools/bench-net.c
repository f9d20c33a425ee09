/* SPDX-License-Identifier: Apache-2.0 */
#include "bench-net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void bench_die(const char *prog, const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, errno ? strerror(errno) : "failed");
	exit(1);
}

static size_t size_arg(const char *s, const char *usage)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end == 'K')
		v <<= 10, end++;
	else if (*end == 'M')
		v <<= 20, end++;
	if (*end || end == s || v == 0) {
		fputs(usage, stderr);
		exit(2);
	}
	return (size_t)v;
}

void bench_parse(struct bench_opts *o, int argc, char **argv, const char *usage)
{
	enum {
		O_SERVER = 1,
		O_CLIENT,
		O_PORT,
		O_PORT_FILE,
		O_TLS,
		O_SEND,
		O_RECV,
		O_CHUNK,
		O_CONNS,
		O_CERT
	};
	static const struct option longopts[] = {
		{ "server", no_argument, NULL, O_SERVER },
		{ "client", no_argument, NULL, O_CLIENT },
		{ "port", required_argument, NULL, O_PORT },
		{ "port-file", required_argument, NULL, O_PORT_FILE },
		{ "tls", required_argument, NULL, O_TLS },
		{ "send-file", required_argument, NULL, O_SEND },
		{ "recv-file", required_argument, NULL, O_RECV },
		{ "chunk", required_argument, NULL, O_CHUNK },
		{ "connections", required_argument, NULL, O_CONNS },
		{ "cert", required_argument, NULL, O_CERT },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct bench_opts){ .tls = 13, .chunk = 16384, .connections = 1, .server = -1 };
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_SERVER: o->server = 1; break;
		case O_CLIENT: o->server = 0; break;
		case O_PORT: o->port = atoi(optarg); break;
		case O_PORT_FILE: o->port_file = optarg; break;
		case O_TLS:
			o->tls = !strcmp(optarg, "1.2") ? 12 : !strcmp(optarg, "1.3") ? 13 : 0;
			break;
		case O_SEND: o->send_file = optarg; break;
		case O_RECV: o->recv_file = optarg; break;
		case O_CHUNK: o->chunk = size_arg(optarg, usage); break;
		case O_CONNS: o->connections = (int)size_arg(optarg, usage); break;
		case O_CERT: o->cert = optarg; break;
		default: fputs(usage, stderr); exit(2);
		}
	}
	if (optind != argc || o->server < 0 || !o->tls || (!o->server && !o->port) ||
	    (o->send_file && o->recv_file)) {
		fputs(usage, stderr);
		exit(2);
	}
}

int bench_listen(const struct bench_opts *o)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)o->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&sa, &len))
		bench_die("bench", "listen");
	printf("PORT %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	if (o->port_file) {
		/* Written whole under a temporary name, so a poller never reads half a number. */
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", o->port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0 || fclose(f) ||
		    rename(tmp, o->port_file))
			bench_die("bench", o->port_file);
	}
	return fd;
}

int bench_accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		bench_die("bench", "accept");
	return fd;
}

int bench_connect(const struct bench_opts *o)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)o->port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		bench_die("bench", "connect");
	return fd;
}

int bench_open(const char *path, int write)
{
	if (!path)
		return -1;
	int fd = open(path, write ? O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC : O_RDONLY | O_CLOEXEC,
		      0644);
	if (fd < 0)
		bench_die("bench", path);
	return fd;
}
