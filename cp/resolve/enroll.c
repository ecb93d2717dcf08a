/*
 * Enrollment: which waypoint, if any, each Service and Pod uses, decided as
 * istiod decides it. A Gateway is a waypoint for "service", "workload" or
 * "all" traffic (istio.io/waypoint-for on it, else on its GatewayClass,
 * else service); an object names its waypoint with istio.io/use-waypoint
 * (and -namespace), or inherits its namespace's label; the binding holds
 * only when that Gateway is ready, its HBONE listener's allowedRoutes admit
 * the object's namespace, and it takes the object's traffic type. Each
 * outcome carries istiod's reason and a message saying why, which
 * wp_resolver_enrollment() lists (/enrollment, wpctl enrollment).
 *
 * Part of the resolver (resolver_int.h): the store calls these when it
 * drains its dirty lists; snap_build.c builds blocks for what is bound here
 * to a waypoint this instance serves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver_int.h"

/* ---- waypoints and enrollment ---------------------------------------------- */

static bool is_served(const struct wp_resolver *r, const struct wp_obj *gw, const char *key)
{
	if (r->cfg_class && r->cfg_class[0] && gw->u.gw.class_name &&
	    !strcmp(gw->u.gw.class_name, r->cfg_class))
		return true;
	for (unsigned i = 0; i < r->cfg.n_gateways; i++)
		if (!strcmp(r->cfg_names[i], key))
			return true;
	return false;
}

static int wp_cmp(const void *a, const void *b)
{
	return strcmp((*(struct rwp *const *)a)->key, (*(struct rwp *const *)b)->key);
}

int wp_resolver_rebuild_waypoints(struct wp_resolver *r)
{
	uint32_t ns = 0;

	hmap_foreach(&r->wps, e)
	{
		hmap_remove(&r->wps, e);
		free(wp_container_of(e, struct rwp, h));
	}
	free(r->served_gw);
	r->served_gw = NULL;
	r->n_served = 0;
	hmap_foreach(&r->objs[WP_KIND_GATEWAY], e)
	{
		const struct wp_obj *g = wp_container_of(e, struct rnode, h)->obj;
		const struct wp_k8s_gateway *gw = &g->u.gw;
		size_t l = strlen(e->key);
		struct rwp *w = calloc(1, sizeof(*w) + l + 1);
		const char *tt = "service";
		struct hent *ce;

		if (!w)
			return -ENOMEM;
		memcpy(w->key, e->key, l + 1);
		w->h.key = w->key;
		w->gw = g;
		/* waypoint-for: Gateway label, else its GatewayClass's, else service */
		ce = gw->class_name ? hmap_find(&r->objs[WP_KIND_GATEWAYCLASS], gw->class_name)
		                    : NULL;
		if (ce) {
			const char *v = wp_labels_get(
			        &wp_container_of(ce, struct rnode, h)->obj->meta.labels,
			        WP_LABEL_WAYPOINT_FOR);
			if (v)
				tt = v;
		}
		if (wp_labels_get(&g->meta.labels, WP_LABEL_WAYPOINT_FOR))
			tt = wp_labels_get(&g->meta.labels, WP_LABEL_WAYPOINT_FOR);
		w->waypoint_for = tt;
		/* allowedRoutes of the HBONE listener on 15008, else Same */
		w->from = WP_ROUTES_FROM_SAME;
		for (uint32_t i = 0; i < gw->n_listeners; i++) {
			const struct wp_gw_listener *li = &gw->listeners[i];

			if (li->port == 15008 && li->protocol && !strcmp(li->protocol, "HBONE")) {
				if (li->has_allowed_ns) {
					w->from = li->from;
					w->sel = li->has_selector ? &li->selector : NULL;
				}
				break;
			}
		}
		w->served = is_served(r, g, e->key);
		w->ready = gw->n_status_addrs > 0 || w->served;
		hmap_insert(&r->wps, &w->h);
		if (w->served)
			ns++;
	}
	if (ns) {
		r->served_gw = calloc(ns, sizeof(*r->served_gw));
		if (!r->served_gw)
			return -ENOMEM;
		hmap_foreach(&r->wps, e)
		{
			struct rwp *w = wp_container_of(e, struct rwp, h);

			if (w->served)
				r->served_gw[r->n_served++] = w;
		}
		qsort(r->served_gw, r->n_served, sizeof(*r->served_gw), wp_cmp);
		for (uint32_t i = 0; i < r->n_served; i++)
			r->served_gw[i]->gw_idx = i;
	}
	return 0;
}

