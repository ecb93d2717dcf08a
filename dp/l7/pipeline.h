/*
 * The request pipeline: the stages every request passes through, whichever
 * path carries it — an HTTP/1.1 proxy session (dp/l7/h1proxy.c), an h2c /
 * gRPC stream (dp/l7/h2proxy.c) or an opaque TCP tunnel (dp/tunnel):
 *
 *   normalize -> route -> authorize -> fault -> balance -> upstream -> complete
 *
 * The stages that are policy live here, once, for the three paths:
 *   - normalize: the request path as Envoy normalizes it by default
 *     (wp/path_norm.h): what routes, what authorization matches and
 *     what goes upstream; a path Envoy refuses is a 400;
 *   - authorize: Istio AuthorizationPolicy (wp/authz.h) on the request,
 *     with the peer identity and addresses of its HBONE CONNECT; an opaque
 *     TCP tunnel is decided once, at CONNECT.
 *   - fault (fault.h): VirtualService fault injection, a delay then an
 *     abort drawn per request from the rule's shares;
 *   - complete (pipeline_obs.c): Istio's standard metrics, recorded once
 *     per HTTP exchange (istio_requests_total and its histograms) and per
 *     opaque TCP tunnel (istio_tcp_*), from the request's record (struct
 *     wp_pipe_rec) and the connection's label ids; with tracing on, the
 *     request's span (pipeline_trace.c), whose sampling was decided and
 *     whose trace headers were written when the head arrived.
 * Route and balance are wp/route.h and lb.h, called by the proxies.
 *
 * A struct wp_pipe_conn is what the pipeline knows of one downstream
 * connection (one CONNECT stream): the tunnel fills it when it accepts the
 * CONNECT and refreshes the policy table when the snapshot changes; the
 * proxy sessions read it for each request. A struct wp_pipe_core is a
 * worker's state (authorization scratch, counters); nothing here allocates
 * on the request path.
 */
#ifndef WP_DP_L7_PIPELINE_H
#define WP_DP_L7_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "wp/path_norm.h"
#include "wp/route.h"
#include "wp/addr_types.h"
#include "wp/authz.h"
#include "wp/accesslog.h"
#include "wp/common.h"
#include "wp/metrics.h"
#include "wp/snapshot_types.h"
#include "wp/tracing.h"
#include "tracectx.h"

struct wp_http1_msg;
struct wp_snap_endpoint;
struct wp_snap_service;
struct wp_snap_workload;

/* What a denied HTTP request gets (Envoy's RBAC filter): 403 with this
 * text/plain body; a gRPC request: grpc-status 7 with it as the message. */
#define WP_PIPE_DENIED_STATUS   403
#define WP_PIPE_DENIED_BODY     "RBAC: access denied"
#define WP_PIPE_DENIED_BODY_LEN (sizeof(WP_PIPE_DENIED_BODY) - 1)
/* What a denied opaque TCP CONNECT gets (as ztunnel answers its own). */
#define WP_PIPE_DENIED_CONNECT 401

/* Longest request-target the normalizer rewrites (longer ones are refused:
 * the request head limit is smaller). */
#define WP_PIPE_TARGET_MAX 16384

/* Response flags (Envoy's %RESPONSE_FLAGS% short names), one bit each, in
 * the order Envoy writes them (joined with ","; "-" when none). An
 * AuthorizationPolicy denial sets none: Envoy's RBAC filter answers 403
 * without a flag. */
#define WP_PIPE_FLAGS(X)                                                                           \
	X(UH, "UH")   /* no healthy upstream: the cluster has no endpoint */                       \
	X(UT, "UT")   /* upstream request timeout (HTTPRoute timeouts): 504 */                     \
	X(UR, "UR")   /* upstream remote reset (its stream was reset) */                           \
	X(UF, "UF")   /* upstream connection failure */                                            \
	X(UC, "UC")   /* upstream connection termination */                                        \
	X(UO, "UO")   /* upstream overflow: a connection-pool limit (503, dp/l7/cbreak.h) */       \
	X(NR, "NR")   /* no route: 404 */                                                          \
	X(DI, "DI")   /* the request was delayed by fault injection (fault.h) */                   \
	X(FI, "FI")   /* the request was aborted by fault injection (fault.h) */                   \
	X(DC, "DC")   /* downstream connection termination */                                      \
	X(URX, "URX") /* retries exhausted (the last try's failure answered, dp/l7/retry.h) */     \
	X(DPE, "DPE") /* downstream protocol error (malformed request) */                          \
	X(UPE, "UPE") /* upstream protocol error (malformed response) */                           \
	X(NC, "NC")   /* no cluster: the rule's backend does not exist (500) */                    \
	X(DR, "DR")   /* downstream remote reset (an h2 stream reset by the client) */

