/*
 * h2c / gRPC proxy session (dp/l7/h2proxy.c) between real nghttp2 peers:
 * the test's nghttp2 client session plays the downstream client, one
 * nghttp2 server session per upstream connection the proxy opens plays
 * the backend, and a pump moves the bytes. Route tables are compiled from
 * HTTPRoute YAML by the real compiler over fake endpoints (as in
 * test_h1proxy.c). Covers routing to the right backend, header modifiers
 * and URL rewrite, redirects, multiplexing many streams on one upstream
 * connection (and a second one when the backend's
 * SETTINGS_MAX_CONCURRENT_STREAMS is reached), trailers both ways, resets
 * both ways, local replies in HTTP and gRPC forms, connection-specific
 * headers refused, the header block limit (431), flow control stall and
 * resume, upstream connection loss and GOAWAY (refused streams retried),
 * idle expiry, one Istio metrics record per stream. The client side and the harness are in
 * h2c_fixture.h (shared with test_h2p_h1up.c).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"
#include "h2proxy.h"
#include "wp/counters.h"
#include "wp/model.h"
#include "wp/route.h"
#include "wp/snapshot_types.h"

#include "authz_fixture.h"
#include "h2c_fixture.h"

/* ---- route fixture (as test_h1proxy.c; the services in h2c_backend.h) ------------------ */

static const char *std_rules =
        "  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /go}}]\n"
        "    filters:\n    - type: RequestRedirect\n      requestRedirect:\n"
        "        hostname: other.example\n        statusCode: 301\n"
        "  - matches: [{path: {type: PathPrefix, value: /mods}}]\n"
        "    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n"
        "        set: [{name: X-Set, value: s}]\n        remove: [x-drop]\n"
        "    - type: ResponseHeaderModifier\n      responseHeaderModifier:\n"
        "        add: [{name: X-Resp, value: r}]\n"
        "    - type: URLRewrite\n      urlRewrite:\n"
        "        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}\n"
        "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /none}}]\n"
        "    backendRefs: [{name: empty, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /missing}}]\n"
        "    backendRefs: [{name: nosuch, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /r}}]\n"
        "    backendRefs: [{name: reviews, port: 9080}]\n";

#include "h2c_backend.h"

/* ---- tests ------------------------------------------------------------------------------ */

static void test_route_and_mods(void **state)
{
	static const nghttp2_nv x[] = {
	        {(uint8_t *)"x-drop", (uint8_t *)"d", 6, 1, 0},
	        {(uint8_t *)"x-keep", (uint8_t *)"k", 6, 1, 0},
	};
	struct cresp *r;
	int32_t a, b;

	(void)state;
	mk(NULL, std_rules);
	a = req("GET", "/v1/x", false, NULL, NULL, 0);
	b = req("POST", "/mods/a?q=1", false, "hello", x, 2);
	pump();
	assert_int_equal(n_fup, 2);
	assert_int_equal(n_breq, 2);
	for (int i = 0; i < 2; i++) {
		struct breq *br = &breqs[i];

		assert_true(br->ended);
		assert_true(br->has_reqid);
		if (!strcmp(br->path, "/v1/x")) {
			assert_int_equal(ep_net(br->fup), 2);
			assert_string_equal(br->xset, "");
		} else {
			assert_string_equal(br->path, "/new/a?q=1");
			assert_int_equal(ep_net(br->fup), 3);
			assert_string_equal(br->xset, "s");
			assert_string_equal(br->xdrop, "");
			assert_int_equal(br->body, 5);
		}
		assert_string_equal(br->authority, "reviews:9080");
	}
	r = cresp_of(a);
	assert_int_equal(r->status, 200);
	assert_true(r->closed);
	assert_int_equal(r->code, 0);
	assert_int_equal(r->body, 2);
	assert_string_equal(r->xresp, "");
	r = cresp_of(b);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->xresp, "r");
	assert_int_equal(ctr[WP_CTR_L7_H2P_REQUEST], 2);
	assert_int_equal(wp_h2p_core_streams(core), 0);
	assert_int_equal(wp_h2p_sess_streams(sess), 0);
}

static void test_multiplex(void **state)
{
	(void)state;
	mk(NULL, std_rules);
	for (int i = 0; i < 50; i++)
		req("GET", "/v1/m", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_fup, 1); /* one connection carried all 50 */
	assert_int_equal(n_breq, 50);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(cresps[i].status, 200);
		assert_true(cresps[i].closed);
	}
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_NEW], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_SHARED], 49);
	/* the connection is idle now; a second wave reuses it */
	for (int i = 0; i < 10; i++)
		req("GET", "/v1/m", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_fup, 1);
	assert_int_equal(n_breq, 60);
	/* idle expiry */
	assert_int_equal(wp_h2p_core_tick(core, 1000), 0);
	assert_int_equal(wp_h2p_core_tick(core, 1000 + 60000), 1);
	assert_true(fups[0].c.closed);
	assert_int_equal(wp_h2p_core_upstreams(core), 0);
}

static void test_multiplex_limit(void **state)
{
	(void)state;
	mk(NULL, std_rules);
	be_max_streams = 4;
	be_hold = true;
	/* the first request opens the connection and learns its limit */
	req("GET", "/v1/a", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_fup, 1);
	for (int i = 0; i < 9; i++)
		req("GET", "/v1/b", false, NULL, NULL, 0);
	pump();
	/* 10 streams, at most 4 per connection */
	assert_int_equal(n_fup, 3);
	assert_int_equal(n_breq, 10);
	for (int i = 0; i < n_breq; i++)
		be_respond(&breqs[i]);
	pump();
	for (int i = 0; i < 10; i++)
		assert_int_equal(cresps[i].status, 200);
}

static void test_grpc_trailers(void **state)
{
	struct cresp *r;

	(void)state;
	mk(NULL, std_rules);
	be_trailers = true;
	be_body = 100000; /* more than one window: flow control on the way */
	req("POST", "/v1/pkg.Svc/Call", true, "\0\0\0\0\0", NULL, 0);
	pump();
	r = &cresps[0];
	assert_int_equal(r->status, 200);
	assert_int_equal(r->body, 100000);
	assert_true(r->trailers);
	assert_string_equal(r->grpc_status, "7");
	assert_string_equal(r->grpc_message, "denied%20here");
	assert_true(r->closed);
	assert_int_equal(r->code, 0);
	assert_string_equal(breqs[0].te, "trailers");
}

