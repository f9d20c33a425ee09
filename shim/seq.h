/* SPDX-License-Identifier: Apache-2.0 */
/* Exact record sequence numbers without reading Mbed TLS internals.
 *
 * Every record of a connection passes through the BIO callbacks the shim wraps. Per direction we
 * frame the byte stream into records and keep the encrypted records of the current epoch until
 * the handshake is over; at hand-off the epoch boundary is *proven* by opening stored records with
 * the AEAD keys we derived: a record that authenticates under the application key at sequence 0
 * is the first of the application epoch. The next sequence number is then a count of records.
 * See docs/design.md. */
#ifndef KTLSSHIM_SEQ_H
#define KTLSSHIM_SEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keys.h"
#include "record.h"

#define SEQ_MAX_STORED	     48
#define SEQ_MAX_STORED_BYTES (256 * 1024)

struct stored_rec {
	unsigned char *data; /* header + body */
	size_t len, have;
};

struct seq_dir {
	struct rec_parser parser;
	uint16_t version; /* 0 until the export-keys callback told us; then TLS_1_2 / TLS_1_3 */
	bool sealed;	  /* TLS 1.3: handshake over, every later record is application epoch */
	bool ccs_seen;	  /* TLS 1.2: the epoch of the current keys started */
	bool overflow;	  /* more to store than the bounds allow: nothing can be proven */
	bool storing;	  /* the record being framed goes into the store */
	size_t nrec, stored_bytes;
	struct stored_rec recs[SEQ_MAX_STORED];
	uint64_t counted; /* records of the epoch after the stored ones */
};

enum seq_result {
	SEQ_OK = 0,
	SEQ_ERR_STREAM = -1,   /* the stream is not framed TLS, or a record is half-seen */
	SEQ_ERR_OVERFLOW = -2, /* too many handshake records stored */
	SEQ_ERR_NO_EPOCH = -3, /* no key change seen in this direction */
	SEQ_ERR_UNPROVEN = -4, /* no stored record opens with the keys we hold */
};

void seq_feed(struct seq_dir *d, const unsigned char *buf, size_t n);
/* TLS 1.3: the handshake is over; what follows is counted, not stored. */
void seq_seal(struct seq_dir *d);
/* Frees the store and starts over (a new connection on the same context). */
void seq_reset(struct seq_dir *d);

/* The sequence number of the next record in this direction, proven with the AEAD keys Mbed TLS
 * used: hs = handshake traffic keys (TLS 1.3 only, may be NULL for TLS 1.2), app = the current
 * application keys. Frees the store on success. */
enum seq_result seq_resolve(struct seq_dir *d, const struct suite_info *s,
			    const struct traffic_keys *hs, const struct traffic_keys *app,
			    uint64_t *next_seq);
const char *seq_result_str(enum seq_result r);

/* True when the whole record (header + body) authenticates under k as record number seq. */
bool seq_record_opens(const struct suite_info *s, const struct traffic_keys *k, uint64_t seq,
		      const unsigned char *rec, size_t rec_len);
/* The other way (the kernel self-test's known answers): seals plain as record number seq of outer
 * type `type` into rec (TLS 1.3 callers append the inner content type to plain). The record's
 * length, or 0 when it does not fit rec_cap or Mbed TLS fails. */
size_t seq_record_seal(const struct suite_info *s, const struct traffic_keys *k, uint64_t seq,
		       unsigned char type, const unsigned char *plain, size_t plain_len,
		       unsigned char *rec, size_t rec_cap);

#endif
