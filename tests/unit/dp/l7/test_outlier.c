/*
 * Outlier detection: DestinationRule trafficPolicy.outlierDetection
 * compiled with Istio's defaults at the top level, per port and per subset
 * (cp/resolve/dr_compile.c), bad fields reported by name; every
 * load-balancing policy skipping ejected endpoints, the consistent hashes
 * moving only the ejected endpoint's keys (lib/lb.c); and the per-core
 * counts, the shared ejection table and the per-core views of it
 * (dp/l7/lb_cache.c, outlier.c): 5xx / gateway / local-origin thresholds,
 * ejection time base x ejections in a row, return after it,
 * maxEjectionPercent, minHealthPercent (panic), a second core seeing an
 * ejection on its next pick, and a rebuilt table (new snapshot) keeping it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lb_cache.h"
#include "outlier.h"
#include "route_fixture.h"
#include "wp/counters.h"
#include "wp/lb.h"

static uint64_t ctr[WP_CTR_MAX];

/* ---- compile ----------------------------------------------------------------- */

static const struct fx_svc svcs[] = {{"reviews", 3, 1}};

/* The table of reviews:9080 with one DestinationRule whose spec is <spec>. */
static struct wp_route_table *build_dr(const char *spec)
{
	static char y[4096];
	const struct wp_obj *drs[1];
	struct wp_route_compile_in in = {
	        .ns = "default",
	        .name = "reviews",
	        .port = 9080,
	        .port_name = "http",
	        .drs = drs,
	        .n_drs = 1,
	        .lookup = fx_lookup,
	};
	struct wp_route_table *t;

	fx_svcs = svcs;
	fx_n_svcs = 1;
	fx_free_objs();
	snprintf(y, sizeof(y),
	         "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
	         "  name: dr\n  namespace: default\nspec:\n  host: reviews\n%s",
	         spec);
	assert_int_equal(wp_model_parse(y, strlen(y), "dr.yaml", fx_obj_cb, fx_err_cb, NULL), 0);
	assert_int_equal(fx_objs.n, 1);
	drs[0] = fx_objs.v[0];
	t = wp_route_table_build(&in);
	assert_non_null(t);
	return t;
}

static const struct wp_route_cluster *cluster(const struct wp_route_table *t, const char *subset)
{
	for (uint32_t i = 0; i < t->n_clusters; i++) {
		const struct wp_route_cluster *k = &t->clusters[i];

		if ((!subset && !k->subset) || (subset && k->subset && !strcmp(subset, k->subset)))
			return k;
	}
	fail_msg("no cluster %s", subset ? subset : "(service)");
	return NULL;
}

static bool has_error(const struct wp_route_table *t, const char *a, const char *b)
{
	for (uint32_t i = 0; i < t->n_errors; i++)
		if (strstr(t->errors[i], a) && strstr(t->errors[i], b))
			return true;
	return false;
}

