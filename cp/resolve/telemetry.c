/*
 * Telemetry resources (telemetry.istio.io) for each served waypoint Gateway:
 * which apply, how they merge, and what the snapshot's wp_snap_telemetry
 * becomes (access log, tracing, sampling), with the views' account of it
 * (wp_snap_tel_info). Called by snap_build.c for every snapshot.
 *
 * Which apply, as istiod computes it for a waypoint proxy:
 *   1. the oldest Telemetry of the root namespace (cluster.root_namespace)
 *      with neither a selector (non-empty matchLabels) nor targetRefs;
 *   2. the oldest such Telemetry of the Gateway's namespace (when it is not
 *      the root namespace);
 *   3. every Telemetry of the Gateway's namespace whose targetRefs (or
 *      targetRef when targetRefs is empty) name this Gateway (group
 *      gateway.networking.k8s.io, kind Gateway, no other namespace), oldest
 *      first. A selector never attaches to a waypoint.
 * "Oldest" is creationTimestamp, then name. Later levels override earlier.
 *
 * Merging follows istiod's (pilot/pkg/model/telemetry.go) for the server
 * side, which is how a waypoint's listeners are built: accessLogging
 * entries with match.mode CLIENT are left out; the providers in scope are
 * those the last level naming any provider names; an entry without
 * providers inherits the previous entry's; each entry then sets its
 * providers on (or off with disabled: true). waypointd has one provider,
 * Istio's built-in `envoy` (the text format, to the configured
 * access_log.file or else stdout). The result: `envoy` on -> ON, off ->
 * OFF, absent -> UNSET (as istiod falls back to meshConfig.accessLogFile,
 * the configuration decides). Tracing entries apply in order: the first
 * provider named, disableSpanReporting and randomSamplingPercentage each
 * override; with a provider tracing is ON (OFF when disabled); without one
 * the configuration decides unless disableSpanReporting is true.
 *
 * Not applied, reported "ORIGIN:LINE: Telemetry NS/NAME: FIELD: ..." in the
 * Gateway's view and counted (CP_TELEMETRY_NOT_APPLIED, when the set of
 * Telemetries or Gateways changed): an accessLogging entry with a filter
 * (CEL is not evaluated, so the entry is left out rather than logging more
 * than asked), a provider other than envoy, metrics overrides, tracing
 * fields without effect, targetRefs to Services or other kinds, namespace-
 * wide Telemetries shadowed by an older one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "resolver_int.h"
#include "wp/snapshot.h"

#define GW_GROUP   "gateway.networking.k8s.io"
#define MAX_LEVELS 64 /* applied Telemetries per Gateway; more are reported */

struct tctx {
	struct wp_arena *a;
	const char **notes;
	uint32_t n_notes, cap_notes;
	struct wp_snap_tel_ref *ign;
	uint32_t n_ign, cap_ign;
	bool oom;
};

static void note(struct tctx *c, const struct wp_obj *o, uint32_t line, const char *field,
                 const char *why)
{
	const char *m;

	if (c->n_notes == c->cap_notes) {
		uint32_t cap = c->cap_notes ? c->cap_notes * 2 : 8;
		const char **v = realloc(c->notes, sizeof(*v) * cap);

		if (!v) {
			c->oom = true;
			return;
		}
		c->notes = v;
		c->cap_notes = cap;
	}
	m = wp_arena_sprintf(c->a, "%s:%u: Telemetry %s/%s: %s: not applied: %s",
	                     o->origin ? o->origin : "?", line ? line : o->line, o->meta.ns,
	                     o->meta.name, field, why);
	if (!m) {
		c->oom = true;
		return;
	}
	c->notes[c->n_notes++] = m;
}

static void ignore(struct tctx *c, const struct wp_obj *o, const char *why)
{
	if (c->n_ign == c->cap_ign) {
		uint32_t cap = c->cap_ign ? c->cap_ign * 2 : 8;
		struct wp_snap_tel_ref *v = realloc(c->ign, sizeof(*v) * cap);

		if (!v) {
			c->oom = true;
			return;
		}
		c->ign = v;
		c->cap_ign = cap;
	}
	c->ign[c->n_ign++] = (struct wp_snap_tel_ref){o->meta.ns, o->meta.name, why};
}

/*
 * Copies the names of refs into the snapshot's arena. The Telemetry objects
 * belong to the resolver, which frees one as soon as it is deleted or
 * replaced, while the published snapshot stays readable (/config_dump,
 * wpctl) until the next build is published; the reasons are literals.
 */
static int copy_refs(struct tctx *c, struct wp_snap_tel_ref *v, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		v[i].ns = wp_arena_strdup(c->a, v[i].ns);
		v[i].name = wp_arena_strdup(c->a, v[i].name);
		if (!v[i].ns || !v[i].name) {
			c->oom = true;
			return -ENOMEM;
		}
	}
	return 0;
}

