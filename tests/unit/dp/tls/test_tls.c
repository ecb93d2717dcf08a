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

#include <errno.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "../../test_pki.h"
#include "tls_pair.h"
#include "tls_peer.h"
#include "record_int.h"
#include "ticket.h"
#include "tls_int.h"
#include "wp/counters.h"

/* Sends len bytes from a to b through the pair, with the given BIO cap
 * in effect, checking the bytes that arrive. */
/*
 * Reads plaintext from b into dst (at most max bytes), by turns: a copying
 * read, a view used whole, a view used in part (the rest must come again).
 * The scratch is small, so that a connection on OpenSSL (TLS 1.2) peeks
 * in pieces too.
 */
static ssize_t read_some(struct wp_tls_conn *b, unsigned char *dst, size_t max)
{
	static unsigned turn;
	unsigned char scratch[3000];
	const uint8_t *v = NULL;
	ssize_t n;
	size_t use;

	turn++;
	if (turn % 3 == 0)
		return wp_tls_conn_read(b, dst, max);
	n = wp_tls_conn_read_view(b, &v, scratch, sizeof(scratch));
	if (n <= 0)
		return n;
	assert_non_null(v);
	use = WP_MIN((size_t)n, max);
	if (turn % 3 == 2)
		use = (use + 1) / 2;
	memcpy(dst, v, use);
	wp_tls_conn_read_done(b, use);
	return (ssize_t)use;
}

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
				while (got < len && (n = read_some(b, dst + got, len - got)) > 0)
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

static void pattern(unsigned char *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(i * seed + (i >> 11) + seed);
}

static const char *const ctr_names[] = {
#define WP_CTR(name, kind, desc) #name,
#include "wp/counters/list.h"
#undef WP_CTR
};

static void dump_ctrs(const uint64_t *ctr, ssize_t r, size_t got)
{
	print_message("read %zd after %zu bytes:", r, got);
	for (int i = 0; i < WP_CTR_MAX; i++)
		if (ctr[i] != 0)
			print_message(" %s=%llu", ctr_names[i], (unsigned long long)ctr[i]);
	print_message("\n");
}

/* Odd sizes: record boundaries land anywhere in feeds and reads. */
static const size_t odd[] = {1, 2, 3, 5, 7, 13, 4093, 17, 16385, 1000, 40001, 16384, 21};

/* (WP_MIN evaluates its arguments twice.) */
static size_t next_odd(size_t *k)
{
	return odd[(*k)++ % WP_ARRAY_SIZE(odd)];
}

/* The peer sends len bytes; they reach our connection in odd slices and
 * are read in odd sizes. What our connection answers (KeyUpdate) goes back. */
static void peer_to_conn(struct peer *p, struct wp_tls_conn *c, size_t len, unsigned seed)
{
	unsigned char *src = malloc(len), *dst = malloc(len), buf[16384];
	size_t sent = 0, got = 0, k = seed, guard = 0;

	pattern(src, len, seed);
	while (got < len) {
		int n;
		if (sent < len) {
			size_t w = next_odd(&k);
			w = WP_MIN(len - sent, w);
			assert_int_equal(SSL_write(p->ssl, src + sent, (int)w), (int)w);
			sent += w;
		}
		while ((n = BIO_read(p->w, buf, sizeof(buf))) > 0) {
			size_t off = 0;
			while (off < (size_t)n) {
				size_t sl = next_odd(&k);
				sl = WP_MIN((size_t)n - off, sl);
				ssize_t f = wp_tls_conn_feed(c, buf + off, sl), r;
				assert_true(f >= 0);
				off += (size_t)f;
				do {
					size_t want = next_odd(&k);
					want = WP_MIN(len - got, want);
					r = want > 0 ? wp_tls_conn_read(c, dst + got, want) : 0;
					if (r < 0)
						dump_ctrs(c->ctrs, r, got);
					assert_true(r >= 0);
					got += (size_t)r;
				} while (r > 0);
			}
		}
		to_peer(c, p);
		assert_true(++guard < 1000000);
	}
	assert_memory_equal(src, dst, len);
	free(src);
	free(dst);
}

