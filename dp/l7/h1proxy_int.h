/*
 * The HTTP/1.1 proxy's private header (dp/l7/h1proxy.h is the API): the
 * core, session and mirror types, and the upstream functions h1proxy.c
 * (sessions, requests, responses, mirrors) and h1p_upstream.c (the
 * upstream connections in the core's pool, their connection-pool limits
 * and connect timeouts) share. Nothing outside dp/l7 includes it.
 */
#ifndef WP_DP_L7_H1PROXY_INT_H
#define WP_DP_L7_H1PROXY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "cbreak.h"
#include "fault.h"
#include "h1proxy.h"
#include "lb_cache.h"
#include "pipeline.h"
#include "retry.h"
#include "uppool.h"
#include "wp/counters.h"

/* A fixed-size output buffer: bytes at p[off, off + len). */
struct obuf {
	uint8_t *p;
	uint32_t off, len, cap;
};

/* A session's or upstream's byte buffer: bytes are added at the tail and
 * consumed at the head; room is made by moving them down once the head has
 * gone past a quarter of it. */
static inline uint32_t ob_room(struct obuf *b)
{
	if (b->len == 0)
		b->off = 0;
	if (b->off + b->len + (b->cap / 4) > b->cap && b->off > 0) {
		memmove(b->p, b->p + b->off, b->len);
		b->off = 0;
	}
	return b->cap - b->off - b->len;
}

static inline uint8_t *ob_tail(struct obuf *b)
{
	return b->p + b->off + b->len;
}

static inline bool ob_put(struct obuf *b, const void *d, size_t n)
{
	if (ob_room(b) < n)
		return false;
	memcpy(ob_tail(b), d, n);
	b->len += (uint32_t)n;
	return true;
}

static inline void ob_consume(struct obuf *b, size_t n)
{
	WP_ASSERT(n <= b->len);
	b->off += (uint32_t)n;
	b->len -= (uint32_t)n;
	if (b->len == 0)
		b->off = 0;
}

enum sess_state {
	S_FREE = 0,
	S_REQ,     /* reading a request (head or body) */
	S_TUNNEL,  /* raw passthrough */
	S_CLOSING, /* no more input; close once the queued bytes went out */
};

/* A request copy in flight: its own upstream connection and buffer. Fed by
 * its session while the request is read, then on its own until the
 * upstream closes (or the mirror timeout). */
struct wp_h1p_mirror {
	struct wp_h1p_mirror *next_free;
	struct wp_h1p_up *up;
	struct wp_h1p_sess *feeder; /* while the request is being copied */
	uint64_t started_ms;
	struct obuf out;
};