enum wp_pipe_flag_bit {
#define WP_PIPE_FLAG_BIT(id, s) WP_PIPE_FB_##id,
	WP_PIPE_FLAGS(WP_PIPE_FLAG_BIT)
#undef WP_PIPE_FLAG_BIT
	        WP_PIPE_FB_MAX
};

#define WP_PIPE_F(id) ((uint16_t)(1u << WP_PIPE_FB_##id))

/* The destination labels an endpoint gives: workload namespace, principal,
 * workload, app, version, canonical service and revision. */
#define WP_PIPE_EP_IDS 7
/* the labels a request sets over its connection's: the service (3), the
 * endpoint (WP_PIPE_EP_IDS), protocol, code, gRPC status and flags */
#define WP_PIPE_SERIES_KEY (3 + WP_PIPE_EP_IDS + 4)

/* A request's tracing state (pipeline_trace.c), decided with its head. */
struct wp_pipe_trace {
	uint8_t trace_id[16], span_id[8], parent_id[8];
	bool span;       /* sampled: a span is made when the exchange ends */
	bool headers;    /* the upstream request gets trace headers */
	bool sampled;    /* the decision the headers carry */
	bool has_parent; /* a trace context came: parent_id is its span */
	bool b3_64;      /* B3 headers keep a 64-bit trace id */
	uint8_t formats; /* WP_TC_* written upstream */
};

/* What the completion stage knows of one HTTP exchange, kept by the proxy
 * in its session / stream (no allocation). Destination ids are taken when
 * the endpoint is picked, while the snapshot's pointers are certainly
 * valid; the record never holds a snapshot pointer. */
struct wp_pipe_rec {
	uint64_t start_us;
	uint64_t req_bytes, resp_bytes; /* received from / sent to the client */
	uint32_t svc[4]; /* destination_service, _name, _namespace, cluster name (has_svc) */
	uint32_t ep[WP_PIPE_EP_IDS]; /* the endpoint's labels (pipeline_obs.c dest_ids) */
	struct wp_addr up_addr;      /* the endpoint picked (has_ep), for the access log */
	uint16_t up_port;
	uint16_t status; /* response_code; 0: no response */
	uint16_t flags;  /* WP_PIPE_F() */
	int16_t grpc;    /* grpc-status sent; -1: none seen */
	bool is_grpc;    /* request_protocol grpc (content-type application/grpc*) */
	bool active;     /* begun, not yet recorded */
	bool has_svc, has_ep;
	struct wp_pipe_trace tr;
};

#define WP_PIPE_EP_CACHE  64 /* endpoint -> label ids, per core */
#define WP_PIPE_SVC_CACHE 16 /* route cluster -> label ids, per core */
#define WP_PIPE_MAX_CODE  1000

/* A worker's pipeline state. */
struct wp_pipe_core {
	struct wp_authz_scratch az;
	uint64_t *ctr; /* the worker's counters (wp/counters.h), not owned */
	char norm[WP_PATH_NORM_MAX(WP_PIPE_TARGET_MAX)];
	char hjoin[4096]; /* a header's fields joined with "," for a decision */
	/* completion stage (pipeline_obs.c); NULL metrics: nothing recorded
	 * nor logged. record: Istio's metrics are recorded (metrics.enabled);
	 * without, the cells only intern the access log's strings. */
	struct wp_metrics_core *metrics;
	bool record;
	char td[256];         /* trust domain, for destination principals */
	uint32_t id_cluster;  /* destination_cluster: this waypoint's cluster */
	char domain[64];      /* cluster domain, for backend hostnames */
	uint64_t now_us;      /* the host's loop clock (wp_pipe_core_clock) */
	uint64_t gen;         /* snapshot generation the caches below hold */
	uint32_t id_proto[3]; /* "http", "grpc", "tcp" */
	uint32_t id_mtls, id_none, id_latest, id_dash;
	uint32_t code_id[WP_PIPE_MAX_CODE]; /* response_code: id + 1, 0 = not interned */
	uint32_t grpc_id[17];               /* grpc_response_status 0..16: id + 1 */
	uint32_t flags_id[1u << WP_PIPE_FB_MAX];
	struct {
		const void *key;
		uint64_t gen;
		uint32_t id[WP_PIPE_EP_IDS];
	} ep_cache[WP_PIPE_EP_CACHE], svc_cache[WP_PIPE_SVC_CACHE];
	/* the access log: this core's ring to the writer thread, NULL: off;
	 * whether a connection logs, by its Telemetry's access_log (enum
	 * wp_tel_switch; UNSET: the configuration's access_log.file) */
	struct wp_alog_ring *alog;
	bool alog_on[4];
	int64_t wall_off_us; /* wall clock minus now_us */
	/* tracing: this core's span ring (NULL: off), the configured sampling
	 * (ppm), the format a new trace is propagated in, the id generator */
	struct wp_span_ring *trace;
	uint32_t trace_ppm;
	uint8_t trace_fmt;
	uint64_t trace_rng;
};

