/*
 * Per-core statistics over the DPDK telemetry socket
 * (/var/run/dpdk/<prefix>/dpdk_telemetry.v2), read by wpctl stats and by
 * DPDK's own dpdk-telemetry.py. Commands:
 *   /wp/info            version, worker count, TSC frequency
 *   /wp/workers         the worker ids
 *   /wp/worker,<id>     one worker's packets, bytes, cycles and counters
 *   /wp/stats           the same fields summed over all workers
 *   /wp/snapshot[,<id>] the snapshot each worker runs (dp/obs/snapview.h)
 */
#ifndef WP_DP_TELEMETRY_H
#define WP_DP_TELEMETRY_H

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

#endif /* WP_DP_TELEMETRY_H */
