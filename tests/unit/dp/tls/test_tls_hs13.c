/*
 * Unit tests for our own TLS 1.3 server handshake (dp/tls/hs13.c) against
 * OpenSSL clients: a ClientHello cut into records and bytes, what is
 * handed to OpenSSL instead (a P-256 key share, TLS 1.2, no ALPN, not TLS
 * at all), a post-quantum client's hello (refused without X25519, taken
 * with it), a low-order X25519 share, a PSK binder or a client flight
 * altered on the way, tickets
 * out of their time, and the switch that leaves every handshake to
 * OpenSSL. The PKI is made at test time by tests/pki/mkpki.sh (argv[1]).
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
#include <openssl/ssl.h>

#include "../../test_pki.h"
#include "ticket.h"
#include "tls_int.h"
#include "tls_pair.h"
#include "tls_peer.h"

/* Everything the peer wrote so far. */
static size_t peer_out(struct peer *p, unsigned char *buf, size_t cap)
{
	int n = BIO_read(p->w, buf, (int)cap);

	return n > 0 ? (size_t)n : 0;
}

/* Moves bytes both ways until neither side has more; no verdict. */
static void pump_any(struct wp_tls_conn *s, struct peer *p)
{
	unsigned char buf[16384];
	int n;

	for (int i = 0; i < 10; i++) {
		if (!wp_tls_conn_established(s) && !wp_tls_conn_failed(s))
			(void)wp_tls_conn_handshake(s);
		to_peer(s, p);
		ERR_clear_error();
		if (!SSL_is_init_finished(p->ssl))
			(void)SSL_do_handshake(p->ssl);
		while ((n = BIO_read(p->w, buf, sizeof(buf))) > 0)
			(void)wp_tls_conn_feed(s, buf, (size_t)n);
	}
	ERR_clear_error();
}

/* A full handshake of a plain OpenSSL client with our server on t; the
 * session with its ticket (the caller frees it). */
static SSL_SESSION *ticket_of(struct wp_tls_ctx *t, struct peer *pc)
{
	struct wp_tls_conn *s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	unsigned char x[16];
	SSL_SESSION *sess;

	peer_new(pc, false, "productpage", NULL);
	peer_pump(s, pc);
	assert_true(wp_tls_conn_established(s));
	assert_int_equal(peer_recv(pc, x, sizeof(x)), 0); /* absorbs the ticket */
	sess = SSL_get1_session(pc->ssl);
	assert_non_null(sess);
	assert_true(SSL_SESSION_has_ticket(sess));
	assert_true(SSL_shutdown(pc->ssl) >= 0);
	SSL_free(pc->ssl);
	wp_tls_conn_free(s);
	return sess;
}

/* The ClientHello, split into two records, reaches the server a byte at
 * a time, and the server's flight reaches the client a byte at a time. */
static void test_hello_in_pieces(void **state)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);
	struct wp_tls_conn *s;
	struct peer pc;
	unsigned char ch[4096], two[4096 + 5], out[8192];
	size_t n, len, k, i;

	(void)state;
	reset_ctrs();
	s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	peer_new(&pc, false, "productpage", NULL);
	assert_true(SSL_do_handshake(pc.ssl) <= 0);
	n = peer_out(&pc, ch, sizeof(ch));
	assert_true(n > 100 && ch[0] == 22);
	len = (size_t)ch[3] << 8 | ch[4];
	assert_int_equal(n, 5 + len);
	/* [hdr][first k bytes][hdr][the rest] */
	k = len / 3;
	memcpy(two, ch, 5);
	two[3] = (unsigned char)(k >> 8);
	two[4] = (unsigned char)k;
	memcpy(two + 5, ch + 5, k);
	memcpy(two + 5 + k, ch, 5);
	two[5 + k + 3] = (unsigned char)((len - k) >> 8);
	two[5 + k + 4] = (unsigned char)(len - k);
	memcpy(two + 10 + k, ch + 5 + k, len - k);
	for (i = 0; i < n + 5; i++) {
		assert_int_equal(wp_tls_conn_feed(s, two + i, 1), 1);
		assert_int_equal(wp_tls_conn_handshake(s), 0);
		if (i + 1 < n + 5)
			assert_int_equal(wp_tls_conn_pending(s), 0);
	}
	n = wp_tls_conn_take(s, out, sizeof(out));
	assert_true(n > 0);
	for (i = 0; i < n; i++) {
		assert_int_equal(BIO_write(pc.r, out + i, 1), 1);
		(void)SSL_do_handshake(pc.ssl);
	}
	assert_int_equal(SSL_is_init_finished(pc.ssl), 1);
	peer_pump(s, &pc);
	assert_true(wp_tls_conn_established(s));
	assert_int_equal(sctr[WP_CTR_TLS_HS_OWN], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 0);
	assert_string_equal(wp_tls_conn_peer_id(s),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	wp_tls_conn_free(s);
	peer_free(&pc);
	wp_tls_ctx_unref(t);
}

