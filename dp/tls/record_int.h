/*
 * The record layer's internals (record.c), shared with its white-box tests
 * and fuzzers only: the connection state, the limits of a record, and the
 * functions that seal a crafted inner plaintext and switch a direction's
 * keys, with which a test plays a peer that sends what ours never would.
 * Not part of the module's interface (record.h).
 */
#ifndef WP_DP_TLS_RECORD_INT_H
#define WP_DP_TLS_RECORD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "record.h"

#define REC_HDR      5
#define REC_TAG      16
#define REC_IV       12
#define REC_MAX_PT   16384                   /* 2^14 */
#define REC_MAX_CT   (REC_MAX_PT + 256)      /* 2^14 + 256 */
#define REC_MAX      (REC_HDR + REC_MAX_CT)  /* one whole record on the wire */
#define REC_OVERHEAD (REC_HDR + 1 + REC_TAG) /* what we add per record */

enum rec_state {
	R_OPEN,
	R_CLOSED, /* close_notify received: reads return -EPIPE */
	R_RESET,  /* EOF from TCP without close_notify: -ECONNRESET */
	R_FAILED, /* -EPROTO */
};

struct suite {
	uint16_t id;
	uint8_t key_len;
	uint8_t hash_len;
	enum wp_tls_aead_alg alg;
};

struct dir {
	struct wp_tls_aead aead;
	uint64_t seq;
	uint8_t iv[REC_IV];
	uint8_t secret[WP_TLS_REC_SECRET_MAX];
};

struct wp_tls_rec {
	const struct suite *suite;
	uint64_t *ctrs;
	struct dir rd, wr;
	uint8_t *in;     /* OPENSSL_malloc'ed, NULL while idle */
	uint32_t in_cap; /* bytes allocated */
	uint32_t in_off; /* first byte not yet decrypted */
	uint32_t in_len; /* bytes held */
	uint32_t pt_off; /* plaintext of the current record not yet read */
	uint32_t pt_len;
	uint8_t *out; /* OPENSSL_malloc'ed, NULL while idle */
	uint32_t out_cap, out_off, out_len;
	uint32_t cap;
	uint32_t hs_left;  /* body bytes of the handshake message being read */
	uint8_t hs_hdr[4]; /* its header, hs_have bytes of it so far */
	uint8_t hs_have;
	uint8_t state; /* enum rec_state */
	uint8_t fail;  /* enum wp_tls_fail */
	bool client;
	bool eof_fed;
	bool shut_sent;
	bool viewing;     /* a view of the plaintext is out: the input stays put */
	bool handshaking; /* hs13.c's handshake: plaintext is handshake messages */
};

/* Records one key protects before we send a KeyUpdate of our own; the
 * tests lower it. 2^24 stays within AES-GCM's limit of 2^24.5 (RFC 8446
 * section 5.5). */
extern uint64_t wp_tls_rec_rekey_after;

/* Page-sized record buffers the calling thread holds for reuse (given
 * back by wp_tls_rec_trim, at most 256). */
unsigned wp_tls_rec_cached(void);

/* Makes room in the output for <need> more bytes: 0, or -ENOMEM (failed). */
int wp_tls_rec_out_room(struct wp_tls_rec *r, size_t need);

/* Seals one record on the sending key: <len> bytes of <pt>, then the
 * content type byte <type> (a test passes 0 with content, type and padding
 * in <pt>: the 0 is one more byte of padding). The caller made room for
 * len + REC_OVERHEAD (wp_tls_rec_out_room). 0 or -EPROTO. */
int wp_tls_rec_seal(struct wp_tls_rec *r, uint8_t type, const void *pt, size_t len);

/* Moves direction <d> of <r> to its next traffic secret (KeyUpdate,
 * RFC 8446 section 7.2), <enc> when it is the sending one. 0 or an error. */
int wp_tls_rec_update_dir(struct wp_tls_rec *r, struct dir *d, bool enc);

/* The handshake (hs13.c) moves one direction to its next traffic secret
 * (the sequence number restarts): the server's sending side right after
 * its Finished (RFC 8446 A.2), so that what follows, alerts included, is
 * under the application key. 0, or -EPROTO (failed, alert queued). */
int wp_tls_rec_set_secret(struct wp_tls_rec *r, bool write, const uint8_t *secret);

/* The client's Finished verified: the receiving side moves to the
 * application secret rsecret and reads return application data again.
 * 0, or -EPROTO. */
int wp_tls_rec_handshake_done(struct wp_tls_rec *r, const uint8_t *rsecret);

/* Sends the fatal alert <alert> (on the current sending key, unless we
 * closed already) and fails the record layer. Returns -EPROTO. */
int wp_tls_rec_abort(struct wp_tls_rec *r, uint8_t alert);

#endif /* WP_DP_TLS_RECORD_INT_H */
