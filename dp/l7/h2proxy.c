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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp/l7/h2proxy.h"
#include "dp/l7/pipeline.h"
#include "dp/l7/lb_cache.h"
#include "wp/counters.h"
#include "wp/lb.h"
#include "wp/snapshot_types.h"

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

#define OUT_EXTRA   24 /* fields a forwarded block may gain (mods, x-request-id) */
#define RETRY_AVOID 4
#define RETRY_PICKS 5

/* A byte ring. */
struct ring {
	uint8_t *p;
	uint32_t cap, head, len;
};

/* One header block (then its trailers) as received: fields point into b. */
struct hblock {
	nghttp2_nv *nv;
	char *b;
	uint32_t used, cap;
	uint16_t n, max;
	uint16_t trl; /* first trailer field (== n until trailers came) */
	bool has_trl; /* trailers complete */
	bool over;    /* a limit was hit in the current block */
};

struct wp_h2p_strm {
	struct wp_h2p_core *core;
	struct wp_h2p_strm *next_free;
	struct wp_h2p_sess *sess;
	int32_t down_sid;
	struct wp_h2p_strm *sprev, *snext;
	struct wp_h2p_up *up;
	int32_t up_sid;
	struct wp_h2p_strm *uprev, *unext;
	struct hblock req, resp;
	nghttp2_nv *onv; /* the request block sent upstream */
	uint16_t n_onv;
	struct ring qb, rb; /* request body (down -> up), response body (up -> down) */
	bool in_use;
	bool grpc;
	bool req_eof;   /* the client ended its side (END_STREAM seen) */
	bool resp_eof;  /* the upstream ended its side */
	bool head_sent; /* a response head (upstream's or local) was submitted downstream */
	bool local;     /* answered locally: request bytes are dropped */
	bool routed;
	uint8_t body_off; /* a local answer's body: bytes submitted */
	bool mirror;      /* a request copy: no downstream, its response discarded */
	uint64_t up_sent; /* request body bytes taken by the upstream session */
	/* HTTPRoute timeouts (0 = none): the stream's, its current try's */
	uint64_t deadline_ms, try_deadline_ms;
	uint32_t try_timeout_ms;
	/* retries: the cluster picked (index, valid while the session's table
	 * is still pick_table) and its hash key */
	const struct wp_route_table *pick_table;
	uint32_t pick_cluster;
	uint64_t pick_hash;
	bool pick_has_hash;
	uint16_t retries_left;
	uint16_t retry_on;
	uint8_t n_failed;
	struct {
		struct wp_addr addr;
		uint16_t port;
	} failed[RETRY_AVOID];
	struct wp_lb_active act; /* the pick counted in flight (LEAST_REQUEST) */
	/* ResponseHeaderModifier of the rule, copied (the table may go away) */
	struct wp_http_mods_copy rmods;
	bool has_rmods;
	char reqid[WP_HTTP1_REQID_LEN];
	/* request mirrors: a real stream's copies still being fed (mir), and
	 * for a copy the real stream feeding it (feeder, NULL once its request
	 * ended). A copy lives at most mirror_deadline_ms. */
	struct wp_h2p_strm *mir[WP_ROUTE_MAX_MIRRORS];
	uint8_t n_mir;
	struct wp_h2p_strm *feeder;
	uint64_t mirror_deadline_ms;
	/* the completion stage's record (a stream with a downstream only) */
	struct wp_pipe_rec rec;
	bool retried;   /* a retry was made for this request */
	bool reqid_gen; /* reqid was generated (no x-request-id came) */
};

struct wp_h2p_sess {
	struct wp_h2p_core *core;
	struct wp_h2p_sess *next_free;
	nghttp2_session *ng;
	bool h1up; /* WP_H2P_SESS_H1_UPSTREAM */
	const struct wp_route_table *routes;
	const struct wp_pipe_conn *conn; /* identity and policy (NULL: none) */
	const struct wp_addr *src;
	const char *authority;
	size_t authority_len;
	struct wp_h2p_strm *strms;
	uint32_t n_strms;
	bool in_use;
	bool fatal;             /* protocol error: finish once the output is out */
	bool down_eof;          /* the client half-closed */
	uint64_t rst_window_ms; /* rapid-reset accounting: this second's start */
	uint32_t rst_count;     /* and the client's resets in it */
	uint64_t last_ms;       /* the client's last bytes, or its last stream's end */
	void *app;
	const uint8_t *out;
	size_t out_len;
};

/* The HTTP/1.1 side of an upstream object (used when up->h1). */
enum { H1_FRAME_NONE, H1_FRAME_LENGTH, H1_FRAME_CHUNKED };

struct h1up {
	struct wp_http1_parser p;
	void *arena;
	size_t arena_size;
	char *ob; /* output: request head, then body slices framed */
	uint32_t ob_cap;
	struct wp_h2p_strm *cur; /* the stream in flight (== up->strms) */
	uint8_t framing;         /* H1_FRAME_* of the current request */
	bool req_done;           /* the whole request is in ob (or was sent) */
	bool wrote;              /* the host took bytes of the current request */
	bool interim;            /* a 1xx response is being skipped */
	bool head_in;            /* a response head of the current request was parsed */
	uint8_t method;          /* enum llhttp_method of the current request */
};

#define H1_OB_BODY 16384 /* body bytes framed per refill */

struct wp_h2p_core {
	struct wp_h2p_cfg cfg;
	const struct wp_h2p_ops *ops;
	void *host;
	struct wp_route_core *rc;
	nghttp2_mem *mem;
	uint64_t *ctr;
	uint64_t now_ms;
	bool draining;
	struct wp_http_reqid_rng rng;
	struct h1up *h1ups; /* per upstream object (same index): the HTTP/1.1 codec */
	struct wp_http1_limits h1lim;
	struct wp_lb_cache *lbc;
	nghttp2_session_callbacks *cb_down, *cb_up;
	nghttp2_option *opt_down, *opt_up;
	struct wp_h2p_sess *sessions, *free_sess;
	struct wp_h2p_up *ups, *free_up, *used_up;
	struct wp_h2p_up **reap;  /* upstreams to close at the end of the call */
	struct wp_h2p_up *cur_up; /* in nghttp2 calls of this one: never destroyed */
	uint32_t n_reap, n_ups;
	struct wp_h2p_strm *strms, *free_strm;
	uint32_t n_strms;
	uint8_t *mem_blk;
	nghttp2_nv *tnv; /* transient: blocks being submitted */
	uint32_t tnv_cap;
	struct wp_http_hdr *rh; /* transient: the request as the router sees it */
	char tmp[8192];         /* transient: redirect / rewritten path */
	char tmp2[8192];
};

