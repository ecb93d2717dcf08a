/*
 * The h2c / gRPC proxy's retries beyond connect failures and refused
 * streams (h2proxy_int.h; the decision is dp/l7/retry.c, shared with the
 * HTTP/1.1 proxy). On an h2c upstream, a stream whose rule can retry after
 * bytes went out is held: its request ring (qb) is not consumed as the
 * upstream takes the body, only <qsent> moves, and the client's window
 * reopens only when the hold ends. The hold ends when a response head
 * goes downstream, or when the client has sent a whole window (the
 * proxy's SETTINGS_INITIAL_WINDOW_SIZE, 65535 bytes by default) before its
 * request ended: it then streams as before and is not retried (counted).
 * A retried try's
 * upstream stream is cancelled (RST_STREAM CANCEL, its response dropped);
 * after the jittered backoff (wp_h2p_core_clock(), on the worker's clock)
 * the request block goes out again with the next x-envoy-attempt-count,
 * to a pick that avoids the endpoints that failed it, and the held body
 * from its first byte. Streams on HTTP/1.1 upstreams (h2c clients on
 * `http` ports) are held the same way: the HTTP/1.1 client codec
 * (h2p_upstream.c) takes the body through wp_h2p_qb_take() and decides on
 * the response head before it goes downstream; a retried try's connection
 * is closed (the message cannot be finished), the replay writes the head
 * and the held body again on another connection.
 */
#include <stdio.h>
#include <string.h>

#include "h2proxy_int.h"
#include "wp/counters.h"

#define ANY_RESET (WP_ROUTE_RETRY_RESET | WP_ROUTE_RETRY_5XX | WP_ROUTE_RETRY_GATEWAY_ERROR)

void wp_h2p_retry_begin(struct wp_h2p_strm *t, const struct wp_route_retry *p)
{
	uint16_t cap = t->req.max + OUT_EXTRA;

	t->rpol = *p;
	t->retries_left = p->attempts;
	/* the connect-failure / refused-stream retries of h2proxy.c test these
	 * bits: reset, 5xx and gateway-error cover them, as in Envoy */
	t->retry_on = p->on;
	if (p->on & ANY_RESET)
		t->retry_on |= WP_ROUTE_RETRY_CONNECT_FAILURE | WP_ROUTE_RETRY_REFUSED_STREAM;
	t->hold = wp_retry_needs_hold(p);
	t->qsent = 0;
	t->attempt = 1;
	t->backoff_until = 0;
	memcpy(t->acnt, "1", 2);
	if (t->n_onv < cap)
		nv_set(&t->onv[t->n_onv++], "x-envoy-attempt-count", 21, t->acnt, 1);
}

size_t wp_h2p_qb_take(struct wp_h2p_strm *t, uint8_t *buf, size_t len)
{
	struct ring *q = &t->qb;
	size_t n, k, at;

	if (t->hold && !t->mirror && q->len >= t->core->cfg.window && !t->req_eof) {
		/* the client may send no more before its window reopens: the
		 * request outgrows the hold, no replay any more */
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_RETRY_BODY_TOO_BIG);
		wp_h2p_retry_release(t);
		t->retries_left = 0;
	}
	if (!t->hold || t->mirror) {
		n = ring_get(q, buf, len);
		if (n > 0 && t->sess) {
			(void)nghttp2_session_consume(t->sess->ng, t->down_sid, n);
			wp_h2p_wake_sess(t->sess);
		}
		return n;
	}
	/* held: copied from qsent on, nothing leaves the ring */
	n = WP_MIN(len, (size_t)(q->len - t->qsent));
	at = (q->head + t->qsent) % q->cap;
	k = WP_MIN(n, (size_t)(q->cap - at));
	memcpy(buf, q->p + at, k);
	memcpy(buf + k, q->p, n - k);
	t->qsent += (uint32_t)n;
	return n;
}

void wp_h2p_retry_release(struct wp_h2p_strm *t)
{
	struct ring *q = &t->qb;
	uint32_t n = t->qsent;

	if (!t->hold)
		return;
	t->hold = false;
	t->qsent = 0;
	if (n == 0)
		return;
	q->head = (q->head + n) % q->cap;
	q->len -= n;
	if (q->len == 0)
		q->head = 0;
	if (t->sess) {
		(void)nghttp2_session_consume(t->sess->ng, t->down_sid, n);
		wp_h2p_wake_sess(t->sess);
	}
}

