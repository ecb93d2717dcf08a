/*
 * Clusters and DestinationRules (route_compile_int.h): a cluster is one
 * (service, port, subset) a route reaches, with its ready endpoints (from
 * the resolver's lookup callback; a subset's filtered by its labels) and a
 * wp_lb_table (wp/lb.h) built with the load-balancing policy of the
 * best DestinationRule for the service's host: exact host before wildcard,
 * then the oldest, then namespace/name. trafficPolicy.loadBalancer (simple
 * or consistentHash with ringHash or maglev), its portLevelSettings for the
 * port and each subset's own trafficPolicy apply in that order; a bad field
 * is reported and leaves the previous value (LEAST_REQUEST by default).
 * trafficPolicy.connectionPool follows the same order into the cluster's
 * wp_route_cpool (Istio's defaults: no limits, opaque TCP idle for 1 h, no
 * keepalive); fields with no effect here are reported as such.
 * trafficPolicy.outlierDetection goes the same way (od_parse): each level
 * that has one replaces the one before as a whole, unset fields taking
 * Istio's defaults; the data plane acts on it (dp/l7/outlier.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "route_compile_int.h"

/* ---- clusters -------------------------------------------------------------- */

static const char *svc_host(struct cctx *c, const char *ns, const char *name)
{
	return wp_arena_sprintf(c->a, "%s.%s.svc.%s", name, ns, c->domain);
}

/* 2 exact, 1 wildcard, 0 no match. */
static int dr_host_match(struct cctx *c, const struct wp_obj *dr, const char *fqdn)
{
	const char *h = dr->u.dr.host;
	char buf[512];

	if (!h)
		return 0;
	if (!strchr(h, '.') && strcmp(h, "*")) {
		snprintf(buf, sizeof(buf), "%s.%s.svc.%s", h, dr->meta.ns, c->domain);
		h = buf;
	}
	if (!strcasecmp(h, fqdn))
		return 2;
	if (h[0] == '*') {
		size_t hl = strlen(h + 1), fl = strlen(fqdn);

		return fl >= hl && !strcasecmp(fqdn + fl - hl, h + 1) ? 1 : 0;
	}
	return 0;
}

/* Best DestinationRule for a host: exact beats wildcard, then the oldest,
 * then ns/name. */
static const struct wp_obj *dr_for(struct cctx *c, const char *fqdn)
{
	const struct wp_obj *best = NULL;
	int bs = 0;

	for (uint32_t i = 0; i < c->in->n_drs; i++) {
		const struct wp_obj *d = c->in->drs[i];
		int s = dr_host_match(c, d, fqdn);
		int cmp;

		if (!s || s < bs)
			continue;
		if (best && s == bs) {
			int64_t ta = d->meta.created ? d->meta.created : INT64_MAX;
			int64_t tb = best->meta.created ? best->meta.created : INT64_MAX;

			if (ta != tb) {
				if (ta > tb)
					continue;
			} else {
				cmp = strcmp(d->meta.ns, best->meta.ns);
				if (!cmp)
					cmp = strcmp(d->meta.name, best->meta.name);
				if (cmp > 0)
					continue;
			}
		}
		best = d;
		bs = s;
	}
	return best;
}

