/*
 * Reference authorization evaluator (see authz_ref.h). Deliberately naive:
 * every request walks every applied policy, rule, entry and value.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authz_ref.h"

static bool eq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* Does policy o attach to the target (Istio waypoint rules)? */
static bool applies(const struct wp_authz_compile_in *in, const struct wp_obj *o)
{
	const struct wp_k8s_authz *a = &o->u.authz;
	const char *root = in->root_ns ? in->root_ns : "istio-system";

	if (a->has_selector || a->dry_run)
		return false;
	for (uint32_t i = 0; i < a->n_target_refs; i++) {
		const struct wp_target_ref *t = &a->target_refs[i];
		const char *g = t->group ? t->group : "";
		bool gw_group = !strcmp(g, "gateway.networking.k8s.io");

		if (t->ns && strcmp(t->ns, o->meta.ns))
			continue;
		if (eq(t->kind, "Gateway") && gw_group && eq(t->name, in->gw_name) &&
		    eq(o->meta.ns, in->gw_ns))
			return true;
		if (eq(t->kind, "GatewayClass") && gw_group && eq(t->name, in->gw_class) &&
		    !strcmp(o->meta.ns, root))
			return true;
		if (eq(t->kind, "Service") && (!*g || !strcmp(g, "core")) &&
		    in->dest_kind == WP_AUTHZ_DEST_SERVICE && eq(t->name, in->dest_name) &&
		    eq(o->meta.ns, in->dest_ns))
			return true;
		if (eq(t->kind, "ServiceEntry") && !strcmp(g, "networking.istio.io") &&
		    in->dest_kind == WP_AUTHZ_DEST_SERVICEENTRY && eq(t->name, in->dest_name) &&
		    eq(o->meta.ns, in->dest_ns))
			return true;
	}
	return false;
}

static int by_name(const void *x, const void *y)
{
	const struct wp_obj *a = *(const struct wp_obj *const *)x;
	const struct wp_obj *b = *(const struct wp_obj *const *)y;
	int c = strcmp(a->meta.ns, b->meta.ns);

	return c ? c : strcmp(a->meta.name, b->meta.name);
}

int authz_ref_init(struct authz_ref *r, const struct wp_authz_compile_in *in)
{
	r->in = in;
	r->n = 0;
	r->applied = malloc(sizeof(*r->applied) * (in->n_policies + 1));
	if (!r->applied)
		return -ENOMEM;
	for (uint32_t i = 0; i < in->n_policies; i++)
		if (in->policies[i]->kind == WP_KIND_AUTHORIZATIONPOLICY &&
		    applies(in, in->policies[i]))
			r->applied[r->n++] = in->policies[i];
	qsort(r->applied, r->n, sizeof(*r->applied), by_name);
	return 0;
}

void authz_ref_fini(struct authz_ref *r)
{
	free(r->applied);
	r->applied = NULL;
}

/* ---- string forms --------------------------------------------------------- */

/* Istio's value forms on a present string s[0..n): "*" (non-empty), "x*",
 * "*x", exact. */
static bool str_form(const char *v, const char *s, size_t n, bool caseless)
{
	size_t vl = strlen(v);
	int (*cmp)(const char *, const char *, size_t) = caseless ? strncasecmp : strncmp;

	if (!strcmp(v, "*"))
		return n > 0;
	if (v[vl - 1] == '*')
		return n >= vl - 1 && !cmp(s, v, vl - 1);
	if (v[0] == '*')
		return n >= vl - 1 && !cmp(s + n - (vl - 1), v + 1, vl - 1);
	return n == vl && !cmp(s, v, n);
}

/* Glob with '*' = any sequence, over s[0..n). */
static bool glob(const char *p, const char *s, size_t n)
{
	if (!*p)
		return n == 0;
	if (*p == '*') {
		for (size_t k = 0; k <= n; k++)
			if (glob(p + 1, s + k, n - k))
				return true;
		return false;
	}
	return n && *p == *s && glob(p + 1, s + 1, n - 1);
}

/* ".*\/ns/<v>/.*" over the principal, '*' in v being ".*". */
static bool ns_match(const char *v, const char *s, size_t n)
{
	size_t l = strlen(v) + 8;
	char *pat = malloc(l);
	bool m;

	snprintf(pat, l, "*/ns/%s/*", v);
	m = glob(pat, s, n);
	free(pat);
	return m;
}

