/*
 * Leader election on a coordination.k8s.io/v1 Lease, with client-go's
 * semantics (internal to cp/kube; status.c is its one user). Several
 * appliances serving one waypoint each run a candidate; the one holding the
 * Lease writes Gateway and AuthorizationPolicy status, the others only
 * watch. See cp/kube/README.md ("More than one appliance").
 */
#ifndef WP_CP_KUBE_LEASE_H
#define WP_CP_KUBE_LEASE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kube.h"

/* The label a created Lease carries, so that `wpctl waypoint status` finds
 * the appliances' Leases whatever their names and namespaces. */
#define WP_KUBE_LEASE_LABEL_KEY   "app.kubernetes.io/managed-by"
#define WP_KUBE_LEASE_LABEL_VALUE "waypointd"

struct wp_kube_lease_config {
	const char *name;      /* the Lease's name */
	const char *namespace; /* and namespace */
	const char *identity;  /* holderIdentity: unique per appliance */
	double duration;       /* leaseDurationSeconds (client-go: 15) */
	double renew_deadline; /* a leader that cannot renew for this long steps down (10) */
	double retry;          /* time between attempts (2) */
};

/* One attempt's transport: a request as wp_kube_request makes it. The
 * thread uses the lease's own client; unit tests answer themselves. */
typedef int (*wp_kube_lease_req_cb)(void *arg, const char *method, const char *path,
                                    const char *body, struct wp_kube_resp *resp);
/* Told, on the lease thread, each time leadership is gained (true) or lost
 * (false: renew deadline passed, or another holder found). */
typedef void (*wp_kube_lease_change_cb)(void *arg, bool leading);

struct wp_kube_lease;

/* cfg is copied; k (owned, may be NULL when a transport is set) is the
 * client the thread talks through. NULL on error. */
struct wp_kube_lease *wp_kube_lease_create(const struct wp_kube_lease_config *cfg,
                                           struct wp_kube *k);
/* Replaces the transport (unit tests). */
void wp_kube_lease_set_transport(struct wp_kube_lease *l, wp_kube_lease_req_cb req, void *arg);
void wp_kube_lease_set_change_cb(struct wp_kube_lease *l, wp_kube_lease_change_cb cb, void *arg);

/*
 * One acquire-or-renew attempt at monotonic time now (seconds) and wall
 * time wall (for acquireTime/renewTime): GET the Lease; create it when
 * absent; take it when it names us, names nobody, or its holder has not
 * renewed it for leaseDurationSeconds as observed on our own clock; then
 * PUT it with the resourceVersion read (409: another candidate won). A
 * leader whose attempts keep failing steps down once renew_deadline has
 * passed since its last successful renewal. Returns whether it leads.
 */
bool wp_kube_lease_step(struct wp_kube_lease *l, double now, const struct timespec *wall);

/* Whether this appliance may write status at monotonic time now: it
 * renewed the Lease less than renew_deadline ago. Safe from any thread,
 * and false as soon as the deadline passes even while an attempt hangs. */
bool wp_kube_lease_leading(struct wp_kube_lease *l, double now);

/* What is known of the Lease, for the admin API. */
struct wp_kube_lease_info {
	char name[128], namespace[64], identity[128];
	char holder[128];    /* last holderIdentity seen ("" = none or unknown) */
	bool leading;        /* wp_kube_lease_leading() now */
	double age;          /* seconds since the record last changed (-1: never read) */
	double since_renew;  /* seconds since our last renewal (-1: never) */
	int64_t transitions; /* leaseTransitions last seen */
};
void wp_kube_lease_info(struct wp_kube_lease *l, double now, struct wp_kube_lease_info *out);

/* Starts the thread: an attempt every retry seconds. 0 or -errno. */
int wp_kube_lease_start(struct wp_kube_lease *l);
/* Stops the thread and frees everything (a leader gives the Lease up:
 * holderIdentity emptied, so a successor need not wait for it to expire). */
void wp_kube_lease_destroy(struct wp_kube_lease *l);

/* Adds the lease's counters (KUBE_LEASE_* and its client's) to out[WP_CTR_MAX]. */
void wp_kube_lease_counters(struct wp_kube_lease *l, uint64_t *out);

/* RFC 3339 with microseconds ("2026-01-02T03:04:05.123456Z"), as
 * metav1.MicroTime is written. */
void wp_kube_micro_time(const struct timespec *t, char *buf, size_t len);

/* The monotonic clock in seconds. */
double wp_kube_lease_now(void);

#endif /* WP_CP_KUBE_LEASE_H */
