/*
 * Unit tests for the TCP stack (dp/net/tcp) driven by crafted segments
 * (the fake peer of tcp_fake_peer.h): handshakes, closes and resets in
 * every state, windows, PAWS, SYN cookies, reassembly, zero window and
 * persist, TIME_WAIT, delayed ACKs, bad segments, the accept queue,
 * keepalive, port and ISN choice, and allocation failures; the tests
 * assert on the segments sent, the app callbacks, the counters and the
 * gauges. Retransmission and loss recovery are in test_tcp_recovery.c.
 */
#include "tcp_fake_peer.h"

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

	/* A data segment ahead of the first one (reordered across cores, or
	 * the first lost): its ACK carries a current cookie's time bits, so it
	 * is dropped without a RST and without state. */
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
	struct pkt ahead = good;
	unsigned caps_before = ncap;
	ahead.seq = 5003;
	ahead.data = "yo";
	inject(&ahead);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_AHEAD], 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_FAILED], 2);
	assert_int_equal(ncap, caps_before);
	assert_int_equal(F.accepted, 0);
	/* The same with an acknowledgment number from another period: RST. */
	ahead.ack = (ck.seq + 1) ^ (8u << 27);
	inject(&ahead);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_AHEAD], 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_FAILED], 3);
	assert_int_equal(out(-1).flags, TH_RST);
	ahead.ack = ck.seq + 1;

	/* The right ACK, with data, completes the connection. */
	inject(&good);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_OK], 1);
	assert_int_equal(F.accepted, 1);
	assert_int_equal(F.rxlen, 2);
	assert_true(F.conn->ts_ok && F.conn->sack_ok && F.conn->ws_ok);
	assert_int_equal(F.conn->mss, 1460);
	assert_int_equal(F.conn->rcv_wscale, F.st->rcv_wscale);
	assert_int_equal(out(-1).ack, 5003);
	/* The dropped segment, retransmitted, is now in order. */
	ahead.tsval = 101;
	inject(&ahead);
	assert_int_equal(F.rxlen, 4);
	assert_memory_equal(F.rx, "hiyo", 4);

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
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_FAILED], 4);
	assert_int_equal(F.ctr[WP_CTR_TCP_SYNCOOKIE_OK], 1);
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

/*
 * Payload that continues the in-order stream is copied into the receive
 * ring as its checksum is verified. The app reads odd amounts and leaves
 * the rest (the ring stays), segments have odd sizes, so pieces wrap the
 * 16 KiB ring at odd offsets; before every seventh segment a corrupted
 * copy (other bytes, bad checksum) is dropped and counted and its bytes
 * never reach the app. In the end the app has every byte once, in order.
 */
static void test_rx_placed(void **state)
{
	static uint8_t stream[60000], junk[1500];
	struct wp_tcp_config cfg;
	uint32_t off = 0;
	unsigned k = 0;

	(void)state;
	setup_cfg(&cfg); /* a 16,384-byte receive ring */
	start(&cfg);
	open_passive(false);
	for (size_t i = 0; i < sizeof(stream); i++)
		stream[i] = (uint8_t)(i * 7 + (i >> 8) + 3);
	memset(junk, 0xee, sizeof(junk));
	F.consume_max = 0;
	for (unsigned guard = 0; off < sizeof(stream); guard++) {
		uint16_t n = (uint16_t)WP_MIN(1001u + 2u * (k % 200), sizeof(stream) - off);

		assert_true(guard < 1000);
		if (rcv_wnd_accept(F.conn) < n) { /* the app reads some */
			F.consume_max = 2999;
			wp_tcp_recv_resume(F.conn);
			F.consume_max = 0;
			continue;
		}
		if (k % 7 == 3) {
			struct pkt bad = {.seq = F.pseq,
			                  .ack = F.pack,
			                  .flags = TH_ACK,
			                  .wnd = F.pwnd,
			                  .data = junk,
			                  .len = n,
			                  .bad_cksum = true};
			uint64_t drops = F.ctr[WP_CTR_TCP_BAD_CHECKSUM];

			assert_int_equal(inject(&bad), -EINVAL);
			assert_int_equal(F.ctr[WP_CTR_TCP_BAD_CHECKSUM], drops + 1);
		}
		peer(TH_ACK, stream + off, n);
		off += n;
		k++;
	}
	F.consume_max = SIZE_MAX;
	wp_tcp_recv_resume(F.conn);
	assert_int_equal(F.rxlen, sizeof(stream));
	assert_memory_equal(F.rx, stream, sizeof(stream));
}

