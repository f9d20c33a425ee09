/* SPDX-License-Identifier: Apache-2.0 */
/* ktls-probe: what this kernel can offload to kTLS (TLS 1.2/1.3 x cipher x TX/RX, and TLS 1.3 rekey),
 * and the shim's self-test verdict for each (does the kernel seal and open records right?).
 * Exit 0 when anything can be offloaded, 1 when nothing, 2 on usage or probe errors. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "ktls.h"
#include "selftest.h"

static const struct {
	enum kcipher c;
	const char *label; /* for people */
	const char *key;   /* for --json */
} ciphers[] = {
	{ KCIPHER_AES_GCM_128, "AES-GCM-128", "aes-gcm-128" },
	{ KCIPHER_AES_GCM_256, "AES-GCM-256", "aes-gcm-256" },
	{ KCIPHER_AES_CCM_128, "AES-CCM-128", "aes-ccm-128" },
	{ KCIPHER_CHACHA20_POLY1305, "CHACHA20-POLY1305", "chacha20-poly1305" },
};
#define NCIPHERS (sizeof ciphers / sizeof ciphers[0])

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ktls-probe [--json]\n"
		"Probes on loopback TCP sockets which kTLS versions, ciphers and directions this\n"
		"kernel accepts, and the shim's self-test of each (records sealed and opened by\n"
		"the kernel against Mbed TLS; \"failed\" means the shim keeps it in user space).\n"
		"--json prints one JSON object. Exit 0 when anything can be offloaded, 1 when\n"
		"nothing.\n");
}

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static const char *ulp_reason(int e)
{
	switch (e) {
	case ENOENT:
		return "ENOENT: no tls ULP in this kernel (CONFIG_TLS off or tls module not "
		       "loadable)";
	case EPERM: return "EPERM: not permitted";
	case EOPNOTSUPP: return "EOPNOTSUPP: not supported on this socket";
	default: return strerror(e);
	}
}

int main(int argc, char **argv)
{
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "ktls-probe: unknown argument %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}

	struct utsname u;
	const char *release = uname(&u) == 0 ? u.release : "unknown";
	struct ktls_caps caps;
	int rc = ktls_probe(&caps);
	if (rc < 0) {
		fprintf(stderr, "ktls-probe: probe failed: %s\n", strerror(-rc));
		return 2;
	}

	/* The self-test's verdicts: [tls12/tls13][cipher index][tx/rx]. */
	const char *verdict[2][NCIPHERS][2];
	for (int v = 0; v < 2; v++)
		for (size_t i = 0; i < NCIPHERS; i++)
			for (int d = 0; d < 2; d++)
				verdict[v][i][d] = selftest_verdict_str(
					caps.ulp ? selftest_check(v ? TLS_1_3 : TLS_1_2,
								  ciphers[i].c, (enum dir)d)
						 : SELFTEST_UNAVAILABLE);

	int any = 0;
	for (int v = 0; v < 2; v++)
		for (size_t i = 0; i < NCIPHERS; i++)
			any |= caps.can[v][ciphers[i].c][DIR_TX] |
			       caps.can[v][ciphers[i].c][DIR_RX];

	if (json) {
		printf("{\"kernel\":");
		json_string(release);
		printf(",\"ulp\":%s,\"ulp_errno\":%d", caps.ulp ? "true" : "false", caps.ulp_errno);
		for (int v = 0; v < 2; v++) {
			printf(",\"%s\":{", v ? "tls13" : "tls12");
			for (size_t i = 0; i < NCIPHERS; i++) {
				const bool *d = caps.can[v][ciphers[i].c];
				printf("%s\"%s\":{\"tx\":%s,\"rx\":%s}", i ? "," : "",
				       ciphers[i].key, d[DIR_TX] ? "true" : "false",
				       d[DIR_RX] ? "true" : "false");
			}
			printf("}");
		}
		printf(",\"selftest\":{");
		for (int v = 0; v < 2; v++) {
			printf("%s\"%s\":{", v ? "," : "", v ? "tls13" : "tls12");
			for (size_t i = 0; i < NCIPHERS; i++)
				printf("%s\"%s\":{\"tx\":\"%s\",\"rx\":\"%s\"}", i ? "," : "",
				       ciphers[i].key, verdict[v][i][DIR_TX],
				       verdict[v][i][DIR_RX]);
			printf("}");
		}
		printf("}");
		printf(",\"rekey\":%s}\n", caps.rekey > 0    ? "true"
					   : caps.rekey == 0 ? "false"
							     : "null");
	} else {
		printf("kernel: %s\n", release);
		if (caps.ulp)
			printf("ULP tls: yes\n");
		else
			printf("ULP tls: no (%s)\n", ulp_reason(caps.ulp_errno));
		printf("\n%-8s %-18s %-3s %-3s %-8s %-8s\n", "version", "cipher", "TX", "RX",
		       "test-TX", "test-RX");
		for (int v = 0; v < 2; v++)
			for (size_t i = 0; i < NCIPHERS; i++) {
				const bool *d = caps.can[v][ciphers[i].c];
				printf("%-8s %-18s %-3s %-3s %-8s %-8s\n",
				       v ? "TLS 1.3" : "TLS 1.2", ciphers[i].label,
				       d[DIR_TX] ? "yes" : "no", d[DIR_RX] ? "yes" : "no",
				       verdict[v][i][DIR_TX], verdict[v][i][DIR_RX]);
			}
		printf("\nTLS 1.3 rekey: %s\n", caps.rekey > 0	  ? "yes"
						: caps.rekey == 0 ? "no (EBUSY)"
								  : "unknown");
	}
	return any ? 0 : 1;
}
