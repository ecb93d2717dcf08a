/*
 * Unit tests for port-layer fault injection (dp/port/fault.c): pass-through
 * when off, drop/duplicate/reorder fractions near their configured values,
 * seeded replay, held packets released without loss, nothing leaked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "port_fault.h"

struct pool {
	int live;   /* packets alive (allocated and not freed) */
	int copies; /* duplicates made */
};

static void *copy_pkt(void *pkt, void *arg)
{
	struct pool *p = arg;
	uintptr_t *c = malloc(sizeof(*c));

	*c = *(uintptr_t *)pkt;
	p->live++;
	p->copies++;
	return c;
}

static void free_pkt(void *pkt, void *arg)
{
	struct pool *p = arg;

	free(pkt);
	p->live--;
}

static void *new_pkt(struct pool *p, uintptr_t id)
{
	uintptr_t *x = malloc(sizeof(*x));

	*x = id;
	p->live++;
	return x;
}

/* Runs n packets through f in bursts of 8 plus idle polls; returns ids seen in out order. */
static unsigned run(struct wp_fault *f, struct pool *p, unsigned n, uintptr_t *seen, uint64_t *ctr)
{
	struct wp_fault_ops ops = {copy_pkt, free_pkt, p};
	void *in[8], *out[17];
	unsigned k = 0, next = 0;

	while (next < n) {
		uint16_t b = 0, m;

		while (b < 8 && next < n)
			in[b++] = new_pkt(p, next++);
		m = wp_fault_filter(f, in, b, out, 17, &ops, ctr);
		for (uint16_t i = 0; i < m; i++) {
			seen[k++] = *(uintptr_t *)out[i];
			free_pkt(out[i], p);
		}
	}
	for (int i = 0; i < WP_FAULT_HOLD_POLLS; i++) {
		uint16_t m = wp_fault_filter(f, in, 0, out, 17, &ops, ctr);
		for (uint16_t j = 0; j < m; j++) {
			seen[k++] = *(uintptr_t *)out[j];
			free_pkt(out[j], p);
		}
	}
	return k;
}

static void test_off_is_passthrough(void **state)
{
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct pool p = {0};
	struct wp_fault f;
	uintptr_t seen[2000];
	unsigned k;

	(void)state;
	wp_fault_init(&f, 0, 0, 0, 42, 0, WP_CTR_FAULT_RX_DROP, WP_CTR_FAULT_RX_DUP,
	              WP_CTR_FAULT_RX_REORDER);
	k = run(&f, &p, 1000, seen, ctr);
	assert_int_equal(k, 1000);
	for (unsigned i = 0; i < k; i++)
		assert_int_equal(seen[i], i);
	assert_int_equal(p.live, 0);
}

static void test_drop_fraction(void **state)
{
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct pool p = {0};
	struct wp_fault f;
	static uintptr_t seen[20000];
	unsigned k;

	(void)state;
	wp_fault_init(&f, 0.1, 0, 0, 7, 1, WP_CTR_FAULT_RX_DROP, WP_CTR_FAULT_RX_DUP,
	              WP_CTR_FAULT_RX_REORDER);
	k = run(&f, &p, 20000, seen, ctr);
	assert_int_equal(k + ctr[WP_CTR_FAULT_RX_DROP], 20000);
	assert_in_range(ctr[WP_CTR_FAULT_RX_DROP], 1700, 2300);
	for (unsigned i = 1; i < k; i++)
		assert_true(seen[i] > seen[i - 1]); /* order kept */
	assert_int_equal(p.live, 0);
}

static void test_dup_and_reorder_lose_nothing(void **state)
{
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct pool p = {0};
	struct wp_fault f;
	static uintptr_t seen[40000];
	static unsigned count[10000];
	unsigned k, reordered = 0;

	(void)state;
	wp_fault_init(&f, 0, 0.05, 0.05, 9, 2, WP_CTR_FAULT_TX_DROP, WP_CTR_FAULT_TX_DUP,
	              WP_CTR_FAULT_TX_REORDER);
	k = run(&f, &p, 10000, seen, ctr);
	assert_int_equal(k, 10000 + ctr[WP_CTR_FAULT_TX_DUP]);
	assert_in_range(ctr[WP_CTR_FAULT_TX_DUP], 350, 650);
	assert_in_range(ctr[WP_CTR_FAULT_TX_REORDER], 300, 700);
	for (unsigned i = 0; i < k; i++)
		count[seen[i]]++;
	for (unsigned i = 0; i < 10000; i++)
		assert_in_range(count[i], 1, 2); /* every packet arrives, at most twice */
	for (unsigned i = 1; i < k; i++)
		if (seen[i] < seen[i - 1])
			reordered++;
	assert_true(reordered > 0);
	assert_int_equal(p.live, 0);
}

static void test_seed_replays(void **state)
{
	uint64_t c1[WP_CTR_MAX] = {0}, c2[WP_CTR_MAX] = {0};
	struct pool p = {0};
	struct wp_fault a, b;
	static uintptr_t s1[6000], s2[6000];
	unsigned k1, k2;

	(void)state;
	wp_fault_init(&a, 0.05, 0.05, 0.05, 1234, 3, WP_CTR_FAULT_RX_DROP, WP_CTR_FAULT_RX_DUP,
	              WP_CTR_FAULT_RX_REORDER);
	wp_fault_init(&b, 0.05, 0.05, 0.05, 1234, 3, WP_CTR_FAULT_RX_DROP, WP_CTR_FAULT_RX_DUP,
	              WP_CTR_FAULT_RX_REORDER);
	k1 = run(&a, &p, 5000, s1, c1);
	k2 = run(&b, &p, 5000, s2, c2);
	assert_int_equal(k1, k2);
	assert_memory_equal(s1, s2, k1 * sizeof(s1[0]));
	assert_int_equal(p.live, 0);
}

static void test_lone_held_packet_released(void **state)
{
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct pool p = {0};
	struct wp_fault_ops ops = {copy_pkt, free_pkt, &p};
	struct wp_fault f;
	void *in[1], *out[3];
	uint16_t m = 0;

	(void)state;
	wp_fault_init(&f, 0, 0, 1.0, 5, 0, WP_CTR_FAULT_RX_DROP, WP_CTR_FAULT_RX_DUP,
	              WP_CTR_FAULT_RX_REORDER);
	in[0] = new_pkt(&p, 77);
	assert_int_equal(wp_fault_filter(&f, in, 1, out, 3, &ops, ctr), 0); /* held */
	for (int i = 0; i < WP_FAULT_HOLD_POLLS && m == 0; i++)
		m = wp_fault_filter(&f, in, 0, out, 3, &ops, ctr);
	assert_int_equal(m, 1);
	assert_int_equal(*(uintptr_t *)out[0], 77);
	free_pkt(out[0], &p);
	/* a held packet at shutdown is freed, not leaked */
	in[0] = new_pkt(&p, 78);
	assert_int_equal(wp_fault_filter(&f, in, 1, out, 3, &ops, ctr), 0);
	wp_fault_flush(&f, &ops);
	assert_int_equal(p.live, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_off_is_passthrough),
	        cmocka_unit_test(test_drop_fraction),
	        cmocka_unit_test(test_dup_and_reorder_lose_nothing),
	        cmocka_unit_test(test_seed_replays),
	        cmocka_unit_test(test_lone_held_packet_released),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
