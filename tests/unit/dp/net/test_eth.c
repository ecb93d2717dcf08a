/*
 * Unit tests for dp/net/eth.c: wp_net_input's Ethernet checks and dispatch,
 * and every truncation of valid frames of each kind (exact-size heap copies,
 * so ASan catches any over-read).
 */
#include "net_test.h"

static int setup(void **state)
{
	return fx_setup(state, 16, 16);
}

static enum wp_net_verdict input(struct fx *x, uint16_t len)
{
	return run_input(&x->ifc, x->arp, 1000, x->f, len, &x->rx, x->ctr);
}

static void test_truncated_header(void **state)
{
	struct fx *x = *state;
	build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	for (uint16_t len = 0; len < 14; len++) {
		memset(x->ctr, 0, sizeof(x->ctr));
		assert_int_equal(input(x, len), WP_NET_DROP);
		assert_only_ctr(x->ctr, WP_CTR_ETH_TRUNCATED);
	}
}

static void test_not_for_us(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	x->f[5] = 0x03; /* another unicast MAC */
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ETH_NOT_OURS);

	/* A multicast MAC (IPv4 multicast 01:00:5e:...) is not ours either. */
	memset(x->ctr, 0, sizeof(x->ctr));
	const uint8_t mc[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
	memcpy(x->f, mc, 6);
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ETH_NOT_OURS);
}

static void test_broadcast_accepted(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	memcpy(x->f, BCAST_MAC, 6);
	assert_int_equal(input(x, len), WP_NET_TCP);
	assert_int_equal(ctr_total(x->ctr), 0);
}

static void test_group_source(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	memcpy(x->f + 6, BCAST_MAC, 6);
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ETH_BAD_SOURCE);

	memset(x->ctr, 0, sizeof(x->ctr));
	len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
	x->f[6] |= 0x01;
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ETH_BAD_SOURCE);
}

static void test_unknown_ethertype(void **state)
{
	struct fx *x = *state;
	const uint16_t types[] = {0x86dd, 0x8100, 0x88a8, 0x0000, 0x05dc, 0xffff, 0x0801, 0x0805};
	for (size_t i = 0; i < WP_ARRAY_SIZE(types); i++) {
		memset(x->ctr, 0, sizeof(x->ctr));
		uint16_t len = build_tcp(x->f, 20, IP4(198, 18, 0, 1), 0);
		put16(x->f + 12, types[i]);
		assert_int_equal(input(x, len), WP_NET_DROP);
		assert_only_ctr(x->ctr, WP_CTR_ETH_UNKNOWN_TYPE);
	}
}

/*
 * Every prefix of a valid frame is dropped with exactly one drop counter and
 * nothing is learned or replied; the full frame gets its verdict.
 */
static void truncate_all(struct fx *x, const uint8_t *frame, uint16_t n, enum wp_net_verdict full)
{
	for (uint16_t len = 0; len < n; len++) {
		memcpy(x->f, frame, n);
		memset(x->ctr, 0, sizeof(x->ctr));
		wp_arp_cache_destroy(x->arp);
		x->arp = wp_arp_cache_create(16, 16, 60000000, 3000000, free_nothing, NULL);
		assert_int_equal(input(x, len), WP_NET_DROP);
		assert_int_equal(ctr_total(x->ctr), 1);
		assert_false(x->rx.learned);
		assert_int_equal(wp_arp_cache_count(x->arp), 0);
	}
	memcpy(x->f, frame, n);
	memset(x->ctr, 0, sizeof(x->ctr));
	assert_int_equal(input(x, n), full);
}

static void test_truncate_every_length(void **state)
{
	struct fx *x = *state;
	uint8_t frame[1600];
	uint16_t n;

	n = build_arp(frame, BCAST_MAC, 1, PEER_MAC, IP4(198, 18, 0, 1), (const uint8_t[6]){0},
	              x->ifc.ip);
	truncate_all(x, frame, n, WP_NET_REPLY);
	n = build_arp(frame, OUR_MAC, 2, PEER_MAC, IP4(198, 18, 0, 1), OUR_MAC, x->ifc.ip);
	truncate_all(x, frame, n, WP_NET_ARP_LEARNED);
	n = build_echo(frame, 20, IP4(198, 18, 0, 1), 56);
	truncate_all(x, frame, n, WP_NET_REPLY);
	n = build_echo(frame, 32, IP4(10, 1, 2, 3), 1);
	truncate_all(x, frame, n, WP_NET_REPLY);
	n = build_echo(frame, 60, IP4(198, 18, 0, 1), 0);
	truncate_all(x, frame, n, WP_NET_REPLY);
	n = build_tcp(frame, 20, IP4(198, 18, 0, 1), 100);
	truncate_all(x, frame, n, WP_NET_TCP);
	n = build_tcp(frame, 24, IP4(198, 18, 0, 1), 0);
	truncate_all(x, frame, n, WP_NET_TCP);
}

/* Arbitrary bytes never crash and never reply to a frame not addressed to us. */
static void test_random_frames(void **state)
{
	struct fx *x = *state;
	uint32_t r = 99;
	for (int iter = 0; iter < 20000; iter++) {
		uint8_t frame[128];
		uint16_t n = build_echo(frame, 20, IP4(198, 18, 0, 1), 40);
		/* Flip a few bytes of a valid frame. */
		for (int k = 0; k < 3; k++) {
			r = r * 1103515245u + 12345u;
			frame[(r >> 8) % n] ^= (uint8_t)(r >> 24 | 1);
		}
		r = r * 1103515245u + 12345u;
		uint16_t len = (uint16_t)((r >> 8) % (n + 1));
		memcpy(x->f, frame, len);
		memset(x->ctr, 0, sizeof(x->ctr));
		enum wp_net_verdict v = input(x, len);
		if (v == WP_NET_DROP)
			assert_int_equal(ctr_total(x->ctr), 1);
		if (v == WP_NET_REPLY)
			assert_true(x->rx.reply_len <= len);
		if (v == WP_NET_TCP)
			assert_true(x->rx.l4_off + x->rx.l4_len <= len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_truncated_header, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_for_us, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_broadcast_accepted, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_group_source, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_ethertype, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_truncate_every_length, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_random_frames, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
