/*
 * Route matching on the data plane (see wp/route.h): walks the precedence-
 * sorted match list of a compiled table and stops at the first hit, then
 * draws the weighted backend and the sampled mirrors with the core's PRNG.
 * Regexes are evaluated lazily: the first match that needs a regex on a
 * field scans that field once with the field's Hyperscan database, which
 * sets the bit of every regex on that field that matches the whole value;
 * later matches read the bits. Nothing allocates; the per-request state
 * lives in struct wp_route_core.
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <hs.h>

#include "wp/counters.h"
#include "wp/rand.h"
#include "wp/route.h"

void wp_route_core_init(struct wp_route_core *c, uint64_t seed, uint64_t *ctr)
{
	memset(c, 0, sizeof(*c));
	c->rng = seed * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
	if (!c->rng)
		c->rng = 1;
	c->ctr = ctr;
}

int wp_route_core_reserve(struct wp_route_core *c, const struct wp_route_table *t)
{
	for (uint16_t i = 0; t && i < t->n_fields; i++) {
		hs_scratch_t *s = (hs_scratch_t *)c->scratch;

		if (hs_alloc_scratch((const hs_database_t *)t->fields[i].db, &s) != HS_SUCCESS)
			return -ENOMEM;
		c->scratch = (struct hs_scratch *)s;
	}
	return 0;
}

void wp_route_core_fini(struct wp_route_core *c)
{
	if (c->scratch)
		hs_free_scratch((hs_scratch_t *)c->scratch);
	c->scratch = NULL;
}

static inline uint64_t rng_below(struct wp_route_core *c, uint64_t n)
{
	return wp_rand_below(&c->rng, n);
}

static const struct wp_http_hdr *find_hdr(const struct wp_route_req *req, const char *name,
                                          uint16_t len)
{
	for (uint16_t i = 0; i < req->n_hdrs; i++)
		if (req->hdrs[i].name_len == len && !strncasecmp(req->hdrs[i].name, name, len))
			return &req->hdrs[i];
	return NULL;
}

static bool find_query(const struct wp_route_req *req, const char *name, uint16_t len,
                       const char **v, size_t *vlen)
{
	if (req->path_len >= req->target_len || req->target[req->path_len] != '?')
		return false;
	return wp_lb_key_query(req->target, req->target_len, name, len, v, vlen) == 0;
}

/* Per-request regex state: which fields were scanned (bit per field index,
 * up to 64 fields tracked; more are scanned every time they are needed). */
struct re_state {
	uint64_t scanned;
	bool cleared;
};

static int on_hit(unsigned int id, unsigned long long from, unsigned long long to,
                  unsigned int flags, void *ctx)
{
	uint64_t *bits = ctx;

	(void)from;
	(void)to;
	(void)flags;
	bits[id / 64] |= 1ULL << (id % 64);
	return 0;
}

/* The value of field f in the request, or false when absent. */
static bool field_value(const struct wp_route_field *f, const struct wp_route_req *req,
                        const char **v, size_t *vlen)
{
	const struct wp_http_hdr *h;

	switch (f->kind) {
	case WP_ROUTE_FIELD_PATH:
		*v = req->target;
		*vlen = req->path_len;
		return true;
	case WP_ROUTE_FIELD_HEADER:
		h = find_hdr(req, f->name, f->name_len);
		if (!h)
			return false;
		*v = h->value;
		*vlen = h->value_len;
		return true;
	default:
		return find_query(req, f->name, f->name_len, v, vlen);
	}
}

