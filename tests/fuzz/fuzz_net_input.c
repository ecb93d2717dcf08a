/*
 * libFuzzer driver for wp_net_input() (dp/net): Ethernet, ARP, IPv4 and ICMP
 * parsing on arbitrary frames. The input is copied into a heap buffer of its
 * exact size so ASan reports any read past the frame. Besides memory safety
 * it checks the verdict contract: replies and TCP offsets stay inside the
 * frame, a drop moves exactly one counter, and what is learned can be looked
 * up. The neighbour cache persists across inputs (small, so it fills and
 * reclaims); packets queued for learned neighbours are released. A frame of
 * more than 54 bytes then goes in again as a chained one: only its first
 * bytes (how many taken from its last byte) in the buffer, the length the
 * whole; nothing may be read past those bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "net.h"
#include "wp/counters.h"

static void free_pkt(void *pkt, void *arg)
{
	(void)arg;
	free(pkt);
}

static struct wp_arp_cache *arp;
static uint64_t now_us;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wp_iface ifc = {
	        .mac = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02},
	        .mtu = 1500,
	};
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_net_rx rx;

	if (!arp) {
		ifc.ip = htonl(0xc6120002);      /* 198.18.0.2 */
		ifc.netmask = htonl(0xffffff00); /* /24 */
		ifc.gateway = htonl(0xc6120001);
		arp = wp_arp_cache_create(8, 8, 1000000, 100000, free_pkt, NULL);
		if (!arp)
			abort();
	}
	if (size > UINT16_MAX)
		return 0;
	now_us += 50000;

	if (size > 54) {
		size_t head = 54 + data[size - 1] % (size - 54);
		uint64_t c2[WP_CTR_MAX] = {0};
		uint64_t n2 = 0;
		uint8_t *f2 = malloc(head);

		if (!f2)
			abort();
		memcpy(f2, data, head);
		enum wp_net_verdict v2 = wp_net_input(&ifc, arp, now_us, f2, (uint16_t)head,
		                                      (uint32_t)size, &rx, c2);
		for (int i = 0; i < WP_CTR_MAX; i++)
			n2 += c2[i];
		if ((v2 == WP_NET_DROP && n2 != 1) || (v2 == WP_NET_REPLY && rx.reply_len > head) ||
		    (v2 == WP_NET_TCP &&
		     (rx.l4_off > head || (size_t)rx.l4_off + rx.l4_len > size)))
			abort();
		if (rx.learned && v2 != WP_NET_DROP) {
			void *pk[8];
			unsigned n = wp_arp_cache_take_pending(arp, rx.learned_ip, pk, 8);
			for (unsigned i = 0; i < n; i++)
				free(pk[i]);
		}
		free(f2);
	}

	uint8_t *frame = malloc(size);
	if (size && !frame)
		abort();
	memcpy(frame, data, size);
	enum wp_net_verdict v =
	        wp_net_input(&ifc, arp, now_us, frame, (uint16_t)size, (uint32_t)size, &rx, ctr);

	uint64_t total = 0;
	for (int i = 0; i < WP_CTR_MAX; i++)
		total += ctr[i];
	uint8_t mac[6];
	switch (v) {
	case WP_NET_DROP:
		if (total != 1)
			abort();
		break;
	case WP_NET_REPLY:
		if (rx.reply_len > size || rx.reply_len < WP_ETH_HLEN)
			abort();
		break;
	case WP_NET_TCP:
		if (rx.l4_off < WP_NET_HDR_ROOM || (size_t)rx.l4_off + rx.l4_len > size ||
		    rx.dst_ip != ifc.ip)
			abort();
		break;
	case WP_NET_ARP_LEARNED:
		if (!rx.learned || !wp_arp_cache_lookup(arp, rx.learned_ip, now_us, mac))
			abort();
		break;
	}
	if (rx.learned && v != WP_NET_DROP) {
		void *pk[8];
		unsigned n = wp_arp_cache_take_pending(arp, rx.learned_ip, pk, 8);
		for (unsigned i = 0; i < n; i++)
			free(pk[i]);
	} else if (size >= 4) {
		/* Leave something waiting for an address the input names. */
		uint32_t ip;
		memcpy(&ip, data + size - 4, 4);
		void *p = malloc(1);
		if (wp_arp_cache_queue(arp, ip, p, now_us, ctr) < 0)
			free(p);
	}
	wp_arp_cache_expire(arp, now_us, ctr);
	free(frame);
	return 0;
}
