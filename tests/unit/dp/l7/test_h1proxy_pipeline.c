/*
 * The request pipeline's stages as the HTTP/1.1 proxy session runs them
 * (dp/l7/pipeline.h): normalization and authorization (403 "RBAC: access
 * denied" with the connection kept, or closed when it must be), and the
 * completion stage's one Istio metrics record per request, the fault stage
 * (VirtualService fault injection: abort, delay, their shares and flags).
 * Same fixture as
 * test_h1proxy.c (h1p_harness.h).
 */
#include "h1p_harness.h"

#include "authz_fixture.h"

/* Authorization (dp/l7/pipeline.h) on the session: a denied request gets
 * 403 "RBAC: access denied", reaches no upstream, and the connection goes
 * on (its body read and dropped); paths are normalized before the decision
 * and before they go upstream. */
static void test_authz_deny(void **state)
{
	static const char *const deny =
	        "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 19\r\n"
	        "\r\nRBAC: access denied";
	struct az_fx f;
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;

	(void)state;
	mk_core(NULL, std_rules);
	az_fx_init(&f,
	           "apiVersion: security.istio.io/v1\n"
	           "kind: AuthorizationPolicy\n"
	           "metadata: {name: no-admin, namespace: default}\n"
	           "spec:\n"
	           "  targetRefs: [{kind: Service, group: '', name: reviews}]\n"
	           "  action: DENY\n"
	           "  rules: [{to: [{operation: {paths: ['/v1/admin*']}}]}]\n",
	           "cluster.local/ns/default/sa/productpage", ctr);
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);

	/* a dot segment does not get around the DENY */
	down_all(s, "GET /v1/x/%2e%2e/admin HTTP/1.1\r\nHost: r\r\n\r\n");
	assert_string_equal(take_down(s), deny);
	assert_null(wp_h1p_sess_up(s));
	assert_int_equal(n_open, 0);
	assert_false(wp_h1p_down_finished(s));
	/* a denied request's body is dropped, the next request is served */
	down_all(s, "POST /v1/admin HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\nhello"
	            "GET /v1/./ok HTTP/1.1\r\nHost: r\r\n\r\n");
	assert_string_equal(take_down(s), deny);
	up = wp_h1p_sess_up(s);
	assert_non_null(up);
	wp_h1p_up_connected(up);
	assert_non_null(strstr(take_up(up), "GET /v1/ok HTTP/1.1\r\n"));
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	assert_non_null(strstr(take_down(s), "200 OK"));
	/* HEAD: the head only */
	down_all(s, "HEAD /v1/admin HTTP/1.1\r\nHost: r\r\n\r\n");
	assert_string_equal(take_down(s), "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n"
	                                  "content-length: 19\r\n\r\n");
	/* a path Envoy refuses */
	down_all(s, "GET /v1/a%00 HTTP/1.1\r\nHost: r\r\n\r\n");
	assert_non_null(strstr(take_down(s), "HTTP/1.1 400 "));
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
	assert_int_equal(ctr[WP_CTR_AUTHZ_DENIED_MATCH], 3);
	assert_int_equal(ctr[WP_CTR_AUTHZ_ALLOWED_NO_POLICY], 1);
	assert_int_equal(ctr[WP_CTR_L7_PATH_INVALID], 1);
	az_fx_fini(&f);
}

/* Denied with `Connection: close`, or waiting for 100-continue: answered,
 * then the connection ends. */
