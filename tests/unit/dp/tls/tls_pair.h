/*
 * The pair fixture of the dp/tls unit tests: a server and a client
 * wp_tls_conn on contexts made from the test PKI (tests/pki/mkpki.sh, made
 * by the test's main into pki[]), handshakes pumped in memory, the two
 * sides' counters in sctr and cctr.
 */
#ifndef WP_TESTS_UNIT_DP_TLS_PAIR_H
#define WP_TESTS_UNIT_DP_TLS_PAIR_H

#include <stdio.h>
#include <string.h>

#include "tls_int.h"
#include "wp/counters.h"

static char pki[256];
static uint64_t sctr[WP_CTR_MAX], cctr[WP_CTR_MAX];

static inline void path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", pki, name);
}

/* A context whose own certificate is <who> ("waypoint", "productpage"...);
 * openssl_hs: OpenSSL runs its server handshakes, not hs13.c; the n TLS 1.3
 * suites (0: the default list). */
static inline struct wp_tls_ctx *mkctx_suites(const char *who, bool tls12, const char *alias,
                                              bool openssl_hs, const uint16_t *suites, unsigned n)
{
	char cert[512], key[512], ca[512], n1[64], n2[64];
	struct wp_tls_config cfg = {0};
	struct wp_tls_ctx *t;
	int err = 0;

	snprintf(n1, sizeof(n1), "%s.pem", who);
	snprintf(n2, sizeof(n2), "%s-key.pem", who);
	path(cert, sizeof(cert), n1);
	path(key, sizeof(key), n2);
	path(ca, sizeof(ca), "ca.pem");
	cfg.cert_file = cert;
	cfg.key_file = key;
	cfg.ca_file = ca;
	cfg.trust_domain = "cluster.local";
	cfg.aliases[0] = alias;
	cfg.allow_tls12 = tls12;
	cfg.openssl_handshake = openssl_hs;
	for (unsigned i = 0; i < n; i++)
		cfg.suites13[i] = suites[i];
	cfg.n_suites13 = n;
	t = wp_tls_ctx_new(&cfg, &err);
	assert_non_null(t);
	assert_int_equal(err, 0);
	return t;
}

static inline struct wp_tls_ctx *mkctx_hs(const char *who, bool tls12, const char *alias,
                                          bool openssl_hs)
{
	return mkctx_suites(who, tls12, alias, openssl_hs, NULL, 0);
}

static inline struct wp_tls_ctx *mkctx(const char *who, bool tls12, const char *alias)
{
	return mkctx_hs(who, tls12, alias, false);
}

/* Moves ciphertext both ways and steps both handshakes until nothing moves. */
static inline void pump(struct wp_tls_conn *s, struct wp_tls_conn *c)
{
	unsigned char buf[16384];
	int rounds = 0;
	bool moved;

	do {
		size_t n;
		moved = false;
		if (!wp_tls_conn_failed(c))
			(void)wp_tls_conn_handshake(c);
		while ((n = wp_tls_conn_take(c, buf, sizeof(buf))) > 0) {
			assert_int_equal(wp_tls_conn_feed(s, buf, n), (ssize_t)n);
			moved = true;
		}
		if (!wp_tls_conn_failed(s))
			(void)wp_tls_conn_handshake(s);
		while ((n = wp_tls_conn_take(s, buf, sizeof(buf))) > 0) {
			if (!wp_tls_conn_failed(c))
				assert_int_equal(wp_tls_conn_feed(c, buf, n), (ssize_t)n);
			moved = true;
		}
		assert_true(++rounds < 50);
	} while (moved);
}

static inline void reset_ctrs(void)
{
	memset(sctr, 0, sizeof(sctr));
	memset(cctr, 0, sizeof(cctr));
}

struct pair {
	struct wp_tls_ctx *sctx, *cctx;
	struct wp_tls_conn *s, *c;
};

static inline void pair_new(struct pair *p, const char *server_who, const char *client_who,
                            bool s12, bool c12)
{
	reset_ctrs();
	p->sctx = mkctx(server_who, s12, "alias.local");
	p->cctx = mkctx(client_who, c12, NULL);
	p->s = wp_tls_conn_new(p->sctx, WP_TLS_SERVER, sctr);
	p->c = wp_tls_conn_new(p->cctx, WP_TLS_CLIENT, cctr);
	assert_non_null(p->s);
	assert_non_null(p->c);
}

static inline void pair_free(struct pair *p)
{
	wp_tls_conn_free(p->s);
	wp_tls_conn_free(p->c);
	wp_tls_ctx_unref(p->sctx);
	wp_tls_ctx_unref(p->cctx);
}

/* The server refuses; returns the reason it recorded. */
static inline enum wp_tls_fail server_refuses(struct pair *p)
{
	unsigned char x[16];

	pump(p->s, p->c);
	assert_true(wp_tls_conn_failed(p->s));
	assert_null(wp_tls_conn_peer_id(p->s));
	/* The client learns it (in TLS 1.3 possibly only on its first read). */
	if (!wp_tls_conn_failed(p->c))
		assert_int_equal(wp_tls_conn_read(p->c, x, sizeof(x)), -EPROTO);
	assert_true(wp_tls_conn_failed(p->c));
	/* by the server's alert (or what it says), which it could read: sent
	 * on the key it reads with then, not a record that fails to open */
	assert_int_not_equal(wp_tls_conn_fail_reason(p->c), WP_TLS_FAIL_OTHER);
	assert_int_equal(wp_tls_conn_write(p->s, "x", 1), -EPROTO);
	return wp_tls_conn_fail_reason(p->s);
}

static inline void expect_refusal(const char *client_who, enum wp_tls_fail want, enum wp_ctr ctr)
{
	struct pair p;

	pair_new(&p, "waypoint", client_who, false, false);
	assert_int_equal(server_refuses(&p), want);
	assert_int_equal(sctr[ctr], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 0);
	pair_free(&p);
}

#endif /* WP_TESTS_UNIT_DP_TLS_PAIR_H */
