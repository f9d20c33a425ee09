/* SPDX-License-Identifier: Apache-2.0 */
/* The one direction type: what the shim keeps per direction is an array indexed by it. */
#ifndef KTLSSHIM_DIR_H
#define KTLSSHIM_DIR_H

enum dir { DIR_TX = 0, DIR_RX = 1 };
#define DIR_COUNT 2

static inline const char *dir_name(enum dir d)
{
	return d == DIR_TX ? "tx" : "rx";
}

#endif
