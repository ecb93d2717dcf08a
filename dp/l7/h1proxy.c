/*
 * HTTP/1.1 proxy session (see h1proxy.h): one client connection's request
 * loop driven by the http1 codec, the route table and the per-core
 * upstream pool (uppool.h, one request per connection at a time).
 * Everything a core needs is allocated in wp_h1p_core_create(); sessions
 * recycle through a free list, upstream objects through the pool.
 *
 * Session state: the request parser runs while a request is being read
 * (REQ); once the request is complete the session waits for its response
 * (downstream input is refused so pipelined requests stay queued in the
 * host); errors queue a local response and move to CLOSING; Upgrade / CONNECT
 * accepted by the upstream moves to TUNNEL (raw bytes both ways).
 *
 * The client's bytes behind an Upgrade or CONNECT request are not taken
 * until the upstream answered, exactly like a pipelined request: the host
 * keeps them (bounded by its own buffer and the client's flow-control window:
 * backpressure). Forwarding them at once would smuggle them: a backend that
 * declines the upgrade (200 on a kept-alive connection) parses them as
 * requests the proxy never routed. A 101 (CONNECT: 2xx) switches to TUNNEL and
 * the host offers them again; any other final answer goes to the client with
 * `connection: close` and the session closes after it, so they are dropped
 * with the client connection (l7_h1p_upgrade_held / _discarded).
 *
 * Circuit breaking (cbreak.h): a request whose cluster is at its share of
 * maxConnections waits with no upstream (its head and body so far in upb,
 * the client held back by upb's room) in the cluster's queue; when one of
 * the cluster's connections goes idle or closes, cb_kick() starts the
 * waiting requests in order (the host refreshes their route table first,
 * ops->refresh, and is woken to pump them). Beyond the queue, or beyond
 * http2MaxRequests, the request gets Envoy's overflow answer (sess_overflow).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "h1proxy_int.h"
#include "wp/counters.h"
#include "wp/lb.h"
#include "wp/snapshot_types.h"
#include "wp/rand.h"

const struct wp_h1p_cfg wp_h1p_default_cfg = {
        .lim = {.max_line = 8192, .max_header_bytes = 60 * 1024, .max_headers = 100},
        .buf_size = 64 * 1024,
        .max_sessions = 256,
        .max_upstreams = 512,
        .max_idle_per_ep = 16,
        .idle_timeout_ms = 60000,
        .max_mirrors = 64,
        .mirror_timeout_ms = 30000,
        .down_idle_timeout_ms = 3600 * 1000,
};

/* ---- core --------------------------------------------------------------------------------- */

struct wp_h1p_core *wp_h1p_core_create(const struct wp_h1p_cfg *cfg, const struct wp_h1p_ops *ops,
                                       void *host, struct wp_route_core *rc, uint64_t seed,
                                       uint64_t *ctr)
{
	struct wp_h1p_core *c;
	size_t arena, per;

	if (!cfg || !ops || !ops->up_open || !ops->up_close || !rc || !ctr ||
	    cfg->max_sessions == 0 || cfg->max_upstreams == 0 || cfg->buf_size < 4096) {
		errno = EINVAL;
		return NULL;
	}
	arena = (wp_http1_arena_size(&cfg->lim) + 63) & ~(size_t)63;
	per = 2 * arena + 2 * (size_t)cfg->buf_size;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->ops = ops;
	c->host = host;
	c->rc = rc;
	c->ctr = ctr;
	wp_http_reqid_seed(&c->rng, seed);
	wp_rand_seed(&c->rrng, seed);
	wp_rand_seed(&c->fault_rng, seed ^ 0x6a09e667f3bcc909ull);
	c->sessions = calloc(cfg->max_sessions, sizeof(*c->sessions));
	c->ups = calloc(cfg->max_upstreams, sizeof(*c->ups));
	c->mem = aligned_alloc(64, per * cfg->max_sessions);
	c->lbc = wp_lb_cache_new(seed, ctr);
	if (c->lbc)
		wp_lb_cache_set_outlier(c->lbc, cfg->outlier);
	if (cfg->max_mirrors > 0) {
		c->mirrors = calloc(cfg->max_mirrors, sizeof(*c->mirrors));
		c->mir_mem = malloc((size_t)cfg->max_mirrors * cfg->buf_size);
	}
	if (!c->sessions || !c->ups || !c->mem || !c->lbc ||
	    (cfg->max_mirrors > 0 && (!c->mirrors || !c->mir_mem))) {
		free(c->mirrors);
		free(c->mir_mem);
		wp_lb_cache_free(c->lbc);
		free(c->sessions);
		free(c->ups);
		free(c->mem);
		free(c);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = cfg->max_mirrors; i-- > 0;) {
		struct wp_h1p_mirror *m = &c->mirrors[i];

		m->out.p = c->mir_mem + (size_t)cfg->buf_size * i;
		m->out.cap = cfg->buf_size;
		m->next_free = c->free_mir;
		c->free_mir = m;
	}
	for (uint32_t i = cfg->max_sessions; i-- > 0;) {
		struct wp_h1p_sess *s = &c->sessions[i];
		uint8_t *m = c->mem + per * i;

		s->core = c;
		s->arena_size = arena;
		s->rp_arena = m + arena;
		s->down.p = m + 2 * arena;
		s->down.cap = cfg->buf_size;
		s->upb.p = m + 2 * arena + cfg->buf_size;
		s->upb.cap = cfg->buf_size;
		s->next_free = c->free_sess;
		c->free_sess = s;
	}
	for (uint32_t i = 0; i < cfg->max_upstreams; i++)
		c->ups[i].core = c;
	wp_uppool_init(&c->pool, &c->ups[0].pe, sizeof(c->ups[0]), cfg->max_upstreams,
	               cfg->idle_timeout_ms, &wp_h1p_pool_ops);
	wp_cb_core_init(&c->cb, cfg->n_workers, ctr);
	return c;
}

void wp_h1p_core_destroy(struct wp_h1p_core *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->cfg.max_upstreams; i++)
		if (c->ups[i].pe.state != WP_UPPOOL_FREE)
			wp_h1p_up_destroy(c, &c->ups[i], true);
	free(c->sessions);
	free(c->ups);
	free(c->mem);
	free(c->mirrors);
	free(c->mir_mem);
	wp_lb_cache_free(c->lbc);
	free(c);
}

static void sess_timers(struct wp_h1p_sess *s, uint64_t now_ms);
static void fault_resume(struct wp_h1p_sess *s);
static void cb_kick(struct wp_h1p_core *c);

