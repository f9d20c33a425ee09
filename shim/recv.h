/* SPDX-License-Identifier: Apache-2.0 */
/* Reading on a socket whose RX the kernel owns, with Mbed TLS's semantics: one record at a time,
 * waited for as the application's own BIO would. */
#ifndef KTLSSHIM_RECV_H
#define KTLSSHIM_RECV_H

#include <stddef.h>

#include "ksock.h"

/* mbedtls_ssl_read on kernel RX: application data, or the error Mbed TLS gives for the record;
 * control records are handled on the way (control.h). */
int recv_read(struct ksock *ks, unsigned char *buf, size_t len);
/* mbedtls_ssl_get_bytes_avail on kernel RX: the bytes of the record the app is in the middle of
 * (maybe with later records already decrypted), 0 when it read a whole record last. No system call
 * then. */
size_t recv_bytes_avail(struct ksock *ks);

#endif
