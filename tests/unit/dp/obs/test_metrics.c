/*
 * Unit tests for the Istio metric cells (dp/obs/metrics.c) and the
 * Prometheus exposition (dp/obs/prom.c): interning, the series bound and
 * its overflow series, merging cores, histogram buckets/sum/count,
 * label-value escaping, promtool's verdict on a whole exposition, and the
 * cost of rendering 10,000 series.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "prom.h"
#include "wp/counters.h"
#include "wp/metrics.h"

static struct wp_stats stats[3];

static uint32_t in(struct wp_metrics_core *m, const char *s)
{
	return wp_metrics_intern(m, s, strlen(s));
}

/* A label set with the destination workload <dst> and response code. */
static struct wp_metrics_labels labels(struct wp_metrics_core *m, const char *dst, const char *code)
{
	struct wp_metrics_labels l = {{0}};

	l.v[WP_ML_SOURCE_WORKLOAD] = in(m, "productpage-v1");
	l.v[WP_ML_DESTINATION_WORKLOAD] = in(m, dst);
	l.v[WP_ML_REQUEST_PROTOCOL] = in(m, "http");
	l.v[WP_ML_RESPONSE_CODE] = in(m, code);
	l.v[WP_ML_GRPC_RESPONSE_STATUS] = WP_METRICS_EMPTY;
	return l;
}

static char *render(struct wp_metrics_core **cores, unsigned n)
{
	struct wp_stats *sp[3] = {&stats[0], &stats[1], &stats[2]};
	struct wp_prom *p = wp_prom_create(sp, cores, n, 1000000000);
	size_t len;
	char *t;

	assert_non_null(p);
	t = wp_prom_render(p, NULL, &len);
	assert_non_null(t);
	assert_int_equal(strlen(t), len);
	wp_prom_destroy(p);
	return t;
}

/* The value of the sample whose line starts with <prefix> (name and labels
 * up to the closing brace), or -1. */
static long long value(const char *text, const char *prefix)
{
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, prefix, strlen(prefix)) && l[strlen(prefix)] == ' ')
			return atoll(l + strlen(prefix) + 1);
	return -1;
}

static unsigned count_lines(const char *text, const char *needle)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void test_intern(void **state)
{
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_metrics_core *m = wp_metrics_core_create(8, ctr);
	char big[WP_METRICS_MAX_VALUE + 1];
	size_t len;
	uint32_t a, b;

	(void)state;
	assert_non_null(m);
	assert_int_equal(in(m, "unknown"), WP_METRICS_UNKNOWN);
	assert_int_equal(in(m, "overflow"), WP_METRICS_OVERFLOW);
	assert_int_equal(in(m, ""), WP_METRICS_EMPTY);
	a = in(m, "reviews-v1");
	b = in(m, "reviews-v2");
	assert_true(a > WP_METRICS_EMPTY && b > WP_METRICS_EMPTY && a != b);
	assert_int_equal(in(m, "reviews-v1"), a);
	assert_memory_equal(wp_metrics_string(m, b, &len), "reviews-v2", 10);
	assert_int_equal(len, 10);
	memset(big, 'x', sizeof(big));
	assert_int_equal(wp_metrics_intern(m, big, sizeof(big)), WP_METRICS_OVERFLOW);
	assert_int_equal(ctr[WP_CTR_METRICS_LABEL_OVERFLOW], 1);
	/* 8 series: 4 * 8 + 3 + 16 strings; the rest are "overflow" */
	for (unsigned i = 0; i < 100; i++) {
		char s[16];

		snprintf(s, sizeof(s), "w%u", i);
		if (in(m, s) == WP_METRICS_OVERFLOW)
			break;
	}
	assert_true(ctr[WP_CTR_METRICS_LABEL_OVERFLOW] == 2);
	assert_int_equal(in(m, "reviews-v1"), a); /* kept ones still found */
	wp_metrics_core_destroy(m);
}

