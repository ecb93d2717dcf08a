/*
 * The core Kubernetes kinds the resolver uses (parse_int.h): Service
 * (ports, cluster IPs, selector), Pod (IPs, container ports, readiness,
 * phase, service account, node) and discovery.k8s.io EndpointSlice
 * (endpoints and their addresses, ports, targets). Namespaces carry only
 * metadata and need no reader.
 */
#include <stdio.h>
#include <string.h>

#include "parse_int.h"

void wp_model_read_service(struct pctx *p, const struct wp_ynode *spec)
{
	struct wp_k8s_service *s = &p->o->u.svc;
	const struct wp_ynode *ports, *ips;
	const char *cip;
	char f[96];
	uint32_t i = 0;

	if (!spec) {
		wp_model_fail(p, NULL, "spec", "required field missing");
		return;
	}
	s->type = wp_model_get_str(p, spec, "type", "spec.type", false);
	if (!s->type)
		s->type = "ClusterIP";
	cip = wp_model_get_str(p, spec, "clusterIP", "spec.clusterIP", false);
	ips = wp_model_get_typed(p, spec, "clusterIPs", WP_YNODE_SEQ, "spec.clusterIPs");
	if (cip && !strcmp(cip, "None"))
		s->headless = true;
	if (!s->headless && ips && ips->n) {
		struct wp_addr *a = wp_model_palloc(p, sizeof(*a) * ips->n);

		if (!a)
			return;
		for (const struct wp_ynode *c = ips->child; c; c = c->next, i++) {
			snprintf(f, sizeof(f), "spec.clusterIPs[%u]", i);
			if (c->type == WP_YNODE_SCALAR && !strcmp(c->value, "None")) {
				s->headless = true;
				break;
			}
			if (!wp_model_parse_ip(p, c, f, &a[i]))
				return;
		}
		s->cluster_ips = a;
		s->n_cluster_ips = s->headless ? 0 : i;
	} else if (!s->headless && cip && cip[0]) {
		struct wp_addr *a = wp_model_palloc(p, sizeof(*a));

		if (!a ||
		    !wp_model_parse_ip(p, wp_ynode_get(spec, "clusterIP"), "spec.clusterIP", a))
			return;
		s->cluster_ips = a;
		s->n_cluster_ips = 1;
	}
	ports = wp_model_get_typed(p, spec, "ports", WP_YNODE_SEQ, "spec.ports");
	if (ports && ports->n) {
		struct wp_svc_port *sp = wp_model_palloc(p, sizeof(*sp) * ports->n);

		if (!sp)
			return;
		i = 0;
		for (const struct wp_ynode *c = ports->child; c && !p->failed; c = c->next, i++) {
			const struct wp_ynode *tp;

			snprintf(f, sizeof(f), "spec.ports[%u]", i);
			if (c->type != WP_YNODE_MAP) {
				wp_model_fail(p, c, f, "expected a mapping");
				return;
			}
			snprintf(f, sizeof(f), "spec.ports[%u].name", i);
			sp[i].name = wp_model_get_str(p, c, "name", f, false);
			if (!sp[i].name)
				sp[i].name = "";
			snprintf(f, sizeof(f), "spec.ports[%u].protocol", i);
			sp[i].protocol = wp_model_get_str(p, c, "protocol", f, false);
			if (!sp[i].protocol)
				sp[i].protocol = "TCP";
			snprintf(f, sizeof(f), "spec.ports[%u].appProtocol", i);
			sp[i].app_protocol = wp_model_get_str(p, c, "appProtocol", f, false);
			snprintf(f, sizeof(f), "spec.ports[%u].port", i);
			if (!wp_model_get_port(p, c, "port", f, true, false, &sp[i].port))
				return;
			snprintf(f, sizeof(f), "spec.ports[%u].targetPort", i);
			tp = wp_ynode_get(c, "targetPort");
			if (wp_ynode_is_null(tp)) {
				sp[i].target_port = sp[i].port;
			} else if (tp->type == WP_YNODE_SCALAR && tp->plain &&
			           tp->value[0] >= '0' && tp->value[0] <= '9') {
				if (!wp_model_get_port(p, c, "targetPort", f, true, false,
				                       &sp[i].target_port))
					return;
			} else if (tp->type == WP_YNODE_SCALAR) {
				sp[i].target_port_name = wp_model_pstr(p, tp->value);
			} else {
				wp_model_fail(p, tp, f, "expected a port number or a port name");
				return;
			}
		}
		s->ports = sp;
		s->n_ports = i;
	}
	if (wp_ynode_get(spec, "selector") && !wp_ynode_is_null(wp_ynode_get(spec, "selector")))
		s->has_selector = true;
	wp_model_get_labels(p, spec, "selector", "spec.selector", &s->selector);
}

