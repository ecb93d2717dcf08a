/*
 * The control-plane thread. It owns the configuration sources, the
 * resolver and the snapshot slot; it loads the sources, publishes a first
 * snapshot, then runs on its own pthread: follows source changes (debounced),
 * rebuilds and publishes snapshots, reclaims retired ones, and serves the
 * admin HTTP endpoint on a kernel socket (cp/admin/httpd.h: non-blocking,
 * in the same event loop, so no admin client can delay an update or the
 * stop; bounded clients, request size and time per request):
 *
 *   GET /config_dump    the running snapshot, errors, counters, and whether
 *                       each source finished its first sync (JSON)
 *   GET /enrollment     every Service and Pod with waypoint and reason, as
 *                       the running snapshot has them (JSON)
 *   GET /healthz/ready  200 once a snapshot is published, else 503
 *   GET /stats/prometheus  the Prometheus exposition (wp_cp_set_prometheus)
 *   GET /certs          the HBONE certificate and its renewal state (wp/ca.h)
 *
 * and the same /stats/prometheus (and /metrics) on the metrics listeners
 * (metrics.port, Istio's merged-metrics port 15020, and metrics.envoy_port,
 * Envoy's 15090), with the admin listener's bounds.
 *
 * Both JSON views say what they show ("view": "snapshot", or "none" before
 * the first publish) and which kinds a source has not caught up on
 * ("lagging"); ?view=store shows the object store instead (what has been
 * received so far, possibly half-listed), labelled "store".
 *
 * A bad edit (rejected document or file) keeps the object's last good
 * version, is logged to stderr, counted (CP_MANIFEST_REJECTED) and listed in
 * /config_dump's "errors"; a failed build keeps the last good snapshot.
 *
 * waypointd's main: create, add sources (the manifest dir is added from the
 * config), start (returns after the first publish), hand wp_cp_slot() to the
 * workers, stop and destroy at exit.
 */
#ifndef WP_CP_H
#define WP_CP_H

#include <stdint.h>

#include "wp/addr_types.h"
#include "wp/common.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

struct wp_cp_config {
	const char *manifest_dir;  /* waypoint.conf cluster.manifest_dir; NULL/"" = none */
	struct wp_served served;   /* cluster.gateways (list "ns/name") and cluster.gateway_class */
	struct wp_addr admin_addr; /* admin.address; family NONE = 127.0.0.1 */
	uint16_t admin_port;       /* admin.port; 0 = pick a free port (tests) */
	bool admin_disabled;       /* admin.enabled = false */
	unsigned admin_max_clients;        /* admin.max_clients; 0 = 32 */
	unsigned admin_request_timeout_ms; /* admin.request_timeout_ms; 0 = 5000 */
	unsigned admin_max_request_bytes;  /* admin.max_request_bytes; 0 = 8192 */
	bool metrics_enabled;              /* metrics.enabled */
	struct wp_addr metrics_addr;       /* metrics.address; family NONE = 127.0.0.1 */
	uint16_t metrics_port;             /* metrics.port; 0 = pick a free port (tests) */
	uint16_t metrics_envoy_port;       /* metrics.envoy_port; 0 = none */
	unsigned n_workers;                /* RCU readers (worker ids 0..n-1) */
	unsigned debounce_ms;              /* cluster.debounce_ms: wait this long after a change
	                                    * before rebuilding (coalesces bursts); 0 = none */
	unsigned sync_wait_ms;             /* how long wp_cp_start waits for every source's
	                                    * first full sync; 0 = 10000 */
};

struct wp_cp;

/* Creates the resolver, the snapshot slot and (unless disabled) binds the
 * admin socket, and adds the manifest-dir source when configured. NULL on
 * error, with the reason on stderr. */
struct wp_cp *wp_cp_create(const struct wp_cp_config *cfg);

/* Adds another source (e.g. the Kubernetes one); before wp_cp_start. The
 * control plane owns src from now on. 0 or -errno. */
int wp_cp_add_source(struct wp_cp *cp, struct wp_source *src);

/* Starts every source, waits (up to sync_wait_ms, serving the admin
 * endpoint) until each has reported its first full sync, publishes the
 * first snapshot, then launches the thread. Nothing is ever published
 * before every source synced: when the wait runs out it says so on stderr
 * and returns 0 without a snapshot (workers see NULL, /healthz/ready is
 * 503), and the thread publishes as soon as the last source syncs.
 * 0 or -errno (the sources' errors were reported). */
int wp_cp_start(struct wp_cp *cp);

/* Stops the thread (idempotent). */
void wp_cp_stop(struct wp_cp *cp);

/* Stops, then frees everything, including the slot: workers must have
 * unregistered. */
void wp_cp_destroy(struct wp_cp *cp);

/* The slot the workers read (valid until wp_cp_destroy). */
struct wp_snapshot_slot *wp_cp_slot(struct wp_cp *cp);

/* The admin port actually bound (useful with admin_port 0). */
uint16_t wp_cp_admin_port(const struct wp_cp *cp);

/* The first metrics port actually bound (metrics.port), 0 when disabled. */
uint16_t wp_cp_metrics_port(const struct wp_cp *cp);

/*
 * Renders the Prometheus exposition of a scrape, the control plane's
 * counters (cp_ctr[WP_CTR_MAX]) included: a malloc'd NUL-terminated text
 * (*len bytes) or NULL when out of memory. Called on the control-plane
 * thread, once per scrape; it must not block.
 */
typedef char *(*wp_cp_prom_cb)(void *ctx, const uint64_t *cp_ctr, size_t *len);

/*
 * Sets (or with fn NULL, clears) what /stats/prometheus renders; until it
 * is set the path answers 503. May be called at any time from any thread;
 * clearing returns only once no scrape is using the old one, so its ctx
 * may be freed then.
 */
void wp_cp_set_prometheus(struct wp_cp *cp, wp_cp_prom_cb fn, void *ctx);

/* Fills out[WP_CTR_MAX] with counters the control plane does not keep
 * itself (the Kubernetes source's KUBE_* rows), every entry. */
typedef void (*wp_cp_counters_cb)(void *ctx, uint64_t *out);

/* Makes fn's counters part of wp_cp_counters. fn is called on the
 * control-plane thread, once per turn of its loop. Before wp_cp_start. */
void wp_cp_set_extra_counters(struct wp_cp *cp, wp_cp_counters_cb fn, void *ctx);

/* Copies the control plane's counters (CP_*, ADMIN_* and the extra ones;
 * indexed by enum wp_ctr, other rows 0) into out[WP_CTR_MAX]. Safe from
 * any thread; the copy is at most one loop turn (200 ms) old. */
void wp_cp_counters(const struct wp_cp *cp, uint64_t *out);

#endif /* WP_CP_H */
