/*
 * The harness of the dp/hbone unit tests (test_hbone.c, test_hbone_srv.c):
 * a recording application behind both ends of a wp_hbconn pair, the
 * setup/teardown that checks every byte went back to the allocator, the
 * pump between two connections, and frame helpers. Each test executable
 * includes it once; its functions are static inline, so a file that does
 * not call one gets no unused-function warning.
 */
#ifndef WP_TESTS_UNIT_DP_HBONE_HBONE_HARNESS_H
#define WP_TESTS_UNIT_DP_HBONE_HBONE_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "hbone.h"
#include "wp/addr.h"
#include "wp/counters.h"

/* ---- a recording application ---- */

struct tstream {
	struct wp_hbstream *s;
	uint8_t *rx;
	size_t rxlen, rxcap;
	bool eof, closed, writable, autoconsume;
	int status;
	enum wp_hbone_close why;
	uint32_t err;
	char authority[64], baggage[128], forwarded[128], traceparent[128];
};

struct tapp {
	struct tstream st[256];
	int n;
	int answer; /* server: status to answer on request (0: none yet) */
	bool autoconsume;
};

static struct tapp sapp, capp;
static uint64_t sctr[WP_CTR_MAX], cctr[WP_CTR_MAX];
static struct wp_h2mem *mem;
static uint64_t now;

static inline void copyh(char *dst, size_t n, struct wp_hbone_hval v)
{
	snprintf(dst, n, "%s", v.base ? v.base : "");
}

static inline void rx_append(struct tstream *t, const uint8_t *d, size_t len)
{
	if (t->rxlen + len > t->rxcap) {
		t->rxcap = (t->rxlen + len) * 2;
		t->rx = realloc(t->rx, t->rxcap);
	}
	memcpy(t->rx + t->rxlen, d, len);
	t->rxlen += len;
}

static inline void on_request(struct wp_hbconn *c, struct wp_hbstream *s,
                              const struct wp_hbone_req *req)
{
	struct tstream *t = &sapp.st[sapp.n++];

	(void)c;
	assert_true(sapp.n < 256);
	memset(t, 0, sizeof(*t));
	t->s = s;
	t->autoconsume = sapp.autoconsume;
	wp_hbstream_set_app(s, t);
	wp_sockaddr_format(&req->authority, t->authority, sizeof(t->authority));
	copyh(t->baggage, sizeof(t->baggage), req->baggage);
	copyh(t->forwarded, sizeof(t->forwarded), req->forwarded);
	copyh(t->traceparent, sizeof(t->traceparent), req->traceparent);
	if (sapp.answer)
		assert_int_equal(wp_hbstream_respond(s, sapp.answer), 0);
}

static inline void on_response(struct wp_hbstream *s, int status)
{
	struct tstream *t = wp_hbstream_app(s);
	t->status = status;
}

static inline void on_data(struct wp_hbstream *s, const uint8_t *d, size_t len)
{
	struct tstream *t = wp_hbstream_app(s);

	rx_append(t, d, len);
	if (t->autoconsume)
		assert_int_equal(wp_hbstream_consume(s, len), 0);
}

static inline void on_eof(struct wp_hbstream *s)
{
	struct tstream *t = wp_hbstream_app(s);
	t->eof = true;
}

static inline void on_writable(struct wp_hbstream *s)
{
	struct tstream *t = wp_hbstream_app(s);
	t->writable = true;
}

static inline void on_close(struct wp_hbstream *s, enum wp_hbone_close why, uint32_t err)
{
	struct tstream *t = wp_hbstream_app(s);

	assert_false(t->closed);
	t->closed = true;
	t->why = why;
	t->err = err;
	t->s = NULL;
}

static const struct wp_hbone_ops ops = {
        .on_request = on_request,
        .on_response = on_response,
        .on_data = on_data,
        .on_eof = on_eof,
        .on_writable = on_writable,
        .on_close = on_close,
};

static inline int setup(void **state)
{
	(void)state;
	for (int i = 0; i < 256; i++) {
		free(sapp.st[i].rx);
		free(capp.st[i].rx);
	}
	memset(&sapp, 0, sizeof(sapp));
	memset(&capp, 0, sizeof(capp));
	memset(sctr, 0, sizeof(sctr));
	memset(cctr, 0, sizeof(cctr));
	sapp.autoconsume = capp.autoconsume = true;
	now = 1000;
	mem = wp_h2mem_new(0, 0);
	assert_non_null(mem);
	return 0;
}

