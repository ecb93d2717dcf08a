/*
 * mTLS over memory BIOs (see tls.h). An inbound connection starts on our
 * own TLS 1.3 server handshake (hs13.c), which ends on our record layer;
 * a hello it does not take, and every outbound connection, get an SSL
 * for the handshake (two shared SSL_CTXs per wp_tls_ctx), as described
 * below. The SPIFFE identity of the peer is checked in the verify callback
 * at depth 0, after OpenSSL accepted the chain, so a foreign trust domain
 * fails the handshake with an alert; resumed sessions (no verify
 * callback) are checked again when the handshake completes.
 *
 * Once a TLS 1.3 handshake completed, the connection moves to our own
 * record layer (record.c) and the SSL object is freed: an idle connection
 * then holds two AEAD states and two secrets instead of ~18 KB of OpenSSL.
 * The secrets come from the keylog callback (CLIENT_/SERVER_TRAFFIC_SECRET_0,
 * checked against the connection's client random). The sequence numbers
 * are counted, not assumed: OpenSSL calls the keylog callback for a
 * direction's application secret exactly where it installs that key (right
 * after writing/reading the Finished of that direction; checked against
 * OpenSSL 3.0.22), and the message callback reports the header of every
 * record it writes and reads (SSL3_RT_HEADER). The records counted since
 * the secret's keylog call are the records protected with it: on the
 * server the NewSessionTicket records (one per ticket), everywhere else 0.
 * The receiving count is 0 by construction (OpenSSL without read-ahead
 * reads record by record and stops after the peer's Finished; a TLS 1.3
 * key change is on a record boundary) and is checked, as is
 * SSL_has_pending(): what OpenSSL did not read is still in the memory BIO
 * and moves, with the ciphertext OpenSSL wrote and nobody took yet, into
 * our buffers. kTLS's BIO_CTRL_SET_KTLS hook would also hand over key, IV
 * and sequence, but only with SSL_OP_ENABLE_KTLS, a kernel-supported
 * suite and a BIO that then receives plaintext records; counting needs
 * none of that. A connection we cannot move (TLS 1.2, a suite record.c
 * does not implement, a secret or count missing) stays on OpenSSL,
 * counted (TLS_REC_KEPT_OPENSSL).
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "ticket.h"
#include "tls_int.h"
#include "wp/counters.h"

#define CIPHERS12                                                                                  \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"                             \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"
#define DEFAULT_BIO_CAP (64 * 1024)

static const char *const fail_names[] = {
        [WP_TLS_FAIL_NONE] = "none",
        [WP_TLS_FAIL_NO_PEER_CERT] = "no peer certificate",
        [WP_TLS_FAIL_BAD_CHAIN] = "certificate chain not trusted",
        [WP_TLS_FAIL_EXPIRED] = "certificate expired or not yet valid",
        [WP_TLS_FAIL_NO_SPIFFE_ID] = "no valid SPIFFE URI SAN",
        [WP_TLS_FAIL_FOREIGN_TD] = "foreign trust domain",
        [WP_TLS_FAIL_WRONG_PEER] = "unexpected peer identity",
        [WP_TLS_FAIL_NO_ALPN_H2] = "peer does not speak h2 (ALPN)",
        [WP_TLS_FAIL_PROTOCOL_VERSION] = "protocol version refused",
        [WP_TLS_FAIL_PEER_ALERT] = "peer sent a fatal alert",
        [WP_TLS_FAIL_OTHER] = "TLS error",
};

const char *wp_tls_fail_str(enum wp_tls_fail f)
{
	if ((size_t)f >= WP_ARRAY_SIZE(fail_names))
		return "?";
	return fail_names[f];
}

static const enum wp_ctr fail_ctr[] = {
        [WP_TLS_FAIL_NONE] = WP_CTR_TLS_HS_OTHER,
        [WP_TLS_FAIL_NO_PEER_CERT] = WP_CTR_TLS_HS_NO_PEER_CERT,
        [WP_TLS_FAIL_BAD_CHAIN] = WP_CTR_TLS_HS_BAD_CHAIN,
        [WP_TLS_FAIL_EXPIRED] = WP_CTR_TLS_HS_EXPIRED,
        [WP_TLS_FAIL_NO_SPIFFE_ID] = WP_CTR_TLS_HS_NO_SPIFFE_ID,
        [WP_TLS_FAIL_FOREIGN_TD] = WP_CTR_TLS_HS_FOREIGN_TRUST_DOMAIN,
        [WP_TLS_FAIL_WRONG_PEER] = WP_CTR_TLS_HS_WRONG_PEER,
        [WP_TLS_FAIL_NO_ALPN_H2] = WP_CTR_TLS_HS_NO_ALPN_H2,
        [WP_TLS_FAIL_PROTOCOL_VERSION] = WP_CTR_TLS_HS_PROTOCOL_VERSION,
        [WP_TLS_FAIL_PEER_ALERT] = WP_CTR_TLS_HS_PEER_ALERT,
        [WP_TLS_FAIL_OTHER] = WP_CTR_TLS_HS_OTHER,
};

/* ---- SPIFFE identities ---- */

