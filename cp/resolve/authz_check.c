/*
 * The authorization check of one concrete request (authz_check.h): finds
 * the destination Service in a snapshot, builds the struct wp_authz_req the
 * way the data path does, runs wp_authz_eval on the Service's table and
 * answers in JSON; plus the query-string form the admin endpoint takes and
 * the text form wpctl prints. Control plane and wpctl only.
 */
#include "authz_check.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wp/path_norm.h"
#include "wp/addr.h"
#include "wp/snapshot.h"

#define SPIFFE "spiffe://"

void wp_authz_check_fini(struct wp_authz_check_in *in)
{
	free(in->buf);
	in->buf = NULL;
}

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static const char *principal_of(const char *from)
{
	return strncmp(from, SPIFFE, strlen(SPIFFE)) ? from : from + strlen(SPIFFE);
}

/* "TD/ns/NS/sa/SA": four '/' and no empty part. */
static bool principal_ok(const char *p)
{
	const char *ns = strstr(p, "/ns/"), *sa = ns ? strstr(ns + 4, "/sa/") : NULL;

	return ns && ns > p && sa && sa > ns + 4 && sa[4] && !strchr(sa + 4, '/') &&
	       !memchr(p, '/', (size_t)(ns - p)) && !memchr(ns + 4, '/', (size_t)(sa - ns - 4));
}

/* The port of "HOST:PORT" (1..65535), the host part's length in *hlen. */
static int split_to(const char *to, size_t *hlen, uint16_t *port)
{
	const char *c = strrchr(to, ':');
	char *end;
	unsigned long p;

	if (!c || c == to || !c[1])
		return -EINVAL;
	errno = 0;
	p = strtoul(c + 1, &end, 10);
	if (*end || errno || p == 0 || p > 65535 || !isdigit((unsigned char)c[1]))
		return -EINVAL;
	*hlen = (size_t)(c - to);
	*port = (uint16_t)p;
	return 0;
}

int wp_authz_check_validate(const struct wp_authz_check_in *in, char *err, size_t errlen)
{
	struct wp_addr a;
	size_t hl;
	uint16_t port;

	if (!in->from || !in->from[0])
		return fail(err, errlen, -EINVAL, "--from PRINCIPAL is required");
	if (!principal_ok(principal_of(in->from)))
		return fail(err, errlen, -EINVAL,
		            "--from wants a principal TD/ns/NAMESPACE/sa/ACCOUNT "
		            "(spiffe:// optional), got \"%s\"",
		            in->from);
	if (!in->to || split_to(in->to, &hl, &port))
		return fail(err, errlen, -EINVAL,
		            "--to wants HOST:PORT (a Service hostname, name.ns or VIP, and the "
		            "service port), got \"%s\"",
		            in->to ? in->to : "");
	if (in->source_ip && wp_addr_parse(in->source_ip, &a))
		return fail(err, errlen, -EINVAL, "--source-ip: not an IP address: \"%s\"",
		            in->source_ip);
	if (in->remote_ip && wp_addr_parse(in->remote_ip, &a))
		return fail(err, errlen, -EINVAL, "--remote-ip: not an IP address: \"%s\"",
		            in->remote_ip);
	if (in->method && (!in->method[0] || strpbrk(in->method, " \t\r\n")))
		return fail(err, errlen, -EINVAL, "--method: not a method token: \"%s\"",
		            in->method);
	if (in->host && !in->host[0])
		return fail(err, errlen, -EINVAL, "--host: empty authority");
	if (in->path && in->path[0] != '/')
		return fail(err, errlen, -EINVAL, "--path must start with '/', got \"%s\"",
		            in->path);
	if (in->path && strlen(in->path) > 8192)
		return fail(err, errlen, -EINVAL, "--path longer than 8192 bytes");
	if (in->n_headers > WP_AUTHZ_CHECK_MAX_HEADERS)
		return fail(err, errlen, -EINVAL, "more than %d headers",
		            WP_AUTHZ_CHECK_MAX_HEADERS);
	for (unsigned i = 0; i < in->n_headers; i++) {
		const char *eq = strchr(in->headers[i], '=');

		if (!eq || eq == in->headers[i] ||
		    strcspn(in->headers[i], " \t:") < (size_t)(eq - in->headers[i]))
			return fail(err, errlen, -EINVAL,
			            "--header wants NAME=VALUE (a field name, no ':'), got \"%s\"",
			            in->headers[i]);
	}
	return 0;
}

