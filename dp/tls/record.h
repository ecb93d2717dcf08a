/*
 * Our own TLS 1.3 record layer (RFC 8446 §5), internal to dp/tls.
 *
 * Once OpenSSL completed a TLS 1.3 handshake, tls.c hands the connection
 * over to a struct wp_tls_rec and frees the SSL object: what remains per
 * connection is two AEAD states (key schedule, IV, sequence number), the
 * two traffic secrets (for KeyUpdate) and, only while bytes are in flight,
 * an input and an output buffer. The calls mirror wp_tls_conn_* (tls.h);
 * tls.c keeps the connection-level state (established/EOF/failed) and the
 * counters of that level.
 */
#ifndef WP_DP_TLS_RECORD_H
#define WP_DP_TLS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "tls.h"

/* The longest traffic secret (SHA-384). */
#define WP_TLS_REC_SECRET_MAX 48

struct wp_tls_rec;

/* Everything the record layer needs from the handshake. */
struct wp_tls_rec_params {
	uint16_t suite;         /* TLS 1.3 cipher suite (0x1301..0x1303) */
	bool client;            /* we are the client (send with the client secret) */
	const uint8_t *wsecret; /* our current sending traffic secret */
	const uint8_t *rsecret; /* the peer's, for receiving */
	size_t secret_len;      /* the suite's hash length */
	uint64_t wseq, rseq;    /* records already protected/unprotected */
	size_t cap;             /* ciphertext buffered each way before backpressure */
	uint64_t *ctrs;         /* per-core counters, outlive the record layer */
	bool handshake;         /* the secrets are handshake traffic secrets: reads
	                         * return handshake messages (hs13.c) until
	                         * wp_tls_rec_handshake_done */
};

/* True when wp_tls_rec_new supports this suite (and the suite's secret
 * length is secret_len). */
bool wp_tls_rec_suite_ok(uint16_t suite, size_t secret_len);

/* Derives keys and IVs from the secrets (which it copies; the caller
 * cleanses its own copies). NULL on allocation or crypto failure. */
struct wp_tls_rec *wp_tls_rec_new(const struct wp_tls_rec_params *p);
/* Cleanses the secrets and keys and frees everything. NULL is a no-op. */
void wp_tls_rec_free(struct wp_tls_rec *r);

/* Bytes already received/produced by OpenSSL before the switch: appended
 * to the input (ciphertext to decrypt) / output (ciphertext to send).
 * 0 or -ENOMEM. */
int wp_tls_rec_preload(struct wp_tls_rec *r, const void *in, size_t in_len, const void *out,
                       size_t out_len);

/* As wp_tls_conn_feed / _feed_eof / _read / _write / _pending / _take /
 * _shutdown / _trim. read returns >0, 0, -EPIPE (close_notify), -ECONNRESET
 * (EOF without close_notify) or -EPROTO (fatal: see wp_tls_rec_fail; an
 * alert was queued when one is due). write returns bytes accepted, 0
 * (backpressure), -EPIPE after shutdown or -EPROTO. */
ssize_t wp_tls_rec_feed(struct wp_tls_rec *r, const void *buf, size_t len);
void wp_tls_rec_feed_eof(struct wp_tls_rec *r);
ssize_t wp_tls_rec_read(struct wp_tls_rec *r, void *buf, size_t len);
ssize_t wp_tls_rec_write(struct wp_tls_rec *r, const void *buf, size_t len);
/* As wp_tls_conn_write_into. */
ssize_t wp_tls_rec_write_into(struct wp_tls_rec *r, const void *buf, size_t len,
                              const struct iovec out[2], size_t min_cut, size_t *used);
/* As wp_tls_conn_read_view / _read_done: the plaintext in place (in our
 * input buffer, good until the next call on r), then how much of it was
 * used. */
ssize_t wp_tls_rec_view(struct wp_tls_rec *r, const uint8_t **p);
void wp_tls_rec_consume(struct wp_tls_rec *r, size_t n);
size_t wp_tls_rec_pending(const struct wp_tls_rec *r);

/* Received bytes not yet decrypted: after reading until nothing is left,
 * the start of a record whose rest has not arrived. */
size_t wp_tls_rec_partial(const struct wp_tls_rec *r);
size_t wp_tls_rec_take(struct wp_tls_rec *r, void *buf, size_t len);
/* As wp_tls_conn_peek / _advance. */
size_t wp_tls_rec_peek(const struct wp_tls_rec *r, const uint8_t **p);
void wp_tls_rec_advance(struct wp_tls_rec *r, size_t n);
int wp_tls_rec_shutdown(struct wp_tls_rec *r);
/* Sends a KeyUpdate (update_requested as asked) and switches our sending
 * key. 0, -EPIPE after shutdown, -EPROTO on failure. */
int wp_tls_rec_key_update(struct wp_tls_rec *r, bool request_peer);
/* Frees both buffers when nothing waits in either direction. */
void wp_tls_rec_trim(struct wp_tls_rec *r);
/* Why the record layer failed (WP_TLS_FAIL_PEER_ALERT or _OTHER). */
enum wp_tls_fail wp_tls_rec_fail(const struct wp_tls_rec *r);

#endif /* WP_DP_TLS_RECORD_H */
