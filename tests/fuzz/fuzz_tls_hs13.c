/*
 * libFuzzer driver for our TLS 1.3 server handshake (dp/tls/hs13.c) behind
 * a server wp_tls_conn (dp/tls/tls.c). LLVMFuzzerInitialize makes a P-256
 * PKI with OpenSSL (a CA, the waypoint's server certificate and a
 * productpage client certificate with their SPIFFE URI SANs), writes it as
 * PEM into a mkdtemp() directory, builds the one server context from it
 * and removes the files. Byte 0 of the input holds the mode and flags,
 * byte 1 seeds the cuts (0: pieces as large as allowed, else pseudo-random
 * sizes of 1 to 2^(byte % 15) bytes) and the rest is a stream:
 *
 *   mode 0  raw bytes from TCP: the stream goes to a fresh connection in
 *           pieces, the handshake stepped and its output taken after each,
 *           then EOF and one more step (the ClientHello's collection and
 *           parser, tickets, the hand-over to OpenSSL and OpenSSL's server)
 *   mode 1  a real OpenSSL client (TLS 1.3 only, X25519, ALPN h2, the
 *           client certificate, memory BIOs) sends its ClientHello, the
 *           server answers, the client processes that answer; its own
 *           second flight is not passed on: the stream is sealed instead as
 *           handshake records (one per piece) on the client handshake
 *           traffic key taken from the client's key log, and fed to the
 *           server a record at a time, so that the parsers of the client's
 *           Certificate, CertificateVerify and Finished see authentic but
 *           arbitrary messages
 *   mode 2  as 1 after a correct Certificate built from the client's
 *           certificate (its chain verifies, or is found in the memo)
 *   mode 3  as 2, with the client's real CertificateVerify after it
 *           (decrypted from the client's own flight)
 * Flags (modes 1-3): 0x04 the client offers TLS_AES_256_GCM_SHA384 only
 * (else the server picks TLS_AES_128_GCM_SHA256); 0x08 no middlebox
 * compatibility mode; 0x10 the client's real Finished follows the stream;
 * 0x20 EOF before the last step (mode 0 always ends so); 0x40 the client
 * resumes with the ticket of a full handshake made first (the ticket, the
 * binder, PSK-DHE; no Certificate then: the stream goes to the Finished
 * parser in every mode).
 *
 * Checks beyond memory safety (ASan, UBSan, LSan): a handshake step
 * answers 1, 0 or -EPROTO, and -EPROTO leaves the connection failed with
 * a reason; raw bytes never establish a connection; the real client's
 * hello is taken by hs13.c (not handed to OpenSSL) and its answer accepted
 * by the OpenSSL client; after that the server sends nothing while it
 * waits, establishes only when the messages it got begin with the client's
 * real flight, and always when they are exactly that flight (then the peer
 * is productpage, the resumption is as the client says, and the OpenSSL
 * client accepts the NewSessionTicket); a failure before EOF sends exactly
 * one fatal alert, on the server's application key (it sent Finished).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "record_int.h"
#include "tls_int.h"
#include "wp/counters.h"

#define SERVER_ID "spiffe://cluster.local/ns/default/sa/waypoint"
#define CLIENT_ID "spiffe://cluster.local/ns/default/sa/productpage"
#define OUT_MAX   (1 << 17) /* server output kept after its first flight */
#define INPUT_MAX (1 << 17)

static uint64_t ctrs[WP_CTR_MAX];
static struct wp_tls_ctx *sctx;
static SSL_CTX *cctx;
static uint8_t *cert_msg; /* Certificate message with the client's certificate */
static size_t cert_msg_len;

/* What the client's key log gave for the current run: the handshake
 * traffic secrets and the server's first application traffic secret. */
static struct {
	uint8_t chs[WP_TLS_REC_SECRET_MAX], shs[WP_TLS_REC_SECRET_MAX], sap[WP_TLS_REC_SECRET_MAX];
	size_t clen, slen, alen;
} klog;

/* ---- the PKI ---- */

static void add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v3, nid, value);

	if (e == NULL || !X509_add_ext(x, e, -1))
		abort();
	X509_EXTENSION_free(e);
}

