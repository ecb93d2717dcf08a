/*
 * telemetry.istio.io Telemetry (v1 and v1alpha1 share one schema) as typed
 * structs (wp/model_types.h): where it attaches (selector, targetRef,
 * targetRefs), its accessLogging and tracing entries, and where its metrics
 * overrides are. What the waypoint makes of them (which Telemetries apply to
 * a Gateway, how levels merge, what is not applied) is cp/resolve/telemetry.c.
 *
 * A field of the wrong type, an unknown key or a value out of its range
 * rejects the object with "ORIGIN:LINE: Telemetry NS/NAME: FIELD: problem"
 * (wp_model_fail), as for the other kinds. Fields Istio defines but the
 * waypoint gives no effect (tracing customTags, useRequestIdForTraceSampling,
 * enableIstioTags, metrics) are kept with their lines so the resolver can
 * report them as not applied.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse_int.h"

/* Fails on the first key of map m not in the NULL-terminated list ok. */
static bool known_keys(struct pctx *p, const struct wp_ynode *m, const char *field,
                       const char *const *ok)
{
	for (const struct wp_ynode *c = m->child; c; c = c->next) {
		size_t i;

		for (i = 0; ok[i] && strcmp(ok[i], c->key); i++)
			;
		if (!ok[i]) {
			char f[256];

			snprintf(f, sizeof(f), "%s.%s", field, c->key);
			wp_model_fail(p, c, f, "unknown field");
			return false;
		}
	}
	return true;
}

/* providers: [{name: ...}, ...] into names (and their lines). */
static void get_providers(struct pctx *p, const struct wp_ynode *e, const char *field,
                          uint32_t *n_out, const char *const **names, const uint32_t **lines)
{
	static const char *const keys[] = {"name", NULL};
	const struct wp_ynode *s = wp_model_get_typed(p, e, "providers", WP_YNODE_SEQ, field);
	const char **v;
	uint32_t *ln, i = 0;
	char f[160];

	*n_out = 0;
	if (!s || !s->n)
		return;
	v = wp_model_palloc(p, sizeof(*v) * s->n);
	ln = wp_model_palloc(p, sizeof(*ln) * s->n);
	if (!v || !ln)
		return;
	for (const struct wp_ynode *c = s->child; c && !p->failed; c = c->next, i++) {
		snprintf(f, sizeof(f), "%s[%u]", field, i);
		if (c->type != WP_YNODE_MAP) {
			wp_model_fail(p, c, f, "expected a mapping with a name");
			return;
		}
		if (!known_keys(p, c, f, keys))
			return;
		snprintf(f, sizeof(f), "%s[%u].name", field, i);
		v[i] = wp_model_get_str(p, c, "name", f, true);
		ln[i] = c->line;
	}
	*n_out = i;
	*names = v;
	if (lines)
		*lines = ln;
}

/* match: {mode: CLIENT | SERVER | CLIENT_AND_SERVER}; absent: both. */
static uint8_t get_mode(struct pctx *p, const struct wp_ynode *e, const char *field)
{
	static const char *const keys[] = {"mode", NULL};
	char f[160];
	const struct wp_ynode *m;
	const char *mode;

	snprintf(f, sizeof(f), "%s.match", field);
	m = wp_model_get_typed(p, e, "match", WP_YNODE_MAP, f);
	if (!m || !known_keys(p, m, f, keys))
		return WP_TEL_MODE_CLIENT_AND_SERVER;
	snprintf(f, sizeof(f), "%s.match.mode", field);
	mode = wp_model_get_str(p, m, "mode", f, false);
	if (!mode || !strcmp(mode, "CLIENT_AND_SERVER"))
		return WP_TEL_MODE_CLIENT_AND_SERVER;
	if (!strcmp(mode, "CLIENT"))
		return WP_TEL_MODE_CLIENT;
	if (!strcmp(mode, "SERVER"))
		return WP_TEL_MODE_SERVER;
	wp_model_fail(p, wp_ynode_get(m, "mode"), f,
	              "must be CLIENT, SERVER or CLIENT_AND_SERVER, got %s", mode);
	return WP_TEL_MODE_CLIENT_AND_SERVER;
}

