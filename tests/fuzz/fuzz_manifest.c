/*
 * libFuzzer driver for manifest parsing (cp/model/parse.c): the input is the
 * text of a manifest file (YAML documents, a List, or JSON as the API server
 * sends it) given to wp_model_parse(). Checks:
 *
 *   - the answer matches the callbacks: a count >= 0 is the number of
 *     rejected documents reported, -EBADMSG comes with at least one report;
 *     every report reads "ORIGIN:LINE: ..." with a line inside the input;
 *   - every object is well formed: a known kind, a non-empty name, a
 *     namespace exactly for namespaced kinds, labels sorted by key, a spec
 *     tree only for the kinds that keep one, a line inside the input;
 *   - parse -> serialize -> parse is stable: each object is written back as
 *     one JSON document (metadata, the typed fields, the spec tree it kept)
 *     and read with wp_model_parse_one(), the entry point the Kubernetes
 *     source uses for API objects. The copy must be accepted, and writing it
 *     again must give the same text, so nothing the model keeps is lost,
 *     misread or changed by the JSON path. JSON cannot spell two YAML plain
 *     scalars the model reads differently from strings (True/False, and
 *     integers with leading zeros); those are written unquoted, as YAML flow;
 *   - ASan finds no leak: every object is freed with wp_obj_free().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wp/addr.h"
#include "wp/model.h"

#define ORIGIN "fuzz.yaml"

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

static void putf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct buf *b, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		abort();
	put(b, tmp, (size_t)n);
}

/* One code point of UTF-8 text (libyaml only hands out valid UTF-8). */
static uint32_t utf8_next(const unsigned char **s)
{
	const unsigned char *p = *s;
	uint32_t c;

	if (p[0] < 0x80) {
		c = p[0];
		*s += 1;
	} else if ((p[0] & 0xe0) == 0xc0) {
		c = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
		*s += 2;
	} else if ((p[0] & 0xf0) == 0xe0) {
		c = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
		*s += 3;
	} else {
		c = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
		    (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
		*s += 4;
	}
	return c;
}

/* A JSON string; what YAML would not take raw is escaped. */
static void put_str(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	puts_(b, "\"");
	while (*p) {
		const unsigned char *start = p;
		uint32_t c = utf8_next(&p);

		if (c == '"' || c == '\\')
			putf(b, "\\%c", (char)c);
		else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x2028 ||
		         c == 0x2029 || c == 0xfeff || c == 0xfffe || c == 0xffff)
			putf(b, "\\u%04x", c); /* not printable, or a line break, in YAML */
		else
			put(b, (const char *)start, (size_t)(p - start));
	}
	puts_(b, "\"");
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* A JSON number (RFC 8259 grammar). */
static bool json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return false;
	if (*s == '.') {
		if (*++s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		if (*++s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return !*s;
}

static void put_node(struct buf *b, const struct wp_ynode *n)
{
	const struct wp_ynode *c;

	switch (n->type) {
	case WP_YNODE_SCALAR:
		if (wp_ynode_is_null(n))
			puts_(b, "null");
		else if (n->plain && (json_number(n->value) || all_digits(n->value) ||
		                      !strcmp(n->value, "true") || !strcmp(n->value, "false") ||
		                      !strcmp(n->value, "True") || !strcmp(n->value, "False")))
			puts_(b, n->value);
		else
			put_str(b, n->value);
		break;
	case WP_YNODE_MAP:
		puts_(b, "{");
		for (c = n->child; c; c = c->next) {
			put_str(b, c->key);
			puts_(b, ":");
			put_node(b, c);
			if (c->next)
				puts_(b, ",");
		}
		puts_(b, "}");
		break;
	default:
		puts_(b, "[");
		for (c = n->child; c; c = c->next) {
			put_node(b, c);
			if (c->next)
				puts_(b, ",");
		}
		puts_(b, "]");
		break;
	}
}

/* ---- the typed fields, written in the manifest's own shape ----------------- */

static void key(struct buf *b, const char *k)
{
	put_str(b, k);
	puts_(b, ":");
}

/* "k":"v", when v is set. */
static void kstr(struct buf *b, const char *k, const char *v)
{
	if (v == NULL)
		return;
	key(b, k);
	put_str(b, v);
	puts_(b, ",");
}

static void kaddr(struct buf *b, const struct wp_addr *a)
{
	char t[WP_ADDR_STRLEN];

	put_str(b, wp_addr_format(a, t, sizeof(t)));
}

static void klabels(struct buf *b, const char *k, const struct wp_labels *l)
{
	key(b, k);
	puts_(b, "{");
	for (uint32_t i = 0; i < l->n; i++) {
		if (i)
			puts_(b, ",");
		key(b, l->kv[i].key);
		put_str(b, l->kv[i].value);
	}
	puts_(b, "},");
}

/* Closes an object or list whose last member ended with ','. */
static void close_(struct buf *b, char c)
{
	if (b->len && b->p[b->len - 1] == ',')
		b->len--;
	put(b, &c, 1);
}

static void ktime(struct buf *b, const char *k, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL)
		abort();
	key(b, k);
	putf(b, "\"%04lld-%02d-%02dT%02d:%02d:%02dZ\",", (long long)tm.tm_year + 1900,
	     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void ser_selector(struct buf *b, const struct wp_label_selector *s)
{
	puts_(b, "{");
	klabels(b, "matchLabels", &s->match_labels);
	key(b, "matchExpressions");
	puts_(b, "[");
	for (uint32_t i = 0; i < s->n_expr; i++) {
		static const char *const ops[] = {"In", "NotIn", "Exists", "DoesNotExist"};
		const struct wp_sel_expr *e = &s->expr[i];

		puts_(b, "{");
		kstr(b, "key", e->key);
		kstr(b, "operator", ops[e->op]);
		if (e->n_values) {
			key(b, "values");
			puts_(b, "[");
			for (uint32_t j = 0; j < e->n_values; j++) {
				put_str(b, e->values[j]);
				puts_(b, ",");
			}
			close_(b, ']');
		}
		close_(b, '}');
		puts_(b, ",");
	}
	close_(b, ']');
	puts_(b, "}");
}

static void ser_gw_addrs(struct buf *b, uint32_t n, const struct wp_gw_address *a)
{
	key(b, "addresses");
	puts_(b, "[");
	for (uint32_t i = 0; i < n; i++) {
		puts_(b, "{");
		kstr(b, "type", a[i].type);
		kstr(b, "value", a[i].value);
		close_(b, '}');
		puts_(b, ",");
	}
	close_(b, ']');
	puts_(b, ",");
}

static void ser_service(struct buf *b, const struct wp_k8s_service *s)
{
	key(b, "spec");
	puts_(b, "{");
	kstr(b, "type", s->type);
	if (s->headless)
		kstr(b, "clusterIP", "None");
	key(b, "clusterIPs");
	puts_(b, "[");
	for (uint32_t i = 0; i < s->n_cluster_ips; i++) {
		kaddr(b, &s->cluster_ips[i]);
		puts_(b, ",");
	}
	close_(b, ']');
	puts_(b, ",");
	key(b, "ports");
	puts_(b, "[");
	for (uint32_t i = 0; i < s->n_ports; i++) {
		const struct wp_svc_port *p = &s->ports[i];

		puts_(b, "{");
		kstr(b, "name", p->name);
		kstr(b, "protocol", p->protocol);
		kstr(b, "appProtocol", p->app_protocol);
		putf(b, "\"port\":%u,", p->port);
		if (p->target_port_name)
			kstr(b, "targetPort", p->target_port_name);
		else
			putf(b, "\"targetPort\":%u,", p->target_port);
		close_(b, '}');
		puts_(b, ",");
	}
	close_(b, ']');
	puts_(b, ",");
	if (s->has_selector)
		klabels(b, "selector", &s->selector);
	close_(b, '}');
	puts_(b, ",");
}

static void ser_pod(struct buf *b, const struct wp_k8s_pod *p)
{
	key(b, "spec");
	puts_(b, "{");
	kstr(b, "serviceAccountName", p->service_account);
	kstr(b, "nodeName", p->node_name);
	putf(b, "\"hostNetwork\":%s,", p->host_network ? "true" : "false");
	puts_(b, "\"containers\":[{\"ports\":[");
	for (uint32_t i = 0; i < p->n_cports; i++) {
		puts_(b, "{");
		kstr(b, "name", p->cports[i].name);
		kstr(b, "protocol", p->cports[i].protocol);
		putf(b, "\"containerPort\":%u}", p->cports[i].port);
		puts_(b, ",");
	}
	close_(b, ']');
	puts_(b, "}]},");
	key(b, "status");
	puts_(b, "{");
	kstr(b, "phase", p->phase);
	key(b, "podIPs");
	puts_(b, "[");
	for (uint32_t i = 0; i < p->n_ips; i++) {
		puts_(b, "{\"ip\":");
		kaddr(b, &p->ips[i]);
		puts_(b, "},");
	}
	close_(b, ']');
	puts_(b, ",");
	if (!p->ready)
		puts_(b, "\"conditions\":[{\"type\":\"Ready\",\"status\":\"False\"}],");
	close_(b, '}');
	puts_(b, ",");
}

static void ser_eps(struct buf *b, const struct wp_k8s_endpointslice *e)
{
	kstr(b, "addressType", e->address_type);
	key(b, "endpoints");
	puts_(b, "[");
	for (uint32_t i = 0; i < e->n_endpoints; i++) {
		const struct wp_eps_endpoint *ep = &e->endpoints[i];

		puts_(b, "{\"addresses\":[");
		if (!strcmp(e->address_type, "FQDN"))
			puts_(b, "\"fqdn.invalid\",");
		for (uint32_t j = 0; j < ep->n_addrs; j++) {
			kaddr(b, &ep->addrs[j]);
			puts_(b, ",");
		}
		close_(b, ']');
		putf(b, ",\"conditions\":{\"ready\":%s,\"serving\":%s,\"terminating\":%s},",
		     ep->ready ? "true" : "false", ep->serving ? "true" : "false",
		     ep->terminating ? "true" : "false");
		kstr(b, "nodeName", ep->node_name);
		if (ep->target_kind || ep->target_ns || ep->target_name) {
			key(b, "targetRef");
			puts_(b, "{");
			kstr(b, "kind", ep->target_kind);
			kstr(b, "namespace", ep->target_ns);
			kstr(b, "name", ep->target_name);
			close_(b, '}');
			puts_(b, ",");
		}
		close_(b, '}');
		puts_(b, ",");
	}
	close_(b, ']');
	puts_(b, ",");
	key(b, "ports");
	puts_(b, "[");
	for (uint32_t i = 0; i < e->n_ports; i++) {
		puts_(b, "{");
		kstr(b, "name", e->ports[i].name);
		kstr(b, "protocol", e->ports[i].protocol);
		kstr(b, "appProtocol", e->ports[i].app_protocol);
		putf(b, "\"port\":%u}", e->ports[i].port);
		puts_(b, ",");
	}
	close_(b, ']');
	puts_(b, ",");
}

/* The typed fields of the kinds that also keep their spec tree: a digest
 * compared between the two parses (the tree itself is what is written). */
static void digest_spec_kind(struct buf *b, const struct wp_obj *o)
{
	switch (o->kind) {
	case WP_KIND_GATEWAY:
		kstr(b, "class", o->u.gw.class_name);
		for (uint32_t i = 0; i < o->u.gw.n_listeners; i++) {
			const struct wp_gw_listener *l = &o->u.gw.listeners[i];

			puts_(b, "{");
			kstr(b, "name", l->name);
			kstr(b, "protocol", l->protocol);
			kstr(b, "hostname", l->hostname);
			putf(b, "\"port\":%u,\"from\":%d,", l->port,
			     l->has_allowed_ns ? l->from : -1);
			if (l->has_selector)
				ser_selector(b, &l->selector);
			puts_(b, "},");
		}
		ser_gw_addrs(b, o->u.gw.n_spec_addrs, o->u.gw.spec_addrs);
		break;
	case WP_KIND_HTTPROUTE:
		for (uint32_t i = 0; i < o->u.route.n_parents; i++) {
			const struct wp_parent_ref *r = &o->u.route.parents[i];

			puts_(b, "{");
			kstr(b, "group", r->group);
			kstr(b, "kind", r->kind);
			kstr(b, "namespace", r->ns);
			kstr(b, "name", r->name);
			kstr(b, "sectionName", r->section_name);
			putf(b, "\"port\":%u},", r->port);
		}
		for (uint32_t i = 0; i < o->u.route.n_hostnames; i++)
			kstr(b, "hostname", o->u.route.hostnames[i]);
		break;
	case WP_KIND_AUTHORIZATIONPOLICY:
		kstr(b, "action", o->u.authz.action);
		putf(b, "\"selector\":%d,", o->u.authz.has_selector);
		for (uint32_t i = 0; i < o->u.authz.n_target_refs; i++) {
			const struct wp_target_ref *r = &o->u.authz.target_refs[i];

			puts_(b, "{");
			kstr(b, "group", r->group);
			kstr(b, "kind", r->kind);
			kstr(b, "name", r->name);
			kstr(b, "namespace", r->ns);
			puts_(b, "},");
		}
		break;
	case WP_KIND_DESTINATIONRULE:
		kstr(b, "host", o->u.dr.host);
		break;
	case WP_KIND_VIRTUALSERVICE:
		for (uint32_t i = 0; i < o->u.vs.n_hosts; i++)
			kstr(b, "host", o->u.vs.hosts[i]);
		for (uint32_t i = 0; i < o->u.vs.n_gateways; i++)
			kstr(b, "gateway", o->u.vs.gateways[i]);
		break;
	case WP_KIND_SERVICEENTRY:
		for (uint32_t i = 0; i < o->u.se.n_hosts; i++)
			kstr(b, "host", o->u.se.hosts[i]);
		for (uint32_t i = 0; i < o->u.se.n_addresses; i++)
			kstr(b, "address", o->u.se.addresses[i]);
		for (uint32_t i = 0; i < o->u.se.n_ports; i++) {
			puts_(b, "{");
			kstr(b, "name", o->u.se.ports[i].name);
			kstr(b, "protocol", o->u.se.ports[i].protocol);
			putf(b, "\"number\":%u,\"targetPort\":%u},", o->u.se.ports[i].number,
			     o->u.se.ports[i].target_port);
		}
		kstr(b, "resolution", o->u.se.resolution);
		kstr(b, "location", o->u.se.location);
		break;
	default:
		break;
	}
}

/* The object as one JSON document; its typed digest (for the kinds that
 * keep a spec tree) goes to <d>. */
static void serialize(const struct wp_obj *o, struct buf *b, struct buf *d)
{
	puts_(b, "{");
	kstr(b, "apiVersion", o->meta.api_version);
	kstr(b, "kind", wp_kind_name(o->kind));
	key(b, "metadata");
	puts_(b, "{");
	kstr(b, "name", o->meta.name);
	if (wp_kind_namespaced(o->kind))
		kstr(b, "namespace", o->meta.ns);
	kstr(b, "uid", o->meta.uid);
	kstr(b, "resourceVersion", o->meta.resource_version);
	if (o->meta.created)
		ktime(b, "creationTimestamp", o->meta.created);
	if (o->kind == WP_KIND_POD && o->u.pod.terminating)
		kstr(b, "deletionTimestamp", "2024-01-01T00:00:00Z");
	klabels(b, "labels", &o->meta.labels);
	klabels(b, "annotations", &o->meta.annotations);
	close_(b, '}');
	puts_(b, ",");
	switch (o->kind) {
	case WP_KIND_SERVICE:
		ser_service(b, &o->u.svc);
		break;
	case WP_KIND_POD:
		ser_pod(b, &o->u.pod);
		break;
	case WP_KIND_ENDPOINTSLICE:
		ser_eps(b, &o->u.eps);
		break;
	case WP_KIND_GATEWAYCLASS:
		puts_(b, "\"spec\":{");
		kstr(b, "controllerName", o->u.gwc.controller_name);
		close_(b, '}');
		puts_(b, ",");
		break;
	default:
		break;
	}
	if (o->spec) {
		key(b, "spec");
		put_node(b, o->spec);
		puts_(b, ",");
	}
	if (o->kind == WP_KIND_GATEWAY) {
		puts_(b, "\"status\":{");
		ser_gw_addrs(b, o->u.gw.n_status_addrs, o->u.gw.status_addrs);
		close_(b, '}');
		puts_(b, ",");
	}
	close_(b, '}');
	digest_spec_kind(d, o);
}

/* ---- the driver -------------------------------------------------------------- */

struct run {
	uint32_t lines; /* in the input */
	int n_err;
};

static void check_obj(const struct run *r, const struct wp_obj *o)
{
	static const bool keeps_spec[WP_KIND_MAX] = {
	        [WP_KIND_GATEWAY] = true,
	        [WP_KIND_HTTPROUTE] = true,
	        [WP_KIND_AUTHORIZATIONPOLICY] = true,
	        [WP_KIND_DESTINATIONRULE] = true,
	        [WP_KIND_SERVICEENTRY] = true,
	        [WP_KIND_VIRTUALSERVICE] = true,
	};

	if (o->kind <= WP_KIND_NONE || o->kind >= WP_KIND_MAX || !o->meta.name ||
	    !o->meta.name[0] || !o->meta.ns || !o->meta.api_version || o->line < 1 ||
	    o->line > r->lines)
		abort();
	if (!wp_kind_namespaced(o->kind) && o->meta.ns[0])
		abort();
	if (o->spec && (!keeps_spec[o->kind] || o->spec->type != WP_YNODE_MAP))
		abort();
	for (uint32_t i = 1; i < o->meta.labels.n; i++)
		if (strcmp(o->meta.labels.kv[i - 1].key, o->meta.labels.kv[i].key) > 0)
			abort();
	for (uint32_t i = 0; i < o->meta.labels.n; i++)
		if (!wp_labels_get(&o->meta.labels, o->meta.labels.kv[i].key))
			abort();
}

static void round_trip(const struct wp_obj *o)
{
	struct buf t1 = {0}, d1 = {0}, t2 = {0}, d2 = {0};
	char err[WP_MODEL_ERRLEN];
	struct wp_obj *copy;

	serialize(o, &t1, &d1);
	copy = wp_model_parse_one(t1.p, t1.len, "k8s:fuzz", err, sizeof(err));
	if (copy == NULL) {
		fprintf(stderr, "round trip refused: %s\n%s\n", err, t1.p);
		abort();
	}
	serialize(copy, &t2, &d2);
	if (strcmp(t1.p, t2.p) != 0 || (d1.p && strcmp(d1.p, d2.p) != 0)) {
		fprintf(stderr, "round trip changed the object:\n%s\n%s\n%s\n%s\n", t1.p, t2.p,
		        d1.p ? d1.p : "", d2.p ? d2.p : "");
		abort();
	}
	wp_obj_free(copy);
	free(t1.p);
	free(t2.p);
	free(d1.p);
	free(d2.p);
}

static int on_obj(void *ctx, struct wp_obj *o)
{
	check_obj(ctx, o);
	round_trip(o);
	wp_obj_free(o);
	return 0;
}

static void on_err(void *ctx, const struct wp_model_error *e)
{
	struct run *r = ctx;

	r->n_err++;
	/* libyaml ends the last line at the end of the stream, so a syntax error
	 * there may name the line after it */
	if (strncmp(e->msg, ORIGIN ":", sizeof(ORIGIN)) != 0 || e->line < 1 ||
	    e->line > r->lines + 1 || strlen(e->msg) >= WP_MODEL_ERRLEN)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run r = {.lines = 1};
	char *text;
	int rc;

	if (size > 65536)
		return 0;
	/* libyaml counts \r, \n, \r\n and the Unicode breaks; one per byte bounds it */
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' || data[i] == '\r' || data[i] == 0x85 || data[i] == 0xa8 ||
		    data[i] == 0xa9)
			r.lines++;
	text = malloc(size ? size : 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	rc = wp_model_parse(text, size, ORIGIN, on_obj, on_err, &r);
	if (rc >= 0 ? rc != r.n_err : rc != -EBADMSG || r.n_err < 1)
		abort();
	free(text);
	return 0;
}
