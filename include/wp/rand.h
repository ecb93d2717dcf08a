/*
 * The per-core pseudo-random generator every data-path module uses
 * (xorshift64*): fast, seedable for replayable tests, not cryptographic.
 * Each core keeps its own state word; never share one between threads.
 */
#ifndef WP_RAND_H
#define WP_RAND_H

#include <stdbool.h>
#include <stdint.h>

/* A state from any 64-bit seed (splitmix64 of it; never 0, the one state
 * xorshift cannot leave): cores seeded with their ids draw apart. */
static inline void wp_rand_seed(uint64_t *state, uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ull;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	*state = z ? z : 1;
}

/* Advances *state (which must not be 0) and returns 64 random bits. */
static inline uint64_t wp_rand_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n) by Lemire's multiply-shift (bias < n / 2^64). */
static inline uint64_t wp_rand_below(uint64_t *state, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)wp_rand_next(state) * n) >> 64);
}

/* True with probability p (0..1). */
static inline bool wp_rand_chance(uint64_t *state, double p)
{
	if (p <= 0.0)
		return false;
	return (double)(wp_rand_next(state) >> 11) * (1.0 / 9007199254740992.0) < p;
}

#endif /* WP_RAND_H */
