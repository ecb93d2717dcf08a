/*
 * Istio VirtualService http rules, compiled into the same route table as
 * HTTPRoute rules (route_compile_int.h), so the data path serves both with
 * one matcher. Called by route_compile.c for a service port no HTTPRoute
 * binds; the rules of the VirtualServices binding the Service are appended
 * in order (oldest VirtualService first), and the table keeps that order:
 * the first matching rule wins, as in Istio.
 *
 * What the table can express is compiled exactly:
 *   match      uri exact / prefix / regex, headers and queryParams exact /
 *              prefix / regex (a prefix is a regex on the escaped literal;
 *              `{}` means "present"), method exact, port (decided here: a
 *              match for another port is left out of this port's table);
 *   route      destination host (Service short name, name.ns or FQDN),
 *              subset (DestinationRule subset cluster), port, weight;
 *   rewrite    uri (after an exact or prefix uri match), authority;
 *   redirect   uri, authority, port, scheme, redirectCode;
 *   headers    request / response set, add, remove;
 *   timeout, retries (attempts, perTryTimeout, backoff, retryOn as far as
 *   wp_route_retry holds it), mirror + mirrorPercentage, mirrors;
 *   fault      delay (fixedDelay, percentage or the deprecated percent) and
 *              abort (httpStatus or grpcStatus, percentage).
 * Anything else in a rule or a match leaves the rule out with
 * "ORIGIN:LINE: VirtualService NS/NAME: FIELD: problem". Retry fields and
 * retryOn conditions the table has no place for, and
 * tcp/tls routes are compiled without effect, listed in the errors and
 * counted (table->n_vs_not_applied).
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route_compile_int.h"

/* ---- binding ----------------------------------------------------------------- */

/* Splits a VirtualService host into a Service ns/name; false when it cannot
 * name a Service of this cluster (wildcards, external hosts). */
static bool host_service(const char *host, const char *vs_ns, const char *domain, char *ns,
                         size_t ns_len, char *name, size_t name_len)
{
	char buf[256];
	char *dot;
	size_t n = strlen(host), dl = strlen(domain);

	if (!n || n >= sizeof(buf) || strchr(host, '*'))
		return false;
	memcpy(buf, host, n + 1);
	/* name.ns.svc.<domain> -> name.ns.svc -> name.ns */
	if (n > dl + 1 && buf[n - dl - 1] == '.' && !strcmp(buf + n - dl, domain)) {
		n -= dl + 1;
		buf[n] = '\0';
		if (n < 5 || strcmp(buf + n - 4, ".svc"))
			return false;
	}
	if (n > 4 && !strcmp(buf + n - 4, ".svc"))
		buf[n - 4] = '\0';
	dot = strchr(buf, '.');
	if (!dot) {
		snprintf(ns, ns_len, "%s", vs_ns);
		snprintf(name, name_len, "%s", buf);
		return true;
	}
	*dot = '\0';
	if (strchr(dot + 1, '.') || !buf[0] || !dot[1])
		return false;
	snprintf(ns, ns_len, "%s", dot + 1);
	snprintf(name, name_len, "%s", buf);
	return true;
}

bool wp_route_vs_binds(const struct wp_obj *vs, const char *ns, const char *name,
                       const char *domain)
{
	const struct wp_k8s_virtualservice *v = &vs->u.vs;
	bool mesh = !v->n_gateways;
	char hns[128], hname[128];

	if (vs->kind != WP_KIND_VIRTUALSERVICE)
		return false;
	for (uint32_t i = 0; i < v->n_gateways; i++)
		if (!strcmp(v->gateways[i], "mesh"))
			mesh = true;
	if (!mesh)
		return false;
	for (uint32_t i = 0; i < v->n_hosts; i++)
		if (host_service(v->hosts[i], vs->meta.ns, domain ? domain : "cluster.local", hns,
		                 sizeof(hns), hname, sizeof(hname)) &&
		    !strcmp(hns, ns) && !strcmp(hname, name))
			return true;
	return false;
}

/* ---- small readers ------------------------------------------------------------ */

/* The keys a mapping may have; the first other key is reported and leaves
 * the rule out. */
static bool keys_ok(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *map,
                    const char *field, const char *const *known)
{
	for (const struct wp_ynode *k = map->child; k; k = k->next) {
		size_t i;

		for (i = 0; known[i]; i++)
			if (!strcmp(k->key, known[i]))
				break;
		if (!known[i]) {
			wp_route_cerr(c, o, k, field, "%s is not supported; the rule is left out",
			              k->key);
			return false;
		}
	}
	return true;
}

/* A protobuf Duration ("1.5s") or a Gateway API one ("500ms", "1m30s"). */
static int vs_duration(const char *s, uint32_t *ms)
{
	uint64_t whole = 0, frac = 0, scale = 1000;
	const char *p = s;

	if (!s || !*s)
		return -EINVAL;
	if (!wp_route_parse_duration(s, ms))
		return 0;
	while (*p >= '0' && *p <= '9' && whole < 100000000)
		whole = whole * 10 + (uint64_t)(*p++ - '0');
	if (p == s)
		return -EINVAL;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
			p++;
		}
	}
	if (strcmp(p, "s") || whole * 1000 + frac > UINT32_MAX)
		return -EINVAL;
	*ms = (uint32_t)(whole * 1000 + frac);
	return 0;
}

