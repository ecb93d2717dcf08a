/*
 * Istio VirtualService compiled into route tables (cp/resolve/vs_compile.c
 * through the resolver and route_compile.c): binding by host, subset
 * weights, header / uri matches, rule order, rewrite, redirect, headers,
 * timeouts and retries, mirrors, HTTPRoute conflicts (HTTPRoute wins, counted),
 * unsupported fields (rule left out, file:line), fault injection (delay
 * and abort compiled into the rule; bad values leave it out with
 * file:line), and rebuilds on an edit.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <llhttp.h>

#include "route_compile.h"
#include "wp/addr.h"
#include "wp/counters.h"
#include "wp/model.h"
#include "wp/resolve.h"
#include "wp/route.h"
#include "wp/snapshot.h"
#include "wp/source.h"

static const char base[] =
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n  labels:\n"
        "    istio.io/use-waypoint: wp\n"
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n"
        "  name: wp\n  namespace: bookinfo\nspec:\n  gatewayClassName: istio-waypoint\n"
        "  listeners:\n  - {name: mesh, port: 15008, protocol: HBONE}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\n  namespace: bookinfo\n"
        "spec:\n  clusterIP: 198.19.0.10\n  selector: {app: reviews}\n"
        "  ports: [{name: http, port: 9080, targetPort: 9080}]\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ratings\n  namespace: bookinfo\n"
        "  labels: {istio.io/use-waypoint: none}\nspec:\n  clusterIP: 198.19.0.11\n"
        "  selector: {app: ratings}\n  ports: [{name: http, port: 9080, targetPort: 9080}]\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: r1\n  namespace: bookinfo\n"
        "  labels: {app: reviews, version: v1}\nspec:\n  serviceAccountName: reviews\n"
        "status:\n  phase: Running\n  podIP: 198.18.1.1\n"
        "  conditions: [{type: Ready, status: \"True\"}]\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: r2\n  namespace: bookinfo\n"
        "  labels: {app: reviews, version: v2}\nspec:\n  serviceAccountName: reviews\n"
        "status:\n  phase: Running\n  podIP: 198.18.1.2\n"
        "  conditions: [{type: Ready, status: \"True\"}]\n"
        "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
        "  name: reviews\n  namespace: bookinfo\nspec:\n  host: reviews\n"
        "  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]\n";

/* The VirtualService header every case shares (document line 1). */
#define VS_HEAD                                                                                    \
	"apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\n"   \
	"  namespace: bookinfo\nspec:\n  hosts: [reviews]\n  http:\n"

struct fx {
	struct wp_resolver *r;
	struct wp_snapshot *s;
	const struct wp_route_table *t;
};

static void load(struct wp_resolver *r, const char *origin, const char *yaml)
{
	assert_true(wp_source_deliver_text(wp_resolver_sink(r), origin, yaml, strlen(yaml)) > 0);
}

static const struct wp_route_table *table(const struct wp_snapshot *s)
{
	struct wp_sockaddr sa;
	const struct wp_snap_dest *d;

	assert_int_equal(wp_sockaddr_parse("198.19.0.10:9080", &sa), 0);
	d = wp_snapshot_lookup(s, &sa);
	assert_non_null(d);
	assert_non_null(d->svc->ports[d->port_idx].routes);
	return d->svc->ports[d->port_idx].routes;
}

static void rebuild(struct fx *f)
{
	if (f->s)
		wp_snapshot_free(f->s);
	f->s = wp_resolver_build(f->r);
	assert_non_null(f->s);
	f->t = table(f->s);
	for (uint32_t i = 0; i < f->t->n_errors; i++)
		print_message("table error: %s\n", f->t->errors[i]);
}

static void setup(struct fx *f, const char *vs)
{
	static const struct wp_served served = {.class_name = "istio-waypoint"};

	memset(f, 0, sizeof(*f));
	f->r = wp_resolver_create(&served);
	assert_non_null(f->r);
	load(f->r, "base.yaml", base);
	if (vs)
		load(f->r, "vs.yaml", vs);
	rebuild(f);
}

static void teardown(struct fx *f)
{
	wp_snapshot_free(f->s);
	wp_resolver_destroy(f->r);
}

