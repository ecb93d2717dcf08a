/*
 * Unit tests for dp/net/arp_cache.c: lookup/learn/ttl, the pending queue
 * (request pacing, FIFO order per address, bounds, expiry) and the table's
 * open addressing under random insert/delete against a reference model.
 */
#include "net_test.h"

#define TTL 60000000u
#define PTO 3000000u
#define SEC 1000000u

static const uint8_t MAC_A[6] = {0x02, 0, 0, 0, 0, 0xa};
static const uint8_t MAC_B[6] = {0x02, 0, 0, 0, 0, 0xb};

struct freed {
	void *pkts[64];
	unsigned n;
};

static void record_free(void *pkt, void *arg)
{
	struct freed *f = arg;
	assert_true(f->n < WP_ARRAY_SIZE(f->pkts));
	f->pkts[f->n++] = pkt;
}

static void test_create_bad_args(void **state)
{
	(void)state;
	assert_null(wp_arp_cache_create(0, 4, TTL, PTO, free_nothing, NULL));
	assert_null(wp_arp_cache_create(4, 4, TTL, PTO, NULL, NULL));
	struct wp_arp_cache *c = wp_arp_cache_create(1, 0, TTL, PTO, free_nothing, NULL);
	assert_non_null(c);
	uint64_t ctr[WP_CTR_MAX] = {0};
	int p;
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 1), &p, 0, ctr), -ENOBUFS);
	assert_only_ctr(ctr, WP_CTR_ARP_PENDING_FULL);
	wp_arp_cache_destroy(c);
	wp_arp_cache_destroy(NULL);
}

static void test_learn_lookup_ttl(void **state)
{
	(void)state;
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_arp_cache *c = wp_arp_cache_create(8, 8, TTL, PTO, free_nothing, NULL);
	uint8_t m[6];
	uint32_t ip = IP4(10, 0, 0, 1);

	assert_false(wp_arp_cache_lookup(c, ip, 0, m));
	assert_false(wp_arp_cache_contains(c, ip));
	assert_int_equal(wp_arp_cache_learn(c, ip, MAC_A, 100, ctr), 0);
	assert_only_ctr(ctr, WP_CTR_ARP_LEARNED);
	assert_true(wp_arp_cache_lookup(c, ip, 100, m));
	assert_memory_equal(m, MAC_A, 6);
	assert_true(wp_arp_cache_lookup(c, ip, 100 + TTL - 1, m));
	assert_false(wp_arp_cache_lookup(c, ip, 100 + TTL, m));
	assert_true(wp_arp_cache_contains(c, ip)); /* stale, still known */
	assert_false(wp_arp_cache_lookup(c, IP4(10, 0, 0, 2), 100, m));

	/* Refresh with a new MAC. */
	assert_int_equal(wp_arp_cache_learn(c, ip, MAC_B, 100 + TTL, ctr), 0);
	assert_true(wp_arp_cache_lookup(c, ip, 100 + TTL, m));
	assert_memory_equal(m, MAC_B, 6);
	assert_int_equal(wp_arp_cache_count(c), 1);
	wp_arp_cache_destroy(c);
}

static void test_table_full(void **state)
{
	(void)state;
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_arp_cache *c = wp_arp_cache_create(3, 8, TTL, PTO, free_nothing, NULL);
	for (int i = 0; i < 3; i++)
		assert_int_equal(wp_arp_cache_learn(c, IP4(10, 0, 0, i + 1), MAC_A, 0, ctr), 0);
	memset(ctr, 0, sizeof(ctr));
	assert_int_equal(wp_arp_cache_learn(c, IP4(10, 0, 0, 9), MAC_A, 10, ctr), -ENOSPC);
	assert_only_ctr(ctr, WP_CTR_ARP_TABLE_FULL);
	/* A queue for a new address needs an entry too. */
	memset(ctr, 0, sizeof(ctr));
	int p;
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 9), &p, 10, ctr), -ENOBUFS);
	assert_only_ctr(ctr, WP_CTR_ARP_TABLE_FULL);
	assert_int_equal(wp_arp_cache_pending_count(c), 0);
	/* Refreshing an existing one still works. */
	memset(ctr, 0, sizeof(ctr));
	assert_int_equal(wp_arp_cache_learn(c, IP4(10, 0, 0, 2), MAC_B, 10, ctr), 0);
	assert_int_equal(wp_arp_cache_count(c), 3);

	/* Once entries are stale they are reclaimed to make room. */
	assert_int_equal(wp_arp_cache_learn(c, IP4(10, 0, 0, 9), MAC_A, TTL + 5, ctr), 0);
	uint8_t m[6];
	assert_true(wp_arp_cache_lookup(c, IP4(10, 0, 0, 9), TTL + 5, m));
	/* 10.0.0.2 was refreshed at 10, so it is still fresh and kept. */
	assert_true(wp_arp_cache_lookup(c, IP4(10, 0, 0, 2), TTL + 5, m));
	assert_false(wp_arp_cache_contains(c, IP4(10, 0, 0, 1)));
	assert_false(wp_arp_cache_contains(c, IP4(10, 0, 0, 3)));
	assert_int_equal(wp_arp_cache_count(c), 2);
	wp_arp_cache_destroy(c);
}