/* Applies a loadBalancer node onto *lb; errors leave the default. */
static void lb_parse(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *lbn,
                     const char *field, struct lbspec *lb)
{
	const char *simple = sget(lbn, "simple");
	const struct wp_ynode *ch = nget(lbn, "consistentHash");
	char f[200];

	if (!lbn)
		return;
	if (lbn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, dr, lbn, field, "expected a mapping");
		return;
	}
	if (simple && ch) {
		wp_route_cerr(c, dr, lbn, field, "simple and consistentHash are exclusive");
		return;
	}
	if (simple) {
		fieldf(f, sizeof(f), "%s.simple", field);
		if (!strcmp(simple, "ROUND_ROBIN"))
			lb->policy = WP_LB_ROUND_ROBIN;
		else if (!strcmp(simple, "LEAST_REQUEST") || !strcmp(simple, "LEAST_CONN") ||
		         !strcmp(simple, "UNSPECIFIED"))
			lb->policy = WP_LB_LEAST_REQUEST;
		else if (!strcmp(simple, "RANDOM"))
			lb->policy = WP_LB_RANDOM;
		else
			wp_route_cerr(c, dr, wp_ynode_get(lbn, "simple"), f,
			              "unsupported policy %s (ROUND_ROBIN, LEAST_REQUEST, RANDOM)",
			              simple);
		lb->hash_key = WP_ROUTE_HASH_NONE;
		return;
	}
	if (!ch)
		return;
	if (ch->type != WP_YNODE_MAP) {
		fieldf(f, sizeof(f), "%s.consistentHash", field);
		wp_route_cerr(c, dr, ch, f, "expected a mapping");
		return;
	}
	{
		struct lbspec n = {.policy = WP_LB_RING_HASH};
		const char *hh = sget(ch, "httpHeaderName"),
		           *qp = sget(ch, "httpQueryParameterName"), *sip = sget(ch, "useSourceIp");
		const struct wp_ynode *ck = nget(ch, "httpCookie"), *rh = nget(ch, "ringHash"),
		                      *mg = nget(ch, "maglev");
		const char *mrs = sget(ch, "minimumRingSize");
		int keys = !!hh + !!qp + !!ck + (sip && !strcmp(sip, "true"));

		fieldf(f, sizeof(f), "%s.consistentHash", field);
		if (keys != 1) {
			wp_route_cerr(c, dr, ch, f,
			              "exactly one of httpHeaderName, httpCookie, useSourceIp, "
			              "httpQueryParameterName is required");
			return;
		}
		if (hh) {
			if (!is_token(hh)) {
				wp_route_cerr(c, dr, ch, f, "invalid httpHeaderName \"%s\"", hh);
				return;
			}
			n.hash_key = WP_ROUTE_HASH_HEADER;
			n.hash_name = lower_dup(c, hh);
		} else if (qp) {
			n.hash_key = WP_ROUTE_HASH_QUERY;
			n.hash_name = astrdup(c, qp);
		} else if (ck) {
			const char *cn = sget(ck, "name");

			if (!cn || !*cn) {
				wp_route_cerr(c, dr, ck, f, "httpCookie.name is required");
				return;
			}
			n.hash_key = WP_ROUTE_HASH_COOKIE;
			n.hash_name = astrdup(c, cn);
		} else {
			n.hash_key = WP_ROUTE_HASH_SOURCE_IP;
		}
		if (rh && mg) {
			wp_route_cerr(c, dr, ch, f, "ringHash and maglev are exclusive");
			return;
		}
		if (mrs && !parse_u32(mrs, 1u << 23, &n.ring_min)) {
			wp_route_cerr(c, dr, wp_ynode_get(ch, "minimumRingSize"), f,
			              "minimumRingSize must be 1..8388608, got %s", mrs);
			return;
		}
		if (rh) {
			const char *v = sget(rh, "minimumRingSize");

			if (v && !parse_u32(v, 1u << 23, &n.ring_min)) {
				wp_route_cerr(c, dr, rh, f,
				              "ringHash.minimumRingSize must be 1..8388608, got %s",
				              v);
				return;
			}
		}
		if (mg) {
			const char *v = sget(mg, "tableSize");

			n.policy = WP_LB_MAGLEV;
			if (v && (!parse_u32(v, 5000011, &n.maglev) || !wp_lb_is_prime(n.maglev))) {
				wp_route_cerr(
				        c, dr, mg, f,
				        "maglev.tableSize must be a prime up to 5000011, got %s",
				        v);
				return;
			}
		}
		*lb = n;
	}
}

/* Field <key> of node n, when present, an integer 0..max into *out; false
 * (reported) when it is not. */
