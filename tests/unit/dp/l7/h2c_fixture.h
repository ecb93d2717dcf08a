/*
 * Shared by the h2c proxy tests (test_h2proxy.c: h2c backends,
 * test_h2p_h1up.c: HTTP/1.1 backends): everything on the client side of
 * dp/l7/h2proxy.c and the bookkeeping of the fake upstream transports.
 * Provides the proxy core and its one session on "reviews:9080"
 * (h2fx_open() / h2fx_close()), the test's nghttp2 client (cl) with what
 * it received per stream (cresps / cresp_of(), the last GOAWAY code in
 * cl_goaway_code, cl_no_consume to leave its windows closed), request
 * submission with a body, optional trailer x-trl (g_trailer) or a body left
 * open (g_open) (h2fx_submit()), h2fx_pump_down() moving bytes between
 * client and session, and struct h2fx_conn: the part of a fake upstream
 * transport the harness reads (h2fx_conn_ready() connects it unless
 * hold_connect, h2fx_up_close() is the up_close op, counted in n_close).
 * The counters live in ctr; the route table is built with route_fixture.h.
 *
 * The including test sets fx_svcs / fx_n_svcs / fx_port_name before
 * h2fx_open(), gives it a struct wp_h2p_ops whose up_open sets up->io to a
 * struct h2fx_conn it filled with h2fx_conn_init() (the first member of its
 * own transport struct, so up->io also points at that) and whose up_close
 * is h2fx_up_close, moves its backends' bytes in its own pump after
 * h2fx_pump_down(), and calls h2fx_close() in teardown (which fails the
 * test if a transport opened was left open) before freeing its transports.
 */
#ifndef WP_TESTS_L7_H2C_FIXTURE_H
#define WP_TESTS_L7_H2C_FIXTURE_H

#include <nghttp2/nghttp2.h>

#include "mem.h"
#include "h2proxy.h"
#include "wp/counters.h"
#include "wp/route.h"

#include "route_fixture.h"

#define H2FX_MAX_STREAMS 1024

static void cpy(char *d, size_t cap, const void *v, size_t n)
{
	n = WP_MIN(n, cap - 1);
	memcpy(d, v, n);
	d[n] = '\0';
}

/* ---- proxy core and session ------------------------------------------------------------- */

static uint64_t ctr[WP_CTR_MAX];
static struct wp_route_core rcore;
static struct wp_h2p_core *core;
static struct wp_route_table *tab;
static struct wp_h2mem *hmem;
static struct wp_h2p_sess *sess;

/* ---- upstream transports ---------------------------------------------------------------- */

/* What the harness knows of one upstream connection the proxy opened. */
struct h2fx_conn {
	struct wp_h2p_up *up;
	struct wp_snap_endpoint ep;
	bool connected, closed, failed; /* failed: the test called wp_h2p_up_failed() */
};

#define H2FX_MAX_CONNS 64

static struct h2fx_conn *h2fx_conns[H2FX_MAX_CONNS]; /* every one opened, for h2fx_close() */
static int h2fx_n_conns;
static int n_close;       /* up_close calls */
static bool hold_connect; /* new connections stay connecting */

/* Fills <c> for <up> to <ep> and points up->io at it. */
static void h2fx_conn_init(struct h2fx_conn *c, struct wp_h2p_up *up,
                           const struct wp_snap_endpoint *ep)
{
	assert_true(h2fx_n_conns < H2FX_MAX_CONNS);
	h2fx_conns[h2fx_n_conns++] = c;
	c->up = up;
	c->ep = *ep;
	up->io = c;
}

static void h2fx_up_close(void *host, struct wp_h2p_up *up)
{
	struct h2fx_conn *c = up->io;

	(void)host;
	assert_non_null(c);
	assert_false(c->closed);
	c->closed = true;
	n_close++;
}

/* Whether bytes may move on <c>: not closed nor failed, and connected (it
 * is, on its first call, unless hold_connect). */
static bool h2fx_conn_ready(struct h2fx_conn *c)
{
	if (c->closed || c->failed)
		return false;
	if (!c->connected) {
		if (hold_connect)
			return false;
		c->connected = true;
		wp_h2p_up_connected(c->up);
	}
	return true;
}

/* ---- the client ------------------------------------------------------------------------- */