/* Whether a failure of <t>'s try is retried now (counted when not). */
static bool decide(struct wp_h2p_strm *t, bool on)
{
	struct wp_h2p_core *c = t->core;
	struct wp_h2p_sess *s = t->sess;

	if (!on || t->rpol.attempts == 0 || !s || t->local || t->head_sent || t->mirror)
		return false;
	if (!t->hold) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_RETRY_NOT_HELD);
		return false;
	}
	if (t->retries_left == 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_RETRY_EXHAUSTED);
		t->rec.flags |= WP_PIPE_F(URX);
		return false;
	}
	return s->routes && s->routes == t->pick_table && t->pick_cluster < s->routes->n_clusters &&
	       wp_h2p_cb_retry(t, &s->routes->clusters[t->pick_cluster]);
}

/* Drops the try (its upstream stream cancelled) and starts the backoff. */
static void schedule(struct wp_h2p_strm *t, enum wp_ctr ctr)
{
	struct wp_h2p_core *c = t->core;

	if (t->up) {
		wp_uppool_tried_add(&t->failed, &t->up->pe);
		wp_h2p_strm_cancel_up(t, NGHTTP2_CANCEL);
	}
	wp_lb_cache_end(c->lbc, &t->act);
	hb_reset(&t->resp);
	t->resp_eof = false;
	t->retries_left--;
	t->retried = true;
	t->qsent = 0;
	t->up_sent = 0;
	t->try_deadline_ms = 0;
	wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_RETRY);
	wp_ctr_inc(c->ctr, ctr);
	t->backoff_until = c->now_ms + wp_retry_backoff_ms(&t->rpol, t->attempt, &c->rrng) + 1;
	c->n_backoff++;
}

bool wp_h2p_retry_head(struct wp_h2p_strm *t)
{
	const nghttp2_nv *st = hb_find(&t->resp, 0, t->resp.n, ":status");
	const nghttp2_nv *g = (t->rpol.on & WP_RETRY_GRPC_BITS)
	                              ? hb_find(&t->resp, 0, t->resp.n, "grpc-status")
	                              : NULL;
	uint16_t status = 0;
	int gs = g ? wp_retry_grpc_status((const char *)g->value, (uint32_t)g->valuelen) : -1;

	if (t->rpol.attempts == 0 || !st || st->valuelen != 3)
		return false;
	for (int i = 0; i < 3; i++)
		status = (uint16_t)(status * 10 + (st->value[i] - '0'));
	if (!decide(t, wp_retry_on_status(&t->rpol, status, gs)))
		return false;
	wp_lb_cache_result(t->core->lbc, &t->act, status); /* outlier detection sees every try */
	schedule(t, WP_CTR_L7_H2P_RETRY_STATUS);
	return true;
}

bool wp_h2p_retry_fail(struct wp_h2p_strm *t, enum wp_retry_ev ev)
{
	if (!decide(t, wp_retry_on_event(&t->rpol, ev)))
		return false;
	schedule(t, ev == WP_RETRY_EV_TIMEOUT ? WP_CTR_L7_H2P_RETRY_TIMEOUT
	                                      : WP_CTR_L7_H2P_RETRY_RESET);
	return true;
}

/* The backoff of <t> ended: the block goes out again, or 503. */
static void fire(struct wp_h2p_strm *t)
{
	struct wp_h2p_sess *s = t->sess;
	int k;

	wp_h2p_retry_unwait(t);
	if (!s || t->local || t->head_sent)
		return;
	if (!s->routes || s->routes != t->pick_table || t->pick_cluster >= s->routes->n_clusters) {
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_RETRY_LOST);
		t->rec.flags |= WP_PIPE_F(UF);
		wp_h2p_strm_local(t, 503, NULL, 0);
		return;
	}
	t->attempt++;
	k = snprintf(t->acnt, sizeof(t->acnt), "%u", (unsigned)t->attempt);
	for (uint16_t i = 0; i < t->n_onv; i++)
		if (t->onv[i].value == (uint8_t *)t->acnt)
			t->onv[i].valuelen = (size_t)k;
	if (wp_h2p_strm_dispatch(t, &s->routes->clusters[t->pick_cluster], true) != 0) {
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_RETRY_LOST);
		wp_h2p_strm_local(t, 503, NULL, 0);
	}
	wp_h2p_wake_sess(s);
}

void wp_h2p_retry_unwait(struct wp_h2p_strm *t)
{
	if (!t->backoff_until)
		return;
	t->backoff_until = 0;
	t->core->n_backoff--;
}

void wp_h2p_retry_clock(struct wp_h2p_core *c, uint64_t now_ms)
{
	for (uint32_t i = 0; c->n_backoff && i < c->cfg.max_streams; i++) {
		struct wp_h2p_strm *t = &c->strms[i];

		if (t->backoff_until && now_ms >= t->backoff_until)
			fire(t);
	}
}
