/*
 * Snapshot building, the resolver's output side (resolver_int.h). Each
 * Service or Pod bound to a waypoint this instance serves has a block: a
 * Service's holds its VIPs and, per port, its endpoints (from its
 * EndpointSlices, else from its selector over the namespace's Pods), the
 * compiled L7 route table (route_compile.h) and the AuthorizationPolicy
 * table (authz_compile.h); a Pod's holds its addresses. Blocks are rebuilt
 * only when an event marked them, and shared, reference counted, with the
 * snapshots already published. wp_resolver_build() drains the dirty lists
 * and assembles a snapshot from the current blocks: the served gateways,
 * the block arrays, the destination table (snap_dest.h) and the errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "resolver_int.h"
#include "route_compile.h"
#include "snap_dest.h"

/* ---- shared blocks --------------------------------------------------------- */

void wp_resolver_svc_block_put(struct wp_snap_service *b)
{
	if (b && --b->refcnt == 0) {
		for (uint32_t i = 0; i < b->n_ports; i++)
			wp_route_table_free((struct wp_route_table *)b->ports[i].routes);
		wp_authz_table_free((struct wp_authz_table *)b->authz);
		wp_arena_free(&b->arena);
		free(b);
	}
}

void wp_resolver_wl_block_put(struct wp_snap_workload *b)
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
	for (uint32_t i = 0; i < s->n_gateways; i++)
		wp_authz_table_free((struct wp_authz_table *)s->gateways[i].authz);
	for (uint32_t i = 0; i < s->n_services; i++)
		wp_resolver_svc_block_put(s->services[i]);
	for (uint32_t i = 0; i < s->n_workloads; i++)
		wp_resolver_wl_block_put(s->workloads[i]);
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

void wp_resolver_drop_block(struct wp_resolver *r, struct rnode *n)
{
	if (n->obj->kind == WP_KIND_SERVICE) {
		cap_remove(&r->cap_svc, n);
		wp_resolver_svc_block_put(n->block);
	} else {
		cap_remove(&r->cap_pod, n);
		wp_resolver_wl_block_put(n->block);
	}
	n->block = NULL;
}

/* ---- blocks ---------------------------------------------------------------- */

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

/* An endpoint's Pod telemetry metadata, copied into the block's arena. */
static void copy_meta(struct wp_arena *a, struct wp_snap_endpoint *ep)
{
	ep->workload = wp_arena_strdup(a, ep->workload);
	ep->canonical_name = wp_arena_strdup(a, ep->canonical_name);
	ep->canonical_revision = wp_arena_strdup(a, ep->canonical_revision);
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
				if (pod) {
					ep[c].workload = wp_arena_strdup(a, pod->u.pod.workload);
					ep[c].canonical_name =
					        wp_arena_strdup(a, pod->u.pod.canonical_name);
					ep[c].canonical_revision =
					        wp_arena_strdup(a, pod->u.pod.canonical_revision);
				}
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
			ep[c].workload = pod->workload;
			ep[c].canonical_name = pod->canonical_name;
			ep[c].canonical_revision = pod->canonical_revision;
			ep[c].ambient = in_ambient(n->ns, p->obj);
			if (labels)
				labels[c] = &p->obj->meta.labels;
		}
		c++;
	}
	return c;
}

/* ---- L7 policy ------------------------------------------------------------- */

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
			copy_meta(a, &ep[j]);
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
static int authz_for(struct wp_resolver *r, uint32_t gw_idx, uint8_t dest_kind, const char *ns,
                     const char *name, const struct wp_authz_table **out)
{
	const struct wp_obj *gw = gw_idx < r->n_served ? r->served_gw[gw_idx]->gw : NULL;
	struct objvec pol = {0};
	struct wp_authz_compile_in in = {
	        .gw_ns = gw ? gw->meta.ns : NULL,
	        .gw_name = gw ? gw->meta.name : NULL,
	        .gw_class = gw ? gw->u.gw.class_name : NULL,
	        .root_ns = r->cfg_root,
	        .trust_domain = r->cfg_td,
	        .n_aliases = r->cfg.n_aliases,
	        .aliases = (const char *const *)r->cfg_aliases,
	        .dest_kind = dest_kind,
	        .dest_ns = ns,
	        .dest_name = name,
	        .cache = &r->authz_dbs,
	};

	/* No policy at all: no table, which reads as "nothing applies" (and
	 * spares a compile per target in a cluster without policies). */
	*out = NULL;
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
	*out = wp_authz_compile(&in);
	free(pol.v);
	return *out ? 0 : -ENOMEM;
}

