/*
 * Two TCP stacks wired back to back through a simulated link (delay, seeded
 * random loss, duplication and reordering), using only the public API of
 * dp/net/tcp. This is the end-to-end evidence for the stack: bulk transfers
 * both ways verified byte by byte under loss, 100k short connections that
 * must leave no control block behind, and the diagnostic services
 * (echo with backpressure, discard, source).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "tcp.h"
#include "tcp_diag.h"
#include "wp/counters.h"

/* ---- the simulated link ---- */

#define NPKT 16384

struct pkt {
	uint64_t at, order;
	uint32_t src, dst;
	uint16_t len;
	uint8_t data[1600];
};

struct node {
	struct wp_tcp_stack *st;
	uint64_t ctr[WP_CTR_MAX];
	uint32_t ip;
};

static struct {
	struct pkt *pool;
	uint32_t free[NPKT], nfree;
	uint32_t heap[NPKT], nheap;
	uint64_t now, order, rng;
	uint32_t loss_ppm, dup_ppm, reorder_ppm, delay_us, jitter_us;
	uint64_t sent, dropped, duplicated, reordered, alloc_fail;
	struct node n[2];
} L;

static uint32_t rnd(void)
{
	L.rng ^= L.rng << 13;
	L.rng ^= L.rng >> 7;
	L.rng ^= L.rng << 17;
	return (uint32_t)(L.rng >> 16);
}

static bool pkt_before(uint32_t a, uint32_t b)
{
	const struct pkt *x = &L.pool[a], *y = &L.pool[b];
	return x->at < y->at || (x->at == y->at && x->order < y->order);
}

static void heap_push(uint32_t i)
{
	uint32_t k = L.nheap++;
	L.heap[k] = i;
	while (k && pkt_before(L.heap[k], L.heap[(k - 1) / 2])) {
		uint32_t p = (k - 1) / 2, t = L.heap[p];
		L.heap[p] = L.heap[k];
		L.heap[k] = t;
		k = p;
	}
}

static uint32_t heap_pop(void)
{
	uint32_t top = L.heap[0];
	L.heap[0] = L.heap[--L.nheap];
	uint32_t k = 0;
	for (;;) {
		uint32_t l = 2 * k + 1, r = l + 1, m = k;
		if (l < L.nheap && pkt_before(L.heap[l], L.heap[m]))
			m = l;
		if (r < L.nheap && pkt_before(L.heap[r], L.heap[m]))
			m = r;
		if (m == k)
			break;
		uint32_t t = L.heap[m];
		L.heap[m] = L.heap[k];
		L.heap[k] = t;
		k = m;
	}
	return top;
}

static uint8_t *l_alloc(void *arg, uint16_t len, void **h)
{
	(void)arg;
	if (!L.nfree || len > sizeof(L.pool[0].data)) {
		L.alloc_fail++;
		return NULL;
	}
	uint32_t i = L.free[--L.nfree];
	*h = &L.pool[i];
	return L.pool[i].data;
}

static void schedule(uint32_t i, uint64_t extra)
{
	struct pkt *p = &L.pool[i];
	p->at = L.now + L.delay_us + (L.jitter_us ? rnd() % L.jitter_us : 0) + extra;
	p->order = L.order++;
	heap_push(i);
}

static void l_send(void *arg, void *h, uint32_t src, uint32_t dst, uint16_t len, uint16_t tso_segsz)
{
	(void)arg;
	assert_int_equal(tso_segsz, 0); /* TSO is off here */
	struct pkt *p = h;
	uint32_t i = (uint32_t)(p - L.pool);
	p->src = src;
	p->dst = dst;
	p->len = len;
	L.sent++;
	if (rnd() % 1000000 < L.loss_ppm) {
		L.dropped++;
		L.free[L.nfree++] = i;
		return;
	}
	uint64_t extra = 0;
	if (rnd() % 1000000 < L.reorder_ppm) {
		L.reordered++;
		extra = 1000 + rnd() % 3000;
	}
	schedule(i, extra);
	if (rnd() % 1000000 < L.dup_ppm && L.nfree) {
		uint32_t j = L.free[--L.nfree];
		memcpy(&L.pool[j], p, sizeof(*p));
		L.duplicated++;
		schedule(j, rnd() % 2000);
	}
}

