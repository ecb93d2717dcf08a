/*
 * Unit tests for the TCP stack (dp/net/tcp) driven by crafted
 * segments: a fake peer builds segments (with its own checksum code) and
 * feeds them to wp_tcp_input(); the I/O ops capture what the stack sends,
 * and the tests assert on those segments, the app callbacks, the counters
 * and the gauges. tcp_input.c is included to reach its option parser; the
 * rest of the internal state is in tcp_int.h, and the other pieces are
 * linked from the library.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>

#include "dp/net/tcp/tcp_input.c"

#define MAXCAP 1024

struct cap {
	uint8_t b[2048];
	uint16_t len;
	uint32_t src, dst;
};

static struct cap caps[MAXCAP];
static unsigned ncap;
static uint8_t scratch[70000];
static bool fail_alloc;

static uint8_t *t_alloc(void *arg, uint16_t len, void **h)
{
	(void)arg;
	(void)len;
	if (fail_alloc)
		return NULL;
	*h = scratch;
	return scratch;
}

static void t_send(void *arg, void *h, uint32_t src, uint32_t dst, uint16_t len)
{
	(void)arg;
	assert_ptr_equal(h, scratch);
	assert_true(ncap < MAXCAP);
	struct cap *c = &caps[ncap++];
	c->len = WP_MIN(len, (uint16_t)sizeof(c->b));
	memcpy(c->b, scratch, c->len);
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
} F;

static uint16_t ref_cksum(uint32_t src, uint32_t dst, const uint8_t *p, size_t len)
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
};

static int inject(const struct pkt *p)
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
	wr16(b, p->sport ? p->sport : PPORT);
	wr16(b + 2, p->dport ? p->dport : SPORT);
	wr32(b + 4, p->seq);
	wr32(b + 8, p->ack);
	b[12] = (uint8_t)((n / 4) << 4);
	b[13] = p->flags;
	wr16(b + 14, p->wnd);
	wr16(b + 16, 0);
	wr16(b + 18, 0);
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
static void peer(uint8_t flags, const void *data, uint16_t len)
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
		parse_opts(c->b + 20, (c->b[12] >> 4) * 4 - 20, &s);
		p.tsecr = s.tsval;
	}
	inject(&p);
	F.pseq += len + !!(flags & TH_FIN);
}

/* Parses captured segment i (negative: from the end). */
static struct seg out(int i)
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
	parse_opts(c->b + 20, doff - 20, &s);
	s.data = c->b + doff;
	s.len = c->len - doff;
	return s;
}

static void advance(uint64_t us)
{
	uint64_t end = F.now + us;
	while (F.now < end) {
		F.now = WP_MIN(end, F.now + 1000);
		wp_tcp_timers(F.st, F.now);
	}
}

/* ---- app callbacks ---- */

static size_t app_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	(void)c;
	(void)arg;
	size_t n = WP_MIN(len, F.consume_max);
	assert_true(F.rxlen + n <= sizeof(F.rx));
	memcpy(F.rx + F.rxlen, d, n);
	F.rxlen += n;
	return n;
}

static void app_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	(void)c;
	(void)arg;
	F.closed++;
	F.why = why;
	F.conn = NULL;
}

static void app_connected(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	F.connected++;
}

static void app_writable(struct wp_tcp_conn *c, void *arg)
{
	(void)c;
	(void)arg;
	F.writable++;
}

static void app_eof(struct wp_tcp_conn *c, void *arg)
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

static int app_accept(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	F.accepted++;
	if (F.accept_ret)
		return F.accept_ret;
	F.conn = c;
	wp_tcp_conn_set_callbacks(c, &app_cbs, NULL);
	return 0;
}

static void setup_cfg(struct wp_tcp_config *cfg)
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

static void start(const struct wp_tcp_config *cfg)
{
	static const struct wp_tcp_io_ops ops = {.tx_alloc = t_alloc, .tx_send = t_send};
	wp_tcp_stack_destroy(F.st);
	memset(&F, 0, sizeof(F));
	ncap = 0;
	fail_alloc = false;
	F.now = 5000000;
	F.consume_max = SIZE_MAX;
	F.pwnd = 65535;
	F.st = wp_tcp_stack_create(cfg, &ops, F.ctr);
	assert_non_null(F.st);
	wp_tcp_timers(F.st, F.now);
	assert_int_equal(wp_tcp_listen(F.st, SPORT, app_accept, NULL), 0);
}

static int teardown(void **state)
{
	(void)state;
	wp_tcp_stack_destroy(F.st);
	F.st = NULL;
	return 0;
}

static void assert_no_blocks(void)
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
static void open_passive(bool ts)
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

/* ---- tests ---- */

static void test_passive_handshake(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.mss = 1400; /* the peer's 1460 is clamped */
	start(&cfg);
	F.pts = 777;
	struct pkt p = {.seq = 1000,
	                .flags = TH_SYN,
	                .wnd = 65535,
	                .syn_opts = true,
	                .ts = true,
	                .tsval = 777};
	assert_int_equal(inject(&p), 0);
	assert_int_equal(ncap, 1);
	struct seg sa = out(-1);
	assert_int_equal(sa.flags, TH_SYN | TH_ACK);
	assert_int_equal(sa.ack, 1001);
	assert_int_equal(sa.sport, SPORT);
	assert_int_equal(sa.dport, PPORT);
	assert_true(sa.has_mss);
	assert_int_equal(sa.mss, 1400);
	assert_true(sa.has_ws);
	assert_true(sa.has_sackok);
	assert_true(sa.has_ts);
	assert_int_equal(sa.tsecr, 777);
	assert_int_equal(sa.wnd, 16384); /* SYN window unscaled */
	assert_int_equal(caps[0].src, US_IP);
	assert_int_equal(caps[0].dst, PEER_IP);
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.state[WP_TCP_SYN_RECEIVED], 1);
	assert_int_equal(g.syn_queue, 1);
	assert_int_equal(F.accepted, 0);

	F.use_ts = true;
	F.pseq = 1001;
	F.pack = sa.seq + 1;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(F.accepted, 1);
	assert_non_null(F.conn);
	struct wp_tcp_conn_info info;
	wp_tcp_conn_info(F.conn, &info);
	assert_int_equal(info.state, WP_TCP_ESTABLISHED);
	assert_int_equal(info.mss, 1400);
	assert_true(info.ts_ok && info.sack_ok && info.ws_ok);
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.syn_queue, 0);
	assert_int_equal(g.state[WP_TCP_ESTABLISHED], 1);

	/* Data both ways; the scaled window is applied (peer shift 7). */
	peer(TH_ACK | TH_PSH, "hello", 5);
	assert_int_equal(F.rxlen, 5);
	assert_memory_equal(F.rx, "hello", 5);
	struct seg a = out(-1);
	assert_int_equal(a.ack, 1006); /* PSH on a short segment: ACK at once */
	assert_int_equal(wp_tcp_send(F.conn, "world!", 6), 6);
	struct seg d = out(-1);
	assert_int_equal(d.len, 6);
	assert_memory_equal(d.data, "world!", 6);
	assert_int_equal(d.seq, F.pack);
	assert_true(d.flags & TH_PSH);
	assert_int_equal(F.conn->snd_wnd, 65535u << 7);
	assert_int_equal(F.ctr[WP_CTR_TCP_PASSIVE_OPEN], 1);
}