/* A scalar's value, or NULL. */
static const char *scalar(const struct wp_ynode *n)
{
	return n && n->type == WP_YNODE_SCALAR && !wp_ynode_is_null(n) ? n->value : NULL;
}

/* <name> without the suffix "-<suffix>", in the parse arena; NULL when
 * <name> does not end so. */
static const char *trim_suffix(struct pctx *p, const char *name, const char *suffix)
{
	size_t n = strlen(name), k = strlen(suffix);
	char buf[256];

	if (!k || n <= k + 1 || n - k - 1 >= sizeof(buf) || name[n - k - 1] != '-' ||
	    strcmp(name + n - k, suffix))
		return NULL;
	memcpy(buf, name, n - k - 1);
	buf[n - k - 1] = '\0';
	return wp_model_pstr(p, buf);
}

/* A CronJob's Job is named <cronjob>-<8 to 10 digits>: the CronJob's name. */
static const char *cronjob_name(struct pctx *p, const char *job)
{
	const char *dash = strrchr(job, '-');
	size_t digits = dash ? strlen(dash + 1) : 0;

	if (!dash || dash == job || digits < 8 || digits > 10 ||
	    strspn(dash + 1, "0123456789") != digits)
		return NULL;
	return trim_suffix(p, job, dash + 1);
}

/*
 * The workload a Pod belongs to, as istiod names it for telemetry: the
 * service.istio.io/workload-name label; else, for a Pod whose name was
 * generated, its controller (a ReplicaSet carrying the pod-template-hash as
 * suffix: the Deployment; the same for an Argo Rollout's
 * rollouts-pod-template-hash; a ReplicationController of an OpenShift
 * DeploymentConfig: its deploymentconfig label; a Job named
 * <cronjob>-<timestamp>: the CronJob; any other controller: its name);
 * else the Pod's own name.
 */
static const char *pod_workload(struct pctx *p, const struct wp_ynode *meta)
{
	const struct wp_labels *l = &p->o->meta.labels;
	const struct wp_ynode *refs = wp_ynode_get(meta, "ownerReferences");
	const char *v = wp_labels_get(l, "service.istio.io/workload-name");
	const char *kind = NULL, *name = NULL;

	if (v)
		return v;
	if (!scalar(wp_ynode_get(meta, "generateName")) || !refs || refs->type != WP_YNODE_SEQ)
		return p->o->meta.name;
	for (const struct wp_ynode *r = refs->child; r; r = r->next) {
		const char *c = scalar(wp_ynode_get(r, "controller"));

		if (c && !strcmp(c, "true")) {
			kind = scalar(wp_ynode_get(r, "kind"));
			name = scalar(wp_ynode_get(r, "name"));
			break;
		}
	}
	if (!kind || !name || !name[0])
		return p->o->meta.name;
	if (!strcmp(kind, "ReplicaSet")) {
		const char *hash = wp_labels_get(l, "pod-template-hash");
		const char *rhash = wp_labels_get(l, "rollouts-pod-template-hash");

		if (hash && (v = trim_suffix(p, name, hash)))
			return v;
		if (rhash && (v = trim_suffix(p, name, rhash)))
			return v;
	} else if (!strcmp(kind, "ReplicationController")) {
		v = wp_labels_get(l, "deploymentconfig");
		if (v && v[0])
			return v;
	} else if (!strcmp(kind, "Job")) {
		if ((v = cronjob_name(p, name)))
			return v;
	}
	return wp_model_pstr(p, name);
}

/* The first of the labels <keys> present, else <fallback>. */
static const char *first_label(const struct wp_labels *l, const char *const keys[3],
                               const char *fallback)
{
	for (int i = 0; i < 3; i++) {
		const char *v = wp_labels_get(l, keys[i]);

		if (v)
			return v;
	}
	return fallback;
}

