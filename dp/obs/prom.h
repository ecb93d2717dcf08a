/*
 * The Prometheus text exposition (format 0.0.4) of everything waypointd
 * counts: each worker's statistics and counters (waypointd_<name>, label
 * core="<worker id>"), the control plane's counters (waypointd_<name>, no
 * core label), and Istio's standard metrics from the per-core cells
 * (wp/metrics.h), the cores merged into one series per label set.
 *
 * Runs on the control-plane thread, once per scrape of /stats/prometheus
 * (cp/admin): it reads the workers' memory without locks (see wp/metrics.h
 * and wp/stats_types.h for what that guarantees). What it learns about a
 * cell once (its label text, which merged series it adds to) is kept, so a
 * scrape costs a pass over the cells and the writing of the text.
 */
#ifndef WP_DP_PROM_H
#define WP_DP_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "wp/metrics.h"
#include "wp/stats_types.h"

#define WP_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct wp_prom;

/*
 * A renderer for n workers: stats[i] and cores[i] (NULL when a worker keeps
 * no Istio cells) must stay valid until wp_prom_destroy. NULL when out of
 * memory.
 */
struct wp_prom *wp_prom_create(struct wp_stats *const *stats, struct wp_metrics_core *const *cores,
                               unsigned n, uint64_t tsc_hz);

void wp_prom_destroy(struct wp_prom *p);

/*
 * The exposition, NUL-terminated and malloc'd (the caller frees it), with
 * the control plane's counters cp_ctr[WP_CTR_MAX] (NULL: none). NULL when
 * out of memory. One thread at a time.
 */
char *wp_prom_render(struct wp_prom *p, const uint64_t *cp_ctr, size_t *len);

/* Appends s[0..len) escaped as a label value (backslash, double quote and
 * line feed as \\, \" and \n) to out, which must hold 2 * len bytes.
 * Returns the bytes written. */
size_t wp_prom_escape(char *out, const char *s, size_t len);

#endif /* WP_DP_PROM_H */
