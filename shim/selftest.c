/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel self-test: kTLS against Mbed TLS on a loopback pair, socket A with TX and RX in the
 * kernel and its peer B raw. TX: A sends two records through the kernel, B reads the ciphertext,
 * which must equal Mbed TLS's seal of the same bytes and open in user space. RX: B sends two
 * records Mbed TLS sealed, A must read the same plaintext through the kernel. TLS 1.3 RX then
 * once more with TLS_RX_EXPECT_NO_PAD, the first record padded (zero-copy receive). */
#include "selftest.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "record.h"
#include "rekey.h"
#include "seq.h"

/* Every byte nonzero, so a nonce or AAD built from the sequence number wrongly shows (at 0 the
 * nonce is the bare IV and hides such bugs); the second record checks the increment. */
#define TEST_SEQ     0x0102030405060708ULL
#define IO_TIMEOUT_S 2
#define NREC	     2
#define MAX_PLAIN    300
#define PAD	     64 /* zero bytes after the first record's content type, in the no-pad test */
#define REC_ROOM     (REC_HDR_LEN + 8 + MAX_PLAIN + 1 + PAD + 16)
static const size_t plain_len[NREC] = { MAX_PLAIN, 1 }; /* many AES blocks, then less than one */

/* [tls12=0/tls13=1][kcipher][tx/rx]: 0 unknown, else verdict + 1. */
static atomic_int verdicts[2][KCIPHER_COUNT][2];
static atomic_bool logged[2][KCIPHER_COUNT][2];
/* [kcipher]: TLS 1.3 RX with TLS_RX_EXPECT_NO_PAD, likewise. */
static atomic_int no_pad_verdicts[KCIPHER_COUNT];
static atomic_bool no_pad_logged;

/* Fixed test keys, different per direction (a kernel that mixed them up would show); never a
 * connection's. */
static void test_keys(const struct suite_info *s, enum dir d, struct traffic_keys *k)
{
	memset(k, 0, sizeof(*k));
	k->key_len = cipher_key_len(s->cipher);
	k->iv_len = cipher_fixed_iv_len(s->cipher, s->version);
	for (size_t i = 0; i < sizeof(k->key); i++)
		k->key[i] = (unsigned char)(0x11 * (d + 1) + 7 * i);
	for (size_t i = 0; i < sizeof(k->iv); i++)
		k->iv[i] = (unsigned char)(0xa5 ^ (0x3c * d) ^ (13 * i));
}

static void test_plain(int r, unsigned char *out)
{
	for (size_t i = 0; i < plain_len[r]; i++)
		out[i] = (unsigned char)(31 * i + 7 + 101 * r);
}

/* Both records as Mbed TLS seals them under k from sequence number seq, concatenated; their
 * lengths in len[]. The total, or 0. TLS 1.3 appends the inner content type, as the kernel does,
 * and pad zero bytes to the first record. */
static size_t known_answer(const struct suite_info *s, const struct traffic_keys *k, uint64_t seq,
			   size_t pad, unsigned char *out, size_t len[NREC])
{
	unsigned char plain[MAX_PLAIN + 1 + PAD];
	size_t total = 0;
	for (int r = 0; r < NREC; r++) {
		test_plain(r, plain);
		size_t n = plain_len[r];
		if (s->version == TLS_1_3) {
			plain[n++] = REC_APPDATA;
			memset(plain + n, 0, r ? 0 : pad);
			n += r ? 0 : pad;
		}
		len[r] = seq_record_seal(s, k, seq + (uint64_t)r, REC_APPDATA, plain, n,
					 out + total, REC_ROOM);
		if (!len[r])
			return 0;
		total += len[r];
	}
	return total;
}

/* Reads until at least n bytes came, each read offering all of room (the socket's receive timeout
 * bounds each wait). The count read; *err: 0 or the errno that stopped it (0 with a short count:
 * end of stream). */
static size_t read_upto(int fd, unsigned char *buf, size_t n, size_t room, int *err)
{
	size_t got = 0;
	*err = 0;
	while (got < n) {
		ssize_t r = recv(fd, buf + got, room - got, 0);
		if (r > 0) {
			got += (size_t)r;
		} else if (r < 0 && errno == EINTR) {
			continue;
		} else {
			*err = r < 0 ? errno : 0;
			break;
		}
	}
	return got;
}

