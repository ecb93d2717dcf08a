/*
 * Unit tests for dp/tls: a server and a client wp_tls_conn talk to each
 * other in memory. The PKI is made at test time by tests/pki/mkpki.sh
 * (argv[1]) in a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dp/tls/tls.c"

static char pki[256];
static uint64_t sctr[WP_CTR_MAX], cctr[WP_CTR_MAX];

static void path(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", pki, name);
}

/* A context whose own certificate is <who> ("waypoint", "productpage"...). */
static struct wp_tls_ctx *mkctx(const char *who, bool tls12, const char *alias)
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
	t = wp_tls_ctx_new(&cfg, &err);
	assert_non_null(t);
	assert_int_equal(err, 0);
	return t;
}

/* Moves ciphertext both ways and steps both handshakes until nothing moves. */
static void pump(struct wp_tls_conn *s, struct wp_tls_conn *c)
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

static void reset_ctrs(void)
{
	memset(sctr, 0, sizeof(sctr));
	memset(cctr, 0, sizeof(cctr));
}

struct pair {
	struct wp_tls_ctx *sctx, *cctx;
	struct wp_tls_conn *s, *c;
};

static void pair_new(struct pair *p, const char *server_who, const char *client_who, bool s12,
                     bool c12)
{
	reset_ctrs();
	p->sctx = mkctx(server_who, s12, "alias.local");
	p->cctx = mkctx(client_who, c12, NULL);
	p->s = wp_tls_conn_new(p->sctx, WP_TLS_SERVER, sctr);
	p->c = wp_tls_conn_new(p->cctx, WP_TLS_CLIENT, cctr);
	assert_non_null(p->s);
	assert_non_null(p->c);
}

static void pair_free(struct pair *p)
{
	wp_tls_conn_free(p->s);
	wp_tls_conn_free(p->c);
	wp_tls_ctx_unref(p->sctx);
	wp_tls_ctx_unref(p->cctx);
}

/* Sends len bytes from a to b through the pair, with the given BIO cap
 * in effect, checking the bytes that arrive. */
static void transfer(struct wp_tls_conn *a, struct wp_tls_conn *b, size_t len)
{
	unsigned char *src = malloc(len), *dst = malloc(len), buf[16384];
	size_t sent = 0, got = 0;
	int guard = 0;

	for (size_t i = 0; i < len; i++)
		src[i] = (unsigned char)(i * 7 + (i >> 9));
	while (got < len) {
		ssize_t n;
		size_t t;
		if (sent < len) {
			n = wp_tls_conn_write(a, src + sent, len - sent);
			assert_true(n >= 0);
			sent += (size_t)n;
		}
		/* The writer stops at bio_cap until its output is taken. */
		assert_true(wp_tls_conn_pending(a) <= a->ctx->bio_cap + 16384 + 256);
		while ((t = wp_tls_conn_take(a, buf, sizeof(buf))) > 0) {
			size_t off = 0;
			while (off < t) {
				/* The reader accepts bio_cap, then must be read. */
				n = wp_tls_conn_feed(b, buf + off, t - off);
				assert_true(n >= 0);
				off += (size_t)n;
				while (got < len &&
				       (n = wp_tls_conn_read(b, dst + got, len - got)) > 0)
					got += (size_t)n;
				assert_true(got == len || n == 0);
			}
		}
		while ((t = wp_tls_conn_take(b, buf, sizeof(buf))) > 0)
			assert_int_equal(wp_tls_conn_feed(a, buf, t), (ssize_t)t);
		assert_true(++guard < 100000);
	}
	assert_memory_equal(src, dst, len);
	free(src);
	free(dst);
}

static void test_spiffe_parse(void **state)
{
	const char *td, *ns, *sa;
	size_t a, b, c;
	static const char *bad[] = {
	        "",
	        "spiffe://",
	        "spiffe:///ns/a/sa/b",
	        "spiffe://td",
	        "spiffe://td/ns//sa/b",
	        "spiffe://td/ns/a/sa/",
	        "spiffe://td/ns/a/sa/b/c",
	        "spiffe://td/sa/b/ns/a",
	        "http://td/ns/a/sa/b",
	        "spiffe://td/ns/a/xx/b",
	        "spiffe://td/ns/a b/sa/c",
	};
	const char *good = "spiffe://cluster.local/ns/default/sa/productpage";

	(void)state;
	assert_int_equal(wp_tls_spiffe_parse(good, strlen(good), &td, &a, &ns, &b, &sa, &c), 0);
	assert_int_equal(a, strlen("cluster.local"));
	assert_memory_equal(td, "cluster.local", a);
	assert_memory_equal(ns, "default", b);
	assert_int_equal(b, 7);
	assert_memory_equal(sa, "productpage", c);
	assert_int_equal(c, 11);
	for (size_t i = 0; i < WP_ARRAY_SIZE(bad); i++)
		assert_int_equal(
		        wp_tls_spiffe_parse(bad[i], strlen(bad[i]), &td, &a, &ns, &b, &sa, &c),
		        -EINVAL);
}

