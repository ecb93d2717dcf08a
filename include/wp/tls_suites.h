/*
 * The TLS 1.3 cipher suites waypointd negotiates, by OpenSSL's names
 * (tls.ciphersuites in the configuration, the same colon-separated syntax
 * as OpenSSL's -ciphersuites): TLS_AES_128_GCM_SHA256 (0x1301) and
 * TLS_AES_256_GCM_SHA384 (0x1302), the two ztunnel offers. The list's order
 * is the server's preference for inbound HBONE and the order of the offer
 * for HBONE originate. The control plane parses the configured text
 * (cp/config); dp/tls turns the ids back into names for OpenSSL's contexts
 * and picks among them in its own handshakes (dp/tls/hs13.c).
 */
#ifndef WP_TLS_SUITES_H
#define WP_TLS_SUITES_H

#include <stddef.h>
#include <stdint.h>

#define WP_TLS13_SUITES_MAX 2

/* AES-128-GCM first: its SHA-256 key schedule runs on the CPU's SHA
 * extensions where SHA-384's does not, and its records take 10 AES rounds
 * instead of 14 (docs/design.md, "TLS handshakes"). */
#define WP_TLS13_SUITES_DEFAULT "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"

/*
 * Parses a colon-separated list of suite names into ids, in order. Returns
 * how many (1..WP_TLS13_SUITES_MAX), or -EINVAL with the reason in err: an
 * empty list or entry, a name that is not one of the two, a name twice.
 */
int wp_tls13_suites_parse(const char *list, uint16_t ids[WP_TLS13_SUITES_MAX], char *err,
                          size_t errlen);

/* OpenSSL's name of one of the two suites, or NULL for any other id. */
const char *wp_tls13_suite_name(uint16_t id);

#endif