static enum selftest_verdict test_tx(int a, int b, const struct suite_info *s,
				     const struct traffic_keys *k)
{
	unsigned char want[NREC * REC_ROOM], got[NREC * REC_ROOM], plain[MAX_PLAIN];
	size_t len[NREC], total = known_answer(s, k, TEST_SEQ, 0, want, len);
	if (!total)
		return SELFTEST_UNAVAILABLE;
	for (int r = 0; r < NREC; r++) {
		test_plain(r, plain);
		if (send(a, plain, plain_len[r], MSG_NOSIGNAL) != (ssize_t)plain_len[r])
			return SELFTEST_UNAVAILABLE;
	}
	int err;
	size_t n = read_upto(b, got, total, total, &err);
	if (memcmp(got, want, n) != 0)
		return SELFTEST_WRONG;
	if (n < total)
		return SELFTEST_UNAVAILABLE;
	/* Equal to Mbed TLS's seal; also opened by the code that proves real connections. */
	for (size_t r = 0, off = 0; r < NREC; off += len[r++])
		if (!seq_record_opens(s, k, TEST_SEQ + r, got + off, len[r]))
			return SELFTEST_WRONG;
	return SELFTEST_PASSED;
}

/* The records from sequence number seq (the first with pad zero bytes) through B, read from A
 * into a buffer with room to spare: exactly their plaintext must come back. The room lets the
 * kernel decrypt a whole record into it (zero-copy receive), where Linux 6.1 hands the content
 * type and padding of a padded record on as data. */
static enum selftest_verdict test_rx(int a, int b, const struct suite_info *s,
				     const struct traffic_keys *k, uint64_t seq, size_t pad)
{
	unsigned char sealed[NREC * REC_ROOM], want[NREC * MAX_PLAIN], got[NREC * REC_ROOM];
	size_t len[NREC], total = known_answer(s, k, seq, pad, sealed, len), plain_total = 0;
	if (!total || send(b, sealed, total, MSG_NOSIGNAL) != (ssize_t)total)
		return SELFTEST_UNAVAILABLE;
	for (int r = 0; r < NREC; r++) {
		test_plain(r, want + plain_total);
		plain_total += plain_len[r];
	}
	int err;
	size_t n = read_upto(a, got, plain_total, sizeof(got), &err);
	/* EBADMSG: the kernel could not open a record Mbed TLS sealed. */
	if (err == EBADMSG || n > plain_total || memcmp(got, want, n) != 0)
		return SELFTEST_WRONG;
	return n == plain_total ? SELFTEST_PASSED : SELFTEST_UNAVAILABLE;
}

static enum selftest_verdict refused(int neg_errno)
{
	int e = -neg_errno;
	return e == EINVAL || e == EOPNOTSUPP || e == ENOPROTOOPT ? SELFTEST_REFUSED
								  : SELFTEST_UNAVAILABLE;
}

/* Both directions of (version, cipher) on one loopback pair; then for TLS 1.3, when wanted, RX
 * once more with TLS_RX_EXPECT_NO_PAD (*no_pad). */
static void run(const struct suite_info *s, enum selftest_verdict out[2],
		enum selftest_verdict *no_pad)
{
	static const struct timeval timeout = { .tv_sec = IO_TIMEOUT_S };
	int a, b;
	out[DIR_TX] = out[DIR_RX] = SELFTEST_UNAVAILABLE;
	if (ktls_loopback_pair(&a, &b) != 0)
		return;
	bool ready = true;
	for (int i = 0; i < 2; i++) {
		int fd = i ? b : a;
		ready = ready &&
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) == 0 &&
			setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout)) == 0;
	}
	if (ready && ktls_attach_ulp(a) == 0) {
		struct traffic_keys k[2];
		int e[2];
		for (int d = 0; d < 2; d++) {
			test_keys(s, (enum dir)d, &k[d]);
			struct ktls_params p = { .version = s->version,
						 .cipher = s->cipher,
						 .keys = k[d],
						 .seq = TEST_SEQ };
			e[d] = ktls_install(a, (enum dir)d, &p);
			/* The same key again, before any record: the test below is unchanged. */
			if (d == DIR_TX && !e[d])
				rekey_ask_on(a, &p);
		}
		out[DIR_TX] = e[DIR_TX] ? refused(e[DIR_TX]) : test_tx(a, b, s, &k[DIR_TX]);
		out[DIR_RX] =
			e[DIR_RX] ? refused(e[DIR_RX]) : test_rx(a, b, s, &k[DIR_RX], TEST_SEQ, 0);
		if (out[DIR_RX] == SELFTEST_PASSED && s->version == TLS_1_3 &&
		    config_get()->rx_no_pad) {
			int np = ktls_rx_no_pad(a);
			*no_pad = np ? refused(np)
				     : test_rx(a, b, s, &k[DIR_RX], TEST_SEQ + NREC, PAD);
		}
	}
	close(a);
	close(b);
}

