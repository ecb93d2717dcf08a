/*
 * Unit tests for dp/l7/uppool.c, the per-core upstream pool both L7
 * proxies use, on its own: reuse of the most recently idled connection,
 * endpoint matching (address, family, port, HBONE, kind), the per-endpoint
 * idle limit, LRU eviction when every entry is taken, the idle timeout,
 * per-entry idle timeouts, take / retire by predicate (circuit breaking),
 * drain, shared (h2c-style) entries with a capacity, and the retry picks
 * that avoid endpoints that already failed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lb_cache.h"
#include "uppool.h"
#include "wp/counters.h"
#include "wp/lb.h"

static uint64_t ctr[WP_CTR_MAX];

/* An owner's upstream object, as the proxies embed the entry. */
struct own {
	int tag;
	uint32_t lim; /* streams it may carry (shared pools) */
	struct wp_uppool_ent pe;
};

static struct own objs[8];
static struct wp_uppool *cur;     /* the pool under test */
static int retired[8], n_retired; /* what ops->retire closed, in order */

static struct own *own_of(struct wp_uppool_ent *e)
{
	return e ? (struct own *)(void *)((char *)e - offsetof(struct own, pe)) : NULL;
}

static uint32_t lim_cb(const struct wp_uppool_ent *e)
{
	return own_of((struct wp_uppool_ent *)(uintptr_t)e)->lim;
}

static void retire_cb(struct wp_uppool_ent *e)
{
	assert_int_equal(e->state, WP_UPPOOL_IDLE);
	retired[n_retired++] = own_of(e)->tag;
	wp_uppool_free(cur, e);
}

static const struct wp_uppool_ops one_ops = {.retire = retire_cb};
static const struct wp_uppool_ops shared_ops = {.limit = lim_cb, .retire = retire_cb};

static void pool_init(struct wp_uppool *p, uint32_t n, const struct wp_uppool_ops *ops)
{
	memset(objs, 0, sizeof(objs));
	for (int i = 0; i < 8; i++)
		objs[i].tag = i;
	n_retired = 0;
	cur = p;
	wp_uppool_init(p, &objs[0].pe, sizeof(objs[0]), n, 1000, ops);
}

static struct wp_uppool_ent *open1(struct wp_uppool *p, const struct wp_snap_endpoint *ep,
                                   uint8_t kind, uint64_t now)
{
	bool ev;
	struct wp_uppool_ent *e = wp_uppool_open(p, ep, kind, now, NULL, &ev);

	assert_false(ev);
	return e;
}

static struct wp_snap_endpoint ep4(uint32_t host, uint16_t port, bool ambient)
{
	struct wp_snap_endpoint e = {.port = port, .ambient = ambient};

	e.addr.family = WP_AF_INET;
	e.addr.v4 = __builtin_bswap32(0x0a000000u | host);
	return e;
}

static void test_reuse_most_recent(void **state)
{
	(void)state;
	struct wp_uppool p;
	struct wp_snap_endpoint a = ep4(1, 80, false), b = ep4(2, 80, false);
	struct wp_uppool_ent *e1, *e2, *e3;

	pool_init(&p, 4, &one_ops);
	assert_null(wp_uppool_get(&p, &a, 0)); /* nothing yet: open one */
	e1 = open1(&p, &a, 0, 10);
	e2 = open1(&p, &a, 0, 10);
	e3 = open1(&p, &b, 0, 10);
	assert_non_null(e1);
	assert_non_null(e3);
	assert_int_equal(e1->state, WP_UPPOOL_BUSY);
	assert_false(e1->ready);
	assert_int_equal(p.n_busy, 3);
	/* one user at a time: a busy entry is never handed out again */
	assert_null(wp_uppool_get(&p, &a, 0));
	assert_true(wp_uppool_idle(&p, e1, 16, 20));
	assert_true(wp_uppool_idle(&p, e2, 16, 30));
	assert_true(wp_uppool_idle(&p, e3, 16, 40));
	assert_int_equal(p.n_idle, 3);
	assert_int_equal(p.n_busy, 0);
	assert_int_equal(e2->state, WP_UPPOOL_IDLE);
	/* the most recently idled one to that endpoint, then the other */
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e2);
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e1);
	assert_null(wp_uppool_get(&p, &a, 0));
	assert_int_equal(e1->state, WP_UPPOOL_BUSY);
	assert_int_equal(p.n_idle, 1);
	assert_int_equal(p.n_busy, 2);
	/* back to free: reused for the next open */
	wp_uppool_free(&p, e1);
	assert_int_equal(e1->state, WP_UPPOOL_FREE);
	assert_int_equal(p.n_busy, 1);
	assert_ptr_equal(open1(&p, &b, 0, 50), e1);
	assert_ptr_equal(own_of(e1), &objs[0]);
}

