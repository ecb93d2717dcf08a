/*
 * Membership (cp/kube/member.c) against an in-memory API server holding
 * WorkloadEntries with resourceVersion semantics (PUT and DELETE
 * preconditions answer 409 when stale), on a fake clock: the entry's name
 * and body, registration and renewal, deregistration, the leader deleting
 * an entry that stopped renewing after the TTL on its own clock (and not
 * before), a follower never deleting, a renewal racing the delete (409,
 * the member stays), and the member table the admin API shows.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "member.h"
#include "wp/counters.h"

#define COLL "/apis/networking.istio.io/v1/namespaces/ns/workloadentries"

struct fake {
	json_t *objs; /* name -> entry */
	int rv;
	bool down;      /* no answer */
	bool race;      /* the entry deleted next is renewed first */
	unsigned posts; /* creations */
	unsigned puts;  /* renewals */
	json_t *last;   /* the last body written */
};

static const char *name_of(const char *path)
{
	const char *p = strrchr(path, '/');

	assert_non_null(p);
	return p + 1;
}

static void bump(struct fake *f, json_t *obj)
{
	char rv[16];

	snprintf(rv, sizeof(rv), "%d", ++f->rv);
	json_object_set_new(json_object_get(obj, "metadata"), "resourceVersion", json_string(rv));
}

static const char *rv_of(json_t *o)
{
	return json_string_value(
	        json_object_get(json_object_get(o, "metadata"), "resourceVersion"));
}

static int fake_req(void *arg, const char *method, const char *path, const char *body,
                    struct wp_kube_resp *resp)
{
	struct fake *f = arg;
	json_t *in = NULL, *cur;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if (f->down) {
		snprintf(resp->error, sizeof(resp->error), "timed out");
		return -EIO;
	}
	if (!strcmp(method, "GET") && strchr(path, '?')) {
		const char *k;
		json_t *v, *items = json_array();

		assert_string_equal(path, COLL "?labelSelector=app.kubernetes.io/"
		                               "managed-by%3Dwaypointd%2Capp.kubernetes.io/"
		                               "name%3Dwp");
		json_object_foreach(f->objs, k, v) json_array_append(items, v);
		resp->status = 200;
		resp->json = json_pack("{s:o}", "items", items);
		return 0;
	}
	if (body) {
		in = json_loads(body, 0, NULL);
		assert_non_null(in);
	}
	if (!strcmp(method, "POST")) {
		const char *n =
		        json_string_value(json_object_get(json_object_get(in, "metadata"), "name"));

		assert_string_equal(path, COLL);
		if (json_object_get(f->objs, n)) {
			resp->status = 409;
			json_decref(in);
			return 0;
		}
		bump(f, in);
		json_object_set(f->objs, n, in);
		json_decref(f->last);
		f->last = json_deep_copy(in);
		f->posts++;
		resp->status = 201;
		resp->json = in;
		return 0;
	}
	assert_true(!strncmp(path, COLL "/", strlen(COLL) + 1));
	cur = json_object_get(f->objs, name_of(path));
	if (!strcmp(method, "GET")) {
		resp->status = cur ? 200 : 404;
		resp->json = cur ? json_deep_copy(cur) : NULL;
		return 0;
	}
	if (!strcmp(method, "PUT")) {
		if (!cur || strcmp(rv_of(in), rv_of(cur))) {
			resp->status = cur ? 409 : 404;
			json_decref(in);
			return 0;
		}
		bump(f, in);
		json_object_set(f->objs, name_of(path), in);
		json_decref(f->last);
		f->last = json_deep_copy(in);
		f->puts++;
		resp->status = 200;
		resp->json = in;
		return 0;
	}
	assert_string_equal(method, "DELETE");
	if (cur && f->race) {
		f->race = false;
		bump(f, cur);
	}
	if (!cur)
		resp->status = 404;
	else if (in && strcmp(json_string_value(json_object_get(
	                              json_object_get(in, "preconditions"), "resourceVersion")),
	                      rv_of(cur)))
		resp->status = 409;
	else {
		json_object_del(f->objs, name_of(path));
		resp->status = 200;
	}
	json_decref(in);
	return 0;
}

/* A Lease server that always grants the Lease: its candidate leads. */
static int lease_ok(void *arg, const char *method, const char *path, const char *body,
                    struct wp_kube_resp *resp)
{
	(void)arg;
	(void)path;
	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	resp->status = !strcmp(method, "GET") ? 404 : 201;
	resp->json = body ? json_loads(body, 0, NULL) : NULL;
	return 0;
}

static struct wp_kube_lease *leader(void)
{
	struct wp_kube_lease_config c = {.name = "waypointd-wp",
	                                 .namespace = "ns",
	                                 .identity = "a",
	                                 .duration = 15,
	                                 .renew_deadline = 1e6, /* the fake clock runs far */
	                                 .retry = 2};
	struct wp_kube_lease *l = wp_kube_lease_create(&c, NULL);
	struct timespec w = {.tv_sec = 1800000000};