static void test_active_handshake(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	struct wp_tcp_conn *c = NULL;
	assert_int_equal(wp_tcp_connect(F.st, PEER_IP, 443, 0, &app_cbs, NULL, &c), 0);
	F.conn = c;
	struct seg syn = out(-1);
	assert_int_equal(syn.flags, TH_SYN);
	assert_true(syn.has_mss && syn.has_ws && syn.has_sackok && syn.has_ts);
	assert_int_equal(syn.dport, 443);
	assert_true(syn.sport >= cfg.eph_port_lo && syn.sport <= cfg.eph_port_hi);
	assert_int_equal(c->state, WP_TCP_SYN_SENT);

	/* SYN-ACK with a bad ACK: RST, stay in SYN_SENT. */
	struct pkt bad = {.sport = 443,
	                  .dport = syn.sport,
	                  .seq = 5000,
	                  .ack = syn.seq + 7,
	                  .flags = TH_SYN | TH_ACK,
	                  .wnd = 1000,
	                  .syn_opts = true};
	inject(&bad);
	struct seg r = out(-1);
	assert_int_equal(r.flags, TH_RST);
	assert_int_equal(r.seq, syn.seq + 7);
	assert_int_equal(c->state, WP_TCP_SYN_SENT);

	F.now += 3000;
	struct pkt sa = {.sport = 443,
	                 .dport = syn.sport,
	                 .seq = 5000,
	                 .ack = syn.seq + 1,
	                 .flags = TH_SYN | TH_ACK,
	                 .wnd = 1000,
	                 .syn_opts = true};
	inject(&sa);
	assert_int_equal(F.connected, 1);
	assert_int_equal(c->state, WP_TCP_ESTABLISHED);
	struct seg ack = out(-1);
	assert_int_equal(ack.flags, TH_ACK);
	assert_int_equal(ack.seq, syn.seq + 1);
	assert_int_equal(ack.ack, 5001);
	/* No timestamps in the SYN-ACK: none afterwards; SYN window not scaled. */
	assert_false(ack.has_ts);
	assert_false(c->ts_ok);
	assert_int_equal(c->snd_wnd, 1000);
	assert_int_equal(c->srtt_us, 3000);
}

static void test_simultaneous_open(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	struct wp_tcp_conn *c = NULL;
	assert_int_equal(wp_tcp_connect(F.st, PEER_IP, PPORT, 5555, &app_cbs, NULL, &c), 0);
	struct seg syn = out(-1);
	assert_int_equal(syn.sport, 5555);
	/* The peer's SYN crosses ours. */
	struct pkt ps = {.sport = PPORT,
	                 .dport = 5555,
	                 .seq = 9000,
	                 .flags = TH_SYN,
	                 .wnd = 4000,
	                 .syn_opts = true};
	inject(&ps);
	assert_int_equal(c->state, WP_TCP_SYN_RECEIVED);
	struct seg sa = out(-1);
	assert_int_equal(sa.flags, TH_SYN | TH_ACK);
	assert_int_equal(sa.seq, syn.seq);
	assert_int_equal(sa.ack, 9001);
	/* Then the peer's SYN-ACK for our SYN. */
	struct pkt psa = {.sport = PPORT,
	                  .dport = 5555,
	                  .seq = 9000,
	                  .ack = syn.seq + 1,
	                  .flags = TH_SYN | TH_ACK,
	                  .wnd = 4000,
	                  .syn_opts = true};
	inject(&psa);
	assert_int_equal(c->state, WP_TCP_ESTABLISHED);
	assert_int_equal(F.connected, 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_CHALLENGE_ACK], 0);
}

static void test_simultaneous_close(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(true);
	struct wp_tcp_conn *c = F.conn;
	assert_int_equal(wp_tcp_shutdown(c), 0);
	struct seg fin = out(-1);
	assert_true(fin.flags & TH_FIN);
	assert_int_equal(c->state, WP_TCP_FIN_WAIT_1);
	/* The peer's FIN crosses ours (does not ack it). */
	peer(TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(c->state, WP_TCP_CLOSING);
	struct seg a = out(-1);
	assert_int_equal(a.ack, F.pseq);
	assert_int_equal(F.eof, 1);
	/* Now the ACK of our FIN. */
	F.pack = fin.seq + 1;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(F.closed, 1);
	assert_int_equal(F.why, WP_TCP_CLOSE_NORMAL);
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.time_wait, 1);
	assert_int_equal(g.conns, 0);
	/* A retransmitted FIN in TIME_WAIT is re-acknowledged. */
	unsigned n0 = ncap;
	F.pseq--;
	peer(TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).flags, TH_ACK);
	advance(cfg.time_wait_us + 2000);
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.time_wait, 0);
	assert_no_blocks();
}

/* Brings the connection to <state> with the peer's sequence state in F. */
static uint32_t to_state(enum wp_tcp_state s)
{
	open_passive(false);
	struct wp_tcp_conn *c = F.conn;
	uint32_t fin_seq = 0;
	switch (s) {
	case WP_TCP_ESTABLISHED:
		break;
	case WP_TCP_FIN_WAIT_1:
		wp_tcp_shutdown(c);
		fin_seq = out(-1).seq;
		break;
	case WP_TCP_FIN_WAIT_2:
		wp_tcp_shutdown(c);
		fin_seq = out(-1).seq;
		F.pack = fin_seq + 1;
		peer(TH_ACK, NULL, 0);
		break;
	case WP_TCP_CLOSE_WAIT:
		peer(TH_ACK | TH_FIN, NULL, 0);
		break;
	case WP_TCP_CLOSING:
		wp_tcp_shutdown(c);
		peer(TH_ACK | TH_FIN, NULL, 0);
		break;
	case WP_TCP_LAST_ACK:
		peer(TH_ACK | TH_FIN, NULL, 0);
		wp_tcp_shutdown(c);
		break;
	default:
		fail();
	}
	assert_int_equal(c->state, s);
	return fin_seq;
}

static void test_rst_every_state(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	enum wp_tcp_state states[] = {WP_TCP_ESTABLISHED, WP_TCP_FIN_WAIT_1, WP_TCP_FIN_WAIT_2,
	                              WP_TCP_CLOSE_WAIT,  WP_TCP_CLOSING,    WP_TCP_LAST_ACK};
	for (unsigned i = 0; i < WP_ARRAY_SIZE(states); i++) {
		start(&cfg);
		to_state(states[i]);
		/* In window but not exact: challenge ACK, connection stays. */
		unsigned n0 = ncap;
		struct pkt p = {.seq = F.pseq + 10, .flags = TH_RST, .wnd = 100};
		inject(&p);
		assert_int_equal(ncap, n0 + 1);
		struct seg ch = out(-1);
		assert_int_equal(ch.flags, TH_ACK);
		assert_int_equal(ch.ack, F.pseq);
		assert_int_equal(F.ctr[WP_CTR_TCP_CHALLENGE_ACK], 1);
		assert_int_equal(F.closed, 0);
		/* Out of window: silently dropped. */
		p.seq = F.pseq + 100000;
		inject(&p);
		assert_int_equal(ncap, n0 + 1);
		/* Exact: reset. */
		p.seq = F.pseq;
		inject(&p);
		assert_int_equal(F.closed, 1);
		assert_int_equal(F.why, WP_TCP_CLOSE_RESET);
		assert_no_blocks();
		teardown(NULL);
	}

	/* SYN_SENT: an RST without an acceptable ACK is ignored; with one, refused. */
	start(&cfg);
	struct wp_tcp_conn *c = NULL;
	assert_int_equal(wp_tcp_connect(F.st, PEER_IP, 443, 6000, &app_cbs, NULL, &c), 0);
	struct seg syn = out(-1);
	struct pkt r = {.sport = 443, .dport = 6000, .seq = 0, .ack = syn.seq + 1, .flags = TH_RST};
	inject(&r);
	assert_int_equal(c->state, WP_TCP_SYN_SENT);
	r.flags = TH_RST | TH_ACK;
	r.ack = syn.seq + 5;
	inject(&r);
	assert_int_equal(c->state, WP_TCP_SYN_SENT);
	r.ack = syn.seq + 1;
	inject(&r);
	assert_int_equal(F.closed, 1);
	assert_int_equal(F.why, WP_TCP_CLOSE_RESET);
	assert_no_blocks();

	/* SYN_RECEIVED (passive): exact RST frees the embryo silently. */
	struct pkt s = {.seq = 100, .flags = TH_SYN, .wnd = 1000};
	inject(&s);
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.state[WP_TCP_SYN_RECEIVED], 1);
	struct pkt rr = {.seq = 105, .flags = TH_RST};
	inject(&rr); /* in window, not exact */
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.state[WP_TCP_SYN_RECEIVED], 1);
	rr.seq = 101;
	inject(&rr);
	assert_int_equal(F.accepted, 0);
	assert_int_equal(F.closed, 1);
	assert_no_blocks();

	/* LISTEN: RST ignored, no reply. No listener: RST answered for others only. */
	unsigned n0 = ncap;
	struct pkt lr = {.seq = 1, .flags = TH_RST};
	inject(&lr);
	lr.dport = 81;
	inject(&lr);
	assert_int_equal(ncap, n0);
	assert_int_equal(F.ctr[WP_CTR_TCP_RST_NO_CONN], 2);
	struct pkt ls = {.dport = 81, .seq = 77, .flags = TH_SYN, .len = 3, .data = "abc"};
	inject(&ls);
	struct seg rs = out(-1);
	assert_int_equal(rs.flags, TH_RST | TH_ACK);
	assert_int_equal(rs.seq, 0);
	assert_int_equal(rs.ack, 77 + 1 + 3);
	struct pkt la = {.dport = 81, .seq = 77, .ack = 4242, .flags = TH_ACK};
	inject(&la);
	rs = out(-1);
	assert_int_equal(rs.flags, TH_RST);
	assert_int_equal(rs.seq, 4242);
	assert_int_equal(F.ctr[WP_CTR_TCP_NO_LISTENER], 2);
	teardown(NULL);

	/* TIME_WAIT: RST ignored (RFC 1337). */
	start(&cfg);
	uint32_t fs = to_state(WP_TCP_FIN_WAIT_2);
	(void)fs;
	peer(TH_ACK | TH_FIN, NULL, 0);
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.time_wait, 1);
	struct pkt tr = {.seq = F.pseq, .flags = TH_RST};
	inject(&tr);
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.time_wait, 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_TIME_WAIT_RST_IGNORED], 1);
}

