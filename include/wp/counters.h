/*
 * The one table of named counters. Every drop and error path in the tree
 * increments a counter declared here, so per-core stats, DPDK telemetry,
 * wpctl and Prometheus all list the same names (the VPP *_error.def idea).
 *
 * Each module keeps its rows beside its code, in <module>_counters.def
 * (dp/net/tcp/tcp_counters.def, cp/kube/kube_counters.def, ...), as
 *     WP_CTR(NAME, KIND, "what happened")
 * where KIND is DROP (a packet or request was discarded) or EVENT (a
 * notable occurrence that is not a loss). Add a row there (a new module's
 * file gets one line in wp_counter_defs, top meson.build, which orders the
 * enum), then increment with wp_ctr_inc(ctr, WP_CTR_NAME). The build
 * concatenates the files into wp/counters/list.h (build tree's include/;
 * include/wp/counters/gen_list.py), one WP_CTR_GROUP_<MODULE> per file.
 */
#ifndef WP_COUNTERS_H
#define WP_COUNTERS_H

#include <stdint.h>

enum wp_ctr_kind {
	WP_CTR_KIND_DROP,
	WP_CTR_KIND_EVENT,
};

enum wp_ctr {
#define WP_CTR(name, kind, desc) WP_CTR_##name,
#include "wp/counters/list.h"
#undef WP_CTR
	WP_CTR_MAX
};

struct wp_ctr_info {
	const char *name; /* lower-case, e.g. "ipv4_bad_checksum" */
	enum wp_ctr_kind kind;
	const char *desc;
};

/* Name, kind and description of every counter, indexed by enum wp_ctr. */
extern struct wp_ctr_info wp_ctr_info[WP_CTR_MAX]; /* read-only after load */

static inline void wp_ctr_inc(uint64_t *ctr, enum wp_ctr c)
{
	ctr[c]++;
}

static inline void wp_ctr_add(uint64_t *ctr, enum wp_ctr c, uint64_t n)
{
	ctr[c] += n;
}

#endif /* WP_COUNTERS_H */