/* A certificate for key, valid from an hour ago for a month, signed by
 * issuer (NULL: a self-signed CA); uri: a leaf's SAN. */
static X509 *mkcert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, const char *uri,
                    long serial)
{
	X509 *x = X509_new();
	X509_NAME *name;
	X509V3_CTX v3;
	char san[128];

	if (x == NULL || !X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), serial) ||
	    !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600) || !X509_set_pubkey(x, key))
		abort();
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const uint8_t *)"cluster.local",
	                                -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const uint8_t *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name))
		abort();
	X509V3_set_ctx(&v3, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	if (issuer == NULL) {
		add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(x, &v3, NID_subject_key_identifier, "hash");
	} else {
		snprintf(san, sizeof(san), "URI:%s", uri);
		add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, &v3, NID_key_usage, "critical,digitalSignature,keyEncipherment");
		add_ext(x, &v3, NID_ext_key_usage, "serverAuth,clientAuth");
		add_ext(x, &v3, NID_subject_alt_name, san);
		add_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
	}
	if (X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) <= 0)
		abort();
	return x;
}

static void write_pem(const char *dir, const char *name, X509 *x, EVP_PKEY *k)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL || (x != NULL && !PEM_write_X509(f, x)) ||
	    (k != NULL && !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) || fclose(f) != 0)
		abort();
}

static void rm_pem(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	(void)unlink(path);
}

/* The client's Certificate message (RFC 8446 4.4.2): no request context,
 * one entry without extensions. */
static void build_cert_msg(X509 *x)
{
	int der = i2d_X509(x, NULL);
	size_t body = 1 + 3 + 3 + (size_t)der + 2, list = 3 + (size_t)der + 2;
	uint8_t *p;

	cert_msg_len = 4 + body;
	cert_msg = malloc(cert_msg_len);
	if (der <= 0 || cert_msg == NULL)
		abort();
	p = cert_msg;
	*p++ = 11;
	*p++ = (uint8_t)(body >> 16);
	*p++ = (uint8_t)(body >> 8);
	*p++ = (uint8_t)body;
	*p++ = 0;
	*p++ = (uint8_t)(list >> 16);
	*p++ = (uint8_t)(list >> 8);
	*p++ = (uint8_t)list;
	*p++ = (uint8_t)(der >> 16);
	*p++ = (uint8_t)(der >> 8);
	*p++ = (uint8_t)der;
	if (i2d_X509(x, &p) != der)
		abort();
	*p++ = 0;
	*p = 0;
}

