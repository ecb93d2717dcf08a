/*
 * Route compilation (see route_compile.h and dp/l7/route.h).
 *
 * One pass per attached HTTPRoute rule: its matches, filters, backendRefs,
 * timeouts and retry are parsed from the spec node tree into arena memory;
 * regexes are test-compiled with Hyperscan one by one so that a pattern
 * Hyperscan refuses rejects only its rule. An accepted rule commits its
 * matches (with their precedence keys) and regexes. Then the matches are
 * sorted by Gateway API precedence, the regexes of each request field are
 * compiled into one database, and every (service, port, subset) a rule or
 * the default route reaches becomes a cluster with its own wp_lb_table built
 * from the best DestinationRule for its host.
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
#include <strings.h>

#include <hs.h>
#include <llhttp.h>

#include "route_compile.h"
#include "wp/model.h"

/* Writes a field path for an error message ("spec.rules[0].matches[1]");
 * a path longer than the buffer is cut, which only shortens the message. */
__attribute__((format(printf, 3, 4))) static void fieldf(char *buf, size_t len, const char *fmt,
                                                         ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

#define NO_CLUSTER UINT32_MAX

/* A match with its precedence key. */
struct tmatch {
	struct wp_route_match *m; /* arena: regex ids are written into it later */
	const struct wp_obj *route;
	uint32_t rule_idx; /* index in the route */
	uint32_t match_idx;
};

/* A regex waiting for its rule to be accepted. */
struct tre {
	uint8_t kind; /* enum wp_route_field_kind */
	const char *name;
	uint16_t name_len;
	const char *pattern;
	uint32_t *id_out;
	uint16_t *field_out;
};

struct tfield {
	uint8_t kind;
	const char *name;
	uint16_t name_len;
	uint32_t n_re;
};

struct lbspec {
	enum wp_lb_policy policy;
	uint8_t hash_key;
	const char *hash_name;
	uint32_t ring_min;
	uint32_t maglev;
};

struct cctx {
	const struct wp_route_compile_in *in;
	struct wp_route_table *t;
	struct wp_arena *a;
	const char *domain;
	bool oom;
	char **errv;
	uint32_t n_err, cap_err;
	struct wp_route_cluster *cl;
	uint32_t n_cl, cap_cl;
	struct wp_route_rule *rules;
	uint32_t n_rules, cap_rules;
	struct tmatch *m;
	uint32_t n_m, cap_m;
	struct tre *re; /* committed */
	uint32_t n_re, cap_re;
	struct tre *pend; /* of the rule being parsed */
	uint32_t n_pend, cap_pend;
	struct tmatch *mpend;
	uint32_t n_mpend, cap_mpend;
	struct tfield *f;
	uint32_t n_f, cap_f;
};

static bool grow(struct cctx *c, void **v, uint32_t *cap, uint32_t n, size_t sz)
{
	void *nv;
	uint32_t nc;

	if (n < *cap)
		return true;
	nc = *cap ? *cap * 2 : 8;
	nv = realloc(*v, nc * sz);
	if (!nv) {
		c->oom = true;
		return false;
	}
	*v = nv;
	*cap = nc;
	return true;
}

#define GROW(c, arr, n, cap) grow((c), (void **)&(arr), &(cap), (n), sizeof(*(arr)))

static void cerr(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *at,
                 const char *field, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Records "ORIGIN:LINE: KIND NS/NAME: FIELD: problem" (deduplicated). */
static void cerr(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *at,
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

static void *aalloc(struct cctx *c, size_t n)
{
	void *p = wp_arena_alloc(c->a, n ? n : 1);

	if (!p)
		c->oom = true;
	return p;
}

static const char *astrdup(struct cctx *c, const char *s)
{
	char *p = wp_arena_strdup(c->a, s);

	if (!p && s)
		c->oom = true;
	return p;
}

static const char *scalar(const struct wp_ynode *n)
{
	return n && n->type == WP_YNODE_SCALAR && !wp_ynode_is_null(n) ? n->value : NULL;
}

static const char *sget(const struct wp_ynode *map, const char *key)
{
	return map && map->type == WP_YNODE_MAP ? scalar(wp_ynode_get(map, key)) : NULL;
}

static const struct wp_ynode *nget(const struct wp_ynode *map, const char *key)
{
	const struct wp_ynode *n = map && map->type == WP_YNODE_MAP ? wp_ynode_get(map, key) : NULL;

	return wp_ynode_is_null(n) ? NULL : n;
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (!s || !*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	*out = (uint32_t)v;
	return true;
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

/* RFC 7230 token characters (header names). */
static bool is_token(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch))
			return false;
	}
	return true;
}

static const char *lower_dup(struct cctx *c, const char *s)
{
	size_t n = strlen(s);
	char *p = aalloc(c, n + 1);

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
	return p;
}

/* ---- regexes ----------------------------------------------------------------- */

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

/* Queues a regex of the rule being parsed; false (and an error) if
 * Hyperscan refuses it. */
static bool re_add(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *at,
                   const char *field, uint8_t kind, const char *name, const char *pattern,
                   uint32_t *id_out, uint16_t *field_out)
{
	char why[256];

	if (!re_check(pattern, why, sizeof(why))) {
		cerr(c, o, at, field, "regular expression \"%s\" rejected: %s", pattern, why);
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

/* ---- matches ------------------------------------------------------------------ */

static bool method_of(const char *s, uint8_t *out)
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
		cerr(c, o, seq, field, "expected a list");
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
			cerr(c, o, e, f, "expected a mapping");
			return false;
		}
		if (!name || !value) {
			cerr(c, o, e, f, "name and value are required");
			return false;
		}
		if (header ? !is_token(name) : !*name) {
			cerr(c, o, wp_ynode_get(e, "name"), f, "invalid name \"%s\"", name);
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
			if (!re_add(c, o, wp_ynode_get(e, "value"), f,
			            header ? WP_ROUTE_FIELD_HEADER : WP_ROUTE_FIELD_QUERY,
			            kv[n].name, kv[n].value, &kv[n].re, &kv[n].field))
				return false;
		} else {
			cerr(c, o, wp_ynode_get(e, "type"), f,
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
		cerr(c, o, mn, field, "expected a mapping");
		return false;
	}
	if (path) {
		const char *type = sget(path, "type"), *value = sget(path, "value");

		fieldf(f, sizeof(f), "%s.path", field);
		if (path->type != WP_YNODE_MAP) {
			cerr(c, o, path, f, "expected a mapping");
			return false;
		}
		if (!value)
			value = "/";
		if (!type || !strcmp(type, "PathPrefix")) {
			size_t n = strlen(value);

			if (value[0] != '/') {
				cerr(c, o, path, f,
				     "PathPrefix value must start with '/', got \"%s\"", value);
				return false;
			}
			/* "/foo/" behaves as "/foo"; "/" keeps nothing: matches all */
			while (n > 0 && value[n - 1] == '/')
				n--;
			m->path = wp_arena_strndup(c->a, value, n);
			m->path_len = (uint32_t)n;
		} else if (!strcmp(type, "Exact")) {
			if (value[0] != '/') {
				cerr(c, o, path, f, "Exact value must start with '/', got \"%s\"",
				     value);
				return false;
			}
			m->path_type = WP_ROUTE_PATH_EXACT;
			m->path = astrdup(c, value);
			m->path_len = (uint32_t)strlen(value);
		} else if (!strcmp(type, "RegularExpression")) {
			m->path_type = WP_ROUTE_PATH_REGEX;
			m->path = astrdup(c, value);
			m->path_len = (uint32_t)strlen(value);
			if (!re_add(c, o, wp_ynode_get(path, "value"), f, WP_ROUTE_FIELD_PATH, NULL,
			            m->path, &m->path_re, &m->path_field))
				return false;
		} else {
			cerr(c, o, wp_ynode_get(path, "type"), f,
			     "type must be Exact, PathPrefix or RegularExpression, got %s", type);
			return false;
		}
		if (!m->path) {
			c->oom = true;
			return false;
		}
	}
	if (method) {
		if (!method_of(method, &m->method)) {
			fieldf(f, sizeof(f), "%s.method", field);
			cerr(c, o, wp_ynode_get(mn, "method"), f, "unknown method %s", method);
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

/* ---- clusters -------------------------------------------------------------------- */

static const char *svc_host(struct cctx *c, const char *ns, const char *name)
{
	return wp_arena_sprintf(c->a, "%s.%s.svc.%s", name, ns, c->domain);
}

/* 2 exact, 1 wildcard, 0 no match. */
static int dr_host_match(struct cctx *c, const struct wp_obj *dr, const char *fqdn)
{
	const char *h = dr->u.dr.host;
	char buf[512];

	if (!h)
		return 0;
	if (!strchr(h, '.') && strcmp(h, "*")) {
		snprintf(buf, sizeof(buf), "%s.%s.svc.%s", h, dr->meta.ns, c->domain);
		h = buf;
	}
	if (!strcasecmp(h, fqdn))
		return 2;
	if (h[0] == '*') {
		size_t hl = strlen(h + 1), fl = strlen(fqdn);

		return fl >= hl && !strcasecmp(fqdn + fl - hl, h + 1) ? 1 : 0;
	}
	return 0;
}

/* Best DestinationRule for a host: exact beats wildcard, then the oldest,
 * then ns/name. */
static const struct wp_obj *dr_for(struct cctx *c, const char *fqdn)
{
	const struct wp_obj *best = NULL;
	int bs = 0;

	for (uint32_t i = 0; i < c->in->n_drs; i++) {
		const struct wp_obj *d = c->in->drs[i];
		int s = dr_host_match(c, d, fqdn);
		int cmp;

		if (!s || s < bs)
			continue;
		if (best && s == bs) {
			int64_t ta = d->meta.created ? d->meta.created : INT64_MAX;
			int64_t tb = best->meta.created ? best->meta.created : INT64_MAX;

			if (ta != tb) {
				if (ta > tb)
					continue;
			} else {
				cmp = strcmp(d->meta.ns, best->meta.ns);
				if (!cmp)
					cmp = strcmp(d->meta.name, best->meta.name);
				if (cmp > 0)
					continue;
			}
		}
		best = d;
		bs = s;
	}
	return best;
}

/* Applies a loadBalancer node onto *lb; errors leave the default. */
static void lb_parse(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *lbn,
                     const char *field, struct lbspec *lb)
{
	const char *simple = sget(lbn, "simple");
	const struct wp_ynode *ch = nget(lbn, "consistentHash");
	char f[200];

	if (!lbn)
		return;
	if (lbn->type != WP_YNODE_MAP) {
		cerr(c, dr, lbn, field, "expected a mapping");
		return;
	}
	if (simple && ch) {
		cerr(c, dr, lbn, field, "simple and consistentHash are exclusive");
		return;
	}
	if (simple) {
		fieldf(f, sizeof(f), "%s.simple", field);
		if (!strcmp(simple, "ROUND_ROBIN"))
			lb->policy = WP_LB_ROUND_ROBIN;
		else if (!strcmp(simple, "LEAST_REQUEST") || !strcmp(simple, "LEAST_CONN") ||
		         !strcmp(simple, "UNSPECIFIED"))
			lb->policy = WP_LB_LEAST_REQUEST;
		else if (!strcmp(simple, "RANDOM"))
			lb->policy = WP_LB_RANDOM;
		else
			cerr(c, dr, wp_ynode_get(lbn, "simple"), f,
			     "unsupported policy %s (ROUND_ROBIN, LEAST_REQUEST, RANDOM)", simple);
		lb->hash_key = WP_ROUTE_HASH_NONE;
		return;
	}
	if (!ch)
		return;
	if (ch->type != WP_YNODE_MAP) {
		fieldf(f, sizeof(f), "%s.consistentHash", field);
		cerr(c, dr, ch, f, "expected a mapping");
		return;
	}
	{
		struct lbspec n = {.policy = WP_LB_RING_HASH};
		const char *hh = sget(ch, "httpHeaderName"),
		           *qp = sget(ch, "httpQueryParameterName"), *sip = sget(ch, "useSourceIp");
		const struct wp_ynode *ck = nget(ch, "httpCookie"), *rh = nget(ch, "ringHash"),
		                      *mg = nget(ch, "maglev");
		const char *mrs = sget(ch, "minimumRingSize");
		int keys = !!hh + !!qp + !!ck + (sip && !strcmp(sip, "true"));

		fieldf(f, sizeof(f), "%s.consistentHash", field);
		if (keys != 1) {
			cerr(c, dr, ch, f,
			     "exactly one of httpHeaderName, httpCookie, useSourceIp, "
			     "httpQueryParameterName is required");
			return;
		}
		if (hh) {
			if (!is_token(hh)) {
				cerr(c, dr, ch, f, "invalid httpHeaderName \"%s\"", hh);
				return;
			}
			n.hash_key = WP_ROUTE_HASH_HEADER;
			n.hash_name = lower_dup(c, hh);
		} else if (qp) {
			n.hash_key = WP_ROUTE_HASH_QUERY;
			n.hash_name = astrdup(c, qp);
		} else if (ck) {
			const char *cn = sget(ck, "name");

			if (!cn || !*cn) {
				cerr(c, dr, ck, f, "httpCookie.name is required");
				return;
			}
			n.hash_key = WP_ROUTE_HASH_COOKIE;
			n.hash_name = astrdup(c, cn);
		} else {
			n.hash_key = WP_ROUTE_HASH_SOURCE_IP;
		}
		if (rh && mg) {
			cerr(c, dr, ch, f, "ringHash and maglev are exclusive");
			return;
		}
		if (mrs && !parse_u32(mrs, 1u << 23, &n.ring_min)) {
			cerr(c, dr, wp_ynode_get(ch, "minimumRingSize"), f,
			     "minimumRingSize must be 1..8388608, got %s", mrs);
			return;
		}
		if (rh) {
			const char *v = sget(rh, "minimumRingSize");

			if (v && !parse_u32(v, 1u << 23, &n.ring_min)) {
				cerr(c, dr, rh, f,
				     "ringHash.minimumRingSize must be 1..8388608, got %s", v);
				return;
			}
		}
		if (mg) {
			const char *v = sget(mg, "tableSize");

			n.policy = WP_LB_MAGLEV;
			if (v && (!parse_u32(v, 5000011, &n.maglev) || !wp_lb_is_prime(n.maglev))) {
				cerr(c, dr, mg, f,
				     "maglev.tableSize must be a prime up to 5000011, got %s", v);
				return;
			}
		}
		*lb = n;
	}
}

/* trafficPolicy (with portLevelSettings for <port>) onto *lb. */
static void tp_parse(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *tp,
                     const char *field, uint16_t port, struct lbspec *lb)
{
	const struct wp_ynode *pls;
	char f[200];
	uint32_t i = 0;

	if (!tp)
		return;
	if (tp->type != WP_YNODE_MAP) {
		cerr(c, dr, tp, field, "expected a mapping");
		return;
	}
	fieldf(f, sizeof(f), "%s.loadBalancer", field);
	lb_parse(c, dr, nget(tp, "loadBalancer"), f, lb);
	pls = nget(tp, "portLevelSettings");
	if (!pls || pls->type != WP_YNODE_SEQ)
		return;
	for (const struct wp_ynode *e = pls->child; e; e = e->next, i++) {
		const char *num = sget(nget(e, "port"), "number");
		uint32_t p;

		if (num && parse_u32(num, 65535, &p) && p == port) {
			fieldf(f, sizeof(f), "%s.portLevelSettings[%u].loadBalancer", field, i);
			lb_parse(c, dr, nget(e, "loadBalancer"), f, lb);
		}
	}
}

static bool labels_match(const struct wp_ynode *sel, const struct wp_labels *l)
{
	if (!sel)
		return true;
	for (const struct wp_ynode *kv = sel->child; kv; kv = kv->next) {
		const char *v = l ? wp_labels_get(l, kv->key) : NULL;

		if (!v || !kv->value || strcmp(v, kv->value))
			return false;
	}
	return true;
}

static uint32_t cluster_find(struct cctx *c, const char *ns, const char *name, uint16_t port,
                             const char *subset)
{
	for (uint32_t i = 0; i < c->n_cl; i++) {
		const struct wp_route_cluster *k = &c->cl[i];

		if (k->port == port && !strcmp(k->svc_ns, ns) && !strcmp(k->svc_name, name) &&
		    ((!k->subset && !subset) ||
		     (k->subset && subset && !strcmp(k->subset, subset))))
			return i;
	}
	return NO_CLUSTER;
}

/* Adds one cluster over eps[] (only ready ones, only those whose labels
 * match <sel>). */
static uint32_t cluster_add(struct cctx *c, const char *ns, const char *name, uint16_t port,
                            const char *subset, const struct wp_route_svc_eps *se,
                            const struct wp_ynode *sel, const struct lbspec *lb, const char *fqdn)
{
	struct wp_route_cluster *k;
	struct wp_snap_endpoint *eps;
	struct wp_lb_endpoint *lbe;
	struct wp_lb_params prm = {0};
	uint32_t n = 0;

	if (!GROW(c, c->cl, c->n_cl, c->cap_cl))
		return NO_CLUSTER;
	eps = aalloc(c, sizeof(*eps) * (se->n + 1));
	lbe = calloc(se->n + 1, sizeof(*lbe));
	if (!eps || !lbe) {
		free(lbe);
		c->oom = true;
		return NO_CLUSTER;
	}
	for (uint32_t i = 0; i < se->n; i++) {
		if (!se->eps[i].ready || !labels_match(sel, se->labels ? se->labels[i] : NULL))
			continue;
		eps[n] = se->eps[i];
		lbe[n].addr = se->eps[i].addr;
		lbe[n].port = se->eps[i].port;
		lbe[n].weight = 1;
		n++;
	}
	prm.policy = lb->policy;
	prm.ring_min_size = lb->ring_min;
	prm.maglev_size = lb->maglev;
	k = &c->cl[c->n_cl];
	memset(k, 0, sizeof(*k));
	k->lb = wp_lb_table_build(&prm, lbe, n);
	if (!k->lb && errno == EINVAL) {
		/* e.g. a maglev table not larger than the endpoint count */
		prm.maglev_size = 0;
		prm.ring_min_size = 0;
		k->lb = wp_lb_table_build(&prm, lbe, n);
	}
	free(lbe);
	if (!k->lb) {
		c->oom = true;
		return NO_CLUSTER;
	}
	k->svc_ns = astrdup(c, ns);
	k->svc_name = astrdup(c, name);
	k->subset = subset ? astrdup(c, subset) : NULL;
	k->port = port;
	k->name = wp_arena_sprintf(c->a, "outbound|%u|%s|%s", port, subset ? subset : "", fqdn);
	k->endpoints = eps;
	k->n_endpoints = n;
	if (lb->policy == WP_LB_RING_HASH || lb->policy == WP_LB_MAGLEV) {
		k->hash_key = lb->hash_key;
		k->hash_name = lb->hash_name;
		k->hash_name_len = (uint16_t)(lb->hash_name ? strlen(lb->hash_name) : 0);
	}
	if (!k->svc_ns || !k->svc_name || !k->name) {
		c->oom = true;
		wp_lb_table_free(k->lb);
		return NO_CLUSTER;
	}
	return c->n_cl++;
}

/*
 * The cluster for Service ns/name port <port> (and its DestinationRule
 * subsets, built alongside). Returns NO_CLUSTER with *why set when the
 * Service or port does not exist.
 */
static uint32_t cluster_get(struct cctx *c, const char *ns, const char *name, uint16_t port,
                            const char *subset, const char **why)
{
	struct wp_route_svc_eps se = {0};
	const struct wp_obj *dr;
	const struct wp_ynode *subsets;
	struct lbspec base = {.policy = WP_LB_LEAST_REQUEST};
	const char *fqdn;
	uint32_t idx;
	int rc;

	idx = cluster_find(c, ns, name, port, subset);
	if (idx != NO_CLUSTER)
		return idx;
	if (cluster_find(c, ns, name, port, NULL) != NO_CLUSTER) {
		*why = "no such subset";
		return NO_CLUSTER; /* the service is built; the subset does not exist */
	}
	rc = c->in->lookup(c->in->ctx, ns, name, port, c->a, &se);
	if (rc == -ENOMEM) {
		c->oom = true;
		return NO_CLUSTER;
	}
	if (rc) {
		*why = rc == -ESRCH ? "the Service has no such port" : "no such Service";
		return NO_CLUSTER;
	}
	fqdn = svc_host(c, ns, name);
	if (!fqdn) {
		c->oom = true;
		return NO_CLUSTER;
	}
	dr = dr_for(c, fqdn);
	if (dr && dr->spec)
		tp_parse(c, dr, nget(dr->spec, "trafficPolicy"), "spec.trafficPolicy", port, &base);
	idx = cluster_add(c, ns, name, port, NULL, &se, NULL, &base, fqdn);
	if (idx == NO_CLUSTER)
		return idx;
	subsets = dr && dr->spec ? nget(dr->spec, "subsets") : NULL;
	if (subsets && subsets->type == WP_YNODE_SEQ) {
		uint32_t i = 0;
		char f[96];

		for (const struct wp_ynode *s = subsets->child; s; s = s->next, i++) {
			const char *sn = sget(s, "name");
			const struct wp_ynode *labels = nget(s, "labels");
			struct lbspec lb = base;

			fieldf(f, sizeof(f), "spec.subsets[%u]", i);
			if (s->type != WP_YNODE_MAP || !sn || !*sn) {
				cerr(c, dr, s, f, "a subset needs a name");
				continue;
			}
			if (labels && labels->type != WP_YNODE_MAP) {
				cerr(c, dr, labels, f, "labels must be a mapping");
				continue;
			}
			if (cluster_find(c, ns, name, port, sn) != NO_CLUSTER) {
				cerr(c, dr, s, f, "duplicate subset name %s", sn);
				continue;
			}
			fieldf(f, sizeof(f), "spec.subsets[%u].trafficPolicy", i);
			tp_parse(c, dr, nget(s, "trafficPolicy"), f, port, &lb);
			if (cluster_add(c, ns, name, port, sn, &se, labels, &lb, fqdn) ==
			    NO_CLUSTER)
				return NO_CLUSTER;
		}
	} else if (subsets) {
		cerr(c, dr, subsets, "spec.subsets", "expected a list");
	}
	if (subset) {
		idx = cluster_find(c, ns, name, port, subset);
		if (idx == NO_CLUSTER)
			*why = "no such subset";
	}
	return idx;
}

/* ---- rules ------------------------------------------------------------------------- */

/* A backendRef-like node (backendRefs[i], requestMirror.backendRef). */
static uint32_t backend_cluster(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *b,
                                const char *field)
{
	const char *group = sget(b, "group"), *kind = sget(b, "kind"), *name = sget(b, "name"),
	           *ns = sget(b, "namespace"), *port = sget(b, "port"), *why = NULL;
	uint32_t p, idx;

	if (b->type != WP_YNODE_MAP) {
		cerr(c, o, b, field, "expected a mapping");
		return NO_CLUSTER;
	}
	if ((group && *group && strcmp(group, "core")) || (kind && strcmp(kind, "Service"))) {
		cerr(c, o, b, field, "only core Services are supported as backends, got %s%s%s",
		     group && *group ? group : "", group && *group ? "/" : "", kind ? kind : "");
		return NO_CLUSTER;
	}
	if (!name || !*name) {
		cerr(c, o, b, field, "name is required");
		return NO_CLUSTER;
	}
	if (!port || !parse_u32(port, 65535, &p) || !p) {
		cerr(c, o, b, field, "port is required for a Service backend");
		return NO_CLUSTER;
	}
	idx = cluster_get(c, ns ? ns : o->meta.ns, name, (uint16_t)p, NULL, &why);
	if (idx == NO_CLUSTER && !c->oom)
		cerr(c, o, b, field, "Service %s/%s port %u: %s", ns ? ns : o->meta.ns, name, p,
		     why ? why : "unresolved");
	return idx;
}

static bool parse_hdr_mod(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *hm,
                          const char *field, struct wp_http_hdr_mods *mods, bool add_host,
                          const char *host)
{
	const struct wp_ynode *set = nget(hm, "set"), *add = nget(hm, "add"),
	                      *rm = nget(hm, "remove");
	uint32_t ns = set && set->type == WP_YNODE_SEQ ? set->n : 0;
	struct wp_http_hdr *sv, *av = NULL, *rv = NULL;
	char f[200];

	if (hm && hm->type != WP_YNODE_MAP) {
		cerr(c, o, hm, field, "expected a mapping");
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
			cerr(c, o, seq, f, "expected a list");
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
				cerr(c, o, e, f, "[%u]: a valid header name is required", i);
				return false;
			}
			if (!value)
				value = "";
			if (strpbrk(value, "\r\n")) {
				cerr(c, o, e, f, "[%u]: value must not contain CR or LF", i);
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
	if (rm) {
		uint32_t i = 0;

		fieldf(f, sizeof(f), "%s.remove", field);
		if (rm->type != WP_YNODE_SEQ) {
			cerr(c, o, rm, f, "expected a list");
			return false;
		}
		rv = aalloc(c, sizeof(*rv) * (rm->n + 1));
		if (!rv)
			return false;
		for (const struct wp_ynode *e = rm->child; e; e = e->next, i++) {
			const char *name = scalar(e);

			if (!name || !is_token(name)) {
				cerr(c, o, e, f, "[%u]: a valid header name is required", i);
				return false;
			}
			rv[mods->n_remove].name = lower_dup(c, name);
			rv[mods->n_remove].name_len = (uint16_t)strlen(name);
			mods->n_remove++;
		}
		mods->remove = rv;
	}
	return !c->oom;
}

static bool parse_path_mod(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *pn,
                           const char *field, struct wp_route_path_mod *pm)
{
	const char *type = sget(pn, "type"), *v;

	if (!pn)
		return true;
	if (pn->type != WP_YNODE_MAP || !type) {
		cerr(c, o, pn, field, "type is required");
		return false;
	}
	if (!strcmp(type, "ReplaceFullPath")) {
		pm->type = WP_ROUTE_REWRITE_FULL;
		v = sget(pn, "replaceFullPath");
	} else if (!strcmp(type, "ReplacePrefixMatch")) {
		pm->type = WP_ROUTE_REWRITE_PREFIX;
		v = sget(pn, "replacePrefixMatch");
	} else {
		cerr(c, o, pn, field, "type must be ReplaceFullPath or ReplacePrefixMatch, got %s",
		     type);
		return false;
	}
	if (!v || v[0] != '/' || strpbrk(v, "?# \r\n")) {
		cerr(c, o, pn, field, "%s needs an absolute path without query",
		     pm->type == WP_ROUTE_REWRITE_FULL ? "replaceFullPath" : "replacePrefixMatch");
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
		cerr(c, o, fs, field, "expected a list");
		return false;
	}
	*mirrors = aalloc(c, sizeof(**mirrors) * (fs->n + 1));
	if (!*mirrors)
		return false;
	for (const struct wp_ynode *e = fs->child; e; e = e->next, i++) {
		const char *type = sget(e, "type");

		fieldf(f, sizeof(f), "%s[%u]", field, i);
		if (e->type != WP_YNODE_MAP || !type) {
			cerr(c, o, e, f, "type is required");
			return false;
		}
		if (!strcmp(type, "RequestHeaderModifier")) {
			const struct wp_ynode *hm = nget(e, "requestHeaderModifier");

			fieldf(f, sizeof(f), "%s[%u].requestHeaderModifier", field, i);
			if (seen_req || !hm) {
				cerr(c, o, e, f, seen_req ? "at most one per rule" : "required");
				return false;
			}
			seen_req = true;
			if (!parse_hdr_mod(c, o, hm, f, &r->req_mods, false, NULL))
				return false;
		} else if (!strcmp(type, "ResponseHeaderModifier")) {
			const struct wp_ynode *hm = nget(e, "responseHeaderModifier");

			fieldf(f, sizeof(f), "%s[%u].responseHeaderModifier", field, i);
			if (seen_resp || !hm) {
				cerr(c, o, e, f, seen_resp ? "at most one per rule" : "required");
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
				cerr(c, o, e, f,
				     u ? "URLRewrite and RequestRedirect: one, once" : "required");
				return false;
			}
			r->flags |= WP_ROUTE_F_REWRITE;
			if (host && (!*host || strpbrk(host, " /\r\n"))) {
				cerr(c, o, u, f, "invalid hostname \"%s\"", host);
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
				cerr(c, o, e, f,
				     rd ? "URLRewrite and RequestRedirect: one, once" : "required");
				return false;
			}
			r->flags |= WP_ROUTE_F_REDIRECT;
			r->redirect.status = 302;
			if (scheme && strcmp(scheme, "http") && strcmp(scheme, "https")) {
				cerr(c, o, rd, f, "scheme must be http or https, got %s", scheme);
				return false;
			}
			if (host && (!*host || strpbrk(host, " /\r\n"))) {
				cerr(c, o, rd, f, "invalid hostname \"%s\"", host);
				return false;
			}
			if (port) {
				if (!parse_u32(port, 65535, &v) || !v) {
					cerr(c, o, rd, f, "port must be 1..65535, got %s", port);
					return false;
				}
				r->redirect.port = (uint16_t)v;
			}
			if (code) {
				if (!parse_u32(code, 999, &v) ||
				    (v != 301 && v != 302 && v != 303 && v != 307 && v != 308)) {
					cerr(c, o, rd, f,
					     "statusCode must be 301, 302, 303, 307 or 308, got %s",
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
				cerr(c, o, e, f, "backendRef is required");
				return false;
			}
			fr = nget(mn, "fraction");
			if (pct) {
				if (!parse_u32(pct, 100, &v)) {
					cerr(c, o, mn, f, "percent must be 0..100, got %s", pct);
					return false;
				}
				pm = v * 10000;
			} else if (fr) {
				const char *nu = sget(fr, "numerator"),
				           *de = sget(fr, "denominator");

				if (!nu || !parse_u32(nu, 1000000, &v) ||
				    (de && (!parse_u32(de, 1000000, &d) || !d)) ||
				    (de ? v > d : v > 100)) {
					cerr(c, o, fr, f,
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
			cerr(c, o, wp_ynode_get(e, "type"), f, "unsupported filter type %s", type);
			return false;
		}
	}
	r->n_mirrors = (uint16_t)nm;
	r->mirrors = *mirrors;
	return !c->oom;
}

static void retry_default(struct wp_route_retry *rt)
{
	memset(rt, 0, sizeof(*rt));
	rt->attempts = 2;
	rt->on = WP_ROUTE_RETRY_CONNECT_FAILURE | WP_ROUTE_RETRY_REFUSED_STREAM |
	         WP_ROUTE_RETRY_UNAVAILABLE | WP_ROUTE_RETRY_CANCELLED;
	rt->n_codes = 1;
	rt->codes[0] = 503;
}

static bool parse_retry(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rn,
                        const char *field, struct wp_route_retry *rt)
{
	const char *att = sget(rn, "attempts"), *bo = sget(rn, "backoff");
	const struct wp_ynode *codes = nget(rn, "codes");
	uint32_t v;

	if (!rn)
		return true;
	if (rn->type != WP_YNODE_MAP) {
		cerr(c, o, rn, field, "expected a mapping");
		return false;
	}
	if (att) {
		if (!parse_u32(att, 1000, &v)) {
			cerr(c, o, rn, field, "attempts must be 0..1000, got %s", att);
			return false;
		}
		rt->attempts = (uint16_t)v;
	}
	if (bo && wp_route_parse_duration(bo, &rt->backoff_ms)) {
		cerr(c, o, rn, field, "backoff is not a duration: %s", bo);
		return false;
	}
	if (codes) {
		if (codes->type != WP_YNODE_SEQ || codes->n > WP_ROUTE_RETRY_MAX_CODES) {
			cerr(c, o, codes, field, "codes must be a list of at most %d statuses",
			     WP_ROUTE_RETRY_MAX_CODES);
			return false;
		}
		rt->n_codes = 0;
		for (const struct wp_ynode *e = codes->child; e; e = e->next) {
			if (!parse_u32(scalar(e), 599, &v) || v < 400) {
				cerr(c, o, e, field, "codes must be 400..599");
				return false;
			}
			rt->codes[rt->n_codes++] = (uint16_t)v;
		}
	}
	return true;
}

/* Parses one rule; commits it (matches, regexes) when it is valid. */
static void parse_rule(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rn,
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
	retry_default(&r.retry);
	if (rn->type != WP_YNODE_MAP) {
		fieldf(f, sizeof(f), "spec.rules[%u]", ri);
		cerr(c, o, rn, f, "expected a mapping");
		return;
	}
	/* matches (none = one PathPrefix "/") */
	if (ms && ms->type != WP_YNODE_SEQ) {
		fieldf(f, sizeof(f), "spec.rules[%u].matches", ri);
		cerr(c, o, ms, f, "expected a list");
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
		cerr(c, o, rn, f, "RequestRedirect cannot be combined with backendRefs");
		return;
	}
	if (((r.flags & WP_ROUTE_F_REWRITE) && r.rewrite.type == WP_ROUTE_REWRITE_PREFIX) ||
	    ((r.flags & WP_ROUTE_F_REDIRECT) && r.redirect.path.type == WP_ROUTE_REWRITE_PREFIX)) {
		for (uint32_t i = 0; i < c->n_mpend; i++)
			if (c->mpend[i].m->path_type != WP_ROUTE_PATH_PREFIX) {
				fieldf(f, sizeof(f), "spec.rules[%u].filters", ri);
				cerr(c, o, rn, f,
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
			cerr(c, o, to, f, "not a duration: %s", rq ? rq : bq);
			return;
		}
		if (r.request_timeout_ms && r.backend_timeout_ms > r.request_timeout_ms) {
			cerr(c, o, to, f, "backendRequest must not exceed request");
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
			cerr(c, o, bs, f, "expected a list");
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
				cerr(c, o, b, f, "weight must be 0..1000000, got %s", w);
				return;
			}
			if (nget(b, "filters")) {
				cerr(c, o, b, f,
				     "per-backend filters are not supported (backend answers 500)");
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
	if (c->oom)
		return;
	/* commit */
	if (!GROW(c, c->rules, c->n_rules, c->cap_rules))
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
	c->rules[c->n_rules++] = r;
}

/* ---- precedence ----------------------------------------------------------------------- */

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

/* ---- assembly ------------------------------------------------------------------------- */

static bool build_regex(struct cctx *c)
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

struct wp_route_table *wp_route_table_build(const struct wp_route_compile_in *in)
{
	struct cctx c = {.in = in};
	struct wp_route_table *t;
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
	dflt = cluster_get(&c, in->ns, in->name, in->port, NULL, &why);
	for (uint32_t i = 0; i < in->n_routes && !c.oom; i++) {
		const struct wp_obj *o = in->routes[i];
		const struct wp_ynode *rules = o->spec ? nget(o->spec, "rules") : NULL;
		uint32_t ri = 0;

		if (!attaches_port(o, in))
			continue;
		if (!rules) {
			/* Gateway API defaults rules to one catch-all rule to the parent;
			 * without backendRefs that rule answers 500 */
			static const struct wp_ynode empty = {.type = WP_YNODE_MAP};

			parse_rule(&c, o, &empty, 0);
			continue;
		}
		if (rules->type != WP_YNODE_SEQ) {
			cerr(&c, o, rules, "spec.rules", "expected a list");
			continue;
		}
		for (const struct wp_ynode *rn = rules->child; rn && !c.oom; rn = rn->next, ri++)
			parse_rule(&c, o, rn, ri);
	}
	if (c.oom)
		goto fail;
	if (!build_regex(&c)) {
		if (c.oom)
			goto fail;
		cerr(&c, in->n_routes ? in->routes[0] : NULL, NULL, "spec.rules",
		     "more than %d regular expressions on one service; routes with regexes dropped",
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
		retry_default(&d->retry);
	}
	if (c.n_m)
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
