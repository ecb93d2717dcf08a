/*
 * Unit tests for dp/hbone: the server wp_hbconn driven in memory by our own
 * client wp_hbconn and by a plain nghttp2 client session (for what our client
 * would never send: GET, bad authorities, floods), plus hand-made frames
 * for the CONTINUATION bound. The server framer alone with hand-made frames
 * is in test_hbone_srv.c; the harness in hbone_harness.h.
 */
#include "hbone_harness.h"

static void test_connect_200(void **state)
{
	struct wp_hbconn *s = server(NULL), *c = client(NULL);
	struct tstream *ct;

	(void)state;
	ct = copen(c, "10.1.2.3:9080");
	pump(s, c);
	assert_int_equal(sapp.n, 1);
	assert_string_equal(sapp.st[0].authority, "10.1.2.3:9080");
	assert_string_equal(sapp.st[0].baggage, "k=v");
	assert_string_equal(sapp.st[0].forwarded, "for=\"10.0.0.9:4444\";host=reviews.default.svc");
	assert_string_equal(sapp.st[0].traceparent,
	                    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	/* No answer until policy and upstream say so. */
	assert_int_equal(ct->status, 0);
	assert_int_equal(wp_hbstream_respond(sapp.st[0].s, 200), 0);
	assert_int_equal(wp_hbstream_respond(sapp.st[0].s, 200), -EALREADY);
	pump(s, c);
	assert_int_equal(ct->status, 200);
	/* 200 without END_STREAM: the tunnel is open both ways. */
	assert_false(ct->eof);
	assert_false(ct->closed);
	assert_int_equal(wp_hbstream_write(ct->s, (const uint8_t *)"ping", 4), 4);
	assert_int_equal(wp_hbstream_write(sapp.st[0].s, (const uint8_t *)"pong!", 5), 5);
	pump(s, c);
	assert_int_equal(sapp.st[0].rxlen, 4);
	assert_memory_equal(sapp.st[0].rx, "ping", 4);
	assert_int_equal(ct->rxlen, 5);
	assert_int_equal(sctr[WP_CTR_HBONE_TUNNEL_OPENED], 1);
	/* IPv6 authority. */
	ct = copen(c, "[fd00::1]:443");
	pump(s, c);
	assert_string_equal(sapp.st[1].authority, "[fd00::1]:443");
	wp_hbconn_free(c);
	wp_hbconn_free(s);
	assert_true(sapp.st[0].closed);
	assert_int_equal(sapp.st[0].why, WP_HBONE_CLOSE_ABORT);
}

static void test_refusals_by_app(void **state)
{
	struct wp_hbconn *s = server(NULL), *c = client(NULL);
	static const int codes[] = {400, 401, 503};
	static const enum wp_ctr ctrs[] = {WP_CTR_HBONE_RESP_400, WP_CTR_HBONE_RESP_401,
	                                   WP_CTR_HBONE_RESP_503};

	(void)state;
	for (int i = 0; i < 3; i++) {
		struct tstream *ct = copen(c, "10.0.0.1:80");
		pump(s, c);
		assert_int_equal(wp_hbstream_respond(sapp.st[i].s, codes[i]), 0);
		pump(s, c);
		assert_int_equal(ct->status, codes[i]);
		assert_true(ct->eof);
		assert_true(ct->closed);
		assert_true(sapp.st[i].closed);
		assert_int_equal(sapp.st[i].why, WP_HBONE_CLOSE_LOCAL);
		assert_int_equal(sctr[ctrs[i]], 1);
	}
	assert_int_equal(cctr[WP_CTR_HBONE_UPSTREAM_REFUSED], 3);
	assert_int_equal(wp_hbconn_streams(s), 0);
	wp_hbconn_free(c);
	wp_hbconn_free(s);
}

/* ---- a plain nghttp2 client for requests ours would never send ---- */

struct raw {
	nghttp2_session *ss;
	int status[512];
	uint8_t flags[512]; /* HEADERS flags of the response */
	uint32_t rst[512];
	bool goaway;
	uint32_t goaway_err;
	bool ping_acked;
};

static int raw_on_header(nghttp2_session *ss, const nghttp2_frame *f, const uint8_t *name,
                         size_t nl, const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
	struct raw *r = ud;

	(void)ss;
	(void)flags;
	if (nl == 7 && memcmp(name, ":status", 7) == 0 && vl == 3 && f->hd.stream_id < 1024)
		r->status[f->hd.stream_id / 2] = atoi((const char *)value);
	return 0;
}

static int raw_on_frame(nghttp2_session *ss, const nghttp2_frame *f, void *ud)
{
	struct raw *r = ud;

	(void)ss;
	if (f->hd.type == NGHTTP2_HEADERS && f->hd.stream_id < 1024)
		r->flags[f->hd.stream_id / 2] = f->hd.flags;
	if (f->hd.type == NGHTTP2_RST_STREAM && f->hd.stream_id < 1024)
		r->rst[f->hd.stream_id / 2] = f->rst_stream.error_code + 1;
	if (f->hd.type == NGHTTP2_GOAWAY) {
		r->goaway = true;
		r->goaway_err = f->goaway.error_code;
	}
	if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK))
		r->ping_acked = true;
	return 0;
}

