/*
 * Unit tests for dp/http: the HTTP/1.x parser (every event kind, feeds split
 * at every byte boundary with the input buffer freed after each feed,
 * pipelining, chunked with extensions and trailers, 100-continue, upgrade
 * and CONNECT passthrough offsets, HTTP/1.0, limits -> 431, malformed -> 400,
 * each request-smuggling shape refused with its own counter), the response
 * side (1xx, 101, HEAD/204/304, read-until-EOF) and the serialisers
 * (hop-by-hop stripping, re-framing, x-request-id, header hooks, errors).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http1.h"
#include "wp/counters.h"

struct fx {
	struct wp_http1_parser p;
	uint64_t ctr[WP_CTR_MAX];
	void *arena;
	struct wp_http1_limits lim;
};

static struct fx *fx_new(enum llhttp_type type, const struct wp_http1_limits *lim)
{
	struct fx *x = calloc(1, sizeof(*x));
	x->lim = lim ? *lim : wp_http1_default_limits;
	size_t sz = wp_http1_arena_size(&x->lim);
	x->arena = malloc(sz);
	assert_int_equal(wp_http1_parser_init(&x->p, type, &x->lim, x->arena, sz, x->ctr), 0);
	return x;
}

static void fx_free(struct fx *x)
{
	free(x->arena);
	free(x);
}

/* A transcript of the events, independent of how the input was split. */
struct rec {
	char log[16384];
	size_t n;
	char body[8192];
	size_t body_len;
	size_t upgrade_at; /* absolute offset of the first passthrough byte */
	int upgraded;
	uint16_t err_status;
	uint16_t err_ctr;
	int errors;
	int heads;
	int dones;
};

static void logf_(struct rec *r, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(r->log + r->n, sizeof(r->log) - r->n, fmt, ap);
	va_end(ap);
	assert_true(k >= 0 && (size_t)k < sizeof(r->log) - r->n);
	r->n += (size_t)k;
}

static void log_hdrs(struct rec *r, const char *tag, const struct wp_http_hdr *h, uint16_t n)
{
	for (uint16_t i = 0; i < n; i++)
		logf_(r, "%s %.*s=%.*s|%d|%d\n", tag, h[i].name_len, h[i].name, (int)h[i].value_len,
		      h[i].value, h[i].id, h[i].flags);
}

static void log_msg(struct rec *r, const struct wp_http1_msg *m)
{
	logf_(r, "HEAD m=%d s=%d v=%d.%d t=%.*s r=%.*s f=%x cl=%llu\n", m->method, m->status,
	      m->http_major, m->http_minor, (int)m->target_len, m->target ? m->target : "",
	      m->reason_len, m->reason ? m->reason : "", m->flags,
	      (unsigned long long)m->content_length);
	log_hdrs(r, "H", m->hdrs, m->n_hdrs);
}

/* Feeds in[0..len) cut at the given offsets; each piece lives in its own
 * heap buffer that is scribbled over and freed once consumed. Returns the
 * transcript in *r. */
static void feed_cuts(struct fx *x, const char *in, size_t len, const size_t *cuts, size_t ncuts,
                      struct rec *r)
{
	size_t start = 0;
	memset(r, 0, sizeof(*r));
	for (size_t c = 0; c <= ncuts; c++) {
		size_t end = c < ncuts ? cuts[c] : len;
		size_t plen = end - start;
		uint8_t *piece = malloc(plen ? plen : 1);
		memcpy(piece, in + start, plen);
		size_t off = 0;
		bool stop = false;
		for (;;) {
			struct wp_http1_ev ev;
			size_t used = wp_http1_parse(&x->p, piece + off, plen - off, &ev);
			assert_true(used <= plen - off);
			off += used;
			switch (ev.type) {
			case WP_HTTP1_EV_NONE:
				assert_int_equal(off, plen);
				stop = true;
				break;
			case WP_HTTP1_EV_HEAD:
				r->heads++;
				log_msg(r, ev.msg);
				break;
			case WP_HTTP1_EV_BODY:
				assert_true(ev.len > 0);
				assert_true(ev.data >= piece && ev.data + ev.len <= piece + off);
				assert_true(r->body_len + ev.len <= sizeof(r->body));
				memcpy(r->body + r->body_len, ev.data, ev.len);
				r->body_len += ev.len;
				break;
			case WP_HTTP1_EV_DONE:
				r->dones++;
				logf_(r, "BODY %zu:%.*s\n", r->body_len, (int)r->body_len, r->body);
				r->body_len = 0;
				/* the head must still be intact at DONE */
				log_msg(r, ev.msg);
				log_hdrs(r, "T", ev.msg->trailers, ev.msg->n_trailers);
				logf_(r, "DONE\n");
				break;
			case WP_HTTP1_EV_UPGRADE:
				r->upgraded = 1;
				r->upgrade_at = start + off;
				logf_(r, "UPGRADE\n");
				stop = true;
				break;
			case WP_HTTP1_EV_ERROR:
				r->errors++;
				r->err_status = ev.status;
				r->err_ctr = ev.ctr;
				logf_(r, "ERROR %d %d\n", ev.status, ev.ctr);
				stop = true;
				break;
			}
			if (stop)
				break;
		}
		memset(piece, 0xA5, plen);
		free(piece);
		if (r->upgraded || r->errors)
			break;
		start = end;
	}
}

static void feed_all(struct fx *x, const char *in, size_t len, struct rec *r)
{
	feed_cuts(x, in, len, NULL, 0, r);
}

/* The transcript must not depend on how the input is cut: one cut at every
 * offset, then one byte per feed. */
