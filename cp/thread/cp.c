/*
 * The control-plane thread runner (see wp/cp.h): sources -> resolver ->
 * snapshot slot, plus the admin endpoint (its handlers are in
 * cp/admin/handlers.c, its server cp/admin/httpd.c), driven by one epoll
 * loop on a pthread of its own.
 *
 * Nothing is published before every source has reported its first full
 * sync (sink->synced): a snapshot built from half a list would withdraw
 * captured destinations that are merely not listed yet. wp_cp_start runs
 * the loop on the caller's thread for up to sync_wait_ms waiting for that;
 * if a source (the Kubernetes one, when the API server is unreachable) is
 * still listing then, it logs so and returns anyway, and the thread
 * publishes the first snapshot the moment the last source syncs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cp_int.h"
#include "wp/model.h"
#include "wp/log.h"
#include "wp/sdnotify.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- sink wrapper ---------------------------------------------------------- */

static const struct wp_source_sink *inner(void *ctx)
{
	return wp_resolver_sink(((struct wp_cp *)ctx)->res);
}

static int w_upsert(void *ctx, struct wp_obj *obj)
{
	const struct wp_source_sink *s = inner(ctx);

	return s->ops->upsert(s->ctx, obj);
}

static int w_remove(void *ctx, enum wp_kind k, const char *ns, const char *name)
{
	const struct wp_source_sink *s = inner(ctx);

	return s->ops->remove(s->ctx, k, ns, name);
}

static void w_error(void *ctx, const char *origin, const char *msg)
{
	struct wp_cp *cp = ctx;
	const struct wp_source_sink *s = inner(ctx);

	wp_ctr_inc(cp->ctr, WP_CTR_CP_MANIFEST_REJECTED);
	wp_log(WP_LOG_WARNING, "waypointd: config rejected (last good version kept): %s\n", msg);
	s->ops->error(s->ctx, origin, msg);
}

static void w_clear(void *ctx, const char *origin)
{
	const struct wp_source_sink *s = inner(ctx);

	s->ops->clear_errors(s->ctx, origin);
}

static void w_synced(void *ctx, const char *name)
{
	struct wp_cp *cp = ctx;
	const struct wp_source_sink *s = inner(ctx);

	/* Sources name themselves; the first unsynced one of that name. */
	for (unsigned i = 0; i < cp->n_src; i++) {
		if (cp->synced[i] || strcmp(cp->src[i]->ops->name, name))
			continue;
		cp->synced[i] = true;
		cp->n_synced++;
		wp_log(WP_LOG_INFO, "waypointd: source %s: first full sync done after %llu ms\n",
		       name, (unsigned long long)(now_ms() - cp->start_ms));
		break;
	}
	s->ops->synced(s->ctx, name);
}

/* The names of the sources still on their first list, for log lines. */
static void unsynced_names(const struct wp_cp *cp, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < cp->n_src && off < len; i++)
		if (!cp->synced[i])
			off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? ", " : "",
			                        cp->src[i]->ops->name);
}

static const struct wp_source_sink_ops wrap_ops = {
        .upsert = w_upsert,
        .remove = w_remove,
        .error = w_error,
        .clear_errors = w_clear,
        .synced = w_synced,
};

/* ---- build / publish ------------------------------------------------------- */

static void rebuild(struct wp_cp *cp)
{
	struct wp_snapshot *s = wp_resolver_build(cp->res);
	uint64_t vs_conflicts, vs_not_applied;

	/* counted once per table compiled, whether or not it is published */
	wp_resolver_take_vs_warnings(cp->res, &vs_conflicts, &vs_not_applied);
	wp_ctr_add(cp->ctr, WP_CTR_CP_VS_CONFLICT, vs_conflicts);
	wp_ctr_add(cp->ctr, WP_CTR_CP_VS_NOT_APPLIED, vs_not_applied);
	wp_ctr_add(cp->ctr, WP_CTR_CP_TELEMETRY_NOT_APPLIED,
	           wp_resolver_take_tel_not_applied(cp->res));
	if (!s) {
		wp_ctr_inc(cp->ctr, WP_CTR_CP_BUILD_FAILED);
		wp_log(WP_LOG_ERR, "waypointd: snapshot build failed; keeping the last good one\n");
		return;
	}
	if (wp_snapshot_publish(cp->slot, s)) {
		wp_ctr_inc(cp->ctr, WP_CTR_CP_PUBLISH_FAILED);
		return;
	}
	/* /enrollment shows what the workers run: the rows of this snapshot,
	 * taken now from the store it was built from (later events may change
	 * the store before the next publish). One row per Service and Pod, the
	 * same order of work as the build. */
	if (cp->pub_rows)
		json_decref(cp->pub_rows);
	cp->pub_rows = wp_enrollment_json(cp->res, true);
	for (unsigned i = 0; cp->pub_rows && i < cp->n_src; i++)
		if (cp->src[i]->ops->published)
			cp->src[i]->ops->published(cp->src[i], cp->pub_rows);
	if (!cp->published)
		wp_log(WP_LOG_INFO,
		       "waypointd: first snapshot (version %llu) published after %llu ms\n",
		       (unsigned long long)s->version,
		       (unsigned long long)(now_ms() - cp->start_ms));
	cp->published = true;
	wp_ctr_inc(cp->ctr, WP_CTR_CP_SNAPSHOT_PUBLISHED);
}