void wp_model_read_pod(struct pctx *p, const struct wp_ynode *spec, const struct wp_ynode *status,
                       const struct wp_ynode *meta)
{
	static const char *const canon_name[3] = {"service.istio.io/canonical-name",
	                                          "app.kubernetes.io/name", "app"};
	static const char *const canon_rev[3] = {"service.istio.io/canonical-revision",
	                                         "app.kubernetes.io/version", "version"};
	struct wp_k8s_pod *pod = &p->o->u.pod;
	const struct wp_ynode *cs, *ips, *conds;
	char f[128];
	uint32_t n = 0, i;

	pod->ready = true;
	pod->workload = pod_workload(p, meta);
	pod->canonical_name = first_label(&p->o->meta.labels, canon_name, pod->workload);
	pod->canonical_revision = first_label(&p->o->meta.labels, canon_rev, "latest");
	if (!pod->workload)
		return; /* out of memory: p failed */
	if (spec) {
		pod->service_account = wp_model_get_str(p, spec, "serviceAccountName",
		                                        "spec.serviceAccountName", false);
		pod->node_name = wp_model_get_str(p, spec, "nodeName", "spec.nodeName", false);
		pod->host_network =
		        wp_model_get_bool(p, spec, "hostNetwork", "spec.hostNetwork", false);
		cs = wp_model_get_typed(p, spec, "containers", WP_YNODE_SEQ, "spec.containers");
		for (const struct wp_ynode *c = cs ? cs->child : NULL; c; c = c->next) {
			const struct wp_ynode *pl = wp_ynode_get(c, "ports");

			if (pl && pl->type == WP_YNODE_SEQ)
				n += pl->n;
		}
		if (n) {
			struct wp_container_port *cp = wp_model_palloc(p, sizeof(*cp) * n);
			uint32_t ci = 0, k = 0;

			if (!cp)
				return;
			for (const struct wp_ynode *c = cs->child; c && !p->failed;
			     c = c->next, ci++) {
				const struct wp_ynode *pl;

				snprintf(f, sizeof(f), "spec.containers[%u].ports", ci);
				pl = wp_model_get_typed(p, c, "ports", WP_YNODE_SEQ, f);
				i = 0;
				for (const struct wp_ynode *q = pl ? pl->child : NULL;
				     q && !p->failed; q = q->next, i++) {
					snprintf(f, sizeof(f), "spec.containers[%u].ports[%u]", ci,
					         i);
					if (q->type != WP_YNODE_MAP) {
						wp_model_fail(p, q, f, "expected a mapping");
						return;
					}
					cp[k].name = wp_model_get_str(p, q, "name", f, false);
					cp[k].protocol =
					        wp_model_get_str(p, q, "protocol", f, false);
					snprintf(f, sizeof(f),
					         "spec.containers[%u].ports[%u].containerPort", ci,
					         i);
					if (!wp_model_get_port(p, q, "containerPort", f, true,
					                       false, &cp[k].port))
						return;
					k++;
				}
			}
			pod->cports = cp;
			pod->n_cports = k;
		}
	}
	if (!pod->service_account)
		pod->service_account = "default";
	if (wp_ynode_get(meta, "deletionTimestamp") &&
	    !wp_ynode_is_null(wp_ynode_get(meta, "deletionTimestamp")))
		pod->terminating = true;
	if (!status)
		return;
	pod->phase = wp_model_get_str(p, status, "phase", "status.phase", false);
	ips = wp_model_get_typed(p, status, "podIPs", WP_YNODE_SEQ, "status.podIPs");
	if (ips && ips->n) {
		struct wp_addr *a = wp_model_palloc(p, sizeof(*a) * ips->n);

		if (!a)
			return;
		i = 0;
		for (const struct wp_ynode *c = ips->child; c; c = c->next, i++) {
			snprintf(f, sizeof(f), "status.podIPs[%u].ip", i);
			if (!wp_model_parse_ip(p, wp_ynode_get(c, "ip"), f, &a[i]))
				return;
		}
		pod->ips = a;
		pod->n_ips = i;
	} else {
		const struct wp_ynode *ip = wp_ynode_get(status, "podIP");

		if (!wp_ynode_is_null(ip)) {
			struct wp_addr *a = wp_model_palloc(p, sizeof(*a));

			if (!a || !wp_model_parse_ip(p, ip, "status.podIP", a))
				return;
			pod->ips = a;
			pod->n_ips = 1;
		}
	}
	conds = wp_model_get_typed(p, status, "conditions", WP_YNODE_SEQ, "status.conditions");
	for (const struct wp_ynode *c = conds ? conds->child : NULL; c; c = c->next) {
		const struct wp_ynode *t = wp_ynode_get(c, "type"), *s = wp_ynode_get(c, "status");

		if (t && t->type == WP_YNODE_SCALAR && !strcmp(t->value, "Ready") && s &&
		    s->type == WP_YNODE_SCALAR)
			pod->ready = !strcmp(s->value, "True");
	}
}

