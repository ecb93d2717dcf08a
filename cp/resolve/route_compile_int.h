/*
 * Internals of route compilation (route_compile.h), shared by its pieces:
 *
 *   route_compile.c     the compile context's errors, precedence, and the
 *                       assembly of the table (wp_route_table_build)
 *   httproute_compile.c HTTPRoute rules: matches, regexes, filters,
 *                       backendRefs, timeouts and retry
 *   vs_compile.c        VirtualService http rules, in order, into the same
 *                       rules and matches
 *   dr_compile.c        clusters: the best DestinationRule for a host, its
 *                       load balancing and subsets, and each cluster's
 *                       endpoints and wp_lb_table
 *
 * The compile context (struct cctx) collects the pieces in malloc'd arrays
 * and the table's arena; the small readers of spec node trees below are
 * static inline. Nothing outside cp/resolve includes this file; the
 * functions one piece calls in another have hidden visibility.
 */
#ifndef WP_CP_RESOLVE_ROUTE_COMPILE_INT_H
#define WP_CP_RESOLVE_ROUTE_COMPILE_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route_compile.h"
#include "wp/model.h"

/* Writes a field path for an error message ("spec.rules[0].matches[1]");
 * a path longer than the buffer is cut, which only shortens the message. */
__attribute__((format(printf, 3, 4))) static inline void fieldf(char *buf, size_t len,
                                                                const char *fmt, ...)
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
	struct wp_lb_outlier od; /* trafficPolicy.outlierDetection */
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

static inline bool grow(struct cctx *c, void **v, uint32_t *cap, uint32_t n, size_t sz)
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

static inline void *aalloc(struct cctx *c, size_t n)
{
	void *p = wp_arena_alloc(c->a, n ? n : 1);

	if (!p)
		c->oom = true;
	return p;
}

static inline const char *astrdup(struct cctx *c, const char *s)
{
	char *p = wp_arena_strdup(c->a, s);

	if (!p && s)
		c->oom = true;
	return p;
}

static inline const char *scalar(const struct wp_ynode *n)
{
	return n && n->type == WP_YNODE_SCALAR && !wp_ynode_is_null(n) ? n->value : NULL;
}

static inline const char *sget(const struct wp_ynode *map, const char *key)
{
	return map && map->type == WP_YNODE_MAP ? scalar(wp_ynode_get(map, key)) : NULL;
}

static inline const struct wp_ynode *nget(const struct wp_ynode *map, const char *key)
{
	const struct wp_ynode *n = map && map->type == WP_YNODE_MAP ? wp_ynode_get(map, key) : NULL;

	return wp_ynode_is_null(n) ? NULL : n;
}

static inline bool parse_u32(const char *s, uint32_t max, uint32_t *out)
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

/* RFC 7230 token characters (header names). */
static inline bool is_token(const char *s)
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

static inline const char *lower_dup(struct cctx *c, const char *s)
{
	size_t n = strlen(s);
	char *p = aalloc(c, n + 1);

	if (!p)
		return NULL;
	for (size_t i = 0; i < n; i++)
		p[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
	return p;
}

#pragma GCC visibility push(hidden)

/* route_compile.c: records "ORIGIN:LINE: KIND NS/NAME: FIELD: problem"
 * (deduplicated) in the table's error list. */
void wp_route_cerr(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *at,
                   const char *field, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* httproute_compile.c: parses rule rn (index ri) of route o; commits it
 * (matches, regexes) when it is valid. */
void wp_route_parse_rule(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rn,
                         uint32_t ri);
/* httproute_compile.c: commits rule r with the matches (c->mpend) and
 * regexes (c->pend) parsed for it. */
void wp_route_commit_rule(struct cctx *c, const struct wp_route_rule *r);
/* httproute_compile.c: queues a regex of the rule being parsed; false (and
 * an error naming <field> at <at>) if Hyperscan refuses it. */
bool wp_route_re_add(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *at,
                     const char *field, uint8_t kind, const char *name, const char *pattern,
                     uint32_t *id_out, uint16_t *field_out);
/* httproute_compile.c: a header modifier's `remove` list into mods. */
bool wp_route_hdr_remove(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rm,
                         const char *field, struct wp_http_hdr_mods *mods);
/* httproute_compile.c: an HTTP method name (upper case) as enum llhttp_method. */
bool wp_route_method(const char *s, uint8_t *out);
/* vs_compile.c: compiles the http rules of VirtualService o that apply on
 * the table's port, in order (no precedence sort: first match wins). */
void wp_route_vs_compile(struct cctx *c, const struct wp_obj *o);
/* httproute_compile.c: Envoy's default retry policy (a rule without one). */
void wp_route_retry_default(struct wp_route_retry *rt);
/* httproute_compile.c: compiles the committed regexes into one Hyperscan
 * database per request field; false when there are too many or (c->oom)
 * memory ran out. */
bool wp_route_build_regex(struct cctx *c);

/* dr_compile.c: the cluster for Service ns/name port <port> (and its
 * DestinationRule subsets, built alongside). Returns NO_CLUSTER with *why
 * set when the Service or port does not exist. */
uint32_t wp_route_cluster_get(struct cctx *c, const char *ns, const char *name, uint16_t port,
                              const char *subset, const char **why);

#pragma GCC visibility pop

#endif