static void test_compile(void **state)
{
	struct wp_route_table *t;
	const struct wp_lb_outlier *od;

	(void)state;
	/* nothing configured: off */
	t = build_dr("  trafficPolicy: {loadBalancer: {simple: RANDOM}}\n");
	assert_false(cluster(t, NULL)->lb->od.enabled);
	wp_route_table_free(t);

	/* an empty outlierDetection: Istio's defaults */
	t = build_dr("  trafficPolicy: {outlierDetection: {}}\n");
	od = &cluster(t, NULL)->lb->od;
	assert_true(od->enabled);
	assert_int_equal(od->consec_5xx, 5);
	assert_int_equal(od->consec_gw, 0);
	assert_int_equal(od->consec_local, 5);
	assert_false(od->split_local);
	assert_int_equal(od->interval_ms, 10000);
	assert_int_equal(od->base_ms, 30000);
	assert_int_equal(od->max_eject_pct, 10);
	assert_int_equal(od->min_health_pct, 0);
	assert_string_equal(od->cluster, "outbound|9080||reviews.default.svc.cluster.local");
	assert_int_equal(od->cluster_key,
	                 wp_lb_hash(od->cluster, strlen(od->cluster))); /* the full name */
	assert_int_equal(t->n_errors, 0);
	wp_route_table_free(t);

	/* every field; the port's settings replace the top level's, a subset's
	 * its own; other ports' settings do not apply */
	t = build_dr("  trafficPolicy:\n"
	             "    outlierDetection:\n"
	             "      consecutive5xxErrors: 3\n"
	             "      consecutiveGatewayErrors: 2\n"
	             "      consecutiveLocalOriginFailures: 4\n"
	             "      splitExternalLocalOriginErrors: true\n"
	             "      interval: 1s\n"
	             "      baseEjectionTime: 5s\n"
	             "      maxEjectionPercent: 34\n"
	             "      minHealthPercent: 50\n"
	             "    portLevelSettings:\n"
	             "    - port: {number: 9999}\n"
	             "      outlierDetection: {consecutive5xxErrors: 99}\n"
	             "  subsets:\n"
	             "  - name: v1\n"
	             "    labels: {version: v1}\n"
	             "    trafficPolicy:\n"
	             "      outlierDetection: {consecutive5xxErrors: 7, interval: 500ms}\n"
	             "  - name: v2\n"
	             "    labels: {version: v2}\n");
	assert_int_equal(t->n_errors, 0);
	od = &cluster(t, NULL)->lb->od;
	assert_int_equal(od->consec_5xx, 3);
	assert_int_equal(od->consec_gw, 2);
	assert_int_equal(od->consec_local, 4);
	assert_true(od->split_local);
	assert_int_equal(od->interval_ms, 1000);
	assert_int_equal(od->base_ms, 5000);
	assert_int_equal(od->max_eject_pct, 34);
	assert_int_equal(od->min_health_pct, 50);
	od = &cluster(t, "v1")->lb->od;
	assert_int_equal(od->consec_5xx, 7);
	assert_int_equal(od->interval_ms, 500);
	assert_int_equal(od->base_ms, 30000); /* replaced as a whole: defaults */
	assert_string_equal(od->cluster, "outbound|9080|v1|reviews.default.svc.cluster.local");
	od = &cluster(t, "v2")->lb->od; /* inherits the service's */
	assert_int_equal(od->consec_5xx, 3);
	assert_int_not_equal(od->cluster_key, cluster(t, NULL)->lb->od.cluster_key);
	wp_route_table_free(t);

	t = build_dr("  trafficPolicy:\n"
	             "    outlierDetection: {consecutive5xxErrors: 3}\n"
	             "    portLevelSettings:\n"
	             "    - port: {number: 9080}\n"
	             "      outlierDetection: {consecutive5xxErrors: 8}\n");
	assert_int_equal(cluster(t, NULL)->lb->od.consec_5xx, 8);
	wp_route_table_free(t);

	/* bad fields: reported by name, the previous level's value stays */
	static const struct {
		const char *od, *what;
	} bad[] = {
	        {"{consecutive5xxErrors: -1}", "consecutive5xxErrors must be an integer 0..65535"},
	        {"{consecutiveGatewayErrors: 70000}", "consecutiveGatewayErrors must be"},
	        {"{consecutiveLocalOriginFailures: x}", "consecutiveLocalOriginFailures must"},
	        {"{maxEjectionPercent: 101}", "maxEjectionPercent must be an integer 0..100"},
	        {"{minHealthPercent: 200}", "minHealthPercent must be an integer 0..100"},
	        {"{interval: 10}", "interval must be a positive duration"},
	        {"{baseEjectionTime: 0s}", "baseEjectionTime must be a positive duration"},
	        {"{splitExternalLocalOriginErrors: maybe}", "must be true or false"},
	        {"[1]", "expected a mapping"},
	};
	for (size_t i = 0; i < WP_ARRAY_SIZE(bad); i++) {
		char spec[512];

		snprintf(spec, sizeof(spec),
		         "  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 2}\n"
		         "  subsets:\n  - name: v1\n    trafficPolicy:\n"
		         "      outlierDetection: %s\n",
		         bad[i].od);
		t = build_dr(spec);
		if (!has_error(t, "spec.subsets[0].trafficPolicy.outlierDetection", bad[i].what))
			fail_msg("%s: no error \"%s\"", bad[i].od, bad[i].what);
		assert_int_equal(cluster(t, "v1")->lb->od.consec_5xx, 2);
		wp_route_table_free(t);
	}
	fx_free_objs();
}

