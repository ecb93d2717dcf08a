/*
 * Compiled L7 routing policy for one captured service port: the HTTPRoutes
 * whose parentRefs name the Service (Gateway API mesh semantics), or else
 * the Istio VirtualServices whose hosts name it, and the
 * DestinationRules of every service the routes send to, compiled by the
 * control plane (cp/resolve/route_compile.c) into an immutable
 * struct wp_route_table that hangs off the snapshot's service port
 * (wp_snap_svc_port.routes).
 *
 * A table holds
 *   matches   every (route, rule, match) flattened and sorted by Gateway API
 *             precedence (exact path > longest prefix > regex (longest
 *             pattern first, as Istio does) > method > most headers > most
 *             query params > oldest route > ns/name > rule order > match
 *             order), so the first hit is the answer: O(matches);
 *   rules     the action of each accepted rule: header modifiers, URL
 *             rewrite or redirect, mirrors, weighted backends, timeouts and
 *             retry policy;
 *   clusters  one per (service, port, subset) the rules or the default
 *             route reach, each with its endpoints and a wp_lb_table built
 *             from the DestinationRule (policy, hash key, subsets by labels);
 *   regexes   Hyperscan databases built ahead of time, one per request
 *             field (the path, one header name, one query name) so a
 *             request scans each field once; per-core scratch.
 * With no route attached, the table has no matches and every request takes
 * the default cluster: the destination service itself.
 *
 * Data plane (per request, no allocation, no locks):
 *   struct wp_route_req        describe the request head (from HTTP/1.1:
 *                              wp_route_req_init_http1() in dp/l7/h1proxy.h)
 *   wp_route_select()          choose match, rule, backend cluster, mirrors
 *   wp_route_cluster_hash()    consistent-hash key for wp_lb_pick()
 *   wp_route_rewrite_target()  URLRewrite path -> new request-target
 *   wp_route_write_redirect()  RequestRedirect -> full response head
 * and rule->req_mods / rule->resp_mods go straight to the http1 writers.
 * The matcher and the table's destructor are in lib/route.c (with the
 * control plane's builder, cp/resolve/route_compile.c, they are the whole
 * table: the data plane links lib/, never cp/).
 */
#ifndef WP_ROUTE_H
#define WP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wp/addr_types.h"
#include "wp/arena.h"
#include "wp/common.h"
#include "wp/http_hdr.h"
#include "wp/lb.h"

struct wp_snap_endpoint;
struct hs_database;
struct hs_scratch;

enum wp_route_path_type {
	WP_ROUTE_PATH_PREFIX = 0, /* segment-aware; "/" matches everything */
	WP_ROUTE_PATH_EXACT,
	WP_ROUTE_PATH_REGEX,
};

enum wp_route_str_type {
	WP_ROUTE_STR_EXACT = 0,
	WP_ROUTE_STR_REGEX,
};

/* A header or query-parameter condition. Header names are lower-case and
 * compared case-insensitively; query names are compared exactly. */
struct wp_route_kv {
	const char *name;
	const char *value; /* EXACT: the value; REGEX: the pattern (for dumps) */
	uint32_t value_len;
	uint16_t name_len;
	uint8_t type;   /* enum wp_route_str_type */
	uint16_t field; /* REGEX: index into wp_route_table.fields */
	uint32_t re;    /* REGEX: regex id (bit in the per-request match set) */
};

/* One match of one rule (the rule matches if any of its matches does). */
struct wp_route_match {
	uint8_t path_type; /* enum wp_route_path_type */
	bool has_method;
	uint8_t method; /* enum llhttp_method */
	const char *path;
	uint32_t path_len;   /* PREFIX: without trailing '/' ("/" becomes "") */
	uint32_t path_re;    /* REGEX: regex id */
	uint16_t path_field; /* REGEX: index into wp_route_table.fields */
	uint16_t n_headers;
	uint16_t n_query;
	const struct wp_route_kv *headers;
	const struct wp_route_kv *query;
	uint32_t rule; /* index into wp_route_table.rules */
};

/* A weighted backendRef. cluster == UINT32_MAX: the ref did not resolve
 * (unknown kind, missing Service or port); requests that draw it get 500. */
struct wp_route_backend {
	uint32_t cluster;
	uint32_t weight;
};

struct wp_route_mirror {
	uint32_t cluster;
	uint32_t per_million; /* share of requests mirrored, 0..1000000 */
};

enum wp_route_rewrite_path {
	WP_ROUTE_REWRITE_NONE = 0,
	WP_ROUTE_REWRITE_FULL,   /* ReplaceFullPath */
	WP_ROUTE_REWRITE_PREFIX, /* ReplacePrefixMatch (the rule's matches are prefixes) */
};

