/*
 * The harness of the crafted-segment TCP tests (test_tcp.c,
 * test_tcp_recovery.c): a fake peer builds segments (with its own checksum
 * code) and feeds them to wp_tcp_input(); the I/O ops capture what the
 * stack sends, and app callbacks record what the stack reports.
 * The stack's internal state and its option parser are in tcp_int.h; the
 * pieces are linked from the library. Each test executable includes this once; its functions are
 * static inline, so a file that does not call one gets no unused-function
 * warning.
 */
#ifndef WP_TESTS_UNIT_DP_NET_TCP_TCP_FAKE_PEER_H
#define WP_TESTS_UNIT_DP_NET_TCP_TCP_FAKE_PEER_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "tcp_int.h"

#define MAXCAP 1024

struct cap {
	uint8_t b[2048]; /* the first 2 KiB (a TSO segment's whole is in tso_last) */
	uint16_t len, full_len, tso_segsz;
	uint32_t src, dst;
};

static struct cap caps[MAXCAP];
static unsigned ncap;
static uint8_t scratch[70000];
static uint8_t tso_last[70000]; /* the last segment sent with tso_segsz, whole */
static bool fail_alloc;
static uint16_t fail_alloc_over; /* nonzero: no room for segments longer than this */

static inline uint8_t *t_alloc(void *arg, uint16_t len, void **h)
{
	(void)arg;
	if (fail_alloc || (fail_alloc_over && len > fail_alloc_over))
		return NULL;
	*h = scratch;
	return scratch;
}

static inline void t_send(void *arg, void *h, uint32_t src, uint32_t dst, uint16_t len,
                          uint16_t tso_segsz)
{
	(void)arg;
	assert_ptr_equal(h, scratch);
	assert_true(ncap < MAXCAP);
	struct cap *c = &caps[ncap++];
	c->len = WP_MIN(len, (uint16_t)sizeof(c->b));
	c->full_len = len;
	c->tso_segsz = tso_segsz;
	memcpy(c->b, scratch, c->len);
	if (tso_segsz)
		memcpy(tso_last, scratch, len);
	c->src = src;
	c->dst = dst;
}

/* ---- the fake peer ---- */

#define US_IP   htonl(0x0a000001)
#define PEER_IP htonl(0x0a000002)
#define SPORT   80
#define PPORT   40000

static struct {
	struct wp_tcp_stack *st;
	uint64_t ctr[WP_CTR_MAX];
	uint64_t now;
	struct wp_tcp_conn *conn;
	uint8_t rx[1 << 20];
	size_t rxlen, consume_max;
	int closed, accepted, connected, writable, eof;
	enum wp_tcp_close_reason why;
	int accept_ret;
	/* peer sequence state */
	uint32_t pseq, pack, pts;
	bool use_ts;
	uint16_t pwnd;
	uint16_t pport; /* the peer's port (0: PPORT) */
} F;

