/*
 * Parsing, printing and comparison of struct wp_addr. Used by the config
 * loader, the control plane and the data plane alike.
 */
#ifndef WP_ADDR_H
#define WP_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "wp/addr_types.h"

/* Longest text wp_addr_format() writes, with the NUL ("[v6]:65535"). */
#define WP_ADDR_STRLEN 56

/* Parses "1.2.3.4" or an IPv6 literal. Returns 0 or -EINVAL. */
int wp_addr_parse(const char *s, struct wp_addr *out);

/* Parses "ip:port" or "[v6]:port" (an HBONE :authority). 0 or -EINVAL. */
int wp_sockaddr_parse(const char *s, struct wp_sockaddr *out);

/* Writes the address as text into buf (at least WP_ADDR_STRLEN bytes). */
const char *wp_addr_format(const struct wp_addr *a, char *buf, size_t len);

/* Writes "ip:port" or "[v6]:port". */
const char *wp_sockaddr_format(const struct wp_sockaddr *sa, char *buf, size_t len);

static inline struct wp_addr wp_addr_v4(uint32_t be_ip)
{
	struct wp_addr a;
	memset(&a, 0, sizeof(a));
	a.family = WP_AF_INET;
	a.v4 = be_ip;
	return a;
}

static inline bool wp_addr_eq(const struct wp_addr *a, const struct wp_addr *b)
{
	if (a->family != b->family)
		return false;
	if (a->family == WP_AF_INET)
		return a->v4 == b->v4;
	return memcmp(a->v6, b->v6, 16) == 0;
}

#endif /* WP_ADDR_H */
