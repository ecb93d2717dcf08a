/*
 * Output of the TCP stack: building segments (header, options, window) and
 * handing them to the worker's tx ops, the control segments (ACK, RST,
 * SYN, SYN-ACK), data segments with their scoreboard records, and
 * wp_tcp_output(), which sends what the windows and the congestion state
 * allow. Input, timers and app calls end in wp_tcp_output(); what to
 * retransmit is decided in loss recovery (tcp_recovery.c) and marked on the
 * scoreboard, which this file reads. Window arithmetic shared with input is
 * in tcp_int.h.
 */
#include <errno.h>
#include <string.h>

#include "cksum.h"
#include "tcp_int.h"

/* ---- Building and sending a segment ---- */

int wp_tcp_tx(struct wp_tcp_stack *st, const struct wp_addr *src, const struct wp_addr *dst,
              uint16_t sport, uint16_t dport, const struct txinfo *t)
{
	uint16_t hl = (uint16_t)(20 + t->optlen);
	uint16_t total = (uint16_t)(hl + t->len);
	void *h = NULL;
	uint8_t *p = st->ops.tx_alloc(st->ops.arg, total, &h);
	if (!p) {
		ctr_inc(st, WP_CTR_TCP_TX_ALLOC_FAIL);
		return -ENOBUFS;
	}
	wr16(p, sport);
	wr16(p + 2, dport);
	wr32(p + 4, t->seq);
	wr32(p + 8, t->ack);
	p[12] = (uint8_t)((hl / 4) << 4);
	p[13] = t->flags;
	wr16(p + 14, t->wnd);
	wr16(p + 16, 0);
	wr16(p + 18, 0);
	/* options come in 4-byte words: fixed-size copies, not a call or a
	 * string instruction sized at run time */
	for (unsigned i = 0; i < t->optlen; i += 4)
		memcpy(p + 20 + i, t->opt + i, 4);
	if (t->tso_segsz || st->cfg.tx_cksum_offload) {
		uint16_t ck = wp_tcp_phdr_sum(src->v4, dst->v4, t->tso_segsz ? 0 : total);

		if (t->len)
			ring_read(t->ring, t->ring_size, t->ring_pos, p + hl, t->len);
		memcpy(p + 16, &ck, sizeof(ck));
	} else {
		/* Summed from what is written, not read back: a wide load of
		 * bytes just stored in small pieces waits for the stores. The
		 * header's fixed words as numbers (big-endian words), then in
		 * memory order like the rest; options and payload (both at
		 * offsets that are multiples of 4) as they are copied. */
		uint64_t be = (uint64_t)sport + dport + (t->seq >> 16) + (t->seq & 0xffff) +
		              (t->ack >> 16) + (t->ack & 0xffff) + ((hl / 4u) << 12) + t->flags +
		              t->wnd;
		uint64_t sum = wp_tcp_phdr_add(src->v4, dst->v4, total) +
		               htons((uint16_t)~wp_cksum_fold(be)) +
		               wp_cksum_add(0, t->opt, t->optlen);
		uint16_t ck;

		if (t->len)
			sum += ring_read_cksum(t->ring, t->ring_size, t->ring_pos, p + hl, t->len);
		ck = wp_cksum_fold(sum);
		memcpy(p + 16, &ck, sizeof(ck));
	}
	st->ops.tx_send(st->ops.arg, h, src->v4, dst->v4, total, t->tso_segsz);
	if (t->tso_segsz)
		ctr_inc(st, WP_CTR_TCP_TSO_SENT);
	if (t->flags & TH_RST)
		ctr_inc(st, WP_CTR_TCP_RST_SENT);
	return 0;
}

/*
 * Options of a non-SYN segment: timestamps, then SACK blocks (recent first),
 * as many blocks as fit in <room> bytes (a retransmission keeps its original
 * payload size and may carry fewer blocks than an ACK).
 */
