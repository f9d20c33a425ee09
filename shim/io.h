/* SPDX-License-Identifier: Apache-2.0 */
/* Writing on a socket whose TX the kernel owns, with Mbed TLS's semantics: data, alerts, and our
 * TLS 1.3 KeyUpdates. Every function returns 0 (or the bytes taken) or an Mbed TLS error. */
#ifndef KTLSSHIM_IO_H
#define KTLSSHIM_IO_H

#include <stddef.h>

#include "ksock.h"

/* What io_write sends per call: one whole kernel record, 2^14 bytes in TLS 1.2 and 1.3 alike. */
#define IO_RECORD_PAYLOAD IO_BUFFER_LEN

/* mbedtls_ssl_write on kernel TX: at most one record (16 KiB) per call, as in Mbed TLS;
 * WANT_WRITE means the bytes were taken and the same call (even with a NULL buffer) completes
 * them, as in Mbed TLS. */
int io_write(struct ksock *ks, const unsigned char *buf, size_t len);
/* An alert as a control record on kernel TX (all or nothing), after what a write already took. */
int io_send_alert(struct ksock *ks, unsigned char level, unsigned char desc);
/* An alert on whichever side owns TX: the kernel, or Mbed TLS (mbedtls_ssl_send_alert_message). */
int io_alert(struct ksock *ks, unsigned char level, unsigned char desc);
/* TLS 1.3, before new data: the KeyUpdate the peer asked for (ks->tx_update_due), or ours when
 * the current key carried its share (KTLS_SHIM_REKEY_RECORDS). 0, WANT_WRITE (nothing sent: the
 * next write tries again), or an error. */
int io_key_update_if_due(struct ksock *ks);

#endif