/* ---- rings and header blocks ------------------------------------------------------------ */

static uint32_t ring_room(const struct ring *r)
{
	return r->cap - r->len;
}

static void ring_put(struct ring *r, const uint8_t *d, size_t n)
{
	uint32_t tail = (r->head + r->len) % r->cap;
	size_t k = WP_MIN(n, (size_t)(r->cap - tail));

	memcpy(r->p + tail, d, k);
	memcpy(r->p, d + k, n - k);
	r->len += (uint32_t)n;
}

static size_t ring_get(struct ring *r, uint8_t *d, size_t n)
{
	size_t k;

	n = WP_MIN(n, (size_t)r->len);
	k = WP_MIN(n, (size_t)(r->cap - r->head));
	memcpy(d, r->p + r->head, k);
	memcpy(d + k, r->p, n - k);
	r->head = (uint32_t)((r->head + n) % r->cap);
	r->len -= (uint32_t)n;
	if (r->len == 0)
		r->head = 0;
	return n;
}

static void hb_reset(struct hblock *h)
{
	h->used = 0;
	h->n = h->trl = 0;
	h->has_trl = h->over = false;
}

static char *hb_copy(struct hblock *h, const void *p, size_t n)
{
	char *d;

	if (h->cap - h->used < n) {
		h->over = true;
		return NULL;
	}
	d = h->b + h->used;
	memcpy(d, p, n);
	h->used += (uint32_t)n;
	return d;
}

static void hb_add(struct hblock *h, const uint8_t *name, size_t nlen, const uint8_t *val,
                   size_t vlen)
{
	nghttp2_nv *nv;
	char *n, *v;

	if (h->over)
		return;
	if (h->n >= h->max) {
		h->over = true;
		return;
	}
	n = hb_copy(h, name, nlen);
	v = n ? hb_copy(h, val, vlen) : NULL;
	if (!v)
		return;
	nv = &h->nv[h->n++];
	nv->name = (uint8_t *)n;
	nv->namelen = nlen;
	nv->value = (uint8_t *)v;
	nv->valuelen = vlen;
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

static const nghttp2_nv *hb_find(const struct hblock *h, uint16_t from, uint16_t to,
                                 const char *name)
{
	size_t l = strlen(name);

	for (uint16_t i = from; i < to; i++)
		if (h->nv[i].namelen == l && !memcmp(h->nv[i].name, name, l))
			return &h->nv[i];
	return NULL;
}

static bool name_in(const uint8_t *n, size_t l, const struct wp_http_hdr *a, uint16_t k)
{
	for (uint16_t i = 0; i < k; i++)
		if (a[i].name_len == l && !strncasecmp((const char *)n, a[i].name, l))
			return true;
	return false;
}

static void nv_set(nghttp2_nv *nv, const char *n, size_t nl, const char *v, size_t vl)
{
	nv->name = (uint8_t *)(uintptr_t)n;
	nv->namelen = nl;
	nv->value = (uint8_t *)(uintptr_t)v;
	nv->valuelen = vl;
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* ---- core ------------------------------------------------------------------------------- */

static void wake_sess(struct wp_h2p_sess *s)
{
	if (s && s->core->ops->wake_sess)
		s->core->ops->wake_sess(s->core->host, s);
}

static void wake_up(struct wp_h2p_up *up)
{
	if (up && up->core->ops->wake_up)
		up->core->ops->wake_up(up->core->host, up);
}

static int setup_callbacks(struct wp_h2p_core *c);

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
	c->tnv = calloc(c->tnv_cap, sizeof(*c->tnv));
	c->rh = calloc(nvs + 1, sizeof(*c->rh));
	c->h1lim.max_line = 8192;
	c->h1lim.max_header_bytes = cfg->max_header_bytes;
	c->h1lim.max_headers = cfg->max_headers;
	c->h1ups = calloc(cfg->max_upstreams, sizeof(*c->h1ups));
	if (!c->sessions || !c->ups || !c->reap || !c->strms || !c->mem_blk || !c->lbc || !c->tnv ||
	    !c->rh || !c->h1ups || h1_alloc(c) != 0 || setup_callbacks(c) != 0) {
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
	for (uint32_t i = cfg->max_upstreams; i-- > 0;) {
		c->ups[i].core = c;
		c->ups[i].next = c->free_up;
		c->free_up = &c->ups[i];
	}
	return c;
}

static void up_destroy(struct wp_h2p_up *up, bool host_close);
static void mirror_free(struct wp_h2p_strm *m, bool cancel);

void wp_h2p_core_destroy(struct wp_h2p_core *c)
{
	if (!c)
		return;
	if (c->ups) {
		for (uint32_t i = 0; c->strms && i < c->cfg.max_streams; i++)
			if (c->strms[i].in_use && c->strms[i].mirror)
				mirror_free(&c->strms[i], false);
		while (c->used_up)
			up_destroy(c->used_up, true);
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
	return c->n_ups;
}

uint32_t wp_h2p_core_streams(const struct wp_h2p_core *c)
{
	return c->n_strms;
}

/* ---- upstream pool ---------------------------------------------------------------------- */

static bool same_ep(const struct wp_h2p_up *up, const struct wp_snap_endpoint *ep)
{
	return up->port == ep->port && up->ambient == ep->ambient &&
	       up->addr.family == ep->addr.family &&
	       (ep->addr.family == WP_AF_INET ? up->addr.v4 == ep->addr.v4
	                                      : !memcmp(up->addr.v6, ep->addr.v6, 16));
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

	return WP_MIN(peer, up->core->cfg.max_up_streams);
}

static void used_unlink(struct wp_h2p_core *c, struct wp_h2p_up *up)
{
	if (up->prev)
		up->prev->next = up->next;
	else
		c->used_up = up->next;
	if (up->next)
		up->next->prev = up->prev;
	up->prev = up->next = NULL;
}

/* Frees <up> (its streams were detached); the host closes the transport
 * when <host_close>. Never from inside one of its nghttp2 callbacks. */
static void up_destroy(struct wp_h2p_up *up, bool host_close)
{
	struct wp_h2p_core *c = up->core;

	WP_ASSERT(up->strms == NULL);
	if (host_close)
		c->ops->up_close(c->host, up);
	if (up->ng)
		nghttp2_session_del(up->ng);
	used_unlink(c, up);
	c->n_ups--;
	for (uint32_t i = 0; i < c->n_reap; i++)
		if (c->reap[i] == up)
			c->reap[i] = NULL;
	memset(up, 0, sizeof(*up));
	up->core = c;
	up->next = c->free_up;
	c->free_up = up;
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
		up_destroy(up, false);
		return;
	}
	up_destroy(up, true);
}

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
static void core_reap(struct wp_h2p_core *c)
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

static int32_t idle_count(struct wp_h2p_core *c, const struct wp_h2p_up *up)
{
	int32_t n = 0;

	for (struct wp_h2p_up *u = c->used_up; u; u = u->next)
		if (u != up && u->n_strms == 0 && u->state == WP_H2P_UP_READY && !u->reap &&
		    u->h1 == up->h1 && u->port == up->port && u->addr.v4 == up->addr.v4 &&
		    !memcmp(u->addr.v6, up->addr.v6, 16))
			n++;
	return n;
}

/* <up> has no stream left: keep it idle, or close it. */
static void up_went_idle(struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = up->core;

	up->idle_since_ms = c->now_ms;
	if (up->state == WP_H2P_UP_CLOSED || c->draining ||
	    idle_count(c, up) >=
	            (int32_t)(up->h1 ? c->cfg.max_idle_h1_per_ep : c->cfg.max_idle_per_ep)) {
		if (up->state != WP_H2P_UP_CLOSED)
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_IDLE_OVER_LIMIT);
		up_reap_later(up);
	}
}

static void up_link_strm(struct wp_h2p_up *up, struct wp_h2p_strm *t)
{
	t->up = up;
	t->uprev = NULL;
	t->unext = up->strms;
	if (up->strms)
		up->strms->uprev = t;
	up->strms = t;
	up->n_strms++;
}

static void up_unlink_strm(struct wp_h2p_strm *t)
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
	if (--up->n_strms == 0)
		up_went_idle(up);
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

/* An upstream connection for <ep> with room for one more stream: a shared
 * one (connected ones first), else a new one; HTTP/1.1 ones when <h1> (an
 * idle kept-alive one, else a new one). NULL (counted) if none. */
static struct wp_h2p_up *up_acquire(struct wp_h2p_core *c, const struct wp_snap_endpoint *ep,
                                    bool h1)
{
	struct wp_h2p_up *up, *best = NULL;

	for (up = c->used_up; up; up = up->next) {
		if (up->reap || up->state == WP_H2P_UP_CLOSED || up->h1 != h1 || !same_ep(up, ep) ||
		    up->n_strms >= up_limit(up) || (h1 && h1s(up)->cur))
			continue;
		if (!best || (best->state != WP_H2P_UP_READY && up->state == WP_H2P_UP_READY) ||
		    (best->state == up->state && up->n_strms > best->n_strms))
			best = up;
	}
	if (best) {
		wp_ctr_inc(c->ctr, h1 ? WP_CTR_L7_H2P_UP_H1_REUSE : WP_CTR_L7_H2P_UP_SHARED);
		return best;
	}
	if (!c->free_up) {
		/* evict an idle connection (of any endpoint) for the new one */
		for (up = c->used_up; up; up = up->next)
			if (up->n_strms == 0 && !up->reap && up != c->cur_up)
				break;
		if (up) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_IDLE_EVICTED);
			up_retire(up);
		}
	}
	up = c->free_up;
	if (!up) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_UPSTREAM);
		return NULL;
	}
	c->free_up = up->next;
	up->next = c->used_up;
	up->prev = NULL;
	if (c->used_up)
		c->used_up->prev = up;
	c->used_up = up;
	c->n_ups++;
	up->addr = ep->addr;
	up->port = ep->port;
	up->ambient = ep->ambient;
	up->state = WP_H2P_UP_CONNECTING;
	up->idle_since_ms = c->now_ms;
	up->h1 = h1;
	if (h1) {
		struct h1up *h = h1s(up);

		h->cur = NULL;
		h->req_done = h->wrote = h->interim = h->head_in = false;
		if (wp_http1_parser_init(&h->p, HTTP_RESPONSE, &c->h1lim, h->arena, h->arena_size,
		                         c->ctr) != 0) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
			up_destroy(up, false);
			return NULL;
		}
	} else if (up_new_session(c, up) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
		up_destroy(up, false);
		return NULL;
	}
	if (c->ops->up_open(c->host, up, ep) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_CONNECT_FAILED);
		up_destroy(up, false);
		return NULL;
	}
	wp_ctr_inc(c->ctr, h1 ? WP_CTR_L7_H2P_UP_H1_CONN : WP_CTR_L7_H2P_UP_NEW);
	return up;
}

