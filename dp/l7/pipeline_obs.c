/*
 * The request pipeline's completion stage (see pipeline.h): Istio's
 * standard metrics written once, for the HTTP/1.1 proxy, the h2c / gRPC
 * proxy and opaque TCP tunnels, into the worker's cells (wp/metrics.h).
 *
 * Label values follow Istio's stats filter as a waypoint reports
 * (reporter="waypoint", Envoy's istio_stats with the ServerGateway
 * reporter):
 *   - source_principal: the peer's SPIFFE ID (with spiffe://), "unknown"
 *     without one; source_workload_namespace: the namespace in it, else
 *     the baggage's k8s.namespace.name;
 *   - source_workload / _canonical_service / _canonical_revision /
 *     _cluster from the CONNECT's baggage (k8s.<kind>.name, service.name,
 *     service.version, k8s.cluster.name), "unknown" when absent and
 *     "latest" for a missing revision; source_app / source_version from
 *     app.name / app.version, else service.name / service.version (what
 *     Istio's waypoint test data shows for ztunnel's baggage);
 *   - destination_service / _name / _namespace: the backend Service of the
 *     route (its hostname), the CONNECT's Service for local answers;
 *     the other destination labels from the endpoint picked (for a
 *     CONNECT to a pod, the workload): destination_workload_namespace,
 *     destination_principal (spiffe://<td>/ns/<ns>/sa/<sa>) and, from its
 *     Pod, destination_workload (the Deployment, CronJob, ... as istiod
 *     names it), destination_canonical_service / _revision and
 *     destination_app / _version, which Istio's waypoint fills with the
 *     canonical service and revision (its workload discovery does so);
 *     "unknown" for an endpoint no Pod backs, as Istio writes them;
 *     destination_cluster is the waypoint's cluster (metrics.cluster_id,
 *     Istio's CLUSTER_ID), source_cluster the baggage's;
 *   - request_protocol http / grpc / tcp; response_code ("0": no
 *     response); grpc_response_status: grpc-status from the trailers or a
 *     trailers-only head, else Envoy's mapping of the HTTP status, "" for
 *     plain HTTP; response_flags: Envoy's short flags, "-" when none;
 *     connection_security_policy mutual_tls (the HBONE peer presented a
 *     certificate), else none.
 *
 * Cost per request: no allocation, no lock, no string hashing on the hot
 * path: the connection's ids are interned at CONNECT, per-status and
 * per-flag-set ids once per core, destination ids in small per-core caches
 * keyed by the snapshot's endpoint / cluster pointers and emptied when the
 * snapshot changes; recording hashes the 24 ids (dp/obs/metrics.c).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "http1.h"
#include "pipeline.h"
#include "wp/snapshot_types.h"

static const char *const flag_names[WP_PIPE_FB_MAX] = {
#define WP_PIPE_FLAG_NAME(id, s) [WP_PIPE_FB_##id] = s,
        WP_PIPE_FLAGS(WP_PIPE_FLAG_NAME)
#undef WP_PIPE_FLAG_NAME
};

static uint32_t intern(struct wp_pipe_core *pc, const char *s, size_t len)
{
	return wp_metrics_intern(pc->metrics, s, len);
}

static uint32_t intern_z(struct wp_pipe_core *pc, const char *s)
{
	return s && s[0] ? intern(pc, s, strlen(s)) : WP_METRICS_UNKNOWN;
}

void wp_pipe_core_set_metrics(struct wp_pipe_core *pc, struct wp_metrics_core *m,
                              const char *trust_domain, const char *cluster_domain,
                              const char *cluster_id)
{
	pc->metrics = m;
	pc->record = m != NULL;
	snprintf(pc->td, sizeof(pc->td), "%s", trust_domain ? trust_domain : "cluster.local");
	snprintf(pc->domain, sizeof(pc->domain), "%s",
	         cluster_domain ? cluster_domain : "cluster.local");
	memset(pc->code_id, 0, sizeof(pc->code_id));
	memset(pc->grpc_id, 0, sizeof(pc->grpc_id));
	memset(pc->flags_id, 0, sizeof(pc->flags_id));
	memset(pc->ep_cache, 0, sizeof(pc->ep_cache));
	memset(pc->svc_cache, 0, sizeof(pc->svc_cache));
	if (!m)
		return;
	pc->id_proto[0] = intern(pc, "http", 4);
	pc->id_proto[1] = intern(pc, "grpc", 4);
	pc->id_proto[2] = intern(pc, "tcp", 3);
	pc->id_mtls = intern(pc, "mutual_tls", 10);
	pc->id_none = intern(pc, "none", 4);
	pc->id_latest = intern(pc, "latest", 6);
	pc->id_dash = intern(pc, "-", 1);
	pc->id_cluster = intern_z(pc, cluster_id);
}

/* ---- the connection's labels ------------------------------------------------------------- */