static bool allows(const struct wp_resolver *r, const struct rwp *w, const char *obj_ns)
{
	const struct rns *b;
	static const struct wp_labels empty;

	switch (w->from) {
	case WP_ROUTES_FROM_ALL:
		return true;
	case WP_ROUTES_FROM_SELECTOR:
		if (!w->sel)
			return false; /* no selector selects nothing */
		b = wp_resolver_ns_get((struct wp_resolver *)r, obj_ns, false);
		return wp_selector_match(w->sel,
		                         b && b->nsobj ? &b->nsobj->obj->meta.labels : &empty);
	default:
		return !strcmp(w->gw->meta.ns, obj_ns);
	}
}

static bool traffic_ok(const struct rwp *w, bool is_svc)
{
	if (!strcmp(w->waypoint_for, "all"))
		return true;
	return !strcmp(w->waypoint_for, is_svc ? "service" : "workload");
}

/* Recomputes n's enrollment; true when the result changed. */
bool wp_resolver_enroll(struct wp_resolver *r, struct rnode *n)
{
	const struct wp_obj *o = n->obj;
	bool is_svc = o->kind == WP_KIND_SERVICE;
	const struct wp_labels *l = &o->meta.labels;
	const char *own = wp_labels_get(l, WP_LABEL_USE_WAYPOINT);
	const char *managed = wp_labels_get(l, WP_LABEL_GATEWAY_MANAGED);
	uint8_t reason = WP_ENROLL_NONE, detail = D_NO_LABEL;
	bool via_ns = false, bound = false, served = false, changed;
	char key[512] = "";
	struct rwp *w = NULL;

	if (managed && !strcmp(managed, WP_MESH_CONTROLLER)) {
		detail = D_IS_WAYPOINT;
	} else if (own) {
		if (!strcmp(own, "none")) {
			detail = D_SELF_NONE;
		} else {
			const char *wns = wp_labels_get(l, WP_LABEL_USE_WAYPOINT_NS);
			struct hent *e;

			snprintf(key, sizeof(key), "%s/%s", wns ? wns : o->meta.ns, own);
			e = hmap_find(&r->wps, key);
			w = e ? wp_container_of(e, struct rwp, h) : NULL;
			detail = D_SELF;
			if (!w || !w->ready)
				reason = WP_ENROLL_NOT_READY;
			else if (!allows(r, w, o->meta.ns))
				reason = WP_ENROLL_ATTACHMENT_DENIED;
			else if (!traffic_ok(w, is_svc))
				reason = WP_ENROLL_UNSUPPORTED;
			else
				reason = WP_ENROLL_BOUND;
		}
	} else if (n->ns->nsobj &&
	           wp_labels_get(&n->ns->nsobj->obj->meta.labels, WP_LABEL_USE_WAYPOINT)) {
		const struct wp_labels *nl = &n->ns->nsobj->obj->meta.labels;
		const char *v = wp_labels_get(nl, WP_LABEL_USE_WAYPOINT);

		via_ns = true;
		if (!strcmp(v, "none")) {
			detail = D_NS_NONE;
		} else {
			const char *wns = wp_labels_get(nl, WP_LABEL_USE_WAYPOINT_NS);
			struct hent *e;

			snprintf(key, sizeof(key), "%s/%s", wns ? wns : o->meta.ns, v);
			e = hmap_find(&r->wps, key);
			w = e ? wp_container_of(e, struct rwp, h) : NULL;
			detail = D_NS;
			if (!w || !w->ready) {
				reason = WP_ENROLL_NOT_READY;
			} else if (!allows(r, w, o->meta.ns)) {
				reason = WP_ENROLL_ATTACHMENT_DENIED;
			} else if (!traffic_ok(w, is_svc)) {
				/* silently no waypoint through the namespace */
				reason = WP_ENROLL_NONE;
				detail = D_NS_TT_MISMATCH;
			} else {
				reason = WP_ENROLL_BOUND;
			}
		}
	}
	if (reason == WP_ENROLL_BOUND) {
		bound = true;
		served = w->served;
	}
	changed = !n->enrolled_once || n->reason != reason || n->detail != detail ||
	          n->via_ns != via_ns || n->bound != bound || n->served != served ||
	          (!n->wp) != (!key[0]) || (n->wp && strcmp(n->wp, key));
	if (changed) {
		free(n->wp);
		n->wp = key[0] ? strdup(key) : NULL;
		n->reason = reason;
		n->detail = detail;
		n->via_ns = via_ns;
		n->bound = bound;
		n->served = served;
		n->enrolled_once = true;
	}
	return changed;
}