static bool field_uint(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *n,
                       const char *field, const char *key, uint32_t max, uint32_t *out)
{
	const char *v = sget(n, key);
	uint32_t x;

	if (!v)
		return true;
	if (!parse_u32(v, max, &x)) {
		wp_route_cerr(c, dr, wp_ynode_get(n, key), field,
		              "%s must be an integer 0..%u, got %s", key, max, v);
		return false;
	}
	*out = x;
	return true;
}

/* Field <key> of node n, when present, a positive duration into *out (ms). */
static bool field_duration(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *n,
                           const char *field, const char *key, uint32_t *out)
{
	const char *v = sget(n, key);
	uint32_t ms;

	if (!v)
		return true;
	if (wp_route_parse_duration(v, &ms) || ms == 0) {
		wp_route_cerr(c, dr, wp_ynode_get(n, key), field,
		              "%s must be a positive duration (1h, 1m, 1s, 500ms), got %s", key, v);
		return false;
	}
	*out = ms;
	return true;
}

/*
 * An outlierDetection node onto *od, with Istio's defaults for the fields
 * it leaves out: consecutive5xxErrors 5, consecutiveGatewayErrors 0 (off),
 * consecutiveLocalOriginFailures 5 (counted apart only with
 * splitExternalLocalOriginErrors), interval 10s, baseEjectionTime 30s,
 * maxEjectionPercent 10, minHealthPercent 0. A bad field is reported and
 * leaves *od as it was.
 */
static void od_parse(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *odn,
                     const char *field, struct wp_lb_outlier *od)
{
	struct wp_lb_outlier n = {
	        .enabled = true,
	        .consec_5xx = 5,
	        .consec_local = 5,
	        .interval_ms = 10000,
	        .base_ms = 30000,
	        .max_eject_pct = 10,
	};
	const char *split = sget(odn, "splitExternalLocalOriginErrors");
	uint32_t c5xx = n.consec_5xx, cgw = n.consec_gw, clocal = n.consec_local;
	uint32_t max_pct = n.max_eject_pct, min_pct = n.min_health_pct;

	if (!odn)
		return;
	if (odn->type != WP_YNODE_MAP) {
		wp_route_cerr(c, dr, odn, field, "expected a mapping");
		return;
	}
	if (split && strcmp(split, "true") && strcmp(split, "false")) {
		wp_route_cerr(c, dr, wp_ynode_get(odn, "splitExternalLocalOriginErrors"), field,
		              "splitExternalLocalOriginErrors must be true or false, got %s",
		              split);
		return;
	}
	n.split_local = split && !strcmp(split, "true");
	if (!field_uint(c, dr, odn, field, "consecutive5xxErrors", 65535, &c5xx) ||
	    !field_uint(c, dr, odn, field, "consecutiveGatewayErrors", 65535, &cgw) ||
	    !field_uint(c, dr, odn, field, "consecutiveLocalOriginFailures", 65535, &clocal) ||
	    !field_duration(c, dr, odn, field, "interval", &n.interval_ms) ||
	    !field_duration(c, dr, odn, field, "baseEjectionTime", &n.base_ms) ||
	    !field_uint(c, dr, odn, field, "maxEjectionPercent", 100, &max_pct) ||
	    !field_uint(c, dr, odn, field, "minHealthPercent", 100, &min_pct))
		return;
	n.consec_5xx = (uint16_t)c5xx;
	n.consec_gw = (uint16_t)cgw;
	n.consec_local = (uint16_t)clocal;
	n.max_eject_pct = (uint8_t)max_pct;
	n.min_health_pct = (uint8_t)min_pct;
	*od = n;
}

/* ---- connectionPool -------------------------------------------------------- */

/* A count of connectionPool (int32 in Istio's API): 0 leaves the default,
 * as istiod does; false when it is not a count. */
/* A connectionPool count; 0 keeps the default unless it is a value. */
static void cpool_count(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *n,
                        const char *field, const char *key, bool zero_is_value, uint32_t *out)
{
	uint32_t x = 0;

	if (sget(n, key) && field_uint(c, dr, n, field, key, INT32_MAX, &x) && (x || zero_is_value))
		*out = x;
}

