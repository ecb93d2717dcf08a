/*
 * The authorization evaluator (see wp/authz.h). One decision:
 *   1. scan each string field the table has once with its Hyperscan
 *      database; IP fields and the port go through sorted tables; every
 *      hit sets term bits, and a term bit set for the first time queues the
 *      rules anchored on it (deduplicated with a per-rule stamp);
 *   2. evaluate the queued rules and the table's always-evaluated ones
 *      against the bits, keeping the first matching rule of each action;
 *   3. decide (CUSTOM, DENY, ALLOW; AUDIT marks) and clear the bits that
 *      were set (the touched-word list keeps that proportional to hits).
 * HTTP-only fields are not even scanned for opaque TCP requests. Nothing
 * allocates; the scratch is per core.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hs.h>

#include "wp/authz.h"

const char *wp_authz_reason_name(enum wp_authz_reason r)
{
	static const char *const names[] = {
	        [WP_AUTHZ_R_NO_POLICY] = "no_policy",
	        [WP_AUTHZ_R_ALLOW_MATCH] = "allow_match",
	        [WP_AUTHZ_R_DENY_MATCH] = "deny_match",
	        [WP_AUTHZ_R_DENY_INVALID] = "deny_invalid_policy",
	        [WP_AUTHZ_R_CUSTOM] = "custom_no_provider",
	        [WP_AUTHZ_R_NO_ALLOW_MATCH] = "no_allow_match",
	        [WP_AUTHZ_R_TABLE_ERROR] = "table_error",
	};

	return (unsigned)r < WP_ARRAY_SIZE(names) ? names[r] : "?";
}

int wp_authz_scratch_reserve(struct wp_authz_scratch *s, const struct wp_authz_table *t)
{
	uint32_t words;

	if (!t)
		return 0;
	for (uint32_t i = 0; i < t->n_sfields; i++) {
		hs_scratch_t *hs = (hs_scratch_t *)s->hs;

		if (!t->sfields[i].db)
			continue;
		if (hs_alloc_scratch((const hs_database_t *)t->sfields[i].db->hs, &hs) !=
		    HS_SUCCESS)
			return -ENOMEM;
		s->hs = (struct hs_scratch *)hs;
	}
	words = (t->n_terms + 63) / 64;
	if (words > s->n_words) {
		uint64_t *b = calloc(words, sizeof(*b));
		uint32_t *tw = calloc(words, sizeof(*tw));

		if (!b || !tw) {
			free(b);
			free(tw);
			return -ENOMEM;
		}
		free(s->bits);
		free(s->touched);
		s->bits = b;
		s->touched = tw;
		s->n_words = words;
	}
	if (t->n_rules > s->n_rules) {
		uint32_t *st = calloc(t->n_rules, sizeof(*st));
		uint32_t *c = calloc(t->n_rules, sizeof(*c));

		if (!st || !c) {
			free(st);
			free(c);
			return -ENOMEM;
		}
		free(s->stamp);
		free(s->cand);
		s->stamp = st;
		s->cand = c;
		s->n_rules = t->n_rules;
		s->gen = 0;
	}
	return 0;
}

void wp_authz_scratch_fini(struct wp_authz_scratch *s)
{
	if (s->hs)
		hs_free_scratch((hs_scratch_t *)s->hs);
	free(s->bits);
	free(s->touched);
	free(s->stamp);
	free(s->cand);
	memset(s, 0, sizeof(*s));
}

/* One decision's working state. */
struct run {
	const struct wp_authz_table *t;
	struct wp_authz_scratch *s;
	uint32_t n_touched;
	uint32_t n_cand;
	uint8_t mode; /* 0 HTTP, 1 TCP */
};

static inline void queue(struct run *r, uint32_t rule)
{
	if (r->s->stamp[rule] != r->s->gen) {
		r->s->stamp[rule] = r->s->gen;
		r->s->cand[r->n_cand++] = rule;
	}
}

static inline void set_term(struct run *r, uint32_t term)
{
	uint32_t w = term >> 6;
	uint64_t bit = 1ULL << (term & 63);
	const uint32_t *off;

	if (r->s->bits[w] & bit)
		return;
	if (!r->s->bits[w])
		r->s->touched[r->n_touched++] = w;
	r->s->bits[w] |= bit;
	off = r->t->anchor_off[r->mode];
	for (uint32_t i = off[term]; i < off[term + 1]; i++)
		queue(r, r->t->anchor_rules[r->mode][i]);
}

static inline bool term_set(const struct run *r, uint32_t term)
{
	return r->s->bits[term >> 6] >> (term & 63) & 1;
}