static void test_authz_deny_closes(void **state)
{
	struct az_fx f;
	struct wp_h1p_sess *s;

	(void)state;
	mk_core(NULL, std_rules);
	az_fx_init(&f,
	           "apiVersion: security.istio.io/v1\n"
	           "kind: AuthorizationPolicy\n"
	           "metadata: {name: only-ops, namespace: default}\n"
	           "spec:\n"
	           "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: "
	           "waypoint}]\n"
	           "  rules: [{from: [{source: {namespaces: [ops]}}]}]\n",
	           "cluster.local/ns/default/sa/productpage", ctr);
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "PUT /v1/a HTTP/1.1\r\nHost: r\r\nContent-Length: 3\r\n"
	            "Expect: 100-continue\r\n\r\n");
	assert_non_null(strstr(take_down(s), "403 Forbidden\r\ncontent-type: text/plain\r\n"
	                                     "content-length: 19\r\nconnection: close\r\n"));
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "GET /v1/a HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n");
	assert_non_null(strstr(take_down(s), "RBAC: access denied"));
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
	assert_int_equal(ctr[WP_CTR_AUTHZ_DENIED_NO_ALLOW], 2);
	assert_int_equal(n_open, 0);
	az_fx_fini(&f);
}

/* ---- the completion stage: Istio's metrics, one record per request -------------------------- */

static struct wp_metrics_core *mcells;

static const char *mlab(const struct wp_metrics_labels *l, enum wp_metrics_label k)
{
	static char buf[4][WP_METRICS_MAX_VALUE + 1];
	static int turn;
	size_t len;
	const char *v = wp_metrics_string(mcells, l->v[k], &len);
	char *b = buf[turn++ & 3];

	memcpy(b, v, len);
	b[len] = '\0';
	return b;
}

static uint64_t m_total(void)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < wp_metrics_n_http(mcells); i++)
		t += wp_metrics_load(&wp_metrics_http_at(mcells, i)->requests);
	return t;
}

/* The one series with response_code <code> and response_flags <flags>. */
static const struct wp_metrics_http *m_find(const char *code, const char *flags)
{
	const struct wp_metrics_http *found = NULL;

	for (unsigned i = 1; i < wp_metrics_n_http(mcells); i++) {
		const struct wp_metrics_http *h = wp_metrics_http_at(mcells, i);

		if (!strcmp(mlab(&h->labels, WP_ML_RESPONSE_CODE), code) &&
		    !strcmp(mlab(&h->labels, WP_ML_RESPONSE_FLAGS), flags)) {
			assert_null(found);
			found = h;
		}
	}
	if (!found)
		for (unsigned i = 1; i < wp_metrics_n_http(mcells); i++)
			print_message(
			        "no %s %s; have %s %s\n", code, flags,
			        mlab(&wp_metrics_http_at(mcells, i)->labels, WP_ML_RESPONSE_CODE),
			        mlab(&wp_metrics_http_at(mcells, i)->labels, WP_ML_RESPONSE_FLAGS));
	assert_non_null(found);
	return found;
}

/* Each request of the HTTP/1.1 session is recorded exactly once, when it
 * ends, with its answer: upstream 200 (bytes on the wire both ways), 404 no
 * route, 503 connect failure after the retries, 502 upstream reset, a
 * client gone mid-request, 504 timeout, 403 denied. */
