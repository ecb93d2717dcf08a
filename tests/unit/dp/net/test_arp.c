/*
 * Unit tests for dp/net/arp.c: replies to requests for us (exact bytes),
 * RFC 826 merge learning, gratuitous ARP, malformed packets and the request
 * builder.
 */
#include "net_test.h"

static const uint8_t ZERO_MAC[6] = {0};
static const uint8_t OTHER_MAC[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x09};

static int setup(void **state)
{
	return fx_setup(state, 4, 8);
}

static enum wp_net_verdict input(struct fx *x, uint16_t len)
{
	memset(x->ctr, 0, sizeof(x->ctr));
	return run_input(&x->ifc, x->arp, 1000, x->f, len, &x->rx, x->ctr);
}

static void assert_cached(struct fx *x, uint32_t ip, const uint8_t *mac)
{
	uint8_t m[6];
	assert_true(wp_arp_cache_lookup(x->arp, ip, 2000, m));
	assert_memory_equal(m, mac, 6);
}

static void test_request_for_us_exact_reply(void **state)
{
	struct fx *x = *state;
	uint32_t peer = IP4(198, 18, 0, 1);
	uint16_t len = build_arp(x->f, BCAST_MAC, 1, PEER_MAC, peer, ZERO_MAC, x->ifc.ip);

	assert_int_equal(input(x, len), WP_NET_REPLY);
	assert_int_equal(x->rx.reply_len, 42);
	assert_true(x->rx.learned);
	assert_int_equal(x->rx.learned_ip, peer);
	assert_int_equal(x->ctr[WP_CTR_ARP_REPLY_SENT], 1);
	assert_int_equal(x->ctr[WP_CTR_ARP_LEARNED], 1);
	assert_int_equal(ctr_total(x->ctr), 2);

	uint8_t want[42];
	build_arp(want, PEER_MAC, 2, OUR_MAC, x->ifc.ip, PEER_MAC, peer);
	memcpy(want, PEER_MAC, 6); /* eth dst: the requester */
	memcpy(want + 6, OUR_MAC, 6);
	assert_memory_equal(x->f, want, 42);
	assert_cached(x, peer, PEER_MAC);
}

static void test_padded_request_reply_is_60_zero_padded(void **state)
{
	struct fx *x = *state;
	uint16_t len =
	        build_arp(x->f, BCAST_MAC, 1, PEER_MAC, IP4(198, 18, 0, 1), ZERO_MAC, x->ifc.ip);
	memset(x->f + len, 0xee, 60 - len); /* the sender's padding */
	assert_int_equal(input(x, 60), WP_NET_REPLY);
	assert_int_equal(x->rx.reply_len, 60);
	for (int i = 42; i < 60; i++)
		assert_int_equal(x->f[i], 0);
}

static void test_probe_answered_not_learned(void **state)
{
	struct fx *x = *state;
	/* RFC 5227 probe: sender 0.0.0.0. */
	uint16_t len = build_arp(x->f, BCAST_MAC, 1, PEER_MAC, 0, ZERO_MAC, x->ifc.ip);
	assert_int_equal(input(x, len), WP_NET_REPLY);
	assert_false(x->rx.learned);
	assert_only_ctr(x->ctr, WP_CTR_ARP_REPLY_SENT);
	assert_int_equal(wp_arp_cache_count(x->arp), 0);
	assert_memory_equal(x->f, PEER_MAC, 6);
	assert_int_equal(get_ip(x->f + 14 + 24), 0);
}

static void test_reply_learns(void **state)
{
	struct fx *x = *state;
	uint32_t peer = IP4(198, 18, 0, 7);
	uint16_t len = build_arp(x->f, OUR_MAC, 2, PEER_MAC, peer, OUR_MAC, x->ifc.ip);
	assert_int_equal(input(x, len), WP_NET_ARP_LEARNED);
	assert_true(x->rx.learned);
	assert_int_equal(x->rx.learned_ip, peer);
	assert_only_ctr(x->ctr, WP_CTR_ARP_LEARNED);
	assert_cached(x, peer, PEER_MAC);
}