/*
 * Segments in several buffers (wp_tcp_input_pieces, as LRO hands them
 * over): in order, a retransmission whose already-received front spans
 * two pieces, an empty piece, and an out-of-order one held until the gap
 * closes; the app gets every byte once, in order.
 */
static void test_pieces(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(true);
	static uint8_t msg[6000];
	for (unsigned i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7 + i / 251);
	uint32_t b = F.pseq;
	struct pkt p = {.ack = F.pack, .flags = TH_ACK, .wnd = 65535, .ts = true};

	p.seq = b, p.data = msg, p.len = 3000, p.tsval = ++F.pts;
	p.ncut = 2, p.cut[0] = 5, p.cut[1] = 1700;
	assert_int_equal(inject(&p), 0);
	assert_int_equal(F.rxlen, 3000);
	assert_memory_equal(F.rx, msg, 3000);

	/* [2000, 4000): its first 1,000 bytes (piece 0: 100, piece 1: 899,
	 * one of piece 2) were received; an empty piece in between */
	p.seq = b + 2000, p.data = msg + 2000, p.len = 2000, p.tsval = ++F.pts;
	p.ncut = 3, p.cut[0] = 100, p.cut[1] = 999, p.cut[2] = 999;
	assert_int_equal(inject(&p), 0);
	assert_int_equal(F.rxlen, 4000);
	assert_memory_equal(F.rx, msg, 4000);

	/* [5000, 6000) ahead of a gap, then [4000, 5000) */
	p.seq = b + 5000, p.data = msg + 5000, p.len = 1000, p.tsval = ++F.pts;
	p.ncut = 1, p.cut[0] = 300;
	assert_int_equal(inject(&p), 0);
	assert_int_equal(F.rxlen, 4000);
	assert_int_equal(out(-1).ack, b + 4000);
	p.seq = b + 4000, p.data = msg + 4000, p.len = 1000, p.tsval = ++F.pts;
	p.ncut = 2, p.cut[0] = 0, p.cut[1] = 512;
	assert_int_equal(inject(&p), 0);
	assert_int_equal(F.rxlen, 6000);
	assert_memory_equal(F.rx, msg, 6000);
	assert_int_equal(out(-1).ack, b + 6000);
	assert_int_equal(F.ctr[WP_CTR_TCP_BAD_CHECKSUM], 0);
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

/* Acknowledges what was sent, up to iss + upto, copying the data of every
 * segment captured so far into stream[seq - iss]. */
static void ack_upto(uint32_t iss, uint32_t upto, uint8_t *stream)
{
	for (int guard = 0; guard < 200 && F.conn->snd_una != iss + upto; guard++) {
		for (unsigned i = 0; i < ncap; i++) {
			struct seg s = out((int)i);

			if (s.len > 0 && s.seq - iss + s.len <= upto)
				memcpy(stream + (s.seq - iss), s.data, s.len);
		}
		F.pack = SEQ_LT(F.conn->snd_nxt, iss + upto) ? F.conn->snd_nxt : iss + upto;
		peer(TH_ACK, NULL, 0);
	}
	assert_int_equal(F.conn->snd_una, iss + upto);
}

/* Without checksum offload a segment is summed as its bytes are copied out
 * of the send ring. One byte, then the ring filled behind it, that byte and
 * three more acknowledged and four written in their place: the segment that
 * wraps starts at an odd offset of the ring and ends past its start, so its
 * first piece has an odd length and the second's sum must be byte-swapped
 * to join it. The fake peer checks every segment's checksum; the stream
 * arrives whole. */
static void test_send_cksum_wrap(void **state)
{
	static uint8_t pat[65536 + 4], got[sizeof(pat)];
	struct wp_tcp_config cfg;

	(void)state;
	setup_cfg(&cfg); /* a 65,536-byte send ring, no offloads */
	start(&cfg);
	open_passive(false);
	uint32_t iss = F.pack;
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 13 + (i >> 8) + 1);
	assert_int_equal(wp_tcp_send(F.conn, pat, 1), 1);
	assert_int_equal(wp_tcp_send(F.conn, pat + 1, 65535), 65535);
	assert_true(SEQ_LT(F.conn->snd_nxt, iss + 65536)); /* the end is not sent yet */
	ack_upto(iss, 4, got);
	assert_int_equal(wp_tcp_send(F.conn, pat + 65536, 4), 4);
	ack_upto(iss, sizeof(pat), got);
	assert_memory_equal(got, pat, sizeof(pat));
}

