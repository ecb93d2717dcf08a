/*
 * Layers 2-3 of the data plane: Ethernet, ARP, IPv4 and ICMP, written
 * sans-I/O. Every function works on a byte buffer (an mbuf's contiguous data
 * in production, a plain array in unit tests), never touches a device, and
 * reports what happened through a verdict plus the per-core counter array
 * (wp/counters.h). The worker (dp/worker.c) is the only caller that knows
 * about mbufs, queues and transmit.
 *
 * Receive:  wp_net_input() parses a frame and either rewrites it in place
 *           into a reply (ARP reply, ICMP echo reply), hands back the offsets
 *           of a TCP segment for the TCP stack, reports a learned neighbour,
 *           or drops it (counted).
 * Transmit: wp_net_prepend_ipv4() writes the Ethernet + IPv4 headers in front
 *           of an L4 payload; wp_arp_cache_lookup()/queue decide whether the
 *           next hop's MAC is known or the packet must wait for ARP.
 */
#ifndef WP_DP_NET_H
#define WP_DP_NET_H

#include <stdbool.h>
#include <stdint.h>

#include "cksum.h"
#include "wp/common.h"

#define WP_ETH_HLEN         14
#define WP_IPV4_HLEN        20
#define WP_NET_HDR_ROOM     (WP_ETH_HLEN + WP_IPV4_HLEN) /* headers in front of L4 */
#define WP_IPPROTO_ICMP     1
#define WP_IPPROTO_TCP      6
#define WP_IPV4_DEFAULT_TTL 64

/* One interface's layer-3 identity (one per port; read-only on the data path). */
struct wp_iface {
	uint8_t mac[6];
	uint16_t mtu;     /* IP MTU, e.g. 1500 */
	uint32_t ip;      /* network byte order */
	uint32_t netmask; /* network byte order */
	uint32_t gateway; /* network byte order; 0 = no default route */
	uint16_t port_id;
};

enum wp_net_verdict {
	WP_NET_DROP,        /* counted; the caller frees the buffer */
	WP_NET_REPLY,       /* rewritten in place; transmit rx->reply_len bytes */
	WP_NET_TCP,         /* a TCP segment for us; see rx->l4_* and rx->src_ip */
	WP_NET_ARP_LEARNED, /* a neighbour was learned: release rx->learned_ip's queue;
	                       the buffer is consumed (free it) */
};

/* What wp_net_input() found; only the fields of the returned verdict are set. */
struct wp_net_rx {
	uint16_t reply_len;  /* WP_NET_REPLY */
	uint16_t l3_off;     /* WP_NET_TCP: IPv4 header offset in the frame */
	uint16_t l4_off;     /* WP_NET_TCP: TCP header offset in the frame */
	uint16_t l4_len;     /* WP_NET_TCP: TCP header + payload length (from IPv4 total length) */
	uint32_t src_ip;     /* WP_NET_TCP: network order */
	uint32_t dst_ip;     /* WP_NET_TCP: network order */
	uint32_t learned_ip; /* WP_NET_ARP_LEARNED and WP_NET_REPLY to a request: network order */
	bool learned;        /* the sender of an ARP packet was learned or refreshed */
};

/* ---- ARP neighbour cache, one per worker per port ---------------------- */

struct wp_arp_cache;

/* Frees a packet handle that was queued for resolution (an mbuf in production). */
typedef void (*wp_arp_free_cb)(void *pkt, void *arg);

/*
 * Creates a cache with room for <entries> neighbours and at most <pending_max>
 * packets waiting for resolution in total. Entries live <ttl_us>; a pending
 * packet waits at most <pending_timeout_us>. Returns NULL on allocation
 * failure (this is a start-up call; it allocates).
 */
struct wp_arp_cache *wp_arp_cache_create(uint32_t entries, uint32_t pending_max, uint64_t ttl_us,
                                         uint64_t pending_timeout_us, wp_arp_free_cb free_cb,
                                         void *free_arg);
/* Frees the cache and every still-pending packet through free_cb. */
void wp_arp_cache_destroy(struct wp_arp_cache *c);

/* Looks up ip (network order). Returns true and fills mac when known and fresh. */
bool wp_arp_cache_lookup(struct wp_arp_cache *c, uint32_t ip, uint64_t now_us, uint8_t mac[6]);

/* True when ip has an entry, resolved (fresh or stale) or still resolving. */
bool wp_arp_cache_contains(const struct wp_arp_cache *c, uint32_t ip);

