/*
 * Per-core statistics. Each worker owns one struct wp_stats and is its only
 * writer; readers (telemetry, the control plane's Prometheus view) load the
 * fields without locks, which is safe for naturally aligned 64-bit words on
 * the platforms DPDK supports. Totals are sums over workers.
 */
#ifndef WP_STATS_TYPES_H
#define WP_STATS_TYPES_H

#include <stdint.h>

#include "wp/common.h"
#include "wp/counters.h"

struct wp_stats {
	uint64_t rx_pkts;
	uint64_t rx_bytes;
	uint64_t tx_pkts;
	uint64_t tx_bytes;
	uint64_t busy_cycles; /* TSC cycles in loop iterations that did work */
	uint64_t idle_cycles; /* TSC cycles in empty iterations and sleeps */
	uint64_t io_cycles;   /* part of busy_cycles spent inside the PMD's rx/tx burst calls */
	uint64_t loops;
	uint64_t busy_loops; /* ... of which did work (their cycles are busy_cycles) */
	/* TCP occupancy, refreshed by the worker every millisecond. */
	uint64_t tcp_conns;       /* control blocks in use */
	uint64_t tcp_established; /* ... of which ESTABLISHED */
	uint64_t tcp_time_wait;   /* compact TIME_WAIT entries */
	uint64_t tcp_rcv_bufs;    /* receive buffers in use */
	uint64_t tcp_snd_bufs;    /* send buffers in use */
	/* HBONE occupancy (dp/tunnel), refreshed with the TCP gauges. */
	uint64_t hbone_conns;     /* HBONE connections, inbound and originated */
	uint64_t tunnels;         /* tunnels open */
	uint64_t ctr[WP_CTR_MAX]; /* enum wp_ctr */
} WP_CACHE_ALIGNED;

#endif /* WP_STATS_TYPES_H */