static const struct wp_tcp_io_ops link_ops = {.tx_alloc = l_alloc, .tx_send = l_send};

#define IP_A htonl(0xc0a80001)
#define IP_B htonl(0xc0a80002)

static void link_init(uint64_t seed, const struct wp_tcp_config *base)
{
	if (!L.pool)
		L.pool = malloc(sizeof(struct pkt) * NPKT);
	assert_non_null(L.pool);
	for (int i = 0; i < 2; i++)
		wp_tcp_stack_destroy(L.n[i].st);
	struct pkt *pool = L.pool;
	memset(&L, 0, sizeof(L));
	L.pool = pool;
	for (uint32_t i = 0; i < NPKT; i++)
		L.free[L.nfree++] = NPKT - 1 - i;
	L.rng = seed * 0x9e3779b97f4a7c15ull + 1;
	L.now = 1000000;
	L.delay_us = 200;
	L.n[0].ip = IP_A;
	L.n[1].ip = IP_B;
	for (int i = 0; i < 2; i++) {
		struct wp_tcp_config cfg = *base;
		cfg.local_ip = L.n[i].ip;
		cfg.seed = seed * 2 + i + 1;
		L.n[i].st = wp_tcp_stack_create(&cfg, &link_ops, L.n[i].ctr);
		assert_non_null(L.n[i].st);
	}
}

static void link_fini(void)
{
	for (int i = 0; i < 2; i++) {
		wp_tcp_stack_destroy(L.n[i].st);
		L.n[i].st = NULL;
	}
}

/* Runs the link and timers until done() or the simulated deadline. */
static bool run(bool (*done)(void), void (*pump)(void), uint64_t max_us)
{
	uint64_t end = L.now + max_us;
	while (L.now < end) {
		while (L.nheap && L.pool[L.heap[0]].at <= L.now) {
			uint32_t i = heap_pop();
			struct pkt *p = &L.pool[i];
			struct node *to = p->dst == IP_A ? &L.n[0] : &L.n[1];
			wp_tcp_input(to->st, p->src, p->dst, p->data, p->len, L.now);
			L.free[L.nfree++] = i;
		}
		/* what arrived at one instant is one receive burst (rx_coalesce) */
		wp_tcp_rx_flush(L.n[0].st, L.now);
		wp_tcp_rx_flush(L.n[1].st, L.now);
		wp_tcp_timers(L.n[0].st, L.now);
		wp_tcp_timers(L.n[1].st, L.now);
		if (pump)
			pump();
		if (done())
			return true;
		uint64_t next = L.now + 1000;
		if (L.nheap && L.pool[L.heap[0]].at < next)
			next = L.pool[L.heap[0]].at;
		L.now = next > L.now ? next : L.now + 1;
	}
	return done();
}

static bool never(void)
{
	return false;
}

static void base_cfg(struct wp_tcp_config *cfg)
{
	wp_tcp_config_default(cfg);
	cfg->max_conns = 256;
	cfg->rcv_buf = 128 * 1024;
	cfg->snd_buf = 128 * 1024;
	cfg->time_wait_max = 1024;
	cfg->time_wait_us = 500000;
}

static void assert_stack_empty(struct wp_tcp_stack *st)
{
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(st, &g);
	assert_int_equal(g.conns, 0);
	for (int i = 0; i < WP_TCP_STATE_MAX; i++)
		assert_int_equal(g.state[i], 0);
	assert_int_equal(g.time_wait, 0);
	assert_int_equal(g.syn_queue, 0);
	assert_int_equal(g.accept_queue, 0);
	assert_int_equal(g.rcv_bufs, 0);
	assert_int_equal(g.snd_bufs, 0);
}

/* ---- bulk transfer both ways ---- */

