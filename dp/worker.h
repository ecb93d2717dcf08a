/*
 * The per-core worker: one struct wp_worker per worker lcore, owning its RX
 * and TX queue on every port, its mbuf pool, neighbour caches, fault
 * injectors and statistics. Nothing in it is shared with another worker
 * except through the steering rings and the read-only snapshot.
 */
#ifndef WP_DP_WORKER_H
#define WP_DP_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include "app.h"
#include "net.h"
#include "tcp.h"
#include "port_fault.h"
#include "port.h"
#include "wp/config.h"
#include "wp/metrics.h"
#include "wp/stats_types.h"

#define WP_BURST    32
#define WP_MAX_APPS 2 /* applications a worker runs (wp_worker_add_app) */

struct wp_worker;

struct wp_worker_port {
	struct wp_worker *w;
	const struct wp_port *port;
	struct wp_tcp_stack *tcp;
	struct wp_tcp_diag *diag; /* echo/discard/source services, or NULL */
	struct wp_iface ifc;
	struct wp_arp_cache *arp;
	struct wp_fault fault_rx;
	struct wp_fault fault_tx;
	uint16_t ip_id;
	uint16_t n_tx;
	struct rte_mbuf *tx[WP_BURST];
};

/*
 * Rings that hand a packet to the worker owning its flow: steer[src][dst] is
 * single-producer (worker src) single-consumer (worker dst); NULL on the
 * diagonal. Created once by wp_steer_create().
 */
struct wp_steer {
	unsigned n;
	struct rte_ring *ring[WP_MAX_WORKERS][WP_MAX_WORKERS];
};

struct wp_worker {
	struct wp_stats stats; /* first: cache aligned, written only by this worker */
	unsigned id;
	unsigned lcore;
	unsigned n_workers;
	const struct wp_config *cfg;
	struct rte_mempool *pool;
	struct rte_mempool *tso_pool; /* 64 KiB mbufs for TSO segments; NULL without TSO */
	volatile const bool *quit;
	uint64_t tsc_hz;
	const struct wp_steer *steer;
	struct wp_snapshot_slot *slot; /* the control plane's snapshots (RCU reader) */
	struct wp_diag_client *client; /* an active-open test job, or NULL */
	struct wp_metrics_core
	        *metrics;          /* Istio metric cells (wp/metrics.h; main owns it), or NULL */
	struct wp_alog_ring *alog; /* access-log ring to the writer (main owns it) */
	struct wp_span_ring
	        *trace; /* span ring to the exporter (main's exporter owns it), or NULL */
	unsigned n_ports;
	struct wp_worker_port ports[WP_MAX_PORTS];
	struct wp_app_io io; /* what applications see of this worker (wp_worker_io) */
	unsigned n_apps;
	struct {
		const struct wp_app_ops *ops;
		void *app;
	} apps[WP_MAX_APPS]; /* polled in order each iteration, destroyed in reverse */
} WP_CACHE_ALIGNED;

/* Creates the n x n steering rings (start-up). 0 or -ENOMEM. */
int wp_steer_create(struct wp_steer *s, unsigned n);
void wp_steer_destroy(struct wp_steer *s);

/*
 * Allocates and prepares worker <id> (neighbour caches, TCP stacks, fault
 * state) on the calling (main) thread. <cfg>, <ports> and <steer> must
 * outlive the worker. Returns NULL on allocation failure.
 */
struct wp_worker *wp_worker_create(unsigned id, unsigned lcore, const struct wp_config *cfg,
                                   const struct wp_ports *ports, const struct wp_steer *steer,
                                   volatile const bool *quit);

/*
 * Sends an IPv4 packet whose L4 part (l4_len bytes) sits at
 * WP_NET_HDR_ROOM in <m>'s data: writes Ethernet + IPv4, and transmits, or
 * waits for ARP. The mbuf is consumed in every case (freed and counted when
 * it cannot go).
 */
void wp_worker_send_ipv4(struct wp_worker_port *wp, struct rte_mbuf *m, uint32_t dst_ip,
                         uint8_t proto, uint16_t l4_len);

/*
 * Picks a free local port on <wp> for an active open to dst_ip:dst_port
 * (network order IP, host order port) whose reply hashes to this worker
 * (wp_port_flow_owner), so the connection's segments need no steering on a
 * NIC that honours RSS. 0 or -EADDRNOTAVAIL.
 */
int wp_worker_pick_port(struct wp_worker_port *wp, uint32_t dst_ip, uint16_t dst_port,
                        uint16_t *port) WP_MUST_CHECK;

/* The worker's clock in microseconds (TSC based, monotonic). */
uint64_t wp_worker_now_us(const struct wp_worker *w);

/*
 * The I/O interface an application of worker <w> is created with
 * (dp/app/app.h), with the slot, metric cells and rings set on <w> so far
 * (start-up, main thread). It lives as long as the worker.
 */
const struct wp_app_io *wp_worker_io(struct wp_worker *w);

/*
 * Makes the worker poll, stop and destroy <app> with <ops> (start-up,
 * before the lcore runs). The worker owns <app> from then on: it is
 * destroyed with the worker. 0, or -ENOSPC past WP_MAX_APPS.
 */
int wp_worker_add_app(struct wp_worker *w, const struct wp_app_ops *ops, void *app) WP_MUST_CHECK;

/* The lcore entry point: polls until *quit, then frees what it holds. */
int wp_worker_main(void *worker);

/* Frees a worker after its lcore returned. */
void wp_worker_destroy(struct wp_worker *w);

#endif /* WP_DP_WORKER_H */
