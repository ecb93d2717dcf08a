/*
 * Load balancing for the L7 proxy (DestinationRule trafficPolicy.loadBalancer):
 * ROUND_ROBIN (smooth weighted), LEAST_REQUEST (power of two choices),
 * RANDOM (weighted), and consistent hashing with RING_HASH (ketama-like) or
 * MAGLEV, keyed by a header value, a cookie, the source IP or a query
 * parameter.
 *
 * The control plane builds one read-only struct wp_lb_table per endpoint set
 * ahead of time (wp_lb_table_build() allocates; never on the data path) and
 * publishes it to the workers. Each worker keeps its own struct wp_lb_core
 * per table: a PRNG, a round-robin cursor and a pointer to the worker's
 * active-request counters for that table's endpoints. A pick reads the table,
 * touches only the caller's per-core state, never allocates and never locks:
 * O(1) for round robin and maglev, O(log n) for weighted random, least
 * request (two weighted draws) and the ring.
 */
#ifndef WP_LB_H
#define WP_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wp/addr_types.h"
#include "wp/common.h"

enum wp_lb_policy {
	WP_LB_ROUND_ROBIN = 0,
	WP_LB_LEAST_REQUEST,
	WP_LB_RANDOM,
	WP_LB_RING_HASH,
	WP_LB_MAGLEV,
};

/* One upstream endpoint. Its identity for consistent hashing is (addr, port),
 * so a table rebuilt without one endpoint keeps every other key in place. */
struct wp_lb_endpoint {
	struct wp_addr addr;
	uint16_t port;   /* host byte order */
	uint32_t weight; /* 0 is treated as 1 */
};

/*
 * DestinationRule trafficPolicy.outlierDetection of one cluster, in Istio's
 * terms (compiled by cp/resolve/dr_compile.c with Istio's defaults). The
 * table only carries it: dp/l7/outlier.c and dp/l7/lb_cache.c act on it,
 * and wp_lb_pick() skips what they mark ejected (wp_lb_core.ejected).
 */
struct wp_lb_outlier {
	bool enabled;           /* outlierDetection present */
	bool split_local;       /* splitExternalLocalOriginErrors */
	uint8_t max_eject_pct;  /* maxEjectionPercent (default 10) */
	uint8_t min_health_pct; /* minHealthPercent (default 0: ejections always apply) */
	uint16_t consec_5xx;    /* consecutive5xxErrors (default 5; 0 off) */
	uint16_t consec_gw;     /* consecutiveGatewayErrors (default 0: off) */
	uint16_t consec_local;  /* consecutiveLocalOriginFailures (default 5; split only) */
	uint32_t interval_ms;   /* interval (default 10s) */
	uint32_t base_ms;       /* baseEjectionTime (default 30s) */
	uint64_t cluster_key;   /* hash of the cluster's name: stable across snapshots */
	char cluster[120];      /* the cluster's name for views (truncated) */
};

/* Build parameters; zero fields take the defaults below. */
struct wp_lb_params {
	enum wp_lb_policy policy;
	uint32_t ring_min_size;  /* RING_HASH: minimum entries (default 1024; the ring
	                          * may get up to twice as many) */
	uint32_t ring_max_size;  /* RING_HASH: maximum entries (default 8M) */
	uint32_t maglev_size;    /* MAGLEV: table size, prime > endpoints (default 65537) */
	uint32_t rr_max_len;     /* ROUND_ROBIN: longest precomputed cycle, > endpoints
	                          * (default 65536); longer cycles are scaled down */
	struct wp_lb_outlier od; /* copied into the table */
};

#define WP_LB_RING_MIN_DEFAULT    1024u
#define WP_LB_RING_MAX_DEFAULT    (8u * 1024 * 1024)
#define WP_LB_MAGLEV_SIZE_DEFAULT 65537u
#define WP_LB_RR_MAX_DEFAULT      65536u
#define WP_LB_MAX_ENDPOINTS       65535u

struct wp_lb_ring_entry {
	uint64_t hash;
	uint32_t ep;
};

