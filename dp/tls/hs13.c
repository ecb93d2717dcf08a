/*
 * Our own TLS 1.3 server handshake (RFC 8446) for inbound HBONE.
 *
 * Why: a profile of OpenSSL 3.0's server handshake (bench/README, "Where
 * the rest goes") put most of its cost outside the cryptography: a
 * provider fetch for every key derivation, the client's certificate parsed
 * again through the session that every stateless ticket serializes and
 * re-reads, the traffic secrets formatted in hex for the key-log callback
 * that hands them to our record layer. None of that can be switched off
 * from outside libssl. This file runs the handshake a mesh client makes
 * towards a waypoint (TLS 1.3, an X25519 key share, ALPN h2, a client
 * certificate: what ztunnel sends), with OpenSSL's libcrypto for the
 * cryptographic steps (the signatures, X509_verify_cert, AES for the
 * record layer), libsodium for X25519 (x25519.c: our key pairs by
 * fixed-base multiplication) and nothing of libssl. It is tested against
 * OpenSSL and GnuTLS clients.
 *
 * What it does: the full handshake with a client certificate required
 * (ServerHello, EncryptedExtensions with ALPN h2, CertificateRequest,
 * Certificate, CertificateVerify, Finished; then the client's Certificate,
 * CertificateVerify and Finished) and resumption with PSK-DHE from our
 * stateless tickets (ticket.c's keys and layout around a plaintext of
 * ours: suite, issue time, the PSK and the peer's SPIFFE ID).
 * The key share is X25519; the suites are those of tls.ciphersuites, in
 * its order of preference (by default TLS_AES_128_GCM_SHA256 first, then
 * TLS_AES_256_GCM_SHA384; tls.c gives OpenSSL the same list). The
 * handshake records go through our record layer (record.c in handshake
 * mode), which then carries the application data.
 *
 * What it leaves to OpenSSL: every ClientHello it does not take whole is
 * handed to an SSL object, byte for byte as received, before we answered
 * anything, so the client cannot tell. That covers TLS 1.2 (when allowed),
 * no X25519 key share (OpenSSL sends a HelloRetryRequest), early data, a
 * cookie, no ALPN or no h2 in it, a malformed or unusual hello (OpenSSL
 * sends the alert it always sent), and a client that does not accept our
 * key's signature scheme. Only a ClientHello we took and then found wrong
 * (a PSK binder that does not verify) is refused here.
 *
 * The peer's chain: the certificates are hashed as received and looked up
 * in the memo of chains verified before (chain_memo.c), which keeps the
 * leaf's key and SPIFFE ID; otherwise they are parsed and verified by
 * X509_verify_cert against the context's store with the parameters OpenSSL
 * uses for a server ("ssl_client" purpose, the SSL_CTX's verify depth,
 * its security level as auth level), and the identity is checked as in
 * tls.c. No X509 stays with the connection.
 *
 * Secrets are cleansed as soon as they are used; a failure queues the
 * alert RFC 8446 asks for (on the handshake key once we answered).
 */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "hs13.h"
#include "kdf.h"
#include "record_int.h"
#include "ticket.h"
#include "tls_int.h"
#include "x25519.h"

#define CH_MAX     (16 * 1024) /* a longer ClientHello goes to OpenSSL */
#define MSG_MAX    (64 * 1024) /* the longest message we read from the client */
#define CERTS_MAX  10          /* certificates in the client's Certificate */
#define SKEW_S     60          /* a ticket issued this far in the future is still good */
#define TICKET_MAG "wpT1"

enum {
	HT_CLIENT_HELLO = 1,
	HT_SERVER_HELLO = 2,
	HT_NEW_SESSION_TICKET = 4,
	HT_ENCRYPTED_EXTENSIONS = 8,
	HT_CERTIFICATE = 11,
	HT_CERTIFICATE_REQUEST = 13,
	HT_CERTIFICATE_VERIFY = 15,
	HT_FINISHED = 20,
};

enum {
	EXT_GROUPS = 10,
	EXT_SIG_ALGS = 13,
	EXT_ALPN = 16,
	EXT_PSK = 41,
	EXT_EARLY_DATA = 42,
	EXT_VERSIONS = 43,
	EXT_COOKIE = 44,
	EXT_PSK_MODES = 45,
	EXT_KEY_SHARE = 51,
};

enum {
	AL_UNEXPECTED_MESSAGE = 10,
	AL_HANDSHAKE_FAILURE = 40,
	AL_BAD_CERTIFICATE = 42,
	AL_CERTIFICATE_EXPIRED = 45,
	AL_ILLEGAL_PARAMETER = 47,
	AL_UNKNOWN_CA = 48,
	AL_DECODE_ERROR = 50,
	AL_DECRYPT_ERROR = 51,
	AL_INTERNAL_ERROR = 80,
	AL_CERTIFICATE_REQUIRED = 116,
};

#define GROUP_X25519 0x001d

enum phase {
	P_HELLO,    /* collecting the ClientHello */
	P_CERT,     /* answered; the client's Certificate next */
	P_CV,       /* its CertificateVerify next */
	P_FINISHED, /* its Finished next */
	P_DONE,
	P_FAILED,
};

struct wp_tls_hs13 {
	uint8_t phase;
	bool eof;
	bool resumed;
	uint8_t alg; /* enum wp_tls_hash_alg of the suite */
	uint16_t suite;
	uint8_t hl; /* hash length */
	uint8_t alert[7], alert_off, alert_len;
	uint8_t *in; /* P_HELLO: every byte received */
	uint32_t in_len, in_cap;
	uint8_t *msg; /* the message being read: header and body */
	uint32_t msg_len, msg_cap;
	struct wp_tls_hash th;          /* the transcript */
	EVP_PKEY *peer_key;             /* P_CV: the client's leaf key */
	struct wp_tls_hmac_key master;  /* the master secret, as an HMAC key */
	uint8_t c_fin[WP_TLS_HASH_MAX]; /* the client's finished_key */
	uint8_t c_app[WP_TLS_HASH_MAX];
};

/* Signature schemes we verify in a client's CertificateVerify; the
 * CertificateRequest also lists the PKCS#1 ones, valid in certificates. */
static const uint16_t cv_schemes[] = {0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804,
                                      0x0805, 0x0806, 0x0809, 0x080a, 0x080b};
static const uint16_t cert_only_schemes[] = {0x0401, 0x0501, 0x0601};

/* ---- reading ---- */

struct rd {
	const uint8_t *p;
	size_t n;
	bool bad;
};

static uint32_t rd_u(struct rd *r, size_t bytes)
{
	uint32_t v = 0;

	if (r->bad || r->n < bytes) {
		r->bad = true;
		return 0;
	}
	for (size_t i = 0; i < bytes; i++)
		v = v << 8 | r->p[i];
	r->p += bytes;
	r->n -= bytes;
	return v;
}

/* A vector with a <lenbytes> length prefix, as its own reader. */
static struct rd rd_vec(struct rd *r, size_t lenbytes)
{
	struct rd v = {NULL, 0, true};
	size_t len = rd_u(r, lenbytes);