static void test_request_trailers(void **state)
{
	static const nghttp2_nv trl[] = {{(uint8_t *)"x-trl", (uint8_t *)"tv", 5, 2, 0}};
	nghttp2_nv nv[] = {
	        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
	        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
	        {(uint8_t *)":authority", (uint8_t *)"reviews:9080", 10, 12, 0},
	        {(uint8_t *)":path", (uint8_t *)"/v1/t", 5, 5, 0},
	};
	int32_t sid;

	(void)state;
	mk(NULL, std_rules);
	sid = nghttp2_submit_headers(cl, NGHTTP2_FLAG_NONE, -1, NULL, nv, 4, NULL);
	assert_true(sid > 0);
	memset(&cresps[0], 0, sizeof(cresps[0]));
	cresps[n_cresp++].sid = sid;
	pump();
	assert_int_equal(n_breq, 1);
	assert_false(breqs[0].ended);
	assert_int_equal(nghttp2_submit_trailer(cl, sid, trl, 1), 0);
	pump();
	assert_true(breqs[0].ended);
	assert_string_equal(breqs[0].trailer, "tv");
	assert_int_equal(cresps[0].status, 200);
}

static void test_resets(void **state)
{
	int32_t a, b, c;

	(void)state;
	mk(NULL, std_rules);
	be_hold = true;
	a = req("GET", "/v1/a", false, NULL, NULL, 0);
	b = req("GET", "/v1/b", false, NULL, NULL, 0);
	c = req("GET", "/v1/c", true, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 3);
	/* client cancels a: the backend sees CANCEL */
	assert_int_equal(nghttp2_submit_rst_stream(cl, NGHTTP2_FLAG_NONE, a, NGHTTP2_CANCEL), 0);
	pump();
	assert_true(breq_of(0, breqs[0].sid)->reset);
	assert_int_equal(breqs[0].reset_code, NGHTTP2_CANCEL);
	assert_int_equal(ctr[WP_CTR_L7_H2P_DOWN_RESET], 1);
	/* the backend resets b before answering: 503; c after its head: reset */
	assert_int_equal(nghttp2_submit_rst_stream(fups[0].ng, NGHTTP2_FLAG_NONE, breqs[1].sid,
	                                           NGHTTP2_INTERNAL_ERROR),
	                 0);
	be_body = 100;
	be_respond(&breqs[2]);
	breqs[2].resp_left = 1000000; /* does not end before the reset */
	cl_no_consume = true;
	pump();
	assert_int_equal(nghttp2_submit_rst_stream(fups[0].ng, NGHTTP2_FLAG_NONE, breqs[2].sid,
	                                           NGHTTP2_ENHANCE_YOUR_CALM),
	                 0);
	pump();
	assert_int_equal(cresp_of(b)->status, 503);
	assert_true(cresp_of(b)->closed);
	assert_int_equal(cresp_of(b)->code, 0);
	assert_int_equal(cresp_of(c)->status, 200);
	assert_true(cresp_of(c)->closed);
	assert_int_equal(cresp_of(c)->code, NGHTTP2_ENHANCE_YOUR_CALM);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_RESET], 2);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

static void test_local_replies(void **state)
{
	int32_t s[8];

	(void)state;
	mk(NULL, std_rules);
	s[0] = req("GET", "/go/x?a=b", false, NULL, NULL, 0);
	s[1] = req("GET", "/none", false, NULL, NULL, 0);
	s[2] = req("POST", "/none/pkg.S/M", true, "xxxxx", NULL, 0);
	s[3] = req("GET", "/missing", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 0);
	assert_int_equal(cresp_of(s[0])->status, 301);
	assert_string_equal(cresp_of(s[0])->location, "http://other.example:9080/go/x?a=b");
	assert_int_equal(cresp_of(s[1])->status, 503);
	assert_int_equal(cresp_of(s[2])->status, 200);
	assert_string_equal(cresp_of(s[2])->grpc_status, "14");
	assert_int_equal(cresp_of(s[2])->body, 0);
	assert_int_equal(cresp_of(s[3])->status, 500);
	for (int i = 0; i < 4; i++)
		assert_true(cresp_of(s[i])->closed);
	assert_int_equal(ctr[WP_CTR_L7_H2P_REDIRECT], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_NO_ENDPOINT], 2);
	assert_int_equal(ctr[WP_CTR_L7_H2P_LOCAL_GRPC], 1);
	/* connect failure: 503, gRPC UNAVAILABLE */
	fail_open = 1;
	s[4] = req("GET", "/v1/x", false, NULL, NULL, 0);
	s[5] = req("GET", "/v1/x", true, NULL, NULL, 0);
	pump();
	assert_int_equal(cresp_of(s[4])->status, 503);
	assert_string_equal(cresp_of(s[5])->grpc_status, "14");
	assert_true(ctr[WP_CTR_L7_H2P_CONNECT_FAILED] >= 2);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

static void test_no_route(void **state)
{
	int32_t a, b;

	(void)state;
	mk(NULL, "  - matches: [{path: {type: Exact, value: /only}}]\n"
	         "    backendRefs: [{name: reviews, port: 9080}]\n");
	a = req("GET", "/other", false, NULL, NULL, 0);
	b = req("POST", "/pkg.S/M", true, NULL, NULL, 0);
	pump();
	assert_int_equal(cresp_of(a)->status, 404);
	assert_int_equal(cresp_of(b)->status, 200);
	assert_string_equal(cresp_of(b)->grpc_status, "12");
	assert_int_equal(ctr[WP_CTR_L7_H2P_NO_ROUTE], 2);
	assert_int_equal(n_fup, 0);
}

static void test_conn_header_refused(void **state)
{
	static const nghttp2_nv x[] = {
	        {(uint8_t *)"connection", (uint8_t *)"keep-alive", 10, 10, NGHTTP2_NV_FLAG_NONE}};
	int32_t a, b;

	(void)state;
	mk(NULL, std_rules);
	a = req("GET", "/v1/a", false, NULL, x, 1);
	b = req("GET", "/v1/b", false, NULL, NULL, 0);
	pump();
	assert_true(cresp_of(a)->closed);
	assert_int_equal(cresp_of(a)->status, 0);
	assert_int_not_equal(cresp_of(a)->code, 0);
	assert_int_equal(cresp_of(b)->status, 200);
	assert_int_equal(n_breq, 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_INVALID_HEADER], 1);
}

