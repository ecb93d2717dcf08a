/*
 * Unit tests for dp/tls/mem.c, the allocator handed to OpenSSL: size
 * classes, reuse of freed blocks from the thread's cache, its bounds, and
 * the accounting of live bytes across alloc, realloc and free. The
 * functions are called directly (OpenSSL's hooks are not installed here;
 * test_tls runs every handshake through them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "mem_int.h"
#include "tls.h"

#define A(n)    wp_tls_mem_alloc((n), __FILE__, __LINE__)
#define F(p)    wp_tls_mem_free((p), __FILE__, __LINE__)
#define R(p, n) wp_tls_mem_realloc((p), (n), __FILE__, __LINE__)

static int setup(void **state)
{
	(void)state;
	wp_tls_mem_flush();
	return 0;
}

static void test_classes(void **state)
{
	(void)state;
	assert_int_equal(wp_tls_mem_class(0), 0);
	assert_int_equal(wp_tls_mem_class(1), 0);
	assert_int_equal(wp_tls_mem_class(16), 0);
	assert_int_equal(wp_tls_mem_class(17), 1);
	assert_int_equal(wp_tls_mem_class_size(wp_tls_mem_class(1024)), 1024);
	assert_int_equal(wp_tls_mem_class_size(wp_tls_mem_class(1025)), 2048);
	assert_int_equal(wp_tls_mem_class_size(wp_tls_mem_class(2048)), 2048);
	assert_int_equal(wp_tls_mem_class_size(wp_tls_mem_class(2049)), 4096);
	assert_int_equal(wp_tls_mem_class_size(wp_tls_mem_class(32768)), 32768);
	assert_int_equal(wp_tls_mem_class(32769), WP_TLS_MEM_NO_CLASS);
	for (size_t n = 1; n <= 32768; n++) {
		size_t sz = wp_tls_mem_class_size(wp_tls_mem_class(n));
		assert_true(sz >= n);
		assert_true(n <= 1024 ? sz - n < 16 : sz / 2 < n);
	}
}

/* A freed block comes back for the next request of its class. */
static void test_reuse(void **state)
{
	char *p, *q;

	(void)state;
	p = A(100);
	assert_non_null(p);
	memset(p, 0xab, 100);
	assert_int_equal(wp_tls_mem_cached(), 0);
	F(p);
	assert_int_equal(wp_tls_mem_cached(), 112);
	q = A(97); /* same 112-byte class */
	assert_ptr_equal(q, p);
	assert_int_equal(wp_tls_mem_cached(), 0);
	F(q);
	q = A(200); /* another class: not this block */
	assert_ptr_not_equal(q, p);
	assert_int_equal(wp_tls_mem_cached(), 112);
	F(q);
	wp_tls_mem_flush();
	assert_int_equal(wp_tls_mem_cached(), 0);
}

/* Live bytes follow what was asked for, whether the block is new or
 * cached, grown in place, moved or freed. */
static void test_accounting(void **state)
{
	int64_t base = wp_tls_mem_live();
	char *p, *q;

	(void)state;
	p = A(100);
	assert_int_equal(wp_tls_mem_live() - base, 100);
	for (int i = 0; i < 100; i++)
		p[i] = (char)i;
	q = R(p, 110); /* fits the 112-byte block */
	assert_ptr_equal(q, p);
	assert_int_equal(wp_tls_mem_live() - base, 110);
	q = R(p, 3000); /* moves to the 4 KiB class */
	assert_non_null(q);
	assert_ptr_not_equal(q, p);
	assert_int_equal(wp_tls_mem_live() - base, 3000);
	for (int i = 0; i < 100; i++)
		assert_int_equal(q[i], (char)i);
	assert_int_equal(wp_tls_mem_cached(), 112); /* the old block */
	p = R(q, 50000);                            /* beyond the classes: plain malloc */
	assert_non_null(p);
	assert_int_equal(wp_tls_mem_live() - base, 50000);
	for (int i = 0; i < 100; i++)
		assert_int_equal(p[i], (char)i);
	q = R(p, 60000);
	assert_non_null(q);
	assert_int_equal(wp_tls_mem_live() - base, 60000);
	assert_int_equal(wp_tls_mem_cached(), 112 + 4096);
	F(q); /* not cached */
	assert_int_equal(wp_tls_mem_cached(), 112 + 4096);
	assert_int_equal(wp_tls_mem_live() - base, 0);
	assert_null(R(A(10), 0)); /* realloc to 0 frees */
	assert_int_equal(wp_tls_mem_live() - base, 0);
	wp_tls_mem_flush();
}

/* A class keeps at most its share; the thread at most CACHE_MAX bytes. */
static void test_bounds(void **state)
{
	enum { N = WP_TLS_MEM_SMALL_KEEP + 40 };
	static void *p[64][N];

	(void)state;
	for (int i = 0; i < N; i++)
		p[0][i] = A(64);
	for (int i = 0; i < N; i++)
		F(p[0][i]);
	assert_int_equal(wp_tls_mem_cached(), WP_TLS_MEM_SMALL_KEEP * 64);
	wp_tls_mem_flush();
	for (int i = 0; i < 2 * (int)WP_TLS_MEM_BIG_KEEP; i++)
		p[0][i] = A(20000);
	for (int i = 0; i < 2 * (int)WP_TLS_MEM_BIG_KEEP; i++)
		F(p[0][i]);
	assert_int_equal(wp_tls_mem_cached(), WP_TLS_MEM_BIG_KEEP * 32768);
	wp_tls_mem_flush();
	/* 64 small classes full would be ~8 MiB: the total cap holds */
	for (int c = 0; c < 64; c++)
		for (int i = 0; i < N; i++)
			p[c][i] = A((size_t)(c + 1) * 16);
	for (int c = 0; c < 64; c++)
		for (int i = 0; i < N; i++)
			F(p[c][i]);
	assert_true(wp_tls_mem_cached() <= WP_TLS_MEM_CACHE_MAX);
	assert_true(wp_tls_mem_cached() > WP_TLS_MEM_CACHE_MAX - 1024);
	wp_tls_mem_flush();
	assert_int_equal(wp_tls_mem_cached(), 0);
}

static void *other_thread(void *arg)
{
	size_t *cached = arg;

	F(A(300));
	*cached = wp_tls_mem_cached();
	return NULL; /* the exit destructor gives the block back */
}

/* Each thread has its own cache; a block made on one thread and freed on
 * another goes to the freeing thread's. */
static void test_threads(void **state)
{
	pthread_t t;
	size_t cached = 0;
	void *p;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, other_thread, &cached), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(cached, 304);
	assert_int_equal(wp_tls_mem_cached(), 0);
	p = A(300);
	assert_int_equal(pthread_create(&t, NULL, other_thread, &cached), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	F(p);
	assert_int_equal(wp_tls_mem_cached(), 304);
	wp_tls_mem_flush();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup(test_classes, setup),
	        cmocka_unit_test_setup(test_reuse, setup),
	        cmocka_unit_test_setup(test_accounting, setup),
	        cmocka_unit_test_setup(test_bounds, setup),
	        cmocka_unit_test_setup(test_threads, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
