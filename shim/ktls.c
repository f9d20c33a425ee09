/* SPDX-License-Identifier: Apache-2.0 */
/* The kernel side of kTLS: TCP_ULP "tls", TLS_TX/TLS_RX crypto_info, and a capability probe.
 * No Mbed TLS here: it only speaks the kernel uapi (<linux/tls.h>). */
#include "ktls.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/tls.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif
#ifndef TCP_ULP
#define TCP_ULP 31
#endif
#ifndef TLS_RX_EXPECT_NO_PAD
#define TLS_RX_EXPECT_NO_PAD 4
#endif

static void wipe(void *p, size_t n)
{
	explicit_bzero(p, n);
}

static void put_be64(unsigned char out[8], uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)v;
}

static uint64_t get_be64(const unsigned char in[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | in[i];
	return v;
}

int ktls_attach_ulp(int fd)
{
	static const char ulp[] = "tls";
	if (setsockopt(fd, SOL_TCP, TCP_ULP, ulp, sizeof ulp - 1) == 0 || errno == EEXIST)
		return 0;
	return -errno;
}

/* The kernel's crypto_info for p, laid out by the cipher's table row. The nonce base is salt || iv.
 * GCM and CCM: the salt is its first 4 bytes; TLS 1.3: the kernel iv is the other 8 and the kernel
 * XORs in the sequence number; TLS 1.2: the kernel iv is the explicit nonce of the next record,
 * which Mbed TLS takes to be the sequence number. ChaCha20-Poly1305: no salt, the whole 12-byte
 * nonce base is the iv, in both versions. */
int ktls_build(const struct ktls_params *p, union ktls_kinfo *out, size_t *out_len)
{
	const struct cipher_desc *d = cipher_get(p->cipher);
	size_t iv_need = cipher_fixed_iv_len(p->cipher, p->version);
	if (!d || !iv_need || p->keys.key_len != d->key_len || p->keys.iv_len < iv_need ||
	    p->keys.iv_len > KEYS_IV_LEN)
		return -EINVAL;

	union ktls_kinfo u;
	unsigned char *b = (unsigned char *)&u, seqbe[8];
	memset(&u, 0, sizeof u);
	put_be64(seqbe, p->seq);
	u.info.version = p->version;
	u.info.cipher_type = d->kernel_type;
	memcpy(b + d->key_off, p->keys.key, d->key_len);
	memcpy(b + d->salt_off, p->keys.iv, d->salt_len);
	if (cipher_explicit_nonce_len(p->cipher, p->version))
		memcpy(b + d->iv_off, seqbe, d->iv_len);
	else
		memcpy(b + d->iv_off, p->keys.iv + d->salt_len, d->iv_len);
	memcpy(b + d->rec_seq_off, seqbe, d->rec_seq_len);
	*out = u;
	*out_len = d->info_size;
	wipe(&u, sizeof u);
	return 0;
}

int ktls_install(int fd, enum dir dir, const struct ktls_params *p)
{
	if (dir != DIR_TX && dir != DIR_RX)
		return -EINVAL;
	union ktls_kinfo u;
	size_t len;
	int rc = ktls_build(p, &u, &len);
	if (rc == 0 && setsockopt(fd, SOL_TLS, dir == DIR_TX ? TLS_TX : TLS_RX, &u, (socklen_t)len))
		rc = -errno;
	wipe(&u, sizeof u);
	return rc;
}

int ktls_rx_no_pad(int fd)
{
	unsigned one = 1; /* the kernel reads a u32 */
	return setsockopt(fd, SOL_TLS, TLS_RX_EXPECT_NO_PAD, &one, sizeof one) ? -errno : 0;
}

int ktls_query(int fd, enum dir dir, uint16_t *version, enum kcipher *cipher, uint64_t *seq)
{
	if (dir != DIR_TX && dir != DIR_RX)
		return -EINVAL;
	int opt = dir == DIR_TX ? TLS_TX : TLS_RX;
	union ktls_kinfo u;
	memset(&u, 0, sizeof u);

	/* Exactly the header first: the kernel answers with version and cipher only. */
	socklen_t len = sizeof u.info;
	if (getsockopt(fd, SOL_TLS, opt, &u, &len) != 0)
		return -errno;
	enum kcipher c = cipher_by_kernel_type(u.info.cipher_type);
	const struct cipher_desc *d = cipher_get(c);
	if (!d)
		return -EOPNOTSUPP;

	socklen_t want = d->info_size;
	len = want;
	int rc = getsockopt(fd, SOL_TLS, opt, &u, &len) == 0 ? 0 : -errno;
	if (rc == 0 && len != want)
		rc = -EPROTO;
	if (rc == 0) {
		if (version)
			*version = u.info.version;
		if (cipher)
			*cipher = c;
		if (seq)
			*seq = get_be64((const unsigned char *)&u + d->rec_seq_off);
	}
	wipe(&u, sizeof u); /* the kernel handed the key back too */
	return rc;
}

/* A connected loopback TCP pair through an already listening socket; the accepted side is only
 * kept so the connection stays established. */
static int make_pair(int lfd, const struct sockaddr_in *addr, int *cfd, int *sfd)
{
	*cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*cfd < 0)
		return -errno;
	/* Linux bounds connect() by the send timeout: a loopback that drops packets (a firewall
	 * rule) must not hold the application's hand-off for minutes. */
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(*cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(*cfd, (const struct sockaddr *)addr, sizeof *addr) != 0) {
		int e = -errno;
		close(*cfd);
		return e;
	}
	*sfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (*sfd < 0) {
		int e = -errno;
		close(*cfd);
		return e;
	}
	return 0;
}

