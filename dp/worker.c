/*
 * The poll loop (see worker.h). Run to completion: every iteration receives
 * a burst per port, passes it through fault injection and the network
 * layers, transmits what they produced, runs timers, and accounts the TSC
 * cycles spent as busy (the iteration did work) or idle. In adaptive mode a
 * run of empty polls puts the core to sleep briefly, so a 2-core test
 * machine stays usable; busy mode never sleeps.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "worker.h"
#include "wp/common.h"

static void free_mbuf(void *pkt, void *arg WP_UNUSED)
{
	rte_pktmbuf_free(pkt);
}

static void *copy_mbuf(void *pkt, void *arg)
{
	struct wp_worker *w = arg;

	return rte_pktmbuf_copy(pkt, w->pool, 0, UINT32_MAX);
}

static inline uint64_t now_us(const struct wp_worker *w, uint64_t tsc)
{
	return tsc / (w->tsc_hz / 1000000);
}

struct wp_worker *wp_worker_create(unsigned id, unsigned lcore, const struct wp_config *cfg,
                                   const struct wp_ports *ports, volatile const bool *quit)
{
	struct wp_worker *w = rte_zmalloc("wp_worker", sizeof(*w), WP_CACHE_LINE);

	if (w == NULL)
		return NULL;
	w->id = id;
	w->lcore = lcore;
	w->n_workers = cfg->workers;
	w->cfg = cfg;
	w->pool = ports->pool[id];
	w->quit = quit;
	w->tsc_hz = rte_get_tsc_hz();
	w->n_ports = ports->n;
	for (unsigned i = 0; i < ports->n; i++) {
		struct wp_worker_port *wp = &w->ports[i];
		const struct wp_port_config *pc = &cfg->ports[i];
		uint32_t mask = pc->prefix ? htonl(~0u << (32 - pc->prefix)) : 0;

		wp->port = &ports->port[i];
		memcpy(wp->ifc.mac, ports->port[i].mac, 6);
		wp->ifc.mtu = pc->mtu;
		wp->ifc.ip = pc->ip.v4;
		wp->ifc.netmask = mask;
		wp->ifc.gateway = pc->gateway.family == WP_AF_INET ? pc->gateway.v4 : 0;
		wp->ifc.port_id = ports->port[i].port_id;
		wp->arp = wp_arp_cache_create(cfg->arp_entries, cfg->arp_pending,
		                              (uint64_t)cfg->arp_ttl_s * 1000000, 3000000,
		                              free_mbuf, NULL);
		if (wp->arp == NULL)
			goto fail;
		wp_fault_init(&wp->fault_rx, cfg->fault.rx_drop, cfg->fault.rx_dup,
		              cfg->fault.rx_reorder, cfg->fault.seed, id * 64 + i * 2,
		              WP_CTR_FAULT_RX_DROP, WP_CTR_FAULT_RX_DUP, WP_CTR_FAULT_RX_REORDER);
		wp_fault_init(&wp->fault_tx, cfg->fault.tx_drop, cfg->fault.tx_dup,
		              cfg->fault.tx_reorder, cfg->fault.seed, id * 64 + i * 2 + 1,
		              WP_CTR_FAULT_TX_DROP, WP_CTR_FAULT_TX_DUP, WP_CTR_FAULT_TX_REORDER);
	}
	return w;
fail:
	wp_worker_destroy(w);
	return NULL;
}

void wp_worker_destroy(struct wp_worker *w)
{
	if (w == NULL)
		return;
	for (unsigned i = 0; i < w->n_ports; i++)
		wp_arp_cache_destroy(w->ports[i].arp);
	rte_free(w);
}

/* Queues one frame for transmit on port <wp>; flushed at the end of the iteration. */
static void tx_enqueue(struct wp_worker *w, struct wp_worker_port *wp, struct rte_mbuf *m);

static void tx_flush(struct wp_worker *w, struct wp_worker_port *wp)
{
	struct wp_fault_ops ops = {copy_mbuf, free_mbuf, w};
	void *out[2 * WP_BURST + 1];
	uint16_t n, sent;
	uint64_t t0;

	n = wp_fault_filter(&wp->fault_tx, (void **)wp->tx, wp->n_tx, out, WP_ARRAY_SIZE(out), &ops,
	                    w->stats.ctr);
	wp->n_tx = 0;
	if (n == 0)
		return;
	for (uint16_t i = 0; i < n; i++)
		w->stats.tx_bytes += rte_pktmbuf_pkt_len((struct rte_mbuf *)out[i]);
	t0 = rte_rdtsc();
	sent = rte_eth_tx_burst(wp->port->port_id, (uint16_t)w->id, (struct rte_mbuf **)out, n);
	w->stats.io_cycles += rte_rdtsc() - t0;
	w->stats.tx_pkts += sent;
	for (uint16_t i = sent; i < n; i++) {
		w->stats.tx_bytes -= rte_pktmbuf_pkt_len((struct rte_mbuf *)out[i]);
		rte_pktmbuf_free(out[i]);
		wp_ctr_inc(w->stats.ctr, WP_CTR_PORT_TX_FULL);
	}
}

static void tx_enqueue(struct wp_worker *w, struct wp_worker_port *wp, struct rte_mbuf *m)
{
	if (wp->n_tx == WP_BURST)
		tx_flush(w, wp);
	wp->tx[wp->n_tx++] = m;
}

