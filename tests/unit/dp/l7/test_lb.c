/*
 * Unit tests for lib/lb.c and lb_key.c: smooth weighted round robin exact
 * over a cycle, weighted random 80/20 within 3% over 10,000 picks, power of
 * two choices preferring the less loaded endpoint, ring hash and maglev
 * stickiness and disruption when one of ten endpoints leaves, and the
 * cookie / query / source-address keys; the per-core cache (lb_cache.c)
 * counting what is in flight for LEAST_REQUEST, each end counted once.
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

#include "lb_cache.h"
#include "wp/counters.h"
#include "wp/lb.h"

static uint64_t ctr[WP_CTR_MAX];

static struct wp_lb_endpoint ep(uint32_t host, uint16_t port, uint32_t weight)
{
	struct wp_lb_endpoint e = {.port = port, .weight = weight};
	e.addr.family = WP_AF_INET;
	e.addr.v4 = __builtin_bswap32(0x0a000000u | host);
	return e;
}

static struct wp_lb_table *build(enum wp_lb_policy pol, const struct wp_lb_endpoint *e, uint32_t n)
{
	struct wp_lb_params p = {.policy = pol};
	struct wp_lb_table *t = wp_lb_table_build(&p, e, n);
	assert_non_null(t);
	return t;
}

static void test_rr_smooth_exact(void **state)
{
	(void)state;
	struct wp_lb_endpoint e[] = {ep(1, 80, 5), ep(2, 80, 1), ep(3, 80, 1)};
	struct wp_lb_table *t = build(WP_LB_ROUND_ROBIN, e, 3);
	struct wp_lb_core c;
	assert_int_equal(t->rr_len, 7);
	/* nginx's smooth order: a a b a c a a */
	static const uint32_t want[] = {0, 0, 1, 0, 2, 0, 0};
	assert_memory_equal(t->rr_seq, want, sizeof(want));
	/* any window of one cycle, from any start, has the exact counts */
	for (uint64_t seed = 0; seed < 20; seed++) {
		wp_lb_core_init(&c, t, seed, NULL, ctr);
		int cnt[3] = {0};
		for (int k = 0; k < 7 * 3; k++)
			cnt[wp_lb_pick(t, &c, 0, false)]++;
		assert_int_equal(cnt[0], 15);
		assert_int_equal(cnt[1], 3);
		assert_int_equal(cnt[2], 3);
	}
	wp_lb_table_free(t);

	/* weights reduced by their gcd; 80/20 is exact over each cycle of 5 */
	struct wp_lb_endpoint f[] = {ep(1, 80, 80), ep(2, 80, 20)};
	t = build(WP_LB_ROUND_ROBIN, f, 2);
	assert_int_equal(t->rr_len, 5);
	wp_lb_core_init(&c, t, 3, NULL, ctr);
	int cnt[2] = {0};
	for (int k = 0; k < 10000; k++)
		cnt[wp_lb_pick(t, &c, 0, false)]++;
	assert_int_equal(cnt[0], 8000);
	assert_int_equal(cnt[1], 2000);
	wp_lb_table_free(t);

	/* a huge weight ratio is scaled into the cycle limit, nobody dropped */
	struct wp_lb_endpoint g[] = {ep(1, 80, 1000000), ep(2, 80, 1), ep(3, 80, 3)};
	struct wp_lb_params p = {.policy = WP_LB_ROUND_ROBIN, .rr_max_len = 1000};
	t = wp_lb_table_build(&p, g, 3);
	assert_non_null(t);
	assert_true(t->rr_len <= 1000);
	int seen[3] = {0};
	for (uint32_t k = 0; k < t->rr_len; k++)
		seen[t->rr_seq[k]]++;
	assert_true(seen[1] >= 1 && seen[2] >= 1 && seen[0] > 990);
	wp_lb_table_free(t);
}

