/*
 * Our own TLS 1.3 server handshake (hs13.c), internal to dp/tls: the
 * calls tls.c makes for an inbound connection before it is established.
 */
#ifndef WP_DP_TLS_HS13_H
#define WP_DP_TLS_HS13_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct wp_tls_ctx;
struct wp_tls_conn;
struct wp_tls_hs13;

/* What the context keeps for it: our Certificate message, built once, and
 * the signature scheme of our key. */
struct wp_tls_hs13_cert {
	/* NULL: our key's type is not one we sign with (OpenSSL does every
	 * handshake) */
	uint8_t *msg;
	size_t len;
	uint16_t scheme;
};

/* Builds t->own from t->server's certificate, chain and key. 0, or -ENOMEM
 * (a key we cannot sign with is not an error: t->own.msg stays NULL). */
int wp_tls_hs13_ctx_init(struct wp_tls_ctx *t);
void wp_tls_hs13_ctx_fini(struct wp_tls_ctx *t);

struct wp_tls_hs13 *wp_tls_hs13_new(void);
void wp_tls_hs13_free(struct wp_tls_hs13 *h);

/* Bytes from TCP before we answered (the ClientHello): copied, up to the
 * connection's buffer cap; the count taken. */
ssize_t wp_tls_hs13_feed(struct wp_tls_conn *c, const void *buf, size_t len);
void wp_tls_hs13_feed_eof(struct wp_tls_hs13 *h);

/* What wp_tls_hs13_step answers besides 1 (established), 0 (more input)
 * and -EPROTO (failed: c->fail says why, an alert is queued). */
#define WP_TLS_HS13_OPENSSL 2 /* a ClientHello we leave to OpenSSL: replay the bytes */

int wp_tls_hs13_step(struct wp_tls_conn *c);

/* After WP_TLS_HS13_OPENSSL: every byte received so far, for OpenSSL. */
size_t wp_tls_hs13_received(const struct wp_tls_hs13 *h, const uint8_t **p);

/* Output before there is a record layer: the alert that refuses a
 * ClientHello (peek, then advance by what TCP took). */
size_t wp_tls_hs13_peek(const struct wp_tls_hs13 *h, const uint8_t **p);
void wp_tls_hs13_advance(struct wp_tls_hs13 *h, size_t n);

#endif /* WP_DP_TLS_HS13_H */
