/* SPDX-License-Identifier: Apache-2.0 */
#include "conf.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

static struct conf_facts *confs;
static pthread_mutex_t conf_lock = PTHREAD_MUTEX_INITIALIZER;

void conf_fork_prepare(void)
{
	pthread_mutex_lock(&conf_lock);
}

void conf_fork_release(void)
{
	pthread_mutex_unlock(&conf_lock);
}

struct conf_facts conf_lookup(const mbedtls_ssl_config *conf)
{
	struct conf_facts out = { .conf = conf };
	pthread_mutex_lock(&conf_lock);
	for (struct conf_facts *f = confs; f; f = f->next)
		if (f->conf == conf) {
			out = *f;
			break;
		}
	pthread_mutex_unlock(&conf_lock);
	return out;
}

#define CONF_UPDATE(conf, stmt)                          \
	do {                                             \
		pthread_mutex_lock(&conf_lock);          \
		struct conf_facts *f = confs;            \
		while (f && f->conf != (conf))           \
			f = f->next;                     \
		if (!f && (f = calloc(1, sizeof(*f)))) { \
			f->conf = (conf);                \
			f->next = confs;                 \
			confs = f;                       \
		}                                        \
		if (f)                                   \
			stmt;                            \
		pthread_mutex_unlock(&conf_lock);        \
	} while (0)

void conf_note_endpoint(const mbedtls_ssl_config *conf, int v)
{
	CONF_UPDATE(conf, f->endpoint = v);
}
void conf_note_transport(const mbedtls_ssl_config *conf, int v)
{
	CONF_UPDATE(conf, f->transport = v);
}
void conf_note_renegotiation(const mbedtls_ssl_config *conf, int v)
{
	CONF_UPDATE(conf, f->renegotiation = v);
}
void conf_note_read_timeout(const mbedtls_ssl_config *conf, uint32_t v)
{
	CONF_UPDATE(conf, f->read_timeout = v);
}
void conf_note_signal_tickets(const mbedtls_ssl_config *conf, int v)
{
	CONF_UPDATE(conf, f->signal_tickets = v);
}

void conf_forget(const mbedtls_ssl_config *conf)
{
	pthread_mutex_lock(&conf_lock);
	struct conf_facts **pp = &confs;
	while (*pp && (*pp)->conf != conf)
		pp = &(*pp)->next;
	struct conf_facts *f = *pp;
	if (f)
		*pp = f->next;
	pthread_mutex_unlock(&conf_lock);
	free(f);
}

bool conf_is_server(const mbedtls_ssl_config *conf)
{
	return conf_lookup(conf).endpoint == MBEDTLS_SSL_IS_SERVER;
}

uint32_t conf_read_timeout(const mbedtls_ssl_config *conf)
{
	return conf_lookup(conf).read_timeout;
}
