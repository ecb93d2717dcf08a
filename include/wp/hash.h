/*
 * Small hashing helpers shared by the control plane's tables and the data
 * plane's load balancer: the 64-bit avalanche finaliser of MurmurHash3, so
 * inputs differing in one bit land far apart.
 */
#ifndef WP_HASH_H
#define WP_HASH_H

#include <stdint.h>

static inline uint64_t wp_hash_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

#endif /* WP_HASH_H */
