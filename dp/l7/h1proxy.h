/*
 * HTTP/1.1 proxy session, sans-I/O: the L7 half of a tunnel whose inner
 * protocol is HTTP/1.x (issue 6). The host (dp/tunnel, or a test) moves
 * bytes; this module decides what they mean.
 *
 *   downstream bytes (the client's side of an HBONE tunnel)
 *     -> request parser (dp/http/http1.h): 400/431 + close on malformed,
 *        smuggling shapes refused
 *     -> normalize the path and authorize (dp/l7/pipeline.h): 400 for a
 *        path Envoy refuses, 403 "RBAC: access denied" (connection kept)
 *     -> route (wp/route.h): 404 no rule, 3xx redirect, 500 no backend
 *     -> load balancer pick -> endpoint (503 if none)
 *     -> an upstream connection to that endpoint from the per-core pool
 *        (idle keep-alive connections reused, else the host is asked to
 *        open one through struct wp_h1p_ops; 503 when that fails)
 *     -> rewritten request head + body streamed (re-chunked if chunked)
 *   upstream bytes -> response parser -> response head (resp mods) + body
 *     streamed back; 100 Continue passed through; 101 / CONNECT 2xx switch
 *     both sides to raw passthrough; the upstream connection goes back to
 *     the pool when both messages ended cleanly and both sides keep alive.
 *
 * Pipelined requests are handled one at a time: once a request is complete
 * the session takes no more downstream bytes until its response is done
 * (wp_h1p_down_in() returns a short count, the host keeps the rest). The
 * same for the bytes behind an Upgrade / CONNECT request until the upstream
 * switched (101, CONNECT 2xx); if it declined, they are never taken: the
 * response goes with `connection: close` and the session finishes.
 * Backpressure: the two output buffers (to the client, to the upstream)
 * are fixed-size; input is taken only while the buffer it feeds has room,
 * so a slow reader stops the writer and nothing grows. Bodies are never
 * buffered whole.
 *
 * Host contract, after any call into a session: drain wp_h1p_down_peek()
 * towards the client and wp_h1p_up_peek() of wp_h1p_sess_up() towards the
 * upstream (once connected), re-offer input that was not consumed, and
 * close the client side when wp_h1p_down_finished() says so.
 *
 * Memory: wp_h1p_core_create() allocates every session and upstream object
 * of a core up front (start-up); nothing is allocated per request.
 * Retries: a request whose upstream could not be connected (nothing was
 * sent on it) goes to another pick of the same cluster, up to the rule's
 * retry attempts when its retry policy has connect-failure (Istio's default:
 * 2). Not done yet: other retry conditions, and a retry of a request whose
 * reused idle connection turned out to be closed (it gets 502).
 *
 * Timeouts (checked by wp_h1p_core_tick()): the rule's timeouts.request
 * (from the request head to the end of the response) and
 * timeouts.backendRequest (per try, from sending to the end of the
 * response) answer 504 when no response byte was sent yet, else abort the
 * client connection, like Envoy. A client connection idle between requests
 * for down_idle_timeout_ms is closed.
 *
 * Mirrors (RequestMirror): a sampled request is copied to one endpoint of
 * each mirror cluster on a fresh upstream connection of its own (host
 * "<host>-shadow", "connection: close"); its response is read and thrown
 * away. A mirror never slows the real request: when its buffer is full, or
 * the real exchange ends before the request was copied whole, the copy is
 * abandoned (counted). Mirror connections live at most mirror_timeout_ms.
 */
#ifndef WP_DP_L7_H1PROXY_H
#define WP_DP_L7_H1PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http1.h"
#include "uppool.h"
#include "wp/addr_types.h"
#include "wp/common.h"
#include "wp/route.h"

/* Fills <r> (what the route matcher reads) from a parsed HTTP/1.1 request
 * head. Here rather than beside the matcher: the tables (wp/route.h, lib/)
 * know header lines, not this codec. */
static inline void wp_route_req_init_http1(struct wp_route_req *r, const struct wp_http1_msg *msg,
                                           const struct wp_addr *src)
{
	uint32_t pl = 0;

	while (pl < msg->target_len && msg->target[pl] != '?' && msg->target[pl] != '#')
		pl++;
	r->target = msg->target;
	r->target_len = msg->target_len;
	r->path_len = pl;
	r->method = msg->method;
	r->hdrs = msg->hdrs;
	r->n_hdrs = msg->n_hdrs;
	r->src = src;
}

struct wp_h1p_core;
struct wp_h1p_sess;
struct wp_h1p_up;
struct wp_outlier;
struct wp_h1p_mirror;
struct wp_pipe_conn;