static bool has_error(const struct wp_route_table *t, const char *needle)
{
	for (uint32_t i = 0; i < t->n_errors; i++)
		if (strstr(t->errors[i], needle))
			return true;
	return false;
}

/* Selects for GET <target> with one optional header; returns the status
 * (0 forwarded, -ENOENT no rule) and fills d. */
static int sel(const struct wp_route_table *t, const char *target, const char *hname,
               const char *hvalue, struct wp_route_decision *d, uint64_t seed)
{
	static uint64_t ctr[WP_CTR_MAX];
	struct wp_route_core core;
	struct wp_http_hdr h = {.name = hname,
	                        .name_len = (uint16_t)(hname ? strlen(hname) : 0),
	                        .value = hvalue,
	                        .value_len = (uint32_t)(hvalue ? strlen(hvalue) : 0)};
	size_t pl = strcspn(target, "?");
	struct wp_route_req q = {.target = target,
	                         .target_len = (uint32_t)strlen(target),
	                         .path_len = (uint32_t)pl,
	                         .method = HTTP_GET,
	                         .hdrs = &h,
	                         .n_hdrs = hname ? 1 : 0};
	int rc;

	wp_route_core_init(&core, seed, ctr);
	assert_int_equal(wp_route_core_reserve(&core, t), 0);
	rc = wp_route_select(t, &core, &q, d);
	wp_route_core_fini(&core);
	return rc;
}

/* The subset (or "-" for the whole service) a request goes to. */
static const char *subset_for(const struct wp_route_table *t, const char *target, const char *hname,
                              const char *hvalue)
{
	struct wp_route_decision d;

	assert_int_equal(sel(t, target, hname, hvalue, &d, 7), 0);
	assert_non_null(d.cluster);
	return d.cluster->subset ? d.cluster->subset : "-";
}

static void test_subset_weights(void **state)
{
	struct fx f;
	struct wp_route_decision d;
	static uint64_t ctr[WP_CTR_MAX];
	struct wp_route_core core;
	struct wp_route_req q = {.target = "/", .target_len = 1, .path_len = 1, .method = HTTP_GET};
	uint32_t v1 = 0, n = 20000;

	(void)state;
	setup(&f, VS_HEAD "  - route:\n"
	                  "    - destination: {host: reviews, subset: v1}\n      weight: 80\n"
	                  "    - destination: {host: reviews, subset: v2}\n      weight: 20\n");
	assert_int_equal(f.t->source, WP_ROUTE_SRC_VIRTUALSERVICE);
	assert_int_equal(f.t->n_errors, 0);
	assert_int_equal(f.t->n_matches, 1);
	assert_true(f.t->rules[0].flags & WP_ROUTE_F_VS);
	assert_int_equal(f.t->rules[0].total_weight, 100);
	/* the subsets are clusters of one endpoint each: reachable now */
	assert_int_equal(wp_route_cluster_find(f.t, "bookinfo", "reviews", 9080, "v1")->n_endpoints,
	                 1);
	assert_int_equal(wp_route_cluster_find(f.t, "bookinfo", "reviews", 9080, "v2")->n_endpoints,
	                 1);
	wp_route_core_init(&core, 42, ctr);
	for (uint32_t i = 0; i < n; i++) {
		assert_int_equal(wp_route_select(f.t, &core, &q, &d), 0);
		assert_non_null(d.cluster->subset);
		v1 += !strcmp(d.cluster->subset, "v1");
	}
	wp_route_core_fini(&core);
	/* 80% of 20000 = 16000; binomial sd ~57: 6 sd */
	assert_in_range(v1, 16000 - 340, 16000 + 340);
	teardown(&f);
}

