/*
 * networking.istio.io kinds (parse_int.h): ServiceEntry (hosts, addresses,
 * resolution, location, ports) and VirtualService (hosts, gateways, and the
 * shape of its http rules). A DestinationRule's host is read in parse.c;
 * the rest of it, and a VirtualService's rules, by the route compiler from
 * the spec tree the object keeps (cp/resolve/route_compile.c,
 * cp/resolve/vs_compile.c).
 */
#include <stdio.h>
#include <string.h>

#include "parse_int.h"

void wp_model_read_serviceentry(struct pctx *p, const struct wp_ynode *spec)
{
	struct wp_k8s_serviceentry *se = &p->o->u.se;
	const struct wp_ynode *ports;
	char f[96];
	uint32_t i = 0;

	if (!spec) {
		wp_model_fail(p, NULL, "spec", "required field missing");
		return;
	}
	wp_model_get_strlist(p, spec, "hosts", "spec.hosts", &se->n_hosts, &se->hosts);
	if (!p->failed && !se->n_hosts) {
		wp_model_fail(p, spec, "spec.hosts", "at least one host is required");
		return;
	}
	wp_model_get_strlist(p, spec, "addresses", "spec.addresses", &se->n_addresses,
	                     &se->addresses);
	se->resolution = wp_model_get_str(p, spec, "resolution", "spec.resolution", false);
	if (!se->resolution)
		se->resolution = "NONE";
	se->location = wp_model_get_str(p, spec, "location", "spec.location", false);
	if (!se->location)
		se->location = "MESH_EXTERNAL";
	ports = wp_model_get_typed(p, spec, "ports", WP_YNODE_SEQ, "spec.ports");
	if (ports && ports->n) {
		struct wp_se_port *sp = wp_model_palloc(p, sizeof(*sp) * ports->n);

		if (!sp)
			return;
		for (const struct wp_ynode *c = ports->child; c && !p->failed; c = c->next, i++) {
			snprintf(f, sizeof(f), "spec.ports[%u]", i);
			if (c->type != WP_YNODE_MAP) {
				wp_model_fail(p, c, f, "expected a mapping");
				return;
			}
			sp[i].name = wp_model_get_str(p, c, "name", f, false);
			sp[i].protocol = wp_model_get_str(p, c, "protocol", f, false);
			snprintf(f, sizeof(f), "spec.ports[%u].number", i);
			if (!wp_model_get_port(p, c, "number", f, true, false, &sp[i].number))
				return;
			snprintf(f, sizeof(f), "spec.ports[%u].targetPort", i);
			if (!wp_model_get_port(p, c, "targetPort", f, false, false,
			                       &sp[i].target_port))
				return;
		}
		se->ports = sp;
		se->n_ports = i;
	}
}

void wp_model_read_virtualservice(struct pctx *p, const struct wp_ynode *spec)
{
	struct wp_k8s_virtualservice *vs = &p->o->u.vs;
	const struct wp_ynode *http;
	char f[64];
	uint32_t i = 0;

	if (!spec) {
		wp_model_fail(p, NULL, "spec", "required field missing");
		return;
	}
	wp_model_get_strlist(p, spec, "hosts", "spec.hosts", &vs->n_hosts, &vs->hosts);
	if (!p->failed && !vs->n_hosts) {
		wp_model_fail(p, spec, "spec.hosts", "at least one host is required");
		return;
	}
	wp_model_get_strlist(p, spec, "gateways", "spec.gateways", &vs->n_gateways, &vs->gateways);
	/* the rules themselves are compiled per service port, where a bad rule
	 * is left out alone; only a shape that cannot be rules fails here */
	http = wp_model_get_typed(p, spec, "http", WP_YNODE_SEQ, "spec.http");
	for (const struct wp_ynode *c = http ? http->child : NULL; c && !p->failed;
	     c = c->next, i++) {
		snprintf(f, sizeof(f), "spec.http[%u]", i);
		if (c->type != WP_YNODE_MAP)
			wp_model_fail(p, c, f, "expected a mapping");
	}
}
