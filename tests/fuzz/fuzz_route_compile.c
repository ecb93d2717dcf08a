/*
 * libFuzzer driver for route compilation (cp/resolve/route_compile.c) and
 * the matcher that runs the result (lib/route.c). The input is manifest
 * text; its HTTPRoutes, VirtualServices and DestinationRules are compiled
 * into one route table for each Service the routes' parentRefs name (at
 * most four, plus default/reviews:9080; the VirtualServices whose hosts
 * name that Service go with it), against a fixed fake endpoint lookup: Services whose
 * name starts with "gone" do not exist, ports other than 80, 8080, 9080 do
 * not exist, the rest have 0-3 endpoints labelled version v1/v2/v3.
 * Checks, beyond memory safety, WP_ASSERT and leaks:
 *
 *   - the build succeeds (configuration problems are errors in the table,
 *     never a failed build); every error is "ORIGIN:LINE: ..." text;
 *   - the table is consistent: the last rule is the default one, every
 *     index (match -> rule, backend/mirror/default -> cluster) is in range or
 *     the documented "unresolved" value, total weights add up, mirror shares
 *     and retry codes are bounded, every cluster has a balancer;
 *   - matches are in Gateway API precedence (exact, then prefix longest
 *     first, then regex) in an HTTPRoute table, in rule order in a
 *     VirtualService one; VirtualServices set aside only beside an HTTPRoute;
 *   - every exact or prefix match without regexes is reachable: a request
 *     built from it (its path, method, exact headers and query) selects that
 *     match or one before it, and the decision points into the table;
 *   - rewrites and redirects for those requests stay inside their buffers,
 *     and a redirect is one well-formed response head.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "route_compile.h"
#include "wp/addr.h"
#include "wp/counters.h"
#include "wp/model.h"
#include "wp/snapshot_types.h"

#define ORIGIN     "fuzz.yaml"
#define MAX_OBJS   64
#define MAX_TABLES 5

struct objs {
	uint32_t n_routes, n_drs, n_vs, n_all;
	const struct wp_obj *routes[MAX_OBJS];
	const struct wp_obj *drs[MAX_OBJS];
	const struct wp_obj *vs[MAX_OBJS];
	struct wp_obj *all[3 * MAX_OBJS];
};

static int on_obj(void *ctx, struct wp_obj *o)
{
	struct objs *x = ctx;

	if (o->kind == WP_KIND_HTTPROUTE && x->n_routes < MAX_OBJS)
		x->routes[x->n_routes++] = o;
	else if (o->kind == WP_KIND_DESTINATIONRULE && x->n_drs < MAX_OBJS)
		x->drs[x->n_drs++] = o;
	else if (o->kind == WP_KIND_VIRTUALSERVICE && x->n_vs < MAX_OBJS)
		x->vs[x->n_vs++] = o;
	else {
		wp_obj_free(o);
		return 0;
	}
	x->all[x->n_all++] = o;
	return 0;
}

/* ---- the fake endpoint lookup ------------------------------------------------ */

static const struct wp_kv version_kv[3] = {
        {"version", "v1"},
        {"version", "v2"},
        {"version", "v3"},
};
static const struct wp_labels version_labels[3] = {
        {1, &version_kv[0]},
        {1, &version_kv[1]},
        {1, &version_kv[2]},
};
static const struct wp_labels *const eps_labels[3] = {
        &version_labels[0],
        &version_labels[1],
        &version_labels[2],
};
static struct wp_snap_endpoint eps[3];

static int lookup(void *ctx, const char *ns, const char *name, uint16_t port, struct wp_arena *a,
                  struct wp_route_svc_eps *out)
{
	uint32_t h = 0;

	(void)ctx;
	(void)a;
	if (!strncmp(name, "gone", 4))
		return -ENOENT;
	if (port != 80 && port != 8080 && port != 9080)
		return -ESRCH;
	for (const char *p = name; *p; p++)
		h = h * 31 + (unsigned char)*p;
	out->port_name = port == 9080 ? "http" : "";
	out->n = h % 4;
	out->eps = eps;
	out->labels = eps_labels;
	(void)ns;
	return 0;
}

/* ---- table checks -------------------------------------------------------- */

