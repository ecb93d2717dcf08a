/*
 * Input of the TCP stack: wp_tcp_input() checks and parses a segment
 * (header, options) and hands it to its connection, its TIME_WAIT entry, a
 * listener (tcp_listen.c) or answers it with a RST. For a connection, the
 * RFC 9293 state machine with the RFC 5961 hardening and PAWS (RFC 7323)
 * validates it; ACK processing updates the send window, RTT (RFC 6298),
 * congestion window and scoreboard (through tcp_recovery.c); payload goes
 * into the receive ring, out-of-order ranges included (in-order payload
 * already while its checksum is verified), and is delivered to the app; then the output loop
 * (tcp_output.c) sends what the segment made possible.
 */
#include <errno.h>
#include <string.h>

#include "cksum.h"
#include "tcp_int.h"

/* ---- RTT, the established state and challenge ACKs ---- */

static void rtt_sample(struct wp_tcp_conn *c, uint32_t r)
{
	const struct wp_tcp_config *cfg = &c->st->cfg;
	if (!c->rtt_valid) {
		c->srtt_us = r;
		c->rttvar_us = r / 2;
		c->rtt_valid = true;
	} else {
		uint32_t d = c->srtt_us > r ? c->srtt_us - r : r - c->srtt_us;
		c->rttvar_us = (3 * c->rttvar_us + d) / 4;
		c->srtt_us = (7 * c->srtt_us + r) / 8;
	}
	uint64_t rto = (uint64_t)c->srtt_us + WP_MAX(TICK_US, 4u * c->rttvar_us);
	c->rto_us =
	        (uint32_t)WP_MIN(WP_MAX(rto, (uint64_t)cfg->rto_min_us), (uint64_t)cfg->rto_max_us);
}

void wp_tcp_on_established(struct wp_tcp_conn *c)
{
	c->cwnd = WP_MIN(10u * c->mss, WP_MAX(2u * c->mss, 14600u)); /* RFC 6928 */
	c->ssthresh = UINT32_MAX / 2;
	c->recover = c->snd_una;
	c->retries = 0;
	c->backoff = 0;
	c->syn_rexmit = false;
	stop_timer(c, T_RTO);
	set_state(c, c->fin_queued ? WP_TCP_FIN_WAIT_1 : WP_TCP_ESTABLISHED);
	if (c->keep_idle_ms)
		wp_tcp_set_timer(c, T_KEEP, c->st->now_us + (uint64_t)c->keep_idle_ms * 1000);
}

static void challenge_ack(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (st->now_us - st->chack_start >= ONE_SEC_US) {
		st->chack_start = st->now_us;
		st->chack_n = 0;
	}
	if (st->chack_n >= st->cfg.challenge_ack_per_sec) {
		ctr_inc(st, WP_CTR_TCP_CHALLENGE_ACK_LIMITED);
		return;
	}
	st->chack_n++;
	ctr_inc(st, WP_CTR_TCP_CHALLENGE_ACK);
	send_ack(c);
}

/* ---- ACK processing ---- */

