/*
 * HTTP/2 (h2c) and gRPC proxy session, sans-I/O: the L7 half of a tunnel
 * whose inner protocol is HTTP/2 with prior knowledge (issue 6), the
 * sibling of h1proxy.h. The host (dp/tunnel/l7_h2_glue.c, or a test)
 * moves bytes; this module runs nghttp2 on both sides.
 *
 *   downstream bytes (the client's side of one HBONE tunnel)
 *     -> nghttp2 server session; each request stream:
 *     -> route (wp/route.h on :path, :authority as host, :method,
 *        headers, query): 404 no rule, 3xx redirect, 500 no backend;
 *        gRPC requests (content-type application/grpc*) get a trailers-only
 *        answer instead (:status 200, grpc-status 12/14/..., grpc-message)
 *     -> load balancer pick -> endpoint (503 / UNAVAILABLE if none)
 *     -> a stream on an upstream h2c connection to that endpoint from the
 *        per-core pool: streams are multiplexed up to the upstream's
 *        SETTINGS_MAX_CONCURRENT_STREAMS (capped at cfg.max_up_streams), a
 *        new connection is opened (struct wp_h2p_ops) when all are full;
 *        connections without streams are closed after idle_timeout_ms
 *     -> request headers (x-request-id added, RequestHeaderModifier,
 *        URLRewrite), DATA and trailers forwarded; the response headers
 *        (ResponseHeaderModifier), DATA and trailers (grpc-status) back.
 *
 * HTTP/1.1 upstreams (a session opened with WP_H2P_SESS_H1_UPSTREAM: an h2c
 * client on an HTTP/1.1 port, as Envoy's codec auto-detection serves it):
 * everything above holds but the upstream codec, which is HTTP/1.1 over
 * dp/http (http1.h). Each request stream takes an upstream connection of
 * its own to the picked endpoint (one request at a time; kept alive
 * afterwards on a per-core, per-endpoint idle list bounded by
 * max_idle_h1_per_ep and idle_timeout_ms, reused before a new one is
 * opened). The request goes as `:method :path HTTP/1.1`, `host:
 * <:authority>`, the fields minus pseudo-headers and hop-by-hop ones (te
 * included; cookie fields joined into one), content-length kept when the client sent one, else
 * `transfer-encoding: chunked` when a body follows the HEADERS (request
 * trailers then become the chunked trailer section; with a content-length
 * they are dropped, counted). The response is parsed strictly: its status
 * and fields minus hop-by-hop ones as HEADERS, the body as DATA, chunked
 * trailers as trailing HEADERS. 1xx responses (but 101) are dropped; a
 * 101 or a malformed response answers 502 before a head went out, and
 * resets the stream (INTERNAL_ERROR) after; the connection is closed.
 * `connection: close` and HTTP/1.0 responses close the connection after
 * the message, and so does a stream that ends (client reset, timeout,
 * local answer) before both its request and its response are complete
 * (unless none of its request went out yet).
 * Request mirrors are not sent on such sessions (counted). The host
 * contract is unchanged, but wp_h2p_up_in() of an HTTP/1.1 upstream may
 * take fewer bytes than given: the response ring of its stream is full
 * (the client does not read); the host holds the rest (and stops reading
 * the transport) and offers it again after ops->wake_up.
 *
 * Flow control is end to end: both nghttp2 sessions run with
 * NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE and a stream's bytes are consumed (its
 * window reopened) only when the other side's nghttp2 took them into a
 * frame. Each direction of a stream has one fixed ring of cfg.stream_buf
 * bytes, and the windows we advertise never exceed it, so a slow reader
 * stops the writer and nothing grows.
 *
 * RequestMirror: a routed stream whose decision has mirrors opens, for each
 * mirror cluster, a copy stream on a pooled upstream connection to a pick
 * of that cluster (a stream object of the core, no downstream): the same
 * request block but :authority "<authority>-shadow" (port kept, same
 * x-request-id), then the request DATA and trailers teed into its own
 * ring. Its response is read and thrown away. A copy never slows the real
 * stream: one whose ring is full is reset (CANCEL) and counted, as is one
 * whose real stream is reset or answered locally before the request
 * ended; it ends with the real request's END_STREAM.
 *
 * Resets: a downstream RST_STREAM cancels the upstream stream (CANCEL); an
 * upstream reset resets the downstream stream (same code), or answers 503
 * (UNAVAILABLE for gRPC) when no response head went out yet; a stream the
 * upstream refused (REFUSED_STREAM, or above a GOAWAY's last stream id)
 * and of which no body byte was sent is retried on another connection or
 * endpoint within the rule's retry budget. A connect failure is retried on
 * another endpoint like h1proxy does. A lost upstream connection answers
 * 503 / resets the streams it carried.
 *
 * Host contract: after any call into the proxy, drain wp_h2p_down_peek()
 * of every session and wp_h2p_up_peek() of every connected upstream the
 * proxy woke (ops->wake_sess / ops->wake_up), and close a session once
 * wp_h2p_down_finished(). The proxy never calls back into the host from
 * inside a peek/consume except through ops->wake_*.
 *
 * Memory: wp_h2p_core_create() allocates every session, upstream and
 * stream object (with its rings and header blocks, and each upstream's
 * HTTP/1.1 parser arena and output buffer) up front; the nghttp2
 * sessions allocate through the host's per-core nghttp2_mem (dp/hbone/mem.h).
 * Nothing else is allocated per request.
 */