/* A regex matching the literal s followed by anything. */
static const char *prefix_regex(struct cctx *c, const char *s)
{
	size_t n = strlen(s);
	char *r = aalloc(c, 2 * n + 3), *w = r;

	if (!r)
		return NULL;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s))
			*w++ = '\\';
		*w++ = *s;
	}
	memcpy(w, ".*", 3);
	return r;
}

enum { SM_EXACT, SM_PREFIX, SM_REGEX, SM_PRESENT };

/* An Istio StringMatch: one of exact, prefix, regex ({} = present). */
static bool strmatch(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *n,
                     const char *field, int *type, const char **value)
{
	static const char *const keys[] = {"exact", "prefix", "regex"};

	if (!n || n->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, n, field, "expected a StringMatch mapping");
		return false;
	}
	if (!n->n) {
		*type = SM_PRESENT;
		*value = ".*";
		return true;
	}
	if (n->n != 1) {
		wp_route_cerr(c, o, n, field, "exactly one of exact, prefix, regex");
		return false;
	}
	for (int i = 0; i < 3; i++)
		if (!strcmp(n->child->key, keys[i])) {
			*type = i;
			*value = scalar(n->child);
			if (!*value)
				*value = "";
			return true;
		}
	wp_route_cerr(c, o, n->child, field, "%s is not supported (exact, prefix or regex)",
	              n->child->key);
	return false;
}

/* headers / queryParams of one match: a map name -> StringMatch. */
static bool kvs(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *map,
                const char *field, bool header, uint16_t *n_out, const struct wp_route_kv **out)
{
	struct wp_route_kv *kv;
	uint32_t n = 0;
	char f[200];

	if (!map)
		return true;
	if (map->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, map, field, "expected a mapping");
		return false;
	}
	kv = aalloc(c, sizeof(*kv) * (map->n + 1));
	if (!kv)
		return false;
	for (const struct wp_ynode *e = map->child; e; e = e->next) {
		const char *v;
		int type;

		fieldf(f, sizeof(f), "%s.%s", field, e->key);
		if (header ? !is_token(e->key) : !*e->key) {
			wp_route_cerr(c, o, e, f,
			              "invalid name (pseudo-headers are not supported)");
			return false;
		}
		if (!strmatch(c, o, e, f, &type, &v))
			return false;
		kv[n].name = header ? lower_dup(c, e->key) : astrdup(c, e->key);
		kv[n].name_len = (uint16_t)strlen(e->key);
		if (type == SM_EXACT) {
			kv[n].type = WP_ROUTE_STR_EXACT;
			kv[n].value = astrdup(c, v);
		} else {
			kv[n].type = WP_ROUTE_STR_REGEX;
			kv[n].value = type == SM_PREFIX ? prefix_regex(c, v) : astrdup(c, v);
			if (kv[n].value &&
			    !wp_route_re_add(c, o, e, f,
			                     header ? WP_ROUTE_FIELD_HEADER : WP_ROUTE_FIELD_QUERY,
			                     kv[n].name, kv[n].value, &kv[n].re, &kv[n].field))
				return false;
		}
		if (c->oom)
			return false;
		kv[n].value_len = (uint32_t)strlen(kv[n].value);
		n++;
	}
	*n_out = (uint16_t)n;
	*out = kv;
	return true;
}

/* ---- matches ------------------------------------------------------------------ */

/* One HTTPMatchRequest. Returns 1 (parsed into m), 0 (a match for another
 * port: not on this table) or -1 (error reported). */
