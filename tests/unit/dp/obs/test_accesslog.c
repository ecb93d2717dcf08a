/*
 * The access log (dp/obs/accesslog.c): Istio's default text line and JSON
 * object for one entry (field by field, "-" / null for what is absent,
 * escaping), the ring's bound and its drop counter, and the writer thread
 * appending every line to its file and reopening it (logrotate).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "wp/accesslog.h"
#include "wp/counters.h"

/* An entry with room for the longest text fields. */
union entry_buf {
	struct wp_alog_entry e;
	char b[sizeof(struct wp_alog_entry) + 2048];
};

/* The text fields of the details request below. */
static void fill_text(struct wp_alog_text t[WP_ALOG_NTEXT])
{
	memset(t, 0, sizeof(*t) * WP_ALOG_NTEXT);
	t[WP_ALOG_METHOD] = (struct wp_alog_text){"GET", 3};
	t[WP_ALOG_PATH] = (struct wp_alog_text){"/details/0", 10};
	t[WP_ALOG_AUTHORITY] = (struct wp_alog_text){"details:9080", 12};
	t[WP_ALOG_USER_AGENT] = (struct wp_alog_text){"curl/7.88 \"x\"", 13};
	t[WP_ALOG_REQUEST_ID] = (struct wp_alog_text){"4e43168a-01e6-907c-ba17-2f72fad816a8", 36};
	t[WP_ALOG_FLAGS] = (struct wp_alog_text){"-", 1};
	t[WP_ALOG_CLUSTER] =
	        (struct wp_alog_text){"outbound|9080||details.default.svc.cluster.local", 48};
}

/* The fixed part of the details request. */
static void fill_fixed(struct wp_alog_entry *e)
{
	e->start_us = 1606339578409000ull; /* 2020-11-25T21:26:18.409Z */
	e->duration_us = 12345;
	e->bytes_rx = 0;
	e->bytes_tx = 5;
	e->status = 200;
	e->proto = WP_ALOG_HTTP11;
	e->has_upstream = true;
	memset(&e->upstream, 0, sizeof(e->upstream));
	e->upstream.family = WP_AF_INET;
	e->upstream.v4 = htonl(0x0a00020b);
	e->upstream_port = 9080;
	memset(&e->local, 0, sizeof(e->local));
	e->local.family = WP_AF_INET;
	e->local.v4 = htonl(0xc613000b);
	e->local_port = 9080;
	memset(&e->remote, 0, sizeof(e->remote));
	e->remote.family = WP_AF_INET;
	e->remote.v4 = htonl(0x0af40009);
}

/* The details request with text fields <t> into <eb>. */
static struct wp_alog_entry *fill_with(union entry_buf *eb, const struct wp_alog_text *t)
{
	memset(eb, 0, sizeof(*eb));
	fill_fixed(&eb->e);
	wp_alog_entry_text(&eb->e, t);
	return &eb->e;
}

static struct wp_alog_entry *fill(union entry_buf *eb)
{
	struct wp_alog_text t[WP_ALOG_NTEXT];

	fill_text(t);
	return fill_with(eb, t);
}

