/*
 * TLS 1.3 session ticket keys for the HBONE server (private to dp/tls).
 *
 * One key set per process, shared by every core through the SSL_CTX and
 * carried over when the certificate is reloaded (so a reload does not
 * void the tickets clients hold). Keys rotate with the clock: epoch E =
 * time / period has its own AES-256-CBC and HMAC-SHA256 keys, a ticket
 * names its epoch, and a ticket from E - 1 is still accepted while older
 * ones are refused, so a ticket lives between one and two periods. Every
 * resumption gets a fresh ticket (TLS 1.3 clients use each ticket once). The epoch keys come from a
 * ratchet (key(E + 1) = HMAC(key(E), ...)) whose old states are erased as it advances: what a
 * process holds at any time cannot decrypt tickets older than the previous
 * epoch (forward secrecy for resumed sessions). A mutex guards the ratchet;
 * it is taken once per ticket issued or checked, on the handshake path,
 * never per packet.
 */
#ifndef WP_DP_TLS_TICKET_H
#define WP_DP_TLS_TICKET_H

#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

struct wp_tls_tickets;

/* A key set rotating every period_s seconds (0: 3600); NULL when out of
 * memory or randomness. One reference. */
struct wp_tls_tickets *wp_tls_tickets_new(uint32_t period_s);
void wp_tls_tickets_ref(struct wp_tls_tickets *k);
void wp_tls_tickets_unref(struct wp_tls_tickets *k); /* NULL is a no-op */

/* Installs k as <ctx>'s ticket key callback and sets the ticket lifetime
 * hint; k must outlive ctx (wp_tls_ctx holds the reference). 0 or
 * -ENOMEM. */
int wp_tls_tickets_attach(struct wp_tls_tickets *k, SSL_CTX *ctx);

/*
 * The tickets of our own handshake (hs13.c), under the same epoch keys and
 * in OpenSSL's layout (key name, IV, AES-256-CBC, HMAC-SHA256), around a
 * plaintext of ours. seal: out holds len + WP_TLS_TICKET_OVERHEAD bytes;
 * 0 and *out_len, or -1. open: the plaintext's length (out holds len
 * bytes), or -1 when the ticket is not ours, its epoch is gone or it was
 * altered. Both count as the callback does (ctrs may be NULL).
 */
#define WP_TLS_TICKET_PLAIN_MAX 512
#define WP_TLS_TICKET_OVERHEAD  (16 + 16 + 16 + 32)
int wp_tls_tickets_seal(struct wp_tls_tickets *k, const uint8_t *pt, size_t len, uint8_t *out,
                        size_t *out_len, uint64_t *ctrs);
ssize_t wp_tls_tickets_open(struct wp_tls_tickets *k, const uint8_t *t, size_t len, uint8_t *out,
                            uint64_t *ctrs);
/* How long a ticket is good for: one period (seconds). */
uint32_t wp_tls_tickets_lifetime(const struct wp_tls_tickets *k);
/* The clock the epochs follow, in seconds. */
uint64_t wp_tls_tickets_now(struct wp_tls_tickets *k);

/* For tests: the clock the epochs follow (NULL: time()). */
void wp_tls_tickets_set_clock(struct wp_tls_tickets *k, uint64_t (*now_s)(void));

#endif /* WP_DP_TLS_TICKET_H */