	assert_non_null(l);
	wp_kube_lease_set_transport(l, lease_ok, NULL);
	assert_true(wp_kube_lease_step(l, wp_kube_lease_now(), &w));
	return l;
}

static struct wp_kube_member *member(struct fake *f, const char *id, const char *addr,
                                     struct wp_kube_lease *lease)
{
	struct wp_kube_member_config c = {.service = "wp",
	                                  .namespace = "ns",
	                                  .identity = id,
	                                  .address = addr,
	                                  .renew = 5,
	                                  .ttl = 15};
	struct wp_kube_member *m = wp_kube_member_create(&c, NULL, lease);

	assert_non_null(m);
	wp_kube_member_set_transport(m, fake_req, f);
	return m;
}

/* The member's clock: the lease's monotonic clock plus t (the lease reads
 * the real one), so "leading" holds throughout. Whole seconds: t0 + 15 -
 * t0 is exactly 15 then, while a t0 with a fraction just below a power of
 * two (1,011.5 s after boot, in one CI run) loses its last bit in t0 + 15,
 * the difference comes out a hair under 15, and the expiry at the TTL
 * (>=) waits for the next step. */
static double t0;

static void step(struct wp_kube_member *m, double t)
{
	struct timespec w = {.tv_sec = 1800000000 + (time_t)t};

	wp_kube_member_step(m, t0 + t, &w);
}

static uint64_t ctr(struct wp_kube_member *m, int c)
{
	uint64_t out[WP_CTR_MAX] = {0};

	wp_kube_member_counters(m, out);
	return out[c];
}

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->objs = json_object();
	t0 = floor(wp_kube_lease_now());
}

static void fake_fini(struct fake *f)
{
	json_decref(f->objs);
	json_decref(f->last);
}

static void test_entry_name(void **state)
{
	char out[300];
	char longid[400];

	(void)state;
	wp_kube_member_entry_name("waypointd", "Node_1.example", out, sizeof(out));
	assert_string_equal(out, "waypointd-node-1.example");
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	wp_kube_member_entry_name("wp", longid, out, sizeof(out));
	assert_int_equal(strlen(out), 253);
}

static void test_config_refused(void **state)
{
	struct wp_kube_member_config c = {
	        .service = "wp", .namespace = "ns", .identity = "a", .renew = 5, .ttl = 15};

	(void)state;
	assert_null(wp_kube_member_create(&c, NULL, NULL)); /* no address */
	c.address = "10.0.0.1";
	c.ttl = 5;
	assert_null(wp_kube_member_create(&c, NULL, NULL)); /* ttl <= renew */
}

static void test_register_renew_deregister(void **state)
{
	struct fake f;
	struct wp_kube_member *m;
	json_t *e, *md;

	(void)state;
	fake_init(&f);
	m = member(&f, "a", "10.0.0.1", NULL);
	step(m, 0); /* not ready: nothing written */
	assert_int_equal(f.posts + f.puts, 0);
	assert_true(wp_kube_member_wait_deregistered(m, 0));

	wp_kube_member_set_ready(m, true);
	step(m, 1);
	assert_int_equal(f.posts, 1);
	e = json_object_get(f.objs, "wp-a");
	assert_non_null(e);
	md = json_object_get(e, "metadata");
	assert_string_equal(json_string_value(json_object_get(md, "namespace")), "ns");
	assert_string_equal(json_string_value(json_object_get(json_object_get(md, "labels"),
	                                                      "app.kubernetes.io/name")),
	                    "wp");
	assert_string_equal(json_string_value(json_object_get(json_object_get(md, "labels"),
	                                                      "waypointd.io/member")),
	                    "a");
	assert_string_equal(json_string_value(json_object_get(json_object_get(md, "annotations"),
	                                                      "waypointd.io/renew-time")),
	                    "2027-01-15T08:00:01.000000Z");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(e, "spec"), "address")),
	        "10.0.0.1");
	/* the identity defaults to the Service's name */
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(e, "spec"), "serviceAccount")),
	        "wp");
	assert_int_equal(json_integer_value(json_object_get(
	                         json_object_get(json_object_get(e, "spec"), "ports"), "mesh")),
	                 15008);
	assert_int_equal(ctr(m, WP_CTR_KUBE_MEMBER_REGISTERED), 1);

	step(m, 6); /* renewed: a PUT with the version read, a new version */
	assert_int_equal(f.puts, 1);
	assert_int_equal(f.posts, 1);
	assert_string_equal(rv_of(json_object_get(f.objs, "wp-a")), "2");

	/* drain */
	wp_kube_member_set_ready(m, false);
	assert_false(wp_kube_member_wait_deregistered(m, 0));
	step(m, 7);
	assert_null(json_object_get(f.objs, "wp-a"));
	assert_true(wp_kube_member_wait_deregistered(m, 0));
	assert_int_equal(ctr(m, WP_CTR_KUBE_MEMBER_DEREGISTERED), 1);
	step(m, 12); /* stays out */
	assert_int_equal(json_object_size(f.objs), 0);
	wp_kube_member_destroy(m);
	fake_fini(&f);
}

