/*
 * X25519 key shares for hs13.c (see x25519.h): per-thread batches of key
 * pairs made by fixed-base multiplication on the Edwards form of the
 * curve, the map to the Montgomery u-coordinate done for the whole batch
 * with one inversion, each pair handed out once and wiped.
 *
 * The map runs on OpenSSL's BIGNUMs modulo p = 2^255 - 19. Its inputs and
 * outputs are public (y follows from the u we send), so the variable-time
 * inversion leaks nothing; the secret scalars only ever meet libsodium's
 * constant-time code.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sodium.h>

#include "x25519.h"

/* Key pairs per inversion. The inversion costs ~20 us on this machine, so
 * ~2.5 us a key; a refill, ~160 us in all, then stalls the worker no longer
 * than one flight of a full handshake does (32 a batch saved ~2 us a key
 * and stalled it for ~640 us). */
#define BATCH 8

struct pool {
	uint8_t priv[BATCH][32]; /* clamped scalars; used ones are zeros */
	uint8_t pub[BATCH][32];
	unsigned left; /* pairs [0, left) are unused */
};

static __thread struct pool pool;
static __thread bool pool_owned; /* the thread's exit wipes the pool */
static pthread_key_t pool_key;
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static bool lib_ok;
static BIGNUM *field_p; /* 2^255 - 19 */

static void pool_wipe(void *arg)
{
	OPENSSL_cleanse(arg, sizeof(struct pool));
}

static void lib_init(void)
{
	field_p = BN_new();
	lib_ok = sodium_init() >= 0 && field_p != NULL && BN_set_bit(field_p, 255) &&
	         BN_sub_word(field_p, 19) && pthread_key_create(&pool_key, pool_wipe) == 0;
}

/* u = (1 + y) / (1 - y) for each pair, from the Edwards points [priv]B:
 * num and den in Montgomery form, acc[i] the product of den[0..i], one
 * inversion of acc[BATCH - 1], then back down the products. */
static bool map_to_u(struct pool *pl, BN_CTX *bc, BN_MONT_CTX *m)
{
	BIGNUM *num[BATCH], *den[BATCH], *acc[BATCH], *t = BN_CTX_get(bc), *inv = BN_CTX_get(bc);
	uint8_t ed[32];
	bool ok = true;

	for (int i = 0; ok && i < BATCH; i++) {
		num[i] = BN_CTX_get(bc);
		den[i] = BN_CTX_get(bc);
		acc[i] = BN_CTX_get(bc);
		/* identity only for a scalar that is 0 mod the group order; a
		 * clamped one never is */
		ok = acc[i] != NULL && crypto_scalarmult_ed25519_base_noclamp(ed, pl->priv[i]) == 0;
		ed[31] &= 0x7f; /* y alone; the top bit is x's sign */
		ok = ok && BN_lebin2bn(ed, 32, t) != NULL &&
		     BN_mod_add(num[i], BN_value_one(), t, field_p, bc) &&
		     BN_mod_sub(den[i], BN_value_one(), t, field_p, bc) &&
		     BN_to_montgomery(num[i], num[i], m, bc) &&
		     BN_to_montgomery(den[i], den[i], m, bc) &&
		     (i == 0 ? BN_copy(acc[0], den[0]) != NULL
		             : BN_mod_mul_montgomery(acc[i], acc[i - 1], den[i], m, bc));
	}
	ok = ok && BN_from_montgomery(inv, acc[BATCH - 1], m, bc) &&
	     BN_mod_inverse(inv, inv, field_p, bc) != NULL && BN_to_montgomery(inv, inv, m, bc);
	/* inv = 1 / (den[0] ... den[i]) at each step */
	for (int i = BATCH - 1; ok && i >= 0; i--)
		ok = (i > 0 ? BN_mod_mul_montgomery(t, inv, acc[i - 1], m, bc)
		            : BN_copy(t, inv) != NULL) &&
		     BN_mod_mul_montgomery(inv, inv, den[i], m, bc) &&
		     BN_mod_mul_montgomery(t, t, num[i], m, bc) &&
		     BN_from_montgomery(t, t, m, bc) && BN_bn2lebinpad(t, pl->pub[i], 32) == 32;
	return ok;
}

static bool refill(struct pool *pl)
{
	BN_CTX *bc;
	BN_MONT_CTX *m;
	bool ok;

	if (!pool_owned) {
		if (pthread_setspecific(pool_key, pl) != 0)
			return false;
		pool_owned = true;
	}
	if (RAND_priv_bytes(&pl->priv[0][0], sizeof(pl->priv)) != 1)
		return false;
	for (int i = 0; i < BATCH; i++) {
		pl->priv[i][0] &= 248;
		pl->priv[i][31] &= 127;
		pl->priv[i][31] |= 64;
	}
	bc = BN_CTX_new();
	m = BN_MONT_CTX_new();
	ok = bc != NULL && m != NULL && BN_MONT_CTX_set(m, field_p, bc);
	if (ok) {
		BN_CTX_start(bc);
		ok = map_to_u(pl, bc, m);
		BN_CTX_end(bc);
	}
	BN_MONT_CTX_free(m);
	BN_CTX_free(bc);
	if (!ok)
		OPENSSL_cleanse(pl->priv, sizeof(pl->priv));
	pl->left = ok ? BATCH : 0;
	return ok;
}

int wp_tls_x25519_share(const uint8_t peer[32], uint8_t pub[32], uint8_t shared[32])
{
	unsigned i;
	int rc;

	pthread_once(&lib_once, lib_init);
	if (!lib_ok || (pool.left == 0 && !refill(&pool)))
		return -EIO;
	i = --pool.left;
	memcpy(pub, pool.pub[i], 32);
	/* -1 when the result is all zeros: a low-order peer share */
	rc = crypto_scalarmult_curve25519(shared, pool.priv[i], peer) == 0 ? 0 : -EINVAL;
	OPENSSL_cleanse(pool.priv[i], 32);
	return rc;
}
