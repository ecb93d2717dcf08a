/*
 * Route compilation (see route_compile.h and wp/route.h), its driver.
 *
 * One pass per attached HTTPRoute rule (httproute_compile.c), or, when no
 * HTTPRoute binds the port, per VirtualService http rule (vs_compile.c,
 * whose matches keep their order): its matches,
 * filters, backendRefs, timeouts and retry are parsed from the spec node
 * tree into arena memory; regexes are test-compiled with Hyperscan one by
 * one so that a pattern Hyperscan refuses rejects only its rule. An
 * accepted rule commits its matches (with their precedence keys) and
 * regexes. Then the matches are sorted by Gateway API precedence (here),
 * the regexes of each request field are compiled into one database, and
 * every (service, port, subset) a rule or the default route reaches
 * becomes a cluster with its own wp_lb_table built from the best
 * DestinationRule for its host (dr_compile.c). route_compile_int.h lists
 * the pieces.
 *
 * Regexes follow Envoy's safe_regex semantics (the whole value must match):
 * a pattern p is compiled as ^(?:p)$ with Hyperscan (PCRE syntax, which
 * agrees with RE2 on the usual constructs; back-references and look-around
 * are refused by Hyperscan and reject the rule).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route_compile_int.h"

/* ---- errors ---------------------------------------------------------------- */

/* Records "ORIGIN:LINE: KIND NS/NAME: FIELD: problem" (deduplicated). */
void wp_route_cerr(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *at,
                   const char *field, const char *fmt, ...)
{
	char buf[WP_MODEL_ERRLEN];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "%s:%u: %s %s/%s: %s: ", o->origin ? o->origin : "?",
	             at ? at->line : o->line, wp_kind_name(o->kind), o->meta.ns, o->meta.name,
	             field);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	for (uint32_t i = 0; i < c->n_err; i++)
		if (!strcmp(c->errv[i], buf))
			return;
	if (!GROW(c, c->errv, c->n_err, c->cap_err))
		return;
	c->errv[c->n_err] = strdup(buf);
	if (!c->errv[c->n_err]) {
		c->oom = true;
		return;
	}
	c->n_err++;
}

int wp_route_parse_duration(const char *s, uint32_t *ms)
{
	uint64_t total = 0;
	int parts = 0;

	if (!s || !*s)
		return -EINVAL;
	while (*s) {
		uint64_t v = 0, mul;
		int digits = 0;

		while (*s >= '0' && *s <= '9' && digits < 6) {
			v = v * 10 + (uint64_t)(*s++ - '0');
			digits++;
		}
		if (!digits || digits > 5)
			return -EINVAL;
		if (s[0] == 'm' && s[1] == 's') {
			mul = 1;
			s += 2;
		} else if (*s == 'h') {
			mul = 3600000;
			s++;
		} else if (*s == 'm') {
			mul = 60000;
			s++;
		} else if (*s == 's') {
			mul = 1000;
			s++;
		} else {
			return -EINVAL;
		}
		total += v * mul;
		if (++parts > 4)
			return -EINVAL;
	}
	if (total > UINT32_MAX)
		return -EINVAL;
	*ms = (uint32_t)total;
	return 0;
}

/* ---- precedence ------------------------------------------------------------ */

static int rank(const struct wp_route_match *m)
{
	switch (m->path_type) {
	case WP_ROUTE_PATH_EXACT:
		return 3;
	case WP_ROUTE_PATH_PREFIX:
		return 2;
	default:
		return 1;
	}
}

/* Gateway API precedence; regexes rank below prefixes (implementation-
 * specific; Istio's order: exact, prefix, regex, each longest first). */
static int tm_cmp(const void *pa, const void *pb)
{
	const struct tmatch *a = pa, *b = pb;
	int64_t ta, tb;
	int c;

	if (rank(a->m) != rank(b->m))
		return rank(b->m) - rank(a->m);
	if (a->m->path_len != b->m->path_len)
		return a->m->path_len > b->m->path_len ? -1 : 1;
	if (a->m->has_method != b->m->has_method)
		return a->m->has_method ? -1 : 1;
	if (a->m->n_headers != b->m->n_headers)
		return a->m->n_headers > b->m->n_headers ? -1 : 1;
	if (a->m->n_query != b->m->n_query)
		return a->m->n_query > b->m->n_query ? -1 : 1;
	if (a->route != b->route) {
		ta = a->route->meta.created ? a->route->meta.created : INT64_MAX;
		tb = b->route->meta.created ? b->route->meta.created : INT64_MAX;
		if (ta != tb)
			return ta < tb ? -1 : 1;
		c = strcmp(a->route->meta.ns, b->route->meta.ns);
		if (c)
			return c;
		c = strcmp(a->route->meta.name, b->route->meta.name);
		if (c)
			return c;
	}
	if (a->rule_idx != b->rule_idx)
		return a->rule_idx < b->rule_idx ? -1 : 1;
	return a->match_idx < b->match_idx ? -1 : a->match_idx > b->match_idx;
}