/* ---- picks ------------------------------------------------------------------- */

static struct wp_lb_endpoint ep(uint32_t host)
{
	struct wp_lb_endpoint e = {.port = 8080, .weight = 1};

	e.addr.family = WP_AF_INET;
	e.addr.v4 = __builtin_bswap32(0x0a000000u | host);
	return e;
}

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* Every policy skips an ejected endpoint; the hashes keep every other key
 * where it was and spread the ejected one's keys. */
static void test_pick_skips(void **state)
{
	static const enum wp_lb_policy pols[] = {WP_LB_ROUND_ROBIN, WP_LB_LEAST_REQUEST,
	                                         WP_LB_RANDOM, WP_LB_RING_HASH, WP_LB_MAGLEV};
	struct wp_lb_endpoint e[5];

	(void)state;
	for (uint32_t i = 0; i < 5; i++)
		e[i] = ep(i + 1);
	for (size_t p = 0; p < WP_ARRAY_SIZE(pols); p++) {
		struct wp_lb_params prm = {.policy = pols[p], .maglev_size = 1009};
		struct wp_lb_table *t = wp_lb_table_build(&prm, e, 5);
		struct wp_lb_core c;
		uint64_t ej[1] = {1u << 2 | 1u << 4};
		int before[2000], got[5] = {0};
		unsigned moved_other = 0;

		assert_non_null(t);
		wp_lb_core_init(&c, t, 3, NULL, ctr);
		for (int k = 0; k < 2000; k++)
			before[k] = wp_lb_pick(t, &c, mix((uint64_t)k), true);
		c.ejected = ej;
		for (int k = 0; k < 2000; k++) {
			int i = wp_lb_pick(t, &c, mix((uint64_t)k), true);

			assert_true(i >= 0 && i < 5);
			got[i]++;
			if (before[k] != 2 && before[k] != 4 && i != before[k])
				moved_other++;
			if (pols[p] == WP_LB_RING_HASH || pols[p] == WP_LB_MAGLEV)
				assert_int_equal(wp_lb_pick(t, &c, mix((uint64_t)k), true),
				                 i); /* the moved keys stay together */
		}
		assert_int_equal(got[2], 0);
		assert_int_equal(got[4], 0);
		assert_true(got[0] > 0 && got[1] > 0 && got[3] > 0);
		if (pols[p] == WP_LB_RING_HASH || pols[p] == WP_LB_MAGLEV)
			assert_int_equal(moved_other, 0); /* minimal key movement */
		wp_lb_table_free(t);
	}
}

/* ---- ejections ---------------------------------------------------------------- */

static struct wp_lb_table *od_table(uint32_t n, uint16_t c5xx, uint8_t max_pct, const char *name)
{
	struct wp_lb_endpoint e[8];
	struct wp_lb_params prm = {.policy = WP_LB_ROUND_ROBIN};
	struct wp_lb_table *t;

	for (uint32_t i = 0; i < n; i++)
		e[i] = ep(i + 1);
	prm.od = (struct wp_lb_outlier){
	        .enabled = true,
	        .consec_5xx = c5xx,
	        .consec_local = 5,
	        .interval_ms = 1000,
	        .base_ms = 5000,
	        .max_eject_pct = max_pct,
	};
	snprintf(prm.od.cluster, sizeof(prm.od.cluster), "%s", name);
	prm.od.cluster_key = wp_lb_hash(name, strlen(name));
	t = wp_lb_table_build(&prm, e, n);
	assert_non_null(t);
	return t;
}

/* <n> results <res> for endpoint <i> of <t> on core <c>, then a pick's
 * look at <t> (where a threshold reached is reported). */
static void results(struct wp_lb_cache *c, const struct wp_lb_table *t, int i, int res, int n)
{
	struct wp_lb_active a;

	for (int k = 0; k < n; k++) {
		wp_lb_cache_begin(c, t, i, &a);
		wp_lb_cache_result(c, &a, res);
		wp_lb_cache_end(c, &a);
	}
	(void)wp_lb_cache_core(c, t);
}

