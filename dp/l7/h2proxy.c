/*
 * h2c / gRPC proxy session (see h2proxy.h): a downstream nghttp2 server
 * session per tunnel, upstream nghttp2 client sessions pooled per core and
 * endpoint, and one struct wp_h2p_strm per proxied request joining a
 * downstream stream to an upstream stream.
 *
 * A strm belongs to its session (sess list) and, once routed, to an
 * upstream (up list). nghttp2 callbacks find it through the stream's user
 * data and check that it still points back at (session, stream id): a strm
 * that was recycled is never mistaken for the old stream, so detaching
 * never depends on nghttp2 telling us about streams it dropped. Each
 * direction has a ring; DATA goes into the ring on one side and is taken
 * by the other side's data provider, which is also when the source's
 * window is reopened (nghttp2_session_consume()). Bytes a side discards are
 * consumed at once so no connection window leaks.
 *
 * nghttp2 sessions are never destroyed from inside one of their callbacks:
 * an upstream that must close is put on the core's reap list and closed at
 * the end of the public call.
 *
 * HTTP/1.1 upstreams (sessions opened with WP_H2P_SESS_H1_UPSTREAM) share
 * the upstream pool: such an up has no nghttp2 session but a struct h1up
 * (a dp/http response parser with its arena, and an output buffer holding
 * the request head and the body framed from qb) and carries at most one
 * stream. Request bytes are taken from qb by h1_fill() (which reopens the
 * client's window, as up_read() does), response bytes are fed to the
 * parser only as far as the stream's rb has room, so wp_h2p_up_in() takes
 * fewer bytes while the client does not read.
 */
#include "h2proxy_int.h"
#include "wp/rand.h"

const struct wp_h2p_cfg wp_h2p_default_cfg = {
        .max_sessions = 64,
        .max_upstreams = 64,
        .max_streams = 256,
        .max_down_streams = 100,
        .max_up_streams = 100,
        .stream_buf = 65536,
        .window = 65535,
        .max_header_bytes = 16384,
        .max_headers = 64,
        .idle_timeout_ms = 60000,
        .max_idle_per_ep = 4,
        .max_idle_h1_per_ep = 64,
        .rst_per_sec = 200,
        .down_idle_timeout_ms = 3600 * 1000,
        .mirror_timeout_ms = 30000,
};

/* ---- core ------------------------------------------------------------------------------- */

void wp_h2p_wake_sess(struct wp_h2p_sess *s)
{
	if (s && s->core->ops->wake_sess)
		s->core->ops->wake_sess(s->core->host, s);
}

void wp_h2p_wake_up(struct wp_h2p_up *up)
{
	if (up && up->core->ops->wake_up)
		up->core->ops->wake_up(up->core->host, up);
}

/* Every upstream object's HTTP/1.1 parser arena and output buffer, in one
 * block (c->h1ups[0].arena). */
static int h1_alloc(struct wp_h2p_core *c)
{
	size_t asz = (wp_http1_arena_size(&c->h1lim) + 63) & ~(size_t)63;
	size_t ocap = 2 * (size_t)c->cfg.max_header_bytes + 64 * (size_t)c->cfg.max_headers +
	              H1_OB_BODY + 256;
	size_t per = asz + ((ocap + 63) & ~(size_t)63);
	uint8_t *m = aligned_alloc(64, per * c->cfg.max_upstreams);

	if (!m)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->cfg.max_upstreams; i++) {
		struct h1up *h = &c->h1ups[i];

		h->arena = m + per * i;
		h->arena_size = asz;
		h->ob = (char *)m + per * i + asz;
		h->ob_cap = (uint32_t)ocap;
	}
	return 0;
}

struct wp_h2p_core *wp_h2p_core_create(const struct wp_h2p_cfg *cfg, const struct wp_h2p_ops *ops,
                                       void *host, struct wp_route_core *rc, nghttp2_mem *mem,
                                       uint64_t seed, uint64_t *ctr)
{
	struct wp_h2p_core *c;
	size_t nvs, per;

	if (!cfg || !ops || !ops->up_open || !ops->up_close || !rc || !ctr || !cfg->max_sessions ||
	    !cfg->max_upstreams || !cfg->max_streams || cfg->stream_buf < 1024 ||
	    cfg->window == 0 || cfg->window > cfg->stream_buf || cfg->window > INT32_MAX ||
	    cfg->max_headers < 8 || cfg->max_header_bytes < 256 || !cfg->max_down_streams ||
	    !cfg->max_up_streams) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->ops = ops;
	c->host = host;
	c->rc = rc;
	c->mem = mem;
	c->ctr = ctr;
	wp_http_reqid_seed(&c->rng, seed ^ 0x5bd1e995);
	wp_rand_seed(&c->rrng, seed);
	wp_rand_seed(&c->fault_rng, seed ^ 0x6a09e667f3bcc909ull);
	nvs = (size_t)cfg->max_headers;
	/* per stream: 2 rings, 2 header blocks (bytes + fields), the out fields */
	per = 2 * (size_t)cfg->stream_buf + 2 * (size_t)cfg->max_header_bytes +
	      (2 * nvs + nvs + OUT_EXTRA) * sizeof(nghttp2_nv);
	per = (per + 63) & ~(size_t)63;
	c->tnv_cap = (uint32_t)nvs + OUT_EXTRA + WP_HTTP_MODS_COPY_HDRS;
	c->sessions = calloc(cfg->max_sessions, sizeof(*c->sessions));
	c->ups = calloc(cfg->max_upstreams, sizeof(*c->ups));
	c->reap = calloc(cfg->max_upstreams, sizeof(*c->reap));
	c->strms = calloc(cfg->max_streams, sizeof(*c->strms));
	c->mem_blk = aligned_alloc(64, per * cfg->max_streams);
	c->lbc = wp_lb_cache_new(seed, ctr);
	if (c->lbc)
		wp_lb_cache_set_outlier(c->lbc, cfg->outlier);
	c->tnv = calloc(c->tnv_cap, sizeof(*c->tnv));
	c->rh = calloc(nvs + 1, sizeof(*c->rh));
	c->h1lim.max_line = 8192;
	c->h1lim.max_header_bytes = cfg->max_header_bytes;
	c->h1lim.max_headers = cfg->max_headers;
	c->h1ups = calloc(cfg->max_upstreams, sizeof(*c->h1ups));
	if (!c->sessions || !c->ups || !c->reap || !c->strms || !c->mem_blk || !c->lbc || !c->tnv ||
	    !c->rh || !c->h1ups || h1_alloc(c) != 0 || wp_h2p_setup_callbacks(c) != 0) {
		wp_h2p_core_destroy(c);
		errno = ENOMEM;
		return NULL;
	}
	for (uint32_t i = cfg->max_streams; i-- > 0;) {
		struct wp_h2p_strm *t = &c->strms[i];
		uint8_t *m = c->mem_blk + per * i;

		t->core = c;
		t->qb.p = m;
		t->qb.cap = cfg->stream_buf;
		m += cfg->stream_buf;
		t->rb.p = m;
		t->rb.cap = cfg->stream_buf;
		m += cfg->stream_buf;
		t->req.b = (char *)m;
		t->req.cap = cfg->max_header_bytes;
		m += cfg->max_header_bytes;
		t->resp.b = (char *)m;
		t->resp.cap = cfg->max_header_bytes;
		m += cfg->max_header_bytes;
		t->req.nv = (nghttp2_nv *)(void *)m;
		t->req.max = cfg->max_headers;
		m += nvs * sizeof(nghttp2_nv);
		t->resp.nv = (nghttp2_nv *)(void *)m;
		t->resp.max = cfg->max_headers;
		m += nvs * sizeof(nghttp2_nv);
		t->onv = (nghttp2_nv *)(void *)m;
		t->next_free = c->free_strm;
		c->free_strm = t;
	}
	for (uint32_t i = cfg->max_sessions; i-- > 0;) {
		c->sessions[i].core = c;
		c->sessions[i].next_free = c->free_sess;
		c->free_sess = &c->sessions[i];
	}
	for (uint32_t i = 0; i < cfg->max_upstreams; i++)
		c->ups[i].core = c;
	wp_uppool_init(&c->pool, &c->ups[0].pe, sizeof(c->ups[0]), cfg->max_upstreams,
	               cfg->idle_timeout_ms, &wp_h2p_pool_ops);
	wp_cb_core_init(&c->cb, cfg->n_workers, ctr);
	return c;
}

