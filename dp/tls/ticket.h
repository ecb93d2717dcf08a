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

/* For tests: the clock the epochs follow (NULL: time()). */
void wp_tls_tickets_set_clock(struct wp_tls_tickets *k, uint64_t (*now_s)(void));

#endif /* WP_DP_TLS_TICKET_H */
