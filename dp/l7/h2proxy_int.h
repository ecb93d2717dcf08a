/*
 * The h2c / gRPC proxy's private header (dp/l7/h2proxy.h is the API):
 * the core, session, stream and upstream types, the ring and header-block
 * helpers, and the functions h2proxy.c (sessions, streams, requests,
 * local answers, mirrors) and h2p_upstream.c (the upstream pool and its
 * connections, h2c and HTTP/1.1) share. Nothing outside dp/l7 includes it.
 */
#ifndef WP_DP_L7_H2PROXY_INT_H
#define WP_DP_L7_H2PROXY_INT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cbreak.h"
#include "fault.h"
#include "h2proxy.h"
#include "pipeline.h"
#include "retry.h"
#include "lb_cache.h"
#include "uppool.h"
#include "wp/counters.h"
#include "wp/lb.h"
#include "wp/snapshot_types.h"

#define OUT_EXTRA 25 /* fields a forwarded block may gain (mods, x-request-id, attempt count) */

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
	struct wp_cb_clu *cbk;  /* the cluster slot the request counts in (cbreak.h) */
	bool cb_retry;          /* it holds one of the cluster's maxRetries places */
	struct wp_cb_wait wait; /* waiting for a connection of its cluster (h2p_pending.c) */
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
	bool req_eof;          /* the client ended its side (END_STREAM seen) */
	bool resp_eof;         /* the upstream ended its side */
	bool head_sent;        /* a response head (upstream's or local) was submitted downstream */
	bool local;            /* answered locally: request bytes are dropped */
	bool head_req;         /* a HEAD request: a local answer carries no body */
	const char *local_txt; /* a local answer's body (static text), or NULL */
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
	/* retries beyond connect failures and refused streams (h2p_retry.c):
	 * the rule's policy, copied; hold: qb keeps the request body for a
	 * replay (qsent of it went to this try); this try's number, its
	 * x-envoy-attempt-count digits (a field of onv); the backoff's end */
	struct wp_route_retry rpol;
	bool hold;
	uint16_t attempt;
	uint32_t qsent;
	char acnt[8];
	uint64_t backoff_until;
	struct wp_uppool_tried failed; /* endpoints that failed to connect (avoided) */
	struct wp_lb_active act;       /* the pick counted in flight (LEAST_REQUEST) */
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
	/* fault injection (fault.h): the plan, drawn once (fault_done); held
	 * until fault_until_ms (0: not held), its body in qb meanwhile */
	bool fault_done;
	struct wp_fault_plan fault;
	uint64_t fault_until_ms;
};

struct wp_h2p_sess {
	struct wp_h2p_core *core;
	struct wp_h2p_sess *next_free;
	nghttp2_session *ng;
	bool h1up; /* WP_H2P_SESS_H1_UPSTREAM */
	const struct wp_route_table *routes;
	struct wp_pipe_conn *conn; /* identity, policy, series cache (NULL: none) */
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
	struct wp_cb_core cb; /* circuit breaking: this core's counts per cluster */
	const struct wp_h2p_ops *ops;
	void *host;
	struct wp_route_core *rc;
	nghttp2_mem *mem;
	uint64_t *ctr;
	uint64_t now_ms;
	struct wp_http_reqid_rng rng;
	uint64_t fault_rng; /* fault injection draws (wp/rand.h) */
	uint64_t fault_due; /* the earliest held stream's resumption (0: none) */
	struct h1up *h1ups; /* per upstream object (same index): the HTTP/1.1 codec */
	struct wp_http1_limits h1lim;
	struct wp_lb_cache *lbc;
	nghttp2_session_callbacks *cb_down, *cb_up;
	nghttp2_option *opt_down, *opt_up;
	struct wp_h2p_sess *sessions, *free_sess;
	struct wp_h2p_up *ups;    /* max_upstreams, their entries in <pool> */
	struct wp_uppool pool;    /* h2c (kind 0) and HTTP/1.1 (kind 1) upstreams; pool.draining:
	                             shutting down */
	struct wp_h2p_up **reap;  /* upstreams to close at the end of the call */
	struct wp_h2p_up *cur_up; /* in nghttp2 calls of this one: never destroyed */
	uint32_t n_reap;
	struct wp_h2p_strm *strms, *free_strm;
	uint32_t n_strms;
	uint8_t *mem_blk;
	nghttp2_nv *tnv; /* transient: blocks being submitted */
	uint32_t tnv_cap;
	struct wp_http_hdr *rh; /* transient: the request as the router sees it */
	char tmp[8192];         /* transient: redirect / rewritten path */
	char tmp2[8192];
	uint32_t n_backoff; /* streams waiting for a retry's backoff */
	uint32_t n_pend;    /* streams waiting for a connection (h2p_pending.c) */
	bool pend_kick;     /* a connection or stream slot may have freed for them */
	bool in_kick;       /* wp_h2p_pend_kick() runs */
	uint64_t rrng;      /* the backoffs' jitter (wp/rand.h) */
};