/* Returns false when the connection is gone. */
static bool process_ack(struct wp_tcp_conn *c, const struct seg *s)
{
	struct wp_tcp_stack *st = c->st;
	bool wnd_changed = false;
	uint32_t new_wnd = (uint32_t)s->wnd << c->snd_wscale;

	/*
	 * An ACK below SND.UNA (one overtaken by a later one, or the ACK in a
	 * retransmitted segment of the peer's) says nothing new; its window is
	 * older than the one we have (RFC 9293 3.10.7.4 updates the window only
	 * when SND.UNA =< SEG.ACK). Taken, it would pull snd_una back behind
	 * the bytes and scoreboard records the newer ACK already released, and
	 * an RTO would then find nothing to resend: the flow stalls until the
	 * peer sends again.
	 */
	if (SEQ_LT(s->ack, c->snd_una)) {
		ctr_inc(st, WP_CTR_TCP_ACK_OLD);
		return true;
	}

	/*
	 * The window is taken from a newer segment (RFC 9293 3.10.7.4) and,
	 * as Linux does, from any segment that acknowledges new data: the
	 * window is relative to the ACK it came with, so keeping the old one
	 * while snd_una moves would slide the right edge past what the peer
	 * offered (an old retransmission carrying a new ACK and window 0).
	 */
	if (SEQ_GT(s->ack, c->snd_una) || SEQ_LT(c->snd_wl1, s->seq) ||
	    (c->snd_wl1 == s->seq && SEQ_LEQ(c->snd_wl2, s->ack))) {
		wnd_changed = new_wnd != c->snd_wnd;
		c->snd_wnd = new_wnd;
		if (SEQ_GT(s->seq, c->snd_wl1))
			c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		if (new_wnd > c->max_snd_wnd)
			c->max_snd_wnd = new_wnd;
	}
	uint32_t prior_sacked = c->sacked_out;
	bool sack_new = c->sack_ok && c->rec_n && s->nsack && wp_tcp_sack_mark(c, s);

	if (s->ack == c->snd_una) {
		if (c->snd_max == c->snd_una)
			return true;
		uint32_t delivered = c->sacked_out - prior_sacked;
		if (!c->sack_ok && s->len == 0 && !wnd_changed && !(s->flags & (TH_SYN | TH_FIN))) {
			c->dupacks++; /* RFC 5681 duplicate ACK; counts as one MSS delivered */
			delivered = c->mss;
		} else if (!c->sack_ok || !sack_new) {
			return true;
		}
		wp_tcp_recovery_step(c, delivered);
		return true; /* wp_tcp_conn_input() sends what the step allows */
	}

	/* New data acknowledged (the SYN's sequence number is not data). */
	uint32_t acked = s->ack - c->snd_una - (c->snd_una == c->iss);
	if (c->ts_ok && s->has_ts && s->tsecr) {
		uint32_t r = ts_now(st) + c->ts_offset - s->tsecr;
		if (r < 60000)
			rtt_sample(c, r * 1000);
	} else if (c->rtt_active && SEQ_GEQ(s->ack, c->rtt_seq)) {
		c->rtt_active = false;
		rtt_sample(c, (uint32_t)(st->now_us - c->rtt_start_us));
	}
	c->backoff = 0;
	c->retries = 0;
	c->tlp_out = false;

	wp_tcp_rec_ack(c, s->ack);
	uint32_t data_end = c->sbuf_seq + c->slen;
	if (SEQ_GT(s->ack, c->sbuf_seq)) {
		uint32_t upto = SEQ_LT(s->ack, data_end) ? s->ack : data_end;
		uint32_t n = upto - c->sbuf_seq;
		c->shead = (c->shead + n) % st->cfg.snd_buf;
		c->slen -= n;
		c->sbuf_seq += n;
		if (!c->slen && c->sbuf) {
			WP_ASSERT(!c->rec_n);
			pool_put(&st->spool, c->sbuf);
			c->sbuf = NULL;
			c->rec = NULL;
			c->shead = 0;
		}
	}
	c->snd_una = s->ack;
	if (SEQ_LT(c->snd_nxt, c->snd_una))
		c->snd_nxt = c->snd_una;
	uint32_t delivered = acked + (c->sacked_out - prior_sacked); /* may wrap below 0 */
	if ((int32_t)delivered < 0)
		delivered = 0;
	c->dupacks = 0;

	if (c->in_recovery && SEQ_GEQ(s->ack, c->recover)) {
		c->in_recovery = false;
		c->cwnd = c->ssthresh;
	} else if (c->in_recovery) {
		/* Partial ACK (RFC 6582): without SACK the next segment is lost too. */
		if (!c->sack_ok && c->rec_n && !(rec_get(c, 0)->flags & TR_RETRANS))
			rec_mark_lost(c, rec_get(c, 0), WP_CTR_TCP_SACK_LOST);
	} else if (acked) {
		if (c->cwnd < c->ssthresh)
			c->cwnd += WP_MIN(acked, 2u * c->mss);
		else
			c->cwnd += WP_MAX(1u, (uint32_t)((uint64_t)c->mss * c->mss / c->cwnd));
		if (c->cwnd > (1u << 30))
			c->cwnd = 1u << 30;
	}
	wp_tcp_recovery_step(c, delivered);

	if (c->snd_una == c->snd_max) {
		stop_timer(c, T_RTO);
		stop_timer(c, T_REO);
	} else {
		wp_tcp_arm_rto(c);
	}
	arm_pto(c);

	if (c->fin_queued && SEQ_GT(s->ack, c->fin_seq)) {
		switch (c->state) {
		case WP_TCP_FIN_WAIT_1:
			set_state(c, WP_TCP_FIN_WAIT_2);
			if (c->app_closed)
				wp_tcp_set_timer(c, T_KEEP, st->now_us + st->cfg.fin_wait2_us);
			break;
		case WP_TCP_CLOSING:
			set_state(c, WP_TCP_TIME_WAIT);
			break;
		case WP_TCP_LAST_ACK:
			set_state(c, WP_TCP_CLOSED);
			break;
		default:
			break;
		}
	}

	if (c->want_writable && c->app_owned && !c->app_closed && !c->fin_queued &&
	    c->slen < st->cfg.snd_buf) {
		c->want_writable = false;
		if (c->cbs && c->cbs->writable) {
			c->cbs->writable(c, c->arg);
			if (c->dead)
				return false;
		}
	}
	return true;
}

/* ---- Data, reassembly and delivery ---- */