static int vs_match(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *mn,
                    const char *field, bool rewrite_uri, struct wp_route_match *m)
{
	static const char *const known[] = {"name",   "uri",  "headers", "queryParams",
	                                    "method", "port", NULL};
	const struct wp_ynode *uri = nget(mn, "uri"), *meth = nget(mn, "method");
	const char *port = sget(mn, "port");
	char f[200];
	uint32_t p;

	m->path_type = WP_ROUTE_PATH_PREFIX;
	m->path = "";
	if (mn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, mn, field, "expected a mapping");
		return -1;
	}
	if (!keys_ok(c, o, mn, field, known))
		return -1;
	if (port) {
		if (!parse_u32(port, 65535, &p) || !p) {
			fieldf(f, sizeof(f), "%s.port", field);
			wp_route_cerr(c, o, mn, f, "must be 1..65535, got %s", port);
			return -1;
		}
		if (p != c->in->port)
			return 0;
	}
	if (rewrite_uri && !uri) {
		wp_route_cerr(c, o, mn, field,
		              "rewrite.uri needs every match to have a uri exact or prefix");
		return -1;
	}
	if (uri) {
		const char *v;
		int type;

		fieldf(f, sizeof(f), "%s.uri", field);
		if (!strmatch(c, o, uri, f, &type, &v))
			return -1;
		if (type == SM_PRESENT && !rewrite_uri)
			return 1; /* every request has a path */
		if (type == SM_PRESENT) {
			wp_route_cerr(
			        c, o, uri, f,
			        "rewrite.uri needs a uri exact or prefix; the rule is left out");
			return -1;
		}
		if (type != SM_REGEX && v[0] != '/') {
			wp_route_cerr(c, o, uri, f, "must start with '/', got \"%s\"", v);
			return -1;
		}
		if (rewrite_uri && type != SM_EXACT && type != SM_PREFIX) {
			wp_route_cerr(c, o, uri, f,
			              "rewrite.uri after a uri regex is not supported; the rule is "
			              "left out");
			return -1;
		}
		if (type == SM_EXACT) {
			m->path_type = WP_ROUTE_PATH_EXACT;
			m->path = astrdup(c, v);
		} else if (type == SM_PREFIX && rewrite_uri) {
			/* the table rewrites after a segment-aware prefix only */
			size_t n = strlen(v);

			if (v[n - 1] == '/') {
				wp_route_cerr(c, o, uri, f,
				              "rewrite.uri after a uri prefix ending in '/' is not "
				              "supported; the rule is left out");
				return -1;
			}
			wp_route_cerr(c, o, uri, f,
			              "prefix \"%s\" with rewrite.uri matches at a path segment "
			              "boundary only (%s, %s/...), not %s<more>",
			              v, v, v, v);
			m->path = astrdup(c, v);
		} else if (type == SM_PREFIX && !strcmp(v, "/")) {
			return 1;
		} else {
			m->path_type = WP_ROUTE_PATH_REGEX;
			m->path = type == SM_PREFIX ? prefix_regex(c, v) : astrdup(c, v);
			if (m->path && !wp_route_re_add(c, o, uri, f, WP_ROUTE_FIELD_PATH, NULL,
			                                m->path, &m->path_re, &m->path_field))
				return -1;
		}
		if (!m->path) {
			c->oom = true;
			return -1;
		}
		m->path_len = (uint32_t)strlen(m->path);
	}
	if (meth) {
		const char *v;
		int type;

		fieldf(f, sizeof(f), "%s.method", field);
		if (!strmatch(c, o, meth, f, &type, &v))
			return -1;
		if (type != SM_EXACT || !wp_route_method(v, &m->method)) {
			wp_route_cerr(c, o, meth, f,
			              "only an exact, known method is supported; the rule is left "
			              "out");
			return -1;
		}
		m->has_method = true;
	}
	fieldf(f, sizeof(f), "%s.headers", field);
	if (!kvs(c, o, nget(mn, "headers"), f, true, &m->n_headers, &m->headers))
		return -1;
	fieldf(f, sizeof(f), "%s.queryParams", field);
	if (!kvs(c, o, nget(mn, "queryParams"), f, false, &m->n_query, &m->query))
		return -1;
	return 1;
}

/* ---- actions ------------------------------------------------------------------ */

/* A Destination: its cluster (NO_CLUSTER, reported, when it does not
 * resolve: the backend then answers 500, as an HTTPRoute's would). */
static uint32_t destination(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *d,
                            const char *field)
{
	const char *host = sget(d, "host"), *subset = sget(d, "subset"), *why = NULL;
	const char *port = sget(nget(d, "port"), "number");
	char ns[128], name[128];
	uint32_t p = c->in->port, idx;

	if (!d || d->type != WP_YNODE_MAP || !host) {
		wp_route_cerr(c, o, d, field, "destination.host is required");
		return NO_CLUSTER;
	}
	if (!host_service(host, o->meta.ns, c->domain, ns, sizeof(ns), name, sizeof(name))) {
		wp_route_cerr(c, o, d, field,
		              "host %s does not name a Service of this cluster (answers 500)",
		              host);
		return NO_CLUSTER;
	}
	if (port && (!parse_u32(port, 65535, &p) || !p)) {
		wp_route_cerr(c, o, d, field, "port.number must be 1..65535, got %s", port);
		return NO_CLUSTER;
	}
	idx = wp_route_cluster_get(c, ns, name, (uint16_t)p, subset, &why);
	if (idx == NO_CLUSTER && !c->oom)
		wp_route_cerr(c, o, d, field, "Service %s/%s port %u%s%s: %s (answers 500)", ns,
		              name, p, subset ? " subset " : "", subset ? subset : "",
		              why ? why : "unresolved");
	return idx;
}

