/*
 * libFuzzer driver for the HBONE server (dp/hbone/h2srv.c, our own HTTP/2
 * framer): arbitrary bytes after
 * the client preface go into a server wp_hbconn whose application accepts
 * every CONNECT (port parity picks 200 or 503) and echoes tunnels. The
 * input is split at 0xff-marked points into several wp_hbconn_input calls,
 * time advances between them (PING keepalive, rapid-reset windows). Checks
 * besides memory safety: every stream the application saw is closed
 * exactly once, all memory returns to the per-core allocator, and what
 * the server sends is a well-formed sequence of the frames a server may
 * send (known types, at most 16 KiB each, the SETTINGS first).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "hbone.h"
#include "wp/counters.h"

static int opened, closed;

static void on_request(struct wp_hbconn *c, struct wp_hbstream *s, const struct wp_hbone_req *req)
{
	(void)c;
	opened++;
	if (req->authority_text.base == NULL ||
	    strlen(req->authority_text.base) != req->authority_text.len)
		abort();
	(void)wp_hbstream_respond(s, req->authority.port & 1 ? 503 : 200);
}

static void on_data(struct wp_hbstream *s, const uint8_t *d, size_t len)
{
	ssize_t n = wp_hbstream_write(s, d, len);
	(void)wp_hbstream_consume(s, n > 0 ? (size_t)n : 0);
}

static void on_eof(struct wp_hbstream *s)
{
	(void)wp_hbstream_shutdown(s);
}

static void on_close(struct wp_hbstream *s, enum wp_hbone_close why, uint32_t err)
{
	(void)s;
	(void)why;
	(void)err;
	closed++;
}

/* Follows the server's output across peeks, frame by frame. */
static struct {
	uint8_t hd[9];
	size_t hdlen, left;
	unsigned frames;
} ow;

static void out_check(const uint8_t *p, size_t n)
{
	while (n > 0) {
		size_t k;

		if (ow.left > 0) {
			k = n < ow.left ? n : ow.left;
			ow.left -= k;
			p += k;
			n -= k;
			continue;
		}
		k = 9 - ow.hdlen < n ? 9 - ow.hdlen : n;
		memcpy(ow.hd + ow.hdlen, p, k);
		ow.hdlen += k;
		p += k;
		n -= k;
		if (ow.hdlen < 9)
			continue;
		ow.hdlen = 0;
		ow.left = (size_t)ow.hd[0] << 16 | (size_t)ow.hd[1] << 8 | ow.hd[2];
		if (ow.left > 16384)
			abort();
		switch (ow.hd[3]) {
		case NGHTTP2_DATA:
		case NGHTTP2_HEADERS:
		case NGHTTP2_RST_STREAM:
		case NGHTTP2_SETTINGS:
		case NGHTTP2_PING:
		case NGHTTP2_GOAWAY:
		case NGHTTP2_WINDOW_UPDATE:
			break;
		default:
			abort();
		}
		if (ow.frames++ == 0 && ow.hd[3] != NGHTTP2_SETTINGS)
			abort();
	}
}

static void flush(struct wp_hbconn *c)
{
	const uint8_t *p;
	ssize_t n;

	while ((n = wp_hbconn_peek(c, &p)) > 0) {
		out_check(p, (size_t)n);
		wp_hbconn_advance(c, (size_t)n);
	}
}

static const struct wp_hbone_ops ops = {
        .on_request = on_request,
        .on_data = on_data,
        .on_eof = on_eof,
        .on_close = on_close,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t ctrs[WP_CTR_MAX];
	struct wp_h2mem *mem = wp_h2mem_new(0, 8 << 20);
	struct wp_h2mem_stats st;
	struct wp_hbconn *c;
	uint64_t now = 1000;
	size_t off = 0;

	opened = closed = 0;
	memset(&ow, 0, sizeof(ow));
	c = wp_hbconn_new(true, NULL, mem, &ops, NULL, ctrs, now);
	if (c == NULL)
		abort();
	(void)wp_hbconn_input(c, (const uint8_t *)NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN,
	                      now);
	while (off < size) {
		const uint8_t *cut = memchr(data + off, 0xff, size - off);
		size_t len = cut ? (size_t)(cut - (data + off)) + 1 : size - off;
		uint8_t *chunk = malloc(len); /* exact size: ASan sees overreads */
		memcpy(chunk, data + off, len);
		if (wp_hbconn_input(c, chunk, len, now) < 0) {
			free(chunk);
			break;
		}
		free(chunk);
		off += len;
		now += data[off - 1] * 100u;
		(void)wp_hbconn_tick(c, now);
		flush(c);
	}
	flush(c);
	(void)wp_hbconn_drain(c);
	flush(c);
	if (ow.hdlen != 0 || ow.left != 0)
		abort(); /* a frame cut short */
	wp_hbconn_free(c);
	if (opened != closed)
		abort();
	wp_h2mem_stats(mem, &st);
	if (st.live_bytes != 0)
		abort();
	wp_h2mem_destroy(mem);
	return 0;
}