static void test_header_and_uri_match(void **state)
{
	struct fx f;
	struct wp_route_decision d;

	(void)state;
	setup(&f, VS_HEAD "  - match:\n    - headers: {end-user: {exact: jason}}\n"
	                  "    route: [{destination: {host: reviews, subset: v2}}]\n"
	                  "  - match:\n    - headers: {X-Canary: {prefix: 'yes'}}\n"
	                  "    - headers: {x-any: {}}\n"
	                  "    route: [{destination: {host: reviews, subset: v2}}]\n"
	                  "  - match:\n    - uri: {regex: '/api/v[0-9]+/.*'}\n"
	                  "    route: [{destination: {host: ratings}}]\n"
	                  "  - match:\n    - uri: {prefix: /rev}\n      queryParams: {u: {exact: "
	                  "'1'}}\n"
	                  "    route: [{destination: {host: ratings.bookinfo.svc.cluster.local, "
	                  "port: {number: 9080}}}]\n"
	                  "  - route: [{destination: {host: reviews, subset: v1}}]\n");
	assert_int_equal(f.t->n_errors, 0);
	assert_string_equal(subset_for(f.t, "/reviews/1", "end-user", "jason"), "v2");
	assert_string_equal(subset_for(f.t, "/reviews/1", "end-user", "bob"), "v1");
	assert_string_equal(subset_for(f.t, "/reviews/1", "x-canary", "yes-please"), "v2");
	assert_string_equal(subset_for(f.t, "/reviews/1", "x-canary", "no"), "v1");
	assert_string_equal(subset_for(f.t, "/reviews/1", "x-any", ""), "v2");
	assert_int_equal(sel(f.t, "/api/v2/x", NULL, NULL, &d, 1), 0);
	assert_string_equal(d.cluster->svc_name, "ratings");
	assert_int_equal(sel(f.t, "/api/vx/x", NULL, NULL, &d, 1), 0);
	assert_string_equal(d.cluster->svc_name, "reviews");
	/* an Envoy prefix is a string prefix, not a path segment one */
	assert_int_equal(sel(f.t, "/reviewsX?u=1", NULL, NULL, &d, 1), 0);
	assert_string_equal(d.cluster->svc_name, "ratings");
	assert_int_equal(sel(f.t, "/reviews?u=2", NULL, NULL, &d, 1), 0);
	assert_string_equal(d.cluster->svc_name, "reviews");
	teardown(&f);
}

/* First match wins: a catch-all before an exact rule shadows it (HTTPRoute
 * precedence would pick the exact one). No match at all: -ENOENT (404). */
static void test_order(void **state)
{
	struct fx f;
	struct wp_route_decision d;

	(void)state;
	setup(&f, VS_HEAD "  - match: [{uri: {prefix: /}}]\n"
	                  "    route: [{destination: {host: reviews, subset: v1}}]\n"
	                  "  - match: [{uri: {exact: /reviews/1}}]\n"
	                  "    route: [{destination: {host: reviews, subset: v2}}]\n");
	assert_string_equal(subset_for(f.t, "/reviews/1", NULL, NULL), "v1");
	teardown(&f);
	setup(&f, VS_HEAD "  - match: [{uri: {exact: /reviews/1}}]\n"
	                  "    route: [{destination: {host: reviews, subset: v2}}]\n"
	                  "  - match: [{uri: {prefix: /}, port: 9080}]\n"
	                  "    route: [{destination: {host: reviews, subset: v1}}]\n"
	                  "  - match: [{port: 9999}]\n"
	                  "    route: [{destination: {host: ratings}}]\n");
	assert_string_equal(subset_for(f.t, "/reviews/1", NULL, NULL), "v2");
	assert_string_equal(subset_for(f.t, "/reviews/2", NULL, NULL), "v1");
	assert_int_equal(f.t->n_rules, 3); /* port 9999's rule is not on 9080 */
	teardown(&f);
	setup(&f, VS_HEAD "  - match: [{uri: {exact: /only}}]\n"
	                  "    route: [{destination: {host: reviews}}]\n");
	assert_int_equal(sel(f.t, "/other", NULL, NULL, &d, 1), -ENOENT);
	teardown(&f);
}

