/* SPDX-License-Identifier: Apache-2.0 */
/* The context map: a fixed hash table, its lock held only for lookup and insert/remove. */
#include "conn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

#define BUCKETS 1024
static struct conn *buckets[BUCKETS];
/* A mutex, not an rwlock: a forked child must be able to release it (below), and glibc's rwlock
 * remembers its writer by a thread id the child no longer has. Held only for a bucket walk. */
static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t bucket_of(const void *p)
{
	uintptr_t v = (uintptr_t)p;
	return (size_t)((v >> 4) ^ (v >> 14)) % BUCKETS;
}

/* fork() copies a lock that another thread holds as held forever: the child would hang in its
 * next mbedtls_ssl_* call. Both locks (the map's, the config facts') are taken around fork and
 * released on both sides. */
static void fork_prepare(void)
{
	conf_fork_prepare();
	pthread_mutex_lock(&map_lock);
}

static void fork_release(void)
{
	pthread_mutex_unlock(&map_lock);
	conf_fork_release();
}

/* The child forgets what it must not use (ksock_forked; no log here: a lock another thread held
 * at fork may guard the log). */
static void fork_child(void)
{
	fork_release();
	for (size_t b = 0; b < BUCKETS; b++)
		for (struct conn *c = buckets[b]; c; c = c->next)
			ksock_forked(&c->ks);
}

__attribute__((constructor)) static void conn_atfork(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_child);
}

struct conn *conn_find(const mbedtls_ssl_context *ssl)
{
	pthread_mutex_lock(&map_lock);
	struct conn *c = buckets[bucket_of(ssl)];
	while (c && c->ks.ssl != ssl)
		c = c->next;
	pthread_mutex_unlock(&map_lock);
	return c;
}

struct conn *conn_get(mbedtls_ssl_context *ssl)
{
	struct conn *c = conn_find(ssl);
	if (c)
		return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->pre = calloc(1, sizeof(*c->pre));
	c->ks.ssl = ssl;
	c->ks.fd = -1;
	c->ks.pid = ksock_pid();
	pthread_mutex_lock(&map_lock);
	size_t b = bucket_of(ssl);
	c->next = buckets[b];
	buckets[b] = c;
	pthread_mutex_unlock(&map_lock);
	return c;
}

/* Secrets wiped, stored records wiped and freed: as new. */
static void pre_clear(struct conn_pre *pre)
{
	for (int d = 0; d < DIR_COUNT; d++)
		seq_reset(&pre->seq[d]);
	keys_wipe(pre, sizeof(*pre));
}

void conn_release_pre(struct conn *c)
{
	if (c->pre)
		pre_clear(c->pre);
	free(c->pre);
	c->pre = NULL;
}

void conn_reset(struct conn *c)
{
	if (c->pre)
		pre_clear(c->pre);
	else
		c->pre = calloc(1, sizeof(*c->pre));
	ksock_reset(&c->ks);
	for (int d = 0; d < DIR_COUNT; d++) {
		c->dir[d].why = NULL;
		c->dir[d].code = 0;
	}
	c->handshake_done = c->send_incomplete = c->write_pending = c->user_data_read = false;
	c->logged = c->ulp = c->strict_failed = false;
	bioproof_release(&c->proof);
	c->proof = (struct bioproof){ 0 };
	c->custom = !c->ks.net_bio;
	c->bio_deferred = false;
	c->bio_called = false;
}

void conn_drop(const mbedtls_ssl_context *ssl)
{
	pthread_mutex_lock(&map_lock);
	struct conn **pp = &buckets[bucket_of(ssl)];
	while (*pp && (*pp)->ks.ssl != ssl)
		pp = &(*pp)->next;
	struct conn *c = *pp;
	if (c)
		*pp = c->next;
	pthread_mutex_unlock(&map_lock);
	if (c) {
		conn_release_pre(c);
		bioproof_release(&c->proof); /* a connection freed before its decision */
		ksock_free(&c->ks);
		free(c);
	}
}

static size_t count_in(const void *hay, size_t hay_len, const void *bytes, size_t len)
{
	if (!hay)
		return 0;
	size_t n = 0;
	const unsigned char *p = hay, *end = p + hay_len;
	while ((size_t)(end - p) >= len && (p = memmem(p, (size_t)(end - p), bytes, len))) {
		n++;
		p++;
	}
	return n;
}

static size_t count_in_seq(const struct seq_dir *d, const void *bytes, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < d->nrec && i < SEQ_MAX_STORED; i++)
		n += count_in(d->recs[i].data, d->recs[i].have, bytes, len);
	return n;
}

size_t conn_debug_count(const void *bytes, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&map_lock);
	for (size_t b = 0; b < BUCKETS; b++)
		for (const struct conn *c = buckets[b]; c; c = c->next) {
			n += count_in(c, sizeof(*c), bytes, len);
			n += count_in(c->pre, c->pre ? sizeof(*c->pre) : 0, bytes, len);
			n += count_in(c->ks.io.pending, IO_BUFFER_LEN, bytes, len);
			n += count_in(c->ks.io.ctrl, IO_BUFFER_LEN, bytes, len);
			for (int d = 0; c->pre && d < DIR_COUNT; d++)
				n += count_in_seq(&c->pre->seq[d], bytes, len);
		}
	pthread_mutex_unlock(&map_lock);
	return n;
}
