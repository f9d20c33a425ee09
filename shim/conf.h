/* SPDX-License-Identifier: Apache-2.0 */
/* What the shim needs to know of an mbedtls_ssl_config that Mbed TLS keeps in private fields,
 * learned from the setters the wrappers see; keyed by the config's address. */
#ifndef KTLSSHIM_CONF_H
#define KTLSSHIM_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <mbedtls/ssl.h>

struct conf_facts {
	const mbedtls_ssl_config *conf;
	struct conf_facts *next;
	int endpoint, transport, renegotiation, signal_tickets;
	uint32_t read_timeout;
};

void conf_note_endpoint(const mbedtls_ssl_config *conf, int endpoint);
void conf_note_transport(const mbedtls_ssl_config *conf, int transport);
void conf_note_renegotiation(const mbedtls_ssl_config *conf, int enabled);
void conf_note_read_timeout(const mbedtls_ssl_config *conf, uint32_t ms);
void conf_note_signal_tickets(const mbedtls_ssl_config *conf, int enabled);
void conf_forget(const mbedtls_ssl_config *conf);
/* Around fork() (conn.c's handlers): the lock taken before, released on both sides after. */
void conf_fork_prepare(void);
void conf_fork_release(void);
/* A copy (no lock held by the caller); Mbed TLS's defaults (a zeroed config) when never noted. */
struct conf_facts conf_lookup(const mbedtls_ssl_config *conf);
bool conf_is_server(const mbedtls_ssl_config *conf);
/* The read timeout (ms, 0 = none) now: Mbed TLS reads it at every call. */
uint32_t conf_read_timeout(const mbedtls_ssl_config *conf);

#endif