struct baggage {
	const char *v[7];
	size_t len[7];
};

enum { BG_WORKLOAD, BG_NS, BG_CLUSTER, BG_SVC, BG_VER, BG_APP, BG_APPVER };

/* Splits "k=v,k=v" (W3C baggage, as ztunnel writes it; properties after
 * ';' ignored) into the keys Istio reads; the last of a key wins, an empty
 * value is absent. */
static void baggage_parse(const char *p, size_t len, struct baggage *b)
{
	static const struct {
		const char *k;
		uint8_t which;
	} keys[] = {
	        {"k8s.deployment.name", BG_WORKLOAD},
	        {"k8s.pod.name", BG_WORKLOAD},
	        {"k8s.job.name", BG_WORKLOAD},
	        {"k8s.cronjob.name", BG_WORKLOAD},
	        {"k8s.namespace.name", BG_NS},
	        {"k8s.cluster.name", BG_CLUSTER},
	        {"service.name", BG_SVC},
	        {"service.version", BG_VER},
	        {"app.name", BG_APP},
	        {"app.version", BG_APPVER},
	};
	size_t i = 0;

	memset(b, 0, sizeof(*b));
	while (p && i < len) {
		size_t end = i, eq, vend;

		while (end < len && p[end] != ',')
			end++;
		for (eq = i; eq < end && p[eq] != '='; eq++)
			;
		for (vend = eq; vend < end && p[vend] != ';'; vend++)
			;
		if (eq < end) {
			size_t ks = i, ke = eq, vs = eq + 1, ve = vend;

			while (ks < ke && (p[ks] == ' ' || p[ks] == '\t'))
				ks++;
			while (ke > ks && (p[ke - 1] == ' ' || p[ke - 1] == '\t'))
				ke--;
			while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
				vs++;
			while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
				ve--;
			for (size_t k = 0; k < WP_ARRAY_SIZE(keys); k++)
				if (strlen(keys[k].k) == ke - ks &&
				    !memcmp(keys[k].k, p + ks, ke - ks)) {
					b->v[keys[k].which] = ve > vs ? p + vs : NULL;
					b->len[keys[k].which] = ve - vs;
				}
		}
		i = end + 1;
	}
}

static uint32_t intern_or(struct wp_pipe_core *pc, const char *s, size_t len, uint32_t dflt)
{
	return s ? intern(pc, s, len) : dflt;
}

/* The namespace of "<td>/ns/<ns>/sa/<sa>": *ns and its length, or 0. */
static size_t principal_ns(const char *p, size_t len, const char **ns)
{
	for (size_t i = 0; i + 4 <= len; i++) {
		if (memcmp(p + i, "/ns/", 4) != 0)
			continue;
		size_t s = i + 4, e = s;

		while (e < len && p[e] != '/')
			e++;
		*ns = p + s;
		return e - s;
	}
	return 0;
}

/* spiffe://<td>/ns/<ns>/sa/<sa> interned, or unknown. */
static uint32_t dest_principal(struct wp_pipe_core *pc, const char *ns, const char *sa)
{
	char id[WP_METRICS_MAX_VALUE + 1];
	int n;

	if (!ns || !sa || !sa[0])
		return WP_METRICS_UNKNOWN;
	n = snprintf(id, sizeof(id), "spiffe://%s/ns/%s/sa/%s", pc->td, ns, sa);
	if (n < 0 || (size_t)n >= sizeof(id))
		return WP_METRICS_OVERFLOW;
	return intern(pc, id, (size_t)n);
}

/* The labels of the endpoint or workload addressed (enum wp_metrics_label
 * order of dest_labels below): as Istio's waypoint reads them from
 * workload discovery, app and version are the canonical service and
 * revision. An endpoint no Pod backs has only its namespace. */