struct bulk_end {
	struct wp_tcp_conn *c;
	int dir; /* pattern of what this end sends */
	uint64_t total, sent, rcvd;
	bool eof, closed, connected, bad;
	enum wp_tcp_close_reason why;
};

static struct bulk_end ends[2];

static uint8_t pat(int dir, uint64_t i)
{
	return (uint8_t)(((i * 2654435761u) >> 11) ^ (uint64_t)(dir * 0x5a) ^ (i >> 16));
}

static void bulk_fill(struct bulk_end *e)
{
	uint8_t buf[8192];
	while (e->c && e->sent < e->total) {
		size_t n = (size_t)(e->total - e->sent < sizeof(buf) ? e->total - e->sent
		                                                     : sizeof(buf));
		n = (rnd() % n) + 1; /* odd write sizes */
		for (size_t i = 0; i < n; i++)
			buf[i] = pat(e->dir, e->sent + i);
		ssize_t w = wp_tcp_send(e->c, buf, n);
		assert_true(w >= 0);
		if (!w)
			return;
		e->sent += (uint64_t)w;
	}
	if (e->c && e->sent == e->total)
		assert_int_equal(wp_tcp_shutdown(e->c), 0);
}

static size_t bulk_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	(void)c;
	struct bulk_end *e = arg;
	/* Consume a random share sometimes, to exercise backpressure. */
	size_t n = (rnd() % 8 == 0) ? len / 2 : len;
	for (size_t i = 0; i < n; i++)
		if (d[i] != pat(1 - e->dir, e->rcvd + i))
			e->bad = true;
	e->rcvd += n;
	return n;
}

static void bulk_eof(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	struct bulk_end *e = arg;
	e->eof = true;
}

static void bulk_writable(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	bulk_fill(arg);
}

static void bulk_connected(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	struct bulk_end *e = arg;
	e->connected = true;
	bulk_fill(e);
}

static void bulk_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	(void)c;
	struct bulk_end *e = arg;
	e->closed = true;
	e->why = why;
	e->c = NULL;
}

static const struct wp_tcp_callbacks bulk_cbs = {
        .connected = bulk_connected,
        .data = bulk_data,
        .eof = bulk_eof,
        .writable = bulk_writable,
        .closed = bulk_closed,
};

static int bulk_accept(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	ends[1].c = c;
	ends[1].connected = true;
	wp_tcp_conn_set_callbacks(c, &bulk_cbs, &ends[1]);
	bulk_fill(&ends[1]);
	return 0;
}

static bool bulk_done(void)
{
	return ends[0].closed && ends[1].closed;
}

static void bulk_pump(void)
{
	/* Unconsumed bytes wait in the stack until the app resumes reading. */
	for (int i = 0; i < 2; i++)
		if (ends[i].c)
			wp_tcp_recv_resume(ends[i].c);
}