static void test_handshake_ok(void **state)
{
	struct pair p;
	const char *td, *ns, *sa;
	size_t a, b, c;
	SSL_SESSION *sess;

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	assert_null(wp_tls_conn_peer_id(p.s));
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s));
	assert_true(wp_tls_conn_established(p.c));
	assert_string_equal(wp_tls_conn_peer_id(p.s),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	assert_string_equal(wp_tls_conn_peer_id(p.c),
	                    "spiffe://cluster.local/ns/default/sa/waypoint");
	assert_int_equal(wp_tls_conn_peer_parts(p.s, &td, &a, &ns, &b, &sa, &c), 0);
	assert_memory_equal(ns, "default", b);
	assert_memory_equal(sa, "productpage", c);
	assert_int_equal(wp_tls_conn_version(p.s), TLS1_3_VERSION);
	assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 1);
	assert_int_equal(cctr[WP_CTR_TLS_HS_DONE], 1);
	/* The server's ticket went out right after the handshake and was taken
	 * by the pump; the client absorbs it on its first read. */
	assert_int_equal(wp_tls_conn_pending(p.s), 0);
	unsigned char x[16];
	assert_int_equal(wp_tls_conn_read(p.c, x, sizeof(x)), 0);
	sess = SSL_get1_session(p.c->ssl);
	assert_non_null(sess);
	assert_true(SSL_SESSION_has_ticket(sess));
	assert_string_equal(SSL_CIPHER_get_name(SSL_get_current_cipher(p.s->ssl)),
	                    "TLS_AES_256_GCM_SHA384");

	/* Data both ways, with the 64 KiB backpressure cap in play. */
	transfer(p.c, p.s, 300 * 1024);
	transfer(p.s, p.c, 300 * 1024);

	/* close_notify from the client is a clean EOF for the server. */
	assert_int_equal(wp_tls_conn_shutdown(p.c), 0);
	pump(p.s, p.c);
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -EPIPE);
	assert_int_equal(wp_tls_conn_write(p.c, "a", 1), -EPIPE);

	/* Resumption with the ticket: the identity is still known. */
	struct wp_tls_conn *s2 = wp_tls_conn_new(p.sctx, WP_TLS_SERVER, sctr);
	struct wp_tls_conn *c2 = wp_tls_conn_new(p.cctx, WP_TLS_CLIENT, cctr);
	assert_int_equal(SSL_set_session(c2->ssl, sess), 1);
	pump(s2, c2);
	assert_true(wp_tls_conn_established(s2));
	assert_true(wp_tls_conn_resumed(s2));
	assert_string_equal(wp_tls_conn_peer_id(s2),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	assert_int_equal(sctr[WP_CTR_TLS_HS_RESUMED], 1);
	SSL_SESSION_free(sess);
	wp_tls_conn_free(s2);
	wp_tls_conn_free(c2);
	pair_free(&p);
}

/* The server refuses; returns the reason it recorded. */
static enum wp_tls_fail server_refuses(struct pair *p)
{
	unsigned char x[16];

	pump(p->s, p->c);
	assert_true(wp_tls_conn_failed(p->s));
	assert_null(wp_tls_conn_peer_id(p->s));
	/* The client learns it (in TLS 1.3 possibly only on its first read). */
	if (!wp_tls_conn_failed(p->c))
		assert_int_equal(wp_tls_conn_read(p->c, x, sizeof(x)), -EPROTO);
	assert_true(wp_tls_conn_failed(p->c));
	assert_int_equal(wp_tls_conn_write(p->s, "x", 1), -EPROTO);
	return wp_tls_conn_fail_reason(p->s);
}

static void expect_refusal(const char *client_who, enum wp_tls_fail want, enum wp_ctr ctr)
{
	struct pair p;

	pair_new(&p, "waypoint", client_who, false, false);
	assert_int_equal(server_refuses(&p), want);
	assert_int_equal(sctr[ctr], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 0);
	pair_free(&p);
}

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

