/*
 * Retries on the HTTP/1.1 proxy (dp/l7/h1p_retry.c, h1proxy.c) against the
 * fake host of h1p_harness.h: a retriable status is never shown to the
 * client, the held request (head and body) is sent again byte for byte
 * with the next x-envoy-attempt-count after a backoff that runs on the
 * core's clock, tries stop at 1 + attempts with the last failure answered,
 * Istio's default policy leaves a reset alone while a route naming `reset`
 * retries it, a per-try timeout is retried under such a route, and a body
 * beyond the replay buffer is sent on without a retry.
 */
#include "h1p_harness.h"

static const char *const rules = "  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
                                 "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
                                 "  - matches: [{path: {type: PathPrefix, value: /hr}}]\n"
                                 "    retry: {attempts: 1, codes: [500]}\n"
                                 "    timeouts: {backendRequest: 300ms}\n"
                                 "    backendRefs: [{name: reviews-v1, port: 9080}]\n";

static const char *const r503 = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nno";
static const char *const r200 = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
static uint64_t now;

/* The next try after its backoff: nothing before the clock reaches it,
 * a new connection at most 250 ms (10 x the 25 ms base) later. */
static struct wp_h1p_up *next_try(struct wp_h1p_sess *s)
{
	assert_null(wp_h1p_sess_up(s));
	for (int i = 0; i < 260 && !wp_h1p_sess_up(s); i++)
		wp_h1p_core_clock(core, ++now);
	assert_non_null(wp_h1p_sess_up(s));
	wp_h1p_up_connected(wp_h1p_sess_up(s));
	return wp_h1p_sess_up(s);
}

static void test_status_replayed(void **state)
{
	const char *req = "POST /v1 HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\nhello";
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	char first[4096], *u;

	(void)state;
	mk_core(NULL, rules);
	now = 1000;
	wp_h1p_core_clock(core, now);
	s = sess_open();
	down_all(s, req);
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	strcpy(first, take_up(up));
	assert_non_null(strstr(first, "\r\nx-envoy-attempt-count: 1\r\n\r\nhello"));
	/* the 503 goes nowhere: its connection is closed */
	up_all(up, r503);
	assert_string_equal(take_down(s), "");
	assert_int_equal(n_close, 1);
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY_STATUS], 1);
	/* the backoff has not run out at once */
	wp_h1p_core_clock(core, now);
	assert_null(wp_h1p_sess_up(s));
	up = next_try(s);
	u = take_up(up);
	/* the same bytes but the attempt count */
	assert_non_null(strstr(u, "\r\nx-envoy-attempt-count: 2\r\n\r\nhello"));
	assert_int_equal(strlen(u), strlen(first));
	assert_true(strncmp(u, first, strstr(first, "x-envoy-attempt-count") - first) == 0);
	up_all(up, r200);
	assert_string_equal(take_down(s), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
	/* keep-alive: the next request on the same session is a first try */
	down_all(s, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	assert_non_null(strstr(take_up(up), "x-envoy-attempt-count: 1\r\n"));
	up_all(up, r200);
	take_down(s);
	/* always 503: 1 + 2 tries, the last 503 answered (URX) */
	down_all(s, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	take_up(up);
	up_all(up, r503);
	for (int k = 2; k <= 3; k++) {
		char want[64];

		up = next_try(s);
		snprintf(want, sizeof(want), "x-envoy-attempt-count: %d\r\n", k);
		assert_non_null(strstr(take_up(up), want));
		up_all(up, r503);
	}
	assert_string_equal(take_down(s),
	                    "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\nno");
	assert_null(wp_h1p_sess_up(s)); /* the failure was answered: no 4th try */
	wp_h1p_core_clock(core, now + 1000);
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY_EXHAUSTED], 1);
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY], 3);
	wp_h1p_sess_close(s);
}

static void test_reset_and_timeout(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;

	(void)state;
	mk_core(NULL, rules);
	now = 1000;
	wp_h1p_core_clock(core, now);
	/* the default policy does not retry a reset: 502 */
	s = sess_open();
	down_all(s, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	wp_h1p_up_eof(up);
	assert_true(strncmp(take_down(s), "HTTP/1.1 502 ", 13) == 0);
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY_RESET], 0);
	wp_h1p_sess_close(s);
	/* an HTTPRoute retry: its code 500 retried, the default 503 not */
	s = sess_open();
	down_all(s, "GET /hr HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	up_all(up, "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
	up = next_try(s);
	take_up(up);
	up_all(up, r503);
	assert_true(strncmp(take_down(s), "HTTP/1.1 503 ", 13) == 0);
	/* per-try timeout (backendRequest 300ms), not retried by this policy
	 * (no reset / 5xx / gateway-error): 504 */
	down_all(s, "GET /hr HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	now += 301;
	wp_h1p_core_tick(core, now);
	assert_true(strncmp(take_down(s), "HTTP/1.1 504 ", 13) == 0);
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY_TIMEOUT], 0);
	wp_h1p_sess_close(s);
}

/* A body beyond the replay buffer streams on: its failure is answered. */
static void test_body_too_big(void **state)
{
	static char body[100000];
	char head[128];
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	size_t off = 0;

	(void)state;
	mk_core(NULL, rules);
	memset(body, 'b', sizeof(body));
	s = sess_open();
	snprintf(head, sizeof(head), "POST /v1 HTTP/1.1\r\nHost: r\r\nContent-Length: %zu\r\n\r\n",
	         sizeof(body));
	down_all(s, head);
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	for (int i = 0; i < 1000 && off < sizeof(body); i++) {
		off += wp_h1p_down_in(s, (const uint8_t *)body + off, sizeof(body) - off);
		take_up(up);
	}
	assert_int_equal(off, sizeof(body));
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY_BODY_TOO_BIG], 1);
	up_all(up, r503);
	assert_true(strncmp(take_down(s), "HTTP/1.1 503 ", 13) == 0);
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY_NOT_HELD], 1);
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY], 0);
	wp_h1p_sess_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_status_replayed, teardown),
	        cmocka_unit_test_teardown(test_reset_and_timeout, teardown),
	        cmocka_unit_test_teardown(test_body_too_big, teardown),
	};

	(void)std_rules; /* the harness's, not these tests' */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