/* Zero-copy queueing (wp_tcp_send_reserve / _commit), as TLS seals
 * records into the send ring: the free space in two pieces once the ring
 * wraps, the bytes written there sent in order after those queued
 * before, writable() when the space was short, and a reservation left
 * unused gives the buffer back to the pool. */
static void test_send_reserve(void **state)
{
	static uint8_t pat[68000], got[68000];
	struct wp_tcp_gauges g;
	struct wp_tcp_config cfg;
	struct iovec v[2];

	(void)state;
	setup_cfg(&cfg); /* a 65,536-byte send ring */
	start(&cfg);
	open_passive(false);
	struct wp_tcp_conn *c = F.conn;
	uint32_t iss = F.pack;
	unsigned n0 = ncap;
	for (size_t i = 0; i < sizeof(pat); i++)
		pat[i] = (uint8_t)(i * 7 + (i >> 9));

	assert_int_equal(wp_tcp_send_reserve(c, 100, v), 65536);
	assert_int_equal(v[0].iov_len, 65536);
	assert_int_equal(v[1].iov_len, 0);
	wp_tcp_send_commit(c, 0);
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.snd_bufs, 0);
	assert_int_equal(ncap, n0); /* nothing was sent */

	/* 60,000 bytes queued, 50,000 of them acknowledged: 10,000 at ring
	 * offset 50,000, the free space from 60,000 to the end and on from 0. */
	assert_int_equal(wp_tcp_send(c, pat, 60000), 60000);
	ack_upto(iss, 50000, got);
	assert_int_equal(wp_tcp_send_reserve(c, 8000, v), 55536);
	assert_int_equal(v[0].iov_len, 5536);
	assert_int_equal(v[1].iov_len, 50000);
	assert_ptr_equal((uint8_t *)v[1].iov_base + 60000, v[0].iov_base);
	memcpy(v[0].iov_base, pat + 60000, 5536);
	memcpy(v[1].iov_base, pat + 65536, 2464);
	wp_tcp_send_commit(c, 8000);
	assert_int_equal(F.writable, 0);

	/* Asking for more than is free arms writable(); nothing is queued. */
	assert_int_equal(wp_tcp_send_reserve(c, 60000, v), 65536 - 18000);
	wp_tcp_send_commit(c, 0);
	ack_upto(iss, 68000, got);
	assert_memory_equal(got, pat, sizeof(pat));
	assert_true(F.writable >= 1);
	wp_tcp_stack_gauges(F.st, &g);
	assert_int_equal(g.snd_bufs, 0);

	assert_int_equal(wp_tcp_shutdown(c), 0);
	assert_int_equal(wp_tcp_send_reserve(c, 1, v), -EPIPE);
	assert_int_equal(v[0].iov_len + v[1].iov_len, 0);
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
	open_with_mss(1000);
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

/* Request/response with wp_tcp_set_delack: a short pushed request is ACKed
 * at once until the connection has answered one in time; from then on the
 * answer carries the ACK (no pure ACK per exchange). The timer still
 * sends a held ACK, and then the connection ACKs at once again;
 * wp_tcp_quickack() sends a held ACK at once. Without the opt-in nothing
 * is held. */