static void test_rewrite_redirect_headers(void **state)
{
	struct fx f;
	struct wp_route_decision d;
	struct wp_route_req q = {.target = "/old/1?q", .target_len = 8, .path_len = 6};
	const struct wp_route_rule *r;
	char buf[128];
	int n;

	(void)state;
	setup(&f, VS_HEAD "  - match: [{uri: {prefix: /old}}]\n"
	                  "    rewrite: {uri: /new, authority: ratings.example}\n"
	                  "    headers:\n      request: {set: {x-a: '1'}, add: {x-b: '2'}, "
	                  "remove: [x-c]}\n"
	                  "      response: {set: {x-r: '3'}}\n"
	                  "    timeout: 1.5s\n"
	                  "    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "
	                  "'connect-failure,503,5xx,reset,gateway-error,retriable-4xx,internal,"
	                  "deadline-exceeded,resource-exhausted,envoy-ratelimited'}\n"
	                  "    mirror: {host: ratings}\n    mirrorPercentage: {value: 50}\n"
	                  "    route: [{destination: {host: reviews}}]\n"
	                  "  - match: [{uri: {exact: /go}}]\n"
	                  "    redirect: {uri: /gone, authority: a.example}\n"
	                  "  - match: [{uri: {exact: /noretry}}]\n"
	                  "    retries: {perTryTimeout: 1s}\n"
	                  "    route: [{destination: {host: reviews}}]\n"
	                  "  - match: [{uri: {exact: /default}}]\n"
	                  "    route: [{destination: {host: reviews}}]\n");
	r = &f.t->rules[0];
	assert_true(r->flags & WP_ROUTE_F_REWRITE);
	assert_int_equal(r->rewrite.type, WP_ROUTE_REWRITE_PREFIX);
	assert_int_equal(sel(f.t, "/old/1?q", NULL, NULL, &d, 1), 0);
	n = wp_route_rewrite_target(&d, &q, buf, sizeof(buf));
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "/new/1?q", 8);
	/* the authority is a `set host`, then the request's own sets */
	assert_int_equal(r->req_mods.n_set, 2);
	assert_string_equal(r->req_mods.set[0].name, "host");
	assert_string_equal(r->req_mods.set[0].value, "ratings.example");
	assert_string_equal(r->req_mods.set[1].name, "x-a");
	assert_int_equal(r->req_mods.n_add, 1);
	assert_int_equal(r->req_mods.n_remove, 1);
	assert_int_equal(r->resp_mods.n_set, 1);
	assert_int_equal(r->request_timeout_ms, 1500);
	assert_int_equal(r->backend_timeout_ms, 500);
	assert_int_equal(r->retry.attempts, 3);
	assert_int_equal(r->retry.on, WP_ROUTE_RETRY_CONNECT_FAILURE | WP_ROUTE_RETRY_5XX |
	                                      WP_ROUTE_RETRY_RESET | WP_ROUTE_RETRY_GATEWAY_ERROR |
	                                      WP_ROUTE_RETRY_RETRIABLE_4XX |
	                                      WP_ROUTE_RETRY_INTERNAL | WP_ROUTE_RETRY_DEADLINE |
	                                      WP_ROUTE_RETRY_RES_EXHAUSTED);
	assert_int_equal(r->retry.n_codes, 1);
	assert_int_equal(r->retry.codes[0], 503);
	assert_int_equal(r->n_mirrors, 1);
	assert_int_equal(r->mirrors[0].per_million, 500000);
	/* a condition the table has no place for: reported as not applied, counted */
	assert_false(has_error(f.t, "retryOn 5xx is not applied"));
	assert_true(has_error(f.t, "retryOn envoy-ratelimited is not applied"));
	assert_int_equal(f.t->n_vs_not_applied, 1);
	/* the prefix with a rewrite is segment-aware: said so */
	assert_true(has_error(f.t, "matches at a path segment boundary only"));
	r = &f.t->rules[1];
	assert_true(r->flags & WP_ROUTE_F_REDIRECT);
	assert_int_equal(r->redirect.status, 301);
	assert_string_equal(r->redirect.hostname, "a.example");
	assert_string_equal(r->redirect.path.value, "/gone");
	assert_int_equal(sel(f.t, "/go", NULL, NULL, &d, 1), 0);
	assert_int_equal(d.status, 301);
	/* retries without attempts disable retrying, per-try timeout included
	 * (as istiod converts them); no retries at all: Istio's default */
	r = &f.t->rules[2];
	assert_int_equal(r->retry.attempts, 0);
	assert_int_equal(r->retry.on, 0);
	assert_int_equal(r->backend_timeout_ms, 0);
	r = &f.t->rules[3];
	assert_int_equal(r->retry.attempts, 2);
	assert_int_equal(r->retry.on,
	                 WP_ROUTE_RETRY_CONNECT_FAILURE | WP_ROUTE_RETRY_REFUSED_STREAM |
	                         WP_ROUTE_RETRY_UNAVAILABLE | WP_ROUTE_RETRY_CANCELLED);
	assert_int_equal(r->retry.n_codes, 1);
	assert_int_equal(r->retry.codes[0], 503);
	assert_int_equal(r->request_timeout_ms, 0);
	teardown(&f);
}

