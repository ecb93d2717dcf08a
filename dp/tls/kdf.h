/*
 * TLS 1.3's hash functions for dp/tls (internal): SHA-256 and SHA-384
 * running hashes, HMAC, HKDF-Extract and HKDF-Expand-Label (RFC 5869,
 * RFC 8446 section 7.1).
 *
 * They run on OpenSSL's low-level digest functions: no provider fetch, no
 * allocation, and a running hash is a plain struct that a struct copy
 * snapshots (the handshake hashes its transcript at every step). OpenSSL
 * 3.0's EVP_KDF looks its digest up by name on every derivation; a
 * handshake makes about twenty of them.
 */
#ifndef WP_DP_TLS_KDF_H
#define WP_DP_TLS_KDF_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/sha.h>

#define WP_TLS_HASH_MAX 48 /* SHA-384 */

enum wp_tls_hash_alg {
	WP_TLS_SHA256,
	WP_TLS_SHA384,
};

struct wp_tls_hash {
	union {
		SHA256_CTX s256;
		SHA512_CTX s512;
	} u;
	uint8_t alg; /* enum wp_tls_hash_alg */
};

/* The digest length of alg (32 or 48). */
size_t wp_tls_hash_len(enum wp_tls_hash_alg alg);
/* The hash with that output length (32 or 48); -1 for any other. */
int wp_tls_hash_alg_of(size_t len);

void wp_tls_hash_init(struct wp_tls_hash *h, enum wp_tls_hash_alg alg);
void wp_tls_hash_update(struct wp_tls_hash *h, const void *p, size_t n);
/* The digest of what was hashed so far; h stays usable (it is copied). */
void wp_tls_hash_peek(const struct wp_tls_hash *h, uint8_t *out);

/* An HMAC key whose two padded blocks are already hashed: every HMAC
 * under it (several derivations from one secret) then costs two
 * compression rounds fewer. */
struct wp_tls_hmac_key {
	struct wp_tls_hash in, out;
};

void wp_tls_hmac_key_init(struct wp_tls_hmac_key *k, enum wp_tls_hash_alg alg, const uint8_t *key,
                          size_t key_len);
/* HMAC under k of data into out (the hash length). */
void wp_tls_hmac_with(const struct wp_tls_hmac_key *k, const void *data, size_t len, uint8_t *out);
/* HKDF-Expand-Label with the secret already made an HMAC key (below). */
int wp_tls_expand_label_with(const struct wp_tls_hmac_key *k, const char *label,
                             const uint8_t *context, size_t context_len, uint8_t *out,
                             size_t out_len);

/* HMAC-<alg>(key, data) into out (the hash length). */
void wp_tls_hmac(enum wp_tls_hash_alg alg, const uint8_t *key, size_t key_len, const void *data,
                 size_t len, uint8_t *out);
/* HKDF-Extract(salt, ikm) into out (the hash length). */
void wp_tls_hkdf_extract(enum wp_tls_hash_alg alg, const uint8_t *salt, size_t salt_len,
                         const uint8_t *ikm, size_t ikm_len, uint8_t *out);
/* HKDF-Expand-Label(secret, label, context, out_len); secret is the hash
 * length. 0, or -EINVAL for a label over 12 bytes, a context over the
 * hash length or out_len over 255 hash lengths. */
int wp_tls_expand_label(enum wp_tls_hash_alg alg, const uint8_t *secret, const char *label,
                        const uint8_t *context, size_t context_len, uint8_t *out, size_t out_len);

#endif /* WP_DP_TLS_KDF_H */