void wp_model_read_endpointslice(struct pctx *p, const struct wp_ynode *root)
{
	struct wp_k8s_endpointslice *e = &p->o->u.eps;
	const struct wp_ynode *eps, *ports;
	char f[128];
	uint32_t i = 0;

	e->service_name = wp_labels_get(&p->o->meta.labels, WP_LABEL_SERVICE_NAME);
	e->address_type = wp_model_get_str(p, root, "addressType", "addressType", true);
	if (p->failed)
		return;
	if (strcmp(e->address_type, "IPv4") && strcmp(e->address_type, "IPv6") &&
	    strcmp(e->address_type, "FQDN")) {
		wp_model_fail(p, wp_ynode_get(root, "addressType"), "addressType",
		              "must be IPv4, IPv6 or FQDN, got %s", e->address_type);
		return;
	}
	eps = wp_model_get_typed(p, root, "endpoints", WP_YNODE_SEQ, "endpoints");
	if (eps && eps->n) {
		struct wp_eps_endpoint *ep = wp_model_palloc(p, sizeof(*ep) * eps->n);

		if (!ep)
			return;
		for (const struct wp_ynode *c = eps->child; c && !p->failed; c = c->next, i++) {
			const struct wp_ynode *addrs, *cond, *tr;
			uint32_t j = 0;

			snprintf(f, sizeof(f), "endpoints[%u].addresses", i);
			addrs = wp_model_get_typed(p, c, "addresses", WP_YNODE_SEQ, f);
			if (!addrs || !addrs->n) {
				wp_model_fail(p, c, f, "required field missing");
				return;
			}
			if (strcmp(e->address_type, "FQDN")) {
				struct wp_addr *a = wp_model_palloc(p, sizeof(*a) * addrs->n);

				if (!a)
					return;
				for (const struct wp_ynode *ac = addrs->child; ac;
				     ac = ac->next, j++) {
					snprintf(f, sizeof(f), "endpoints[%u].addresses[%u]", i, j);
					if (!wp_model_parse_ip(p, ac, f, &a[j]))
						return;
				}
				ep[i].addrs = a;
				ep[i].n_addrs = j;
			}
			snprintf(f, sizeof(f), "endpoints[%u].conditions", i);
			cond = wp_model_get_typed(p, c, "conditions", WP_YNODE_MAP, f);
			snprintf(f, sizeof(f), "endpoints[%u].conditions.ready", i);
			ep[i].ready = wp_model_get_bool(p, cond, "ready", f, true);
			snprintf(f, sizeof(f), "endpoints[%u].conditions.serving", i);
			ep[i].serving = wp_model_get_bool(p, cond, "serving", f, ep[i].ready);
			snprintf(f, sizeof(f), "endpoints[%u].conditions.terminating", i);
			ep[i].terminating = wp_model_get_bool(p, cond, "terminating", f, false);
			snprintf(f, sizeof(f), "endpoints[%u].nodeName", i);
			ep[i].node_name = wp_model_get_str(p, c, "nodeName", f, false);
			snprintf(f, sizeof(f), "endpoints[%u].targetRef", i);
			tr = wp_model_get_typed(p, c, "targetRef", WP_YNODE_MAP, f);
			if (tr) {
				ep[i].target_kind = wp_model_get_str(p, tr, "kind", f, false);
				ep[i].target_ns = wp_model_get_str(p, tr, "namespace", f, false);
				ep[i].target_name = wp_model_get_str(p, tr, "name", f, false);
			}
		}
		e->endpoints = ep;
		e->n_endpoints = i;
	}
	ports = wp_model_get_typed(p, root, "ports", WP_YNODE_SEQ, "ports");
	if (ports && ports->n) {
		struct wp_eps_port *pp = wp_model_palloc(p, sizeof(*pp) * ports->n);

		if (!pp)
			return;
		i = 0;
		for (const struct wp_ynode *c = ports->child; c && !p->failed; c = c->next, i++) {
			snprintf(f, sizeof(f), "ports[%u]", i);
			if (c->type != WP_YNODE_MAP) {
				wp_model_fail(p, c, f, "expected a mapping");
				return;
			}
			pp[i].name = wp_model_get_str(p, c, "name", f, false);
			if (!pp[i].name)
				pp[i].name = "";
			pp[i].protocol = wp_model_get_str(p, c, "protocol", f, false);
			pp[i].app_protocol = wp_model_get_str(p, c, "appProtocol", f, false);
			snprintf(f, sizeof(f), "ports[%u].port", i);
			if (!wp_model_get_port(p, c, "port", f, false, true, &pp[i].port))
				return;
		}
		e->ports = pp;
		e->n_ports = i;
	}
}