static void test_entry_with_pending_not_reclaimed(void **state)
{
	(void)state;
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_arp_cache *c = wp_arp_cache_create(1, 8, TTL, PTO, free_nothing, NULL);
	int p;
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 1), &p, 0, ctr), 1);
	/* Long after, the entry still holds a packet (expire not run): kept. */
	assert_int_equal(wp_arp_cache_learn(c, IP4(10, 0, 0, 2), MAC_A, 10 * PTO, ctr), -ENOSPC);
	void *pk[1];
	assert_int_equal(wp_arp_cache_take_pending(c, IP4(10, 0, 0, 1), pk, 1), 1);
	/* Without packets and with its request timed out, it makes room. */
	assert_int_equal(wp_arp_cache_learn(c, IP4(10, 0, 0, 2), MAC_A, 20 * PTO, ctr), 0);
	wp_arp_cache_destroy(c);
}

static void test_queue_request_pacing(void **state)
{
	(void)state;
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_arp_cache *c = wp_arp_cache_create(8, 16, TTL, 10 * SEC, free_nothing, NULL);
	uint32_t ip = IP4(10, 0, 0, 1);
	int p[8];
	assert_int_equal(wp_arp_cache_queue(c, ip, &p[0], 0, ctr), 1);
	assert_int_equal(wp_arp_cache_queue(c, ip, &p[1], 10, ctr), 0);
	assert_int_equal(wp_arp_cache_queue(c, ip, &p[2], SEC - 1, ctr), 0);
	assert_int_equal(wp_arp_cache_queue(c, ip, &p[3], SEC, ctr), 1);
	assert_int_equal(wp_arp_cache_queue(c, ip, &p[4], SEC + 5, ctr), 0);
	/* Another address asks on its own. */
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 2), &p[5], SEC + 5, ctr), 1);
	assert_int_equal(ctr_total(ctr), 0);
	/* Still unresolved: lookup fails. */
	uint8_t m[6];
	assert_false(wp_arp_cache_lookup(c, ip, SEC + 5, m));

	/* A resolved entry gone stale asks again on the first queued packet, at any time. */
	assert_int_equal(wp_arp_cache_learn(c, IP4(10, 0, 0, 3), MAC_A, 0, ctr), 0);
	assert_false(wp_arp_cache_lookup(c, IP4(10, 0, 0, 3), TTL, m));
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 3), &p[6], TTL, ctr), 1);
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 3), &p[7], TTL + 1, ctr), 0);
	wp_arp_cache_destroy(c);
}

