/*
 * Gateway and GatewayClass status for the Gateways this appliance owns, and
 * the WaypointAccepted condition of the AuthorizationPolicies bound to them
 * (see kube_source.h; the condition is decided in authz_status.c). One
 * thread with its own API client: it keeps the latest copy of every
 * Gateway and GatewayClass the watches saw (and each policy's metadata and
 * targetRefs), a set of dirty keys, and writes status by read-modify-write
 * through the /status subresource with the object's resourceVersion (409 →
 * read again), so conditions other controllers own are never lost.
 *
 * With leader election (lease.h) several appliances serving one waypoint
 * each run this writer, and only the one holding the Lease writes: every
 * PUT is preceded by wp_kube_lease_leading(), which turns false as soon as
 * the renew deadline passes, even while the lease thread hangs on a
 * partitioned API server. A follower keeps its dirty sets and cached
 * objects; on becoming leader it marks everything dirty and writes what
 * differs (the previous leader may have died mid-batch).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lease.h"
#include "status.h"
#include "wp/counters.h"

#define ISTIO_WAYPOINT_CLASS "istio-waypoint"

struct wp_kube_status {
	struct wp_kube_status_policy pol;
	char *controller_name, *service_name, *cluster_domain, *service_namespace, *served_class;
	char **ips, **served;
	struct wp_kube *k;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	json_t *gateways;      /* "ns/name" -> Gateway */
	json_t *classes;       /* name -> GatewayClass */
	json_t *dirty_gw;      /* "ns/name" -> true */
	json_t *dirty_classes; /* name -> true */
	json_t *policies;      /* "ns/name" -> AuthorizationPolicy (metadata, targetRefs) */
	json_t *dirty_ap;      /* "ns/name" -> true */
	json_t *ours_ap;       /* "ns/name" -> true: we wrote its WaypointAccepted */
	json_t *services;      /* wp_kube_authz_view.services; NULL before the first */
	char *root_ns;
	struct wp_kube_backoff bo;
	uint64_t writes;
	unsigned inflight;           /* keys of the batch being written */
	struct wp_kube_lease *lease; /* NULL: no election, always write */
};

/* Whether status may be written now (counts the refusals). */
static bool may_write(struct wp_kube_status *st)
{
	if (!st->lease || wp_kube_lease_leading(st->lease, wp_kube_lease_now()))
		return true;
	wp_ctr_inc(wp_kube_counters(st->k), WP_CTR_KUBE_STATUS_NOT_LEADER);
	return false;
}

/* --- policy ------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool is_waypoint_gateway(json_t *gw)
{
	json_t *ls = json_object_get(json_object_get(gw, "spec"), "listeners"), *l;
	size_t i;

	json_array_foreach(ls, i, l)
	{
		const char *proto = jstr(l, "protocol");
		json_t *port = json_object_get(l, "port");
		if (proto && !strcmp(proto, "HBONE") && json_integer_value(port) == 15008)
			return true;
	}
	return false;
}

/* Istio's manual deployment: an istio-waypoint Gateway whose spec.addresses
 * names a Hostname. istiod writes that status. */
static bool is_istio_manual(json_t *gw)
{
	json_t *spec = json_object_get(gw, "spec"), *a;
	const char *cls = jstr(spec, "gatewayClassName");
	size_t i;

	if (!cls || strcmp(cls, ISTIO_WAYPOINT_CLASS))
		return false;
	json_array_foreach(json_object_get(spec, "addresses"), i, a)
	{
		const char *t = jstr(a, "type");
		if (t && !strcmp(t, "Hostname"))
			return true;
	}
	return false;
}

/* In the served set (the resolver's rule: by class, or by "ns/name"). */
static bool is_served(const struct wp_kube_status_policy *p, json_t *gw)
{
	json_t *meta = json_object_get(gw, "metadata");
	const char *cls = jstr(json_object_get(gw, "spec"), "gatewayClassName");
	const char *ns = jstr(meta, "namespace"), *name = jstr(meta, "name");
	size_t nl;

	if (p->served_class && p->served_class[0] && cls && !strcmp(cls, p->served_class))
		return true;
	if (!ns || !name)
		return false;
	nl = strlen(ns);
	for (unsigned i = 0; i < p->n_served_gateways; i++) {
		const char *g = p->served_gateways[i];
		if (!strncmp(g, ns, nl) && g[nl] == '/' && !strcmp(g + nl + 1, name))
			return true;
	}
	return false;
}

