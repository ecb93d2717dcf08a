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

#include "dp/net/net.h"
#include "dp/port/fault.h"
#include "dp/port/port.h"
#include "wp/config.h"
#include "wp/stats_types.h"

#define WP_BURST 32

struct wp_worker_port {
	const struct wp_port *port;
	struct wp_iface ifc;
	struct wp_arp_cache *arp;
	struct wp_fault fault_rx;
	struct wp_fault fault_tx;
	uint16_t n_tx;
	struct rte_mbuf *tx[WP_BURST];
};

struct wp_worker {
	struct wp_stats stats; /* first: cache aligned, written only by this worker */
	unsigned id;
	unsigned lcore;
	unsigned n_workers;
	const struct wp_config *cfg;
	struct rte_mempool *pool;
	volatile const bool *quit;
	uint64_t tsc_hz;
	unsigned n_ports;
	struct wp_worker_port ports[WP_MAX_PORTS];
} WP_CACHE_ALIGNED;

/*
 * Allocates and prepares worker <id> (caches, fault state) on the calling
 * (main) thread. Returns NULL on allocation failure.
 */
struct wp_worker *wp_worker_create(unsigned id, unsigned lcore, const struct wp_config *cfg,
                                   const struct wp_ports *ports, volatile const bool *quit);

/* The lcore entry point: polls until *quit, then frees what it holds. */
int wp_worker_main(void *worker);

/* Frees a worker after its lcore returned. */
void wp_worker_destroy(struct wp_worker *w);

#endif /* WP_DP_WORKER_H */