static const uint8_t dest_labels[WP_PIPE_EP_IDS] = {
        WP_ML_DESTINATION_WORKLOAD_NAMESPACE,
        WP_ML_DESTINATION_PRINCIPAL,
        WP_ML_DESTINATION_WORKLOAD,
        WP_ML_DESTINATION_APP,
        WP_ML_DESTINATION_VERSION,
        WP_ML_DESTINATION_CANONICAL_SERVICE,
        WP_ML_DESTINATION_CANONICAL_REVISION,
};

static void dest_ids(struct wp_pipe_core *pc, const char *ns, const char *sa, const char *wl,
                     const char *canon, const char *rev, uint32_t id[WP_PIPE_EP_IDS])
{
	id[0] = intern_z(pc, ns);
	id[1] = dest_principal(pc, ns, sa);
	id[2] = intern_z(pc, wl);
	id[3] = id[5] = intern_z(pc, canon);
	id[4] = id[6] = intern_z(pc, rev);
}

static void set_dest(uint32_t *v, const uint32_t id[WP_PIPE_EP_IDS])
{
	for (int i = 0; i < WP_PIPE_EP_IDS; i++)
		v[dest_labels[i]] = id[i];
}

void wp_pipe_conn_labels(struct wp_pipe_conn *c, const char *baggage, size_t baggage_len,
                         const struct wp_snap_service *svc, const struct wp_snap_workload *wl)
{
	struct wp_pipe_core *pc = c->core;
	struct wp_metrics_labels *l = &c->ml;
	struct baggage b;
	const char *ns = NULL;
	size_t ns_len = 0;
	uint32_t *v = l->v;

	c->ml_ready = false;
	c->last_valid = false;
	if (!pc || !pc->metrics)
		return;
	memset(l, 0, sizeof(*l)); /* every label "unknown" */
	baggage_parse(baggage, baggage_len, &b);
	if (c->principal) {
		char id[WP_METRICS_MAX_VALUE + 1];
		int n = snprintf(id, sizeof(id), "spiffe://%.*s", (int)c->principal_len,
		                 c->principal);

		v[WP_ML_SOURCE_PRINCIPAL] = n > 0 && (size_t)n < sizeof(id)
		                                    ? intern(pc, id, (size_t)n)
		                                    : WP_METRICS_OVERFLOW;
		ns_len = principal_ns(c->principal, c->principal_len, &ns);
	}
	if (ns_len == 0 && b.v[BG_NS]) {
		ns = b.v[BG_NS];
		ns_len = b.len[BG_NS];
	}
	v[WP_ML_SOURCE_WORKLOAD_NAMESPACE] = intern_or(pc, ns_len ? ns : NULL, ns_len, 0);
	v[WP_ML_SOURCE_WORKLOAD] =
	        intern_or(pc, b.v[BG_WORKLOAD], b.len[BG_WORKLOAD], WP_METRICS_UNKNOWN);
	v[WP_ML_SOURCE_CANONICAL_SERVICE] =
	        intern_or(pc, b.v[BG_SVC], b.len[BG_SVC], WP_METRICS_UNKNOWN);
	v[WP_ML_SOURCE_CANONICAL_REVISION] =
	        intern_or(pc, b.v[BG_VER], b.len[BG_VER], pc->id_latest);
	v[WP_ML_SOURCE_APP] = b.v[BG_APP] ? intern(pc, b.v[BG_APP], b.len[BG_APP])
	                                  : v[WP_ML_SOURCE_CANONICAL_SERVICE];
	v[WP_ML_SOURCE_VERSION] = b.v[BG_APPVER] ? intern(pc, b.v[BG_APPVER], b.len[BG_APPVER])
	                          : b.v[BG_VER]  ? v[WP_ML_SOURCE_CANONICAL_REVISION]
	                                         : WP_METRICS_UNKNOWN;
	v[WP_ML_SOURCE_CLUSTER] =
	        intern_or(pc, b.v[BG_CLUSTER], b.len[BG_CLUSTER], WP_METRICS_UNKNOWN);
	if (svc) {
		v[WP_ML_DESTINATION_SERVICE] = intern_z(pc, svc->hostname);
		v[WP_ML_DESTINATION_SERVICE_NAME] = intern_z(pc, svc->name);
		v[WP_ML_DESTINATION_SERVICE_NAMESPACE] = intern_z(pc, svc->ns);
	} else if (wl) {
		uint32_t id[WP_PIPE_EP_IDS];

		dest_ids(pc, wl->ns, wl->service_account, wl->workload, wl->canonical_name,
		         wl->canonical_revision, id);
		set_dest(v, id);
	}
	v[WP_ML_DESTINATION_CLUSTER] = pc->id_cluster; /* the waypoint's own, as Istio's */
	v[WP_ML_CONNECTION_SECURITY_POLICY] = c->principal ? pc->id_mtls : pc->id_none;
	v[WP_ML_RESPONSE_FLAGS] = pc->id_dash;
	c->ml_ready = true;
}

