/*
 * Unit tests for the TCP stack's retransmission and loss recovery
 * (dp/net/tcp) driven by crafted segments (the fake peer of
 * tcp_fake_peer.h): RTO backoff, fast retransmit with and without SACK
 * (NewReno), and the SACK scoreboard, RACK-TLP and PRR: recovery on ACKs
 * that carry data, the reordering window, lost retransmissions, tail loss
 * probes, rescue retransmissions, limited transmit, an RTO followed by
 * SACK repair, the peer's window edge (taken with every new ACK; our
 * ACKs never past it), ACKs overtaken by later ones (ignored), and
 * segmentation offload (TSO: one segment of several MSS for the device to
 * cut, one scoreboard record per piece).
 */
#include "cksum.h"
#include "tcp_fake_peer.h"

/* ---- RTO and fast retransmit ---- */

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

/*
 * A receiver that keeps answering with a zero window while our data is
 * unacknowledged (its buffer full: Linux drops the segment and ACKs with
 * window 0) is alive: the retransmissions are window probes and do not
 * count towards max_retries, as in Linux. Only once the peer has been
 * silent for twice rto_max (the probes back off up to rto_max) does the
 * connection time out. While it answers, the probes back off to a second
 * at most (PROBE_MAX_US): a window update lost on the way stalls the flow
 * no longer than that.
 */
