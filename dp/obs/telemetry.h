/*
 * Per-core statistics over the DPDK telemetry socket
 * (/var/run/dpdk/<prefix>/dpdk_telemetry.v2), read by wpctl stats and by
 * DPDK's own dpdk-telemetry.py. Commands:
 *   /wp/info            version, worker count, TSC frequency
 *   /wp/workers         the worker ids
 *   /wp/worker,<id>     one worker's packets, bytes, cycles and counters
 *   /wp/stats           the same fields summed over all workers, plus the
 *                       control plane's counters (cp_*, admin_*, kube_*)
 *   /wp/cp              the control plane's counters alone
 *   /wp/snapshot[,<id>] the snapshot each worker runs (dp/obs/snapview.h)
 *   /wp/tunnels         HBONE connections, tunnels and their memory, summed
 *                       over workers (wp_telemetry_tunnels_register)
 */
#ifndef WP_DP_TELEMETRY_H
#define WP_DP_TELEMETRY_H

#include <stdint.h>

#include "wp/stats_types.h"

#define WP_MAX_TEL_WORKERS 128

/*
 * Registers the /wp/ commands. <stats> (one per worker, n of them) and
 * <lcores> must stay valid until exit: the telemetry thread reads them for
 * as long as the process lives. Call once, after rte_eal_init().
 * Returns 0 or -errno.
 */
int wp_telemetry_register(struct wp_stats *const *stats, const unsigned *lcores, unsigned n,
                          uint64_t tsc_hz);

/* Fills out[WP_CTR_MAX] with the control plane's counters (wp_cp_counters). */
typedef void (*wp_telemetry_cp_cb)(void *ctx, uint64_t *out);

/*
 * Makes the control plane's counters part of /wp/stats and /wp/cp; fn is
 * called on the telemetry thread. wp_telemetry_set_cp(NULL, NULL) unhooks
 * it, and returns only once no call is running, so ctx may be freed then.
 */
void wp_telemetry_set_cp(wp_telemetry_cp_cb fn, void *ctx);

/* /wp/tunnels: the tunnel layer's gauges (dp/tunnel/tunnel.h), summed over workers. */
struct wp_telemetry_tunnels {
	uint64_t sessions_in;     /* inbound HBONE connections */
	uint64_t sessions_out;    /* originated HBONE connections */
	uint64_t tunnels;         /* open tunnels */
	uint64_t queued_bytes;    /* tunnel bytes waiting for a slow side */
	uint64_t h2_held_bytes;   /* HTTP/2 + tunnel buffer bytes held */
	uint64_t h2_slab_bytes;   /* slabs carved by the workers' allocators */
	int64_t tls_live_bytes;   /* OpenSSL bytes allocated by the workers' threads */
	uint64_t handshakes;      /* inbound connections in TCP+TLS set-up */
	uint64_t handshakes_peak; /* the highest any one worker reached */
};

/* Adds one worker's tunnel gauges into <sum>; called on the telemetry thread. */
typedef void (*wp_telemetry_tunnels_cb)(const void *app, struct wp_telemetry_tunnels *sum);

/*
 * Registers /wp/tunnels over apps[0..n) (one per worker; NULL entries are
 * skipped), each read with <add>. <apps> must stay valid until exit.
 * 0 or -errno.
 */
int wp_telemetry_tunnels_register(const void *const *apps, unsigned n, wp_telemetry_tunnels_cb add);

#endif /* WP_DP_TELEMETRY_H */
