/*
 * Circuit breaking on the h2c / gRPC proxy (dp/l7/h2p_pending.c,
 * h2p_upstream.c): a stream whose cluster is at tcp.maxConnections with no
 * connection that has room for it waits (http.http1MaxPendingRequests
 * bounds the line), first come first served as a connection gains room;
 * beyond the line, Envoy's overflow answer (gRPC: trailers-only
 * UNAVAILABLE); a waiting stream the client resets or whose request
 * timeout passes leaves the line. Real nghttp2 client and backends
 * (h2c_fixture.h, h2c_backend.h); the limits come from a DestinationRule
 * compiled by the real compiler.
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
#include "cbreak.h"
#include "h2proxy.h"
#include "wp/counters.h"
#include "wp/model.h"
#include "wp/route.h"
#include "wp/snapshot_types.h"

#include "h2c_fixture.h"

#include "h2c_backend.h"

static const char *pend_rules = "  - matches: [{path: {type: PathPrefix, value: /slow}}]\n"
                                "    timeouts: {request: 2s}\n"
                                "    backendRefs: [{name: reviews, port: 9080}]\n"
                                "  - matches: [{path: {type: PathPrefix, value: /r}}]\n"
                                "    backendRefs: [{name: reviews, port: 9080}]\n";

/* A core whose upstream connections carry one stream each, reviews under
 * maxConnections 1 and http1MaxPendingRequests 2. */
static void mk_pend(void)
{
	struct wp_h2p_cfg cfg = wp_h2p_default_cfg;

	cfg.max_up_streams = 1;
	fx_dr_tp = "    connectionPool:\n      tcp: {maxConnections: 1}\n"
	           "      http: {http1MaxPendingRequests: 2}\n";
	mk(&cfg, pend_rules);
	be_hold = true;
}

/* maxConnections 1 with its one connection full: the next streams wait
 * (up to http1MaxPendingRequests), the one beyond gets the overflow answer
 * at once (gRPC: trailers-only UNAVAILABLE with Envoy's text); the waiting
 * ones go out first come first served as the connection gains room, and
 * one the client resets while waiting leaves the line. */
static void test_pending_fifo(void **state)
{
	int32_t a, b, c, d, e;
	struct cresp *r;

	(void)state;
	mk_pend();
	a = req("GET", "/r/a", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 1);
	b = req("GET", "/r/b", false, NULL, NULL, 0);
	c = req("GET", "/r/c", false, NULL, NULL, 0);
	d = req("POST", "/r/d", true, "x", NULL, 0);
	pump();
	assert_int_equal(n_breq, 1);
	assert_int_equal(n_fup, 1);
	assert_int_equal(cresp_of(b)->status, 0); /* waiting */
	assert_int_equal(cresp_of(c)->status, 0);
	r = cresp_of(d);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->grpc_status, "14");
	assert_memory_equal(r->grpc_message, wp_cb_overflow_body, sizeof(r->grpc_message) - 1);
	assert_true(r->closed);
	assert_int_equal(ctr[WP_CTR_L7_CB_PENDING], 2);
	assert_int_equal(ctr[WP_CTR_L7_CB_PENDING_OVERFLOW], 1);
	assert_int_equal(ctr[WP_CTR_L7_UPSTREAM_OVERFLOW], 1);
	/* the first response ends: the first in line goes out */
	be_respond(&breqs[0]);
	pump();
	assert_int_equal(cresp_of(a)->status, 200);
	assert_int_equal(n_breq, 2);
	assert_string_equal(breqs[1].path, "/r/b");
	assert_int_equal(cresp_of(c)->status, 0);
	/* the client gives up on c; e takes its place in line */
	assert_int_equal(nghttp2_submit_rst_stream(cl, NGHTTP2_FLAG_NONE, c, NGHTTP2_CANCEL), 0);
	pump();
	e = req("GET", "/r/e", false, NULL, NULL, 0);
	pump();
	assert_int_equal(n_breq, 2);
	be_respond(&breqs[1]);
	pump();
	assert_int_equal(cresp_of(b)->status, 200);
	assert_int_equal(n_breq, 3);
	assert_string_equal(breqs[2].path, "/r/e"); /* never c */
	be_respond(&breqs[2]);
	pump();
	assert_int_equal(cresp_of(e)->status, 200);
	assert_int_equal(ctr[WP_CTR_L7_CB_PENDING], 3);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

/* An HTTP stream beyond the pending limit: 503 with x-envoy-overloaded and
 * Envoy's text; a waiting stream whose request timeout passes gets 504 and
 * leaves the line (the next one can wait). */
static void test_pending_timeout(void **state)
{
	int32_t a, w1, w2, o, w3;

	(void)state;
	mk_pend();
	wp_h2p_core_tick(core, 10000);
	a = req("GET", "/r/a", false, NULL, NULL, 0);
	pump();
	w1 = req("GET", "/slow/1", false, NULL, NULL, 0);
	w2 = req("GET", "/r/2", false, NULL, NULL, 0);
	o = req("GET", "/r/o", false, NULL, NULL, 0);
	pump();
	assert_int_equal(cresp_of(o)->status, 503);
	assert_memory_equal(cresp_of(o)->text, wp_cb_overflow_body, sizeof(cresps[0].text) - 1);
	wp_h2p_core_tick(core, 12000);
	pump();
	assert_int_equal(cresp_of(w1)->status, 0);
	wp_h2p_core_tick(core, 12001);
	pump();
	assert_int_equal(cresp_of(w1)->status, 504);
	assert_true(cresp_of(w1)->closed);
	assert_int_equal(ctr[WP_CTR_L7_H2P_TIMEOUT], 1);
	/* room in line again */
	w3 = req("GET", "/r/3", false, NULL, NULL, 0);
	pump();
	assert_int_equal(cresp_of(w3)->status, 0);
	assert_int_equal(ctr[WP_CTR_L7_CB_PENDING_OVERFLOW], 1);
	assert_int_equal(n_breq, 1);
	be_respond(&breqs[0]);
	pump();
	be_respond(&breqs[1]);
	pump();
	be_respond(&breqs[2]);
	pump();
	assert_int_equal(cresp_of(a)->status, 200);
	assert_int_equal(cresp_of(w2)->status, 200);
	assert_int_equal(cresp_of(w3)->status, 200);
	assert_string_equal(breqs[1].path, "/r/2");
	assert_string_equal(breqs[2].path, "/r/3");
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_pending_fifo, teardown),
	        cmocka_unit_test_teardown(test_pending_timeout, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