/* Adds [s, e) to the out-of-order table. -1 when the table is full. */
static int reasm_insert(struct wp_tcp_conn *c, uint32_t s, uint32_t e)
{
	struct seq_range out[WP_TCP_MAX_OOO + 1];
	int n = 0, at = -1;
	for (int i = 0; i < c->nooo; i++) {
		struct seq_range r = c->ooo[i];
		if (SEQ_LEQ(r.start, s) && SEQ_GEQ(r.end, e))
			ctr_inc(c->st, WP_CTR_TCP_REASM_DUP);
		if (SEQ_LT(r.end, s)) {
			out[n++] = r;
		} else if (SEQ_GT(r.start, e)) {
			if (at < 0) {
				at = n;
				out[n++] = (struct seq_range){s, e};
			}
			out[n++] = r;
		} else {
			if (SEQ_LT(r.start, s))
				s = r.start;
			if (SEQ_GT(r.end, e))
				e = r.end;
		}
	}
	if (at < 0) {
		at = n;
		out[n++] = (struct seq_range){s, e};
	}
	if (n > c->st->cfg.max_ooo_ranges)
		return -1;
	memcpy(c->ooo, out, sizeof(out[0]) * n);
	c->nooo = (uint8_t)n;
	c->ooo_recent = (uint8_t)at;
	return 0;
}

/* Moves out-of-order ranges that now touch rcv_nxt into the in-order data. */
static void reasm_pull(struct wp_tcp_conn *c)
{
	int i = 0;
	while (i < c->nooo && SEQ_LEQ(c->ooo[i].start, c->rcv_nxt)) {
		if (SEQ_GT(c->ooo[i].end, c->rcv_nxt)) {
			c->rlen += c->ooo[i].end - c->rcv_nxt;
			c->rcv_nxt = c->ooo[i].end;
		}
		i++;
	}
	if (i) {
		memmove(c->ooo, c->ooo + i, sizeof(c->ooo[0]) * (c->nooo - i));
		c->nooo = (uint8_t)(c->nooo - i);
		c->ooo_recent = 0;
	}
}

static void fin_input(struct wp_tcp_conn *c)
{
	c->rcv_nxt++;
	c->fin_rcvd = true;
	c->ooo_fin = false;
	c->ack_now = true;
	switch (c->state) {
	case WP_TCP_SYN_RECEIVED:
	case WP_TCP_ESTABLISHED:
		set_state(c, WP_TCP_CLOSE_WAIT);
		break;
	case WP_TCP_FIN_WAIT_1:
		set_state(c, WP_TCP_CLOSING);
		break;
	case WP_TCP_FIN_WAIT_2:
		set_state(c, WP_TCP_TIME_WAIT);
		break;
	default:
		break;
	}
	stop_timer(c, T_KEEP);
}

/* Copies the segment's payload (s->len bytes from s->skip on, across its
 * pieces) into <ring> at <pos>. */
static void seg_to_ring(const struct seg *s, uint8_t *ring, uint32_t size, uint32_t pos)
{
	const uint8_t *p = s->data;
	uint32_t n = s->head, skip = s->skip, left = s->len;

	for (unsigned i = 0;; i++) {
		if (skip < n) {
			uint32_t k = WP_MIN(n - skip, left);

			ring_write(ring, size, pos, p + skip, k);
			pos += k;
			left -= k;
			skip = 0;
		} else {
			skip -= n;
		}
		if (left == 0 || i == s->nmore)
			return;
		p = s->more[i].p;
		n = s->more[i].len;
	}
}

/* Places trimmed payload (s->seq >= rcv_nxt) into the receive ring. */
static void data_input(struct wp_tcp_conn *c, struct seg *s)
{
	struct wp_tcp_stack *st = c->st;
	uint32_t wnd = rcv_wnd_accept(c);
	uint32_t off = s->seq - c->rcv_nxt;
	if (off >= wnd) {
		ctr_inc(st, wnd ? WP_CTR_TCP_OUT_OF_WINDOW : WP_CTR_TCP_ZERO_WINDOW_DROP);
		s->len = 0;
		s->flags &= (uint8_t)~TH_FIN;
		c->ack_now = true;
		return;
	}
	if (off + s->len > wnd) {
		s->len = wnd - off;
		s->flags &= (uint8_t)~TH_FIN;
		c->ack_now = true;
	}
	if (!c->rbuf) {
		c->rbuf = pool_get(&st->rpool);
		if (!c->rbuf) {
			ctr_inc(st, WP_CTR_TCP_RCVBUF_POOL_EMPTY);
			s->len = 0;
			s->flags &= (uint8_t)~TH_FIN;
			return;
		}
		c->rhead = 0;
	}
	if (s->len > c->rcv_mss)
		c->rcv_mss = WP_MIN(s->len, (uint32_t)st->cfg.mss);
	uint32_t pos = c->rhead + c->rlen + off;
	/* (verify() placed it where it goes, unless something moved since) */
	if (!(s->placed == c->rbuf && s->skip == 0 && s->placed_pos == pos % st->cfg.rcv_buf))
		seg_to_ring(s, c->rbuf, st->cfg.rcv_buf, pos);
	if (off == 0) {
		c->last_data_us = st->now_us;
		c->rcv_since_send += s->len;
		c->rlen += s->len;
		c->rcv_nxt += s->len;
		c->rcv_unacked += s->len;
		if (c->nooo) {
			reasm_pull(c);
			c->ack_now = true; /* a hole filled: tell the sender at once */
		} else if (c->rcv_unacked >= 2 * c->rcv_mss) {
			c->ack_now = true;
		} else if ((s->flags & TH_PSH) && s->len < c->rcv_mss &&
		           (!c->pingpong || c->slen != 0)) {
			/* end of a message: no delayed-ACK stall; nor while we
			 * still send (a peer answering our stream with small
			 * segments, Nagle on, waits for this ACK to send more) */
			c->ack_now = true;
		} else if (s->flags & TH_PSH && s->len < c->rcv_mss) {
			/* pingpong, all we sent acknowledged: our answer carries
			 * the ACK; an app that waits for the rest of a message
			 * asks for it (wp_tcp_quickack) */
			c->ack_pending = true;
			ctr_inc(st, WP_CTR_TCP_ACK_HELD);
		} else {
			c->ack_pending = true;
		}
	} else {
		c->pingpong = false; /* loss or reordering: ACK every segment at once */
		if (reasm_insert(c, s->seq, s->seq + s->len) < 0) {
			ctr_inc(st, WP_CTR_TCP_REASM_OVERFLOW);
			s->flags &= (uint8_t)~TH_FIN;
		} else {
			ctr_inc(st, WP_CTR_TCP_REASM_QUEUED);
		}
		c->ack_now = true; /* duplicate ACK with SACK blocks */
	}
}

