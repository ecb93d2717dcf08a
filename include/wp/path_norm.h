/*
 * Request path normalization as Istio's waypoint (Envoy) does it by
 * default: meshConfig.pathNormalization DEFAULT = BASE, i.e. Envoy's
 * normalize_path (RFC 3986 section 6 syntax-based normalization, as the
 * Chromium URL canonicalizer Envoy embeds does it), with merge_slashes off
 * and escaped slashes kept unchanged:
 *   - percent-encoded unreserved characters are decoded (%41 -> A, %7E -> ~),
 *     and "%2e" / "%2E" count as a dot everywhere;
 *   - dot segments are removed ("/a/./b" -> "/a/b", "/a/b/../c" -> "/a/c",
 *     "/../a" -> "/a"), including encoded ones ("/a/%2e%2e/b" -> "/b");
 *   - a backslash is a slash ("\a\..\b" -> "/b");
 *   - characters that must not appear raw are percent-encoded with upper-case
 *     hex (space, '"', '<', '>', '^', '`', '{', '|', '}', controls, bytes >= 0x80);
 *   - other escapes are kept as sent: %2F and %5C stay encoded (BASE does
 *     not decode them), "//" is not merged (MERGE_SLASHES is not BASE);
 *   - a '%' that starts no valid escape is kept, and encoded as %25 where
 *     decoding around it would otherwise create a new escape ("%%30%30");
 *   - a NUL byte or %00 makes the path invalid (Envoy answers 400).
 * The query is copied unchanged after the normalized path; a fragment
 * ("#...") is dropped, as Envoy does. The normalized path is what
 * authorization matches and what must be sent upstream.
 */
#ifndef WP_PATH_NORM_H
#define WP_PATH_NORM_H

#include <stddef.h>

/* Bytes that always suffice for wp_path_norm()'s output of len input bytes. */
#define WP_PATH_NORM_MAX(len) (3 * (len) + 2)

/*
 * Normalizes the origin-form request-target in[0..len) into out (cap bytes,
 * NUL-terminated). *out_len gets the whole length (path + query), *path_len
 * the normalized path's. Returns 0, -EINVAL for a path Envoy refuses (NUL,
 * %00), or -ENOSPC when cap is too small.
 */
int wp_path_norm(const char *in, size_t len, char *out, size_t cap, size_t *out_len,
                 size_t *path_len);

#endif /* WP_PATH_NORM_H */