static void check_splits(enum llhttp_type type, uint8_t method, const char *in)
{
	size_t len = strlen(in);
	struct rec *ref = malloc(sizeof(*ref)), *r = malloc(sizeof(*r));
	struct fx *x = fx_new(type, NULL);
	wp_http1_parser_expect_response(&x->p, method);
	feed_all(x, in, len, ref);
	assert_int_equal(ref->errors, 0);
	assert_true(ref->dones > 0);
	fx_free(x);

	for (size_t i = 1; i < len; i++) {
		x = fx_new(type, NULL);
		wp_http1_parser_expect_response(&x->p, method);
		feed_cuts(x, in, len, &i, 1, r);
		if (r->n != ref->n || memcmp(r->log, ref->log, r->n) != 0)
			fail_msg("cut at %zu:\n%.*s\nexpected:\n%.*s", i, (int)r->n, r->log,
			         (int)ref->n, ref->log);
		assert_int_equal(r->upgrade_at, ref->upgrade_at);
		fx_free(x);
	}
	size_t *cuts = malloc(len * sizeof(*cuts));
	for (size_t i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	x = fx_new(type, NULL);
	wp_http1_parser_expect_response(&x->p, method);
	feed_cuts(x, in, len, cuts, len - 1, r);
	assert_int_equal(r->n, ref->n);
	assert_memory_equal(r->log, ref->log, r->n);
	assert_int_equal(r->upgrade_at, ref->upgrade_at);
	fx_free(x);
	free(cuts);
	free(ref);
	free(r);
}

/* ---------------------------------------------------------------- requests */

static const char GET1[] = "GET /index.html?a=1 HTTP/1.1\r\n"
                           "Host: example.com\r\n"
                           "User-Agent: curl/7.88 \r\n"
                           "Accept: */*\r\n"
                           "X-Empty:\r\n"
                           "\r\n";

static void test_simple_get(void **state)
{
	(void)state;
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct wp_http1_ev ev;
	size_t len = strlen(GET1);

	size_t n = wp_http1_parse(&x->p, (const uint8_t *)GET1, len, &ev);
	assert_int_equal(n, len);
	assert_int_equal(ev.type, WP_HTTP1_EV_HEAD);
	struct wp_http1_msg *m = ev.msg;
	assert_int_equal(m->method, HTTP_GET);
	assert_int_equal(m->http_major, 1);
	assert_int_equal(m->http_minor, 1);
	assert_int_equal(m->target_len, strlen("/index.html?a=1"));
	assert_memory_equal(m->target, "/index.html?a=1", m->target_len);
	assert_int_equal(m->n_hdrs, 4);
	assert_memory_equal(m->hdrs[1].name, "user-agent", 10); /* lower-cased */
	assert_int_equal(m->hdrs[1].value_len, 9);              /* OWS trimmed */
	assert_memory_equal(m->hdrs[1].value, "curl/7.88", 9);
	assert_int_equal(m->hdrs[0].id, WP_HDR_HOST);
	assert_int_equal(m->hdrs[3].value_len, 0);
	assert_true(m->flags & WP_HTTP1_F_KEEP_ALIVE);
	assert_false(m->flags & (WP_HTTP1_F_CHUNKED | WP_HTTP1_F_CONTENT_LENGTH));
	const struct wp_http_hdr *h = wp_http1_find(m, "accept", 6);
	assert_non_null(h);
	assert_memory_equal(h->value, "*/*", 3);
	assert_null(wp_http1_find(m, "cookie", 6));
	assert_int_equal(x->ctr[WP_CTR_HTTP1_REQ_HEAD], 1);

	/* the message completes on the next call, with no more bytes needed */
	n = wp_http1_parse(&x->p, (const uint8_t *)"", 0, &ev);
	assert_int_equal(n, 0);
	assert_int_equal(ev.type, WP_HTTP1_EV_DONE);
	assert_memory_equal(ev.msg->target, "/index.html?a=1", 15);
	n = wp_http1_parse(&x->p, NULL, 0, &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_NONE);
	fx_free(x);
}

static void test_head_then_done_without_new_bytes(void **state)
{
	(void)state;
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct rec *r = malloc(sizeof(*r));
	feed_all(x, GET1, strlen(GET1), r);
	assert_int_equal(r->heads, 1);
	assert_int_equal(r->dones, 1);
	assert_int_equal(r->errors, 0);
	free(r);
	fx_free(x);
}

static const char POST_CL[] = "POST /upload HTTP/1.1\r\n"
                              "Host: a\r\n"
                              "Content-Length: 11\r\n"
                              "\r\n"
                              "hello world";

static void test_post_content_length(void **state)
{
	(void)state;
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct rec *r = malloc(sizeof(*r));
	feed_all(x, POST_CL, strlen(POST_CL), r);
	assert_int_equal(r->dones, 1);
	assert_non_null(strstr(r->log, "BODY 11:hello world\n"));
	assert_non_null(strstr(r->log, "cl=11"));
	free(r);
	fx_free(x);
}

static const char CHUNKED[] = "POST /c HTTP/1.1\r\n"
                              "Host: a\r\n"
                              "Transfer-Encoding: chunked\r\n"
                              "Trailer: x-checksum\r\n"
                              "\r\n"
                              "4;ext=1\r\nWiki\r\n"
                              "5;name=\"quoted\"\r\npedia\r\n"
                              "E\r\n in\r\n\r\nchunks.\r\n"
                              "0\r\n"
                              "X-Checksum: abc\r\n"
                              "X-Other: 2\r\n"
                              "\r\n";

static void test_chunked_extensions_trailers(void **state)
{
	(void)state;
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct rec *r = malloc(sizeof(*r));
	feed_all(x, CHUNKED, strlen(CHUNKED), r);
	assert_int_equal(r->errors, 0);
	assert_int_equal(r->dones, 1);
	assert_non_null(strstr(r->log, "BODY 23:Wikipedia in\r\n\r\nchunks.\n"));
	assert_non_null(strstr(r->log, "T x-checksum=abc|0|0\n"));
	assert_non_null(strstr(r->log, "T x-other=2|0|0\n"));
	char f[32];
	snprintf(f, sizeof(f), "f=%x ", WP_HTTP1_F_KEEP_ALIVE | WP_HTTP1_F_CHUNKED);
	assert_non_null(strstr(r->log, f));
	free(r);
	fx_free(x);
}

static const char PIPE[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
                           "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nxyz"
                           "\r\n" /* stray CRLF between messages is allowed */
                           "GET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";

static void test_pipelining(void **state)
{
	(void)state;
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	const uint8_t *in = (const uint8_t *)PIPE;
	size_t len = strlen(PIPE), off = 0;
	struct wp_http1_ev ev;
	const char *targets[] = {"/a", "/b", "/c"};
	int heads = 0, dones = 0;

	/* the parser stops after each head and each message */
	for (;;) {
		size_t n = wp_http1_parse(&x->p, in + off, len - off, &ev);
		off += n;
		if (ev.type == WP_HTTP1_EV_NONE)
			break;
		if (ev.type == WP_HTTP1_EV_HEAD) {
			assert_int_equal(ev.msg->target_len, 2);
			assert_memory_equal(ev.msg->target, targets[heads], 2);
			heads++;
			assert_int_equal(dones, heads - 1);
		} else if (ev.type == WP_HTTP1_EV_DONE) {
			assert_memory_equal(ev.msg->target, targets[dones], 2);
			dones++;
			if (dones == 1)
				assert_int_equal(off, strlen("GET /a HTTP/1.1\r\nHost: a\r\n\r\n"));
		} else if (ev.type == WP_HTTP1_EV_BODY) {
			assert_int_equal(ev.len, 3);
			assert_memory_equal(ev.data, "xyz", 3);
		} else {
			assert_int_equal(ev.type, WP_HTTP1_EV_NONE);
		}
	}
	assert_int_equal(heads, 3);
	assert_int_equal(dones, 3);
	assert_false(x->p.msg.flags & WP_HTTP1_F_KEEP_ALIVE);

	/* anything after a Connection: close request is refused */
	size_t n = wp_http1_parse(&x->p, (const uint8_t *)"GET /", 5, &ev);
	assert_int_equal(n, 5);
	assert_int_equal(ev.type, WP_HTTP1_EV_ERROR);
	assert_int_equal(ev.ctr, WP_CTR_HTTP1_DATA_AFTER_CLOSE);
	assert_int_equal(x->ctr[WP_CTR_HTTP1_DATA_AFTER_CLOSE], 1);
	fx_free(x);
}

static void test_expect_continue(void **state)
{
	(void)state;
	static const char in[] = "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n"
	                         "Content-Length: 2\r\n\r\n";
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct wp_http1_ev ev;
	size_t n = wp_http1_parse(&x->p, (const uint8_t *)in, strlen(in), &ev);
	assert_int_equal(n, strlen(in));
	assert_int_equal(ev.type, WP_HTTP1_EV_HEAD);
	assert_true(ev.msg->flags & WP_HTTP1_F_EXPECT_CONTINUE);
	/* the proxy answers 100 Continue, then the body arrives */
	char buf[64];
	int k = wp_http1_write_continue(buf, sizeof(buf));
	assert_int_equal(k, strlen("HTTP/1.1 100 Continue\r\n\r\n"));
	assert_memory_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n", k);
	n = wp_http1_parse(&x->p, (const uint8_t *)"ok", 2, &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_BODY);
	assert_int_equal(n, 2);
	n = wp_http1_parse(&x->p, (const uint8_t *)"", 0, &ev);
	fx_free(x);

	/* HTTP/1.0 clients don't get 100-continue semantics */
	static const char in10[] = "PUT /f HTTP/1.0\r\nExpect: 100-continue\r\n\r\n";
	x = fx_new(HTTP_REQUEST, NULL);
	n = wp_http1_parse(&x->p, (const uint8_t *)in10, strlen(in10), &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_HEAD);
	assert_false(ev.msg->flags & WP_HTTP1_F_EXPECT_CONTINUE);
	fx_free(x);
}

static const char UPG[] = "GET /chat HTTP/1.1\r\n"
                          "Host: a\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "\r\n"
                          "\x81\x05hello";

static void test_upgrade_passthrough_offset(void **state)
{
	(void)state;
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct rec *r = malloc(sizeof(*r));
	size_t len = sizeof(UPG) - 1;
	feed_all(x, UPG, len, r);
	assert_int_equal(r->heads, 1);
	assert_int_equal(r->dones, 1);
	assert_true(r->upgraded);
	assert_int_equal(r->upgrade_at, len - 7);
	char f[32];
	snprintf(f, sizeof(f), "f=%x ", WP_HTTP1_F_KEEP_ALIVE | WP_HTTP1_F_UPGRADE);
	assert_non_null(strstr(r->log, f));
	/* once upgraded the parser consumes nothing more */
	struct wp_http1_ev ev;
	assert_int_equal(wp_http1_parse(&x->p, (const uint8_t *)"abc", 3, &ev), 0);
	assert_int_equal(ev.type, WP_HTTP1_EV_UPGRADE);
	assert_int_equal(x->ctr[WP_CTR_HTTP1_UPGRADE], 1);
	free(r);
	fx_free(x);
}

static void test_connect_passthrough(void **state)
{
	(void)state;
	static const char in[] = "CONNECT db.svc:5432 HTTP/1.1\r\nHost: db.svc:5432\r\n\r\nRAW";
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct rec *r = malloc(sizeof(*r));
	feed_all(x, in, strlen(in), r);
	assert_true(r->upgraded);
	assert_int_equal(r->upgrade_at, strlen(in) - 3);
	assert_non_null(strstr(r->log, "t=db.svc:5432"));
	free(r);
	fx_free(x);
}

static void test_upgrade_without_connection_is_plain(void **state)
{
	(void)state;
	static const char in[] = "GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct rec *r = malloc(sizeof(*r));
	feed_all(x, in, strlen(in), r);
	assert_false(r->upgraded);
	assert_int_equal(r->dones, 1);
	free(r);
	fx_free(x);
}

static void test_http10(void **state)
{
	(void)state;
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct wp_http1_ev ev;
	static const char a[] = "GET / HTTP/1.0\r\n\r\n"; /* no Host needed */
	wp_http1_parse(&x->p, (const uint8_t *)a, strlen(a), &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_HEAD);
	assert_int_equal(ev.msg->http_minor, 0);
	assert_false(ev.msg->flags & WP_HTTP1_F_KEEP_ALIVE);
	fx_free(x);

	x = fx_new(HTTP_REQUEST, NULL);
	static const char b[] = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
	                        "GET /2 HTTP/1.0\r\n\r\n";
	struct rec *r = malloc(sizeof(*r));
	feed_all(x, b, strlen(b), r);
	assert_int_equal(r->dones, 2);
	assert_int_equal(r->errors, 0);
	assert_false(x->p.msg.flags & WP_HTTP1_F_KEEP_ALIVE);
	free(r);
	fx_free(x);
}

static void test_split_every_boundary(void **state)
{
	(void)state;
	check_splits(HTTP_REQUEST, 0, GET1);
	check_splits(HTTP_REQUEST, 0, POST_CL);
	check_splits(HTTP_REQUEST, 0, CHUNKED);
	check_splits(HTTP_REQUEST, 0, PIPE);
	check_splits(HTTP_REQUEST, 0, UPG);
}

/* ------------------------------------------------------------- rejections */

static void expect_reject(const char *in, const struct wp_http1_limits *lim, uint16_t status,
                          enum wp_ctr ctr)
{
	size_t len = strlen(in);
	struct rec *r = malloc(sizeof(*r));
	struct fx *x = fx_new(HTTP_REQUEST, lim);
	feed_all(x, in, len, r);
	if (r->errors != 1 || r->err_status != status || r->err_ctr != ctr)
		fail_msg("input %s\nwant %d/%d got:\n%.*s", in, status, ctr, (int)r->n, r->log);
	assert_int_equal(x->ctr[ctr], 1);
	/* nothing was handed out as a complete message */
	assert_int_equal(r->dones, 0);
	/* the parser stays dead */
	struct wp_http1_ev ev;
	assert_int_equal(wp_http1_parse(&x->p, (const uint8_t *)"GET", 3, &ev), 3);
	assert_int_equal(ev.type, WP_HTTP1_EV_ERROR);
	assert_int_equal(ev.status, status);
	fx_free(x);

	/* same decision when fed one byte at a time */
	size_t *cuts = malloc(len * sizeof(*cuts));
	for (size_t i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	x = fx_new(HTTP_REQUEST, lim);
	feed_cuts(x, in, len, cuts, len - 1, r);
	assert_int_equal(r->errors, 1);
	assert_int_equal(r->err_status, status);
	assert_int_equal(r->err_ctr, ctr);
	fx_free(x);
	free(cuts);
	free(r);
}

static void test_limits_431(void **state)
{
	(void)state;
	struct wp_http1_limits lim = {.max_line = 42, .max_header_bytes = 64, .max_headers = 4};
	char big[256];

	/* request line without CRLF: 3 + 1 + 30 + 1 + 8 = 43 > 42 */
	snprintf(big, sizeof(big), "GET /%029d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
	expect_reject(big, &lim, 431, WP_CTR_HTTP1_LINE_TOO_LONG);
	/* exactly at the limit is fine */
	snprintf(big, sizeof(big), "GET /%028d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
	struct rec *r = malloc(sizeof(*r));
	struct fx *x = fx_new(HTTP_REQUEST, &lim);
	feed_all(x, big, strlen(big), r);
	assert_int_equal(r->errors, 0);
	assert_int_equal(r->dones, 1);
	fx_free(x);

	/* header bytes: 4 + 1 + 6 + 54 = 65 > 64 */
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX-Pad1: %054d\r\n\r\n", 0);
	expect_reject(big, &lim, 431, WP_CTR_HTTP1_HEADERS_TOO_LARGE);
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: a\r\nX-Pad1: %053d\r\n\r\n", 0);
	x = fx_new(HTTP_REQUEST, &lim);
	feed_all(x, big, strlen(big), r);
	assert_int_equal(r->errors, 0);
	fx_free(x);

	/* header count: 5 > 4 */
	expect_reject("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", &lim,
	              431, WP_CTR_HTTP1_TOO_MANY_HEADERS);
	x = fx_new(HTTP_REQUEST, &lim);
	static const char four[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
	feed_all(x, four, strlen(four), r);
	assert_int_equal(r->errors, 0);
	fx_free(x);

	/* trailers count against the same limits */
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
	              &lim, 431, WP_CTR_HTTP1_TOO_MANY_HEADERS);
	free(r);
}

static void test_malformed_400(void **state)
{
	(void)state;
	expect_reject("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", NULL, 400, WP_CTR_HTTP1_METHOD_INVALID);
	expect_reject("GET / HTTP/1.x\r\nHost: a\r\n\r\n", NULL, 400, WP_CTR_HTTP1_VERSION_INVALID);
	expect_reject("GET / HTTP/2.0\r\nHost: a\r\n\r\n", NULL, 400, WP_CTR_HTTP1_VERSION_INVALID);
	expect_reject("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_TARGET_INVALID);
	expect_reject("GET / HTTP/1.1\r\n\r\n", NULL, 400, WP_CTR_HTTP1_HOST_MISSING);
	expect_reject("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_HOST_DUPLICATE);
	expect_reject("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_HEADER_VALUE_INVALID);
	expect_reject("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_HEADER_NAME_INVALID);
	expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_HEADER_NAME_INVALID);
	expect_reject("GET / HTTP/1.1\r\nHost: a\nX: b\n\n", NULL, 400,
	              WP_CTR_HTTP1_HEADER_VALUE_INVALID);
	expect_reject("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_LINE_ENDING_INVALID);
	expect_reject("GET / HTTP/1.1\r\n Host: a\r\n\r\n", NULL, 400, WP_CTR_HTTP1_MALFORMED);
}

/* Every byte value at several places of a 30-byte header value (inside a
 * word of eight, at a word's last byte, in the tail after the last whole
 * word): only control characters but HTAB are refused, obs-text passes;
 * one byte per feed decides the same. A bare LF or CR deep in a long head
 * is refused too. */
static void test_value_bytes(void **state)
{
	static const size_t at[] = {1, 7, 8, 15, 21, 24, 28};
	char in[128];

	(void)state;
	for (unsigned b = 0; b < 256; b++) {
		bool bad = (b < 0x20 && b != '\t') || b == 0x7f;

		if (b == '\r' || b == '\n')
			continue; /* line ends: test_line_endings */
		for (size_t k = 0; k < WP_ARRAY_SIZE(at); k++) {
			char v[31] = "abcdefghijklmnopqrstuvwxyz0123";
			struct rec *r = malloc(sizeof(*r));
			struct fx *x = fx_new(HTTP_REQUEST, NULL);

			v[at[k]] = (char)b;
			memcpy(in, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
			memcpy(in + 28, v, 30);
			memcpy(in + 58, "\r\n\r\n", 4);
			feed_cuts(x, in, 62, NULL, 0, r);
			if (bad ? r->errors != 1 || r->err_status != 400
			        : r->errors != 0 || r->dones != 1)
				fail_msg("byte 0x%02x at %zu: errors %u dones %u", b, at[k],
				         r->errors, r->dones);
			fx_free(x);
			free(r);
		}
	}
	expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcdef\r\n"
	              "Y: 1\r\nZ: 2\nW: 3\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_HEADER_VALUE_INVALID);
	expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX-Long: 0123456789abcdef\r\n"
	              "Y: 1\r\nZ: 2\rW: 3\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_LINE_ENDING_INVALID);
}

static void test_smuggling_refused(void **state)
{
	(void)state;
	/* CL + TE, both orders */
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_CL_WITH_TE);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	              "Content-Length: 4\r\n\r\n0\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_CL_WITH_TE);
	/* duplicate Content-Length, equal or conflicting, or as a list */
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	              "Content-Length: 3\r\n\r\nabc",
	              NULL, 400, WP_CTR_HTTP1_CL_DUPLICATE);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
	              "Content-Length: 5\r\n\r\nabcde",
	              NULL, 400, WP_CTR_HTTP1_CL_DUPLICATE);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc", NULL, 400,
	              WP_CTR_HTTP1_CL_INVALID);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc", NULL, 400,
	              WP_CTR_HTTP1_CL_INVALID);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n"
	              "\r\n",
	              NULL, 400, WP_CTR_HTTP1_CL_INVALID);
	/* Transfer-Encoding not ending in chunked, or chunked twice */
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_TE_INVALID);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nab", NULL, 400,
	              WP_CTR_HTTP1_TE_INVALID);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_TE_INVALID);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_TE_INVALID);
	/* a space before the colon must not hide Transfer-Encoding */
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n"
	              "Content-Length: 3\r\n\r\nabc",
	              NULL, 400, WP_CTR_HTTP1_HEADER_NAME_INVALID);
	/* obs-fold, including one that would continue Transfer-Encoding */
	expect_reject("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_OBS_FOLD);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n", NULL,
	              400, WP_CTR_HTTP1_OBS_FOLD);
	/* bad chunk sizes */
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "-1\r\nA\r\n0\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_CHUNK_INVALID);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "0x1\r\nA\r\n0\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_CHUNK_INVALID);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "fffffffffffffffff\r\n",
	              NULL, 400, WP_CTR_HTTP1_CHUNK_INVALID);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "1\r\nAB\r\n0\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_CHUNK_INVALID);
}