/* Offers buffered in-order bytes to the app, then EOF once everything is read. */
void wp_tcp_deliver(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->dead || !c->app_owned || c->app_closed || c->delivering)
		return;
	c->delivering = true;
	while (c->rlen && c->cbs && !c->app_closed) {
		uint32_t chunk = WP_MIN(c->rlen, st->cfg.rcv_buf - c->rhead);
		size_t n = chunk;
		c->offered = chunk;
		if (c->cbs->data)
			n = c->cbs->data(c, c->arg, c->rbuf + c->rhead, chunk);
		c->offered = 0;
		if (c->dead)
			return;
		if (n > chunk || c->app_closed)
			n = chunk; /* closed from inside the callback: the chunk is done */
		c->rhead = (c->rhead + (uint32_t)n) % st->cfg.rcv_buf;
		c->rlen -= (uint32_t)n;
		if (n < chunk)
			break;
	}
	c->delivering = false;
	if (!c->rlen && !c->nooo && c->rbuf) {
		/* Out-of-order data sits relative to rhead: only reset when none. */
		pool_put(&st->rpool, c->rbuf);
		c->rbuf = NULL;
		c->rhead = 0;
	}
	if (c->fin_rcvd && !c->rlen && !c->eof_delivered && !c->app_closed) {
		c->eof_delivered = true;
		if (c->cbs && c->cbs->eof) {
			c->cbs->eof(c, c->arg);
			if (c->dead)
				return;
		}
	}
	/* Window update once the app freed a worthwhile amount. */
	if (!c->fin_rcvd && synchronized(c)) {
		uint32_t space = rcv_space(c);
		uint32_t cur = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
		uint32_t thr = WP_MIN(st->cfg.rcv_buf / 2, 2 * c->rcv_mss);
		if (space > cur && space - cur >= thr)
			c->ack_now = true;
	}
}

/* ---- Per-state processing ---- */

void wp_tcp_syn_options(struct wp_tcp_conn *c, const struct seg *s)
{
	struct wp_tcp_stack *st = c->st;
	c->mss = (uint16_t)WP_MIN(s->has_mss ? s->mss : MSS_DEFAULT, st->cfg.mss);
	if (c->mss < MSS_MIN)
		c->mss = MSS_MIN;
	c->ws_ok = st->cfg.window_scaling && s->has_ws;
	c->snd_wscale = c->ws_ok ? (uint8_t)WP_MIN(s->ws, 14) : 0;
	c->rcv_wscale = c->ws_ok ? st->rcv_wscale : 0;
	c->sack_ok = st->cfg.sack && s->has_sackok;
	c->ts_ok = st->cfg.timestamps && s->has_ts;
	if (c->ts_ok) {
		c->ts_recent = s->tsval;
		c->ts_recent_us = st->now_us;
	}
	c->snd_wnd = s->wnd; /* never scaled in a SYN */
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = s->seq;
	c->rcv_mss = (uint32_t)st->cfg.mss - (c->ts_ok ? 12 : 0);
}