static void test_no_client_cert(void **state)
{
	struct pair p;

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	SSL_certs_clear(p.c->ssl);
	assert_int_equal(server_refuses(&p), WP_TLS_FAIL_NO_PEER_CERT);
	assert_int_equal(sctr[WP_CTR_TLS_HS_NO_PEER_CERT], 1);
	pair_free(&p);
}

static void test_no_alpn_h2(void **state)
{
	struct pair p;
	static const unsigned char h11[] = "\x08http/1.1";

	(void)state;
	/* Offers only http/1.1. */
	pair_new(&p, "waypoint", "productpage", false, false);
	assert_int_equal(SSL_set_alpn_protos(p.c->ssl, h11, sizeof(h11) - 1), 0);
	assert_int_equal(server_refuses(&p), WP_TLS_FAIL_NO_ALPN_H2);
	assert_int_equal(sctr[WP_CTR_TLS_HS_NO_ALPN_H2], 1);
	pair_free(&p);
	/* Offers no ALPN at all. */
	pair_new(&p, "waypoint", "productpage", false, false);
	assert_int_equal(SSL_set_alpn_protos(p.c->ssl, NULL, 0), 0);
	assert_int_equal(server_refuses(&p), WP_TLS_FAIL_NO_ALPN_H2);
	assert_int_equal(sctr[WP_CTR_TLS_HS_NO_ALPN_H2], 1);
	pair_free(&p);
}

static void test_tls12_refused(void **state)
{
	struct pair p;

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, true);
	assert_int_equal(SSL_set_max_proto_version(p.c->ssl, TLS1_2_VERSION), 1);
	assert_int_equal(server_refuses(&p), WP_TLS_FAIL_PROTOCOL_VERSION);
	assert_int_equal(sctr[WP_CTR_TLS_HS_PROTOCOL_VERSION], 1);
	pair_free(&p);
	/* ...unless the configuration allows it. */
	pair_new(&p, "waypoint", "productpage", true, true);
	assert_int_equal(SSL_set_max_proto_version(p.c->ssl, TLS1_2_VERSION), 1);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s));
	assert_int_equal(wp_tls_conn_version(p.s), TLS1_2_VERSION);
	assert_string_equal(wp_tls_conn_peer_id(p.s),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	transfer(p.c, p.s, 70000);
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

static void test_feed_backpressure(void **state)
{
	struct pair p;
	unsigned char junk[100000];

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	pump(p.s, p.c);
	memset(junk, 0x17, sizeof(junk));
	/* Not read yet: the input accepts bio_cap bytes, then nothing. */
	assert_int_equal(wp_tls_conn_feed(p.s, junk, sizeof(junk)), (ssize_t)p.sctx->bio_cap);
	assert_int_equal(wp_tls_conn_feed(p.s, junk, sizeof(junk)), 0);
	/* Garbage records fail the connection, with a counter. */
	unsigned char x[64];
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -EPROTO);
	assert_int_equal(sctr[WP_CTR_TLS_RECORD_ERROR], 1);
	assert_int_equal(wp_tls_conn_feed(p.s, junk, 10), -EPIPE);
	pair_free(&p);
}

static void test_unclean_eof(void **state)
{
	struct pair p;
	unsigned char x[64];

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	pump(p.s, p.c);
	transfer(p.c, p.s, 1000);
	wp_tls_conn_feed_eof(p.s);
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -ECONNRESET);
	assert_int_equal(sctr[WP_CTR_TLS_UNCLEAN_EOF], 1);
	pair_free(&p);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[4 * PATH_MAX + 32];
	int n = snprintf(cmd, sizeof(cmd), "cp '%s' '%s.tmp' && mv '%s.tmp' '%s'", from, to, to,
	                 to);

	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	assert_int_equal(system(cmd), 0);
}