/* What the client saw of one stream. */
struct cresp {
	int32_t sid;
	int status;
	char backend[16], xresp[16], location[64], grpc_status[8], grpc_message[64];
	char xtrl[16]; /* response header or trailer x-trl */
	char text[64]; /* the start of the body */
	size_t body, unconsumed;
	bool closed, trailers, has_conn; /* has_conn: connection-specific fields */
	uint32_t code;
};

static struct cresp cresps[H2FX_MAX_STREAMS];
static int n_cresp;
static nghttp2_session *cl;
static nghttp2_session_callbacks *cl_cbs;
static bool cl_no_consume; /* the client does not read: its window stays closed */
/* The error code of the last GOAWAY the client received (UINT32_MAX: none). */
static uint32_t cl_goaway_code;

static struct cresp *cresp_of(int32_t sid)
{
	for (int i = 0; i < n_cresp; i++)
		if (cresps[i].sid == sid)
			return &cresps[i];
	return NULL;
}

static int cl_begin(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct cresp *r = cresp_of(f->hd.stream_id);

	(void)ng;
	(void)ud;
	if (r && r->status)
		r->trailers = true;
	return 0;
}

static int cl_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *n, size_t nl,
                     const uint8_t *v, size_t vl, uint8_t fl, void *ud)
{
	struct cresp *r = cresp_of(f->hd.stream_id);
	char tmp[16];

	(void)ng;
	(void)fl;
	(void)ud;
	if (!r)
		return 0;
#define IS(s) (nl == strlen(s) && !memcmp(n, s, nl))
	if (IS(":status")) {
		cpy(tmp, sizeof(tmp), v, vl);
		r->status = atoi(tmp);
	} else if (IS("x-backend")) {
		cpy(r->backend, sizeof(r->backend), v, vl);
	} else if (IS("x-resp")) {
		cpy(r->xresp, sizeof(r->xresp), v, vl);
	} else if (IS("location")) {
		cpy(r->location, sizeof(r->location), v, vl);
	} else if (IS("grpc-status")) {
		cpy(r->grpc_status, sizeof(r->grpc_status), v, vl);
	} else if (IS("grpc-message")) {
		cpy(r->grpc_message, sizeof(r->grpc_message), v, vl);
	} else if (IS("x-trl")) {
		cpy(r->xtrl, sizeof(r->xtrl), v, vl);
	} else if (IS("connection") || IS("transfer-encoding") || IS("trailer")) {
		r->has_conn = true;
	}
#undef IS
	return 0;
}

static int cl_data(nghttp2_session *ng, uint8_t fl, int32_t sid, const uint8_t *d, size_t len,
                   void *ud)
{
	struct cresp *r = cresp_of(sid);

	(void)fl;
	(void)ud;
	if (r) {
		if (r->body < sizeof(r->text) - 1)
			cpy(r->text + r->body, sizeof(r->text) - r->body, d, len);
		r->body += len;
	}
	if (!cl_no_consume)
		(void)nghttp2_session_consume(ng, sid, len);
	else if (r)
		r->unconsumed += len;
	return 0;
}

static int cl_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct cresp *r = cresp_of(sid);

	(void)ng;
	(void)ud;
	if (r) {
		r->closed = true;
		r->code = code;
	}
	return 0;
}

static int cl_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	(void)ng;
	(void)ud;
	if (f->hd.type == NGHTTP2_GOAWAY)
		cl_goaway_code = f->goaway.error_code;
	return 0;
}

/* The request body: g_body, then (unless g_open) the end, with trailer
 * x-trl: <g_trailer> when set. */
static const char *g_body;
static size_t g_body_left;
static bool g_open;
static const char *g_trailer;

static ssize_t cl_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
	size_t n = WP_MIN(len, g_body_left);

	(void)src;
	(void)ud;
	if (n) { /* g_body may be NULL with nothing left: no NULL + 0 */
		memcpy(buf, g_body, n);
		g_body += n;
	}
	g_body_left -= n;
	if (g_body_left == 0) {
		if (g_open)
			return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (g_trailer) {
			nghttp2_nv t = {(uint8_t *)"x-trl", (uint8_t *)g_trailer, 5,
			                strlen(g_trailer), 0};

			assert_int_equal(nghttp2_submit_trailer(ng, sid, &t, 1), 0);
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		}
	}
	return (ssize_t)n;
}

/* Submits a request with the <n> fields <nv> and <body> (NULL: none, the
 * HEADERS end the stream) on the client; returns its stream id. */