static void strm_local(struct wp_h2p_strm *t, uint16_t status, const char *loc, size_t loc_len);
static void strm_cancel_up(struct wp_h2p_strm *t, uint32_t code);

static void mirror_free(struct wp_h2p_strm *m, bool cancel);

/* HTTPRoute timeouts.request / backendRequest: a stream whose response has
 * not ended in time gets 504 (gRPC: UNAVAILABLE) when no response head went
 * out yet, else is reset; its upstream stream is cancelled. A request
 * mirror is reset once it is older than mirror_timeout_ms. */
static void strm_timers(struct wp_h2p_strm *t, uint64_t now_ms)
{
	if (t->in_use && t->mirror && t->mirror_deadline_ms && now_ms >= t->mirror_deadline_ms) {
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_MIRROR_ABANDONED);
		mirror_free(t, true);
		return;
	}
	if (!t->in_use || !t->routed || t->local || t->resp_eof ||
	    ((!t->deadline_ms || now_ms < t->deadline_ms) &&
	     (!t->try_deadline_ms || now_ms < t->try_deadline_ms)))
		return;
	wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_TIMEOUT);
	t->rec.flags |= WP_PIPE_F(UT);
	t->deadline_ms = t->try_deadline_ms = 0;
	strm_cancel_up(t, NGHTTP2_CANCEL);
	strm_local(t, 504, NULL, 0);
}