static void test_overflow_series(void **state)
{
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_metrics_core *m = wp_metrics_core_create(2, ctr);
	struct wp_metrics_labels l1 = labels(m, "a", "200"), l2 = labels(m, "b", "200"),
	                         l3 = labels(m, "c", "200");
	char *t;

	(void)state;
	wp_metrics_http_record(m, &l1, 1000, 1, 1);
	wp_metrics_http_record(m, &l2, 1000, 1, 1);
	wp_metrics_http_record(m, &l3, 1000, 1, 1);
	wp_metrics_http_record(m, &l3, 1000, 1, 1);
	wp_metrics_http_record(m, &l1, 1000, 1, 1);
	assert_int_equal(ctr[WP_CTR_METRICS_SERIES_OVERFLOW], 2);
	assert_int_equal(wp_metrics_n_http(m), 3); /* overflow + 2 */
	t = render(&m, 1);
	assert_int_equal(count_lines(t, "\nistio_requests_total{"), 3);
	assert_non_null(strstr(t, "istio_requests_total{reporter=\"waypoint\",source_workload="
	                          "\"overflow\",source_workload_namespace=\"overflow\""));
	assert_non_null(strstr(t, "destination_workload=\"a\""));
	assert_null(strstr(t, "destination_workload=\"c\""));
	free(t);
	wp_metrics_core_destroy(m);
}

static void test_merge_cores(void **state)
{
	struct wp_metrics_core *c[3];
	struct wp_metrics_labels l;
	uint32_t tcp;
	char *t;

	(void)state;
	for (unsigned i = 0; i < 3; i++)
		c[i] = wp_metrics_core_create(16, NULL);
	/* core 1 interns other strings first: its ids differ from core 0's */
	in(c[1], "something else");
	in(c[1], "details-v1");
	for (unsigned i = 0; i < 3; i++) {
		l = labels(c[i], "reviews-v1", "200");
		for (unsigned k = 0; k <= i; k++)
			wp_metrics_http_record(c[i], &l, 2000, 10, 100);
		l = labels(c[i], "reviews-v1", "503");
		wp_metrics_http_record(c[i], &l, 2000, 10, 100);
		tcp = wp_metrics_tcp_series(c[i], &l); /* response code ignored for TCP */
		wp_metrics_tcp_add(c[i], tcp, 1, i == 2, 100, 1000);
	}
	t = render(c, 3);
	assert_int_equal(count_lines(t, "\nistio_requests_total{"), 2);
	assert_int_equal(count_lines(t, "\nistio_tcp_sent_bytes_total{"), 1);
	assert_non_null(strstr(t, "response_code=\"200\""));
	{
		const char *p = strstr(t, "\nistio_requests_total{");
		const char *brace = strchr(p + 1, '}');
		char pre[1024];

		snprintf(pre, sizeof(pre), "%.*s", (int)(brace - p), p + 1);
		assert_int_equal(value(t, pre), strstr(pre, "\"200\"") ? 6 : 3);
	}
	assert_null(strstr(t,
	                   "istio_tcp_sent_bytes_total{reporter=\"waypoint\",source_workload="
	                   "\"productpage-v1\",source_workload_namespace=\"unknown\","
	                   "source_principal=\"unknown\",source_app=\"unknown\",source_version="
	                   "\"unknown\",source_canonical_service=\"unknown\",source_canonical_"
	                   "revision=\"unknown\",source_cluster=\"unknown\",destination_workload="
	                   "\"reviews-v1\",destination_workload_namespace=\"unknown\","
	                   "destination_principal=\"unknown\",destination_app=\"unknown\","
	                   "destination_version=\"unknown\",destination_service=\"unknown\","
	                   "destination_service_name=\"unknown\",destination_service_namespace="
	                   "\"unknown\",destination_canonical_service=\"unknown\",destination_"
	                   "canonical_revision=\"unknown\",destination_cluster=\"unknown\","
	                   "request_protocol=\"http\",response_code"));
	assert_int_equal(
	        value(t, "istio_tcp_connections_opened_total{reporter=\"waypoint\",source_workload="
	                 "\"productpage-v1\",source_workload_namespace=\"unknown\","
	                 "source_principal=\"unknown\",source_app=\"unknown\",source_version="
	                 "\"unknown\",source_canonical_service=\"unknown\",source_canonical_"
	                 "revision=\"unknown\",source_cluster=\"unknown\",destination_workload="
	                 "\"reviews-v1\",destination_workload_namespace=\"unknown\","
	                 "destination_principal=\"unknown\",destination_app=\"unknown\","
	                 "destination_version=\"unknown\",destination_service=\"unknown\","
	                 "destination_service_name=\"unknown\",destination_service_namespace="
	                 "\"unknown\",destination_canonical_service=\"unknown\",destination_"
	                 "canonical_revision=\"unknown\",destination_cluster=\"unknown\","
	                 "request_protocol=\"http\",response_flags=\"unknown\",connection_"
	                 "security_policy=\"unknown\"}"),
	        3);
	free(t);
	for (unsigned i = 0; i < 3; i++)
		wp_metrics_core_destroy(c[i]);
}