static int by_age(const void *pa, const void *pb)
{
	const struct wp_obj *a = *(const struct wp_obj *const *)pa;
	const struct wp_obj *b = *(const struct wp_obj *const *)pb;
	int c;

	if (a->meta.created != b->meta.created)
		return a->meta.created < b->meta.created ? -1 : 1;
	c = strcmp(a->meta.name, b->meta.name);
	return c ? c : strcmp(a->meta.ns, b->meta.ns);
}

static bool ns_wide(const struct wp_obj *o)
{
	return !o->u.tel.has_selector && !o->u.tel.n_target_refs;
}

/* Whether o's targetRefs name Gateway ns/name; reports the refs that
 * cannot attach to a waypoint's whole traffic. */
static bool targets(struct tctx *c, const struct wp_obj *o, const char *ns, const char *name)
{
	const struct wp_k8s_telemetry *t = &o->u.tel;
	bool hit = false;

	for (uint32_t i = 0; i < t->n_target_refs; i++) {
		const struct wp_target_ref *r = &t->target_refs[i];
		bool gw = !strcmp(r->kind, "Gateway") && r->group && !strcmp(r->group, GW_GROUP);

		if (gw) {
			if (!strcmp(r->name, name) && (!r->ns || !r->ns[0] || !strcmp(r->ns, ns)))
				hit = true;
		} else if (!strcmp(r->kind, "Service") || !strcmp(r->kind, "ServiceEntry")) {
			note(c, o, t->target_ref_lines[i], "spec.targetRefs",
			     "a Telemetry for one Service's traffic through the waypoint is not "
			     "supported (target the waypoint Gateway)");
		} else if (strcmp(r->kind, "Gateway")) {
			note(c, o, t->target_ref_lines[i], "spec.targetRefs",
			     "only a gateway.networking.k8s.io Gateway (the waypoint) can be "
			     "targeted");
		}
	}
	return hit;
}

/* One provider's state in the access-log merge. */
struct prov {
	const char *name;
	bool in_scope, set, disabled;
	const struct wp_obj *o;
	uint32_t line;
};

static struct prov *prov_get(struct prov *v, uint32_t *n, const char *name)
{
	for (uint32_t i = 0; i < *n; i++)
		if (!strcmp(v[i].name, name))
			return &v[i];
	v[*n] = (struct prov){.name = name};
	return &v[(*n)++];
}

static bool server_side(uint8_t mode)
{
	return mode != WP_TEL_MODE_CLIENT;
}

/* An accessLogging entry that takes part in the merge (reports the parts
 * that keep it out). */
static bool log_usable(struct tctx *c, const struct wp_obj *o, uint32_t i, bool report)
{
	const struct wp_tel_log *l = &o->u.tel.logs[i];

	if (l->filter) {
		if (report)
			note(c, o, l->filter_line, "spec.accessLogging.filter",
			     "CEL filter expressions are not evaluated; the entry is left out");
		return false;
	}
	return true;
}

static uint8_t merge_logs(struct tctx *c, const struct wp_obj *const *lv, uint32_t n_lv)
{
	uint32_t n_prov = 0, cap = 0;
	struct prov *pv;
	const char *const *parent = NULL;
	uint32_t n_parent = 0;
	uint8_t res = WP_TEL_UNSET;
	int last_naming = -1;

	for (uint32_t k = 0; k < n_lv; k++)
		for (uint32_t i = 0; i < lv[k]->u.tel.n_logs; i++) {
			cap += lv[k]->u.tel.logs[i].n_providers;
			log_usable(c, lv[k], i, true);
		}
	pv = calloc(cap + 1, sizeof(*pv));
	if (!pv) {
		c->oom = true;
		return WP_TEL_UNSET;
	}
	/* the providers in scope: those of the last level naming any */
	for (uint32_t k = 0; k < n_lv; k++)
		for (uint32_t i = 0; i < lv[k]->u.tel.n_logs; i++) {
			const struct wp_tel_log *l = &lv[k]->u.tel.logs[i];

			if (log_usable(c, lv[k], i, false) && server_side(l->mode) &&
			    l->n_providers)
				last_naming = (int)k;
		}
	for (uint32_t i = 0; last_naming >= 0 && i < lv[last_naming]->u.tel.n_logs; i++) {
		const struct wp_tel_log *l = &lv[last_naming]->u.tel.logs[i];

		if (!log_usable(c, lv[last_naming], i, false) || !server_side(l->mode))
			continue;
		for (uint32_t p = 0; p < l->n_providers; p++)
			prov_get(pv, &n_prov, l->providers[p])->in_scope = true;
	}
	for (uint32_t k = 0; k < n_lv; k++)
		for (uint32_t i = 0; i < lv[k]->u.tel.n_logs; i++) {
			const struct wp_tel_log *l = &lv[k]->u.tel.logs[i];
			const char *const *names = l->n_providers ? l->providers : parent;
			uint32_t nn = l->n_providers ? l->n_providers : n_parent;

			if (!log_usable(c, lv[k], i, false))
				continue;
			parent = names;
			n_parent = nn;
			if (!server_side(l->mode))
				continue;
			for (uint32_t p = 0; p < nn; p++) {
				struct prov *x = prov_get(pv, &n_prov, names[p]);

				if (!x->in_scope)
					continue;
				x->set = true;
				x->disabled = l->disabled;
				x->o = lv[k];
				x->line = l->n_providers ? l->provider_lines[p] : l->line;
			}
		}
	for (uint32_t p = 0; p < n_prov; p++) {
		if (!pv[p].set)
			continue;
		if (!strcmp(pv[p].name, "envoy")) {
			res = pv[p].disabled ? WP_TEL_OFF : WP_TEL_ON;
		} else if (!pv[p].disabled) {
			char why[192];

			snprintf(why, sizeof(why),
			         "provider %s is not defined (waypointd has Istio's built-in envoy "
			         "provider only)",
			         pv[p].name);
			note(c, pv[p].o, pv[p].line, "spec.accessLogging.providers", why);
		}
	}
	free(pv);
	return res;
}