static void raw_new(struct raw *r)
{
	nghttp2_session_callbacks *cb;

	nghttp2_option *opt;

	memset(r, 0, sizeof(*r));
	assert_int_equal(nghttp2_session_callbacks_new(&cb), 0);
	nghttp2_session_callbacks_set_on_header_callback(cb, raw_on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, raw_on_frame);
	assert_int_equal(nghttp2_option_new(&opt), 0);
	/* Until the server's SETTINGS arrive, assume no stream limit. */
	nghttp2_option_set_peer_max_concurrent_streams(opt, 1000);
	assert_int_equal(nghttp2_session_client_new2(&r->ss, cb, r, opt), 0);
	nghttp2_option_del(opt);
	nghttp2_session_callbacks_del(cb);
	assert_int_equal(nghttp2_submit_settings(r->ss, NGHTTP2_FLAG_NONE, NULL, 0), 0);
}

/* Sends what the raw client has queued to the server; returns the server's
 * input result. */
static ssize_t raw_to_server(struct raw *r, struct wp_hbconn *s)
{
	const uint8_t *p;
	ssize_t n, rv = 0;

	while ((n = nghttp2_session_mem_send(r->ss, &p)) > 0) {
		rv = wp_hbconn_input(s, p, (size_t)n, now);
		if (rv < 0)
			return rv;
	}
	return rv;
}

static void server_to_raw(struct wp_hbconn *s, struct raw *r)
{
	const uint8_t *p;
	ssize_t n;

	while ((n = wp_hbconn_peek(s, &p)) > 0) {
		assert_int_equal(nghttp2_session_mem_recv(r->ss, p, (size_t)n), n);
		wp_hbconn_advance(s, (size_t)n);
	}
}

static int32_t raw_request(struct raw *r, const char *method, const char *authority, bool body)
{
	nghttp2_nv nv[4];
	size_t n = 0;

	nv[n++] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)method, 7, strlen(method), 0};
	if (authority)
		nv[n++] = (nghttp2_nv){(uint8_t *)":authority", (uint8_t *)authority, 10,
		                       strlen(authority), 0};
	if (strcmp(method, "CONNECT") != 0) {
		nv[n++] = (nghttp2_nv){(uint8_t *)":scheme", (uint8_t *)"http", 7, 4, 0};
		nv[n++] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)"/", 5, 1, 0};
	}
	(void)body;
	return nghttp2_submit_headers(r->ss, NGHTTP2_FLAG_NONE, -1, NULL, nv, n, NULL);
}

static void test_get_and_bad_authority_400(void **state)
{
	struct wp_hbconn *s = server(NULL);
	struct raw r;
	int32_t id[5];
	static const char *bad[] = {"reviews:9080", "10.0.0.1", "10.0.0.1:99999", "[::1:80"};

	(void)state;
	raw_new(&r);
	id[0] = raw_request(&r, "GET", "10.0.0.1:80", false);
	for (int i = 0; i < 4; i++)
		id[i + 1] = raw_request(&r, "CONNECT", bad[i], false);
	assert_true(raw_to_server(&r, s) >= 0);
	server_to_raw(s, &r);
	assert_true(raw_to_server(&r, s) >= 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r.status[id[i] / 2], 400);
		/* 400 ends the stream. */
		assert_true(r.flags[id[i] / 2] & NGHTTP2_FLAG_END_STREAM);
	}
	assert_int_equal(sctr[WP_CTR_HBONE_NOT_CONNECT], 1);
	assert_int_equal(sctr[WP_CTR_HBONE_BAD_AUTHORITY], 4);
	assert_int_equal(sapp.n, 0); /* the application never saw them */
	/* A good CONNECT on the same connection: 200 without END_STREAM. */
	sapp.answer = 200;
	id[0] = raw_request(&r, "CONNECT", "10.0.0.1:80", false);
	assert_true(raw_to_server(&r, s) >= 0);
	server_to_raw(s, &r);
	assert_int_equal(r.status[id[0] / 2], 200);
	assert_false(r.flags[id[0] / 2] & NGHTTP2_FLAG_END_STREAM);
	assert_int_equal(r.rst[id[0] / 2], 0);
	nghttp2_session_del(r.ss);
	wp_hbconn_free(s);
}

