/*
 * Leader election on a coordination.k8s.io/v1 Lease (lease.h), the way
 * client-go's leaderelection package does it, so that waypointd appliances
 * and any tool that knows Kubernetes leases read the record the same way:
 * holderIdentity, leaseDurationSeconds, acquireTime and renewTime in
 * MicroTime (RFC 3339, microseconds), leaseTransitions counted on each
 * takeover. Expiry is judged on the candidate's own monotonic clock from
 * the moment it saw the record change, dated back by at most one retry
 * period (how late polling can see a renewal) when the holder's renewTime
 * says so; so a takeover comes within the lease duration of the last
 * renewal, and clock skew between appliances cannot bring it before the
 * old holder's renew deadline. A follower tries again at the expiry itself. Writes carry the
 * resourceVersion read: of two candidates racing for an expired Lease one
 * gets 409 and stays a follower.
 *
 * One thread per lease with its own API client; the state is under a lock
 * so that the status writer can ask wp_kube_lease_leading() at any time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "wp/counters.h"
#include "wp/log.h"

static const struct wp_kube_resource lease_res = {
        .group = "coordination.k8s.io",
        .version = "v1",
        .kind = "Lease",
        .plural = "leases",
        .namespaced = true,
};

struct wp_kube_lease {
	struct wp_kube_lease_config cfg;
	char *name, *namespace, *identity;
	char path[400], coll[400];
	struct wp_kube *k;
	wp_kube_lease_req_cb req;
	void *req_arg;
	wp_kube_lease_change_cb change;
	void *change_arg;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	/* under lock */
	bool leading;
	double last_renew;  /* monotonic time of our last successful write */
	json_t *observed;   /* the spec last read */
	double observed_at; /* when it last changed, on our clock */
	char *observed_rv;  /* its resourceVersion */
	uint64_t ctr[WP_CTR_MAX];
};

