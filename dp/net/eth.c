/*
 * Ethernet receive: the entry point of dp/net. wp_net_input() checks the
 * frame's length and addresses and hands ARP and IPv4 to their parsers
 * (arp.c, ipv4.c). Nothing past the Ethernet header is read here.
 */
#include "net_bytes.h"
#include "wp/counters.h"

enum wp_net_verdict wp_net_input(const struct wp_iface *ifc, struct wp_arp_cache *arp,
                                 uint64_t now_us, uint8_t *frame, uint16_t head, uint32_t len,
                                 struct wp_net_rx *rx, uint64_t *ctr)
{
	rx->learned = false;
	if (WP_UNLIKELY(head < WP_ETH_HLEN)) {
		wp_ctr_inc(ctr, WP_CTR_ETH_TRUNCATED);
		return WP_NET_DROP;
	}
	const uint8_t *dst = frame + ETH_DST;
	if (memcmp(dst, ifc->mac, 6) != 0 && !mac_is_broadcast(dst)) {
		wp_ctr_inc(ctr, WP_CTR_ETH_NOT_OURS);
		return WP_NET_DROP;
	}
	/* A group address is never a sender; replying to one would flood. */
	if (WP_UNLIKELY(mac_is_multicast(frame + ETH_SRC))) {
		wp_ctr_inc(ctr, WP_CTR_ETH_BAD_SOURCE);
		return WP_NET_DROP;
	}
	switch (ld16be(frame + ETH_TYPE)) {
	case ETHERTYPE_IPV4:
		return wp_net_ipv4_input(ifc, frame, head, len, rx, ctr);
	case ETHERTYPE_ARP:
		if (WP_UNLIKELY(head != len)) {
			wp_ctr_inc(ctr, WP_CTR_ETH_NONLINEAR);
			return WP_NET_DROP;
		}
		return wp_net_arp_input(ifc, arp, now_us, frame, head, rx, ctr);
	default:
		wp_ctr_inc(ctr, WP_CTR_ETH_UNKNOWN_TYPE);
		return WP_NET_DROP;
	}
}
