/*
 * The server's side of an mTLS 1.3 handshake, in one process and without
 * a network: dp/tls's server (a wp_tls_conn on the waypoint's context:
 * our own handshake, dp/tls/hs13.c, the memo of verified chains, the
 * ticket keys), the same with tls.openssl_handshake (OpenSSL's libssl
 * runs the handshake, with the EC key ENGINE and our chain built once)
 * and a stock OpenSSL server with the same files and the same checks
 * (client certificate required, ALPN h2, TLS 1.3, the suite dp/tls picks,
 * one stateless ticket), measured in the same run, beside the crypto floor: what the handshake's
 * public-key operations cost on their own in this process through EVP (an
 * X25519 key pair and agreement; for a full handshake also our ECDSA
 * signature and the verification of the client's), and what dp/tls's own
 * X25519 share costs (dp/tls/x25519.c, cheaper than OpenSSL's).
 *
 *   tests/pki/mkpki.sh DIR && build/bench/tls_hs DIR [N [all|stock|libssl|wp]]
 *
 * The client is a plain OpenSSL client with productpage's certificate,
 * over memory BIOs. For each server, N full handshakes (default 500),
 * then N resumed ones (the client offers the newest ticket it holds),
 * after 5 of each not counted. Only the server's calls are timed (thread
 * CPU time). The stock server runs first: dp/tls installs its EC key
 * ENGINE for the whole process with its first context, and that would
 * speed up the stock server's certificate parsing too. The whole process
 * (both servers and the client) allocates through dp/tls's allocator
 * (dp/tls/mem.c), as waypointd does: it has to be in place before
 * OpenSSL's first allocation, so it cannot be one server's alone.
 *
 * Prints microseconds of server CPU per handshake for each server, the
 * ratio stock / dp/tls for each kind, the crypto floor over dp/tls's CPU
 * and dp/tls's own public-key operations over it, then one JSON line. The
 * server's calls are the functions named srv_*, so callgrind counts the
 * server's instructions alone:
 *
 *   valgrind --tool=callgrind --toggle-collect='srv_*' build/bench/tls_hs DIR 30 wp
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "tls.h"
#include "wp/counters.h"
#include "x25519.h"

#define WARMUP 5

static uint64_t ctrs[WP_CTR_MAX];

/* The PKI's files this bench uses, made once from PKI_DIR. */
static struct {
	char cert[640], key[640], ca[640], client_cert[640], client_key[640];
} pki;

static void pki_paths(const char *dir)
{
	snprintf(pki.cert, sizeof(pki.cert), "%s/cert.pem", dir);
	snprintf(pki.key, sizeof(pki.key), "%s/key.pem", dir);
	snprintf(pki.ca, sizeof(pki.ca), "%s/ca.pem", dir);
	snprintf(pki.client_cert, sizeof(pki.client_cert), "%s/productpage.pem", dir);
	snprintf(pki.client_key, sizeof(pki.client_key), "%s/productpage-key.pem", dir);
}

static void die(const char *what)
{
	fprintf(stderr, "tls_hs: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

/* ---- the two servers ---- */

struct server {
	const char *name;
	void *(*conn_new)(void *ctx);
	void (*feed)(void *conn, const void *buf, size_t len);
	void (*step)(void *conn);
	size_t (*take)(void *conn, void *buf, size_t len);
	bool (*established)(void *conn);
	bool (*resumed)(void *conn);
	void (*conn_free)(void *conn);
};

/* dp/tls */
__attribute__((noinline)) static void *srv_wp_new(void *ctx)
{
	return wp_tls_conn_new(ctx, WP_TLS_SERVER, ctrs);
}

__attribute__((noinline)) static void srv_wp_feed(void *c, const void *buf, size_t len)
{
	if (wp_tls_conn_feed(c, buf, len) != (ssize_t)len)
		die("dp/tls refused ciphertext");
}

__attribute__((noinline)) static void srv_wp_step(void *c)
{
	(void)wp_tls_conn_handshake(c);
}

__attribute__((noinline)) static size_t srv_wp_take(void *c, void *buf, size_t len)
{
	return wp_tls_conn_take(c, buf, len);
}

__attribute__((noinline)) static void srv_wp_free(void *c)
{
	wp_tls_conn_free(c);
}

static bool wp_established(void *c)
{
	return wp_tls_conn_established(c);
}

static bool wp_resumed(void *c)
{
	return wp_tls_conn_resumed(c);
}

/* stock OpenSSL */
struct stock_conn {
	SSL *ssl;
	BIO *in, *out;
};

__attribute__((noinline)) static void *srv_stock_new(void *ctx)
{
	struct stock_conn *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->ssl = SSL_new(ctx)) == NULL)
		die("SSL_new");
	s->in = BIO_new(BIO_s_mem());
	s->out = BIO_new(BIO_s_mem());
	if (s->in == NULL || s->out == NULL)
		die("BIO_new");
	BIO_set_mem_eof_return(s->in, -1);
	SSL_set_bio(s->ssl, s->in, s->out);
	SSL_set_accept_state(s->ssl);
	return s;
}

