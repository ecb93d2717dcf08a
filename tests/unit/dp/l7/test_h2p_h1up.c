/*
 * h2c proxy session with HTTP/1.1 upstreams (dp/l7/h2proxy.c, a session
 * opened with WP_H2P_SESS_H1_UPSTREAM: an h2c client on an HTTP/1.1 port).
 * The test's nghttp2 client plays the downstream client; each upstream
 * connection the proxy opens is an in-memory HTTP/1.1 backend that parses
 * what it receives with the dp/http request parser (so the request framing
 * on the wire is checked strictly) and answers with scripted bytes. Covers
 * GET, POST with content-length, POST without (chunked on the wire),
 * request trailers as chunked trailers, a chunked response with trailers
 * (h2 trailers), 1xx dropped, keep-alive reuse for sequential streams and a
 * second connection for concurrent ones, `connection: close`, a malformed
 * response (502), an upstream close mid-body (RST_STREAM), a client reset
 * mid-request (the upstream connection closed), flow control with a client
 * that does not read (the upstream is no longer read), header modifiers,
 * mirrors skipped, DestinationRule connection-pool limits (a stream
 * waiting for the connection, Envoy's 503 overflow answer beyond the
 * line), and a retried 503 (the held body replayed on a new connection).
 * The client side and the harness are in h2c_fixture.h (shared with
 * test_h2proxy.c).
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
#include "http1.h"
#include "h2proxy.h"
#include "wp/counters.h"
#include "wp/model.h"
#include "wp/route.h"
#include "wp/snapshot_types.h"

#include "h2c_fixture.h"

static const struct fx_svc fsvcs[] = {{"reviews", 2, 1}, {"reviews-v1", 1, 2}, {"mirror", 1, 6}};

static const char *rules =
        "  - matches: [{path: {type: PathPrefix, value: /mods}}]\n"
        "    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n"
        "        set: [{name: X-Set, value: s}]\n"
        "    - type: ResponseHeaderModifier\n      responseHeaderModifier:\n"
        "        add: [{name: X-Resp, value: r}]\n"
        "    - type: RequestMirror\n      requestMirror:\n"
        "        backendRef: {name: mirror, port: 9080}\n"
        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /slow}}]\n"
        "    timeouts: {request: 2s}\n"
        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /r}}]\n"
        "    backendRefs: [{name: reviews, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /}}]\n"
        "    backendRefs: [{name: reviews-v1, port: 9080}]\n";

/* ---- the HTTP/1.1 backends -------------------------------------------------------------- */

#define MAX_FB  16
#define MAX_REQ 64
#define BIG     (1024 * 1024)

enum be_mode {
	BE_OK,        /* 200, content-length 2, "ok" */
	BE_CHUNKED,   /* 200 chunked "hello" with trailer x-trl: done */
	BE_CLOSE,     /* 200 with connection: close, then EOF */
	BE_MALFORMED, /* a bad status line */
	BE_SHORT,     /* content-length 100, 5 bytes, then EOF */
	BE_BIG,       /* content-length BIG */
	BE_HOLD,      /* no answer */
	BE_CONTINUE,  /* 100 Continue, then BE_OK */
	BE_HEAD,      /* 200, content-length 10, no body (a HEAD answer) */
	BE_SWITCH,    /* 101 Switching Protocols, then raw bytes */
	BE_503_ONCE,  /* 503 (kept alive), then BE_OK */
};

struct fb {
	struct h2fx_conn c; /* first: up->io points here */
	bool eof_sent, eof_after;
	struct wp_http1_parser p;
	void *arena;
	char out[512];
	size_t out_len, out_off, big_left, big_sent;
	int cur; /* request being received */
};

struct brq {
	int fb;
	char method[8], target[64], host[64], xset[8], xtrl[16], body[64], cookie[32];
	int n_cookie;
	size_t body_len;
	bool chunked, has_cl, has_te, done;
};

static struct fb fbs[MAX_FB];
static int n_fb;
static struct brq brqs[MAX_REQ];
static int n_brq;
static enum be_mode be_mode;
static bool be_eof_hold; /* the backends' EOFs wait */
static uint64_t be_ctr[WP_CTR_MAX];

static void hdr_cpy(const struct wp_http1_msg *m, const char *name, char *d, size_t cap)
{
	const struct wp_http_hdr *h = wp_http1_find(m, name, strlen(name));

	if (h)
		cpy(d, cap, h->value, h->value_len);
}

/* Sets the bytes the backend <f> sends next. */
__attribute__((format(printf, 2, 3))) static void be_out(struct fb *f, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(f->out, sizeof(f->out), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(f->out));
	f->out_len = (size_t)n;
	f->out_off = 0;
}

