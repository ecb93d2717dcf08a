/*
 * The request pipeline: the stages every request passes through, whichever
 * path carries it — an HTTP/1.1 proxy session (dp/l7/h1proxy.c), an h2c /
 * gRPC stream (dp/l7/h2proxy.c) or an opaque TCP tunnel (dp/tunnel):
 *
 *   normalize -> route -> authorize -> balance -> upstream
 *
 * The stages that are policy live here, once, for the three paths:
 *   - normalize: the request path as Envoy normalizes it by default
 *     (wp/path_norm.h): what routes, what authorization matches and
 *     what goes upstream; a path Envoy refuses is a 400;
 *   - authorize: Istio AuthorizationPolicy (wp/authz.h) on the request,
 *     with the peer identity and addresses of its HBONE CONNECT; an opaque
 *     TCP tunnel is decided once, at CONNECT.
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

#include "wp/path_norm.h"
#include "wp/route.h"
#include "wp/addr_types.h"
#include "wp/authz.h"
#include "wp/common.h"

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

/* A worker's pipeline state. */
struct wp_pipe_core {
	struct wp_authz_scratch az;
	uint64_t *ctr; /* the worker's counters (wp/counters.h), not owned */
	char norm[WP_PATH_NORM_MAX(WP_PIPE_TARGET_MAX)];
	char hjoin[4096]; /* a header's fields joined with "," for a decision */
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

#endif /* WP_DP_L7_PIPELINE_H */
