/* SPDX-License-Identifier: Apache-2.0 */
/* Post-handshake control records on a kernel-owned RX (alerts, tickets, KeyUpdates, TLS 1.2
 * renegotiation requests), handled as Mbed TLS would, or followed (a TLS 1.3 KeyUpdate). */
#ifndef KTLSSHIM_CONTROL_H
#define KTLSSHIM_CONTROL_H

#include <stdbool.h>
#include <stddef.h>

#include "ksock.h"

enum ctrl_verdict {
	CTRL_CONSUMED,	/* every complete message was dropped or answered: read on */
	CTRL_NEED_MORE, /* a message is not complete yet: read on */
	CTRL_FAILED,	/* *err holds the Mbed TLS error the read returns; the buffer is emptied */
};

/* n bytes of a control record of the given type (eor: they end the record) go into ks->io.ctrl
 * (p may point at its free part already), and every complete message is handled. */
enum ctrl_verdict control_absorb(struct ksock *ks, unsigned char type, const unsigned char *p,
				 size_t n, bool eor, int *err);

#endif