/* What the host does for the proxy. */
struct wp_h1p_ops {
	/* Start opening a transport to <ep> (its address and target port;
	 * plaintext or HBONE per ep->ambient) for <up>; the host keeps its own
	 * handle in up->io and later calls wp_h1p_up_connected() or
	 * wp_h1p_up_failed(). Returns 0, or -errno if it cannot even start
	 * (the request gets 503). */
	int (*up_open)(void *host, struct wp_h1p_up *up, const struct wp_snap_endpoint *ep);
	/* Close (abort) the transport of <up>; the proxy forgets it. Not
	 * called after wp_h1p_up_failed(). */
	void (*up_close)(void *host, struct wp_h1p_up *up);
	/* Optional. <up> has bytes to send that no session call will report
	 * (a request mirror): drain wp_h1p_up_peek(up) once it is connected.
	 * Without it, requests are not mirrored (counted). */
	void (*up_ready)(void *host, struct wp_h1p_up *up);
	/* Optional. A timer acted on <s> inside wp_h1p_core_tick() (504 queued,
	 * or the connection is to be closed): pump it as after a session call. */
	void (*wake)(void *host, struct wp_h1p_sess *s);
	/* Optional. Like up_close, for a connection with no exchange in flight
	 * (idle in the pool, or its last response complete): close it
	 * gracefully (FIN), the backend must not see a reset. Never calls into
	 * the proxy. Without it, up_close. */
	void (*up_finish)(void *host, struct wp_h1p_up *up);
	/* Optional. Bring <s>'s route table up to date (wp_h1p_sess_set_routes)
	 * before the proxy reads it outside a call about <s>: a request that
	 * waited for a connection (circuit breaking) is started. */
	void (*refresh)(void *host, struct wp_h1p_sess *s);
};

struct wp_h1p_cfg {
	struct wp_http1_limits lim;    /* request and response heads */
	uint32_t buf_size;             /* each of a session's two output buffers */
	uint32_t max_sessions;         /* per core */
	uint32_t max_upstreams;        /* upstream connection objects (busy + idle) per core */
	uint16_t max_idle_per_ep;      /* idle keep-alive connections kept per endpoint */
	uint32_t idle_timeout_ms;      /* idle connections older than this are closed */
	uint32_t max_mirrors;          /* request copies in flight per core (buf_size each) */
	uint32_t mirror_timeout_ms;    /* a mirror connection is closed after this */
	uint32_t down_idle_timeout_ms; /* client connection idle between requests; 0 = never */
	uint32_t n_workers;            /* cores sharing each connection-pool limit (cbreak.h) */
	struct wp_outlier *outlier;    /* shared ejection table (dp/l7/outlier.h); NULL: off */
};

/* 64 KiB buffers, 256 sessions, 512 upstreams, 16 idle per endpoint, 60 s;
 * 64 mirrors of at most 30 s; clients idle for 1 h (Istio's default) closed. */
extern const struct wp_h1p_cfg wp_h1p_default_cfg;

struct wp_cb_clu;

/* One upstream connection (the host's transport behind up->io). Owned by
 * the core's pool (dp/l7/uppool.h: pe holds its endpoint, whether it is
 * busy or idle, connected or not); bound to at most one session at a time. */
struct wp_h1p_up {
	struct wp_uppool_ent pe;
	void *io; /* the host's; set in ops->up_open */
	struct wp_h1p_core *core;
	struct wp_h1p_sess *sess;     /* while busy (NULL for a mirror) */
	struct wp_h1p_sess *origin;   /* the session whose request opened it (for up_open) */
	struct wp_h1p_mirror *mirror; /* set: this connection carries a request copy */
	bool reused;                  /* taken from the idle pool for the current request */
	bool shut_wr; /* passthrough: the client half-closed, send FIN after the bytes */
	/* circuit breaking (dp/l7/cbreak.h): the cluster slot it counts in
	 * (NULL: none), requests sent on it against maxRequestsPerConnection
	 * (0: no limit), the connectTimeout deadline while connecting (0: none) */
	struct wp_cb_clu *cb;
	uint32_t n_req, max_req;
	uint64_t connect_deadline_ms;
	/* the cluster's tcp.tcpKeepalive, for the host to set on the
	 * connection it opens in ops->up_open (time_ms 0: none) */
	struct wp_route_keepalive keepalive;
};

/*
 * Creates a core's proxy state: every session and upstream object,
 * allocated now. <ops>/<host> are how upstreams are opened; <rc> is the
 * core's route matcher state (reserved for the tables in use), <ctr> its
 * counters; all stay the caller's. NULL on failure (errno set).
 */
struct wp_h1p_core *wp_h1p_core_create(const struct wp_h1p_cfg *cfg, const struct wp_h1p_ops *ops,
                                       void *host, struct wp_route_core *rc, uint64_t seed,
                                       uint64_t *ctr);

/* Closes every upstream (ops->up_close) and frees everything. Sessions
 * must have been closed. NULL is a no-op. */
void wp_h1p_core_destroy(struct wp_h1p_core *c);

/* Closes idle connections older than idle_timeout_ms and mirrors older than
 * mirror_timeout_ms, fires request timeouts and closes idle clients
 * (ops->wake for each such session). Returns how many upstreams were closed
 * for idleness. Call every few hundred ms at most. */
unsigned wp_h1p_core_tick(struct wp_h1p_core *c, uint64_t now_ms);

/* The earliest time a request held by a fault delay resumes (0: none):
 * the host calls wp_h1p_core_tick() then too, so a delay ends on time
 * rather than at its next periodic tick. */
