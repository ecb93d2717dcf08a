/*
 * Table tests for istiod's enrollment rules (DESIGN §2, the seed's
 * "Configure waypoint proxies"), and for the snapshot the resolver builds
 * from them (captured destinations, endpoints, incremental rebuilds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wp/addr.h"
#include "wp/model.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

static void load(struct wp_resolver *r, const char *yaml)
{
	int n = wp_source_deliver_text(wp_resolver_sink(r), "test.yaml", yaml, strlen(yaml));
	const char *const *errs;

	assert_true(n > 0);
	assert_int_equal(wp_resolver_errors(r, &errs), 0);
}

struct row {
	enum wp_kind kind;
	const char *ns, *name;
	char waypoint[128];
	bool bound, served;
	enum wp_enroll_reason reason;
	bool found;
};

static void find_cb(void *ctx, const struct wp_enrollment *e)
{
	struct row *r = ctx;

	if (e->kind == r->kind && !strcmp(e->ns, r->ns) && !strcmp(e->name, r->name)) {
		r->found = true;
		r->bound = e->bound;
		r->served = e->served;
		r->reason = e->reason;
		snprintf(r->waypoint, sizeof(r->waypoint), "%s", e->bound ? e->waypoint : "");
	}
}

/* Checks one row: waypoint "" = not bound. */
static void expect(struct wp_resolver *r, enum wp_kind k, const char *ns, const char *name,
                   const char *waypoint, enum wp_enroll_reason reason)
{
	struct row row = {.kind = k, .ns = ns, .name = name};

	wp_resolver_enrollment(r, find_cb, &row);
	if (!row.found)
		fail_msg("%s %s/%s not in the enrollment view", wp_kind_name(k), ns, name);
	if (strcmp(row.waypoint, waypoint) || row.reason != reason)
		fail_msg("%s %s/%s: got waypoint '%s' reason %s, want '%s' %s", wp_kind_name(k), ns,
		         name, row.waypoint, wp_enroll_reason_name(row.reason), waypoint,
		         wp_enroll_reason_name(reason));
}

#define SVC      WP_KIND_SERVICE
#define POD      WP_KIND_POD
#define BOUND    WP_ENROLL_BOUND
#define NONE     WP_ENROLL_NONE
#define UNSUP    WP_ENROLL_UNSUPPORTED
#define NOTREADY WP_ENROLL_NOT_READY
#define DENIED   WP_ENROLL_ATTACHMENT_DENIED

static char *gw(const char *ns, const char *name, const char *wfor, const char *class,
                const char *allowed)
{
	static char buf[8][1024];
	static int i;
	char *b = buf[i++ % 8];

	snprintf(b, 1024,
	         "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n"
	         "  name: %s\n  namespace: %s\n%s%s%s"
	         "spec:\n  gatewayClassName: %s\n  listeners:\n  - name: mesh\n    port: 15008\n"
	         "    protocol: HBONE\n%s",
	         name, ns, wfor ? "  labels:\n    istio.io/waypoint-for: " : "", wfor ? wfor : "",
	         wfor ? "\n" : "", class ? class : "istio-waypoint", allowed ? allowed : "");
	return b;
}

static char *obj(const char *kind, const char *ns, const char *name, const char *labels)
{
	static char buf[16][1024];
	static int i;
	char *b = buf[i++ % 16];

	if (!strcmp(kind, "Namespace"))
		snprintf(b, 1024,
		         "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n"
		         "  labels: {%s}\n",
		         name, labels);
	else if (!strcmp(kind, "Service"))
		snprintf(b, 1024,
		         "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: "
		         "%s\n  labels: {%s}\nspec:\n  clusterIP: 198.19.9.9\n  ports:\n  - port: "
		         "80\n",
		         name, ns, labels);
	else
		snprintf(b, 1024,
		         "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n"
		         "  labels: {%s}\nstatus:\n  podIP: 198.18.9.9\n",
		         name, ns, labels);
	return b;
}

static struct wp_resolver *resolver(void)
{
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct wp_resolver *r = wp_resolver_create(&served);

	assert_non_null(r);
	load(r, "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n"
	        "  name: istio-waypoint\nspec:\n  controllerName: istio.io/mesh-controller\n");
	return r;
}

/* The seed: namespace enrolled to `waypoint`, reviews to reviews-svc-waypoint,
 * the reviews-v2 pod to a --for workload waypoint (conf/cluster as a table). */
