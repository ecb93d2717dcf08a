/*
 * The request pipeline's policy stages (dp/l7/pipeline.c): path
 * normalization as the proxies apply it to a request, and authorization of
 * HTTP requests and opaque TCP streams over tables compiled from
 * AuthorizationPolicy YAML by the real compiler, with the decision
 * counters; the fault stage's decision (dp/l7/fault.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cbreak.h"
#include "fault.h"
#include "pipeline.h"
#include "wp/addr.h"
#include "wp/counters.h"

#include "authz_fixture.h"
#include "wp/rand.h"

static uint64_t ctr[WP_CTR_MAX];

static const char *policies =
        "apiVersion: security.istio.io/v1\n"
        "kind: AuthorizationPolicy\n"
        "metadata: {name: allow-productpage, namespace: default}\n"
        "spec:\n"
        "  targetRefs: [{kind: Service, group: '', name: reviews}]\n"
        "  action: ALLOW\n"
        "  rules:\n"
        "  - from: [{source: {principals: [cluster.local/ns/default/sa/productpage]}}]\n"
        "    to: [{operation: {methods: [GET], paths: ['/api/*']}}]\n"
        "  - from: [{source: {namespaces: [ops]}}]\n"
        "---\n"
        "apiVersion: security.istio.io/v1\n"
        "kind: AuthorizationPolicy\n"
        "metadata: {name: deny-admin, namespace: default}\n"
        "spec:\n"
        "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: waypoint}]\n"
        "  action: DENY\n"
        "  rules:\n"
        "  - to: [{operation: {paths: ['/api/admin*']}}]\n"
        "  - when: [{key: 'request.headers[x-user]', values: [mallory]}]\n"
        "---\n"
        "apiVersion: security.istio.io/v1\n"
        "kind: AuthorizationPolicy\n"
        "metadata: {name: audit-all, namespace: default}\n"
        "spec:\n"
        "  targetRefs: [{kind: Service, group: '', name: reviews}]\n"
        "  action: AUDIT\n"
        "  rules: [{to: [{operation: {hosts: ['REVIEWS.default.svc.cluster.local']}}]}]\n";

static void req_init(struct wp_route_req *r, const char *target, const struct wp_http_hdr *h,
                     uint16_t nh)
{
	memset(r, 0, sizeof(*r));
	r->target = target;
	r->target_len = (uint32_t)strlen(target);
	while (r->path_len < r->target_len && target[r->path_len] != '?' &&
	       target[r->path_len] != '#')
		r->path_len++;
	r->hdrs = h;
	r->n_hdrs = nh;
}

static void norm_is(struct wp_pipe_core *pc, const char *in, const char *out, uint32_t path_len)
{
	struct wp_route_req r;

	req_init(&r, in, NULL, 0);
	assert_int_equal(wp_pipe_normalize(pc, &r), 0);
	assert_int_equal(r.target_len, strlen(out));
	assert_memory_equal(r.target, out, r.target_len);
	assert_int_equal(r.path_len, path_len);
}

static void test_normalize(void **state)
{
	struct wp_pipe_core pc;
	struct wp_route_req r;
	const char *plain = "/api/v1/items?x=1";

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	wp_pipe_core_init(&pc, ctr);
	/* a plain path is left where it is */
	req_init(&r, plain, NULL, 0);
	assert_int_equal(wp_pipe_normalize(&pc, &r), 0);
	assert_ptr_equal(r.target, plain);
	assert_int_equal(ctr[WP_CTR_L7_PATH_NORMALIZED], 0);
	/* dot segments (also encoded), backslashes; the query as sent */
	norm_is(&pc, "/api/./v1/../admin?q=/../x", "/api/admin?q=/../x", 10);
	norm_is(&pc, "/x/%2e%2e/admin", "/admin", 6);
	norm_is(&pc, "/x/%2E%2E/%61dmin", "/admin", 6);
	norm_is(&pc, "\\x\\..\\admin", "\\x\\..\\admin", 11); /* not origin-form: as is */
	norm_is(&pc, "/x\\..\\admin", "/admin", 6);
	/* BASE keeps "//" and %2F */
	norm_is(&pc, "//admin", "//admin", 7);
	norm_is(&pc, "/a%2Fb/../c", "/c", 2);
	/* a fragment is dropped */
	norm_is(&pc, "/a/b#frag", "/a/b", 4);
	assert_true(ctr[WP_CTR_L7_PATH_NORMALIZED] >= 6);
	/* authority-form (CONNECT) and asterisk-form are not paths */
	norm_is(&pc, "*", "*", 1);
	/* what Envoy refuses: 400 */
	req_init(&r, "/a%00b", NULL, 0);
	assert_int_equal(wp_pipe_normalize(&pc, &r), -EINVAL);
	assert_int_equal(ctr[WP_CTR_L7_PATH_INVALID], 1);
	wp_pipe_core_fini(&pc);
}