/* Our connection sends len bytes in odd writes; the peer reads them. */
static void conn_to_peer(struct wp_tls_conn *c, struct peer *p, size_t len, unsigned seed)
{
	unsigned char *src = malloc(len), *dst = malloc(len);
	size_t sent = 0, got = 0, k = seed, guard = 0;

	pattern(src, len, seed);
	while (got < len) {
		if (sent < len) {
			size_t w = next_odd(&k);
			w = WP_MIN(len - sent, w);
			ssize_t n = wp_tls_conn_write(c, src + sent, w);
			assert_true(n >= 0);
			sent += (size_t)n;
		}
		to_peer(c, p);
		int r = peer_recv(p, dst + got, len - got);
		assert_true(r >= 0);
		got += (size_t)r;
		/* The peer's answers (its KeyUpdate) come back. */
		unsigned char buf[4096];
		int n;
		while ((n = BIO_read(p->w, buf, sizeof(buf))) > 0)
			assert_int_equal(wp_tls_conn_feed(c, buf, (size_t)n), n);
		assert_true(++guard < 1000000);
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
	 * by the pump; the client skips it on its first read. Both sides then
	 * run on our record layer, the SSL objects gone. */
	assert_int_equal(wp_tls_conn_pending(p.s), 0);
	unsigned char x[16];
	assert_int_equal(wp_tls_conn_read(p.c, x, sizeof(x)), 0);
	assert_null(p.s->ssl);
	assert_null(p.c->ssl);
	assert_null(p.s->keys);
	/* The server's handshake was our own (hs13.c), on our record layer
	 * from its ServerHello on; the client's was OpenSSL's. */
	assert_int_equal(sctr[WP_CTR_TLS_HS_OWN], 1);
	assert_int_equal(sctr[WP_CTR_TLS_REC_SWITCHED], 0);
	assert_int_equal(cctr[WP_CTR_TLS_REC_SWITCHED], 1);
	assert_int_equal(p.s->rec->suite->id, 0x1301); /* TLS_AES_128_GCM_SHA256 */
	assert_int_equal(p.s->rec->wr.seq, 1);         /* the ticket */
	assert_int_equal(p.c->rec->rd.seq, 1);

	/* Data both ways, with the 64 KiB backpressure cap in play. */
	transfer(p.c, p.s, 300 * 1024);
	transfer(p.s, p.c, 300 * 1024);

	/* close_notify from the client is a clean EOF for the server. */
	assert_int_equal(wp_tls_conn_shutdown(p.c), 0);
	pump(p.s, p.c);
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -EPIPE);
	assert_int_equal(wp_tls_conn_write(p.c, "a", 1), -EPIPE);

	/* Resumption with the ticket (an OpenSSL client keeps it; ours skip
	 * tickets): the identity is still known. */
	struct peer pc;
	struct wp_tls_conn *s2 = wp_tls_conn_new(p.sctx, WP_TLS_SERVER, sctr);
	peer_new(&pc, false, "productpage", NULL);
	peer_pump(s2, &pc);
	assert_int_equal(peer_recv(&pc, x, sizeof(x)), 0); /* absorbs the ticket */
	sess = SSL_get1_session(pc.ssl);
	assert_non_null(sess);
	assert_true(SSL_SESSION_has_ticket(sess));
	assert_false(wp_tls_conn_resumed(s2));
	wp_tls_conn_free(s2);
	/* (An SSL freed without close_notify marks its session unusable.) */
	assert_true(SSL_shutdown(pc.ssl) >= 0);
	SSL_free(pc.ssl);
	s2 = wp_tls_conn_new(p.sctx, WP_TLS_SERVER, sctr);
	peer_ssl(&pc, false);
	assert_int_equal(SSL_set_session(pc.ssl, sess), 1);
	peer_pump(s2, &pc);
	assert_true(wp_tls_conn_established(s2));
	assert_true(wp_tls_conn_resumed(s2));
	assert_null(s2->ssl);
	assert_string_equal(wp_tls_conn_peer_id(s2),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	assert_int_equal(sctr[WP_CTR_TLS_HS_RESUMED], 1);
	peer_to_conn(&pc, s2, 100000, 7);
	SSL_SESSION_free(sess);
	wp_tls_conn_free(s2);
	peer_free(&pc);
	pair_free(&p);
}

/* Moves s's ciphertext to c in place (peek, feed, advance), at most piece
 * bytes a step, until none is left; true if any moved. */
static bool peek_move(struct wp_tls_conn *s, struct wp_tls_conn *c, size_t piece)
{
	const uint8_t *q;
	size_t n;
	bool moved = false;

	while ((n = wp_tls_conn_peek(s, &q)) > 0) {
		assert_int_equal(n, wp_tls_conn_pending(s));
		n = WP_MIN(n, piece);
		assert_int_equal(wp_tls_conn_feed(c, q, n), (ssize_t)n);
		wp_tls_conn_advance(s, n);
		moved = true;
	}
	assert_int_equal(wp_tls_conn_pending(s), 0);
	return moved;
}

/* The server's output read in place and removed in pieces (what the tunnel
 * session hands TCP): the handshake flights from OpenSSL's memory BIO, then
 * records from our record layer, arrive whole and in order. */
static void test_peek_advance(void **state)
{
	static unsigned char data[40000], got[40000];
	unsigned char buf[16384];
	const uint8_t *q;
	struct pair p;
	size_t n, have = 0;
	ssize_t k;
	bool moved;
	int rounds = 0;

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	assert_int_equal(wp_tls_conn_peek(p.s, &q), 0);
	do {
		moved = false;
		(void)wp_tls_conn_handshake(p.c);
		while ((n = wp_tls_conn_take(p.c, buf, sizeof(buf))) > 0) {
			assert_int_equal(wp_tls_conn_feed(p.s, buf, n), (ssize_t)n);
			moved = true;
		}
		(void)wp_tls_conn_handshake(p.s);
		moved |= peek_move(p.s, p.c, 1000);
		assert_true(++rounds < 50);
	} while (moved);
	assert_true(wp_tls_conn_established(p.s));
	assert_true(wp_tls_conn_established(p.c));
	assert_int_equal(wp_tls_conn_read(p.c, buf, sizeof(buf)), 0); /* the ticket */
	assert_non_null(p.s->rec);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + i / 251);
	assert_int_equal(wp_tls_conn_write(p.s, data, sizeof(data)), sizeof(data));
	assert_true(peek_move(p.s, p.c, 3000));
	assert_int_equal(wp_tls_conn_peek(p.s, &q), 0);
	while ((k = wp_tls_conn_read(p.c, got + have, sizeof(got) - have)) > 0)
		have += (size_t)k;
	assert_int_equal(have, sizeof(data));
	assert_memory_equal(got, data, sizeof(data));
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
	/* TLS 1.2 stays on OpenSSL; the peer's chain beyond its leaf is gone. */
	assert_non_null(p.s->ssl);
	assert_null(p.s->rec);
	assert_int_equal(sctr[WP_CTR_TLS_REC_KEPT_OPENSSL], 1);
	assert_non_null(SSL_get0_peer_certificate(p.s->ssl));
	assert_int_equal(sk_X509_num(SSL_get_peer_cert_chain(p.s->ssl)), 0);
	assert_int_equal(sk_X509_num(SSL_get0_verified_chain(p.s->ssl)), 0);
	assert_string_equal(wp_tls_conn_peer_id(p.s),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	transfer(p.c, p.s, 70000);
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

/* ---- session tickets: rotation, reload, another key set ---- */

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
	return fake_now;
}

/*
 * One connection from an OpenSSL client to a server connection on <t>,
 * offering *sess (NULL: none). Returns whether it resumed; *sess becomes
 * the newest resumable session the client holds after it.
 */
static bool connect_with(struct wp_tls_ctx *t, struct peer *pc, SSL_SESSION **sess)
{
	unsigned char x[64];
	struct wp_tls_conn *s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	SSL_SESSION *n;
	bool resumed;

	peer_ssl(pc, false);
	if (*sess != NULL)
		assert_int_equal(SSL_set_session(pc->ssl, *sess), 1);
	peer_pump(s, pc);
	resumed = wp_tls_conn_resumed(s);
	assert_int_equal(resumed, SSL_session_reused(pc->ssl) == 1);
	assert_int_equal(peer_recv(pc, x, sizeof(x)), 0); /* absorbs the ticket */
	n = SSL_get1_session(pc->ssl);
	if (n != NULL && SSL_SESSION_is_resumable(n)) {
		SSL_SESSION_free(*sess);
		*sess = n;
	} else {
		SSL_SESSION_free(n);
	}
	assert_string_equal(wp_tls_conn_peer_id(s),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	assert_true(SSL_shutdown(pc->ssl) >= 0);
	SSL_free(pc->ssl);
	pc->ssl = NULL;
	wp_tls_conn_free(s);
	return resumed;
}

static void test_ticket_rotation(void **state)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL), *other, *old = NULL;
	struct wp_tls_store st;
	SSL_SESSION *sess = NULL, *epoch0 = NULL;
	struct peer pc;

	(void)state;
	reset_ctrs();
	peer_new(&pc, false, "productpage", NULL);
	SSL_free(pc.ssl);
	/* the start of the current hour: the key set's own epoch */
	fake_now = (uint64_t)time(NULL) / 3600 * 3600;
	wp_tls_tickets_set_clock(t->tickets, fake_clock);

	assert_false(connect_with(t, &pc, &sess)); /* full, a ticket issued */
	assert_non_null(sess);
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_ISSUED], 1);
	assert_true(connect_with(t, &pc, &sess)); /* same epoch */
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_ACCEPTED], 1);
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_ISSUED], 2); /* a fresh one for each resumption */
	/* the client uses each ticket once: the fresh one resumes again */
	assert_true(connect_with(t, &pc, &sess));
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_ACCEPTED], 2);
	assert_int_equal(SSL_SESSION_up_ref(sess), 1);
	epoch0 = sess;

	/* next period: the old key still opens it, and a new ticket replaces it */
	fake_now += 3600;
	assert_true(connect_with(t, &pc, &sess));
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_RENEWED], 1);
	assert_ptr_not_equal(sess, epoch0);

	/* two periods on, the first ticket's key is gone; the renewed one works */
	fake_now += 3600;
	{
		SSL_SESSION *stale = epoch0;

		assert_int_equal(SSL_SESSION_up_ref(stale), 1);
		assert_false(connect_with(t, &pc, &stale)); /* full handshake */
		SSL_SESSION_free(stale);
	}
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_REFUSED], 1);
	assert_true(connect_with(t, &pc, &sess));
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_RENEWED], 2);

	/* a certificate reload keeps the keys: tickets stay good */
	atomic_store(&st.cur, t);
	assert_int_equal(wp_tls_store_reload(&st, true, &old, sctr), 1);
	assert_ptr_equal(old, t);
	assert_ptr_equal(wp_tls_store_get(&st)->tickets, t->tickets);
	assert_true(connect_with(wp_tls_store_get(&st), &pc, &sess));

	/* another process's (or appliance's) keys refuse it by name */
	other = mkctx("waypoint", false, NULL);
	assert_false(connect_with(other, &pc, &sess));
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_REFUSED], 2);

	SSL_SESSION_free(sess);
	SSL_SESSION_free(epoch0);
	SSL_CTX_free(pc.ctx);
	wp_tls_ctx_unref(other);
	wp_tls_ctx_unref(old);
	wp_tls_store_fini(&st);
}

