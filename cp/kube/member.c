/*
 * Membership of the waypoint's Service (member.h): one WorkloadEntry per
 * appliance. Why a WorkloadEntry and not an EndpointSlice: istiod builds
 * ztunnel's Workload from a WorkloadEntry with its spec.serviceAccount (the
 * identity ztunnel checks on the HBONE handshake), whereas a Workload built
 * from a hand-made EndpointSlice has no service account at all; istiod
 * ignores a WorkloadEntry's health, so readiness is expressed by the entry
 * existing (docs/design.md, "Several appliances per waypoint").
 *
 * Liveness without clocks compared across hosts: each renewal rewrites the
 * entry's renew annotation, which moves its resourceVersion; the Lease
 * holder remembers, on its own monotonic clock, when each entry's
 * resourceVersion last moved, and deletes (precondition: that
 * resourceVersion) the ones that stood still for the TTL. A renewal that
 * lands in between makes the delete fail with 409, never removes a live
 * member.
 *
 * One thread with its own API client; the member table and the readiness
 * flag are under a lock (the admin API and the main thread read them).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "member.h"
#include "wp/counters.h"
#include "wp/log.h"

static const struct wp_kube_resource we_res = {
        .group = "networking.istio.io",
        .version = "v1",
        .kind = "WorkloadEntry",
        .plural = "workloadentries",
        .namespaced = true,
};

struct seen {
	char name[128], identity[128], address[64];
	char rv[32];
	double changed; /* when rv last moved, on our clock */
};

struct wp_kube_member {
	struct wp_kube_member_config cfg;
	char *service, *namespace, *identity, *address, *sa;
	char name[254];
	char path[600], coll[600], list[900];
	struct wp_kube *k;
	struct wp_kube_lease *lease;
	wp_kube_member_req_cb req;
	void *req_arg;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	/* under lock */
	bool ready;
	bool registered;   /* our entry exists as far as we know */
	bool deregistered; /* not ready and our entry is gone */
	unsigned n;
	struct seen seen[WP_KUBE_MEMBER_MAX];
	uint64_t ctr[WP_CTR_MAX];
};

static int kube_req(void *arg, const char *method, const char *path, const char *body,
                    struct wp_kube_resp *resp)
{
	return wp_kube_request(arg, method, path, body ? "application/json" : NULL, body,
	                       body ? strlen(body) : 0, resp);
}

void wp_kube_member_entry_name(const char *service, const char *identity, char *out, size_t len)
{
	size_t i;

	snprintf(out, len < 254 ? len : 254, "%s-%s", service, identity);
	for (i = 0; out[i]; i++) {
		unsigned char c = (unsigned char)tolower((unsigned char)out[i]);

		out[i] = (char)(isalnum(c) || c == '.' || c == '-' ? c : '-');
	}
}

static const char *meta_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

/* The entry as we want it, with resourceVersion rv (NULL: create). */
static char *entry_body(const struct wp_kube_member *m, const char *rv, const char *wall)
{
	json_t *o = json_pack(
	        "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s, s:s, s:s}, s:{s:s}}, s:{s:s, s:s, s:{s:s, "
	        "s:s}, s:{s:i}}}",
	        "apiVersion", "networking.istio.io/v1", "kind", "WorkloadEntry", "metadata", "name",
	        m->name, "namespace", m->namespace, "labels", WP_KUBE_MEMBER_SELECT_KEY, m->service,
	        WP_KUBE_LEASE_LABEL_KEY, WP_KUBE_LEASE_LABEL_VALUE, WP_KUBE_MEMBER_ID_KEY,
	        m->identity, "istio.io/use-waypoint", "none", "annotations",
	        WP_KUBE_MEMBER_RENEW_KEY, wall, "spec", "address", m->address, "serviceAccount",
	        m->sa, "labels", WP_KUBE_MEMBER_SELECT_KEY, m->service, "istio.io/use-waypoint",
	        "none", "ports", "mesh", 15008);
	char *body;

	if (!o)
		return NULL;
	if (rv)
		json_object_set_new(json_object_get(o, "metadata"), "resourceVersion",
		                    json_string(rv));
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return body;
}

