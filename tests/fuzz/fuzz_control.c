/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the post-handshake control messages of a kernel-owned RX (control_absorb,
 * shim/control.c): alerts, tickets, TLS 1.3 KeyUpdates valid and malformed, TLS 1.2 renegotiation
 * requests, cut into pieces anywhere and mixed with other record types.
 *
 * Input: byte 0 chooses the connection (bit 0: TLS 1.3, bit 1: server, bit 2: a next RX secret to
 * rekey with, bit 3: TX in the kernel); then pieces as [type][length][length bytes]..., where
 * type's top bit says the piece does NOT end its record (MSG_EOR clear). The
 * socket is one end of a Unix socketpair: whatever the shim sends through the kernel (alerts, its
 * KeyUpdate) is refused there, as a failed send would be; with TX in user space, alerts go to Mbed
 * TLS with a context that was never set up, which refuses them too. Each verdict must be a
 * ctrl_verdict, with an Mbed TLS error when it failed, and the buffered message never exceeds its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "conf.h"
#include "control.h"
#include "keys.h"
#include "ksock.h"
#include "real.h"

#define CHECK(x)                          \
	do {                              \
		if (!(x))                 \
			__builtin_trap(); \
	} while (0)

static int fds[2] = { -1, -1 };
static const char server_conf; /* stands for an mbedtls_ssl_config: only its address is used */
static mbedtls_ssl_context never_set_up;
static mbedtls_net_context app_net; /* the application's BIO context: Mbed TLS's own socket */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("KTLS_SHIM_LOG", "off", 1); /* before the configuration is first read */
	conf_note_endpoint((const mbedtls_ssl_config *)&server_conf, MBEDTLS_SSL_IS_SERVER);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
	CHECK(real_resolve());
	real.init(&never_set_up);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	struct ksock *ks = calloc(1, sizeof(*ks));
	CHECK(ks);
	uint8_t mode = data[0];
	ks->fd = app_net.fd = fds[0];
	ks->net = &app_net;
	ks->net_send = ks->net_bio = true;
	ks->ssl = &never_set_up;
	ks->version = mode & 1 ? TLS_1_3 : TLS_1_2;
	ks->conf = mode & 2 ? (const mbedtls_ssl_config *)&server_conf : NULL;
	ks->owner[DIR_RX] = OWNER_KERNEL;
	ks->owner[DIR_TX] = mode & 8 ? OWNER_KERNEL : OWNER_USER;
	if ((mode & 4) && ks->version == TLS_1_3) {
		ks->suite = keys_suite(0x1301); /* TLS_AES_128_GCM_SHA256 */
		memset(ks->next_secret[DIR_RX], 0x5a, 32);
		ks->next_secret_len[DIR_RX] = 32;
	}
	size_t off = 1;
	while (off + 2 <= size) {
		unsigned char type = data[off] & 0x7f;
		bool eor = !(data[off] & 0x80);
		size_t len = data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		int err = 0;
		enum ctrl_verdict v = control_absorb(ks, type, data + off, len, eor, &err);
		CHECK(v == CTRL_FAILED ? err < 0 : (v == CTRL_NEED_MORE || v == CTRL_CONSUMED));
		CHECK(ks->io.ctrl_len <= IO_BUFFER_LEN);
		off += len;
		if (v == CTRL_FAILED)
			break; /* recv_read returns the error: the connection is over */
	}
	ksock_free(ks);
	free(ks);
	/* Drain what reached the other end, so the socketpair never fills up. */
	char sink[4096];
	while (read(fds[1], sink, sizeof(sink)) > 0)
		;
	return 0;
}
