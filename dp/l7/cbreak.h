/*
 * Circuit breaking: a core's share of the DestinationRule connection-pool
 * limits of each cluster (struct wp_route_cpool in wp/route.h), as Envoy's
 * per-cluster circuit breakers: connections open (tcp.maxConnections),
 * requests waiting for a connection (http.http1MaxPendingRequests),
 * requests in flight (http.http2MaxRequests) and retries in flight
 * (http.maxRetries). A request beyond a limit is answered 503 with
 * response flag UO and `x-envoy-overloaded: true` (wp_cb_write_overflow()).
 *
 * How cores share a limit: each of the N workers enforces
 * ceil(limit / N) on its own counts, with no atomics and no messages on the
 * hot path. The whole appliance therefore holds at most
 * N * ceil(limit / N) <= limit + N - 1 of each at once (at most limit when
 * N divides it); a core whose clients are busier than the others may refuse
 * before the appliance as a whole reaches the limit. A limit below N still
 * gives every core 1.
 *
 * Counts are keyed by the cluster's name (a 64-bit hash of
 * "outbound|PORT|SUBSET|HOST"), not by the snapshot's cluster object, so a
 * connection or request begun under one snapshot still counts under the
 * next; the limits themselves are read from the current snapshot's cluster
 * at each check. A cluster with no limit set (Istio's defaults) takes no
 * slot and costs one test per request. A full table (more limited clusters
 * on a core than slots) leaves the clusters it cannot hold unlimited
 * (counted, l7_cb_table_full).
 *
 * Owner: one struct wp_cb_core per worker and proxy kind (allocated at
 * start); slots are never freed, a slot whose counts are all zero is reused
 * for another cluster. The proxies keep a slot pointer in each upstream and
 * request they counted and call the _end/_close functions exactly once.
 */
#ifndef WP_DP_L7_CBREAK_H
#define WP_DP_L7_CBREAK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wp/route.h"

#define WP_CB_SLOTS 256 /* limited clusters per core */

/* A request waiting for a connection of its cluster (embedded in the
 * proxy's request object; FIFO per cluster). */
struct wp_cb_wait {
	struct wp_cb_wait *prev, *next;
	struct wp_cb_clu *clu; /* NULL: not waiting */
};

/* One cluster's counts on this core. */
struct wp_cb_clu {
	uint64_t key;     /* hash of the cluster name; 0: never used */
	uint32_t conns;   /* upstream connections counted (opening, busy or idle) */
	uint32_t rq;      /* requests in flight (forwarded or waiting) */
	uint32_t pending; /* requests waiting for a connection */
	uint32_t retries; /* requests that made a retry and are still in flight */
	struct wp_cb_wait *wait_head, *wait_tail;
};

struct wp_cb_core {
	uint32_t n_workers; /* the cores sharing each limit (>= 1) */
	uint64_t *ctr;
	struct wp_cb_clu slot[WP_CB_SLOTS];
};

/* Sets up <c> for <n_workers> cores (0 counts as 1), counting into <ctr>. */
void wp_cb_core_init(struct wp_cb_core *c, uint32_t n_workers, uint64_t *ctr);

/* Whether <p> limits anything wp_cb counts. */
static inline bool wp_cb_limited(const struct wp_route_cpool *p)
{
	return p->max_connections != WP_ROUTE_CPOOL_UNLIMITED ||
	       p->max_pending != WP_ROUTE_CPOOL_UNLIMITED ||
	       p->max_requests != WP_ROUTE_CPOOL_UNLIMITED ||
	       p->max_retries != WP_ROUTE_CPOOL_UNLIMITED;
}

/* This core's share of <limit>: ceil(limit / n_workers). */
static inline uint32_t wp_cb_share(const struct wp_cb_core *c, uint32_t limit)
{
	if (limit == WP_ROUTE_CPOOL_UNLIMITED)
		return limit;
	return (uint32_t)(((uint64_t)limit + c->n_workers - 1) / c->n_workers);
}

/* The slot of <cl> (found or taken), or NULL when <cl> has no limit or the
 * table is full (counted). */
struct wp_cb_clu *wp_cb_get(struct wp_cb_core *c, const struct wp_route_cluster *cl);

/* Whether slot <k> is <cl>'s (the same cluster name, in any snapshot). */
bool wp_cb_is(const struct wp_cb_clu *k, const struct wp_route_cluster *cl);

/* A request to <cl> starts: counted in flight (true), or over
 * http2MaxRequests (false: answer the overflow, counted). */
bool wp_cb_req_begin(struct wp_cb_core *c, struct wp_cb_clu *k, const struct wp_route_cluster *cl);
void wp_cb_req_end(struct wp_cb_clu *k);

/* Room for one more connection of <cl> on this core (maxConnections). */
static inline bool wp_cb_conn_room(const struct wp_cb_core *c, const struct wp_cb_clu *k,
                                   const struct wp_route_cluster *cl)
{
	return !k || k->conns < wp_cb_share(c, cl->pool.max_connections);
}

static inline void wp_cb_conn_open(struct wp_cb_clu *k)
{
	if (k)
		k->conns++;
}

static inline void wp_cb_conn_close(struct wp_cb_clu *k)
{
	if (k && k->conns > 0)
		k->conns--;
}

/* No connection can be had now: queue <w> behind the cluster's other
 * waiters (true), or the pending limit is reached (false: overflow,
 * counted). */
bool wp_cb_wait(struct wp_cb_core *c, struct wp_cb_clu *k, const struct wp_route_cluster *cl,
                struct wp_cb_wait *w);

/* <w> leaves its queue (no-op when it is not waiting). */
void wp_cb_unwait(struct wp_cb_wait *w);

/* A retry of a request to <cl>: allowed within maxRetries (true; the
 * request is counted until wp_cb_retry_end()), or not (counted). */
bool wp_cb_retry_begin(struct wp_cb_core *c, struct wp_cb_clu *k,
                       const struct wp_route_cluster *cl);
void wp_cb_retry_end(struct wp_cb_clu *k);

/* Envoy's answer to an overflow, as a whole HTTP/1.1 response: 503,
 * `x-envoy-overloaded: true`, text/plain body (not with <head_only>, the
 * answer to a HEAD request). Bytes written or -ENOSPC. */
int wp_cb_write_overflow(bool keep_alive, bool head_only, char *buf, size_t cap);

/* Its body, for the h2 proxy's own writer. */
extern const char wp_cb_overflow_body[];
#define WP_CB_OVERFLOW_BODY_LEN 81

#endif /* WP_DP_L7_CBREAK_H */
