/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for shim/cipher.c: the cipher table agrees with the kernel's structs (<linux/tls.h>)
 * and with the lengths the RFCs give, and names and kernel types are unique. TAP output. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <linux/tls.h>

#include "cipher.h"
#include "tap.h"

#define NCIPHERS (KCIPHER_COUNT - KCIPHER_FIRST)
#define PLAN	 (8 + 3 * NCIPHERS)

/* What the kernel's struct for each cipher looks like, measured on the struct itself (not through
 * the *_SIZE macros the table is built from), with the byte sizes written out by hand. */
struct kernel_shape {
	enum kcipher c;
	const char *name;
	unsigned type;
	size_t size, key, salt, iv, rec_seq; /* sizeof of the struct and of each field */
	size_t key_off, salt_off, iv_off, rec_seq_off;
	size_t hand_size, hand_key; /* the same, by hand */
};

#define SHAPE(kc, nm, ty, st, hsize, hkey)                                            \
	{                                                                             \
		kc, nm, ty, sizeof(struct st), sizeof(((struct st *)0)->key),         \
			sizeof(((struct st *)0)->salt), sizeof(((struct st *)0)->iv), \
			sizeof(((struct st *)0)->rec_seq), offsetof(struct st, key),  \
			offsetof(struct st, salt), offsetof(struct st, iv),           \
			offsetof(struct st, rec_seq), hsize, hkey                     \
	}

static const struct kernel_shape shapes[NCIPHERS] = {
	SHAPE(KCIPHER_AES_GCM_128, "AES-128-GCM", 51, tls12_crypto_info_aes_gcm_128, 40, 16),
	SHAPE(KCIPHER_AES_GCM_256, "AES-256-GCM", 52, tls12_crypto_info_aes_gcm_256, 56, 32),
	SHAPE(KCIPHER_AES_CCM_128, "AES-128-CCM", 53, tls12_crypto_info_aes_ccm_128, 40, 16),
	SHAPE(KCIPHER_CHACHA20_POLY1305, "CHACHA20-POLY1305", 54,
	      tls12_crypto_info_chacha20_poly1305, 56, 32),
};

/* One cipher's row against the kernel's struct: 3 checks. */
static void test_row(const struct kernel_shape *k)
{
	const struct cipher_desc *d = cipher_get(k->c);

	if (!tap_ok(d != NULL && strcmp(d->name, k->name) == 0 && d->kernel_type == k->type,
		    "%s: row present, name and TLS_CIPHER_* type %u", k->name, k->type)) {
		tap_ok(0, "%s: (no row)", k->name);
		tap_ok(0, "%s: (no row)", k->name);
		return;
	}
	tap_ok(d->info_size == k->size && d->info_size == k->hand_size && d->key_len == k->key &&
		       d->key_len == k->hand_key && d->salt_len == k->salt && d->iv_len == k->iv &&
		       d->rec_seq_len == k->rec_seq && d->key_off == k->key_off &&
		       d->salt_off == k->salt_off && d->iv_off == k->iv_off &&
		       d->rec_seq_off == k->rec_seq_off,
	       "%s: struct size %zu, key %zu, salt/iv/rec_seq lengths and offsets as <linux/tls.h>",
	       k->name, k->hand_size, k->hand_key);
	/* What the rest of the shim relies on: salt || iv is the 12-byte nonce base, the record
	 * number is 8 bytes (get_be64/put_be64), the tag 16 (seq.c's TAG_LEN), and fixed + explicit
	 * nonce is 12 in both versions. */
	tap_ok(d->salt_len + d->iv_len == CIPHER_NONCE_LEN && d->rec_seq_len == 8 &&
		       d->tag_len == 16 &&
		       cipher_fixed_iv_len(k->c, TLS_1_2) +
				       cipher_explicit_nonce_len(k->c, TLS_1_2) ==
			       12 &&
		       cipher_fixed_iv_len(k->c, TLS_1_3) == 12 &&
		       cipher_explicit_nonce_len(k->c, TLS_1_3) == 0,
	       "%s: salt + iv = 12, rec_seq 8, tag 16, fixed + explicit nonce = 12", k->name);
}

/* Names: unique without regard to case (KTLS_SHIM_CIPHERS matches them so), no comma (the list
 * separator); kernel types unique and found again by cipher_by_kernel_type. */
