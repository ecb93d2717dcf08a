/*
 * Trace context headers (dp/http/tracectx.c): traceparent versions and
 * strictness (lengths, case, all-zero ids, version ff, repeats), b3 single
 * and multi-header forms with their sampling values, which one wins, and
 * the headers written for the upstream request in each format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tracectx.h"

#define TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID  "00f067aa0ba902b7"
#define TID2 "463ac35c9f6413ad48485a3953bb6124"
#define SID2 "a2fb4a1d1a96d312"

/* Offers the NULL-terminated name/value pairs and finishes; returns the
 * number of malformed headers. */
static unsigned offer(struct wp_tracectx *t, const char *const *kv)
{
	wp_tc_init(t);
	for (; kv[0]; kv += 2)
		wp_tc_header(t, kv[0], strlen(kv[0]), kv[1], strlen(kv[1]));
	return wp_tc_finish(t);
}

static void hex_is(const uint8_t *b, size_t n, const char *want)
{
	char h[64];

	wp_tc_hex(b, n, h);
	h[2 * n] = '\0';
	assert_string_equal(h, want);
}

static void test_traceparent(void **state)
{
	struct wp_tracectx t;

	(void)state;
	assert_int_equal(offer(&t, (const char *[]){"traceparent", "00-" TID "-" SID "-01", NULL}),
	                 0);
	assert_true(t.has_ctx);
	assert_int_equal(t.sampled, 1);
	assert_int_equal(t.present, WP_TC_W3C);
	hex_is(t.trace_id, 16, TID);
	hex_is(t.span_id, 8, SID);
	/* header names are case-insensitive; flags other than bit 0 ignored */
	assert_int_equal(offer(&t, (const char *[]){"TraceParent", "00-" TID "-" SID "-02", NULL}),
	                 0);
	assert_true(t.has_ctx);
	assert_int_equal(t.sampled, 0);
	/* a later version: its first four fields, more after a '-' */
	assert_int_equal(
	        offer(&t, (const char *[]){"traceparent", "cc-" TID "-" SID "-01-what", NULL}), 0);
	assert_true(t.has_ctx);
	assert_int_equal(t.sampled, 1);
	assert_int_equal(offer(&t, (const char *[]){"traceparent", "01-" TID "-" SID "-01", NULL}),
	                 0);
	assert_true(t.has_ctx);
}

static void test_traceparent_invalid(void **state)
{
	static const char *const bad[] = {
	        "00-" TID "-" SID "-01-extra",                    /* version 00 is exactly 55 */
	        "ff-" TID "-" SID "-01",                          /* version ff */
	        "cc-" TID "-" SID "-01x",                         /* more without a '-' */
	        "00-00000000000000000000000000000000-" SID "-01", /* all-zero trace id */
	        "00-" TID "-0000000000000000-01",                 /* all-zero span id */
	        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01", /* upper case */
	        "00-" TID "-" SID "-0",                           /* short */
	        "00_" TID "-" SID "-01",                          /* separator */
	        "00-" TID "-" SID "-g1",                          /* flags not hex */
	        "0-" TID "-" SID "-01",                           /* version one digit */
	        "",
	};
	struct wp_tracectx t;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(offer(&t, (const char *[]){"traceparent", bad[i], NULL}), 1);
		assert_false(t.has_ctx);
		assert_int_equal(t.sampled, -1);
		assert_int_equal(t.present, WP_TC_W3C); /* still rewritten upstream */
	}
	/* twice: malformed, even when both are valid */
	assert_int_equal(offer(&t, (const char *[]){"traceparent", "00-" TID "-" SID "-01",
	                                            "traceparent", "00-" TID "-" SID "-01", NULL}),
	                 1);
	assert_false(t.has_ctx);
}