static void test_histogram(void **state)
{
	struct wp_metrics_core *m = wp_metrics_core_create(4, NULL);
	struct wp_metrics_labels l = {{0}};
	/* durations in us: 0.4 ms, 0.5 ms (le 0.5), 0.7 ms, 7 s, 2 h (+Inf) */
	static const uint64_t dur[] = {400, 500, 700, 7000000, 7200000000ull};
	static const uint64_t bytes[] = {0, 1, 2, 1000, 1001};
	const char *lab;
	char *t, k[2048];

	(void)state;
	for (unsigned i = 0; i < 5; i++)
		wp_metrics_http_record(m, &l, dur[i], bytes[i], bytes[i] * 2);
	t = render(&m, 1);
	lab = strstr(t, "istio_request_duration_milliseconds_bucket{") +
	      strlen("istio_request_duration_milliseconds_bucket{");
	lab = strndup(lab, (size_t)(strstr(lab, ",le=") - lab));
#define BUCKET(fam, le)                                                                            \
	(snprintf(k, sizeof(k), "%s_bucket{%s,le=\"%s\"}", fam, lab, le), value(t, k))
#define PLAIN(name) (snprintf(k, sizeof(k), "%s{%s}", name, lab), value(t, k))
	assert_int_equal(BUCKET("istio_request_duration_milliseconds", "0.5"), 2);
	assert_int_equal(BUCKET("istio_request_duration_milliseconds", "1"), 3);
	assert_int_equal(BUCKET("istio_request_duration_milliseconds", "5000"), 3);
	assert_int_equal(BUCKET("istio_request_duration_milliseconds", "10000"), 4);
	assert_int_equal(BUCKET("istio_request_duration_milliseconds", "3600000"), 4);
	assert_int_equal(BUCKET("istio_request_duration_milliseconds", "+Inf"), 5);
	assert_int_equal(PLAIN("istio_request_duration_milliseconds_count"), 5);
	/* 0.4 + 0.5 + 0.7 + 7000 + 7200000 ms */
	snprintf(k, sizeof(k), "istio_request_duration_milliseconds_sum{%s} 7207001.600\n", lab);
	assert_non_null(strstr(t, k));
	assert_int_equal(BUCKET("istio_request_bytes", "0.5"), 1);
	assert_int_equal(BUCKET("istio_request_bytes", "1"), 2);
	assert_int_equal(BUCKET("istio_request_bytes", "5"), 3);
	assert_int_equal(BUCKET("istio_request_bytes", "1000"), 4);
	assert_int_equal(BUCKET("istio_request_bytes", "2500"), 5);
	assert_int_equal(PLAIN("istio_request_bytes_sum"), 2004);
	assert_int_equal(PLAIN("istio_response_bytes_sum"), 4008);
	assert_int_equal(BUCKET("istio_response_bytes", "1000"), 3);
	assert_int_equal(PLAIN("istio_requests_total"), 5);
	assert_int_equal(count_lines(t, "istio_request_bytes_bucket{"), WP_METRICS_BUCKETS + 1);
#undef BUCKET
#undef PLAIN
	free((char *)lab);
	free(t);
	wp_metrics_core_destroy(m);
}

