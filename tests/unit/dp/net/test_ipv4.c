/*
 * Unit tests for dp/net/ipv4.c: receive validation (each drop asserts its
 * counter), TCP hand-off offsets (frames in one buffer or chained), next hop
 * and the prepended header.
 */
#include "net_test.h"

static int setup(void **state)
{
	return fx_setup(state, 4, 4);
}

static enum wp_net_verdict input(struct fx *x, uint16_t len)
{
	memset(x->ctr, 0, sizeof(x->ctr));
	return run_input(&x->ifc, x->arp, 0, x->f, len, &x->rx, x->ctr);
}

static uint8_t *iph(struct fx *x)
{
	return x->f + 14;
}

static void expect_drop(struct fx *x, uint16_t len, enum wp_ctr c)
{
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, c);
}

static void test_tcp_offsets(void **state)
{
	struct fx *x = *state;
	uint32_t peer = IP4(198, 18, 0, 1);
	uint16_t len = build_tcp(x->f, 20, peer, 10);
	uint8_t before[1600];
	memcpy(before, x->f, len);
	assert_int_equal(input(x, len), WP_NET_TCP);
	assert_int_equal(ctr_total(x->ctr), 0);
	assert_int_equal(x->rx.l3_off, 14);
	assert_int_equal(x->rx.l4_off, 34);
	assert_int_equal(x->rx.l4_len, 30);
	assert_int_equal(x->rx.src_ip, peer);
	assert_int_equal(x->rx.dst_ip, x->ifc.ip);
	assert_memory_equal(x->f, before, len); /* not modified */
}

static void test_tcp_with_options(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_tcp(x->f, 40, IP4(10, 9, 8, 7), 0); /* off-link source is fine */
	assert_int_equal(input(x, len), WP_NET_TCP);
	assert_int_equal(x->rx.l4_off, 54);
	assert_int_equal(x->rx.l4_len, 20);
	assert_int_equal(x->rx.src_ip, IP4(10, 9, 8, 7));
}

static void test_padding_trusts_total_length(void **state)
{
	struct fx *x = *state;
	/* A 0-byte TCP segment is 54 bytes; Ethernet pads it to 60. */
	uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	memset(x->f + len, 0x5a, 60 - len);
	assert_int_equal(input(x, 60), WP_NET_TCP);
	assert_int_equal(x->rx.l4_len, 20);
	/* Lots of trailing garbage too. */
	memset(x->f + len, 0x5a, 500);
	assert_int_equal(input(x, len + 500), WP_NET_TCP);
	assert_int_equal(x->rx.l4_len, 20);
}

static void test_total_length_beyond_frame(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 10);
	put16(iph(x) + 2, (uint16_t)(len - 14 + 1));
	fix_ip_cksum(iph(x));
	expect_drop(x, len, WP_CTR_IPV4_TRUNCATED);
	put16(iph(x) + 2, 0xffff);
	fix_ip_cksum(iph(x));
	expect_drop(x, len, WP_CTR_IPV4_TRUNCATED);
	/* Exactly the frame is fine. */
	put16(iph(x) + 2, (uint16_t)(len - 14));
	fix_ip_cksum(iph(x));
	assert_int_equal(input(x, len), WP_NET_TCP);
}

static void test_total_length_below_header(void **state)
{
	struct fx *x = *state;
	const uint16_t bad[] = {0, 1, 19};
	for (size_t i = 0; i < WP_ARRAY_SIZE(bad); i++) {
		uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
		put16(iph(x) + 2, bad[i]);
		fix_ip_cksum(iph(x));
		expect_drop(x, len, WP_CTR_IPV4_BAD_LENGTH);
	}
	/* With options: total length must cover the options. */
	uint16_t len = build_tcp(x->f, 28, IP4(198, 18, 0, 1), 0);
	put16(iph(x) + 2, 24);
	fix_ip_cksum(iph(x));
	expect_drop(x, len, WP_CTR_IPV4_BAD_LENGTH);
}

static void test_short_packet(void **state)
{
	struct fx *x = *state;
	build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	for (uint16_t len = 14; len < 34; len++)
		expect_drop(x, len, WP_CTR_IPV4_TRUNCATED);
}

