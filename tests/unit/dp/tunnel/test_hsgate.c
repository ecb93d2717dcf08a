/*
 * The handshake gate (dp/tunnel/hsgate.c), the rule behind
 * hbone.max_handshakes: admits up to the cap, refuses and counts past it
 * without changing what it holds, reopens one place per leave, and its
 * high-water mark never passes the cap.
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_cap),
	        cmocka_unit_test(test_peak),
	        cmocka_unit_test(test_cap_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
