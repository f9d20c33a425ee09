/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the post-handshake control messages of a kernel-owned RX (io_absorb_control,
 * shim/io.c): alerts, tickets, TLS 1.3 KeyUpdates valid and malformed, TLS 1.2 renegotiation
 * requests, cut into pieces anywhere and mixed with other record types.
 *
 * Input: byte 0 chooses the connection (bit 0: TLS 1.3, bit 1: server, bit 2: a next RX secret to
 * rekey with, bit 3: TX in the kernel); then pieces as [type][length][length bytes]..., where
 * type's top bit says the piece does NOT end its record (MSG_EOR clear). The
 * socket is one end of a Unix socketpair: whatever the shim sends through the kernel (alerts, its
 * KeyUpdate) is refused there, as a failed send would be; with TX in user space, alerts go to Mbed
 * TLS with a context that was never set up, which refuses them too. Each verdict must be an Mbed TLS error or a
 * ctrl_verdict, and the buffered message never exceeds its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include "conn.h"
#include "io.h"
#include "keys.h"
#include "real.h"

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

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
	struct conn *c = calloc(1, sizeof(*c));
	CHECK(c);
	uint8_t mode = data[0];
	c->fd = app_net.fd = fds[0];
	c->app_bio = &app_net;
	c->app_send = real.net_send;
	c->ssl = &never_set_up;
	c->version = mode & 1 ? TLS_1_3 : TLS_1_2;
	c->conf = mode & 2 ? (const mbedtls_ssl_config *)&server_conf : NULL;
	c->rx_state = DIR_KERNEL;
	c->tx_state = mode & 8 ? DIR_KERNEL : DIR_USER;
	if ((mode & 4) && c->version == TLS_1_3) {
		c->suite = keys_suite(0x1301); /* TLS_AES_128_GCM_SHA256 */
		memset(c->next_secret[KTLS_DIR_RX], 0x5a, 32);
		c->next_secret_len[KTLS_DIR_RX] = 32;
	}
	size_t off = 1;
	while (off + 2 <= size) {
		unsigned char type = data[off] & 0x7f;
		bool eor = !(data[off] & 0x80);
		size_t len = data[off + 1];
		off += 2;
		if (len > size - off)
			len = size - off;
		int v = io_absorb_control(c, type, data + off, len, eor);
		CHECK(v < 0 || v == CTRL_NEED_MORE || v == CTRL_CONSUMED);
		CHECK(c->io.ctrl_len <= IO_BUFFER_LEN);
		off += len;
		if (v < 0)
			break; /* io_read returns the error: the connection is over */
	}
	io_free(&c->io);
	keys_wipe(c->next_secret, sizeof(c->next_secret));
	free(c);
	/* Drain what reached the other end, so the socketpair never fills up. */
	char sink[4096];
	while (read(fds[1], sink, sizeof(sink)) > 0)
		;
	return 0;
}
