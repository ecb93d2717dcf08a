/*
 * The h2c / gRPC proxy's upstream side (see h2proxy.h): its upstream
 * connections (h2c, multiplexed; or HTTP/1.1, one request at a time) kept
 * in the core's pool (uppool.h: the stream count is the entry's users,
 * their capacity comes from up_capacity()), opening them, their nghttp2
 * callbacks, the HTTP/1.1 client codec, and the host's transport events.
 */
#include "h2proxy_int.h"

/* ---- upstream pool ---------------------------------------------------------------------- */

static struct wp_h2p_up *up_of(struct wp_uppool_ent *e)
{
	return e ? (struct wp_h2p_up *)(void *)((char *)e - offsetof(struct wp_h2p_up, pe)) : NULL;
}

static struct h1up *h1s(const struct wp_h2p_up *up)
{
	return &up->core->h1ups[up - up->core->ups];
}

static uint32_t up_limit(const struct wp_h2p_up *up)
{
	uint32_t peer;

	if (up->h1)
		return 1; /* one request at a time */
	peer = nghttp2_session_get_remote_settings(up->ng, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
	if (up->max_streams) /* DestinationRule maxConcurrentStreams */
		peer = WP_MIN(peer, up->max_streams);
	return WP_MIN(peer, up->core->cfg.max_up_streams);
}

static uint32_t up_capacity(const struct wp_uppool_ent *e)
{
	const struct wp_h2p_up *up = up_of((struct wp_uppool_ent *)(uintptr_t)e);

	if (up->reap || up->state == WP_H2P_UP_CLOSED || (up->h1 && h1s(up)->cur) ||
	    (up->max_req && up->n_req >= up->max_req)) /* maxRequestsPerConnection */
		return 0;
	return up_limit(up);
}

static void up_set_ready(struct wp_h2p_up *up)
{
	if (up->state != WP_H2P_UP_CONNECTING)
		return;
	up->state = WP_H2P_UP_READY;
	up->pe.ready = true;
}

/* Frees <up> (its streams were detached); the host closes the transport
 * when <host_close>. Never from inside one of its nghttp2 callbacks. */
void wp_h2p_up_destroy(struct wp_h2p_up *up, bool host_close)
{
	struct wp_h2p_core *c = up->core;

	WP_ASSERT(up->strms == NULL);
	if (host_close)
		c->ops->up_close(c->host, up);
	if (up->ng)
		nghttp2_session_del(up->ng);
	for (uint32_t i = 0; i < c->n_reap; i++)
		if (c->reap[i] == up)
			c->reap[i] = NULL;
	wp_uppool_free(&c->pool, &up->pe);
	wp_cb_conn_close(up->cb);
	c->pend_kick = true; /* a connection slot freed */
	up->cb = NULL;
	up->max_streams = up->n_req = up->max_req = 0;
	up->connect_deadline_ms = 0;
	up->io = NULL;
	up->ng = NULL;
	up->state = WP_H2P_UP_FREE;
	up->reap = up->h1 = false;
	up->out = NULL;
	up->out_len = 0;
}

/* Closes <up>, which has no stream: an HTTP/1.1 connection with nothing in
 * flight (idle and healthy) gracefully when the host can, the backend must
 * not read a reset; anything else is aborted. */
static void up_retire(struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = up->core;

	if (up->h1 && up->state == WP_H2P_UP_READY && !h1s(up)->cur && up->out_len == 0 &&
	    c->ops->up_finish) {
		c->ops->up_finish(c->host, up);
		wp_h2p_up_destroy(up, false);
		return;
	}
	wp_h2p_up_destroy(up, true);
}

static void pool_retire(struct wp_uppool_ent *e)
{
	up_retire(up_of(e));
}

/* Shared while they have room (h2c streams; HTTP/1.1 one at a time). */
const struct wp_uppool_ops wp_h2p_pool_ops = {.limit = up_capacity, .retire = pool_retire};

static void up_reap_later(struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = up->core;

	if (up->reap)
		return;
	up->reap = true;
	c->reap[c->n_reap++] = up; /* at most one entry per upstream object */
}

/* End of a public call: close the upstreams that asked for it and have no
 * stream left (a failed one's streams were already moved or answered). */
void wp_h2p_core_reap(struct wp_h2p_core *c)
{
	uint32_t keep = 0;

	for (uint32_t i = 0; i < c->n_reap; i++) {
		struct wp_h2p_up *up = c->reap[i];

		if (!up)
			continue;
		if (up->strms) {
			c->reap[keep++] = up;
			continue;
		}
		c->reap[i] = NULL;
		up->reap = false;
		up_retire(up);
	}
	c->n_reap = keep;
}

/* <up> has no stream left: keep it idle in the pool, or close it. */
void wp_h2p_up_went_idle(struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = up->core;
	uint32_t max = up->h1 ? c->cfg.max_idle_h1_per_ep : c->cfg.max_idle_per_ep;

	if (up->max_req && up->n_req >= up->max_req && up->state != WP_H2P_UP_CLOSED) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_CB_MAX_REQUESTS_CLOSE);
		up_reap_later(up); /* maxRequestsPerConnection carried */
		return;
	}
	if (up->state != WP_H2P_UP_CLOSED && !up->reap &&
	    wp_uppool_idle(&c->pool, &up->pe, max, c->now_ms))
		return;
	if (up->state != WP_H2P_UP_CLOSED)
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_IDLE_OVER_LIMIT);
	up_reap_later(up);
}

void wp_h2p_up_link_strm(struct wp_h2p_up *up, struct wp_h2p_strm *t)
{
	t->up = up;
	t->uprev = NULL;
	t->unext = up->strms;
	if (up->strms)
		up->strms->uprev = t;
	up->strms = t;
	up->pe.active++;
	up->n_req++;
}

void wp_h2p_up_unlink_strm(struct wp_h2p_strm *t)
{
	struct wp_h2p_up *up = t->up;

	if (!up)
		return;
	if (t->uprev)
		t->uprev->unext = t->unext;
	else
		up->strms = t->unext;
	if (t->unext)
		t->unext->uprev = t->uprev;
	t->uprev = t->unext = NULL;
	t->up = NULL;
	t->up_sid = 0;
	up->core->pend_kick = true; /* room for one more stream on <up> */
	if (--up->pe.active == 0)
		wp_h2p_up_went_idle(up);
}

