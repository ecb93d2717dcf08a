/*
 * Unit tests for dp/tls's checks of the peer: the refusals (trust domain,
 * expiry, an untrusted or forged chain, no SPIFFE ID, the wrong server),
 * trust-domain aliases, the EC key decoding of eckey.c, the memo of
 * verified chains (chain_memo.c) and its sets, and the chain we send
 * (built once). The PKI is made at test time by tests/pki/mkpki.sh
 * (argv[1]) in a temporary directory.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* ENGINE_* in test_ec_decode_engine */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/engine.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "../../test_pki.h"
#include "tls_pair.h"

static void test_foreign_trust_domain(void **state)
{
	(void)state;
	expect_refusal("evil", WP_TLS_FAIL_FOREIGN_TD, WP_CTR_TLS_HS_FOREIGN_TRUST_DOMAIN);
}

static void test_expired(void **state)
{
	(void)state;
	expect_refusal("expired", WP_TLS_FAIL_EXPIRED, WP_CTR_TLS_HS_EXPIRED);
}

static void test_untrusted_chain(void **state)
{
	(void)state;
	expect_refusal("rogue", WP_TLS_FAIL_BAD_CHAIN, WP_CTR_TLS_HS_BAD_CHAIN);
}

/* A certificate whose CA signature does not verify (one bit flipped): the
 * check runs on keys decoded by OpenSSL's built-in EC code (eckey.c). */
static void test_forged_signature(void **state)
{
	(void)state;
	expect_refusal("forged", WP_TLS_FAIL_BAD_CHAIN, WP_CTR_TLS_HS_BAD_CHAIN);
}

/* EC keys in certificates are decoded by OpenSSL's built-in EC code, not
 * by a provider decoder built for each certificate (eckey.c). */
static void test_ec_decode_engine(void **state)
{
	ENGINE *e;

	(void)state;
	assert_true(wp_tls_ec_decode_install());
	e = ENGINE_get_pkey_meth_engine(EVP_PKEY_EC);
	assert_non_null(e);
	assert_string_equal(ENGINE_get_id(e), "waypointd-ec-decode");
	ENGINE_finish(e);
}

/* New connections on the same pair of contexts: the first handshake's
 * chains are remembered, later ones are not verified again, each side. */
static void renew(struct pair *p)
{
	wp_tls_conn_free(p->s);
	wp_tls_conn_free(p->c);
	reset_ctrs();
	p->s = wp_tls_conn_new(p->sctx, WP_TLS_SERVER, sctr);
	p->c = wp_tls_conn_new(p->cctx, WP_TLS_CLIENT, cctr);
	assert_non_null(p->s);
	assert_non_null(p->c);
}

