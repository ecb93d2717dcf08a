/*
 * From waypoint.conf to a running Kubernetes source: reads the credentials
 * the `kubernetes` group names (a kubeconfig, or the pod's service account)
 * and maps the group and the served set (cluster.gateway_class,
 * cluster.gateways) onto struct wp_kube_source_config. Kept apart from
 * kube_source.c so that the source itself knows nothing of the config file.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kube_source.h"
#include "wp/addr.h"
#include "wp/log.h"

struct wp_source *wp_kube_source_from_config(const struct wp_config *cfg, char *err, size_t errlen)
{
	const struct wp_kubernetes_config *k = &cfg->kubernetes;
	const char *gws[WP_MAX_SERVED_GATEWAYS], *ips[WP_MAX_STATUS_ADDRS];
	struct wp_kube_source_config kc;
	struct wp_source *src;
	char why[256] = "", lease[160], host[128], addr[64];
	int rc;

	memset(&kc, 0, sizeof(kc));
	if (k->kubeconfig[0] == '\0' && k->context[0] == '\0')
		rc = wp_kube_config_auto(&kc.kube, why, sizeof(why));
	else
		rc = wp_kube_config_load(&kc.kube, k->kubeconfig[0] ? k->kubeconfig : NULL,
		                         k->context[0] ? k->context : NULL, why, sizeof(why));
	if (rc == -ENOENT) {
		snprintf(err, errlen,
		         "kubernetes: no credentials: %s%s (set kubernetes.kubeconfig, or run "
		         "in a pod)",
		         k->kubeconfig[0] ? "cannot read "
		                          : "no in-cluster service account and "
		                            "no kubeconfig",
		         k->kubeconfig);
		return NULL;
	}
	if (rc) {
		snprintf(err, errlen, "kubernetes: %s", why[0] ? why : strerror(-rc));
		return NULL;
	}
	kc.namespace = k->namespace[0] ? k->namespace : NULL;
	kc.page_limit = k->page_limit;
	kc.watch_timeout = k->watch_timeout_s;
	kc.backoff_base = k->backoff_base_ms / 1000.0;
	kc.backoff_max = k->backoff_max_ms / 1000.0;
	kc.max_event_bytes = k->max_event_bytes;
	kc.max_list_bytes = k->max_list_bytes;
	kc.status_enabled = k->status;
	kc.controller_name = k->controller_name;
	kc.standalone = k->standalone;
	kc.service_name = k->service_name;
	kc.service_namespace = k->service_namespace;
	kc.cluster_domain = cfg->cluster.cluster_domain[0] ? cfg->cluster.cluster_domain : NULL;
	for (unsigned i = 0; i < k->n_addresses; i++)
		ips[i] = k->addresses[i];
	kc.ips = ips;
	kc.n_ips = k->n_addresses;
	kc.served_filter = true;
	kc.served_class = cfg->cluster.gateway_class;
	for (unsigned i = 0; i < cfg->cluster.n_gateways; i++)
		gws[i] = cfg->cluster.gateways[i];
	kc.served_gateways = gws;
	kc.n_served_gateways = cfg->cluster.n_gateways;
	kc.root_namespace = cfg->cluster.root_namespace;
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "waypointd");
	host[sizeof(host) - 1] = '\0';
	kc.identity = k->identity[0] ? k->identity : host;
	if (k->leader_election) {
		/* one Lease per served set: per GatewayClass, else per Service */
		if (k->lease_name[0])
			snprintf(lease, sizeof(lease), "%s", k->lease_name);
		else
			snprintf(lease, sizeof(lease), "waypointd-%s",
			         cfg->cluster.gateway_class[0] ? cfg->cluster.gateway_class
			                                       : k->service_name);
		kc.lease_name = lease;
		kc.lease_namespace = k->lease_namespace[0]     ? k->lease_namespace
		                     : k->service_namespace[0] ? k->service_namespace
		                     : kc.kube.namespace       ? kc.kube.namespace
		                                               : "default";
		kc.lease_duration = k->lease_duration_ms / 1000.0;
		kc.renew_deadline = k->renew_deadline_ms / 1000.0;
		kc.retry_period = k->retry_period_ms / 1000.0;
	}
	if (k->membership) {
		/* the entry lives with the Service it joins */
		if (k->member_address[0])
			snprintf(addr, sizeof(addr), "%s", k->member_address);
		else if (cfg->n_ports > 0)
			wp_addr_format(&cfg->ports[0].ip, addr, sizeof(addr));
		else
			addr[0] = '\0';
		if (!addr[0]) {
			snprintf(err, errlen,
			         "kubernetes.membership: no address to advertise (set "
			         "kubernetes.member_address or ports.[0].ip)");
			wp_kube_config_clear(&kc.kube);
			return NULL;
		}
		kc.member_address = addr;
		kc.member_namespace = k->service_namespace[0] ? k->service_namespace
		                      : kc.kube.namespace     ? kc.kube.namespace
		                                              : "default";
		kc.member_service_account = k->member_service_account;
		kc.member_renew = k->member_renew_ms / 1000.0;
		kc.member_ttl = k->member_ttl_ms / 1000.0;
	}
	src = wp_kube_source_create(&kc); /* copies what it keeps */
	if (!src)
		snprintf(err, errlen, "kubernetes: cannot create the source (out of memory?)");
	else {
		wp_log(WP_LOG_INFO, "waypointd: kubernetes source: %s, %s, status %s%s\n",
		       kc.kube.server, kc.namespace ? kc.namespace : "all namespaces",
		       k->status ? "on" : "off", k->standalone ? " (standalone)" : "");
		if (k->status && kc.lease_name)
			wp_log(WP_LOG_INFO,
			       "waypointd: status written only while holding Lease %s/%s (as %s)\n",
			       kc.lease_namespace, kc.lease_name, kc.identity);
		if (kc.member_address)
			wp_log(WP_LOG_INFO,
			       "waypointd: member of Service %s/%s as %s (%s) while ready\n",
			       kc.member_namespace, k->service_name, kc.identity,
			       kc.member_address);
	}
	wp_kube_config_clear(&kc.kube);
	return src;
}