void wp_h2p_core_destroy(struct wp_h2p_core *c)
{
	if (!c)
		return;
	if (c->ups) {
		for (uint32_t i = 0; c->strms && i < c->cfg.max_streams; i++)
			if (c->strms[i].in_use && c->strms[i].mirror)
				wp_h2p_mirror_free(&c->strms[i], false);
		for (uint32_t i = 0; i < c->cfg.max_upstreams; i++)
			if (c->ups[i].pe.state != WP_UPPOOL_FREE)
				wp_h2p_up_destroy(&c->ups[i], true);
	}
	if (c->cb_down)
		nghttp2_session_callbacks_del(c->cb_down);
	if (c->cb_up)
		nghttp2_session_callbacks_del(c->cb_up);
	if (c->opt_down)
		nghttp2_option_del(c->opt_down);
	if (c->opt_up)
		nghttp2_option_del(c->opt_up);
	free(c->sessions);
	free(c->ups);
	free(c->reap);
	free(c->strms);
	free(c->mem_blk);
	wp_lb_cache_free(c->lbc);
	free(c->tnv);
	free(c->rh);
	if (c->h1ups)
		free(c->h1ups[0].arena);
	free(c->h1ups);
	free(c);
}

uint32_t wp_h2p_core_upstreams(const struct wp_h2p_core *c)
{
	return c->pool.n_busy + c->pool.n_idle;
}

uint32_t wp_h2p_core_streams(const struct wp_h2p_core *c)
{
	return c->n_strms;
}

/* ---- streams ---------------------------------------------------------------------------- */

static struct wp_h2p_strm *strm_alloc(struct wp_h2p_sess *s, int32_t sid)
{
	struct wp_h2p_core *c = s->core;
	struct wp_h2p_strm *t = c->free_strm;

	if (!t)
		return NULL;
	c->free_strm = t->next_free;
	t->next_free = NULL;
	t->in_use = true;
	t->sess = s;
	t->down_sid = sid;
	t->up = NULL;
	t->up_sid = 0;
	hb_reset(&t->req);
	hb_reset(&t->resp);
	t->qb.head = t->qb.len = 0;
	t->rb.head = t->rb.len = 0;
	t->n_onv = 0;
	t->grpc = t->req_eof = t->resp_eof = t->head_sent = t->local = t->routed = false;
	t->head_req = false;
	t->local_txt = NULL;
	t->up_sent = 0;
	t->pick_table = NULL;
	t->retries_left = 0;
	t->retry_on = 0;
	t->failed.n = 0;
	t->act.t = NULL;
	t->has_rmods = false;
	t->mirror = false;
	t->n_mir = 0;
	t->feeder = NULL;
	t->rec.active = false;
	t->retried = t->reqid_gen = t->fault_done = false;
	t->fault_until_ms = 0;
	t->sprev = NULL;
	t->snext = s->strms;
	if (s->strms)
		s->strms->sprev = t;
	s->strms = t;
	s->n_strms++;
	c->n_strms++;
	return t;
}

void wp_h2p_strm_free(struct wp_h2p_strm *t)
{
	struct wp_h2p_core *c = t->core;

	WP_ASSERT(t->sess == NULL && t->up == NULL);
	wp_h2p_retry_unwait(t);
	wp_h2p_pend_leave(t);
	wp_lb_cache_end(t->core->lbc, &t->act);
	wp_cb_req_end(t->cbk);
	if (t->cb_retry)
		wp_cb_retry_end(t->cbk);
	t->cbk = NULL;
	t->cb_retry = false;
	t->in_use = false;
	t->down_sid = t->up_sid = 0;
	t->next_free = c->free_strm;
	c->free_strm = t;
	c->n_strms--;
}

struct wp_h2p_strm *wp_h2p_up_strm(struct wp_h2p_up *up, int32_t sid)
{
	struct wp_h2p_strm *t = nghttp2_session_get_stream_user_data(up->ng, sid);

	return t && t->in_use && t->up == up && t->up_sid == sid ? t : NULL;
}

/* Gives the source session back the window of ring bytes that will never
 * be forwarded. */
void wp_h2p_qb_discard(struct wp_h2p_strm *t)
{
	if (t->qb.len && t->sess) {
		(void)nghttp2_session_consume_connection(t->sess->ng, t->qb.len);
		(void)nghttp2_session_consume_stream(t->sess->ng, t->down_sid, t->qb.len);
	}
	t->qb.head = t->qb.len = t->qsent = 0;
	t->hold = false;
	wp_h2p_wake_sess(t->sess);
}

static void rb_discard(struct wp_h2p_strm *t)
{
	if (t->rb.len && t->up && t->up->ng)
		(void)nghttp2_session_consume_connection(t->up->ng, t->rb.len);
	t->rb.head = t->rb.len = 0;
	wp_h2p_wake_up(t->up);
}

