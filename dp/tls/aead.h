/*
 * The record layer's AEAD (RFC 8446 §5.2), internal to dp/tls: one
 * direction's key, a record sealed in pieces (TCP's send ring wraps once),
 * a record opened in place.
 *
 * AES-128-GCM and AES-256-GCM run on intel-ipsec-mb, the library under
 * DPDK's own AES-GCM crypto device: its direct GCM functions for the CPU
 * found at start (VAES and VPCLMULQDQ on AVX-512 where present, else AVX2,
 * AVX or SSE), taken once from a process-wide manager and only read after.
 * OpenSSL 3.0, Debian 12's, has no VAES path and costs a few EVP calls of
 * set-up per record. ChaCha20-Poly1305 runs on OpenSSL's EVP, and so does
 * every suite in a build without intel-ipsec-mb (WP_HAVE_IPSEC_MB unset).
 * Why, with figures: docs/design.md, "Record crypto".
 */
#ifndef WP_DP_TLS_AEAD_H
#define WP_DP_TLS_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef WP_HAVE_IPSEC_MB
#include <intel-ipsec-mb.h>
#endif

#define WP_TLS_AEAD_IV  12
#define WP_TLS_AEAD_TAG 16

enum wp_tls_aead_alg {
	WP_TLS_AES_128_GCM,
	WP_TLS_AES_256_GCM,
	WP_TLS_CHACHA20_POLY1305,
};

/* One direction's key. Zeroed is empty (wp_tls_aead_clear leaves it so). */
struct wp_tls_aead {
	void *impl; /* intel-ipsec-mb's expanded key, or an EVP_CIPHER_CTX */
	uint8_t alg;
	bool gcm; /* impl is intel-ipsec-mb's */
};

/* One record being sealed: begin, update (any number of pieces), end. */
struct wp_tls_aead_seal {
	const struct wp_tls_aead *a;
#ifdef WP_HAVE_IPSEC_MB
	struct gcm_context_data gcm;
#endif
};

/* Whether <alg> can key a connection in this process. */
bool wp_tls_aead_available(enum wp_tls_aead_alg alg);

/* What runs <alg>, for the log: "intel-ipsec-mb <version> (<arch>)" or
 * "OpenSSL <version>". */
const char *wp_tls_aead_impl(enum wp_tls_aead_alg alg);

/* (Re)keys <a> for <alg> with <key> (16 or 32 bytes, the algorithm's),
 * sealing when <enc>. 0, -ENOMEM or -EPROTO (libcrypto refused). */
int wp_tls_aead_set_key(struct wp_tls_aead *a, enum wp_tls_aead_alg alg, const uint8_t *key,
                        bool enc);

/* Forgets the key (cleansed) and frees what holds it. */
void wp_tls_aead_clear(struct wp_tls_aead *a);

/* Seals one record: the nonce <iv>, the additional data <aad>; then each
 * piece of plaintext into as many bytes of ciphertext (pieces may have any
 * length); then the tag. 0, or -EPROTO (libcrypto failed; the record is
 * lost). */
int wp_tls_aead_seal_begin(struct wp_tls_aead_seal *s, const struct wp_tls_aead *a,
                           const uint8_t iv[WP_TLS_AEAD_IV], const uint8_t *aad, size_t aad_len);
int wp_tls_aead_seal_update(struct wp_tls_aead_seal *s, uint8_t *out, const uint8_t *in,
                            size_t len);
int wp_tls_aead_seal_end(struct wp_tls_aead_seal *s, uint8_t tag[WP_TLS_AEAD_TAG]);

/* Decrypts <len> bytes of <buf> in place and checks them against <tag>:
 * true when authentic (a false leaves <buf> garbage). */
bool wp_tls_aead_open(const struct wp_tls_aead *a, const uint8_t iv[WP_TLS_AEAD_IV],
                      const uint8_t *aad, size_t aad_len, uint8_t *buf, size_t len,
                      const uint8_t tag[WP_TLS_AEAD_TAG]);

#endif /* WP_DP_TLS_AEAD_H */