static void syn_sent_input(struct wp_tcp_conn *c, struct seg *s)
{
	struct wp_tcp_stack *st = c->st;
	if (s->flags & TH_ACK) {
		if (SEQ_LEQ(s->ack, c->iss) || SEQ_GT(s->ack, c->snd_max)) {
			ctr_inc(st, WP_CTR_TCP_BAD_SYNSENT_ACK);
			if (!(s->flags & TH_RST))
				wp_tcp_send_rst_reply(st, &c->laddr, &c->raddr, s);
			return;
		}
	}
	if (s->flags & TH_RST) {
		if (s->flags & TH_ACK) {
			ctr_inc(st, WP_CTR_TCP_CONN_RESET);
			terminate(c, WP_TCP_CLOSE_RESET);
		} else {
			ctr_inc(st, WP_CTR_TCP_OUT_OF_WINDOW);
		}
		return;
	}
	if (!(s->flags & TH_SYN))
		return;
	c->irs = s->seq;
	c->rcv_nxt = s->seq + 1;
	c->rcv_adv = c->rcv_nxt + syn_window(st);
	wp_tcp_syn_options(c, s);
	if (s->flags & TH_ACK) {
		if (!c->syn_rexmit)
			rtt_sample(c, (uint32_t)(st->now_us - c->rtt_start_us));
		c->snd_una = s->ack;
		c->snd_wl2 = s->ack;
		wp_tcp_on_established(c);
		c->ack_now = true;
		if (c->cbs && c->cbs->connected) {
			c->cbs->connected(c, c->arg);
			if (c->dead)
				return;
		}
		wp_tcp_output(c);
		return;
	}
	/* Simultaneous open. */
	set_state(c, WP_TCP_SYN_RECEIVED);
	wp_tcp_send_synack(c);
	wp_tcp_arm_rto(c);
}

/* ---- Receive coalescing (rx_coalesce) ---- */

/* What a segment's input ends with: data up to the app, then due segments out. */
static void rx_serve(struct wp_tcp_conn *c)
{
	c->rx_filed = false;
	wp_tcp_deliver(c);
	if (c->dead)
		return;
	wp_tcp_output(c);
	wp_tcp_maybe_finish(c);
}

/* Files <c> until wp_tcp_rx_flush(); false when the queue is full (serve now). */
static bool rx_file(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->rx_filed) {
		ctr_inc(st, WP_CTR_TCP_RX_COALESCED);
		return true;
	}
	if (st->rxq_n == RXQ_MAX)
		return false;
	st->rxq[st->rxq_n++] = c->idx;
	c->rx_filed = true;
	return true;
}

unsigned wp_tcp_rx_flush(struct wp_tcp_stack *st, uint64_t now_us)
{
	unsigned served = 0;
	if (!st->rxq_n)
		return 0;
	enter(st, now_us);
	for (uint32_t i = 0; i < st->rxq_n; i++) {
		struct wp_tcp_conn *c = &st->conns[st->rxq[i]];
		/* released since (dead, or recycled: zeroed) or served already */
		if (!c->rx_filed || c->dead)
			continue;
		rx_serve(c);
		served++;
	}
	st->rxq_n = 0;
	leave(st);
	return served;
}