/* The backend <f> has received a whole request: its answer, per be_mode. */
static void be_answer(struct fb *f)
{
	int i = (int)(f - fbs);

	switch (be_mode) {
	case BE_OK:
		be_out(f, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-backend: %d\r\n\r\nok", i);
		break;
	case BE_CONTINUE:
		be_out(f,
		       "HTTP/1.1 100 Continue\r\n\r\n"
		       "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-backend: %d\r\n\r\nok",
		       i);
		break;
	case BE_CHUNKED:
		be_out(f,
		       "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
		       "trailer: x-trl\r\nx-backend: %d\r\n\r\n"
		       "5\r\nhello\r\n0\r\nx-trl: done\r\n\r\n",
		       i);
		break;
	case BE_CLOSE:
		be_out(f, "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok");
		f->eof_after = true;
		break;
	case BE_MALFORMED:
		be_out(f, "HTTP/1.1 2x0 OK\r\n\r\n");
		break;
	case BE_SHORT:
		be_out(f, "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort");
		f->eof_after = true;
		break;
	case BE_BIG:
		be_out(f, "HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n", BIG);
		f->big_left = BIG;
		break;
	case BE_SWITCH:
		be_out(f, "HTTP/1.1 101 Switching Protocols\r\nupgrade: foo\r\n"
		          "connection: upgrade\r\n\r\nraw");
		break;
	case BE_HOLD:
		f->out_len = f->out_off = 0;
		break;
	case BE_503_ONCE:
		be_out(f, "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 4\r\n\r\nbusy");
		be_mode = BE_OK;
		break;
	case BE_HEAD:
		be_out(f, "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n");
		break;
	}
}

/* The backend reads request bytes (strictly, with the dp/http parser). */
static void be_in(struct fb *f, const uint8_t *d, size_t len)
{
	for (;;) {
		struct wp_http1_ev ev;
		size_t n = wp_http1_parse(&f->p, d, len, &ev);
		struct brq *r = f->cur >= 0 ? &brqs[f->cur] : NULL;

		d += n;
		len -= n;
		switch (ev.type) {
		case WP_HTTP1_EV_NONE:
			assert_int_equal(len, 0);
			return;
		case WP_HTTP1_EV_HEAD:
			assert_true(n_brq < MAX_REQ);
			f->cur = n_brq++;
			r = &brqs[f->cur];
			memset(r, 0, sizeof(*r));
			r->fb = (int)(f - fbs);
			assert_int_equal(ev.msg->http_major, 1);
			assert_int_equal(ev.msg->http_minor, 1);
			cpy(r->method, sizeof(r->method), llhttp_method_name(ev.msg->method),
			    strlen(llhttp_method_name(ev.msg->method)));
			cpy(r->target, sizeof(r->target), ev.msg->target, ev.msg->target_len);
			hdr_cpy(ev.msg, "host", r->host, sizeof(r->host));
			hdr_cpy(ev.msg, "x-set", r->xset, sizeof(r->xset));
			hdr_cpy(ev.msg, "cookie", r->cookie, sizeof(r->cookie));
			for (uint16_t k = 0; k < ev.msg->n_hdrs; k++)
				r->n_cookie += ev.msg->hdrs[k].id == WP_HDR_COOKIE;
			r->chunked = (ev.msg->flags & WP_HTTP1_F_CHUNKED) != 0;
			r->has_cl = (ev.msg->flags & WP_HTTP1_F_CONTENT_LENGTH) != 0;
			r->has_te = wp_http1_find(ev.msg, "te", 2) != NULL;
			break;
		case WP_HTTP1_EV_BODY:
			assert_non_null(r);
			if (r->body_len < sizeof(r->body) - 1)
				cpy(r->body + r->body_len, sizeof(r->body) - r->body_len, ev.data,
				    ev.len);
			r->body_len += ev.len;
			break;
		case WP_HTTP1_EV_DONE:
			assert_non_null(r);
			for (uint16_t i = 0; i < ev.msg->n_trailers; i++)
				if (ev.msg->trailers[i].name_len == 5 &&
				    !memcmp(ev.msg->trailers[i].name, "x-trl", 5))
					cpy(r->xtrl, sizeof(r->xtrl), ev.msg->trailers[i].value,
					    ev.msg->trailers[i].value_len);
			r->done = true;
			f->cur = -1;
			be_answer(f);
			break;
		default:
			fail_msg("backend: bad request bytes (status %u)", ev.status);
		}
	}
}

static int f_open(void *host, struct wp_h2p_up *up, const struct wp_snap_endpoint *ep)
{
	struct fb *f;
	size_t asz = wp_http1_arena_size(&wp_http1_default_limits);

	(void)host;
	assert_true(up->h1);
	assert_true(n_fb < MAX_FB);
	f = &fbs[n_fb++];
	memset(f, 0, sizeof(*f));
	f->cur = -1;
	f->arena = aligned_alloc(64, (asz + 63) & ~(size_t)63);
	assert_non_null(f->arena);
	assert_int_equal(wp_http1_parser_init(&f->p, HTTP_REQUEST, &wp_http1_default_limits,
	                                      f->arena, asz, be_ctr),
	                 0);
	h2fx_conn_init(&f->c, up, ep);
	return 0;
}

/* A graceful close (FIN): a close for the harness, counted apart. */
static int n_finish;

static void f_finish(void *host, struct wp_h2p_up *up)
{
	h2fx_up_close(host, up);
	n_finish++;
}

static const struct wp_h2p_ops ops = {
        .up_open = f_open, .up_close = h2fx_up_close, .up_finish = f_finish};

/* ---- the client ------------------------------------------------------------------------- */

static const nghttp2_nv *g_extra; /* more request fields */
static size_t g_n_extra;

/* A request on the client (te: trailers, content-length: <clen> when set, the
 * g_extra fields); returns its stream id. */
static int32_t req(const char *method, const char *path, const char *body, const char *clen)
{
	nghttp2_nv nv[8] = {
	        {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
	        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
	        {(uint8_t *)":authority", (uint8_t *)"reviews:9080", 10, 12, 0},
	        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
	        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0},
	};
	size_t n = 5;

	if (clen)
		nv[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)clen, 14,
		                       strlen(clen), 0};
	for (size_t i = 0; i < g_n_extra && n < WP_ARRAY_SIZE(nv); i++)
		nv[n++] = g_extra[i];
	return h2fx_submit(nv, n, body);
}

