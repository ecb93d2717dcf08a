/*
 * TLS 1.3's hash functions (see kdf.h): SHA-2 through OpenSSL's
 * low-level SHA256_* / SHA384_* calls, which OpenSSL 3 deprecates in
 * favour of EVP but keeps; EVP would fetch the digest from the provider
 * store on each use and allocate a context for it.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init and friends */

#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>

#include "kdf.h"

#define BLOCK_MAX 128 /* SHA-384's block */

size_t wp_tls_hash_len(enum wp_tls_hash_alg alg)
{
	return alg == WP_TLS_SHA384 ? 48 : 32;
}

int wp_tls_hash_alg_of(size_t len)
{
	return len == 32 ? WP_TLS_SHA256 : len == 48 ? WP_TLS_SHA384 : -1;
}

static size_t block_len(enum wp_tls_hash_alg alg)
{
	return alg == WP_TLS_SHA384 ? 128 : 64;
}

void wp_tls_hash_init(struct wp_tls_hash *h, enum wp_tls_hash_alg alg)
{
	h->alg = (uint8_t)alg;
	if (alg == WP_TLS_SHA384)
		SHA384_Init(&h->u.s512);
	else
		SHA256_Init(&h->u.s256);
}

void wp_tls_hash_update(struct wp_tls_hash *h, const void *p, size_t n)
{
	if (h->alg == WP_TLS_SHA384)
		SHA384_Update(&h->u.s512, p, n);
	else
		SHA256_Update(&h->u.s256, p, n);
}

static void hash_final(struct wp_tls_hash *h, uint8_t *out)
{
	if (h->alg == WP_TLS_SHA384)
		SHA384_Final(out, &h->u.s512);
	else
		SHA256_Final(out, &h->u.s256);
}

void wp_tls_hash_peek(const struct wp_tls_hash *h, uint8_t *out)
{
	struct wp_tls_hash t = *h;

	hash_final(&t, out);
	OPENSSL_cleanse(&t, sizeof(t));
}

void wp_tls_hmac_key_init(struct wp_tls_hmac_key *k, enum wp_tls_hash_alg alg, const uint8_t *key,
                          size_t key_len)
{
	size_t bl = block_len(alg);
	uint8_t pad[BLOCK_MAX], kb[BLOCK_MAX] = {0};

	if (key_len > bl) {
		wp_tls_hash_init(&k->in, alg);
		wp_tls_hash_update(&k->in, key, key_len);
		hash_final(&k->in, kb);
	} else {
		memcpy(kb, key, key_len);
	}
	for (size_t i = 0; i < bl; i++)
		pad[i] = kb[i] ^ 0x36;
	wp_tls_hash_init(&k->in, alg);
	wp_tls_hash_update(&k->in, pad, bl);
	for (size_t i = 0; i < bl; i++)
		pad[i] = kb[i] ^ 0x5c;
	wp_tls_hash_init(&k->out, alg);
	wp_tls_hash_update(&k->out, pad, bl);
	OPENSSL_cleanse(kb, sizeof(kb));
	OPENSSL_cleanse(pad, sizeof(pad));
}

void wp_tls_hmac_with(const struct wp_tls_hmac_key *k, const void *data, size_t len, uint8_t *out)
{
	struct wp_tls_hash h = k->in;
	uint8_t inner[WP_TLS_HASH_MAX];

	wp_tls_hash_update(&h, data, len);
	hash_final(&h, inner);
	h = k->out;
	wp_tls_hash_update(&h, inner, wp_tls_hash_len(h.alg));
	hash_final(&h, out);
	OPENSSL_cleanse(inner, sizeof(inner));
	OPENSSL_cleanse(&h, sizeof(h));
}

void wp_tls_hmac(enum wp_tls_hash_alg alg, const uint8_t *key, size_t key_len, const void *data,
                 size_t len, uint8_t *out)
{
	struct wp_tls_hmac_key k;

	wp_tls_hmac_key_init(&k, alg, key, key_len);
	wp_tls_hmac_with(&k, data, len, out);
	OPENSSL_cleanse(&k, sizeof(k));
}

void wp_tls_hkdf_extract(enum wp_tls_hash_alg alg, const uint8_t *salt, size_t salt_len,
                         const uint8_t *ikm, size_t ikm_len, uint8_t *out)
{
	static const uint8_t zeros[WP_TLS_HASH_MAX];

	if (salt_len == 0) {
		salt = zeros;
		salt_len = wp_tls_hash_len(alg);
	}
	wp_tls_hmac(alg, salt, salt_len, ikm, ikm_len, out);
}

int wp_tls_expand_label(enum wp_tls_hash_alg alg, const uint8_t *secret, const char *label,
                        const uint8_t *context, size_t context_len, uint8_t *out, size_t out_len)
{
	struct wp_tls_hmac_key k;
	int rc;

	wp_tls_hmac_key_init(&k, alg, secret, wp_tls_hash_len(alg));
	rc = wp_tls_expand_label_with(&k, label, context, context_len, out, out_len);
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

int wp_tls_expand_label_with(const struct wp_tls_hmac_key *k, const char *label,
                             const uint8_t *context, size_t context_len, uint8_t *out,
                             size_t out_len)
{
	size_t hl = wp_tls_hash_len(k->in.alg), llen = strlen(label), n = 0, done = 0;
	uint8_t info[2 + 1 + 6 + 12 + 1 + WP_TLS_HASH_MAX + 1], t[WP_TLS_HASH_MAX];
	uint8_t msg[WP_TLS_HASH_MAX + sizeof(info)];

	if (llen > 12 || context_len > hl || out_len > 255 * hl)
		return -EINVAL;
	info[n++] = (uint8_t)(out_len >> 8);
	info[n++] = (uint8_t)out_len;
	info[n++] = (uint8_t)(6 + llen);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, llen);
	n += llen;
	info[n++] = (uint8_t)context_len;
	if (context_len > 0)
		memcpy(info + n, context, context_len);
	n += context_len;
	/* T(i) = HMAC(secret, T(i-1) || info || i) */
	for (uint8_t i = 1; done < out_len; i++) {
		size_t m = 0, take;

		if (i > 1) {
			memcpy(msg, t, hl);
			m = hl;
		}
		memcpy(msg + m, info, n);
		m += n;
		msg[m++] = i;
		wp_tls_hmac_with(k, msg, m, t);
		take = out_len - done < hl ? out_len - done : hl;
		memcpy(out + done, t, take);
		done += take;
	}
	OPENSSL_cleanse(t, sizeof(t));
	OPENSSL_cleanse(msg, sizeof(msg));
	return 0;
}