/* ---- assembly -------------------------------------------------------------- */

bool wp_route_attaches(const struct wp_obj *route, const char *ns, const char *name)
{
	if (route->kind != WP_KIND_HTTPROUTE)
		return false;
	for (uint32_t i = 0; i < route->u.route.n_parents; i++) {
		const struct wp_parent_ref *p = &route->u.route.parents[i];

		if (p->kind && !strcmp(p->kind, "Service") &&
		    (!p->group || !p->group[0] || !strcmp(p->group, "core")) &&
		    !strcmp(p->ns ? p->ns : route->meta.ns, ns) && !strcmp(p->name, name))
			return true;
	}
	return false;
}

/* Producer routes only (same namespace as the Service), on this port. */
static bool attaches_port(const struct wp_obj *route, const struct wp_route_compile_in *in)
{
	if (strcmp(route->meta.ns, in->ns))
		return false;
	for (uint32_t i = 0; i < route->u.route.n_parents; i++) {
		const struct wp_parent_ref *p = &route->u.route.parents[i];

		if (p->kind && !strcmp(p->kind, "Service") &&
		    (!p->group || !p->group[0] || !strcmp(p->group, "core")) &&
		    !strcmp(p->ns ? p->ns : route->meta.ns, in->ns) && !strcmp(p->name, in->name) &&
		    (!p->port || p->port == in->port) &&
		    (!p->section_name ||
		     (in->port_name && !strcmp(p->section_name, in->port_name))))
			return true;
	}
	return false;
}

static void cctx_free(struct cctx *c)
{
	for (uint32_t i = 0; i < c->n_err; i++)
		free(c->errv[i]);
	free(c->errv);
	free(c->cl);
	free(c->rules);
	free(c->m);
	free(c->re);
	free(c->pend);
	free(c->mpend);
	free(c->f);
}

/* Oldest first (creation time, then namespace/name): the order Istio uses
 * to join the VirtualServices of one host. */
static int vs_cmp(const void *pa, const void *pb)
{
	const struct wp_obj *a = *(const struct wp_obj *const *)pa,
	                    *b = *(const struct wp_obj *const *)pb;
	int64_t ta = a->meta.created ? a->meta.created : INT64_MAX;
	int64_t tb = b->meta.created ? b->meta.created : INT64_MAX;
	int d;

	if (ta != tb)
		return ta < tb ? -1 : 1;
	d = strcmp(a->meta.ns, b->meta.ns);
	return d ? d : strcmp(a->meta.name, b->meta.name);
}

/* The VirtualServices binding the Service: set aside (reported, counted)
 * when HTTPRoute <hr> binds this port, else compiled in order. */
static void compile_vs(struct cctx *c, const struct wp_obj *hr)
{
	const struct wp_route_compile_in *in = c->in;
	const struct wp_obj **v = malloc(sizeof(*v) * in->n_vs);

	if (!v) {
		c->oom = true;
		return;
	}
	memcpy(v, in->vs, sizeof(*v) * in->n_vs);
	qsort(v, in->n_vs, sizeof(*v), vs_cmp);
	for (uint32_t i = 0; i < in->n_vs && !c->oom; i++) {
		if (hr) {
			wp_route_cerr(c, v[i], NULL, "spec.hosts",
			              "not applied to Service %s/%s port %u: HTTPRoute %s/%s binds "
			              "it and wins",
			              in->ns, in->name, in->port, hr->meta.ns, hr->meta.name);
			c->t->n_vs_conflicts++;
			continue;
		}
		c->t->source = WP_ROUTE_SRC_VIRTUALSERVICE;
		wp_route_vs_compile(c, v[i]);
	}
	free(v);
}

struct wp_route_table *wp_route_table_build(const struct wp_route_compile_in *in)
{
	struct cctx c = {.in = in};
	struct wp_route_table *t;
	const struct wp_obj *hr = NULL; /* an HTTPRoute binding the port */
	const char *why = NULL;
	uint32_t dflt;

