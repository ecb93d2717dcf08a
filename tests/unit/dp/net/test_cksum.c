/* Unit tests for dp/net/cksum.h against RFC 1071's example and a reference sum. */
#include "net_test.h"

static void test_rfc1071_example(void **state)
{
	(void)state;
	/* RFC 1071 section 3: the words sum to 0xddf2; the checksum is its complement. */
	const uint8_t b[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
	uint16_t c = wp_inet_cksum(b, sizeof(b));
	uint8_t out[2];
	memcpy(out, &c, 2);
	assert_int_equal(get16(out), 0x220d);
}

static void test_matches_reference_all_lengths_and_alignments(void **state)
{
	(void)state;
	uint8_t buf[300];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (unsigned off = 0; off < 8; off++) {
		for (unsigned len = 0; len + off <= sizeof(buf); len++) {
			uint16_t c = wp_inet_cksum(buf + off, len);
			uint8_t out[2];
			memcpy(out, &c, 2);
			assert_int_equal(get16(out), ref_cksum(buf + off, len));
		}
	}
}

/* Long buffers take the vector path (64 bytes a step, blocks of 4096
 * steps): lengths around a step and a block, a TSO segment's 64 KiB and
 * several blocks, at odd and even offsets; and all-ones words, the largest
 * a lane can take, over enough blocks that one block of them all would
 * carry out of a lane. */
static void test_long_buffers(void **state)
{
	static const uint32_t lens[] = {63,     64,     65,     127,    128,    129,
	                                1448,   1460,   1461,   9000,   65535,  65536,
	                                262143, 262144, 262208, 262209, 300000, 1200001};
	size_t size = 1200001 + 8;
	uint8_t *buf = malloc(size);
	uint32_t x = 777;

	(void)state;
	assert_non_null(buf);
	for (size_t i = 0; i < size; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (unsigned off = 0; off < 4; off++) {
			uint16_t c = wp_inet_cksum(buf + off, lens[i]);
			uint8_t out[2];

			memcpy(out, &c, 2);
			assert_int_equal(get16(out), ref_cksum(buf + off, lens[i]));
		}
	}
	memset(buf, 0xff, size);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint16_t c = wp_inet_cksum(buf + 1, lens[i]);
		uint8_t out[2];

		memcpy(out, &c, 2);
		assert_int_equal(get16(out), ref_cksum(buf + 1, lens[i]));
	}
	free(buf);
}

static void test_all_ones_and_zero(void **state)
{
	(void)state;
	uint8_t z[64] = {0};
	uint8_t f[64];
	memset(f, 0xff, sizeof(f));
	uint16_t c = wp_inet_cksum(z, sizeof(z));
	assert_int_equal(c, 0xffff);
	c = wp_inet_cksum(f, sizeof(f));
	assert_int_equal(c, 0x0000);
}

static void test_verify_sums_to_zero(void **state)
{
	(void)state;
	uint8_t ip[20];
	put_ipv4(ip, 20, IP4(10, 0, 0, 1), IP4(10, 0, 0, 2), 6, 100, 64, 0);
	assert_int_equal(wp_inet_cksum(ip, 20), 0);
	ip[8]--; /* TTL */
	assert_int_not_equal(wp_inet_cksum(ip, 20), 0);
}

static void test_tcp_pseudo_header(void **state)
{
	(void)state;
	uint32_t src = IP4(198, 18, 0, 1), dst = IP4(198, 18, 0, 2);
	for (unsigned len = 20; len < 60; len++) {
		uint8_t seg[64];
		for (unsigned i = 0; i < len; i++)
			seg[i] = (uint8_t)(i * 31 + len);
		put16(seg + 16, 0);
		/* Reference: pseudo header (src, dst, 0, 6, len) then the segment. */
		uint8_t ph[12 + 64];
		put_ip(ph, src);
		put_ip(ph + 4, dst);
		ph[8] = 0;
		ph[9] = 6;
		put16(ph + 10, (uint16_t)len);
		memcpy(ph + 12, seg, len);
		uint16_t want = ref_cksum(ph, 12 + len);
		uint16_t got = wp_tcp_cksum(src, dst, seg, (uint16_t)len);
		uint8_t out[2];
		memcpy(out, &got, 2);
		assert_int_equal(get16(out), want);
		/* Stored as is, the segment then verifies to zero. */
		memcpy(seg + 16, &got, 2);
		assert_int_equal(wp_tcp_cksum(src, dst, seg, (uint16_t)len), 0);
	}
}

/* Summed as copied: the copy is exact and its sum is what wp_cksum_add()
 * gives the same bytes, at every length up to a few vector steps and at
 * long ones (a jumbo frame, a TSO segment, past one block of steps), from
 * and to odd and even addresses; all-ones words included, the largest a
 * lane takes. Around the copy the destination is untouched. */
static void test_copy(void **state)
{
	static const uint32_t longs[] = {1448, 1460, 9000, 65535, 262144, 262209, 300001};
	size_t size = 300001 + 16;
	uint8_t *src = malloc(size), *dst = malloc(size + 16);
	uint32_t x = 4242;

	(void)state;
	assert_non_null(src);
	assert_non_null(dst);
	for (int fill = 0; fill < 2; fill++) {
		for (size_t i = 0; i < size; i++) {
			x = x * 1103515245u + 12345u;
			src[i] = fill ? 0xff : (uint8_t)(x >> 16);
		}
		for (uint32_t len = 0; len < 300 + sizeof(longs) / sizeof(longs[0]); len++) {
			uint32_t n = len < 300 ? len : longs[len - 300];

			for (unsigned so = 0; so < 3; so++) {
				for (unsigned dof = 0; dof < 3; dof++) {
					memset(dst, 0xa5, n + 8);
					uint64_t got = wp_cksum_copy(7, dst + 4 + dof, src + so, n);

					assert_memory_equal(dst + 4 + dof, src + so, n);
					assert_int_equal(dst[3 + dof], 0xa5);
					assert_int_equal(dst[4 + dof + n], 0xa5);
					assert_int_equal(
					        wp_cksum_fold(got),
					        wp_cksum_fold(wp_cksum_add(7, src + so, n)));
				}
			}
		}
	}
	free(src);
	free(dst);
}

/* A buffer summed in two pieces, the second's sum byte-swapped by
 * wp_cksum_odd() when it starts at an odd offset, gives the whole's
 * checksum, wherever it is split. */
static void test_odd_pieces(void **state)
{
	uint8_t buf[301];
	uint32_t x = 99;

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (uint32_t len = 0; len <= sizeof(buf); len += 37) {
		for (uint32_t cut = 0; cut <= len; cut++) {
			uint64_t rest = wp_cksum_add(0, buf + cut, len - cut);
			uint64_t sum =
			        wp_cksum_add(0, buf, cut) + (cut & 1 ? wp_cksum_odd(rest) : rest);

			assert_int_equal(wp_cksum_fold(sum), wp_inet_cksum(buf, len));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rfc1071_example),
	        cmocka_unit_test(test_matches_reference_all_lengths_and_alignments),
	        cmocka_unit_test(test_long_buffers),
	        cmocka_unit_test(test_all_ones_and_zero),
	        cmocka_unit_test(test_verify_sums_to_zero),
	        cmocka_unit_test(test_tcp_pseudo_header),
	        cmocka_unit_test(test_copy),
	        cmocka_unit_test(test_odd_pieces),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