/* Caches a definitive verdict; WRONG always wins over a racing PASSED. */
static void remember(atomic_int *slot, enum selftest_verdict v)
{
	int none = 0;
	if (v == SELFTEST_WRONG)
		atomic_store(slot, SELFTEST_WRONG + 1);
	else if (v != SELFTEST_UNAVAILABLE)
		atomic_compare_exchange_strong(slot, &none, (int)v + 1);
}

enum selftest_verdict selftest_check(uint16_t version, enum kcipher c, enum dir d)
{
	if ((version != TLS_1_2 && version != TLS_1_3) || !cipher_get(c) ||
	    (d != DIR_TX && d != DIR_RX))
		return SELFTEST_REFUSED;
	atomic_int *slot = verdicts[version == TLS_1_3][c];
	int cached = atomic_load(&slot[d]);
	if (cached)
		return (enum selftest_verdict)(cached - 1);

	int saved = errno;
	const struct suite_info s = { .version = version, .cipher = c };
	enum selftest_verdict out[2], no_pad = SELFTEST_UNAVAILABLE;
	run(&s, out, &no_pad);
	errno = saved;
	for (int i = 0; i < 2; i++)
		remember(&slot[i], out[i]);
	remember(&no_pad_verdicts[c], no_pad);
	if (no_pad == SELFTEST_WRONG && !atomic_exchange(&no_pad_logged, true))
		log_msg(LOG_INFO,
			"kernel self-test: TLS 1.3 %s RX with TLS_RX_EXPECT_NO_PAD "
			"hands a padded record on wrong; zero-copy receive stays off in "
			"this process",
			cipher_name(c));
	cached = atomic_load(&slot[d]);
	return cached ? (enum selftest_verdict)(cached - 1) : out[d];
}

bool selftest_no_pad_ok(enum kcipher c)
{
	return cipher_get(c) && atomic_load(&no_pad_verdicts[c]) == SELFTEST_PASSED + 1;
}

const char *selftest_verdict_str(enum selftest_verdict v)
{
	switch (v) {
	case SELFTEST_PASSED: return "passed";
	case SELFTEST_WRONG: return "failed";
	case SELFTEST_REFUSED: return "refused";
	case SELFTEST_UNAVAILABLE: break;
	}
	return "not run";
}

const char *selftest_refusal(uint16_t version, enum kcipher c, enum dir d)
{
	bool tx = d == DIR_TX;
	if (!config_get()->selftest)
		return NULL;
	switch (selftest_check(version, c, d)) {
	case SELFTEST_PASSED: return NULL;
	case SELFTEST_REFUSED: return tx ? "kernel refused TLS_TX" : "kernel refused TLS_RX";
	case SELFTEST_UNAVAILABLE:
		log_msg(LOG_DEBUG,
			"kernel self-test could not run; tried again with the next connection");
		return "kernel self-test could not run";
	case SELFTEST_WRONG: break;
	}
	if (!atomic_exchange(&logged[version == TLS_1_3][c][d], true))
		log_msg(LOG_ERROR,
			"kernel self-test failed: TLS %s %s %s: this kernel's kTLS records differ "
			"from Mbed TLS's; that combination stays in Mbed TLS in this process",
			version == TLS_1_3 ? "1.3" : "1.2", cipher_name(c), tx ? "TX" : "RX");
	return "kernel self-test failed";
}