static void test_take_order_and_max(void **state)
{
	(void)state;
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct wp_arp_cache *c = wp_arp_cache_create(8, 16, TTL, PTO, free_nothing, NULL);
	uint32_t a = IP4(10, 0, 0, 1), b = IP4(10, 0, 0, 2);
	int p[10];
	for (int i = 0; i < 10; i++)
		assert_true(wp_arp_cache_queue(c, i % 2 ? b : a, &p[i], (uint64_t)i, ctr) >= 0);
	assert_int_equal(wp_arp_cache_pending_count(c), 10);
	void *pk[10];
	assert_int_equal(wp_arp_cache_take_pending(c, a, pk, 2), 2);
	assert_ptr_equal(pk[0], &p[0]);
	assert_ptr_equal(pk[1], &p[2]);
	assert_int_equal(wp_arp_cache_take_pending(c, a, pk, 10), 3);
	assert_ptr_equal(pk[0], &p[4]);
	assert_ptr_equal(pk[1], &p[6]);
	assert_ptr_equal(pk[2], &p[8]);
	assert_int_equal(wp_arp_cache_take_pending(c, a, pk, 10), 0);
	assert_int_equal(wp_arp_cache_take_pending(c, IP4(10, 0, 0, 7), pk, 10), 0);
	assert_int_equal(wp_arp_cache_take_pending(c, b, pk, 10), 5);
	for (int i = 0; i < 5; i++)
		assert_ptr_equal(pk[i], &p[2 * i + 1]);
	assert_int_equal(wp_arp_cache_pending_count(c), 0);
	wp_arp_cache_destroy(c);
}

static void test_pending_full(void **state)
{
	(void)state;
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct freed fr = {0};
	struct wp_arp_cache *c = wp_arp_cache_create(8, 3, TTL, PTO, record_free, &fr);
	int p[5];
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 1), &p[0], 0, ctr), 1);
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 2), &p[1], 0, ctr), 1);
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 1), &p[2], 0, ctr), 0);
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 3), &p[3], 0, ctr), -ENOBUFS);
	assert_only_ctr(ctr, WP_CTR_ARP_PENDING_FULL);
	assert_int_equal(fr.n, 0); /* still the caller's */
	void *pk[4];
	assert_int_equal(wp_arp_cache_take_pending(c, IP4(10, 0, 0, 2), pk, 4), 1);
	/* A freed node is reused. */
	assert_int_equal(wp_arp_cache_queue(c, IP4(10, 0, 0, 3), &p[3], 0, ctr), 1);
	assert_int_equal(wp_arp_cache_pending_count(c), 3);
	/* destroy frees the rest through the callback. */
	wp_arp_cache_destroy(c);
	assert_int_equal(fr.n, 3);
}

static void test_expire(void **state)
{
	(void)state;
	uint64_t ctr[WP_CTR_MAX] = {0};
	struct freed fr = {0};
	struct wp_arp_cache *c = wp_arp_cache_create(8, 16, TTL, PTO, record_free, &fr);
	uint32_t a = IP4(10, 0, 0, 1), b = IP4(10, 0, 0, 2);
	int p[6];
	assert_int_equal(wp_arp_cache_queue(c, a, &p[0], 0, ctr), 1);
	assert_int_equal(wp_arp_cache_queue(c, b, &p[1], 10, ctr), 1);
	assert_int_equal(wp_arp_cache_queue(c, a, &p[2], 20, ctr), 0);
	assert_int_equal(wp_arp_cache_queue(c, b, &p[3], 30, ctr), 0);
	assert_int_equal(wp_arp_cache_queue(c, a, &p[4], 40, ctr), 0);

	wp_arp_cache_expire(c, PTO - 1, ctr);
	assert_int_equal(fr.n, 0);
	assert_int_equal(ctr_total(ctr), 0);
	wp_arp_cache_expire(c, PTO + 20, ctr); /* p0, p1, p2 are 3 s old */
	assert_int_equal(fr.n, 3);
	assert_ptr_equal(fr.pkts[0], &p[0]);
	assert_ptr_equal(fr.pkts[1], &p[1]);
	assert_ptr_equal(fr.pkts[2], &p[2]);
	assert_int_equal(ctr[WP_CTR_ARP_PENDING_EXPIRED], 3);
	assert_int_equal(ctr_total(ctr), 3);
	/* The survivors come out in order. */
	void *pk[4];
	assert_int_equal(wp_arp_cache_take_pending(c, a, pk, 4), 1);
	assert_ptr_equal(pk[0], &p[4]);
	wp_arp_cache_expire(c, 100 * PTO, ctr);
	assert_int_equal(fr.n, 4);
	assert_ptr_equal(fr.pkts[3], &p[3]);
	assert_int_equal(wp_arp_cache_pending_count(c), 0);
	wp_arp_cache_destroy(c);
	assert_int_equal(fr.n, 4);
}