/* ---- harness ---------------------------------------------------------------------------- */

static void mk_cfg(const struct wp_h2p_cfg *cfg)
{
	n_fb = n_brq = n_finish = 0;
	be_mode = BE_OK;
	be_eof_hold = false;
	g_extra = NULL;
	g_n_extra = 0;
	fx_svcs = fsvcs;
	fx_n_svcs = WP_ARRAY_SIZE(fsvcs);
	fx_port_name = "http";
	h2fx_open(cfg, &ops, rules, WP_H2P_SESS_H1_UPSTREAM);
}

static void mk(void)
{
	mk_cfg(&wp_h2p_default_cfg);
}

static int teardown(void **state)
{
	(void)state;
	fx_dr_tp = NULL;
	h2fx_close();
	for (int i = 0; i < n_fb; i++)
		free(fbs[i].arena);
	return 0;
}

static uint8_t bigbuf[16384];

/* Moves bytes everywhere until nothing moves. */
static void pump(void)
{
	for (int round = 0; round < 100000; round++) {
		bool moved = h2fx_pump_down();
		const uint8_t *p;
		size_t k;

		for (int i = 0; i < n_fb; i++) {
			struct fb *f = &fbs[i];

			if (!h2fx_conn_ready(&f->c))
				continue;
			while (!f->c.closed && (k = wp_h2p_up_peek(f->c.up, &p)) > 0) {
				be_in(f, p, k);
				wp_h2p_up_consume(f->c.up, k);
				moved = true;
			}
			while (!f->c.closed && f->out_off < f->out_len) {
				k = wp_h2p_up_in(f->c.up, (const uint8_t *)f->out + f->out_off,
				                 f->out_len - f->out_off);
				if (k == 0)
					break;
				f->out_off += k;
				moved = true;
			}
			while (!f->c.closed && f->out_off == f->out_len && f->big_left > 0) {
				size_t m = WP_MIN(f->big_left, sizeof(bigbuf));

				memset(bigbuf, 'b', m);
				k = wp_h2p_up_in(f->c.up, bigbuf, m);
				if (k == 0)
					break;
				f->big_left -= k;
				f->big_sent += k;
				moved = true;
			}
			if (!f->c.closed && f->eof_after && !be_eof_hold && !f->eof_sent &&
			    f->out_off == f->out_len) {
				f->eof_sent = true;
				wp_h2p_up_eof(f->c.up); /* h2fx_up_close() */
				moved = true;
			}
		}
		if (!moved)
			return;
	}
	fail_msg("pump did not settle");
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_get(void **state)
{
	static const nghttp2_nv x[] = {
	        {(uint8_t *)"cookie", (uint8_t *)"a=1", 6, 3, 0},
	        {(uint8_t *)"x-other", (uint8_t *)"o", 7, 1, 0},
	        {(uint8_t *)"cookie", (uint8_t *)"b=2", 6, 3, 0},
	};
	struct cresp *r;

	(void)state;
	mk();
	g_extra = x;
	g_n_extra = 3;
	req("GET", "/a?x=1", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 1);
	assert_int_equal(n_brq, 1);
	assert_string_equal(brqs[0].method, "GET");
	assert_string_equal(brqs[0].target, "/a?x=1");
	assert_string_equal(brqs[0].host, "reviews:9080");
	assert_false(brqs[0].chunked);
	assert_false(brqs[0].has_cl);
	assert_false(brqs[0].has_te);                    /* hop-by-hop, not forwarded */
	assert_string_equal(brqs[0].cookie, "a=1; b=2"); /* one field (RFC 9113 8.2.3) */
	assert_int_equal(brqs[0].n_cookie, 1);
	r = &cresps[0];
	assert_int_equal(r->status, 200);
	assert_string_equal(r->text, "ok");
	assert_string_equal(r->backend, "0");
	assert_true(r->closed);
	assert_int_equal(r->code, 0);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_CONN], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_NEW], 0);
	assert_int_equal(wp_h2p_core_streams(core), 0);
	/* the connection stays for the next request; idle expiry closes it */
	assert_false(fbs[0].c.closed);
	assert_int_equal(wp_h2p_core_tick(core, 60000), 1);
	assert_true(fbs[0].c.closed);
	assert_int_equal(n_finish, 1); /* idle: a FIN, not a reset */
}

