/*
 * HBONE internals shared by the two sides (private to dp/hbone).
 *
 * struct wp_hbconn and struct wp_hbstream have a common part (application, memory,
 * counters, the stream list, the per-stream send buffer, keepalive and
 * abuse accounting) used by conn.c, which holds the public API, the shared
 * logic and the client side on nghttp2, and a per-side part in a union:
 * the client keeps an nghttp2 session, the server (h2srv.c) its own
 * RFC 9113 framer with nghttp2's public HPACK inflater. Each public
 * function does the shared part and branches on c->server once.
 */
#ifndef WP_DP_HBONE_H2INT_H
#define WP_DP_HBONE_H2INT_H

#include <nghttp2/nghttp2.h>

#include "hbone.h"
#include "wp/counters.h"

/* The request fields the server keeps (stream's hv buffer). */
enum { HV_AUTHORITY, HV_BAGGAGE, HV_FORWARDED, HV_TRACEPARENT, HV_N };

struct h2srv_stream {
	int64_t swin;     /* send window (may go negative on SETTINGS) */
	int64_t rwin;     /* bytes the peer may still send */
	uint32_t unacked; /* consumed, not yet given back by WINDOW_UPDATE */
	uint32_t close_err;
	char *hv; /* kept header values, NUL-terminated; NULL when none */
	uint32_t hvlen, hvcap;
	uint32_t hoff[HV_N], hlen[HV_N];
	uint8_t hset;        /* bit per HV_* */
	uint8_t rx_end : 1;  /* peer sent END_STREAM */
	uint8_t tx_end : 1;  /* our END_STREAM is in the output */
	uint8_t tunnel : 1;  /* answered 200: DATA may flow */
	uint8_t closing : 1; /* close at the next sweep (set inside an API call) */
};

struct h2cli_stream {
	int16_t status;       /* response status */
	uint8_t has_prd : 1;  /* a data provider is attached */
	uint8_t deferred : 1; /* the provider returned DEFERRED */
};

struct wp_hbstream {
	struct wp_hbconn *c;
	struct wp_hbstream *prev, *next; /* c->streams */
	void *app;
	int32_t id;
	uint8_t known : 1; /* the application saw it: owes it on_close */
	uint8_t responded : 1;
	uint8_t shut_out : 1; /* wp_hbstream_shutdown called */
	uint8_t want_writable : 1;
	uint8_t notify : 1;      /* on_writable due */
	uint8_t mem_wait : 1;    /* a write found no memory for the send buffer */
	uint8_t local_close : 1; /* we reset it or answered non-200 */
	uint8_t peer_rst : 1;
	uint32_t hdr_bytes;
	uint8_t *sbuf; /* towards the peer; NULL while empty */
	uint32_t shead, slen;
	uint64_t unconsumed; /* delivered by on_data, not consumed yet */
	struct wp_hbone_req req;
	union {
		struct h2cli_stream cli;
		struct h2srv_stream srv;
	} u;
};

struct h2cli {
	nghttp2_session *ss;
	const uint8_t *out;
	size_t outlen;
};

/* The server's frame reader and output (h2srv.c). */
struct h2srv {
	nghttp2_hd_inflater *hd;
	uint8_t *out; /* frames for the peer; NULL while empty */
	uint32_t ohead, olen, ocap;
	/* reader */
	uint8_t rstate; /* preface, frame header, payload */
	uint8_t phase;  /* payload: collect, body, skip */
	uint8_t ftype, fflags;
	uint8_t hb[9];
	uint8_t fb[8];
	uint8_t hblen, fblen, need, padlen;
	uint32_t flen, rem, body;
	int32_t fsid;
	struct wp_hbstream *cur; /* the frame's stream, NULL when none or gone */
	/* header block in progress */
	struct wp_hbstream *bs;
	int32_t bsid;
	uint8_t bmode; /* new stream, trailers, ignored */
	uint8_t bflags;
	uint16_t bseen; /* pseudo-headers seen, malformed, too large... */
	/* connection state */
	int32_t last_sid;  /* highest client stream id seen */
	int64_t conn_swin; /* our send window */
	int64_t conn_rwin; /* what the peer may still send */
	uint32_t conn_unacked;
	uint32_t peer_iws;        /* peer's SETTINGS_INITIAL_WINDOW_SIZE */
	uint32_t peer_max_frame;  /* peer's SETTINGS_MAX_FRAME_SIZE */
	uint8_t settings_unacked; /* our SETTINGS awaiting ACK */
	bool got_settings;        /* the peer's first frame was SETTINGS */
	bool goaway_tx;
	bool hpack_sized; /* our table-size-0 update went out */
	uint8_t oerr;     /* an output append failed: flood or NOMEM */
};