static void test_metrics_per_request(void **state)
{
	static const char *req = "GET /v1/a HTTP/1.1\r\nHost: reviews:9080\r\n\r\n";
	static const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
	static const struct wp_snap_service svc = {.ns = "default",
	                                           .name = "reviews",
	                                           .hostname = "reviews.default.svc.cluster.local"};
	static const char *bg = "k8s.deployment.name=productpage-v1,service.name=productpage";
	const struct wp_metrics_http *h;
	struct az_fx f;
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	size_t down_len;

	(void)state;
	mk_core(NULL, "  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
	              "    timeouts: {request: 2s}\n"
	              "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	              "  - matches: [{path: {type: PathPrefix, value: /v2}}]\n"
	              "    backendRefs: [{name: reviews-v2, port: 9080}]\n");
	mcells = wp_metrics_core_create(64, ctr);
	assert_non_null(mcells);
	az_fx_init(&f, NULL, "cluster.local/ns/default/sa/productpage", ctr);
	wp_pipe_core_set_metrics(&f.core, mcells, "cluster.local", "cluster.local", "Kubernetes");
	wp_pipe_conn_labels(&f.conn, bg, strlen(bg), &svc, NULL);

	/* 200 from the upstream, then 404 on the same connection */
	wp_pipe_core_clock(&f.core, 5000000, 1);
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, req);
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	assert_int_equal(m_total(), 0); /* not before it ends */
	wp_pipe_core_clock(&f.core, 5012000, 1);
	up_all(up, resp);
	down_len = strlen(take_down(s));
	assert_int_equal(m_total(), 1);
	h = m_find("200", "-");
	assert_int_equal(wp_metrics_load(&h->requests), 1);
	assert_int_equal(wp_metrics_load(&h->duration.sum), 12000);
	assert_int_equal(wp_metrics_load(&h->req_bytes.sum), strlen(req));
	assert_int_equal(wp_metrics_load(&h->resp_bytes.sum), down_len);
	assert_string_equal(mlab(&h->labels, WP_ML_DESTINATION_SERVICE),
	                    "reviews-v1.default.svc.cluster.local");
	assert_string_equal(mlab(&h->labels, WP_ML_DESTINATION_SERVICE_NAME), "reviews-v1");
	assert_string_equal(mlab(&h->labels, WP_ML_DESTINATION_WORKLOAD_NAMESPACE), "default");
	assert_string_equal(mlab(&h->labels, WP_ML_SOURCE_WORKLOAD), "productpage-v1");
	assert_string_equal(mlab(&h->labels, WP_ML_SOURCE_PRINCIPAL),
	                    "spiffe://cluster.local/ns/default/sa/productpage");
	assert_string_equal(mlab(&h->labels, WP_ML_REQUEST_PROTOCOL), "http");
	down_all(s, "GET /nothing HTTP/1.1\r\nHost: r\r\n\r\n");
	take_down(s);
	assert_int_equal(m_total(), 2);
	h = m_find("404", "NR");
	assert_string_equal(mlab(&h->labels, WP_ML_DESTINATION_SERVICE),
	                    "reviews.default.svc.cluster.local");
	wp_h1p_sess_close(s);
	assert_int_equal(m_total(), 2);

	/* connect failures: the first try and two retries, one record (v2:
	 * no idle connection there to reuse) */
	fail_open = 1;
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "GET /v2 HTTP/1.1\r\nHost: r\r\n\r\n");
	take_down(s);
	wp_h1p_sess_close(s);
	fail_open = 0;
	assert_int_equal(m_total(), 3);
	m_find("503", "UF,URX");

	/* the upstream resets before answering */
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "GET /v2 HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	wp_h1p_up_failed(up);
	n_close++; /* the host dropped it */
	take_down(s);
	wp_h1p_sess_close(s);
	assert_int_equal(m_total(), 4);
	m_find("502", "UC");

	/* the client goes away in the middle of its request body */
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "POST /v2 HTTP/1.1\r\nHost: r\r\nContent-Length: 10\r\n\r\nabc");
	wp_h1p_down_eof(s);
	wp_h1p_sess_close(s);
	assert_int_equal(m_total(), 5);
	h = m_find("0", "DC");
	assert_int_equal(wp_metrics_load(&h->req_bytes.sum),
	                 strlen("POST /v2 HTTP/1.1\r\nHost: r\r\nContent-Length: 10\r\n\r\nabc"));

	/* timeouts.request: 504 */
	wp_h1p_core_tick(core, 10000);
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, req);
	take_up(wp_h1p_sess_up(s));
	wp_h1p_core_tick(core, 12001);
	take_down(s);
	wp_h1p_sess_close(s);
	assert_int_equal(m_total(), 6);
	m_find("504", "UT");
	az_fx_fini(&f);

	/* denied: 403, no flag (Envoy's RBAC filter sets none) */
	az_fx_init(&f,
	           "apiVersion: security.istio.io/v1\n"
	           "kind: AuthorizationPolicy\n"
	           "metadata: {name: no-admin, namespace: default}\n"
	           "spec:\n"
	           "  targetRefs: [{kind: Service, group: '', name: reviews}]\n"
	           "  action: DENY\n"
	           "  rules: [{to: [{operation: {paths: ['/v1/admin*']}}]}]\n",
	           "cluster.local/ns/default/sa/productpage", ctr);
	wp_pipe_core_set_metrics(&f.core, mcells, "cluster.local", "cluster.local", "Kubernetes");
	wp_pipe_conn_labels(&f.conn, bg, strlen(bg), &svc, NULL);
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "POST /v1/admin HTTP/1.1\r\nHost: r\r\nContent-Length: 2\r\n\r\nhi");
	take_down(s);
	assert_int_equal(m_total(), 7);
	h = m_find("403", "-");
	assert_int_equal(wp_metrics_load(&h->resp_bytes.sum),
	                 strlen("HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n"
	                        "content-length: 19\r\n\r\nRBAC: access denied"));
	wp_h1p_sess_close(s);
	assert_int_equal(m_total(), 7);
	az_fx_fini(&f);
	wp_metrics_core_destroy(mcells);
}