/* ---- rings and header blocks ------------------------------------------------------------ */

static inline uint32_t ring_room(const struct ring *r)
{
	return r->cap - r->len;
}

static inline void ring_put(struct ring *r, const uint8_t *d, size_t n)
{
	uint32_t tail = (r->head + r->len) % r->cap;
	size_t k = WP_MIN(n, (size_t)(r->cap - tail));

	memcpy(r->p + tail, d, k);
	memcpy(r->p, d + k, n - k);
	r->len += (uint32_t)n;
}

static inline size_t ring_get(struct ring *r, uint8_t *d, size_t n)
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

static inline void hb_reset(struct hblock *h)
{
	h->used = 0;
	h->n = h->trl = 0;
	h->has_trl = h->over = false;
}

static inline char *hb_copy(struct hblock *h, const void *p, size_t n)
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

static inline void hb_add(struct hblock *h, const uint8_t *name, size_t nlen, const uint8_t *val,
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

/* The fields of the head of <h> (trailers, once they begin, follow them:
 * a stream held by a fault delay is routed after they came). */
static inline uint16_t hb_head_n(const struct hblock *h)
{
	return h->trl ? h->trl : h->n;
}

static inline const nghttp2_nv *hb_find(const struct hblock *h, uint16_t from, uint16_t to,
                                        const char *name)
{
	size_t l = strlen(name);

	for (uint16_t i = from; i < to; i++)
		if (h->nv[i].namelen == l && !memcmp(h->nv[i].name, name, l))
			return &h->nv[i];
	return NULL;
}

static inline bool name_in(const uint8_t *n, size_t l, const struct wp_http_hdr *a, uint16_t k)
{
	for (uint16_t i = 0; i < k; i++)
		if (a[i].name_len == l && !strncasecmp((const char *)n, a[i].name, l))
			return true;
	return false;
}

/* Whether header hooks <m> (NULL: none) drop field <f> (removed or set). */
static inline bool mods_drop(const nghttp2_nv *f, const struct wp_http_hdr_mods *m)
{
	return m && (name_in(f->name, f->namelen, m->remove, m->n_remove) ||
	             name_in(f->name, f->namelen, m->set, m->n_set));
}

static inline void nv_set(nghttp2_nv *nv, const char *n, size_t nl, const char *v, size_t vl)
{
	nv->name = (uint8_t *)(uintptr_t)n;
	nv->namelen = nl;
	nv->value = (uint8_t *)(uintptr_t)v;
	nv->valuelen = vl;
	nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* The stream of session <s> whose downstream id is <sid>, or NULL. */
static inline struct wp_h2p_strm *down_strm(struct wp_h2p_sess *s, int32_t sid)
{
	struct wp_h2p_strm *t = nghttp2_session_get_stream_user_data(s->ng, sid);

	return t && t->in_use && t->sess == s && t->down_sid == sid ? t : NULL;
}

/* Shared between h2proxy.c, h2p_upstream.c and h2p_local.c (defined in the
 * file named). */
extern const struct wp_uppool_ops wp_h2p_pool_ops; /* h2p_upstream.c */
void wp_h2p_core_reap(struct wp_h2p_core *c);      /* h2p_upstream.c */
int wp_h2p_d_begin_headers(nghttp2_session *ng, const nghttp2_frame *f, void *ud); /* h2proxy.c */
int wp_h2p_d_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                  void *ud);                                                    /* h2proxy.c */
int wp_h2p_d_frame_recv(nghttp2_session *ng, const nghttp2_frame *f, void *ud); /* h2proxy.c */
int wp_h2p_d_frame_send(nghttp2_session *ng, const nghttp2_frame *f, void *ud); /* h2proxy.c */
int wp_h2p_d_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nlen,
                    const uint8_t *value, size_t vlen, uint8_t flags, void *ud); /* h2proxy.c */
int wp_h2p_d_invalid_frame(nghttp2_session *ng, const nghttp2_frame *f, int err,
                           void *ud); /* h2proxy.c */
int wp_h2p_d_invalid_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                            size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags,
                            void *ud); /* h2proxy.c */
int wp_h2p_d_stream_close(nghttp2_session *ng, int32_t sid, uint32_t code,
                          void *ud); /* h2proxy.c */
ssize_t wp_h2p_down_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *ud); /* h2proxy.c */
void wp_h2p_h1_abort(struct wp_h2p_up *up, struct wp_h2p_strm *t);             /* h2p_upstream.c */
int wp_h2p_h1_submit(struct wp_h2p_strm *t, struct wp_h2p_up *up);             /* h2p_upstream.c */
uint8_t wp_h2p_method_id(const uint8_t *m, size_t l);                          /* h2p_upstream.c */
void wp_h2p_mirror_free(struct wp_h2p_strm *m, bool cancel);                   /* h2proxy.c */
void wp_h2p_qb_discard(struct wp_h2p_strm *t);                                 /* h2proxy.c */
int wp_h2p_setup_callbacks(struct wp_h2p_core *c);                             /* h2p_upstream.c */
void wp_h2p_strm_cancel_up(struct wp_h2p_strm *t, uint32_t code);              /* h2proxy.c */
void wp_h2p_strm_free(struct wp_h2p_strm *t);                                  /* h2proxy.c */
void wp_h2p_strm_local(struct wp_h2p_strm *t, uint16_t status, const char *loc,
                       size_t loc_len);           /* h2p_local.c */
