/*
 * Interoperability of our TLS 1.3 server (dp/tls, handshake in hs13.c)
 * with a second, independent implementation: a GnuTLS client talks to a
 * server wp_tls_conn over two byte buffers in memory. It proves that what
 * the other tests see with OpenSSL clients is not an agreement between
 * OpenSSL and code written against it: the full mTLS handshake (client
 * certificate, ALPN h2, X25519, both AES-GCM suites), data both ways in
 * odd slices, a KeyUpdate asked for by the peer, close_notify both ways,
 * resumption with our stateless tickets (and their refusal under another
 * key set), the hand-over of a P-256-only hello to OpenSSL, and the
 * refusals (no client certificate; an untrusted, foreign, expired one or
 * one without a SPIFFE ID), whose alerts GnuTLS must be able to read. The
 * PKI is made at test time by tests/pki/mkpki.sh (argv[1]) in a temporary
 * directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "../../test_pki.h"
#include "tls_pair.h"
#include "tls_int.h"
#include "wp/counters.h"

#define PRODUCTPAGE "spiffe://cluster.local/ns/default/sa/productpage"
#define PRIO        "NORMAL:-VERS-ALL:+VERS-TLS1.3"

/* ---- a GnuTLS client over two byte buffers ---- */

struct gbuf {
	unsigned char *p;
	size_t off, len, cap;
};

static size_t gbuf_avail(const struct gbuf *b)
{
	return b->len - b->off;
}

