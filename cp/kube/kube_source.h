/*
 * The Kubernetes list/watch source (wp/source.h) and the Gateway status
 * writer that rides on it.
 *
 * One thread per kind lists (paged) and then watches from the list's
 * resourceVersion with bookmarks, each with its own API client; what they
 * receive is queued and delivered to the sink from poll() on the
 * control-plane thread (the fd is an eventfd). An expired resourceVersion
 * (410 as HTTP status or as an in-stream ERROR) relists and emits deletions
 * for objects that vanished meanwhile; a cleanly ended watch rewatches from
 * the last version seen; errors (transport, 429, 5xx, 401) back off
 * exponentially with jitter (0.8 s doubling to 30 s by default, Retry-After
 * honoured). When the server answers again after requests got no answer
 * (noticed by a GET /version probe every min(backoff_base, 1 s)) or 5xx,
 * every kind still waiting retries at once, so the kinds come back together
 * instead of one by one over backoff_max. sink->synced is called only once
 * every kind has finished its first list and everything it listed was
 * delivered; ops->state names the kinds not current at any moment (listing,
 * relisting, or retrying after an error).
 *
 * Memory is bounded: a watch event line longer than max_event_bytes drops
 * the stream and relists; a LIST page longer than max_list_bytes fails the
 * list, which is retried with backoff. Both are logged with the kind and
 * the limit and counted (KUBE_EVENT_TOO_BIG, KUBE_BODY_TOO_BIG).
 *
 * The status writer (a thread of its own, fed the Gateways and GatewayClasses
 * the watches see) writes Accepted/Programmed with observedGeneration,
 * listener status and status.addresses on Gateways this appliance owns:
 * those whose GatewayClass has our controllerName, or, with standalone on,
 * every waypoint Gateway (an HBONE listener on 15008) — never an
 * istio-waypoint Gateway in Istio's manual-deployment mode (spec.addresses
 * holding a Hostname: istiod owns that status). When the served set is
 * given (served_filter), only Gateways the appliance serves are candidates:
 * it never marks Programmed a Gateway that no snapshot will carry, and in
 * standalone mode it programs exactly what it serves, whatever the class. It reads the current
 * status and replaces only its own condition types (PUT /status with the object's resourceVersion,
 * retried on conflict), so conditions others wrote stay. It also marks its own GatewayClasses
 * Accepted.
 *
 * AuthorizationPolicies bound to those Gateways (a Gateway targetRef, its
 * own GatewayClass from the root namespace, or a Service the published
 * snapshot binds to one of them: the control plane hands the source each
 * published snapshot's enrollment through ops->published) get the
 * WaypointAccepted condition istiod writes for its waypoints: True,
 * Accepted, "bound to NS/NAME", observedGeneration; False, TargetNotFound
 * once the Gateway is deleted (authz_status.c has the rules). Policies
 * that target only istiod's Gateways (or Services bound to them) or
 * ServiceEntries are left to istiod.
 */
#ifndef WP_CP_KUBE_SOURCE_H
#define WP_CP_KUBE_SOURCE_H

#include <stdbool.h>

#include "kube.h"
#include "wp/config.h"
#include "wp/source.h"

/* The appliance's controllerName (deploy/gatewayclass.yaml). */
#define WP_KUBE_CONTROLLER_NAME "waypointd.io/controller"

struct wp_kube_source_config {
	/* API server and credentials (copied). */
	struct wp_kube_config kube;
	/* Watch one namespace only (NULL: all). Namespaces and GatewayClasses
	 * are cluster-wide whatever this says. */
	const char *namespace;
	/* Items per LIST page; 0 means 500. */
	unsigned page_limit;
	/* Server-side watch timeout in seconds; 0 means 300 (then rewatch). */
	unsigned watch_timeout;
	/* Backoff: first delay and cap in seconds; 0 means 0.8 and 30. */
	double backoff_base, backoff_max;
	/* Longest watch event line and LIST page (or other answer) in bytes;
	 * 0 means unbounded. */
	size_t max_event_bytes, max_list_bytes;

	/* Gateway status. Off when status_enabled is false. */
	bool status_enabled;
	/* controllerName of our GatewayClasses; NULL = WP_KUBE_CONTROLLER_NAME. */
	const char *controller_name;
	/* Program every waypoint Gateway it sees (no istiod in the cluster). */
	bool standalone;
	/* status.addresses: Hostname "<service_name>.<gateway ns>.svc.<domain>"
	 * by default (service_name NULL = "waypointd", cluster_domain NULL =
	 * "cluster.local"); or these IPAddress values when n_ips > 0. */
	const char *service_name;
	const char *cluster_domain;
	/* The namespace in that Hostname; NULL or "" = the Gateway's own. */
	const char *service_namespace;
	const char *const *ips;
	unsigned n_ips;
	/* The served set (waypointd.conf cluster.gateway_class and
	 * cluster.gateways, as the resolver reads them). Ignored unless
	 * served_filter; then a Gateway is served when its gatewayClassName is
	 * served_class (non-empty) or "ns/name" is in served_gateways. */
	bool served_filter;
	const char *served_class;
	const char *const *served_gateways;
	unsigned n_served_gateways;
	/* Istio's root namespace (cluster.root_namespace), where a policy may
	 * target a GatewayClass; NULL = "istio-system". */
	const char *root_namespace;
	/* Leader election (lease.h): with lease_name set, status is written
	 * only while this appliance holds coordination.k8s.io/v1 Lease
	 * lease_namespace/lease_name as identity; times in seconds (0 means
	 * client-go's 15, 10 and 2). lease_name NULL: no election, this
	 * appliance writes (one appliance per waypoint). */
	const char *lease_name;
	const char *lease_namespace;
	const char *identity;
	double lease_duration, renew_deadline, retry_period;
	/* Membership (member.h): with member_address set, this appliance keeps
	 * a WorkloadEntry for itself (as identity, selected by service_name)
	 * in member_namespace while waypointd says it is ready; renewed every
	 * member_renew seconds; the Lease holder deletes others' entries
	 * unchanged for member_ttl. NULL: no membership. */
	const char *member_address;
	const char *member_namespace;
	const char *member_service_account; /* NULL or "" = service_name */
	double member_renew, member_ttl;
};

/* Creates the source (threads start in start()). NULL on error. */
struct wp_source *wp_kube_source_create(const struct wp_kube_source_config *cfg);

/* wp_kube_source_from_config() and wp_kube_source_counters(), what
 * waypointd calls, are declared in wp/source.h. */

/* Number of status writes that succeeded (for tests and metrics). */
uint64_t wp_kube_source_status_writes(struct wp_source *src);

struct wp_kube_lease_info;
/* The status writer's Lease (see lease.h); false when there is none. */
bool wp_kube_source_lease(struct wp_source *src, struct wp_kube_lease_info *out);
struct wp_kube_member_info;
/* The members as last listed (member.h); false without membership. */
bool wp_kube_source_members(struct wp_source *src, struct wp_kube_member_info *out);

#endif /* WP_CP_KUBE_SOURCE_H */
