/*
 * Membership: each appliance serving a waypoint registers itself as an
 * endpoint of the waypoint's Service while it is ready, as one
 * networking.istio.io/v1 WorkloadEntry (address, service account, the
 * Service's selector labels), and removes it when it drains. An appliance
 * that dies without removing it stops renewing it; the Lease holder
 * (lease.h) deletes entries that have not changed for a TTL. Internal to
 * cp/kube; kube_source.c owns one. See cp/kube/README.md ("Membership").
 */
#ifndef WP_CP_KUBE_MEMBER_H
#define WP_CP_KUBE_MEMBER_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kube.h"
#include "lease.h"

/* Labels every member's WorkloadEntry carries: the Service selects on
 * WP_KUBE_MEMBER_SELECT_KEY=<service>; the appliances find each other by
 * that and the managed-by label; WP_KUBE_MEMBER_ID_KEY names the appliance. */
#define WP_KUBE_MEMBER_SELECT_KEY "app.kubernetes.io/name"
#define WP_KUBE_MEMBER_ID_KEY     "waypointd.io/member"
#define WP_KUBE_MEMBER_RENEW_KEY  "waypointd.io/renew-time"
#define WP_KUBE_MEMBER_MAX        32

struct wp_kube_member_config {
	const char *service;         /* the waypoint Service's name (its selector value) */
	const char *namespace;       /* its namespace: where the entries live */
	const char *identity;        /* this appliance (the Lease's holderIdentity) */
	const char *address;         /* the data-plane address to advertise */
	const char *service_account; /* spec.serviceAccount: the mesh identity */
	double renew;                /* seconds between renewals */
	double ttl;                  /* an entry unchanged this long is dead (> renew) */
};

/* A transport as wp_kube_request makes it (unit tests answer themselves). */
typedef int (*wp_kube_member_req_cb)(void *arg, const char *method, const char *path,
                                     const char *body, struct wp_kube_resp *resp);

struct wp_kube_member;

/* cfg is copied; k (owned) is the client the thread uses; lease (borrowed,
 * may be NULL: no clean-up of dead members) tells whether this appliance
 * leads. NULL on a bad config (no service, namespace, identity or
 * address, ttl <= renew). */
struct wp_kube_member *wp_kube_member_create(const struct wp_kube_member_config *cfg,
                                             struct wp_kube *k, struct wp_kube_lease *lease);
void wp_kube_member_set_transport(struct wp_kube_member *m, wp_kube_member_req_cb req, void *arg);

/* The entry's name: <service>-<identity>, lowercased, other characters
 * than [a-z0-9.-] replaced by '-', at most 253 bytes. */
void wp_kube_member_entry_name(const char *service, const char *identity, char *out, size_t len);

/* Ready: register (and keep renewing); not ready: deregister at once (the
 * thread is woken). Any thread. */
void wp_kube_member_set_ready(struct wp_kube_member *m, bool ready);
/* Waits up to timeout seconds for the deregistration set_ready(false)
 * asked for to be done (the entry deleted, or found absent). Whether it
 * is. */
bool wp_kube_member_wait_deregistered(struct wp_kube_member *m, double timeout);

/*
 * One round at monotonic time now: register or renew (GET, then PUT with
 * the resourceVersion read, POST when absent) while ready, delete our entry
 * when not; LIST the members; when leading, delete (with a resourceVersion
 * precondition) every other entry that has not changed for ttl on our own
 * clock. The thread runs it every renew seconds.
 */
void wp_kube_member_step(struct wp_kube_member *m, double now, const struct timespec *wall);

/* What the last LIST showed, for the admin API. */
struct wp_kube_member_info {
	unsigned n;
	bool registered; /* our entry exists (as far as we know) */
	struct {
		char name[128], identity[128], address[64];
		double age; /* since the entry last changed, on our clock */
	} m[WP_KUBE_MEMBER_MAX];
};
void wp_kube_member_info(struct wp_kube_member *m, double now, struct wp_kube_member_info *out);

int wp_kube_member_start(struct wp_kube_member *m);
/* Stops the thread, deletes our entry if it is registered, frees. */
void wp_kube_member_destroy(struct wp_kube_member *m);
void wp_kube_member_counters(struct wp_kube_member *m, uint64_t *out);

#endif /* WP_CP_KUBE_MEMBER_H */
