/*
 * ARP for IPv4 over Ethernet (RFC 826): parses requests and replies, answers
 * requests for our address in place, and feeds senders into the per-core
 * neighbour cache (arp_cache.c). Building the request that resolves a next
 * hop also lives here.
 *
 * Learning follows RFC 826's merge rule, narrowed to our subnet: a sender
 * already in the table is refreshed whatever the target (that is how a
 * gratuitous ARP moves an address), and a sender is added only when the
 * packet targets our address. Senders off our subnet are never cached (we
 * never send to them directly), and senders with a group MAC or an address
 * no host can own are refused.
 */
#include <errno.h>

#include "net_bytes.h"
#include "wp/counters.h"

/*
 * Learns sha/spa when the merge rule allows. Returns true when the cache now
 * holds the sender's fresh mapping.
 */
static bool arp_merge(const struct wp_iface *ifc, struct wp_arp_cache *arp, uint64_t now_us,
                      uint32_t spa, const uint8_t *sha, bool for_us, uint64_t *ctr)
{
	if (!ip_on_link(ifc, spa))
		return false;
	if (!for_us && !wp_arp_cache_contains(arp, spa))
		return false;
	return wp_arp_cache_learn(arp, spa, sha, now_us, ctr) == 0;
}

enum wp_net_verdict wp_net_arp_input(const struct wp_iface *ifc, struct wp_arp_cache *arp,
                                     uint64_t now_us, uint8_t *frame, uint16_t len,
                                     struct wp_net_rx *rx, uint64_t *ctr)
{
	if (WP_UNLIKELY(len < WP_ETH_HLEN + ARP_LEN)) {
		wp_ctr_inc(ctr, WP_CTR_ARP_TRUNCATED);
		return WP_NET_DROP;
	}
	uint8_t *a = frame + WP_ETH_HLEN;
	if (ld16be(a + ARP_HTYPE) != 1 || a[ARP_HLEN] != 6) {
		wp_ctr_inc(ctr, WP_CTR_ARP_BAD_HW);
		return WP_NET_DROP;
	}
	if (ld16be(a + ARP_PTYPE) != ETHERTYPE_IPV4 || a[ARP_PLEN] != 4) {
		wp_ctr_inc(ctr, WP_CTR_ARP_BAD_PROTO);
		return WP_NET_DROP;
	}
	uint16_t op = ld16be(a + ARP_OP);
	if (op != ARP_OP_REQUEST && op != ARP_OP_REPLY) {
		wp_ctr_inc(ctr, WP_CTR_ARP_BAD_OPCODE);
		return WP_NET_DROP;
	}

	const uint8_t *sha = a + ARP_SHA;
	uint32_t spa = ld32n(a + ARP_SPA);
	uint32_t tpa = ld32n(a + ARP_TPA);
	bool for_us = tpa == ifc->ip;
	/*
	 * An ARP probe (RFC 5227) has sender address 0.0.0.0: it must be
	 * answered when it asks for our address, but there is nothing to learn.
	 */
	bool probe = spa == 0 && op == ARP_OP_REQUEST;

	if (mac_is_multicast(sha) || mac_is_zero(sha) || (!probe && ip_is_bad_peer(ifc, spa))) {
		wp_ctr_inc(ctr, WP_CTR_ARP_BAD_SENDER);
		return WP_NET_DROP;
	}

	rx->learned = !probe && arp_merge(ifc, arp, now_us, spa, sha, for_us, ctr);
	if (rx->learned)
		rx->learned_ip = spa;

	if (op == ARP_OP_REQUEST && for_us) {
		/* Turn the request around: target <- sender, sender <- us. */
		uint8_t peer_mac[6];
		memcpy(peer_mac, sha, 6);
		st16be(a + ARP_OP, ARP_OP_REPLY);
		memcpy(a + ARP_THA, peer_mac, 6);
		st32n(a + ARP_TPA, spa);
		memcpy(a + ARP_SHA, ifc->mac, 6);
		st32n(a + ARP_SPA, ifc->ip);
		memcpy(frame + ETH_DST, peer_mac, 6);
		memcpy(frame + ETH_SRC, ifc->mac, 6);
		uint16_t out = WP_ETH_HLEN + ARP_LEN;
		if (len >= ETH_MIN_FRAME) {
			/* Keep the minimum frame size, without echoing the padding. */
			memset(frame + out, 0, ETH_MIN_FRAME - out);
			out = ETH_MIN_FRAME;
		}
		rx->reply_len = out;
		wp_ctr_inc(ctr, WP_CTR_ARP_REPLY_SENT);
		return WP_NET_REPLY;
	}
	if (rx->learned)
		return WP_NET_ARP_LEARNED;
	if (!for_us)
		wp_ctr_inc(ctr, WP_CTR_ARP_NOT_OURS);
	else if (!ip_on_link(ifc, spa))
		wp_ctr_inc(ctr, WP_CTR_ARP_OFF_SUBNET);
	/* else: learning failed on a full table, ARP_TABLE_FULL already counted. */
	return WP_NET_DROP;
}

uint16_t wp_arp_build_request(const struct wp_iface *ifc, uint32_t target_ip, uint8_t *buf)
{
	memset(buf, 0xff, 6);
	memcpy(buf + ETH_SRC, ifc->mac, 6);
	st16be(buf + ETH_TYPE, ETHERTYPE_ARP);

	uint8_t *a = buf + WP_ETH_HLEN;
	st16be(a + ARP_HTYPE, 1);
	st16be(a + ARP_PTYPE, ETHERTYPE_IPV4);
	a[ARP_HLEN] = 6;
	a[ARP_PLEN] = 4;
	st16be(a + ARP_OP, ARP_OP_REQUEST);
	memcpy(a + ARP_SHA, ifc->mac, 6);
	st32n(a + ARP_SPA, ifc->ip);
	memset(a + ARP_THA, 0, 6);
	st32n(a + ARP_TPA, target_ip);
	memset(buf + WP_ETH_HLEN + ARP_LEN, 0, ETH_MIN_FRAME - WP_ETH_HLEN - ARP_LEN);
	return ETH_MIN_FRAME;
}