uint64_t wp_h1p_core_due(const struct wp_h1p_core *c);

/* The core's clock (ms, monotonic): what request deadlines and idle stamps
 * are taken from. The host sets it before feeding sessions. */
void wp_h1p_core_clock(struct wp_h1p_core *c, uint64_t now_ms);

/* Shutting down: closes every idle upstream, pools no more, and every
 * response from now on closes its client connection. */
void wp_h1p_core_drain(struct wp_h1p_core *c);

/* Shutting down: a session between requests finishes now
 * (wp_h1p_down_finished()), one in a request after its response. */
void wp_h1p_sess_drain(struct wp_h1p_sess *s);

/* Idle / busy (incl. connecting) upstream connections of the core. */
uint32_t wp_h1p_core_idle(const struct wp_h1p_core *c);
uint32_t wp_h1p_core_busy(const struct wp_h1p_core *c);

/*
 * Opens a session for one tunnel to a service port. <routes> (the port's
 * compiled table, see wp_h1p_sess_set_routes()), <src> (client address, for hashing; may be NULL)
 * and <authority> (the tunnel's host:port, written as Host for HTTP/1.0 requests without one) must
 * outlive the session. NULL when every session is in use (counted).
 */
struct wp_h1p_sess *wp_h1p_sess_open(struct wp_h1p_core *c, const struct wp_route_table *routes,
                                     const struct wp_addr *src, const char *authority,
                                     size_t authority_len);

/* Replaces the route table. The table is read only while a request head is
 * routed (wp_h1p_down_in()), never kept across requests: a host whose
 * tables live in RCU snapshots sets the current one before each
 * wp_h1p_down_in() call. NULL: requests get 500. */
void wp_h1p_sess_set_routes(struct wp_h1p_sess *s, const struct wp_route_table *routes);

/* The downstream connection's identity and policy (dp/l7/pipeline.h),
 * host-owned, outliving the session: each request is normalized and
 * authorized with it (denied: 403, the connection kept). NULL (after open):
 * no authorization, paths forwarded as sent. */
void wp_h1p_sess_set_conn(struct wp_h1p_sess *s, struct wp_pipe_conn *conn);

/* The host's pointer for the session (NULL after open). */
void wp_h1p_sess_set_app(struct wp_h1p_sess *s, void *app);
void *wp_h1p_sess_app(const struct wp_h1p_sess *s);

/* Ends the session: its upstream is closed unless idle-able, the session
 * object is recycled. */
void wp_h1p_sess_close(struct wp_h1p_sess *s);

/* Downstream bytes in. Returns how many were taken (fewer when waiting for
 * a response, when an output buffer is full, or after an error). */
size_t wp_h1p_down_in(struct wp_h1p_sess *s, const uint8_t *data, size_t len);

/* The client half-closed (FIN / END_STREAM). */
void wp_h1p_down_eof(struct wp_h1p_sess *s);

/* The session read part of a request and waits for the rest. */
bool wp_h1p_down_partial(const struct wp_h1p_sess *s);

/* The upstream read part of a response and waits for the rest. */
bool wp_h1p_up_partial(const struct wp_h1p_up *up);

/* Bytes waiting to go to the client: sets *p, returns the length. */
size_t wp_h1p_down_peek(const struct wp_h1p_sess *s, const uint8_t **p);

/* The host sent <n> of them. */
void wp_h1p_down_consume(struct wp_h1p_sess *s, size_t n);

/* True once the client connection should be closed: everything due was
 * queued and the connection cannot carry more (error, close framing,
 * client EOF, passthrough ended). Close after draining wp_h1p_down_peek(). */
bool wp_h1p_down_finished(const struct wp_h1p_sess *s);

/* True when the client side should be half-closed after the queued bytes
 * (passthrough: the upstream sent FIN). */
bool wp_h1p_down_shut(const struct wp_h1p_sess *s);

/* The session's current upstream (NULL when none). */
struct wp_h1p_up *wp_h1p_sess_up(const struct wp_h1p_sess *s);

/* The transport of <up> is connected: bytes may flow. */
void wp_h1p_up_connected(struct wp_h1p_up *up);

/* The transport of <up> failed (connect refused, reset): the host already
 * dropped it. A connect failure is retried on another endpoint when the
 * rule allows (the session then has a new upstream: wp_h1p_sess_up());
 * otherwise the session answers 503 (connect) or 502, or just closes. The
 * host sets the session's current route table first. */
void wp_h1p_up_failed(struct wp_h1p_up *up);

/* Upstream bytes in. Returns how many were taken. */
size_t wp_h1p_up_in(struct wp_h1p_up *up, const uint8_t *data, size_t len);

/* The upstream half-closed. */
void wp_h1p_up_eof(struct wp_h1p_up *up);

/* Bytes waiting to go to the upstream of a bound <up>. */
size_t wp_h1p_up_peek(const struct wp_h1p_up *up, const uint8_t **p);

/* The host sent <n> of them. */
void wp_h1p_up_consume(struct wp_h1p_up *up, size_t n);

#endif /* WP_DP_L7_H1PROXY_H */
