/*
 * The Kubernetes resource model: the objects the control plane reads
 * (Namespace, Service, Pod, EndpointSlice, Gateway, GatewayClass, HTTPRoute,
 * AuthorizationPolicy, DestinationRule, ServiceEntry, VirtualService,
 * Telemetry) as plain C structs.
 * Only the fields the appliance uses are typed and validated; kinds whose
 * spec is compiled by later stages (routes, policy) also keep the generic
 * node tree of their spec (struct wp_ynode) so nothing has to be re-parsed.
 *
 * Every object owns one arena: all its strings, arrays and nodes live there
 * and are freed with the object (wp_obj_free). Objects are immutable once
 * parsed.
 */
#ifndef WP_MODEL_TYPES_H
#define WP_MODEL_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "wp/addr_types.h"
#include "wp/arena.h"

enum wp_kind {
	WP_KIND_NONE = 0,
	WP_KIND_NAMESPACE,
	WP_KIND_SERVICE,
	WP_KIND_POD,
	WP_KIND_ENDPOINTSLICE,
	WP_KIND_GATEWAY,
	WP_KIND_GATEWAYCLASS,
	WP_KIND_HTTPROUTE,
	WP_KIND_AUTHORIZATIONPOLICY,
	WP_KIND_DESTINATIONRULE,
	WP_KIND_SERVICEENTRY,
	WP_KIND_VIRTUALSERVICE,
	WP_KIND_TELEMETRY,
	WP_KIND_MAX
};

/* ---- generic YAML/JSON node tree ------------------------------------ */

enum wp_ynode_type {
	WP_YNODE_SCALAR,
	WP_YNODE_MAP,
	WP_YNODE_SEQ,
};

/*
 * One node. Scalars are always kept as text (YAML 1.1 would turn `on` into
 * a boolean; Kubernetes names are strings); `plain` tells an unquoted scalar
 * (where `null`, `~` and the empty string mean null) from a quoted one.
 * Children form a singly linked list; a map child carries its key.
 */
struct wp_ynode {
	uint8_t type;      /* enum wp_ynode_type */
	uint8_t plain;     /* scalar was unquoted */
	uint32_t line;     /* 1-based line of the node's start in its origin */
	uint32_t n;        /* number of children */
	const char *key;   /* key in the parent map, or NULL */
	const char *value; /* scalar text (NUL-terminated), or NULL */
	struct wp_ynode *child, *last, *next;
};

/* ---- common pieces --------------------------------------------------- */

struct wp_kv {
	const char *key;
	const char *value;
};

/* A label (or annotation) set, sorted by key. */
struct wp_labels {
	uint32_t n;
	const struct wp_kv *kv;
};

enum wp_sel_op {
	WP_SEL_IN,
	WP_SEL_NOT_IN,
	WP_SEL_EXISTS,
	WP_SEL_DOES_NOT_EXIST,
};

struct wp_sel_expr {
	const char *key;
	uint8_t op; /* enum wp_sel_op */
	uint32_t n_values;
	const char *const *values;
};

/* A metav1.LabelSelector: matchLabels AND every matchExpressions entry. */
struct wp_label_selector {
	struct wp_labels match_labels;
	uint32_t n_expr;
	const struct wp_sel_expr *expr;
};

struct wp_obj_meta {
	const char *api_version;
	const char *ns; /* "" for cluster-scoped kinds */
	const char *name;
	const char *uid;              /* may be NULL */
	const char *resource_version; /* opaque; may be NULL */
	int64_t created;              /* creationTimestamp, Unix seconds; 0 = absent */
	struct wp_labels labels;
	struct wp_labels annotations;
};

/* ---- core/v1 ------------------------------------------------------------ */

struct wp_svc_port {
	const char *name;         /* may be "" */
	const char *protocol;     /* TCP (default), UDP, SCTP */
	const char *app_protocol; /* may be NULL */
	uint16_t port;
	uint16_t target_port;         /* number, or 0 when named / absent */
	const char *target_port_name; /* named targetPort, or NULL */
};