unsigned wp_h2p_core_tick(struct wp_h2p_core *c, uint64_t now_ms)
{
	unsigned n = 0;
	struct wp_h2p_up *up, *nx;

	c->now_ms = now_ms;
	for (uint32_t i = 0; i < c->cfg.max_streams; i++)
		strm_timers(&c->strms[i], now_ms);
	for (uint32_t i = 0; i < c->cfg.max_sessions; i++) {
		struct wp_h2p_sess *s = &c->sessions[i];

		if (s->in_use && !s->fatal && s->n_strms == 0 && c->cfg.down_idle_timeout_ms &&
		    now_ms - s->last_ms >= c->cfg.down_idle_timeout_ms) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_DOWN_IDLE_TIMEOUT);
			(void)nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
			s->fatal = true;
			wake_sess(s);
		}
	}
	for (up = c->used_up; up; up = nx) {
		nx = up->next;
		if (up->n_strms == 0 && !up->reap && up->state != WP_H2P_UP_CONNECTING &&
		    now_ms - up->idle_since_ms >= c->cfg.idle_timeout_ms) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_IDLE_EXPIRED);
			up_reap_later(up);
			n++;
		}
	}
	core_reap(c);
	return n;
}

void wp_h2p_core_clock(struct wp_h2p_core *c, uint64_t now_ms)
{
	c->now_ms = now_ms;
}

void wp_h2p_core_drain(struct wp_h2p_core *c)
{
	c->draining = true;
	for (struct wp_h2p_up *up = c->used_up; up; up = up->next)
		if (up->n_strms == 0)
			up_reap_later(up);
	core_reap(c);
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
	t->up_sent = 0;
	t->pick_table = NULL;
	t->retries_left = 0;
	t->retry_on = 0;
	t->n_failed = 0;
	t->act.t = NULL;
	t->has_rmods = false;
	t->mirror = false;
	t->n_mir = 0;
	t->feeder = NULL;
	t->rec.active = false;
	t->retried = t->reqid_gen = false;
	t->sprev = NULL;
	t->snext = s->strms;
	if (s->strms)
		s->strms->sprev = t;
	s->strms = t;
	s->n_strms++;
	c->n_strms++;
	return t;
}

static void strm_free(struct wp_h2p_strm *t)
{
	struct wp_h2p_core *c = t->core;

	WP_ASSERT(t->sess == NULL && t->up == NULL);
	wp_lb_cache_end(t->core->lbc, &t->act);
	t->in_use = false;
	t->down_sid = t->up_sid = 0;
	t->next_free = c->free_strm;
	c->free_strm = t;
	c->n_strms--;
}

static struct wp_h2p_strm *down_strm(struct wp_h2p_sess *s, int32_t sid)
{
	struct wp_h2p_strm *t = nghttp2_session_get_stream_user_data(s->ng, sid);

	return t && t->in_use && t->sess == s && t->down_sid == sid ? t : NULL;
}

static struct wp_h2p_strm *up_strm(struct wp_h2p_up *up, int32_t sid)
{
	struct wp_h2p_strm *t = nghttp2_session_get_stream_user_data(up->ng, sid);

	return t && t->in_use && t->up == up && t->up_sid == sid ? t : NULL;
}

/* Gives the source session back the window of ring bytes that will never
 * be forwarded. */
static void qb_discard(struct wp_h2p_strm *t)
{
	if (t->qb.len && t->sess) {
		(void)nghttp2_session_consume_connection(t->sess->ng, t->qb.len);
		(void)nghttp2_session_consume_stream(t->sess->ng, t->down_sid, t->qb.len);
	}
	t->qb.head = t->qb.len = 0;
	wake_sess(t->sess);
}

static void rb_discard(struct wp_h2p_strm *t)
{
	if (t->rb.len && t->up && t->up->ng)
		(void)nghttp2_session_consume_connection(t->up->ng, t->rb.len);
	t->rb.head = t->rb.len = 0;
	wake_up(t->up);
}

static void h1_abort(struct wp_h2p_up *up, struct wp_h2p_strm *t);

/* Lets go of the upstream stream (cancelled when still open). */
static void strm_cancel_up(struct wp_h2p_strm *t, uint32_t code)
{
	struct wp_h2p_up *up = t->up;

	if (!up)
		return;
	rb_discard(t);
	if (up->h1) {
		h1_abort(up, t);
		return;
	}
	if (t->up_sid > 0 && up->ng) {
		/* still linked: open, or queued in nghttp2 */
		(void)nghttp2_submit_rst_stream(up->ng, NGHTTP2_FLAG_NONE, t->up_sid, code);
		(void)nghttp2_session_set_stream_user_data(up->ng, t->up_sid, NULL);
	}
	wake_up(up);
	up_unlink_strm(t);
}

static int strm_submit(struct wp_h2p_strm *t, struct wp_h2p_up *up);

/* ---- request mirrors -------------------------------------------------------------------- */

/* A copy <m> is over: off its upstream (reset with CANCEL when still open,
 * if <cancel>), off its feeder, back to the pool. */
static void mirror_free(struct wp_h2p_strm *m, bool cancel)
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
		strm_cancel_up(m, NGHTTP2_CANCEL);
	else
		up_unlink_strm(m);
	m->mirror = false;
	m->qb.head = m->qb.len = 0;
	strm_free(m);
}

/* The copies <t> still feeds are cut short: abandoned (counted). */
static void mirrors_abort(struct wp_h2p_strm *t)
{
	while (t->n_mir > 0) {
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_MIRROR_ABANDONED);
		mirror_free(t->mir[t->n_mir - 1], true);
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
			mirror_free(m, true);
			continue;
		}
		if (m->up && m->up_sid > 0) {
			(void)nghttp2_session_resume_data(m->up->ng, m->up_sid);
			wake_up(m->up);
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
			mirror_free(m, true);
			continue;
		}
		ring_put(&m->qb, d, len);
		if (m->up && m->up_sid > 0) {
			(void)nghttp2_session_resume_data(m->up->ng, m->up_sid);
			wake_up(m->up);
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
	bool has;
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
	m->n_failed = 0;
	m->act.t = NULL;
	m->has_rmods = false;
	m->n_mir = 0;
	m->feeder = NULL;
	m->deadline_ms = m->try_deadline_ms = 0;
	m->mirror_deadline_ms = c->cfg.mirror_timeout_ms ? c->now_ms + c->cfg.mirror_timeout_ms : 0;
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
			mirror_free(m, false);
			return;
		}
		nv_set(&m->onv[k], nm, f->namelen, v, vl);
	}
	m->n_onv = t->n_onv; /* trailers are added after the block's bytes */
	m->req_eof = t->req_eof;
	up = up_acquire(c, &cl->endpoints[i], false);
	if (!up || strm_submit(m, up) != 0) { /* counted */
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_MIRROR_DROPPED);
		mirror_free(m, false);
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
	/* the client reset a stream whose response was not complete */
	if (code != NGHTTP2_NO_ERROR && !r->flags && !t->local && !(t->resp_eof && !t->rb.len))
		r->flags |= WP_PIPE_F(DR);
	if (!wp_pipe_logs(t->sess->conn)) {
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

	strm_record(t, code);
	mirrors_abort(t); /* reset before its request ended */
	if (code != NGHTTP2_NO_ERROR && !t->local && t->up)
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_DOWN_RESET);
	if (t->up)
		strm_cancel_up(t, NGHTTP2_CANCEL);
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
	strm_free(t);
}