/* ---- per request ----------------------------------------------------------------------- */

void wp_pipe_rec_begin(const struct wp_pipe_conn *c, struct wp_pipe_rec *r, bool is_grpc)
{
	/* kept when something uses it: metrics, the access log or a span */
	r->active = c && c->ml_ready && (c->core->record || wp_pipe_logs(c) || wp_pipe_traces(c));
	r->start_us = c && c->core ? c->core->now_us : 0;
	r->req_bytes = r->resp_bytes = 0;
	r->status = 0;
	r->flags = 0;
	r->grpc = -1;
	r->is_grpc = is_grpc;
	r->has_svc = r->has_ep = false;
	r->tr.span = r->tr.headers = false;
}

/* The slot of <key> in a cache of <n> (a power of two) entries. */
static unsigned slot_of(const void *key, unsigned n)
{
	uintptr_t k = (uintptr_t)key;

	return (unsigned)((k >> 4) ^ (k >> 12)) & (n - 1);
}

/* "outbound|PORT|SUBSET|HOST": the HOST (Istio's hostname of the backend). */
static const char *cluster_host(const char *name)
{
	const char *p = name;

	for (int bars = 0; p && bars < 3; bars++) {
		p = strchr(p, '|');
		if (p)
			p++;
	}
	return p && p[0] ? p : NULL;
}

void wp_pipe_rec_dest(const struct wp_pipe_conn *c, struct wp_pipe_rec *r,
                      const struct wp_route_cluster *cl, const struct wp_snap_endpoint *ep)
{
	struct wp_pipe_core *pc;

	if (!r->active)
		return;
	pc = c->core;
	if (cl) {
		unsigned i = slot_of(cl, WP_PIPE_SVC_CACHE);

		if (pc->svc_cache[i].key != cl || pc->svc_cache[i].gen != pc->gen) {
			const char *host = cl->name ? cluster_host(cl->name) : NULL;
			char buf[WP_METRICS_MAX_VALUE + 1];
			int n = 0;

			if (!host && cl->svc_name && cl->svc_ns) {
				n = snprintf(buf, sizeof(buf), "%s.%s.svc.%s", cl->svc_name,
				             cl->svc_ns, pc->domain);
				host = n > 0 && (size_t)n < sizeof(buf) ? buf : NULL;
			}
			pc->svc_cache[i].key = cl;
			pc->svc_cache[i].gen = pc->gen;
			pc->svc_cache[i].id[0] = intern_z(pc, host);
			pc->svc_cache[i].id[1] = intern_z(pc, cl->svc_name);
			pc->svc_cache[i].id[2] = intern_z(pc, cl->svc_ns);
			pc->svc_cache[i].id[3] = intern_z(pc, cl->name);
		}
		memcpy(r->svc, pc->svc_cache[i].id, sizeof(r->svc));
		r->has_svc = true;
	}
	if (ep) {
		unsigned i = slot_of(ep, WP_PIPE_EP_CACHE);

		if (pc->ep_cache[i].key != ep || pc->ep_cache[i].gen != pc->gen) {
			pc->ep_cache[i].key = ep;
			pc->ep_cache[i].gen = pc->gen;
			dest_ids(pc, ep->ns, ep->service_account, ep->workload, ep->canonical_name,
			         ep->canonical_revision, pc->ep_cache[i].id);
		}
		memcpy(r->ep, pc->ep_cache[i].id, sizeof(r->ep));
		r->up_addr = ep->addr;
		r->up_port = ep->port;
		r->has_ep = true;
	}
}