static void test_failed_deregistration_retried(void **state)
{
	struct fake f;
	struct wp_kube_member *m;

	(void)state;
	fake_init(&f);
	m = member(&f, "a", "10.0.0.1", NULL);
	wp_kube_member_set_ready(m, true);
	step(m, 0);
	wp_kube_member_set_ready(m, false);
	f.down = true;
	step(m, 1);
	assert_false(wp_kube_member_wait_deregistered(m, 0));
	assert_true(ctr(m, WP_CTR_KUBE_MEMBER_FAILED) >= 1);
	f.down = false;
	step(m, 2);
	assert_true(wp_kube_member_wait_deregistered(m, 0));
	assert_int_equal(json_object_size(f.objs), 0);
	wp_kube_member_destroy(m);
	fake_fini(&f);
}

static void test_leader_expires_dead_member(void **state)
{
	struct fake f;
	struct wp_kube_lease *l = leader();
	struct wp_kube_member *a, *b, *c;
	struct wp_kube_member_info info;

	(void)state;
	fake_init(&f);
	a = member(&f, "a", "10.0.0.1", l);
	b = member(&f, "b", "10.0.0.2", NULL);
	c = member(&f, "c", "10.0.0.3", NULL); /* a follower: never deletes */
	wp_kube_member_set_ready(a, true);
	wp_kube_member_set_ready(b, true);
	wp_kube_member_set_ready(c, true);
	step(b, 0);
	step(a, 0); /* a sees b's version at 0 */
	step(c, 0);
	wp_kube_member_info(a, t0 + 0, &info);
	assert_int_equal(info.n, 3 - 1); /* c registered after a's list */
	/* b dies (no more steps); a and c keep renewing */
	for (double t = 5; t < 15; t += 5) {
		step(a, t);
		step(c, t);
	}
	assert_non_null(json_object_get(f.objs, "wp-b"));
	step(c, 20); /* past the TTL, but c does not lead */
	assert_non_null(json_object_get(f.objs, "wp-b"));
	assert_int_equal(ctr(c, WP_CTR_KUBE_MEMBER_EXPIRED), 0);
	step(a, 14.9); /* unchanged for 14.9 s on a's clock: alive */
	assert_non_null(json_object_get(f.objs, "wp-b"));
	step(a, 15);
	assert_null(json_object_get(f.objs, "wp-b"));
	assert_int_equal(ctr(a, WP_CTR_KUBE_MEMBER_EXPIRED), 1);
	/* the live ones stay, and the table shows them */
	step(a, 20);
	wp_kube_member_info(a, t0 + 20, &info);
	assert_int_equal(info.n, 2);
	assert_true(info.registered);
	for (unsigned i = 0; i < info.n; i++) {
		assert_true(!strcmp(info.m[i].identity, "a") || !strcmp(info.m[i].identity, "c"));
		assert_string_equal(info.m[i].address,
		                    !strcmp(info.m[i].identity, "a") ? "10.0.0.1" : "10.0.0.3");
		/* c's last renewal (at 20 on its clock) was first seen at 14.9 */
		assert_true(info.m[i].age >= 0 && info.m[i].age <= 5.2);
	}
	wp_kube_member_destroy(a);
	wp_kube_member_destroy(b);
	wp_kube_member_destroy(c);
	wp_kube_lease_destroy(l);
	fake_fini(&f);
}

static void test_renewal_racing_expiry(void **state)
{
	struct fake f;
	struct wp_kube_lease *l = leader();
	struct wp_kube_member *a, *b;

	(void)state;
	fake_init(&f);
	a = member(&f, "a", "10.0.0.1", l);
	b = member(&f, "b", "10.0.0.2", NULL);
	wp_kube_member_set_ready(a, true);
	wp_kube_member_set_ready(b, true);
	step(b, 0);
	step(a, 0);
	step(a, 8);
	/* b's renewal lands between a's list and its delete: 409, b stays */
	f.race = true;
	step(a, 16);
	assert_non_null(json_object_get(f.objs, "wp-b"));
	assert_int_equal(ctr(a, WP_CTR_KUBE_MEMBER_EXPIRED), 0);
	assert_int_equal(ctr(a, WP_CTR_KUBE_MEMBER_CONFLICT), 1);
	/* its new version, first listed at 24, starts a new TTL */
	step(a, 24);
	step(a, 38);
	assert_non_null(json_object_get(f.objs, "wp-b"));
	step(a, 39);
	assert_null(json_object_get(f.objs, "wp-b"));
	wp_kube_member_destroy(a);
	wp_kube_member_destroy(b);
	wp_kube_lease_destroy(l);
	fake_fini(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_entry_name),
	        cmocka_unit_test(test_config_refused),
	        cmocka_unit_test(test_register_renew_deregister),
	        cmocka_unit_test(test_failed_deregistration_retried),
	        cmocka_unit_test(test_leader_expires_dead_member),
	        cmocka_unit_test(test_renewal_racing_expiry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
