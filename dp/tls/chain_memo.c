/*
 * Memo of peer certificate chains already verified (see tls_int.h).
 *
 * After its key decoding (eckey.c), the largest part of a server's full
 * mTLS handshake is verifying the client's chain: X509_verify_cert builds
 * the path to our roots and checks each signature (an ECDSA verification,
 * ~30% of the handshake's instructions). A waypoint sees the same few
 * certificates over and over: each ztunnel presents one per workload
 * identity on its node, for hours, and a node's ztunnel reconnects all of
 * its tunnels at once after an upgrade.
 *
 * OpenSSL's certificate verification callback (SSL_CTX_set_cert_verify_
 * callback) replaces X509_verify_cert: when the certificates the peer sent
 * (DER, in order, hashed with SHA-256) were verified before against the
 * same trust store (the same wp_tls_ctx: a reload makes a new one) in the
 * same role (a client's certificate and a server's are checked for
 * different purposes), and the time is inside every certificate's validity
 * in that verified chain, the chain is not verified again. Anything else
 * is verified by OpenSSL, and only a success is remembered. The identity
 * check (SPIFFE ID, trust domain, the expected peer) is per connection and
 * always runs. Revocation is not in play: like Istio, we load no CRLs.
 *
 * Our own server handshake (hs13.c) uses the same memo without OpenSSL's
 * callback: it digests the certificates as they came in the Certificate
 * message, and a slot it fills also keeps the leaf's public key and the
 * SPIFFE ID read from it, so that a chain seen before is not even parsed
 * (wp_tls_memo_find / _keep).
 *
 * The memo is per thread (the workers share the SSL_CTX): 256 entries in
 * 32 sets of 8, the set picked by the digest, the least recently used
 * entry of a full set replaced; 20 KiB per worker plus the keys kept, no
 * lock; a thread's keys are freed when it exits. Sets rather than one
 * slot per digest: two chains in use that share a slot push each other out
 * on every handshake, and with 20 chains in use the odds that some two
 * share one of 256 slots are about even, while a set of 8 overflows only
 * when 9 of them fall into it. One chain has an entry per context and
 * role it was verified for.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_int.h"

#define MEMO_SLOTS 256
#define MEMO_WAYS  8 /* entries per set */
#define MEMO_SETS  (MEMO_SLOTS / MEMO_WAYS)

struct memo_slot {
	uint8_t digest[32];
	uint64_t ctx_id; /* 0: empty */
	int64_t not_before, not_after;
	uint8_t role;  /* enum wp_tls_role: the purpose checked (client or server certificate) */
	uint32_t used; /* memo_clock when last remembered or found */
	EVP_PKEY *key; /* hs13.c's slots: the leaf's key, and its SPIFFE ID */
	char *uri;
};

static __thread struct memo_slot memo[MEMO_SLOTS];
static __thread uint32_t memo_clock;
static __thread bool memo_owned; /* the thread's exit frees its keys */
static pthread_key_t memo_key;
static pthread_once_t memo_key_once = PTHREAD_ONCE_INIT;
static bool memo_key_ok;
static EVP_MD *sha256;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

/* SHA-256 over the DER of the leaf and of the other certificates the peer
 * sent, in order (OpenSSL passes the leaf first among them). */
static int chain_digest(X509_STORE_CTX *xs, X509 *leaf, uint8_t d[32])
{
	STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(xs);
	int n = sent != NULL ? sk_X509_num(sent) : 0;
	unsigned int len = 0;
	EVP_MD_CTX *h;
	int ok;

	pthread_once(&sha256_once, sha256_fetch);
	if (sha256 == NULL || (h = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex2(h, sha256, NULL);
	for (int i = -1; ok && i < n; i++) {
		X509 *x = i < 0 ? leaf : sk_X509_value(sent, i);
		unsigned char *der = NULL;
		int dlen;

		if (i >= 0 && x == leaf)
			continue;
		dlen = i2d_X509(x, &der);
		ok = dlen > 0 && EVP_DigestUpdate(h, der, (size_t)dlen);
		OPENSSL_free(der);
	}
	ok = ok && EVP_DigestFinal_ex(h, d, &len) && len == 32;
	EVP_MD_CTX_free(h);
	return ok ? 0 : -1;
}

static bool asn1_seconds(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;

	if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
		return false;
	*out = (int64_t)timegm(&tm);
	return true;
}

static void slot_clear(struct memo_slot *m)
{
	EVP_PKEY_free(m->key);
	OPENSSL_free(m->uri);
	memset(m, 0, sizeof(*m));
}

static void memo_drop(void *arg)
{
	(void)arg;
	for (int i = 0; i < MEMO_SLOTS; i++)
		slot_clear(&memo[i]);
}

static void memo_key_init(void)
{
	memo_key_ok = pthread_key_create(&memo_key, memo_drop) == 0;
}

/* Remembers a chain OpenSSL just verified, with the time span in which
 * every certificate of it (our root included) is valid; key and uri (hs13.c)
 * may be NULL. */
static void remember(struct memo_slot *m, const uint8_t d[32], const struct wp_tls_conn *c,
                     X509_STORE_CTX *xs, EVP_PKEY *key, const char *uri)
{
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(xs);
	int64_t nb = INT64_MIN, na = INT64_MAX, t;

	if (chain == NULL || sk_X509_num(chain) == 0)
		return;
	slot_clear(m);
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, i);

		if (!asn1_seconds(X509_get0_notBefore(x), &t))
			return;
		nb = t > nb ? t : nb;
		if (!asn1_seconds(X509_get0_notAfter(x), &t))
			return;
		na = t < na ? t : na;
	}
	memcpy(m->digest, d, 32);
	m->ctx_id = c->ctx->id;
	m->role = c->role;
	m->used = ++memo_clock;
	m->not_before = nb;
	m->not_after = na;
	if (key == NULL || uri == NULL)
		return;
	if (!memo_owned) {
		pthread_once(&memo_key_once, memo_key_init);
		if (!memo_key_ok || pthread_setspecific(memo_key, memo) != 0)
			return;
		memo_owned = true;
	}
	m->uri = OPENSSL_strdup(uri);
	if (m->uri != NULL && EVP_PKEY_up_ref(key) == 1)
		m->key = key;
	else
		slot_clear(m);
}