static void test_reload(void **state)
{
	char dir[] = "/tmp/wp-tls-reload.XXXXXX", a[512], b[512], cert[600], key[600], ca[600];
	struct wp_tls_config cfg = {0};
	struct wp_tls_store st;
	struct wp_tls_ctx *old = NULL, *cctx;
	struct wp_tls_conn *s1, *c1, *s2, *c2;

	(void)state;
	reset_ctrs();
	assert_non_null(mkdtemp(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	path(a, sizeof(a), "waypoint.pem");
	copy_file(a, cert);
	path(a, sizeof(a), "waypoint-key.pem");
	copy_file(a, key);
	path(a, sizeof(a), "ca.pem");
	copy_file(a, ca);
	cfg.cert_file = cert;
	cfg.key_file = key;
	cfg.ca_file = ca;
	cfg.trust_domain = "cluster.local";
	assert_int_equal(wp_tls_store_init(&st, &cfg), 0);
	assert_int_equal(wp_tls_store_reload(&st, false, &old, sctr), 0);
	assert_null(old);

	cctx = mkctx("productpage", false, NULL);
	s1 = wp_tls_conn_new(wp_tls_store_get(&st), WP_TLS_SERVER, sctr);
	c1 = wp_tls_conn_new(cctx, WP_TLS_CLIENT, cctr);
	pump(s1, c1);
	assert_string_equal(wp_tls_conn_peer_id(c1),
	                    "spiffe://cluster.local/ns/default/sa/waypoint");

	/* A half-written key fails the rebuild and keeps the old context. */
	path(a, sizeof(a), "dest.pem");
	path(b, sizeof(b), "dest-key.pem");
	copy_file(a, cert);
	assert_int_equal(wp_tls_store_reload(&st, false, &old, sctr), -EINVAL);
	assert_int_equal(sctr[WP_CTR_TLS_RELOAD_FAILED], 1);
	copy_file(b, key);
	assert_int_equal(wp_tls_store_reload(&st, false, &old, sctr), 1);
	assert_non_null(old);
	assert_int_equal(sctr[WP_CTR_TLS_RELOADED], 1);
	/* After the grace period the control plane drops its reference; the
	 * existing connection keeps its own. */
	wp_tls_ctx_unref(old);
	transfer(c1, s1, 100000);
	transfer(s1, c1, 100000);

	s2 = wp_tls_conn_new(wp_tls_store_get(&st), WP_TLS_SERVER, sctr);
	c2 = wp_tls_conn_new(cctx, WP_TLS_CLIENT, cctr);
	pump(s2, c2);
	assert_string_equal(wp_tls_conn_peer_id(c2), "spiffe://cluster.local/ns/default/sa/dest");
	assert_int_equal(wp_tls_store_reload(&st, false, &old, sctr), 0);

	wp_tls_conn_free(s1);
	wp_tls_conn_free(c1);
	wp_tls_conn_free(s2);
	wp_tls_conn_free(c2);
	wp_tls_ctx_unref(cctx);
	wp_tls_store_fini(&st);
	snprintf(a, sizeof(a), "rm -rf '%s'", dir);
	assert_int_equal(system(a), 0);
}

/* Bytes OpenSSL holds for one idle server connection after the handshake
 * (tickets sent, buffers released and the BIOs trimmed). */
static void test_idle_memory(void **state)
{
	struct pair p;
	int64_t before, after;
	unsigned char x[16];

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	wp_tls_conn_free(p.s);
	/* Client-side allocations are on this thread too: measure the server
	 * alone by bracketing only server calls. Earlier tests already paid
	 * OpenSSL's one-time lazy initialisation. */
	int64_t server = 0, mark;
	before = wp_tls_mem_live();
	p.s = wp_tls_conn_new(p.sctx, WP_TLS_SERVER, sctr);
	server += wp_tls_mem_live() - before;
	unsigned char buf[16384];
	for (int i = 0; i < 20; i++) {
		size_t n;
		(void)wp_tls_conn_handshake(p.c);
		while ((n = wp_tls_conn_take(p.c, buf, sizeof(buf))) > 0) {
			mark = wp_tls_mem_live();
			assert_int_equal(wp_tls_conn_feed(p.s, buf, n), (ssize_t)n);
			server += wp_tls_mem_live() - mark;
		}
		mark = wp_tls_mem_live();
		(void)wp_tls_conn_handshake(p.s);
		while ((n = wp_tls_conn_take(p.s, buf, sizeof(buf))) > 0) {
			server += wp_tls_mem_live() - mark;
			assert_int_equal(wp_tls_conn_feed(p.c, buf, n), (ssize_t)n);
			mark = wp_tls_mem_live();
		}
		server += wp_tls_mem_live() - mark;
	}
	assert_true(wp_tls_conn_established(p.s));
	(void)wp_tls_conn_read(p.c, x, sizeof(x));
	mark = wp_tls_mem_live();
	wp_tls_conn_trim(p.s);
	server += wp_tls_mem_live() - mark;
	after = before + server;
	print_message("idle TLS server connection: %lld bytes held by OpenSSL\n",
	              (long long)(after - before));
	/* ~8.5 KiB for SSL_new (the SSL object, its CERT and verify param),
	 * ~9.5 KiB after the handshake (the peer's leaf certificate and key,
	 * session, AEAD contexts, key-exchange and transcript leftovers); the
	 * BIOs and the peer's extra certificates are gone. A regression bound,
	 * not the 16 KiB goal for TLS + HTTP/2 together. */
	assert_true(after - before > 0);
	assert_true(after - before < 20 * 1024);
	pair_free(&p);
}

/* Idle trim: both BIOs go, and come back transparently for data both
 * ways, a close_notify and an EOF from TCP; the peer's chain beyond its
 * leaf is not kept after the handshake. */
static void test_trim(void **state)
{
	struct pair p;
	int64_t mark;
	unsigned char x[64];

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	/* Mid-handshake a trim changes nothing. */
	(void)wp_tls_conn_handshake(p.c);
	unsigned char buf[16384];
	size_t n = wp_tls_conn_take(p.c, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(wp_tls_conn_feed(p.s, buf, n), (ssize_t)n);
	wp_tls_conn_trim(p.s);
	assert_non_null(p.s->rbio);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s));
	assert_true(wp_tls_conn_established(p.c));
	(void)wp_tls_conn_read(p.c, x, sizeof(x)); /* the ticket */
	/* The leaf stays (the session owns it); what came with it is gone. */
	assert_non_null(SSL_get0_peer_certificate(p.s->ssl));
	assert_non_null(SSL_get0_peer_certificate(p.c->ssl));
	assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(p.s->ssl)), 0);
	assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(p.c->ssl)), 0);
	assert_int_equal(sk_X509_num(SSL_get0_verified_chain(p.s->ssl)), 0);
	for (int round = 0; round < 3; round++) {
		transfer(p.c, p.s, 100000);
		transfer(p.s, p.c, 70000);
		mark = wp_tls_mem_live();
		wp_tls_conn_trim(p.s);
		wp_tls_conn_trim(p.c);
		assert_null(p.s->rbio);
		assert_null(p.c->wbio);
		/* Two BIOs and their buffers each side, at least. */
		assert_true(mark - wp_tls_mem_live() >= 4 * 136);
		mark = wp_tls_mem_live();
		wp_tls_conn_trim(p.s);
		assert_int_equal(wp_tls_mem_live(), mark);
		assert_int_equal(wp_tls_conn_pending(p.s), 0);
		assert_int_equal(wp_tls_conn_take(p.s, x, sizeof(x)), 0);
		assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), WP_AGAIN);
	}
	/* A close_notify after a trim, on both sides. */
	assert_int_equal(wp_tls_conn_shutdown(p.c), 0);
	while ((n = wp_tls_conn_take(p.c, buf, sizeof(buf))) > 0)
		assert_int_equal(wp_tls_conn_feed(p.s, buf, n), (ssize_t)n);
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -EPIPE);
	pair_free(&p);

	/* TCP's FIN noted while trimmed still ends the stream (unclean). */
	pair_new(&p, "waypoint", "productpage", false, false);
	pump(p.s, p.c);
	(void)wp_tls_conn_read(p.c, x, sizeof(x));
	wp_tls_conn_trim(p.s);
	assert_null(p.s->rbio);
	wp_tls_conn_feed_eof(p.s);
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -ECONNRESET);
	assert_int_equal(sctr[WP_CTR_TLS_UNCLEAN_EOF], 1);
	pair_free(&p);
}

