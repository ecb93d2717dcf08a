/*
 * HTTP/1.1 proxy session (dp/l7/h1proxy.c) driven with byte streams: a fake
 * host records the upstream connections the proxy asks for, the test plays
 * the client and the backends. Route tables are compiled from HTTPRoute
 * YAML by the real compiler (cp/resolve/route_compile.c) over fake
 * endpoints. Covers keep-alive and pool reuse, pipelining one at a time,
 * chunked both ways, 100-continue, Upgrade passthrough, HTTP/1.0, local
 * answers (400/431/404/redirect/503/502), early responses, backpressure with
 * a large body fed in odd slices, idle limits/expiry/eviction, the weighted
 * split through the proxy. The fixture is h1p_harness.h.
 */
#include "h1p_harness.h"

/* ---- tests -------------------------------------------------------------------------------- */

static void test_keepalive_and_reuse(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up, *up2;
	char *u;

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	down_all(s, "GET /v1/a HTTP/1.1\r\nHost: reviews:9080\r\nConnection: keep-alive\r\n\r\n");
	up = wp_h1p_sess_up(s);
	assert_non_null(up);
	assert_int_equal(n_open, 1);
	assert_int_equal(ep_host(up) >> 8, 2); /* reviews-v1 */
	assert_int_equal(up->pe.port, 9081);
	wp_h1p_up_connected(up);
	u = take_up(up);
	assert_non_null(strstr(u, "GET /v1/a HTTP/1.1\r\nhost: reviews:9080\r\n"));
	assert_non_null(strstr(u, "x-request-id: "));
	assert_null(strstr(u, "keep-alive"));
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: v1\r\n\r\nhello");
	assert_string_equal(take_down(s),
	                    "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nserver: v1\r\n\r\nhello");
	assert_null(wp_h1p_sess_up(s));
	assert_int_equal(wp_h1p_core_idle(core), 1);
	assert_false(wp_h1p_down_finished(s));

	/* second request: the idle connection is reused */
	down_all(s, "GET /v1/b HTTP/1.1\r\nHost: reviews:9080\r\nX-Request-Id: abc\r\n\r\n");
	up2 = wp_h1p_sess_up(s);
	assert_ptr_equal(up2, up);
	assert_true(up2->reused);
	assert_int_equal(n_open, 1);
	assert_int_equal(ctr[WP_CTR_L7_H1P_UP_REUSED], 1);
	u = take_up(up);
	assert_non_null(strstr(u, "x-request-id: abc\r\n"));
	up_all(up, "HTTP/1.1 204 No Content\r\n\r\n");
	assert_string_equal(take_down(s), "HTTP/1.1 204 No Content\r\n\r\n");
	assert_int_equal(ctr[WP_CTR_L7_H1P_REQUEST], 2);

	/* the client closes between requests */
	wp_h1p_down_eof(s);
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
	assert_int_equal(wp_h1p_core_idle(core), 1);
	assert_int_equal(n_close, 0);
}

static void test_pipelining(void **state)
{
	const char *two =
	        "GET /v1/1 HTTP/1.1\r\nHost: r\r\n\r\nGET /v1/2 HTTP/1.1\r\nHost: r\r\n\r\n";
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	size_t n, first;

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	first = strstr(two, "GET /v1/2") - two;
	n = wp_h1p_down_in(s, (const uint8_t *)two, strlen(two));
	assert_int_equal(n, first); /* the second waits for the first response */
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	assert_non_null(strstr(take_up(up), "GET /v1/1 "));
	assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)two + n, strlen(two) - n), 0);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1");
	assert_non_null(strstr(take_down(s), "\r\n\r\n1"));
	/* the host re-offers the rest */
	assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)two + n, strlen(two) - n),
	                 strlen(two) - n);
	up = wp_h1p_sess_up(s);
	assert_non_null(strstr(take_up(up), "GET /v1/2 "));
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2");
	assert_non_null(strstr(take_down(s), "\r\n\r\n2"));
	assert_int_equal(n_open, 1);
	wp_h1p_sess_close(s);
}