/* ---- the fault stage (fault.h) -------------------------------------------------------------- */

/* rules[0] of the table gets fault <f> (tables are built from HTTPRoutes
 * here; a VirtualService compiles into the same field). */
static void set_fault(const struct wp_route_fault *f)
{
	((struct wp_route_rule *)(uintptr_t)&tab->rules[0])->fault = *f;
}

static void fault_metrics(struct az_fx *f)
{
	static const struct wp_snap_service svc = {.ns = "default",
	                                           .name = "reviews",
	                                           .hostname = "reviews.default.svc.cluster.local"};

	mcells = wp_metrics_core_create(64, ctr);
	assert_non_null(mcells);
	az_fx_init(f, NULL, "cluster.local/ns/default/sa/productpage", ctr);
	wp_pipe_core_set_metrics(&f->core, mcells, "cluster.local", "cluster.local", "Kubernetes");
	wp_pipe_conn_labels(&f->conn, NULL, 0, &svc, NULL);
}

/* An abort answers the status with Envoy's body before load balancing (no
 * upstream), flag FI; the connection goes on (a body is read and dropped);
 * a grpcStatus abort of an HTTP/1.1 request is a plain 200. */
static void test_fault_abort(void **state)
{
	static const struct wp_route_fault ab = {
	        .abort = true, .abort_ppm = 1000000, .abort_status = 503};
	static const char *const want =
	        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
	        "content-length: 18\r\n\r\nfault filter abort";
	struct az_fx f;
	struct wp_h1p_sess *s;
	char *d;

	(void)state;
	mk_core(NULL, std_rules);
	fault_metrics(&f);
	set_fault(&ab);
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "GET /v1/a HTTP/1.1\r\nHost: r\r\n\r\n"
	            "POST /v1/b HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\nhello");
	d = take_down(s); /* one answer each */
	assert_string_equal(d + strlen(want), want);
	d[strlen(want)] = '\0';
	assert_string_equal(d, want);
	assert_false(wp_h1p_down_finished(s));
	down_all(s, "GET /split HTTP/1.1\r\nHost: r\r\n\r\n"); /* another rule: forwarded */
	assert_non_null(wp_h1p_sess_up(s));
	assert_int_equal(n_open, 1);
	wp_h1p_sess_close(s);
	assert_int_equal(ctr[WP_CTR_L7_FAULT_ABORT], 2);
	assert_int_equal(wp_metrics_load(&m_find("503", "FI")->requests), 2);
	m_find("0", "DC");

	set_fault(&(struct wp_route_fault){.abort = true, .abort_ppm = 1000000, .abort_grpc = 14});
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "GET /v1/a HTTP/1.1\r\nHost: r\r\n\r\n");
	assert_string_equal(take_down(s), "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
	                                  "content-length: 18\r\n\r\nfault filter abort");
	wp_h1p_sess_close(s);
	m_find("200", "FI");
	az_fx_fini(&f);
	wp_metrics_core_destroy(mcells);
}