/* Bytes OpenSSL holds for one idle server connection after the handshake
 * (tickets sent, buffers released and the BIOs trimmed). */
static void test_idle_memory(void **state)
{
	struct pair p;
	int64_t before;
	unsigned cached;
	unsigned char x[16];

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s));
	(void)wp_tls_conn_read(p.c, x, sizeof(x));
	wp_tls_conn_trim(p.s);
	/* What the idle connection holds is what freeing it gives back
	 * (test_handshakes_keep_nothing shows that nothing is held for it
	 * elsewhere). Buffers freed into record.c's thread cache stay
	 * allocated: they are not the connection's, so they are counted
	 * as given back. */
	before = wp_tls_mem_live();
	/* The SSL object is gone (it held ~17.9 KB when idle: SSL, CERT,
	 * verify param, the peer's leaf and key, session, handshake leftovers).
	 * What stays: our connection, the peer's SPIFFE ID, the record layer
	 * with its two AEAD contexts and secrets; no buffers while idle. */
	assert_null(p.s->ssl);
	assert_null(p.s->rec->in);
	assert_null(p.s->rec->out);
	cached = wp_tls_rec_cached();
	wp_tls_conn_free(p.s);
	p.s = NULL;
	before -= wp_tls_mem_live() - (int64_t)(wp_tls_rec_cached() - cached) * 4096;
	print_message("idle TLS server connection: %lld bytes held by OpenSSL\n",
	              (long long)before);
	assert_true(before > (int64_t)sizeof(struct wp_tls_rec));
	assert_true(before < 4 * 1024);
	pair_free(&p);
}