static uint8_t build_opts(const struct wp_tcp_conn *c, uint8_t *o, uint32_t room)
{
	uint8_t n = 0;
	if (c->ts_ok)
		n = put_ts(o, ts_now(c->st) + c->ts_offset, c->ts_recent);
	uint8_t nb = sack_blocks_room(c);
	if (nb && room < n + 4u + 8u * nb)
		nb = room >= n + 12u ? (uint8_t)((room - n - 4u) / 8u) : 0;
	if (nb) {
		o[n++] = OPT_NOP;
		o[n++] = OPT_NOP;
		o[n++] = OPT_SACK;
		o[n++] = (uint8_t)(2 + 8 * nb);
		uint8_t order[WP_TCP_MAX_OOO];
		uint8_t k = 0;
		order[k++] = c->ooo_recent < c->nooo ? c->ooo_recent : 0;
		for (uint8_t i = 0; i < c->nooo && k < nb; i++)
			if (i != order[0])
				order[k++] = i;
		for (uint8_t i = 0; i < nb; i++) {
			wr32(o + n, c->ooo[order[i]].start);
			wr32(o + n + 4, c->ooo[order[i]].end);
			n += 8;
		}
	}
	return n;
}

static void ack_sent(struct wp_tcp_conn *c)
{
	c->ack_now = c->ack_pending = false;
	c->rcv_unacked = 0;
	c->last_ack_sent = c->rcv_nxt;
	stop_timer(c, T_DELACK);
}

/* A segment without payload: ACK, probe or RST. */
void wp_tcp_send_ctl(struct wp_tcp_conn *c, uint32_t seq, uint8_t flags)
{
	struct txinfo t = {.seq = seq, .ack = c->rcv_nxt, .flags = (uint8_t)(flags | TH_ACK)};
	t.wnd = rcv_wnd_advertise(c);
	t.optlen = build_opts(c, t.opt, 40);
	wp_tcp_tx(c->st, &c->laddr, &c->raddr, c->lport, c->rport, &t);
	ack_sent(c);
}

/* RST in reply to a segment that has no connection (RFC 9293 3.10.7.1). */
void wp_tcp_send_rst_reply(struct wp_tcp_stack *st, const struct wp_addr *la,
                           const struct wp_addr *ra, const struct seg *s)
{
	struct txinfo t = {0};
	if (s->flags & TH_ACK) {
		t.seq = s->ack;
		t.flags = TH_RST;
	} else {
		t.ack = s->seq + s->len + !!(s->flags & TH_SYN) + !!(s->flags & TH_FIN);
		t.flags = TH_RST | TH_ACK;
	}
	wp_tcp_tx(st, la, ra, s->dport, s->sport, &t);
}

/* ---- SYN and SYN-ACK ---- */

/* SYN options: MSS, SACK-permitted, timestamps, window scale as negotiated. */
static uint8_t syn_opts(const struct wp_tcp_conn *c, uint8_t *o, bool ws, bool sack, bool ts,
                        uint32_t tsval)
{
	uint8_t n = 0;
	o[n++] = OPT_MSS;
	o[n++] = 4;
	wr16(o + n, c->st->cfg.mss);
	n += 2;
	if (sack && ts) {
		o[n++] = OPT_SACKOK;
		o[n++] = 2;
		o[n++] = OPT_TS;
		o[n++] = 10;
		wr32(o + n, tsval);
		wr32(o + n + 4, c->ts_recent);
		n += 8;
	} else if (ts) {
		n += put_ts(o + n, tsval, c->ts_recent);
	} else if (sack) {
		o[n++] = OPT_NOP;
		o[n++] = OPT_NOP;
		o[n++] = OPT_SACKOK;
		o[n++] = 2;
	}
	if (ws) {
		o[n++] = OPT_NOP;
		o[n++] = OPT_WS;
		o[n++] = 3;
		o[n++] = c->st->rcv_wscale;
	}
	return n;
}

void wp_tcp_send_syn(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	struct txinfo t = {.seq = c->iss, .flags = TH_SYN, .wnd = syn_window(st)};
	t.optlen = syn_opts(c, t.opt, st->cfg.window_scaling, st->cfg.sack, st->cfg.timestamps,
	                    ts_now(st) + c->ts_offset);
	if (!c->syn_rexmit)
		c->rtt_start_us = st->now_us;
	wp_tcp_tx(st, &c->laddr, &c->raddr, c->lport, c->rport, &t);
}

void wp_tcp_send_synack(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	struct txinfo t = {.seq = c->iss, .ack = c->rcv_nxt, .flags = TH_SYN | TH_ACK};
	t.wnd = syn_window(st);
	t.optlen = syn_opts(c, t.opt, c->ws_ok, c->sack_ok, c->ts_ok, ts_now(st) + c->ts_offset);
	if (!c->syn_rexmit)
		c->rtt_start_us = st->now_us;
	c->rcv_adv = c->rcv_nxt + t.wnd;
	wp_tcp_tx(st, &c->laddr, &c->raddr, c->lport, c->rport, &t);
	ack_sent(c);
}