/* Keys of a connectionPool part outside <known> are reported. */
static void cpool_unknown(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *n,
                          const char *field, const char *const *known)
{
	for (const struct wp_ynode *k = n->child; k; k = k->next) {
		const char *const *p = known;

		while (*p && strcmp(*p, k->key))
			p++;
		if (!*p)
			wp_route_cerr(c, dr, k, field, "%s is not supported", k->key);
	}
}

/* tcp.tcpKeepalive onto *cp: on, with the Linux defaults (7200 s, 75 s, 9
 * probes) for the fields it leaves out; a bad field is reported and
 * leaves the previous setting whole. */
static void keepalive_parse(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *n,
                            const char *field, struct wp_route_cpool *cp)
{
	static const char *const keys[] = {"time", "interval", "probes", NULL};
	uint32_t time_ms = WP_ROUTE_KEEP_TIME_DEFAULT_MS, intvl_ms = WP_ROUTE_KEEP_INTVL_DEFAULT_MS;
	uint32_t probes = WP_ROUTE_KEEP_PROBES_DEFAULT;
	char f[200];

	if (!n)
		return;
	fieldf(f, sizeof(f), "%s.tcpKeepalive", field);
	if (n->type != WP_YNODE_MAP) {
		wp_route_cerr(c, dr, n, f, "expected a mapping");
		return;
	}
	cpool_unknown(c, dr, n, f, keys);
	if (!field_duration(c, dr, n, f, "time", &time_ms) ||
	    !field_duration(c, dr, n, f, "interval", &intvl_ms))
		return;
	if (sget(n, "probes") && !field_uint(c, dr, n, f, "probes", 255, &probes))
		return;
	cp->keepalive.time_ms = time_ms;
	cp->keepalive.intvl_ms = intvl_ms;
	cp->keepalive.probes = (uint8_t)(probes ? probes : WP_ROUTE_KEEP_PROBES_DEFAULT);
}

/* A connectionPool node onto *cp; a bad field is reported and leaves the
 * previous value. */
static void cpool_parse(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *n,
                        const char *field, struct wp_route_cpool *cp)
{
	static const char *const tcp_keys[] = {"maxConnections",        "connectTimeout",
	                                       "tcpKeepalive",          "idleTimeout",
	                                       "maxConnectionDuration", NULL};
	static const char *const http_keys[] = {"http1MaxPendingRequests",
	                                        "http2MaxRequests",
	                                        "maxRequestsPerConnection",
	                                        "maxRetries",
	                                        "idleTimeout",
	                                        "maxConcurrentStreams",
	                                        "h2UpgradePolicy",
	                                        "useClientProtocol",
	                                        NULL};
	const struct wp_ynode *tcp = nget(n, "tcp"), *http = nget(n, "http");
	char f[200];

	if (!n)
		return;
	if (n->type != WP_YNODE_MAP) {
		wp_route_cerr(c, dr, n, field, "expected a mapping");
		return;
	}
	fieldf(f, sizeof(f), "%s.tcp", field);
	if (tcp && tcp->type != WP_YNODE_MAP) {
		wp_route_cerr(c, dr, tcp, f, "expected a mapping");
	} else if (tcp) {
		cpool_unknown(c, dr, tcp, f, tcp_keys);
		cpool_count(c, dr, tcp, f, "maxConnections", false, &cp->max_connections);
		(void)field_duration(c, dr, tcp, f, "connectTimeout", &cp->connect_timeout_ms);
		keepalive_parse(c, dr, nget(tcp, "tcpKeepalive"), f, cp);
		if (sget(tcp, "idleTimeout") &&
		    wp_route_parse_duration(sget(tcp, "idleTimeout"), &cp->tcp_idle_timeout_ms))
			wp_route_cerr(c, dr, wp_ynode_get(tcp, "idleTimeout"), f,
			              "idleTimeout must be a duration (1h, 1m, 1s, 500ms; 0s: "
			              "none), got %s",
			              sget(tcp, "idleTimeout"));
		if (nget(tcp, "maxConnectionDuration"))
			wp_route_cerr(c, dr, wp_ynode_get(tcp, "maxConnectionDuration"), f,
			              "maxConnectionDuration is not applied");
	}
	fieldf(f, sizeof(f), "%s.http", field);
	if (http && http->type != WP_YNODE_MAP) {
		wp_route_cerr(c, dr, http, f, "expected a mapping");
	} else if (http) {
		cpool_unknown(c, dr, http, f, http_keys);
		cpool_count(c, dr, http, f, "http1MaxPendingRequests", false, &cp->max_pending);
		cpool_count(c, dr, http, f, "http2MaxRequests", false, &cp->max_requests);
		cpool_count(c, dr, http, f, "maxRequestsPerConnection", true,
		            &cp->max_req_per_conn);
		cpool_count(c, dr, http, f, "maxRetries", false, &cp->max_retries);
		cpool_count(c, dr, http, f, "maxConcurrentStreams", false, &cp->max_streams);
		(void)field_duration(c, dr, http, f, "idleTimeout", &cp->idle_timeout_ms);
		if (sget(http, "h2UpgradePolicy") || sget(http, "useClientProtocol"))
			wp_route_cerr(c, dr, http, f,
			              "h2UpgradePolicy and useClientProtocol are not applied (the "
			              "upstream speaks the port's protocol)");
	}
}