struct wp_hbconn {
	struct wp_h2mem *mem;
	const struct wp_hbone_ops *ops;
	void *app;
	uint64_t *ctrs;
	struct wp_hbone_config cfg;
	struct wp_hbstream *streams, *tail;
	uint32_t nstreams;
	bool server;
	bool failed;
	bool goaway_rx;
	bool ping_out;
	uint64_t now, last_rx, ping_sent;
	uint64_t rst_window;
	uint32_t rst_count;
	uint32_t conts; /* CONTINUATION frames in the current header block */
	union {
		struct h2cli cli;
		struct h2srv srv;
	} u;
};

static inline void h2_ctr(struct wp_hbconn *c, enum wp_ctr k)
{
	if (c->ctrs != NULL)
		wp_ctr_inc(c->ctrs, k);
}

/* ---- shared (conn.c) ---- */

/* A zeroed stream linked into c (NULL: NOMEM, counted). */
struct wp_hbstream *wp_hbone_stream_new(struct wp_hbconn *c);
/* Unlinks and frees s (no callback). */
void wp_hbone_stream_free(struct wp_hbstream *s);
/* The application's view of a stream that ends with code err: on_close
 * (when the application knows it), the PEER_RESET counter, then free. */
void wp_hbone_stream_closed(struct wp_hbstream *s, uint32_t err);
/* Takes up to len bytes of s's send buffer into buf (releasing the
 * buffer when it empties, noting on_writable when due). */
size_t wp_hbone_sbuf_take(struct wp_hbstream *s, uint8_t *buf, size_t len);
/* Calls on_writable for the streams that have it due; true if any. */
bool wp_hbone_notify_writable(struct wp_hbconn *c);
/* A peer RST_STREAM on a live stream: true when over the rapid-reset
 * limit (counted). */
bool wp_hbone_rst_over_limit(struct wp_hbconn *c);
/* A CONTINUATION frame: true when over the per-block limit (counted). */
bool wp_hbone_cont_over_limit(struct wp_hbconn *c);
/* Counts a non-200 answer the application gave (RESP_400/401/503/OTHER). */
void wp_hbone_count_response(struct wp_hbstream *s, int status);

/* ---- server side (h2srv.c) ---- */

int wp_hbone_srv_init(struct wp_hbconn *c);
void wp_hbone_srv_fini(struct wp_hbconn *c);
ssize_t wp_hbone_srv_input(struct wp_hbconn *c, const uint8_t *buf, size_t len);
ssize_t wp_hbone_srv_peek(struct wp_hbconn *c, const uint8_t **p);
void wp_hbone_srv_advance(struct wp_hbconn *c, size_t n);
/* GOAWAY with code and the session fails. */
void wp_hbone_srv_terminate(struct wp_hbconn *c, uint32_t code);
int wp_hbone_srv_ping(struct wp_hbconn *c);
int wp_hbone_srv_drain(struct wp_hbconn *c);
bool wp_hbone_srv_done(const struct wp_hbconn *c);
int wp_hbone_srv_respond(struct wp_hbstream *s, int status);
int wp_hbone_srv_consume(struct wp_hbstream *s, size_t n);
int wp_hbone_srv_reset(struct wp_hbstream *s, uint32_t code);

#endif /* WP_DP_HBONE_H2INT_H */