/* ---- Data and the send path ---- */

/* Pieces in one segment for the device to cut: DPDK's software GSO (net_tap) cuts at most 64. */
#define TSO_MAX_PIECES 64u

/* The most options and payload in each piece the device cuts from a larger segment. */
static uint32_t tso_piece_limit(const struct wp_tcp_conn *c)
{
	return WP_MIN((uint32_t)c->mss, (uint32_t)c->st->cfg.tso_mss);
}

/*
 * New data for one segment the device cuts (TSO): as many pieces as the
 * congestion window would let go one by one (each while the pipe is below
 * cwnd), the peer's window, the data, the scoreboard and tso_max allow. A
 * last piece shorter than the others is allowed. The caller sends an
 * ordinary segment instead when this is no longer than one.
 */
static uint32_t tso_len(const struct wp_tcp_conn *c, uint32_t avail, uint32_t rw_room)
{
	const struct wp_tcp_stack *st = c->st;
	uint32_t seg = payload_within(c, tso_piece_limit(c));
	uint32_t n = (c->cwnd - pipe_bytes(c) + c->mss - 1) / c->mss;

	n = WP_MIN(n, st->rec_cap - c->rec_n);
	n = WP_MIN(n, st->cfg.tso_max / seg);
	n = WP_MIN(n, TSO_MAX_PIECES);
	return WP_MIN(WP_MIN(avail, rw_room), n * seg);
}

/*
 * Sends [seq, seq+len) from the send buffer (FIN too when it ends at the
 * FIN). New data (seq == snd_nxt) gets a scoreboard record; a retransmission
 * keeps its record's size and may carry fewer SACK blocks.
 */