static int up_new_session(struct wp_h2p_core *c, struct wp_h2p_up *up)
{
	nghttp2_settings_entry iv[] = {
	        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->cfg.window},
	        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
	         c->cfg.max_header_bytes + 32u * c->cfg.max_headers},
	};
	uint64_t cw = (uint64_t)c->cfg.window * c->cfg.max_up_streams;

	if (nghttp2_session_client_new3(&up->ng, c->cb_up, up, c->opt_up, c->mem) != 0) {
		up->ng = NULL;
		return -ENOMEM;
	}
	if (nghttp2_submit_settings(up->ng, NGHTTP2_FLAG_NONE, iv, WP_ARRAY_SIZE(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(up->ng, NGHTTP2_FLAG_NONE, 0,
	                                          (int32_t)WP_MIN(cw, (uint64_t)INT32_MAX)) != 0)
		return -ENOMEM;
	return 0;
}

/* Whether pooled <e> counts against cluster slot <arg>: an idle one to
 * another endpoint is closed to make room for the stream's (never the one
 * whose callback this is). */
static bool counted_in(const struct wp_uppool_ent *e, void *arg)
{
	const struct wp_h2p_up *up = up_of((struct wp_uppool_ent *)(uintptr_t)e);

	return up->cb == arg && up != up->core->cur_up;
}

/* An upstream connection for <ep> with room for one more stream: a shared
 * or idle one from the pool (connected ones first), else a new one;
 * HTTP/1.1 ones when <h1> (an idle kept-alive one, else a new one). NULL
 * (counted) if none. */
struct wp_h2p_up *wp_h2p_up_acquire(struct wp_h2p_core *c, const struct wp_snap_endpoint *ep,
                                    bool h1, struct wp_h2p_strm *t,
                                    const struct wp_route_cluster *cl, bool *full)
{
	struct wp_cb_clu *k = t ? wp_cb_get(&c->cb, cl) : NULL;
	struct wp_uppool_ent *e;
	struct wp_h2p_up *up;
	bool evicted;

	*full = false;
	/* http2MaxRequests: once per request (not again on its retries) */
	if (k && !t->cbk && !(*full = !wp_cb_req_begin(&c->cb, k, cl)))
		t->cbk = k;
	/* first come, first served: behind the streams already waiting */
	e = *full || (k && k->wait_head && !t->wait.clu) ? NULL : wp_uppool_get(&c->pool, ep, h1);
	if (e) {
		if (t)
			wp_h2p_pend_leave(t);
		wp_ctr_inc(c->ctr, h1 ? WP_CTR_L7_H2P_UP_H1_REUSE : WP_CTR_L7_H2P_UP_SHARED);
		return up_of(e);
	}
	/* maxConnections: the stream waits for a connection (h2p_pending.c;
	 * one already in line keeps its place), or http1MaxPendingRequests
	 * refuses it at once (counted) */
	if (!*full &&
	    ((k && k->wait_head && !t->wait.clu) ||
	     (!wp_cb_conn_room(&c->cb, k, cl) && !wp_uppool_retire_if(&c->pool, counted_in, k)))) {
		if (t->wait.clu || wp_h2p_pend_join(t, k, cl))
			return NULL;
		*full = true;
	}
	if (*full) {
		t->rec.flags |= WP_PIPE_F(UO);
		return NULL;
	}
	if (t)
		wp_h2p_pend_leave(t);
	/* an idle connection may be evicted for it, never the one whose
	 * callback this is */
	up = up_of(wp_uppool_open(&c->pool, ep, h1, c->now_ms, c->cur_up ? &c->cur_up->pe : NULL,
	                          &evicted));
	if (evicted)
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_IDLE_EVICTED);
	if (!up) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_UPSTREAM);
		return NULL;
	}
	up->state = WP_H2P_UP_CONNECTING;
	up->h1 = h1;
	if (h1) {
		struct h1up *h = h1s(up);

		h->cur = NULL;
		h->req_done = h->wrote = h->interim = h->head_in = false;
		if (wp_http1_parser_init(&h->p, HTTP_RESPONSE, &c->h1lim, h->arena, h->arena_size,
		                         c->ctr) != 0) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
			wp_h2p_up_destroy(up, false);
			return NULL;
		}
	} else if (up_new_session(c, up) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
		wp_h2p_up_destroy(up, false);
		return NULL;
	}
	up->keepalive = cl ? cl->pool.keepalive : (struct wp_route_keepalive){0};
	if (c->ops->up_open(c->host, up, ep) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_CONNECT_FAILED);
		wp_h2p_up_destroy(up, false);
		return NULL;
	}
	wp_ctr_inc(c->ctr, h1 ? WP_CTR_L7_H2P_UP_H1_CONN : WP_CTR_L7_H2P_UP_NEW);
	if (t) {
		up->cb = k;
		wp_cb_conn_open(k);
		up->max_streams = cl->pool.max_streams;
		up->max_req = cl->pool.max_req_per_conn;
		up->pe.idle_ms = cl->pool.idle_timeout_ms;
		if (cl->pool.connect_timeout_ms)
			up->connect_deadline_ms =
			        wp_deadline_ms(c->now_ms, cl->pool.connect_timeout_ms);
	}
	return up;
}

/* HTTPRoute timeouts.request / backendRequest: a stream whose response has
 * not ended in time gets 504 (gRPC: UNAVAILABLE) when no response head went
 * out yet, else is reset; its upstream stream is cancelled. A request
 * mirror is reset once it is older than mirror_timeout_ms. */