	if (!in || !in->ns || !in->name || !in->port || !in->lookup) {
		errno = EINVAL;
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		errno = ENOMEM;
		return NULL;
	}
	wp_arena_init(&t->arena, 4096);
	c.t = t;
	c.a = &t->arena;
	c.domain = in->cluster_domain ? in->cluster_domain : "cluster.local";
	dflt = wp_route_cluster_get(&c, in->ns, in->name, in->port, NULL, &why);
	for (uint32_t i = 0; i < in->n_routes && !c.oom; i++) {
		const struct wp_obj *o = in->routes[i];
		const struct wp_ynode *rules = o->spec ? nget(o->spec, "rules") : NULL;
		uint32_t ri = 0;

		if (!attaches_port(o, in))
			continue;
		if (!hr)
			hr = o;
		t->source = WP_ROUTE_SRC_HTTPROUTE;
		if (!rules) {
			/* Gateway API defaults rules to one catch-all rule to the parent;
			 * without backendRefs that rule answers 500 */
			static const struct wp_ynode empty = {.type = WP_YNODE_MAP};

			wp_route_parse_rule(&c, o, &empty, 0);
			continue;
		}
		if (rules->type != WP_YNODE_SEQ) {
			wp_route_cerr(&c, o, rules, "spec.rules", "expected a list");
			continue;
		}
		for (const struct wp_ynode *rn = rules->child; rn && !c.oom; rn = rn->next, ri++)
			wp_route_parse_rule(&c, o, rn, ri);
	}
	if (in->n_vs && !c.oom)
		compile_vs(&c, hr);
	if (c.oom)
		goto fail;
	if (!wp_route_build_regex(&c)) {
		if (c.oom)
			goto fail;
		wp_route_cerr(&c,
		              t->source == WP_ROUTE_SRC_VIRTUALSERVICE ? in->vs[0] : in->routes[0],
		              NULL, "spec.rules",
		              "more than %d regular expressions on one service; routes with "
		              "regexes dropped",
		              WP_ROUTE_MAX_REGEX);
	}
	/* the default rule: everything to the service itself */
	if (!GROW(&c, c.rules, c.n_rules, c.cap_rules))
		goto fail;
	{
		struct wp_route_rule *d = &c.rules[c.n_rules++];
		struct wp_route_backend *be = aalloc(&c, sizeof(*be));

		memset(d, 0, sizeof(*d));
		if (!be)
			goto fail;
		d->route_ns = "";
		d->route_name = "";
		d->flags = WP_ROUTE_F_DEFAULT;
		be->cluster = dflt;
		be->weight = 1;
		d->backends = be;
		d->n_backends = 1;
		d->total_weight = 1;
		wp_route_retry_default(&d->retry);
	}
	if (c.n_m && t->source == WP_ROUTE_SRC_HTTPROUTE)
		qsort(c.m, c.n_m, sizeof(*c.m), tm_cmp);
	{
		struct wp_route_match *m = aalloc(&c, sizeof(*m) * (c.n_m + 1));
		struct wp_route_rule *r = aalloc(&c, sizeof(*r) * c.n_rules);
		struct wp_route_cluster *cl = aalloc(&c, sizeof(*cl) * (c.n_cl + 1));
		const char **ev = aalloc(&c, sizeof(*ev) * (c.n_err + 1));
		uint32_t nm = 0;

		if (!m || !r || !cl || !ev)
			goto fail;
		for (uint32_t i = 0; i < c.n_m; i++) {
			const struct wp_route_match *x = c.m[i].m;
			bool has_re = x->path_type == WP_ROUTE_PATH_REGEX;

			for (uint16_t k = 0; k < x->n_headers; k++)
				has_re |= x->headers[k].type == WP_ROUTE_STR_REGEX;
			for (uint16_t k = 0; k < x->n_query; k++)
				has_re |= x->query[k].type == WP_ROUTE_STR_REGEX;
			if (has_re && !t->n_regex)
				continue; /* regexes dropped above */
			m[nm++] = *x;
		}
		memcpy(r, c.rules, sizeof(*r) * c.n_rules);
		if (c.n_cl)
			memcpy(cl, c.cl, sizeof(*cl) * c.n_cl);
		for (uint32_t i = 0; i < c.n_err; i++)
			ev[i] = astrdup(&c, c.errv[i]);
		if (c.oom)
			goto fail;
		t->matches = m;
		t->n_matches = nm;
		t->rules = r;
		t->n_rules = c.n_rules;
		t->clusters = cl;
		t->n_clusters = c.n_cl;
		t->default_cluster = dflt;
		t->errors = ev;
		t->n_errors = c.n_err;
		c.n_cl = 0; /* owned by the table now */
	}
	cctx_free(&c);
	return t;
fail:
	for (uint32_t i = 0; i < c.n_cl; i++)
		wp_lb_table_free(c.cl[i].lb);
	c.n_cl = 0;
	wp_route_table_free(t);
	cctx_free(&c);
	errno = ENOMEM;
	return NULL;
}

const struct wp_route_cluster *wp_route_cluster_find(const struct wp_route_table *t, const char *ns,
                                                     const char *name, uint16_t port,
                                                     const char *subset)
{
	for (uint32_t i = 0; i < t->n_clusters; i++) {
		const struct wp_route_cluster *k = &t->clusters[i];

		if (k->port == port && !strcmp(k->svc_ns, ns) && !strcmp(k->svc_name, name) &&
		    ((!k->subset && !subset) ||
		     (k->subset && subset && !strcmp(k->subset, subset))))
			return k;
	}
	return NULL;
}
