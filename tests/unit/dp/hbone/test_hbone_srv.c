/*
 * Unit tests for dp/hbone's server framer (h2srv.c) with hand-made frames:
 * connection errors (preface, frame order, sizes, SETTINGS values, window
 * overflow, HPACK, PING flood) with their counters and GOAWAY codes,
 * byte-by-byte input with padding, PRIORITY, CONTINUATION and unknown
 * frames, stream errors and malformed requests, the peer's windows shaping
 * our DATA, and idle connections and GOAWAY. The harness is
 * hbone_harness.h; the tests against our own client are test_hbone.c.
 */
#include "hbone_harness.h"

struct ofr {
	uint8_t type, flags;
	uint32_t sid, len;
	uint8_t p[32];
};

/* Takes all of a server's output as frames; returns how many. */
static int out_frames(struct wp_hbconn *s, struct ofr *f, int max)
{
	static uint8_t all[1 << 17];
	size_t len = 0, off = 0;
	const uint8_t *p;
	ssize_t n;
	int k = 0;

	while ((n = wp_hbconn_peek(s, &p)) > 0) {
		assert_true(len + (size_t)n <= sizeof(all));
		memcpy(all + len, p, (size_t)n);
		len += (size_t)n;
		wp_hbconn_advance(s, (size_t)n);
	}
	while (off + 9 <= len) {
		uint32_t fl = (uint32_t)all[off] << 16 | (uint32_t)all[off + 1] << 8 | all[off + 2];
		assert_true(off + 9 + fl <= len);
		if (k < max) {
			f[k].type = all[off + 3];
			f[k].flags = all[off + 4];
			f[k].sid = (uint32_t)all[off + 5] << 24 | (uint32_t)all[off + 6] << 16 |
			           (uint32_t)all[off + 7] << 8 | all[off + 8];
			f[k].len = fl;
			memcpy(f[k].p, all + off + 9, WP_MIN(fl, sizeof(f[k].p)));
		}
		k++;
		off += 9 + fl;
	}
	assert_int_equal(off, len);
	return k;
}

static uint32_t p32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The frame of type (and stream, unless sid < 0) in f, or NULL. */
static const struct ofr *find_fr(const struct ofr *f, int n, uint8_t type, int64_t sid)
{
	for (int i = 0; i < n; i++)
		if (f[i].type == type && (sid < 0 || f[i].sid == (uint32_t)sid))
			return &f[i];
	return NULL;
}

static void put(uint8_t *b, size_t *off, const void *p, size_t n)
{
	memcpy(b + *off, p, n);
	*off += n;
}

static void fr(uint8_t *b, size_t *off, uint8_t type, uint8_t flags, uint32_t sid, const void *p,
               size_t n)
{
	frame(b, off, (uint32_t)n, type, flags, sid);
	put(b, off, p, n);
}

