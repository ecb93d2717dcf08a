/*
 * The resolver (see wp/resolve.h): object store, istiod's enrollment, and
 * incremental snapshot building.
 *
 * Store: one hash map per kind keyed "ns/name" (cluster-scoped kinds by
 * name), plus a bucket per namespace listing its Services, Pods and
 * EndpointSlices, which is all the locality the computations need.
 *
 * Incremental work: events put Services/Pods on the "enroll" list (their
 * enrollment must be recomputed) or the "block" list (their snapshot block
 * must be rebuilt). A Gateway or GatewayClass change sets `full`, which
 * recomputes the waypoint table and every enrollment. wp_resolver_build()
 * drains the lists and then assembles the snapshot from the current blocks,
 * which are shared (reference counted) with earlier snapshots.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz_compile.h"
#include "hmap.h"
#include "route_compile.h"
#include "wp/addr.h"
#include "wp/hash.h"
#include "wp/model.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"

enum detail {
	D_NO_LABEL,
	D_SELF_NONE,
	D_NS_NONE,
	D_IS_WAYPOINT,
	D_SELF,
	D_NS,
	D_NS_TT_MISMATCH,
};

struct rns;

struct rnode {
	struct hent h;
	struct wp_obj *obj;
	struct rns *ns;
	struct rnode *prev, *next; /* in the namespace's list for this kind */
	/* Services and Pods: */
	char *wp; /* "ns/name" the enrollment names, or NULL */
	uint8_t reason, detail;
	bool via_ns, bound, served, enrolled_once;
	bool in_enroll, in_block;
	bool l7_ext;                 /* Services: its route tables reach other services */
	struct rnode *enext, *bnext; /* dirty lists */
	void *block;                 /* struct wp_snap_service / wp_snap_workload */
	uint32_t cap_idx;            /* index in the captured array, UINT32_MAX = none */
	char key[];
};

struct rns {
	struct hent h;
	struct rnode *nsobj;
	struct rnode *list[WP_KIND_MAX]; /* Services, Pods, EndpointSlices */
	size_t n_members;
	char key[];
};

struct rwp {
	struct hent h;
	const struct wp_obj *gw;
	const char *waypoint_for;
	uint8_t from;
	const struct wp_label_selector *sel; /* NULL with from=Selector: matches nothing */
	bool ready, served;
	uint32_t gw_idx; /* index among served gateways */
	char key[];
};

struct errent {
	char *origin;
	char *msg;
};

struct capset {
	struct rnode **v;
	uint32_t n, cap;
};

struct wp_resolver {
	struct wp_source_sink sink;
	struct hmap objs[WP_KIND_MAX];
	struct hmap nss;
	struct hmap wps;
	struct rwp **served_gw; /* sorted by key */
	uint32_t n_served;
	struct wp_served cfg;
	char **cfg_names;
	char *cfg_class;
	char *cfg_domain;
	char *cfg_root;                     /* AuthorizationPolicy root namespace */
	char *cfg_td;                       /* trust domain */
	char **cfg_aliases;                 /* cfg.n_aliases trust domain aliases */
	struct wp_authz_db_cache authz_dbs; /* Hyperscan databases shared by the blocks */
	struct rnode *enroll_list, *block_list;
	struct capset cap_svc, cap_pod;
	bool full, changed;
	uint64_t version;
	struct errent *errs;
	unsigned n_errs, cap_errs;
	const char **err_view;
};

/* ---- helpers ------------------------------------------------------------- */

static int sink_upsert(void *ctx, struct wp_obj *obj)
{
	return wp_resolver_upsert(ctx, obj);
}

static int sink_remove(void *ctx, enum wp_kind kind, const char *ns, const char *name)
{
	return wp_resolver_remove(ctx, kind, ns, name);
}

static void sink_error(void *ctx, const char *origin, const char *msg)
{
	struct wp_resolver *r = ctx;

	if (r->n_errs == r->cap_errs) {
		unsigned nc = r->cap_errs ? r->cap_errs * 2 : 16;
		struct errent *e = realloc(r->errs, nc * sizeof(*e));

		if (!e)
			return;
		r->errs = e;
		r->cap_errs = nc;
	}
	r->errs[r->n_errs].origin = strdup(origin);
	r->errs[r->n_errs].msg = strdup(msg);
	if (!r->errs[r->n_errs].origin || !r->errs[r->n_errs].msg) {
		free(r->errs[r->n_errs].origin);
		free(r->errs[r->n_errs].msg);
		return;
	}
	r->n_errs++;
	r->changed = true;
}

static void sink_clear_errors(void *ctx, const char *origin)
{
	struct wp_resolver *r = ctx;
	unsigned j = 0;

	for (unsigned i = 0; i < r->n_errs; i++) {
		if (!strcmp(r->errs[i].origin, origin)) {
			free(r->errs[i].origin);
			free(r->errs[i].msg);
			r->changed = true;
			continue;
		}
		r->errs[j++] = r->errs[i];
	}
	r->n_errs = j;
}

static void sink_synced(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
}

static const struct wp_source_sink_ops sink_ops = {
        .upsert = sink_upsert,
        .remove = sink_remove,
        .error = sink_error,
        .clear_errors = sink_clear_errors,
        .synced = sink_synced,
};

static void make_key(char *buf, size_t len, enum wp_kind kind, const char *ns, const char *name)
{
	if (wp_kind_namespaced(kind))
		snprintf(buf, len, "%s/%s", ns, name);
	else
		snprintf(buf, len, "%s", name);
}

static struct rns *ns_get(struct wp_resolver *r, const char *name, bool create)
{
	struct hent *e = hmap_find(&r->nss, name);
	struct rns *b;
	size_t l;

	if (e || !create)
		return e ? wp_container_of(e, struct rns, h) : NULL;
	l = strlen(name);
	b = calloc(1, sizeof(*b) + l + 1);
	if (!b)
		return NULL;
	memcpy(b->key, name, l + 1);
	b->h.key = b->key;
	hmap_insert(&r->nss, &b->h);
	return b;
}