static void strm_timers(struct wp_h2p_strm *t, uint64_t now_ms)
{
	if (t->in_use && t->mirror && t->mirror_deadline_ms && now_ms >= t->mirror_deadline_ms) {
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_MIRROR_ABANDONED);
		wp_h2p_mirror_free(t, true);
		return;
	}
	if (t->in_use && t->fault_until_ms) { /* held by a fault delay (h2p_local.c) */
		if (now_ms >= t->fault_until_ms)
			wp_h2p_fault_resume(t);
		else
			wp_fault_due(&t->core->fault_due, t->fault_until_ms);
		return;
	}
	if (!t->in_use || !t->routed || t->local || t->resp_eof ||
	    ((!t->deadline_ms || now_ms < t->deadline_ms) &&
	     (!t->try_deadline_ms || now_ms < t->try_deadline_ms)))
		return;
	if (!t->head_sent) /* outlier detection: a local-origin failure */
		wp_lb_cache_result(t->core->lbc, &t->act, WP_LB_RES_LOCAL_FAIL);
	if (t->try_deadline_ms && now_ms >= t->try_deadline_ms &&
	    (!t->deadline_ms || now_ms < t->deadline_ms) &&
	    wp_h2p_retry_fail(t, WP_RETRY_EV_TIMEOUT))
		return; /* the per-try timeout: another try */
	wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_TIMEOUT);
	t->rec.flags |= WP_PIPE_F(UT);
	t->deadline_ms = t->try_deadline_ms = 0;
	wp_h2p_strm_cancel_up(t, NGHTTP2_CANCEL);
	wp_h2p_strm_local(t, 504, NULL, 0);
}

unsigned wp_h2p_core_tick(struct wp_h2p_core *c, uint64_t now_ms)
{
	unsigned n;

	c->now_ms = now_ms;
	wp_lb_cache_clock(c->lbc, now_ms);
	c->fault_due = 0; /* (strm_timers() keeps the held ones') */
	for (uint32_t i = 0; i < c->cfg.max_streams; i++)
		strm_timers(&c->strms[i], now_ms);
	for (uint32_t i = 0; i < c->cfg.max_sessions; i++) {
		struct wp_h2p_sess *s = &c->sessions[i];

		if (s->in_use && !s->fatal && s->n_strms == 0 && c->cfg.down_idle_timeout_ms &&
		    now_ms - s->last_ms >= c->cfg.down_idle_timeout_ms) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_DOWN_IDLE_TIMEOUT);
			(void)nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
			s->fatal = true;
			wp_h2p_wake_sess(s);
		}
	}
	/* connectTimeout: a connection not up in time fails as a connect
	 * failure (its streams retried elsewhere within their budget) */
	for (uint32_t i = 0; i < c->cfg.max_upstreams; i++) {
		struct wp_h2p_up *up = &c->ups[i];

		if (up->state == WP_H2P_UP_CONNECTING && up->connect_deadline_ms &&
		    now_ms >= up->connect_deadline_ms) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_CB_CONNECT_TIMEOUT);
			c->ops->up_close(c->host, up);
			wp_h2p_up_failed(up);
		}
	}
	n = wp_uppool_expire(&c->pool, now_ms);
	wp_ctr_add(c->ctr, WP_CTR_L7_H2P_IDLE_EXPIRED, n);
	wp_h2p_core_reap(c);
	wp_h2p_pend_kick(c);
	return n;
}

void wp_h2p_core_clock(struct wp_h2p_core *c, uint64_t now_ms)
{
	c->now_ms = now_ms;
	wp_lb_cache_clock(c->lbc, now_ms); /* ejection times */
	wp_h2p_retry_clock(c, now_ms);     /* backoffs that ended */
}

void wp_h2p_core_drain(struct wp_h2p_core *c)
{
	wp_uppool_drain(&c->pool);
	wp_h2p_core_reap(c);
}

/* ---- upstream callbacks ----------------------------------------------------------------- */

static int u_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct wp_h2p_strm *t = wp_h2p_up_strm(ud, f->hd.stream_id);

	(void)ng;
	if (!t || f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (!t->head_sent) {
		hb_reset(&t->resp);
	} else {
		t->resp.trl = t->resp.n;
		t->resp.over = false;
	}
	return 0;
}

static int u_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct wp_h2p_strm *t = wp_h2p_up_strm(ud, f->hd.stream_id);

	(void)ng;
	(void)flags;
	if (t && f->hd.type == NGHTTP2_HEADERS)
		hb_add(&t->resp, name, nlen, value, vlen);
	return 0;
}

/* The response head of <t> goes downstream (ResponseHeaderModifier). */
static void resp_head(struct wp_h2p_strm *t, bool end)
{
	struct wp_h2p_core *c = t->core;
	struct wp_h2p_sess *s = t->sess;
	struct hblock *h = &t->resp;
	const struct wp_http_hdr_mods *mods = t->has_rmods ? &t->rmods.mods : NULL;
	nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = wp_h2p_down_read};
	uint32_t n = 0;
	bool ok = true;

	for (uint16_t i = 0; i < h->n && ok; i++) {
		const nghttp2_nv *f = &h->nv[i];

		if (mods && f->name[0] != ':' &&
		    (name_in(f->name, f->namelen, mods->remove, mods->n_remove) ||
		     name_in(f->name, f->namelen, mods->set, mods->n_set)))
			continue;
		if (n >= c->tnv_cap)
			ok = false;
		else
			c->tnv[n++] = *f;
	}
	for (int k = 0; mods && k < 2 && ok; k++) {
		const struct wp_http_hdr *a = k ? mods->add : mods->set;
		uint16_t na = k ? mods->n_add : mods->n_set;

		for (uint16_t i = 0; i < na; i++) {
			if (n >= c->tnv_cap) {
				ok = false;
				break;
			}
			/* the copied names are ours: lower-case them in place */
			for (uint16_t j = 0; j < a[i].name_len; j++)
				if (a[i].name[j] >= 'A' && a[i].name[j] <= 'Z')
					((char *)a[i].name)[j] = (char)(a[i].name[j] - 'A' + 'a');
			nv_set(&c->tnv[n++], a[i].name, a[i].name_len, a[i].value, a[i].value_len);
		}
	}
	t->head_sent = true;
	{
		const nghttp2_nv *st = hb_find(h, 0, h->n, ":status");

		t->rec.status = 0;
		for (size_t i = 0; st && i < st->valuelen && i < 3; i++)
			t->rec.status = (uint16_t)(t->rec.status * 10 + (st->value[i] - '0'));
		wp_lb_cache_result(c->lbc, &t->act, t->rec.status); /* outlier detection */
	}
	if (!ok || h->over) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
		t->head_sent = false;
		wp_h2p_strm_local(t, 503, NULL, 0);
		wp_h2p_strm_cancel_up(t, NGHTTP2_CANCEL);
		return;
	}
	if (nghttp2_submit_response(s->ng, t->down_sid, c->tnv, n, end ? NULL : &prd) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
		(void)nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, t->down_sid,
		                                NGHTTP2_INTERNAL_ERROR);
	}
	wp_h2p_wake_sess(s);
}

