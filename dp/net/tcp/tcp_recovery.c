/*
 * Loss recovery of the TCP stack, on the sender's scoreboard: one record per
 * data segment in flight, kept in a ring behind the send buffer's bytes
 * (tcp_int.h). ACK processing (tcp_input.c) marks what SACK blocks cover and
 * drops what the cumulative ACK covers (updating RACK's most recently
 * delivered segment), then calls wp_tcp_recovery_step(), which finds losses
 * (RFC 6675 IsLost; RACK, RFC 8985, which also catches lost
 * retransmissions), enters recovery once per window and sets cwnd by PRR
 * (RFC 6937); peers without SACK get NewReno (RFC 6582). The output loop
 * (tcp_output.c) then retransmits what is marked lost. The RACK reordering
 * timer and the tail-loss probe fire in tcp_timer.c; the helpers both sides
 * use (rec_get, pipe_bytes, rec_mark_lost, retransmit_rec, arm_pto) are
 * inline in tcp_int.h.
 */
#include "tcp_int.h"

/* ---- The scoreboard on ACK arrival ---- */

/* Index of the first record that ends after <seq> (rec_n when none). */
static uint32_t rec_find(const struct wp_tcp_conn *c, uint32_t seq)
{
	uint32_t lo = 0, hi = c->rec_n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (SEQ_LEQ(rec_get(c, mid)->end, seq))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* RACK_sent_after (RFC 8985): was (t1, e1) sent after (t2, e2)? */
static inline bool sent_after(uint32_t t1, uint32_t e1, uint32_t t2, uint32_t e2)
{
	return (int32_t)(t1 - t2) > 0 || (t1 == t2 && SEQ_GT(e1, e2));
}

/* A record was just delivered (cumulatively ACKed or SACKed): RACK update. */
static void rack_update(struct wp_tcp_conn *c, const struct txrec *r)
{
	uint32_t rtt = (uint32_t)c->st->now_us - r->xmit_us;
	if (r->flags & TR_RETRANS) {
		/* Too fast for the retransmission: the original was delivered (RFC 8985 6.2). */
		if (c->min_rtt_us && rtt < c->min_rtt_us)
			return;
	} else if (!c->min_rtt_us || rtt < c->min_rtt_us) {
		c->min_rtt_us = rtt ? rtt : 1;
	}
	if (!c->rack_valid || sent_after(r->xmit_us, r->end, c->rack_xmit_us, c->rack_end)) {
		c->rack_xmit_us = r->xmit_us;
		c->rack_end = r->end;
		c->rack_rtt_us = rtt;
		c->rack_valid = true;
	}
}

/* Marks the records the SACK blocks of <s> cover. True when any was newly SACKed. */
bool wp_tcp_sack_mark(struct wp_tcp_conn *c, const struct seg *s)
{
	bool newly = false;
	for (int i = 0; i < s->nsack; i++) {
		uint32_t a = s->sack[i].start, b = s->sack[i].end;
		if (SEQ_LEQ(b, a) || SEQ_LEQ(b, s->ack) || SEQ_GT(b, c->snd_max))
			continue; /* D-SACK or bogus */
		for (uint32_t j = rec_find(c, a); j < c->rec_n; j++) {
			struct txrec *r = rec_get(c, j);
			if (SEQ_GEQ(r->seq, b))
				break;
			if (SEQ_LT(r->seq, a) || SEQ_GT(r->end, b) || (r->flags & TR_SACKED))
				continue;
			if (r->flags & TR_LOST) {
				r->flags &= (uint8_t)~TR_LOST;
				c->lost_out -= rec_len(r);
			}
			r->flags |= TR_SACKED;
			c->sacked_out += rec_len(r);
			rack_update(c, r);
			newly = true;
		}
	}
	return newly;
}

/* Drops the records below the cumulative ACK <ack>. */
void wp_tcp_rec_ack(struct wp_tcp_conn *c, uint32_t ack)
{
	uint32_t cap_mask = c->st->rec_cap - 1;
	while (c->rec_n) {
		struct txrec *r = rec_get(c, 0);
		if (SEQ_LEQ(r->end, ack)) {
			if (r->flags & TR_SACKED) {
				c->sacked_out -= rec_len(r);
			} else {
				if (r->flags & TR_LOST)
					c->lost_out -= rec_len(r);
				rack_update(c, r);
			}
			c->rec_head = (c->rec_head + 1) & cap_mask;
			c->rec_n--;
			continue;
		}
		if (SEQ_LT(r->seq, ack)) { /* the peer acknowledged part of a segment */
			uint32_t cut = ack - r->seq;
			if (r->flags & TR_SACKED)
				c->sacked_out -= cut;
			else if (r->flags & TR_LOST)
				c->lost_out -= cut;
			r->seq = ack;
		}
		break;
	}
}

/* ---- Loss detection and recovery ---- */

static uint32_t reo_wnd(const struct wp_tcp_conn *c)
{
	uint32_t w = c->min_rtt_us / 4;
	return WP_MAX(w, 1u);
}

/*
 * Loss detection on the scoreboard (SACK peers):
 *  - RFC 6675 IsLost: a segment never retransmitted with DupThresh SACKed
 *    segments above it is lost (fast retransmit without waiting for time);
 *  - RACK (RFC 8985): a segment (original or retransmission) sent before a
 *    segment that was delivered is lost once a reordering window has passed
 *    since its RTT elapsed. This is what catches lost retransmissions.
 * Arms the reordering timer for segments not yet old enough.
 */
static void detect_loss(struct wp_tcp_conn *c)
{
	if (!c->rec_n) {
		stop_timer(c, T_REO);
		return;
	}
	if (c->sacked_out) {
		uint32_t nsacked = 0;
		for (uint32_t i = c->rec_n; i-- > 0;) {
			struct txrec *r = rec_get(c, i);
			if (r->flags & TR_SACKED)
				nsacked++;
			else if (nsacked >= DUPTHRESH && !(r->flags & (TR_LOST | TR_RETRANS)))
				rec_mark_lost(c, r, WP_CTR_TCP_SACK_LOST);
		}
	}
	if (!c->rack_valid)
		return;
	uint32_t now = (uint32_t)c->st->now_us, reo = reo_wnd(c);
	uint32_t wait = 0;
	for (uint32_t i = 0; i < c->rec_n; i++) {
		struct txrec *r = rec_get(c, i);
		if (r->flags & (TR_SACKED | TR_LOST))
			continue;
		if (!sent_after(c->rack_xmit_us, c->rack_end, r->xmit_us, r->end))
			continue;
		int32_t left = (int32_t)(r->xmit_us + c->rack_rtt_us + reo - now);
		if (left <= 0)
			rec_mark_lost(c, r, WP_CTR_TCP_RACK_LOST);
		else if ((uint32_t)left > wait)
			wait = (uint32_t)left;
	}
	if (wait)
		wp_tcp_set_timer(c, T_REO, c->st->now_us + wait);
	else
		stop_timer(c, T_REO);
}

static void enter_recovery(struct wp_tcp_conn *c)
{
	uint32_t flight = c->snd_max - c->snd_una;
	c->ssthresh = WP_MAX(flight / 2, 2u * c->mss);
	c->recover = c->snd_max;
	c->in_recovery = true;
	c->rescue_done = false;
	c->prr_delivered = c->prr_out = 0;
	c->recover_fs = WP_MAX(flight, 1u);
	ctr_inc(c->st, WP_CTR_TCP_FAST_RETRANSMIT);
}

/*
 * Proportional rate reduction (RFC 6937, slow-start reduction bound): sets
 * cwnd so that wp_tcp_output() sends what this ACK's <delivered> bytes earn.
 * The first retransmission of a recovery always goes out (RFC 6675).
 */
static void prr_update(struct wp_tcp_conn *c, uint32_t delivered)
{
	c->prr_delivered += delivered;
	uint32_t pipe = pipe_bytes(c);
	int64_t sndcnt;
	if (pipe > c->ssthresh) {
		sndcnt = (int64_t)(((uint64_t)c->prr_delivered * c->ssthresh + c->recover_fs - 1) /
		                   c->recover_fs) -
		         c->prr_out;
	} else {
		int64_t limit =
		        WP_MAX((int64_t)c->prr_delivered - c->prr_out, (int64_t)delivered) + c->mss;
		sndcnt = WP_MIN((int64_t)c->ssthresh - pipe, limit);
	}
	if (sndcnt < 0)
		sndcnt = 0;
	if (!c->prr_out && c->lost_out && sndcnt < 1)
		sndcnt = 1;
	c->cwnd = pipe + (uint32_t)sndcnt;
}

/*
 * After an ACK (or the reordering timer): find losses, enter recovery once
 * per window of data (RFC 6582 guard: not for losses below <recover>, which
 * an RTO or the previous recovery already answered) and pace the recovery.
 */
void wp_tcp_recovery_step(struct wp_tcp_conn *c, uint32_t delivered)
{
	if (c->sack_ok) {
		detect_loss(c);
	} else if (!c->in_recovery && c->dupacks >= DUPTHRESH && c->rec_n &&
	           SEQ_GEQ(c->snd_una, c->recover)) {
		rec_mark_lost(c, rec_get(c, 0), WP_CTR_TCP_SACK_LOST);
	}
	if (!c->in_recovery && c->lost_out && SEQ_GEQ(c->snd_una, c->recover))
		enter_recovery(c);
	if (c->in_recovery)
		prr_update(c, delivered);
}