static bool re_test(const struct wp_route_table *t, struct wp_route_core *c,
                    const struct wp_route_req *req, struct re_state *st, uint16_t field,
                    uint32_t id)
{
	const struct wp_route_field *f = &t->fields[field];
	const char *v;
	size_t vlen;

	if (!st->cleared) {
		memset(c->re_hits, 0, ((t->n_regex + 63) / 64) * sizeof(uint64_t));
		st->cleared = true;
	}
	if (field >= 64 || !(st->scanned & (1ULL << field))) {
		if (field < 64)
			st->scanned |= 1ULL << field;
		if (field_value(f, req, &v, &vlen)) {
			hs_error_t e =
			        c->scratch ? hs_scan((const hs_database_t *)f->db, vlen ? v : "",
			                             (unsigned)vlen, 0, (hs_scratch_t *)c->scratch,
			                             on_hit, c->re_hits)
			                   : HS_INVALID;

			if (e != HS_SUCCESS && c->ctr)
				wp_ctr_inc(c->ctr, WP_CTR_L7_ROUTE_REGEX_ERROR);
		}
	}
	return (c->re_hits[id / 64] >> (id % 64)) & 1;
}

static bool path_ok(const struct wp_route_table *t, struct wp_route_core *c,
                    const struct wp_route_req *req, struct re_state *st,
                    const struct wp_route_match *m)
{
	const char *p = req->target;
	uint32_t n = req->path_len;

	switch (m->path_type) {
	case WP_ROUTE_PATH_EXACT:
		return n == m->path_len && !memcmp(p, m->path, n);
	case WP_ROUTE_PATH_PREFIX:
		/* segment-aware: "/foo" matches "/foo", "/foo/..." but not "/foobar" */
		return n >= m->path_len && !memcmp(p, m->path, m->path_len) &&
		       (n == m->path_len || p[m->path_len] == '/');
	default:
		return re_test(t, c, req, st, m->path_field, m->path_re);
	}
}

static bool kv_ok(const struct wp_route_table *t, struct wp_route_core *c,
                  const struct wp_route_req *req, struct re_state *st, const struct wp_route_kv *kv,
                  bool header)
{
	const char *v;
	size_t vlen;

	if (header) {
		const struct wp_http_hdr *h = find_hdr(req, kv->name, kv->name_len);

		if (!h)
			return false;
		v = h->value;
		vlen = h->value_len;
	} else if (!find_query(req, kv->name, kv->name_len, &v, &vlen)) {
		return false;
	}
	if (kv->type == WP_ROUTE_STR_EXACT)
		return vlen == kv->value_len && !memcmp(v, kv->value, vlen);
	return re_test(t, c, req, st, kv->field, kv->re);
}

static bool match_ok(const struct wp_route_table *t, struct wp_route_core *c,
                     const struct wp_route_req *req, struct re_state *st,
                     const struct wp_route_match *m)
{
	if (m->has_method && m->method != req->method)
		return false;
	if (!path_ok(t, c, req, st, m))
		return false;
	for (uint16_t i = 0; i < m->n_headers; i++)
		if (!kv_ok(t, c, req, st, &m->headers[i], true))
			return false;
	for (uint16_t i = 0; i < m->n_query; i++)
		if (!kv_ok(t, c, req, st, &m->query[i], false))
			return false;
	return true;
}

int wp_route_select(const struct wp_route_table *t, struct wp_route_core *c,
                    const struct wp_route_req *req, struct wp_route_decision *d)
{
	struct re_state st = {0};
	const struct wp_route_rule *r;

	memset(d, 0, sizeof(*d));
	if (!t->n_matches) {
		r = &t->rules[t->n_rules - 1];
	} else {
		for (uint32_t i = 0; i < t->n_matches; i++)
			if (match_ok(t, c, req, &st, &t->matches[i])) {
				d->match = &t->matches[i];
				break;
			}
		if (!d->match) {
			if (c->ctr)
				wp_ctr_inc(c->ctr, WP_CTR_L7_ROUTE_NO_MATCH);
			return -ENOENT;
		}
		r = &t->rules[d->match->rule];
	}
	d->rule = r;
	if (r->flags & WP_ROUTE_F_REDIRECT) {
		d->status = r->redirect.status;
		return 0;
	}
	if (r->total_weight) {
		uint64_t x = rng_below(c, r->total_weight);

		for (uint16_t i = 0; i < r->n_backends; i++) {
			if (x < r->backends[i].weight) {
				if (r->backends[i].cluster < t->n_clusters)
					d->cluster = &t->clusters[r->backends[i].cluster];
				break;
			}
			x -= r->backends[i].weight;
		}
	}
	if (!d->cluster) {
		d->status = 500;
		if (c->ctr)
			wp_ctr_inc(c->ctr, WP_CTR_L7_ROUTE_NO_BACKEND);
		return 0;
	}
	for (uint16_t i = 0; i < r->n_mirrors && d->n_mirrors < WP_ROUTE_MAX_MIRRORS; i++) {
		const struct wp_route_mirror *m = &r->mirrors[i];

		if (m->cluster < t->n_clusters &&
		    (m->per_million >= 1000000 || rng_below(c, 1000000) < m->per_million))
			d->mirrors[d->n_mirrors++] = &t->clusters[m->cluster];
	}
	return 0;
}