static void test_bad_version(void **state)
{
	struct fx *x = *state;
	const uint8_t versions[] = {0, 1, 5, 6, 15};
	for (size_t i = 0; i < WP_ARRAY_SIZE(versions); i++) {
		uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
		iph(x)[0] = (uint8_t)(versions[i] << 4 | 5);
		fix_ip_cksum(iph(x));
		expect_drop(x, len, WP_CTR_IPV4_BAD_VERSION);
	}
}

static void test_bad_ihl(void **state)
{
	struct fx *x = *state;
	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
		iph(x)[0] = (uint8_t)(0x40 | ihl);
		expect_drop(x, len, WP_CTR_IPV4_BAD_IHL);
	}
	/* IHL pointing past the frame: 15 words = 60 bytes in a 20 + 4 byte packet. */
	uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	iph(x)[0] = 0x4f;
	expect_drop(x, 14 + 24, WP_CTR_IPV4_BAD_IHL);
	/* Header of 24 bytes in a frame holding only 20 after Ethernet. */
	iph(x)[0] = 0x46;
	expect_drop(x, 14 + 20, WP_CTR_IPV4_BAD_IHL);
	(void)len;
}

static void test_bad_checksum(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	iph(x)[11] ^= 0x01;
	expect_drop(x, len, WP_CTR_IPV4_BAD_CHECKSUM);
	/* An option byte is covered too. */
	len = build_tcp(x->f, 24, IP4(198, 18, 0, 1), 0);
	iph(x)[22] ^= 0x80;
	expect_drop(x, len, WP_CTR_IPV4_BAD_CHECKSUM);
	/* The payload is not. */
	len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 4);
	x->f[len - 1] ^= 0xff;
	assert_int_equal(input(x, len), WP_NET_TCP);
}

static void test_ttl_zero(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	iph(x)[8] = 0;
	fix_ip_cksum(iph(x));
	expect_drop(x, len, WP_CTR_IPV4_TTL_EXPIRED);
	iph(x)[8] = 1; /* TTL 1 is fine for the final destination */
	fix_ip_cksum(iph(x));
	assert_int_equal(input(x, len), WP_NET_TCP);
}

static void test_fragments(void **state)
{
	struct fx *x = *state;
	const uint16_t frags[] = {0x2000, 0x0001, 0x1fff, 0x2001, 0x6000, 0x4001};
	for (size_t i = 0; i < WP_ARRAY_SIZE(frags); i++) {
		uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
		put16(iph(x) + 6, frags[i]);
		fix_ip_cksum(iph(x));
		expect_drop(x, len, WP_CTR_IPV4_FRAGMENT);
	}
	/* DF alone, or nothing, is a whole datagram. */
	const uint16_t whole[] = {0x0000, 0x4000};
	for (size_t i = 0; i < WP_ARRAY_SIZE(whole); i++) {
		uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
		put16(iph(x) + 6, whole[i]);
		fix_ip_cksum(iph(x));
		assert_int_equal(input(x, len), WP_NET_TCP);
	}
}

static void test_not_for_us(void **state)
{
	struct fx *x = *state;
	const uint32_t dsts[] = {IP4(198, 18, 0, 3), IP4(255, 255, 255, 255), IP4(198, 18, 0, 255),
	                         IP4(224, 0, 0, 1),  IP4(0, 0, 0, 0),         IP4(10, 0, 0, 2)};
	for (size_t i = 0; i < WP_ARRAY_SIZE(dsts); i++) {
		uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
		put_ip(iph(x) + 16, dsts[i]);
		fix_ip_cksum(iph(x));
		expect_drop(x, len, WP_CTR_IPV4_NOT_OURS);
	}
}