static int u_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct wp_h2p_up *up = ud;
	struct wp_h2p_strm *t;
	bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	(void)ng;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_UP_GOAWAY);
		up->state = WP_H2P_UP_CLOSED;
		if (up->pe.active == 0)
			up_reap_later(up);
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	t = wp_h2p_up_strm(up, f->hd.stream_id);
	if (!t || !t->sess)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !t->head_sent) {
		const nghttp2_nv *st = hb_find(&t->resp, 0, t->resp.n, ":status");

		if (st && st->valuelen == 3 && st->value[0] == '1') {
			wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_INTERIM_DROPPED);
			return 0;
		}
		if (wp_h2p_retry_head(t)) /* discarded: its stream cancelled */
			return 0;
		wp_h2p_retry_release(t); /* this head goes downstream */
		if (end)
			t->resp_eof = true;
		resp_head(t, end);
		return 0;
	}
	if (f->hd.type == NGHTTP2_HEADERS) {
		if (t->resp.over) {
			wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
			t->resp.n = t->resp.trl;
		}
		t->resp.has_trl = true;
	}
	if (end) {
		t->resp_eof = true;
		(void)nghttp2_session_resume_data(t->sess->ng, t->down_sid);
		wp_h2p_wake_sess(t->sess);
	}
	return 0;
}

static int u_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                  void *ud)
{
	struct wp_h2p_up *up = ud;
	struct wp_h2p_strm *t = wp_h2p_up_strm(up, sid);

	(void)flags;
	if (!t || !t->sess || !t->head_sent || t->local) {
		(void)nghttp2_session_consume(ng, sid, len);
		return 0;
	}
	if (ring_room(&t->rb) < len) {
		wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_BUF_OVERRUN);
		(void)nghttp2_session_consume(ng, sid, len);
		(void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid,
		                                NGHTTP2_FLOW_CONTROL_ERROR);
		return 0;
	}
	ring_put(&t->rb, data, len);
	(void)nghttp2_session_resume_data(t->sess->ng, t->down_sid);
	wp_h2p_wake_sess(t->sess);
	return 0;
}

/* The upstream stream of <t> is gone with <code> (not NO_ERROR, or no
 * complete response): retry, answer locally, or reset the client's. */
static void strm_up_failed(struct wp_h2p_strm *t, uint32_t code, bool unprocessed)
{
	struct wp_h2p_core *c = t->core;

	if (!t->sess)
		return;
	if (!t->local && !(t->rec.flags & (WP_PIPE_F(UF) | WP_PIPE_F(UC))))
		t->rec.flags |= WP_PIPE_F(UR); /* its stream was reset (or ended short) */
	if (!t->head_sent && !t->local) {
		if ((unprocessed && wp_h2p_strm_retry(t, WP_ROUTE_RETRY_REFUSED_STREAM)) ||
		    wp_h2p_retry_fail(t, WP_RETRY_EV_RESET)) {
			t->rec.flags &= (uint16_t)~WP_PIPE_F(UR); /* another try */
			return;
		}
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_RESET);
		wp_h2p_strm_local(t, 503, NULL, 0);
		return;
	}
	if (t->local)
		return;
	wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_RESET);
	(void)nghttp2_submit_rst_stream(t->sess->ng, NGHTTP2_FLAG_NONE, t->down_sid,
	                                code != NGHTTP2_NO_ERROR ? code : NGHTTP2_INTERNAL_ERROR);
	wp_h2p_wake_sess(t->sess);
}

static int u_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct wp_h2p_up *up = ud;
	struct wp_h2p_strm *t = wp_h2p_up_strm(up, sid);
	bool unprocessed = code == NGHTTP2_REFUSED_STREAM;

	if (!t)
		return 0;
	if (t->mirror) { /* its response was thrown away */
		if (t->feeder)
			wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_MIRROR_ABANDONED);
		wp_h2p_mirror_free(t, false);
		return 0;
	}
	if (unprocessed)
		wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_UP_REFUSED);
	/* what rb still holds will go downstream (or nowhere): give the
	 * connection its window now, the stream's is gone with it */
	if (t->rb.len > 0)
		(void)nghttp2_session_consume_connection(ng, t->rb.len);
	if (code != NGHTTP2_NO_ERROR || !t->resp_eof)
		t->rb.head = t->rb.len = 0;
	wp_h2p_up_unlink_strm(t);
	if ((code != NGHTTP2_NO_ERROR || !t->resp_eof) && !t->head_sent)
		wp_lb_cache_result(t->core->lbc, &t->act, WP_LB_RES_LOCAL_FAIL);
	wp_lb_cache_end(t->core->lbc, &t->act);
	if (code != NGHTTP2_NO_ERROR || !t->resp_eof) {
		strm_up_failed(t, code, unprocessed);
	} else if (t->sess) {
		if (!t->req_eof)
			wp_h2p_qb_discard(t); /* the rest of the request is not forwarded */
		(void)nghttp2_session_resume_data(t->sess->ng, t->down_sid);
		wp_h2p_wake_sess(t->sess);
	}
	if (!t->sess && !t->up)
		wp_h2p_strm_free(t);
	return 0;
}

/* A request HEADERS nghttp2 gave up on (GOAWAY came first, or the session
 * is closing): the upstream never saw the stream. No stream was opened, so
 * there is no user data: find it on the connection's list. */
static int u_not_send(nghttp2_session *ng, const nghttp2_frame *f, int err, void *ud)
{
	struct wp_h2p_up *up = ud;
	struct wp_h2p_strm *t;

	(void)ng;
	(void)err;
	if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	for (t = up->strms; t && t->up_sid != f->hd.stream_id; t = t->unext)
		;
	if (!t)
		return 0;
	if (t->mirror) {
		wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_MIRROR_ABANDONED);
		wp_h2p_mirror_free(t, false);
		return 0;
	}
	wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_UP_REFUSED);
	wp_h2p_up_unlink_strm(t);
	wp_lb_cache_end(t->core->lbc, &t->act);
	strm_up_failed(t, NGHTTP2_REFUSED_STREAM, true);
	return 0;
}