/* set / add (maps name -> value) and remove (a list) into mods. */
static bool hdr_ops(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *hn,
                    const char *field, struct wp_http_hdr_mods *mods)
{
	const struct wp_ynode *set = nget(hn, "set"), *add = nget(hn, "add"),
	                      *rm = nget(hn, "remove");
	static const char *const known[] = {"set", "add", "remove", NULL};
	char f[200];

	if (!hn)
		return true;
	if (hn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, hn, field, "expected a mapping");
		return false;
	}
	if (!keys_ok(c, o, hn, field, known))
		return false;
	for (int pass = 0; pass < 2; pass++) {
		const struct wp_ynode *map = pass ? add : set;
		struct wp_http_hdr *v;
		uint16_t n = 0;

		if (!map)
			continue;
		fieldf(f, sizeof(f), "%s.%s", field, pass ? "add" : "set");
		if (map->type != WP_YNODE_MAP) {
			wp_route_cerr(c, o, map, f, "expected a mapping of header names to values");
			return false;
		}
		/* set may already hold the rewrite's host */
		v = aalloc(c, sizeof(*v) * (map->n + (pass ? 0 : mods->n_set) + 1));
		if (!v)
			return false;
		if (!pass && mods->n_set) {
			memcpy(v, mods->set, sizeof(*v) * mods->n_set);
			n = mods->n_set;
		}
		for (const struct wp_ynode *e = map->child; e; e = e->next) {
			const char *value = scalar(e);

			if (!is_token(e->key) || (value && strpbrk(value, "\r\n"))) {
				wp_route_cerr(c, o, e, f, "%s: invalid header name or value",
				              e->key);
				return false;
			}
			v[n].name = lower_dup(c, e->key);
			v[n].name_len = (uint16_t)strlen(e->key);
			v[n].value = astrdup(c, value ? value : "");
			v[n].value_len = (uint32_t)strlen(value ? value : "");
			n++;
		}
		if (pass) {
			mods->add = v;
			mods->n_add = n;
		} else {
			mods->set = v;
			mods->n_set = n;
		}
	}
	if (rm && !wp_route_hdr_remove(c, o, rm, field, mods))
		return false;
	return !c->oom;
}

/* One retryOn condition into rt; false when the table has no place for it. */
static bool retry_on(const char *s, size_t n, struct wp_route_retry *rt)
{
	static const struct {
		const char *name;
		uint16_t bit;
	} t[] = {
	        {"connect-failure", WP_ROUTE_RETRY_CONNECT_FAILURE},
	        {"refused-stream", WP_ROUTE_RETRY_REFUSED_STREAM},
	        {"unavailable", WP_ROUTE_RETRY_UNAVAILABLE},
	        {"cancelled", WP_ROUTE_RETRY_CANCELLED},
	        {"5xx", WP_ROUTE_RETRY_5XX},
	        {"gateway-error", WP_ROUTE_RETRY_GATEWAY_ERROR},
	        {"reset", WP_ROUTE_RETRY_RESET},
	        {"retriable-4xx", WP_ROUTE_RETRY_RETRIABLE_4XX},
	        {"deadline-exceeded", WP_ROUTE_RETRY_DEADLINE},
	        {"internal", WP_ROUTE_RETRY_INTERNAL},
	        {"resource-exhausted", WP_ROUTE_RETRY_RES_EXHAUSTED},
	};
	char buf[8];
	uint32_t code;

	for (size_t i = 0; i < WP_ARRAY_SIZE(t); i++)
		if (strlen(t[i].name) == n && !strncmp(s, t[i].name, n)) {
			rt->on |= t[i].bit;
			return true;
		}
	/* the codes themselves come as numbers in the list (Istio moves them
	 * into retriable_status_codes) */
	if (n == strlen("retriable-status-codes") && !strncmp(s, "retriable-status-codes", n))
		return true;
	if (n == 3 && rt->n_codes < WP_ROUTE_RETRY_MAX_CODES) {
		memcpy(buf, s, 3);
		buf[3] = '\0';
		if (parse_u32(buf, 599, &code) && code >= 400) {
			rt->codes[rt->n_codes++] = (uint16_t)code;
			return true;
		}
	}
	return false;
}

/* HTTPRetry as istiod converts it: no attempts (or 0) disables retries,
 * perTryTimeout included; otherwise Istio's default policy with the given
 * attempts, retryOn (its status codes replace the default 503), per-try
 * timeout and backoff. */