/* Lets go of the upstream stream (cancelled when still open). */
void wp_h2p_strm_cancel_up(struct wp_h2p_strm *t, uint32_t code)
{
	struct wp_h2p_up *up = t->up;

	if (!up)
		return;
	rb_discard(t);
	if (up->h1) {
		wp_h2p_h1_abort(up, t);
		return;
	}
	if (t->up_sid > 0 && up->ng) {
		/* still linked: open, or queued in nghttp2 */
		(void)nghttp2_submit_rst_stream(up->ng, NGHTTP2_FLAG_NONE, t->up_sid, code);
		(void)nghttp2_session_set_stream_user_data(up->ng, t->up_sid, NULL);
	}
	wp_h2p_wake_up(up);
	wp_h2p_up_unlink_strm(t);
}

static int strm_submit(struct wp_h2p_strm *t, struct wp_h2p_up *up);

/* ---- request mirrors -------------------------------------------------------------------- */

/* A copy <m> is over: off its upstream (reset with CANCEL when still open,
 * if <cancel>), off its feeder, back to the pool. */
void wp_h2p_mirror_free(struct wp_h2p_strm *m, bool cancel)
{
	struct wp_h2p_strm *f = m->feeder;

	if (f) {
		for (uint8_t k = 0; k < f->n_mir; k++)
			if (f->mir[k] == m) {
				f->mir[k] = f->mir[--f->n_mir];
				break;
			}
		m->feeder = NULL;
	}
	if (cancel)
		wp_h2p_strm_cancel_up(m, NGHTTP2_CANCEL);
	else
		wp_h2p_up_unlink_strm(m);
	m->mirror = false;
	m->qb.head = m->qb.len = 0;
	wp_h2p_strm_free(m);
}

/* The copies <t> still feeds are cut short: abandoned (counted). */
void wp_h2p_mirrors_abort(struct wp_h2p_strm *t)
{
	while (t->n_mir > 0) {
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_MIRROR_ABANDONED);
		wp_h2p_mirror_free(t->mir[t->n_mir - 1], true);
	}
}

/* The request of <t> ended (END_STREAM): its copies end too and go on
 * alone until their response ends (or the mirror timeout). */
static void mirrors_finish(struct wp_h2p_strm *t)
{
	while (t->n_mir > 0) {
		struct wp_h2p_strm *m = t->mir[--t->n_mir];

		m->feeder = NULL;
		m->req_eof = true;
		if (t->req.has_trl)
			for (uint16_t i = t->req.trl; i < t->req.n; i++)
				hb_add(&m->req, t->req.nv[i].name, t->req.nv[i].namelen,
				       t->req.nv[i].value, t->req.nv[i].valuelen);
		m->req.has_trl = t->req.has_trl;
		if (m->req.over) { /* its trailers do not fit: the copy would be short */
			wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_MIRROR_ABANDONED);
			wp_h2p_mirror_free(m, true);
			continue;
		}
		if (m->up && m->up_sid > 0) {
			(void)nghttp2_session_resume_data(m->up->ng, m->up_sid);
			wp_h2p_wake_up(m->up);
		}
	}
}

/* Copies <len> request body bytes of <t> to its copies; one without room
 * is abandoned (a copy never holds back the real stream's window). */
static void mirrors_tee(struct wp_h2p_strm *t, const uint8_t *d, size_t len)
{
	for (uint8_t k = t->n_mir; k-- > 0;) {
		struct wp_h2p_strm *m = t->mir[k];

		if (ring_room(&m->qb) < len) {
			wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_MIRROR_OVERFLOW);
			wp_h2p_mirror_free(m, true);
			continue;
		}
		ring_put(&m->qb, d, len);
		if (m->up && m->up_sid > 0) {
			(void)nghttp2_session_resume_data(m->up->ng, m->up_sid);
			wp_h2p_wake_up(m->up);
		}
	}
}

/* Starts a copy of the request of <t> (its upstream block t->onv is
 * built) to an endpoint of <cl>: same fields but :authority
 * "<authority>-shadow" (port kept). Failures are counted; the real stream
 * goes on unmirrored. */
static void mirror_start(struct wp_h2p_strm *t, const struct wp_route_cluster *cl,
                         const struct wp_route_req *rq)
{
	struct wp_h2p_core *c = t->core;
	struct wp_h2p_strm *m = c->free_strm;
	struct wp_h2p_up *up;
	uint64_t h = 0;
	bool has, full;
	int i;

	if (!m || t->n_mir >= WP_ROUTE_MAX_MIRRORS) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_MIRROR_DROPPED);
		return;
	}
	has = wp_route_cluster_hash(cl, rq, &h);
	i = wp_lb_pick(cl->lb, wp_lb_cache_core(c->lbc, cl->lb), h, has);
	if (i < 0 || (uint32_t)i >= cl->n_endpoints) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_MIRROR_DROPPED);
		return;
	}
	c->free_strm = m->next_free;
	m->next_free = NULL;
	m->in_use = true;
	m->mirror = true;
	m->sess = NULL;
	m->down_sid = 0;
	m->up = NULL;
	m->up_sid = 0;
	m->sprev = m->snext = NULL;
	hb_reset(&m->req);
	hb_reset(&m->resp);
	m->qb.head = m->qb.len = 0;
	m->rb.head = m->rb.len = 0;
	m->grpc = m->req_eof = m->resp_eof = m->head_sent = m->local = m->routed = false;
	m->up_sent = 0;
	m->pick_table = NULL;
	m->retries_left = m->retry_on = 0;
	m->failed.n = 0;
	m->act.t = NULL;
	m->has_rmods = false;
	m->n_mir = 0;
	m->feeder = NULL;
	m->deadline_ms = m->try_deadline_ms = 0;
	m->mirror_deadline_ms =
	        c->cfg.mirror_timeout_ms ? wp_deadline_ms(c->now_ms, c->cfg.mirror_timeout_ms) : 0;
	c->n_strms++;
	/* the block: its bytes copied into m->req, fields in m->onv */
	for (uint16_t k = 0; k < t->n_onv; k++) {
		const nghttp2_nv *f = &t->onv[k];
		char *nm = hb_copy(&m->req, f->name, f->namelen);
		char *v;
		size_t vl = f->valuelen;

		if (nm && f->namelen == 10 && !memcmp(f->name, ":authority", 10)) {
			size_t cut = f->valuelen;

			for (size_t j = f->valuelen; j-- > 0;) {
				if (f->value[j] == ':') {
					cut = j;
					break;
				}
				if (f->value[j] < '0' || f->value[j] > '9')
					break;
			}
			v = hb_copy(&m->req, f->value, cut);
			if (v && hb_copy(&m->req, "-shadow", 7) &&
			    hb_copy(&m->req, f->value + cut, f->valuelen - cut))
				vl += 7;
			else
				v = NULL;
		} else {
			v = nm ? hb_copy(&m->req, f->value, f->valuelen) : NULL;
		}
		if (!v) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_MIRROR_DROPPED);
			wp_h2p_mirror_free(m, false);
			return;
		}
		nv_set(&m->onv[k], nm, f->namelen, v, vl);
	}
	m->n_onv = t->n_onv; /* trailers are added after the block's bytes */
	m->req_eof = t->req_eof;
	up = wp_h2p_up_acquire(c, &cl->endpoints[i], false, NULL, cl, &full);
	if (!up || strm_submit(m, up) != 0) { /* counted */
		if (up && up->pe.active == 0) /* nothing else on it */
			wp_h2p_up_went_idle(up);
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_MIRROR_DROPPED);
		wp_h2p_mirror_free(m, false);
		return;
	}
	wp_lb_cache_begin(c->lbc, cl->lb, i, &m->act);
	if (!m->req_eof) {
		m->feeder = t;
		t->mir[t->n_mir++] = m;
	}
	wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_MIRROR);
}