/* ---- counters -------------------------------------------------------------- */

/* The control plane's counters as other threads see them: ours plus the
 * ones the hook reports (read here, on the thread that owns them). */
void wp_cp_all_counters(struct wp_cp *cp, uint64_t *out)
{
	uint64_t extra[WP_CTR_MAX] = {0};

	if (cp->extra)
		cp->extra(cp->extra_ctx, extra);
	for (unsigned i = 0; i < WP_CTR_MAX; i++)
		out[i] = cp->ctr[i] + extra[i];
}

/* ---- loop ------------------------------------------------------------------ */

/* Republishes the counters for other threads (telemetry): ours plus the
 * ones the hook reports, read here, on the thread that owns them. */
static void publish_counters(struct wp_cp *cp)
{
	uint64_t all[WP_CTR_MAX];

	wp_cp_all_counters(cp, all);
	for (unsigned i = 0; i < WP_CTR_MAX; i++)
		__atomic_store_n(&cp->pub[i], all[i], __ATOMIC_RELAXED);
}

/* Polls one source and notes when the resolver turned dirty. */
static void poll_source(struct wp_cp *cp, struct wp_source *src)
{
	bool was = wp_resolver_dirty(cp->res);

	if (src->ops->poll(src) < 0)
		wp_ctr_inc(cp->ctr, WP_CTR_CP_SOURCE_ERROR);
	if (!was && wp_resolver_dirty(cp->res))
		cp->dirty_since_ms = now_ms();
}

/* One turn of the loop: waits at most max_wait ms for sources, admin
 * clients or an admin deadline, then rebuilds when due. Nothing in it
 * blocks but that wait. Returns true when asked to stop. */
static bool step(struct wp_cp *cp, int max_wait)
{
	struct epoll_event evs[16];
	bool synced = all_synced(cp);
	int timeout = max_wait, n;

	/* Before the first full sync the resolver is dirty all along: no
	 * rebuild is due then, so no busy loop either. */
	if (synced && wp_resolver_dirty(cp->res)) {
		uint64_t due = cp->dirty_since_ms + cp->debounce_ms, t = now_ms();

		timeout = due > t ? (int)(due - t) : 0;
		if (timeout > max_wait)
			timeout = max_wait;
	}
	if (cp->httpd) {
		int t = wp_httpd_timeout(cp->httpd, now_ms());

		if (t >= 0 && t < timeout)
			timeout = t;
	}
	n = epoll_wait(cp->epfd, evs, WP_ARRAY_SIZE(evs), timeout);
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;

		if (fd == cp->efd)
			return true;
		for (unsigned s = 0; s < cp->n_src; s++)
			if (cp->src[s]->ops->fd(cp->src[s]) == fd)
				poll_source(cp, cp->src[s]);
	}
	/* admin clients, and the admin deadlines that fell due */
	if (cp->httpd)
		wp_httpd_run(cp->httpd, now_ms());
	free(cp->prom.text); /* a later turn's scrapes render afresh */
	cp->prom.text = NULL;
	/* sources without a descriptor are polled every tick */
	for (unsigned s = 0; s < cp->n_src; s++)
		if (cp->src[s]->ops->fd(cp->src[s]) < 0)
			poll_source(cp, cp->src[s]);
	if (all_synced(cp)) {
		if (!synced) /* the last source just synced: publish at once */
			rebuild(cp);
		else if (wp_resolver_dirty(cp->res) &&
		         now_ms() >= cp->dirty_since_ms + cp->debounce_ms)
			rebuild(cp);
		else if (!cp->published) /* a failed first build: retry */
			rebuild(cp);
	}
	wp_snapshot_slot_reclaim(cp->slot);
	publish_counters(cp);
	return false;
}

