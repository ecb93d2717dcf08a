/*
 * Unit tests for dp/tls/x25519.c, the key shares of our own handshake:
 * every share, across several batches and in two threads at once, agrees
 * with OpenSSL's X25519 (the peer's secret computed by OpenSSL from our
 * public key equals ours, so our public key is right); no public key
 * repeats; low-order peer shares are refused and the pool goes on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/evp.h>

#include "x25519.h"

#define SHARES 100 /* a dozen of x25519.c's batches */

/* One share against a fresh OpenSSL key pair; true when both sides agree.
 * Our public key is copied into pub. */
static bool agrees_with_openssl(uint8_t pub[32])
{
	EVP_PKEY *peer = EVP_PKEY_Q_keygen(NULL, NULL, "X25519"), *ours = NULL;
	EVP_PKEY_CTX *d = NULL;
	uint8_t peer_pub[32], shared[32], theirs[32];
	size_t n = 32, sl = 32;
	bool ok = peer != NULL && EVP_PKEY_get_raw_public_key(peer, peer_pub, &n) == 1 &&
	          wp_tls_x25519_share(peer_pub, pub, shared) == 0 &&
	          (ours = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, 32)) != NULL &&
	          (d = EVP_PKEY_CTX_new(peer, NULL)) != NULL && EVP_PKEY_derive_init(d) == 1 &&
	          EVP_PKEY_derive_set_peer(d, ours) == 1 && EVP_PKEY_derive(d, theirs, &sl) == 1 &&
	          sl == 32 && memcmp(shared, theirs, 32) == 0;

	EVP_PKEY_CTX_free(d);
	EVP_PKEY_free(ours);
	EVP_PKEY_free(peer);
	return ok;
}

static void *run_shares(void *arg)
{
	uint8_t(*pubs)[32] = arg;

	for (int i = 0; i < SHARES; i++)
		if (!agrees_with_openssl(pubs[i]))
			return (void *)1;
	return NULL;
}

static void test_agrees_with_openssl(void **state)
{
	static uint8_t pubs[SHARES][32];

	(void)state;
	assert_null(run_shares(pubs));
	for (int i = 0; i < SHARES; i++)
		for (int j = i + 1; j < SHARES; j++)
			assert_memory_not_equal(pubs[i], pubs[j], 32);
}

/* Each thread has its own pool: two at once, no key pair shared. */
static void test_two_threads(void **state)
{
	static uint8_t pubs[2][SHARES][32];
	pthread_t t[2];
	void *rc;

	(void)state;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, run_shares, pubs[i]), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(t[i], &rc), 0);
		assert_null(rc);
	}
	for (int i = 0; i < SHARES; i++)
		for (int j = 0; j < SHARES; j++)
			assert_memory_not_equal(pubs[0][i], pubs[1][j], 32);
}

/* u = 0 and u = 1 lie in the small subgroup: the secret would be zeros. */
static void test_low_order_refused(void **state)
{
	uint8_t peer[32] = {0}, pub[32], shared[32];

	(void)state;
	assert_int_equal(wp_tls_x25519_share(peer, pub, shared), -EINVAL);
	peer[0] = 1;
	assert_int_equal(wp_tls_x25519_share(peer, pub, shared), -EINVAL);
	assert_true(agrees_with_openssl(pub));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_agrees_with_openssl),
	        cmocka_unit_test(test_two_threads),
	        cmocka_unit_test(test_low_order_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