/* The app answers <s>; the peer's next segment acknowledges it. */
static void answer(const char *s)
{
	assert_int_equal(wp_tcp_send(F.conn, s, strlen(s)), (ssize_t)strlen(s));
	F.pack = out(-1).seq + out(-1).len;
}

static void test_delack_pingpong(void **state)
{
	(void)state;
	open_with_mss(1000);
	unsigned n0 = ncap;

	/* not opted in: a short pushed request is ACKed at once, every time */
	peer(TH_ACK | TH_PSH, "GET", 3);
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).len, 0);
	answer("200");
	peer(TH_ACK | TH_PSH, "GET", 3);
	assert_int_equal(ncap, n0 + 3);
	assert_int_equal(out(-1).len, 0);
	answer("200");
	n0 = ncap;

	wp_tcp_set_delack(F.conn, true);
	/* the first exchange after the opt-in: ACK at once, then the answer
	 * within the ACK timeout makes the connection interactive */
	peer(TH_ACK | TH_PSH, "GET", 3);
	assert_int_equal(ncap, n0 + 1);
	advance(2000);
	answer("200");
	assert_int_equal(ncap, n0 + 2);
	/* now three exchanges: one segment each way, no pure ACK (the
	 * peer's segments are not captured: one more capture each) */
	for (int i = 0; i < 3; i++) {
		peer(TH_ACK | TH_PSH, "GET", 3);
		assert_int_equal(ncap, n0 + 2 + i); /* held */
		advance(1000);
		answer("200");
		assert_int_equal(ncap, n0 + 3 + i);
		assert_int_equal(out(-1).len, 3);
		assert_int_equal(out(-1).ack, F.pseq); /* it carries the ACK */
	}
	assert_int_equal(F.ctr[WP_CTR_TCP_ACK_HELD], 3);
	n0 = ncap;
	/* the app waits for the rest of a message: the held ACK goes now */
	peer(TH_ACK | TH_PSH, "PO", 2);
	assert_int_equal(ncap, n0);
	wp_tcp_quickack(F.conn);
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).ack, F.pseq);
	wp_tcp_quickack(F.conn); /* nothing held: nothing sent */
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_QUICKACK], 1);
	peer(TH_ACK | TH_PSH, "ST", 2);
	advance(1000);
	answer("201");
	n0 = ncap;
	/* no answer in time: the timer ACKs and the connection leaves the
	 * interactive mode, so the next short request is ACKed at once */
	peer(TH_ACK | TH_PSH, "GET", 3);
	assert_int_equal(ncap, n0);
	advance(F.st->cfg.delack_us + 2000);
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_DELAYED_ACK], 1);
	peer(TH_ACK | TH_PSH, "GET", 3);
	assert_int_equal(ncap, n0 + 2);
	assert_int_equal(out(-1).len, 0);
}

/* Bulk data or loss keeps ACKs immediate on an opted-in connection:
 * answering after more than four segments' worth of data does not make it
 * interactive, a short segment that comes while our own data is still
 * unacknowledged is ACKed at once, and an out-of-order segment (or a
 * retransmission) makes it leave the interactive mode. */