/* Preface and an empty SETTINGS. */
static void hello(uint8_t *b, size_t *off)
{
	*off = 0;
	put(b, off, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	frame(b, off, 0, NGHTTP2_SETTINGS, 0, 0);
}

/* HPACK for CONNECT to auth (literals without indexing, static names). */
static size_t connect_block(uint8_t *b, const char *auth)
{
	size_t n = 0, al = strlen(auth);

	b[n++] = 0x02; /* :method */
	b[n++] = 7;
	memcpy(b + n, "CONNECT", 7);
	n += 7;
	b[n++] = 0x01; /* :authority */
	b[n++] = (uint8_t)al;
	memcpy(b + n, auth, al);
	return n + al;
}

/* Feeds b to a fresh server byte by byte and in one piece, expecting a
 * connection error: returns the GOAWAY code and checks counter k. */
static void expect_conn_error(const uint8_t *b, size_t len, const struct wp_hbone_config *cfg,
                              enum wp_ctr k, uint32_t code)
{
	for (int bytewise = 0; bytewise < 2; bytewise++) {
		struct wp_hbconn *s = server(cfg);
		ssize_t rv = 0;

		memset(sctr, 0, sizeof(sctr));
		if (bytewise) {
			for (size_t i = 0; i < len && rv >= 0; i++)
				rv = wp_hbconn_input(s, b + i, 1, now);
		} else {
			rv = wp_hbconn_input(s, b, len, now);
		}
		assert_true(rv < 0);
		assert_int_equal(sctr[k], 1);
		assert_int_equal(drain_goaway(s), code);
		assert_true(wp_hbconn_done(s));
		wp_hbconn_free(s);
	}
}

static void test_srv_connection_errors(void **state)
{
	uint8_t b[1 << 17], blk[64], z[16384 + 1] = {0};
	size_t off, n;
	struct wp_hbone_config cfg;
	static const uint8_t ping7[7], wu0[4], wu_big[4] = {0x7f, 0xff, 0xff, 0xff};
	static const uint8_t push2[6] = {0, NGHTTP2_SETTINGS_ENABLE_PUSH, 0, 0, 0, 2};
	static const uint8_t iws_big[6] = {0, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0x80, 0, 0, 0};
	static const uint8_t mfs_small[6] = {0, NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 0, 0, 0x10, 0};
	static const uint8_t bad_hpack[] = {0x80}; /* index 0 */

	(void)state;
	/* Bad preface, and a first frame that is not SETTINGS. */
	memcpy(b, "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", 24);
	expect_conn_error(b, 24, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	off = 0;
	put(b, &off, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	fr(b, &off, NGHTTP2_PING, 0, 0, z, 8);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	/* DATA on stream 0 and on an idle stream. */
	hello(b, &off);
	fr(b, &off, NGHTTP2_DATA, 0, 0, "x", 1);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	hello(b, &off);
	fr(b, &off, NGHTTP2_DATA, 0, 5, "x", 1);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	/* PUSH_PROMISE from a client; HEADERS on an even stream. */
	hello(b, &off);
	fr(b, &off, NGHTTP2_PUSH_PROMISE, NGHTTP2_FLAG_END_HEADERS, 1, z, 4);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	hello(b, &off);
	n = connect_block(blk, "10.0.0.1:80");
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 2, blk, n);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	/* CONTINUATION out of place; another frame inside a header block. */
	hello(b, &off);
	fr(b, &off, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, 1, blk, n);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	hello(b, &off);
	fr(b, &off, NGHTTP2_HEADERS, 0, 1, blk, n);
	fr(b, &off, NGHTTP2_PING, 0, 0, z, 8);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	/* Sizes: over our SETTINGS_MAX_FRAME_SIZE, a PING of 7 bytes. */
	hello(b, &off);
	fr(b, &off, 0xfa, 0, 0, z, sizeof(z));
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_FRAME_SIZE_ERROR, NGHTTP2_FRAME_SIZE_ERROR);
	hello(b, &off);
	fr(b, &off, NGHTTP2_PING, 0, 0, ping7, sizeof(ping7));
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_FRAME_SIZE_ERROR, NGHTTP2_FRAME_SIZE_ERROR);
	/* SETTINGS values. */
	off = 0;
	put(b, &off, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	fr(b, &off, NGHTTP2_SETTINGS, 0, 0, push2, 6);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	off = 0;
	put(b, &off, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	fr(b, &off, NGHTTP2_SETTINGS, 0, 0, mfs_small, 6);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	off = 0;
	put(b, &off, NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
	fr(b, &off, NGHTTP2_SETTINGS, 0, 0, iws_big, 6);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_FLOW_CONTROL_ERROR,
	                  NGHTTP2_FLOW_CONTROL_ERROR);
	/* An ACK for SETTINGS we did not send (ours is acked once). */
	hello(b, &off);
	frame(b, &off, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
	frame(b, &off, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	/* WINDOW_UPDATE on the connection: zero, and past 2^31-1. */
	hello(b, &off);
	fr(b, &off, NGHTTP2_WINDOW_UPDATE, 0, 0, wu0, 4);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_PROTOCOL_ERROR, NGHTTP2_PROTOCOL_ERROR);
	hello(b, &off);
	fr(b, &off, NGHTTP2_WINDOW_UPDATE, 0, 0, wu_big, 4);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_FLOW_CONTROL_ERROR,
	                  NGHTTP2_FLOW_CONTROL_ERROR);
	/* Not HPACK. */
	hello(b, &off);
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, bad_hpack, 1);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_COMPRESSION_ERROR, NGHTTP2_COMPRESSION_ERROR);
	/* More DATA than the connection window (the stream's is larger). */
	wp_hbone_config_default(&cfg);
	cfg.conn_window = 65535;
	sapp.answer = 200;
	hello(b, &off);
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, blk, n);
	for (int i = 0; i < 5; i++)
		fr(b, &off, NGHTTP2_DATA, 0, 1, z, 16384);
	sapp.autoconsume = false;
	expect_conn_error(b, off, &cfg, WP_CTR_HBONE_FLOW_CONTROL_ERROR,
	                  NGHTTP2_FLOW_CONTROL_ERROR);
	/* A peer that never reads while it makes us answer PINGs. */
	hello(b, &off);
	for (int i = 0; i < 5000; i++)
		fr(b, &off, NGHTTP2_PING, 0, 0, z, 8);
	expect_conn_error(b, off, NULL, WP_CTR_HBONE_CONTROL_FLOOD, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* Padding, PRIORITY fields, unknown frames and input in single bytes. */
static void test_srv_frames_bytewise(void **state)
{
	uint8_t b[4096], blk[64], p[128];
	size_t off, n, pn;
	struct wp_hbconn *s = server(NULL);
	struct ofr f[32];
	int k;
	const struct ofr *h;

	(void)state;
	sapp.answer = 200;
	hello(b, &off);
	fr(b, &off, NGHTTP2_PRIORITY, 0, 3, "\0\0\0\1\x10", 5); /* idle stream: fine */
	fr(b, &off, 0xbb, 0xff, 0, "whatever", 8);              /* unknown type */
	/* HEADERS with padding and priority, split by a CONTINUATION. */
	n = connect_block(blk, "[fd00::7]:8443");
	pn = 0;
	p[pn++] = 4; /* pad length */
	put(p, &pn, "\0\0\0\0\x20", 5);
	put(p, &pn, blk, 6);
	put(p, &pn, "\0\0\0\0", 4);
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_PADDED | NGHTTP2_FLAG_PRIORITY, 1, p, pn);
	fr(b, &off, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, 1, blk + 6, n - 6);
	/* Padded DATA, then an empty padded DATA with END_STREAM. */
	pn = 0;
	p[pn++] = 10;
	put(p, &pn, "hello", 5);
	memset(p + pn, 0, 10);
	pn += 10;
	fr(b, &off, NGHTTP2_DATA, NGHTTP2_FLAG_PADDED, 1, p, pn);
	fr(b, &off, NGHTTP2_DATA, NGHTTP2_FLAG_PADDED | NGHTTP2_FLAG_END_STREAM, 1, "\2\0\0", 3);
	for (size_t i = 0; i < off; i++)
		assert_int_equal(wp_hbconn_input(s, b + i, 1, now), 1);
	assert_int_equal(sapp.n, 1);
	assert_string_equal(sapp.st[0].authority, "[fd00::7]:8443");
	assert_int_equal(sapp.st[0].rxlen, 5);
	assert_memory_equal(sapp.st[0].rx, "hello", 5);
	assert_true(sapp.st[0].eof);
	k = out_frames(s, f, 32);
	/* SETTINGS (4 entries), the connection WINDOW_UPDATE, the ACK, 200. */
	assert_true(k >= 4);
	assert_int_equal(f[0].type, NGHTTP2_SETTINGS);
	assert_int_equal(f[0].len, 24);
	assert_int_equal(f[1].type, NGHTTP2_WINDOW_UPDATE);
	assert_int_equal(p32(f[1].p), (16u << 20) - 65535);
	h = find_fr(f, k, NGHTTP2_HEADERS, 1);
	assert_non_null(h);
	/* A table size update to 0, then :status 200 (static index 8). */
	assert_int_equal(h->len, 2);
	assert_int_equal(h->p[0], 0x20);
	assert_int_equal(h->p[1], 0x88);
	assert_int_equal(h->flags, NGHTTP2_FLAG_END_HEADERS);
	/* The tunnel still sends after the peer's half-close. */
	assert_int_equal(wp_hbstream_write(sapp.st[0].s, (const uint8_t *)"bye", 3), 3);
	assert_int_equal(wp_hbstream_shutdown(sapp.st[0].s), 0);
	k = out_frames(s, f, 32);
	assert_int_equal(k, 1);
	assert_int_equal(f[0].type, NGHTTP2_DATA);
	assert_int_equal(f[0].flags, NGHTTP2_FLAG_END_STREAM);
	assert_int_equal(f[0].len, 3);
	assert_true(sapp.st[0].closed);
	assert_int_equal(sapp.st[0].why, WP_HBONE_CLOSE_DONE);
	/* A 401 is a literal :status (no indexing) and ends the stream. */
	sapp.answer = 401;
	off = 0;
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3, blk, n);
	assert_true(wp_hbconn_input(s, b, off, now) > 0);
	k = out_frames(s, f, 32);
	h = find_fr(f, k, NGHTTP2_HEADERS, 3);
	assert_non_null(h);
	assert_int_equal(h->len, 5);
	assert_memory_equal(h->p,
	                    "\x08\x03"
	                    "401",
	                    5);
	assert_int_equal(h->flags, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM);
	assert_int_equal(sctr[WP_CTR_HBONE_RESP_401], 1);
	assert_int_equal(wp_hbconn_streams(s), 0);
	wp_hbconn_free(s);
}

