/*
 * The poll loop (see worker.h). Run to completion: every iteration receives
 * a burst per port, passes it through fault injection and the network
 * layers, hands TCP segments to the stack of the worker that owns the flow,
 * transmits what the layers produced, runs timers, reports RCU quiescence,
 * and accounts the TSC cycles spent as busy (the iteration did work) or
 * idle. In adaptive mode a run of empty polls puts the core to sleep,
 * first for polling.first_sleep_us and twice as long after each further
 * idle sleep up to polling.sleep_us, so that a core that just went quiet
 * answers the next packet within microseconds and an idle one costs
 * little; busy mode never sleeps. The first sleep is never shorter than
 * the shortest one the platform gives, measured when the worker starts:
 * under a hypervisor a sleep asked for 1 us can take tens of
 * microseconds and cost about as much CPU in the wake-up, so shorter
 * requests add wake-ups and answer no sooner.
 *
 * Flow ownership: wp_port_flow_owner() names the worker that owns a TCP
 * flow (the NIC's RSS result, or the same Toeplitz hash in software). A
 * segment that lands on another worker's queue is handed over through the
 * SPSC steering ring between the two; active opens pick a local port whose
 * hash lands on the opening worker, so their replies need no steering on a
 * NIC that honours RSS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "diag_client.h"
#include "tcp_diag.h"
#include "snapview.h"
#include "worker.h"
#include "wp/common.h"
#include "wp/log.h"
#include "wp/snapshot.h"

#define STEER_RING_SIZE 1024
#define SLEEP_PROBES    15 /* sleeps timed at start: the median is the platform's shortest */

/* The diagnostic services' well-known ports (RFC 862, RFC 863, chargen's). */
#define WP_DIAG_ECHO_PORT    7
#define WP_DIAG_DISCARD_PORT 9
#define WP_DIAG_SOURCE_PORT  19

static void free_mbuf(void *pkt, void *arg WP_UNUSED)
{
	rte_pktmbuf_free(pkt);
}

static void *copy_mbuf(void *pkt, void *arg)
{
	struct wp_worker *w = arg;

	return rte_pktmbuf_copy(pkt, w->pool, 0, UINT32_MAX);
}

uint64_t wp_worker_now_us(const struct wp_worker *w)
{
	return rte_rdtsc() / (w->tsc_hz / 1000000);
}

int wp_steer_create(struct wp_steer *s, unsigned n)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	for (unsigned a = 0; a < n; a++)
		for (unsigned b = 0; b < n; b++) {
			char name[RTE_RING_NAMESIZE + 16];

			if (a == b)
				continue;
			snprintf(name, sizeof(name), "wp_steer_%u_%u", a, b);
			s->ring[a][b] = rte_ring_create(name, STEER_RING_SIZE, SOCKET_ID_ANY,
			                                RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (s->ring[a][b] == NULL) {
				wp_steer_destroy(s);
				return -ENOMEM;
			}
		}
	return 0;
}

void wp_steer_destroy(struct wp_steer *s)
{
	for (unsigned a = 0; a < s->n; a++)
		for (unsigned b = 0; b < s->n; b++) {
			struct rte_ring *r = s->ring[a][b];
			void *m;

			if (r == NULL)
				continue;
			while (rte_ring_dequeue(r, &m) == 0)
				rte_pktmbuf_free(m);
			rte_ring_free(r);
			s->ring[a][b] = NULL;
		}
}

/* ---- transmit ------------------------------------------------------------ */

static void tx_flush(struct wp_worker *w, struct wp_worker_port *wp)
{
	struct wp_fault_ops ops = {copy_mbuf, free_mbuf, w};
	void *out[2 * WP_BURST + 1];
	uint16_t n, ok, sent;
	uint64_t t0;

	n = wp_fault_filter(&wp->fault_tx, (void **)wp->tx, wp->n_tx, out, WP_ARRAY_SIZE(out), &ops,
	                    w->stats.ctr);
	wp->n_tx = 0;
	if (n == 0)
		return;
	for (uint16_t i = 0; i < n; i++)
		w->stats.tx_bytes += rte_pktmbuf_pkt_len((struct rte_mbuf *)out[i]);
	t0 = rte_rdtsc();
	ok = n;
	if (wp->port->tso) /* the device's own header fix-ups for its offloads */
		ok = rte_eth_tx_prepare(wp->port->port_id, (uint16_t)w->id, (struct rte_mbuf **)out,
		                        n);
	sent = rte_eth_tx_burst(wp->port->port_id, (uint16_t)w->id, (struct rte_mbuf **)out, ok);
	w->stats.io_cycles += rte_rdtsc() - t0;
	w->stats.tx_pkts += sent;
	for (uint16_t i = sent; i < n; i++) {
		w->stats.tx_bytes -= rte_pktmbuf_pkt_len((struct rte_mbuf *)out[i]);
		rte_pktmbuf_free(out[i]);
		wp_ctr_inc(w->stats.ctr, WP_CTR_PORT_TX_FULL);
	}
}