static bool retries(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rn,
                    const char *field, struct wp_route_rule *r)
{
	static const char *const known[] = {
	        "attempts", "perTryTimeout",         "retryOn",
	        "backoff",  "retryRemoteLocalities", "retryIgnorePreviousHosts",
	        NULL};
	const char *att = sget(rn, "attempts"), *ptt = sget(rn, "perTryTimeout"),
	           *on = sget(rn, "retryOn"), *bo = sget(rn, "backoff");
	uint32_t v = 0;

	if (rn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, rn, field, "expected a mapping");
		return false;
	}
	if (!keys_ok(c, o, rn, field, known))
		return false;
	if (att && !parse_u32(att, 1000, &v)) {
		wp_route_cerr(c, o, rn, field, "attempts must be 0..1000, got %s", att);
		return false;
	}
	if (!v) {
		memset(&r->retry, 0, sizeof(r->retry));
		return true;
	}
	r->retry.attempts = (uint16_t)v;
	if (ptt && vs_duration(ptt, &r->backend_timeout_ms)) {
		wp_route_cerr(c, o, rn, field, "perTryTimeout is not a duration: %s", ptt);
		return false;
	}
	if (bo && vs_duration(bo, &r->retry.backoff_ms)) {
		wp_route_cerr(c, o, rn, field, "backoff is not a duration: %s", bo);
		return false;
	}
	for (int i = 0; i < 2; i++) {
		const char *k = i ? "retryIgnorePreviousHosts" : "retryRemoteLocalities";

		if (nget(rn, k)) {
			wp_route_cerr(c, o, wp_ynode_get(rn, k), field,
			              "%s is not applied (not enforced by this waypoint)", k);
			c->t->n_vs_not_applied++;
		}
	}
	if (on) {
		r->retry.on = 0;
		r->retry.n_codes = 0;
		for (const char *s = on; *s;) {
			size_t n = strcspn(s, ",");

			while (n && *s == ' ') {
				s++;
				n--;
			}
			if (n && !retry_on(s, n, &r->retry)) {
				wp_route_cerr(c, o, rn, field,
				              "retryOn %.*s is not applied (not enforced by this "
				              "waypoint)",
				              (int)n, s);
				c->t->n_vs_not_applied++;
			}
			s += n;
			if (*s == ',')
				s++;
		}
	}
	return true;
}

/* mirror + mirrorPercentage, and mirrors[] ({destination, percentage}). */
static bool mirrors(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rn,
                    const char *field, struct wp_route_rule *r)
{
	const struct wp_ynode *one = nget(rn, "mirror"), *many = nget(rn, "mirrors");
	uint32_t cap = (one ? 1 : 0) + (many && many->type == WP_YNODE_SEQ ? many->n : 0), i = 0;
	struct wp_route_mirror *mv;
	char f[200];

	if (!one && !many)
		return true;
	if (many && many->type != WP_YNODE_SEQ) {
		wp_route_cerr(c, o, many, field, "mirrors: expected a list");
		return false;
	}
	if (cap > WP_ROUTE_MAX_MIRRORS) {
		wp_route_cerr(c, o, rn, field, "at most %d mirrors", WP_ROUTE_MAX_MIRRORS);
		return false;
	}
	mv = aalloc(c, sizeof(*mv) * cap);
	if (!mv)
		return false;
	for (const struct wp_ynode *e = one ? one : many->child; e;
	     e = e == one ? (many ? many->child : NULL) : e->next) {
		const struct wp_ynode *dest = e == one ? e : nget(e, "destination");
		const struct wp_ynode *pn =
		        e == one ? nget(rn, "mirrorPercentage") : nget(e, "percentage");
		const char *pct = sget(pn, "value");
		double d = 100.0;
		char *end;

		fieldf(f, sizeof(f), "%s.%s", field, e == one ? "mirror" : "mirrors");
		if (pct) {
			d = strtod(pct, &end);
			if (*end || !(d >= 0.0 && d <= 100.0)) {
				wp_route_cerr(c, o, pn, f, "percentage must be 0..100, got %s",
				              pct);
				return false;
			}
		}
		mv[i].cluster = destination(c, o, dest, f);
		mv[i].per_million = (uint32_t)(d * 10000.0 + 0.5);
		if (mv[i].cluster == NO_CLUSTER)
			return false;
		i++;
	}
	r->mirrors = mv;
	r->n_mirrors = (uint16_t)i;
	return true;
}

static bool redirect(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rd,
                     const char *field, struct wp_route_rule *r)
{
	static const char *const known[] = {"uri",    "authority",    "port",
	                                    "scheme", "redirectCode", NULL};
	const char *uri = sget(rd, "uri"), *auth = sget(rd, "authority"), *port = sget(rd, "port"),
	           *scheme = sget(rd, "scheme"), *code = sget(rd, "redirectCode");
	uint32_t v;

	if (rd->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, rd, field, "expected a mapping");
		return false;
	}
	if (!keys_ok(c, o, rd, field, known))
		return false;
	r->flags |= WP_ROUTE_F_REDIRECT;
	r->redirect.status = 301; /* Istio's default redirectCode */
	if (code) {
		if (!parse_u32(code, 999, &v) ||
		    (v != 301 && v != 302 && v != 303 && v != 307 && v != 308)) {
			wp_route_cerr(c, o, rd, field,
			              "redirectCode must be 301, 302, 303, 307 or 308, got %s",
			              code);
			return false;
		}
		r->redirect.status = (uint16_t)v;
	}
	if (scheme && strcmp(scheme, "http") && strcmp(scheme, "https")) {
		wp_route_cerr(c, o, rd, field, "scheme must be http or https, got %s", scheme);
		return false;
	}
	if (auth && (!*auth || strpbrk(auth, " /\r\n"))) {
		wp_route_cerr(c, o, rd, field, "invalid authority \"%s\"", auth);
		return false;
	}
	if (port) {
		if (!parse_u32(port, 65535, &v) || !v) {
			wp_route_cerr(c, o, rd, field, "port must be 1..65535, got %s", port);
			return false;
		}
		r->redirect.port = (uint16_t)v;
	}
	if (uri) {
		if (uri[0] != '/' || strpbrk(uri, "?# \r\n")) {
			wp_route_cerr(c, o, rd, field, "uri must be an absolute path, got \"%s\"",
			              uri);
			return false;
		}
		r->redirect.path.type = WP_ROUTE_REWRITE_FULL;
		r->redirect.path.value = astrdup(c, uri);
		r->redirect.path.value_len = (uint32_t)strlen(uri);
	}
	r->redirect.scheme = scheme ? astrdup(c, scheme) : NULL;
	r->redirect.hostname = auth ? astrdup(c, auth) : NULL;
	return !c->oom;
}