/* What the access log takes from a request besides its record: slices of
 * the proxy's request head, valid for the wp_pipe_rec_end() call. */
struct wp_pipe_log_view {
	const char *method, *path, *authority, *user_agent, *request_id, *xff;
	uint32_t method_len, path_len, authority_len, user_agent_len, request_id_len, xff_len;
	uint8_t proto; /* enum wp_alog_proto */
};

/* One downstream connection (an HBONE CONNECT stream). Host-owned. */
struct wp_pipe_conn {
	struct wp_pipe_core *core;
	/* the destination's AuthorizationPolicies in the current snapshot;
	 * NULL: none applies. authz_ready: the core's scratch serves it. */
	const struct wp_authz_table *authz;
	bool authz_ready;
	const char *principal; /* the peer's SPIFFE ID without spiffe://; NULL: none */
	uint32_t principal_len;
	struct wp_addr peer;   /* the HBONE peer (source.ip, ipBlocks) */
	struct wp_addr remote; /* the original client (Forwarded for=, else peer) */
	struct wp_addr dst;    /* the CONNECT target (destination.ip) */
	uint16_t dst_port;     /* its port (destination.port, ports) */
	const char *authority; /* the CONNECT authority, Host of requests without one */
	uint32_t authority_len;
	/* the Telemetry resources in force for the destination's waypoint
	 * (a copy of the snapshot's, refreshed with the policy table) */
	struct wp_snap_telemetry tel;
	/* completion stage: the connection's labels (source side from its
	 * identity and baggage, the CONNECT's destination), interned once
	 * (wp_pipe_conn_labels); the opaque TCP series once opened */
	struct wp_metrics_labels ml;
	bool ml_ready;
	/* the HTTP series of this connection's last recorded request and the
	 * per-request labels that chose it (pipeline_obs.c series_key): the
	 * next request with the same ones skips building, hashing and
	 * looking up its label set */
	bool last_valid;
	uint32_t last_series;
	uint32_t last_key[WP_PIPE_SERIES_KEY];
	bool tcp_open;
	uint32_t tcp_series;
	/* opaque TCP, for its access-log line: the endpoint and cluster (ids
	 * of the core's strings), when it opened, bytes both ways */
	bool tcp_has_up;
	struct wp_addr tcp_up;
	uint16_t tcp_up_port;
	uint32_t tcp_cluster;
	uint64_t tcp_start_us, tcp_sent, tcp_received;
};

void wp_pipe_core_init(struct wp_pipe_core *pc, uint64_t *ctr);
void wp_pipe_core_fini(struct wp_pipe_core *pc);

/* Sets the connection's policy table (a new snapshot) and makes the core's
 * scratch serve it. If that cannot be done (out of memory), every request
 * of the connection is denied until a later call succeeds (counted). */
void wp_pipe_conn_set_authz(struct wp_pipe_conn *c, const struct wp_authz_table *t);

/*
 * normalize: rewrites r->target / target_len / path_len to the normalized
 * request-target (pointing into the core's buffer when it changed; valid
 * until the next call on this core). Targets that are not origin-form
 * (CONNECT authority, OPTIONS *) are left as they are. Returns 0, or
 * -EINVAL when Envoy would refuse the path (answer 400; counted).
 */
int wp_pipe_normalize(struct wp_pipe_core *pc, struct wp_route_req *r);

/*
 * authorize: decides one request of connection <c>. <r> is the HTTP request
 * (normalized; its method name is <method>), or NULL for an opaque TCP
 * stream. Fills *d, counts the decision, returns d->allowed. A NULL <c>
 * (a host without HBONE, as in tests) has no policy: allowed.
 */
bool wp_pipe_authorize(const struct wp_pipe_conn *c, const struct wp_route_req *r,
                       const char *method, size_t method_len, struct wp_authz_decision *d);

/* ---- the completion stage (pipeline_obs.c) ------------------------------------------------ */

/* Records into <m> (the worker's Istio cells; NULL: nothing is recorded)
 * with <trust_domain> for destination principals, <cluster_domain> for
 * backend hostnames and <cluster_id> as destination_cluster (NULL or "":
 * unknown). Interns the fixed values; call once at start. Sets pc->record;
 * a host that serves no metrics (metrics.enabled false) clears it, and
 * then a request costs nothing here unless the access log is on. */