/* "sa/<sa>" then nothing or "/" and at least one byte. */
static bool sa_tail(const char *r, size_t n, const char *sa)
{
	size_t l = strlen(sa);

	if (n < 3 + l || memcmp(r, "sa/", 3) || memcmp(r + 3, sa, l))
		return false;
	return n == 3 + l || (r[3 + l] == '/' && n > 4 + l);
}

/* ".+/ns/<ns>/(.+/|)sa/<sa>(/.+)?" over the principal. */
static bool sa_match(const char *v, const char *policy_ns, const char *s, size_t n)
{
	const char *sl = strchr(v, '/'), *sa = sl ? sl + 1 : v;
	int nl = sl ? (int)(sl - v) : (int)strlen(policy_ns);
	size_t cap = (size_t)nl + 8, pl;
	char *pre = malloc(cap);
	bool m = false;

	pl = (size_t)snprintf(pre, cap, "/ns/%.*s/", nl, sl ? v : policy_ns);
	for (size_t i = 1; i + pl <= n && !m; i++) {
		const char *r = s + i + pl;
		size_t rn = n - i - pl;

		if (memcmp(s + i, pre, pl))
			continue;
		m = sa_tail(r, rn, sa);
		for (size_t j = 1; j < rn && !m; j++)
			m = r[j] == '/' && sa_tail(r + j + 1, rn - j - 1, sa);
	}
	free(pre);
	return m;
}

/* Istio's trust-domain migration, evaluated at match time: does principal
 * value v, under the bundle (local trust domain and aliases), match s? */
static bool wildcard_td(const char *a, const char *p)
{
	size_t pl = strlen(p), al = strlen(a);

	if (pl && p[pl - 1] == '*' && !strncmp(a, p, pl - 1))
		return true;
	return p[0] == '*' && al >= pl - 1 && !strcmp(a + al - (pl - 1), p + 1);
}

static bool principal_match(const struct wp_authz_compile_in *in, const char *v, const char *s,
                            size_t n)
{
	const char *bundle[9];
	uint32_t nb = 0;
	const char *rest = strchr(v, '/');
	char td[256], *alt;
	int slashes = 0;
	bool listed = false, m = false;

	for (const char *p = v; *p; p++)
		slashes += *p == '/';
	if (slashes != 4 || !strncmp(v, "*/", 2) || (size_t)(rest - v) >= sizeof(td))
		return str_form(v, s, n, false);
	snprintf(td, sizeof(td), "%.*s", (int)(rest - v), v);
	bundle[nb++] = in->trust_domain ? in->trust_domain : "cluster.local";
	for (uint32_t i = 0; i < in->n_aliases && nb < 9; i++)
		bundle[nb++] = in->aliases[i];
	for (uint32_t i = 0; i < nb; i++)
		if (!strcmp(bundle[i], td) || !strcmp(bundle[i], "*") ||
		    wildcard_td(td, bundle[i]) || wildcard_td(bundle[i], td))
			listed = true;
	if (!listed && strcmp(td, "cluster.local"))
		return str_form(v, s, n, false);
	for (uint32_t i = 0; i < nb && !m; i++) {
		bool keep = td[0] == '*' && strlen(bundle[i]) >= strlen(td) - 1 &&
		            !strcmp(bundle[i] + strlen(bundle[i]) - (strlen(td) - 1), td + 1);
		size_t cap = strlen(bundle[i]) + strlen(v) + 2;
		char small[256];

		alt = cap <= sizeof(small) ? small : malloc(cap);
		snprintf(alt, cap, "%s%s", keep ? td : bundle[i], rest);
		m = str_form(alt, s, n, false);
		if (alt != small)
			free(alt);
	}
	return m;
}

static bool in_cidr(const struct wp_authz_cidr *c, const struct wp_addr *a)
{
	const uint8_t *x, *y;

	if (c->addr.family != a->family || !a->family)
		return false;
	x = c->addr.family == WP_AF_INET ? (const uint8_t *)&c->addr.v4 : c->addr.v6;
	y = a->family == WP_AF_INET ? (const uint8_t *)&a->v4 : a->v6;
	for (unsigned bit = 0; bit < c->len; bit++)
		if (((x[bit / 8] ^ y[bit / 8]) >> (7 - bit % 8)) & 1)
			return false;
	return true;
}

/* ---- conditions -------------------------------------------------------------- */