/* How often each endpoint is picked in 300 picks. */
static void picks(struct wp_lb_cache *c, const struct wp_lb_table *t, int *got)
{
	memset(got, 0, sizeof(int) * t->n_ep);
	for (int k = 0; k < 300; k++)
		got[wp_lb_pick(t, wp_lb_cache_core(c, t), 0, false)]++;
}

static struct wp_outlier_row row_of(struct wp_outlier *o, uint32_t host)
{
	struct wp_outlier_row rows[16];
	uint32_t n = wp_outlier_rows(o, 0, rows, 16);

	for (uint32_t i = 0; i < n; i++)
		if (rows[i].addr.v4 == __builtin_bswap32(0x0a000000u | host))
			return rows[i];
	fail_msg("no row for 10.0.0.%u", host);
	return rows[0];
}

static void test_eject_return_again(void **state)
{
	struct wp_outlier *o = wp_outlier_new(64);
	struct wp_lb_cache *c0 = wp_lb_cache_new(1, ctr), *c1 = wp_lb_cache_new(2, ctr);
	struct wp_lb_table *t = od_table(3, 3, 34, "outbound|80||a.default.svc.cluster.local");
	int got[3];

	(void)state;
	assert_non_null(o);
	memset(ctr, 0, sizeof(ctr));
	wp_lb_cache_set_outlier(c0, o);
	wp_lb_cache_set_outlier(c1, o);
	wp_lb_cache_clock(c0, 1000);
	wp_lb_cache_clock(c1, 1000);
	picks(c1, t, got); /* core 1 has its view before the ejection */
	assert_true(got[0] > 0);

	/* two 503s, a 200 (starts over), then three: ejected on the third */
	results(c0, t, 0, 503, 2);
	results(c0, t, 0, 200, 1);
	results(c0, t, 0, 503, 2);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_5XX], 0);
	results(c0, t, 0, 503, 1);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_5XX], 1);
	assert_int_equal(wp_outlier_until(o, t, 0), 1000 + 5000);
	/* both cores skip it from their next pick on */
	picks(c0, t, got);
	assert_int_equal(got[0], 0);
	picks(c1, t, got);
	assert_int_equal(got[0], 0);
	assert_true(got[1] > 0 && got[2] > 0);
	assert_int_equal(row_of(o, 1).ejections, 1);
	assert_int_equal(row_of(o, 1).reason, WP_OUTLIER_5XX);

	/* back after baseEjectionTime */
	wp_lb_cache_clock(c0, 5999);
	picks(c0, t, got);
	assert_int_equal(got[0], 0);
	wp_lb_cache_clock(c0, 6000);
	picks(c0, t, got);
	assert_true(got[0] > 0);

	/* still failing: ejected again for 2 x base */
	results(c0, t, 0, 503, 3);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_5XX], 2);
	assert_int_equal(wp_outlier_until(o, t, 0), 6000 + 2 * 5000);
	assert_int_equal(row_of(o, 1).ejections, 2);
	assert_int_equal(row_of(o, 1).total, 2);

	/* a new snapshot's table of the same cluster keeps the ejection */
	{
		struct wp_lb_table *t2 =
		        od_table(3, 3, 34, "outbound|80||a.default.svc.cluster.local");

		picks(c1, t2, got);
		assert_int_equal(got[0], 0);
		wp_lb_table_free(t2);
	}

	/* 3 healthy intervals after it returned: the multiplier comes down
	 * from 2 to 0, so the next ejection is one base again */
	wp_lb_cache_clock(c0, 16000 + 3000);
	results(c0, t, 0, 503, 3);
	assert_int_equal(wp_outlier_until(o, t, 0), 19000 + 5000);
	assert_int_equal(row_of(o, 1).ejections, 1);
	assert_int_equal(row_of(o, 1).total, 3);

	wp_lb_table_free(t);
	wp_lb_cache_free(c0);
	wp_lb_cache_free(c1);
	wp_outlier_free(o);
}

