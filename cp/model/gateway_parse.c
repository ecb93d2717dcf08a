/*
 * gateway.networking.k8s.io kinds (parse_int.h): Gateway (class, listeners
 * with their allowedRoutes, spec and status addresses) and the HTTPRoute
 * fields attachment needs (parentRefs, hostnames). The HTTPRoute rules
 * are read by the route compiler from the spec tree the object keeps
 * (cp/resolve/route_compile.c). GatewayClass has only its controllerName,
 * read in parse.c.
 */
#include <stdio.h>
#include <string.h>

#include "parse_int.h"

static void get_gw_addrs(struct pctx *p, const struct wp_ynode *map, const char *field,
                         uint32_t *n_out, const struct wp_gw_address **out)
{
	const struct wp_ynode *s = wp_model_get_typed(p, map, "addresses", WP_YNODE_SEQ, field);
	struct wp_gw_address *a;
	char f[128];
	uint32_t i = 0;

	*n_out = 0;
	if (!s || !s->n)
		return;
	a = wp_model_palloc(p, sizeof(*a) * s->n);
	if (!a)
		return;
	for (const struct wp_ynode *c = s->child; c && !p->failed; c = c->next, i++) {
		snprintf(f, sizeof(f), "%s[%u]", field, i);
		if (c->type != WP_YNODE_MAP) {
			wp_model_fail(p, c, f, "expected a mapping");
			return;
		}
		a[i].type = wp_model_get_str(p, c, "type", f, false);
		if (!a[i].type)
			a[i].type = "IPAddress";
		snprintf(f, sizeof(f), "%s[%u].value", field, i);
		a[i].value = wp_model_get_str(p, c, "value", f, true);
	}
	*out = a;
	*n_out = i;
}

void wp_model_read_gateway(struct pctx *p, const struct wp_ynode *spec,
                           const struct wp_ynode *status)
{
	struct wp_k8s_gateway *g = &p->o->u.gw;
	const struct wp_ynode *ls;
	char f[128];
	uint32_t i = 0;

	if (!spec) {
		wp_model_fail(p, NULL, "spec", "required field missing");
		return;
	}
	g->class_name =
	        wp_model_get_str(p, spec, "gatewayClassName", "spec.gatewayClassName", true);
	ls = wp_model_get_typed(p, spec, "listeners", WP_YNODE_SEQ, "spec.listeners");
	if (!p->failed && (!ls || !ls->n)) {
		wp_model_fail(p, spec, "spec.listeners", "at least one listener is required");
		return;
	}
	if (p->failed)
		return;
	struct wp_gw_listener *l = wp_model_palloc(p, sizeof(*l) * ls->n);
	if (!l)
		return;
	for (const struct wp_ynode *c = ls->child; c && !p->failed; c = c->next, i++) {
		const struct wp_ynode *ar, *ns, *sel;

		snprintf(f, sizeof(f), "spec.listeners[%u]", i);
		if (c->type != WP_YNODE_MAP) {
			wp_model_fail(p, c, f, "expected a mapping");
			return;
		}
		snprintf(f, sizeof(f), "spec.listeners[%u].name", i);
		l[i].name = wp_model_get_str(p, c, "name", f, true);
		snprintf(f, sizeof(f), "spec.listeners[%u].protocol", i);
		l[i].protocol = wp_model_get_str(p, c, "protocol", f, true);
		snprintf(f, sizeof(f), "spec.listeners[%u].hostname", i);
		l[i].hostname = wp_model_get_str(p, c, "hostname", f, false);
		snprintf(f, sizeof(f), "spec.listeners[%u].port", i);
		if (!wp_model_get_port(p, c, "port", f, true, false, &l[i].port))
			return;
		snprintf(f, sizeof(f), "spec.listeners[%u].allowedRoutes", i);
		ar = wp_model_get_typed(p, c, "allowedRoutes", WP_YNODE_MAP, f);
		snprintf(f, sizeof(f), "spec.listeners[%u].allowedRoutes.namespaces", i);
		ns = wp_model_get_typed(p, ar, "namespaces", WP_YNODE_MAP, f);
		if (ns) {
			const char *from;

			l[i].has_allowed_ns = true;
			snprintf(f, sizeof(f), "spec.listeners[%u].allowedRoutes.namespaces.from",
			         i);
			from = wp_model_get_str(p, ns, "from", f, false);
			if (!from || !strcmp(from, "Same"))
				l[i].from = WP_ROUTES_FROM_SAME;
			else if (!strcmp(from, "All"))
				l[i].from = WP_ROUTES_FROM_ALL;
			else if (!strcmp(from, "Selector"))
				l[i].from = WP_ROUTES_FROM_SELECTOR;
			else {
				wp_model_fail(p, wp_ynode_get(ns, "from"), f,
				              "must be All, Same or Selector, got %s", from);
				return;
			}
			snprintf(f, sizeof(f),
			         "spec.listeners[%u].allowedRoutes.namespaces.selector", i);
			sel = wp_model_get_typed(p, ns, "selector", WP_YNODE_MAP, f);
			if (sel) {
				l[i].has_selector = true;
				wp_model_get_selector(p, sel, f, &l[i].selector);
			}
		}
	}
	g->listeners = l;
	g->n_listeners = i;
	get_gw_addrs(p, spec, "spec.addresses", &g->n_spec_addrs, &g->spec_addrs);
	if (status)
		get_gw_addrs(p, status, "status.addresses", &g->n_status_addrs, &g->status_addrs);
}

void wp_model_read_httproute(struct pctx *p, const struct wp_ynode *spec)
{
	struct wp_k8s_httproute *r = &p->o->u.route;
	const struct wp_ynode *pr;
	char f[96];
	uint32_t i = 0;

	if (!spec)
		return;
	pr = wp_model_get_typed(p, spec, "parentRefs", WP_YNODE_SEQ, "spec.parentRefs");
	if (pr && pr->n) {
		struct wp_parent_ref *r2 = wp_model_palloc(p, sizeof(*r2) * pr->n);

		if (!r2)
			return;
		for (const struct wp_ynode *c = pr->child; c && !p->failed; c = c->next, i++) {
			snprintf(f, sizeof(f), "spec.parentRefs[%u]", i);
			if (c->type != WP_YNODE_MAP) {
				wp_model_fail(p, c, f, "expected a mapping");
				return;
			}
			r2[i].group = wp_model_get_str(p, c, "group", f, false);
			r2[i].kind = wp_model_get_str(p, c, "kind", f, false);
			if (!r2[i].kind)
				r2[i].kind = "Gateway";
			if (!r2[i].group)
				r2[i].group = strcmp(r2[i].kind, "Service")
				                      ? "gateway.networking.k8s.io"
				                      : "";
			r2[i].ns = wp_model_get_str(p, c, "namespace", f, false);
			if (!r2[i].ns)
				r2[i].ns = p->o->meta.ns;
			r2[i].section_name = wp_model_get_str(p, c, "sectionName", f, false);
			snprintf(f, sizeof(f), "spec.parentRefs[%u].name", i);
			r2[i].name = wp_model_get_str(p, c, "name", f, true);
			snprintf(f, sizeof(f), "spec.parentRefs[%u].port", i);
			wp_model_get_port(p, c, "port", f, false, false, &r2[i].port);
		}
		r->parents = r2;
		r->n_parents = i;
	}
	wp_model_get_strlist(p, spec, "hostnames", "spec.hostnames", &r->n_hostnames,
	                     &r->hostnames);
}