static void test_flow_control(void **state)
{
	struct wp_h2p_cfg cfg = wp_h2p_default_cfg;
	struct cresp *r;
	size_t before;

	(void)state;
	cfg.stream_buf = 65536;
	mk(&cfg, std_rules);
	be_body = 2 * 1024 * 1024;
	cl_no_consume = true; /* the client reads nothing */
	req("GET", "/v1/big", false, NULL, NULL, 0);
	pump();
	r = &cresps[0];
	assert_int_equal(r->status, 200);
	/* the client's window (64 KiB) and the proxy's ring (64 KiB) hold it */
	assert_true(r->body <= 65535);
	before = breqs[0].resp_left;
	assert_true(be_body - before <= 65535 + 65536 + 16384);
	assert_false(r->closed);
	pump();
	assert_int_equal(breqs[0].resp_left, before); /* stalled: nothing moves */
	/* the client reads: everything flows */
	cl_no_consume = false;
	assert_int_equal(nghttp2_session_consume(cl, r->sid, r->body), 0);
	pump();
	for (int i = 0; i < 200 && !r->closed; i++)
		pump();
	assert_true(r->closed);
	assert_int_equal(r->body, be_body);
	assert_int_equal(r->code, 0);
	assert_int_equal(ctr[WP_CTR_L7_H2P_BUF_OVERRUN], 0);
}

static void test_upload_flow_control(void **state)
{
	static char big[300000];
	struct cresp *r;

	(void)state;
	mk(NULL, std_rules);
	memset(big, 'u', sizeof(big) - 1);
	req("POST", "/v1/up", false, big, NULL, 0);
	pump();
	r = &cresps[0];
	assert_int_equal(breqs[0].body, sizeof(big) - 1);
	assert_int_equal(r->status, 200);
	assert_true(r->closed);
}

static void test_up_lost(void **state)
{
	int32_t a, b;

	(void)state;
	mk(NULL, std_rules);
	be_hold = true;
	a = req("GET", "/v1/a", false, NULL, NULL, 0);
	b = req("GET", "/v1/b", true, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 2);
	fups[0].c.failed = true;
	wp_h2p_up_failed(fups[0].c.up);
	pump();
	assert_int_equal(cresp_of(a)->status, 503);
	assert_string_equal(cresp_of(b)->grpc_status, "14");
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_LOST], 1);
	assert_int_equal(wp_h2p_core_streams(core), 0);
	assert_int_equal(wp_h2p_core_upstreams(core), 0);
}

static void test_connect_failure_retry(void **state)
{
	(void)state;
	mk(NULL, std_rules);
	hold_connect = true;
	req("GET", "/r/a", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_fup, 1);
	/* the connect fails: the request goes to the other endpoint */
	fups[0].c.failed = true;
	wp_h2p_up_failed(fups[0].c.up);
	hold_connect = false;
	pump();
	assert_int_equal(n_fup, 2);
	assert_int_not_equal(fups[0].c.ep.addr.v4, fups[1].c.ep.addr.v4);
	assert_int_equal(cresps[0].status, 200);
	assert_int_equal(ctr[WP_CTR_L7_H2P_RETRY], 1);
}

static void test_goaway_retry(void **state)
{
	(void)state;
	mk(NULL, std_rules);
	be_hold = true;
	req("GET", "/v1/a", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 1);
	/* the backend goes away having processed nothing: the stream is
	 * refused and retried on a new connection */
	assert_int_equal(
	        nghttp2_submit_goaway(fups[0].ng, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0),
	        0);
	be_hold = false;
	pump();
	assert_int_equal(n_fup, 2);
	assert_true(fups[0].c.closed);
	assert_int_equal(cresps[0].status, 200);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_GOAWAY], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_REFUSED], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_RETRY], 1);
}

/* Istio's default policy retries a trailers-only grpc-status 14: the
 * request message replayed after a backoff on the core's clock, the
 * client seeing nothing of the failed tries; always 14: 1 + 2 tries, the
 * last answer passed on. */
static void test_grpc_unavailable_retry(void **state)
{
	uint64_t now = 1000;

	(void)state;
	mk(NULL, std_rules);
	be_trailers_only = true;
	memcpy(be_grpc, "14", 3);
	req("POST", "/v1/svc.S/M", true, "message-bytes", NULL, 0);
	wp_h2p_core_clock(core, now);
	pump();
	assert_int_equal(n_breq, 1);
	assert_int_equal(cresps[0].status, 0); /* nothing downstream yet */
	for (int want = 2; want <= 3; want++) {
		for (int i = 0; i < 260 && n_breq < want; i++) {
			wp_h2p_core_clock(core, ++now);
			pump();
		}
		assert_int_equal(n_breq, want);
		assert_int_equal(breqs[want - 1].body, breqs[0].body); /* replayed */
	}
	assert_int_equal(breqs[0].body, 13);
	assert_int_equal(cresps[0].status, 200);
	assert_string_equal(cresps[0].grpc_status, "14");
	assert_true(cresps[0].closed);
	assert_int_equal(ctr[WP_CTR_L7_H2P_RETRY_STATUS], 2);
	assert_int_equal(ctr[WP_CTR_L7_H2P_RETRY_EXHAUSTED], 1);
	/* the second call: 14 once, then the answer */
	memcpy(be_grpc, "12", 3);
	be_trailers_only = false;
	n_breq = 0;
	req("POST", "/v1/svc.S/M", true, "m", NULL, 0);
	pump();
	assert_int_equal(cresps[1].status, 200);
	assert_int_equal(n_breq, 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_RETRY_STATUS], 2);
}