/* An HTTPRoute on the same Service port wins: the VirtualService is set
 * aside, reported and counted. */
static void test_conflict_with_httproute(void **state)
{
	struct fx f;
	uint64_t conflicts, not_applied;

	(void)state;
	setup(&f, VS_HEAD "  - route: [{destination: {host: reviews, subset: v2}}]\n");
	wp_resolver_take_vs_warnings(f.r, &conflicts, &not_applied);
	assert_int_equal(conflicts, 0);
	load(f.r, "route.yaml",
	     "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
	     "  name: reviews-hr\n  namespace: bookinfo\nspec:\n"
	     "  parentRefs: [{kind: Service, group: '', name: reviews, port: 9080}]\n"
	     "  rules: [{backendRefs: [{name: ratings, port: 9080}]}]\n");
	rebuild(&f);
	assert_int_equal(f.t->source, WP_ROUTE_SRC_HTTPROUTE);
	assert_int_equal(f.t->n_vs_conflicts, 1);
	assert_true(has_error(f.t, "vs.yaml:1: VirtualService bookinfo/reviews: spec.hosts: not "
	                           "applied to Service bookinfo/reviews port 9080: HTTPRoute "
	                           "bookinfo/reviews-hr binds it and wins"));
	assert_string_equal(subset_for(f.t, "/", NULL, NULL), "-");
	wp_resolver_take_vs_warnings(f.r, &conflicts, &not_applied);
	assert_int_equal(conflicts, 1);
	/* the route goes: the VirtualService applies again */
	assert_int_equal(wp_resolver_remove(f.r, WP_KIND_HTTPROUTE, "bookinfo", "reviews-hr"), 0);
	rebuild(&f);
	assert_int_equal(f.t->source, WP_ROUTE_SRC_VIRTUALSERVICE);
	assert_string_equal(subset_for(f.t, "/", NULL, NULL), "v2");
	teardown(&f);
}

/* Unsupported match fields leave the rule out with file:line; a fault is
 * compiled into its rule (nothing reported, nothing counted). */
static void test_unsupported_and_fault(void **state)
{
	struct fx f;
	uint64_t conflicts, not_applied;
	const struct wp_route_fault *ft;

	(void)state;
	setup(&f, VS_HEAD "  - match:\n    - sourceLabels: {app: productpage}\n"
	                  "    route: [{destination: {host: reviews, subset: v2}}]\n"
	                  "  - match: [{method: {regex: 'GET|HEAD'}}]\n"
	                  "    route: [{destination: {host: reviews, subset: v2}}]\n"
	                  "  - corsPolicy: {allowOrigins: [{exact: '*'}]}\n"
	                  "    route: [{destination: {host: reviews, subset: v2}}]\n"
	                  "  - fault: {abort: {httpStatus: 503, percentage: {value: 30}}}\n"
	                  "    route: [{destination: {host: reviews, subset: v1}}]\n");
	assert_true(has_error(f.t, "vs.yaml:10: VirtualService bookinfo/reviews: "
	                           "spec.http[0].match[0]: sourceLabels is not supported; the "
	                           "rule is left out"));
	assert_true(has_error(f.t, "vs.yaml:12: VirtualService bookinfo/reviews: "
	                           "spec.http[1].match[0].method: only an exact"));
	assert_true(has_error(f.t, "vs.yaml:14: VirtualService bookinfo/reviews: spec.http[2]: "
	                           "corsPolicy is not supported"));
	assert_false(has_error(f.t, "spec.http[3]"));
	assert_int_equal(f.t->n_errors, 3);
	assert_int_equal(f.t->n_rules, 2); /* the fault rule and the default */
	assert_int_equal(f.t->n_vs_not_applied, 0);
	ft = &f.t->rules[0].fault;
	assert_true(ft->abort);
	assert_false(ft->delay);
	assert_int_equal(ft->abort_status, 503);
	assert_int_equal(ft->abort_ppm, 300000);
	assert_false(f.t->rules[1].fault.abort || f.t->rules[1].fault.delay);
	assert_string_equal(subset_for(f.t, "/", NULL, NULL), "v1");
	wp_resolver_take_vs_warnings(f.r, &conflicts, &not_applied);
	assert_int_equal(not_applied, 0);
	teardown(&f);
}