/* ---- the destination -------------------------------------------------------- */

/* The Service named by host[0..hl): its hostname (any case), name.ns,
 * name.ns.svc, or one of its VIPs. */
static const struct wp_snap_service *find_service(const struct wp_snapshot *s, const char *host,
                                                  size_t hl)
{
	char h[256];
	struct wp_addr a;
	bool is_ip;

	if (hl >= sizeof(h))
		return NULL;
	memcpy(h, host, hl);
	h[hl] = '\0';
	if (hl && h[hl - 1] == '.') /* an absolute name */
		h[hl - 1] = '\0';
	is_ip = wp_addr_parse(h, &a) == 0;
	for (uint32_t i = 0; i < s->n_services; i++) {
		const struct wp_snap_service *v = s->services[i];
		size_t nl = strlen(v->name), sl = strlen(v->ns);

		if (is_ip) {
			for (uint32_t j = 0; j < v->n_vips; j++)
				if (v->vips[j].family == a.family &&
				    !memcmp(&v->vips[j].v6, &a.v6,
				            a.family == WP_AF_INET ? 4 : sizeof(a.v6)))
					return v;
			continue;
		}
		if (!strcasecmp(h, v->hostname))
			return v;
		if (!strncmp(h, v->name, nl) && h[nl] == '.' && !strncmp(h + nl + 1, v->ns, sl) &&
		    (!h[nl + 1 + sl] || !strcmp(h + nl + 1 + sl, ".svc")))
			return v;
	}
	return NULL;
}

/* Whether host[0..hl) is an address (then *a holds it). */
static bool vip_of(const char *host, size_t hl, struct wp_addr *a)
{
	char h[64];

	if (hl >= sizeof(h))
		return false;
	memcpy(h, host, hl);
	h[hl] = '\0';
	return wp_addr_parse(h, a) == 0;
}

/* ---- headers ------------------------------------------------------------------ */

struct hdrs {
	unsigned n;
	const char *name[WP_AUTHZ_CHECK_MAX_HEADERS]; /* lower-case, NUL-terminated */
	const char *value[WP_AUTHZ_CHECK_MAX_HEADERS];
	char join[8192]; /* several fields of one name, joined with "," */
};

/* wp_authz_header_cb: the value of every field named name, joined. */
static const char *header_of(void *ctx, const char *name, uint32_t name_len, uint32_t *value_len)
{
	struct hdrs *h = ctx;
	const char *one = NULL;
	size_t off = 0;
	unsigned found = 0;

	for (unsigned i = 0; i < h->n; i++) {
		size_t vl = strlen(h->value[i]);

		if (strlen(h->name[i]) != name_len || memcmp(h->name[i], name, name_len))
			continue;
		if (!found++)
			one = h->value[i];
		if (off + vl + 1 < sizeof(h->join)) {
			if (found > 1)
				h->join[off++] = ',';
			memcpy(h->join + off, h->value[i], vl);
			off += vl;
		}
	}
	if (!found)
		return NULL;
	if (found == 1) {
		*value_len = (uint32_t)strlen(one);
		return one;
	}
	*value_len = (uint32_t)off;
	return h->join;
}

/* ---- the check ---------------------------------------------------------------- */

static json_t *addr_or_null(const struct wp_addr *a)
{
	char buf[WP_ADDR_STRLEN];

	return a->family ? json_string(wp_addr_format(a, buf, sizeof(buf))) : json_null();
}

static const char *action_name(uint8_t a)
{
	static const char *const n[] = {
	        [WP_AUTHZ_ALLOW] = "ALLOW",
	        [WP_AUTHZ_DENY] = "DENY",
	        [WP_AUTHZ_AUDIT] = "AUDIT",
	        [WP_AUTHZ_CUSTOM] = "CUSTOM",
	};

	return a < WP_ARRAY_SIZE(n) && n[a] ? n[a] : "?";
}