/* NSS key log line: "<LABEL> <client random> <secret>", hex. */
static void keylog(const SSL *ssl, const char *line)
{
	static const char cl[] = "CLIENT_HANDSHAKE_TRAFFIC_SECRET ";
	static const char sl[] = "SERVER_HANDSHAKE_TRAFFIC_SECRET ";
	static const char al[] = "SERVER_TRAFFIC_SECRET_0 ";
	const char *p;
	uint8_t *dst;
	size_t *len, n;

	(void)ssl;
	if (strncmp(line, cl, sizeof(cl) - 1) == 0) {
		dst = klog.chs;
		len = &klog.clen;
	} else if (strncmp(line, sl, sizeof(sl) - 1) == 0) {
		dst = klog.shs;
		len = &klog.slen;
	} else if (strncmp(line, al, sizeof(al) - 1) == 0) {
		dst = klog.sap;
		len = &klog.alen;
	} else {
		return;
	}
	p = strchr(strchr(line, ' ') + 1, ' ');
	if (p == NULL)
		abort();
	if (OPENSSL_hexstr2buf_ex(dst, WP_TLS_REC_SECRET_MAX, &n, p + 1, '\0') != 1)
		abort();
	*len = n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *files[] = {"ca.pem", "cert.pem", "key.pem", "client.pem",
	                              "client-key.pem"};
	char dir[] = "/tmp/fuzz_tls_hs13.XXXXXX", cert[512], key[512], ca[512];
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *s_key = EVP_EC_gen("P-256");
	EVP_PKEY *c_key = EVP_EC_gen("P-256");
	struct wp_tls_config cfg = {0};
	X509 *ca_x, *s_x, *c_x;
	int err = 0;

	(void)argc;
	(void)argv;
	if (ca_key == NULL || s_key == NULL || c_key == NULL || mkdtemp(dir) == NULL)
		abort();
	ca_x = mkcert(ca_key, "fuzz root", NULL, NULL, NULL, 1);
	s_x = mkcert(s_key, "waypoint", ca_x, ca_key, SERVER_ID, 2);
	c_x = mkcert(c_key, "productpage", ca_x, ca_key, CLIENT_ID, 3);
	write_pem(dir, files[0], ca_x, NULL);
	write_pem(dir, files[1], s_x, NULL);
	write_pem(dir, files[2], NULL, s_key);
	write_pem(dir, files[3], c_x, NULL);
	write_pem(dir, files[4], NULL, c_key);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	cfg.cert_file = cert;
	cfg.key_file = key;
	cfg.ca_file = ca;
	cfg.trust_domain = "cluster.local";
	sctx = wp_tls_ctx_new(&cfg, &err);
	if (sctx == NULL || sctx->own.msg == NULL)
		abort();
	for (size_t i = 0; i < WP_ARRAY_SIZE(files); i++)
		rm_pem(dir, files[i]);
	(void)rmdir(dir);

	cctx = SSL_CTX_new(TLS_client_method());
	if (cctx == NULL || !SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(cctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set1_groups_list(cctx, "X25519") ||
	    SSL_CTX_set_alpn_protos(cctx, (const uint8_t *)"\x02h2", 3) != 0 ||
	    SSL_CTX_use_certificate(cctx, c_x) != 1 || SSL_CTX_use_PrivateKey(cctx, c_key) != 1 ||
	    !X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), ca_x))
		abort();
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(cctx, SSL_MODE_NO_AUTO_CHAIN); /* the leaf alone, as cert_msg */
	SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_keylog_callback(cctx, keylog);
	build_cert_msg(c_x);
	X509_free(ca_x);
	X509_free(s_x);
	X509_free(c_x);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(s_key);
	EVP_PKEY_free(c_key);
	return 0;
}

/* ---- one run ---- */

struct cutter {
	uint32_t s;
	uint8_t c;
};

/* The next piece of a stream with <left> bytes left, at most <max>. */
static size_t cut_next(struct cutter *k, size_t left, size_t max)
{
	size_t n = max;

	if (k->c != 0) {
		k->s = k->s * 1103515245u + 12345u;
		n = 1 + (k->s >> 8) % ((size_t)1 << (k->c % 15));
	}
	return WP_MIN(n, WP_MIN(left, max));
}

/* One handshake step and what its answer must imply. */
static int step(struct wp_tls_conn *c)
{
	int rc = wp_tls_conn_handshake(c);

	if (rc != 1 && rc != 0 && rc != -EPROTO)
		abort();
	if (rc == 1 && !wp_tls_conn_established(c))
		abort();
	if (rc == -EPROTO &&
	    (!wp_tls_conn_failed(c) || wp_tls_conn_fail_reason(c) == WP_TLS_FAIL_NONE))
		abort();
	return rc;
}

/* Takes the server's output; appended to out (up to OUT_MAX) if given. */
static void drain(struct wp_tls_conn *c, uint8_t *out, size_t *out_len)
{
	uint8_t buf[4096];
	size_t n;

	while ((n = wp_tls_conn_take(c, buf, sizeof(buf))) > 0) {
		if (out == NULL)
			continue;
		if (*out_len + n > OUT_MAX) {
			*out_len = OUT_MAX + 1; /* too much: not checked */
			out = NULL;
			continue;
		}
		memcpy(out + *out_len, buf, n);
		*out_len += n;
	}
}

/* Mode 0: the stream as it came from TCP. */
static void run_raw(const uint8_t *p, size_t len, struct cutter *k)
{
	struct wp_tls_conn *c = wp_tls_conn_new(sctx, WP_TLS_SERVER, ctrs);

	if (c == NULL)
		abort();
	while (len > 0) {
		size_t n = cut_next(k, len, len);
		ssize_t got = wp_tls_conn_feed(c, p, n);

		if (got < 0)
			break;
		if (step(c) == 1)
			abort(); /* nobody finished a handshake */
		drain(c, NULL, NULL);
		if (got == 0 && (got = wp_tls_conn_feed(c, p, n)) <= 0)
			break;
		p += got;
		len -= (size_t)got;
	}
	wp_tls_conn_feed_eof(c);
	if (step(c) == 1)
		abort();
	drain(c, NULL, NULL);
	wp_tls_conn_free(c);
}