/* Fault values as istiod converts them: percentage per million (truncated),
 * the deprecated integer percent of a delay, no percentage at all (0 %, as
 * Envoy reads a missing one), a gRPC status name to its code. */
static void test_fault_values(void **state)
{
	struct fx f;
	const struct wp_route_fault *ft;

	(void)state;
	setup(&f,
	      VS_HEAD "  - match: [{uri: {prefix: /a}}]\n"
	              "    fault:\n      delay: {fixedDelay: 300ms, percentage: {value: 12.5}}\n"
	              "      abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.1}}\n"
	              "    route: [{destination: {host: reviews, subset: v1}}]\n"
	              "  - match: [{uri: {prefix: /b}}]\n"
	              "    fault: {delay: {fixedDelay: 1.5s, percent: 40}}\n"
	              "    route: [{destination: {host: reviews, subset: v1}}]\n"
	              "  - match: [{uri: {prefix: /c}}]\n"
	              "    fault: {abort: {httpStatus: 200}, delay: {fixedDelay: 2s}}\n"
	              "    route: [{destination: {host: reviews, subset: v1}}]\n");
	assert_int_equal(f.t->n_errors, 0);
	assert_int_equal(f.t->n_rules, 4);
	ft = &f.t->rules[0].fault;
	assert_true(ft->delay && ft->abort);
	assert_int_equal(ft->delay_ms, 300);
	assert_int_equal(ft->delay_ppm, 125000);
	assert_int_equal(ft->abort_status, 0);
	assert_int_equal(ft->abort_grpc, 14);
	assert_int_equal(ft->abort_ppm, 1000);
	ft = &f.t->rules[1].fault;
	assert_true(ft->delay && !ft->abort);
	assert_int_equal(ft->delay_ms, 1500);
	assert_int_equal(ft->delay_ppm, 400000);
	ft = &f.t->rules[2].fault;
	assert_true(ft->delay && ft->abort);
	assert_int_equal(ft->delay_ppm, 0);
	assert_int_equal(ft->abort_ppm, 0);
	assert_int_equal(ft->abort_status, 200);
	teardown(&f);
}

/* Bad fault values leave the rule out, each with its file:line. */
static void test_fault_errors(void **state)
{
	static const struct {
		const char *fault, *err;
	} bad[] = {
	        {"{abort: {httpStatus: 600, percentage: {value: 1}}}",
	         "spec.http[0].fault.abort: httpStatus must be 200..599, got 600"},
	        {"{abort: {httpStatus: 199}}",
	         "spec.http[0].fault.abort: httpStatus must be 200..599, got 199"},
	        {"{abort: {grpcStatus: UNAVAILABLES}}",
	         "spec.http[0].fault.abort: grpcStatus \"UNAVAILABLES\" is not a gRPC status"},
	        {"{abort: {httpStatus: 503, grpcStatus: UNAVAILABLE}}",
	         "spec.http[0].fault.abort: exactly one of httpStatus and grpcStatus"},
	        {"{abort: {percentage: {value: 10}}}",
	         "spec.http[0].fault.abort: exactly one of httpStatus and grpcStatus"},
	        {"{abort: {httpStatus: 503, percentage: {value: -1}}}",
	         "spec.http[0].fault.abort: percentage must be 0..100, got -1"},
	        {"{delay: {fixedDelay: 1s, percentage: {value: 100.5}}}",
	         "spec.http[0].fault.delay: percentage must be 0..100, got 100.5"},
	        {"{delay: {fixedDelay: 1s, percentage: {value: ten}}}",
	         "spec.http[0].fault.delay: percentage must be 0..100, got ten"},
	        {"{delay: {fixedDelay: 1s, percent: 101}}",
	         "spec.http[0].fault.delay: percent must be 0..100, got 101"},
	        {"{delay: {fixedDelay: 5parsecs}}",
	         "spec.http[0].fault.delay: fixedDelay must be a duration of 1ms or more, got "
	         "5parsecs"},
	        {"{delay: {fixedDelay: 0s}}",
	         "spec.http[0].fault.delay: fixedDelay must be a duration of 1ms or more"},
	        {"{delay: {percentage: {value: 5}}}",
	         "spec.http[0].fault.delay: fixedDelay must be a duration of 1ms or more, got "
	         "none"},
	        {"{delay: {exponentialDelay: 1s}}",
	         "spec.http[0].fault.delay: exponentialDelay is not supported"},
	        {"{abort: {http2Error: 7}}",
	         "spec.http[0].fault.abort: http2Error is not supported"},
	        {"{}", "spec.http[0].fault: a fault needs a delay, an abort or both"},
	};
	struct fx f;
	char y[512], e[256];

	(void)state;
	for (size_t i = 0; i < WP_ARRAY_SIZE(bad); i++) {
		snprintf(y, sizeof(y),
		         VS_HEAD "  - fault: %s\n"
		                 "    route: [{destination: {host: reviews, subset: v1}}]\n",
		         bad[i].fault);
		setup(&f, y);
		print_message("%s\n", bad[i].fault);
		snprintf(e, sizeof(e), "vs.yaml:9: VirtualService bookinfo/reviews: %s",
		         bad[i].err);
		assert_true(has_error(f.t, e));
		assert_int_equal(f.t->n_rules, 1); /* left out: the default only */
		teardown(&f);
	}
}

