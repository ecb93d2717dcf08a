/*
 * libFuzzer driver for the TCP stack (dp/net/tcp): the input is a script of
 * records <op:1><len:2 BE><bytes:len>. Ops feed a segment as-is or with its
 * checksum fixed (so the fuzzer gets past verification into the state
 * machine; with the op's top bit set, in three buffers, as LRO hands a
 * segment over: wp_tcp_input_pieces), advance the clock and run timers, or
 * act as the app on the most recent connection (send, shutdown, close,
 * abort, resume). Every segment is copied into a heap buffer of its exact
 * length so ASan catches over-reads. One stack per input (deterministic;
 * odd-sized inputs with segmentation offload, sizes 2 and 3 mod 4 with
 * receive coalescing, the segments between two clock steps being one
 * burst); every segment sent must fit the MSS, or be one for the device to
 * cut into pieces that do; after the script the clock runs far ahead and
 * every control block, buffer and TIME_WAIT entry must be gone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "tcp.h"
#include "tcp_diag.h"
#include "wp/counters.h"

static uint8_t txbuf[70000];
static struct wp_tcp_conn *cur;

/* The checksummed segment <seg> (header of <doff> bytes) as an LRO chain
 * hands it over (wp_tcp_input_pieces): the header and a third of the
 * payload, then two pieces, each its own heap copy of exactly its size. */
static void input_pieces(struct wp_tcp_stack *st, uint32_t peer, uint32_t us, const uint8_t *seg,
                         uint16_t len, unsigned doff, uint64_t now)
{
	uint32_t pay = len - doff, a = pay / 3, b = pay / 3, c = pay - a - b;
	struct wp_tcp_piece more[2];
	uint8_t *p1 = malloc(b ? b : 1), *p2 = malloc(c ? c : 1);

	if (!p1 || !p2)
		abort();
	memcpy(p1, seg + doff + a, b);
	memcpy(p2, seg + doff + a + b, c);
	more[0] = (struct wp_tcp_piece){.p = p1, .len = b};
	more[1] = (struct wp_tcp_piece){.p = p2, .len = c};
	wp_tcp_input_pieces(st, peer, us, seg, (uint16_t)(doff + a), more, 2, now);
	free(p1);
	free(p2);
}

static uint8_t *f_alloc(void *arg, uint16_t len, void **h)
{
	(void)arg;
	(void)len;
	*h = txbuf;
	return txbuf;
}

static uint16_t mss_now, tso_mss_now; /* the stack's, this input */

/* Every segment sent: a TCP header at least; options and payload within the
 * MSS; one for the device to cut (TSO) longer than a piece, its pieces
 * with their options within tso_mss. */
static void f_send(void *arg, void *h, uint32_t s, uint32_t d, uint16_t len, uint16_t tso_segsz)
{
	unsigned doff = (unsigned)(txbuf[12] >> 4) * 4u;

	(void)arg;
	(void)h;
	(void)s;
	(void)d;
	if (len < 20 || doff < 20 || doff > len)
		abort();
	if (tso_segsz == 0 && len - 20u > mss_now)
		abort();
	if (tso_segsz &&
	    (tso_mss_now == 0 || len - doff <= tso_segsz || tso_segsz + (doff - 20u) > tso_mss_now))
		abort();
}

static size_t f_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	(void)c;
	(void)arg;
	(void)d;
	return len / 2 + (len & 1);
}

static void f_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	(void)arg;
	(void)why;
	if (c == cur)
		cur = NULL;
}

static const struct wp_tcp_callbacks f_cbs = {.data = f_data, .closed = f_closed};

static int f_accept(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	wp_tcp_conn_set_callbacks(c, &f_cbs, NULL);
	if (cur)
		wp_tcp_close(cur);
	cur = c;
	return 0;
}