static void test_chunked_both_ways_bytewise(void **state)
{
	const char *req = "POST /v1/up HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n"
	                  "5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
	const char *resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                   "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up = NULL;
	static char ub[4096], db[4096];

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	ub[0] = db[0] = '\0';
	for (size_t i = 0; i < strlen(req); i++) {
		assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)req + i, 1), 1);
		if (!up && (up = wp_h1p_sess_up(s)) != NULL)
			wp_h1p_up_connected(up);
		if (up)
			strcat(ub, take_up(up));
	}
	assert_non_null(
	        strstr(ub, "transfer-encoding: chunked\r\nx-envoy-attempt-count: 1\r\n\r\n"));
	/* bytes re-framed chunk by chunk (one per body slice), same payload */
	assert_non_null(strstr(ub, "\r\n0\r\nx-t: 1\r\n\r\n"));
	{
		/* de-chunk what went upstream */
		const char *p = strstr(ub, "\r\n\r\n") + 4;
		char payload[64] = "";

		for (;;) {
			unsigned long len = strtoul(p, NULL, 16);
			if (len == 0)
				break;
			p = strstr(p, "\r\n") + 2;
			strncat(payload, p, len);
			p += len + 2;
		}
		assert_string_equal(payload, "hello world");
	}
	for (size_t i = 0; i < strlen(resp); i++) {
		assert_int_equal(wp_h1p_up_in(up, (const uint8_t *)resp + i, 1), 1);
		strcat(db, take_down(s));
	}
	assert_non_null(strstr(db, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"));
	assert_non_null(strstr(db, "\r\n0\r\n\r\n"));
	assert_int_equal(wp_h1p_core_idle(core), 1);
	wp_h1p_sess_close(s);
}

static void test_expect_continue(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	down_all(s, "PUT /v1/x HTTP/1.1\r\nHost: r\r\nExpect: 100-continue\r\nContent-Length: "
	            "4\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	assert_non_null(strstr(take_up(up), "expect: 100-continue\r\n"));
	up_all(up, "HTTP/1.1 100 Continue\r\n\r\n");
	assert_string_equal(take_down(s), "HTTP/1.1 100 Continue\r\n\r\n");
	down_all(s, "data");
	assert_string_equal(take_up(up), "data");
	up_all(up, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
	assert_string_equal(take_down(s), "HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n");
	assert_int_equal(wp_h1p_core_idle(core), 1);
	wp_h1p_sess_close(s);
}

#define UPG_WS "GET /v1/ws HTTP/1.1\r\nHost: r\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"

static void test_upgrade_passthrough(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	char *u;

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	/* the frame behind the request waits for the upstream's answer */
	assert_int_equal(
	        wp_h1p_down_in(s, (const uint8_t *)UPG_WS "\x81\x02hi", strlen(UPG_WS) + 4),
	        strlen(UPG_WS));
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	u = take_up(up);
	assert_non_null(strstr(
	        u,
	        "connection: upgrade\r\nupgrade: websocket\r\nx-envoy-attempt-count: 1\r\n\r\n"));
	assert_null(strstr(u, "hi"));
	assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)"\x81\x02hi", 4), 0);
	assert_int_equal(ctr[WP_CTR_L7_H1P_UPGRADE_HELD], 1);
	up_all(up,
	       "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
	       "\r\n\x82\x01z");
	u = take_down(s);
	assert_non_null(strstr(u, "HTTP/1.1 101 Switching Protocols\r\n"));
	assert_non_null(strstr(u, "\r\n\r\n\x82\x01z"));
	/* switched: the host offers the held bytes again */
	down_all(s, "\x81\x02hi");
	assert_string_equal(take_up(up), "\x81\x02hi");
	/* raw both ways, HTTP-looking or not */
	down_all(s, "GET nonsense\r\n\r\n");
	assert_string_equal(take_up(up), "GET nonsense\r\n\r\n");
	up_all(up, "HTTP/9 garbage");
	assert_string_equal(take_down(s), "HTTP/9 garbage");
	wp_h1p_down_eof(s);
	assert_true(up->shut_wr);
	wp_h1p_up_eof(up);
	assert_true(wp_h1p_down_shut(s));
	wp_h1p_sess_close(s);
	assert_int_equal(n_close, 1); /* an upgraded connection is never pooled */
}

/* Requests smuggled behind a declined Upgrade (issue 19): the bytes after an
 * Upgrade / CONNECT request are not taken before the upstream answered; a
 * backend that declines (200 on a kept-alive connection) never sees them,
 * the client gets the answer with `connection: close`, and nothing more of
 * its bytes is read. Each shape the outside probe used. */
static void test_upgrade_declined_nothing_smuggled(void **state)
{
	static const struct {
		const char *head, *resp;
	} shapes[] = {
	        {"GET /v1/up HTTP/1.1\r\nHost: r\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n",
	         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	        {"GET /v1/up HTTP/1.1\r\nHost: r\r\nUpgrade: h2c\r\n"
	         "Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
	         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	        {"GET /v1/ws HTTP/1.1\r\nHost: r\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n\r\n",
	         "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n"
	         "Content-Length: 0\r\n\r\n"},
	        {"GET /v1/up HTTP/1.0\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n",
	         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
	        {"CONNECT reviews:9080 HTTP/1.1\r\nHost: reviews:9080\r\n\r\n",
	         "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"},
	};
	static const char smuggled[] = "GET /v1/SMUGGLED HTTP/1.1\r\nHost: r\r\n\r\n";

	(void)state;
	/* a regex path matches CONNECT's authority-form target too */
	mk_core(NULL, "  - matches: [{path: {type: RegularExpression, value: \".*\"}}]\n"
	              "    backendRefs: [{name: reviews-v1, port: 9080}]\n");
	for (size_t i = 0; i < WP_ARRAY_SIZE(shapes); i++) {
		char in[1024];
		size_t hl = strlen(shapes[i].head);
		struct wp_h1p_sess *s = sess_open();
		struct wp_h1p_up *up;
		char *d;

		snprintf(in, sizeof(in), "%s%s", shapes[i].head, smuggled);
		/* the whole input in one piece, then its rest offered again (as
		 * the host does) before and after the answer */
		assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)in, strlen(in)), hl);
		up = wp_h1p_sess_up(s);
		if (!up)
			fail_msg("shape %zu: %s", i, take_down(s));
		wp_h1p_up_connected(up);
		assert_null(strstr(take_up(up), "SMUGGLED"));
		assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)in + hl, strlen(in) - hl), 0);
		up_all(up, shapes[i].resp);
		d = take_down(s);
		assert_true(strncmp(d, shapes[i].resp, 12) == 0);
		assert_non_null(strstr(d, "connection: close\r\n"));
		assert_true(wp_h1p_down_finished(s));
		assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)in + hl, strlen(in) - hl), 0);
		assert_null(wp_h1p_sess_up(s));
		wp_h1p_sess_close(s);
		assert_int_equal(wp_h1p_core_idle(core), 0); /* never pooled */
	}
	assert_int_equal(ctr[WP_CTR_L7_H1P_UPGRADE_REFUSED], WP_ARRAY_SIZE(shapes));
	assert_int_equal(ctr[WP_CTR_L7_H1P_UPGRADE_HELD], WP_ARRAY_SIZE(shapes));
	assert_int_equal(ctr[WP_CTR_L7_H1P_UPGRADE_DISCARDED], WP_ARRAY_SIZE(shapes));
	assert_int_equal(ctr[WP_CTR_L7_H1P_REQUEST], WP_ARRAY_SIZE(shapes));
	assert_int_equal(ctr[WP_CTR_L7_H1P_UPGRADE_SWITCHED], 0);

	/* CONNECT answered 2xx: the held bytes go through, the client's EOF
	 * that came while waiting too */
	struct wp_h1p_sess *s = sess_open();
	struct wp_h1p_up *up;
