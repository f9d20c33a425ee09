/* SPDX-License-Identifier: Apache-2.0 */
/* Descriptor generations: a counter per descriptor number (hashed), bumped whenever the number is
 * closed or replaced in this process, so that kernel-side I/O knows with one compare that the
 * number still names the socket it set up. */
#ifndef KTLSSHIM_FDWATCH_H
#define KTLSSHIM_FDWATCH_H

#include <stdatomic.h>

/* A power of two. Numbers that share a slot only cost a spurious re-check. */
#define FDWATCH_SLOTS 4096

extern atomic_uint fdwatch_gens[FDWATCH_SLOTS];

/* Read it BEFORE checking what the descriptor is: a replacement after the read shows as a change. */
static inline unsigned fdwatch_gen(int fd)
{
	return atomic_load_explicit(&fdwatch_gens[(unsigned)fd & (FDWATCH_SLOTS - 1)],
				    memory_order_acquire);
}

#endif