/* The time OpenSSL verifies at: now, unless the parameters fix one
 * (X509_V_FLAG_USE_CHECK_TIME). */
static int64_t check_time(const X509_VERIFY_PARAM *vp)
{
	if (vp != NULL && (X509_VERIFY_PARAM_get_flags(vp) & X509_V_FLAG_USE_CHECK_TIME))
		return (int64_t)X509_VERIFY_PARAM_get_time(vp);
	return (int64_t)time(NULL);
}

static struct memo_slot *set_of(const uint8_t d[32])
{
	return &memo[(d[0] % MEMO_SETS) * MEMO_WAYS];
}

static bool same_chain(const struct memo_slot *m, const struct wp_tls_conn *c, const uint8_t d[32])
{
	return m->ctx_id == c->ctx->id && m->role == c->role && memcmp(m->digest, d, 32) == 0;
}

/* The entry of digest d if it holds a chain verified for c's context and
 * role that is valid at now (marked as used); else NULL. */
static struct memo_slot *lookup(const struct wp_tls_conn *c, const uint8_t d[32], int64_t now)
{
	struct memo_slot *set = set_of(d);

	for (int i = 0; i < MEMO_WAYS; i++) {
		struct memo_slot *m = &set[i];

		if (same_chain(m, c, d) && now >= m->not_before && now <= m->not_after) {
			m->used = ++memo_clock;
			return m;
		}
	}
	return NULL;
}

/* Where to remember digest d for c: its own entry if it has one (expired,
 * or its key unkept), else an empty one of its set, else the set's least
 * recently used. */
static struct memo_slot *victim(const struct wp_tls_conn *c, const uint8_t d[32])
{
	struct memo_slot *set = set_of(d), *v = NULL;

	for (int i = 0; i < MEMO_WAYS; i++) {
		struct memo_slot *m = &set[i];

		if (same_chain(m, c, d))
			return m;
		if (v == NULL ||
		    (v->ctx_id != 0 && (m->ctx_id == 0 || (int32_t)(m->used - v->used) < 0)))
			v = m;
	}
	return v;
}

EVP_PKEY *wp_tls_memo_find(const struct wp_tls_conn *c, const uint8_t d[32], const char **uri)
{
	SSL_CTX *s = c->role == WP_TLS_SERVER ? c->ctx->server : c->ctx->client;
	struct memo_slot *m = lookup(c, d, check_time(SSL_CTX_get0_param(s)));

	if (m == NULL || m->key == NULL || EVP_PKEY_up_ref(m->key) != 1)
		return NULL;
	*uri = m->uri;
	ctr_inc(c->ctrs, WP_CTR_TLS_CHAIN_MEMO_HIT);
	return m->key;
}

void wp_tls_memo_keep(const struct wp_tls_conn *c, const uint8_t d[32], X509_STORE_CTX *xs,
                      EVP_PKEY *key, const char *uri)
{
	remember(victim(c, d), d, c, xs, key, uri);
}

int wp_tls_chain_verify(X509_STORE_CTX *xs, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct wp_tls_conn *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	uint8_t d[32];
	int64_t now;
	int ok;

	(void)arg;
	if (c == NULL || leaf == NULL || chain_digest(xs, leaf, d) != 0)
		return X509_verify_cert(xs);
	now = check_time(X509_STORE_CTX_get0_param(xs));
	if (lookup(c, d, now) != NULL) {
		if (!wp_tls_identity_verdict(c, xs, leaf))
			return 0;
		X509_STORE_CTX_set_error(xs, X509_V_OK);
		ctr_inc(c->ctrs, WP_CTR_TLS_CHAIN_MEMO_HIT);
		return 1;
	}
	ok = X509_verify_cert(xs);
	if (ok == 1)
		remember(victim(c, d), d, c, xs, NULL, NULL);
	return ok;
}
