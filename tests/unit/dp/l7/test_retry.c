/*
 * The shared retry decision (dp/l7/retry.c): Envoy's retryOn conditions
 * over the compiled bits (resets and per-try timeouts only under reset /
 * 5xx / gateway-error, Istio's default policy), retriable statuses and
 * gRPC statuses, when a request must be held, and the jittered backoff's
 * bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "retry.h"
#include "wp/rand.h"

/* Istio's default policy, as cp/resolve/httproute_compile.c builds it. */
static const struct wp_route_retry istio_default = {
        .attempts = 2,
        .on = WP_ROUTE_RETRY_CONNECT_FAILURE | WP_ROUTE_RETRY_REFUSED_STREAM |
              WP_ROUTE_RETRY_UNAVAILABLE | WP_ROUTE_RETRY_CANCELLED,
        .n_codes = 1,
        .codes = {503},
};

static void test_default_policy(void **state)
{
	const struct wp_route_retry *p = &istio_default;

	(void)state;
	assert_true(wp_retry_on_event(p, WP_RETRY_EV_CONNECT));
	assert_true(wp_retry_on_event(p, WP_RETRY_EV_REFUSED));
	/* a plain reset or a per-try timeout is not retried by default */
	assert_false(wp_retry_on_event(p, WP_RETRY_EV_RESET));
	assert_false(wp_retry_on_event(p, WP_RETRY_EV_TIMEOUT));
	assert_true(wp_retry_on_status(p, 503, -1));
	assert_false(wp_retry_on_status(p, 500, -1));
	assert_false(wp_retry_on_status(p, 502, -1));
	assert_false(wp_retry_on_status(p, 409, -1));
	/* gRPC: unavailable and cancelled, whatever the HTTP status */
	assert_true(wp_retry_on_status(p, 200, 14));
	assert_true(wp_retry_on_status(p, 200, 1));
	assert_false(wp_retry_on_status(p, 200, 13));
	assert_false(wp_retry_on_status(p, 200, 0));
	assert_true(wp_retry_needs_hold(p));
}

static void test_conditions(void **state)
{
	struct wp_route_retry p = {.attempts = 1};

	(void)state;
	p.on = WP_ROUTE_RETRY_5XX;
	assert_true(wp_retry_on_status(&p, 500, -1));
	assert_true(wp_retry_on_status(&p, 599, -1));
	assert_false(wp_retry_on_status(&p, 499, -1));
	assert_true(wp_retry_on_event(&p, WP_RETRY_EV_RESET));
	assert_true(wp_retry_on_event(&p, WP_RETRY_EV_TIMEOUT));
	assert_true(wp_retry_on_event(&p, WP_RETRY_EV_CONNECT));
	assert_true(wp_retry_on_event(&p, WP_RETRY_EV_REFUSED));
	p.on = WP_ROUTE_RETRY_GATEWAY_ERROR;
	assert_false(wp_retry_on_status(&p, 500, -1));
	assert_true(wp_retry_on_status(&p, 502, -1));
	assert_true(wp_retry_on_status(&p, 503, -1));
	assert_true(wp_retry_on_status(&p, 504, -1));
	assert_false(wp_retry_on_status(&p, 505, -1));
	assert_true(wp_retry_on_event(&p, WP_RETRY_EV_RESET));
	p.on = WP_ROUTE_RETRY_RESET;
	assert_false(wp_retry_on_status(&p, 503, -1));
	assert_true(wp_retry_on_event(&p, WP_RETRY_EV_RESET));
	assert_true(wp_retry_on_event(&p, WP_RETRY_EV_TIMEOUT));
	p.on = WP_ROUTE_RETRY_RETRIABLE_4XX;
	assert_true(wp_retry_on_status(&p, 409, -1));
	assert_false(wp_retry_on_status(&p, 429, -1));
	assert_false(wp_retry_on_event(&p, WP_RETRY_EV_CONNECT));
	p.on = WP_ROUTE_RETRY_CONNECT_FAILURE;
	assert_true(wp_retry_on_event(&p, WP_RETRY_EV_CONNECT));
	assert_false(wp_retry_on_event(&p, WP_RETRY_EV_REFUSED));
	assert_false(wp_retry_on_event(&p, WP_RETRY_EV_RESET));
	/* connect-failure alone arises before any byte went out: no hold */
	assert_false(wp_retry_needs_hold(&p));
	p.n_codes = 2;
	p.codes[0] = 429;
	p.codes[1] = 502;
	assert_true(wp_retry_on_status(&p, 429, -1));
	assert_true(wp_retry_on_status(&p, 502, -1));
	assert_false(wp_retry_on_status(&p, 503, -1));
	assert_true(wp_retry_needs_hold(&p));
	p.attempts = 0;
	assert_false(wp_retry_needs_hold(&p));
	p.on = WP_ROUTE_RETRY_DEADLINE | WP_ROUTE_RETRY_INTERNAL | WP_ROUTE_RETRY_RES_EXHAUSTED;
	p.n_codes = 0;
	assert_true(wp_retry_on_status(&p, 200, 4));
	assert_true(wp_retry_on_status(&p, 200, 13));
	assert_true(wp_retry_on_status(&p, 200, 8));
	assert_false(wp_retry_on_status(&p, 200, 14));
	assert_false(wp_retry_on_status(&p, 200, 1));
}

static void test_grpc_status(void **state)
{
	(void)state;
	assert_int_equal(wp_retry_grpc_status("14", 2), 14);
	assert_int_equal(wp_retry_grpc_status(" 1 ", 3), 1);
	assert_int_equal(wp_retry_grpc_status("0", 1), 0);
	assert_int_equal(wp_retry_grpc_status("", 0), -1);
	assert_int_equal(wp_retry_grpc_status("1a", 2), -1);
	assert_int_equal(wp_retry_grpc_status("140", 3), -1);
}

/* Every draw within [0, min((2^n - 1) * base, 10 * base)), and the draws
 * spread over the window (not a constant). */
static void test_backoff(void **state)
{
	struct wp_route_retry p = {.attempts = 5};
	uint64_t r;
	uint32_t lo, hi;

	(void)state;
	wp_rand_seed(&r, 42);
	for (uint32_t n = 1; n <= 12; n++) {
		uint64_t win = n >= 8 ? 250 : ((1ull << n) - 1) * 25;

		if (win > 250)
			win = 250;
		lo = UINT32_MAX;
		hi = 0;
		for (int i = 0; i < 2000; i++) {
			uint32_t d = wp_retry_backoff_ms(&p, n, &r);

			assert_true(d < win);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		assert_true(lo < win / 4 + 1);
		assert_true(hi >= win - win / 4 - 1);
	}
	/* the policy's base: 100 ms, capped at 1 s */
	p.backoff_ms = 100;
	hi = 0;
	for (int i = 0; i < 2000; i++) {
		uint32_t d = wp_retry_backoff_ms(&p, 10, &r);

		assert_true(d < 1000);
		hi = d > hi ? d : hi;
	}
	assert_true(hi >= 900);
	/* the first retry waits less than one base interval */
	for (int i = 0; i < 200; i++)
		assert_true(wp_retry_backoff_ms(&p, 1, &r) < 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_default_policy),
	        cmocka_unit_test(test_conditions),
	        cmocka_unit_test(test_grpc_status),
	        cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