/* A delay holds the request on the session's timers (nothing upstream, the
 * body left with the host) and then forwards it, flag DI; delay then abort
 * gives DI,FI; a client gone during the delay frees it (counted, DC). */
static void test_fault_delay(void **state)
{
	static const struct wp_route_fault dl = {
	        .delay = true, .delay_ppm = 1000000, .delay_ms = 300};
	static const char *req = "POST /v1/a HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\n";
	struct az_fx f;
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	size_t n;
	int w;

	(void)state;
	mk_core(NULL, std_rules);
	fault_metrics(&f);
	set_fault(&dl);
	wp_h1p_core_tick(core, 1000);
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	n = wp_h1p_down_in(s,
	                   (const uint8_t *)"POST /v1/a HTTP/1.1\r\nHost: r\r\nContent-Length: "
	                                    "5\r\n\r\nhello",
	                   strlen(req) + 5);
	assert_int_equal(n, strlen(req)); /* the body waits with the host */
	assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)"hello", 5), 0);
	assert_int_equal(ctr[WP_CTR_L7_FAULT_DELAY], 1);
	/* the host ticks then: 300 ms and the millisecond the clock may lag */
	assert_int_equal(wp_h1p_core_due(core), 1301);
	w = n_wake;
	wp_h1p_core_tick(core, 1300);
	assert_null(wp_h1p_sess_up(s));
	assert_int_equal(n_open, 0);
	assert_int_equal(wp_h1p_core_due(core), 1301);
	wp_h1p_core_tick(core, 1301);
	assert_int_equal(wp_h1p_core_due(core), 0);
	assert_int_equal(n_wake, w + 1); /* the host pumps the session */
	up = wp_h1p_sess_up(s);
	assert_non_null(up);
	down_all(s, "hello");
	wp_h1p_up_connected(up);
	assert_non_null(strstr(take_up(up), "\r\n\r\nhello"));
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	assert_non_null(strstr(take_down(s), "200 OK"));
	m_find("200", "DI");

	/* delay, then abort */
	set_fault(&(struct wp_route_fault){.delay = true,
	                                   .delay_ppm = 1000000,
	                                   .delay_ms = 50,
	                                   .abort = true,
	                                   .abort_ppm = 1000000,
	                                   .abort_status = 418});
	down_all(s, "GET /v1/a HTTP/1.1\r\nHost: r\r\n\r\n");
	assert_string_equal(take_down(s), "");
	wp_h1p_core_tick(core, 1351); /* 1301 + 50 + 1 */
	assert_string_equal(take_down(s), "");
	wp_h1p_core_tick(core, 1352);
	assert_non_null(strstr(take_down(s), "HTTP/1.1 418 "));
	m_find("418", "DI,FI");

	/* the client goes away while held: nothing left, nothing upstream */
	down_all(s, "GET /v1/a HTTP/1.1\r\nHost: r\r\n\r\n");
	wp_h1p_sess_close(s);
	assert_int_equal(ctr[WP_CTR_L7_FAULT_DELAY_ABANDONED], 1);
	m_find("0", "DI,DC");
	wp_h1p_core_tick(core, 2000); /* the freed session is not resumed */
	assert_int_equal(n_open, 1);
	assert_int_equal(ctr[WP_CTR_L7_FAULT_DELAY], 3);
	az_fx_fini(&f);
	wp_metrics_core_destroy(mcells);
}

/* Each request draws on its own: 30 % aborts over 4,000 requests land
 * within 4.5 standard deviations of 1,200; 0 % never. */