/* Queues one frame for transmit; flushed when the burst fills or at the end of the iteration. */
static void tx_enqueue(struct wp_worker *w, struct wp_worker_port *wp, struct rte_mbuf *m)
{
	if (wp->n_tx == WP_BURST)
		tx_flush(w, wp);
	wp->tx[wp->n_tx++] = m;
}

static void send_arp_request(struct wp_worker *w, struct wp_worker_port *wp, uint32_t ip)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
	uint8_t *buf;

	if (m == NULL || (buf = (uint8_t *)rte_pktmbuf_append(m, 60)) == NULL) {
		rte_pktmbuf_free(m);
		wp_ctr_inc(w->stats.ctr, WP_CTR_PORT_NOMBUF);
		return;
	}
	rte_pktmbuf_trim(m, (uint16_t)(60 - wp_arp_build_request(&wp->ifc, ip, buf)));
	tx_enqueue(w, wp, m);
	wp_ctr_inc(w->stats.ctr, WP_CTR_ARP_REQUEST_SENT);
}

void wp_worker_send_ipv4(struct wp_worker_port *wp, struct rte_mbuf *m, uint32_t dst_ip,
                         uint8_t proto, uint16_t l4_len)
{
	static const uint8_t unknown[6];
	struct wp_worker *w = wp->w;
	uint64_t now = wp_worker_now_us(w);
	uint32_t next_hop;
	uint8_t mac[6];
	int rc;

	if (wp_net_next_hop(&wp->ifc, dst_ip, &next_hop, w->stats.ctr) != 0) {
		rte_pktmbuf_free(m);
		return;
	}
	if (wp_arp_cache_lookup(wp->arp, next_hop, now, mac)) {
		wp_net_prepend_ipv4(&wp->ifc, rte_pktmbuf_mtod(m, uint8_t *), mac, dst_ip, proto,
		                    l4_len, wp->ip_id++);
		tx_enqueue(w, wp, m);
		return;
	}
	/* The destination MAC is filled in when the neighbour answers. */
	wp_net_prepend_ipv4(&wp->ifc, rte_pktmbuf_mtod(m, uint8_t *), unknown, dst_ip, proto,
	                    l4_len, wp->ip_id++);
	rc = wp_arp_cache_queue(wp->arp, next_hop, m, now, w->stats.ctr);
	if (rc < 0)
		rte_pktmbuf_free(m);
	else if (rc == 1)
		send_arp_request(w, wp, next_hop);
}

/*
 * wp_tcp_io_ops: room for one TCP segment behind the Ethernet + IPv4
 * headers; a segment larger than the port's mbufs hold is one for the
 * device to cut (TSO) and comes from the worker's TSO pool.
 */
static uint8_t *tcp_tx_alloc(void *arg, uint16_t len, void **handle)
{
	struct wp_worker_port *wp = arg;
	struct rte_mempool *mp = wp->w->pool;
	struct rte_mbuf *m;
	char *p;

	if (wp->w->tso_pool != NULL &&
	    WP_NET_HDR_ROOM + len + RTE_PKTMBUF_HEADROOM > rte_pktmbuf_data_room_size(mp))
		mp = wp->w->tso_pool;
	m = rte_pktmbuf_alloc(mp);
	if (m == NULL)
		return NULL;
	p = rte_pktmbuf_append(m, (uint16_t)(WP_NET_HDR_ROOM + len));
	if (p == NULL) {
		rte_pktmbuf_free(m);
		return NULL;
	}
	*handle = m;
	return (uint8_t *)p + WP_NET_HDR_ROOM;
}