/* SIGTERM drain: an idle HTTP/1.1 upstream is closed gracefully (issue 19:
 * the backend saw a reset); one whose exchange was cut is aborted. */
static void test_drain_fin(void **state)
{
	(void)state;
	mk();
	req("GET", "/a", NULL, NULL);
	pump();
	assert_int_equal(cresps[0].status, 200);
	assert_false(fbs[0].c.closed);
	wp_h2p_core_drain(core);
	assert_true(fbs[0].c.closed);
	assert_int_equal(n_finish, 1);
	be_mode = BE_MALFORMED;
	req("GET", "/b", NULL, NULL);
	pump();
	assert_int_equal(cresps[1].status, 502);
	assert_true(fbs[1].c.closed);
	assert_int_equal(n_finish, 1); /* aborted */
}

static void test_post_content_length(void **state)
{
	(void)state;
	mk();
	req("POST", "/p", "hello", "5");
	pump();
	assert_int_equal(n_brq, 1);
	assert_string_equal(brqs[0].method, "POST");
	assert_true(brqs[0].has_cl);
	assert_false(brqs[0].chunked);
	assert_string_equal(brqs[0].body, "hello");
	assert_int_equal(cresps[0].status, 200);
	assert_string_equal(cresps[0].text, "ok");
}

static void test_post_chunked_and_trailers(void **state)
{
	(void)state;
	mk();
	req("POST", "/p", "hello", NULL);
	pump();
	assert_int_equal(n_brq, 1);
	assert_true(brqs[0].chunked); /* no content-length: chunked on the wire */
	assert_string_equal(brqs[0].body, "hello");
	assert_string_equal(brqs[0].xtrl, "");
	/* request trailers become the chunked trailer section (same connection) */
	g_trailer = "t1";
	req("POST", "/p", "world", NULL);
	pump();
	assert_int_equal(n_fb, 1);
	assert_int_equal(n_brq, 2);
	assert_true(brqs[1].chunked);
	assert_string_equal(brqs[1].body, "world");
	assert_string_equal(brqs[1].xtrl, "t1");
	assert_int_equal(cresps[1].status, 200);
	/* with a content-length they are dropped (counted) */
	req("POST", "/p", "abc", "3");
	pump();
	assert_int_equal(n_brq, 3);
	assert_true(brqs[2].has_cl);
	assert_string_equal(brqs[2].body, "abc");
	assert_string_equal(brqs[2].xtrl, "");
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_TRAILERS_DROPPED], 1);
	assert_int_equal(cresps[2].status, 200);
}

static void test_chunked_response_trailers(void **state)
{
	struct cresp *r;

	(void)state;
	mk();
	be_mode = BE_CHUNKED;
	req("GET", "/c", NULL, NULL);
	pump();
	r = &cresps[0];
	assert_int_equal(r->status, 200);
	assert_string_equal(r->text, "hello");
	assert_true(r->trailers);
	assert_string_equal(r->xtrl, "done");
	assert_false(r->has_conn); /* transfer-encoding / trailer not forwarded */
	assert_true(r->closed);
	assert_int_equal(r->code, 0);
	/* a 1xx is dropped, the final response forwarded */
	be_mode = BE_CONTINUE;
	req("GET", "/c", NULL, NULL);
	pump();
	assert_int_equal(cresps[1].status, 200);
	assert_string_equal(cresps[1].text, "ok");
	assert_int_equal(ctr[WP_CTR_L7_H2P_INTERIM_DROPPED], 1);
	assert_int_equal(n_fb, 1);
}