void wp_tcp_send_data(struct wp_tcp_conn *c, uint32_t seq, uint32_t len, bool retrans)
{
	struct wp_tcp_stack *st = c->st;
	uint32_t data_end = c->sbuf_seq + c->slen;
	/* new data longer than one segment holds: the device cuts it (TSO) */
	bool cut = !retrans && st->cfg.tso_max && len > seg_payload_max(c);
	uint32_t limit = cut ? tso_piece_limit(c) : c->mss;
	uint32_t seg = cut ? payload_within(c, limit) : len;
	struct txinfo t = {.seq = seq, .ack = c->rcv_nxt, .flags = TH_ACK, .len = len};
	bool fin = c->fin_queued && seq + len == c->fin_seq;
	if (fin)
		t.flags |= TH_FIN;
	if (len && seq + len == data_end)
		t.flags |= TH_PSH;
	if (len) {
		t.ring = c->sbuf;
		t.ring_size = st->cfg.snd_buf;
		t.ring_pos = c->shead + (seq - c->sbuf_seq);
	}
	t.wnd = rcv_wnd_advertise(c);
	/* a segment the device cuts repeats its options in every piece, which
	 * must stay within the piece limit with them */
	t.optlen = build_opts(c, t.opt, limit > seg ? WP_MIN(limit - seg, 40u) : 0);
	if (cut)
		t.tso_segsz = (uint16_t)seg;
	if (wp_tcp_tx(st, &c->laddr, &c->raddr, c->lport, c->rport, &t) != 0 && t.tso_segsz) {
		wp_tcp_send_data(c, seq, seg, retrans); /* no room for it: one wire segment */
		return;
	}
	ack_sent(c);
	/* answering a small amount of data soon after it came: request /
	 * response (Linux enters its interactive mode the same way, within the
	 * ACK timeout); not a sender of bulk data, whose short segments end
	 * bursts a window-limited sender waits to have acknowledged */
	if (len && !retrans) {
		if (c->delack_app && c->last_data_us &&
		    st->now_us - c->last_data_us < st->cfg.delack_us &&
		    c->rcv_since_send <= 4 * c->rcv_mss)
			c->pingpong = true;
		c->rcv_since_send = 0;
	}
	if (retrans) {
		ctr_inc(st, WP_CTR_TCP_RETRANSMIT);
		c->rtt_active = false; /* Karn */
	} else if (!c->rtt_active && !c->ts_ok) {
		c->rtt_active = true;
		c->rtt_seq = seq + len;
		c->rtt_start_us = st->now_us;
	}
	if (c->in_recovery)
		c->prr_out += len ? len : 1;
	if (seq == c->snd_nxt) {
		/* one record per wire segment, so that SACK and retransmission
		 * work on what the peer saw */
		for (uint32_t off = 0; off < len && c->rec && c->rec_n < st->rec_cap; off += seg) {
			struct txrec *r = &c->rec[(c->rec_head + c->rec_n) & (st->rec_cap - 1)];
			r->seq = seq + off;
			r->end = seq + WP_MIN(off + seg, len);
			r->xmit_us = (uint32_t)st->now_us;
			r->flags = 0;
			c->rec_n++;
		}
		c->snd_nxt += len + fin;
		if (SEQ_GT(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
	}
	if (!c->tdl[T_RTO])
		wp_tcp_arm_rto(c);
}

/*
 * Sends what the windows allow (no Nagle), then any ACK still owed. Order
 * (RFC 6675 NextSeg): segments deemed lost first, then new data, then once
 * per recovery the rescue retransmission. A segment goes out while the pipe
 * is below cwnd (cwnd counts whole segments, as Linux does).
 */
void wp_tcp_output(struct wp_tcp_conn *c)
{
	struct wp_tcp_stack *st = c->st;
	if (c->dead)
		return;
	if (can_send_state(c)) {
		uint32_t lost_from = 0;
		for (int guard = 0; guard < 4096; guard++) {
			uint32_t data_end = c->sbuf_seq + c->slen;
			uint32_t mss = seg_payload_max(c);
			bool room = pipe_bytes(c) < c->cwnd;
			if (c->lost_out) {
				if (!room)
					break;
				while (lost_from < c->rec_n &&
				       !(rec_get(c, lost_from)->flags & TR_LOST))
					lost_from++;
				WP_ASSERT(lost_from < c->rec_n);
				retransmit_rec(c, rec_get(c, lost_from));
				continue;
			}
			int32_t rw = (int32_t)(c->snd_una + c->snd_wnd - c->snd_nxt);
			uint32_t rw_room = rw > 0 ? (uint32_t)rw : 0;
			uint32_t avail = SEQ_LT(c->snd_nxt, data_end) ? data_end - c->snd_nxt : 0;
			uint32_t len = WP_MIN(WP_MIN(avail, mss), rw_room);
			bool rec_full = c->rec_n >= st->rec_cap;
			if (st->cfg.tso_max && len == mss && room && !rec_full && !c->in_recovery)
				len = WP_MAX(len, tso_len(c, avail, rw_room));
			if (len && room && !rec_full) {
				wp_tcp_send_data(c, c->snd_nxt, len, false);
				continue;
			}
			if (len && rec_full)
				ctr_inc(st, WP_CTR_TCP_SCOREBOARD_FULL);
			if (!avail && c->fin_queued && c->snd_nxt == c->fin_seq && rw >= 0 &&
			    (room || c->snd_una == c->snd_nxt)) {
				wp_tcp_send_data(c, c->snd_nxt, 0, false);
				continue;
			}
			/* RFC 6675 rule 4: nothing else to send; once per recovery. */
			if (c->in_recovery && c->sack_ok && !c->rescue_done && room && !len) {
				c->rescue_done = true;
				for (uint32_t i = c->rec_n; i-- > 0;) {
					struct txrec *r = rec_get(c, i);
					if (!(r->flags & TR_SACKED)) {
						ctr_inc(st, WP_CTR_TCP_RESCUE_RETRANSMIT);
						retransmit_rec(c, r);
						break;
					}
				}
				continue;
			}
			break;
		}
		/* Zero window with data waiting and nothing in flight: persist. */
		uint32_t data_end = c->sbuf_seq + c->slen;
		bool pending = SEQ_LT(c->snd_nxt, data_end) ||
		               (c->fin_queued && SEQ_LEQ(c->snd_nxt, c->fin_seq));
		if (c->snd_wnd == 0 && pending && c->snd_max == c->snd_una) {
			if (!c->tdl[T_PERSIST]) {
				c->persist_backoff = 0;
				stop_timer(c, T_RTO);
				wp_tcp_set_timer(c, T_PERSIST, st->now_us + c->rto_us);
			}
		} else {
			stop_timer(c, T_PERSIST);
		}
		if (c->rec_n && !c->tdl[T_PTO] && !c->tlp_out)
			arm_pto(c);
	}
	if (c->ack_now && synchronized(c)) {
		send_ack(c);
	} else if (c->ack_pending && !c->tdl[T_DELACK]) {
		wp_tcp_set_timer(c, T_DELACK, st->now_us + st->cfg.delack_us);
	}
}
