/* Record-aware I/O on a socket whose record layer the kernel owns, with Mbed TLS's semantics. */
#ifndef KTLSSHIM_IO_H
#define KTLSSHIM_IO_H

#include <stddef.h>

#include "conn.h"

/* Size of each buffer in struct io_state (a record's payload; a post-handshake message). */
#define IO_BUFFER_LEN 16384

/* mbedtls_ssl_write on kernel TX: partial counts only past one record; WANT_WRITE means the
 * bytes were taken and the same call (even with a NULL buffer) completes them, as in Mbed TLS. */
int io_write(struct conn *c, const unsigned char *buf, size_t len);
/* mbedtls_ssl_read on kernel RX: application data, or the error Mbed TLS gives for the record. */
int io_read(struct conn *c, unsigned char *buf, size_t len);
/* Notes what io_read needs of the socket, when RX moves to the kernel. */
void io_prepare_rx(struct conn *c);
/* An alert as a control record (all or nothing). */
int io_send_alert(struct conn *c, unsigned char level, unsigned char desc);
void io_reset(struct io_state *io); /* forget buffered bytes, keep the buffers */
void io_free(struct io_state *io);

#endif