__attribute__((noinline)) static void srv_stock_feed(void *c, const void *buf, size_t len)
{
	struct stock_conn *s = c;

	if (BIO_write(s->in, buf, (int)len) != (int)len)
		die("BIO_write");
}

__attribute__((noinline)) static void srv_stock_step(void *c)
{
	struct stock_conn *s = c;

	(void)SSL_do_handshake(s->ssl);
	ERR_clear_error();
}

__attribute__((noinline)) static size_t srv_stock_take(void *c, void *buf, size_t len)
{
	struct stock_conn *s = c;
	int n = BIO_read(s->out, buf, (int)len);

	return n > 0 ? (size_t)n : 0;
}

__attribute__((noinline)) static void srv_stock_free(void *c)
{
	struct stock_conn *s = c;

	SSL_free(s->ssl);
	free(s);
}

static bool stock_established(void *c)
{
	return SSL_is_init_finished(((struct stock_conn *)c)->ssl) == 1;
}

static bool stock_resumed(void *c)
{
	return SSL_session_reused(((struct stock_conn *)c)->ssl) == 1;
}

static const struct server wp_server = {"dp/tls",    srv_wp_new,     srv_wp_feed, srv_wp_step,
                                        srv_wp_take, wp_established, wp_resumed,  srv_wp_free};
static const struct server libssl_server = {"dp/tls libssl", srv_wp_new,  srv_wp_feed,
                                            srv_wp_step,     srv_wp_take, wp_established,
                                            wp_resumed,      srv_wp_free};
static const struct server stock_server = {"stock OpenSSL", srv_stock_new,  srv_stock_feed,
                                           srv_stock_step,  srv_stock_take, stock_established,
                                           stock_resumed,   srv_stock_free};