int wp_h2p_setup_callbacks(struct wp_h2p_core *c)
{
	nghttp2_session_callbacks *d, *u;

	if (nghttp2_session_callbacks_new(&c->cb_down) ||
	    nghttp2_session_callbacks_new(&c->cb_up) || nghttp2_option_new(&c->opt_down) ||
	    nghttp2_option_new(&c->opt_up))
		return -ENOMEM;
	d = c->cb_down;
	u = c->cb_up;
	nghttp2_session_callbacks_set_on_begin_headers_callback(d, wp_h2p_d_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(d, wp_h2p_d_header);
	nghttp2_session_callbacks_set_on_invalid_header_callback(d, wp_h2p_d_invalid_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(d, wp_h2p_d_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(d, wp_h2p_d_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(d, wp_h2p_d_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(d, wp_h2p_d_frame_send);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(d, wp_h2p_d_invalid_frame);
	nghttp2_session_callbacks_set_on_begin_headers_callback(u, u_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(u, u_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(u, u_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(u, u_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(u, u_stream_close);
	nghttp2_session_callbacks_set_on_frame_not_send_callback(u, u_not_send);
	nghttp2_option_set_no_auto_window_update(c->opt_down, 1);
	nghttp2_option_set_no_auto_window_update(c->opt_up, 1);
	nghttp2_option_set_peer_max_concurrent_streams(c->opt_up, c->cfg.max_up_streams);
	nghttp2_option_set_max_send_header_block_length(c->opt_up, 65536);
	return 0;
}

/* ---- HTTP/1.1 upstreams ----------------------------------------------------------------- */

/* Fields never sent on an HTTP/1.1 request (hop-by-hop, or HTTP/2 only).
 *
 * No Upgrade / CONNECT ever reaches an HTTP/1.1 upstream, so no client bytes
 * can follow a request the backend might decline and parse as requests of
 * its own (unlike dp/l7/h1proxy.c, which holds them): Upgrade and
 * Connection are connection-specific fields nghttp2 refuses from the client
 * (and would be dropped here), a CONNECT has no :path (400 in strm_route(),
 * or refused by nghttp2 when it has one without :protocol, which we never
 * enable), every request body is framed by content-length or chunked, and a
 * 101 or CONNECT-style 2xx from the backend answers 502 (h1_head()).
 * test_h2p_h1up.c: test_no_upgrade. */
static bool h1_hop(const uint8_t *n, size_t l)
{
	static const char *const hop[] = {"connection",        "keep-alive", "proxy-connection",
	                                  "transfer-encoding", "upgrade",    "te",
	                                  "http2-settings"};

	for (size_t i = 0; i < WP_ARRAY_SIZE(hop); i++)
		if (strlen(hop[i]) == l && !memcmp(hop[i], n, l))
			return true;
	return false;
}

struct obuf {
	char *b;
	size_t cap, n;
	bool over;
};

static void ob_put(struct obuf *o, const void *p, size_t n)
{
	if (o->over || o->cap - o->n < n) {
		o->over = true;
		return;
	}
	memcpy(o->b + o->n, p, n);
	o->n += n;
}

#define OB_LIT(o, s) ob_put(o, s, sizeof(s) - 1)

/* Writes the request head of <t> (its upstream block t->onv) into the
 * output of the idle <up> and makes <t> its stream. 0, or -ENOSPC (counted)
 * when the head does not fit. */
int wp_h2p_h1_submit(struct wp_h2p_strm *t, struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = t->core;
	struct h1up *h = h1s(up);
	const nghttp2_nv *m = NULL, *p = NULL, *au = NULL;
	struct obuf o = {.b = h->ob, .cap = h->ob_cap};
	bool has_cl = false, cookie = false;
	uint8_t framing;

	if (up->out_len > 0 && up->out != (const uint8_t *)h->ob) /* the last request's tail */
		memmove(h->ob, up->out, up->out_len);
	o.n = up->out_len;
	for (uint16_t i = 0; i < t->n_onv; i++) {
		const nghttp2_nv *f = &t->onv[i];

		if (f->namelen == 7 && !memcmp(f->name, ":method", 7))
			m = f;
		else if (f->namelen == 5 && !memcmp(f->name, ":path", 5))
			p = f;
		else if (f->namelen == 10 && !memcmp(f->name, ":authority", 10))
			au = f;
	}
	if (!m || !p)
		return -EINVAL; /* build_onv() always writes both */
	ob_put(&o, m->value, m->valuelen);
	OB_LIT(&o, " ");
	ob_put(&o, p->value, p->valuelen);
	OB_LIT(&o, " HTTP/1.1\r\nhost: ");
	if (au)
		ob_put(&o, au->value, au->valuelen);
	OB_LIT(&o, "\r\n");
	for (uint16_t i = 0; i < t->n_onv; i++) {
		const nghttp2_nv *f = &t->onv[i];

		if ((f->namelen > 0 && f->name[0] == ':') || h1_hop(f->name, f->namelen))
			continue;
		if (f->namelen == 14 && !memcmp(f->name, "content-length", 14))
			has_cl = true;
		if (f->namelen == 6 && !memcmp(f->name, "cookie", 6)) {
			cookie = true; /* written below, as one field */
			continue;
		}
		ob_put(&o, f->name, f->namelen);
		OB_LIT(&o, ": ");
		ob_put(&o, f->value, f->valuelen);
		OB_LIT(&o, "\r\n");
	}
	if (cookie) { /* RFC 9113 8.2.3: cookie fields joined with "; " */
		bool first = true;

		OB_LIT(&o, "cookie: ");
		for (uint16_t i = 0; i < t->n_onv; i++) {
			const nghttp2_nv *f = &t->onv[i];

			if (f->namelen != 6 || memcmp(f->name, "cookie", 6))
				continue;
			if (!first)
				OB_LIT(&o, "; ");
			ob_put(&o, f->value, f->valuelen);
			first = false;
		}
		OB_LIT(&o, "\r\n");
	}
	if (t->req_eof && t->qb.len == 0 && !(t->req.has_trl && t->req.n > t->req.trl)) {
		framing = H1_FRAME_NONE;
	} else if (has_cl) {
		framing = H1_FRAME_LENGTH;
	} else {
		framing = H1_FRAME_CHUNKED;
		OB_LIT(&o, "transfer-encoding: chunked\r\n");
	}
	OB_LIT(&o, "\r\n");
	if (o.over) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_H1_HEAD_TOO_BIG);
		return -ENOSPC;
	}
	up->out = (const uint8_t *)h->ob;
	up->out_len = o.n;
	h->cur = t;
	h->framing = framing;
	h->req_done = framing == H1_FRAME_NONE;
	h->wrote = h->interim = h->head_in = false;
	h->method = wp_h2p_method_id(m->value, m->valuelen);
	if (h->method == 0xff)
		h->method = HTTP_GET; /* framed like any method but HEAD / CONNECT */
	wp_http1_parser_expect_response(&h->p, h->method);
	t->up_sid = 1; /* linked */
	wp_h2p_up_link_strm(up, t);
	wp_h2p_wake_up(up);
	return 0;
}

/* Refills the output of <up> (empty) with the next request body slice of
 * its stream, framed, or the end of the request. */
static void h1_fill(struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = up->core;
	struct h1up *h = h1s(up);
	struct wp_h2p_strm *t = h->cur;
	size_t n, o = 0;
	int k;

	if (!t || h->req_done)
		return;
	/* (a held body's sent bytes stay in qb for a replay: h2p_retry.c) */
	n = WP_MIN((size_t)(t->qb.len - (t->hold ? t->qsent : 0)), (size_t)H1_OB_BODY);
	if (n > 0) {
		if (h->framing == H1_FRAME_CHUNKED) {
			k = wp_http1_write_chunk_header(n, h->ob, 32);
			if (k < 0)
				return; /* cannot happen: 32 bytes hold any length */
			o = (size_t)k;
		}
		n = wp_h2p_qb_take(t, (uint8_t *)h->ob + o, n); /* (gives the client its window) */
		o += n;
		if (h->framing == H1_FRAME_CHUNKED) {
			memcpy(h->ob + o, WP_HTTP1_CHUNK_END, WP_HTTP1_CHUNK_END_LEN);
			o += WP_HTTP1_CHUNK_END_LEN;
		}
		t->up_sent += n;
	} else if (t->req_eof) {
		bool trl = t->req.has_trl && t->req.n > t->req.trl;

		if (h->framing == H1_FRAME_CHUNKED) {
			uint16_t nt = 0;

			for (uint16_t i = t->req.trl; trl && i < t->req.n; i++) {
				const nghttp2_nv *f = &t->req.nv[i];
				struct wp_http_hdr *r = &c->rh[nt];

				if (h1_hop(f->name, f->namelen))
					continue;
				memset(r, 0, sizeof(*r));
				r->name = (const char *)f->name;
				r->name_len = (uint16_t)f->namelen;
				r->value = (const char *)f->value;
				r->value_len = (uint32_t)f->valuelen;
				nt++;
			}
			k = wp_http1_write_last_chunk(c->rh, nt, h->ob, h->ob_cap);
			if (k < 0) { /* cannot happen: the block fits the buffer */
				wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_H1_TRAILERS_DROPPED);
				k = wp_http1_write_last_chunk(NULL, 0, h->ob, h->ob_cap);
			}
			o = (size_t)WP_MAX(k, 0);
		} else if (trl) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_H1_TRAILERS_DROPPED);
		}
		h->req_done = true;
	}
	up->out = (const uint8_t *)h->ob;
	up->out_len = o;
}

/* <t> leaves <up> (its exchange is over or abandoned); the connection is
 * closed (after what it still has to write is dropped) unless <keep>. */
static void h1_detach(struct wp_h2p_up *up, struct wp_h2p_strm *t, bool keep)
{
	struct h1up *h = h1s(up);

	h->cur = NULL;
	h->head_in = h->interim = false;
	if (!keep) {
		up->state = WP_H2P_UP_CLOSED; /* up_went_idle() closes it */
		up->out_len = 0;
	}
	wp_lb_cache_end(t->core->lbc, &t->act);
	wp_h2p_up_unlink_strm(t);
	wp_h2p_wake_up(up);
}

/* wp_h2p_strm_cancel_up() of a stream on an HTTP/1.1 upstream: the message cannot
 * be finished, so the connection is closed, unless nothing of the request
 * went out yet (then it stays for the next one). */
void wp_h2p_h1_abort(struct wp_h2p_up *up, struct wp_h2p_strm *t)
{
	struct h1up *h = h1s(up);
	bool keep = false;

	if (h->cur == t) {
		keep = !h->wrote && !h->head_in && up->state != WP_H2P_UP_CLOSED;
		if (keep)
			up->out_len = 0; /* its head was not taken: forget it */
		else
			wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_UP_H1_ABORT);
	}
	h1_detach(up, t, keep);
}

/* A malformed, short or upgrading response: 502 before a head went out,
 * else a reset (INTERNAL_ERROR); the connection is closed. */
static void h1_bad(struct wp_h2p_up *up, struct wp_h2p_strm *t)
{
	wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_UP_H1_BAD_RESPONSE);
	t->rec.flags |= WP_PIPE_F(UPE);
	h1_detach(up, t, false);
	if (t->sess) {
		t->rb.head = t->rb.len = 0;
		wp_h2p_strm_local(t, 502, NULL, 0);
	}
}

/* A response head for <t>. False when the exchange was abandoned. */
static bool h1_head(struct wp_h2p_up *up, struct wp_h2p_strm *t, const struct wp_http1_msg *msg)
{
	struct h1up *h = h1s(up);
	char st[8];
	bool end;
	int n;

	/* a 1xx has no content (RFC 9110 15.2), but llhttp reads one when the
	 * head announces it (but 100, 102, 103): the bytes would go to the
	 * real response, unbounded; such a response is malformed */
	if (msg->status / 100 == 1 && msg->status != 101 &&
	    ((msg->flags & WP_HTTP1_F_CHUNKED) ||
	     ((msg->flags & WP_HTTP1_F_CONTENT_LENGTH) && msg->content_length > 0))) {
		h1_bad(up, t);
		return false;
	}
	if (msg->status / 100 == 1 && msg->status != 101) {
		wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_INTERIM_DROPPED);
		h->interim = true;
		return true;
	}
	/* :status is three digits in HTTP/2 (RFC 9113 8.3.2); llhttp takes
	 * "HTTP/1.1 20": a status it cannot carry is a malformed response */
	if (msg->status == 101 || (msg->flags & WP_HTTP1_F_UPGRADE) || msg->status < 100 ||
	    msg->status > 999) {
		h1_bad(up, t);
		return false;
	}
	h->head_in = true;
	hb_reset(&t->resp);
	n = snprintf(st, sizeof(st), "%u", msg->status);
	hb_add(&t->resp, (const uint8_t *)":status", 7, (const uint8_t *)st, (size_t)n);
	for (uint16_t i = 0; i < msg->n_hdrs; i++) {
		const struct wp_http_hdr *f = &msg->hdrs[i];

		/* a 204 has no content-length (RFC 9110 8.6): HTTP/2 clients
		 * reject one, so a backend's is dropped */
		if (!(f->flags & WP_HDR_F_HOP) &&
		    !(msg->status == 204 && f->id == WP_HDR_CONTENT_LENGTH))
			hb_add(&t->resp, (const uint8_t *)f->name, f->name_len,
			       (const uint8_t *)f->value, f->value_len);
	}
	end = (msg->flags & WP_HTTP1_F_NO_BODY) ||
	      ((msg->flags & WP_HTTP1_F_CONTENT_LENGTH) && msg->content_length == 0);
	if (wp_h2p_retry_head(t)) /* retried: the exchange was abandoned (closed) */
		return false;
	wp_h2p_retry_release(t); /* this head goes downstream */
	if (end)
		t->resp_eof = true;
	resp_head(t, end); /* may abandon it (wp_h2p_h1_abort) */
	return h->cur == t;
}

/* The response of <t> is complete (trailers in <msg>). */
static void h1_done(struct wp_h2p_up *up, struct wp_h2p_strm *t, const struct wp_http1_msg *msg)
{
	struct wp_h2p_core *c = up->core;
	struct h1up *h = h1s(up);
	bool keep =
	        (msg->flags & WP_HTTP1_F_KEEP_ALIVE) && !(msg->flags & WP_HTTP1_F_BODY_UNTIL_EOF);
	bool req_done = h->req_done;

	if (h->interim) { /* the 1xx ended: the real response comes next */
		h->interim = false;
		wp_http1_parser_expect_response(&h->p, h->method);
		return;
	}
	if (!t->resp_eof) {
		t->resp.trl = t->resp.n;
		t->resp.over = false;
		for (uint16_t i = 0; i < msg->n_trailers; i++) {
			const struct wp_http_hdr *f = &msg->trailers[i];

			/* no framing field in trailers (RFC 9110 6.5.1): an HTTP/2
			 * client would take a content-length there as the body's */
			if (!(f->flags & WP_HDR_F_HOP) && f->id != WP_HDR_CONTENT_LENGTH)
				hb_add(&t->resp, (const uint8_t *)f->name, f->name_len,
				       (const uint8_t *)f->value, f->value_len);
		}
		if (t->resp.over) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
			t->resp.n = t->resp.trl;
		}
		t->resp.has_trl = t->resp.n > t->resp.trl;
		t->resp_eof = true;
	}
	if (!keep || !req_done) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_H1_CLOSE);
		keep = false;
	}
	h1_detach(up, t, keep);
	if (t->sess) {
		if (!req_done)
			wp_h2p_qb_discard(t); /* the rest of the request is not forwarded */
		(void)nghttp2_session_resume_data(t->sess->ng, t->down_sid);
		wp_h2p_wake_sess(t->sess);
	}
}

