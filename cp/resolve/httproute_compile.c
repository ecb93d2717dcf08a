/*
 * HTTPRoute rules, compiled (route_compile_int.h): each rule's matches
 * (path, method, headers, query parameters, with Hyperscan regexes
 * test-compiled one by one), filters (header modifiers, redirect, URL
 * rewrite, mirrors), backendRefs (clusters from dr_compile.c), timeouts and
 * retry, read from the route's spec tree. A rule with a bad part is left
 * out with an error naming the field; the route's other rules still
 * compile. The committed regexes become one database per request field
 * (wp_route_build_regex).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hs.h>
#include <llhttp.h>

#include "route_compile_int.h"

/* ---- regexes --------------------------------------------------------------- */

static char *anchored(const char *p)
{
	size_t n = strlen(p);
	char *s = malloc(n + 8);

	if (s)
		snprintf(s, n + 8, "^(?:%s)$", p);
	return s;
}

#define RE_FLAGS (HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY)

/* Test-compiles one pattern; on failure writes Hyperscan's reason. */
static bool re_check(const char *pattern, char *why, size_t len)
{
	hs_database_t *db = NULL;
	hs_compile_error_t *ce = NULL;
	char *s = anchored(pattern);
	bool ok;

	if (!s) {
		snprintf(why, len, "out of memory");
		return false;
	}
	ok = hs_compile(s, RE_FLAGS, HS_MODE_BLOCK, NULL, &db, &ce) == HS_SUCCESS;
	if (!ok)
		snprintf(why, len, "%s", ce && ce->message ? ce->message : "does not compile");
	hs_free_compile_error(ce);
	hs_free_database(db);
	free(s);
	return ok;
}

bool wp_route_re_add(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *at,
                     const char *field, uint8_t kind, const char *name, const char *pattern,
                     uint32_t *id_out, uint16_t *field_out)
{
	char why[256];

	if (!re_check(pattern, why, sizeof(why))) {
		wp_route_cerr(c, o, at, field, "regular expression \"%s\" rejected: %s", pattern,
		              why);
		return false;
	}
	if (!GROW(c, c->pend, c->n_pend, c->cap_pend))
		return false;
	c->pend[c->n_pend++] = (struct tre){.kind = kind,
	                                    .name = name,
	                                    .name_len = (uint16_t)(name ? strlen(name) : 0),
	                                    .pattern = pattern,
	                                    .id_out = id_out,
	                                    .field_out = field_out};
	return true;
}

bool wp_route_build_regex(struct cctx *c)
{
	struct wp_route_field *fields;

	if (!c->n_re)
		return true;
	if (c->n_re > WP_ROUTE_MAX_REGEX) {
		/* keep the table usable: drop the overflow regexes' matches */
		return false;
	}
	/* group by field: path first, then headers, then query names */
	for (uint32_t i = 0; i < c->n_re; i++) {
		struct tre *r = &c->re[i];
		uint32_t f;

		for (f = 0; f < c->n_f; f++)
			if (c->f[f].kind == r->kind && c->f[f].name_len == r->name_len &&
			    (!r->name || !strcmp(c->f[f].name, r->name)))
				break;
		if (f == c->n_f) {
			if (!GROW(c, c->f, c->n_f, c->cap_f))
				return false;
			c->f[c->n_f++] = (struct tfield){
			        .kind = r->kind, .name = r->name, .name_len = r->name_len};
		}
		*r->field_out = (uint16_t)f;
		*r->id_out = i;
		c->f[f].n_re++;
	}
	fields = aalloc(c, sizeof(*fields) * c->n_f);
	if (!fields)
		return false;
	c->t->fields = fields;
	for (uint32_t f = 0; f < c->n_f; f++) {
		const char **pats = calloc(c->f[f].n_re, sizeof(*pats));
		unsigned *flags = calloc(c->f[f].n_re, sizeof(*flags));
		unsigned *ids = calloc(c->f[f].n_re, sizeof(*ids));
		hs_database_t *db = NULL;
		hs_compile_error_t *ce = NULL;
		uint32_t k = 0;
		hs_error_t e = HS_NOMEM;

		if (pats && flags && ids) {
			for (uint32_t i = 0; i < c->n_re; i++)
				if (*c->re[i].field_out == f) {
					pats[k] = anchored(c->re[i].pattern);
					flags[k] = RE_FLAGS;
					ids[k] = i;
					if (!pats[k])
						break;
					k++;
				}
			if (k == c->f[f].n_re)
				e = hs_compile_multi(pats, flags, ids, k, HS_MODE_BLOCK, NULL, &db,
				                     &ce);
		}
		for (uint32_t i = 0; pats && i < k; i++)
			free((void *)pats[i]);
		free(pats);
		free(flags);
		free(ids);
		hs_free_compile_error(ce);
		if (e != HS_SUCCESS) {
			c->oom = true;
			return false;
		}
		fields[f].kind = c->f[f].kind;
		fields[f].name = c->f[f].name;
		fields[f].name_len = c->f[f].name_len;
		fields[f].db = (struct hs_database *)db;
		c->t->n_fields = (uint16_t)(f + 1);
	}
	c->t->n_regex = c->n_re;
	return true;
}