/* Text that goes into a message head: no CR, LF or NUL in its length. */
static bool head_safe(const char *s, size_t len)
{
	return s != NULL && memchr(s, '\0', len) == NULL && memchr(s, '\r', len) == NULL &&
	       memchr(s, '\n', len) == NULL;
}

static void check_mods(const struct wp_http_hdr_mods *m)
{
	const struct {
		const struct wp_http_hdr *h;
		uint16_t n;
	} lists[] = {{m->set, m->n_set}, {m->add, m->n_add}, {m->remove, m->n_remove}};

	for (size_t l = 0; l < WP_ARRAY_SIZE(lists); l++)
		for (uint16_t i = 0; i < lists[l].n; i++) {
			const struct wp_http_hdr *h = &lists[l].h[i];

			if (h->name_len == 0 || !head_safe(h->name, h->name_len) ||
			    memchr(h->name, ':', h->name_len) || memchr(h->name, ' ', h->name_len))
				abort();
			if (l < 2 && !head_safe(h->value, h->value_len))
				abort();
		}
}

static void check_table(const struct wp_route_table *t)
{
	const struct wp_route_rule *last;

	if (t->n_rules < 1)
		abort();
	last = &t->rules[t->n_rules - 1];
	if (!(last->flags & WP_ROUTE_F_DEFAULT) || last->n_backends != 1 ||
	    last->backends[0].cluster != t->default_cluster)
		abort();
	if (t->default_cluster >= t->n_clusters && t->default_cluster != UINT32_MAX)
		abort();
	for (uint32_t i = 0; i < t->n_errors; i++)
		if (strncmp(t->errors[i], ORIGIN ":", sizeof(ORIGIN)) != 0)
			abort();
	for (uint32_t i = 0; i < t->n_rules; i++) {
		const struct wp_route_rule *r = &t->rules[i];
		uint64_t sum = 0;

		if (i + 1 < t->n_rules && (r->flags & WP_ROUTE_F_DEFAULT))
			abort();
		for (uint16_t k = 0; k < r->n_backends; k++) {
			if (r->backends[k].cluster >= t->n_clusters &&
			    r->backends[k].cluster != UINT32_MAX)
				abort();
			sum += r->backends[k].weight;
		}
		if (sum != r->total_weight)
			abort();
		for (uint16_t k = 0; k < r->n_mirrors; k++)
			if ((r->mirrors[k].cluster >= t->n_clusters &&
			     r->mirrors[k].cluster != UINT32_MAX) ||
			    r->mirrors[k].per_million > 1000000)
				abort();
		if (r->retry.n_codes > WP_ROUTE_RETRY_MAX_CODES)
			abort();
		check_mods(&r->req_mods);
		check_mods(&r->resp_mods);
		if ((r->redirect.scheme &&
		     !head_safe(r->redirect.scheme, strlen(r->redirect.scheme))) ||
		    (r->redirect.hostname &&
		     !head_safe(r->redirect.hostname, strlen(r->redirect.hostname))) ||
		    (r->redirect.path.value &&
		     !head_safe(r->redirect.path.value, r->redirect.path.value_len)) ||
		    (r->rewrite.value && !head_safe(r->rewrite.value, r->rewrite.value_len)))
			abort();
		if ((r->flags & WP_ROUTE_F_REDIRECT) && r->redirect.status != 301 &&
		    r->redirect.status != 302 && r->redirect.status != 303 &&
		    r->redirect.status != 307 && r->redirect.status != 308)
			abort();
	}
	for (uint32_t i = 0; i < t->n_clusters; i++)
		if (t->clusters[i].lb == NULL || t->clusters[i].name == NULL ||
		    t->clusters[i].n_endpoints > 3)
			abort();
	if (t->n_regex > WP_ROUTE_MAX_REGEX || t->source > WP_ROUTE_SRC_VIRTUALSERVICE ||
	    (t->n_vs_conflicts && t->source != WP_ROUTE_SRC_HTTPROUTE))
		abort();
	for (uint16_t i = 0; i < t->n_fields; i++)
		if (t->fields[i].db == NULL)
			abort();
	for (uint32_t i = 0; i < t->n_matches; i++) {
		const struct wp_route_match *m = &t->matches[i];
		static const int rank[] = {[WP_ROUTE_PATH_EXACT] = 3,
		                           [WP_ROUTE_PATH_PREFIX] = 2,
		                           [WP_ROUTE_PATH_REGEX] = 1};

		if (m->rule >= t->n_rules - 1 || m->path_type > WP_ROUTE_PATH_REGEX)
			abort();
		if (i > 0 && t->source == WP_ROUTE_SRC_VIRTUALSERVICE) {
			if (t->matches[i - 1].rule > m->rule)
				abort();
		} else if (i > 0) {
			const struct wp_route_match *p = &t->matches[i - 1];

			if (rank[p->path_type] < rank[m->path_type] ||
			    (p->path_type == m->path_type && p->path_len < m->path_len))
				abort();
		}
	}
}

