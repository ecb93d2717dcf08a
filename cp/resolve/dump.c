/*
 * JSON renderings of a snapshot and of the enrollment view (wp/cp_json.h).
 * Control plane only; the admin server and wpctl print these.
 */
#include <string.h>

#include "wp/addr.h"
#include "wp/authz.h"
#include "wp/cp_json.h"
#include "wp/model.h"
#include "wp/route.h"

const char *wp_app_proto_name(enum wp_app_proto p)
{
	static const char *const n[] = {
	        [WP_PROTO_UNKNOWN] = "unknown", [WP_PROTO_HTTP] = "http",
	        [WP_PROTO_HTTP2] = "http2",     [WP_PROTO_GRPC] = "grpc",
	        [WP_PROTO_TCP] = "tcp",         [WP_PROTO_TLS] = "tls",
	        [WP_PROTO_HTTPS] = "https",
	};
	return (unsigned)p < WP_ARRAY_SIZE(n) ? n[p] : "unknown";
}

/* The AuthorizationPolicies compiled for a service: applied (with how they
 * attach, their compiled rules and, for one that could not be read, its
 * errors), ignored (selector-based, without targetRefs, dry-run, ...: with
 * why) and every error (file:line). */
static json_t *authz_json(const struct wp_authz_table *t)
{
	static const char *const act[] = {"ALLOW", "DENY", "AUDIT", "CUSTOM"};
	json_t *o = json_object(), *pol = json_array(), *ign = json_array(), *errs = json_array();
	char head[320];

	json_object_set_new(o, "enforced", json_true()); /* by the request pipeline */
	for (uint32_t i = 0; i < t->n_policies; i++) {
		const struct wp_authz_pinfo *p = &t->policies[i];
		json_t *po = json_object(), *perrs = json_array();
		/* the errors of this policy, beside it (the table's list below
		 * has them all) */
		size_t hl = (size_t)snprintf(head, sizeof(head),
		                             "AuthorizationPolicy %s/%s:", p->ns, p->name);

		json_object_set_new(po, "namespace", json_string(p->ns));
		json_object_set_new(po, "name", json_string(p->name));
		json_object_set_new(po, "action", json_string(act[p->action & 3]));
		json_object_set_new(po, "targetRef", json_string(p->attach));
		json_object_set_new(po, "compiledRules", json_integer(p->n_rules));
		for (uint32_t k = 0; k < t->n_errors; k++)
			if (hl < sizeof(head) && strstr(t->errors[k], head))
				json_array_append_new(perrs, json_string(t->errors[k]));
		if (json_array_size(perrs))
			json_object_set_new(po, "errors", perrs);
		else
			json_decref(perrs);
		json_array_append_new(pol, po);
	}
	for (uint32_t i = 0; i < t->n_ignored; i++) {
		json_t *io = json_object();

		json_object_set_new(io, "namespace", json_string(t->ignored[i].ns));
		json_object_set_new(io, "name", json_string(t->ignored[i].name));
		json_object_set_new(io, "why", json_string(t->ignored[i].why));
		json_array_append_new(ign, io);
	}
	for (uint32_t i = 0; i < t->n_errors; i++)
		json_array_append_new(errs, json_string(t->errors[i]));
	json_object_set_new(o, "policies", pol);
	json_object_set_new(o, "ignored", ign);
	json_object_set_new(o, "errors", errs);
	/* whether an ALLOW applies (then a request must match one of its
	 * rules) and whether the table could not be built (all denied) */
	json_object_set_new(o, "hasAllow", json_boolean(t->has_allow));
	json_object_set_new(o, "broken", json_boolean(t->broken));
	return o;
}

/* The DestinationRule connection pools of <t>'s clusters that set
 * anything (limits 2^32-1 and times 0 are Istio's defaults: left out). */
