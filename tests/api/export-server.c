/* SPDX-License-Identifier: Apache-2.0 */
/* An application that installs kTLS itself with ktlsshim's API (linked, no LD_PRELOAD): it
 * accepts one TLS connection with Mbed TLS, takes each direction's kernel parameters with
 * ktlsshim_export, sets them on its own socket, and then moves data with plain send/recv: the
 * kernel does all the record crypto. usage: export-server PORTFILE CERTDIR TLS SENDFILE RECVFILE */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <psa/crypto.h>

#include "ktlsshim.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

static void die(const char *what, int err)
{
	fprintf(stderr, "ERROR %s: %d\n", what, err);
	exit(1);
}

struct sender {
	int fd;
	const char *path;
};

static void *send_file(void *p)
{
	struct sender *s = p;
	int in = open(s->path, O_RDONLY);
	char buf[65536];
	ssize_t n;
	while (in >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = send(s->fd, buf + off, (size_t)(n - off), 0);
			if (w < 0)
				die("send", errno);
			off += w;
		}
	close(in);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: export-server PORTFILE CERTDIR TLS SENDFILE RECVFILE\n");
		return 2;
	}
	char path[512], kpath[512];
	mbedtls_net_context listen, client;
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	int ret;

	psa_crypto_init();
	mbedtls_net_init(&listen);
	mbedtls_net_init(&client);
	mbedtls_ssl_init(&ssl);
	mbedtls_ssl_config_init(&conf);
	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&key);
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0);
	snprintf(path, sizeof(path), "%s/server-rsa.crt", argv[2]);
	snprintf(kpath, sizeof(kpath), "%s/server-rsa.key", argv[2]);
	if ((ret = mbedtls_x509_crt_parse_file(&crt, path)) ||
	    (ret = mbedtls_pk_parse_keyfile(&key, kpath, NULL, mbedtls_ctr_drbg_random, &drbg)))
		die("certificate", ret);
	mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
				    MBEDTLS_SSL_PRESET_DEFAULT);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ssl_conf_own_cert(&conf, &crt, &key);
	mbedtls_ssl_protocol_version v =
		strcmp(argv[3], "1.2") ? MBEDTLS_SSL_VERSION_TLS1_3 : MBEDTLS_SSL_VERSION_TLS1_2;
	mbedtls_ssl_conf_min_tls_version(&conf, v);
	mbedtls_ssl_conf_max_tls_version(&conf, v);
	if ((ret = mbedtls_ssl_setup(&ssl, &conf)))
		die("setup", ret);
	/* The application, not the shim, decides when and where the records go to the kernel. */
	if ((ret = ktlsshim_set_manual(&ssl)))
		die(ktlsshim_strerror(ret), ret);

	if ((ret = mbedtls_net_bind(&listen, "127.0.0.1", "0", MBEDTLS_NET_PROTO_TCP)))
		die("bind", ret);
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	getsockname(listen.fd, (struct sockaddr *)&sa, &sl);
	FILE *pf = fopen(argv[1], "w");
	fprintf(pf, "%d\n", ntohs(sa.sin_port));
	fclose(pf);
	if ((ret = mbedtls_net_accept(&listen, &client, NULL, 0, NULL)))
		die("accept", ret);
	mbedtls_ssl_set_bio(&ssl, &client, mbedtls_net_send, mbedtls_net_recv, NULL);
	while ((ret = mbedtls_ssl_handshake(&ssl)) != 0)
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			die("handshake", ret);
	if (ktlsshim_offloaded(&ssl) != 0)
		die("the shim offloaded a manual context", ktlsshim_offloaded(&ssl));

	static const char ulp[] = "tls";
	if (setsockopt(client.fd, SOL_TCP, TCP_ULP, ulp, sizeof(ulp) - 1))
		die("TCP_ULP", errno);
	const int dirs[2] = { KTLSSHIM_TX, KTLSSHIM_RX };
	for (int i = 0; i < 2; i++) {
		struct ktlsshim_crypto_info ci;
		if ((ret = ktlsshim_export(&ssl, dirs[i], &ci)))
			die(ktlsshim_strerror(ret), ret);
		ret = setsockopt(client.fd, SOL_TLS, dirs[i] == KTLSSHIM_TX ? TLS_TX : TLS_RX,
				 &ci.u, (socklen_t)ci.len);
		mbedtls_platform_zeroize(&ci, sizeof(ci));
		if (ret)
			die("setsockopt TLS_TX/TLS_RX", errno);
	}
	/* Mbed TLS must no longer touch the records: its sequence numbers are stale. */
	unsigned char probe[1];
	if (mbedtls_ssl_write(&ssl, probe, 1) != MBEDTLS_ERR_SSL_BAD_INPUT_DATA)
		die("mbedtls_ssl_write after export", 0);
	printf("EXPORTED %s %s\n", mbedtls_ssl_get_version(&ssl),
	       mbedtls_ssl_get_ciphersuite(&ssl));
	fflush(stdout);

	/* Both directions at once: the peer may not read before it has written everything. */
	struct sender s = { client.fd, argv[4] };
	pthread_t th;
	pthread_create(&th, NULL, send_file, &s);
	int out = open(argv[5], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	off_t want = 0;
	{
		int in = open(argv[4], O_RDONLY);
		want = lseek(in, 0, SEEK_END);
		close(in);
	}
	char buf[65536];
	off_t got = 0;
	while (got < want) {
		ssize_t n = recv(client.fd, buf, sizeof(buf), 0);
		if (n <= 0)
			die("recv", n < 0 ? errno : 0);
		if (write(out, buf, (size_t)n) != n)
			die("write", errno);
		got += n;
	}
	close(out);
	pthread_join(th, NULL);
	shutdown(client.fd, SHUT_WR);
	printf("DONE sent and received %lld bytes\n", (long long)got);
	mbedtls_net_free(&client);
	mbedtls_net_free(&listen);
	mbedtls_ssl_free(&ssl);
	mbedtls_ssl_config_free(&conf);
	return 0;
}
