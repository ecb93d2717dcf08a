/*
 * The handshake gate and share (see hsgate.h): a counter against a cap,
 * and the debt that paces handshake steps against other work, kept apart
 * from tunnel.c so that both rules are unit tested without DPDK or a
 * clock (tests/unit/dp/tunnel/test_hsgate.c).
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

void wp_hsshare_init(struct wp_hsshare *s, uint32_t share_pct, uint64_t now_us)
{
	s->share = WP_MIN(WP_MAX(share_pct, 1u), 100u);
	s->debt_us = 0;
	s->spent_us = 0;
	s->mark_us = now_us;
}

void wp_hsshare_iteration(struct wp_hsshare *s, uint64_t now_us)
{
	uint64_t elapsed = now_us > s->mark_us ? now_us - s->mark_us : 0;
	uint64_t other = elapsed > s->spent_us ? elapsed - s->spent_us : 0;

	if (other < WP_HSSHARE_QUIET_US) {
		s->debt_us = 0; /* nothing else wanted the core */
	} else if (s->share < 100) {
		uint64_t pay = other * s->share / (100 - s->share);

		s->debt_us = s->debt_us > pay ? s->debt_us - pay : 0;
	}
	s->spent_us = 0;
	s->mark_us = now_us;
}

bool wp_hsshare_may_step(const struct wp_hsshare *s)
{
	return s->debt_us < WP_HSSHARE_SLICE_US;
}

void wp_hsshare_charge(struct wp_hsshare *s, uint64_t us)
{
	s->spent_us += us;
	if (s->share < 100)
		s->debt_us += us;
}