static void test_keepalive_reuse(void **state)
{
	(void)state;
	mk();
	for (int i = 0; i < 5; i++) {
		req("GET", "/s", NULL, NULL);
		pump();
	}
	assert_int_equal(n_fb, 1); /* sequential: one connection */
	assert_int_equal(n_brq, 5);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_CONN], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_REUSE], 4);
	for (int i = 0; i < 5; i++)
		assert_int_equal(cresps[i].status, 200);
	/* concurrent streams: one connection each (the idle one reused) */
	be_mode = BE_HOLD;
	req("GET", "/c1", NULL, NULL);
	req("GET", "/c2", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 2);
	assert_int_equal(n_brq, 7);
	assert_int_equal(wp_h2p_core_upstreams(core), 2);
	assert_int_not_equal(brqs[5].fb, brqs[6].fb);
	be_mode = BE_OK;
	be_answer(&fbs[0]);
	be_answer(&fbs[1]);
	pump();
	assert_int_equal(cresps[5].status, 200);
	assert_int_equal(cresps[6].status, 200);
	assert_true(cresps[6].closed);
}

/* at most max_idle_h1_per_ep connections stay idle per endpoint */
static void test_idle_bound(void **state)
{
	struct wp_h2p_cfg cfg = wp_h2p_default_cfg;

	(void)state;
	cfg.max_idle_h1_per_ep = 2;
	mk_cfg(&cfg);
	for (int i = 0; i < 4; i++)
		req("GET", "/c", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(cresps[i].status, 200);
	assert_int_equal(wp_h2p_core_upstreams(core), 2);
	assert_int_equal(n_close, 2);
	assert_int_equal(ctr[WP_CTR_L7_H2P_IDLE_OVER_LIMIT], 2);
}

static void test_connection_close(void **state)
{
	(void)state;
	mk();
	be_mode = BE_CLOSE;
	req("GET", "/x", NULL, NULL);
	pump();
	assert_int_equal(cresps[0].status, 200);
	assert_string_equal(cresps[0].text, "ok");
	assert_int_equal(cresps[0].code, 0);
	assert_false(cresps[0].has_conn);
	assert_true(fbs[0].c.closed);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_CLOSE], 1);
	be_mode = BE_OK;
	req("GET", "/y", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 2); /* a new connection */
	assert_int_equal(cresps[1].status, 200);
}

static void test_malformed_502(void **state)
{
	(void)state;
	mk();
	be_mode = BE_MALFORMED;
	req("GET", "/x", NULL, NULL);
	pump();
	assert_int_equal(cresps[0].status, 502);
	assert_true(cresps[0].closed);
	assert_true(fbs[0].c.closed);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_BAD_RESPONSE], 1);
	assert_int_equal(wp_h2p_core_streams(core), 0);
	assert_int_equal(wp_h2p_core_upstreams(core), 0);
}

/* No upgrade arises on an HTTP/1.1 upstream (issue 19: bytes behind an
 * Upgrade request must not reach a backend that declined it). An h2c client
 * cannot ask for one: Upgrade / Connection are connection-specific fields,
 * refused by nghttp2 (and never written, h1_hop()); a CONNECT has no :path
 * and is answered 400 (a CONNECT with :path and no :protocol is refused by
 * nghttp2). Every request body is framed by content-length or chunked, and a
 * 101 from the backend answers 502: nothing is ever passed through raw. */
static void test_no_upgrade(void **state)
{
	static const nghttp2_nv up[] = {
	        {(uint8_t *)"upgrade", (uint8_t *)"websocket", 7, 9, 0},
	        {(uint8_t *)"connection", (uint8_t *)"upgrade", 10, 7, 0},
	};
	static const nghttp2_nv conn[] = {
	        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, 0},
	        {(uint8_t *)":authority", (uint8_t *)"reviews:9080", 10, 12, 0},
	};
	static const nghttp2_nv conn_path[] = {
	        {(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, 0},
	        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
	        {(uint8_t *)":authority", (uint8_t *)"reviews:9080", 10, 12, 0},
	        {(uint8_t *)":path", (uint8_t *)"/r", 5, 2, 0},
	};

	(void)state;
	mk();
	g_extra = up;
	g_n_extra = 2;
	req("GET", "/ws", NULL, NULL);
	pump();
	g_extra = NULL;
	g_n_extra = 0;
	assert_true(cresps[0].closed);
	assert_int_equal(cresps[0].code, NGHTTP2_PROTOCOL_ERROR);
	h2fx_submit(conn, WP_ARRAY_SIZE(conn), NULL);
	pump();
	assert_int_equal(cresps[1].status, 400);
	h2fx_submit(conn_path, WP_ARRAY_SIZE(conn_path), NULL);
	pump();
	assert_true(cresps[2].closed);
	assert_int_equal(cresps[2].status, 0);
	assert_int_equal(n_brq, 0); /* none reached a backend */
	/* a backend switching protocols on its own: 502, connection closed */
	be_mode = BE_SWITCH;
	req("GET", "/x", NULL, NULL);
	pump();
	assert_int_equal(n_brq, 1);
	assert_int_equal(cresps[3].status, 502);
	assert_true(fbs[n_fb - 1].c.closed);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_BAD_RESPONSE], 1);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