static void bulk_run(uint64_t seed, uint32_t loss, uint32_t dup, uint32_t reorder,
                     const struct wp_tcp_config *cfg, uint64_t bytes)
{
	link_init(seed, cfg);
	L.loss_ppm = loss;
	L.dup_ppm = dup;
	L.reorder_ppm = reorder;
	L.jitter_us = 100;
	memset(ends, 0, sizeof(ends));
	ends[0].dir = 0;
	ends[1].dir = 1;
	ends[0].total = ends[1].total = bytes;
	assert_int_equal(wp_tcp_listen(L.n[1].st, 5000, bulk_accept, NULL), 0);
	assert_int_equal(wp_tcp_connect(L.n[0].st, IP_B, 5000, 0, &bulk_cbs, &ends[0], &ends[0].c),
	                 0);
	bool ok = run(bulk_done, bulk_pump, 600ull * 1000000);
	print_message(
	        "seed %llu loss %u dup %u reorder %u: %s in %.3f s simulated; sent %llu "
	        "dropped %llu dup %llu reord %llu; retrans A %llu B %llu, fast A %llu B %llu, "
	        "rto A %llu B %llu\n",
	        (unsigned long long)seed, loss, dup, reorder, ok ? "done" : "TIMEOUT",
	        (L.now - 1000000) / 1e6, (unsigned long long)L.sent, (unsigned long long)L.dropped,
	        (unsigned long long)L.duplicated, (unsigned long long)L.reordered,
	        (unsigned long long)L.n[0].ctr[WP_CTR_TCP_RETRANSMIT],
	        (unsigned long long)L.n[1].ctr[WP_CTR_TCP_RETRANSMIT],
	        (unsigned long long)L.n[0].ctr[WP_CTR_TCP_FAST_RETRANSMIT],
	        (unsigned long long)L.n[1].ctr[WP_CTR_TCP_FAST_RETRANSMIT],
	        (unsigned long long)L.n[0].ctr[WP_CTR_TCP_RTO_TIMEOUT],
	        (unsigned long long)L.n[1].ctr[WP_CTR_TCP_RTO_TIMEOUT]);
	assert_true(ok);
	for (int i = 0; i < 2; i++) {
		assert_false(ends[i].bad);
		assert_true(ends[i].eof);
		assert_int_equal(ends[i].sent, bytes);
		assert_int_equal(ends[i].rcvd, bytes);
		assert_int_equal(ends[i].why, WP_TCP_CLOSE_NORMAL);
		assert_int_equal(L.n[i].ctr[WP_CTR_TCP_BAD_CHECKSUM], 0);
	}
	if (loss)
		assert_true(L.n[0].ctr[WP_CTR_TCP_RETRANSMIT] + L.n[1].ctr[WP_CTR_TCP_RETRANSMIT] >
		            0);
	/* After TIME_WAIT nothing is left on either side. */
	run(never, NULL, cfg->time_wait_us + 10000);
	wp_tcp_unlisten(L.n[1].st, 5000);
	assert_stack_empty(L.n[0].st);
	assert_stack_empty(L.n[1].st);
	link_fini();
}

static void test_loopback_clean(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	base_cfg(&cfg);
	bulk_run(1, 0, 0, 0, &cfg, 4u << 20);
}

static void test_loopback_lossy_sack(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	base_cfg(&cfg);
	bulk_run(7, 20000, 10000, 20000, &cfg, 3u << 20);
	bulk_run(8, 50000, 20000, 50000, &cfg, 1u << 20);
}

/* Receive coalescing: segments that arrive together are read and ACKed once. */
static void test_loopback_coalesced(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	base_cfg(&cfg);
	cfg.rx_coalesce = true;
	bulk_run(3, 0, 0, 0, &cfg, 4u << 20);
	assert_true(L.n[1].ctr[WP_CTR_TCP_RX_COALESCED] > 0);
	bulk_run(9, 20000, 10000, 20000, &cfg, 3u << 20);
	cfg.sack = false;
	bulk_run(10, 20000, 10000, 20000, &cfg, 1u << 20);
}

static void test_loopback_lossy_newreno(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	base_cfg(&cfg);
	cfg.sack = false;
	cfg.timestamps = false;
	cfg.window_scaling = false;
	cfg.rcv_buf = 32768;
	cfg.mss = 536;
	bulk_run(11, 20000, 10000, 20000, &cfg, 1u << 20);
}

/* ---- 100k short connections ---- */

#define SHORT_TOTAL    100000
#define SHORT_INFLIGHT 64

static struct {
	uint32_t started, finished_client, finished_server, bad;
} S;

static size_t short_srv_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	(void)c;
	(void)arg;
	if (len != 5 || memcmp(d, "ping\n", 5))
		S.bad++;
	return len;
}

static void short_srv_eof(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	ssize_t n = wp_tcp_send(c, "pong\n", 5);
	if (n != 5)
		S.bad++;
	S.finished_server++;
	wp_tcp_close(c);
}

static void short_closed_bad(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	(void)c;
	(void)arg;
	(void)why;
	S.bad++;
}

static const struct wp_tcp_callbacks short_srv_cbs = {
        .data = short_srv_data,
        .eof = short_srv_eof,
        .closed = short_closed_bad,
};

