/*
 * libFuzzer driver for authorization: arbitrary text goes through the model
 * parser (YAML or JSON manifests; AuthorizationPolicies are typed by
 * cp/model/authz_parse.c), every parsed policy set is compiled
 * (cp/resolve/authz_compile.c) for one target behind one waypoint, and a
 * few requests derived from the values the policies contain (wildcards
 * stripped, so that they hit) plus fixed ones are decided by the engine
 * (lib/authz.c) and by the reference evaluator
 * (tests/unit/dp/l7/authz_ref.c), HTTP and TCP. Any disagreement aborts
 * with both decisions. Seeds: corpus/authz.
 *   ./build-fuzz/tests/fuzz/fuzz_authz_compile -max_len=4096 tests/fuzz/corpus/authz
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/dp/l7/authz_ref.h"
#include "wp/addr.h"
#include "wp/model.h"

#define MAX_OBJS 32
#define MAX_VALS 16

struct objs {
	struct wp_obj *o[MAX_OBJS];
	uint32_t n;
};

static int take(void *ctx, struct wp_obj *o)
{
	struct objs *s = ctx;

	if (s->n == MAX_OBJS) {
		wp_obj_free(o);
		return 0;
	}
	s->o[s->n++] = o;
	return 0;
}

struct vals {
	char *v[MAX_VALS];
	uint32_t n;
};

static void add_val(struct vals *vs, const char *v)
{
	size_t n = strlen(v), k = 0;
	char *c;

	if (vs->n == MAX_VALS)
		return;
	c = malloc(n + 1);
	if (!c)
		abort();
	for (size_t i = 0; i < n; i++)
		if (v[i] != '*')
			c[k++] = v[i];
	c[k] = 0;
	vs->v[vs->n++] = c;
}

static void collect_cond(struct vals *vs, const struct wp_authz_cond *c)
{
	for (uint32_t i = 0; i < c->n_values; i++)
		add_val(vs, c->values[i]);
	for (uint32_t i = 0; i < c->n_not; i++)
		add_val(vs, c->not_values[i]);
}

static void collect(struct vals *vs, const struct objs *os)
{
	for (uint32_t i = 0; i < os->n; i++) {
		const struct wp_k8s_authz *a = &os->o[i]->u.authz;

		if (os->o[i]->kind != WP_KIND_AUTHORIZATIONPOLICY)
			continue;
		for (uint32_t r = 0; r < a->n_rules; r++) {
			const struct wp_authz_rule *ru = &a->rules[r];

			for (uint32_t k = 0; k < ru->n_from; k++)
				for (uint32_t c = 0; c < ru->from[k].n_conds; c++)
					collect_cond(vs, &ru->from[k].conds[c]);
			for (uint32_t k = 0; k < ru->n_to; k++)
				for (uint32_t c = 0; c < ru->to[k].n_conds; c++)
					collect_cond(vs, &ru->to[k].conds[c]);
			for (uint32_t c = 0; c < ru->n_when; c++)
				collect_cond(vs, &ru->when[c]);
		}
	}
}

struct hdr {
	const char *v;
};

/* Every header has the same value: the one the request was derived from. */
static const char *any_hdr(void *ctx, const char *name, uint32_t len, uint32_t *vl)
{
	const struct hdr *h = ctx;

	(void)name;
	(void)len;
	if (!h->v)
		return NULL;
	*vl = (uint32_t)strlen(h->v);
	return h->v;
}

static void set_str(const char **p, uint32_t *l, const char *v)
{
	*p = v;
	*l = v ? (uint32_t)strlen(v) : 0;
}

