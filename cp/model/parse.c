/*
 * Manifest parsing (see wp/model.h). libyaml's event parser builds a small
 * node tree per document (scalars kept as text, with line numbers); the
 * typed extraction below walks that tree, validates the fields the
 * appliance uses and copies them into the object's own arena. JSON goes
 * through the same path: libyaml reads it as flow-style YAML.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "wp/addr.h"
#include "wp/model.h"

#define MAX_DEPTH 64

/* ---- node tree ------------------------------------------------------------ */

static struct wp_ynode *node_new(struct wp_arena *a, enum wp_ynode_type t, uint32_t line)
{
	struct wp_ynode *n = wp_arena_alloc(a, sizeof(*n));

	if (n) {
		n->type = (uint8_t)t;
		n->line = line;
	}
	return n;
}

static void node_add(struct wp_ynode *parent, struct wp_ynode *c)
{
	if (parent->last)
		parent->last->next = c;
	else
		parent->child = c;
	parent->last = c;
	parent->n++;
}

const struct wp_ynode *wp_ynode_get(const struct wp_ynode *map, const char *key)
{
	if (!map || map->type != WP_YNODE_MAP)
		return NULL;
	for (const struct wp_ynode *c = map->child; c; c = c->next)
		if (!strcmp(c->key, key))
			return c;
	return NULL;
}

bool wp_ynode_is_null(const struct wp_ynode *n)
{
	if (!n)
		return true;
	if (n->type != WP_YNODE_SCALAR || !n->plain)
		return false;
	return !strcmp(n->value, "null") || !strcmp(n->value, "~") || !n->value[0] ||
	       !strcmp(n->value, "Null") || !strcmp(n->value, "NULL");
}

static struct wp_ynode *node_copy(struct wp_arena *a, const struct wp_ynode *s)
{
	struct wp_ynode *d = node_new(a, s->type, s->line);

	if (!d)
		return NULL;
	d->plain = s->plain;
	d->key = wp_arena_strdup(a, s->key);
	d->value = wp_arena_strdup(a, s->value);
	for (const struct wp_ynode *c = s->child; c; c = c->next) {
		struct wp_ynode *cc = node_copy(a, c);

		if (!cc)
			return NULL;
		node_add(d, cc);
	}
	return d;
}

/* ---- error context -------------------------------------------------------- */

struct pctx {
	const char *origin;
	struct wp_obj *o;
	char msg[WP_MODEL_ERRLEN];
	bool failed;
	bool oom;
};

static void fail(struct pctx *p, const struct wp_ynode *at, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void fail(struct pctx *p, const struct wp_ynode *at, const char *field, const char *fmt, ...)
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

static void *palloc(struct pctx *p, size_t n)
{
	void *r = wp_arena_alloc(&p->o->arena, n ? n : 1);

	if (!r && !p->failed) {
		p->oom = true;
		fail(p, NULL, "-", "out of memory");
	}
	return r;
}

static const char *pstr(struct pctx *p, const char *s)
{
	const char *r;

	if (!s)
		return NULL;
	r = wp_arena_strdup(&p->o->arena, s);
	if (!r && !p->failed) {
		p->oom = true;
		fail(p, NULL, "-", "out of memory");
	}
	return r;
}

/* Node of a given type under key, or NULL when absent/null. */
static const struct wp_ynode *get_typed(struct pctx *p, const struct wp_ynode *map, const char *key,
                                        enum wp_ynode_type t, const char *field)
{
	const struct wp_ynode *n = wp_ynode_get(map, key);
	static const char *const tname[] = {"a string", "a mapping", "a list"};

	if (wp_ynode_is_null(n))
		return NULL;
	if (n->type != t) {
		fail(p, n, field, "expected %s", tname[t]);
		return NULL;
	}
	return n;
}

static const char *get_str(struct pctx *p, const struct wp_ynode *map, const char *key,
                           const char *field, bool required)
{
	const struct wp_ynode *n = get_typed(p, map, key, WP_YNODE_SCALAR, field);

	if (!n) {
		if (required && !p->failed)
			fail(p, map, field, "required field missing");
		return NULL;
	}
	return pstr(p, n->value);
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
	fail(p, n, field, "expected an RFC 3339 time such as 2024-05-01T10:20:30Z, got %s",
	     n->type == WP_YNODE_SCALAR ? n->value : "a collection");
}

/* An integer port 1..65535 (0 allowed when allow0). Returns false on error. */
static bool get_port(struct pctx *p, const struct wp_ynode *map, const char *key, const char *field,
                     bool required, bool allow0, uint16_t *out)
{
	const struct wp_ynode *n = wp_ynode_get(map, key);
	unsigned long v;

	*out = 0;
	if (wp_ynode_is_null(n)) {
		if (required)
			fail(p, map, field, "required field missing");
		return !required;
	}
	if (n->type != WP_YNODE_SCALAR || !n->plain || !parse_uint(n->value, 65535, &v) ||
	    (v == 0 && !allow0)) {
		fail(p, n, field, "expected a port number in 1..65535, got %s",
		     n->type == WP_YNODE_SCALAR ? n->value : "a collection");
		return false;
	}
	*out = (uint16_t)v;
	return true;
}

static bool get_bool(struct pctx *p, const struct wp_ynode *map, const char *key, const char *field,
                     bool dflt)
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
	fail(p, n, field, "expected true or false");
	return dflt;
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct wp_kv *)a)->key, ((const struct wp_kv *)b)->key);
}