#ifndef WP_DP_L7_H2PROXY_H
#define WP_DP_L7_H2PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "http1.h"
#include "uppool.h"
#include "wp/addr_types.h"
#include "wp/common.h"
#include "wp/route.h"

struct wp_pipe_conn;
struct wp_h2p_core;
struct wp_h2p_sess;
struct wp_h2p_up;
struct wp_outlier;
struct wp_h2p_strm;
struct wp_snap_endpoint;

/* What the host does for the proxy. */
struct wp_h2p_ops {
	/* Start opening a transport to <ep> for <up> (plaintext or HBONE per
	 * ep->ambient); the host keeps its handle in up->io and later calls
	 * wp_h2p_up_connected() or wp_h2p_up_failed(). 0, or -errno if it
	 * cannot even start (the streams go elsewhere or get 503). */
	int (*up_open)(void *host, struct wp_h2p_up *up, const struct wp_snap_endpoint *ep);
	/* Close (abort) the transport of <up>; the proxy forgets it (also
	 * from wp_h2p_up_eof(); never after wp_h2p_up_failed()). May come at
	 * the end of any call into the proxy. */
	void (*up_close)(void *host, struct wp_h2p_up *up);
	/* Optional: <s> / <up> may have bytes to send or may have finished. */
	void (*wake_sess)(void *host, struct wp_h2p_sess *s);
	void (*wake_up)(void *host, struct wp_h2p_up *up);
	/* Optional. Like up_close, for an idle HTTP/1.1 upstream (nothing in
	 * flight: drain, idle expiry or limit, eviction): close it gracefully
	 * (FIN). Never calls into the proxy. Without it, up_close. */
	void (*up_finish)(void *host, struct wp_h2p_up *up);
	/* Optional. Bring <s>'s route table up to date (wp_h2p_sess_set_routes)
	 * before the proxy reads it outside a call about <s>: a stream held by
	 * a fault delay resumes from wp_h2p_core_tick(). */
	void (*refresh)(void *host, struct wp_h2p_sess *s);
};

struct wp_h2p_cfg {
	uint32_t max_sessions;       /* downstream connections per core */
	uint32_t max_upstreams;      /* upstream connections per core */
	uint32_t max_streams;        /* proxied streams per core */
	uint32_t max_down_streams;   /* SETTINGS_MAX_CONCURRENT_STREAMS we advertise */
	uint32_t max_up_streams;     /* cap on streams per upstream connection */
	uint32_t stream_buf;         /* each direction's ring per stream (>= window) */
	uint32_t window;             /* per-stream window we advertise (<= stream_buf) */
	uint32_t max_header_bytes;   /* name + value bytes of one header block (431) */
	uint16_t max_headers;        /* fields of one header block (431) */
	uint32_t idle_timeout_ms;    /* upstreams without streams closed after this */
	uint32_t n_workers;          /* cores sharing each connection-pool limit (cbreak.h) */
	uint16_t max_idle_per_ep;    /* upstreams without streams kept per endpoint */
	uint16_t max_idle_h1_per_ep; /* the same for HTTP/1.1 upstreams (one stream each) */
	/* client RST_STREAMs of proxied streams per second before the session
	 * ends with GOAWAY ENHANCE_YOUR_CALM (rapid reset, CVE-2023-44487) */
	uint32_t rst_per_sec;
	/* a client connection without streams for this long gets GOAWAY and
	 * ends (0 = never) */
	uint32_t down_idle_timeout_ms;
	/* a request mirror stream is reset after this (0 = never) */
	uint32_t mirror_timeout_ms;
	struct wp_outlier *outlier; /* shared ejection table (dp/l7/outlier.h); NULL: off */
};

