/*
 * DestinationRule trafficPolicy.connectionPool compiled into each cluster's
 * wp_route_cpool (cp/resolve/dr_compile.c): Istio's defaults, every field,
 * the order trafficPolicy -> portLevelSettings for the port -> subset, and
 * bad values and fields without effect reported as
 * "ORIGIN:LINE: DestinationRule NS/NAME: FIELD: problem" while the rest
 * applies.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "route_compile.h"
#include "wp/model.h"
#include "wp/route.h"
#include "wp/snapshot_types.h"

static const struct wp_kv kv_v1[] = {{"version", "v1"}};
static const struct wp_kv kv_v2[] = {{"version", "v2"}};
static const struct wp_labels lab_v1 = {1, kv_v1}, lab_v2 = {1, kv_v2};

/* default/reviews: port 9080 and 9090, endpoints 10.0.1.1 (v1), 10.0.1.2 (v2). */
static int lookup(void *ctx, const char *ns, const char *name, uint16_t port, struct wp_arena *a,
                  struct wp_route_svc_eps *out)
{
	struct wp_snap_endpoint *ep;
	const struct wp_labels **lab;

	(void)ctx;
	if (strcmp(ns, "default") || strcmp(name, "reviews"))
		return -ENOENT;
	if (port != 9080 && port != 9090)
		return -ESRCH;
	ep = wp_arena_alloc(a, sizeof(*ep) * 2);
	lab = wp_arena_alloc(a, sizeof(*lab) * 2);
	assert_non_null(ep);
	assert_non_null(lab);
	memset(ep, 0, sizeof(*ep) * 2);
	for (uint32_t k = 0; k < 2; k++) {
		ep[k].addr.family = WP_AF_INET;
		ep[k].addr.v4 = __builtin_bswap32(0x0a000100u | (k + 1));
		ep[k].port = port;
		ep[k].ready = true;
		ep[k].ns = "default";
	}
	lab[0] = &lab_v1;
	lab[1] = &lab_v2;
	out->port_name = "http";
	out->n = 2;
	out->eps = ep;
	out->labels = lab;
	return 0;
}

static struct wp_obj *objs[8];
static unsigned n_objs;

static int obj_cb(void *ctx, struct wp_obj *o)
{
	(void)ctx;
	assert_true(n_objs < 8);
	objs[n_objs++] = o;
	return 0;
}

static void err_cb(void *ctx, const struct wp_model_error *e)
{
	(void)ctx;
	fail_msg("model error: %s", e->msg);
}

static void objs_free(void)
{
	for (unsigned i = 0; i < n_objs; i++)
		wp_obj_free(objs[i]);
	n_objs = 0;
}

#define DR_HEAD                                                                                    \
	"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"                   \
	"  name: dr\n  namespace: default\nspec:\n  host: reviews\n" /* lines 1-7 */

/* The table of default/reviews:<port> with DestinationRule <spec_tail>. */
static struct wp_route_table *build(uint16_t port, const char *spec_tail)
{
	static char y[4096];
	const struct wp_obj *drs[8];
	struct wp_route_compile_in in = {
	        .ns = "default",
	        .name = "reviews",
	        .port = port,
	        .port_name = "http",
	        .drs = drs,
	        .lookup = lookup,
	};
	struct wp_route_table *t;

	objs_free();
	snprintf(y, sizeof(y), DR_HEAD "%s", spec_tail);
	assert_int_equal(wp_model_parse(y, strlen(y), "dr.yaml", obj_cb, err_cb, NULL), 0);
	for (unsigned i = 0; i < n_objs; i++)
		drs[in.n_drs++] = objs[i];
	t = wp_route_table_build(&in);
	assert_non_null(t);
	for (uint32_t i = 0; i < t->n_errors; i++)
		print_message("compile: %s\n", t->errors[i]);
	return t;
}

static const struct wp_route_cluster *cluster(const struct wp_route_table *t, const char *subset)
{
	const struct wp_route_cluster *cl = wp_route_cluster_find(
	        t, "default", "reviews", t->clusters[t->default_cluster].port, subset);

	assert_non_null(cl);
	return cl;
}

static bool has_error(const struct wp_route_table *t, const char *s)
{
	for (uint32_t i = 0; i < t->n_errors; i++)
		if (strstr(t->errors[i], s))
			return true;
	return false;
}