/* A built table: read-only once published, shared by all cores. */
struct wp_lb_table {
	enum wp_lb_policy policy;
	uint64_t serial; /* unique in the process: tells a table from an earlier one
	                  * freed at the same address (per-core caches key on it) */
	uint32_t n_ep;
	struct wp_lb_endpoint *eps; /* copy of the endpoints, table order */
	uint64_t *cum;              /* prefix sums of weights (RANDOM, LEAST_REQUEST, fallback) */
	uint64_t total_weight;
	uint32_t *rr_seq; /* ROUND_ROBIN: one smooth weighted cycle of endpoint indexes */
	uint32_t rr_len;
	struct wp_lb_ring_entry *ring; /* RING_HASH: sorted by hash */
	uint32_t ring_len;
	uint16_t *maglev; /* MAGLEV: maglev_len slots of endpoint indexes */
	uint32_t maglev_len;
	struct wp_lb_outlier od; /* outlier detection (od.enabled false: none) */
};

/* Per-core, per-table state, owned by the worker. */
struct wp_lb_core {
	uint64_t rng;     /* xorshift64* state, never 0 */
	uint32_t rr_pos;  /* cursor into rr_seq */
	uint32_t *active; /* active requests per endpoint on this core (n_ep), may be NULL */
	uint64_t *ctr;    /* per-core counters (wp/counters.h) */
	/* endpoints outlier detection ejected, one bit each (n_ep bits), or
	 * NULL: none to skip. Set by the owner (dp/l7/lb_cache.c), never with
	 * every endpoint marked. */
	const uint64_t *ejected;
	/* every endpoint is ejected and the panic threshold does not apply
	 * (minHealthPercent 0, Istio's default: Envoy's panic mode off): every
	 * pick fails, as Envoy finds no healthy host (503 UH). Set by the owner. */
	bool none_healthy;
};

/* Builds the table for <n> endpoints (copied). Returns NULL with errno set:
 * EINVAL (bad params, n > WP_LB_MAX_ENDPOINTS, maglev size not a prime
 * larger than n, rr_max_len <= n), ENOMEM. Control plane only: the round
 * robin build costs O(n * cycle length), maglev O(size * log size). n == 0 gives a table whose
 * picks all fail. */
struct wp_lb_table *wp_lb_table_build(const struct wp_lb_params *params,
                                      const struct wp_lb_endpoint *eps, uint32_t n);

/* True when m is prime: what a MAGLEV table size must be (checked when
 * compiling a DestinationRule, so the error names the field). */
bool wp_lb_is_prime(uint32_t m);

/* Frees a table built by wp_lb_table_build() (NULL is fine). */
void wp_lb_table_free(struct wp_lb_table *t);

/* Initialises the per-core state for <t>. <seed> should differ per core (it
 * also staggers the round-robin start). <active> (t->n_ep counters, zeroed
 * by the caller) and <ctr> stay the caller's. */
void wp_lb_core_init(struct wp_lb_core *c, const struct wp_lb_table *t, uint64_t seed,
                     uint32_t *active, uint64_t *ctr);

/* Picks an endpoint. <hash> is used only by RING_HASH and MAGLEV and only if
 * <has_hash>; without a key they fall back to a weighted random pick
 * (counted). An endpoint marked in c->ejected is skipped: round robin steps
 * on, random and least request draw again (then take the next endpoint),
 * the ring and maglev walk to the next entry, so only the ejected
 * endpoint's keys move. Returns the endpoint index in t->eps, or -ENOENT
 * (counted) if the table is empty. The caller increments/decrements c->active[i] around
 * the request (LEAST_REQUEST reads them). */
int wp_lb_pick(const struct wp_lb_table *t, struct wp_lb_core *c, uint64_t hash, bool has_hash);

/* Hash of a key for RING_HASH / MAGLEV (64-bit, not cryptographic). */
uint64_t wp_lb_hash(const void *key, size_t len);

/* Hash of a source address (the address bytes of its family only). */
uint64_t wp_lb_hash_addr(const struct wp_addr *a);

/* Key extraction. Each finds the value of <name> (<nlen> bytes, compared
 * exactly) and points val/vlen into the input; returns 0 or -ENOENT. */

/* From a Cookie header value: "a=1; b=2". */
int wp_lb_key_cookie(const char *cookie, size_t len, const char *name, size_t nlen,
                     const char **val, size_t *vlen);

/* From a request-target's query: "/p?a=1&b=2#f" (raw, not percent-decoded). */
int wp_lb_key_query(const char *target, size_t len, const char *name, size_t nlen, const char **val,
                    size_t *vlen);

#endif /* WP_LB_H */