struct scan_ctx {
	struct run *r;
	const struct wp_authz_sfield *f;
	const char *v;
	uint32_t len;
};

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx)
{
	struct scan_ctx *c = ctx;

	(void)from;
	(void)flags;
	switch (c->f->check[id]) {
	case WP_AUTHZ_CHECK_END:
		if (to != c->len)
			return 0;
		break;
	case WP_AUTHZ_CHECK_SA:
		if (to != c->len && (to + 1 >= c->len || c->v[to] != '/'))
			return 0;
		break;
	default:
		break;
	}
	for (uint32_t i = c->f->off[id]; i < c->f->off[id + 1]; i++)
		set_term(c->r, c->f->terms[i]);
	return 0;
}

static void scan_field(struct run *r, const struct wp_authz_sfield *f, const char *v, uint32_t len,
                       bool present)
{
	struct scan_ctx c = {r, f, v, len};

	if (!present)
		return;
	for (uint32_t i = 0; i < f->n_present; i++)
		set_term(r, f->present[i]);
	if (f->exact) {
		uint64_t h = wp_authz_exact_hash(v, len);

		for (uint32_t k = (uint32_t)h & f->exact_mask; f->exact[k].s;
		     k = (k + 1) & f->exact_mask) {
			const struct wp_authz_exact *e = &f->exact[k];

			if (e->hash == h && e->len == len && !memcmp(e->s, v, len)) {
				for (uint32_t i = f->off[e->pat]; i < f->off[e->pat + 1]; i++)
					set_term(r, f->terms[i]);
				break;
			}
		}
	}
	if (f->db)
		hs_scan((const hs_database_t *)f->db->hs, len ? v : "", len, 0,
		        (hs_scratch_t *)r->s->hs, on_match, &c);
}

static struct wp_authz_key128 addr_key(const struct wp_addr *a)
{
	struct wp_authz_key128 k = {0, 0};

	if (a->family == WP_AF_INET) {
		k.lo = __builtin_bswap32(a->v4);
	} else {
		for (int i = 0; i < 8; i++) {
			k.hi = k.hi << 8 | a->v6[i];
			k.lo = k.lo << 8 | a->v6[8 + i];
		}
	}
	return k;
}

static struct wp_authz_key128 key_mask(struct wp_authz_key128 k, uint8_t family, uint8_t len)
{
	if (family == WP_AF_INET) {
		k.lo &= len ? (0xffffffffULL << (32 - len)) & 0xffffffffULL : 0;
		return k;
	}
	if (len <= 64) {
		k.hi &= len ? ~0ULL << (64 - len) : 0;
		k.lo = 0;
	} else {
		k.lo &= len == 128 ? ~0ULL : ~0ULL << (128 - len);
	}
	return k;
}

static void scan_ip(struct run *r, const struct wp_authz_ipfield *f, const struct wp_addr *a)
{
	struct wp_authz_key128 k;

	if (a->family != WP_AF_INET && a->family != WP_AF_INET6)
		return;
	k = addr_key(a);
	for (uint32_t l = 0; l < f->n_lens; l++) {
		const struct wp_authz_iplen *pl = &f->lens[l];
		struct wp_authz_key128 m;
		uint32_t lo = 0, hi = pl->n;

		if (pl->family != a->family)
			continue;
		m = key_mask(k, pl->family, pl->len);
		while (lo < hi) {
			uint32_t mid = (lo + hi) / 2;
			const struct wp_authz_key128 *x = &pl->keys[mid];

			if (x->hi < m.hi || (x->hi == m.hi && x->lo < m.lo))
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < pl->n && pl->keys[lo].hi == m.hi && pl->keys[lo].lo == m.lo)
			for (uint32_t i = pl->off[lo]; i < pl->off[lo + 1]; i++)
				set_term(r, pl->terms[i]);
	}
}

static void scan_port(struct run *r, const struct wp_authz_portfield *f, uint16_t port)
{
	uint32_t lo = 0, hi = f->n;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;

		if (f->ports[mid] < port)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < f->n && f->ports[lo] == port)
		for (uint32_t i = f->off[lo]; i < f->off[lo + 1]; i++)
			set_term(r, f->terms[i]);
}

static bool rule_holds(const struct run *r, const struct wp_authz_crule *cr)
{
	const struct wp_authz_table *t = r->t;

	for (uint32_t g = 0; g < cr->n_groups; g++) {
		const struct wp_authz_span *gr = &t->groups[cr->first_group + g];
		bool any = false;

		for (uint32_t e = 0; e < gr->n && !any; e++) {
			const struct wp_authz_span *en = &t->entries[gr->first + e];
			bool all = true;

			for (uint32_t c = 0; c < en->n && all; c++) {
				const struct wp_authz_conj *cj = &t->conjs[en->first + c];

				if (cj->http_only && r->mode)
					continue;
				all = term_set(r, cj->term) != cj->neg;
			}
			any = all;
		}
		if (!any)
			return false;
	}
	return true;
}