static void check(const struct wp_authz_table *t, struct wp_authz_scratch *sc,
                  const struct authz_ref *ref, const struct wp_authz_req *q)
{
	struct wp_authz_decision de, dr;

	wp_authz_eval(t, sc, q, &de);
	authz_ref_eval(ref, q, &dr);
	if (de.allowed != dr.allowed || de.audited != dr.audited || de.reason != dr.reason ||
	    de.rule != dr.rule || !!de.ns != !!dr.ns || (de.ns && strcmp(de.ns, dr.ns)) ||
	    (de.name && strcmp(de.name, dr.name))) {
		fprintf(stderr,
		        "engine: %d %d %s %s/%s %d; reference: %d %d %s %s/%s %d (http %d, "
		        "principal %.*s, host %.*s, path %.*s)\n",
		        de.allowed, de.audited, wp_authz_reason_name(de.reason),
		        de.ns ? de.ns : "-", de.name ? de.name : "-", de.rule, dr.allowed,
		        dr.audited, wp_authz_reason_name(dr.reason), dr.ns ? dr.ns : "-",
		        dr.name ? dr.name : "-", dr.rule, q->is_http, (int)q->principal_len,
		        q->principal ? q->principal : "", (int)q->host_len, q->host ? q->host : "",
		        (int)q->path_len, q->path ? q->path : "");
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const aliases[] = {"old-td"};
	struct objs os = {.n = 0};
	struct vals vs = {.n = 0};
	struct wp_authz_db_cache cache = {0};
	struct wp_authz_scratch sc = {0};
	struct wp_authz_compile_in in = {
	        .trust_domain = "cluster.local",
	        .n_aliases = 1,
	        .aliases = aliases,
	        .gw_ns = "default",
	        .gw_name = "waypoint",
	        .gw_class = "istio-waypoint",
	        .dest_kind = WP_AUTHZ_DEST_SERVICE,
	        .dest_ns = "default",
	        .dest_name = "svc",
	        .cache = &cache,
	};
	struct wp_authz_table *t;
	struct authz_ref ref;

	wp_model_parse((const char *)data, size, "fuzz.yaml", take, NULL, &os);
	in.policies = (const struct wp_obj *const *)os.o;
	in.n_policies = os.n;
	t = wp_authz_compile(&in);
	if (!t)
		abort(); /* only ENOMEM may fail a build */
	if (t->broken)
		goto out; /* Hyperscan refused a pattern set (huge input): denies all */
	if (wp_authz_scratch_reserve(&sc, t) || authz_ref_init(&ref, &in))
		abort();
	collect(&vs, &os);
	for (uint32_t k = 0; k < vs.n + 2; k++) {
		const char *v = k < vs.n ? vs.v[k] : NULL;
		const char *w = vs.n ? vs.v[(k + 1) % vs.n] : NULL;
		struct hdr h = {v};
		struct wp_authz_req q = {0};

		set_str(&q.principal, &q.principal_len,
		        k == vs.n ? "cluster.local/ns/default/sa/x" : v);
		set_str(&q.host, &q.host_len, v ? v : "svc.default");
		set_str(&q.method, &q.method_len, w ? w : "GET");
		set_str(&q.path, &q.path_len, v ? v : "/");
		set_str(&q.sni, &q.sni_len, w);
		if (!v || wp_addr_parse(v, &q.src_ip))
			wp_addr_parse("10.1.2.3", &q.src_ip);
		if (!w || wp_addr_parse(w, &q.dst_ip))
			wp_addr_parse("2001:db8::1", &q.dst_ip);
		q.remote_ip = q.src_ip;
		q.dst_port = (uint16_t)(v ? strtoul(v, NULL, 10) : 80);
		q.header = any_hdr;
		q.header_ctx = &h;
		q.is_http = true;
		check(t, &sc, &ref, &q);
		q.is_http = false;
		check(t, &sc, &ref, &q);
	}
	authz_ref_fini(&ref);
out:
	wp_authz_table_free(t);
	if (cache.n)
		abort(); /* a database outlived every table */
	wp_authz_scratch_fini(&sc);
	for (uint32_t i = 0; i < vs.n; i++)
		free(vs.v[i]);
	for (uint32_t i = 0; i < os.n; i++)
		wp_obj_free(os.o[i]);
	return 0;
}