/* ---- matches --------------------------------------------------------------- */

bool wp_route_method(const char *s, uint8_t *out)
{
	static const struct {
		const char *n;
		uint8_t m;
	} t[] = {
	        {"GET", HTTP_GET},         {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
	        {"PUT", HTTP_PUT},         {"DELETE", HTTP_DELETE}, {"CONNECT", HTTP_CONNECT},
	        {"OPTIONS", HTTP_OPTIONS}, {"TRACE", HTTP_TRACE},   {"PATCH", HTTP_PATCH},
	};

	for (size_t i = 0; i < WP_ARRAY_SIZE(t); i++)
		if (!strcmp(s, t[i].n)) {
			*out = t[i].m;
			return true;
		}
	return false;
}

/* headers / queryParams of one match. */
static bool parse_kvs(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *seq,
                      const char *field, bool header, uint16_t *n_out,
                      const struct wp_route_kv **out)
{
	struct wp_route_kv *kv;
	uint32_t i = 0, n = 0;
	char f[160];

	if (!seq)
		return true;
	if (seq->type != WP_YNODE_SEQ) {
		wp_route_cerr(c, o, seq, field, "expected a list");
		return false;
	}
	kv = aalloc(c, sizeof(*kv) * (seq->n + 1));
	if (!kv)
		return false;
	for (const struct wp_ynode *e = seq->child; e; e = e->next, i++) {
		const char *name = sget(e, "name"), *value = sget(e, "value"),
		           *type = sget(e, "type");
		bool dup = false;

		fieldf(f, sizeof(f), "%s[%u]", field, i);
		if (e->type != WP_YNODE_MAP) {
			wp_route_cerr(c, o, e, f, "expected a mapping");
			return false;
		}
		if (!name || !value) {
			wp_route_cerr(c, o, e, f, "name and value are required");
			return false;
		}
		if (header ? !is_token(name) : !*name) {
			wp_route_cerr(c, o, wp_ynode_get(e, "name"), f, "invalid name \"%s\"",
			              name);
			return false;
		}
		/* only the first entry of an equivalent name counts */
		for (uint32_t j = 0; j < n; j++)
			if (header ? !strcasecmp(kv[j].name, name) : !strcmp(kv[j].name, name))
				dup = true;
		if (dup)
			continue;
		kv[n].name = header ? lower_dup(c, name) : astrdup(c, name);
		kv[n].name_len = (uint16_t)strlen(name);
		kv[n].value = astrdup(c, value);
		kv[n].value_len = (uint32_t)strlen(value);
		if (!type || !strcmp(type, "Exact")) {
			kv[n].type = WP_ROUTE_STR_EXACT;
		} else if (!strcmp(type, "RegularExpression")) {
			kv[n].type = WP_ROUTE_STR_REGEX;
			if (!wp_route_re_add(c, o, wp_ynode_get(e, "value"), f,
			                     header ? WP_ROUTE_FIELD_HEADER : WP_ROUTE_FIELD_QUERY,
			                     kv[n].name, kv[n].value, &kv[n].re, &kv[n].field))
				return false;
		} else {
			wp_route_cerr(c, o, wp_ynode_get(e, "type"), f,
			              "type must be Exact or RegularExpression, got %s", type);
			return false;
		}
		n++;
	}
	*n_out = (uint16_t)n;
	*out = kv;
	return !c->oom;
}

static bool parse_match(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *mn,
                        const char *field, struct wp_route_match *m)
{
	const struct wp_ynode *path = nget(mn, "path");
	const char *method = sget(mn, "method");
	char f[160];

	m->path_type = WP_ROUTE_PATH_PREFIX;
	m->path = "";
	if (mn && mn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, mn, field, "expected a mapping");
		return false;
	}
	if (path) {
		const char *type = sget(path, "type"), *value = sget(path, "value");

		fieldf(f, sizeof(f), "%s.path", field);
		if (path->type != WP_YNODE_MAP) {
			wp_route_cerr(c, o, path, f, "expected a mapping");
			return false;
		}
		if (!value)
			value = "/";
		if (!type || !strcmp(type, "PathPrefix")) {
			size_t n = strlen(value);

			if (value[0] != '/') {
				wp_route_cerr(c, o, path, f,
				              "PathPrefix value must start with '/', got \"%s\"",
				              value);
				return false;
			}
			/* "/foo/" behaves as "/foo"; "/" keeps nothing: matches all */
			while (n > 0 && value[n - 1] == '/')
				n--;
			m->path = wp_arena_strndup(c->a, value, n);
			m->path_len = (uint32_t)n;
		} else if (!strcmp(type, "Exact")) {
			if (value[0] != '/') {
				wp_route_cerr(c, o, path, f,
				              "Exact value must start with '/', got \"%s\"", value);
				return false;
			}
			m->path_type = WP_ROUTE_PATH_EXACT;
			m->path = astrdup(c, value);
			m->path_len = (uint32_t)strlen(value);
		} else if (!strcmp(type, "RegularExpression")) {
			m->path_type = WP_ROUTE_PATH_REGEX;
			m->path = astrdup(c, value);
			m->path_len = (uint32_t)strlen(value);
			if (!wp_route_re_add(c, o, wp_ynode_get(path, "value"), f,
			                     WP_ROUTE_FIELD_PATH, NULL, m->path, &m->path_re,
			                     &m->path_field))
				return false;
		} else {
			wp_route_cerr(c, o, wp_ynode_get(path, "type"), f,
			              "type must be Exact, PathPrefix or RegularExpression, got %s",
			              type);
			return false;
		}
		if (!m->path) {
			c->oom = true;
			return false;
		}
	}
	if (method) {
		if (!wp_route_method(method, &m->method)) {
			fieldf(f, sizeof(f), "%s.method", field);
			wp_route_cerr(c, o, wp_ynode_get(mn, "method"), f, "unknown method %s",
			              method);
			return false;
		}
		m->has_method = true;
	}
	fieldf(f, sizeof(f), "%s.headers", field);
	if (!parse_kvs(c, o, nget(mn, "headers"), f, true, &m->n_headers, &m->headers))
		return false;
	fieldf(f, sizeof(f), "%s.queryParams", field);
	return parse_kvs(c, o, nget(mn, "queryParams"), f, false, &m->n_query, &m->query);
}