static void gbuf_put(struct gbuf *b, const void *d, size_t n)
{
	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

struct gpeer {
	gnutls_session_t s;
	gnutls_certificate_credentials_t cred;
	struct gbuf in;  /* our ciphertext, for GnuTLS to pull */
	struct gbuf out; /* what GnuTLS pushed, for our connection */
	int hs;          /* last gnutls_handshake result (0: done) */
};

static ssize_t g_push(gnutls_transport_ptr_t ptr, const void *d, size_t n)
{
	struct gpeer *p = ptr;

	gbuf_put(&p->out, d, n);
	return (ssize_t)n;
}

static ssize_t g_pull(gnutls_transport_ptr_t ptr, void *d, size_t n)
{
	struct gpeer *p = ptr;

	if (gbuf_avail(&p->in) == 0) {
		gnutls_transport_set_errno(p->s, EAGAIN);
		return -1;
	}
	n = WP_MIN(n, gbuf_avail(&p->in));
	memcpy(d, p->in.p + p->in.off, n);
	p->in.off += n;
	return (ssize_t)n;
}

static int g_pull_timeout(gnutls_transport_ptr_t ptr, unsigned ms)
{
	struct gpeer *p = ptr;

	(void)ms;
	return gbuf_avail(&p->in) > 0 ? 1 : 0;
}

/* A GnuTLS client with priority PRIO<prio_extra>, trusting ca.pem, with
 * <who>'s certificate (NULL: none), offering ALPN h2 and no server name. */
static void gpeer_new(struct gpeer *p, const char *prio_extra, const char *who)
{
	char ca[512], cert[512], key[512], n[64], prio[256];
	gnutls_datum_t h2 = {(unsigned char *)"h2", 2};
	const char *errpos = NULL;

	memset(p, 0, sizeof(*p));
	p->hs = GNUTLS_E_AGAIN;
	assert_int_equal(gnutls_certificate_allocate_credentials(&p->cred), 0);
	path(ca, sizeof(ca), "ca.pem");
	assert_int_equal(gnutls_certificate_set_x509_trust_file(p->cred, ca, GNUTLS_X509_FMT_PEM),
	                 1);
	if (who != NULL) {
		snprintf(n, sizeof(n), "%s.pem", who);
		path(cert, sizeof(cert), n);
		snprintf(n, sizeof(n), "%s-key.pem", who);
		path(key, sizeof(key), n);
		assert_int_equal(gnutls_certificate_set_x509_key_file(p->cred, cert, key,
		                                                      GNUTLS_X509_FMT_PEM),
		                 0);
	}
	assert_int_equal(gnutls_init(&p->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
	snprintf(prio, sizeof(prio), "%s%s", PRIO, prio_extra);
	assert_int_equal(gnutls_priority_set_direct(p->s, prio, &errpos), 0);
	assert_int_equal(gnutls_credentials_set(p->s, GNUTLS_CRD_CERTIFICATE, p->cred), 0);
	assert_int_equal(gnutls_alpn_set_protocols(p->s, &h2, 1, 0), 0);
	gnutls_transport_set_ptr(p->s, p);
	gnutls_transport_set_push_function(p->s, g_push);
	gnutls_transport_set_pull_function(p->s, g_pull);
	gnutls_transport_set_pull_timeout_function(p->s, g_pull_timeout);
}

static void gpeer_free(struct gpeer *p)
{
	gnutls_deinit(p->s);
	gnutls_certificate_free_credentials(p->cred);
	free(p->in.p);
	free(p->out.p);
}

/* Everything our connection produced, to GnuTLS. */
static void to_g(struct wp_tls_conn *c, struct gpeer *p)
{
	unsigned char buf[16384];
	size_t n;

	while ((n = wp_tls_conn_take(c, buf, sizeof(buf))) > 0)
		gbuf_put(&p->in, buf, n);
}

/* Everything GnuTLS produced, to our connection (small: handshake
 * messages, KeyUpdate, alerts). */
static bool from_g(struct gpeer *p, struct wp_tls_conn *c)
{
	size_t n = gbuf_avail(&p->out);

	if (n == 0)
		return false;
	assert_int_equal(wp_tls_conn_feed(c, p->out.p + p->out.off, n), (ssize_t)n);
	p->out.off += n;
	return true;
}

/* Steps both handshakes and moves their bytes until nothing moves; either
 * side may fail (the callers check). */
static void g_pump(struct wp_tls_conn *c, struct gpeer *p)
{
	bool moved;
	int rounds = 0;

	do {
		moved = false;
		if (p->hs != 0 && !gnutls_error_is_fatal(p->hs))
			p->hs = gnutls_handshake(p->s);
		moved |= from_g(p, c);
		if (!wp_tls_conn_established(c) && !wp_tls_conn_failed(c))
			(void)wp_tls_conn_handshake(c);
		if (wp_tls_conn_pending(c) > 0) {
			to_g(c, p);
			moved = true;
		}
		assert_true(++rounds < 50);
	} while (moved);
	if (p->hs != 0)
		print_message("gnutls_handshake: %s\n", gnutls_strerror(p->hs));
}

/* A full handshake that must succeed: both sides done, the GnuTLS side
 * checked (TLS 1.3, ALPN h2, our certificate verified against ca.pem, no
 * host name: ours carries only a SPIFFE URI). */
static void g_established(struct wp_tls_conn *c, struct gpeer *p)
{
	gnutls_datum_t alpn;

	g_pump(c, p);
	assert_int_equal(p->hs, 0);
	assert_true(wp_tls_conn_established(c));
	assert_string_equal(wp_tls_conn_peer_id(c), PRODUCTPAGE);
	assert_int_equal(wp_tls_conn_version(c), TLS1_3_VERSION);
	assert_int_equal(gnutls_protocol_get_version(p->s), GNUTLS_TLS1_3);
	assert_int_equal(gnutls_alpn_get_selected_protocol(p->s, &alpn), 0);
	assert_int_equal(alpn.size, 2);
	assert_memory_equal(alpn.data, "h2", 2);
	if (!gnutls_session_is_resumed(p->s)) {
		unsigned status = ~0u;

		assert_int_equal(gnutls_certificate_verify_peers2(p->s, &status), 0);
		assert_int_equal(status, 0);
	}
}

/* GnuTLS reads what is there into buf: the bytes read, or (nothing read)
 * 0 after close_notify, GNUTLS_E_AGAIN when no data came, or GnuTLS's
 * error code. */
static ssize_t g_recv(struct gpeer *p, unsigned char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = gnutls_record_recv(p->s, buf + got, len - got);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		/* (after a NewSessionTicket or KeyUpdate too: read on) */
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			if (gbuf_avail(&p->in) > 0 || gnutls_record_check_pending(p->s) > 0)
				continue;
			if (got == 0)
				return GNUTLS_E_AGAIN;
			break;
		}
		if (got > 0)
			break;
		if (n < 0)
			print_message("gnutls_record_recv: %s\n", gnutls_strerror((int)n));
		return n;
	}
	return (ssize_t)got;
}

/* ---- data both ways ---- */

static void pattern(unsigned char *b, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(i * seed + (i >> 11) + seed);
}

/* Odd sizes: record boundaries land anywhere in feeds and reads. */
static const size_t odd[] = {1, 2, 3, 5, 7, 13, 4093, 17, 16385, 1000, 40001, 16384, 21};

static size_t next_odd(size_t *k)
{
	return odd[(*k)++ % WP_ARRAY_SIZE(odd)];
}

/* GnuTLS sends len bytes in odd writes; they reach our connection in odd
 * slices and are read in odd sizes. What ours answers goes to GnuTLS. */
static void g_to_conn(struct gpeer *p, struct wp_tls_conn *c, size_t len, unsigned seed)
{
	unsigned char *src = malloc(len), *dst = malloc(len);
	size_t sent = 0, got = 0, k = seed, guard = 0;

	assert_true(src != NULL && dst != NULL);
	pattern(src, len, seed);
	while (got < len) {
		if (sent < len) {
			size_t w = next_odd(&k);
			ssize_t n;

			w = WP_MIN(len - sent, w);
			n = gnutls_record_send(p->s, src + sent, w);
			if (n <= 0)
				print_message("gnutls_record_send: %s\n", gnutls_strerror((int)n));
			assert_true(n > 0);
			sent += (size_t)n;
		}
		while (gbuf_avail(&p->out) > 0) {
			size_t sl = next_odd(&k);
			ssize_t f, r;

			sl = WP_MIN(gbuf_avail(&p->out), sl);
			f = wp_tls_conn_feed(c, p->out.p + p->out.off, sl);
			assert_true(f >= 0);
			p->out.off += (size_t)f;
			do {
				size_t want = next_odd(&k);

				want = WP_MIN(len - got, want);
				r = want > 0 ? wp_tls_conn_read(c, dst + got, want) : 0;
				assert_true(r >= 0);
				got += (size_t)r;
			} while (r > 0);
			assert_true(++guard < 1000000);
		}
		to_g(c, p);
		assert_true(++guard < 1000000);
	}
	assert_memory_equal(src, dst, len);
	free(src);
	free(dst);
}

/* Our connection sends len bytes in odd writes; GnuTLS reads them. What
 * GnuTLS answers goes to ours. */
static void conn_to_g(struct wp_tls_conn *c, struct gpeer *p, size_t len, unsigned seed)
{
	unsigned char *src = malloc(len), *dst = malloc(len);
	size_t sent = 0, got = 0, k = seed, guard = 0;

	assert_true(src != NULL && dst != NULL);
	pattern(src, len, seed);
	while (got < len) {
		ssize_t r;

		if (sent < len) {
			size_t w = next_odd(&k);
			ssize_t n;

			w = WP_MIN(len - sent, w);
			n = wp_tls_conn_write(c, src + sent, w);
			assert_true(n >= 0);
			sent += (size_t)n;
		}
		to_g(c, p);
		r = g_recv(p, dst + got, len - got);
		assert_true(r > 0 || r == GNUTLS_E_AGAIN);
		if (r > 0)
			got += (size_t)r;
		(void)from_g(p, c);
		assert_true(++guard < 1000000);
	}
	assert_memory_equal(src, dst, len);
	free(src);
	free(dst);
}

/* ---- the tests ---- */

/* Full handshake, data, a KeyUpdate asked for by GnuTLS, close_notify
 * both ways. */
static void test_full_handshake(void **state)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);
	struct wp_tls_conn *c;
	unsigned char x[16];
	struct gpeer p;

	(void)state;
	reset_ctrs();
	c = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	assert_non_null(c);
	gpeer_new(&p, "", "productpage");
	g_established(c, &p);
	assert_false(wp_tls_conn_resumed(c));
	assert_false(gnutls_session_is_resumed(p.s));
	assert_int_equal(sctr[WP_CTR_TLS_HS_OWN], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 0);
	assert_int_equal(gnutls_cipher_get(p.s), GNUTLS_CIPHER_AES_128_GCM);
	assert_int_equal(gnutls_group_get(p.s), GNUTLS_GROUP_X25519);

	g_to_conn(&p, c, 300 * 1024, 3);
	conn_to_g(c, &p, 300 * 1024, 5);

	/* GnuTLS updates its key and asks for ours: we answer with our own
	 * KeyUpdate, and the data that follows is under the new keys. */
	assert_int_equal(sctr[WP_CTR_TLS_REC_KEY_UPDATE_RX], 0);
	assert_int_equal(gnutls_session_key_update(p.s, GNUTLS_KU_PEER), 0);
	g_to_conn(&p, c, 200 * 1024, 7);
	assert_int_equal(sctr[WP_CTR_TLS_REC_KEY_UPDATE_RX], 1);
	assert_int_equal(sctr[WP_CTR_TLS_REC_KEY_UPDATE_TX], 1);
	conn_to_g(c, &p, 200 * 1024, 11);
	g_to_conn(&p, c, 1000, 13);

	/* close_notify from GnuTLS: a clean EOF for us. */
	assert_int_equal(gnutls_bye(p.s, GNUTLS_SHUT_WR), 0);
	(void)from_g(&p, c);
	assert_int_equal(wp_tls_conn_read(c, x, sizeof(x)), -EPIPE);
	/* ours: a clean EOF for GnuTLS. */
	assert_int_equal(wp_tls_conn_shutdown(c), 0);
	to_g(c, &p);
	assert_int_equal(g_recv(&p, x, sizeof(x)), 0);
	assert_int_equal(sctr[WP_CTR_TLS_UNCLEAN_EOF], 0);

	gpeer_free(&p);
	wp_tls_conn_free(c);
	wp_tls_ctx_unref(t);
}