static size_t bio_take(BIO *b, uint8_t *buf, size_t cap)
{
	size_t len = 0;
	int n;

	while (len < cap && (n = BIO_read(b, buf + len, (int)(cap - len))) > 0)
		len += (size_t)n;
	if (BIO_ctrl_pending(b) > 0)
		abort();
	return len;
}

/* The length of the handshake message at p (len bytes available). */
static size_t msg_len(const uint8_t *p, size_t len)
{
	size_t n;

	if (len < 4)
		abort();
	n = 4 + ((size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3]);
	if (n > len)
		abort();
	return n;
}

struct client {
	SSL *ssl;
	bool resumed;
	uint16_t suite;
	size_t hl;
	uint8_t flight[8192]; /* the client's (Certificate, CertificateVerify,) Finished */
	size_t flight_len, cert_len, cv_len;
};

/* A record layer of the client: sending on its handshake key, receiving
 * on the server's application key (the server's alerts and ticket after
 * its Finished). */
static struct wp_tls_rec *client_rec(const struct client *cl)
{
	struct wp_tls_rec_params rp = {0};
	struct wp_tls_rec *r;

	rp.suite = cl->suite;
	rp.client = true;
	rp.wsecret = klog.chs;
	rp.rsecret = klog.sap;
	rp.secret_len = cl->hl;
	rp.cap = OUT_MAX;
	r = wp_tls_rec_new(&rp);
	if (r == NULL)
		abort();
	return r;
}

/* Modes 1-3, first part: the OpenSSL client's hello (resuming <sess>
 * when given), the server's answer, the client's flight decrypted. */
static void hello(struct client *cl, struct wp_tls_conn *c, uint8_t flags, SSL_SESSION *sess)
{
	static uint8_t buf[1 << 16];
	struct wp_tls_rec_params rp = {0};
	struct wp_tls_rec *r;
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	size_t n, at;
	ssize_t got;

	cl->ssl = SSL_new(cctx);
	if (cl->ssl == NULL || rb == NULL || wb == NULL)
		abort();
	SSL_set_bio(cl->ssl, rb, wb);
	SSL_set_connect_state(cl->ssl);
	if ((flags & 0x04) && !SSL_set_ciphersuites(cl->ssl, "TLS_AES_256_GCM_SHA384"))
		abort();
	if (flags & 0x08)
		SSL_clear_options(cl->ssl, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
	if (sess != NULL && !SSL_set_session(cl->ssl, sess))
		abort();
	memset(&klog, 0, sizeof(klog));
	if (SSL_do_handshake(cl->ssl) != -1)
		abort();
	n = bio_take(wb, buf, sizeof(buf));
	if (wp_tls_conn_feed(c, buf, n) != (ssize_t)n || step(c) != 0 ||
	    ctrs[WP_CTR_TLS_HS_TO_OPENSSL] != 0)
		abort(); /* hs13.c answers, and waits for the client's flight */
	n = wp_tls_conn_take(c, buf, sizeof(buf));
	if (n == 0 || wp_tls_conn_pending(c) != 0)
		abort();
	if (BIO_write(rb, buf, (int)n) != (int)n || SSL_do_handshake(cl->ssl) != 1)
		abort(); /* OpenSSL's client refused our flight */
	cl->resumed = SSL_session_reused(cl->ssl);
	if (cl->resumed != (sess != NULL))
		abort(); /* our own ticket, still good, not taken */
	cl->suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(cl->ssl));
	cl->hl = klog.clen;
	if (cl->hl == 0 || klog.slen != cl->hl || klog.alen != cl->hl ||
	    !wp_tls_rec_suite_ok(cl->suite, cl->hl))
		abort();

	/* the client's own flight, read as the server's record layer would */
	n = bio_take(wb, buf, sizeof(buf));
	rp.suite = cl->suite;
	rp.wsecret = klog.shs;
	rp.rsecret = klog.chs;
	rp.secret_len = cl->hl;
	rp.cap = sizeof(buf);
	rp.handshake = true;
	r = wp_tls_rec_new(&rp);
	if (r == NULL || wp_tls_rec_feed(r, buf, n) != (ssize_t)n)
		abort();
	cl->flight_len = 0;
	while ((got = wp_tls_rec_read(r, cl->flight + cl->flight_len,
	                              sizeof(cl->flight) - cl->flight_len)) > 0)
		cl->flight_len += (size_t)got;
	if (got != 0 || wp_tls_rec_partial(r) != 0)
		abort();
	wp_tls_rec_free(r);
	cl->cert_len = cl->cv_len = 0;
	if (!cl->resumed) {
		cl->cert_len = msg_len(cl->flight, cl->flight_len);
		cl->cv_len = msg_len(cl->flight + cl->cert_len, cl->flight_len - cl->cert_len);
		if (cl->flight[0] != 11 || cl->flight[cl->cert_len] != 15)
			abort();
	}
	at = cl->cert_len + cl->cv_len;
	if (cl->flight[at] != 20 || msg_len(cl->flight + at, cl->flight_len - at) != 4 + cl->hl ||
	    cl->flight_len != at + 4 + cl->hl)
		abort();
}

