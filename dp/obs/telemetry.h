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

/* Fills out[WP_CTR_MAX] with the control plane's counters (wp_cp_counters). */
typedef void (*wp_telemetry_cp_cb)(void *ctx, uint64_t *out);

/*
 * Makes the control plane's counters part of /wp/stats and /wp/cp; fn is
 * called on the telemetry thread. wp_telemetry_set_cp(NULL, NULL) unhooks
 * it, and returns only once no call is running, so ctx may be freed then.
 */
void wp_telemetry_set_cp(wp_telemetry_cp_cb fn, void *ctx);

#endif /* WP_DP_TELEMETRY_H */