	if (r->bad || r->n < len) {
		r->bad = true;
		return v;
	}
	v.p = r->p;
	v.n = len;
	v.bad = false;
	r->p += len;
	r->n -= len;
	return v;
}

static bool rd_done(const struct rd *r)
{
	return !r->bad && r->n == 0;
}

static bool list_has_u16(struct rd l, uint16_t want)
{
	while (l.n >= 2)
		if (rd_u(&l, 2) == want)
			return true;
	return false;
}

/* ---- writing ---- */

struct wr {
	uint8_t *p;
	size_t n, cap;
	bool bad;
};

static void wr_u(struct wr *w, uint32_t v, size_t bytes)
{
	if (w->bad || w->cap - w->n < bytes) {
		w->bad = true;
		return;
	}
	for (size_t i = 0; i < bytes; i++)
		w->p[w->n + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	w->n += bytes;
}

static void wr_bytes(struct wr *w, const void *p, size_t len)
{
	if (w->bad || w->cap - w->n < len) {
		w->bad = true;
		return;
	}
	memcpy(w->p + w->n, p, len);
	w->n += len;
}

/* Opens a length prefix of <bytes>; wr_close fills it in. */
static size_t wr_open(struct wr *w, size_t bytes)
{
	size_t at = w->n;

	wr_u(w, 0, bytes);
	return at;
}

static void wr_close(struct wr *w, size_t at, size_t bytes)
{
	size_t len = w->n - at - bytes;

	if (w->bad)
		return;
	for (size_t i = 0; i < bytes; i++)
		w->p[at + i] = (uint8_t)(len >> (8 * (bytes - 1 - i)));
}

/* ---- our certificate and key ---- */

static uint16_t scheme_of_key(EVP_PKEY *k)
{
	char group[32];

	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) != 1)
			return 0;
		if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
			return 0x0403;
		if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
			return 0x0503;
		return 0;
	case EVP_PKEY_RSA:
		return 0x0804;
	case EVP_PKEY_ED25519:
		return 0x0807;
	default:
		return 0;
	}
}

static bool add_cert(struct wr *w, X509 *x)
{
	int len = i2d_X509(x, NULL);
	uint8_t *p;

	if (len <= 0 || w->bad || w->cap - w->n < (size_t)len + 5) {
		w->bad = true;
		return false;
	}
	wr_u(w, (uint32_t)len, 3);
	p = w->p + w->n;
	if (i2d_X509(x, &p) != len)
		return false;
	w->n += (size_t)len;
	wr_u(w, 0, 2); /* no extensions */
	return true;
}

int wp_tls_hs13_ctx_init(struct wp_tls_ctx *t)
{
	EVP_PKEY *key = SSL_CTX_get0_privatekey(t->server);
	X509 *leaf = SSL_CTX_get0_certificate(t->server);
	STACK_OF(X509) *chain = NULL;
	size_t cap = 64, at, list;
	struct wr w;

	if (key == NULL || leaf == NULL || (t->own.scheme = scheme_of_key(key)) == 0)
		return 0;
	(void)SSL_CTX_get0_chain_certs(t->server, &chain);
	cap += (size_t)i2d_X509(leaf, NULL) + 5;
	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
		cap += (size_t)i2d_X509(sk_X509_value(chain, i), NULL) + 5;
	w = (struct wr){OPENSSL_malloc(cap), 0, cap, false};
	if (w.p == NULL)
		return -ENOMEM;
	wr_u(&w, HT_CERTIFICATE, 1);
	at = wr_open(&w, 3);
	wr_u(&w, 0, 1); /* certificate_request_context */
	list = wr_open(&w, 3);
	add_cert(&w, leaf);
	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
		add_cert(&w, sk_X509_value(chain, i));
	wr_close(&w, list, 3);
	wr_close(&w, at, 3);
	if (w.bad) {
		OPENSSL_free(w.p);
		t->own.scheme = 0;
		return 0;
	}
	t->own.msg = w.p;
	t->own.len = w.n;
	return 0;
}

void wp_tls_hs13_ctx_fini(struct wp_tls_ctx *t)
{
	OPENSSL_free(t->own.msg);
	t->own.msg = NULL;
}

/* ---- life cycle ---- */

struct wp_tls_hs13 *wp_tls_hs13_new(void)
{
	return OPENSSL_zalloc(sizeof(struct wp_tls_hs13));
}

void wp_tls_hs13_free(struct wp_tls_hs13 *h)
{
	if (h == NULL)
		return;
	OPENSSL_free(h->in);
	OPENSSL_clear_free(h->msg, h->msg_cap);
	EVP_PKEY_free(h->peer_key);
	OPENSSL_clear_free(h, sizeof(*h));
}

static bool grow(uint8_t **p, uint32_t *cap, size_t want, size_t max)
{
	size_t n = *cap ? *cap : 1024;
	uint8_t *q;

	if (want <= *cap)
		return true;
	if (want > max)
		return false;
	while (n < want)
		n *= 2;
	n = WP_MIN(n, max);
	q = OPENSSL_clear_realloc(*p, *cap, n);
	if (q == NULL)
		return false;
	*p = q;
	*cap = (uint32_t)n;
	return true;
}

ssize_t wp_tls_hs13_feed(struct wp_tls_conn *c, const void *buf, size_t len)
{
	struct wp_tls_hs13 *h = c->hs;
	size_t cap = WP_MAX(c->ctx->bio_cap, (size_t)CH_MAX + 1024);

	if (h->phase != P_HELLO)
		return -EPIPE;
	len = WP_MIN(len, cap - h->in_len);
	if (len == 0)
		return 0;
	if (!grow(&h->in, &h->in_cap, h->in_len + len, cap)) {
		ctr_inc(c->ctrs, WP_CTR_TLS_NOMEM);
		return 0;
	}
	memcpy(h->in + h->in_len, buf, len);
	h->in_len += (uint32_t)len;
	return (ssize_t)len;
}

void wp_tls_hs13_feed_eof(struct wp_tls_hs13 *h)
{
	h->eof = true;
}

size_t wp_tls_hs13_received(const struct wp_tls_hs13 *h, const uint8_t **p)
{
	*p = h->in;
	return h->in_len;
}

size_t wp_tls_hs13_peek(const struct wp_tls_hs13 *h, const uint8_t **p)
{
	*p = h->alert + h->alert_off;
	return (size_t)(h->alert_len - h->alert_off);
}

void wp_tls_hs13_advance(struct wp_tls_hs13 *h, size_t n)
{
	h->alert_off = (uint8_t)WP_MIN((size_t)h->alert_len, h->alert_off + n);
}

/* ---- failing ---- */