static void zero_params(struct ktls_params *p, uint16_t version, enum kcipher c)
{
	memset(p, 0, sizeof *p);
	p->version = version;
	p->cipher = c;
	p->keys.key_len = cipher_key_len(c);
	p->keys.iv_len = cipher_fixed_iv_len(c, version);
}

/* A loopback listener on an ephemeral port; its address in *addr. The fd or -errno. */
static int make_listener(struct sockaddr_in *addr)
{
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	*addr = (struct sockaddr_in){ .sin_family = AF_INET,
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof *addr;
	if (bind(lfd, (struct sockaddr *)addr, sizeof *addr) != 0 || listen(lfd, 4) != 0 ||
	    getsockname(lfd, (struct sockaddr *)addr, &alen) != 0) {
		int e = -errno;
		close(lfd);
		return e;
	}
	return lfd;
}

int ktls_loopback_pair(int *a, int *b)
{
	struct sockaddr_in addr;
	int lfd = make_listener(&addr);
	if (lfd < 0)
		return lfd;
	int rc = make_pair(lfd, &addr, a, b);
	close(lfd);
	return rc;
}

int ktls_try_rekey(int fd, const struct ktls_params *p)
{
	int e = ktls_install(fd, DIR_TX, p);
	return e == 0 ? 1 : e == -EBUSY ? 0 : e;
}

static int rekey_on(int lfd, const struct sockaddr_in *addr)
{
	int cfd, sfd, rekey;
	if ((rekey = make_pair(lfd, addr, &cfd, &sfd)) != 0)
		return rekey;
	struct ktls_params p;
	zero_params(&p, TLS_1_3, KCIPHER_AES_GCM_128);
	if ((rekey = ktls_attach_ulp(cfd)) == 0 && (rekey = ktls_install(cfd, DIR_TX, &p)) == 0)
		rekey = ktls_try_rekey(cfd, &p);
	close(cfd);
	close(sfd);
	return rekey;
}

int ktls_probe_rekey(void)
{
	struct sockaddr_in addr;
	int lfd = make_listener(&addr);
	if (lfd < 0)
		return lfd;
	int rekey = rekey_on(lfd, &addr);
	close(lfd);
	return rekey;
}

int ktls_stat_rekey(void)
{
	static atomic_bool listed; /* seen once: the kernel does not lose its counters */
	if (atomic_load(&listed))
		return 1;
	int fd = open("/proc/net/tls_stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char text[2048];
	ssize_t n = read(fd, text, sizeof(text) - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	text[n] = 0;
	if (!strstr(text, "TlsTxSw"))
		return -ENODATA; /* not the table this code knows */
	if (!strstr(text, "TlsTxRekeyOk"))
		return 0;
	atomic_store(&listed, true);
	return 1;
}

int ktls_probe(struct ktls_caps *caps)
{
	static const uint16_t versions[2] = { TLS_1_2, TLS_1_3 };
	memset(caps, 0, sizeof *caps);
	caps->rekey = -1;

	struct sockaddr_in addr;
	int lfd = make_listener(&addr);
	if (lfd < 0)
		return lfd;
	int rc = 0, cfd, sfd;
	if ((rc = make_pair(lfd, &addr, &cfd, &sfd)) != 0)
		goto out;
	int e = ktls_attach_ulp(cfd);
	close(cfd);
	close(sfd);
	if (e != 0) {
		caps->ulp_errno = -e;
		goto out; /* nothing else can work */
	}
	caps->ulp = true;

	struct ktls_params p;
	for (int v = 0; v < 2; v++) {
		for (int c = KCIPHER_FIRST; c < KCIPHER_COUNT; c++) {
			for (int d = 0; d < 2; d++) {
				/* Fresh pair each time: a direction can only be set once (before 6.14). */
				if ((rc = make_pair(lfd, &addr, &cfd, &sfd)) != 0)
					goto out;
				zero_params(&p, versions[v], (enum kcipher)c);
				caps->can[v][c][d] = ktls_attach_ulp(cfd) == 0 &&
						     ktls_install(cfd, (enum dir)d, &p) == 0;
				close(cfd);
				close(sfd);
			}
		}
	}
	if (caps->can[1][KCIPHER_AES_GCM_128][DIR_TX])
		caps->rekey = rekey_on(lfd, &addr);
out:
	close(lfd);
	return rc;
}