/* A map of string -> string (labels, annotations, selector). */
static void get_labels(struct pctx *p, const struct wp_ynode *map, const char *key,
                       const char *field, struct wp_labels *out)
{
	const struct wp_ynode *m = get_typed(p, map, key, WP_YNODE_MAP, field);
	struct wp_kv *kv;
	uint32_t i = 0;

	out->n = 0;
	out->kv = NULL;
	if (!m || !m->n)
		return;
	kv = palloc(p, sizeof(*kv) * m->n);
	if (!kv)
		return;
	for (const struct wp_ynode *c = m->child; c; c = c->next) {
		if (c->type != WP_YNODE_SCALAR) {
			char f[160];

			snprintf(f, sizeof(f), "%s.%s", field, c->key);
			fail(p, c, f, "expected a string");
			return;
		}
		kv[i].key = pstr(p, c->key);
		kv[i].value = pstr(p, wp_ynode_is_null(c) ? "" : c->value);
		i++;
	}
	qsort(kv, i, sizeof(*kv), kv_cmp);
	out->n = i;
	out->kv = kv;
}

static void get_selector(struct pctx *p, const struct wp_ynode *sel, const char *field,
                         struct wp_label_selector *out)
{
	const struct wp_ynode *ex;
	char f[160];
	uint32_t i = 0;

	memset(out, 0, sizeof(*out));
	snprintf(f, sizeof(f), "%s.matchLabels", field);
	get_labels(p, sel, "matchLabels", f, &out->match_labels);
	snprintf(f, sizeof(f), "%s.matchExpressions", field);
	ex = get_typed(p, sel, "matchExpressions", WP_YNODE_SEQ, f);
	if (!ex || !ex->n)
		return;
	struct wp_sel_expr *e = palloc(p, sizeof(*e) * ex->n);
	if (!e)
		return;
	for (const struct wp_ynode *c = ex->child; c && !p->failed; c = c->next, i++) {
		const char *op;
		const struct wp_ynode *vals;

		snprintf(f, sizeof(f), "%s.matchExpressions[%u]", field, i);
		if (c->type != WP_YNODE_MAP) {
			fail(p, c, f, "expected a mapping");
			return;
		}
		e[i].key = get_str(p, c, "key", f, true);
		op = get_str(p, c, "operator", f, true);
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
			fail(p, wp_ynode_get(c, "operator"), f,
			     "operator must be In, NotIn, Exists or DoesNotExist, got %s", op);
			return;
		}
		vals = get_typed(p, c, "values", WP_YNODE_SEQ, f);
		if (vals && vals->n) {
			const char **v = palloc(p, sizeof(*v) * vals->n);
			uint32_t j = 0;

			if (!v)
				return;
			for (const struct wp_ynode *vc = vals->child; vc; vc = vc->next) {
				if (vc->type != WP_YNODE_SCALAR) {
					fail(p, vc, f, "values must be strings");
					return;
				}
				v[j++] = pstr(p, vc->value);
			}
			e[i].values = v;
			e[i].n_values = j;
		}
		if ((e[i].op == WP_SEL_IN || e[i].op == WP_SEL_NOT_IN) && !e[i].n_values) {
			fail(p, c, f, "operator %s needs values", op);
			return;
		}
		if ((e[i].op == WP_SEL_EXISTS || e[i].op == WP_SEL_DOES_NOT_EXIST) &&
		    e[i].n_values) {
			fail(p, c, f, "operator %s takes no values", op);
			return;
		}
	}
	out->expr = e;
	out->n_expr = i;
}

static bool parse_ip(struct pctx *p, const struct wp_ynode *n, const char *field,
                     struct wp_addr *out)
{
	if (!n || n->type != WP_YNODE_SCALAR || wp_addr_parse(n->value, out)) {
		fail(p, n, field, "expected an IP address, got %s",
		     n && n->type == WP_YNODE_SCALAR ? n->value : "a collection");
		return false;
	}
	return true;
}

/* A list of strings. */
static void get_strlist(struct pctx *p, const struct wp_ynode *map, const char *key,
                        const char *field, uint32_t *n_out, const char *const **out)
{
	const struct wp_ynode *s = get_typed(p, map, key, WP_YNODE_SEQ, field);
	const char **v;
	uint32_t i = 0;

	*n_out = 0;
	*out = NULL;
	if (!s || !s->n)
		return;
	v = palloc(p, sizeof(*v) * s->n);
	if (!v)
		return;
	for (const struct wp_ynode *c = s->child; c; c = c->next, i++) {
		if (c->type != WP_YNODE_SCALAR) {
			char f[160];

			snprintf(f, sizeof(f), "%s[%u]", field, i);
			fail(p, c, f, "expected a string");
			return;
		}
		v[i] = pstr(p, c->value);
	}
	*out = v;
	*n_out = i;
}

/* ---- kinds ---------------------------------------------------------------- */

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