/* The server's output reaches the OpenSSL client, which finds it fine
 * (a NewSessionTicket) and nothing else waiting. */
static void to_client(struct client *cl, const uint8_t *out, size_t len)
{
	uint8_t b[64];
	int got;

	if (len == 0 || len > OUT_MAX ||
	    BIO_write(SSL_get_rbio(cl->ssl), out, (int)len) != (int)len)
		abort();
	got = SSL_read(cl->ssl, b, sizeof(b));
	if (got > 0 || SSL_get_error(cl->ssl, got) != SSL_ERROR_WANT_READ ||
	    BIO_ctrl_pending(SSL_get_rbio(cl->ssl)) != 0)
		abort();
}

/* Flag 0x40: a full handshake with the client's real flight, whose
 * ticket the client keeps; its session, to resume. */
static SSL_SESSION *full_session(uint8_t flags)
{
	static struct client cl;
	static uint8_t wire[REC_MAX], out[4096];
	struct wp_tls_conn *c = wp_tls_conn_new(sctx, WP_TLS_SERVER, ctrs);
	struct wp_tls_rec *r;
	SSL_SESSION *s;
	size_t n;

	if (c == NULL)
		abort();
	hello(&cl, c, flags, NULL);
	r = client_rec(&cl);
	if (wp_tls_rec_out_room(r, cl.flight_len + REC_OVERHEAD) != 0 ||
	    wp_tls_rec_seal(r, 22, cl.flight, cl.flight_len) != 0)
		abort();
	n = wp_tls_rec_take(r, wire, sizeof(wire));
	if (wp_tls_conn_feed(c, wire, n) != (ssize_t)n || step(c) != 1)
		abort();
	to_client(&cl, out, wp_tls_conn_take(c, out, sizeof(out)));
	s = SSL_get1_session(cl.ssl);
	if (s == NULL || !SSL_SESSION_is_resumable(s) || SSL_shutdown(cl.ssl) < 0)
		abort(); /* (freed without close_notify, the session is not resumable) */
	wp_tls_rec_free(r);
	SSL_free(cl.ssl);
	wp_tls_conn_free(c);
	memset(ctrs, 0, sizeof(ctrs));
	return s;
}

/* The server failed before EOF: its output since the first flight is one
 * fatal alert, on its application key (RFC 8446 A.2: it sent Finished). */
static void check_alert(const struct client *cl, const uint8_t *out, size_t len)
{
	struct wp_tls_rec *r;
	uint8_t buf[256];

	if (len > OUT_MAX)
		return;
	r = client_rec(cl);
	if (wp_tls_rec_feed(r, out, len) != (ssize_t)len)
		abort();
	if (wp_tls_rec_read(r, buf, sizeof(buf)) != -EPROTO ||
	    wp_tls_rec_fail(r) != WP_TLS_FAIL_PEER_ALERT || r->in_off != r->in_len)
		abort();
	wp_tls_rec_free(r);
}

