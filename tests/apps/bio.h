/* SPDX-License-Identifier: Apache-2.0 */
/* The apps' own BIO callbacks (--bio MODE), the way programs outside the classic servers pass
 * their own functions to mbedtls_ssl_set_bio. Some modes do honest synchronous socket I/O (the
 * shim may prove the socket and offload it); the others buffer, hand the I/O to other threads,
 * copy it elsewhere or lie about it (the shim must keep them in Mbed TLS). tests/custombio.bats. */
#ifndef APPS_BIO_H
#define APPS_BIO_H

#include <stdint.h>

#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

enum bio_mode {
	BIO_NET,      /* mbedtls_net_send/recv (the default) */
	BIO_SYNC,     /* send/recv on the socket, in the callback */
	BIO_SYNC_RW,  /* write/read */
	BIO_SYNC_IOV, /* writev/readv */
	BIO_SYNC_MSG, /* sendmsg/recvmsg */
	BIO_OWN_WAIT, /* sync, but each recv waits first in poll() with a 10 s timeout of its own */
	BIO_TIMEOUT_ERROR, /* sync on a socket with SO_RCVTIMEO (10 s); recv's EAGAIN is an error of
			    * its own, not WANT_READ (MicroPython's settimeout) */
	BIO_POLL_FIRST,	   /* sync, but each recv waits first in poll() for ever (with --nonblock:
			    * a blocking socket emulated on a non-blocking one) */
	BIO_BUFFERING,	   /* reads 4 KiB ahead into its own buffer */
	BIO_ASYNC,	   /* two threads do the socket I/O; the callbacks only copy */
	BIO_TWO_SOCKET,	   /* each record also copied to a second TCP socket */
	BIO_LIE_COUNT,	   /* one send reports a byte more than the socket took (sent later) */
	BIO_LIE_FEWER,	   /* one send reports a byte fewer than the socket took (skipped later) */
	BIO_LIE_BYTES,	   /* every byte XORed on the wire, undone on receipt */
	BIO_SWITCH_FD,	   /* dup()s the socket to a new number mid-handshake, closes the old */
	BIO_MODE_COUNT
};

/* The mode called NAME, or -1. */
int bio_mode_parse(const char *name);
/* The modes' names, for --help: "net|sync|...". */
const char *bio_mode_list(void);
/* Modes whose callbacks keep no state of their own (the context is the net context). */
#define BIO_STATELESS(m) ((m) <= BIO_POLL_FIRST)

struct bio;

/* Calls of the app's own callbacks (every mode but net) on this thread: after a hand-off the
 * shim does the connection's I/O itself and calls none. */
extern _Thread_local unsigned long bio_calls;

/* Sets SSL's BIO in MODE on NET (a connected TCP socket). READ_TIMEOUT_MS > 0 (net and sync
 * only) adds a recv_timeout callback that waits with poll(). Returns the mode's state for
 * bio_end (NULL for the stateless modes); exits on a failure to set it up. */
struct bio *bio_start(mbedtls_ssl_context *ssl, mbedtls_net_context *net, enum bio_mode mode,
		      uint32_t read_timeout_ms);
/* Before the socket closes: sends what the mode still holds, ends its threads, frees it. */
void bio_end(struct bio *b);

#endif