/* Handshake after handshake on the same contexts, each connection freed:
 * OpenSSL's live memory comes back to the same figure, so nothing is kept
 * per connection outside it (a session cache, a leaked key). */
static void test_handshakes_keep_nothing(void **state)
{
	struct pair p;
	int64_t after10 = 0;

	(void)state;
	pair_new(&p, "waypoint", "productpage", false, false);
	for (int i = 0; i < 30; i++) {
		if (i > 0) {
			p.s = wp_tls_conn_new(p.sctx, WP_TLS_SERVER, sctr);
			p.c = wp_tls_conn_new(p.cctx, WP_TLS_CLIENT, cctr);
		}
		pump(p.s, p.c);
		assert_true(wp_tls_conn_established(p.s));
		wp_tls_conn_free(p.s);
		wp_tls_conn_free(p.c);
		p.s = p.c = NULL;
		if (i == 9)
			after10 = wp_tls_mem_live();
	}
	assert_int_equal(wp_tls_mem_live(), after10);
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
	assert_non_null(p.s->hs);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s));
	assert_true(wp_tls_conn_established(p.c));
	(void)wp_tls_conn_read(p.c, x, sizeof(x)); /* the ticket */
	assert_non_null(p.s->rec);
	assert_non_null(p.c->rec);
	for (int round = 0; round < 3; round++) {
		transfer(p.c, p.s, 100000);
		transfer(p.s, p.c, 70000);
		mark = wp_tls_mem_live();
		wp_tls_conn_trim(p.s);
		wp_tls_conn_trim(p.c);
		assert_null(p.s->rec->in);
		assert_null(p.s->rec->out);
		assert_null(p.c->rec->in);
		assert_null(p.c->rec->out);
		/* Both buffers each side, at least a page each. */
		assert_true(mark - wp_tls_mem_live() >= 4 * 4096);
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
	assert_null(p.s->rec->in);
	wp_tls_conn_feed_eof(p.s);
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -ECONNRESET);
	assert_int_equal(sctr[WP_CTR_TLS_UNCLEAN_EOF], 1);
	pair_free(&p);
}

/* ---- our record layer against a real OpenSSL peer ---- */

/* One cipher suite, one role of ours: data both ways in odd slices,
 * KeyUpdates from the peer (with and without update_requested) and ours,
 * close_notify both ways. */