/* Sends what waited for <ip>'s MAC now that it is known. */
static void release_pending(struct wp_worker *w, struct wp_worker_port *wp, uint32_t ip,
                            uint64_t now)
{
	void *pkts[WP_BURST];
	uint8_t mac[6];
	unsigned n;

	if (!wp_arp_cache_lookup(wp->arp, ip, now, mac))
		return;
	while ((n = wp_arp_cache_take_pending(wp->arp, ip, pkts, WP_BURST)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct rte_mbuf *m = pkts[i];
			uint8_t *eth = rte_pktmbuf_mtod(m, uint8_t *);

			memcpy(eth, mac, 6);
			tx_enqueue(w, wp, m);
		}
	}
}

static void rx_one(struct wp_worker *w, struct wp_worker_port *wp, struct rte_mbuf *m, uint64_t now)
{
	struct wp_net_rx rx;
	enum wp_net_verdict v;

	w->stats.rx_pkts++;
	w->stats.rx_bytes += rte_pktmbuf_pkt_len(m);
	if (!rte_pktmbuf_is_contiguous(m) && rte_pktmbuf_linearize(m) != 0) {
		wp_ctr_inc(w->stats.ctr, WP_CTR_ETH_NONLINEAR);
		rte_pktmbuf_free(m);
		return;
	}
	v = wp_net_input(&wp->ifc, wp->arp, now, rte_pktmbuf_mtod(m, uint8_t *),
	                 rte_pktmbuf_data_len(m), &rx, w->stats.ctr);
	switch (v) {
	case WP_NET_REPLY:
		rte_pktmbuf_data_len(m) = rx.reply_len;
		rte_pktmbuf_pkt_len(m) = rx.reply_len;
		tx_enqueue(w, wp, m);
		if (rx.learned)
			release_pending(w, wp, rx.learned_ip, now);
		return;
	case WP_NET_ARP_LEARNED:
		rte_pktmbuf_free(m);
		release_pending(w, wp, rx.learned_ip, now);
		return;
	case WP_NET_TCP:
		/* No TCP stack on this build yet: refuse politely by dropping. */
		wp_ctr_inc(w->stats.ctr, WP_CTR_IPV4_UNKNOWN_PROTO);
		rte_pktmbuf_free(m);
		return;
	case WP_NET_DROP:
	default:
		rte_pktmbuf_free(m);
		return;
	}
}

/* One poll of one port. Returns how many packets it handled. */
static unsigned poll_port(struct wp_worker *w, struct wp_worker_port *wp, uint64_t now)
{
	struct rte_mbuf *burst[WP_BURST];
	void *in[2 * WP_BURST + 1];
	struct wp_fault_ops ops = {copy_mbuf, free_mbuf, w};
	uint16_t n, k;

	uint64_t t0 = rte_rdtsc();

	n = rte_eth_rx_burst(wp->port->port_id, (uint16_t)w->id, burst, WP_BURST);
	if (n)
		w->stats.io_cycles += rte_rdtsc() - t0;
	k = wp_fault_filter(&wp->fault_rx, (void **)burst, n, in, WP_ARRAY_SIZE(in), &ops,
	                    w->stats.ctr);
	for (uint16_t i = 0; i < k; i++) {
		if (i + 1 < k)
			rte_prefetch0(rte_pktmbuf_mtod((struct rte_mbuf *)in[i + 1], void *));
		rx_one(w, wp, in[i], now);
	}
	return n + k;
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

int wp_worker_main(void *arg)
{
	struct wp_worker *w = arg;
	struct wp_fault_ops ops = {copy_mbuf, free_mbuf, w};
	unsigned empty = 0;
	uint64_t last_expire = 0;

	while (!*w->quit) {
		uint64_t start = rte_rdtsc(), now = now_us(w, start), end;
		unsigned work = 0;

		for (unsigned i = 0; i < w->n_ports; i++)
			work += poll_port(w, &w->ports[i], now);
		if (now - last_expire >= 1000) {
			for (unsigned i = 0; i < w->n_ports; i++)
				wp_arp_cache_expire(w->ports[i].arp, now, w->stats.ctr);
			last_expire = now;
		}
		for (unsigned i = 0; i < w->n_ports; i++)
			if (w->ports[i].n_tx || w->ports[i].fault_tx.held)
				tx_flush(w, &w->ports[i]);
		w->stats.loops++;
		end = rte_rdtsc();
		if (work) {
			w->stats.busy_cycles += end - start;
			empty = 0;
			continue;
		}
		w->stats.idle_cycles += end - start;
		if (w->cfg->poll_mode == WP_POLL_ADAPTIVE && ++empty >= w->cfg->poll_idle_polls) {
			sleep_us(w->cfg->poll_sleep_us);
			w->stats.idle_cycles += rte_rdtsc() - end;
		}
	}
	for (unsigned i = 0; i < w->n_ports; i++) {
		struct wp_worker_port *wp = &w->ports[i];

		wp_fault_flush(&wp->fault_rx, &ops);
		wp_fault_flush(&wp->fault_tx, &ops);
		for (uint16_t k = 0; k < wp->n_tx; k++)
			rte_pktmbuf_free(wp->tx[k]);
		wp->n_tx = 0;
	}
	return 0;
}