static void test_seed_scenarios(void **state)
{
	(void)state;
	struct wp_resolver *r = resolver();
	char y[8192];

	snprintf(
	        y, sizeof(y), "%s%s%s%s%s%s%s%s", gw("default", "waypoint", "service", NULL, NULL),
	        gw("default", "reviews-svc-waypoint", NULL, NULL, NULL),
	        gw("default", "reviews-v2-pod-waypoint", "workload", NULL, NULL),
	        obj("Namespace", "", "default", "istio.io/use-waypoint: waypoint"),
	        obj("Service", "default", "productpage", "app: productpage"),
	        obj("Service", "default", "reviews", "istio.io/use-waypoint: reviews-svc-waypoint"),
	        obj("Pod", "default", "reviews-v2",
	            "app: reviews, version: v2, istio.io/use-waypoint: reviews-v2-pod-waypoint"),
	        obj("Pod", "default", "reviews-v1", "app: reviews, version: v1"));
	load(r, y);
	expect(r, SVC, "default", "productpage", "default/waypoint", BOUND);
	/* service label beats namespace label */
	expect(r, SVC, "default", "reviews", "default/reviews-svc-waypoint", BOUND);
	/* pod label beats namespace label */
	expect(r, POD, "default", "reviews-v2", "default/reviews-v2-pod-waypoint", BOUND);
	/* namespace waypoint is for services: pods silently get none */
	expect(r, POD, "default", "reviews-v1", "", NONE);
	wp_resolver_destroy(r);
}

static void test_none(void **state)
{
	(void)state;
	struct wp_resolver *r = resolver();
	char y[8192];

	snprintf(y, sizeof(y), "%s%s%s%s%s%s%s", gw("a", "waypoint", NULL, NULL, NULL),
	         gw("b", "waypoint", "all", NULL, NULL),
	         obj("Namespace", "", "a", "istio.io/use-waypoint: waypoint"),
	         obj("Namespace", "", "b", "istio.io/use-waypoint: none"),
	         obj("Service", "a", "optout", "istio.io/use-waypoint: none"),
	         obj("Service", "b", "plain", ""),
	         obj("Service", "b", "own", "istio.io/use-waypoint: waypoint"));
	load(r, y);
	/* none on the object beats the namespace */
	expect(r, SVC, "a", "optout", "", NONE);
	/* none on the namespace */
	expect(r, SVC, "b", "plain", "", NONE);
	/* an object's own label still works in a none namespace */
	expect(r, SVC, "b", "own", "b/waypoint", BOUND);
	/* a Gateway named none can never be used: the value is reserved */
	load(r, gw("a", "none", "all", NULL, NULL));
	load(r, obj("Service", "a", "named-none", "istio.io/use-waypoint: none"));
	expect(r, SVC, "a", "named-none", "", NONE);
	wp_resolver_destroy(r);
}

static void test_use_waypoint_namespace(void **state)
{
	(void)state;
	struct wp_resolver *r = resolver();
	char y[8192];
	const char *all = "    allowedRoutes:\n      namespaces:\n        from: All\n";

	snprintf(y, sizeof(y), "%s%s%s%s%s%s", gw("infra", "shared", NULL, NULL, all),
	         gw("infra", "same-only", NULL, NULL, NULL), obj("Namespace", "", "app", ""),
	         obj("Service", "app", "s1",
	             "istio.io/use-waypoint: shared, istio.io/use-waypoint-namespace: infra"),
	         obj("Service", "app", "s2",
	             "istio.io/use-waypoint: same-only, istio.io/use-waypoint-namespace: infra"),
	         obj("Namespace", "", "app2",
	             "istio.io/use-waypoint: shared, istio.io/use-waypoint-namespace: infra"));
	load(r, y);
	load(r, obj("Service", "app2", "s3", ""));
	expect(r, SVC, "app", "s1", "infra/shared", BOUND);
	/* allowedRoutes defaults to Same */
	expect(r, SVC, "app", "s2", "", DENIED);
	/* through the namespace's two labels */
	expect(r, SVC, "app2", "s3", "infra/shared", BOUND);
	wp_resolver_destroy(r);
}

