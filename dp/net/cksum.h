/*
 * The Internet checksum (RFC 1071) for IPv4 headers, ICMP messages and TCP
 * segments with their pseudo header, inline: the TCP stack (dp/net/tcp,
 * its own library) checksums every segment it sends and receives. The
 * one's-complement sum does not depend on byte order, so the bytes are
 * summed as 32-bit words as they sit in memory and the result is in memory
 * order: memcpy it into the checksum field as is. Over data that includes a
 * correct checksum field, the result is 0.
 *
 * On x86-64 (SSE2 is part of the base instruction set) the bulk of a long
 * buffer is summed 64 bytes at a time in vector registers: its 16-bit
 * words widened to 32-bit lanes and added, the lanes added into the 64-bit
 * sum at the end of each block. Summing 16-bit words or 32-bit words gives
 * the same folded result (2^16 = 1 modulo 0xffff).
 */
#ifndef WP_DP_NET_CKSUM_H
#define WP_DP_NET_CKSUM_H

#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>

#ifdef __SSE2__
#include <emmintrin.h>

/* 64-byte steps per block: each 32-bit lane takes 4 words of at most
 * 0xffff a step, so 4096 steps stay under 2^30 and cannot carry out. */
#define WP_CKSUM_BLOCK_STEPS 4096u

/* Adds the 64-byte steps of <len> bytes at <p> to <sum>; the caller sums
 * the rest (len % 64). */
static inline uint64_t wp_cksum_add_sse2(uint64_t sum, const uint8_t *p, uint32_t len)
{
	const __m128i zero = _mm_setzero_si128();
	uint32_t steps = len / 64;

	while (steps > 0) {
		uint32_t n = steps < WP_CKSUM_BLOCK_STEPS ? steps : WP_CKSUM_BLOCK_STEPS;
		__m128i lo = zero, hi = zero;
		uint32_t lane[4];

		steps -= n;
		for (; n > 0; n--, p += 64) {
			__m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)p);
			__m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(p + 16));
			__m128i v2 = _mm_loadu_si128((const __m128i *)(const void *)(p + 32));
			__m128i v3 = _mm_loadu_si128((const __m128i *)(const void *)(p + 48));

			lo = _mm_add_epi32(lo, _mm_unpacklo_epi16(v0, zero));
			hi = _mm_add_epi32(hi, _mm_unpackhi_epi16(v0, zero));
			lo = _mm_add_epi32(lo, _mm_unpacklo_epi16(v1, zero));
			hi = _mm_add_epi32(hi, _mm_unpackhi_epi16(v1, zero));
			lo = _mm_add_epi32(lo, _mm_unpacklo_epi16(v2, zero));
			hi = _mm_add_epi32(hi, _mm_unpackhi_epi16(v2, zero));
			lo = _mm_add_epi32(lo, _mm_unpacklo_epi16(v3, zero));
			hi = _mm_add_epi32(hi, _mm_unpackhi_epi16(v3, zero));
		}
		/* lo + hi: two lanes under 2^30 each, no carry out */
		_mm_storeu_si128((__m128i *)(void *)lane, _mm_add_epi32(lo, hi));
		sum += (uint64_t)lane[0] + lane[1] + lane[2] + lane[3];
	}
	return sum;
}

/* Copies the 64-byte steps of <len> bytes from <src> to <dst> and adds them
 * to <sum>; the caller copies and sums the rest (len % 64). Each word is
 * split into its 16-bit halves by a mask and a shift (two lane sums, as in
 * wp_cksum_add_sse2, each taking 4 halves of at most 0xffff a step). */
static inline uint64_t wp_cksum_copy_sse2(uint64_t sum, uint8_t *dst, const uint8_t *src,
                                          uint32_t len)
{
	const __m128i low = _mm_set1_epi32(0xffff);
	uint32_t steps = len / 64;

	while (steps > 0) {
		uint32_t n = steps < WP_CKSUM_BLOCK_STEPS ? steps : WP_CKSUM_BLOCK_STEPS;
		__m128i lo = _mm_setzero_si128(), hi = _mm_setzero_si128();
		uint32_t lane[4];

		steps -= n;
		for (; n > 0; n--, src += 64, dst += 64) {
			for (unsigned k = 0; k < 64; k += 16) {
				__m128i v =
				        _mm_loadu_si128((const __m128i *)(const void *)(src + k));

				_mm_storeu_si128((__m128i *)(void *)(dst + k), v);
				lo = _mm_add_epi32(lo, _mm_and_si128(v, low));
				hi = _mm_add_epi32(hi, _mm_srli_epi32(v, 16));
			}
		}
		_mm_storeu_si128((__m128i *)(void *)lane, _mm_add_epi32(lo, hi));
		sum += (uint64_t)lane[0] + lane[1] + lane[2] + lane[3];
	}
	return sum;
}
#endif