/* Binding: short name, name.ns and FQDN; another namespace needs the FQDN;
 * gateways without "mesh" do not bind. An edit rebuilds the table. */
static void test_binding_and_edit(void **state)
{
	static const char *const hosts[][2] = {
	        {"bookinfo", "reviews"},
	        {"bookinfo", "reviews.bookinfo"},
	        {"bookinfo", "reviews.bookinfo.svc.cluster.local"},
	        {"other", "reviews.bookinfo.svc.cluster.local"},
	        {"other", "reviews"},
	        {"bookinfo", "reviews.other"},
	        {"bookinfo", "*.bookinfo.svc.cluster.local"},
	};
	static const bool binds[] = {true, true, true, true, false, false, false};
	struct fx f;
	char y[1024];

	(void)state;
	for (size_t i = 0; i < WP_ARRAY_SIZE(hosts); i++) {
		snprintf(y, sizeof(y),
		         "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
		         "  name: v\n  namespace: %s\nspec:\n  hosts: ['%s']\n  http:\n"
		         "  - route: [{destination: {host: reviews.bookinfo.svc.cluster.local, "
		         "subset: v2}}]\n",
		         hosts[i][0], hosts[i][1]);
		setup(&f, y);
		print_message("%s in %s\n", hosts[i][1], hosts[i][0]);
		assert_int_equal(f.t->source,
		                 binds[i] ? WP_ROUTE_SRC_VIRTUALSERVICE : WP_ROUTE_SRC_NONE);
		teardown(&f);
	}
	setup(&f, VS_HEAD "  - route: [{destination: {host: reviews, subset: v2}}]\n");
	assert_string_equal(subset_for(f.t, "/", NULL, NULL), "v2");
	load(f.r, "vs.yaml", VS_HEAD "  - route: [{destination: {host: reviews, subset: v1}}]\n");
	rebuild(&f);
	assert_string_equal(subset_for(f.t, "/", NULL, NULL), "v1");
	load(f.r, "vs.yaml",
	     "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n"
	     "  name: reviews\n  namespace: bookinfo\nspec:\n  hosts: [reviews]\n"
	     "  gateways: [bookinfo/ingress]\n"
	     "  http: [{route: [{destination: {host: reviews, subset: v1}}]}]\n");
	rebuild(&f);
	assert_int_equal(f.t->source, WP_ROUTE_SRC_NONE);
	teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_subset_weights),
	        cmocka_unit_test(test_header_and_uri_match),
	        cmocka_unit_test(test_order),
	        cmocka_unit_test(test_rewrite_redirect_headers),
	        cmocka_unit_test(test_conflict_with_httproute),
	        cmocka_unit_test(test_unsupported_and_fault),
	        cmocka_unit_test(test_fault_values),
	        cmocka_unit_test(test_fault_errors),
	        cmocka_unit_test(test_binding_and_edit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
