/*
 * Telemetry resources for a waypoint Gateway (cp/resolve/telemetry.c
 * through the resolver's snapshot build): which Telemetries apply (root
 * namespace < Gateway namespace < targetRefs; a selector never attaches to
 * a waypoint), istiod's merge of accessLogging entries (providers inherited
 * and in scope, disabled, match.mode), tracing (provider, disableSpanReporting,
 * randomSamplingPercentage), v1alpha1, and the parts reported as not
 * applied with file:line and counted once per change; the snapshot's names
 * outlive the objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "wp/cp_json.h"
#include "wp/model.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

static const char base[] =
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bookinfo\n  labels:\n"
        "    istio.io/use-waypoint: wp\n"
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n"
        "  name: wp\n  namespace: bookinfo\nspec:\n  gatewayClassName: istio-waypoint\n"
        "  listeners:\n  - {name: mesh, port: 15008, protocol: HBONE}\n";

#define TEL(name, ns, api)                                                                         \
	"apiVersion: telemetry.istio.io/" api "\nkind: Telemetry\nmetadata:\n"                     \
	"  name: " name "\n  namespace: " ns "\nspec:\n"
#define TARGET "  targetRefs:\n  - {group: gateway.networking.k8s.io, kind: Gateway, name: wp}\n"

struct fx {
	struct wp_resolver *r;
	struct wp_snapshot *s;
	const struct wp_snap_gateway *g;
};

static void load(struct fx *f, const char *origin, const char *yaml)
{
	assert_true(wp_source_deliver_text(wp_resolver_sink(f->r), origin, yaml, strlen(yaml)) > 0);
}

static void build(struct fx *f)
{
	if (f->s)
		wp_snapshot_free(f->s);
	f->s = wp_resolver_build(f->r);
	assert_non_null(f->s);
	assert_int_equal(f->s->n_gateways, 1);
	f->g = &f->s->gateways[0];
	for (uint32_t i = 0; f->g->telemetry_info && i < f->g->telemetry_info->n_not_applied; i++)
		print_message("not applied: %s\n", f->g->telemetry_info->not_applied[i]);
}

static void setup(struct fx *f)
{
	static const struct wp_served served = {.class_name = "istio-waypoint",
	                                        .root_ns = "istio-system"};

	memset(f, 0, sizeof(*f));
	f->r = wp_resolver_create(&served);
	assert_non_null(f->r);
	load(f, "base.yaml", base);
}

static void teardown(struct fx *f)
{
	wp_snapshot_free(f->s);
	wp_resolver_destroy(f->r);
}

static bool not_applied(const struct wp_snap_gateway *g, const char *needle)
{
	for (uint32_t i = 0; g->telemetry_info && i < g->telemetry_info->n_not_applied; i++)
		if (strstr(g->telemetry_info->not_applied[i], needle))
			return true;
	return false;
}

/* No Telemetry: everything is left to the configuration. */
static void test_none(void **state)
{
	struct fx f;

	(void)state;
	setup(&f);
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_UNSET);
	assert_int_equal(f.g->telemetry.tracing, WP_TEL_UNSET);
	assert_int_equal(f.g->telemetry.sampling_ppm, -1);
	assert_null(f.g->telemetry_info);
	teardown(&f);
}

/* Root namespace turns envoy on, the Gateway's namespace turns it off
 * (disabled, providers inherited), the Telemetry targeting the waypoint
 * turns it on again; removing each level falls back to the one before. */