static void test_flow_control(void **state)
{
	struct wp_hbone_config cfg;
	struct wp_hbconn *s, *c;
	struct tstream *ct, *sv;
	size_t len = 1 << 20, sent = 0;
	uint8_t *src = malloc(len);

	(void)state;
	wp_hbone_config_default(&cfg);
	cfg.stream_window = 65536;
	cfg.conn_window = 131072;
	s = server(&cfg);
	c = client(&cfg);
	sapp.answer = 200;
	sapp.autoconsume = false; /* the "upstream" is stuck */
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 31 + (i >> 13));
	ct = copen(c, "10.0.0.2:5000");
	pump(s, c);
	sv = &sapp.st[0];
	assert_int_equal(ct->status, 200);
	/* Write until the client's buffer is full and the window is closed. */
	for (int i = 0; i < 50; i++) {
		ssize_t n = wp_hbstream_write(ct->s, src + sent, len - sent);
		assert_true(n >= 0);
		sent += (size_t)n;
		pump(s, c);
	}
	/* The server got at most one stream window; the rest waits at the
	 * client in a bounded buffer. */
	assert_true(sv->rxlen <= 65536);
	assert_true(sv->rxlen >= 65535);
	assert_true(wp_hbstream_pending(ct->s) <= cfg.stream_sndbuf);
	assert_true(sent < len);
	/* The upstream takes bytes: consume, and more flows. */
	size_t got = sv->rxlen, consumed = 0;
	int guard = 0;
	while (sv->rxlen < len) {
		assert_int_equal(wp_hbstream_consume(sv->s, sv->rxlen - consumed), 0);
		consumed = sv->rxlen;
		ssize_t n = wp_hbstream_write(ct->s, src + sent, len - sent);
		assert_true(n >= 0);
		sent += (size_t)n;
		pump(s, c);
		assert_true(sv->rxlen - consumed <= 65536);
		assert_true(++guard < 10000);
	}
	assert_true(sv->rxlen > got);
	assert_int_equal(sent, len);
	assert_memory_equal(sv->rx, src, len);
	/* on_writable fired when the client's buffer drained. */
	assert_true(ct->writable);
	/* And the other way, with the client's reader stuck then released. */
	capp.st[0].autoconsume = false;
	sent = 0;
	guard = 0;
	consumed = 0;
	while (ct->rxlen < len) {
		ssize_t n = wp_hbstream_write(sv->s, src + sent, len - sent);
		assert_true(n >= 0);
		sent += (size_t)n;
		pump(s, c);
		assert_true(ct->rxlen - consumed <= 65536);
		assert_int_equal(wp_hbstream_consume(ct->s, ct->rxlen - consumed), 0);
		consumed = ct->rxlen;
		assert_true(++guard < 10000);
	}
	assert_memory_equal(ct->rx, src, len);
	free(src);
	wp_hbconn_free(c);
	wp_hbconn_free(s);
}

static void test_half_close(void **state)
{
	struct wp_hbconn *s = server(NULL), *c = client(NULL);
	struct tstream *ct, *sv;

	(void)state;
	sapp.answer = 200;
	ct = copen(c, "10.0.0.3:7000");
	pump(s, c);
	sv = &sapp.st[0];
	/* Client: data then half-close. */
	assert_int_equal(wp_hbstream_write(ct->s, (const uint8_t *)"request", 7), 7);
	assert_int_equal(wp_hbstream_shutdown(ct->s), 0);
	assert_int_equal(wp_hbstream_write(ct->s, (const uint8_t *)"x", 1), -EPIPE);
	pump(s, c);
	assert_true(sv->eof);
	assert_int_equal(sv->rxlen, 7);
	assert_false(sv->closed);
	/* The server still sends after the client's half-close. */
	assert_int_equal(wp_hbstream_write(sv->s, (const uint8_t *)"response", 8), 8);
	pump(s, c);
	assert_int_equal(ct->rxlen, 8);
	assert_false(ct->eof);
	assert_int_equal(wp_hbstream_shutdown(sv->s), 0);
	pump(s, c);
	assert_true(ct->eof);
	assert_true(ct->closed);
	assert_true(sv->closed);
	assert_int_equal(ct->why, WP_HBONE_CLOSE_DONE);
	assert_int_equal(sv->why, WP_HBONE_CLOSE_DONE);
	/* The other order: the server half-closes first (an empty DATA with
	 * END_STREAM, nothing buffered). */
	ct = copen(c, "10.0.0.3:7000");
	pump(s, c);
	sv = &sapp.st[1];
	assert_int_equal(wp_hbstream_shutdown(sv->s), 0);
	pump(s, c);
	assert_true(ct->eof);
	assert_int_equal(ct->rxlen, 0);
	assert_int_equal(wp_hbstream_write(ct->s, (const uint8_t *)"late", 4), 4);
	assert_int_equal(wp_hbstream_shutdown(ct->s), 0);
	pump(s, c);
	assert_int_equal(sv->rxlen, 4);
	assert_true(sv->closed && ct->closed);
	wp_hbconn_free(c);
	wp_hbconn_free(s);
}