static void ns_put(struct wp_resolver *r, struct rns *b)
{
	if (b && !b->nsobj && !b->n_members) {
		hmap_remove(&r->nss, &b->h);
		free(b);
	}
}

static void mark_enroll(struct wp_resolver *r, struct rnode *n)
{
	if (n->in_enroll)
		return;
	n->in_enroll = true;
	n->enext = r->enroll_list;
	r->enroll_list = n;
	r->changed = true;
}

static void mark_block(struct wp_resolver *r, struct rnode *n)
{
	if (n->in_block)
		return;
	n->in_block = true;
	n->bnext = r->block_list;
	r->block_list = n;
	r->changed = true;
}

static void unlink_dirty(struct wp_resolver *r, struct rnode *n)
{
	if (n->in_enroll) {
		struct rnode **pp = &r->enroll_list;

		while (*pp != n)
			pp = &(*pp)->enext;
		*pp = n->enext;
		n->in_enroll = false;
	}
	if (n->in_block) {
		struct rnode **pp = &r->block_list;

		while (*pp != n)
			pp = &(*pp)->bnext;
		*pp = n->bnext;
		n->in_block = false;
	}
}

/* ---- shared blocks ------------------------------------------------------- */

static void svc_block_put(struct wp_snap_service *b)
{
	if (b && --b->refcnt == 0) {
		for (uint32_t i = 0; i < b->n_ports; i++)
			wp_route_table_free((struct wp_route_table *)b->ports[i].routes);
		wp_authz_table_free((struct wp_authz_table *)b->authz);
		wp_arena_free(&b->arena);
		free(b);
	}
}

static void wl_block_put(struct wp_snap_workload *b)
{
	if (b && --b->refcnt == 0) {
		wp_arena_free(&b->arena);
		free(b);
	}
}

void wp_snapshot_free(struct wp_snapshot *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->n_services; i++)
		svc_block_put(s->services[i]);
	for (uint32_t i = 0; i < s->n_workloads; i++)
		wl_block_put(s->workloads[i]);
	wp_arena_free(&s->arena);
	free(s);
}

static void cap_remove(struct capset *c, struct rnode *n)
{
	if (n->cap_idx == UINT32_MAX)
		return;
	c->v[n->cap_idx] = c->v[--c->n];
	c->v[n->cap_idx]->cap_idx = n->cap_idx;
	n->cap_idx = UINT32_MAX;
}

