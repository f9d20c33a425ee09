/* SPDX-License-Identifier: Apache-2.0 */
/* raw-handshake: a TLS 1.3 server (Mbed TLS, linked with ktlsshim's API, no LD_PRELOAD) that
 * installs kTLS on its own socket and then sends chosen bytes as encrypted TLS records of type
 * handshake (22): what a relay cannot forge, e.g. malformed KeyUpdates
 * (tests/keyupdate-malformed.bats).
 *
 *   raw-handshake [--port N] [--cert DIR] [--data BYTES] --send HEX [--send HEX]... [--shut]
 *                 [--timeout S]
 *
 * Accepts one connection, hands both directions to the kernel (ktlsshim_export + setsockopt),
 * sends BYTES of application data (--data), then each --send as ONE handshake record (HEX: the
 * record's plaintext; blanks and colons are ignored), shuts down its writing side when --shut is
 * given, and reports everything the peer sends back until EOF:
 *   PORT n                     listening (port 0 = any)
 *   KTLS version suite         both directions are in the kernel
 *   SENT type=22 len=L         one record sent
 *   RECV type=T data=HEX       one record received (type from TLS_GET_RECORD_TYPE)
 *   EOF | ERR errno            the end (ERR 11: nothing for --timeout seconds, default 30)
 * Exit 0 after EOF or ERR; 1 on a setup error; 3 when the kernel has no kTLS (TCP_ULP fails). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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

#define MAX_SENDS  8
#define MAX_RECORD 16384

static void die(const char *what, int err)
{
	fprintf(stderr, "raw-handshake: %s: %d\n", what, err);
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: raw-handshake [--port N] [--cert DIR] [--data BYTES] --send HEX"
			" [--send HEX]... [--shut] [--timeout S]\n");
	exit(2);
}

/* HEX (blanks and colons ignored) into buf; the byte count. */
static size_t unhex(const char *hex, unsigned char *buf, size_t max)
{
	size_t n = 0;
	int half = -1;
	for (const char *p = hex; *p; p++) {
		if (*p == ' ' || *p == ':' || *p == '\t')
			continue;
		int v = *p >= '0' && *p <= '9'	 ? *p - '0'
			: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
			: *p >= 'A' && *p <= 'F' ? *p - 'A' + 10
						 : -1;
		if (v < 0)
			usage();
		if (half < 0) {
			half = v;
			continue;
		}
		if (n == max)
			usage();
		buf[n++] = (unsigned char)(half << 4 | v);
		half = -1;
	}
	if (half >= 0 || n == 0)
		usage();
	return n;
}

static int send_record(int fd, unsigned char type, const unsigned char *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(unsigned char))] = { 0 };
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cbuf,
			      .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_TLS;
	cm->cmsg_type = TLS_SET_RECORD_TYPE;
	cm->cmsg_len = CMSG_LEN(sizeof(unsigned char));
	*CMSG_DATA(cm) = type;
	return sendmsg(fd, &msg, 0) == (ssize_t)len ? 0 : -1;
}