/* The destination a check decides for: a Service port (its table), or a
 * workload address (its waypoint's table, as the data path decides a
 * CONNECT to a pod IP). */
struct dest {
	const struct wp_snap_service *svc;
	const struct wp_snap_workload *wl;
	const struct wp_authz_table *t;
	uint32_t gw;
};

static json_t *answer_json(const struct wp_snapshot *s, const struct dest *dst, uint16_t port,
                           const struct wp_authz_req *q, const struct hdrs *h,
                           const struct wp_authz_decision *d)
{
	const struct wp_authz_table *t = dst->t;
	const struct wp_snap_service *v = dst->svc;
	json_t *o = json_object(), *req = json_object(), *hj = json_object(), *pols = json_array();
	json_t *errs = json_array();
	const struct wp_snap_gateway *g = &s->gateways[dst->gw];
	json_t *pol = json_null();

	json_object_set_new(o, "decision", json_string(d->allowed ? "ALLOW" : "DENY"));
	json_object_set_new(o, "allowed", json_boolean(d->allowed));
	json_object_set_new(o, "audited", json_boolean(d->audited));
	json_object_set_new(o, "reason", json_string(wp_authz_reason_name(d->reason)));
	if (d->ns && d->name) {
		const char *act = "?";

		for (uint32_t i = 0; t && i < t->n_policies; i++)
			if (!strcmp(t->policies[i].ns, d->ns) &&
			    !strcmp(t->policies[i].name, d->name))
				act = action_name(t->policies[i].action);
		pol = json_pack("{s:s, s:s, s:s, s:i}", "namespace", d->ns, "name", d->name,
		                "action", act, "rule", (int)d->rule);
	}
	json_object_set_new(o, "policy", pol);
	if (v)
		json_object_set_new(o, "service",
		                    json_pack("{s:s, s:s, s:s, s:s++, s:i}", "namespace", v->ns,
		                              "name", v->name, "hostname", v->hostname, "waypoint",
		                              g->ns, "/", g->name, "port", (int)port));
	else
		json_object_set_new(o, "workload",
		                    json_pack("{s:s, s:s, s:s++, s:i}", "namespace", dst->wl->ns,
		                              "name", dst->wl->name, "waypoint", g->ns, "/",
		                              g->name, "port", (int)port));
	for (uint32_t i = 0; t && i < t->n_policies; i++)
		json_array_append_new(pols,
		                      json_pack("{s:s, s:s, s:s, s:s}", "namespace",
		                                t->policies[i].ns, "name", t->policies[i].name,
		                                "action", action_name(t->policies[i].action),
		                                "targetRef", t->policies[i].attach));
	json_object_set_new(o, "policies", pols);
	for (uint32_t i = 0; t && i < t->n_errors; i++)
		json_array_append_new(errs, json_string(t->errors[i]));
	json_object_set_new(o, "errors", errs);
	json_object_set_new(req, "principal", json_stringn(q->principal, q->principal_len));
	json_object_set_new(req, "src_ip", addr_or_null(&q->src_ip));
	json_object_set_new(req, "remote_ip", addr_or_null(&q->remote_ip));
	json_object_set_new(req, "dst_ip", addr_or_null(&q->dst_ip));
	json_object_set_new(req, "dst_port", json_integer(q->dst_port));
	json_object_set_new(req, "http", json_boolean(q->is_http));
	json_object_set_new(req, "host",
	                    q->host ? json_stringn(q->host, q->host_len) : json_null());
	json_object_set_new(req, "method",
	                    q->method ? json_stringn(q->method, q->method_len) : json_null());
	json_object_set_new(req, "path",
	                    q->path ? json_stringn(q->path, q->path_len) : json_null());
	for (unsigned i = 0; q->is_http && i < h->n; i++) {
		uint32_t vl = 0;
		const char *val =
		        header_of((void *)h, h->name[i], (uint32_t)strlen(h->name[i]), &vl);

		json_object_set_new(hj, h->name[i], json_stringn(val, vl));
	}
	json_object_set_new(req, "headers", hj);
	json_object_set_new(o, "request", req);
	json_object_set_new(o, "snapshot_version", json_integer((json_int_t)s->version));
	return o;
}