/* A connection from a GnuTLS client offering *ticket (size 0: none) to a
 * server connection on t; *ticket then holds its newest session. Returns
 * whether it resumed (both sides agree). */
static bool g_connect(struct wp_tls_ctx *t, gnutls_datum_t *ticket)
{
	struct wp_tls_conn *c = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	unsigned char x[16];
	struct gpeer p;
	bool resumed;

	assert_non_null(c);
	gpeer_new(&p, "", "productpage");
	if (ticket->size > 0)
		assert_int_equal(gnutls_session_set_data(p.s, ticket->data, ticket->size), 0);
	g_established(c, &p);
	resumed = wp_tls_conn_resumed(c);
	assert_int_equal(resumed, gnutls_session_is_resumed(p.s) != 0);
	g_to_conn(&p, c, 50000, 17);
	/* GnuTLS reads our NewSessionTicket with the data that follows it. */
	assert_int_equal(wp_tls_conn_write(c, "ticket", 6), 6);
	to_g(c, &p);
	assert_int_equal(g_recv(&p, x, sizeof(x)), 6);
	assert_memory_equal(x, "ticket", 6);
	assert_true(gnutls_session_get_flags(p.s) & GNUTLS_SFLAGS_SESSION_TICKET);
	conn_to_g(c, &p, 50000, 19);
	gnutls_free(ticket->data);
	assert_int_equal(gnutls_session_get_data2(p.s, ticket), 0);
	assert_true(ticket->size > 0);
	assert_int_equal(gnutls_bye(p.s, GNUTLS_SHUT_WR), 0);
	gpeer_free(&p);
	wp_tls_conn_free(c);
	return resumed;
}