static inline int teardown(void **state)
{
	struct wp_h2mem_stats st;

	(void)state;
	wp_h2mem_stats(mem, &st);
	/* Everything went back to the allocator. */
	assert_int_equal(st.live_bytes, 0);
	wp_h2mem_destroy(mem);
	return 0;
}

/* Moves bytes both ways until quiet. */
static inline void pump(struct wp_hbconn *a, struct wp_hbconn *b)
{
	const uint8_t *p;
	ssize_t n;
	bool moved;
	int guard = 0;

	do {
		moved = false;
		while ((n = wp_hbconn_peek(a, &p)) > 0) {
			assert_int_equal(wp_hbconn_input(b, p, (size_t)n, now), n);
			wp_hbconn_advance(a, (size_t)n);
			moved = true;
		}
		while ((n = wp_hbconn_peek(b, &p)) > 0) {
			assert_int_equal(wp_hbconn_input(a, p, (size_t)n, now), n);
			wp_hbconn_advance(b, (size_t)n);
			moved = true;
		}
		assert_true(++guard < 10000);
	} while (moved);
}

static inline struct wp_hbconn *server(const struct wp_hbone_config *cfg)
{
	struct wp_hbconn *c = wp_hbconn_new(true, cfg, mem, &ops, &sapp, sctr, now);
	assert_non_null(c);
	return c;
}

static inline struct wp_hbconn *client(const struct wp_hbone_config *cfg)
{
	struct wp_hbconn *c = wp_hbconn_new(false, cfg, mem, &ops, &capp, cctr, now);
	assert_non_null(c);
	return c;
}

static inline struct tstream *copen(struct wp_hbconn *c, const char *auth)
{
	struct wp_sockaddr sa;
	struct tstream *t = &capp.st[capp.n++];

	memset(t, 0, sizeof(*t));
	t->autoconsume = capp.autoconsume;
	assert_int_equal(wp_sockaddr_parse(auth, &sa), 0);
	t->s = wp_hbconn_open(c, &sa, "k=v", "for=\"10.0.0.9:4444\";host=reviews.default.svc",
	                      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", t);
	assert_non_null(t->s);
	return t;
}

static inline void frame(uint8_t *b, size_t *off, uint32_t len, uint8_t type, uint8_t flags,
                         uint32_t sid)
{
	b[(*off)++] = (uint8_t)(len >> 16);
	b[(*off)++] = (uint8_t)(len >> 8);
	b[(*off)++] = (uint8_t)len;
	b[(*off)++] = type;
	b[(*off)++] = flags;
	b[(*off)++] = (uint8_t)(sid >> 24);
	b[(*off)++] = (uint8_t)(sid >> 16);
	b[(*off)++] = (uint8_t)(sid >> 8);
	b[(*off)++] = (uint8_t)sid;
}

/* Takes all of a server's output, walking its frames; returns the error
 * code of the GOAWAY in it, or -1. */
static inline int64_t drain_goaway(struct wp_hbconn *s)
{
	static uint8_t all[1 << 16];
	size_t len = 0, off = 0;
	const uint8_t *p;
	ssize_t n;
	int64_t code = -1;

	while ((n = wp_hbconn_peek(s, &p)) > 0) {
		assert_true(len + (size_t)n <= sizeof(all));
		memcpy(all + len, p, (size_t)n);
		len += (size_t)n;
		wp_hbconn_advance(s, (size_t)n);
	}
	while (off + 9 <= len) {
		size_t flen = (size_t)all[off] << 16 | (size_t)all[off + 1] << 8 | all[off + 2];
		if (all[off + 3] == NGHTTP2_GOAWAY && flen >= 8)
			code = (int64_t)((uint32_t)all[off + 13] << 24 |
			                 (uint32_t)all[off + 14] << 16 |
			                 (uint32_t)all[off + 15] << 8 | all[off + 16]);
		off += 9 + flen;
	}
	assert_int_equal(off, len);
	return code;
}

#endif