/* Stream errors: the connection lives on. */
static void test_srv_stream_errors(void **state)
{
	uint8_t b[4096], blk[128];
	size_t off, n;
	struct wp_hbconn *s = server(NULL);
	struct ofr f[32];
	int k;
	const struct ofr *r;
	static const uint8_t wu0[4], wu_big[4] = {0x7f, 0xff, 0xff, 0xff};

	(void)state;
	sapp.answer = 200;
	hello(b, &off);
	n = connect_block(blk, "10.0.0.1:80");
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, blk, n);
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 3, blk, n);
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 5, blk, n);
	/* 1: a zero WINDOW_UPDATE; 3: one past 2^31-1; 5: DATA after
	 * END_STREAM. */
	fr(b, &off, NGHTTP2_WINDOW_UPDATE, 0, 1, wu0, 4);
	fr(b, &off, NGHTTP2_WINDOW_UPDATE, 0, 3, wu_big, 4);
	fr(b, &off, NGHTTP2_DATA, 0, 5, "late", 4);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	k = out_frames(s, f, 32);
	r = find_fr(f, k, NGHTTP2_RST_STREAM, 1);
	assert_non_null(r);
	assert_int_equal(p32(r->p), NGHTTP2_PROTOCOL_ERROR);
	r = find_fr(f, k, NGHTTP2_RST_STREAM, 3);
	assert_non_null(r);
	assert_int_equal(p32(r->p), NGHTTP2_FLOW_CONTROL_ERROR);
	r = find_fr(f, k, NGHTTP2_RST_STREAM, 5);
	assert_non_null(r);
	assert_int_equal(p32(r->p), NGHTTP2_STREAM_CLOSED);
	assert_int_equal(sctr[WP_CTR_HBONE_STREAM_ERROR], 2);
	assert_int_equal(sctr[WP_CTR_HBONE_FLOW_CONTROL_ERROR], 1);
	for (int i = 0; i < 3; i++) {
		assert_true(sapp.st[i].closed);
		assert_int_equal(sapp.st[i].why, WP_HBONE_CLOSE_RESET);
	}
	/* Malformed requests: reset, never seen by the application. */
	static const struct {
		const char *name, *value;
	} bad[] = {
	        {"Baggage", "x"},        /* uppercase */
	        {"connection", "close"}, /* connection-specific */
	        {"te", "gzip"},          /* te other than trailers */
	        {"forwarded", " x"},     /* leading whitespace */
	        {":path", "/"},          /* CONNECT with :path */
	        {":status", "200"},      /* response pseudo-header */
	        {"traceparent", "a\rb"}, /* CR in a value */
	};
	int32_t id = 7;
	for (size_t i = 0; i < WP_ARRAY_SIZE(bad); i++, id += 2) {
		size_t m = connect_block(blk, "10.0.0.1:80"), nl = strlen(bad[i].name),
		       vl = strlen(bad[i].value);
		blk[m++] = 0x00;
		blk[m++] = (uint8_t)nl;
		memcpy(blk + m, bad[i].name, nl);
		m += nl;
		blk[m++] = (uint8_t)vl;
		memcpy(blk + m, bad[i].value, vl);
		m += vl;
		off = 0;
		fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, (uint32_t)id, blk, m);
		assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
		k = out_frames(s, f, 32);
		r = find_fr(f, k, NGHTTP2_RST_STREAM, id);
		assert_non_null(r);
		assert_int_equal(p32(r->p), NGHTTP2_PROTOCOL_ERROR);
	}
	assert_int_equal(sctr[WP_CTR_HBONE_MALFORMED_REQUEST], WP_ARRAY_SIZE(bad));
	/* A CONNECT without :authority. */
	off = 0;
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, (uint32_t)id, blk, 9);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	assert_int_equal(sctr[WP_CTR_HBONE_MALFORMED_REQUEST], WP_ARRAY_SIZE(bad) + 1);
	assert_int_equal(sapp.n, 3);
	/* The connection still works. */
	id += 2;
	n = connect_block(blk, "10.0.0.1:80");
	off = 0;
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, (uint32_t)id, blk, n);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	assert_int_equal(sapp.n, 4);
	assert_int_equal(wp_hbconn_streams(s), 1);
	(void)out_frames(s, f, 32);
	wp_hbconn_free(s);
}