static const char *const reason_names[] = {
        [WP_ENROLL_BOUND] = "WaypointBound",
        [WP_ENROLL_NONE] = "NoWaypoint",
        [WP_ENROLL_UNSUPPORTED] = "UnsupportedTrafficType",
        [WP_ENROLL_NOT_READY] = "WaypointIsNotReady",
        [WP_ENROLL_ATTACHMENT_DENIED] = "AttachmentDenied",
};

const char *wp_enroll_reason_name(enum wp_enroll_reason reason)
{
	return reason < WP_ARRAY_SIZE(reason_names) ? reason_names[reason] : "?";
}

static void enroll_message(const struct wp_resolver *r, const struct rnode *n, char *buf,
                           size_t len)
{
	const char *t = n->obj->kind == WP_KIND_SERVICE ? "service" : "workload";
	const char *src = n->via_ns ? "namespace label" : "own label";
	const struct hent *e = n->wp ? hmap_find(&r->wps, n->wp) : NULL;
	const struct rwp *w = e ? wp_container_of(e, struct rwp, h) : NULL;

	switch (n->detail) {
	case D_NO_LABEL:
		snprintf(buf, len, "no istio.io/use-waypoint label on the object or its namespace");
		return;
	case D_SELF_NONE:
		snprintf(buf, len, "opted out: istio.io/use-waypoint=none on the object");
		return;
	case D_NS_NONE:
		snprintf(buf, len, "opted out: istio.io/use-waypoint=none on the namespace");
		return;
	case D_IS_WAYPOINT:
		snprintf(buf, len, "is a waypoint itself (gateway.istio.io/managed)");
		return;
	case D_NS_TT_MISMATCH:
		snprintf(buf, len, "namespace waypoint %s is for %s traffic, not %s", n->wp,
		         w ? w->waypoint_for : "?", t);
		return;
	default:
		break;
	}
	switch (n->reason) {
	case WP_ENROLL_BOUND:
		snprintf(buf, len, "bound to %s by its %s%s", n->wp, src,
		         n->served ? " (served here)" : "");
		break;
	case WP_ENROLL_NOT_READY:
		snprintf(buf, len,
		         "waypoint \"%s\" is not ready (%s; no such Gateway with status "
		         "addresses, and not served here)",
		         n->wp, src);
		break;
	case WP_ENROLL_ATTACHMENT_DENIED:
		snprintf(buf, len,
		         "we are not permitted to attach to waypoint \"%s\" (allowedRoutes of its "
		         "HBONE listener; %s)",
		         n->wp, src);
		break;
	case WP_ENROLL_UNSUPPORTED:
		snprintf(buf, len,
		         "attempting to bind to traffic type \"%s\" which the waypoint \"%s\" does "
		         "not support (waypoint-for: %s)",
		         t, n->wp, w ? w->waypoint_for : "?");
		break;
	default:
		buf[0] = '\0';
	}
}

static int node_cmp(const void *a, const void *b)
{
	const struct rnode *x = *(struct rnode *const *)a, *y = *(struct rnode *const *)b;
	int c;

	if (x->obj->kind != y->obj->kind)
		return x->obj->kind == WP_KIND_SERVICE ? -1 : 1;
	c = strcmp(x->obj->meta.ns, y->obj->meta.ns);
	return c ? c : strcmp(x->obj->meta.name, y->obj->meta.name);
}

size_t wp_resolver_enrollment(struct wp_resolver *r, wp_enrollment_cb cb, void *ctx)
{
	size_t n = r->objs[WP_KIND_SERVICE].n + r->objs[WP_KIND_POD].n, i = 0;
	struct rnode **v;

	if (wp_resolver_process(r))
		return 0;
	v = malloc(sizeof(*v) * (n + 1));
	if (!v)
		return 0;
	hmap_foreach(&r->objs[WP_KIND_SERVICE], e) v[i++] = wp_container_of(e, struct rnode, h);
	hmap_foreach(&r->objs[WP_KIND_POD], e) v[i++] = wp_container_of(e, struct rnode, h);
	qsort(v, n, sizeof(*v), node_cmp);
	for (i = 0; i < n; i++) {
		char msg[512];
		struct wp_enrollment en = {
		        .kind = v[i]->obj->kind,
		        .ns = v[i]->obj->meta.ns,
		        .name = v[i]->obj->meta.name,
		        .waypoint = v[i]->wp,
		        .bound = v[i]->bound,
		        .served = v[i]->served,
		        .via_namespace = v[i]->via_ns,
		        .reason = v[i]->reason,
		        .message = msg,
		};

		enroll_message(r, v[i], msg, sizeof(msg));
		cb(ctx, &en);
	}
	free(v);
	return n;
}