static inline uint16_t ref_cksum(uint32_t src, uint32_t dst, const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	uint8_t ph[12];
	memcpy(ph, &src, 4);
	memcpy(ph + 4, &dst, 4);
	ph[8] = 0;
	ph[9] = 6;
	ph[10] = (uint8_t)(len >> 8);
	ph[11] = (uint8_t)len;
	for (int i = 0; i < 12; i += 2)
		sum += (uint32_t)(ph[i] << 8 | ph[i + 1]);
	for (size_t i = 0; i < len; i++)
		sum += (i & 1) ? p[i] : (uint32_t)p[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

struct pkt {
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t wnd;
	const void *data;
	uint16_t len;
	bool ts;
	uint32_t tsval, tsecr;
	bool syn_opts; /* MSS 1460, SACKOK, WS 7 */
	uint8_t nsack;
	uint32_t sack[3][2];
	bool bad_cksum;
	bool verified; /* as a device that checked the checksum hands it over */
	/* with ncut > 0: the payload handed over in ncut + 1 buffers, cut at
	 * these offsets (ascending, the first within the 2 KiB header buffer),
	 * as a device's LRO does (wp_tcp_input_pieces; verified) */
	unsigned ncut;
	uint16_t cut[4];
};

/* wp_tcp_input_pieces for <hdr_len> bytes of header in <b> and p's payload
 * cut at p->cut: the header buffer takes the payload up to the first cut,
 * each further piece is its own heap copy of exactly its size. */
static inline int inject_pieces(const struct pkt *p, uint8_t *b, uint8_t hdr_len)
{
	struct wp_tcp_piece more[4];
	const uint8_t *d = p->data;
	int rc;

	assert_true(p->ncut <= 4 && p->cut[0] <= 2048 - hdr_len);
	memcpy(b + hdr_len, d, p->cut[0]);
	for (unsigned i = 0; i < p->ncut; i++) {
		uint16_t end = i + 1 < p->ncut ? p->cut[i + 1] : p->len;
		uint8_t *c = malloc(end - p->cut[i] ? end - p->cut[i] : 1);

		assert_non_null(c);
		memcpy(c, d + p->cut[i], end - p->cut[i]);
		more[i] = (struct wp_tcp_piece){.p = c, .len = (uint32_t)(end - p->cut[i])};
	}
	rc = wp_tcp_input_pieces(F.st, PEER_IP, US_IP, b, (uint16_t)(hdr_len + p->cut[0]), more,
	                         p->ncut, F.now);
	for (unsigned i = 0; i < p->ncut; i++)
		free((void *)(uintptr_t)more[i].p);
	return rc;
}

static inline int inject(const struct pkt *p)
{
	uint8_t b[2048];
	uint8_t n = 20;
	if (p->syn_opts) {
		b[n++] = 2, b[n++] = 4, b[n++] = 0x05, b[n++] = 0xb4;
		b[n++] = 1, b[n++] = 1, b[n++] = 4, b[n++] = 2;
		b[n++] = 1, b[n++] = 3, b[n++] = 3, b[n++] = 7;
	}
	if (p->ts) {
		b[n++] = 1, b[n++] = 1, b[n++] = 8, b[n++] = 10;
		wr32(b + n, p->tsval);
		wr32(b + n + 4, p->tsecr);
		n += 8;
	}
	if (p->nsack) {
		b[n++] = 1, b[n++] = 1, b[n++] = 5, b[n++] = (uint8_t)(2 + 8 * p->nsack);
		for (int i = 0; i < p->nsack; i++) {
			wr32(b + n, p->sack[i][0]);
			wr32(b + n + 4, p->sack[i][1]);
			n += 8;
		}
	}
	wr16(b, p->sport ? p->sport : F.pport ? F.pport : PPORT);
	wr16(b + 2, p->dport ? p->dport : SPORT);
	wr32(b + 4, p->seq);
	wr32(b + 8, p->ack);
	b[12] = (uint8_t)((n / 4) << 4);
	b[13] = p->flags;
	wr16(b + 14, p->wnd);
	wr16(b + 16, 0);
	wr16(b + 18, 0);
	if (p->ncut)
		return inject_pieces(p, b, n);
	if (p->len)
		memcpy(b + n, p->data, p->len);
	uint16_t ck = ref_cksum(PEER_IP, US_IP, b, n + p->len);
	if (p->bad_cksum)
		ck ^= 0x1234;
	wr16(b + 16, ck);
	if (p->verified)
		return wp_tcp_input_verified(F.st, PEER_IP, US_IP, b, (uint16_t)(n + p->len),
		                             F.now);
	return wp_tcp_input(F.st, PEER_IP, US_IP, b, (uint16_t)(n + p->len), F.now);
}

/* Sends from the peer with its running sequence state. */
static inline void peer(uint8_t flags, const void *data, uint16_t len)
{
	struct pkt p = {.seq = F.pseq,
	                .ack = F.pack,
	                .flags = flags,
	                .wnd = F.pwnd,
	                .data = data,
	                .len = len,
	                .ts = F.use_ts,
	                .tsval = ++F.pts};
	if (ncap && F.use_ts) {
		struct seg s = {0};
		const struct cap *c = &caps[ncap - 1];
		s.flags = c->b[13];
		wp_tcp_parse_opts(c->b + 20, (c->b[12] >> 4) * 4 - 20, &s);
		p.tsecr = s.tsval;
	}
	inject(&p);
	F.pseq += len + !!(flags & TH_FIN);
}

/* Parses captured segment i (negative: from the end). */
static inline struct seg out(int i)
{
	struct seg s = {0};
	assert_true(ncap > 0);
	const struct cap *c = &caps[i < 0 ? (int)ncap + i : i];
	assert_true(c->len >= 20);
	assert_int_equal(ref_cksum(c->src, c->dst, c->b, c->len), 0);
	s.sport = rd16(c->b);
	s.dport = rd16(c->b + 2);
	s.seq = rd32(c->b + 4);
	s.ack = rd32(c->b + 8);
	s.flags = c->b[13];
	s.wnd = rd16(c->b + 14);
	unsigned doff = (c->b[12] >> 4) * 4u;
	wp_tcp_parse_opts(c->b + 20, doff - 20, &s);
	s.data = c->b + doff;
	s.len = c->len - doff;
	return s;
}

static inline void advance(uint64_t us)
{
	uint64_t end = F.now + us;
	while (F.now < end) {
		F.now = WP_MIN(end, F.now + 1000);
		wp_tcp_timers(F.st, F.now);
	}
}

/* ---- app callbacks ---- */

static inline size_t app_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	(void)c;
	(void)arg;
	size_t n = WP_MIN(len, F.consume_max);
	assert_true(F.rxlen + n <= sizeof(F.rx));
	memcpy(F.rx + F.rxlen, d, n);
	F.rxlen += n;
	return n;
}

static inline void app_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	(void)c;
	(void)arg;
	F.closed++;
	F.why = why;
	F.conn = NULL;
}