static void rec_against_openssl(const char *suite, uint16_t id, bool ours_server, bool openssl_hs)
{
	struct wp_tls_ctx *t =
	        mkctx_hs(ours_server ? "waypoint" : "productpage", false, NULL, openssl_hs);
	uint64_t *ctr = ours_server ? sctr : cctr;
	struct wp_tls_conn *c;
	struct peer p;
	unsigned char x[64];

	reset_ctrs();
	c = wp_tls_conn_new(t, ours_server ? WP_TLS_SERVER : WP_TLS_CLIENT, ctr);
	assert_non_null(c);
	/* Our contexts offer the two AES-GCM suites; on OpenSSL the test
	 * widens this connection to the one under test, against our own
	 * handshake the client offers that one alone. */
	if (c->ssl != NULL)
		assert_int_equal(SSL_set_ciphersuites(c->ssl, suite), 1);
	peer_new(&p, !ours_server, ours_server ? "productpage" : "waypoint",
	         c->ssl != NULL ? NULL : suite);
	peer_pump(c, &p);
	assert_null(c->ssl);
	assert_non_null(c->rec);
	assert_int_equal(c->rec->suite->id, id);
	assert_int_equal(
	        ctr[ours_server && !openssl_hs ? WP_CTR_TLS_HS_OWN : WP_CTR_TLS_REC_SWITCHED], 1);
	assert_int_equal(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p.ssl)), id);
	assert_int_equal(wp_tls_conn_version(c), TLS1_3_VERSION);
	assert_string_equal(wp_tls_conn_peer_id(c),
	                    ours_server ? "spiffe://cluster.local/ns/default/sa/productpage"
	                                : "spiffe://cluster.local/ns/default/sa/waypoint");

	/* MBs both ways; as a client we skip the peer's two tickets first. */
	peer_to_conn(&p, c, 2 * 1024 * 1024 + 333, 3);
	conn_to_peer(c, &p, 2 * 1024 * 1024 + 777, 5);

	/* The peer updates its key, without and with update_requested. */
	assert_int_equal(SSL_key_update(p.ssl, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
	assert_true(SSL_do_handshake(p.ssl) == 1);
	peer_to_conn(&p, c, 50000, 7);
	assert_int_equal(ctr[WP_CTR_TLS_REC_KEY_UPDATE_RX], 1);
	assert_int_equal(ctr[WP_CTR_TLS_REC_KEY_UPDATE_TX], 0);
	/* Counted since the new key: 50000 bytes in odd writes. */
	assert_true(c->rec->rd.seq >= 4 && c->rec->rd.seq < 50);
	conn_to_peer(c, &p, 50000, 9);
	assert_int_equal(SSL_key_update(p.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
	assert_true(SSL_do_handshake(p.ssl) == 1);
	peer_to_conn(&p, c, 30000, 11);
	assert_int_equal(ctr[WP_CTR_TLS_REC_KEY_UPDATE_RX], 2);
	assert_int_equal(ctr[WP_CTR_TLS_REC_KEY_UPDATE_TX], 1);
	conn_to_peer(c, &p, 30000, 13);
	peer_to_conn(&p, c, 30000, 15);

	/* Ours: asked for, and by the record limit (the peer answers the
	 * requested one with its own). */
	assert_int_equal(wp_tls_rec_key_update(c->rec, true), 0);
	conn_to_peer(c, &p, 40000, 17);
	peer_to_conn(&p, c, 40000, 19);
	assert_int_equal(ctr[WP_CTR_TLS_REC_KEY_UPDATE_RX], 3);
	wp_tls_rec_rekey_after = 4;
	conn_to_peer(c, &p, 200000, 21);
	wp_tls_rec_rekey_after = (uint64_t)1 << 24;
	assert_true(ctr[WP_CTR_TLS_REC_KEY_UPDATE_TX] >= 2 + 200000 / 16384 / 4);
	peer_to_conn(&p, c, 40000, 23);

	/* close_notify from the peer: data first, then EOF; we may still
	 * write (half-close), then our close_notify ends the peer's reads. */
	assert_int_equal(SSL_write(p.ssl, "last", 4), 4);
	assert_true(SSL_shutdown(p.ssl) >= 0);
	{
		unsigned char buf[4096];
		int n;
		while ((n = BIO_read(p.w, buf, sizeof(buf))) > 0)
			for (int i = 0; i < n; i++)
				assert_int_equal(wp_tls_conn_feed(c, buf + i, 1), 1);
	}
	assert_int_equal(wp_tls_conn_read(c, x, sizeof(x)), 4);
	assert_memory_equal(x, "last", 4);
	assert_int_equal(wp_tls_conn_read(c, x, sizeof(x)), -EPIPE);
	assert_int_equal(wp_tls_conn_read(c, x, sizeof(x)), -EPIPE);
	assert_int_equal(wp_tls_conn_write(c, "bye", 3), 3);
	assert_int_equal(wp_tls_conn_shutdown(c), 0);
	assert_int_equal(wp_tls_conn_write(c, "x", 1), -EPIPE);
	to_peer(c, &p);
	assert_int_equal(peer_recv(&p, x, sizeof(x)), 3);
	assert_int_equal(peer_recv(&p, x, sizeof(x)), -1);
	assert_int_equal(ctr[WP_CTR_TLS_RECORD_ERROR], 0);
	assert_false(wp_tls_conn_failed(c));
	wp_tls_conn_free(c);
	peer_free(&p);
	wp_tls_ctx_unref(t);
}

static void test_rec_server_aes256(void **state)
{
	(void)state;
	rec_against_openssl("TLS_AES_256_GCM_SHA384", 0x1302, true, false);
}

static void test_rec_server_aes128(void **state)
{
	(void)state;
	rec_against_openssl("TLS_AES_128_GCM_SHA256", 0x1301, true, false);
}

static void test_rec_server_chacha(void **state)
{
	(void)state;
	rec_against_openssl("TLS_CHACHA20_POLY1305_SHA256", 0x1303, true, true);
}

static void test_rec_client_aes256(void **state)
{
	(void)state;
	rec_against_openssl("TLS_AES_256_GCM_SHA384", 0x1302, false, false);
}

static void test_rec_client_aes128(void **state)
{
	(void)state;
	rec_against_openssl("TLS_AES_128_GCM_SHA256", 0x1301, false, false);
}

static void test_rec_client_chacha(void **state)
{
	(void)state;
	rec_against_openssl("TLS_CHACHA20_POLY1305_SHA256", 0x1303, false, false);
}

/*
 * tls.ciphersuites: one handshake between a connection of ours (a context
 * with the n suites <ours>, 0: the default list) and an OpenSSL peer
 * offering or accepting <peer>; the suite both ends settled on, or 0 when
 * the handshake failed (then ours failed with a reason and counted it).
 */
static uint16_t suite_settled(const uint16_t *ours, unsigned n, bool ours_server, bool openssl_hs,
                              const char *peer)
{
	struct wp_tls_ctx *t = mkctx_suites(ours_server ? "waypoint" : "productpage", false, NULL,
	                                    openssl_hs, ours, n);
	struct wp_tls_conn *c;
	unsigned char buf[16384];
	uint16_t id = 0;
	struct peer p;
	int got;

	reset_ctrs();
	c = wp_tls_conn_new(t, ours_server ? WP_TLS_SERVER : WP_TLS_CLIENT,
	                    ours_server ? sctr : cctr);
	assert_non_null(c);
	peer_new(&p, !ours_server, ours_server ? "productpage" : "waypoint", peer);
	for (int i = 0; i < 10 && !wp_tls_conn_failed(c); i++) {
		if (!wp_tls_conn_established(c))
			(void)wp_tls_conn_handshake(c);
		to_peer(c, &p);
		ERR_clear_error();
		if (!SSL_is_init_finished(p.ssl))
			(void)SSL_do_handshake(p.ssl);
		while ((got = BIO_read(p.w, buf, sizeof(buf))) > 0)
			(void)wp_tls_conn_feed(c, buf, (size_t)got);
	}
	ERR_clear_error();
	if (wp_tls_conn_established(c)) {
		assert_true(SSL_is_init_finished(p.ssl));
		id = c->rec->suite->id;
		assert_int_equal(SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(p.ssl)), id);
	} else {
		/* no suite in common: our server refuses, our client hears the
		 * OpenSSL server's alert */
		assert_true(wp_tls_conn_failed(c));
		assert_false(SSL_is_init_finished(p.ssl));
		assert_int_equal(wp_tls_conn_fail_reason(c),
		                 ours_server ? WP_TLS_FAIL_OTHER : WP_TLS_FAIL_PEER_ALERT);
		assert_int_equal(
		        (ours_server ? sctr : cctr)[ours_server ? WP_CTR_TLS_HS_OTHER
		                                                : WP_CTR_TLS_HS_PEER_ALERT],
		        1);
	}
	wp_tls_conn_free(c);
	peer_free(&p);
	wp_tls_ctx_unref(t);
	return id;
}

/* The server's preference decides, on our handshake and on OpenSSL's; our
 * client offers in the configured order; a client offering none of the
 * configured suites is refused. */
static void test_suite_order(void **state)
{
	static const uint16_t aes256_first[] = {0x1302, 0x1301}, aes256[] = {0x1302};
	static const char offer256[] = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256";
	static const char offer128[] = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";

	(void)state;
	for (int openssl_hs = 0; openssl_hs <= 1; openssl_hs++) {
		/* the default: AES-128-GCM first, whatever the client prefers */
		assert_int_equal(suite_settled(NULL, 0, true, openssl_hs, offer256), 0x1301);
		assert_int_equal(suite_settled(NULL, 0, true, openssl_hs, NULL), 0x1301);
		assert_int_equal(suite_settled(aes256_first, 2, true, openssl_hs, offer128),
		                 0x1302);
		assert_int_equal(suite_settled(aes256, 1, true, openssl_hs, offer256), 0x1302);
		assert_int_equal(
		        suite_settled(aes256, 1, true, openssl_hs, "TLS_AES_128_GCM_SHA256"), 0);
		assert_int_equal(sctr[WP_CTR_TLS_HS_OWN], 0);
	}
	/* An OpenSSL server takes the client's first choice. */
	assert_int_equal(suite_settled(NULL, 0, false, false, NULL), 0x1301);
	assert_int_equal(suite_settled(aes256_first, 2, false, false, NULL), 0x1302);
	assert_int_equal(suite_settled(aes256, 1, false, false, "TLS_AES_128_GCM_SHA256"), 0);
}

/* A corrupted record from the peer: bad_record_mac both ways, counted. */
static void test_rec_bad_mac(void **state)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);
	struct wp_tls_conn *c;
	struct peer p;
	unsigned char buf[4096], x[64];
	int n, reason = 0;

	(void)state;
	reset_ctrs();
	c = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	peer_new(&p, false, "productpage", NULL);
	peer_pump(c, &p);
	assert_int_equal(peer_recv(&p, x, sizeof(x)), 0);
	assert_int_equal(SSL_write(p.ssl, "hello world", 11), 11);
	n = BIO_read(p.w, buf, sizeof(buf));
	assert_true(n > 20);
	buf[n - 3] ^= 0x40; /* inside the tag */
	assert_int_equal(wp_tls_conn_feed(c, buf, (size_t)n), n);
	assert_int_equal(wp_tls_conn_read(c, x, sizeof(x)), -EPROTO);
	assert_true(wp_tls_conn_failed(c));
	assert_int_equal(sctr[WP_CTR_TLS_REC_BAD_MAC], 1);
	assert_int_equal(sctr[WP_CTR_TLS_RECORD_ERROR], 1);
	assert_int_equal(wp_tls_conn_write(c, "x", 1), -EPROTO);
	to_peer(c, &p);
	assert_int_equal(peer_recv_ex(&p, x, sizeof(x), &reason), -2);
	assert_int_equal(reason, SSL_AD_REASON_OFFSET + SSL_AD_BAD_RECORD_MAC);
	wp_tls_conn_free(c);
	peer_free(&p);

	/* An oversize record (ciphertext beyond 2^14 + 256): record_overflow
	 * before any of it is buffered. */
	reset_ctrs();
	c = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	peer_new(&p, false, "productpage", NULL);
	peer_pump(c, &p);
	assert_int_equal(peer_recv(&p, x, sizeof(x)), 0);
	memset(buf, 0, sizeof(buf));
	buf[0] = 23;
	buf[1] = 3;
	buf[2] = 3;
	buf[3] = (16384 + 257) >> 8;
	buf[4] = (16384 + 257) & 0xff;
	assert_int_equal(wp_tls_conn_feed(c, buf, 100), 100);
	assert_int_equal(wp_tls_conn_read(c, x, sizeof(x)), -EPROTO);
	assert_int_equal(sctr[WP_CTR_TLS_REC_OVERFLOW], 1);
	to_peer(c, &p);
	assert_int_equal(peer_recv_ex(&p, x, sizeof(x), &reason), -2);
	assert_int_equal(reason, SSL_AD_REASON_OFFSET + SSL_AD_RECORD_OVERFLOW);
	wp_tls_conn_free(c);
	peer_free(&p);
	wp_tls_ctx_unref(t);
}