static int short_accept(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	wp_tcp_conn_set_callbacks(c, &short_srv_cbs, NULL);
	return 0;
}

static void short_cli_connected(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	if (wp_tcp_send(c, "ping\n", 5) != 5)
		S.bad++;
	wp_tcp_shutdown(c);
}

static size_t short_cli_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	(void)c;
	(void)arg;
	if (len != 5 || memcmp(d, "pong\n", 5))
		S.bad++;
	return len;
}

static void short_cli_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	(void)c;
	(void)arg;
	if (why != WP_TCP_CLOSE_NORMAL)
		S.bad++;
	S.finished_client++;
}

static const struct wp_tcp_callbacks short_cli_cbs = {
        .connected = short_cli_connected,
        .data = short_cli_data,
        .closed = short_cli_closed,
};

static void short_pump(void)
{
	while (S.started < SHORT_TOTAL && S.started - S.finished_client < SHORT_INFLIGHT) {
		struct wp_tcp_conn *c;
		int rc = wp_tcp_connect(L.n[0].st, IP_B, 6000, 0, &short_cli_cbs, NULL, &c);
		if (rc < 0)
			return; /* ports or blocks busy: next round */
		S.started++;
	}
}

static bool short_done(void)
{
	return S.finished_client == SHORT_TOTAL;
}

static void test_100k_short_connections(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	base_cfg(&cfg);
	cfg.rcv_buf = 4096;
	cfg.snd_buf = 4096;
	cfg.time_wait_max = 2048;
	cfg.time_wait_us = 200000;
	link_init(3, &cfg);
	L.loss_ppm = 1000; /* a little loss so the retransmit paths run too */
	memset(&S, 0, sizeof(S));
	assert_int_equal(wp_tcp_listen(L.n[1].st, 6000, short_accept, NULL), 0);
	bool ok = run(short_done, short_pump, 3600ull * 1000000);
	print_message("100k: %u started, %u client done, %u server done, %.3f s simulated, "
	              "TW recycled %llu, retrans %llu/%llu\n",
	              S.started, S.finished_client, S.finished_server, (L.now - 1000000) / 1e6,
	              (unsigned long long)L.n[0].ctr[WP_CTR_TCP_TIME_WAIT_RECYCLED],
	              (unsigned long long)L.n[0].ctr[WP_CTR_TCP_RETRANSMIT],
	              (unsigned long long)L.n[1].ctr[WP_CTR_TCP_RETRANSMIT]);
	assert_true(ok);
	assert_int_equal(S.bad, 0);
	assert_int_equal(S.finished_server, SHORT_TOTAL);
	/* Let the server's FIN_WAIT_2 / TIME_WAIT and stray retransmits settle. */
	run(never, NULL, 2ull * 1000000);
	wp_tcp_unlisten(L.n[1].st, 6000);
	assert_stack_empty(L.n[0].st);
	assert_stack_empty(L.n[1].st);
	link_fini();
}

/* ---- diagnostic services ---- */

static struct {
	struct wp_tcp_conn *c;
	uint64_t rcvd, want;
	bool eof, closed, bad, slow;
	enum wp_tcp_close_reason why;
	const char *req;
	uint64_t sent, total;
} D;

static void diag_fill(void)
{
	uint8_t buf[4096];
	while (D.c && D.sent < D.total) {
		size_t n = (size_t)WP_MIN((uint64_t)sizeof(buf), D.total - D.sent);
		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)((D.sent + i) * 7);
		ssize_t w = wp_tcp_send(D.c, buf, n);
		if (w <= 0)
			return;
		D.sent += (uint64_t)w;
	}
	if (D.c && D.total && D.sent == D.total)
		wp_tcp_shutdown(D.c);
}

static void diag_connected(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	if (D.req) {
		wp_tcp_send(c, D.req, strlen(D.req));
		wp_tcp_shutdown(c);
	}
	diag_fill();
}

