/*
 * Private helpers of dp/net: unaligned big-endian loads and stores, frame
 * offsets and address classification. Frames arrive at any alignment (an
 * mbuf's data offset, a fuzzer's buffer), so every multi-byte field goes
 * through memcpy or byte arithmetic, never through a cast struct pointer.
 * Only the .c files of dp/net include it.
 */
#ifndef WP_DP_NET_BYTES_H
#define WP_DP_NET_BYTES_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>

#include "net.h"

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_ARP  0x0806

/* Ethernet header offsets. */
#define ETH_DST  0
#define ETH_SRC  6
#define ETH_TYPE 12

/* ARP (IPv4 over Ethernet) offsets, relative to the ARP header. */
#define ARP_LEN        28
#define ARP_HTYPE      0
#define ARP_PTYPE      2
#define ARP_HLEN       4
#define ARP_PLEN       5
#define ARP_OP         6
#define ARP_SHA        8
#define ARP_SPA        14
#define ARP_THA        18
#define ARP_TPA        24
#define ARP_OP_REQUEST 1
#define ARP_OP_REPLY   2

/* IPv4 header offsets. */
#define IPH_VIHL    0
#define IPH_TOS     1
#define IPH_TLEN    2
#define IPH_ID      4
#define IPH_FRAG    6
#define IPH_TTL     8
#define IPH_PROTO   9
#define IPH_CSUM    10
#define IPH_SRC     12
#define IPH_DST     16
#define IPH_DF      0x4000
#define IPH_MF      0x2000
#define IPH_OFFMASK 0x1fff

/* ICMP offsets. */
#define ICMP_HLEN       8
#define ICMP_TYPE       0
#define ICMP_CODE       1
#define ICMP_CSUM       2
#define ICMP_ECHO_REPLY 0
#define ICMP_ECHO       8

#define ETH_MIN_FRAME 60 /* without FCS */

static inline uint16_t ld16be(const uint8_t *p)
{
	return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline void st16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A 32-bit field kept in network order (addresses are stored that way). */
static inline uint32_t ld32n(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void st32n(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* A 16-bit checksum as returned by wp_inet_cksum(): stored as is. */
static inline void st_cksum(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline bool mac_is_broadcast(const uint8_t *m)
{
	return (m[0] & m[1] & m[2] & m[3] & m[4] & m[5]) == 0xff;
}

static inline bool mac_is_multicast(const uint8_t *m)
{
	return m[0] & 0x01; /* includes broadcast */
}

static inline bool mac_is_zero(const uint8_t *m)
{
	return (m[0] | m[1] | m[2] | m[3] | m[4] | m[5]) == 0;
}

/* First octet of a network-order address. */
static inline uint8_t ip_octet0(uint32_t ip_n)
{
	const uint8_t *b = (const uint8_t *)&ip_n;
	return b[0];
}

static inline bool ip_on_link(const struct wp_iface *ifc, uint32_t ip_n)
{
	return ((ip_n ^ ifc->ip) & ifc->netmask) == 0;
}

/*
 * True for an address no unicast peer can have: 0.0.0.0/8, 127.0.0.0/8,
 * multicast and class E (224.0.0.0/3, which holds 255.255.255.255), our own
 * address, and the directed broadcast of our subnet (unless /31 or /32,
 * where there is none).
 */
static inline bool ip_is_bad_peer(const struct wp_iface *ifc, uint32_t ip_n)
{
	uint8_t o = ip_octet0(ip_n);

	if (o == 0 || o == 127 || o >= 224 || ip_n == ifc->ip)
		return true;
	uint32_t host = ~ifc->netmask;
	uint32_t host_h = ntohl(host);
	if (host_h > 1 && (ip_n & host) == host && ip_on_link(ifc, ip_n))
		return true;
	return false;
}

/* Internal entry points shared by eth.c, arp.c, ipv4.c and icmp.c. */
enum wp_net_verdict wp_net_arp_input(const struct wp_iface *ifc, struct wp_arp_cache *arp,
                                     uint64_t now_us, uint8_t *frame, uint16_t len,
                                     struct wp_net_rx *rx, uint64_t *ctr);
enum wp_net_verdict wp_net_ipv4_input(const struct wp_iface *ifc, uint8_t *frame, uint16_t head,
                                      uint32_t len, struct wp_net_rx *rx, uint64_t *ctr);
enum wp_net_verdict wp_net_icmp_input(const struct wp_iface *ifc, uint8_t *frame, uint16_t ihl,
                                      uint16_t tot_len, struct wp_net_rx *rx, uint64_t *ctr);

#endif /* WP_DP_NET_BYTES_H */