static void test_endpoint_matching(void **state)
{
	(void)state;
	struct wp_uppool p;
	struct wp_snap_endpoint a = ep4(1, 80, false), a_hbone = ep4(1, 80, true),
	                        a_port = ep4(1, 81, false), v6 = {.port = 80};
	struct wp_uppool_ent *e;

	v6.addr.family = WP_AF_INET6;
	memcpy(v6.addr.v6, &a.addr.v4, 4); /* same first bytes, other family */
	pool_init(&p, 4, &one_ops);
	e = open1(&p, &a, 0, 0);
	assert_true(wp_uppool_same_ep(e, &a));
	assert_false(wp_uppool_same_ep(e, &a_hbone));
	assert_false(wp_uppool_same_ep(e, &a_port));
	assert_false(wp_uppool_same_ep(e, &v6));
	assert_true(wp_uppool_idle(&p, e, 4, 0));
	assert_null(wp_uppool_get(&p, &a_hbone, 0));
	assert_null(wp_uppool_get(&p, &a_port, 0));
	assert_null(wp_uppool_get(&p, &v6, 0));
	assert_null(wp_uppool_get(&p, &a, 1)); /* another kind */
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e);
}

static void test_idle_limit_per_endpoint(void **state)
{
	(void)state;
	struct wp_uppool p;
	struct wp_snap_endpoint a = ep4(1, 80, false), b = ep4(2, 80, false);
	struct wp_uppool_ent *e[5];

	pool_init(&p, 5, &one_ops);
	for (int i = 0; i < 3; i++)
		e[i] = open1(&p, &a, 0, 0);
	e[3] = open1(&p, &b, 0, 0);
	e[4] = open1(&p, &a, 1, 0);
	assert_true(wp_uppool_idle(&p, e[0], 2, 0));
	assert_true(wp_uppool_idle(&p, e[1], 2, 0));
	/* a third one to <a> is over the limit: the caller closes it */
	assert_false(wp_uppool_idle(&p, e[2], 2, 0));
	assert_int_equal(e[2]->state, WP_UPPOOL_BUSY);
	/* other endpoints and kinds have their own count */
	assert_true(wp_uppool_idle(&p, e[3], 2, 0));
	assert_true(wp_uppool_idle(&p, e[4], 2, 0));
	assert_int_equal(p.n_idle, 4);
	/* a limit of 0 keeps nothing */
	wp_uppool_free(&p, e[2]);
	e[2] = open1(&p, &b, 0, 0);
	assert_false(wp_uppool_idle(&p, e[2], 0, 0));
}

static void test_lru_eviction(void **state)
{
	(void)state;
	struct wp_uppool p;
	struct wp_snap_endpoint a = ep4(1, 80, false), b = ep4(2, 80, false);
	struct wp_uppool_ent *e[3], *n;
	bool ev;

	pool_init(&p, 3, &one_ops);
	for (int i = 0; i < 3; i++)
		e[i] = open1(&p, i == 1 ? &b : &a, 0, 0); /* one is free: no eviction */
	/* all busy: nothing to evict */
	assert_null(wp_uppool_open(&p, &a, 0, 0, NULL, &ev));
	assert_false(ev);
	assert_int_equal(n_retired, 0);
	assert_true(wp_uppool_idle(&p, e[1], 4, 5));
	assert_true(wp_uppool_idle(&p, e[0], 4, 6));
	assert_true(wp_uppool_idle(&p, e[2], 4, 7));
	/* never the one the caller is inside of (the least recent here) */
	n = wp_uppool_open(&p, &a, 0, 8, e[1], &ev);
	assert_true(ev);
	assert_int_equal(n_retired, 1);
	assert_int_equal(retired[0], 0); /* e[0], the next least recent */
	assert_ptr_equal(n, e[0]);
	/* else the least recently idled one, whatever its endpoint */
	n = wp_uppool_open(&p, &a, 0, 9, NULL, &ev);
	assert_true(ev);
	assert_int_equal(n_retired, 2);
	assert_int_equal(retired[1], 1);
	assert_ptr_equal(n, e[1]);
	assert_int_equal(n->state, WP_UPPOOL_BUSY);
	assert_true(wp_uppool_same_ep(n, &a));
	assert_int_equal(p.n_idle, 1);
	assert_int_equal(p.n_busy, 2);
	/* only <skip> is idle: nothing to evict */
	assert_null(wp_uppool_open(&p, &a, 0, 9, e[2], &ev));
	assert_false(ev);
}