static void test_out_of_window_and_challenge(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.challenge_ack_per_sec = 3;
	start(&cfg);
	open_passive(false);
	/* Data beyond the 16 KiB window: dropped, ACK with RCV.NXT. */
	unsigned n0 = ncap;
	struct pkt p = {.seq = F.pseq + 20000,
	                .ack = F.pack,
	                .flags = TH_ACK,
	                .wnd = 100,
	                .data = "x",
	                .len = 1};
	inject(&p);
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).ack, F.pseq);
	assert_int_equal(F.ctr[WP_CTR_TCP_OUT_OF_WINDOW], 1);
	assert_int_equal(F.rxlen, 0);
	/* Old duplicate. */
	p.seq = F.pseq - 5;
	p.len = 1;
	inject(&p);
	assert_int_equal(F.ctr[WP_CTR_TCP_DUP_SEGMENT], 1);
	/* ACK for data never sent. */
	p.seq = F.pseq;
	p.ack = F.pack + 1000;
	p.len = 0;
	inject(&p);
	assert_int_equal(F.ctr[WP_CTR_TCP_ACK_UNSENT], 1);
	/* A SYN on an established connection: challenge ACK, no reset. */
	struct pkt syn = {.seq = F.pseq + 7, .flags = TH_SYN, .wnd = 100};
	inject(&syn);
	assert_int_equal(F.ctr[WP_CTR_TCP_CHALLENGE_ACK], 1);
	assert_int_equal(out(-1).flags, TH_ACK);
	assert_int_equal(F.conn->state, WP_TCP_ESTABLISHED);
	/* Rate limit: 3 per second. */
	for (int i = 0; i < 5; i++)
		inject(&syn);
	assert_int_equal(F.ctr[WP_CTR_TCP_CHALLENGE_ACK], 3);
	assert_int_equal(F.ctr[WP_CTR_TCP_CHALLENGE_ACK_LIMITED], 3);
	F.now += 1000001;
	inject(&syn);
	assert_int_equal(F.ctr[WP_CTR_TCP_CHALLENGE_ACK], 4);
	assert_null(NULL);
	assert_int_equal(F.closed, 0);
}

static void test_paws(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(true);
	peer(TH_ACK, "abc", 3);
	assert_int_equal(F.rxlen, 3);
	/* Same sequence space, older timestamp: rejected. */
	struct pkt p = {.seq = F.pseq,
	                .ack = F.pack,
	                .flags = TH_ACK,
	                .wnd = 100,
	                .data = "def",
	                .len = 3,
	                .ts = true,
	                .tsval = F.pts - 10};
	unsigned n0 = ncap;
	inject(&p);
	assert_int_equal(F.ctr[WP_CTR_TCP_PAWS_REJECTED], 1);
	assert_int_equal(F.rxlen, 3);
	assert_int_equal(ncap, n0 + 1); /* an ACK answers it */
	/* Timestamp wrap-around is fine: signed comparison. */
	F.conn->ts_recent = 0xfffffff0u;
	F.pts = 0xfffffff8u;
	peer(TH_ACK, "ghi", 3);
	F.pts = 5; /* wrapped past zero, still newer */
	peer(TH_ACK, "jkl", 3);
	assert_int_equal(F.rxlen, 9);
	assert_memory_equal(F.rx, "abcghijkl", 9);
	assert_int_equal(F.ctr[WP_CTR_TCP_PAWS_REJECTED], 1);
}

static void test_syncookies(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.syn_backlog = 1;
	start(&cfg);
	struct pkt s1 = {.sport = 1111, .seq = 100, .flags = TH_SYN, .wnd = 1000, .syn_opts = true};
	inject(&s1);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_SENT], 0);
	/* Queue full: the next SYN gets a cookie and no state. */
	struct pkt s2 = {.sport = 2222,
	                 .seq = 5000,
	                 .flags = TH_SYN,
	                 .wnd = 1000,
	                 .syn_opts = true,
	                 .ts = true,
	                 .tsval = 99};
	inject(&s2);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYN_QUEUE_FULL], 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_SENT], 1);
	struct seg ck = out(-1);
	assert_int_equal(ck.flags, TH_SYN | TH_ACK);
	assert_int_equal(ck.ack, 5001);
	assert_true(ck.has_ws && ck.has_sackok && ck.has_ts);
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.conns, 1);

	/* A forged ACK (wrong cookie) is rejected with RST. */
	struct pkt bad = {.sport = 2222,
	                  .seq = 5001,
	                  .ack = ck.seq + 2,
	                  .flags = TH_ACK,
	                  .wnd = 10,
	                  .ts = true,
	                  .tsval = 100,
	                  .tsecr = ck.tsval};
	inject(&bad);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_FAILED], 1);
	assert_int_equal(out(-1).flags, TH_RST);
	/* Wrong peer ISN (the hash covers it). */
	bad.ack = ck.seq + 1;
	bad.seq = 5002;
	inject(&bad);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_FAILED], 2);

	/* The right ACK, with data, completes the connection. */
	struct pkt good = {.sport = 2222,
	                   .seq = 5001,
	                   .ack = ck.seq + 1,
	                   .flags = TH_ACK | TH_PSH,
	                   .wnd = 10,
	                   .ts = true,
	                   .tsval = 100,
	                   .tsecr = ck.tsval,
	                   .data = "hi",
	                   .len = 2};
	inject(&good);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_OK], 1);
	assert_int_equal(F.accepted, 1);
	assert_int_equal(F.rxlen, 2);
	assert_true(F.conn->ts_ok && F.conn->sack_ok && F.conn->ws_ok);
	assert_int_equal(F.conn->mss, 1460);
	assert_int_equal(F.conn->rcv_wscale, F.st->rcv_wscale);
	assert_int_equal(out(-1).ack, 5003);

	/* A cookie older than two periods fails. */
	struct pkt s3 = {.sport = 3333, .seq = 7000, .flags = TH_SYN, .wnd = 1000};
	inject(&s3);
	struct seg ck3 = out(-1);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_SENT], 2);
	F.now += 200 * ONE_SEC_US;
	struct pkt late = {
	        .sport = 3333, .seq = 7001, .ack = ck3.seq + 1, .flags = TH_ACK, .wnd = 10};
	struct pkt s4 = {.sport = 4444, .seq = 1, .flags = TH_SYN, .wnd = 1000};
	inject(&s4); /* keep the listener in cookie mode */
	inject(&late);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_FAILED], 3);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_OK], 1);
}