static void test_rto_zero_window_peer_alive(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.max_retries = 3;
	cfg.rto_max_us = 2000000;
	start(&cfg);
	open_passive(false);
	struct wp_tcp_conn *c = F.conn;
	assert_int_equal(wp_tcp_send(c, "data", 4), 4);
	struct seg d = out(-1);
	F.pwnd = 0;
	peer(TH_ACK, NULL, 0); /* nothing acknowledged, window closed */
	assert_int_equal(c->snd_wnd, 0);
	/* ten expiries, each answered at once: still open, still probing,
	 * backing off from the RTO to a second and no further */
	uint64_t t = F.now, gap[10];
	for (int i = 0; i < 10; i++) {
		unsigned n = ncap;
		while (ncap == n)
			advance(1000);
		gap[i] = F.now - t;
		t = F.now;
		assert_int_equal(out(-1).seq, d.seq);
		peer(TH_ACK, NULL, 0);
	}
	assert_true(gap[1] > gap[0]);
	for (int i = 0; i < 10; i++)
		assert_true(gap[i] <= 1000000 + 2000);
	assert_true(gap[9] >= 1000000 - 2000);
	assert_int_equal(F.closed, 0);
	assert_true(F.ctr[WP_CTR_TCP_RTO_TIMEOUT] >= 10);
	assert_int_equal(F.ctr[WP_CTR_TCP_CONN_TIMEOUT], 0);
	/* the window opens: the data goes through and the backoff ends */
	F.pwnd = 65535;
	F.pack += 4;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(c->snd_una, c->snd_max);
	assert_int_equal(c->backoff, 0);

	/* a peer that falls silent with its window closed times out */
	assert_int_equal(wp_tcp_send(c, "more", 4), 4);
	F.pwnd = 0;
	peer(TH_ACK, NULL, 0);
	advance(30 * cfg.rto_max_us);
	assert_int_equal(F.closed, 1);
	assert_int_equal(F.why, WP_TCP_CLOSE_TIMEOUT);
	assert_int_equal(F.ctr[WP_CTR_TCP_CONN_TIMEOUT], 1);
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

/* An open connection whose peer offers 128 bytes (window 1 at scale 7) while
 * 1,000 are queued: the first 128 go out. Returns snd_una before them. */
static uint32_t open_small_window(struct wp_tcp_config *cfg)
{
	setup_cfg(cfg);
	start(cfg);
	open_passive(false);
	uint32_t una = F.conn->snd_una;
	F.pwnd = 1;
	peer(TH_ACK, NULL, 0);
	static uint8_t buf[1000];
	assert_int_equal(wp_tcp_send(F.conn, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_int_equal(F.conn->snd_max, una + 128);
	return una;
}

/*
 * The window comes with the ACK: a retransmission from the peer (an old
 * sequence number) that acknowledges our data and closes the window must
 * close it here too, or snd_una + the old window would let data out past
 * the edge the peer offered. This is what hbone_loss met against Linux
 * 6.18 (its receive queue full): 1,024 bytes went out into a zero window.
 */
static void test_window_from_acking_retransmission(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	uint32_t una = open_small_window(&cfg);
	struct wp_tcp_conn *c = F.conn;
	/* a segment of the peer's is lost; the next one (newer sequence)
	 * arrives out of order, then the lost one is retransmitted with an
	 * ACK of everything we sent and the window closed */
	uint32_t p0 = F.pseq;
	F.pseq += 10;
	peer(TH_ACK, "0123456789", 10);
	F.pseq = p0;
	F.pack = una + 128;
	F.pwnd = 0;
	unsigned n = ncap;
	peer(TH_ACK, "abcdefghij", 10);
	assert_int_equal(c->snd_una, una + 128);
	assert_int_equal(c->snd_wnd, 0);
	assert_int_equal(c->snd_nxt, una + 128); /* nothing past the edge */
	for (unsigned i = n; i < ncap; i++)
		assert_int_equal(out((int)i).len, 0);
	assert_int_not_equal(c->tdl[T_PERSIST], 0);
}

/*
 * An ACK overtaken by a later one (reordered on the way) arrives below
 * snd_una: it is ignored, window included. Taken, it pulled snd_una back
 * behind bytes and records the later ACK had released, and when the
 * peer's last ACK was then lost the RTO found nothing it could resend
 * (the pipe counted the phantom bytes): the flow stalled until the
 * connection timed out (seen under 1% loss and reordering).
 */
static void test_old_ack_overtaken(void **state)
{
	(void)state;
	open_with_mss(1000);
	struct wp_tcp_conn *c = F.conn;
	uint32_t una = F.pack;
	static uint8_t buf[4000];
	assert_int_equal(wp_tcp_send(c, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_int_equal(c->snd_max, una + 4000);
	F.pack = una + 3000;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(c->snd_una, una + 3000);
	uint32_t wnd = c->snd_wnd;
	/* the ACK of the first segment, overtaken, with an older window */
	F.pack = una + 1000;
	F.pwnd = 1000;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(c->snd_una, una + 3000);
	assert_int_equal(c->snd_wnd, wnd);
	assert_int_equal(F.ctr[WP_CTR_TCP_ACK_OLD], 1);
	/* the ACK of the last segment is lost: the RTO resends it */
	unsigned n = ncap;
	advance(c->rto_us + 2000);
	assert_true(ncap > n);
	assert_int_equal(out(-1).seq, una + 3000);
	assert_int_equal(out(-1).len, 1000);
	F.pack = una + 4000;
	F.pwnd = 65535;
	peer(TH_ACK, NULL, 0);
	assert_int_equal(c->snd_una, c->snd_max);
	assert_int_equal(c->rec_n, 0);
}

/*
 * Our data past the peer's right edge (it shrank its window to zero after
 * we sent): an ACK from snd_max would lie outside its window, and a
 * receiver with a zero window drops such a segment with the ACK in it. The
 * ACK goes out at the edge, where the peer reads it.
 */
static void test_ack_at_edge_when_window_shrank(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	uint32_t una = open_small_window(&cfg);
	struct wp_tcp_conn *c = F.conn;
	/* the peer takes back its window without acknowledging anything and
	 * sends data: our ACK of it carries the edge, not snd_max */
	F.pwnd = 0;
	peer(TH_ACK, "0123456789", 10);
	advance(cfg.delack_us + 1000); /* the ACK may be delayed */
	struct seg a = out(-1);
	assert_int_equal(a.len, 0);
	assert_int_equal(a.ack, F.pseq);
	assert_int_equal(a.seq, una);
	/* a RST from here is at the edge too: the peer resets on it */
	wp_tcp_abort(c);
	struct seg r = out(-1);
	assert_true(r.flags & TH_RST);
	assert_int_equal(r.seq, una);
}

/* ---- TSO ---- */

/*
 * With TSO new data leaves as one segment for the device to cut: as many
 * pieces as the congestion window allows (10 at the start), the piece size
 * in tso_segsz, the pseudo-header sum without the length in the checksum
 * field, PSH only with the last byte queued. The scoreboard keeps a record
 * per piece, so a lost piece is retransmitted alone as an ordinary segment;
 * after recovery new data goes out cut again, in pieces of tso_mss when the
 * device needs them smaller than the MSS; with no room for a large segment
 * the data goes out as ordinary segments.
 */
static void test_tso(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.tso_max = 65000;
	cfg.tso_mss = 1460;
	cfg.snd_buf = 1 << 20;
	start(&cfg);
	open_passive(false);
	struct wp_tcp_conn *c = F.conn;
	static uint8_t buf[200000];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 9));
	unsigned n0 = ncap;
	assert_int_equal(wp_tcp_send(c, buf, 20000), 20000);
	assert_int_equal(ncap, n0 + 1);
	struct cap *k = &caps[n0];
	assert_int_equal(k->tso_segsz, 1460);
	assert_int_equal(k->full_len, 20 + 10 * 1460);
	assert_int_equal(F.ctr[WP_CTR_TCP_TSO_SENT], 1);
	uint16_t ck;
	memcpy(&ck, tso_last + 16, 2);
	assert_int_equal(ck, wp_tcp_phdr_sum(k->src, k->dst, 0));
	assert_int_equal(tso_last[13], TH_ACK); /* no PSH: more data is queued */
	uint32_t base = rd32(tso_last + 4);
	assert_memory_equal(tso_last + 20, buf, 10 * 1460);
	assert_int_equal(c->rec_n, 10);
	for (unsigned i = 0; i < 10; i++) {
		assert_int_equal(rec_get(c, i)->seq, base + i * 1460);
		assert_int_equal(rec_get(c, i)->end, base + (i + 1) * 1460);
	}

	/* piece 0 lost: SACKs of 1..3 make it lost; it goes out alone */
	struct pkt p = {.seq = F.pseq, .ack = base, .flags = TH_ACK, .wnd = 65535, .nsack = 1};
	for (uint32_t j = 1; j <= 3; j++) {
		p.sack[0][0] = base + 1460;
		p.sack[0][1] = base + (j + 1) * 1460;
		inject(&p);
	}
	assert_true(c->in_recovery);
	bool resent = false;
	for (unsigned i = n0 + 1; i < ncap; i++) {
		assert_int_equal(caps[i].tso_segsz, 0); /* nothing cut during recovery */
		struct seg r = out((int)i);
		if (r.seq == base) {
			assert_int_equal(r.len, 1460);
			assert_memory_equal(r.data, buf, 1460);
			resent = true;
		}
	}
	assert_true(resent);

	/* the ACK that ends recovery lets the rest go, cut again; PSH on the
	 * piece with the last byte queued */
	uint32_t tso0 = (uint32_t)F.ctr[WP_CTR_TCP_TSO_SENT];
	unsigned n1 = ncap;
	p.nsack = 0;
	p.ack = c->snd_max;
	inject(&p);
	assert_false(c->in_recovery);
	for (int round = 0; round < 8 && c->snd_nxt != base + 20000; round++) {
		p.ack = c->snd_max;
		inject(&p);
	}
	assert_int_equal(c->snd_nxt, base + 20000);
	assert_true(F.ctr[WP_CTR_TCP_TSO_SENT] > tso0);
	unsigned last_tso = 0;
	for (unsigned i = n1; i < ncap; i++) {
		const uint8_t *b = caps[i].tso_segsz ? tso_last : caps[i].b;
		uint32_t seq = rd32(caps[i].b + 4), len = caps[i].full_len - 20u;
		if (caps[i].tso_segsz)
			last_tso = i;
		if (caps[i].tso_segsz && i != ncap - 1)
			continue; /* tso_last holds only the newest whole */
		assert_memory_equal(b + 20, buf + (seq - base), len);
	}
	assert_true(last_tso >= n1);
	assert_int_equal(caps[ncap - 1].b[13], TH_ACK | TH_PSH);
	p.ack = c->snd_max;
	inject(&p);

	/* pieces of tso_mss for a device that needs them shorter; with data
	 * from the peer out of order, the SACK block every piece repeats
	 * makes them shorter still */
	F.st->cfg.tso_mss = 1446;
	c->cwnd = 40 * 1460;
	struct pkt gap = {.seq = F.pseq + 100, .ack = c->snd_max, .flags = TH_ACK, .wnd = 65535};
	gap.data = buf;
	gap.len = 10;
	inject(&gap);
	assert_int_equal(c->nooo, 1);
	uint32_t seg = 1446 - opts_len(c); /* the SACK block repeated in every piece */
	assert_int_equal(seg, 1434);
	n1 = ncap;
	assert_int_equal(wp_tcp_send(c, buf + 20000, 30000), 30000);
	assert_int_equal(caps[n1].tso_segsz, seg);
	assert_int_equal((tso_last[12] >> 4) * 4 - 20 + seg, 1446);
	uint32_t first = rd32(tso_last + 4);
	assert_int_equal(ncap, n1 + 1);
	assert_int_equal(caps[n1].full_len - (tso_last[12] >> 4) * 4, 30000);
	assert_memory_equal(tso_last + (tso_last[12] >> 4) * 4, buf + 20000, 30000);
	assert_int_equal(c->rec_n, 21); /* 20 pieces of 1434, one of 1320 */
	for (uint32_t i = 0; i < 21; i++) {
		assert_int_equal(rec_get(c, i)->seq, first + i * seg);
		assert_int_equal(rec_get(c, i)->end - rec_get(c, i)->seq, i < 20 ? seg : 1320);
	}
	p.ack = c->snd_max;
	inject(&p);

	/* no room for a large segment: ordinary ones, counted */
	fail_alloc_over = 2000;
	n1 = ncap;
	tso0 = (uint32_t)F.ctr[WP_CTR_TCP_TSO_SENT];
	uint64_t fails = F.ctr[WP_CTR_TCP_TX_ALLOC_FAIL];
	uint32_t from = c->snd_nxt - first + 20000;
	assert_int_equal(wp_tcp_send(c, buf + 50000, 10000), 10000);
	assert_true(ncap > n1 + 1);
	assert_int_equal(F.ctr[WP_CTR_TCP_TSO_SENT], tso0);
	assert_true(F.ctr[WP_CTR_TCP_TX_ALLOC_FAIL] > fails);
	for (unsigned i = n1; i < ncap; i++) {
		struct seg r = out((int)i);
		assert_int_equal(caps[i].tso_segsz, 0);
		assert_true(r.len <= 1460);
		assert_memory_equal(r.data, buf + from + (r.seq - rd32(caps[n1].b + 4)), r.len);
	}
}

/*
 * With timestamps a segment carries 1448 bytes: 1460 queued leave as one
 * segment for the device to cut (1448 + 12), never as one ordinary segment
 * of 1460 that would be 12 bytes over the MSS; likewise every piece and
 * every ordinary segment stays within the MSS, options included.
 */
static void test_tso_within_mss(void **state)
{
	(void)state;
	struct wp_tcp_config cfg;
	setup_cfg(&cfg);
	cfg.tso_max = 65000;
	cfg.tso_mss = 1460;
	start(&cfg);
	open_passive(true);
	struct wp_tcp_conn *c = F.conn;
	static uint8_t buf[1460];
	memset(buf, 0x5a, sizeof(buf));
	unsigned n0 = ncap;
	assert_int_equal(wp_tcp_send(c, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_int_equal(ncap, n0 + 1);
	assert_int_equal(caps[n0].tso_segsz, 1448);
	assert_int_equal(tso_last[12] >> 4, 8); /* timestamps */
	assert_int_equal(caps[n0].full_len, 32 + 1460);
	assert_int_equal(c->rec_n, 2);
	assert_int_equal(rec_get(c, 0)->end - rec_get(c, 0)->seq, 1448);
	assert_int_equal(rec_get(c, 1)->end - rec_get(c, 1)->seq, 12);
	/* lost: each piece goes again on its own, within the MSS */
	advance(3000000);
	assert_true(ncap > n0 + 1);
	for (unsigned i = n0 + 1; i < ncap; i++) {
		assert_int_equal(caps[i].tso_segsz, 0);
		assert_true(caps[i].full_len <= 20 + 1460);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_rto_backoff, teardown),
	        cmocka_unit_test_teardown(test_rto_zero_window_peer_alive, teardown),
	        cmocka_unit_test_teardown(test_fast_retransmit, teardown),
	        cmocka_unit_test_teardown(test_fast_retransmit_newreno, teardown),
	        cmocka_unit_test_teardown(test_recovery_on_data_acks, teardown),
	        cmocka_unit_test_teardown(test_rack_reordering_window, teardown),
	        cmocka_unit_test_teardown(test_lost_retransmission, teardown),
	        cmocka_unit_test_teardown(test_tail_loss_probe, teardown),
	        cmocka_unit_test_teardown(test_rescue_retransmission, teardown),
	        cmocka_unit_test_teardown(test_limited_transmit_newreno, teardown),
	        cmocka_unit_test_teardown(test_rto_then_sack_repair, teardown),
	        cmocka_unit_test_teardown(test_window_from_acking_retransmission, teardown),
	        cmocka_unit_test_teardown(test_ack_at_edge_when_window_shrank, teardown),
	        cmocka_unit_test_teardown(test_old_ack_overtaken, teardown),
	        cmocka_unit_test_teardown(test_tso, teardown),
	        cmocka_unit_test_teardown(test_tso_within_mss, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