/* Modes 1-3: the stream after the client's hello, as its flight. */
static void run_client(const uint8_t *data, size_t size, struct cutter *k)
{
	static struct client cl;
	static uint8_t out[OUT_MAX], wire[REC_MAX];
	uint8_t mode = data[0] & 3, flags = data[0];
	SSL_SESSION *sess = (flags & 0x40) ? full_session(flags) : NULL;
	struct wp_tls_conn *c = wp_tls_conn_new(sctx, WP_TLS_SERVER, ctrs);
	struct wp_tls_rec *r;
	size_t len = 0, at = 0, out_len = 0, fin;
	uint8_t *s;
	int rc = 0;
	bool failed_open = false, eof = false;

	if (c == NULL)
		abort();
	hello(&cl, c, flags, sess);
	fin = cl.flight_len - cl.cert_len - cl.cv_len;
	s = malloc(cert_msg_len + cl.cv_len + size + fin);
	if (s == NULL)
		abort();
	if (mode >= 2 && !cl.resumed) {
		memcpy(s, cert_msg, cert_msg_len);
		len = cert_msg_len;
	}
	if (mode == 3 && !cl.resumed) {
		memcpy(s + len, cl.flight + cl.cert_len, cl.cv_len);
		len += cl.cv_len;
	}
	memcpy(s + len, data + 2, size - 2);
	len += size - 2;
	if (flags & 0x10) {
		memcpy(s + len, cl.flight + cl.cert_len + cl.cv_len, fin);
		len += fin;
	}

	r = client_rec(&cl);
	while (at < len && rc == 0) {
		size_t n = cut_next(k, len - at, REC_MAX_PT), w;

		if (wp_tls_rec_out_room(r, n + REC_OVERHEAD) != 0 ||
		    wp_tls_rec_seal(r, 22, s + at, n) != 0)
			abort();
		at += n;
		w = wp_tls_rec_take(r, wire, sizeof(wire));
		if (w == 0 || wp_tls_rec_pending(r) != 0 ||
		    wp_tls_conn_feed(c, wire, w) != (ssize_t)w)
			abort(); /* a record fits what the server accepts while it waits */
		rc = step(c);
		if (rc == 0 && wp_tls_conn_pending(c) != 0)
			abort(); /* it sends nothing while it waits */
		failed_open = rc == -EPROTO;
		drain(c, out, &out_len);
	}
	if ((flags & 0x20) && rc == 0) {
		wp_tls_conn_feed_eof(c);
		eof = true;
		rc = step(c);
		drain(c, out, &out_len);
	}

	/* established exactly for the client's real flight */
	if (rc == 1 && (at < cl.flight_len || memcmp(s, cl.flight, cl.flight_len) != 0))
		abort();
	if ((mode == 3 || cl.resumed) && (flags & 0x10) && size == 2 && !eof && rc != 1)
		abort();
	if (rc == 1) {
		const char *id = wp_tls_conn_peer_id(c);

		if (id == NULL || strcmp(id, CLIENT_ID) != 0 ||
		    wp_tls_conn_resumed(c) != cl.resumed ||
		    ctrs[cl.resumed ? WP_CTR_TLS_HS_RESUMED : WP_CTR_TLS_HS_DONE] != 1 ||
		    ctrs[WP_CTR_TLS_HS_OWN] != 1)
			abort();
		to_client(&cl, out, out_len); /* the NewSessionTicket */
	}
	if (failed_open)
		check_alert(&cl, out, out_len);

	wp_tls_rec_free(r);
	free(s);
	SSL_free(cl.ssl);
	cl.ssl = NULL;
	SSL_SESSION_free(sess);
	OPENSSL_cleanse(&klog, sizeof(klog));
	wp_tls_conn_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cutter k;

	if (size < 2 || size > INPUT_MAX)
		return 0;
	k = (struct cutter){data[1], data[1]};
	memset(ctrs, 0, sizeof(ctrs));
	if ((data[0] & 3) == 0)
		run_raw(data + 2, size - 2, &k);
	else
		run_client(data, size, &k);
	return 0;
}