void wp_pipe_core_set_metrics(struct wp_pipe_core *pc, struct wp_metrics_core *m,
                              const char *trust_domain, const char *cluster_domain,
                              const char *cluster_id);

/* The host's clock for request durations (µs, monotonic; taken once per
 * loop: a duration is as precise as a loop is short) and the generation of
 * the snapshot it reads (a new one empties the label caches). */
static inline void wp_pipe_core_clock(struct wp_pipe_core *pc, uint64_t now_us, uint64_t gen)
{
	pc->now_us = now_us;
	pc->gen = gen;
}

/*
 * Interns the connection's label set once, at CONNECT: the source side
 * from its principal (source_principal spiffe://..., the namespace in it)
 * and the CONNECT's `baggage` as ztunnel writes it (k8s.<kind>.name,
 * k8s.namespace.name, k8s.cluster.name, service.name, service.version,
 * app.name, app.version), the destination from <svc> (a Service) or <wl>
 * (a workload address), connection_security_policy. No-op without cells.
 */
void wp_pipe_conn_labels(struct wp_pipe_conn *c, const char *baggage, size_t baggage_len,
                         const struct wp_snap_service *svc, const struct wp_snap_workload *wl);

/* A request head arrived: starts its record (now, no bytes, no answer). */
void wp_pipe_rec_begin(const struct wp_pipe_conn *c, struct wp_pipe_rec *r, bool is_grpc);

/* The request goes to endpoint <ep> of backend <cl> (either may be NULL):
 * the destination labels, from the per-core caches. */
void wp_pipe_rec_dest(const struct wp_pipe_conn *c, struct wp_pipe_rec *r,
                      const struct wp_route_cluster *cl, const struct wp_snap_endpoint *ep);

/* The exchange is over (answered, reset or abandoned): records it once
 * (istio_requests_total and the three histograms; with the access log on,
 * one line from <v> and the record) and ends the record. A record not
 * begun, or a NULL <c>, records nothing. */
void wp_pipe_rec_end(struct wp_pipe_conn *c, struct wp_pipe_rec *r,
                     const struct wp_pipe_log_view *v);

/* The access log's view of an HTTP/1.x request head <m> (its slices stay
 * the parser's): Host, else <authority>; x-request-id, else <reqid> (the
 * WP_HTTP1_REQID_LEN bytes the proxy generated; NULL: none). */
void wp_pipe_view_http1(struct wp_pipe_log_view *v, const struct wp_http1_msg *m,
                        const char *authority, size_t authority_len, const char *reqid);

/* Gives this core its access-log ring <ring> (NULL: no access log at
 * all), whether the configuration turns the log on (<by_config>: the
 * connections no Telemetry decides for), and the wall clock's offset from
 * the loop clock (µs). */
static inline void wp_pipe_core_set_alog(struct wp_pipe_core *pc, struct wp_alog_ring *ring,
                                         bool by_config, int64_t wall_off_us)
{
	pc->alog = ring;
	pc->alog_on[WP_TEL_UNSET] = ring && by_config;
	pc->alog_on[WP_TEL_OFF] = false;
	pc->alog_on[WP_TEL_ON] = ring != NULL;
	pc->alog_on[3] = false;
	pc->wall_off_us = wall_off_us;
}

/* Whether connection <c> logs: its waypoint's Telemetry turns the access
 * log on, or leaves it to the configuration that does (the proxies build
 * a view only then). One load and one branch on the request path. */
static inline bool wp_pipe_logs(const struct wp_pipe_conn *c)
{
	return c && c->core && c->core->alog_on[c->tel.access_log & 3];
}

/* ---- tracing (pipeline_trace.c) ------------------------------------------------------------ */

/* Turns tracing on for this core: spans into <ring> (NULL: off), <ppm>
 * the configured sampling, <protocol> (enum wp_trace_protocol) choosing
 * the headers of a new trace (OTLP: traceparent; Zipkin: x-b3-*, as
 * Envoy's tracers write them), <seed> for trace and span ids. */
void wp_pipe_core_set_trace(struct wp_pipe_core *pc, struct wp_span_ring *ring, uint32_t ppm,
                            uint8_t protocol, uint64_t seed);

/* Whether requests of <c> are traced: a ring, and no Telemetry resource
 * turning tracing off (one turning it on needs the configured collector). */
static inline bool wp_pipe_traces(const struct wp_pipe_conn *c)
{
	return c && c->core && c->core->trace && c->tel.tracing != WP_TEL_OFF;
}

