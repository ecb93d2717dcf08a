/*
 * Small hashing helpers shared by the control plane's tables and the data
 * plane's load balancer: the 64-bit avalanche finaliser of MurmurHash3, so
 * inputs differing in one bit land far apart.
 */
#ifndef WP_HASH_H
#define WP_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t wp_hash_mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Folds <len> bytes at <s> into <h> eight at a time (the tail padded
 * with zeros and marked), for the interning tables' string keys. Callers
 * choose the seed, e.g. to mix in the length or a table kind. */
static inline uint64_t wp_hash_bytes(uint64_t h, const char *s, size_t len)
{
	for (; len >= 8; s += 8, len -= 8) {
		uint64_t w;

		memcpy(&w, s, 8);
		h = wp_hash_mix64(h ^ w);
	}
	if (len) {
		uint64_t w = 0;

		memcpy(&w, s, len);
		h = wp_hash_mix64(h ^ w ^ 0xff);
	}
	return h;
}

#endif /* WP_HASH_H */