static void test_b3_single(void **state)
{
	struct wp_tracectx t;

	(void)state;
	assert_int_equal(offer(&t, (const char *[]){"b3", TID "-" SID "-1-" SID2, NULL}), 0);
	assert_true(t.has_ctx);
	assert_int_equal(t.sampled, 1);
	assert_false(t.b3_64);
	assert_int_equal(t.present, WP_TC_B3);
	hex_is(t.trace_id, 16, TID);
	hex_is(t.span_id, 8, SID);
	/* 64-bit trace id, debug, no sampling at all */
	assert_int_equal(offer(&t, (const char *[]){"b3", SID2 "-" SID "-d", NULL}), 0);
	assert_true(t.has_ctx);
	assert_true(t.b3_64);
	assert_int_equal(t.sampled, 1);
	hex_is(t.trace_id, 16, "0000000000000000" SID2);
	assert_int_equal(offer(&t, (const char *[]){"b3", TID "-" SID, NULL}), 0);
	assert_true(t.has_ctx);
	assert_int_equal(t.sampled, -1);
	assert_int_equal(offer(&t, (const char *[]){"b3", TID "-" SID "-0", NULL}), 0);
	assert_int_equal(t.sampled, 0);
	/* a decision alone */
	assert_int_equal(offer(&t, (const char *[]){"b3", "0", NULL}), 0);
	assert_false(t.has_ctx);
	assert_int_equal(t.sampled, 0);
	assert_int_equal(offer(&t, (const char *[]){"b3", "d", NULL}), 0);
	assert_int_equal(t.sampled, 1);
	/* malformed */
	static const char *const bad[] = {
	        TID "-" SID "-2",
	        TID "-" SID "-1-" SID "0",
	        TID "-" SID "0",
	        TID "0-" SID "-1",
	        "-" SID "-1",
	        TID "-" SID "-1-",
	        "2",
	        "00000000000000000000000000000000-" SID "-1",
	        TID "-" SID "-true",
	        TID "-" SID "-1-0000000000000000",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(offer(&t, (const char *[]){"b3", bad[i], NULL}), 1);
		assert_false(t.has_ctx);
		assert_int_equal(t.sampled, -1);
	}
}

static void test_b3_multi(void **state)
{
	struct wp_tracectx t;

	(void)state;
	assert_int_equal(
	        offer(&t, (const char *[]){"X-B3-TraceId", TID, "X-B3-SpanId", SID,
	                                   "X-B3-ParentSpanId", SID2, "X-B3-Sampled", "1", NULL}),
	        0);
	assert_true(t.has_ctx);
	assert_int_equal(t.sampled, 1);
	assert_int_equal(t.present, WP_TC_B3M);
	hex_is(t.span_id, 8, SID);
	assert_int_equal(offer(&t, (const char *[]){"x-b3-traceid", SID2, "x-b3-spanid", SID,
	                                            "x-b3-sampled", "false", NULL}),
	                 0);
	assert_true(t.b3_64);
	assert_int_equal(t.sampled, 0);
	assert_int_equal(offer(&t, (const char *[]){"x-b3-traceid", TID, "x-b3-spanid", SID,
	                                            "x-b3-sampled", "true", NULL}),
	                 0);
	assert_int_equal(t.sampled, 1);
	/* debug flag samples; no sampled header: no decision */
	assert_int_equal(offer(&t, (const char *[]){"x-b3-traceid", TID, "x-b3-spanid", SID,
	                                            "x-b3-flags", "1", NULL}),
	                 0);
	assert_int_equal(t.sampled, 1);
	assert_int_equal(offer(&t, (const char *[]){"x-b3-traceid", TID, "x-b3-spanid", SID, NULL}),
	                 0);
	assert_true(t.has_ctx);
	assert_int_equal(t.sampled, -1);
	/* a decision alone */
	assert_int_equal(offer(&t, (const char *[]){"x-b3-sampled", "0", NULL}), 0);
	assert_false(t.has_ctx);
	assert_int_equal(t.sampled, 0);
	/* a trace id without a span id, bad ids, a bad sampled value (ignored:
	 * the context stands) */
	assert_int_equal(offer(&t, (const char *[]){"x-b3-traceid", TID, NULL}), 1);
	assert_false(t.has_ctx);
	assert_int_equal(offer(&t, (const char *[]){"x-b3-traceid", TID, "x-b3-spanid", TID, NULL}),
	                 1);
	assert_false(t.has_ctx);
	assert_int_equal(offer(&t, (const char *[]){"x-b3-traceid", TID, "x-b3-spanid", SID,
	                                            "x-b3-sampled", "d", NULL}),
	                 1);
	assert_true(t.has_ctx);
	assert_int_equal(t.sampled, -1);
}

