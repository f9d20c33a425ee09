/* SPDX-License-Identifier: Apache-2.0 */
#include "seq.h"

#include <mbedtls/cipher.h>
#include <stdlib.h>
#include <string.h>

#define TAG_LEN 16
#define EXPLICIT_NONCE_LEN 8

static void store_free(struct seq_dir *d)
{
	for (size_t i = 0; i < d->nrec; i++) {
		keys_wipe(d->recs[i].data, d->recs[i].len);
		free(d->recs[i].data);
	}
	d->nrec = 0;
	d->stored_bytes = 0;
	d->storing = false;
}

static void store_begin(struct seq_dir *d, const unsigned char hdr[REC_HDR_LEN])
{
	size_t len = REC_HDR_LEN + (((size_t)hdr[3] << 8) | hdr[4]);
	if (d->nrec == SEQ_MAX_STORED || d->stored_bytes + len > SEQ_MAX_STORED_BYTES) {
		d->overflow = true;
		return;
	}
	struct stored_rec *r = &d->recs[d->nrec];
	r->data = malloc(len);
	if (!r->data) {
		d->overflow = true;
		return;
	}
	memcpy(r->data, hdr, REC_HDR_LEN);
	r->len = len;
	r->have = REC_HDR_LEN;
	d->nrec++;
	d->stored_bytes += len;
	d->storing = true;
}

static void on_begin(void *arg, const unsigned char hdr[REC_HDR_LEN])
{
	struct seq_dir *d = arg;
	unsigned type = hdr[0];
	d->storing = false;

	if (d->version == 0x0303) {
		/* TLS 1.2: ChangeCipherSpec starts the epoch; its first record (Finished) is kept
		 * as the proof, the rest counted. Renegotiation is refused, so this happens once. */
		if (type == REC_CCS) {
			store_free(d);
			d->ccs_seen = true;
			d->counted = 0;
		} else if (d->ccs_seen) {
			if (d->nrec == 0)
				store_begin(d, hdr);
			else
				d->counted++;
		}
	} else if (d->version == 0x0304) {
		/* TLS 1.3: encrypted records are type 23; a plaintext handshake record (ServerHello
		 * flushed after the secrets were exported) means encryption has not started yet;
		 * compatibility-mode CCS records are never protected and carry no sequence number. */
		if (d->sealed) {
			if (type != REC_CCS)
				d->counted++;
		} else if (type == REC_HANDSHAKE || type == REC_ALERT) {
			store_free(d);
		} else if (type == REC_APPDATA) {
			store_begin(d, hdr);
		}
	}
}

static void on_body(void *arg, const unsigned char *p, size_t n)
{
	struct seq_dir *d = arg;
	if (!d->storing)
		return;
	struct stored_rec *r = &d->recs[d->nrec - 1];
	memcpy(r->data + r->have, p, n);
	r->have += n;
}

static void on_end(void *arg)
{
	((struct seq_dir *)arg)->storing = false;
}

static const struct rec_sink seq_sink = { on_begin, on_body, on_end };

void seq_feed(struct seq_dir *d, const unsigned char *buf, size_t n)
{
	rec_feed(&d->parser, buf, n, &seq_sink, d);
}

void seq_seal(struct seq_dir *d)
{
	d->sealed = true;
}

void seq_reset(struct seq_dir *d)
{
	store_free(d);
	memset(d, 0, sizeof(*d));
}

static mbedtls_cipher_type_t cipher_type(enum kcipher c)
{
	switch (c) {
	case KCIPHER_AES_GCM_128: return MBEDTLS_CIPHER_AES_128_GCM;
	case KCIPHER_AES_GCM_256: return MBEDTLS_CIPHER_AES_256_GCM;
	case KCIPHER_AES_CCM_128: return MBEDTLS_CIPHER_AES_128_CCM;
	case KCIPHER_CHACHA20_POLY1305: return MBEDTLS_CIPHER_CHACHA20_POLY1305;
	default: return MBEDTLS_CIPHER_NONE;
	}
}

static void put_be64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

/* True when the record authenticates under key k as record number seq (RFC 8446 5.2-5.3, RFC 5288,
 * RFC 7905). This is the proof that our key and our count agree with what Mbed TLS did. */