/* What our handshake does not take goes to OpenSSL, which answers as it
 * always did. */
static void test_handed_to_openssl(void **state)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct wp_tls_ctx *t = mkctx("waypoint", true, NULL);
	struct wp_tls_conn *s;
	struct peer pc;

	(void)state;
	/* A P-256 key share alone (OpenSSL's server takes it as it is). */
	reset_ctrs();
	s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	peer_new(&pc, false, "productpage", NULL);
	assert_int_equal(SSL_set1_groups_list(pc.ssl, "P-256"), 1);
	peer_pump(s, &pc);
	assert_true(wp_tls_conn_established(s));
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_OWN], 0);
	assert_int_equal(sctr[WP_CTR_TLS_REC_SWITCHED], 1);
	assert_string_equal(wp_tls_conn_peer_id(s),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	wp_tls_conn_free(s);
	peer_free(&pc);

	/* TLS 1.2, allowed on this context. */
	reset_ctrs();
	s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	peer_new(&pc, false, "productpage", NULL);
	assert_int_equal(SSL_set_max_proto_version(pc.ssl, TLS1_2_VERSION), 1);
	assert_int_equal(SSL_set_min_proto_version(pc.ssl, TLS1_2_VERSION), 1);
	peer_pump(s, &pc);
	assert_true(wp_tls_conn_established(s));
	assert_int_equal(wp_tls_conn_version(s), TLS1_2_VERSION);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 1);
	wp_tls_conn_free(s);
	peer_free(&pc);

	/* No ALPN: OpenSSL refuses with no_application_protocol. */
	reset_ctrs();
	s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	peer_new(&pc, false, "productpage", NULL);
	assert_int_equal(SSL_set_alpn_protos(pc.ssl, NULL, 0), 0);
	pump_any(s, &pc);
	assert_true(wp_tls_conn_failed(s));
	assert_int_equal(wp_tls_conn_fail_reason(s), WP_TLS_FAIL_NO_ALPN_H2);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 1);
	wp_tls_conn_free(s);
	peer_free(&pc);

	/* Not TLS at all: refused by OpenSSL, not by us. */
	reset_ctrs();
	s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	assert_int_equal(wp_tls_conn_feed(s, http, sizeof(http) - 1), (ssize_t)sizeof(http) - 1);
	assert_int_equal(wp_tls_conn_handshake(s), -EPROTO);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 1);
	wp_tls_conn_free(s);

	/* A hello cut short by the end of the stream. */
	reset_ctrs();
	s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	assert_int_equal(wp_tls_conn_feed(s, "\x16\x03\x01\x02\x00\x01", 6), 6);
	assert_int_equal(wp_tls_conn_handshake(s), 0);
	wp_tls_conn_feed_eof(s);
	assert_int_equal(wp_tls_conn_handshake(s), -EPROTO);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 1);
	wp_tls_conn_free(s);
	wp_tls_ctx_unref(t);
}

/* The client's hello, altered, fed to a fresh server on t: refused by us
 * (not handed to OpenSSL) with a plaintext fatal alert, which the client
 * reads as reason. */
static void refused_in_clear(struct wp_tls_ctx *t, struct peer *pc, const unsigned char *ch,
                             size_t len, unsigned char alert, int reason)
{
	struct wp_tls_conn *s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	const unsigned char want[7] = {21, 3, 3, 0, 2, 2, alert};
	unsigned char out[64];
	size_t n;
	int got = 0;

	assert_int_equal(wp_tls_conn_feed(s, ch, len), (ssize_t)len);
	assert_int_equal(wp_tls_conn_handshake(s), -EPROTO);
	assert_int_equal(wp_tls_conn_fail_reason(s), WP_TLS_FAIL_OTHER);
	assert_int_equal(sctr[WP_CTR_TLS_HS_OTHER], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 0);
	n = wp_tls_conn_take(s, out, sizeof(out));
	assert_int_equal(n, 7);
	assert_memory_equal(out, want, 7);
	assert_int_equal(wp_tls_conn_pending(s), 0);
	assert_int_equal(BIO_write(pc->r, out, (int)n), (int)n);
	assert_int_equal(peer_recv_ex(pc, out, sizeof(out), &got), -2);
	assert_int_equal(got, reason);
	wp_tls_conn_free(s);
}

