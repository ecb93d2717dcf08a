/*
 * The interface between a worker and the applications it runs (the HBONE
 * tunnels of dp/tunnel today). The worker owns the NIC queues, the TCP
 * stacks and the clock; an application sees only what this header gives
 * it:
 *
 *   struct wp_app_io   what the worker hands an application at creation:
 *                      its id and the worker count, one TCP stack per port
 *                      and the choice of a local port for an active open,
 *                      the snapshot reader, the clock, its counters and
 *                      observability rings, and an allocator;
 *   struct wp_app_ops  what an application registers with the worker
 *                      (wp_worker_add_app): poll once per loop iteration,
 *                      stop at lcore exit, destroy before the TCP stacks
 *                      go, and the gauges the worker copies into its stats.
 *
 * The worker fills it from DPDK (rte_zmalloc_socket on the lcore's NUMA
 * node, the TSC clock, RSS-aware port choice); a unit test fills it over
 * in-memory TCP stacks with calloc and a clock of its own, so an
 * application runs without the EAL. Function pointers here are called per
 * connection or per loop iteration, never per packet or per byte.
 */
#ifndef WP_DP_APP_APP_H
#define WP_DP_APP_APP_H

#include <stddef.h>
#include <stdint.h>

#include "wp/config.h"

struct wp_tcp_stack;
struct wp_snapshot_slot;
struct wp_metrics_core;
struct wp_alog_ring;
struct wp_span_ring;

/* One port of the worker, as an application sees it. */
struct wp_app_port {
	struct wp_tcp_stack *tcp;
	void *owner; /* the worker's port: pick_port's argument */
};

struct wp_app_io {
	unsigned worker_id;
	unsigned n_workers;
	unsigned n_ports;
	struct wp_app_port ports[WP_MAX_PORTS];
	/*
	 * Picks a free local port on <p> for an active open to dst_ip:dst_port
	 * (network order IP, host order port) whose replies reach this worker.
	 * 0 or -EADDRNOTAVAIL.
	 */
	int (*pick_port)(const struct wp_app_port *p, uint32_t dst_ip, uint16_t dst_port,
	                 uint16_t *port);
	/* Monotonic microseconds, the clock poll's now_us comes from. */
	uint64_t (*now_us)(void *ctx);
	/* Zeroed memory of <size> bytes aligned to <align> (0: default), or
	 * NULL; freed by free_fn (NULL is a no-op). */
	void *(*zalloc)(void *ctx, const char *name, size_t size, unsigned align);
	void (*free_fn)(void *ctx, void *p);
	void *ctx;                       /* now_us's, zalloc's and free_fn's */
	struct wp_snapshot_slot *slot;   /* the control plane's snapshots (RCU reader), or NULL */
	uint64_t *ctr;                   /* the worker's counters (wp/counters.h) */
	struct wp_metrics_core *metrics; /* Istio metric cells, or NULL */
	struct wp_alog_ring *alog;       /* access-log ring, or NULL */
	struct wp_span_ring *trace;      /* span ring, or NULL */
};

/* What an application reports into the worker's stats (wp/stats_types.h). */
struct wp_app_gauges {
	uint64_t conns;   /* its connections (hbone_conns) */
	uint64_t tunnels; /* its streams (tunnels) */
};

struct wp_app_ops {
	/* Once per loop iteration. Returns work done (0 = idle). */
	unsigned (*poll)(void *app, uint64_t now_us);
	/* On the lcore at exit: aborts what it still holds. */
	void (*stop)(void *app);
	/* After the lcore returned, before the TCP stacks are destroyed. */
	void (*destroy)(void *app);
	/* Every millisecond or so, on the lcore. */
	void (*gauges)(const void *app, struct wp_app_gauges *g);
};

#endif /* WP_DP_APP_APP_H */