struct wp_k8s_service {
	const char *type; /* ClusterIP (default), NodePort, LoadBalancer, ExternalName */
	bool headless;    /* clusterIP: None */
	uint32_t n_cluster_ips;
	const struct wp_addr *cluster_ips;
	uint32_t n_ports;
	const struct wp_svc_port *ports;
	bool has_selector;         /* spec.selector present (may be empty) */
	struct wp_labels selector; /* equality selector */
};

struct wp_container_port {
	const char *name; /* may be NULL */
	uint16_t port;
	const char *protocol;
};

struct wp_k8s_pod {
	const char *service_account; /* "default" when unset */
	const char *node_name;       /* may be NULL */
	const char *phase;           /* status.phase, may be NULL */
	/* Istio's workload metadata for telemetry (as istiod derives it):
	 * the workload (service.istio.io/workload-name, else the Deployment,
	 * CronJob, ... that controls the Pod, else the Pod), its canonical
	 * service (service.istio.io/canonical-name, app.kubernetes.io/name,
	 * app, else the workload) and canonical revision
	 * (service.istio.io/canonical-revision, app.kubernetes.io/version,
	 * version, else "latest"). Never NULL. */
	const char *workload;
	const char *canonical_name;
	const char *canonical_revision;
	bool ready; /* status condition Ready=True (true when no conditions) */
	bool host_network;
	bool terminating; /* metadata.deletionTimestamp set */
	uint32_t n_ips;
	const struct wp_addr *ips; /* status.podIPs (or podIP) */
	uint32_t n_cports;
	const struct wp_container_port *cports; /* all containers' ports */
};

struct wp_namespace_obj {
	int unused;
};

/* ---- discovery.k8s.io/v1 ------------------------------------------------- */

struct wp_eps_endpoint {
	uint32_t n_addrs;
	const struct wp_addr *addrs;
	bool ready;              /* conditions.ready; absent means ready */
	bool serving;            /* conditions.serving; absent means ready's value */
	bool terminating;        /* conditions.terminating */
	const char *target_kind; /* targetRef, may be NULL */
	const char *target_ns;
	const char *target_name;
	const char *node_name;
};

struct wp_eps_port {
	const char *name; /* may be "" */
	const char *protocol;
	const char *app_protocol;
	uint16_t port; /* 0 = unspecified */
};

struct wp_k8s_endpointslice {
	const char *service_name; /* label kubernetes.io/service-name, may be NULL */
	const char *address_type; /* IPv4, IPv6, FQDN */
	uint32_t n_endpoints;
	const struct wp_eps_endpoint *endpoints;
	uint32_t n_ports;
	const struct wp_eps_port *ports;
};

/* ---- gateway.networking.k8s.io/v1 ---------------------------------------- */

enum wp_routes_from {
	WP_ROUTES_FROM_SAME = 0,
	WP_ROUTES_FROM_ALL,
	WP_ROUTES_FROM_SELECTOR,
};

struct wp_gw_listener {
	const char *name;
	const char *protocol;
	const char *hostname; /* may be NULL */
	uint16_t port;
	bool has_allowed_ns; /* allowedRoutes.namespaces present */
	uint8_t from;        /* enum wp_routes_from */
	bool has_selector;   /* allowedRoutes.namespaces.selector present */
	struct wp_label_selector selector;
};

struct wp_gw_address {
	const char *type; /* IPAddress (default) or Hostname */
	const char *value;
};

struct wp_k8s_gateway {
	const char *class_name;
	uint32_t n_listeners;
	const struct wp_gw_listener *listeners;
	uint32_t n_spec_addrs;
	const struct wp_gw_address *spec_addrs;
	uint32_t n_status_addrs;
	const struct wp_gw_address *status_addrs;
};

struct wp_k8s_gatewayclass {
	const char *controller_name;
};

struct wp_parent_ref {
	const char *group; /* "" for core (Service) */
	const char *kind;  /* Gateway (default), Service, ServiceEntry */
	const char *ns;    /* defaults to the route's namespace */
	const char *name;
	uint16_t port; /* 0 = unset */
	const char *section_name;
};

struct wp_k8s_httproute {
	uint32_t n_parents;
	const struct wp_parent_ref *parents;
	uint32_t n_hostnames;
	const char *const *hostnames;
};