unsigned wp_h1p_core_tick(struct wp_h1p_core *c, uint64_t now_ms)
{
	unsigned n;

	c->now_ms = now_ms;
	wp_lb_cache_clock(c->lbc, now_ms);
	n = wp_uppool_expire(&c->pool, now_ms);
	wp_ctr_add(c->ctr, WP_CTR_L7_H1P_IDLE_EXPIRED, n);
	wp_h1p_connect_timeouts(c, now_ms);
	for (uint32_t i = 0; i < c->cfg.max_mirrors; i++) {
		struct wp_h1p_mirror *m = &c->mirrors[i];

		if (m->up && now_ms - m->started_ms >= c->cfg.mirror_timeout_ms) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_MIRROR_TIMEOUT);
			wp_h1p_mirror_end(c, m, true);
		}
	}
	c->fault_due = 0; /* (sess_timers() keeps the held ones') */
	for (uint32_t i = 0; i < c->cfg.max_sessions; i++)
		if (c->sessions[i].state != S_FREE)
			sess_timers(&c->sessions[i], now_ms);
	cb_kick(c);
	return n;
}

uint64_t wp_h1p_core_due(const struct wp_h1p_core *c)
{
	return c->fault_due;
}

static void retry_fire(struct wp_h1p_sess *s);
static bool retry_budget(struct wp_h1p_sess *s);

void wp_h1p_core_clock(struct wp_h1p_core *c, uint64_t now_ms)
{
	c->now_ms = now_ms;
	wp_lb_cache_clock(c->lbc, now_ms); /* ejection times */
	/* retries whose backoff ended (a walk only while some wait) */
	for (uint32_t i = 0; c->n_backoff && i < c->cfg.max_sessions; i++)
		if (c->sessions[i].backoff_until && now_ms >= c->sessions[i].backoff_until)
			retry_fire(&c->sessions[i]);
}

void wp_h1p_core_drain(struct wp_h1p_core *c)
{
	wp_uppool_drain(&c->pool); /* and responses close their connection */
}

uint32_t wp_h1p_core_idle(const struct wp_h1p_core *c)
{
	return c->pool.n_idle;
}

uint32_t wp_h1p_core_busy(const struct wp_h1p_core *c)
{
	return c->pool.n_busy;
}

/* ---- sessions ----------------------------------------------------------------------------- */

struct wp_h1p_sess *wp_h1p_sess_open(struct wp_h1p_core *c, const struct wp_route_table *routes,
                                     const struct wp_addr *src, const char *authority,
                                     size_t authority_len)
{
	struct wp_h1p_sess *s = c->free_sess;
	void *qa;

	if (!s) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_NO_SESSION);
		return NULL;
	}
	c->free_sess = s->next_free;
	qa = (uint8_t *)s->rp_arena - s->arena_size;
	if (wp_http1_parser_init(&s->qp, HTTP_REQUEST, &c->cfg.lim, qa, s->arena_size, c->ctr)) {
		s->next_free = c->free_sess;
		c->free_sess = s;
		return NULL;
	}
	s->next_free = NULL;
	s->routes = routes;
	s->src = src;
	s->authority = authority;
	s->authority_len = authority_len;
	s->state = S_REQ;
	s->req_active = s->req_done = s->resp_started = s->resp_done = false;
	s->hold_head = s->close_after = s->down_eof = s->down_shut = s->discard = false;
	s->conn = NULL;
	s->up = NULL;
	s->app = NULL;
	s->act.t = NULL;
	s->has_rmods = false;
	s->n_mir = 0;
	s->deadline_ms = s->try_deadline_ms = 0;
	s->last_ms = c->now_ms;
	s->down.off = s->down.len = 0;
	s->upb.off = s->upb.len = 0;
	s->rec.active = false;
	s->down_total = 0;
	s->fault_until_ms = 0;
	return s;
}

/* How a session lets go of its upstream. */
enum up_end {
	UP_ABORT, /* in the middle of an exchange: closed at once */
	UP_CLOSE, /* its exchange is complete: closed gracefully */
	UP_REUSE, /* its exchange is complete and both sides keep alive: pooled */
};

/* Detaches the session's upstream (request bytes still queued for it make
 * any end an abort). */
static void sess_drop_up(struct wp_h1p_sess *s, enum up_end how)
{
	struct wp_h1p_up *up = s->up;

	wp_lb_cache_end(s->core->lbc, &s->act);
	wp_h1p_mirrors_abort(s);
	wp_h1p_retry_unwait(s);
	wp_h1p_retry_release(s);
	s->deadline_ms = s->try_deadline_ms = 0;
	wp_cb_unwait(&s->wait);
	if (s->cbk) { /* the request ends */
		wp_cb_req_end(s->cbk);
		if (s->cb_retry)
			wp_cb_retry_end(s->cbk);
		s->cbk = NULL;
	}
	s->cb_retry = false;
	if (up) {
		s->up = NULL;
		up->sess = NULL;
		if (how == UP_REUSE && s->upb.len == 0)
			wp_h1p_up_release(s->core, up);
		else if (how == UP_CLOSE && s->upb.len == 0)
			wp_h1p_up_retire(s->core, up);
		else
			wp_h1p_up_destroy(s->core, up, true);
		s->upb.off = s->upb.len = 0;
	}
	cb_kick(s->core); /* a connection, or a place, may have been freed */
}

/* The completion stage for the current exchange (once; no-op when none). */
static void rec_finish(struct wp_h1p_sess *s, uint16_t flags)
{
	struct wp_pipe_log_view v;

	if (!s->rec.active)
		return;
	s->rec.flags |= flags | s->retry_flags;
	s->retry_flags = 0;
	s->rec.resp_bytes = s->down_total + s->down.len - s->rec_base;
	if (!wp_pipe_wants_view(s->conn, &s->rec)) {
		wp_pipe_rec_end(s->conn, &s->rec, NULL);
		return;
	}
	/* the access log's view of the request head (still in the parser's arena) */
	wp_pipe_view_http1(&v, &s->req, s->authority, s->authority_len,
	                   s->reqid_gen ? s->reqid : NULL);
	wp_pipe_rec_end(s->conn, &s->rec, &v);
}

void wp_h1p_sess_close(struct wp_h1p_sess *s)
{
	struct wp_h1p_core *c = s->core;

	if (s->fault_until_ms) { /* held by a fault delay: nothing else holds it */
		wp_ctr_inc(c->ctr, WP_CTR_L7_FAULT_DELAY_ABANDONED);
		s->fault_until_ms = 0;
	}
	/* still open: the client went away (or a tunnel ended) */
	rec_finish(s, s->state == S_REQ && s->req_active && !s->resp_done ? WP_PIPE_F(DC) : 0);
	sess_drop_up(s, UP_ABORT);
	s->state = S_FREE;
	s->next_free = c->free_sess;
	c->free_sess = s;
}

/* Ends the session's use of the client connection: queue <status> (if no
 * response byte was sent yet and status != 0) with Envoy's text for the
 * cause (wp_pipe_local_text(), as the h2c proxy answers) or, where Envoy
 * has none, the status line's; stop reading, close after. The exchange is
 * recorded with <flags>. */