/* rewrite.uri (the path part; the matches decide prefix or full) and
 * rewrite.authority (a `set host`). */
static bool rewrite(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rw,
                    const char *field, struct wp_route_rule *r)
{
	static const char *const known[] = {"uri", "authority", NULL};
	const char *uri = sget(rw, "uri"), *auth = sget(rw, "authority");
	struct wp_http_hdr *h;

	if (rw->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, rw, field, "expected a mapping");
		return false;
	}
	if (!keys_ok(c, o, rw, field, known))
		return false;
	r->flags |= WP_ROUTE_F_REWRITE;
	if (uri) {
		if (uri[0] != '/' || strpbrk(uri, "?# \r\n")) {
			wp_route_cerr(c, o, rw, field, "uri must be an absolute path, got \"%s\"",
			              uri);
			return false;
		}
		r->rewrite.value = astrdup(c, uri);
		r->rewrite.value_len = (uint32_t)strlen(uri);
	}
	if (auth) {
		if (!*auth || strpbrk(auth, " /\r\n")) {
			wp_route_cerr(c, o, rw, field, "invalid authority \"%s\"", auth);
			return false;
		}
		h = aalloc(c, sizeof(*h));
		if (!h)
			return false;
		h->name = "host";
		h->name_len = 4;
		h->value = astrdup(c, auth);
		h->value_len = (uint32_t)strlen(auth);
		r->req_mods.set = h;
		r->req_mods.n_set = 1;
	}
	return !c->oom;
}

/* route[]: weighted destinations. */
static bool routes(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rs,
                   const char *field, struct wp_route_rule *r)
{
	static const char *const known[] = {"destination", "weight", NULL};
	struct wp_route_backend *be;
	uint32_t i = 0;
	char f[200];

	if (rs->type != WP_YNODE_SEQ || !rs->n) {
		wp_route_cerr(c, o, rs, field, "expected a non-empty list");
		return false;
	}
	be = aalloc(c, sizeof(*be) * rs->n);
	if (!be)
		return false;
	for (const struct wp_ynode *e = rs->child; e; e = e->next, i++) {
		const char *w = sget(e, "weight");
		uint32_t wv = rs->n == 1 ? 100 : 0; /* Istio: a lone destination takes all */

		fieldf(f, sizeof(f), "%s[%u]", field, i);
		if (e->type != WP_YNODE_MAP) {
			wp_route_cerr(c, o, e, f, "expected a mapping");
			return false;
		}
		if (!keys_ok(c, o, e, f, known))
			return false;
		if (w && (!parse_u32(w, 1000000, &wv) || (rs->n == 1 && !wv))) {
			wp_route_cerr(c, o, e, f, "weight must be 0..1000000, got %s", w);
			return false;
		}
		be[i].cluster = destination(c, o, nget(e, "destination"), f);
		be[i].weight = wv;
		r->total_weight += wv;
	}
	if (!r->total_weight) {
		wp_route_cerr(c, o, rs, field, "the weights add up to 0");
		return false;
	}
	r->backends = be;
	r->n_backends = (uint16_t)i;
	return !c->oom;
}

/* Istio's gRPC status names (grpc.SupportedGRPCStatus), by code. */
static const char *const grpc_names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
};

/* A fault's share: percentage.value (a double 0..100) as istiod converts it
 * (value * 10000 per million, truncated), else the deprecated integer
 * `percent` where the API still has it (<dep>), else none at all: istiod
 * then gives Envoy no percentage, which its fault filter reads as 0 %. */
static bool fault_share(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *fn,
                        const char *field, bool dep, uint32_t *ppm)
{
	const struct wp_ynode *pn = nget(fn, "percentage");
	const char *pct = sget(pn, "value"), *old = dep ? sget(fn, "percent") : NULL;
	uint32_t v;

	*ppm = 0;
	if (pn && pn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, pn, field, "percentage: expected a mapping");
		return false;
	}
	if (pct) {
		char *end;
		double d = strtod(pct, &end);

		if (!*pct || *end || !(d >= 0.0 && d <= 100.0)) {
			wp_route_cerr(c, o, pn, field, "percentage must be 0..100, got %s", pct);
			return false;
		}
		*ppm = (uint32_t)(d * 10000.0);
		return true;
	}
	if (old) {
		if (!parse_u32(old, 100, &v)) {
			wp_route_cerr(c, o, nget(fn, "percent"), field,
			              "percent must be 0..100, got %s", old);
			return false;
		}
		*ppm = v * 10000;
	}
	return true;
}