static void test_session_close_cancels(void **state)
{
	(void)state;
	mk(NULL, std_rules);
	be_hold = true;
	for (int i = 0; i < 5; i++)
		req("GET", "/v1/a", false, "body", NULL, 0);
	pump();
	assert_int_equal(n_breq, 5);
	wp_h2p_sess_close(sess);
	sess = NULL;
	assert_int_equal(wp_h2p_core_streams(core), 0);
	/* the upstream gets its RST_STREAMs */
	for (int i = 0; i < n_fup; i++) {
		const uint8_t *p;
		size_t k;

		while ((k = wp_h2p_up_peek(fups[i].c.up, &p)) > 0) {
			assert_int_equal(nghttp2_session_mem_recv(fups[i].ng, p, k), (ssize_t)k);
			wp_h2p_up_consume(fups[i].c.up, k);
		}
	}
	for (int i = 0; i < 5; i++)
		assert_true(breqs[i].reset);
}

static void test_header_limit(void **state)
{
	struct wp_h2p_cfg cfg = wp_h2p_default_cfg;
	static char big[600];
	nghttp2_nv x[] = {{(uint8_t *)"x-big", (uint8_t *)big, 5, sizeof(big) - 1, 0}};
	int32_t a, b, c;

	(void)state;
	cfg.max_header_bytes = 512;
	cfg.max_headers = 16;
	mk(&cfg, std_rules);
	memset(big, 'b', sizeof(big) - 1);
	a = req("GET", "/v1/a", false, NULL, x, 1);
	b = req("GET", "/v1/b", true, NULL, x, 1);
	c = req("GET", "/v1/c", false, NULL, NULL, 0);
	pump();
	assert_int_equal(cresp_of(a)->status, 431);
	assert_int_equal(cresp_of(b)->status, 200); /* gRPC form */
	assert_string_equal(cresp_of(b)->grpc_status, "2");
	assert_int_equal(cresp_of(c)->status, 200);
	assert_int_equal(n_breq, 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_HEADER_TOO_BIG], 2);
}

static void test_preface(void **state)
{
	(void)state;
	assert_true(wp_h2p_is_preface((const uint8_t *)"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nxx", 26));
	assert_true(wp_h2p_is_preface((const uint8_t *)"PRI * HT", 8));
	assert_false(wp_h2p_is_preface((const uint8_t *)"GET / HTTP/1.1\r\n", 16));
	assert_false(wp_h2p_is_preface((const uint8_t *)"PR", 2));
}

/* Rapid reset: a client that opens and resets streams faster than
 * rst_per_sec loses the session (GOAWAY ENHANCE_YOUR_CALM); one below
 * the limit does not. */