static void merge_tracing(struct tctx *c, const struct wp_obj *const *lv, uint32_t n_lv,
                          struct wp_snap_telemetry *out, const char **provider)
{
	int8_t disabled = -1;

	*provider = NULL;
	out->sampling_ppm = -1;
	for (uint32_t k = 0; k < n_lv; k++)
		for (uint32_t i = 0; i < lv[k]->u.tel.n_traces; i++) {
			const struct wp_tel_trace *t = &lv[k]->u.tel.traces[i];

			if (t->unsupported)
				note(c, lv[k], t->unsupported_line, t->unsupported,
				     "no effect in waypointd's tracing");
			if (!server_side(t->mode))
				continue;
			if (t->n_providers)
				*provider = t->providers[0];
			if (t->disable_span_reporting >= 0)
				disabled = t->disable_span_reporting;
			if (t->sampling_ppm >= 0)
				out->sampling_ppm = t->sampling_ppm;
		}
	if (disabled == 1)
		out->tracing = WP_TEL_OFF;
	else
		out->tracing = *provider ? WP_TEL_ON : WP_TEL_UNSET;
}

/* One Gateway: fills *out and *info (NULL when no Telemetry is in scope). */
static void resolve_gw(struct tctx *c, const struct wp_obj *const *tv, uint32_t n, const char *root,
                       const struct wp_obj *gw, struct wp_snap_telemetry *out,
                       const struct wp_snap_tel_info **info_out)
{
	const char *gns = gw->meta.ns;
	const struct wp_obj *lv[MAX_LEVELS];
	const char *lwhy[MAX_LEVELS];
	const struct wp_obj *root_tel = NULL, *ns_tel = NULL;
	uint32_t n_lv = 0, notes0 = c->n_notes, ign0 = c->n_ign;
	bool any = false;
	struct wp_snap_tel_info *info;
	const char *tprov;

	*out = (struct wp_snap_telemetry){.sampling_ppm = -1};
	*info_out = NULL;
	for (uint32_t i = 0; i < n; i++) {
		const struct wp_obj *o = tv[i];
		bool in_root = root && root[0] && !strcmp(o->meta.ns, root);
		bool in_ns = !strcmp(o->meta.ns, gns);

		if (!in_root && !in_ns)
			continue;
		any = true;
		if (ns_wide(o)) {
			const struct wp_obj **slot = in_root ? &root_tel : &ns_tel;

			if (!*slot)
				*slot = o;
			else
				note(c, o, o->line, "metadata.name",
				     "an older namespace-wide Telemetry applies in this namespace "
				     "(Istio uses one per namespace)");
			continue;
		}
		if (!in_ns) {
			ignore(c, o,
			       "selector / targetRefs in the root namespace: they attach to its "
			       "own "
			       "workloads and Gateways only");
			continue;
		}
		if (!o->u.tel.n_target_refs) {
			ignore(c, o,
			       "selector: chooses workload pods; a waypoint is chosen by "
			       "targetRefs");
			continue;
		}
		if (!targets(c, o, gns, gw->meta.name)) {
			ignore(c, o, "targetRefs: does not name this Gateway");
			continue;
		}
	}
	if (!any)
		return;
	if (root_tel) {
		lv[n_lv] = root_tel;
		lwhy[n_lv++] = "root namespace";
	}
	if (ns_tel && ns_tel != root_tel) {
		lv[n_lv] = ns_tel;
		lwhy[n_lv++] = "namespace";
	}
	for (uint32_t i = 0; i < n; i++) {
		const struct wp_obj *o = tv[i];

		if (strcmp(o->meta.ns, gns) || ns_wide(o) || !o->u.tel.n_target_refs)
			continue;
		{
			/* targets() again without reporting twice */
			uint32_t save = c->n_notes;
			bool hit = targets(c, o, gns, gw->meta.name);

			c->n_notes = save;
			if (!hit)
				continue;
		}
		if (n_lv == MAX_LEVELS) {
			note(c, o, o->line, "spec.targetRefs",
			     "too many Telemetries target this Gateway");
			continue;
		}
		lv[n_lv] = o;
		lwhy[n_lv++] = "targetRefs";
	}
	for (uint32_t k = 0; k < n_lv; k++)
		if (lv[k]->u.tel.metrics_line)
			note(c, lv[k], lv[k]->u.tel.metrics_line, "spec.metrics",
			     "metrics overrides are not supported (Istio's standard metrics are "
			     "always reported)");
	for (uint32_t k = 0; k < n_lv; k++)
		if (lv[k]->u.tel.n_logs) {
			out->access_log = merge_logs(c, lv, n_lv);
			break;
		}
	merge_tracing(c, lv, n_lv, out, &tprov);
	info = wp_arena_alloc(c->a, sizeof(*info));
	if (!info) {
		c->oom = true;
		return;
	}
	if (n_lv) {
		struct wp_snap_tel_ref *ap = wp_arena_alloc(c->a, sizeof(*ap) * n_lv);

		if (!ap) {
			c->oom = true;
			return;
		}
		for (uint32_t k = 0; k < n_lv; k++)
			ap[k] = (struct wp_snap_tel_ref){lv[k]->meta.ns, lv[k]->meta.name, lwhy[k]};
		if (copy_refs(c, ap, n_lv) != 0)
			return;
		info->applied = ap;
		info->n_applied = n_lv;
	}
	if (c->n_ign > ign0) {
		struct wp_snap_tel_ref *ig = wp_arena_alloc(c->a, sizeof(*ig) * (c->n_ign - ign0));

		if (!ig) {
			c->oom = true;
			return;
		}
		memcpy(ig, c->ign + ign0, sizeof(*ig) * (c->n_ign - ign0));
		if (copy_refs(c, ig, c->n_ign - ign0) != 0)
			return;
		info->ignored = ig;
		info->n_ignored = c->n_ign - ign0;
	}
	if (c->n_notes > notes0) {
		const char **nv = wp_arena_alloc(c->a, sizeof(*nv) * (c->n_notes - notes0));

		if (!nv) {
			c->oom = true;
			return;
		}
		memcpy(nv, c->notes + notes0, sizeof(*nv) * (c->n_notes - notes0));
		info->not_applied = nv;
		info->n_not_applied = c->n_notes - notes0;
	}
	info->tracing_provider = tprov ? wp_arena_strdup(c->a, tprov) : NULL;
	if (tprov && !info->tracing_provider) {
		c->oom = true;
		return;
	}
	*info_out = info;
}

