/*
 * The snapshot's destination table: open addressing on (address, port),
 * port 0 for workload addresses. Its hash and key compare, shared by the
 * builder (snap_build.c) and the reader the workers call
 * (snap_lookup.c), which must agree on them.
 */
#ifndef WP_CP_RESOLVE_SNAP_DEST_H
#define WP_CP_RESOLVE_SNAP_DEST_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "wp/addr.h"
#include "wp/hash.h"

static inline uint64_t dest_hash(const struct wp_sockaddr *k)
{
	uint64_t h;

	if (k->addr.family == WP_AF_INET) {
		h = ((uint64_t)k->addr.v4 << 16) ^ k->port ^ 0x4000000000000000ULL;
	} else {
		uint64_t a, b;

		memcpy(&a, k->addr.v6, 8);
		memcpy(&b, k->addr.v6 + 8, 8);
		h = a ^ (b * 0x9e3779b97f4a7c15ULL) ^ k->port;
	}
	return wp_hash_mix64(h);
}

static inline bool key_eq(const struct wp_sockaddr *a, const struct wp_sockaddr *b)
{
	return a->port == b->port && wp_addr_eq(&a->addr, &b->addr);
}

#endif
