/*
 * The h2c / gRPC proxy's local answers (h2proxy_int.h): a stream answered
 * by the proxy itself — a denial, a router's answer (404, 503, 504,
 * redirects), a connection-pool overflow, a fault-injection abort — as
 * Envoy writes them: for a gRPC request a trailers-only response (HTTP 200,
 * grpc-status and grpc-message), otherwise the status with a text/plain
 * body where Envoy gives one. And the fault stage (fault.h) as the h2
 * proxy runs it: a delayed stream is held (no upstream; its request body
 * waits in its ring, the client's window closed) until strm_timers()
 * resumes it.
 */
#include "h2proxy_int.h"

static uint32_t grpc_code(uint16_t status)
{
	return wp_pipe_http_to_grpc(status); /* Envoy's Grpc::Utility::httpToGrpcStatus */
}

/* A gRPC answer's grpc-message where the cause has no text of Envoy's
 * (wp_pipe_local_text() NULL or empty). */
static const char *grpc_text(uint16_t status)
{
	switch (status) {
	case 400:
		return "bad request";
	case 404:
		return "no route";
	case 431:
		return "request header fields too large";
	case 500:
		return "no valid backend";
	case 502:
		return "upstream protocol error";
	case 503:
		return "no healthy upstream";
	case 504:
		return "upstream request timeout";
	default:
		return "local reply";
	}
}

/* Serves the local answer's text (t->local_txt, fixed when the answer was
 * submitted) as its DATA. */
static ssize_t local_body_read(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t len,
                               uint32_t *flags, nghttp2_data_source *src, void *ud)
{
	struct wp_h2p_strm *t = down_strm(ud, sid);
	const char *b = t && t->local_txt ? t->local_txt : "";
	size_t n, bl = strlen(b);

	(void)ng;
	(void)src;
	if (!t || t->body_off > bl)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	n = WP_MIN(len, bl - t->body_off);
	t->rec.resp_bytes += n;
	memcpy(buf, &b[t->body_off], n);
	t->body_off = (uint8_t)(t->body_off + n);
	if (t->body_off == bl)
		*flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* Answers the downstream stream of <t> with <status> (a gRPC request: a
 * trailers-only response) unless a response head was sent already (then
 * the stream is reset). Request bytes from here on are dropped. */
void wp_h2p_strm_local(struct wp_h2p_strm *t, uint16_t status, const char *loc, size_t loc_len)
{
	struct wp_h2p_sess *s = t->sess;
	struct wp_h2p_core *c = t->core;
	char st[8], gs[8], cl[24];
	nghttp2_nv nv[6];
	size_t n = 0;
	bool uo = (t->rec.flags & WP_PIPE_F(UO)) != 0; /* Envoy's overflow answer */
	bool fi = (t->rec.flags & WP_PIPE_F(FI)) != 0; /* a fault abort */
	const char *txt = wp_pipe_local_text(status, t->rec.flags);
	nghttp2_data_provider body = {.read_callback = local_body_read};
	bool has_body = false;
	uint32_t g = fi ? t->fault.grpc : grpc_code(status);

	t->local = true;
	wp_h2p_pend_leave(t);
	wp_h2p_mirrors_abort(t);
	wp_h2p_qb_discard(t);
	if (!s)
		return;
	if (t->head_sent) {
		(void)nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, t->down_sid,
		                                NGHTTP2_INTERNAL_ERROR);
		wp_h2p_wake_sess(s);
		return;
	}
	t->head_sent = true;
	t->rec.status = t->grpc ? 200 : status; /* what goes on the wire */
	if (t->grpc) {
		t->rec.grpc = (int16_t)g;
		snprintf(gs, sizeof(gs), "%u", g);
		nv_set(&nv[n++], ":status", 7, "200", 3);
		nv_set(&nv[n++], "content-type", 12, "application/grpc", 16);
		nv_set(&nv[n++], "grpc-status", 11, gs, strlen(gs));
		if (!txt || !*txt)
			txt = grpc_text(status);
		nv_set(&nv[n++], "grpc-message", 12, txt, strlen(txt));
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_LOCAL_GRPC);
	} else {
		snprintf(st, sizeof(st), "%u", status);
		nv_set(&nv[n++], ":status", 7, st, strlen(st));
		if (loc)
			nv_set(&nv[n++], "location", 8, loc, loc_len);
		if (txt && *txt) { /* a HEAD request gets the head only */
			snprintf(cl, sizeof(cl), "%zu", strlen(txt));
			nv_set(&nv[n++], "content-type", 12, "text/plain", 10);
			nv_set(&nv[n++], "content-length", 14, cl, strlen(cl));
			if (uo)
				nv_set(&nv[n++], "x-envoy-overloaded", 18, "true", 4);
			has_body = !t->head_req;
			t->local_txt = txt;
			t->body_off = 0;
		} else {
			nv_set(&nv[n++], "content-length", 14, "0", 1);
		}
	}
	/* the rest of the request is not wanted: wp_h2p_d_frame_send() resets the
	 * stream (NO_ERROR) once this response is out */
	if (nghttp2_submit_response(s->ng, t->down_sid, nv, n, has_body ? &body : NULL) != 0)
		wp_ctr_inc(c->ctr, WP_CTR_L7_H2P_NOMEM);
	wp_h2p_wake_sess(s);
}

/* ---- the fault stage ---------------------------------------------------------------------- */

void wp_h2p_fault_abort(struct wp_h2p_strm *t)
{
	wp_ctr_inc(t->core->ctr, WP_CTR_L7_FAULT_ABORT);
	t->rec.flags |= WP_PIPE_F(FI);
	wp_h2p_strm_local(t, t->fault.status, NULL, 0);
}

bool wp_h2p_fault(struct wp_h2p_strm *t, const struct wp_route_rule *rule)
{
	struct wp_h2p_core *c = t->core;

	if (t->fault_done)
		return false;
	t->fault_done = true;
	if (!wp_fault_decide(&c->fault_rng, &rule->fault, &t->fault))
		return false;
	if (!t->fault.delay_ms) {
		wp_h2p_fault_abort(t);
		return true;
	}
	wp_ctr_inc(c->ctr, WP_CTR_L7_FAULT_DELAY);
	t->rec.flags |= WP_PIPE_F(DI);
	t->fault_until_ms = wp_deadline_ms(c->now_ms, t->fault.delay_ms);
	wp_fault_due(&c->fault_due, t->fault_until_ms);
	return true;
}