/* Response bytes: fed to the parser as far as the stream's rb has room.
 * Returns how many were taken. */
static size_t h1_in(struct wp_h2p_up *up, const uint8_t *data, size_t len)
{
	struct h1up *h = h1s(up);
	size_t used = 0;

	up_set_ready(up);
	for (;;) {
		struct wp_h2p_strm *t = h->cur;
		struct wp_http1_ev ev;
		size_t avail = len - used;

		if (!t) {
			if (avail > 0 && up->state != WP_H2P_UP_CLOSED) {
				wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_UP_H1_STRAY);
				up->state = WP_H2P_UP_CLOSED;
				up->out_len = 0;
				up_reap_later(up);
			}
			return up->state == WP_H2P_UP_CLOSED ? len : used;
		}
		if (h->head_in)
			avail = WP_MIN(avail, (size_t)ring_room(&t->rb));
		used += wp_http1_parse(&h->p, data + used, avail, &ev);
		switch (ev.type) {
		case WP_HTTP1_EV_NONE:
			return used;
		case WP_HTTP1_EV_HEAD:
			if (!h1_head(up, t, ev.msg))
				return len;
			break;
		case WP_HTTP1_EV_BODY:
			ring_put(&t->rb, ev.data, ev.len);
			(void)nghttp2_session_resume_data(t->sess->ng, t->down_sid);
			wp_h2p_wake_sess(t->sess);
			break;
		case WP_HTTP1_EV_DONE:
			h1_done(up, t, ev.msg);
			break;
		default: /* EV_ERROR, EV_UPGRADE */
			h1_bad(up, t);
			return len;
		}
	}
}

