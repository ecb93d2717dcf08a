/*
 * Manifest parsing, the object layer (see wp/model.h and parse_int.h): the
 * typed extraction walks a document's node tree (ynode.c), validates the
 * fields the appliance uses and copies them into the object's own arena.
 * Here: the error context and the field readers every kind uses, the
 * kinds table, metadata, and the dispatch to the per-API-group readers
 * (core_parse.c, gateway_parse.c, networking_parse.c, authz_parse.c,
 * telemetry_parse.c); and
 * the label and selector matching of wp/model.h.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse_int.h"

/* ---- error context --------------------------------------------------------- */

void wp_model_fail(struct pctx *p, const struct wp_ynode *at, const char *field, const char *fmt,
                   ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return;
	p->failed = true;
	n = snprintf(p->msg, sizeof(p->msg), "%s:%u: %s %s%s%s: %s: ", p->origin,
	             at ? at->line : p->o->line, wp_kind_name(p->o->kind),
	             p->o->meta.ns && p->o->meta.ns[0] ? p->o->meta.ns : "",
	             p->o->meta.ns && p->o->meta.ns[0] ? "/" : "",
	             p->o->meta.name ? p->o->meta.name : "?", field);
	if (n < 0 || (size_t)n >= sizeof(p->msg))
		return;
	va_start(ap, fmt);
	vsnprintf(p->msg + n, sizeof(p->msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

void *wp_model_palloc(struct pctx *p, size_t n)
{
	void *r = wp_arena_alloc(&p->o->arena, n ? n : 1);

	if (!r && !p->failed) {
		p->oom = true;
		wp_model_fail(p, NULL, "-", "out of memory");
	}
	return r;
}

const char *wp_model_pstr(struct pctx *p, const char *s)
{
	const char *r;

	if (!s)
		return NULL;
	r = wp_arena_strdup(&p->o->arena, s);
	if (!r && !p->failed) {
		p->oom = true;
		wp_model_fail(p, NULL, "-", "out of memory");
	}
	return r;
}

/* Node of a given type under key, or NULL when absent/null. */
const struct wp_ynode *wp_model_get_typed(struct pctx *p, const struct wp_ynode *map,
                                          const char *key, enum wp_ynode_type t, const char *field)
{
	const struct wp_ynode *n = wp_ynode_get(map, key);
	static const char *const tname[] = {"a string", "a mapping", "a list"};

	if (wp_ynode_is_null(n))
		return NULL;
	if (n->type != t) {
		wp_model_fail(p, n, field, "expected %s", tname[t]);
		return NULL;
	}
	return n;
}

const char *wp_model_get_str(struct pctx *p, const struct wp_ynode *map, const char *key,
                             const char *field, bool required)
{
	const struct wp_ynode *n = wp_model_get_typed(p, map, key, WP_YNODE_SCALAR, field);

	if (!n) {
		if (required && !p->failed)
			wp_model_fail(p, map, field, "required field missing");
		return NULL;
	}
	return wp_model_pstr(p, n->value);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return !errno && !*end && *out <= max;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + (int64_t)doe - 719468;
}

/* The fixed part of an RFC 3339 timestamp, digit by digit: sscanf's %u
 * alone also takes signs and leading blanks ("-001-..." would be the year
 * 4294967295). */
static bool ts_shape(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd";

	for (size_t i = 0; i < sizeof(pat) - 1; i++) {
		if (pat[i] == 'd'   ? s[i] < '0' || s[i] > '9'
		    : pat[i] == 'T' ? s[i] != 'T' && s[i] != 't' && s[i] != ' '
		                    : s[i] != pat[i])
			return false;
	}
	return true;
}

/* An RFC 3339 timestamp (metav1.Time: "2024-05-01T10:20:30Z", fractions and
 * numeric offsets accepted) as Unix seconds; absent or null gives 0. */
static void get_timestamp(struct pctx *p, const struct wp_ynode *map, const char *key,
                          const char *field, int64_t *out)
{
	const struct wp_ynode *n = wp_ynode_get(map, key);
	unsigned y, mo, d, h, mi, sec;
	int used = 0;
	const char *s;

	*out = 0;
	if (wp_ynode_is_null(n))
		return;
	if (n->type != WP_YNODE_SCALAR)
		goto bad;
	s = n->value;
	if (!ts_shape(s) ||
	    sscanf(s, "%4u-%2u-%2u%*1[Tt ]%2u:%2u:%2u%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
	    used != 19 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		goto bad;
	s += used;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			goto bad;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	if ((*s == 'Z' || *s == 'z') && !s[1])
		return;
	if ((*s == '+' || *s == '-') && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9' &&
	    s[3] == ':' && s[4] >= '0' && s[4] <= '9' && s[5] >= '0' && s[5] <= '9' && !s[6]) {
		int64_t off = ((s[1] - '0') * 10 + (s[2] - '0')) * 3600 +
		              ((s[4] - '0') * 10 + (s[5] - '0')) * 60;

		*out += *s == '+' ? -off : off;
		return;
	}
bad:
	*out = 0;
	wp_model_fail(p, n, field, "expected an RFC 3339 time such as 2024-05-01T10:20:30Z, got %s",
	              n->type == WP_YNODE_SCALAR ? n->value : "a collection");
}

/* An integer port 1..65535 (0 allowed when allow0). Returns false on error. */
bool wp_model_get_port(struct pctx *p, const struct wp_ynode *map, const char *key,
                       const char *field, bool required, bool allow0, uint16_t *out)
{
	const struct wp_ynode *n = wp_ynode_get(map, key);
	unsigned long v;

	*out = 0;
	if (wp_ynode_is_null(n)) {
		if (required)
			wp_model_fail(p, map, field, "required field missing");
		return !required;
	}
	if (n->type != WP_YNODE_SCALAR || !n->plain || !parse_uint(n->value, 65535, &v) ||
	    (v == 0 && !allow0)) {
		wp_model_fail(p, n, field, "expected a port number in 1..65535, got %s",
		              n->type == WP_YNODE_SCALAR ? n->value : "a collection");
		return false;
	}
	*out = (uint16_t)v;
	return true;
}

bool wp_model_get_bool(struct pctx *p, const struct wp_ynode *map, const char *key,
                       const char *field, bool dflt)
{
	const struct wp_ynode *n = wp_ynode_get(map, key);

	if (wp_ynode_is_null(n))
		return dflt;
	if (n->type == WP_YNODE_SCALAR && n->plain) {
		if (!strcmp(n->value, "true") || !strcmp(n->value, "True"))
			return true;
		if (!strcmp(n->value, "false") || !strcmp(n->value, "False"))
			return false;
	}
	wp_model_fail(p, n, field, "expected true or false");
	return dflt;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wp_kv *)a)->key, ((const struct wp_kv *)b)->key);
}

/* A map of string -> string (labels, annotations, selector). */
void wp_model_get_labels(struct pctx *p, const struct wp_ynode *map, const char *key,
                         const char *field, struct wp_labels *out)
{
	const struct wp_ynode *m = wp_model_get_typed(p, map, key, WP_YNODE_MAP, field);
	struct wp_kv *kv;
	uint32_t i = 0;

	out->n = 0;
	out->kv = NULL;
	if (!m || !m->n)
		return;
	kv = wp_model_palloc(p, sizeof(*kv) * m->n);
	if (!kv)
		return;
	for (const struct wp_ynode *c = m->child; c; c = c->next) {
		if (c->type != WP_YNODE_SCALAR) {
			char f[160];

			snprintf(f, sizeof(f), "%s.%s", field, c->key);
			wp_model_fail(p, c, f, "expected a string");
			return;
		}
		kv[i].key = wp_model_pstr(p, c->key);
		kv[i].value = wp_model_pstr(p, wp_ynode_is_null(c) ? "" : c->value);
		i++;
	}
	qsort(kv, i, sizeof(*kv), kv_cmp);
	out->n = i;
	out->kv = kv;
}

void wp_model_get_selector(struct pctx *p, const struct wp_ynode *sel, const char *field,
                           struct wp_label_selector *out)
{
	const struct wp_ynode *ex;
	char f[160];
	uint32_t i = 0;

	memset(out, 0, sizeof(*out));
	snprintf(f, sizeof(f), "%s.matchLabels", field);
	wp_model_get_labels(p, sel, "matchLabels", f, &out->match_labels);
	snprintf(f, sizeof(f), "%s.matchExpressions", field);
	ex = wp_model_get_typed(p, sel, "matchExpressions", WP_YNODE_SEQ, f);
	if (!ex || !ex->n)
		return;
	struct wp_sel_expr *e = wp_model_palloc(p, sizeof(*e) * ex->n);
	if (!e)
		return;
	for (const struct wp_ynode *c = ex->child; c && !p->failed; c = c->next, i++) {
		const char *op;
		const struct wp_ynode *vals;

		snprintf(f, sizeof(f), "%s.matchExpressions[%u]", field, i);
		if (c->type != WP_YNODE_MAP) {
			wp_model_fail(p, c, f, "expected a mapping");
			return;
		}
		e[i].key = wp_model_get_str(p, c, "key", f, true);
		op = wp_model_get_str(p, c, "operator", f, true);
		if (p->failed)
			return;
		if (!strcmp(op, "In"))
			e[i].op = WP_SEL_IN;
		else if (!strcmp(op, "NotIn"))
			e[i].op = WP_SEL_NOT_IN;
		else if (!strcmp(op, "Exists"))
			e[i].op = WP_SEL_EXISTS;
		else if (!strcmp(op, "DoesNotExist"))
			e[i].op = WP_SEL_DOES_NOT_EXIST;
		else {
			wp_model_fail(p, wp_ynode_get(c, "operator"), f,
			              "operator must be In, NotIn, Exists or DoesNotExist, got %s",
			              op);
			return;
		}
		vals = wp_model_get_typed(p, c, "values", WP_YNODE_SEQ, f);
		if (vals && vals->n) {
			const char **v = wp_model_palloc(p, sizeof(*v) * vals->n);
			uint32_t j = 0;

			if (!v)
				return;
			for (const struct wp_ynode *vc = vals->child; vc; vc = vc->next) {
				if (vc->type != WP_YNODE_SCALAR) {
					wp_model_fail(p, vc, f, "values must be strings");
					return;
				}
				v[j++] = wp_model_pstr(p, vc->value);
			}
			e[i].values = v;
			e[i].n_values = j;
		}
		if ((e[i].op == WP_SEL_IN || e[i].op == WP_SEL_NOT_IN) && !e[i].n_values) {
			wp_model_fail(p, c, f, "operator %s needs values", op);
			return;
		}
		if ((e[i].op == WP_SEL_EXISTS || e[i].op == WP_SEL_DOES_NOT_EXIST) &&
		    e[i].n_values) {
			wp_model_fail(p, c, f, "operator %s takes no values", op);
			return;
		}
	}
	out->expr = e;
	out->n_expr = i;
}

bool wp_model_parse_ip(struct pctx *p, const struct wp_ynode *n, const char *field,
                       struct wp_addr *out)
{
	if (!n || n->type != WP_YNODE_SCALAR || wp_addr_parse(n->value, out)) {
		wp_model_fail(p, n, field, "expected an IP address, got %s",
		              n && n->type == WP_YNODE_SCALAR ? n->value : "a collection");
		return false;
	}
	return true;
}

/* A list of strings. */
void wp_model_get_strlist(struct pctx *p, const struct wp_ynode *map, const char *key,
                          const char *field, uint32_t *n_out, const char *const **out)
{
	const struct wp_ynode *s = wp_model_get_typed(p, map, key, WP_YNODE_SEQ, field);
	const char **v;
	uint32_t i = 0;

	*n_out = 0;
	*out = NULL;
	if (!s || !s->n)
		return;
	v = wp_model_palloc(p, sizeof(*v) * s->n);
	if (!v)
		return;
	for (const struct wp_ynode *c = s->child; c; c = c->next, i++) {
		if (c->type != WP_YNODE_SCALAR) {
			char f[160];

			snprintf(f, sizeof(f), "%s[%u]", field, i);
			wp_model_fail(p, c, f, "expected a string");
			return;
		}
		v[i] = wp_model_pstr(p, c->value);
	}
	*out = v;
	*n_out = i;
}

/* ---- kinds ----------------------------------------------------------------- */

static const struct {
	const char *name;
	const char *group; /* "" = core */
	enum wp_kind kind;
} kinds[] = {
        {"Namespace", "", WP_KIND_NAMESPACE},
        {"Service", "", WP_KIND_SERVICE},
        {"Pod", "", WP_KIND_POD},
        {"EndpointSlice", "discovery.k8s.io", WP_KIND_ENDPOINTSLICE},
        {"Gateway", "gateway.networking.k8s.io", WP_KIND_GATEWAY},
        {"GatewayClass", "gateway.networking.k8s.io", WP_KIND_GATEWAYCLASS},
        {"HTTPRoute", "gateway.networking.k8s.io", WP_KIND_HTTPROUTE},
        {"AuthorizationPolicy", "security.istio.io", WP_KIND_AUTHORIZATIONPOLICY},
        {"DestinationRule", "networking.istio.io", WP_KIND_DESTINATIONRULE},
        {"ServiceEntry", "networking.istio.io", WP_KIND_SERVICEENTRY},
        {"VirtualService", "networking.istio.io", WP_KIND_VIRTUALSERVICE},
        {"Telemetry", "telemetry.istio.io", WP_KIND_TELEMETRY},
};

const char *wp_kind_name(enum wp_kind kind)
{
	for (size_t i = 0; i < WP_ARRAY_SIZE(kinds); i++)
		if (kinds[i].kind == kind)
			return kinds[i].name;
	return "?";
}

enum wp_kind wp_kind_from_name(const char *kind, const char *api_version)
{
	for (size_t i = 0; i < WP_ARRAY_SIZE(kinds); i++) {
		size_t gl;

		if (strcmp(kinds[i].name, kind))
			continue;
		if (!api_version)
			return kinds[i].kind;
		gl = strlen(kinds[i].group);
		if (!gl) {
			if (!strchr(api_version, '/'))
				return kinds[i].kind;
		} else if (!strncmp(api_version, kinds[i].group, gl) && api_version[gl] == '/') {
			return kinds[i].kind;
		}
	}
	return WP_KIND_NONE;
}

bool wp_kind_namespaced(enum wp_kind kind)
{
	return kind != WP_KIND_NAMESPACE && kind != WP_KIND_GATEWAYCLASS;
}

/*
 * Builds one object from a document's root map. Returns the object, or NULL
 * with p->failed set (message in p->msg, p->o still allocated for naming) or
 * with p->failed clear for a kind we skip.
 */
struct wp_obj *wp_model_extract(struct pctx *p, const struct wp_ynode *root, const char *origin)
{
	const struct wp_ynode *meta, *spec, *status;
	const char *kind, *apiv;
	struct wp_obj *o;
	enum wp_kind k;

	p->failed = false;
	p->o = NULL;
	p->origin = origin;
	{
		const struct wp_ynode *kn = wp_ynode_get(root, "kind");
		const struct wp_ynode *an = wp_ynode_get(root, "apiVersion");

		kind = kn && kn->type == WP_YNODE_SCALAR ? kn->value : NULL;
		apiv = an && an->type == WP_YNODE_SCALAR ? an->value : NULL;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		p->failed = p->oom = true;
		snprintf(p->msg, sizeof(p->msg), "%s:%u: out of memory", origin, root->line);
		return NULL;
	}
	wp_arena_init(&o->arena, 1024);
	o->line = root->line;
	p->o = o;
	if (!kind || !apiv) {
		snprintf(p->msg, sizeof(p->msg), "%s:%u: %s: required field missing", origin,
		         root->line, !kind ? "kind" : "apiVersion");
		p->failed = true;
		return NULL;
	}
	k = wp_kind_from_name(kind, apiv);
	if (k == WP_KIND_NONE) {
		wp_obj_free(o);
		p->o = NULL;
		return NULL; /* not ours */
	}
	o->kind = k;
	o->origin = wp_model_pstr(p, origin);
	o->meta.api_version = wp_model_pstr(p, apiv);
	meta = wp_model_get_typed(p, root, "metadata", WP_YNODE_MAP, "metadata");
	if (!meta) {
		if (!p->failed)
			wp_model_fail(p, root, "metadata", "required field missing");
		return NULL;
	}
	{
		/* name and namespace first so later errors can name the object */
		const struct wp_ynode *nn = wp_ynode_get(meta, "name");
		const struct wp_ynode *ns = wp_ynode_get(meta, "namespace");

		if (nn && nn->type == WP_YNODE_SCALAR && !wp_ynode_is_null(nn))
			o->meta.name = wp_model_pstr(p, nn->value);
		if (wp_kind_namespaced(k)) {
			if (ns && ns->type == WP_YNODE_SCALAR && !wp_ynode_is_null(ns))
				o->meta.ns = wp_model_pstr(p, ns->value);
			else
				o->meta.ns = "default"; /* as kubectl apply does */
		} else {
			o->meta.ns = "";
		}
	}
	wp_model_get_str(p, meta, "name", "metadata.name", true);
	if (!p->failed && !o->meta.name[0])
		wp_model_fail(p, wp_ynode_get(meta, "name"), "metadata.name", "must not be empty");
	o->meta.uid = wp_model_get_str(p, meta, "uid", "metadata.uid", false);
	o->meta.resource_version =
	        wp_model_get_str(p, meta, "resourceVersion", "metadata.resourceVersion", false);
	get_timestamp(p, meta, "creationTimestamp", "metadata.creationTimestamp", &o->meta.created);
	wp_model_get_labels(p, meta, "labels", "metadata.labels", &o->meta.labels);
	wp_model_get_labels(p, meta, "annotations", "metadata.annotations", &o->meta.annotations);
	if (p->failed)
		return NULL;
	spec = wp_model_get_typed(p, root, "spec", WP_YNODE_MAP, "spec");
	status = wp_model_get_typed(p, root, "status", WP_YNODE_MAP, "status");
	if (p->failed)
		return NULL;
	switch (k) {
	case WP_KIND_NAMESPACE:
		break;
	case WP_KIND_SERVICE:
		wp_model_read_service(p, spec);
		break;
	case WP_KIND_POD:
		wp_model_read_pod(p, spec, status, meta);
		break;
	case WP_KIND_ENDPOINTSLICE:
		wp_model_read_endpointslice(p, root);
		break;
	case WP_KIND_GATEWAY:
		wp_model_read_gateway(p, spec, status);
		break;
	case WP_KIND_GATEWAYCLASS:
		o->u.gwc.controller_name =
		        wp_model_get_str(p, spec, "controllerName", "spec.controllerName", true);
		break;
	case WP_KIND_HTTPROUTE:
		wp_model_read_httproute(p, spec);
		break;
	case WP_KIND_AUTHORIZATIONPOLICY:
		wp_model_read_authz(p, spec);
		break;
	case WP_KIND_DESTINATIONRULE:
		if (!spec)
			wp_model_fail(p, NULL, "spec", "required field missing");
		else
			o->u.dr.host = wp_model_get_str(p, spec, "host", "spec.host", true);
		break;
	case WP_KIND_SERVICEENTRY:
		wp_model_read_serviceentry(p, spec);
		break;
	case WP_KIND_VIRTUALSERVICE:
		wp_model_read_virtualservice(p, spec);
		break;
	case WP_KIND_TELEMETRY:
		wp_model_read_telemetry(p, spec);
		break;
	default:
		break;
	}
	if (p->failed)
		return NULL;
	if (spec && (k == WP_KIND_GATEWAY || k == WP_KIND_HTTPROUTE ||
	             k == WP_KIND_AUTHORIZATIONPOLICY || k == WP_KIND_DESTINATIONRULE ||
	             k == WP_KIND_SERVICEENTRY || k == WP_KIND_VIRTUALSERVICE)) {
		o->spec = wp_ynode_copy(&o->arena, spec);
		if (!o->spec) {
			wp_model_fail(p, spec, "spec", "out of memory");
			return NULL;
		}
	}
	return o;
}

void wp_obj_free(struct wp_obj *obj)
{
	if (!obj)
		return;
	wp_arena_free(&obj->arena);
	free(obj);
}

/* ---- labels ---------------------------------------------------------------- */

const char *wp_labels_get(const struct wp_labels *l, const char *key)
{
	uint32_t lo = 0, hi = l->n;

	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		int c = strcmp(l->kv[mid].key, key);

		if (!c)
			return l->kv[mid].value;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool wp_labels_subset(const struct wp_labels *sel, const struct wp_labels *labels)
{
	for (uint32_t i = 0; i < sel->n; i++) {
		const char *v = wp_labels_get(labels, sel->kv[i].key);

		if (!v || strcmp(v, sel->kv[i].value))
			return false;
	}
	return true;
}

bool wp_selector_match(const struct wp_label_selector *s, const struct wp_labels *labels)
{
	if (!wp_labels_subset(&s->match_labels, labels))
		return false;
	for (uint32_t i = 0; i < s->n_expr; i++) {
		const struct wp_sel_expr *e = &s->expr[i];
		const char *v = wp_labels_get(labels, e->key);
		bool in = false;

		for (uint32_t j = 0; v && j < e->n_values; j++)
			if (!strcmp(v, e->values[j]))
				in = true;
		switch (e->op) {
		case WP_SEL_IN:
			if (!in)
				return false;
			break;
		case WP_SEL_NOT_IN:
			if (in)
				return false;
			break;
		case WP_SEL_EXISTS:
			if (!v)
				return false;
			break;
		case WP_SEL_DOES_NOT_EXIST:
			if (v)
				return false;
			break;
		}
	}
	return true;
}