static void test_bad_source(void **state)
{
	struct fx *x = *state;
	const uint32_t srcs[] = {IP4(0, 0, 0, 0),   IP4(255, 255, 255, 255), IP4(224, 0, 0, 5),
	                         IP4(239, 1, 2, 3), IP4(240, 0, 0, 1),       x->ifc.ip,
	                         IP4(127, 0, 0, 1), IP4(198, 18, 0, 255),    IP4(0, 1, 2, 3)};
	for (size_t i = 0; i < WP_ARRAY_SIZE(srcs); i++) {
		uint16_t len = build_tcp(x->f, 20, srcs[i], 0);
		expect_drop(x, len, WP_CTR_IPV4_BAD_SOURCE);
	}
	/* On a /31 there is no subnet broadcast: .255 of a /24 elsewhere is a host. */
	x->ifc.netmask = IP4(255, 255, 255, 254);
	x->ifc.ip = IP4(198, 18, 0, 254);
	uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 255), 0);
	put_ip(iph(x) + 16, x->ifc.ip);
	fix_ip_cksum(iph(x));
	assert_int_equal(input(x, len), WP_NET_TCP);
}

static void test_unknown_proto(void **state)
{
	struct fx *x = *state;
	const uint8_t protos[] = {17, 0, 2, 41, 50, 132, 255};
	for (size_t i = 0; i < WP_ARRAY_SIZE(protos); i++) {
		uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
		iph(x)[9] = protos[i];
		fix_ip_cksum(iph(x));
		expect_drop(x, len, WP_CTR_IPV4_UNKNOWN_PROTO);
	}
}

static void test_next_hop(void **state)
{
	struct fx *x = *state;
	uint32_t nh = 0;
	memset(x->ctr, 0, sizeof(x->ctr));
	assert_int_equal(wp_net_next_hop(&x->ifc, IP4(198, 18, 0, 77), &nh, x->ctr), 0);
	assert_int_equal(nh, IP4(198, 18, 0, 77));
	assert_int_equal(wp_net_next_hop(&x->ifc, IP4(198, 18, 1, 5), &nh, x->ctr), 0);
	assert_int_equal(nh, x->ifc.gateway);
	assert_int_equal(wp_net_next_hop(&x->ifc, IP4(8, 8, 8, 8), &nh, x->ctr), 0);
	assert_int_equal(nh, x->ifc.gateway);
	assert_int_equal(ctr_total(x->ctr), 0);

	x->ifc.gateway = 0;
	nh = 12345;
	assert_int_equal(wp_net_next_hop(&x->ifc, IP4(198, 18, 1, 5), &nh, x->ctr), -ENETUNREACH);
	assert_only_ctr(x->ctr, WP_CTR_NET_NO_ROUTE);
	assert_int_equal(nh, 12345);
	/* On-link still works without a gateway. */
	assert_int_equal(wp_net_next_hop(&x->ifc, IP4(198, 18, 0, 1), &nh, x->ctr), 0);
	assert_int_equal(nh, IP4(198, 18, 0, 1));
}

static void test_prepend(void **state)
{
	struct fx *x = *state;
	uint8_t buf[WP_NET_HDR_ROOM + 100];
	memset(buf, 0xcc, sizeof(buf));
	for (int i = 0; i < 100; i++)
		buf[WP_NET_HDR_ROOM + i] = (uint8_t)i;
	uint32_t dst = IP4(198, 18, 1, 9);
	uint16_t n = wp_net_prepend_ipv4(&x->ifc, buf, PEER_MAC, dst, WP_IPPROTO_TCP, 100, 0x0102);
	assert_int_equal(n, 14 + 20 + 100);
	assert_memory_equal(buf, PEER_MAC, 6);
	assert_memory_equal(buf + 6, OUR_MAC, 6);
	assert_int_equal(get16(buf + 12), 0x0800);
	const uint8_t *ip = buf + 14;
	assert_int_equal(ip[0], 0x45);
	assert_int_equal(ip[1], 0);
	assert_int_equal(get16(ip + 2), 120);
	assert_int_equal(get16(ip + 4), 0x0102);
	assert_int_equal(get16(ip + 6), 0x4000); /* DF */
	assert_int_equal(ip[8], 64);
	assert_int_equal(ip[9], 6);
	assert_int_equal(get_ip(ip + 12), x->ifc.ip);
	assert_int_equal(get_ip(ip + 16), dst);
	assert_int_equal(ref_cksum(ip, 20), 0);
	uint8_t copy[20];
	memcpy(copy, ip, 20);
	put16(copy + 10, 0);
	assert_int_equal(get16(ip + 10), ref_cksum(copy, 20));
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf[WP_NET_HDR_ROOM + i], i); /* payload untouched */

	/* Looped back to a peer interface that owns dst, it parses as TCP for it. */
	struct wp_iface peer = x->ifc;
	peer.ip = dst;
	peer.netmask = IP4(255, 255, 0, 0);
	memcpy(peer.mac, PEER_MAC, 6);
	memset(x->ctr, 0, sizeof(x->ctr));
	assert_int_equal(run_input(&peer, x->arp, 0, buf, n, &x->rx, x->ctr), WP_NET_TCP);
	assert_int_equal(x->rx.l4_off, WP_NET_HDR_ROOM);
	assert_int_equal(x->rx.l4_len, 100);
	assert_int_equal(x->rx.src_ip, x->ifc.ip);

	/* Empty payload. */
	n = wp_net_prepend_ipv4(&x->ifc, buf, PEER_MAC, dst, WP_IPPROTO_ICMP, 0, 0xffff);
	assert_int_equal(n, 34);
	assert_int_equal(get16(buf + 14 + 2), 20);
	assert_int_equal(ref_cksum(buf + 14, 20), 0);
}