static void test_rapid_reset(void **state)
{
	struct wp_h2p_cfg cfg = wp_h2p_default_cfg;
	const uint8_t *p;

	(void)state;
	cfg.rst_per_sec = 20;
	mk(&cfg, std_rules);
	be_hold = true;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 10; i++) {
			int32_t sid = req("GET", "/v1/r", false, NULL, NULL, 0);

			pump();
			assert_int_equal(nghttp2_submit_rst_stream(cl, NGHTTP2_FLAG_NONE, sid,
			                                           NGHTTP2_CANCEL),
			                 0);
			pump();
		}
		/* 10 then 20 resets within one second: still under the limit */
		assert_int_equal(ctr[WP_CTR_L7_H2P_RAPID_RESET], 0);
	}
	assert_false(wp_h2p_down_finished(sess));
	{
		int32_t sid = req("GET", "/v1/r", false, NULL, NULL, 0);

		pump();
		assert_int_equal(
		        nghttp2_submit_rst_stream(cl, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL), 0);
		pump();
	}
	assert_int_equal(ctr[WP_CTR_L7_H2P_RAPID_RESET], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_DOWN_PROTOCOL], 0);
	assert_int_equal(wp_h2p_down_peek(sess, &p), 0);
	assert_true(wp_h2p_down_finished(sess));
	assert_int_equal(cl_goaway_code, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* HTTPRoute timeouts on h2 streams: a backend that does not answer in
 * time gives 504 (a gRPC call: UNAVAILABLE, trailers-only) and its stream
 * is cancelled upstream; one answered in time is untouched. */
static void test_timeouts(void **state)
{
	int32_t a, g, ok;

	(void)state;
	mk(NULL, "  - matches: [{path: {type: PathPrefix, value: /slow}}]\n"
	         "    timeouts: {request: 2s}\n"
	         "    backendRefs: [{name: reviews-v1, port: 9080}]\n");
	wp_h2p_core_tick(core, 10000);
	be_hold = true;
	a = req("GET", "/slow/a", false, NULL, NULL, 0);
	g = req("POST", "/slow/g", true, "x", NULL, 0);
	ok = req("GET", "/slow/ok", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 3);
	be_respond(&breqs[2]);
	pump();
	assert_int_equal(cresp_of(ok)->status, 200);
	/* 2 s and the millisecond the clock may lag: not yet at 12000 */
	wp_h2p_core_tick(core, 12000);
	pump();
	assert_int_equal(ctr[WP_CTR_L7_H2P_TIMEOUT], 0);
	wp_h2p_core_tick(core, 12001);
	pump();
	assert_int_equal(ctr[WP_CTR_L7_H2P_TIMEOUT], 2);
	assert_int_equal(cresp_of(a)->status, 504);
	assert_true(cresp_of(a)->closed);
	assert_int_equal(cresp_of(g)->status, 200);
	assert_string_equal(cresp_of(g)->grpc_status, "14");
	assert_string_equal(cresp_of(g)->grpc_message, "upstream request timeout");
	assert_true(breqs[0].reset);
	assert_int_equal(breqs[0].reset_code, NGHTTP2_CANCEL);
	assert_true(breqs[1].reset);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

/* A client connection is closed (GOAWAY NO_ERROR) once it has had no
 * stream for down_idle_timeout_ms; an open stream keeps it. */
static void test_client_idle_timeout(void **state)
{
	struct wp_h2p_cfg cfg = wp_h2p_default_cfg;
	int32_t a;

	(void)state;
	cfg.down_idle_timeout_ms = 5000;
	mk(&cfg, std_rules);
	be_hold = true;
	a = req("GET", "/v1/a", false, NULL, NULL, 0);
	pump();
	wp_h2p_core_tick(core, 9000); /* a stream is open */
	pump();
	assert_false(wp_h2p_down_finished(sess));
	wp_h2p_core_clock(core, 9000);
	be_respond(&breqs[0]);
	pump();
	assert_true(cresp_of(a)->closed);
	wp_h2p_core_tick(core, 13999); /* idle since 9000 */
	pump();
	assert_false(wp_h2p_down_finished(sess));
	wp_h2p_core_tick(core, 14000);
	pump();
	assert_int_equal(ctr[WP_CTR_L7_H2P_DOWN_IDLE_TIMEOUT], 1);
	assert_true(wp_h2p_down_finished(sess));
	assert_int_equal(cl_goaway_code, NGHTTP2_NO_ERROR);
}

static const char *mirror_rules = "  - matches: [{path: {type: PathPrefix, value: /m}}]\n"
                                  "    filters:\n    - type: RequestMirror\n      requestMirror:\n"
                                  "        backendRef: {name: reviews-v3, port: 9080}\n"
                                  "    backendRefs: [{name: reviews-v1, port: 9080}]\n";

/* The last request a backend of 10.0.<net>.x saw (reviews-v1: 2, the
 * mirror cluster reviews-v3: 4), NULL if none. */
static struct breq *breq_net(uint32_t net)
{
	for (int i = n_breq - 1; i >= 0; i--)
		if (ep_net(breqs[i].fup) == net)
			return &breqs[i];
	return NULL;
}

/* A POST /m... whose head goes out without END_STREAM, then <body> (not
 * ending the stream either). */
static int32_t open_post(const char *path, const char *body)
{
	nghttp2_nv nv[] = {
	        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, 0},
	        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
	        {(uint8_t *)":authority", (uint8_t *)"reviews:9080", 10, 12, 0},
	        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
	        {(uint8_t *)"x-request-id", (uint8_t *)"rid-0123", 12, 8, 0},
	};
	nghttp2_data_provider prd = {.read_callback = cl_read};
	int32_t sid;

	sid = nghttp2_submit_headers(cl, NGHTTP2_FLAG_NONE, -1, NULL, nv, WP_ARRAY_SIZE(nv), NULL);
	assert_true(sid > 0);
	memset(&cresps[n_cresp], 0, sizeof(cresps[0]));
	cresps[n_cresp++].sid = sid;
	pump(); /* the stream is open: DATA may follow */
	g_body = body;
	g_body_left = strlen(body);
	assert_int_equal(nghttp2_submit_data(cl, NGHTTP2_FLAG_NONE, sid, &prd), 0);
	return sid;
}

/* RequestMirror: the copy reaches the mirror cluster with the shadow
 * authority, the same x-request-id, the whole body and the trailers; its
 * response is thrown away and the client sees only the real one. */
static void test_mirror(void **state)
{
	static char big[150001];
	static const nghttp2_nv trl[] = {{(uint8_t *)"x-trl", (uint8_t *)"tv", 5, 2, 0}};
	struct breq *real, *copy;
	int32_t sid;

	(void)state;
	mk(NULL, mirror_rules);
	memset(big, 'b', sizeof(big) - 1);
	sid = open_post("/m/x", big);
	for (int i = 0; i < 20; i++)
		pump();
	real = breq_net(2);
	copy = breq_net(4);
	assert_non_null(real);
	assert_non_null(copy);
	assert_int_equal(n_breq, 2);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR], 1);
	assert_false(copy->ended);
	assert_string_equal(real->authority, "reviews:9080");
	assert_string_equal(copy->authority, "reviews-shadow:9080");
	assert_string_equal(copy->path, "/m/x");
	assert_string_equal(real->reqid, "rid-0123");
	assert_string_equal(copy->reqid, "rid-0123");
	assert_int_equal(wp_h2p_core_streams(core), 2); /* a copy takes a stream object */
	assert_int_equal(nghttp2_submit_trailer(cl, sid, trl, 1), 0);
	pump();
	assert_true(real->ended);
	assert_true(copy->ended);
	assert_false(copy->reset);
	assert_int_equal(real->body, sizeof(big) - 1);
	assert_int_equal(copy->body, sizeof(big) - 1);
	assert_string_equal(real->trailer, "tv");
	assert_string_equal(copy->trailer, "tv");
	assert_true(copy->responded); /* the mirror backend answered too */
	/* the client saw only the real response */
	assert_int_equal(n_cresp, 1);
	assert_int_equal(cresps[0].status, 200);
	assert_int_equal(atoi(cresps[0].backend), real->fup);
	assert_int_equal(cresps[0].body, 2);
	assert_true(cresps[0].closed);
	assert_int_equal(cresps[0].code, 0);
	assert_int_equal(wp_h2p_core_streams(core), 0);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR_OVERFLOW], 0);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR_ABANDONED], 0);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR_DROPPED], 0);
	assert_int_equal(ctr[WP_CTR_L7_H2P_BUF_OVERRUN], 0);

	/* a gRPC-style request without body: the copy ends with its head;
	 * a generated x-request-id is the same on both */
	req("GET", "/m/get", true, NULL, NULL, 0);
	pump();
	real = breq_net(2);
	copy = breq_net(4);
	assert_string_equal(real->path, "/m/get");
	assert_string_equal(copy->path, "/m/get");
	assert_true(copy->ended);
	assert_int_equal(strlen(real->reqid), 36);
	assert_string_equal(copy->reqid, real->reqid);
	assert_int_equal(cresps[1].status, 200);
	assert_int_equal(atoi(cresps[1].backend), real->fup);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR], 2);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

/* A mirror backend that never reads: the copy's ring fills, it is reset
 * (overflow) and the real stream completes at full length. */
static void test_mirror_overflow(void **state)
{
	static char big[300001];
	struct breq *real, *copy;

	(void)state;
	mk(NULL, mirror_rules);
	be_stall_net = 4;
	memset(big, 'o', sizeof(big) - 1);
	req("POST", "/m/big", false, big, NULL, 0);
	for (int i = 0; i < 40 && !cresps[0].closed; i++)
		pump();
	real = breq_net(2);
	assert_non_null(real);
	assert_true(real->ended);
	assert_int_equal(real->body, sizeof(big) - 1);
	assert_int_equal(cresps[0].status, 200);
	assert_true(cresps[0].closed);
	assert_int_equal(cresps[0].code, 0);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR_OVERFLOW], 1);
	assert_int_equal(wp_h2p_core_streams(core), 0);
	/* the mirror backend catches up: its copy was cancelled, short */
	be_stall_net = 0;
	pump();
	copy = breq_net(4);
	assert_non_null(copy);
	assert_string_equal(copy->authority, "reviews-shadow:9080");
	assert_true(copy->reset);
	assert_int_equal(copy->reset_code, NGHTTP2_CANCEL);
	assert_false(copy->ended);
	assert_true(copy->body < sizeof(big) - 1);
}

