/* SPDX-License-Identifier: Apache-2.0 */
/* The command line and the TCP plumbing ktls-pair and ossl-bulk share, so that both move bytes
 * the way the stand-in apps do with --send-file/--recv-file: read a chunk from the file, write it
 * to the connection; read what arrives, write it to the file (/dev/null in the benchmark). */
#ifndef BENCH_NET_H
#define BENCH_NET_H

#include <stddef.h>

struct bench_opts {
	int server;	       /* 1: listen on 127.0.0.1, accept --connections connections */
	int port;	       /* client: the server's port; server: 0 = any */
	const char *port_file; /* server: also write the port here */
	int tls;	       /* 12 or 13 */
	const char *send_file, *recv_file;
	size_t chunk;
	int connections;
	const char *cert; /* ossl-bulk: the directory of tests/apps/gen-certs */
};

/* Parses the options shared by the helpers (USAGE is printed on a bad one; exit 2). */
void bench_parse(struct bench_opts *o, int argc, char **argv, const char *usage);
/* Server: the listening socket, with "PORT n" printed and --port-file written. */
int bench_listen(const struct bench_opts *o);
int bench_accept(int lfd);
int bench_connect(const struct bench_opts *o);
/* Opens --send-file (O_RDONLY) or --recv-file (O_WRONLY|O_CREAT|O_TRUNC); -1 when not given. */
int bench_open(const char *path, int write);
void bench_die(const char *prog, const char *what);

#endif
