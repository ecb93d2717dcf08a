/*
 * Route compilation (control plane): HTTPRoutes attached to a Service (or,
 * when none binds a port, the VirtualServices naming it) and the
 * DestinationRules of the services they reach -> one immutable
 * struct wp_route_table (wp/route.h) per captured service port.
 *
 * The compiler reads the spec node trees the model kept (struct wp_obj.spec)
 * and rejects malformed parts one by one, the way the model rejects
 * documents: a bad rule (match, filter, regex Hyperscan cannot compile) is
 * left out with "ORIGIN:LINE: HTTPRoute NS/NAME: FIELD: problem" in the
 * table's error list while the route's other rules still compile; a bad
 * backendRef keeps its weight and answers 500 (Gateway API); a bad
 * DestinationRule field falls back to the default for that field.
 *
 * Endpoints come from the resolver through a lookup callback, so the compiler
 * knows nothing about the object store and can be tested alone.
 */
#ifndef WP_CP_ROUTE_COMPILE_H
#define WP_CP_ROUTE_COMPILE_H

#include <stdint.h>

#include "wp/model_types.h"
#include "wp/route.h"
#include "wp/snapshot_types.h"

/* A service port's endpoints as the lookup callback reports them. */
struct wp_route_svc_eps {
	const char *port_name; /* the service port's name, may be "" */
	uint32_t n;
	const struct wp_snap_endpoint *eps;
	/* labels[i]: the labels of eps[i]'s Pod (NULL when unknown); only
	 * read during the build (subsets). */
	const struct wp_labels *const *labels;
};

/* Finds Service ns/name port <port>. Allocate what out points to in <a> (the
 * table's arena) or in memory that outlives the build. Returns 0, -ENOENT (no
 * such Service) or -ESRCH (no such port). */
typedef int (*wp_route_lookup_cb)(void *ctx, const char *ns, const char *name, uint16_t port,
                                  struct wp_arena *a, struct wp_route_svc_eps *out);

struct wp_route_compile_in {
	const char *ns; /* the destination Service and port */
	const char *name;
	uint16_t port;
	const char *port_name;              /* may be NULL */
	const char *cluster_domain;         /* NULL: cluster.local */
	uint32_t n_routes;                  /* HTTPRoutes; those whose parentRefs name this */
	const struct wp_obj *const *routes; /* service port (or all ports) are used */
	uint32_t n_drs;
	const struct wp_obj *const *drs; /* every DestinationRule */
	uint32_t n_vs;                   /* VirtualServices binding the Service */
	const struct wp_obj *const *vs;  /* (wp_route_vs_binds); used when no
	                                  * HTTPRoute binds the port */
	wp_route_lookup_cb lookup;
	void *ctx;
};

/* True when <route> has a parentRef to Service ns/name (any port). */
bool wp_route_attaches(const struct wp_obj *route, const char *ns, const char *name);

/* True when VirtualService <vs> applies to Service ns/name in the mesh: a
 * host names it ("name" in the VirtualService's namespace, "name.ns",
 * "name.ns.svc" or "name.ns.svc.<domain>"; domain NULL: cluster.local) and
 * spec.gateways is empty or holds "mesh". */
bool wp_route_vs_binds(const struct wp_obj *vs, const char *ns, const char *name,
                       const char *domain);

/*
 * Builds the table. Returns it (free with wp_route_table_free()) or NULL with
 * errno ENOMEM (or EINVAL for a bad input). Configuration problems never
 * fail the build: they are listed in table->errors.
 */
struct wp_route_table *wp_route_table_build(const struct wp_route_compile_in *in);

/* The cluster for (ns, name, port, subset) in <t> (subset NULL = whole
 * service), or NULL. */
const struct wp_route_cluster *wp_route_cluster_find(const struct wp_route_table *t, const char *ns,
                                                     const char *name, uint16_t port,
                                                     const char *subset);

/* Parses a Gateway API duration ("1h", "500ms", "1m30s"; 1 to 4 parts of
 * 1-5 digits each). 0 or -EINVAL. */
int wp_route_parse_duration(const char *s, uint32_t *ms);

#endif /* WP_CP_ROUTE_COMPILE_H */