static uint16_t cksum(uint32_t src, uint32_t dst, const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	const uint8_t *a = (const uint8_t *)&src, *b = (const uint8_t *)&dst;
	sum += (uint32_t)(a[0] << 8 | a[1]) + (uint32_t)(a[2] << 8 | a[3]);
	sum += (uint32_t)(b[0] << 8 | b[1]) + (uint32_t)(b[2] << 8 | b[3]);
	sum += 6 + (uint32_t)len;
	for (size_t i = 0; i < len; i++)
		sum += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t ctr[WP_CTR_MAX];
	static const struct wp_tcp_io_ops ops = {.tx_alloc = f_alloc, .tx_send = f_send};
	struct wp_tcp_config cfg;
	wp_tcp_config_default(&cfg);
	cfg.local_ip = htonl(0x0a000001);
	cfg.max_conns = 8;
	cfg.syn_backlog = 2;
	cfg.accept_backlog = 2;
	cfg.time_wait_max = 4;
	cfg.rcv_buf = 4096;
	cfg.snd_buf = 4096;
	cfg.max_ooo_ranges = 4;
	cfg.keepalive_idle_ms = 2000;
	cfg.seed = 1;
	if (size & 1) { /* odd-sized inputs run with segmentation offload */
		cfg.tso_max = 8000;
		cfg.tso_mss = (uint16_t)(cfg.mss - 14);
	}
	cfg.rx_coalesce = (size & 2) != 0;
	mss_now = cfg.mss;
	tso_mss_now = cfg.tso_mss;
	struct wp_tcp_stack *st = wp_tcp_stack_create(&cfg, &ops, ctr);
	if (!st)
		abort();
	cur = NULL;
	wp_tcp_listen(st, 80, f_accept, NULL);
	struct wp_tcp_diag *diag = wp_tcp_diag_listen(st, 7, 9, 19, 2);
	uint32_t us = htonl(0x0a000001), peer = htonl(0x0a000002);
	uint64_t now = 1000000;
	struct wp_tcp_conn *mine = NULL;
	(void)wp_tcp_connect(st, peer, 443, 40000, &f_cbs, NULL, &mine);
	if (mine)
		cur = mine;

	size_t i = 0;
	while (i + 3 <= size) {
		uint8_t op = data[i];
		uint16_t len = (uint16_t)(data[i + 1] << 8 | data[i + 2]);
		i += 3;
		if (len > size - i)
			len = (uint16_t)(size - i);
		const uint8_t *arg = data + i;
		i += len;
		switch (op % 8) {
		case 0:
		case 1: {
			uint8_t *seg = malloc(len ? len : 1);
			memcpy(seg, arg, len);
			if (op % 8 == 1 && len >= 20) {
				seg[16] = seg[17] = 0;
				uint16_t c = cksum(peer, us, seg, len);
				seg[16] = (uint8_t)(c >> 8);
				seg[17] = (uint8_t)c;
			}
			unsigned doff = len >= 20 ? (unsigned)(seg[12] >> 4) * 4 : len + 1u;
			if (op % 8 == 1 && (op & 0x80) && doff >= 20 && doff <= len)
				input_pieces(st, peer, us, seg, len, doff, now);
			else
				wp_tcp_input(st, peer, us, seg, len, now);
			free(seg);
			break;
		}
		case 2:
			wp_tcp_rx_flush(st, now); /* the burst ends before the clock moves */
			now += (uint64_t)(len ? arg[0] : 1) * 7919;
			wp_tcp_timers(st, now);
			break;
		case 3:
			if (cur)
				(void)wp_tcp_send(cur, arg, len);
			break;
		case 4:
			if (cur)
				(void)wp_tcp_shutdown(cur);
			break;
		case 5:
			if (cur) {
				wp_tcp_close(cur);
				cur = NULL;
			}
			break;
		case 6:
			if (cur) {
				wp_tcp_abort(cur);
				cur = NULL;
			}
			break;
		case 7:
			if (cur)
				wp_tcp_recv_resume(cur);
			wp_tcp_accept_resume(st, 80);
			break;
		}
	}
	/* Everything must drain: close what the app holds, then let time pass. */
	wp_tcp_rx_flush(st, now);
	if (cur)
		wp_tcp_abort(cur);
	cur = NULL;
	for (int k = 0; k < 200; k++) {
		now += 1000000;
		wp_tcp_timers(st, now);
	}
	wp_tcp_diag_destroy(diag);
	wp_tcp_unlisten(st, 80);
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(st, &g);
	if (g.conns || g.time_wait || g.rcv_bufs || g.snd_bufs || g.syn_queue || g.accept_queue)
		abort();
	wp_tcp_stack_destroy(st);
	return 0;
}