double wp_kube_lease_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void wp_kube_micro_time(const struct timespec *t, char *buf, size_t len)
{
	struct tm tm;
	char base[32];

	gmtime_r(&t->tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%06ldZ", base, t->tv_nsec / 1000);
}

static int kube_req(void *arg, const char *method, const char *path, const char *body,
                    struct wp_kube_resp *resp)
{
	return wp_kube_request(arg, method, path, body ? "application/json" : NULL, body,
	                       body ? strlen(body) : 0, resp);
}

/* Leadership changes (under lock); the callback runs after unlocking. */
static bool set_leading(struct wp_kube_lease *l, bool leading)
{
	if (l->leading == leading)
		return false;
	l->leading = leading;
	wp_ctr_inc(l->ctr, leading ? WP_CTR_KUBE_LEASE_ACQUIRED : WP_CTR_KUBE_LEASE_LOST);
	wp_log(leading ? WP_LOG_NOTICE : WP_LOG_WARNING, "waypointd: lease %s/%s: %s\n",
	       l->namespace, l->name,
	       leading ? "leading (writing status)" : "not leading (status writes stop)");
	return true;
}

/* A MicroTime (RFC 3339 with fraction) as Unix seconds; -1 when absent
 * or malformed. */
static double micro_time_parse(const char *s)
{
	const char *dot;
	time_t t;

	if (!s || wp_kube_rfc3339_parse(s, &t) != 0)
		return -1;
	dot = strchr(s, '.');
	return (double)t + (dot ? strtod(dot, NULL) : 0);
}

/*
 * Remembers the record read; its observed time moves only when it changed.
 * A change is seen up to one retry period after it was made (we poll), so
 * another holder's renewal is dated back by what its renewTime says it
 * lags our wall clock, by no more than that period nor half the margin
 * between the lease duration and the renew deadline: a takeover then
 * comes at most the lease duration after the holder's last renewal, and
 * whatever the clocks say, after the holder stopped writing (its renew
 * deadline).
 */
static void observe(struct wp_kube_lease *l, json_t *spec, const char *rv, double now, double wall)
{
	if (!l->observed || !json_equal(l->observed, spec)) {
		const char *h = json_string_value(json_object_get(spec, "holderIdentity"));
		double renew =
		        micro_time_parse(json_string_value(json_object_get(spec, "renewTime")));
		double cap = (l->cfg.duration - l->cfg.renew_deadline) / 2;
		double lag = renew > 0 && wall > renew ? wall - renew : 0;

		if (cap > l->cfg.retry)
			cap = l->cfg.retry;
		if (!h || !strcmp(h, l->identity) || cap < 0)
			lag = 0;
		json_decref(l->observed);
		l->observed = json_deep_copy(spec);
		l->observed_at = now - (lag < cap ? lag : cap);
	}
	free(l->observed_rv);
	l->observed_rv = rv ? strdup(rv) : NULL;
}

static json_t *record(const struct wp_kube_lease *l, const char *acquire, const char *renew,
                      json_int_t transitions)
{
	return json_pack("{s:s, s:I, s:s, s:s, s:I}", "holderIdentity", l->identity,
	                 "leaseDurationSeconds", (json_int_t)(l->cfg.duration + 0.5), "acquireTime",
	                 acquire, "renewTime", renew, "leaseTransitions", transitions);
}

/* One attempt without the step-down rule. true: we hold the Lease now. */
static bool try_acquire_or_renew(struct wp_kube_lease *l, double now, const char *wall,
                                 double wall_s)
{
	struct wp_kube_resp resp = {0};
	json_t *obj, *spec, *want;
	const char *holder;
	char *body;
	bool ours, ok = false;
	double dur;
	int ret;

	ret = l->req(l->req_arg, "GET", l->path, NULL, &resp);
	if (ret == 0 && resp.status == 404) {
		wp_kube_resp_clear(&resp);
		want = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:o}", "apiVersion",
		                 "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name",
		                 l->name, "namespace", l->namespace, "labels",
		                 WP_KUBE_LEASE_LABEL_KEY, WP_KUBE_LEASE_LABEL_VALUE, "spec",
		                 record(l, wall, wall, 0));
		body = want ? json_dumps(want, JSON_COMPACT) : NULL;
		json_decref(want);
		if (!body)
			return false;
		ret = l->req(l->req_arg, "POST", l->coll, body, &resp);
		free(body);
		if (ret == 0 && (resp.status == 201 || resp.status == 200)) {
			pthread_mutex_lock(&l->lock);
			observe(l, json_object_get(resp.json, "spec"),
			        json_string_value(json_object_get(
			                json_object_get(resp.json, "metadata"), "resourceVersion")),
			        now, wall_s);
			pthread_mutex_unlock(&l->lock);
			ok = true;
		} else {
			wp_ctr_inc(l->ctr, ret == 0 && resp.status == 409
			                           ? WP_CTR_KUBE_LEASE_CONFLICT
			                           : WP_CTR_KUBE_LEASE_FAILED);
		}
		wp_kube_resp_clear(&resp);
		return ok;
	}
	if (ret != 0 || resp.status != 200 || !json_is_object(resp.json)) {
		wp_ctr_inc(l->ctr, WP_CTR_KUBE_LEASE_FAILED);
		wp_kube_resp_clear(&resp);
		return false;
	}
	obj = json_incref(resp.json);
	wp_kube_resp_clear(&resp);
	spec = json_object_get(obj, "spec");
	if (!json_is_object(spec)) {
		spec = json_object();
		json_object_set_new(obj, "spec", spec);
	}
	holder = json_string_value(json_object_get(spec, "holderIdentity"));
	ours = holder && !strcmp(holder, l->identity);
	dur = (double)json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
	if (dur <= 0)
		dur = l->cfg.duration;
	pthread_mutex_lock(&l->lock);
	observe(l, spec,
	        json_string_value(
	                json_object_get(json_object_get(obj, "metadata"), "resourceVersion")),
	        now, wall_s);
	if (holder && holder[0] && !ours && now < l->observed_at + dur) {
		/* a live holder: not ours to take */
		pthread_mutex_unlock(&l->lock);
		wp_ctr_inc(l->ctr, WP_CTR_KUBE_LEASE_HELD_ELSEWHERE);
		json_decref(obj);
		return false;
	}
	pthread_mutex_unlock(&l->lock);
	{
		json_t *acq = json_object_get(spec, "acquireTime");
		json_int_t tr = json_integer_value(json_object_get(spec, "leaseTransitions"));

		/* client-go: the acquire time and count stay while the holder
		 * renews; a takeover starts them anew */
		want = ours && json_is_string(acq) ? record(l, json_string_value(acq), wall, tr)
		                                   : record(l, wall, wall, tr + 1);
	}
	json_object_set_new(obj, "spec", want);
	body = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (!body)
		return false;
	ret = l->req(l->req_arg, "PUT", l->path, body, &resp);
	free(body);
	if (ret == 0 && resp.status == 200) {
		pthread_mutex_lock(&l->lock);
		observe(l, json_object_get(resp.json, "spec"),
		        json_string_value(json_object_get(json_object_get(resp.json, "metadata"),
		                                          "resourceVersion")),
		        now, wall_s);
		pthread_mutex_unlock(&l->lock);
		ok = true;
	} else {
		wp_ctr_inc(l->ctr, ret == 0 && resp.status == 409 ? WP_CTR_KUBE_LEASE_CONFLICT
		                                                  : WP_CTR_KUBE_LEASE_FAILED);
	}
	wp_kube_resp_clear(&resp);
	return ok;
}