/* A PSK binder that does not verify ends the handshake with
 * decrypt_error, in the clear (RFC 8446 4.2.11). */
static void test_binder_refused(void **state)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);
	struct peer pc;
	SSL_SESSION *sess;
	unsigned char ch[4096];
	size_t n;

	(void)state;
	reset_ctrs();
	sess = ticket_of(t, &pc);
	peer_ssl(&pc, false);
	assert_int_equal(SSL_set_session(pc.ssl, sess), 1);
	assert_true(SSL_do_handshake(pc.ssl) <= 0);
	n = peer_out(&pc, ch, sizeof(ch));
	assert_true(n > 100);
	ch[n - 1] ^= 1; /* the binder is the hello's last field */
	refused_in_clear(t, &pc, ch, n, 51, SSL_R_TLSV1_ALERT_DECRYPT_ERROR);
	SSL_SESSION_free(sess);
	peer_free(&pc);
	wp_tls_ctx_unref(t);
}

/* A low-order X25519 share (u = 0) would make the shared secret zeros:
 * illegal_parameter, in the clear (RFC 8446 7.4.2, RFC 7748 6.1). */
static void test_low_order_share_refused(void **state)
{
	static const unsigned char x25519_share[] = {0x00, 0x1d, 0x00, 0x20};
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);
	struct peer pc;
	unsigned char ch[4096], *at = NULL;
	size_t n;

	(void)state;
	reset_ctrs();
	peer_new(&pc, false, "productpage", NULL);
	assert_true(SSL_do_handshake(pc.ssl) <= 0);
	n = peer_out(&pc, ch, sizeof(ch));
	assert_true(n > 100);
	for (size_t i = 0; at == NULL && i + sizeof(x25519_share) + 32 <= n; i++)
		if (memcmp(ch + i, x25519_share, sizeof(x25519_share)) == 0)
			at = ch + i + sizeof(x25519_share);
	assert_non_null(at);
	memset(at, 0, 32);
	refused_in_clear(t, &pc, ch, n, 47, SSL_R_SSLV3_ALERT_ILLEGAL_PARAMETER);
	peer_free(&pc);
	wp_tls_ctx_unref(t);
}

/* Appends n bytes, or a big-endian value of n bytes (p NULL). */
static void put(unsigned char **w, const void *p, size_t n, uint32_t v)
{
	for (size_t i = 0; i < n; i++)
		(*w)[i] = p != NULL ? ((const unsigned char *)p)[i]
		                    : (unsigned char)(v >> (8 * (n - 1 - i)));
	*w += n;
}

/* A ClientHello record as a post-quantum client sends it: supported
 * groups and key shares X25519MLKEM768 (0x11ec, a 1,216-byte share), then
 * X25519 (the base point as its share) when with_x25519. Its length. */
