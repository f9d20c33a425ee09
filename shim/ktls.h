/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel side: attach the TLS ULP, install one direction's crypto_info, probe capabilities. */
#ifndef KTLSSHIM_KTLS_H
#define KTLSSHIM_KTLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/tls.h>

#include "dir.h"
#include "keys.h"

/* Everything the kernel needs for one direction. */
struct ktls_params {
	uint16_t version; /* TLS_1_2 or TLS_1_3 */
	enum kcipher cipher;
	struct traffic_keys keys;
	uint64_t seq; /* sequence number of the next record in this direction */
};

/* Every struct the kernel may want; it checks optlen against the exact one for the cipher. */
union ktls_kinfo {
	struct tls_crypto_info info;
	struct tls12_crypto_info_aes_gcm_128 gcm128;
	struct tls12_crypto_info_aes_gcm_256 gcm256;
	struct tls12_crypto_info_aes_ccm_128 ccm128;
	struct tls12_crypto_info_chacha20_poly1305 chacha;
};

/* The kernel's crypto_info for p, and its exact length. 0 or -EINVAL. The caller wipes *out. */
int ktls_build(const struct ktls_params *p, union ktls_kinfo *out, size_t *out_len);

/* setsockopt(TCP_ULP, "tls"); EEXIST counts as success. 0 or -errno. */
int ktls_attach_ulp(int fd);
/* setsockopt(SOL_TLS, TLS_TX or TLS_RX) with the exact kernel struct for the cipher; the struct on
 * the stack is wiped before returning. 0 or -errno. */
int ktls_install(int fd, enum dir dir, const struct ktls_params *p);
/* setsockopt(SOL_TLS, TLS_RX_EXPECT_NO_PAD, 1) on a socket whose TLS 1.3 RX is installed (Linux
 * 6.0+; ENOPROTOOPT before): the kernel decrypts each record straight into the reader's buffer,
 * and decrypts a record that turns out padded once more into its own. 0 or -errno. */
int ktls_rx_no_pad(int fd);
/* getsockopt(SOL_TLS, TLS_TX or TLS_RX): version, cipher and rec_seq of what is installed (the key
 * is read by the kernel call but wiped here). 0 or -errno. */
int ktls_query(int fd, enum dir dir, uint16_t *version, enum kcipher *cipher, uint64_t *seq);

/* Capability probe on a connected loopback pair with throw-away keys. */
struct ktls_caps {
	bool ulp;		       /* TCP_ULP "tls" accepted */
	bool can[2][KCIPHER_COUNT][2]; /* [tls12=0/tls13=1][kcipher][tx/rx] */
	int rekey;     /* TLS 1.3 TX key may be set twice: 1 yes, 0 no, < 0 unknown */
	int ulp_errno; /* errno of the refused ULP, else 0 */
};
int ktls_probe(struct ktls_caps *caps);
/* A connected loopback TCP pair (close-on-exec) for the probes and the self-test. 0 or -errno. */
int ktls_loopback_pair(int *a, int *b);
/* Rekey (Linux 6.14+): p, a TLS 1.3 TX just installed on fd, installed again: 1 yes, 0 no (only
 * the kernel's EBUSY says no), -errno when it could not tell. */
int ktls_try_rekey(int fd, const struct ktls_params *p);
/* Only the rekey part of the probe, on its own loopback pair: 1 yes, 0 no (the kernel's EBUSY),
 * or -errno when it could not tell (no socket, no loopback, a refused ULP): unknown, not no. */
int ktls_probe_rekey(void);

/* What /proc/net/tls_stat says, without touching a socket or a counter: 0 when it lists no rekey
 * counters (they came with rekey, Linux 6.14: the kernel cannot rekey), 1 when it does (rekey is
 * likely; only ktls_probe_rekey proves it), -errno when it could not be read. */
int ktls_stat_rekey(void);

#endif