static void test_idle_timeout(void **state)
{
	(void)state;
	struct wp_uppool p;
	struct wp_snap_endpoint a = ep4(1, 80, false);
	struct wp_uppool_ent *e1, *e2;

	pool_init(&p, 4, &one_ops); /* 1000 ms */
	e1 = open1(&p, &a, 0, 0);
	e2 = open1(&p, &a, 0, 0);
	assert_true(wp_uppool_idle(&p, e1, 4, 100));
	assert_true(wp_uppool_idle(&p, e2, 4, 600));
	assert_int_equal(wp_uppool_expire(&p, 1099), 0);
	assert_int_equal(wp_uppool_expire(&p, 1100), 1);
	assert_int_equal(retired[0], 0);
	assert_int_equal(e1->state, WP_UPPOOL_FREE);
	assert_int_equal(wp_uppool_expire(&p, 1599), 0);
	/* reused before its time: stamped anew when idled again */
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e2);
	assert_true(wp_uppool_idle(&p, e2, 4, 1500));
	assert_int_equal(wp_uppool_expire(&p, 2000), 0);
	assert_int_equal(wp_uppool_expire(&p, 2500), 1);
	assert_int_equal(retired[1], 1);
	assert_int_equal(p.n_idle, 0);
}

/* An entry with its own idle timeout (DestinationRule idleTimeout) expires
 * on it, before older entries on the pool's. */
static void test_idle_timeout_per_entry(void **state)
{
	(void)state;
	struct wp_uppool p;
	struct wp_snap_endpoint a = ep4(1, 80, false);
	struct wp_uppool_ent *e1, *e2;

	pool_init(&p, 4, &one_ops); /* 1000 ms */
	e1 = open1(&p, &a, 0, 0);
	e2 = open1(&p, &a, 0, 0);
	assert_int_equal(e2->idle_ms, 0); /* the pool's unless the owner says */
	e2->idle_ms = 200;
	assert_true(wp_uppool_idle(&p, e1, 4, 100));
	assert_true(wp_uppool_idle(&p, e2, 4, 300));
	assert_int_equal(wp_uppool_expire(&p, 499), 0);
	assert_int_equal(wp_uppool_expire(&p, 500), 1);
	assert_int_equal(retired[0], 1);
	assert_int_equal(e1->state, WP_UPPOOL_IDLE);
	assert_int_equal(wp_uppool_expire(&p, 1100), 1);
	assert_int_equal(retired[1], 0);
}

static bool tag_odd(const struct wp_uppool_ent *e, void *arg)
{
	(void)arg;
	return own_of((struct wp_uppool_ent *)(uintptr_t)e)->tag % 2 == 1;
}

/* take_if hands out the most recently idled entry the predicate accepts;
 * retire_if closes the least recently idled one. */
static void test_take_retire_if(void **state)
{
	(void)state;
	struct wp_uppool p;
	struct wp_snap_endpoint a = ep4(1, 80, false), b = ep4(2, 80, false);
	struct wp_uppool_ent *e[4];

	pool_init(&p, 4, &one_ops);
	for (int i = 0; i < 4; i++)
		e[i] = open1(&p, i % 2 ? &b : &a, 0, 0);
	for (int i = 0; i < 4; i++)
		assert_true(wp_uppool_idle(&p, e[i], 4, (uint64_t)i));
	assert_ptr_equal(wp_uppool_take_if(&p, tag_odd, NULL), e[3]);
	assert_int_equal(e[3]->state, WP_UPPOOL_BUSY);
	assert_true(wp_uppool_retire_if(&p, tag_odd, NULL));
	assert_int_equal(retired[0], 1);
	assert_null(wp_uppool_take_if(&p, tag_odd, NULL));
	assert_false(wp_uppool_retire_if(&p, tag_odd, NULL));
	assert_int_equal(p.n_idle, 2);
	assert_int_equal(p.n_busy, 1);
}

static void test_drain(void **state)
{
	(void)state;
	struct wp_uppool p;
	struct wp_snap_endpoint a = ep4(1, 80, false);
	struct wp_uppool_ent *e1, *e2, *e3;

	pool_init(&p, 4, &one_ops);
	e1 = open1(&p, &a, 0, 0);
	e2 = open1(&p, &a, 0, 0);
	e3 = open1(&p, &a, 0, 0);
	assert_true(wp_uppool_idle(&p, e1, 4, 0));
	assert_true(wp_uppool_idle(&p, e2, 4, 0));
	wp_uppool_drain(&p);
	assert_int_equal(n_retired, 2);
	assert_int_equal(p.n_idle, 0);
	/* nothing is kept idle any more */
	assert_false(wp_uppool_idle(&p, e3, 4, 0));
	assert_int_equal(p.n_busy, 1);
}