/* The grpc-status field of a response block, in [from, to): its value or -1. */
static int grpc_status_in(const struct hblock *h, uint16_t from, uint16_t to)
{
	const nghttp2_nv *f = hb_find(h, from, to, "grpc-status");
	int v = 0;

	if (!f || f->valuelen == 0 || f->valuelen > 4)
		return -1;
	for (size_t i = 0; i < f->valuelen; i++) {
		if (f->value[i] < '0' || f->value[i] > '9')
			return -1;
		v = v * 10 + (f->value[i] - '0');
	}
	return v;
}

/* The completion stage for <t>: its exchange is over (the downstream stream
 * closed with <code>). grpc-status from the upstream's trailers, else its
 * trailers-only head, unless a local answer set one. */
static void strm_record(struct wp_h2p_strm *t, uint32_t code)
{
	struct wp_pipe_rec *r = &t->rec;

	if (!r->active || !t->sess)
		return;
	if (r->is_grpc && r->grpc < 0 && t->head_sent && !t->local) {
		int g = t->resp.has_trl ? grpc_status_in(&t->resp, t->resp.trl, t->resp.n) : -1;

		/* (trl is 0 until trailers begin: the head is all of a
		 * trailers-only response) */
		r->grpc = (int16_t)(g >= 0 ? g
		                           : grpc_status_in(&t->resp, 0,
		                                            t->resp.trl ? t->resp.trl : t->resp.n));
	}
	/* the client reset a stream whose response was not complete (a
	 * fault delay's DI stays beside it) */
	if (code != NGHTTP2_NO_ERROR && !(r->flags & (uint16_t)~WP_PIPE_F(DI)) && !t->local &&
	    !(t->resp_eof && !t->rb.len))
		r->flags |= WP_PIPE_F(DR);
	if (!wp_pipe_wants_view(t->sess->conn, r)) {
		wp_pipe_rec_end(t->sess->conn, r, NULL);
		return;
	}
	{
		/* the access log's view of the request's header block */
		static const char *const names[] = {":method",         ":path",
		                                    ":authority",      "user-agent",
		                                    "x-forwarded-for", "x-request-id"};
		const nghttp2_nv *f[WP_ARRAY_SIZE(names)];
		struct wp_pipe_log_view v;

		for (size_t i = 0; i < WP_ARRAY_SIZE(names); i++)
			f[i] = hb_find(&t->req, 0, t->req.trl ? t->req.trl : t->req.n, names[i]);
#define NV_VIEW(field, k)                                                                          \
	v.field = f[k] ? (const char *)f[k]->value : NULL;                                         \
	v.field##_len = f[k] ? (uint32_t)f[k]->valuelen : 0
		NV_VIEW(method, 0);
		NV_VIEW(path, 1);
		NV_VIEW(authority, 2);
		NV_VIEW(user_agent, 3);
		NV_VIEW(xff, 4);
		NV_VIEW(request_id, 5);
#undef NV_VIEW
		if (!v.request_id && t->reqid_gen) {
			v.request_id = t->reqid;
			v.request_id_len = WP_HTTP1_REQID_LEN;
		}
		v.proto = WP_ALOG_HTTP2;
		wp_pipe_rec_end(t->sess->conn, r, &v);
	}
}

/* The downstream side of <t> is over (stream closed or session gone). */
static void strm_down_gone(struct wp_h2p_strm *t, uint32_t code)
{
	struct wp_h2p_sess *s = t->sess;

	if (t->fault_until_ms) /* held by a fault delay: freed with the stream */
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_FAULT_DELAY_ABANDONED);
	strm_record(t, code);
	wp_h2p_mirrors_abort(t); /* reset before its request ended */
	if (code != NGHTTP2_NO_ERROR && !t->local && t->up)
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_DOWN_RESET);
	if (t->up)
		wp_h2p_strm_cancel_up(t, NGHTTP2_CANCEL);
	if (s) {
		if (t->sprev)
			t->sprev->snext = t->snext;
		else
			s->strms = t->snext;
		if (t->snext)
			t->snext->sprev = t->sprev;
		s->n_strms--;
		s->last_ms = t->core->now_ms;
	}
	t->sprev = t->snext = NULL;
	t->sess = NULL;
	wp_h2p_strm_free(t);
}

/* ---- forwarding the request ------------------------------------------------------------- */

static ssize_t up_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
	struct wp_h2p_up *up = ud;
	struct wp_h2p_strm *t = wp_h2p_up_strm(up, sid);
	size_t n;

	(void)src;
	if (!t)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = wp_h2p_qb_take(t, buf, len); /* (held bytes stay in qb) */
	t->up_sent += n;
	if (t->qb.len == t->qsent && t->req_eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (t->req.has_trl && t->req.n > t->req.trl) {
			if (nghttp2_submit_trailer(ng, sid, t->req.nv + t->req.trl,
			                           t->req.n - t->req.trl) == 0)
				*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		}
		return (ssize_t)n;
	}
	if (n == 0)
		return NGHTTP2_ERR_DEFERRED;
	return (ssize_t)n;
}

/* Submits the request of <t> on <up>. 0 or -errno. */
static int strm_submit(struct wp_h2p_strm *t, struct wp_h2p_up *up)
{
	nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = up_read};
	int32_t sid;

	if (up->h1)
		return wp_h2p_h1_submit(t, up);
	sid = nghttp2_submit_request(up->ng, NULL, t->onv, t->n_onv,
	                             t->req_eof && t->qb.len == 0 && !t->req.has_trl ? NULL : &prd,
	                             t);
	if (sid < 0) {
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_NOMEM);
		return -ENOMEM;
	}
	t->up_sid = sid;
	wp_h2p_up_link_strm(up, t);
	wp_h2p_wake_up(up);
	return 0;
}

/* Picks an endpoint of the stream's cluster (avoiding failed ones when
 * <avoid>) and submits the request there. 0, or -errno (nothing sent). */
