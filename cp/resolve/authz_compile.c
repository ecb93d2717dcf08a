/*
 * AuthorizationPolicy -> struct wp_authz_table (see authz_compile.h and
 * wp/authz.h for the layout and the semantics).
 *
 * Each field (from.source / to.operation / when) of each entry refers to
 * one or two terms: the OR of its values, and the OR of its notValues (used
 * negated); rules that test the same value set share its term. Values are registered with the
 * request field they test: principals       exact / prefix / suffix literal on the principal, "*"
 *                    = a principal is present; trust-domain aliases expand
 *                    a value into one per alias (Istio's MigrateTrustDomain);
 *   namespaces       Istio's regex .*\/ns/<v>/.* over the principal;
 *   serviceAccounts  Istio's regex .+/ns/<ns>/(.+/|)sa/<sa>(/.+)? (both
 *                    rewritten without end anchors, same language);
 *   hosts            caseless literal on :authority as received, "*" =
 *                    present; methods, paths, request.headers[x], SNI
 *                    likewise (case-sensitive; "*" on paths / SNI = non-empty);
 *   ipBlocks, remoteIpBlocks, destination.ip   prefix tables;
 *   ports, destination.port                    the port table;
 *   requestPrincipals, request.auth.*          nothing: without
 *                    RequestAuthentication no JWT is ever validated, so
 *                    their values never match (and notValues always do).
 * Every pattern of one field goes into one Hyperscan database (literals
 * escaped byte by byte; see literal_pattern() for the anchoring).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hs.h>

#include "authz_compile.h"
#include "wp/hash.h"

#define DEFAULT_ROOT_NS "istio-system"
#define DEFAULT_TD      "cluster.local"

/* ---- growable arrays ------------------------------------------------------ */

struct vec {
	void *p;
	size_t n, cap, sz;
};

static void *vpush(struct vec *v)
{
	if (v->n == v->cap) {
		size_t nc = v->cap ? v->cap * 2 : 16;
		void *np = realloc(v->p, nc * v->sz);

		if (!np)
			return NULL;
		v->p = np;
		v->cap = nc;
	}
	return memset((char *)v->p + v->n++ * v->sz, 0, v->sz);
}

static int vpush_u32(struct vec *v, uint32_t x)
{
	uint32_t *p = vpush(v);

	if (!p)
		return -ENOMEM;
	*p = x;
	return 0;
}

#define VEC(type)                                                                                  \
	{                                                                                          \
		NULL, 0, 0, sizeof(type)                                                           \
	}

/* ---- builder state -------------------------------------------------------- */

struct bpat {
	char *expr;
	unsigned flags;
	uint8_t check;    /* enum wp_authz_check */
	struct vec terms; /* uint32_t */
};

/* A pattern as built: Hyperscan expression, flags and end check. */
struct pat {
	char *expr;
	unsigned flags;
	uint8_t check;
};

struct bfield {
	uint8_t kind;
	const char *name; /* header */
	struct vec pats;  /* struct bpat */
	struct vec present;
	/* expr -> pattern index, open addressing */
	uint32_t *slot;
	uint32_t nslot;
};

struct bip {
	struct wp_authz_key128 key;
	uint8_t family, len;
	uint32_t term;
};

struct bport {
	uint16_t port;
	uint32_t term;
};

struct bterm {
	uint8_t prio;     /* anchor preference: lower is more selective */
	uint8_t fireable; /* can ever be set */
};

struct build {
	const struct wp_authz_compile_in *in;
	struct wp_authz_table *t;
	bool oom;
	struct vec fields;     /* struct bfield */
	struct vec ips[3];     /* struct bip */
	struct vec ports;      /* struct bport */
	struct vec terms;      /* struct bterm */
	struct vec rules;      /* struct wp_authz_crule */
	struct vec groups;     /* struct wp_authz_span */
	struct vec entries;    /* struct wp_authz_span */
	struct vec conjs;      /* struct wp_authz_conj */
	struct vec pinfo;      /* struct wp_authz_pinfo */
	struct vec ignored;    /* struct wp_authz_ignored */
	struct vec errors;     /* const char * */
	const char *const *td; /* trust domain bundle: local first */
	uint32_t n_td;
	/* value set -> term, so that rules testing the same values (say
	 * methods: [GET]) share one term and a hit sets one bit */
	char **tkeys;
	uint32_t *tvals;
	uint32_t tn, tcap;
};

static uint64_t str_hash(const char *s, unsigned flags)
{
	uint64_t h = 1469598103934665603ULL ^ flags;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return wp_hash_mix64(h);
}

static struct bfield *field_get(struct build *b, uint8_t kind, const char *name)
{
	struct bfield *f = b->fields.p;

	for (size_t i = 0; i < b->fields.n; i++)
		if (f[i].kind == kind && (!name || !strcmp(f[i].name, name)))
			return &f[i];
	f = vpush(&b->fields);
	if (!f) {
		b->oom = true;
		return NULL;
	}
	f->kind = kind;
	f->name = name;
	f->pats.sz = sizeof(struct bpat);
	f->present.sz = sizeof(uint32_t);
	return f;
}

static int slot_grow(struct bfield *f)
{
	uint32_t n = f->nslot ? f->nslot * 2 : 64;
	uint32_t *s = malloc(sizeof(*s) * n);
	struct bpat *p = f->pats.p;

	if (!s)
		return -ENOMEM;
	memset(s, 0xff, sizeof(*s) * n);
	for (size_t i = 0; i < f->pats.n; i++) {
		uint64_t h = str_hash(p[i].expr, p[i].flags | (unsigned)p[i].check << 24);

		while (s[h & (n - 1)] != UINT32_MAX)
			h++;
		s[h & (n - 1)] = (uint32_t)i;
	}
	free(f->slot);
	f->slot = s;
	f->nslot = n;
	return 0;
}