static void test_text_and_json(void **state)
{
	union entry_buf eb;
	struct wp_alog_text t[WP_ALOG_NTEXT];
	struct wp_alog_entry *e = fill(&eb);
	char buf[4096];
	size_t n;

	(void)state;
	assert_int_equal(wp_alog_entry_size((fill_text(t), t)),
	                 sizeof(*e) + 3 + 10 + 12 + 13 + 36 + 1 + 48);
	n = wp_alog_format(e, false, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(
	        buf, "[2020-11-25T21:26:18.409Z] \"GET /details/0 HTTP/1.1\" 200 - - - \"-\" "
	             "0 5 12 - \"-\" \"curl/7.88 \\x22x\\x22\" "
	             "\"4e43168a-01e6-907c-ba17-2f72fad816a8\" \"details:9080\" "
	             "\"10.0.2.11:9080\" outbound|9080||details.default.svc.cluster.local "
	             "- 198.19.0.11:9080 10.244.0.9 - -\n");
	n = wp_alog_format(e, true, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(
	        buf,
	        "{\"start_time\":\"2020-11-25T21:26:18.409Z\",\"method\":\"GET\",\"path\":\"/"
	        "details/0\","
	        "\"protocol\":\"HTTP/1.1\",\"response_code\":200,\"response_flags\":\"-\","
	        "\"response_code_details\":null,\"connection_termination_details\":null,"
	        "\"upstream_transport_failure_reason\":null,\"bytes_received\":0,\"bytes_sent\":5,"
	        "\"duration\":12,\"upstream_service_time\":null,\"x_forwarded_for\":null,"
	        "\"user_agent\":\"curl/7.88 \\\"x\\\"\","
	        "\"request_id\":\"4e43168a-01e6-907c-ba17-2f72fad816a8\",\"authority\":\"details:"
	        "9080\","
	        "\"upstream_host\":\"10.0.2.11:9080\","
	        "\"upstream_cluster\":\"outbound|9080||details.default.svc.cluster.local\","
	        "\"upstream_local_address\":null,\"downstream_local_address\":\"198.19.0.11:9080\","
	        "\"downstream_remote_address\":\"10.244.0.9\",\"requested_server_name\":null,"
	        "\"route_name\":null}\n");
	/* a local answer: no upstream, no cluster; h2 */
	fill_text(t);
	t[WP_ALOG_FLAGS] = (struct wp_alog_text){"NR", 2};
	t[WP_ALOG_CLUSTER] = (struct wp_alog_text){NULL, 0};
	e = fill_with(&eb, t);
	e->has_upstream = false;
	e->status = 404;
	e->proto = WP_ALOG_HTTP2;
	n = wp_alog_format(e, false, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"GET /details/0 HTTP/2\" 404 NR - - \"-\" "));
	assert_non_null(strstr(buf, "\"details:9080\" \"-\" - - 198.19.0.11:9080"));
	/* an opaque TCP connection, as Envoy logs its TCP proxy's */
	fill_text(t);
	t[WP_ALOG_METHOD] = t[WP_ALOG_PATH] = t[WP_ALOG_AUTHORITY] = (struct wp_alog_text){0};
	t[WP_ALOG_USER_AGENT] = t[WP_ALOG_REQUEST_ID] = (struct wp_alog_text){0};
	e = fill_with(&eb, t);
	e->proto = WP_ALOG_TCP;
	e->status = 0;
	e->bytes_rx = 3000;
	e->bytes_tx = 2999;
	n = wp_alog_format(e, false, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf,
	                       "] \"- - -\" 0 - - - \"-\" 3000 2999 12 - \"-\" \"-\" \"-\" \"-\" "
	                       "\"10.0.2.11:9080\" outbound|9080||"));
	n = wp_alog_format(e, true, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"method\":null,\"path\":null,\"protocol\":null,"
	                            "\"response_code\":0,"));
	/* too small a buffer: nothing */
	assert_int_equal(wp_alog_format(e, true, buf, 40), 0);
	/* a field is cut at its capacity, the next follows it */
	{
		char big[1000];

		memset(big, 'a', sizeof(big));
		fill_text(t);
		t[WP_ALOG_PATH] = (struct wp_alog_text){big, sizeof(big)};
		assert_int_equal(wp_alog_entry_size(t),
		                 sizeof(*e) + 3 + 512 + 12 + 13 + 36 + 1 + 48);
		e = fill_with(&eb, t);
		assert_int_equal(e->len[WP_ALOG_PATH], 512);
		n = wp_alog_format(e, false, buf, sizeof(buf));
		buf[n] = '\0';
		assert_non_null(strstr(buf, "\"GET aaaa"));
		assert_non_null(strstr(buf, "aaaa HTTP/1.1\" 200 - "));
		assert_non_null(strstr(buf, "\" \"details:9080\" "));
		assert_int_equal(strspn(strstr(buf, "GET ") + 4, "a"), 512);
	}
}

/* Control bytes, bytes beyond ASCII, '"' and '\' escaped (text: \xNN;
 * JSON: \" \\ and \u00NN); the date and the addresses follow each entry
 * (the writer remembers the last of each: a new second, a new address, an
 * IPv6 one, and back). */
static void test_escapes_and_memos(void **state)
{
	union entry_buf eb;
	struct wp_alog_text t[WP_ALOG_NTEXT];
	struct wp_alog_entry *e;
	char buf[4096];
	size_t n;

	(void)state;
	fill_text(t);
	t[WP_ALOG_USER_AGENT] = (struct wp_alog_text){"a\x01\xff\\\"z\t", 7};
	e = fill_with(&eb, t);
	n = wp_alog_format(e, false, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, " \"a\\x01\\xff\\x5c\\x22z\\x09\" "));
	n = wp_alog_format(e, true, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, ",\"user_agent\":\"a\\u0001\\u00ff\\\\\\\"z\\u0009\","));
	/* 61.5 s later, from another client, to an IPv6 target */
	e->start_us += 61500000;
	e->remote.v4 = htonl(0x0af40063);
	e->local.family = WP_AF_INET6;
	memset(e->local.v6, 0, sizeof(e->local.v6));
	e->local.v6[0] = 0xfd;
	e->local.v6[15] = 0x0b;
	n = wp_alog_format(e, false, buf, sizeof(buf));
	buf[n] = '\0';
	assert_memory_equal(buf, "[2020-11-25T21:27:19.909Z] ", 27);
	assert_non_null(strstr(buf, " - [fd00::b]:9080 10.244.0.99 - -\n"));
	n = wp_alog_format(e, true, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"start_time\":\"2020-11-25T21:27:19.909Z\""));
	assert_non_null(strstr(buf, "\"downstream_local_address\":\"[fd00::b]:9080\","
	                            "\"downstream_remote_address\":\"10.244.0.99\""));
	/* the same bytes on another port; then the first entry again */
	e->local_port = 15008;
	n = wp_alog_format(e, false, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, " - [fd00::b]:15008 10.244.0.99 - -\n"));
	e = fill(&eb);
	n = wp_alog_format(e, false, buf, sizeof(buf));
	buf[n] = '\0';
	assert_memory_equal(buf, "[2020-11-25T21:26:18.409Z] ", 27);
	assert_non_null(strstr(buf, " - 198.19.0.11:9080 10.244.0.9 - -\n"));
}