static void test_close_mid_body(void **state)
{
	(void)state;
	mk();
	be_mode = BE_SHORT;
	be_eof_hold = true;
	req("GET", "/x", NULL, NULL);
	pump();
	assert_int_equal(cresps[0].status, 200); /* the head went out */
	assert_string_equal(cresps[0].text, "short");
	assert_false(cresps[0].closed);
	be_eof_hold = false;
	pump();
	assert_true(cresps[0].closed);
	assert_int_equal(cresps[0].code, NGHTTP2_INTERNAL_ERROR);
	assert_true(fbs[0].c.closed);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_BAD_RESPONSE], 1);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

static void test_client_reset(void **state)
{
	(void)state;
	mk();
	be_mode = BE_HOLD;
	g_open = true; /* the body never ends */
	req("POST", "/x", "part", NULL);
	pump();
	assert_int_equal(n_brq, 1);
	assert_string_equal(brqs[0].body, "part");
	assert_false(brqs[0].done);
	assert_int_equal(
	        nghttp2_submit_rst_stream(cl, NGHTTP2_FLAG_NONE, cresps[0].sid, NGHTTP2_CANCEL), 0);
	pump();
	assert_true(fbs[0].c.closed); /* the message cannot be finished */
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_ABORT], 1);
	assert_int_equal(wp_h2p_core_streams(core), 0);
	assert_int_equal(wp_h2p_core_upstreams(core), 0);
	/* the next request gets a new connection */
	g_open = false;
	be_mode = BE_OK;
	req("GET", "/y", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 2);
	assert_int_equal(cresps[1].status, 200);
}

static void test_flow_control(void **state)
{
	struct cresp *r;

	(void)state;
	mk();
	be_mode = BE_BIG;
	cl_no_consume = true;
	req("GET", "/big", NULL, NULL);
	pump();
	r = &cresps[0];
	assert_int_equal(r->status, 200);
	assert_false(r->closed);
	/* the client window (64 KiB) and the stream ring (64 KiB) are full:
	 * the upstream is no longer read */
	assert_true(r->body <= 65535);
	assert_true(fbs[0].big_sent <= 65535 + 65536);
	assert_true(fbs[0].big_sent >= 65535);
	{
		size_t before = fbs[0].big_sent;

		pump();
		assert_int_equal(fbs[0].big_sent, before);
	}
	/* the client reads: everything flows */
	cl_no_consume = false;
	assert_int_equal(nghttp2_session_consume(cl, r->sid, r->unconsumed), 0);
	pump();
	assert_true(r->closed);
	assert_int_equal(r->code, 0);
	assert_int_equal(r->body, BIG);
	assert_int_equal(fbs[0].big_sent, BIG);
	assert_int_equal(ctr[WP_CTR_L7_H2P_BUF_OVERRUN], 0);
}

static void test_mods_and_mirror(void **state)
{
	(void)state;
	mk();
	req("GET", "/mods/a", NULL, NULL);
	pump();
	assert_int_equal(n_brq, 1); /* the mirror got nothing */
	assert_string_equal(brqs[0].xset, "s");
	assert_int_equal(cresps[0].status, 200);
	assert_string_equal(cresps[0].xresp, "r");
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_MIRROR_SKIPPED], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_MIRROR], 0);
}

static void test_head(void **state)
{
	(void)state;
	mk();
	be_mode = BE_HEAD;
	req("HEAD", "/h", NULL, NULL);
	pump();
	assert_string_equal(brqs[0].method, "HEAD");
	assert_int_equal(cresps[0].status, 200);
	assert_int_equal(cresps[0].body, 0);
	assert_true(cresps[0].closed);
	assert_int_equal(cresps[0].code, 0);
	/* no body was awaited: the connection is reused */
	be_mode = BE_OK;
	req("GET", "/h2", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 1);
	assert_int_equal(cresps[1].status, 200);
}

/* the backend closes an idle kept-alive connection: the next request
 * opens a new one */
