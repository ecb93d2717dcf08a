/*
 * The HTTP/1.1 proxy's upstream connections (h1proxy_int.h): taken from
 * and given back to the core's pool (uppool.h), opened through the host's
 * ops, and held to their cluster's DestinationRule connection pool
 * (cbreak.h): a new connection only within the core's share of
 * maxConnections (an idle one of the cluster to another endpoint closed to
 * make room), connectTimeout, idleTimeout and maxRequestsPerConnection
 * stamped on the connection when it opens. Sessions (h1proxy.c) decide
 * what to do when none can be had: wait, retry or answer.
 */
#include "h1proxy_int.h"
#include "wp/counters.h"

void wp_h1p_up_free(struct wp_h1p_core *c, struct wp_h1p_up *up)
{
	if (up->cb) {
		wp_cb_conn_close(up->cb);
		c->cb_kick |= up->cb->wait_head != NULL;
	}
	up->cb = NULL;
	up->n_req = up->max_req = 0;
	up->connect_deadline_ms = 0;
	wp_uppool_free(&c->pool, &up->pe);
	up->io = NULL;
	up->sess = up->origin = NULL;
	up->mirror = NULL;
	up->reused = up->shut_wr = false;
}

/* Closes an idle or bound upstream (the host closes its transport). */
void wp_h1p_up_destroy(struct wp_h1p_core *c, struct wp_h1p_up *up, bool host_close)
{
	if (host_close)
		c->ops->up_close(c->host, up);
	wp_h1p_up_free(c, up);
}

/* Closes an upstream with no exchange in flight (idle, or its last one
 * ended cleanly): gracefully (FIN) when the host can, the backend must not
 * read it as a failure. */
void wp_h1p_up_retire(struct wp_h1p_core *c, struct wp_h1p_up *up)
{
	if (!c->ops->up_finish) {
		wp_h1p_up_destroy(c, up, true);
		return;
	}
	c->ops->up_finish(c->host, up);
	wp_h1p_up_destroy(c, up, false);
}

/* The pool evicts, expires or drains an idle connection. */
static void pool_retire(struct wp_uppool_ent *e)
{
	struct wp_h1p_up *up = h1up_of(e);

	wp_h1p_up_retire(up->core, up);
}

/* One request at a time per connection: no limit callback. */
const struct wp_uppool_ops wp_h1p_pool_ops = {.retire = pool_retire};

/* connectTimeout: a connection still connecting at its deadline fails as
 * a connect failure (retried on another endpoint within the rule's budget). */
void wp_h1p_connect_timeouts(struct wp_h1p_core *c, uint64_t now_ms)
{
	for (uint32_t i = 0; i < c->cfg.max_upstreams; i++) {
		struct wp_h1p_up *up = &c->ups[i];
		struct wp_h1p_sess *s = up->sess;

		if (up->pe.state != WP_UPPOOL_BUSY || up->pe.ready || !up->connect_deadline_ms ||
		    now_ms < up->connect_deadline_ms)
			continue;
		wp_ctr_inc(c->ctr, WP_CTR_L7_CB_CONNECT_TIMEOUT);
		c->ops->up_close(c->host, up);
		wp_h1p_up_failed(up);
		if (s && c->ops->wake)
			c->ops->wake(c->host, s);
	}
}

/* A new connection to <ep> of <cl> for session <s>'s request, or for its
 * mirror <m> (then bound to no session). Evicts the least recently used
 * idle connection when no object is free. NULL (counted) when none can be
 * had. */
struct wp_h1p_up *wp_h1p_up_open_new(struct wp_h1p_core *c, struct wp_h1p_sess *s,
                                     struct wp_h1p_mirror *m, const struct wp_route_cluster *cl,
                                     const struct wp_snap_endpoint *ep)
{
	bool evicted;
	struct wp_h1p_up *up = h1up_of(wp_uppool_open(&c->pool, ep, 0, c->now_ms, NULL, &evicted));

	if (evicted)
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_IDLE_EVICTED);
	if (!up) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_NO_UPSTREAM);
		return NULL;
	}
	up->sess = m ? NULL : s;
	up->origin = s;
	up->mirror = m;
	up->keepalive = cl->pool.keepalive;
	if (c->ops->up_open(c->host, up, ep) != 0) {
		wp_h1p_up_free(c, up);
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_CONNECT_FAILED);
		return NULL;
	}
	wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_UP_NEW);
	return up;
}

static bool counted_in(const struct wp_uppool_ent *e, void *clu)
{
	return h1up_of((struct wp_uppool_ent *)(uintptr_t)e)->cb == clu;
}

/* An upstream to <ep> of <cl> for <s>: the most recently idled matching
 * one, else a new one within the core's share of the cluster's
 * maxConnections (an idle connection of the cluster to another endpoint is
 * closed to make room). NULL when none can be had (counted), *full when
 * the cluster's limit is why. */
struct wp_h1p_up *wp_h1p_up_get(struct wp_h1p_sess *s, const struct wp_route_cluster *cl,
                                const struct wp_snap_endpoint *ep, bool *full)
{
	struct wp_h1p_core *c = s->core;
	struct wp_h1p_up *up = h1up_of(wp_uppool_get(&c->pool, ep, 0));

	*full = false;
	if (up) {
		up->reused = true;
		up->sess = s;
		up->origin = s;
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_UP_REUSED);
		return up;
	}
	if (!wp_cb_conn_room(&c->cb, s->cbk, cl) &&
	    !wp_uppool_retire_if(&c->pool, counted_in, s->cbk)) {
		*full = true;
		return NULL;
	}
	up = wp_h1p_up_open_new(c, s, NULL, cl, ep);
	if (up) {
		up->cb = s->cbk;
		wp_cb_conn_open(up->cb);
		up->max_req = cl->pool.max_req_per_conn;
		up->pe.idle_ms = cl->pool.idle_timeout_ms;
		if (cl->pool.connect_timeout_ms)
			up->connect_deadline_ms =
			        wp_deadline_ms(c->now_ms, cl->pool.connect_timeout_ms);
	}
	return up;
}

/* For a request that waited: an idle connection its cluster freed, if its
 * endpoint is still one of <cl>'s (*i: which); else NULL. */
struct wp_h1p_up *wp_h1p_up_take_freed(struct wp_h1p_sess *s, const struct wp_route_cluster *cl,
                                       int *i)
{
	struct wp_h1p_core *c = s->core;
	struct wp_h1p_up *up = h1up_of(wp_uppool_take_if(&c->pool, counted_in, s->cbk));

	if (!up)
		return NULL;
	for (uint32_t k = 0; k < cl->n_endpoints; k++)
		if (wp_uppool_same_ep(&up->pe, &cl->endpoints[k])) {
			*i = (int)k;
			up->reused = true;
			up->sess = s;
			up->origin = s;
			wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_UP_REUSED);
			return up;
		}
	wp_h1p_up_retire(c, up); /* the endpoint left the cluster */
	return NULL;
}

/* The exchange on <up> ended cleanly: keep it idle, or close it when the
 * endpoint already has enough idle connections (or it never connected). */
void wp_h1p_up_release(struct wp_h1p_core *c, struct wp_h1p_up *up)
{
	if (!up->pe.ready ||
	    !wp_uppool_idle(&c->pool, &up->pe, c->cfg.max_idle_per_ep, c->now_ms)) {
		wp_h1p_up_retire(c, up);
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_IDLE_OVER_LIMIT);
		return;
	}
	up->sess = NULL;
	up->reused = false;
	c->cb_kick |= up->cb && up->cb->wait_head;
}