uint32_t wp_pipe_http_to_grpc(uint16_t status)
{
	switch (status) {
	case 400:
		return 13; /* INTERNAL */
	case 401:
		return 16; /* UNAUTHENTICATED */
	case 403:
		return 7; /* PERMISSION_DENIED */
	case 404:
		return 12; /* UNIMPLEMENTED */
	case 429:
	case 502:
	case 503:
	case 504:
		return 14; /* UNAVAILABLE */
	default:
		return 2; /* UNKNOWN */
	}
}

static uint32_t code_label(struct wp_pipe_core *pc, uint16_t status)
{
	char b[8];
	int n;

	if (status >= WP_PIPE_MAX_CODE)
		status = 0;
	if (!pc->code_id[status]) {
		n = snprintf(b, sizeof(b), "%u", status);
		pc->code_id[status] = intern(pc, b, (size_t)n) + 1;
	}
	return pc->code_id[status] - 1;
}

static uint32_t grpc_label(struct wp_pipe_core *pc, const struct wp_pipe_rec *r)
{
	uint32_t g;
	char b[8];
	int n;

	if (!r->is_grpc)
		return WP_METRICS_EMPTY;
	if (r->grpc >= 0)
		g = (uint32_t)r->grpc;
	else if (r->status)
		g = wp_pipe_http_to_grpc(r->status);
	else
		return WP_METRICS_EMPTY; /* no answer at all: Envoy has no status either */
	if (g > 16) {
		n = snprintf(b, sizeof(b), "%u", g);
		return intern(pc, b, (size_t)n);
	}
	if (!pc->grpc_id[g]) {
		n = snprintf(b, sizeof(b), "%u", g);
		pc->grpc_id[g] = intern(pc, b, (size_t)n) + 1;
	}
	return pc->grpc_id[g] - 1;
}

static uint32_t flags_label(struct wp_pipe_core *pc, uint16_t flags)
{
	char b[64];
	size_t n = 0;

	flags &= (uint16_t)((1u << WP_PIPE_FB_MAX) - 1);
	if (!flags)
		return pc->id_dash;
	if (!pc->flags_id[flags]) {
		for (unsigned i = 0; i < WP_PIPE_FB_MAX; i++) {
			size_t l = strlen(flag_names[i]);

			if (!(flags & (1u << i)))
				continue;
			if (n)
				b[n++] = ',';
			memcpy(b + n, flag_names[i], l);
			n += l;
		}
		pc->flags_id[flags] = intern(pc, b, n) + 1;
	}
	return pc->flags_id[flags] - 1;
}

/* The name of h is <lit> (parsed names are lower-case). */
#define HDR_IS(h, lit)                                                                             \
	((h)->name_len == sizeof(lit) - 1 && !memcmp((h)->name, lit, sizeof(lit) - 1))

void wp_pipe_view_http1(struct wp_pipe_log_view *v, const struct wp_http1_msg *m,
                        const char *authority, size_t authority_len, const char *reqid)
{
	const struct wp_http_hdr *host = NULL, *ua = NULL, *xff = NULL, *rid = NULL;

	/* one pass, the first of each name (the parser has named Host and
	 * x-request-id already) */
	for (uint16_t i = 0; i < m->n_hdrs; i++) {
		const struct wp_http_hdr *h = &m->hdrs[i];

		if (h->id == WP_HDR_HOST)
			host = host ? host : h;
		else if (h->id == WP_HDR_X_REQUEST_ID)
			rid = rid ? rid : h;
		else if (h->id != WP_HDR_OTHER)
			continue;
		else if (!ua && HDR_IS(h, "user-agent"))
			ua = h;
		else if (!xff && HDR_IS(h, "x-forwarded-for"))
			xff = h;
	}
	memset(v, 0, sizeof(*v));
	v->method = llhttp_method_name((llhttp_method_t)m->method);
	v->method_len = (uint32_t)strlen(v->method);
	v->path = m->target;
	v->path_len = m->target_len;
	v->authority = host ? host->value : authority;
	v->authority_len = host ? host->value_len : (uint32_t)authority_len;
	v->user_agent = ua ? ua->value : NULL;
	v->user_agent_len = ua ? ua->value_len : 0;
	v->xff = xff ? xff->value : NULL;
	v->xff_len = xff ? xff->value_len : 0;
	v->request_id = rid ? rid->value : reqid;
	v->request_id_len = rid ? rid->value_len : reqid ? WP_HTTP1_REQID_LEN : 0;
	v->proto = m->http_minor == 0 ? WP_ALOG_HTTP10 : WP_ALOG_HTTP11;
}

