/*
 * The h2c proxy's unit-test backends (shared by test_h2proxy.c and
 * test_h2p_pending.c): the services of the route fixture, one nghttp2
 * server session per upstream connection the proxy opens (what each saw of
 * its requests in breqs, answers by be_respond() or on request end), and
 * the harness around h2c_fixture.h: mk() builds the table and the core,
 * pump() moves the bytes until nothing moves, req() opens a client
 * stream. Include after h2c_fixture.h.
 */
#ifndef WP_TESTS_UNIT_DP_L7_H2C_BACKEND_H
#define WP_TESTS_UNIT_DP_L7_H2C_BACKEND_H

static const struct fx_svc fsvcs[] = {{"reviews", 2, 1},
                                      {"reviews-v1", 1, 2},
                                      {"reviews-v2", 2, 3},
                                      {"reviews-v3", 1, 4},
                                      {"empty", 0, 5}};

/* ---- the backends: one nghttp2 server per upstream connection --------------------------- */

#define MAX_FUP 64
#define MAX_REQ 1024

struct fup {
	struct h2fx_conn c; /* first: up->io points here */
	nghttp2_session *ng;
};

/* What a backend saw of one request. */
struct breq {
	int fup;
	int32_t sid;
	char path[128], authority[64], xset[16], xdrop[16], te[16], reqid[64];
	bool has_reqid, ended, reset;
	uint32_t reset_code;
	size_t body;
	char trailer[32]; /* value of x-trl */
	bool trl_in_head; /* x-trl came in the request head */
	bool responded;
	size_t resp_left; /* body bytes still to send */
};

static struct fup fups[MAX_FUP];
static int n_fup, fail_open;
static struct breq breqs[MAX_REQ];
static int n_breq;
/* backend behaviour */
static bool be_hold;       /* don't answer on request end */
static size_t be_body = 2; /* response body bytes ("ok") */
static bool be_trailers;   /* end with grpc-status 7 trailers */
static uint32_t be_max_streams = 100;
/* backends of 10.0.<net>.x take what fits in their windows but never
 * reopen them nor answer (0: none) */
static uint32_t be_stall_net;

static struct breq *breq_of(int f, int32_t sid)
{
	for (int i = n_breq - 1; i >= 0; i--)
		if (breqs[i].fup == f && breqs[i].sid == sid)
			return &breqs[i];
	return NULL;
}

static int be_idx(void *ud)
{
	return (int)((struct fup *)ud - fups);
}

static int be_begin(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	(void)ng;
	if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
		struct breq *r = &breqs[n_breq++];

		assert_true(n_breq < MAX_REQ);
		memset(r, 0, sizeof(*r));
		r->fup = be_idx(ud);
		r->sid = f->hd.stream_id;
	}
	return 0;
}

static int be_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *n, size_t nl,
                     const uint8_t *v, size_t vl, uint8_t fl, void *ud)
{
	struct breq *r = breq_of(be_idx(ud), f->hd.stream_id);

	(void)ng;
	(void)fl;
	if (!r)
		return 0;
#define IS(s) (nl == strlen(s) && !memcmp(n, s, nl))
	if (IS(":path"))
		cpy(r->path, sizeof(r->path), v, vl);
	else if (IS(":authority"))
		cpy(r->authority, sizeof(r->authority), v, vl);
	else if (IS("x-set"))
		cpy(r->xset, sizeof(r->xset), v, vl);
	else if (IS("x-drop"))
		cpy(r->xdrop, sizeof(r->xdrop), v, vl);
	else if (IS("te"))
		cpy(r->te, sizeof(r->te), v, vl);
	else if (IS("x-request-id")) {
		r->has_reqid = true;
		cpy(r->reqid, sizeof(r->reqid), v, vl);
	} else if (IS("x-trl")) {
		cpy(r->trailer, sizeof(r->trailer), v, vl);
		r->trl_in_head |= f->headers.cat == NGHTTP2_HCAT_REQUEST;
	}
#undef IS
	return 0;
}

static ssize_t be_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len, uint32_t *flags,
                       nghttp2_data_source *src, void *ud)
{
	struct breq *r = breq_of(be_idx(ud), sid);
	size_t n;

	(void)src;
	assert_non_null(r);
	n = WP_MIN(len, r->resp_left);
	memset(buf, 'a' + (int)(r->resp_left % 26), n);
	r->resp_left -= n;
	if (r->resp_left == 0) {
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		if (be_trailers) {
			static const nghttp2_nv trl[] = {
			        {(uint8_t *)"grpc-status", (uint8_t *)"7", 11, 1, 0},
			        {(uint8_t *)"grpc-message", (uint8_t *)"denied%20here", 12, 13, 0},
			};
			assert_int_equal(nghttp2_submit_trailer(ng, sid, trl, 2), 0);
			*flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
		}
	}
	return (ssize_t)n;
}

/* The backend answers request <r>: 200, x-backend, body be_body. */
static bool be_trailers_only; /* answer with one HEADERS: grpc-status be_grpc */
static char be_grpc[3] = "12";

static void be_respond(struct breq *r)
{
	char bk[16];
	nghttp2_nv nv[] = {
	        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
	        {(uint8_t *)"x-backend", (uint8_t *)bk, 9, 0, 0},
	        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, 0},
	        {(uint8_t *)"grpc-status", (uint8_t *)be_grpc, 11, 2, 0},
	};
	nghttp2_data_provider prd = {.read_callback = be_read};

	snprintf(bk, sizeof(bk), "%d", r->fup);
	nv[1].valuelen = strlen(bk);
	r->responded = true;
	r->resp_left = be_body;
	assert_int_equal(nghttp2_submit_response(
	                         fups[r->fup].ng, r->sid, nv, be_trailers_only ? 4 : 3,
	                         !be_trailers_only && (be_body || be_trailers) ? &prd : NULL),
	                 0);
}