static void test_escape(void **state)
{
	struct wp_metrics_core *m = wp_metrics_core_create(4, NULL);
	struct wp_metrics_labels l = {{0}};
	char out[64];
	char *t;

	(void)state;
	assert_int_equal(wp_prom_escape(out, "a\\b\"c\nd", 7), 10);
	assert_memory_equal(out, "a\\\\b\\\"c\\nd", 10);
	l.v[WP_ML_SOURCE_PRINCIPAL] = in(m, "spiffe://x/ns/\"q\"\\\n");
	wp_metrics_http_record(m, &l, 1, 1, 1);
	t = render(&m, 1);
	assert_non_null(strstr(t, "source_principal=\"spiffe://x/ns/\\\"q\\\"\\\\\\n\""));
	free(t);
	wp_metrics_core_destroy(m);
}

/* Per-core and control-plane counters: HELP and TYPE, core label. */
static void test_waypointd_series(void **state)
{
	struct wp_stats *sp[2] = {&stats[0], &stats[1]};
	struct wp_prom *p = wp_prom_create(sp, (struct wp_metrics_core *[]){NULL, NULL}, 2, 1);
	uint64_t cp[WP_CTR_MAX] = {0};
	size_t len;
	char *t;

	(void)state;
	stats[0].rx_pkts = 7;
	stats[1].rx_pkts = 9;
	stats[1].ctr[WP_CTR_TCP_RST_SENT] = 3;
	stats[1].tcp_conns = 4;
	cp[WP_CTR_ADMIN_REQUEST] = 11;
	t = wp_prom_render(p, cp, &len);
	assert_int_equal(value(t, "waypointd_rx_packets_total{core=\"0\"}"), 7);
	assert_int_equal(value(t, "waypointd_rx_packets_total{core=\"1\"}"), 9);
	assert_int_equal(value(t, "waypointd_tcp_rst_sent_total{core=\"1\"}"), 3);
	assert_int_equal(value(t, "waypointd_tcp_conns{core=\"1\"}"), 4);
	assert_int_equal(value(t, "waypointd_admin_request_total"), 11);
	assert_null(strstr(t, "waypointd_admin_request_total{"));
	assert_non_null(strstr(t, "# TYPE waypointd_tcp_conns gauge\n"));
	assert_non_null(strstr(t, "# TYPE waypointd_tcp_rst_sent_total counter\n"));
	assert_non_null(strstr(t, "# HELP waypointd_tcp_rst_sent_total RST sent\n"));
	assert_int_equal(count_lines(t, "# TYPE "), count_lines(t, "# HELP "));
	free(t);
	wp_prom_destroy(p);
	memset(stats, 0, sizeof(stats));
}

/* promtool check metrics on a whole exposition: nothing but the base-unit
 * note Istio's _milliseconds name draws (its name is kept on purpose). */
static void test_promtool(void **state)
{
	struct wp_metrics_core *c[2] = {wp_metrics_core_create(8, NULL),
	                                wp_metrics_core_create(8, NULL)};
	char path[] = "/tmp/wp_prom_XXXXXX", cmd[256], line[512];
	unsigned notes = 0, other = 0;
	FILE *f;
	char *t;
	int fd;

	(void)state;
	if (access("/usr/bin/promtool", X_OK) != 0) {
		skip(); /* scripts/setup installs the prometheus package */
		return;
	}
	for (unsigned i = 0; i < 2; i++) {
		struct wp_metrics_labels l = labels(c[i], "reviews-v1", "200");

		l.v[WP_ML_SOURCE_PRINCIPAL] = in(c[i], "spiffe://cluster.local/ns/a/sa/\"b\"\\");
		wp_metrics_http_record(c[i], &l, 1500, 100, 1000);
		wp_metrics_tcp_add(c[i], wp_metrics_tcp_series(c[i], &l), 1, 1, 10, 20);
	}
	t = render(c, 2);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s 2>&1", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "istio_request_duration_milliseconds") &&
		    strstr(line, "base unit"))
			notes++;
		else
			other++, fprintf(stderr, "promtool: %s", line);
	}
	pclose(f);
	unlink(path);
	assert_int_equal(other, 0);
	assert_int_equal(notes, 1);
	free(t);
	wp_metrics_core_destroy(c[0]);
	wp_metrics_core_destroy(c[1]);
}