/* The client's preface and a CONNECT to 10.0.0.1:80 on stream 1, answered
 * 200; what the server wrote so far (SETTINGS, its ACK, the 200) is read. */
static void open_stream(struct wp_hbconn *s)
{
	uint8_t b[4096], blk[64];
	struct ofr f[16];
	size_t off, n;

	sapp.answer = 200;
	hello(b, &off);
	n = connect_block(blk, "10.0.0.1:80");
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, blk, n);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	(void)out_frames(s, f, 16);
}

/* The peer's SETTINGS shape our DATA: INITIAL_WINDOW_SIZE (applied to
 * open streams too) and the connection window. */
static void test_srv_peer_windows(void **state)
{
	uint8_t b[4096], data[40000];
	size_t off;
	struct wp_hbconn *s = server(NULL);
	struct ofr f[64];
	int k;
	uint32_t got = 0;
	static const uint8_t iws[6] = {0, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 0, 0, 0x03, 0xe8};
	static const uint8_t wu[4] = {0, 0, 0x27, 0x10}; /* 10000 */

	(void)state;
	open_stream(s);
	/* The window drops to 1000 with the stream open. */
	off = 0;
	fr(b, &off, NGHTTP2_SETTINGS, 0, 0, iws, 6);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	memset(data, 'd', sizeof(data));
	assert_int_equal(wp_hbstream_write(sapp.st[0].s, data, sizeof(data)), sizeof(data));
	k = out_frames(s, f, 64);
	for (int i = 0; i < k; i++)
		if (f[i].type == NGHTTP2_DATA)
			got += f[i].len;
	assert_int_equal(got, 1000);
	assert_non_null(find_fr(f, k, NGHTTP2_SETTINGS, 0)); /* the ACK */
	/* A stream WINDOW_UPDATE: 10000 more, in frames of at most 16384. */
	off = 0;
	fr(b, &off, NGHTTP2_WINDOW_UPDATE, 0, 1, wu, 4);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	k = out_frames(s, f, 64);
	assert_int_equal(k, 1);
	assert_int_equal(f[0].len, 10000);
	/* Now the connection window (65535 - 11000) is the bound. */
	for (int i = 0; i < 8; i++) {
		off = 0;
		fr(b, &off, NGHTTP2_WINDOW_UPDATE, 0, 1, "\0\1\0\0", 4);
		assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	}
	k = out_frames(s, f, 64);
	got = 0;
	for (int i = 0; i < k; i++) {
		assert_true(f[i].len <= 16384);
		got += f[i].len;
	}
	assert_int_equal(got, sizeof(data) - 11000);
	wp_hbconn_free(s);
}

