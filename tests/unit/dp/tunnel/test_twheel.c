/*
 * The session timer wheel (dp/tunnel/twheel.c) under the HBONE sessions'
 * deadlines: a node fires at the first tick at or after its deadline and
 * never before, a passed deadline fires at the next tick, re-arming moves
 * and disarming cancels (also while a slot is being expired), deadlines
 * more than a turn ahead wait for their turn, and a long stall fires
 * everything due, once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "twheel.h"

#define TICK 100

struct item {
	struct wp_twheel_node node;
	int fired;
	uint64_t fired_at;
};

static struct item *item_of(struct wp_twheel_node *n)
{
	return (struct item *)((char *)n - offsetof(struct item, node));
}

/* Pops everything due at now; returns how many fired. */
static int run(struct wp_twheel *w, uint64_t now)
{
	struct wp_twheel_node *n;
	int k = 0;

	while ((n = wp_twheel_pop(w, now)) != NULL) {
		struct item *it = item_of(n);

		assert_false(wp_twheel_armed(n));
		it->fired++;
		it->fired_at = now;
		k++;
	}
	return k;
}

static struct wp_twheel w;

static void test_not_early(void **state)
{
	struct item a = {0}, b = {0};

	(void)state;
	wp_twheel_init(&w, TICK, 1000);
	wp_twheel_arm(&w, &a.node, 1250); /* rounds up to the tick at 1300 */
	wp_twheel_arm(&w, &b.node, 1300);
	assert_true(wp_twheel_armed(&a.node));
	for (uint64_t t = 1000; t < 1300; t += 10)
		assert_int_equal(run(&w, t), 0);
	assert_int_equal(run(&w, 1300), 2);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 1);
	assert_int_equal(run(&w, 5000), 0); /* once */
}

static void test_past_deadline(void **state)
{
	struct item a = {0};

	(void)state;
	wp_twheel_init(&w, TICK, 10000);
	assert_int_equal(run(&w, 10050), 0);
	wp_twheel_arm(&w, &a.node, 500); /* long gone: the next tick */
	assert_int_equal(run(&w, 10099), 0);
	assert_int_equal(run(&w, 10100), 1);
}

static void test_rearm_disarm(void **state)
{
	struct item a = {0}, b = {0};

	(void)state;
	wp_twheel_init(&w, TICK, 0);
	wp_twheel_arm(&w, &a.node, 200);
	wp_twheel_arm(&w, &a.node, 900); /* moved later */
	wp_twheel_arm(&w, &b.node, 300);
	wp_twheel_disarm(&b.node);
	wp_twheel_disarm(&b.node); /* twice: nothing */
	assert_false(wp_twheel_armed(&b.node));
	assert_int_equal(run(&w, 800), 0);
	assert_int_equal(run(&w, 900), 1);
	assert_int_equal(a.fired_at, 900);
	assert_int_equal(b.fired, 0);
	wp_twheel_arm(&w, &a.node, 2000);
	wp_twheel_arm(&w, &a.node, 1000); /* moved earlier */
	assert_int_equal(run(&w, 1000), 1);
	assert_int_equal(run(&w, 2000), 0);
}

/* Deadlines a turn or more ahead share slots with nearer ones. */
static void test_turns(void **state)
{
	struct item near = {0}, far = {0}, farther = {0};
	uint64_t turn = (uint64_t)WP_TWHEEL_SLOTS * TICK;

	(void)state;
	wp_twheel_init(&w, TICK, 0);
	wp_twheel_arm(&w, &near.node, 500);
	wp_twheel_arm(&w, &far.node, 500 + turn);
	wp_twheel_arm(&w, &farther.node, 500 + 3 * turn);
	for (uint64_t t = 0; t <= 500 + 3 * turn; t += TICK) {
		run(&w, t);
		assert_int_equal(near.fired, t >= 500);
		assert_int_equal(far.fired, t >= 500 + turn);
		assert_int_equal(farther.fired, t >= 500 + 3 * turn);
	}
}

/* A stall of several turns: everything due fires at once, nothing else. */
static void test_stall(void **state)
{
	static struct item it[3000];
	uint64_t turn = (uint64_t)WP_TWHEEL_SLOTS * TICK;
	int k = 0;

	(void)state;
	memset(it, 0, sizeof(it));
	wp_twheel_init(&w, TICK, 0);
	for (int i = 0; i < 3000; i++)
		wp_twheel_arm(&w, &it[i].node, (uint64_t)i * 150);
	/* until 4 turns (409,600 ms): items 0..2730 */
	k = run(&w, 4 * turn);
	assert_int_equal(k, (int)(4 * turn / 150) + 1);
	for (int i = 0; i < 3000; i++)
		assert_int_equal(it[i].fired, (uint64_t)i * 150 <= 4 * turn);
	assert_int_equal(run(&w, 3000 * 150), 3000 - k);
}

/* Disarming (or re-arming) other nodes from inside the expiry, as a
 * session's end can end another: the due list stays consistent. */
static void test_disarm_while_due(void **state)
{
	struct item it[3] = {{{0}}};
	struct wp_twheel_node *n, *other[2];
	int k = 0;

	(void)state;
	wp_twheel_init(&w, TICK, 0);
	for (int i = 0; i < 3; i++)
		wp_twheel_arm(&w, &it[i].node, 100);
	n = wp_twheel_pop(&w, 100);
	assert_non_null(n);
	for (int i = 0; i < 3; i++)
		if (&it[i].node != n)
			other[k++] = &it[i].node;
	/* the other two are on the due list now */
	wp_twheel_disarm(other[0]);
	wp_twheel_arm(&w, other[1], 400);
	wp_twheel_arm(&w, n, 100); /* itself again: the next tick */
	assert_null(wp_twheel_pop(&w, 100));
	assert_ptr_equal(wp_twheel_pop(&w, 200), n);
	assert_null(wp_twheel_pop(&w, 300));
	assert_ptr_equal(wp_twheel_pop(&w, 400), other[1]);
	assert_int_equal(run(&w, 100000), 0);
	assert_false(wp_twheel_armed(other[0]));
}

static void test_idle_spread(void **state)
{
	static struct item idle[20000];
	struct item due = {0};
	int fired = 0;

	(void)state;
	memset(idle, 0, sizeof(idle));
	wp_twheel_init(&w, TICK, 0);
	for (int i = 0; i < 20000; i++)
		wp_twheel_arm(&w, &idle[i].node, 10000 + (uint64_t)(i % 50) * TICK);
	wp_twheel_arm(&w, &due.node, 5000);
	for (uint64_t t = 0; t < 10000; t += TICK)
		fired += run(&w, t);
	assert_int_equal(fired, 1);
	for (uint64_t t = 10000; t < 15000; t += TICK)
		assert_int_equal(run(&w, t), 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_not_early),    cmocka_unit_test(test_past_deadline),
	        cmocka_unit_test(test_rearm_disarm), cmocka_unit_test(test_turns),
	        cmocka_unit_test(test_stall),        cmocka_unit_test(test_disarm_while_due),
	        cmocka_unit_test(test_idle_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