bool wp_kube_lease_step(struct wp_kube_lease *l, double now, const struct timespec *wall)
{
	char ts[40];
	bool ok, changed, leading;

	wp_kube_micro_time(wall, ts, sizeof(ts));
	ok = try_acquire_or_renew(l, now, ts, (double)wall->tv_sec + (double)wall->tv_nsec / 1e9);
	pthread_mutex_lock(&l->lock);
	if (ok) {
		l->last_renew = now;
		changed = set_leading(l, true);
	} else {
		const char *holder =
		        json_string_value(json_object_get(l->observed, "holderIdentity"));
		bool other = holder && holder[0] && strcmp(holder, l->identity);

		/* another holder, or no renewal within the deadline */
		changed = l->leading && (other || now >= l->last_renew + l->cfg.renew_deadline)
		                  ? set_leading(l, false)
		                  : false;
	}
	leading = l->leading && now < l->last_renew + l->cfg.renew_deadline;
	pthread_mutex_unlock(&l->lock);
	if (changed && l->change)
		l->change(l->change_arg, leading);
	return leading;
}

bool wp_kube_lease_leading(struct wp_kube_lease *l, double now)
{
	bool r;

	pthread_mutex_lock(&l->lock);
	r = l->leading && now < l->last_renew + l->cfg.renew_deadline;
	pthread_mutex_unlock(&l->lock);
	return r;
}

void wp_kube_lease_info(struct wp_kube_lease *l, double now, struct wp_kube_lease_info *out)
{
	const char *h;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&l->lock);
	snprintf(out->name, sizeof(out->name), "%s", l->name);
	snprintf(out->namespace, sizeof(out->namespace), "%s", l->namespace);
	snprintf(out->identity, sizeof(out->identity), "%s", l->identity);
	h = json_string_value(json_object_get(l->observed, "holderIdentity"));
	snprintf(out->holder, sizeof(out->holder), "%s", h ? h : "");
	out->leading = l->leading && now < l->last_renew + l->cfg.renew_deadline;
	out->age = l->observed ? now - l->observed_at : -1;
	out->since_renew = l->last_renew > 0 ? now - l->last_renew : -1;
	out->transitions = json_integer_value(json_object_get(l->observed, "leaseTransitions"));
	pthread_mutex_unlock(&l->lock);
}

/* Seconds until the next attempt (under lock): the retry period, or less
 * when another holder's lease expires sooner, so that a takeover comes at
 * the expiry rather than up to a retry period after it. */
static double next_delay(const struct wp_kube_lease *l, double now)
{
	const char *h = json_string_value(json_object_get(l->observed, "holderIdentity"));
	double dur =
	        (double)json_integer_value(json_object_get(l->observed, "leaseDurationSeconds"));
	double left;

	if (l->leading || !h || !h[0] || !strcmp(h, l->identity))
		return l->cfg.retry;
	left = l->observed_at + (dur > 0 ? dur : l->cfg.duration) - now;
	return left > 0 && left < l->cfg.retry ? left + 0.001 : l->cfg.retry;
}

