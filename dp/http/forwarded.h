/*
 * The client address in an RFC 7239 Forwarded header. ztunnel sends
 * `Forwarded: for="ip:port";host=...` on the CONNECT of an HBONE tunnel to
 * a waypoint: the original source, which consistent hashing on the source
 * IP (DestinationRule useSourceIp) and policy must see rather than the
 * address of the ztunnel that carried the tunnel.
 */
#ifndef WP_DP_HTTP_FORWARDED_H
#define WP_DP_HTTP_FORWARDED_H

#include <stddef.h>

#include "wp/addr_types.h"
#include "wp/common.h"

/*
 * The address of the first `for=` parameter of the first element of <v>
 * (the client nearest the origin): `for=1.2.3.4`, `for="1.2.3.4:80"`,
 * `for="[2001:db8::1]:80"`, `for="[2001:db8::1]"`. Returns 0, or -ENOENT
 * when there is no `for=`, -EINVAL when it is not an address (`unknown`,
 * an obfuscated `_name`, malformed).
 */
int wp_forwarded_for(const char *v, size_t len, struct wp_addr *out) WP_MUST_CHECK;

#endif /* WP_DP_HTTP_FORWARDED_H */