/* A tunnel's bytes leave in DATA frames that, with their header, fill one
 * TLS record's plaintext (16384 bytes) and come one per peek, which the
 * session seals as one record each: with 16384-byte payloads every frame's
 * last 9 bytes made a record of their own. */
static void test_srv_data_fills_records(void **state)
{
	uint8_t data[40000];
	struct wp_hbconn *s = server(NULL);
	const uint8_t *p;
	ssize_t k;
	uint32_t got = 0, peeks = 0;

	(void)state;
	open_stream(s);
	memset(data, 'd', sizeof(data));
	assert_int_equal(wp_hbstream_write(sapp.st[0].s, data, sizeof(data)), sizeof(data));
	while ((k = wp_hbconn_peek(s, &p)) > 0) {
		uint32_t fl = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];

		assert_int_equal(p[3], NGHTTP2_DATA);
		assert_int_equal(9 + fl, (uint32_t)k); /* one frame per peek */
		assert_true(k <= 16384);
		/* whole records while the stream has a record's worth */
		if (sizeof(data) - got >= 16384 - 9)
			assert_int_equal(k, 16384);
		got += fl;
		peeks++;
		wp_hbconn_advance(s, (size_t)k);
	}
	assert_int_equal(got, sizeof(data));
	assert_int_equal(peeks, 3); /* 16375 + 16375 + 7250 */
	wp_hbconn_free(s);
}

