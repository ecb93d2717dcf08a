/*
 * The WaypointAccepted condition of AuthorizationPolicies
 * (cp/kube/authz_status.c), case by case after istiod's
 * WaypointPolicyStatus: a Gateway of ours, its deletion, istiod's Gateways
 * left alone, GatewayClass from the root namespace or not, a Service bound
 * to our waypoint by the published snapshot, then unbound or gone, several
 * targetRefs flattened, other writers' conditions and the transition time
 * kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "status.h"

static const struct wp_kube_status_policy pol = {
        .controller_name = "waypointd.io/controller",
        .service_name = "waypointd",
        .cluster_domain = "cluster.local",
};

struct fx {
	json_t *gateways, *classes;
	struct wp_kube_authz_view v;
};

static struct fx setup_fx(void)
{
	struct fx f = {
	        .gateways = json_object(),
	        .classes = json_object(),
	};

	json_object_set_new(
	        f.classes, "waypointd",
	        json_pack("{s:{s:s}}", "spec", "controllerName", "waypointd.io/controller"));
	json_object_set_new(
	        f.classes, "istio-waypoint",
	        json_pack("{s:{s:s}}", "spec", "controllerName", "istio.io/mesh-controller"));
	json_object_set_new(f.gateways, "a/wp",
	                    json_pack("{s:{s:s}}", "spec", "gatewayClassName", "waypointd"));
	json_object_set_new(f.gateways, "a/istio",
	                    json_pack("{s:{s:s}}", "spec", "gatewayClassName", "istio-waypoint"));
	f.v = (struct wp_kube_authz_view){
	        .pol = &pol, .gateways = f.gateways, .classes = f.classes};
	return f;
}

static void teardown_fx(struct fx *f)
{
	json_decref(f->gateways);
	json_decref(f->classes);
}

/* An AuthorizationPolicy ns/name of generation gen with these targetRefs
 * (a JSON array text). */
static json_t *policy(const char *ns, const char *name, int gen, const char *refs)
{
	json_t *r = json_loads(refs, 0, NULL);

	assert_non_null(r);
	return json_pack("{s:{s:s, s:s, s:i}, s:{s:o, s:s}}", "metadata", "namespace", ns, "name",
	                 name, "generation", gen, "spec", "targetRefs", r, "action", "DENY");
}

#define GW(name)                                                                                   \
	"{\"kind\":\"Gateway\",\"group\":\"gateway.networking.k8s.io\",\"name\":\"" name "\"}"
#define GWC(name)                                                                                  \
	"{\"kind\":\"GatewayClass\",\"group\":\"gateway.networking.k8s.io\",\"name\":\"" name "\"" \
	"}"
#define SVC(name) "{\"kind\":\"Service\",\"group\":\"\",\"name\":\"" name "\"}"

static void expect(json_t *c, const char *status, const char *reason, const char *message,
                   const char *gen)
{
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "type")), "WaypointAccepted");
	assert_string_equal(json_string_value(json_object_get(c, "status")), status);
	assert_string_equal(json_string_value(json_object_get(c, "reason")), reason);
	if (message)
		assert_string_equal(json_string_value(json_object_get(c, "message")), message);
	else
		assert_null(json_object_get(c, "message"));
	assert_string_equal(json_string_value(json_object_get(c, "observedGeneration")), gen);
	json_decref(c);
}

static void test_gateway_bound_and_gone(void **state)
{
	struct fx f = setup_fx();
	json_t *ap = policy("a", "p", 3, "[" GW("wp") "]");

	(void)state;
	expect(wp_kube_authz_condition(&f.v, ap), "True", "Accepted", "bound to a/wp", "3");
	/* the Gateway is deleted: nothing owed unless we wrote it before */
	json_object_del(f.gateways, "a/wp");
	assert_null(wp_kube_authz_condition(&f.v, ap));
	f.v.was_ours = true;
	expect(wp_kube_authz_condition(&f.v, ap), "False", "TargetNotFound", "not bound", "3");
	json_decref(ap);
	teardown_fx(&f);
}

static void test_not_ours(void **state)
{
	struct fx f = setup_fx();
	json_t *ap;

	(void)state;
	/* istiod's Gateway, a Service, a Gateway in another namespace: istiod's */
	ap = policy("a", "p", 1, "[" GW("istio") "," SVC("svc") "]");
	assert_null(wp_kube_authz_condition(&f.v, ap));
	json_decref(ap);
	ap = policy("b", "p", 1, "[" GW("wp") "]");
	assert_null(wp_kube_authz_condition(&f.v, ap));
	json_decref(ap);
	/* with an explicit namespace it is ours */
	ap = policy(
	        "b", "p", 1,
	        "[{\"kind\":\"Gateway\",\"group\":\"gateway.networking.k8s.io\",\"name\":\"wp\","
	        "\"namespace\":\"a\"}]");
	expect(wp_kube_authz_condition(&f.v, ap), "True", "Accepted", "bound to a/wp", "1");
	json_decref(ap);
	/* no targetRefs (a selector policy): never */
	ap = json_pack("{s:{s:s, s:s}, s:{}}", "metadata", "namespace", "a", "name", "p", "spec");
	assert_null(wp_kube_authz_condition(&f.v, ap));
	json_decref(ap);
	teardown_fx(&f);
}