static void sess_fail_f(struct wp_h1p_sess *s, uint16_t status, uint16_t flags)
{
	if (status && !s->resp_started) {
		const char *txt = wp_pipe_local_text(status, flags);
		char *o = (char *)ob_tail(&s->down);
		bool head = s->req_active && s->req.method == HTTP_HEAD;
		int n = txt ? wp_http1_write_local(status, txt, strlen(txt), false, head, o,
		                                   ob_room(&s->down))
		            : wp_http1_write_error(status, head, o, ob_room(&s->down));

		if (n > 0) {
			s->down.len += (uint32_t)n;
			s->rec.status = status;
		}
	}
	sess_drop_up(s, UP_ABORT);
	s->state = S_CLOSING;
	rec_finish(s, flags);
}

static void sess_fail(struct wp_h1p_sess *s, uint16_t status)
{
	sess_fail_f(s, status, 0);
}

/* A local answer (404, 503, redirect ...) queued as the whole response. */
static void sess_local_f(struct wp_h1p_sess *s, uint16_t status, uint16_t flags)
{
	sess_fail_f(s, status, flags);
	s->resp_started = true;
}

static void sess_local(struct wp_h1p_sess *s, uint16_t status)
{
	sess_local_f(s, status, 0);
}

/* wp_h1p_core_tick(): the request's deadlines, the client's idle time. */
static void sess_timers(struct wp_h1p_sess *s, uint64_t now_ms)
{
	struct wp_h1p_core *c = s->core;

	if (s->state != S_REQ)
		return;
	if (s->fault_until_ms) {
		if (now_ms >= s->fault_until_ms)
			fault_resume(s);
		else
			wp_fault_due(&c->fault_due, s->fault_until_ms);
		return;
	}
	if (s->req_active && !s->resp_done) {
		if ((!s->deadline_ms || now_ms < s->deadline_ms) &&
		    (!s->try_deadline_ms || now_ms < s->try_deadline_ms))
			return;
		if (!s->resp_started)
			wp_lb_cache_result(c->lbc, &s->act, WP_LB_RES_LOCAL_FAIL);
		/* the try's own deadline, within the request's: retried when
		 * the policy retries timeouts and tries are left */
		if (s->try_deadline_ms && now_ms >= s->try_deadline_ms && !s->resp_started &&
		    (!s->deadline_ms || now_ms < s->deadline_ms) &&
		    wp_h1p_retry_decide(s, WP_RETRY_EV_TIMEOUT, 0, -1) == WP_H1P_RETRY_YES &&
		    retry_budget(s)) {
			wp_h1p_retry_schedule(s, WP_CTR_L7_H1P_RETRY_TIMEOUT);
			return;
		}
		/* Envoy: 504 if nothing was sent yet, else the stream is cut */
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_TIMEOUT);
		sess_fail_f(s, s->resp_started ? 0 : 504, WP_PIPE_F(UT));
		s->resp_started = true;
	} else if (!s->req_active && c->cfg.down_idle_timeout_ms &&
	           now_ms - s->last_ms >= c->cfg.down_idle_timeout_ms) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_DOWN_IDLE_TIMEOUT);
		s->state = S_CLOSING;
	} else {
		return;
	}
	if (c->ops->wake)
		c->ops->wake(c->host, s);
}

static int copy_rmods(struct wp_h1p_sess *s, const struct wp_http_hdr_mods *m)
{
	s->has_rmods = false;
	if (m->n_set + m->n_add + m->n_remove == 0)
		return 0;
	if (wp_http_mods_copy(&s->rmods, m) != 0)
		return -ENOSPC;
	s->has_rmods = true;
	return 0;
}

void wp_h1p_sess_set_routes(struct wp_h1p_sess *s, const struct wp_route_table *routes)
{
	s->routes = routes;
}

void wp_h1p_sess_set_conn(struct wp_h1p_sess *s, struct wp_pipe_conn *conn)
{
	s->conn = conn;
}

void wp_h1p_sess_set_app(struct wp_h1p_sess *s, void *app)
{
	s->app = app;
}

void *wp_h1p_sess_app(const struct wp_h1p_sess *s)
{
	return s->app;
}

/* A local answer <status> with the text/plain <body> before anything went
 * upstream (authorization's 403 "RBAC: access denied", a fault abort). The
 * connection stays usable (the request body is read and dropped) unless the
 * request was to end it anyway, asked for an Upgrade or waits for 100.
 * Returns whether the session reads on. */
static bool sess_answer(struct wp_h1p_sess *s, const struct wp_http1_msg *m, uint16_t status,
                        const char *body, size_t body_len)
{
	/* a client waiting for 100-continue may not send the body at all */
	bool ka = !s->close_after && !s->req_upgrade && !(m->flags & WP_HTTP1_F_EXPECT_CONTINUE);
	int n = wp_http1_write_local(status, body, body_len, ka, m->method == HTTP_HEAD,
	                             (char *)ob_tail(&s->down), ob_room(&s->down));

	if (n <= 0 || !ka) {
		if (n > 0) {
			s->down.len += (uint32_t)n;
			s->rec.status = status;
		}
		sess_local(s, n > 0 ? 0 : 500);
		return false;
	}
	s->down.len += (uint32_t)n;
	s->rec.status = status; /* recorded when the request ends */
	s->resp_started = s->resp_done = true;
	s->discard = true;
	return true;
}

static bool sess_deny(struct wp_h1p_sess *s, const struct wp_http1_msg *m)
{
	return sess_answer(s, m, WP_PIPE_DENIED_STATUS, WP_PIPE_DENIED_BODY,
	                   WP_PIPE_DENIED_BODY_LEN);
}

/* A fault-injection abort (fault.h): the plan's status with Envoy's body,
 * flag FI, answered as a denial is. */
static bool sess_fault_abort(struct wp_h1p_sess *s, const struct wp_http1_msg *m)
{
	wp_ctr_inc(s->core->ctr, WP_CTR_L7_FAULT_ABORT);
	s->rec.flags |= WP_PIPE_F(FI);
	return sess_answer(s, m, s->fault.status, WP_FAULT_ABORT_BODY, WP_FAULT_ABORT_BODY_LEN);
}

/* A connection-pool limit refused the request: Envoy's overflow answer
 * (503, x-envoy-overloaded, flag UO); the connection stays usable as after
 * a denial (sess_deny). Returns whether the session reads on. */
