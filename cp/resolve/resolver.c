/*
 * The resolver (see wp/resolve.h): its object store, and the incremental
 * bookkeeping that decides what wp_resolver_build() recomputes. The other
 * pieces are enroll.c (istiod's enrollment) and snap_build.c (the snapshot);
 * resolver_int.h lists them.
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

#include "resolver_int.h"

/* ---- helpers --------------------------------------------------------------- */

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

struct rns *wp_resolver_ns_get(struct wp_resolver *r, const char *name, bool create)
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

/* Route tables of captured services: all of them (an HTTPRoute, a
 * VirtualService or a DestinationRule changed), or those that reach other services (some
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
	         k == WP_KIND_AUTHORIZATIONPOLICY || k == WP_KIND_VIRTUALSERVICE)
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
		r->tel_dirty = true;
		break;
	case WP_KIND_TELEMETRY:
		r->tel_dirty = true;
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
			n->ns = wp_resolver_ns_get(r, obj->meta.name, true);
			if (!n->ns) {
				free(n);
				wp_obj_free(obj);
				return -ENOMEM;
			}
			n->ns->nsobj = n;
		} else if (wp_kind_namespaced(k)) {
			n->ns = wp_resolver_ns_get(r, obj->meta.ns, true);
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
			wp_resolver_drop_block(r, n);
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

/* ---- draining -------------------------------------------------------------- */

int wp_resolver_process(struct wp_resolver *r)
{
	if (r->full) {
		if (wp_resolver_rebuild_waypoints(r))
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
		if (wp_resolver_enroll(r, n))
			mark_block(r, n);
	}
	while (r->block_list) {
		struct rnode *n = r->block_list;

		if (wp_resolver_rebuild_block(r, n))
			return -ENOMEM;
		r->block_list = n->bnext;
		n->in_block = false;
	}
	return 0;
}

/* ---- views and life cycle -------------------------------------------------- */

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

void wp_resolver_take_vs_warnings(struct wp_resolver *r, uint64_t *conflicts, uint64_t *not_applied)
{
	*conflicts = r->vs_conflicts;
	*not_applied = r->vs_not_applied;
	r->vs_conflicts = 0;
	r->vs_not_applied = 0;
}

uint64_t wp_resolver_take_tel_not_applied(struct wp_resolver *r)
{
	uint64_t n = r->tel_not_applied;

	r->tel_not_applied = 0;
	return n;
}

size_t wp_resolver_count(const struct wp_resolver *r, enum wp_kind kind)
{
	return kind > WP_KIND_NONE && kind < WP_KIND_MAX ? r->objs[kind].n : 0;
}

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
	r->tel_dirty = true;
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
				wp_resolver_svc_block_put(n->block);
			else if (n->obj->kind == WP_KIND_POD)
				wp_resolver_wl_block_put(n->block);
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
