/*
 * ICMP: answers echo requests (ping) addressed to us, in place, and counts
 * and drops every other message. The reply carries no IP options: RFC 1122
 * 3.2.2.6 only says record-route and timestamp options SHOULD be echoed, and
 * dropping them keeps the reply simple and never longer than the request.
 */
#include "net_bytes.h"
#include "wp/counters.h"

enum wp_net_verdict wp_net_icmp_input(const struct wp_iface *ifc, uint8_t *frame, uint16_t ihl,
                                      uint16_t tot_len, struct wp_net_rx *rx, uint64_t *ctr)
{
	uint8_t *ip = frame + WP_ETH_HLEN;
	uint8_t *icmp = ip + ihl;
	uint16_t icmp_len = tot_len - ihl;

	if (WP_UNLIKELY(icmp_len < ICMP_HLEN)) {
		wp_ctr_inc(ctr, WP_CTR_ICMP_TRUNCATED);
		return WP_NET_DROP;
	}
	if (WP_UNLIKELY(wp_inet_cksum(icmp, icmp_len) != 0)) {
		wp_ctr_inc(ctr, WP_CTR_ICMP_BAD_CHECKSUM);
		return WP_NET_DROP;
	}
	if (icmp[ICMP_TYPE] != ICMP_ECHO || icmp[ICMP_CODE] != 0) {
		wp_ctr_inc(ctr, WP_CTR_ICMP_UNHANDLED_TYPE);
		return WP_NET_DROP;
	}

	/* ICMP: type 0, identifier, sequence and data unchanged. */
	icmp[ICMP_TYPE] = ICMP_ECHO_REPLY;
	st16be(icmp + ICMP_CSUM, 0);
	st_cksum(icmp + ICMP_CSUM, wp_inet_cksum(icmp, icmp_len));
	if (ihl > WP_IPV4_HLEN)
		memmove(ip + WP_IPV4_HLEN, icmp, icmp_len);

	/* IPv4: no options, our address as source, fresh TTL and checksum. */
	uint32_t peer = ld32n(ip + IPH_SRC);
	ip[IPH_VIHL] = 0x45;
	st16be(ip + IPH_TLEN, (uint16_t)(WP_IPV4_HLEN + icmp_len));
	st16be(ip + IPH_FRAG, ld16be(ip + IPH_FRAG) & IPH_DF);
	ip[IPH_TTL] = WP_IPV4_DEFAULT_TTL;
	st32n(ip + IPH_SRC, ifc->ip);
	st32n(ip + IPH_DST, peer);
	st16be(ip + IPH_CSUM, 0);
	st_cksum(ip + IPH_CSUM, wp_inet_cksum(ip, WP_IPV4_HLEN));

	/* Ethernet: back to the sender (its router, when off-link). */
	memcpy(frame + ETH_DST, frame + ETH_SRC, 6);
	memcpy(frame + ETH_SRC, ifc->mac, 6);

	rx->reply_len = (uint16_t)(WP_ETH_HLEN + WP_IPV4_HLEN + icmp_len);
	wp_ctr_inc(ctr, WP_CTR_ICMP_ECHO_REPLIED);
	return WP_NET_REPLY;
}
