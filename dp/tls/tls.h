/*
 * mTLS for HBONE, sans-I/O: OpenSSL 3 over memory BIOs.
 *
 * A struct wp_tls_ctx holds the two shared, read-only SSL_CTXs built from
 * the waypoint's files (cert.pem, key.pem, ca.pem): the server one for
 * inbound HBONE (port 15008, client certificate required, ALPN h2) and the
 * client one for HBONE originate (the waypoint's own certificate, server
 * SPIFFE identity checked). Both check the peer's SPIFFE URI SAN against
 * the trust domain and its aliases after the chain verified.
 *
 * A struct wp_tls_conn is one TLS connection as a byte transformer: the
 * worker feeds it ciphertext from TCP (wp_tls_conn_feed), pulls plaintext
 * (wp_tls_conn_read), pushes plaintext (wp_tls_conn_write) and after every
 * call hands whatever ciphertext became ready to TCP, in place
 * (wp_tls_conn_peek / _advance) or copied out (wp_tls_conn_take); or it
 * seals the plaintext straight into memory TCP gives it
 * (wp_tls_conn_write_into). Nothing here touches a socket, a packet or a
 * clock.
 *
 * Inbound handshakes run on our own TLS 1.3 server code (hs13.c) unless
 * the hello is one it leaves to OpenSSL (or cfg.openssl_handshake is set);
 * the calls are the same either way.
 *
 * Reload: the control plane keeps a struct wp_tls_store and calls
 * wp_tls_store_reload() periodically; when a file's mtime/inode/size changed
 * a fresh wp_tls_ctx is built and published by pointer swap. Connections
 * hold a reference to the ctx they were made with, so existing connections
 * keep working on the old certificate until they close.
 */
#ifndef WP_DP_TLS_H
#define WP_DP_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "wp/common.h"
#include "wp/tls_suites.h"

/* Longest SPIFFE ID we keep (spiffe://<td>/ns/<63>/sa/<253> fits). */
#define WP_TLS_ID_MAX      384
#define WP_TLS_MAX_ALIASES 8

struct wp_tls_config {
	const char *cert_file; /* PEM chain, leaf first */
	const char *key_file;
	const char *ca_file;                     /* trusted roots */
	const char *trust_domain;                /* e.g. "cluster.local" */
	const char *aliases[WP_TLS_MAX_ALIASES]; /* NULL-terminated if shorter */
	bool allow_tls12;                        /* default false: TLS 1.3 only */
	bool no_session_tickets;                 /* default false: server issues tickets */
	uint32_t ticket_period_s; /* ticket key rotation (dp/tls/ticket.h); 0 = 3600 */
	bool openssl_handshake;   /* server: OpenSSL runs every handshake, not dp/tls/hs13.c */
	/* TLS 1.3 suites, preferred first: the server's choice and the
	 * client's offer (wp/tls_suites.h). n_suites13 0: the default,
	 * WP_TLS13_SUITES_DEFAULT. */
	uint16_t suites13[WP_TLS13_SUITES_MAX];
	unsigned n_suites13;
	/* Ciphertext a conn buffers in each direction before it pushes back
	 * (feed accepts less, write accepts nothing). 0 = 64 KiB. */
	size_t bio_cap;
};

/* Why a handshake (or a connection) failed. */
enum wp_tls_fail {
	WP_TLS_FAIL_NONE = 0,
	WP_TLS_FAIL_NO_PEER_CERT,
	WP_TLS_FAIL_BAD_CHAIN,
	WP_TLS_FAIL_EXPIRED,
	WP_TLS_FAIL_NO_SPIFFE_ID, /* no or malformed spiffe:// URI SAN */
	WP_TLS_FAIL_FOREIGN_TD,
	WP_TLS_FAIL_WRONG_PEER, /* client: not the expected identity */
	WP_TLS_FAIL_NO_ALPN_H2,
	WP_TLS_FAIL_PROTOCOL_VERSION,
	WP_TLS_FAIL_PEER_ALERT, /* the peer aborted the handshake */
	WP_TLS_FAIL_OTHER,
};

const char *wp_tls_fail_str(enum wp_tls_fail f);

enum wp_tls_role {
	WP_TLS_SERVER,
	WP_TLS_CLIENT,
};

struct wp_tls_ctx;
struct wp_tls_conn;

/*
 * Builds a context from the files named in cfg (the strings are copied).
 * Returns NULL on error (unreadable file, key mismatch, no trust domain);
 * *err (if not NULL) receives -errno. The caller owns one reference.
 */
struct wp_tls_ctx *wp_tls_ctx_new(const struct wp_tls_config *cfg, int *err);
void wp_tls_ctx_ref(struct wp_tls_ctx *ctx);
/* Drops a reference; the last one frees the context. NULL is a no-op. */
void wp_tls_ctx_unref(struct wp_tls_ctx *ctx);
/* True when any of cert/key/ca changed (mtime, inode or size) since ctx was
 * built, or can no longer be stat'ed. */
