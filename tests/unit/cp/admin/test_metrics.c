/*
 * The metrics listener and /stats/prometheus (cp/admin/handlers.c on
 * cp/thread/cp.c): 503 until the data path hands over its renderer, then
 * its text with the exposition's content type on the metrics port
 * (/stats/prometheus and /metrics) and on the admin port, the control
 * plane's counters passed in; nothing else on the metrics port; scrapes answered in the same turn
 * of the loop share one rendering; 503 again once the renderer is taken away.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "wp/counters.h"
#include "wp/cp.h"

/* GET path on 127.0.0.1:port; the whole answer into buf. Returns the status. */
static int http_get(uint16_t port, const char *path, char *buf, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	char req[256];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), st = -1;
	ssize_t n;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	             path);
	assert_int_equal(write(fd, req, (size_t)n), n);
	while ((n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	sscanf(buf, "HTTP/1.1 %d", &st);
	return st;
}

static unsigned renders;

static char *render(void *ctx, const uint64_t *cp_ctr, size_t *len)
{
	char *t = malloc(128);

	renders++;
	*len = (size_t)snprintf(t, 128, "# HELP x %s\n# TYPE x counter\nx %llu\n", (char *)ctx,
	                        (unsigned long long)cp_ctr[WP_CTR_ADMIN_REQUEST]);
	return t;
}

static void test_prometheus_endpoints(void **state)
{
	struct wp_cp_config cfg = {
	        .admin_port = 0,
	        .metrics_enabled = true,
	        .metrics_port = 0,
	        .n_workers = 1,
	};
	struct wp_cp *cp = wp_cp_create(&cfg);
	char buf[4096];
	uint16_t mp;

	(void)state;
	assert_non_null(cp);
	assert_int_equal(wp_cp_start(cp), 0);
	mp = wp_cp_metrics_port(cp);
	assert_true(mp != 0 && mp != wp_cp_admin_port(cp));
	assert_int_equal(http_get(mp, "/stats/prometheus", buf, sizeof(buf)), 503);
	wp_cp_set_prometheus(cp, render, "hello");
	assert_int_equal(http_get(mp, "/stats/prometheus", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
	assert_non_null(strstr(buf, "\r\n\r\n# HELP x hello\n# TYPE x counter\nx "));
	assert_int_equal(http_get(mp, "/metrics", buf, sizeof(buf)), 200);
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/stats/prometheus", buf, sizeof(buf)),
	                 200);
	/* the control plane's counters reach the renderer: 3 requests served
	 * before this one (the 503 is counted too) */
	assert_non_null(strstr(buf, "\nx 3\n"));
	assert_int_equal(renders, 3);
	assert_int_equal(http_get(mp, "/config_dump", buf, sizeof(buf)), 404);
	/* two pipelined scrapes are answered in one turn: one rendering */
	assert_int_equal(
	        http_get(mp, "/metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics", buf, sizeof(buf)),
	        200);
	assert_non_null(strstr(strstr(buf, "# HELP x hello") + 1, "# HELP x hello"));
	assert_int_equal(renders, 4);
	wp_cp_set_prometheus(cp, NULL, NULL);
	assert_int_equal(http_get(mp, "/stats/prometheus", buf, sizeof(buf)), 503);
	assert_int_equal(renders, 4);
	wp_cp_destroy(cp);
}

/* metrics.enabled = false: no listener, and the admin port answers 503
 * until a renderer is set. */
static void test_metrics_disabled(void **state)
{
	struct wp_cp_config cfg = {.admin_port = 0, .n_workers = 1};
	struct wp_cp *cp = wp_cp_create(&cfg);
	char buf[4096];

	(void)state;
	assert_non_null(cp);
	assert_int_equal(wp_cp_start(cp), 0);
	assert_int_equal(wp_cp_metrics_port(cp), 0);
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/stats/prometheus", buf, sizeof(buf)),
	                 503);
	wp_cp_destroy(cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_prometheus_endpoints),
	        cmocka_unit_test(test_metrics_disabled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