static void test_delack_bulk_and_loss(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	static uint8_t seg[1000];
	unsigned n0;

	setup_cfg(&cfg);
	cfg.mss = 1000;
	start(&cfg);
	open_passive(false);
	wp_tcp_set_delack(F.conn, true);
	for (int i = 0; i < 5; i++)
		peer(TH_ACK, seg, 1000);
	answer("ok");
	n0 = ncap;
	peer(TH_ACK | TH_PSH, "GET", 3);
	assert_int_equal(ncap, n0 + 1); /* not interactive: at once */
	/* a request/response exchange makes it interactive */
	answer("200");
	n0 = ncap;
	peer(TH_ACK | TH_PSH, "GET", 3);
	assert_int_equal(ncap, n0); /* held */
	answer("200");
	/* while data of ours is unacknowledged (we stream, the peer answers
	 * with small segments), a short segment is ACKed at once */
	assert_int_equal(wp_tcp_send(F.conn, "stream", 6), 6);
	n0 = ncap;
	peer(TH_ACK | TH_PSH, "WU", 2); /* acknowledges "200", not "stream" */
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).len, 0);
	F.pack += 6;
	answer("200");
	n0 = ncap;
	/* a segment out of order: ACKed at once (SACK), and so is what
	 * follows once the hole is filled */
	F.pseq += 3;
	peer(TH_ACK | TH_PSH, "ABC", 3);
	assert_int_equal(ncap, n0 + 1);
	F.pseq -= 6;
	peer(TH_ACK, "XYZ", 3);
	F.pseq += 3;
	assert_int_equal(ncap, n0 + 2);
	peer(TH_ACK | TH_PSH, "GET", 3);
	assert_int_equal(ncap, n0 + 3);
	assert_int_equal(out(-1).len, 0);
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
	cfg.keepalive_idle_ms = 100;
	cfg.keepalive_intvl_ms = 50;
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

/* Keepalive set on one connection (the stack's is off): probes after its
 * idle time, an answered probe makes it idle again, unanswered probes
 * reset it; turned off, nothing is sent. */
static void test_keepalive_per_conn(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	start(&cfg);
	open_passive(false);
	unsigned n0 = ncap;
	advance(500000);
	assert_int_equal(ncap, n0); /* the stack's keepalive is off */
	wp_tcp_set_keepalive(F.conn, 100, 50, 2);
	advance(1000); /* idle for 500 ms already: probed at once */
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(out(-1).seq, F.conn->snd_una - 1);
	peer(TH_ACK, NULL, 0);
	advance(60000);
	assert_int_equal(ncap, n0 + 1);
	advance(45000);
	assert_int_equal(ncap, n0 + 2);
	wp_tcp_set_keepalive(F.conn, 0, 0, 0); /* off: no more probes, no reset */
	advance(1000000);
	assert_int_equal(ncap, n0 + 2);
	assert_int_equal(F.closed, 0);
	wp_tcp_set_keepalive(F.conn, 100, 50, 2);
	advance(110000 + 1000); /* probe, probe, then the reset */
	advance(60000);
	assert_int_equal(F.closed, 1);
	assert_int_equal(F.why, WP_TCP_CLOSE_TIMEOUT);
	assert_int_equal(F.ctr[WP_CTR_TCP_KEEPALIVE_PROBE], 4);
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
	        cmocka_unit_test_teardown(test_reassembly, teardown),
	        cmocka_unit_test_teardown(test_rx_placed, teardown),
	        cmocka_unit_test_teardown(test_pieces, teardown),
	        cmocka_unit_test_teardown(test_zero_window_and_persist, teardown),
	        cmocka_unit_test_teardown(test_half_close, teardown),
	        cmocka_unit_test_teardown(test_send_reserve, teardown),
	        cmocka_unit_test_teardown(test_send_cksum_wrap, teardown),
	        cmocka_unit_test_teardown(test_time_wait_bound, teardown),
	        cmocka_unit_test_teardown(test_delayed_ack, teardown),
	        cmocka_unit_test_teardown(test_delack_pingpong, teardown),
	        cmocka_unit_test_teardown(test_delack_bulk_and_loss, teardown),
	        cmocka_unit_test_teardown(test_bad_segments, teardown),
	        cmocka_unit_test_teardown(test_checksum_offload, teardown),
	        cmocka_unit_test_teardown(test_accept_queue, teardown),
	        cmocka_unit_test_teardown(test_keepalive, teardown),
	        cmocka_unit_test_teardown(test_keepalive_per_conn, teardown),
	        cmocka_unit_test_teardown(test_pick_port_and_isn, teardown),
	        cmocka_unit_test_teardown(test_tx_alloc_failure, teardown),
	        cmocka_unit_test_teardown(test_close_with_unread_and_abort, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