static void test_rst_is_eof(void **state)
{
	struct wp_hbconn *s = server(NULL), *c = client(NULL);
	struct tstream *a, *b;

	(void)state;
	sapp.answer = 200;
	a = copen(c, "10.0.0.4:1");
	b = copen(c, "10.0.0.4:2");
	pump(s, c);
	assert_int_equal(wp_hbstream_reset(a->s, NGHTTP2_CANCEL), 0);
	assert_int_equal(wp_hbstream_reset(b->s, NGHTTP2_INTERNAL_ERROR), 0);
	pump(s, c);
	assert_true(sapp.st[0].closed);
	assert_int_equal(sapp.st[0].why, WP_HBONE_CLOSE_EOF);
	assert_int_equal(sapp.st[1].why, WP_HBONE_CLOSE_RESET);
	assert_int_equal(sapp.st[1].err, NGHTTP2_INTERNAL_ERROR);
	assert_int_equal(sctr[WP_CTR_HBONE_PEER_RESET], 1);
	assert_true(a->closed);
	assert_int_equal(a->why, WP_HBONE_CLOSE_LOCAL);
	wp_hbconn_free(c);
	wp_hbconn_free(s);
}

static void test_100_streams(void **state)
{
	struct wp_hbconn *s = server(NULL), *c = client(NULL);
	struct wp_sockaddr sa;
	struct raw r;

	(void)state;
	sapp.answer = 200;
	/* Our client stops at 100. */
	for (int i = 0; i < 100; i++)
		(void)copen(c, "10.0.0.5:80");
	assert_false(wp_hbconn_can_open(c));
	assert_int_equal(wp_sockaddr_parse("10.0.0.5:80", &sa), 0);
	errno = 0;
	assert_null(wp_hbconn_open(c, &sa, NULL, NULL, NULL, NULL));
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(cctr[WP_CTR_HBONE_OPEN_LIMIT], 1);
	pump(s, c);
	assert_int_equal(wp_hbconn_streams(s), 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(capp.st[i].status, 200);
	wp_hbconn_free(c);
	wp_hbconn_free(s);

	/* A client that ignores the limit: the 101st is refused. */
	memset(&sapp, 0, sizeof(sapp));
	sapp.answer = 200;
	s = server(NULL);
	raw_new(&r);
	int32_t id = 0;
	for (int i = 0; i < 101; i++)
		id = raw_request(&r, "CONNECT", "10.0.0.5:80", false);
	assert_true(raw_to_server(&r, s) >= 0);
	server_to_raw(s, &r);
	assert_int_equal(sapp.n, 100);
	assert_int_equal(r.rst[id / 2], NGHTTP2_REFUSED_STREAM + 1);
	assert_int_equal(r.status[(id - 2) / 2], 200);
	assert_int_equal(sctr[WP_CTR_HBONE_STREAM_REFUSED], 1);
	nghttp2_session_del(r.ss);
	wp_hbconn_free(s);
}

static void test_ping(void **state)
{
	struct wp_hbconn *s = server(NULL), *c = client(NULL);

	(void)state;
	pump(s, c);
	/* Silence for 10 s: a PING goes out and is answered. */
	now += 9999;
	assert_int_equal(wp_hbconn_tick(s, now), 0);
	assert_int_equal(sctr[WP_CTR_HBONE_PING_SENT], 0);
	now += 1;
	assert_int_equal(wp_hbconn_tick(s, now), 0);
	assert_int_equal(sctr[WP_CTR_HBONE_PING_SENT], 1);
	pump(s, c);
	now += 5000;
	assert_int_equal(wp_hbconn_tick(s, now), 0);
	assert_int_equal(sctr[WP_CTR_HBONE_PING_SENT], 1);
	/* Next PING is not answered (the peer went silent). */
	now += 5000;
	assert_int_equal(wp_hbconn_tick(s, now), 0);
	assert_int_equal(sctr[WP_CTR_HBONE_PING_SENT], 2);
	now += 19999;
	assert_int_equal(wp_hbconn_tick(s, now), 0);
	now += 1;
	assert_int_equal(wp_hbconn_tick(s, now), -ETIMEDOUT);
	assert_int_equal(sctr[WP_CTR_HBONE_PING_TIMEOUT], 1);
	/* The GOAWAY goes out, then the connection is done. */
	assert_false(wp_hbconn_done(s));
	assert_int_equal(drain_goaway(s), NGHTTP2_NO_ERROR);
	assert_true(wp_hbconn_done(s));
	wp_hbconn_free(c);
	wp_hbconn_free(s);
}

static void test_goaway_drain(void **state)
{
	struct wp_hbconn *s = server(NULL), *c = client(NULL);
	struct tstream *t[3];
	struct wp_sockaddr sa;

	(void)state;
	sapp.answer = 200;
	for (int i = 0; i < 3; i++)
		t[i] = copen(c, "10.0.0.6:80");
	pump(s, c);
	assert_int_equal(wp_hbconn_drain(s), 0);
	pump(s, c);
	assert_int_equal(cctr[WP_CTR_HBONE_GOAWAY_RECEIVED], 1);
	assert_false(wp_hbconn_can_open(c));
	assert_int_equal(wp_sockaddr_parse("10.0.0.6:80", &sa), 0);
	assert_null(wp_hbconn_open(c, &sa, NULL, NULL, NULL, NULL));
	assert_int_equal(errno, ECONNRESET);
	assert_false(wp_hbconn_done(s));
	/* Open streams finish their transfer. */
	for (int i = 0; i < 3; i++) {
		static uint8_t blob[200000];
		size_t off = 0;
		memset(blob, 'a' + i, sizeof(blob));
		while (off < sizeof(blob)) {
			ssize_t n = wp_hbstream_write(sapp.st[i].s, blob + off, sizeof(blob) - off);
			assert_true(n >= 0);
			off += (size_t)n;
			pump(s, c);
		}
		assert_int_equal(wp_hbstream_shutdown(sapp.st[i].s), 0);
		assert_int_equal(wp_hbstream_write(t[i]->s, (const uint8_t *)"bye", 3), 3);
		assert_int_equal(wp_hbstream_shutdown(t[i]->s), 0);
		pump(s, c);
		assert_int_equal(t[i]->rxlen, sizeof(blob));
		assert_true(t[i]->closed);
		assert_int_equal(t[i]->why, WP_HBONE_CLOSE_DONE);
	}
	assert_int_equal(wp_hbconn_streams(s), 0);
	assert_true(wp_hbconn_done(s));
	wp_hbconn_free(c);
	wp_hbconn_free(s);
}

static void test_rapid_reset(void **state)
{
	struct wp_hbconn *s = server(NULL);
	struct raw r;
	ssize_t rv = 0;
	int i;

	(void)state;
	sapp.answer = 200;
	raw_new(&r);
	for (i = 0; i < 100 && rv >= 0; i++) {
		int32_t ids[5];
		/* The HEADERS must leave before the RST, or nghttp2 drops both. */
		for (int k = 0; k < 5; k++)
			ids[k] = raw_request(&r, "CONNECT", "10.0.0.7:80", false);
		assert_true(raw_to_server(&r, s) >= 0);
		for (int k = 0; k < 5; k++)
			assert_int_equal(nghttp2_submit_rst_stream(r.ss, NGHTTP2_FLAG_NONE, ids[k],
			                                           NGHTTP2_CANCEL),
			                 0);
		rv = raw_to_server(&r, s);
		if (rv >= 0)
			server_to_raw(s, &r);
	}
	assert_true(rv < 0);
	/* 200 allowed in a second, the 201st trips the bound. */
	assert_int_equal(i, 41);
	assert_int_equal(sctr[WP_CTR_HBONE_RAPID_RESET], 1);
	server_to_raw(s, &r);
	assert_true(r.goaway);
	assert_int_equal(r.goaway_err, NGHTTP2_ENHANCE_YOUR_CALM);
	assert_true(wp_hbconn_done(s));
	/* Spread over time the same RSTs are fine. */
	nghttp2_session_del(r.ss);
	wp_hbconn_free(s);
	sapp.n = 0;
	s = server(NULL);
	raw_new(&r);
	for (i = 0; i < 100; i++) {
		int32_t id = raw_request(&r, "CONNECT", "10.0.0.7:80", false);
		assert_true(raw_to_server(&r, s) >= 0);
		assert_int_equal(
		        nghttp2_submit_rst_stream(r.ss, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL), 0);
		assert_true(raw_to_server(&r, s) >= 0);
		server_to_raw(s, &r);
		now += 10; /* 100 per second */
	}
	assert_int_equal(sctr[WP_CTR_HBONE_RAPID_RESET], 1);
	nghttp2_session_del(r.ss);
	wp_hbconn_free(s);
}

static void test_header_list_bound(void **state)
{
	struct wp_hbconn *s = server(NULL);
	struct raw r;
	static char big[20000];
	nghttp2_nv nv[3];
	int32_t id;

	(void)state;
	sapp.answer = 200;
	memset(big, 'b', sizeof(big) - 1);
	raw_new(&r);
	nv[0] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)"CONNECT", 7, 7, 0};
	nv[1] = (nghttp2_nv){(uint8_t *)":authority", (uint8_t *)"10.0.0.8:80", 10, 11, 0};
	nv[2] = (nghttp2_nv){(uint8_t *)"baggage", (uint8_t *)big, 7, strlen(big), 0};
	id = nghttp2_submit_headers(r.ss, NGHTTP2_FLAG_NONE, -1, NULL, nv, 3, NULL);
	assert_true(id > 0);
	assert_true(raw_to_server(&r, s) >= 0);
	server_to_raw(s, &r);
	assert_int_equal(sctr[WP_CTR_HBONE_HEADERS_TOO_LARGE], 1);
	assert_int_not_equal(r.rst[id / 2], 0);
	assert_int_equal(sapp.n, 0);
	nghttp2_session_del(r.ss);
	wp_hbconn_free(s);
}