/* Prints every record the peer sends until EOF or an error. */
static void report_replies(int fd)
{
	static unsigned char buf[MAX_RECORD];
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(unsigned char))];
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
		struct msghdr msg = { .msg_iov = &iov,
				      .msg_iovlen = 1,
				      .msg_control = cbuf,
				      .msg_controllen = sizeof(cbuf) };
		ssize_t n = recvmsg(fd, &msg, 0);
		if (n < 0) {
			printf("ERR %d\n", errno);
			return;
		}
		if (n == 0) {
			printf("EOF\n");
			return;
		}
		int type = -1;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
		if (cm && cm->cmsg_level == SOL_TLS && cm->cmsg_type == TLS_GET_RECORD_TYPE)
			type = *CMSG_DATA(cm);
		printf("RECV type=%d data=", type);
		for (ssize_t i = 0; i < n && i < 64; i++)
			printf("%02x", buf[i]);
		printf("%s\n", n > 64 ? "..." : "");
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	const char *port = "0", *certdir = NULL, *sends[MAX_SENDS];
	size_t nsends = 0, data = 0;
	int shut = 0, timeout_s = 30;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--shut")) {
			shut = 1;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--port"))
			port = v;
		else if (!strcmp(a, "--cert"))
			certdir = v;
		else if (!strcmp(a, "--data"))
			data = strtoul(v, NULL, 10);
		else if (!strcmp(a, "--timeout"))
			timeout_s = atoi(v);
		else if (!strcmp(a, "--send") && nsends < MAX_SENDS)
			sends[nsends++] = v;
		else
			usage();
	}
	if (!certdir || nsends == 0)
		usage();
	signal(SIGPIPE, SIG_IGN);

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
	snprintf(path, sizeof(path), "%s/server-rsa.crt", certdir);
	snprintf(kpath, sizeof(kpath), "%s/server-rsa.key", certdir);
	if ((ret = mbedtls_x509_crt_parse_file(&crt, path)) ||
	    (ret = mbedtls_pk_parse_keyfile(&key, kpath, NULL, mbedtls_ctr_drbg_random, &drbg)))
		die("certificate", ret);
	mbedtls_ssl_config_defaults(&conf, MBEDTLS_SSL_IS_SERVER, MBEDTLS_SSL_TRANSPORT_STREAM,
				    MBEDTLS_SSL_PRESET_DEFAULT);
	mbedtls_ssl_conf_rng(&conf, mbedtls_ctr_drbg_random, &drbg);
	mbedtls_ssl_conf_own_cert(&conf, &crt, &key);
	mbedtls_ssl_conf_min_tls_version(&conf, MBEDTLS_SSL_VERSION_TLS1_3);
	mbedtls_ssl_conf_max_tls_version(&conf, MBEDTLS_SSL_VERSION_TLS1_3);
	if ((ret = mbedtls_ssl_setup(&ssl, &conf)))
		die("mbedtls_ssl_setup", ret);
	if ((ret = ktlsshim_set_manual(&ssl)))
		die(ktlsshim_strerror(ret), ret);

	if ((ret = mbedtls_net_bind(&listen, "127.0.0.1", port, MBEDTLS_NET_PROTO_TCP)))
		die("bind", ret);
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	getsockname(listen.fd, (struct sockaddr *)&sa, &sl);
	printf("PORT %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	if ((ret = mbedtls_net_accept(&listen, &client, NULL, 0, NULL)))
		die("accept", ret);
	mbedtls_ssl_set_bio(&ssl, &client, mbedtls_net_send, mbedtls_net_recv, NULL);
	while ((ret = mbedtls_ssl_handshake(&ssl)) != 0)
		if (ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
			die("handshake", ret);

	static const char ulp[] = "tls";
	if (setsockopt(client.fd, SOL_TCP, TCP_ULP, ulp, sizeof(ulp) - 1)) {
		printf("NOKTLS %d\n", errno);
		return 3;
	}
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
	printf("KTLS %s %s\n", mbedtls_ssl_get_version(&ssl), mbedtls_ssl_get_ciphersuite(&ssl));
	fflush(stdout);

	struct timeval tv = { .tv_sec = timeout_s };
	setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	static unsigned char buf[MAX_RECORD];
	memset(buf, 'x', sizeof(buf));
	for (size_t left = data; left > 0;) {
		ssize_t n = send(client.fd, buf, left < sizeof(buf) ? left : sizeof(buf), 0);
		if (n <= 0)
			die("send data", errno);
		left -= (size_t)n;
	}
	for (size_t i = 0; i < nsends; i++) {
		size_t len = unhex(sends[i], buf, sizeof(buf));
		if (send_record(client.fd, MBEDTLS_SSL_MSG_HANDSHAKE, buf, len))
			die("sendmsg record", errno);
		printf("SENT type=%d len=%zu\n", MBEDTLS_SSL_MSG_HANDSHAKE, len);
		fflush(stdout);
	}
	if (shut)
		shutdown(client.fd, SHUT_WR);
	report_replies(client.fd);
	fflush(stdout);

	mbedtls_net_free(&client);
	mbedtls_net_free(&listen);
	mbedtls_ssl_free(&ssl);
	mbedtls_ssl_config_free(&conf);
	mbedtls_x509_crt_free(&crt);
	mbedtls_pk_free(&key);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return 0;
}
