/* SPDX-License-Identifier: Apache-2.0 */
/* mbed-server: an ordinary Mbed TLS 3.6 server (see common.h and --help). Serves connections
 * one at a time with one context reset between them, or, with --threads, each on its own thread
 * with its own context. Exits 1 if any connection failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <mbedtls/ssl_ticket.h>

#include "common.h"

static struct opts opts;
static mbedtls_ssl_ticket_context ticket_ctx;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
static int active, failures;

/* A ticket that decrypts is a resumption: the server's view of "resumed". (A TLS 1.3 ticket past
 * its age window would still fall back to a full handshake; tests do not wait that long.) */
static int parse_ticket(void *p, mbedtls_ssl_session *session, unsigned char *buf, size_t len)
{
	int ret = mbedtls_ssl_ticket_parse(p, session, buf, len);
	if (ret == 0 && conn_current)
		conn_current->resumed = true;
	return ret;
}

static void done(int ret)
{
	pthread_mutex_lock(&lock);
	failures += ret != 0;
	active--;
	pthread_cond_broadcast(&idle);
	pthread_mutex_unlock(&lock);
}

struct job {
	struct conn c;
	mbedtls_ssl_context ssl;
};

static void *serve_thread(void *arg)
{
	struct job *j = arg;
	tls_context_init(&j->ssl, &opts);
	j->c.ssl = &j->ssl;
	done(conn_run(&j->c));
	mbedtls_ssl_free(&j->ssl);
	free(j);
	return NULL;
}

static void announce_port(const mbedtls_net_context *listener)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	if (getsockname(listener->fd, (struct sockaddr *)&sa, &len) < 0)
		die_errno("getsockname");
	unsigned port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
						       : ((struct sockaddr_in *)&sa)->sin_port);
	printf("PORT %u\n", port);
	if (opts.port_file) {
		/* Written aside and renamed, so a reader never sees a partial number. */
		char tmp[4096];
		snprintf(tmp, sizeof(tmp), "%s.tmp", opts.port_file);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 ||
		    rename(tmp, opts.port_file))
			die_errno(opts.port_file);
	}
}

int main(int argc, char **argv)
{
	opts_parse(&opts, ROLE_SERVER, argc, argv);
	mbedtls_ssl_config *conf = tls_setup(&opts);
	int ret;

	mbedtls_ssl_ticket_init(&ticket_ctx);
	if (opts.tickets > 0) {
		if ((ret = mbedtls_ssl_ticket_setup(&ticket_ctx, tls_rng, NULL,
						    MBEDTLS_CIPHER_AES_256_GCM, 86400)) != 0)
			die_mbedtls("mbedtls_ssl_ticket_setup", ret);
		/* The callbacks enable TLS 1.2 tickets; the count is for TLS 1.3. */
		mbedtls_ssl_conf_session_tickets_cb(conf, mbedtls_ssl_ticket_write, parse_ticket,
						    &ticket_ctx);
#if MBEDTLS_VERSION_MAJOR >= 3
		mbedtls_ssl_conf_new_session_tickets(conf, (uint16_t)opts.tickets);
#endif
	}

	mbedtls_net_context listener;
	mbedtls_net_init(&listener);
	if ((ret = mbedtls_net_bind(&listener, opts.host, opts.port, MBEDTLS_NET_PROTO_TCP)) != 0)
		die_mbedtls("mbedtls_net_bind", ret);
	announce_port(&listener);

	mbedtls_ssl_context ssl; /* the one-at-a-time server's context */
	if (!opts.threads)
		tls_context_init(&ssl, &opts);
	for (int n = 0; opts.serve == 0 || n < opts.serve; n++) {
		struct job *j = calloc(1, sizeof(*j));
		if (!j)
			die_errno("calloc");
		j->c = (struct conn){ .o = &opts, .idx = n };
		mbedtls_net_init(&j->c.net);
		if ((ret = mbedtls_net_accept(&listener, &j->c.net, NULL, 0, NULL)) != 0)
			die_mbedtls("mbedtls_net_accept", ret);
		pthread_mutex_lock(&lock);
		active++;
		pthread_mutex_unlock(&lock);
		if (opts.threads) {
			pthread_t tid;
			if ((errno = pthread_create(&tid, NULL, serve_thread, j)) != 0)
				die_errno("pthread_create");
			pthread_detach(tid);
			continue;
		}
		if (n > 0 && (ret = mbedtls_ssl_session_reset(&ssl)) != 0)
			die_mbedtls("mbedtls_ssl_session_reset", ret);
		j->c.ssl = &ssl;
		done(conn_run(&j->c));
		free(j);
	}

	pthread_mutex_lock(&lock);
	while (active > 0)
		pthread_cond_wait(&idle, &lock);
	pthread_mutex_unlock(&lock);
	if (!opts.threads)
		mbedtls_ssl_free(&ssl);
	mbedtls_net_free(&listener);
	mbedtls_ssl_ticket_free(&ticket_ctx);
	return failures ? 1 : 0;
}
