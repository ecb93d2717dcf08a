/*
 * What our TLS 1.3 record layer (dp/tls/record.c) costs a byte on the way
 * in, against the AEAD it runs: two record layers from shared secrets (no
 * handshake), 16 KiB application records sealed by one and read by the
 * other, by copy (wp_tls_rec_read into a 16 KiB buffer, as the tunnel did)
 * and in place (wp_tls_rec_view / _consume, as the tunnel does), against
 * the same suite's bare AEAD (dp/tls/aead.c) opening a 16 KiB record in
 * the same run (the floor: no framing, no buffers); and that AEAD against
 * OpenSSL's EVP doing the same (what the record layer ran before).
 *
 *   build/bench/tls_record [MIB [SUITE]]
 *
 * MIB per way (default 1024), SUITE 0x1301 (AES-128-GCM, default),
 * 0x1302 (AES-256-GCM) or 0x1303 (ChaCha20-Poly1305). Only the receiving
 * side is timed (feed, decrypt, read or view). The four ways take turns
 * in eight rounds of MIB/8 each; each one's best round counts. Prints TSC
 * cycles per byte of plaintext, the ratios of the record layer to the bare
 * AEAD and of OpenSSL's EVP to it, and one JSON line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <x86intrin.h>

#include <openssl/evp.h>

#include "aead.h"
#include "record_int.h"
#include "wp/counters.h"

#define REC_PT 16384
#define ROUNDS 8

static uint64_t ctrs[WP_CTR_MAX];

struct suite_info {
	uint16_t id;
	const char *cipher;
	enum wp_tls_aead_alg alg;
	size_t key_len, secret_len;
};

static const struct suite_info suites[] = {
        {0x1301, "AES-128-GCM", WP_TLS_AES_128_GCM, 16, 32},
        {0x1302, "AES-256-GCM", WP_TLS_AES_256_GCM, 32, 48},
        {0x1303, "ChaCha20-Poly1305", WP_TLS_CHACHA20_POLY1305, 32, 32},
};

static void die(const char *what)
{
	fprintf(stderr, "tls_record: %s\n", what);
	exit(1);
}

static struct wp_tls_rec *rec(const struct suite_info *su, bool client)
{
	static const uint8_t cs[48] = {1, 2, 3}, ss[48] = {4, 5, 6};
	struct wp_tls_rec_params p = {.suite = su->id,
	                              .client = client,
	                              .wsecret = client ? cs : ss,
	                              .rsecret = client ? ss : cs,
	                              .secret_len = su->secret_len,
	                              .cap = 1 << 18,
	                              .ctrs = ctrs};
	struct wp_tls_rec *r = wp_tls_rec_new(&p);

	if (r == NULL)
		die("wp_tls_rec_new");
	return r;
}

/* TSC cycles per plaintext byte the receiver spends on <bytes>. */
static double through_records(const struct suite_info *su, size_t bytes, bool in_place)
{
	static uint8_t pt[REC_PT], wire[4 * (REC_PT + 64)], out[REC_PT];
	struct wp_tls_rec *c = rec(su, true), *s = rec(su, false);
	uint64_t cycles = 0, check = 0;
	size_t got = 0;

	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i * 31 + 7);
	while (got < bytes) {
		size_t n;
		uint64_t t0;

		for (int k = 0; k < 4; k++)
			if (wp_tls_rec_write(c, pt, sizeof(pt)) != (ssize_t)sizeof(pt))
				die("wp_tls_rec_write");
		n = wp_tls_rec_take(c, wire, sizeof(wire));
		t0 = __rdtsc();
		if (wp_tls_rec_feed(s, wire, n) != (ssize_t)n)
			die("wp_tls_rec_feed");
		if (in_place) {
			const uint8_t *v;
			ssize_t k;

			while ((k = wp_tls_rec_view(s, &v)) > 0) {
				check += v[0] + v[k - 1];
				got += (size_t)k;
				wp_tls_rec_consume(s, (size_t)k);
			}
		} else {
			ssize_t k;

			while ((k = wp_tls_rec_read(s, out, sizeof(out))) > 0) {
				check += out[0] + out[k - 1];
				got += (size_t)k;
			}
		}
		cycles += __rdtsc() - t0;
	}
	if (check != (uint64_t)(got / REC_PT) * (pt[0] + pt[REC_PT - 1]))
		die("the plaintext read is not what was written");
	wp_tls_rec_free(c);
	wp_tls_rec_free(s);
	return (double)cycles / (double)got;
}

/* The record layer's AEAD alone (aead.c): open one sealed 16 KiB record
 * again and again, in place on a fresh copy (the copy is not timed). */
