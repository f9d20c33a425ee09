/* SPDX-License-Identifier: Apache-2.0 */
#include "rekey.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "ktls.h"
#include "log.h"

/* The kernel's own answers (EBUSY, or rekey counters missing from /proc/net/tls_stat); a probe
 * that failed otherwise (EMFILE, seccomp, no loopback) is not an answer and is not kept. */
static atomic_int kernel_rekeys = REKEY_UNKNOWN;
static atomic_bool probe_failure_logged;

static enum rekey_answer store(enum rekey_answer a)
{
	atomic_store(&kernel_rekeys, a);
	return a;
}

/* With probe, REKEY_UNKNOWN means the probe failed this time (asked again next time); without,
 * that nothing was asked that costs a socket (the caller's own install will tell). */
static enum rekey_answer kernel_rekey_answer(bool probe)
{
	enum rekey_answer a = atomic_load(&kernel_rekeys);
	if (a != REKEY_UNKNOWN)
		return a;
	if (ktls_stat_rekey() == 0)
		return store(REKEY_NO);
	if (!probe)
		return REKEY_UNKNOWN;
	int r = ktls_probe_rekey(); /* racing threads store the same answer */
	if (r >= 0)
		return store(r ? REKEY_YES : REKEY_NO);
	if (!atomic_exchange(&probe_failure_logged, true))
		log_msg(LOG_ERROR,
			"TLS 1.3 rekey probe failed (%s); next secrets are kept and the kernel "
			"is asked again when a key must change",
			strerror(-r));
	return REKEY_UNKNOWN;
}

void rekey_ask_on(int fd, const struct ktls_params *p)
{
	if (p->version != TLS_1_3 || atomic_load(&kernel_rekeys) != REKEY_UNKNOWN)
		return;
	int r = ktls_try_rekey(fd, p);
	if (r >= 0)
		store(r ? REKEY_YES : REKEY_NO);
}

/* The next secret of d in place; on failure none (the next KeyUpdate fails cleanly). */
static void ratchet(struct ksock *ks, enum dir d)
{
	if (keys_tls13_next_secret(ks->suite->md_type, ks->next_secret[d],
				   ks->next_secret_len[d])) {
		keys_wipe(ks->next_secret[d], sizeof(ks->next_secret[d]));
		ks->next_secret_len[d] = 0;
	}
}

void rekey_keep_next(struct ksock *ks, const struct suite_info *s, enum dir d,
		     const unsigned char *secret, size_t secret_len)
{
	if (s->version != TLS_1_3 || !secret_len || kernel_rekey_answer(false) == REKEY_NO)
		return;
	ks->suite = s;
	memcpy(ks->next_secret[d], secret, secret_len);
	ks->next_secret_len[d] = secret_len;
	ratchet(ks, d);
}

const char *rekey_refusal(struct ksock *ks, enum dir d, bool probe)
{
	if (ksock_is_copy(ks))
		return "this process is a fork() child: only the parent changes this socket's keys";
	enum rekey_answer a = kernel_rekey_answer(probe);
	if (a == REKEY_NO) {
		ksock_wipe_next_secrets(ks); /* useless here, as in every other connection */
		return "the kernel cannot rekey (Linux 6.14 or later can)";
	}
	if (!ks->next_secret_len[d])
		return "no next secret";
	return a == REKEY_UNKNOWN && probe
		       ? "the kernel's rekey probe failed; asked again at the next write"
		       : NULL;
}

int rekey(struct ksock *ks, enum dir d)
{
	if (!ks->suite || !ks->next_secret_len[d] || ksock_is_copy(ks))
		return -ENOKEY;
	struct ktls_params p = { .version = ks->suite->version,
				 .cipher = ks->suite->cipher,
				 .seq = 0 };
	int rc = keys_tls13_traffic(ks->suite, ks->next_secret[d], ks->next_secret_len[d], &p.keys)
			 ? -ENOKEY
			 : ktls_install(ks->fd, d, &p);
	keys_wipe(&p, sizeof(p));
	if (rc == -EBUSY) {
		/* The kernel cannot rekey (before 6.14): no connection here needs the secrets. */
		store(REKEY_NO);
		ksock_wipe_next_secrets(ks);
	}
	if (rc)
		return rc;
	store(REKEY_YES);
	ratchet(ks, d);
	ks->key_updates[d]++;
	if (d == DIR_RX) {
		log_msg(LOG_DEBUG, "fd=%d rx key update %u", ks->fd, ks->key_updates[d]);
		return 0;
	}
	log_msg(LOG_DEBUG, "fd=%d tx key update %u after %llu records", ks->fd, ks->key_updates[d],
		(unsigned long long)ks->tx_records);
	ks->tx_records = 0;
	ks->tx_overdue_logged = false;
	return 0;
}