/* http[].fault (HTTPFaultInjection) as istiod's TranslateFault gives it to
 * Envoy: delay.fixedDelay on delay.percentage of the requests (else the
 * deprecated delay.percent), abort.httpStatus or abort.grpcStatus (a code
 * name) on abort.percentage. A bad value leaves the rule out, as Istio's
 * validation refuses the object. */
static bool fault(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *fn,
                  const char *field, struct wp_route_rule *r)
{
	static const char *const known[] = {"delay", "abort", NULL};
	static const char *const dk[] = {"fixedDelay", "percentage", "percent", NULL};
	static const char *const ak[] = {"httpStatus", "grpcStatus", "percentage", NULL};
	const struct wp_ynode *dn = nget(fn, "delay"), *an = nget(fn, "abort");
	struct wp_route_fault *f = &r->fault;
	char g[200];

	if (fn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, fn, field, "expected a mapping");
		return false;
	}
	if (!keys_ok(c, o, fn, field, known))
		return false;
	if (!dn && !an) {
		wp_route_cerr(c, o, fn, field, "a fault needs a delay, an abort or both");
		return false;
	}
	if (dn) {
		const char *fd = sget(dn, "fixedDelay");

		fieldf(g, sizeof(g), "%s.delay", field);
		if (dn->type != WP_YNODE_MAP) {
			wp_route_cerr(c, o, dn, g, "expected a mapping");
			return false;
		}
		if (!keys_ok(c, o, dn, g, dk) || !fault_share(c, o, dn, g, true, &f->delay_ppm))
			return false;
		f->delay = true;
		if (!fd || vs_duration(fd, &f->delay_ms) || !f->delay_ms) {
			wp_route_cerr(c, o, dn, g,
			              "fixedDelay must be a duration of 1ms or more, got %s",
			              fd ? fd : "none");
			return false;
		}
	}
	if (an) {
		const char *hs = sget(an, "httpStatus"), *gs = sget(an, "grpcStatus");
		uint32_t v = 0;

		fieldf(g, sizeof(g), "%s.abort", field);
		if (an->type != WP_YNODE_MAP) {
			wp_route_cerr(c, o, an, g, "expected a mapping");
			return false;
		}
		if (!keys_ok(c, o, an, g, ak) || !fault_share(c, o, an, g, false, &f->abort_ppm))
			return false;
		if (!hs == !gs) {
			wp_route_cerr(c, o, an, g,
			              "exactly one of httpStatus and grpcStatus is required");
			return false;
		}
		if (hs && (!parse_u32(hs, 599, &v) || v < 200)) {
			wp_route_cerr(c, o, an, g, "httpStatus must be 200..599, got %s", hs);
			return false;
		}
		f->abort = true;
		f->abort_status = (uint16_t)v;
		if (gs) {
			for (v = 0; v < WP_ARRAY_SIZE(grpc_names) && strcmp(gs, grpc_names[v]); v++)
				;
			if (v == WP_ARRAY_SIZE(grpc_names)) {
				wp_route_cerr(
				        c, o, an, g,
				        "grpcStatus \"%s\" is not a gRPC status name (such as "
				        "UNAVAILABLE)",
				        gs);
				return false;
			}
			f->abort_grpc = (uint8_t)v;
		}
	}
	return true;
}

/* ---- rules -------------------------------------------------------------------- */