static void test_rto_backoff(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.max_retries = 4;
	start(&cfg);
	open_passive(false);
	struct wp_tcp_conn *c = F.conn;
	assert_int_equal(wp_tcp_send(c, "data", 4), 4);
	struct seg d = out(-1);
	uint64_t t0 = F.now;
	unsigned n = ncap;
	uint64_t expect = c->rto_us;
	assert_true(expect >= cfg.rto_min_us);
	uint64_t last = t0;
	for (int i = 0; i < 4; i++) {
		while (ncap == n)
			advance(1000);
		uint64_t gap = F.now - last;
		/* Each retransmission waits (about) twice as long as the previous one. */
		assert_true(gap >= expect && gap <= expect + 2000);
		struct seg r = out(-1);
		assert_int_equal(r.seq, d.seq);
		assert_int_equal(r.len, 4);
		last = F.now;
		expect *= 2;
		n = ncap;
	}
	assert_int_equal(F.ctr[WP_CTR_TCP_RTO_TIMEOUT], 4);
	assert_int_equal(F.ctr[WP_CTR_TCP_RETRANSMIT], 4);
	/* The fifth expiry aborts. */
	advance(expect + 2000);
	assert_int_equal(F.closed, 1);
	assert_int_equal(F.why, WP_TCP_CLOSE_TIMEOUT);
	assert_int_equal(out(-1).flags & TH_RST, TH_RST);
	assert_int_equal(F.ctr[WP_CTR_TCP_CONN_TIMEOUT], 1);
	assert_no_blocks();

	/* Karn + reset: an ACK after a retransmission resets the backoff. */
	start(&cfg);
	open_passive(false);
	c = F.conn;
	wp_tcp_send(c, "x", 1);
	advance(c->rto_us + 2000);
	assert_int_equal(c->backoff, 1);
	F.pack += 1;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(c->backoff, 0);
	assert_int_equal(c->tdl[T_RTO], 0);
}

static void test_fast_retransmit(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	struct wp_tcp_conn *c = F.conn;
	static uint8_t buf[20000];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	unsigned n0 = ncap;
	assert_int_equal(wp_tcp_send(c, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	unsigned sent = ncap - n0;
	assert_int_equal(sent, 10); /* initial window: 10 segments */
	uint32_t base = out(n0).seq;
	uint32_t mss = out(n0).len;
	assert_int_equal(mss, 1460);
	/*
	 * Segment 0 lost: the peer ACKs nothing new, SACKs segments 1..3. The
	 * first two SACKs each release one new segment (limited transmit, RFC
	 * 3042); the third makes segment 0 lost (DupThresh SACKed above it).
	 */
	struct pkt p = {.seq = F.pseq, .ack = base, .flags = TH_ACK, .wnd = 65535, .nsack = 1};
	for (int k = 1; k <= 3; k++) {
		p.sack[0][0] = base + mss;
		p.sack[0][1] = base + (k + 1) * mss;
		unsigned before = ncap;
		inject(&p);
		if (k < 3) {
			assert_int_equal(ncap, before + 1);
			assert_int_equal(out(-1).seq, base + (9 + k) * mss);
			assert_false(c->in_recovery);
		}
	}
	assert_int_equal(F.ctr[WP_CTR_TCP_FAST_RETRANSMIT], 1);
	assert_true(c->in_recovery);
	struct seg r = out(n0 + sent + 2);
	assert_int_equal(r.seq, base);
	assert_int_equal(r.len, mss);
	assert_memory_equal(r.data, buf, mss);
	/* Full ACK of everything sent ends recovery; cwnd = ssthresh. */
	p.nsack = 0;
	p.ack = c->snd_max;
	inject(&p);
	assert_false(c->in_recovery);
	assert_int_equal(c->cwnd, c->ssthresh);
	assert_true(c->ssthresh >= 2 * mss);
	assert_int_equal(F.ctr[WP_CTR_TCP_RTO_TIMEOUT], 0);
}

static void test_fast_retransmit_newreno(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.sack = false;
	start(&cfg);
	open_passive(false);
	struct wp_tcp_conn *c = F.conn;
	static uint8_t buf[14600];
	memset(buf, 'q', sizeof(buf));
	unsigned n0 = ncap;
	wp_tcp_send(c, buf, sizeof(buf));
	uint32_t base = out(n0).seq, mss = out(n0).len;
	struct pkt p = {.seq = F.pseq, .ack = base + mss, .flags = TH_ACK, .wnd = 65535};
	inject(&p); /* first segment acked */
	for (int k = 0; k < 3; k++)
		inject(&p); /* segments 2.. lost? three dupacks */
	assert_int_equal(F.ctr[WP_CTR_TCP_FAST_RETRANSMIT], 1);
	assert_int_equal(out(-1).seq, base + mss);
	/* Partial ACK: the next hole is retransmitted at once (RFC 6582). */
	p.ack = base + 3 * mss;
	unsigned before = ncap;
	inject(&p);
	assert_true(ncap > before);
	assert_int_equal(out(before).seq, base + 3 * mss);
	assert_true(c->in_recovery);
	p.ack = c->snd_max;
	inject(&p);
	assert_false(c->in_recovery);
}

static void test_reassembly(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.max_ooo_ranges = 3;
	start(&cfg);
	open_passive(true);
	const char *msg = "0123456789abcdefghijklmnopqrstuvwxyz";
	uint32_t b = F.pseq;
	struct pkt p = {.ack = F.pack, .flags = TH_ACK, .wnd = 65535, .ts = true};
#define SEND(off, n)                                                                               \
	do {                                                                                       \
		p.seq = b + (off);                                                                 \
		p.data = msg + (off);                                                              \
		p.len = (n);                                                                       \
		p.tsval = ++F.pts;                                                                 \
		inject(&p);                                                                        \
	} while (0)
	SEND(10, 5); /* [10,15) */
	struct seg a = out(-1);
	assert_int_equal(a.ack, b);
	assert_int_equal(a.nsack, 1);
	assert_int_equal(a.sack[0].start, b + 10);
	assert_int_equal(a.sack[0].end, b + 15);
	SEND(20, 4);  /* [20,24) */
	SEND(12, 10); /* overlaps both: [10,24) */
	a = out(-1);
	assert_int_equal(a.nsack, 1);
	assert_int_equal(a.sack[0].end, b + 24);
	SEND(12, 3); /* duplicate inside */
	assert_int_equal(F.ctr[WP_CTR_TCP_REASM_DUP], 1);
	SEND(30, 2);
	SEND(27, 1);
	a = out(-1);
	assert_int_equal(a.nsack, 3);
	assert_int_equal(a.sack[0].start, b + 27); /* most recent first */
	SEND(34, 1);                               /* a fourth range: over the bound */
	assert_int_equal(F.ctr[WP_CTR_TCP_REASM_OVERFLOW], 1);
	assert_int_equal(F.rxlen, 0);
	SEND(0, 12); /* fills the head: [0,24) delivered */
	assert_int_equal(F.rxlen, 24);
	assert_memory_equal(F.rx, msg, 24);
	a = out(-1);
	assert_int_equal(a.ack, b + 24);
	SEND(22, 14); /* overlaps delivered data and both held ranges */
	assert_int_equal(F.rxlen, 36);
	assert_memory_equal(F.rx, msg, 36);
	assert_int_equal(out(-1).ack, b + 36);
	assert_int_equal(F.conn->nooo, 0);
	/* An out-of-order FIN is held until the gap closes. */
	F.pseq = b + 36;
	p.seq = b + 40;
	p.data = "wxyz";
	p.len = 4;
	p.flags = TH_ACK | TH_FIN;
	p.tsval = ++F.pts;
	inject(&p);
	assert_int_equal(F.eof, 0);
	p.seq = b + 36;
	p.data = "WXYZ";
	p.flags = TH_ACK;
	p.tsval = ++F.pts;
	inject(&p);
	assert_int_equal(F.eof, 1);
	assert_int_equal(F.rxlen, 44);
	assert_memory_equal(F.rx + 36, "WXYZwxyz", 8);
	assert_int_equal(F.conn->state, WP_TCP_CLOSE_WAIT);
	assert_int_equal(out(-1).ack, b + 45);
#undef SEND
}

static void test_zero_window_and_persist(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	struct wp_tcp_conn *c = F.conn;
	/* Receive side: the app consumes nothing; the window closes. */
	F.consume_max = 0;
	static uint8_t big[1460];
	memset(big, 'z', sizeof(big));
	for (int i = 0; i < 11; i++)
		peer(TH_ACK, big, sizeof(big));
	struct seg a = out(-1);
	uint32_t adv = (uint32_t)a.wnd << c->rcv_wscale;
	assert_true(adv <= 16384u - 10 * 1460);
	/* Fill to zero, then a byte beyond is refused. */
	uint32_t room = rcv_wnd_accept(c);
	peer(TH_ACK | TH_PSH, big, (uint16_t)room);
	assert_int_equal(out(-1).wnd, 0);
	unsigned n0 = ncap;
	peer(TH_ACK, "!", 1);
	F.pseq--;
	assert_int_equal(F.ctr[WP_CTR_TCP_OUT_OF_WINDOW] + F.ctr[WP_CTR_TCP_ZERO_WINDOW_DROP], 1);
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).wnd, 0);
	/* The app reads: a window update goes out by itself. */
	F.consume_max = SIZE_MAX;
	n0 = ncap;
	wp_tcp_recv_resume(c);
	assert_int_equal(F.rxlen, 16384);
	assert_int_equal(ncap, n0 + 1);
	assert_true(out(-1).wnd > 0);

	/* Send side: the peer's window is zero; we probe with backoff. */
	F.pwnd = 0;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(c->snd_wnd, 0);
	n0 = ncap;
	assert_int_equal(wp_tcp_send(c, "blocked", 7), 7);
	assert_int_equal(ncap, n0);
	uint64_t t = F.now, gaps[3];
	for (int i = 0; i < 3; i++) {
		unsigned k = ncap;
		while (ncap == k)
			advance(1000);
		gaps[i] = F.now - t;
		t = F.now;
		struct seg pr = out(-1);
		assert_int_equal(pr.len, 0);
		assert_int_equal(pr.seq, c->snd_una - 1);
		F.pwnd = 0;
		peer(TH_ACK, NULL, 0); /* the peer answers: still zero */
	}
	assert_true(gaps[1] >= 2 * gaps[0] - 2000);
	assert_true(gaps[2] >= 2 * gaps[1] - 2000);
	assert_int_equal(F.ctr[WP_CTR_TCP_PERSIST_PROBE], 3);
	assert_int_equal(F.closed, 0);
	/* The window opens: the data goes out. */
	F.pwnd = 1000;
	peer(TH_ACK, NULL, 0);
	struct seg d = out(-1);
	assert_int_equal(d.len, 7);
	assert_memory_equal(d.data, "blocked", 7);
}