/* ---- rules ----------------------------------------------------------------- */

/* A backendRef-like node (backendRefs[i], requestMirror.backendRef). */
static uint32_t backend_cluster(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *b,
                                const char *field)
{
	const char *group = sget(b, "group"), *kind = sget(b, "kind"), *name = sget(b, "name"),
	           *ns = sget(b, "namespace"), *port = sget(b, "port"), *why = NULL;
	uint32_t p, idx;

	if (b->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, b, field, "expected a mapping");
		return NO_CLUSTER;
	}
	if ((group && *group && strcmp(group, "core")) || (kind && strcmp(kind, "Service"))) {
		wp_route_cerr(
		        c, o, b, field, "only core Services are supported as backends, got %s%s%s",
		        group && *group ? group : "", group && *group ? "/" : "", kind ? kind : "");
		return NO_CLUSTER;
	}
	if (!name || !*name) {
		wp_route_cerr(c, o, b, field, "name is required");
		return NO_CLUSTER;
	}
	if (!port || !parse_u32(port, 65535, &p) || !p) {
		wp_route_cerr(c, o, b, field, "port is required for a Service backend");
		return NO_CLUSTER;
	}
	idx = wp_route_cluster_get(c, ns ? ns : o->meta.ns, name, (uint16_t)p, NULL, &why);
	if (idx == NO_CLUSTER && !c->oom)
		wp_route_cerr(c, o, b, field, "Service %s/%s port %u: %s", ns ? ns : o->meta.ns,
		              name, p, why ? why : "unresolved");
	return idx;
}