static inline void app_connected(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	F.connected++;
}

static inline void app_writable(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	F.writable++;
}

static inline void app_eof(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	F.eof++;
}

static const struct wp_tcp_callbacks app_cbs = {
        .connected = app_connected,
        .data = app_data,
        .eof = app_eof,
        .writable = app_writable,
        .closed = app_closed,
};

static inline int app_accept(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	F.accepted++;
	if (F.accept_ret)
		return F.accept_ret;
	F.conn = c;
	wp_tcp_conn_set_callbacks(c, &app_cbs, NULL);
	return 0;
}

static inline void setup_cfg(struct wp_tcp_config *cfg)
{
	wp_tcp_config_default(cfg);
	cfg->local_ip = US_IP;
	cfg->max_conns = 64;
	cfg->rcv_buf = 16384;
	cfg->snd_buf = 65536;
	cfg->seed = 42;
	cfg->time_wait_max = 8;
	cfg->syn_backlog = 8;
	cfg->accept_backlog = 8;
}

static inline void start(const struct wp_tcp_config *cfg)
{
	static const struct wp_tcp_io_ops ops = {.tx_alloc = t_alloc, .tx_send = t_send};
	wp_tcp_stack_destroy(F.st);
	memset(&F, 0, sizeof(F));
	ncap = 0;
	fail_alloc = false;
	fail_alloc_over = 0;
	F.now = 5000000;
	F.consume_max = SIZE_MAX;
	F.pwnd = 65535;
	F.st = wp_tcp_stack_create(cfg, &ops, F.ctr);
	assert_non_null(F.st);
	wp_tcp_timers(F.st, F.now);
	assert_int_equal(wp_tcp_listen(F.st, SPORT, app_accept, NULL), 0);
}

static inline int teardown(void **state)
{
	(void)state;
	wp_tcp_stack_destroy(F.st);
	F.st = NULL;
	return 0;
}

static inline void assert_no_blocks(void)
{
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.conns, 0);
	for (int i = 0; i < WP_TCP_STATE_MAX; i++)
		assert_int_equal(g.state[i], 0);
	assert_int_equal(g.syn_queue, 0);
	assert_int_equal(g.accept_queue, 0);
	assert_int_equal(g.rcv_bufs, 0);
	assert_int_equal(g.snd_bufs, 0);
}

/* Three-way handshake from the peer; leaves F.conn established. */
static inline void open_passive(bool ts)
{
	F.use_ts = ts;
	F.pseq = 1000;
	struct pkt p = {.seq = F.pseq,
	                .flags = TH_SYN,
	                .wnd = 65535,
	                .syn_opts = true,
	                .ts = ts,
	                .tsval = ++F.pts};
	inject(&p);
	F.pseq++;
	struct seg sa = out(-1);
	assert_int_equal(sa.flags, TH_SYN | TH_ACK);
	F.pack = sa.seq + 1;
	peer(TH_ACK, NULL, 0);
	assert_non_null(F.conn);
	assert_int_equal(F.conn->state, WP_TCP_ESTABLISHED);
}

/* A stack of setup_cfg() with <mss>, and an established passive connection. */
static inline void open_with_mss(uint16_t mss)
{
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.mss = mss;
	start(&cfg);
	open_passive(false);
}

#endif