static void test_chain_memo(void **state)
{
	struct pair p;
	struct wp_tls_ctx *other;
	X509_VERIFY_PARAM *vp;

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s) && wp_tls_conn_established(p.c));
	assert_int_equal(sctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 0);
	assert_int_equal(cctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 0);

	renew(&p);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s) && wp_tls_conn_established(p.c));
	assert_int_equal(sctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 1);
	assert_int_equal(cctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 1);
	assert_string_equal(wp_tls_conn_peer_id(p.s),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	assert_string_equal(wp_tls_conn_peer_id(p.c),
	                    "spiffe://cluster.local/ns/default/sa/waypoint");

	/* The identity check still runs on a remembered chain. */
	renew(&p);
	assert_int_equal(wp_tls_conn_set_expected_peer(p.c, "spiffe://cluster.local/ns/x/sa/y"), 0);
	pump(p.s, p.c);
	assert_int_equal(wp_tls_conn_fail_reason(p.c), WP_TLS_FAIL_WRONG_PEER);
	assert_int_equal(cctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 0);
	assert_int_equal(cctr[WP_CTR_TLS_HS_WRONG_PEER], 1);

	/* Another context (a reload: the same files) verifies again. */
	other = mkctx("waypoint", false, "alias.local");
	wp_tls_conn_free(p.s);
	wp_tls_conn_free(p.c);
	reset_ctrs();
	p.s = wp_tls_conn_new(other, WP_TLS_SERVER, sctr);
	p.c = wp_tls_conn_new(p.cctx, WP_TLS_CLIENT, cctr);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s));
	assert_int_equal(sctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 0);
	wp_tls_ctx_unref(other);

	/* The same context in the other role: waypointd as a client, to a
	 * server presenting the certificate its server side remembered as a
	 * client's. A certificate is checked for another purpose there, so it
	 * is verified again. */
	other = mkctx("productpage", false, NULL);
	wp_tls_conn_free(p.s);
	wp_tls_conn_free(p.c);
	reset_ctrs();
	p.s = wp_tls_conn_new(other, WP_TLS_SERVER, cctr);
	p.c = wp_tls_conn_new(p.sctx, WP_TLS_CLIENT, sctr);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.c));
	assert_int_equal(sctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 0);
	wp_tls_conn_free(p.s);
	wp_tls_conn_free(p.c);
	p.s = p.c = NULL;
	wp_tls_ctx_unref(other);
	/* The client role's entry sits beside the server's: the server still
	 * remembers the chain. */
	renew(&p);
	pump(p.s, p.c);
	assert_int_equal(sctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 1);

	/* Past the end of the client certificate's validity (the server
	 * verifies at a fixed time a year and a day ahead): not remembered
	 * any more, and OpenSSL refuses it. */
	vp = SSL_CTX_get0_param(p.sctx->server);
	X509_VERIFY_PARAM_set_time(vp, time(NULL) + 366 * 86400);
	renew(&p); /* an SSL copies its context's parameters */
	assert_int_equal(server_refuses(&p), WP_TLS_FAIL_EXPIRED);
	assert_int_equal(sctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 0);
	pair_free(&p);
}

static X509 *read_pem(const char *name)
{
	char f[512];
	X509 *x;
	FILE *fp;

	path(f, sizeof(f), name);
	fp = fopen(f, "r");
	assert_non_null(fp);
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	return x;
}

/* The memo's sets (chain_memo.c), with made-up digests that all fall into
 * one set: eight chains fit, a ninth replaces the least recently used, and
 * an entry serves only the context and the role it was verified for. */
static void test_memo_sets(void **state)
{
	static const char *uri_pp = "spiffe://cluster.local/ns/default/sa/productpage";
	struct wp_tls_ctx *ctx = mkctx("waypoint", false, NULL),
	                  *other = mkctx("waypoint", false, NULL);
	struct wp_tls_conn *s = wp_tls_conn_new(ctx, WP_TLS_SERVER, sctr);
	struct wp_tls_conn *c = wp_tls_conn_new(ctx, WP_TLS_CLIENT, cctr);
	struct wp_tls_conn *s2 = wp_tls_conn_new(other, WP_TLS_SERVER, sctr);
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	uint8_t d[10][32] = {{0}};
	X509 *leaf = read_pem("productpage.pem");
	const char *uri;
	EVP_PKEY *k;

	(void)state;
	assert_non_null(s);
	assert_non_null(c);
	assert_non_null(s2);
	assert_non_null(xs);
	assert_int_equal(X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(ctx->server), leaf, NULL),
	                 1);
	assert_int_equal(X509_verify_cert(xs), 1);
	for (int i = 0; i < 10; i++) {
		d[i][0] = 0x5a; /* every digest in the same set, whatever its size */
		d[i][31] = (uint8_t)i;
	}
	reset_ctrs();
	for (int i = 0; i < 8; i++)
		wp_tls_memo_keep(s, d[i], xs, X509_get0_pubkey(leaf), uri_pp);
	for (int i = 7; i >= 0; i--) {
		k = wp_tls_memo_find(s, d[i], &uri);
		assert_non_null(k);
		assert_string_equal(uri, uri_pp);
		EVP_PKEY_free(k);
	}
	assert_int_equal(sctr[WP_CTR_TLS_CHAIN_MEMO_HIT], 8);
	/* d[7] is now the least recently used: the ninth chain takes its place */
	wp_tls_memo_keep(s, d[8], xs, X509_get0_pubkey(leaf), uri_pp);
	assert_null(wp_tls_memo_find(s, d[7], &uri));
	for (int i = 0; i <= 8; i++) {
		if (i == 7)
			continue;
		k = wp_tls_memo_find(s, d[i], &uri);
		assert_non_null(k);
		EVP_PKEY_free(k);
	}
	/* keeping a chain again replaces its own entry, not another */
	wp_tls_memo_keep(s, d[0], xs, X509_get0_pubkey(leaf), uri_pp);
	for (int i = 0; i <= 8; i++) {
		k = wp_tls_memo_find(s, d[i], &uri);
		assert_true(i == 7 ? k == NULL : k != NULL);
		EVP_PKEY_free(k);
	}
	/* another role or another context (a reload) does not see them */
	assert_null(wp_tls_memo_find(c, d[0], &uri));
	assert_null(wp_tls_memo_find(s2, d[0], &uri));
	assert_null(wp_tls_memo_find(s, d[9], &uri));
	X509_STORE_CTX_free(xs);
	X509_free(leaf);
	wp_tls_conn_free(s);
	wp_tls_conn_free(c);
	wp_tls_conn_free(s2);
	wp_tls_ctx_unref(ctx);
	wp_tls_ctx_unref(other);
}