/* ---- local answers ---------------------------------------------------------------------- */

static uint32_t grpc_code(uint16_t status)
{
	return wp_pipe_http_to_grpc(status); /* Envoy's Grpc::Utility::httpToGrpcStatus */
}

static const char *local_text(uint16_t status)
{
	switch (status) {
	case 400:
		return "bad request";
	case WP_PIPE_DENIED_STATUS:
		return WP_PIPE_DENIED_BODY;
	case 404:
		return "no route";
	case 431:
		return "request header fields too large";
	case 500:
		return "no valid backend";
	case 502:
		return "upstream protocol error";
	case 503:
		return "no healthy upstream";
	case 504:
		return "upstream request timeout";
	default:
		return "local reply";
	}
}

/* The body of a local answer that has one (403 "RBAC: access denied"). */
static ssize_t local_body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                               uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct wp_h2p_strm *t = down_strm(ud, sid);
	size_t n;

	(void)ng;
	(void)src;
	if (!t || t->body_off > WP_PIPE_DENIED_BODY_LEN)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = WP_MIN(len, WP_PIPE_DENIED_BODY_LEN - t->body_off);
	t->rec.resp_bytes += n;
	memcpy(buf, &WP_PIPE_DENIED_BODY[t->body_off], n);
	t->body_off = (uint8_t)(t->body_off + n);
	if (t->body_off == WP_PIPE_DENIED_BODY_LEN)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Answers the downstream stream of <t> with <status> (a gRPC request: a
 * trailers-only response) unless a response head was sent already (then
 * the stream is reset). Request bytes from here on are dropped. */
static void strm_local(struct wp_h2p_strm *t, uint16_t status, const char *loc, size_t loc_len)
{
	struct wp_h2p_sess *s = t->sess;
	struct wp_h2p_core *c = t->core;
	char st[8], gs[8];
	nghttp2_nv nv[5];
	size_t n = 0;
	const char *txt = local_text(status);
	nghttp2_data_provider body = {.read_callback = local_body_read};
	bool has_body = false;

	t->local = true;
	mirrors_abort(t);
	qb_discard(t);
	if (!s)
		return;
	if (t->head_sent) {
		(void)nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, t->down_sid,
		                                NGHTTP2_INTERNAL_ERROR);
		wake_sess(s);
		return;
	}
	t->head_sent = true;
	t->rec.status = t->grpc ? 200 : status; /* what goes on the wire */
	if (t->grpc) {
		t->rec.grpc = (int16_t)grpc_code(status);
		snprintf(gs, sizeof(gs), "%u", grpc_code(status));
		nv_set(&nv[n++], ":status", 7, "200", 3);
		nv_set(&nv[n++], "content-type", 12, "application/grpc", 16);
		nv_set(&nv[n++], "grpc-status", 11, gs, strlen(gs));
		nv_set(&nv[n++], "grpc-message", 12, txt, strlen(txt));
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_LOCAL_GRPC);
	} else {
		snprintf(st, sizeof(st), "%u", status);
		nv_set(&nv[n++], ":status", 7, st, strlen(st));
		if (loc)
			nv_set(&nv[n++], "location", 8, loc, loc_len);
		has_body = status == WP_PIPE_DENIED_STATUS;
		if (has_body) {
			static const char cl[] = {'0' + WP_PIPE_DENIED_BODY_LEN / 10,
			                          '0' + WP_PIPE_DENIED_BODY_LEN % 10};

			_Static_assert(WP_PIPE_DENIED_BODY_LEN < 100, "two digits");
			nv_set(&nv[n++], "content-type", 12, "text/plain", 10);
			nv_set(&nv[n++], "content-length", 14, cl, sizeof(cl));
			t->body_off = 0;
		} else {
			nv_set(&nv[n++], "content-length", 14, "0", 1);
		}
	}
	/* the rest of the request is not wanted: d_frame_send() resets the
	 * stream (NO_ERROR) once this response is out */
	if (nghttp2_submit_response(s->ng, t->down_sid, nv, n, has_body ? &body : NULL) != 0)
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
	wake_sess(s);
}

/* ---- forwarding the request ------------------------------------------------------------- */

static ssize_t up_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
	struct wp_h2p_up *up = ud;
	struct wp_h2p_strm *t = up_strm(up, sid);
	size_t n;

	(void)src;
	if (!t)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = ring_get(&t->qb, buf, len);
	if (n > 0) {
		t->up_sent += n;
		if (t->sess) {
			(void)nghttp2_session_consume(t->sess->ng, t->down_sid, n);
			wake_sess(t->sess);
		}
	}
	if (t->qb.len == 0 && t->req_eof) {
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

static int h1_submit(struct wp_h2p_strm *t, struct wp_h2p_up *up);

/* Submits the request of <t> on <up>. 0 or -errno. */
static int strm_submit(struct wp_h2p_strm *t, struct wp_h2p_up *up)
{
	nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = up_read};
	int32_t sid;

	if (up->h1)
		return h1_submit(t, up);
	sid = nghttp2_submit_request(up->ng, NULL, t->onv, t->n_onv,
	                             t->req_eof && t->qb.len == 0 && !t->req.has_trl ? NULL : &prd,
	                             t);
	if (sid < 0) {
		wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_NOMEM);
		return -ENOMEM;
	}
	t->up_sid = sid;
	up_link_strm(up, t);
	wake_up(up);
	return 0;
}

static bool tried(const struct wp_h2p_strm *t, const struct wp_snap_endpoint *ep)
{
	for (uint8_t k = 0; k < t->n_failed; k++)
		if (t->failed[k].port == ep->port && t->failed[k].addr.family == ep->addr.family &&
		    !memcmp(t->failed[k].addr.v6, ep->addr.v6,
		            ep->addr.family == WP_AF_INET ? 4 : 16))
			return true;
	return false;
}