static json_t *cpools_json(const struct wp_route_table *t)
{
	json_t *a = json_array();

	for (uint32_t i = 0; i < t->n_clusters; i++) {
		const struct wp_route_cpool *p = &t->clusters[i].pool;
		json_t *o = json_object();
		const struct {
			const char *k;
			uint32_t v, dflt;
		} f[] = {
		        {"maxConnections", p->max_connections, WP_ROUTE_CPOOL_UNLIMITED},
		        {"http1MaxPendingRequests", p->max_pending, WP_ROUTE_CPOOL_UNLIMITED},
		        {"http2MaxRequests", p->max_requests, WP_ROUTE_CPOOL_UNLIMITED},
		        {"maxRetries", p->max_retries, WP_ROUTE_CPOOL_UNLIMITED},
		        {"maxRequestsPerConnection", p->max_req_per_conn, 0},
		        {"maxConcurrentStreams", p->max_streams, 0},
		        {"connectTimeoutMs", p->connect_timeout_ms, 0},
		        {"idleTimeoutMs", p->idle_timeout_ms, 0},
		        {"tcpIdleTimeoutMs", p->tcp_idle_timeout_ms, WP_ROUTE_TCP_IDLE_DEFAULT_MS},
		        {"tcpKeepaliveTimeMs", p->keepalive.time_ms, 0},
		        {"tcpKeepaliveIntervalMs", p->keepalive.time_ms ? p->keepalive.intvl_ms : 0,
		         0},
		        {"tcpKeepaliveProbes", p->keepalive.time_ms ? p->keepalive.probes : 0, 0},
		};

		for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++)
			if (f[k].v != f[k].dflt)
				json_object_set_new(o, f[k].k, json_integer(f[k].v));
		if (json_object_size(o) == 0) {
			json_decref(o);
			continue;
		}
		json_object_set_new(o, "cluster", json_string(t->clusters[i].name));
		json_array_append_new(a, o);
	}
	return a;
}

/* A rule's fault injection (wp_route_fault), shares in percent. */
static json_t *fault_json(const struct wp_route_fault *f)
{
	json_t *o = json_object();

	if (f->delay) {
		json_object_set_new(o, "delayMs", json_integer(f->delay_ms));
		json_object_set_new(o, "delayPercent", json_real(f->delay_ppm / 10000.0));
	}
	if (f->abort) {
		if (f->abort_status)
			json_object_set_new(o, "abortHttpStatus", json_integer(f->abort_status));
		else
			json_object_set_new(o, "abortGrpcStatus", json_integer(f->abort_grpc));
		json_object_set_new(o, "abortPercent", json_real(f->abort_ppm / 10000.0));
	}
	return o;
}

/* A port's route table: where its rules come from, each rule (with its
 * source object, matches and backends) in the order the matcher tries
 * them, the VirtualServices set aside by an HTTPRoute, the VirtualService
 * fields compiled without effect, the clusters' connection pools, and
 * every error (file:line). */
static json_t *routes_json(const struct wp_route_table *t)
{
	static const char *const src[] = {"none", "HTTPRoute", "VirtualService"};
	json_t *o = json_object(), *rules = json_array(), *errs = json_array();

	json_object_set_new(o, "source", json_string(src[t->source % 3]));
	for (uint32_t i = 0; i + 1 < t->n_rules; i++) {
		const struct wp_route_rule *r = &t->rules[i];
		json_t *ro = json_object(), *be = json_array(), *mi = json_array();

		json_object_set_new(
		        ro, "kind",
		        json_string(r->flags & WP_ROUTE_F_VS ? "VirtualService" : "HTTPRoute"));
		json_object_set_new(ro, "namespace", json_string(r->route_ns));
		json_object_set_new(ro, "name", json_string(r->route_name));
		json_object_set_new(ro, "index", json_integer(r->index));
		for (uint32_t k = 0; k < t->n_matches; k++)
			if (t->matches[k].rule == i)
				json_array_append_new(mi, json_integer(k));
		json_object_set_new(ro, "matches", mi);
		for (uint16_t k = 0; k < r->n_backends; k++) {
			const struct wp_route_backend *b = &r->backends[k];

			json_array_append_new(be, json_pack("{s:s, s:i}", "cluster",
			                                    b->cluster < t->n_clusters
			                                            ? t->clusters[b->cluster].name
			                                            : "(unresolved: 500)",
			                                    "weight", (int)b->weight));
		}
		json_object_set_new(ro, "backends", be);
		if (r->flags & WP_ROUTE_F_REDIRECT)
			json_object_set_new(ro, "redirect", json_integer(r->redirect.status));
		json_object_set_new(ro, "mirrors", json_integer(r->n_mirrors));
		json_object_set_new(ro, "timeoutMs", json_integer(r->request_timeout_ms));
		json_object_set_new(ro, "perTryTimeoutMs", json_integer(r->backend_timeout_ms));
		json_object_set_new(ro, "retryAttempts", json_integer(r->retry.attempts));
		if (r->fault.delay || r->fault.abort)
			json_object_set_new(ro, "fault", fault_json(&r->fault));
		json_array_append_new(rules, ro);
	}
	for (uint32_t i = 0; i < t->n_errors; i++)
		json_array_append_new(errs, json_string(t->errors[i]));
	json_object_set_new(o, "rules", rules);
	json_object_set_new(o, "virtualServiceConflicts", json_integer(t->n_vs_conflicts));
	json_object_set_new(o, "virtualServiceNotApplied", json_integer(t->n_vs_not_applied));
	json_object_set_new(o, "connectionPools", cpools_json(t));
	json_object_set_new(o, "errors", errs);
	return o;
}

