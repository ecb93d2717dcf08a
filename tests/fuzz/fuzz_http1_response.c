/*
 * libFuzzer driver for the HTTP/1.x response parser and the response
 * serialiser (dp/http). The first input byte selects the request method the
 * response answers (GET, HEAD, POST, CONNECT) and the client's version; the
 * rest is fed in pieces whose buffers are freed once consumed. Checks:
 * EV_NONE means everything was consumed, body slices lie inside the feed,
 * errors are 502 decisions, each head serialises for the client into a head
 * the client-side parser accepts with the same status, and EOF handling
 * never reports success for a message that was cut short.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "wp/counters.h"

static uint64_t ctr[WP_CTR_MAX];

static const struct wp_http1_limits lim = {
        .max_line = 512, .max_header_bytes = 1024, .max_headers = 16};

static void check_head(const struct wp_http1_msg *resp, const struct wp_http1_msg *req)
{
	char out[4096];
	enum wp_http1_framing f;
	int n = wp_http1_write_response_head(resp, req, true, NULL, &f, out, sizeof(out));
	if (n == -ENOSPC)
		return;
	if (n <= 0)
		abort();
	struct wp_http1_limits big = {
	        .max_line = 4096, .max_header_bytes = 4096, .max_headers = 64};
	static uint64_t c2[WP_CTR_MAX];
	size_t asz = wp_http1_arena_size(&big);
	void *a = malloc(asz);
	struct wp_http1_parser q;
	if (wp_http1_parser_init(&q, HTTP_RESPONSE, &big, a, asz, c2))
		abort();
	wp_http1_parser_expect_response(&q, req->method);
	struct wp_http1_ev ev;
	wp_http1_parse(&q, (const uint8_t *)out, (size_t)n, &ev);
	if (ev.type != WP_HTTP1_EV_HEAD || ev.msg->status != resp->status)
		abort();
	if (f == WP_HTTP1_FRAME_CHUNKED && !(ev.msg->flags & WP_HTTP1_F_CHUNKED))
		abort();
	free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t methods[] = {HTTP_GET, HTTP_HEAD, HTTP_POST, HTTP_CONNECT};
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	data++;
	size--;

	struct wp_http1_msg req = {
	        .method = methods[sel & 3], .http_major = 1, .http_minor = (sel & 4) ? 0 : 1};
	size_t asz = wp_http1_arena_size(&lim);
	void *arena = malloc(asz);
	struct wp_http1_parser p;
	if (wp_http1_parser_init(&p, HTTP_RESPONSE, &lim, arena, asz, ctr))
		abort();
	wp_http1_parser_expect_response(&p, req.method);

	size_t start = 0;
	uint8_t seed = sel | 1;
	bool stop = false, in_msg = false;
	while (start < size && !stop) {
		size_t plen = WP_MIN((size_t)(seed % 23) + 1, size - start);
		seed = (uint8_t)(seed * 73 + 41) | 1;
		uint8_t *piece = malloc(plen);
		memcpy(piece, data + start, plen);
		size_t off = 0;
		for (;;) {
			struct wp_http1_ev ev;
			size_t used = wp_http1_parse(&p, piece + off, plen - off, &ev);
			if (used > plen - off)
				abort();
			off += used;
			if (ev.type == WP_HTTP1_EV_NONE) {
				if (off != plen)
					abort();
				break;
			}
			if (ev.type == WP_HTTP1_EV_HEAD) {
				in_msg = true;
				check_head(ev.msg, &req);
			} else if (ev.type == WP_HTTP1_EV_BODY) {
				if (!in_msg || ev.data < piece || ev.data + ev.len > piece + off)
					abort();
			} else if (ev.type == WP_HTTP1_EV_DONE) {
				in_msg = false;
			} else if (ev.type == WP_HTTP1_EV_ERROR) {
				if (ev.status != 502)
					abort();
				stop = true;
				break;
			} else {
				stop = true;
				break;
			}
		}
		free(piece);
		start += plen;
	}
	if (!stop) {
		struct wp_http1_ev ev;
		bool was_in = in_msg;
		wp_http1_parse_eof(&p, &ev);
		if (ev.type == WP_HTTP1_EV_DONE && !was_in)
			abort();
		if (ev.type == WP_HTTP1_EV_NONE && was_in)
			abort();
	}
	free(arena);
	return 0;
}
