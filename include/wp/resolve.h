/*
 * The resolver: the control plane's object store plus everything computed
 * from it. It receives object events (it is a wp_source_sink), computes
 * istiod's enrollment for every Service and Pod (DESIGN §2), and builds
 * snapshots (wp/snapshot_types.h) for the Gateways this appliance serves.
 *
 * Work is incremental: an event marks the objects it can affect (a Pod's
 * label -> that Pod and the Services selecting it; a Namespace -> its
 * Services and Pods; a Gateway or GatewayClass -> everything), and
 * wp_resolver_build() recomputes only those, reusing the unchanged service
 * and workload blocks of the previous snapshot. Control-plane thread only.
 */
#ifndef WP_RESOLVE_H
#define WP_RESOLVE_H

#include <stdbool.h>
#include <stdint.h>

#include "wp/common.h"
#include "wp/model_types.h"
#include "wp/snapshot_types.h"
#include "wp/source.h"

/* Which Gateways this appliance serves: the listed ones ("ns/name") plus,
 * when class_name is set, every Gateway of that gatewayClassName. */
struct wp_served {
	unsigned n_gateways;
	const char *const *gateways; /* "ns/name" */
	const char *class_name;      /* NULL or "" = none by class */
	const char *cluster_domain;  /* NULL = "cluster.local" */
	/* AuthorizationPolicy attachment and principals (cp/resolve/authz_compile.h) */
	const char *root_ns;      /* NULL = "istio-system" */
	const char *trust_domain; /* NULL = "cluster.local" */
	unsigned n_aliases;       /* trust domain aliases */
	const char *const *aliases;
};

enum wp_enroll_reason {
	WP_ENROLL_BOUND = 0,         /* WaypointBound */
	WP_ENROLL_NONE,              /* NoWaypoint */
	WP_ENROLL_UNSUPPORTED,       /* UnsupportedTrafficType */
	WP_ENROLL_NOT_READY,         /* WaypointIsNotReady */
	WP_ENROLL_ATTACHMENT_DENIED, /* AttachmentDenied */
};

/* One row of the enrollment view (valid during the callback). */
struct wp_enrollment {
	enum wp_kind kind; /* WP_KIND_SERVICE or WP_KIND_POD */
	const char *ns;
	const char *name;
	const char *waypoint; /* "ns/name" when bound (or the one that failed), else NULL */
	bool bound;
	bool served;        /* bound to a Gateway this appliance serves */
	bool via_namespace; /* decided by the namespace's label */
	enum wp_enroll_reason reason;
	const char *message; /* human-readable why */
};

typedef void (*wp_enrollment_cb)(void *ctx, const struct wp_enrollment *e);

struct wp_resolver;

/* A resolver serving *served (copied). NULL on allocation failure. */
struct wp_resolver *wp_resolver_create(const struct wp_served *served);
void wp_resolver_destroy(struct wp_resolver *r);

/* The sink sources deliver into (lives as long as the resolver). */
const struct wp_source_sink *wp_resolver_sink(struct wp_resolver *r);

/* Direct event entry points (what the sink calls). upsert takes obj. */
int wp_resolver_upsert(struct wp_resolver *r, struct wp_obj *obj);
int wp_resolver_remove(struct wp_resolver *r, enum wp_kind kind, const char *ns, const char *name);

/* True when events arrived since the last build. */
bool wp_resolver_dirty(const struct wp_resolver *r);

/*
 * Recomputes what changed and returns a new snapshot (the caller owns it:
 * publish it or wp_snapshot_free it) with version = previous + 1. NULL on
 * allocation failure (the resolver stays consistent; retry later).
 */
struct wp_snapshot *wp_resolver_build(struct wp_resolver *r);

/* Calls cb for every Service and Pod, sorted by kind, namespace, name.
 * Brings enrollment up to date first. Returns the number of rows. */
size_t wp_resolver_enrollment(struct wp_resolver *r, wp_enrollment_cb cb, void *ctx);

/* "WaypointBound", "NoWaypoint", ... */
const char *wp_enroll_reason_name(enum wp_enroll_reason reason);

/* The configuration errors currently standing (rejected objects/files),
 * in origin order. Valid until the next event. */
unsigned wp_resolver_errors(const struct wp_resolver *r, const char *const **msgs);

/* The VirtualServices set aside on a port an HTTPRoute binds, and the
 * VirtualService fields compiled without effect (fault, retryOn), in the
 * route tables compiled since the last call (each recompilation of a
 * table counts again); resets both. */
void wp_resolver_take_vs_warnings(struct wp_resolver *r, uint64_t *conflicts,
                                  uint64_t *not_applied);

/* The Telemetry parts reported as not applied (wp_snap_tel_info) by the
 * builds since the last call, counted once per change of the Telemetries
 * or Gateways; resets the count. */
uint64_t wp_resolver_take_tel_not_applied(struct wp_resolver *r);

/* Object counts per kind, for statistics. */
size_t wp_resolver_count(const struct wp_resolver *r, enum wp_kind kind);

/* Protocol of a Service port (appProtocol, else name prefix). */
enum wp_app_proto wp_resolve_port_proto(const char *name, const char *app_protocol);

#endif /* WP_RESOLVE_H */
