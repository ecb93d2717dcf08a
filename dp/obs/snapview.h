/*
 * What each worker is actually running: the version of the control plane's
 * snapshot it last saw, and how many captured destinations, services,
 * workloads and Gateways that snapshot holds. Only the worker may
 * dereference its RCU snapshot, so the worker records these itself, once
 * per loop iteration (one load and compare when nothing changed); the
 * telemetry command reads the records:
 *
 *   /wp/snapshot         per-worker arrays: version, dests, services,
 *                        workloads, gateways, built_ns, seen_ns, changes
 *   /wp/snapshot,<id>    the same for one worker, as a flat dict, plus the
 *                        served Gateways ("ns/name") with the services and
 *                        workloads each captures (the first
 *                        WP_SNAPVIEW_GATEWAYS; copied on a change only)
 *
 * built_ns is when the control plane built the snapshot and seen_ns when
 * the worker first saw it (both CLOCK_REALTIME), so a test can measure the
 * lag from an API-server change to the data plane.
 */
#ifndef WP_DP_OBS_SNAPVIEW_H
#define WP_DP_OBS_SNAPVIEW_H

#include <stdint.h>

#include "wp/snapshot_types.h"

#define WP_SNAPVIEW_GATEWAYS 16
#define WP_SNAPVIEW_NAME     96

struct wp_snapview_gw {
	char name[WP_SNAPVIEW_NAME]; /* "ns/name", truncated */
	uint32_t services;
	uint32_t workloads;
};

struct wp_snapview_row {
	uint64_t version; /* 0 = no snapshot yet */
	uint64_t dests;   /* captured destinations (wp_snapshot.n_dests) */
	uint64_t services;
	uint64_t workloads;
	uint64_t gateways;
	uint64_t built_ns; /* wp_snapshot.built_ns */
	uint64_t seen_ns;  /* when this worker first saw it */
	uint64_t changes;  /* how many versions this worker has seen */
	uint32_t n_gw;     /* entries in gw (<= WP_SNAPVIEW_GATEWAYS) */
	struct wp_snapview_gw gw[WP_SNAPVIEW_GATEWAYS];
};

/* Worker worker_id (< WP_MAX_WORKERS) reports the snapshot it holds now (s
 * from wp_snapshot_get(), may be NULL). Worker thread only; no allocation. */
void wp_snapview_observe(unsigned worker_id, const struct wp_snapshot *s);

/* A consistent copy of worker_id's record (any thread). */
void wp_snapview_read(unsigned worker_id, struct wp_snapview_row *out);

/* Registers /wp/snapshot for workers 0..n-1. 0 or -errno. */
int wp_snapview_register(unsigned n_workers);

#endif /* WP_DP_OBS_SNAPVIEW_H */
