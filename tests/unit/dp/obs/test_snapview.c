/*
 * dp/obs/snapview.c: a worker records the snapshot it runs only when the
 * version changes, and readers on another thread always get one snapshot's
 * figures together (the sequence counter), never a torn mix.
 */
#include <pthread.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "snapview.h"
#include "wp/config.h"
#include "wp/snapshot_types.h"

static void test_records_changes_only(void **state)
{
	static const struct wp_snap_gateway gws[2] = {
	        {.ns = "default", .name = "waypoint", .n_services = 3},
	        {.ns = "default", .name = "reviews-v2-pod-waypoint", .n_workloads = 1},
	};
	struct wp_snapshot a = {.version = 1,
	                        .n_dests = 7,
	                        .n_services = 3,
	                        .n_workloads = 1,
	                        .n_gateways = 2,
	                        .gateways = gws,
	                        .built_ns = 1234};
	struct wp_snapshot b = {.version = 2, .n_dests = 9};
	struct wp_snapview_row r;

	(void)state;
	wp_snapview_read(3, &r);
	assert_int_equal(r.version, 0);
	wp_snapview_observe(3, NULL); /* nothing published yet: no change */
	wp_snapview_read(3, &r);
	assert_int_equal(r.changes, 0);
	wp_snapview_observe(3, &a);
	wp_snapview_read(3, &r);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.dests, 7);
	assert_int_equal(r.services, 3);
	assert_int_equal(r.workloads, 1);
	assert_int_equal(r.gateways, 2);
	assert_int_equal(r.built_ns, 1234);
	assert_true(r.seen_ns > 0);
	assert_int_equal(r.changes, 1);
	assert_int_equal(r.n_gw, 2);
	assert_string_equal(r.gw[1].name, "default/reviews-v2-pod-waypoint");
	assert_int_equal(r.gw[0].services, 3);
	assert_int_equal(r.gw[1].workloads, 1);
	uint64_t seen = r.seen_ns;
	for (int i = 0; i < 100; i++)
		wp_snapview_observe(3, &a);
	wp_snapview_read(3, &r);
	assert_int_equal(r.changes, 1);
	assert_int_equal(r.seen_ns, seen);
	wp_snapview_observe(3, &b);
	wp_snapview_read(3, &r);
	assert_int_equal(r.version, 2);
	assert_int_equal(r.dests, 9);
	assert_int_equal(r.changes, 2);
	assert_int_equal(r.n_gw, 0);
	/* other workers untouched */
	wp_snapview_read(2, &r);
	assert_int_equal(r.version, 0);
	assert_int_equal(wp_snapview_register(0), -EINVAL);
	assert_int_equal(wp_snapview_register(WP_MAX_WORKERS + 1), -EINVAL);
}

#define ROUNDS 200000

static volatile int stop;

static void *writer(void *arg)
{
	static struct wp_snapshot s[2];

	(void)arg;
	for (uint64_t v = 1; v <= ROUNDS; v++) {
		struct wp_snapshot *p = &s[v & 1];

		p->version = v;
		p->n_dests = v * 2;
		p->n_services = v * 3;
		p->built_ns = v * 5;
		wp_snapview_observe(5, p);
	}
	stop = 1;
	return NULL;
}

static void test_no_torn_reads(void **state)
{
	pthread_t th;
	unsigned long reads = 0, bad = 0;
	struct wp_snapview_row r;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, writer, NULL), 0);
	while (!stop) {
		wp_snapview_read(5, &r);
		reads++;
		if (r.dests != r.version * 2 || r.services != r.version * 3 ||
		    r.built_ns != r.version * 5 || r.changes != r.version)
			bad++;
	}
	pthread_join(th, NULL);
	wp_snapview_read(5, &r);
	assert_int_equal(r.version, ROUNDS);
	assert_int_equal(bad, 0);
	assert_true(reads > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_records_changes_only),
	        cmocka_unit_test(test_no_torn_reads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
