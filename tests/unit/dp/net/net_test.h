/*
 * Shared helpers for the dp/net unit tests: an interface, frame builders and
 * an independent reference checksum (big-endian words summed as integers,
 * written without looking at cksum.c), plus counter assertions. Frames that
 * go into wp_net_input() are copied into heap buffers of exactly their
 * length, so ASan flags any read past the end.
 */
#ifndef WP_TEST_NET_H
#define WP_TEST_NET_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "net.h"
#include "wp/counters.h"

#define IP4(a, b, c, d) htonl((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static const uint8_t OUR_MAC[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};
static const uint8_t PEER_MAC[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
static const uint8_t BCAST_MAC[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

WP_UNUSED static struct wp_iface test_iface(void)
{
	struct wp_iface ifc = {
	        .mtu = 1500,
	        .ip = IP4(198, 18, 0, 2),
	        .netmask = IP4(255, 255, 255, 0),
	        .gateway = IP4(198, 18, 0, 1),
	        .port_id = 0,
	};
	memcpy(ifc.mac, OUR_MAC, 6);
	return ifc;
}

/* RFC 1071 the slow way: big-endian 16-bit integers, carries folded at the end. */
WP_UNUSED static uint16_t ref_cksum(const uint8_t *p, size_t len)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < len; i += 2) {
		uint32_t w = (uint32_t)p[i] << 8;
		if (i + 1 < len)
			w |= p[i + 1];
		sum += w;
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

WP_UNUSED static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

WP_UNUSED static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

WP_UNUSED static void put_ip(uint8_t *p, uint32_t ip_n)
{
	memcpy(p, &ip_n, 4);
}

WP_UNUSED static uint32_t get_ip(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

WP_UNUSED static void put_eth(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
}

/*
 * Writes an IPv4 header of ihl_bytes (options filled with NOP, 0x01) at p,
 * with total length ihl_bytes + payload_len and a correct checksum.
 */
WP_UNUSED static void put_ipv4(uint8_t *p, unsigned ihl_bytes, uint32_t src, uint32_t dst,
                               uint8_t proto, uint16_t payload_len, uint8_t ttl, uint16_t frag)
{
	p[0] = (uint8_t)(0x40 | (ihl_bytes / 4));
	p[1] = 0;
	put16(p + 2, (uint16_t)(ihl_bytes + payload_len));
	put16(p + 4, 0x1234);
	put16(p + 6, frag);
	p[8] = ttl;
	p[9] = proto;
	put16(p + 10, 0);
	put_ip(p + 12, src);
	put_ip(p + 16, dst);
	memset(p + 20, 0x01, ihl_bytes - 20);
	put16(p + 10, ref_cksum(p, ihl_bytes));
}

/* Recomputes the IPv4 header checksum after a test edited the header. */
WP_UNUSED static void fix_ip_cksum(uint8_t *ip)
{
	unsigned ihl = (ip[0] & 0x0f) * 4u;
	put16(ip + 10, 0);
	put16(ip + 10, ref_cksum(ip, ihl));
}

/*
 * Builds Ethernet + IPv4 (ihl bytes) + ICMP echo request with <data_len>
 * bytes of data from a peer to us. Returns the frame length.
 */
WP_UNUSED static uint16_t build_echo(uint8_t *f, unsigned ihl, uint32_t src, uint16_t data_len)
{
	struct wp_iface ifc = test_iface();
	put_eth(f, OUR_MAC, PEER_MAC, 0x0800);
	uint8_t *icmp = f + 14 + ihl;
	icmp[0] = 8;
	icmp[1] = 0;
	put16(icmp + 2, 0);
	put16(icmp + 4, 0xbeef); /* identifier */
	put16(icmp + 6, 7);      /* sequence */
	for (uint16_t i = 0; i < data_len; i++)
		icmp[8 + i] = (uint8_t)(i * 7 + 3);
	put16(icmp + 2, ref_cksum(icmp, 8u + data_len));
	put_ipv4(f + 14, ihl, src, ifc.ip, 1, (uint16_t)(8 + data_len), 63, 0x4000);
	return (uint16_t)(14 + ihl + 8 + data_len);
}

/* Builds Ethernet + IPv4 + a 20-byte TCP SYN (checksum left 0) from a peer. */
WP_UNUSED static uint16_t build_tcp(uint8_t *f, unsigned ihl, uint32_t src, uint16_t data_len)
{
	struct wp_iface ifc = test_iface();
	put_eth(f, OUR_MAC, PEER_MAC, 0x0800);
	uint8_t *t = f + 14 + ihl;
	memset(t, 0, 20u + data_len);
	put16(t, 40000);
	put16(t + 2, 15008);
	t[12] = 5 << 4;
	t[13] = 0x02;
	put_ipv4(f + 14, ihl, src, ifc.ip, 6, (uint16_t)(20 + data_len), 64, 0x4000);
	return (uint16_t)(14 + ihl + 20 + data_len);
}

/* Builds an Ethernet + ARP frame (42 bytes, no padding). */
WP_UNUSED static uint16_t build_arp(uint8_t *f, const uint8_t *eth_dst, uint16_t op,
                                    const uint8_t *sha, uint32_t spa, const uint8_t *tha,
                                    uint32_t tpa)
{
	put_eth(f, eth_dst, sha, 0x0806);
	uint8_t *a = f + 14;
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, sha, 6);
	put_ip(a + 14, spa);
	memcpy(a + 18, tha, 6);
	put_ip(a + 24, tpa);
	return 42;
}

/* ---- counters ------------------------------------------------------------ */

WP_UNUSED static uint64_t ctr_total(const uint64_t *ctr)
{
	uint64_t t = 0;
	for (int i = 0; i < WP_CTR_MAX; i++)
		t += ctr[i];
	return t;
}

/* Exactly one counter moved, by one: <c>. */
#define assert_only_ctr(ctr, c)                                                                    \
	do {                                                                                       \
		assert_int_equal((ctr)[c], 1);                                                     \
		assert_int_equal(ctr_total(ctr), 1);                                               \
	} while (0)

/* Runs wp_net_input on an exact-size heap copy and copies the result back. */
WP_UNUSED static enum wp_net_verdict run_input(const struct wp_iface *ifc, struct wp_arp_cache *arp,
                                               uint64_t now, uint8_t *frame, uint16_t len,
                                               struct wp_net_rx *rx, uint64_t *ctr)
{
	uint8_t *copy = malloc(len); /* exact size, even 0, so ASan sees any overrun */
	if (len)
		assert_non_null(copy);
	memcpy(copy, frame, len);
	memset(rx, 0xa5, sizeof(*rx));
	enum wp_net_verdict v = wp_net_input(ifc, arp, now, copy, len, len, rx, ctr);
	memcpy(frame, copy, len);
	free(copy);
	return v;
}

WP_UNUSED static void free_nothing(void *pkt, void *arg)
{
	(void)pkt;
	(void)arg;
}

/* The fixture every dp/net test file uses: an interface, a small neighbour
 * cache, the counters, and a frame buffer. */
struct fx {
	struct wp_iface ifc;
	struct wp_arp_cache *arp;
	uint64_t ctr[WP_CTR_MAX];
	struct wp_net_rx rx;
	uint8_t f[1600];
};

WP_UNUSED static int fx_setup(void **state, uint32_t entries, uint32_t pending)
{
	struct fx *x = calloc(1, sizeof(*x));

	x->ifc = test_iface();
	x->arp = wp_arp_cache_create(entries, pending, 60000000, 3000000, free_nothing, NULL);
	*state = x;
	return x->arp ? 0 : -1;
}

WP_UNUSED static int teardown(void **state)
{
	struct fx *x = *state;

	wp_arp_cache_destroy(x->arp);
	free(x);
	return 0;
}

#endif /* WP_TEST_NET_H */