static bool sess_overflow(struct wp_h1p_sess *s, const struct wp_http1_msg *m)
{
	bool ka = !s->close_after && !s->req_upgrade && !(m->flags & WP_HTTP1_F_EXPECT_CONTINUE);
	int n = wp_cb_write_overflow(ka, m->method == HTTP_HEAD, (char *)ob_tail(&s->down),
	                             ob_room(&s->down));

	s->rec.flags |= WP_PIPE_F(UO);
	if (n <= 0 || !ka) {
		if (n > 0) {
			s->down.len += (uint32_t)n;
			s->rec.status = 503;
		}
		sess_local(s, n > 0 ? 0 : 503);
		return false;
	}
	s->down.len += (uint32_t)n;
	s->rec.status = 503;
	s->resp_started = s->resp_done = true;
	s->discard = true;
	return true;
}

/* A retry of the request to <cl> within the cluster's maxRetries (the
 * request holds one place until it ends). */
static bool cb_retry(struct wp_h1p_sess *s, const struct wp_route_cluster *cl)
{
	if (s->cb_retry || !s->cbk)
		return true;
	s->cb_retry = wp_cb_retry_begin(&s->core->cb, s->cbk, cl);
	return s->cb_retry;
}

/* cb_retry() for the cluster the request was routed to (none when the
 * snapshot moved on since). */
static bool retry_budget(struct wp_h1p_sess *s)
{
	if (s->cb_retry || !s->cbk)
		return true;
	if (!s->routes || s->routes != s->pick_table || s->pick_cluster >= s->routes->n_clusters)
		return false;
	return cb_retry(s, &s->routes->clusters[s->pick_cluster]);
}

/* The waiting request <s> takes a connection of its cluster: re-picked,
 * an idle one reused or a new one opened. False when there is still no
 * room (it stays first in line); true when it left the line (started, or
 * answered 503 when the cluster or its endpoints went away). */
static bool cb_start(struct wp_h1p_sess *s)
{
	struct wp_h1p_core *c = s->core;
	const struct wp_route_cluster *cl = NULL;
	bool full;
	int i = -1;

	if (c->ops->refresh)
		c->ops->refresh(c->host, s);
	for (uint32_t k = 0; s->routes && k < s->routes->n_clusters && !cl; k++)
		if (s->routes == s->pick_table ? k == s->pick_cluster
		                               : wp_cb_is(s->cbk, &s->routes->clusters[k]))
			cl = &s->routes->clusters[k];
	if (cl)
		s->up = wp_h1p_up_take_freed(s, cl, &i);
	if (cl && !s->up)
		i = wp_uppool_pick(cl, c->lbc, s->pick_hash, s->pick_has_hash, NULL);
	if (i >= 0 && !s->up) {
		s->up = wp_h1p_up_get(s, cl, &cl->endpoints[i], &full);
		if (!s->up && full)
			return false;
	}
	wp_cb_unwait(&s->wait);
	if (!s->up) {
		sess_local_f(s, 503, i < 0 ? WP_PIPE_F(UH) : WP_PIPE_F(UF));
	} else {
		s->pick_table = s->routes;
		s->pick_cluster = (uint32_t)(cl - s->routes->clusters);
		wp_pipe_rec_dest(s->conn, &s->rec, cl, &cl->endpoints[i]);
		wp_lb_cache_begin(c->lbc, cl->lb, i, &s->act);
		s->up->n_req++;
	}
	if (c->ops->wake)
		c->ops->wake(c->host, s);
	return true;
}

/* Connections were freed (closed, or idle) in clusters with waiting
 * requests: start those, in order, while they get one. Not re-entered. */
static void cb_kick(struct wp_h1p_core *c)
{
	if (!c->cb_kick || c->in_kick)
		return;
	c->in_kick = true;
	c->cb_kick = false;
	for (uint32_t k = 0; k < WP_CB_SLOTS; k++) {
		struct wp_cb_clu *clu = &c->cb.slot[k];

		while (clu->wait_head &&
		       cb_start((struct wp_h1p_sess *)(void *)((char *)clu->wait_head -
		                                               offsetof(struct wp_h1p_sess, wait))))
			;
	}
	c->in_kick = false;
}

