/*
 * The Kubernetes list/watch source: per-kind threads that list and watch,
 * a queue to the control-plane thread, and the hand-off to the Gateway
 * status writer (status.c). See cp/kube/kube_source.h for the behaviour.
 *
 * The kinds back off on their own, so after an outage their next attempts
 * are spread over up to backoff_max. To come back together, the source
 * keeps one shared notion of the server's health (under the lock): a kind
 * whose request got no answer marks the server unreachable, which starts a
 * probe thread (GET /version every min(backoff_base, 1 s)); a 5xx marks it
 * failing. The first answer after that (the probe's, or a 2xx to any kind)
 * bumps wake_gen, and every kind waiting in its backoff retries at once.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "kube_source.h"
#include "lease.h"
#include "member.h"
#include "status.h"
#include "wp/counters.h"
#include "wp/log.h"
#include "wp/model.h"

enum item_type { ITEM_UPSERT, ITEM_DELETE, ITEM_LISTED };

/* Where a kind stands with the API server; everything but WATCHING means
 * its objects in the sink may be missing or stale (wp_source_state), but
 * ABSENT: an optional kind's CRD is not installed (nothing to be stale). */
enum phase { PH_LISTING, PH_WATCHING, PH_RELISTING, PH_RETRYING, PH_ABSENT };
static const char *const phase_names[] = {
        [PH_LISTING] = "listing",   [PH_WATCHING] = "watching", [PH_RELISTING] = "relisting",
        [PH_RETRYING] = "retrying", [PH_ABSENT] = "not served",
};

/* One queued event for the control-plane thread. */
struct item {
	struct item *next;
	enum item_type type;
	int res; /* WP_KUBE_RES_* */
	char *ns, *name;
	char *text; /* the object as JSON (UPSERT) */
	size_t len;
};

struct kube_source;

struct kind_state {
	struct kube_source *src;
	int res;
	pthread_t thread;
	bool started;
	struct wp_kube *k;
	char path[512];
	const char *version; /* the version path reads (the resource's, or its alt_version) */
	bool tried_alt;      /* the other version was asked for after a 404 */
	char rv[64];
	json_t *known;   /* "ns/name" -> resourceVersion string, this thread only */
	json_t *listing; /* the keys of a list in progress */
	struct wp_kube_backoff bo;
	bool stale;       /* in-stream 410 seen */
	unsigned events;  /* during the current watch */
	bool in_watch;    /* a watch request is under way (answer_cb) */
	enum phase phase; /* under src->lock */
};

struct kube_source {
	struct wp_source base;
	struct wp_kube_source_config cfg;
	char *namespace;
	int efd;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled on stop */
	volatile int stop;
	struct item *head, *tail;
	struct kind_state kinds[WP_KUBE_RES_COUNT];
	unsigned listed; /* kinds whose first list was delivered */
	bool synced;
	struct wp_kube_status *status;
	struct wp_kube_member *member; /* NULL: no membership */
	/* The server's health as the kinds saw it (under lock). */
	bool unreachable;  /* a request got no answer: the probe runs */
	bool failing;      /* a request got 5xx/429 */
	unsigned wake_gen; /* bumped when the server answers again */
	uint64_t reconnects;
	struct wp_kube *probe;
	pthread_t probe_thread;
	bool probe_started;
};

static const struct wp_source_ops kube_source_ops;

static void item_free(struct item *it)
{
	free(it->ns);
	free(it->name);
	free(it->text);
	free(it);
}

static void enqueue(struct kube_source *s, struct item *it)
{
	uint64_t one = 1;

	pthread_mutex_lock(&s->lock);
	if (s->tail)
		s->tail->next = it;
	else
		s->head = it;
	s->tail = it;
	pthread_mutex_unlock(&s->lock);
	if (write(s->efd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow in practice; poll() drains anyway. */
	}
}

static const char *meta_str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
}

static void key_of(char *buf, size_t len, json_t *obj)
{
	const char *ns = meta_str(obj, "namespace");

	snprintf(buf, len, "%s/%s", ns ? ns : "", meta_str(obj, "name"));
}

/* The kinds the status writer follows. */
static bool status_kind(int res)
{
	return res == WP_KUBE_RES_GATEWAY || res == WP_KUBE_RES_GATEWAYCLASS ||
	       res == WP_KUBE_RES_AUTHORIZATIONPOLICY;
}