static void test_unique(void)
{
	int bad = 0;

	for (int a = KCIPHER_FIRST; a < KCIPHER_COUNT; a++) {
		const struct cipher_desc *da = cipher_get((enum kcipher)a);
		if (!da || !*da->name || strchr(da->name, ',') ||
		    cipher_by_kernel_type(da->kernel_type) != (enum kcipher)a)
			bad++;
		for (int b = a + 1; da && b < KCIPHER_COUNT; b++) {
			const struct cipher_desc *db = cipher_get((enum kcipher)b);
			if (!db || !strcasecmp(da->name, db->name) ||
			    da->kernel_type == db->kernel_type)
				bad++;
		}
	}
	tap_ok(bad == 0,
	       "names unique (any case), without commas; kernel types unique and found back");
	tap_ok(cipher_get(KCIPHER_NONE) == NULL &&
		       cipher_get((enum kcipher)KCIPHER_COUNT) == NULL &&
		       cipher_by_kernel_type(0) == KCIPHER_NONE &&
		       cipher_by_kernel_type(TLS_CIPHER_SM4_GCM) == KCIPHER_NONE,
	       "no row for KCIPHER_NONE or past the end; SM4-GCM and type 0 unknown");
}

static void test_versions(void)
{
	tap_ok(TLS_1_2 == TLS_1_2_VERSION && TLS_1_3 == TLS_1_3_VERSION,
	       "TLS_1_2/TLS_1_3 are the kernel's TLS_1_2_VERSION/TLS_1_3_VERSION");
	tap_ok(cipher_explicit_nonce_len(KCIPHER_AES_GCM_128, TLS_1_2) == 8 &&
		       cipher_explicit_nonce_len(KCIPHER_AES_CCM_128, TLS_1_2) == 8 &&
		       cipher_explicit_nonce_len(KCIPHER_CHACHA20_POLY1305, TLS_1_2) == 0 &&
		       cipher_explicit_nonce_len(KCIPHER_AES_GCM_256, 0x0302) == 0 &&
		       cipher_explicit_nonce_len(KCIPHER_NONE, TLS_1_2) == 0,
	       "explicit nonce TLS 1.2: GCM/CCM 8, ChaCha 0; none for TLS 1.1 or no cipher");
}

/* Moved from test_keys.c with the functions (keys_key_len, keys_fixed_iv_len, keys_cipher_name). */
static void test_lengths(void)
{
	tap_ok(cipher_key_len(KCIPHER_AES_GCM_128) == 16 &&
		       cipher_key_len(KCIPHER_AES_GCM_256) == 32 &&
		       cipher_key_len(KCIPHER_AES_CCM_128) == 16 &&
		       cipher_key_len(KCIPHER_CHACHA20_POLY1305) == 32 &&
		       cipher_key_len(KCIPHER_NONE) == 0,
	       "cipher_key_len: 16/32/16/32, none 0");
	tap_ok(cipher_fixed_iv_len(KCIPHER_AES_GCM_128, 0x0303) == 4 &&
		       cipher_fixed_iv_len(KCIPHER_AES_GCM_256, 0x0303) == 4 &&
		       cipher_fixed_iv_len(KCIPHER_AES_CCM_128, 0x0303) == 4 &&
		       cipher_fixed_iv_len(KCIPHER_CHACHA20_POLY1305, 0x0303) == 12,
	       "cipher_fixed_iv_len TLS 1.2: GCM/CCM 4, ChaCha 12");
	tap_ok(cipher_fixed_iv_len(KCIPHER_AES_GCM_128, 0x0304) == 12 &&
		       cipher_fixed_iv_len(KCIPHER_AES_CCM_128, 0x0304) == 12 &&
		       cipher_fixed_iv_len(KCIPHER_NONE, 0x0304) == 0 &&
		       cipher_fixed_iv_len(KCIPHER_AES_GCM_128, 0x0302) == 0,
	       "cipher_fixed_iv_len TLS 1.3: 12; none and TLS 1.1: 0");
	tap_ok(strcmp(cipher_name(KCIPHER_CHACHA20_POLY1305), "CHACHA20-POLY1305") == 0 &&
		       strcmp(cipher_name(KCIPHER_AES_GCM_256), "AES-256-GCM") == 0 &&
		       strcmp(cipher_name(KCIPHER_NONE), "none") == 0,
	       "cipher_name");
}

int main(void)
{
	tap_plan(PLAN);
	for (size_t i = 0; i < NCIPHERS; i++)
		test_row(&shapes[i]);
	test_unique();
	test_versions();
	test_lengths();
	return tap_done();
}
