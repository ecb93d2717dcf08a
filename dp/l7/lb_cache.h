/*
 * The per-core load-balancer state of the clusters in use, shared by the
 * HTTP/1.1 and h2c proxies (h1proxy.c, h2proxy.c): for each cluster's
 * table (wp/lb.h) a struct wp_lb_core -- the round-robin cursor, the
 * PRNG and, for LEAST_REQUEST, the requests in flight per endpoint --
 * cached by table pointer in a small direct-mapped array. A new table at a
 * slot (a snapshot replaced the cluster) starts from fresh counts.
 * Everything is allocated in wp_lb_cache_new(); picks allocate nothing.
 *
 * Outlier detection (dp/l7/outlier.h) lives here on the worker's side:
 * each slot counts consecutive 5xx, gateway and local-origin errors per
 * endpoint on this core (wp_lb_cache_result()), reports a count that
 * reaches its threshold to the shared table on the next pick from that
 * cluster (while the table is live), and keeps the bitmap of
 * ejected endpoints that wp_lb_pick() skips, re-read from the table when
 * its generation moves or an ejection runs out. A cluster whose healthy
 * share falls below minHealthPercent, or whose endpoints are all ejected,
 * is balanced over all of them (Envoy's panic mode).
 */
#ifndef WP_DP_L7_LB_CACHE_H
#define WP_DP_L7_LB_CACHE_H

#include <stdint.h>

#include "wp/lb.h"

struct wp_lb_cache;
struct wp_outlier;

/* A request counted active on one endpoint (see wp_lb_cache_begin()). */
struct wp_lb_active {
	const struct wp_lb_table *t; /* NULL: nothing counted; never dereferenced */
	uint64_t serial;             /* t->serial: t may be freed, its address reused */
	uint32_t ep;
};

/* <ctr> (per-core counters) stays the caller's. NULL on allocation failure. */
struct wp_lb_cache *wp_lb_cache_new(uint64_t seed, uint64_t *ctr);
void wp_lb_cache_free(struct wp_lb_cache *c); /* NULL is a no-op */

/* Turns outlier detection on for this core over the shared table <od>
 * (NULL: off), which must outlive the cache. */
void wp_lb_cache_set_outlier(struct wp_lb_cache *c, struct wp_outlier *od);

/* The worker's clock (ms, the same on every core): ejection times. */
void wp_lb_cache_clock(struct wp_lb_cache *c, uint64_t now_ms);

/* The per-core state to pick from <t> with (wp_lb_pick()). */
struct wp_lb_core *wp_lb_cache_core(struct wp_lb_cache *c, const struct wp_lb_table *t);

/* A request now runs on endpoint <i> of <t>: counted in flight (what
 * LEAST_REQUEST reads) until wp_lb_cache_end(<a>). */
void wp_lb_cache_begin(struct wp_lb_cache *c, const struct wp_lb_table *t, int i,
                       struct wp_lb_active *a);
void wp_lb_cache_end(struct wp_lb_cache *c, struct wp_lb_active *a);

/* What a request counted in <a> learned about its endpoint, for outlier
 * detection: an HTTP status (100..599), or one of these. Call it before
 * wp_lb_cache_end(<a>); a no-op without outlier detection. */
#define WP_LB_RES_LOCAL_FAIL (-1) /* connect failure, reset or timeout before a response */
#define WP_LB_RES_CONNECTED  0    /* the connection to the endpoint is up */
void wp_lb_cache_result(struct wp_lb_cache *c, const struct wp_lb_active *a, int res);

#endif /* WP_DP_L7_LB_CACHE_H */