/* wp_net_input on a frame of <len> bytes of which only the first <head> are
 * in the (exact-size heap) buffer, as the first mbuf of a chain. */
static enum wp_net_verdict input_chained(struct fx *x, uint16_t head, uint32_t len)
{
	uint8_t *copy = malloc(head);

	assert_non_null(copy);
	memcpy(copy, x->f, head);
	memset(x->ctr, 0, sizeof(x->ctr));
	enum wp_net_verdict v = wp_net_input(&x->ifc, x->arp, 0, copy, head, len, &x->rx, x->ctr);
	free(copy);
	return v;
}

/*
 * A frame longer than its first buffer (an LRO segment in an mbuf chain):
 * TCP is handed back with the IPv4 total length, whatever the first buffer
 * holds, as long as the IPv4 header is in it; anything else, or a total
 * length beyond the frame, is dropped.
 */
static void test_chained_frames(void **state)
{
	struct fx *x = *state;

	build_tcp(x->f, 20, IP4(198, 18, 0, 1), 100);
	put16(iph(x) + 2, 20 + 20 + 60000); /* the whole segment: 60,000 bytes of payload */
	fix_ip_cksum(iph(x));
	assert_int_equal(input_chained(x, 64, 14 + 40 + 60000), WP_NET_TCP);
	assert_int_equal(ctr_total(x->ctr), 0);
	assert_int_equal(x->rx.l4_off, 34);
	assert_int_equal(x->rx.l4_len, 60020);
	assert_int_equal(input_chained(x, 64, 14 + 40 + 59999), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_IPV4_TRUNCATED);
	assert_int_equal(input_chained(x, 30, 14 + 40 + 60000), WP_NET_DROP); /* IP header cut */
	assert_only_ctr(x->ctr, WP_CTR_IPV4_TRUNCATED);

	uint16_t len = build_echo(x->f, 20, IP4(198, 18, 0, 1), 100);
	assert_int_equal(input_chained(x, 60, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ETH_NONLINEAR);
	len = build_arp(x->f, OUR_MAC, 1, PEER_MAC, IP4(198, 18, 0, 1), OUR_MAC, x->ifc.ip);
	assert_int_equal(input_chained(x, 30, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ETH_NONLINEAR);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_tcp_offsets),
	        T(test_tcp_with_options),
	        T(test_padding_trusts_total_length),
	        T(test_total_length_beyond_frame),
	        T(test_total_length_below_header),
	        T(test_short_packet),
	        T(test_bad_version),
	        T(test_bad_ihl),
	        T(test_bad_checksum),
	        T(test_ttl_zero),
	        T(test_fragments),
	        T(test_not_for_us),
	        T(test_bad_source),
	        T(test_unknown_proto),
	        T(test_chained_frames),
	        T(test_next_hop),
	        T(test_prepend),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
