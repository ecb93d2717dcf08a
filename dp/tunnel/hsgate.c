/*
 * The handshake gate (see hsgate.h): a counter against a cap, kept apart
 * from tunnel.c so that the admission rule is unit tested without DPDK
 * (tests/unit/dp/tunnel/test_hsgate.c).
 */
#include "hsgate.h"
#include "wp/counters.h"

void wp_hsgate_init(struct wp_hsgate *g, uint32_t cap)
{
	g->cap = cap;
	g->busy = 0;
	g->peak = 0;
}

bool wp_hsgate_enter(struct wp_hsgate *g, uint64_t *ctr)
{
	uint32_t busy = g->busy;

	if (busy >= g->cap) {
		wp_ctr_inc(ctr, WP_CTR_TUNNEL_HANDSHAKE_LIMIT);
		return false;
	}
	busy++;
	__atomic_store_n(&g->busy, busy, __ATOMIC_RELAXED);
	if (busy > g->peak)
		__atomic_store_n(&g->peak, busy, __ATOMIC_RELAXED);
	return true;
}

void wp_hsgate_leave(struct wp_hsgate *g)
{
	WP_ASSERT(g->busy > 0);
	/* Release builds: an unbalanced leave must not wrap to a closed gate. */
	if (g->busy > 0)
		__atomic_store_n(&g->busy, g->busy - 1, __ATOMIC_RELAXED);
}

uint32_t wp_hsgate_busy(const struct wp_hsgate *g)
{
	return __atomic_load_n(&g->busy, __ATOMIC_RELAXED);
}

uint32_t wp_hsgate_peak(const struct wp_hsgate *g)
{
	return __atomic_load_n(&g->peak, __ATOMIC_RELAXED);
}