/* ---- requests built from the matches ------------------------------------------ */

static bool plain_text(const char *s, uint32_t n, const char *bad)
{
	for (uint32_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e || strchr(bad, s[i]))
			return false;
	return true;
}

static void check_decision(const struct wp_route_table *t, const struct wp_route_decision *d)
{
	if (d->rule < t->rules || d->rule >= t->rules + t->n_rules)
		abort();
	if (d->match && (d->match < t->matches || d->match >= t->matches + t->n_matches ||
	                 d->rule != &t->rules[d->match->rule]))
		abort();
	if (d->cluster && (d->cluster < t->clusters || d->cluster >= t->clusters + t->n_clusters))
		abort();
	if (d->status == 0 ? d->cluster == NULL
	                   : d->status != 500 && !(d->rule->flags & WP_ROUTE_F_REDIRECT))
		abort();
	if (d->n_mirrors > WP_ROUTE_MAX_MIRRORS)
		abort();
	for (uint16_t i = 0; i < d->n_mirrors; i++)
		if (d->mirrors[i] < t->clusters || d->mirrors[i] >= t->clusters + t->n_clusters)
			abort();
}

static void reach(const struct wp_route_table *t, struct wp_route_core *core, uint32_t k)
{
	const struct wp_route_match *m = &t->matches[k];
	struct wp_http_hdr hdrs[32];
	struct wp_route_decision d;
	struct wp_route_req req = {0};
	char target[2048], out[1024];
	size_t tl = 0;
	int rc;

	if (m->path_type == WP_ROUTE_PATH_REGEX || m->n_headers > WP_ARRAY_SIZE(hdrs) ||
	    !plain_text(m->path, m->path_len, "?#") || m->path_len + 2 > sizeof(target))
		return;
	if (m->path_len == 0) {
		target[tl++] = '/';
	} else {
		memcpy(target, m->path, m->path_len);
		tl = m->path_len;
	}
	req.path_len = (uint32_t)tl;
	for (uint16_t i = 0; i < m->n_query; i++) {
		const struct wp_route_kv *q = &m->query[i];

		if (q->type != WP_ROUTE_STR_EXACT || !plain_text(q->name, q->name_len, "&=#%+") ||
		    !plain_text(q->value, q->value_len, "&=#%+") ||
		    tl + q->name_len + q->value_len + 2 > sizeof(target))
			return;
		target[tl++] = i ? '&' : '?';
		memcpy(target + tl, q->name, q->name_len);
		tl += q->name_len;
		target[tl++] = '=';
		memcpy(target + tl, q->value, q->value_len);
		tl += q->value_len;
	}
	for (uint16_t i = 0; i < m->n_headers; i++) {
		const struct wp_route_kv *h = &m->headers[i];

		if (h->type != WP_ROUTE_STR_EXACT)
			return;
		hdrs[i] = (struct wp_http_hdr){.name = h->name,
		                               .name_len = h->name_len,
		                               .value = h->value,
		                               .value_len = h->value_len};
	}
	req.target = target;
	req.target_len = (uint32_t)tl;
	req.method = m->has_method ? m->method : 1 /* GET */;
	req.hdrs = hdrs;
	req.n_hdrs = m->n_headers;
	rc = wp_route_select(t, core, &req, &d);
	if (rc != 0 || d.match == NULL || d.match > m)
		abort();
	check_decision(t, &d);
	rc = wp_route_rewrite_target(&d, &req, out, sizeof(out));
	if (rc < -ENOSPC || (rc < 0 && rc != -ENOSPC) || rc > (int)sizeof(out))
		abort();
	rc = wp_route_write_redirect(&d, &req, true, out, sizeof(out));
	if (d.rule->flags & WP_ROUTE_F_REDIRECT) {
		if (rc == -ENOSPC)
			return;
		/* one head: the only blank line is its end, no bare CR or LF */
		if (rc < 21 || rc > (int)sizeof(out) || memcmp(out, "HTTP/1.1 3", 10) != 0 ||
		    memmem(out, (size_t)rc, "\r\n\r\n", 4) != out + rc - 4)
			abort();
		for (int i = 0; i < rc; i++)
			if ((out[i] == '\r') != (i + 1 < rc && out[i + 1] == '\n') ||
			    (out[i] == '\n' && (i == 0 || out[i - 1] != '\r')))
				abort();
	} else if (rc != -EINVAL) {
		abort();
	}
	if (d.cluster) {
		uint64_t hash;

		(void)wp_route_cluster_hash(d.cluster, &req, &hash);
	}
}