bool wp_route_cluster_hash(const struct wp_route_cluster *cl, const struct wp_route_req *req,
                           uint64_t *hash)
{
	const struct wp_http_hdr *h;
	const char *v;
	size_t vlen;

	switch (cl->hash_key) {
	case WP_ROUTE_HASH_HEADER:
		h = find_hdr(req, cl->hash_name, cl->hash_name_len);
		if (!h)
			return false;
		*hash = wp_lb_hash(h->value, h->value_len);
		return true;
	case WP_ROUTE_HASH_COOKIE:
		for (uint16_t i = 0; i < req->n_hdrs; i++)
			if (req->hdrs[i].id == WP_HDR_COOKIE &&
			    !wp_lb_key_cookie(req->hdrs[i].value, req->hdrs[i].value_len,
			                      cl->hash_name, cl->hash_name_len, &v, &vlen)) {
				*hash = wp_lb_hash(v, vlen);
				return true;
			}
		return false;
	case WP_ROUTE_HASH_SOURCE_IP:
		if (!req->src || req->src->family == WP_AF_NONE)
			return false;
		*hash = wp_lb_hash_addr(req->src);
		return true;
	case WP_ROUTE_HASH_QUERY:
		if (!find_query(req, cl->hash_name, cl->hash_name_len, &v, &vlen))
			return false;
		*hash = wp_lb_hash(v, vlen);
		return true;
	default:
		return false;
	}
}

struct out {
	char *buf;
	size_t cap, len;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (n > o->cap - o->len) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

#define PUT_LIT(o, s) put((o), (s), sizeof(s) - 1)

/* Writes the new path for <pm> (full replacement, or the matched prefix
 * replaced the way Envoy does it: "/foo" -> "/" turns "/foo/bar" into
 * "/bar", never "//bar"). */
static void put_path(struct out *o, const struct wp_route_path_mod *pm,
                     const struct wp_route_match *m, const struct wp_route_req *req)
{
	if (pm->type == WP_ROUTE_REWRITE_FULL) {
		put(o, pm->value, pm->value_len);
		return;
	}
	/* prefix: m is a PathPrefix match (checked at compile time) */
	const char *rest = req->target + (m ? m->path_len : 0);
	size_t rlen = req->path_len - (m ? m->path_len : 0);
	size_t vlen = pm->value_len;

	while (vlen > 1 && pm->value[vlen - 1] == '/')
		vlen--;
	if (vlen == 1 && pm->value[0] == '/') {
		if (!rlen)
			PUT_LIT(o, "/");
		else
			put(o, rest, rlen);
		return;
	}
	put(o, pm->value, vlen);
	put(o, rest, rlen);
}

int wp_route_rewrite_target(const struct wp_route_decision *d, const struct wp_route_req *req,
                            char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap};