bool wp_kube_status_owns(const struct wp_kube_status_policy *p, json_t *gw,
                         const char *class_controller)
{
	if (is_istio_manual(gw))
		return false;
	if (p->served_filter) {
		if (!is_served(p, gw))
			return false;
		if (p->standalone)
			return true;
	}
	if (class_controller && !strcmp(class_controller, p->controller_name))
		return true;
	return p->standalone && is_waypoint_gateway(gw);
}

/* A condition as Gateway API wants it; lastTransitionTime from old when the
 * status is unchanged. */
static json_t *condition(const char *type, const char *status, const char *reason, const char *msg,
                         json_int_t gen, json_t *old_conds, const char *now)
{
	const char *ltt = now;
	json_t *c;
	size_t i;

	json_array_foreach(old_conds, i, c)
	{
		const char *t = jstr(c, "type"), *st = jstr(c, "status");
		if (t && st && !strcmp(t, type) && !strcmp(st, status) &&
		    jstr(c, "lastTransitionTime"))
			ltt = jstr(c, "lastTransitionTime");
	}
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "type", type, "status", status, "reason",
	                 reason, "message", msg, "observedGeneration", gen, "lastTransitionTime",
	                 ltt);
}

static json_t *find_listener(json_t *arr, const char *name)
{
	json_t *l;
	size_t i;

	json_array_foreach(arr, i, l)
	{
		const char *n = jstr(l, "name");
		if (n && !strcmp(n, name))
			return l;
	}
	return NULL;
}

json_t *wp_kube_status_desired(const struct wp_kube_status_policy *p, json_t *gw, const char *now)
{
	json_t *meta = json_object_get(gw, "metadata");
	json_t *cur = json_object_get(gw, "status");
	json_t *old_conds = json_object_get(cur, "conditions");
	json_int_t gen = json_integer_value(json_object_get(meta, "generation"));
	const char *ns = jstr(meta, "namespace");
	json_t *st = json_object(), *conds = json_array(), *addrs = json_array(), *lst;
	json_t *c, *l;
	char host[512], msg[700];
	size_t i;

	if (!gen)
		gen = 1;
	if (p->n_ips) {
		for (unsigned j = 0; j < p->n_ips; j++)
			json_array_append_new(addrs, json_pack("{s:s, s:s}", "type", "IPAddress",
			                                       "value", p->ips[j]));
		snprintf(msg, sizeof(msg), "Resource programmed, assigned to address(es) %s%s",
		         p->ips[0], p->n_ips > 1 ? ", ..." : "");
	} else {
		if (p->service_namespace && p->service_namespace[0])
			ns = p->service_namespace;
		snprintf(host, sizeof(host), "%s.%s.svc.%s", p->service_name, ns ? ns : "default",
		         p->cluster_domain);
		json_array_append_new(addrs,
		                      json_pack("{s:s, s:s}", "type", "Hostname", "value", host));
		snprintf(msg, sizeof(msg), "Resource programmed, assigned to service(s) %s:15008",
		         host);
	}
	/* Others' conditions first, in their order; ours replace ours. */
	json_array_foreach(old_conds, i, c)
	{
		const char *t = jstr(c, "type");
		if (t && strcmp(t, "Accepted") && strcmp(t, "Programmed"))
			json_array_append(conds, c);
	}
	json_array_append_new(conds, condition("Accepted", "True", "Accepted", "Resource accepted",
	                                       gen, old_conds, now));
	json_array_append_new(
	        conds, condition("Programmed", "True", "Programmed", msg, gen, old_conds, now));
	lst = json_array();
	json_array_foreach(json_object_get(json_object_get(gw, "spec"), "listeners"), i, l)
	{
		const char *name = jstr(l, "name");
		json_t *oldl = find_listener(json_object_get(cur, "listeners"), name ? name : "");
		json_t *oc = json_object_get(oldl, "conditions");
		json_t *att = json_object_get(oldl, "attachedRoutes");
		json_t *lc = json_array();

		if (!name)
			continue;
		json_array_append_new(lc, condition("Accepted", "True", "Accepted",
		                                    "No errors found", gen, oc, now));
		json_array_append_new(lc, condition("Programmed", "True", "Programmed",
		                                    "No errors found", gen, oc, now));
		json_array_append_new(lc, condition("ResolvedRefs", "True", "ResolvedRefs",
		                                    "No errors found", gen, oc, now));
		json_array_append_new(lst, json_pack("{s:s, s:[], s:I, s:o}", "name", name,
		                                     "supportedKinds", "attachedRoutes",
		                                     att ? json_integer_value(att) : (json_int_t)0,
		                                     "conditions", lc));
	}
	json_object_set_new(st, "addresses", addrs);
	json_object_set_new(st, "conditions", conds);
	json_object_set_new(st, "listeners", lst);
	return st;
}