static int fail(struct wp_tls_conn *c, enum wp_tls_fail f, uint8_t alert)
{
	struct wp_tls_hs13 *h = c->hs;

	ERR_clear_error(); /* what libcrypto queued is not another call's error */
	if (c->fail == WP_TLS_FAIL_NONE)
		c->fail = (uint8_t)f;
	if (c->rec != NULL) {
		(void)wp_tls_rec_abort(c->rec, alert);
	} else {
		/* in the clear: alert, 0x0303, length 2, fatal */
		static const uint8_t hdr[5] = {21, 3, 3, 0, 2};

		memcpy(h->alert, hdr, sizeof(hdr));
		h->alert[5] = 2;
		h->alert[6] = alert;
		h->alert_len = sizeof(h->alert);
	}
	h->phase = P_FAILED;
	return -EPROTO;
}

/* ---- the ClientHello ---- */

struct hello {
	const uint8_t *msg; /* the whole message, header included */
	size_t len;
	struct rd sid, suites, sigalgs, psk_ids, binders;
	size_t binders_at; /* offset in msg of the binders' length */
	const uint8_t *x25519;
	bool v13, x25519_listed, alpn, h2, psk_modes, psk_dhe, psk, early, cookie;
};

static void parse_alpn(struct rd e, struct hello *ch)
{
	struct rd l = rd_vec(&e, 2);

	ch->alpn = true;
	while (!l.bad && l.n > 0) {
		struct rd name = rd_vec(&l, 1);

		if (!name.bad && name.n == 2 && memcmp(name.p, "h2", 2) == 0)
			ch->h2 = true;
	}
	if (l.bad || !rd_done(&e))
		ch->alpn = false; /* malformed: OpenSSL answers it */
}

static bool parse_key_share(struct rd e, struct hello *ch)
{
	struct rd l = rd_vec(&e, 2);

	while (!l.bad && l.n > 0) {
		uint16_t g = (uint16_t)rd_u(&l, 2);
		struct rd k = rd_vec(&l, 2);

		if (k.bad || g != GROUP_X25519)
			continue;
		if (k.n != 32 || ch->x25519 != NULL)
			return false; /* a bad or second X25519 share: OpenSSL refuses it */
		ch->x25519 = k.p;
	}
	return !l.bad && rd_done(&e);
}

static bool parse_psk(struct rd e, struct hello *ch)
{
	ch->psk_ids = rd_vec(&e, 2);
	ch->binders_at = (size_t)(e.p - ch->msg);
	ch->binders = rd_vec(&e, 2);
	ch->psk = !ch->psk_ids.bad && ch->psk_ids.n > 0 && !ch->binders.bad && ch->binders.n > 0;
	return ch->psk && rd_done(&e);
}

/* A list of 16-bit values with a <lenbytes> length, alone in e; its
 * reader, or one marked bad. */
static struct rd u16_list(struct rd e, size_t lenbytes)
{
	struct rd l = rd_vec(&e, lenbytes);

	if (!rd_done(&e) || l.n == 0 || l.n % 2 != 0)
		l.bad = true;
	return l;
}

/* One extension; false if malformed (OpenSSL then answers the hello). */
static bool parse_ext(uint16_t type, struct rd e, struct hello *ch)
{
	struct rd l;

	switch (type) {
	case EXT_VERSIONS:
		l = u16_list(e, 1);
		ch->v13 = !l.bad && list_has_u16(l, 0x0304);
		return !l.bad;
	case EXT_GROUPS:
		l = u16_list(e, 2);
		ch->x25519_listed = !l.bad && list_has_u16(l, GROUP_X25519);
		return !l.bad;
	case EXT_KEY_SHARE:
		return parse_key_share(e, ch);
	case EXT_SIG_ALGS:
		ch->sigalgs = u16_list(e, 2);
		return !ch->sigalgs.bad;
	case EXT_ALPN:
		parse_alpn(e, ch);
		return ch->alpn;
	case EXT_PSK_MODES:
		l = rd_vec(&e, 1);
		ch->psk_modes = true;
		for (size_t i = 0; i < l.n; i++)
			ch->psk_dhe |= l.p[i] == 1;
		return rd_done(&e) && l.n > 0;
	case EXT_PSK:
		return parse_psk(e, ch);
	case EXT_EARLY_DATA:
		ch->early = true;
		return true;
	case EXT_COOKIE:
		ch->cookie = true;
		return true;
	default:
		return true;
	}
}

/* Parses msg (len bytes, header included); false when OpenSSL should. */
static bool parse_hello(const uint8_t *msg, size_t len, struct hello *ch)
{
	struct rd r = {msg + 4, len - 4, false}, comp, exts;
	uint64_t seen = 0;

	memset(ch, 0, sizeof(*ch));
	ch->msg = msg;
	ch->len = len;
	ch->sigalgs.bad = true;
	if (rd_u(&r, 2) != 0x0303)
		return false;
	(void)rd_u(&r, 16);
	(void)rd_u(&r, 16); /* random */
	ch->sid = rd_vec(&r, 1);
	ch->suites = rd_vec(&r, 2);
	comp = rd_vec(&r, 1);
	exts = rd_vec(&r, 2);
	if (!rd_done(&r) || ch->sid.n > 32 || ch->suites.n == 0 || ch->suites.n % 2 != 0 ||
	    comp.n != 1 || comp.p[0] != 0)
		return false;
	while (exts.n > 0) {
		uint16_t type = (uint16_t)rd_u(&exts, 2);
		struct rd e = rd_vec(&exts, 2);

		if (exts.bad || ch->psk /* pre_shared_key must be the last */)
			return false;
		if (type < 64) {
			if (seen & (1ull << type))
				return false; /* a duplicate: OpenSSL refuses it */
			seen |= 1ull << type;
		}
		if (!parse_ext(type, e, ch))
			return false;
	}
	return !ch->sigalgs.bad;
}

/* The hello's whole message from the records received: 1 (h->msg holds
 * it, *rest is the offset in h->in of what follows its records), 0 more
 * bytes needed, WP_TLS_HS13_OPENSSL anything else. */
static int collect_hello(struct wp_tls_hs13 *h, size_t *rest)
{
	size_t off = 0, total = 0;

	h->msg_len = 0;
	while (h->in_len - off >= 5) {
		const uint8_t *r = h->in + off;
		size_t len = (size_t)r[3] << 8 | r[4];

		if (r[0] != 22 || r[1] != 3 || len == 0 || len > 16384)
			return WP_TLS_HS13_OPENSSL;
		if (h->in_len - off - 5 < len)
			break;
		if (!grow(&h->msg, &h->msg_cap, h->msg_len + len, CH_MAX + 16384))
			return WP_TLS_HS13_OPENSSL;
		memcpy(h->msg + h->msg_len, r + 5, len);
		h->msg_len += (uint32_t)len;
		off += 5 + len;
		if (h->msg_len < 4)
			continue;
		total = 4 + ((size_t)h->msg[1] << 16 | (size_t)h->msg[2] << 8 | h->msg[3]);
		if (h->msg[0] != HT_CLIENT_HELLO || total > CH_MAX || h->msg_len > total)
			return WP_TLS_HS13_OPENSSL;
		if (h->msg_len == total) {
			*rest = off;
			return 1;
		}
	}
	/* not whole yet */
	if (h->eof || h->in_len >= CH_MAX + 1024)
		return WP_TLS_HS13_OPENSSL;
	return 0;
}

