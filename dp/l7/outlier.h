/*
 * Outlier detection (DestinationRule trafficPolicy.outlierDetection): the
 * one ejection table of the process, shared by every worker.
 *
 * Workers count consecutive errors per endpoint on their own core, in
 * their balancer state (dp/l7/lb_cache.c, no atomics). When a count reaches
 * its threshold the worker calls wp_outlier_eject(): under the table's
 * mutex (only on that rare path) it applies maxEjectionPercent and records
 * "ejected until" (baseEjectionTime times the ejections in a row, capped
 * at 300 s or the base) in the endpoint's entry and bumps a generation
 * number. Every core compares the generation on each pick from a cluster
 * with outlier detection (one atomic load) and, when it moved or an
 * ejection ran out, re-reads its cluster's entries lock-free into a bitmap
 * that wp_lb_pick() skips: an ejection is seen by every core on its next
 * pick, well within one interval. An entry is keyed by the cluster's name
 * (outbound|port|subset|host) and the endpoint's address and port, so it
 * survives new snapshots. Entries are never removed (one per endpoint ever
 * ejected, up to the capacity; then ejections are refused and counted).
 *
 * The ejection multiplier comes down by one for each interval the endpoint
 * spent back in service, as Envoy's does, computed when it is next
 * ejected. /wp/outliers on the DPDK telemetry socket (wpctl outliers)
 * lists the entries.
 */
#ifndef WP_DP_L7_OUTLIER_H
#define WP_DP_L7_OUTLIER_H

#include <stdint.h>

#include "wp/lb.h"

enum wp_outlier_reason {
	WP_OUTLIER_5XX = 1, /* consecutive5xxErrors */
	WP_OUTLIER_GATEWAY, /* consecutiveGatewayErrors (502, 503, 504) */
	WP_OUTLIER_LOCAL,   /* consecutiveLocalOriginFailures */
};

#define WP_OUTLIER_MAX_EJECTION_MS 300000u /* Envoy's max_ejection_time default */

struct wp_outlier;

/* A table of <cap> endpoints (rounded up to a power of two). NULL on
 * allocation failure. Freed by wp_outlier_free() once no worker uses it. */
struct wp_outlier *wp_outlier_new(uint32_t cap);
void wp_outlier_free(struct wp_outlier *o); /* NULL is a no-op */

/* Changes with every ejection (acquire load: entries written before it
 * are visible after). */
uint64_t wp_outlier_gen(const struct wp_outlier *o);

/* Until when (ms, the workers' clock) endpoint <ep> of <t> is ejected;
 * 0 if it never was. Lock-free, any thread. */
uint64_t wp_outlier_until(const struct wp_outlier *o, const struct wp_lb_table *t, uint32_t ep);

/*
 * Endpoint <ep> of <t> reached the threshold of <why> at <now_ms>: ejects
 * it unless it is ejected already or maxEjectionPercent forbids it (an
 * ejection is allowed while (ejected + 1) * 100 <= max% * endpoints).
 * Counts the outcome in <ctr>. Returns 0 (ejected), -EALREADY, -EDQUOT
 * (maxEjectionPercent) or -ENOSPC (table full).
 */
int wp_outlier_eject(struct wp_outlier *o, const struct wp_lb_table *t, uint32_t ep,
                     enum wp_outlier_reason why, uint64_t now_ms, uint64_t *ctr);

/* One entry as the views see it (copied under the lock). */
struct wp_outlier_row {
	char cluster[120];
	struct wp_addr addr;
	uint16_t port;
	uint8_t reason;     /* enum wp_outlier_reason of the last ejection */
	uint32_t ejections; /* in a row (the current multiplier) */
	uint32_t total;     /* ever */
	uint64_t until_ms;
};

/* Copies up to <max> entries into rows[], those still ejected at <now_ms>
 * first; returns how many. */
uint32_t wp_outlier_rows(struct wp_outlier *o, uint64_t now_ms, struct wp_outlier_row *rows,
                         uint32_t max);

/* Over every entry: ejected now, by reason (active[reason], active[0] the
 * sum), and ejections ever. */
void wp_outlier_totals(struct wp_outlier *o, uint64_t now_ms, uint64_t active[4], uint64_t *total);

/* "5xx", "gateway", "local-origin". */
const char *wp_outlier_reason_name(uint8_t why);

/* Registers /wp/outliers on the DPDK telemetry socket over <o>, which must
 * then live until exit. After rte_eal_init(). 0 or -errno. */
int wp_outlier_telemetry_register(struct wp_outlier *o);

#endif /* WP_DP_L7_OUTLIER_H */