/* Resumption with our stateless tickets; another key set refuses them. */
static void test_resumption(void **state)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL), *other;
	gnutls_datum_t ticket = {NULL, 0}, first = {NULL, 0};

	(void)state;
	reset_ctrs();
	assert_false(g_connect(t, &ticket));
	assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 1);
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_ISSUED], 1);
	first.data = gnutls_malloc(ticket.size);
	assert_non_null(first.data);
	memcpy(first.data, ticket.data, ticket.size);
	first.size = ticket.size;

	assert_true(g_connect(t, &ticket));
	assert_int_equal(sctr[WP_CTR_TLS_HS_RESUMED], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 1);
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_ACCEPTED], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_OWN], 2);
	/* the fresh ticket of the resumption resumes too */
	assert_true(g_connect(t, &ticket));
	assert_int_equal(sctr[WP_CTR_TLS_HS_RESUMED], 2);

	/* a context made separately has its own ticket keys: full handshake */
	other = mkctx("waypoint", false, NULL);
	assert_false(g_connect(other, &first));
	assert_int_equal(sctr[WP_CTR_TLS_TICKET_REFUSED], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 2);
	assert_int_equal(sctr[WP_CTR_TLS_HS_RESUMED], 2);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 0);

	gnutls_free(ticket.data);
	gnutls_free(first.data);
	wp_tls_ctx_unref(other);
	wp_tls_ctx_unref(t);
}