static void vs_rule(struct cctx *c, const struct wp_obj *o, const struct wp_ynode *rn, uint32_t ri)
{
	static const char *const known[] = {
	        "name",  "match",  "route",   "redirect",         "rewrite", "timeout", "retries",
	        "fault", "mirror", "mirrors", "mirrorPercentage", "headers", NULL};
	const struct wp_ynode *ms = nget(rn, "match"), *rs = nget(rn, "route"),
	                      *rd = nget(rn, "redirect"), *rw = nget(rn, "rewrite"),
	                      *rt = nget(rn, "retries"), *hd = nget(rn, "headers");
	const char *to = sget(rn, "timeout");
	struct wp_route_rule r = {0};
	bool rewrite_uri = rw && sget(rw, "uri");
	bool any_exact = false, any_prefix = false;
	uint32_t mi = 0, skipped = 0;
	char f[160];

	c->n_pend = 0;
	c->n_mpend = 0;
	r.route_ns = astrdup(c, o->meta.ns);
	r.route_name = astrdup(c, o->meta.name);
	r.index = ri;
	r.flags = WP_ROUTE_F_VS;
	wp_route_retry_default(&r.retry);
	fieldf(f, sizeof(f), "spec.http[%u]", ri);
	if (rn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, o, rn, f, "expected a mapping");
		return;
	}
	if (!keys_ok(c, o, rn, f, known))
		return;
	if (!rs == !rd) {
		wp_route_cerr(c, o, rn, f, "exactly one of route and redirect is required");
		return;
	}
	if (rd && rw) {
		wp_route_cerr(c, o, rn, f, "rewrite cannot be combined with redirect");
		return;
	}
	if (ms && (ms->type != WP_YNODE_SEQ || !ms->n)) {
		fieldf(f, sizeof(f), "spec.http[%u].match", ri);
		wp_route_cerr(c, o, ms, f, "expected a non-empty list");
		return;
	}
	/* matches (none: everything) */
	for (const struct wp_ynode *mn = ms ? ms->child : NULL;; mn = mn->next, mi++) {
		static const struct wp_ynode empty = {.type = WP_YNODE_MAP};
		struct tmatch *tm;
		int rc;

		if (!mn && mi > 0)
			break;
		if (!GROW(c, c->mpend, c->n_mpend, c->cap_mpend))
			return;
		tm = &c->mpend[c->n_mpend];
		memset(tm, 0, sizeof(*tm));
		tm->m = aalloc(c, sizeof(*tm->m));
		if (!tm->m)
			return;
		fieldf(f, sizeof(f), "spec.http[%u].match[%u]", ri, mi);
		rc = vs_match(c, o, mn ? mn : &empty, f, rewrite_uri, tm->m);
		if (rc < 0)
			return;
		if (rc == 0) {
			skipped++;
		} else {
			any_exact |= tm->m->path_type == WP_ROUTE_PATH_EXACT;
			any_prefix |= tm->m->path_type == WP_ROUTE_PATH_PREFIX;
			tm->route = o;
			tm->rule_idx = ri;
			tm->match_idx = mi;
			c->n_mpend++;
		}
		if (!mn)
			break;
	}
	if (!c->n_mpend)
		return; /* every match names another port: not a rule of this one */
	if (rewrite_uri) {
		fieldf(f, sizeof(f), "spec.http[%u].rewrite", ri);
		if (any_exact && any_prefix) {
			wp_route_cerr(c, o, rw, f,
			              "rewrite.uri after both exact and prefix uri matches is not "
			              "supported; the rule is left out");
			return;
		}
		r.rewrite.type = any_exact ? WP_ROUTE_REWRITE_FULL : WP_ROUTE_REWRITE_PREFIX;
	}
	fieldf(f, sizeof(f), "spec.http[%u].rewrite", ri);
	if (rw && !rewrite(c, o, rw, f, &r))
		return;
	fieldf(f, sizeof(f), "spec.http[%u].redirect", ri);
	if (rd && !redirect(c, o, rd, f, &r))
		return;
	fieldf(f, sizeof(f), "spec.http[%u].headers", ri);
	if (hd) {
		static const char *const hk[] = {"request", "response", NULL};
		char g[200];

		if (hd->type != WP_YNODE_MAP || !keys_ok(c, o, hd, f, hk)) {
			if (hd->type != WP_YNODE_MAP)
				wp_route_cerr(c, o, hd, f, "expected a mapping");
			return;
		}
		fieldf(g, sizeof(g), "%s.request", f);
		if (!hdr_ops(c, o, nget(hd, "request"), g, &r.req_mods))
			return;
		fieldf(g, sizeof(g), "%s.response", f);
		if (!hdr_ops(c, o, nget(hd, "response"), g, &r.resp_mods))
			return;
	}
	fieldf(f, sizeof(f), "spec.http[%u].timeout", ri);
	if (to && vs_duration(to, &r.request_timeout_ms)) {
		wp_route_cerr(c, o, nget(rn, "timeout"), f, "not a duration: %s", to);
		return;
	}
	fieldf(f, sizeof(f), "spec.http[%u].retries", ri);
	if (rt && !retries(c, o, rt, f, &r))
		return;
	fieldf(f, sizeof(f), "spec.http[%u]", ri);
	if (!mirrors(c, o, rn, f, &r))
		return;
	fieldf(f, sizeof(f), "spec.http[%u].route", ri);
	if (rs && !routes(c, o, rs, f, &r))
		return;
	fieldf(f, sizeof(f), "spec.http[%u].fault", ri);
	if (nget(rn, "fault") && !fault(c, o, nget(rn, "fault"), f, &r))
		return;
	wp_route_commit_rule(c, &r);
}

void wp_route_vs_compile(struct cctx *c, const struct wp_obj *o)
{
	const struct wp_ynode *http = o->spec ? nget(o->spec, "http") : NULL;
	uint32_t ri = 0;

	if (o->spec && (nget(o->spec, "tcp") || nget(o->spec, "tls"))) {
		wp_route_cerr(c, o, nget(o->spec, nget(o->spec, "tcp") ? "tcp" : "tls"), "spec",
		              "tcp and tls routes are not supported (not applied)");
		c->t->n_vs_not_applied++;
	}
	if (!http || http->type != WP_YNODE_SEQ)
		return;
	for (const struct wp_ynode *rn = http->child; rn && !c->oom; rn = rn->next, ri++)
		vs_rule(c, o, rn, ri);
}
