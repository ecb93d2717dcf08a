/*
 * The tunnel byte queue (dp/tunnel/bq.c): order and content across chunk
 * boundaries, partial pops, all-or-nothing pushes when the allocator's
 * budget refuses, and no memory held once empty.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "bq.h"
#include "mem.h"
#include "wp/common.h"

static uint8_t pat(size_t i)
{
	return (uint8_t)((i * 2654435761u) >> 13);
}

static size_t held(struct wp_h2mem *m)
{
	struct wp_h2mem_stats st;

	wp_h2mem_stats(m, &st);
	return st.live_bytes;
}

/* Pushes and pops in uneven pieces; every byte comes out in order. */
static void test_order(void **state)
{
	struct wp_h2mem *m = wp_h2mem_new(0, 0);
	struct wp_bq q;
	static uint8_t buf[200000];
	size_t in = 0, out = 0, base;

	(void)state;
	assert_non_null(m);
	base = held(m);
	wp_bq_init(&q);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = pat(i);
	while (out < sizeof(buf)) {
		size_t n = WP_MIN((size_t)(in % 7919 + 1), sizeof(buf) - in);

		if (in < sizeof(buf)) {
			assert_int_equal(wp_bq_push(&q, m, buf + in, n), 0);
			in += n;
		}
		assert_int_equal(wp_bq_len(&q), in - out);
		/* pop less than pushed, in pieces that straddle chunks */
		for (int k = 0; k < 2 && wp_bq_len(&q) > 0; k++) {
			const uint8_t *p;
			size_t avail = wp_bq_peek(&q, &p),
			       take = WP_MIN(avail, (size_t)(out % 3001 + 1));

			assert_true(avail > 0 && avail <= WP_BQ_CHUNK);
			for (size_t i = 0; i < take; i++)
				assert_int_equal(p[i], pat(out + i));
			wp_bq_pop(&q, m, take);
			out += take;
		}
		if (in == sizeof(buf) && wp_bq_len(&q) > 0) {
			const uint8_t *p;
			size_t avail = wp_bq_peek(&q, &p);

			for (size_t i = 0; i < avail; i++)
				assert_int_equal(p[i], pat(out + i));
			wp_bq_pop(&q, m, avail);
			out += avail;
		}
	}
	assert_int_equal(wp_bq_len(&q), 0);
	assert_int_equal(held(m), base); /* an empty queue holds nothing */
	wp_h2mem_destroy(m);
}

/* A push the budget cannot hold changes nothing; clear frees everything. */
static void test_budget(void **state)
{
	struct wp_h2mem *m = wp_h2mem_new(0, 256 * 1024);
	static uint8_t big[1 << 20];
	struct wp_bq q;
	const uint8_t *p;
	size_t base;

	(void)state;
	assert_non_null(m);
	base = held(m);
	wp_bq_init(&q);
	memset(big, 0xab, sizeof(big));
	assert_int_equal(wp_bq_push(&q, m, (const uint8_t *)"hello", 5), 0);
	assert_int_equal(wp_bq_push(&q, m, big, sizeof(big)), -ENOMEM);
	assert_int_equal(wp_bq_len(&q), 5);
	assert_int_equal(wp_bq_peek(&q, &p), 5);
	assert_memory_equal(p, "hello", 5);
	assert_int_equal(wp_bq_push(&q, m, big, 100000), 0);
	assert_int_equal(wp_bq_len(&q), 100005);
	wp_bq_clear(&q, m);
	assert_int_equal(wp_bq_len(&q), 0);
	assert_int_equal(wp_bq_peek(&q, &p), 0);
	assert_int_equal(held(m), base);
	wp_h2mem_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_order),
	        cmocka_unit_test(test_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