/* Our choice among the suites offered: the server's preference, the
 * configured order (tls.ciphersuites). */
static uint16_t pick_suite(const struct wp_tls_config *cfg, struct rd suites)
{
	for (unsigned i = 0; i < cfg->n_suites13; i++)
		if (list_has_u16(suites, cfg->suites13[i]))
			return cfg->suites13[i];
	return 0;
}

static void set_suite(struct wp_tls_hs13 *h, uint16_t suite)
{
	h->suite = suite;
	h->alg = suite == 0x1302 ? WP_TLS_SHA384 : WP_TLS_SHA256;
	h->hl = (uint8_t)wp_tls_hash_len(h->alg);
}

/* ---- tickets ---- */

struct ticket {
	uint16_t suite;
	uint64_t issued;
	uint8_t psk[WP_TLS_HASH_MAX];
	uint8_t psk_len;
	const uint8_t *id;
	size_t id_len;
};

/* Opens the first identity of the hello's PSK offer; false when it is not
 * a ticket of ours that is still good (then a full handshake). */
static bool open_ticket(struct wp_tls_conn *c, const struct hello *ch, uint8_t *plain,
                        struct ticket *t)
{
	struct wp_tls_tickets *k = c->ctx->tickets;
	struct rd ids = ch->psk_ids, id = rd_vec(&ids, 2), r;
	ssize_t n;
	uint64_t now;

	(void)rd_u(&ids, 4); /* obfuscated_ticket_age: for early data only */
	if (k == NULL || id.bad || id.n > WP_TLS_TICKET_PLAIN_MAX + WP_TLS_TICKET_OVERHEAD)
		return false;
	n = wp_tls_tickets_open(k, id.p, id.n, plain, c->ctrs);
	if (n <= 0)
		return false;
	r = (struct rd){plain, (size_t)n, false};
	if (r.n < 4 || memcmp(r.p, TICKET_MAG, 4) != 0)
		return false;
	(void)rd_u(&r, 4);
	t->suite = (uint16_t)rd_u(&r, 2);
	t->issued = (uint64_t)rd_u(&r, 4) << 32;
	t->issued |= rd_u(&r, 4);
	struct rd psk = rd_vec(&r, 1), pid = rd_vec(&r, 2);
	if (!rd_done(&r) ||
	    psk.n != wp_tls_hash_len(t->suite == 0x1302 ? WP_TLS_SHA384 : WP_TLS_SHA256))
		return false;
	memcpy(t->psk, psk.p, psk.n);
	t->psk_len = (uint8_t)psk.n;
	t->id = pid.p;
	t->id_len = pid.n;
	now = wp_tls_tickets_now(k);
	if (t->issued > now + SKEW_S || now - t->issued > wp_tls_tickets_lifetime(k))
		return false;
	return list_has_u16(ch->suites, t->suite);
}

/* Checks the first binder against the PSK (RFC 8446 4.2.11.2). */
static bool binder_ok(struct wp_tls_hs13 *h, const struct hello *ch, const uint8_t *early)
{
	uint8_t empty[WP_TLS_HASH_MAX], key[WP_TLS_HASH_MAX], fk[WP_TLS_HASH_MAX];
	uint8_t th[WP_TLS_HASH_MAX], want[WP_TLS_HASH_MAX];
	struct wp_tls_hash t;
	struct rd b = ch->binders, first = rd_vec(&b, 1);
	bool ok;

	wp_tls_hash_init(&t, h->alg);
	wp_tls_hash_peek(&t, empty);
	wp_tls_hash_update(&t, ch->msg, ch->binders_at);
	wp_tls_hash_peek(&t, th);
	ok = !first.bad && first.n == h->hl &&
	     wp_tls_expand_label(h->alg, early, "res binder", empty, h->hl, key, h->hl) == 0 &&
	     wp_tls_expand_label(h->alg, key, "finished", NULL, 0, fk, h->hl) == 0;
	if (ok) {
		wp_tls_hmac(h->alg, fk, h->hl, th, h->hl, want);
		ok = CRYPTO_memcmp(want, first.p, h->hl) == 0;
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(fk, sizeof(fk));
	return ok;
}

/* ---- signatures ---- */

static const char *scheme_md(uint16_t s)
{
	switch (s) {
	case 0x0403:
	case 0x0804:
	case 0x0809:
		return "SHA256";
	case 0x0503:
	case 0x0805:
	case 0x080a:
		return "SHA384";
	case 0x0603:
	case 0x0806:
	case 0x080b:
		return "SHA512";
	default:
		return NULL; /* EdDSA */
	}
}

/* Whether key k can make or check signatures of scheme s. */
static bool scheme_fits(uint16_t s, EVP_PKEY *k)
{
	char group[32];
	const char *want;

	switch (s) {
	case 0x0403:
		want = "prime256v1";
		break;
	case 0x0503:
		want = "secp384r1";
		break;
	case 0x0603:
		want = "secp521r1";
		break;
	case 0x0804:
	case 0x0805:
	case 0x0806:
		return EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA;
	case 0x0809:
	case 0x080a:
	case 0x080b:
		return EVP_PKEY_get_base_id(k) == EVP_PKEY_RSA_PSS;
	case 0x0807:
		return EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519;
	case 0x0808:
		return EVP_PKEY_get_base_id(k) == EVP_PKEY_ED448;
	default:
		return false;
	}
	return EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	       EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) == 1 &&
	       strcmp(group, want) == 0;
}

/* The content a CertificateVerify signs (RFC 8446 4.4.3). */
static size_t cv_content(bool server, const uint8_t *th, size_t hl, uint8_t *out)
{
	static const char srv[] = "TLS 1.3, server CertificateVerify";
	static const char cli[] = "TLS 1.3, client CertificateVerify";

	memset(out, 0x20, 64);
	memcpy(out + 64, server ? srv : cli, sizeof(srv)); /* with its NUL */
	memcpy(out + 64 + sizeof(srv), th, hl);
	return 64 + sizeof(srv) + hl;
}

/* Signs or verifies tbs with key under scheme s. sign: *siglen in/out. */
static bool pkey_sig(bool sign, uint16_t s, EVP_PKEY *key, const uint8_t *tbs, size_t len,
                     uint8_t *sig, size_t *siglen)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pc = NULL;
	bool pss = (s & 0xff00) == 0x0800 && s != 0x0807 && s != 0x0808, ok;

	ok = m != NULL &&
	     (sign ? EVP_DigestSignInit_ex(m, &pc, scheme_md(s), NULL, NULL, key, NULL)
	           : EVP_DigestVerifyInit_ex(m, &pc, scheme_md(s), NULL, NULL, key, NULL)) == 1;
	if (ok && pss)
		ok = EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) == 1 &&
		     EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) == 1;
	if (ok)
		ok = sign ? EVP_DigestSign(m, sig, siglen, tbs, len) == 1
		          : EVP_DigestVerify(m, sig, *siglen, tbs, len) == 1;
	EVP_MD_CTX_free(m);
	ERR_clear_error();
	return ok;
}

