/* SPDX-License-Identifier: Apache-2.0 */
/* The two TLS versions kTLS carries, as the wire (and Mbed TLS's export callback, and the kernel's
 * crypto_info) spell them. Enum constants, not macros: <linux/tls.h> builds its own TLS_1_2_VERSION
 * by token pasting on these very names. */
#ifndef KTLSSHIM_TLSVER_H
#define KTLSSHIM_TLSVER_H

enum tls_version { TLS_1_2 = 0x0303, TLS_1_3 = 0x0304 };

#endif