/* Picks an endpoint of the stream's cluster (avoiding failed ones when
 * <avoid>) and submits the request there. 0, or -errno (nothing sent). */
static int strm_dispatch(struct wp_h2p_strm *t, const struct wp_route_cluster *cl, bool avoid)
{
	struct wp_h2p_core *c = t->core;

	for (;;) {
		struct wp_h2p_up *up;
		int i = -1;

		for (int k = 0; k < (avoid ? RETRY_PICKS : 1); k++) {
			i = wp_lb_pick(cl->lb, wp_lb_cache_core(c->lbc, cl->lb), t->pick_hash,
			               t->pick_has_hash);
			if (i < 0 || (uint32_t)i >= cl->n_endpoints) {
				wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_ENDPOINT);
				wp_pipe_rec_dest(t->sess ? t->sess->conn : NULL, &t->rec, cl, NULL);
				t->rec.flags |= WP_PIPE_F(UH);
				return -ENOENT;
			}
			if (!tried(t, &cl->endpoints[i]))
				break;
		}
		wp_pipe_rec_dest(t->sess ? t->sess->conn : NULL, &t->rec, cl, &cl->endpoints[i]);
		up = up_acquire(c, &cl->endpoints[i], t->sess && t->sess->h1up);
		if (up) {
			if (strm_submit(t, up) != 0)
				return -ENOMEM;
			wp_lb_cache_begin(c->lbc, cl->lb, i, &t->act);
			if (t->try_timeout_ms) /* per try */
				t->try_deadline_ms = c->now_ms + t->try_timeout_ms;
			return 0;
		}
		if (t->retries_left == 0 || !(t->retry_on & WP_ROUTE_RETRY_CONNECT_FAILURE)) {
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
static bool strm_retry(struct wp_h2p_strm *t, uint16_t why)
{
	struct wp_h2p_sess *s = t->sess;

	if (!s || t->local || t->head_sent || t->up_sent > 0 || !(t->retry_on & why) ||
	    t->retries_left == 0 || !s->routes || s->routes != t->pick_table ||
	    t->pick_cluster >= s->routes->n_clusters)
		return false;
	t->retries_left--;
	t->retried = true;
	wp_ctr_inc(t->core->ctr, WP_CTR_L7_H2P_RETRY);
	wp_lb_cache_end(t->core->lbc, &t->act);
	return strm_dispatch(t, &s->routes->clusters[t->pick_cluster], true) == 0;
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

static uint8_t method_id(const uint8_t *m, size_t l)
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

/* The upstream request block of <t>: pseudo-headers first (:authority
 * possibly rewritten, :path possibly rewritten), the client's fields minus
 * those the rule removes or sets, the set and added ones, x-request-id
 * when missing. Fields point into t->req (copies made there). */
static int build_onv(struct wp_h2p_strm *t, const struct wp_http_hdr_mods *mods, const char *path,
                     size_t path_len)
{
	struct hblock *h = &t->req;
	uint16_t cap = h->max + OUT_EXTRA, n = 0;
	const nghttp2_nv *m = hb_find(h, 0, h->n, ":method");
	const nghttp2_nv *sc = hb_find(h, 0, h->n, ":scheme");
	const nghttp2_nv *au = hb_find(h, 0, h->n, ":authority");
	const char *auth = au ? (const char *)au->value : NULL;
	size_t auth_len = au ? au->valuelen : 0;
	bool has_id = false;

	if (!au) {
		const nghttp2_nv *host = hb_find(h, 0, h->n, "host");

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
	for (uint16_t i = 0; i < h->n; i++) {
		const nghttp2_nv *f = &h->nv[i];

		if (f->namelen > 0 && f->name[0] == ':')
			continue;
		if (f->namelen == 4 && !memcmp(f->name, "host", 4))
			continue; /* carried as :authority */
		if (mods && (name_in(f->name, f->namelen, mods->remove, mods->n_remove) ||
		             name_in(f->name, f->namelen, mods->set, mods->n_set)))
			continue;
		if (n >= cap)
			return -ENOSPC;
		if (f->namelen == 12 && !memcmp(f->name, "x-request-id", 12))
			has_id = true;
		t->onv[n++] = *f;
	}
	for (int k = 0; mods && k < 2; k++) {
		const struct wp_http_hdr *a = k ? mods->add : mods->set;
		uint16_t na = k ? mods->n_add : mods->n_set;

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
	const nghttp2_nv *m = hb_find(h, 0, h->n, ":method");
	const nghttp2_nv *p = hb_find(h, 0, h->n, ":path");
	const nghttp2_nv *au = hb_find(h, 0, h->n, ":authority");
	const nghttp2_nv *ct = hb_find(h, 0, h->n, "content-type");
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
	if (s->conn)
		wp_pipe_rec_begin(s->conn, &t->rec, t->grpc);
	if (h->over) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
		strm_local(t, 431, NULL, 0);
		return;
	}
	if (!m || !p || p->valuelen == 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_BAD_REQUEST);
		t->rec.flags |= WP_PIPE_F(DPE);
		strm_local(t, 400, NULL, 0);
		return;
	}
	if (!s->routes) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_TABLE);
		strm_local(t, 500, NULL, 0);
		return;
	}
	/* the request as the router sees it: :authority is the host */
	for (uint16_t i = 0; i < h->n && nh < h->max; i++) {
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
	rq.method = method_id(m->value, m->valuelen);
	rq.hdrs = c->rh;
	rq.n_hdrs = nh;
	rq.src = s->src;
	if (s->conn && wp_pipe_normalize(s->conn->core, &rq) != 0) {
		strm_local(t, 400, NULL, 0);
		return;
	}
	/* authorization before any answer of the router, as in Envoy */
	if (s->conn) {
		struct wp_authz_decision az;

		if (!wp_pipe_authorize(s->conn, &rq, (const char *)m->value, m->valuelen, &az)) {
			strm_local(t, WP_PIPE_DENIED_STATUS, NULL, 0);
			return;
		}
	}
	if (wp_route_select(s->routes, c->rc, &rq, &d) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_ROUTE);
		t->rec.flags |= WP_PIPE_F(NR);
		strm_local(t, 404, NULL, 0);
		return;
	}
	if (d.status >= 300 && d.status < 400) {
		const char *loc, *e;

		n = wp_route_write_redirect(&d, &rq, true, c->tmp, sizeof(c->tmp) - 1);
		if (n < 12) {
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
			strm_local(t, 500, NULL, 0);
			return;
		}
		c->tmp[n] = '\0';
		loc = strstr(c->tmp, "\r\nlocation: ");
		e = loc ? strstr(loc + 12, "\r\n") : NULL;
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_REDIRECT);
		t->grpc = false; /* a redirect is an HTTP answer */
		t->rec.is_grpc = false;
		strm_local(t, d.status, loc ? loc + 12 : NULL, e ? (size_t)(e - loc - 12) : 0);
		return;
	}
	if (!d.cluster) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NO_BACKEND);
		t->rec.flags |= WP_PIPE_F(NC);
		strm_local(t, d.status ? d.status : 500, NULL, 0);
		return;
	}
	t->pick_has_hash = wp_route_cluster_hash(d.cluster, &rq, &hash);
	t->pick_hash = hash;
	t->pick_table = s->routes;
	t->pick_cluster = (uint32_t)(d.cluster - s->routes->clusters);
	t->retry_on = d.rule->retry.on;
	t->retries_left = d.rule->retry.attempts;
	t->deadline_ms = d.rule->request_timeout_ms ? c->now_ms + d.rule->request_timeout_ms : 0;
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
		strm_local(t, 431, NULL, 0);
		return;
	}
	n = strm_dispatch(t, d.cluster, false);
	if (n != 0) {
		if (n == -ECONNREFUSED)
			wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_CONNECT_FAILED);
		strm_local(t, 503, NULL, 0);
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