int wp_authz_check_run(const struct wp_snapshot *s, struct wp_authz_scratch *sc,
                       const struct wp_authz_check_in *in, json_t **out, char *err, size_t errlen)
{
	const struct wp_snap_service *v;
	const struct wp_snap_svc_port *sp = NULL;
	struct dest dst = {0};
	const char *target = in->path ? in->path : "/";
	struct wp_authz_req q = {0};
	struct wp_authz_decision d;
	struct hdrs *h = NULL;
	char *path = NULL;
	size_t hl, ol = 0, pl = 0;
	uint16_t port;
	int rc;

	*out = NULL;
	rc = wp_authz_check_validate(in, err, errlen);
	if (rc)
		return rc;
	if (!s)
		return fail(err, errlen, -ENOENT, "no snapshot published yet");
	split_to(in->to, &hl, &port);
	v = find_service(s, in->to, hl);
	if (!v) {
		struct wp_sockaddr sa = {.port = port};
		const struct wp_snap_dest *d =
		        vip_of(in->to, hl, &sa.addr) ? wp_snapshot_lookup(s, &sa) : NULL;

		if (!d || d->kind != WP_DEST_WORKLOAD)
			return fail(err, errlen, -ENOENT,
			            "%.*s is neither a Service nor a workload address this "
			            "appliance captures (not bound to a Gateway it serves, or "
			            "unknown)",
			            (int)hl, in->to);
		dst.wl = d->wl;
		dst.gw = d->gw;
		dst.t = d->gw < s->n_gateways ? s->gateways[d->gw].authz : NULL;
	} else {
		for (uint32_t i = 0; i < v->n_ports; i++)
			if (v->ports[i].port == port)
				sp = &v->ports[i];
		if (!sp)
			return fail(err, errlen, -ENOENT, "Service %s/%s has no port %u", v->ns,
			            v->name, port);
		dst.svc = v;
		dst.gw = v->gw;
		dst.t = v->authz;
	}

	q.principal = principal_of(in->from);
	q.principal_len = (uint32_t)strlen(q.principal);
	if (in->source_ip)
		wp_addr_parse(in->source_ip, &q.src_ip);
	q.remote_ip = q.src_ip;
	if (in->remote_ip)
		wp_addr_parse(in->remote_ip, &q.remote_ip);
	/* the VIP asked for, else the Service's first */
	if (!vip_of(in->to, hl, &q.dst_ip) && v && v->n_vips)
		q.dst_ip = v->vips[0];
	q.dst_port = port;
	q.is_http = !in->tcp;
	if (q.is_http) { /* an opaque stream has no HTTP fields */
		q.host = in->host ? in->host : in->to;
		q.host_len = (uint32_t)strlen(q.host);
		q.method = in->method ? in->method : "GET";
		q.method_len = (uint32_t)strlen(q.method);
	}

	rc = -ENOMEM;
	path = malloc(WP_PATH_NORM_MAX(strlen(target)));
	h = calloc(1, sizeof(*h));
	if (!path || !h)
		goto out;
	if (wp_path_norm(target, strlen(target), path, WP_PATH_NORM_MAX(strlen(target)), &ol,
	                 &pl)) {
		rc = fail(err, errlen, -EINVAL,
		          "--path \"%s\" is refused before authorization (NUL or %%00: the data "
		          "path answers 400)",
		          target);
		goto out;
	}
	if (q.is_http) {
		q.path = path;
		q.path_len = (uint32_t)pl;
	}
	/* header names lower-cased, as HTTP/2 carries them and the data path
	 * hands them to the evaluator */
	for (unsigned i = 0; i < in->n_headers; i++) {
		const char *eq = strchr(in->headers[i], '=');
		size_t nl = (size_t)(eq - in->headers[i]);
		char *n = malloc(nl + 1);

		if (!n)
			goto out;
		for (size_t k = 0; k < nl; k++)
			n[k] = (char)tolower((unsigned char)in->headers[i][k]);
		n[nl] = '\0';
		h->name[h->n] = n;
		h->value[h->n++] = eq + 1;
	}
	if (q.is_http) {
		q.header = header_of;
		q.header_ctx = h;
	}
	if (dst.t && wp_authz_scratch_reserve(sc, dst.t))
		goto out;
	wp_authz_eval(dst.t, sc, &q, &d);
	*out = answer_json(s, &dst, port, &q, h, &d);
	rc = *out ? 0 : -ENOMEM;
out:
	if (rc == -ENOMEM)
		fail(err, errlen, rc, "out of memory");
	for (unsigned i = 0; h && i < h->n; i++)
		free((char *)h->name[i]);
	free(h);
	free(path);
	return rc;
}