static void get_log(struct pctx *p, const struct wp_ynode *e, uint32_t i, struct wp_tel_log *l)
{
	static const char *const keys[] = {"match", "providers", "disabled", "filter", NULL};
	static const char *const fkeys[] = {"expression", NULL};
	const struct wp_ynode *flt;
	char f[96], ff[128];

	snprintf(f, sizeof(f), "spec.accessLogging[%u]", i);
	l->line = e->line;
	if (e->type != WP_YNODE_MAP) {
		wp_model_fail(p, e, f, "expected a mapping");
		return;
	}
	if (!known_keys(p, e, f, keys))
		return;
	snprintf(ff, sizeof(ff), "%s.providers", f);
	get_providers(p, e, ff, &l->n_providers, &l->providers, &l->provider_lines);
	l->mode = get_mode(p, e, f);
	snprintf(ff, sizeof(ff), "%s.disabled", f);
	l->disabled = wp_model_get_bool(p, e, "disabled", ff, false);
	snprintf(ff, sizeof(ff), "%s.filter", f);
	flt = wp_model_get_typed(p, e, "filter", WP_YNODE_MAP, ff);
	if (flt && known_keys(p, flt, ff, fkeys)) {
		snprintf(ff, sizeof(ff), "%s.filter.expression", f);
		l->filter = wp_model_get_str(p, flt, "expression", ff, false);
		l->filter_line = flt->line;
	}
}

/* randomSamplingPercentage: a number in 0..100 (a double in Istio) as
 * millionths. */
static int32_t get_sampling(struct pctx *p, const struct wp_ynode *e, const char *field)
{
	const struct wp_ynode *n = wp_ynode_get(e, "randomSamplingPercentage");
	char *end;
	double v;

	if (wp_ynode_is_null(n))
		return -1;
	if (n->type != WP_YNODE_SCALAR || !n->plain)
		goto bad;
	v = strtod(n->value, &end);
	if (end == n->value || *end || !isfinite(v) || v < 0 || v > 100)
		goto bad;
	return (int32_t)lround(v * 10000.0);
bad:
	wp_model_fail(p, n, field, "expected a number in 0..100, got %s",
	              n->type == WP_YNODE_SCALAR ? n->value : "a collection");
	return -1;
}

static void get_trace(struct pctx *p, const struct wp_ynode *e, uint32_t i, struct wp_tel_trace *t)
{
	static const char *const keys[] = {"match",
	                                   "providers",
	                                   "customTags",
	                                   "disableSpanReporting",
	                                   "randomSamplingPercentage",
	                                   "useRequestIdForTraceSampling",
	                                   "enableIstioTags",
	                                   NULL};
	static const char *const no_effect[] = {"customTags", "useRequestIdForTraceSampling",
	                                        "enableIstioTags"};
	char f[96], ff[128];

	snprintf(f, sizeof(f), "spec.tracing[%u]", i);
	t->line = e->line;
	t->disable_span_reporting = -1;
	t->sampling_ppm = -1;
	if (e->type != WP_YNODE_MAP) {
		wp_model_fail(p, e, f, "expected a mapping");
		return;
	}
	if (!known_keys(p, e, f, keys))
		return;
	snprintf(ff, sizeof(ff), "%s.providers", f);
	get_providers(p, e, ff, &t->n_providers, &t->providers, NULL);
	t->mode = get_mode(p, e, f);
	if (!wp_ynode_is_null(wp_ynode_get(e, "disableSpanReporting"))) {
		snprintf(ff, sizeof(ff), "%s.disableSpanReporting", f);
		t->disable_span_reporting =
		        wp_model_get_bool(p, e, "disableSpanReporting", ff, false);
	}
	snprintf(ff, sizeof(ff), "%s.randomSamplingPercentage", f);
	t->sampling_ppm = get_sampling(p, e, ff);
	for (size_t k = 0; k < WP_ARRAY_SIZE(no_effect) && !t->unsupported; k++) {
		const struct wp_ynode *n = wp_ynode_get(e, no_effect[k]);

		if (!wp_ynode_is_null(n)) {
			snprintf(ff, sizeof(ff), "%s.%s", f, no_effect[k]);
			t->unsupported = wp_model_pstr(p, ff);
			t->unsupported_line = n->line;
		}
	}
}

