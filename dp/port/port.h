/*
 * EAL and ethdev set-up from struct wp_config: builds the EAL argument list
 * (lcores, memory, hugepage fallback, devices), starts the ports with one RX
 * and one TX queue per worker, RSS where the device supports it, and one
 * mbuf pool per worker. Also the software flow-to-worker map used to steer
 * packets that land on the wrong queue (TAP cannot steer by itself).
 */
#ifndef WP_DP_PORT_H
#define WP_DP_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mempool.h>

#include "wp/config.h"

#define WP_RSS_KEY_LEN 40

struct wp_port {
	uint16_t port_id;
	uint8_t mac[6];
	bool rss; /* the device spreads flows by RSS itself */
	/* key the device (or our software map) hashes with; rte_softrss()
	 * reads it as 32-bit words */
	_Alignas(uint32_t) uint8_t rss_key[WP_RSS_KEY_LEN];
	uint16_t reta_size;
	uint16_t reta[512];     /* hash -> queue (== worker id) */
	bool tx_tcp_cksum;      /* the device fills in TCP checksums (pseudo-header sum given) */
	bool rx_tcp_cksum;      /* the device verifies TCP checksums and flags the mbuf */
	bool tso;               /* the device cuts TCP segments of up to WP_TSO_MAX_FRAME bytes */
	bool tso_ip_cksum;      /* ... and is asked to sum each piece's IPv4 header */
	uint16_t tso_frame_hdr; /* counted against the MTU per piece by the device (net_tap: 14) */
	bool lro;               /* the device joins received TCP segments (mbuf chains) */
	char name[64];
};

/* The largest frame handed to a device with TSO: one mbuf of the TSO pool. */
#define WP_TSO_MAX_FRAME (UINT16_MAX - RTE_PKTMBUF_HEADROOM)
/* mbufs in each worker's TSO pool (64 KiB each) when any port has TSO */
#define WP_TSO_POOL_MBUFS 127

struct wp_ports {
	unsigned n;
	struct wp_port port[WP_MAX_PORTS];
	struct rte_mempool *pool[WP_MAX_WORKERS];     /* per worker */
	struct rte_mempool *tso_pool[WP_MAX_WORKERS]; /* per worker, when a port has TSO */
};

/*
 * Initialises the EAL from cfg (argv0 is the program name). Prints a warning
 * and falls back to --no-huge when no 2 MiB hugepages are free. Returns 0 or
 * -errno with a message in err.
 */
int wp_port_eal_init(const struct wp_config *cfg, const char *argv0, char *err, size_t errlen);

/* Creates the pools, configures and starts every port. 0 or -errno (err set). */
int wp_ports_start(const struct wp_config *cfg, struct wp_ports *ports, char *err, size_t errlen);

/* Stops and closes every port (a TAP interface disappears) and frees pools. */
void wp_ports_stop(struct wp_ports *ports);

/*
 * The worker that owns a flow: the device's RSS result when it hashes
 * itself, otherwise the same Toeplitz hash in software. Addresses and ports
 * in network byte order, as they are on the wire.
 */
unsigned wp_port_flow_owner(const struct wp_port *p, uint32_t src_ip, uint32_t dst_ip,
                            uint16_t src_port, uint16_t dst_port, unsigned n_workers);

#endif /* WP_DP_PORT_H */