static bool http_only(uint8_t key)
{
	return key == WP_AUTHZ_K_HOST || key == WP_AUTHZ_K_METHOD || key == WP_AUTHZ_K_PATH ||
	       key == WP_AUTHZ_K_HEADER || key == WP_AUTHZ_K_REQ_PRINCIPAL ||
	       key == WP_AUTHZ_K_AUTH_AUDIENCE || key == WP_AUTHZ_K_AUTH_PRESENTER ||
	       key == WP_AUTHZ_K_AUTH_CLAIM;
}

static bool value_match(const struct authz_ref *r, const struct wp_obj *o,
                        const struct wp_authz_cond *c, bool neg, uint32_t i,
                        const struct wp_authz_req *q)
{
	const char *v = neg ? c->not_values[i] : c->values[i];
	bool has_p = q->principal && q->principal_len;

	switch (c->key) {
	case WP_AUTHZ_K_PRINCIPAL:
		return has_p && principal_match(r->in, v, q->principal, q->principal_len);
	case WP_AUTHZ_K_NAMESPACE:
		return has_p && ns_match(v, q->principal, q->principal_len);
	case WP_AUTHZ_K_SERVICE_ACCOUNT:
		return has_p && sa_match(v, o->meta.ns, q->principal, q->principal_len);
	case WP_AUTHZ_K_SOURCE_IP:
		return in_cidr(neg ? &c->not_cidrs[i] : &c->cidrs[i], &q->src_ip);
	case WP_AUTHZ_K_REMOTE_IP:
		return in_cidr(neg ? &c->not_cidrs[i] : &c->cidrs[i], &q->remote_ip);
	case WP_AUTHZ_K_DEST_IP:
		return in_cidr(neg ? &c->not_cidrs[i] : &c->cidrs[i], &q->dst_ip);
	case WP_AUTHZ_K_PORT:
		return (neg ? c->not_ports[i] : c->ports[i]) == q->dst_port;
	case WP_AUTHZ_K_HOST:
		if (!q->host)
			return false;
		return !strcmp(v, "*") || str_form(v, q->host, q->host_len, true) ||
		       str_form(v, q->host, wp_authz_host_len(q->host, q->host_len), true);
	case WP_AUTHZ_K_METHOD:
		if (!q->method)
			return false;
		return !strcmp(v, "*") || str_form(v, q->method, q->method_len, false);
	case WP_AUTHZ_K_PATH:
		return q->path && str_form(v, q->path, q->path_len, false);
	case WP_AUTHZ_K_SNI:
		return q->sni && str_form(v, q->sni, q->sni_len, false);
	case WP_AUTHZ_K_HEADER: {
		uint32_t vl = 0;
		const char *hv =
		        q->header ? q->header(q->header_ctx, c->arg, (uint32_t)strlen(c->arg), &vl)
		                  : NULL;

		if (!hv)
			return false;
		return !strcmp(v, "*") || str_form(v, hv, vl, false);
	}
	default:
		return false; /* JWT: nothing is ever authenticated */
	}
}

static bool cond_holds(const struct authz_ref *r, const struct wp_obj *o,
                       const struct wp_authz_cond *c, const struct wp_authz_req *q)
{
	bool pos = !c->n_values, neg = false;

	if (!q->is_http && http_only(c->key))
		return true; /* dropped on TCP (ALLOW rules never get here) */
	for (uint32_t i = 0; i < c->n_values && !pos; i++)
		pos = value_match(r, o, c, false, i, q);
	for (uint32_t i = 0; i < c->n_not && !neg; i++)
		neg = value_match(r, o, c, true, i, q);
	return pos && !neg;
}

static bool entry_holds(const struct authz_ref *r, const struct wp_obj *o,
                        const struct wp_authz_match *m, const struct wp_authz_req *q)
{
	for (uint32_t i = 0; i < m->n_conds; i++)
		if (!cond_holds(r, o, &m->conds[i], q))
			return false;
	return true;
}

static bool uses_http(const struct wp_authz_rule *ru)
{
	for (uint32_t i = 0; i < ru->n_from; i++)
		for (uint32_t k = 0; k < ru->from[i].n_conds; k++)
			if (http_only(ru->from[i].conds[k].key))
				return true;
	for (uint32_t i = 0; i < ru->n_to; i++)
		for (uint32_t k = 0; k < ru->to[i].n_conds; k++)
			if (http_only(ru->to[i].conds[k].key))
				return true;
	for (uint32_t k = 0; k < ru->n_when; k++)
		if (http_only(ru->when[k].key))
			return true;
	return false;
}