int wp_h2p_strm_dispatch(struct wp_h2p_strm *t, const struct wp_route_cluster *cl, bool avoid)
{
	struct wp_h2p_core *c = t->core;

	for (;;) {
		struct wp_h2p_up *up;
		bool full;
		/* a retry re-picks to avoid the endpoints that already failed */
		int i = wp_uppool_pick(cl, c->lbc, t->pick_hash, t->pick_has_hash,
		                       avoid ? &t->failed : NULL);

		if (i < 0) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_ENDPOINT);
			wp_pipe_rec_dest(t->sess ? t->sess->conn : NULL, &t->rec, cl, NULL);
			t->rec.flags |= WP_PIPE_F(UH);
			return -ENOENT;
		}
		wp_pipe_rec_dest(t->sess ? t->sess->conn : NULL, &t->rec, cl, &cl->endpoints[i]);
		up = wp_h2p_up_acquire(c, &cl->endpoints[i], t->sess && t->sess->h1up, t, cl,
		                       &full);
		if (full) /* a connection-pool limit: 503 UO */
			return -EBUSY;
		if (!up && t->wait.clu) /* waits for a connection (h2p_pending.c) */
			return 0;
		if (up) {
			if (strm_submit(t, up) != 0) {
				if (up->pe.active == 0) /* nothing else on it */
					wp_h2p_up_went_idle(up);
				return -ENOMEM;
			}
			wp_lb_cache_begin(c->lbc, cl->lb, i, &t->act);
			if (t->try_timeout_ms) /* per try */
				t->try_deadline_ms = wp_deadline_ms(c->now_ms, t->try_timeout_ms);
			return 0;
		}
		if (t->retries_left == 0 || !(t->retry_on & WP_ROUTE_RETRY_CONNECT_FAILURE) ||
		    !wp_h2p_cb_retry(t, cl)) {
			t->rec.flags |= WP_PIPE_F(UF) | (t->retried ? WP_PIPE_F(URX) : 0);
			return -ECONNREFUSED;
		}
		t->retries_left--;
		t->retried = true;
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_RETRY);
		avoid = true;
	}
}

/* Another try for a stream whose upstream failed before anything of it
 * was processed. True when it was submitted elsewhere. */
bool wp_h2p_strm_retry(struct wp_h2p_strm *t, uint16_t why)
{
	struct wp_h2p_sess *s = t->sess;

	if (!s || t->local || t->head_sent || t->up_sent > 0 || !(t->retry_on & why) ||
	    t->retries_left == 0 || !s->routes || s->routes != t->pick_table ||
	    t->pick_cluster >= s->routes->n_clusters ||
	    !wp_h2p_cb_retry(t, &s->routes->clusters[t->pick_cluster]))
		return false;
	t->retries_left--;
	t->retried = true;
	wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_RETRY);
	wp_lb_cache_end(t->core->lbc, &t->act);
	return wp_h2p_strm_dispatch(t, &s->routes->clusters[t->pick_cluster], true) == 0;
}

static int copy_rmods(struct wp_h2p_strm *t, const struct wp_http_hdr_mods *m)
{
	t->has_rmods = false;
	if (m->n_set + m->n_add + m->n_remove == 0)
		return 0;
	if (wp_http_mods_copy(&t->rmods, m) != 0)
		return -ENOSPC;
	t->has_rmods = true;
	return 0;
}

/* The upstream request block of <t>: pseudo-headers first (:authority
 * possibly rewritten, :path possibly rewritten), the client's fields minus
 * those the rule removes or sets, the set and added ones, x-request-id
 * when missing. Fields point into t->req (copies made there). */
static int build_onv(struct wp_h2p_strm *t, const struct wp_http_hdr_mods *mods, const char *path,
                     size_t path_len)
{
	struct hblock *h = &t->req;
	uint16_t cap = h->max + OUT_EXTRA, n = 0;
	const nghttp2_nv *m = hb_find(h, 0, hb_head_n(h), ":method");
	const nghttp2_nv *sc = hb_find(h, 0, hb_head_n(h), ":scheme");
	const nghttp2_nv *au = hb_find(h, 0, hb_head_n(h), ":authority");
	const char *auth = au ? (const char *)au->value : NULL;
	size_t auth_len = au ? au->valuelen : 0;
	bool has_id = false;
	struct wp_tc_out tco;
	const struct wp_http_hdr_mods *tm = wp_pipe_trace_headers(&t->rec, &tco);

	if (!au) {
		const nghttp2_nv *host = hb_find(h, 0, hb_head_n(h), "host");

		if (host) {
			auth = (const char *)host->value;
			auth_len = host->valuelen;
		} else if (t->sess) {
			auth = t->sess->authority;
			auth_len = t->sess->authority_len;
		}
	}
	for (uint16_t i = 0; mods && i < mods->n_set; i++)
		if (mods->set[i].name_len == 4 && !strncasecmp(mods->set[i].name, "host", 4)) {
			auth = hb_copy(h, mods->set[i].value, mods->set[i].value_len);
			auth_len = mods->set[i].value_len;
			if (!auth)
				return -ENOSPC;
		}
	nv_set(&t->onv[n++], ":method", 7, (const char *)m->value, m->valuelen);
	nv_set(&t->onv[n++], ":scheme", 7, sc ? (const char *)sc->value : "http",
	       sc ? sc->valuelen : 4);
	if (auth)
		nv_set(&t->onv[n++], ":authority", 10, auth, auth_len);
	nv_set(&t->onv[n++], ":path", 5, path, path_len);
	for (uint16_t i = 0; i < hb_head_n(h); i++) {
		const nghttp2_nv *f = &h->nv[i];

		if (f->namelen > 0 && f->name[0] == ':')
			continue;
		if (f->namelen == 4 && !memcmp(f->name, "host", 4))
			continue;                           /* carried as :authority */
		if (mods_drop(f, mods) || mods_drop(f, tm)) /* (tm: our span's trace headers) */
			continue;
		if (n >= cap)
			return -ENOSPC;
		if (f->namelen == 12 && !memcmp(f->name, "x-request-id", 12))
			has_id = true;
		t->onv[n++] = *f;
	}
	for (int k = 0; k < 3; k++) { /* the rule's set and add, then the trace headers */
		const struct wp_http_hdr_mods *mm = k < 2 ? mods : tm;
		const struct wp_http_hdr *a = mm ? (k == 1 ? mm->add : mm->set) : NULL;
		uint16_t na = mm ? (k == 1 ? mm->n_add : mm->n_set) : 0;

		for (uint16_t i = 0; i < na; i++) {
			char *nm, *v;

			if (a[i].name_len == 4 && !strncasecmp(a[i].name, "host", 4))
				continue;
			if (n >= cap)
				return -ENOSPC;
			/* names go out lower-case (HTTP/2 requires it) */
			nm = hb_copy(h, a[i].name, a[i].name_len);
			if (!nm)
				return -ENOSPC;
			for (uint16_t j = 0; j < a[i].name_len; j++)
				if (nm[j] >= 'A' && nm[j] <= 'Z')
					nm[j] = (char)(nm[j] - 'A' + 'a');
			if (a[i].name_len == 12 && !memcmp(nm, "x-request-id", 12))
				has_id = true;
			/* the value lives in the route table: copy it */
			v = hb_copy(h, a[i].value, a[i].value_len);
			if (!v)
				return -ENOSPC;
			nv_set(&t->onv[n++], nm, a[i].name_len, v, a[i].value_len);
		}
	}
	if (!has_id) {
		if (n >= cap)
			return -ENOSPC;
		wp_http_reqid_gen(&t->core->rng, t->reqid);
		t->reqid_gen = true;
		nv_set(&t->onv[n++], "x-request-id", 12, t->reqid, WP_HTTP1_REQID_LEN);
	}
	t->n_onv = n;
	return 0;
}