static int alpn_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char h2[] = "\x02h2";
	unsigned char *sel = NULL;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, h2, 3, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *stock_ctx(void)
{
	SSL_CTX *s = SSL_CTX_new(TLS_server_method());

	if (s == NULL || !SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(s, pki.cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(s, pki.key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(s, pki.ca, NULL) != 1)
		die("stock server context");
	/* the suite dp/tls picks: its default list, by the server's preference */
	if (SSL_CTX_set_ciphersuites(s, WP_TLS13_SUITES_DEFAULT) != 1)
		die("stock server suites");
	SSL_CTX_set_options(s, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_alpn_select_cb(s, alpn_h2, NULL);
	SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(s, 1);
	/* with client certificates, OpenSSL resumes only in a named context */
	if (!SSL_CTX_set_session_id_context(s, (const unsigned char *)"tls_hs", 6))
		die("stock server session id context");
	return s;
}

static struct wp_tls_ctx *wp_ctx(bool openssl_hs)
{
	struct wp_tls_config cfg = {0};
	struct wp_tls_ctx *t;
	int err = 0;

	cfg.cert_file = pki.cert;
	cfg.key_file = pki.key;
	cfg.ca_file = pki.ca;
	cfg.trust_domain = "cluster.local";
	cfg.openssl_handshake = openssl_hs;
	t = wp_tls_ctx_new(&cfg, &err);
	if (t == NULL)
		die("dp/tls context");
	return t;
}

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	if (c == NULL || !SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_chain_file(c, pki.client_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c, pki.client_key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(c, pki.ca, NULL) != 1 ||
	    SSL_CTX_set_alpn_protos(c, (const unsigned char *)"\x02h2", 3) != 0)
		die("client context");
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	/* keep the sessions for us to offer (SSL_get1_session), no cache */
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	return c;
}

/* ---- one handshake ---- */

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One connection; returns the server's CPU seconds, or < 0 on failure.
 * *sess: the session to offer (NULL: none), replaced by the newest. */
static double handshake(const struct server *sv, void *sctx, SSL_CTX *cctx, SSL_SESSION **sess,
                        bool *resumed)
{
	unsigned char buf[16384];
	double spent = 0, t;
	SSL *c = SSL_new(cctx);
	BIO *cin = BIO_new(BIO_s_mem()), *cout = BIO_new(BIO_s_mem());
	void *s;
	bool moved, ok;
	int rounds = 0;

	if (c == NULL || cin == NULL || cout == NULL)
		die("client SSL");
	BIO_set_mem_eof_return(cin, -1);
	SSL_set_bio(c, cin, cout);
	SSL_set_connect_state(c);
	if (*sess != NULL && SSL_set_session(c, *sess) != 1)
		die("SSL_set_session");
	t = thread_cpu_s();
	s = sv->conn_new(sctx);
	spent += thread_cpu_s() - t;
	do {
		int n;
		size_t k;

		moved = false;
		(void)SSL_do_handshake(c);
		(void)SSL_read(c, buf, 1); /* takes the ticket after the handshake */
		ERR_clear_error();
		while ((n = BIO_read(cout, buf, sizeof(buf))) > 0) {
			t = thread_cpu_s();
			sv->feed(s, buf, (size_t)n);
			spent += thread_cpu_s() - t;
			moved = true;
		}
		t = thread_cpu_s();
		sv->step(s);
		while ((k = sv->take(s, buf, sizeof(buf))) > 0) {
			spent += thread_cpu_s() - t;
			if (BIO_write(cin, buf, (int)k) != (int)k)
				die("client BIO_write");
			moved = true;
			t = thread_cpu_s();
		}
		spent += thread_cpu_s() - t;
	} while (moved && ++rounds < 50);
	ok = sv->established(s) && SSL_is_init_finished(c) == 1;
	*resumed = ok && sv->resumed(s);
	if (ok) {
		SSL_SESSION *n = SSL_get1_session(c);

		if (n != NULL && SSL_SESSION_is_resumable(n)) {
			SSL_SESSION_free(*sess);
			*sess = n;
		} else {
			SSL_SESSION_free(n);
		}
		/* a session of a connection freed unshut is no longer resumable */
		(void)SSL_shutdown(c);
	}
	t = thread_cpu_s();
	sv->conn_free(s);
	spent += thread_cpu_s() - t;
	SSL_free(c);
	return ok ? spent : -1;
}

struct result {
	double full_us, resumed_us;
	int resumed; /* of the counted resumption attempts */
};

/* ---- the crypto floor ---- */

static EVP_PKEY *read_key(const char *file, bool private)
{
	FILE *f = fopen(file, "r");
	EVP_PKEY *k = NULL;
	X509 *x = NULL;

	if (f == NULL)
		die(file);
	if (private) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	} else if ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		k = X509_get_pubkey(x);
		X509_free(x);
	}
	fclose(f);
	if (k == NULL)
		die(file);
	return k;
}

/* CPU microseconds of each public-key operation of a server's handshake,
 * through EVP as a TLS library calls them, n times each: an X25519 key
 * pair, an X25519 agreement, our ECDSA P-256 signature over SHA-256, the
 * verification of the client's; then, beside the floor, what dp/tls's own
 * X25519 share costs (dp/tls/x25519.c: a pooled key pair and the
 * agreement). */
static void crypto_floor(int n, double us[5])
{
	EVP_PKEY *ours = read_key(pki.key, true), *theirs = read_key(pki.client_cert, false);
	EVP_PKEY *client = read_key(pki.client_key, true), *peer = NULL, *k = NULL;
	unsigned char priv[32], pub[32], share_pub[32], shared[32], tbs[130], sig[80];
	size_t len = 32, siglen = sizeof(sig);
	EVP_PKEY_CTX *px;
	EVP_MD_CTX *m;
	double t;

	memset(tbs, 0x20, sizeof(tbs));
	if (RAND_bytes(priv, 32) != 1 ||
	    (peer = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32)) == NULL ||
	    EVP_PKEY_get_raw_public_key(peer, pub, &len) != 1)
		die("X25519 peer");
	EVP_PKEY_free(peer);
	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pub, 32);
	/* the client's signature, for the verifications */
	m = EVP_MD_CTX_new();
	if (m == NULL || EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, client) != 1 ||
	    EVP_DigestSign(m, sig, &siglen, tbs, sizeof(tbs)) != 1)
		die("client signature");
	EVP_MD_CTX_free(m);
	t = thread_cpu_s();
	for (int i = 0; i < n; i++) {
		len = 32;
		if (RAND_priv_bytes(priv, 32) != 1 ||
		    (k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32)) == NULL ||
		    EVP_PKEY_get_raw_public_key(k, pub, &len) != 1)
			die("X25519 key pair");
		EVP_PKEY_free(k);
	}
	us[0] = (thread_cpu_s() - t) / n * 1e6;
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, 32);
	t = thread_cpu_s();
	for (int i = 0; i < n; i++) {
		len = 32;
		px = EVP_PKEY_CTX_new(k, NULL);
		if (px == NULL || EVP_PKEY_derive_init(px) != 1 ||
		    EVP_PKEY_derive_set_peer(px, peer) != 1 ||
		    EVP_PKEY_derive(px, shared, &len) != 1)
			die("X25519 agreement");
		EVP_PKEY_CTX_free(px);
	}
	us[1] = (thread_cpu_s() - t) / n * 1e6;
	t = thread_cpu_s();
	for (int i = 0; i < n; i++) {
		unsigned char s2[80];
		size_t l2 = sizeof(s2);

		m = EVP_MD_CTX_new();
		if (m == NULL || EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, ours) != 1 ||
		    EVP_DigestSign(m, s2, &l2, tbs, sizeof(tbs)) != 1)
			die("ECDSA signature");
		EVP_MD_CTX_free(m);
	}
	us[2] = (thread_cpu_s() - t) / n * 1e6;
	t = thread_cpu_s();
	for (int i = 0; i < n; i++) {
		m = EVP_MD_CTX_new();
		if (m == NULL || EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, theirs) != 1 ||
		    EVP_DigestVerify(m, sig, siglen, tbs, sizeof(tbs)) != 1)
			die("ECDSA verification");
		EVP_MD_CTX_free(m);
	}
	us[3] = (thread_cpu_s() - t) / n * 1e6;
	t = thread_cpu_s();
	for (int i = 0; i < n; i++)
		if (wp_tls_x25519_share(pub, share_pub, shared) != 0)
			die("dp/tls's X25519 share");
	us[4] = (thread_cpu_s() - t) / n * 1e6;
	EVP_PKEY_free(k);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(ours);
	EVP_PKEY_free(theirs);
	EVP_PKEY_free(client);
}

