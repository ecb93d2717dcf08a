/*
 * Circuit breaking on the HTTP/1.1 proxy (dp/l7/cbreak.c, h1p_upstream.c):
 * DestinationRule connectionPool limits compiled from YAML by the real
 * compiler, enforced by the session against the fake host of
 * h1p_harness.h. maxConnections with http1MaxPendingRequests (a request
 * waits for a connection, one beyond the queue gets Envoy's overflow
 * answer at once), http2MaxRequests, maxRequestsPerConnection,
 * connectTimeout, idleTimeout, maxRetries, the per-core share of a limit
 * and its overshoot bound, and counts that survive a new route table.
 */
#include "h1p_harness.h"

#include "cbreak.h"

static const char *const overflow =
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 81\r\n"
        "content-type: text/plain\r\nx-envoy-overloaded: true\r\n\r\n"
        "upstream connect error or disconnect/reset before headers. reset reason: overflow";
static const char *const get = "GET / HTTP/1.1\r\nHost: reviews\r\n\r\n";
static const char *const ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* The table of reviews:9080 (no route: the service itself, endpoints
 * 10.0.1.1 and 10.0.1.2) with a DestinationRule whose trafficPolicy is
 * <tp>. */
static struct wp_route_table *build_dr(const char *tp)
{
	static char y[2048];
	const struct wp_obj *drs[4];
	struct wp_route_compile_in in = {
	        .ns = "default",
	        .name = "reviews",
	        .port = 9080,
	        .port_name = "http",
	        .drs = drs,
	        .lookup = fx_lookup,
	};
	struct wp_route_table *t;

	fx_svcs = fsvcs;
	fx_n_svcs = WP_ARRAY_SIZE(fsvcs);
	snprintf(y, sizeof(y),
	         "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
	         "  name: dr\n  namespace: default\nspec:\n  host: reviews\n  trafficPolicy:\n%s",
	         tp);
	assert_int_equal(wp_model_parse(y, strlen(y), "dr.yaml", fx_obj_cb, fx_err_cb, NULL), 0);
	for (unsigned i = 0; i < fx_objs.n; i++)
		drs[in.n_drs++] = fx_objs.v[i];
	t = wp_route_table_build(&in);
	assert_non_null(t);
	assert_int_equal(t->n_errors, 0);
	return t;
}

static void mk_core_dr(uint32_t n_workers, const char *tp)
{
	struct wp_h1p_cfg cfg = wp_h1p_default_cfg;

	cfg.n_workers = n_workers;
	memset(ctr, 0, sizeof(ctr));
	n_open = n_close = fail_open = n_ready = n_wake = n_finish = 0;
	fx_free_objs();
	wp_route_core_init(&rcore, 7, ctr);
	tab = build_dr(tp);
	core = wp_h1p_core_create(&cfg, &ops, NULL, &rcore, 99, ctr);
	assert_non_null(core);
}

/* maxConnections 1, http1MaxPendingRequests 1: the first request gets the
 * connection, the second waits for it, the third is refused at once with
 * Envoy's answer (the connection stays usable); the waiting one goes out
 * on the same connection when the first response ends. */
static void test_pending_and_overflow(void **state)
{
	struct wp_h1p_sess *s1, *s2, *s3;
	struct wp_h1p_up *up;

	(void)state;
	mk_core_dr(1, "    connectionPool:\n      tcp: {maxConnections: 1}\n"
	              "      http: {http1MaxPendingRequests: 1}\n");
	s1 = sess_open();
	s2 = sess_open();
	s3 = sess_open();
	down_all(s1, get);
	up = wp_h1p_sess_up(s1);
	assert_non_null(up);
	wp_h1p_up_connected(up);
	assert_non_null(strstr(take_up(up), "GET / HTTP/1.1\r\n"));
	down_all(s2, get);
	assert_null(wp_h1p_sess_up(s2)); /* waiting */
	assert_string_equal(take_down(s2), "");
	assert_int_equal(ctr[WP_CTR_L7_CB_PENDING], 1);
	down_all(s3, get);
	assert_null(wp_h1p_sess_up(s3));
	assert_string_equal(take_down(s3), overflow);
	assert_false(wp_h1p_down_finished(s3));
	assert_int_equal(ctr[WP_CTR_L7_UPSTREAM_OVERFLOW], 1);
	assert_int_equal(ctr[WP_CTR_L7_CB_PENDING_OVERFLOW], 1);
	assert_int_equal(n_open, 1);

	/* the first response ends: the waiting request takes the connection */
	up_all(up, ok);
	assert_non_null(strstr(take_down(s1), "200 OK"));
	assert_ptr_equal(wp_h1p_sess_up(s2), up);
	assert_int_equal(n_wake, 1);
	assert_non_null(strstr(take_up(up), "GET / HTTP/1.1\r\n"));
	up_all(up, ok);
	assert_non_null(strstr(take_down(s2), "200 OK"));
	assert_int_equal(n_open, 1);

	/* nothing in flight: the refused client's next request goes out */
	down_all(s3, get);
	assert_ptr_equal(wp_h1p_sess_up(s3), up);
	take_up(up);
	up_all(up, ok);
	assert_non_null(strstr(take_down(s3), "200 OK"));
	wp_h1p_sess_close(s1);
	wp_h1p_sess_close(s2);
	wp_h1p_sess_close(s3);
}