/* ---- our flight ---- */

static void server_hello(struct wr *w, const struct wp_tls_hs13 *h, const struct hello *ch,
                         const uint8_t pub[32])
{
	uint8_t random[32];
	size_t at, ext;

	(void)RAND_bytes(random, sizeof(random));
	wr_u(w, HT_SERVER_HELLO, 1);
	at = wr_open(w, 3);
	wr_u(w, 0x0303, 2);
	wr_bytes(w, random, sizeof(random));
	wr_u(w, (uint32_t)ch->sid.n, 1);
	wr_bytes(w, ch->sid.p, ch->sid.n);
	wr_u(w, h->suite, 2);
	wr_u(w, 0, 1); /* compression */
	ext = wr_open(w, 2);
	wr_u(w, EXT_VERSIONS, 2);
	wr_u(w, 2, 2);
	wr_u(w, 0x0304, 2);
	wr_u(w, EXT_KEY_SHARE, 2);
	wr_u(w, 36, 2);
	wr_u(w, GROUP_X25519, 2);
	wr_u(w, 32, 2);
	wr_bytes(w, pub, 32);
	if (h->resumed) {
		wr_u(w, EXT_PSK, 2);
		wr_u(w, 2, 2);
		wr_u(w, 0, 2); /* the first identity */
	}
	wr_close(w, ext, 2);
	wr_close(w, at, 3);
}

/* Appends one message written by fn to w and to the transcript. */
static void add_msg(struct wp_tls_hs13 *h, struct wr *w, size_t start)
{
	if (!w->bad)
		wp_tls_hash_update(&h->th, w->p + start, w->n - start);
}

static void encrypted_extensions(struct wr *w)
{
	static const uint8_t alpn_h2[] = {0, EXT_ALPN, 0, 5, 0, 3, 2, 'h', '2'};
	size_t at;

	wr_u(w, HT_ENCRYPTED_EXTENSIONS, 1);
	at = wr_open(w, 3);
	wr_u(w, sizeof(alpn_h2), 2);
	wr_bytes(w, alpn_h2, sizeof(alpn_h2));
	wr_close(w, at, 3);
}

static void certificate_request(struct wr *w)
{
	size_t at, ext, l;

	wr_u(w, HT_CERTIFICATE_REQUEST, 1);
	at = wr_open(w, 3);
	wr_u(w, 0, 1); /* certificate_request_context */
	ext = wr_open(w, 2);
	wr_u(w, EXT_SIG_ALGS, 2);
	l = wr_open(w, 2);
	wr_u(w, 2 * (WP_ARRAY_SIZE(cv_schemes) + WP_ARRAY_SIZE(cert_only_schemes)), 2);
	for (size_t i = 0; i < WP_ARRAY_SIZE(cv_schemes); i++)
		wr_u(w, cv_schemes[i], 2);
	for (size_t i = 0; i < WP_ARRAY_SIZE(cert_only_schemes); i++)
		wr_u(w, cert_only_schemes[i], 2);
	wr_close(w, l, 2);
	wr_close(w, ext, 2);
	wr_close(w, at, 3);
}

static bool certificate_verify(struct wp_tls_conn *c, struct wr *w)
{
	struct wp_tls_hs13 *h = c->hs;
	uint8_t th[WP_TLS_HASH_MAX], tbs[64 + 34 + WP_TLS_HASH_MAX];
	size_t at, n, siglen;
	uint16_t s = c->ctx->own.scheme;
	EVP_PKEY *key = SSL_CTX_get0_privatekey(c->ctx->server);

	wp_tls_hash_peek(&h->th, th);
	n = cv_content(true, th, h->hl, tbs);
	wr_u(w, HT_CERTIFICATE_VERIFY, 1);
	at = wr_open(w, 3);
	wr_u(w, s, 2);
	siglen = (size_t)EVP_PKEY_get_size(key);
	if (w->bad || w->cap - w->n < siglen + 2)
		return false;
	if (!pkey_sig(true, s, key, tbs, n, w->p + w->n + 2, &siglen))
		return false;
	wr_u(w, (uint32_t)siglen, 2);
	w->n += siglen;
	wr_close(w, at, 3);
	return !w->bad;
}

static void finished(struct wp_tls_hs13 *h, struct wr *w, const uint8_t *secret)
{
	uint8_t fk[WP_TLS_HASH_MAX], th[WP_TLS_HASH_MAX], mac[WP_TLS_HASH_MAX];

	wp_tls_hash_peek(&h->th, th);
	(void)wp_tls_expand_label(h->alg, secret, "finished", NULL, 0, fk, h->hl);
	wp_tls_hmac(h->alg, fk, h->hl, th, h->hl, mac);
	wr_u(w, HT_FINISHED, 1);
	wr_u(w, h->hl, 3);
	wr_bytes(w, mac, h->hl);
	OPENSSL_cleanse(fk, sizeof(fk));
}

/* Seals the encrypted part of our flight into the record layer. */
static bool seal_flight(struct wp_tls_rec *rec, const uint8_t *p, size_t len)
{
	while (len > 0) {
		size_t n = WP_MIN(len, (size_t)REC_MAX_PT);

		if (wp_tls_rec_out_room(rec, n + REC_OVERHEAD) != 0 ||
		    wp_tls_rec_seal(rec, 22, p, n) != 0)
			return false;
		p += n;
		len -= n;
	}
	return true;
}

/* The key schedule up to the handshake secrets (RFC 8446 7.1): fills
 * c_hs / s_hs and h->master, from the early secret (NULL: the one without
 * a PSK) and the shared secret, over the transcript up to ServerHello. */
static void schedule(struct wp_tls_hs13 *h, const uint8_t *early, const uint8_t *shared,
                     uint8_t *c_hs, uint8_t *s_hs)
{
	static const uint8_t zeros[WP_TLS_HASH_MAX];
	uint8_t empty[WP_TLS_HASH_MAX], th[WP_TLS_HASH_MAX], s[WP_TLS_HASH_MAX], d[WP_TLS_HASH_MAX];
	struct wp_tls_hash e;
	struct wp_tls_hmac_key k;
	size_t hl = h->hl;

	wp_tls_hash_init(&e, h->alg);
	wp_tls_hash_peek(&e, empty);
	wp_tls_hash_peek(&h->th, th);
	if (early == NULL) {
		wp_tls_hkdf_extract(h->alg, NULL, 0, zeros, hl, s);
		early = s;
	}
	(void)wp_tls_expand_label(h->alg, early, "derived", empty, hl, d, hl);
	wp_tls_hkdf_extract(h->alg, d, hl, shared, 32, s); /* handshake */
	wp_tls_hmac_key_init(&k, h->alg, s, hl);
	(void)wp_tls_expand_label_with(&k, "c hs traffic", th, hl, c_hs, hl);
	(void)wp_tls_expand_label_with(&k, "s hs traffic", th, hl, s_hs, hl);
	(void)wp_tls_expand_label_with(&k, "derived", empty, hl, d, hl);
	wp_tls_hkdf_extract(h->alg, d, hl, zeros, hl, s);
	wp_tls_hmac_key_init(&h->master, h->alg, s, hl);
	OPENSSL_cleanse(s, sizeof(s));
	OPENSSL_cleanse(d, sizeof(d));
	OPENSSL_cleanse(&k, sizeof(k));
}