struct wp_h1p_sess {
	struct wp_h1p_core *core;
	struct wp_h1p_sess *next_free;
	const struct wp_route_table *routes;
	struct wp_pipe_conn *conn; /* identity, policy, series cache (NULL: none) */
	const struct wp_addr *src;
	const char *authority;
	size_t authority_len;
	uint8_t state;
	/* the request being served */
	bool req_active;   /* a head was parsed, its response is not complete */
	bool req_done;     /* the request message is complete (all queued upstream) */
	bool req_chunked;  /* re-chunk the body upstream */
	bool req_upgrade;  /* the request asked for Upgrade / CONNECT */
	bool hold_head;    /* chunked request: nothing goes upstream before a valid chunk line */
	bool resp_started; /* response bytes went to the client */
	bool resp_done;
	bool close_after;        /* close the client connection after this response */
	bool down_eof;           /* the client half-closed */
	bool down_shut;          /* passthrough: half-close the client after the bytes */
	bool upg_held;           /* client bytes came behind an Upgrade / CONNECT request */
	bool discard;            /* answered locally, connection kept: drop the request body */
	uint8_t framing;         /* enum wp_http1_framing of the response */
	struct wp_http1_msg req; /* shallow copy of the head (points into qp's arena) */
	void *app;
	/* connect-failure retries: the cluster picked (by index, valid while
	 * the session's table is still <pick_table>) and its hash key */
	const struct wp_route_table *pick_table;
	uint32_t pick_cluster;
	uint64_t pick_hash;
	bool pick_has_hash;
	uint16_t retries_left;
	/* retries (h1p_retry.c): the rule's policy, copied (the table may go
	 * with its snapshot); hold: upb keeps the whole request for a replay,
	 * upb_sent of it went to this try's upstream; this try's number and
	 * where its x-envoy-attempt-count digits are in upb; the backoff's end
	 * (0: not waiting); flags for the record (URX) */
	struct wp_route_retry rpol;
	bool hold;
	uint8_t acnt_len;
	uint16_t attempt;
	uint16_t retry_flags;
	uint32_t upb_sent, acnt_off;
	uint64_t backoff_until;
	/* the pick counted in flight (LEAST_REQUEST) */
	struct wp_lb_active act;
	struct wp_uppool_tried failed; /* endpoints that refused this request (avoided on retry) */
	/* the response header modifiers of the current rule, copied: the
	 * route table may go away with its snapshot before the response */
	struct wp_http_mods_copy rmods;
	bool has_rmods;
	struct wp_h1p_up *up;
	/* timeouts (0 = none): the request's, its current try's; the last
	 * client activity (idle timeout between requests) */
	uint64_t deadline_ms, try_deadline_ms, last_ms;
	uint32_t try_timeout_ms;
	/* mirrors still being fed this request */
	struct wp_h1p_mirror *mir[WP_ROUTE_MAX_MIRRORS];
	uint8_t n_mir;
	/* the completion stage's record of the current exchange; response
	 * bytes are what was queued to the client since rec_base */
	struct wp_pipe_rec rec;
	uint64_t down_total; /* bytes ever queued to the client (consumed + queued) */
	uint64_t rec_base;
	bool retried; /* a retry was made for this request */
	/* circuit breaking: the cluster slot this request counts in (NULL:
	 * none), whether it holds a retry there, its place while it waits for
	 * a connection (s->up NULL, the head and body so far in upb) */
	struct wp_cb_clu *cbk;
	bool cb_retry;
	struct wp_cb_wait wait;
	bool reqid_gen; /* reqid was generated for this request (access log) */
	char reqid[WP_HTTP1_REQID_LEN];
	/* fault injection (fault.h): the request's plan, drawn once
	 * (fault_done); while fault_until_ms is set the request is held (its
	 * bytes after the head stay with the host) and sess_timers() resumes
	 * it at that time */
	bool fault_done;
	struct wp_fault_plan fault;
	uint64_t fault_until_ms;
	struct wp_http1_parser qp; /* requests */
	struct wp_http1_parser rp; /* responses (re-initialised per upstream) */
	void *rp_arena;
	size_t arena_size;
	struct obuf down, upb;
};

struct wp_h1p_core {
	struct wp_h1p_cfg cfg;
	const struct wp_h1p_ops *ops;
	void *host;
	struct wp_route_core *rc;
	uint64_t *ctr;
	uint64_t now_ms;
	struct wp_http_reqid_rng rng;
	uint64_t fault_rng; /* fault injection draws (wp/rand.h) */
	uint64_t fault_due; /* the earliest held request's resumption (0: none) */
	struct wp_lb_cache *lbc;
	struct wp_h1p_sess *sessions;
	struct wp_h1p_sess *free_sess;
	struct wp_h1p_up *ups; /* max_upstreams, their entries in <pool> */
	struct wp_uppool pool; /* pool.draining: shutting down, responses close their connection */
	uint8_t *mem;          /* arenas and buffers of every session */
	struct wp_h1p_mirror *mirrors, *free_mir;
	uint8_t *mir_mem;      /* their buffers */
	char tgt[8192];        /* rewritten request-target, transient */
	struct wp_cb_core cb;  /* circuit breaking: this core's counts per cluster */
	bool cb_kick, in_kick; /* a connection of a cluster with waiters was freed */
	uint32_t n_backoff;    /* sessions waiting for a retry's backoff */
	uint64_t rrng;         /* the backoffs' jitter (wp/rand.h) */
};

static inline struct wp_h1p_up *h1up_of(struct wp_uppool_ent *e)
{
	return e ? (struct wp_h1p_up *)(void *)((char *)e - offsetof(struct wp_h1p_up, pe)) : NULL;
}

#pragma GCC visibility push(hidden)

