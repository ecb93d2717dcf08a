/*
 * What checksumming a TCP segment in software costs a byte on the way out,
 * when the device does not offload it (memif, net_pcap, TAP without
 * offloads): the payload copied out of the send ring into a packet buffer
 * and summed as it is copied (wp_cksum_copy, what the stack does) against
 * copied and then summed over the copy (memcpy, then wp_cksum_add; what
 * it did before) in the same run. 1,448-byte payloads (an MTU 1500
 * segment with timestamps) from a 1 MiB ring into a pool of 2 KiB buffers
 * used in turn, as mbufs are; a small pool keeps the buffers in the cache,
 * a large one does not.
 *
 *   build/bench/tcp_cksum [SEGMENTS [POOL]]
 *
 * SEGMENTS per round (default 20,000), POOL buffers (default 8,192; 0:
 * both 16 and 8,192). The two ways take turns over 20 rounds; each one's
 * best round counts. Prints TSC cycles per byte and their ratio, and one
 * JSON line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <x86intrin.h>

#include "cksum.h"

#define RING     (1u << 20)
#define BUF      2048u
#define HEADROOM 66u /* Ethernet, IPv4 and TCP with timestamps */
#define PAYLOAD  1448u
#define ROUNDS   20

/* One round of <n> segments one way; returns TSC cycles, adds the folded
 * checksums to *check (the two ways must agree). */
static uint64_t round_once(int fused, const uint8_t *ring, uint8_t *pool, uint32_t pool_n,
                           uint32_t n, uint64_t *check)
{
	uint64_t t0 = __rdtsc(), acc = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint8_t *dst = pool + (size_t)(i % pool_n) * BUF + HEADROOM;
		const uint8_t *src = ring + ((uint64_t)i * PAYLOAD) % (RING - BUF);

		if (fused) {
			acc += wp_cksum_fold(wp_cksum_copy(0, dst, src, PAYLOAD));
		} else {
			memcpy(dst, src, PAYLOAD);
			acc += wp_cksum_fold(wp_cksum_add(0, dst, PAYLOAD));
		}
	}
	*check += acc;
	return __rdtsc() - t0;
}

static int run(uint32_t n, uint32_t pool_n, const uint8_t *ring)
{
	uint8_t *pool = aligned_alloc(64, (size_t)pool_n * BUF);
	uint64_t best[2] = {UINT64_MAX, UINT64_MAX}, check[2] = {0, 0};
	double cpb[2];

	if (pool == NULL) {
		fprintf(stderr, "tcp_cksum: no memory for %u buffers\n", pool_n);
		return 1;
	}
	memset(pool, 0x5a, (size_t)pool_n * BUF);
	for (int r = 0; r < ROUNDS; r++)
		for (int turn = 0; turn < 2; turn++) {
			int way = (turn + r) & 1; /* who goes first alternates */
			uint64_t t = round_once(way, ring, pool, pool_n, n, &check[way]);

			if (t < best[way])
				best[way] = t;
		}
	free(pool);
	if (check[0] != check[1]) {
		fprintf(stderr, "tcp_cksum: the two ways' checksums differ\n");
		return 1;
	}
	for (int way = 0; way < 2; way++)
		cpb[way] = (double)best[way] / ((double)n * PAYLOAD);
	printf("tcp_cksum: %u buffers, %u-byte payloads: copy then sum %.3f TSC cycles per byte, "
	       "summed as copied %.3f (ratio %.2f)\n",
	       pool_n, PAYLOAD, cpb[0], cpb[1], cpb[1] / cpb[0]);
	printf("{\"bench\": \"tcp_cksum\", \"pool\": %u, \"payload\": %u, \"copy_then_sum_cpb\": "
	       "%.4f, \"summed_as_copied_cpb\": %.4f, \"ratio\": %.3f}\n",
	       pool_n, PAYLOAD, cpb[0], cpb[1], cpb[1] / cpb[0]);
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 20000;
	uint32_t pool_n = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 8192;
	uint8_t *ring = aligned_alloc(64, RING);
	uint32_t x = 1;
	int rc = 0;

	if (ring == NULL || n == 0 || argc > 3) {
		fprintf(stderr, "usage: tcp_cksum [SEGMENTS [POOL]] (SEGMENTS > 0)\n");
		return 2;
	}
	for (uint32_t i = 0; i < RING; i++) {
		x = x * 1103515245u + 12345u;
		ring[i] = (uint8_t)(x >> 16);
	}
	if (pool_n == 0)
		rc = run(n, 16, ring) || run(n, 8192, ring);
	else
		rc = run(n, pool_n, ring);
	free(ring);
	return rc;
}