static double bare_aead(const struct suite_info *su, size_t bytes)
{
	static uint8_t pt[REC_PT], ct[REC_PT], out[REC_PT];
	uint8_t key[32] = {9}, iv[12] = {1}, aad[5] = {23, 3, 3, 0x40, 0x11}, tag[16];
	struct wp_tls_aead enc = {0}, dec = {0};
	struct wp_tls_aead_seal s;
	uint64_t cycles = 0;
	size_t done = 0;

	if (wp_tls_aead_set_key(&enc, su->alg, key, true) != 0 ||
	    wp_tls_aead_set_key(&dec, su->alg, key, false) != 0 ||
	    wp_tls_aead_seal_begin(&s, &enc, iv, aad, sizeof(aad)) != 0 ||
	    wp_tls_aead_seal_update(&s, ct, pt, sizeof(pt)) != 0 ||
	    wp_tls_aead_seal_end(&s, tag) != 0)
		die("sealing the record");
	while (done < bytes) {
		uint64_t t0;

		memcpy(out, ct, sizeof(ct));
		t0 = __rdtsc();
		if (!wp_tls_aead_open(&dec, iv, aad, sizeof(aad), out, sizeof(out), tag))
			die("the record did not authenticate");
		cycles += __rdtsc() - t0;
		done += sizeof(ct);
	}
	wp_tls_aead_clear(&enc);
	wp_tls_aead_clear(&dec);
	return (double)cycles / (double)done;
}

/* The same with OpenSSL's EVP interface (out of place). */
static double bare_evp(const struct suite_info *su, size_t bytes)
{
	static uint8_t pt[REC_PT], ct[REC_PT], out[REC_PT];
	uint8_t key[32] = {9}, iv[12] = {1}, aad[5] = {23, 3, 3, 0x40, 0x11}, tag[16];
	EVP_CIPHER *ciph = EVP_CIPHER_fetch(NULL, su->cipher, NULL);
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	uint64_t cycles = 0;
	size_t done = 0;
	int l;

	if (ciph == NULL || x == NULL)
		die("EVP_CIPHER_fetch");
	if (EVP_EncryptInit_ex2(x, ciph, key, iv, NULL) != 1 ||
	    EVP_EncryptUpdate(x, NULL, &l, aad, sizeof(aad)) != 1 ||
	    EVP_EncryptUpdate(x, ct, &l, pt, sizeof(pt)) != 1 ||
	    EVP_EncryptFinal_ex(x, ct, &l) != 1 ||
	    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, tag) != 1 ||
	    EVP_DecryptInit_ex2(x, ciph, key, NULL, NULL) != 1)
		die("sealing the record");
	while (done < bytes) {
		uint64_t t0 = __rdtsc();

		if (EVP_DecryptInit_ex(x, NULL, NULL, NULL, iv) != 1 ||
		    EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, 16, tag) != 1 ||
		    EVP_DecryptUpdate(x, NULL, &l, aad, sizeof(aad)) != 1 ||
		    EVP_DecryptUpdate(x, out, &l, ct, sizeof(ct)) != 1 ||
		    EVP_DecryptFinal_ex(x, out + l, &l) != 1)
			die("the record did not authenticate");
		cycles += __rdtsc() - t0;
		done += sizeof(ct);
	}
	EVP_CIPHER_CTX_free(x);
	EVP_CIPHER_free(ciph);
	return (double)cycles / (double)done;
}

static double best(double a, double b)
{
	return a < b ? a : b;
}

int main(int argc, char **argv)
{
	long mib = argc > 1 ? strtol(argv[1], NULL, 10) : 1024;
	unsigned long id = argc > 2 ? strtoul(argv[2], NULL, 0) : 0x1301;
	const struct suite_info *su = NULL;
	double aead, evp, copy, view;
	size_t bytes;

	for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
		if (suites[i].id == id)
			su = &suites[i];
	if (argc > 3 || mib < 1 || mib > 65536 || su == NULL) {
		fprintf(stderr, "usage: tls_record [MIB (1..65536) [SUITE (0x1301, 0x1302 or "
		                "0x1303)]]\n");
		return 2;
	}
	/* Eight rounds, the three ways in turn, each a best of eight: the
	 * machine's speed drifts between runs more than the ways differ. */
	bytes = ((size_t)mib << 20) / ROUNDS;
	aead = evp = copy = view = 1e9;
	for (int r = 0; r < ROUNDS; r++) {
		aead = best(aead, bare_aead(su, bytes));
		evp = best(evp, bare_evp(su, bytes));
		copy = best(copy, through_records(su, bytes, false));
		view = best(view, through_records(su, bytes, true));
	}
	printf("tls_record: %s on %s, %ld MiB each, TSC cycles per plaintext byte received\n",
	       su->cipher, wp_tls_aead_impl(su->alg), mib);
	printf("  bare AEAD %.3f (OpenSSL's EVP %.3f, %.2fx); record layer by copy %.3f (%.2fx), "
	       "in place %.3f (%.2fx)\n",
	       aead, evp, evp / aead, copy, copy / aead, view, view / aead);
	printf("{\"bench\": \"tls_record\", \"suite\": \"%s\", \"aead\": \"%s\", \"mib\": %ld, "
	       "\"aead_cpb\": %.3f, \"evp_cpb\": %.3f, \"copy_cpb\": %.3f, \"view_cpb\": %.3f, "
	       "\"ratio_evp_over_aead\": %.2f, \"ratio_copy_over_aead\": %.2f, "
	       "\"ratio_view_over_aead\": %.2f}\n",
	       su->cipher, wp_tls_aead_impl(su->alg), mib, aead, evp, copy, view, evp / aead,
	       copy / aead, view / aead);
	return 0;
}
