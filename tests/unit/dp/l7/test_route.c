/*
 * Route compilation and matching (cp/resolve/route_compile.c, lib/route.c)
 * against manifests parsed by the model, with a fake endpoint lookup: every
 * match type and filter, Gateway API precedence, the weighted split, mirrors,
 * timeouts and retry, DestinationRule load balancing and subsets, malformed
 * parts rejected with file:line:field while the rest compiles, and
 * Hyperscan regexes checked against glibc's regex engine on random inputs.
 */
#include <errno.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route_compile.h"
#include "h1proxy.h"
#include "wp/counters.h"
#include "wp/model.h"
#include "wp/route.h"
#include "wp/snapshot_types.h"

/* ---- fixture: services and their endpoints ------------------------------------- */

static const struct wp_kv kv_v1[] = {{"app", "reviews"}, {"version", "v1"}};
static const struct wp_kv kv_v2[] = {{"app", "reviews"}, {"version", "v2"}};
static const struct wp_kv kv_v3[] = {{"app", "reviews"}, {"version", "v3"}};
static const struct wp_labels lab_v1 = {2, kv_v1}, lab_v2 = {2, kv_v2}, lab_v3 = {2, kv_v3};

struct fsvc {
	const char *ns, *name;
	uint16_t port;
	uint32_t n;
	uint8_t net; /* endpoints 10.0.<net>.<i+1> */
};

static const struct fsvc fsvcs[] = {
        {"default", "reviews", 9080, 6, 1},    {"default", "reviews-v1", 9080, 2, 2},
        {"default", "reviews-v2", 9080, 2, 3}, {"default", "reviews-v3", 9080, 2, 4},
        {"default", "mirror", 8080, 1, 5},     {"other", "details", 9080, 3, 6},
};

static int fake_lookup(void *ctx, const char *ns, const char *name, uint16_t port,
                       struct wp_arena *a, struct wp_route_svc_eps *out)
{
	(void)ctx;
	for (size_t i = 0; i < WP_ARRAY_SIZE(fsvcs); i++) {
		const struct fsvc *f = &fsvcs[i];
		struct wp_snap_endpoint *ep;
		const struct wp_labels **lab;

		if (strcmp(f->ns, ns) || strcmp(f->name, name))
			continue;
		if (f->port != port)
			return -ESRCH;
		ep = wp_arena_alloc(a, sizeof(*ep) * f->n);
		lab = wp_arena_alloc(a, sizeof(*lab) * f->n);
		assert_non_null(ep);
		assert_non_null(lab);
		for (uint32_t k = 0; k < f->n; k++) {
			ep[k].addr.family = WP_AF_INET;
			ep[k].addr.v4 = __builtin_bswap32(0x0a000000u | (f->net << 8) | (k + 1));
			ep[k].port = (uint16_t)(port + 1);
			ep[k].ready = true;
			ep[k].ns = f->ns;
			/* reviews: v1, v2, v3, v1, v2, v3 */
			lab[k] = k % 3 == 0 ? &lab_v1 : k % 3 == 1 ? &lab_v2 : &lab_v3;
		}
		out->port_name = "http";
		out->n = f->n;
		out->eps = ep;
		out->labels = lab;
		return 0;
	}
	return -ENOENT;
}

struct objs {
	struct wp_obj *v[32];
	unsigned n;
	unsigned n_err;
};

static int obj_cb(void *ctx, struct wp_obj *o)
{
	struct objs *s = ctx;

	assert_true(s->n < WP_ARRAY_SIZE(s->v));
	s->v[s->n++] = o;
	return 0;
}

static void err_cb(void *ctx, const struct wp_model_error *e)
{
	struct objs *s = ctx;

	print_message("model error: %s\n", e->msg);
	s->n_err++;
}

static struct objs *g_objs;

/* Parses yaml and compiles the table for default/reviews:9080. */
static struct wp_route_table *build(const char *yaml)
{
	static struct objs s;
	const struct wp_obj *routes[32], *drs[32];
	struct wp_route_compile_in in = {
	        .ns = "default",
	        .name = "reviews",
	        .port = 9080,
	        .port_name = "http",
	        .routes = routes,
	        .drs = drs,
	        .lookup = fake_lookup,
	};
	struct wp_route_table *t;

	for (unsigned i = 0; i < s.n; i++)
		wp_obj_free(s.v[i]);
	memset(&s, 0, sizeof(s));
	g_objs = &s;
	assert_int_equal(wp_model_parse(yaml, strlen(yaml), "routes.yaml", obj_cb, err_cb, &s), 0);
	for (unsigned i = 0; i < s.n; i++) {
		if (s.v[i]->kind == WP_KIND_HTTPROUTE)
			routes[in.n_routes++] = s.v[i];
		else if (s.v[i]->kind == WP_KIND_DESTINATIONRULE)
			drs[in.n_drs++] = s.v[i];
	}
	t = wp_route_table_build(&in);
	assert_non_null(t);
	for (uint32_t i = 0; i < t->n_errors; i++)
		print_message("compile: %s\n", t->errors[i]);
	return t;
}

static void objs_free(void)
{
	for (unsigned i = 0; g_objs && i < g_objs->n; i++)
		wp_obj_free(g_objs->v[i]);
	if (g_objs)
		g_objs->n = 0;
}

static uint64_t ctr[WP_CTR_MAX];

/* A request: "METHOD target" plus up to 8 "name: value" headers. */
struct treq {
	struct wp_route_req r;
	struct wp_http_hdr h[8];
	char names[8][64];
};