bool wp_tls_ctx_files_changed(const struct wp_tls_ctx *ctx);

/*
 * The published context. Workers read it with wp_tls_store_get() when they
 * accept or originate a connection; the control plane reloads it.
 */
struct wp_tls_store {
	struct wp_tls_ctx *_Atomic cur;
};

/* Builds the first context. 0 or -errno. */
int wp_tls_store_init(struct wp_tls_store *st, const struct wp_tls_config *cfg) WP_MUST_CHECK;
/* The current context, borrowed: valid until the caller's next quiescent
 * state (wp_tls_conn_new takes its own reference). */
struct wp_tls_ctx *wp_tls_store_get(struct wp_tls_store *st);
/*
 * Rebuilds the context if its files changed (force: always). Returns 1 and
 * sets *old to the replaced context when a new one was published, 0 when
 * nothing changed, -errno when the rebuild failed (the old one stays).
 * The caller owns *old and must wp_tls_ctx_unref() it after every worker
 * passed a quiescent state (rte_rcu_qsbr), since a worker may be between
 * wp_tls_store_get() and wp_tls_conn_new().
 */
int wp_tls_store_reload(struct wp_tls_store *st, bool force, struct wp_tls_ctx **old,
                        uint64_t *ctrs) WP_MUST_CHECK;
/* Drops the store's reference. */
void wp_tls_store_fini(struct wp_tls_store *st);

/*
 * A connection. ctrs is the per-core counter array (enum wp_ctr) the
 * connection increments; it must outlive the connection. Takes a reference
 * on ctx. NULL on allocation failure.
 */
struct wp_tls_conn *wp_tls_conn_new(struct wp_tls_ctx *ctx, enum wp_tls_role role, uint64_t *ctrs);
void wp_tls_conn_free(struct wp_tls_conn *c);

/* Client: require the server to be exactly this SPIFFE ID (copied). Call
 * before the handshake starts. 0 or -EINVAL/-ENAMETOOLONG. */
int wp_tls_conn_set_expected_peer(struct wp_tls_conn *c, const char *spiffe_id);

/*
 * Feeds ciphertext received from TCP. Returns the number of bytes accepted
 * (less than len when the input buffer holds bio_cap bytes the application
 * has not read yet: keep the rest in TCP, the window closes), or -EPIPE
 * after a failure. The bytes are copied.
 */
ssize_t wp_tls_conn_feed(struct wp_tls_conn *c, const void *buf, size_t len);

/* TCP delivered FIN: what was fed can still be read, then reads return
 * -EPIPE after a close_notify or -ECONNRESET without one. */
void wp_tls_conn_feed_eof(struct wp_tls_conn *c);

/*
 * Advances the handshake with what was fed. Returns 1 when established,
 * 0 when it needs more input (take the output first), -EPROTO on failure
 * (see wp_tls_conn_fail_reason; take the output: it holds the alert).
 * The client starts the handshake with its first call (ClientHello).
 */
int wp_tls_conn_handshake(struct wp_tls_conn *c);

/*
 * Plaintext out: >0 bytes copied into buf, 0 (WP_AGAIN) nothing decrypted
 * yet, -EPIPE the peer sent close_notify (clean EOF), -ECONNRESET the
 * stream ended without one, -EPROTO a fatal error. Runs the handshake first
 * if it is not done. Take the output afterwards (tickets, KeyUpdate).
 */
ssize_t wp_tls_conn_read(struct wp_tls_conn *c, void *buf, size_t len);

/*
 * The same plaintext without the copy: answers as wp_tls_conn_read, and
 * when >0, *p points at that many bytes, in place in our record layer's
 * input (good until the next call on c). A connection still on OpenSSL's
 * record layer (TLS 1.2) peeks into scratch (len bytes) instead. Then
 * wp_tls_conn_read_done says how many of them were used (at most what the
 * view returned); the rest is offered again by the next view or read.
 */
ssize_t wp_tls_conn_read_view(struct wp_tls_conn *c, const uint8_t **p, void *scratch, size_t len);
void wp_tls_conn_read_done(struct wp_tls_conn *c, size_t n);

/*
 * Plaintext in: returns the bytes accepted (encrypted into the output),
 * 0 when the handshake is not done or bio_cap ciphertext is waiting to be
 * taken (backpressure), -EPROTO/-EPIPE on failure or after shutdown.
 */
ssize_t wp_tls_conn_write(struct wp_tls_conn *c, const void *buf, size_t len);

/* What each record we write adds to its plaintext (header, content type,
 * AEAD tag), and the most plaintext one record carries. */
#define WP_TLS_REC_OVERHEAD  22
#define WP_TLS_REC_MAX_PLAIN 16384