static bool rule_holds(const struct authz_ref *r, const struct wp_obj *o,
                       const struct wp_authz_rule *ru, const struct wp_authz_req *q)
{
	bool any;

	if (!q->is_http && o->u.authz.act == WP_AUTHZ_ALLOW && uses_http(ru))
		return false;
	any = !ru->n_from;
	for (uint32_t i = 0; i < ru->n_from && !any; i++)
		any = entry_holds(r, o, &ru->from[i], q);
	if (!any)
		return false;
	any = !ru->n_to;
	for (uint32_t i = 0; i < ru->n_to && !any; i++)
		any = entry_holds(r, o, &ru->to[i], q);
	if (!any)
		return false;
	for (uint32_t i = 0; i < ru->n_when; i++)
		if (!cond_holds(r, o, &ru->when[i], q))
			return false;
	return true;
}

/* The first rule of o matching q (its index, -1 = the whole policy), or
 * INT32_MIN when none. */
static int32_t policy_match(const struct authz_ref *r, const struct wp_obj *o,
                            const struct wp_authz_req *q)
{
	const struct wp_k8s_authz *a = &o->u.authz;

	if (a->act != WP_AUTHZ_ALLOW) {
		/* fail closed: an unreadable DENY / AUDIT / CUSTOM matches all */
		if (a->invalid)
			return -1;
		for (uint32_t i = 0; i < a->n_rules; i++)
			if (a->rules[i].invalid)
				return (int32_t)i;
	} else if (a->invalid) {
		return INT32_MIN;
	}
	for (uint32_t i = 0; i < a->n_rules; i++)
		if (!a->rules[i].invalid && rule_holds(r, o, &a->rules[i], q))
			return (int32_t)i;
	return INT32_MIN;
}

void authz_ref_eval(const struct authz_ref *r, const struct wp_authz_req *q,
                    struct wp_authz_decision *d)
{
	const struct wp_obj *deny = NULL, *allow = NULL;
	int32_t deny_rule = 0, allow_rule = 0;
	bool has_allow = false, deny_invalid = false;

	memset(d, 0, sizeof(*d));
	d->rule = -1;
	d->allowed = true;
	for (uint32_t i = 0; i < r->n; i++) {
		const struct wp_obj *o = r->applied[i];
		int32_t m;

		if (o->u.authz.act != WP_AUTHZ_CUSTOM)
			continue;
		m = policy_match(r, o, q);
		if (m != INT32_MIN) {
			d->allowed = false;
			d->reason = WP_AUTHZ_R_CUSTOM;
			d->ns = o->meta.ns;
			d->name = o->meta.name;
			d->rule = m;
			return;
		}
	}
	for (uint32_t i = 0; i < r->n; i++) {
		const struct wp_obj *o = r->applied[i];
		int32_t m;

		switch (o->u.authz.act) {
		case WP_AUTHZ_AUDIT:
			if (!d->audited && policy_match(r, o, q) != INT32_MIN)
				d->audited = true;
			break;
		case WP_AUTHZ_DENY:
			if (deny)
				break;
			m = policy_match(r, o, q);
			if (m != INT32_MIN) {
				deny = o;
				deny_rule = m;
				deny_invalid = m < 0 || o->u.authz.rules[m].invalid;
			}
			break;
		case WP_AUTHZ_ALLOW:
			has_allow = true;
			if (allow)
				break;
			m = policy_match(r, o, q);
			if (m != INT32_MIN) {
				allow = o;
				allow_rule = m;
			}
			break;
		default:
			break;
		}
	}
	if (deny) {
		d->allowed = false;
		d->reason = deny_invalid ? WP_AUTHZ_R_DENY_INVALID : WP_AUTHZ_R_DENY_MATCH;
		d->ns = deny->meta.ns;
		d->name = deny->meta.name;
		d->rule = deny_rule;
		return;
	}
	if (!has_allow) {
		d->reason = WP_AUTHZ_R_NO_POLICY;
		return;
	}
	if (!allow) {
		d->allowed = false;
		d->reason = WP_AUTHZ_R_NO_ALLOW_MATCH;
		return;
	}
	d->reason = WP_AUTHZ_R_ALLOW_MATCH;
	d->ns = allow->meta.ns;
	d->name = allow->meta.name;
	d->rule = allow_rule;
}
