/* SPDX-License-Identifier: Apache-2.0 */
/* --bio async (bio.c's): the socket I/O on two threads of its own, the BIO callbacks only copy
 * to and from their buffers, as nng's BIO does. */
#ifndef APPS_BIO_ASYNC_H
#define APPS_BIO_ASYNC_H

#include <stdbool.h>
#include <stddef.h>

struct async;

/* A failed socket call (errno) as Mbed TLS's error: WANT_*, CONN_RESET, SEND/RECV_FAILED. */
int bio_io_error(bool sending);

/* Starts the reader and writer threads on FD; NULL on failure (errno). */
struct async *async_start(int fd);
/* The callbacks: copy into the send buffer, or out of the receive buffer (waiting for room or
 * for bytes); Mbed TLS's return conventions. */
int async_send(struct async *a, const unsigned char *buf, size_t len);
int async_recv(struct async *a, unsigned char *buf, size_t len);
/* Sends what is buffered, ends the threads, frees A (NULL: nothing). */
void async_end(struct async *a);

#endif