/* Compiles the AuthorizationPolicies that attach to block b (a Service
 * behind waypoint b->gw) into b->authz (cp/resolve/authz_compile.h). */
static int build_authz(struct wp_resolver *r, struct wp_snap_service *b)
{
	return authz_for(r, b->gw, WP_AUTHZ_DEST_SERVICE, b->ns, b->name, &b->authz);
}

/* Compiles the route table of every port of block b (Service n). */
static int build_l7(struct wp_resolver *r, struct rnode *n, struct wp_snap_service *b)
{
	struct objvec routes = {0}, drs = {0}, vss = {0};
	size_t nr = r->objs[WP_KIND_HTTPROUTE].n, nd = r->objs[WP_KIND_DESTINATIONRULE].n,
	       nv = r->objs[WP_KIND_VIRTUALSERVICE].n;
	int rc = 0;

	routes.v = malloc(sizeof(*routes.v) * (nr + 1));
	drs.v = malloc(sizeof(*drs.v) * (nd + 1));
	vss.v = malloc(sizeof(*vss.v) * (nv + 1));
	if (!routes.v || !drs.v || !vss.v) {
		rc = -ENOMEM;
		goto out;
	}
	hmap_foreach(&r->objs[WP_KIND_VIRTUALSERVICE], e)
	{
		const struct wp_obj *o = wp_container_of(e, struct rnode, h)->obj;

		if (wp_route_vs_binds(o, b->ns, b->name, r->cfg_domain))
			vss.v[vss.n++] = o;
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
		        .n_vs = vss.n,
		        .vs = vss.v,
		        .lookup = l7_lookup,
		        .ctx = r,
		};
		struct wp_route_table *t = wp_route_table_build(&in);

		if (!t) {
			rc = -ENOMEM;
			break;
		}
		p->routes = t;
		r->vs_conflicts += t->n_vs_conflicts;
		r->vs_not_applied += t->n_vs_not_applied;
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
	free(vss.v);
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
			copy_meta(a, &ep[j]);
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
	b->workload = wp_arena_strdup(a, p->workload);
	b->canonical_name = wp_arena_strdup(a, p->canonical_name);
	b->canonical_revision = wp_arena_strdup(a, p->canonical_revision);
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
int wp_resolver_rebuild_block(struct wp_resolver *r, struct rnode *n)
{
	bool svc = n->obj->kind == WP_KIND_SERVICE;
	void *nb;

	if (!n->bound || !n->served || (!svc && !n->obj->u.pod.n_ips)) {
		wp_resolver_drop_block(r, n);
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
		wp_resolver_svc_block_put(n->block);
	else
		wp_resolver_wl_block_put(n->block);
	n->block = nb;
	if (cap_add(svc ? &r->cap_svc : &r->cap_pod, n)) {
		wp_resolver_drop_block(r, n);
		return -ENOMEM;
	}
	return 0;
}

/* ---- snapshot -------------------------------------------------------------- */

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

	if (wp_resolver_process(r))
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
		/* what applies to a CONNECT addressed to one of its workloads */
		if (authz_for(r, i, WP_AUTHZ_DEST_NONE, NULL, NULL, &gws[i].authz) != 0) {
			for (uint32_t k = 0; k < i; k++)
				wp_authz_table_free((struct wp_authz_table *)gws[k].authz);
			wp_arena_free(&s->arena);
			free(s);
			return NULL;
		}
	}
	{
		uint64_t na;

		if (wp_resolver_telemetry(r, &s->arena, gws, r->n_served, &na) != 0) {
			for (uint32_t k = 0; k < r->n_served; k++)
				wp_authz_table_free((struct wp_authz_table *)gws[k].authz);
			wp_arena_free(&s->arena);
			free(s);
			return NULL;
		}
		if (r->tel_dirty)
			r->tel_not_applied += na;
		r->tel_dirty = false;
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