/* ---- the driver -------------------------------------------------------------- */

static void add_target(struct wp_route_compile_in *ins, unsigned *n, const char *ns,
                       const char *name, uint16_t port)
{
	for (unsigned i = 0; i < *n; i++)
		if (!strcmp(ins[i].ns, ns) && !strcmp(ins[i].name, name) && ins[i].port == port)
			return;
	if (*n < MAX_TABLES)
		ins[(*n)++] =
		        (struct wp_route_compile_in){.ns = ns,
		                                     .name = name,
		                                     .port = port,
		                                     .port_name = port == 9080 ? "http" : NULL};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t ctr[WP_CTR_MAX];
	struct wp_route_compile_in ins[MAX_TABLES];
	struct objs x = {0};
	unsigned n_ins = 0;
	char *text;

	if (size > 32768)
		return 0;
	if (!eps[0].ns) {
		for (int i = 0; i < 3; i++) {
			eps[i].addr = wp_addr_v4(htonl(0x0a000001 + (uint32_t)i));
			eps[i].port = 9080;
			eps[i].ready = true;
			eps[i].ns = "default";
		}
	}
	text = malloc(size ? size : 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	(void)wp_model_parse(text, size, ORIGIN, on_obj, NULL, &x);
	free(text);

	add_target(ins, &n_ins, "default", "reviews", 9080);
	for (uint32_t i = 0; i < x.n_routes; i++)
		for (uint32_t j = 0; j < x.routes[i]->u.route.n_parents; j++) {
			const struct wp_parent_ref *p = &x.routes[i]->u.route.parents[j];

			if (p->kind && !strcmp(p->kind, "Service"))
				add_target(ins, &n_ins, p->ns, p->name, p->port ? p->port : 9080);
		}
	for (unsigned i = 0; i < n_ins; i++) {
		const struct wp_obj *vs[MAX_OBJS];
		struct wp_route_core core;
		struct wp_route_table *t;
		uint32_t n_vs = 0;

		for (uint32_t k = 0; k < x.n_vs; k++)
			if (wp_route_vs_binds(x.vs[k], ins[i].ns, ins[i].name, NULL))
				vs[n_vs++] = x.vs[k];
		ins[i].n_routes = x.n_routes;
		ins[i].routes = x.routes;
		ins[i].n_drs = x.n_drs;
		ins[i].drs = x.drs;
		ins[i].n_vs = n_vs;
		ins[i].vs = vs;
		ins[i].lookup = lookup;
		t = wp_route_table_build(&ins[i]);
		if (t == NULL)
			abort(); /* only ENOMEM may fail a build */
		check_table(t);
		wp_route_core_init(&core, 1 + i, ctr);
		if (wp_route_core_reserve(&core, t) != 0)
			abort();
		for (uint32_t k = 0; k < t->n_matches; k++)
			reach(t, &core, k);
		wp_route_core_fini(&core);
		wp_route_table_free(t);
	}
	for (uint32_t i = 0; i < x.n_all; i++)
		wp_obj_free(x.all[i]);
	return 0;
}
