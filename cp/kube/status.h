/*
 * The Gateway status writer behind the Kubernetes source (internal to
 * cp/kube; see kube_source.h for what it writes and when). The source's
 * watch threads hand it copies of Gateways, GatewayClasses and
 * AuthorizationPolicies; its own thread decides which it owns and writes
 * their status (policies: the WaypointAccepted condition, authz_status.c).
 */
#ifndef WP_CP_KUBE_STATUS_H
#define WP_CP_KUBE_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "kube_source.h"

struct wp_kube_status;

/* Copies what it needs from cfg. NULL on error. */
struct wp_kube_status *wp_kube_status_create(const struct wp_kube_source_config *cfg);
/* Starts the writer thread. 0 or -errno. */
int wp_kube_status_start(struct wp_kube_status *st);
/* Stops the thread and frees everything. */
void wp_kube_status_destroy(struct wp_kube_status *st);

/* A Gateway (res WP_KUBE_RES_GATEWAY), GatewayClass or AuthorizationPolicy
 * was added or changed; obj is borrowed (copied: a policy's metadata and
 * targetRefs only). Any thread. */
void wp_kube_status_update(struct wp_kube_status *st, int res, json_t *obj);
/* The Services of the published snapshot's enrollment rows
 * (wp_enrollment_json with details; borrowed, copied): which waypoint each
 * is bound to and whether this appliance serves it. Policies whose
 * Service targetRefs changed binding are rewritten. Any thread. */
void wp_kube_status_services(struct wp_kube_status *st, json_t *rows);

/* It was deleted. Any thread. */
void wp_kube_status_forget(struct wp_kube_status *st, int res, const char *ns, const char *name);

uint64_t wp_kube_status_writes(struct wp_kube_status *st);
/* Gateways, GatewayClasses and policies whose status is to be written or
 * being written now (0: the writer is idle). */
unsigned wp_kube_status_pending(struct wp_kube_status *st);
/* Adds the writer's counters to out[WP_CTR_MAX]. */
void wp_kube_status_counters(struct wp_kube_status *st, uint64_t *out);
struct wp_kube_lease_info;
/* Fills out from the writer's Lease; false without leader election. */
bool wp_kube_status_lease(struct wp_kube_status *st, struct wp_kube_lease_info *out);
/* The writer's Lease itself (NULL without leader election), for the
 * membership's clean-up, which only the leader does; valid until
 * wp_kube_status_destroy. */
struct wp_kube_lease *wp_kube_status_lease_handle(struct wp_kube_status *st);

/* Policy, exposed for unit tests. */
struct wp_kube_status_policy {
	const char *controller_name;
	bool standalone;
	const char *service_name;
	const char *cluster_domain;
	const char *service_namespace; /* NULL or "" = the Gateway's */
	const char *const *ips;
	unsigned n_ips;
	bool served_filter; /* see wp_kube_source_config */
	const char *served_class;
	const char *const *served_gateways;
	unsigned n_served_gateways;
};

/* True when this appliance writes gw's status; class_controller is the
 * controllerName of gw's GatewayClass (NULL when unknown). */
bool wp_kube_status_owns(const struct wp_kube_status_policy *p, json_t *gw,
                         const char *class_controller);

/* The status gw should have (a new object), given its current status:
 * other writers' conditions kept, lastTransitionTime kept where the status
 * did not change. now is an RFC 3339 time. */
json_t *wp_kube_status_desired(const struct wp_kube_status_policy *p, json_t *gw, const char *now);

/* ---- AuthorizationPolicy WaypointAccepted (authz_status.c) ---- */

/* What the policy's condition is decided from (borrowed). */
struct wp_kube_authz_view {
	const struct wp_kube_status_policy *pol;
	const char *root_ns; /* NULL or "" = istio-system */
	json_t *gateways;    /* "ns/name" -> Gateway */
	json_t *classes;     /* name -> GatewayClass */
	/* "ns/name" -> {"waypoint": "ns/name" | null, "served": bool} of every
	 * Service in the published snapshot's enrollment; NULL before the
	 * first (Service targetRefs are not judged then) */
	json_t *services;
	bool was_ours; /* this appliance wrote the policy's condition before */
};

/* The WaypointAccepted condition this appliance owes policy ap (a new
 * object without lastTransitionTime), or NULL when none of its targetRefs
 * is this appliance's to judge. */
json_t *wp_kube_authz_condition(const struct wp_kube_authz_view *v, json_t *ap);

/* The status ap should have (a new object): its current status with the
 * WaypointAccepted condition replaced (others kept, in place),
 * lastTransitionTime kept while the condition's status is unchanged; NULL
 * when no condition is owed. now is an RFC 3339 time. */
json_t *wp_kube_authz_status_desired(const struct wp_kube_authz_view *v, json_t *ap,
                                     const char *now);

/* Whether ap has a targetRef of kind to name (in namespace ns; ns NULL:
 * any, for cluster-scoped kinds). */
bool wp_kube_authz_refers(json_t *ap, const char *kind, const char *ns, const char *name);

/* Whether ap has a Gateway, GatewayClass or Service targetRef. */
bool wp_kube_authz_refers_any(json_t *ap);

/* Whether the binding of a Service ap targets differs between the
 * services maps before and now (before NULL: none known yet). */
bool wp_kube_authz_services_changed(json_t *ap, json_t *before, json_t *now);

#endif /* WP_CP_KUBE_STATUS_H */