/* Creates or renews our entry. true when it is there, renewed. */
static bool renew(struct wp_kube_member *m, const char *wall)
{
	struct wp_kube_resp resp = {0};
	char *body = NULL, rv[32] = "";
	bool create, ok;
	int ret;

	ret = m->req(m->req_arg, "GET", m->path, NULL, &resp);
	create = ret == 0 && resp.status == 404;
	if (ret == 0 && resp.status == 200 && meta_str(resp.json, "resourceVersion"))
		snprintf(rv, sizeof(rv), "%s", meta_str(resp.json, "resourceVersion"));
	wp_kube_resp_clear(&resp);
	if (!create && !rv[0]) {
		wp_ctr_inc(m->ctr, WP_CTR_KUBE_MEMBER_FAILED);
		return false;
	}
	body = entry_body(m, create ? NULL : rv, wall);
	if (!body)
		return false;
	ret = m->req(m->req_arg, create ? "POST" : "PUT", create ? m->coll : m->path, body, &resp);
	free(body);
	ok = ret == 0 && (resp.status == 200 || resp.status == 201);
	if (!ok)
		wp_ctr_inc(m->ctr, ret == 0 && resp.status == 409 ? WP_CTR_KUBE_MEMBER_CONFLICT
		                                                  : WP_CTR_KUBE_MEMBER_FAILED);
	else if (create) {
		wp_ctr_inc(m->ctr, WP_CTR_KUBE_MEMBER_REGISTERED);
		wp_log(WP_LOG_NOTICE, "waypointd: member %s/%s registered (%s)\n", m->namespace,
		       m->name, m->address);
	}
	wp_kube_resp_clear(&resp);
	return ok;
}

/* Deletes an entry; rv non-NULL: only that version. 0 gone (or absent),
 * -EAGAIN changed meanwhile (409), -EIO no answer or an error status. */
static int delete_entry(struct wp_kube_member *m, const char *path, const char *rv)
{
	struct wp_kube_resp resp = {0};
	char *body = NULL;
	int ret, rc;

	if (rv) {
		json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "apiVersion", "v1", "kind",
		                      "DeleteOptions", "preconditions", "resourceVersion", rv);

		body = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!body)
			return -EIO;
	}
	ret = m->req(m->req_arg, "DELETE", path, body, &resp);
	free(body);
	rc = ret == 0 && (resp.status == 200 || resp.status == 202 || resp.status == 404) ? 0
	     : ret == 0 && resp.status == 409                                             ? -EAGAIN
	                                                                                  : -EIO;
	wp_kube_resp_clear(&resp);
	return rc;
}

/* Reads the members; when leading, deletes the ones that stopped renewing. */
static void survey(struct wp_kube_member *m, double now)
{
	struct wp_kube_resp resp = {0};
	struct seen next[WP_KUBE_MEMBER_MAX], dead[WP_KUBE_MEMBER_MAX];
	unsigned n = 0, n_dead = 0;
	json_t *items, *it;
	bool leading;
	size_t i;
	int ret;

	ret = m->req(m->req_arg, "GET", m->list, NULL, &resp);
	if (ret != 0 || resp.status != 200 ||
	    !json_is_array(items = json_object_get(resp.json, "items"))) {
		wp_ctr_inc(m->ctr, WP_CTR_KUBE_MEMBER_FAILED);
		wp_kube_resp_clear(&resp);
		return;
	}
	leading = m->lease && wp_kube_lease_leading(m->lease, now);
	pthread_mutex_lock(&m->lock);
	json_array_foreach(items, i, it)
	{
		const char *name = meta_str(it, "name"), *rv = meta_str(it, "resourceVersion");
		const char *id = json_string_value(
		        json_object_get(json_object_get(json_object_get(it, "metadata"), "labels"),
		                        WP_KUBE_MEMBER_ID_KEY));
		const char *addr =
		        json_string_value(json_object_get(json_object_get(it, "spec"), "address"));
		struct seen *s;

		if (!name || !rv)
			continue;
		if (n == WP_KUBE_MEMBER_MAX) {
			wp_ctr_inc(m->ctr, WP_CTR_KUBE_MEMBER_TOO_MANY);
			break;
		}
		s = &next[n++];
		memset(s, 0, sizeof(*s));
		snprintf(s->name, sizeof(s->name), "%s", name);
		snprintf(s->identity, sizeof(s->identity), "%s", id ? id : "");
		snprintf(s->address, sizeof(s->address), "%s", addr ? addr : "");
		snprintf(s->rv, sizeof(s->rv), "%s", rv);
		s->changed = now;
		for (unsigned j = 0; j < m->n; j++)
			if (!strcmp(m->seen[j].name, name) && !strcmp(m->seen[j].rv, rv))
				s->changed = m->seen[j].changed;
		if (leading && strcmp(name, m->name) && now - s->changed >= m->cfg.ttl)
			dead[n_dead++] = *s;
	}
	memcpy(m->seen, next, sizeof(next[0]) * n);
	m->n = n;
	pthread_mutex_unlock(&m->lock);
	wp_kube_resp_clear(&resp);
	for (unsigned j = 0; j < n_dead; j++) {
		char path[600];
		int rc;

		if (wp_kube_path(path, sizeof(path), &we_res, m->namespace, dead[j].name, NULL) < 0)
			continue;
		rc = delete_entry(m, path, dead[j].rv);
		wp_ctr_inc(m->ctr, rc == 0         ? WP_CTR_KUBE_MEMBER_EXPIRED
		                   : rc == -EAGAIN ? WP_CTR_KUBE_MEMBER_CONFLICT
		                                   : WP_CTR_KUBE_MEMBER_FAILED);
		if (rc == 0)
			wp_log(WP_LOG_WARNING,
			       "waypointd: member %s/%s (%s) removed: not renewed for %.0f s\n",
			       m->namespace, dead[j].name, dead[j].address, now - dead[j].changed);
	}
}