static void tcp_tx_send(void *arg, void *handle, uint32_t src_ip WP_UNUSED, uint32_t dst_ip,
                        uint16_t len, uint16_t tso_segsz)
{
	struct wp_worker_port *wp = arg;
	struct rte_mbuf *m = handle;

	if (tso_segsz) { /* the device cuts it and sums every piece */
		const uint8_t *tcp = rte_pktmbuf_mtod_offset(m, uint8_t *, WP_NET_HDR_ROOM);

		m->l2_len = WP_ETH_HLEN;
		m->l3_len = WP_IPV4_HLEN;
		m->l4_len = (uint64_t)(tcp[12] >> 4) * 4u;
		m->tso_segsz = tso_segsz;
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_SEG;
		if (wp->port->tso_ip_cksum)
			m->ol_flags |= RTE_MBUF_F_TX_IP_CKSUM;
	} else if (wp->port->tx_tcp_cksum) { /* the stack left the pseudo-header sum */
		m->l2_len = WP_ETH_HLEN;
		m->l3_len = WP_IPV4_HLEN;
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
	}
	wp_worker_send_ipv4(wp, m, dst_ip, WP_IPPROTO_TCP, len);
}

/* ---- active opens -------------------------------------------------------- */

struct owner_pred {
	struct wp_worker_port *wp;
	uint32_t dst_ip;
	uint16_t dst_port; /* network order */
};

/* True when the reply to a connection from <port> hashes to this worker. */
static bool port_is_ours(uint16_t port, void *arg)
{
	struct owner_pred *p = arg;
	struct wp_worker *w = p->wp->w;

	return wp_port_flow_owner(p->wp->port, p->dst_ip, p->wp->ifc.ip, p->dst_port, htons(port),
	                          w->n_workers) == w->id;
}

int wp_worker_pick_port(struct wp_worker_port *wp, uint32_t dst_ip, uint16_t dst_port,
                        uint16_t *port)
{
	struct owner_pred pred = {wp, dst_ip, htons(dst_port)};

	return wp_tcp_pick_port(wp->tcp, dst_ip, dst_port, port_is_ours, &pred, port);
}

/* ---- the applications' I/O interface (dp/app/app.h) -------------------------- */

static int app_pick_port(const struct wp_app_port *p, uint32_t dst_ip, uint16_t dst_port,
                         uint16_t *port)
{
	return wp_worker_pick_port(p->owner, dst_ip, dst_port, port);
}

static uint64_t app_now_us(void *ctx)
{
	return wp_worker_now_us(ctx);
}

/* On the NUMA node of the worker's lcore, where the application runs. */
static void *app_zalloc(void *ctx, const char *name, size_t size, unsigned align)
{
	const struct wp_worker *w = ctx;

	return rte_zmalloc_socket(name, size, align, (int)rte_lcore_to_socket_id(w->lcore));
}

static void app_free(void *ctx WP_UNUSED, void *p)
{
	rte_free(p);
}

const struct wp_app_io *wp_worker_io(struct wp_worker *w)
{
	w->io.slot = w->slot;
	w->io.metrics = w->metrics;
	w->io.alog = w->alog;
	w->io.trace = w->trace;
	return &w->io;
}

int wp_worker_add_app(struct wp_worker *w, const struct wp_app_ops *ops, void *app)
{
	if (w->n_apps == WP_MAX_APPS)
		return -ENOSPC;
	w->apps[w->n_apps].ops = ops;
	w->apps[w->n_apps].app = app;
	w->n_apps++;
	return 0;
}

/* ---- set-up -------------------------------------------------------------- */

static struct wp_tcp_stack *create_tcp(struct wp_worker *w, struct wp_worker_port *wp,
                                       const struct wp_config *cfg, const struct wp_port_config *pc)
{
	struct wp_tcp_io_ops ops = {tcp_tx_alloc, tcp_tx_send, wp};
	struct wp_tcp_config tc;
	struct wp_tcp_stack *st;

	wp_tcp_config_default(&tc);
	tc.local_ip = pc->ip.v4;
	tc.max_conns = cfg->tcp.max_conns;
	tc.syn_backlog = cfg->tcp.syn_backlog;
	tc.accept_backlog = cfg->tcp.accept_backlog;
	tc.time_wait_max = cfg->tcp.time_wait_max;
	tc.time_wait_us = cfg->tcp.time_wait_ms * 1000u;
	tc.rcv_buf = cfg->tcp.rcv_buf;
	tc.snd_buf = cfg->tcp.snd_buf;
	tc.rcv_buf_count = cfg->tcp.buffers;
	tc.snd_buf_count = cfg->tcp.buffers;
	tc.keepalive_idle_ms = cfg->tcp.keepalive_s * 1000u;
	tc.mss = (uint16_t)(pc->mtu - 40);
	tc.tx_cksum_offload = wp->port->tx_tcp_cksum;
	tc.rx_coalesce = pc->gro;
	if (wp->port->tso && w->tso_pool != NULL) {
		tc.tso_max = WP_TSO_MAX_FRAME - WP_NET_HDR_ROOM - 60;
		tc.tso_mss = (uint16_t)(tc.mss - wp->port->tso_frame_hdr);
	}
	st = wp_tcp_stack_create(&tc, &ops, w->stats.ctr);
	if (st != NULL && pc->diag) {
		wp->diag = wp_tcp_diag_listen(st, WP_DIAG_ECHO_PORT, WP_DIAG_DISCARD_PORT,
		                              WP_DIAG_SOURCE_PORT, cfg->tcp.max_conns);
		if (wp->diag == NULL) {
			wp_tcp_stack_destroy(st);
			return NULL;
		}
	}
	return st;
}