static void x_service(struct pctx *p, const struct wp_ynode *spec)
{
	struct wp_k8s_service *s = &p->o->u.svc;
	const struct wp_ynode *ports, *ips;
	const char *cip;
	char f[96];
	uint32_t i = 0;

	if (!spec) {
		fail(p, NULL, "spec", "required field missing");
		return;
	}
	s->type = get_str(p, spec, "type", "spec.type", false);
	if (!s->type)
		s->type = "ClusterIP";
	cip = get_str(p, spec, "clusterIP", "spec.clusterIP", false);
	ips = get_typed(p, spec, "clusterIPs", WP_YNODE_SEQ, "spec.clusterIPs");
	if (cip && !strcmp(cip, "None"))
		s->headless = true;
	if (!s->headless && ips && ips->n) {
		struct wp_addr *a = palloc(p, sizeof(*a) * ips->n);

		if (!a)
			return;
		for (const struct wp_ynode *c = ips->child; c; c = c->next, i++) {
			snprintf(f, sizeof(f), "spec.clusterIPs[%u]", i);
			if (c->type == WP_YNODE_SCALAR && !strcmp(c->value, "None")) {
				s->headless = true;
				break;
			}
			if (!parse_ip(p, c, f, &a[i]))
				return;
		}
		s->cluster_ips = a;
		s->n_cluster_ips = s->headless ? 0 : i;
	} else if (!s->headless && cip && cip[0]) {
		struct wp_addr *a = palloc(p, sizeof(*a));

		if (!a || !parse_ip(p, wp_ynode_get(spec, "clusterIP"), "spec.clusterIP", a))
			return;
		s->cluster_ips = a;
		s->n_cluster_ips = 1;
	}
	ports = get_typed(p, spec, "ports", WP_YNODE_SEQ, "spec.ports");
	if (ports && ports->n) {
		struct wp_svc_port *sp = palloc(p, sizeof(*sp) * ports->n);

		if (!sp)
			return;
		i = 0;
		for (const struct wp_ynode *c = ports->child; c && !p->failed; c = c->next, i++) {
			const struct wp_ynode *tp;

			snprintf(f, sizeof(f), "spec.ports[%u]", i);
			if (c->type != WP_YNODE_MAP) {
				fail(p, c, f, "expected a mapping");
				return;
			}
			snprintf(f, sizeof(f), "spec.ports[%u].name", i);
			sp[i].name = get_str(p, c, "name", f, false);
			if (!sp[i].name)
				sp[i].name = "";
			snprintf(f, sizeof(f), "spec.ports[%u].protocol", i);
			sp[i].protocol = get_str(p, c, "protocol", f, false);
			if (!sp[i].protocol)
				sp[i].protocol = "TCP";
			snprintf(f, sizeof(f), "spec.ports[%u].appProtocol", i);
			sp[i].app_protocol = get_str(p, c, "appProtocol", f, false);
			snprintf(f, sizeof(f), "spec.ports[%u].port", i);
			if (!get_port(p, c, "port", f, true, false, &sp[i].port))
				return;
			snprintf(f, sizeof(f), "spec.ports[%u].targetPort", i);
			tp = wp_ynode_get(c, "targetPort");
			if (wp_ynode_is_null(tp)) {
				sp[i].target_port = sp[i].port;
			} else if (tp->type == WP_YNODE_SCALAR && tp->plain &&
			           tp->value[0] >= '0' && tp->value[0] <= '9') {
				if (!get_port(p, c, "targetPort", f, true, false,
				              &sp[i].target_port))
					return;
			} else if (tp->type == WP_YNODE_SCALAR) {
				sp[i].target_port_name = pstr(p, tp->value);
			} else {
				fail(p, tp, f, "expected a port number or a port name");
				return;
			}
		}
		s->ports = sp;
		s->n_ports = i;
	}
	if (wp_ynode_get(spec, "selector") && !wp_ynode_is_null(wp_ynode_get(spec, "selector")))
		s->has_selector = true;
	get_labels(p, spec, "selector", "spec.selector", &s->selector);
}

static void x_pod(struct pctx *p, const struct wp_ynode *spec, const struct wp_ynode *status,
                  const struct wp_ynode *meta)
{
	struct wp_k8s_pod *pod = &p->o->u.pod;
	const struct wp_ynode *cs, *ips, *conds;
	char f[128];
	uint32_t n = 0, i;

	pod->ready = true;
	if (spec) {
		pod->service_account =
		        get_str(p, spec, "serviceAccountName", "spec.serviceAccountName", false);
		pod->node_name = get_str(p, spec, "nodeName", "spec.nodeName", false);
		pod->host_network = get_bool(p, spec, "hostNetwork", "spec.hostNetwork", false);
		cs = get_typed(p, spec, "containers", WP_YNODE_SEQ, "spec.containers");
		for (const struct wp_ynode *c = cs ? cs->child : NULL; c; c = c->next) {
			const struct wp_ynode *pl = wp_ynode_get(c, "ports");

			if (pl && pl->type == WP_YNODE_SEQ)
				n += pl->n;
		}
		if (n) {
			struct wp_container_port *cp = palloc(p, sizeof(*cp) * n);
			uint32_t ci = 0, k = 0;

			if (!cp)
				return;
			for (const struct wp_ynode *c = cs->child; c && !p->failed;
			     c = c->next, ci++) {
				const struct wp_ynode *pl;

				snprintf(f, sizeof(f), "spec.containers[%u].ports", ci);
				pl = get_typed(p, c, "ports", WP_YNODE_SEQ, f);
				i = 0;
				for (const struct wp_ynode *q = pl ? pl->child : NULL;
				     q && !p->failed; q = q->next, i++) {
					snprintf(f, sizeof(f), "spec.containers[%u].ports[%u]", ci,
					         i);
					if (q->type != WP_YNODE_MAP) {
						fail(p, q, f, "expected a mapping");
						return;
					}
					cp[k].name = get_str(p, q, "name", f, false);
					cp[k].protocol = get_str(p, q, "protocol", f, false);
					snprintf(f, sizeof(f),
					         "spec.containers[%u].ports[%u].containerPort", ci,
					         i);
					if (!get_port(p, q, "containerPort", f, true, false,
					              &cp[k].port))
						return;
					k++;
				}
			}
			pod->cports = cp;
			pod->n_cports = k;
		}
	}
	if (!pod->service_account)
		pod->service_account = "default";
	if (wp_ynode_get(meta, "deletionTimestamp") &&
	    !wp_ynode_is_null(wp_ynode_get(meta, "deletionTimestamp")))
		pod->terminating = true;
	if (!status)
		return;
	pod->phase = get_str(p, status, "phase", "status.phase", false);
	ips = get_typed(p, status, "podIPs", WP_YNODE_SEQ, "status.podIPs");
	if (ips && ips->n) {
		struct wp_addr *a = palloc(p, sizeof(*a) * ips->n);

		if (!a)
			return;
		i = 0;
		for (const struct wp_ynode *c = ips->child; c; c = c->next, i++) {
			snprintf(f, sizeof(f), "status.podIPs[%u].ip", i);
			if (!parse_ip(p, wp_ynode_get(c, "ip"), f, &a[i]))
				return;
		}
		pod->ips = a;
		pod->n_ips = i;
	} else {
		const struct wp_ynode *ip = wp_ynode_get(status, "podIP");

		if (!wp_ynode_is_null(ip)) {
			struct wp_addr *a = palloc(p, sizeof(*a));

			if (!a || !parse_ip(p, ip, "status.podIP", a))
				return;
			pod->ips = a;
			pod->n_ips = 1;
		}
	}
	conds = get_typed(p, status, "conditions", WP_YNODE_SEQ, "status.conditions");
	for (const struct wp_ynode *c = conds ? conds->child : NULL; c; c = c->next) {
		const struct wp_ynode *t = wp_ynode_get(c, "type"), *s = wp_ynode_get(c, "status");

		if (t && t->type == WP_YNODE_SCALAR && !strcmp(t->value, "Ready") && s &&
		    s->type == WP_YNODE_SCALAR)
			pod->ready = !strcmp(s->value, "True");
	}
}