static bool decide(struct az_fx *f, const char *method, const char *target,
                   const struct wp_http_hdr *h, uint16_t nh, struct wp_authz_decision *d)
{
	struct wp_route_req r;

	req_init(&r, target, h, nh);
	assert_int_equal(wp_pipe_normalize(&f->core, &r), 0);
	return wp_pipe_authorize(&f->conn, &r, method, strlen(method), d);
}

static void test_authorize_http(void **state)
{
	struct az_fx f;
	struct wp_authz_decision d;
	struct wp_http_hdr host = {.name = "host",
	                           .name_len = 4,
	                           .value = "reviews.default.svc.cluster.local:9080",
	                           .value_len = 38};
	struct wp_http_hdr hs[2] = {
	        host, {.name = "x-user", .name_len = 6, .value = "mallory", .value_len = 7}};

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	az_fx_init(&f, policies, "cluster.local/ns/default/sa/productpage", ctr);

	assert_true(decide(&f, "GET", "/api/items", &host, 1, &d));
	assert_int_equal(d.reason, WP_AUTHZ_R_ALLOW_MATCH);
	assert_string_equal(d.name, "allow-productpage");
	assert_int_equal(d.rule, 0);
	assert_true(d.audited); /* the host matches case-insensitively, port or not */

	/* the method and the path are part of the ALLOW rule */
	assert_false(decide(&f, "POST", "/api/items", &host, 1, &d));
	assert_int_equal(d.reason, WP_AUTHZ_R_NO_ALLOW_MATCH);
	assert_false(decide(&f, "GET", "/other", &host, 1, &d));

	/* DENY wins, and normalization closes the dot-segment bypasses */
	assert_false(decide(&f, "GET", "/api/admin/users", &host, 1, &d));
	assert_int_equal(d.reason, WP_AUTHZ_R_DENY_MATCH);
	assert_string_equal(d.name, "deny-admin");
	assert_false(decide(&f, "GET", "/api/x/%2e%2e/admin", &host, 1, &d));
	assert_false(decide(&f, "GET", "/api/./admin", &host, 1, &d));
	/* "//" is not merged (BASE): another path, which the ALLOW rule's
	 * /api/ prefix does not cover either */
	assert_false(decide(&f, "GET", "//api/admin", &host, 1, &d));
	assert_int_equal(d.reason, WP_AUTHZ_R_NO_ALLOW_MATCH);

	/* a header condition */
	assert_false(decide(&f, "GET", "/api/items", hs, 2, &d));
	assert_int_equal(d.reason, WP_AUTHZ_R_DENY_MATCH);
	assert_int_equal(d.rule, 1);

	/* without Host, the CONNECT authority is the host */
	assert_true(decide(&f, "GET", "/api/items", NULL, 0, &d));
	assert_true(d.audited);

	/* another identity */
	f.conn.principal = "cluster.local/ns/default/sa/sleep";
	f.conn.principal_len = (uint32_t)strlen(f.conn.principal);
	assert_false(decide(&f, "GET", "/api/items", &host, 1, &d));
	assert_int_equal(d.reason, WP_AUTHZ_R_NO_ALLOW_MATCH);
	/* a namespace is read from the identity */
	f.conn.principal = "cluster.local/ns/ops/sa/anyone";
	f.conn.principal_len = (uint32_t)strlen(f.conn.principal);
	assert_true(decide(&f, "DELETE", "/anything", &host, 1, &d));
	/* no identity (plaintext peer): no principal, no namespace */
	f.conn.principal = NULL;
	f.conn.principal_len = 0;
	assert_false(decide(&f, "GET", "/api/items", &host, 1, &d));

	assert_int_equal(ctr[WP_CTR_AUTHZ_ALLOWED_MATCH], 3);
	assert_int_equal(ctr[WP_CTR_AUTHZ_DENIED_MATCH], 4);
	assert_int_equal(ctr[WP_CTR_AUTHZ_DENIED_NO_ALLOW], 5);
	assert_true(ctr[WP_CTR_AUTHZ_AUDITED] >= 2);
	az_fx_fini(&f);
}

static void test_authorize_tcp(void **state)
{
	struct az_fx f;
	struct wp_authz_decision d;

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	az_fx_init(&f, policies, "cluster.local/ns/default/sa/productpage", ctr);
	/* the productpage rule needs HTTP fields: on TCP it matches nothing;
	 * the DENY rules' HTTP-only conditions are dropped, and what is left
	 * of them is empty: DENY rules with only HTTP fields deny all TCP */
	assert_false(wp_pipe_authorize(&f.conn, NULL, NULL, 0, &d));
	az_fx_fini(&f);

	/* a pure identity rule applies to TCP as to HTTP */
	az_fx_init(&f,
	           "apiVersion: security.istio.io/v1\n"
	           "kind: AuthorizationPolicy\n"
	           "metadata: {name: tcp-allow, namespace: default}\n"
	           "spec:\n"
	           "  targetRefs: [{kind: Service, group: '', name: reviews}]\n"
	           "  rules: [{from: [{source: {principals: ['*/sa/productpage']}}],\n"
	           "           to: [{operation: {ports: ['9080']}}]}]\n",
	           "cluster.local/ns/default/sa/productpage", ctr);
	assert_true(wp_pipe_authorize(&f.conn, NULL, NULL, 0, &d));
	assert_int_equal(d.reason, WP_AUTHZ_R_ALLOW_MATCH);
	f.conn.dst_port = 9090;
	assert_false(wp_pipe_authorize(&f.conn, NULL, NULL, 0, &d));
	az_fx_fini(&f);
}

