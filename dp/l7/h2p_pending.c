/*
 * The h2c / gRPC proxy's pending streams: a stream whose cluster is at its
 * DestinationRule tcp.maxConnections (this core's share, cbreak.h) with no
 * pooled connection that has room for one more stream waits for one, as
 * Envoy's pending requests do on HTTP/1.1 and HTTP/2 upstreams alike.
 * The line is the cluster's FIFO of cbreak.c (http.http1MaxPendingRequests
 * bounds it, per-core share; beyond it the overflow answer at once).
 *
 * A waiting stream has no upstream; its request body stays in its ring.
 * It leaves the line when wp_h2p_up_acquire() finds it a connection (at
 * wp_h2p_pend_kick(), run at the end of the public calls in which a
 * connection closed or an upstream stream ended), when it is answered
 * locally (its request timeout, wp_h2p_strm_local()), or when it is freed
 * (the client reset it, its session closed: wp_h2p_strm_free()).
 */
#include "h2proxy_int.h"

bool wp_h2p_pend_join(struct wp_h2p_strm *t, struct wp_cb_clu *k, const struct wp_route_cluster *cl)
{
	struct wp_h2p_core *c = t->core;

	if (!wp_cb_wait(&c->cb, k, cl, &t->wait))
		return false;
	c->n_pend++;
	/* a per-try timeout runs from the try's start, not while waiting */
	t->try_deadline_ms = 0;
	/* a connection may have freed earlier in this call */
	c->pend_kick = true;
	return true;
}

void wp_h2p_pend_leave(struct wp_h2p_strm *t)
{
	if (!t->wait.clu)
		return;
	wp_cb_unwait(&t->wait);
	t->core->n_pend--;
}

/* The cluster <t> waits for in its session's current table (re-found by
 * name when the table changed since it was routed), or NULL. */
static const struct wp_route_cluster *pend_cluster(struct wp_h2p_strm *t)
{
	const struct wp_route_table *r = t->sess ? t->sess->routes : NULL;

	if (!r)
		return NULL;
	if (r == t->pick_table && t->pick_cluster < r->n_clusters)
		return &r->clusters[t->pick_cluster];
	for (uint32_t k = 0; k < r->n_clusters; k++)
		if (wp_cb_is(t->cbk, &r->clusters[k])) {
			t->pick_table = r;
			t->pick_cluster = k;
			return &r->clusters[k];
		}
	return NULL;
}

/* The first waiting stream <t> of its cluster tries again: false when
 * there is still no connection for it (it stays first), true when it left
 * the line (its request went out, or it was answered 503). */
static bool pend_serve(struct wp_h2p_strm *t)
{
	struct wp_h2p_core *c = t->core;
	const struct wp_route_cluster *cl = pend_cluster(t);
	int n;

	if (!cl) { /* the cluster went away meanwhile */
		wp_h2p_pend_leave(t);
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_BACKEND);
		t->rec.flags |= WP_PIPE_F(UH);
		wp_h2p_strm_local(t, 503, NULL, 0);
		return true;
	}
	n = wp_h2p_strm_dispatch(t, cl, t->failed.n > 0);
	if (t->wait.clu)
		return false;
	if (n != 0) {
		if (n == -ECONNREFUSED)
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_CONNECT_FAILED);
		wp_h2p_strm_local(t, 503, NULL, 0);
	}
	wp_h2p_wake_sess(t->sess);
	return true;
}

void wp_h2p_pend_kick(struct wp_h2p_core *c)
{
	if (!c->pend_kick || c->in_kick || c->cur_up)
		return;
	c->pend_kick = false;
	if (!c->n_pend)
		return;
	c->in_kick = true;
	for (uint32_t k = 0; k < WP_CB_SLOTS && c->n_pend; k++) {
		struct wp_cb_clu *clu = &c->cb.slot[k];

		while (clu->wait_head &&
		       pend_serve(
		               (struct wp_h2p_strm *)(void *)((char *)clu->wait_head -
		                                              offsetof(struct wp_h2p_strm, wait))))
			;
	}
	c->in_kick = false;
	wp_h2p_core_reap(c); /* (an idle connection may have been evicted) */
}
