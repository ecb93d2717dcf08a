/*
 * The per-core load-balancer state of the clusters in use, shared by the
 * HTTP/1.1 and h2c proxies (h1proxy.c, h2proxy.c): for each cluster's
 * table (wp/lb.h) a struct wp_lb_core -- the round-robin cursor, the
 * PRNG and, for LEAST_REQUEST, the requests in flight per endpoint --
 * cached by table pointer in a small direct-mapped array. A new table at a
 * slot (a snapshot replaced the cluster) starts from fresh counts.
 * Everything is allocated in wp_lb_cache_new(); picks allocate nothing.
 */
#ifndef WP_DP_L7_LB_CACHE_H
#define WP_DP_L7_LB_CACHE_H

#include <stdint.h>

#include "wp/lb.h"

struct wp_lb_cache;

/* A request counted active on one endpoint (see wp_lb_cache_begin()). */
struct wp_lb_active {
	const struct wp_lb_table *t; /* NULL: nothing counted */
	uint32_t ep;
};

/* <ctr> (per-core counters) stays the caller's. NULL on allocation failure. */
struct wp_lb_cache *wp_lb_cache_new(uint64_t seed, uint64_t *ctr);
void wp_lb_cache_free(struct wp_lb_cache *c); /* NULL is a no-op */

/* The per-core state to pick from <t> with (wp_lb_pick()). */
struct wp_lb_core *wp_lb_cache_core(struct wp_lb_cache *c, const struct wp_lb_table *t);

/* A request now runs on endpoint <i> of <t>: counted in flight (what
 * LEAST_REQUEST reads) until wp_lb_cache_end(<a>). */
void wp_lb_cache_begin(struct wp_lb_cache *c, const struct wp_lb_table *t, int i,
                       struct wp_lb_active *a);
void wp_lb_cache_end(struct wp_lb_cache *c, struct wp_lb_active *a);

#endif /* WP_DP_L7_LB_CACHE_H */
