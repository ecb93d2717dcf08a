/*
 * Span export (dp/obs/tracing.c): the OTLP/HTTP JSON and Zipkin v2 JSON
 * encodings (parsed back with jansson, every field checked), the span
 * name, the ring, and the exporter thread against a collector on
 * loopback: a batch POSTed with the right head and counted, a refusing
 * collector counted as a failed batch.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "wp/config.h"
#include "wp/counters.h"
#include "wp/tracing.h"

static const struct wp_trace_resource res = {
        .service_name = "waypoint",
        .ns = "bookinfo",
        .canonical_revision = "latest",
        .mesh_id = "cluster.local",
        .cluster_id = "Kubernetes",
        .node_id = "",
        .zone = "z1",
};

static void span_init(struct wp_span_entry *e)
{
	memset(e, 0, sizeof(*e));
	for (int i = 0; i < 16; i++)
		e->trace_id[i] = (uint8_t)(0xa0 + i);
	for (int i = 0; i < 8; i++) {
		e->span_id[i] = (uint8_t)(0x10 + i);
		e->parent_id[i] = (uint8_t)(0x30 + i);
	}
	e->has_parent = true;
	e->start_us = 1700000000123456ull;
	e->duration_us = 2500;
	e->bytes_rx = 120;
	e->bytes_tx = 3400;
	e->status = 200;
	e->grpc = -1;
	e->proto = WP_ALOG_HTTP11;
	e->port = 9080;
	e->peer.family = WP_AF_INET;
	e->peer.v4 = htonl(0x0af40009); /* 10.244.0.9 */
	e->has_upstream = true;
	e->upstream.family = WP_AF_INET;
	e->upstream.v4 = htonl(0xc612010b); /* 198.18.1.11 */
	e->upstream_port = 9080;
	WP_ALOG_SET(e, host, "reviews.default.svc.cluster.local", 33);
	WP_ALOG_SET(e, method, "GET", 3);
	WP_ALOG_SET(e, authority, "reviews:9080", 12);
	WP_ALOG_SET(e, path, "/r/\"1\"", 6);
	WP_ALOG_SET(e, user_agent, "curl/8", 6);
	WP_ALOG_SET(e, request_id, "rid-1", 5);
	WP_ALOG_SET(e, flags, "-", 1);
	WP_ALOG_SET(e, cluster, "outbound|9080||reviews.default.svc.cluster.local", 48);
}

/* The tags every span of span_init() has, key then value. */
static const char *const want_tags[] = {"node_id",
                                        "",
                                        "zone",
                                        "z1",
                                        "guid:x-request-id",
                                        "rid-1",
                                        "http.url",
                                        "http://reviews:9080/r/\"1\"",
                                        "http.method",
                                        "GET",
                                        "downstream_cluster",
                                        "-",
                                        "user_agent",
                                        "curl/8",
                                        "http.protocol",
                                        "HTTP/1.1",
                                        "peer.address",
                                        "10.244.0.9",
                                        "request_size",
                                        "120",
                                        "response_size",
                                        "3400",
                                        "response_flags",
                                        "-",
                                        "upstream_cluster",
                                        "outbound|9080||reviews.default.svc.cluster.local",
                                        "upstream_cluster.name",
                                        "outbound|9080||reviews.default.svc.cluster.local",
                                        "upstream_address",
                                        "198.18.1.11:9080",
                                        "http.status_code",
                                        "200",
                                        "component",
                                        "proxy",
                                        "istio.canonical_revision",
                                        "latest",
                                        "istio.canonical_service",
                                        "waypoint",
                                        "istio.cluster_id",
                                        "Kubernetes",
                                        "istio.mesh_id",
                                        "cluster.local",
                                        "istio.namespace",
                                        "bookinfo",
                                        NULL};

static json_t *parse(const char *buf, size_t len)
{
	json_error_t err;
	json_t *j = json_loadb(buf, len, 0, &err);

	if (!j)
		fail_msg("not JSON: %s: %.*s", err.text, (int)len, buf);
	return j;
}