/* Queues an upsert of obj (kind/apiVersion are added when missing, as in
 * list items) and hands Gateways, GatewayClasses and AuthorizationPolicies
 * to the status writer. */
static int queue_upsert(struct kind_state *ks, json_t *obj)
{
	const struct wp_kube_resource *r = &wp_kube_resources[ks->res];
	struct item *it;
	const char *ns = meta_str(obj, "namespace"), *name = meta_str(obj, "name");
	char av[128];

	if (!name)
		return 0;
	if (!json_object_get(obj, "kind"))
		json_object_set_new(obj, "kind", json_string(r->kind));
	if (!json_object_get(obj, "apiVersion")) {
		snprintf(av, sizeof(av), "%s%s%s", r->group, r->group[0] ? "/" : "", ks->version);
		json_object_set_new(obj, "apiVersion", json_string(av));
	}
	it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->type = ITEM_UPSERT;
	it->res = ks->res;
	it->ns = ns ? strdup(ns) : NULL;
	it->name = strdup(name);
	it->text = wp_kube_json_dump(obj);
	if (!it->text || !it->name) {
		item_free(it);
		return -ENOMEM;
	}
	it->len = strlen(it->text);
	if (ks->src->status && status_kind(ks->res))
		wp_kube_status_update(ks->src->status, ks->res, obj);
	enqueue(ks->src, it);
	return 0;
}

static void queue_delete(struct kind_state *ks, const char *key)
{
	struct item *it = calloc(1, sizeof(*it));
	const char *slash = strchr(key, '/');

	if (!it || !slash) {
		free(it);
		return;
	}
	it->type = ITEM_DELETE;
	it->res = ks->res;
	it->ns = slash == key ? NULL : strndup(key, (size_t)(slash - key));
	it->name = strdup(slash + 1);
	if (ks->src->status && status_kind(ks->res))
		wp_kube_status_forget(ks->src->status, ks->res, it->ns, it->name);
	enqueue(ks->src, it);
}

static int list_item_cb(void *arg, json_t *item)
{
	struct kind_state *ks = arg;
	const char *rv = meta_str(item, "resourceVersion");
	const char *old;
	char key[600];

	if (!meta_str(item, "name"))
		return 0;
	key_of(key, sizeof(key), item);
	json_object_set_new(ks->listing, key, json_string(rv ? rv : ""));
	old = json_string_value(json_object_get(ks->known, key));
	/* Unchanged since we last delivered it: nothing to do. */
	if (old && rv && !strcmp(old, rv))
		return 0;
	return queue_upsert(ks, item);
}

static int event_cb(void *arg, const struct wp_kube_event *ev)
{
	struct kind_state *ks = arg;
	char key[600];

	ks->events++;
	switch (ev->type) {
	case WP_KUBE_EV_ADDED:
	case WP_KUBE_EV_MODIFIED:
		key_of(key, sizeof(key), ev->object);
		json_object_set_new(ks->known, key, json_string(ev->rv ? ev->rv : ""));
		if (queue_upsert(ks, ev->object) != 0)
			return -ENOMEM;
		break;
	case WP_KUBE_EV_DELETED:
		key_of(key, sizeof(key), ev->object);
		json_object_del(ks->known, key);
		queue_delete(ks, key);
		break;
	case WP_KUBE_EV_BOOKMARK:
		break;
	case WP_KUBE_EV_ERROR:
		if (ev->code == 410) {
			wp_ctr_inc(wp_kube_counters(ks->k), WP_CTR_KUBE_WATCH_EXPIRED);
			ks->stale = true;
			return -ESTALE;
		}
		return -EPROTO;
	}
	if (ev->rv && ev->rv[0])
		snprintf(ks->rv, sizeof(ks->rv), "%s", ev->rv);
	return 0;
}

/* Under s->lock: sleeps up to secs, until stop, or (when wakeable) until
 * wake_gen moves past gen. Returns true when stopping. */
static bool nap_locked(struct kube_source *s, double secs, bool wakeable, unsigned gen)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)secs;
	ts.tv_nsec += (long)((secs - floor(secs)) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (!s->stop && (!wakeable || s->wake_gen == gen) &&
	       pthread_cond_timedwait(&s->cond, &s->lock, &ts) == 0)
		;
	return s->stop;
}