struct wp_worker *wp_worker_create(unsigned id, unsigned lcore, const struct wp_config *cfg,
                                   const struct wp_ports *ports, const struct wp_steer *steer,
                                   volatile const bool *quit)
{
	struct wp_worker *w = rte_zmalloc("wp_worker", sizeof(*w), WP_CACHE_LINE);

	if (w == NULL)
		return NULL;
	w->id = id;
	w->lcore = lcore;
	w->n_workers = cfg->workers;
	w->cfg = cfg;
	w->pool = ports->pool[id];
	w->tso_pool = ports->tso_pool[id];
	w->quit = quit;
	w->steer = steer;
	w->tsc_hz = rte_get_tsc_hz();
	w->n_ports = ports->n;
	w->io.worker_id = id;
	w->io.n_workers = cfg->workers;
	w->io.n_ports = ports->n;
	w->io.pick_port = app_pick_port;
	w->io.now_us = app_now_us;
	w->io.zalloc = app_zalloc;
	w->io.free_fn = app_free;
	w->io.ctx = w;
	w->io.ctr = w->stats.ctr;
	for (unsigned i = 0; i < ports->n; i++) {
		struct wp_worker_port *wp = &w->ports[i];
		const struct wp_port_config *pc = &cfg->ports[i];
		uint32_t mask = pc->prefix ? htonl(~0u << (32 - pc->prefix)) : 0;

		wp->w = w;
		wp->port = &ports->port[i];
		memcpy(wp->ifc.mac, ports->port[i].mac, 6);
		wp->ifc.mtu = pc->mtu;
		wp->ifc.ip = pc->ip.v4;
		wp->ifc.netmask = mask;
		wp->ifc.gateway = pc->gateway.family == WP_AF_INET ? pc->gateway.v4 : 0;
		wp->ifc.port_id = ports->port[i].port_id;
		wp->ip_id = (uint16_t)(id << 12);
		wp->arp = wp_arp_cache_create(cfg->arp_entries, cfg->arp_pending,
		                              (uint64_t)cfg->arp_ttl_s * 1000000, 3000000,
		                              free_mbuf, NULL);
		if (wp->arp == NULL)
			goto fail;
		wp->tcp = create_tcp(w, wp, cfg, pc);
		if (wp->tcp == NULL)
			goto fail;
		w->io.ports[i].tcp = wp->tcp;
		w->io.ports[i].owner = wp;
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
	while (w->n_apps > 0) { /* closes their connections: before the stacks go */
		w->n_apps--;
		w->apps[w->n_apps].ops->destroy(w->apps[w->n_apps].app);
	}
	for (unsigned i = 0; i < w->n_ports; i++) {
		wp_tcp_diag_destroy(w->ports[i].diag); /* unlistens: before the stack goes */
		if (w->ports[i].tcp != NULL)
			wp_tcp_stack_destroy(w->ports[i].tcp);
		wp_arp_cache_destroy(w->ports[i].arp);
	}
	rte_free(w);
}

/* ---- receive ------------------------------------------------------------- */

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

			memcpy(rte_pktmbuf_mtod(m, uint8_t *), mac, 6);
			tx_enqueue(w, wp, m);
		}
	}
}