void wp_tcp_conn_input(struct wp_tcp_conn *c, struct seg *s)
{
	struct wp_tcp_stack *st = c->st;
	c->last_rcv_us = st->now_us;
	c->keep_probes = 0;

	/* A segment that changes the state finds the filed data already read
	 * (the ACK still waits for the segment's own output, or the flush). */
	if (c->rx_filed && (s->flags & (TH_SYN | TH_FIN | TH_RST))) {
		wp_tcp_deliver(c);
		if (c->dead)
			return;
	}

	if (c->state == WP_TCP_SYN_SENT) {
		syn_sent_input(c, s);
		return;
	}
	if (c->state == WP_TCP_CLOSED) {
		if (!(s->flags & TH_RST))
			wp_tcp_send_rst_reply(st, &c->laddr, &c->raddr, s);
		return;
	}
	/* PAWS (RFC 7323 5). */
	if (c->ts_ok && s->has_ts && !(s->flags & TH_RST) && SEQ_LT(s->tsval, c->ts_recent) &&
	    st->now_us - c->ts_recent_us < PAWS_IDLE_US) {
		ctr_inc(st, WP_CTR_TCP_PAWS_REJECTED);
		send_ack(c);
		return;
	}
	/* The peer retransmitted its SYN: our SYN-ACK was lost. */
	if (c->state == WP_TCP_SYN_RECEIVED && (s->flags & (TH_SYN | TH_ACK)) == TH_SYN &&
	    s->seq == c->irs) {
		wp_tcp_send_synack(c);
		return;
	}

	/* Simultaneous open: the peer's SYN-ACK repeats the SYN we already have. */
	if (c->state == WP_TCP_SYN_RECEIVED &&
	    (s->flags & (TH_SYN | TH_ACK)) == (TH_SYN | TH_ACK) && s->seq == c->irs) {
		s->flags &= (uint8_t)~TH_SYN;
		s->seq++;
	}
	uint32_t seglen = s->len + !!(s->flags & TH_SYN) + !!(s->flags & TH_FIN);
	uint32_t wnd = rcv_wnd_accept(c);
	uint32_t nxt = c->rcv_nxt;
	bool ok;
	if (seglen == 0)
		ok = wnd == 0 ? s->seq == nxt : SEQ_GEQ(s->seq, nxt) && SEQ_LT(s->seq, nxt + wnd);
	else if (wnd == 0)
		ok = false;
	else
		ok = (SEQ_GEQ(s->seq, nxt) && SEQ_LT(s->seq, nxt + wnd)) ||
		     (SEQ_GEQ(s->seq + seglen - 1, nxt) &&
		      SEQ_LT(s->seq + seglen - 1, nxt + wnd)) ||
		     (SEQ_LT(s->seq, nxt) && SEQ_GEQ(s->seq + seglen - 1, nxt + wnd));
	if (!ok) {
		if (s->flags & TH_RST) {
			ctr_inc(st, WP_CTR_TCP_OUT_OF_WINDOW);
			return;
		}
		if (wnd == 0 && s->seq == nxt) {
			/* Zero window: keep the ACK information, drop the text. */
			ctr_inc(st, WP_CTR_TCP_ZERO_WINDOW_DROP);
			s->len = 0;
			s->flags &= (uint8_t) ~(TH_FIN | TH_SYN);
			c->ack_now = true;
		} else {
			ctr_inc(st, SEQ_LEQ(s->seq + seglen, nxt) ? WP_CTR_TCP_DUP_SEGMENT
			                                          : WP_CTR_TCP_OUT_OF_WINDOW);
			send_ack(c);
			return;
		}
	}
	/* RST (RFC 5961 3): only an exact match resets; in-window draws a challenge. */
	if (s->flags & TH_RST) {
		if (s->seq != c->rcv_nxt) {
			challenge_ack(c);
			return;
		}
		if (c->state == WP_TCP_TIME_WAIT) {
			ctr_inc(st, WP_CTR_TCP_TIME_WAIT_RST_IGNORED);
			return;
		}
		ctr_inc(st, WP_CTR_TCP_CONN_RESET);
		terminate(c, WP_TCP_CLOSE_RESET);
		return;
	}
	if (c->ts_ok && s->has_ts && SEQ_GEQ(s->tsval, c->ts_recent) &&
	    SEQ_LEQ(s->seq, c->last_ack_sent)) {
		c->ts_recent = s->tsval;
		c->ts_recent_us = st->now_us;
	}
	/* Trim what was already received. */
	bool syn = s->flags & TH_SYN;
	if (SEQ_LT(s->seq, c->rcv_nxt)) {
		uint32_t d = c->rcv_nxt - s->seq;

		if (s->len)
			c->pingpong = false; /* a retransmission: the sender is recovering */
		if (s->flags & TH_SYN) {
			s->flags &= (uint8_t)~TH_SYN;
			s->seq++;
			d--;
		}
		if (d > s->len) {
			s->flags &= (uint8_t)~TH_FIN;
			d = s->len;
		}
		s->skip += d;
		s->len -= d;
		s->seq += d;
	}
	/* A SYN in a synchronized state (RFC 5961 4): challenge ACK. */
	if (syn && (c->state != WP_TCP_SYN_RECEIVED || (s->flags & TH_SYN))) {
		challenge_ack(c);
		return;
	}
	if (!(s->flags & TH_ACK)) {
		ctr_inc(st, WP_CTR_TCP_NO_ACK_FLAG);
		return;
	}
	bool established_now = false;
	if (c->state == WP_TCP_SYN_RECEIVED) {
		if (SEQ_LEQ(s->ack, c->snd_una) || SEQ_GT(s->ack, c->snd_max)) {
			wp_tcp_send_rst_reply(st, &c->laddr, &c->raddr, s);
			return;
		}
		if (c->passive) {
			struct listener *l = &st->listeners[c->listener - 1];
			if (l->acceptq >= st->cfg.accept_backlog) {
				ctr_inc(st, WP_CTR_TCP_ACCEPT_QUEUE_FULL);
				return;
			}
			l->synq--;
			c->in_synq = false;
			wp_tcp_acceptq_push(l, c, false);
		}
		if (!c->syn_rexmit)
			rtt_sample(c, (uint32_t)(st->now_us - c->rtt_start_us));
		c->snd_wnd = (uint32_t)s->wnd << c->snd_wscale;
		c->max_snd_wnd = c->snd_wnd;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		wp_tcp_on_established(c);
		established_now = true;
	}
	/* ACK validation (RFC 5961 5). */
	if (SEQ_GT(s->ack, c->snd_max)) {
		ctr_inc(st, WP_CTR_TCP_ACK_UNSENT);
		send_ack(c);
		return;
	}
	if (SEQ_LT(s->ack, c->snd_una - c->max_snd_wnd)) {
		ctr_inc(st, WP_CTR_TCP_ACK_TOO_OLD);
		challenge_ack(c);
		return;
	}
	if (!process_ack(c, s))
		return;

	bool fin = s->flags & TH_FIN;
	if (s->len) {
		switch (c->state) {
		case WP_TCP_ESTABLISHED:
		case WP_TCP_FIN_WAIT_1:
		case WP_TCP_FIN_WAIT_2:
			if (c->app_closed) {
				ctr_inc(st, WP_CTR_TCP_DATA_AFTER_CLOSE);
				send_rst_conn(c);
				wp_tcp_conn_release(c);
				return;
			}
			data_input(c, s);
			fin = s->flags & TH_FIN;
			break;
		default:
			fin = false; /* text after the peer's FIN: ignore */
			break;
		}
	}
	if (fin && !c->fin_rcvd) {
		if (s->seq + s->len == c->rcv_nxt) {
			fin_input(c);
		} else if (SEQ_GT(s->seq + s->len, c->rcv_nxt)) {
			c->ooo_fin = true;
			c->ooo_fin_seq = s->seq + s->len;
			c->ack_now = true;
		}
	}
	if (c->ooo_fin && !c->fin_rcvd && c->rcv_nxt == c->ooo_fin_seq)
		fin_input(c);

	if (established_now) {
		if (c->passive) {
			ctr_inc(st, WP_CTR_TCP_PASSIVE_OPEN);
			wp_tcp_try_accept(st, &st->listeners[c->listener - 1]);
		} else if (c->cbs && c->cbs->connected) {
			c->cbs->connected(c, c->arg);
		}
		if (c->dead)
			return;
	} else if (st->cfg.rx_coalesce && !(s->flags & TH_FIN) && rx_file(c)) {
		return;
	}
	rx_serve(c);
}