#define CONN "CONNECT reviews:9080 HTTP/1.1\r\nHost: reviews:9080\r\n\r\n"

	assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)CONN "\x16\x03\x01", sizeof(CONN) + 2),
	                 sizeof(CONN) - 1);
	wp_h1p_down_eof(s);
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	assert_null(strstr(take_up(up), "\x16"));
	up_all(up, "HTTP/1.1 200 Connection established\r\n\r\n");
	assert_true(strncmp(take_down(s), "HTTP/1.1 200 ", 13) == 0);
	assert_int_equal(ctr[WP_CTR_L7_H1P_UPGRADE_SWITCHED], 1);
	down_all(s, "\x16\x03\x01");
	assert_string_equal(take_up(up), "\x16\x03\x01");
	assert_true(up->shut_wr);
	wp_h1p_sess_close(s);
}

/* A 101 to a request that asked for no upgrade (found by fuzz_h1proxy):
 * 502, the upstream closed, and the client's next bytes never reach it. */
static void test_unasked_switch(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	down_all(s, "GET /v1/ws HTTP/1.1\r\nHost: r\r\nConnection: upgrade\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	assert_null(strstr(take_up(up), "upgrade"));
	wp_h1p_up_in(up,
	             (const uint8_t *)"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
	                              "Connection: upgrade\r\n\r\nraw",
	             72);
	assert_true(strncmp(take_down(s), "HTTP/1.1 502 ", 13) == 0);
	assert_int_equal(ctr[WP_CTR_L7_H1P_BAD_RESPONSE], 1);
	assert_true(wp_h1p_down_finished(s));
	assert_null(wp_h1p_sess_up(s)); /* nowhere for raw bytes to go */
	wp_h1p_sess_close(s);
	assert_int_equal(n_close, 1);
	assert_int_equal(wp_h1p_core_idle(core), 0);
}

static void test_http10_until_eof(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	char *u;

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	down_all(s, "GET /v1/old HTTP/1.0\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	u = take_up(up);
	assert_non_null(strstr(u, "GET /v1/old HTTP/1.1\r\nhost: reviews:9080\r\n"));
	up_all(up, "HTTP/1.1 200 OK\r\n\r\nbody until eof");
	wp_h1p_up_eof(up);
	u = take_down(s);
	assert_string_equal(u, "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nbody until eof");
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
	assert_int_equal(wp_h1p_core_idle(core), 0);
}

/* <req> is refused with <status> and the connection closes; fed one byte at
 * a time, not one byte is ever offered to an upstream. */
static void refused(const char *req, const char *status_line)
{
	struct wp_h1p_sess *s = sess_open();
	char *d;

	for (size_t i = 0; req[i] && !wp_h1p_down_finished(s); i++) {
		struct wp_h1p_up *up;
		const uint8_t *p;

		wp_h1p_down_in(s, (const uint8_t *)req + i, 1);
		up = wp_h1p_sess_up(s);
		if (up) {
			wp_h1p_up_connected(up);
			assert_int_equal(wp_h1p_up_peek(up, &p), 0);
		}
	}
	assert_null(wp_h1p_sess_up(s));
	d = take_down(s);
	assert_true(strncmp(d, status_line, strlen(status_line)) == 0);
	assert_non_null(strstr(d, "connection: close\r\n"));
	assert_true(wp_h1p_down_finished(s));
	/* nothing more is read */
	assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)"GET /v1 HTTP/1.1\r\n\r\n", 20), 0);
	wp_h1p_sess_close(s);
}

static void test_malformed_and_smuggling(void **state)
{
	char big[10000];

	(void)state;
	mk_core(NULL, std_rules);
	refused("GET /v1 HTTP/1.1\r\nHost: r\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
	        "\r\n0\r\n\r\n",
	        "HTTP/1.1 400 ");
	refused("POST /v1 HTTP/1.1\r\nHost: r\r\nContent-Length: 3\r\nContent-Length: "
	        "4\r\n\r\nabcd",
	        "HTTP/1.1 400 ");
	refused("POST /v1 HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	        "HTTP/1.1 400 ");
	refused("GET /v1 HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "); /* no Host */
	refused("GET /v1 HTTP/1.1\r\nHost: r\r\nX: a\r\n b\r\n\r\n", "HTTP/1.1 400 ");
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	memcpy(big + sizeof(big) - 30, " HTTP/1.1\r\nHost: r\r\n\r\n", 23);
	big[sizeof(big) - 7] = '\0';
	refused(big, "HTTP/1.1 431 ");
	assert_int_equal(n_open, 1); /* the chunked one: opened, never written to */
	assert_int_equal(ctr[WP_CTR_HTTP1_CL_WITH_TE], 1);
	assert_int_equal(ctr[WP_CTR_HTTP1_CL_DUPLICATE], 1);
}

static void test_local_answers(void **state)
{
	struct wp_h1p_sess *s;
	char *d;

	(void)state;
	mk_core(NULL, std_rules);
	refused("GET /nothing HTTP/1.1\r\nHost: r\r\n\r\n", "HTTP/1.1 404 ");
	assert_int_equal(ctr[WP_CTR_L7_ROUTE_NO_MATCH], 1);
	s = sess_open();
	down_all(s, "GET /go/x HTTP/1.1\r\nHost: reviews:9080\r\n\r\n");
	d = take_down(s);
	assert_true(strncmp(d, "HTTP/1.1 301 ", 13) == 0);
	assert_non_null(strstr(d, "location: http://other.example:9080/go/x\r\n"));
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
	fail_open = 1;
	refused("GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n", "HTTP/1.1 503 ");
	assert_int_equal(ctr[WP_CTR_L7_H1P_CONNECT_FAILED], 3); /* first try + 2 retries */
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY], 2);
	assert_int_equal(n_open, 0);
}

