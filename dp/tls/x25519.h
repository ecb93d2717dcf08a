/*
 * The X25519 key share of our own TLS 1.3 server handshake (hs13.c),
 * dp/tls internal: a fresh key pair for every handshake and the agreement
 * with the client's share.
 *
 * A server's ephemeral public key is a multiple of a fixed point, computed
 * with precomputed tables on the curve's Edwards form and mapped to the
 * X25519 coordinate, u = (1 + y) / (1 - y). OpenSSL 3.0 does the same with
 * portable 32-bit field arithmetic; libsodium's fixed-base multiplication
 * (64-bit limbs) costs about a third of it here. Each thread makes its key
 * pairs in batches, sharing the map's field inversion among the batch
 * (Montgomery's trick), and hands each out once; the agreement is
 * libsodium's ladder.
 * See docs/design.md, "TLS handshakes".
 */
#ifndef WP_DP_TLS_X25519_H
#define WP_DP_TLS_X25519_H

#include <stdint.h>

/* Takes this thread's next unused key pair: our public share into pub and
 * the secret agreed with the peer's share into shared. 0; -EINVAL if the
 * peer's share is a low-order point (the secret would be all zeros: the
 * peer's fault, illegal_parameter); -EIO if a library call failed (ours,
 * internal_error). The private key is wiped either way. */
int wp_tls_x25519_share(const uint8_t peer[32], uint8_t pub[32], uint8_t shared[32]);

#endif