int wp_resolver_telemetry(struct wp_resolver *r, struct wp_arena *a, struct wp_snap_gateway *gws,
                          uint32_t n_gws, uint64_t *not_applied)
{
	size_t n = r->objs[WP_KIND_TELEMETRY].n, k = 0;
	const struct wp_obj **tv;
	struct tctx c = {.a = a};

	*not_applied = 0;
	if (!n) {
		for (uint32_t i = 0; i < n_gws; i++) {
			gws[i].telemetry = (struct wp_snap_telemetry){.sampling_ppm = -1};
			gws[i].telemetry_info = NULL;
		}
		return 0;
	}
	tv = malloc(sizeof(*tv) * n);
	if (!tv)
		return -ENOMEM;
	hmap_foreach(&r->objs[WP_KIND_TELEMETRY], e)
	{
		tv[k++] = wp_container_of(e, struct rnode, h)->obj;
	}
	qsort(tv, k, sizeof(*tv), by_age);
	for (uint32_t i = 0; i < n_gws && !c.oom; i++)
		resolve_gw(&c, tv, (uint32_t)k, r->cfg_root ? r->cfg_root : "istio-system",
		           r->served_gw[i]->gw, &gws[i].telemetry, &gws[i].telemetry_info);
	/* a part shows under every Gateway it concerns: count it once */
	for (uint32_t i = 0; i < c.n_notes; i++) {
		bool dup = false;

		for (uint32_t j = 0; j < i && !dup; j++)
			dup = !strcmp(c.notes[i], c.notes[j]);
		*not_applied += !dup;
	}
	free(c.notes);
	free(c.ign);
	free(tv);
	return c.oom ? -ENOMEM : 0;
}