static void test_no_policy(void **state)
{
	struct az_fx f;
	struct wp_authz_decision d;
	struct wp_route_req r;

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	az_fx_init(&f, NULL, NULL, ctr);
	req_init(&r, "/x", NULL, 0);
	assert_true(wp_pipe_authorize(&f.conn, &r, "GET", 3, &d));
	assert_int_equal(d.reason, WP_AUTHZ_R_NO_POLICY);
	assert_true(wp_pipe_authorize(&f.conn, NULL, NULL, 0, &d));
	assert_int_equal(ctr[WP_CTR_AUTHZ_ALLOWED_NO_POLICY], 2);
	/* no connection (a host without HBONE): nothing to decide on */
	assert_true(wp_pipe_authorize(NULL, &r, "GET", 3, &d));
	az_fx_fini(&f);
}

/* The fault stage's plan: nothing without a fault or with shares of 0;
 * always at 100 %; delay and abort drawn independently (25 % of requests
 * both at 50 % each); a grpcStatus abort answers 200 with its code, an
 * httpStatus one gives gRPC requests Envoy's mapping. */
static void test_fault_decide(void **state)
{
	struct wp_route_fault f = {0};
	struct wp_fault_plan p;
	uint64_t rng;
	int both = 0, delayed = 0;

	(void)state;
	wp_rand_seed(&rng, 1);
	assert_false(wp_fault_decide(&rng, NULL, &p));
	assert_false(wp_fault_decide(&rng, &f, &p));
	f = (struct wp_route_fault){
	        .delay = true, .delay_ms = 5, .abort = true, .abort_status = 503};
	for (int i = 0; i < 1000; i++)
		assert_false(wp_fault_decide(&rng, &f, &p)); /* no percentage: 0 % */
	f.abort_ppm = 1000000;
	assert_true(wp_fault_decide(&rng, &f, &p));
	assert_true(p.abort && p.status == 503 && p.grpc == 14 && p.delay_ms == 0);
	f = (struct wp_route_fault){.delay = true,
	                            .delay_ms = 300,
	                            .delay_ppm = 500000,
	                            .abort = true,
	                            .abort_ppm = 500000,
	                            .abort_grpc = 4};
	for (int i = 0; i < 10000; i++) {
		if (!wp_fault_decide(&rng, &f, &p))
			continue;
		delayed += p.delay_ms == 300;
		both += p.delay_ms == 300 && p.abort;
		if (p.abort)
			assert_true(p.status == 200 && p.grpc == 4);
	}
	/* 5,000 and 2,500 expected; 4.5 standard deviations (50 and 43) */
	print_message("delayed %d, both %d of 10000\n", delayed, both);
	assert_true(delayed > 5000 - 225 && delayed < 5000 + 225);
	assert_true(both > 2500 - 195 && both < 2500 + 195);
}

/* The local answers' texts both proxies write (Envoy's for each cause). */
static void test_local_text(void **state)
{
	static const char reset[] = "upstream connect error or disconnect/reset before headers. ";

	(void)state;
	assert_string_equal(wp_pipe_local_text(503, WP_PIPE_F(UH)), "no healthy upstream");
	assert_string_equal(wp_pipe_local_text(504, WP_PIPE_F(UT)), "upstream request timeout");
	assert_string_equal(wp_pipe_local_text(503, WP_PIPE_F(UF)),
	                    "upstream connect error or disconnect/reset before headers. reset "
	                    "reason: connection failure");
	assert_string_equal(wp_pipe_local_text(503, WP_PIPE_F(UF) | WP_PIPE_F(URX)),
	                    "upstream connect error or disconnect/reset before headers. retried "
	                    "and the latest reset reason: connection failure");
	assert_string_equal(wp_pipe_local_text(502, WP_PIPE_F(UC)) + sizeof(reset) - 1,
	                    "reset reason: connection termination");
	assert_string_equal(wp_pipe_local_text(503, WP_PIPE_F(UO)), wp_cb_overflow_body);
	assert_string_equal(wp_pipe_local_text(503, WP_PIPE_F(FI)), "fault filter abort");
	assert_string_equal(wp_pipe_local_text(404, WP_PIPE_F(NR)), ""); /* no body */
	assert_string_equal(wp_pipe_local_text(403, 0), "RBAC: access denied");
	assert_null(wp_pipe_local_text(400, WP_PIPE_F(DPE))); /* the proxy's own */
	assert_null(wp_pipe_local_text(431, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_normalize),     cmocka_unit_test(test_authorize_http),
	        cmocka_unit_test(test_authorize_tcp), cmocka_unit_test(test_no_policy),
	        cmocka_unit_test(test_fault_decide),  cmocka_unit_test(test_local_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