/* ---- downstream callbacks --------------------------------------------------------------- */

static int d_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
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

static int d_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen, uint8_t flags, void *ud)
{
	struct wp_h2p_strm *t = down_strm(ud, f->hd.stream_id);

	(void)ng;
	(void)flags;
	if (t && f->hd.type == NGHTTP2_HEADERS)
		hb_add(&t->req, name, nlen, value, vlen);
	return 0;
}

static int d_invalid_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
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

static int d_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
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
		wake_up(t->up);
	}
	return 0;
}

static int d_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                  void *ud)
{
	struct wp_h2p_sess *s = ud;
	struct wp_h2p_strm *t = down_strm(s, sid);

	(void)flags;
	if (t && t->n_mir > 0)
		mirrors_tee(t, data, len);
	if (t)
		t->rec.req_bytes += len;
	if (!t || t->local || (!t->up && t->routed)) {
		/* nobody takes them: the window comes back now */
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
		wake_up(t->up);
	}
	return 0;
}

/* A local answer went out while the client still sends: stop it (RFC 9113
 * 8.1: a complete response, then RST_STREAM NO_ERROR). */
static int d_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
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
static int d_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int err, void *ud)
{
	struct wp_h2p_sess *s = ud;

	(void)ng;
	(void)f;
	wp_ctr_inc(s->core->ctr, err == NGHTTP2_ERR_HTTP_HEADER || err == NGHTTP2_ERR_HTTP_MESSAGING
	                                 ? WP_CTR_L7_H2P_INVALID_HEADER
	                                 : WP_CTR_L7_H2P_DOWN_PROTOCOL);
	return 0;
}

static int d_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct wp_h2p_strm *t = down_strm(ud, sid);

	if (t) {
		(void)nghttp2_session_set_stream_user_data(ng, sid, NULL);
		strm_down_gone(t, code);
	}
	return 0;
}

static ssize_t down_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
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
		wake_up(t->up);
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

/* ---- upstream callbacks ----------------------------------------------------------------- */

static int u_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct wp_h2p_strm *t = up_strm(ud, f->hd.stream_id);

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
	struct wp_h2p_strm *t = up_strm(ud, f->hd.stream_id);

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
	nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = down_read};
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
	}
	if (!ok || h->over) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_HEADER_TOO_BIG);
		t->head_sent = false;
		strm_local(t, 503, NULL, 0);
		strm_cancel_up(t, NGHTTP2_CANCEL);
		return;
	}
	if (nghttp2_submit_response(s->ng, t->down_sid, c->tnv, n, end ? NULL : &prd) != 0) {
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
		(void)nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, t->down_sid,
		                                NGHTTP2_INTERNAL_ERROR);
	}
	wake_sess(s);
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
		if (up->n_strms == 0)
			up_reap_later(up);
		return 0;
	}
	if (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA)
		return 0;
	t = up_strm(up, f->hd.stream_id);
	if (!t || !t->sess)
		return 0;
	if (f->hd.type == NGHTTP2_HEADERS && !t->head_sent) {
		const nghttp2_nv *st = hb_find(&t->resp, 0, t->resp.n, ":status");

		if (st && st->valuelen == 3 && st->value[0] == '1') {
			wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_INTERIM_DROPPED);
			return 0;
		}
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
		wake_sess(t->sess);
	}
	return 0;
}

static int u_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                  void *ud)
{
	struct wp_h2p_up *up = ud;
	struct wp_h2p_strm *t = up_strm(up, sid);

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
	wake_sess(t->sess);
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
		if (unprocessed && strm_retry(t, WP_ROUTE_RETRY_REFUSED_STREAM)) {
			t->rec.flags &= (uint16_t)~WP_PIPE_F(UR); /* another try */
			return;
		}
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_RESET);
		strm_local(t, 503, NULL, 0);
		return;
	}
	if (t->local)
		return;
	wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_UP_RESET);
	(void)nghttp2_submit_rst_stream(t->sess->ng, NGHTTP2_FLAG_NONE, t->down_sid,
	                                code != NGHTTP2_NO_ERROR ? code : NGHTTP2_INTERNAL_ERROR);
	wake_sess(t->sess);
}

static int u_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct wp_h2p_up *up = ud;
	struct wp_h2p_strm *t = up_strm(up, sid);
	bool unprocessed = code == NGHTTP2_REFUSED_STREAM;

	if (!t)
		return 0;
	if (t->mirror) { /* its response was thrown away */
		if (t->feeder)
			wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_MIRROR_ABANDONED);
		mirror_free(t, false);
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
	up_unlink_strm(t);
	wp_lb_cache_end(t->core->lbc, &t->act);
	if (code != NGHTTP2_NO_ERROR || !t->resp_eof) {
		strm_up_failed(t, code, unprocessed);
	} else if (t->sess) {
		if (!t->req_eof)
			qb_discard(t); /* the rest of the request is not forwarded */
		(void)nghttp2_session_resume_data(t->sess->ng, t->down_sid);
		wake_sess(t->sess);
	}
	if (!t->sess && !t->up)
		strm_free(t);
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
		mirror_free(t, false);
		return 0;
	}
	wp_ctr_inc(up->core->ctr, WP_CTR_L7_H2P_UP_REFUSED);
	up_unlink_strm(t);
	wp_lb_cache_end(t->core->lbc, &t->act);
	strm_up_failed(t, NGHTTP2_REFUSED_STREAM, true);
	return 0;
}

