/*
 * libFuzzer driver for the admin server's request parser
 * (cp/admin/httpd_req.c). The first input byte picks the request limit
 * (max_request_bytes, 64..16384) and a step; the rest is what a client
 * sent on one connection. It is parsed request after request as the server
 * does (body skipped, pipelined requests next), once with all the bytes at
 * hand and once with them arriving <step> bytes at a time into a heap
 * buffer of exactly that size, so ASan sees any read past what arrived.
 * Checks beyond memory safety:
 *   - the answers do not depend on how the bytes arrived (same status,
 *     same head and body lengths, path, query, method, keep-alive);
 *   - "incomplete" only while fewer than max_request bytes are there;
 *   - a complete head ends with CRLF CRLF, fits with its body in the
 *     limit, has a NUL-terminated path of at most WP_HTTPD_TARGET_MAX
 *     bytes starting with '/' (or "*"), and holds no bare LF;
 *   - a refusal is one of the statuses the header lists.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd_req.h"

#define MAX_REQS 64

struct outcome {
	int rc;
	struct wp_httpd_req req;
};

static void check(const struct outcome *o, const uint8_t *buf, size_t len, size_t max)
{
	const struct wp_httpd_req *r = &o->req;

	if (o->rc == 0) {
		if (len >= max)
			abort();
		return;
	}
	if (o->rc < 0) {
		switch (-o->rc) {
		case 400:
		case 411:
		case 413:
		case 414:
		case 431:
		case 505:
			return;
		default:
			abort();
		}
	}
	if (o->rc != 1 || r->head_len < 4 || r->head_len > len || r->head_len > max ||
	    r->head_len + r->body_len > max || memcmp(buf + r->head_len - 4, "\r\n\r\n", 4))
		abort();
	for (size_t i = 0; i < r->head_len; i++)
		if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
			abort();
	if (memchr(r->path, '\0', sizeof(r->path)) == NULL ||
	    memchr(r->query, '\0', sizeof(r->query)) == NULL)
		abort();
	if (strlen(r->path) > WP_HTTPD_TARGET_MAX || (r->path[0] != '/' && strcmp(r->path, "*")))
		abort();
	if (r->method > WP_HTTPD_OTHER)
		abort();
}

/* All bytes at hand: the outcomes of successive requests; returns how many. */
static unsigned whole(const uint8_t *data, size_t size, size_t max, struct outcome *out)
{
	size_t off = 0;
	unsigned n = 0;

	while (n < MAX_REQS) {
		struct wp_httpd_req_parser p = {.max_request = max};
		struct outcome *o = &out[n++];
		size_t left = size - off;

		o->rc = wp_httpd_req_parse(&p, (const char *)data + off, left, &o->req);
		check(o, data + off, left, max);
		if (o->rc != 1)
			break;
		if (o->req.head_len + o->req.body_len > left) {
			o->rc = 0; /* the body is still on its way */
			break;
		}
		off += o->req.head_len + o->req.body_len;
	}
	return n;
}

/* The same bytes arriving step at a time, each parse call seeing only
 * what arrived so far in a buffer of exactly that size. */
static void trickled(const uint8_t *data, size_t size, size_t max, size_t step,
                     const struct outcome *want, unsigned n_want)
{
	size_t off = 0, have = 0;
	unsigned n = 0;

	while (n < n_want) {
		struct wp_httpd_req_parser p = {.max_request = max};
		struct outcome o = {0};

		for (;;) {
			char *copy;

			have = have + step < size ? have + step : size;
			copy = malloc(have - off ? have - off : 1); /* exactly what arrived */
			memcpy(copy, data + off, have - off);
			o.rc = wp_httpd_req_parse(&p, copy, have - off, &o.req);
			free(copy);
			if (o.rc != 0 || have == size || have - off >= max)
				break;
		}
		if (o.rc == 1 && o.req.head_len + o.req.body_len > size - off)
			o.rc = 0;
		if (o.rc != want[n].rc)
			abort();
		if (o.rc == 1 &&
		    (o.req.head_len != want[n].req.head_len ||
		     o.req.body_len != want[n].req.body_len || o.req.method != want[n].req.method ||
		     o.req.keep_alive != want[n].req.keep_alive ||
		     o.req.minor != want[n].req.minor || strcmp(o.req.path, want[n].req.path) ||
		     strcmp(o.req.query, want[n].req.query)))
			abort();
		n++;
		if (o.rc != 1)
			break;
		off += o.req.head_len + o.req.body_len;
		if (have < off)
			have = off;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct outcome want[MAX_REQS];
	size_t max, step;
	unsigned n;

	if (size < 1)
		return 0;
	max = 64u << (data[0] & 7);         /* 64 .. 8192 */
	max += (data[0] & 0x08) ? 8192 : 0; /* .. 16384 */
	step = 1 + (data[0] >> 4);          /* 1 .. 16 bytes per arrival */
	data++;
	size--;
	n = whole(data, size, max, want);
	trickled(data, size, max, step, want, n);
	return 0;
}