/* ---- security.istio.io / networking.istio.io ------------------------------ */

struct wp_target_ref {
	const char *group;
	const char *kind;
	const char *name;
	const char *ns; /* may be NULL */
};

/*
 * AuthorizationPolicy rules, typed by cp/model/authz_parse.c. One key covers
 * a `from.source` field, a `to.operation` field and the `when` key that
 * Istio evaluates the same way (ipBlocks and source.ip, ports and
 * destination.port, ...).
 */
enum wp_authz_key {
	WP_AUTHZ_K_PRINCIPAL = 0,   /* principals, source.principal */
	WP_AUTHZ_K_NAMESPACE,       /* namespaces, source.namespace */
	WP_AUTHZ_K_SERVICE_ACCOUNT, /* serviceAccounts, source.serviceAccount */
	WP_AUTHZ_K_SOURCE_IP,       /* ipBlocks, source.ip */
	WP_AUTHZ_K_REMOTE_IP,       /* remoteIpBlocks, remote.ip */
	WP_AUTHZ_K_REQ_PRINCIPAL,   /* requestPrincipals, request.auth.principal */
	WP_AUTHZ_K_HOST,            /* hosts */
	WP_AUTHZ_K_PORT,            /* ports, destination.port */
	WP_AUTHZ_K_METHOD,          /* methods */
	WP_AUTHZ_K_PATH,            /* paths */
	WP_AUTHZ_K_HEADER,          /* request.headers[arg] */
	WP_AUTHZ_K_DEST_IP,         /* destination.ip */
	WP_AUTHZ_K_SNI,             /* connection.sni */
	WP_AUTHZ_K_AUTH_AUDIENCE,   /* request.auth.audiences */
	WP_AUTHZ_K_AUTH_PRESENTER,  /* request.auth.presenter */
	WP_AUTHZ_K_AUTH_CLAIM,      /* request.auth.claims[arg] */
	WP_AUTHZ_K_MAX
};

/* An address block: a CIDR, or one address as a full-length prefix. */
struct wp_authz_cidr {
	struct wp_addr addr; /* host bits cleared */
	uint8_t len;
};

/* One field: values OR-ed, and none of not_values. For IP keys the parsed
 * blocks are in cidrs/not_cidrs, for PORT the numbers in ports/not_ports
 * (same indexes as the text). */
struct wp_authz_cond {
	uint8_t key;     /* enum wp_authz_key */
	const char *arg; /* HEADER: lower-case name; AUTH_CLAIM: "[a][b]"; else NULL */
	uint32_t line;
	uint32_t n_values;
	uint32_t n_not;
	const char *const *values;
	const char *const *not_values;
	const struct wp_authz_cidr *cidrs, *not_cidrs;
	const uint16_t *ports, *not_ports;
};

/* One from[].source or to[].operation entry: its fields AND-ed. */
struct wp_authz_match {
	uint32_t line;
	uint32_t n_conds;
	const struct wp_authz_cond *conds;
};

/* A rule: (any from entry) AND (any to entry) AND every when condition; a
 * missing from / to / when puts no constraint. */
struct wp_authz_rule {
	uint32_t line;
	uint32_t n_from, n_to, n_when;
	const struct wp_authz_match *from, *to;
	const struct wp_authz_cond *when;
	const char *invalid; /* "ORIGIN:LINE: ...: problem" when it cannot be used */
};

enum wp_authz_action {
	WP_AUTHZ_ALLOW = 0,
	WP_AUTHZ_DENY,
	WP_AUTHZ_AUDIT,
	WP_AUTHZ_CUSTOM,
};

struct wp_k8s_authz {
	const char *action; /* ALLOW (default), DENY, AUDIT, CUSTOM */
	uint32_t n_target_refs;
	const struct wp_target_ref *target_refs;
	bool has_selector;    /* spec.selector present (ignored by waypoints) */
	uint8_t act;          /* enum wp_authz_action */
	bool dry_run;         /* annotation istio.io/dry-run: true */
	const char *provider; /* CUSTOM: provider.name, may be NULL */
	uint32_t n_rules;
	const struct wp_authz_rule *rules;
	const char *invalid; /* a problem with the policy as a whole, or NULL */
};