static bool parse_hdr_mod(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *hm,
                          const char *field, struct wp_http_hdr_mods *mods, bool add_host,
                          const char *host)
{
	const struct wp_ynode *set = nget(hm, "set"), *add = nget(hm, "add"),
	                      *rm = nget(hm, "remove");
	uint32_t ns = set && set->type == WP_YNODE_SEQ ? set->n : 0;
	struct wp_http_hdr *sv, *av = NULL;
	char f[200];

	if (hm && hm->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, hm, field, "expected a mapping");
		return false;
	}
	/* existing set entries survive a second modifier only when the first
	 * was the URLRewrite host */
	sv = aalloc(c, sizeof(*sv) * (ns + mods->n_set + 2));
	if (!sv)
		return false;
	if (mods->n_set)
		memcpy(sv, mods->set, sizeof(*sv) * mods->n_set);
	mods->set = sv;
	for (int pass = 0; pass < 2; pass++) {
		const struct wp_ynode *seq = pass ? add : set;
		struct wp_http_hdr *dst;
		uint16_t *cnt;
		uint32_t i = 0;

		if (!seq)
			continue;
		fieldf(f, sizeof(f), "%s.%s", field, pass ? "add" : "set");
		if (seq->type != WP_YNODE_SEQ) {
			wp_route_cerr(c, o, seq, f, "expected a list");
			return false;
		}
		if (pass) {
			av = aalloc(c, sizeof(*av) * (seq->n + 1));
			if (!av)
				return false;
			mods->add = av;
		}
		dst = pass ? av : sv;
		cnt = pass ? &mods->n_add : &mods->n_set;
		for (const struct wp_ynode *e = seq->child; e; e = e->next, i++) {
			const char *name = sget(e, "name"), *value = sget(e, "value");

			if (!name || !is_token(name)) {
				wp_route_cerr(c, o, e, f, "[%u]: a valid header name is required",
				              i);
				return false;
			}
			if (!value)
				value = "";
			if (strpbrk(value, "\r\n")) {
				wp_route_cerr(c, o, e, f, "[%u]: value must not contain CR or LF",
				              i);
				return false;
			}
			dst[*cnt].name = lower_dup(c, name);
			dst[*cnt].name_len = (uint16_t)strlen(name);
			dst[*cnt].value = astrdup(c, value);
			dst[*cnt].value_len = (uint32_t)strlen(value);
			(*cnt)++;
		}
	}
	if (add_host) {
		sv[mods->n_set].name = "host";
		sv[mods->n_set].name_len = 4;
		sv[mods->n_set].value = host;
		sv[mods->n_set].value_len = (uint32_t)strlen(host);
		mods->n_set++;
	}
	if (rm && !wp_route_hdr_remove(c, o, rm, field, mods))
		return false;
	return !c->oom;
}

/* A header modifier's `remove` list (HTTPRoute filters, VirtualService
 * headers): lower-cased names into mods->remove; false (with an error naming
 * <field>.remove) when it is not a list of header names. */
bool wp_route_hdr_remove(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rm,
                         const char *field, struct wp_http_hdr_mods *mods)
{
	struct wp_http_hdr *rv;
	char f[200];
	uint32_t i = 0;

	fieldf(f, sizeof(f), "%s.remove", field);
	if (rm->type != WP_YNODE_SEQ) {
		wp_route_cerr(c, o, rm, f, "expected a list");
		return false;
	}
	rv = aalloc(c, sizeof(*rv) * (rm->n + 1));
	if (!rv)
		return false;
	for (const struct wp_ynode *e = rm->child; e; e = e->next, i++) {
		const char *name = scalar(e);

		if (!name || !is_token(name)) {
			wp_route_cerr(c, o, e, f, "[%u]: a valid header name is required", i);
			return false;
		}
		rv[i].name = lower_dup(c, name);
		rv[i].name_len = (uint16_t)strlen(name);
	}
	mods->remove = rv;
	mods->n_remove = (uint16_t)i;
	return !c->oom;
}