/* trafficPolicy, then its portLevelSettings[] for <port>: loadBalancer and
 * outlierDetection onto *lb, connectionPool onto *cp. */
static void tp_parse(struct cctx *c, const struct wp_obj *dr, const struct wp_ynode *tp,
                     const char *field, uint16_t port, struct lbspec *lb, struct wp_route_cpool *cp)
{
	const struct wp_ynode *pls;
	char f[200];
	uint32_t i = 0;

	if (!tp)
		return;
	if (tp->type != WP_YNODE_MAP) {
		wp_route_cerr(c, dr, tp, field, "expected a mapping");
		return;
	}
	fieldf(f, sizeof(f), "%s.loadBalancer", field);
	lb_parse(c, dr, nget(tp, "loadBalancer"), f, lb);
	fieldf(f, sizeof(f), "%s.outlierDetection", field);
	od_parse(c, dr, nget(tp, "outlierDetection"), f, &lb->od);
	fieldf(f, sizeof(f), "%s.connectionPool", field);
	cpool_parse(c, dr, nget(tp, "connectionPool"), f, cp);
	pls = nget(tp, "portLevelSettings");
	if (!pls || pls->type != WP_YNODE_SEQ)
		return;
	for (const struct wp_ynode *e = pls->child; e; e = e->next, i++) {
		const char *num = sget(nget(e, "port"), "number");
		uint32_t p;

		if (num && parse_u32(num, 65535, &p) && p == port) {
			fieldf(f, sizeof(f), "%s.portLevelSettings[%u].loadBalancer", field, i);
			lb_parse(c, dr, nget(e, "loadBalancer"), f, lb);
			fieldf(f, sizeof(f), "%s.portLevelSettings[%u].outlierDetection", field, i);
			od_parse(c, dr, nget(e, "outlierDetection"), f, &lb->od);
			fieldf(f, sizeof(f), "%s.portLevelSettings[%u].connectionPool", field, i);
			cpool_parse(c, dr, nget(e, "connectionPool"), f, cp);
		}
	}
}

static const struct wp_route_cpool cpool_default = {
        .max_connections = WP_ROUTE_CPOOL_UNLIMITED,
        .max_pending = WP_ROUTE_CPOOL_UNLIMITED,
        .max_requests = WP_ROUTE_CPOOL_UNLIMITED,
        .max_retries = WP_ROUTE_CPOOL_UNLIMITED,
        .tcp_idle_timeout_ms = WP_ROUTE_TCP_IDLE_DEFAULT_MS,
};