int wp_tls_spiffe_parse(const char *id, size_t len, const char **td, size_t *td_len,
                        const char **ns, size_t *ns_len, const char **sa, size_t *sa_len)
{
	static const char scheme[] = "spiffe://";
	const char *p, *end = id + len, *slash;

	if (len <= sizeof(scheme) - 1 || strncasecmp(id, scheme, sizeof(scheme) - 1) != 0)
		return -EINVAL;
	p = id + sizeof(scheme) - 1;
	slash = memchr(p, '/', (size_t)(end - p));
	if (slash == NULL || slash == p)
		return -EINVAL;
	*td = p;
	*td_len = (size_t)(slash - p);
	p = slash + 1;
	if ((size_t)(end - p) < 3 || memcmp(p, "ns/", 3) != 0)
		return -EINVAL;
	p += 3;
	slash = memchr(p, '/', (size_t)(end - p));
	if (slash == NULL || slash == p)
		return -EINVAL;
	*ns = p;
	*ns_len = (size_t)(slash - p);
	p = slash + 1;
	if ((size_t)(end - p) < 3 || memcmp(p, "sa/", 3) != 0)
		return -EINVAL;
	p += 3;
	if (p == end || memchr(p, '/', (size_t)(end - p)) != NULL)
		return -EINVAL;
	*sa = p;
	*sa_len = (size_t)(end - p);
	for (const char *q = id; q < end; q++)
		if (*q == '\0' || (unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
			return -EINVAL;
	return 0;
}

static bool td_allowed(const struct wp_tls_ctx *t, const char *td, size_t len)
{
	if (strlen(t->cfg.trust_domain) == len && memcmp(t->cfg.trust_domain, td, len) == 0)
		return true;
	for (size_t i = 0; i < WP_TLS_MAX_ALIASES && t->cfg.aliases[i] != NULL; i++)
		if (strlen(t->cfg.aliases[i]) == len && memcmp(t->cfg.aliases[i], td, len) == 0)
			return true;
	return false;
}

enum wp_tls_fail wp_tls_check_uri(struct wp_tls_conn *c, const char *uri, size_t ulen)
{
	const char *td, *ns, *sa;
	size_t td_len, ns_len, sa_len;

	if (ulen >= WP_TLS_ID_MAX ||
	    wp_tls_spiffe_parse(uri, ulen, &td, &td_len, &ns, &ns_len, &sa, &sa_len) != 0)
		return WP_TLS_FAIL_NO_SPIFFE_ID;
	if (!td_allowed(c->ctx, td, td_len))
		return WP_TLS_FAIL_FOREIGN_TD;
	if (c->expected != NULL && (strlen(c->expected) != ulen || memcmp(c->expected, uri, ulen)))
		return WP_TLS_FAIL_WRONG_PEER;
	OPENSSL_free(c->peer_id);
	c->peer_id = OPENSSL_strndup(uri, ulen);
	if (c->peer_id == NULL)
		return WP_TLS_FAIL_OTHER;
	c->td_len = (uint16_t)td_len;
	c->ns_off = (uint16_t)(ns - uri);
	c->ns_len = (uint16_t)ns_len;
	c->sa_off = (uint16_t)(sa - uri);
	c->sa_len = (uint16_t)sa_len;
	return WP_TLS_FAIL_NONE;
}

/* Extracts and checks the leaf's SPIFFE ID; on success stores it in c. */
enum wp_tls_fail wp_tls_check_identity(struct wp_tls_conn *c, X509 *leaf)
{
	GENERAL_NAMES *gens;
	const char *uri = NULL;
	size_t ulen = 0;
	int nuri = 0;
	enum wp_tls_fail f;

	if (leaf == NULL)
		return WP_TLS_FAIL_NO_PEER_CERT;
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return WP_TLS_FAIL_NO_SPIFFE_ID;
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		if (g->type != GEN_URI)
			continue;
		nuri++;
		uri = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		ulen = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
	}
	/* A SPIFFE SVID carries exactly one URI SAN. */
	f = nuri != 1 ? WP_TLS_FAIL_NO_SPIFFE_ID : wp_tls_check_uri(c, uri, ulen);
	GENERAL_NAMES_free(gens);
	return f;
}

int wp_tls_identity_verdict(struct wp_tls_conn *c, X509_STORE_CTX *xs, X509 *leaf)
{
	enum wp_tls_fail f = wp_tls_check_identity(c, leaf);

	if (f == WP_TLS_FAIL_NONE)
		return 1;
	c->fail = (uint8_t)f;
	X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
	return 0;
}

/* ---- callbacks ---- */

static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct wp_tls_conn *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;

	if (c == NULL)
		return 0;
	if (!ok) {
		int e = X509_STORE_CTX_get_error(xs);
		if (c->fail == WP_TLS_FAIL_NONE)
			c->fail = (e == X509_V_ERR_CERT_HAS_EXPIRED ||
			           e == X509_V_ERR_CERT_NOT_YET_VALID)
			                  ? WP_TLS_FAIL_EXPIRED
			                  : WP_TLS_FAIL_BAD_CHAIN;
		return 0;
	}
	if (X509_STORE_CTX_get_error_depth(xs) != 0)
		return 1;
	return wp_tls_identity_verdict(c, xs, X509_STORE_CTX_get_current_cert(xs));
}

/* Server: refuse a ClientHello that carries no ALPN extension at all (the
 * select callback below only runs when there is one). */
static int client_hello_cb(SSL *ssl, int *al, void *arg)
{
	const unsigned char *ext;
	size_t len;
	struct wp_tls_conn *c = SSL_get_app_data(ssl);

	(void)arg;
	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
	                              &len) == 1)
		return SSL_CLIENT_HELLO_SUCCESS;
	if (c != NULL)
		c->fail = WP_TLS_FAIL_NO_ALPN_H2;
	*al = SSL_AD_NO_APPLICATION_PROTOCOL;
	return SSL_CLIENT_HELLO_ERROR;
}