/* Idle connections hold no output buffer, answered PINGs included; after
 * a drain, new streams are ignored (the peer sees the last stream id). */
static void test_srv_idle_and_goaway(void **state)
{
	uint8_t b[4096], blk[64], z[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	size_t off, n;
	struct wp_h2mem *sm = wp_h2mem_new(0, 0);
	struct wp_hbconn *s = wp_hbconn_new(true, NULL, sm, &ops, &sapp, sctr, now);
	struct wp_h2mem_stats a, st;
	struct ofr f[16];
	int k;
	const struct ofr *g;

	(void)state;
	sapp.answer = 200;
	hello(b, &off);
	frame(b, &off, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	(void)out_frames(s, f, 16);
	wp_h2mem_stats(sm, &a);
	off = 0;
	fr(b, &off, NGHTTP2_PING, 0, 0, z, 8);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	k = out_frames(s, f, 16);
	assert_int_equal(k, 1);
	assert_int_equal(f[0].type, NGHTTP2_PING);
	assert_int_equal(f[0].flags, NGHTTP2_FLAG_ACK);
	assert_memory_equal(f[0].p, z, 8);
	wp_h2mem_stats(sm, &st);
	assert_int_equal(st.live_bytes, a.live_bytes);
	assert_int_equal(st.live_blocks, 3); /* the struct, the inflater and its ring */
	/* Our SETTINGS were acked: the peer's encoder must now shrink its
	 * table to 0 first (RFC 7541 §4.2), or the block fails. */
	blk[0] = 0x20;
	n = 1 + connect_block(blk + 1, "10.0.0.1:80");
	off = 0;
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 3, blk, n);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	assert_int_equal(wp_hbconn_drain(s), 0);
	assert_int_equal(sctr[WP_CTR_HBONE_GOAWAY_SENT], 1);
	k = out_frames(s, f, 16);
	g = find_fr(f, k, NGHTTP2_GOAWAY, 0);
	assert_non_null(g);
	assert_int_equal(p32(g->p), 3);
	assert_int_equal(p32(g->p + 4), NGHTTP2_NO_ERROR);
	off = 0;
	fr(b, &off, NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 5, blk, n);
	fr(b, &off, NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 5, "x", 1);
	assert_int_equal(wp_hbconn_input(s, b, off, now), (ssize_t)off);
	assert_int_equal(sapp.n, 1);
	assert_int_equal(out_frames(s, f, 16), 0);
	assert_false(wp_hbconn_done(s));
	/* The last stream ends: done. */
	assert_int_equal(wp_hbstream_reset(sapp.st[0].s, NGHTTP2_CANCEL), 0);
	assert_false(sapp.st[0].closed); /* not from inside the call */
	k = out_frames(s, f, 16);
	assert_non_null(find_fr(f, k, NGHTTP2_RST_STREAM, 3));
	assert_true(sapp.st[0].closed);
	assert_int_equal(sapp.st[0].why, WP_HBONE_CLOSE_LOCAL);
	assert_true(wp_hbconn_done(s));
	wp_hbconn_free(s);
	wp_h2mem_stats(sm, &st);
	assert_int_equal(st.live_blocks, 0);
	wp_h2mem_destroy(sm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_srv_connection_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_srv_frames_bytewise, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_srv_stream_errors, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_srv_peer_windows, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_srv_data_fills_records, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_srv_idle_and_goaway, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