static bool labels_match(const struct wp_ynode *sel, const struct wp_labels *l)
{
	if (!sel)
		return true;
	for (const struct wp_ynode *kv = sel->child; kv; kv = kv->next) {
		const char *v = l ? wp_labels_get(l, kv->key) : NULL;

		if (!v || !kv->value || strcmp(v, kv->value))
			return false;
	}
	return true;
}

static uint32_t cluster_find(struct cctx *c, const char *ns, const char *name, uint16_t port,
                             const char *subset)
{
	for (uint32_t i = 0; i < c->n_cl; i++) {
		const struct wp_route_cluster *k = &c->cl[i];

		if (k->port == port && !strcmp(k->svc_ns, ns) && !strcmp(k->svc_name, name) &&
		    ((!k->subset && !subset) ||
		     (k->subset && subset && !strcmp(k->subset, subset))))
			return i;
	}
	return NO_CLUSTER;
}

/* Adds one cluster over eps[] (only ready ones, only those whose labels
 * match <sel>). */
static uint32_t cluster_add(struct cctx *c, const char *ns, const char *name, uint16_t port,
                            const char *subset, const struct wp_route_svc_eps *se,
                            const struct wp_ynode *sel, const struct lbspec *lb, const char *fqdn)
{
	struct wp_route_cluster *k;
	struct wp_snap_endpoint *eps;
	struct wp_lb_endpoint *lbe;
	struct wp_lb_params prm = {0};
	uint32_t n = 0;

	if (!GROW(c, c->cl, c->n_cl, c->cap_cl))
		return NO_CLUSTER;
	eps = aalloc(c, sizeof(*eps) * (se->n + 1));
	lbe = calloc(se->n + 1, sizeof(*lbe));
	if (!eps || !lbe) {
		free(lbe);
		c->oom = true;
		return NO_CLUSTER;
	}
	for (uint32_t i = 0; i < se->n; i++) {
		if (!se->eps[i].ready || !labels_match(sel, se->labels ? se->labels[i] : NULL))
			continue;
		eps[n] = se->eps[i];
		lbe[n].addr = se->eps[i].addr;
		lbe[n].port = se->eps[i].port;
		lbe[n].weight = 1;
		n++;
	}
	prm.policy = lb->policy;
	prm.ring_min_size = lb->ring_min;
	prm.maglev_size = lb->maglev;
	prm.od = lb->od;
	if (prm.od.enabled) {
		/* the ejection table's identity of this cluster: its full name */
		char full[512];
		int fl = snprintf(full, sizeof(full), "outbound|%u|%s|%s", port,
		                  subset ? subset : "", fqdn);

		prm.od.cluster_key =
		        wp_lb_hash(full, fl < (int)sizeof(full) ? (size_t)fl : sizeof(full) - 1);
		size_t cn = strnlen(full, sizeof(prm.od.cluster) - 1); /* views: truncated */

		memcpy(prm.od.cluster, full, cn);
		prm.od.cluster[cn] = '\0';
	}
	k = &c->cl[c->n_cl];
	memset(k, 0, sizeof(*k));
	k->lb = wp_lb_table_build(&prm, lbe, n);
	if (!k->lb && errno == EINVAL) {
		/* e.g. a maglev table not larger than the endpoint count */
		prm.maglev_size = 0;
		prm.ring_min_size = 0;
		k->lb = wp_lb_table_build(&prm, lbe, n);
	}
	free(lbe);
	if (!k->lb) {
		c->oom = true;
		return NO_CLUSTER;
	}
	k->svc_ns = astrdup(c, ns);
	k->svc_name = astrdup(c, name);
	k->subset = subset ? astrdup(c, subset) : NULL;
	k->port = port;
	k->name = wp_arena_sprintf(c->a, "outbound|%u|%s|%s", port, subset ? subset : "", fqdn);
	k->endpoints = eps;
	k->n_endpoints = n;
	if (lb->policy == WP_LB_RING_HASH || lb->policy == WP_LB_MAGLEV) {
		k->hash_key = lb->hash_key;
		k->hash_name = lb->hash_name;
		k->hash_name_len = (uint16_t)(lb->hash_name ? strlen(lb->hash_name) : 0);
	}
	if (!k->svc_ns || !k->svc_name || !k->name) {
		c->oom = true;
		wp_lb_table_free(k->lb);
		return NO_CLUSTER;
	}
	return c->n_cl++;
}