static bool parse_path_mod(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *pn,
                           const char *field, struct wp_route_path_mod *pm)
{
	const char *type = sget(pn, "type"), *v;

	if (!pn)
		return true;
	if (pn->type != WP_YNODE_MAP || !type) {
		wp_route_cerr(c, o, pn, field, "type is required");
		return false;
	}
	if (!strcmp(type, "ReplaceFullPath")) {
		pm->type = WP_ROUTE_REWRITE_FULL;
		v = sget(pn, "replaceFullPath");
	} else if (!strcmp(type, "ReplacePrefixMatch")) {
		pm->type = WP_ROUTE_REWRITE_PREFIX;
		v = sget(pn, "replacePrefixMatch");
	} else {
		wp_route_cerr(c, o, pn, field,
		              "type must be ReplaceFullPath or ReplacePrefixMatch, got %s", type);
		return false;
	}
	if (!v || v[0] != '/' || strpbrk(v, "?# \r\n")) {
		wp_route_cerr(c, o, pn, field, "%s needs an absolute path without query",
		              pm->type == WP_ROUTE_REWRITE_FULL ? "replaceFullPath"
		                                                : "replacePrefixMatch");
		return false;
	}
	pm->value = astrdup(c, v);
	pm->value_len = (uint32_t)strlen(v);
	return !c->oom;
}

static bool parse_filters(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *fs,
                          const char *field, struct wp_route_rule *r,
                          struct wp_route_mirror **mirrors)
{
	uint32_t i = 0, nm = 0;
	bool seen_req = false, seen_resp = false;
	char f[160];