	if (!d->rule || !(d->rule->flags & WP_ROUTE_F_REWRITE) ||
	    d->rule->rewrite.type == WP_ROUTE_REWRITE_NONE)
		return 0;
	if (d->rule->rewrite.type == WP_ROUTE_REWRITE_PREFIX &&
	    (!d->match || d->match->path_type != WP_ROUTE_PATH_PREFIX))
		return 0;
	put_path(&o, &d->rule->rewrite, d->match, req);
	put(&o, req->target + req->path_len, req->target_len - req->path_len);
	if (o.full || o.len > INT32_MAX)
		return -ENOSPC;
	return (int)o.len;
}

static const char *redirect_reason(uint16_t s)
{
	switch (s) {
	case 301:
		return "Moved Permanently";
	case 303:
		return "See Other";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	default:
		return "Found";
	}
}

static void put_u32(struct out *o, uint32_t v)
{
	char tmp[10];
	size_t n = 0;

	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, tmp + sizeof(tmp) - n, n);
}

int wp_route_write_redirect(const struct wp_route_decision *d, const struct wp_route_req *req,
                            bool keep_alive, char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap};
	const struct wp_route_redirect *rd;
	const struct wp_http_hdr *host;
	const char *scheme, *hn, *hp = NULL;
	size_t hnlen, hplen = 0;
	uint16_t port;

	if (!d->rule || !(d->rule->flags & WP_ROUTE_F_REDIRECT))
		return -EINVAL;
	rd = &d->rule->redirect;
	scheme = rd->scheme ? rd->scheme : "http";
	host = find_hdr(req, "host", 4);
	hn = host ? host->value : "";
	hnlen = host ? host->value_len : 0;
	/* split "name:port" / "[v6]:port" */
	for (size_t i = hnlen; i > 0; i--) {
		if (hn[i - 1] == ':') {
			hp = hn + i;
			hplen = hnlen - i;
			hnlen = i - 1;
			break;
		}
		if (hn[i - 1] == ']' || hn[i - 1] < '0' || hn[i - 1] > '9')
			break;
	}
	if (rd->hostname) {
		hn = rd->hostname;
		hnlen = strlen(rd->hostname);
	}
	port = rd->port;
	put(&o, "HTTP/1.1 ", 9);
	put_u32(&o, rd->status);
	PUT_LIT(&o, " ");
	put(&o, redirect_reason(rd->status), strlen(redirect_reason(rd->status)));
	PUT_LIT(&o, "\r\nlocation: ");
	put(&o, scheme, strlen(scheme));
	PUT_LIT(&o, "://");
	put(&o, hn, hnlen);
	if (port) {
		bool well_known = (port == 80 && !strcmp(scheme, "http")) ||
		                  (port == 443 && !strcmp(scheme, "https"));
		if (!well_known) {
			PUT_LIT(&o, ":");
			put_u32(&o, port);
		}
	} else if (hp && hplen && !rd->scheme) {
		PUT_LIT(&o, ":");
		put(&o, hp, hplen);
	}
	if (rd->path.type != WP_ROUTE_REWRITE_NONE &&
	    (rd->path.type == WP_ROUTE_REWRITE_FULL ||
	     (d->match && d->match->path_type == WP_ROUTE_PATH_PREFIX)))
		put_path(&o, &rd->path, d->match, req);
	else
		put(&o, req->target, req->path_len);
	put(&o, req->target + req->path_len, req->target_len - req->path_len);
	PUT_LIT(&o, "\r\ncontent-length: 0\r\n");
	if (!keep_alive)
		PUT_LIT(&o, "connection: close\r\n");
	PUT_LIT(&o, "\r\n");
	if (o.full || o.len > INT32_MAX)
		return -ENOSPC;
	return (int)o.len;
}

void wp_route_table_free(struct wp_route_table *t)
{
	if (!t)
		return;
	for (uint16_t i = 0; i < t->n_fields; i++)
		hs_free_database((hs_database_t *)t->fields[i].db);
	for (uint32_t i = 0; i < t->n_clusters; i++)
		wp_lb_table_free(t->clusters[i].lb);
	wp_arena_free(&t->arena);
	free(t);
}
