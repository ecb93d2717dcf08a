/*
 * The per-core upstream connection pool both L7 proxies use (h1proxy.c
 * for HTTP/1.1 sessions, h2p_upstream.c for the h2c / gRPC proxy's h2c and
 * HTTP/1.1 upstreams): which connection object a request goes out on, and
 * which ones are kept, evicted or expired. The proxies keep what their
 * protocol needs (parsers, nghttp2 sessions, the host's transport handle);
 * this module keeps the bookkeeping they had each written for themselves.
 *
 * Ownership: each proxy allocates its array of upstream objects at start
 * and embeds one struct wp_uppool_ent in each; wp_uppool_init() is given
 * that array (the first entry and the stride between two), so the pool
 * allocates nothing and hands back entries the owner turns into its own
 * object (container_of). Closing a connection stays the owner's: the pool
 * calls ops->retire for an idle one it evicts (no entry free for a new
 * connection), expires or drains; after a false wp_uppool_idle() or on
 * any error the owner closes it itself. Either way the owner closes its
 * transport and gives the entry back with wp_uppool_free().
 *
 * An entry is FREE (free list), BUSY (handed out; in the busy list) or IDLE
 * (in the LRU: least recently idled at the head). Endpoints match by
 * address family and address, port, and whether the connection is HBONE
 * (ambient), plus an owner-defined kind (the h2c proxy keeps h2c and
 * HTTP/1.1 connections in one pool). Connections carrying one request at a
 * time (limit == NULL) are only ever taken from the idle list; multiplexed
 * ones (h2c) are shared while busy: the owner counts its users in
 * e->active and ops->limit says how many the entry may carry now (0: no
 * more, e.g. after GOAWAY), so a busy entry with spare capacity is handed
 * out again, connected ones first, then the fullest (fewer connections).
 *
 * Connect-failure retries: struct wp_uppool_tried remembers the endpoints
 * that failed one request, wp_uppool_pick() re-picks from the cluster's
 * load balancer to avoid them (Istio's previous_hosts predicate).
 *
 * Nothing here allocates, locks or counts: one pool per core and proxy,
 * the callers count the outcomes in their own counter tables.
 */
#ifndef WP_DP_L7_UPPOOL_H
#define WP_DP_L7_UPPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lb_cache.h"
#include "wp/addr_types.h"
#include "wp/route.h"
#include "wp/snapshot_types.h"

enum wp_uppool_state {
	WP_UPPOOL_FREE = 0,
	WP_UPPOOL_BUSY, /* handed out: the owner uses it (or is closing it) */
	WP_UPPOOL_IDLE, /* connected, kept for reuse */
};

/* The pool's part of an upstream object, embedded in the owner's. */
struct wp_uppool_ent {
	struct wp_uppool_ent *prev, *next; /* free list (next), busy list or idle LRU */
	struct wp_addr addr;               /* the endpoint: address, port, HBONE or not */
	uint16_t port;
	bool ambient;
	uint8_t kind;     /* the owner's kind of connection (matched too) */
	uint8_t state;    /* enum wp_uppool_state */
	bool ready;       /* connected (the owner sets it): preferred when sharing */
	uint32_t active;  /* users (streams) on it, kept by the owner of a shared one */
	uint32_t idle_ms; /* its idle timeout (DestinationRule idleTimeout); 0: the pool's */
	uint64_t idle_since_ms;
};

/* What the owner does for the pool. */
struct wp_uppool_ops {
	/* Multiplexed connections: how many users <e> may carry now (0: none
	 * more). NULL: one user at a time, a busy entry is never shared. */
	uint32_t (*limit)(const struct wp_uppool_ent *e);
	/* Close idle <e> (gracefully where the protocol allows: nothing is in
	 * flight) and wp_uppool_free() it before returning. Never re-enters
	 * the pool otherwise. */
	void (*retire)(struct wp_uppool_ent *e);
};

struct wp_uppool {
	uint8_t *base; /* entry i is at base + i * stride */
	size_t stride;
	uint32_t n;
	uint32_t idle_timeout_ms;
	const struct wp_uppool_ops *ops;
	struct wp_uppool_ent *free, *busy;
	struct wp_uppool_ent *idle_head, *idle_tail; /* LRU at the head, MRU at the tail */
	uint32_t n_busy, n_idle;
	bool draining; /* nothing is kept idle any more */
};

/* Sets up <p> over the owner's <n> entries, the first at <first> and each
 * <stride> bytes after the previous (inside the owner's objects); all free.
 * Idle entries expire after <idle_timeout_ms>. <ops> (retire required)
 * outlives the pool. */
void wp_uppool_init(struct wp_uppool *p, struct wp_uppool_ent *first, size_t stride, uint32_t n,
                    uint32_t idle_timeout_ms, const struct wp_uppool_ops *ops);

