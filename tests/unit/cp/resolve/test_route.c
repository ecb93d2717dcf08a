/*
 * Route tables in snapshots (cp/resolve/snap_build.c + route_compile.c): a
 * captured service port carries its compiled HTTPRoutes and DestinationRule
 * clusters, compile errors join the snapshot's errors, and the tables are
 * rebuilt when a route, a DestinationRule or a backend's endpoints change.
 * Also the model's creationTimestamp parsing.
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

static void load(struct wp_resolver *r, const char *yaml)
{
	int n = wp_source_deliver_text(wp_resolver_sink(r), "test.yaml", yaml, strlen(yaml));

	assert_true(n > 0);
}

static const char base[] =
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n  labels:\n"
        "    istio.io/use-waypoint: wp\n"
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n"
        "  name: wp\n  namespace: bookinfo\nspec:\n  gatewayClassName: istio-waypoint\n"
        "  listeners:\n  - {name: mesh, port: 15008, protocol: HBONE}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\n  namespace: bookinfo\n"
        "spec:\n  clusterIP: 198.19.0.10\n  selector: {app: reviews}\n"
        "  ports: [{name: http, port: 9080, targetPort: 9080}]\n"
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: reviews-v2\n"
        "  namespace: bookinfo\n  labels: {istio.io/use-waypoint: none}\nspec:\n"
        "  clusterIP: 198.19.0.11\n  selector: {app: reviews, version: v2}\n"
        "  ports: [{name: http, port: 9080, targetPort: 9080}]\n";

static const char *pod(const char *name, const char *version, const char *ip)
{
	static char b[4][768];
	static int i;
	char *p = b[i++ % 4];

	snprintf(p, 768,
	         "apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: bookinfo\n"
	         "  labels: {app: reviews, version: %s}\nspec:\n  serviceAccountName: reviews\n"
	         "status:\n  phase: Running\n  podIP: %s\n"
	         "  conditions: [{type: Ready, status: \"True\"}]\n",
	         name, version, ip);
	return p;
}

static const char route[] =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
        "  name: reviews\n  namespace: bookinfo\nspec:\n"
        "  parentRefs: [{kind: Service, group: '', name: reviews, port: 9080}]\n"
        "  rules:\n"
        "  - matches: [{headers: [{name: end-user, value: jason}]}]\n"
        "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
        "  - matches: [{path: {type: RegularExpression, value: '(unclosed'}}]\n"
        "    backendRefs: [{name: reviews, port: 9080}]\n"
        "  - backendRefs: [{name: reviews, port: 9080}]\n";

static const struct wp_route_table *table(const struct wp_snapshot *s)
{
	struct wp_sockaddr sa;
	const struct wp_snap_dest *d;

	assert_int_equal(wp_sockaddr_parse("198.19.0.10:9080", &sa), 0);
	d = wp_snapshot_lookup(s, &sa);
	assert_non_null(d);
	assert_int_equal(d->kind, WP_DEST_SERVICE);
	assert_non_null(d->svc->ports[d->port_idx].routes);
	return d->svc->ports[d->port_idx].routes;
}

static const char *pick_for(const struct wp_route_table *t, const char *user)
{
	static uint64_t ctr[WP_CTR_MAX];
	struct wp_route_core core;
	struct wp_route_decision d;
	struct wp_http_hdr h = {.name = "end-user", .name_len = 8, .value = user};
	struct wp_route_req q = {.target = "/reviews/1",
	                         .target_len = 10,
	                         .path_len = 10,
	                         .method = HTTP_GET,
	                         .hdrs = &h,
	                         .n_hdrs = user ? 1 : 0};

	h.value_len = user ? (uint32_t)strlen(user) : 0;
	wp_route_core_init(&core, 1, ctr);
	assert_int_equal(wp_route_select(t, &core, &q, &d), 0);
	wp_route_core_fini(&core);
	assert_non_null(d.cluster);
	return d.cluster->svc_name;
}

static void test_snapshot_routes(void **state)
{
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct wp_resolver *r = wp_resolver_create(&served);
	const struct wp_route_table *t;
	const struct wp_route_cluster *v2;
	struct wp_snapshot *s1, *s2, *s3, *s4;
	bool err_seen = false;

	(void)state;
	assert_non_null(r);
	load(r, base);
	load(r, pod("r1", "v1", "198.18.1.1"));
	load(r, pod("r2", "v2", "198.18.1.2"));
	s1 = wp_resolver_build(r);
	assert_non_null(s1);
	t = table(s1);
	assert_int_equal(t->n_matches, 0); /* no route: the service itself */
	assert_int_equal(t->clusters[t->default_cluster].n_endpoints, 2);

	load(r, route);
	s2 = wp_resolver_build(r);
	assert_non_null(s2);
	t = table(s2);
	assert_int_equal(t->n_matches, 2); /* the regex rule was rejected */
	assert_string_equal(pick_for(t, "jason"), "reviews-v2");
	assert_string_equal(pick_for(t, "bob"), "reviews");
	for (uint32_t i = 0; i < s2->n_errors; i++)
		if (print_message("snapshot error: %s\n", s2->errors[i]),
		    strstr(s2->errors[i], "test.yaml:11: HTTPRoute bookinfo/reviews: "
		                          "spec.rules[1].matches[0].path: regular expression"))
			err_seen = true;
	assert_true(err_seen);
	v2 = wp_route_cluster_find(t, "bookinfo", "reviews-v2", 9080, NULL);
	assert_non_null(v2);
	assert_int_equal(v2->n_endpoints, 1);
	assert_int_equal(v2->lb->policy, WP_LB_LEAST_REQUEST);

	/* a new v2 pod: reviews-v2 is not captured, but reviews' table routes
	 * to it and must be rebuilt */
	load(r, pod("r3", "v2", "198.18.1.3"));
	s3 = wp_resolver_build(r);
	assert_non_null(s3);
	v2 = wp_route_cluster_find(table(s3), "bookinfo", "reviews-v2", 9080, NULL);
	assert_int_equal(v2->n_endpoints, 2);

	/* a DestinationRule with subsets changes the policy */
	load(r, "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
	        "  name: reviews-v2\n  namespace: bookinfo\nspec:\n  host: reviews-v2\n"
	        "  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n"
	        "  subsets: [{name: only3, labels: {version: v2}}]\n");
	s4 = wp_resolver_build(r);
	assert_non_null(s4);
	t = table(s4);
	v2 = wp_route_cluster_find(t, "bookinfo", "reviews-v2", 9080, NULL);
	assert_int_equal(v2->lb->policy, WP_LB_ROUND_ROBIN);
	assert_non_null(wp_route_cluster_find(t, "bookinfo", "reviews-v2", 9080, "only3"));
	wp_snapshot_free(s1);
	wp_snapshot_free(s2);
	wp_snapshot_free(s3);
	wp_snapshot_free(s4);
	wp_resolver_destroy(r);
}