/* A waiting client that goes away leaves the queue (its place is free
 * again), and counts survive a new route table: a connection opened under
 * the old one still counts against the cluster of the same name. */
static void test_wait_gone_and_new_table(void **state)
{
	struct wp_h1p_sess *s1, *s2, *s3;
	struct wp_route_table *old;
	struct wp_obj *old_dr;
	struct wp_h1p_up *up;

	(void)state;
	mk_core_dr(1, "    connectionPool:\n      tcp: {maxConnections: 1}\n"
	              "      http: {http1MaxPendingRequests: 1}\n");
	s1 = sess_open();
	s2 = sess_open();
	s3 = sess_open();
	down_all(s1, get);
	up = wp_h1p_sess_up(s1);
	wp_h1p_up_connected(up);
	take_up(up);
	down_all(s2, get);
	wp_h1p_sess_close(s2); /* gone while waiting */
	/* a new table (a snapshot change): same DestinationRule */
	old = tab;
	old_dr = fx_objs.v[0];
	fx_objs.n = 0; /* the old table's DestinationRule stays alive with it */
	tab = build_dr("    connectionPool:\n      tcp: {maxConnections: 1}\n"
	               "      http: {http1MaxPendingRequests: 1}\n");
	wp_h1p_sess_set_routes(s3, tab);
	down_all(s3, get);
	assert_null(wp_h1p_sess_up(s3)); /* waits: the old connection counts */
	assert_string_equal(take_down(s3), "");
	assert_int_equal(ctr[WP_CTR_L7_UPSTREAM_OVERFLOW], 0);
	wp_h1p_sess_set_routes(s1, tab);
	up_all(up, ok);
	take_down(s1);
	assert_ptr_equal(wp_h1p_sess_up(s3), up);
	take_up(up);
	up_all(up, ok);
	assert_non_null(strstr(take_down(s3), "200 OK"));
	wp_h1p_sess_close(s1);
	wp_h1p_sess_close(s3);
	wp_route_table_free(old);
	wp_obj_free(old_dr);
}

/* http2MaxRequests: requests in flight, whatever the connections. */
static void test_max_requests(void **state)
{
	struct wp_h1p_sess *s1, *s2;
	struct wp_h1p_up *up;

	(void)state;
	mk_core_dr(1, "    connectionPool:\n      http: {http2MaxRequests: 1}\n");
	s1 = sess_open();
	s2 = sess_open();
	down_all(s1, get);
	up = wp_h1p_sess_up(s1);
	wp_h1p_up_connected(up);
	take_up(up);
	down_all(s2, "HEAD / HTTP/1.1\r\nHost: reviews\r\n\r\n");
	/* HEAD: the head only */
	assert_string_equal(take_down(s2),
	                    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 81\r\n"
	                    "content-type: text/plain\r\nx-envoy-overloaded: true\r\n"
	                    "\r\n");
	assert_int_equal(ctr[WP_CTR_L7_CB_RQ_OVERFLOW], 1);
	up_all(up, ok);
	take_down(s1);
	down_all(s2, get);
	assert_non_null(wp_h1p_sess_up(s2));
	wp_h1p_sess_close(s1);
	wp_h1p_sess_close(s2);
}

/* maxRequestsPerConnection 1: each connection carries one request, then
 * is closed gracefully. */
static void test_max_requests_per_connection(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;

	(void)state;
	mk_core_dr(1, "    connectionPool:\n      http: {maxRequestsPerConnection: 1}\n"
	              "      tcp: {maxConnections: 100}\n");
	s = sess_open();
	for (int i = 0; i < 3; i++) {
		down_all(s, get);
		up = wp_h1p_sess_up(s);
		wp_h1p_up_connected(up);
		take_up(up);
		up_all(up, ok);
		take_down(s);
	}
	assert_int_equal(n_open, 3);
	assert_int_equal(n_finish, 3);
	assert_int_equal(ctr[WP_CTR_L7_CB_MAX_REQUESTS_CLOSE], 3);
	assert_int_equal(wp_h1p_core_idle(core), 0);
	wp_h1p_sess_close(s);
}

/* connectTimeout: a connection not up in time fails like a refused one
 * (retried on the other endpoint; after the retries, 503). */