static int alpn_select_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
	struct wp_tls_conn *c = SSL_get_app_data(ssl);

	(void)arg;
	for (unsigned int i = 0; i < inlen;) {
		unsigned int l = in[i];
		if (i + 1 + l > inlen)
			break;
		if (l == 2 && in[i + 1] == 'h' && in[i + 2] == '2') {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
		i += 1 + l;
	}
	if (c != NULL)
		c->fail = WP_TLS_FAIL_NO_ALPN_H2;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* ---- secrets and record counts for the switch to record.c ---- */

static int unhex(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decodes exactly len hex digits pairs from s into out; false if bad. */
static bool hex_eq_or_decode(const char *s, size_t nhex, uint8_t *out, const uint8_t *cmp)
{
	for (size_t i = 0; i < nhex / 2; i++) {
		int hi = unhex(s[2 * i]), lo = unhex(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		if (out != NULL)
			out[i] = (uint8_t)(hi << 4 | lo);
		else if (cmp[i] != (uint8_t)(hi << 4 | lo))
			return false;
	}
	return true;
}

/*
 * NSS key log line: "<LABEL> <client random, 64 hex> <secret hex>". Only
 * the two application traffic secrets are kept, decoded straight into the
 * connection (OpenSSL cleanses its line after the call). Called by OpenSSL
 * where it installs the key: the record counts of that direction restart.
 */
static void keylog_cb(const SSL *ssl, const char *line)
{
	static const char cl[] = "CLIENT_TRAFFIC_SECRET_0 ", sl[] = "SERVER_TRAFFIC_SECRET_0 ";
	struct wp_tls_conn *c = SSL_get_app_data(ssl);
	uint8_t cr[SSL3_RANDOM_SIZE], *dst;
	bool client_secret;
	const char *p, *sp;
	size_t n;

	if (c == NULL || c->state != ST_HANDSHAKE)
		return;
	if (strncmp(line, cl, sizeof(cl) - 1) == 0)
		client_secret = true;
	else if (strncmp(line, sl, sizeof(sl) - 1) == 0)
		client_secret = false;
	else
		return;
	p = line + sizeof(cl) - 1;
	sp = strchr(p, ' ');
	if (sp == NULL || (size_t)(sp - p) != 2 * SSL3_RANDOM_SIZE ||
	    SSL_get_client_random(ssl, cr, sizeof(cr)) != sizeof(cr) ||
	    !hex_eq_or_decode(p, 2 * SSL3_RANDOM_SIZE, NULL, cr))
		return; /* not this connection's: no switch */
	p = sp + 1;
	n = strlen(p);
	if (n == 0 || n % 2 != 0 || n / 2 > WP_TLS_REC_SECRET_MAX)
		return;
	if (c->keys == NULL && (c->keys = OPENSSL_zalloc(sizeof(*c->keys))) == NULL)
		return;
	dst = client_secret ? c->keys->csecret : c->keys->ssecret;
	if (!hex_eq_or_decode(p, n, dst, NULL)) {
		OPENSSL_cleanse(dst, WP_TLS_REC_SECRET_MAX);
		return;
	}
	if (client_secret) {
		c->keys->clen = (uint8_t)(n / 2);
		c->keys->crecs = 0;
	} else {
		c->keys->slen = (uint8_t)(n / 2);
		c->keys->srecs = 0;
	}
}

/* Counts the records OpenSSL writes and reads, by direction. */
static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
                   SSL *ssl, void *arg)
{
	struct wp_tls_conn *c = SSL_get_app_data(ssl);
	bool client_dir;

	(void)version;
	(void)buf;
	(void)len;
	(void)arg;
	if (c == NULL || c->keys == NULL || content_type != SSL3_RT_HEADER)
		return;
	/* A client writes with the client secret, a server reads with it. */
	client_dir = (c->role == WP_TLS_CLIENT) == (write_p != 0);
	if (client_dir)
		c->keys->crecs++;
	else
		c->keys->srecs++;
}

static void keys_free(struct wp_tls_conn *c)
{
	OPENSSL_clear_free(c->keys, sizeof(*c->keys));
	c->keys = NULL;
}

/* ---- contexts ---- */

static int stamp_file(const char *path, struct file_stamp *st)
{
	struct stat sb;

	if (stat(path, &sb) != 0)
		return -errno;
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
	return 0;
}

/*
 * When cert.pem holds the leaf alone, OpenSSL completes the chain it sends
 * from the trust store, and it does so in every handshake: a whole
 * X509_verify_cert of our own certificate (an ECDSA verification, ~15% of
 * a server's full handshake). Built here once instead, with the same
 * outcome: the chain up to and including the root, or as far as it goes
 * when it does not verify (the peer then refuses it, as before). A
 * cert.pem that carries its chain is sent as it is, as before.
 */
static bool build_own_chain(SSL_CTX *s)
{
	STACK_OF(X509) *chain = NULL;

	if (!SSL_CTX_get0_chain_certs(s, &chain))
		return false;
	if (chain != NULL)
		return true;
	return SSL_CTX_build_cert_chain(s, SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
	                                           SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) > 0;
}

/* cfg.suites13 as OpenSSL's -ciphersuites text, in order. */
static void suites13_text(const struct wp_tls_config *cfg, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < cfg->n_suites13; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ":" : "",
		                      wp_tls13_suite_name(cfg->suites13[i]));
}

static SSL_CTX *build_ssl_ctx(const struct wp_tls_ctx *t, bool server, int *err)
{
	static const unsigned char alpn[] = "\x02h2";
	static const unsigned char sid_ctx[] = "waypointd-hbone";
	SSL_CTX *s = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	char suites[128];

	suites13_text(&t->cfg, suites, sizeof(suites));
	*err = -ENOMEM;
	if (s == NULL)
		return NULL;
	*err = -EINVAL;
	if (!SSL_CTX_set_min_proto_version(s,
	                                   t->cfg.allow_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(s, suites) || !SSL_CTX_set_cipher_list(s, CIPHERS12))
		goto fail;
	SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_read_ahead(s, 0);
	SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
	                               (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	/* The files were stat'ed: a failure now means bad content. */
	if (SSL_CTX_use_certificate_chain_file(s, t->cfg.cert_file) != 1)
		goto fail;
	if (SSL_CTX_use_PrivateKey_file(s, t->cfg.key_file, SSL_FILETYPE_PEM) != 1)
		goto fail;
	if (SSL_CTX_check_private_key(s) != 1)
		goto fail;
	if (SSL_CTX_load_verify_locations(s, t->cfg.ca_file, NULL) != 1)
		goto fail;
	if (!build_own_chain(s))
		goto fail;
	SSL_CTX_set_verify(s, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
	                   verify_cb);
	SSL_CTX_set_verify_depth(s, 4);
	SSL_CTX_set_cert_verify_callback(s, wp_tls_chain_verify, NULL);
	SSL_CTX_set_keylog_callback(s, keylog_cb);
	SSL_CTX_set_msg_callback(s, msg_cb);
	if (server) {
		SSL_CTX_set_client_hello_cb(s, client_hello_cb, NULL);
		SSL_CTX_set_alpn_select_cb(s, alpn_select_cb, NULL);
		if (!SSL_CTX_set_session_id_context(s, sid_ctx, sizeof(sid_ctx) - 1))
			goto fail;
		/* Stateless tickets only: no server-side session cache to grow. */
		SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
		if (t->tickets == NULL) {
			SSL_CTX_set_options(s, SSL_OP_NO_TICKET);
			SSL_CTX_set_num_tickets(s, 0);
		} else {
			SSL_CTX_set_num_tickets(s, 1);
			if (wp_tls_tickets_attach(t->tickets, s) != 0) {
				*err = -ENOMEM;
				goto fail;
			}
		}
	} else {
		if (SSL_CTX_set_alpn_protos(s, alpn, sizeof(alpn) - 1) != 0)
			goto fail;
		SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
	}
	*err = 0;
	return s;
fail:
	SSL_CTX_free(s);
	ERR_clear_error();
	return NULL;
}

static char *dupstr(struct wp_tls_ctx *t, int i, const char *s)
{
	if (s == NULL)
		return NULL;
	t->strs[i] = strdup(s);
	return t->strs[i];
}

static atomic_uint_fast64_t next_ctx_id;

/* A context for cfg; a reload passes the ticket keys of the context it
 * replaces, so the tickets clients hold stay good. */
static struct wp_tls_ctx *ctx_build(const struct wp_tls_config *cfg, struct wp_tls_tickets *keys,
                                    int *errp)
{
	struct wp_tls_ctx *t;
	int err = -EINVAL;

	if (cfg == NULL || cfg->cert_file == NULL || cfg->key_file == NULL ||
	    cfg->ca_file == NULL || cfg->trust_domain == NULL || cfg->trust_domain[0] == '\0' ||
	    cfg->n_suites13 > WP_TLS13_SUITES_MAX)
		goto fail0;
	for (unsigned i = 0; i < cfg->n_suites13; i++)
		if (wp_tls13_suite_name(cfg->suites13[i]) == NULL)
			goto fail0;
	err = -ENOMEM;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto fail0;
	atomic_init(&t->refs, 1);
	t->id = atomic_fetch_add(&next_ctx_id, 1) + 1;
	t->cfg = *cfg;
	t->cfg.cert_file = dupstr(t, 0, cfg->cert_file);
	t->cfg.key_file = dupstr(t, 1, cfg->key_file);
	t->cfg.ca_file = dupstr(t, 2, cfg->ca_file);
	t->cfg.trust_domain = dupstr(t, 3, cfg->trust_domain);
	if (!t->cfg.cert_file || !t->cfg.key_file || !t->cfg.ca_file || !t->cfg.trust_domain)
		goto fail1;
	for (int i = 0; i < WP_TLS_MAX_ALIASES && cfg->aliases[i] != NULL; i++)
		if ((t->cfg.aliases[i] = dupstr(t, 4 + i, cfg->aliases[i])) == NULL)
			goto fail1;
	t->bio_cap = cfg->bio_cap ? cfg->bio_cap : DEFAULT_BIO_CAP;
	if (cfg->n_suites13 == 0)
		t->cfg.n_suites13 = (unsigned)wp_tls13_suites_parse(WP_TLS13_SUITES_DEFAULT,
		                                                    t->cfg.suites13, NULL, 0);
	if (!cfg->no_session_tickets) {
		if (keys != NULL)
			wp_tls_tickets_ref(keys);
		else if ((keys = wp_tls_tickets_new(cfg->ticket_period_s)) == NULL)
			goto fail1;
		t->tickets = keys;
	}
	/* Before any certificate is parsed, ours included. */
	(void)wp_tls_ec_decode_install();
	/* Stamp first: a file replaced while we read it shows up next time. */
	if ((err = stamp_file(t->cfg.cert_file, &t->stamp[F_CERT])) ||
	    (err = stamp_file(t->cfg.key_file, &t->stamp[F_KEY])) ||
	    (err = stamp_file(t->cfg.ca_file, &t->stamp[F_CA])))
		goto fail1;
	t->server = build_ssl_ctx(t, true, &err);
	if (t->server == NULL)
		goto fail1;
	t->client = build_ssl_ctx(t, false, &err);
	if (t->client == NULL)
		goto fail1;
	if (!cfg->openssl_handshake && (err = wp_tls_hs13_ctx_init(t)) != 0)
		goto fail1;
	return t;
fail1:
	wp_tls_ctx_unref(t);
fail0:
	if (errp != NULL)
		*errp = err;
	return NULL;
}

struct wp_tls_ctx *wp_tls_ctx_new(const struct wp_tls_config *cfg, int *errp)
{
	return ctx_build(cfg, NULL, errp);
}

void wp_tls_ctx_ref(struct wp_tls_ctx *t)
{
	atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void wp_tls_ctx_unref(struct wp_tls_ctx *t)
{
	if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
		return;
	wp_tls_hs13_ctx_fini(t);
	SSL_CTX_free(t->server);
	SSL_CTX_free(t->client);
	wp_tls_tickets_unref(t->tickets);
	for (size_t i = 0; i < WP_ARRAY_SIZE(t->strs); i++)
		free(t->strs[i]);
	free(t);
}

bool wp_tls_ctx_files_changed(const struct wp_tls_ctx *t)
{
	const char *files[F_MAX] = {t->cfg.cert_file, t->cfg.key_file, t->cfg.ca_file};

	for (int i = 0; i < F_MAX; i++) {
		struct file_stamp now = {0};
		const struct file_stamp *old = &t->stamp[i];
		if (stamp_file(files[i], &now) != 0)
			return true;
		if (now.dev != old->dev || now.ino != old->ino || now.size != old->size ||
		    now.mtime.tv_sec != old->mtime.tv_sec ||
		    now.mtime.tv_nsec != old->mtime.tv_nsec)
			return true;
	}
	return false;
}

int wp_tls_store_init(struct wp_tls_store *st, const struct wp_tls_config *cfg)
{
	int err = 0;
	struct wp_tls_ctx *t = wp_tls_ctx_new(cfg, &err);

	if (t == NULL)
		return err;
	atomic_store(&st->cur, t);
	return 0;
}

struct wp_tls_ctx *wp_tls_store_get(struct wp_tls_store *st)
{
	return atomic_load_explicit(&st->cur, memory_order_acquire);
}

int wp_tls_store_reload(struct wp_tls_store *st, bool force, struct wp_tls_ctx **old,
                        uint64_t *ctrs)
{
	struct wp_tls_ctx *cur = atomic_load(&st->cur), *n;
	int err = 0;

	*old = NULL;
	if (!force && !wp_tls_ctx_files_changed(cur))
		return 0;
	n = ctx_build(&cur->cfg, cur->tickets, &err);
	if (n == NULL) {
		ctr_inc(ctrs, WP_CTR_TLS_RELOAD_FAILED);
		return err;
	}
	atomic_store_explicit(&st->cur, n, memory_order_release);
	*old = cur;
	ctr_inc(ctrs, WP_CTR_TLS_RELOADED);
	return 1;
}

void wp_tls_store_fini(struct wp_tls_store *st)
{
	wp_tls_ctx_unref(atomic_exchange(&st->cur, NULL));
}

/* ---- connections ---- */

/* Gives the SSL its pair of memory BIOs unless it has them (they are
 * released by wp_tls_conn_trim while the connection is idle). */
static int bios(struct wp_tls_conn *c)
{
	BIO *r, *w;

	if (c->rbio != NULL)
		return 0;
	r = BIO_new(BIO_s_mem());
	w = BIO_new(BIO_s_mem());
	if (r == NULL || w == NULL) {
		BIO_free(r);
		BIO_free(w);
		ERR_clear_error();
		ctr_inc(c->ctrs, WP_CTR_TLS_NOMEM);
		return -ENOMEM;
	}
	/* Empty means "retry later", not EOF (until TCP delivered FIN). */
	BIO_set_mem_eof_return(r, c->eof_fed ? 0 : -1);
	BIO_set_mem_eof_return(w, -1);
	SSL_set_bio(c->ssl, r, w);
	c->rbio = r;
	c->wbio = w;
	return 0;
}

/* Gives c its SSL object for the handshake. 0 or -ENOMEM. */
static int ssl_start(struct wp_tls_conn *c)
{
	bool server = c->role == WP_TLS_SERVER;

	c->ssl = SSL_new(server ? c->ctx->server : c->ctx->client);
	if (c->ssl == NULL || bios(c) != 0) {
		SSL_free(c->ssl);
		c->ssl = NULL;
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_set_app_data(c->ssl, c);
	if (server)
		SSL_set_accept_state(c->ssl);
	else
		SSL_set_connect_state(c->ssl); /* no SNI, like ztunnel */
	return 0;
}

struct wp_tls_conn *wp_tls_conn_new(struct wp_tls_ctx *t, enum wp_tls_role role, uint64_t *ctrs)
{
	struct wp_tls_conn *c = OPENSSL_zalloc(sizeof(*c));

	if (c == NULL)
		return NULL;
	c->ctx = t;
	c->ctrs = ctrs;
	c->role = (uint8_t)role;
	c->state = ST_HANDSHAKE;
	if (role == WP_TLS_SERVER && t->own.msg != NULL)
		c->hs = wp_tls_hs13_new();
	if (c->hs == NULL && ssl_start(c) != 0) {
		OPENSSL_free(c);
		return NULL;
	}
	wp_tls_ctx_ref(t);
	return c;
}

/* Our handshake left this ClientHello to OpenSSL: an SSL object gets
 * every byte received so far. 0 or -ENOMEM. */
static int hand_to_openssl(struct wp_tls_conn *c)
{
	const uint8_t *p;
	size_t n = wp_tls_hs13_received(c->hs, &p);

	if (ssl_start(c) != 0 || (n > 0 && BIO_write(c->rbio, p, (int)n) != (int)n))
		return -ENOMEM;
	wp_tls_hs13_free(c->hs);
	c->hs = NULL;
	ctr_inc(c->ctrs, WP_CTR_TLS_HS_TO_OPENSSL);
	return 0;
}

void wp_tls_conn_free(struct wp_tls_conn *c)
{
	if (c == NULL)
		return;
	wp_tls_hs13_free(c->hs);
	SSL_free(c->ssl);
	wp_tls_rec_free(c->rec);
	keys_free(c);
	wp_tls_ctx_unref(c->ctx);
	OPENSSL_free(c->peer_id);
	OPENSSL_free(c->expected);
	OPENSSL_free(c);
}

int wp_tls_conn_set_expected_peer(struct wp_tls_conn *c, const char *id)
{
	const char *td, *ns, *sa;
	size_t a, b, d, len = strlen(id);

	if (len >= WP_TLS_ID_MAX)
		return -ENAMETOOLONG;
	if (c->role != WP_TLS_CLIENT || wp_tls_spiffe_parse(id, len, &td, &a, &ns, &b, &sa, &d))
		return -EINVAL;
	OPENSSL_free(c->expected);
	c->expected = OPENSSL_strdup(id);
	return c->expected != NULL ? 0 : -ENOMEM;
}

static void set_failed(struct wp_tls_conn *c, enum wp_tls_fail f)
{
	bool after_hs = c->state != ST_HANDSHAKE;

	if (c->state == ST_FAILED)
		return;
	if (c->fail == WP_TLS_FAIL_NONE)
		c->fail = (uint8_t)f;
	c->state = ST_FAILED;
	/* After the handshake only a peer's alert (e.g. a TLS 1.3 server that
	 * refused our certificate after we finished) keeps its reason; the
	 * rest are record-layer errors. */
	if (after_hs && c->fail != WP_TLS_FAIL_PEER_ALERT)
		ctr_inc(c->ctrs, WP_CTR_TLS_RECORD_ERROR);
	else
		ctr_inc(c->ctrs, fail_ctr[c->fail]);
}

/* Maps the error queue after a failed handshake step to a reason. A reason
 * a callback already recorded wins. */
static enum wp_tls_fail classify(struct wp_tls_conn *c)
{
	unsigned long e;
	enum wp_tls_fail f = WP_TLS_FAIL_OTHER;

	while ((e = ERR_get_error()) != 0) {
		if (ERR_GET_LIB(e) != ERR_LIB_SSL)
			continue;
		switch (ERR_GET_REASON(e)) {
		case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
			f = WP_TLS_FAIL_NO_PEER_CERT;
			break;
		case SSL_R_UNSUPPORTED_PROTOCOL:
		case SSL_R_WRONG_VERSION_NUMBER:
		case SSL_R_NO_PROTOCOLS_AVAILABLE:
		case SSL_R_VERSION_TOO_LOW:
		case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
			f = WP_TLS_FAIL_PROTOCOL_VERSION;
			break;
		case SSL_R_NO_APPLICATION_PROTOCOL:
		case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
			f = WP_TLS_FAIL_NO_ALPN_H2;
			break;
		case SSL_R_CERTIFICATE_VERIFY_FAILED:
			f = WP_TLS_FAIL_BAD_CHAIN;
			break;
		default:
			if (ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET && f == WP_TLS_FAIL_OTHER)
				f = WP_TLS_FAIL_PEER_ALERT;
			break;
		}
	}
	return c->fail != WP_TLS_FAIL_NONE ? (enum wp_tls_fail)c->fail : f;
}

/*
 * Once the handshake verified the chain and we copied the peer's identity,
 * the certificates the peer sent beyond its leaf (intermediates; OpenSSL
 * and Python clients also send the root) are not needed again: nothing
 * here reads SSL_get_peer_cert_chain() or the verified chain, OpenSSL 3.0
 * reads them only while verifying, and a session (ticket) encodes the leaf
 * alone. Emptying both stacks frees those certificates (~3 KiB each with
 * their parsed keys). The leaf stays (the session owns it).
 */
static void drop_peer_chain(struct wp_tls_conn *c)
{
	STACK_OF(X509) *sk = SSL_get_peer_cert_chain(c->ssl);

	while (sk != NULL && sk_X509_num(sk) > 0)
		X509_free(sk_X509_pop(sk));
	sk = SSL_get0_verified_chain(c->ssl);
	while (sk != NULL && sk_X509_num(sk) > 0)
		X509_free(sk_X509_pop(sk));
}

/* Checks done once the handshake completed (also for resumed sessions,
 * which skip the verify callback). */
static enum wp_tls_fail post_handshake(struct wp_tls_conn *c)
{
	const unsigned char *proto = NULL;
	unsigned int plen = 0;

	SSL_get0_alpn_selected(c->ssl, &proto, &plen);
	if (plen != 2 || memcmp(proto, "h2", 2) != 0)
		return WP_TLS_FAIL_NO_ALPN_H2;
	if (SSL_get_verify_result(c->ssl) != X509_V_OK)
		return WP_TLS_FAIL_BAD_CHAIN;
	if (c->peer_id == NULL)
		return wp_tls_check_identity(c, SSL_get0_peer_certificate(c->ssl));
	return WP_TLS_FAIL_NONE;
}

/*
 * Right after a successful handshake: hands a TLS 1.3 connection to
 * record.c and frees the SSL (see the top of this file). On any doubt the
 * connection stays on OpenSSL, counted.
 */
static void switch_to_rec(struct wp_tls_conn *c)
{
	struct hs_keys *k = c->keys;
	struct wp_tls_rec_params rp = {0};
	struct wp_tls_rec *rec = NULL;
	const SSL_CIPHER *ciph = SSL_get_current_cipher(c->ssl);
	bool client = c->role == WP_TLS_CLIENT;
	char *in = NULL, *out = NULL;
	long in_len = 0, out_len = 0;

	if (k == NULL || SSL_version(c->ssl) != TLS1_3_VERSION || ciph == NULL || k->clen == 0 ||
	    k->clen != k->slen || SSL_has_pending(c->ssl) ||
	    (client ? k->srecs : k->crecs) != 0 /* records read with the new key */)
		goto keep;
	rp.suite = SSL_CIPHER_get_protocol_id(ciph);
	rp.client = client;
	rp.wsecret = client ? k->csecret : k->ssecret;
	rp.rsecret = client ? k->ssecret : k->csecret;
	rp.secret_len = k->clen;
	rp.wseq = client ? k->crecs : k->srecs;
	rp.rseq = 0;
	rp.cap = c->ctx->bio_cap;
	rp.ctrs = c->ctrs;
	if (!wp_tls_rec_suite_ok(rp.suite, rp.secret_len))
		goto keep;
	rec = wp_tls_rec_new(&rp);
	if (rec == NULL)
		goto keep;
	if (c->rbio != NULL) {
		in_len = BIO_get_mem_data(c->rbio, &in);
		out_len = BIO_get_mem_data(c->wbio, &out);
	}
	if (in_len < 0 || out_len < 0 ||
	    wp_tls_rec_preload(rec, in, (size_t)in_len, out, (size_t)out_len) != 0)
		goto keep;
	if (c->eof_fed)
		wp_tls_rec_feed_eof(rec);
	c->resumed = SSL_session_reused(c->ssl) ? 1 : 0;
	SSL_free(c->ssl); /* and both BIOs */
	c->ssl = NULL;
	c->rbio = c->wbio = NULL;
	c->rec = rec;
	keys_free(c);
	ctr_inc(c->ctrs, WP_CTR_TLS_REC_SWITCHED);
	return;
keep:
	ERR_clear_error();
	wp_tls_rec_free(rec);
	keys_free(c);
	SSL_set_msg_callback(c->ssl, NULL);
	ctr_inc(c->ctrs, WP_CTR_TLS_REC_KEPT_OPENSSL);
}

int wp_tls_conn_handshake(struct wp_tls_conn *c)
{
	int r;
	enum wp_tls_fail f;

	if (c->state == ST_ESTABLISHED || c->state == ST_EOF)
		return 1;
	if (c->state == ST_FAILED)
		return -EPROTO;
	if (c->hs != NULL) {
		r = wp_tls_hs13_step(c);
		if (r == 1) {
			c->state = ST_ESTABLISHED;
			ctr_inc(c->ctrs, c->resumed ? WP_CTR_TLS_HS_RESUMED : WP_CTR_TLS_HS_DONE);
			ctr_inc(c->ctrs, WP_CTR_TLS_HS_OWN);
			wp_tls_hs13_free(c->hs);
			c->hs = NULL;
			return 1;
		}
		if (r == -EPROTO) {
			set_failed(c, c->fail != WP_TLS_FAIL_NONE ? (enum wp_tls_fail)c->fail
			                                          : WP_TLS_FAIL_OTHER);
			return -EPROTO;
		}
		if (r != WP_TLS_HS13_OPENSSL)
			return 0;
		if (hand_to_openssl(c) != 0) {
			ctr_inc(c->ctrs, WP_CTR_TLS_NOMEM);
			set_failed(c, WP_TLS_FAIL_OTHER);
			return -EPROTO;
		}
	}
	if (bios(c) != 0)
		return 0; /* counted; nothing can move until memory is back */
	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		f = post_handshake(c);
		if (f != WP_TLS_FAIL_NONE) {
			c->fail = (uint8_t)f;
			set_failed(c, f);
			/* Tell the peer why; for TLS 1.3 the handshake is already
			 * complete on its side. */
			SSL_shutdown(c->ssl);
			return -EPROTO;
		}
		c->state = ST_ESTABLISHED;
		drop_peer_chain(c);
		ctr_inc(c->ctrs,
		        SSL_session_reused(c->ssl) ? WP_CTR_TLS_HS_RESUMED : WP_CTR_TLS_HS_DONE);
		switch_to_rec(c);
		return 1;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return 0;
	default:
		set_failed(c, classify(c));
		ERR_clear_error();
		return -EPROTO;
	}
}

ssize_t wp_tls_conn_feed(struct wp_tls_conn *c, const void *buf, size_t len)
{
	size_t pend;
	int n;

	if (c->state == ST_FAILED)
		return -EPIPE;
	if (len == 0)
		return 0;
	if (c->rec != NULL)
		return wp_tls_rec_feed(c->rec, buf, len);
	if (c->hs != NULL)
		return wp_tls_hs13_feed(c, buf, len);
	if (bios(c) != 0)
		return 0; /* stays in TCP; counted */
	pend = BIO_ctrl_pending(c->rbio);
	if (pend >= c->ctx->bio_cap || len == 0)
		return 0;
	len = WP_MIN(len, c->ctx->bio_cap - pend);
	n = BIO_write(c->rbio, buf, (int)len);
	return n > 0 ? n : -ENOMEM;
}

/* The record layer's answer to a read: a negative one changes our state. */
static ssize_t rec_ret(struct wp_tls_conn *c, ssize_t n)
{
	switch (n) {
	case -EPIPE:
		c->state = ST_EOF;
		break;
	case -ECONNRESET:
		c->state = ST_FAILED;
		ctr_inc(c->ctrs, WP_CTR_TLS_UNCLEAN_EOF);
		break;
	case -EPROTO:
		set_failed(c, wp_tls_rec_fail(c->rec));
		break;
	default:
		break;
	}
	return n;
}

/* OpenSSL's SSL_read (or SSL_peek), answered as wp_tls_conn_read. */
static ssize_t ssl_read(struct wp_tls_conn *c, void *buf, size_t len, bool peek)
{
	int n, len_i = (int)WP_MIN(len, (size_t)INT_MAX);

	if (bios(c) != 0)
		return WP_AGAIN;
	ERR_clear_error();
	n = peek ? SSL_peek(c->ssl, buf, len_i) : SSL_read(c->ssl, buf, len_i);
	if (n > 0)
		return n;
	switch (SSL_get_error(c->ssl, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return WP_AGAIN;
	case SSL_ERROR_ZERO_RETURN:
		c->state = ST_EOF;
		return -EPIPE;
	case SSL_ERROR_SSL:
		if (ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			ERR_clear_error();
			c->state = ST_FAILED;
			ctr_inc(c->ctrs, WP_CTR_TLS_UNCLEAN_EOF);
			return -ECONNRESET;
		}
		/* fallthrough */
	default:
		set_failed(c, classify(c));
		ERR_clear_error();
		return -EPROTO;
	}
}

/* Before a read or a write: the handshake done (1), not yet (0), or the
 * connection failed (-EPROTO). */
static ssize_t usable(struct wp_tls_conn *c)
{
	if (c->state == ST_HANDSHAKE) {
		int r = wp_tls_conn_handshake(c);

		if (r <= 0)
			return r;
	}
	return c->state == ST_FAILED ? -EPROTO : 1;
}

/* What a read answers before any plaintext: 1 to go on. */
static ssize_t read_state(struct wp_tls_conn *c)
{
	ssize_t r = usable(c);

	if (r <= 0)
		return r;
	return c->state == ST_EOF ? -EPIPE : 1;
}

ssize_t wp_tls_conn_read(struct wp_tls_conn *c, void *buf, size_t len)
{
	ssize_t r = read_state(c);

	if (r <= 0)
		return r;
	if (c->rec != NULL)
		return rec_ret(c, wp_tls_rec_read(c->rec, buf, len));
	return ssl_read(c, buf, len, false);
}

ssize_t wp_tls_conn_read_view(struct wp_tls_conn *c, const uint8_t **p, void *scratch, size_t len)
{
	ssize_t r = read_state(c);

	if (r <= 0)
		return r;
	if (c->rec != NULL)
		return rec_ret(c, wp_tls_rec_view(c->rec, p));
	*p = scratch;
	return ssl_read(c, scratch, len, true);
}

void wp_tls_conn_read_done(struct wp_tls_conn *c, size_t n)
{
	uint8_t sink[4096];

	if (c->rec != NULL) {
		wp_tls_rec_consume(c->rec, n);
		return;
	}
	/* OpenSSL's record layer: the bytes peeked are read now, once more */
	while (n > 0 && c->state == ST_ESTABLISHED) {
		ssize_t k = ssl_read(c, sink, WP_MIN(n, sizeof(sink)), false);

		if (k <= 0)
			break;
		n -= (size_t)k;
	}
	OPENSSL_cleanse(sink, sizeof(sink));
}

/* TCP saw FIN: what is buffered can still be read, then reads end. */
void wp_tls_conn_feed_eof(struct wp_tls_conn *c)
{
	c->eof_fed = 1;
	if (c->hs != NULL)
		wp_tls_hs13_feed_eof(c->hs);
	if (c->rec != NULL)
		wp_tls_rec_feed_eof(c->rec);
	if (c->rbio != NULL)
		BIO_set_mem_eof_return(c->rbio, 0);
}

ssize_t wp_tls_conn_write(struct wp_tls_conn *c, const void *buf, size_t len)
{
	ssize_t u = usable(c);
	size_t pend;
	int r;

	if (u <= 0)
		return u;
	if (c->shut_sent)
		return -EPIPE;
	if (c->rec != NULL) {
		ssize_t n = wp_tls_rec_write(c->rec, buf, len);

		if (n == -EPROTO)
			set_failed(c, wp_tls_rec_fail(c->rec));
		return n;
	}
	if (bios(c) != 0)
		return WP_AGAIN;
	pend = BIO_ctrl_pending(c->wbio);
	if (pend >= c->ctx->bio_cap || len == 0)
		return WP_AGAIN;
	len = WP_MIN(len, c->ctx->bio_cap - pend);
	ERR_clear_error();
	r = SSL_write(c->ssl, buf, (int)WP_MIN(len, (size_t)INT_MAX));
	if (r > 0)
		return r;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return WP_AGAIN;
	default:
		set_failed(c, classify(c));
		ERR_clear_error();
		return -EPROTO;
	}
}

ssize_t wp_tls_conn_write_into(struct wp_tls_conn *c, const void *buf, size_t len,
                               const struct iovec out[2], size_t min_cut, size_t *used)
{
	ssize_t u = usable(c), n;

	*used = 0;
	if (u <= 0)
		return u;
	if (c->shut_sent)
		return -EPIPE;
	if (c->rec == NULL)
		return 0;
	n = wp_tls_rec_write_into(c->rec, buf, len, out, min_cut, used);
	if (n == -EPROTO)
		set_failed(c, wp_tls_rec_fail(c->rec));
	return n;
}

size_t wp_tls_conn_pending(const struct wp_tls_conn *c)
{
	const uint8_t *p;

	if (c->rec != NULL)
		return wp_tls_rec_pending(c->rec);
	if (c->hs != NULL)
		return wp_tls_hs13_peek(c->hs, &p);
	return c->wbio != NULL ? BIO_ctrl_pending(c->wbio) : 0;
}

bool wp_tls_conn_partial(const struct wp_tls_conn *c)
{
	if (c->rec != NULL)
		return wp_tls_rec_partial(c->rec) > 0;
	return c->rbio != NULL && BIO_ctrl_pending(c->rbio) > 0;
}

size_t wp_tls_conn_take(struct wp_tls_conn *c, void *buf, size_t len)
{
	int n;

	if (c->rec != NULL)
		return wp_tls_rec_take(c->rec, buf, len);
	if (c->hs != NULL) {
		const uint8_t *p;
		size_t k = WP_MIN(len, wp_tls_hs13_peek(c->hs, &p));

		memcpy(buf, p, k);
		wp_tls_hs13_advance(c->hs, k);
		return k;
	}
	if (c->wbio == NULL)
		return 0;
	n = BIO_read(c->wbio, buf, (int)WP_MIN(len, (size_t)INT_MAX));
	return n > 0 ? (size_t)n : 0;
}

size_t wp_tls_conn_peek(struct wp_tls_conn *c, const uint8_t **p)
{
	char *d = NULL;
	long n;

	if (c->rec != NULL)
		return wp_tls_rec_peek(c->rec, p);
	if (c->hs != NULL)
		return wp_tls_hs13_peek(c->hs, p);
	if (c->wbio == NULL)
		return 0;
	n = BIO_get_mem_data(c->wbio, &d);
	*p = (const uint8_t *)d;
	return n > 0 ? (size_t)n : 0;
}

void wp_tls_conn_advance(struct wp_tls_conn *c, size_t n)
{
	uint8_t sink[256];

	if (c->rec != NULL) {
		wp_tls_rec_advance(c->rec, n);
		return;
	}
	if (c->hs != NULL) {
		wp_tls_hs13_advance(c->hs, n);
		return;
	}
	/* A memory BIO cannot skip: read the bytes away (handshake flights
	 * only, a few KB; after it the record layer has the output) */
	while (n > 0 && c->wbio != NULL) {
		int k = BIO_read(c->wbio, sink, (int)WP_MIN(n, sizeof(sink)));

		if (k <= 0)
			break;
		n -= (size_t)k;
	}
}

int wp_tls_conn_shutdown(struct wp_tls_conn *c)
{
	if (c->state == ST_HANDSHAKE || c->state == ST_FAILED)
		return -EPROTO;
	if (c->shut_sent)
		return 0;
	if (c->rec != NULL) {
		int r = wp_tls_rec_shutdown(c->rec);

		if (r == 0)
			c->shut_sent = 1;
		else if (r == -EPROTO)
			set_failed(c, wp_tls_rec_fail(c->rec));
		return r;
	}
	if (bios(c) != 0)
		return -ENOMEM;
	ERR_clear_error();
	c->shut_sent = 1;
	if (SSL_shutdown(c->ssl) < 0) {
		ERR_clear_error();
		return -EPROTO;
	}
	return 0;
}

void wp_tls_conn_trim(struct wp_tls_conn *c)
{
	if (c->rec != NULL) {
		wp_tls_rec_trim(c->rec);
		return;
	}
	if (c->rbio == NULL || c->state == ST_HANDSHAKE)
		return;
	if (BIO_ctrl_pending(c->rbio) != 0 || BIO_ctrl_pending(c->wbio) != 0)
		return;
	/* Record buffers too, should RELEASE_BUFFERS have kept any (it
	 * refuses while one holds a partial record; that state stays in the
	 * SSL, not in the BIOs). */
	(void)SSL_free_buffers(c->ssl);
	SSL_set_bio(c->ssl, NULL, NULL); /* frees both */
	c->rbio = NULL;
	c->wbio = NULL;
}

bool wp_tls_conn_established(const struct wp_tls_conn *c)
{
	return c->state == ST_ESTABLISHED || c->state == ST_EOF;
}

bool wp_tls_conn_failed(const struct wp_tls_conn *c)
{
	return c->state == ST_FAILED;
}

bool wp_tls_conn_resumed(const struct wp_tls_conn *c)
{
	if (!wp_tls_conn_established(c))
		return false;
	return c->rec != NULL ? c->resumed : SSL_session_reused(c->ssl);
}

enum wp_tls_fail wp_tls_conn_fail_reason(const struct wp_tls_conn *c)
{
	return (enum wp_tls_fail)c->fail;
}

const char *wp_tls_conn_peer_id(const struct wp_tls_conn *c)
{
	return wp_tls_conn_established(c) ? c->peer_id : NULL;
}

int wp_tls_conn_peer_parts(const struct wp_tls_conn *c, const char **td, size_t *td_len,
                           const char **ns, size_t *ns_len, const char **sa, size_t *sa_len)
{
	const char *id = wp_tls_conn_peer_id(c);

	if (id == NULL)
		return -ENOENT;
	*td = id + sizeof("spiffe://") - 1;
	*td_len = c->td_len;
	*ns = id + c->ns_off;
	*ns_len = c->ns_len;
	*sa = id + c->sa_off;
	*sa_len = c->sa_len;
	return 0;
}

int wp_tls_conn_version(const struct wp_tls_conn *c)
{
	if (!wp_tls_conn_established(c))
		return 0;
	return c->rec != NULL ? TLS1_3_VERSION : SSL_version(c->ssl);
}
