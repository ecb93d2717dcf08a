/*
 * A real OpenSSL peer over memory BIOs for the dp/tls unit tests: a plain
 * SSL client or server (test PKI certificates, ALPN h2) that talks to one
 * of our wp_tls_conn, with the helpers that pump a handshake and read.
 */
#ifndef WP_TESTS_UNIT_DP_TLS_PEER_H
#define WP_TESTS_UNIT_DP_TLS_PEER_H

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_pair.h"

struct peer {
	SSL_CTX *ctx;
	SSL *ssl; /* owns both BIOs */
	BIO *r, *w;
};

static const unsigned char h2_alpn[] = "\x02h2";

static inline int peer_alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                               const unsigned char *in, unsigned int inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto((unsigned char **)out, outlen, h2_alpn, 3, in, inlen) ==
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_OK;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* A fresh SSL on the peer's context. */
static inline void peer_ssl(struct peer *p, bool server)
{
	p->ssl = SSL_new(p->ctx);
	p->r = BIO_new(BIO_s_mem());
	p->w = BIO_new(BIO_s_mem());
	assert_true(p->ssl != NULL && p->r != NULL && p->w != NULL);
	BIO_set_mem_eof_return(p->r, -1);
	BIO_set_mem_eof_return(p->w, -1);
	SSL_set_bio(p->ssl, p->r, p->w);
	if (server)
		SSL_set_accept_state(p->ssl);
	else
		SSL_set_connect_state(p->ssl);
}

/* An OpenSSL server or client with <who>'s certificate; suites NULL: the
 * OpenSSL default (all three TLS 1.3 suites). */
static inline void peer_new(struct peer *p, bool server, const char *who, const char *suites)
{
	char cert[512], key[512], ca[512], n[64];

	p->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	assert_non_null(p->ctx);
	assert_int_equal(SSL_CTX_set_min_proto_version(p->ctx, TLS1_3_VERSION), 1);
	snprintf(n, sizeof(n), "%s.pem", who);
	path(cert, sizeof(cert), n);
	snprintf(n, sizeof(n), "%s-key.pem", who);
	path(key, sizeof(key), n);
	path(ca, sizeof(ca), "ca.pem");
	assert_int_equal(SSL_CTX_use_certificate_chain_file(p->ctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(p->ctx, key, SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_load_verify_locations(p->ctx, ca, NULL), 1);
	SSL_CTX_set_verify(p->ctx, SSL_VERIFY_PEER, NULL);
	if (suites != NULL)
		assert_int_equal(SSL_CTX_set_ciphersuites(p->ctx, suites), 1);
	if (server) {
		SSL_CTX_set_alpn_select_cb(p->ctx, peer_alpn_cb, NULL);
		SSL_CTX_set_num_tickets(p->ctx, 2);
	} else {
		assert_int_equal(SSL_CTX_set_alpn_protos(p->ctx, h2_alpn, 3), 0);
	}
	peer_ssl(p, server);
}

static inline void peer_free(struct peer *p)
{
	SSL_free(p->ssl);
	SSL_CTX_free(p->ctx);
}

/* Everything our connection produced, to the peer. */
static inline void to_peer(struct wp_tls_conn *c, struct peer *p)
{
	unsigned char buf[16384];
	size_t n;

	while ((n = wp_tls_conn_take(c, buf, sizeof(buf))) > 0)
		assert_int_equal(BIO_write(p->r, buf, (int)n), (int)n);
}

/* Handshake between our connection and the peer. */
static inline void peer_pump(struct wp_tls_conn *c, struct peer *p)
{
	unsigned char buf[16384];
	int n;

	for (int i = 0; i < 10; i++) {
		if (!wp_tls_conn_established(c))
			(void)wp_tls_conn_handshake(c);
		to_peer(c, p);
		ERR_clear_error();
		if (!SSL_is_init_finished(p->ssl))
			(void)SSL_do_handshake(p->ssl);
		while ((n = BIO_read(p->w, buf, sizeof(buf))) > 0)
			assert_int_equal(wp_tls_conn_feed(c, buf, (size_t)n), n);
	}
	assert_true(wp_tls_conn_established(c));
	assert_true(SSL_is_init_finished(p->ssl));
}

/* The peer reads what is there: bytes read, -1 after close_notify, -2 on
 * an error (its reason in *reason). */
static inline int peer_recv_ex(struct peer *p, unsigned char *buf, size_t len, int *reason)
{
	size_t got = 0;

	ERR_clear_error();
	while (got < len) {
		int n = SSL_read(p->ssl, buf + got, (int)WP_MIN(len - got, (size_t)INT_MAX));
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		switch (SSL_get_error(p->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			return (int)got;
		case SSL_ERROR_ZERO_RETURN:
			return got > 0 ? (int)got : -1;
		default:
			if (reason != NULL)
				*reason = ERR_GET_REASON(ERR_peek_error());
			ERR_clear_error();
			return got > 0 ? (int)got : -2;
		}
	}
	return (int)got;
}

static inline int peer_recv(struct peer *p, unsigned char *buf, size_t len)
{
	return peer_recv_ex(p, buf, len, NULL);
}

#endif /* WP_TESTS_UNIT_DP_TLS_PEER_H */