void wp_h2p_mirrors_abort(struct wp_h2p_strm *t); /* h2proxy.c */
/* The fault stage (fault.h) for the routed stream <t> of <rule>, once per
 * request: true when it took the stream (held by a delay: strm_timers()
 * resumes it with wp_h2p_fault_resume(); or aborted). h2p_local.c */
bool wp_h2p_fault(struct wp_h2p_strm *t, const struct wp_route_rule *rule);
void wp_h2p_fault_abort(struct wp_h2p_strm *t);              /* h2p_local.c */
void wp_h2p_fault_resume(struct wp_h2p_strm *t);             /* h2proxy.c */
bool wp_h2p_strm_retry(struct wp_h2p_strm *t, uint16_t why); /* h2proxy.c */
/* Picks an endpoint of <cl> for <t> (avoiding its failed ones when
 * <avoid>) and submits its request there: 0, or -errno (h2proxy.c). */
int wp_h2p_strm_dispatch(struct wp_h2p_strm *t, const struct wp_route_cluster *cl, bool avoid);
/* h2p_retry.c: a routed stream's policy; its block gains the attempt count. */
void wp_h2p_retry_begin(struct wp_h2p_strm *t, const struct wp_route_retry *p);
/* Up to <len> request body bytes for the upstream (held ones kept). */
size_t wp_h2p_qb_take(struct wp_h2p_strm *t, uint8_t *buf, size_t len);
/* The hold ends: the sent bytes leave qb, the client's window reopens. */
void wp_h2p_retry_release(struct wp_h2p_strm *t);
/* The upstream response head of <t> (its :status, grpc-status) is
 * retried: true when its upstream stream was cancelled for a new try. */
bool wp_h2p_retry_head(struct wp_h2p_strm *t);
/* Reset or lost before the head / per-try timeout: retried (true). */
bool wp_h2p_retry_fail(struct wp_h2p_strm *t, enum wp_retry_ev ev);
/* The stream leaves the backoff count (it ends; no-op when not waiting). */
void wp_h2p_retry_unwait(struct wp_h2p_strm *t);
/* Streams whose backoff ended try again (wp_h2p_core_clock()). */
void wp_h2p_retry_clock(struct wp_h2p_core *c, uint64_t now_ms);
/* A retry of <t> to <cl> within the cluster's maxRetries (a request holds
 * its place until it is freed). */
static inline bool wp_h2p_cb_retry(struct wp_h2p_strm *t, const struct wp_route_cluster *cl)
{
	if (!t->cb_retry)
		t->cb_retry = wp_cb_retry_begin(&t->core->cb, t->cbk, cl);
	return t->cb_retry;
}

/* h2p_pending.c: <t> waits for a connection of its cluster behind the
 * others (true), or the pending limit is reached (false: overflow,
 * counted); it leaves the line (no-op when not in it). */
bool wp_h2p_pend_join(struct wp_h2p_strm *t, struct wp_cb_clu *k,
                      const struct wp_route_cluster *cl);
void wp_h2p_pend_leave(struct wp_h2p_strm *t);
/* End of a public call: when a connection closed or a stream ended since
 * the last one, the waiting streams get a connection, first come first
 * served, while there is one for them. */
void wp_h2p_pend_kick(struct wp_h2p_core *c);

/* h2p_upstream.c: a connection to <ep>; for a request <t> to <cl>, within
 * the cluster's limits (*full: refused by one, t->rec has UO). NULL with
 * t->wait.clu set: <t> waits for one (maxConnections reached). */
struct wp_h2p_up *wp_h2p_up_acquire(struct wp_h2p_core *c, const struct wp_snap_endpoint *ep,
                                    bool h1, struct wp_h2p_strm *t,
                                    const struct wp_route_cluster *cl, bool *full);
void wp_h2p_up_destroy(struct wp_h2p_up *up, bool host_close);         /* h2p_upstream.c */
void wp_h2p_up_link_strm(struct wp_h2p_up *up, struct wp_h2p_strm *t); /* h2p_upstream.c */
struct wp_h2p_strm *wp_h2p_up_strm(struct wp_h2p_up *up, int32_t sid); /* h2proxy.c */
void wp_h2p_up_unlink_strm(struct wp_h2p_strm *t);                     /* h2p_upstream.c */
void wp_h2p_up_went_idle(struct wp_h2p_up *up);                        /* h2p_upstream.c */
void wp_h2p_wake_sess(struct wp_h2p_sess *s);                          /* h2proxy.c */
void wp_h2p_wake_up(struct wp_h2p_up *up);                             /* h2proxy.c */

#endif /* WP_DP_L7_H2PROXY_INT_H */