/* Under s->lock: the server answered after being unreachable or failing;
 * every kind waiting in back_off retries now. Only the end of an outage
 * (unreachable) is logged and counted. */
static void server_back_locked(struct kube_source *s, const char *who)
{
	if (!s->unreachable && !s->failing)
		return;
	if (s->unreachable) {
		wp_log(WP_LOG_NOTICE,
		       "kube: API server answering again (%s): retrying every waiting kind now\n",
		       who);
		s->reconnects++;
	}
	s->unreachable = s->failing = false;
	s->wake_gen++;
	pthread_cond_broadcast(&s->cond);
}

/* answer_cb of a kind's client: a 2xx says the server is back; a watch's
 * 200 says the kind is in sync again. */
static void kind_answer(void *arg, long status)
{
	struct kind_state *ks = arg;
	struct kube_source *s = ks->src;

	if (status < 200 || status > 299)
		return;
	pthread_mutex_lock(&s->lock);
	if (ks->in_watch)
		ks->phase = PH_WATCHING;
	server_back_locked(s, wp_kube_resources[ks->res].kind);
	pthread_mutex_unlock(&s->lock);
}

/* The probe: while the server is unreachable, asks GET /version every
 * probe interval; any HTTP answer ends the outage for every kind. */
static void *probe_thread(void *arg)
{
	struct kube_source *s = arg;
	double interval = s->cfg.backoff_base < 1.0 ? s->cfg.backoff_base : 1.0;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		struct wp_kube_resp resp;
		int rc;

		if (!s->unreachable) {
			pthread_cond_wait(&s->cond, &s->lock);
			continue;
		}
		if (nap_locked(s, interval, true, s->wake_gen))
			break;
		if (!s->unreachable)
			continue;
		pthread_mutex_unlock(&s->lock);
		rc = wp_kube_get(s->probe, "/version", &resp);
		wp_kube_resp_clear(&resp);
		pthread_mutex_lock(&s->lock);
		if (rc == 0)
			server_back_locked(s, "probe");
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

static void set_phase(struct kind_state *ks, enum phase ph)
{
	pthread_mutex_lock(&ks->src->lock);
	ks->phase = ph;
	pthread_mutex_unlock(&ks->src->lock);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Waits before the next attempt after error err (0: a watch that ended at
 * once): the backoff, or until the server answers again after an outage
 * (then the backoff is kept: a kind that fails again waits longer). When
 * the server asked for a Retry-After longer than the backoff, that is
 * waited out whatever happens. Returns true when stopping. */
static bool back_off(struct kind_state *ks, int err, long retry_after, bool first)
{
	struct kube_source *s = ks->src;
	double d = wp_kube_backoff_next(&ks->bo);
	bool stop, wakeable = true;

	if (retry_after > 0 && (double)retry_after > d) {
		d = (double)retry_after;
		wakeable = false;
	}
	pthread_mutex_lock(&s->lock);
	if (ks->phase != PH_ABSENT)
		ks->phase = first ? PH_LISTING : PH_RETRYING;
	if (err == -EIO && !s->unreachable) {
		s->unreachable = true;
		pthread_cond_broadcast(&s->cond); /* starts the probe */
	} else if (err == -EAGAIN) {
		s->failing = true;
	}
	stop = nap_locked(s, d, wakeable, s->wake_gen);
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/* Paged LIST; on success swaps in the new key set and queues deletions for
 * keys that vanished. Returns 0 or the list's error. */
static int relist(struct kind_state *ks, long *retry_after)
{
	struct kube_source *s = ks->src;
	const char *key;
	json_t *v;
	void *tmp;
	int ret;

	ks->listing = json_object();
	ret = wp_kube_list(ks->k, ks->path, NULL, s->cfg.page_limit, list_item_cb, ks, ks->rv,
	                   sizeof(ks->rv), retry_after);
	if (ret) {
		/* Upserts already queued are real objects: remember them, but
		 * keep the old keys so the next list still sees what vanished. */
		json_object_update(ks->known, ks->listing);
		json_decref(ks->listing);
		ks->listing = NULL;
		return ret;
	}
	json_object_foreach_safe(ks->known, tmp, key, v)
	{
		if (!json_object_get(ks->listing, key))
			queue_delete(ks, key);
	}
	json_decref(ks->known);
	ks->known = ks->listing;
	ks->listing = NULL;
	return 0;
}

/* Points ks at the other version of a resource with an alt_version. */
static int switch_version(struct kind_state *ks)
{
	struct wp_kube_resource r = wp_kube_resources[ks->res];

	r.version = ks->version == r.version ? r.alt_version : r.version;
	ks->version = r.version;
	ks->rv[0] = '\0';
	return wp_kube_path(ks->path, sizeof(ks->path), &r,
	                    r.namespaced ? ks->src->namespace : NULL, NULL, NULL);
}

/* An optional kind the API server serves in neither version (its CRD is
 * not installed): listed and empty for the first sync, "not served" in the
 * views (not lagging), asked for again after a backoff. True when
 * stopping. */
static bool kind_absent(struct kind_state *ks, bool *first)
{
	if (*first) {
		struct item *it = calloc(1, sizeof(*it));

		wp_log(WP_LOG_WARNING,
		       "kube: %s.%s is served neither as %s nor as %s (CRD not installed?); "
		       "asking again after a backoff\n",
		       wp_kube_resources[ks->res].plural, wp_kube_resources[ks->res].group,
		       wp_kube_resources[ks->res].version, wp_kube_resources[ks->res].alt_version);
		if (it) {
			it->type = ITEM_LISTED;
			it->res = ks->res;
			enqueue(ks->src, it);
		}
		*first = false;
	}
	set_phase(ks, PH_ABSENT);
	return back_off(ks, -ENOENT, -1, false);
}

static void *kind_thread(void *arg)
{
	struct kind_state *ks = arg;
	struct kube_source *s = ks->src;
	const char *kind = wp_kube_resources[ks->res].kind;
	bool need_list = true, first = true;

	while (!s->stop) {
		long ra = -1;
		double t0;
		int ret;

		if (need_list) {
			set_phase(ks, first ? PH_LISTING : PH_RELISTING);
			ret = relist(ks, &ra);
			if (ret == -ECANCELED || s->stop)
				break;
			if (ret == -ENOENT && wp_kube_resources[ks->res].alt_version) {
				/* this version is not served: the other one at once,
				 * then (neither) after a backoff */
				if (switch_version(ks) < 0)
					break;
				if (!ks->tried_alt) {
					ks->tried_alt = true;
					continue;
				}
				ks->tried_alt = false;
				if (kind_absent(ks, &first))
					break;
				continue;
			}
			ks->tried_alt = false;
			if (ret == -EMSGSIZE)
				wp_log(WP_LOG_WARNING,
				       "kube: LIST of %s: a page longer than %zu bytes "
				       "(kubernetes.max_list_bytes); relisting after a backoff\n",
				       kind, s->cfg.max_list_bytes);
			if (ret) {
				if (back_off(ks, ret, ra, first))
					break;
				continue;
			}
			need_list = false;
			set_phase(ks, PH_WATCHING);
			wp_kube_backoff_reset(&ks->bo);
			if (first) {
				struct item *it = calloc(1, sizeof(*it));
				if (it) {
					it->type = ITEM_LISTED;
					it->res = ks->res;
					enqueue(s, it);
				}
				first = false;
			}
		}
		ks->stale = false;
		ks->events = 0;
		t0 = now_s();
		ks->in_watch = true;
		ret = wp_kube_watch(ks->k, ks->path, ks->rv, s->cfg.watch_timeout, event_cb, ks,
		                    &s->stop, &ra);
		ks->in_watch = false;
		if (ret == -ECANCELED || s->stop)
			break;
		if (ret == -EMSGSIZE) {
			/* The stream cannot go on past the line we refused: what
			 * it carried comes back with the list. */
			wp_log(WP_LOG_WARNING,
			       "kube: watch of %s: an event longer than %zu bytes "
			       "(kubernetes.max_event_bytes) dropped; relisting\n",
			       kind, s->cfg.max_event_bytes);
			need_list = true;
			continue;
		}
		if (ret == -ENOENT && wp_kube_resources[ks->res].alt_version) {
			/* the CRD went away or changed versions: list again */
			need_list = true;
			continue;
		}
		if (ret == -ESTALE || ks->stale) {
			/* Expired resourceVersion: relist right away (no
			 * backoff unless the list itself fails). */
			need_list = true;
			continue;
		}
		if (ret == 0) {
			/* Clean end: rewatch from the last version. A watch that
			 * ends at once with nothing in it counts as a failure so
			 * a misbehaving server is not hammered. */
			if (ks->events == 0 && now_s() - t0 < 1.0) {
				if (back_off(ks, 0, -1, false))
					break;
			} else {
				wp_kube_backoff_reset(&ks->bo);
			}
			continue;
		}
		if (ks->events)
			wp_kube_backoff_reset(&ks->bo);
		if (back_off(ks, ret, ra, false))
			break;
	}
	return NULL;
}

static int ks_start(struct wp_source *src, const struct wp_source_sink *sink)
{
	struct kube_source *s = (struct kube_source *)src;

	src->sink = sink;
	if (s->status && wp_kube_status_start(s->status) != 0)
		return -EAGAIN;
	if (s->member && wp_kube_member_start(s->member) != 0)
		return -EAGAIN;
	if (pthread_create(&s->probe_thread, NULL, probe_thread, s) != 0)
		return -EAGAIN;
	s->probe_started = true;
	for (int i = 0; i < WP_KUBE_RES_COUNT; i++) {
		struct kind_state *ks = &s->kinds[i];

		if (pthread_create(&ks->thread, NULL, kind_thread, ks) != 0)
			return -EAGAIN;
		ks->started = true;
	}
	return 0;
}

static int ks_fd(struct wp_source *src)
{
	return ((struct kube_source *)src)->efd;
}

static enum wp_kind res_kind(int res)
{
	const struct wp_kube_resource *r = &wp_kube_resources[res];
	char av[128];

	snprintf(av, sizeof(av), "%s%s%s", r->group, r->group[0] ? "/" : "", r->version);
	return wp_kind_from_name(r->kind, av);
}

static int ks_poll(struct wp_source *src)
{
	struct kube_source *s = (struct kube_source *)src;
	const struct wp_source_sink *sink = src->sink;
	struct item *list, *it;
	uint64_t n;
	int delivered = 0;

	if (read(s->efd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing signalled; drain the queue anyway. */
	}
	pthread_mutex_lock(&s->lock);
	list = s->head;
	s->head = s->tail = NULL;
	pthread_mutex_unlock(&s->lock);
	while ((it = list)) {
		const struct wp_kube_resource *r = &wp_kube_resources[it->res];
		char origin[700];

		list = it->next;
		snprintf(origin, sizeof(origin), "k8s:%s/%s%s%s", r->kind, it->ns ? it->ns : "",
		         it->ns ? "/" : "", it->name ? it->name : "");
		switch (it->type) {
		case ITEM_UPSERT:
			if (wp_source_deliver_text(sink, origin, it->text, it->len) <= 0)
				wp_ctr_inc(wp_kube_counters(s->kinds[it->res].k),
				           WP_CTR_KUBE_OBJECT_REJECTED);
			delivered++;
			break;
		case ITEM_DELETE:
			sink->ops->clear_errors(sink->ctx, origin);
			sink->ops->remove(sink->ctx, res_kind(it->res), it->ns, it->name);
			delivered++;
			break;
		case ITEM_LISTED:
			s->listed++;
			break;
		}
		item_free(it);
	}
	/* Everything listed before the markers was delivered above, in order. */
	if (!s->synced && s->listed == WP_KUBE_RES_COUNT) {
		s->synced = true;
		sink->ops->synced(sink->ctx, kube_source_ops.name);
		delivered++;
	}
	return delivered;
}

static void ks_state(struct wp_source *src, struct wp_source_state *st)
{
	struct kube_source *s = (struct kube_source *)src;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < WP_KUBE_RES_COUNT && st->n_lagging < WP_SOURCE_MAX_LAGGING; i++) {
		if (s->kinds[i].phase == PH_WATCHING || s->kinds[i].phase == PH_ABSENT)
			continue;
		st->lagging[st->n_lagging] = wp_kube_resources[i].kind;
		st->why[st->n_lagging++] = phase_names[s->kinds[i].phase];
	}
	pthread_mutex_unlock(&s->lock);
	if (s->status) {
		struct wp_kube_lease_info li;

		st->pending_writes = wp_kube_status_pending(s->status);
		st->has_lease = wp_kube_status_lease(s->status, &li);
		if (st->has_lease) {
			snprintf(st->lease.name, sizeof(st->lease.name), "%s", li.name);
			snprintf(st->lease.namespace, sizeof(st->lease.namespace), "%s",
			         li.namespace);
			snprintf(st->lease.identity, sizeof(st->lease.identity), "%s", li.identity);
			snprintf(st->lease.holder, sizeof(st->lease.holder), "%s", li.holder);
			st->lease.leading = li.leading;
			st->lease.age_s = li.age;
			st->lease.since_renew_s = li.since_renew;
			st->lease.transitions = (long long)li.transitions;
		}
	}
	if (s->member) {
		struct wp_kube_member_info mi;

		wp_kube_member_info(s->member, wp_kube_lease_now(), &mi);
		st->has_members = true;
		st->registered = mi.registered;
		for (unsigned i = 0; i < mi.n && i < WP_SOURCE_MAX_MEMBERS; i++) {
			snprintf(st->members[i].name, sizeof(st->members[i].name), "%s",
			         mi.m[i].name);
			snprintf(st->members[i].identity, sizeof(st->members[i].identity), "%s",
			         mi.m[i].identity);
			snprintf(st->members[i].address, sizeof(st->members[i].address), "%s",
			         mi.m[i].address);
			st->members[i].age_s = mi.m[i].age;
			st->n_members = i + 1;
		}
	}
}

static void ks_destroy(struct wp_source *src)
{
	struct kube_source *s = (struct kube_source *)src;
	struct item *it;

	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < WP_KUBE_RES_COUNT; i++) {
		struct kind_state *ks = &s->kinds[i];

		if (ks->started)
			pthread_join(ks->thread, NULL);
		wp_kube_free(ks->k);
		if (ks->known)
			json_decref(ks->known);
	}
	if (s->probe_started)
		pthread_join(s->probe_thread, NULL);
	wp_kube_free(s->probe);
	/* before the status writer: it reads the writer's Lease */
	wp_kube_member_destroy(s->member);
	if (s->status)
		wp_kube_status_destroy(s->status);
	while ((it = s->head)) {
		s->head = it->next;
		item_free(it);
	}
	if (s->efd >= 0)
		close(s->efd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s->namespace);
	wp_kube_config_clear(&s->cfg.kube);
	free(s);
}

/* The published snapshot's enrollment, for the status writer. */
static void ks_published(struct wp_source *src, json_t *rows)
{
	struct kube_source *s = (struct kube_source *)src;

	if (s->status)
		wp_kube_status_services(s->status, rows);
}

static const struct wp_source_ops kube_source_ops = {
        .name = "kubernetes",
        .start = ks_start,
        .fd = ks_fd,
        .poll = ks_poll,
        .state = ks_state,
        .published = ks_published,
        .destroy = ks_destroy,
};

struct wp_source *wp_kube_source_create(const struct wp_kube_source_config *cfg)
{
	struct kube_source *s = calloc(1, sizeof(*s));
	uint64_t seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

	if (!s)
		return NULL;
	s->base.ops = &kube_source_ops;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->cfg = *cfg;
	/* Only the kube config is owned; other pointers are the caller's and
	 * copied where kept (the status writer copies its own). */
	memset(&s->cfg.kube, 0, sizeof(s->cfg.kube));
	s->namespace = cfg->namespace ? strdup(cfg->namespace) : NULL;
	s->cfg.namespace = s->namespace;
	if (!s->cfg.page_limit)
		s->cfg.page_limit = 500;
	if (!s->cfg.watch_timeout)
		s->cfg.watch_timeout = 300;
	if (s->cfg.backoff_base <= 0)
		s->cfg.backoff_base = 0.8;
	if (s->cfg.backoff_max <= 0)
		s->cfg.backoff_max = 30;
	if (s->efd < 0)
		goto fail;
	s->probe = wp_kube_new(&cfg->kube);
	if (!s->probe)
		goto fail;
	wp_kube_set_timeout(s->probe, 5);
	for (int i = 0; i < WP_KUBE_RES_COUNT; i++) {
		struct kind_state *ks = &s->kinds[i];
		const struct wp_kube_resource *r = &wp_kube_resources[i];

		ks->src = s;
		ks->res = i;
		ks->version = r->version;
		ks->k = wp_kube_new(&cfg->kube);
		ks->known = json_object();
		if (!ks->k || !ks->known)
			goto fail;
		wp_kube_set_limits(ks->k, s->cfg.max_event_bytes, s->cfg.max_list_bytes);
		wp_kube_set_answer_cb(ks->k, kind_answer, ks);
		if (wp_kube_path(ks->path, sizeof(ks->path), r, r->namespaced ? s->namespace : NULL,
		                 NULL, NULL) < 0)
			goto fail;
		wp_kube_backoff_init(&ks->bo, s->cfg.backoff_base, s->cfg.backoff_max,
		                     seed + (uint64_t)i * 0x9e3779b97f4a7c15ull);
	}
	if (cfg->status_enabled) {
		s->status = wp_kube_status_create(cfg);
		if (!s->status)
			goto fail;
	}
	if (cfg->member_address && cfg->member_address[0]) {
		struct wp_kube_member_config mc = {
		        .service = cfg->service_name ? cfg->service_name : "waypointd",
		        .namespace = cfg->member_namespace,
		        .identity = cfg->identity,
		        .address = cfg->member_address,
		        .service_account = cfg->member_service_account,
		        .renew = cfg->member_renew > 0 ? cfg->member_renew : 5,
		        .ttl = cfg->member_ttl > 0 ? cfg->member_ttl : 15,
		};
		struct wp_kube *mk = wp_kube_new(&cfg->kube);

		if (mk) /* a hung request must not outlast a renewal period */
			wp_kube_set_timeout(mk, mc.renew < 1 ? 1 : (long)mc.renew);
		s->member = mk ? wp_kube_member_create(
		                         &mc, mk,
		                         s->status ? wp_kube_status_lease_handle(s->status) : NULL)
		               : NULL;
		if (!s->member) {
			wp_kube_free(mk);
			goto fail;
		}
	}
	return &s->base;
fail:
	ks_destroy(&s->base);
	return NULL;
}

void wp_kube_source_counters(struct wp_source *src, uint64_t *out)
{
	struct kube_source *s = (struct kube_source *)src;

	memset(out, 0, sizeof(uint64_t) * WP_CTR_MAX);
	for (int i = 0; i < WP_KUBE_RES_COUNT; i++) {
		uint64_t *c = wp_kube_counters(s->kinds[i].k);
		for (int j = 0; j < WP_CTR_MAX; j++)
			out[j] += __atomic_load_n(&c[j], __ATOMIC_RELAXED);
	}
	if (s->status)
		wp_kube_status_counters(s->status, out);
	if (s->member)
		wp_kube_member_counters(s->member, out);
	pthread_mutex_lock(&s->lock);
	out[WP_CTR_KUBE_RECONNECTED] += s->reconnects;
	pthread_mutex_unlock(&s->lock);
}

bool wp_kube_source_lease(struct wp_source *src, struct wp_kube_lease_info *out)
{
	struct kube_source *s = (struct kube_source *)src;

	return s->status && wp_kube_status_lease(s->status, out);
}

uint64_t wp_kube_source_status_writes(struct wp_source *src)
{
	struct kube_source *s = (struct kube_source *)src;

	return s->status ? wp_kube_status_writes(s->status) : 0;
}

bool wp_kube_source_members(struct wp_source *src, struct wp_kube_member_info *out)
{
	struct kube_source *s = (struct kube_source *)src;

	if (!s->member)
		return false;
	wp_kube_member_info(s->member, wp_kube_lease_now(), out);
	return true;
}

void wp_kube_source_set_ready(struct wp_source *src, bool ready)
{
	struct kube_source *s = (struct kube_source *)src;

	if (s->member)
		wp_kube_member_set_ready(s->member, ready);
}

bool wp_kube_source_deregister(struct wp_source *src, double timeout)
{
	struct kube_source *s = (struct kube_source *)src;

	if (!s->member)
		return false;
	wp_kube_member_set_ready(s->member, false);
	return wp_kube_member_wait_deregistered(s->member, timeout);
}