static void test_half_close(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(true);
	struct wp_tcp_conn *c = F.conn;
	wp_tcp_send(c, "req", 3);
	assert_int_equal(wp_tcp_shutdown(c), 0);
	struct seg f = out(-1);
	assert_true(f.flags & TH_FIN);
	assert_int_equal(f.len, 0); /* the data left at once (no Nagle); FIN after it */
	assert_int_equal(f.seq, out(-2).seq + 3);
	assert_int_equal(wp_tcp_send(c, "more", 4), -EPIPE);
	F.pack = f.seq + 1;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(c->state, WP_TCP_FIN_WAIT_2);
	/* We still read. */
	for (int i = 0; i < 5; i++)
		peer(TH_ACK | TH_PSH, "response", 8);
	assert_int_equal(F.rxlen, 40);
	peer(TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(F.eof, 1);
	assert_int_equal(F.closed, 1);
	assert_int_equal(F.why, WP_TCP_CLOSE_NORMAL);
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.time_wait, 1);
	assert_int_equal(out(-1).ack, F.pseq);

	/* The other direction: the peer half-closes, we keep sending. */
	start(&cfg);
	open_passive(false);
	c = F.conn;
	peer(TH_ACK | TH_FIN, NULL, 0);
	assert_int_equal(c->state, WP_TCP_CLOSE_WAIT);
	assert_int_equal(F.eof, 1);
	assert_int_equal(wp_tcp_send(c, "late reply", 10), 10);
	assert_int_equal(out(-1).len, 10);
	wp_tcp_shutdown(c);
	assert_int_equal(c->state, WP_TCP_LAST_ACK);
	F.pack += 11;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(F.closed, 1);
	assert_no_blocks();
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.time_wait, 0);
}

static void test_time_wait_bound(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.time_wait_max = 4;
	cfg.time_wait_us = 2000000;
	start(&cfg);
	for (int i = 0; i < 6; i++) {
		struct pkt s = {
		        .sport = (uint16_t)(2000 + i), .seq = 10, .flags = TH_SYN, .wnd = 1000};
		inject(&s);
		struct seg sa = out(-1);
		struct pkt a = {.sport = s.sport,
		                .seq = 11,
		                .ack = sa.seq + 1,
		                .flags = TH_ACK,
		                .wnd = 1000};
		inject(&a);
		wp_tcp_close(F.conn); /* we close first: FIN */
		a.ack = sa.seq + 2;
		a.flags = TH_ACK | TH_FIN;
		inject(&a); /* peer ACKs our FIN and sends its own */
		F.now += 1000;
	}
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.time_wait, 4);
	assert_int_equal(F.ctr[WP_CTR_TCP_TIME_WAIT_RECYCLED], 2);
	assert_no_blocks();
	/* A SYN with a higher sequence number reuses a TIME_WAIT 4-tuple. */
	struct pkt s = {.sport = 2005, .seq = 100000, .flags = TH_SYN, .wnd = 1000};
	inject(&s);
	assert_int_equal(F.ctr[WP_CTR_TCP_TIME_WAIT_REUSED], 1);
	assert_int_equal(out(-1).flags, TH_SYN | TH_ACK);
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.time_wait, 3);
	advance(cfg.time_wait_us + 10000);
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.time_wait, 0);
}

static void test_delayed_ack(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.mss = 1000;
	start(&cfg);
	open_passive(false);
	static uint8_t seg[1000];
	unsigned n0 = ncap;
	peer(TH_ACK, seg, 1000);
	assert_int_equal(ncap, n0); /* held */
	advance(30000);
	assert_int_equal(ncap, n0);
	advance(11000);
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).ack, F.pseq);
	assert_int_equal(F.ctr[WP_CTR_TCP_DELAYED_ACK], 1);
	/* Every second full segment is acknowledged at once. */
	peer(TH_ACK, seg, 1000);
	assert_int_equal(ncap, n0 + 1);
	peer(TH_ACK, seg, 1000);
	assert_int_equal(ncap, n0 + 2);
	/* A reply from the app carries the ACK (no pure ACK). */
	peer(TH_ACK, seg, 1000);
	wp_tcp_send(F.conn, "r", 1);
	assert_int_equal(ncap, n0 + 3);
	assert_int_equal(out(-1).len, 1);
	advance(50000);
	assert_int_equal(ncap, n0 + 3);
}

