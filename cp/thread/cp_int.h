/*
 * The control-plane thread's state (struct wp_cp, wp/cp.h), shared by the
 * thread (cp/thread/cp.c: sources, resolver, snapshot slot, the loop) and
 * the admin handlers it serves (cp/admin/handlers.c), which read it on the
 * same thread. Nothing else includes this file; the functions declared here
 * have hidden visibility.
 */
#ifndef WP_CP_THREAD_CP_INT_H
#define WP_CP_THREAD_CP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "httpd.h"
#include "wp/authz.h"
#include "wp/counters.h"
#include "wp/cp.h"
#include "wp/cp_json.h"

#define MAX_SOURCES 8

struct wp_cp {
	struct wp_resolver *res;
	struct wp_snapshot_slot *slot;
	struct wp_source *src[MAX_SOURCES];
	unsigned n_src;
	struct wp_source_sink sink; /* wraps the resolver's: counts and logs errors */
	struct wp_httpd *httpd;     /* admin and metrics listeners; NULL when both disabled */
	int efd, epfd;
	uint16_t port;
	uint16_t metrics_port;
	struct {
		pthread_mutex_t lock; /* held by a scrape, and to change the hook */
		wp_cp_prom_cb fn;
		void *ctx;
		char *text; /* this turn's rendering, shared by its scrapes; freed after */
		size_t len;
	} prom;
	unsigned debounce_ms;
	pthread_t thread;
	bool running;
	bool published;
	bool synced[MAX_SOURCES]; /* the source reported its first full sync */
	unsigned n_synced;
	unsigned sync_wait_ms;
	uint64_t start_ms;
	uint64_t dirty_since_ms;
	uint64_t ctr[WP_CTR_MAX]; /* written by the control-plane thread only */
	wp_cp_counters_cb extra;  /* counters kept by others (the Kubernetes source) */
	void *extra_ctx;
	uint64_t pub[WP_CTR_MAX]; /* ctr + extra, republished every turn for other threads */
	json_t *pub_rows;         /* enrollment rows of the published snapshot (rebuild) */
	/* /authz/check's scratch: this thread's own, grown to the table it
	 * decides with (the workers' are theirs) */
	struct wp_authz_scratch authz_sc;
};

static inline bool all_synced(const struct wp_cp *cp)
{
	return cp->n_synced == cp->n_src;
}

#pragma GCC visibility push(hidden)

/* cp/thread/cp.c: the control plane's counters as other threads see them:
 * ours plus the ones the hook reports (read on the thread that owns them). */
void wp_cp_all_counters(struct wp_cp *cp, uint64_t *out);

/* cp/admin/handlers.c: the admin listener's routes (/config_dump,
 * /enrollment, /healthz/ready, /stats/prometheus) and the metrics
 * listeners' (/stats/prometheus, /metrics); handler ctx is the struct wp_cp. */
extern const struct wp_httpd_route wp_cp_admin_routes[];
extern const struct wp_httpd_route wp_cp_metrics_routes[];

#pragma GCC visibility pop

#endif