static void continuation_flood(const struct wp_hbone_config *cfg)
{
	struct wp_hbconn *s = server(cfg);
	uint8_t b[4096];
	size_t off = 0;
	/* HPACK: literal header without indexing, new name "x", value "y". */
	static const uint8_t lit[] = {0x00, 0x01, 'x', 0x01, 'y'};
	memset(sctr, 0, sizeof(sctr));
	memcpy(b, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	off = NGHTTP2_CLIENT_MAGIC_LEN;
	frame(b, &off, 0, NGHTTP2_SETTINGS, 0, 0);
	frame(b, &off, sizeof(lit), NGHTTP2_HEADERS, 0, 1);
	memcpy(b + off, lit, sizeof(lit));
	off += sizeof(lit);
	for (int i = 0; i < 20; i++) {
		frame(b, &off, sizeof(lit), NGHTTP2_CONTINUATION, 0, 1);
		memcpy(b + off, lit, sizeof(lit));
		off += sizeof(lit);
	}
	assert_true(wp_hbconn_input(s, b, off, now) < 0);
	assert_int_equal(sctr[WP_CTR_HBONE_CONTINUATION_FLOOD], 1);
	/* A GOAWAY is queued for the peer. */
	assert_int_equal(drain_goaway(s), NGHTTP2_ENHANCE_YOUR_CALM);
	assert_true(wp_hbconn_done(s));
	wp_hbconn_free(s);
}

static void test_continuation_bound(void **state)
{
	struct wp_hbone_config cfg;

	(void)state;
	/* nghttp2's own bound (Debian's CVE-2024-28182 fix: 8)... */
	continuation_flood(NULL);
	/* ...and ours, when configured tighter. */
	wp_hbone_config_default(&cfg);
	cfg.max_continuations = 4;
	continuation_flood(&cfg);
}

static void test_garbage_preface(void **state)
{
	struct wp_hbconn *s = server(NULL);
	static const uint8_t junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	(void)state;
	assert_true(wp_hbconn_input(s, junk, sizeof(junk) - 1, now) < 0);
	assert_int_equal(sctr[WP_CTR_HBONE_PROTOCOL_ERROR], 1);
	wp_hbconn_free(s);
}

static void test_memory_budget(void **state)
{
	struct wp_h2mem *small = wp_h2mem_new(0, 64 * 1024 + 16);
	struct wp_hbconn *a[4];
	int made = 0;
	struct wp_h2mem_stats st;

	(void)state;
	/* Classes are carved in slabs: a tiny budget admits one slab. */
	for (int i = 0; i < 4; i++) {
		a[i] = wp_hbconn_new(true, NULL, small, &ops, &sapp, sctr, now);
		if (a[i] != NULL)
			made++;
	}
	wp_h2mem_stats(small, &st);
	assert_true(made < 4);
	assert_true(st.fails > 0);
	assert_true(sctr[WP_CTR_HBONE_NOMEM] > 0);
	for (int i = 0; i < 4; i++)
		wp_hbconn_free(a[i]);
	wp_h2mem_stats(small, &st);
	assert_int_equal(st.live_bytes, 0);
	wp_h2mem_destroy(small);
}

/* A write that finds no memory for the stream's send buffer takes nothing;
 * once memory is released the stream is told it may write (on_writable at
 * the next output), and the bytes then go through. */
static void test_write_waits_for_memory(void **state)
{
	struct wp_h2mem *sm = wp_h2mem_new(0, 1u << 20);
	struct wp_hbconn *s, *c = client(NULL);
	struct wp_h2mem_stats st;
	struct tstream *ct, *t;
	void *hog;

	(void)state;
	s = wp_hbconn_new(true, NULL, sm, &ops, &sapp, sctr, now);
	assert_non_null(s);
	ct = copen(c, "10.1.2.3:9080");
	pump(s, c);
	t = &sapp.st[0];
	assert_int_equal(wp_hbstream_respond(t->s, 200), 0);
	pump(s, c);
	assert_int_equal(ct->status, 200);
	/* the rest of the budget taken: no room for a 64 KiB send buffer */
	wp_h2mem_stats(sm, &st);
	hog = wp_h2mem_alloc(sm, (1u << 20) - st.slab_bytes - 64);
	assert_non_null(hog);
	assert_false(wp_h2mem_can_alloc(sm, 65536));
	t->writable = false;
	assert_int_equal(wp_hbstream_write(t->s, (const uint8_t *)"pong", 4), 0);
	assert_true(sctr[WP_CTR_HBONE_NOMEM] > 0);
	pump(s, c);
	assert_false(t->writable); /* still no memory: not told */
	wp_h2mem_release(sm, hog);
	pump(s, c);
	assert_true(t->writable);
	assert_int_equal(wp_hbstream_write(t->s, (const uint8_t *)"pong", 4), 4);
	pump(s, c);
	assert_int_equal(ct->rxlen, 4);
	assert_memory_equal(ct->rx, "pong", 4);
	wp_hbconn_free(c);
	wp_hbconn_free(s);
	wp_h2mem_destroy(sm);
}

/* Bytes an idle server connection holds after the SETTINGS exchange, and
 * again after a tunnel came and went (nothing of it may stay). */
static void test_idle_memory(void **state)
{
	struct wp_h2mem *sm = wp_h2mem_new(0, 0);
	struct wp_hbconn *s, *c = client(NULL);
	struct wp_h2mem_stats cold, st;

	(void)state;
	s = wp_hbconn_new(true, NULL, sm, &ops, &sapp, sctr, now);
	pump(s, c);
	wp_h2mem_stats(sm, &cold);
	print_message("idle HBONE server connection: %zu bytes requested in %zu blocks, "
	              "%zu held (size classes)\n",
	              cold.live_bytes, cold.live_blocks, cold.held_bytes);
	/* Our framer (h2srv.c) keeps only the connection struct and nghttp2's
	 * HPACK inflater (struct and 1 KiB ring): no output buffer, no
	 * stream map. (A whole nghttp2 1.52 session was ~25 KiB.) */
	assert_true(cold.live_bytes < 2 * 1024);
	assert_true(cold.live_blocks <= 3);
	/* The allocator has a class for each of those sizes: per block only
	 * the 16-byte header and rounding to 16 bytes. */
	assert_true(cold.held_bytes <= cold.live_bytes + 31 * cold.live_blocks);
	/* One tunnel opened, used both ways and closed. */
	sapp.answer = 200;
	struct tstream *t = copen(c, "10.0.0.9:80");
	pump(s, c);
	assert_int_equal(sapp.n, 1);
	assert_int_equal(wp_hbstream_write(t->s, (const uint8_t *)"ping", 4), 4);
	assert_int_equal(wp_hbstream_write(sapp.st[0].s, (const uint8_t *)"pong", 4), 4);
	pump(s, c);
	assert_int_equal(sapp.st[0].rxlen, 4);
	assert_int_equal(t->rxlen, 4);
	assert_int_equal(wp_hbstream_shutdown(t->s), 0);
	assert_int_equal(wp_hbstream_shutdown(sapp.st[0].s), 0);
	pump(s, c);
	assert_true(sapp.st[0].closed);
	wp_h2mem_stats(sm, &st);
	print_message("after one tunnel: %zu bytes requested, %zu held\n", st.live_bytes,
	              st.held_bytes);
	/* No closed stream and no HPACK entry kept (SETTINGS_HEADER_TABLE_SIZE
	 * 0, no closed-stream retention); nghttp2 keeps one 32-byte queue
	 * array once a stream had data. */
	assert_true(st.held_bytes <= cold.held_bytes + 64);
	wp_hbconn_free(c);
	wp_hbconn_free(s);
	wp_h2mem_stats(sm, &st);
	assert_int_equal(st.live_bytes, 0);
	assert_int_equal(st.live_blocks, 0);
	wp_h2mem_destroy(sm);
}

/* The server asks for an empty HPACK table; a peer that honours it (here
 * plain nghttp2) keeps opening tunnels; our client never indexes either. */
static void test_header_table_size(void **state)
{
	struct wp_hbconn *s = server(NULL);
	struct raw r;
	int32_t id;

	(void)state;
	raw_new(&r);
	sapp.answer = 200;
	assert_true(raw_to_server(&r, s) >= 0);
	server_to_raw(s, &r);
	assert_true(raw_to_server(&r, s) >= 0); /* SETTINGS ACK */
	assert_int_equal(
	        nghttp2_session_get_remote_settings(r.ss, NGHTTP2_SETTINGS_HEADER_TABLE_SIZE), 0);
	for (int i = 0; i < 3; i++) {
		id = raw_request(&r, "CONNECT", "10.0.0.1:80", false);
		assert_true(raw_to_server(&r, s) >= 0);
		server_to_raw(s, &r);
		assert_int_equal(r.status[id / 2], 200);
	}
	assert_int_equal(sapp.n, 3);
	assert_string_equal(sapp.st[2].authority, "10.0.0.1:80");
	/* The raw client's decoder holds nothing from our responses. */
	assert_int_equal(nghttp2_session_get_hd_inflate_dynamic_table_size(r.ss), 0);
	nghttp2_session_del(r.ss);
	wp_hbconn_free(s);
}

/* Size classes: exact for what an nghttp2 session keeps, and slabs that
 * hold a whole number of blocks. */
static void test_allocator_classes(void **state)
{
	static const size_t sizes[] = {1, 100, 1000, 3000, 5000, 16394, 16400, 40000, 65520};

	(void)state;
	for (size_t i = 0; i < WP_ARRAY_SIZE(sizes); i++) {
		struct wp_h2mem *m = wp_h2mem_new(0, 0);
		struct wp_h2mem_stats st;
		uint8_t *p = wp_h2mem_alloc(m, sizes[i]), *q;
		size_t bs, per;

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		memset(p, 0xa5, sizes[i]);
		wp_h2mem_stats(m, &st);
		bs = st.held_bytes;
		/* At most 25% over, at least the header. */
		assert_true(bs >= sizes[i] + 16);
		assert_true(bs <= (sizes[i] + 16) * 5 / 4 + 16);
		/* One slab: a header and a whole number of blocks, 64 KiB worth. */
		assert_int_equal((st.slab_bytes - 16) % bs, 0);
		per = (st.slab_bytes - 16) / bs;
		assert_true(per >= 1);
		assert_true(per * bs <= 65536 || per == 1);
		assert_true(per * bs + bs > 65536);
		/* The whole slab is used before another is carved. */
		for (size_t k = 1; k < per; k++)
			assert_non_null(wp_h2mem_alloc(m, sizes[i]));
		wp_h2mem_stats(m, &st);
		assert_int_equal(st.slab_bytes, 16 + per * bs);
		q = wp_h2mem_alloc(m, sizes[i]);
		assert_non_null(q);
		wp_h2mem_stats(m, &st);
		assert_int_equal(st.slab_bytes, 2 * (16 + per * bs));
		assert_int_equal(st.live_blocks, per + 1);
		/* Content survives a realloc that changes class. */
		p = wp_h2mem_realloc(m, p, sizes[i] * 2);
		assert_non_null(p);
		for (size_t k = 0; k < sizes[i]; k++)
			assert_int_equal(p[k], 0xa5);
		wp_h2mem_release(m, p); /* may be a large (malloc) block now */
		wp_h2mem_destroy(m);    /* the slabs go with the rest */
	}
	/* The exact classes follow nghttp2: an idle client session (on the
	 * client's own allocator) wastes no more than a header and rounding
	 * per block either. */
	struct wp_h2mem *cm = wp_h2mem_new(0, 0);
	struct wp_hbconn *s = server(NULL);
	struct wp_hbconn *c = wp_hbconn_new(false, NULL, cm, &ops, &capp, cctr, now);
	struct wp_h2mem_stats st;

	assert_non_null(c);
	pump(s, c);
	wp_h2mem_stats(cm, &st);
	assert_true(st.live_bytes > 16 * 1024);
	assert_true(st.held_bytes <= st.live_bytes + 31 * st.live_blocks);
	wp_hbconn_free(c);
	wp_hbconn_free(s);
	wp_h2mem_destroy(cm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_connect_200, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_refusals_by_app, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_get_and_bad_authority_400, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_flow_control, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_half_close, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rst_is_eof, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_100_streams, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_goaway_drain, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rapid_reset, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_header_list_bound, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_continuation_bound, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_garbage_preface, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_memory_budget, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_write_waits_for_memory, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_idle_memory, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_header_table_size, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_allocator_classes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
