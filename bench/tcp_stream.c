/*
 * What our TCP stack costs a byte of a bulk stream, both ends in one
 * process: stack A sends, stack B receives (the app takes every byte
 * where it lies, as the tunnel's TLS does), their segments cross a
 * loss-free in-memory link of 2 KiB packet buffers recycled first in,
 * first out (8 MiB of them, as a NIC's ring of mbufs is not in the cache
 * when it comes round again). Each burst of segments is handed to the
 * receiver at once and flushed (receive coalescing on, as in the worker).
 * Two ways in the same run: checksums in software (memif, net_pcap, a TAP
 * without offloads: the stack sums each segment it sends and verifies each
 * it receives) and checksums left to a device (the stack writes the
 * pseudo-header sum and takes segments as verified), the floor for
 * everything else the stack does.
 *
 *   build/bench/tcp_stream [MIB [MSS]]
 *
 * MIB per round (default 256), MSS (default 1448). The two ways take turns
 * over 8 rounds; each one's best round counts. Prints TSC cycles per byte
 * of the stream for both stacks together, the software way's excess over
 * the device's, and one JSON line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <x86intrin.h>

#include "tcp.h"
#include "wp/counters.h"

#define NPKT   4096u /* 2 KiB each: 8 MiB */
#define PKTBUF 2048u
#define ROUNDS 8
#define PORT   5000

struct pkt {
	uint32_t src, dst;
	uint16_t len;
	uint8_t to; /* 0: stack A, 1: stack B */
};

static struct {
	uint8_t *buf;              /* NPKT x PKTBUF */
	struct pkt meta[NPKT];     /* per buffer */
	uint32_t fifo[NPKT];       /* free buffers, oldest first */
	uint32_t free_head, nfree; /* in fifo */
	uint32_t q[2][NPKT], nq[2];
	uint32_t ip[2];
	struct wp_tcp_stack *st[2];
	uint64_t ctr[2][WP_CTR_MAX];
	uint64_t now;
	bool device; /* checksums left to a device */
	struct wp_tcp_conn *tx, *rx;
	uint64_t got, sent, want, stream, bad;
	const uint8_t *pattern;
	size_t pattern_len;
} L;

static uint8_t *link_alloc(void *arg, uint16_t len, void **h)
{
	uint32_t i;

	(void)arg;
	if (L.nfree == 0 || len > PKTBUF)
		return NULL;
	i = L.fifo[L.free_head];
	L.free_head = (L.free_head + 1) % NPKT;
	L.nfree--;
	*h = &L.meta[i];
	return L.buf + (size_t)i * PKTBUF;
}

static void link_free(uint32_t i)
{
	L.fifo[(L.free_head + L.nfree) % NPKT] = i;
	L.nfree++;
}

static void link_send(void *arg, void *h, uint32_t src, uint32_t dst, uint16_t len,
                      uint16_t tso_segsz)
{
	struct pkt *p = h;
	uint32_t i = (uint32_t)(p - L.meta);

	(void)arg;
	(void)tso_segsz;
	p->src = src;
	p->dst = dst;
	p->len = len;
	p->to = dst == L.ip[0] ? 0 : 1;
	L.q[p->to][L.nq[p->to]++] = i;
}

static const struct wp_tcp_io_ops link_ops = {link_alloc, link_send, NULL};

static void fill(void)
{
	while (L.tx && L.sent < L.want) {
		size_t off = L.sent % L.pattern_len;
		size_t n = L.pattern_len - off;
		ssize_t k;

		if (n > L.want - L.sent)
			n = L.want - L.sent;
		k = wp_tcp_send(L.tx, L.pattern + off, n);
		if (k <= 0)
			return;
		L.sent += (uint64_t)k;
	}
}

/* Takes every byte; checks the first of each chunk against the pattern. */
static size_t on_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	(void)c;
	(void)arg;
	if (len && d[0] != L.pattern[L.stream % L.pattern_len])
		L.bad++;
	L.stream += len;
	L.got += len;
	return len;
}

static void on_writable(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	fill();
}

static void on_connected(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
}

static const struct wp_tcp_callbacks cbs = {
        .connected = on_connected, .data = on_data, .writable = on_writable};

static int on_accept(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	L.rx = c;
	wp_tcp_conn_set_callbacks(c, &cbs, NULL);
	return 0;
}

/* Hands each stack the burst queued for it, then flushes and runs timers. */
static void deliver(void)
{
	for (int to = 0; to < 2; to++) {
		uint32_t n = L.nq[to], burst[NPKT];

		if (n == 0)
			continue;
		memcpy(burst, L.q[to], n * sizeof(burst[0]));
		L.nq[to] = 0;
		for (uint32_t k = 0; k < n; k++) {
			const struct pkt *p = &L.meta[burst[k]];
			const uint8_t *seg = L.buf + (size_t)burst[k] * PKTBUF;

			if (L.device)
				(void)wp_tcp_input_verified(L.st[to], p->src, p->dst, seg, p->len,
				                            L.now);
			else
				(void)wp_tcp_input(L.st[to], p->src, p->dst, seg, p->len, L.now);
			link_free(burst[k]);
		}
		wp_tcp_rx_flush(L.st[to], L.now);
	}
	L.now += 10;
	wp_tcp_timers(L.st[0], L.now);
	wp_tcp_timers(L.st[1], L.now);
}