void wp_kube_member_step(struct wp_kube_member *m, double now, const struct timespec *wall)
{
	char ts[40];
	bool ready, registered;

	wp_kube_micro_time(wall, ts, sizeof(ts));
	pthread_mutex_lock(&m->lock);
	ready = m->ready;
	registered = m->registered;
	pthread_mutex_unlock(&m->lock);
	if (ready) {
		bool ok = renew(m, ts);

		pthread_mutex_lock(&m->lock);
		/* set_ready(false) may have come meanwhile: the next round deletes */
		if (ok)
			m->registered = true;
		pthread_mutex_unlock(&m->lock);
	} else if (registered || !m->deregistered) {
		int rc = delete_entry(m, m->path, NULL);

		pthread_mutex_lock(&m->lock);
		if (rc == 0 && !m->ready) {
			if (m->registered) {
				wp_ctr_inc(m->ctr, WP_CTR_KUBE_MEMBER_DEREGISTERED);
				wp_log(WP_LOG_NOTICE, "waypointd: member %s/%s deregistered\n",
				       m->namespace, m->name);
			}
			m->registered = false;
			m->deregistered = true;
			pthread_cond_broadcast(&m->cond);
		} else if (rc != 0) {
			wp_ctr_inc(m->ctr, WP_CTR_KUBE_MEMBER_FAILED);
		}
		pthread_mutex_unlock(&m->lock);
	}
	survey(m, now);
}

void wp_kube_member_set_ready(struct wp_kube_member *m, bool ready)
{
	pthread_mutex_lock(&m->lock);
	if (m->ready != ready) {
		m->ready = ready;
		if (!ready)
			m->deregistered = false;
		pthread_cond_broadcast(&m->cond); /* the thread acts now */
	}
	pthread_mutex_unlock(&m->lock);
}

static void deadline(struct timespec *until, double secs)
{
	clock_gettime(CLOCK_REALTIME, until);
	until->tv_sec += (time_t)secs;
	until->tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (until->tv_nsec >= 1000000000L) {
		until->tv_sec++;
		until->tv_nsec -= 1000000000L;
	}
}

bool wp_kube_member_wait_deregistered(struct wp_kube_member *m, double timeout)
{
	struct timespec until;
	bool done;

	deadline(&until, timeout);
	pthread_mutex_lock(&m->lock);
	while (!m->deregistered && !m->stop &&
	       pthread_cond_timedwait(&m->cond, &m->lock, &until) != ETIMEDOUT)
		;
	done = m->deregistered;
	pthread_mutex_unlock(&m->lock);
	return done;
}

void wp_kube_member_info(struct wp_kube_member *m, double now, struct wp_kube_member_info *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&m->lock);
	out->registered = m->registered;
	out->n = m->n;
	for (unsigned i = 0; i < m->n; i++) {
		snprintf(out->m[i].name, sizeof(out->m[i].name), "%s", m->seen[i].name);
		snprintf(out->m[i].identity, sizeof(out->m[i].identity), "%s", m->seen[i].identity);
		snprintf(out->m[i].address, sizeof(out->m[i].address), "%s", m->seen[i].address);
		out->m[i].age = now - m->seen[i].changed;
	}
	pthread_mutex_unlock(&m->lock);
}