static void test_random_80_20(void **state)
{
	(void)state;
	struct wp_lb_endpoint e[] = {ep(1, 80, 80), ep(2, 80, 20)};
	struct wp_lb_table *t = build(WP_LB_RANDOM, e, 2);
	for (uint64_t seed = 1; seed <= 5; seed++) {
		struct wp_lb_core c;
		wp_lb_core_init(&c, t, seed, NULL, ctr);
		int cnt[2] = {0};
		for (int k = 0; k < 10000; k++)
			cnt[wp_lb_pick(t, &c, 0, false)]++;
		assert_in_range(cnt[0], 7700, 8300);
		assert_int_equal(cnt[0] + cnt[1], 10000);
	}
	wp_lb_table_free(t);

	/* three-way 50/30/20 */
	struct wp_lb_endpoint f[] = {ep(1, 80, 5), ep(2, 80, 3), ep(3, 80, 2)};
	t = build(WP_LB_RANDOM, f, 3);
	struct wp_lb_core c;
	wp_lb_core_init(&c, t, 99, NULL, ctr);
	int cnt[3] = {0};
	for (int k = 0; k < 10000; k++)
		cnt[wp_lb_pick(t, &c, 0, false)]++;
	assert_in_range(cnt[0], 4700, 5300);
	assert_in_range(cnt[1], 2700, 3300);
	assert_in_range(cnt[2], 1700, 2300);
	wp_lb_table_free(t);
}

static void test_p2c_prefers_less_loaded(void **state)
{
	(void)state;
	struct wp_lb_endpoint e[10];
	for (uint32_t i = 0; i < 10; i++)
		e[i] = ep(i + 1, 8080, 1);
	struct wp_lb_table *t = build(WP_LB_LEAST_REQUEST, e, 10);
	uint32_t active[10] = {0};
	struct wp_lb_core c;
	wp_lb_core_init(&c, t, 7, active, ctr);

	/* idle: spread evenly */
	int cnt[10] = {0};
	for (int k = 0; k < 10000; k++)
		cnt[wp_lb_pick(t, &c, 0, false)]++;
	for (int i = 0; i < 10; i++)
		assert_in_range(cnt[i], 800, 1200);

	/* one endpoint busy: it is chosen only when both draws hit it */
	active[4] = 50;
	memset(cnt, 0, sizeof(cnt));
	for (int k = 0; k < 10000; k++)
		cnt[wp_lb_pick(t, &c, 0, false)]++;
	assert_true(cnt[4] < 30);

	/* requests that stay open spread the load: no endpoint runs far ahead */
	memset(active, 0, sizeof(active));
	for (int k = 0; k < 1000; k++)
		active[wp_lb_pick(t, &c, 0, false)]++;
	uint32_t mx = 0, mn = UINT32_MAX;
	for (int i = 0; i < 10; i++) {
		mx = WP_MAX(mx, active[i]);
		mn = WP_MIN(mn, active[i]);
	}
	assert_true(mx - mn <= 4);
	wp_lb_table_free(t);

	/* weights respected: 3:1 when idle */
	struct wp_lb_endpoint f[] = {ep(1, 80, 3), ep(2, 80, 1)};
	t = build(WP_LB_LEAST_REQUEST, f, 2);
	uint32_t act2[2] = {0};
	wp_lb_core_init(&c, t, 11, act2, ctr);
	int c2[2] = {0};
	for (int k = 0; k < 10000; k++)
		c2[wp_lb_pick(t, &c, 0, false)]++;
	assert_in_range(c2[0], 7000, 8000);
	/* and the heavier endpoint tolerates proportionally more load */
	act2[0] = 5;
	act2[1] = 5;
	memset(c2, 0, sizeof(c2));
	for (int k = 0; k < 1000; k++)
		c2[wp_lb_pick(t, &c, 0, false)]++;
	assert_true(c2[0] > 800);
	wp_lb_table_free(t);
}

static uint64_t key_hash(uint32_t k)
{
	char s[32];
	int n = snprintf(s, sizeof(s), "user-%u", k);
	return wp_lb_hash(s, (size_t)n);
}

#define NKEYS 100000

/* Removes endpoint <gone> of 10 and returns the fraction of keys whose
 * endpoint (by port identity) changed; *only_gone says whether every moved
 * key belonged to the removed endpoint. */