static void test_reply_off_subnet_not_learned(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_arp(x->f, OUR_MAC, 2, PEER_MAC, IP4(10, 0, 0, 1), OUR_MAC, x->ifc.ip);
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_false(x->rx.learned);
	assert_only_ctr(x->ctr, WP_CTR_ARP_OFF_SUBNET);
	assert_int_equal(wp_arp_cache_count(x->arp), 0);
}

static void test_request_off_subnet_answered_not_learned(void **state)
{
	struct fx *x = *state;
	uint16_t len =
	        build_arp(x->f, BCAST_MAC, 1, PEER_MAC, IP4(10, 0, 0, 1), ZERO_MAC, x->ifc.ip);
	assert_int_equal(input(x, len), WP_NET_REPLY);
	assert_false(x->rx.learned);
	assert_only_ctr(x->ctr, WP_CTR_ARP_REPLY_SENT);
	assert_int_equal(wp_arp_cache_count(x->arp), 0);
}

static void test_request_for_other_not_cached(void **state)
{
	struct fx *x = *state;
	uint16_t len = build_arp(x->f, BCAST_MAC, 1, PEER_MAC, IP4(198, 18, 0, 1), ZERO_MAC,
	                         IP4(198, 18, 0, 3));
	uint8_t before[42];
	memcpy(before, x->f, 42);
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_false(x->rx.learned);
	assert_only_ctr(x->ctr, WP_CTR_ARP_NOT_OURS);
	assert_int_equal(wp_arp_cache_count(x->arp), 0);
	assert_memory_equal(x->f, before, 42); /* untouched */
}

static void test_request_for_other_refreshes_cached(void **state)
{
	struct fx *x = *state;
	uint32_t peer = IP4(198, 18, 0, 1);
	assert_int_equal(wp_arp_cache_learn(x->arp, peer, OTHER_MAC, 0, x->ctr), 0);
	uint16_t len = build_arp(x->f, BCAST_MAC, 1, PEER_MAC, peer, ZERO_MAC, IP4(198, 18, 0, 3));
	assert_int_equal(input(x, len), WP_NET_ARP_LEARNED);
	assert_true(x->rx.learned);
	assert_int_equal(x->rx.learned_ip, peer);
	assert_only_ctr(x->ctr, WP_CTR_ARP_LEARNED);
	assert_cached(x, peer, PEER_MAC); /* moved to the new MAC */
}

static void test_gratuitous_updates_existing(void **state)
{
	struct fx *x = *state;
	uint32_t peer = IP4(198, 18, 0, 1);
	assert_int_equal(wp_arp_cache_learn(x->arp, peer, OTHER_MAC, 0, x->ctr), 0);
	/* Gratuitous request (spa == tpa), broadcast. */
	uint16_t len = build_arp(x->f, BCAST_MAC, 1, PEER_MAC, peer, ZERO_MAC, peer);
	assert_int_equal(input(x, len), WP_NET_ARP_LEARNED);
	assert_cached(x, peer, PEER_MAC);
	/* Gratuitous reply form too. */
	len = build_arp(x->f, BCAST_MAC, 2, OTHER_MAC, peer, OTHER_MAC, peer);
	memcpy(x->f + 6, OTHER_MAC, 6);
	assert_int_equal(input(x, len), WP_NET_ARP_LEARNED);
	assert_only_ctr(x->ctr, WP_CTR_ARP_LEARNED);
	assert_cached(x, peer, OTHER_MAC);
}

static void test_gratuitous_unknown_not_added(void **state)
{
	struct fx *x = *state;
	uint32_t peer = IP4(198, 18, 0, 1);
	uint16_t len = build_arp(x->f, BCAST_MAC, 1, PEER_MAC, peer, ZERO_MAC, peer);
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ARP_NOT_OURS);
	assert_false(wp_arp_cache_contains(x->arp, peer));
}