static void *member_thread(void *arg)
{
	struct wp_kube_member *m = arg;

	pthread_mutex_lock(&m->lock);
	while (!m->stop) {
		struct timespec wall, until;
		bool ready = m->ready;

		pthread_mutex_unlock(&m->lock);
		clock_gettime(CLOCK_REALTIME, &wall);
		wp_kube_member_step(m, wp_kube_lease_now(), &wall);
		pthread_mutex_lock(&m->lock);
		/* a deregistration that failed is retried soon, not a renew
		 * period later; a readiness change during the round acts now */
		deadline(&until, !m->ready && !m->deregistered ? 0.2 : m->cfg.renew);
		while (!m->stop && m->ready == ready &&
		       pthread_cond_timedwait(&m->cond, &m->lock, &until) != ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

struct wp_kube_member *wp_kube_member_create(const struct wp_kube_member_config *cfg,
                                             struct wp_kube *k, struct wp_kube_lease *lease)
{
	struct wp_kube_member *m = calloc(1, sizeof(*m));
	char sel[400];

	if (!m)
		return NULL;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->cfg = *cfg;
	m->service = strdup(cfg->service ? cfg->service : "");
	m->namespace = strdup(cfg->namespace ? cfg->namespace : "");
	m->identity = strdup(cfg->identity ? cfg->identity : "");
	m->address = strdup(cfg->address ? cfg->address : "");
	m->sa = strdup(cfg->service_account && cfg->service_account[0] ? cfg->service_account
	               : m->service                                    ? m->service
	                                                               : "");
	m->k = k;
	m->lease = lease;
	m->req = kube_req;
	m->req_arg = k;
	m->deregistered = true; /* nothing registered yet */
	if (!m->service || !m->namespace || !m->identity || !m->address || !m->sa ||
	    !m->service[0] || !m->namespace[0] || !m->identity[0] || !m->address[0] ||
	    cfg->renew <= 0 || cfg->ttl <= cfg->renew)
		goto fail;
	wp_kube_member_entry_name(m->service, m->identity, m->name, sizeof(m->name));
	snprintf(sel, sizeof(sel), "?labelSelector=%s%%3D%s%%2C%s%%3D%s", WP_KUBE_LEASE_LABEL_KEY,
	         WP_KUBE_LEASE_LABEL_VALUE, WP_KUBE_MEMBER_SELECT_KEY, m->service);
	if (wp_kube_path(m->path, sizeof(m->path), &we_res, m->namespace, m->name, NULL) < 0 ||
	    wp_kube_path(m->coll, sizeof(m->coll), &we_res, m->namespace, NULL, NULL) < 0 ||
	    snprintf(m->list, sizeof(m->list), "%s%s", m->coll, sel) >= (int)sizeof(m->list))
		goto fail;
	return m;
fail:
	m->k = NULL; /* the caller keeps k on failure */
	wp_kube_member_destroy(m);
	return NULL;
}

void wp_kube_member_set_transport(struct wp_kube_member *m, wp_kube_member_req_cb req, void *arg)
{
	m->req = req;
	m->req_arg = arg;
}

int wp_kube_member_start(struct wp_kube_member *m)
{
	if (pthread_create(&m->thread, NULL, member_thread, m) != 0)
		return -EAGAIN;
	m->started = true;
	return 0;
}

void wp_kube_member_destroy(struct wp_kube_member *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (m->started) {
		pthread_join(m->thread, NULL);
		/* leaving: the entry goes with us (a drain has normally done it) */
		if (m->registered && delete_entry(m, m->path, NULL) == 0)
			wp_ctr_inc(m->ctr, WP_CTR_KUBE_MEMBER_DEREGISTERED);
	}
	wp_kube_free(m->k);
	free(m->service);
	free(m->namespace);
	free(m->identity);
	free(m->address);
	free(m->sa);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m);
}

void wp_kube_member_counters(struct wp_kube_member *m, uint64_t *out)
{
	uint64_t *c = m->k ? wp_kube_counters(m->k) : NULL;

	for (int j = 0; j < WP_CTR_MAX; j++) {
		out[j] += __atomic_load_n(&m->ctr[j], __ATOMIC_RELAXED);
		if (c)
			out[j] += __atomic_load_n(&c[j], __ATOMIC_RELAXED);
	}
}