static json_t *addr_json(const struct wp_addr *a)
{
	char buf[WP_ADDR_STRLEN];

	return json_string(wp_addr_format(a, buf, sizeof(buf)));
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *tel_refs_json(const struct wp_snap_tel_ref *v, uint32_t n, const char *what)
{
	json_t *a = json_array();

	for (uint32_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "namespace", v[i].ns, "name",
		                                   v[i].name, what, v[i].why));
	return a;
}

/* A Gateway's Telemetry settings: what the workers apply ("on", "off", or
 * "config": no Telemetry decides, waypointd's configuration does), the
 * Telemetries that produced them (least specific first), those in scope
 * that do not attach to it, and the parts not applied (file:line). */
static json_t *telemetry_json(const struct wp_snap_gateway *g)
{
	static const char *const sw[] = {"config", "off", "on"};
	const struct wp_snap_tel_info *in = g->telemetry_info;
	json_t *o = json_object(), *na = json_array();

	json_object_set_new(o, "accessLog", json_string(sw[g->telemetry.access_log % 3]));
	json_object_set_new(o, "tracing", json_string(sw[g->telemetry.tracing % 3]));
	json_object_set_new(o, "randomSamplingPercentage",
	                    g->telemetry.sampling_ppm < 0
	                            ? json_null()
	                            : json_real(g->telemetry.sampling_ppm / 10000.0));
	json_object_set_new(o, "tracingProvider", str_or_null(in ? in->tracing_provider : NULL));
	json_object_set_new(
	        o, "applied",
	        tel_refs_json(in ? in->applied : NULL, in ? in->n_applied : 0, "level"));
	json_object_set_new(o, "ignored",
	                    tel_refs_json(in ? in->ignored : NULL, in ? in->n_ignored : 0, "why"));
	for (uint32_t i = 0; in && i < in->n_not_applied; i++)
		json_array_append_new(na, json_string(in->not_applied[i]));
	json_object_set_new(o, "notApplied", na);
	return o;
}