/* The client resets mid-body: the copy is abandoned (CANCEL). */
static void test_mirror_client_reset(void **state)
{
	struct breq *real, *copy;
	int32_t sid;

	(void)state;
	mk(NULL, mirror_rules);
	be_hold = true;
	sid = open_post("/m/r", "partial body");
	pump();
	real = breq_net(2);
	copy = breq_net(4);
	assert_non_null(real);
	assert_non_null(copy);
	assert_int_equal(copy->body, 12);
	assert_false(copy->ended);
	assert_int_equal(nghttp2_submit_rst_stream(cl, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL), 0);
	pump();
	assert_true(real->reset);
	assert_true(copy->reset);
	assert_int_equal(copy->reset_code, NGHTTP2_CANCEL);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR_ABANDONED], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR_OVERFLOW], 0);
	assert_int_equal(wp_h2p_core_streams(core), 0);

	/* a copy whose request ended goes on alone after the real stream is
	 * gone, and is reset by the mirror timeout if it never finishes */
	req("GET", "/m/t", false, NULL, NULL, 0);
	pump();
	assert_int_equal(
	        nghttp2_submit_rst_stream(cl, NGHTTP2_FLAG_NONE, cresps[1].sid, NGHTTP2_CANCEL), 0);
	pump();
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR_ABANDONED], 1);
	assert_int_equal(wp_h2p_core_streams(core), 1); /* the copy, awaiting its response */
	wp_h2p_core_tick(core, wp_h2p_default_cfg.mirror_timeout_ms + 1);
	pump();
	copy = breq_net(4);
	assert_string_equal(copy->path, "/m/t");
	assert_true(copy->ended);
	assert_true(copy->reset);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR_ABANDONED], 2);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

/* Authorization (dp/l7/pipeline.h) on h2c streams: a denied request gets
 * 403 "RBAC: access denied", a denied gRPC call grpc-status 7 with that
 * message, neither reaches a backend; the session serves other streams and
 * the normalized path goes upstream. */
static void test_authz_deny(void **state)
{
	struct az_fx f;
	int32_t a, b, c, d;

	(void)state;
	mk(NULL, std_rules);
	az_fx_init(&f,
	           "apiVersion: security.istio.io/v1\n"
	           "kind: AuthorizationPolicy\n"
	           "metadata: {name: no-admin, namespace: default}\n"
	           "spec:\n"
	           "  targetRefs: [{kind: Service, group: '', name: reviews}]\n"
	           "  action: DENY\n"
	           "  rules: [{to: [{operation: {paths: ['/v1/admin*', '/pkg.Admin/*']}}]}]\n",
	           "cluster.local/ns/default/sa/productpage", ctr);
	wp_h2p_sess_set_conn(sess, &f.conn);
	a = req("GET", "/v1/x/../admin", false, NULL, NULL, 0);
	b = req("POST", "/pkg.Admin/Drop", true, "xxxxx", NULL, 0);
	c = req("GET", "/v1/./fine", false, NULL, NULL, 0);
	d = req("GET", "/v1/a%00", false, NULL, NULL, 0);
	pump();
	assert_int_equal(cresp_of(a)->status, 403);
	assert_int_equal(cresp_of(a)->body, 19);
	assert_string_equal(cresp_of(a)->text, "RBAC: access denied");
	assert_true(cresp_of(a)->closed);
	assert_int_equal(cresp_of(b)->status, 200);
	assert_string_equal(cresp_of(b)->grpc_status, "7");
	assert_string_equal(cresp_of(b)->grpc_message, "RBAC: access denied");
	assert_int_equal(cresp_of(b)->body, 0);
	assert_int_equal(cresp_of(c)->status, 200);
	assert_int_equal(cresp_of(d)->status, 400);
	assert_int_equal(n_breq, 1);
	assert_string_equal(breqs[0].path, "/v1/fine");
	assert_int_equal(ctr[WP_CTR_AUTHZ_DENIED_MATCH], 2);
	assert_int_equal(ctr[WP_CTR_L7_PATH_INVALID], 1);
	az_fx_fini(&f);
}

/* ---- the completion stage: Istio's metrics, one record per stream ------------------------- */

static struct wp_metrics_core *mcells;

static const char *mlab(const struct wp_metrics_labels *l, enum wp_metrics_label k)
{
	static char buf[4][WP_METRICS_MAX_VALUE + 1];
	static int turn;
	size_t len;
	const char *v = wp_metrics_string(mcells, l->v[k], &len);
	char *b = buf[turn++ & 3];

	memcpy(b, v, len);
	b[len] = '\0';
	return b;
}

static uint64_t m_total(void)
{
	uint64_t t = 0;

	for (unsigned i = 0; i < wp_metrics_n_http(mcells); i++)
		t += wp_metrics_load(&wp_metrics_http_at(mcells, i)->requests);
	return t;
}

/* The one series with these labels. */
static const struct wp_metrics_http *m_find(const char *proto, const char *code, const char *grpc,
                                            const char *flags)
{
	const struct wp_metrics_http *found = NULL;

	for (unsigned i = 1; i < wp_metrics_n_http(mcells); i++) {
		const struct wp_metrics_http *h = wp_metrics_http_at(mcells, i);

		if (!strcmp(mlab(&h->labels, WP_ML_REQUEST_PROTOCOL), proto) &&
		    !strcmp(mlab(&h->labels, WP_ML_RESPONSE_CODE), code) &&
		    !strcmp(mlab(&h->labels, WP_ML_GRPC_RESPONSE_STATUS), grpc) &&
		    !strcmp(mlab(&h->labels, WP_ML_RESPONSE_FLAGS), flags)) {
			assert_null(found);
			found = h;
		}
	}
	for (unsigned i = 1; !found && i < wp_metrics_n_http(mcells); i++)
		print_message(
		        "no %s %s %s %s; have %s %s %s %s\n", proto, code, grpc, flags,
		        mlab(&wp_metrics_http_at(mcells, i)->labels, WP_ML_REQUEST_PROTOCOL),
		        mlab(&wp_metrics_http_at(mcells, i)->labels, WP_ML_RESPONSE_CODE),
		        mlab(&wp_metrics_http_at(mcells, i)->labels, WP_ML_GRPC_RESPONSE_STATUS),
		        mlab(&wp_metrics_http_at(mcells, i)->labels, WP_ML_RESPONSE_FLAGS));
	assert_non_null(found);
	return found;
}

