/*
 * The handshake gate (dp/tunnel/hsgate.c), the rule behind
 * hbone.max_handshakes: admits up to the cap, refuses and counts past it
 * without changing what it holds, reopens one place per leave, and its
 * high-water mark never passes the cap. The handshake share, the rule
 * behind hbone.handshake_share, over a simulated worker loop: handshakes
 * get their share of the time while other work waits, all of it alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "hsgate.h"
#include "wp/counters.h"

static uint64_t ctr[WP_CTR_MAX];

static void test_cap(void **state)
{
	struct wp_hsgate g;

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	wp_hsgate_init(&g, 50);
	for (int i = 0; i < 50; i++)
		assert_true(wp_hsgate_enter(&g, ctr));
	assert_int_equal(wp_hsgate_busy(&g), 50);
	assert_int_equal(ctr[WP_CTR_TUNNEL_HANDSHAKE_LIMIT], 0);
	/* 150 more: every one refused and counted, nothing held for them */
	for (int i = 0; i < 150; i++)
		assert_false(wp_hsgate_enter(&g, ctr));
	assert_int_equal(ctr[WP_CTR_TUNNEL_HANDSHAKE_LIMIT], 150);
	assert_int_equal(wp_hsgate_busy(&g), 50);
	assert_int_equal(wp_hsgate_peak(&g), 50);
	/* one handshake ends: exactly one place reopens */
	wp_hsgate_leave(&g);
	assert_true(wp_hsgate_enter(&g, ctr));
	assert_false(wp_hsgate_enter(&g, ctr));
	assert_int_equal(ctr[WP_CTR_TUNNEL_HANDSHAKE_LIMIT], 151);
	/* all end (timed out or closed): the gate is open again, the peak stays */
	for (int i = 0; i < 50; i++)
		wp_hsgate_leave(&g);
	assert_int_equal(wp_hsgate_busy(&g), 0);
	assert_int_equal(wp_hsgate_peak(&g), 50);
	assert_true(wp_hsgate_enter(&g, ctr));
	assert_int_equal(wp_hsgate_busy(&g), 1);
	/* only the gate's own counter moved */
	for (int c = 0; c < WP_CTR_MAX; c++)
		if (c != WP_CTR_TUNNEL_HANDSHAKE_LIMIT)
			assert_int_equal(ctr[c], 0);
}

static void test_peak(void **state)
{
	struct wp_hsgate g;

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	wp_hsgate_init(&g, 8);
	/* in and out in waves: the peak is the highest level, not a sum */
	for (int wave = 1; wave <= 3; wave++) {
		for (int i = 0; i < wave; i++)
			assert_true(wp_hsgate_enter(&g, ctr));
		for (int i = 0; i < wave; i++)
			wp_hsgate_leave(&g);
	}
	assert_int_equal(wp_hsgate_peak(&g), 3);
	assert_int_equal(wp_hsgate_busy(&g), 0);
	assert_int_equal(ctr[WP_CTR_TUNNEL_HANDSHAKE_LIMIT], 0);
}

static void test_cap_one(void **state)
{
	struct wp_hsgate g;

	(void)state;
	memset(ctr, 0, sizeof(ctr));
	wp_hsgate_init(&g, 1); /* the smallest hbone.max_handshakes */
	assert_true(wp_hsgate_enter(&g, ctr));
	assert_false(wp_hsgate_enter(&g, ctr));
	wp_hsgate_leave(&g);
	assert_true(wp_hsgate_enter(&g, ctr));
	assert_int_equal(wp_hsgate_peak(&g), 1);
	assert_int_equal(ctr[WP_CTR_TUNNEL_HANDSHAKE_LIMIT], 1);
}

/*
 * A worker loop on a simulated clock: each iteration is marked, takes the
 * handshake steps the share allows (each step_us long), then other_us of
 * other work. Returns the part of the time that went to handshakes.
 */
static double simulate(uint32_t share, uint64_t step_us, uint64_t other_us, unsigned iters,
                       unsigned *max_steps_per_iter)
{
	struct wp_hsshare s;
	uint64_t start = 5000, now = start, hs = 0;

	wp_hsshare_init(&s, share, now);
	*max_steps_per_iter = 0;
	for (unsigned i = 0; i < iters; i++) {
		unsigned steps = 0;

		wp_hsshare_iteration(&s, now);
		while (wp_hsshare_may_step(&s) && steps < 1000) {
			wp_hsshare_charge(&s, step_us);
			now += step_us;
			hs += step_us;
			steps++;
		}
		if (steps > *max_steps_per_iter)
			*max_steps_per_iter = steps;
		now += other_us;
	}
	return (double)hs / (double)(now - start);
}

static void test_share(void **state)
{
	unsigned most;
	double f;

	(void)state;
	/* 300 us steps against a tunnel's 60 us per iteration */
	f = simulate(50, 300, 60, 20000, &most);
	assert_true(f > 0.45 && f < 0.55);
	assert_int_equal(most, 1);
	f = simulate(25, 300, 60, 20000, &most);
	assert_true(f > 0.21 && f < 0.29);
	f = simulate(80, 300, 60, 20000, &most);
	assert_true(f > 0.75 && f < 0.85);
	/* 100: no bound, every step asked for is taken at once */
	f = simulate(100, 300, 60, 200, &most);
	assert_true(f > 0.99);
	assert_int_equal(most, 1000);
	/* a step shorter than a slice: several in one iteration, still half */
	f = simulate(50, 30, 60, 20000, &most);
	assert_true(f > 0.45 && f < 0.55);
	assert_true(most >= 2);
	/* nothing else to do (an empty iteration costs ~2 us): all the core */
	f = simulate(10, 300, 2, 20000, &most);
	assert_true(f > 0.99);
}

static void test_share_bounds(void **state)
{
	struct wp_hsshare s;

	(void)state;
	wp_hsshare_init(&s, 0, 100); /* below the range: the smallest share */
	assert_int_equal(s.share, 1);
	wp_hsshare_init(&s, 500, 100);
	assert_int_equal(s.share, 100);
	wp_hsshare_init(&s, 50, 100);
	assert_true(wp_hsshare_may_step(&s));
	wp_hsshare_charge(&s, 1000); /* a step from 100 to 1100 */
	assert_false(wp_hsshare_may_step(&s));
	wp_hsshare_iteration(&s, 1100 + 400); /* 400 us of other work pay 400 */
	assert_int_equal(s.debt_us, 600);
	wp_hsshare_iteration(&s, 1500 + 450);
	assert_int_equal(s.debt_us, 150);
	assert_false(wp_hsshare_may_step(&s)); /* still a slice or more */
	wp_hsshare_iteration(&s, 1950 + 60);
	assert_int_equal(s.debt_us, 90);
	assert_true(wp_hsshare_may_step(&s));
	/* a clock that moved back: no wrap, taken as an iteration with nothing else */
	wp_hsshare_charge(&s, 500);
	wp_hsshare_iteration(&s, 10);
	assert_int_equal(s.debt_us, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cap),          cmocka_unit_test(test_peak),
	        cmocka_unit_test(test_cap_one),      cmocka_unit_test(test_share),
	        cmocka_unit_test(test_share_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
