/*
 * The Gateway status writer behind the Kubernetes source (internal to
 * cp/kube; see kube_source.h for what it writes and when). The source's
 * watch threads hand it copies of Gateways and GatewayClasses; its own
 * thread decides which it owns and writes their status.
 */
#ifndef WP_CP_KUBE_STATUS_H
#define WP_CP_KUBE_STATUS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cp/kube/kube_source.h"

struct wp_kube_status;

/* Copies what it needs from cfg. NULL on error. */
struct wp_kube_status *wp_kube_status_create(const struct wp_kube_source_config *cfg);
/* Starts the writer thread. 0 or -errno. */
int wp_kube_status_start(struct wp_kube_status *st);
/* Stops the thread and frees everything. */
void wp_kube_status_destroy(struct wp_kube_status *st);

/* A Gateway (res WP_KUBE_RES_GATEWAY) or GatewayClass was added or changed;
 * obj is borrowed (copied). Any thread. */
void wp_kube_status_update(struct wp_kube_status *st, int res, json_t *obj);
/* It was deleted. Any thread. */
void wp_kube_status_forget(struct wp_kube_status *st, int res, const char *ns, const char *name);

uint64_t wp_kube_status_writes(struct wp_kube_status *st);
/* Gateways and GatewayClasses whose status is to be written or being
 * written now (0: the writer is idle). */
unsigned wp_kube_status_pending(struct wp_kube_status *st);
/* Adds the writer's counters to out[WP_CTR_MAX]. */
void wp_kube_status_counters(struct wp_kube_status *st, uint64_t *out);

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

#endif /* WP_CP_KUBE_STATUS_H */
