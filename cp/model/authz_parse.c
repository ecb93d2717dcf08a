/*
 * AuthorizationPolicy rules as typed structs (wp/model_types.h): from[].source,
 * to[].operation and when[] of security.istio.io/v1, the action, the CUSTOM
 * provider and the istio.io/dry-run annotation.
 *
 * Unlike the rest of the model, a bad rule never rejects the object: the
 * object must still reach the authorization compiler so that it can fail
 * closed on it (a DENY that cannot be read denies everything it targets, an
 * ALLOW rule that cannot be read matches nothing). So problems are recorded,
 * not raised: rule.invalid for one rule (unknown key, bad CIDR, bad port,
 * '*' in the middle of a value, unknown when key, path template), and
 * authz.invalid for the policy as a whole (unknown spec key, rules not a
 * list), each as "ORIGIN:LINE: AuthorizationPolicy NS/NAME: FIELD: problem".
 * Everything is copied into the object's arena (the spec tree handed in is
 * the parser's temporary one).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse_int.h"
#include "wp/addr.h"
#include "wp/model.h"

struct actx {
	struct wp_obj *o;
	const char *err; /* first problem of the rule (or policy) being read */
};

static const char *msg(struct actx *c, const struct wp_ynode *at, const char *field,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static const char *msg(struct actx *c, const struct wp_ynode *at, const char *field,
                       const char *fmt, ...)
{
	char tail[256];
	va_list ap;
	const char *m;

	va_start(ap, fmt);
	vsnprintf(tail, sizeof(tail), fmt, ap);
	va_end(ap);
	m = wp_arena_sprintf(&c->o->arena, "%s:%u: AuthorizationPolicy %s/%s: %s: %s",
	                     c->o->origin ? c->o->origin : "?", at ? at->line : c->o->line,
	                     c->o->meta.ns, c->o->meta.name, field, tail);
	return m ? m : "out of memory while reading an AuthorizationPolicy";
}

#define PROBLEM(c, at, field, ...)                                                                 \
	do {                                                                                       \
		if (!(c)->err)                                                                     \
			(c)->err = msg(c, at, field, __VA_ARGS__);                                 \
	} while (0)

int wp_authz_cidr_parse(const char *s, struct wp_authz_cidr *out)
{
	char buf[64];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long len;
	unsigned max;
	char *end;

	memset(out, 0, sizeof(*out));
	if (!n || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (wp_addr_parse(buf, &out->addr))
		return -EINVAL;
	max = out->addr.family == WP_AF_INET ? 32 : 128;
	len = max;
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		errno = 0;
		len = strtoul(slash + 1, &end, 10);
		if (errno || *end || len > max)
			return -EINVAL;
	}
	out->len = (uint8_t)len;
	{
		uint8_t *b =
		        out->addr.family == WP_AF_INET ? (uint8_t *)&out->addr.v4 : out->addr.v6;

		for (unsigned i = 0; i < max / 8; i++) {
			unsigned keep = len > i * 8 ? len - i * 8 : 0;

			if (keep < 8)
				b[i] &= (uint8_t)(0xff00u >> keep);
		}
	}
	return 0;
}

/* A value with '*' anywhere but as the whole value, its first or its last
 * character is refused: Istio's matchers know exact, prefix, suffix and
 * presence only. */
static bool wildcard_ok(const char *v)
{
	size_t n = strlen(v);
	const char *star = strchr(v, '*');

	if (!star || n == 1)
		return true;
	if (star == v)
		return !strchr(v + 1, '*');
	return star == v + n - 1;
}

static bool check_value(struct actx *c, const struct wp_ynode *at, const char *field, uint8_t key,
                        const char *v, struct wp_authz_cidr *cidr, uint16_t *port)
{
	switch (key) {
	case WP_AUTHZ_K_SOURCE_IP:
	case WP_AUTHZ_K_REMOTE_IP:
	case WP_AUTHZ_K_DEST_IP:
		if (wp_authz_cidr_parse(v, cidr)) {
			PROBLEM(c, at, field, "expected an IP address or CIDR, got \"%s\"", v);
			return false;
		}
		return true;
	case WP_AUTHZ_K_PORT: {
		char *end;
		unsigned long p;

		errno = 0;
		p = strtoul(v, &end, 10);
		if (*v < '0' || *v > '9' || errno || *end || p > 65535) {
			PROBLEM(c, at, field, "expected a port number in 0..65535, got \"%s\"", v);
			return false;
		}
		*port = (uint16_t)p;
		return true;
	}
	case WP_AUTHZ_K_SERVICE_ACCOUNT: {
		const char *sl = strchr(v, '/');

		if (!*v || strchr(v, '*') || (sl && (sl == v || !sl[1] || strchr(sl + 1, '/')))) {
			PROBLEM(c, at, field, "expected NAME or NAMESPACE/NAME, got \"%s\"", v);
			return false;
		}
		return true;
	}
	default:
		break;
	}
	if (!*v) {
		PROBLEM(c, at, field, "empty value");
		return false;
	}
	if (!wildcard_ok(v)) {
		PROBLEM(c, at, field,
		        "'*' is allowed only as the whole value, its first or its last character: "
		        "\"%s\"",
		        v);
		return false;
	}
	if (key == WP_AUTHZ_K_PATH && (strstr(v, "{*}") || strstr(v, "{**}"))) {
		PROBLEM(c, at, field, "path templates ({*}, {**}) are not supported: \"%s\"", v);
		return false;
	}
	return true;
}

/* Reads a list of strings into *out (and the parsed blocks / ports). */
static void get_values(struct actx *c, const struct wp_ynode *n, const char *field, uint8_t key,
                       uint32_t *cnt, const char *const **out, const struct wp_authz_cidr **cidrs,
                       const uint16_t **ports)
{
	const char **v;
	struct wp_authz_cidr *cd = NULL;
	uint16_t *pt = NULL;
	uint32_t i = 0;
	char f[192];

	*cnt = 0;
	if (wp_ynode_is_null(n))
		return;
	if (n->type != WP_YNODE_SEQ) {
		PROBLEM(c, n, field, "expected a list of strings");
		return;
	}
	if (!n->n)
		return;
	v = wp_arena_alloc(&c->o->arena, sizeof(*v) * n->n);
	if (key == WP_AUTHZ_K_SOURCE_IP || key == WP_AUTHZ_K_REMOTE_IP || key == WP_AUTHZ_K_DEST_IP)
		cd = wp_arena_alloc(&c->o->arena, sizeof(*cd) * n->n);
	if (key == WP_AUTHZ_K_PORT)
		pt = wp_arena_alloc(&c->o->arena, sizeof(*pt) * n->n);
	if (!v ||
	    ((key == WP_AUTHZ_K_SOURCE_IP || key == WP_AUTHZ_K_REMOTE_IP ||
	      key == WP_AUTHZ_K_DEST_IP) &&
	     !cd) ||
	    (key == WP_AUTHZ_K_PORT && !pt)) {
		PROBLEM(c, n, field, "out of memory");
		return;
	}
	for (const struct wp_ynode *e = n->child; e; e = e->next, i++) {
		snprintf(f, sizeof(f), "%s[%u]", field, i);
		if (e->type != WP_YNODE_SCALAR) {
			PROBLEM(c, e, f, "expected a string");
			return;
		}
		v[i] = wp_arena_strdup(&c->o->arena, e->value);
		if (!v[i]) {
			PROBLEM(c, e, f, "out of memory");
			return;
		}
		if (!check_value(c, e, f, key, e->value, cd ? &cd[i] : NULL, pt ? &pt[i] : NULL))
			return;
	}
	*cnt = i;
	*out = v;
	if (cidrs)
		*cidrs = cd;
	if (ports)
		*ports = pt;
}

struct field_name {
	const char *pos, *neg;
	uint8_t key;
};

static const struct field_name source_fields[] = {
        {"principals", "notPrincipals", WP_AUTHZ_K_PRINCIPAL},
        {"requestPrincipals", "notRequestPrincipals", WP_AUTHZ_K_REQ_PRINCIPAL},
        {"namespaces", "notNamespaces", WP_AUTHZ_K_NAMESPACE},
        {"serviceAccounts", "notServiceAccounts", WP_AUTHZ_K_SERVICE_ACCOUNT},
        {"ipBlocks", "notIpBlocks", WP_AUTHZ_K_SOURCE_IP},
        {"remoteIpBlocks", "notRemoteIpBlocks", WP_AUTHZ_K_REMOTE_IP},
};

static const struct field_name operation_fields[] = {
        {"hosts", "notHosts", WP_AUTHZ_K_HOST},
        {"ports", "notPorts", WP_AUTHZ_K_PORT},
        {"methods", "notMethods", WP_AUTHZ_K_METHOD},
        {"paths", "notPaths", WP_AUTHZ_K_PATH},
};

/* One source or operation map: a cond per field that has values. */
static void get_match(struct actx *c, const struct wp_ynode *m, const char *field,
                      const struct field_name *names, size_t n_names, struct wp_authz_match *out)
{
	struct wp_authz_cond *conds;
	uint32_t k = 0;
	char f[192];

	out->line = m ? m->line : 0;
	if (wp_ynode_is_null(m))
		return;
	if (m->type != WP_YNODE_MAP) {
		PROBLEM(c, m, field, "expected a mapping");
		return;
	}
	for (const struct wp_ynode *e = m->child; e; e = e->next) {
		size_t i;

		for (i = 0; i < n_names; i++)
			if (!strcmp(e->key, names[i].pos) || !strcmp(e->key, names[i].neg))
				break;
		if (i == n_names) {
			snprintf(f, sizeof(f), "%s.%s", field, e->key);
			PROBLEM(c, e, f, "unknown field");
			return;
		}
	}
	conds = wp_arena_alloc(&c->o->arena, sizeof(*conds) * n_names);
	if (!conds) {
		PROBLEM(c, m, field, "out of memory");
		return;
	}
	for (size_t i = 0; i < n_names && !c->err; i++) {
		const struct wp_ynode *pv = wp_ynode_get(m, names[i].pos);
		const struct wp_ynode *nv = wp_ynode_get(m, names[i].neg);
		struct wp_authz_cond *cd = &conds[k];

		cd->key = names[i].key;
		cd->line = pv ? pv->line : nv ? nv->line : m->line;
		snprintf(f, sizeof(f), "%s.%s", field, names[i].pos);
		get_values(c, pv, f, cd->key, &cd->n_values, &cd->values, &cd->cidrs, &cd->ports);
		snprintf(f, sizeof(f), "%s.%s", field, names[i].neg);
		get_values(c, nv, f, cd->key, &cd->n_not, &cd->not_values, &cd->not_cidrs,
		           &cd->not_ports);
		if (cd->n_values || cd->n_not)
			k++;
	}
	out->conds = conds;
	out->n_conds = k;
}

/* The key of a when condition, or -1. *arg gets the bracketed part. */
static int when_key(struct actx *c, const char *k, const char **arg)
{
	static const struct {
		const char *name;
		uint8_t key;
	} plain[] = {
	        {"source.ip", WP_AUTHZ_K_SOURCE_IP},
	        {"remote.ip", WP_AUTHZ_K_REMOTE_IP},
	        {"source.namespace", WP_AUTHZ_K_NAMESPACE},
	        {"source.principal", WP_AUTHZ_K_PRINCIPAL},
	        {"source.serviceAccount", WP_AUTHZ_K_SERVICE_ACCOUNT},
	        {"request.auth.principal", WP_AUTHZ_K_REQ_PRINCIPAL},
	        {"request.auth.audiences", WP_AUTHZ_K_AUTH_AUDIENCE},
	        {"request.auth.presenter", WP_AUTHZ_K_AUTH_PRESENTER},
	        {"destination.ip", WP_AUTHZ_K_DEST_IP},
	        {"destination.port", WP_AUTHZ_K_PORT},
	        {"connection.sni", WP_AUTHZ_K_SNI},
	};
	static const char hdr[] = "request.headers[", claims[] = "request.auth.claims[";
	size_t n = strlen(k);

	*arg = NULL;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (!strcmp(k, plain[i].name))
			return plain[i].key;
	if (!strncmp(k, hdr, sizeof(hdr) - 1) && n > sizeof(hdr) && k[n - 1] == ']') {
		size_t hl = n - sizeof(hdr);
		char *name = wp_arena_strndup(&c->o->arena, k + sizeof(hdr) - 1, hl);

		if (!name || strpbrk(name, "[]"))
			return -1;
		for (char *q = name; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
		*arg = name;
		return WP_AUTHZ_K_HEADER;
	}
	if (!strncmp(k, claims, sizeof(claims) - 2) && n > sizeof(claims) && k[n - 1] == ']') {
		*arg = wp_arena_strdup(&c->o->arena, k + sizeof(claims) - 2);
		return WP_AUTHZ_K_AUTH_CLAIM;
	}
	return -1;
}

static void get_when(struct actx *c, const struct wp_ynode *w, const char *field,
                     struct wp_authz_rule *r)
{
	struct wp_authz_cond *conds;
	uint32_t i = 0, k = 0;
	char f[192];

	if (wp_ynode_is_null(w))
		return;
	if (w->type != WP_YNODE_SEQ) {
		PROBLEM(c, w, field, "expected a list");
		return;
	}
	if (!w->n)
		return;
	conds = wp_arena_alloc(&c->o->arena, sizeof(*conds) * w->n);
	if (!conds) {
		PROBLEM(c, w, field, "out of memory");
		return;
	}
	for (const struct wp_ynode *e = w->child; e && !c->err; e = e->next, i++) {
		const struct wp_ynode *kn = wp_ynode_get(e, "key");
		struct wp_authz_cond *cd = &conds[k];
		int key;

		snprintf(f, sizeof(f), "%s[%u]", field, i);
		if (e->type != WP_YNODE_MAP) {
			PROBLEM(c, e, f, "expected a mapping");
			return;
		}
		for (const struct wp_ynode *x = e->child; x; x = x->next)
			if (strcmp(x->key, "key") && strcmp(x->key, "values") &&
			    strcmp(x->key, "notValues")) {
				snprintf(f, sizeof(f), "%s[%u].%s", field, i, x->key);
				PROBLEM(c, x, f, "unknown field");
				return;
			}
		if (!kn || kn->type != WP_YNODE_SCALAR || wp_ynode_is_null(kn)) {
			snprintf(f, sizeof(f), "%s[%u].key", field, i);
			PROBLEM(c, kn ? kn : e, f, "required field missing");
			return;
		}
		key = when_key(c, kn->value, &cd->arg);
		if (key < 0) {
			snprintf(f, sizeof(f), "%s[%u].key", field, i);
			PROBLEM(c, kn, f, "unknown attribute \"%s\"", kn->value);
			return;
		}
		cd->key = (uint8_t)key;
		cd->line = e->line;
		snprintf(f, sizeof(f), "%s[%u].values", field, i);
		get_values(c, wp_ynode_get(e, "values"), f, cd->key, &cd->n_values, &cd->values,
		           &cd->cidrs, &cd->ports);
		snprintf(f, sizeof(f), "%s[%u].notValues", field, i);
		get_values(c, wp_ynode_get(e, "notValues"), f, cd->key, &cd->n_not, &cd->not_values,
		           &cd->not_cidrs, &cd->not_ports);
		/* neither values nor notValues: no constraint (Istio's builder) */
		if (cd->n_values || cd->n_not)
			k++;
	}
	r->when = conds;
	r->n_when = k;
}

/* from[] / to[]: each entry a map with one key (source / operation). */
static void get_entries(struct actx *c, const struct wp_ynode *s, const char *field,
                        const char *inner, const struct field_name *names, size_t n_names,
                        uint32_t *cnt, const struct wp_authz_match **out)
{
	struct wp_authz_match *m;
	uint32_t i = 0;
	char f[160];

	*cnt = 0;
	if (wp_ynode_is_null(s))
		return;
	if (s->type != WP_YNODE_SEQ) {
		PROBLEM(c, s, field, "expected a list");
		return;
	}
	if (!s->n)
		return;
	m = wp_arena_alloc(&c->o->arena, sizeof(*m) * s->n);
	if (!m) {
		PROBLEM(c, s, field, "out of memory");
		return;
	}
	for (const struct wp_ynode *e = s->child; e && !c->err; e = e->next, i++) {
		snprintf(f, sizeof(f), "%s[%u]", field, i);
		if (e->type != WP_YNODE_MAP && !wp_ynode_is_null(e)) {
			PROBLEM(c, e, f, "expected a mapping");
			return;
		}
		for (const struct wp_ynode *x = e->type == WP_YNODE_MAP ? e->child : NULL; x;
		     x = x->next)
			if (strcmp(x->key, inner)) {
				snprintf(f, sizeof(f), "%s[%u].%s", field, i, x->key);
				PROBLEM(c, x, f, "unknown field");
				return;
			}
		snprintf(f, sizeof(f), "%s[%u].%s", field, i, inner);
		get_match(c, wp_ynode_get(e, inner), f, names, n_names, &m[i]);
		m[i].line = e->line;
	}
	*cnt = i;
	*out = m;
}

static void get_rule(struct actx *c, const struct wp_ynode *n, uint32_t idx,
                     struct wp_authz_rule *r)
{
	char f[64];

	c->err = NULL;
	r->line = n->line;
	snprintf(f, sizeof(f), "spec.rules[%u]", idx);
	if (n->type != WP_YNODE_MAP && !wp_ynode_is_null(n)) {
		PROBLEM(c, n, f, "expected a mapping");
		goto out;
	}
	for (const struct wp_ynode *x = n->type == WP_YNODE_MAP ? n->child : NULL; x; x = x->next)
		if (strcmp(x->key, "from") && strcmp(x->key, "to") && strcmp(x->key, "when")) {
			snprintf(f, sizeof(f), "spec.rules[%u].%s", idx, x->key);
			PROBLEM(c, x, f, "unknown field");
			goto out;
		}
	snprintf(f, sizeof(f), "spec.rules[%u].from", idx);
	get_entries(c, wp_ynode_get(n, "from"), f, "source", source_fields,
	            sizeof(source_fields) / sizeof(source_fields[0]), &r->n_from, &r->from);
	snprintf(f, sizeof(f), "spec.rules[%u].to", idx);
	get_entries(c, wp_ynode_get(n, "to"), f, "operation", operation_fields,
	            sizeof(operation_fields) / sizeof(operation_fields[0]), &r->n_to, &r->to);
	snprintf(f, sizeof(f), "spec.rules[%u].when", idx);
	get_when(c, wp_ynode_get(n, "when"), f, r);
out:
	r->invalid = c->err;
	if (c->err)
		r->n_from = r->n_to = r->n_when = 0;
}

void wp_authz_parse(struct wp_obj *o, const struct wp_ynode *spec)
{
	struct wp_k8s_authz *a = &o->u.authz;
	struct actx c = {.o = o};
	const struct wp_ynode *rules, *prov;
	const char *dr = wp_labels_get(&o->meta.annotations, "istio.io/dry-run");
	struct wp_authz_rule *r;
	uint32_t i = 0;

	a->act = !strcmp(a->action, "DENY")     ? WP_AUTHZ_DENY
	         : !strcmp(a->action, "AUDIT")  ? WP_AUTHZ_AUDIT
	         : !strcmp(a->action, "CUSTOM") ? WP_AUTHZ_CUSTOM
	                                        : WP_AUTHZ_ALLOW;
	a->dry_run = dr && (!strcmp(dr, "true") || !strcmp(dr, "True") || !strcmp(dr, "1"));
	if (!spec)
		return;
	for (const struct wp_ynode *x = spec->child; x; x = x->next)
		if (strcmp(x->key, "selector") && strcmp(x->key, "targetRef") &&
		    strcmp(x->key, "targetRefs") && strcmp(x->key, "action") &&
		    strcmp(x->key, "provider") && strcmp(x->key, "rules")) {
			char f[96];

			snprintf(f, sizeof(f), "spec.%s", x->key);
			PROBLEM(&c, x, f, "unknown field");
		}
	prov = wp_ynode_get(spec, "provider");
	if (!wp_ynode_is_null(prov)) {
		const struct wp_ynode *pn = wp_ynode_get(prov, "name");

		if (prov->type != WP_YNODE_MAP || !pn || pn->type != WP_YNODE_SCALAR)
			PROBLEM(&c, prov, "spec.provider", "expected a mapping with a name");
		else
			a->provider = wp_arena_strdup(&o->arena, pn->value);
	}
	rules = wp_ynode_get(spec, "rules");
	if (!wp_ynode_is_null(rules) && rules->type != WP_YNODE_SEQ)
		PROBLEM(&c, rules, "spec.rules", "expected a list");
	a->invalid = c.err;
	if (c.err || wp_ynode_is_null(rules) || !rules->n)
		return;
	r = wp_arena_alloc(&o->arena, sizeof(*r) * rules->n);
	if (!r) {
		a->invalid = "out of memory while reading an AuthorizationPolicy";
		return;
	}
	for (const struct wp_ynode *n = rules->child; n; n = n->next, i++)
		get_rule(&c, n, i, &r[i]);
	a->rules = r;
	a->n_rules = i;
}

/* ---- the object ------------------------------------------------------------ */

static void get_target_refs(struct pctx *p, const struct wp_ynode *spec, struct wp_k8s_authz *a)
{
	const struct wp_ynode *s =
	        wp_model_get_typed(p, spec, "targetRefs", WP_YNODE_SEQ, "spec.targetRefs");
	const struct wp_ynode *one =
	        wp_model_get_typed(p, spec, "targetRef", WP_YNODE_MAP, "spec.targetRef");
	uint32_t n = (s ? s->n : 0) + (one ? 1 : 0), i = 0;
	struct wp_target_ref *r;
	char f[96];

	if (!n)
		return;
	r = wp_model_palloc(p, sizeof(*r) * n);
	if (!r)
		return;
	for (const struct wp_ynode *c = s ? s->child : NULL; c && !p->failed; c = c->next, i++) {
		snprintf(f, sizeof(f), "spec.targetRefs[%u]", i);
		if (c->type != WP_YNODE_MAP) {
			wp_model_fail(p, c, f, "expected a mapping");
			return;
		}
		r[i].group = wp_model_get_str(p, c, "group", f, false);
		snprintf(f, sizeof(f), "spec.targetRefs[%u].kind", i);
		r[i].kind = wp_model_get_str(p, c, "kind", f, true);
		snprintf(f, sizeof(f), "spec.targetRefs[%u].name", i);
		r[i].name = wp_model_get_str(p, c, "name", f, true);
		r[i].ns = wp_model_get_str(p, c, "namespace", f, false);
	}
	if (one) {
		r[i].group = wp_model_get_str(p, one, "group", "spec.targetRef", false);
		r[i].kind = wp_model_get_str(p, one, "kind", "spec.targetRef.kind", true);
		r[i].name = wp_model_get_str(p, one, "name", "spec.targetRef.name", true);
		r[i].ns = wp_model_get_str(p, one, "namespace", "spec.targetRef", false);
		i++;
	}
	a->target_refs = r;
	a->n_target_refs = i;
}

void wp_model_read_authz(struct pctx *p, const struct wp_ynode *spec)
{
	struct wp_k8s_authz *a = &p->o->u.authz;

	a->action = spec ? wp_model_get_str(p, spec, "action", "spec.action", false) : NULL;
	if (!a->action)
		a->action = "ALLOW";
	if (strcmp(a->action, "ALLOW") && strcmp(a->action, "DENY") && strcmp(a->action, "AUDIT") &&
	    strcmp(a->action, "CUSTOM")) {
		wp_model_fail(p, wp_ynode_get(spec, "action"), "spec.action",
		              "must be ALLOW, DENY, AUDIT or CUSTOM, got %s", a->action);
		return;
	}
	if (spec) {
		get_target_refs(p, spec, a);
		a->has_selector = wp_ynode_get(spec, "selector") != NULL;
	}
	wp_authz_parse(p->o, spec);
}