static inline uint16_t get_be16_raw(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

/*
 * Whether the device vouches for the segment's bytes: its checksum checked
 * good, or (RX_L4_CKSUM_NONE) the data known intact while the checksum
 * field is not filled in. A virtio NIC reports the latter for a packet its
 * host marks as needing a checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM, as from
 * another guest or the host on the same machine): the field then holds only
 * the pseudo-header's sum, and checking it would drop every such segment.
 */
static inline bool l4_verified(const struct rte_mbuf *m)
{
	uint64_t f = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;

	return f == RTE_MBUF_F_RX_L4_CKSUM_GOOD || f == RTE_MBUF_F_RX_L4_CKSUM_NONE;
}

/* Buffers of one chained frame the stack takes as pieces (LRO: 64 KiB in
 * 2 KiB mbufs is 33). */
#define WP_RX_MAX_PIECES 64

/* The TCP checksum of a segment in an mbuf chain, pseudo-header included. */
static bool chain_cksum_ok(const struct rte_mbuf *m, const struct wp_net_rx *rx)
{
	const struct rte_ipv4_hdr *ip =
	        rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, rx->l3_off);
	uint16_t raw;
	uint32_t sum;

	if (rte_raw_cksum_mbuf(m, rx->l4_off, rx->l4_len, &raw) != 0)
		return false;
	sum = (uint32_t)raw + rte_ipv4_phdr_cksum(ip, 0);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* Whether the first buffer of a chain holds the whole TCP header. */
static bool tcp_header_in_first(const struct rte_mbuf *m, const struct wp_net_rx *rx)
{
	uint32_t head = rte_pktmbuf_data_len(m) - rx->l4_off; /* dp/net: l4_off within it */

	return head >= 20 &&
	       (uint32_t)(rte_pktmbuf_mtod_offset(m, const uint8_t *, rx->l4_off)[12] >> 4) * 4 <=
	               head;
}

/*
 * A TCP segment in an mbuf chain (a device's LRO, or a frame larger than one
 * mbuf): the first buffer holds the headers (tcp_header_in_first) and the
 * first payload bytes, the others the rest, handed to the stack as pieces
 * without a copy. The checksum is checked over the chain unless the device
 * vouched for it.
 */
static void tcp_rx_chain(struct wp_worker *w, struct wp_worker_port *wp, struct rte_mbuf *m,
                         const struct wp_net_rx *rx, uint64_t now)
{
	const uint8_t *seg = rte_pktmbuf_mtod_offset(m, const uint8_t *, rx->l4_off);
	uint32_t head = rte_pktmbuf_data_len(m) - rx->l4_off;
	uint32_t left = rx->l4_len > head ? rx->l4_len - head : 0;
	struct wp_tcp_piece more[WP_RX_MAX_PIECES];
	unsigned n = 0;

	if (!l4_verified(m) && !chain_cksum_ok(m, rx)) {
		wp_ctr_inc(w->stats.ctr, WP_CTR_TCP_BAD_CHECKSUM);
		return;
	}
	for (const struct rte_mbuf *s = m->next; s != NULL && left > 0; s = s->next) {
		uint32_t k = RTE_MIN((uint32_t)rte_pktmbuf_data_len(s), left);

		if (n == WP_RX_MAX_PIECES) {
			wp_ctr_inc(w->stats.ctr, WP_CTR_ETH_NONLINEAR);
			return;
		}
		more[n++] =
		        (struct wp_tcp_piece){.p = rte_pktmbuf_mtod(s, const uint8_t *), .len = k};
		left -= k;
	}
	(void)wp_tcp_input_pieces(wp->tcp, rx->src_ip, rx->dst_ip, seg,
	                          (uint16_t)RTE_MIN(head, (uint32_t)rx->l4_len), more, n, now);
}

/*
 * A TCP segment in <m> (offsets in rx). Hands it to the owning worker's ring
 * when the flow is not ours; otherwise to our stack. Consumes <m>.
 */
static void tcp_rx(struct wp_worker *w, struct wp_worker_port *wp, struct rte_mbuf *m,
                   const struct wp_net_rx *rx, uint64_t now, bool steered)
{
	const uint8_t *seg = rte_pktmbuf_mtod_offset(m, const uint8_t *, rx->l4_off);
	unsigned owner = w->id;

	if (!rte_pktmbuf_is_contiguous(m) && !tcp_header_in_first(m, rx)) {
		wp_ctr_inc(w->stats.ctr, WP_CTR_ETH_NONLINEAR);
		rte_pktmbuf_free(m);
		return;
	}
	if (!steered && w->n_workers > 1 && rx->l4_len >= 4)
		owner = wp_port_flow_owner(wp->port, rx->src_ip, rx->dst_ip, get_be16_raw(seg),
		                           get_be16_raw(seg + 2), w->n_workers);
	if (owner != w->id) {
		if (rte_ring_enqueue(w->steer->ring[w->id][owner], m) != 0) {
			wp_ctr_inc(w->stats.ctr, WP_CTR_STEER_RING_FULL);
			rte_pktmbuf_free(m);
		} else {
			wp_ctr_inc(w->stats.ctr, WP_CTR_STEER_OUT);
		}
		return;
	}
	if (!rte_pktmbuf_is_contiguous(m))
		tcp_rx_chain(w, wp, m, rx, now);
	else if (l4_verified(m))
		(void)wp_tcp_input_verified(wp->tcp, rx->src_ip, rx->dst_ip, seg, rx->l4_len, now);
	else /* not verified, or flagged bad: the stack checks (and counts) */
		(void)wp_tcp_input(wp->tcp, rx->src_ip, rx->dst_ip, seg, rx->l4_len, now);
	rte_pktmbuf_free(m);
}

/*
 * Neighbour caches are per worker, but an ARP reply lands on whichever queue
 * the peer's hash picks: every worker gets a copy of each ARP packet, so the
 * one holding packets for that neighbour learns it too.
 */
static void share_arp(struct wp_worker *w, struct rte_mbuf *m)
{
	for (unsigned dst = 0; dst < w->n_workers; dst++) {
		struct rte_mbuf *c;

		if (dst == w->id)
			continue;
		c = rte_pktmbuf_copy(m, w->pool, 0, UINT32_MAX);
		if (c == NULL) {
			wp_ctr_inc(w->stats.ctr, WP_CTR_PORT_NOMBUF);
			continue;
		}
		if (rte_ring_enqueue(w->steer->ring[w->id][dst], c) != 0) {
			wp_ctr_inc(w->stats.ctr, WP_CTR_STEER_RING_FULL);
			rte_pktmbuf_free(c);
		} else {
			wp_ctr_inc(w->stats.ctr, WP_CTR_STEER_OUT);
		}
	}
}

static inline bool is_arp(const struct rte_mbuf *m)
{
	const uint8_t *eth = rte_pktmbuf_mtod(m, const uint8_t *);

	return rte_pktmbuf_data_len(m) >= WP_ETH_HLEN && eth[12] == 0x08 && eth[13] == 0x06;
}

static void rx_one(struct wp_worker *w, struct wp_worker_port *wp, struct rte_mbuf *m, uint64_t now,
                   bool steered)
{
	struct wp_net_rx rx;
	enum wp_net_verdict v;

	if (!steered) {
		w->stats.rx_pkts++;
		w->stats.rx_bytes += rte_pktmbuf_pkt_len(m);
	}
	/* a chain the first buffer can hold is joined; a longer one (LRO)
	 * stays one, for TCP to take as pieces */
	if (!rte_pktmbuf_is_contiguous(m))
		(void)rte_pktmbuf_linearize(m);
	if (!steered && w->n_workers > 1 && is_arp(m))
		share_arp(w, m);
	v = wp_net_input(&wp->ifc, wp->arp, now, rte_pktmbuf_mtod(m, uint8_t *),
	                 rte_pktmbuf_data_len(m), rte_pktmbuf_pkt_len(m), &rx, w->stats.ctr);
	switch (v) {
	case WP_NET_REPLY:
		if (steered) { /* a shared ARP request: the receiving worker answered it */
			rte_pktmbuf_free(m);
			if (rx.learned)
				release_pending(w, wp, rx.learned_ip, now);
			return;
		}
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
		tcp_rx(w, wp, m, &rx, now, steered);
		return;
	case WP_NET_DROP:
	default:
		rte_pktmbuf_free(m);
		return;
	}
}

static struct wp_worker_port *port_of(struct wp_worker *w, uint16_t port_id)
{
	for (unsigned i = 0; i < w->n_ports; i++)
		if (w->ports[i].port->port_id == port_id)
			return &w->ports[i];
	return NULL;
}

/*
 * Every cache line of a received frame, asked for while the frame before
 * it is handled: the stack reads all of it (the TCP checksum, then the copy
 * into the receive buffer), and on a memif, a NIC or a steering ring its
 * bytes were last written by another core or by the device.
 */
static inline void prefetch_frame(const struct rte_mbuf *m)
{
	const char *d = rte_pktmbuf_mtod(m, const char *);

	for (uint32_t off = 0; off < rte_pktmbuf_data_len(m); off += RTE_CACHE_LINE_SIZE)
		rte_prefetch0(d + off);
}

/* Segments other workers received for flows we own. */
static unsigned poll_steer(struct wp_worker *w, uint64_t now)
{
	unsigned total = 0;

	for (unsigned src = 0; src < w->n_workers; src++) {
		struct rte_ring *r = w->steer->ring[src][w->id];
		struct rte_mbuf *burst[WP_BURST];
		unsigned n;

		if (r == NULL)
			continue;
		n = rte_ring_dequeue_burst(r, (void **)burst, WP_BURST, NULL);
		for (unsigned i = 0; i < n; i++) {
			struct wp_worker_port *wp = port_of(w, burst[i]->port);

			if (i + 1 < n)
				prefetch_frame(burst[i + 1]);
			wp_ctr_inc(w->stats.ctr, WP_CTR_STEER_IN);
			if (wp == NULL) {
				rte_pktmbuf_free(burst[i]);
				continue;
			}
			rx_one(w, wp, burst[i], now, true);
		}
		total += n;
	}
	return total;
}

/* One poll of one port. Returns how many packets it handled. */
static unsigned poll_port(struct wp_worker *w, struct wp_worker_port *wp, uint64_t now)
{
	struct rte_mbuf *burst[WP_BURST];
	void *in[2 * WP_BURST + 1];
	struct wp_fault_ops ops = {copy_mbuf, free_mbuf, w};
	uint64_t t0 = rte_rdtsc();
	uint16_t n, k;

	n = rte_eth_rx_burst(wp->port->port_id, (uint16_t)w->id, burst, WP_BURST);
	if (n)
		w->stats.io_cycles += rte_rdtsc() - t0;
	k = wp_fault_filter(&wp->fault_rx, (void **)burst, n, in, WP_ARRAY_SIZE(in), &ops,
	                    w->stats.ctr);
	for (uint16_t i = 0; i < k; i++) {
		if (i + 1 < k)
			prefetch_frame(in[i + 1]);
		rx_one(w, wp, in[i], now, false);
	}
	return n + k;
}

/* Copies the TCP stacks' and the applications' occupancy into the stats that telemetry reads. */
static void publish_gauges(struct wp_worker *w)
{
	uint64_t conns = 0, est = 0, tw = 0, rb = 0, sb = 0;

	for (unsigned i = 0; i < w->n_ports; i++) {
		struct wp_tcp_gauges g;

		wp_tcp_stack_gauges(w->ports[i].tcp, &g);
		conns += g.conns;
		est += g.state[WP_TCP_ESTABLISHED];
		tw += g.time_wait;
		rb += g.rcv_bufs;
		sb += g.snd_bufs;
	}
	__atomic_store_n(&w->stats.tcp_conns, conns, __ATOMIC_RELAXED);
	__atomic_store_n(&w->stats.tcp_established, est, __ATOMIC_RELAXED);
	__atomic_store_n(&w->stats.tcp_time_wait, tw, __ATOMIC_RELAXED);
	__atomic_store_n(&w->stats.tcp_rcv_bufs, rb, __ATOMIC_RELAXED);
	__atomic_store_n(&w->stats.tcp_snd_bufs, sb, __ATOMIC_RELAXED);
	if (w->n_apps > 0) {
		struct wp_app_gauges sum = {0, 0};

		for (unsigned i = 0; i < w->n_apps; i++) {
			struct wp_app_gauges g = {0, 0};

			w->apps[i].ops->gauges(w->apps[i].app, &g);
			sum.conns += g.conns;
			sum.tunnels += g.tunnels;
		}
		__atomic_store_n(&w->stats.hbone_conns, sum.conns, __ATOMIC_RELAXED);
		__atomic_store_n(&w->stats.tunnels, sum.tunnels, __ATOMIC_RELAXED);
	}
}

static void sleep_us(unsigned us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};

	nanosleep(&ts, NULL);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The microseconds a sleep asked for 1 us takes here (the timer slack is
 * already 1 us): the median of SLEEP_PROBES, rounded up; *cpu_ns, the
 * thread's CPU time per sleep, which is the wake-up's cost. */
static unsigned shortest_sleep_us(uint64_t tsc_hz, uint64_t *cpu_ns)
{
	uint64_t t[SLEEP_PROBES], per_us = tsc_hz / 1000000, cpu0 = thread_cpu_ns();

	for (unsigned i = 0; i < SLEEP_PROBES; i++) {
		uint64_t t0 = rte_rdtsc();

		sleep_us(1);
		t[i] = rte_rdtsc() - t0;
	}
	*cpu_ns = (thread_cpu_ns() - cpu0) / SLEEP_PROBES;
	qsort(t, SLEEP_PROBES, sizeof(t[0]), cmp_u64);
	return (unsigned)((t[SLEEP_PROBES / 2] + per_us - 1) / per_us);
}

/* Adaptive polling's first sleep: polling.first_sleep_us, raised to the
 * platform's shortest sleep, at most polling.sleep_us. */
static unsigned first_nap_us(const struct wp_worker *w)
{
	uint64_t cpu_ns;
	unsigned shortest = shortest_sleep_us(w->tsc_hz, &cpu_ns);
	unsigned first = w->cfg->poll_first_sleep_us;

	if (first < shortest)
		first = RTE_MIN(shortest, w->cfg->poll_sleep_us);
	wp_log(WP_LOG_INFO,
	       "waypointd: worker %u: a 1 us sleep takes %u us here and %.1f us of CPU; adaptive "
	       "polling's sleeps start at %u us (polling.first_sleep_us %u), up to %u\n",
	       w->id, shortest, (double)cpu_ns / 1000, first, w->cfg->poll_first_sleep_us,
	       w->cfg->poll_sleep_us);
	return first;
}

int wp_worker_main(void *arg)
{
	struct wp_worker *w = arg;
	struct wp_fault_ops ops = {copy_mbuf, free_mbuf, w};
	unsigned empty = 0, first_nap = 0, nap_us;
	uint64_t last_expire = 0;

	if (w->slot != NULL && wp_snapshot_slot_register(w->slot, w->id) != 0)
		return -EINVAL;
	/* sleeps as short as asked, not rounded up by the default 50 us slack */
	(void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	if (w->cfg->poll_mode == WP_POLL_ADAPTIVE)
		first_nap = first_nap_us(w);
	nap_us = first_nap;
	while (!*w->quit) {
		uint64_t start = rte_rdtsc(), now = start / (w->tsc_hz / 1000000), end;
		unsigned work = 0;

		for (unsigned i = 0; i < w->n_ports; i++)
			work += poll_port(w, &w->ports[i], now);
		work += poll_steer(w, now);
		for (unsigned i = 0; i < w->n_ports; i++)
			wp_tcp_rx_flush(w->ports[i].tcp, now);
		work += wp_diag_client_poll(w, now);
		for (unsigned i = 0; i < w->n_apps; i++)
			work += w->apps[i].ops->poll(w->apps[i].app, now);
		for (unsigned i = 0; i < w->n_ports; i++)
			wp_tcp_timers(w->ports[i].tcp, now);
		if (now - last_expire >= 1000) {
			for (unsigned i = 0; i < w->n_ports; i++)
				wp_arp_cache_expire(w->ports[i].arp, now, w->stats.ctr);
			publish_gauges(w);
			last_expire = now;
		}
		for (unsigned i = 0; i < w->n_ports; i++)
			if (w->ports[i].n_tx) {
				work++;
				tx_flush(w, &w->ports[i]);
			} else if (w->ports[i].fault_tx.held) {
				tx_flush(w, &w->ports[i]);
			}
		w->stats.loops++;
		if (w->slot != NULL) {
			wp_snapshot_quiescent(w->slot, w->id);
			wp_snapview_observe(w->id, wp_snapshot_get(w->slot));
		}
		end = rte_rdtsc();
		if (work) {
			w->stats.busy_cycles += end - start;
			w->stats.busy_loops++;
			empty = 0;
			nap_us = first_nap;
			continue;
		}
		w->stats.idle_cycles += end - start;
		if (w->cfg->poll_mode == WP_POLL_ADAPTIVE && ++empty >= w->cfg->poll_idle_polls) {
			sleep_us(nap_us);
			nap_us = RTE_MIN(nap_us * 2, w->cfg->poll_sleep_us);
			w->stats.idle_cycles += rte_rdtsc() - end;
		}
	}
	wp_diag_client_stop(w);
	for (unsigned i = 0; i < w->n_apps; i++)
		w->apps[i].ops->stop(w->apps[i].app);
	if (w->slot != NULL)
		wp_snapshot_slot_unregister(w->slot, w->id);
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