	if (!fs)
		return true;
	if (fs->type != WP_YNODE_SEQ) {
		wp_route_cerr(c, o, fs, field, "expected a list");
		return false;
	}
	*mirrors = aalloc(c, sizeof(**mirrors) * (fs->n + 1));
	if (!*mirrors)
		return false;
	for (const struct wp_ynode *e = fs->child; e; e = e->next, i++) {
		const char *type = sget(e, "type");

		fieldf(f, sizeof(f), "%s[%u]", field, i);
		if (e->type != WP_YNODE_MAP || !type) {
			wp_route_cerr(c, o, e, f, "type is required");
			return false;
		}
		if (!strcmp(type, "RequestHeaderModifier")) {
			const struct wp_ynode *hm = nget(e, "requestHeaderModifier");

			fieldf(f, sizeof(f), "%s[%u].requestHeaderModifier", field, i);
			if (seen_req || !hm) {
				wp_route_cerr(c, o, e, f,
				              seen_req ? "at most one per rule" : "required");
				return false;
			}
			seen_req = true;
			if (!parse_hdr_mod(c, o, hm, f, &r->req_mods, false, NULL))
				return false;
		} else if (!strcmp(type, "ResponseHeaderModifier")) {
			const struct wp_ynode *hm = nget(e, "responseHeaderModifier");

			fieldf(f, sizeof(f), "%s[%u].responseHeaderModifier", field, i);
			if (seen_resp || !hm) {
				wp_route_cerr(c, o, e, f,
				              seen_resp ? "at most one per rule" : "required");
				return false;
			}
			seen_resp = true;
			if (!parse_hdr_mod(c, o, hm, f, &r->resp_mods, false, NULL))
				return false;
		} else if (!strcmp(type, "URLRewrite")) {
			const struct wp_ynode *u = nget(e, "urlRewrite");
			const char *host = sget(u, "hostname");

			fieldf(f, sizeof(f), "%s[%u].urlRewrite", field, i);
			if ((r->flags & (WP_ROUTE_F_REWRITE | WP_ROUTE_F_REDIRECT)) || !u) {
				wp_route_cerr(c, o, e, f,
				              u ? "URLRewrite and RequestRedirect: one, once"
				                : "required");
				return false;
			}
			r->flags |= WP_ROUTE_F_REWRITE;
			if (host && (!*host || strpbrk(host, " /\r\n"))) {
				wp_route_cerr(c, o, u, f, "invalid hostname \"%s\"", host);
				return false;
			}
			if (host &&
			    !parse_hdr_mod(c, o, NULL, f, &r->req_mods, true, astrdup(c, host)))
				return false;
			fieldf(f, sizeof(f), "%s[%u].urlRewrite.path", field, i);
			if (!parse_path_mod(c, o, nget(u, "path"), f, &r->rewrite))
				return false;
		} else if (!strcmp(type, "RequestRedirect")) {
			const struct wp_ynode *rd = nget(e, "requestRedirect");
			const char *scheme = sget(rd, "scheme"), *host = sget(rd, "hostname"),
			           *port = sget(rd, "port"), *code = sget(rd, "statusCode");
			uint32_t v;

			fieldf(f, sizeof(f), "%s[%u].requestRedirect", field, i);
			if ((r->flags & (WP_ROUTE_F_REWRITE | WP_ROUTE_F_REDIRECT)) || !rd) {
				wp_route_cerr(c, o, e, f,
				              rd ? "URLRewrite and RequestRedirect: one, once"
				                 : "required");
				return false;
			}
			r->flags |= WP_ROUTE_F_REDIRECT;
			r->redirect.status = 302;
			if (scheme && strcmp(scheme, "http") && strcmp(scheme, "https")) {
				wp_route_cerr(c, o, rd, f, "scheme must be http or https, got %s",
				              scheme);
				return false;
			}
			if (host && (!*host || strpbrk(host, " /\r\n"))) {
				wp_route_cerr(c, o, rd, f, "invalid hostname \"%s\"", host);
				return false;
			}
			if (port) {
				if (!parse_u32(port, 65535, &v) || !v) {
					wp_route_cerr(c, o, rd, f, "port must be 1..65535, got %s",
					              port);
					return false;
				}
				r->redirect.port = (uint16_t)v;
			}
			if (code) {
				if (!parse_u32(code, 999, &v) ||
				    (v != 301 && v != 302 && v != 303 && v != 307 && v != 308)) {
					wp_route_cerr(c, o, rd, f,
					              "statusCode must be 301, 302, 303, 307 or "
					              "308, got %s",
					              code);
					return false;
				}
				r->redirect.status = (uint16_t)v;
			}
			r->redirect.scheme = scheme ? astrdup(c, scheme) : NULL;
			r->redirect.hostname = host ? astrdup(c, host) : NULL;
			fieldf(f, sizeof(f), "%s[%u].requestRedirect.path", field, i);
			if (!parse_path_mod(c, o, nget(rd, "path"), f, &r->redirect.path))
				return false;
		} else if (!strcmp(type, "RequestMirror")) {
			const struct wp_ynode *mn = nget(e, "requestMirror"), *fr;
			const char *pct = sget(mn, "percent");
			uint32_t pm = 1000000, v, d;

			fieldf(f, sizeof(f), "%s[%u].requestMirror", field, i);
			if (!mn || !nget(mn, "backendRef")) {
				wp_route_cerr(c, o, e, f, "backendRef is required");
				return false;
			}
			fr = nget(mn, "fraction");
			if (pct) {
				if (!parse_u32(pct, 100, &v)) {
					wp_route_cerr(c, o, mn, f, "percent must be 0..100, got %s",
					              pct);
					return false;
				}
				pm = v * 10000;
			} else if (fr) {
				const char *nu = sget(fr, "numerator"),
				           *de = sget(fr, "denominator");

				if (!nu || !parse_u32(nu, 1000000, &v) ||
				    (de && (!parse_u32(de, 1000000, &d) || !d)) ||
				    (de ? v > d : v > 100)) {
					wp_route_cerr(c, o, fr, f,
					              "fraction needs numerator <= denominator");
					return false;
				}
				pm = (uint32_t)((uint64_t)v * 1000000 / (de ? d : 100));
			}
			fieldf(f, sizeof(f), "%s[%u].requestMirror.backendRef", field, i);
			(*mirrors)[nm].cluster = backend_cluster(c, o, nget(mn, "backendRef"), f);
			(*mirrors)[nm].per_million = pm;
			if ((*mirrors)[nm].cluster == NO_CLUSTER)
				return false;
			nm++;
		} else {
			wp_route_cerr(c, o, wp_ynode_get(e, "type"), f,
			              "unsupported filter type %s", type);
			return false;
		}
	}
	r->n_mirrors = (uint16_t)nm;
	r->mirrors = *mirrors;
	return !c->oom;
}