static void test_traffic_type(void **state)
{
	(void)state;
	struct wp_resolver *r = resolver();
	char y[8192];

	snprintf(y, sizeof(y), "%s%s%s%s%s%s%s", gw("n", "wl", "workload", NULL, NULL),
	         gw("n", "off", "none", NULL, NULL),
	         obj("Namespace", "", "n", "istio.io/use-waypoint: wl"),
	         obj("Service", "n", "by-label", "istio.io/use-waypoint: wl"),
	         obj("Service", "n", "by-ns", ""),
	         obj("Service", "n", "to-none", "istio.io/use-waypoint: off"),
	         obj("Pod", "n", "p", ""));
	load(r, y);
	load(r, obj("Pod", "n", "p-none", "istio.io/use-waypoint: off"));
	/* own label to a workload-only waypoint: an error */
	expect(r, SVC, "n", "by-label", "", UNSUP);
	/* through the namespace: silently no waypoint */
	expect(r, SVC, "n", "by-ns", "", NONE);
	/* the pod is workload traffic: bound through the namespace */
	expect(r, POD, "n", "p", "n/wl", BOUND);
	/* waypoint-for: none takes nothing */
	expect(r, SVC, "n", "to-none", "", UNSUP);
	expect(r, POD, "n", "p-none", "", UNSUP);
	wp_resolver_destroy(r);
}

static void test_missing_gateway_no_fallback(void **state)
{
	(void)state;
	struct wp_resolver *r = resolver();
	char y[8192];

	snprintf(y, sizeof(y), "%s%s%s%s", gw("n", "waypoint", "all", NULL, NULL),
	         obj("Namespace", "", "n", "istio.io/use-waypoint: waypoint"),
	         obj("Service", "n", "s", "istio.io/use-waypoint: missing"),
	         obj("Pod", "n", "p", "istio.io/use-waypoint: missing"));
	load(r, y);
	expect(r, SVC, "n", "s", "", NOTREADY);
	expect(r, POD, "n", "p", "", NOTREADY);
	/* the namespace label naming a missing Gateway */
	load(r, obj("Namespace", "", "m", "istio.io/use-waypoint: ghost"));
	load(r, obj("Service", "m", "s", ""));
	expect(r, SVC, "m", "s", "", NOTREADY);
	/* the Gateway appears: bound (incremental: a Gateway change is global) */
	load(r, gw("n", "missing", "all", NULL, NULL));
	expect(r, SVC, "n", "s", "n/missing", BOUND);
	expect(r, POD, "n", "p", "n/missing", BOUND);
	/* and goes away again */
	assert_int_equal(wp_resolver_remove(r, WP_KIND_GATEWAY, "n", "missing"), 0);
	expect(r, SVC, "n", "s", "", NOTREADY);
	wp_resolver_destroy(r);
}

static void test_allowed_routes(void **state)
{
	(void)state;
	struct wp_resolver *r = resolver();
	char y[8192];
	const char *all = "    allowedRoutes:\n      namespaces:\n        from: All\n";
	const char *sel = "    allowedRoutes:\n      namespaces:\n        from: Selector\n"
	                  "        selector:\n          matchLabels:\n            team: a\n"
	                  "          matchExpressions:\n          - {key: env, operator: NotIn, "
	                  "values: [prod]}\n";
	const char *nosel = "    allowedRoutes:\n      namespaces:\n        from: Selector\n";
	const char *same = "    allowedRoutes:\n      namespaces:\n        from: Same\n";

	snprintf(y, sizeof(y), "%s%s%s%s%s%s%s%s", gw("w", "all", NULL, NULL, all),
	         gw("w", "sel", NULL, NULL, sel), gw("w", "nosel", NULL, NULL, nosel),
	         gw("w", "same", NULL, NULL, same), obj("Namespace", "", "ta", "team: a"),
	         obj("Namespace", "", "tap", "team: a, env: prod"),
	         obj("Namespace", "", "tb", "team: b"), obj("Namespace", "", "w", "team: a"));
	load(r, y);
	const char *L = "istio.io/use-waypoint-namespace: w, istio.io/use-waypoint: ";
	char lab[256];

	snprintf(lab, sizeof(lab), "%sall", L);
	load(r, obj("Service", "tb", "to-all", lab));
	snprintf(lab, sizeof(lab), "%ssel", L);
	load(r, obj("Service", "ta", "sel-ok", lab));
	load(r, obj("Service", "tb", "sel-no", lab));
	load(r, obj("Service", "tap", "sel-expr", lab));
	snprintf(lab, sizeof(lab), "%snosel", L);
	load(r, obj("Service", "ta", "nosel", lab));
	snprintf(lab, sizeof(lab), "%ssame", L);
	load(r, obj("Service", "ta", "same-no", lab));
	load(r, obj("Service", "w", "same-ok", lab));
	expect(r, SVC, "tb", "to-all", "w/all", BOUND);
	expect(r, SVC, "ta", "sel-ok", "w/sel", BOUND);
	expect(r, SVC, "tb", "sel-no", "", DENIED);
	expect(r, SVC, "tap", "sel-expr", "", DENIED);
	expect(r, SVC, "ta", "nosel", "", DENIED); /* no selector selects nothing */
	expect(r, SVC, "ta", "same-no", "", DENIED);
	expect(r, SVC, "w", "same-ok", "w/same", BOUND);
	/* relabelling the namespace re-evaluates its objects */
	load(r, obj("Namespace", "", "tb", "team: a"));
	expect(r, SVC, "tb", "sel-no", "w/sel", BOUND);
	wp_resolver_destroy(r);
}