static void test_precedence(void **state)
{
	struct fx f;

	(void)state;
	setup(&f);
	load(&f, "root.yaml",
	     TEL("mesh-default", "istio-system",
	         "v1") "  accessLogging:\n  - providers: [{name: envoy}]\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_ON);
	assert_int_equal(f.g->telemetry_info->n_applied, 1);
	assert_string_equal(f.g->telemetry_info->applied[0].why, "root namespace");

	load(&f, "ns.yaml",
	     TEL("ns-off", "bookinfo", "v1") "  accessLogging:\n  - disabled: true\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_OFF);

	load(&f, "wp.yaml",
	     TEL("wp-on", "bookinfo", "v1") TARGET
	     "  accessLogging:\n  - providers: [{name: envoy}]\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_ON);
	assert_int_equal(f.g->telemetry_info->n_applied, 3);
	assert_string_equal(f.g->telemetry_info->applied[2].name, "wp-on");
	assert_string_equal(f.g->telemetry_info->applied[2].why, "targetRefs");

	/* a Telemetry naming another Gateway does not attach */
	assert_int_equal(wp_resolver_remove(f.r, WP_KIND_TELEMETRY, "bookinfo", "wp-on"), 0);
	load(&f, "other.yaml",
	     TEL("other", "bookinfo", "v1") "  targetRef: {group: gateway.networking.k8s.io, kind: "
	                                    "Gateway, name: ingress}\n"
	                                    "  accessLogging:\n  - providers: [{name: envoy}]\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_OFF);
	assert_int_equal(f.g->telemetry_info->n_ignored, 1);
	teardown(&f);
}

/* A selector chooses workload pods: it never applies to a waypoint, even
 * one whose labels it would match. */
static void test_selector_ignored(void **state)
{
	struct fx f;

	(void)state;
	setup(&f);
	load(&f, "sel.yaml",
	     TEL("by-label", "bookinfo",
	         "v1") "  selector:\n    matchLabels:\n"
	               "      gateway.networking.k8s.io/gateway-name: wp\n"
	               "  accessLogging:\n  - providers: [{name: envoy}]\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_UNSET);
	assert_non_null(f.g->telemetry_info);
	assert_int_equal(f.g->telemetry_info->n_applied, 0);
	assert_int_equal(f.g->telemetry_info->n_ignored, 1);
	assert_string_equal(f.g->telemetry_info->ignored[0].name, "by-label");
	/* nor does a targeted Telemetry of the root namespace to a Gateway of
	 * another namespace (Istio reads those of the proxy's namespace) */
	load(&f, "root.yaml",
	     TEL("root-targeted", "istio-system",
	         "v1") "  targetRefs:\n  - {group: gateway.networking.k8s.io, kind: Gateway, name: "
	               "wp,"
	               " namespace: bookinfo}\n"
	               "  accessLogging:\n  - providers: [{name: envoy}]\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_UNSET);
	assert_int_equal(f.g->telemetry_info->n_ignored, 2);
	teardown(&f);
}

/* v1alpha1 reads the same; a CLIENT-only entry is not the waypoint's
 * (server) side; the providers in scope are the last level's. */
static void test_v1alpha1_mode_scope(void **state)
{
	struct fx f;

	(void)state;
	setup(&f);
	load(&f, "a.yaml",
	     TEL("client-only", "bookinfo", "v1alpha1") TARGET
	     "  accessLogging:\n  - providers: [{name: envoy}]\n"
	     "    match: {mode: CLIENT}\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_UNSET);
	load(&f, "a.yaml",
	     TEL("client-only", "bookinfo", "v1alpha1") TARGET
	     "  accessLogging:\n  - providers: [{name: envoy}]\n"
	     "    match: {mode: SERVER}\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_ON);
	/* root names envoy, the waypoint's level names only another provider:
	 * envoy is out of scope (not logging), the other one is reported */
	load(&f, "root.yaml",
	     TEL("mesh-default", "istio-system",
	         "v1") "  accessLogging:\n  - providers: [{name: envoy}]\n");
	load(&f, "a.yaml",
	     TEL("client-only", "bookinfo", "v1alpha1") TARGET
	     "  accessLogging:\n  - providers: [{name: otel}]\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_UNSET);
	assert_true(not_applied(f.g, "a.yaml:10: Telemetry bookinfo/client-only: "
	                             "spec.accessLogging.providers: not applied: provider otel"));
	teardown(&f);
}

/* A CEL filter leaves its entry out; metrics overrides, Service targetRefs
 * and a second namespace-wide Telemetry are reported with file:line; the
 * count is taken once per change. */
static void test_not_applied(void **state)
{
	struct fx f;

	(void)state;
	setup(&f);
	assert_int_equal(wp_resolver_take_tel_not_applied(f.r), 0);
	load(&f, "f.yaml",
	     TEL("filtered", "bookinfo", "v1") TARGET
	     "  accessLogging:\n  - providers: [{name: envoy}]\n"
	     "    filter:\n      expression: response.code >= 400\n"
	     "  metrics:\n  - providers: [{name: prometheus}]\n");
	load(&f, "svc.yaml",
	     TEL("svc", "bookinfo",
	         "v1") "  targetRefs:\n  - {kind: Service, group: \"\", name: reviews}\n"
	               "  tracing:\n  - randomSamplingPercentage: 5\n");
	load(&f, "ns.yaml",
	     TEL("a-first", "bookinfo", "v1") "  tracing:\n  - {}\n---\n" TEL(
	             "b-second", "bookinfo", "v1") "  tracing:\n  - {}\n");
	build(&f);
	assert_int_equal(f.g->telemetry.access_log, WP_TEL_UNSET);
	assert_true(not_applied(f.g, "f.yaml:12: Telemetry bookinfo/filtered: "
	                             "spec.accessLogging.filter: not applied: CEL"));
	assert_true(not_applied(f.g, "f.yaml:14: Telemetry bookinfo/filtered: spec.metrics"));
	assert_true(not_applied(f.g, "svc.yaml:8: Telemetry bookinfo/svc: spec.targetRefs"));
	assert_true(not_applied(f.g, "ns.yaml:10: Telemetry bookinfo/b-second"));
	assert_int_equal(f.g->telemetry_info->n_not_applied, 4);
	assert_int_equal(f.g->telemetry.sampling_ppm, -1); /* svc's does not attach */
	assert_int_equal(wp_resolver_take_tel_not_applied(f.r), 4);
	build(&f);
	assert_int_equal(wp_resolver_take_tel_not_applied(f.r), 0);
	teardown(&f);
}

/* Tracing: the provider, sampling and disableSpanReporting of the later
 * levels override the earlier ones field by field. */
static void test_tracing(void **state)
{
	struct fx f;

	(void)state;
	setup(&f);
	load(&f, "root.yaml",
	     TEL("mesh-default", "istio-system",
	         "v1") "  tracing:\n  - randomSamplingPercentage: 10\n");
	build(&f);
	assert_int_equal(f.g->telemetry.tracing, WP_TEL_UNSET); /* no provider: the config's */
	assert_int_equal(f.g->telemetry.sampling_ppm, 100000);
	load(&f, "wp.yaml",
	     TEL("wp", "bookinfo", "v1") TARGET "  tracing:\n  - providers: [{name: otel}]\n"
	                                        "    randomSamplingPercentage: 25.5\n");
	build(&f);
	assert_int_equal(f.g->telemetry.tracing, WP_TEL_ON);
	assert_int_equal(f.g->telemetry.sampling_ppm, 255000);
	assert_string_equal(f.g->telemetry_info->tracing_provider, "otel");
	load(&f, "ns.yaml",
	     TEL("ns", "bookinfo", "v1") "  tracing:\n  - disableSpanReporting: true\n");
	build(&f);
	/* the namespace's disableSpanReporting stands: the waypoint's level
	 * names a provider but does not set it */
	assert_int_equal(f.g->telemetry.tracing, WP_TEL_OFF);
	load(&f, "wp.yaml",
	     TEL("wp", "bookinfo", "v1") TARGET "  tracing:\n  - providers: [{name: otel}]\n"
	                                        "    disableSpanReporting: false\n");
	build(&f);
	assert_int_equal(f.g->telemetry.tracing, WP_TEL_ON);
	assert_int_equal(f.g->telemetry.sampling_ppm, 100000); /* the root's */
	teardown(&f);
}

/*
 * The published snapshot outlives the Telemetry objects it was built from:
 * the resolver frees one as soon as it is deleted, and /config_dump reads
 * the snapshot until the next build is published (CI once caught a 503
 * there; ASan: heap-use-after-free in the dump). Its names are its own.
 */
static void test_snapshot_outlives_objects(void **state)
{
	struct fx f;
	json_t *j;
	char *text;

	(void)state;
	setup(&f);
	load(&f, "root.yaml",
	     TEL("mesh-default", "istio-system",
	         "v1") "  tracing:\n  - providers: [{name: otel}]\n");
	load(&f, "sel.yaml",
	     TEL("by-label", "bookinfo",
	         "v1") "  selector:\n    matchLabels:\n      app: x\n"
	               "  accessLogging:\n  - providers: [{name: envoy}]\n");
	build(&f);
	assert_int_equal(f.g->telemetry_info->n_applied, 1);
	assert_int_equal(f.g->telemetry_info->n_ignored, 1);
	assert_int_equal(wp_resolver_remove(f.r, WP_KIND_TELEMETRY, "istio-system", "mesh-default"),
	                 0);
	assert_int_equal(wp_resolver_remove(f.r, WP_KIND_TELEMETRY, "bookinfo", "by-label"), 0);
	/* no build since: the snapshot still says what it said */
	assert_string_equal(f.g->telemetry_info->applied[0].ns, "istio-system");
	assert_string_equal(f.g->telemetry_info->applied[0].name, "mesh-default");
	assert_string_equal(f.g->telemetry_info->ignored[0].ns, "bookinfo");
	assert_string_equal(f.g->telemetry_info->ignored[0].name, "by-label");
	assert_string_equal(f.g->telemetry_info->tracing_provider, "otel");
	j = wp_snapshot_json(f.s);
	text = json_dumps(j, 0);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"mesh-default\""));
	free(text);
	json_decref(j);
	teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_none),
	        cmocka_unit_test(test_precedence),
	        cmocka_unit_test(test_selector_ignored),
	        cmocka_unit_test(test_v1alpha1_mode_scope),
	        cmocka_unit_test(test_not_applied),
	        cmocka_unit_test(test_tracing),
	        cmocka_unit_test(test_snapshot_outlives_objects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