static void test_connect_timeout(void **state)
{
	struct wp_h1p_sess *s;

	(void)state;
	mk_core_dr(1, "    connectionPool:\n      tcp: {connectTimeout: 250ms}\n");
	wp_h1p_core_tick(core, 1000);
	s = sess_open();
	down_all(s, get);
	assert_int_equal(n_open, 1);
	wp_h1p_core_tick(core, 1250);
	assert_int_equal(n_close, 0);
	wp_h1p_core_tick(core, 1251);
	assert_int_equal(ctr[WP_CTR_L7_CB_CONNECT_TIMEOUT], 1);
	assert_int_equal(n_open, 2); /* the retry */
	assert_true(fups[0].closed);
	assert_true(fups[1].ep.addr.v4 != fups[0].ep.addr.v4);
	wp_h1p_core_tick(core, 1502);
	wp_h1p_core_tick(core, 1753);
	assert_int_equal(ctr[WP_CTR_L7_CB_CONNECT_TIMEOUT], 3);
	assert_non_null(strstr(take_down(s), "HTTP/1.1 503 "));
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
}

/* http.idleTimeout closes the cluster's idle connections sooner than the
 * pool's own timeout. */
static void test_idle_timeout(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;

	(void)state;
	mk_core_dr(1, "    connectionPool:\n      http: {idleTimeout: 1s}\n");
	wp_h1p_core_tick(core, 1000);
	s = sess_open();
	down_all(s, get);
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	up_all(up, ok);
	take_down(s);
	assert_int_equal(wp_h1p_core_idle(core), 1);
	wp_h1p_core_tick(core, 1900);
	assert_int_equal(wp_h1p_core_idle(core), 1);
	wp_h1p_core_tick(core, 2000);
	assert_int_equal(wp_h1p_core_idle(core), 0);
	assert_int_equal(n_finish, 1);
	wp_h1p_sess_close(s);
}

/* maxRetries 1: one request at a time may retry a failed connect. */
static void test_max_retries(void **state)
{
	struct wp_h1p_sess *s;

	(void)state;
	mk_core_dr(1, "    connectionPool:\n      http: {maxRetries: 1}\n");
	fail_open = 1;
	s = sess_open();
	down_all(s, get); /* 3 tries: the first retry takes the one place */
	assert_non_null(strstr(take_down(s), "HTTP/1.1 503 "));
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY], 2);
	assert_int_equal(ctr[WP_CTR_L7_CB_RETRY_OVERFLOW], 0);
	wp_h1p_sess_close(s);
	fail_open = 0;
}

/* Each core enforces ceil(limit / N): with 2 cores and maxConnections 3,
 * a core opens 2; the appliance never holds more than limit + N - 1. */
static void test_share(void **state)
{
	struct wp_h1p_sess *s[3];
	struct wp_cb_core cb;

	(void)state;
	for (uint32_t n = 1; n <= 8; n++) {
		wp_cb_core_init(&cb, n, ctr);
		for (uint32_t l = 1; l <= 64; l++) {
			uint64_t total = (uint64_t)wp_cb_share(&cb, l) * n;

			assert_true(total >= l);         /* never below the limit */
			assert_true(total <= l + n - 1); /* the overshoot bound */
		}
		assert_int_equal(wp_cb_share(&cb, WP_ROUTE_CPOOL_UNLIMITED),
		                 WP_ROUTE_CPOOL_UNLIMITED);
	}
	mk_core_dr(2, "    connectionPool:\n      tcp: {maxConnections: 3}\n");
	for (int i = 0; i < 3; i++) {
		s[i] = sess_open();
		down_all(s[i], get);
	}
	assert_int_equal(n_open, 2);
	assert_null(wp_h1p_sess_up(s[2])); /* waits (no pending limit) */
	for (int i = 0; i < 3; i++)
		wp_h1p_sess_close(s[i]);
}

/* Without a DestinationRule (Istio's defaults): nothing is limited, no
 * cluster takes a slot, 200 requests at once all go out. */
static void test_no_limits(void **state)
{
	static struct wp_h1p_sess *s[200];
	struct wp_h1p_cfg cfg = wp_h1p_default_cfg;

	(void)state;
	cfg.max_sessions = 200;
	mk_core(&cfg, std_rules);
	for (int i = 0; i < 200; i++) {
		s[i] = sess_open();
		down_all(s[i], "GET /r HTTP/1.1\r\nHost: reviews\r\n\r\n");
		assert_non_null(wp_h1p_sess_up(s[i]));
	}
	assert_int_equal(n_open, 200);
	assert_int_equal(ctr[WP_CTR_L7_UPSTREAM_OVERFLOW] + ctr[WP_CTR_L7_CB_PENDING], 0);
	for (int i = 0; i < 200; i++)
		wp_h1p_sess_close(s[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_pending_and_overflow, teardown),
	        cmocka_unit_test_teardown(test_wait_gone_and_new_table, teardown),
	        cmocka_unit_test_teardown(test_max_requests, teardown),
	        cmocka_unit_test_teardown(test_max_requests_per_connection, teardown),
	        cmocka_unit_test_teardown(test_connect_timeout, teardown),
	        cmocka_unit_test_teardown(test_idle_timeout, teardown),
	        cmocka_unit_test_teardown(test_max_retries, teardown),
	        cmocka_unit_test_teardown(test_share, teardown),
	        cmocka_unit_test_teardown(test_no_limits, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