/* GnuTLS with priority PRIO + <prio> to a fresh server: established, the
 * handshake ours (own) or OpenSSL's, on <cipher>; data both ways. */
static void g_session(const char *prio, bool own, gnutls_cipher_algorithm_t cipher,
                      gnutls_group_t group)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);
	struct wp_tls_conn *c;
	struct gpeer p;

	reset_ctrs();
	c = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	assert_non_null(c);
	gpeer_new(&p, prio, "productpage");
	g_established(c, &p);
	assert_int_equal(sctr[WP_CTR_TLS_HS_OWN], own ? 1 : 0);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], own ? 0 : 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 1);
	assert_int_equal(gnutls_group_get(p.s), group);
	assert_int_equal(gnutls_cipher_get(p.s), cipher);
	g_to_conn(&p, c, 200000, 23);
	conn_to_g(c, &p, 200000, 29);
	gpeer_free(&p);
	wp_tls_conn_free(c);
	wp_tls_ctx_unref(t);
}

/* A P-256 key share only: hs13.c hands the hello to OpenSSL, which
 * completes the handshake. */
static void test_p256_to_openssl(void **state)
{
	(void)state;
	g_session(":-GROUP-ALL:+GROUP-SECP256R1", false, GNUTLS_CIPHER_AES_128_GCM,
	          GNUTLS_GROUP_SECP256R1);
}

/* Only TLS_AES_256_GCM_SHA384 offered: our second suite. */
static void test_aes256(void **state)
{
	(void)state;
	g_session(":-CIPHER-ALL:+AES-256-GCM", true, GNUTLS_CIPHER_AES_256_GCM,
	          GNUTLS_GROUP_X25519);
}

/*
 * GnuTLS as <who> (NULL: no certificate) to a server on t: the server
 * refuses with <want> (counter ctr), and GnuTLS reads the fatal alert
 * <alert>. GnuTLS's handshake ends with its Finished, before ours saw its
 * certificate: it learns of the refusal on its first read, so the alert
 * must come under our application traffic key (RFC 8446, appendix A.2:
 * the server's sending key is the application one from its Finished on).
 */