static void mkreq(struct treq *q, uint8_t method, const char *target, ...)
{
	va_list ap;
	const char *hv;

	memset(q, 0, sizeof(*q));
	q->r.target = target;
	q->r.target_len = (uint32_t)strlen(target);
	q->r.path_len = (uint32_t)strcspn(target, "?#");
	q->r.method = method;
	q->r.hdrs = q->h;
	va_start(ap, target);
	while ((hv = va_arg(ap, const char *)) != NULL) {
		const char *colon = strchr(hv, ':');
		uint16_t i = q->r.n_hdrs++;
		size_t nl = (size_t)(colon - hv);

		for (size_t k = 0; k < nl; k++)
			q->names[i][k] = (char)(hv[k] | (hv[k] >= 'A' && hv[k] <= 'Z' ? 0x20 : 0));
		q->h[i].name = q->names[i];
		q->h[i].name_len = (uint16_t)nl;
		q->h[i].value = colon + 2;
		q->h[i].value_len = (uint32_t)strlen(colon + 2);
		if (nl == 6 && !memcmp(q->names[i], "cookie", 6))
			q->h[i].id = WP_HDR_COOKIE;
		if (nl == 4 && !memcmp(q->names[i], "host", 4))
			q->h[i].id = WP_HDR_HOST;
	}
	va_end(ap);
}

static struct wp_route_core core;

/* Name of the service chosen for the request, "404", "500" or "3xx". */
static const char *route_to(const struct wp_route_table *t, struct treq *q)
{
	static char buf[32];
	struct wp_route_decision d;
	int rc = wp_route_select(t, &core, &q->r, &d);

	if (rc == -ENOENT)
		return "404";
	assert_int_equal(rc, 0);
	if (d.cluster)
		return d.cluster->svc_name;
	snprintf(buf, sizeof(buf), "%u", d.status);
	return buf;
}

static const char *hdr_route(const char *rules)
{
	static char y[8192];

	snprintf(y, sizeof(y),
	         "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
	         "  name: r\n  namespace: default\nspec:\n  parentRefs:\n  - kind: Service\n"
	         "    group: \"\"\n    name: reviews\n    port: 9080\n  rules:\n%s",
	         rules);
	return y;
}

