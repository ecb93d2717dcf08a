/*
 * The TLS 1.3 record layer (dp/tls/record.c) on its own, without a
 * handshake: two ends built from shared secrets. The handshake paths are
 * covered by test_tls.c; this file holds what the record layer must do
 * with no OpenSSL connection around it.
 */
#include <errno.h>
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

/* Feeds n bytes of ciphertext to s and reads all the plaintext out. */
static size_t drain(struct wp_tls_rec *s, const uint8_t *ct, size_t n, uint8_t *pt, size_t cap)
{
	size_t got = 0;
	ssize_t k;

	assert_int_equal(wp_tls_rec_feed(s, ct, n), (ssize_t)n);
	while ((k = wp_tls_rec_read(s, pt + got, cap - got)) > 0)
		got += (size_t)k;
	assert_int_equal(k, 0);
	return got;
}

/* Records sealed straight into a two-piece sink (wp_tls_rec_write_into,
 * the free space of TCP's send ring): a piece boundary anywhere in the
 * header, the ciphertext, the content type or the tag; the last record
 * cut to the room, not below a floor; nothing while sealed records wait
 * in the output or a KeyUpdate is due (the buffered path keeps the order
 * and sends it); interleaved with the buffered path, the peer reads one
 * stream. */
static void test_write_into(void **state)
{
	struct wp_tls_rec *c = rec(true), *s = rec(false);
	static uint8_t msg[40000], sink[1 << 17], pt[1 << 16];
	const uint64_t rekey = wp_tls_rec_rekey_after;
	struct iovec v[2];
	size_t used, n;

	(void)state;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 13 + 1);
	/* 40 bytes make a 62-byte record: every split point. */
	for (size_t k = 0; k <= 62; k++) {
		uint8_t a[62], b[62], joined[62];

		v[0] = (struct iovec){a, k};
		v[1] = (struct iovec){b, sizeof(b)};
		assert_int_equal(wp_tls_rec_write_into(c, msg, 40, v, 1024, &used), 40);
		assert_int_equal(used, 62);
		memcpy(joined, a, k);
		memcpy(joined + k, b, 62 - k);
		assert_int_equal(drain(s, joined, 62, pt, sizeof(pt)), 40);
		assert_memory_equal(pt, msg, 40);
	}

	/* Room for two whole 16 KiB records and 5,000 bytes: the third is
	 * cut to fill it. */
	v[0] = (struct iovec){sink, 20000};
	v[1] = (struct iovec){sink + 20000, 2 * (16384 + 22) - 20000 + 5000};
	assert_int_equal(wp_tls_rec_write_into(c, msg, sizeof(msg), v, 1024, &used), 32768 + 4978);
	assert_int_equal(used, 2 * (16384 + 22) + 5000);
	assert_int_equal(drain(s, sink, used, pt, sizeof(pt)), 32768 + 4978);
	assert_memory_equal(pt, msg, 32768 + 4978);
	/* Not cut below min_cut of plaintext (a shorter whole record is fine). */
	v[0] = (struct iovec){sink, 1024 + 21};
	v[1] = (struct iovec){sink + 1024 + 21, 0};
	assert_int_equal(wp_tls_rec_write_into(c, msg, 2000, v, 1024, &used), 0);
	assert_int_equal(used, 0);
	assert_int_equal(wp_tls_rec_write_into(c, msg, 1000, v, 1024, &used), 1000);
	assert_int_equal(drain(s, sink, used, pt, sizeof(pt)), 1000);
	v[0].iov_len = 1024 + 22;
	assert_int_equal(wp_tls_rec_write_into(c, msg, 2000, v, 1024, &used), 1024);
	assert_int_equal(used, 1024 + 22);
	assert_int_equal(drain(s, sink, used, pt, sizeof(pt)), 1024);
	assert_memory_equal(pt, msg, 1024);

	/* Behind the buffered output: nothing, until it was taken. */
	assert_int_equal(wp_tls_rec_write(c, "first", 5), 5);
	v[0] = (struct iovec){sink + 1000, sizeof(sink) - 1000};
	assert_int_equal(wp_tls_rec_write_into(c, "second", 6, v, 1024, &used), 0);
	n = wp_tls_rec_take(c, sink, 1000);
	assert_int_equal(wp_tls_rec_write_into(c, "second", 6, v, 1024, &used), 6);
	memmove(sink + n, sink + 1000, used);
	assert_int_equal(drain(s, sink, n + used, pt, sizeof(pt)), 11);
	assert_memory_equal(pt, "firstsecond", 11);

	/* A KeyUpdate due: the buffered write sends it first. */
	uint64_t updates = ctrs[WP_CTR_TLS_REC_KEY_UPDATE_RX];
	wp_tls_rec_rekey_after = c->wr.seq;
	assert_int_equal(wp_tls_rec_write_into(c, "third", 5, v, 1024, &used), 0);
	assert_int_equal(wp_tls_rec_write(c, "third", 5), 5);
	wp_tls_rec_rekey_after = rekey;
	n = wp_tls_rec_take(c, sink, 1000);
	v[0] = (struct iovec){sink + n, 3};
	v[1] = (struct iovec){sink + n + 3, 100};
	assert_int_equal(wp_tls_rec_write_into(c, "fourth", 6, v, 1024, &used), 6);
	assert_int_equal(drain(s, sink, n + used, pt, sizeof(pt)), 11);
	assert_memory_equal(pt, "thirdfourth", 11);
	assert_int_equal(ctrs[WP_CTR_TLS_REC_KEY_UPDATE_RX], updates + 1);

	assert_int_equal(wp_tls_rec_shutdown(c), 0);
	assert_int_equal(wp_tls_rec_write_into(c, "late", 4, v, 1024, &used), -EPIPE);
	wp_tls_rec_free(c);
	wp_tls_rec_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_read_without_buffers),
	        cmocka_unit_test(test_trim_reuses_buffers),
	        cmocka_unit_test(test_view),
	        cmocka_unit_test(test_write_into),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