bool seq_record_opens(const struct suite_info *s, const struct traffic_keys *k, uint64_t seq,
		      const unsigned char *rec, size_t rec_len)
{
	if (rec_len < REC_HDR_LEN)
		return false;
	const unsigned char *hdr = rec, *body = rec + REC_HDR_LEN;
	size_t body_len = rec_len - REC_HDR_LEN;
	unsigned char nonce[KEYS_IV_LEN], aad[13], seq_be[8];
	size_t aad_len;
	const unsigned char *in = body;
	size_t in_len = body_len;
	bool explicit_nonce = s->version == 0x0303 && s->cipher != KCIPHER_CHACHA20_POLY1305;

	put_be64(seq_be, seq);
	if (explicit_nonce) {
		if (body_len < EXPLICIT_NONCE_LEN + TAG_LEN)
			return false;
		memcpy(nonce, k->iv, 4);
		memcpy(nonce + 4, body, EXPLICIT_NONCE_LEN);
		in += EXPLICIT_NONCE_LEN;
		in_len -= EXPLICIT_NONCE_LEN;
	} else {
		if (body_len < TAG_LEN)
			return false;
		memcpy(nonce, k->iv, KEYS_IV_LEN);
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= seq_be[i];
	}
	if (s->version == 0x0304) {
		memcpy(aad, hdr, REC_HDR_LEN);
		aad_len = REC_HDR_LEN;
	} else {
		size_t plain_len = in_len - TAG_LEN;
		memcpy(aad, seq_be, 8);
		memcpy(aad + 8, hdr, 3);
		aad[11] = (unsigned char)(plain_len >> 8);
		aad[12] = (unsigned char)plain_len;
		aad_len = 13;
	}

	unsigned char *out = malloc(in_len);
	if (!out)
		return false;
	mbedtls_cipher_context_t ctx;
	mbedtls_cipher_init(&ctx);
	size_t out_len = 0;
	const mbedtls_cipher_info_t *info = mbedtls_cipher_info_from_type(cipher_type(s->cipher));
	bool ok = info && mbedtls_cipher_setup(&ctx, info) == 0 &&
		  mbedtls_cipher_setkey(&ctx, k->key, (int)(k->key_len * 8), MBEDTLS_DECRYPT) == 0 &&
		  mbedtls_cipher_auth_decrypt_ext(&ctx, nonce, KEYS_IV_LEN, aad, aad_len, in, in_len,
						  out, in_len, &out_len, TAG_LEN) == 0;
	mbedtls_cipher_free(&ctx);
	keys_wipe(out, in_len);
	free(out);
	return ok;
}

static bool record_opens(const struct suite_info *s, const struct traffic_keys *k, uint64_t seq,
			 const struct stored_rec *r)
{
	return seq_record_opens(s, k, seq, r->data, r->len);
}

enum seq_result seq_resolve(struct seq_dir *d, const struct suite_info *s,
			    const struct traffic_keys *hs, const struct traffic_keys *app,
			    uint64_t *next_seq)
{
	if (!rec_at_boundary(&d->parser) || d->storing)
		return SEQ_ERR_STREAM;
	if (d->overflow)
		return SEQ_ERR_OVERFLOW;
	if (d->nrec == 0)
		return SEQ_ERR_NO_EPOCH;

	if (s->version == 0x0303) {
		if (!d->ccs_seen)
			return SEQ_ERR_NO_EPOCH;
		if (!record_opens(s, app, 0, &d->recs[0]))
			return SEQ_ERR_UNPROVEN;
		*next_seq = 1 + d->counted;
	} else {
		/* The stored records are [handshake epoch][application epoch]; find where the second
		 * starts. If it has not started, the last stored record must be a handshake one. */
		size_t first_app = d->nrec;
		for (size_t i = 0; i < d->nrec; i++) {
			if (record_opens(s, app, 0, &d->recs[i])) {
				first_app = i;
				break;
			}
		}
		if (first_app == d->nrec &&
		    (!hs || !record_opens(s, hs, d->nrec - 1, &d->recs[d->nrec - 1])))
			return SEQ_ERR_UNPROVEN;
		*next_seq = (d->nrec - first_app) + d->counted;
	}
	store_free(d);
	return SEQ_OK;
}

const char *seq_result_str(enum seq_result r)
{
	switch (r) {
	case SEQ_OK: return "ok";
	case SEQ_ERR_STREAM: return "record stream not at a boundary";
	case SEQ_ERR_OVERFLOW: return "handshake too large to prove";
	case SEQ_ERR_NO_EPOCH: return "no key change seen";
	case SEQ_ERR_UNPROVEN: return "sequence number could not be proven";
	}
	return "?";
}