/* h1p_upstream.c: the pool's callbacks (retire: up_finish, else up_close). */
extern const struct wp_uppool_ops wp_h1p_pool_ops;
/* <up> is closed: its pool entry and cluster place are given back. */
void wp_h1p_up_free(struct wp_h1p_core *c, struct wp_h1p_up *up);
/* Closes an idle or bound upstream (the host closes its transport). */
void wp_h1p_up_destroy(struct wp_h1p_core *c, struct wp_h1p_up *up, bool host_close);
/* Closes an upstream with no exchange in flight (FIN when the host can). */
void wp_h1p_up_retire(struct wp_h1p_core *c, struct wp_h1p_up *up);
/* connectTimeout: upstreams still connecting at their deadline fail. */
void wp_h1p_connect_timeouts(struct wp_h1p_core *c, uint64_t now_ms);
/* A new connection to <ep> for <s>'s request or its mirror <m>. */
struct wp_h1p_up *wp_h1p_up_open_new(struct wp_h1p_core *c, struct wp_h1p_sess *s,
                                     struct wp_h1p_mirror *m, const struct wp_route_cluster *cl,
                                     const struct wp_snap_endpoint *ep);

/* Request mirrors (h1p_mirror.c): a copy of the request, as routed, to an
 * endpoint of a mirror cluster, fed from the session's upstream buffer and
 * never slowing the real exchange. */
void wp_h1p_mirror_start(struct wp_h1p_sess *s, const struct wp_route_cluster *cl,
                         const struct wp_http1_msg *out, const struct wp_http1_req_opts *o,
                         uint64_t h, bool has);
void wp_h1p_mirror_end(struct wp_h1p_core *c, struct wp_h1p_mirror *m, bool host_close);
void wp_h1p_mirrors_abort(struct wp_h1p_sess *s);
void wp_h1p_mirrors_detach(struct wp_h1p_sess *s);
void wp_h1p_mirrors_tee(struct wp_h1p_sess *s, size_t k);
/* An upstream to <ep> of <cl> for <s> within the cluster's limits. */
struct wp_h1p_up *wp_h1p_up_get(struct wp_h1p_sess *s, const struct wp_route_cluster *cl,
                                const struct wp_snap_endpoint *ep, bool *full);
/* A waiting request of <cl> takes an idle connection its cluster freed. */
struct wp_h1p_up *wp_h1p_up_take_freed(struct wp_h1p_sess *s, const struct wp_route_cluster *cl,
                                       int *i);
/* The exchange on <up> ended cleanly: idle it, or close it. */
void wp_h1p_up_release(struct wp_h1p_core *c, struct wp_h1p_up *up);

/* h1p_retry.c: a request's retries (see there). */
enum wp_h1p_retry_verdict {
	WP_H1P_RETRY_NO = 0, /* answer the failure (URX noted in retry_flags if exhausted) */
	WP_H1P_RETRY_YES,    /* retry: wp_h1p_retry_schedule() */
};
/* A routed request's policy: its tries, whether it is held. */
void wp_h1p_retry_begin(struct wp_h1p_sess *s, const struct wp_route_retry *p);
/* Adds x-envoy-attempt-count: 1 to the head just written in upb. */
bool wp_h1p_retry_head(struct wp_h1p_sess *s);
/* The head in upb gets the next x-envoy-attempt-count (false: no room, or
 * bytes of it were consumed already). */
bool wp_h1p_retry_next_attempt(struct wp_h1p_sess *s);
/* The hold ends (the response head went out): the sent bytes are dropped. */
void wp_h1p_retry_release(struct wp_h1p_sess *s);
/* The request outgrew upb: it streams, without retries (counted). */
void wp_h1p_retry_outgrown(struct wp_h1p_sess *s);
/* Whether this try's failure (<status> != 0: a response head with gRPC
 * status <grpc>; else the event <ev>) is retried now (counted when not). */
enum wp_h1p_retry_verdict wp_h1p_retry_decide(struct wp_h1p_sess *s, enum wp_retry_ev ev,
                                              uint16_t status, int grpc);
/* Drops the try's upstream and starts the backoff (counted in <ctr>). */
void wp_h1p_retry_schedule(struct wp_h1p_sess *s, enum wp_ctr ctr);
/* The session leaves the backoff count (no-op when not waiting). */
void wp_h1p_retry_unwait(struct wp_h1p_sess *s);
/* The backoff ended: the next try starts (0), or the flags to answer 503
 * with (its cluster, endpoints or a connection could not be had). */
uint16_t wp_h1p_retry_fire(struct wp_h1p_sess *s);

#pragma GCC visibility pop

#endif /* WP_DP_L7_H1PROXY_INT_H */