static int setup_callbacks(struct wp_h2p_core *c)
{
	nghttp2_session_callbacks *d, *u;

	if (nghttp2_session_callbacks_new(&c->cb_down) ||
	    nghttp2_session_callbacks_new(&c->cb_up) || nghttp2_option_new(&c->opt_down) ||
	    nghttp2_option_new(&c->opt_up))
		return -ENOMEM;
	d = c->cb_down;
	u = c->cb_up;
	nghttp2_session_callbacks_set_on_begin_headers_callback(d, d_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(d, d_header);
	nghttp2_session_callbacks_set_on_invalid_header_callback(d, d_invalid_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(d, d_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(d, d_data);
	nghttp2_session_callbacks_set_on_stream_close_callback(d, d_stream_close);
	nghttp2_session_callbacks_set_on_frame_send_callback(d, d_frame_send);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(d, d_invalid_frame);
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
static int h1_submit(struct wp_h2p_strm *t, struct wp_h2p_up *up)
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
	h->method = method_id(m->value, m->valuelen);
	if (h->method == 0xff)
		h->method = HTTP_GET; /* framed like any method but HEAD / CONNECT */
	wp_http1_parser_expect_response(&h->p, h->method);
	t->up_sid = 1; /* linked */
	up_link_strm(up, t);
	wake_up(up);
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
	n = WP_MIN((size_t)t->qb.len, (size_t)H1_OB_BODY);
	if (n > 0) {
		if (h->framing == H1_FRAME_CHUNKED) {
			k = wp_http1_write_chunk_header(n, h->ob, 32);
			if (k < 0)
				return; /* cannot happen: 32 bytes hold any length */
			o = (size_t)k;
		}
		o += ring_get(&t->qb, (uint8_t *)h->ob + o, n);
		if (h->framing == H1_FRAME_CHUNKED) {
			memcpy(h->ob + o, WP_HTTP1_CHUNK_END, WP_HTTP1_CHUNK_END_LEN);
			o += WP_HTTP1_CHUNK_END_LEN;
		}
		t->up_sent += n;
		if (t->sess) {
			(void)nghttp2_session_consume(t->sess->ng, t->down_sid, n);
			wake_sess(t->sess);
		}
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
	up_unlink_strm(t);
	wake_up(up);
}

/* strm_cancel_up() of a stream on an HTTP/1.1 upstream: the message cannot
 * be finished, so the connection is closed, unless nothing of the request
 * went out yet (then it stays for the next one). */
static void h1_abort(struct wp_h2p_up *up, struct wp_h2p_strm *t)
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
		strm_local(t, 502, NULL, 0);
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
	if (end)
		t->resp_eof = true;
	resp_head(t, end); /* may abandon it (h1_abort) */
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
			qb_discard(t); /* the rest of the request is not forwarded */
		(void)nghttp2_session_resume_data(t->sess->ng, t->down_sid);
		wake_sess(t->sess);
	}
}

/* Response bytes: fed to the parser as far as the stream's rb has room.
 * Returns how many were taken. */
static size_t h1_in(struct wp_h2p_up *up, const uint8_t *data, size_t len)
{
	struct h1up *h = h1s(up);
	size_t used = 0;

	if (up->state == WP_H2P_UP_CONNECTING)
		up->state = WP_H2P_UP_READY;
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
			wake_sess(t->sess);
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

void wp_h2p_sess_set_conn(struct wp_h2p_sess *s, const struct wp_pipe_conn *conn)
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
	core_reap(c);
}

void wp_h2p_sess_drain(struct wp_h2p_sess *s)
{
	if (s->fatal)
		return;
	(void)nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
	                            nghttp2_session_get_last_proc_stream_id(s->ng),
	                            NGHTTP2_NO_ERROR, NULL, 0);
	wake_sess(s);
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
	core_reap(s->core);
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
		core_reap(s->core);
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

/* ---- upstream transport events ---------------------------------------------------------- */

void wp_h2p_up_connected(struct wp_h2p_up *up)
{
	if (up->state == WP_H2P_UP_CONNECTING)
		up->state = WP_H2P_UP_READY;
	wake_up(up);
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
			mirror_free(t, false);
			continue;
		}

		if (connecting && t->n_failed < RETRY_AVOID) {
			t->failed[t->n_failed].addr = up->addr;
			t->failed[t->n_failed].port = up->port;
			t->n_failed++;
		}
		if (up->h1)
			h1s(up)->cur = NULL;
		up_unlink_strm(t);
		wp_lb_cache_end(t->core->lbc, &t->act);
		if (!(t->resp_eof && t->head_sent))
			t->rb.head = t->rb.len = 0;
		if (t->sess && unprocessed &&
		    strm_retry(t, connecting ? WP_ROUTE_RETRY_CONNECT_FAILURE
		                             : WP_ROUTE_RETRY_REFUSED_STREAM))
			continue;
		if (!(t->resp_eof && t->head_sent))
			t->rec.flags |= connecting
			                        ? WP_PIPE_F(UF) | (t->retried ? WP_PIPE_F(URX) : 0)
			                        : WP_PIPE_F(UC);
		if (t->resp_eof && t->head_sent && t->sess) {
			(void)nghttp2_session_resume_data(t->sess->ng, t->down_sid);
			wake_sess(t->sess);
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
	up_destroy(up, false);
	core_reap(c);
}

void wp_h2p_up_eof(struct wp_h2p_up *up)
{
	struct wp_h2p_core *c = up->core;

	if (up->h1)
		h1_eof(up); /* a response read until EOF is complete now */
	up_lost(up);
	up_destroy(up, true);
	core_reap(c);
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
		core_reap(c);
		return k;
	}
	if (!up->ng)
		return len;
	if (up->state == WP_H2P_UP_CONNECTING)
		up->state = WP_H2P_UP_READY;
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
	core_reap(c);
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
		core_reap(up->core);
		/* core_reap may have freed <up>: its ng is NULL then */
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

bool wp_h2p_is_preface(const uint8_t *data, size_t len)
{
	static const char pre[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

	if (len < 4)
		return false;
	return !memcmp(data, pre, WP_MIN(len, sizeof(pre) - 1));
}
