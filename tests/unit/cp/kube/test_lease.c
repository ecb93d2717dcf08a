/*
 * Leader election on a Lease (cp/kube/lease.c) with a fake clock and an
 * in-memory API server that keeps one Lease with resourceVersion conflict
 * semantics: creation, renewal keeping acquireTime, a follower waiting out
 * leaseDurationSeconds on its own clock, takeover counting a transition, a
 * lost race (409), and a leader stepping down once the renew deadline
 * passes while the API server does not answer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lease.h"
#include "wp/counters.h"

#define PATH "/apis/coordination.k8s.io/v1/namespaces/ns/leases/waypointd-x"
#define COLL "/apis/coordination.k8s.io/v1/namespaces/ns/leases"

struct fake {
	json_t *obj; /* the Lease, or NULL */
	int rv;
	bool down;     /* no answer (a partition) */
	bool race;     /* someone writes between our GET and PUT */
	unsigned puts; /* successful writes */
};

static int fake_req(void *arg, const char *method, const char *path, const char *body,
                    struct wp_kube_resp *resp)
{
	struct fake *f = arg;
	json_t *in;
	char rv[16];

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if (f->down) {
		snprintf(resp->error, sizeof(resp->error), "timed out");
		return -EIO;
	}
	if (!strcmp(method, "GET")) {
		assert_string_equal(path, PATH);
		resp->status = f->obj ? 200 : 404;
		resp->json = f->obj ? json_deep_copy(f->obj) : NULL;
		return 0;
	}
	in = json_loads(body, 0, NULL);
	assert_non_null(in);
	if (!strcmp(method, "POST")) {
		assert_string_equal(path, COLL);
		if (f->obj) {
			resp->status = 409;
			json_decref(in);
			return 0;
		}
	} else {
		assert_string_equal(method, "PUT");
		assert_string_equal(path, PATH);
		if (f->race) {
			f->race = false;
			snprintf(rv, sizeof(rv), "%d", ++f->rv);
			json_object_set_new(json_object_get(f->obj, "metadata"), "resourceVersion",
			                    json_string(rv));
		}
		if (strcmp(json_string_value(json_object_get(json_object_get(in, "metadata"),
		                                             "resourceVersion")),
		           json_string_value(json_object_get(json_object_get(f->obj, "metadata"),
		                                             "resourceVersion")))) {
			resp->status = 409;
			json_decref(in);
			return 0;
		}
	}
	snprintf(rv, sizeof(rv), "%d", ++f->rv);
	json_object_set_new(json_object_get(in, "metadata"), "resourceVersion", json_string(rv));
	json_decref(f->obj);
	f->obj = in;
	f->puts++;
	resp->status = strcmp(method, "POST") ? 200 : 201;
	resp->json = json_deep_copy(in);
	return 0;
}

static struct wp_kube_lease *cand(struct fake *f, const char *id)
{
	struct wp_kube_lease_config c = {.name = "waypointd-x",
	                                 .namespace = "ns",
	                                 .identity = id,
	                                 .duration = 15,
	                                 .renew_deadline = 10,
	                                 .retry = 2};
	struct wp_kube_lease *l = wp_kube_lease_create(&c, NULL);

	assert_non_null(l);
	wp_kube_lease_set_transport(l, fake_req, f);
	return l;
}

/* Wall time: the fake clock's seconds after a fixed epoch. */
static bool step(struct wp_kube_lease *l, double t)
{
	struct timespec w = {.tv_sec = 1800000000 + (time_t)t,
	                     .tv_nsec = (long)((t - (double)(time_t)t) * 1e9)};

	return wp_kube_lease_step(l, 1000 + t, &w);
}

static const char *spec_str(struct fake *f, const char *k)
{
	return json_string_value(json_object_get(json_object_get(f->obj, "spec"), k));
}

static json_int_t spec_int(struct fake *f, const char *k)
{
	return json_integer_value(json_object_get(json_object_get(f->obj, "spec"), k));
}

static uint64_t ctr(struct wp_kube_lease *l, enum wp_ctr c)
{
	uint64_t out[WP_CTR_MAX] = {0};

	wp_kube_lease_counters(l, out);
	return out[c];
}

static void test_micro_time(void **state)
{
	struct timespec t = {.tv_sec = 1800000000, .tv_nsec = 1234567};
	char buf[40];

	(void)state;
	wp_kube_micro_time(&t, buf, sizeof(buf));
	assert_string_equal(buf, "2027-01-15T08:00:00.001234Z");
}

