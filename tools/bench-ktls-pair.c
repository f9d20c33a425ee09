/* SPDX-License-Identifier: Apache-2.0 */
/* ktls-pair: the limit a kTLS shim can approach. Two ends of a loopback TCP connection install
 * fixed AES-128-GCM keys with TCP_ULP "tls" + TLS_TX + TLS_RX directly (no handshake, no TLS
 * library) and then move a file exactly as the stand-in apps do: read a chunk, send it; receive,
 * write it out. Exits 77 with "UNAVAILABLE ..." when the kernel has no kTLS.
 *
 *   ktls-pair --server [--port N] [--port-file F] [--tls 1.2|1.3] (--send-file F|--recv-file F)
 *   ktls-pair --client --port N ... (the same)
 */
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench-net.h"
#include "bench-probe.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static const char usage[] =
	"usage: ktls-pair --server|--client [--port N] [--port-file F] [--tls 1.2|1.3]\n"
	"                 [--send-file F | --recv-file F] [--chunk BYTES]\n";

/* Fixed, different keys per direction (so the two directions never share a nonce stream). */
static void crypto_info(struct tls12_crypto_info_aes_gcm_128 *ci, int tls, unsigned char key_byte)
{
	memset(ci, 0, sizeof(*ci));
	ci->info.version = tls == 13 ? TLS_1_3_VERSION : TLS_1_2_VERSION;
	ci->info.cipher_type = TLS_CIPHER_AES_GCM_128;
	memset(ci->key, key_byte, sizeof(ci->key));
	memset(ci->salt, key_byte ^ 0x5a, sizeof(ci->salt));
}

static void install(int fd, const struct bench_opts *o)
{
	struct tls12_crypto_info_aes_gcm_128 tx, rx;
	/* client->server uses key 0x11, server->client 0x22 */
	crypto_info(&tx, o->tls, o->server ? 0x22 : 0x11);
	crypto_info(&rx, o->tls, o->server ? 0x11 : 0x22);
	if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls"))) {
		printf("UNAVAILABLE kTLS: TCP_ULP tls: %s\n", strerror(errno));
		exit(77);
	}
	if (setsockopt(fd, SOL_TLS, TLS_TX, &tx, sizeof(tx)) ||
	    setsockopt(fd, SOL_TLS, TLS_RX, &rx, sizeof(rx))) {
		printf("UNAVAILABLE kTLS: TLS_TX/TLS_RX AES-GCM-128 TLS %s: %s\n",
		       o->tls == 13 ? "1.3" : "1.2", strerror(errno));
		exit(77);
	}
}

static uint64_t sender(int fd, int file, unsigned char *buf, size_t chunk)
{
	uint64_t total = 0;
	ssize_t n;
	while ((n = read(file, buf, chunk)) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = send(fd, buf + off, (size_t)(n - off), 0);
			if (w < 0 && errno != EINTR)
				bench_die("ktls-pair", "send");
			off += w > 0 ? w : 0;
		}
		total += (uint64_t)n;
	}
	if (n < 0)
		bench_die("ktls-pair", "read --send-file");
	/* EOF tells the receiver we are done; wait for its close so no data is cut off. */
	shutdown(fd, SHUT_WR);
	while ((n = recv(fd, buf, chunk, 0)) > 0 || (n < 0 && errno == EINTR))
		;
	return total;
}

static uint64_t receiver(int fd, int file, unsigned char *buf, size_t chunk)
{
	uint64_t total = 0;
	ssize_t n;
	while ((n = recv(fd, buf, chunk, 0)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			bench_die("ktls-pair", "recv");
		}
		probe_data_read();
		if (file >= 0 && write(file, buf, (size_t)n) != n)
			bench_die("ktls-pair", "write --recv-file");
		total += (uint64_t)n;
	}
	return total;
}

int main(int argc, char **argv)
{
	struct bench_opts o;
	bench_parse(&o, argc, argv, usage);
	unsigned char *buf = malloc(o.chunk);
	if (!buf)
		bench_die("ktls-pair", "malloc");
	int lfd = o.server ? bench_listen(&o) : -1;
	int fd = o.server ? bench_accept(lfd) : bench_connect(&o);
	probe_hs_begin();
	install(fd, &o);
	probe_hs_end();
	int send_fd = bench_open(o.send_file, 0), recv_fd = bench_open(o.recv_file, 1);
	uint64_t bytes = send_fd >= 0 ? sender(fd, send_fd, buf, o.chunk)
				      : receiver(fd, recv_fd, buf, o.chunk);
	close(fd);
	printf("DONE bytes=%llu ktls_tx=1 ktls_rx=1\n", (unsigned long long)bytes);
	probe_report();
	return 0;
}
