/*
 * Shared by the proxy session fuzzers (fuzz_h1proxy.c, fuzz_h2proxy.c):
 *   - the route table both play against: an HTTPRoute on reviews:9080 with
 *     weighted backends and timeouts, a redirect, header modifiers,
 *     URLRewrite and a mirror, a rule to a Service that does not exist
 *     (500) and a catch-all, compiled by the real compiler through
 *     tests/unit/dp/l7/route_fixture.h (whose cmocka checks abort here);
 *     pfx_routes_init() builds it into pfx_table / pfx_rcore;
 *   - the upstream check: struct pfx_reqcheck follows what a proxy writes
 *     to one HTTP/1.1 upstream and aborts unless it parses, with llhttp in
 *     its strict default mode, as a sequence of requests (raw bytes only
 *     after an Upgrade or CONNECT head);
 *   - pfx_play(): the script loop, records <op:1><arg:1><len:1><bytes:len>,
 *     each record's bytes copied into a heap buffer of their exact length
 *     (so ASan sees over-reads) and handed to the driver's step function.
 */
#ifndef WP_TESTS_FUZZ_PROXY_FIXTURE_H
#define WP_TESTS_FUZZ_PROXY_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "wp/route.h"

#define assert_non_null(x)                                                                         \
	do {                                                                                       \
		if ((x) == NULL)                                                                   \
			abort();                                                                   \
	} while (0)
#define assert_true(x)                                                                             \
	do {                                                                                       \
		if (!(x))                                                                          \
			abort();                                                                   \
	} while (0)
#define assert_int_equal(a, b) assert_true((a) == (b))
#define fail_msg(fmt, ...)     (fprintf(stderr, fmt "\n", __VA_ARGS__), abort())
#include "../unit/dp/l7/route_fixture.h"

static struct wp_route_core pfx_rcore;
static struct wp_route_table *pfx_table;

static const struct fx_svc pfx_svcs[] = {
        {"reviews", 2, 1}, {"reviews-v1", 1, 2}, {"reviews-v2", 2, 3}, {"shadow", 1, 4}};

static const char *const pfx_rules =
        "  - matches: [{path: {type: PathPrefix, value: /split}}]\n"
        "    backendRefs:\n    - {name: reviews-v1, port: 9080, weight: 80}\n"
        "    - {name: reviews-v2, port: 9080, weight: 20}\n"
        "    timeouts: {request: 2s, backendRequest: 1s}\n"
        "  - matches: [{path: {type: PathPrefix, value: /go}}]\n"
        "    filters:\n    - type: RequestRedirect\n      requestRedirect:\n"
        "        hostname: other.example\n        statusCode: 301\n"
        "  - matches: [{path: {type: PathPrefix, value: /m}, method: POST}]\n"
        "    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n"
        "        set: [{name: X-Set, value: s}]\n        remove: [x-drop]\n"
        "    - type: ResponseHeaderModifier\n      responseHeaderModifier:\n"
        "        add: [{name: X-Resp, value: r}]\n"
        "    - type: URLRewrite\n      urlRewrite:\n"
        "        hostname: rewritten.example\n"
        "        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}\n"
        "    - type: RequestMirror\n      requestMirror:\n"
        "        backendRef: {name: shadow, port: 9080}\n"
        "    backendRefs: [{name: reviews-v2, port: 9080}]\n"
        "  - matches: [{headers: [{name: x-h, value: a}]}]\n"
        "    backendRefs: [{name: nowhere, port: 9080}]\n"
        "  - backendRefs: [{name: reviews, port: 9080}]\n";

/* Builds pfx_table and readies pfx_rcore (counters into <ctr>). */
static void pfx_routes_init(uint64_t *ctr)
{
	fx_svcs = pfx_svcs;
	fx_n_svcs = WP_ARRAY_SIZE(pfx_svcs);
	pfx_table = fx_build("reviews", pfx_rules);
	wp_route_core_init(&pfx_rcore, 7, ctr);
	if (wp_route_core_reserve(&pfx_rcore, pfx_table) != 0)
		abort();
}

struct pfx_reqcheck {
	llhttp_t parser;
	bool raw; /* past an Upgrade / CONNECT head: no longer HTTP */
};

static llhttp_settings_t pfx_req_settings; /* no callbacks: framing only */

static void pfx_reqcheck_init(struct pfx_reqcheck *r)
{
	llhttp_settings_init(&pfx_req_settings);
	llhttp_init(&r->parser, HTTP_REQUEST, &pfx_req_settings);
	r->raw = false;
}

/* The proxy sent <len> more bytes to this upstream: they must continue a
 * well-formed request stream. */
static void pfx_reqcheck_feed(struct pfx_reqcheck *r, const uint8_t *p, size_t len)
{
	llhttp_errno_t e;

	if (r->raw || len == 0)
		return;
	e = llhttp_execute(&r->parser, (const char *)p, len);
	if (e == HPE_PAUSED_UPGRADE) {
		r->raw = true;
		return;
	}
	if (e != HPE_OK) {
		fprintf(stderr, "upstream bytes do not parse as requests: %s (%s)\n%.*s\n",
		        llhttp_errno_name(e), llhttp_get_error_reason(&r->parser), (int)len,
		        (const char *)p);
		abort();
	}
}

/* Plays <data> as a script of records through <step> (op taken modulo <n_ops>). */
static void pfx_play(const uint8_t *data, size_t size, unsigned n_ops,
                     void (*step)(unsigned op, uint8_t arg, const uint8_t *d, size_t len))
{
	while (size >= 3) {
		unsigned op = data[0] % n_ops;
		uint8_t arg = data[1];
		size_t len = WP_MIN((size_t)data[2], size - 3);
		uint8_t *copy = malloc(len ? len : 1);

		if (copy == NULL)
			abort();
		memcpy(copy, data + 3, len);
		step(op, arg, copy, len);
		free(copy);
		data += 3 + len;
		size -= 3 + len;
	}
}

#endif /* WP_TESTS_FUZZ_PROXY_FIXTURE_H */