/* Adds term to pattern pt of field f (deduplicated); takes pt.expr. */
static void add_pat(struct build *b, struct bfield *f, struct pat pt, uint32_t term)
{
	struct bpat *p;
	uint64_t h;
	uint32_t i;

	if (!pt.expr || !f) {
		free(pt.expr);
		b->oom = true;
		return;
	}
	if ((f->pats.n + 1) * 2 > f->nslot && slot_grow(f)) {
		free(pt.expr);
		b->oom = true;
		return;
	}
	h = str_hash(pt.expr, pt.flags | (unsigned)pt.check << 24);
	for (;; h++) {
		i = f->slot[h & (f->nslot - 1)];
		if (i == UINT32_MAX)
			break;
		p = (struct bpat *)f->pats.p + i;
		if (p->flags == pt.flags && p->check == pt.check && !strcmp(p->expr, pt.expr)) {
			free(pt.expr);
			goto add;
		}
	}
	p = vpush(&f->pats);
	if (!p) {
		free(pt.expr);
		b->oom = true;
		return;
	}
	i = (uint32_t)(f->pats.n - 1);
	p->expr = pt.expr;
	p->flags = pt.flags;
	p->check = pt.check;
	p->terms.sz = sizeof(uint32_t);
	f->slot[h & (f->nslot - 1)] = i;
add:
	p = (struct bpat *)f->pats.p + i;
	if (p->terms.n && ((uint32_t *)p->terms.p)[p->terms.n - 1] == term)
		return;
	if (vpush_u32(&p->terms, term))
		b->oom = true;
}
/* Appends s[0..n) to buf as a Hyperscan literal (every byte but [A-Za-z0-9]
 * as \xHH). */
static size_t lit(char *buf, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		}
	}
	return o;
}

/*
 * Patterns avoid end anchors, which Hyperscan serves far slower than
 * literals; the end is checked in the match callback instead
 * (enum wp_authz_check):
 *   exact    "\A<v>"   start-anchored literal, the match must end at the end;
 *   prefix*  "\A<v>"   start-anchored literal;
 *   *suffix  "<v>"     literal anywhere (every occurrence reported), one
 *                      must end at the end.
 */
static struct pat literal_pattern(const char *v, unsigned flags)
{
	size_t n = strlen(v), o = 0;
	bool pre = v[n - 1] == '*', suf = v[0] == '*';
	struct pat pt = {malloc(n * 4 + 8), flags | HS_FLAG_SINGLEMATCH, WP_AUTHZ_CHECK_END};

	if (!pt.expr)
		return pt;
	if (suf) {
		o += lit(pt.expr + o, v + 1, n - 1);
		pt.flags &= ~(unsigned)HS_FLAG_SINGLEMATCH;
	} else {
		memcpy(pt.expr, "\\A", 2);
		o = 2;
		o += lit(pt.expr + o, v, pre ? n - 1 : n);
		if (pre)
			pt.check = WP_AUTHZ_CHECK_NONE;
	}
	pt.expr[o] = 0;
	return pt;
}

/* Istio's namespace regex over the principal, ".*\/ns/<v>/.*" with '*' in v
 * as ".*", matches where "/ns/<v>/" occurs: that is the pattern. */
static struct pat namespace_pattern(const char *v)
{
	size_t n = strlen(v), o = 0;
	struct pat pt = {malloc(n * 4 + 32), HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL,
	                 WP_AUTHZ_CHECK_NONE};

	if (!pt.expr)
		return pt;
	o += (size_t)sprintf(pt.expr, "\\x2fns\\x2f");
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '*') {
			memcpy(pt.expr + o, ".*", 2);
			o += 2;
		} else {
			o += lit(pt.expr + o, v + i, 1);
		}
	}
	sprintf(pt.expr + o, "\\x2f");
	return pt;
}

/* Istio's service-account regex over the principal (without spiffe://),
 * ".+/ns/<ns>/(.+/|)sa/<sa>(/.+)?" with <ns> the policy's by default: the
 * pattern is the part up to <sa>, every end is reported, and the callback
 * wants the end of the input or a '/' with something after it. */
static struct pat sa_pattern(const char *v, const char *policy_ns)
{
	const char *sl = strchr(v, '/');
	const char *ns = sl ? v : policy_ns, *sa = sl ? sl + 1 : v;
	size_t nl = sl ? (size_t)(sl - v) : strlen(policy_ns), sal = strlen(sa), o;
	struct pat pt = {malloc((nl + sal) * 4 + 64), HS_FLAG_DOTALL, WP_AUTHZ_CHECK_SA};

	if (!pt.expr)
		return pt;
	o = (size_t)sprintf(pt.expr, ".\\x2fns\\x2f");
	o += lit(pt.expr + o, ns, nl);
	o += (size_t)sprintf(pt.expr + o, "\\x2f(?:.+\\x2f)?sa\\x2f");
	o += lit(pt.expr + o, sa, sal);
	pt.expr[o] = 0;
	return pt;
}
/* ---- trust domain aliases (Istio's trustdomain.Bundle) -------------------- */

static bool td_prefix(const char *a, const char *pat)
{
	size_t n = strlen(pat);

	return n && pat[n - 1] == '*' && !strncmp(a, pat, n - 1);
}

static bool td_suffix(const char *a, const char *pat)
{
	size_t n = strlen(pat), al = strlen(a);

	return pat[0] == '*' && al >= n - 1 && !strcmp(a + al - (n - 1), pat + 1);
}

/* Calls add(v') for each principal value v expands to. */
static void expand_principal(struct build *b, const char *v,
                             void (*add)(struct build *, const char *, void *), void *ctx)
{
	const char *p = v, *s1 = strchr(v, '/');
	char td[256];
	int parts = 1;
	bool known = false;

	for (; *p; p++)
		parts += *p == '/';
	if (parts != 5 || !s1 || (size_t)(s1 - v) >= sizeof(td) || (s1 - v == 1 && v[0] == '*')) {
		add(b, v, ctx);
		return;
	}
	memcpy(td, v, (size_t)(s1 - v));
	td[s1 - v] = 0;
	for (uint32_t i = 0; i < b->n_td; i++) {
		const char *s = b->td[i];

		if (!strcmp(td, s) || !strcmp(s, "*") || td_prefix(td, s) || td_prefix(s, td) ||
		    td_suffix(td, s) || td_suffix(s, td))
			known = true;
	}
	if (!known && strcmp(td, DEFAULT_TD)) {
		add(b, v, ctx);
		return;
	}
	for (uint32_t i = 0; i < b->n_td; i++) {
		size_t cap = strlen(b->td[i]) + strlen(v) + 2;
		char *nv = malloc(cap);

		if (!nv) {
			b->oom = true;
			return;
		}
		if (td_suffix(b->td[i], td))
			snprintf(nv, cap, "%s", v);
		else
			snprintf(nv, cap, "%s%s", b->td[i], s1);
		/* duplicates only add the same pattern twice: add_pat dedupes */
		add(b, nv, ctx);
		free(nv);
	}
}

/* ---- terms ------------------------------------------------------------------ */