void wp_authz_check_print(FILE *f, json_t *a)
{
	json_t *p = json_object_get(a, "policy"), *v = json_object_get(a, "service");
	json_t *r = json_object_get(a, "request");

	fprintf(f, "decision:  %s\n", json_string_value(json_object_get(a, "decision")));
	fprintf(f, "reason:    %s\n", json_string_value(json_object_get(a, "reason")));
	if (json_is_object(p)) {
		json_int_t rule = json_integer_value(json_object_get(p, "rule"));

		fprintf(f, "policy:    %s/%s (%s), ",
		        json_string_value(json_object_get(p, "namespace")),
		        json_string_value(json_object_get(p, "name")),
		        json_string_value(json_object_get(p, "action")));
		if (rule < 0)
			fprintf(f, "the whole policy\n");
		else
			fprintf(f, "rule %lld\n", (long long)rule);
	} else {
		fprintf(f, "policy:    -\n");
	}
	fprintf(f, "audited:   %s\n", json_is_true(json_object_get(a, "audited")) ? "yes" : "no");
	if (!json_is_object(v))
		v = json_object_get(a, "workload");
	fprintf(f, "%s  %s/%s port %lld (waypoint %s), %zu polic%s applied\n",
	        json_is_object(json_object_get(a, "service")) ? "service: " : "workload:",
	        json_string_value(json_object_get(v, "namespace")),
	        json_string_value(json_object_get(v, "name")),
	        (long long)json_integer_value(json_object_get(v, "port")),
	        json_string_value(json_object_get(v, "waypoint")),
	        json_array_size(json_object_get(a, "policies")),
	        json_array_size(json_object_get(a, "policies")) == 1 ? "y" : "ies");
	if (json_is_true(json_object_get(r, "http")))
		fprintf(f, "request:   %s %s host %s from %s\n",
		        json_string_value(json_object_get(r, "method")),
		        json_string_value(json_object_get(r, "path")),
		        json_string_value(json_object_get(r, "host")),
		        json_string_value(json_object_get(r, "principal")));
	else
		fprintf(f, "request:   opaque TCP from %s\n",
		        json_string_value(json_object_get(r, "principal")));
}

/* ---- the query-string form ------------------------------------------------------ */

static bool put(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t nc = (*len + n + 1) * 2;
		char *nb = realloc(*buf, nc);

		if (!nb)
			return false;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return true;
}

/* key=VALUE with every byte but the unreserved ones percent-encoded. */
static bool put_kv(char **buf, size_t *len, size_t *cap, const char *k, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!v)
		return true;
	if ((*len && !put(buf, len, cap, "&", 1)) || !put(buf, len, cap, k, strlen(k)) ||
	    !put(buf, len, cap, "=", 1))
		return false;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};

		if (isalnum(*p) || strchr("-._~", *p) ? !put(buf, len, cap, (const char *)p, 1)
		                                      : !put(buf, len, cap, e, 3))
			return false;
	}
	return true;
}