/* A head ends only at CRLF CRLF (issue 19): llhttp's default build ended it
 * at "\r\n\r" + any byte and swallowed that byte, and took a bare LF as the
 * empty line. Every cut gives the same 400 (expect_reject feeds byte-wise). */
static void test_head_end_needs_crlf(void **state)
{
	(void)state;
	expect_reject("GET / HTTP/1.1\r\nHost: a\r\n\rX", NULL, 400,
	              WP_CTR_HTTP1_LINE_ENDING_INVALID);
	expect_reject("GET / HTTP/1.1\r\nHost: a\r\n\r\tGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_LINE_ENDING_INVALID);
	expect_reject("GET / HTTP/1.1\r\nHost: a\r\n\n", NULL, 400,
	              WP_CTR_HTTP1_LINE_ENDING_INVALID);
	expect_reject("GET / HTTP/1.1\nHost: a\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_LINE_ENDING_INVALID);
	/* the same inside chunk framing and trailers (the body may hold any byte) */
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "2\r\n\r\r\r\n0\r\nT: 1\r\n\rX",
	              NULL, 400, WP_CTR_HTTP1_LINE_ENDING_INVALID);
	expect_reject("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	              "2\rXab\r\n0\r\n\r\n",
	              NULL, 400, WP_CTR_HTTP1_LINE_ENDING_INVALID);
	/* CR and LF in bodies are body bytes */
	check_splits(HTTP_REQUEST, 0,
	             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	             "3\r\n\r\r\n\r\n0\r\n\r\n"
	             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n\n\r");

	/* responses: 502 */
	struct fx *x = fx_new(HTTP_RESPONSE, NULL);
	struct rec *r = malloc(sizeof(*r));
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\rXok";
	wp_http1_parser_expect_response(&x->p, HTTP_GET);
	feed_all(x, resp, strlen(resp), r);
	assert_int_equal(r->errors, 1);
	assert_int_equal(r->heads, 0);
	assert_int_equal(r->err_status, 502);
	assert_int_equal(x->ctr[WP_CTR_HTTP1_LINE_ENDING_INVALID], 1);
	free(r);
	fx_free(x);
}

/* An HTTP/1.0 Upgrade request (no keep-alive) followed by more bytes: the
 * upgrade at the same offset whatever the cut (found by fuzz_http1_request:
 * one feed said 400 "data after close", a cut one an upgrade). */
static void test_http10_upgrade_split(void **state)
{
	(void)state;
	static const char in[] = "GET /up HTTP/1.0\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n"
	                         "GET /SMUGGLED HTTP/1.1\r\n";
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct rec *r = malloc(sizeof(*r));

	feed_all(x, in, strlen(in), r);
	assert_int_equal(r->errors, 0);
	assert_true(r->upgraded);
	assert_int_equal(r->upgrade_at, strlen(in) - 24);
	free(r);
	fx_free(x);
	check_splits(HTTP_REQUEST, 0, in);

	/* the fuzzer's minimized input (its first byte, the cut seed, dropped):
	 * the second head ends at "\r\t", refused at every cut */
	static const char fz[] = "GET / HTTP/1.0\r\nContnwncei:0\r\nConnection: keep-alive\r\n\r3"
	                         "GET / HTTP/1.0\r\nCion: upgr$a\r\nUpgrade: \x85"
	                         "9\xb6\r\nConnection: upgrade\r\n\r\t\t";
	expect_reject(fz, NULL, 400, WP_CTR_HTTP1_LINE_ENDING_INVALID);
}

/* RFC 9112 3.2.2: the authority of an absolute-form target replaces Host
 * (added if missing), the target goes on in origin-form. */
static void test_absolute_form(void **state)
{
	(void)state;
	static const struct {
		const char *in, *target, *host;
	} ok[] = {
	        {"GET http://evil/abs HTTP/1.1\r\nHost: p\r\n\r\n", "/abs", "evil"},
	        {"GET HTTP://Evil:8080/a?b=1 HTTP/1.1\r\nHost: p\r\n\r\n", "/a?b=1", "Evil:8080"},
	        {"GET https://evil HTTP/1.1\r\nHost: p\r\n\r\n", "/", "evil"},
	        {"GET http://evil?q=1 HTTP/1.1\r\nHost: p\r\n\r\n", "/?q=1", "evil"},
	        {"GET http://evil/x HTTP/1.0\r\n\r\n", "/x", "evil"},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct fx *x = fx_new(HTTP_REQUEST, NULL);
		struct wp_http1_ev ev;
		const struct wp_http_hdr *h;
		char out[512];
		int n;

		wp_http1_parse(&x->p, (const uint8_t *)ok[i].in, strlen(ok[i].in), &ev);
		assert_int_equal(ev.type, WP_HTTP1_EV_HEAD);
		assert_int_equal(ev.msg->target_len, strlen(ok[i].target));
		assert_memory_equal(ev.msg->target, ok[i].target, ev.msg->target_len);
		h = wp_http1_find(ev.msg, "host", 4);
		assert_non_null(h);
		assert_int_equal(h->value_len, strlen(ok[i].host));
		assert_memory_equal(h->value, ok[i].host, h->value_len);
		assert_int_equal(x->ctr[WP_CTR_HTTP1_ABSOLUTE_FORM], 1);
		/* and so it goes upstream: one Host, the target's */
		n = wp_http1_write_request_head(ev.msg, NULL, out, sizeof(out) - 1);
		assert_true(n > 0);
		out[n] = '\0';
		assert_true(strncmp(out + 4, ok[i].target, strlen(ok[i].target)) == 0);
		assert_non_null(strstr(out, ok[i].host));
		assert_null(strstr(out, "host: p\r\n"));
		fx_free(x);
	}
	check_splits(HTTP_REQUEST, 0, "GET http://evil?q HTTP/1.1\r\nHost: p\r\n\r\n");
	expect_reject("GET http://u@evil/ HTTP/1.1\r\nHost: p\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_TARGET_INVALID);
	expect_reject("GET http:///x HTTP/1.1\r\nHost: p\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_TARGET_INVALID);
	expect_reject("GET ftp://evil/x HTTP/1.1\r\nHost: p\r\n\r\n", NULL, 400,
	              WP_CTR_HTTP1_TARGET_INVALID);
	/* HTTP/1.1 still needs a Host (RFC 9112 3.2) */
	expect_reject("GET http://evil/x HTTP/1.1\r\n\r\n", NULL, 400, WP_CTR_HTTP1_HOST_MISSING);
}

static void test_eof(void **state)
{
	(void)state;
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct wp_http1_ev ev;
	/* between messages: nothing to report */
	wp_http1_parse_eof(&x->p, &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_NONE);
	/* a cut body is an error */
	static const char in[] = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc";
	struct rec *r = malloc(sizeof(*r));
	feed_all(x, in, strlen(in), r);
	assert_int_equal(r->heads, 1);
	wp_http1_parse_eof(&x->p, &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_ERROR);
	assert_int_equal(ev.ctr, WP_CTR_HTTP1_TRUNCATED);
	free(r);
	fx_free(x);
}

/* --------------------------------------------------------------- responses */

static void test_response_paths(void **state)
{
	(void)state;
	struct rec *r = malloc(sizeof(*r));
	struct fx *x;

	/* 100 Continue, then the final response with a chunked body */
	static const char a[] = "HTTP/1.1 100 Continue\r\n\r\n"
	                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                        "3\r\nabc\r\n0\r\n\r\n";
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_POST);
	feed_all(x, a, strlen(a), r);
	assert_int_equal(r->heads, 2);
	assert_int_equal(r->dones, 2);
	assert_non_null(strstr(r->log, "s=100 v=1.1 t= r=Continue"));
	assert_non_null(strstr(r->log, "BODY 3:abc\n"));
	fx_free(x);
	check_splits(HTTP_RESPONSE, HTTP_POST, a);

	/* HEAD: Content-Length but no body; the next response follows at once */
	static const char b[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
	                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_HEAD);
	feed_all(x, b, strlen(b), r);
	assert_int_equal(r->dones, 2);
	assert_int_equal(r->errors, 0);
	assert_non_null(strstr(r->log, "s=404"));
	fx_free(x);
	check_splits(HTTP_RESPONSE, HTTP_HEAD, b);

	/* 204 and 304 have no body even without Content-Length */
	static const char c[] = "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n";
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_GET);
	feed_all(x, c, strlen(c), r);
	assert_int_equal(r->dones, 2);
	fx_free(x);

	/* nor with framing headers (RFC 9110 6.4.1), nor does a 1xx: the next
	 * response starts right after the empty line (fuzz_h2proxy's find) */
	static const char c2[] = "HTTP/1.1 199 Early\r\nContent-Length: 7\r\n\r\n"
	                         "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
	                         "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
	                         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_GET);
	feed_all(x, c2, strlen(c2), r);
	assert_int_equal(r->errors, 0);
	assert_int_equal(r->dones, 4);
	assert_non_null(strstr(r->log, "BODY 0:\nHEAD m=1 s=199"));
	assert_non_null(strstr(r->log, "BODY 0:\nHEAD m=1 s=204"));
	assert_non_null(strstr(r->log, "BODY 0:\nHEAD m=1 s=304"));
	assert_non_null(strstr(r->log, "BODY 2:ok\n"));
	fx_free(x);
	check_splits(HTTP_RESPONSE, HTTP_GET, c2);

	/* body until EOF */
	static const char d[] = "HTTP/1.1 200 OK\r\n\r\nstream until close";
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_GET);
	feed_all(x, d, strlen(d), r);
	assert_int_equal(r->heads, 1);
	assert_int_equal(r->dones, 0);
	assert_true(x->p.msg.flags & WP_HTTP1_F_BODY_UNTIL_EOF);
	assert_false(x->p.msg.flags & WP_HTTP1_F_KEEP_ALIVE);
	struct wp_http1_ev ev;
	wp_http1_parse_eof(&x->p, &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_DONE);
	fx_free(x);

	/* 101 Switching Protocols: passthrough right after the head */
	static const char e[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	                        "Connection: Upgrade\r\n\r\n\x81\x00";
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_GET);
	feed_all(x, e, strlen(e), r);
	assert_true(r->upgraded);
	assert_int_equal(r->upgrade_at, strlen(e) - 1);
	fx_free(x);

	/* 200 to CONNECT: tunnel, even with no framing headers */
	static const char f[] = "HTTP/1.1 200 Connection established\r\n\r\nTUNNEL";
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_CONNECT);
	feed_all(x, f, strlen(f), r);
	assert_true(r->upgraded);
	assert_int_equal(r->upgrade_at, strlen(f) - 6);
	fx_free(x);

	/* malformed or truncated responses are 502 decisions */
	static const char g[] = "HTTP/1.1 2x0 OK\r\n\r\n";
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_GET);
	feed_all(x, g, strlen(g), r);
	assert_int_equal(r->err_status, 502);
	assert_int_equal(r->err_ctr, WP_CTR_HTTP1_STATUS_INVALID);
	fx_free(x);

	static const char h[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab";
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_GET);
	feed_all(x, h, strlen(h), r);
	wp_http1_parse_eof(&x->p, &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_ERROR);
	assert_int_equal(ev.status, 502);
	assert_int_equal(ev.ctr, WP_CTR_HTTP1_TRUNCATED);
	fx_free(x);
	free(r);
}

