/* SPDX-License-Identifier: Apache-2.0 */
#include "cipher.h"

#include <stddef.h>

#include <linux/tls.h>

/* One row from the kernel's own struct and size macros (<linux/tls.h>), so that a length can only
 * disagree with the struct the kernel checks optlen against if the uapi header itself does. */
#define ROW(nm, CIPHER, st, fixed12)                                                            \
	{                                                                                       \
		.name = (nm), .kernel_type = TLS_CIPHER_##CIPHER,                               \
		.key_len = TLS_CIPHER_##CIPHER##_KEY_SIZE,                                      \
		.salt_len = TLS_CIPHER_##CIPHER##_SALT_SIZE,                                    \
		.iv_len = TLS_CIPHER_##CIPHER##_IV_SIZE,                                        \
		.tag_len = TLS_CIPHER_##CIPHER##_TAG_SIZE,                                      \
		.rec_seq_len = TLS_CIPHER_##CIPHER##_REC_SEQ_SIZE, .tls12_fixed_iv = (fixed12), \
		.info_size = sizeof(struct st), .key_off = offsetof(struct st, key),            \
		.salt_off = offsetof(struct st, salt), .iv_off = offsetof(struct st, iv),       \
		.rec_seq_off = offsetof(struct st, rec_seq)                                     \
	}

/* TLS 1.2's implicit nonce: GCM (RFC 5288) and CCM (RFC 6655) send 8 of the 12 bytes in each
 * record, so only the 4-byte salt is fixed; ChaCha20-Poly1305 (RFC 7905) sends none. */
static const struct cipher_desc table[KCIPHER_COUNT] = {
	[KCIPHER_AES_GCM_128] = ROW("AES-128-GCM", AES_GCM_128, tls12_crypto_info_aes_gcm_128, 4),
	[KCIPHER_AES_GCM_256] = ROW("AES-256-GCM", AES_GCM_256, tls12_crypto_info_aes_gcm_256, 4),
	[KCIPHER_AES_CCM_128] = ROW("AES-128-CCM", AES_CCM_128, tls12_crypto_info_aes_ccm_128, 4),
	[KCIPHER_CHACHA20_POLY1305] = ROW("CHACHA20-POLY1305", CHACHA20_POLY1305,
					  tls12_crypto_info_chacha20_poly1305, CIPHER_NONCE_LEN),
};

const struct cipher_desc *cipher_get(enum kcipher c)
{
	if (c <= KCIPHER_NONE || c >= KCIPHER_COUNT)
		return NULL;
	return &table[c];
}

enum kcipher cipher_by_kernel_type(unsigned type)
{
	for (int c = KCIPHER_FIRST; c < KCIPHER_COUNT; c++)
		if (table[c].kernel_type == type)
			return (enum kcipher)c;
	return KCIPHER_NONE;
}

const char *cipher_name(enum kcipher c)
{
	const struct cipher_desc *d = cipher_get(c);
	return d ? d->name : "none";
}

size_t cipher_key_len(enum kcipher c)
{
	const struct cipher_desc *d = cipher_get(c);
	return d ? d->key_len : 0;
}

size_t cipher_fixed_iv_len(enum kcipher c, uint16_t version)
{
	const struct cipher_desc *d = cipher_get(c);
	if (!d)
		return 0;
	if (version == TLS_1_3)
		return CIPHER_NONCE_LEN; /* RFC 8446 5.3: the whole nonce comes from the iv */
	return version == TLS_1_2 ? d->tls12_fixed_iv : 0;
}

size_t cipher_explicit_nonce_len(enum kcipher c, uint16_t version)
{
	size_t fixed = cipher_fixed_iv_len(c, version);
	return fixed ? CIPHER_NONCE_LEN - fixed : 0;
}
