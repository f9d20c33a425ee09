/* SPDX-License-Identifier: Apache-2.0 */
/* The shim's BIO and export-keys callbacks around the application's: every record passes the
 * BIO and is framed and counted (seq.h), every secret is copied before the app's callback. */
#ifndef KTLSSHIM_CAPTURE_H
#define KTLSSHIM_CAPTURE_H

#include <stdbool.h>
#include <mbedtls/ssl.h>

#include "conn.h"

void capture_set_bio(struct conn *c, void *bio, mbedtls_ssl_send_t *s, mbedtls_ssl_recv_t *r,
		     mbedtls_ssl_recv_timeout_t *rt);
void capture_set_export_cb(struct conn *c, mbedtls_ssl_export_keys_t *f, void *p);
/* The application's fd: a plain BIO's (Mbed TLS's own socket functions), or a custom BIO's proven
 * one (*why NULL); else why not (KTLS_SHIM_CUSTOM_BIO=0 or the proof's reason), and the fd the
 * proof saw, for the log (-1: none). */
int capture_bio_fd(struct conn *c, const char **why);
/* After the socket was noted (ksock_note_socket): a custom BIO's descriptor was not closed or
 * replaced since the proof first saw it. */
bool capture_same_socket(const struct conn *c);
/* The kernel refused the TLS ULP with ENOENT: from now on new connections are not even watched. */
void capture_stop(void);
bool capture_stopped(void);

#endif