/*
 * Decides a begun request's tracing from the context it carried (<in>,
 * offered its headers; finished here, malformed headers counted): a
 * sampled flag that came wins, else the Telemetry resource's sampling,
 * else the configuration's. Sampled: a span in the incoming trace (or a
 * new one), headers upstream naming it as parent. Not sampled and no
 * context: a new trace id propagated with the decision "not sampled", as
 * Envoy does; not sampled with a context: headers untouched.
 */
void wp_pipe_trace_begin(const struct wp_pipe_conn *c, struct wp_pipe_rec *r,
                         struct wp_tracectx *in);

/* wp_pipe_trace_begin() from an HTTP/1.x request head. No-op when <c> is
 * not traced. */
void wp_pipe_trace_http1(const struct wp_pipe_conn *c, struct wp_pipe_rec *r,
                         const struct wp_http1_msg *m);

/* The same from an h2 request header block (<n> fields of <nv>). */
void wp_pipe_trace_h2(const struct wp_pipe_conn *c, struct wp_pipe_rec *r, const nghttp2_nv *nv,
                      size_t n);

/* The trace headers of the upstream request, written into <o>, as header
 * hooks (set / remove); NULL when it gets none. */
static inline const struct wp_http_hdr_mods *wp_pipe_trace_headers(const struct wp_pipe_rec *r,
                                                                   struct wp_tc_out *o)
{
	const struct wp_pipe_trace *t = &r->tr;

	if (!t->headers)
		return NULL;
	return wp_tc_render(t->formats, t->trace_id, t->span_id,
	                    t->has_parent ? t->parent_id : NULL, t->b3_64, t->sampled, o);
}

/* Whether the completion stage needs a view of the request head (the
 * access log, or a span). */
static inline bool wp_pipe_wants_view(const struct wp_pipe_conn *c, const struct wp_pipe_rec *r)
{
	return wp_pipe_logs(c) || r->tr.span;
}

/* The span of a completed request into the core's ring (full: dropped,
 * counted). Called by wp_pipe_rec_end(). */
void wp_pipe_trace_span(const struct wp_pipe_conn *c, const struct wp_pipe_rec *r,
                        const struct wp_pipe_log_view *v, uint32_t flags_id, uint64_t dur_us);

/*
 * The text of a local answer, one table for both proxies: what Envoy
 * writes for the same cause (its body over HTTP, its grpc-message for a
 * gRPC request), by the response flags first: "no healthy upstream" (UH),
 * "upstream request timeout" (UT), "upstream connect error or
 * disconnect/reset before headers. [retried and the latest ]reset reason:
 * connection failure | connection termination | remote reset | overflow"
 * (UF, UC, UR, UO; "retried ..." with URX), "fault filter abort" (FI), ""
 * (NR: Envoy's 404 has no body), then "RBAC: access denied" for 403.
 * NULL where Envoy has no text of its own for the cause (a malformed
 * request, a header block too large): the proxy writes its own.
 */
const char *wp_pipe_local_text(uint16_t status, uint16_t flags);

/* Envoy's mapping of an HTTP status to a gRPC status, for a gRPC request
 * answered without grpc-status (Grpc::Utility::httpToGrpcStatus). */
uint32_t wp_pipe_http_to_grpc(uint16_t status);

/* Opaque TCP: the tunnel goes to endpoint <ep> of <cl> (destination
 * namespace and principal, and for the access log the endpoint and cluster
 * name; a workload address has its labels from wp_pipe_conn_labels). Call
 * while they are valid (the snapshot's). */
void wp_pipe_tcp_dest(struct wp_pipe_conn *c, const struct wp_route_cluster *cl,
                      const struct wp_snap_endpoint *ep);

/* Opaque TCP: the tunnel carries bytes from now on: one connection opened
 * in its series (istio_tcp_connections_opened_total). */
void wp_pipe_tcp_open(struct wp_pipe_conn *c);

/* Bytes sent to / received from the client of an opened tunnel. */
static inline void wp_pipe_tcp_bytes(struct wp_pipe_conn *c, uint64_t sent, uint64_t received)
{
	if (!c->tcp_open)
		return;
	if (c->core->record)
		wp_metrics_tcp_add(c->core->metrics, c->tcp_series, 0, 0, sent, received);
	c->tcp_sent += sent;
	c->tcp_received += received;
}

/* The tunnel ended: one connection closed (and, with the access log on,
 * its line: method, path and protocol "-", as Envoy logs TCP). Idempotent. */
void wp_pipe_tcp_close(struct wp_pipe_conn *c);

#endif /* WP_DP_L7_PIPELINE_H */