static void test_bad_segments(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	uint8_t b[40] = {0};
	assert_int_equal(wp_tcp_input(F.st, PEER_IP, US_IP, b, 19, F.now), -EINVAL);
	assert_int_equal(F.ctr[WP_CTR_TCP_TRUNCATED], 1);
	b[12] = 4 << 4;
	assert_int_equal(wp_tcp_input(F.st, PEER_IP, US_IP, b, 20, F.now), -EINVAL);
	b[12] = 10 << 4;
	assert_int_equal(wp_tcp_input(F.st, PEER_IP, US_IP, b, 36, F.now), -EINVAL);
	assert_int_equal(F.ctr[WP_CTR_TCP_BAD_OFFSET], 2);
	struct pkt p = {.seq = 1, .flags = TH_SYN, .wnd = 100, .bad_cksum = true};
	assert_int_equal(inject(&p), -EINVAL);
	assert_int_equal(F.ctr[WP_CTR_TCP_BAD_CHECKSUM], 1);
	p.bad_cksum = false;
	p.flags = TH_SYN | TH_FIN;
	assert_int_equal(inject(&p), -EINVAL);
	assert_int_equal(F.ctr[WP_CTR_TCP_BAD_FLAGS], 1);
	assert_int_equal(ncap, 0);
	assert_no_blocks();
}

/* Checksum offload: segments leave with the pseudo-header sum, which a
 * device summing the segment turns into the right checksum; a segment the
 * device verified is not summed again (so a bad one it let through would
 * pass: the device is trusted), one it did not verify still is. */
static void test_checksum_offload(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.tx_cksum_offload = true;
	start(&cfg);
	struct pkt p = {.seq = 1, .flags = TH_SYN, .wnd = 100, .syn_opts = true};
	assert_int_equal(inject(&p), 0);
	assert_int_equal(ncap, 1);
	struct cap *c = &caps[0];
	uint32_t sum = 0;
	for (unsigned i = 0; i < c->len; i++) /* the device: sum the segment as it is */
		sum += (i & 1) ? c->b[i] : (uint32_t)c->b[i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	assert_int_not_equal(ref_cksum(c->src, c->dst, c->b, c->len), 0);
	wr16(c->b + 16, (uint16_t)~sum);
	assert_int_equal(ref_cksum(c->src, c->dst, c->b, c->len), 0);
	assert_int_equal(out(0).flags, TH_SYN | TH_ACK);

	struct pkt q = {
	        .sport = PPORT + 1, .seq = 7, .flags = TH_SYN, .wnd = 100, .bad_cksum = true};
	assert_int_equal(inject(&q), -EINVAL);
	assert_int_equal(F.ctr[WP_CTR_TCP_BAD_CHECKSUM], 1);
	q.verified = true;
	assert_int_equal(inject(&q), 0);
	assert_int_equal(F.ctr[WP_CTR_TCP_BAD_CHECKSUM], 1);
	assert_int_equal(ncap, 2);
}

static void test_accept_queue(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.accept_backlog = 1;
	start(&cfg);
	F.accept_ret = -EAGAIN;
	uint32_t iss[2];
	for (int i = 0; i < 2; i++) {
		struct pkt s = {
		        .sport = (uint16_t)(3000 + i), .seq = 10, .flags = TH_SYN, .wnd = 1000};
		inject(&s);
		iss[i] = out(-1).seq;
	}
	for (int i = 0; i < 2; i++) {
		struct pkt a = {.sport = (uint16_t)(3000 + i),
		                .seq = 11,
		                .ack = iss[i] + 1,
		                .flags = TH_ACK,
		                .wnd = 1000,
		                .data = "early",
		                .len = 5};
		inject(&a);
	}
	/* The first waits in the queue (with its data); the second's ACK is dropped. */
	assert_int_equal(F.accepted, 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_ACCEPT_QUEUE_FULL], 1);
	struct wp_tcp_gauges g;
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.accept_queue, 1);
	assert_int_equal(g.state[WP_TCP_SYN_RECEIVED], 1);
	/* New SYNs are dropped while the accept queue is full. */
	struct pkt s3 = {.sport = 3009, .seq = 10, .flags = TH_SYN, .wnd = 1000};
	unsigned n0 = ncap;
	inject(&s3);
	assert_int_equal(ncap, n0);
	assert_int_equal(F.ctr[WP_CTR_TCP_ACCEPT_QUEUE_FULL], 2);
	F.accept_ret = 0;
	wp_tcp_accept_resume(F.st, SPORT);
	assert_int_equal(F.rxlen, 5);
	assert_memory_equal(F.rx, "early", 5);
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.accept_queue, 0);
	/* A refused connection is reset. */
	wp_tcp_abort(F.conn);
	F.accept_ret = -ECONNREFUSED;
	struct pkt s4 = {.sport = 3010, .seq = 10, .flags = TH_SYN, .wnd = 1000};
	inject(&s4);
	struct pkt a4 = {
	        .sport = 3010, .seq = 11, .ack = out(-1).seq + 1, .flags = TH_ACK, .wnd = 1000};
	inject(&a4);
	assert_true(out(-1).flags & TH_RST);
	assert_int_equal(F.ctr[WP_CTR_TCP_ACCEPT_REFUSED], 1);
	wp_tcp_unlisten(F.st, SPORT);
	assert_no_blocks();
}

static void test_keepalive(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.keepalive_idle_us = 100000;
	cfg.keepalive_intvl_us = 50000;
	cfg.keepalive_probes = 2;
	start(&cfg);
	open_passive(false);
	unsigned n0 = ncap;
	advance(101000);
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).seq, F.conn->snd_una - 1);
	peer(TH_ACK, NULL, 0); /* answered: idle again */
	advance(60000);
	assert_int_equal(ncap, n0 + 1);
	advance(45000);
	assert_int_equal(ncap, n0 + 2);
	advance(110000); /* two probes unanswered */
	assert_int_equal(F.closed, 1);
	assert_int_equal(F.why, WP_TCP_CLOSE_TIMEOUT);
	assert_int_equal(F.ctr[WP_CTR_TCP_KEEPALIVE_TIMEOUT], 1);
	assert_no_blocks();
}

static bool even_port(uint16_t port, void *arg)
{
	(void)arg;
	return port % 2 == 0;
}

static void test_pick_port_and_isn(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.eph_port_lo = 50000;
	cfg.eph_port_hi = 50003;
	start(&cfg);
	uint16_t p1, p2;
	assert_int_equal(wp_tcp_pick_port(F.st, PEER_IP, 443, even_port, NULL, &p1), 0);
	assert_int_equal(p1 % 2, 0);
	struct wp_tcp_conn *c;
	assert_int_equal(wp_tcp_connect(F.st, PEER_IP, 443, p1, &app_cbs, NULL, &c), 0);
	assert_int_equal(wp_tcp_connect(F.st, PEER_IP, 443, p1, &app_cbs, NULL, &c), -EADDRINUSE);
	assert_int_equal(wp_tcp_pick_port(F.st, PEER_IP, 443, even_port, NULL, &p2), 0);
	assert_int_not_equal(p1, p2);
	assert_int_equal(p2 % 2, 0);
	assert_int_equal(wp_tcp_connect(F.st, PEER_IP, 443, p2, &app_cbs, NULL, &c), 0);
	assert_int_equal(wp_tcp_pick_port(F.st, PEER_IP, 443, even_port, NULL, &p2),
	                 -EADDRNOTAVAIL);
	/* Another destination has the ports free. */
	assert_int_equal(wp_tcp_pick_port(F.st, PEER_IP, 444, even_port, NULL, &p2), 0);
	/* ISNs: keyed by the tuple, moving with the clock. */
	struct wp_addr la = {.family = WP_AF_INET, .v4 = US_IP};
	struct wp_addr ra = {.family = WP_AF_INET, .v4 = PEER_IP};
	uint32_t i1 = isn_make(F.st, &la, 1, &ra, 2), i2 = isn_make(F.st, &la, 1, &ra, 3);
	assert_int_not_equal(i1, i2);
	F.st->now_us += 4000;
	assert_int_equal(isn_make(F.st, &la, 1, &ra, 2) - i1, 1000);
}