char *wp_authz_check_query(const struct wp_authz_check_in *in)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	bool ok = put(&buf, &len, &cap, "", 0) && put_kv(&buf, &len, &cap, "from", in->from) &&
	          put_kv(&buf, &len, &cap, "to", in->to) &&
	          put_kv(&buf, &len, &cap, "host", in->host) &&
	          put_kv(&buf, &len, &cap, "method", in->method) &&
	          put_kv(&buf, &len, &cap, "path", in->path) &&
	          put_kv(&buf, &len, &cap, "source_ip", in->source_ip) &&
	          put_kv(&buf, &len, &cap, "remote_ip", in->remote_ip) &&
	          put_kv(&buf, &len, &cap, "tcp", in->tcp ? "1" : NULL);

	for (unsigned i = 0; ok && i < in->n_headers; i++)
		ok = put_kv(&buf, &len, &cap, "header", in->headers[i]);
	if (!ok) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int unhex(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* Percent-decodes s[0..n) into d (NUL-terminated). '+' stays '+' (the
 * encoder writes every reserved byte as an escape). -EINVAL on a bad
 * escape or an encoded NUL. */
static int decode(const char *s, size_t n, char *d)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '%') {
			*d++ = s[i];
			continue;
		}
		if (i + 2 >= n)
			return -EINVAL;
		if (unhex((unsigned char)s[i + 1]) < 0 || unhex((unsigned char)s[i + 2]) < 0)
			return -EINVAL;
		*d = (char)(unhex((unsigned char)s[i + 1]) * 16 + unhex((unsigned char)s[i + 2]));
		if (!*d++)
			return -EINVAL;
		i += 2;
	}
	*d = '\0';
	return 0;
}

int wp_authz_check_parse_query(const char *query, struct wp_authz_check_in *in, char *err,
                               size_t errlen)
{
	static const char *const keys[] = {"from",      "to",        "host", "method", "path",
	                                   "source_ip", "remote_ip", "tcp",  "header"};
	/* where each key's value goes (the last two are handled apart) */
	const char **slot[] = {&in->from, &in->to,        &in->host,     &in->method,
	                       &in->path, &in->source_ip, &in->remote_ip};
	const char *q = query ? query : "";
	char *d;

	memset(in, 0, sizeof(*in));
	in->buf = malloc(strlen(q) + 1);
	if (!in->buf)
		return fail(err, errlen, -ENOMEM, "out of memory");
	d = in->buf;
	while (*q) {
		size_t n = strcspn(q, "&"), kl = strcspn(q, "=");
		const char *val = NULL;
		unsigned k;

		if (kl > n)
			kl = n;
		for (k = 0; k < WP_ARRAY_SIZE(keys); k++)
			if (strlen(keys[k]) == kl && !strncmp(q, keys[k], kl))
				break;
		if (k == WP_ARRAY_SIZE(keys) || kl == n) {
			fail(err, errlen, -EINVAL, "unknown query parameter \"%.*s\"", (int)kl, q);
			goto bad;
		}
		if (decode(q + kl + 1, n - kl - 1, d)) {
			fail(err, errlen, -EINVAL, "bad percent-escape in %s", keys[k]);
			goto bad;
		}
		val = d;
		d += strlen(d) + 1;
		if (!strcmp(keys[k], "header")) {
			if (in->n_headers == WP_AUTHZ_CHECK_MAX_HEADERS) {
				fail(err, errlen, -EINVAL, "more than %d headers",
				     WP_AUTHZ_CHECK_MAX_HEADERS);
				goto bad;
			}
			in->headers[in->n_headers++] = val;
		} else if (!strcmp(keys[k], "tcp")) {
			if (strcmp(val, "1") && strcmp(val, "true") && strcmp(val, "0") &&
			    strcmp(val, "false")) {
				fail(err, errlen, -EINVAL, "tcp wants 1 or 0");
				goto bad;
			}
			in->tcp = !strcmp(val, "1") || !strcmp(val, "true");
		} else {
			const char **p = slot[k];

			if (*p) {
				fail(err, errlen, -EINVAL, "%s given twice", keys[k]);
				goto bad;
			}
			*p = val;
		}
		q += n + (q[n] == '&');
	}
	return 0;
bad:
	wp_authz_check_fini(in);
	return -EINVAL;
}