/* ---- crafted records between two of our connections ---- */

/* Seals one record of inner plaintext `pt` (content || type || padding
 * when type is 0) on a's sending key. */
static void craft(struct wp_tls_conn *a, uint8_t type, const void *pt, size_t len)
{
	assert_int_equal(wp_tls_rec_out_room(a->rec, len + REC_OVERHEAD), 0);
	assert_int_equal(wp_tls_rec_seal(a->rec, type, pt, len), 0);
}

static void move(struct wp_tls_conn *a, struct wp_tls_conn *b)
{
	unsigned char buf[16384];
	size_t n;

	while ((n = wp_tls_conn_take(a, buf, sizeof(buf))) > 0)
		assert_int_equal(wp_tls_conn_feed(b, buf, n), (ssize_t)n);
}

static void ready_pair(struct pair *p)
{
	unsigned char x[16];

	pair_new(p, "waypoint", "productpage", false, false);
	pump(p->s, p->c);
	assert_int_equal(wp_tls_conn_read(p->c, x, sizeof(x)), 0);
	assert_non_null(p->s->rec);
	assert_non_null(p->c->rec);
}

/* b fails with `ctr` and a learns it from b's alert. */
static void expect_fatal(struct pair *p, struct wp_tls_conn *a, struct wp_tls_conn *b,
                         uint64_t *bctr, enum wp_ctr ctr)
{
	uint64_t *actr = bctr == sctr ? cctr : sctr;
	unsigned char x[64];

	move(a, b);
	assert_int_equal(wp_tls_conn_read(b, x, sizeof(x)), -EPROTO);
	assert_int_equal(bctr[ctr], 1);
	assert_int_equal(bctr[WP_CTR_TLS_RECORD_ERROR], 1);
	move(b, a);
	assert_int_equal(wp_tls_conn_read(a, x, sizeof(x)), -EPROTO);
	assert_int_equal(wp_tls_conn_fail_reason(a), WP_TLS_FAIL_PEER_ALERT);
	assert_int_equal(actr[WP_CTR_TLS_HS_PEER_ALERT], 1);
	pair_free(p);
}