static int setup(void **state)
{
	(void)state;
	memset(ctr, 0, sizeof(ctr));
	wp_route_core_init(&core, 42, ctr);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	wp_route_core_fini(&core);
	objs_free();
	return 0;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_default_route(void **state)
{
	struct wp_route_table *t = build("---\n");
	struct treq q;
	struct wp_route_decision d;

	(void)state;
	assert_int_equal(t->n_matches, 0);
	assert_int_equal(t->n_errors, 0);
	mkreq(&q, HTTP_GET, "/anything?x=1", NULL);
	assert_int_equal(wp_route_select(t, &core, &q.r, &d), 0);
	assert_null(d.match);
	assert_true(d.rule->flags & WP_ROUTE_F_DEFAULT);
	assert_non_null(d.cluster);
	assert_string_equal(d.cluster->svc_name, "reviews");
	assert_string_equal(d.cluster->name, "outbound|9080||reviews.default.svc.cluster.local");
	assert_int_equal(d.cluster->n_endpoints, 6);
	/* Istio's defaults: LEAST_REQUEST, no timeout, 2 retries */
	assert_int_equal(d.cluster->lb->policy, WP_LB_LEAST_REQUEST);
	assert_int_equal(d.rule->request_timeout_ms, 0);
	assert_int_equal(d.rule->retry.attempts, 2);
	assert_true(d.rule->retry.on & WP_ROUTE_RETRY_CONNECT_FAILURE);
	assert_true(d.rule->retry.on & WP_ROUTE_RETRY_REFUSED_STREAM);
	assert_true(d.rule->retry.on & WP_ROUTE_RETRY_UNAVAILABLE);
	assert_true(d.rule->retry.on & WP_ROUTE_RETRY_CANCELLED);
	wp_route_table_free(t);
}

static void test_path_matches(void **state)
{
	struct wp_route_table *t = build(hdr_route(
	        "  - matches:\n    - path: {type: Exact, value: /exact}\n"
	        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	        "  - matches:\n    - path: {type: PathPrefix, value: /foo/}\n"
	        "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
	        "  - matches:\n    - path: {type: RegularExpression, value: \"/re/[0-9]+\"}\n"
	        "    backendRefs: [{name: reviews-v3, port: 9080}]\n"));
	static const struct {
		const char *target, *want;
	} cases[] = {
	        {"/exact", "reviews-v1"},
	        {"/exact?q=1", "reviews-v1"},
	        {"/exact/", "404"},
	        {"/exactly", "404"},
	        {"/foo", "reviews-v2"},
	        {"/foo/", "reviews-v2"},
	        {"/foo/bar", "reviews-v2"},
	        {"/foo?x", "reviews-v2"},
	        {"/foobar", "404"},
	        {"/fo", "404"},
	        {"/re/123", "reviews-v3"},
	        {"/re/123?a=b", "reviews-v3"},
	        {"/re/12a", "404"},
	        {"/x/re/1", "404"},
	        {"/re/", "404"},
	};
	struct treq q;

	(void)state;
	assert_int_equal(t->n_errors, 0);
	assert_int_equal(wp_route_core_reserve(&core, t), 0);
	for (size_t i = 0; i < WP_ARRAY_SIZE(cases); i++) {
		mkreq(&q, HTTP_GET, cases[i].target, NULL);
		assert_string_equal(route_to(t, &q), cases[i].want);
	}
	assert_true(ctr[WP_CTR_L7_ROUTE_NO_MATCH] > 0);
	wp_route_table_free(t);
}

static void test_prefix_root_matches_all(void **state)
{
	struct wp_route_table *t =
	        build(hdr_route("  - backendRefs: [{name: reviews-v1, port: 9080}]\n"));
	struct treq q;

	(void)state;
	assert_int_equal(t->n_matches, 1);
	mkreq(&q, HTTP_POST, "/", NULL);
	assert_string_equal(route_to(t, &q), "reviews-v1");
	mkreq(&q, HTTP_GET, "/a/b?c", NULL);
	assert_string_equal(route_to(t, &q), "reviews-v1");
	wp_route_table_free(t);
}

static void test_header_query_method(void **state)
{
	struct wp_route_table *t = build(hdr_route(
	        "  - matches:\n    - headers:\n      - {name: X-User, value: jason}\n"
	        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	        "  - matches:\n    - headers:\n      - {name: x-agent, type: RegularExpression,"
	        " value: \"curl/[0-9.]+\"}\n"
	        "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
	        "  - matches:\n    - queryParams:\n      - {name: v, value: \"3\"}\n"
	        "    backendRefs: [{name: reviews-v3, port: 9080}]\n"
	        "  - matches:\n    - queryParams:\n      - {name: id, type: RegularExpression,"
	        " value: \"[a-f]{4}\"}\n"
	        "    backendRefs: [{name: details, namespace: other, port: 9080}]\n"
	        "  - matches:\n    - method: DELETE\n"
	        "    backendRefs: [{name: mirror, port: 8080}]\n"));
	struct treq q;

	(void)state;
	assert_int_equal(t->n_errors, 0);
	assert_int_equal(t->n_fields, 2);
	assert_int_equal(wp_route_core_reserve(&core, t), 0);
	mkreq(&q, HTTP_GET, "/", "X-User: jason", NULL);
	assert_string_equal(route_to(t, &q), "reviews-v1");
	mkreq(&q, HTTP_GET, "/", "x-user: Jason", NULL);
	assert_string_equal(route_to(t, &q), "404"); /* values are case-sensitive */
	mkreq(&q, HTTP_GET, "/", "X-Agent: curl/8.1.2", NULL);
	assert_string_equal(route_to(t, &q), "reviews-v2");
	mkreq(&q, HTTP_GET, "/", "X-Agent: curl/8.1.2 extra", NULL);
	assert_string_equal(route_to(t, &q), "404"); /* regexes match the whole value */
	mkreq(&q, HTTP_GET, "/p?a=1&v=3", NULL);
	assert_string_equal(route_to(t, &q), "reviews-v3");
	mkreq(&q, HTTP_GET, "/p?V=3", NULL);
	assert_string_equal(route_to(t, &q), "404"); /* query names are case-sensitive */
	mkreq(&q, HTTP_GET, "/p?id=beef", NULL);
	assert_string_equal(route_to(t, &q), "details");
	mkreq(&q, HTTP_GET, "/p?id=beefy", NULL);
	assert_string_equal(route_to(t, &q), "404");
	mkreq(&q, HTTP_DELETE, "/x", NULL);
	assert_string_equal(route_to(t, &q), "mirror");
	mkreq(&q, HTTP_PUT, "/x", NULL);
	assert_string_equal(route_to(t, &q), "404");
	wp_route_table_free(t);
}

/* Gateway API precedence: exact > longest prefix > (regex) > method >
 * most headers > most query params > oldest route > ns/name > rule order. */
static void test_precedence(void **state)
{
	static const char yaml[] =
	        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
	        "  name: young\n  namespace: default\n  creationTimestamp: 2024-05-02T00:00:00Z\n"
	        "spec:\n  parentRefs: [{kind: Service, group: '', name: reviews}]\n  rules:\n"
	        "  - matches: [{path: {type: PathPrefix, value: /a}}]\n"
	        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	        "  - matches: [{path: {type: PathPrefix, value: /a/b}}]\n"
	        "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
	        "  - matches: [{path: {type: Exact, value: /a/b/c}}]\n"
	        "    backendRefs: [{name: reviews-v3, port: 9080}]\n"
	        "  - matches: [{path: {type: RegularExpression, value: '/a/b/c/.*'}}]\n"
	        "    backendRefs: [{name: mirror, port: 8080}]\n"
	        "  - matches:\n    - path: {type: PathPrefix, value: /m}\n"
	        "      headers: [{name: h1, value: '1'}, {name: h2, value: '2'}]\n"
	        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	        "  - matches:\n    - path: {type: PathPrefix, value: /m}\n      method: GET\n"
	        "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
	        "  - matches:\n    - path: {type: PathPrefix, value: /m}\n"
	        "      headers: [{name: h1, value: '1'}]\n"
	        "      queryParams: [{name: q, value: '1'}]\n"
	        "    backendRefs: [{name: reviews-v3, port: 9080}]\n"
	        "  - matches:\n    - path: {type: PathPrefix, value: /m}\n"
	        "      headers: [{name: h1, value: '1'}]\n"
	        "    backendRefs: [{name: mirror, port: 8080}]\n"
	        "  - matches: [{path: {type: PathPrefix, value: /t}}]\n"
	        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	        "  - matches: [{path: {type: PathPrefix, value: /t}}]\n"
	        "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
	        "---\n"
	        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
	        "  name: old\n  namespace: default\n  creationTimestamp: 2024-05-01T00:00:00Z\n"
	        "spec:\n  parentRefs: [{kind: Service, group: '', name: reviews}]\n  rules:\n"
	        "  - matches: [{path: {type: PathPrefix, value: /t}}]\n"
	        "    backendRefs: [{name: reviews-v3, port: 9080}]\n"
	        "  - matches: [{path: {type: PathPrefix, value: /u}}]\n"
	        "    backendRefs: [{name: reviews-v3, port: 9080}]\n"
	        "---\n"
	        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
	        "  name: aaa\n  namespace: default\n  creationTimestamp: 2024-05-01T00:00:00Z\n"
	        "spec:\n  parentRefs: [{kind: Service, group: '', name: reviews}]\n  rules:\n"
	        "  - matches: [{path: {type: PathPrefix, value: /u}}]\n"
	        "    backendRefs: [{name: mirror, port: 8080}]\n";
	static const struct {
		uint8_t method;
		const char *target, *h1, *h2, *want;
	} cases[] = {
	        {HTTP_GET, "/a", NULL, NULL, "reviews-v1"},
	        {HTTP_GET, "/a/x", NULL, NULL, "reviews-v1"},
	        {HTTP_GET, "/a/b", NULL, NULL, "reviews-v2"},     /* longer prefix */
	        {HTTP_GET, "/a/b/c", NULL, NULL, "reviews-v3"},   /* exact */
	        {HTTP_GET, "/a/b/c/d", NULL, NULL, "reviews-v2"}, /* prefix beats regex */
	        {HTTP_POST, "/m", "h1: 1", "h2: 2", "reviews-v1"},
	        {HTTP_GET, "/m", "h1: 1", "h2: 2", "reviews-v2"},   /* method beats headers */
	        {HTTP_POST, "/m?q=1", "h1: 1", NULL, "reviews-v3"}, /* query tie-break */
	        {HTTP_POST, "/m", "h1: 1", NULL, "mirror"},
	        {HTTP_POST, "/m", NULL, NULL, "404"},
	        {HTTP_GET, "/t", NULL, NULL, "reviews-v3"}, /* oldest route */
	        {HTTP_GET, "/u", NULL, NULL, "mirror"},     /* same age: ns/name order */
	};
	struct wp_route_table *t = build(yaml);
	struct treq q;

	(void)state;
	assert_int_equal(t->n_errors, 0);
	assert_int_equal(wp_route_core_reserve(&core, t), 0);
	for (size_t i = 0; i < WP_ARRAY_SIZE(cases); i++) {
		mkreq(&q, cases[i].method, cases[i].target, cases[i].h1, cases[i].h2, NULL);
		if (!cases[i].h1)
			mkreq(&q, cases[i].method, cases[i].target, NULL);
		else if (!cases[i].h2)
			mkreq(&q, cases[i].method, cases[i].target, cases[i].h1, NULL);
		print_message("case %zu: %s\n", i, cases[i].target);
		assert_string_equal(route_to(t, &q), cases[i].want);
	}
	wp_route_table_free(t);
}

static void test_weighted_split(void **state)
{
	struct wp_route_table *t = build(
	        hdr_route("  - backendRefs:\n    - {name: reviews-v1, port: 9080, weight: 80}\n"
	                  "    - {name: reviews-v2, port: 9080, weight: 20}\n"));
	struct treq q;
	unsigned v1 = 0, v2 = 0;

	(void)state;
	mkreq(&q, HTTP_GET, "/", NULL);
	for (int i = 0; i < 10000; i++) {
		const char *s = route_to(t, &q);

		if (!strcmp(s, "reviews-v1"))
			v1++;
		else if (!strcmp(s, "reviews-v2"))
			v2++;
		else
			fail_msg("unexpected %s", s);
	}
	print_message("80/20 split: %u / %u\n", v1, v2);
	assert_in_range(v1, 7700, 8300);
	assert_in_range(v2, 1700, 2300);
	wp_route_table_free(t);
}

static void test_zero_weight_and_bad_backend(void **state)
{
	struct wp_route_table *t =
	        build(hdr_route("  - matches: [{path: {type: PathPrefix, value: /zero}}]\n"
	                        "    backendRefs: [{name: reviews-v1, port: 9080, weight: 0}]\n"
	                        "  - matches: [{path: {type: PathPrefix, value: /none}}]\n"
	                        "  - matches: [{path: {type: PathPrefix, value: /missing}}]\n"
	                        "    backendRefs: [{name: nope, port: 9080}]\n"));
	struct treq q;

	(void)state;
	assert_int_equal(t->n_errors, 1);
	assert_non_null(strstr(t->errors[0], "spec.rules[2].backendRefs[0]"));
	assert_non_null(strstr(t->errors[0], "no such Service"));
	mkreq(&q, HTTP_GET, "/zero", NULL);
	assert_string_equal(route_to(t, &q), "500");
	mkreq(&q, HTTP_GET, "/none", NULL);
	assert_string_equal(route_to(t, &q), "500");
	mkreq(&q, HTTP_GET, "/missing", NULL);
	assert_string_equal(route_to(t, &q), "500");
	assert_int_equal(ctr[WP_CTR_L7_ROUTE_NO_BACKEND], 3);
	wp_route_table_free(t);
}

/* Filters: header modifiers go through the http1 writer. */
static void test_header_modifiers(void **state)
{
	struct wp_route_table *t = build(hdr_route(
	        "  - filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n"
	        "        set: [{name: X-Set, value: s}]\n        add: [{name: X-Add, value: a}]\n"
	        "        remove: [X-Drop]\n"
	        "    - type: ResponseHeaderModifier\n      responseHeaderModifier:\n"
	        "        set: [{name: X-Resp, value: r}]\n        remove: [server]\n"
	        "    backendRefs: [{name: reviews, port: 9080}]\n"));
	struct wp_http1_msg msg = {0};
	struct wp_http_hdr hdrs[3] = {
	        {.name = "host",
	         .name_len = 4,
	         .value = "reviews",
	         .value_len = 7,
	         .id = WP_HDR_HOST},
	        {.name = "x-set", .name_len = 5, .value = "old", .value_len = 3},
	        {.name = "x-drop", .name_len = 6, .value = "d", .value_len = 1},
	};
	struct wp_http1_req_opts opts = {0};
	struct wp_route_decision d;
	struct wp_route_req rq;
	char buf[512];
	int n;

	(void)state;
	assert_int_equal(t->n_errors, 0);
	msg.target = "/p";
	msg.target_len = 2;
	msg.method = HTTP_GET;
	msg.hdrs = hdrs;
	msg.n_hdrs = 3;
	wp_route_req_init_http1(&rq, &msg, NULL);
	assert_int_equal(rq.path_len, 2);
	assert_int_equal(wp_route_select(t, &core, &rq, &d), 0);
	assert_int_equal(d.rule->req_mods.n_set, 1);
	assert_int_equal(d.rule->req_mods.n_add, 1);
	assert_int_equal(d.rule->req_mods.n_remove, 1);
	opts.mods = &d.rule->req_mods;
	n = wp_http1_write_request_head(&msg, &opts, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf,
	                    "GET /p HTTP/1.1\r\nhost: reviews\r\nx-set: s\r\nx-add: a\r\n\r\n");
	assert_int_equal(d.rule->resp_mods.n_set, 1);
	assert_string_equal(d.rule->resp_mods.set[0].name, "x-resp");
	assert_string_equal(d.rule->resp_mods.remove[0].name, "server");
	wp_route_table_free(t);
}

static void test_url_rewrite(void **state)
{
	struct wp_route_table *t = build(
	        hdr_route("  - matches: [{path: {type: PathPrefix, value: /api/v1}}]\n"
	                  "    filters:\n    - type: URLRewrite\n      urlRewrite:\n"
	                  "        hostname: new.example\n"
	                  "        path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}\n"
	                  "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
	                  "  - matches: [{path: {type: PathPrefix, value: /strip}}]\n"
	                  "    filters:\n    - type: URLRewrite\n      urlRewrite:\n"
	                  "        path: {type: ReplacePrefixMatch, replacePrefixMatch: /}\n"
	                  "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
	                  "  - matches: [{path: {type: Exact, value: /old}}]\n"
	                  "    filters:\n    - type: URLRewrite\n      urlRewrite:\n"
	                  "        path: {type: ReplaceFullPath, replaceFullPath: /new/place}\n"
	                  "    backendRefs: [{name: reviews-v2, port: 9080}]\n"));
	static const struct {
		const char *in, *out;
	} cases[] = {
	        {"/api/v1", "/v2"},     {"/api/v1/x?y=1", "/v2/x?y=1"},
	        {"/strip/a/b", "/a/b"}, {"/strip", "/"},
	        {"/strip?q", "/?q"},    {"/old?k=v", "/new/place?k=v"},
	};
	struct wp_route_decision d;
	struct treq q;
	char buf[128];

	(void)state;
	assert_int_equal(t->n_errors, 0);
	for (size_t i = 0; i < WP_ARRAY_SIZE(cases); i++) {
		int n;

		mkreq(&q, HTTP_GET, cases[i].in, NULL);
		assert_int_equal(wp_route_select(t, &core, &q.r, &d), 0);
		n = wp_route_rewrite_target(&d, &q.r, buf, sizeof(buf));
		assert_true(n > 0);
		buf[n] = '\0';
		assert_string_equal(buf, cases[i].out);
	}
	/* hostname goes out as a `set host` */
	mkreq(&q, HTTP_GET, "/api/v1", NULL);
	assert_int_equal(wp_route_select(t, &core, &q.r, &d), 0);
	assert_int_equal(d.rule->req_mods.n_set, 1);
	assert_string_equal(d.rule->req_mods.set[0].name, "host");
	assert_string_equal(d.rule->req_mods.set[0].value, "new.example");
	assert_int_equal(wp_route_rewrite_target(&d, &q.r, buf, 2), -ENOSPC);
	wp_route_table_free(t);
}

static void test_redirect(void **state)
{
	struct wp_route_table *t = build(hdr_route(
	        "  - matches: [{path: {type: PathPrefix, value: /go}}]\n"
	        "    filters:\n    - type: RequestRedirect\n      requestRedirect:\n"
	        "        scheme: https\n        hostname: secure.example\n        statusCode: 301\n"
	        "        path: {type: ReplacePrefixMatch, replacePrefixMatch: /gone}\n"
	        "  - matches: [{path: {type: PathPrefix, value: /plain}}]\n"
	        "    filters:\n    - type: RequestRedirect\n      requestRedirect:\n"
	        "        port: 8443\n"));
	struct wp_route_decision d;
	struct treq q;
	char buf[256];
	int n;

	(void)state;
	assert_int_equal(t->n_errors, 0);
	mkreq(&q, HTTP_GET, "/go/x?a=1", "Host: reviews:9080", NULL);
	assert_int_equal(wp_route_select(t, &core, &q.r, &d), 0);
	assert_null(d.cluster);
	assert_int_equal(d.status, 301);
	n = wp_route_write_redirect(&d, &q.r, true, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "HTTP/1.1 301 Moved Permanently\r\n"
	                         "location: https://secure.example/gone/x?a=1\r\n"
	                         "content-length: 0\r\n\r\n");
	mkreq(&q, HTTP_GET, "/plain", "Host: reviews:9080", NULL);
	assert_int_equal(wp_route_select(t, &core, &q.r, &d), 0);
	assert_int_equal(d.status, 302);
	n = wp_route_write_redirect(&d, &q.r, false, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, "HTTP/1.1 302 Found\r\nlocation: http://reviews:8443/plain\r\n"
	                         "content-length: 0\r\nconnection: close\r\n\r\n");
	assert_int_equal(wp_route_write_redirect(&d, &q.r, false, buf, 20), -ENOSPC);
	wp_route_table_free(t);
}

static void test_mirror_timeouts_retry(void **state)
{
	struct wp_route_table *t = build(
	        hdr_route("  - matches: [{path: {type: PathPrefix, value: /all}}]\n"
	                  "    filters:\n    - type: RequestMirror\n      requestMirror:\n"
	                  "        backendRef: {name: mirror, port: 8080}\n"
	                  "    timeouts: {request: 10s, backendRequest: 1500ms}\n"
	                  "    retry: {attempts: 5, codes: [502, 503], backoff: 100ms}\n"
	                  "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	                  "  - matches: [{path: {type: PathPrefix, value: /some}}]\n"
	                  "    filters:\n    - type: RequestMirror\n      requestMirror:\n"
	                  "        backendRef: {name: mirror, port: 8080}\n        percent: 25\n"
	                  "    timeouts: {request: 1m30s}\n"
	                  "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	                  "  - matches: [{path: {type: PathPrefix, value: /r2}}]\n"
	                  "    retry: {backoff: 10ms}\n"
	                  "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	                  "  - matches: [{path: {type: PathPrefix, value: /r0}}]\n"
	                  "    retry: {attempts: 0, codes: [503]}\n"
	                  "    backendRefs: [{name: reviews-v1, port: 9080}]\n"));
	struct wp_route_decision d;
	struct treq q;
	unsigned mirrored = 0;

	(void)state;
	assert_int_equal(t->n_errors, 0);
	mkreq(&q, HTTP_GET, "/all", NULL);
	assert_int_equal(wp_route_select(t, &core, &q.r, &d), 0);
	assert_int_equal(d.n_mirrors, 1);
	assert_string_equal(d.mirrors[0]->svc_name, "mirror");
	assert_int_equal(d.rule->request_timeout_ms, 10000);
	assert_int_equal(d.rule->backend_timeout_ms, 1500);
	assert_int_equal(d.rule->retry.attempts, 5);
	assert_int_equal(d.rule->retry.n_codes, 2);
	assert_int_equal(d.rule->retry.codes[1], 503);
	assert_int_equal(d.rule->retry.backoff_ms, 100);
	/* istiod's conversion: the codes replace the default 503 */
	assert_int_equal(d.rule->retry.on,
	                 WP_ROUTE_RETRY_CONNECT_FAILURE | WP_ROUTE_RETRY_REFUSED_STREAM |
	                         WP_ROUTE_RETRY_UNAVAILABLE | WP_ROUTE_RETRY_CANCELLED);
	/* a retry without codes retries no status; attempts default to 2 */
	mkreq(&q, HTTP_GET, "/r2", NULL);
	assert_int_equal(wp_route_select(t, &core, &q.r, &d), 0);
	assert_int_equal(d.rule->retry.attempts, 2);
	assert_int_equal(d.rule->retry.n_codes, 0);
	assert_int_equal(d.rule->retry.backoff_ms, 10);
	assert_true(d.rule->retry.on & WP_ROUTE_RETRY_CONNECT_FAILURE);
	/* attempts 0: no retry at all */
	mkreq(&q, HTTP_GET, "/r0", NULL);
	assert_int_equal(wp_route_select(t, &core, &q.r, &d), 0);
	assert_int_equal(d.rule->retry.attempts, 0);
	assert_int_equal(d.rule->retry.on, 0);
	assert_int_equal(d.rule->retry.n_codes, 0);
	mkreq(&q, HTTP_GET, "/some", NULL);
	for (int i = 0; i < 4000; i++) {
		assert_int_equal(wp_route_select(t, &core, &q.r, &d), 0);
		mirrored += d.n_mirrors;
	}
	assert_int_equal(d.rule->request_timeout_ms, 90000);
	assert_in_range(mirrored, 880, 1120);
	wp_route_table_free(t);
}

static void test_durations(void **state)
{
	uint32_t ms;

	(void)state;
	assert_int_equal(wp_route_parse_duration("1h", &ms), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(wp_route_parse_duration("1h2m3s4ms", &ms), 0);
	assert_int_equal(ms, 3723004);
	assert_int_equal(wp_route_parse_duration("0s", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(wp_route_parse_duration("", &ms), -EINVAL);
	assert_int_equal(wp_route_parse_duration("10", &ms), -EINVAL);
	assert_int_equal(wp_route_parse_duration("123456s", &ms), -EINVAL);
	assert_int_equal(wp_route_parse_duration("1s1s1s1s1s", &ms), -EINVAL);
	assert_int_equal(wp_route_parse_duration("1.5s", &ms), -EINVAL);
}

static const char *dr_yaml(const char *host, const char *tp)
{
	static char y[4096];

	snprintf(y, sizeof(y),
	         "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
	         "  name: dr-%zu\n  namespace: default\nspec:\n  host: \"%s\"\n%s",
	         strlen(host), host, tp);
	return y;
}

static void test_destinationrule_lb(void **state)
{
	static const struct {
		const char *tp;
		enum wp_lb_policy policy;
		uint8_t key;
	} cases[] = {
	        {"  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n", WP_LB_ROUND_ROBIN, 0},
	        {"  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n", WP_LB_RANDOM, 0},
	        {"  trafficPolicy: {loadBalancer: {simple: LEAST_REQUEST}}\n", WP_LB_LEAST_REQUEST,
	         0},
	        {"  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
	         "        httpHeaderName: X-User\n",
	         WP_LB_RING_HASH, WP_ROUTE_HASH_HEADER},
	        {"  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
	         "        httpCookie: {name: session, ttl: 0s}\n        maglev: {tableSize: "
	         "1009}\n",
	         WP_LB_MAGLEV, WP_ROUTE_HASH_COOKIE},
	        {"  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
	         "        useSourceIp: true\n        ringHash: {minimumRingSize: 4096}\n",
	         WP_LB_RING_HASH, WP_ROUTE_HASH_SOURCE_IP},
	        {"  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
	         "        httpQueryParameterName: user\n",
	         WP_LB_RING_HASH, WP_ROUTE_HASH_QUERY},
	        {"  trafficPolicy:\n    loadBalancer: {simple: RANDOM}\n    portLevelSettings:\n"
	         "    - port: {number: 9080}\n      loadBalancer: {simple: ROUND_ROBIN}\n",
	         WP_LB_ROUND_ROBIN, 0},
	};
	static const char *hosts[] = {"reviews", "reviews.default.svc.cluster.local",
	                              "*.default.svc.cluster.local"};

	(void)state;
	for (size_t h = 0; h < WP_ARRAY_SIZE(hosts); h++)
		for (size_t i = 0; i < WP_ARRAY_SIZE(cases); i++) {
			struct wp_route_table *t = build(dr_yaml(hosts[h], cases[i].tp));
			const struct wp_route_cluster *cl = &t->clusters[t->default_cluster];

			assert_int_equal(t->n_errors, 0);
			assert_int_equal(cl->lb->policy, cases[i].policy);
			assert_int_equal(cl->hash_key, cases[i].key);
			wp_route_table_free(t);
		}
	{
		struct wp_route_table *t = build(dr_yaml(
		        "reviews", "  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n"
		                   "        ringHash: {minimumRingSize: 4096}\n"
		                   "        httpCookie: {name: session}\n"));
		const struct wp_route_cluster *cl = &t->clusters[t->default_cluster];
		struct treq a, b, c;
		uint64_t ha, hb, hc;

		assert_true(cl->lb->ring_len >= 4096);
		mkreq(&a, HTTP_GET, "/", "Cookie: x=1; session=abc", NULL);
		mkreq(&b, HTTP_GET, "/", "Cookie: session=abc", NULL);
		mkreq(&c, HTTP_GET, "/", "Cookie: other=abc", NULL);
		assert_true(wp_route_cluster_hash(cl, &a.r, &ha));
		assert_true(wp_route_cluster_hash(cl, &b.r, &hb));
		assert_false(wp_route_cluster_hash(cl, &c.r, &hc));
		assert_true(ha == hb);
		wp_route_table_free(t);
	}
	{
		/* a DR for another host does not apply */
		struct wp_route_table *t = build(
		        dr_yaml("details", "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n"));

		assert_int_equal(t->clusters[t->default_cluster].lb->policy, WP_LB_LEAST_REQUEST);
		wp_route_table_free(t);
	}
}

static void test_subsets(void **state)
{
	struct wp_route_table *t = build(dr_yaml(
	        "reviews", "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n  subsets:\n"
	                   "  - name: v1\n    labels: {version: v1}\n"
	                   "  - name: v2\n    labels: {version: v2}\n"
	                   "    trafficPolicy:\n      loadBalancer:\n        consistentHash:\n"
	                   "          httpHeaderName: x-user\n"
	                   "  - name: none\n    labels: {version: v9}\n"));
	const struct wp_route_cluster *all, *v1, *v2, *none;
	struct wp_lb_core lc;
	struct treq q;
	uint64_t h;

	(void)state;
	assert_int_equal(t->n_errors, 0);
	all = wp_route_cluster_find(t, "default", "reviews", 9080, NULL);
	v1 = wp_route_cluster_find(t, "default", "reviews", 9080, "v1");
	v2 = wp_route_cluster_find(t, "default", "reviews", 9080, "v2");
	none = wp_route_cluster_find(t, "default", "reviews", 9080, "none");
	assert_non_null(all);
	assert_non_null(v1);
	assert_non_null(v2);
	assert_non_null(none);
	assert_null(wp_route_cluster_find(t, "default", "reviews", 9080, "v3"));
	assert_int_equal(all->n_endpoints, 6);
	assert_int_equal(v1->n_endpoints, 2);
	assert_int_equal(v2->n_endpoints, 2);
	assert_int_equal(none->n_endpoints, 0);
	assert_string_equal(v1->name, "outbound|9080|v1|reviews.default.svc.cluster.local");
	/* v1 endpoints are 10.0.1.1 and 10.0.1.4 (labels v1,v2,v3,v1,v2,v3) */
	for (uint32_t i = 0; i < v1->n_endpoints; i++) {
		uint32_t a = __builtin_bswap32(v1->endpoints[i].addr.v4) & 0xff;

		assert_true(a == 1 || a == 4);
	}
	assert_int_equal(v1->lb->policy, WP_LB_RANDOM); /* inherits the top level */
	assert_int_equal(v2->lb->policy, WP_LB_RING_HASH);
	assert_int_equal(v2->hash_key, WP_ROUTE_HASH_HEADER);
	/* picks on v1 only ever land on v1 endpoints; v2 is sticky per user */
	wp_lb_core_init(&lc, v1->lb, 7, NULL, ctr);
	for (int i = 0; i < 100; i++) {
		int k = wp_lb_pick(v1->lb, &lc, 0, false);

		assert_true(k >= 0 && k < 2);
	}
	wp_lb_core_init(&lc, v2->lb, 7, NULL, ctr);
	mkreq(&q, HTTP_GET, "/", "x-user: jason", NULL);
	assert_true(wp_route_cluster_hash(v2, &q.r, &h));
	{
		int first = wp_lb_pick(v2->lb, &lc, h, true);

		for (int i = 0; i < 50; i++)
			assert_int_equal(wp_lb_pick(v2->lb, &lc, h, true), first);
	}
	assert_int_equal(wp_lb_pick(none->lb, &lc, 0, false), -ENOENT);
	wp_route_table_free(t);
}

/* Malformed parts are rejected with file:line:field; the rest compiles. */
static void test_malformed_parts(void **state)
{
	struct wp_route_table *t = build(
	        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n" /* 1-3 */
	        "  name: r\n  namespace: default\nspec:\n"                               /* 4-6 */
	        "  parentRefs: [{kind: Service, group: '', name: reviews}]\n"            /* 7 */
	        "  rules:\n"                                                             /* 8 */
	        "  - matches: [{path: {type: RegularExpression, value: '(a)\\1'}}]\n"    /* 9 */
	        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"                    /* 10 */
	        "  - filters:\n"                                                         /* 11 */
	        "    - type: ExtensionRef\n"                                             /* 12 */
	        "    backendRefs: [{name: reviews-v2, port: 9080}]\n"                    /* 13 */
	        "  - matches: [{path: {type: Exact, value: /ok}}]\n"                     /* 14 */
	        "    backendRefs: [{name: reviews-v3, port: 9080}]\n"                    /* 15 */
	        "  - matches: [{method: BREW}]\n"                                        /* 16 */
	        "  - matches: [{path: {type: Exact, value: /t}}]\n"                      /* 17 */
	        "    timeouts: {request: 5 seconds}\n"                                   /* 18 */
	        "---\n"
	        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
	        "  name: dr\n  namespace: default\nspec:\n  host: reviews\n"
	        "  trafficPolicy:\n    loadBalancer: {simple: PASSTHROUGH}\n"
	        "  subsets:\n  - labels: {version: v1}\n  - name: v2\n    labels: {version: v2}\n");
	struct treq q;
	bool seen[6] = {0};

	(void)state;
	for (uint32_t i = 0; i < t->n_errors; i++) {
		const char *e = t->errors[i];

		if (strstr(e, "routes.yaml:9: HTTPRoute default/r: spec.rules[0].matches[0].path: "
		              "regular expression"))
			seen[0] = true;
		else if (strstr(e, "routes.yaml:12: HTTPRoute default/r: spec.rules[1].filters[0]: "
		                   "unsupported filter type ExtensionRef"))
			seen[1] = true;
		else if (strstr(e, "routes.yaml:16: HTTPRoute default/r: "
		                   "spec.rules[3].matches[0].method: unknown method BREW"))
			seen[2] = true;
		else if (strstr(e, "routes.yaml:18: HTTPRoute default/r: spec.rules[4].timeouts: "
		                   "not a duration"))
			seen[3] = true;
		else if (strstr(e, "DestinationRule default/dr: spec.trafficPolicy.loadBalancer."
		                   "simple: unsupported policy PASSTHROUGH"))
			seen[4] = true;
		else if (strstr(e, "DestinationRule default/dr: spec.subsets[0]: a subset needs a "
		                   "name"))
			seen[5] = true;
		else
			fail_msg("unexpected error %s", e);
	}
	for (size_t i = 0; i < WP_ARRAY_SIZE(seen); i++) {
		print_message("error %zu seen: %d\n", i, seen[i]);
		assert_true(seen[i]);
	}
	assert_int_equal(t->n_matches, 1); /* only rule 2 (/ok) survived */
	mkreq(&q, HTTP_GET, "/ok", NULL);
	assert_string_equal(route_to(t, &q), "reviews-v3");
	mkreq(&q, HTTP_GET, "/aa", NULL);
	assert_string_equal(route_to(t, &q), "404");
	/* the DR's good parts still apply: default policy, subset v2 */
	assert_int_equal(t->clusters[t->default_cluster].lb->policy, WP_LB_LEAST_REQUEST);
	assert_non_null(wp_route_cluster_find(t, "default", "reviews", 9080, "v2"));
	wp_route_table_free(t);
}

static void test_parent_ref_port(void **state)
{
	struct wp_route_table *t = build(
	        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
	        "  name: other-port\n  namespace: default\nspec:\n"
	        "  parentRefs: [{kind: Service, group: '', name: reviews, port: 9999}]\n"
	        "  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]\n"
	        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
	        "  name: consumer\n  namespace: other\nspec:\n"
	        "  parentRefs: [{kind: Service, group: '', name: reviews, namespace: default}]\n"
	        "  rules: [{backendRefs: [{name: reviews-v1, namespace: default, port: 9080}]}]\n"
	        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
	        "  name: gw\n  namespace: default\nspec:\n"
	        "  parentRefs: [{name: reviews}]\n"
	        "  rules: [{backendRefs: [{name: reviews-v1, port: 9080}]}]\n");

	(void)state;
	/* wrong port, a consumer route and a Gateway parent: none apply */
	assert_int_equal(t->n_matches, 0);
	assert_int_equal(t->n_errors, 0);
	wp_route_table_free(t);
}

/* ---- regex differential: Hyperscan (through the table) vs glibc ERE ------------- */

static uint64_t rs = 88172645463325252ULL;

static uint32_t rnd(uint32_t n)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)(rs % n);
}

/* A random pattern from a grammar both engines read the same way. */
static void gen_re(char *out, size_t cap, int depth)
{
	size_t n = strlen(out);
	int k = rnd(depth > 2 ? 4 : 8);

	if (n + 16 >= cap)
		return;
	switch (k) {
	case 0:
	case 1:
	case 2:
	case 3: {
		static const char *atoms[] = {"a", "b", "c", ".", "[ab]", "[^a]", "/", "x"};
		strcat(out, atoms[rnd(WP_ARRAY_SIZE(atoms))]);
		break;
	}
	case 4:
		strcat(out, "(");
		gen_re(out, cap, depth + 1);
		strcat(out, "|");
		gen_re(out, cap, depth + 1);
		strcat(out, ")");
		break;
	default:
		gen_re(out, cap, depth + 1);
		gen_re(out, cap, depth + 1);
		break;
	}
	if (rnd(4) == 0) {
		static const char *q[] = {"*", "+", "?", "{1,2}"};
		char tmp[256];

		snprintf(tmp, sizeof(tmp), "(%s)%s", out + n, q[rnd(4)]);
		if (n + strlen(tmp) < cap)
			strcpy(out + n, tmp);
	}
}

static void test_regex_differential(void **state)
{
	unsigned agree = 0, matched = 0;

	(void)state;
	for (int p = 0; p < 150; p++) {
		char pat[128] = "", y[1024], full[160];
		struct wp_route_table *t;
		regex_t re;

		gen_re(pat, 64, 0);
		snprintf(y, sizeof(y),
		         "  - matches: [{path: {type: RegularExpression, value: '%s'}}]\n"
		         "    backendRefs: [{name: reviews-v1, port: 9080}]\n",
		         pat);
		t = build(hdr_route(y));
		assert_int_equal(t->n_errors, 0);
		assert_int_equal(wp_route_core_reserve(&core, t), 0);
		snprintf(full, sizeof(full), "^(%s)$", pat);
		assert_int_equal(regcomp(&re, full, REG_EXTENDED | REG_NOSUB), 0);
		for (int s = 0; s < 60; s++) {
			char in[16];
			int len = (int)rnd(7);
			struct treq q;
			bool hs, ref;

			for (int i = 0; i < len; i++)
				in[i] = "abcx/"[rnd(5)];
			in[len] = '\0';
			ref = regexec(&re, in, 0, NULL, 0) == 0;
			/* the matcher sees the path before '?' */
			{
				char target[40];

				snprintf(target, sizeof(target), "%s?q=%s", in, in);
				mkreq(&q, HTTP_GET, target, NULL);
				q.r.path_len = (uint32_t)len;
				hs = strcmp(route_to(t, &q), "404") != 0;
			}
			if (hs != ref)
				fail_msg("pattern '%s' input '%s': hyperscan %d, glibc %d", pat, in,
				         hs, ref);
			agree++;
			matched += ref;
		}
		regfree(&re);
		wp_route_table_free(t);
	}
	print_message("regex differential: %u inputs agree, %u matched\n", agree, matched);
	assert_true(matched > 100); /* the inputs exercise both outcomes */
	assert_true(agree - matched > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_default_route, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_path_matches, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_prefix_root_matches_all, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_header_query_method, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_weighted_split, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_zero_weight_and_bad_backend, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_header_modifiers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_url_rewrite, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_redirect, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_mirror_timeouts_retry, setup, teardown),
	        cmocka_unit_test(test_durations),
	        cmocka_unit_test_setup_teardown(test_destinationrule_lb, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_subsets, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_malformed_parts, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_parent_ref_port, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_regex_differential, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