/* Writes our whole answer: ServerHello (and a change_cipher_spec when the
 * client is in middlebox compatibility mode) in the clear, the rest on the
 * handshake key. The record layer is created here. */
static int answer(struct wp_tls_conn *c, const struct hello *ch, const uint8_t *early,
                  const uint8_t *leftover, size_t leftover_len)
{
	static const uint8_t ccs[] = {20, 3, 3, 0, 1, 1};
	struct wp_tls_hs13 *h = c->hs;
	uint8_t pub[32], shared[32], c_hs[WP_TLS_HASH_MAX], s_hs[WP_TLS_HASH_MAX];
	uint8_t th[WP_TLS_HASH_MAX], sh[5 + 128 + 32];
	struct wr w = {sh, 5, sizeof(sh), false};
	size_t fl_cap = 256 + (h->resumed ? 0 : c->ctx->own.len + 1024);
	struct wr f = {OPENSSL_malloc(fl_cap), 0, fl_cap, false};
	struct wp_tls_rec_params rp = {0};
	int rc = -EPROTO, share;

	if (f.p == NULL)
		return fail(c, WP_TLS_FAIL_OTHER, AL_INTERNAL_ERROR);
	share = wp_tls_x25519_share(ch->x25519, pub, shared);
	if (share != 0) {
		rc = fail(c, WP_TLS_FAIL_OTHER,
		          share == -EINVAL ? AL_ILLEGAL_PARAMETER : AL_INTERNAL_ERROR);
		goto out;
	}
	wp_tls_hash_init(&h->th, h->alg);
	wp_tls_hash_update(&h->th, ch->msg, ch->len);
	server_hello(&w, h, ch, pub);
	wp_tls_hash_update(&h->th, sh + 5, w.n - 5);
	sh[0] = 22;
	sh[1] = 3;
	sh[2] = 3;
	sh[3] = (uint8_t)((w.n - 5) >> 8);
	sh[4] = (uint8_t)(w.n - 5);
	if (ch->sid.n > 0)
		wr_bytes(&w, ccs, sizeof(ccs));
	schedule(h, early, shared, c_hs, s_hs);
	rp.suite = h->suite;
	rp.wsecret = s_hs;
	rp.rsecret = c_hs;
	rp.secret_len = h->hl;
	rp.cap = c->ctx->bio_cap;
	rp.ctrs = c->ctrs;
	rp.handshake = true;
	c->rec = wp_tls_rec_new(&rp);
	if (c->rec == NULL || w.bad ||
	    wp_tls_rec_preload(c->rec, leftover, leftover_len, sh, w.n) != 0) {
		rc = fail(c, WP_TLS_FAIL_OTHER, AL_INTERNAL_ERROR);
		goto out;
	}
	if (c->eof_fed)
		wp_tls_rec_feed_eof(c->rec);
	encrypted_extensions(&f);
	add_msg(h, &f, 0);
	if (!h->resumed) {
		size_t at = f.n;

		certificate_request(&f);
		wr_bytes(&f, c->ctx->own.msg, c->ctx->own.len);
		add_msg(h, &f, at);
		at = f.n;
		if (!certificate_verify(c, &f)) {
			rc = fail(c, WP_TLS_FAIL_OTHER, AL_INTERNAL_ERROR);
			goto out;
		}
		add_msg(h, &f, at);
	}
	size_t at = f.n;
	finished(h, &f, s_hs);
	add_msg(h, &f, at);
	if (f.bad || !seal_flight(c->rec, f.p, f.n)) {
		rc = fail(c, WP_TLS_FAIL_OTHER, AL_INTERNAL_ERROR);
		goto out;
	}
	/* the application secrets hash the transcript up to our Finished,
	 * after which we send on ours (alerts included: RFC 8446 A.2) */
	wp_tls_hash_peek(&h->th, th);
	(void)wp_tls_expand_label_with(&h->master, "c ap traffic", th, h->hl, h->c_app, h->hl);
	(void)wp_tls_expand_label_with(&h->master, "s ap traffic", th, h->hl, s_hs, h->hl);
	(void)wp_tls_expand_label(h->alg, c_hs, "finished", NULL, 0, h->c_fin, h->hl);
	if (wp_tls_rec_set_secret(c->rec, true, s_hs) != 0) {
		h->phase = P_FAILED;
		c->fail = WP_TLS_FAIL_OTHER;
		goto out;
	}
	h->phase = h->resumed ? P_FINISHED : P_CERT;
	rc = 1;
out:
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(c_hs, sizeof(c_hs));
	OPENSSL_cleanse(s_hs, sizeof(s_hs));
	OPENSSL_free(f.p);
	return rc;
}

/* The ClientHello: 1 answered, 0 more bytes needed, WP_TLS_HS13_OPENSSL,
 * or -EPROTO. */
static int hello(struct wp_tls_conn *c)
{
	struct wp_tls_hs13 *h = c->hs;
	struct hello ch;
	struct ticket t = {0};
	uint8_t plain[WP_TLS_TICKET_PLAIN_MAX + WP_TLS_TICKET_OVERHEAD];
	uint8_t early[WP_TLS_HASH_MAX];
	size_t rest = 0;
	bool ticket;
	int rc = collect_hello(h, &rest);

	if (rc != 1)
		return rc;
	/* (a PSK offer without psk_key_exchange_modes is an error OpenSSL
	 * reports) */
	if (!parse_hello(h->msg, h->msg_len, &ch) || !ch.v13 || ch.x25519 == NULL ||
	    !ch.x25519_listed || !ch.alpn || !ch.h2 || ch.early || ch.cookie ||
	    (ch.psk && !ch.psk_modes))
		return WP_TLS_HS13_OPENSSL;
	ticket = ch.psk && ch.psk_dhe && open_ticket(c, &ch, plain, &t);
	if (ticket) {
		set_suite(h, t.suite);
		wp_tls_hkdf_extract(h->alg, NULL, 0, t.psk, t.psk_len, early);
		if (!binder_ok(h, &ch, early)) {
			OPENSSL_cleanse(plain, sizeof(plain));
			OPENSSL_cleanse(&t, sizeof(t));
			return fail(c, WP_TLS_FAIL_OTHER, AL_DECRYPT_ERROR);
		}
		rc = wp_tls_check_uri(c, (const char *)t.id, t.id_len);
		if (rc != WP_TLS_FAIL_NONE) {
			OPENSSL_cleanse(plain, sizeof(plain));
			return fail(c, (enum wp_tls_fail)rc, AL_HANDSHAKE_FAILURE);
		}
		h->resumed = true;
	} else {
		uint16_t s = pick_suite(&c->ctx->cfg, ch.suites);

		if (s == 0 || !list_has_u16(ch.sigalgs, c->ctx->own.scheme))
			return WP_TLS_HS13_OPENSSL;
		set_suite(h, s);
	}
	rc = answer(c, &ch, ticket ? early : NULL, h->in + rest, h->in_len - rest);
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(&t, sizeof(t));
	OPENSSL_cleanse(early, sizeof(early));
	if (rc == 1) {
		OPENSSL_free(h->in); /* OpenSSL will never see it now */
		h->in = NULL;
		h->in_len = h->in_cap = 0;
		h->msg_len = 0;
	}
	return rc;
}

