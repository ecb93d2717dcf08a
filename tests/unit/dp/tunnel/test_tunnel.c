/*
 * The tunnel layer end to end without DPDK (harness in tunnel_harness.h):
 * a TLS + HBONE client CONNECTs through the waypoint's tunnel worker to a
 * plaintext destination, over in-memory TCP stacks.
 *
 *   CONNECT decisions  not captured -> 400; no ready endpoint -> 503;
 *                      a captured Service with a listening pod -> 200 and
 *                      bytes echo both ways; an AuthorizationPolicy that
 *                      denies the client's identity -> 401.
 *   backpressure       a destination that stops reading: the client's
 *                      stream window is not reopened beyond what the
 *                      tunnel queued (bounded by the window it granted);
 *                      flow resumes, every byte in order, when it reads.
 *   teardown           destination RST -> the client's stream is reset;
 *                      client RST_STREAM -> FIN to the destination and
 *                      its connection closed (late bytes get RST);
 *                      tunnels and sessions back to 0 after each test.
 */
#include "tunnel_harness.h"
#include "../../test_pki.h"

/* The worker's gauges as telemetry reads them (read again at each call). */
static const struct wp_telemetry_tunnels *gauges(void)
{
	static struct wp_telemetry_tunnels sum;

	memset(&sum, 0, sizeof(sum));
	wp_tunnel_worker_gauges_add(H.tw, &sum);
	return &sum;
}

static bool no_tunnels(void)
{
	return gauges()->tunnels == 0;
}

/* The client goes away (FIN): the waypoint frees its session and every
 * tunnel; nothing is left on either stack but TIME_WAIT. */
static bool no_sessions(void)
{
	return gauges()->sessions_in == 0 && gauges()->tunnels == 0;
}

static void close_client_and_check(void)
{
	struct wp_tcp_gauges g;

	wp_hbconn_free(H.ch2);
	H.ch2 = NULL;
	wp_tcp_close(H.cc);
	H.cc = NULL;
	if (!pump_until(no_sessions, 3000))
		fail_msg("left: %lu sessions, %lu tunnels", (unsigned long)gauges()->sessions_in,
		         (unsigned long)gauges()->tunnels);
	pump(100);
	wp_tcp_stack_gauges(H.w, &g);
	assert_int_equal(g.conns, 0);
	assert_int_equal(gauges()->queued_bytes, 0);
}

static struct cstream *awaited;

static bool answered(void)
{
	return awaited->status != 0 || awaited->closed;
}

/* A CONNECT answered <status> (0: wait for 200 and the upstream). */
static struct cstream *connect_expect(const char *authority, int status)
{
	struct cstream *cs = cli_connect(authority);

	awaited = cs;
	if (!pump_until(answered, 2000))
		fail_msg("no answer to CONNECT %s", authority);
	assert_int_equal(cs->status, status);
	return cs;
}

static void test_connect_not_captured(void **state)
{
	struct cstream *cs;

	(void)state;
	cs = connect_expect("10.96.0.99:80", 400);
	pump(10);
	assert_true(cs->closed);
	assert_int_equal(H.wctr[WP_CTR_TUNNEL_NOT_CAPTURED], 1);
	assert_false(H.dest.accepted);
	close_client_and_check();
}

static void test_connect_no_endpoint(void **state)
{
	struct cstream *cs;

	(void)state;
	cs = connect_expect("10.96.0.11:80", 503);
	pump(10);
	assert_true(cs->closed);
	assert_int_equal(H.wctr[WP_CTR_TUNNEL_NO_ENDPOINT], 1);
	assert_false(H.dest.accepted);
	close_client_and_check();
}

/* An AuthorizationPolicy on the Service denies the client's identity
 * (productpage): 401, and no connection to the destination. */
static void test_connect_denied(void **state)
{
	struct cstream *cs;

	(void)state;
	publish("apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	        "metadata: {name: no-pp, namespace: app}\nspec:\n  action: DENY\n"
	        "  targetRefs: [{kind: Service, group: \"\", name: echo}]\n  rules:\n"
	        "  - from:\n    - source:\n"
	        "        principals: [\"cluster.local/ns/default/sa/productpage\"]\n");
	pump(2); /* the worker sees the new snapshot */
	cs = connect_expect("10.96.0.10:80", 401);
	pump(10);
	assert_true(cs->closed);
	assert_false(H.dest.accepted);
	/* the empty Service is not covered: still 503 */
	(void)connect_expect("10.96.0.11:80", 503);
	close_client_and_check();
}

static bool cli_stream_closed(void)
{
	return awaited->closed;
}

static bool echoed(void)
{
	return awaited->rxlen >= 11;
}

static void test_connect_echo(void **state)
{
	struct cstream *cs;

	(void)state;
	H.dest.echo = true;
	cs = connect_expect("10.96.0.10:80", 200);
	assert_true(H.dest.accepted); /* 200 only once the upstream is connected */
	assert_int_equal(gauges()->tunnels, 1);
	assert_int_equal(wp_hbstream_write(cs->s, (const uint8_t *)"hello world", 11), 11);
	if (!pump_until(echoed, 2000))
		fail_msg("echo: %zu bytes back", cs->rxlen);
	assert_int_equal(H.dest.rxlen, 11);
	assert_memory_equal(H.dest.rx, "hello world", 11);
	assert_memory_equal(cs->rx, "hello world", 11);
	/* half-close from the client: FIN to the destination, which closes too */
	assert_int_equal(wp_hbstream_shutdown(cs->s), 0);
	awaited = cs;
	if (!pump_until(cli_stream_closed, 2000) || !pump_until(no_tunnels, 1000))
		fail_msg("the tunnel did not end after both FINs");
	assert_true(H.dest.eof);
	assert_true(cs->eof);
	assert_true(cs->closed);
	assert_int_equal(cs->why, WP_HBONE_CLOSE_DONE);
	close_client_and_check();
}