static bool route_request(struct wp_h1p_sess *s, struct wp_http1_msg *m)
{
	struct wp_h1p_core *c = s->core;
	struct wp_route_req rq;
	struct wp_route_decision d;
	struct wp_http1_msg out;
	struct wp_http1_req_opts o = {.rng = &c->rng, .ctr = c->ctr};
	struct wp_tc_out tco;
	char reqid[WP_HTTP1_REQID_LEN];
	bool reqid_new = false;
	uint64_t h = 0;
	bool has;
	int i, n;

	if (!s->routes) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_NO_TABLE);
		sess_local(s, 500);
		return false;
	}
	wp_route_req_init_http1(&rq, m, s->src);
	if (s->conn && wp_pipe_normalize(s->conn->core, &rq) != 0) {
		sess_local(s, 400);
		return false;
	}
	/* authorization before any answer of the router (as Envoy's RBAC
	 * filter runs before its router filter) */
	if (s->conn && !s->fault_done) { /* (not again after a fault delay) */
		const char *mn = llhttp_method_name((llhttp_method_t)m->method);
		struct wp_authz_decision az;

		if (!wp_pipe_authorize(s->conn, &rq, mn, strlen(mn), &az))
			return sess_deny(s, m);
	}
	if (wp_route_select(s->routes, c->rc, &rq, &d) != 0) {
		sess_local_f(s, 404, WP_PIPE_F(NR));
		return false;
	}
	if (!s->fault_done) { /* the fault stage, once per request */
		s->fault_done = true;
		if (wp_fault_decide(&c->fault_rng, &d.rule->fault, &s->fault)) {
			if (!s->fault.delay_ms)
				return sess_fault_abort(s, m);
			wp_ctr_inc(c->ctr, WP_CTR_L7_FAULT_DELAY);
			s->rec.flags |= WP_PIPE_F(DI);
			s->fault_until_ms = wp_deadline_ms(c->now_ms, s->fault.delay_ms);
			wp_fault_due(&c->fault_due, s->fault_until_ms);
			return true; /* held: wp_h1p_down_in() takes nothing more */
		}
	}
	if (d.status >= 300 && d.status < 400) {
		n = wp_route_write_redirect(&d, &rq, false, (char *)ob_tail(&s->down),
		                            ob_room(&s->down));
		if (n > 0) {
			s->down.len += (uint32_t)n;
			s->rec.status = d.status;
			wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_REDIRECT);
			sess_local(s, 0);
		} else {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_HEAD_TOO_BIG);
			sess_local(s, 500);
		}
		return false;
	}
	if (!d.cluster) {
		sess_local_f(s, d.status ? d.status : 500, WP_PIPE_F(NC));
		return false;
	}
	has = wp_route_cluster_hash(d.cluster, &rq, &h);
	s->pick_table = s->routes;
	s->pick_cluster = (uint32_t)(d.cluster - s->routes->clusters);
	s->pick_hash = h;
	s->pick_has_hash = has;
	wp_h1p_retry_begin(s, &d.rule->retry);
	s->cbk = wp_cb_get(&c->cb, d.cluster);
	if (s->cbk && !wp_cb_req_begin(&c->cb, s->cbk, d.cluster)) {
		s->cbk = NULL;
		wp_pipe_rec_dest(s->conn, &s->rec, d.cluster, NULL);
		return sess_overflow(s, m);
	}
	for (;;) {
		bool full;

		i = wp_lb_pick(d.cluster->lb, wp_lb_cache_core(c->lbc, d.cluster->lb), h, has);
		if (i < 0 || (uint32_t)i >= d.cluster->n_endpoints) {
			wp_pipe_rec_dest(s->conn, &s->rec, d.cluster, NULL);
			sess_local_f(s, 503, WP_PIPE_F(UH) | (s->retried ? WP_PIPE_F(URX) : 0));
			return false;
		}
		wp_pipe_rec_dest(s->conn, &s->rec, d.cluster, &d.cluster->endpoints[i]);
		s->up = wp_h1p_up_get(s, d.cluster, &d.cluster->endpoints[i], &full);
		if (s->up) {
			wp_lb_cache_begin(c->lbc, d.cluster->lb, i, &s->act);
			s->up->n_req++;
			break;
		}
		if (full) { /* maxConnections: wait for one (http1MaxPendingRequests) */
			if (!wp_cb_wait(&c->cb, s->cbk, d.cluster, &s->wait))
				return sess_overflow(s, m);
			break;
		}
		if (s->retries_left == 0 || !wp_retry_on_event(&s->rpol, WP_RETRY_EV_CONNECT) ||
		    wp_uppool_exhausted(&c->pool) || !cb_retry(s, d.cluster)) {
			/* out of retries, or of connection objects */
			sess_local_f(s, 503, WP_PIPE_F(UF) | (s->retried ? WP_PIPE_F(URX) : 0));
			return false;
		}
		s->retries_left--;
		s->retried = true;
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_RETRY);
	}
	if (copy_rmods(s, &d.rule->resp_mods) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_HEAD_TOO_BIG);
		sess_local(s, 500);
		return false;
	}
	if (wp_http1_parser_init(&s->rp, HTTP_RESPONSE, &c->cfg.lim, s->rp_arena, s->arena_size,
	                         c->ctr)) {
		sess_local(s, 500);
		return false;
	}
	wp_http1_parser_expect_response(&s->rp, m->method);
	out = *m;
	out.target = rq.target; /* normalized */
	out.target_len = rq.target_len;
	n = wp_route_rewrite_target(&d, &rq, c->tgt, sizeof(c->tgt));
	if (n < 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_HEAD_TOO_BIG);
		sess_local(s, 431);
		return false;
	}
	if (n > 0) {
		out.target = c->tgt;
		out.target_len = (uint32_t)n;
	}
	o.mods = &d.rule->req_mods;
	o.trace = wp_pipe_trace_headers(&s->rec, &tco);
	o.authority = s->authority;
	o.authority_len = s->authority_len;
	o.reqid_out = reqid;
	o.reqid_generated = &reqid_new;
	s->upb.off = s->upb.len = 0;
	n = wp_http1_write_request_head(&out, &o, (char *)ob_tail(&s->upb), ob_room(&s->upb));
	if (n > 0)
		s->upb.len += (uint32_t)n;
	if (n < 0 || !wp_h1p_retry_head(s)) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_HEAD_TOO_BIG);
		sess_local(s, 431);
		return false;
	}
	if (reqid_new) { /* for the access log */
		memcpy(s->reqid, reqid, sizeof(s->reqid));
		s->reqid_gen = true;
	}
	wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_REQUEST);
	s->deadline_ms = d.rule->request_timeout_ms
	                         ? wp_deadline_ms(c->now_ms, d.rule->request_timeout_ms)
	                         : 0;
	s->try_timeout_ms = d.rule->backend_timeout_ms;
	s->try_deadline_ms = s->try_timeout_ms ? wp_deadline_ms(c->now_ms, s->try_timeout_ms) : 0;
	/* mirrors: not for upgrades (the copy could not follow the switch) */
	if (d.n_mirrors > 0 && !(m->flags & WP_HTTP1_F_UPGRADE)) {
		o.reqid = reqid_new ? reqid : NULL;
		for (uint16_t k = 0; k < d.n_mirrors; k++)
			wp_h1p_mirror_start(s, d.mirrors[k], &out, &o, h, has);
	}
	return true;
}

/* sess_timers(): the fault delay of the held request <s> is over: the
 * abort it drew, else the rest of the pipeline on the session's current
 * route table (the snapshot may have changed meanwhile); the parser's
 * pending event (the end of a request without body) is taken, then the
 * host offers the bytes it kept. */
static void fault_resume(struct wp_h1p_sess *s)
{
	struct wp_h1p_core *c = s->core;

	s->fault_until_ms = 0;
	if (c->ops->refresh)
		c->ops->refresh(c->host, s);
	if (s->fault.abort ? sess_fault_abort(s, &s->req) : route_request(s, &s->req))
		(void)wp_h1p_down_in(s, (const uint8_t *)"", 0); /* what the parser holds */
	if (c->ops->wake)
		c->ops->wake(c->host, s);
}

/* The response is complete and so is the request: next request, or close. */
static void exchange_done(struct wp_h1p_sess *s)
{
	bool reuse = (s->rp.msg.flags & WP_HTTP1_F_KEEP_ALIVE) && s->req_done && !s->req_upgrade;

	if (reuse && s->up && s->up->max_req && s->up->n_req >= s->up->max_req) {
		wp_ctr_inc(s->core->ctr, WP_CTR_L7_CB_MAX_REQUESTS_CLOSE);
		reuse = false; /* maxRequestsPerConnection */
	}
	sess_drop_up(s, reuse ? UP_REUSE : UP_CLOSE);
	rec_finish(s, 0);
	s->req_active = false;
	s->discard = false;
	s->has_rmods = false;
	s->last_ms = s->core->now_ms;
	if (s->close_after || s->down_eof)
		s->state = S_CLOSING;
}

#define CHUNK_ROOM 32 /* chunk header + CRLF around a slice */

