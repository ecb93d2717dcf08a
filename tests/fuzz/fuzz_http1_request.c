/*
 * libFuzzer driver for the HTTP/1.x request parser and the upstream request
 * serialiser (dp/http). The first input byte picks how the rest is cut into
 * feeds; each feed lives in its own heap buffer that is freed once consumed,
 * so ASan catches any pointer kept into recycled input. Checks beyond memory
 * safety:
 *   - the event stream does not depend on how the input is cut (a digest of
 *     the events of a one-shot feed equals that of the cut feeds; of an
 *     error only the fact counts: 400 vs 431 may depend on the cut);
 *   - EV_NONE means every byte was consumed, body slices lie in the feed,
 *     heads and messages alternate, an error is a 400/431 that moved a counter;
 *   - every head that parses serialises into a head that parses again, to
 *     the same method and target, without hop-by-hop headers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1.h"
#include "wp/counters.h"

static uint64_t ctr[WP_CTR_MAX];
static struct wp_http_reqid_rng rng;

struct run {
	struct wp_http1_parser p;
	void *arena;
	uint64_t digest;
	uint64_t body_digest;
};

static void mix(uint64_t *d, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		*d = (*d ^ b[i]) * 0x100000001b3ULL;
}

static const struct wp_http1_limits lim = {
        .max_line = 512, .max_header_bytes = 1024, .max_headers = 16};

static void check_reserialise(const struct wp_http1_msg *m)
{
	char out[4096];
	struct wp_http1_req_opts o = {.rng = &rng};
	int n = wp_http1_write_request_head(m, &o, out, sizeof(out));
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
	if (wp_http1_parser_init(&q, HTTP_REQUEST, &big, a, asz, c2))
		abort();
	struct wp_http1_ev ev;
	wp_http1_parse(&q, (const uint8_t *)out, (size_t)n, &ev);
	/* HTTP/1.0 without Host re-serialises without Host: HTTP/1.1 needs one */
	bool no_host = wp_http1_find(m, "host", 4) == NULL;
	if (ev.type != WP_HTTP1_EV_HEAD && !(no_host && ev.type == WP_HTTP1_EV_ERROR))
		abort();
	if (ev.type == WP_HTTP1_EV_HEAD) {
		if (ev.msg->method != m->method || ev.msg->target_len != m->target_len ||
		    memcmp(ev.msg->target, m->target, m->target_len) != 0)
			abort();
		for (uint16_t i = 0; i < ev.msg->n_hdrs; i++) {
			uint8_t id = ev.msg->hdrs[i].id;
			if (id == WP_HDR_KEEP_ALIVE || id == WP_HDR_PROXY_CONNECTION ||
			    id == WP_HDR_TRAILER ||
			    (id == WP_HDR_CONNECTION && !(m->flags & WP_HTTP1_F_UPGRADE)))
				abort();
		}
	}
	free(a);
}

/* Feeds data[0..len) cut by <seed> (0: in one piece) into r's parser. */
static void run_feed(struct run *r, const uint8_t *data, size_t len, uint8_t seed, bool reser)
{
	size_t start = 0;
	int state = 0; /* 0 idle, 1 in message */
	uint64_t before = 0;
	for (size_t i = 0; i < WP_CTR_MAX; i++)
		before += ctr[i];

	while (start < len || seed == 0) {
		size_t plen = seed ? WP_MIN((size_t)(seed % 17) + 1, len - start) : len;
		seed = (uint8_t)(seed * 73 + 41) | 1;
		uint8_t *piece = malloc(plen ? plen : 1);
		memcpy(piece, data + start, plen);
		size_t off = 0;
		bool stop = false;
		for (;;) {
			struct wp_http1_ev ev;
			size_t used = wp_http1_parse(&r->p, piece + off, plen - off, &ev);
			if (used > plen - off)
				abort();
			off += used;
			uint8_t t = (uint8_t)ev.type;
			if (ev.type != WP_HTTP1_EV_BODY && ev.type != WP_HTTP1_EV_NONE)
				mix(&r->digest, &t, 1);
			if (ev.type == WP_HTTP1_EV_NONE) {
				if (off != plen)
					abort();
				break;
			} else if (ev.type == WP_HTTP1_EV_HEAD) {
				if (state != 0)
					abort();
				state = 1;
				mix(&r->digest, ev.msg->target, ev.msg->target_len);
				for (uint16_t i = 0; i < ev.msg->n_hdrs; i++) {
					mix(&r->digest, ev.msg->hdrs[i].name,
					    ev.msg->hdrs[i].name_len);
					mix(&r->digest, ev.msg->hdrs[i].value,
					    ev.msg->hdrs[i].value_len);
				}
				if (reser)
					check_reserialise(ev.msg);
			} else if (ev.type == WP_HTTP1_EV_BODY) {
				if (state != 1 || ev.len == 0 || ev.data < piece ||
				    ev.data + ev.len > piece + off)
					abort();
				mix(&r->body_digest, ev.data, ev.len);
			} else if (ev.type == WP_HTTP1_EV_DONE) {
				if (state != 1)
					abort();
				state = 0;
				mix(&r->digest, &r->body_digest, sizeof(r->body_digest));
				r->body_digest = 0;
			} else if (ev.type == WP_HTTP1_EV_UPGRADE) {
				uint64_t at = start + off;
				mix(&r->digest, &at, sizeof(at));
				stop = true;
				break;
			} else {
				uint64_t after = 0;
				for (size_t i = 0; i < WP_CTR_MAX; i++)
					after += ctr[i];
				/* the refusal was counted */
				if (ev.status != 400 && ev.status != 431)
					abort();
				if (after <= before)
					abort();
				/* which refusal comes first may depend on the cut
				 * (a name that is both invalid and over the limit),
				 * so only the fact of refusal enters the digest */
				stop = true;
				break;
			}
		}
		memset(piece, 0x5a, plen);
		free(piece);
		start += plen;
		if (stop || seed == 0 || start >= len)
			break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool seeded;
	if (!seeded) {
		wp_http_reqid_seed(&rng, 1);
		seeded = true;
	}
	if (size < 1)
		return 0;
	uint8_t seed = data[0];
	data++;
	size--;

	size_t asz = wp_http1_arena_size(&lim);
	struct run a = {0}, b = {0};
	a.arena = malloc(asz);
	b.arena = malloc(asz);
	if (wp_http1_parser_init(&a.p, HTTP_REQUEST, &lim, a.arena, asz, ctr) ||
	    wp_http1_parser_init(&b.p, HTTP_REQUEST, &lim, b.arena, asz, ctr))
		abort();
	run_feed(&a, data, size, 0, true);
	run_feed(&b, data, size, seed | 1, false);
	if (a.digest != b.digest)
		abort();
	free(a.arena);
	free(b.arena);
	return 0;
}