/* ---- TIME_WAIT ---- */

static void tw_send_ack(struct wp_tcp_stack *st, const struct tw_entry *e)
{
	struct txinfo t = {.seq = e->snd_nxt, .ack = e->rcv_nxt, .flags = TH_ACK, .wnd = e->wnd};
	if (e->ts_ok)
		t.optlen = put_ts(t.opt, ts_now(st) + e->ts_offset, e->ts_recent);
	wp_tcp_tx(st, &e->laddr, &e->raddr, e->lport, e->rport, &t);
}

/* Returns true when consumed; false when a new SYN took over the 4-tuple. */
static bool tw_input(struct wp_tcp_stack *st, struct tw_entry *e, const struct seg *s)
{
	if (s->flags & TH_RST) {
		ctr_inc(st, WP_CTR_TCP_TIME_WAIT_RST_IGNORED);
		return true;
	}
	if ((s->flags & (TH_SYN | TH_ACK)) == TH_SYN) {
		if (SEQ_GT(s->seq, e->rcv_nxt) ||
		    (e->ts_ok && s->has_ts && SEQ_GT(s->tsval, e->ts_recent))) {
			wp_tcp_tw_unhash(st, e);
			ctr_inc(st, WP_CTR_TCP_TIME_WAIT_REUSED);
			return false;
		}
		tw_send_ack(st, e);
		return true;
	}
	if (e->ts_ok && s->has_ts && SEQ_LT(s->tsval, e->ts_recent)) {
		ctr_inc(st, WP_CTR_TCP_PAWS_REJECTED);
		tw_send_ack(st, e);
		return true;
	}
	if (s->len || (s->flags & TH_FIN))
		tw_send_ack(st, e);
	return true;
}

/* ---- Entry points ---- */

void wp_tcp_parse_opts(const uint8_t *o, unsigned n, struct seg *s)
{
	unsigned i = 0;
	bool syn = s->flags & TH_SYN;
	while (i < n) {
		uint8_t k = o[i];
		if (k == OPT_EOL)
			break;
		if (k == OPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= n)
			break;
		uint8_t l = o[i + 1];
		if (l < 2 || i + l > n)
			break;
		switch (k) {
		case OPT_MSS:
			if (l == 4 && syn) {
				s->has_mss = true;
				s->mss = rd16(o + i + 2);
			}
			break;
		case OPT_WS:
			if (l == 3 && syn) {
				s->has_ws = true;
				s->ws = o[i + 2];
			}
			break;
		case OPT_SACKOK:
			if (l == 2 && syn)
				s->has_sackok = true;
			break;
		case OPT_SACK:
			if (l >= 10 && (l - 2) % 8 == 0 && !syn) {
				unsigned nb = WP_MIN((unsigned)(l - 2) / 8, 4u);
				for (unsigned b = 0; b < nb; b++) {
					s->sack[b].start = rd32(o + i + 2 + 8 * b);
					s->sack[b].end = rd32(o + i + 6 + 8 * b);
				}
				s->nsack = (uint8_t)nb;
			}
			break;
		case OPT_TS:
			if (l == 10) {
				s->has_ts = true;
				s->tsval = rd32(o + i + 2);
				s->tsecr = rd32(o + i + 6);
			}
			break;
		default:
			break;
		}
		i += l;
	}
}

/*
 * Verifies the checksum of the <len>-byte segment at <p> (header <doff>
 * bytes). Payload that continues the in-order stream of <c>, established,
 * with nothing out of order held and room in its receive ring, is copied
 * into the ring's free space as it is summed: one pass over bytes that are
 * usually not in this core's cache yet, where a sum and then data_input()'s
 * copy take two. s->placed says where; data_input() does not copy it
 * again if it goes to the same place. A bad segment's bytes stay in free
 * space, where nothing reads them.
 */
