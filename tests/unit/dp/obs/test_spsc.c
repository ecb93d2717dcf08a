/*
 * The worker-to-thread rings (dp/obs/spsc.h): the byte ring of records of
 * any size the access log uses (what goes in comes out whole and in order,
 * across the end of the buffer; a full ring refuses at once; a record that
 * could never fit is refused; a producer and a consumer thread at full
 * speed), and the fixed-size ring the spans use (its bound).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "spsc.h"

/* Record <seq> of <len> bytes: its sequence number, then bytes from it. */
static void put(uint8_t *p, size_t len, uint32_t seq)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seq * 7 + i);
	if (len >= sizeof(seq))
		memcpy(p, &seq, sizeof(seq));
}

static bool is(const uint8_t *p, size_t len, uint32_t seq)
{
	uint32_t s;

	if (len >= sizeof(seq)) {
		memcpy(&s, p, sizeof(s));
		if (s != seq)
			return false;
	}
	for (size_t i = sizeof(seq); i < len; i++)
		if (p[i] != (uint8_t)(seq * 7 + i))
			return false;
	return true;
}

static size_t len_of(uint32_t seq)
{
	return (seq * 37u) % 101u; /* 0..100 bytes, no two neighbours alike */
}

static void test_var_order_and_wrap(void **state)
{
	struct wp_spsc_var *q = wp_spsc_var_create(200); /* 256 bytes */
	uint32_t in = 0, out = 0;
	unsigned pads = 0;
	size_t len = 0;
	void *p;

	(void)state;
	assert_non_null(q);
	assert_int_equal(q->size, 256);
	assert_null(wp_spsc_var_peek(q, &len));
	/* up to three records in flight (as many as fit), 3000 through 256
	 * bytes: the positions go round the buffer hundreds of times */
	while (out < 3000) {
		while (in < 3000 && in - out < 3) {
			uint64_t before = q->head;

			p = wp_spsc_var_reserve(q, len_of(in));
			if (!p) {
				assert_true(in > out); /* full: only with records in */
				break;
			}
			assert_int_equal((uintptr_t)p % 8, 0);
			put(p, len_of(in), in);
			wp_spsc_var_commit(q);
			/* a record that did not fit before the end starts
			 * the buffer again, behind a pad */
			pads += (uint8_t *)p - q->b == 8 && (before & 255) != 0;
			in++;
		}
		p = wp_spsc_var_peek(q, &len);
		assert_non_null(p);
		assert_int_equal(len, len_of(out));
		assert_true(is(p, len, out));
		wp_spsc_var_pop(q);
		out++;
	}
	assert_null(wp_spsc_var_peek(q, &len));
	assert_true(q->head > 100 * 256);
	assert_true(pads > 50);
	wp_spsc_var_destroy(q);
}

static void test_var_full(void **state)
{
	struct wp_spsc_var *q = wp_spsc_var_create(256);
	unsigned n = 0;
	size_t len = 0;
	void *p;

	(void)state;
	assert_non_null(q);
	/* 24-byte records take 32 bytes with their header: 8 fit */
	while ((p = wp_spsc_var_reserve(q, 24)) != NULL) {
		put(p, 24, n++);
		wp_spsc_var_commit(q);
	}
	assert_int_equal(n, 8);
	assert_null(wp_spsc_var_reserve(q, 0)); /* refused, not waited for */
	/* one taken: one more fits, at the start again */
	p = wp_spsc_var_peek(q, &len);
	assert_true(is(p, len, 0));
	wp_spsc_var_pop(q);
	p = wp_spsc_var_reserve(q, 24);
	assert_ptr_equal(p, q->b + 8);
	put(p, 24, n++);
	wp_spsc_var_commit(q);
	assert_null(wp_spsc_var_reserve(q, 1));
	for (uint32_t i = 1; i < n; i++) {
		p = wp_spsc_var_peek(q, &len);
		assert_non_null(p);
		assert_true(is(p, len, i));
		wp_spsc_var_pop(q);
	}
	assert_null(wp_spsc_var_peek(q, NULL));
	/* more than half the buffer: refused even when empty (beside a pad
	 * it might never fit) */
	assert_null(wp_spsc_var_reserve(q, 128));
	assert_non_null(wp_spsc_var_reserve(q, 120));
	wp_spsc_var_destroy(q);
}

/* ---- a producer and a consumer thread ---------------------------------------------------- */

#define RACE_N 200000u

struct race {
	struct wp_spsc_var *q;
	uint32_t dropped;
	uint32_t got, bad;
	bool done;
};

static void *consumer(void *arg)
{
	struct race *r = arg;
	int64_t last = -1;
	size_t len;
	void *p;

	for (;;) {
		/* read before the last look at the ring */
		bool done = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);

		while ((p = wp_spsc_var_peek(r->q, &len)) != NULL) {
			uint32_t seq;

			memcpy(&seq, p, sizeof(seq));
			if (len < sizeof(seq) || (int64_t)seq <= last || len != len_of(seq) + 4 ||
			    !is(p, len, seq))
				r->bad++;
			last = seq;
			r->got++;
			wp_spsc_var_pop(r->q);
		}
		if (done)
			return NULL;
	}
}

/* The producer never waits: what finds the ring full is dropped; the
 * consumer sees every other record whole and in order. */
static void test_var_race(void **state)
{
	struct race r = {.q = wp_spsc_var_create(4096)};
	pthread_t th;

	(void)state;
	assert_non_null(r.q);
	assert_int_equal(pthread_create(&th, NULL, consumer, &r), 0);
	for (uint32_t seq = 0; seq < RACE_N; seq++) {
		size_t len = len_of(seq) + 4;
		void *p = wp_spsc_var_reserve(r.q, len);

		if (!p) {
			r.dropped++;
			continue;
		}
		put(p, len, seq);
		wp_spsc_var_commit(r.q);
	}
	__atomic_store_n(&r.done, true, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	assert_int_equal(r.bad, 0);
	assert_int_equal(r.got + r.dropped, RACE_N);
	assert_true(r.got > 0);
	wp_spsc_var_destroy(r.q);
}

/* ---- fixed-size entries -------------------------------------------------------------------- */

static void test_fixed_bound(void **state)
{
	struct wp_spsc *q = wp_spsc_create(5, 24); /* 8 entries */
	uint32_t *e;

	(void)state;
	assert_non_null(q);
	for (uint32_t i = 0; i < 8; i++) {
		e = wp_spsc_reserve(q);
		assert_non_null(e);
		*e = i;
		wp_spsc_commit(q);
	}
	assert_null(wp_spsc_reserve(q));
	for (uint32_t i = 0; i < 20; i++) {
		e = wp_spsc_peek(q);
		assert_non_null(e);
		assert_int_equal(*e, i);
		wp_spsc_pop(q);
		e = wp_spsc_reserve(q);
		assert_non_null(e);
		*e = i + 8;
		wp_spsc_commit(q);
	}
	wp_spsc_destroy(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_var_order_and_wrap),
	        cmocka_unit_test(test_var_full),
	        cmocka_unit_test(test_var_race),
	        cmocka_unit_test(test_fixed_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