/*
 * As wp_tls_conn_write, but the records go straight into <out> (two pieces,
 * filled in order: the free space of a ring that wraps), so that the
 * ciphertext is not copied again on its way to TCP. Records carry up to
 * WP_TLS_REC_MAX_PLAIN; the last one is cut to the room left when that
 * holds at least <min_cut> bytes of plaintext (each record costs OpenSSL
 * ~800 cycles besides its bytes: not too small). *used is the ciphertext
 * written. Returns the plaintext bytes taken; 0 (nothing written) when
 * there is no room for that, or when this connection cannot do it now:
 * still on OpenSSL (TLS 1.2), ciphertext already waiting
 * (wp_tls_conn_pending), a KeyUpdate due. Then wp_tls_conn_write is the
 * way. -EPROTO / -EPIPE as it.
 */
ssize_t wp_tls_conn_write_into(struct wp_tls_conn *c, const void *buf, size_t len,
                               const struct iovec out[2], size_t min_cut, size_t *used);

/* Ciphertext waiting to be sent to TCP. */
size_t wp_tls_conn_pending(const struct wp_tls_conn *c);

/* Once the connection's plaintext has been read until nothing was left:
 * whether it holds part of a record whose rest has not arrived (the peer
 * may be waiting for an ACK to send it). */
bool wp_tls_conn_partial(const struct wp_tls_conn *c);
/* Copies up to len bytes of ciphertext to buf and removes them. Returns the
 * byte count (0 when nothing is waiting). */
size_t wp_tls_conn_take(struct wp_tls_conn *c, void *buf, size_t len);

/* The ciphertext waiting, in place, so that TCP copies it once: its length
 * (0: none), *p pointing at it; the bytes stay the connection's, valid
 * until the next call on c. wp_tls_conn_advance removes the first n of
 * them (n at most what peek returned). */
size_t wp_tls_conn_peek(struct wp_tls_conn *c, const uint8_t **p);
void wp_tls_conn_advance(struct wp_tls_conn *c, size_t n);

/* Queues close_notify (take the output). 0 or -EPROTO. */
int wp_tls_conn_shutdown(struct wp_tls_conn *c);

/*
 * For idle connections: when no ciphertext waits in either direction,
 * frees both memory BIOs (and any record buffer OpenSSL kept); the next
 * call that moves bytes makes new ones, transparently. A no-op during the
 * handshake and while bytes wait.
 */
void wp_tls_conn_trim(struct wp_tls_conn *c);

bool wp_tls_conn_established(const struct wp_tls_conn *c);
bool wp_tls_conn_failed(const struct wp_tls_conn *c);
bool wp_tls_conn_resumed(const struct wp_tls_conn *c);
enum wp_tls_fail wp_tls_conn_fail_reason(const struct wp_tls_conn *c);
/* The peer's SPIFFE ID ("spiffe://td/ns/x/sa/y"), NUL-terminated, or NULL
 * before the handshake verified it. Owned by the connection. */
const char *wp_tls_conn_peer_id(const struct wp_tls_conn *c);
/* Trust domain, namespace, service account of the peer as (ptr, len)
 * slices of wp_tls_conn_peer_id(). 0, or -ENOENT before the handshake. */
int wp_tls_conn_peer_parts(const struct wp_tls_conn *c, const char **td, size_t *td_len,
                           const char **ns, size_t *ns_len, const char **sa, size_t *sa_len);
/* Negotiated protocol version (TLS1_3_VERSION...) or 0. */
int wp_tls_conn_version(const struct wp_tls_conn *c);

/*
 * Parses "spiffe://<td>/ns/<ns>/sa/<sa>" (exact shape, non-empty parts, no
 * further segments). Returns 0 and the slices, or -EINVAL.
 */
int wp_tls_spiffe_parse(const char *id, size_t len, const char **td, size_t *td_len,
                        const char **ns, size_t *ns_len, const char **sa, size_t *sa_len);

/*
 * OpenSSL's allocator (CRYPTO_set_mem_functions, dp/tls/mem.c): memory
 * accounting, and a per-thread cache of the blocks OpenSSL frees, by size
 * class, so that the thousands of short-lived allocations of a handshake
 * are mostly served without malloc (at most 2 MiB held per thread, given
 * back when the thread exits). Must be called before OpenSSL allocates
 * anything (first thing in main). Afterwards wp_tls_mem_live() returns the
 * bytes currently allocated by OpenSSL from the calling thread's point of
 * view (allocations minus frees made on this thread; cached blocks are not
 * live). Returns 0 or -EBUSY if OpenSSL already allocated.
 */
int wp_tls_mem_accounting_enable(void);
int64_t wp_tls_mem_live(void);

/* What seals and opens the records of a TLS 1.3 suite (0x1301..0x1303) in
 * this process, for the start-up log: "intel-ipsec-mb 1.3.0 (AVX-512,
 * VAES)", "OpenSSL 3.0.19 ...", or "unavailable". */
const char *wp_tls_record_crypto(uint16_t suite);

#endif /* WP_DP_TLS_H */