static const char *str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_string(v));
	return json_string_value(v);
}

static void test_name(void **state)
{
	struct wp_span_entry e;
	char b[256];

	(void)state;
	span_init(&e);
	assert_int_equal(wp_trace_span_name(&e, b, sizeof(b)), 40);
	assert_string_equal(b, "reviews.default.svc.cluster.local:9080/*");
	e.host_len = 0; /* no known service: the authority */
	wp_trace_span_name(&e, b, sizeof(b));
	assert_string_equal(b, "reviews:9080/*");
}

static void test_otlp(void **state)
{
	struct wp_span_entry e[2];
	const struct wp_span_entry *p[2] = {&e[0], &e[1]};
	static char buf[32768];
	size_t n;
	json_t *j, *rs, *spans, *s, *attrs;

	(void)state;
	span_init(&e[0]);
	span_init(&e[1]);
	e[1].has_parent = false;
	e[1].status = 503;
	e[1].has_upstream = false;
	e[1].cluster_len = 0;
	e[1].proto = WP_ALOG_HTTP2;
	e[1].is_grpc = true;
	e[1].grpc = 14;
	n = wp_trace_encode_otlp(p, 2, &res, buf, sizeof(buf));
	assert_true(n > 0);
	j = parse(buf, n);
	rs = json_array_get(json_object_get(j, "resourceSpans"), 0);
	attrs = json_object_get(json_object_get(rs, "resource"), "attributes");
	assert_int_equal(json_array_size(attrs), 1);
	assert_string_equal(str(json_array_get(attrs, 0), "key"), "service.name");
	assert_string_equal(str(json_object_get(json_array_get(attrs, 0), "value"), "stringValue"),
	                    "waypoint");
	s = json_array_get(json_object_get(rs, "scopeSpans"), 0);
	assert_string_equal(str(json_object_get(s, "scope"), "name"), "waypointd");
	spans = json_object_get(s, "spans");
	assert_int_equal(json_array_size(spans), 2);
	s = json_array_get(spans, 0);
	assert_string_equal(str(s, "traceId"), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
	assert_string_equal(str(s, "spanId"), "1011121314151617");
	assert_string_equal(str(s, "parentSpanId"), "3031323334353637");
	assert_string_equal(str(s, "name"), "reviews.default.svc.cluster.local:9080/*");
	assert_int_equal(json_integer_value(json_object_get(s, "kind")), 2);
	assert_string_equal(str(s, "startTimeUnixNano"), "1700000000123456000");
	assert_string_equal(str(s, "endTimeUnixNano"), "1700000000125956000");
	assert_int_equal(json_object_size(json_object_get(s, "status")), 0);
	attrs = json_object_get(s, "attributes");
	{
		size_t k = 0;

		for (; want_tags[2 * k]; k++) {
			json_t *a = json_array_get(attrs, k);

			assert_non_null(a);
			assert_string_equal(str(a, "key"), want_tags[2 * k]);
			assert_string_equal(str(json_object_get(a, "value"), "stringValue"),
			                    want_tags[2 * k + 1]);
		}
		assert_int_equal(json_array_size(attrs), k);
	}
	/* the second: no parent, 5xx (error tag and status), h2, gRPC status */
	s = json_array_get(spans, 1);
	assert_null(json_object_get(s, "parentSpanId"));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(s, "status"), "code")),
	                 2);
	{
		json_t *a;
		size_t i;
		int seen = 0;

		json_array_foreach(json_object_get(s, "attributes"), i, a)
		{
			const char *k = str(a, "key"),
			           *v = str(json_object_get(a, "value"), "stringValue");

			if (!strcmp(k, "error"))
				seen += !strcmp(v, "true");
			else if (!strcmp(k, "grpc.status_code"))
				seen += !strcmp(v, "14") * 2;
			else if (!strcmp(k, "http.protocol"))
				seen += !strcmp(v, "HTTP/2") * 4;
			else if (!strcmp(k, "upstream_address") || !strcmp(k, "upstream_cluster"))
				seen += 100;
		}
		assert_int_equal(seen, 7);
	}
	json_decref(j);
	/* too small a buffer: 0, never a cut document */
	assert_int_equal(wp_trace_encode_otlp(p, 2, &res, buf, n - 1), 0);
}