static void test_upstream_failures(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;

	(void)state;
	mk_core(NULL, std_rules);
	/* connect refused later: retried twice (Istio's default policy) on
	 * new connections, the head still queued for each, then 503 */
	s = sess_open();
	down_all(s, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	for (int k = 0; k < 3; k++) {
		const uint8_t *p;

		up = wp_h1p_sess_up(s);
		assert_non_null(up);
		assert_false(up->pe.ready); /* still connecting */
		assert_true(wp_h1p_up_peek(up, &p) > 20);
		assert_true(memcmp(p, "GET /v1 HTTP/1.1\r\n", 18) == 0);
		assert_int_equal(wp_h1p_down_peek(s, &p), 0);
		wp_h1p_up_failed(up);
		n_close++; /* the host dropped it itself */
	}
	assert_null(wp_h1p_sess_up(s));
	assert_int_equal(ctr[WP_CTR_L7_H1P_RETRY], 2);
	assert_int_equal(n_open, 3);
	assert_true(strncmp(take_down(s), "HTTP/1.1 503 ", 13) == 0);
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
	/* malformed response */
	s = sess_open();
	down_all(s, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	wp_h1p_up_in(up, (const uint8_t *)"HTTP/1.1 2x0 OK\r\n\r\n", 19);
	assert_true(strncmp(take_down(s), "HTTP/1.1 502 ", 13) == 0);
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
	/* upstream closes mid-body: no error page after the head, just close */
	s = sess_open();
	down_all(s, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
	wp_h1p_up_eof(up);
	assert_string_equal(take_down(s), "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc");
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);
	assert_int_equal(wp_h1p_core_idle(core), 0);
	assert_int_equal(ctr[WP_CTR_L7_H1P_CONNECT_FAILED], 1);
	assert_int_equal(ctr[WP_CTR_L7_H1P_BAD_RESPONSE], 1);
	/* a retry that succeeds: the request goes out on the second connection */
	s = sess_open();
	down_all(s, "POST /v1 HTTP/1.1\r\nHost: r\r\nContent-Length: 3\r\n\r\nabc");
	wp_h1p_up_failed(wp_h1p_sess_up(s));
	n_close++;
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	{
		char *u = take_up(up);

		assert_true(strncmp(u, "POST /v1 HTTP/1.1\r\n", 18) == 0);
		/* the second try: its attempt count */
		assert_non_null(strstr(u, "\r\nx-envoy-attempt-count: 2\r\n\r\nabc"));
	}
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_string_equal(take_down(s), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
	wp_h1p_sess_close(s);
	/* the retry avoids the endpoint that failed (2 endpoints, 30 tries) */
	for (int k = 0; k < 30; k++) {
		uint32_t first;

		s = sess_open();
		down_all(s, "GET /r HTTP/1.1\r\nHost: r\r\n\r\n");
		up = wp_h1p_sess_up(s);
		first = up->pe.addr.v4;
		wp_h1p_up_failed(up);
		n_close++;
		up = wp_h1p_sess_up(s);
		assert_non_null(up);
		assert_int_not_equal(up->pe.addr.v4, first);
		wp_h1p_sess_close(s);
	}
	assert_int_equal(ctr[WP_CTR_L7_H1P_UP_RESET], 1);
}

static void test_early_response(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	down_all(s, "POST /v1 HTTP/1.1\r\nHost: r\r\nContent-Length: 100\r\n\r\nab");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	up_all(up, "HTTP/1.1 413 Too Large\r\nContent-Length: 0\r\n\r\n");
	assert_string_equal(
	        take_down(s),
	        "HTTP/1.1 413 Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
	assert_true(wp_h1p_down_finished(s));
	assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)"cd", 2), 0);
	wp_h1p_sess_close(s);
	assert_int_equal(wp_h1p_core_idle(core), 0);
}

static void test_mods_and_rewrite(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	char *u;

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	down_all(s, "GET /mods/x?q=1 HTTP/1.1\r\nHost: r\r\nX-Set: old\r\n\r\n");
	up = wp_h1p_sess_up(s);
	assert_int_equal(ep_host(up) >> 8, 4); /* reviews-v3 */
	wp_h1p_up_connected(up);
	u = take_up(up);
	assert_non_null(strstr(u, "GET /new/x?q=1 HTTP/1.1\r\n"));
	assert_non_null(strstr(u, "x-set: s\r\n"));
	assert_null(strstr(u, "old"));
	/* the table goes away (snapshot swap) before the response: the
	 * response modifiers were copied */
	{
		struct wp_route_table *t2 = build(std_rules);

		wp_h1p_sess_set_routes(s, t2);
		wp_route_table_free(tab);
		tab = t2;
	}
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_string_equal(take_down(s),
	                    "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nx-resp: r\r\n\r\n");
	/* no table: 500 */
	wp_h1p_sess_set_routes(s, NULL);
	down_all(s, "GET /mods/x HTTP/1.1\r\nHost: r\r\n\r\n");
	assert_true(strncmp(take_down(s), "HTTP/1.1 500 ", 13) == 0);
	assert_int_equal(ctr[WP_CTR_L7_H1P_NO_TABLE], 1);
	wp_h1p_sess_close(s);
}

/* A 1 MiB body fed in odd slices while the host drains the upstream only
 * now and then: input is refused while the buffer is full, nothing is lost,
 * the buffer never grows past its size. */
static void test_backpressure_large_body(void **state)
{
	struct wp_h1p_cfg cfg = wp_h1p_default_cfg;
	enum { BODY = 1 << 20 };
	static uint8_t body[BODY];
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	size_t off = 0, got = 0, refused_feeds = 0, hdr = 0;
	uint64_t sum_in = 0, sum_out = 0;
	char head[128];
	int k = 0;

	(void)state;
	cfg.buf_size = 8192;
	mk_core(&cfg, std_rules);
	for (size_t i = 0; i < BODY; i++)
		body[i] = (uint8_t)(i * 7 + (i >> 9));
	for (size_t i = 0; i < BODY; i++)
		sum_in += body[i] * (i + 1);
	s = sess_open();
	snprintf(head, sizeof(head),
	         "PUT /v1/big HTTP/1.1\r\nHost: r\r\nContent-Length: %d\r\n\r\n", BODY);
	down_all(s, head);
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	hdr = strlen(take_up(up));
	assert_true(hdr > 0);
	while (got < BODY) {
		size_t slice = WP_MIN((size_t)(1 + (k * 7919) % 20000), BODY - off);
		size_t n = off < BODY ? wp_h1p_down_in(s, body + off, slice) : 0;
		const uint8_t *p;
		size_t m;

		if (n < slice)
			refused_feeds++;
		off += n;
		m = wp_h1p_up_peek(up, &p);
		assert_true(m <= cfg.buf_size);
		if (k++ % 3 == 0) { /* drain only every third round */
			for (size_t i = 0; i < m; i++)
				sum_out += p[i] * (got + i + 1);
			got += m;
			wp_h1p_up_consume(up, m);
		}
		assert_true(k < 100000);
	}
	assert_int_equal(off, BODY);
	assert_true(sum_in == sum_out);
	assert_true(refused_feeds > 0);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	take_down(s);
	wp_h1p_sess_close(s);
	assert_int_equal(wp_h1p_core_idle(core), 1);
}

/* The response body is throttled the same way when the client is slow. */
static void test_backpressure_response(void **state)
{
	struct wp_h1p_cfg cfg = wp_h1p_default_cfg;
	static uint8_t big[200000];
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;
	size_t off = 0, got = 0, hl;
	char head[128];

	(void)state;
	cfg.buf_size = 8192;
	mk_core(&cfg, std_rules);
	s = sess_open();
	down_all(s, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	hl = (size_t)snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
	                      sizeof(big));
	memset(big, 'x', sizeof(big));
	up_all(up, head);
	while (off < sizeof(big)) {
		size_t n = wp_h1p_up_in(up, big + off, sizeof(big) - off);
		const uint8_t *p;

		assert_true(n < sizeof(big)); /* never all at once */
		off += n;
		got += wp_h1p_down_peek(s, &p);
		wp_h1p_down_consume(s, wp_h1p_down_peek(s, &p));
	}
	got += wp_h1p_down_peek(s, &(const uint8_t *){NULL});
	assert_int_equal(got, sizeof(big) + hl - 0 /* same head length */);
	wp_h1p_sess_close(s);
}

static void test_pool_limits(void **state)
{
	struct wp_h1p_cfg cfg = wp_h1p_default_cfg;
	struct wp_h1p_sess *s[3];
	struct wp_h1p_up *up[3];

	(void)state;
	cfg.max_idle_per_ep = 1;
	cfg.max_upstreams = 2;
	cfg.idle_timeout_ms = 1000;
	mk_core(&cfg, "  - backendRefs: [{name: reviews-v3, port: 9080}]\n");
	wp_h1p_core_tick(core, 5000);
	for (int i = 0; i < 3; i++) {
		s[i] = sess_open();
		down_all(s[i], "GET / HTTP/1.1\r\nHost: r\r\n\r\n");
		up[i] = wp_h1p_sess_up(s[i]);
	}
	/* two connection objects: the third request gets 503 */
	assert_non_null(up[0]);
	assert_non_null(up[1]);
	assert_null(up[2]);
	assert_true(strncmp(take_down(s[2]), "HTTP/1.1 503 ", 13) == 0);
	assert_int_equal(ctr[WP_CTR_L7_H1P_NO_UPSTREAM], 1);
	for (int i = 0; i < 2; i++) {
		wp_h1p_up_connected(up[i]);
		take_up(up[i]);
		up_all(up[i], "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	}
	/* one idle per endpoint: the second was closed */
	assert_int_equal(wp_h1p_core_idle(core), 1);
	assert_int_equal(n_close, 1);
	assert_int_equal(ctr[WP_CTR_L7_H1P_IDLE_OVER_LIMIT], 1);
	/* an idle connection that speaks is dropped */
	assert_int_equal(wp_h1p_up_in(up[0], (const uint8_t *)"x", 1), 1);
	assert_int_equal(wp_h1p_core_idle(core), 0);
	assert_int_equal(n_close, 2);
	/* expiry */
	wp_h1p_sess_close(s[2]);
	s[2] = sess_open();
	down_all(s[2], "GET / HTTP/1.1\r\nHost: r\r\n\r\n");
	up[2] = wp_h1p_sess_up(s[2]);
	wp_h1p_up_connected(up[2]);
	take_up(up[2]);
	up_all(up[2], "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(wp_h1p_core_idle(core), 1);
	assert_int_equal(wp_h1p_core_tick(core, 5500), 0);
	assert_int_equal(wp_h1p_core_tick(core, 6000), 1);
	assert_int_equal(wp_h1p_core_idle(core), 0);
	/* idle closed by the peer */
	down_all(s[2], "GET / HTTP/1.1\r\nHost: r\r\n\r\n");
	up[2] = wp_h1p_sess_up(s[2]);
	wp_h1p_up_connected(up[2]);
	take_up(up[2]);
	up_all(up[2], "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(wp_h1p_core_idle(core), 1);
	wp_h1p_up_eof(up[2]);
	assert_int_equal(wp_h1p_core_idle(core), 0);
	for (int i = 0; i < 3; i++)
		wp_h1p_sess_close(s[i]);
	assert_int_equal(wp_h1p_core_busy(core), 0);
}

static void test_weighted_split(void **state)
{
	struct wp_h1p_sess *s;
	unsigned v1 = 0, v2 = 0;

	(void)state;
	mk_core(NULL, std_rules);
	s = sess_open();
	for (int i = 0; i < 10000; i++) {
		struct wp_h1p_up *up;
		unsigned net;

		down_all(s, "GET /split HTTP/1.1\r\nHost: r\r\n\r\n");
		up = wp_h1p_sess_up(s);
		assert_non_null(up);
		wp_h1p_up_connected(up);
		take_up(up);
		net = ep_host(up) >> 8;
		if (net == 2)
			v1++;
		else if (net == 3)
			v2++;
		else
			fail_msg("net %u", net);
		up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
		take_down(s);
	}
	print_message("80/20 through the proxy: %u / %u, %d connections\n", v1, v2, n_open);
	assert_in_range(v1, 7700, 8300);
	assert_in_range(v2, 1700, 2300);
	assert_true(n_open <= 4); /* reused: one per endpoint */
	wp_h1p_sess_close(s);
}

/* Shutdown: idle upstreams closed, no more pooling, sessions end. */
static void test_drain(void **state)
{
	struct wp_h1p_sess *a, *b;
	struct wp_h1p_up *up;

	(void)state;
	mk_core(NULL, std_rules);
	a = sess_open();
	b = sess_open();
	down_all(a, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(a);
	wp_h1p_up_connected(up);
	take_up(up);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	take_down(a);
	assert_int_equal(wp_h1p_core_idle(core), 1);
	/* b is in a request when the drain starts; a is between requests */
	down_all(b, "GET /r HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(b);
	wp_h1p_core_drain(core);
	wp_h1p_sess_drain(a);
	wp_h1p_sess_drain(b);
	assert_int_equal(wp_h1p_core_idle(core), 0);
	assert_int_equal(n_close, 1);
	assert_int_equal(n_finish, 1); /* idle: closed with a FIN, not reset */
	assert_true(wp_h1p_down_finished(a));
	assert_false(wp_h1p_down_finished(b));
	wp_h1p_up_connected(up);
	take_up(up);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	assert_string_equal(take_down(b),
	                    "HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
	assert_true(wp_h1p_down_finished(b));
	assert_int_equal(wp_h1p_core_idle(core), 0); /* not pooled */
	assert_int_equal(n_close, 2);
	assert_int_equal(n_finish, 2); /* its exchange ended: FIN too */
	wp_h1p_sess_close(a);
	wp_h1p_sess_close(b);
}

/* LEAST_REQUEST (Istio's default) sees the requests in flight: 400
 * requests held open on the 2 endpoints of "reviews" stay balanced at every
 * step, over several seeds, and completed requests stop counting (the
 * second round starts balanced again). The bound is the property, not a
 * seed's outcome: with two endpoints the power-of-two-choices pick goes to
 * the less loaded one unless both draws (after one redraw) hit the same
 * endpoint, 1 pick in 4, half of those to the busier one; so the lead
 * grows by 1 with probability 1/8 and shrinks otherwise. It reaches 9 within
 * 400 picks with probability 2.5e-5, while a blind random pick stays within
 * +-8 over 400 picks with probability 5e-4. */
static void test_least_request(void **state)
{
	struct wp_h1p_cfg cfg = wp_h1p_default_cfg;
	static struct wp_h1p_sess *s[400];
	const uint64_t seeds[] = {99, 1, 2, 3, 7, 42, 1000003, 0x9e3779b97f4a7c15ULL};

	(void)state;
	cfg.max_sessions = 400;
	cfg.max_upstreams = 800;
	cfg.buf_size = 4096;
	mk_core(&cfg, std_rules); /* seed 99, the table and route core */
	for (unsigned k = 0; k < WP_ARRAY_SIZE(seeds); k++) {
		int lead_max = 0;

		if (k > 0) { /* the same table, a core with another seed */
			wp_h1p_core_destroy(core);
			assert_int_equal(n_open, n_close);
			n_open = n_close = 0; /* every fake upstream slot is free again */
			core = wp_h1p_core_create(&cfg, &ops, NULL, &rcore, seeds[k], ctr);
			assert_non_null(core);
		}
		for (int round = 0; round < 2; round++) {
			int on[2] = {0, 0};

			for (int i = 0; i < 400; i++) {
				struct wp_h1p_up *up;
				int lead;

				s[i] = sess_open();
				down_all(s[i], "GET /r HTTP/1.1\r\nHost: r\r\n\r\n");
				up = wp_h1p_sess_up(s[i]);
				assert_non_null(up);
				on[(ep_host(up) & 0xff) - 1]++;
				lead = abs(on[0] - on[1]);
				if (lead > lead_max)
					lead_max = lead;
			}
			assert_int_equal(on[0] + on[1], 400);
			/* finish them all: the counts go back to zero */
			for (int i = 0; i < 400; i++) {
				struct wp_h1p_up *up = wp_h1p_sess_up(s[i]);

				wp_h1p_up_connected(up);
				take_up(up);
				up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
				wp_h1p_sess_close(s[i]);
			}
		}
		print_message("least request, seed %llu: largest lead %d over 2 x 400 in flight\n",
		              (unsigned long long)seeds[k], lead_max);
		assert_in_range(lead_max, 1, 8);
	}
}

/* HTTPRoute timeouts: request (whole exchange) -> 504 before any response
 * byte; backendRequest (per try) -> the response in progress is cut. */
static void test_timeouts(void **state)
{
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up;

	(void)state;
	mk_core(NULL, "  - matches: [{path: {type: PathPrefix, value: /slow}}]\n"
	              "    timeouts: {request: 2s}\n"
	              "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	              "  - matches: [{path: {type: PathPrefix, value: /try}}]\n"
	              "    timeouts: {request: 10s, backendRequest: 500ms}\n"
	              "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
	              "  - backendRefs: [{name: reviews-v2, port: 9080}]\n");
	wp_h1p_core_tick(core, 10000);
	s = sess_open();
	down_all(s, "GET /slow HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	/* 2 s and the millisecond the clock may lag: not yet at 12000 */
	wp_h1p_core_tick(core, 12000);
	assert_int_equal(wp_h1p_down_peek(s, &(const uint8_t *){NULL}), 0);
	assert_int_equal(n_wake, 0);
	wp_h1p_core_tick(core, 12001);
	assert_int_equal(n_wake, 1);
	assert_int_equal(ctr[WP_CTR_L7_H1P_TIMEOUT], 1);
	assert_true(strncmp(take_down(s), "HTTP/1.1 504 ", 13) == 0);
	assert_true(wp_h1p_down_finished(s));
	assert_int_equal(n_close, 1); /* the late upstream is not reused */
	wp_h1p_sess_close(s);

	/* a request answered in time has no timer left */
	s = sess_open();
	down_all(s, "GET /slow HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	take_down(s);
	wp_h1p_core_tick(core, 20000);
	assert_false(wp_h1p_down_finished(s));
	assert_int_equal(ctr[WP_CTR_L7_H1P_TIMEOUT], 1);

	/* per try: the response started, then stalled: cut, no 504 */
	wp_h1p_core_clock(core, 20000);
	down_all(s, "GET /try HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	take_up(up);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
	assert_non_null(strstr(take_down(s), "abc"));
	wp_h1p_core_tick(core, 20500);
	assert_false(wp_h1p_down_finished(s));
	wp_h1p_core_tick(core, 20501);
	assert_int_equal(ctr[WP_CTR_L7_H1P_TIMEOUT], 2);
	assert_string_equal(take_down(s), "");
	assert_true(wp_h1p_down_finished(s));
	wp_h1p_sess_close(s);

	/* no timeouts configured: never */
	s = sess_open();
	down_all(s, "GET /other HTTP/1.1\r\nHost: r\r\n\r\n");
	wp_h1p_core_tick(core, 20500 + 3000000);
	assert_false(wp_h1p_down_finished(s));
	assert_int_equal(ctr[WP_CTR_L7_H1P_TIMEOUT], 2);
	wp_h1p_sess_close(s);
}

/* A client idle between requests is closed after down_idle_timeout_ms; one
 * waiting for a response is not. */
static void test_client_idle_timeout(void **state)
{
	struct wp_h1p_cfg cfg = wp_h1p_default_cfg;
	struct wp_h1p_sess *s, *busy;
	struct wp_h1p_up *up;

	(void)state;
	cfg.down_idle_timeout_ms = 5000;
	mk_core(&cfg, std_rules);
	wp_h1p_core_tick(core, 1000);
	s = sess_open();
	busy = sess_open();
	down_all(busy, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	wp_h1p_core_clock(core, 3000);
	down_all(s, "GET /v1 HTTP/1.1\r\nHost: r\r\n\r\n");
	up = wp_h1p_sess_up(s);
	wp_h1p_up_connected(up);
	take_up(up);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	take_down(s);
	wp_h1p_core_tick(core, 7999); /* idle since 3000 */
	assert_false(wp_h1p_down_finished(s));
	wp_h1p_core_tick(core, 8000);
	assert_true(wp_h1p_down_finished(s));
	assert_int_equal(ctr[WP_CTR_L7_H1P_DOWN_IDLE_TIMEOUT], 1);
	assert_int_equal(n_wake, 1);
	assert_false(wp_h1p_down_finished(busy)); /* in a request */
	wp_h1p_sess_close(s);
	wp_h1p_sess_close(busy);
}

static const char *mirror_rules = "  - matches: [{path: {type: PathPrefix, value: /m}}]\n"
                                  "    filters:\n    - type: RequestMirror\n      requestMirror:\n"
                                  "        backendRef: {name: reviews-v3, port: 9080}\n"
                                  "    backendRefs: [{name: reviews-v1, port: 9080}]\n";

/* The upstream opened for the mirror (reviews-v3: 10.0.4.x). */
static struct wp_h1p_up *mirror_up(void)
{
	for (int i = n_open; i-- > 0;)
		if (fups[i].up->mirror && !fups[i].closed)
			return fups[i].up;
	return NULL;
}

/* RequestMirror: the copy goes to the mirror cluster with the shadow host,
 * the same request id and the whole body (chunked too); its response is
 * thrown away; a slow mirror or a request cut short abandons the copy and
 * never the request. */
static void test_mirror(void **state)
{
	struct wp_h1p_cfg cfg = wp_h1p_default_cfg;
	struct wp_h1p_sess *s;
	struct wp_h1p_up *up, *mu;
	static char big[12000];
	char id[40], *u;

	(void)state;
	cfg.buf_size = 8192;
	mk_core(&cfg, mirror_rules);
	s = sess_open();
	down_all(s, "POST /m/x HTTP/1.1\r\nHost: reviews:9080\r\nContent-Length: 5\r\n\r\nhel");
	up = wp_h1p_sess_up(s);
	mu = mirror_up();
	assert_non_null(up);
	assert_non_null(mu);
	assert_null(up->mirror);
	assert_int_equal(n_open, 2);
	assert_int_equal(ep_host(mu) >> 8, 4); /* reviews-v3 */
	assert_int_equal(ep_host(up) >> 8, 2); /* reviews-v1 */
	assert_int_equal(ctr[WP_CTR_L7_H1P_MIRROR], 1);
	assert_true(n_ready >= 1);
	down_all(s, "lo");
	wp_h1p_up_connected(up);
	u = take_up(up);
	assert_non_null(strstr(u, "host: reviews:9080\r\n"));
	assert_non_null(strstr(u, "\r\n\r\nhello"));
	assert_non_null(strstr(u, "x-request-id: "));
	memcpy(id, strstr(u, "x-request-id: ") + 14, 36);
	id[36] = '\0';
	wp_h1p_up_connected(mu);
	u = take_up(mu);
	assert_true(strncmp(u, "POST /m/x HTTP/1.1\r\n", 20) == 0);
	assert_non_null(strstr(u, "host: reviews-shadow:9080\r\n"));
	assert_non_null(strstr(u, "connection: close\r\n"));
	assert_non_null(strstr(u, id)); /* the same generated request id */
	assert_non_null(strstr(u, "\r\n\r\nhello"));
	/* responses: the real one reaches the client, the mirror's nowhere */
	assert_int_equal(wp_h1p_up_in(mu, (const uint8_t *)"HTTP/1.1 500 X\r\n\r\n", 18), 18);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
	u = take_down(s);
	assert_true(strncmp(u, "HTTP/1.1 200 OK", 15) == 0);
	assert_null(strstr(u, "500"));
	wp_h1p_up_eof(mu); /* connection: close */
	assert_true(fups[1].closed);

	/* chunked body, copied chunk by chunk */
	down_all(s, "POST /m/c HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n"
	            "3\r\nabc\r\n0\r\n\r\n");
	mu = mirror_up();
	assert_non_null(mu);
	u = take_up(mu);
	assert_non_null(strstr(u, "host: r-shadow\r\n"));
	assert_non_null(strstr(u, "\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
	up = wp_h1p_sess_up(s);
	take_up(up);
	up_all(up, "HTTP/1.1 204 No Content\r\n\r\n");
	take_down(s);
	((struct fup *)mu->io)->closed = true;
	wp_h1p_up_failed(mu); /* the mirror's connection dies: only counted */
	n_close++;            /* the host dropped it itself */
	assert_int_equal(ctr[WP_CTR_L7_H1P_MIRROR_FAILED], 1);
	assert_false(wp_h1p_down_finished(s));

	/* a mirror slower than the request is abandoned; the request is whole */
	memset(big, 'b', sizeof(big));
	down_all(s, "POST /m/big HTTP/1.1\r\nHost: r\r\nContent-Length: 12000\r\n\r\n");
	up = wp_h1p_sess_up(s);
	take_up(up);
	{
		size_t off = 0, total = 0;

		while (off < sizeof(big)) {
			off += wp_h1p_down_in(s, (const uint8_t *)big + off, sizeof(big) - off);
			total += strlen(take_up(up));
		}
		assert_int_equal(total, sizeof(big));
	}
	assert_int_equal(ctr[WP_CTR_L7_H1P_MIRROR_OVERFLOW], 1);
	assert_null(mirror_up());
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	take_down(s);

	/* the client goes away mid-body: the copy is abandoned */
	down_all(s, "POST /m/cut HTTP/1.1\r\nHost: r\r\nContent-Length: 10\r\n\r\nab");
	assert_non_null(mirror_up());
	wp_h1p_down_eof(s);
	assert_int_equal(ctr[WP_CTR_L7_H1P_MIRROR_ABANDONED], 1);
	assert_null(mirror_up());
	wp_h1p_sess_close(s);

	/* a mirror whose backend never closes is closed by the timer */
	s = sess_open();
	wp_h1p_core_clock(core, 100);
	down_all(s, "GET /m/t HTTP/1.1\r\nHost: r\r\n\r\n");
	mu = mirror_up();
	assert_non_null(mu);
	up = wp_h1p_sess_up(s);
	take_up(up);
	up_all(up, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
	wp_h1p_core_tick(core, 100 + cfg.mirror_timeout_ms - 1);
	assert_non_null(mirror_up());
	wp_h1p_core_tick(core, 100 + cfg.mirror_timeout_ms);
	assert_null(mirror_up());
	assert_int_equal(ctr[WP_CTR_L7_H1P_MIRROR_TIMEOUT], 1);
	wp_h1p_sess_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_keepalive_and_reuse, teardown),
	        cmocka_unit_test_teardown(test_pipelining, teardown),
	        cmocka_unit_test_teardown(test_chunked_both_ways_bytewise, teardown),
	        cmocka_unit_test_teardown(test_expect_continue, teardown),
	        cmocka_unit_test_teardown(test_upgrade_passthrough, teardown),
	        cmocka_unit_test_teardown(test_upgrade_declined_nothing_smuggled, teardown),
	        cmocka_unit_test_teardown(test_unasked_switch, teardown),
	        cmocka_unit_test_teardown(test_http10_until_eof, teardown),
	        cmocka_unit_test_teardown(test_malformed_and_smuggling, teardown),
	        cmocka_unit_test_teardown(test_local_answers, teardown),
	        cmocka_unit_test_teardown(test_upstream_failures, teardown),
	        cmocka_unit_test_teardown(test_early_response, teardown),
	        cmocka_unit_test_teardown(test_mods_and_rewrite, teardown),
	        cmocka_unit_test_teardown(test_backpressure_large_body, teardown),
	        cmocka_unit_test_teardown(test_backpressure_response, teardown),
	        cmocka_unit_test_teardown(test_pool_limits, teardown),
	        cmocka_unit_test_teardown(test_weighted_split, teardown),
	        cmocka_unit_test_teardown(test_least_request, teardown),
	        cmocka_unit_test_teardown(test_drain, teardown),
	        cmocka_unit_test_teardown(test_timeouts, teardown),
	        cmocka_unit_test_teardown(test_client_idle_timeout, teardown),
	        cmocka_unit_test_teardown(test_mirror, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