static void get_target_refs(struct pctx *p, const struct wp_ynode *spec, struct wp_k8s_telemetry *t)
{
	static const char *const keys[] = {"group", "kind", "name", "namespace", NULL};
	const struct wp_ynode *s =
	        wp_model_get_typed(p, spec, "targetRefs", WP_YNODE_SEQ, "spec.targetRefs");
	const struct wp_ynode *one =
	        wp_model_get_typed(p, spec, "targetRef", WP_YNODE_MAP, "spec.targetRef");
	/* as Istio reads them: targetRefs, else the single targetRef */
	const struct wp_ynode *first = s && s->n ? s->child : one;
	uint32_t n = s && s->n ? s->n : one ? 1 : 0, i = 0;
	struct wp_target_ref *r;
	uint32_t *ln;
	char f[96], ff[128];

	if (!n)
		return;
	r = wp_model_palloc(p, sizeof(*r) * n);
	ln = wp_model_palloc(p, sizeof(*ln) * n);
	if (!r || !ln)
		return;
	for (const struct wp_ynode *c = first; c && i < n && !p->failed; c = c->next, i++) {
		if (c == one)
			snprintf(f, sizeof(f), "spec.targetRef");
		else
			snprintf(f, sizeof(f), "spec.targetRefs[%u]", i);
		if (c->type != WP_YNODE_MAP) {
			wp_model_fail(p, c, f, "expected a mapping");
			return;
		}
		if (!known_keys(p, c, f, keys))
			return;
		snprintf(ff, sizeof(ff), "%s.group", f);
		r[i].group = wp_model_get_str(p, c, "group", ff, false);
		snprintf(ff, sizeof(ff), "%s.kind", f);
		r[i].kind = wp_model_get_str(p, c, "kind", ff, true);
		snprintf(ff, sizeof(ff), "%s.name", f);
		r[i].name = wp_model_get_str(p, c, "name", ff, true);
		snprintf(ff, sizeof(ff), "%s.namespace", f);
		r[i].ns = wp_model_get_str(p, c, "namespace", ff, false);
		ln[i] = c->line;
	}
	t->target_refs = r;
	t->target_ref_lines = ln;
	t->n_target_refs = i;
}

void wp_model_read_telemetry(struct pctx *p, const struct wp_ynode *spec)
{
	static const char *const keys[] = {"selector", "targetRef", "targetRefs", "accessLogging",
	                                   "tracing",  "metrics",   NULL};
	struct wp_k8s_telemetry *t = &p->o->u.tel;
	const struct wp_ynode *sel, *logs, *traces, *metrics;
	uint32_t i = 0;

	if (!spec)
		return; /* an empty Telemetry: nothing to apply */
	if (!known_keys(p, spec, "spec", keys))
		return;
	sel = wp_model_get_typed(p, spec, "selector", WP_YNODE_MAP, "spec.selector");
	if (sel) {
		struct wp_labels ml;

		wp_model_get_labels(p, sel, "matchLabels", "spec.selector.matchLabels", &ml);
		t->has_selector = ml.n > 0;
		t->selector_line = sel->line;
	}
	get_target_refs(p, spec, t);
	logs = wp_model_get_typed(p, spec, "accessLogging", WP_YNODE_SEQ, "spec.accessLogging");
	traces = wp_model_get_typed(p, spec, "tracing", WP_YNODE_SEQ, "spec.tracing");
	metrics = wp_model_get_typed(p, spec, "metrics", WP_YNODE_SEQ, "spec.metrics");
	if (p->failed)
		return;
	if (metrics && metrics->n)
		t->metrics_line = metrics->line;
	if (logs && logs->n) {
		struct wp_tel_log *l = wp_model_palloc(p, sizeof(*l) * logs->n);

		if (!l)
			return;
		for (const struct wp_ynode *c = logs->child; c && !p->failed; c = c->next, i++)
			get_log(p, c, i, &l[i]);
		t->logs = l;
		t->n_logs = i;
	}
	i = 0;
	if (traces && traces->n) {
		struct wp_tel_trace *tr = wp_model_palloc(p, sizeof(*tr) * traces->n);

		if (!tr)
			return;
		for (const struct wp_ynode *c = traces->child; c && !p->failed; c = c->next, i++)
			get_trace(p, c, i, &tr[i]);
		t->traces = tr;
		t->n_traces = i;
	}
}
