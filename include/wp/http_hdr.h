/*
 * HTTP header lines as the HTTP/1.1 codec (dp/http/http1.h) hands them out
 * and takes them back, and the add/set/remove hooks its writers apply.
 * Shared because the compiled route tables (wp/route.h) match on these
 * lines and carry HTTPRoute header modifiers in this form for the proxies
 * to pass straight to the writers.
 */
#ifndef WP_HTTP_HDR_H
#define WP_HTTP_HDR_H

#include <stdint.h>

/* Well-known header names, recognised once at parse time (names are stored
 * lower-cased, so comparisons elsewhere are plain memcmp). */
enum wp_http_hdr_id {
	WP_HDR_OTHER = 0,
	WP_HDR_CONNECTION,
	WP_HDR_CONTENT_LENGTH,
	WP_HDR_COOKIE,
	WP_HDR_EXPECT,
	WP_HDR_HOST,
	WP_HDR_KEEP_ALIVE,
	WP_HDR_PROXY_CONNECTION,
	WP_HDR_TE,
	WP_HDR_TRAILER,
	WP_HDR_TRANSFER_ENCODING,
	WP_HDR_UPGRADE,
	WP_HDR_X_REQUEST_ID,
};

/* wp_http_hdr.flags */
#define WP_HDR_F_HOP 0x1 /* hop-by-hop: never forwarded as is */

/* One header line. name/value point into the parser's arena (or, for hook
 * headers, into memory the caller owns); names of parsed headers are
 * lower-case. Values exclude surrounding whitespace. */
struct wp_http_hdr {
	const char *name;
	const char *value;
	uint32_t value_len;
	uint16_t name_len;
	uint8_t id;    /* enum wp_http_hdr_id */
	uint8_t flags; /* WP_HDR_F_* */
};

/* Header hooks applied while serialising (HTTPRoute RequestHeaderModifier /
 * ResponseHeaderModifier): headers named in <remove> or <set> are dropped
 * from the message, then <set> and <add> are appended. Names lower-case.
 * The arrays are the caller's. */
struct wp_http_hdr_mods {
	const struct wp_http_hdr *set;
	const struct wp_http_hdr *add;
	const struct wp_http_hdr *remove; /* only name/name_len used */
	uint16_t n_set;
	uint16_t n_add;
	uint16_t n_remove;
};

#endif /* WP_HTTP_HDR_H */
