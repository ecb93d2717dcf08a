/*
 * Shared by the proxy tests (test_h1proxy.c, test_h2proxy.c): route tables
 * compiled from HTTPRoute YAML by the real compiler
 * (cp/resolve/route_compile.c) over fake Services in namespace "default".
 * The including test sets fx_svcs / fx_n_svcs (its services: name,
 * endpoint count, and <net> for endpoints 10.0.<net>.<i+1>:9081) and
 * fx_port_name before building, and calls fx_free_objs() in teardown.
 */
#ifndef WP_TESTS_L7_ROUTE_FIXTURE_H
#define WP_TESTS_L7_ROUTE_FIXTURE_H

#include "route_compile.h"
#include "wp/model.h"
#include "wp/route.h"
#include "wp/snapshot_types.h"

struct fx_svc {
	const char *name;
	uint32_t n;
	uint8_t net; /* endpoints 10.0.<net>.<i+1>:9081 */
};

static const struct fx_svc *fx_svcs;
static size_t fx_n_svcs;
static const char *fx_port_name = "http";
/* The trafficPolicy of a DestinationRule for <svc> the next fx_build()
 * adds (NULL: none). */
static const char *fx_dr_tp;

static int fx_lookup(void *ctx, const char *ns, const char *name, uint16_t port, struct wp_arena *a,
                     struct wp_route_svc_eps *out)
{
	(void)ctx;
	for (size_t i = 0; i < fx_n_svcs; i++) {
		const struct fx_svc *f = &fx_svcs[i];
		struct wp_snap_endpoint *ep;
		const struct wp_labels **lab;

		if (strcmp(ns, "default") || strcmp(f->name, name))
			continue;
		if (port != 9080)
			return -ESRCH;
		ep = wp_arena_alloc(a, sizeof(*ep) * (f->n + 1));
		lab = wp_arena_alloc(a, sizeof(*lab) * (f->n + 1));
		assert_non_null(ep);
		assert_non_null(lab);
		for (uint32_t k = 0; k < f->n; k++) {
			memset(&ep[k], 0, sizeof(ep[k]));
			ep[k].addr.family = WP_AF_INET;
			ep[k].addr.v4 = __builtin_bswap32(0x0a000000u | (f->net << 8) | (k + 1));
			ep[k].port = 9081;
			ep[k].ready = true;
			ep[k].ns = "default";
			lab[k] = NULL;
		}
		out->port_name = fx_port_name;
		out->n = f->n;
		out->eps = ep;
		out->labels = lab;
		return 0;
	}
	return -ENOENT;
}

static struct {
	struct wp_obj *v[32];
	unsigned n;
} fx_objs;

static int fx_obj_cb(void *ctx, struct wp_obj *o)
{
	(void)ctx;
	assert_true(fx_objs.n < WP_ARRAY_SIZE(fx_objs.v));
	fx_objs.v[fx_objs.n++] = o;
	return 0;
}

static void fx_err_cb(void *ctx, const struct wp_model_error *e)
{
	(void)ctx;
	fail_msg("model error: %s", e->msg);
}

/* Frees the parsed HTTPRoute objects of the last fx_build(). */
static void fx_free_objs(void)
{
	for (unsigned i = 0; i < fx_objs.n; i++)
		wp_obj_free(fx_objs.v[i]);
	fx_objs.n = 0;
}

/* The table of <svc>:9080 with an HTTPRoute of <rules> (NULL: no route). */
WP_UNUSED static struct wp_route_table *fx_build(const char *svc, const char *rules)
{
	static char y[8192];
	const struct wp_obj *routes[32], *drs[1];
	struct wp_route_compile_in in = {
	        .ns = "default",
	        .name = svc,
	        .port = 9080,
	        .port_name = fx_port_name,
	        .routes = routes,
	        .drs = drs,
	        .lookup = fx_lookup,
	};
	struct wp_route_table *t;

	fx_free_objs();
	if (fx_dr_tp) {
		snprintf(
		        y, sizeof(y),
		        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n"
		        "  name: dr\n  namespace: default\nspec:\n  host: %s\n  trafficPolicy:\n%s",
		        svc, fx_dr_tp);
		assert_int_equal(
		        wp_model_parse(y, strlen(y), "dr.yaml", fx_obj_cb, fx_err_cb, NULL), 0);
		drs[in.n_drs++] = fx_objs.v[0];
	}
	if (rules) {
		snprintf(
		        y, sizeof(y),
		        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
		        "  name: r\n  namespace: default\nspec:\n  parentRefs:\n  - kind: Service\n"
		        "    group: \"\"\n    name: %s\n    port: 9080\n  rules:\n%s",
		        svc, rules);
		assert_int_equal(wp_model_parse(y, strlen(y), "r.yaml", fx_obj_cb, fx_err_cb, NULL),
		                 0);
		for (unsigned i = in.n_drs; i < fx_objs.n; i++)
			routes[in.n_routes++] = fx_objs.v[i];
	}
	t = wp_route_table_build(&in);
	assert_non_null(t);
	return t;
}

#endif /* WP_TESTS_L7_ROUTE_FIXTURE_H */