/* A complete request head on the downstream stream of <t>: route it and
 * send it upstream, or answer locally. */
static void strm_route(struct wp_h2p_strm *t)
{
	struct wp_h2p_sess *s = t->sess;
	struct wp_h2p_core *c = t->core;
	struct hblock *h = &t->req;
	const nghttp2_nv *m = hb_find(h, 0, hb_head_n(h), ":method");
	const nghttp2_nv *p = hb_find(h, 0, hb_head_n(h), ":path");
	const nghttp2_nv *au = hb_find(h, 0, hb_head_n(h), ":authority");
	const nghttp2_nv *ct = hb_find(h, 0, hb_head_n(h), "content-type");
	struct wp_route_req rq;
	struct wp_route_decision d;
	const char *path;
	size_t path_len;
	uint16_t nh = 0;
	uint64_t hash = 0;
	bool has_host = false;
	int n;

	t->routed = true;
	t->grpc = ct && ct->valuelen >= 16 && !memcmp(ct->value, "application/grpc", 16);
	if (!t->fault_done) { /* (begun already when a fault delay resumes) */
		wp_pipe_rec_begin(s->conn, &t->rec, t->grpc); /* (no conn: not recorded) */
		wp_pipe_trace_h2(s->conn, &t->rec, h->nv, h->n);
	}
	if (h->over) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
		wp_h2p_strm_local(t, 431, NULL, 0);
		return;
	}
	if (!m || !p || p->valuelen == 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_BAD_REQUEST);
		t->rec.flags |= WP_PIPE_F(DPE);
		wp_h2p_strm_local(t, 400, NULL, 0);
		return;
	}
	if (!s->routes) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_TABLE);
		wp_h2p_strm_local(t, 500, NULL, 0);
		return;
	}
	/* the request as the router sees it: :authority is the host */
	for (uint16_t i = 0; i < hb_head_n(h) && nh < h->max; i++) {
		const nghttp2_nv *f = &h->nv[i];
		struct wp_http_hdr *r;

		if (f->namelen > 0 && f->name[0] == ':')
			continue;
		r = &c->rh[nh++];
		memset(r, 0, sizeof(*r));
		r->name = (const char *)f->name;
		r->name_len = (uint16_t)f->namelen;
		r->value = (const char *)f->value;
		r->value_len = (uint32_t)f->valuelen;
		if (f->namelen == 4 && !memcmp(f->name, "host", 4))
			has_host = true;
	}
	if (!has_host && (au || s->authority_len)) {
		struct wp_http_hdr *r = &c->rh[nh++];

		memset(r, 0, sizeof(*r));
		r->name = "host";
		r->name_len = 4;
		r->value = au ? (const char *)au->value : s->authority;
		r->value_len = au ? (uint32_t)au->valuelen : (uint32_t)s->authority_len;
		r->id = WP_HDR_HOST;
	}
	memset(&rq, 0, sizeof(rq));
	rq.target = (const char *)p->value;
	rq.target_len = (uint32_t)p->valuelen;
	while (rq.path_len < rq.target_len && rq.target[rq.path_len] != '?' &&
	       rq.target[rq.path_len] != '#')
		rq.path_len++;
	rq.method = wp_h2p_method_id(m->value, m->valuelen);
	t->head_req = rq.method == HTTP_HEAD;
	rq.hdrs = c->rh;
	rq.n_hdrs = nh;
	rq.src = s->src;
	if (s->conn && wp_pipe_normalize(s->conn->core, &rq) != 0) {
		wp_h2p_strm_local(t, 400, NULL, 0);
		return;
	}
	/* authorization before any answer of the router, as in Envoy */
	if (s->conn && !t->fault_done) {
		struct wp_authz_decision az;

		if (!wp_pipe_authorize(s->conn, &rq, (const char *)m->value, m->valuelen, &az)) {
			wp_h2p_strm_local(t, WP_PIPE_DENIED_STATUS, NULL, 0);
			return;
		}
	}
	if (wp_route_select(s->routes, c->rc, &rq, &d) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_ROUTE);
		t->rec.flags |= WP_PIPE_F(NR);
		wp_h2p_strm_local(t, 404, NULL, 0);
		return;
	}
	if (wp_h2p_fault(t, d.rule)) /* held by a delay, or aborted */
		return;
	if (d.status >= 300 && d.status < 400) {
		const char *loc, *e;

		n = wp_route_write_redirect(&d, &rq, true, c->tmp, sizeof(c->tmp) - 1);
		if (n < 12) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
			wp_h2p_strm_local(t, 500, NULL, 0);
			return;
		}
		c->tmp[n] = '\0';
		loc = strstr(c->tmp, "\r\nlocation: ");
		e = loc ? strstr(loc + 12, "\r\n") : NULL;
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_REDIRECT);
		t->grpc = false; /* a redirect is an HTTP answer */
		t->rec.is_grpc = false;
		wp_h2p_strm_local(t, d.status, loc ? loc + 12 : NULL,
		                  e ? (size_t)(e - loc - 12) : 0);
		return;
	}
	if (!d.cluster) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_BACKEND);
		t->rec.flags |= WP_PIPE_F(NC);
		wp_h2p_strm_local(t, d.status ? d.status : 500, NULL, 0);
		return;
	}
	t->pick_has_hash = wp_route_cluster_hash(d.cluster, &rq, &hash);
	t->pick_hash = hash;
	t->pick_table = s->routes;
	t->pick_cluster = (uint32_t)(d.cluster - s->routes->clusters);
	t->deadline_ms = d.rule->request_timeout_ms
	                         ? wp_deadline_ms(c->now_ms, d.rule->request_timeout_ms)
	                         : 0;
	t->try_timeout_ms = d.rule->backend_timeout_ms;
	n = wp_route_rewrite_target(&d, &rq, c->tmp2, sizeof(c->tmp2));
	path = (const char *)p->value;
	path_len = p->valuelen;
	if (n == 0 && rq.target != path) { /* normalized: the core's buffer, copy it */
		path = hb_copy(h, rq.target, rq.target_len);
		path_len = rq.target_len;
	}
	if (n > 0) {
		path = hb_copy(h, c->tmp2, (size_t)n);
		path_len = (size_t)n;
	}
	if (n < 0 || !path || copy_rmods(t, &d.rule->resp_mods) != 0 ||
	    build_onv(t, &d.rule->req_mods, path, path_len) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
		wp_h2p_strm_local(t, 431, NULL, 0);
		return;
	}
	wp_h2p_retry_begin(t, &d.rule->retry); /* the block gains x-envoy-attempt-count */
	n = wp_h2p_strm_dispatch(t, d.cluster, false);
	if (n != 0) {
		if (n == -ECONNREFUSED)
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_CONNECT_FAILED);
		wp_h2p_strm_local(t, 503, NULL, 0);
		return;
	}
	wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_REQUEST);
	for (uint16_t k = 0; k < d.n_mirrors; k++) {
		if (s->h1up) /* copies are not sent over HTTP/1.1 */
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_H1_MIRROR_SKIPPED);
		else
			mirror_start(t, d.mirrors[k], &rq);
	}
}