int main(int argc, char **argv)
{
	char cmd[600];
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_spiffe_parse),
	        cmocka_unit_test(test_handshake_ok),
	        cmocka_unit_test(test_foreign_trust_domain),
	        cmocka_unit_test(test_expired),
	        cmocka_unit_test(test_untrusted_chain),
	        cmocka_unit_test(test_no_spiffe_id),
	        cmocka_unit_test(test_alias_accepted),
	        cmocka_unit_test(test_no_client_cert),
	        cmocka_unit_test(test_no_alpn_h2),
	        cmocka_unit_test(test_tls12_refused),
	        cmocka_unit_test(test_client_checks_server),
	        cmocka_unit_test(test_feed_backpressure),
	        cmocka_unit_test(test_unclean_eof),
	        cmocka_unit_test(test_reload),
	        cmocka_unit_test(test_idle_memory),
	        cmocka_unit_test(test_trim),
	};
	int rc;

	if (wp_tls_mem_accounting_enable() != 0) {
		fprintf(stderr, "cannot hook OpenSSL's allocator\n");
		return 1;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: %s path/to/mkpki.sh\n", argv[0]);
		return 1;
	}
	snprintf(pki, sizeof(pki), "/tmp/wp-tls-pki.XXXXXX");
	if (mkdtemp(pki) == NULL)
		return 1;
	snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null", argv[1], pki);
	if (system(cmd) != 0) {
		fprintf(stderr, "mkpki failed\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pki);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
