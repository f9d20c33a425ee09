/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: seq_feed + seq_seal + seq_resolve (shim/seq.c) on both TLS versions, with fixed
 * dummy keys. Must never crash, read out of bounds or leak, whatever the stream.
 *
 * Input: byte 0 picks the version (bit 0: 1.2 / 1.3) and the cipher (bits 1-2); byte 1 seeds the
 * chunking (as in fuzz_record); byte 2 is where (in 256ths of the stream) the export callback sets
 * the version, byte 3 where TLS 1.3 seals the handshake (255: never). The rest is the stream.
 * To get past the AEAD proof, the harness seals records itself: a record whose body's first byte
 * has bit 7 set (and that is long enough) gets its body replaced by an AEAD encryption of the same
 * length under the application key (bit 0 clear) or the handshake key (bit 0 set) at the sequence
 * number in bits 1-3 of that byte. Each sealed record must then open with seq_record_opens (an
 * independent check of the record nonce and AAD construction). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/cipher.h>

#include "keys.h"
#include "seq.h"

#define CHECK(x)                          \
	do {                              \
		if (!(x))                 \
			__builtin_trap(); \
	} while (0)
#define TAG 16

static const uint16_t suites13[4] = { 0x1301, 0x1302, 0x1303, 0x1304 };
static const uint16_t suites12[4] = { 0xC02F, 0xC030, 0xCCA8, 0xC0AC };

static void dummy_keys(const struct suite_info *s, struct traffic_keys *k, unsigned char fill)
{
	memset(k, 0, sizeof(*k));
	k->key_len = cipher_key_len(s->cipher);
	k->iv_len = cipher_fixed_iv_len(s->cipher, s->version);
	memset(k->key, fill, k->key_len);
	memset(k->iv, fill ^ 0x5a, k->iv_len);
}

static mbedtls_cipher_type_t ctype(enum kcipher c)
{
	switch (c) {
	case KCIPHER_AES_GCM_128: return MBEDTLS_CIPHER_AES_128_GCM;
	case KCIPHER_AES_GCM_256: return MBEDTLS_CIPHER_AES_256_GCM;
	case KCIPHER_AES_CCM_128: return MBEDTLS_CIPHER_AES_128_CCM;
	default: return MBEDTLS_CIPHER_CHACHA20_POLY1305;
	}
}

/* Seals rec (header + body of len bytes) in place as record number seq under k; false if the
 * record is too short. RFC 8446 5.2 (TLS 1.3), RFC 5288 / 7905 (TLS 1.2). */
static bool seal(const struct suite_info *s, const struct traffic_keys *k, uint64_t seq,
		 unsigned char *rec, size_t len)
{
	bool explicit_nonce = s->version == TLS_1_2 && s->cipher != KCIPHER_CHACHA20_POLY1305;
	size_t pre = explicit_nonce ? 8 : 0;
	if (len < pre + TAG + 1)
		return false;
	unsigned char *body = rec + 5, nonce[12], aad[13], sb[8];
	size_t plain = len - pre - TAG, aad_len;
	for (int i = 0; i < 8; i++)
		sb[i] = (unsigned char)(seq >> (56 - 8 * i));
	if (explicit_nonce) {
		memcpy(nonce, k->iv, 4);
		memcpy(body, sb,
		       8); /* the explicit nonce: any value; the counter, as Mbed TLS does */
		memcpy(nonce + 4, body, 8);
	} else {
		memcpy(nonce, k->iv, 12);
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= sb[i];
	}
	if (s->version == TLS_1_3) {
		memcpy(aad, rec, 5);
		aad_len = 5;
	} else {
		memcpy(aad, sb, 8);
		memcpy(aad + 8, rec, 3);
		aad[11] = (unsigned char)(plain >> 8);
		aad[12] = (unsigned char)plain;
		aad_len = 13;
	}
	unsigned char *out = malloc(plain + TAG);
	mbedtls_cipher_context_t ctx;
	mbedtls_cipher_init(&ctx);
	size_t olen = 0;
	CHECK(mbedtls_cipher_setup(&ctx, mbedtls_cipher_info_from_type(ctype(s->cipher))) == 0);
	CHECK(mbedtls_cipher_setkey(&ctx, k->key, (int)(k->key_len * 8), MBEDTLS_ENCRYPT) == 0);
	CHECK(mbedtls_cipher_auth_encrypt_ext(&ctx, nonce, 12, aad, aad_len, body + pre, plain, out,
					      plain + TAG, &olen, TAG) == 0);
	CHECK(olen == plain + TAG);
	memcpy(body + pre, out, olen);
	mbedtls_cipher_free(&ctx);
	free(out);
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	bool tls13 = data[0] & 1;
	const struct suite_info *s = keys_suite((tls13 ? suites13 : suites12)[(data[0] >> 1) & 3]);
	CHECK(s);
	unsigned maxchunk = data[1];
	size_t n = size - 4;
	size_t version_at = n * data[2] / 256,
	       seal_at = data[3] == 255 ? SIZE_MAX : n * data[3] / 256;
	unsigned char *st = malloc(n ? n : 1);
	memcpy(st, data + 4, n);

	struct traffic_keys app, hs;
	dummy_keys(s, &app, 0x11);
	dummy_keys(s, &hs, 0x22);

	/* The harness's own framing, only to seal the records the input asks for. */
	for (size_t off = 0; off + 5 <= n;) {
		size_t len = ((size_t)st[off + 3] << 8) | st[off + 4];
		if (off + 5 + len > n)
			break;
		unsigned char ctl = len ? st[off + 5] : 0;
		if (ctl & 0x80) {
			const struct traffic_keys *k = (ctl & 1) && tls13 ? &hs : &app;
			uint64_t q = (ctl >> 1) & 7;
			if (seal(s, k, q, st + off, len))
				CHECK(seq_record_opens(s, k, q, st + off, 5 + len));
		}
		off += 5 + len;
	}

	struct seq_dir *d = calloc(1, sizeof(*d));
	uint32_t x = 0x9e3779b9u ^ maxchunk;
	for (size_t off = 0; off <= n;) {
		if (off >= version_at && !d->version)
			d->version = tls13 ? TLS_1_3 : TLS_1_2;
		if (tls13 && off >= seal_at && !d->sealed)
			seq_seal(d);
		if (off == n)
			break;
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		size_t c = maxchunk ? 1 + x % ((size_t)maxchunk + 1) : 1;
		if (c > n - off)
			c = n - off;
		if (version_at > off && version_at < off + c)
			c = version_at - off;
		if (tls13 && seal_at > off && seal_at < off + c)
			c = seal_at - off;
		unsigned char *chunk = malloc(c);
		memcpy(chunk, st + off, c);
		seq_feed(d, chunk, c);
		free(chunk);
		off += c;
	}
	CHECK(d->nrec <= SEQ_MAX_STORED && d->stored_bytes <= SEQ_MAX_STORED_BYTES);

	uint64_t next = UINT64_MAX;
	enum seq_result r = seq_resolve(d, s, tls13 ? &hs : NULL, &app, &next);
	CHECK(seq_result_str(r) != NULL);
	if (r == SEQ_OK) {
		CHECK(next != UINT64_MAX);
		CHECK(d->nrec == 0); /* the store is freed on success */
	}
	/* A second resolve on the same state must be harmless too. */
	seq_resolve(d, s, tls13 ? &hs : NULL, &app, &next);
	seq_reset(d);
	free(d);
	free(st);
	return 0;
}