static void test_reply_resolves_pending(void **state)
{
	struct fx *x = *state;
	uint32_t peer = IP4(198, 18, 0, 5);
	int p1, p2;
	assert_int_equal(wp_arp_cache_queue(x->arp, peer, &p1, 0, x->ctr), 1);
	assert_int_equal(wp_arp_cache_queue(x->arp, peer, &p2, 0, x->ctr), 0);
	uint16_t len = build_arp(x->f, OUR_MAC, 2, PEER_MAC, peer, OUR_MAC, x->ifc.ip);
	assert_int_equal(input(x, len), WP_NET_ARP_LEARNED);
	assert_int_equal(x->rx.learned_ip, peer);
	void *pk[4];
	assert_int_equal(wp_arp_cache_take_pending(x->arp, peer, pk, 4), 2);
	assert_ptr_equal(pk[0], &p1);
	assert_ptr_equal(pk[1], &p2);
}

static void test_bad_fields(void **state)
{
	struct fx *x = *state;
	struct {
		unsigned off;
		uint16_t val;
		bool byte;
		enum wp_ctr c;
	} cases[] = {
	        {0, 0, false, WP_CTR_ARP_BAD_HW},
	        {0, 6, false, WP_CTR_ARP_BAD_HW},
	        {4, 0, true, WP_CTR_ARP_BAD_HW},
	        {4, 8, true, WP_CTR_ARP_BAD_HW},
	        {2, 0x86dd, false, WP_CTR_ARP_BAD_PROTO},
	        {2, 0, false, WP_CTR_ARP_BAD_PROTO},
	        {5, 16, true, WP_CTR_ARP_BAD_PROTO},
	        {5, 0, true, WP_CTR_ARP_BAD_PROTO},
	        {6, 0, false, WP_CTR_ARP_BAD_OPCODE},
	        {6, 3, false, WP_CTR_ARP_BAD_OPCODE},
	        {6, 8, false, WP_CTR_ARP_BAD_OPCODE},
	        {6, 0x0100, false, WP_CTR_ARP_BAD_OPCODE},
	        {6, 0xffff, false, WP_CTR_ARP_BAD_OPCODE},
	};
	for (size_t i = 0; i < WP_ARRAY_SIZE(cases); i++) {
		uint16_t len = build_arp(x->f, BCAST_MAC, 1, PEER_MAC, IP4(198, 18, 0, 1), ZERO_MAC,
		                         x->ifc.ip);
		if (cases[i].byte)
			x->f[14 + cases[i].off] = (uint8_t)cases[i].val;
		else
			put16(x->f + 14 + cases[i].off, cases[i].val);
		assert_int_equal(input(x, len), WP_NET_DROP);
		assert_only_ctr(x->ctr, cases[i].c);
		assert_int_equal(wp_arp_cache_count(x->arp), 0);
	}
}

static void test_truncated(void **state)
{
	struct fx *x = *state;
	for (uint16_t len = 14; len < 42; len++) {
		build_arp(x->f, BCAST_MAC, 1, PEER_MAC, IP4(198, 18, 0, 1), ZERO_MAC, x->ifc.ip);
		assert_int_equal(input(x, len), WP_NET_DROP);
		assert_only_ctr(x->ctr, WP_CTR_ARP_TRUNCATED);
	}
}

static void test_bad_sender(void **state)
{
	struct fx *x = *state;
	const uint8_t mc[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
	const uint8_t *macs[] = {BCAST_MAC, mc, ZERO_MAC};
	for (size_t i = 0; i < WP_ARRAY_SIZE(macs); i++) {
		uint16_t len = build_arp(x->f, BCAST_MAC, 1, macs[i], IP4(198, 18, 0, 1), ZERO_MAC,
		                         x->ifc.ip);
		memcpy(x->f + 6, PEER_MAC, 6); /* the Ethernet source itself is fine */
		assert_int_equal(input(x, len), WP_NET_DROP);
		assert_only_ctr(x->ctr, WP_CTR_ARP_BAD_SENDER);
	}
	const uint32_t ips[] = {x->ifc.ip, IP4(198, 18, 0, 255), IP4(255, 255, 255, 255),
	                        IP4(224, 0, 0, 1), IP4(127, 0, 0, 1)};
	for (size_t i = 0; i < WP_ARRAY_SIZE(ips); i++) {
		for (uint16_t op = 1; op <= 2; op++) {
			uint16_t len = build_arp(x->f, BCAST_MAC, op, PEER_MAC, ips[i], ZERO_MAC,
			                         x->ifc.ip);
			assert_int_equal(input(x, len), WP_NET_DROP);
			assert_only_ctr(x->ctr, WP_CTR_ARP_BAD_SENDER);
		}
	}
	/* A reply claiming 0.0.0.0 is not a probe. */
	uint16_t len = build_arp(x->f, OUR_MAC, 2, PEER_MAC, 0, OUR_MAC, x->ifc.ip);
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ARP_BAD_SENDER);
	assert_int_equal(wp_arp_cache_count(x->arp), 0);
}