/* The upstream closed its side: a response read until EOF ends, a cut one
 * is bad; no response at all is left to up_lost() (503 or a retry). */
static void h1_eof(struct wp_h2p_up *up)
{
	struct h1up *h = h1s(up);
	struct wp_h2p_strm *t = h->cur;
	struct wp_http1_ev ev;

	if (!t)
		return;
	wp_http1_parse_eof(&h->p, &ev);
	if (ev.type == WP_HTTP1_EV_DONE && !h->interim)
		h1_done(up, t, ev.msg);
	else if (ev.type != WP_HTTP1_EV_NONE || h->head_in)
		h1_bad(up, t);
}

/* ---- upstream transport events ---------------------------------------------------------- */

void wp_h2p_up_connected(struct wp_h2p_up *up)
{
	for (struct wp_h2p_strm *t = up->strms; t; t = t->unext)
		wp_lb_cache_result(up->core->lbc, &t->act, WP_LB_RES_CONNECTED);
	up_set_ready(up);
	wp_h2p_wake_up(up);
}

/* The transport of <up> is gone: move or answer its streams. */
static void up_lost(struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = up->core;
	bool connecting = up->state == WP_H2P_UP_CONNECTING;

	if (up->strms && !connecting)
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_LOST);
	if (connecting)
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_CONNECT_FAILED);
	up->state = WP_H2P_UP_CLOSED;
	while (up->strms) {
		struct wp_h2p_strm *t = up->strms;
		/* never opened on the wire: the upstream cannot have seen it */
		bool unprocessed =
		        connecting ||
		        (up->h1 ? !h1s(up)->wrote
		                : nghttp2_session_find_stream(up->ng, t->up_sid) == NULL);

		if (t->mirror) {
			if (t->feeder || !t->resp_eof)
				wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_MIRROR_ABANDONED);
			wp_h2p_mirror_free(t, false);
			continue;
		}

		if (connecting)
			wp_uppool_tried_add(&t->failed, &up->pe);
		if (up->h1)
			h1s(up)->cur = NULL;
		wp_h2p_up_unlink_strm(t);
		if (!t->head_sent) /* refused or reset before the answer */
			wp_lb_cache_result(c->lbc, &t->act, WP_LB_RES_LOCAL_FAIL);
		wp_lb_cache_end(t->core->lbc, &t->act);
		if (!(t->resp_eof && t->head_sent))
			t->rb.head = t->rb.len = 0;
		if (t->sess && unprocessed &&
		    wp_h2p_strm_retry(t, connecting ? WP_ROUTE_RETRY_CONNECT_FAILURE
		                                    : WP_ROUTE_RETRY_REFUSED_STREAM))
			continue;
		if (!(t->resp_eof && t->head_sent))
			t->rec.flags |= connecting
			                        ? WP_PIPE_F(UF) | (t->retried ? WP_PIPE_F(URX) : 0)
			                        : WP_PIPE_F(UC);
		if (t->resp_eof && t->head_sent && t->sess) {
			(void)nghttp2_session_resume_data(t->sess->ng, t->down_sid);
			wp_h2p_wake_sess(t->sess);
			continue; /* complete already: the response drains */
		}
		strm_up_failed(t, NGHTTP2_INTERNAL_ERROR, false);
	}
}