static void test_precedence(void **state)
{
	struct wp_tracectx t;

	(void)state;
	/* traceparent wins over B3; both formats are rewritten */
	assert_int_equal(offer(&t, (const char *[]){"x-b3-traceid", TID2, "x-b3-spanid", SID2,
	                                            "x-b3-sampled", "0", "traceparent",
	                                            "00-" TID "-" SID "-01", NULL}),
	                 0);
	hex_is(t.trace_id, 16, TID);
	assert_int_equal(t.sampled, 1);
	assert_int_equal(t.present, WP_TC_W3C | WP_TC_B3M);
	/* an invalid traceparent: b3 is read */
	assert_int_equal(
	        offer(&t, (const char *[]){"traceparent", "junk", "b3", TID2 "-" SID2 "-0", NULL}),
	        1);
	assert_true(t.has_ctx);
	hex_is(t.trace_id, 16, TID2);
	assert_int_equal(t.sampled, 0);
	/* other headers are not looked at */
	assert_int_equal(offer(&t, (const char *[]){"tracestate", "a=b", "x-b3", "1", "b33", "1",
	                                            "x-request-id", "r", NULL}),
	                 0);
	assert_int_equal(t.present, 0);
	assert_false(t.has_ctx);
}

/* The rendered headers as "name: value\n" lines. */
static const char *lines(const struct wp_http_hdr_mods *m)
{
	static char buf[1024];
	size_t n = 0;

	for (uint16_t i = 0; i < m->n_set; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%.*s: %.*s\n", m->set[i].name_len,
		                      m->set[i].name, (int)m->set[i].value_len, m->set[i].value);
	for (uint16_t i = 0; i < m->n_remove; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "-%.*s\n", m->remove[i].name_len,
		                      m->remove[i].name);
	buf[n] = '\0';
	return buf;
}

static void test_render(void **state)
{
	struct wp_tracectx t;
	struct wp_tc_out o;
	uint8_t span[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};

	(void)state;
	/* a child of the incoming context, every format that came */
	offer(&t, (const char *[]){"traceparent", "00-" TID "-" SID "-01", "b3", "1",
	                           "x-b3-sampled", "1", NULL});
	assert_string_equal(
	        lines(wp_tc_render(t.present, t.trace_id, span, t.span_id, t.b3_64, true, &o)),
	        "traceparent: 00-" TID "-1122334455667788-01\n"
	        "b3: " TID "-1122334455667788-1-" SID "\n"
	        "x-b3-traceid: " TID "\n"
	        "x-b3-spanid: 1122334455667788\n"
	        "x-b3-parentspanid: " SID "\n"
	        "x-b3-sampled: 1\n");
	/* a 64-bit B3 trace id stays 64-bit in B3 */
	offer(&t, (const char *[]){"b3", SID2 "-" SID "-1", NULL});
	assert_string_equal(
	        lines(wp_tc_render(t.present, t.trace_id, span, t.span_id, t.b3_64, true, &o)),
	        "b3: " SID2 "-1122334455667788-1-" SID "\n");
	/* a new trace, not sampled, in the default format: no parent */
	assert_string_equal(
	        lines(wp_tc_render(WP_TC_B3M, t.trace_id, span, NULL, false, false, &o)),
	        "x-b3-traceid: 0000000000000000" SID2 "\n"
	        "x-b3-spanid: 1122334455667788\n"
	        "x-b3-sampled: 0\n"
	        "-x-b3-parentspanid\n");
	assert_string_equal(
	        lines(wp_tc_render(WP_TC_W3C, t.trace_id, span, NULL, false, false, &o)),
	        "traceparent: 00-0000000000000000" SID2 "-1122334455667788-00\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_traceparent), cmocka_unit_test(test_traceparent_invalid),
	        cmocka_unit_test(test_b3_single),   cmocka_unit_test(test_b3_multi),
	        cmocka_unit_test(test_precedence),  cmocka_unit_test(test_render),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