static double disruption(enum wp_lb_policy pol, uint32_t gone, bool *only_gone)
{
	struct wp_lb_endpoint all[10], rest[9];
	uint32_t k = 0;
	for (uint32_t i = 0; i < 10; i++) {
		all[i] = ep(i + 1, (uint16_t)(9000 + i), 1);
		if (i != gone)
			rest[k++] = all[i];
	}
	struct wp_lb_table *a = build(pol, all, 10), *b = build(pol, rest, 9);
	struct wp_lb_core c;
	wp_lb_core_init(&c, a, 1, NULL, ctr);
	uint32_t moved = 0;
	*only_gone = true;
	for (uint32_t i = 0; i < NKEYS; i++) {
		uint64_t h = key_hash(i);
		int x = wp_lb_pick(a, &c, h, true), y = wp_lb_pick(b, &c, h, true);
		assert_true(x >= 0 && y >= 0);
		if (a->eps[x].port != b->eps[y].port) {
			moved++;
			if ((uint32_t)x != gone)
				*only_gone = false;
		}
	}
	wp_lb_table_free(a);
	wp_lb_table_free(b);
	return (double)moved / NKEYS;
}

static void check_sticky_and_even(enum wp_lb_policy pol, uint32_t ring_min, int tol_pct)
{
	struct wp_lb_endpoint e[10];
	for (uint32_t i = 0; i < 10; i++)
		e[i] = ep(i + 1, (uint16_t)(9000 + i), 1);
	struct wp_lb_params p = {.policy = pol, .ring_min_size = ring_min};
	struct wp_lb_table *t = wp_lb_table_build(&p, e, 10);
	assert_non_null(t);
	struct wp_lb_core c1, c2;
	wp_lb_core_init(&c1, t, 1, NULL, ctr);
	wp_lb_core_init(&c2, t, 2, NULL, ctr);
	int cnt[10] = {0};
	for (uint32_t i = 0; i < NKEYS; i++) {
		uint64_t h = key_hash(i);
		int x = wp_lb_pick(t, &c1, h, true);
		/* same key, other core, again: same endpoint */
		assert_int_equal(wp_lb_pick(t, &c2, h, true), x);
		assert_int_equal(wp_lb_pick(t, &c1, h, true), x);
		cnt[x]++;
	}
	for (int i = 0; i < 10; i++)
		assert_in_range(cnt[i], NKEYS / 10 * (100 - tol_pct) / 100,
		                NKEYS / 10 * (100 + tol_pct) / 100);
	wp_lb_table_free(t);
}

static void test_ring_hash(void **state)
{
	(void)state;
	/* ~100 entries per endpoint by default: uneven; 1600 each: within 10% */
	check_sticky_and_even(WP_LB_RING_HASH, 0, 40);
	check_sticky_and_even(WP_LB_RING_HASH, 16384, 10);
	for (uint32_t gone = 0; gone < 10; gone += 3) {
		bool only_gone;
		double d = disruption(WP_LB_RING_HASH, gone, &only_gone);
		assert_true(only_gone); /* only the removed endpoint's keys move */
		assert_true(d > 0.05 && d < 0.15);
	}
	/* ring size follows the minimum and the weights */
	struct wp_lb_endpoint e[] = {ep(1, 80, 1), ep(2, 80, 3)};
	struct wp_lb_params p = {.policy = WP_LB_RING_HASH, .ring_min_size = 4096};
	struct wp_lb_table *t = wp_lb_table_build(&p, e, 2);
	assert_non_null(t);
	assert_true(t->ring_len >= 4096);
	uint32_t n0 = 0;
	for (uint32_t i = 0; i < t->ring_len; i++)
		n0 += t->ring[i].ep == 0;
	assert_in_range(n0 * 100 / t->ring_len, 24, 26);
	struct wp_lb_core c;
	wp_lb_core_init(&c, t, 1, NULL, ctr);
	int cnt[2] = {0};
	for (uint32_t i = 0; i < NKEYS; i++)
		cnt[wp_lb_pick(t, &c, key_hash(i), true)]++;
	assert_in_range(cnt[0], NKEYS * 20 / 100, NKEYS * 30 / 100);
	wp_lb_table_free(t);
}