void wp_route_retry_default(struct wp_route_retry *rt)
{
	memset(rt, 0, sizeof(*rt));
	rt->attempts = 2;
	rt->on = WP_ROUTE_RETRY_CONNECT_FAILURE | WP_ROUTE_RETRY_REFUSED_STREAM |
	         WP_ROUTE_RETRY_UNAVAILABLE | WP_ROUTE_RETRY_CANCELLED;
	rt->n_codes = 1;
	rt->codes[0] = 503;
}

/* A rule's `retry` as istiod converts it: retryOn connect-failure,
 * refused-stream, unavailable, cancelled plus the rule's codes (none: no
 * status is retried), attempts (default 2; 0 disables retries), backoff as
 * the base interval. */
static bool parse_retry(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rn,
                        const char *field, struct wp_route_retry *rt)
{
	const char *att = sget(rn, "attempts"), *bo = sget(rn, "backoff");
	const struct wp_ynode *codes = nget(rn, "codes");
	uint32_t v;

	if (!rn)
		return true;
	if (rn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, rn, field, "expected a mapping");
		return false;
	}
	rt->n_codes = 0;
	if (att) {
		if (!parse_u32(att, 1000, &v)) {
			wp_route_cerr(c, o, rn, field, "attempts must be 0..1000, got %s", att);
			return false;
		}
		rt->attempts = (uint16_t)v;
	}
	if (bo && wp_route_parse_duration(bo, &rt->backoff_ms)) {
		wp_route_cerr(c, o, rn, field, "backoff is not a duration: %s", bo);
		return false;
	}
	if (codes) {
		if (codes->type != WP_YNODE_SEQ || codes->n > WP_ROUTE_RETRY_MAX_CODES) {
			wp_route_cerr(c, o, codes, field,
			              "codes must be a list of at most %d statuses",
			              WP_ROUTE_RETRY_MAX_CODES);
			return false;
		}
		for (const struct wp_ynode *e = codes->child; e; e = e->next) {
			if (!parse_u32(scalar(e), 599, &v) || v < 400) {
				wp_route_cerr(c, o, e, field, "codes must be 400..599");
				return false;
			}
			rt->codes[rt->n_codes++] = (uint16_t)v;
		}
	}
	if (rt->attempts == 0)
		memset(rt, 0, sizeof(*rt));
	return true;
}