/* A policy bound here that cannot be used as written (the data path fails
 * closed on it) is reported False, Invalid, with the problem. */
static void test_invalid_policy(void **state)
{
	struct fx f = setup_fx();
	json_t *ap = policy("a", "p", 2, "[" GW("wp") "]"), *rules;

	(void)state;
	rules = json_loads("[{\"from\":[{\"source\":{\"ipBlocks\":[\"10.0.0.0/33\"]}}]}]", 0, NULL);
	assert_non_null(rules);
	json_object_set_new(json_object_get(ap, "spec"), "rules", rules);
	{
		json_t *c = wp_kube_authz_condition(&f.v, ap);
		const char *m;

		assert_non_null(c);
		assert_string_equal(json_string_value(json_object_get(c, "status")), "False");
		assert_string_equal(json_string_value(json_object_get(c, "reason")), "Invalid");
		m = json_string_value(json_object_get(c, "message"));
		assert_non_null(m);
		assert_non_null(strstr(m, "10.0.0.0/33"));
		assert_null(strstr(m, "status:"));
		json_decref(c);
	}
	/* fixed: accepted again */
	json_object_set_new(
	        json_object_get(ap, "spec"), "rules",
	        json_loads("[{\"from\":[{\"source\":{\"ipBlocks\":[\"10.0.0.0/8\"]}}]}]", 0, NULL));
	expect(wp_kube_authz_condition(&f.v, ap), "True", "Accepted", "bound to a/wp", "2");
	json_decref(ap);
	teardown_fx(&f);
}

static void test_gateway_class(void **state)
{
	struct fx f = setup_fx();
	json_t *ap = policy("istio-system", "p", 1, "[" GWC("waypointd") "]");

	(void)state;
	expect(wp_kube_authz_condition(&f.v, ap), "True", "Accepted", "bound to waypointd", "1");
	json_decref(ap);
	ap = policy("a", "p", 2, "[" GWC("waypointd") "]");
	expect(wp_kube_authz_condition(&f.v, ap), "False", "Invalid",
	       "AuthorizationPolicy must be in the root namespace `istio-system` when referencing "
	       "a GatewayClass",
	       "2");
	json_decref(ap);
	f.v.root_ns = "mesh-root";
	ap = policy("mesh-root", "p", 1, "[" GWC("waypointd") "]");
	expect(wp_kube_authz_condition(&f.v, ap), "True", "Accepted", "bound to waypointd", "1");
	json_decref(ap);
	/* istiod's class: istiod's */
	ap = policy("mesh-root", "p", 1, "[" GWC("istio-waypoint") "]");
	assert_null(wp_kube_authz_condition(&f.v, ap));
	json_decref(ap);
	teardown_fx(&f);
}

/* Service targetRefs follow the published snapshot's enrollment. */
static void test_service(void **state)
{
	struct fx f = setup_fx();
	json_t *ap = policy("a", "p", 1, "[" SVC("svc") "]"), *before;

	(void)state;
	/* nothing published yet */
	assert_null(wp_kube_authz_condition(&f.v, ap));
	f.v.services = json_pack("{s:{s:s, s:b}, s:{s:s, s:b}, s:{s:n, s:b}}", "a/svc", "waypoint",
	                         "a/wp", "served", 1, "a/istio-svc", "waypoint", "a/istio",
	                         "served", 0, "a/plain", "waypoint", "served", 0);
	expect(wp_kube_authz_condition(&f.v, ap), "True", "Accepted", "bound to a/wp", "1");
	json_decref(ap);
	/* bound to istiod's waypoint, or not bound and never ours: istiod's */
	ap = policy("a", "p", 1, "[" SVC("istio-svc") "]");
	f.v.was_ours = true;
	assert_null(wp_kube_authz_condition(&f.v, ap));
	json_decref(ap);
	ap = policy("a", "p", 1, "[" SVC("plain") "]");
	f.v.was_ours = false;
	assert_null(wp_kube_authz_condition(&f.v, ap));
	/* was ours: unbound, then gone */
	f.v.was_ours = true;
	expect(wp_kube_authz_condition(&f.v, ap), "False", "AncestorNotBound",
	       "Service a/plain is not bound to a waypoint", "1");
	before = json_deep_copy(f.v.services);
	assert_false(wp_kube_authz_services_changed(ap, before, f.v.services));
	assert_true(wp_kube_authz_services_changed(ap, NULL, f.v.services));
	json_object_del(f.v.services, "a/plain");
	assert_true(wp_kube_authz_services_changed(ap, before, f.v.services));
	expect(wp_kube_authz_condition(&f.v, ap), "False", "TargetNotFound",
	       "Service a/plain was not found", "1");
	json_decref(before);
	json_decref(ap);
	json_decref(f.v.services);
	teardown_fx(&f);
}

