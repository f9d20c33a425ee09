/* SPDX-License-Identifier: Apache-2.0 */
/* mbed-client: an ordinary Mbed TLS 3.6 client (see common.h and --help). Each of --parallel
 * threads makes --connections connections in sequence on one context, reset between them, and
 * with --resume offers the previous connection's session. Exits 1 if any connection failed. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

static struct opts opts;

struct worker {
	pthread_t tid;
	int first_idx; /* CONN numbers first_idx .. first_idx + connections - 1 */
	int failed;
};

static void *client_thread(void *arg)
{
	struct worker *w = arg;
	mbedtls_ssl_context ssl;
	mbedtls_ssl_session sessions[2]; /* the one to offer, and the one being taken */
	int offer = -1, ret;

	tls_context_init(&ssl, &opts);
	mbedtls_ssl_session_init(&sessions[0]);
	mbedtls_ssl_session_init(&sessions[1]);
	for (int i = 0; i < opts.connections && !w->failed; i++) {
		int take = offer == 0 ? 1 : 0;
		struct conn c = { .o = &opts,
				  .idx = w->first_idx + i,
				  .ssl = &ssl,
				  .session = opts.resume ? &sessions[take] : NULL };
		mbedtls_net_init(&c.net);
		if (i > 0 && (ret = mbedtls_ssl_session_reset(&ssl)) != 0)
			die_mbedtls("mbedtls_ssl_session_reset", ret);
		if (offer >= 0 && (ret = mbedtls_ssl_set_session(&ssl, &sessions[offer])) != 0)
			die_mbedtls("mbedtls_ssl_set_session", ret);
		if ((ret = mbedtls_net_connect(&c.net, opts.host, opts.port,
					       MBEDTLS_NET_PROTO_TCP)) != 0)
			die_mbedtls("mbedtls_net_connect", ret);
		w->failed = conn_run(&c) != 0;
		if (c.got_session)
			offer = take;
	}
	mbedtls_ssl_session_free(&sessions[0]);
	mbedtls_ssl_session_free(&sessions[1]);
	mbedtls_ssl_free(&ssl);
	return NULL;
}

int main(int argc, char **argv)
{
	opts_parse(&opts, ROLE_CLIENT, argc, argv);
	mbedtls_ssl_config *conf = tls_setup(&opts);
	/* Mbed TLS 3.6 clients drop TLS 1.3 tickets unless asked to hand them over. */
#if MBEDTLS_VERSION_MAJOR >= 3
	if (opts.resume)
		mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets(
			conf, MBEDTLS_SSL_TLS1_3_SIGNAL_NEW_SESSION_TICKETS_ENABLED);
#else
	(void)conf;
#endif

	struct worker *workers = calloc((size_t)opts.parallel, sizeof(*workers));
	if (!workers)
		die_errno("calloc");
	for (int t = 0; t < opts.parallel; t++) {
		workers[t].first_idx = t * opts.connections;
		if ((errno = pthread_create(&workers[t].tid, NULL, client_thread, &workers[t])) !=
		    0)
			die_errno("pthread_create");
	}
	int failed = 0;
	for (int t = 0; t < opts.parallel; t++) {
		pthread_join(workers[t].tid, NULL);
		failed += workers[t].failed;
	}
	free(workers);
	return failed ? 1 : 0;
}