static void *run(void *arg)
{
	struct wp_cp *cp = arg;

	while (!step(cp, 200))
		(void)wp_sdnotify_watchdog(now_ms()); /* a wedged loop stops the pings */
	return NULL;
}

/* ---- life cycle ------------------------------------------------------------ */

static int listen_on(struct wp_cp *cp, const char *what, const struct wp_addr *addr, uint16_t port,
                     const struct wp_httpd_route *routes, uint16_t *bound)
{
	int rc = wp_httpd_listen(cp->httpd, addr, port, routes, cp, bound);

	if (rc < 0)
		wp_log(WP_LOG_ERR, "waypointd: %s port %u: %s\n", what, port, strerror(-rc));
	return rc;
}

struct wp_cp *wp_cp_create(const struct wp_cp_config *cfg)
{
	struct wp_cp *cp = calloc(1, sizeof(*cp));

	if (!cp)
		return NULL;
	cp->efd = cp->epfd = -1;
	pthread_mutex_init(&cp->prom.lock, NULL);
	cp->debounce_ms = cfg->debounce_ms;
	cp->sync_wait_ms = cfg->sync_wait_ms ? cfg->sync_wait_ms : 10000;
	cp->sink.ops = &wrap_ops;
	cp->sink.ctx = cp;
	cp->res = wp_resolver_create(&cfg->served);
	cp->slot = wp_snapshot_slot_create(cfg->n_workers);
	if (!cp->res || !cp->slot) {
		wp_log(WP_LOG_ERR, "waypointd: control plane: out of memory\n");
		goto fail;
	}
	if (!cfg->admin_disabled || cfg->metrics_enabled) {
		struct wp_httpd_config hc = {
		        .max_clients = cfg->admin_max_clients ? cfg->admin_max_clients : 32,
		        .request_timeout_ms = cfg->admin_request_timeout_ms
		                                      ? cfg->admin_request_timeout_ms
		                                      : 5000,
		        .max_request_bytes =
		                cfg->admin_max_request_bytes ? cfg->admin_max_request_bytes : 8192,
		        .ctr = cp->ctr,
		};

		cp->httpd = wp_httpd_create(&hc);
		if (!cp->httpd) {
			wp_log(WP_LOG_ERR, "waypointd: admin endpoint: out of memory\n");
			goto fail;
		}
	}
	if (!cfg->admin_disabled && listen_on(cp, "admin endpoint", &cfg->admin_addr,
	                                      cfg->admin_port, wp_cp_admin_routes, &cp->port))
		goto fail;
	if (cfg->metrics_enabled) {
		uint16_t envoy;

		if (listen_on(cp, "metrics", &cfg->metrics_addr, cfg->metrics_port,
		              wp_cp_metrics_routes, &cp->metrics_port))
			goto fail;
		if (cfg->metrics_envoy_port &&
		    listen_on(cp, "metrics (Envoy's port)", &cfg->metrics_addr,
		              cfg->metrics_envoy_port, wp_cp_metrics_routes, &envoy))
			goto fail;
	}
	if (cfg->manifest_dir && cfg->manifest_dir[0]) {
		struct wp_source *s = wp_source_manifest_dir_create(cfg->manifest_dir);

		if (!s || wp_cp_add_source(cp, s)) {
			wp_source_destroy(s);
			goto fail;
		}
	}
	return cp;
fail:
	wp_cp_destroy(cp);
	return NULL;
}

int wp_cp_add_source(struct wp_cp *cp, struct wp_source *src)
{
	if (cp->n_src == MAX_SOURCES || cp->running)
		return -ENOSPC;
	cp->src[cp->n_src++] = src;
	return 0;
}