size_t wp_h1p_down_in(struct wp_h1p_sess *s, const uint8_t *data, size_t len)
{
	size_t used = 0;

	s->last_ms = s->core->now_ms;

	for (;;) {
		struct wp_http1_ev ev;
		size_t feed, n;
		uint32_t room;

		if (s->state == S_TUNNEL) {
			n = WP_MIN(len - used, ob_room(&s->upb));
			if (s->up && n > 0) {
				ob_put(&s->upb, data + used, n);
				used += n;
			}
			return used;
		}
		if (s->state != S_REQ || s->fault_until_ms) /* (held by a fault delay) */
			return used;
		if (s->req_active && s->req_done) {
			/* pipelining, or raw bytes behind an Upgrade / CONNECT
			 * request: both wait for the response (see the top) */
			if (s->req_upgrade && used < len && !s->upg_held) {
				s->upg_held = true;
				wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_UPGRADE_HELD);
			}
			return used;
		}
		feed = len - used;
		if (s->req_active) {
			room = ob_room(&s->upb);
			if (room <= CHUNK_ROOM + 1024 && s->hold && s->up) {
				/* the request outgrows the replay buffer */
				wp_h1p_retry_outgrown(s);
				room = ob_room(&s->upb);
			}
			if (room <= CHUNK_ROOM + 1024)
				return used; /* backpressure */
			feed = WP_MIN(feed, room - CHUNK_ROOM - 1024);
		}
		n = wp_http1_parse(&s->qp, data + used, feed, &ev);
		used += n;
		if (ev.type != WP_HTTP1_EV_HEAD && s->rec.active)
			s->rec.req_bytes += n; /* wire bytes, as Envoy's meter counts */
		switch (ev.type) {
		case WP_HTTP1_EV_NONE:
			if (used == len)
				return used;
			break;
		case WP_HTTP1_EV_HEAD:
			wp_pipe_rec_begin(s->conn, &s->rec, false);
			s->rec.req_bytes = n;
			s->reqid_gen = false;
			s->rec_base = s->down_total + s->down.len;
			s->req = *ev.msg;
			s->fault_done = false;
			wp_pipe_trace_http1(s->conn, &s->rec, ev.msg);
			s->req_active = true;
			s->req_done = s->resp_started = s->resp_done = false;
			s->req_chunked = (ev.msg->flags & WP_HTTP1_F_CHUNKED) != 0;
			/* a bad first chunk size must not reach the backend; with
			 * 100-continue the upstream needs the head to answer */
			s->hold_head =
			        s->req_chunked && !(ev.msg->flags & WP_HTTP1_F_EXPECT_CONTINUE);
			s->req_upgrade = (ev.msg->flags & WP_HTTP1_F_UPGRADE) != 0;
			s->upg_held = false;
			s->close_after = !(ev.msg->flags & WP_HTTP1_F_KEEP_ALIVE);
			if (!route_request(s, ev.msg))
				return used;
			break;
		case WP_HTTP1_EV_BODY: {
			uint32_t before;

			if (s->discard)
				break;
			s->hold_head = false;
			before = s->upb.len; /* a compaction below keeps the length */
			if (s->req_chunked) {
				int h = wp_http1_write_chunk_header(
				        ev.len, (char *)ob_tail(&s->upb), ob_room(&s->upb));
				WP_ASSERT(h > 0);
				s->upb.len += (uint32_t)h;
			}
			ob_put(&s->upb, ev.data, ev.len);
			if (s->req_chunked)
				ob_put(&s->upb, WP_HTTP1_CHUNK_END, WP_HTTP1_CHUNK_END_LEN);
			if (s->n_mir > 0)
				wp_h1p_mirrors_tee(s, s->upb.len - before);
			break;
		}
		case WP_HTTP1_EV_DONE:
			s->hold_head = false;
			if (s->req_chunked && !s->discard) {
				int k = wp_http1_write_last_chunk(
				        ev.msg->trailers, ev.msg->n_trailers,
				        (char *)ob_tail(&s->upb), ob_room(&s->upb));
				if (k < 0) {
					wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_HEAD_TOO_BIG);
					sess_fail(s, 431);
					return used;
				}
				s->upb.len += (uint32_t)k;
				if (s->n_mir > 0)
					wp_h1p_mirrors_tee(s, (size_t)k);
			}
			wp_h1p_mirrors_detach(s);
			s->req_done = true;
			if (s->resp_done) /* the response came first */
				exchange_done(s);
			break;
		case WP_HTTP1_EV_UPGRADE:
			s->req_done = true;
			s->req_upgrade = true;
			break;
		case WP_HTTP1_EV_ERROR:
			sess_fail_f(s, ev.status, WP_PIPE_F(DPE));
			return used;
		}
	}
	return used;
}

void wp_h1p_sess_drain(struct wp_h1p_sess *s)
{
	if (s->state != S_REQ)
		return;
	if (!s->req_active)
		s->state = S_CLOSING; /* between requests: close now */
	else
		s->close_after = true; /* after the response in progress */
}

void wp_h1p_down_eof(struct wp_h1p_sess *s)
{
	s->down_eof = true;
	if (s->state == S_TUNNEL) {
		if (s->up)
			s->up->shut_wr = true;
		return;
	}
	if (s->state != S_REQ)
		return;
	if (!s->req_active) {
		s->state = S_CLOSING;
		return;
	}
	if (s->fault_until_ms) { /* held by a fault delay */
		wp_ctr_inc(s->core->ctr, WP_CTR_L7_FAULT_DELAY_ABANDONED);
		s->fault_until_ms = 0;
	}
	if (!s->req_done) {
		/* cut in the middle of a request */
		wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_DOWN_ABORT);
		sess_fail_f(s, 0, WP_PIPE_F(DC));
	}
	/* else: the response still comes, then the connection closes */
}

bool wp_h1p_down_partial(const struct wp_h1p_sess *s)
{
	return wp_http1_mid_message(&s->qp);
}

bool wp_h1p_up_partial(const struct wp_h1p_up *up)
{
	return up->sess != NULL && up->sess->up == up && wp_http1_mid_message(&up->sess->rp);
}

size_t wp_h1p_down_peek(const struct wp_h1p_sess *s, const uint8_t **p)
{
	*p = s->down.p + s->down.off;
	return s->down.len;
}

void wp_h1p_down_consume(struct wp_h1p_sess *s, size_t n)
{
	s->down_total += n;
	ob_consume(&s->down, n);
}

bool wp_h1p_down_finished(const struct wp_h1p_sess *s)
{
	return s->state == S_CLOSING && s->down.len == 0;
}

bool wp_h1p_down_shut(const struct wp_h1p_sess *s)
{
	return s->down_shut && s->down.len == 0;
}

struct wp_h1p_up *wp_h1p_sess_up(const struct wp_h1p_sess *s)
{
	return s->up;
}

void wp_h1p_up_connected(struct wp_h1p_up *up)
{
	up->pe.ready = true;
	if (up->sess && !up->mirror)
		wp_lb_cache_result(up->core->lbc, &up->sess->act, WP_LB_RES_CONNECTED);
}

/* The upstream of <s> failed to connect: nothing was sent on it, so the
 * request (head and the body bytes taken so far, all still in upb) goes to
 * another pick of the same cluster, within the rule's retry budget. */