static void test_zipkin(void **state)
{
	struct wp_span_entry e;
	const struct wp_span_entry *p = &e;
	static char buf[16384];
	size_t n;
	json_t *j, *s, *tags;

	(void)state;
	span_init(&e);
	n = wp_trace_encode_zipkin(&p, 1, &res, buf, sizeof(buf));
	assert_true(n > 0);
	j = parse(buf, n);
	assert_true(json_is_array(j));
	assert_int_equal(json_array_size(j), 1);
	s = json_array_get(j, 0);
	assert_string_equal(str(s, "traceId"), "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
	assert_string_equal(str(s, "id"), "1011121314151617");
	assert_string_equal(str(s, "parentId"), "3031323334353637");
	assert_string_equal(str(s, "kind"), "SERVER");
	assert_string_equal(str(s, "name"), "reviews.default.svc.cluster.local:9080/*");
	assert_int_equal(json_integer_value(json_object_get(s, "timestamp")), 1700000000123456ll);
	assert_int_equal(json_integer_value(json_object_get(s, "duration")), 2500);
	assert_string_equal(str(json_object_get(s, "localEndpoint"), "serviceName"), "waypoint");
	tags = json_object_get(s, "tags");
	{
		size_t k = 0;

		for (; want_tags[2 * k]; k++)
			assert_string_equal(str(tags, want_tags[2 * k]), want_tags[2 * k + 1]);
		assert_int_equal(json_object_size(tags), k);
	}
	json_decref(j);
	/* a zero duration is 1 µs: Zipkin refuses 0 */
	e.duration_us = 0;
	n = wp_trace_encode_zipkin(&p, 1, &res, buf, sizeof(buf));
	j = parse(buf, n);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(j, 0), "duration")), 1);
	json_decref(j);
}

static void test_ring(void **state)
{
	struct wp_span_ring *r = wp_span_ring_create(3); /* 4 */
	int i;

	(void)state;
	assert_non_null(r);
	for (i = 0; i < 4; i++) {
		assert_non_null(wp_span_reserve(r));
		wp_span_commit(r);
	}
	assert_null(wp_span_reserve(r));
	wp_span_ring_destroy(r);
}

/* A one-shot collector: accepts <n> connections, keeps the last request,
 * answers each with <status>. */
struct collector {
	int ls, n, status;
	char req[65536];
	size_t len;
};

static void *collector_main(void *arg)
{
	struct collector *c = arg;

	for (int k = 0; k < c->n; k++) {
		int fd = accept(c->ls, NULL, NULL);
		char resp[128];
		ssize_t got;

		if (fd < 0)
			break;
		c->len = 0;
		/* the head, then content-length bytes */
		for (;;) {
			char *end, *cl;

			got = recv(fd, c->req + c->len, sizeof(c->req) - 1 - c->len, 0);
			if (got <= 0)
				break;
			c->len += (size_t)got;
			c->req[c->len] = '\0';
			end = strstr(c->req, "\r\n\r\n");
			cl = strstr(c->req, "content-length: ");
			if (end && cl &&
			    c->len >= (size_t)(end + 4 - c->req) + strtoul(cl + 16, NULL, 10))
				break;
		}
		snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\ncontent-length: 0\r\n\r\n",
		         c->status);
		(void)send(fd, resp, strlen(resp), MSG_NOSIGNAL);
		close(fd);
	}
	return NULL;
}

static uint64_t counter(struct wp_trace_exporter *x, enum wp_ctr k)
{
	uint64_t out[WP_CTR_MAX] = {0};

	wp_trace_exporter_counters(x, out);
	return out[k];
}