static void test_gatewayclass_default(void **state)
{
	(void)state;
	struct wp_resolver *r = resolver();
	char y[8192];

	snprintf(y, sizeof(y),
	         "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n"
	         "  name: wl-class\n  labels:\n    istio.io/waypoint-for: workload\nspec:\n"
	         "  controllerName: example.com/x\n%s%s%s%s%s%s",
	         gw("n", "a", NULL, "wl-class", NULL), gw("n", "b", "service", "wl-class", NULL),
	         obj("Service", "n", "sa", "istio.io/use-waypoint: a"),
	         obj("Pod", "n", "pa", "istio.io/use-waypoint: a"),
	         obj("Service", "n", "sb", "istio.io/use-waypoint: b"),
	         obj("Pod", "n", "pb", "istio.io/use-waypoint: b"));
	load(r, y);
	/* not served (other class) and no status addresses: not ready */
	expect(r, SVC, "n", "sa", "", NOTREADY);
	expect(r, POD, "n", "pa", "", NOTREADY);
	wp_resolver_destroy(r);

	/* same with the class served and status addresses written by istiod */
	struct wp_served served = {.class_name = "wl-class"};
	r = wp_resolver_create(&served);
	load(r, y);
	/* the class label is the default... */
	expect(r, SVC, "n", "sa", "", UNSUP);
	expect(r, POD, "n", "pa", "n/a", BOUND);
	/* ...the Gateway's own label wins */
	expect(r, SVC, "n", "sb", "n/b", BOUND);
	expect(r, POD, "n", "pb", "", UNSUP);
	wp_resolver_destroy(r);
}

static void test_readiness_and_serving(void **state)
{
	(void)state;
	struct wp_served served = {.n_gateways = 1, .gateways = (const char *[]){"n/mine"}};
	struct wp_resolver *r = wp_resolver_create(&served);
	char y[8192];

	snprintf(y, sizeof(y),
	         "%s%sstatus:\n  addresses:\n  - type: Hostname\n    value: "
	         "istiod-ready.n.svc.cluster.local\n%s%s%s%s",
	         gw("n", "mine", NULL, "other", NULL), gw("n", "istiod-ready", NULL, NULL, NULL),
	         gw("n", "not-ready", NULL, NULL, NULL),
	         obj("Service", "n", "s1", "istio.io/use-waypoint: mine"),
	         obj("Service", "n", "s2", "istio.io/use-waypoint: istiod-ready"),
	         obj("Service", "n", "s3", "istio.io/use-waypoint: not-ready"));
	load(r, y);
	/* served here: ready even without status, whatever its class */
	expect(r, SVC, "n", "s1", "n/mine", BOUND);
	/* any Gateway with status.addresses is a waypoint (istiod) */
	expect(r, SVC, "n", "s2", "n/istiod-ready", BOUND);
	expect(r, SVC, "n", "s3", "", NOTREADY);
	/* a waypoint's own Service never has a waypoint */
	load(r, obj("Service", "n", "mine",
	            "gateway.istio.io/managed: istio.io-mesh-controller, istio.io/use-waypoint: "
	            "mine"));
	expect(r, SVC, "n", "mine", "", NONE);

	struct wp_snapshot *s = wp_resolver_build(r);
	assert_non_null(s);
	assert_int_equal(s->n_gateways, 1);
	assert_string_equal(s->gateways[0].name, "mine");
	assert_int_equal(s->n_services, 1); /* s2 is bound, but not to a Gateway we serve */
	assert_string_equal(s->services[0]->name, "s1");
	wp_snapshot_free(s);
	wp_resolver_destroy(r);
}