static void x_endpointslice(struct pctx *p, const struct wp_ynode *root)
{
	struct wp_k8s_endpointslice *e = &p->o->u.eps;
	const struct wp_ynode *eps, *ports;
	char f[128];
	uint32_t i = 0;

	e->service_name = wp_labels_get(&p->o->meta.labels, WP_LABEL_SERVICE_NAME);
	e->address_type = get_str(p, root, "addressType", "addressType", true);
	if (p->failed)
		return;
	if (strcmp(e->address_type, "IPv4") && strcmp(e->address_type, "IPv6") &&
	    strcmp(e->address_type, "FQDN")) {
		fail(p, wp_ynode_get(root, "addressType"), "addressType",
		     "must be IPv4, IPv6 or FQDN, got %s", e->address_type);
		return;
	}
	eps = get_typed(p, root, "endpoints", WP_YNODE_SEQ, "endpoints");
	if (eps && eps->n) {
		struct wp_eps_endpoint *ep = palloc(p, sizeof(*ep) * eps->n);

		if (!ep)
			return;
		for (const struct wp_ynode *c = eps->child; c && !p->failed; c = c->next, i++) {
			const struct wp_ynode *addrs, *cond, *tr;
			uint32_t j = 0;

			snprintf(f, sizeof(f), "endpoints[%u].addresses", i);
			addrs = get_typed(p, c, "addresses", WP_YNODE_SEQ, f);
			if (!addrs || !addrs->n) {
				fail(p, c, f, "required field missing");
				return;
			}
			if (strcmp(e->address_type, "FQDN")) {
				struct wp_addr *a = palloc(p, sizeof(*a) * addrs->n);

				if (!a)
					return;
				for (const struct wp_ynode *ac = addrs->child; ac;
				     ac = ac->next, j++) {
					snprintf(f, sizeof(f), "endpoints[%u].addresses[%u]", i, j);
					if (!parse_ip(p, ac, f, &a[j]))
						return;
				}
				ep[i].addrs = a;
				ep[i].n_addrs = j;
			}
			snprintf(f, sizeof(f), "endpoints[%u].conditions", i);
			cond = get_typed(p, c, "conditions", WP_YNODE_MAP, f);
			snprintf(f, sizeof(f), "endpoints[%u].conditions.ready", i);
			ep[i].ready = get_bool(p, cond, "ready", f, true);
			snprintf(f, sizeof(f), "endpoints[%u].conditions.serving", i);
			ep[i].serving = get_bool(p, cond, "serving", f, ep[i].ready);
			snprintf(f, sizeof(f), "endpoints[%u].conditions.terminating", i);
			ep[i].terminating = get_bool(p, cond, "terminating", f, false);
			snprintf(f, sizeof(f), "endpoints[%u].nodeName", i);
			ep[i].node_name = get_str(p, c, "nodeName", f, false);
			snprintf(f, sizeof(f), "endpoints[%u].targetRef", i);
			tr = get_typed(p, c, "targetRef", WP_YNODE_MAP, f);
			if (tr) {
				ep[i].target_kind = get_str(p, tr, "kind", f, false);
				ep[i].target_ns = get_str(p, tr, "namespace", f, false);
				ep[i].target_name = get_str(p, tr, "name", f, false);
			}
		}
		e->endpoints = ep;
		e->n_endpoints = i;
	}
	ports = get_typed(p, root, "ports", WP_YNODE_SEQ, "ports");
	if (ports && ports->n) {
		struct wp_eps_port *pp = palloc(p, sizeof(*pp) * ports->n);

		if (!pp)
			return;
		i = 0;
		for (const struct wp_ynode *c = ports->child; c && !p->failed; c = c->next, i++) {
			snprintf(f, sizeof(f), "ports[%u]", i);
			if (c->type != WP_YNODE_MAP) {
				fail(p, c, f, "expected a mapping");
				return;
			}
			pp[i].name = get_str(p, c, "name", f, false);
			if (!pp[i].name)
				pp[i].name = "";
			pp[i].protocol = get_str(p, c, "protocol", f, false);
			pp[i].app_protocol = get_str(p, c, "appProtocol", f, false);
			snprintf(f, sizeof(f), "ports[%u].port", i);
			if (!get_port(p, c, "port", f, false, true, &pp[i].port))
				return;
		}
		e->ports = pp;
		e->n_ports = i;
	}
}