static void run_exporter(int protocol, int status, bool want_ok)
{
	struct collector c = {.n = 1, .status = status};
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	struct wp_tracing_config cfg = {.protocol = (uint8_t)protocol,
	                                .ring_entries = 16,
	                                .batch_spans = 8,
	                                .flush_ms = 20,
	                                .timeout_ms = 2000};
	struct wp_trace_exporter *x;
	pthread_t th;
	int k;

	c.ls = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(c.ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(c.ls, 4), 0);
	getsockname(c.ls, (struct sockaddr *)&sa, &sl);
	snprintf(cfg.collector, sizeof(cfg.collector), "127.0.0.1:%u", ntohs(sa.sin_port));
	strcpy(cfg.path, protocol == WP_TRACE_ZIPKIN ? "/api/v2/spans" : "/v1/traces");
	strcpy(cfg.service_name, "wp");
	assert_int_equal(pthread_create(&th, NULL, collector_main, &c), 0);
	x = wp_trace_exporter_start(&cfg, &res, 2);
	assert_non_null(x);
	for (k = 0; k < 3; k++) { /* 2 spans on ring 1, 1 on ring 0: one batch */
		struct wp_span_entry *e = wp_span_reserve(wp_trace_exporter_ring(x, k % 2 ? 0 : 1));

		assert_non_null(e);
		span_init(e);
		wp_span_commit(wp_trace_exporter_ring(x, k % 2 ? 0 : 1));
	}
	for (k = 0; k < 300; k++) {
		if (counter(x, WP_CTR_TRACE_SPAN_EXPORTED) + counter(x, WP_CTR_TRACE_BATCH_FAILED))
			break;
		usleep(10000);
	}
	pthread_join(th, NULL);
	assert_int_equal(counter(x, WP_CTR_TRACE_SPAN_EXPORTED), want_ok ? 3 : 0);
	assert_int_equal(counter(x, WP_CTR_TRACE_BATCH_FAILED), want_ok ? 0 : 1);
	assert_int_equal(counter(x, WP_CTR_TRACE_SPAN_LOST), want_ok ? 0 : 3);
	wp_trace_exporter_stop(x);
	close(c.ls);
	{
		char want[512];
		const char *body = strstr(c.req, "\r\n\r\n");
		json_t *j;

		snprintf(want, sizeof(want), "POST %s HTTP/1.1\r\nhost: %s\r\n", cfg.path,
		         cfg.collector);
		assert_memory_equal(c.req, want, strlen(want));
		assert_non_null(strstr(c.req, "\r\ncontent-type: application/json\r\n"));
		assert_non_null(body);
		j = parse(body + 4, c.len - (size_t)(body + 4 - c.req));
		if (protocol == WP_TRACE_ZIPKIN)
			assert_int_equal(json_array_size(j), 3);
		else
			assert_int_equal(
			        json_array_size(json_object_get(
			                json_array_get(
			                        json_object_get(
			                                json_array_get(
			                                        json_object_get(j, "resourceSpans"),
			                                        0),
			                                "scopeSpans"),
			                        0),
			                "spans")),
			        3);
		json_decref(j);
	}
}

static void test_exporter_otlp(void **state)
{
	(void)state;
	run_exporter(WP_TRACE_OTLP, 200, true);
}

static void test_exporter_zipkin(void **state)
{
	(void)state;
	run_exporter(WP_TRACE_ZIPKIN, 202, true);
}

static void test_exporter_refused(void **state)
{
	(void)state;
	run_exporter(WP_TRACE_OTLP, 503, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_name),
	        cmocka_unit_test(test_otlp),
	        cmocka_unit_test(test_zipkin),
	        cmocka_unit_test(test_ring),
	        cmocka_unit_test(test_exporter_otlp),
	        cmocka_unit_test(test_exporter_zipkin),
	        cmocka_unit_test(test_exporter_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
