/*
 * Internals of the resolver (wp/resolve.h), shared by its three pieces:
 *
 *   resolver.c   the object store: one hash map per kind keyed "ns/name"
 *                (cluster-scoped kinds by name), a bucket per namespace
 *                listing its Services, Pods and EndpointSlices, the source
 *                sink, the dirty marking of events and their draining
 *   enroll.c     istiod's use-waypoint algorithm: the waypoint table and
 *                each Service's and Pod's enrollment, and its JSON view
 *   snap_build.c the snapshot: per-Service and per-Pod blocks (endpoints,
 *                L7 route tables, authorization tables) and the
 *                destination table assembled from them
 *   telemetry.c  the Telemetry resources in force for each served Gateway
 *
 * Nothing outside cp/resolve includes this file. Functions one piece
 * defines and another calls are named wp_resolver_<what>, with hidden
 * visibility, so they never leave the library.
 */
#ifndef WP_CP_RESOLVE_RESOLVER_INT_H
#define WP_CP_RESOLVE_RESOLVER_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "authz_compile.h"
#include "hmap.h"
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
	/* VirtualService warnings of the route tables compiled since the last
	 * wp_resolver_take_vs_warnings() (struct wp_route_table n_vs_*) */
	uint64_t vs_conflicts, vs_not_applied;
	/* Telemetry parts not applied, counted when the Telemetries or the
	 * Gateways changed (tel_dirty) since the last build */
	bool tel_dirty;
	uint64_t tel_not_applied;
};

#pragma GCC visibility push(hidden)

/* resolver.c */

/* The namespace bucket called name; created empty when create is set. NULL
 * when absent (or out of memory). */
struct rns *wp_resolver_ns_get(struct wp_resolver *r, const char *name, bool create);
/* Drains the dirty lists: the waypoint table when r->full, then enrollments,
 * then blocks. 0 or -ENOMEM (what is left stays on its list). */
int wp_resolver_process(struct wp_resolver *r);

/* enroll.c */

/* Rebuilds the waypoint table (r->wps, r->served_gw) from the Gateways. */
int wp_resolver_rebuild_waypoints(struct wp_resolver *r);
/* Recomputes n's enrollment; true when the result changed. */
bool wp_resolver_enroll(struct wp_resolver *r, struct rnode *n);

/* snap_build.c */

/* Rebuilds n's block. 0 or -ENOMEM (n stays on the block list). */
int wp_resolver_rebuild_block(struct wp_resolver *r, struct rnode *n);
/* Drops n's block and takes n out of the captured set. */
void wp_resolver_drop_block(struct wp_resolver *r, struct rnode *n);
/* telemetry.c: fills gws[i].telemetry and .telemetry_info (allocated
 * from a, the snapshot's arena) for the n_gws served Gateways; *not_applied
 * gets the number of parts reported as not applied. 0 or -ENOMEM. */
int wp_resolver_telemetry(struct wp_resolver *r, struct wp_arena *a, struct wp_snap_gateway *gws,
                          uint32_t n_gws, uint64_t *not_applied);
/* Release a reference to a block; the last one frees it. NULL is a no-op. */
void wp_resolver_svc_block_put(struct wp_snap_service *b);
void wp_resolver_wl_block_put(struct wp_snap_workload *b);

#pragma GCC visibility pop

#endif