static void test_table_full(void **state)
{
	struct fx *x = *state;
	/* The fixture's table holds 4 neighbours. */
	for (int i = 0; i < 4; i++)
		assert_int_equal(
		        wp_arp_cache_learn(x->arp, IP4(198, 18, 0, 10 + i), OTHER_MAC, 0, x->ctr),
		        0);
	/* A request for us is still answered; the sender cannot be kept. */
	uint16_t len =
	        build_arp(x->f, BCAST_MAC, 1, PEER_MAC, IP4(198, 18, 0, 1), ZERO_MAC, x->ifc.ip);
	assert_int_equal(input(x, len), WP_NET_REPLY);
	assert_false(x->rx.learned);
	assert_int_equal(x->ctr[WP_CTR_ARP_TABLE_FULL], 1);
	assert_int_equal(x->ctr[WP_CTR_ARP_REPLY_SENT], 1);
	assert_int_equal(ctr_total(x->ctr), 2);
	/* A reply for us: dropped, counted as table full. */
	len = build_arp(x->f, OUR_MAC, 2, PEER_MAC, IP4(198, 18, 0, 1), OUR_MAC, x->ifc.ip);
	assert_int_equal(input(x, len), WP_NET_DROP);
	assert_only_ctr(x->ctr, WP_CTR_ARP_TABLE_FULL);
	/* Known senders still refresh. */
	len = build_arp(x->f, OUR_MAC, 2, PEER_MAC, IP4(198, 18, 0, 12), OUR_MAC, x->ifc.ip);
	assert_int_equal(input(x, len), WP_NET_ARP_LEARNED);
	assert_cached(x, IP4(198, 18, 0, 12), PEER_MAC);
}

static void test_build_request(void **state)
{
	struct fx *x = *state;
	uint8_t buf[64];
	memset(buf, 0xcc, sizeof(buf));
	uint32_t target = IP4(198, 18, 0, 1);
	assert_int_equal(wp_arp_build_request(&x->ifc, target, buf), 60);
	uint8_t want[60] = {0};
	build_arp(want, BCAST_MAC, 1, OUR_MAC, x->ifc.ip, ZERO_MAC, target);
	assert_memory_equal(buf, want, 60);
	assert_int_equal(buf[60], 0xcc); /* nothing beyond the frame */

	/* Fed back to a second interface that owns target, it is answered. */
	struct wp_iface other = x->ifc;
	other.ip = target;
	memcpy(other.mac, PEER_MAC, 6);
	memset(x->ctr, 0, sizeof(x->ctr));
	assert_int_equal(run_input(&other, x->arp, 0, buf, 60, &x->rx, x->ctr), WP_NET_REPLY);
	assert_true(x->rx.learned);
	assert_int_equal(x->rx.learned_ip, x->ifc.ip);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_request_for_us_exact_reply),
	        T(test_padded_request_reply_is_60_zero_padded),
	        T(test_probe_answered_not_learned),
	        T(test_reply_learns),
	        T(test_reply_off_subnet_not_learned),
	        T(test_request_off_subnet_answered_not_learned),
	        T(test_request_for_other_not_cached),
	        T(test_request_for_other_refreshes_cached),
	        T(test_gratuitous_updates_existing),
	        T(test_gratuitous_unknown_not_added),
	        T(test_reply_resolves_pending),
	        T(test_bad_fields),
	        T(test_truncated),
	        T(test_bad_sender),
	        T(test_table_full),
	        T(test_build_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