static void test_create_and_renew(void **state)
{
	struct fake f = {0};
	struct wp_kube_lease *a = cand(&f, "a");
	struct wp_kube_lease_info in;
	char acq[40];

	(void)state;
	assert_true(step(a, 0));
	assert_string_equal(spec_str(&f, "holderIdentity"), "a");
	assert_int_equal(spec_int(&f, "leaseDurationSeconds"), 15);
	assert_int_equal(spec_int(&f, "leaseTransitions"), 0);
	assert_string_equal(spec_str(&f, "acquireTime"), "2027-01-15T08:00:00.000000Z");
	assert_string_equal(spec_str(&f, "renewTime"), spec_str(&f, "acquireTime"));
	snprintf(acq, sizeof(acq), "%s", spec_str(&f, "acquireTime"));
	assert_int_equal(ctr(a, WP_CTR_KUBE_LEASE_ACQUIRED), 1);
	/* renewing keeps acquireTime and the transition count */
	assert_true(step(a, 2.5));
	assert_string_equal(spec_str(&f, "acquireTime"), acq);
	assert_string_equal(spec_str(&f, "renewTime"), "2027-01-15T08:00:02.500000Z");
	assert_int_equal(spec_int(&f, "leaseTransitions"), 0);
	assert_int_equal(f.puts, 2);
	assert_int_equal(ctr(a, WP_CTR_KUBE_LEASE_ACQUIRED), 1);
	wp_kube_lease_info(a, 1003, &in);
	assert_true(in.leading);
	assert_string_equal(in.holder, "a");
	assert_true(in.age > 0.49 && in.age < 0.51);
	wp_kube_lease_destroy(a);
	json_decref(f.obj);
}

/* A follower never takes a Lease that is being renewed, and takes it
 * leaseDurationSeconds after the holder's last renewal (seen a second late
 * here, dated back by its renewTime), counting a transition. */
static void test_follower_takeover(void **state)
{
	struct fake f = {0};
	struct wp_kube_lease *a = cand(&f, "a"), *b = cand(&f, "b");
	struct wp_kube_lease_info in;
	double t;

	(void)state;
	for (t = 0; t <= 60; t += 2) {
		assert_true(step(a, t));
		assert_false(step(b, t + 1));
	}
	assert_true(ctr(b, WP_CTR_KUBE_LEASE_HELD_ELSEWHERE) > 0);
	wp_kube_lease_info(b, 1061, &in);
	assert_false(in.leading);
	assert_string_equal(in.holder, "a");
	/* a dies after its renewal at 60; b saw that at 61 */
	for (t = 63; t < 60 + 15; t += 2)
		assert_false(step(b, t));
	assert_false(step(b, 74.9));
	assert_true(step(b, 75));
	assert_string_equal(spec_str(&f, "holderIdentity"), "b");
	assert_int_equal(spec_int(&f, "leaseTransitions"), 1);
	assert_string_equal(spec_str(&f, "acquireTime"), "2027-01-15T08:01:15.000000Z");
	/* a comes back: b holds it now */
	assert_false(step(a, 77));
	assert_false(wp_kube_lease_leading(a, 1077));
	assert_int_equal(ctr(a, WP_CTR_KUBE_LEASE_LOST), 1);
	wp_kube_lease_destroy(a);
	wp_kube_lease_destroy(b);
	json_decref(f.obj);
}

/* Expiry is judged on the follower's clock from when the record changed,
 * not from the holder's renewTime: a holder whose clock is far behind
 * keeps the Lease while it renews. */
static void test_skewed_holder_keeps_lease(void **state)
{
	struct fake f = {0};
	struct wp_kube_lease *a = cand(&f, "a"), *b = cand(&f, "b");
	struct timespec old = {.tv_sec = 1000000000};

	(void)state;
	for (int i = 0; i < 20; i++) {
		old.tv_sec += 2;
		assert_true(wp_kube_lease_step(a, 1000 + 2 * i, &old));
		assert_false(step(b, 2 * i + 1));
	}
	wp_kube_lease_destroy(a);
	wp_kube_lease_destroy(b);
	json_decref(f.obj);
}

/* A holder whose renewTime is far behind the follower's clock gets at
 * most one retry period of credit (2 s; half of duration - renew deadline
 * would be 2.5): after its last renewal the follower waits the lease
 * duration minus that from when it saw it, after the holder's renew
 * deadline. */
static void test_takeover_skew_bound(void **state)
{
	struct fake f = {0};
	struct wp_kube_lease *a = cand(&f, "a"), *b = cand(&f, "b");
	struct timespec old = {.tv_sec = 1000000000};

	(void)state;
	assert_true(wp_kube_lease_step(a, 1000, &old));
	assert_false(step(b, 1)); /* seen at 1, renewTime decades back */
	assert_false(step(b, 1 + 15 - 2 - 0.1));
	assert_true(wp_kube_lease_leading(a, 1000 + 9.9)); /* its deadline is 10 */
	assert_false(wp_kube_lease_leading(a, 1000 + 10));
	assert_true(step(b, 1 + 15 - 2));
	wp_kube_lease_destroy(a);
	wp_kube_lease_destroy(b);
	json_decref(f.obj);
}