static bool retry_connect(struct wp_h1p_sess *s)
{
	struct wp_h1p_core *c = s->core;
	const struct wp_route_cluster *cl;

	if (s->state != S_REQ || !s->req_active || s->resp_started || !s->routes ||
	    s->routes != s->pick_table || s->pick_cluster >= s->routes->n_clusters)
		return false;
	cl = &s->routes->clusters[s->pick_cluster];
	while (s->retries_left > 0 && wp_retry_on_event(&s->rpol, WP_RETRY_EV_CONNECT) &&
	       cb_retry(s, cl)) {
		bool full;
		int i;

		s->retries_left--;
		s->retried = true;
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_RETRY);
		/* like Istio's previous_hosts predicate: re-pick (a few times)
		 * to avoid the endpoints that already failed this request */
		i = wp_uppool_pick(cl, c->lbc, s->pick_hash, s->pick_has_hash, &s->failed);
		if (i < 0)
			return false;
		wp_pipe_rec_dest(s->conn, &s->rec, cl, &cl->endpoints[i]);
		s->up = wp_h1p_up_get(s, cl, &cl->endpoints[i], &full);
		if (s->up) {
			wp_lb_cache_begin(c->lbc, cl->lb, i, &s->act);
			s->up->n_req++;
			s->upb_sent = 0; /* nothing went out on the failed one */
			(void)wp_h1p_retry_next_attempt(s);
			if (s->try_timeout_ms) /* per try */
				s->try_deadline_ms = wp_deadline_ms(c->now_ms, s->try_timeout_ms);
			return true;
		}
	}
	return false;
}

void wp_h1p_up_failed(struct wp_h1p_up *up)
{
	struct wp_h1p_core *c = up->core;
	struct wp_h1p_sess *s = up->sess;
	bool connecting = !up->pe.ready;

	if (up->mirror) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H1P_MIRROR_FAILED);
		wp_h1p_mirror_end(c, up->mirror, false);
		return;
	}
	if (!s) {
		wp_h1p_up_destroy(c, up, false);
		return;
	}
	s->up = NULL;
	if (!s->resp_started) /* refused, reset or closed before the answer */
		wp_lb_cache_result(c->lbc, &s->act, WP_LB_RES_LOCAL_FAIL);
	wp_lb_cache_end(s->core->lbc, &s->act);
	if (connecting)
		wp_uppool_tried_add(&s->failed, &up->pe);
	if (!connecting && s->state == S_REQ && s->req_active && !s->resp_started &&
	    wp_h1p_retry_decide(s, WP_RETRY_EV_RESET, 0, -1) == WP_H1P_RETRY_YES &&
	    retry_budget(s)) {
		/* reset before the response head: replayed after a backoff */
		wp_uppool_tried_add(&s->failed, &up->pe);
		wp_h1p_up_destroy(c, up, false);
		wp_h1p_retry_schedule(s, WP_CTR_L7_H1P_RETRY_RESET);
		return;
	}
	wp_h1p_up_destroy(c, up, false);
	if (connecting && retry_connect(s))
		return;
	s->upb.off = s->upb.len = 0;
	if (s->state == S_TUNNEL) {
		s->state = S_CLOSING;
		return;
	}
	wp_ctr_inc(c->ctr, connecting ? WP_CTR_L7_H1P_CONNECT_FAILED : WP_CTR_L7_H1P_UP_RESET);
	sess_fail_f(s, connecting ? 503 : 502,
	            connecting ? WP_PIPE_F(UF) | (s->retried ? WP_PIPE_F(URX) : 0) : WP_PIPE_F(UC));
}

/* The backoff of <s>'s retry ended: the next try, or 503. */
static void retry_fire(struct wp_h1p_sess *s)
{
	uint16_t f = wp_h1p_retry_fire(s);

	if (f)
		sess_local_f(s, 503, f);
	if (s->core->ops->wake)
		s->core->ops->wake(s->core->host, s);
}

static void resp_error(struct wp_h1p_sess *s, uint16_t status)
{
	wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_BAD_RESPONSE);
	sess_fail_f(s, status, WP_PIPE_F(UPE));
}

static void resp_head(struct wp_h1p_sess *s, struct wp_http1_msg *m)
{
	enum wp_http1_framing f;
	bool ka;
	int n;

	if (m->status / 100 == 1 && m->status != 101) {
		/* interim: 100 Continue goes to the client, others are dropped */
		if (m->status == 100 && (s->req.flags & WP_HTTP1_F_EXPECT_CONTINUE) &&
		    s->req.http_minor >= 1) {
			n = wp_http1_write_continue((char *)ob_tail(&s->down), ob_room(&s->down));
			if (n > 0)
				s->down.len += (uint32_t)n;
		} else {
			wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_INTERIM_DROPPED);
		}
		s->framing = WP_HTTP1_FRAME_NONE;
		return;
	}
	wp_lb_cache_result(s->core->lbc, &s->act, m->status); /* outlier detection */
	if (s->rpol.attempts && !s->resp_started) {
		const struct wp_http_hdr *g = (s->rpol.on & WP_RETRY_GRPC_BITS)
		                                      ? wp_http1_find(m, "grpc-status", 11)
		                                      : NULL;
		int gs = g ? wp_retry_grpc_status(g->value, g->value_len) : -1;

		if (wp_h1p_retry_decide(s, WP_RETRY_EV_RESET, m->status, gs) == WP_H1P_RETRY_YES &&
		    retry_budget(s)) {
			/* discarded: its connection is closed, its body unread */
			wp_h1p_retry_schedule(s, WP_CTR_L7_H1P_RETRY_STATUS);
			return;
		}
	}
	wp_h1p_retry_release(s); /* this response goes to the client */
	if (m->status == 101 && !s->req_upgrade) {
		/* a switch nobody asked for (RFC 9110 15.2.2): the client's next
		 * bytes would go to the backend raw, outside any request */
		resp_error(s, 502);
		return;
	}
	if (!s->req_done) {
		/* answered before the request body ended: that connection cannot
		 * be reused, the rest of the request is not forwarded */
		wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_EARLY_RESPONSE);
		s->close_after = true;
	}
	if (s->req_upgrade && m->status != 101 &&
	    !(s->req.method == HTTP_CONNECT && m->status / 100 == 2)) {
		/* the client may have sent the other protocol already: it is
		 * never read (the connection closes after this response) */
		wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_UPGRADE_REFUSED);
		if (s->upg_held)
			wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_UPGRADE_DISCARDED);
		s->close_after = true;
	}
	if (s->core->pool.draining)
		s->close_after = true; /* shutting down: this is the connection's last response */
	ka = !s->close_after;
	n = wp_http1_write_response_head(m, &s->req, ka, s->has_rmods ? &s->rmods.mods : NULL, &f,
	                                 (char *)ob_tail(&s->down), ob_room(&s->down));
	if (n < 0) {
		resp_error(s, 502);
		return;
	}
	s->down.len += (uint32_t)n;
	s->resp_started = true;
	s->rec.status = m->status;
	s->framing = (uint8_t)f;
	if (f == WP_HTTP1_FRAME_CLOSE)
		s->close_after = true;
}