static size_t pq_hello(unsigned char *buf, bool with_x25519)
{
	static const unsigned char exts_tail[] = {
	        0, 43, 0, 3, 2, 3, 4,                    /* supported_versions: 1.3 */
	        0, 13, 0, 8, 0, 6, 4, 3,   8,   4, 4, 1, /* signature_algorithms */
	        0, 16, 0, 5, 0, 3, 2, 'h', '2',          /* ALPN h2 */
	        0, 45, 0, 2, 1, 1};                      /* psk_ke_modes: psk_dhe_ke */
	unsigned char share[1216], x25519[32] = {9}, *w = buf + 9, *ext_len;
	size_t shares = 2 + 2 + sizeof(share) + (with_x25519 ? 2 + 2 + 32 : 0);

	memset(share, 0x5a, sizeof(share));
	put(&w, NULL, 2, 0x0303);
	memset(w, 7, 32); /* random */
	w += 32;
	put(&w, NULL, 1, 0); /* no session id */
	put(&w, NULL, 2, 4);
	put(&w, NULL, 4, 0x13011302); /* AES-128-GCM, AES-256-GCM */
	put(&w, NULL, 2, 0x0100);     /* null compression */
	ext_len = w;
	w += 2;
	put(&w, NULL, 2, 10); /* supported_groups */
	put(&w, NULL, 2, with_x25519 ? 6 : 4);
	put(&w, NULL, 2, with_x25519 ? 4 : 2);
	put(&w, NULL, 2, 0x11ec);
	if (with_x25519)
		put(&w, NULL, 2, 0x001d);
	put(&w, NULL, 2, 51); /* key_share */
	put(&w, NULL, 2, (uint32_t)(2 + shares));
	put(&w, NULL, 2, (uint32_t)shares);
	put(&w, NULL, 2, 0x11ec);
	put(&w, NULL, 2, sizeof(share));
	put(&w, share, sizeof(share), 0);
	if (with_x25519) {
		put(&w, NULL, 2, 0x001d);
		put(&w, NULL, 2, 32);
		put(&w, x25519, 32, 0);
	}
	put(&w, exts_tail, sizeof(exts_tail), 0);
	ext_len[0] = (unsigned char)((size_t)(w - ext_len - 2) >> 8);
	ext_len[1] = (unsigned char)(w - ext_len - 2);
	buf[0] = 22; /* handshake record, then the ClientHello's header */
	buf[1] = 3;
	buf[2] = 1;
	buf[3] = (unsigned char)((size_t)(w - buf - 5) >> 8);
	buf[4] = (unsigned char)(w - buf - 5);
	buf[5] = 1;
	buf[6] = 0;
	buf[7] = (unsigned char)((size_t)(w - buf - 9) >> 8);
	buf[8] = (unsigned char)(w - buf - 9);
	return (size_t)(w - buf);
}

/* A post-quantum client (ztunnel with COMPLIANCE_POLICY=pqc) offers
 * X25519MLKEM768 alone, which OpenSSL 3.0 lacks: the hello goes to
 * OpenSSL, which refuses it with handshake_failure. Offered with an
 * X25519 share after it (a client preferring the hybrid), our handshake
 * skips the unknown share and answers on X25519. */
static void test_pq_hello(void **state)
{
	static const unsigned char refusal[7] = {21, 3, 3, 0, 2, 2, 40};
	static const unsigned char x25519_chosen[] = {0, 51, 0, 36, 0, 0x1d, 0, 32};
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);
	unsigned char ch[2048], out[4096];
	struct wp_tls_conn *s;
	size_t n, len;
	bool found = false;

	(void)state;
	reset_ctrs();
	s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	len = pq_hello(ch, false);
	assert_int_equal(wp_tls_conn_feed(s, ch, len), (ssize_t)len);
	assert_true(wp_tls_conn_handshake(s) < 0);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_OWN], 0);
	n = wp_tls_conn_take(s, out, sizeof(out));
	assert_int_equal(n, sizeof(refusal));
	assert_memory_equal(out, refusal, sizeof(refusal));
	wp_tls_conn_free(s);

	reset_ctrs();
	s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	len = pq_hello(ch, true);
	assert_int_equal(wp_tls_conn_feed(s, ch, len), (ssize_t)len);
	assert_int_equal(wp_tls_conn_handshake(s), 0);
	assert_non_null(s->hs); /* our handshake answered (counted as ours when done) */
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 0);
	n = wp_tls_conn_take(s, out, sizeof(out));
	assert_true(n > 100 && out[0] == 22 && out[5] == 2); /* ServerHello */
	for (size_t i = 0; !found && i + sizeof(x25519_chosen) <= n; i++)
		found = memcmp(out + i, x25519_chosen, sizeof(x25519_chosen)) == 0;
	assert_true(found);
	wp_tls_conn_free(s);
	wp_tls_ctx_unref(t);
}