/* URLRewrite (rewrite.*) or RequestRedirect (redirect.*) path part. */
struct wp_route_path_mod {
	uint8_t type; /* enum wp_route_rewrite_path */
	const char *value;
	uint32_t value_len;
};

struct wp_route_redirect {
	const char *scheme;   /* NULL: the request's ("http") */
	const char *hostname; /* NULL: the request's Host without port */
	uint16_t port;        /* 0: see wp_route_write_redirect() */
	uint16_t status;      /* 301, 302 (default), 303, 307, 308 */
	struct wp_route_path_mod path;
};

/* Retry policy (HTTPRoute rule `retry`, VirtualService `retries`, else
 * Istio's default: 2 retries on connect-failure, refused-stream,
 * unavailable, cancelled and 503). The bits are Envoy's retryOn conditions
 * (dp/l7/retry.h decides with them); codes[] are the retriable status codes
 * (Envoy's retriable-status-codes: in effect when the list is not empty, as
 * istiod adds the condition whenever it moves codes into the list). */
#define WP_ROUTE_RETRY_CONNECT_FAILURE 0x1
#define WP_ROUTE_RETRY_REFUSED_STREAM  0x2
#define WP_ROUTE_RETRY_UNAVAILABLE     0x4   /* gRPC status 14 */
#define WP_ROUTE_RETRY_CANCELLED       0x8   /* gRPC status 1 */
#define WP_ROUTE_RETRY_5XX             0x10  /* any 5xx, a reset, a per-try timeout */
#define WP_ROUTE_RETRY_GATEWAY_ERROR   0x20  /* 502/503/504, a reset, a per-try timeout */
#define WP_ROUTE_RETRY_RESET           0x40  /* no response: reset, close, per-try timeout */
#define WP_ROUTE_RETRY_RETRIABLE_4XX   0x80  /* 409 */
#define WP_ROUTE_RETRY_DEADLINE        0x100 /* gRPC status 4 (deadline-exceeded) */
#define WP_ROUTE_RETRY_INTERNAL        0x200 /* gRPC status 13 */
#define WP_ROUTE_RETRY_RES_EXHAUSTED   0x400 /* gRPC status 8 (resource-exhausted) */
#define WP_ROUTE_RETRY_MAX_CODES       8

struct wp_route_retry {
	uint16_t attempts;   /* retries after the first try */
	uint16_t on;         /* WP_ROUTE_RETRY_* */
	uint32_t backoff_ms; /* base interval (0: Envoy's 25 ms) */
	uint16_t n_codes;
	uint16_t codes[WP_ROUTE_RETRY_MAX_CODES]; /* retriable HTTP statuses */
};

/* VirtualService `fault` (HTTPFaultInjection) as istiod gives it to Envoy's
 * fault filter: a fixed delay on one share of the requests, then an abort on
 * another, drawn independently per request (dp/l7/fault.h). All zero: none. */
struct wp_route_fault {
	uint32_t delay_ms;     /* fixedDelay */
	uint32_t delay_ppm;    /* share delayed, per million (0: never) */
	uint32_t abort_ppm;    /* share aborted, per million (0: never) */
	uint16_t abort_status; /* httpStatus 200..599; 0: a grpcStatus abort */
	uint8_t abort_grpc;    /* grpcStatus as its code 0..16 (abort_status 0) */
	bool delay, abort;     /* configured (even with a share of 0) */
};

/* wp_route_rule.flags */
#define WP_ROUTE_F_REWRITE  0x1 /* URLRewrite present (host is in req_mods.set) */
#define WP_ROUTE_F_REDIRECT 0x2 /* RequestRedirect: answer, never forward */
#define WP_ROUTE_F_DEFAULT  0x4 /* the synthesised rule "to the service itself" */
#define WP_ROUTE_F_VS       0x8 /* from a VirtualService http rule (route_* names it) */

struct wp_route_rule {
	const char *route_ns; /* the HTTPRoute or VirtualService ("" for the default rule) */
	const char *route_name;
	uint32_t index; /* rule index within the HTTPRoute (rules) or VirtualService (http) */
	uint32_t flags; /* WP_ROUTE_F_* */
	/* RequestHeaderModifier (+ URLRewrite hostname as a `set host`), and
	 * ResponseHeaderModifier: hand straight to the http1 writers. */
	struct wp_http_hdr_mods req_mods;
	struct wp_http_hdr_mods resp_mods;
	struct wp_route_path_mod rewrite;
	struct wp_route_redirect redirect;
	uint16_t n_mirrors;
	uint16_t n_backends;
	const struct wp_route_mirror *mirrors;
	const struct wp_route_backend *backends;
	uint64_t total_weight;       /* 0: every request gets 500 */
	uint32_t request_timeout_ms; /* 0 = none (Istio's default) */
	uint32_t backend_timeout_ms; /* 0 = none */
	struct wp_route_retry retry;
	struct wp_route_fault fault;
};

