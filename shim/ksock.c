/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel-owned socket: its lifetime, the socket following and what fork() changes. */
#include "ksock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "biowatch.h"
#include "fdwatch.h"
#include "log.h"

static atomic_uint forks; /* fork() calls so far, counted as each begins */

static void count_fork(void)
{
	atomic_fetch_add(&forks, 1);
}

__attribute__((constructor)) static void ksock_atfork(void)
{
	pthread_atfork(count_fork, NULL, NULL);
}

unsigned ksock_forks(void)
{
	return atomic_load(&forks);
}

bool ksock_tx_shared(const struct ksock *ks)
{
	return ks->tx_forks != atomic_load(&forks);
}

/* By libc's fork (the atfork handler said so), or by a raw clone or syscall(SYS_fork), which
 * runs no handler: then the process id tells. */
bool ksock_is_copy(const struct ksock *ks)
{
	return ks->forked || ks->pid != getpid();
}

void ksock_wipe_next_secrets(struct ksock *ks)
{
	keys_wipe(ks->next_secret, sizeof(ks->next_secret));
	memset(ks->next_secret_len, 0, sizeof(ks->next_secret_len));
}

/* Parent and child now share the socket's kernel record state, but each has its own copy of the
 * next secrets: two rekeys would install the same key at sequence 0 twice. */
void ksock_forked(struct ksock *ks)
{
	ks->forked = true;
	ks->tx_update_due = false; /* the parent answers the peer's request */
	ksock_wipe_next_secrets(ks);
}

/* The buffers held plaintext (data taken for sending, post-handshake messages): wiped. */
static void wipe_buffers(struct io_state *io)
{
	if (io->pending)
		keys_wipe(io->pending, IO_BUFFER_LEN);
	if (io->ctrl)
		keys_wipe(io->ctrl, IO_BUFFER_LEN);
}

void ksock_reset(struct ksock *ks)
{
	ksock_wipe_next_secrets(ks);
	wipe_buffers(&ks->io);
	ks->io.pending_len = ks->io.pending_off = ks->io.pending_result = 0;
	ks->io.ctrl_len = 0;
	ks->io.rx_partial = false;
	ks->suite = NULL;
	memset(ks->key_updates, 0, sizeof(ks->key_updates));
	memset(ks->owner, 0, sizeof(ks->owner));
	ks->tx_records = 0;
	ks->tx_update_due = ks->tx_overdue_logged = ks->forked = ks->moved = false;
	ks->pid = getpid(); /* a new connection belongs to the process that makes it */
	ks->version = 0;
	ks->fd = -1;
}

void ksock_free(struct ksock *ks)
{
	ksock_reset(ks);
	free(ks->io.pending);
	free(ks->io.ctrl);
	ks->io = (struct io_state){ 0 };
}

bool ksock_note_socket(struct ksock *ks)
{
	ks->fd_gen = fdwatch_gen(ks->fd);
	struct stat st;
	if (fstat(ks->fd, &st))
		return false;
	ks->dev = st.st_dev;
	ks->ino = st.st_ino;
	return true;
}

/* Whether fd is the kernel-TLS socket set up at the hand-off: the same socket (st_dev/st_ino),
 * TLS ULP attached. Notes the descriptor's generation, read before the checks. */
static bool is_our_socket(struct ksock *ks, int fd)
{
	unsigned gen = fdwatch_gen(fd);
	struct stat st;
	char ulp[16] = "";
	socklen_t l = sizeof(ulp) - 1;
	if (fd < 0 || fstat(fd, &st) || st.st_dev != ks->dev || st.st_ino != ks->ino ||
	    getsockopt(fd, IPPROTO_TCP, TCP_ULP, ulp, &l) || strcmp(ulp, "tls"))
		return false;
	ks->fd_gen = gen;
	return true;
}

int ksock_check(struct ksock *ks)
{
	biowatch_unseen(); /* every kernel-side I/O passes here */
	const mbedtls_net_context *net = ks->net;
	/* The hot path: the BIO names the same number (a custom BIO has no number to read: its proven
	 * one), and nothing closed or replaced it since. */
	if (!ks->moved && (!ks->net_bio || net->fd == ks->fd) && fdwatch_gen(ks->fd) == ks->fd_gen)
		return 0;
	/* The app freed its socket (mbedtls_net_free sets -1): Mbed TLS's own answer. */
	if (ks->net_send && net && net->fd < 0)
		return MBEDTLS_ERR_NET_INVALID_CONTEXT;
	/* Another descriptor, a BIO set after the hand-off, or a number closed or replaced since: the
	 * same socket is followed; anything else gets nothing, above all no plaintext. */
	int fd = ks->net_bio ? net->fd : ks->moved ? -1 : ks->fd; /* a new custom BIO is unproven */
	if (is_our_socket(ks, fd)) {
		ks->fd = fd;
		ks->moved = false;
		return 0;
	}
	log_msg(LOG_ERROR,
		"fd=%d: the application moved the connection to another socket or BIO, or "
		"closed its socket; the kernel keeps its records on the old socket",
		ks->fd);
	return MBEDTLS_ERR_SSL_BAD_INPUT_DATA;
}