static void test_idle_closed_by_upstream(void **state)
{
	(void)state;
	mk();
	req("GET", "/a", NULL, NULL);
	pump();
	assert_false(fbs[0].c.closed);
	wp_h2p_up_eof(fbs[0].c.up);
	assert_true(fbs[0].c.closed);
	assert_int_equal(wp_h2p_core_upstreams(core), 0);
	req("GET", "/b", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 2);
	assert_int_equal(cresps[1].status, 200);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_REUSE], 0);
}

/* DestinationRule connection pool on the h2c proxy (dp/l7/cbreak.h):
 * http2MaxRequests 1 refuses a second request in flight with Envoy's
 * overflow answer (503, x-envoy-overloaded); maxConnections 1 refuses a
 * request that would need a second connection (no stream waits here);
 * maxRequestsPerConnection 1 closes each connection after its request. */
static void test_connection_pool(void **state)
{
	(void)state;
	fx_dr_tp = "    connectionPool: {http: {http2MaxRequests: 1}}\n";
	mk();
	be_mode = BE_HOLD;
	req("GET", "/r/a", NULL, NULL);
	pump();
	assert_int_equal(n_brq, 1);
	req("GET", "/r/b", NULL, NULL);
	pump();
	assert_int_equal(n_brq, 1); /* never reached a backend */
	assert_int_equal(cresps[1].status, 503);
	assert_memory_equal(cresps[1].text, wp_cb_overflow_body, sizeof(cresps[1].text) - 1);
	assert_int_equal(ctr[WP_CTR_L7_CB_RQ_OVERFLOW], 1);
	assert_int_equal(ctr[WP_CTR_L7_UPSTREAM_OVERFLOW], 1);
	teardown(NULL);

	/* maxConnections 1, http1MaxPendingRequests 1: the second stream waits
	 * for the connection (one request at a time), the third is refused at
	 * once; the waiting one goes out on the same connection when the first
	 * response ends */
	fx_dr_tp = "    connectionPool:\n      tcp: {maxConnections: 1}\n"
	           "      http: {http1MaxPendingRequests: 1}\n";
	mk();
	be_mode = BE_HOLD;
	req("GET", "/r/a", NULL, NULL);
	req("GET", "/r/b", NULL, NULL);
	req("GET", "/r/c", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 1);
	assert_int_equal(n_brq, 1);
	assert_int_equal(cresps[1].status, 0); /* waiting */
	assert_int_equal(cresps[2].status, 503);
	assert_memory_equal(cresps[2].text, wp_cb_overflow_body, sizeof(cresps[2].text) - 1);
	assert_int_equal(ctr[WP_CTR_L7_CB_PENDING], 1);
	assert_int_equal(ctr[WP_CTR_L7_CB_PENDING_OVERFLOW], 1);
	/* a request not under the DestinationRule's limits is not refused */
	req("GET", "/other", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 2);
	be_mode = BE_OK;
	be_answer(&fbs[0]);
	pump();
	assert_int_equal(cresps[0].status, 200);
	assert_int_equal(n_brq, 3);
	assert_string_equal(brqs[2].target, "/r/b");
	assert_int_equal(brqs[2].fb, 0); /* the kept-alive connection */
	be_answer(&fbs[0]);
	pump();
	assert_int_equal(cresps[1].status, 200);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_REUSE], 1);
	teardown(NULL);

	/* maxRequestsPerConnection 1: one request per connection, then closed */
	fx_dr_tp = "    connectionPool: {http: {maxRequestsPerConnection: 1}}\n";
	mk();
	req("GET", "/r/a", NULL, NULL);
	pump();
	req("GET", "/r/b", NULL, NULL);
	pump();
	assert_int_equal(cresps[0].status, 200);
	assert_int_equal(cresps[1].status, 200);
	assert_int_equal(n_fb, 2);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_REUSE], 0);
	assert_int_equal(ctr[WP_CTR_L7_CB_MAX_REQUESTS_CLOSE], 2);
	assert_true(fbs[0].c.closed);
	assert_true(fbs[1].c.closed);
}

/* connectTimeout: a connection not up in time fails like a refused one
 * (the stream is retried on the other endpoint; after the retries, 503). */
static void test_connect_timeout(void **state)
{
	(void)state;
	fx_dr_tp = "    connectionPool: {tcp: {connectTimeout: 250ms}}\n";
	mk();
	hold_connect = true;
	wp_h2p_core_tick(core, 1000);
	req("GET", "/r/a", NULL, NULL);
	pump();
	assert_int_equal(n_fb, 1);
	wp_h2p_core_tick(core, 1250);
	assert_false(fbs[0].c.closed);
	wp_h2p_core_tick(core, 1251);
	pump();
	assert_int_equal(ctr[WP_CTR_L7_CB_CONNECT_TIMEOUT], 1);
	assert_true(fbs[0].c.closed);
	assert_int_equal(n_fb, 2); /* the retry, on the other endpoint */
	wp_h2p_core_tick(core, 1502);
	pump();
	wp_h2p_core_tick(core, 1753);
	pump();
	assert_int_equal(ctr[WP_CTR_L7_CB_CONNECT_TIMEOUT], 3);
	assert_int_equal(cresps[0].status, 503);
}