/* Parses one rule; commits it (matches, regexes) when it is valid. */
void wp_route_parse_rule(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rn,
                         uint32_t ri)
{
	struct wp_route_rule r = {0};
	const struct wp_ynode *ms = nget(rn, "matches"), *bs = nget(rn, "backendRefs"),
	                      *to = nget(rn, "timeouts");
	struct wp_route_mirror *mirrors = NULL;
	struct wp_route_backend *be = NULL;
	char f[160];
	uint32_t mi = 0;

	c->n_pend = 0;
	c->n_mpend = 0;
	r.route_ns = astrdup(c, o->meta.ns);
	r.route_name = astrdup(c, o->meta.name);
	r.index = ri;
	wp_route_retry_default(&r.retry);
	if (rn->type != WP_YNODE_MAP) {
		fieldf(f, sizeof(f), "spec.rules[%u]", ri);
		wp_route_cerr(c, o, rn, f, "expected a mapping");
		return;
	}
	/* matches (none = one PathPrefix "/") */
	if (ms && ms->type != WP_YNODE_SEQ) {
		fieldf(f, sizeof(f), "spec.rules[%u].matches", ri);
		wp_route_cerr(c, o, ms, f, "expected a list");
		return;
	}
	for (const struct wp_ynode *mn = ms ? ms->child : NULL;; mn = mn->next, mi++) {
		struct tmatch *tm;

		if (!mn && mi > 0)
			break;
		if (!GROW(c, c->mpend, c->n_mpend, c->cap_mpend))
			return;
		tm = &c->mpend[c->n_mpend];
		memset(tm, 0, sizeof(*tm));
		tm->m = aalloc(c, sizeof(*tm->m));
		if (!tm->m)
			return;
		fieldf(f, sizeof(f), "spec.rules[%u].matches[%u]", ri, mi);
		if (!parse_match(c, o, mn, f, tm->m))
			return;
		tm->route = o;
		tm->rule_idx = ri;
		tm->match_idx = mi;
		c->n_mpend++;
		if (!mn)
			break;
	}
	fieldf(f, sizeof(f), "spec.rules[%u].filters", ri);
	if (!parse_filters(c, o, nget(rn, "filters"), f, &r, &mirrors))
		return;
	if (r.flags & WP_ROUTE_F_REDIRECT && bs && bs->n) {
		fieldf(f, sizeof(f), "spec.rules[%u]", ri);
		wp_route_cerr(c, o, rn, f, "RequestRedirect cannot be combined with backendRefs");
		return;
	}
	if (((r.flags & WP_ROUTE_F_REWRITE) && r.rewrite.type == WP_ROUTE_REWRITE_PREFIX) ||
	    ((r.flags & WP_ROUTE_F_REDIRECT) && r.redirect.path.type == WP_ROUTE_REWRITE_PREFIX)) {
		for (uint32_t i = 0; i < c->n_mpend; i++)
			if (c->mpend[i].m->path_type != WP_ROUTE_PATH_PREFIX) {
				fieldf(f, sizeof(f), "spec.rules[%u].filters", ri);
				wp_route_cerr(
				        c, o, rn, f,
				        "ReplacePrefixMatch needs every match of the rule to be a "
				        "PathPrefix");
				return;
			}
	}
	if (to) {
		const char *rq = sget(to, "request"), *bq = sget(to, "backendRequest");

		fieldf(f, sizeof(f), "spec.rules[%u].timeouts", ri);
		if ((rq && wp_route_parse_duration(rq, &r.request_timeout_ms)) ||
		    (bq && wp_route_parse_duration(bq, &r.backend_timeout_ms))) {
			wp_route_cerr(c, o, to, f, "not a duration: %s", rq ? rq : bq);
			return;
		}
		if (r.request_timeout_ms && r.backend_timeout_ms > r.request_timeout_ms) {
			wp_route_cerr(c, o, to, f, "backendRequest must not exceed request");
			return;
		}
	}
	fieldf(f, sizeof(f), "spec.rules[%u].retry", ri);
	if (!parse_retry(c, o, nget(rn, "retry"), f, &r.retry))
		return;
	if (bs) {
		uint32_t i = 0;

		if (bs->type != WP_YNODE_SEQ) {
			fieldf(f, sizeof(f), "spec.rules[%u].backendRefs", ri);
			wp_route_cerr(c, o, bs, f, "expected a list");
			return;
		}
		be = aalloc(c, sizeof(*be) * (bs->n + 1));
		if (!be)
			return;
		for (const struct wp_ynode *b = bs->child; b; b = b->next, i++) {
			const char *w = sget(b, "weight");
			uint32_t wv = 1;

			fieldf(f, sizeof(f), "spec.rules[%u].backendRefs[%u]", ri, i);
			if (w && !parse_u32(w, 1000000, &wv)) {
				wp_route_cerr(c, o, b, f, "weight must be 0..1000000, got %s", w);
				return;
			}
			if (nget(b, "filters")) {
				wp_route_cerr(c, o, b, f,
				              "per-backend filters are not supported (backend "
				              "answers 500)");
				be[i].cluster = NO_CLUSTER;
			} else {
				be[i].cluster = backend_cluster(c, o, b, f);
			}
			be[i].weight = wv;
			r.total_weight += wv;
		}
		r.backends = be;
		r.n_backends = (uint16_t)i;
	}
	wp_route_commit_rule(c, &r);
}

void wp_route_commit_rule(struct cctx *c, const struct wp_route_rule *r)
{
	if (c->oom || !GROW(c, c->rules, c->n_rules, c->cap_rules))
		return;
	for (uint32_t i = 0; i < c->n_pend; i++) {
		if (!GROW(c, c->re, c->n_re, c->cap_re))
			return;
		c->re[c->n_re++] = c->pend[i];
	}
	for (uint32_t i = 0; i < c->n_mpend; i++) {
		if (!GROW(c, c->m, c->n_m, c->cap_m))
			return;
		c->mpend[i].m->rule = c->n_rules;
		c->m[c->n_m++] = c->mpend[i];
	}
	c->rules[c->n_rules++] = *r;
}