static void test_creation_timestamp(void **state)
{
	static const struct {
		const char *v;
		int64_t want;
		bool ok;
	} cases[] = {
	        {"1970-01-01T00:00:00Z", 0, true},
	        {"2024-05-01T10:20:30Z", 1714558830, true},
	        {"2024-05-01T10:20:30.123Z", 1714558830, true},
	        {"2024-05-01T12:20:30+02:00", 1714558830, true},
	        {"2000-02-29T00:00:00Z", 951782400, true},
	        {"null", 0, true},
	        {"yesterday", 0, false},
	        {"2024-13-01T00:00:00Z", 0, false},
	        /* found by fuzz_manifest: signs and blanks that %u takes */
	        {"\"-001-01-01T00:00:00Z\"", 0, false},
	        {"\"2024-+1-01T00:00:00Z\"", 0, false},
	        {"\" 024-01-01T00:00:00Z\"", 0, false},
	};

	(void)state;
	for (size_t i = 0; i < WP_ARRAY_SIZE(cases); i++) {
		char y[512], err[WP_MODEL_ERRLEN];
		struct wp_obj *o;

		snprintf(y, sizeof(y),
		         "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n"
		         "  creationTimestamp: %s\n",
		         cases[i].v);
		o = wp_model_parse_one(y, strlen(y), "ts.yaml", err, sizeof(err));
		if (!cases[i].ok) {
			assert_null(o);
			assert_non_null(
			        strstr(err, "ts.yaml:5: Namespace n: metadata.creationTimestamp"));
			continue;
		}
		assert_non_null(o);
		assert_int_equal(o->meta.created, cases[i].want);
		wp_obj_free(o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_snapshot_routes),
	        cmocka_unit_test(test_creation_timestamp),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