/* 64 sessions, 64 upstreams, 256 streams, 100 per connection both ways,
 * 64 KiB rings and windows (the HTTP/2 default window, so no peer can
 * overrun a ring before our SETTINGS arrive), 16 KiB / 64 fields per
 * header block, 60 s idle, 4 idle per endpoint (64 HTTP/1.1 ones), 200 client resets a second,
 * clients idle for 1 h (Istio's default idle timeout) closed, mirror
 * streams of at most 30 s. */
extern const struct wp_h2p_cfg wp_h2p_default_cfg;

enum wp_h2p_up_state {
	WP_H2P_UP_FREE = 0,
	WP_H2P_UP_CONNECTING, /* transport opening; frames queue in nghttp2 */
	WP_H2P_UP_READY,      /* connected */
	WP_H2P_UP_CLOSED,     /* GOAWAY / error: no new streams, waiting for its streams */
};

struct wp_cb_clu;

/* One upstream h2c connection (the host's transport behind up->io). Owned
 * by the core's pool; carries the streams of any session of the core. */
struct wp_h2p_up {
	/* the pool's part (dp/l7/uppool.h): endpoint, busy / idle, connected,
	 * and pe.active, the streams it carries; pe.kind is h1 */
	struct wp_uppool_ent pe;
	void *io; /* the host's; set in ops->up_open */
	struct wp_h2p_core *core;
	nghttp2_session *ng;
	struct wp_h2p_strm *strms; /* streams it carries */
	uint8_t state;             /* enum wp_h2p_up_state */
	bool reap;                 /* close once out of nghttp2 (deferred) */
	bool h1;            /* an HTTP/1.1 connection (ng is NULL; see WP_H2P_SESS_H1_UPSTREAM) */
	const uint8_t *out; /* pending output (nghttp2_session_mem_send, or the HTTP/1.1 writer) */
	size_t out_len;
	/* circuit breaking (dp/l7/cbreak.h): the cluster slot it counts in
	 * (NULL: none); maxConcurrentStreams (0: the upstream's and the cap);
	 * the connectTimeout deadline while connecting (0: none); streams
	 * carried against maxRequestsPerConnection (max_req 0: no limit) */
	struct wp_cb_clu *cb;
	uint32_t max_streams, n_req, max_req;
	uint64_t connect_deadline_ms;
	/* the cluster's tcp.tcpKeepalive, for the host to set on the
	 * connection it opens in ops->up_open (time_ms 0: none) */
	struct wp_route_keepalive keepalive;
};

/*
 * Creates a core's proxy state, every object allocated now. <ops>/<host>
 * open upstreams; <rc> (route matcher state), <mem> (the core's nghttp2
 * allocator) and <ctr> (counters) stay the caller's. NULL on failure
 * (errno set).
 */
struct wp_h2p_core *wp_h2p_core_create(const struct wp_h2p_cfg *cfg, const struct wp_h2p_ops *ops,
                                       void *host, struct wp_route_core *rc, nghttp2_mem *mem,
                                       uint64_t seed, uint64_t *ctr);

/* Closes every upstream (ops->up_close) and frees everything. Sessions
 * must have been closed. NULL is a no-op. */
void wp_h2p_core_destroy(struct wp_h2p_core *c);

/* Closes upstreams without streams idle for idle_timeout_ms and fires the
 * streams' HTTPRoute timeouts (504 / gRPC UNAVAILABLE before a response
 * head, else a reset). Returns how many upstreams were closed. */
unsigned wp_h2p_core_tick(struct wp_h2p_core *c, uint64_t now_ms);

/* The earliest time a stream held by a fault delay resumes (0: none): the
 * host calls wp_h2p_core_tick() then too. */
uint64_t wp_h2p_core_due(const struct wp_h2p_core *c);

/* The core's clock (ms, monotonic) for deadlines and idle stamps; the host
 * sets it before feeding sessions. */
void wp_h2p_core_clock(struct wp_h2p_core *c, uint64_t now_ms);