/* Writes as much of <total> as the stream takes; returns the bytes now sent. */
static size_t feed(struct cstream *cs, size_t *written, size_t total)
{
	static uint8_t chunk[16384];

	while (*written < total) {
		size_t n = WP_MIN(sizeof(chunk), total - *written);
		ssize_t w;

		for (size_t i = 0; i < n; i++)
			chunk[i] = (uint8_t)((*written + i) * 7);
		w = wp_hbstream_write(cs->s, chunk, n);
		if (w <= 0)
			break;
		*written += (size_t)w;
	}
	return *written - wp_hbstream_pending(cs->s);
}

static void test_backpressure(void **state)
{
	const size_t total = 2u << 20;
	size_t written = 0, sent = 0, stalled, peak_q = 0;
	struct cstream *cs;

	(void)state;
	cs = connect_expect("10.96.0.10:80", 200);
	H.dest.paused = true;
	for (int i = 0; i < 400; i++) {
		sent = feed(cs, &written, total);
		pump(1);
		peak_q = WP_MAX(peak_q, gauges()->queued_bytes);
	}
	stalled = sent;
	/* Nothing moves any more: the window was not reopened past the queue. */
	for (int i = 0; i < 400; i++) {
		sent = feed(cs, &written, total);
		pump(1);
		peak_q = WP_MAX(peak_q, gauges()->queued_bytes);
	}
	assert_int_equal(sent, stalled);
	assert_true(stalled < total / 4);
	/* What the tunnel holds is bounded by the stream window it granted. */
	assert_true(peak_q > 0);
	assert_true(peak_q <= H.cfg.hbone.stream_window);
	assert_int_equal(H.dest.rxlen, 0);

	/* The destination reads again: every byte arrives, in order. */
	H.dest.paused = false;
	wp_tcp_recv_resume(H.dest.c);
	for (int i = 0; i < 20000 && H.dest.rxlen < total; i++) {
		(void)feed(cs, &written, total);
		if (H.dest.c != NULL)
			wp_tcp_recv_resume(H.dest.c);
		pump(1);
	}
	assert_int_equal(H.dest.rxlen, total);
	for (size_t i = 0; i < sizeof(H.dest.rx); i++)
		if (H.dest.rx[i] != (uint8_t)(i * 7))
			fail_msg("byte %zu differs", i);
	assert_int_equal(gauges()->queued_bytes, 0);
	close_client_and_check();
}

static void test_dest_reset(void **state)
{
	struct cstream *cs;

	(void)state;
	cs = connect_expect("10.96.0.10:80", 200);
	assert_non_null(H.dest.c);
	wp_tcp_abort(H.dest.c); /* RST */
	H.dest.c = NULL;
	awaited = cs;
	if (!pump_until(cli_stream_closed, 2000))
		fail_msg("the client's stream outlived its upstream's RST");
	assert_int_equal(cs->why, WP_HBONE_CLOSE_RESET);
	assert_false(cs->eof); /* a reset, not an orderly end */
	if (!pump_until(no_tunnels, 1000))
		fail_msg("the tunnel outlived both its ends");
	close_client_and_check();
}

static bool dest_gone(void)
{
	return H.dest.closed;
}

static bool dest_saw_eof(void)
{
	return H.dest.eof;
}

/* RST_STREAM CANCEL reads as EOF towards the destination, but nothing can
 * go back on a reset stream: the tunnel closes the upstream, so bytes the
 * destination still sends are refused (RST), not swallowed. */
static void test_client_reset(void **state)
{
	struct cstream *cs;

	(void)state;
	H.dest.linger = true;
	cs = connect_expect("10.96.0.10:80", 200);
	assert_int_equal(wp_hbstream_reset(cs->s, 0x8 /* CANCEL */), 0);
	if (!pump_until(dest_saw_eof, 2000))
		fail_msg("no FIN to the destination after the client's RST_STREAM");
	if (!pump_until(no_tunnels, 1000))
		fail_msg("the tunnel outlived the client's RST_STREAM");
	assert_int_equal(H.wctr[WP_CTR_TUNNEL_DOWNSTREAM_RESET], 1);
	assert_int_equal(wp_tcp_send(H.dest.c, "late", 4), 4);
	if (!pump_until(dest_gone, 2000))
		fail_msg("the destination's late bytes were swallowed");
	assert_int_equal(H.dest.why, WP_TCP_CLOSE_RESET);
	close_client_and_check();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_connect_not_captured, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_connect_no_endpoint, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_connect_echo, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_connect_denied, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_dest_reset, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_client_reset, setup, teardown),
	};
	int rc;

	if (test_pki_make(argc, argv, "tunnel", pki, sizeof(pki)) != 0)
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	return test_pki_remove(pki, rc);
}