/* Two candidates for an expired Lease: the one whose PUT carries a stale
 * resourceVersion gets 409 and stays a follower. */
static void test_conflict(void **state)
{
	struct fake f = {0};
	struct wp_kube_lease *a = cand(&f, "a"), *b = cand(&f, "b");

	(void)state;
	assert_true(step(a, 0));
	assert_false(step(b, 1));
	f.race = true;
	assert_false(step(b, 20)); /* expired, but someone wrote first */
	assert_int_equal(ctr(b, WP_CTR_KUBE_LEASE_CONFLICT), 1);
	assert_false(wp_kube_lease_leading(b, 1020));
	/* the creation race: POST answered 409 */
	json_decref(f.obj);
	f.obj = NULL;
	f.race = false;
	{
		struct fake g = {0};
		struct wp_kube_lease *c = cand(&g, "c");

		g.obj = json_pack("{s:{s:s}, s:{}}", "metadata", "resourceVersion", "7", "spec");
		g.rv = 7;
		assert_true(step(c, 0)); /* nobody named: taken at once */
		assert_string_equal(json_string_value(json_object_get(
		                            json_object_get(g.obj, "spec"), "holderIdentity")),
		                    "c");
		assert_int_equal(json_integer_value(json_object_get(json_object_get(g.obj, "spec"),
		                                                    "leaseTransitions")),
		                 1);
		wp_kube_lease_destroy(c);
		json_decref(g.obj);
	}
	wp_kube_lease_destroy(a);
	wp_kube_lease_destroy(b);
}

static int changes_true, changes_false;

static void on_change(void *arg, bool leading)
{
	(void)arg;
	if (leading)
		changes_true++;
	else
		changes_false++;
}

/* A leader cut off from the API server stops leading renew_deadline after
 * its last renewal: wp_kube_lease_leading() says so at once, whatever the
 * thread is doing, and the next attempt reports the loss. That is before
 * any follower can take over (leaseDurationSeconds after it saw the last
 * renewal). */
static void test_step_down_on_partition(void **state)
{
	struct fake f = {0};
	struct wp_kube_lease *a = cand(&f, "a"), *b = cand(&f, "b");

	(void)state;
	changes_true = changes_false = 0;
	wp_kube_lease_set_change_cb(a, on_change, NULL);
	assert_true(step(a, 0));
	assert_true(step(a, 2));
	assert_false(step(b, 2.5));
	assert_int_equal(changes_true, 1);
	f.down = true;
	for (double t = 4; t < 12; t += 2)
		assert_int_equal(step(a, t), t < 12);
	assert_true(wp_kube_lease_leading(a, 1011.9));
	assert_false(wp_kube_lease_leading(a, 1012.0)); /* 2 + 10 */
	assert_int_equal(changes_false, 0);
	assert_false(step(a, 12));
	assert_int_equal(changes_false, 1);
	assert_int_equal(ctr(a, WP_CTR_KUBE_LEASE_LOST), 1);
	assert_true(ctr(a, WP_CTR_KUBE_LEASE_FAILED) >= 5);
	/* the follower (not cut off) takes over only later */
	f.down = false;
	assert_false(step(b, 16));
	assert_true(step(b, 2.5 + 15));
	/* a is back: it stays a follower */
	assert_false(step(a, 18));
	assert_int_equal(changes_true, 1);
	wp_kube_lease_destroy(a);
	wp_kube_lease_destroy(b);
	json_decref(f.obj);
}

static void test_bad_config(void **state)
{
	struct wp_kube_lease_config c = {.name = "x",
	                                 .namespace = "ns",
	                                 .identity = "",
	                                 .duration = 15,
	                                 .renew_deadline = 10,
	                                 .retry = 2};

	(void)state;
	assert_null(wp_kube_lease_create(&c, NULL));
	c.identity = "a";
	c.retry = 0;
	assert_null(wp_kube_lease_create(&c, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_micro_time),
	        cmocka_unit_test(test_create_and_renew),
	        cmocka_unit_test(test_follower_takeover),
	        cmocka_unit_test(test_skewed_holder_keeps_lease),
	        cmocka_unit_test(test_takeover_skew_bound),
	        cmocka_unit_test(test_conflict),
	        cmocka_unit_test(test_step_down_on_partition),
	        cmocka_unit_test(test_bad_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