static json_t *class_desired(json_t *gc, const char *now)
{
	json_t *cur = json_object_get(json_object_get(gc, "status"), "conditions");
	json_int_t gen =
	        json_integer_value(json_object_get(json_object_get(gc, "metadata"), "generation"));
	json_t *conds = json_array(), *c;
	size_t i;

	json_array_foreach(cur, i, c)
	{
		const char *t = jstr(c, "type");
		if (t && strcmp(t, "Accepted"))
			json_array_append(conds, c);
	}
	json_array_append_new(conds, condition("Accepted", "True", "Accepted",
	                                       "Handled by waypointd", gen ? gen : 1, cur, now));
	return json_pack("{s:o}", "conditions", conds);
}

/* --- writer thread --------------------------------------------------------- */

static void now_rfc3339(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Reads the object, and writes the desired status when it differs. Returns
 * 0 (done or nothing to do), -EAGAIN to retry later, -EPERM when this
 * appliance does not lead (kept for when it does). */
/* GETs the object at path for a read-modify-write: 1 with *obj (a
 * reference), 0 when it is gone (404: nothing to write), -EAGAIN on a
 * failure to retry later. */
static int get_fresh(struct wp_kube_status *st, const char *path, json_t **obj)
{
	struct wp_kube_resp resp = {0};

	if (wp_kube_get(st->k, path, &resp) != 0) {
		wp_kube_resp_clear(&resp);
		return -EAGAIN;
	}
	if (resp.status == 404) {
		wp_kube_resp_clear(&resp);
		return 0;
	}
	if (resp.status != 200 || !json_is_object(resp.json)) {
		wp_kube_resp_clear(&resp);
		return -EAGAIN;
	}
	*obj = json_incref(resp.json);
	wp_kube_resp_clear(&resp);
	return 1;
}

static int write_one(struct wp_kube_status *st, int res, const char *ns, const char *name)
{
	const struct wp_kube_resource *r = &wp_kube_resources[res];
	struct wp_kube_resp resp;
	char path[600], spath[620], now[40];
	json_t *obj, *want;
	char *body;
	int ret;

	for (int attempt = 0; attempt < 5; attempt++) {
		if (wp_kube_path(path, sizeof(path), r, ns, name, NULL) < 0 ||
		    wp_kube_path(spath, sizeof(spath), r, ns, name, "status") < 0)
			return 0;
		ret = get_fresh(st, path, &obj);
		if (ret <= 0)
			return ret;
		if (res == WP_KUBE_RES_GATEWAY) {
			/* Ownership is re-checked on the fresh copy. */
			const char *cls = jstr(json_object_get(obj, "spec"), "gatewayClassName");
			json_t *gc;
			const char *ctrl = NULL;

			pthread_mutex_lock(&st->lock);
			gc = json_object_get(st->classes, cls ? cls : "");
			ctrl = gc ? jstr(json_object_get(gc, "spec"), "controllerName") : NULL;
			bool owns = wp_kube_status_owns(&st->pol, obj, ctrl);
			pthread_mutex_unlock(&st->lock);
			if (!owns) {
				json_decref(obj);
				return 0;
			}
		}
		now_rfc3339(now, sizeof(now));
		want = res == WP_KUBE_RES_GATEWAY ? wp_kube_status_desired(&st->pol, obj, now)
		                                  : class_desired(obj, now);
		if (json_equal(want, json_object_get(obj, "status"))) {
			json_decref(want);
			json_decref(obj);
			return 0;
		}
		if (!may_write(st)) {
			json_decref(want);
			json_decref(obj);
			return -EPERM;
		}
		json_object_set_new(obj, "status", want);
		body = json_dumps(obj, JSON_COMPACT);
		json_decref(obj);
		ret = wp_kube_request(st->k, "PUT", spath, "application/json", body, strlen(body),
		                      &resp);
		free(body);
		if (ret == 0 && resp.status == 200) {
			wp_kube_resp_clear(&resp);
			__atomic_add_fetch(&st->writes, 1, __ATOMIC_RELAXED);
			return 0;
		}
		wp_ctr_inc(wp_kube_counters(st->k), WP_CTR_KUBE_STATUS_WRITE_FAILED);
		if (ret == 0 && resp.status == 409) {
			wp_kube_resp_clear(&resp);
			continue; /* someone else wrote: read again */
		}
		if (ret == 0 && resp.status == 404) {
			wp_kube_resp_clear(&resp);
			return 0;
		}
		wp_kube_resp_clear(&resp);
		return -EAGAIN;
	}
	return -EAGAIN;
}

/* The view a policy's condition is decided from (under lock). */
static struct wp_kube_authz_view ap_view(struct wp_kube_status *st, const char *key)
{
	return (struct wp_kube_authz_view){
	        .pol = &st->pol,
	        .root_ns = st->root_ns,
	        .gateways = st->gateways,
	        .classes = st->classes,
	        .services = st->services,
	        .was_ours = json_object_get(st->ours_ap, key) != NULL,
	};
}

/* Writes policy ns/name's WaypointAccepted when it is owed and differs.
 * 0 (done or nothing to do), -EAGAIN to retry later, -EPERM not leading. */
static int write_ap(struct wp_kube_status *st, const char *key, const char *ns, const char *name)
{
	const struct wp_kube_resource *r = &wp_kube_resources[WP_KUBE_RES_AUTHORIZATIONPOLICY];
	struct wp_kube_authz_view v;
	struct wp_kube_resp resp;
	char path[600], spath[620], now[40];
	json_t *obj, *want, *cached;
	char *body;
	int ret;

	/* nothing owed on the cached copy: no read at all */
	pthread_mutex_lock(&st->lock);
	v = ap_view(st, key);
	cached = json_object_get(st->policies, key);
	want = cached ? wp_kube_authz_condition(&v, cached) : NULL;
	if (!want)
		json_object_del(st->ours_ap, key);
	pthread_mutex_unlock(&st->lock);
	if (!want)
		return 0;
	json_decref(want);
	if (wp_kube_path(path, sizeof(path), r, ns, name, NULL) < 0 ||
	    wp_kube_path(spath, sizeof(spath), r, ns, name, "status") < 0)
		return 0;
	for (int attempt = 0; attempt < 5; attempt++) {
		ret = get_fresh(st, path, &obj);
		if (ret <= 0)
			return ret;
		now_rfc3339(now, sizeof(now));
		pthread_mutex_lock(&st->lock);
		v = ap_view(st, key);
		want = wp_kube_authz_status_desired(&v, obj, now);
		pthread_mutex_unlock(&st->lock);
		if (!want || json_equal(want, json_object_get(obj, "status"))) {
			pthread_mutex_lock(&st->lock);
			if (want)
				json_object_set_new(st->ours_ap, key, json_true());
			pthread_mutex_unlock(&st->lock);
			json_decref(want);
			json_decref(obj);
			return 0;
		}
		if (!may_write(st)) {
			json_decref(want);
			json_decref(obj);
			return -EPERM;
		}
		json_object_set_new(obj, "status", want);
		body = json_dumps(obj, JSON_COMPACT);
		json_decref(obj);
		if (!body)
			return -EAGAIN;
		ret = wp_kube_request(st->k, "PUT", spath, "application/json", body, strlen(body),
		                      &resp);
		free(body);
		if (ret == 0 && resp.status == 200) {
			wp_kube_resp_clear(&resp);
			pthread_mutex_lock(&st->lock);
			json_object_set_new(st->ours_ap, key, json_true());
			pthread_mutex_unlock(&st->lock);
			__atomic_add_fetch(&st->writes, 1, __ATOMIC_RELAXED);
			return 0;
		}
		wp_ctr_inc(wp_kube_counters(st->k), WP_CTR_KUBE_STATUS_WRITE_FAILED);
		if (ret == 0 && (resp.status == 409 || resp.status == 404)) {
			bool gone = resp.status == 404;

			wp_kube_resp_clear(&resp);
			if (gone)
				return 0;
			continue; /* someone else wrote: read again */
		}
		wp_kube_resp_clear(&resp);
		return -EAGAIN;
	}
	return -EAGAIN;
}

static void *status_thread(void *arg)
{
	struct wp_kube_status *st = arg;
	double delay = 0;

	pthread_mutex_lock(&st->lock);
	while (!st->stop) {
		json_t *gws, *gcs, *aps, *v;
		const char *key;
		bool failed = false;

		/* a follower waits for leadership (lease_changed wakes it) */
		if (st->lease && !wp_kube_lease_leading(st->lease, wp_kube_lease_now()))
			delay = delay > 1 ? delay : 1;
		if (delay > 0 ||
		    (!json_object_size(st->dirty_gw) && !json_object_size(st->dirty_classes) &&
		     !json_object_size(st->dirty_ap))) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			if (delay > 0) {
				ts.tv_sec += (time_t)delay;
				ts.tv_nsec += (long)((delay - (double)(time_t)delay) * 1e9);
				if (ts.tv_nsec >= 1000000000L) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000L;
				}
				pthread_cond_timedwait(&st->cond, &st->lock, &ts);
				delay = 0;
			} else {
				pthread_cond_wait(&st->cond, &st->lock);
			}
			continue;
		}
		gws = st->dirty_gw;
		gcs = st->dirty_classes;
		aps = st->dirty_ap;
		st->dirty_gw = json_object();
		st->dirty_classes = json_object();
		st->dirty_ap = json_object();
		st->inflight = (unsigned)(json_object_size(gws) + json_object_size(gcs) +
		                          json_object_size(aps));
		pthread_mutex_unlock(&st->lock);

		json_object_foreach(gcs, key, v)
		{
			int r = write_one(st, WP_KUBE_RES_GATEWAYCLASS, NULL, key);

			if (r != 0) {
				failed |= r != -EPERM;
				pthread_mutex_lock(&st->lock);
				json_object_set_new(st->dirty_classes, key, json_true());
				pthread_mutex_unlock(&st->lock);
			}
		}
		json_object_foreach(gws, key, v)
		{
			char *ns = strdup(key), *slash = strchr(ns, '/');

			*slash = 0;
			int r = write_one(st, WP_KUBE_RES_GATEWAY, ns, slash + 1);

			if (r != 0) {
				failed |= r != -EPERM;
				pthread_mutex_lock(&st->lock);
				json_object_set_new(st->dirty_gw, key, json_true());
				pthread_mutex_unlock(&st->lock);
			}
			free(ns);
		}
		/* policies after the Gateways: their conditions follow them */
		json_object_foreach(aps, key, v)
		{
			char *ns = strdup(key), *slash = ns ? strchr(ns, '/') : NULL;

			if (slash)
				*slash = '\0';
			int r = slash ? write_ap(st, key, ns, slash + 1) : -EAGAIN;

			if (r != 0) {
				failed |= r != -EPERM;
				pthread_mutex_lock(&st->lock);
				json_object_set_new(st->dirty_ap, key, json_true());
				pthread_mutex_unlock(&st->lock);
			}
			free(ns);
		}
		json_decref(gws);
		json_decref(gcs);
		json_decref(aps);
		pthread_mutex_lock(&st->lock);
		st->inflight = 0;
		if (failed)
			delay = wp_kube_backoff_next(&st->bo);
		else
			wp_kube_backoff_reset(&st->bo);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

/* Whether a Gateway could be ours, from the cached class (under lock). */
static bool maybe_ours(struct wp_kube_status *st, json_t *gw)
{
	const char *cls = jstr(json_object_get(gw, "spec"), "gatewayClassName");
	json_t *gc = json_object_get(st->classes, cls ? cls : "");
	const char *ctrl = gc ? jstr(json_object_get(gc, "spec"), "controllerName") : NULL;

	return wp_kube_status_owns(&st->pol, gw, ctrl);
}

/* Marks dirty the policies whose condition may follow a change of the
 * Gateway ns/name (or, ns and name NULL, of any Gateway or class). Under
 * lock. */
static void dirty_policies(struct wp_kube_status *st, const char *kind, const char *ns,
                           const char *name)
{
	const char *k;
	json_t *ap;

	json_object_foreach(st->policies, k, ap)
	{
		if (name ? wp_kube_authz_refers(ap, kind, ns, name) : wp_kube_authz_refers_any(ap))
			json_object_set_new(st->dirty_ap, k, json_true());
	}
}

/* What the writer keeps of a policy: its metadata's name, namespace and
 * generation, and its targetRefs. */
static json_t *trim_policy(json_t *ap)
{
	json_t *meta = json_object_get(ap, "metadata"), *spec = json_object_get(ap, "spec");
	json_t *m = json_object(), *s = json_object();

	json_object_set(m, "namespace", json_object_get(meta, "namespace"));
	json_object_set(m, "name", json_object_get(meta, "name"));
	if (json_object_get(meta, "generation"))
		json_object_set(m, "generation", json_object_get(meta, "generation"));
	if (json_object_get(spec, "targetRefs"))
		json_object_set(s, "targetRefs", json_object_get(spec, "targetRefs"));
	if (json_object_get(spec, "targetRef"))
		json_object_set(s, "targetRef", json_object_get(spec, "targetRef"));
	return json_pack("{s:o, s:o}", "metadata", m, "spec", s);
}

/* The lease thread: on becoming leader everything owned is rewritten
 * where it differs (reads first, so nothing is written twice). */
static void lease_changed(void *arg, bool leading)
{
	struct wp_kube_status *st = arg;
	const char *k;
	json_t *o;

	if (!leading)
		return;
	pthread_mutex_lock(&st->lock);
	json_object_foreach(st->classes, k, o)
	{
		const char *ctrl = jstr(json_object_get(o, "spec"), "controllerName");
		if (ctrl && !strcmp(ctrl, st->pol.controller_name))
			json_object_set_new(st->dirty_classes, k, json_true());
	}
	json_object_foreach(st->gateways, k, o)
	{
		if (maybe_ours(st, o))
			json_object_set_new(st->dirty_gw, k, json_true());
	}
	dirty_policies(st, NULL, NULL, NULL);
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

void wp_kube_status_update(struct wp_kube_status *st, int res, json_t *obj)
{
	json_t *meta = json_object_get(obj, "metadata");
	const char *name = jstr(meta, "name"), *ns = jstr(meta, "namespace");
	char key[600];

	if (!name)
		return;
	pthread_mutex_lock(&st->lock);
	if (res == WP_KUBE_RES_AUTHORIZATIONPOLICY) {
		struct wp_kube_authz_view v;
		json_t *ap = trim_policy(obj), *c;

		snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
		v = ap_view(st, key);
		c = ap ? wp_kube_authz_condition(&v, ap) : NULL;
		if (c || v.was_ours)
			json_object_set_new(st->dirty_ap, key, json_true());
		json_decref(c);
		if (ap)
			json_object_set_new(st->policies, key, ap);
	} else if (res == WP_KUBE_RES_GATEWAYCLASS) {
		const char *ctrl = jstr(json_object_get(obj, "spec"), "controllerName");
		json_t *gw;
		const char *k;

		json_object_set_new(st->classes, name, json_deep_copy(obj));
		if (ctrl && !strcmp(ctrl, st->pol.controller_name))
			json_object_set_new(st->dirty_classes, name, json_true());
		/* The class decides ownership of its Gateways. */
		json_object_foreach(st->gateways, k, gw)
		{
			const char *cls = jstr(json_object_get(gw, "spec"), "gatewayClassName");
			if (cls && !strcmp(cls, name) && maybe_ours(st, gw))
				json_object_set_new(st->dirty_gw, k, json_true());
		}
		dirty_policies(st, NULL, NULL, NULL);
	} else {
		snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
		json_object_set_new(st->gateways, key, json_deep_copy(obj));
		if (maybe_ours(st, obj))
			json_object_set_new(st->dirty_gw, key, json_true());
		dirty_policies(st, "Gateway", ns ? ns : "", name);
	}
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

void wp_kube_status_services(struct wp_kube_status *st, json_t *rows)
{
	json_t *m = json_object(), *r, *ap;
	const char *k;
	size_t i;

	json_array_foreach(rows, i, r)
	{
		const char *kind = jstr(r, "kind"), *ns = jstr(r, "namespace"),
		           *name = jstr(r, "name");
		char key[600];

		if (!kind || strcmp(kind, "Service") || !ns || !name)
			continue;
		snprintf(key, sizeof(key), "%s/%s", ns, name);
		json_object_set_new(m, key,
		                    json_pack("{s:O, s:O}", "waypoint",
		                              json_object_get(r, "waypoint"), "served",
		                              json_object_get(r, "served")));
	}
	pthread_mutex_lock(&st->lock);
	/* the policies on a Service whose binding changed */
	json_object_foreach(st->policies, k, ap)
	{
		if (wp_kube_authz_services_changed(ap, st->services, m))
			json_object_set_new(st->dirty_ap, k, json_true());
	}
	json_decref(st->services);
	st->services = m;
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

void wp_kube_status_forget(struct wp_kube_status *st, int res, const char *ns, const char *name)
{
	char key[600];

	pthread_mutex_lock(&st->lock);
	if (res == WP_KUBE_RES_AUTHORIZATIONPOLICY) {
		snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
		json_object_del(st->policies, key);
		json_object_del(st->dirty_ap, key);
		json_object_del(st->ours_ap, key);
	} else if (res == WP_KUBE_RES_GATEWAYCLASS) {
		json_object_del(st->classes, name);
		/* the policies bound to it are no longer */
		dirty_policies(st, "GatewayClass", NULL, name);
	} else {
		snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
		json_object_del(st->gateways, key);
		json_object_del(st->dirty_gw, key);
		/* the policies bound to it are no longer */
		dirty_policies(st, "Gateway", ns ? ns : "", name);
	}
	pthread_cond_signal(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

struct wp_kube_status *wp_kube_status_create(const struct wp_kube_source_config *cfg)
{
	struct wp_kube_status *st = calloc(1, sizeof(*st));

	if (!st)
		return NULL;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->cond, NULL);
	st->controller_name =
	        strdup(cfg->controller_name ? cfg->controller_name : WP_KUBE_CONTROLLER_NAME);
	st->service_name = strdup(cfg->service_name ? cfg->service_name : "waypointd");
	st->cluster_domain = strdup(cfg->cluster_domain ? cfg->cluster_domain : "cluster.local");
	if (cfg->n_ips) {
		st->ips = calloc(cfg->n_ips, sizeof(char *));
		for (unsigned i = 0; st->ips && i < cfg->n_ips; i++)
			st->ips[i] = strdup(cfg->ips[i]);
	}
	st->pol.controller_name = st->controller_name;
	st->pol.service_name = st->service_name;
	st->pol.cluster_domain = st->cluster_domain;
	st->pol.ips = (const char *const *)st->ips;
	st->pol.n_ips = st->ips ? cfg->n_ips : 0;
	st->pol.standalone = cfg->standalone;
	if (cfg->service_namespace && cfg->service_namespace[0]) {
		st->service_namespace = strdup(cfg->service_namespace);
		st->pol.service_namespace = st->service_namespace;
	}
	st->pol.served_filter = cfg->served_filter;
	if (cfg->served_filter) {
		if (cfg->served_class && cfg->served_class[0]) {
			st->served_class = strdup(cfg->served_class);
			st->pol.served_class = st->served_class;
		}
		if (cfg->n_served_gateways) {
			st->served = calloc(cfg->n_served_gateways, sizeof(char *));
			for (unsigned i = 0; st->served && i < cfg->n_served_gateways; i++)
				st->served[i] = strdup(cfg->served_gateways[i]);
			st->pol.served_gateways = (const char *const *)st->served;
			st->pol.n_served_gateways = st->served ? cfg->n_served_gateways : 0;
		}
	}
	st->k = wp_kube_new(&cfg->kube);
	st->gateways = json_object();
	st->classes = json_object();
	st->dirty_gw = json_object();
	st->dirty_classes = json_object();
	st->policies = json_object();
	st->dirty_ap = json_object();
	st->ours_ap = json_object();
	st->root_ns = strdup(cfg->root_namespace && cfg->root_namespace[0] ? cfg->root_namespace
	                                                                   : "istio-system");
	wp_kube_backoff_init(&st->bo, cfg->backoff_base > 0 ? cfg->backoff_base : 0.8,
	                     cfg->backoff_max > 0 ? cfg->backoff_max : 30, (uint64_t)time(NULL));
	if (st->k)
		wp_kube_set_limits(st->k, cfg->max_event_bytes, cfg->max_list_bytes);
	if (cfg->lease_name && cfg->lease_name[0]) {
		struct wp_kube_lease_config lc = {
		        .name = cfg->lease_name,
		        .namespace = cfg->lease_namespace && cfg->lease_namespace[0]
		                             ? cfg->lease_namespace
		                             : "default",
		        .identity = cfg->identity,
		        .duration = cfg->lease_duration > 0 ? cfg->lease_duration : 15,
		        .renew_deadline = cfg->renew_deadline > 0 ? cfg->renew_deadline : 10,
		        .retry = cfg->retry_period > 0 ? cfg->retry_period : 2,
		};
		struct wp_kube *lk = wp_kube_new(&cfg->kube);

		/* an attempt must end within the retry period, so that a hung
		 * request does not hide a lost Lease (leading() is time-based
		 * anyway) */
		if (lk)
			wp_kube_set_timeout(lk, lc.retry > 1 ? (long)lc.retry : 1);
		st->lease = lk ? wp_kube_lease_create(&lc, lk) : NULL;
		if (!st->lease) {
			wp_kube_free(lk);
			wp_kube_status_destroy(st);
			return NULL;
		}
		wp_kube_lease_set_change_cb(st->lease, lease_changed, st);
	}
	if (!st->k || !st->controller_name || !st->service_name || !st->cluster_domain ||
	    !st->root_ns || !st->policies || !st->dirty_ap || !st->ours_ap) {
		wp_kube_status_destroy(st);
		return NULL;
	}
	return st;
}

int wp_kube_status_start(struct wp_kube_status *st)
{
	if (st->lease && wp_kube_lease_start(st->lease) != 0)
		return -EAGAIN;
	if (pthread_create(&st->thread, NULL, status_thread, st) != 0)
		return -EAGAIN;
	st->started = true;
	return 0;
}

void wp_kube_status_destroy(struct wp_kube_status *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	st->stop = true;
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	if (st->started)
		pthread_join(st->thread, NULL);
	/* after the writer: the Lease is given up once nothing writes */
	wp_kube_lease_destroy(st->lease);
	wp_kube_free(st->k);
	json_decref(st->gateways);
	json_decref(st->classes);
	json_decref(st->dirty_gw);
	json_decref(st->dirty_classes);
	json_decref(st->policies);
	json_decref(st->dirty_ap);
	json_decref(st->ours_ap);
	json_decref(st->services);
	free(st->root_ns);
	for (unsigned i = 0; st->ips && i < st->pol.n_ips; i++)
		free(st->ips[i]);
	free(st->ips);
	for (unsigned i = 0; st->served && i < st->pol.n_served_gateways; i++)
		free(st->served[i]);
	free(st->served);
	free(st->served_class);
	free(st->service_namespace);
	free(st->controller_name);
	free(st->service_name);
	free(st->cluster_domain);
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->cond);
	free(st);
}

uint64_t wp_kube_status_writes(struct wp_kube_status *st)
{
	return __atomic_load_n(&st->writes, __ATOMIC_RELAXED);
}

void wp_kube_status_counters(struct wp_kube_status *st, uint64_t *out)
{
	uint64_t *c = wp_kube_counters(st->k);

	for (int j = 0; j < WP_CTR_MAX; j++)
		out[j] += __atomic_load_n(&c[j], __ATOMIC_RELAXED);
	if (st->lease)
		wp_kube_lease_counters(st->lease, out);
}

bool wp_kube_status_lease(struct wp_kube_status *st, struct wp_kube_lease_info *out)
{
	if (!st->lease)
		return false;
	wp_kube_lease_info(st->lease, wp_kube_lease_now(), out);
	return true;
}

unsigned wp_kube_status_pending(struct wp_kube_status *st)
{
	unsigned n;

	pthread_mutex_lock(&st->lock);
	n = st->inflight +
	    (unsigned)(json_object_size(st->dirty_gw) + json_object_size(st->dirty_classes) +
	               json_object_size(st->dirty_ap));
	pthread_mutex_unlock(&st->lock);
	return n;
}

struct wp_kube_lease *wp_kube_status_lease_handle(struct wp_kube_status *st)
{
	return st->lease;
}