/*
 * Random learn/queue/take/expire/lookup against a plain array model, on a
 * small table so clusters wrap and stale entries are reclaimed often.
 */
static void test_random_against_model(void **state)
{
	(void)state;
	enum { N = 24, IPS = 40, PMAX = 8 };
	struct model {
		bool present;
		bool resolved;
		uint64_t learned;
		uint8_t mac;
	} m[IPS] = {{0}};
	int pkts[PMAX * 4];
	uint64_t ctr[WP_CTR_MAX] = {0};
	const uint64_t ttl = 1000, pto = 300;
	struct wp_arp_cache *c = wp_arp_cache_create(N, PMAX, ttl, pto, free_nothing, NULL);
	uint32_t r = 7;
	uint64_t now = 0;
	unsigned next_pkt = 0;
	unsigned reclaimed = 0;
	for (int iter = 0; iter < 200000; iter++) {
		r = r * 1103515245u + 12345u;
		unsigned ipi = (r >> 8) % IPS;
		uint32_t ip = IP4(10, 1, ipi / 7, ipi);
		now += (r >> 20) % 7;
		unsigned op = (r >> 4) % 5;
		uint8_t mac[6] = {0x02, 0, 0, 0, 0, (uint8_t)(r >> 24)};
		if (op == 0) {
			int rc = wp_arp_cache_learn(c, ip, mac, now, ctr);
			if (rc == 0) {
				m[ipi].present = true;
				m[ipi].resolved = true;
				m[ipi].learned = now;
				m[ipi].mac = mac[5];
			} else {
				assert_int_equal(rc, -ENOSPC);
				assert_false(m[ipi].present && wp_arp_cache_contains(c, ip));
			}
		} else if (op == 1) {
			int rc = wp_arp_cache_queue(c, ip, &pkts[next_pkt++ % WP_ARRAY_SIZE(pkts)],
			                            now, ctr);
			if (rc >= 0 && !m[ipi].present) {
				m[ipi].present = true;
				m[ipi].resolved = false;
			}
		} else if (op == 2) {
			void *pk[8];
			wp_arp_cache_take_pending(c, ip, pk, 8);
		} else if (op == 3) {
			wp_arp_cache_expire(c, now, ctr);
		} else {
			uint8_t got[6];
			bool fresh =
			        m[ipi].present && m[ipi].resolved && now - m[ipi].learned < ttl;
			bool hit = wp_arp_cache_lookup(c, ip, now, got);
			/* Reclaiming only ever removes stale entries. */
			if (fresh) {
				assert_true(hit);
				assert_int_equal(got[5], m[ipi].mac);
			} else {
				assert_false(hit);
			}
		}
		/* The model forgets what the cache reclaimed. */
		for (unsigned k = 0; k < IPS; k++)
			if (m[k].present && !wp_arp_cache_contains(c, IP4(10, 1, k / 7, k))) {
				m[k].present = false;
				reclaimed++;
			}
		assert_true(wp_arp_cache_count(c) <= N);
		assert_true(wp_arp_cache_pending_count(c) <= PMAX);
	}
	unsigned present = 0;
	for (unsigned k = 0; k < IPS; k++)
		present += m[k].present;
	assert_int_equal(present, wp_arp_cache_count(c));
	/* The run did reach the interesting paths. */
	assert_true(reclaimed > 100);
	assert_true(ctr[WP_CTR_ARP_TABLE_FULL] > 100);
	assert_true(ctr[WP_CTR_ARP_PENDING_EXPIRED] > 100);
	assert_true(ctr[WP_CTR_ARP_PENDING_FULL] > 0);
	wp_arp_cache_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_create_bad_args),
	        cmocka_unit_test(test_learn_lookup_ttl),
	        cmocka_unit_test(test_table_full),
	        cmocka_unit_test(test_entry_with_pending_not_reclaimed),
	        cmocka_unit_test(test_queue_request_pacing),
	        cmocka_unit_test(test_take_order_and_max),
	        cmocka_unit_test(test_pending_full),
	        cmocka_unit_test(test_expire),
	        cmocka_unit_test(test_random_against_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