static int32_t h2fx_submit(const nghttp2_nv *nv, size_t n, const char *body)
{
	nghttp2_data_provider prd = {.read_callback = cl_read};
	int32_t sid;

	assert_true(n_cresp < H2FX_MAX_STREAMS);
	g_body = body;
	g_body_left = body ? strlen(body) : 0;
	sid = nghttp2_submit_request(cl, NULL, nv, n, body ? &prd : NULL, NULL);
	assert_true(sid > 0);
	memset(&cresps[n_cresp], 0, sizeof(cresps[0]));
	cresps[n_cresp++].sid = sid;
	return sid;
}

/* ---- set-up, teardown, pumping ---------------------------------------------------------- */

/* Zeroes the counters and the client's state, builds the route table of
 * <rules> on service "reviews" (route_fixture.h), creates the core with
 * <cfg> (NULL: the default) over <ops>, opens the session with
 * <sess_flags> and the client (which sends its SETTINGS on the first
 * pump). */
static void h2fx_open(const struct wp_h2p_cfg *cfg, const struct wp_h2p_ops *ops, const char *rules,
                      uint32_t sess_flags)
{
	nghttp2_option *o;

	memset(ctr, 0, sizeof(ctr));
	h2fx_n_conns = n_close = n_cresp = 0;
	cl_no_consume = g_open = hold_connect = false;
	g_trailer = NULL;
	cl_goaway_code = UINT32_MAX; /* none received */
	wp_route_core_init(&rcore, 7, ctr);
	tab = fx_build("reviews", rules);
	assert_int_equal(wp_route_core_reserve(&rcore, tab), 0);
	hmem = wp_h2mem_new(0, 0);
	assert_non_null(hmem);
	core = wp_h2p_core_create(cfg ? cfg : &wp_h2p_default_cfg, ops, NULL, &rcore,
	                          wp_h2mem_nghttp2(hmem), 99, ctr);
	assert_non_null(core);
	sess = wp_h2p_sess_open(core, tab, NULL, "reviews:9080", 12, sess_flags);
	assert_non_null(sess);
	if (!cl_cbs) {
		assert_int_equal(nghttp2_session_callbacks_new(&cl_cbs), 0);
		nghttp2_session_callbacks_set_on_begin_headers_callback(cl_cbs, cl_begin);
		nghttp2_session_callbacks_set_on_header_callback(cl_cbs, cl_header);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cl_cbs, cl_data);
		nghttp2_session_callbacks_set_on_stream_close_callback(cl_cbs, cl_close);
		nghttp2_session_callbacks_set_on_frame_recv_callback(cl_cbs, cl_frame);
	}
	assert_int_equal(nghttp2_option_new(&o), 0);
	nghttp2_option_set_no_auto_window_update(o, 1);
	assert_int_equal(nghttp2_session_client_new2(&cl, cl_cbs, NULL, o), 0);
	nghttp2_option_del(o);
	assert_int_equal(nghttp2_submit_settings(cl, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

/* Closes the session (if still open) and the core, checks that every
 * transport opened was closed (but those the test failed), then frees the
 * client, the table and the route objects. The test frees its transports'
 * own resources. */
static void h2fx_close(void)
{
	if (sess)
		wp_h2p_sess_close(sess);
	sess = NULL;
	wp_h2p_core_destroy(core);
	core = NULL;
	for (int i = 0; i < h2fx_n_conns; i++)
		if (!h2fx_conns[i]->failed)
			assert_true(h2fx_conns[i]->closed); /* every transport opened was closed */
	nghttp2_session_del(cl);
	cl = NULL;
	wp_route_table_free(tab);
	tab = NULL;
	wp_route_core_fini(&rcore);
	wp_h2mem_destroy(hmem);
	hmem = NULL;
	fx_free_objs();
}

/* One round between the client and the session, both ways: whether a byte
 * moved. */
static bool h2fx_pump_down(void)
{
	bool moved = false;
	const uint8_t *p;
	ssize_t n;
	size_t k;

	while ((n = nghttp2_session_mem_send(cl, &p)) > 0) {
		assert_int_equal(wp_h2p_down_in(sess, p, (size_t)n), (size_t)n);
		moved = true;
	}
	while ((k = wp_h2p_down_peek(sess, &p)) > 0) {
		assert_int_equal(nghttp2_session_mem_recv(cl, p, k), (ssize_t)k);
		wp_h2p_down_consume(sess, k);
		moved = true;
	}
	return moved;
}

#endif
