/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for ktls_build (shim/ktls.c): the crypto_info bytes handed to setsockopt(SOL_TLS) for
 * 4 ciphers x 2 TLS versions, written out by hand from <linux/tls.h> (little-endian host), and the
 * parameters it must refuse. TAP output. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ktls.h"
#include "tap.h"

#define PLAN (8 + 8)

/* The parameters of every case: key bytes 10 11 12 ..., nonce base a0 .. ab, record number
 * 0102030405060708 (every byte distinct, so a field taken from the wrong place shows). */
#define SEQ  "0102030405060708"
#define K16  "101112131415161718191a1b1c1d1e1f"
#define K32  K16 "202122232425262728292a2b2c2d2e2f"
#define SALT "a0a1a2a3"
#define IV8  "a4a5a6a7a8a9aaab"
#define IV12 SALT IV8

/* struct tls_crypto_info { __u16 version; __u16 cipher_type; } then, for AES-GCM/CCM,
 * iv[8] key[16|32] salt[4] rec_seq[8]; for ChaCha20-Poly1305 iv[12] key[32] rec_seq[8].
 * TLS 1.2 GCM/CCM: iv = the next record's explicit nonce = its number; TLS 1.3 and ChaCha: iv =
 * the rest of the nonce base. */
static const struct {
	enum kcipher c;
	uint16_t version;
	const char *label, *want;
} cases[] = {
	{ KCIPHER_AES_GCM_128, TLS_1_2, "AES-128-GCM TLS 1.2", "0303 3300" SEQ K16 SALT SEQ },
	{ KCIPHER_AES_GCM_128, TLS_1_3, "AES-128-GCM TLS 1.3", "0403 3300" IV8 K16 SALT SEQ },
	{ KCIPHER_AES_GCM_256, TLS_1_2, "AES-256-GCM TLS 1.2", "0303 3400" SEQ K32 SALT SEQ },
	{ KCIPHER_AES_GCM_256, TLS_1_3, "AES-256-GCM TLS 1.3", "0403 3400" IV8 K32 SALT SEQ },
	{ KCIPHER_AES_CCM_128, TLS_1_2, "AES-128-CCM TLS 1.2", "0303 3500" SEQ K16 SALT SEQ },
	{ KCIPHER_AES_CCM_128, TLS_1_3, "AES-128-CCM TLS 1.3", "0403 3500" IV8 K16 SALT SEQ },
	{ KCIPHER_CHACHA20_POLY1305, TLS_1_2, "CHACHA20-POLY1305 TLS 1.2",
	  "0303 3600" IV12 K32 SEQ },
	{ KCIPHER_CHACHA20_POLY1305, TLS_1_3, "CHACHA20-POLY1305 TLS 1.3",
	  "0403 3600" IV12 K32 SEQ },
};

/* The parameters as keys.c hands them over: key_len the cipher's, iv_len the fixed part only
 * (the bytes after it are still set, and must not leak into the struct). */
static struct ktls_params params(enum kcipher c, uint16_t version, size_t key_len, size_t iv_len)
{
	struct ktls_params p = { .version = version, .cipher = c, .seq = 0x0102030405060708ULL };
	for (size_t i = 0; i < sizeof(p.keys.key); i++)
		p.keys.key[i] = (unsigned char)(0x10 + i);
	for (size_t i = 0; i < sizeof(p.keys.iv); i++)
		p.keys.iv[i] = (unsigned char)(0xa0 + i);
	p.keys.key_len = key_len;
	p.keys.iv_len = iv_len;
	return p;
}

static void test_bytes(void)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char want[sizeof(union ktls_kinfo)];
		size_t want_len = tap_unhex(cases[i].want, want, sizeof(want));
		int chacha = cases[i].c == KCIPHER_CHACHA20_POLY1305;
		size_t key_len = cases[i].c == KCIPHER_AES_GCM_256 || chacha ? 32 : 16;
		size_t iv_len = cases[i].version == TLS_1_2 && !chacha ? 4 : 12;
		struct ktls_params p = params(cases[i].c, cases[i].version, key_len, iv_len);
		union ktls_kinfo out;
		size_t out_len = 0;

		memset(&out, 0xee, sizeof(out));
		int rc = ktls_build(&p, &out, &out_len);
		if (rc != 0 || out_len != want_len) {
			tap_ok(0, "%s: rc %d, length %zu (want 0, %zu)", cases[i].label, rc,
			       out_len, want_len);
			continue;
		}
		tap_mem_eq(&out, want, want_len, "%s: %zu crypto_info bytes", cases[i].label,
			   want_len);
	}
}

static int refused(enum kcipher c, uint16_t version, size_t key_len, size_t iv_len)
{
	struct ktls_params p = params(c, version, key_len, iv_len);
	union ktls_kinfo out;
	size_t out_len = 0;
	return ktls_build(&p, &out, &out_len) == -EINVAL;
}

static void test_refusals(void)
{
	tap_ok(refused(KCIPHER_NONE, TLS_1_3, 16, 12), "no cipher: -EINVAL");
	tap_ok(refused((enum kcipher)KCIPHER_COUNT, TLS_1_3, 16, 12),
	       "cipher past the table: -EINVAL");
	tap_ok(refused(KCIPHER_AES_GCM_128, 0x0302, 16, 12), "TLS 1.1: -EINVAL");
	tap_ok(refused(KCIPHER_AES_GCM_256, TLS_1_3, 16, 12),
	       "AES-256 with a 16-byte key: -EINVAL");
	tap_ok(refused(KCIPHER_AES_GCM_128, TLS_1_3, 32, 12),
	       "AES-128 with a 32-byte key: -EINVAL");
	tap_ok(refused(KCIPHER_AES_GCM_128, TLS_1_2, 16, 3),
	       "TLS 1.2 GCM with a 3-byte salt: -EINVAL");
	tap_ok(refused(KCIPHER_CHACHA20_POLY1305, TLS_1_2, 32, 4) &&
		       refused(KCIPHER_AES_CCM_128, TLS_1_3, 16, 4),
	       "a 4-byte iv where 12 are needed (ChaCha TLS 1.2, CCM TLS 1.3): -EINVAL");
	tap_ok(refused(KCIPHER_AES_GCM_128, TLS_1_3, 16, 13), "an iv over 12 bytes: -EINVAL");
}

int main(void)
{
	tap_plan(PLAN);
	test_bytes();
	test_refusals();
	return tap_done();
}
