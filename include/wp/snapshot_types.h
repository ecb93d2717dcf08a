/*
 * The snapshot: the immutable, versioned view of the cluster that the data
 * plane reads. It holds, for the Gateways this appliance serves, every
 * captured destination (service VIP:port -> service and port protocol; pod
 * IP -> workload), the endpoints of each captured service, and the
 * enrollment of the objects bound to a served Gateway.
 *
 * Workers only read it (through wp_snapshot_get(), see wp/snapshot.h). The
 * control plane builds it, publishes it with an atomic pointer swap, and
 * frees it after the RCU grace period. Service and workload blocks are
 * shared between consecutive snapshots (reference counted by the control
 * plane only), so a small change does not copy the whole cluster.
 */
#ifndef WP_SNAPSHOT_TYPES_H
#define WP_SNAPSHOT_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "wp/addr_types.h"
#include "wp/arena.h"

struct wp_authz_table;
struct wp_route_table;

/* The protocol spoken inside the tunnel, from the Service port's
 * appProtocol, else its name prefix; UNKNOWN means "sniff the first bytes". */
enum wp_app_proto {
	WP_PROTO_UNKNOWN = 0,
	WP_PROTO_HTTP,
	WP_PROTO_HTTP2,
	WP_PROTO_GRPC,
	WP_PROTO_TCP,
	WP_PROTO_TLS,
	WP_PROTO_HTTPS,
};

struct wp_snap_endpoint {
	struct wp_addr addr;
	uint16_t port; /* target port on the workload */
	bool ready;
	const char *ns;              /* the workload's namespace */
	const char *name;            /* the Pod's name, or NULL when unknown */
	const char *service_account; /* for the upstream identity check; may be NULL */
	const char *node;            /* may be NULL */
	/* the Pod's telemetry metadata (wp_k8s_pod): workload, canonical
	 * service and revision; NULL when no Pod backs the endpoint */
	const char *workload, *canonical_name, *canonical_revision;
	bool ambient; /* in the mesh (istio.io/dataplane-mode=ambient): reach it by HBONE */
};

struct wp_snap_svc_port {
	const char *name; /* may be "" */
	uint16_t port;    /* the service port (the :authority port) */
	uint8_t proto;    /* enum wp_app_proto */
	uint32_t n_endpoints;
	const struct wp_snap_endpoint *endpoints;
	/* Compiled L7 policy (wp/route.h): HTTPRoutes attached to this
	 * port, their backends and DestinationRule load balancing; with no
	 * route, one default rule to this service. Owned by the block; NULL
	 * only if it could not be built (out of memory). */
	const struct wp_route_table *routes;
};

struct wp_snap_service {
	uint32_t refcnt; /* control plane only: snapshots holding it + 1 for the resolver */
	uint32_t gw;     /* index into wp_snapshot.gateways */
	const char *ns;
	const char *name;
	const char *hostname; /* name.ns.svc.<cluster domain> */
	uint32_t n_vips;
	const struct wp_addr *vips;
	uint32_t n_ports;
	const struct wp_snap_svc_port *ports;
	bool via_namespace; /* enrolled through its namespace's label */
	/* AuthorizationPolicies attached to this Service behind its waypoint,
	 * compiled (wp/authz.h); owned by the block, NULL when the cluster has
	 * no AuthorizationPolicy at all (nothing applies). Enforced by the
	 * request pipeline (dp/l7/pipeline.h) on every request and tunnel. */
	const struct wp_authz_table *authz;
	struct wp_arena arena; /* owns everything above */
};

struct wp_snap_workload {
	uint32_t refcnt; /* control plane only */
	uint32_t gw;
	const char *ns;
	const char *name;
	const char *service_account;
	const char *node;
	const char *workload, *canonical_name, *canonical_revision; /* as wp_k8s_pod */
	bool ready;
	bool via_namespace;
	bool ambient; /* in the mesh: reach it by HBONE, else plaintext */
	uint32_t n_addrs;
	const struct wp_addr *addrs;
	struct wp_arena arena;
};

/* What the Telemetry resources (telemetry.istio.io) in force for one
 * waypoint Gateway ask of it, the most specific winning (the root
 * namespace's, then the Gateway namespace's, then those whose targetRefs
 * name the Gateway). UNSET leaves the appliance's configuration in force. */
enum wp_tel_switch {
	WP_TEL_UNSET = 0,
	WP_TEL_OFF,
	WP_TEL_ON,
};

struct wp_snap_telemetry {
	uint8_t access_log; /* enum wp_tel_switch: accessLogging */
	uint8_t tracing;    /* enum wp_tel_switch: tracing (a provider, or disableSpanReporting) */
	int32_t sampling_ppm; /* tracing randomSamplingPercentage in millionths; -1: unset */
};

/* Where a Gateway's Telemetry settings come from, for the views
 * (cp/resolve/telemetry.c fills it, dump.c shows it); the workers never
 * read it. Everything lives in the snapshot's arena. */
struct wp_snap_tel_ref {
	const char *ns, *name;
	const char *why; /* level (root namespace, namespace, targetRefs), or why ignored */
};

struct wp_snap_tel_info {
	uint32_t n_applied;
	const struct wp_snap_tel_ref *applied; /* least specific first */
	uint32_t n_ignored;
	const struct wp_snap_tel_ref *ignored; /* do not attach to this waypoint */
	const char *tracing_provider;          /* the provider tracing names, or NULL */
	uint32_t n_not_applied;
	const char *const *not_applied; /* "ORIGIN:LINE: Telemetry NS/NAME: FIELD: ..." */
};

struct wp_snap_gateway {
	const char *ns;
	const char *name;
	const char *class_name;
	const char *waypoint_for; /* service | workload | all | none | other */
	/* AuthorizationPolicies of the whole waypoint (targetRefs to this
	 * Gateway or its GatewayClass), compiled for CONNECTs addressed to a
	 * workload; owned by the snapshot, NULL when the cluster has none. */
	const struct wp_authz_table *authz;
	struct wp_snap_telemetry telemetry;
	const struct wp_snap_tel_info *telemetry_info; /* NULL: no Telemetry in scope */
	uint32_t n_services;
	uint32_t n_workloads;
};

enum wp_dest_kind {
	WP_DEST_SERVICE = 1,
	WP_DEST_WORKLOAD = 2,
};

/* One captured destination. A workload entry has port 0: it captures every
 * port of that IP. */
struct wp_snap_dest {
	struct wp_sockaddr key;
	uint8_t kind;      /* enum wp_dest_kind; 0 = empty slot */
	uint16_t port_idx; /* service port index (WP_DEST_SERVICE) */
	uint32_t gw;       /* index into wp_snapshot.gateways */
	union {
		const struct wp_snap_service *svc;
		const struct wp_snap_workload *wl;
	};
};

struct wp_snapshot {
	uint64_t version;    /* 1, 2, 3, ... per published snapshot */
	uint64_t built_ns;   /* CLOCK_REALTIME when built */
	uint32_t n_gateways; /* served Gateways, sorted by ns/name */
	const struct wp_snap_gateway *gateways;
	uint32_t n_services;
	struct wp_snap_service *const *services;
	uint32_t n_workloads;
	struct wp_snap_workload *const *workloads;
	uint32_t n_dests;
	uint32_t dest_mask; /* table size - 1 (power of two) */
	const struct wp_snap_dest *dests;
	uint32_t n_errors; /* configuration errors when it was built */
	const char *const *errors;
	struct wp_arena arena; /* owns gateways, arrays, table, errors */
};

#endif /* WP_SNAPSHOT_TYPES_H */
