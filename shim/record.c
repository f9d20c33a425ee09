/* SPDX-License-Identifier: Apache-2.0 */
#include "record.h"

void rec_feed(struct rec_parser *p, const unsigned char *buf, size_t n, const struct rec_sink *sink,
	      void *arg)
{
	while (n > 0 && !p->broken) {
		if (p->hdr_have < REC_HDR_LEN) {
			size_t take = REC_HDR_LEN - p->hdr_have;
			if (take > n)
				take = n;
			for (size_t i = 0; i < take; i++)
				p->hdr[p->hdr_have + i] = buf[i];
			p->hdr_have += take;
			buf += take;
			n -= take;
			if (p->hdr_have < REC_HDR_LEN)
				return;
			unsigned type = p->hdr[0];
			size_t len = ((size_t)p->hdr[3] << 8) | p->hdr[4];
			if (type < REC_CCS || type > REC_APPDATA || p->hdr[1] != 3 ||
			    len > REC_MAX_BODY) {
				p->broken = true;
				return;
			}
			p->body_left = len;
			sink->begin(arg, p->hdr);
		}
		size_t take = p->body_left < n ? p->body_left : n;
		if (take) {
			sink->body(arg, buf, take);
			buf += take;
			n -= take;
			p->body_left -= take;
		}
		if (p->body_left == 0) {
			p->hdr_have = 0;
			sink->end(arg);
		}
	}
}

bool rec_at_boundary(const struct rec_parser *p)
{
	return !p->broken && p->hdr_have == 0;
}