static void test_maglev(void **state)
{
	(void)state;
	check_sticky_and_even(WP_LB_MAGLEV, 0, 5);
	for (uint32_t gone = 0; gone < 10; gone += 3) {
		bool only_gone;
		double d = disruption(WP_LB_MAGLEV, gone, &only_gone);
		/* about 1/10 of the keys, plus a little table churn */
		assert_true(d > 0.08 && d <= 0.10 + 0.02);
	}
	/* weighted: table slots in proportion */
	struct wp_lb_endpoint e[] = {ep(1, 80, 3), ep(2, 80, 1)};
	struct wp_lb_table *t = build(WP_LB_MAGLEV, e, 2);
	assert_int_equal(t->maglev_len, 65537);
	uint32_t n0 = 0;
	for (uint32_t i = 0; i < t->maglev_len; i++)
		n0 += t->maglev[i] == 0;
	assert_in_range((uint64_t)n0 * 1000 / t->maglev_len, 740, 760);
	wp_lb_table_free(t);

	/* table size must be a prime larger than the endpoint count */
	struct wp_lb_params p = {.policy = WP_LB_MAGLEV, .maglev_size = 65536};
	errno = 0;
	assert_null(wp_lb_table_build(&p, e, 2));
	assert_int_equal(errno, EINVAL);
	p.maglev_size = 2;
	assert_null(wp_lb_table_build(&p, e, 2));
	p.maglev_size = 251;
	t = wp_lb_table_build(&p, e, 2);
	assert_non_null(t);
	wp_lb_table_free(t);
}

static void test_empty_and_fallback(void **state)
{
	(void)state;
	memset(ctr, 0, sizeof(ctr));
	for (int pol = WP_LB_ROUND_ROBIN; pol <= WP_LB_MAGLEV; pol++) {
		struct wp_lb_table *t = build((enum wp_lb_policy)pol, NULL, 0);
		struct wp_lb_core c;
		wp_lb_core_init(&c, t, 1, NULL, ctr);
		assert_int_equal(wp_lb_pick(t, &c, 1, true), -ENOENT);
		wp_lb_table_free(t);
	}
	assert_int_equal(ctr[WP_CTR_L7_LB_NO_ENDPOINT], 5);

	/* no hash key: a weighted random pick, counted */
	struct wp_lb_endpoint e[] = {ep(1, 80, 1), ep(2, 80, 1)};
	struct wp_lb_table *t = build(WP_LB_MAGLEV, e, 2);
	struct wp_lb_core c;
	wp_lb_core_init(&c, t, 1, NULL, ctr);
	int cnt[2] = {0};
	for (int k = 0; k < 1000; k++)
		cnt[wp_lb_pick(t, &c, 0, false)]++;
	assert_true(cnt[0] > 400 && cnt[1] > 400);
	assert_int_equal(ctr[WP_CTR_L7_LB_HASH_KEY_MISSING], 1000);
	wp_lb_table_free(t);
}