/* With the EC routing in place (eckey.c), an ECDHE key share on P-256
 * (not X25519) still works both ways. */
static void test_p256_key_share(void **state)
{
	struct pair p;

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	assert_int_equal(SSL_CTX_set1_groups_list(p.cctx->client, "P-256"), 1);
	renew(&p); /* an SSL copies its context's groups */
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s) && wp_tls_conn_established(p.c));
	pair_free(&p);
}

static void test_no_spiffe_id(void **state)
{
	(void)state;
	expect_refusal("nospiffe", WP_TLS_FAIL_NO_SPIFFE_ID, WP_CTR_TLS_HS_NO_SPIFFE_ID);
}

static void test_alias_accepted(void **state)
{
	struct pair p;

	(void)state;
	pair_new(&p, "waypoint", "alias", false, false);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s));
	assert_string_equal(wp_tls_conn_peer_id(p.s), "spiffe://alias.local/ns/default/sa/aliased");
	pair_free(&p);
}

static void test_client_checks_server(void **state)
{
	struct pair p;

	(void)state;
	/* A server from a foreign trust domain. */
	pair_new(&p, "evil", "waypoint", false, false);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_failed(p.c));
	assert_int_equal(wp_tls_conn_fail_reason(p.c), WP_TLS_FAIL_FOREIGN_TD);
	assert_int_equal(cctr[WP_CTR_TLS_HS_FOREIGN_TRUST_DOMAIN], 1);
	assert_false(wp_tls_conn_established(p.s));
	pair_free(&p);
	/* The expected identity. */
	pair_new(&p, "dest", "waypoint", false, false);
	assert_int_equal(
	        wp_tls_conn_set_expected_peer(p.c, "spiffe://cluster.local/ns/default/sa/dest"), 0);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.c));
	assert_true(wp_tls_conn_established(p.s));
	pair_free(&p);
	/* Not the expected identity. */
	pair_new(&p, "dest", "waypoint", false, false);
	assert_int_equal(wp_tls_conn_set_expected_peer(p.c, "spiffe://cluster.local/ns/x/sa/y"), 0);
	assert_int_equal(wp_tls_conn_set_expected_peer(p.s, "spiffe://cluster.local/ns/x/sa/y"),
	                 -EINVAL);
	pump(p.s, p.c);
	assert_int_equal(wp_tls_conn_fail_reason(p.c), WP_TLS_FAIL_WRONG_PEER);
	assert_int_equal(cctr[WP_CTR_TLS_HS_WRONG_PEER], 1);
	pair_free(&p);
}

/* What the client was sent (leaf first), caught on its way to the
 * client's chain check: OpenSSL drops it after the handshake (and so do we). */
static X509 *sent[4];
static int nsent;

static int record_sent(X509_STORE_CTX *xs, void *arg)
{
	STACK_OF(X509) *sk = X509_STORE_CTX_get0_untrusted(xs);

	nsent = sk != NULL ? sk_X509_num(sk) : 0;
	for (int i = 0; i < nsent && i < 4; i++) {
		X509_free(sent[i]);
		sent[i] = X509_dup(sk_X509_value(sk, i));
	}
	return wp_tls_chain_verify(xs, arg);
}