static void run(const struct server *sv, void *sctx, SSL_CTX *cctx, int n, struct result *r)
{
	SSL_SESSION *sess = NULL;
	double sum = 0;
	bool res;

	for (int i = 0; i < WARMUP + n; i++) {
		SSL_SESSION *none = NULL;
		double s = handshake(sv, sctx, cctx, &none, &res);

		SSL_SESSION_free(none);
		if (s < 0 || res)
			die("a full handshake failed");
		if (i >= WARMUP)
			sum += s;
	}
	r->full_us = sum / n * 1e6;
	sum = 0;
	r->resumed = 0;
	for (int i = 0; i < WARMUP + n; i++) {
		double s = handshake(sv, sctx, cctx, &sess, &res);

		if (s < 0)
			die("a resumption failed");
		if (i >= WARMUP) {
			sum += s;
			r->resumed += res;
		}
	}
	SSL_SESSION_free(sess);
	r->resumed_us = sum / n * 1e6;
	printf("  %-13s full %8.1f us, resumed %8.1f us (%d of %d resumed)\n", sv->name, r->full_us,
	       r->resumed_us, r->resumed, n);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 3 ? argv[3] : "all";
	bool all = strcmp(mode, "all") == 0;
	bool stock = all || strcmp(mode, "stock") == 0, wp = all || strcmp(mode, "wp") == 0;
	bool libssl = all || strcmp(mode, "libssl") == 0;
	struct result rs = {0}, rl = {0}, rw = {0};
	double fl[5], floor_full, floor_res;
	SSL_CTX *cctx;
	int n;

	if (argc < 2 || !(stock || wp || libssl)) {
		fprintf(stderr, "usage: tls_hs PKI_DIR [N [all|stock|libssl|wp]]  (PKI_DIR from "
		                "tests/pki/mkpki.sh)\n");
		return 2;
	}
	if (wp_tls_mem_accounting_enable() != 0)
		die("OpenSSL allocated before main");
	pki_paths(argv[1]);
	n = argc > 2 ? atoi(argv[2]) : 500;
	if (n < 1 || n > 1000000) {
		fprintf(stderr, "tls_hs: N must be 1..1000000, not \"%s\"\n", argv[2]);
		return 2;
	}
	cctx = client_ctx();
	printf("tls_hs: server CPU per handshake, %d of each kind, one process, no network\n", n);
	if (stock) {
		SSL_CTX *s = stock_ctx();

		run(&stock_server, s, cctx, n, &rs);
		SSL_CTX_free(s);
	}
	if (libssl) {
		struct wp_tls_ctx *t = wp_ctx(true);

		run(&libssl_server, t, cctx, n, &rl);
		wp_tls_ctx_unref(t);
	}
	if (wp) {
		struct wp_tls_ctx *t = wp_ctx(false);

		run(&wp_server, t, cctx, n, &rw);
		wp_tls_ctx_unref(t);
	}
	crypto_floor(n, fl);
	floor_res = fl[0] + fl[1];
	floor_full = floor_res + fl[2] + fl[3];
	printf("  crypto floor  full %8.1f us, resumed %8.1f us (X25519 key pair %.1f, "
	       "agreement %.1f; ECDSA P-256 sign %.1f, verify %.1f)\n",
	       floor_full, floor_res, fl[0], fl[1], fl[2], fl[3]);
	printf("  dp/tls's X25519 share (x25519.c: pooled key pair + agreement) %.1f us, "
	       "against the floor's %.1f\n",
	       fl[4], floor_res);
	if (wp)
		printf("  dp/tls at %.0f%% of the floor for a full handshake, %.0f%% for a resumed "
		       "one (%.0f resumed per second of CPU); its own public-key operations (its "
		       "X25519 share, sign, verify) are %.0f%% and %.0f%% of its CPU\n",
		       100 * floor_full / rw.full_us, 100 * floor_res / rw.resumed_us,
		       1e6 / rw.resumed_us, 100 * (fl[4] + fl[2] + fl[3]) / rw.full_us,
		       100 * fl[4] / rw.resumed_us);
	if (stock && wp)
		printf("  ratio stock / dp/tls: full %.2f, resumed %.2f\n", rs.full_us / rw.full_us,
		       rs.resumed_us / rw.resumed_us);
	if (all)
		printf("{\"bench\": \"tls_hs\", \"n\": %d, \"stock\": {\"full_us\": %.1f, "
		       "\"resumed_us\": %.1f, \"resumed\": %d}, \"dp_tls_libssl\": {\"full_us\": "
		       "%.1f, \"resumed_us\": %.1f, \"resumed\": %d}, \"dp_tls\": {\"full_us\": "
		       "%.1f, "
		       "\"resumed_us\": %.1f, \"resumed\": %d}, \"floor\": {\"full_us\": %.1f, "
		       "\"resumed_us\": %.1f, \"x25519_keypair_us\": %.1f, \"x25519_agree_us\": "
		       "%.1f, \"ecdsa_sign_us\": %.1f, \"ecdsa_verify_us\": %.1f}, "
		       "\"dp_tls_x25519_share_us\": %.1f, \"ratio_full\": "
		       "%.2f, \"ratio_resumed\": %.2f, \"floor_share_full\": %.2f, "
		       "\"floor_share_resumed\": %.2f}\n",
		       n, rs.full_us, rs.resumed_us, rs.resumed, rl.full_us, rl.resumed_us,
		       rl.resumed, rw.full_us, rw.resumed_us, rw.resumed, floor_full, floor_res,
		       fl[0], fl[1], fl[2], fl[3], fl[4], rs.full_us / rw.full_us,
		       rs.resumed_us / rw.resumed_us, floor_full / rw.full_us,
		       floor_res / rw.resumed_us);
	SSL_CTX_free(cctx);
	return 0;
}