static void test_connect_failure_retry(void **state)
{
	(void)state;
	mk();
	hold_connect = true;
	req("POST", "/r/a", "data", "4");
	pump();
	assert_int_equal(n_fb, 1);
	/* the connect fails: the request goes to the other endpoint */
	fbs[0].c.failed = true;
	wp_h2p_up_failed(fbs[0].c.up);
	hold_connect = false;
	pump();
	assert_int_equal(n_fb, 2);
	assert_int_not_equal(fbs[0].c.ep.addr.v4, fbs[1].c.ep.addr.v4);
	assert_int_equal(n_brq, 1);
	assert_int_equal(brqs[0].fb, 1);
	assert_string_equal(brqs[0].body, "data");
	assert_int_equal(cresps[0].status, 200);
	assert_int_equal(ctr[WP_CTR_L7_H2P_RETRY], 1);
}

/* The rule's whole retry policy applies on HTTP/1.1 upstreams too (here
 * Istio's default: a 503 is retried): the request body is held, the
 * retried try's connection is closed, the second try carries the same
 * head and body, and only its answer reaches the client. */
static void test_status_retry(void **state)
{
	(void)state;
	mk();
	be_mode = BE_503_ONCE;
	req("POST", "/r/a", "data", "4");
	pump();
	wp_h2p_core_clock(core, 1000); /* the backoff (at most 50 ms) ends */
	pump();
	assert_int_equal(n_brq, 2);
	assert_string_equal(brqs[0].body, "data");
	assert_string_equal(brqs[1].body, "data");
	assert_true(brqs[1].has_cl);
	assert_string_equal(brqs[1].target, "/r/a");
	assert_int_equal(cresps[0].status, 200);
	assert_string_equal(cresps[0].text, "ok");
	assert_true(cresps[0].closed);
	assert_int_equal(ctr[WP_CTR_L7_H2P_RETRY_STATUS], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_RETRY_NOT_HELD], 0);
	assert_true(fbs[brqs[0].fb].c.closed);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

/* timeouts.request: 504, and the connection (request written, no
 * response) is closed */
static void test_timeout(void **state)
{
	(void)state;
	mk();
	wp_h2p_core_tick(core, 10000);
	be_mode = BE_HOLD;
	req("GET", "/slow/a", NULL, NULL);
	pump();
	assert_int_equal(n_brq, 1);
	wp_h2p_core_tick(core, 12000);
	pump();
	assert_int_equal(cresps[0].status, 0);
	wp_h2p_core_tick(core, 12001);
	pump();
	assert_int_equal(cresps[0].status, 504);
	assert_true(cresps[0].closed);
	assert_true(fbs[0].c.closed);
	assert_int_equal(ctr[WP_CTR_L7_H2P_TIMEOUT], 1);
	assert_int_equal(ctr[WP_CTR_L7_H2P_UP_H1_ABORT], 1);
	assert_int_equal(wp_h2p_core_streams(core), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_get, teardown),
	        cmocka_unit_test_teardown(test_post_content_length, teardown),
	        cmocka_unit_test_teardown(test_post_chunked_and_trailers, teardown),
	        cmocka_unit_test_teardown(test_chunked_response_trailers, teardown),
	        cmocka_unit_test_teardown(test_keepalive_reuse, teardown),
	        cmocka_unit_test_teardown(test_idle_bound, teardown),
	        cmocka_unit_test_teardown(test_connection_close, teardown),
	        cmocka_unit_test_teardown(test_malformed_502, teardown),
	        cmocka_unit_test_teardown(test_no_upgrade, teardown),
	        cmocka_unit_test_teardown(test_drain_fin, teardown),
	        cmocka_unit_test_teardown(test_close_mid_body, teardown),
	        cmocka_unit_test_teardown(test_client_reset, teardown),
	        cmocka_unit_test_teardown(test_flow_control, teardown),
	        cmocka_unit_test_teardown(test_mods_and_mirror, teardown),
	        cmocka_unit_test_teardown(test_head, teardown),
	        cmocka_unit_test_teardown(test_idle_closed_by_upstream, teardown),
	        cmocka_unit_test_teardown(test_connection_pool, teardown),
	        cmocka_unit_test_teardown(test_connect_timeout, teardown),
	        cmocka_unit_test_teardown(test_connect_failure_retry, teardown),
	        cmocka_unit_test_teardown(test_status_retry, teardown),
	        cmocka_unit_test_teardown(test_timeout, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