static void get_gw_addrs(struct pctx *p, const struct wp_ynode *map, const char *field,
                         uint32_t *n_out, const struct wp_gw_address **out)
{
	const struct wp_ynode *s = get_typed(p, map, "addresses", WP_YNODE_SEQ, field);
	struct wp_gw_address *a;
	char f[128];
	uint32_t i = 0;

	*n_out = 0;
	if (!s || !s->n)
		return;
	a = palloc(p, sizeof(*a) * s->n);
	if (!a)
		return;
	for (const struct wp_ynode *c = s->child; c && !p->failed; c = c->next, i++) {
		snprintf(f, sizeof(f), "%s[%u]", field, i);
		if (c->type != WP_YNODE_MAP) {
			fail(p, c, f, "expected a mapping");
			return;
		}
		a[i].type = get_str(p, c, "type", f, false);
		if (!a[i].type)
			a[i].type = "IPAddress";
		snprintf(f, sizeof(f), "%s[%u].value", field, i);
		a[i].value = get_str(p, c, "value", f, true);
	}
	*out = a;
	*n_out = i;
}

static void x_gateway(struct pctx *p, const struct wp_ynode *spec, const struct wp_ynode *status)
{
	struct wp_k8s_gateway *g = &p->o->u.gw;
	const struct wp_ynode *ls;
	char f[128];
	uint32_t i = 0;

	if (!spec) {
		fail(p, NULL, "spec", "required field missing");
		return;
	}
	g->class_name = get_str(p, spec, "gatewayClassName", "spec.gatewayClassName", true);
	ls = get_typed(p, spec, "listeners", WP_YNODE_SEQ, "spec.listeners");
	if (!p->failed && (!ls || !ls->n)) {
		fail(p, spec, "spec.listeners", "at least one listener is required");
		return;
	}
	if (p->failed)
		return;
	struct wp_gw_listener *l = palloc(p, sizeof(*l) * ls->n);
	if (!l)
		return;
	for (const struct wp_ynode *c = ls->child; c && !p->failed; c = c->next, i++) {
		const struct wp_ynode *ar, *ns, *sel;

		snprintf(f, sizeof(f), "spec.listeners[%u]", i);
		if (c->type != WP_YNODE_MAP) {
			fail(p, c, f, "expected a mapping");
			return;
		}
		snprintf(f, sizeof(f), "spec.listeners[%u].name", i);
		l[i].name = get_str(p, c, "name", f, true);
		snprintf(f, sizeof(f), "spec.listeners[%u].protocol", i);
		l[i].protocol = get_str(p, c, "protocol", f, true);
		snprintf(f, sizeof(f), "spec.listeners[%u].hostname", i);
		l[i].hostname = get_str(p, c, "hostname", f, false);
		snprintf(f, sizeof(f), "spec.listeners[%u].port", i);
		if (!get_port(p, c, "port", f, true, false, &l[i].port))
			return;
		snprintf(f, sizeof(f), "spec.listeners[%u].allowedRoutes", i);
		ar = get_typed(p, c, "allowedRoutes", WP_YNODE_MAP, f);
		snprintf(f, sizeof(f), "spec.listeners[%u].allowedRoutes.namespaces", i);
		ns = get_typed(p, ar, "namespaces", WP_YNODE_MAP, f);
		if (ns) {
			const char *from;

			l[i].has_allowed_ns = true;
			snprintf(f, sizeof(f), "spec.listeners[%u].allowedRoutes.namespaces.from",
			         i);
			from = get_str(p, ns, "from", f, false);
			if (!from || !strcmp(from, "Same"))
				l[i].from = WP_ROUTES_FROM_SAME;
			else if (!strcmp(from, "All"))
				l[i].from = WP_ROUTES_FROM_ALL;
			else if (!strcmp(from, "Selector"))
				l[i].from = WP_ROUTES_FROM_SELECTOR;
			else {
				fail(p, wp_ynode_get(ns, "from"), f,
				     "must be All, Same or Selector, got %s", from);
				return;
			}
			snprintf(f, sizeof(f),
			         "spec.listeners[%u].allowedRoutes.namespaces.selector", i);
			sel = get_typed(p, ns, "selector", WP_YNODE_MAP, f);
			if (sel) {
				l[i].has_selector = true;
				get_selector(p, sel, f, &l[i].selector);
			}
		}
	}
	g->listeners = l;
	g->n_listeners = i;
	get_gw_addrs(p, spec, "spec.addresses", &g->n_spec_addrs, &g->spec_addrs);
	if (status)
		get_gw_addrs(p, status, "status.addresses", &g->n_status_addrs, &g->status_addrs);
}

static void get_target_refs(struct pctx *p, const struct wp_ynode *spec, struct wp_k8s_authz *a)
{
	const struct wp_ynode *s =
	        get_typed(p, spec, "targetRefs", WP_YNODE_SEQ, "spec.targetRefs");
	const struct wp_ynode *one =
	        get_typed(p, spec, "targetRef", WP_YNODE_MAP, "spec.targetRef");
	uint32_t n = (s ? s->n : 0) + (one ? 1 : 0), i = 0;
	struct wp_target_ref *r;
	char f[96];

	if (!n)
		return;
	r = palloc(p, sizeof(*r) * n);
	if (!r)
		return;
	for (const struct wp_ynode *c = s ? s->child : NULL; c && !p->failed; c = c->next, i++) {
		snprintf(f, sizeof(f), "spec.targetRefs[%u]", i);
		if (c->type != WP_YNODE_MAP) {
			fail(p, c, f, "expected a mapping");
			return;
		}
		r[i].group = get_str(p, c, "group", f, false);
		snprintf(f, sizeof(f), "spec.targetRefs[%u].kind", i);
		r[i].kind = get_str(p, c, "kind", f, true);
		snprintf(f, sizeof(f), "spec.targetRefs[%u].name", i);
		r[i].name = get_str(p, c, "name", f, true);
		r[i].ns = get_str(p, c, "namespace", f, false);
	}
	if (one) {
		r[i].group = get_str(p, one, "group", "spec.targetRef", false);
		r[i].kind = get_str(p, one, "kind", "spec.targetRef.kind", true);
		r[i].name = get_str(p, one, "name", "spec.targetRef.name", true);
		r[i].ns = get_str(p, one, "namespace", "spec.targetRef", false);
		i++;
	}
	a->target_refs = r;
	a->n_target_refs = i;
}