static bool key_http_only(uint8_t key)
{
	return key == WP_AUTHZ_K_HOST || key == WP_AUTHZ_K_METHOD || key == WP_AUTHZ_K_PATH ||
	       key == WP_AUTHZ_K_HEADER || key == WP_AUTHZ_K_REQ_PRINCIPAL ||
	       key == WP_AUTHZ_K_AUTH_AUDIENCE || key == WP_AUTHZ_K_AUTH_PRESENTER ||
	       key == WP_AUTHZ_K_AUTH_CLAIM;
}

static uint8_t key_prio(uint8_t key)
{
	switch (key) {
	case WP_AUTHZ_K_PATH:
		return 0;
	case WP_AUTHZ_K_PRINCIPAL:
	case WP_AUTHZ_K_SERVICE_ACCOUNT:
		return 1;
	case WP_AUTHZ_K_HEADER:
		return 2;
	case WP_AUTHZ_K_HOST:
	case WP_AUTHZ_K_SNI:
		return 3;
	case WP_AUTHZ_K_SOURCE_IP:
	case WP_AUTHZ_K_REMOTE_IP:
	case WP_AUTHZ_K_DEST_IP:
		return 4;
	case WP_AUTHZ_K_NAMESPACE:
		return 5;
	case WP_AUTHZ_K_PORT:
		return 6;
	default:
		return 7; /* methods */
	}
}

struct padd {
	struct bfield *f;
	uint32_t term;
};

static void add_principal(struct build *b, const char *v, void *ctx)
{
	struct padd *a = ctx;

	if (!strcmp(v, "*")) {
		if (vpush_u32(&a->f->present, a->term))
			b->oom = true;
		return;
	}
	add_pat(b, a->f, literal_pattern(v, 0), a->term);
}

static void add_ip(struct build *b, int which, const struct wp_authz_cidr *c, uint32_t term)
{
	struct bip *x = vpush(&b->ips[which]);
	const struct wp_addr *a = &c->addr;

	if (!x) {
		b->oom = true;
		return;
	}
	x->family = a->family;
	x->len = c->len;
	x->term = term;
	if (a->family == WP_AF_INET) {
		x->key.lo = __builtin_bswap32(a->v4);
	} else {
		for (int i = 0; i < 8; i++) {
			x->key.hi = x->key.hi << 8 | a->v6[i];
			x->key.lo = x->key.lo << 8 | a->v6[8 + i];
		}
	}
}

/* Registers the values of one side of cond c as a new term; returns it. */
/* The canonical text of a value set: key, header / claim name, the
 * policy's namespace where it matters (service accounts), the values. */
