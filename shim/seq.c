/* SPDX-License-Identifier: Apache-2.0 */
#include "seq.h"

#include <stdlib.h>
#include <string.h>

#include "real.h"

/* Every cipher kTLS carries has a 16-byte tag (the table's tag_len; tests/unit/test_cipher.c). */
#define TAG_LEN 16

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

	if (d->version == TLS_1_2) {
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
	} else if (d->version == TLS_1_3) {
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

static void put_be64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

/* The AEAD nonce and additional data of record number seq (RFC 8446 5.2-5.3, RFC 5288, RFC 7905).
 * hdr: the record header; body_len: the record body's length; TLS 1.2 GCM/CCM takes its explicit
 * nonce from the first 8 bytes of body. *skip: bytes of body before the AEAD input. False when the
 * body is too short to be a record. */
static bool record_nonce_aad(const struct suite_info *s, const struct traffic_keys *k, uint64_t seq,
			     const unsigned char *hdr, const unsigned char *body, size_t body_len,
			     unsigned char nonce[KEYS_IV_LEN], unsigned char aad[13],
			     size_t *aad_len, size_t *skip)
{
	unsigned char seq_be[8];
	size_t explicit_len = cipher_explicit_nonce_len(s->cipher, s->version);
	*skip = explicit_len;
	if (body_len < *skip + TAG_LEN)
		return false;
	put_be64(seq_be, seq);
	memcpy(nonce, k->iv, KEYS_IV_LEN);
	if (explicit_len) {
		memcpy(nonce + KEYS_IV_LEN - explicit_len, body, explicit_len);
	} else {
		for (int i = 0; i < 8; i++)
			nonce[4 + i] ^= seq_be[i];
	}
	if (s->version == TLS_1_3) {
		memcpy(aad, hdr, REC_HDR_LEN);
		*aad_len = REC_HDR_LEN;
	} else {
		size_t plain_len = body_len - *skip - TAG_LEN;
		memcpy(aad, seq_be, 8);
		memcpy(aad + 8, hdr, 3);
		aad[11] = (unsigned char)(plain_len >> 8);
		aad[12] = (unsigned char)plain_len;
		*aad_len = 13;
	}
	return true;
}

/* True when the record authenticates under key k as record number seq. This is the proof that
 * our key and our count agree with what Mbed TLS did. */
bool seq_record_opens(const struct suite_info *s, const struct traffic_keys *k, uint64_t seq,
		      const unsigned char *rec, size_t rec_len)
{
	unsigned char nonce[KEYS_IV_LEN], aad[13];
	size_t aad_len, skip;
	if (rec_len < REC_HDR_LEN ||
	    !record_nonce_aad(s, k, seq, rec, rec + REC_HDR_LEN, rec_len - REC_HDR_LEN, nonce, aad,
			      &aad_len, &skip))
		return false;
	const unsigned char *in = rec + REC_HDR_LEN + skip;
	size_t in_len = rec_len - REC_HDR_LEN - skip;
	const struct mbed_adapter *mbed = real_adapter();
	unsigned char *out = mbed ? malloc(in_len) : NULL;
	bool ok = out && mbed->aead_open(s->cipher, k->key, k->key_len, nonce, aad, aad_len, in,
					 in_len, out) == 0;
	if (out)
		keys_wipe(out, in_len);
	free(out);
	keys_wipe(nonce, sizeof(nonce)); /* the key's IV, in part */
	return ok;
}

size_t seq_record_seal(const struct suite_info *s, const struct traffic_keys *k, uint64_t seq,
		       unsigned char type, const unsigned char *plain, size_t plain_len,
		       unsigned char *rec, size_t rec_cap)
{
	size_t skip = cipher_explicit_nonce_len(s->cipher, s->version);
	size_t body_len = skip + plain_len + TAG_LEN;
	if (body_len > 0xffff || rec_cap < REC_HDR_LEN + body_len)
		return 0;
	rec[0] = type;
	rec[1] = 3;
	rec[2] = 3;
	rec[3] = (unsigned char)(body_len >> 8);
	rec[4] = (unsigned char)body_len;
	/* TLS 1.2 GCM/CCM: the explicit nonce is the sequence number, as Mbed TLS and the kernel do. */
	if (skip)
		put_be64(rec + REC_HDR_LEN, seq);
	unsigned char nonce[KEYS_IV_LEN], aad[13];
	size_t aad_len;
	const struct mbed_adapter *mbed = real_adapter();
	bool ok = mbed &&
		  record_nonce_aad(s, k, seq, rec, rec + REC_HDR_LEN, body_len, nonce, aad,
				   &aad_len, &skip) &&
		  mbed->aead_seal(s->cipher, k->key, k->key_len, nonce, aad, aad_len, plain,
				  plain_len, rec + REC_HDR_LEN + skip) == 0;
	keys_wipe(nonce, sizeof(nonce));
	return ok ? REC_HDR_LEN + body_len : 0;
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

	if (s->version == TLS_1_2) {
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