static bool verify(struct wp_tcp_stack *st, struct wp_tcp_conn *c, uint32_t src_ip, uint32_t dst_ip,
                   const uint8_t *p, uint16_t len, unsigned doff, struct seg *s)
{
	uint32_t n = len - doff, size = st->cfg.rcv_buf;

	if (c == NULL || n == 0 || c->state != WP_TCP_ESTABLISHED || c->nooo || c->rbuf == NULL ||
	    rd32(p + 4) != c->rcv_nxt || n > size - c->rlen)
		return wp_tcp_cksum(src_ip, dst_ip, p, len) == 0;
	s->placed_pos = (c->rhead + c->rlen) % size;
	uint64_t sum = wp_cksum_add(wp_tcp_phdr_add(src_ip, dst_ip, len), p, doff) +
	               /* (doff is a multiple of 4) */
	               ring_write_cksum(c->rbuf, size, s->placed_pos, p + doff, n);
	if (wp_cksum_fold(sum) != 0)
		return false;
	s->placed = c->rbuf;
	return true;
}

static int input(struct wp_tcp_stack *st, uint32_t src_ip, uint32_t dst_ip, const uint8_t *p,
                 uint16_t len, bool verified, const struct wp_tcp_piece *more, unsigned nmore)
{
	if (len < 20) {
		ctr_inc(st, WP_CTR_TCP_TRUNCATED);
		return -EINVAL;
	}
	unsigned doff = (unsigned)(p[12] >> 4) * 4;
	if (doff < 20 || doff > len) {
		ctr_inc(st, WP_CTR_TCP_BAD_OFFSET);
		return -EINVAL;
	}
	struct seg s = {0};
	s.sport = rd16(p);
	s.dport = rd16(p + 2);
	struct wp_addr la = {.family = WP_AF_INET, .v4 = dst_ip};
	struct wp_addr ra = {.family = WP_AF_INET, .v4 = src_ip};
	struct wp_tcp_conn *c = wp_tcp_conn_lookup(st, &la, s.dport, &ra, s.sport);
	if (!verified && !verify(st, c, src_ip, dst_ip, p, len, doff, &s)) {
		ctr_inc(st, WP_CTR_TCP_BAD_CHECKSUM);
		return -EINVAL;
	}
	s.seq = rd32(p + 4);
	s.ack = rd32(p + 8);
	s.flags = p[13] & 0x3f;
	s.wnd = rd16(p + 14);
	s.data = p + doff;
	s.len = s.head = len - doff;
	s.more = more;
	s.nmore = nmore;
	for (unsigned i = 0; i < nmore; i++)
		s.len += more[i].len;
	if (((s.flags & TH_SYN) && (s.flags & (TH_FIN | TH_RST))) || !s.sport || !s.dport) {
		ctr_inc(st, WP_CTR_TCP_BAD_FLAGS);
		return -EINVAL;
	}
	wp_tcp_parse_opts(p + 20, doff - 20, &s);

	if (c) {
		wp_tcp_conn_input(c, &s);
		return 0;
	}
	struct tw_entry *e = wp_tcp_tw_lookup(st, &la, s.dport, &ra, s.sport);
	if (e && tw_input(st, e, &s))
		return 0;
	struct listener *l = listener_find(st, s.dport);
	if (l) {
		wp_tcp_listen_input(st, l, &la, &ra, &s);
		return 0;
	}
	if (s.flags & TH_RST) {
		ctr_inc(st, WP_CTR_TCP_RST_NO_CONN);
		return 0;
	}
	ctr_inc(st, WP_CTR_TCP_NO_LISTENER);
	wp_tcp_send_rst_reply(st, &la, &ra, &s);
	return 0;
}

int wp_tcp_input(struct wp_tcp_stack *st, uint32_t src_ip, uint32_t dst_ip, const uint8_t *seg,
                 uint16_t seg_len, uint64_t now_us)
{
	enter(st, now_us);
	int rc = input(st, src_ip, dst_ip, seg, seg_len, false, NULL, 0);
	leave(st);
	return rc;
}

int wp_tcp_input_verified(struct wp_tcp_stack *st, uint32_t src_ip, uint32_t dst_ip,
                          const uint8_t *seg, uint16_t seg_len, uint64_t now_us)
{
	enter(st, now_us);
	int rc = input(st, src_ip, dst_ip, seg, seg_len, true, NULL, 0);
	leave(st);
	return rc;
}

int wp_tcp_input_pieces(struct wp_tcp_stack *st, uint32_t src_ip, uint32_t dst_ip,
                        const uint8_t *seg, uint16_t seg_len, const struct wp_tcp_piece *more,
                        unsigned nmore, uint64_t now_us)
{
	enter(st, now_us);
	int rc = input(st, src_ip, dst_ip, seg, seg_len, true, more, nmore);
	leave(st);
	return rc;
}