static void test_keys(void **state)
{
	(void)state;
	const char *v;
	size_t n;
	static const char ck[] = "a=1; session=abc123 ;  quoted=\"q v\";flag; b=";
	assert_int_equal(wp_lb_key_cookie(ck, strlen(ck), "session", 7, &v, &n), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(v, "abc123", 6);
	assert_int_equal(wp_lb_key_cookie(ck, strlen(ck), "quoted", 6, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "q v", 3);
	assert_int_equal(wp_lb_key_cookie(ck, strlen(ck), "b", 1, &v, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(wp_lb_key_cookie(ck, strlen(ck), "a", 1, &v, &n), 0);
	assert_memory_equal(v, "1", 1);
	assert_int_equal(wp_lb_key_cookie(ck, strlen(ck), "sess", 4, &v, &n), -ENOENT);
	assert_int_equal(wp_lb_key_cookie(ck, strlen(ck), "flag", 4, &v, &n), -ENOENT);
	assert_int_equal(wp_lb_key_cookie("", 0, "a", 1, &v, &n), -ENOENT);

	static const char q[] = "/p/a?x=1&user=bob&empty=&bare&us=no#user=frag";
	assert_int_equal(wp_lb_key_query(q, strlen(q), "user", 4, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "bob", 3);
	assert_int_equal(wp_lb_key_query(q, strlen(q), "empty", 5, &v, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(wp_lb_key_query(q, strlen(q), "bare", 4, &v, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(wp_lb_key_query(q, strlen(q), "u", 1, &v, &n), -ENOENT);
	assert_int_equal(wp_lb_key_query("/p#a?user=x", 11, "user", 4, &v, &n), -ENOENT);
	assert_int_equal(wp_lb_key_query("/p", 2, "user", 4, &v, &n), -ENOENT);

	/* the same key hashes the same, different keys differ */
	assert_true(wp_lb_hash("abc", 3) == wp_lb_hash("abc", 3));
	assert_true(wp_lb_hash("abc", 3) != wp_lb_hash("abd", 3));
	struct wp_addr a = {.family = WP_AF_INET, .v4 = 0x0100000a};
	struct wp_addr b = a, c6 = {.family = WP_AF_INET6};
	b.v4 = 0x0200000a;
	c6.v6[15] = 1;
	assert_true(wp_lb_hash_addr(&a) == wp_lb_hash_addr(&a));
	assert_true(wp_lb_hash_addr(&a) != wp_lb_hash_addr(&b));
	assert_true(wp_lb_hash_addr(&a) != wp_lb_hash_addr(&c6));

	/* a source address sticks to one endpoint */
	struct wp_lb_endpoint e[] = {ep(1, 80, 1), ep(2, 80, 1), ep(3, 80, 1)};
	struct wp_lb_table *t = build(WP_LB_RING_HASH, e, 3);
	struct wp_lb_core cc;
	wp_lb_core_init(&cc, t, 5, NULL, ctr);
	int first = wp_lb_pick(t, &cc, wp_lb_hash_addr(&a), true);
	for (int i = 0; i < 100; i++)
		assert_int_equal(wp_lb_pick(t, &cc, wp_lb_hash_addr(&a), true), first);
	wp_lb_table_free(t);
}

/* What the L4 tunnels rely on (dp/tunnel/tunnel.c): begin counts an endpoint
 * in flight, end uncounts it exactly once however often it is called, and
 * LEAST_REQUEST picks through the cache avoid the loaded endpoints. */
static void test_cache_in_flight(void **state)
{
	struct wp_lb_endpoint e[3] = {ep(1, 80, 1), ep(2, 80, 1), ep(3, 80, 1)};
	struct wp_lb_table *t = build(WP_LB_LEAST_REQUEST, e, 3);
	struct wp_lb_cache *c = wp_lb_cache_new(7, ctr);
	struct wp_lb_active a[4], none = {0};
	struct wp_lb_core *lc;
	unsigned idle = 0;

	(void)state;
	assert_non_null(c);
	lc = wp_lb_cache_core(c, t);
	assert_non_null(lc->active);
	for (int k = 0; k < 4; k++)
		wp_lb_cache_begin(c, t, k / 2, &a[k]); /* two on 0, two on 1 */
	assert_int_equal(lc->active[0], 2);
	assert_int_equal(lc->active[1], 2);
	for (int k = 0; k < 300; k++)
		idle += wp_lb_pick(t, wp_lb_cache_core(c, t), 0, false) == 2;
	/* endpoint 2 is in the pair of draws with probability 17/27 */
	assert_true(idle > 150);
	wp_lb_cache_end(c, &a[0]);
	wp_lb_cache_end(c, &a[0]); /* a second end of the same request: nothing */
	wp_lb_cache_end(c, &none);
	assert_int_equal(lc->active[0], 1);
	assert_int_equal(lc->active[1], 2);
	for (int k = 1; k < 4; k++)
		wp_lb_cache_end(c, &a[k]);
	assert_int_equal(lc->active[0], 0);
	assert_int_equal(lc->active[1], 0);
	wp_lb_cache_free(c);
	wp_lb_table_free(t);
}

static void test_bad_params(void **state)
{
	(void)state;
	struct wp_lb_endpoint e[] = {ep(1, 80, 1)};
	struct wp_lb_params p = {.policy = (enum wp_lb_policy)9};
	assert_null(wp_lb_table_build(&p, e, 1));
	p = (struct wp_lb_params){
	        .policy = WP_LB_RING_HASH, .ring_min_size = 10, .ring_max_size = 5};
	assert_null(wp_lb_table_build(&p, e, 1));
	p = (struct wp_lb_params){.policy = WP_LB_RANDOM};
	assert_null(wp_lb_table_build(&p, NULL, 1));
	p = (struct wp_lb_params){.policy = WP_LB_ROUND_ROBIN, .rr_max_len = 1};
	assert_null(wp_lb_table_build(&p, e, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rr_smooth_exact),
	        cmocka_unit_test(test_random_80_20),
	        cmocka_unit_test(test_p2c_prefers_less_loaded),
	        cmocka_unit_test(test_ring_hash),
	        cmocka_unit_test(test_maglev),
	        cmocka_unit_test(test_empty_and_fallback),
	        cmocka_unit_test(test_keys),
	        cmocka_unit_test(test_cache_in_flight),
	        cmocka_unit_test(test_bad_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