static unsigned lines_in(const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned n = 0;
	int c;

	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* A ring of 16 lines' worth holds at least 16 typical entries; one more
 * than fits is dropped and counted, never waited for; what the writer took
 * is room again, across the end of the buffer, and every line comes out
 * whole. */
static void test_ring_bound(void **state)
{
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_alog_ring *r = wp_alog_ring_create(16, ctr);
	struct wp_alog_writer *w;
	struct wp_alog_text t[WP_ALOG_NTEXT];
	struct wp_alog_entry *e;
	union entry_buf eb;
	char path[] = "/tmp/wp-alog-XXXXXX", want[1024], line[1024];
	int fit = 0, fd = mkstemp(path);
	unsigned same = 0;
	FILE *f;

	(void)state;
	assert_non_null(r);
	assert_true(fd >= 0);
	close(fd);
	fill_text(t);
	while ((e = wp_alog_reserve(r, t)) != NULL) {
		fill_fixed(e);
		wp_alog_commit(r);
		fit++;
	}
	assert_true(fit >= 16);
	assert_int_equal(ctr[WP_CTR_ACCESS_LOG_DROPPED], 1);
	assert_null(wp_alog_reserve(r, t));
	assert_int_equal(ctr[WP_CTR_ACCESS_LOG_DROPPED], 2);
	/* the writer drains them: the ring takes five times as many again */
	w = wp_alog_writer_start(&r, 1, path, false);
	assert_non_null(w);
	for (int i = 0; i < 5 * fit; i++) {
		int k = 0;

		while (!(e = wp_alog_reserve(r, t)) && k++ < 2000)
			usleep(1000);
		assert_non_null(e);
		fill_fixed(e);
		wp_alog_commit(r);
	}
	wp_alog_writer_stop(w); /* writes what is left */
	assert_int_equal(lines_in(path), 6 * fit);
	want[wp_alog_format(fill(&eb), false, want, sizeof(want))] = '\0';
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		same += !strcmp(line, want);
	fclose(f);
	assert_int_equal(same, 6 * fit);
	unlink(path);
	wp_alog_ring_destroy(r);
}

static void test_writer(void **state)
{
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_alog_ring *rings[2] = {wp_alog_ring_create(64, ctr),
	                                 wp_alog_ring_create(64, ctr)};
	char path[] = "/tmp/wp-alog-XXXXXX", rotated[64];
	struct wp_alog_writer *w;
	struct wp_alog_text t[WP_ALOG_NTEXT];
	int fd = mkstemp(path);

	(void)state;
	fill_text(t);
	assert_true(fd >= 0);
	close(fd);
	w = wp_alog_writer_start(rings, 2, path, true);
	assert_non_null(w);
	/* 3000 lines from two producers through rings of 64: what does not fit
	 * waits here (a test may wait; a worker would drop) */
	for (int i = 0; i < 3000; i++) {
		struct wp_alog_entry *e;

		while (!(e = wp_alog_reserve(rings[i & 1], t)))
			usleep(100);
		fill_fixed(e);
		wp_alog_commit(rings[i & 1]);
	}
	for (int k = 0; k < 2000 && wp_alog_writer_lines(w) < 3000; k++)
		usleep(1000);
	assert_int_equal(wp_alog_writer_lines(w), 3000);
	/* logrotate: the file is moved away, SIGUSR1 reopens the path */
	snprintf(rotated, sizeof(rotated), "%s.1", path);
	assert_int_equal(rename(path, rotated), 0);
	wp_alog_writer_reopen(w);
	usleep(20000);
	for (int i = 0; i < 10; i++) {
		struct wp_alog_entry *e = wp_alog_reserve(rings[0], t);

		assert_non_null(e);
		fill_fixed(e);
		wp_alog_commit(rings[0]);
	}
	wp_alog_writer_stop(w); /* writes what is left */
	assert_int_equal(lines_in(rotated), 3000);
	assert_int_equal(lines_in(path), 10);
	unlink(path);
	unlink(rotated);
	wp_alog_ring_destroy(rings[0]);
	wp_alog_ring_destroy(rings[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_text_and_json),
	        cmocka_unit_test(test_escapes_and_memos),
	        cmocka_unit_test(test_ring_bound),
	        cmocka_unit_test(test_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