/* The access-log line of a recorded request (the ring full: dropped,
 * counted): the raw numbers and copies of the text fields, the writer
 * formats. */
static void log_line(const struct wp_pipe_conn *c, const struct wp_pipe_rec *r,
                     const struct wp_pipe_log_view *v, uint32_t flags_id, uint64_t dur)
{
	struct wp_pipe_core *pc = c->core;
	struct wp_alog_text t[WP_ALOG_NTEXT] = {
	        [WP_ALOG_METHOD] = {v->method, v->method_len},
	        [WP_ALOG_PATH] = {v->path, v->path_len},
	        [WP_ALOG_AUTHORITY] = {v->authority, v->authority_len},
	        [WP_ALOG_USER_AGENT] = {v->user_agent, v->user_agent_len},
	        [WP_ALOG_REQUEST_ID] = {v->request_id, v->request_id_len},
	        [WP_ALOG_XFF] = {v->xff, v->xff_len},
	};
	struct wp_alog_entry *e;

	t[WP_ALOG_FLAGS].s = wp_metrics_string(pc->metrics, flags_id, &t[WP_ALOG_FLAGS].len);
	if (r->has_svc && r->svc[3] != WP_METRICS_UNKNOWN)
		t[WP_ALOG_CLUSTER].s =
		        wp_metrics_string(pc->metrics, r->svc[3], &t[WP_ALOG_CLUSTER].len);
	if (!(e = wp_alog_reserve(pc->alog, t)))
		return;
	e->start_us = (uint64_t)((int64_t)r->start_us + pc->wall_off_us);
	e->duration_us = dur;
	e->bytes_rx = r->req_bytes;
	e->bytes_tx = r->resp_bytes;
	e->upstream = r->up_addr;
	e->local = c->dst;
	e->remote = c->remote;
	e->upstream_port = r->up_port;
	e->local_port = c->dst_port;
	e->status = r->status;
	e->proto = v->proto;
	e->has_upstream = r->has_ep;
	wp_alog_commit(pc->alog);
}

/* The HTTP series of a request: the connection's last one when the labels
 * the request sets are the same (most requests of a connection go to the
 * same service and end the same way), else the looked-up one. */
static uint32_t http_series(struct wp_pipe_conn *c, const struct wp_pipe_rec *r, uint32_t flags_id)
{
	struct wp_pipe_core *pc = c->core;
	struct wp_metrics_labels l;
	uint32_t k[WP_PIPE_SERIES_KEY] = {0};

	if (r->has_svc)
		memcpy(k, r->svc, 3 * sizeof(k[0]));
	else
		k[0] = k[1] = k[2] = UINT32_MAX; /* no id is: the connection's own */
	if (r->has_ep)
		memcpy(k + 3, r->ep, sizeof(r->ep));
	else
		k[3] = UINT32_MAX;
	k[3 + WP_PIPE_EP_IDS] = pc->id_proto[r->is_grpc ? 1 : 0];
	k[4 + WP_PIPE_EP_IDS] = code_label(pc, r->status);
	k[5 + WP_PIPE_EP_IDS] = grpc_label(pc, r);
	k[6 + WP_PIPE_EP_IDS] = flags_id;
	if (c->last_valid && !memcmp(k, c->last_key, sizeof(k)))
		return c->last_series;
	l = c->ml;
	if (r->has_svc) {
		l.v[WP_ML_DESTINATION_SERVICE] = r->svc[0];
		l.v[WP_ML_DESTINATION_SERVICE_NAME] = r->svc[1];
		l.v[WP_ML_DESTINATION_SERVICE_NAMESPACE] = r->svc[2];
	}
	if (r->has_ep)
		set_dest(l.v, r->ep);
	l.v[WP_ML_REQUEST_PROTOCOL] = k[3 + WP_PIPE_EP_IDS];
	l.v[WP_ML_RESPONSE_CODE] = k[4 + WP_PIPE_EP_IDS];
	l.v[WP_ML_GRPC_RESPONSE_STATUS] = k[5 + WP_PIPE_EP_IDS];
	l.v[WP_ML_RESPONSE_FLAGS] = flags_id;
	memcpy(c->last_key, k, sizeof(k));
	c->last_series = wp_metrics_http_series(pc->metrics, &l);
	/* the overflow series is not kept: each request that lands there
	 * goes through the lookup, which counts it */
	c->last_valid = c->last_series != 0;
	return c->last_series;
}