static void scan_all(struct run *r, const struct wp_authz_req *q)
{
	const struct wp_authz_table *t = r->t;

	for (uint32_t i = 0; i < t->n_sfields; i++) {
		const struct wp_authz_sfield *f = &t->sfields[i];

		switch (f->kind) {
		case WP_AUTHZ_F_PRINCIPAL:
			scan_field(r, f, q->principal, q->principal_len,
			           q->principal && q->principal_len);
			break;
		case WP_AUTHZ_F_SNI:
			scan_field(r, f, q->sni, q->sni_len, q->sni && q->sni_len);
			break;
		case WP_AUTHZ_F_HOST:
			if (q->is_http) {
				scan_field(r, f, q->host, q->host_len, q->host != NULL);
				if (q->host &&
				    wp_authz_host_len(q->host, q->host_len) != q->host_len)
					scan_field(r, f, q->host,
					           wp_authz_host_len(q->host, q->host_len), true);
			}
			break;
		case WP_AUTHZ_F_METHOD:
			if (q->is_http)
				scan_field(r, f, q->method, q->method_len, q->method != NULL);
			break;
		case WP_AUTHZ_F_PATH:
			if (q->is_http)
				scan_field(r, f, q->path, q->path_len, q->path && q->path_len);
			break;
		case WP_AUTHZ_F_HEADER:
			if (q->is_http && q->header) {
				uint32_t vl = 0;
				const char *v = q->header(q->header_ctx, f->name, f->name_len, &vl);

				scan_field(r, f, v, vl, v != NULL);
			}
			break;
		default:
			break;
		}
	}
	scan_ip(r, &t->ip[0], &q->src_ip);
	scan_ip(r, &t->ip[1], &q->remote_ip);
	scan_ip(r, &t->ip[2], &q->dst_ip);
	scan_port(r, &t->port, q->dst_port);
}

void wp_authz_eval(const struct wp_authz_table *t, struct wp_authz_scratch *s,
                   const struct wp_authz_req *q, struct wp_authz_decision *d)
{
	struct run r = {.t = t, .s = s, .mode = q->is_http ? 0 : 1};
	uint32_t best[4] = {UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};
	const struct wp_authz_crule *cr;

	memset(d, 0, sizeof(*d));
	d->rule = -1;
	if (!t) {
		d->allowed = true;
		return;
	}
	if (t->broken || (t->n_terms + 63) / 64 > s->n_words || t->n_rules > s->n_rules) {
		d->reason = WP_AUTHZ_R_TABLE_ERROR;
		return;
	}
	if (++s->gen == 0) {
		memset(s->stamp, 0, sizeof(*s->stamp) * s->n_rules);
		s->gen = 1;
	}
	scan_all(&r, q);
	for (uint32_t i = 0; i < t->n_always[r.mode]; i++)
		queue(&r, t->always[r.mode][i]);
	for (uint32_t i = 0; i < r.n_cand; i++) {
		uint32_t id = s->cand[i];

		cr = &t->rules[id];
		if (id < best[cr->action] && rule_holds(&r, cr))
			best[cr->action] = id;
	}
	for (uint32_t i = 0; i < r.n_touched; i++)
		s->bits[s->touched[i]] = 0;

	d->allowed = true;
	d->reason = WP_AUTHZ_R_NO_POLICY;
	if (best[WP_AUTHZ_CUSTOM] != UINT32_MAX) {
		d->allowed = false;
		d->reason = WP_AUTHZ_R_CUSTOM;
		cr = &t->rules[best[WP_AUTHZ_CUSTOM]];
		goto who;
	}
	d->audited = best[WP_AUTHZ_AUDIT] != UINT32_MAX;
	if (best[WP_AUTHZ_DENY] != UINT32_MAX) {
		cr = &t->rules[best[WP_AUTHZ_DENY]];
		d->allowed = false;
		d->reason = cr->flags & WP_AUTHZ_CR_INVALID ? WP_AUTHZ_R_DENY_INVALID
		                                            : WP_AUTHZ_R_DENY_MATCH;
		goto who;
	}
	if (!t->has_allow)
		return;
	if (best[WP_AUTHZ_ALLOW] == UINT32_MAX) {
		d->allowed = false;
		d->reason = WP_AUTHZ_R_NO_ALLOW_MATCH;
		return;
	}
	d->reason = WP_AUTHZ_R_ALLOW_MATCH;
	cr = &t->rules[best[WP_AUTHZ_ALLOW]];
who:
	d->ns = t->policies[cr->policy].ns;
	d->name = t->policies[cr->policy].name;
	d->rule = cr->index;
}
