/*
 * The record layer's AEAD (dp/tls/aead.c) against OpenSSL's EVP as the
 * reference, suite by suite: a published AES-GCM vector, seals of every
 * length around block and piece boundaries, in pieces that split anywhere,
 * opened in place; any altered bit of ciphertext, tag, nonce or additional
 * data refused; a key changed in place. The AES-GCM suites run on
 * intel-ipsec-mb where the build has it (the test says which ran).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "aead.h"

#define MAXLEN 3000

static const struct {
	enum wp_tls_aead_alg alg;
	const char *evp;
	size_t key_len;
} algs[] = {
        {WP_TLS_AES_128_GCM, "AES-128-GCM", 16},
        {WP_TLS_AES_256_GCM, "AES-256-GCM", 32},
        {WP_TLS_CHACHA20_POLY1305, "ChaCha20-Poly1305", 32},
};

/* OpenSSL's one-shot seal: the reference. */
static void evp_seal(const char *name, const uint8_t *key, const uint8_t *iv, const uint8_t *aad,
                     size_t aad_len, const uint8_t *pt, size_t len, uint8_t *ct, uint8_t *tag)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int n;

	assert_non_null(c);
	assert_int_equal(EVP_EncryptInit_ex2(x, c, key, iv, NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(x, NULL, &n, aad, (int)aad_len), 1);
	if (len > 0)
		assert_int_equal(EVP_EncryptUpdate(x, ct, &n, pt, (int)len), 1);
	assert_int_equal(EVP_EncryptFinal_ex(x, ct + len, &n), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, WP_TLS_AEAD_TAG, tag), 1);
	EVP_CIPHER_CTX_free(x);
	EVP_CIPHER_free(c);
}

/* Seals <pt> with <a> in pieces cut at <cut1> and <cut2>. */
static void seal_cut(const struct wp_tls_aead *a, const uint8_t *iv, const uint8_t *aad,
                     size_t aad_len, const uint8_t *pt, size_t len, size_t cut1, size_t cut2,
                     uint8_t *ct, uint8_t *tag)
{
	struct wp_tls_aead_seal s;

	assert_int_equal(wp_tls_aead_seal_begin(&s, a, iv, aad, aad_len), 0);
	assert_int_equal(wp_tls_aead_seal_update(&s, ct, pt, cut1), 0);
	assert_int_equal(wp_tls_aead_seal_update(&s, ct + cut1, pt + cut1, cut2 - cut1), 0);
	assert_int_equal(wp_tls_aead_seal_update(&s, ct + cut2, pt + cut2, len - cut2), 0);
	assert_int_equal(wp_tls_aead_seal_end(&s, tag), 0);
}

/* NIST's GCM test case 3 (AES-128, 64 bytes, no additional data). */
static void test_known_vector(void **state)
{
	static const uint8_t key[16] = {0xfe, 0xff, 0xe9, 0x92, 0x86, 0x65, 0x73, 0x1c,
	                                0x6d, 0x6a, 0x8f, 0x94, 0x67, 0x30, 0x83, 0x08};
	static const uint8_t iv[12] = {0xca, 0xfe, 0xba, 0xbe, 0xfa, 0xce,
	                               0xdb, 0xad, 0xde, 0xca, 0xf8, 0x88};
	static const char pt_hex[] =
	        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
	static const char ct_hex[] =
	        "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
	        "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985";
	static const char tag_hex[] = "4d5c2af327cd64a62cf35abd2ba6fab4";
	struct wp_tls_aead enc = {0}, dec = {0};
	uint8_t pt[64], want[64], want_tag[16], ct[64], tag[16];
	long n;
	unsigned char *b;

	(void)state;
	b = OPENSSL_hexstr2buf(pt_hex, &n);
	memcpy(pt, b, sizeof(pt));
	OPENSSL_free(b);
	b = OPENSSL_hexstr2buf(ct_hex, &n);
	memcpy(want, b, sizeof(want));
	OPENSSL_free(b);
	b = OPENSSL_hexstr2buf(tag_hex, &n);
	memcpy(want_tag, b, sizeof(want_tag));
	OPENSSL_free(b);

	assert_int_equal(wp_tls_aead_set_key(&enc, WP_TLS_AES_128_GCM, key, true), 0);
	assert_int_equal(wp_tls_aead_set_key(&dec, WP_TLS_AES_128_GCM, key, false), 0);
	seal_cut(&enc, iv, NULL, 0, pt, sizeof(pt), 13, 40, ct, tag);
	assert_memory_equal(ct, want, sizeof(want));
	assert_memory_equal(tag, want_tag, sizeof(want_tag));
	assert_true(wp_tls_aead_open(&dec, iv, NULL, 0, ct, sizeof(ct), tag));
	assert_memory_equal(ct, pt, sizeof(pt));
	printf("AES-128-GCM on %s\n", wp_tls_aead_impl(WP_TLS_AES_128_GCM));
	wp_tls_aead_clear(&enc);
	wp_tls_aead_clear(&dec);
	assert_null(enc.impl);
}