/* Number of neighbour entries, and of packets waiting, held right now. */
uint32_t wp_arp_cache_count(const struct wp_arp_cache *c);
uint32_t wp_arp_cache_pending_count(const struct wp_arp_cache *c);

/*
 * Adds or refreshes a neighbour (ARP_LEARNED counted). Returns 0, or -ENOSPC
 * when the table is full even after reclaiming stale entries that hold no
 * packets (ARP_TABLE_FULL counted). Queued packets stay queued: take them.
 */
int wp_arp_cache_learn(struct wp_arp_cache *c, uint32_t ip, const uint8_t mac[6], uint64_t now_us,
                       uint64_t *ctr);

/*
 * Queues <pkt> until <ip> resolves. Returns 1 when the caller should send an
 * ARP request now (first packet for this ip, or the last request is older
 * than a second, or the entry was resolved and has gone stale), 0 when queued
 * behind an outstanding request, -ENOBUFS when the queue is full
 * (ARP_PENDING_FULL) or no entry can be made for ip (ARP_TABLE_FULL); then
 * the packet is still the caller's. On success the cache owns pkt until it
 * is taken back or expired (free_cb). The caller sends the request and counts
 * ARP_REQUEST_SENT. Call it after wp_arp_cache_lookup() missed.
 */
int wp_arp_cache_queue(struct wp_arp_cache *c, uint32_t ip, void *pkt, uint64_t now_us,
                       uint64_t *ctr);

/*
 * Takes up to <max> packets waiting for <ip> (in arrival order) into pkts[];
 * they become the caller's. Returns how many.
 */
unsigned wp_arp_cache_take_pending(struct wp_arp_cache *c, uint32_t ip, void **pkts, unsigned max);

/* Frees (free_cb) pending packets older than the timeout, counting each. */
void wp_arp_cache_expire(struct wp_arp_cache *c, uint64_t now_us, uint64_t *ctr);

/* ---- receive ------------------------------------------------------------ */

/*
 * Parses one frame of <len> bytes, of which the first <head> are at <frame>
 * (head == len for a frame in one buffer). Only a TCP segment may go on past
 * head, in further buffers the caller holds (an mbuf chain from LRO or a
 * jumbo frame): its Ethernet and IPv4 headers must lie within head (the
 * caller checks that the TCP header does); anything else not in one buffer
 * is dropped (ETH_NONLINEAR). May rewrite the frame in place (replies);
 * never reads beyond head. Learns ARP senders into <arp> (RFC 826 merge: a
 * sender on our subnet is refreshed if cached, added if the packet targets
 * us). A WP_NET_REPLY to an ARP request may also have learned the sender
 * (rx->learned): release its queue after sending the reply. Echo replies
 * carry no IP options. Every WP_NET_DROP increments exactly one counter.
 */
enum wp_net_verdict wp_net_input(const struct wp_iface *ifc, struct wp_arp_cache *arp,
                                 uint64_t now_us, uint8_t *frame, uint16_t head, uint32_t len,
                                 struct wp_net_rx *rx, uint64_t *ctr);

/* ---- transmit ----------------------------------------------------------- */

/*
 * Writes an ARP request for <target_ip> from <ifc> into buf (at least 60
 * bytes, padded to the Ethernet minimum). Returns the frame length.
 */
uint16_t wp_arp_build_request(const struct wp_iface *ifc, uint32_t target_ip, uint8_t *buf);

/*
 * Picks the next hop for dst_ip: dst_ip itself when on-link, else the
 * gateway. Returns 0 or -ENETUNREACH (NET_NO_ROUTE counted).
 */
int wp_net_next_hop(const struct wp_iface *ifc, uint32_t dst_ip, uint32_t *next_hop, uint64_t *ctr);

/*
 * Writes Ethernet and IPv4 headers into frame[0 .. WP_NET_HDR_ROOM) in front of
 * an L4 payload of l4_len bytes already at frame + WP_NET_HDR_ROOM. Source is
 * ifc->ip; destination MAC dst_mac; IPv4 header checksum computed; DF set.
 * The L4 checksum is the caller's. Returns the frame length.
 */
uint16_t wp_net_prepend_ipv4(const struct wp_iface *ifc, uint8_t *frame, const uint8_t dst_mac[6],
                             uint32_t dst_ip, uint8_t proto, uint16_t l4_len, uint16_t ip_id);

#endif /* WP_DP_NET_H */