/* Each stream is recorded once, when it closes: http 200 with its body
 * bytes, gRPC with the status of the upstream's trailers, a trailers-only
 * local answer (UNAVAILABLE, no healthy upstream), 404 no route, a stream
 * the client reset before its answer, a connect failure. */
static void test_metrics_per_stream(void **state)
{
	static const struct wp_snap_service svc = {.ns = "default",
	                                           .name = "reviews",
	                                           .hostname = "reviews.default.svc.cluster.local"};
	static const char *bg = "k8s.deployment.name=ratings-v1,service.name=ratings";
	const struct wp_metrics_http *h;
	struct az_fx f;
	int32_t a;

	(void)state;
	mk(NULL, std_rules);
	mcells = wp_metrics_core_create(64, ctr);
	assert_non_null(mcells);
	az_fx_init(&f, NULL, "cluster.local/ns/ops/sa/ratings", ctr);
	wp_pipe_core_set_metrics(&f.core, mcells, "cluster.local", "cluster.local", "Kubernetes");
	wp_pipe_conn_labels(&f.conn, bg, strlen(bg), &svc, NULL);
	wp_h2p_sess_set_conn(sess, &f.conn);

	req("POST", "/v1/a", false, "12345", NULL, 0);
	pump();
	assert_int_equal(m_total(), 1);
	h = m_find("http", "200", "", "-");
	assert_int_equal(wp_metrics_load(&h->req_bytes.sum), 5);
	assert_int_equal(wp_metrics_load(&h->resp_bytes.sum), 2);
	assert_string_equal(mlab(&h->labels, WP_ML_DESTINATION_SERVICE_NAME), "reviews-v1");
	assert_string_equal(mlab(&h->labels, WP_ML_SOURCE_WORKLOAD), "ratings-v1");
	assert_string_equal(mlab(&h->labels, WP_ML_SOURCE_WORKLOAD_NAMESPACE), "ops");

	be_trailers = true;
	req("POST", "/v1/pkg.Svc/Call", true, "\0\0\0\0\0", NULL, 0);
	pump();
	be_trailers = false;
	assert_int_equal(m_total(), 2);
	m_find("grpc", "200", "7", "-");
	/* a trailers-only answer of the upstream: its grpc-status is in the head */
	be_trailers_only = true;
	req("POST", "/v1/pkg.Svc/Nope", true, "\0\0\0\0\0", NULL, 0);
	pump();
	be_trailers_only = false;
	m_find("grpc", "200", "12", "-");

	req("POST", "/none/pkg.S/M", true, "xxxxx", NULL, 0);
	req("GET", "/zzz", false, NULL, NULL, 0);
	pump();
	assert_int_equal(m_total(), 5);
	h = m_find("grpc", "200", "14", "UH");
	assert_string_equal(mlab(&h->labels, WP_ML_DESTINATION_SERVICE_NAME), "empty");
	m_find("http", "404", "", "NR");

	be_hold = true;
	a = req("GET", "/v1/held", false, NULL, NULL, 0);
	pump();
	assert_int_equal(m_total(), 5);
	assert_int_equal(nghttp2_submit_rst_stream(cl, NGHTTP2_FLAG_NONE, a, NGHTTP2_CANCEL), 0);
	pump();
	be_hold = false;
	assert_int_equal(m_total(), 6);
	m_find("http", "0", "", "DR");

	fail_open = 1;
	req("GET", "/missing", false, NULL, NULL, 0);
	req("GET", "/r/x", false, NULL, NULL, 0);
	pump();
	assert_int_equal(m_total(), 8);
	m_find("http", "500", "", "NC");
	m_find("http", "503", "", "UF,URX"); /* two endpoints: one retry */
	assert_int_equal(wp_h2p_core_streams(core), 0);
	wp_h2p_sess_close(sess);
	sess = NULL;
	assert_int_equal(m_total(), 8);
	az_fx_fini(&f);
	wp_metrics_core_destroy(mcells);
}

/* Fault injection (dp/l7/fault.h) on h2c streams: an abort answers before
 * load balancing (status and "fault filter abort"; gRPC: trailers-only with
 * the grpcStatus code, or the HTTP status mapped), flag FI; a delay holds
 * the stream on the core's timers, its body waiting, then forwards it
 * (flag DI); a client that resets a held stream frees it (counted). */