json_t *wp_snapshot_json(const struct wp_snapshot *s)
{
	json_t *o, *gws, *svcs, *wls, *errs;

	if (!s)
		return json_null();
	o = json_object();
	gws = json_array();
	svcs = json_array();
	wls = json_array();
	errs = json_array();
	json_object_set_new(o, "version", json_integer((json_int_t)s->version));
	json_object_set_new(o, "built_unix_ns", json_integer((json_int_t)s->built_ns));
	for (uint32_t i = 0; i < s->n_gateways; i++) {
		const struct wp_snap_gateway *g = &s->gateways[i];

		json_t *go = json_pack("{s:s, s:s, s:s?, s:s, s:i, s:i}", "namespace", g->ns,
		                       "name", g->name, "gatewayClassName", g->class_name,
		                       "waypointFor", g->waypoint_for, "services",
		                       (int)g->n_services, "workloads", (int)g->n_workloads);

		if (go)
			json_object_set_new(go, "telemetry", telemetry_json(g));
		json_array_append_new(gws, go);
	}
	for (uint32_t i = 0; i < s->n_services; i++) {
		const struct wp_snap_service *v = s->services[i];
		json_t *so = json_object(), *vips = json_array(), *ports = json_array();

		json_object_set_new(so, "namespace", json_string(v->ns));
		json_object_set_new(so, "name", json_string(v->name));
		json_object_set_new(so, "hostname", json_string(v->hostname));
		json_object_set_new(
		        so, "waypoint",
		        json_sprintf("%s/%s", s->gateways[v->gw].ns, s->gateways[v->gw].name));
		json_object_set_new(so, "via",
		                    json_string(v->via_namespace ? "namespace" : "self"));
		for (uint32_t j = 0; j < v->n_vips; j++)
			json_array_append_new(vips, addr_json(&v->vips[j]));
		for (uint32_t j = 0; j < v->n_ports; j++) {
			const struct wp_snap_svc_port *p = &v->ports[j];
			json_t *po = json_object(), *eps = json_array();

			json_object_set_new(po, "name", json_string(p->name));
			json_object_set_new(po, "port", json_integer(p->port));
			json_object_set_new(po, "protocol",
			                    json_string(wp_app_proto_name(p->proto)));
			for (uint32_t k = 0; k < p->n_endpoints; k++) {
				const struct wp_snap_endpoint *e = &p->endpoints[k];
				json_t *eo = json_object();

				json_object_set_new(eo, "address", addr_json(&e->addr));
				json_object_set_new(eo, "port", json_integer(e->port));
				json_object_set_new(eo, "ready", json_boolean(e->ready));
				json_object_set_new(eo, "pod", str_or_null(e->name));
				json_object_set_new(eo, "serviceAccount",
				                    str_or_null(e->service_account));
				json_object_set_new(eo, "node", str_or_null(e->node));
				json_object_set_new(eo, "workload", str_or_null(e->workload));
				json_object_set_new(eo, "canonicalService",
				                    str_or_null(e->canonical_name));
				json_object_set_new(eo, "canonicalRevision",
				                    str_or_null(e->canonical_revision));
				json_object_set_new(eo, "ambient", json_boolean(e->ambient));
				json_array_append_new(eps, eo);
			}
			json_object_set_new(po, "endpoints", eps);
			if (p->routes)
				json_object_set_new(po, "routes", routes_json(p->routes));
			json_array_append_new(ports, po);
		}
		json_object_set_new(so, "vips", vips);
		json_object_set_new(so, "ports", ports);
		if (v->authz)
			json_object_set_new(so, "authorization", authz_json(v->authz));
		json_array_append_new(svcs, so);
	}
	for (uint32_t i = 0; i < s->n_workloads; i++) {
		const struct wp_snap_workload *w = s->workloads[i];
		json_t *wo = json_object(), *addrs = json_array();

		json_object_set_new(wo, "namespace", json_string(w->ns));
		json_object_set_new(wo, "name", json_string(w->name));
		json_object_set_new(
		        wo, "waypoint",
		        json_sprintf("%s/%s", s->gateways[w->gw].ns, s->gateways[w->gw].name));
		json_object_set_new(wo, "via",
		                    json_string(w->via_namespace ? "namespace" : "self"));
		json_object_set_new(wo, "serviceAccount", str_or_null(w->service_account));
		json_object_set_new(wo, "node", str_or_null(w->node));
		json_object_set_new(wo, "workload", str_or_null(w->workload));
		json_object_set_new(wo, "canonicalService", str_or_null(w->canonical_name));
		json_object_set_new(wo, "canonicalRevision", str_or_null(w->canonical_revision));
		json_object_set_new(wo, "ready", json_boolean(w->ready));
		json_object_set_new(wo, "ambient", json_boolean(w->ambient));
		for (uint32_t j = 0; j < w->n_addrs; j++)
			json_array_append_new(addrs, addr_json(&w->addrs[j]));
		json_object_set_new(wo, "addresses", addrs);
		json_array_append_new(wls, wo);
	}
	for (uint32_t i = 0; i < s->n_errors; i++)
		json_array_append_new(errs, json_string(s->errors[i]));
	json_object_set_new(o, "gateways", gws);
	json_object_set_new(o, "services", svcs);
	json_object_set_new(o, "workloads", wls);
	json_object_set_new(o, "captured_destinations", json_integer(s->n_dests));
	json_object_set_new(o, "errors", errs);
	return o;
}

struct ectx {
	json_t *arr;
	bool details;
};

static void enroll_row(void *ctx, const struct wp_enrollment *e)
{
	struct ectx *x = ctx;
	json_t *o = json_object();

	json_object_set_new(o, "kind", json_string(wp_kind_name(e->kind)));
	json_object_set_new(o, "namespace", json_string(e->ns));
	json_object_set_new(o, "name", json_string(e->name));
	json_object_set_new(o, "waypoint", e->bound ? json_string(e->waypoint) : json_null());
	json_object_set_new(o, "reason", json_string(wp_enroll_reason_name(e->reason)));
	if (x->details) {
		json_object_set_new(o, "message", json_string(e->message));
		json_object_set_new(o, "via", json_string(e->via_namespace ? "namespace" : "self"));
		json_object_set_new(o, "served", json_boolean(e->served));
	}
	json_array_append_new(x->arr, o);
}

json_t *wp_enrollment_json(struct wp_resolver *r, bool details)
{
	struct ectx x = {.arr = json_array(), .details = details};

	if (!x.arr)
		return NULL;
	wp_resolver_enrollment(r, enroll_row, &x);
	return x.arr;
}