static const char *bookinfo =
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bi\n  labels:\n"
        "    istio.io/use-waypoint: waypoint\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: bi}\n"
        "spec:\n  clusterIP: 198.19.0.10\n  selector: {app: web}\n  ports:\n"
        "  - {name: http-web, port: 80, targetPort: http}\n"
        "  - {name: grpc, port: 90, targetPort: 9090, appProtocol: tcp}\n"
        "  - {name: other, port: 91, targetPort: 9091}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: bi}\n"
        "spec:\n  clusterIP: 198.19.0.11\n  ports:\n  - {name: mysql, port: 3306}\n"
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
        "  name: db-1\n  namespace: bi\n  labels: {kubernetes.io/service-name: db}\n"
        "addressType: IPv4\nports: [{name: mysql, port: 3307}]\nendpoints:\n"
        "- addresses: [198.18.1.50]\n  conditions: {ready: false}\n"
        "  targetRef: {kind: Pod, name: db-0, namespace: bi}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n  namespace: bi\n"
        "  labels: {app: web}\nspec:\n  serviceAccountName: web\n  containers:\n"
        "  - name: c\n    ports: [{name: http, containerPort: 8080}]\n"
        "status: {phase: Running, podIP: 198.18.1.10}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web-2\n  namespace: bi\n"
        "  labels: {app: web, istio.io/use-waypoint: wl}\nspec:\n  containers:\n"
        "  - name: c\n    ports: [{name: http, containerPort: 8081}]\n"
        "status: {phase: Running, podIP: 198.18.1.11}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata: {name: db-0, namespace: bi}\n"
        "spec: {serviceAccountName: db}\nstatus: {phase: Running, podIP: 198.18.1.50}\n";

static const struct wp_snap_dest *look(const struct wp_snapshot *s, const char *ipport)
{
	struct wp_sockaddr sa;

	assert_int_equal(wp_sockaddr_parse(ipport, &sa), 0);
	return wp_snapshot_lookup(s, &sa);
}

