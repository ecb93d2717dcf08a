/*
 * The request pipeline's tracing (dp/l7/pipeline_trace.c): the sampling
 * decision (an incoming flag wins, then the Telemetry resource's
 * percentage, then the configuration's; the random rate holds), the trace
 * context the upstream request gets, Telemetry turning tracing off, the
 * span the completion stage hands to the ring (ids, times, fields), and a
 * full ring counted.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http1.h"
#include "pipeline.h"
#include "wp/config.h"
#include "wp/counters.h"
#include "wp/snapshot_types.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID "00f067aa0ba902b7"

static uint64_t ctr[WP_CTR_MAX];
static struct wp_metrics_core *cells;
static struct wp_pipe_core core;
static struct wp_span_ring *ring;

static const struct wp_snap_service details = {
        .ns = "default", .name = "details", .hostname = "details.default.svc.cluster.local"};

static int setup(void **state)
{
	(void)state;
	memset(ctr, 0, sizeof(ctr));
	cells = wp_metrics_core_create(64, ctr);
	ring = wp_span_ring_create(4);
	assert_non_null(cells);
	assert_non_null(ring);
	wp_pipe_core_init(&core, ctr);
	wp_pipe_core_set_metrics(&core, cells, "cluster.local", "cluster.local", "Kubernetes");
	wp_pipe_core_set_trace(&core, ring, 1000000, WP_TRACE_OTLP, 42);
	core.wall_off_us = 1700000000000000ll;
	wp_pipe_core_clock(&core, 1000000, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	wp_pipe_core_fini(&core);
	wp_metrics_core_destroy(cells);
	wp_span_ring_destroy(ring);
	return 0;
}

static void conn_init(struct wp_pipe_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->core = &core;
	c->tel.sampling_ppm = -1; /* no Telemetry resource */
	c->remote.family = WP_AF_INET;
	c->remote.v4 = htonl(0x0af40009);
	c->dst_port = 9080;
	wp_pipe_conn_labels(c, NULL, 0, &details, NULL);
}

/* A request with the NULL-terminated name/value pairs as its head. */
static void begin(const struct wp_pipe_conn *c, struct wp_pipe_rec *r, const char *const *kv)
{
	struct wp_http_hdr h[8];
	struct wp_http1_msg m = {.hdrs = h};

	memset(h, 0, sizeof(h));
	for (; kv && kv[0]; kv += 2, m.n_hdrs++) {
		h[m.n_hdrs].name = kv[0];
		h[m.n_hdrs].name_len = (uint16_t)strlen(kv[0]);
		h[m.n_hdrs].value = kv[1];
		h[m.n_hdrs].value_len = (uint32_t)strlen(kv[1]);
	}
	wp_pipe_rec_begin(c, r, false);
	wp_pipe_trace_http1(c, r, &m);
}

/* The upstream trace headers as "name: value\n" lines ("" for none). */
static const char *up(const struct wp_pipe_rec *r)
{
	static char buf[512];
	struct wp_tc_out o;
	const struct wp_http_hdr_mods *m = wp_pipe_trace_headers(r, &o);
	size_t n = 0;

	buf[0] = '\0';
	for (uint16_t i = 0; m && i < m->n_set; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%.*s: %.*s\n", m->set[i].name_len,
		                      m->set[i].name, (int)m->set[i].value_len, m->set[i].value);
	return buf;
}

static const char *hex(const uint8_t *b, size_t n)
{
	static char h[2][64];
	static int turn;
	char *p = h[turn++ & 1];

	wp_tc_hex(b, n, p);
	p[2 * n] = '\0';
	return p;
}