static void test_tx_alloc_failure(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	fail_alloc = true;
	assert_int_equal(wp_tcp_send(F.conn, "lost", 4), 4);
	assert_int_equal(F.ctr[WP_CTR_TCP_TX_ALLOC_FAIL], 1);
	fail_alloc = false;
	unsigned n0 = ncap;
	advance(F.conn->rto_us + 2000);
	assert_int_equal(ncap, n0 + 1);
	assert_memory_equal(out(-1).data, "lost", 4);
}

static void test_close_with_unread_and_abort(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	F.consume_max = 2;
	peer(TH_ACK | TH_PSH, "abcdef", 6);
	assert_int_equal(F.rxlen, 2);
	assert_int_equal(F.conn->rlen, 4);
	wp_tcp_close(F.conn);
	assert_true(out(-1).flags & TH_RST);
	assert_int_equal(F.ctr[WP_CTR_TCP_CLOSE_UNREAD], 1);
	assert_int_equal(F.closed, 0); /* no callback after the app's own close */
	assert_no_blocks();
	start(&cfg);
	open_passive(false);
	wp_tcp_abort(F.conn);
	struct seg r = out(-1);
	assert_true(r.flags & TH_RST);
	assert_int_equal(r.seq, F.pack);
	assert_no_blocks();
}

/* ---- loss recovery (scoreboard, RACK-TLP, PRR) ---- */

static uint8_t rbuf_data[60000];

/* Queues <n> bytes on F.conn; returns the first sequence number sent. */
static uint32_t send_bulk(unsigned n, unsigned *first_cap)
{
	for (unsigned i = 0; i < sizeof(rbuf_data); i++)
		rbuf_data[i] = (uint8_t)(i * 7);
	*first_cap = ncap;
	assert_int_equal(wp_tcp_send(F.conn, rbuf_data, n), (ssize_t)n);
	return out(*first_cap).seq;
}

/* An ACK from the peer for <ack>, SACKing [s0,e0) (and [s1,e1) when e1), with <len> bytes. */
static void peer_sack(uint32_t ack, uint32_t s0, uint32_t e0, uint32_t s1, uint32_t e1,
                      uint16_t len)
{
	static uint8_t pdata[1000];
	struct pkt p = {.seq = F.pseq,
	                .ack = ack,
	                .flags = TH_ACK,
	                .wnd = 65535,
	                .data = pdata,
	                .len = len};
	if (e0) {
		p.sack[p.nsack][0] = s0;
		p.sack[p.nsack++][1] = e0;
	}
	if (e1) {
		p.sack[p.nsack][0] = s1;
		p.sack[p.nsack++][1] = e1;
	}
	inject(&p);
	F.pseq += len;
}

/* Index of the last captured data segment starting at <seq> (-1: none) after <from>. */
static int find_sent(uint32_t seq, unsigned from)
{
	int found = -1;
	for (unsigned i = from; i < ncap; i++) {
		struct seg s = out((int)i);
		if (s.seq == seq && s.len)
			found = (int)i;
	}
	return found;
}

/*
 * Root cause of the RTO storms against Linux: on a bidirectional transfer
 * every ACK carries data, which RFC 5681 does not count as a duplicate ACK.
 * With SACK, new SACK information is the evidence (RFC 6675): recovery
 * starts after DupThresh SACKed segments even though each ACK has data.
 */
static void test_recovery_on_data_acks(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	unsigned n0;
	uint32_t base = send_bulk(14600, &n0), mss = 1460;
	assert_int_equal(ncap - n0, 10);
	F.now += 1000;
	for (uint32_t k = 1; k <= 3; k++)
		peer_sack(base, base + mss, base + (k + 1) * mss, 0, 0, 100);
	assert_int_equal(F.rxlen, 300); /* the data on those ACKs was taken too */
	assert_int_equal(F.ctr[WP_CTR_TCP_FAST_RETRANSMIT], 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_SACK_LOST], 1);
	assert_true(F.conn->in_recovery);
	assert_true(find_sent(base, n0 + 10) >= 0);
	/* The full ACK ends recovery. */
	peer_sack(F.conn->snd_max, 0, 0, 0, 0, 0);
	assert_false(F.conn->in_recovery);
	assert_int_equal(F.ctr[WP_CTR_TCP_RTO_TIMEOUT], 0);
}

/*
 * One segment reordered behind the next (what the testbed's fault layer
 * does): one SACKed segment above a hole is not a loss yet; RACK waits a
 * reordering window. If the hole is filled in time nothing is sent again;
 * if not, RACK declares it lost although fewer than DupThresh are SACKed.
 */
static void test_rack_reordering_window(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	unsigned n0;
	uint32_t base = send_bulk(14600, &n0), mss = 1460;
	F.now += 1000;
	peer_sack(base, base + mss, base + 2 * mss, 0, 0, 0);
	assert_int_not_equal(F.conn->tdl[T_REO], 0);
	peer_sack(base + 2 * mss, 0, 0, 0, 0, 0); /* the reordered segment arrived */
	advance(5000);
	assert_int_equal(F.ctr[WP_CTR_TCP_RETRANSMIT], 0);
	assert_int_equal(F.ctr[WP_CTR_TCP_RACK_LOST], 0);

	/* Now segment 2 is really lost: only segment 3 is SACKed above it. */
	unsigned n1 = ncap;
	F.now += 1000;
	peer_sack(base + 2 * mss, base + 3 * mss, base + 4 * mss, 0, 0, 0);
	assert_int_equal(find_sent(base + 2 * mss, n1), -1); /* not yet */
	advance(3000);
	assert_int_equal(F.ctr[WP_CTR_TCP_RACK_LOST], 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_FAST_RETRANSMIT], 1);
	assert_true(find_sent(base + 2 * mss, n1) >= 0);
	assert_int_equal(F.ctr[WP_CTR_TCP_RTO_TIMEOUT], 0);
}

/*
 * A lost retransmission: segment 0 is retransmitted, the retransmission is
 * lost too, and segments sent after it are SACKed. RACK sees a later-sent
 * segment delivered and sends segment 0 a third time, with no RTO.
 */
static void test_lost_retransmission(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	unsigned n0;
	uint32_t base = send_bulk(40000, &n0), mss = 1460;
	F.now += 1000;
	uint32_t k = 1;
	for (; k <= 3; k++)
		peer_sack(base, base + mss, base + (k + 1) * mss, 0, 0, 0);
	int r1 = find_sent(base, n0 + 10);
	assert_true(r1 >= 0);
	/* More SACKs, a millisecond apart, until new data goes out after the retransmission. */
	uint32_t high = 0;
	for (; k < 12 && !high; k++) {
		F.now += 1000;
		peer_sack(base, base + mss, base + (k + 1) * mss, 0, 0, 0);
		for (unsigned i = (unsigned)r1 + 1; i < ncap; i++)
			if (SEQ_GEQ(out((int)i).seq, base + 10 * mss) && out((int)i).len)
				high = out((int)i).seq + out((int)i).len;
	}
	assert_true(high != 0);
	/* The peer SACKs everything sent so far except segment 0. */
	F.now += 1000;
	unsigned n2 = ncap;
	peer_sack(base, base + mss, F.conn->snd_max, 0, 0, 0);
	advance(2000);
	assert_int_equal(F.ctr[WP_CTR_TCP_LOST_RETRANSMIT], 1);
	assert_true(find_sent(base, n2) >= 0);
	assert_int_equal(F.ctr[WP_CTR_TCP_RTO_TIMEOUT], 0);
	peer_sack(F.conn->snd_max, 0, 0, 0, 0, 0);
	assert_false(F.conn->in_recovery);
}