enum wp_route_hash_key {
	WP_ROUTE_HASH_NONE = 0,
	WP_ROUTE_HASH_HEADER,
	WP_ROUTE_HASH_COOKIE,
	WP_ROUTE_HASH_SOURCE_IP,
	WP_ROUTE_HASH_QUERY,
};

/* DestinationRule trafficPolicy.connectionPool of a cluster (Envoy's circuit
 * breakers and connection pool settings), Istio's defaults where a field is
 * absent. Limits are for the whole appliance; dp/l7/cbreak.h says how the
 * workers share them. */
#define WP_ROUTE_CPOOL_UNLIMITED     UINT32_MAX /* 2^32-1: Istio's default limits */
#define WP_ROUTE_TCP_IDLE_DEFAULT_MS 3600000u   /* tcp.idleTimeout absent: 1 h, as Istio */
/* tcp.tcpKeepalive's fields left out: the Linux defaults Envoy's sockets get */
#define WP_ROUTE_KEEP_TIME_DEFAULT_MS  7200000u
#define WP_ROUTE_KEEP_INTVL_DEFAULT_MS 75000u
#define WP_ROUTE_KEEP_PROBES_DEFAULT   9u

/* tcp.tcpKeepalive on a cluster's upstream connections: idle time before
 * the first probe (0: no keepalive), between probes, probes. */
struct wp_route_keepalive {
	uint32_t time_ms, intvl_ms;
	uint8_t probes;
};

struct wp_route_cpool {
	uint32_t max_connections;    /* tcp.maxConnections */
	uint32_t max_pending;        /* http.http1MaxPendingRequests */
	uint32_t max_requests;       /* http.http2MaxRequests (requests in flight) */
	uint32_t max_retries;        /* http.maxRetries (retries in flight) */
	uint32_t max_req_per_conn;   /* http.maxRequestsPerConnection, 0: unlimited */
	uint32_t max_streams;        /* http.maxConcurrentStreams per h2 connection, 0: default */
	uint32_t connect_timeout_ms; /* tcp.connectTimeout, 0: the proxy's (Istio: 10 s) */
	uint32_t idle_timeout_ms;    /* http.idleTimeout; 0: the pool's */
	struct wp_route_keepalive keepalive; /* tcp.tcpKeepalive */
	uint32_t tcp_idle_timeout_ms;        /* tcp.idleTimeout: an opaque TCP tunnel with no byte
	                                      * either way for it is closed; 0: never */
};

/* One (service, port, subset): its endpoints and their balancer. */
struct wp_route_cluster {
	const char *name;   /* "outbound|PORT|SUBSET|HOST" as Istio names clusters */
	const char *svc_ns; /* backend Service */
	const char *svc_name;
	const char *subset; /* NULL: the whole service */
	uint16_t port;      /* service port */
	uint8_t hash_key;   /* enum wp_route_hash_key (consistent hashing only) */
	const char *hash_name;
	uint16_t hash_name_len; /* header names lower-case */
	uint32_t n_endpoints;
	const struct wp_snap_endpoint *endpoints; /* lb->eps[i] is endpoints[i] */
	struct wp_lb_table *lb;                   /* never NULL (may have no endpoints) */
	struct wp_route_cpool pool;               /* connection pool limits and timeouts */
};

/* A request field that has regexes: the path, or one header / query name. */
enum wp_route_field_kind {
	WP_ROUTE_FIELD_PATH = 0,
	WP_ROUTE_FIELD_HEADER,
	WP_ROUTE_FIELD_QUERY,
};

struct wp_route_field {
	uint8_t kind; /* enum wp_route_field_kind */
	const char *name;
	uint16_t name_len;
	struct hs_database *db; /* every regex on this field, ids = regex ids */
};

/* What a table's rules come from. */
enum wp_route_source {
	WP_ROUTE_SRC_NONE = 0,       /* only the default rule */
	WP_ROUTE_SRC_HTTPROUTE,      /* matches in Gateway API precedence */
	WP_ROUTE_SRC_VIRTUALSERVICE, /* matches in the VirtualServices' order */
};

/* The compiled table. Immutable once built; owned by its service block. */
struct wp_route_table {
	uint8_t source; /* enum wp_route_source */
	uint32_t n_matches;
	uint32_t n_rules; /* rules[n_rules - 1] is the default rule */
	uint32_t n_clusters;
	uint32_t default_cluster; /* the destination service itself */
	const struct wp_route_match *matches;
	const struct wp_route_rule *rules;
	const struct wp_route_cluster *clusters;
	uint16_t n_fields;
	uint32_t n_regex; /* ids 0..n_regex-1; at most WP_ROUTE_MAX_REGEX */
	const struct wp_route_field *fields;
	uint32_t n_errors; /* parts rejected while compiling ("ORIGIN:LINE: ...") */
	const char *const *errors;
	/* VirtualServices binding this port set aside because an HTTPRoute binds
	 * it too (HTTPRoute wins), and VirtualService fields compiled without
	 * effect (fault injection, retryOn conditions the table cannot hold);
	 * each is also in errors. */
	uint32_t n_vs_conflicts;
	uint32_t n_vs_not_applied;
	struct wp_arena arena; /* owns everything above except dbs and lb tables */
};

