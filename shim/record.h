/* SPDX-License-Identifier: Apache-2.0 */
/* TLS record framing of a byte stream seen through a BIO callback, one direction. Pure. */
#ifndef KTLSSHIM_RECORD_H
#define KTLSSHIM_RECORD_H

#include <stdbool.h>
#include <stddef.h>

#define REC_HDR_LEN  5
/* Largest ciphertext length a TLS 1.2 record may announce (2^14 + 2048). */
#define REC_MAX_BODY (16384 + 2048)

enum rec_type { REC_CCS = 20, REC_ALERT = 21, REC_HANDSHAKE = 22, REC_APPDATA = 23 };

struct rec_sink {
	void (*begin)(void *arg, const unsigned char hdr[REC_HDR_LEN]);
	void (*body)(void *arg, const unsigned char *p, size_t n);
	void (*end)(void *arg);
};

struct rec_parser {
	unsigned char hdr[REC_HDR_LEN];
	size_t hdr_have;
	size_t body_left;
	bool broken; /* the stream stopped looking like TLS records: nothing it says can be trusted */
};

/* Feeds n bytes that passed through the BIO; calls the sink at record boundaries. */
void rec_feed(struct rec_parser *p, const unsigned char *buf, size_t n, const struct rec_sink *sink,
	      void *arg);
/* True when no record is half-seen: every byte seen belongs to a complete record. */
bool rec_at_boundary(const struct rec_parser *p);

#endif