/* One byte of the client's encrypted flight altered: bad_record_mac. */
static void test_client_flight_altered(void **state)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);
	struct wp_tls_conn *s;
	struct peer pc;
	unsigned char buf[16384];
	size_t n;

	(void)state;
	reset_ctrs();
	s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	peer_new(&pc, false, "productpage", NULL);
	assert_true(SSL_do_handshake(pc.ssl) <= 0);
	n = peer_out(&pc, buf, sizeof(buf));
	assert_int_equal(wp_tls_conn_feed(s, buf, n), (ssize_t)n);
	assert_int_equal(wp_tls_conn_handshake(s), 0);
	n = wp_tls_conn_take(s, buf, sizeof(buf));
	assert_int_equal(BIO_write(pc.r, buf, (int)n), (int)n);
	assert_int_equal(SSL_do_handshake(pc.ssl), 1);
	n = peer_out(&pc, buf, sizeof(buf));
	assert_true(n > 200);
	buf[n - 20] ^= 0x40;
	assert_int_equal(wp_tls_conn_feed(s, buf, n), (ssize_t)n);
	assert_int_equal(wp_tls_conn_handshake(s), -EPROTO);
	assert_int_equal(sctr[WP_CTR_TLS_REC_BAD_MAC], 1);
	assert_true(wp_tls_conn_pending(s) > 0); /* the alert */
	assert_null(wp_tls_conn_peer_id(s));
	wp_tls_conn_free(s);
	peer_free(&pc);
	wp_tls_ctx_unref(t);
}

static uint64_t clock_s;

static uint64_t test_clock(void)
{
	return clock_s;
}

/* A ticket is good for one period of the key rotation: after that, or
 * when its key is gone, a full handshake. */
static void test_ticket_lifetime(void **state)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);
	struct wp_tls_conn *s;
	struct peer pc;
	SSL_SESSION *sess;

	(void)state;
	/* 10 s into an epoch ahead of the real clock (the ratchet never
	 * steps back) */
	clock_s = (uint64_t)time(NULL) / 3600 * 3600 + 10 * 3600 + 10;
	wp_tls_tickets_set_clock(t->tickets, test_clock);
	for (int round = 0; round < 3; round++) {
		reset_ctrs();
		sess = ticket_of(t, &pc);
		/* round 0: at once; 1: past the lifetime, still in the next
		 * epoch; 2: two epochs on, its key erased */
		clock_s += round == 0 ? 1 : round == 1 ? 3600 + 5 : 2 * 3600;
		peer_ssl(&pc, false);
		assert_int_equal(SSL_set_session(pc.ssl, sess), 1);
		s = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
		peer_pump(s, &pc);
		assert_true(wp_tls_conn_established(s));
		assert_int_equal(wp_tls_conn_resumed(s), round == 0);
		assert_int_equal(sctr[WP_CTR_TLS_HS_RESUMED], round == 0);
		assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 1 + (round != 0));
		if (round == 2)
			assert_int_equal(sctr[WP_CTR_TLS_TICKET_REFUSED], 1);
		wp_tls_conn_free(s);
		SSL_SESSION_free(sess);
		peer_free(&pc);
	}
	wp_tls_tickets_set_clock(t->tickets, NULL);
	wp_tls_ctx_unref(t);
}

/* tls.openssl_handshake: OpenSSL runs every handshake, and the connection
 * moves to our record layer afterwards, as before hs13.c. */
static void test_openssl_handshake_switch(void **state)
{
	struct pair p;

	(void)state;
	reset_ctrs();
	p.sctx = mkctx_hs("waypoint", false, NULL, true);
	p.cctx = mkctx("productpage", false, NULL);
	p.s = wp_tls_conn_new(p.sctx, WP_TLS_SERVER, sctr);
	p.c = wp_tls_conn_new(p.cctx, WP_TLS_CLIENT, cctr);
	assert_null(p.s->hs);
	assert_non_null(p.s->ssl);
	pump(p.s, p.c);
	assert_true(wp_tls_conn_established(p.s));
	assert_int_equal(sctr[WP_CTR_TLS_HS_OWN], 0);
	assert_int_equal(sctr[WP_CTR_TLS_REC_SWITCHED], 1);
	pair_free(&p);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_hello_in_pieces),
	        cmocka_unit_test(test_handed_to_openssl),
	        cmocka_unit_test(test_binder_refused),
	        cmocka_unit_test(test_low_order_share_refused),
	        cmocka_unit_test(test_pq_hello),
	        cmocka_unit_test(test_client_flight_altered),
	        cmocka_unit_test(test_ticket_lifetime),
	        cmocka_unit_test(test_openssl_handshake_switch),
	};
	int rc;

	if (test_pki_make(argc, argv, "tls-hs13", pki, sizeof(pki)) != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	return test_pki_remove(pki, rc);
}
