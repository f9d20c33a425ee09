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
/* The application's fd, when its BIO is Mbed TLS's own plain socket functions; else -1. */
int capture_bio_fd(const struct conn *c);
/* The kernel refused the TLS ULP with ENOENT: from now on new connections are not even watched. */
void capture_stop(void);
bool capture_stopped(void);

#endif
