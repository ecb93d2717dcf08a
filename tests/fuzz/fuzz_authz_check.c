/*
 * libFuzzer driver for the authorization check of one request
 * (cp/resolve/authz_check.c): the input is the query string of the admin
 * endpoint's GET /authz/check, parsed and decided against a fixed snapshot
 * (namespace a behind waypoint a/wp: a Service with ALLOW, DENY, AUDIT and
 * selector policies, one with none, one opaque TCP). Checks, beyond memory
 * safety, WP_ASSERT and leaks:
 *
 *   - parsing answers 0 or -EINVAL with a message;
 *   - a parsed request survives the round trip wpctl makes: its query
 *     (wp_authz_check_query) parses back to the same fields;
 *   - the check answers 0, -EINVAL or -ENOENT with a message, never
 *     -ENOMEM (the inputs are bounded) and never an answer with an error;
 *   - an answer is consistent: "decision" is ALLOW exactly when "allowed",
 *     the reason is one of the evaluator's, a deciding policy is named
 *     exactly for the reasons that have one and is one of the applied
 *     policies, the request's path has no query and the destination port
 *     is the one asked for.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_check.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "fuzz_authz_check: %s:%d: %s\n", __FILE__, __LINE__, #c);  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static const char fixture[] =
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, labels: {istio.io/use-waypoint: "
        "wp}}\n"
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: wp, "
        "namespace: a}\nspec: {gatewayClassName: istio-waypoint, listeners: [{name: mesh, port: "
        "15008, protocol: HBONE}]}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc, namespace: a}\nspec: "
        "{clusterIP: 198.19.0.10, ports: [{name: http, port: 80}]}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: open, namespace: a}\nspec: "
        "{clusterIP: 198.19.0.11, ports: [{name: http, port: 80}]}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: db, namespace: a}\nspec: "
        "{clusterIP: 198.19.0.12, ports: [{name: tcp-pg, port: 5432}]}\n"
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: "
        "allow, namespace: a}\nspec:\n  targetRefs: [{kind: Service, group: \"\", name: svc}]\n"
        "  rules:\n  - from: [{source: {principals: [\"cluster.local/ns/a/sa/reader\"], "
        "ipBlocks: [\"10.0.0.0/8\"]}}]\n    to: [{operation: {methods: [GET], paths: "
        "[\"/api/*\", \"*.css\"], hosts: [\"svc.a*\"]}}]\n"
        "  - from: [{source: {namespaces: [ops]}}]\n    when: [{key: "
        "\"request.headers[x-env]\", values: [prod]}]\n"
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: "
        "deny, namespace: a}\nspec:\n  action: DENY\n  targetRefs: [{kind: Gateway, group: "
        "gateway.networking.k8s.io, name: wp}]\n  rules:\n  - to: [{operation: {paths: "
        "[\"/admin*\"]}}]\n  - from: [{source: {remoteIpBlocks: [\"192.0.2.0/24\"]}}]\n"
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: "
        "audit, namespace: a}\nspec:\n  action: AUDIT\n  targetRefs: [{kind: Service, group: "
        "\"\", name: svc}]\n  rules: [{to: [{operation: {methods: [DELETE]}}]}]\n"
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: "
        "db, namespace: a}\nspec:\n  targetRefs: [{kind: Service, group: \"\", name: db}]\n"
        "  rules: [{to: [{operation: {ports: [\"5432\"]}}]}]\n"
        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: "
        "sel, namespace: a}\nspec: {action: DENY, selector: {matchLabels: {app: open}}, rules: "
        "[{}]}\n";

static struct wp_resolver *res;
static struct wp_snapshot *snap;
static struct wp_authz_scratch sc;

static void setup(void)
{
	struct wp_served served = {.class_name = "istio-waypoint"};

	res = wp_resolver_create(&served);
	CHECK(res);
	CHECK(wp_source_deliver_text(wp_resolver_sink(res), "fuzz.yaml", fixture, strlen(fixture)) >
	      0);
	snap = wp_resolver_build(res);
	CHECK(snap && snap->n_services == 3);
}

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static void check_answer(json_t *a, const struct wp_authz_check_in *in)
{
	static const char *const with_policy[] = {"allow_match", "deny_match",
	                                          "deny_invalid_policy", "custom_no_provider"};
	static const char *const without[] = {"no_policy", "no_allow_match", "table_error"};
	const char *decision = json_string_value(json_object_get(a, "decision"));
	const char *reason = json_string_value(json_object_get(a, "reason"));
	json_t *pol = json_object_get(a, "policy"), *req = json_object_get(a, "request"), *p;
	const char *path = json_string_value(json_object_get(req, "path"));
	const char *colon = strrchr(in->to, ':');
	bool has = false, known = false, listed = false;
	size_t i;

	CHECK(decision && reason && colon && (path || in->tcp));
	CHECK(!strcmp(decision, "ALLOW") == json_is_true(json_object_get(a, "allowed")));
	for (i = 0; i < sizeof(with_policy) / sizeof(with_policy[0]); i++)
		if (!strcmp(reason, with_policy[i]))
			known = has = true;
	for (i = 0; i < sizeof(without) / sizeof(without[0]); i++)
		if (!strcmp(reason, without[i]))
			known = true;
	CHECK(known);
	CHECK(has == json_is_object(pol));
	json_array_foreach(json_object_get(a, "policies"), i, p)
	{
		if (has && json_equal(json_object_get(p, "name"), json_object_get(pol, "name")) &&
		    json_equal(json_object_get(p, "namespace"), json_object_get(pol, "namespace")))
			listed = true;
	}
	CHECK(listed == has);
	CHECK(in->tcp ? json_is_null(json_object_get(req, "path"))
	              : !strchr(path, '?') && path[0] == '/');
	CHECK(json_integer_value(json_object_get(req, "dst_port")) == strtol(colon + 1, NULL, 10));
	CHECK(json_is_true(json_object_get(req, "http")) == !in->tcp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wp_authz_check_in in, back;
	json_t *ans = NULL;
	char *q, *q2, err[512];
	int rc;

	if (!snap)
		setup();
	if (size > 4096)
		return 0;
	q = malloc(size + 1);
	CHECK(q);
	memcpy(q, data, size);
	q[size] = '\0';
	err[0] = '\0';
	rc = wp_authz_check_parse_query(q, &in, err, sizeof(err));
	free(q);
	CHECK(rc == 0 || (rc == -EINVAL && err[0]));
	if (rc)
		return 0;
	q2 = wp_authz_check_query(&in);
	CHECK(q2);
	CHECK(wp_authz_check_parse_query(q2, &back, err, sizeof(err)) == 0);
	CHECK(same(in.from, back.from) && same(in.to, back.to) && same(in.host, back.host) &&
	      same(in.method, back.method) && same(in.path, back.path) &&
	      same(in.source_ip, back.source_ip) && same(in.remote_ip, back.remote_ip) &&
	      in.tcp == back.tcp && in.n_headers == back.n_headers);
	for (unsigned i = 0; i < in.n_headers; i++)
		CHECK(same(in.headers[i], back.headers[i]));
	wp_authz_check_fini(&back);
	free(q2);
	err[0] = '\0';
	rc = wp_authz_check_run(snap, &sc, &in, &ans, err, sizeof(err));
	CHECK(rc == 0 || ((rc == -EINVAL || rc == -ENOENT) && err[0] && !ans));
	if (!rc) {
		CHECK(ans);
		check_answer(ans, &in);
		json_decref(ans);
	}
	wp_authz_check_fini(&in);
	return 0;
}