static void test_shared_capacity(void **state)
{
	(void)state;
	struct wp_uppool p;
	struct wp_snap_endpoint a = ep4(1, 80, false);
	struct wp_uppool_ent *e1, *e2, *e3;

	pool_init(&p, 4, &shared_ops);
	e1 = open1(&p, &a, 0, 0);
	own_of(e1)->lim = 2;
	e1->active = 1;
	/* connecting, with room: shared */
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e1);
	e1->active = 2;
	assert_null(wp_uppool_get(&p, &a, 0)); /* full */
	e2 = open1(&p, &a, 0, 0);
	own_of(e2)->lim = 100;
	e2->active = 1;
	e1->active = 1;
	e1->ready = true;
	/* a connected one before a connecting one with room */
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e1);
	e2->ready = true;
	e2->active = 3;
	/* both connected: the fullest (fewer connections in use) */
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e2);
	/* GOAWAY: it takes no more streams */
	own_of(e2)->lim = 0;
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e1);
	own_of(e1)->lim = 0;
	assert_null(wp_uppool_get(&p, &a, 0));
	/* a connected idle one goes before a connecting shared one */
	e3 = open1(&p, &a, 0, 0);
	own_of(e3)->lim = 100;
	e3->ready = true;
	assert_true(wp_uppool_idle(&p, e3, 4, 0));
	own_of(e1)->lim = 2;
	e1->ready = false;
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e3);
	assert_int_equal(e3->state, WP_UPPOOL_BUSY);
	e3->active = 1;
	/* an idle one with no capacity (closed in the meantime) is passed over */
	e3->active = 0;
	assert_true(wp_uppool_idle(&p, e3, 4, 0));
	own_of(e3)->lim = 0;
	assert_ptr_equal(wp_uppool_get(&p, &a, 0), e1);
	assert_int_equal(e3->state, WP_UPPOOL_IDLE);
}

static void test_tried_pick(void **state)
{
	(void)state;
	struct wp_lb_endpoint le[3];
	struct wp_snap_endpoint se[3];
	struct wp_lb_params prm = {.policy = WP_LB_ROUND_ROBIN};
	struct wp_route_cluster cl = {.n_endpoints = 3, .endpoints = se};
	struct wp_lb_cache *lbc = wp_lb_cache_new(1, ctr);
	struct wp_uppool p;
	struct wp_uppool_tried t = {0};
	struct wp_uppool_ent *e;
	int hit[3] = {0};

	pool_init(&p, 4, &one_ops);
	for (uint32_t i = 0; i < 3; i++) {
		se[i] = ep4(i + 1, 8080, false);
		le[i] = (struct wp_lb_endpoint){.addr = se[i].addr, .port = 8080, .weight = 1};
	}
	cl.lb = wp_lb_table_build(&prm, le, 3);
	assert_non_null(cl.lb);
	assert_non_null(lbc);
	/* no avoid set: the balancer's own order */
	for (int k = 0; k < 6; k++)
		hit[wp_uppool_pick(&cl, lbc, 0, false, NULL)]++;
	assert_int_equal(hit[0], 2);
	assert_int_equal(hit[1], 2);
	assert_int_equal(hit[2], 2);
	/* two endpoints failed: every retry lands on the third */
	e = open1(&p, &se[0], 0, 0);
	wp_uppool_tried_add(&t, e);
	wp_uppool_free(&p, e);
	e = open1(&p, &se[1], 0, 0);
	wp_uppool_tried_add(&t, e);
	assert_int_equal(t.n, 2);
	for (int k = 0; k < 10; k++)
		assert_int_equal(wp_uppool_pick(&cl, lbc, 0, false, &t), 2);
	/* all failed: a pick anyway (the last of the re-picks) */
	wp_uppool_tried_add(&t, open1(&p, &se[2], 0, 0));
	assert_in_range(wp_uppool_pick(&cl, lbc, 0, false, &t), 0, 2);
	/* the set is bounded */
	for (int k = 0; k < 3; k++)
		wp_uppool_tried_add(&t, e);
	assert_int_equal(t.n, WP_UPPOOL_TRIED);
	/* an empty cluster: -1 */
	wp_lb_table_free(cl.lb);
	cl.lb = wp_lb_table_build(&prm, le, 0);
	cl.n_endpoints = 0;
	assert_int_equal(wp_uppool_pick(&cl, lbc, 0, false, &t), -1);
	wp_lb_table_free(cl.lb);
	wp_lb_cache_free(lbc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_reuse_most_recent),
	        cmocka_unit_test(test_endpoint_matching),
	        cmocka_unit_test(test_idle_limit_per_endpoint),
	        cmocka_unit_test(test_lru_eviction),
	        cmocka_unit_test(test_idle_timeout),
	        cmocka_unit_test(test_idle_timeout_per_entry),
	        cmocka_unit_test(test_take_retire_if),
	        cmocka_unit_test(test_drain),
	        cmocka_unit_test(test_shared_capacity),
	        cmocka_unit_test(test_tried_pick),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
