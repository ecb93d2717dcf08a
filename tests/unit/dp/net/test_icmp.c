/*
 * Unit tests for dp/net/icmp.c: echo request -> exact echo reply bytes (the
 * expected frame is built here, checksums by the reference sum), options
 * stripped, malformed and unhandled messages counted.
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

/* The reply we expect to an echo from build_echo(<peer>, <data_len>). */
static uint16_t expected_reply(uint8_t *w, uint32_t peer, uint16_t data_len, uint16_t frag)
{
	struct wp_iface ifc = test_iface();
	put_eth(w, PEER_MAC, OUR_MAC, 0x0800);
	uint8_t *ip = w + 14;
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (uint16_t)(20 + 8 + data_len));
	put16(ip + 4, 0x1234); /* identification kept */
	put16(ip + 6, frag);
	ip[8] = 64;
	ip[9] = 1;
	put16(ip + 10, 0);
	put_ip(ip + 12, ifc.ip);
	put_ip(ip + 16, peer);
	put16(ip + 10, ref_cksum(ip, 20));
	uint8_t *icmp = ip + 20;
	icmp[0] = 0;
	icmp[1] = 0;
	put16(icmp + 2, 0);
	put16(icmp + 4, 0xbeef);
	put16(icmp + 6, 7);
	for (uint16_t i = 0; i < data_len; i++)
		icmp[8 + i] = (uint8_t)(i * 7 + 3);
	put16(icmp + 2, ref_cksum(icmp, 8u + data_len));
	return (uint16_t)(14 + 20 + 8 + data_len);
}

static void check_echo(struct fx *x, unsigned ihl, uint32_t peer, uint16_t data_len)
{
	uint16_t len = build_echo(x->f, ihl, peer, data_len);
	assert_int_equal(input(x, len), WP_NET_REPLY);
	assert_only_ctr(x->ctr, WP_CTR_ICMP_ECHO_REPLIED);
	uint8_t want[1600];
	uint16_t wlen = expected_reply(want, peer, data_len, 0x4000);
	assert_int_equal(x->rx.reply_len, wlen);
	assert_memory_equal(x->f, want, wlen);
	/* And the reply verifies on its own. */
	assert_int_equal(ref_cksum(x->f + 14, 20), 0);
	assert_int_equal(ref_cksum(x->f + 34, 8u + data_len), 0);
}

static void test_echo_exact_reply(void **state)
{
	struct fx *x = *state;
	check_echo(x, 20, IP4(198, 18, 0, 1), 56);
	check_echo(x, 20, IP4(198, 18, 0, 1), 0);
	check_echo(x, 20, IP4(198, 18, 0, 1), 1); /* odd length */
	check_echo(x, 20, IP4(10, 20, 30, 40), 1400);
}

static void test_echo_options_stripped(void **state)
{
	struct fx *x = *state;
	check_echo(x, 24, IP4(198, 18, 0, 1), 56);
	check_echo(x, 60, IP4(198, 18, 0, 1), 3);
}

static void test_echo_padded_frame(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_echo(x->f, 20, IP4(198, 18, 0, 1), 4);
	memset(x->f + len, 0x77, 60 - len);
	assert_int_equal(input(x, 60), WP_NET_REPLY);
	uint8_t want[64];
	uint16_t wlen = expected_reply(want, IP4(198, 18, 0, 1), 4, 0x4000);
	assert_int_equal(x->rx.reply_len, wlen);
	assert_memory_equal(x->f, want, wlen);
}

static void test_echo_flags_cleared(void **state)
{
	struct fx *x = *state;
	/* The reserved ("evil") bit is not echoed; neither is a missing DF invented. */
	uint16_t len = build_echo(x->f, 20, IP4(198, 18, 0, 1), 8);
	put16(x->f + 14 + 6, 0x8000);
	fix_ip_cksum(x->f + 14);
	assert_int_equal(input(x, len), WP_NET_REPLY);
	uint8_t want[64];
	expected_reply(want, IP4(198, 18, 0, 1), 8, 0x0000);
	assert_memory_equal(x->f, want, x->rx.reply_len);
}

static void test_bad_icmp_checksum(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_echo(x->f, 20, IP4(198, 18, 0, 1), 56);
	x->f[len - 1] ^= 0x01;
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ICMP_BAD_CHECKSUM);
	len = build_echo(x->f, 20, IP4(198, 18, 0, 1), 56);
	x->f[34 + 2] ^= 0x10;
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ICMP_BAD_CHECKSUM);
}

static void test_icmp_truncated(void **state)
{
	struct fx *x = *state;
	/* IPv4 total length leaves fewer than 8 ICMP bytes. */
	for (uint16_t icmp_len = 0; icmp_len < 8; icmp_len++) {
		uint16_t len = build_echo(x->f, 20, IP4(198, 18, 0, 1), 0);
		put16(x->f + 14 + 2, (uint16_t)(20 + icmp_len));
		fix_ip_cksum(x->f + 14);
		assert_int_equal(input(x, len), WP_NET_DROP);
		assert_only_ctr(x->ctr, WP_CTR_ICMP_TRUNCATED);
	}
}

static void test_unhandled_types(void **state)
{
	struct fx *x = *state;
	const uint8_t tc[][2] = {{0, 0}, {3, 3}, {5, 1}, {8, 1}, {11, 0}, {13, 0}, {255, 255}};
	for (size_t i = 0; i < WP_ARRAY_SIZE(tc); i++) {
		uint16_t len = build_echo(x->f, 20, IP4(198, 18, 0, 1), 16);
		uint8_t *icmp = x->f + 34;
		icmp[0] = tc[i][0];
		icmp[1] = tc[i][1];
		put16(icmp + 2, 0);
		put16(icmp + 2, ref_cksum(icmp, 24));
		uint8_t before[64];
		memcpy(before, x->f, len);
		assert_int_equal(input(x, len), WP_NET_DROP);
		assert_only_ctr(x->ctr, WP_CTR_ICMP_UNHANDLED_TYPE);
		assert_memory_equal(x->f, before, len);
	}
}

static void test_echo_to_other_host_ignored(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_echo(x->f, 20, IP4(198, 18, 0, 1), 16);
	put_ip(x->f + 14 + 16, IP4(198, 18, 0, 255)); /* subnet broadcast ping */
	fix_ip_cksum(x->f + 14);
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_IPV4_NOT_OURS);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_echo_exact_reply),  T(test_echo_options_stripped),
	        T(test_echo_padded_frame), T(test_echo_flags_cleared),
	        T(test_bad_icmp_checksum), T(test_icmp_truncated),
	        T(test_unhandled_types),   T(test_echo_to_other_host_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