static void test_fault_share(void **state)
{
	struct wp_h1p_sess *s;
	const double n = 4000, p = 0.3, sd = 28.98; /* sqrt(n p (1 - p)) */
	uint64_t aborted;

	(void)state;
	mk_core(NULL, std_rules);
	set_fault(
	        &(struct wp_route_fault){.abort = true, .abort_ppm = 300000, .abort_status = 503});
	s = sess_open();
	for (int i = 0; i < (int)n; i++) {
		struct wp_h1p_up *up;

		down_all(s, "GET /v1/a HTTP/1.1\r\nHost: r\r\n\r\n");
		up = wp_h1p_sess_up(s);
		if (up) {
			wp_h1p_up_connected(up);
			take_up(up);
			up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
		}
		take_down(s);
	}
	aborted = ctr[WP_CTR_L7_FAULT_ABORT];
	print_message("aborted %llu of %d\n", (unsigned long long)aborted, (int)n);
	assert_true(aborted > n * p - 4.5 * sd && aborted < n * p + 4.5 * sd);
	set_fault(&(struct wp_route_fault){.abort = true, .abort_status = 503});
	for (int i = 0; i < 100; i++) {
		struct wp_h1p_up *up;

		down_all(s, "GET /v1/a HTTP/1.1\r\nHost: r\r\n\r\n");
		up = wp_h1p_sess_up(s);
		assert_non_null(up);
		take_up(up);
		up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
		take_down(s);
	}
	assert_int_equal(ctr[WP_CTR_L7_FAULT_ABORT], aborted);
	wp_h1p_sess_close(s);
}

/* The local outcomes' response flags: UH (no endpoint to pick), UC (the
 * upstream closed in the middle of its response: the client's stream is
 * cut, recorded with the status that went out), DC (the client went away
 * while its response was awaited). */
static void test_flags_uh_uc_dc(void **state)
{
	struct az_fx f;
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	const char *d;

	(void)state;
	mk_core(NULL, "  - matches: [{path: {type: PathPrefix, value: /none}}]\n"
	              "    backendRefs: [{name: empty, port: 9080}]\n"
	              "  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
	              "    backendRefs: [{name: reviews-v1, port: 9080}]\n");
	fault_metrics(&f);
	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "GET /none HTTP/1.1\r\nHost: r\r\n\r\n");
	d = take_down(s);
	assert_non_null(strstr(d, "HTTP/1.1 503 "));
	/* Envoy's text, as the h2c proxy answers (wp_pipe_local_text) */
	assert_non_null(strstr(d, "content-length: 19\r\n"));
	assert_non_null(strstr(d, "\r\n\r\nno healthy upstream"));
	assert_int_equal(n_open, 0);
	wp_h1p_sess_close(s);
	m_find("503", "UH");

	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "GET /v1/a HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
	assert_non_null(strstr(take_down(s), "abc"));
	wp_h1p_up_eof(up);
	assert_true(wp_h1p_down_finished(s)); /* cut: the client sees the short body end */
	wp_h1p_sess_close(s);
	m_find("200", "UC");

	s = sess_open();
	wp_h1p_sess_set_conn(s, &f.conn);
	down_all(s, "GET /v1/b HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	wp_h1p_sess_close(s); /* gone before any answer */
	m_find("0", "DC");
	assert_int_equal(m_total(), 3);
	az_fx_fini(&f);
	wp_metrics_core_destroy(mcells);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_authz_deny, teardown),
	        cmocka_unit_test_teardown(test_authz_deny_closes, teardown),
	        cmocka_unit_test_teardown(test_metrics_per_request, teardown),
	        cmocka_unit_test_teardown(test_fault_abort, teardown),
	        cmocka_unit_test_teardown(test_fault_delay, teardown),
	        cmocka_unit_test_teardown(test_fault_share, teardown),
	        cmocka_unit_test_teardown(test_flags_uh_uc_dc, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