/* ---- the client's flight ---- */

/* The next whole message from the client into h->msg: 1, 0 (more bytes
 * needed), or -EPROTO. */
static int next_msg(struct wp_tls_conn *c)
{
	struct wp_tls_hs13 *h = c->hs;

	for (;;) {
		size_t want = 4;
		ssize_t n;

		if (h->msg_len >= 4)
			want += (size_t)h->msg[1] << 16 | (size_t)h->msg[2] << 8 | h->msg[3];
		if (h->msg_len == want)
			return 1;
		if (!grow(&h->msg, &h->msg_cap, want, MSG_MAX))
			return fail(c, WP_TLS_FAIL_OTHER,
			            want > MSG_MAX ? AL_DECODE_ERROR : AL_INTERNAL_ERROR);
		n = wp_tls_rec_read(c->rec, h->msg + h->msg_len, want - h->msg_len);
		if (n > 0) {
			h->msg_len += (uint32_t)n;
			continue;
		}
		if (n == 0)
			return 0;
		/* the record layer failed (and sent its alert), or the peer
		 * alerted or closed */
		h->phase = P_FAILED;
		if (c->fail == WP_TLS_FAIL_NONE)
			c->fail = (uint8_t)(n == -EPROTO ? wp_tls_rec_fail(c->rec)
			                                 : WP_TLS_FAIL_OTHER);
		return -EPROTO;
	}
}

/* SHA-256 over the certificates as sent, for the memo. */
static void chain_digest(struct rd list, uint8_t d[32])
{
	struct wp_tls_hash t;

	wp_tls_hash_init(&t, WP_TLS_SHA256);
	while (list.n > 0) {
		struct rd der = rd_vec(&list, 3);

		(void)rd_vec(&list, 2);
		wp_tls_hash_update(&t, der.p, der.n);
	}
	wp_tls_hash_peek(&t, d);
}

static uint8_t verify_alert(int err, enum wp_tls_fail *f)
{
	switch (err) {
	case X509_V_ERR_CERT_HAS_EXPIRED:
	case X509_V_ERR_CERT_NOT_YET_VALID:
		*f = WP_TLS_FAIL_EXPIRED;
		return AL_CERTIFICATE_EXPIRED;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		*f = WP_TLS_FAIL_BAD_CHAIN;
		return AL_UNKNOWN_CA;
	default:
		*f = WP_TLS_FAIL_BAD_CHAIN;
		return AL_BAD_CERTIFICATE;
	}
}

/* Parses and verifies the chain (list: the certificate entries) as
 * OpenSSL would for a server; on success h->peer_key and c's identity. */
static int verify_chain(struct wp_tls_conn *c, struct rd list, const uint8_t d[32])
{
	struct wp_tls_hs13 *h = c->hs;
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509_STORE_CTX *xs = X509_STORE_CTX_new();
	SSL_CTX *s = c->ctx->server;
	enum wp_tls_fail f = WP_TLS_FAIL_OTHER;
	uint8_t alert = AL_INTERNAL_ERROR;
	X509 *leaf;
	int rc = -EPROTO;

	if (sk == NULL || xs == NULL)
		goto out;
	while (list.n > 0) {
		struct rd der = rd_vec(&list, 3);
		const unsigned char *p = der.p;
		X509 *x;

		(void)rd_vec(&list, 2);
		x = d2i_X509(NULL, &p, (long)der.n);
		if (x == NULL || p != der.p + der.n || !sk_X509_push(sk, x)) {
			X509_free(x);
			f = WP_TLS_FAIL_BAD_CHAIN;
			alert = AL_BAD_CERTIFICATE;
			goto out;
		}
	}
	leaf = sk_X509_value(sk, 0);
	if (!X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(s), leaf, sk))
		goto out;
	X509_STORE_CTX_set_default(xs, "ssl_client");
	X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(xs),
	                                 SSL_CTX_get_security_level(s));
	X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(xs), SSL_CTX_get0_param(s));
	if (X509_verify_cert(xs) != 1) {
		alert = verify_alert(X509_STORE_CTX_get_error(xs), &f);
		goto out;
	}
	f = wp_tls_check_identity(c, leaf);
	if (f != WP_TLS_FAIL_NONE) {
		alert = AL_HANDSHAKE_FAILURE;
		goto out;
	}
	h->peer_key = X509_get_pubkey(leaf);
	if (h->peer_key == NULL)
		goto out;
	wp_tls_memo_keep(c, d, xs, h->peer_key, c->peer_id);
	rc = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(xs);
	sk_X509_pop_free(sk, X509_free);
	return rc == 0 ? 0 : fail(c, f, alert);
}

static int client_certificate(struct wp_tls_conn *c, struct rd body)
{
	struct wp_tls_hs13 *h = c->hs;
	struct rd ctx = rd_vec(&body, 1), list = rd_vec(&body, 3), l;
	const char *uri = NULL;
	uint8_t d[32];
	size_t n = 0;

	if (!rd_done(&body) || ctx.bad)
		return fail(c, WP_TLS_FAIL_OTHER, AL_DECODE_ERROR);
	if (ctx.n != 0)
		return fail(c, WP_TLS_FAIL_OTHER, AL_ILLEGAL_PARAMETER);
	for (l = list; l.n > 0 && !l.bad; n++) {
		struct rd der = rd_vec(&l, 3);

		(void)rd_vec(&l, 2);
		if (der.n == 0)
			l.bad = true;
	}
	if (l.bad)
		return fail(c, WP_TLS_FAIL_OTHER, AL_DECODE_ERROR);
	if (n == 0)
		return fail(c, WP_TLS_FAIL_NO_PEER_CERT, AL_CERTIFICATE_REQUIRED);
	if (n > CERTS_MAX)
		return fail(c, WP_TLS_FAIL_BAD_CHAIN, AL_BAD_CERTIFICATE);
	chain_digest(list, d);
	h->peer_key = wp_tls_memo_find(c, d, &uri);
	if (h->peer_key != NULL) {
		enum wp_tls_fail f = wp_tls_check_uri(c, uri, strlen(uri));

		return f == WP_TLS_FAIL_NONE ? 0 : fail(c, f, AL_HANDSHAKE_FAILURE);
	}
	return verify_chain(c, list, d);
}