static void test_snapshot_contents(void **state)
{
	(void)state;
	struct wp_resolver *r = resolver();
	const struct wp_snap_dest *d;
	struct wp_snapshot *s, *s2;
	char y[8192];

	snprintf(y, sizeof(y), "%s%s%s", bookinfo, gw("bi", "waypoint", NULL, NULL, NULL),
	         gw("bi", "wl", "workload", NULL, NULL));
	load(r, y);
	s = wp_resolver_build(r);
	assert_non_null(s);
	assert_int_equal(s->version, 1);
	assert_int_equal(s->n_gateways, 2);
	assert_int_equal(s->n_services, 2);
	assert_int_equal(s->n_workloads, 1);

	d = look(s, "198.19.0.10:80");
	assert_non_null(d);
	assert_int_equal(d->kind, WP_DEST_SERVICE);
	assert_string_equal(d->svc->name, "web");
	assert_string_equal(d->svc->hostname, "web.bi.svc.cluster.local");
	assert_string_equal(s->gateways[d->gw].name, "waypoint");
	assert_int_equal(d->svc->ports[d->port_idx].proto, WP_PROTO_HTTP);
	/* named targetPort resolved per pod */
	assert_int_equal(d->svc->ports[d->port_idx].n_endpoints, 2);
	for (int i = 0; i < 2; i++) {
		const struct wp_snap_endpoint *e = &d->svc->ports[d->port_idx].endpoints[i];

		assert_int_equal(e->port, !strcmp(e->name, "web-1") ? 8080 : 8081);
		if (!strcmp(e->name, "web-1"))
			assert_string_equal(e->service_account, "web");
	}
	d = look(s, "198.19.0.10:90");
	assert_non_null(d);
	assert_int_equal(d->svc->ports[d->port_idx].proto, WP_PROTO_TCP); /* appProtocol wins */
	assert_int_equal(d->svc->ports[d->port_idx].endpoints[0].port, 9090);
	d = look(s, "198.19.0.10:91");
	assert_int_equal(d->svc->ports[d->port_idx].proto, WP_PROTO_UNKNOWN); /* sniff */
	/* EndpointSlice endpoints win over pods, with their own port */
	d = look(s, "198.19.0.11:3306");
	assert_non_null(d);
	assert_int_equal(d->svc->ports[0].n_endpoints, 1);
	assert_int_equal(d->svc->ports[0].endpoints[0].port, 3307);
	assert_false(d->svc->ports[0].endpoints[0].ready);
	assert_string_equal(d->svc->ports[0].endpoints[0].service_account, "db");
	/* workload: any port of the pod IP */
	d = look(s, "198.18.1.11:5555");
	assert_non_null(d);
	assert_int_equal(d->kind, WP_DEST_WORKLOAD);
	assert_string_equal(d->wl->name, "web-2");
	assert_string_equal(s->gateways[d->gw].name, "wl");
	/* not captured */
	assert_null(look(s, "198.19.0.10:81"));
	assert_null(look(s, "198.18.1.10:8080"));
	assert_null(look(s, "10.0.0.1:80"));

	/* incremental: relabel web-1 out of the service; db's block is shared */
	load(r, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-1\n  namespace: bi\n"
	        "  labels: {app: other}\nstatus: {phase: Running, podIP: 198.18.1.10}\n");
	s2 = wp_resolver_build(r);
	assert_non_null(s2);
	assert_int_equal(s2->version, 2);
	d = look(s2, "198.19.0.10:80");
	assert_int_equal(d->svc->ports[d->port_idx].n_endpoints, 1);
	assert_string_equal(d->svc->ports[d->port_idx].endpoints[0].name, "web-2");
	assert_ptr_equal(look(s2, "198.19.0.11:3306")->svc, look(s, "198.19.0.11:3306")->svc);
	assert_ptr_not_equal(look(s2, "198.19.0.10:80")->svc, look(s, "198.19.0.10:80")->svc);
	/* the old snapshot is untouched */
	d = look(s, "198.19.0.10:80");
	assert_int_equal(d->svc->ports[d->port_idx].n_endpoints, 2);
	wp_snapshot_free(s);
	/* deleting the service removes its destinations */
	assert_int_equal(wp_resolver_remove(r, WP_KIND_SERVICE, "bi", "web"), 0);
	s = wp_resolver_build(r);
	assert_null(look(s, "198.19.0.10:80"));
	assert_non_null(look(s, "198.19.0.11:3306"));
	wp_snapshot_free(s);
	wp_snapshot_free(s2);
	wp_resolver_destroy(r);
}

static void test_port_protocols(void **state)
{
	(void)state;
	assert_int_equal(wp_resolve_port_proto("http", NULL), WP_PROTO_HTTP);
	assert_int_equal(wp_resolve_port_proto("http-api", NULL), WP_PROTO_HTTP);
	assert_int_equal(wp_resolve_port_proto("http2-x", NULL), WP_PROTO_HTTP2);
	assert_int_equal(wp_resolve_port_proto("grpc", NULL), WP_PROTO_GRPC);
	assert_int_equal(wp_resolve_port_proto("grpc-web", NULL), WP_PROTO_HTTP);
	assert_int_equal(wp_resolve_port_proto("tcp-db", NULL), WP_PROTO_TCP);
	assert_int_equal(wp_resolve_port_proto("httpx", NULL), WP_PROTO_UNKNOWN);
	assert_int_equal(wp_resolve_port_proto("", NULL), WP_PROTO_UNKNOWN);
	assert_int_equal(wp_resolve_port_proto("tcp", "http"), WP_PROTO_HTTP);
	assert_int_equal(wp_resolve_port_proto("x", "kubernetes.io/h2c"), WP_PROTO_HTTP2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_seed_scenarios),
	        cmocka_unit_test(test_none),
	        cmocka_unit_test(test_use_waypoint_namespace),
	        cmocka_unit_test(test_traffic_type),
	        cmocka_unit_test(test_missing_gateway_no_fallback),
	        cmocka_unit_test(test_allowed_routes),
	        cmocka_unit_test(test_gatewayclass_default),
	        cmocka_unit_test(test_readiness_and_serving),
	        cmocka_unit_test(test_snapshot_contents),
	        cmocka_unit_test(test_port_protocols),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