#define WP_ROUTE_MAX_REGEX 1024

/* ---- data plane ----------------------------------------------------------- */

/* The request as the matcher sees it. All pointers are the caller's and
 * must stay valid during the calls that take the struct. */
struct wp_route_req {
	const char *target; /* origin-form request-target: path[?query] */
	uint32_t target_len;
	uint32_t path_len; /* bytes of target before '?' or '#' */
	uint8_t method;    /* enum llhttp_method */
	uint16_t n_hdrs;
	const struct wp_http_hdr *hdrs; /* names lower-case */
	const struct wp_addr *src;      /* source address (consistent hash), may be NULL */
};

/* Per-core matcher state, owned by the worker. */
struct wp_route_core {
	uint64_t rng;               /* xorshift64*, never 0 */
	struct hs_scratch *scratch; /* Hyperscan scratch, grown by wp_route_core_reserve() */
	uint64_t *ctr;              /* per-core counters (wp/counters.h), not owned */
	uint64_t re_hits[WP_ROUTE_MAX_REGEX / 64]; /* per-request regex results */
};

/* Initialises <c> (no scratch yet). <seed> should differ per core. */
void wp_route_core_init(struct wp_route_core *c, uint64_t seed, uint64_t *ctr);

/* Grows the core's Hyperscan scratch for <t>'s databases. Allocates (only
 * when the scratch is too small): call it when a new snapshot is picked up,
 * for each of its tables, not per request. 0 or -ENOMEM. */
int wp_route_core_reserve(struct wp_route_core *c, const struct wp_route_table *t);

/* Frees the scratch. */
void wp_route_core_fini(struct wp_route_core *c);

#define WP_ROUTE_MAX_MIRRORS 4

/* The decision for one request. Points into the table (immutable). */
struct wp_route_decision {
	const struct wp_route_match *match;     /* NULL: the default rule */
	const struct wp_route_rule *rule;       /* never NULL after success */
	const struct wp_route_cluster *cluster; /* NULL: answer <status> */
	uint16_t status;    /* 0 forward to cluster; 3xx redirect; 500 no valid backend */
	uint16_t n_mirrors; /* clusters to copy the request to (sampled) */
	const struct wp_route_cluster *mirrors[WP_ROUTE_MAX_MIRRORS];
};

/*
 * Matches <req> against <t> and fills <d>. O(matches) plus one Hyperscan
 * scan per regex field present in the request; no allocation. Returns 0, or
 * -ENOENT when no rule matches (routes exist but none applies: answer 404,
 * counted). A regex that cannot be evaluated (scratch not reserved) counts as
 * not matching (counted).
 */
int wp_route_select(const struct wp_route_table *t, struct wp_route_core *c,
                    const struct wp_route_req *req, struct wp_route_decision *d) WP_MUST_CHECK;

/* Consistent-hash key of <cl> for <req>: sets *hash and returns true, or
 * false when the cluster does not hash or the key is absent (wp_lb_pick()
 * then falls back to a random pick). */
bool wp_route_cluster_hash(const struct wp_route_cluster *cl, const struct wp_route_req *req,
                           uint64_t *hash);

/* The request-target to send upstream after the rule's URLRewrite path
 * modifier: written into buf (the query is kept). Returns its length, 0 when
 * the target is unchanged (send req->target), or -ENOSPC. */
int wp_route_rewrite_target(const struct wp_route_decision *d, const struct wp_route_req *req,
                            char *buf, size_t cap) WP_MUST_CHECK;

/* For a redirect decision: writes "HTTP/1.1 <status> ...\r\nlocation: ...\r\n
 * content-length: 0\r\n\r\n" into buf. Scheme defaults to http, host to the
 * request's Host (its port kept unless the scheme or port is changed; a
 * configured port is omitted when it is the scheme's well-known port).
 * Returns bytes written, -ENOSPC, or -EINVAL (not a redirect). */
int wp_route_write_redirect(const struct wp_route_decision *d, const struct wp_route_req *req,
                            bool keep_alive, char *buf, size_t cap) WP_MUST_CHECK;

/* ---- control plane -------------------------------------------------------- */

/* Frees a table built by wp_route_table_build() (NULL is fine). */
void wp_route_table_free(struct wp_route_table *t);

#endif /* WP_ROUTE_H */