/* No connectionPool: Istio's defaults (no limits, nothing overridden). */
static void test_defaults(void **state)
{
	struct wp_route_table *t =
	        build(9080, "  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n");
	const struct wp_route_cpool *p = &cluster(t, NULL)->pool;

	(void)state;
	assert_int_equal(t->n_errors, 0);
	assert_int_equal(p->max_connections, WP_ROUTE_CPOOL_UNLIMITED);
	assert_int_equal(p->max_pending, WP_ROUTE_CPOOL_UNLIMITED);
	assert_int_equal(p->max_requests, WP_ROUTE_CPOOL_UNLIMITED);
	assert_int_equal(p->max_retries, WP_ROUTE_CPOOL_UNLIMITED);
	assert_int_equal(p->max_req_per_conn, 0);
	assert_int_equal(p->max_streams, 0);
	assert_int_equal(p->connect_timeout_ms, 0);
	assert_int_equal(p->idle_timeout_ms, 0);
	assert_int_equal(p->tcp_idle_timeout_ms, 3600000); /* Istio's 1 h */
	assert_int_equal(p->keepalive.time_ms, 0);         /* no keepalive */
	wp_route_table_free(t);
	objs_free();
}

static void test_all_fields(void **state)
{
	struct wp_route_table *t = build(
	        9080, "  trafficPolicy:\n    connectionPool:\n"
	              "      tcp: {maxConnections: 7, connectTimeout: 250ms, idleTimeout: 0s,\n"
	              "            tcpKeepalive: {time: 30s, probes: 4}}\n"
	              "      http:\n        http1MaxPendingRequests: 3\n"
	              "        http2MaxRequests: 40\n        maxRequestsPerConnection: 1\n"
	              "        maxRetries: 5\n        idleTimeout: 1m30s\n"
	              "        maxConcurrentStreams: 9\n");
	const struct wp_route_cpool *p = &cluster(t, NULL)->pool;

	(void)state;
	assert_int_equal(t->n_errors, 0);
	assert_int_equal(p->max_connections, 7);
	assert_int_equal(p->connect_timeout_ms, 250);
	assert_int_equal(p->max_pending, 3);
	assert_int_equal(p->max_requests, 40);
	assert_int_equal(p->max_req_per_conn, 1);
	assert_int_equal(p->max_retries, 5);
	assert_int_equal(p->idle_timeout_ms, 90000);
	assert_int_equal(p->tcp_idle_timeout_ms, 0); /* 0s: never */
	assert_int_equal(p->keepalive.time_ms, 30000);
	assert_int_equal(p->keepalive.intvl_ms, 75000); /* left out: Linux's */
	assert_int_equal(p->keepalive.probes, 4);
	assert_int_equal(p->max_streams, 9);
	wp_route_table_free(t);
	objs_free();
}

/* trafficPolicy, then portLevelSettings for the table's port, then the
 * subset's own trafficPolicy (itself with port-level settings). */
static void test_order(void **state)
{
	static const char tail[] =
	        "  trafficPolicy:\n"    /* 8 */
	        "    connectionPool:\n" /* 9 */
	        "      tcp: {maxConnections: 10, connectTimeout: 1s, idleTimeout: 5m}\n"
	        "      http: {http1MaxPendingRequests: 100}\n"                 /* 11 */
	        "    portLevelSettings:\n"                                     /* 12 */
	        "    - port: {number: 9090}\n"                                 /* 13 */
	        "      connectionPool: {tcp: {maxConnections: 20}}\n"          /* 14 */
	        "  subsets:\n"                                                 /* 15 */
	        "  - name: v1\n    labels: {version: v1}\n"                    /* 16-17 */
	        "    trafficPolicy:\n"                                         /* 18 */
	        "      connectionPool: {http: {http1MaxPendingRequests: 1}}\n" /* 19 */
	        "      portLevelSettings:\n"                                   /* 20 */
	        "      - port: {number: 9090}\n"                               /* 21 */
	        "        connectionPool: {tcp: {connectTimeout: 2s}}\n"        /* 22 */
	        "  - name: v2\n    labels: {version: v2}\n";                   /* 23-24 */
	struct wp_route_table *t = build(9080, tail);

	(void)state;
	assert_int_equal(t->n_errors, 0);
	assert_int_equal(cluster(t, NULL)->pool.max_connections, 10);
	assert_int_equal(cluster(t, "v1")->pool.max_connections, 10);
	assert_int_equal(cluster(t, "v1")->pool.max_pending, 1);
	assert_int_equal(cluster(t, "v1")->pool.connect_timeout_ms, 1000);
	assert_int_equal(cluster(t, "v2")->pool.max_pending, 100);
	assert_int_equal(cluster(t, "v2")->pool.tcp_idle_timeout_ms, 300000);
	wp_route_table_free(t);

	t = build(9090, tail);
	assert_int_equal(t->n_errors, 0);
	assert_int_equal(cluster(t, NULL)->pool.max_connections, 20);
	assert_int_equal(cluster(t, NULL)->pool.max_pending, 100);
	assert_int_equal(cluster(t, "v1")->pool.max_connections, 20);
	assert_int_equal(cluster(t, "v1")->pool.max_pending, 1);
	assert_int_equal(cluster(t, "v1")->pool.connect_timeout_ms, 2000);
	assert_int_equal(cluster(t, "v2")->pool.connect_timeout_ms, 1000);
	wp_route_table_free(t);
	objs_free();
}

