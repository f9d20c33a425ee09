/* SPDX-License-Identifier: Apache-2.0 */
/* Reading on a socket whose RX the kernel owns, with Mbed TLS's semantics: one record at a time,
 * waited for as the application's own BIO would. */
#ifndef KTLSSHIM_RECV_H
#define KTLSSHIM_RECV_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "ksock.h"

/* The two answers of recv_record/recv_waiting that are not the socket's errno: bytes without
 * the kernel's record type (not a kernel-TLS socket), and the config's read timeout ran out. */
#define NOT_KTLS (-EPROTOTYPE)
#define RECV_TIMEOUT (-ETIME)

/* One recvmsg with flags: bytes read (0 = EOF), the record type and whether they end the record
 * (the kernel's MSG_EOR: a buffer shorter than the record leaves the rest for the next read), or
 * -errno, or NOT_KTLS. kTLS gives every record's type as a cmsg; bytes without one came from a
 * plain socket, and are never taken for decrypted data. */
ssize_t recv_record(struct ksock *ks, unsigned char *buf, size_t len, int flags, unsigned char *type,
		    bool *eor);
/* recv_record as the application's own BIO would wait. mbedtls_net_recv reads in the socket's
 * mode of the moment. mbedtls_net_recv_timeout first waits until the socket is readable, for the
 * config's read timeout as it is now (0: for ever), then reads: here a read that finds nothing
 * waits in poll() and reads again, until a whole record is there or the time is up
 * (RECV_TIMEOUT). The socket's mode and the app's SO_RCVTIMEO are the app's own. */
ssize_t recv_waiting(struct ksock *ks, unsigned char *buf, size_t len, unsigned char *type,
		     bool *eor);
/* The Mbed TLS error for what recv_record or recv_waiting returned below 0. */
int recv_failed(const struct ksock *ks, ssize_t n);

/* mbedtls_ssl_read on kernel RX: application data, or the error Mbed TLS gives for the record;
 * control records are handled on the way (control.h). */
int recv_read(struct ksock *ks, unsigned char *buf, size_t len);
/* mbedtls_ssl_get_bytes_avail on kernel RX: the bytes of the record the app is in the middle of
 * (maybe with later records already decrypted), 0 when it read a whole record last. No system call
 * then. */
size_t recv_bytes_avail(struct ksock *ks);

#endif
