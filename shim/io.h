/* SPDX-License-Identifier: Apache-2.0 */
/* Record-aware I/O on a socket whose record layer the kernel owns, with Mbed TLS's semantics. */
#ifndef KTLSSHIM_IO_H
#define KTLSSHIM_IO_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"

/* Size of each buffer in struct io_state (a record's payload; a post-handshake message). */
#define IO_BUFFER_LEN 16384

/* mbedtls_ssl_write on kernel TX: at most one record (16 KiB) per call, as in Mbed TLS;
 * WANT_WRITE means the bytes were taken and the same call (even with a NULL buffer) completes
 * them, as in Mbed TLS. */
int io_write(struct conn *c, const unsigned char *buf, size_t len);
/* mbedtls_ssl_read on kernel RX: application data, or the error Mbed TLS gives for the record. */
int io_read(struct conn *c, unsigned char *buf, size_t len);
/* io_read's handling of n bytes of a control record (alert, handshake) of the given type (eor:
 * they end the record): they go into io->ctrl and every complete message is handled as Mbed TLS
 * would (or, for a TLS 1.3 KeyUpdate, followed). An Mbed TLS error, CTRL_CONSUMED (read on) or
 * CTRL_NEED_MORE. */
enum ctrl_verdict { CTRL_NEED_MORE = 1, CTRL_CONSUMED = 2 };
int io_absorb_control(struct conn *c, unsigned char type, const unsigned char *p, size_t n,
		      bool eor);
/* mbedtls_ssl_get_bytes_avail on kernel RX: the bytes of the record the app is in the middle of
 * (maybe with later records already decrypted), 0 when it read a whole record last. No system call
 * then. */
size_t io_bytes_avail(struct conn *c);
/* An alert as a control record (all or nothing). */
int io_send_alert(struct conn *c, unsigned char level, unsigned char desc);
void io_reset(struct io_state *io); /* forget buffered bytes, keep the buffers */
void io_free(struct io_state *io);

#endif