static int be_frame(nghttp2_session *ng, const nghttp2_frame *f, void *ud)
{
	struct breq *r = breq_of(be_idx(ud), f->hd.stream_id);

	(void)ng;
	if (!r || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
		return 0;
	if (f->hd.flags & NGHTTP2_FLAG_END_STREAM) {
		r->ended = true;
		if (!be_hold)
			be_respond(r);
	}
	return 0;
}

static int be_data(nghttp2_session *ng, uint8_t fl, int32_t sid, const uint8_t *d, size_t len,
                   void *ud)
{
	struct breq *r = breq_of(be_idx(ud), sid);

	(void)ng;
	(void)fl;
	(void)d;
	if (r)
		r->body += len;
	return 0;
}

static int be_close(nghttp2_session *ng, int32_t sid, uint32_t code, void *ud)
{
	struct breq *r = breq_of(be_idx(ud), sid);

	(void)ng;
	if (r && code != NGHTTP2_NO_ERROR) {
		r->reset = true;
		r->reset_code = code;
	}
	return 0;
}

static nghttp2_session_callbacks *be_cbs;

static int f_open(void *host, struct wp_h2p_up *up, const struct wp_snap_endpoint *ep)
{
	struct fup *f;
	nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, be_max_streams}};

	(void)host;
	if (fail_open)
		return -ECONNREFUSED;
	assert_true(n_fup < MAX_FUP);
	f = &fups[n_fup++];
	memset(f, 0, sizeof(*f));
	h2fx_conn_init(&f->c, up, ep);
	assert_int_equal(nghttp2_session_server_new(&f->ng, be_cbs, f), 0);
	assert_int_equal(nghttp2_submit_settings(f->ng, NGHTTP2_FLAG_NONE, iv, 1), 0);
	return 0;
}

static const struct wp_h2p_ops ops = {.up_open = f_open, .up_close = h2fx_up_close};

/* ---- harness ---------------------------------------------------------------------------- */

static void mk(const struct wp_h2p_cfg *cfg, const char *rules)
{
	n_fup = fail_open = n_breq = 0;
	be_hold = be_trailers = be_trailers_only = false;
	memcpy(be_grpc, "12", 3);
	be_body = 2;
	be_max_streams = 100;
	be_stall_net = 0;
	if (!be_cbs) {
		assert_int_equal(nghttp2_session_callbacks_new(&be_cbs), 0);
		nghttp2_session_callbacks_set_on_begin_headers_callback(be_cbs, be_begin);
		nghttp2_session_callbacks_set_on_header_callback(be_cbs, be_header);
		nghttp2_session_callbacks_set_on_frame_recv_callback(be_cbs, be_frame);
		nghttp2_session_callbacks_set_on_data_chunk_recv_callback(be_cbs, be_data);
		nghttp2_session_callbacks_set_on_stream_close_callback(be_cbs, be_close);
	}
	fx_svcs = fsvcs;
	fx_n_svcs = WP_ARRAY_SIZE(fsvcs);
	fx_port_name = "grpc";
	h2fx_open(cfg, &ops, rules, 0);
}

static int teardown(void **state)
{
	(void)state;
	h2fx_close();
	for (int i = 0; i < n_fup; i++)
		nghttp2_session_del(fups[i].ng);
	fx_dr_tp = NULL;
	return 0;
}

/* Moves bytes everywhere until nothing moves. Upstreams are connected on
 * their first round unless <hold_connect>. */
static uint32_t ep_net(int f);

static void pump(void)
{
	for (int round = 0; round < 10000; round++) {
		bool moved = h2fx_pump_down();
		const uint8_t *p;
		ssize_t n;
		size_t k;

		for (int i = 0; i < n_fup; i++) {
			struct fup *f = &fups[i];

			if (!h2fx_conn_ready(&f->c))
				continue;
			while (!f->c.closed && (k = wp_h2p_up_peek(f->c.up, &p)) > 0) {
				assert_int_equal(nghttp2_session_mem_recv(f->ng, p, k), (ssize_t)k);
				wp_h2p_up_consume(f->c.up, k);
				moved = true;
			}
			if (be_stall_net && ep_net(i) == be_stall_net)
				continue; /* it sends nothing: no WINDOW_UPDATE either */
			while (!f->c.closed && (n = nghttp2_session_mem_send(f->ng, &p)) > 0) {
				assert_int_equal(wp_h2p_up_in(f->c.up, p, (size_t)n), (size_t)n);
				moved = true;
			}
		}
		if (!moved)
			return;
	}
	fail_msg("pump did not settle");
}

/* A request on the client (gRPC: content-type and te: trailers); returns its
 * stream id. */
static int32_t req(const char *method, const char *path, bool grpc, const char *body,
                   const nghttp2_nv *extra, size_t n_extra)
{
	nghttp2_nv nv[16] = {
	        {(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0},
	        {(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0},
	        {(uint8_t *)":authority", (uint8_t *)"reviews:9080", 10, 12, 0},
	        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), 0},
	};
	size_t n = 4;

	if (grpc) {
		nv[n++] = (nghttp2_nv){(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12,
		                       16, 0};
		nv[n++] = (nghttp2_nv){(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, 0};
	}
	for (size_t i = 0; i < n_extra; i++)
		nv[n++] = extra[i];
	return h2fx_submit(nv, n, body);
}

static uint32_t ep_net(int f)
{
	return (__builtin_bswap32(fups[f].c.ep.addr.v4) >> 8) & 0xff;
}

#endif /* WP_TESTS_UNIT_DP_L7_H2C_BACKEND_H */