/* Several targetRefs flatten as istiod flattens them. */
static void test_flattened(void **state)
{
	struct fx f = setup_fx();
	json_t *ap;

	(void)state;
	json_object_set_new(f.gateways, "a/wp2",
	                    json_pack("{s:{s:s}}", "spec", "gatewayClassName", "waypointd"));
	ap = policy("a", "p", 1, "[" GW("wp") "," GW("wp2") "," SVC("svc") "]");
	expect(wp_kube_authz_condition(&f.v, ap), "True", "Accepted", NULL, "1");
	json_object_del(f.gateways, "a/wp2");
	f.v.was_ours = true;
	expect(wp_kube_authz_condition(&f.v, ap), "True", "PartiallyInvalid",
	       "Invalid targetRefs: Gateway.gateway.networking.k8s.io:a/wp2", "1");
	json_object_del(f.gateways, "a/wp");
	expect(wp_kube_authz_condition(&f.v, ap), "False", "Invalid",
	       "Invalid targetRefs: Gateway.gateway.networking.k8s.io:a/wp, "
	       "Gateway.gateway.networking.k8s.io:a/wp2",
	       "1");
	json_decref(ap);
	/* the older single targetRef */
	ap = json_pack("{s:{s:s, s:s}, s:{s:{s:s, s:s, s:s}}}", "metadata", "namespace", "a",
	               "name", "p", "spec", "targetRef", "kind", "Gateway", "group",
	               "gateway.networking.k8s.io", "name", "wp2");
	f.v.was_ours = false;
	assert_null(wp_kube_authz_condition(&f.v, ap));
	json_object_set_new(f.gateways, "a/wp2",
	                    json_pack("{s:{s:s}}", "spec", "gatewayClassName", "waypointd"));
	expect(wp_kube_authz_condition(&f.v, ap), "True", "Accepted", "bound to a/wp2", "1");
	assert_true(wp_kube_authz_refers(ap, "Gateway", "a", "wp2"));
	assert_false(wp_kube_authz_refers(ap, "Gateway", "b", "wp2"));
	assert_true(wp_kube_authz_refers_any(ap));
	json_decref(ap);
	teardown_fx(&f);
}

/* The whole status: istiod's ZtunnelAccepted stays, ours is replaced in
 * place, the transition time moves only with the status. */
static void test_status_desired(void **state)
{
	struct fx f = setup_fx();
	json_t *ap = policy("a", "p", 1, "[" GW("wp") "]"), *st, *c;

	(void)state;
	json_object_set_new(ap, "status",
	                    json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s, s:s, s:s}], s:s}",
	                              "conditions", "type", "ZtunnelAccepted", "status", "False",
	                              "reason", "UnsupportedValue", "type", "WaypointAccepted",
	                              "status", "True", "reason", "Accepted", "message", "old",
	                              "lastTransitionTime", "2026-01-01T00:00:00Z", "other",
	                              "kept"));
	st = wp_kube_authz_status_desired(&f.v, ap, "2026-12-05T12:00:00Z");
	assert_non_null(st);
	assert_string_equal(json_string_value(json_object_get(st, "other")), "kept");
	assert_int_equal(json_array_size(json_object_get(st, "conditions")), 2);
	c = json_array_get(json_object_get(st, "conditions"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "type")), "ZtunnelAccepted");
	c = json_array_get(json_object_get(st, "conditions"), 1);
	assert_string_equal(json_string_value(json_object_get(c, "message")), "bound to a/wp");
	assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
	                    "2026-01-01T00:00:00Z");
	json_object_set_new(ap, "status", st);
	/* the same again: nothing to write */
	st = wp_kube_authz_status_desired(&f.v, ap, "2026-12-05T13:00:00Z");
	assert_true(json_equal(st, json_object_get(ap, "status")));
	json_decref(st);
	/* gone: False from now */
	json_object_del(f.gateways, "a/wp");
	f.v.was_ours = true;
	st = wp_kube_authz_status_desired(&f.v, ap, "2026-12-05T13:00:00Z");
	c = json_array_get(json_object_get(st, "conditions"), 1);
	assert_string_equal(json_string_value(json_object_get(c, "status")), "False");
	assert_string_equal(json_string_value(json_object_get(c, "lastTransitionTime")),
	                    "2026-12-05T13:00:00Z");
	json_decref(st);
	/* nothing owed: NULL */
	f.v.was_ours = false;
	assert_null(wp_kube_authz_status_desired(&f.v, ap, "2026-12-05T13:00:00Z"));
	json_decref(ap);
	teardown_fx(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_gateway_bound_and_gone),
	        cmocka_unit_test(test_not_ours),
	        cmocka_unit_test(test_invalid_policy),
	        cmocka_unit_test(test_gateway_class),
	        cmocka_unit_test(test_service),
	        cmocka_unit_test(test_flattened),
	        cmocka_unit_test(test_status_desired),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