void wp_h2p_up_failed(struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = up->core;

	up_lost(up);
	up->io = NULL;
	wp_h2p_up_destroy(up, false);
	wp_h2p_core_reap(c);
	wp_h2p_pend_kick(c);
}

void wp_h2p_up_eof(struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = up->core;

	if (up->h1)
		h1_eof(up); /* a response read until EOF is complete now */
	up_lost(up);
	wp_h2p_up_destroy(up, true);
	wp_h2p_core_reap(c);
	wp_h2p_pend_kick(c);
}

size_t wp_h2p_up_in(struct wp_h2p_up *up, const uint8_t *data, size_t len)
{
	struct wp_h2p_core *c = up->core;
	ssize_t n;

	if (up->h1) {
		size_t k;

		if (up->state == WP_H2P_UP_FREE)
			return len;
		c->cur_up = up;
		k = h1_in(up, data, len);
		c->cur_up = NULL;
		wp_h2p_core_reap(c);
		wp_h2p_pend_kick(c);
		return k;
	}
	if (!up->ng)
		return len;
	up_set_ready(up);
	c->cur_up = up;
	n = nghttp2_session_mem_recv(up->ng, data, len);
	c->cur_up = NULL;
	if (n < 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_PROTOCOL);
		up_lost(up);
		up_reap_later(up);
	} else if (!nghttp2_session_want_read(up->ng) && !nghttp2_session_want_write(up->ng)) {
		up_lost(up);
		up_reap_later(up);
	}
	wp_h2p_core_reap(c);
	wp_h2p_pend_kick(c);
	return len;
}

size_t wp_h2p_up_peek(struct wp_h2p_up *up, const uint8_t **p)
{
	*p = NULL;
	if (up->h1) {
		if (up->state == WP_H2P_UP_FREE || up->state == WP_H2P_UP_CONNECTING)
			return 0;
		if (up->out_len == 0)
			h1_fill(up);
		*p = up->out;
		return up->out_len;
	}
	if (!up->ng || up->state == WP_H2P_UP_CONNECTING)
		return 0;
	if (up->out_len == 0) {
		ssize_t n;

		up->core->cur_up = up;
		n = nghttp2_session_mem_send(up->ng, &up->out);
		up->core->cur_up = NULL;
		if (n < 0) {
			wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_UP_PROTOCOL);
			up_lost(up);
			up_reap_later(up);
			n = 0;
		}
		up->out_len = (size_t)n;
		wp_h2p_core_reap(up->core);
		/* wp_h2p_core_reap may have freed <up>: its ng is NULL then */
		if (!up->ng)
			return 0;
	}
	*p = up->out;
	return up->out_len;
}

void wp_h2p_up_consume(struct wp_h2p_up *up, size_t n)
{
	WP_ASSERT(n <= up->out_len);
	up->out += n;
	up->out_len -= n;
	if (up->h1 && n > 0)
		h1s(up)->wrote = true;
}

uint8_t wp_h2p_method_id(const uint8_t *m, size_t l)
{
	static const struct {
		const char *s;
		uint8_t id;
	} t[] = {
	        {"GET", HTTP_GET},         {"POST", HTTP_POST},     {"PUT", HTTP_PUT},
	        {"HEAD", HTTP_HEAD},       {"DELETE", HTTP_DELETE}, {"PATCH", HTTP_PATCH},
	        {"OPTIONS", HTTP_OPTIONS}, {"TRACE", HTTP_TRACE},   {"CONNECT", HTTP_CONNECT},
	};

	for (size_t i = 0; i < WP_ARRAY_SIZE(t); i++)
		if (strlen(t[i].s) == l && !memcmp(t[i].s, m, l))
			return t[i].id;
	return 0xff; /* matches no method condition */
}

bool wp_h2p_is_preface(const uint8_t *data, size_t len)
{
	static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

	if (len < 4)
		return false;
	return !memcmp(data, pre, WP_MIN(len, sizeof(pre) - 1));
}