uint64_t wp_h2p_core_due(const struct wp_h2p_core *c)
{
	return c->fault_due;
}

/* strm_timers(): the fault delay of <t> is over: its abort, else the rest
 * of its routing on the session's current route table. */
void wp_h2p_fault_resume(struct wp_h2p_strm *t)
{
	struct wp_h2p_core *c = t->core;

	t->fault_until_ms = 0;
	if (c->ops->refresh)
		c->ops->refresh(c->host, t->sess);
	if (t->fault.abort)
		wp_h2p_fault_abort(t);
	else
		strm_route(t);
}

/* ---- downstream callbacks --------------------------------------------------------------- */

int wp_h2p_d_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct wp_h2p_sess *s = ud;
	struct wp_h2p_strm *t;

	if (f->hd.type != NGHTTP2_HEADERS)
		return 0;
	if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		t = strm_alloc(s, f->hd.stream_id);
		if (!t) {
			wp_ctr_inc(s->core->ctr, WP_CTR_L7_H2P_NO_STREAM);
			(void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
			                                NGHTTP2_REFUSED_STREAM);
			return 0;
		}
		(void)nghttp2_session_set_stream_user_data(ng, f->hd.stream_id, t);
		return 0;
	}
	t = down_strm(s, f->hd.stream_id);
	if (t) { /* trailers */
		t->req.trl = t->req.n;
		t->req.over = false;
	}
	return 0;
}

int wp_h2p_d_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct wp_h2p_strm *t = down_strm(ud, f->hd.stream_id);

	(void)ng;
	(void)flags;
	if (t && f->hd.type == NGHTTP2_HEADERS)
		hb_add(&t->req, name, nlen, value, vlen);
	return 0;
}

int wp_h2p_d_invalid_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                            size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct wp_h2p_sess *s = ud;

	(void)ng;
	(void)f;
	(void)name;
	(void)nlen;
	(void)value;
	(void)vlen;
	(void)flags;
	wp_ctr_inc(s->core->ctr, WP_CTR_L7_H2P_INVALID_HEADER);
	return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* reset the stream */
}

int wp_h2p_d_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct wp_h2p_sess *s = ud;
	struct wp_h2p_strm *t;
	bool end = (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;

	if (f->hd.type == NGHTTP2_RST_STREAM && down_strm(s, f->hd.stream_id)) {
		/* a client that opens and resets streams makes us open and
		 * cancel upstream ones: bounded, like the HBONE layer does */
		if (s->core->now_ms - s->rst_window_ms >= 1000) {
			s->rst_window_ms = s->core->now_ms;
			s->rst_count = 0;
		}
		if (++s->rst_count > s->core->cfg.rst_per_sec) {
			wp_ctr_inc(s->core->ctr, WP_CTR_L7_H2P_RAPID_RESET);
			(void)nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
			s->fatal = true;
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	t = down_strm(s, f->hd.stream_id);
	if (!t)
		return 0;
	if (end)
		t->req_eof = true;
	if (f->hd.type == NGHTTP2_HEADERS && !t->routed) {
		strm_route(t);
		return 0;
	}
	if (f->hd.type == NGHTTP2_HEADERS) { /* trailers */
		if (t->req.over) {
			wp_ctr_inc(s->core->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
			t->req.n = t->req.trl;
		}
		t->req.has_trl = true;
	}
	if (end && t->n_mir > 0)
		mirrors_finish(t);
	if (t->up && end) {
		if (!t->up->h1)
			(void)nghttp2_session_resume_data(t->up->ng, t->up_sid);
		wp_h2p_wake_up(t->up);
	}
	return 0;
}

int wp_h2p_d_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                  void *ud)
{
	struct wp_h2p_sess *s = ud;
	struct wp_h2p_strm *t = down_strm(s, sid);

	(void)flags;
	if (t && t->n_mir > 0)
		mirrors_tee(t, data, len);
	if (t)
		t->rec.req_bytes += len;
	if (!t || t->local ||
	    (!t->up && t->routed && !t->backoff_until && !t->fault_until_ms && !t->wait.clu)) {
		/* nobody takes them (a retry's backoff, a delay or a wait will): the window
		 * comes back now */
		(void)nghttp2_session_consume(ng, sid, len);
		return 0;
	}
	if (ring_room(&t->qb) < len) {
		wp_ctr_inc(s->core->ctr, WP_CTR_L7_H2P_BUF_OVERRUN);
		(void)nghttp2_session_consume(ng, sid, len);
		(void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, sid,
		                                NGHTTP2_FLOW_CONTROL_ERROR);
		return 0;
	}
	ring_put(&t->qb, data, len);
	if (t->up) {
		if (!t->up->h1)
			(void)nghttp2_session_resume_data(t->up->ng, t->up_sid);
		wp_h2p_wake_up(t->up);
	}
	return 0;
}

/* A local answer went out while the client still sends: stop it (RFC 9113
 * 8.1: a complete response, then RST_STREAM NO_ERROR). */
int wp_h2p_d_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct wp_h2p_strm *t;

	if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
	    !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
		return 0;
	t = down_strm(ud, f->hd.stream_id);
	if (t && t->local && !t->req_eof)
		(void)nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, f->hd.stream_id,
		                                NGHTTP2_NO_ERROR);
	return 0;
}

/* nghttp2 refused a frame; a header it refuses (connection-specific
 * fields, bad pseudo-headers) resets the stream. */
int wp_h2p_d_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int err, void *ud)
{
	struct wp_h2p_sess *s = ud;

	(void)ng;
	(void)f;
	wp_ctr_inc(s->core->ctr, err == NGHTTP2_ERR_HTTP_HEADER || err == NGHTTP2_ERR_HTTP_MESSAGING
	                                 ? WP_CTR_L7_H2P_INVALID_HEADER
	                                 : WP_CTR_L7_H2P_DOWN_PROTOCOL);
	return 0;
}

