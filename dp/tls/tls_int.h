/*
 * The mTLS module's internals (tls.c), shared with its white-box tests and
 * fuzzers only: the context and connection objects, and the SPIFFE
 * identity check the verify callback runs. Not part of the module's
 * interface (tls.h).
 */
#ifndef WP_DP_TLS_TLS_INT_H
#define WP_DP_TLS_TLS_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "hs13.h"
#include "record.h"
#include "tls.h"
#include "wp/counters.h"

enum { F_CERT, F_KEY, F_CA, F_MAX };

struct file_stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct wp_tls_ctx {
	atomic_int refs;
	uint64_t id; /* unique in the process: names its trust store (chain_memo.c) */
	SSL_CTX *server;
	SSL_CTX *client;
	struct wp_tls_config cfg; /* strings below, owned */
	struct wp_tls_tickets
	        *tickets; /* server ticket keys (NULL: no tickets); shared with reloads */
	char *strs[F_MAX + 1 + WP_TLS_MAX_ALIASES];
	struct file_stamp stamp[F_MAX];
	size_t bio_cap;
	struct wp_tls_hs13_cert own; /* for our own server handshake (hs13.c) */
};

enum conn_state {
	ST_HANDSHAKE,
	ST_ESTABLISHED,
	ST_EOF, /* close_notify received */
	ST_FAILED,
};

/* What the keylog and message callbacks learn during a handshake, until
 * the switch to record.c (then cleansed and freed). */
struct hs_keys {
	uint8_t csecret[WP_TLS_REC_SECRET_MAX]; /* CLIENT_TRAFFIC_SECRET_0 */
	uint8_t ssecret[WP_TLS_REC_SECRET_MAX]; /* SERVER_TRAFFIC_SECRET_0 */
	uint8_t clen, slen;                     /* 0 until seen */
	uint32_t crecs, srecs;                  /* records written (client: c, server: s) or
	                                         * read since the secret's keylog call */
};

struct wp_tls_conn {
	struct wp_tls_hs13 *hs; /* server: our handshake, until done or handed to OpenSSL */
	SSL *ssl;               /* NULL once record.c took over, and during our handshake */
	struct wp_tls_rec *rec; /* after the switch, else NULL */
	struct hs_keys *keys;   /* OPENSSL_malloc'ed during the handshake */
	BIO *rbio;              /* owned by ssl; NULL while trimmed */
	BIO *wbio;              /* owned by ssl; NULL while trimmed */
	struct wp_tls_ctx *ctx; /* one reference */
	uint64_t *ctrs;
	char *peer_id;  /* OPENSSL_malloc'ed */
	char *expected; /* client: expected server identity, or NULL */
	uint16_t td_len, ns_off, ns_len, sa_off, sa_len;
	uint8_t role;
	uint8_t state;
	uint8_t fail; /* enum wp_tls_fail */
	uint8_t shut_sent;
	uint8_t eof_fed; /* wp_tls_conn_feed_eof was called */
	uint8_t resumed; /* copied at the switch */
};

/* Checks the SPIFFE identity of <leaf> for connection <c> (trust domain,
 * the expected peer of a client) and records it as c's peer identity.
 * Returns WP_TLS_FAIL_NONE or why the peer is refused. */
enum wp_tls_fail wp_tls_check_identity(struct wp_tls_conn *c, X509 *leaf);

/* The same for a SPIFFE ID already read from a certificate (uri, ulen). */
enum wp_tls_fail wp_tls_check_uri(struct wp_tls_conn *c, const char *uri, size_t ulen);

/* The same check as a verification step: 1 if <leaf> is acceptable for
 * <c>; else records why in c and marks <xs> failed by the application,
 * and returns 0. */
int wp_tls_identity_verdict(struct wp_tls_conn *c, X509_STORE_CTX *xs, X509 *leaf);

static inline void ctr_inc(uint64_t *ctrs, enum wp_ctr c)
{
	if (ctrs != NULL)
		wp_ctr_inc(ctrs, c);
}

/* OpenSSL's certificate verification callback (SSL_CTX_set_cert_verify_
 * callback): a chain verified before against the same context, still
 * inside its validity, is not verified again; the identity check always
 * runs (chain_memo.c). */
int wp_tls_chain_verify(X509_STORE_CTX *xs, void *arg);

/* The memo for our own handshake (hs13.c), keyed by d, the SHA-256 of the
 * DER certificates as the peer sent them. find: the leaf key (a new
 * reference) and SPIFFE ID of a chain verified before for c's context and
 * role, valid at the time the context verifies at; NULL if none (counted as a memo hit when found).
 * keep: remembers the chain just verified in xs, its leaf key and ID. */
EVP_PKEY *wp_tls_memo_find(const struct wp_tls_conn *c, const uint8_t d[32], const char **uri);
void wp_tls_memo_keep(const struct wp_tls_conn *c, const uint8_t d[32], X509_STORE_CTX *xs,
                      EVP_PKEY *key, const char *uri);

/* Routes the decoding of EC public keys in certificates to OpenSSL's
 * built-in EC code instead of a provider decoder built per certificate
 * (eckey.c). Once per process; true if in place (else only slower). */
bool wp_tls_ec_decode_install(void);

#endif /* WP_DP_TLS_TLS_INT_H */
