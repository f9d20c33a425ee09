/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for shim/keys.c against published and independently computed vectors. TAP output. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/md.h>
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <psa/crypto.h>

#include "keys.h"
#include "tap.h"

#define PLAN 74

/* Hex vector to bytes; a malformed literal is a bug in this file, so stop at once. */
static size_t unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = tap_unhex(hex, out, cap);

	if (n == 0) {
		fprintf(stderr, "test_keys: bad hex literal: %s\n", hex);
		exit(2);
	}
	return n;
}

static int all_zero(const unsigned char *p, size_t n)
{
	unsigned char acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* ---- TLS 1.3 --------------------------------------------------------------------------------- */

/* One traffic secret and the key and iv RFC 8448 prints for it. */
struct tls13_vec {
	const char *name, *secret, *key, *iv;
};

/* RFC 8448 section 3 (Simple 1-RTT Handshake), TLS_AES_128_GCM_SHA256: the four traffic secrets
 * ("derive secret tls13 s hs traffic" / "c hs traffic" / "s ap traffic" / "c ap traffic",
 * "expanded" value) and the "key expanded" / "iv expanded" of the matching "derive write/read
 * traffic keys" steps. The handshake ones are also in Mbed TLS's tests/suites/test_suite_ssl.data
 * ("HKDF Expand Label #5..#8 (RFC 8448)"), the application keys in its "Record Encryption RFC 8448"
 * cases. */
static const struct tls13_vec rfc8448[] = {
	{ "server handshake", "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
	  "3fce516009c21727d0f2e4e86ee403bc", "5d313eb2671276ee13000b30" },
	{ "client handshake", "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
	  "dbfaa693d1762c5b666af5d950258d01", "5bd3c71b836e0b76bb73265f" },
	{ "server application 0",
	  "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643",
	  "9f02283b6c9c07efc26bb9f2ac92e356", "cf782b88dd83549aadf1e984" },
	{ "client application 0",
	  "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5",
	  "17422dda596ed5d9acd890e3c63f5051", "5b78923dee08579033e523d9" },
};

static void test_tls13_rfc8448(void)
{
	const struct suite_info *s = keys_suite(MBEDTLS_TLS1_3_AES_128_GCM_SHA256);

	for (size_t i = 0; i < sizeof(rfc8448) / sizeof(rfc8448[0]); i++) {
		const struct tls13_vec *v = &rfc8448[i];
		unsigned char secret[32], key[16], iv[12];
		struct traffic_keys tk;
		size_t sl = unhex(v->secret, secret, sizeof(secret));
		int rc;

		unhex(v->key, key, sizeof(key));
		unhex(v->iv, iv, sizeof(iv));
		rc = keys_tls13_traffic(s, secret, sl, &tk);
		tap_ok(rc == 0 && tk.key_len == 16 && tk.iv_len == 12,
		       "RFC 8448 3: %s traffic keys derived (rc %d, key_len %zu, iv_len %zu)",
		       v->name, rc, tk.key_len, tk.iv_len);
		tap_mem_eq(tk.key, key, sizeof(key), "RFC 8448 3: %s write key", v->name);
		tap_mem_eq(tk.iv, iv, sizeof(iv), "RFC 8448 3: %s write iv", v->name);
	}
}

static void test_expand_label_published(void)
{
	unsigned char prk[32], ctx[32], want[32], got[32];
	int rc;

	/* RFC 8448 section 3, "{server} derive secret tls13 c hs traffic": PRK = handshake secret,
	 * hash = transcript hash of ClientHello..ServerHello; exercises a non-empty context. */
	unhex("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac", prk, sizeof(prk));
	unhex("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8", ctx, sizeof(ctx));
	unhex("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21", want,
	      sizeof(want));
	rc = keys_hkdf_expand_label(MBEDTLS_MD_SHA256, prk, 32, "c hs traffic", ctx, 32, got, 32);
	tap_ok(rc == 0, "RFC 8448 3: HKDF-Expand-Label with context returns 0 (rc %d)", rc);
	tap_mem_eq(got, want, 32,
		   "RFC 8448 3: client handshake traffic secret from handshake secret");

	/* RFC 9001 appendix A.5 (ChaCha20-Poly1305 short header): ku = HKDF-Expand-Label(secret,
	 * "quic ku", "", 32). Same shape as "traffic upd" (empty context, Hash.length output, label
	 * of similar size), and a published value. */
	unhex("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b", prk, sizeof(prk));
	unhex("1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9", want,
	      sizeof(want));
	rc = keys_hkdf_expand_label(MBEDTLS_MD_SHA256, prk, 32, "quic ku", NULL, 0, got, 32);
	tap_ok(rc == 0, "RFC 9001 A.5: HKDF-Expand-Label \"quic ku\" returns 0 (rc %d)", rc);
	tap_mem_eq(got, want, 32, "RFC 9001 A.5: quic ku secret");

	/* "tls13 " + label must fit the one-byte length: 249 + 6 = 255 is the limit. */
	{
		char label[251];

		memset(label, 'x', 250);
		label[250] = '\0';
		memset(got, 0xa5, sizeof(got));
		rc = keys_hkdf_expand_label(MBEDTLS_MD_SHA256, prk, 32, label, NULL, 0, got, 32);
		tap_ok(rc != 0 && all_zero(got, 32),
		       "HKDF-Expand-Label: 250-byte label refused, output zeroed (rc %d)", rc);
		label[249] = '\0';
		rc = keys_hkdf_expand_label(MBEDTLS_MD_SHA256, prk, 32, label, NULL, 0, got, 32);
		tap_ok(rc == 0, "HKDF-Expand-Label: 249-byte label accepted (rc %d)", rc);
	}
}

/* No published "traffic upd" vector was found, so the expected values below were computed
 * independently with python3 (hmac + hashlib only, no TLS library):
 *
 *   import hmac, hashlib
 *   def expand(h, prk, info, n):
 *       out, t, i = b"", b"", 1
 *       while len(out) < n:
 *           t = hmac.new(prk, t + info + bytes([i]), h).digest(); out += t; i += 1
 *       return out[:n]
 *   def label(h, secret, lab, ctx, n):
 *       full = b"tls13 " + lab
 *       return expand(h, secret, n.to_bytes(2, "big") + bytes([len(full)]) + full
 *                     + bytes([len(ctx)]) + ctx, n)
 *   label(hashlib.sha256, bytes.fromhex(SECRET), b"traffic upd", b"", 32).hex()
 *
 * The same script reproduces every RFC 8448 key/iv above and the RFC 9001 A.5 "quic ku" value,
 * which is what makes it trustworthy as the reference. */
static void test_tls13_next_secret(void)
{
	unsigned char secret[48], want[48], orig[48];
	int rc;

	/* RFC 8448 section 3 client application traffic secret 0 -> secret 1 (SHA-256). */
	unhex("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5", secret, 32);
	unhex("fcdfcc72725aaee48bf64e4fd8b749cdbdbab39d90da0b26e2245ca6ea167207", want, 32);
	rc = keys_tls13_next_secret(MBEDTLS_MD_SHA256, secret, 32);
	tap_ok(rc == 0, "traffic upd SHA-256 returns 0 (rc %d)", rc);
	tap_mem_eq(secret, want, 32, "traffic upd: RFC 8448 client application secret 0 -> 1");

	/* RFC 8448 section 3 server application traffic secret 0 -> secret 1 (SHA-256). */
	unhex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643", secret, 32);
	unhex("51921b8aa3001976eb401d0a4319a8516416a6c56001a357e5d162031e84f916", want, 32);
	rc = keys_tls13_next_secret(MBEDTLS_MD_SHA256, secret, 32);
	tap_mem_eq(secret, want, 32,
		   "traffic upd: RFC 8448 server application secret 0 -> 1 (rc %d)", rc);

	/* SHA-384, secret = bytes 0x30..0x5f (made up), same python with hashlib.sha384 and n = 48. */
	unhex("303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f"
	      "505152535455565758595a5b5c5d5e5f",
	      secret, 48);
	unhex("d6bb23cff8ddf16c731f2a3eb1af12bf284e56405dc091eceeeffd0df56e6afb"
	      "cbbc7ad7c5bae8e3557d527bb226acbd",
	      want, 48);
	rc = keys_tls13_next_secret(MBEDTLS_MD_SHA384, secret, 48);
	tap_mem_eq(secret, want, 48, "traffic upd: SHA-384 secret (rc %d)", rc);

	/* A secret of the wrong length for the hash is refused and left alone. */
	memcpy(orig, secret, 48);
	rc = keys_tls13_next_secret(MBEDTLS_MD_SHA256, secret, 48);
	tap_ok(rc != 0 && memcmp(secret, orig, 48) == 0,
	       "traffic upd: 48-byte secret with SHA-256 refused, secret untouched (rc %d)", rc);
	rc = keys_tls13_next_secret(MBEDTLS_MD_SHA1, secret, 20);
	tap_ok(rc != 0, "traffic upd: SHA-1 refused (rc %d)", rc);
}

/* Other TLS 1.3 suites; expected values from the python script above ("key"/"iv" labels). */
static void test_tls13_other_suites(void)
{
	unsigned char secret[48], key[32], iv[12];
	struct traffic_keys tk;
	int rc;

	/* TLS_AES_256_GCM_SHA384, secret = bytes 0x30..0x5f: label(sha384, s, b"key", b"", 32) and
	 * label(sha384, s, b"iv", b"", 12). */
	unhex("303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f"
	      "505152535455565758595a5b5c5d5e5f",
	      secret, 48);
	unhex("3d605efd7f2170e20e04d3bb8171c610c5d10ac593082c580205f44be41ed840", key, 32);
	unhex("e99017931a44d0dec80e74dc", iv, 12);
	rc = keys_tls13_traffic(keys_suite(MBEDTLS_TLS1_3_AES_256_GCM_SHA384), secret, 48, &tk);
	tap_ok(rc == 0 && tk.key_len == 32 && tk.iv_len == 12,
	       "TLS 1.3 AES-256-GCM-SHA384: derived (rc %d, key_len %zu)", rc, tk.key_len);
	tap_mem_eq(tk.key, key, 32, "TLS 1.3 AES-256-GCM-SHA384: 32-byte key");
	tap_mem_eq(tk.iv, iv, 12, "TLS 1.3 AES-256-GCM-SHA384: iv");

	/* TLS_CHACHA20_POLY1305_SHA256 from the RFC 8448 server application traffic secret 0: the
	 * key is 32 bytes (python: label(sha256, s, b"key", b"", 32)); the iv does not depend on the
	 * suite, so it is RFC 8448's "cf782b88...". */
	unhex("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643", secret, 32);
	unhex("848e80ab93efeb09c572c66873c184f99207c95b0fc817f91e8e7e8e14ac5ca9", key, 32);
	unhex("cf782b88dd83549aadf1e984", iv, 12);
	rc = keys_tls13_traffic(keys_suite(MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256), secret, 32,
				&tk);
	tap_ok(rc == 0 && tk.key_len == 32 && tk.iv_len == 12,
	       "TLS 1.3 CHACHA20-POLY1305: derived (rc %d, key_len %zu)", rc, tk.key_len);
	tap_mem_eq(tk.key, key, 32, "TLS 1.3 CHACHA20-POLY1305: 32-byte key");
	tap_mem_eq(tk.iv, iv, 12, "TLS 1.3 CHACHA20-POLY1305: iv");

	/* Wrong secret length for the suite's hash, and a TLS 1.2 suite, are refused. */
	rc = keys_tls13_traffic(keys_suite(MBEDTLS_TLS1_3_AES_128_GCM_SHA256), secret, 48, &tk);
	tap_ok(rc != 0 && tk.key_len == 0,
	       "TLS 1.3: 48-byte secret for a SHA-256 suite refused (rc %d)", rc);
	rc = keys_tls13_traffic(keys_suite(MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256), secret,
				32, &tk);
	tap_ok(rc != 0, "TLS 1.3: a TLS 1.2 suite refused (rc %d)", rc);
}

/* ---- TLS 1.2 --------------------------------------------------------------------------------- */

/* Inputs shared by the TLS 1.2 vectors (made up, easy to retype):
 *   master        = 00 01 .. 2f (48 bytes)
 *   client_random = a0 a1 .. bf (32 bytes)
 *   server_random = c0 c1 .. df (32 bytes)
 * The expected key blocks were produced by OpenSSL 3.0.19's TLS 1.2 PRF (an independent
 * implementation), seed = "key expansion" (6b657920657870616e73696f6e) || server || client. */
#define T12_MASTER                                                         \
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" \
	"202122232425262728292a2b2c2d2e2f"
#define T12_CLIENT_RANDOM "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
#define T12_SERVER_RANDOM "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"

/* openssl kdf -keylen 40 -kdfopt digest:SHA256 -kdfopt hexsecret:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f -kdfopt hexseed:6b657920657870616e73696f6ec0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf TLS1-PRF */
#define T12_BLOCK_AES128_SHA256                                                                   \
	"20:D8:E3:9A:26:A6:45:53:5B:04:23:B7:5C:05:8F:86:A4:F3:66:FF:3E:44:99:B6:87:FA:05:0F:D8:" \
	"9A:"                                                                                     \
	"72:BB:18:2F:C9:51:12:BE:8B:F4"

/* openssl kdf -keylen 72 -kdfopt digest:SHA384 -kdfopt hexsecret:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f -kdfopt hexseed:6b657920657870616e73696f6ec0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf TLS1-PRF */
#define T12_BLOCK_AES256_SHA384                                                                   \
	"DE:55:80:9A:9F:16:B1:F7:A4:DD:FE:26:41:2F:0C:A9:AA:7E:D0:86:AD:86:DB:14:D6:C4:F2:F3:F2:" \
	"2B:"                                                                                     \
	"51:6E:84:DA:77:6F:D4:E3:4D:B8:AF:46:52:3E:44:49:86:3B:65:84:B9:22:73:F6:E9:01:34:58:AB:" \
	"63:"                                                                                     \
	"75:F3:9C:35:F4:F0:6B:33:E9:A4:62:55"

/* openssl kdf -keylen 88 -kdfopt digest:SHA256 -kdfopt hexsecret:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f -kdfopt hexseed:6b657920657870616e73696f6ec0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf TLS1-PRF
 * (its first 40 bytes equal the SHA-256 block above: the PRF is one stream, cut at keylen). */
#define T12_BLOCK_CHACHA_SHA256                                                                   \
	"20:D8:E3:9A:26:A6:45:53:5B:04:23:B7:5C:05:8F:86:A4:F3:66:FF:3E:44:99:B6:87:FA:05:0F:D8:" \
	"9A:"                                                                                     \
	"72:BB:18:2F:C9:51:12:BE:8B:F4:47:95:05:5B:16:E6:CC:A4:24:29:61:BA:3A:38:86:B2:6B:44:1D:" \
	"B6:"                                                                                     \
	"25:79:B4:0B:3F:A0:24:24:6C:8C:A1:1B:E2:8B:F9:DB:34:24:70:A5:C7:DB:11:18:FB:A2:9D:03"

/* Checks one suite's split of an OpenSSL key block: RFC 5246 6.3 with no MAC keys, i.e.
 * client_write_key | server_write_key | client_write_IV | server_write_IV. 5 checks. */
static void check_tls12(const char *name, uint16_t suite, int prf, const char *block_hex,
			size_t key_len, size_t iv_len)
{
	unsigned char master[48], cr[32], sr[32], block[88];
	struct traffic_keys c, s;
	size_t bl;
	int rc;

	unhex(T12_MASTER, master, sizeof(master));
	unhex(T12_CLIENT_RANDOM, cr, sizeof(cr));
	unhex(T12_SERVER_RANDOM, sr, sizeof(sr));
	bl = unhex(block_hex, block, sizeof(block));

	rc = keys_tls12_traffic(keys_suite(suite), prf, master, cr, sr, &c, &s);
	tap_ok(rc == 0 && bl == 2 * key_len + 2 * iv_len && c.key_len == key_len &&
		       s.key_len == key_len && c.iv_len == iv_len && s.iv_len == iv_len &&
		       all_zero(c.iv + iv_len, KEYS_IV_LEN - iv_len) &&
		       all_zero(s.iv + iv_len, KEYS_IV_LEN - iv_len),
	       "TLS 1.2 %s: derived, key_len %zu, iv_len %zu, iv tail zero (rc %d)", name,
	       c.key_len, c.iv_len, rc);
	tap_mem_eq(c.key, block, key_len, "TLS 1.2 %s: client write key", name);
	tap_mem_eq(s.key, block + key_len, key_len, "TLS 1.2 %s: server write key", name);
	tap_mem_eq(c.iv, block + 2 * key_len, iv_len, "TLS 1.2 %s: client write iv", name);
	tap_mem_eq(s.iv, block + 2 * key_len + iv_len, iv_len, "TLS 1.2 %s: server write iv", name);
}

static void test_tls12(void)
{
	unsigned char master[48], cr[32], sr[32];
	struct traffic_keys c, s;
	int rc;

	check_tls12("ECDHE-RSA-AES-128-GCM-SHA256", MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		    MBEDTLS_SSL_TLS_PRF_SHA256, T12_BLOCK_AES128_SHA256, 16, 4);
	check_tls12("ECDHE-RSA-AES-256-GCM-SHA384", MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		    MBEDTLS_SSL_TLS_PRF_SHA384, T12_BLOCK_AES256_SHA384, 32, 4);
	check_tls12("ECDHE-RSA-CHACHA20-POLY1305",
		    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, MBEDTLS_SSL_TLS_PRF_SHA256,
		    T12_BLOCK_CHACHA_SHA256, 32, 12);
	/* AES-128-CCM has GCM-128's layout and PRF, so the same OpenSSL block applies. */
	check_tls12("ECDHE-ECDSA-AES-128-CCM", MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CCM,
		    MBEDTLS_SSL_TLS_PRF_SHA256, T12_BLOCK_AES128_SHA256, 16, 4);

	unhex(T12_MASTER, master, sizeof(master));
	unhex(T12_CLIENT_RANDOM, cr, sizeof(cr));
	unhex(T12_SERVER_RANDOM, sr, sizeof(sr));
	/* The PRF the callback reports must be the suite's hash. */
	rc = keys_tls12_traffic(keys_suite(MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
				MBEDTLS_SSL_TLS_PRF_SHA256, master, cr, sr, &c, &s);
	tap_ok(rc != 0 && c.key_len == 0 && s.key_len == 0,
	       "TLS 1.2: SHA-384 suite with a SHA-256 PRF refused (rc %d)", rc);
	rc = keys_tls12_traffic(keys_suite(MBEDTLS_TLS1_3_AES_128_GCM_SHA256),
				MBEDTLS_SSL_TLS_PRF_SHA256, master, cr, sr, &c, &s);
	tap_ok(rc != 0, "TLS 1.2: a TLS 1.3 suite refused (rc %d)", rc);
	rc = keys_tls12_traffic(keys_suite(MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
				MBEDTLS_SSL_TLS_PRF_NONE, master, cr, sr, &c, &s);
	tap_ok(rc != 0, "TLS 1.2: PRF_NONE refused (rc %d)", rc);
}

/* ---- the whitelist --------------------------------------------------------------------------- */

static int suite_is(uint16_t id, uint16_t version, enum kcipher c, int md)
{
	const struct suite_info *s = keys_suite(id);

	return s != NULL && s->id == id && s->version == version && s->cipher == c &&
	       s->md_type == md;
}

static void test_suites(void)
{
	size_t n = 0, bad = 0;

	tap_ok(keys_suite(MBEDTLS_TLS1_3_AES_128_CCM_8_SHA256) == NULL,
	       "keys_suite: 0x1305 TLS_AES_128_CCM_8_SHA256 -> NULL");
	tap_ok(keys_suite(MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256) == NULL,
	       "keys_suite: ECDHE-RSA-AES-128-CBC-SHA256 -> NULL");
	tap_ok(keys_suite(MBEDTLS_TLS_RSA_WITH_AES_128_CBC_SHA) == NULL,
	       "keys_suite: RSA-AES-128-CBC-SHA -> NULL");
	tap_ok(suite_is(MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256, 0x0304, KCIPHER_CHACHA20_POLY1305,
			MBEDTLS_MD_SHA256),
	       "keys_suite: 0x1303 -> TLS 1.3 CHACHA20-POLY1305 SHA-256");
	tap_ok(suite_is(MBEDTLS_TLS1_3_AES_128_GCM_SHA256, 0x0304, KCIPHER_AES_GCM_128,
			MBEDTLS_MD_SHA256),
	       "keys_suite: 0x1301 -> TLS 1.3 AES-128-GCM SHA-256");
	tap_ok(suite_is(MBEDTLS_TLS1_3_AES_256_GCM_SHA384, 0x0304, KCIPHER_AES_GCM_256,
			MBEDTLS_MD_SHA384),
	       "keys_suite: 0x1302 -> TLS 1.3 AES-256-GCM SHA-384");
	tap_ok(suite_is(MBEDTLS_TLS1_3_AES_128_CCM_SHA256, 0x0304, KCIPHER_AES_CCM_128,
			MBEDTLS_MD_SHA256),
	       "keys_suite: 0x1304 -> TLS 1.3 AES-128-CCM SHA-256");
	tap_ok(keys_suite(MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8) == NULL,
	       "keys_suite: TLS 1.2 ECDHE-ECDSA-AES-128-CCM-8 -> NULL");
	tap_ok(keys_suite(MBEDTLS_TLS_PSK_WITH_AES_128_CCM_8) == NULL,
	       "keys_suite: TLS 1.2 PSK-AES-128-CCM-8 -> NULL");
	tap_ok(suite_is(MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_CCM, 0x0303, KCIPHER_AES_CCM_128,
			MBEDTLS_MD_SHA256),
	       "keys_suite: TLS 1.2 ECDHE-ECDSA-AES-128-CCM -> AES-128-CCM SHA-256");
	tap_ok(suite_is(MBEDTLS_TLS_DHE_PSK_WITH_AES_128_CCM, 0x0303, KCIPHER_AES_CCM_128,
			MBEDTLS_MD_SHA256),
	       "keys_suite: TLS 1.2 DHE-PSK-AES-128-CCM -> AES-128-CCM SHA-256");
	tap_ok(keys_suite(MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_CCM) == NULL,
	       "keys_suite: TLS 1.2 AES-256-CCM -> NULL (the kernel has none)");
	tap_ok(keys_suite(MBEDTLS_TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256) == NULL,
	       "keys_suite: ARIA-128-GCM -> NULL");
	tap_ok(keys_suite(MBEDTLS_TLS_ECDHE_RSA_WITH_CAMELLIA_128_GCM_SHA256) == NULL,
	       "keys_suite: CAMELLIA-128-GCM -> NULL");
	tap_ok(keys_suite(MBEDTLS_TLS_ECJPAKE_WITH_AES_128_CCM_8) == NULL,
	       "keys_suite: ECJPAKE-AES-128-CCM-8 -> NULL");
	tap_ok(suite_is(MBEDTLS_TLS_RSA_PSK_WITH_AES_256_GCM_SHA384, 0x0303, KCIPHER_AES_GCM_256,
			MBEDTLS_MD_SHA384),
	       "keys_suite: TLS 1.2 RSA-PSK-AES-256-GCM-SHA384 -> AES-256-GCM SHA-384");
	tap_ok(suite_is(MBEDTLS_TLS_ECDHE_PSK_WITH_CHACHA20_POLY1305_SHA256, 0x0303,
			KCIPHER_CHACHA20_POLY1305, MBEDTLS_MD_SHA256),
	       "keys_suite: TLS 1.2 ECDHE-PSK-CHACHA20-POLY1305 -> CHACHA20-POLY1305 SHA-256");

	/* Every id: what comes back is the id asked for and is self-consistent. 4 TLS 1.3 suites,
	 * 9 + 9 GCM, 5 CCM and 7 ChaCha TLS 1.2 suites. */
	for (uint32_t id = 0; id <= 0xffff; id++) {
		const struct suite_info *s = keys_suite((uint16_t)id);
		size_t key_len;

		if (s == NULL)
			continue;
		n++;
		key_len = cipher_key_len(s->cipher);
		if (s->id != id || (s->version != 0x0303 && s->version != 0x0304) || key_len == 0 ||
		    (s->md_type != MBEDTLS_MD_SHA256 && s->md_type != MBEDTLS_MD_SHA384) ||
		    (s->version == 0x0304) != ((id & 0xff00) == 0x1300))
			bad++;
	}
	tap_ok(n == 34 && bad == 0, "keys_suite: 34 whitelisted ids, all consistent (%zu, %zu bad)",
	       n, bad);
}

static void test_wipe(void)
{
	unsigned char buf[40];

	memset(buf, 0xa5, sizeof(buf));
	keys_wipe(buf, sizeof(buf));
	keys_wipe(NULL, 0);
	tap_ok(all_zero(buf, sizeof(buf)), "keys_wipe zeroes the buffer");
}

int main(void)
{
	/* With MBEDTLS_USE_PSA_CRYPTO (not in Debian's build, but possible elsewhere) the TLS 1.2 PRF
	 * runs through PSA, which needs this; an application using TLS 1.3 has called it already. */
	tap_plan(PLAN);
	if (psa_crypto_init() != PSA_SUCCESS) {
		printf("Bail out! psa_crypto_init failed\n");
		return 1;
	}
	test_tls13_rfc8448();
	test_expand_label_published();
	test_tls13_next_secret();
	test_tls13_other_suites();
	test_tls12();
	test_suites();
	test_wipe();
	return tap_done();
}