static char *term_key(const struct wp_authz_cond *c, uint32_t n, const char *const *v,
                      const char *policy_ns)
{
	size_t len = 32 + (c->arg ? strlen(c->arg) : 0) + strlen(policy_ns), o;
	char *k;

	for (uint32_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	k = malloc(len);
	if (!k)
		return NULL;
	o = (size_t)sprintf(k, "%u\x01%s\x01%s", c->key, c->arg ? c->arg : "",
	                    c->key == WP_AUTHZ_K_SERVICE_ACCOUNT ? policy_ns : "");
	for (uint32_t i = 0; i < n; i++)
		o += (size_t)sprintf(k + o, "\x01%s", v[i]);
	return k;
}

/* The term already made for key k (which is then freed), or UINT32_MAX
 * after remembering k for term t. */
static uint32_t term_find(struct build *b, char *k, uint32_t t)
{
	uint64_t h;

	if ((b->tn + 1) * 2 > b->tcap) {
		uint32_t nc = b->tcap ? b->tcap * 2 : 256;
		char **nk = calloc(nc, sizeof(*nk));
		uint32_t *nv = calloc(nc, sizeof(*nv));

		if (!nk || !nv) {
			free(nk);
			free(nv);
			free(k);
			b->oom = true;
			return 0;
		}
		for (uint32_t i = 0; i < b->tcap; i++) {
			if (!b->tkeys[i])
				continue;
			for (h = str_hash(b->tkeys[i], 0);; h++)
				if (!nk[h & (nc - 1)])
					break;
			nk[h & (nc - 1)] = b->tkeys[i];
			nv[h & (nc - 1)] = b->tvals[i];
		}
		free(b->tkeys);
		free(b->tvals);
		b->tkeys = nk;
		b->tvals = nv;
		b->tcap = nc;
	}
	for (h = str_hash(k, 0);; h++) {
		char *e = b->tkeys[h & (b->tcap - 1)];

		if (!e)
			break;
		if (!strcmp(e, k)) {
			free(k);
			return b->tvals[h & (b->tcap - 1)];
		}
	}
	b->tkeys[h & (b->tcap - 1)] = k;
	b->tvals[h & (b->tcap - 1)] = t;
	b->tn++;
	return UINT32_MAX;
}

static uint32_t make_term(struct build *b, const struct wp_authz_cond *c, bool neg,
                          const char *policy_ns)
{
	uint32_t n = neg ? c->n_not : c->n_values;
	const char *const *v = neg ? c->not_values : c->values;
	const struct wp_authz_cidr *cidrs = neg ? c->not_cidrs : c->cidrs;
	const uint16_t *ports = neg ? c->not_ports : c->ports;
	uint32_t term = (uint32_t)b->terms.n, old;
	char *key = term_key(c, n, v, policy_ns);
	struct bterm *bt;
	struct bfield *f = NULL;
	unsigned fl = 0;

	if (!key) {
		b->oom = true;
		return 0;
	}
	old = term_find(b, key, term);
	if (old != UINT32_MAX || b->oom)
		return old;
	bt = vpush(&b->terms);
	if (!bt) {
		b->oom = true;
		return 0;
	}
	bt->prio = key_prio(c->key);
	bt->fireable = 1;
	switch (c->key) {
	case WP_AUTHZ_K_PRINCIPAL: {
		struct padd a = {field_get(b, WP_AUTHZ_F_PRINCIPAL, NULL), term};

		if (!a.f)
			return term;
		for (uint32_t i = 0; i < n; i++)
			expand_principal(b, v[i], add_principal, &a);
		return term;
	}
	case WP_AUTHZ_K_NAMESPACE:
		f = field_get(b, WP_AUTHZ_F_PRINCIPAL, NULL);
		for (uint32_t i = 0; i < n; i++)
			add_pat(b, f, namespace_pattern(v[i]), term);
		return term;
	case WP_AUTHZ_K_SERVICE_ACCOUNT:
		f = field_get(b, WP_AUTHZ_F_PRINCIPAL, NULL);
		for (uint32_t i = 0; i < n; i++)
			add_pat(b, f, sa_pattern(v[i], policy_ns), term);
		return term;
	case WP_AUTHZ_K_SOURCE_IP:
	case WP_AUTHZ_K_REMOTE_IP:
	case WP_AUTHZ_K_DEST_IP:
		for (uint32_t i = 0; i < n; i++)
			add_ip(b,
			       c->key == WP_AUTHZ_K_SOURCE_IP   ? 0
			       : c->key == WP_AUTHZ_K_REMOTE_IP ? 1
			                                        : 2,
			       &cidrs[i], term);
		return term;
	case WP_AUTHZ_K_PORT:
		for (uint32_t i = 0; i < n; i++) {
			struct bport *p = vpush(&b->ports);

			if (!p) {
				b->oom = true;
				return term;
			}
			p->port = ports[i];
			p->term = term;
		}
		return term;
	case WP_AUTHZ_K_HOST:
		f = field_get(b, WP_AUTHZ_F_HOST, NULL);
		fl |= HS_FLAG_CASELESS;
		break;
	case WP_AUTHZ_K_METHOD:
		f = field_get(b, WP_AUTHZ_F_METHOD, NULL);
		break;
	case WP_AUTHZ_K_PATH:
		f = field_get(b, WP_AUTHZ_F_PATH, NULL);
		break;
	case WP_AUTHZ_K_SNI:
		f = field_get(b, WP_AUTHZ_F_SNI, NULL);
		break;
	case WP_AUTHZ_K_HEADER:
		f = field_get(b, WP_AUTHZ_F_HEADER, c->arg);
		break;
	default: /* JWT attributes: never set */
		bt->fireable = 0;
		return term;
	}
	if (!f)
		return term;
	for (uint32_t i = 0; i < n; i++) {
		if (!strcmp(v[i], "*")) {
			if (vpush_u32(&f->present, term))
				b->oom = true;
		} else {
			add_pat(b, f, literal_pattern(v[i], fl), term);
		}
	}
	return term;
}

static void add_conjs(struct build *b, const struct wp_authz_cond *c, const char *policy_ns,
                      bool *http)
{
	for (int neg = 0; neg < 2; neg++) {
		struct wp_authz_conj *cj;
		uint32_t term;

		if (!(neg ? c->n_not : c->n_values))
			continue;
		term = make_term(b, c, neg, policy_ns);
		cj = vpush(&b->conjs);
		if (!cj) {
			b->oom = true;
			return;
		}
		cj->term = term;
		cj->neg = (uint8_t)neg;
		cj->http_only = key_http_only(c->key);
		*http |= cj->http_only;
	}
}

static void add_entry(struct build *b, const struct wp_authz_cond *conds, uint32_t n,
                      const char *policy_ns, bool *http)
{
	struct wp_authz_span *e = vpush(&b->entries);
	uint32_t first = (uint32_t)b->conjs.n;

	if (!e) {
		b->oom = true;
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		add_conjs(b, &conds[i], policy_ns, http);
	e = (struct wp_authz_span *)b->entries.p + b->entries.n - 1;
	e->first = first;
	e->n = (uint32_t)b->conjs.n - first;
}

static void add_group(struct build *b, const struct wp_authz_match *m, uint32_t n,
                      const char *policy_ns, bool *http)
{
	struct wp_authz_span *g = vpush(&b->groups);
	uint32_t first = (uint32_t)b->entries.n;

	if (!g) {
		b->oom = true;
		return;
	}
	for (uint32_t i = 0; i < n; i++)
		add_entry(b, m[i].conds, m[i].n_conds, policy_ns, http);
	g = (struct wp_authz_span *)b->groups.p + b->groups.n - 1;
	g->first = first;
	g->n = (uint32_t)b->entries.n - first;
}

static void add_rule(struct build *b, uint32_t policy, uint8_t action, int32_t index,
                     const struct wp_authz_rule *r, const char *policy_ns)
{
	struct wp_authz_crule *cr = vpush(&b->rules);
	uint32_t first = (uint32_t)b->groups.n;
	bool http = false;

	if (!cr) {
		b->oom = true;
		return;
	}
	if (r) {
		if (r->n_from)
			add_group(b, r->from, r->n_from, policy_ns, &http);
		if (r->n_to)
			add_group(b, r->to, r->n_to, policy_ns, &http);
		if (r->n_when) {
			struct wp_authz_span *g = vpush(&b->groups);

			if (!g) {
				b->oom = true;
				return;
			}
			g->first = (uint32_t)b->entries.n;
			g->n = 1;
			add_entry(b, r->when, r->n_when, policy_ns, &http);
		}
	}
	cr = (struct wp_authz_crule *)b->rules.p + b->rules.n - 1;
	cr->first_group = first;
	cr->n_groups = (uint32_t)b->groups.n - first;
	cr->policy = policy;
	cr->index = index;
	cr->action = action;
	if (!r)
		cr->flags |= WP_AUTHZ_CR_INVALID;
	if (http && action == WP_AUTHZ_ALLOW)
		cr->flags |= WP_AUTHZ_CR_TCP_VOID;
}

/* ---- attachment ---------------------------------------------------------- */

static bool streq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* How o attaches to the target ("Gateway", ...), or NULL with *why set when
 * it is worth listing as ignored (else *why NULL). */
static const char *attach(const struct wp_authz_compile_in *in, const struct wp_obj *o,
                          const char **why)
{
	const struct wp_k8s_authz *a = &o->u.authz;
	const char *root = in->root_ns ? in->root_ns : DEFAULT_ROOT_NS;

	*why = NULL;
	if (!a->n_target_refs) {
		*why = a->has_selector ? "spec.selector: selector policies apply to workloads "
		                         "(ztunnel, sidecars), never to a waypoint"
		                       : "no targetRefs: a namespace-wide policy is enforced by "
		                         "ztunnel, not by waypoints";
		return NULL;
	}
	if (a->has_selector) {
		*why = "both spec.selector and spec.targetRefs are set (Istio refuses such a "
		       "policy)";
		return NULL;
	}
	for (uint32_t i = 0; i < a->n_target_refs; i++) {
		const struct wp_target_ref *r = &a->target_refs[i];
		const char *g = r->group ? r->group : "";

		if (r->ns && strcmp(r->ns, o->meta.ns)) {
			*why = "a targetRef names another namespace (not allowed)";
			continue;
		}
		if (streq(r->kind, "Gateway") && !strcmp(g, "gateway.networking.k8s.io")) {
			if (streq(o->meta.ns, in->gw_ns) && streq(r->name, in->gw_name))
				return "Gateway";
		} else if (streq(r->kind, "GatewayClass") &&
		           !strcmp(g, "gateway.networking.k8s.io")) {
			if (!streq(r->name, in->gw_class))
				continue;
			if (!strcmp(o->meta.ns, root))
				return "GatewayClass";
			*why = "a GatewayClass targetRef applies only in the root namespace";
		} else if (streq(r->kind, "Service") && (!*g || !strcmp(g, "core"))) {
			if (in->dest_kind == WP_AUTHZ_DEST_SERVICE &&
			    streq(o->meta.ns, in->dest_ns) && streq(r->name, in->dest_name))
				return "Service";
		} else if (streq(r->kind, "ServiceEntry") && !strcmp(g, "networking.istio.io")) {
			if (in->dest_kind == WP_AUTHZ_DEST_SERVICEENTRY &&
			    streq(o->meta.ns, in->dest_ns) && streq(r->name, in->dest_name))
				return "ServiceEntry";
		} else {
			*why = "a targetRef kind/group a waypoint does not serve";
		}
	}
	return NULL;
}

static int pol_cmp(const void *x, const void *y)
{
	const struct wp_obj *a = *(const struct wp_obj *const *)x;
	const struct wp_obj *b = *(const struct wp_obj *const *)y;
	int c = strcmp(a->meta.ns, b->meta.ns);

	return c ? c : strcmp(a->meta.name, b->meta.name);
}

static void add_error(struct build *b, const char *e)
{
	const char **p = vpush(&b->errors);

	if (!p)
		b->oom = true;
	else
		*p = wp_arena_strdup(&b->t->arena, e);
	if (p && !*p)
		b->oom = true;
}

static void add_policy(struct build *b, const struct wp_obj *o, const char *how)
{
	const struct wp_k8s_authz *a = &o->u.authz;
	struct wp_authz_pinfo *pi = vpush(&b->pinfo);
	uint32_t pidx = (uint32_t)b->pinfo.n - 1, before = (uint32_t)b->rules.n;
	const char *bad = a->invalid;
	int32_t bad_idx = -1;

	if (!pi) {
		b->oom = true;
		return;
	}
	pi->ns = wp_arena_strdup(&b->t->arena, o->meta.ns);
	pi->name = wp_arena_strdup(&b->t->arena, o->meta.name);
	if (!pi->ns || !pi->name)
		b->oom = true;
	pi->attach = how;
	pi->action = a->act;
	if (a->act == WP_AUTHZ_ALLOW)
		b->t->has_allow = true;
	if (bad)
		add_error(b, bad);
	for (uint32_t i = 0; i < a->n_rules; i++)
		if (a->rules[i].invalid) {
			add_error(b, a->rules[i].invalid);
			if (!bad) {
				bad = a->rules[i].invalid;
				bad_idx = (int32_t)i;
			}
		}
	if (a->act != WP_AUTHZ_ALLOW && bad) {
		/* fail closed: the whole policy matches every request */
		add_rule(b, pidx, a->act, bad_idx, NULL, o->meta.ns);
	} else if (!a->invalid) {
		for (uint32_t i = 0; i < a->n_rules; i++)
			if (!a->rules[i].invalid)
				add_rule(b, pidx, a->act, (int32_t)i, &a->rules[i], o->meta.ns);
	}
	pi = (struct wp_authz_pinfo *)b->pinfo.p + pidx;
	pi->n_rules = (uint32_t)b->rules.n - before;
}

static void add_ignored(struct build *b, const struct wp_obj *o, const char *why)
{
	struct wp_authz_ignored *ig = vpush(&b->ignored);

	if (!ig) {
		b->oom = true;
		return;
	}
	ig->ns = wp_arena_strdup(&b->t->arena, o->meta.ns);
	ig->name = wp_arena_strdup(&b->t->arena, o->meta.name);
	if (!ig->ns || !ig->name)
		b->oom = true;
	ig->why = why;
}

static bool near(const struct wp_authz_compile_in *in, const struct wp_obj *o)
{
	const char *root = in->root_ns ? in->root_ns : DEFAULT_ROOT_NS;

	return streq(o->meta.ns, in->gw_ns) || streq(o->meta.ns, in->dest_ns) ||
	       !strcmp(o->meta.ns, root);
}

/* ---- freezing into the table ---------------------------------------------- */

static void *dup_into(struct build *b, const struct vec *v)
{
	void *p;

	if (!v->n)
		return NULL;
	p = wp_arena_alloc(&b->t->arena, v->n * v->sz);
	if (!p) {
		b->oom = true;
		return NULL;
	}
	return memcpy(p, v->p, v->n * v->sz);
}

/* Is p an exact, case-sensitive literal ("\\A<v>" checked to the end)? Those
 * go into the field's hash index instead of its database. */
static bool pat_exact(const struct bpat *p)
{
	return p->check == WP_AUTHZ_CHECK_END && !(p->flags & HS_FLAG_CASELESS) &&
	       p->expr[0] == '\\' && p->expr[1] == 'A';
}

/* The bytes of an exact pattern's literal (lit()'s escapes undone) into
 * out (at least strlen(expr) bytes); returns their number. */
static uint32_t pat_bytes(const struct bpat *p, char *out)
{
	const char *e = p->expr + 2;
	uint32_t n = 0;

	while (*e) {
		if (e[0] == '\\' && e[1] == 'x') {
			unsigned v = 0;

			for (int k = 2; k < 4; k++)
				v = v * 16 + (unsigned)(e[k] <= '9' ? e[k] - '0' : e[k] - 'a' + 10);
			out[n++] = (char)v;
			e += 4;
		} else {
			out[n++] = *e++;
		}
	}
	return n;
}

/* Builds field sf's hash index of its exact patterns. */
static void exact_index(struct build *b, const struct bfield *f, struct wp_authz_sfield *sf)
{
	const struct bpat *p = f->pats.p;
	struct wp_authz_exact *slots;
	uint32_t n = 0, cap = 8;

	for (size_t i = 0; i < f->pats.n; i++)
		n += pat_exact(&p[i]);
	if (!n)
		return;
	while (cap < n * 2)
		cap *= 2;
	slots = wp_arena_alloc(&b->t->arena, sizeof(*slots) * cap);
	if (!slots) {
		b->oom = true;
		return;
	}
	memset(slots, 0, sizeof(*slots) * cap);
	for (size_t i = 0; i < f->pats.n; i++) {
		char *s;
		uint32_t len, k;
		uint64_t h;

		if (!pat_exact(&p[i]))
			continue;
		s = wp_arena_alloc(&b->t->arena, strlen(p[i].expr) + 1);
		if (!s) {
			b->oom = true;
			return;
		}
		len = pat_bytes(&p[i], s);
		h = wp_authz_exact_hash(s, len);
		for (k = (uint32_t)h & (cap - 1); slots[k].s; k = (k + 1) & (cap - 1))
			;
		slots[k] =
		        (struct wp_authz_exact){.hash = h, .s = s, .len = len, .pat = (uint32_t)i};
	}
	sf->exact = slots;
	sf->exact_mask = cap - 1;
}

/* The field's database of the patterns that are not exact (NULL when all
 * are), shared through the cache with every table of the same set. */
static struct wp_authz_db *db_get(struct build *b, struct bfield *f)
{
	struct wp_authz_compile_in const *in = b->in;
	struct bpat *p = f->pats.p;
	size_t blen = 0, o = 0;
	const char **exprs;
	unsigned *flags, *ids;
	uint64_t h = 1469598103934665603ULL;
	char *blob;
	struct wp_authz_db *d;
	hs_database_t *db = NULL;
	hs_compile_error_t *ce = NULL;

	unsigned n = 0;

	for (size_t i = 0; i < f->pats.n; i++)
		if (!pat_exact(&p[i])) {
			blen += strlen(p[i].expr) + 1 + 2 * sizeof(unsigned);
			n++;
		}
	if (!n)
		return NULL;
	blob = malloc(blen + 1);
	if (!blob) {
		b->oom = true;
		return NULL;
	}
	/* the set as compiled: expression, flags and id of each pattern */
	for (size_t i = 0; i < f->pats.n; i++) {
		size_t l = strlen(p[i].expr) + 1;
		unsigned id = (unsigned)i;

		if (pat_exact(&p[i]))
			continue;
		memcpy(blob + o, p[i].expr, l);
		o += l;
		memcpy(blob + o, &p[i].flags, sizeof(unsigned));
		o += sizeof(unsigned);
		memcpy(blob + o, &id, sizeof(unsigned));
		o += sizeof(unsigned);
	}
	for (size_t i = 0; i < blen; i++) {
		h ^= (unsigned char)blob[i];
		h *= 1099511628211ULL;
	}
	for (d = in->cache ? in->cache->head : NULL; d; d = d->next)
		if (d->hash == h && d->blob_len == blen && !memcmp(d->blob, blob, blen)) {
			d->refs++;
			free(blob);
			return d;
		}
	exprs = malloc(sizeof(*exprs) * n);
	flags = malloc(sizeof(*flags) * n);
	ids = malloc(sizeof(*ids) * n);
	d = calloc(1, sizeof(*d));
	if (!exprs || !flags || !ids || !d) {
		b->oom = true;
		free(d);
		d = NULL;
		goto out;
	}
	n = 0;
	for (size_t i = 0; i < f->pats.n; i++) {
		if (pat_exact(&p[i]))
			continue;
		exprs[n] = p[i].expr;
		flags[n] = p[i].flags;
		ids[n++] = (unsigned)i;
	}
	if (hs_compile_multi(exprs, flags, ids, n, HS_MODE_BLOCK, NULL, &db, &ce) != HS_SUCCESS) {
		const char *m = wp_arena_sprintf(&b->t->arena,
		                                 "authorization: Hyperscan refused a pattern set "
		                                 "(%s): every request is denied",
		                                 ce && ce->message ? ce->message : "?");

		hs_free_compile_error(ce);
		b->t->broken = true;
		add_error(b, m ? m : "authorization: Hyperscan failure");
		free(d);
		d = NULL;
		goto out;
	}
	d->hs = (struct hs_database *)db;
	d->hash = h;
	d->refs = 1;
	d->blob = blob;
	d->blob_len = blen;
	blob = NULL;
	if (in->cache) {
		d->cache = in->cache;
		d->next = in->cache->head;
		in->cache->head = d;
		in->cache->n++;
	}
out:
	free(blob);
	free(exprs);
	free(flags);
	free(ids);
	return d;
}

static void freeze_fields(struct build *b)
{
	struct wp_authz_table *t = b->t;
	struct wp_authz_sfield *sf;
	struct bfield *bf = b->fields.p;

	if (!b->fields.n)
		return;
	sf = wp_arena_alloc(&t->arena, sizeof(*sf) * b->fields.n);
	t->dbs = calloc(b->fields.n, sizeof(*t->dbs));
	if (!sf || !t->dbs) {
		b->oom = true;
		return;
	}
	t->sfields = sf;
	t->n_sfields = (uint32_t)b->fields.n;
	for (size_t i = 0; i < b->fields.n && !b->oom; i++) {
		struct bpat *p = bf[i].pats.p;
		uint32_t *off, *terms, k = 0, total = 0;
		uint8_t *check;

		sf[i].kind = bf[i].kind;
		sf[i].name = wp_arena_strdup(&t->arena, bf[i].name);
		if (bf[i].name && !sf[i].name)
			b->oom = true;
		sf[i].name_len = bf[i].name ? (uint32_t)strlen(bf[i].name) : 0;
		sf[i].present = dup_into(b, &bf[i].present);
		sf[i].n_present = (uint32_t)bf[i].present.n;
		if (!bf[i].pats.n)
			continue;
		for (size_t j = 0; j < bf[i].pats.n; j++)
			total += (uint32_t)p[j].terms.n;
		off = wp_arena_alloc(&t->arena, sizeof(*off) * (bf[i].pats.n + 1));
		terms = wp_arena_alloc(&t->arena, sizeof(*terms) * total);
		check = wp_arena_alloc(&t->arena, bf[i].pats.n);
		if (!off || !terms || !check) {
			b->oom = true;
			return;
		}
		for (size_t j = 0; j < bf[i].pats.n; j++) {
			check[j] = p[j].check;
			off[j] = k;
			memcpy(terms + k, p[j].terms.p, p[j].terms.n * sizeof(uint32_t));
			k += (uint32_t)p[j].terms.n;
		}
		off[bf[i].pats.n] = k;
		sf[i].off = off;
		sf[i].terms = terms;
		sf[i].check = check;
		sf[i].n_pats = (uint32_t)bf[i].pats.n;
		exact_index(b, &bf[i], &sf[i]);
		sf[i].db = db_get(b, &bf[i]);
		if (sf[i].db)
			t->dbs[t->n_dbs++] = sf[i].db;
	}
}

static int bip_cmp(const void *x, const void *y)
{
	const struct bip *a = x, *b = y;

	if (a->family != b->family)
		return a->family - b->family;
	if (a->len != b->len)
		return a->len - b->len;
	if (a->key.hi != b->key.hi)
		return a->key.hi < b->key.hi ? -1 : 1;
	if (a->key.lo != b->key.lo)
		return a->key.lo < b->key.lo ? -1 : 1;
	return a->term < b->term ? -1 : a->term > b->term;
}

static void freeze_ip(struct build *b, struct vec *v, struct wp_authz_ipfield *out)
{
	struct bip *x = v->p;
	struct wp_authz_iplen *lens;
	uint32_t nl = 0;

	if (!v->n)
		return;
	qsort(x, v->n, sizeof(*x), bip_cmp);
	for (size_t i = 0; i < v->n; i++)
		nl += !i || x[i].family != x[i - 1].family || x[i].len != x[i - 1].len;
	lens = wp_arena_alloc(&b->t->arena, sizeof(*lens) * nl);
	if (!lens) {
		b->oom = true;
		return;
	}
	out->lens = lens;
	out->n_lens = nl;
	for (size_t i = 0, l = 0; i < v->n; l++) {
		size_t j = i, nk = 0, k = 0;
		struct wp_authz_key128 *keys;
		uint32_t *off, *terms;

		while (j < v->n && x[j].family == x[i].family && x[j].len == x[i].len) {
			nk += j == i || x[j].key.hi != x[j - 1].key.hi ||
			      x[j].key.lo != x[j - 1].key.lo;
			j++;
		}
		keys = wp_arena_alloc(&b->t->arena, sizeof(*keys) * nk);
		off = wp_arena_alloc(&b->t->arena, sizeof(*off) * (nk + 1));
		terms = wp_arena_alloc(&b->t->arena, sizeof(*terms) * (j - i));
		if (!keys || !off || !terms) {
			b->oom = true;
			return;
		}
		for (size_t m = i; m < j; m++) {
			if (m == i || x[m].key.hi != x[m - 1].key.hi ||
			    x[m].key.lo != x[m - 1].key.lo) {
				off[k] = (uint32_t)(m - i);
				keys[k++] = x[m].key;
			}
			terms[m - i] = x[m].term;
		}
		off[nk] = (uint32_t)(j - i);
		lens[l] = (struct wp_authz_iplen){x[i].family, x[i].len, (uint32_t)nk,
		                                  keys,        off,      terms};
		i = j;
	}
}

static int bport_cmp(const void *x, const void *y)
{
	const struct bport *a = x, *b = y;

	return a->port != b->port ? a->port - b->port : (a->term > b->term) - (a->term < b->term);
}

static void freeze_ports(struct build *b)
{
	struct bport *x = b->ports.p;
	struct wp_authz_portfield *pf = &b->t->port;
	uint16_t *ports;
	uint32_t *off, *terms, np = 0, k = 0;

	if (!b->ports.n)
		return;
	qsort(x, b->ports.n, sizeof(*x), bport_cmp);
	for (size_t i = 0; i < b->ports.n; i++)
		np += !i || x[i].port != x[i - 1].port;
	ports = wp_arena_alloc(&b->t->arena, sizeof(*ports) * np);
	off = wp_arena_alloc(&b->t->arena, sizeof(*off) * (np + 1));
	terms = wp_arena_alloc(&b->t->arena, sizeof(*terms) * b->ports.n);
	if (!ports || !off || !terms) {
		b->oom = true;
		return;
	}
	for (size_t i = 0; i < b->ports.n; i++) {
		if (!i || x[i].port != x[i - 1].port) {
			off[k] = (uint32_t)i;
			ports[k++] = x[i].port;
		}
		terms[i] = x[i].term;
	}
	off[np] = (uint32_t)b->ports.n;
	*pf = (struct wp_authz_portfield){np, ports, off, terms};
}

/* Picks anchor terms for rule r in mode m (0 HTTP, 1 TCP): a set of terms
 * one of which is set whenever the rule matches. Returns the number written
 * to out (capped by cap), 0 = evaluate always, -1 = can never match. */
static int anchors(const struct build *b, const struct wp_authz_crule *r, int m, uint32_t *out,
                   uint32_t cap)
{
	const struct wp_authz_span *groups = b->groups.p, *entries = b->entries.p;
	const struct wp_authz_conj *conjs = b->conjs.p;
	const struct bterm *terms = b->terms.p;
	int best = 0;
	uint32_t best_score = UINT32_MAX;

	if (m && (r->flags & WP_AUTHZ_CR_TCP_VOID))
		return -1;
	for (uint32_t g = 0; g < r->n_groups; g++) {
		const struct wp_authz_span *gr = &groups[r->first_group + g];
		uint32_t n = 0, score = 0, live = 0, pick[64];
		bool ok = true;

		for (uint32_t e = 0; e < gr->n && ok; e++) {
			const struct wp_authz_span *en = &entries[gr->first + e];
			uint32_t bestc = UINT32_MAX;
			bool dead = false;

			for (uint32_t c = 0; c < en->n; c++) {
				const struct wp_authz_conj *cj = &conjs[en->first + c];

				if (cj->neg || (m && cj->http_only))
					continue;
				if (!terms[cj->term].fireable) {
					dead = true;
					break;
				}
				if (bestc == UINT32_MAX ||
				    terms[cj->term].prio < terms[conjs[bestc].term].prio)
					bestc = en->first + c;
			}
			if (dead)
				continue;
			live++;
			if (bestc == UINT32_MAX || n == 64) {
				ok = false;
				break;
			}
			pick[n++] = conjs[bestc].term;
			score += 8 + terms[conjs[bestc].term].prio;
		}
		if (!live)
			return -1;
		if (ok && n && score < best_score && n <= cap) {
			best_score = score;
			memcpy(out, pick, n * sizeof(*out));
			best = (int)n;
		}
	}
	return best;
}

static void freeze_anchors(struct build *b)
{
	struct wp_authz_table *t = b->t;
	const struct wp_authz_crule *rules = b->rules.p;
	uint32_t nt = (uint32_t)b->terms.n, pick[64];

	if (!b->rules.n)
		return; /* nothing is ever evaluated (the common case: no policy) */
	for (int m = 0; m < 2; m++) {
		uint32_t *off = wp_arena_alloc(&t->arena, sizeof(*off) * (nt + 2));
		struct vec always = VEC(uint32_t);
		uint32_t *fill, *list, total = 0;

		if (!off) {
			b->oom = true;
			return;
		}
		for (uint32_t r = 0; r < b->rules.n; r++) {
			int n = anchors(b, &rules[r], m, pick, 64);

			for (int i = 0; i < n; i++)
				off[pick[i] + 1]++;
			total += n > 0 ? (uint32_t)n : 0;
			if (!n && vpush_u32(&always, r))
				b->oom = true;
		}
		for (uint32_t i = 0; i < nt; i++)
			off[i + 1] += off[i];
		list = wp_arena_alloc(&t->arena, sizeof(*list) * (total ? total : 1));
		fill = calloc(nt + 1, sizeof(*fill));
		if (!list || !fill) {
			free(fill);
			free(always.p);
			b->oom = true;
			return;
		}
		for (uint32_t r = 0; r < b->rules.n; r++) {
			int n = anchors(b, &rules[r], m, pick, 64);

			for (int i = 0; i < n; i++)
				list[off[pick[i]] + fill[pick[i]]++] = r;
		}
		free(fill);
		t->anchor_off[m] = off;
		t->anchor_rules[m] = list;
		t->always[m] = dup_into(b, &always);
		t->n_always[m] = (uint32_t)always.n;
		free(always.p);
	}
}

static void build_free(struct build *b)
{
	struct bfield *f = b->fields.p;

	for (size_t i = 0; i < b->fields.n; i++) {
		struct bpat *p = f[i].pats.p;

		for (size_t j = 0; j < f[i].pats.n; j++) {
			free(p[j].expr);
			free(p[j].terms.p);
		}
		free(p);
		free(f[i].present.p);
		free(f[i].slot);
	}
	free(b->fields.p);
	for (int i = 0; i < 3; i++)
		free(b->ips[i].p);
	free(b->ports.p);
	free(b->terms.p);
	free(b->rules.p);
	free(b->groups.p);
	free(b->entries.p);
	free(b->conjs.p);
	free(b->pinfo.p);
	free(b->ignored.p);
	free(b->errors.p);
	free((void *)b->td);
	for (uint32_t i = 0; i < b->tcap; i++)
		free(b->tkeys[i]);
	free(b->tkeys);
	free(b->tvals);
}

struct wp_authz_table *wp_authz_compile(const struct wp_authz_compile_in *in)
{
	struct build b = {
	        .in = in,
	        .fields = VEC(struct bfield),
	        .ips = {VEC(struct bip), VEC(struct bip), VEC(struct bip)},
	        .ports = VEC(struct bport),
	        .terms = VEC(struct bterm),
	        .rules = VEC(struct wp_authz_crule),
	        .groups = VEC(struct wp_authz_span),
	        .entries = VEC(struct wp_authz_span),
	        .conjs = VEC(struct wp_authz_conj),
	        .pinfo = VEC(struct wp_authz_pinfo),
	        .ignored = VEC(struct wp_authz_ignored),
	        .errors = VEC(const char *),
	};
	const struct wp_obj **sorted = NULL;
	const char **td;
	struct wp_authz_table *t = calloc(1, sizeof(*t));

	td = malloc(sizeof(*td) * (in->n_aliases + 1));
	if (in->n_policies)
		sorted = malloc(sizeof(*sorted) * in->n_policies);
	if (!t || !td || (in->n_policies && !sorted)) {
		free(t);
		free(td);
		free(sorted);
		errno = ENOMEM;
		return NULL;
	}
	wp_arena_init(&t->arena, 1024);
	b.t = t;
	td[0] = in->trust_domain ? in->trust_domain : DEFAULT_TD;
	for (uint32_t i = 0; i < in->n_aliases; i++)
		td[i + 1] = in->aliases[i];
	b.td = td;
	b.n_td = in->n_aliases + 1;
	for (uint32_t i = 0; i < in->n_policies; i++)
		sorted[i] = in->policies[i];
	if (in->n_policies)
		qsort(sorted, in->n_policies, sizeof(*sorted), pol_cmp);
	for (uint32_t i = 0; i < in->n_policies && !b.oom; i++) {
		const struct wp_obj *o = sorted[i];
		const char *why, *how;

		if (o->kind != WP_KIND_AUTHORIZATIONPOLICY)
			continue;
		how = attach(in, o, &why);
		if (how && o->u.authz.dry_run)
			add_ignored(&b, o, "istio.io/dry-run: shadow policy, not enforced");
		else if (how)
			add_policy(&b, o, how);
		else if (why && near(in, o))
			add_ignored(&b, o, why);
	}
	free(sorted);
	if (!b.oom) {
		freeze_fields(&b);
		freeze_ip(&b, &b.ips[0], &t->ip[0]);
		freeze_ip(&b, &b.ips[1], &t->ip[1]);
		freeze_ip(&b, &b.ips[2], &t->ip[2]);
		freeze_ports(&b);
		freeze_anchors(&b);
		t->rules = dup_into(&b, &b.rules);
		t->n_rules = (uint32_t)b.rules.n;
		t->groups = dup_into(&b, &b.groups);
		t->entries = dup_into(&b, &b.entries);
		t->conjs = dup_into(&b, &b.conjs);
		t->n_terms = (uint32_t)b.terms.n;
		t->policies = dup_into(&b, &b.pinfo);
		t->n_policies = (uint32_t)b.pinfo.n;
		t->ignored = dup_into(&b, &b.ignored);
		t->n_ignored = (uint32_t)b.ignored.n;
		t->errors = dup_into(&b, &b.errors);
		t->n_errors = (uint32_t)b.errors.n;
	}
	build_free(&b);
	if (b.oom) {
		wp_authz_table_free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

static void db_put(struct wp_authz_db *d)
{
	if (!d || --d->refs)
		return;
	if (d->cache) {
		struct wp_authz_db **pp = &d->cache->head;

		while (*pp && *pp != d)
			pp = &(*pp)->next;
		if (*pp)
			*pp = d->next;
		d->cache->n--;
	}
	hs_free_database((hs_database_t *)d->hs);
	free(d->blob);
	free(d);
}

void wp_authz_table_free(struct wp_authz_table *t)
{
	if (!t)
		return;
	for (uint32_t i = 0; i < t->n_dbs; i++)
		db_put(t->dbs[i]);
	free(t->dbs);
	wp_arena_free(&t->arena);
	free(t);
}