static void test_fault(void **state)
{
	struct wp_route_rule *r0;
	struct az_fx f;
	int32_t a, g, h, d, x;

	(void)state;
	mk(NULL, std_rules);
	mcells = wp_metrics_core_create(64, ctr);
	assert_non_null(mcells);
	az_fx_init(&f, NULL, "cluster.local/ns/ops/sa/ratings", ctr);
	wp_pipe_core_set_metrics(&f.core, mcells, "cluster.local", "cluster.local", "Kubernetes");
	wp_pipe_conn_labels(&f.conn, NULL, 0, NULL, NULL);
	wp_h2p_sess_set_conn(sess, &f.conn);
	r0 = (struct wp_route_rule *)(uintptr_t)&tab->rules[0]; /* /v1 */
	r0->fault = (struct wp_route_fault){.abort = true, .abort_ppm = 1000000, .abort_grpc = 14};
	a = req("GET", "/v1/a", false, NULL, NULL, 0);
	g = req("POST", "/v1/pkg.S/M", true, "\0\0\0\0\0", NULL, 0);
	pump();
	assert_int_equal(n_fup, 0);
	assert_int_equal(cresp_of(a)->status, 200);
	assert_string_equal(cresp_of(a)->text, "fault filter abort");
	assert_int_equal(cresp_of(g)->status, 200);
	assert_string_equal(cresp_of(g)->grpc_status, "14");
	assert_string_equal(cresp_of(g)->grpc_message, "fault filter abort");
	assert_int_equal(cresp_of(g)->body, 0);
	assert_false(cresp_of(g)->trailers); /* trailers-only: one HEADERS with END_STREAM */
	r0->fault.abort_status = 503;
	h = req("GET", "/v1/b", false, NULL, NULL, 0);
	g = req("POST", "/v1/pkg.S/M", true, "\0\0\0\0\0", NULL, 0);
	pump();
	assert_int_equal(cresp_of(h)->status, 503);
	assert_string_equal(cresp_of(h)->text, "fault filter abort");
	assert_string_equal(cresp_of(g)->grpc_status, "14"); /* 503 -> UNAVAILABLE */
	assert_int_equal(n_fup, 0);
	assert_int_equal(ctr[WP_CTR_L7_FAULT_ABORT], 4);
	m_find("grpc", "200", "14", "FI");
	m_find("http", "503", "", "FI");

	/* a delay: nothing upstream before its end, then forwarded whole */
	r0->fault = (struct wp_route_fault){.delay = true, .delay_ppm = 1000000, .delay_ms = 300};
	wp_h2p_core_tick(core, 10000);
	d = req("POST", "/v1/slow", false, "12345", NULL, 0);
	pump(); /* (one body at a time on the client) */
	x = req("GET", "/v1/gone", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 0);
	assert_int_equal(ctr[WP_CTR_L7_FAULT_DELAY], 2);
	assert_int_equal(nghttp2_submit_rst_stream(cl, NGHTTP2_FLAG_NONE, x, NGHTTP2_CANCEL), 0);
	pump();
	assert_int_equal(ctr[WP_CTR_L7_FAULT_DELAY_ABANDONED], 1);
	m_find("http", "0", "", "DI,DR");
	/* the host ticks then: 300 ms and the millisecond the clock may lag */
	assert_int_equal(wp_h2p_core_due(core), 10301);
	wp_h2p_core_tick(core, 10300);
	pump();
	assert_int_equal(n_breq, 0);
	assert_int_equal(wp_h2p_core_due(core), 10301);
	wp_h2p_core_tick(core, 10301);
	pump();
	assert_int_equal(n_breq, 1);
	assert_int_equal(breqs[0].body, 5);
	assert_int_equal(cresp_of(d)->status, 200);
	m_find("http", "200", "", "DI");
	/* trailers that came during the delay follow the body, not the head */
	g_trailer = "t1";
	d = req("POST", "/v1/trl", false, "abc", NULL, 0);
	pump();
	g_trailer = NULL;
	wp_h2p_core_tick(core, 11000);
	pump();
	assert_int_equal(n_breq, 2);
	assert_string_equal(breqs[1].trailer, "t1");
	assert_false(breqs[1].trl_in_head);
	assert_int_equal(breqs[1].body, 3);
	assert_int_equal(cresp_of(d)->status, 200);
	assert_int_equal(wp_h2p_core_streams(core), 0);
	az_fx_fini(&f);
	wp_metrics_core_destroy(mcells);
}

/* The local outcomes' flags on h2c streams: UC (the upstream connection
 * lost before the answer: 503, gRPC UNAVAILABLE), DC (the client
 * connection gone while its streams waited for their answers). */
static void test_flags_uc_dc(void **state)
{
	struct az_fx f;

	(void)state;
	mk(NULL, std_rules);
	mcells = wp_metrics_core_create(64, ctr);
	assert_non_null(mcells);
	az_fx_init(&f, NULL, "cluster.local/ns/ops/sa/ratings", ctr);
	wp_pipe_core_set_metrics(&f.core, mcells, "cluster.local", "cluster.local", "Kubernetes");
	wp_pipe_conn_labels(&f.conn, NULL, 0, NULL, NULL);
	wp_h2p_sess_set_conn(sess, &f.conn);
	be_hold = true;
	req("GET", "/v1/a", false, NULL, NULL, 0);
	req("GET", "/v1/b", true, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 2);
	fups[0].c.failed = true;
	wp_h2p_up_failed(fups[0].c.up);
	pump();
	m_find("http", "503", "", "UC");
	m_find("grpc", "200", "14", "UC");
	req("GET", "/v1/c", false, NULL, NULL, 0);
	req("GET", "/v1/d", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 4);
	wp_h2p_sess_close(sess);
	sess = NULL;
	assert_int_equal(wp_metrics_load(&m_find("http", "0", "", "DC")->requests), 2);
	az_fx_fini(&f);
	wp_metrics_core_destroy(mcells);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_route_and_mods, teardown),
	        cmocka_unit_test_teardown(test_multiplex, teardown),
	        cmocka_unit_test_teardown(test_multiplex_limit, teardown),
	        cmocka_unit_test_teardown(test_grpc_trailers, teardown),
	        cmocka_unit_test_teardown(test_request_trailers, teardown),
	        cmocka_unit_test_teardown(test_resets, teardown),
	        cmocka_unit_test_teardown(test_local_replies, teardown),
	        cmocka_unit_test_teardown(test_no_route, teardown),
	        cmocka_unit_test_teardown(test_conn_header_refused, teardown),
	        cmocka_unit_test_teardown(test_flow_control, teardown),
	        cmocka_unit_test_teardown(test_upload_flow_control, teardown),
	        cmocka_unit_test_teardown(test_up_lost, teardown),
	        cmocka_unit_test_teardown(test_connect_failure_retry, teardown),
	        cmocka_unit_test_teardown(test_goaway_retry, teardown),
	        cmocka_unit_test_teardown(test_grpc_unavailable_retry, teardown),
	        cmocka_unit_test_teardown(test_session_close_cancels, teardown),
	        cmocka_unit_test_teardown(test_header_limit, teardown),
	        cmocka_unit_test_teardown(test_rapid_reset, teardown),
	        cmocka_unit_test_teardown(test_timeouts, teardown),
	        cmocka_unit_test_teardown(test_client_idle_timeout, teardown),
	        cmocka_unit_test_teardown(test_mirror, teardown),
	        cmocka_unit_test_teardown(test_mirror_overflow, teardown),
	        cmocka_unit_test_teardown(test_mirror_client_reset, teardown),
	        cmocka_unit_test_teardown(test_metrics_per_stream, teardown),
	        cmocka_unit_test(test_preface),
	        cmocka_unit_test_teardown(test_authz_deny, teardown),
	        cmocka_unit_test_teardown(test_fault, teardown),
	        cmocka_unit_test_teardown(test_flags_uc_dc, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