/* Every length from 0 to 300 and a spread up to MAXLEN, cut at random
 * places, equals OpenSSL's seal and opens back in place. */
static void test_against_openssl(void **state)
{
	static uint8_t pt[MAXLEN], ct[MAXLEN + 16], want[MAXLEN + 16], buf[MAXLEN];
	uint8_t key[32], iv[12], aad[5] = {23, 3, 3, 0, 0}, tag[16], want_tag[16];

	(void)state;
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		struct wp_tls_aead enc = {0}, dec = {0};

		assert_true(wp_tls_aead_available(algs[i].alg));
		assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
		assert_int_equal(wp_tls_aead_set_key(&enc, algs[i].alg, key, true), 0);
		assert_int_equal(wp_tls_aead_set_key(&dec, algs[i].alg, key, false), 0);
		for (size_t len = 0; len <= MAXLEN; len += len < 300 ? 1 : 97) {
			size_t cut1 = len == 0 ? 0 : (size_t)rand() % (len + 1);
			size_t cut2 = cut1 + (len == cut1 ? 0 : (size_t)rand() % (len - cut1 + 1));

			assert_int_equal(RAND_bytes(iv, sizeof(iv)), 1);
			if (len > 0)
				assert_int_equal(RAND_bytes(pt, (int)len), 1);
			aad[3] = (uint8_t)(len >> 8);
			aad[4] = (uint8_t)len;
			evp_seal(algs[i].evp, key, iv, aad, sizeof(aad), pt, len, want, want_tag);
			seal_cut(&enc, iv, aad, sizeof(aad), pt, len, cut1, cut2, ct, tag);
			if (len > 0)
				assert_memory_equal(ct, want, len);
			assert_memory_equal(tag, want_tag, sizeof(tag));
			memcpy(buf, ct, len);
			assert_true(wp_tls_aead_open(&dec, iv, aad, sizeof(aad), buf, len, tag));
			if (len > 0)
				assert_memory_equal(buf, pt, len);
		}
		wp_tls_aead_clear(&enc);
		wp_tls_aead_clear(&dec);
	}
}

/* One bit altered anywhere is refused. */
static void test_forgeries_refused(void **state)
{
	uint8_t key[32] = {9}, iv[12] = {7}, aad[5] = {23, 3, 3, 0, 61}, pt[61], ct[61], tag[16];
	uint8_t buf[61];

	(void)state;
	memset(pt, 'x', sizeof(pt));
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		struct wp_tls_aead enc = {0}, dec = {0};

		assert_int_equal(wp_tls_aead_set_key(&enc, algs[i].alg, key, true), 0);
		assert_int_equal(wp_tls_aead_set_key(&dec, algs[i].alg, key, false), 0);
		seal_cut(&enc, iv, aad, sizeof(aad), pt, sizeof(pt), 0, 17, ct, tag);
		for (size_t bit = 0;
		     bit < 8 * (sizeof(ct) + sizeof(tag) + sizeof(iv) + sizeof(aad)); bit += 5) {
			uint8_t t[16], v[12], a[5];
			size_t byte = bit / 8;
			uint8_t *p;

			memcpy(buf, ct, sizeof(buf));
			memcpy(t, tag, sizeof(t));
			memcpy(v, iv, sizeof(v));
			memcpy(a, aad, sizeof(a));
			if (byte < sizeof(ct))
				p = buf + byte;
			else if ((byte -= sizeof(ct)) < sizeof(tag))
				p = t + byte;
			else if ((byte -= sizeof(tag)) < sizeof(iv))
				p = v + byte;
			else
				p = a + (byte - sizeof(iv));
			*p ^= (uint8_t)(1u << (bit % 8));
			assert_false(wp_tls_aead_open(&dec, v, a, sizeof(a), buf, sizeof(buf), t));
		}
		memcpy(buf, ct, sizeof(buf));
		assert_true(wp_tls_aead_open(&dec, iv, aad, sizeof(aad), buf, sizeof(buf), tag));
		wp_tls_aead_clear(&enc);
		wp_tls_aead_clear(&dec);
	}
}