static void test_sampled_flag_wins(void **state)
{
	struct wp_pipe_conn c;
	struct wp_pipe_rec r;
	char want[256];

	(void)state;
	conn_init(&c);
	wp_pipe_core_set_trace(&core, ring, 0, WP_TRACE_OTLP, 42); /* sampling 0% */
	begin(&c, &r, (const char *[]){"traceparent", "00-" TID "-" SID "-01", NULL});
	assert_true(r.tr.span);
	assert_true(r.tr.has_parent);
	assert_string_equal(hex(r.tr.trace_id, 16), TID);
	assert_string_equal(hex(r.tr.parent_id, 8), SID);
	assert_string_not_equal(hex(r.tr.span_id, 8), SID);
	snprintf(want, sizeof(want), "traceparent: 00-%s-%s-01\n", TID, hex(r.tr.span_id, 8));
	assert_string_equal(up(&r), want);
	assert_int_equal(ctr[WP_CTR_TRACE_SPAN_SAMPLED], 1);
	/* not sampled, at 100%: no span, headers untouched */
	wp_pipe_core_set_trace(&core, ring, 1000000, WP_TRACE_OTLP, 42);
	begin(&c, &r, (const char *[]){"traceparent", "00-" TID "-" SID "-00", NULL});
	assert_false(r.tr.span);
	assert_string_equal(up(&r), "");
	begin(&c, &r, (const char *[]){"x-b3-sampled", "0", NULL});
	assert_false(r.tr.span);
	assert_int_equal(ctr[WP_CTR_TRACE_SPAN_SAMPLED], 1);
	/* B3 without a decision: the rate decides, the B3 context is the parent */
	begin(&c, &r, (const char *[]){"x-b3-traceid", TID, "x-b3-spanid", SID, NULL});
	assert_true(r.tr.span);
	snprintf(want, sizeof(want),
	         "x-b3-traceid: %s\nx-b3-spanid: %s\nx-b3-parentspanid: %s\nx-b3-sampled: 1\n", TID,
	         hex(r.tr.span_id, 8), SID);
	assert_string_equal(up(&r), want);
}

static void test_new_trace(void **state)
{
	struct wp_pipe_conn c;
	struct wp_pipe_rec r;
	char want[256];

	(void)state;
	conn_init(&c);
	begin(&c, &r, NULL); /* 100% */
	assert_true(r.tr.span);
	assert_false(r.tr.has_parent);
	snprintf(want, sizeof(want), "traceparent: 00-%s-%s-01\n", hex(r.tr.trace_id, 16),
	         hex(r.tr.span_id, 8));
	assert_string_equal(up(&r), want);
	/* 0%: no span, but the decision goes on with a new trace */
	wp_pipe_core_set_trace(&core, ring, 0, WP_TRACE_OTLP, 42);
	begin(&c, &r, NULL);
	assert_false(r.tr.span);
	snprintf(want, sizeof(want), "traceparent: 00-%s-%s-00\n", hex(r.tr.trace_id, 16),
	         hex(r.tr.span_id, 8));
	assert_string_equal(up(&r), want);
	/* Zipkin: x-b3-* for a new trace */
	wp_pipe_core_set_trace(&core, ring, 1000000, WP_TRACE_ZIPKIN, 42);
	begin(&c, &r, NULL);
	snprintf(want, sizeof(want), "x-b3-traceid: %s\nx-b3-spanid: %s\nx-b3-sampled: 1\n",
	         hex(r.tr.trace_id, 16), hex(r.tr.span_id, 8));
	assert_string_equal(up(&r), want);
	/* an invalid header: counted, a new trace replacing it */
	begin(&c, &r, (const char *[]){"traceparent", "00-" TID "-" SID "-1", NULL});
	assert_int_equal(ctr[WP_CTR_TRACE_HEADER_INVALID], 1);
	assert_false(r.tr.has_parent);
	assert_int_equal(r.tr.formats, WP_TC_W3C);
}

static void test_telemetry(void **state)
{
	struct wp_pipe_conn c;
	struct wp_pipe_rec r;

	(void)state;
	conn_init(&c);
	/* the Telemetry resource's percentage wins over the configuration's */
	c.tel.sampling_ppm = 0;
	begin(&c, &r, NULL);
	assert_false(r.tr.span);
	wp_pipe_core_set_trace(&core, ring, 0, WP_TRACE_OTLP, 42);
	c.tel.sampling_ppm = 1000000;
	begin(&c, &r, NULL);
	assert_true(r.tr.span);
	/* tracing turned off: nothing decided, nothing written */
	c.tel.tracing = WP_TEL_OFF;
	assert_false(wp_pipe_traces(&c));
	begin(&c, &r, (const char *[]){"traceparent", "00-" TID "-" SID "-01", NULL});
	assert_false(r.tr.span);
	assert_string_equal(up(&r), "");
	c.tel.tracing = WP_TEL_ON;
	assert_true(wp_pipe_traces(&c));
	/* no ring (no collector configured): off whatever Telemetry says */
	wp_pipe_core_set_trace(&core, NULL, 1000000, WP_TRACE_OTLP, 42);
	assert_false(wp_pipe_traces(&c));
}

static void test_rate(void **state)
{
	struct wp_pipe_conn c;
	struct wp_pipe_rec r;
	unsigned n = 0;

	(void)state;
	conn_init(&c);
	wp_pipe_core_set_trace(&core, ring, 250000, WP_TRACE_OTLP, 7); /* 25% */
	for (int i = 0; i < 20000; i++) {
		begin(&c, &r, NULL);
		n += r.tr.span;
	}
	assert_in_range(n, 4500, 5500);
}