/* ------------------------------------------------------------- serialisers */

/* Parses <in> as one request and returns its head (parser kept in *xo). */
static struct wp_http1_msg *parse_req(const char *in, struct fx **xo)
{
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct wp_http1_ev ev;
	wp_http1_parse(&x->p, (const uint8_t *)in, strlen(in), &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_HEAD);
	*xo = x;
	return ev.msg;
}

static void test_request_hop_by_hop(void **state)
{
	(void)state;
	static const char in[] = "POST /p?q=1 HTTP/1.1\r\n"
	                         "Host: svc.ns\r\n"
	                         "Connection: keep-alive, X-Secret\r\n"
	                         "X-Secret: s\r\n"
	                         "Keep-Alive: timeout=5\r\n"
	                         "Proxy-Connection: keep-alive\r\n"
	                         "TE: gzip, trailers\r\n"
	                         "Trailer: x-sum\r\n"
	                         "Upgrade: h2c\r\n"
	                         "Transfer-Encoding: chunked\r\n"
	                         "X-Request-Id: keep-me\r\n"
	                         "Accept: */*\r\n"
	                         "\r\n";
	struct fx *x;
	struct wp_http1_msg *m = parse_req(in, &x);
	struct wp_http_reqid_rng rng;
	wp_http_reqid_seed(&rng, 1);
	struct wp_http1_req_opts o = {.rng = &rng, .ctr = x->ctr};
	char buf[1024];
	int n = wp_http1_write_request_head(m, &o, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	static const char want[] = "POST /p?q=1 HTTP/1.1\r\n"
	                           "host: svc.ns\r\n"
	                           "x-request-id: keep-me\r\n"
	                           "accept: */*\r\n"
	                           "transfer-encoding: chunked\r\n"
	                           "te: trailers\r\n"
	                           "\r\n";
	assert_string_equal(buf, want);
	assert_int_equal(x->ctr[WP_CTR_HTTP1_REQID_GENERATED], 0);

	/* too small a buffer is refused, at every size */
	for (int cap = 0; cap < n; cap++)
		assert_int_equal(wp_http1_write_request_head(m, &o, buf, (size_t)cap), -ENOSPC);
	fx_free(x);
}

/* A client naming Content-Length or Host in Connection must not make the
 * proxy drop them: the body would reach the backend as a second request. */
static void test_connection_cannot_strip_framing(void **state)
{
	(void)state;
	struct fx *x;
	struct wp_http1_msg *m = parse_req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
	                                   "Connection: content-length, host, x-a\r\nX-A: 1\r\n"
	                                   "X-Request-Id: r\r\n\r\n",
	                                   &x);
	char buf[512];
	int n = wp_http1_write_request_head(m, NULL, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_string_equal(buf, "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n"
	                         "x-request-id: r\r\n\r\n");
	fx_free(x);
}

static bool is_uuid4(const char *s)
{
	for (int i = 0; i < 36; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return s[14] == '4' && (s[19] == '8' || s[19] == '9' || s[19] == 'a' || s[19] == 'b');
}

static void test_request_id(void **state)
{
	(void)state;
	struct fx *x;
	struct wp_http1_msg *m = parse_req("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &x);
	struct wp_http_reqid_rng rng;
	wp_http_reqid_seed(&rng, 42);
	char id[37] = {0}, id2[37] = {0}, buf[512];
	bool gen = false;
	struct wp_http1_req_opts o = {
	        .rng = &rng, .reqid_out = id, .reqid_generated = &gen, .ctr = x->ctr};
	int n = wp_http1_write_request_head(m, &o, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_true(gen);
	assert_true(is_uuid4(id));
	char line[64];
	snprintf(line, sizeof(line), "x-request-id: %s\r\n", id);
	assert_non_null(strstr(buf, line));
	assert_int_equal(x->ctr[WP_CTR_HTTP1_REQID_GENERATED], 1);
	/* a second request gets a different id */
	o.reqid_out = id2;
	n = wp_http1_write_request_head(m, &o, buf, sizeof(buf));
	assert_true(n > 0);
	assert_true(is_uuid4(id2));
	assert_string_not_equal(id, id2);
	/* an empty x-request-id is replaced */
	fx_free(x);
	m = parse_req("GET / HTTP/1.1\r\nHost: a\r\nX-Request-Id:\r\n\r\n", &x);
	o.ctr = x->ctr;
	n = wp_http1_write_request_head(m, &o, buf, sizeof(buf));
	assert_true(gen);
	fx_free(x);
	/* many ids: all well-formed, no repeats among a few thousand */
	char(*ids)[36] = malloc(4000 * 36);
	for (int i = 0; i < 4000; i++) {
		wp_http_reqid_gen(&rng, ids[i]);
		char t[37];
		memcpy(t, ids[i], 36);
		t[36] = 0;
		assert_true(is_uuid4(t));
	}
	for (int i = 0; i < 4000; i++)
		for (int j = i + 1; j < 4000; j++)
			assert_true(memcmp(ids[i], ids[j], 36) != 0);
	free(ids);
}

static void test_request_mods_upgrade_authority(void **state)
{
	(void)state;
	struct fx *x;
	struct wp_http1_msg *m = parse_req("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
	                                   "Connection: upgrade\r\nX-Drop: 1\r\nX-Set: old\r\n"
	                                   "X-Request-Id: r\r\n\r\n",
	                                   &x);
	static const struct wp_http_hdr set[] = {
	        {.name = "x-set", .name_len = 5, .value = "new", .value_len = 3}};
	static const struct wp_http_hdr add[] = {
	        {.name = "x-add", .name_len = 5, .value = "1", .value_len = 1}};
	static const struct wp_http_hdr rm[] = {{.name = "X-DROP", .name_len = 6}};
	struct wp_http_hdr_mods mods = {
	        .set = set, .n_set = 1, .add = add, .n_add = 1, .remove = rm, .n_remove = 1};
	struct wp_http1_req_opts o = {.mods = &mods};
	char buf[512];
	int n = wp_http1_write_request_head(m, &o, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_string_equal(buf, "GET /ws HTTP/1.1\r\nhost: a\r\nx-request-id: r\r\n"
	                         "x-set: new\r\nx-add: 1\r\n"
	                         "connection: upgrade\r\nupgrade: websocket\r\n\r\n");
	fx_free(x);

	/* HTTP/1.0 without Host: the proxy supplies the authority */
	m = parse_req("GET / HTTP/1.0\r\nX-Request-Id: r\r\n\r\n", &x);
	struct wp_http1_req_opts o2 = {.authority = "svc.ns:80", .authority_len = 9};
	n = wp_http1_write_request_head(m, &o2, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_string_equal(buf, "GET / HTTP/1.1\r\nhost: svc.ns:80\r\nx-request-id: r\r\n\r\n");
	fx_free(x);
}

/* The written request parses back to the same end-to-end headers. */
static void test_request_round_trip(void **state)
{
	(void)state;
	struct fx *x, *y;
	struct wp_http1_msg *m = parse_req("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	                                   "Connection: close\r\nA: 1\r\n\r\n",
	                                   &x);
	struct wp_http_reqid_rng rng;
	wp_http_reqid_seed(&rng, 7);
	struct wp_http1_req_opts o = {.rng = &rng};
	char buf[512];
	int n = wp_http1_write_request_head(m, &o, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	struct wp_http1_msg *m2 = parse_req(buf, &y);
	assert_int_equal(m2->method, HTTP_PUT);
	assert_true(m2->flags & WP_HTTP1_F_CONTENT_LENGTH);
	assert_int_equal(m2->content_length, 3);
	assert_true(m2->flags & WP_HTTP1_F_KEEP_ALIVE); /* upstream stays pooled */
	assert_int_equal(m2->n_hdrs, 4);                /* host, content-length, a, x-request-id */
	assert_non_null(wp_http1_find(m2, "x-request-id", 12));
	assert_null(wp_http1_find(m2, "connection", 10));
	fx_free(x);
	fx_free(y);
}

static struct wp_http1_msg *parse_resp(const char *in, uint8_t method, struct fx **xo)
{
	struct fx *x = fx_new(HTTP_RESPONSE, NULL);
	struct wp_http1_ev ev;
	wp_http1_parser_expect_response(&x->p, method);
	wp_http1_parse(&x->p, (const uint8_t *)in, strlen(in), &ev);
	assert_int_equal(ev.type, WP_HTTP1_EV_HEAD);
	*xo = x;
	return ev.msg;
}

static void test_response_head_framing(void **state)
{
	(void)state;
	struct fx *rq, *rq10, *rs;
	struct wp_http1_msg *req = parse_req("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &rq);
	struct wp_http1_msg *req10 =
	        parse_req("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &rq10);
	char buf[512];
	enum wp_http1_framing f;
	int n;

	/* chunked from upstream to an HTTP/1.1 client: re-chunked */
	struct wp_http1_msg *resp = parse_resp("HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\n"
	                                       "Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
	                                       "Content-Type: text/plain\r\n\r\n",
	                                       HTTP_GET, &rs);
	n = wp_http1_write_response_head(resp, req, true, NULL, &f, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_int_equal(f, WP_HTTP1_FRAME_CHUNKED);
	assert_string_equal(buf, "HTTP/1.1 200 Fine\r\ncontent-type: text/plain\r\n"
	                         "transfer-encoding: chunked\r\n\r\n");
	/* ... and to an HTTP/1.0 client: raw body, then close */
	n = wp_http1_write_response_head(resp, req10, true, NULL, &f, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_int_equal(f, WP_HTTP1_FRAME_CLOSE);
	assert_string_equal(buf, "HTTP/1.1 200 Fine\r\ncontent-type: text/plain\r\n"
	                         "connection: close\r\n\r\n");
	fx_free(rs);

	/* Content-Length passes through; 1.0 keep-alive is acknowledged */
	resp = parse_resp("HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\n", HTTP_GET, &rs);
	n = wp_http1_write_response_head(resp, req10, true, NULL, &f, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = 0;
	assert_int_equal(f, WP_HTTP1_FRAME_LENGTH);
	assert_string_equal(buf, "HTTP/1.1 404 Not Found\r\ncontent-length: 5\r\n"
	                         "connection: keep-alive\r\n\r\n");
	/* the proxy decided to close */
	n = wp_http1_write_response_head(resp, req, false, NULL, &f, buf, sizeof(buf));
	buf[n] = 0;
	assert_non_null(strstr(buf, "connection: close\r\n"));
	fx_free(rs);

	/* 304: no body, no framing */
	resp = parse_resp("HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", HTTP_GET, &rs);
	n = wp_http1_write_response_head(resp, req, true, NULL, &f, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(f, WP_HTTP1_FRAME_NONE);
	fx_free(rs);

	/* 100 Continue is forwarded bare */
	resp = parse_resp("HTTP/1.1 100 Continue\r\n\r\n", HTTP_POST, &rs);
	n = wp_http1_write_response_head(resp, req, true, NULL, &f, buf, sizeof(buf));
	buf[n] = 0;
	assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
	assert_int_equal(f, WP_HTTP1_FRAME_NONE);
	fx_free(rs);

	/* 101 keeps Upgrade and says connection: upgrade */
	resp = parse_resp(
	        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	        "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	        "\r\n",
	        HTTP_GET, &rs);
	n = wp_http1_write_response_head(resp, req, true, NULL, &f, buf, sizeof(buf));
	buf[n] = 0;
	assert_int_equal(f, WP_HTTP1_FRAME_TUNNEL);
	assert_string_equal(buf, "HTTP/1.1 101 Switching Protocols\r\n"
	                         "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	                         "connection: upgrade\r\nupgrade: websocket\r\n\r\n");
	fx_free(rs);
	fx_free(rq);
	fx_free(rq10);
}

static void test_chunk_helpers_and_errors(void **state)
{
	(void)state;
	char buf[256];
	assert_int_equal(wp_http1_write_chunk_header(0x1a2b, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "1a2b\r\n", 6);
	assert_int_equal(wp_http1_write_chunk_header(1, buf, sizeof(buf)), 3);
	assert_int_equal(wp_http1_write_chunk_header(0, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(wp_http1_write_chunk_header(0x1a2b, buf, 5), -ENOSPC);

	struct wp_http_hdr tr[] = {
	        {.name = "x-sum", .name_len = 5, .value = "1", .value_len = 1},
	        {.name = "te", .name_len = 2, .value = "x", .value_len = 1, .flags = WP_HDR_F_HOP},
	};
	int n = wp_http1_write_last_chunk(tr, 2, buf, sizeof(buf));
	assert_int_equal(n, strlen("0\r\nx-sum: 1\r\n\r\n"));
	assert_memory_equal(buf, "0\r\nx-sum: 1\r\n\r\n", n);

	/* a re-chunked body parses back to the same bytes */
	char wire[256];
	int w = snprintf(wire, sizeof(wire),
	                 "POST / HTTP/1.1\r\nHost: a\r\n"
	                 "Transfer-Encoding: chunked\r\n\r\n");
	w += wp_http1_write_chunk_header(11, wire + w, sizeof(wire) - w);
	memcpy(wire + w, "hello world\r\n", 13);
	w += 13;
	w += wp_http1_write_last_chunk(tr, 1, wire + w, sizeof(wire) - w);
	wire[w] = 0;
	struct fx *x = fx_new(HTTP_REQUEST, NULL);
	struct rec *r = malloc(sizeof(*r));
	feed_all(x, wire, (size_t)w, r);
	assert_int_equal(r->dones, 1);
	assert_non_null(strstr(r->log, "BODY 11:hello world\n"));
	assert_non_null(strstr(r->log, "T x-sum=1"));
	fx_free(x);

	/* error responses parse as complete responses that close */
	static const uint16_t codes[] = {400, 431, 502, 503, 504, 599};
	for (size_t i = 0; i < WP_ARRAY_SIZE(codes); i++) {
		n = wp_http1_write_error(codes[i], false, buf, sizeof(buf));
		assert_true(n > 0);
		x = fx_new(HTTP_RESPONSE, NULL);
		wp_http1_parser_expect_response(&x->p, HTTP_GET);
		feed_all(x, buf, (size_t)n, r);
		assert_int_equal(r->errors, 0);
		assert_int_equal(r->dones, 1);
		char s[16];
		snprintf(s, sizeof(s), "s=%u ", codes[i]);
		assert_non_null(strstr(r->log, s));
		assert_false(x->p.msg.flags & WP_HTTP1_F_KEEP_ALIVE);
		fx_free(x);
		for (int cap = 0; cap < n; cap++)
			assert_int_equal(wp_http1_write_error(codes[i], false, buf, (size_t)cap),
			                 -ENOSPC);
	}
	n = wp_http1_write_error(431, false, buf, sizeof(buf));
	buf[n] = 0;
	assert_non_null(strstr(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
	assert_non_null(strstr(buf, "connection: close\r\n"));
	/* the answer to a HEAD request: the head alone, the body's length kept,
	 * a complete response to a parser that sent HEAD */
	n = wp_http1_write_local(503, "no healthy upstream", 19, true, true, buf, sizeof(buf));
	assert_true(n > 4);
	buf[n] = 0;
	assert_non_null(strstr(buf, "content-length: 19\r\n"));
	assert_memory_equal(buf + n - 4, "\r\n\r\n", 4);
	x = fx_new(HTTP_RESPONSE, NULL);
	wp_http1_parser_expect_response(&x->p, HTTP_HEAD);
	feed_all(x, buf, (size_t)n, r);
	assert_int_equal(r->errors, 0);
	assert_int_equal(r->dones, 1);
	fx_free(x);
	n = wp_http1_write_error(502, true, buf, sizeof(buf));
	assert_true(n > 4);
	assert_memory_equal(buf + n - 4, "\r\n\r\n", 4);
	free(r);
}

static void test_init_rejects_bad_args(void **state)
{
	(void)state;
	struct wp_http1_parser p;
	uint64_t ctr[WP_CTR_MAX];
	struct wp_http1_limits lim = wp_http1_default_limits;
	size_t sz = wp_http1_arena_size(&lim);
	void *mem = malloc(sz);
	assert_int_equal(wp_http1_parser_init(&p, HTTP_REQUEST, &lim, mem, sz - 1, ctr), -EINVAL);
	assert_int_equal(wp_http1_parser_init(&p, HTTP_BOTH, &lim, mem, sz, ctr), -EINVAL);
	assert_int_equal(wp_http1_parser_init(&p, HTTP_REQUEST, &lim, mem, sz, NULL), -EINVAL);
	assert_int_equal(wp_http1_parser_init(&p, HTTP_REQUEST, &lim, mem, sz, ctr), 0);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_simple_get),
	        cmocka_unit_test(test_head_then_done_without_new_bytes),
	        cmocka_unit_test(test_post_content_length),
	        cmocka_unit_test(test_chunked_extensions_trailers),
	        cmocka_unit_test(test_pipelining),
	        cmocka_unit_test(test_expect_continue),
	        cmocka_unit_test(test_upgrade_passthrough_offset),
	        cmocka_unit_test(test_connect_passthrough),
	        cmocka_unit_test(test_upgrade_without_connection_is_plain),
	        cmocka_unit_test(test_http10),
	        cmocka_unit_test(test_split_every_boundary),
	        cmocka_unit_test(test_limits_431),
	        cmocka_unit_test(test_value_bytes),
	        cmocka_unit_test(test_malformed_400),
	        cmocka_unit_test(test_smuggling_refused),
	        cmocka_unit_test(test_head_end_needs_crlf),
	        cmocka_unit_test(test_http10_upgrade_split),
	        cmocka_unit_test(test_absolute_form),
	        cmocka_unit_test(test_eof),
	        cmocka_unit_test(test_response_paths),
	        cmocka_unit_test(test_request_hop_by_hop),
	        cmocka_unit_test(test_connection_cannot_strip_framing),
	        cmocka_unit_test(test_request_id),
	        cmocka_unit_test(test_request_mods_upgrade_authority),
	        cmocka_unit_test(test_request_round_trip),
	        cmocka_unit_test(test_response_head_framing),
	        cmocka_unit_test(test_chunk_helpers_and_errors),
	        cmocka_unit_test(test_init_rejects_bad_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