/* Adds <len> bytes at <p> to a 64-bit running sum (no fold). */
static inline uint64_t wp_cksum_add(uint64_t sum, const uint8_t *p, uint32_t len)
{
#ifdef __SSE2__
	if (len >= 64) {
		sum = wp_cksum_add_sse2(sum, p, len);
		p += len & ~63u;
		len &= 63u;
	}
#endif
	while (len >= 32) {
		uint64_t w[4];

		memcpy(w, p, sizeof(w));
		sum += (w[0] & 0xffffffffu) + (w[0] >> 32) + (w[1] & 0xffffffffu) + (w[1] >> 32) +
		       (w[2] & 0xffffffffu) + (w[2] >> 32) + (w[3] & 0xffffffffu) + (w[3] >> 32);
		p += 32;
		len -= 32;
	}
	while (len >= 4) {
		uint32_t w;

		memcpy(&w, p, 4);
		sum += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t w;

		memcpy(&w, p, 2);
		sum += w;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* the odd byte is the high-order byte of a zero-padded word */
		uint8_t last[2] = {p[0], 0};
		uint16_t w;

		memcpy(&w, last, 2);
		sum += w;
	}
	return sum;
}

/* Copies <len> bytes from <src> to <dst> and adds them to <sum> like
 * wp_cksum_add() (as if they start at an even offset of what is summed):
 * one pass over the bytes where a copy and then a sum take two, the second
 * often missing the cache the copy just filled elsewhere. */
static inline uint64_t wp_cksum_copy(uint64_t sum, uint8_t *dst, const uint8_t *src, uint32_t len)
{
#ifdef __SSE2__
	if (len >= 64) {
		uint32_t bulk = len & ~63u;

		sum = wp_cksum_copy_sse2(sum, dst, src, len);
		dst += bulk;
		src += bulk;
		len -= bulk;
	}
#endif
	memcpy(dst, src, len);
	return wp_cksum_add(sum, src, len); /* (not the bytes just stored) */
}

/* Folds a running sum to 16 bits and complements it. */
static inline uint16_t wp_cksum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* What <sum>, the running sum of bytes that start at an odd offset of the
 * whole, adds to the whole's sum: folded and byte-swapped (RFC 1071 2(B),
 * byte order independence). */
static inline uint64_t wp_cksum_odd(uint64_t sum)
{
	uint16_t f = (uint16_t)~wp_cksum_fold(sum);

	return (uint16_t)((f << 8) | (f >> 8));
}

static inline uint16_t wp_inet_cksum(const void *data, uint32_t len)
{
	return wp_cksum_fold(wp_cksum_add(0, (const uint8_t *)data, len));
}

/* The TCP/IPv4 pseudo-header, unfolded: <src_ip>/<dst_ip> in network order. */
static inline uint64_t wp_tcp_phdr_add(uint32_t src_ip, uint32_t dst_ip, uint16_t seg_len)
{
	return (uint64_t)src_ip + dst_ip + htons(6 /* TCP */) + htons(seg_len);
}

/* TCP over IPv4: <src_ip>/<dst_ip> in network order. */
static inline uint16_t wp_tcp_cksum(uint32_t src_ip, uint32_t dst_ip, const void *seg,
                                    uint16_t seg_len)
{
	return wp_cksum_fold(wp_cksum_add(wp_tcp_phdr_add(src_ip, dst_ip, seg_len),
	                                  (const uint8_t *)seg, seg_len));
}

/* What a device that offloads TCP checksums wants in the field before it
 * sums the segment: the pseudo-header's sum, folded, not complemented. */
static inline uint16_t wp_tcp_phdr_sum(uint32_t src_ip, uint32_t dst_ip, uint16_t seg_len)
{
	return (uint16_t)~wp_cksum_fold(wp_tcp_phdr_add(src_ip, dst_ip, seg_len));
}

#endif /* WP_DP_NET_CKSUM_H */