static int client_certificate_verify(struct wp_tls_conn *c, struct rd body)
{
	struct wp_tls_hs13 *h = c->hs;
	uint16_t s = (uint16_t)rd_u(&body, 2);
	struct rd sig = rd_vec(&body, 2);
	uint8_t th[WP_TLS_HASH_MAX], tbs[64 + 34 + WP_TLS_HASH_MAX];
	bool offered = false;
	size_t n, siglen = sig.n;

	if (!rd_done(&body) || sig.bad)
		return fail(c, WP_TLS_FAIL_OTHER, AL_DECODE_ERROR);
	for (size_t i = 0; i < WP_ARRAY_SIZE(cv_schemes); i++)
		offered |= cv_schemes[i] == s;
	if (!offered || !scheme_fits(s, h->peer_key))
		return fail(c, WP_TLS_FAIL_OTHER, AL_ILLEGAL_PARAMETER);
	wp_tls_hash_peek(&h->th, th);
	n = cv_content(false, th, h->hl, tbs);
	if (!pkey_sig(false, s, h->peer_key, tbs, n, (uint8_t *)sig.p, &siglen))
		return fail(c, WP_TLS_FAIL_OTHER, AL_DECRYPT_ERROR);
	EVP_PKEY_free(h->peer_key);
	h->peer_key = NULL;
	return 0;
}

static int client_finished(struct wp_tls_conn *c, struct rd body)
{
	struct wp_tls_hs13 *h = c->hs;
	uint8_t th[WP_TLS_HASH_MAX], want[WP_TLS_HASH_MAX];

	if (body.n != h->hl)
		return fail(c, WP_TLS_FAIL_OTHER, AL_DECODE_ERROR);
	wp_tls_hash_peek(&h->th, th);
	wp_tls_hmac(h->alg, h->c_fin, h->hl, th, h->hl, want);
	if (CRYPTO_memcmp(want, body.p, h->hl) != 0)
		return fail(c, WP_TLS_FAIL_OTHER, AL_DECRYPT_ERROR);
	/* the keys change after it: nothing more in its record (5.1) */
	if (c->rec->pt_len != 0)
		return fail(c, WP_TLS_FAIL_OTHER, AL_UNEXPECTED_MESSAGE);
	return 0;
}

/* One NewSessionTicket for the session just made (RFC 8446 4.6.1). */
static void new_session_ticket(struct wp_tls_conn *c)
{
	struct wp_tls_hs13 *h = c->hs;
	struct wp_tls_tickets *k = c->ctx->tickets;
	static const uint8_t nonce[8]; /* one ticket per connection: unique on it */
	uint8_t th[WP_TLS_HASH_MAX], res[WP_TLS_HASH_MAX], psk[WP_TLS_HASH_MAX];
	uint8_t plain[WP_TLS_TICKET_PLAIN_MAX],
	        msg[64 + WP_TLS_TICKET_PLAIN_MAX + WP_TLS_TICKET_OVERHEAD];
	size_t idl = strlen(c->peer_id), tlen = 0, at, tat;
	struct wr p = {plain, 0, sizeof(plain), false}, m = {msg, 0, sizeof(msg), false};
	uint64_t now;
	uint32_t age_add;

	if (k == NULL || RAND_bytes((uint8_t *)&age_add, sizeof(age_add)) != 1)
		return;
	now = wp_tls_tickets_now(k);
	wp_tls_hash_peek(&h->th, th);
	(void)wp_tls_expand_label_with(&h->master, "res master", th, h->hl, res, h->hl);
	(void)wp_tls_expand_label(h->alg, res, "resumption", nonce, sizeof(nonce), psk, h->hl);
	wr_bytes(&p, TICKET_MAG, 4);
	wr_u(&p, h->suite, 2);
	wr_u(&p, (uint32_t)(now >> 32), 4);
	wr_u(&p, (uint32_t)now, 4);
	wr_u(&p, h->hl, 1);
	wr_bytes(&p, psk, h->hl);
	wr_u(&p, (uint32_t)idl, 2);
	wr_bytes(&p, c->peer_id, idl);
	wr_u(&m, HT_NEW_SESSION_TICKET, 1);
	at = wr_open(&m, 3);
	wr_u(&m, wp_tls_tickets_lifetime(k), 4);
	wr_u(&m, age_add, 4);
	wr_u(&m, sizeof(nonce), 1);
	wr_bytes(&m, nonce, sizeof(nonce));
	tat = wr_open(&m, 2);
	if (!p.bad && !m.bad &&
	    wp_tls_tickets_seal(k, plain, p.n, msg + m.n, &tlen, c->ctrs) == 0) {
		m.n += tlen;
		wr_close(&m, tat, 2);
		wr_u(&m, 0, 2); /* no extensions */
		wr_close(&m, at, 3);
		if (!m.bad && wp_tls_rec_out_room(c->rec, m.n + REC_OVERHEAD) == 0)
			(void)wp_tls_rec_seal(c->rec, 22, msg, m.n);
	}
	OPENSSL_cleanse(res, sizeof(res));
	OPENSSL_cleanse(psk, sizeof(psk));
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(msg, sizeof(msg));
}

/* The client's Finished verified: application keys, a ticket. */
static int established(struct wp_tls_conn *c)
{
	struct wp_tls_hs13 *h = c->hs;
	int rc = wp_tls_rec_handshake_done(c->rec, h->c_app);

	OPENSSL_cleanse(h->c_app, sizeof(h->c_app));
	if (rc != 0) {
		h->phase = P_FAILED;
		c->fail = WP_TLS_FAIL_OTHER;
		return -EPROTO;
	}
	new_session_ticket(c);
	OPENSSL_cleanse(&h->master, sizeof(h->master));
	h->phase = P_DONE;
	c->resumed = h->resumed;
	return 1;
}

int wp_tls_hs13_step(struct wp_tls_conn *c)
{
	struct wp_tls_hs13 *h = c->hs;
	int rc;

	if (h->phase == P_FAILED)
		return -EPROTO;
	if (h->phase == P_HELLO && (rc = hello(c)) != 1)
		return rc;
	while (h->phase < P_DONE) {
		static const uint8_t want[] = {
		        [P_CERT] = HT_CERTIFICATE,
		        [P_CV] = HT_CERTIFICATE_VERIFY,
		        [P_FINISHED] = HT_FINISHED,
		};
		struct rd body;

		if ((rc = next_msg(c)) != 1)
			return rc;
		if (h->msg[0] != want[h->phase])
			return fail(c, WP_TLS_FAIL_OTHER, AL_UNEXPECTED_MESSAGE);
		body = (struct rd){h->msg + 4, h->msg_len - 4u, false};
		switch (h->phase) {
		case P_CERT:
			rc = client_certificate(c, body);
			break;
		case P_CV:
			rc = client_certificate_verify(c, body);
			break;
		default:
			rc = client_finished(c, body);
			break;
		}
		if (rc != 0)
			return rc;
		wp_tls_hash_update(&h->th, h->msg, h->msg_len);
		h->msg_len = 0;
		if (h->phase == P_FINISHED)
			return established(c);
		h->phase++;
	}
	return 1;
}