/* A key changed in place (KeyUpdate), and to another algorithm, takes
 * effect: what the old key sealed no longer opens. */
static void test_rekey(void **state)
{
	uint8_t k1[32] = {1}, k2[32] = {2}, iv[12] = {0}, pt[40] = {0}, ct[40], tag[16];
	struct wp_tls_aead enc = {0}, dec = {0};

	(void)state;
	assert_int_equal(wp_tls_aead_set_key(&enc, WP_TLS_AES_128_GCM, k1, true), 0);
	assert_int_equal(wp_tls_aead_set_key(&dec, WP_TLS_AES_128_GCM, k1, false), 0);
	seal_cut(&enc, iv, NULL, 0, pt, sizeof(pt), 5, 5, ct, tag);
	assert_int_equal(wp_tls_aead_set_key(&dec, WP_TLS_AES_128_GCM, k2, false), 0);
	assert_false(wp_tls_aead_open(&dec, iv, NULL, 0, ct, sizeof(ct), tag));
	assert_int_equal(wp_tls_aead_set_key(&enc, WP_TLS_AES_128_GCM, k2, true), 0);
	seal_cut(&enc, iv, NULL, 0, pt, sizeof(pt), 5, 5, ct, tag);
	assert_true(wp_tls_aead_open(&dec, iv, NULL, 0, ct, sizeof(ct), tag));
	assert_memory_equal(ct, pt, sizeof(pt));

	assert_int_equal(wp_tls_aead_set_key(&enc, WP_TLS_CHACHA20_POLY1305, k2, true), 0);
	assert_int_equal(wp_tls_aead_set_key(&dec, WP_TLS_CHACHA20_POLY1305, k2, false), 0);
	seal_cut(&enc, iv, NULL, 0, pt, sizeof(pt), 5, 30, ct, tag);
	assert_true(wp_tls_aead_open(&dec, iv, NULL, 0, ct, sizeof(ct), tag));
	assert_memory_equal(ct, pt, sizeof(pt));
	wp_tls_aead_clear(&enc);
	wp_tls_aead_clear(&dec);
	assert_false(wp_tls_aead_available((enum wp_tls_aead_alg)7));
	assert_int_equal(wp_tls_aead_set_key(&enc, (enum wp_tls_aead_alg)7, k1, true), -EPROTO);
}

/* Built with intel-ipsec-mb, AES-GCM runs on it, ChaCha20 on OpenSSL. */
static void test_impl_names(void **state)
{
	(void)state;
#ifdef WP_HAVE_IPSEC_MB
	assert_non_null(strstr(wp_tls_aead_impl(WP_TLS_AES_128_GCM), "intel-ipsec-mb"));
	assert_non_null(strstr(wp_tls_aead_impl(WP_TLS_AES_256_GCM), "intel-ipsec-mb"));
#else
	assert_non_null(strstr(wp_tls_aead_impl(WP_TLS_AES_128_GCM), "OpenSSL"));
#endif
	assert_non_null(strstr(wp_tls_aead_impl(WP_TLS_CHACHA20_POLY1305), "OpenSSL"));
	assert_string_equal(wp_tls_aead_impl((enum wp_tls_aead_alg)7), "unavailable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_known_vector),      cmocka_unit_test(test_against_openssl),
	        cmocka_unit_test(test_forgeries_refused), cmocka_unit_test(test_rekey),
	        cmocka_unit_test(test_impl_names),
	};

	srand(18);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