/* All three failing, maxEjectionPercent 34: one ejected, the others refused
 * (counted); with minHealthPercent above what is left, panic: all used. */
static void test_max_percent_and_panic(void **state)
{
	struct wp_outlier *o = wp_outlier_new(64);
	struct wp_lb_cache *c = wp_lb_cache_new(1, ctr);
	struct wp_lb_table *t = od_table(3, 2, 34, "outbound|80||b.default.svc.cluster.local");
	int got[3];

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	wp_lb_cache_set_outlier(c, o);
	wp_lb_cache_clock(c, 50);
	for (int i = 0; i < 3; i++)
		results(c, t, i, 500, 2);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_5XX], 1);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_OVERFLOW], 2);
	picks(c, t, got);
	assert_int_equal(got[0], 0);
	assert_int_equal(got[1] + got[2], 300);
	wp_lb_table_free(t);

	/* 67% healthy left, minHealthPercent 70: every endpoint is used */
	t = od_table(3, 2, 34, "outbound|80||b.default.svc.cluster.local");
	t->od.min_health_pct = 70;
	picks(c, t, got);
	assert_true(got[0] > 0);
	assert_true(ctr[WP_CTR_L7_OD_PANIC] > 0);
	wp_lb_table_free(t);
	wp_lb_cache_free(c);
	wp_outlier_free(o);
}

/* Every endpoint ejected (maxEjectionPercent 100) with minHealthPercent 0,
 * Istio's default: Envoy's panic mode is off, no host is healthy, every
 * pick fails (503 UH, counted) until an ejection ends; with minHealthPercent
 * 50 the same ejections are panic: every endpoint is used. */
static void test_all_ejected(void **state)
{
	struct wp_outlier *o = wp_outlier_new(64);
	struct wp_lb_cache *c = wp_lb_cache_new(1, ctr);
	struct wp_lb_table *t = od_table(2, 1, 100, "outbound|80||e.default.svc.cluster.local");
	int got[2];

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	wp_lb_cache_set_outlier(c, o);
	wp_lb_cache_clock(c, 50);
	results(c, t, 0, 500, 1);
	results(c, t, 1, 500, 1);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_5XX], 2);
	for (int k = 0; k < 10; k++)
		assert_int_equal(wp_lb_pick(t, wp_lb_cache_core(c, t), 0, false), -EHOSTUNREACH);
	assert_int_equal(ctr[WP_CTR_L7_OD_NONE_HEALTHY], 10);
	assert_int_equal(ctr[WP_CTR_L7_OD_PANIC], 0);
	wp_lb_table_free(t);

	t = od_table(2, 1, 100, "outbound|80||e.default.svc.cluster.local");
	t->od.min_health_pct = 50;
	picks(c, t, got);
	assert_true(got[0] > 0 && got[1] > 0);
	assert_true(ctr[WP_CTR_L7_OD_PANIC] > 0);
	wp_lb_table_free(t);

	/* back once the ejections end (base 5 s) */
	t = od_table(2, 1, 100, "outbound|80||e.default.svc.cluster.local");
	wp_lb_cache_clock(c, 50 + 5000);
	picks(c, t, got);
	assert_true(got[0] > 0 && got[1] > 0);
	assert_int_equal(ctr[WP_CTR_L7_OD_NONE_HEALTHY], 10);
	wp_lb_table_free(t);
	wp_lb_cache_free(c);
	wp_outlier_free(o);
}

/* Gateway errors are 502/503/504 only; a 500 starts their count over.
 * Local-origin failures count as 503 unless split, then on their own. */