int wp_cp_start(struct wp_cp *cp)
{
	struct epoll_event ev = {.events = EPOLLIN};
	char names[256];
	uint64_t deadline;
	int rc;

	cp->start_ms = now_ms();
	cp->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cp->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (cp->efd < 0 || cp->epfd < 0)
		return -errno;
	ev.data.fd = cp->efd;
	epoll_ctl(cp->epfd, EPOLL_CTL_ADD, cp->efd, &ev);
	if (cp->httpd) {
		ev.data.fd = wp_httpd_fd(cp->httpd);
		epoll_ctl(cp->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev);
	}
	for (unsigned i = 0; i < cp->n_src; i++) {
		rc = cp->src[i]->ops->start(cp->src[i], &cp->sink);
		if (rc) {
			wp_ctr_inc(cp->ctr, WP_CTR_CP_SOURCE_ERROR);
			wp_log(WP_LOG_ERR, "waypointd: source %s: %s\n", cp->src[i]->ops->name,
			       strerror(-rc));
			return rc;
		}
	}
	for (unsigned i = 0; i < cp->n_src; i++) {
		int fd = cp->src[i]->ops->fd(cp->src[i]);

		if (fd >= 0) {
			ev.data.fd = fd;
			epoll_ctl(cp->epfd, EPOLL_CTL_ADD, fd, &ev);
		}
	}
	/* Wait (bounded) for every source's first full sync; the admin
	 * endpoint answers meanwhile (/healthz/ready: 503). */
	deadline = cp->start_ms + cp->sync_wait_ms;
	if (!all_synced(cp)) {
		unsynced_names(cp, names, sizeof(names));
		wp_log(WP_LOG_INFO,
		       "waypointd: waiting up to %u ms for the first full sync of: %s "
		       "(no snapshot is published before it)\n",
		       cp->sync_wait_ms, names);
	}
	while (!all_synced(cp) && now_ms() < deadline) {
		uint64_t left = deadline - now_ms();

		step(cp, left < 100 ? (int)left : 100);
	}
	if (all_synced(cp)) {
		if (!cp->published)
			rebuild(cp);
		if (!cp->published)
			return -ENOMEM;
	} else {
		unsynced_names(cp, names, sizeof(names));
		wp_log(WP_LOG_WARNING,
		       "waypointd: no first full sync of %s after %u ms; starting without a "
		       "snapshot: nothing is captured and /healthz/ready answers 503 until it "
		       "completes\n",
		       names, cp->sync_wait_ms);
	}
	rc = pthread_create(&cp->thread, NULL, run, cp);
	if (rc)
		return -rc;
	pthread_setname_np(cp->thread, "wp-cp");
	cp->running = true;
	return 0;
}

void wp_cp_stop(struct wp_cp *cp)
{
	uint64_t one = 1;

	if (!cp->running)
		return;
	if (write(cp->efd, &one, sizeof(one)) != sizeof(one))
		perror("waypointd: control plane stop");
	pthread_join(cp->thread, NULL);
	cp->running = false;
}

void wp_cp_destroy(struct wp_cp *cp)
{
	if (!cp)
		return;
	wp_cp_stop(cp);
	for (unsigned i = 0; i < cp->n_src; i++)
		wp_source_destroy(cp->src[i]);
	if (cp->pub_rows)
		json_decref(cp->pub_rows);
	wp_authz_scratch_fini(&cp->authz_sc);
	wp_snapshot_slot_destroy(cp->slot);
	wp_resolver_destroy(cp->res);
	wp_httpd_destroy(cp->httpd);
	pthread_mutex_destroy(&cp->prom.lock);
	if (cp->efd >= 0)
		close(cp->efd);
	if (cp->epfd >= 0)
		close(cp->epfd);
	free(cp);
}

struct wp_snapshot_slot *wp_cp_slot(struct wp_cp *cp)
{
	return cp->slot;
}

uint16_t wp_cp_admin_port(const struct wp_cp *cp)
{
	return cp->port;
}

uint16_t wp_cp_metrics_port(const struct wp_cp *cp)
{
	return cp->metrics_port;
}

void wp_cp_set_prometheus(struct wp_cp *cp, wp_cp_prom_cb fn, void *ctx)
{
	pthread_mutex_lock(&cp->prom.lock);
	cp->prom.fn = fn;
	cp->prom.ctx = ctx;
	pthread_mutex_unlock(&cp->prom.lock);
}

void wp_cp_set_extra_counters(struct wp_cp *cp, wp_cp_counters_cb fn, void *ctx)
{
	cp->extra = fn;
	cp->extra_ctx = ctx;
}

void wp_cp_counters(const struct wp_cp *cp, uint64_t *out)
{
	for (unsigned i = 0; i < WP_CTR_MAX; i++)
		out[i] = __atomic_load_n(&cp->pub[i], __ATOMIC_RELAXED);
}