/* Shutting down: idle upstreams closed, none kept idle from now on. */
void wp_h2p_core_drain(struct wp_h2p_core *c);

/* Upstream connections in use / streams in flight on the core. */
uint32_t wp_h2p_core_upstreams(const struct wp_h2p_core *c);
uint32_t wp_h2p_core_streams(const struct wp_h2p_core *c);

/* wp_h2p_sess_open() flags */
#define WP_H2P_SESS_H1_UPSTREAM 0x1 /* requests go to HTTP/1.1 upstreams (an HTTP/1.1 port) */

/*
 * Opens a session for one tunnel. <routes> (see wp_h2p_sess_set_routes()),
 * <src> (client address, for hashing; may be NULL) and <authority> (used
 * when a request has neither :authority nor host) must outlive the
 * session. <flags>: WP_H2P_SESS_*. The server preface (SETTINGS) is
 * queued at once. NULL when every session is in use (counted).
 */
struct wp_h2p_sess *wp_h2p_sess_open(struct wp_h2p_core *c, const struct wp_route_table *routes,
                                     const struct wp_addr *src, const char *authority,
                                     size_t authority_len, uint32_t flags);

/* As wp_h1p_sess_set_routes(): read only while a request head is routed
 * (and for connect/refused retries); NULL: requests get 500. */
void wp_h2p_sess_set_routes(struct wp_h2p_sess *s, const struct wp_route_table *routes);

/* As wp_h1p_sess_set_conn(): requests are normalized and authorized with
 * it (denied: 403 "RBAC: access denied", gRPC: grpc-status 7). */
void wp_h2p_sess_set_conn(struct wp_h2p_sess *s, struct wp_pipe_conn *conn);

void wp_h2p_sess_set_app(struct wp_h2p_sess *s, void *app);
void *wp_h2p_sess_app(const struct wp_h2p_sess *s);

/* Ends the session: its streams' upstream streams are cancelled, objects
 * recycled. */
void wp_h2p_sess_close(struct wp_h2p_sess *s);

/* Shutting down: GOAWAY to the client; the session finishes once its
 * streams are done. */
void wp_h2p_sess_drain(struct wp_h2p_sess *s);

/* Downstream bytes in. Returns how many were taken (all, unless the
 * session already failed: then none matter and it finishes). */
size_t wp_h2p_down_in(struct wp_h2p_sess *s, const uint8_t *data, size_t len);

/* The client half-closed: finish the streams in flight, then finish. */
void wp_h2p_down_eof(struct wp_h2p_sess *s);

/* Bytes to send to the client: sets *p, returns the length (valid until
 * the next peek; consume what was sent). */
size_t wp_h2p_down_peek(struct wp_h2p_sess *s, const uint8_t **p);
void wp_h2p_down_consume(struct wp_h2p_sess *s, size_t n);

/* True once the client connection should be closed (after draining). */
bool wp_h2p_down_finished(struct wp_h2p_sess *s);

/* Streams in flight on the session. */
uint32_t wp_h2p_sess_streams(const struct wp_h2p_sess *s);

/* The transport of <up> is connected: its queued frames may flow. */
void wp_h2p_up_connected(struct wp_h2p_up *up);

/* The transport of <up> failed or closed (the host already dropped it):
 * its streams are retried (connect failure), answered 503 or reset. */
void wp_h2p_up_failed(struct wp_h2p_up *up);

/* The upstream closed its side: same as wp_h2p_up_failed() except that the
 * proxy asks the host to close the transport (ops->up_close). */
void wp_h2p_up_eof(struct wp_h2p_up *up);

/* Upstream bytes in. Returns how many were taken: all for an h2c
 * connection (or one the proxy let go of); an HTTP/1.1 connection may take
 * fewer (its stream's response ring is full): the host keeps the rest and
 * offers it again after ops->wake_up. */
size_t wp_h2p_up_in(struct wp_h2p_up *up, const uint8_t *data, size_t len);

/* Bytes to send to the upstream (nothing while connecting). */
size_t wp_h2p_up_peek(struct wp_h2p_up *up, const uint8_t **p);
void wp_h2p_up_consume(struct wp_h2p_up *up, size_t n);

/* True when <data> starts with (a prefix of, when <len> is short) the
 * HTTP/2 client connection preface. */
bool wp_h2p_is_preface(const uint8_t *data, size_t len);

#endif /* WP_DP_L7_H2PROXY_H */