static void g_refused(struct wp_tls_ctx *t, const char *who, enum wp_tls_fail want, enum wp_ctr ctr,
                      gnutls_alert_description_t alert)
{
	struct wp_tls_conn *c;
	unsigned char x[16];
	struct gpeer p;
	ssize_t r;

	reset_ctrs();
	c = wp_tls_conn_new(t, WP_TLS_SERVER, sctr);
	assert_non_null(c);
	gpeer_new(&p, "", who);
	g_pump(c, &p);
	assert_true(wp_tls_conn_failed(c));
	assert_null(wp_tls_conn_peer_id(c));
	assert_int_equal(wp_tls_conn_fail_reason(c), want);
	assert_int_equal(sctr[ctr], 1);
	assert_int_equal(sctr[WP_CTR_TLS_HS_DONE], 0);
	assert_int_equal(sctr[WP_CTR_TLS_HS_TO_OPENSSL], 0);
	assert_int_equal(wp_tls_conn_write(c, "x", 1), -EPROTO);
	r = p.hs == 0 ? g_recv(&p, x, sizeof(x)) : p.hs;
	if (r == GNUTLS_E_FATAL_ALERT_RECEIVED)
		print_message("%s: alert %s\n", who != NULL ? who : "(no certificate)",
		              gnutls_alert_get_name(gnutls_alert_get(p.s)));
	assert_int_equal(r, GNUTLS_E_FATAL_ALERT_RECEIVED);
	assert_int_equal(gnutls_alert_get(p.s), alert);
	gpeer_free(&p);
	wp_tls_conn_free(c);
}

/* No client certificate: certificate_required, from OpenSSL's handshake
 * (the reference: this harness reads such an alert) and from ours. */
static void test_no_client_cert(void **state)
{
	struct wp_tls_ctx *t = mkctx_hs("waypoint", false, NULL, true);

	(void)state;
	g_refused(t, NULL, WP_TLS_FAIL_NO_PEER_CERT, WP_CTR_TLS_HS_NO_PEER_CERT,
	          GNUTLS_A_CERTIFICATE_REQUIRED);
	wp_tls_ctx_unref(t);

	t = mkctx("waypoint", false, NULL);
	g_refused(t, NULL, WP_TLS_FAIL_NO_PEER_CERT, WP_CTR_TLS_HS_NO_PEER_CERT,
	          GNUTLS_A_CERTIFICATE_REQUIRED);
	wp_tls_ctx_unref(t);
}

/* Client certificates we refuse, with the reasons test_tls_verify.c
 * expects with OpenSSL clients, and the alerts hs13.c picks for them. */
static void refused_by_ours(const char *who, enum wp_tls_fail want, enum wp_ctr ctr,
                            gnutls_alert_description_t alert)
{
	struct wp_tls_ctx *t = mkctx("waypoint", false, NULL);

	g_refused(t, who, want, ctr, alert);
	wp_tls_ctx_unref(t);
}

/* signed by a CA our roots do not hold */
static void test_untrusted_chain(void **state)
{
	(void)state;
	refused_by_ours("rogue", WP_TLS_FAIL_BAD_CHAIN, WP_CTR_TLS_HS_BAD_CHAIN,
	                GNUTLS_A_UNKNOWN_CA);
}

/* spiffe://evil.local/...: a trust domain that is neither ours nor an alias */
static void test_foreign_trust_domain(void **state)
{
	(void)state;
	refused_by_ours("evil", WP_TLS_FAIL_FOREIGN_TD, WP_CTR_TLS_HS_FOREIGN_TRUST_DOMAIN,
	                GNUTLS_A_HANDSHAKE_FAILURE);
}

static void test_expired(void **state)
{
	(void)state;
	refused_by_ours("expired", WP_TLS_FAIL_EXPIRED, WP_CTR_TLS_HS_EXPIRED,
	                GNUTLS_A_CERTIFICATE_EXPIRED);
}

static void test_no_spiffe_id(void **state)
{
	(void)state;
	refused_by_ours("nospiffe", WP_TLS_FAIL_NO_SPIFFE_ID, WP_CTR_TLS_HS_NO_SPIFFE_ID,
	                GNUTLS_A_HANDSHAKE_FAILURE);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_full_handshake),       cmocka_unit_test(test_resumption),
	        cmocka_unit_test(test_p256_to_openssl),      cmocka_unit_test(test_aes256),
	        cmocka_unit_test(test_no_client_cert),       cmocka_unit_test(test_untrusted_chain),
	        cmocka_unit_test(test_foreign_trust_domain), cmocka_unit_test(test_expired),
	        cmocka_unit_test(test_no_spiffe_id),
	};
	int rc;

	if (test_pki_make(argc, argv, "tls-gnutls", pki, sizeof(pki)) != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	return test_pki_remove(pki, rc);
}