/* The upstream accepted the Upgrade (101) / CONNECT (2xx): raw bytes from
 * here on. The host offers the client's held bytes again, and its EOF if it
 * came while we waited. */
static void sess_switch(struct wp_h1p_sess *s)
{
	s->state = S_TUNNEL;
	wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_UPGRADE_SWITCHED);
	if (s->down_eof && s->up)
		s->up->shut_wr = true;
}

size_t wp_h1p_up_in(struct wp_h1p_up *up, const uint8_t *data, size_t len)
{
	struct wp_h1p_sess *s = up->sess;
	size_t used = 0;

	if (up->mirror) {
		up->pe.ready = true;
		return len; /* a mirror's response is thrown away */
	}
	if (!s) {
		/* an idle connection spoke: it cannot be reused */
		wp_ctr_inc(up->core->ctr, WP_CTR_L7_H1P_IDLE_UNSOLICITED);
		wp_h1p_up_destroy(up->core, up, true);
		return len;
	}
	up->pe.ready = true;
	for (;;) {
		struct wp_http1_ev ev;
		uint32_t room = ob_room(&s->down);
		size_t n, feed;

		if (s->state == S_TUNNEL) {
			n = WP_MIN(len - used, room);
			ob_put(&s->down, data + used, n);
			return used + n;
		}
		if (s->state != S_REQ || !s->req_active || s->resp_done) {
			if (s->state == S_REQ && s->up == up) {
				/* bytes after a complete response */
				wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_BAD_RESPONSE);
				s->close_after = true;
				sess_drop_up(s, UP_ABORT);
				if (s->req_active && s->req_done)
					exchange_done(s);
			}
			return len;
		}
		if (room <= CHUNK_ROOM + 1024)
			return used;
		feed = WP_MIN(len - used, room - CHUNK_ROOM - 1024);
		n = wp_http1_parse(&s->rp, data + used, feed, &ev);
		used += n;
		switch (ev.type) {
		case WP_HTTP1_EV_NONE:
			if (used == len)
				return used;
			break;
		case WP_HTTP1_EV_HEAD:
			resp_head(s, ev.msg);
			if (s->state != S_REQ)
				return used;
			if (s->up != up) /* discarded for a retry: the connection is gone */
				return len;
			break;
		case WP_HTTP1_EV_BODY:
			if (s->framing == WP_HTTP1_FRAME_CHUNKED) {
				int h = wp_http1_write_chunk_header(
				        ev.len, (char *)ob_tail(&s->down), ob_room(&s->down));
				WP_ASSERT(h > 0);
				s->down.len += (uint32_t)h;
			}
			ob_put(&s->down, ev.data, ev.len);
			if (s->framing == WP_HTTP1_FRAME_CHUNKED)
				ob_put(&s->down, WP_HTTP1_CHUNK_END, WP_HTTP1_CHUNK_END_LEN);
			break;
		case WP_HTTP1_EV_DONE:
			if (ev.msg->status / 100 == 1 && ev.msg->status != 101) {
				wp_http1_parser_expect_response(&s->rp, s->req.method);
				break;
			}
			if (s->framing == WP_HTTP1_FRAME_CHUNKED) {
				int k = wp_http1_write_last_chunk(
				        ev.msg->trailers, ev.msg->n_trailers,
				        (char *)ob_tail(&s->down), ob_room(&s->down));
				if (k < 0) {
					resp_error(s, 0);
					return used;
				}
				s->down.len += (uint32_t)k;
			}
			s->resp_done = true;
			s->deadline_ms = s->try_deadline_ms = 0;
			if (s->framing == WP_HTTP1_FRAME_TUNNEL) {
				sess_switch(s);
				break;
			}
			if (s->req_done) {
				exchange_done(s);
			} else {
				/* early response: stop the request here */
				sess_drop_up(s, UP_ABORT);
				s->state = S_CLOSING;
				rec_finish(s, 0);
			}
			return used;
		case WP_HTTP1_EV_UPGRADE:
			sess_switch(s);
			break;
		case WP_HTTP1_EV_ERROR:
			resp_error(s, ev.status);
			return used;
		}
	}
	return used;
}

void wp_h1p_up_eof(struct wp_h1p_up *up)
{
	struct wp_h1p_sess *s = up->sess;
	struct wp_http1_ev ev;

	if (up->mirror) { /* the mirror's response ended (connection: close) */
		wp_h1p_mirror_end(up->core, up->mirror, true);
		return;
	}
	if (!s) {
		wp_h1p_up_destroy(up->core, up, true);
		return;
	}
	if (s->state == S_TUNNEL) {
		s->down_shut = true;
		return;
	}
	if (s->state != S_REQ || !s->req_active)
		return;
	wp_http1_parse_eof(&s->rp, &ev);
	if (ev.type == WP_HTTP1_EV_DONE) {
		/* body until EOF */
		s->resp_done = true;
		s->close_after = true;
		sess_drop_up(s, UP_ABORT);
		if (s->req_done) {
			exchange_done(s);
		} else {
			s->state = S_CLOSING;
			rec_finish(s, 0);
		}
		return;
	}
	if (!s->resp_started && s->up == up &&
	    wp_h1p_retry_decide(s, WP_RETRY_EV_RESET, 0, -1) == WP_H1P_RETRY_YES &&
	    retry_budget(s)) {
		/* closed before the response head: replayed after a backoff */
		wp_lb_cache_result(s->core->lbc, &s->act, WP_LB_RES_LOCAL_FAIL);
		wp_h1p_retry_schedule(s, WP_CTR_L7_H1P_RETRY_RESET);
		return;
	}
	wp_ctr_inc(s->core->ctr, WP_CTR_L7_H1P_UP_RESET);
	sess_fail_f(s, 502, WP_PIPE_F(UC));
}

size_t wp_h1p_up_peek(const struct wp_h1p_up *up, const uint8_t **p)
{
	const struct wp_h1p_sess *s = up->sess;
	const struct wp_h1p_mirror *m = up->mirror;

	if (m) {
		if (m->feeder && m->feeder->hold_head) {
			*p = NULL;
			return 0;
		}
		*p = m->out.p + m->out.off;
		return m->out.len;
	}
	if (!s || s->up != up || s->hold_head) {
		*p = NULL;
		return 0;
	}
	/* held: the bytes this try has not taken yet (off is 0) */
	*p = s->upb.p + s->upb.off + s->upb_sent;
	return s->upb.len - s->upb_sent;
}

void wp_h1p_up_consume(struct wp_h1p_up *up, size_t n)
{
	if (up->mirror)
		ob_consume(&up->mirror->out, n);
	else if (up->sess && up->sess->hold)
		up->sess->upb_sent += (uint32_t)n; /* kept for a replay */
	else if (up->sess)
		ob_consume(&up->sess->upb, n);
}