/* Bad values are reported with file:line and leave the previous value; 0
 * keeps Istio's default for a limit (as istiod does) but means "unlimited"
 * for maxRequestsPerConnection; fields without effect say so. */
static void test_bad_values(void **state)
{
	struct wp_route_table *t = build(
	        9080, "  trafficPolicy:\n"                                             /* 8 */
	              "    connectionPool:\n"                                          /* 9 */
	              "      tcp:\n"                                                   /* 10 */
	              "        maxConnections: -1\n"                                   /* 11 */
	              "        connectTimeout: soon\n"                                 /* 12 */
	              "        tcpKeepalive: {time: 60s, interval: soon, probes: 3}\n" /* 13 */
	              "        idleTimeout: later\n"                                   /* 14 */
	              "      http:\n"                                                  /* 15 */
	              "        http1MaxPendingRequests: 0\n"                           /* 16 */
	              "        http2MaxRequests: many\n"                               /* 17 */
	              "        maxRequestsPerConnection: 0\n"                          /* 18 */
	              "        idleTimeout: 0s\n"                                      /* 19 */
	              "        maxRetries: 4\n"                                        /* 20 */
	              "        retryBudget: 3\n");                                     /* 21 */
	const struct wp_route_cpool *p = &cluster(t, NULL)->pool;

	(void)state;
	assert_true(has_error(t, "dr.yaml:11: DestinationRule default/dr: "
	                         "spec.trafficPolicy.connectionPool.tcp: maxConnections must be "
	                         "an integer 0..2147483647, got -1"));
	assert_true(has_error(t, "dr.yaml:12: DestinationRule default/dr: "
	                         "spec.trafficPolicy.connectionPool.tcp: connectTimeout must be a "
	                         "positive duration"));
	assert_true(has_error(t, "dr.yaml:13: DestinationRule default/dr: "
	                         "spec.trafficPolicy.connectionPool.tcp.tcpKeepalive: interval "
	                         "must be a positive duration"));
	assert_true(has_error(t, "dr.yaml:14: DestinationRule default/dr: "
	                         "spec.trafficPolicy.connectionPool.tcp: idleTimeout must be a "
	                         "duration (1h, 1m, 1s, 500ms; 0s: none), got later"));
	assert_true(has_error(t, "dr.yaml:17: DestinationRule default/dr: "
	                         "spec.trafficPolicy.connectionPool.http: http2MaxRequests must "
	                         "be an integer"));
	assert_true(has_error(t, "dr.yaml:19: DestinationRule default/dr: "
	                         "spec.trafficPolicy.connectionPool.http: idleTimeout must be a "
	                         "positive duration"));
	assert_true(has_error(t, "dr.yaml:21: DestinationRule default/dr: "
	                         "spec.trafficPolicy.connectionPool.http: retryBudget is not "
	                         "supported"));
	assert_int_equal(t->n_errors, 7);
	assert_int_equal(p->max_connections, WP_ROUTE_CPOOL_UNLIMITED);
	assert_int_equal(p->connect_timeout_ms, 0);
	assert_int_equal(p->max_pending, WP_ROUTE_CPOOL_UNLIMITED);
	assert_int_equal(p->max_requests, WP_ROUTE_CPOOL_UNLIMITED);
	assert_int_equal(p->max_req_per_conn, 0);
	assert_int_equal(p->idle_timeout_ms, 0);
	assert_int_equal(p->tcp_idle_timeout_ms, WP_ROUTE_TCP_IDLE_DEFAULT_MS);
	assert_int_equal(p->keepalive.time_ms, 0); /* the bad tcpKeepalive is left out whole */
	assert_int_equal(p->max_retries, 4);
	wp_route_table_free(t);
	objs_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_all_fields),
	        cmocka_unit_test(test_order),
	        cmocka_unit_test(test_bad_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