static void test_rec_crafted(void **state)
{
	struct pair p;
	unsigned char pt[16500], x[64];

	(void)state;
	/* Padding is stripped; empty data records, user_canceled, tickets
	 * (to a client) and a KeyUpdate in pieces across records are fine. */
	ready_pair(&p);
	memset(pt, 0, sizeof(pt));
	memcpy(pt, "abc\x17", 4);
	craft(p.s, 0, pt, 4 + 300);
	craft(p.s, 23, NULL, 0);
	craft(p.s, 21, "\x01\x5a", 2);
	static const uint8_t nst[] = {4, 0, 0, 6, 1, 2, 3, 4, 5, 6};
	craft(p.s, 22, nst, 3);
	craft(p.s, 22, nst + 3, 2);
	craft(p.s, 22, nst + 5, 5);
	craft(p.s, 22, "\x18\x00\x00", 3);
	craft(p.s, 22, "\x01\x00", 2);
	assert_int_equal(wp_tls_rec_update_dir(p.s->rec, &p.s->rec->wr, true), 0);
	craft(p.s, 0, "def\x17\0\0", 6);
	move(p.s, p.c);
	assert_int_equal(wp_tls_conn_read(p.c, x, sizeof(x)), 6);
	assert_memory_equal(x, "abcdef", 6);
	assert_int_equal(cctr[WP_CTR_TLS_REC_KEY_UPDATE_RX], 1);
	transfer(p.s, p.c, 50000);
	transfer(p.c, p.s, 50000);
	assert_false(wp_tls_conn_failed(p.c));
	pair_free(&p);

	/* A record of nothing but zeros. */
	ready_pair(&p);
	craft(p.s, 0, pt + 10, 20);
	expect_fatal(&p, p.s, p.c, cctr, WP_CTR_TLS_REC_UNEXPECTED);
	/* An unknown content type. */
	ready_pair(&p);
	craft(p.s, 99, "x", 1);
	expect_fatal(&p, p.s, p.c, cctr, WP_CTR_TLS_REC_UNEXPECTED);
	/* More than 2^14 bytes of plaintext. */
	ready_pair(&p);
	craft(p.c, 23, pt, 16385);
	expect_fatal(&p, p.c, p.s, sctr, WP_CTR_TLS_REC_OVERFLOW);
	/* A CertificateRequest after the handshake. */
	ready_pair(&p);
	craft(p.s, 22, "\x0d\x00\x00\x01\x00", 5);
	expect_fatal(&p, p.s, p.c, cctr, WP_CTR_TLS_REC_UNEXPECTED);
	/* A NewSessionTicket sent to a server. */
	ready_pair(&p);
	craft(p.c, 22, nst, sizeof(nst));
	expect_fatal(&p, p.c, p.s, sctr, WP_CTR_TLS_REC_UNEXPECTED);
	/* KeyUpdate with a value that is neither 0 nor 1. */
	ready_pair(&p);
	craft(p.c, 22, "\x18\x00\x00\x01\x02", 5);
	expect_fatal(&p, p.c, p.s, sctr, WP_CTR_TLS_REC_BAD_KEY_UPDATE);
	/* KeyUpdate not at the end of its record. */
	ready_pair(&p);
	craft(p.c, 22, "\x18\x00\x00\x01\x00\x18", 6);
	expect_fatal(&p, p.c, p.s, sctr, WP_CTR_TLS_REC_UNEXPECTED);
	/* Data while a handshake message is incomplete. */
	ready_pair(&p);
	craft(p.c, 22, "\x18\x00", 2);
	craft(p.c, 23, "x", 1);
	expect_fatal(&p, p.c, p.s, sctr, WP_CTR_TLS_REC_UNEXPECTED);
	/* A record from another epoch (the sender rekeyed, silently). */
	ready_pair(&p);
	assert_int_equal(wp_tls_rec_update_dir(p.c->rec, &p.c->rec->wr, true), 0);
	craft(p.c, 23, "x", 1);
	expect_fatal(&p, p.c, p.s, sctr, WP_CTR_TLS_REC_BAD_MAC);
	/* A plaintext alert record after the handshake. */
	ready_pair(&p);
	assert_int_equal(wp_tls_conn_feed(p.s, "\x15\x03\x03\x00\x02\x02\x28", 7), 7);
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -EPROTO);
	assert_int_equal(sctr[WP_CTR_TLS_REC_BAD_HEADER], 1);
	pair_free(&p);

	/* A fatal alert from the peer. */
	ready_pair(&p);
	craft(p.c, 21, "\x02\x28", 2);
	move(p.c, p.s);
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -EPROTO);
	assert_int_equal(wp_tls_conn_fail_reason(p.s), WP_TLS_FAIL_PEER_ALERT);
	assert_int_equal(sctr[WP_CTR_TLS_HS_PEER_ALERT], 1);
	assert_int_equal(wp_tls_conn_pending(p.s), 0); /* no alert back */
	pair_free(&p);

	/* Sequence numbers run out: sending fails... */
	ready_pair(&p);
	p.c->rec->wr.seq = UINT64_MAX;
	assert_int_equal(wp_tls_conn_write(p.c, "x", 1), -EPROTO);
	assert_int_equal(cctr[WP_CTR_TLS_REC_SEQ_WRAP], 1);
	assert_true(wp_tls_conn_failed(p.c));
	pair_free(&p);
	/* ...and so does receiving. */
	ready_pair(&p);
	p.s->rec->rd.seq = UINT64_MAX;
	craft(p.c, 23, "x", 1);
	move(p.c, p.s);
	assert_int_equal(wp_tls_conn_read(p.s, x, sizeof(x)), -EPROTO);
	assert_int_equal(sctr[WP_CTR_TLS_REC_SEQ_WRAP], 1);
	pair_free(&p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_spiffe_parse),
	        cmocka_unit_test(test_handshake_ok),
	        cmocka_unit_test(test_peek_advance),
	        cmocka_unit_test(test_no_client_cert),
	        cmocka_unit_test(test_no_alpn_h2),
	        cmocka_unit_test(test_tls12_refused),
	        cmocka_unit_test(test_feed_backpressure),
	        cmocka_unit_test(test_unclean_eof),
	        cmocka_unit_test(test_reload),
	        cmocka_unit_test(test_ticket_rotation),
	        cmocka_unit_test(test_idle_memory),
	        cmocka_unit_test(test_handshakes_keep_nothing),
	        cmocka_unit_test(test_trim),
	        cmocka_unit_test(test_rec_server_aes256),
	        cmocka_unit_test(test_rec_server_aes128),
	        cmocka_unit_test(test_rec_server_chacha),
	        cmocka_unit_test(test_rec_client_aes256),
	        cmocka_unit_test(test_rec_client_aes128),
	        cmocka_unit_test(test_rec_client_chacha),
	        cmocka_unit_test(test_suite_order),
	        cmocka_unit_test(test_rec_bad_mac),
	        cmocka_unit_test(test_rec_crafted),
	};
	int rc;

	if (wp_tls_mem_accounting_enable() != 0) {
		fprintf(stderr, "cannot hook OpenSSL's allocator\n");
		return 1;
	}
	if (test_pki_make(argc, argv, "tls", pki, sizeof(pki)) != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	return test_pki_remove(pki, rc);
}
