/*
 * The HTTP/1.1 proxy's retries (h1proxy_int.h; the decision itself is
 * dp/l7/retry.c, shared with the h2c proxy). A request whose rule can
 * retry after bytes went out (wp_retry_needs_hold) is held: its upstream
 * buffer (upb: the rewritten head, then the body as sent) is not consumed
 * as the upstream takes it, only <upb_sent> moves, so a retry replays it
 * from the first byte. The hold ends when the response head goes to the
 * client (nothing is retried after that), or when the request outgrows
 * the buffer (then it streams as before and is not retried, counted). A
 * retry drops the try's connection (closed: the discarded response's body
 * is never read), waits its jittered backoff (the session is on the core's
 * backoff count; wp_h1p_core_clock() fires it on the worker's clock, at
 * millisecond precision), then picks again avoiding the endpoints that
 * failed it (Istio's previous_hosts) and sends the head again with the
 * next x-envoy-attempt-count.
 */
#include <stdio.h>
#include <string.h>

#include "h1proxy_int.h"
#include "wp/counters.h"
#include "wp/snapshot_types.h"

#define ACNT_HDR "x-envoy-attempt-count: "

void wp_h1p_retry_begin(struct wp_h1p_sess *s, const struct wp_route_retry *p)
{
	s->rpol = *p;
	s->retries_left = p->attempts;
	s->hold = wp_retry_needs_hold(p);
	s->upb_sent = 0;
	s->attempt = 1;
	s->retry_flags = 0;
	s->failed.n = 0;
	s->retried = false;
}

bool wp_h1p_retry_head(struct wp_h1p_sess *s)
{
	static const char tail[] = ACNT_HDR "1\r\n\r\n";

	/* the head just written ends upb with its blank line: the field goes
	 * before it */
	if (s->upb.len < 4 || s->upb.cap - s->upb.off - s->upb.len < sizeof(tail) - 1)
		return false;
	s->upb.len -= 2;
	memcpy(s->upb.p + s->upb.off + s->upb.len, tail, sizeof(tail) - 1);
	s->acnt_off = s->upb.off + s->upb.len + (uint32_t)strlen(ACNT_HDR);
	s->acnt_len = 1;
	s->upb.len += (uint32_t)sizeof(tail) - 1;
	return true;
}

/* The head in upb (at its start: held, or nothing sent yet) gets attempt
 * number <n> (its digits may grow). */
static bool set_attempt(struct wp_h1p_sess *s, uint16_t n)
{
	char d[8];
	int k = snprintf(d, sizeof(d), "%u", (unsigned)n);
	uint32_t end = s->acnt_off + s->acnt_len;

	if (k <= 0 || s->upb.off != 0 || (uint32_t)k > s->acnt_len + (s->upb.cap - s->upb.len))
		return false;
	if ((uint32_t)k != s->acnt_len) {
		memmove(s->upb.p + s->acnt_off + k, s->upb.p + end, s->upb.len - end);
		s->upb.len = s->upb.len + (uint32_t)k - s->acnt_len;
		s->acnt_len = (uint8_t)k;
	}
	memcpy(s->upb.p + s->acnt_off, d, (size_t)k);
	return true;
}

bool wp_h1p_retry_next_attempt(struct wp_h1p_sess *s)
{
	if (!set_attempt(s, (uint16_t)(s->attempt + 1)))
		return false;
	s->attempt++;
	return true;
}

void wp_h1p_retry_release(struct wp_h1p_sess *s)
{
	if (!s->hold)
		return;
	s->hold = false;
	s->upb.off += s->upb_sent;
	s->upb.len -= s->upb_sent;
	if (s->upb.len == 0)
		s->upb.off = 0;
	s->upb_sent = 0;
}

void wp_h1p_retry_outgrown(struct wp_h1p_sess *s)
{
	wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_RETRY_BODY_TOO_BIG);
	wp_h1p_retry_release(s); /* no replay any more: no retry (not even a connect failure's) */
	s->retries_left = 0;
}

enum wp_h1p_retry_verdict wp_h1p_retry_decide(struct wp_h1p_sess *s, enum wp_retry_ev ev,
                                              uint16_t status, int grpc)
{
	struct wp_h1p_core *c = s->core;
	bool on = status ? wp_retry_on_status(&s->rpol, status, grpc)
	                 : wp_retry_on_event(&s->rpol, ev);

	if (!on || s->rpol.attempts == 0)
		return WP_H1P_RETRY_NO;
	if (!s->hold) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_RETRY_NOT_HELD);
		return WP_H1P_RETRY_NO;
	}
	if (s->retries_left == 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_RETRY_EXHAUSTED);
		s->retry_flags |= WP_PIPE_F(URX);
		return WP_H1P_RETRY_NO;
	}
	return WP_H1P_RETRY_YES;
}

void wp_h1p_retry_schedule(struct wp_h1p_sess *s, enum wp_ctr ctr)
{
	struct wp_h1p_core *c = s->core;
	struct wp_h1p_up *up = s->up;
	uint32_t wait;

	if (up) {
		wp_lb_cache_end(c->lbc, &s->act);
		wp_uppool_tried_add(&s->failed, &up->pe);
		s->up = NULL;
		up->sess = NULL;
		wp_h1p_up_destroy(c, up, true);
	}
	s->retries_left--;
	s->retried = true;
	s->upb_sent = 0;
	s->try_deadline_ms = 0;
	wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_RETRY);
	wp_ctr_inc(c->ctr, ctr);
	wait = wp_retry_backoff_ms(&s->rpol, s->attempt, &c->rrng);
	s->backoff_until = c->now_ms + wait + 1; /* never 0: 0 is "not waiting" */
	c->n_backoff++;
}

void wp_h1p_retry_unwait(struct wp_h1p_sess *s)
{
	if (!s->backoff_until)
		return;
	s->backoff_until = 0;
	s->core->n_backoff--;
}

uint16_t wp_h1p_retry_fire(struct wp_h1p_sess *s)
{
	struct wp_h1p_core *c = s->core;
	const struct wp_route_cluster *cl;
	bool full;
	int i;

	wp_h1p_retry_unwait(s);
	if (c->ops->refresh)
		c->ops->refresh(c->host, s);
	if (!s->routes || s->routes != s->pick_table || s->pick_cluster >= s->routes->n_clusters) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_RETRY_LOST);
		return WP_PIPE_F(UF); /* the snapshot moved on: its cluster is gone */
	}
	cl = &s->routes->clusters[s->pick_cluster];
	i = wp_uppool_pick(cl, c->lbc, s->pick_hash, s->pick_has_hash, &s->failed);
	if (i < 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_RETRY_LOST);
		return WP_PIPE_F(UH);
	}
	wp_pipe_rec_dest(s->conn, &s->rec, cl, &cl->endpoints[i]);
	s->up = wp_h1p_up_get(s, cl, &cl->endpoints[i], &full);
	if (!s->up || !wp_h1p_retry_next_attempt(s) ||
	    wp_http1_parser_init(&s->rp, HTTP_RESPONSE, &c->cfg.lim, s->rp_arena, s->arena_size,
	                         c->ctr)) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_RETRY_LOST);
		return full ? WP_PIPE_F(UO) : WP_PIPE_F(UF);
	}
	wp_http1_parser_expect_response(&s->rp, s->req.method);
	wp_lb_cache_begin(c->lbc, cl->lb, i, &s->act);
	s->up->n_req++;
	if (s->try_timeout_ms)
		s->try_deadline_ms = wp_deadline_ms(c->now_ms, s->try_timeout_ms);
	return 0;
}