/* A pair whose client records what the server sends. */
static void pair_recording(struct pair *p, const char *server_who)
{
	pair_new(p, server_who, "productpage", false, false);
	SSL_CTX_set_cert_verify_callback(p->cctx->client, record_sent, NULL);
	nsent = 0;
	pump(p->s, p->c);
}

/* pki/<out> := pki/<a> followed by pki/<b> (if not NULL). */
static void write_concat(const char *out, const char *a, const char *b)
{
	char cmd[1600];

	if (b != NULL)
		snprintf(cmd, sizeof(cmd), "cat '%s/%s' '%s/%s' > '%s/%s'", pki, a, pki, b, pki,
		         out);
	else
		snprintf(cmd, sizeof(cmd), "cat '%s/%s' > '%s/%s'", pki, a, pki, out);
	assert_int_equal(system(cmd), 0);
}

static void test_own_chain(void **state)
{
	STACK_OF(X509) *built = NULL;
	X509 *root = read_pem("ca.pem"), *rogue = read_pem("rogue-ca.pem");
	X509 *leaf = read_pem("waypoint.pem");
	struct pair p;

	(void)state;
	/* cert.pem holds the leaf alone: the chain up to our root is built
	 * with the context, and the server sends leaf and root. */
	pair_recording(&p, "waypoint");
	assert_int_equal(SSL_CTX_get0_chain_certs(p.sctx->server, &built), 1);
	assert_non_null(built);
	assert_int_equal(sk_X509_num(built), 1);
	assert_int_equal(X509_cmp(sk_X509_value(built, 0), root), 0);
	assert_true(wp_tls_conn_established(p.s));
	assert_true(wp_tls_conn_established(p.c));
	assert_int_equal(nsent, 2);
	assert_int_equal(X509_cmp(sent[0], leaf), 0);
	assert_int_equal(X509_cmp(sent[1], root), 0);
	pair_free(&p);

	/* cert.pem carries a chain: it is sent as written, nothing added. */
	write_concat("chained.pem", "waypoint.pem", "rogue-ca.pem");
	write_concat("chained-key.pem", "waypoint-key.pem", NULL);
	pair_recording(&p, "chained");
	assert_true(wp_tls_conn_established(p.c));
	assert_int_equal(nsent, 2);
	assert_int_equal(X509_cmp(sent[0], leaf), 0);
	assert_int_equal(X509_cmp(sent[1], rogue), 0);
	pair_free(&p);

	/* A leaf our roots do not verify: sent alone, and refused. */
	pair_recording(&p, "rogue");
	assert_int_equal(SSL_CTX_get0_chain_certs(p.sctx->server, &built), 1);
	assert_int_equal(sk_X509_num(built), 0);
	assert_int_equal(nsent, 1);
	assert_true(wp_tls_conn_failed(p.c));
	assert_int_equal(wp_tls_conn_fail_reason(p.c), WP_TLS_FAIL_BAD_CHAIN);
	pair_free(&p);
	for (int i = 0; i < 4; i++) {
		X509_free(sent[i]);
		sent[i] = NULL;
	}
	X509_free(root);
	X509_free(rogue);
	X509_free(leaf);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_foreign_trust_domain),
	        cmocka_unit_test(test_expired),
	        cmocka_unit_test(test_untrusted_chain),
	        cmocka_unit_test(test_forged_signature),
	        cmocka_unit_test(test_ec_decode_engine),
	        cmocka_unit_test(test_chain_memo),
	        cmocka_unit_test(test_memo_sets),
	        cmocka_unit_test(test_p256_key_share),
	        cmocka_unit_test(test_no_spiffe_id),
	        cmocka_unit_test(test_alias_accepted),
	        cmocka_unit_test(test_client_checks_server),
	        cmocka_unit_test(test_own_chain),
	};
	int rc;

	if (test_pki_make(argc, argv, "tls-verify", pki, sizeof(pki)) != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	return test_pki_remove(pki, rc);
}
