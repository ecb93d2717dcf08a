/*
 * The TLS 1.3 record layer (dp/tls/record.c) on its own, without a
 * handshake: two ends built from shared secrets. The handshake paths are
 * covered by test_tls.c; this file holds what the record layer must do
 * with no OpenSSL connection around it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "record_int.h"
#include "wp/counters.h"

static uint64_t ctrs[WP_CTR_MAX];
static const uint8_t csecret[32] = {1, 2, 3}, ssecret[32] = {4, 5, 6};

static struct wp_tls_rec *rec(bool client)
{
	struct wp_tls_rec_params p = {.suite = 0x1301,
	                              .client = client,
	                              .wsecret = client ? csecret : ssecret,
	                              .rsecret = client ? ssecret : csecret,
	                              .secret_len = 32,
	                              .cap = 1 << 16,
	                              .ctrs = ctrs};
	struct wp_tls_rec *r = wp_tls_rec_new(&p);

	assert_non_null(r);
	return r;
}

/* A read before any input, and after a trim freed the buffers, finds
 * nothing to do (found by fuzz_tls_record: the record header pointer was
 * formed from the NULL input buffer, undefined behaviour UBSan reports). */
static void test_read_without_buffers(void **state)
{
	struct wp_tls_rec *c = rec(true), *s = rec(false);
	uint8_t buf[64];
	size_t n;

	(void)state;
	assert_int_equal(wp_tls_rec_read(s, buf, sizeof(buf)), 0);
	assert_int_equal(wp_tls_rec_write(c, "ping", 4), 4);
	n = wp_tls_rec_take(c, buf, sizeof(buf));
	assert_true(n > 4);
	assert_int_equal(wp_tls_rec_feed(s, buf, n), (ssize_t)n);
	assert_int_equal(wp_tls_rec_read(s, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	wp_tls_rec_trim(s);
	assert_int_equal(wp_tls_rec_read(s, buf, sizeof(buf)), 0);
	wp_tls_rec_free(c);
	wp_tls_rec_free(s);
}

/* One record c -> s, read by s. */
static void exchange(struct wp_tls_rec *c, struct wp_tls_rec *s)
{
	uint8_t buf[128];
	size_t n;

	assert_int_equal(wp_tls_rec_write(c, "ping", 4), 4);
	n = wp_tls_rec_take(c, buf, sizeof(buf));
	assert_int_equal(wp_tls_rec_feed(s, buf, n), (ssize_t)n);
	assert_int_equal(wp_tls_rec_read(s, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
}

/* Idle connections give their page-sized buffers back to the thread's
 * cache when trimmed, and the next keepalive exchange takes them from it
 * instead of allocating (the malloc churn 100,000 idle HBONE connections
 * showed); the cache stays bounded, the rest is freed. */
static void test_trim_reuses_buffers(void **state)
{
	enum { N = 300 };
	static struct wp_tls_rec *c[N], *s[N];
	unsigned k;

	(void)state;
	for (int i = 0; i < N; i++) {
		c[i] = rec(true);
		s[i] = rec(false);
		exchange(c[i], s[i]);
	}
	for (int i = 0; i < N; i++) {
		wp_tls_rec_trim(c[i]); /* its output */
		wp_tls_rec_trim(s[i]); /* its input */
	}
	assert_int_equal(wp_tls_rec_cached(), 256);
	k = wp_tls_rec_cached();
	exchange(c[0], s[0]);
	assert_int_equal(wp_tls_rec_cached(), k - 2);
	wp_tls_rec_trim(c[0]);
	wp_tls_rec_trim(s[0]);
	assert_int_equal(wp_tls_rec_cached(), k);
	for (int i = 0; i < N; i++) {
		wp_tls_rec_free(c[i]);
		wp_tls_rec_free(s[i]);
	}
}

/* The plaintext in place (wp_tls_rec_view / _consume): record by record,
 * partly consumed and offered again, mixed with copying reads, and not
 * moved by a feed while the view is out (that feed waits in TCP). */
static void test_view(void **state)
{
	struct wp_tls_rec *c = rec(true), *s = rec(false);
	static uint8_t wire[1 << 17], big[1 << 16];
	const uint8_t *v, *v2;
	uint8_t buf[64];
	ssize_t k;
	size_t n;

	(void)state;
	assert_int_equal(wp_tls_rec_view(s, &v), 0);
	assert_int_equal(wp_tls_rec_write(c, "first", 5), 5);
	assert_int_equal(wp_tls_rec_write(c, "second", 6), 6);
	n = wp_tls_rec_take(c, wire, sizeof(wire));
	assert_int_equal(wp_tls_rec_feed(s, wire, n), (ssize_t)n);
	assert_int_equal(wp_tls_rec_view(s, &v), 5);
	assert_memory_equal(v, "first", 5);
	wp_tls_rec_consume(s, 2); /* "fi" used */
	assert_int_equal(wp_tls_rec_view(s, &v), 3);
	assert_memory_equal(v, "rst", 3);
	wp_tls_rec_consume(s, 3);
	assert_int_equal(wp_tls_rec_read(s, buf, 3), 3); /* a copy, from the next record */
	assert_memory_equal(buf, "sec", 3);
	assert_int_equal(wp_tls_rec_view(s, &v), 3);
	assert_memory_equal(v, "ond", 3);
	wp_tls_rec_consume(s, 3);
	assert_int_equal(wp_tls_rec_view(s, &v), 0);

	/* A record in the view, then more ciphertext than the input holds
	 * without moving: refused until the view is consumed. */
	memset(big, 'x', sizeof(big));
	assert_int_equal(wp_tls_rec_write(c, "held", 4), 4);
	n = wp_tls_rec_take(c, wire, sizeof(wire));
	assert_int_equal(wp_tls_rec_feed(s, wire, n), (ssize_t)n);
	assert_int_equal(wp_tls_rec_view(s, &v), 4);
	assert_true(wp_tls_rec_write(c, big, 40000) > 0);
	n = wp_tls_rec_take(c, wire, sizeof(wire));
	assert_true(n > 40000);
	assert_int_equal(wp_tls_rec_feed(s, wire, n), 0);
	assert_memory_equal(v, "held", 4);
	assert_int_equal(wp_tls_rec_view(s, &v2), 4);
	assert_ptr_equal(v2, v);
	wp_tls_rec_consume(s, 4);
	assert_int_equal(wp_tls_rec_feed(s, wire, n), (ssize_t)n);
	n = 0;
	while ((k = wp_tls_rec_view(s, &v)) > 0) {
		for (ssize_t i = 0; i < k; i++)
			assert_int_equal(v[i], 'x');
		n += (size_t)k;
		wp_tls_rec_consume(s, (size_t)k);
	}
	assert_true(n >= 40000);
	wp_tls_rec_free(c);
	wp_tls_rec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_read_without_buffers),
	        cmocka_unit_test(test_trim_reuses_buffers),
	        cmocka_unit_test(test_view),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
