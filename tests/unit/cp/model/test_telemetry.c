/*
 * telemetry.istio.io Telemetry parsing (cp/model/telemetry_parse.c): v1
 * and v1alpha1 in YAML, the API server's JSON, the typed fields the
 * resolver reads (targetRefs, selector, accessLogging, tracing, metrics),
 * and bad fields rejected with file, line and field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wp/model.h"

static struct wp_obj *one(const char *doc, char *err, size_t errlen)
{
	return wp_model_parse_one(doc, strlen(doc), "tel.yaml", err, errlen);
}

static void test_v1_yaml(void **state)
{
	static const char doc[] =
	        "apiVersion: telemetry.istio.io/v1\n"
	        "kind: Telemetry\n"
	        "metadata: {name: wp-logs, namespace: bookinfo}\n"
	        "spec:\n"
	        "  targetRefs:\n"
	        "  - {group: gateway.networking.k8s.io, kind: Gateway, name: waypoint}\n"
	        "  accessLogging:\n"
	        "  - providers: [{name: envoy}]\n"
	        "    match: {mode: SERVER}\n"
	        "  - disabled: true\n"
	        "    filter: {expression: response.code >= 400}\n"
	        "  tracing:\n"
	        "  - providers: [{name: otel}]\n"
	        "    randomSamplingPercentage: 12.5\n"
	        "    disableSpanReporting: false\n"
	        "    customTags: {a: {literal: {value: b}}}\n"
	        "  metrics:\n"
	        "  - providers: [{name: prometheus}]\n";
	char err[WP_MODEL_ERRLEN];
	struct wp_obj *o = one(doc, err, sizeof(err));
	const struct wp_k8s_telemetry *t;

	(void)state;
	assert_non_null(o);
	assert_int_equal(o->kind, WP_KIND_TELEMETRY);
	t = &o->u.tel;
	assert_false(t->has_selector);
	assert_int_equal(t->n_target_refs, 1);
	assert_string_equal(t->target_refs[0].kind, "Gateway");
	assert_string_equal(t->target_refs[0].group, "gateway.networking.k8s.io");
	assert_string_equal(t->target_refs[0].name, "waypoint");
	assert_int_equal(t->target_ref_lines[0], 6);
	assert_int_equal(t->n_logs, 2);
	assert_int_equal(t->logs[0].n_providers, 1);
	assert_string_equal(t->logs[0].providers[0], "envoy");
	assert_int_equal(t->logs[0].mode, WP_TEL_MODE_SERVER);
	assert_false(t->logs[0].disabled);
	assert_null(t->logs[0].filter);
	assert_true(t->logs[1].disabled);
	assert_int_equal(t->logs[1].n_providers, 0);
	assert_string_equal(t->logs[1].filter, "response.code >= 400");
	assert_int_equal(t->n_traces, 1);
	assert_string_equal(t->traces[0].providers[0], "otel");
	assert_int_equal(t->traces[0].sampling_ppm, 125000);
	assert_int_equal(t->traces[0].disable_span_reporting, 0);
	assert_string_equal(t->traces[0].unsupported, "spec.tracing[0].customTags");
	assert_int_equal(t->traces[0].unsupported_line, 16);
	assert_int_equal(t->metrics_line, 18);
	wp_obj_free(o);
}

/* v1alpha1 from the API server (JSON); a selector; the single targetRef. */
static void test_v1alpha1_json(void **state)
{
	static const char doc[] =
	        "{\"apiVersion\": \"telemetry.istio.io/v1alpha1\", \"kind\": \"Telemetry\",\n"
	        " \"metadata\": {\"name\": \"t\", \"namespace\": \"ns\"},\n"
	        " \"spec\": {\"selector\": {\"matchLabels\": {\"app\": \"x\"}},\n"
	        "  \"targetRef\": {\"group\": \"gateway.networking.k8s.io\", \"kind\": \"Gateway\","
	        " \"name\": \"wp\"},\n"
	        "  \"tracing\": [{\"randomSamplingPercentage\": 100, "
	        "\"disableSpanReporting\": true}]}}\n";
	char err[WP_MODEL_ERRLEN];
	struct wp_obj *o = one(doc, err, sizeof(err));

	(void)state;
	assert_non_null(o);
	assert_int_equal(o->kind, WP_KIND_TELEMETRY);
	assert_true(o->u.tel.has_selector);
	assert_int_equal(o->u.tel.n_target_refs, 1);
	assert_string_equal(o->u.tel.target_refs[0].name, "wp");
	assert_int_equal(o->u.tel.n_traces, 1);
	assert_int_equal(o->u.tel.traces[0].sampling_ppm, 1000000);
	assert_int_equal(o->u.tel.traces[0].disable_span_reporting, 1);
	assert_int_equal(o->u.tel.traces[0].n_providers, 0);
	assert_int_equal(o->u.tel.n_logs, 0);
	wp_obj_free(o);
}

/* Bad fields reject the object: FILE:LINE: Telemetry NS/NAME: FIELD: why. */
static void test_bad_fields(void **state)
{
#define HEAD                                                                                       \
	"apiVersion: telemetry.istio.io/v1\nkind: Telemetry\nmetadata: {name: t, namespace: n}\n"  \
	"spec:\n"
	static const struct {
		const char *doc, *want;
	} cases[] = {
	        {HEAD "  accessLogs: []\n",
	         "tel.yaml:5: Telemetry n/t: spec.accessLogs: unknown field"},
	        {HEAD "  accessLogging:\n  - providers: [{name: envoy}]\n    match: {mode: BOTH}\n",
	         "tel.yaml:7: Telemetry n/t: spec.accessLogging[0].match.mode: must be CLIENT, "
	         "SERVER or CLIENT_AND_SERVER, got BOTH"},
	        {HEAD "  accessLogging:\n  - providers: [envoy]\n",
	         "tel.yaml:6: Telemetry n/t: spec.accessLogging[0].providers[0]: expected a "
	         "mapping"},
	        {HEAD "  accessLogging:\n  - disabled: maybe\n",
	         "tel.yaml:6: Telemetry n/t: spec.accessLogging[0].disabled: expected true or "
	         "false"},
	        {HEAD "  tracing:\n  - randomSamplingPercentage: 101\n",
	         "tel.yaml:6: Telemetry n/t: spec.tracing[0].randomSamplingPercentage: expected a "
	         "number in 0..100, got 101"},
	        {HEAD "  tracing:\n  - sampling: 5\n",
	         "tel.yaml:6: Telemetry n/t: spec.tracing[0].sampling: unknown field"},
	        {HEAD "  targetRefs:\n  - {kind: Gateway}\n",
	         "tel.yaml:6: Telemetry n/t: spec.targetRefs[0].name: required field missing"},
	        {HEAD "  accessLogging: {providers: []}\n",
	         "tel.yaml:5: Telemetry n/t: spec.accessLogging: expected a list"},
	};
#undef HEAD

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[WP_MODEL_ERRLEN] = "";
		struct wp_obj *o = one(cases[i].doc, err, sizeof(err));

		assert_null(o);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_v1_yaml),
	        cmocka_unit_test(test_v1alpha1_json),
	        cmocka_unit_test(test_bad_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