static void *lease_thread(void *arg)
{
	struct wp_kube_lease *l = arg;

	pthread_mutex_lock(&l->lock);
	while (!l->stop) {
		struct timespec wall, until;
		double delay;

		pthread_mutex_unlock(&l->lock);
		clock_gettime(CLOCK_REALTIME, &wall);
		wp_kube_lease_step(l, wp_kube_lease_now(), &wall);
		pthread_mutex_lock(&l->lock);
		if (l->stop)
			break;
		delay = next_delay(l, wp_kube_lease_now());
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += (time_t)delay;
		until.tv_nsec += (long)((delay - (double)(time_t)delay) * 1e9);
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&l->cond, &l->lock, &until);
	}
	pthread_mutex_unlock(&l->lock);
	return NULL;
}

/* A leader leaving gives the Lease up (client-go's ReleaseOnCancel): the
 * record keeps its times but names nobody, so the next candidate takes it
 * at its next attempt instead of after leaseDurationSeconds. */
static void release(struct wp_kube_lease *l)
{
	struct wp_kube_resp resp = {0};
	json_t *obj;
	char *body;

	if (!l->leading || !l->observed || !l->observed_rv ||
	    !wp_kube_lease_leading(l, wp_kube_lease_now()))
		return;
	obj = json_pack("{s:s, s:s, s:{s:s, s:s, s:s}, s:O}", "apiVersion",
	                "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", l->name,
	                "namespace", l->namespace, "resourceVersion", l->observed_rv, "spec",
	                l->observed);
	if (!obj)
		return;
	json_object_set_new(json_object_get(obj, "spec"), "holderIdentity", json_string(""));
	json_object_set_new(json_object_get(obj, "spec"), "leaseDurationSeconds", json_integer(1));
	body = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (body && l->req(l->req_arg, "PUT", l->path, body, &resp) == 0 && resp.status == 200)
		l->leading = false;
	free(body);
	wp_kube_resp_clear(&resp);
}

struct wp_kube_lease *wp_kube_lease_create(const struct wp_kube_lease_config *cfg,
                                           struct wp_kube *k)
{
	struct wp_kube_lease *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->cfg = *cfg;
	l->name = strdup(cfg->name ? cfg->name : "");
	l->namespace = strdup(cfg->namespace ? cfg->namespace : "default");
	l->identity = strdup(cfg->identity ? cfg->identity : "");
	l->cfg.name = l->name;
	l->cfg.namespace = l->namespace;
	l->cfg.identity = l->identity;
	l->k = k;
	l->req = kube_req;
	l->req_arg = k;
	if (!l->name || !l->namespace || !l->identity || !l->name[0] || !l->identity[0] ||
	    cfg->duration <= 0 || cfg->renew_deadline <= 0 || cfg->retry <= 0 ||
	    wp_kube_path(l->path, sizeof(l->path), &lease_res, l->namespace, l->name, NULL) < 0 ||
	    wp_kube_path(l->coll, sizeof(l->coll), &lease_res, l->namespace, NULL, NULL) < 0) {
		l->k = NULL; /* the caller keeps k on failure */
		wp_kube_lease_destroy(l);
		return NULL;
	}
	return l;
}

void wp_kube_lease_set_transport(struct wp_kube_lease *l, wp_kube_lease_req_cb req, void *arg)
{
	l->req = req;
	l->req_arg = arg;
}

void wp_kube_lease_set_change_cb(struct wp_kube_lease *l, wp_kube_lease_change_cb cb, void *arg)
{
	l->change = cb;
	l->change_arg = arg;
}

int wp_kube_lease_start(struct wp_kube_lease *l)
{
	if (pthread_create(&l->thread, NULL, lease_thread, l) != 0)
		return -EAGAIN;
	l->started = true;
	return 0;
}

void wp_kube_lease_destroy(struct wp_kube_lease *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	if (l->started) {
		pthread_join(l->thread, NULL);
		release(l);
	}
	wp_kube_free(l->k);
	json_decref(l->observed);
	free(l->observed_rv);
	free(l->name);
	free(l->namespace);
	free(l->identity);
	pthread_mutex_destroy(&l->lock);
	pthread_cond_destroy(&l->cond);
	free(l);
}

void wp_kube_lease_counters(struct wp_kube_lease *l, uint64_t *out)
{
	uint64_t *c = l->k ? wp_kube_counters(l->k) : NULL;

	for (int j = 0; j < WP_CTR_MAX; j++) {
		out[j] += __atomic_load_n(&l->ctr[j], __ATOMIC_RELAXED);
		if (c)
			out[j] += __atomic_load_n(&c[j], __ATOMIC_RELAXED);
	}
}