static void x_authz(struct pctx *p, const struct wp_ynode *spec)
{
	struct wp_k8s_authz *a = &p->o->u.authz;

	a->action = spec ? get_str(p, spec, "action", "spec.action", false) : NULL;
	if (!a->action)
		a->action = "ALLOW";
	if (strcmp(a->action, "ALLOW") && strcmp(a->action, "DENY") && strcmp(a->action, "AUDIT") &&
	    strcmp(a->action, "CUSTOM")) {
		fail(p, wp_ynode_get(spec, "action"), "spec.action",
		     "must be ALLOW, DENY, AUDIT or CUSTOM, got %s", a->action);
		return;
	}
	if (spec) {
		get_target_refs(p, spec, a);
		a->has_selector = wp_ynode_get(spec, "selector") != NULL;
	}
	wp_authz_parse(p->o, spec);
}

static void x_httproute(struct pctx *p, const struct wp_ynode *spec)
{
	struct wp_k8s_httproute *r = &p->o->u.route;
	const struct wp_ynode *pr;
	char f[96];
	uint32_t i = 0;

	if (!spec)
		return;
	pr = get_typed(p, spec, "parentRefs", WP_YNODE_SEQ, "spec.parentRefs");
	if (pr && pr->n) {
		struct wp_parent_ref *r2 = palloc(p, sizeof(*r2) * pr->n);

		if (!r2)
			return;
		for (const struct wp_ynode *c = pr->child; c && !p->failed; c = c->next, i++) {
			snprintf(f, sizeof(f), "spec.parentRefs[%u]", i);
			if (c->type != WP_YNODE_MAP) {
				fail(p, c, f, "expected a mapping");
				return;
			}
			r2[i].group = get_str(p, c, "group", f, false);
			r2[i].kind = get_str(p, c, "kind", f, false);
			if (!r2[i].kind)
				r2[i].kind = "Gateway";
			if (!r2[i].group)
				r2[i].group = strcmp(r2[i].kind, "Service")
				                      ? "gateway.networking.k8s.io"
				                      : "";
			r2[i].ns = get_str(p, c, "namespace", f, false);
			if (!r2[i].ns)
				r2[i].ns = p->o->meta.ns;
			r2[i].section_name = get_str(p, c, "sectionName", f, false);
			snprintf(f, sizeof(f), "spec.parentRefs[%u].name", i);
			r2[i].name = get_str(p, c, "name", f, true);
			snprintf(f, sizeof(f), "spec.parentRefs[%u].port", i);
			get_port(p, c, "port", f, false, false, &r2[i].port);
		}
		r->parents = r2;
		r->n_parents = i;
	}
	get_strlist(p, spec, "hostnames", "spec.hostnames", &r->n_hostnames, &r->hostnames);
}

static void x_serviceentry(struct pctx *p, const struct wp_ynode *spec)
{
	struct wp_k8s_serviceentry *se = &p->o->u.se;
	const struct wp_ynode *ports;
	char f[96];
	uint32_t i = 0;

	if (!spec) {
		fail(p, NULL, "spec", "required field missing");
		return;
	}
	get_strlist(p, spec, "hosts", "spec.hosts", &se->n_hosts, &se->hosts);
	if (!p->failed && !se->n_hosts) {
		fail(p, spec, "spec.hosts", "at least one host is required");
		return;
	}
	get_strlist(p, spec, "addresses", "spec.addresses", &se->n_addresses, &se->addresses);
	se->resolution = get_str(p, spec, "resolution", "spec.resolution", false);
	if (!se->resolution)
		se->resolution = "NONE";
	se->location = get_str(p, spec, "location", "spec.location", false);
	if (!se->location)
		se->location = "MESH_EXTERNAL";
	ports = get_typed(p, spec, "ports", WP_YNODE_SEQ, "spec.ports");
	if (ports && ports->n) {
		struct wp_se_port *sp = palloc(p, sizeof(*sp) * ports->n);

		if (!sp)
			return;
		for (const struct wp_ynode *c = ports->child; c && !p->failed; c = c->next, i++) {
			snprintf(f, sizeof(f), "spec.ports[%u]", i);
			if (c->type != WP_YNODE_MAP) {
				fail(p, c, f, "expected a mapping");
				return;
			}
			sp[i].name = get_str(p, c, "name", f, false);
			sp[i].protocol = get_str(p, c, "protocol", f, false);
			snprintf(f, sizeof(f), "spec.ports[%u].number", i);
			if (!get_port(p, c, "number", f, true, false, &sp[i].number))
				return;
			snprintf(f, sizeof(f), "spec.ports[%u].targetPort", i);
			if (!get_port(p, c, "targetPort", f, false, false, &sp[i].target_port))
				return;
		}
		se->ports = sp;
		se->n_ports = i;
	}
}

/*
 * Builds one object from a document's root map. Returns the object, or NULL
 * with p->failed set (message in p->msg, p->o still allocated for naming) or
 * with p->failed clear for a kind we skip.
 */