int wp_h2p_d_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct wp_h2p_strm *t = down_strm(ud, sid);

	if (t) {
		(void)nghttp2_session_set_stream_user_data(ng, sid, NULL);
		strm_down_gone(t, code);
	}
	return 0;
}

ssize_t wp_h2p_down_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct wp_h2p_strm *t = down_strm(ud, sid);
	size_t n;

	(void)src;
	if (!t)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = ring_get(&t->rb, buf, len);
	t->rec.resp_bytes += n;
	if (n > 0 && t->up) {
		/* HTTP/1.1: room in rb again, the held response bytes may come */
		if (!t->up->h1)
			(void)nghttp2_session_consume(t->up->ng, t->up_sid, n);
		wp_h2p_wake_up(t->up);
	}
	if (t->rb.len == 0 && t->resp_eof) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (t->resp.has_trl && t->resp.n > t->resp.trl &&
		    nghttp2_submit_trailer(ng, sid, t->resp.nv + t->resp.trl,
		                           t->resp.n - t->resp.trl) == 0)
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		return (ssize_t)n;
	}
	return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

/* ---- sessions --------------------------------------------------------------------------- */

struct wp_h2p_sess *wp_h2p_sess_open(struct wp_h2p_core *c, const struct wp_route_table *routes,
                                     const struct wp_addr *src, const char *authority,
                                     size_t authority_len, uint32_t flags)
{
	struct wp_h2p_sess *s = c->free_sess;
	nghttp2_settings_entry iv[] = {
	        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, c->cfg.max_down_streams},
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, c->cfg.window},
	        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
	         c->cfg.max_header_bytes + 32u * c->cfg.max_headers},
	        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
	};
	uint64_t cw = (uint64_t)c->cfg.window * c->cfg.max_down_streams;

	if (!s) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_SESSION);
		return NULL;
	}
	if (nghttp2_session_server_new3(&s->ng, c->cb_down, s, c->opt_down, c->mem) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
		return NULL;
	}
	if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, WP_ARRAY_SIZE(iv)) != 0 ||
	    nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0,
	                                          (int32_t)WP_MIN(cw, (uint64_t)INT32_MAX)) != 0) {
		nghttp2_session_del(s->ng);
		s->ng = NULL;
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
		return NULL;
	}
	c->free_sess = s->next_free;
	s->next_free = NULL;
	s->in_use = true;
	s->h1up = (flags & WP_H2P_SESS_H1_UPSTREAM) != 0;
	s->routes = routes;
	s->conn = NULL;
	s->src = src;
	s->authority = authority;
	s->authority_len = authority_len;
	s->strms = NULL;
	s->n_strms = 0;
	s->fatal = s->down_eof = false;
	s->rst_window_ms = s->last_ms = c->now_ms;
	s->rst_count = 0;
	s->app = NULL;
	s->out = NULL;
	s->out_len = 0;
	wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_SESSION);
	return s;
}

void wp_h2p_sess_set_routes(struct wp_h2p_sess *s, const struct wp_route_table *routes)
{
	s->routes = routes;
}

void wp_h2p_sess_set_conn(struct wp_h2p_sess *s, struct wp_pipe_conn *conn)
{
	s->conn = conn;
}

void wp_h2p_sess_set_app(struct wp_h2p_sess *s, void *app)
{
	s->app = app;
}

void *wp_h2p_sess_app(const struct wp_h2p_sess *s)
{
	return s->app;
}

uint32_t wp_h2p_sess_streams(const struct wp_h2p_sess *s)
{
	return s->n_strms;
}

void wp_h2p_sess_close(struct wp_h2p_sess *s)
{
	struct wp_h2p_core *c = s->core;

	while (s->strms) {
		struct wp_h2p_strm *t = s->strms;

		t->qb.len = 0; /* the session goes: nothing to give back */
		if (!t->local && !(t->resp_eof && !t->rb.len))
			t->rec.flags |= WP_PIPE_F(DC); /* cut with the connection */
		strm_down_gone(t, NGHTTP2_CANCEL);
	}
	nghttp2_session_del(s->ng);
	s->ng = NULL;
	s->in_use = false;
	s->out_len = 0;
	s->next_free = c->free_sess;
	c->free_sess = s;
	wp_h2p_core_reap(c);
	wp_h2p_pend_kick(c);
}

void wp_h2p_sess_drain(struct wp_h2p_sess *s)
{
	if (s->fatal)
		return;
	(void)nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
	                            nghttp2_session_get_last_proc_stream_id(s->ng),
	                            NGHTTP2_NO_ERROR, NULL, 0);
	wp_h2p_wake_sess(s);
}

size_t wp_h2p_down_in(struct wp_h2p_sess *s, const uint8_t *data, size_t len)
{
	ssize_t n;

	if (s->fatal)
		return len;
	s->last_ms = s->core->now_ms;
	n = nghttp2_session_mem_recv(s->ng, data, len);
	if (n < 0 && !s->fatal) { /* (a callback that ended it counted why) */
		wp_ctr_inc(s->core->ctr, WP_CTR_L7_H2P_DOWN_PROTOCOL);
		s->fatal = true;
		(void)nghttp2_session_terminate_session(s->ng, NGHTTP2_PROTOCOL_ERROR);
	}
	wp_h2p_core_reap(s->core);
	wp_h2p_pend_kick(s->core);
	return len;
}

void wp_h2p_down_eof(struct wp_h2p_sess *s)
{
	s->down_eof = true;
}

size_t wp_h2p_down_peek(struct wp_h2p_sess *s, const uint8_t **p)
{
	if (s->out_len == 0) {
		ssize_t n = nghttp2_session_mem_send(s->ng, &s->out);

		if (n < 0) {
			wp_ctr_inc(s->core->ctr, WP_CTR_L7_H2P_DOWN_PROTOCOL);
			s->fatal = true;
			n = 0;
		}
		s->out_len = (size_t)n;
		wp_h2p_core_reap(s->core);
		wp_h2p_pend_kick(s->core); /* (streams that ended may have made room) */
	}
	*p = s->out;
	return s->out_len;
}

void wp_h2p_down_consume(struct wp_h2p_sess *s, size_t n)
{
	WP_ASSERT(n <= s->out_len);
	s->out += n;
	s->out_len -= n;
}

bool wp_h2p_down_finished(struct wp_h2p_sess *s)
{
	if (s->out_len > 0)
		return false;
	if (s->fatal)
		return true;
	if (nghttp2_session_want_write(s->ng))
		return false;
	return !nghttp2_session_want_read(s->ng) || (s->down_eof && s->n_strms == 0);
}