void wp_pipe_rec_end(struct wp_pipe_conn *c, struct wp_pipe_rec *r,
                     const struct wp_pipe_log_view *v)
{
	struct wp_pipe_core *pc;
	uint32_t flags_id;
	uint64_t dur;

	if (!r->active || !c)
		return;
	r->active = false;
	pc = c->core;
	flags_id = flags_label(pc, r->flags);
	dur = pc->now_us > r->start_us ? pc->now_us - r->start_us : 0;
	if (pc->record)
		wp_metrics_http_add(pc->metrics, http_series(c, r, flags_id), dur, r->req_bytes,
		                    r->resp_bytes);
	if (pc->alog && v)
		log_line(c, r, v, flags_id, dur);
	if (r->tr.span)
		wp_pipe_trace_span(c, r, v, flags_id, dur);
}

/* ---- opaque TCP ----------------------------------------------------------------------- */

void wp_pipe_tcp_dest(struct wp_pipe_conn *c, const struct wp_route_cluster *cl,
                      const struct wp_snap_endpoint *ep)
{
	struct wp_pipe_core *pc = c->core;
	uint32_t id[WP_PIPE_EP_IDS];

	if (!c->ml_ready || !ep)
		return;
	dest_ids(pc, ep->ns, ep->service_account, ep->workload, ep->canonical_name,
	         ep->canonical_revision, id);
	set_dest(c->ml.v, id);
	c->tcp_has_up = true;
	c->tcp_up = ep->addr;
	c->tcp_up_port = ep->port;
	c->tcp_cluster = cl && wp_pipe_logs(c) ? intern_z(pc, cl->name) : WP_METRICS_UNKNOWN;
}

void wp_pipe_tcp_open(struct wp_pipe_conn *c)
{
	struct wp_pipe_core *pc = c->core;
	struct wp_metrics_labels l;

	if (c->tcp_open || !c->ml_ready)
		return;
	l = c->ml;
	l.v[WP_ML_REQUEST_PROTOCOL] = pc->id_proto[2];
	c->tcp_open = true;
	c->tcp_start_us = pc->now_us;
	c->tcp_sent = c->tcp_received = 0;
	if (!pc->record)
		return;
	c->tcp_series = wp_metrics_tcp_series(pc->metrics, &l);
	wp_metrics_tcp_add(pc->metrics, c->tcp_series, 1, 0, 0, 0);
}

void wp_pipe_tcp_close(struct wp_pipe_conn *c)
{
	struct wp_pipe_core *pc = c->core;
	struct wp_alog_text t[WP_ALOG_NTEXT] = {[WP_ALOG_FLAGS] = {"-", 1}};
	struct wp_alog_entry *e;

	if (!c->tcp_open)
		return;
	c->tcp_open = false;
	if (pc->record)
		wp_metrics_tcp_add(pc->metrics, c->tcp_series, 0, 1, 0, 0);
	if (!wp_pipe_logs(c))
		return;
	if (c->tcp_has_up && c->tcp_cluster != WP_METRICS_UNKNOWN)
		t[WP_ALOG_CLUSTER].s =
		        wp_metrics_string(pc->metrics, c->tcp_cluster, &t[WP_ALOG_CLUSTER].len);
	if (!(e = wp_alog_reserve(pc->alog, t)))
		return;
	e->start_us = (uint64_t)((int64_t)c->tcp_start_us + pc->wall_off_us);
	e->duration_us = pc->now_us > c->tcp_start_us ? pc->now_us - c->tcp_start_us : 0;
	e->bytes_rx = c->tcp_received;
	e->bytes_tx = c->tcp_sent;
	e->upstream = c->tcp_up;
	e->local = c->dst;
	e->remote = c->remote;
	e->upstream_port = c->tcp_up_port;
	e->local_port = c->dst_port;
	e->status = 0;
	e->proto = WP_ALOG_TCP;
	e->has_upstream = c->tcp_has_up;
	wp_alog_commit(pc->alog);
}