static void test_span(void **state)
{
	struct wp_pipe_conn c;
	struct wp_pipe_rec r;
	struct wp_span_entry *e;
	struct wp_route_cluster cl = {.name = "outbound|9080||details.default.svc.cluster.local",
	                              .svc_ns = "default",
	                              .svc_name = "details"};
	struct wp_snap_endpoint ep = {.ns = "default", .port = 9080};
	struct wp_pipe_log_view v = {.method = "GET",
	                             .method_len = 3,
	                             .path = "/d",
	                             .path_len = 2,
	                             .authority = "details:9080",
	                             .authority_len = 12,
	                             .request_id = "rid",
	                             .request_id_len = 3,
	                             .proto = WP_ALOG_HTTP2};

	(void)state;
	conn_init(&c);
	ep.addr.family = WP_AF_INET;
	ep.addr.v4 = htonl(0xc612010b);
	begin(&c, &r, (const char *[]){"b3", TID "-" SID "-1", NULL});
	assert_true(wp_pipe_wants_view(&c, &r));
	wp_pipe_rec_dest(&c, &r, &cl, &ep);
	r.status = 503;
	r.flags = WP_PIPE_F(UF);
	r.req_bytes = 10;
	r.resp_bytes = 20;
	wp_pipe_core_clock(&core, 1004000, 1);
	wp_pipe_rec_end(&c, &r, &v);
	/* the entry the ring holds: the next free one is after it */
	e = wp_span_reserve(ring);
	assert_non_null(e);
	e--; /* (a ring of 4 fresh entries: the committed one is just before) */
	assert_string_equal(hex(e->trace_id, 16), TID);
	assert_string_equal(hex(e->parent_id, 8), SID);
	assert_memory_equal(e->span_id, r.tr.span_id, 8);
	assert_true(e->has_parent);
	assert_int_equal(e->start_us, 1700000000000000ull + 1000000);
	assert_int_equal(e->duration_us, 4000);
	assert_int_equal(e->status, 503);
	assert_int_equal(e->proto, WP_ALOG_HTTP2);
	assert_int_equal(e->port, 9080);
	assert_int_equal(e->bytes_rx, 10);
	assert_int_equal(e->bytes_tx, 20);
	assert_true(e->has_upstream);
	assert_int_equal(e->upstream_port, 9080);
	assert_memory_equal(e->host, "details.default.svc.cluster.local", e->host_len);
	assert_int_equal(e->host_len, 33);
	assert_memory_equal(e->cluster, cl.name, e->cluster_len);
	assert_memory_equal(e->flags, "UF", e->flags_len);
	assert_memory_equal(e->authority, "details:9080", e->authority_len);
	assert_memory_equal(e->request_id, "rid", e->request_id_len);
	assert_int_equal(e->peer.v4, htonl(0x0af40009));
	/* 3 more fill the ring; the next is dropped and counted */
	for (int i = 0; i < 4; i++) {
		begin(&c, &r, NULL);
		wp_pipe_rec_end(&c, &r, &v);
	}
	assert_int_equal(ctr[WP_CTR_TRACE_SPAN_DROPPED], 1);
}

/* metrics.enabled false and no access log: a sampled request still gets
 * its span (the record is kept for it), and nothing is recorded. */
static void test_span_without_metrics(void **state)
{
	struct wp_pipe_conn c;
	struct wp_pipe_rec r;
	struct wp_span_entry *e;

	(void)state;
	core.record = false;
	conn_init(&c);
	begin(&c, &r, (const char *[]){"traceparent", "00-" TID "-" SID "-01", NULL});
	assert_true(r.active);
	assert_true(r.tr.span);
	wp_pipe_rec_end(&c, &r, NULL);
	assert_int_equal(ctr[WP_CTR_TRACE_SPAN_DROPPED], 0);
	e = wp_span_reserve(ring);
	assert_non_null(e);
	e--; /* the committed span is just before the next free entry */
	assert_string_equal(hex(e->trace_id, 16), TID);
	assert_int_equal(wp_metrics_n_http(cells), 1); /* the overflow series only */
	/* tracing off as well: the record is not kept */
	wp_pipe_core_set_trace(&core, NULL, 0, WP_TRACE_OTLP, 42);
	begin(&c, &r, NULL);
	assert_false(r.active);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_sampled_flag_wins, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_new_trace, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_telemetry, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rate, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_span, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_span_without_metrics, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