/* Rendering cost: 2 cores x 80 label sets x (1 + 3 x 22) = 10,720 Istio
 * series (no label set on both cores) plus the waypointd_* ones, the second scrape (the label texts
 * are made on the first): every series is there. The time it took is printed, never asserted
 * (the suite does not judge speed; the scrape cost is a benchmark's). */
static void test_render_cost(void **state)
{
	struct wp_metrics_core *c[2];
	struct wp_stats *sp[2] = {&stats[0], &stats[1]};
	struct wp_prom *p;
	struct timespec a, b, ca, cb;
	size_t len;
	double ms, cpu;
	char *t;

	(void)state;
	for (unsigned i = 0; i < 2; i++) {
		c[i] = wp_metrics_core_create(128, NULL);
		for (unsigned k = 0; k < 80; k++) {
			char name[32];
			struct wp_metrics_labels l;

			snprintf(name, sizeof(name), "workload-%u-%u", i, k);
			l = labels(c[i], name, "200");
			l.v[WP_ML_SOURCE_PRINCIPAL] =
			        in(c[i], "spiffe://cluster.local/ns/bookinfo/sa/productpage");
			wp_metrics_http_record(c[i], &l, 1000 * k, k, k * 10);
		}
	}
	p = wp_prom_create(sp, c, 2, 1);
	free(wp_prom_render(p, NULL, &len));
	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ca);
	t = wp_prom_render(p, NULL, &len);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cb);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	cpu = (double)(cb.tv_sec - ca.tv_sec) * 1e3 + (double)(cb.tv_nsec - ca.tv_nsec) / 1e6;
	assert_true(count_lines(t, "\nistio_") >= 10000);
	fprintf(stderr, "render: %u lines, %zu bytes in %.2f ms (%.2f ms of CPU)\n",
	        count_lines(t, "\n"), len, ms, cpu);
	free(t);
	wp_prom_destroy(p);
	wp_metrics_core_destroy(c[0]);
	wp_metrics_core_destroy(c[1]);
}

/* A worker records while the control plane scrapes, without a lock: every
 * scrape sees a total that never goes backwards, series appear whole, and
 * the last scrape sees every request. */
#define RACE_REQUESTS 200000

static void *race_writer(void *arg)
{
	struct wp_metrics_core *m = arg;
	struct wp_metrics_labels l = {{0}};

	for (unsigned i = 0; i < RACE_REQUESTS; i++) {
		l.v[WP_ML_RESPONSE_CODE] = i % 3; /* three series, made while scraped */
		wp_metrics_http_record(m, &l, i % 5000, 1, 1);
	}
	return NULL;
}

static long long total_requests(const char *t)
{
	long long n = 0;

	for (const char *p = t; (p = strstr(p, "\nistio_requests_total{")) != NULL; p++)
		n += atoll(strstr(p, "} ") + 2);
	return n;
}

static void test_scrape_while_recording(void **state)
{
	struct wp_metrics_core *m = wp_metrics_core_create(8, NULL);
	struct wp_stats *sp[1] = {&stats[0]};
	struct wp_prom *p = wp_prom_create(sp, &m, 1, 1);
	long long last = 0, n;
	unsigned scrapes = 0;
	pthread_t th;
	size_t len;
	char *t;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, race_writer, m), 0);
	do {
		t = wp_prom_render(p, NULL, &len);
		n = total_requests(t);
		assert_true(n >= last);
		last = n;
		scrapes++;
		free(t);
	} while (n < RACE_REQUESTS);
	pthread_join(th, NULL);
	t = wp_prom_render(p, NULL, &len);
	assert_int_equal(total_requests(t), RACE_REQUESTS);
	assert_int_equal(count_lines(t, "\nistio_requests_total{"), 3);
	fprintf(stderr, "%u scrapes while recording\n", scrapes);
	free(t);
	wp_prom_destroy(p);
	wp_metrics_core_destroy(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_intern),
	        cmocka_unit_test(test_overflow_series),
	        cmocka_unit_test(test_merge_cores),
	        cmocka_unit_test(test_histogram),
	        cmocka_unit_test(test_escape),
	        cmocka_unit_test(test_waypointd_series),
	        cmocka_unit_test(test_promtool),
	        cmocka_unit_test(test_render_cost),
	        cmocka_unit_test(test_scrape_while_recording),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