static int setup(bool device, uint16_t mss)
{
	struct wp_tcp_config cfg;

	L.device = device;
	L.nq[0] = L.nq[1] = 0;
	L.free_head = 0;
	L.nfree = NPKT;
	for (uint32_t i = 0; i < NPKT; i++)
		L.fifo[i] = i;
	for (int i = 0; i < 2; i++) {
		wp_tcp_config_default(&cfg);
		cfg.local_ip = L.ip[i];
		cfg.seed = (uint64_t)i + 1;
		cfg.mss = mss;
		cfg.max_conns = 16;
		cfg.rcv_buf = cfg.snd_buf = 256 * 1024;
		cfg.rx_coalesce = true;
		cfg.tx_cksum_offload = device;
		L.st[i] = wp_tcp_stack_create(&cfg, &link_ops, L.ctr[i]);
		if (L.st[i] == NULL)
			return -1;
	}
	L.tx = L.rx = NULL;
	L.sent = L.stream = L.bad = 0;
	if (wp_tcp_listen(L.st[1], PORT, on_accept, NULL) != 0 ||
	    wp_tcp_connect(L.st[0], L.ip[1], PORT, 0, &cbs, NULL, &L.tx) != 0)
		return -1;
	for (int i = 0; i < 100 && L.rx == NULL; i++)
		deliver();
	for (int i = 0; i < 100; i++)
		deliver();
	return L.rx ? 0 : -1;
}

/* One round of <bytes>: TSC cycles, or 0 if the stream stalled. */
static uint64_t round_once(uint64_t bytes)
{
	uint64_t t0, t;

	L.want = L.sent + bytes;
	L.got = 0;
	t0 = __rdtsc();
	fill();
	for (uint64_t guard = 0; L.got < bytes; guard++) {
		if (guard > bytes) /* (a round takes far fewer turns than bytes) */
			return 0;
		deliver();
		fill();
	}
	t = __rdtsc() - t0;
	return t;
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 256;
	unsigned long mss = argc > 2 ? strtoul(argv[2], NULL, 10) : 1448;
	uint64_t best[2] = {UINT64_MAX, UINT64_MAX}, bytes = mib << 20;
	static uint8_t pattern[1 << 20];
	double cpb[2];

	if (argc > 3 || mib == 0 || mss < 536 || mss > 1460) {
		fprintf(stderr, "usage: tcp_stream [MIB [MSS]] (MIB > 0, MSS 536-1460)\n");
		return 2;
	}
	L.buf = aligned_alloc(64, (size_t)NPKT * PKTBUF);
	if (L.buf == NULL)
		return 1;
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 31 + (i >> 10));
	L.pattern = pattern;
	L.pattern_len = sizeof(pattern);
	L.ip[0] = htonl(0x0a000001);
	L.ip[1] = htonl(0x0a000002);
	for (int r = 0; r < ROUNDS; r++)
		for (int turn = 0; turn < 2; turn++) {
			int way = (turn + r) & 1; /* who goes first alternates */
			uint64_t t;

			if (setup(way == 1, (uint16_t)mss) != 0) {
				fprintf(stderr, "tcp_stream: the connection did not open\n");
				return 1;
			}
			t = round_once(bytes);
			wp_tcp_stack_destroy(L.st[0]);
			wp_tcp_stack_destroy(L.st[1]);
			if (t == 0 || L.bad) {
				fprintf(stderr, "tcp_stream: the stream %s\n",
				        t == 0 ? "stalled" : "arrived with other bytes");
				return 1;
			}
			if (t < best[way])
				best[way] = t;
		}
	for (int way = 0; way < 2; way++)
		cpb[way] = (double)best[way] / (double)bytes;
	printf("tcp_stream: MSS %lu, both stacks: checksums in software %.3f TSC cycles per "
	       "byte, left to a device %.3f (software's excess %.3f, ratio %.2f)\n",
	       mss, cpb[0], cpb[1], cpb[0] - cpb[1], cpb[0] / cpb[1]);
	printf("{\"bench\": \"tcp_stream\", \"mss\": %lu, \"software_cpb\": %.4f, \"device_cpb\": "
	       "%.4f, \"excess_cpb\": %.4f, \"ratio\": %.3f}\n",
	       mss, cpb[0], cpb[1], cpb[0] - cpb[1], cpb[0] / cpb[1]);
	free(L.buf);
	return 0;
}