static void test_gateway_and_local(void **state)
{
	struct wp_outlier *o = wp_outlier_new(64);
	struct wp_lb_cache *c = wp_lb_cache_new(1, ctr);
	struct wp_lb_table *t = od_table(4, 0, 100, "outbound|80||c.default.svc.cluster.local");

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	wp_lb_cache_set_outlier(c, o);
	wp_lb_cache_clock(c, 10);
	t->od.consec_gw = 3;
	results(c, t, 0, 500, 10); /* 5xx detection is off (0) */
	results(c, t, 0, 502, 2);
	results(c, t, 0, 500, 1);
	results(c, t, 0, 504, 2);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_GATEWAY], 0);
	results(c, t, 0, 503, 1);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_GATEWAY], 1);
	assert_int_equal(row_of(o, 1).reason, WP_OUTLIER_GATEWAY);

	/* not split: connect failures are gateway errors */
	results(c, t, 1, WP_LB_RES_LOCAL_FAIL, 3);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_GATEWAY], 2);

	/* split: their own threshold (5); a connection that comes up starts over
	 * (a new snapshot's table of the same cluster, the counts start over) */
	wp_lb_table_free(t);
	t = od_table(4, 0, 100, "outbound|80||c.default.svc.cluster.local");
	t->od.consec_gw = 3;
	t->od.split_local = true;
	results(c, t, 2, WP_LB_RES_LOCAL_FAIL, 4);
	results(c, t, 2, WP_LB_RES_CONNECTED, 1);
	results(c, t, 2, WP_LB_RES_LOCAL_FAIL, 4);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_LOCAL], 0);
	results(c, t, 2, WP_LB_RES_LOCAL_FAIL, 1);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_LOCAL], 1);
	assert_int_equal(row_of(o, 3).reason, WP_OUTLIER_LOCAL);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_GATEWAY], 2);

	/* a cache without the table, or a table without detection: nothing */
	{
		struct wp_lb_cache *off = wp_lb_cache_new(2, ctr);

		results(off, t, 3, 503, 10);
		wp_lb_cache_free(off);
	}
	assert_int_equal(wp_outlier_until(o, t, 3), 0);
	wp_lb_table_free(t);
	wp_lb_cache_free(c);
	wp_outlier_free(o);
}

/* A response that comes after its snapshot's table was freed reads
 * nothing of it (valgrind / ASan would see it) and ejects nothing. */
static void test_result_after_table_freed(void **state)
{
	struct wp_outlier *o = wp_outlier_new(64);
	struct wp_lb_cache *c = wp_lb_cache_new(1, ctr);
	struct wp_lb_table *t = od_table(3, 1, 100, "outbound|80||d.default.svc.cluster.local");
	struct wp_lb_active a;

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	wp_lb_cache_set_outlier(c, o);
	wp_lb_cache_begin(c, t, 1, &a);
	wp_lb_table_free(t); /* the snapshot moved on under the request */
	wp_lb_cache_result(c, &a, 503);
	wp_lb_cache_end(c, &a);
	t = od_table(3, 1, 100, "outbound|80||d.default.svc.cluster.local");
	(void)wp_lb_cache_core(c, t);
	assert_int_equal(ctr[WP_CTR_L7_OD_EJECT_5XX], 0);
	wp_lb_table_free(t);
	wp_lb_cache_free(c);
	wp_outlier_free(o);
}

/* A full table refuses (counted) rather than overwrite another entry. */
static void test_table_full(void **state)
{
	struct wp_outlier *o = wp_outlier_new(1); /* 16 entries */
	struct wp_lb_table *t[17];

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	for (int i = 0; i < 17; i++) {
		char name[64];

		snprintf(name, sizeof(name), "outbound|80||s%d.default.svc.cluster.local", i);
		t[i] = od_table(1, 1, 100, name);
		assert_int_equal(wp_outlier_eject(o, t[i], 0, WP_OUTLIER_5XX, 1, ctr),
		                 i < 16 ? 0 : -ENOSPC);
	}
	assert_int_equal(ctr[WP_CTR_L7_OD_TABLE_FULL], 1);
	assert_int_equal(wp_outlier_eject(o, t[3], 0, WP_OUTLIER_5XX, 2, ctr), -EALREADY);
	for (int i = 0; i < 17; i++)
		wp_lb_table_free(t[i]);
	wp_outlier_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_compile),
	        cmocka_unit_test(test_pick_skips),
	        cmocka_unit_test(test_eject_return_again),
	        cmocka_unit_test(test_max_percent_and_panic),
	        cmocka_unit_test(test_all_ejected),
	        cmocka_unit_test(test_gateway_and_local),
	        cmocka_unit_test(test_result_after_table_freed),
	        cmocka_unit_test(test_table_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