struct wp_k8s_destrule {
	const char *host;
};

struct wp_se_port {
	const char *name;
	const char *protocol;
	uint16_t number;
	uint16_t target_port;
};

struct wp_k8s_serviceentry {
	uint32_t n_hosts;
	const char *const *hosts;
	uint32_t n_addresses;
	const char *const *addresses; /* IPs or CIDRs, as text */
	uint32_t n_ports;
	const struct wp_se_port *ports;
	const char *resolution; /* NONE (default), STATIC, DNS, DNS_ROUND_ROBIN */
	const char *location;   /* MESH_EXTERNAL (default), MESH_INTERNAL */
};

/* A VirtualService: the hosts it binds, typed; its http rules are compiled
 * from the spec tree (cp/resolve/vs_compile.c). */
struct wp_k8s_virtualservice {
	uint32_t n_hosts;
	const char *const *hosts;
	uint32_t n_gateways; /* spec.gateways ("mesh" or none: applies to the mesh) */
	const char *const *gateways;
};

/* ---- telemetry.istio.io (v1, v1alpha1) ------------------------------------ */

/* match.mode of an accessLogging or tracing entry; absent means both. */
enum wp_tel_mode {
	WP_TEL_MODE_CLIENT_AND_SERVER = 0,
	WP_TEL_MODE_CLIENT,
	WP_TEL_MODE_SERVER,
};

/* One spec.accessLogging entry. */
struct wp_tel_log {
	uint32_t line;
	uint32_t n_providers;
	const char *const *providers; /* providers[].name, in order */
	const uint32_t *provider_lines;
	uint8_t mode;       /* enum wp_tel_mode */
	bool disabled;      /* disabled: true */
	const char *filter; /* filter.expression (CEL), or NULL */
	uint32_t filter_line;
};

/* One spec.tracing entry. A field left out inherits (-1 / NULL). */
struct wp_tel_trace {
	uint32_t line;
	uint32_t n_providers;
	const char *const *providers;
	uint8_t mode;                  /* enum wp_tel_mode */
	int8_t disable_span_reporting; /* -1 absent, 0, 1 */
	int32_t sampling_ppm;          /* randomSamplingPercentage in millionths; -1 absent */
	const char *unsupported;       /* a field read but without effect here, or NULL */
	uint32_t unsupported_line;
};

/* A Telemetry: where it attaches and its accessLogging and tracing
 * entries; spec.metrics is only located (overrides have no effect here). */
struct wp_k8s_telemetry {
	bool has_selector; /* spec.selector with matchLabels: workload pods only */
	uint32_t selector_line;
	uint32_t n_target_refs;
	const struct wp_target_ref *target_refs;
	const uint32_t *target_ref_lines;
	uint32_t n_logs;
	const struct wp_tel_log *logs;
	uint32_t n_traces;
	const struct wp_tel_trace *traces;
	uint32_t metrics_line; /* spec.metrics present and not empty: its line; 0 absent */
};

/* ---- the object ---------------------------------------------------------- */

struct wp_obj {
	enum wp_kind kind;
	struct wp_obj_meta meta;
	const char *origin; /* file name or source tag ("k8s") */
	uint32_t line;      /* line of the document start in origin */
	/* spec (and status) as a node tree; kept for Gateway, HTTPRoute,
	 * AuthorizationPolicy, DestinationRule, ServiceEntry and VirtualService, NULL for
	 * the other kinds (their typed form is all we use). */
	const struct wp_ynode *spec;
	union {
		struct wp_namespace_obj ns;
		struct wp_k8s_service svc;
		struct wp_k8s_pod pod;
		struct wp_k8s_endpointslice eps;
		struct wp_k8s_gateway gw;
		struct wp_k8s_gatewayclass gwc;
		struct wp_k8s_httproute route;
		struct wp_k8s_authz authz;
		struct wp_k8s_destrule dr;
		struct wp_k8s_serviceentry se;
		struct wp_k8s_virtualservice vs;
		struct wp_k8s_telemetry tel;
	} u;
	struct wp_arena arena; /* owns everything above */
};

#endif /* WP_MODEL_TYPES_H */
