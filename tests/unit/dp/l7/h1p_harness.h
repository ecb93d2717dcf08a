/*
 * Shared by the HTTP/1.1 proxy session tests (test_h1proxy.c: the proxy's
 * own behaviour; test_h1proxy_pipeline.c: the request pipeline's stages as
 * the session runs them): the route fixture, a fake host that records the
 * upstream connections the proxy asks for, and byte-stream helpers.
 */
#ifndef WP_TESTS_L7_H1P_HARNESS_H
#define WP_TESTS_L7_H1P_HARNESS_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "h1proxy.h"
#include "wp/counters.h"
#include "wp/model.h"
#include "wp/route.h"
#include "wp/snapshot_types.h"

#include "route_fixture.h"

/* ---- route fixture ------------------------------------------------------------------------ */

static const struct fx_svc fsvcs[] = {{"reviews", 2, 1},
                                      {"reviews-v1", 1, 2},
                                      {"reviews-v2", 2, 3},
                                      {"reviews-v3", 1, 4},
                                      {"empty", 0, 5}};

/* An HTTPRoute on reviews:9080 with <rules>; NULL rules: no route at all. */
static struct wp_route_table *build(const char *rules)
{
	struct wp_route_table *t;

	fx_svcs = fsvcs;
	fx_n_svcs = WP_ARRAY_SIZE(fsvcs);
	fx_port_name = "http";
	t = fx_build("reviews", rules);
	assert_int_equal(t->n_errors, 0);
	return t;
}

static const char *std_rules =
        "  - matches: [{path: {type: PathPrefix, value: /v1}}]\n"
        "    backendRefs: [{name: reviews-v1, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /split}}]\n"
        "    backendRefs:\n    - {name: reviews-v1, port: 9080, weight: 80}\n"
        "    - {name: reviews-v2, port: 9080, weight: 20}\n"
        "  - matches: [{path: {type: PathPrefix, value: /go}}]\n"
        "    filters:\n    - type: RequestRedirect\n      requestRedirect:\n"
        "        hostname: other.example\n        statusCode: 301\n"
        "  - matches: [{path: {type: PathPrefix, value: /mods}}]\n"
        "    filters:\n    - type: RequestHeaderModifier\n      requestHeaderModifier:\n"
        "        set: [{name: X-Set, value: s}]\n"
        "    - type: ResponseHeaderModifier\n      responseHeaderModifier:\n"
        "        add: [{name: X-Resp, value: r}]\n"
        "    - type: URLRewrite\n      urlRewrite:\n"
        "        path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}\n"
        "    backendRefs: [{name: reviews-v3, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /r}}]\n"
        "    backendRefs: [{name: reviews, port: 9080}]\n";

/* ---- fake host ---------------------------------------------------------------------------- */

struct fup {
	struct wp_h1p_up *up;
	struct wp_snap_endpoint ep;
	bool closed;
};

static struct fup fups[4096];
static int n_open, n_close, fail_open, n_ready, n_wake, n_finish;
static uint64_t ctr[WP_CTR_MAX];
static struct wp_route_core rcore;
static struct wp_h1p_core *core;
static struct wp_route_table *tab;

static int f_open(void *host, struct wp_h1p_up *up, const struct wp_snap_endpoint *ep)
{
	(void)host;
	if (fail_open)
		return -ECONNREFUSED;
	assert_true(n_open < (int)WP_ARRAY_SIZE(fups));
	fups[n_open].up = up;
	fups[n_open].ep = *ep;
	fups[n_open].closed = false;
	up->io = &fups[n_open];
	n_open++;
	return 0;
}

static void f_close(void *host, struct wp_h1p_up *up)
{
	struct fup *f = up->io;

	(void)host;
	assert_non_null(f);
	assert_false(f->closed);
	f->closed = true;
	n_close++;
}

/* A graceful close: counted as a close too (every transport opened is closed). */
static void f_finish(void *host, struct wp_h1p_up *up)
{
	f_close(host, up);
	n_finish++;
}

static void f_ready(void *host, struct wp_h1p_up *up)
{
	(void)host;
	assert_non_null(up->mirror);
	n_ready++;
}

static void f_wake(void *host, struct wp_h1p_sess *s)
{
	(void)host;
	assert_non_null(s);
	n_wake++;
}

static const struct wp_h1p_ops ops = {.up_open = f_open,
                                      .up_close = f_close,
                                      .up_ready = f_ready,
                                      .wake = f_wake,
                                      .up_finish = f_finish};

static void mk_core(const struct wp_h1p_cfg *cfg, const char *rules)
{
	memset(ctr, 0, sizeof(ctr));
	n_open = n_close = fail_open = n_ready = n_wake = n_finish = 0;
	wp_route_core_init(&rcore, 7, ctr);
	tab = build(rules);
	assert_int_equal(wp_route_core_reserve(&rcore, tab), 0);
	core = wp_h1p_core_create(cfg ? cfg : &wp_h1p_default_cfg, &ops, NULL, &rcore, 99, ctr);
	assert_non_null(core);
}

static int teardown(void **state)
{
	(void)state;
	wp_h1p_core_destroy(core);
	core = NULL;
	assert_int_equal(n_open, n_close); /* every transport opened was closed */
	wp_route_table_free(tab);
	wp_route_core_fini(&rcore);
	fx_free_objs();
	return 0;
}

static struct wp_h1p_sess *sess_open(void)
{
	struct wp_h1p_sess *s = wp_h1p_sess_open(core, tab, NULL, "reviews:9080", 12);

	assert_non_null(s);
	return s;
}

/* Feeds all of <str> downstream; asserts it was all taken. */
static void down_all(struct wp_h1p_sess *s, const char *str)
{
	size_t n = strlen(str);

	assert_int_equal(wp_h1p_down_in(s, (const uint8_t *)str, n), n);
}

static void up_all(struct wp_h1p_up *up, const char *str)
{
	size_t n = strlen(str);

	assert_int_equal(wp_h1p_up_in(up, (const uint8_t *)str, n), n);
}

/* Drains the bytes for the client / upstream into a static string. */
static char *take_down(struct wp_h1p_sess *s)
{
	static char buf[1 << 16];
	const uint8_t *p;
	size_t n = wp_h1p_down_peek(s, &p);

	assert_true(n < sizeof(buf));
	if (n)
		memcpy(buf, p, n);
	buf[n] = '\0';
	wp_h1p_down_consume(s, n);
	return buf;
}

static char *take_up(struct wp_h1p_up *up)
{
	static char buf[1 << 16];
	const uint8_t *p;
	size_t n = wp_h1p_up_peek(up, &p);

	assert_true(n < sizeof(buf));
	if (n)
		memcpy(buf, p, n);
	buf[n] = '\0';
	wp_h1p_up_consume(up, n);
	return buf;
}

static inline uint32_t ep_host(const struct wp_h1p_up *up)
{
	return __builtin_bswap32(up->pe.addr.v4) & 0xffff;
}

#endif /* WP_TESTS_L7_H1P_HARNESS_H */