static size_t diag_data_echo(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	(void)c;
	(void)arg;
	if (D.slow && len > 1000)
		len = 1000; /* a slow reader: the echo server must hold back */
	for (size_t i = 0; i < len; i++)
		if (d[i] != (uint8_t)((D.rcvd + i) * 7))
			D.bad = true;
	D.rcvd += len;
	return len;
}

static size_t diag_data_source(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	(void)c;
	(void)arg;
	for (size_t i = 0; i < len; i++)
		if (d[i] != wp_tcp_diag_pattern(D.rcvd + i))
			D.bad = true;
	D.rcvd += len;
	return len;
}

static void diag_eof(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	D.eof = true;
}

static void diag_writable(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	diag_fill();
}

static void diag_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	(void)c;
	(void)arg;
	D.closed = true;
	D.why = why;
	D.c = NULL;
}

static struct wp_tcp_callbacks diag_cbs = {
        .connected = diag_connected,
        .eof = diag_eof,
        .writable = diag_writable,
        .closed = diag_closed,
};

static bool diag_done(void)
{
	return D.closed;
}

static void diag_pump(void)
{
	if (D.c)
		wp_tcp_recv_resume(D.c);
}

static void diag_session(uint16_t port, const char *req, uint64_t total, bool slow,
                         wp_tcp_data_cb data)
{
	memset(&D, 0, sizeof(D));
	D.req = req;
	D.total = total;
	D.slow = slow;
	diag_cbs.data = data;
	assert_int_equal(wp_tcp_connect(L.n[0].st, IP_B, port, 0, &diag_cbs, NULL, &D.c), 0);
	bool ok = run(diag_done, diag_pump, 120ull * 1000000);
	if (!ok)
		print_message("diag port %u: sent %llu/%llu rcvd %llu eof %d\n", port,
		              (unsigned long long)D.sent, (unsigned long long)D.total,
		              (unsigned long long)D.rcvd, D.eof);
	assert_true(ok);
	assert_false(D.bad);
}

static void test_diag_services(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	base_cfg(&cfg);
	cfg.rcv_buf = 16384;
	cfg.snd_buf = 16384;
	link_init(5, &cfg);
	L.loss_ppm = 10000;
	struct wp_tcp_diag *d = wp_tcp_diag_listen(L.n[1].st, 7, 9, 19, 4);
	assert_non_null(d);

	/* echo: 1 MiB through a slow reader; every byte comes back in order. */
	diag_session(7, NULL, 1u << 20, true, diag_data_echo);
	assert_true(D.eof);
	assert_int_equal(D.why, WP_TCP_CLOSE_NORMAL);
	assert_int_equal(D.rcvd, 1u << 20);

	/* discard: nothing comes back, the FIN is answered. */
	diag_session(9, NULL, 300000, false, diag_data_echo);
	assert_int_equal(D.rcvd, 0);
	assert_true(D.eof);
	assert_int_equal(D.why, WP_TCP_CLOSE_NORMAL);

	/* source: exactly N pattern bytes, then FIN. */
	diag_session(19, "123457\n", 0, false, diag_data_source);
	assert_int_equal(D.rcvd, 123457);
	assert_true(D.eof);
	assert_int_equal(D.why, WP_TCP_CLOSE_NORMAL);
	diag_session(19, "0\r\n", 0, false, diag_data_source);
	assert_int_equal(D.rcvd, 0);
	assert_true(D.eof);
	/* A malformed request is reset. */
	diag_session(19, "12x\n", 0, false, diag_data_source);
	assert_int_equal(D.why, WP_TCP_CLOSE_RESET);

	run(never, NULL, cfg.time_wait_us + 31ull * 1000000);
	wp_tcp_diag_destroy(d);
	assert_stack_empty(L.n[0].st);
	assert_stack_empty(L.n[1].st);
	link_fini();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_loopback_clean),
	        cmocka_unit_test(test_loopback_lossy_sack),
	        cmocka_unit_test(test_loopback_lossy_newreno),
	        cmocka_unit_test(test_loopback_coalesced),
	        cmocka_unit_test(test_100k_short_connections),
	        cmocka_unit_test(test_diag_services),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(L.pool);
	return rc;
}