static int cap_add(struct capset *c, struct rnode *n)
{
	if (n->cap_idx != UINT32_MAX)
		return 0;
	if (c->n == c->cap) {
		uint32_t nc = c->cap ? c->cap * 2 : 64;
		struct rnode **v = realloc(c->v, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = nc;
	}
	n->cap_idx = c->n;
	c->v[c->n++] = n;
	return 0;
}

static void drop_block(struct wp_resolver *r, struct rnode *n)
{
	if (n->obj->kind == WP_KIND_SERVICE) {
		cap_remove(&r->cap_svc, n);
		svc_block_put(n->block);
	} else {
		cap_remove(&r->cap_pod, n);
		wl_block_put(n->block);
	}
	n->block = NULL;
}

/* ---- events ---------------------------------------------------------------- */

/* Services in n's namespace whose endpoints may come from pod p's labels. */
static void mark_selecting_services(struct wp_resolver *r, struct rns *b, const struct wp_obj *pod)
{
	for (struct rnode *s = b->list[WP_KIND_SERVICE]; s; s = s->next) {
		const struct wp_k8s_service *svc = &s->obj->u.svc;

		if (svc->has_selector && svc->selector.n &&
		    wp_labels_subset(&svc->selector, &pod->meta.labels))
			mark_block(r, s);
	}
}

static void mark_eps_service(struct wp_resolver *r, struct rns *b, const struct wp_obj *eps)
{
	char key[512];
	struct hent *e;

	if (!eps->u.eps.service_name)
		return;
	snprintf(key, sizeof(key), "%s/%s", b->key, eps->u.eps.service_name);
	e = hmap_find(&r->objs[WP_KIND_SERVICE], key);
	if (e)
		mark_block(r, wp_container_of(e, struct rnode, h));
}

/* Route tables of captured services: all of them (an HTTPRoute or a
 * DestinationRule changed), or those that reach other services (some
 * service's endpoints may have changed). */
static void mark_l7(struct wp_resolver *r, bool all)
{
	for (uint32_t i = 0; i < r->cap_svc.n; i++)
		if (all || r->cap_svc.v[i]->l7_ext)
			mark_block(r, r->cap_svc.v[i]);
}

static void on_change(struct wp_resolver *r, struct rnode *n, const struct wp_obj *old,
                      const struct wp_obj *cur)
{
	enum wp_kind k = n->obj ? n->obj->kind : old->kind;

	r->changed = true;
	if (k == WP_KIND_SERVICE || k == WP_KIND_POD || k == WP_KIND_ENDPOINTSLICE ||
	    k == WP_KIND_NAMESPACE)
		mark_l7(r, false);
	else if (k == WP_KIND_HTTPROUTE || k == WP_KIND_DESTINATIONRULE ||
	         k == WP_KIND_AUTHORIZATIONPOLICY)
		mark_l7(r, true);
	switch (k) {
	case WP_KIND_NAMESPACE: {
		struct rns *b = n->ns;

		/* Its labels decide enrollment and ambient membership (blocks). */
		for (struct rnode *x = b->list[WP_KIND_SERVICE]; x; x = x->next) {
			mark_enroll(r, x);
			mark_block(r, x);
		}
		for (struct rnode *x = b->list[WP_KIND_POD]; x; x = x->next) {
			mark_enroll(r, x);
			mark_block(r, x);
		}
		break;
	}
	case WP_KIND_SERVICE:
		if (cur) {
			mark_enroll(r, n);
			mark_block(r, n);
		}
		break;
	case WP_KIND_POD:
		if (cur) {
			mark_enroll(r, n);
			mark_block(r, n);
			mark_selecting_services(r, n->ns, cur);
		}
		if (old)
			mark_selecting_services(r, n->ns, old);
		/* EndpointSlice-backed services name their pods: mark them too */
		for (struct rnode *e = n->ns->list[WP_KIND_ENDPOINTSLICE]; e; e = e->next) {
			const struct wp_k8s_endpointslice *es = &e->obj->u.eps;

			for (uint32_t i = 0; i < es->n_endpoints; i++)
				if (es->endpoints[i].target_name &&
				    !strcmp(es->endpoints[i].target_name,
				            (cur ? cur : old)->meta.name)) {
					mark_eps_service(r, n->ns, e->obj);
					break;
				}
		}
		break;
	case WP_KIND_ENDPOINTSLICE:
		if (old)
			mark_eps_service(r, n->ns, old);
		if (cur)
			mark_eps_service(r, n->ns, cur);
		break;
	case WP_KIND_GATEWAY:
	case WP_KIND_GATEWAYCLASS:
		r->full = true;
		break;
	default:
		break;
	}
}

int wp_resolver_upsert(struct wp_resolver *r, struct wp_obj *obj)
{
	enum wp_kind k = obj->kind;
	struct wp_obj *old = NULL;
	struct rnode *n;
	struct hent *e;
	char key[512];

	if (k <= WP_KIND_NONE || k >= WP_KIND_MAX) {
		wp_obj_free(obj);
		return -EINVAL;
	}
	make_key(key, sizeof(key), k, obj->meta.ns, obj->meta.name);
	e = hmap_find(&r->objs[k], key);
	if (e) {
		n = wp_container_of(e, struct rnode, h);
		old = n->obj;
		n->obj = obj;
	} else {
		size_t l = strlen(key);

		n = calloc(1, sizeof(*n) + l + 1);
		if (!n) {
			wp_obj_free(obj);
			return -ENOMEM;
		}
		memcpy(n->key, key, l + 1);
		n->h.key = n->key;
		n->obj = obj;
		n->cap_idx = UINT32_MAX;
		if (k == WP_KIND_NAMESPACE) {
			n->ns = ns_get(r, obj->meta.name, true);
			if (!n->ns) {
				free(n);
				wp_obj_free(obj);
				return -ENOMEM;
			}
			n->ns->nsobj = n;
		} else if (wp_kind_namespaced(k)) {
			n->ns = ns_get(r, obj->meta.ns, true);
			if (!n->ns) {
				free(n);
				wp_obj_free(obj);
				return -ENOMEM;
			}
			if (k == WP_KIND_SERVICE || k == WP_KIND_POD ||
			    k == WP_KIND_ENDPOINTSLICE) {
				n->next = n->ns->list[k];
				if (n->next)
					n->next->prev = n;
				n->ns->list[k] = n;
			}
			n->ns->n_members++;
		}
		hmap_insert(&r->objs[k], &n->h);
	}
	on_change(r, n, old, obj);
	wp_obj_free(old);
	return 0;
}

int wp_resolver_remove(struct wp_resolver *r, enum wp_kind k, const char *ns, const char *name)
{
	struct rnode *n;
	struct hent *e;
	char key[512];

	if (k <= WP_KIND_NONE || k >= WP_KIND_MAX)
		return -EINVAL;
	make_key(key, sizeof(key), k, ns, name);
	e = hmap_find(&r->objs[k], key);
	if (!e)
		return 0;
	n = wp_container_of(e, struct rnode, h);
	{
		struct wp_obj *old = n->obj;

		/* mark dependants while the object is still linked */
		n->obj = old;
		on_change(r, n, old, NULL);
		unlink_dirty(r, n);
		if (k == WP_KIND_SERVICE || k == WP_KIND_POD)
			drop_block(r, n);
		hmap_remove(&r->objs[k], &n->h);
		if (k == WP_KIND_NAMESPACE) {
			n->ns->nsobj = NULL;
			ns_put(r, n->ns);
		} else if (n->ns) {
			if (k == WP_KIND_SERVICE || k == WP_KIND_POD ||
			    k == WP_KIND_ENDPOINTSLICE) {
				if (n->prev)
					n->prev->next = n->next;
				else
					n->ns->list[k] = n->next;
				if (n->next)
					n->next->prev = n->prev;
			}
			n->ns->n_members--;
			ns_put(r, n->ns);
		}
		free(n->wp);
		free(n);
		wp_obj_free(old);
	}
	return 0;
}

bool wp_resolver_dirty(const struct wp_resolver *r)
{
	return r->changed || r->full;
}

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

static int rebuild_waypoints(struct wp_resolver *r)
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
		b = ns_get((struct wp_resolver *)r, obj_ns, false);
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
static bool enroll(struct wp_resolver *r, struct rnode *n)
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

/* ---- blocks ------------------------------------------------------------------ */

enum wp_app_proto wp_resolve_port_proto(const char *name, const char *app_protocol)
{
	static const struct {
		const char *p;
		enum wp_app_proto v;
	} t[] = {
	        {"http", WP_PROTO_HTTP},
	        {"http2", WP_PROTO_HTTP2},
	        {"grpc", WP_PROTO_GRPC},
	        {"grpc-web", WP_PROTO_HTTP},
	        {"tcp", WP_PROTO_TCP},
	        {"tls", WP_PROTO_TLS},
	        {"https", WP_PROTO_HTTPS},
	        {"kubernetes.io/h2c", WP_PROTO_HTTP2},
	        {"h2c", WP_PROTO_HTTP2},
	        {"kubernetes.io/ws", WP_PROTO_HTTP},
	        {"kubernetes.io/wss", WP_PROTO_HTTPS},
	};
	char pre[32];
	size_t l;

	if (app_protocol && app_protocol[0]) {
		for (size_t i = 0; i < WP_ARRAY_SIZE(t); i++)
			if (!strcasecmp(app_protocol, t[i].p))
				return t[i].v;
	}
	if (!name || !name[0])
		return WP_PROTO_UNKNOWN;
	if (!strncasecmp(name, "grpc-web", 8) && (name[8] == '\0' || name[8] == '-'))
		return WP_PROTO_HTTP;
	l = strcspn(name, "-");
	if (l >= sizeof(pre))
		return WP_PROTO_UNKNOWN;
	memcpy(pre, name, l);
	pre[l] = '\0';
	for (size_t i = 0; i < WP_ARRAY_SIZE(t); i++)
		if (!strcasecmp(pre, t[i].p))
			return t[i].v;
	return WP_PROTO_UNKNOWN;
}

static const struct wp_obj *find_pod(struct wp_resolver *r, const char *ns, const char *name)
{
	char key[512];
	struct hent *e;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	e = hmap_find(&r->objs[WP_KIND_POD], key);
	return e ? wp_container_of(e, struct rnode, h)->obj : NULL;
}

static bool pod_endpoint_ok(const struct wp_obj *p)
{
	const struct wp_k8s_pod *pod = &p->u.pod;

	if (!pod->n_ips || pod->terminating)
		return false;
	return !pod->phase || (strcmp(pod->phase, "Succeeded") && strcmp(pod->phase, "Failed"));
}

static bool pod_target_port(const struct wp_k8s_pod *pod, const struct wp_svc_port *sp,
                            uint16_t *out)
{
	if (!sp->target_port_name) {
		*out = sp->target_port;
		return true;
	}
	for (uint32_t i = 0; i < pod->n_cports; i++)
		if (pod->cports[i].name && !strcmp(pod->cports[i].name, sp->target_port_name)) {
			*out = pod->cports[i].port;
			return true;
		}
	return false;
}

static const struct wp_eps_port *eps_port(const struct wp_k8s_endpointslice *es, const char *name)
{
	for (uint32_t i = 0; i < es->n_ports; i++)
		if (!strcmp(es->ports[i].name, name))
			return &es->ports[i];
	return NULL;
}

/*
 * Ambient membership as istio-cni decides it: the namespace carries
 * istio.io/dataplane-mode=ambient and the pod does not opt out with
 * istio.io/dataplane-mode=none (a pod may also opt in by itself). Decides
 * whether the data plane reaches the workload by HBONE or in plaintext.
 */
static bool in_ambient(const struct rns *ns, const struct wp_obj *pod)
{
	const char *pm = pod ? wp_labels_get(&pod->meta.labels, "istio.io/dataplane-mode") : NULL;
	const char *nm = ns && ns->nsobj ? wp_labels_get(&ns->nsobj->obj->meta.labels,
	                                                 "istio.io/dataplane-mode")
	                                 : NULL;

	if (pm != NULL)
		return strcmp(pm, "ambient") == 0;
	return nm != NULL && strcmp(nm, "ambient") == 0;
}

/* Fills ep (or just counts when ep is NULL); returns the count. */
static uint32_t gather(struct wp_resolver *r, struct rnode *n, const struct wp_svc_port *sp,
                       struct wp_snap_endpoint *ep, struct wp_arena *a, bool *from_eps,
                       const struct wp_labels **labels)
{
	const struct wp_obj *svc = n->obj;
	uint32_t c = 0;

	*from_eps = false;
	for (struct rnode *e = n->ns->list[WP_KIND_ENDPOINTSLICE]; e; e = e->next) {
		const struct wp_k8s_endpointslice *es = &e->obj->u.eps;
		const struct wp_eps_port *p;

		if (!es->service_name || strcmp(es->service_name, svc->meta.name))
			continue;
		*from_eps = true;
		p = eps_port(es, sp->name);
		if (!p || !p->port || !strcmp(es->address_type, "FQDN"))
			continue;
		for (uint32_t i = 0; i < es->n_endpoints; i++) {
			const struct wp_eps_endpoint *x = &es->endpoints[i];
			const struct wp_obj *pod = NULL;

			if (!x->n_addrs)
				continue;
			if (ep) {
				if (x->target_name &&
				    (!x->target_kind || !strcmp(x->target_kind, "Pod")))
					pod = find_pod(r,
					               x->target_ns ? x->target_ns : svc->meta.ns,
					               x->target_name);
				ep[c].addr = x->addrs[0];
				ep[c].port = p->port;
				ep[c].ready = x->ready;
				ep[c].ns = svc->meta.ns;
				ep[c].name =
				        x->target_name ? wp_arena_strdup(a, x->target_name) : NULL;
				ep[c].service_account =
				        pod ? wp_arena_strdup(a, pod->u.pod.service_account) : NULL;
				ep[c].node = x->node_name ? wp_arena_strdup(a, x->node_name)
				             : pod && pod->u.pod.node_name
				                     ? wp_arena_strdup(a, pod->u.pod.node_name)
				                     : NULL;
				ep[c].ambient = in_ambient(n->ns, pod);
				if (labels)
					labels[c] = pod ? &pod->meta.labels : NULL;
			}
			c++;
		}
	}
	if (*from_eps || !svc->u.svc.has_selector || !svc->u.svc.selector.n)
		return c;
	for (struct rnode *p = n->ns->list[WP_KIND_POD]; p; p = p->next) {
		const struct wp_k8s_pod *pod = &p->obj->u.pod;
		uint16_t port;

		if (!pod_endpoint_ok(p->obj) ||
		    !wp_labels_subset(&svc->u.svc.selector, &p->obj->meta.labels) ||
		    !pod_target_port(pod, sp, &port))
			continue;
		if (ep) {
			ep[c].addr = pod->ips[0];
			ep[c].port = port;
			ep[c].ready = pod->ready && (!pod->phase || !strcmp(pod->phase, "Running"));
			ep[c].ns = svc->meta.ns;
			ep[c].name = p->obj->meta.name;
			ep[c].service_account = pod->service_account;
			ep[c].node = pod->node_name;
			ep[c].ambient = in_ambient(n->ns, p->obj);
			if (labels)
				labels[c] = &p->obj->meta.labels;
		}
		c++;
	}
	return c;
}

/* ---- L7 policy ------------------------------------------------------------------ */

/* wp_route_lookup_cb: Service ns/name port <port> from the store. */
static int l7_lookup(void *ctx, const char *ns, const char *name, uint16_t port, struct wp_arena *a,
                     struct wp_route_svc_eps *out)
{
	struct wp_resolver *r = ctx;
	const struct wp_svc_port *sp = NULL;
	const struct wp_labels **lab;
	struct wp_snap_endpoint *ep;
	const char *ens;
	struct rnode *n;
	struct hent *e;
	char key[512];
	uint32_t cnt;
	bool fe;

	snprintf(key, sizeof(key), "%s/%s", ns, name);
	e = hmap_find(&r->objs[WP_KIND_SERVICE], key);
	if (!e)
		return -ENOENT;
	n = wp_container_of(e, struct rnode, h);
	for (uint32_t i = 0; i < n->obj->u.svc.n_ports; i++)
		if (n->obj->u.svc.ports[i].port == port)
			sp = &n->obj->u.svc.ports[i];
	if (!sp)
		return -ESRCH;
	cnt = gather(r, n, sp, NULL, a, &fe, NULL);
	ep = wp_arena_alloc(a, sizeof(*ep) * (cnt + 1));
	lab = wp_arena_alloc(a, sizeof(*lab) * (cnt + 1));
	ens = wp_arena_strdup(a, ns);
	if (!ep || !lab || !ens)
		return -ENOMEM;
	gather(r, n, sp, ep, a, &fe, lab);
	for (uint32_t j = 0; j < cnt; j++) {
		ep[j].ns = ens;
		if (!fe) { /* strings of selector-built endpoints belong to the Pods */
			ep[j].name = wp_arena_strdup(a, ep[j].name);
			ep[j].service_account = wp_arena_strdup(a, ep[j].service_account);
			ep[j].node = wp_arena_strdup(a, ep[j].node);
		}
	}
	out->port_name = sp->name;
	out->n = cnt;
	out->eps = ep;
	out->labels = lab;
	return 0;
}

struct objvec {
	const struct wp_obj **v;
	uint32_t n;
};

/* Compiles the AuthorizationPolicies that attach to block b (a Service
 * behind waypoint b->gw) into b->authz (cp/resolve/authz_compile.h). */
static int build_authz(struct wp_resolver *r, struct wp_snap_service *b)
{
	const struct wp_obj *gw = b->gw < r->n_served ? r->served_gw[b->gw]->gw : NULL;
	struct objvec pol = {0};
	struct wp_authz_compile_in in = {
	        .gw_ns = gw ? gw->meta.ns : NULL,
	        .gw_name = gw ? gw->meta.name : NULL,
	        .gw_class = gw ? gw->u.gw.class_name : NULL,
	        .root_ns = r->cfg_root,
	        .trust_domain = r->cfg_td,
	        .n_aliases = r->cfg.n_aliases,
	        .aliases = (const char *const *)r->cfg_aliases,
	        .dest_kind = WP_AUTHZ_DEST_SERVICE,
	        .dest_ns = b->ns,
	        .dest_name = b->name,
	        .cache = &r->authz_dbs,
	};

	/* No policy at all: no table, which reads as "nothing applies" (and
	 * spares a compile per Service in a cluster without policies). */
	b->authz = NULL;
	if (r->objs[WP_KIND_AUTHORIZATIONPOLICY].n == 0)
		return 0;
	pol.v = malloc(sizeof(*pol.v) * (r->objs[WP_KIND_AUTHORIZATIONPOLICY].n + 1));
	if (!pol.v)
		return -ENOMEM;
	hmap_foreach(&r->objs[WP_KIND_AUTHORIZATIONPOLICY], e)
	{
		pol.v[pol.n++] = wp_container_of(e, struct rnode, h)->obj;
	}
	in.policies = pol.v;
	in.n_policies = pol.n;
	b->authz = wp_authz_compile(&in);
	free(pol.v);
	return b->authz ? 0 : -ENOMEM;
}

/* Compiles the route table of every port of block b (Service n). */
static int build_l7(struct wp_resolver *r, struct rnode *n, struct wp_snap_service *b)
{
	struct objvec routes = {0}, drs = {0};
	size_t nr = r->objs[WP_KIND_HTTPROUTE].n, nd = r->objs[WP_KIND_DESTINATIONRULE].n;
	int rc = 0;

	routes.v = malloc(sizeof(*routes.v) * (nr + 1));
	drs.v = malloc(sizeof(*drs.v) * (nd + 1));
	if (!routes.v || !drs.v) {
		rc = -ENOMEM;
		goto out;
	}
	hmap_foreach(&r->objs[WP_KIND_HTTPROUTE], e)
	{
		const struct wp_obj *o = wp_container_of(e, struct rnode, h)->obj;

		if (wp_route_attaches(o, b->ns, b->name))
			routes.v[routes.n++] = o;
	}
	hmap_foreach(&r->objs[WP_KIND_DESTINATIONRULE], e)
	{
		drs.v[drs.n++] = wp_container_of(e, struct rnode, h)->obj;
	}
	n->l7_ext = false;
	for (uint32_t i = 0; i < b->n_ports; i++) {
		struct wp_snap_svc_port *p = (struct wp_snap_svc_port *)&b->ports[i];
		struct wp_route_compile_in in = {
		        .ns = b->ns,
		        .name = b->name,
		        .port = p->port,
		        .port_name = p->name,
		        .cluster_domain = r->cfg_domain,
		        .n_routes = routes.n,
		        .routes = routes.v,
		        .n_drs = drs.n,
		        .drs = drs.v,
		        .lookup = l7_lookup,
		        .ctx = r,
		};
		struct wp_route_table *t = wp_route_table_build(&in);

		if (!t) {
			rc = -ENOMEM;
			break;
		}
		p->routes = t;
		for (uint32_t c = 0; c < t->n_clusters; c++)
			if (strcmp(t->clusters[c].svc_ns, b->ns) ||
			    strcmp(t->clusters[c].svc_name, b->name))
				n->l7_ext = true;
	}
	if (!rc)
		rc = build_authz(r, b);
	if (rc)
		for (uint32_t i = 0; i < b->n_ports; i++) {
			struct wp_snap_svc_port *p = (struct wp_snap_svc_port *)&b->ports[i];

			wp_route_table_free((struct wp_route_table *)p->routes);
			p->routes = NULL;
		}
out:
	free(routes.v);
	free(drs.v);
	return rc;
}

static struct wp_snap_service *build_svc(struct wp_resolver *r, struct rnode *n, uint32_t gw)
{
	const struct wp_obj *o = n->obj;
	const struct wp_k8s_service *s = &o->u.svc;
	struct wp_snap_service *b = calloc(1, sizeof(*b));
	struct wp_snap_svc_port *ports;
	struct wp_addr *vips;
	struct wp_arena *a;
	bool fe;

	if (!b)
		return NULL;
	a = &b->arena;
	wp_arena_init(a, 512);
	b->refcnt = 1;
	b->gw = gw;
	b->via_namespace = n->via_ns;
	b->ns = wp_arena_strdup(a, o->meta.ns);
	b->name = wp_arena_strdup(a, o->meta.name);
	b->hostname = wp_arena_sprintf(a, "%s.%s.svc.%s", o->meta.name, o->meta.ns,
	                               r->cfg_domain ? r->cfg_domain : "cluster.local");
	vips = wp_arena_alloc(a, sizeof(*vips) * (s->n_cluster_ips + 1));
	ports = wp_arena_alloc(a, sizeof(*ports) * (s->n_ports + 1));
	if (!b->ns || !b->name || !b->hostname || !vips || !ports)
		goto fail;
	memcpy(vips, s->cluster_ips, sizeof(*vips) * s->n_cluster_ips);
	b->vips = vips;
	b->n_vips = s->n_cluster_ips;
	for (uint32_t i = 0; i < s->n_ports; i++) {
		const struct wp_svc_port *sp = &s->ports[i];
		uint32_t cnt = gather(r, n, sp, NULL, a, &fe, NULL);
		struct wp_snap_endpoint *ep = wp_arena_alloc(a, sizeof(*ep) * (cnt + 1));

		if (!ep)
			goto fail;
		/* endpoint strings from pods are copied below; eps ones already are */
		gather(r, n, sp, ep, a, &fe, NULL);
		for (uint32_t j = 0; j < cnt && !fe; j++) {
			ep[j].ns = b->ns;
			ep[j].name = wp_arena_strdup(a, ep[j].name);
			ep[j].service_account = wp_arena_strdup(a, ep[j].service_account);
			ep[j].node = wp_arena_strdup(a, ep[j].node);
		}
		for (uint32_t j = 0; j < cnt && fe; j++)
			ep[j].ns = b->ns;
		ports[i].name = wp_arena_strdup(a, sp->name);
		ports[i].port = sp->port;
		ports[i].proto = (uint8_t)wp_resolve_port_proto(sp->name, sp->app_protocol);
		ports[i].endpoints = ep;
		ports[i].n_endpoints = cnt;
	}
	b->ports = ports;
	b->n_ports = s->n_ports;
	if (build_l7(r, n, b))
		goto fail;
	return b;
fail:
	wp_arena_free(a);
	free(b);
	return NULL;
}

static struct wp_snap_workload *build_wl(struct rnode *n, uint32_t gw)
{
	const struct wp_obj *o = n->obj;
	const struct wp_k8s_pod *p = &o->u.pod;
	struct wp_snap_workload *b = calloc(1, sizeof(*b));
	struct wp_addr *addrs;
	struct wp_arena *a;

	if (!b)
		return NULL;
	a = &b->arena;
	wp_arena_init(a, 256);
	b->refcnt = 1;
	b->gw = gw;
	b->via_namespace = n->via_ns;
	b->ns = wp_arena_strdup(a, o->meta.ns);
	b->name = wp_arena_strdup(a, o->meta.name);
	b->service_account = wp_arena_strdup(a, p->service_account);
	b->node = wp_arena_strdup(a, p->node_name);
	b->ready = p->ready;
	b->ambient = in_ambient(n->ns, o);
	addrs = wp_arena_alloc(a, sizeof(*addrs) * (p->n_ips + 1));
	if (!b->ns || !b->name || !addrs) {
		wp_arena_free(a);
		free(b);
		return NULL;
	}
	memcpy(addrs, p->ips, sizeof(*addrs) * p->n_ips);
	b->addrs = addrs;
	b->n_addrs = p->n_ips;
	return b;
}

/* Rebuilds n's block. 0 or -ENOMEM (n stays on the block list). */
static int rebuild_block(struct wp_resolver *r, struct rnode *n)
{
	bool svc = n->obj->kind == WP_KIND_SERVICE;
	void *nb;

	if (!n->bound || !n->served || (!svc && !n->obj->u.pod.n_ips)) {
		drop_block(r, n);
		return 0;
	}
	{
		const struct hent *e = hmap_find(&r->wps, n->wp);
		uint32_t gw = wp_container_of(e, struct rwp, h)->gw_idx;

		nb = svc ? (void *)build_svc(r, n, gw) : (void *)build_wl(n, gw);
	}
	if (!nb)
		return -ENOMEM;
	if (svc)
		svc_block_put(n->block);
	else
		wl_block_put(n->block);
	n->block = nb;
	if (cap_add(svc ? &r->cap_svc : &r->cap_pod, n)) {
		drop_block(r, n);
		return -ENOMEM;
	}
	return 0;
}

/* ---- snapshot ----------------------------------------------------------------- */

static inline uint64_t dest_hash(const struct wp_sockaddr *k)
{
	uint64_t h;

	if (k->addr.family == WP_AF_INET) {
		h = ((uint64_t)k->addr.v4 << 16) ^ k->port ^ 0x4000000000000000ULL;
	} else {
		uint64_t a, b;

		memcpy(&a, k->addr.v6, 8);
		memcpy(&b, k->addr.v6 + 8, 8);
		h = a ^ (b * 0x9e3779b97f4a7c15ULL) ^ k->port;
	}
	return wp_hash_mix64(h);
}

static inline bool key_eq(const struct wp_sockaddr *a, const struct wp_sockaddr *b)
{
	return a->port == b->port && wp_addr_eq(&a->addr, &b->addr);
}

const struct wp_snap_dest *wp_snapshot_lookup(const struct wp_snapshot *s,
                                              const struct wp_sockaddr *dst)
{
	struct wp_sockaddr k = *dst;

	if (!s || !s->dests)
		return NULL;
	for (int pass = 0; pass < 2; pass++) {
		uint32_t i = (uint32_t)dest_hash(&k) & s->dest_mask;

		for (;;) {
			const struct wp_snap_dest *d = &s->dests[i];

			if (!d->kind)
				break;
			if (key_eq(&d->key, &k))
				return d;
			i = (i + 1) & s->dest_mask;
		}
		k.port = 0;
	}
	return NULL;
}

/* Inserts; false when the key is already taken (first one wins). */
static bool dest_put(struct wp_snap_dest *t, uint32_t mask, const struct wp_snap_dest *d)
{
	uint32_t i = (uint32_t)dest_hash(&d->key) & mask;

	while (t[i].kind) {
		if (key_eq(&t[i].key, &d->key))
			return false;
		i = (i + 1) & mask;
	}
	t[i] = *d;
	return true;
}

static int process(struct wp_resolver *r)
{
	if (r->full) {
		if (rebuild_waypoints(r))
			return -ENOMEM;
		hmap_foreach(&r->objs[WP_KIND_SERVICE], e)
		{
			struct rnode *n = wp_container_of(e, struct rnode, h);
			mark_enroll(r, n);
			mark_block(r, n); /* gateway indexes may have moved */
		}
		hmap_foreach(&r->objs[WP_KIND_POD], e)
		{
			struct rnode *n = wp_container_of(e, struct rnode, h);
			mark_enroll(r, n);
			mark_block(r, n);
		}
		r->full = false;
	}
	while (r->enroll_list) {
		struct rnode *n = r->enroll_list;

		r->enroll_list = n->enext;
		n->in_enroll = false;
		if (enroll(r, n))
			mark_block(r, n);
	}
	while (r->block_list) {
		struct rnode *n = r->block_list;

		if (rebuild_block(r, n))
			return -ENOMEM;
		r->block_list = n->bnext;
		n->in_block = false;
	}
	return 0;
}

struct wp_snapshot *wp_resolver_build(struct wp_resolver *r)
{
	struct wp_snapshot *s;
	struct wp_snap_gateway *gws;
	struct wp_snap_service **svcs;
	struct wp_snap_workload **wls;
	struct wp_snap_dest *t;
	const char **errs;
	uint32_t n_keys = 0, cap = 16, n_l7err = 0;
	struct timespec ts;

	if (process(r))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	wp_arena_init(&s->arena, 4096);
	for (uint32_t i = 0; i < r->cap_svc.n; i++) {
		const struct wp_snap_service *b = r->cap_svc.v[i]->block;

		for (uint32_t p = 0; p < b->n_ports; p++)
			n_keys += b->n_vips;
	}
	for (uint32_t i = 0; i < r->cap_pod.n; i++)
		n_keys += ((struct wp_snap_workload *)r->cap_pod.v[i]->block)->n_addrs;
	for (uint32_t i = 0; i < r->cap_svc.n; i++) {
		const struct wp_snap_service *b = r->cap_svc.v[i]->block;

		for (uint32_t p = 0; p < b->n_ports; p++)
			n_l7err += b->ports[p].routes ? b->ports[p].routes->n_errors : 0;
	}
	while (cap < n_keys * 2)
		cap *= 2;
	gws = wp_arena_alloc(&s->arena, sizeof(*gws) * (r->n_served + 1));
	svcs = wp_arena_alloc(&s->arena, sizeof(*svcs) * (r->cap_svc.n + 1));
	wls = wp_arena_alloc(&s->arena, sizeof(*wls) * (r->cap_pod.n + 1));
	t = wp_arena_alloc(&s->arena, sizeof(*t) * cap);
	errs = wp_arena_alloc(&s->arena, sizeof(*errs) * (r->n_errs + n_l7err + 1));
	if (!gws || !svcs || !wls || !t || !errs) {
		wp_arena_free(&s->arena);
		free(s);
		return NULL;
	}
	for (uint32_t i = 0; i < r->n_served; i++) {
		const struct wp_obj *g = r->served_gw[i]->gw;

		gws[i].ns = wp_arena_strdup(&s->arena, g->meta.ns);
		gws[i].name = wp_arena_strdup(&s->arena, g->meta.name);
		gws[i].class_name = wp_arena_strdup(&s->arena, g->u.gw.class_name);
		gws[i].waypoint_for = wp_arena_strdup(&s->arena, r->served_gw[i]->waypoint_for);
	}
	s->gateways = gws;
	s->n_gateways = r->n_served;
	s->dests = t;
	s->dest_mask = cap - 1;
	for (uint32_t i = 0; i < r->cap_svc.n; i++) {
		struct wp_snap_service *b = r->cap_svc.v[i]->block;

		b->refcnt++;
		svcs[s->n_services++] = b;
		gws[b->gw].n_services++;
		for (uint32_t p = 0; p < b->n_ports; p++)
			for (uint32_t v = 0; v < b->n_vips; v++) {
				struct wp_snap_dest d = {.kind = WP_DEST_SERVICE,
				                         .port_idx = (uint16_t)p,
				                         .gw = b->gw,
				                         .svc = b};

				d.key.addr = b->vips[v];
				d.key.port = b->ports[p].port;
				if (dest_put(t, s->dest_mask, &d))
					s->n_dests++;
			}
	}
	for (uint32_t i = 0; i < r->cap_pod.n; i++) {
		struct wp_snap_workload *b = r->cap_pod.v[i]->block;

		b->refcnt++;
		wls[s->n_workloads++] = b;
		gws[b->gw].n_workloads++;
		for (uint32_t v = 0; v < b->n_addrs; v++) {
			struct wp_snap_dest d = {.kind = WP_DEST_WORKLOAD, .gw = b->gw, .wl = b};

			d.key.addr = b->addrs[v];
			d.key.port = 0;
			if (dest_put(t, s->dest_mask, &d))
				s->n_dests++;
		}
	}
	s->services = svcs;
	s->workloads = wls;
	for (unsigned i = 0; i < r->n_errs; i++)
		errs[i] = wp_arena_strdup(&s->arena, r->errs[i].msg);
	s->n_errors = r->n_errs;
	/* route compilation errors; a DestinationRule problem shows up in every
	 * table that uses it: list it once */
	for (uint32_t i = 0; i < s->n_services; i++)
		for (uint32_t p = 0; p < svcs[i]->n_ports; p++) {
			const struct wp_route_table *t = svcs[i]->ports[p].routes;

			for (uint32_t k = 0; t && k < t->n_errors; k++) {
				bool dup = false;

				for (uint32_t j = r->n_errs; j < s->n_errors && !dup; j++)
					dup = !strcmp(errs[j], t->errors[k]);
				if (!dup)
					errs[s->n_errors++] = t->errors[k];
			}
		}
	s->errors = errs;
	s->version = ++r->version;
	clock_gettime(CLOCK_REALTIME, &ts);
	s->built_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	r->changed = false;
	return s;
}

/* ---- enrollment view ----------------------------------------------------------- */

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

	if (process(r))
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

unsigned wp_resolver_errors(const struct wp_resolver *r, const char *const **msgs)
{
	struct wp_resolver *w = (struct wp_resolver *)r;
	const char **v = realloc(w->err_view, sizeof(*v) * (r->n_errs + 1));

	if (!v) {
		*msgs = NULL;
		return 0;
	}
	for (unsigned i = 0; i < r->n_errs; i++)
		v[i] = r->errs[i].msg;
	w->err_view = v;
	*msgs = v;
	return r->n_errs;
}

size_t wp_resolver_count(const struct wp_resolver *r, enum wp_kind kind)
{
	return kind > WP_KIND_NONE && kind < WP_KIND_MAX ? r->objs[kind].n : 0;
}

/* ---- life cycle ------------------------------------------------------------------- */

const struct wp_source_sink *wp_resolver_sink(struct wp_resolver *r)
{
	return &r->sink;
}

struct wp_resolver *wp_resolver_create(const struct wp_served *served)
{
	struct wp_resolver *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->sink.ops = &sink_ops;
	r->sink.ctx = r;
	r->full = true;
	r->changed = true;
	for (int k = 1; k < WP_KIND_MAX; k++)
		if (hmap_init(&r->objs[k], 64))
			goto fail;
	if (hmap_init(&r->nss, 64) || hmap_init(&r->wps, 16))
		goto fail;
	if (served) {
		r->cfg = *served;
		r->cfg_names = calloc(served->n_gateways + 1, sizeof(char *));
		if (!r->cfg_names)
			goto fail;
		for (unsigned i = 0; i < served->n_gateways; i++)
			if (!(r->cfg_names[i] = strdup(served->gateways[i])))
				goto fail;
		if (served->class_name && !(r->cfg_class = strdup(served->class_name)))
			goto fail;
		if (served->cluster_domain && !(r->cfg_domain = strdup(served->cluster_domain)))
			goto fail;
		if (served->root_ns && !(r->cfg_root = strdup(served->root_ns)))
			goto fail;
		if (served->trust_domain && !(r->cfg_td = strdup(served->trust_domain)))
			goto fail;
		r->cfg_aliases = calloc(served->n_aliases + 1, sizeof(char *));
		if (!r->cfg_aliases)
			goto fail;
		for (unsigned i = 0; i < served->n_aliases; i++)
			if (!(r->cfg_aliases[i] = strdup(served->aliases[i])))
				goto fail;
	}
	return r;
fail:
	wp_resolver_destroy(r);
	return NULL;
}

void wp_resolver_destroy(struct wp_resolver *r)
{
	if (!r)
		return;
	for (int k = WP_KIND_MAX - 1; k > WP_KIND_NONE; k--) {
		if (!r->objs[k].b)
			continue;
		hmap_foreach(&r->objs[k], e)
		{
			struct rnode *n = wp_container_of(e, struct rnode, h);

			if (n->obj->kind == WP_KIND_SERVICE)
				svc_block_put(n->block);
			else if (n->obj->kind == WP_KIND_POD)
				wl_block_put(n->block);
			free(n->wp);
			wp_obj_free(n->obj);
			free(n);
		}
		hmap_fini(&r->objs[k]);
	}
	if (r->nss.b) {
		hmap_foreach(&r->nss, e) free(wp_container_of(e, struct rns, h));
		hmap_fini(&r->nss);
	}
	if (r->wps.b) {
		hmap_foreach(&r->wps, e) free(wp_container_of(e, struct rwp, h));
		hmap_fini(&r->wps);
	}
	free(r->served_gw);
	for (unsigned i = 0; r->cfg_names && i < r->cfg.n_gateways; i++)
		free(r->cfg_names[i]);
	free(r->cfg_names);
	free(r->cfg_class);
	free(r->cfg_domain);
	free(r->cfg_root);
	free(r->cfg_td);
	for (unsigned i = 0; r->cfg_aliases && i < r->cfg.n_aliases; i++)
		free(r->cfg_aliases[i]);
	free(r->cfg_aliases);
	/* every block (and its tables) is gone: the cache is empty */
	WP_ASSERT(r->authz_dbs.n == 0);
	free(r->cap_svc.v);
	free(r->cap_pod.v);
	for (unsigned i = 0; i < r->n_errs; i++) {
		free(r->errs[i].origin);
		free(r->errs[i].msg);
	}
	free(r->errs);
	free(r->err_view);
	free(r);
}