/*
 * The cluster for Service ns/name port <port> (and its DestinationRule
 * subsets, built alongside). Returns NO_CLUSTER with *why set when the
 * Service or port does not exist.
 */
uint32_t wp_route_cluster_get(struct cctx *c, const char *ns, const char *name, uint16_t port,
                              const char *subset, const char **why)
{
	struct wp_route_svc_eps se = {0};
	const struct wp_obj *dr;
	const struct wp_ynode *subsets;
	struct lbspec base = {.policy = WP_LB_LEAST_REQUEST};
	struct wp_route_cpool base_cp = cpool_default;
	const char *fqdn;
	uint32_t idx;
	int rc;

	idx = cluster_find(c, ns, name, port, subset);
	if (idx != NO_CLUSTER)
		return idx;
	if (cluster_find(c, ns, name, port, NULL) != NO_CLUSTER) {
		*why = "no such subset";
		return NO_CLUSTER; /* the service is built; the subset does not exist */
	}
	rc = c->in->lookup(c->in->ctx, ns, name, port, c->a, &se);
	if (rc == -ENOMEM) {
		c->oom = true;
		return NO_CLUSTER;
	}
	if (rc) {
		*why = rc == -ESRCH ? "the Service has no such port" : "no such Service";
		return NO_CLUSTER;
	}
	fqdn = svc_host(c, ns, name);
	if (!fqdn) {
		c->oom = true;
		return NO_CLUSTER;
	}
	dr = dr_for(c, fqdn);
	if (dr && dr->spec) {
		tp_parse(c, dr, nget(dr->spec, "trafficPolicy"), "spec.trafficPolicy", port, &base,
		         &base_cp);
	}
	idx = cluster_add(c, ns, name, port, NULL, &se, NULL, &base, fqdn);
	if (idx == NO_CLUSTER)
		return idx;
	c->cl[idx].pool = base_cp;
	subsets = dr && dr->spec ? nget(dr->spec, "subsets") : NULL;
	if (subsets && subsets->type == WP_YNODE_SEQ) {
		uint32_t i = 0;
		char f[96];

		for (const struct wp_ynode *s = subsets->child; s; s = s->next, i++) {
			const char *sn = sget(s, "name");
			const struct wp_ynode *labels = nget(s, "labels");
			struct lbspec lb = base;
			struct wp_route_cpool cp = base_cp;
			uint32_t k;

			fieldf(f, sizeof(f), "spec.subsets[%u]", i);
			if (s->type != WP_YNODE_MAP || !sn || !*sn) {
				wp_route_cerr(c, dr, s, f, "a subset needs a name");
				continue;
			}
			if (labels && labels->type != WP_YNODE_MAP) {
				wp_route_cerr(c, dr, labels, f, "labels must be a mapping");
				continue;
			}
			if (cluster_find(c, ns, name, port, sn) != NO_CLUSTER) {
				wp_route_cerr(c, dr, s, f, "duplicate subset name %s", sn);
				continue;
			}
			fieldf(f, sizeof(f), "spec.subsets[%u].trafficPolicy", i);
			tp_parse(c, dr, nget(s, "trafficPolicy"), f, port, &lb, &cp);
			k = cluster_add(c, ns, name, port, sn, &se, labels, &lb, fqdn);
			if (k == NO_CLUSTER)
				return NO_CLUSTER;
			c->cl[k].pool = cp;
		}
	} else if (subsets) {
		wp_route_cerr(c, dr, subsets, "spec.subsets", "expected a list");
	}
	if (subset) {
		idx = cluster_find(c, ns, name, port, subset);
		if (idx == NO_CLUSTER)
			*why = "no such subset";
	}
	return idx;
}