/* Entry <i> (0 .. n-1), whatever its state: for tearing a core down. */
static inline struct wp_uppool_ent *wp_uppool_at(const struct wp_uppool *p, uint32_t i)
{
	return (struct wp_uppool_ent *)(void *)(p->base + (size_t)i * p->stride);
}

/* Whether <e> is a connection to <ep>. The first four address bytes (v4
 * overlays v6) tell most endpoints apart: compared first. */
static inline bool wp_uppool_same_ep(const struct wp_uppool_ent *e,
                                     const struct wp_snap_endpoint *ep)
{
	return e->addr.v4 == ep->addr.v4 && e->port == ep->port && e->ambient == ep->ambient &&
	       e->addr.family == ep->addr.family &&
	       (ep->addr.family == WP_AF_INET || !memcmp(e->addr.v6, ep->addr.v6, 16));
}

/* A connection of <kind> to <ep> to use now, BUSY: a busy shared one with
 * room (a connected one first, then the one with most users) or, before a
 * connecting one, the most recently idled one. NULL when none: open one. */
struct wp_uppool_ent *wp_uppool_get(struct wp_uppool *p, const struct wp_snap_endpoint *ep,
                                    uint8_t kind);

/* A free entry for a new connection of <kind> to <ep>, BUSY, not ready,
 * no users, stamped <now_ms>. When none is free, the least recently used
 * idle one (of any endpoint; never <skip>, e.g. the connection whose
 * callback this is) is retired first and *evicted set. NULL when none can
 * be had (every entry busy). */
struct wp_uppool_ent *wp_uppool_open(struct wp_uppool *p, const struct wp_snap_endpoint *ep,
                                     uint8_t kind, uint64_t now_ms,
                                     const struct wp_uppool_ent *skip, bool *evicted);

/* Busy <e> has no user left and is healthy: kept idle (true), or not
 * (false: draining, or the endpoint has <max_idle> idle ones of its kind
 * already) and the caller closes and frees it. */
bool wp_uppool_idle(struct wp_uppool *p, struct wp_uppool_ent *e, uint32_t max_idle,
                    uint64_t now_ms);

/* Retires the entries idle for their idle timeout (idle_ms, else the
 * pool's) at <now_ms>; returns how many. */
unsigned wp_uppool_expire(struct wp_uppool *p, uint64_t now_ms);

/* The most recently idled entry for which <pred>(e, arg) holds, BUSY (as
 * from wp_uppool_get()); NULL when there is none. */
struct wp_uppool_ent *wp_uppool_take_if(struct wp_uppool *p,
                                        bool (*pred)(const struct wp_uppool_ent *, void *),
                                        void *arg);

/* Retires the least recently used idle entry for which <pred>(e, arg) holds
 * (e.g. one counted against a cluster at its connection limit, to make room
 * for a connection to another of its endpoints). False when there is none. */
bool wp_uppool_retire_if(struct wp_uppool *p, bool (*pred)(const struct wp_uppool_ent *, void *),
                         void *arg);

/* Neither a free entry nor an idle one to evict: no new connection. */
static inline bool wp_uppool_exhausted(const struct wp_uppool *p)
{
	return !p->free && !p->idle_head;
}

/* Shutting down: every idle entry is retired and nothing is kept idle
 * from now on. */
void wp_uppool_drain(struct wp_uppool *p);

/* <e> (busy or idle) is closed: back on the free list. */
void wp_uppool_free(struct wp_uppool *p, struct wp_uppool_ent *e);

/* Endpoints a request failed to connect to, avoided by its retries. */
#define WP_UPPOOL_TRIED       4 /* failed endpoints remembered per request */
#define WP_UPPOOL_RETRY_PICKS 5 /* picks per retry to find one not tried (Envoy's default) */

struct wp_uppool_tried {
	uint8_t n;
	struct {
		struct wp_addr addr;
		uint16_t port;
	} ep[WP_UPPOOL_TRIED];
};

/* Remembers the endpoint of <e> (beyond WP_UPPOOL_TRIED: forgotten). */
void wp_uppool_tried_add(struct wp_uppool_tried *t, const struct wp_uppool_ent *e);

/* An endpoint index of <cl> from its load balancer (per-core state in
 * <lbc>, hash key <hash> when <has_hash>); with <avoid>, re-picked up to
 * WP_UPPOOL_RETRY_PICKS times while it is one of those. -1 when the
 * balancer has none. */
int wp_uppool_pick(const struct wp_route_cluster *cl, struct wp_lb_cache *lbc, uint64_t hash,
                   bool has_hash, const struct wp_uppool_tried *avoid);

#endif /* WP_DP_L7_UPPOOL_H */