/*
 * Tail loss: the last two segments of a flight are lost, so no ACK comes.
 * The probe (after max(2 SRTT, 10 ms), long before the 200 ms RTO)
 * retransmits the last segment; its SACK lets RACK find the other one.
 */
static void test_tail_loss_probe(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	unsigned n0;
	uint32_t base = send_bulk(5 * 1460, &n0), mss = 1460;
	F.now += 1000;
	peer_sack(base + 3 * mss, 0, 0, 0, 0, 0);
	unsigned n1 = ncap;
	advance(9000);
	assert_int_equal(ncap, n1);
	advance(3000);
	assert_int_equal(F.ctr[WP_CTR_TCP_TLP_PROBE], 1);
	int pr = find_sent(base + 4 * mss, n1);
	assert_true(pr >= 0);
	F.now += 1000;
	peer_sack(base + 3 * mss, base + 4 * mss, base + 5 * mss, 0, 0, 0);
	advance(2000);
	assert_true(find_sent(base + 3 * mss, (unsigned)pr) >= 0);
	assert_int_equal(F.ctr[WP_CTR_TCP_RTO_TIMEOUT], 0);
	peer_sack(base + 5 * mss, 0, 0, 0, 0, 0);
	assert_int_equal(F.conn->snd_una, F.conn->snd_max);
	assert_int_equal(F.conn->rec_n, 0);
	assert_int_equal(F.conn->tdl[T_PTO], 0);
}

/*
 * RFC 6675 rule 4: in recovery with nothing lost and nothing new to send,
 * the highest unSACKed segment is retransmitted once (rescue), not twice.
 */
static void test_rescue_retransmission(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	unsigned n0;
	uint32_t base = send_bulk(14600, &n0), mss = 1460; /* all of it in the first flight */
	F.now += 1000;
	for (uint32_t k = 1; k <= 3; k++)
		peer_sack(base, base + mss, base + (k + 1) * mss, 0, 0, 0);
	assert_true(F.conn->in_recovery);
	unsigned n1 = ncap;
	for (uint32_t k = 4; k <= 8; k++)
		peer_sack(base, base + mss, base + (k + 1) * mss, 0, 0, 0);
	assert_int_equal(F.ctr[WP_CTR_TCP_RESCUE_RETRANSMIT], 1);
	assert_true(find_sent(base + 9 * mss, n1) >= 0);
	unsigned n2 = ncap;
	peer_sack(base + mss, base + 2 * mss, base + 9 * mss, 0, 0, 0);
	assert_int_equal(F.ctr[WP_CTR_TCP_RESCUE_RETRANSMIT], 1);
	assert_int_equal(find_sent(base + 9 * mss, n2), -1);
}

/*
 * Without SACK: the first two duplicate ACKs each release one new segment
 * (limited transmit, RFC 3042), the third starts NewReno recovery.
 */
static void test_limited_transmit_newreno(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.sack = false;
	start(&cfg);
	open_passive(false);
	unsigned n0;
	uint32_t base = send_bulk(30000, &n0), mss = 1460;
	assert_int_equal(ncap - n0, 10);
	for (uint32_t k = 1; k <= 2; k++) {
		unsigned before = ncap;
		peer_sack(base, 0, 0, 0, 0, 0);
		assert_int_equal(ncap, before + 1);
		assert_int_equal(out(-1).seq, base + (9 + k) * mss);
	}
	assert_false(F.conn->in_recovery);
	unsigned before = ncap;
	peer_sack(base, 0, 0, 0, 0, 0);
	assert_true(F.conn->in_recovery);
	assert_int_equal(out((int)before).seq, base);
	assert_int_equal(F.ctr[WP_CTR_TCP_FAST_RETRANSMIT], 1);
	/* An ACK with data is not a duplicate ACK for NewReno (RFC 5681). */
	uint16_t d = F.conn->dupacks;
	peer_sack(base, 0, 0, 0, 0, 10);
	assert_int_equal(F.conn->dupacks, d);
}

/*
 * After an RTO, losses inside the same window are still repaired from the
 * scoreboard at the pace of slow start, not by one RTO each.
 */
static void test_rto_then_sack_repair(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	unsigned n0;
	uint32_t base = send_bulk(14600, &n0), mss = 1460;
	advance(F.conn->rto_us + PTO_MIN_US + 2000); /* the probe, then the RTO */
	assert_int_equal(F.ctr[WP_CTR_TCP_TLP_PROBE], 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_RTO_TIMEOUT], 1);
	assert_int_equal(F.conn->cwnd, mss);
	assert_int_equal(out(-1).seq, base);
	unsigned n1 = ncap;
	/* Segments 0 and 5 were lost; the retransmitted 0 arrives. */
	F.now += 1000;
	peer_sack(base + 5 * mss, base + 6 * mss, base + 10 * mss, 0, 0, 0);
	F.now += 1000;
	peer_sack(base + 5 * mss, base + 6 * mss, base + 10 * mss, 0, 0, 0);
	assert_true(find_sent(base + 5 * mss, n1) >= 0);
	/* Nothing SACKed is sent again. */
	for (uint32_t k = 6; k < 10; k++)
		assert_int_equal(find_sent(base + k * mss, n1), -1);
	peer_sack(base + 10 * mss, 0, 0, 0, 0, 0);
	assert_int_equal(F.ctr[WP_CTR_TCP_RTO_TIMEOUT], 1);
	assert_int_equal(F.conn->rec_n, 0);
	assert_int_equal(F.conn->sacked_out + F.conn->lost_out, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_passive_handshake, teardown),
	        cmocka_unit_test_teardown(test_active_handshake, teardown),
	        cmocka_unit_test_teardown(test_simultaneous_open, teardown),
	        cmocka_unit_test_teardown(test_simultaneous_close, teardown),
	        cmocka_unit_test_teardown(test_rst_every_state, teardown),
	        cmocka_unit_test_teardown(test_out_of_window_and_challenge, teardown),
	        cmocka_unit_test_teardown(test_paws, teardown),
	        cmocka_unit_test_teardown(test_syncookies, teardown),
	        cmocka_unit_test_teardown(test_rto_backoff, teardown),
	        cmocka_unit_test_teardown(test_fast_retransmit, teardown),
	        cmocka_unit_test_teardown(test_fast_retransmit_newreno, teardown),
	        cmocka_unit_test_teardown(test_reassembly, teardown),
	        cmocka_unit_test_teardown(test_zero_window_and_persist, teardown),
	        cmocka_unit_test_teardown(test_half_close, teardown),
	        cmocka_unit_test_teardown(test_time_wait_bound, teardown),
	        cmocka_unit_test_teardown(test_delayed_ack, teardown),
	        cmocka_unit_test_teardown(test_bad_segments, teardown),
	        cmocka_unit_test_teardown(test_checksum_offload, teardown),
	        cmocka_unit_test_teardown(test_accept_queue, teardown),
	        cmocka_unit_test_teardown(test_keepalive, teardown),
	        cmocka_unit_test_teardown(test_pick_port_and_isn, teardown),
	        cmocka_unit_test_teardown(test_tx_alloc_failure, teardown),
	        cmocka_unit_test_teardown(test_close_with_unread_and_abort, teardown),
	        cmocka_unit_test_teardown(test_recovery_on_data_acks, teardown),
	        cmocka_unit_test_teardown(test_rack_reordering_window, teardown),
	        cmocka_unit_test_teardown(test_lost_retransmission, teardown),
	        cmocka_unit_test_teardown(test_tail_loss_probe, teardown),
	        cmocka_unit_test_teardown(test_rescue_retransmission, teardown),
	        cmocka_unit_test_teardown(test_limited_transmit_newreno, teardown),
	        cmocka_unit_test_teardown(test_rto_then_sack_repair, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
