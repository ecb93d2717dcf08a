/*
 * IPv4: receive-side validation (RFC 791 / RFC 1122 3.2.1), next-hop choice
 * and the header written in front of outgoing segments. Only unfragmented
 * packets addressed to our unicast address are accepted; ICMP goes to
 * icmp.c, TCP is handed back to the caller with its offsets (the TCP layer
 * checks the TCP checksum).
 *
 * Ethernet may pad short frames, so the IPv4 total length, not the frame
 * length, bounds the packet; a total length beyond the frame is a truncation.
 * A frame may go on past the bytes in its first buffer (wp_net_input): the
 * IPv4 header must lie in them, and an ICMP message whole.
 */
#include <errno.h>

#include "net_bytes.h"
#include "wp/counters.h"

enum wp_net_verdict wp_net_ipv4_input(const struct wp_iface *ifc, uint8_t *frame, uint16_t head,
                                      uint32_t len, struct wp_net_rx *rx, uint64_t *ctr)
{
	uint32_t avail = len - WP_ETH_HLEN;                /* the whole packet */
	uint16_t in_head = (uint16_t)(head - WP_ETH_HLEN); /* what can be read */
	const uint8_t *ip = frame + WP_ETH_HLEN;

	if (WP_UNLIKELY(in_head < WP_IPV4_HLEN)) {
		wp_ctr_inc(ctr, WP_CTR_IPV4_TRUNCATED);
		return WP_NET_DROP;
	}
	if (WP_UNLIKELY(ip[IPH_VIHL] >> 4 != 4)) {
		wp_ctr_inc(ctr, WP_CTR_IPV4_BAD_VERSION);
		return WP_NET_DROP;
	}
	uint16_t ihl = (uint16_t)((ip[IPH_VIHL] & 0x0f) * 4);
	if (WP_UNLIKELY(ihl < WP_IPV4_HLEN || ihl > in_head)) {
		wp_ctr_inc(ctr, WP_CTR_IPV4_BAD_IHL);
		return WP_NET_DROP;
	}
	uint16_t tot_len = ld16be(ip + IPH_TLEN);
	if (WP_UNLIKELY(tot_len < ihl)) {
		wp_ctr_inc(ctr, WP_CTR_IPV4_BAD_LENGTH);
		return WP_NET_DROP;
	}
	if (WP_UNLIKELY(tot_len > avail)) {
		wp_ctr_inc(ctr, WP_CTR_IPV4_TRUNCATED);
		return WP_NET_DROP;
	}
	if (WP_UNLIKELY(wp_inet_cksum(ip, ihl) != 0)) {
		wp_ctr_inc(ctr, WP_CTR_IPV4_BAD_CHECKSUM);
		return WP_NET_DROP;
	}
	if (WP_UNLIKELY(ip[IPH_TTL] == 0)) {
		wp_ctr_inc(ctr, WP_CTR_IPV4_TTL_EXPIRED);
		return WP_NET_DROP;
	}
	if (WP_UNLIKELY(ld16be(ip + IPH_FRAG) & (IPH_MF | IPH_OFFMASK))) {
		wp_ctr_inc(ctr, WP_CTR_IPV4_FRAGMENT);
		return WP_NET_DROP;
	}
	uint32_t dst = ld32n(ip + IPH_DST);
	if (dst != ifc->ip) {
		/* Broadcast and multicast included: we serve only our unicast address. */
		wp_ctr_inc(ctr, WP_CTR_IPV4_NOT_OURS);
		return WP_NET_DROP;
	}
	uint32_t src = ld32n(ip + IPH_SRC);
	if (WP_UNLIKELY(ip_is_bad_peer(ifc, src))) {
		wp_ctr_inc(ctr, WP_CTR_IPV4_BAD_SOURCE);
		return WP_NET_DROP;
	}
	switch (ip[IPH_PROTO]) {
	case WP_IPPROTO_TCP:
		rx->l3_off = WP_ETH_HLEN;
		rx->l4_off = WP_ETH_HLEN + ihl;
		rx->l4_len = tot_len - ihl;
		rx->src_ip = src;
		rx->dst_ip = dst;
		return WP_NET_TCP;
	case WP_IPPROTO_ICMP:
		if (WP_UNLIKELY(tot_len > in_head)) {
			wp_ctr_inc(ctr, WP_CTR_ETH_NONLINEAR);
			return WP_NET_DROP;
		}
		return wp_net_icmp_input(ifc, frame, ihl, tot_len, rx, ctr);
	default:
		wp_ctr_inc(ctr, WP_CTR_IPV4_UNKNOWN_PROTO);
		return WP_NET_DROP;
	}
}

int wp_net_next_hop(const struct wp_iface *ifc, uint32_t dst_ip, uint32_t *next_hop, uint64_t *ctr)
{
	if (ip_on_link(ifc, dst_ip)) {
		*next_hop = dst_ip;
		return 0;
	}
	if (ifc->gateway != 0) {
		*next_hop = ifc->gateway;
		return 0;
	}
	wp_ctr_inc(ctr, WP_CTR_NET_NO_ROUTE);
	return -ENETUNREACH;
}

uint16_t wp_net_prepend_ipv4(const struct wp_iface *ifc, uint8_t *frame, const uint8_t dst_mac[6],
                             uint32_t dst_ip, uint8_t proto, uint16_t l4_len, uint16_t ip_id)
{
	WP_ASSERT(l4_len <= UINT16_MAX - WP_IPV4_HLEN);
	memcpy(frame + ETH_DST, dst_mac, 6);
	memcpy(frame + ETH_SRC, ifc->mac, 6);
	st16be(frame + ETH_TYPE, ETHERTYPE_IPV4);

	uint8_t *ip = frame + WP_ETH_HLEN;
	ip[IPH_VIHL] = 0x45;
	ip[IPH_TOS] = 0;
	st16be(ip + IPH_TLEN, (uint16_t)(WP_IPV4_HLEN + l4_len));
	st16be(ip + IPH_ID, ip_id);
	st16be(ip + IPH_FRAG, IPH_DF);
	ip[IPH_TTL] = WP_IPV4_DEFAULT_TTL;
	ip[IPH_PROTO] = proto;
	st16be(ip + IPH_CSUM, 0);
	st32n(ip + IPH_SRC, ifc->ip);
	st32n(ip + IPH_DST, dst_ip);
	st_cksum(ip + IPH_CSUM, wp_inet_cksum(ip, WP_IPV4_HLEN));
	return (uint16_t)(WP_NET_HDR_ROOM + l4_len);
}