static struct wp_obj *extract(struct pctx *p, const struct wp_ynode *root, const char *origin)
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
	o->origin = pstr(p, origin);
	o->meta.api_version = pstr(p, apiv);
	meta = get_typed(p, root, "metadata", WP_YNODE_MAP, "metadata");
	if (!meta) {
		if (!p->failed)
			fail(p, root, "metadata", "required field missing");
		return NULL;
	}
	{
		/* name and namespace first so later errors can name the object */
		const struct wp_ynode *nn = wp_ynode_get(meta, "name");
		const struct wp_ynode *ns = wp_ynode_get(meta, "namespace");

		if (nn && nn->type == WP_YNODE_SCALAR && !wp_ynode_is_null(nn))
			o->meta.name = pstr(p, nn->value);
		if (wp_kind_namespaced(k)) {
			if (ns && ns->type == WP_YNODE_SCALAR && !wp_ynode_is_null(ns))
				o->meta.ns = pstr(p, ns->value);
			else
				o->meta.ns = "default"; /* as kubectl apply does */
		} else {
			o->meta.ns = "";
		}
	}
	get_str(p, meta, "name", "metadata.name", true);
	if (!p->failed && !o->meta.name[0])
		fail(p, wp_ynode_get(meta, "name"), "metadata.name", "must not be empty");
	o->meta.uid = get_str(p, meta, "uid", "metadata.uid", false);
	o->meta.resource_version =
	        get_str(p, meta, "resourceVersion", "metadata.resourceVersion", false);
	get_timestamp(p, meta, "creationTimestamp", "metadata.creationTimestamp", &o->meta.created);
	get_labels(p, meta, "labels", "metadata.labels", &o->meta.labels);
	get_labels(p, meta, "annotations", "metadata.annotations", &o->meta.annotations);
	if (p->failed)
		return NULL;
	spec = get_typed(p, root, "spec", WP_YNODE_MAP, "spec");
	status = get_typed(p, root, "status", WP_YNODE_MAP, "status");
	if (p->failed)
		return NULL;
	switch (k) {
	case WP_KIND_NAMESPACE:
		break;
	case WP_KIND_SERVICE:
		x_service(p, spec);
		break;
	case WP_KIND_POD:
		x_pod(p, spec, status, meta);
		break;
	case WP_KIND_ENDPOINTSLICE:
		x_endpointslice(p, root);
		break;
	case WP_KIND_GATEWAY:
		x_gateway(p, spec, status);
		break;
	case WP_KIND_GATEWAYCLASS:
		o->u.gwc.controller_name =
		        get_str(p, spec, "controllerName", "spec.controllerName", true);
		break;
	case WP_KIND_HTTPROUTE:
		x_httproute(p, spec);
		break;
	case WP_KIND_AUTHORIZATIONPOLICY:
		x_authz(p, spec);
		break;
	case WP_KIND_DESTINATIONRULE:
		if (!spec)
			fail(p, NULL, "spec", "required field missing");
		else
			o->u.dr.host = get_str(p, spec, "host", "spec.host", true);
		break;
	case WP_KIND_SERVICEENTRY:
		x_serviceentry(p, spec);
		break;
	default:
		break;
	}
	if (p->failed)
		return NULL;
	if (spec &&
	    (k == WP_KIND_GATEWAY || k == WP_KIND_HTTPROUTE || k == WP_KIND_AUTHORIZATIONPOLICY ||
	     k == WP_KIND_DESTINATIONRULE || k == WP_KIND_SERVICEENTRY)) {
		o->spec = node_copy(&o->arena, spec);
		if (!o->spec) {
			fail(p, spec, "spec", "out of memory");
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

/* ---- documents ------------------------------------------------------------ */

struct run {
	const char *origin;
	wp_model_obj_cb obj_cb;
	wp_model_err_cb err_cb;
	wp_model_doc_cb doc_cb;
	void *ctx;
	int rejected;
	int stop; /* callback's negative return */
};

static void report(struct run *r, struct pctx *p, uint32_t line)
{
	struct wp_model_error e = {
	        .origin = r->origin,
	        .line = line,
	        .kind = p->o ? p->o->kind : WP_KIND_NONE,
	        .ns = p->o ? p->o->meta.ns : NULL,
	        .name = p->o ? p->o->meta.name : NULL,
	        .msg = p->msg,
	};

	r->rejected++;
	if (r->err_cb)
		r->err_cb(r->ctx, &e);
}

static void handle_root(struct run *r, const struct wp_ynode *root)
{
	struct pctx p = {0};
	const struct wp_ynode *kn, *items;
	struct wp_obj *o;

	if (wp_ynode_is_null(root))
		return; /* empty document */
	if (root->type != WP_YNODE_MAP) {
		p.o = NULL;
		snprintf(p.msg, sizeof(p.msg), "%s:%u: document is not a mapping", r->origin,
		         root->line);
		report(r, &p, root->line);
		return;
	}
	kn = wp_ynode_get(root, "kind");
	items = wp_ynode_get(root, "items");
	if (kn && kn->type == WP_YNODE_SCALAR && strlen(kn->value) >= 4 &&
	    !strcmp(kn->value + strlen(kn->value) - 4, "List") && items &&
	    items->type == WP_YNODE_SEQ) {
		for (const struct wp_ynode *c = items->child; c && !r->stop; c = c->next)
			handle_root(r, c);
		return;
	}
	if (r->doc_cb)
		r->doc_cb(r->ctx, r->origin, root);
	o = extract(&p, root, r->origin);
	if (o) {
		int rc = r->obj_cb(r->ctx, o);

		if (rc < 0)
			r->stop = rc;
		return;
	}
	if (p.failed)
		report(r, &p, root->line);
	wp_obj_free(p.o);
}

int wp_model_parse(const char *buf, size_t len, const char *origin, wp_model_obj_cb obj_cb,
                   wp_model_err_cb err_cb, void *ctx)
{
	return wp_model_parse_docs(buf, len, origin, obj_cb, err_cb, NULL, ctx);
}

int wp_model_parse_docs(const char *buf, size_t len, const char *origin, wp_model_obj_cb obj_cb,
                        wp_model_err_cb err_cb, wp_model_doc_cb doc_cb, void *ctx)
{
	struct run r = {
	        .origin = origin, .obj_cb = obj_cb, .err_cb = err_cb, .doc_cb = doc_cb, .ctx = ctx};
	struct wp_ynode *stack[MAX_DEPTH];
	struct wp_ynode *root = NULL;
	const char *pending_key = NULL;
	const char *keys[MAX_DEPTH];
	int depth = 0, rc = 0;
	struct wp_arena doc;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;

	wp_arena_init(&doc, 16384);
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && !r.stop) {
		struct wp_ynode *n = NULL;
		uint32_t line;

		if (!yaml_parser_parse(&parser, &ev)) {
			struct pctx p = {0};

			snprintf(p.msg, sizeof(p.msg), "%s:%zu: YAML syntax error: %s%s%s", origin,
			         parser.problem_mark.line + 1,
			         parser.problem ? parser.problem : "unknown",
			         parser.context ? " " : "", parser.context ? parser.context : "");
			report(&r, &p, (uint32_t)parser.problem_mark.line + 1);
			rc = -EBADMSG;
			break;
		}
		line = (uint32_t)ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			root = NULL;
			depth = 0;
			pending_key = NULL;
			wp_arena_free(&doc);
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (root)
				handle_root(&r, root);
			root = NULL;
			wp_arena_free(&doc);
			break;
		case YAML_ALIAS_EVENT: {
			struct pctx p = {0};

			snprintf(p.msg, sizeof(p.msg), "%s:%u: YAML aliases are not supported",
			         origin, line);
			report(&r, &p, line);
			rc = -EBADMSG;
			done = true;
			break;
		}
		case YAML_SCALAR_EVENT:
			/* a scalar in a map with no pending key is a key */
			if (depth > 0 && stack[depth - 1]->type == WP_YNODE_MAP && !pending_key) {
				pending_key =
				        wp_arena_strndup(&doc, (const char *)ev.data.scalar.value,
				                         ev.data.scalar.length);
				if (!pending_key)
					rc = -ENOMEM;
				break;
			}
			n = node_new(&doc, WP_YNODE_SCALAR, line);
			if (n) {
				n->value =
				        wp_arena_strndup(&doc, (const char *)ev.data.scalar.value,
				                         ev.data.scalar.length);
				n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			}
			if (!n || !n->value)
				rc = -ENOMEM;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth > 0 && stack[depth - 1]->type == WP_YNODE_MAP && !pending_key) {
				struct pctx p = {0};

				snprintf(p.msg, sizeof(p.msg),
				         "%s:%u: complex mapping keys are not supported", origin,
				         line);
				report(&r, &p, line);
				rc = -EBADMSG;
				done = true;
				break;
			}
			n = node_new(&doc,
			             ev.type == YAML_MAPPING_START_EVENT ? WP_YNODE_MAP
			                                                 : WP_YNODE_SEQ,
			             line);
			if (!n)
				rc = -ENOMEM;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			pending_key = keys[depth];
			n = stack[depth];
			/* re-attach below with its key, as a finished node */
			if (depth == 0) {
				root = n;
				n = NULL;
			} else {
				struct wp_ynode *parent = stack[depth - 1];

				n->key = pending_key;
				node_add(parent, n);
				pending_key = NULL;
				n = NULL;
			}
			break;
		default:
			break;
		}
		if (rc == -ENOMEM) {
			yaml_event_delete(&ev);
			break;
		}
		if (n) {
			if (n->type == WP_YNODE_SCALAR) {
				if (depth == 0) {
					root = n;
				} else {
					n->key = pending_key;
					node_add(stack[depth - 1], n);
					pending_key = NULL;
				}
			} else {
				if (depth >= MAX_DEPTH) {
					struct pctx p = {0};

					snprintf(p.msg, sizeof(p.msg),
					         "%s:%u: nesting deeper than %d levels", origin,
					         line, MAX_DEPTH);
					report(&r, &p, line);
					rc = -EBADMSG;
					done = true;
				} else {
					keys[depth] = pending_key;
					pending_key = NULL;
					stack[depth++] = n;
				}
			}
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	wp_arena_free(&doc);
	if (r.stop)
		return r.stop;
	if (rc)
		return rc;
	return r.rejected;
}

struct one {
	struct wp_obj *obj;
	int count;
	char *err;
	size_t errlen;
};

static int one_obj(void *ctx, struct wp_obj *o)
{
	struct one *x = ctx;

	if (x->obj) {
		wp_obj_free(o);
		x->count++;
		return 0;
	}
	x->obj = o;
	x->count++;
	return 0;
}

static void one_err(void *ctx, const struct wp_model_error *e)
{
	struct one *x = ctx;

	if (x->err && x->errlen && !x->err[0])
		snprintf(x->err, x->errlen, "%s", e->msg);
}

struct wp_obj *wp_model_parse_one(const char *buf, size_t len, const char *origin, char *err,
                                  size_t errlen)
{
	struct one x = {.err = err, .errlen = errlen};
	int rc;

	if (err && errlen)
		err[0] = '\0';
	rc = wp_model_parse(buf, len, origin, one_obj, one_err, &x);
	if (rc != 0 || x.count > 1) {
		if (x.count > 1 && err && errlen && !err[0])
			snprintf(err, errlen, "%s: expected one object, found %d", origin, x.count);
		wp_obj_free(x.obj);
		return NULL;
	}
	return x.obj;
}

/* ---- labels --------------------------------------------------------------- */

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
