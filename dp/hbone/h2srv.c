/*
 * The HBONE server side (see hbone.h, h2int.h): an RFC 9113 framer of our
 * own for the small, fixed subset HBONE needs -- CONNECT streams only --
 * so that an idle inbound connection holds only its struct wp_hbconn and
 * nghttp2's public HPACK inflater (about 1.5 KB) instead of a whole
 * nghttp2 session (about 26 KB).
 *
 * Input is parsed as it comes, in any split: the preface, then frames; a
 * DATA payload goes to the application chunk by chunk, a header block
 * fragment to the inflater, fixed control payloads (at most 8 bytes) are
 * collected in the struct. Output (our frames) is appended to one buffer
 * from the per-core allocator that is released whenever it empties; DATA
 * is copied into it from the streams' send buffers when wp_hbconn_peek asks,
 * within the peer's windows and frame size. Our responses are a single
 * :status field, encoded here (static table or literal without indexing,
 * after a table size update to 0), so there is no HPACK deflater.
 *
 * Flow control is the same as on nghttp2 with NO_AUTO_WINDOW_UPDATE:
 * received DATA counts against the stream and connection windows, and a
 * WINDOW_UPDATE goes out when what the application consumed (padding and
 * ignored DATA count as consumed at once) reaches half the window.
 *
 * Streams close from inside wp_hbconn_input/peek (the application's callbacks
 * may run there); a close caused by an application call (a reset, a
 * refusal) is marked and done at the next wp_hbconn_peek, as nghttp2 did.
 */
#include <errno.h>
#include <string.h>

#include "h2int.h"
#include "wp/addr.h"

#define PREFACE_LEN 24
#define MAX_FRAME   16384 /* our SETTINGS_MAX_FRAME_SIZE (the default) */
#define WIN_MAX     2147483647
/* The output buffer: small for control frames, one DATA frame at most
 * when data flows, and control frames beyond that up to a bound (a peer
 * that makes us queue more without reading is flooding). A DATA frame
 * and what is queued before it make at most one TLS record's plaintext
 * (16384): the session hands each peek to TLS, which seals it as one
 * whole record; a 16384-byte payload would leave a 9-byte record behind
 * every frame. */
#define OUT_SMALL   256
#define DATA_TARGET MAX_FRAME
#define OUT_MAX     (65536 - 16)
#define OUT_FLOOD   (OUT_MAX - 64)

enum { RS_PREFACE, RS_HEAD, RS_PAYLOAD };
enum { PH_COLLECT, PH_BODY, PH_SKIP };
enum { BM_NONE, BM_NEW, BM_TRAILER, BM_IGNORE };
enum { OUT_CONTROL, OUT_DATA, OUT_FORCE };
enum { OERR_FLOOD = 1, OERR_NOMEM = 2 };

/* Header block state (bseen). */
#define SEEN_METHOD  0x001
#define SEEN_SCHEME  0x002
#define SEEN_AUTH    0x004
#define SEEN_PATH    0x008
#define SEEN_PROTO   0x010
#define SEEN_REGULAR 0x020
#define B_CONNECT    0x040
#define B_BAD        0x080 /* malformed (RFC 9113 §8.1.1) */
#define B_BIG        0x100 /* over max_header_list */
#define B_REFUSE     0x200 /* over max_streams */
#define B_NOMEM      0x400

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_head(uint8_t *p, uint32_t len, uint8_t type, uint8_t flags, int32_t sid)
{
	p[0] = (uint8_t)(len >> 16);
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)len;
	p[3] = type;
	p[4] = flags;
	put32(p + 5, (uint32_t)sid);
}

/* ---- output ---- */

/* Room for n more bytes at the end of the output, or NULL (v->oerr says
 * why, unless the session failed: then only the GOAWAY goes out). */
static uint8_t *out_room(struct wp_hbconn *c, size_t n, int kind)
{
	struct h2srv *v = &c->u.srv;
	size_t need = v->olen + n;
	uint8_t *p;

	if (c->failed && kind != OUT_FORCE)
		return NULL;
	if (kind == OUT_CONTROL && need > OUT_FLOOD) {
		v->oerr |= OERR_FLOOD;
		return NULL;
	}
	if (v->ohead + need > v->ocap) {
		if (v->ohead > 0) {
			memmove(v->out, v->out + v->ohead, v->olen);
			v->ohead = 0;
		}
		if (need > v->ocap) {
			size_t cap = need <= OUT_SMALL     ? OUT_SMALL
			             : need <= DATA_TARGET ? DATA_TARGET
			                                   : WP_MAX(need, (size_t)OUT_MAX);
			uint8_t *q = wp_h2mem_realloc(c->mem, v->out, cap);
			if (q == NULL) {
				v->oerr |= OERR_NOMEM;
				h2_ctr(c, WP_CTR_HBONE_NOMEM);
				return NULL;
			}
			v->out = q;
			v->ocap = (uint32_t)cap;
		}
	}
	p = v->out + v->ohead + v->olen;
	v->olen += (uint32_t)n;
	return p;
}

static void out_release(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;

	wp_h2mem_release(c->mem, v->out);
	v->out = NULL;
	v->ohead = v->olen = v->ocap = 0;
}

static void emit_goaway(struct wp_hbconn *c, uint32_t code, int kind)
{
	uint8_t *p = out_room(c, 17, kind);

	if (p == NULL)
		return;
	put_head(p, 8, NGHTTP2_GOAWAY, 0, 0);
	put32(p + 9, (uint32_t)c->u.srv.last_sid);
	put32(p + 13, code);
}

void wp_hbone_srv_terminate(struct wp_hbconn *c, uint32_t code)
{
	if (c->failed)
		return;
	emit_goaway(c, code, OUT_FORCE);
	c->failed = true;
}

/* A connection error: counted, GOAWAY, the session fails. */
static int conn_error(struct wp_hbconn *c, uint32_t code, enum wp_ctr k)
{
	if (!c->failed)
		h2_ctr(c, k);
	wp_hbone_srv_terminate(c, code);
	return -1;
}

/* Turns a failed output append into a connection error. */
static int check_oerr(struct wp_hbconn *c)
{
	uint8_t e = c->u.srv.oerr;

	if (e == 0)
		return 0;
	c->u.srv.oerr = 0;
	if (e & OERR_NOMEM)
		return conn_error(c, NGHTTP2_INTERNAL_ERROR, WP_CTR_HBONE_NOMEM);
	return conn_error(c, NGHTTP2_ENHANCE_YOUR_CALM, WP_CTR_HBONE_CONTROL_FLOOD);
}

static int emit_rst(struct wp_hbconn *c, int32_t sid, uint32_t code)
{
	uint8_t *p = out_room(c, 13, OUT_CONTROL);

	if (p == NULL)
		return -ENOMEM;
	put_head(p, 4, NGHTTP2_RST_STREAM, 0, sid);
	put32(p + 9, code);
	return 0;
}

static int emit_wu(struct wp_hbconn *c, int32_t sid, uint32_t inc)
{
	uint8_t *p = out_room(c, 13, OUT_CONTROL);

	if (p == NULL)
		return -ENOMEM;
	put_head(p, 4, NGHTTP2_WINDOW_UPDATE, 0, sid);
	put32(p + 9, inc);
	return 0;
}

static int emit_ping(struct wp_hbconn *c, uint8_t flags, const uint8_t *opaque)
{
	uint8_t *p = out_room(c, 17, OUT_CONTROL);

	if (p == NULL)
		return -ENOMEM;
	put_head(p, 8, NGHTTP2_PING, flags, 0);
	if (opaque != NULL)
		memcpy(p + 9, opaque, 8);
	else
		memset(p + 9, 0, 8);
	return 0;
}

static int emit_settings(struct wp_hbconn *c)
{
	const struct wp_hbone_config *cfg = &c->cfg;
	const uint32_t iv[][2] = {
	        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg->max_streams},
	        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->max_header_list},
	        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->stream_window},
	        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, cfg->header_table_size},
	};
	size_t n = WP_ARRAY_SIZE(iv);
	uint8_t *p = out_room(c, 9 + 6 * n, OUT_CONTROL);

	if (p == NULL)
		return -ENOMEM;
	put_head(p, (uint32_t)(6 * n), NGHTTP2_SETTINGS, 0, 0);
	for (size_t i = 0; i < n; i++) {
		p[9 + 6 * i] = (uint8_t)(iv[i][0] >> 8);
		p[10 + 6 * i] = (uint8_t)iv[i][0];
		put32(p + 11 + 6 * i, iv[i][1]);
	}
	return 0;
}

/* ---- flow control (receiving) ---- */

static uint32_t conn_limit(const struct wp_hbconn *c)
{
	return WP_MAX(c->cfg.conn_window, 65535u);
}

/* n bytes of the connection's received DATA are done with. */
static void conn_consumed(struct wp_hbconn *c, size_t n)
{
	struct h2srv *v = &c->u.srv;

	v->conn_unacked += (uint32_t)n;
	if (v->conn_unacked >= conn_limit(c) / 2 && emit_wu(c, 0, v->conn_unacked) == 0) {
		v->conn_rwin += v->conn_unacked;
		v->conn_unacked = 0;
	}
}

static void stream_consumed(struct wp_hbstream *s, size_t n)
{
	struct h2srv_stream *t = &s->u.srv;

	if (t->rx_end || t->closing)
		return; /* nothing more will come */
	t->unacked += (uint32_t)n;
	if (t->unacked >= s->c->cfg.stream_window / 2 && emit_wu(s->c, s->id, t->unacked) == 0) {
		t->rwin += t->unacked;
		t->unacked = 0;
	}
}

/* ---- streams ---- */

static struct wp_hbstream *find(struct wp_hbconn *c, int32_t sid)
{
	for (struct wp_hbstream *s = c->streams; s != NULL; s = s->next)
		if (s->id == sid)
			return s->u.srv.closing ? NULL : s;
	return NULL;
}

/* Closes s now (inside input or peek). */
static void close_now(struct wp_hbstream *s, uint32_t err)
{
	if (s->unconsumed > 0) {
		conn_consumed(s->c, s->unconsumed);
		s->unconsumed = 0;
	}
	wp_hbone_stream_closed(s, err);
}

/* Closes at the next sweep (inside an application call). */
static void close_later(struct wp_hbstream *s, uint32_t err)
{
	if (!s->u.srv.closing) {
		s->u.srv.closing = 1;
		s->u.srv.close_err = err;
	}
}

static void sweep(struct wp_hbconn *c)
{
	struct wp_hbstream *s, *next;

	for (s = c->streams; s != NULL; s = next) {
		next = s->next;
		if (s->u.srv.closing)
			close_now(s, s->u.srv.close_err);
	}
}

/* A stream error found while reading: RST_STREAM, counted, closed. */
static void stream_error(struct wp_hbstream *s, uint32_t code, enum wp_ctr k)
{
	h2_ctr(s->c, k);
	(void)emit_rst(s->c, s->id, code);
	close_now(s, code);
}

/* The peer ended its direction (END_STREAM). */
static void peer_end(struct wp_hbstream *s)
{
	struct wp_hbconn *c = s->c;

	s->u.srv.rx_end = 1;
	if (s->known && c->ops->on_eof != NULL)
		c->ops->on_eof(s);
	if (s->u.srv.tx_end && !s->u.srv.closing)
		close_now(s, NGHTTP2_NO_ERROR);
}

/* ---- header blocks ---- */

static bool lit_is(const uint8_t *p, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n == l && memcmp(p, lit, l) == 0;
}

/* RFC 9113 §8.2.1: lowercase token characters. */
static bool name_ok(const uint8_t *p, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = p[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
			continue;
		if (strchr("!#$%&'*+-.^_`|~", ch) == NULL || ch == 0)
			return false;
	}
	return true;
}

/* No NUL, CR or LF; no leading or trailing whitespace. */
static bool value_ok(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] == 0 || p[i] == '\r' || p[i] == '\n')
			return false;
	return n == 0 || (p[0] != ' ' && p[0] != '\t' && p[n - 1] != ' ' && p[n - 1] != '\t');
}

/* Keeps the first value of field idx in the stream's hv buffer. */
static void keep(struct wp_hbstream *s, int idx, const uint8_t *val, size_t vl)
{
	struct wp_hbconn *c = s->c;
	struct h2srv_stream *t = &s->u.srv;

	if (t->hset & (1u << idx))
		return;
	if (t->hvlen + vl + 1 > t->hvcap) {
		uint32_t cap = (uint32_t)WP_MAX(t->hvlen + vl + 1, (size_t)t->hvcap * 2);
		char *q = wp_h2mem_realloc(c->mem, t->hv, WP_MAX(cap, 128u));
		if (q == NULL) {
			h2_ctr(c, WP_CTR_HBONE_NOMEM);
			c->u.srv.bseen |= B_NOMEM;
			return;
		}
		t->hv = q;
		t->hvcap = WP_MAX(cap, 128u);
	}
	memcpy(t->hv + t->hvlen, val, vl);
	t->hv[t->hvlen + vl] = '\0';
	t->hoff[idx] = t->hvlen;
	t->hlen[idx] = (uint32_t)vl;
	t->hvlen += (uint32_t)vl + 1;
	t->hset |= (uint8_t)(1u << idx);
}

static void on_field(struct wp_hbconn *c, const nghttp2_nv *nv)
{
	struct h2srv *v = &c->u.srv;
	struct wp_hbstream *s = v->bs;
	const uint8_t *n = nv->name, *val = nv->value;
	size_t nl = nv->namelen, vl = nv->valuelen;

	if (v->bmode == BM_IGNORE || s == NULL || (v->bseen & (B_BIG | B_NOMEM)))
		return;
	s->hdr_bytes += (uint32_t)(nl + vl + 32);
	if (s->hdr_bytes > c->cfg.max_header_list) {
		h2_ctr(c, WP_CTR_HBONE_HEADERS_TOO_LARGE);
		s->local_close = 1;
		v->bseen |= B_BIG;
		return;
	}
	if (v->bseen & B_BAD)
		return;
	if (!value_ok(val, vl)) {
		v->bseen |= B_BAD;
		return;
	}
	if (nl > 0 && n[0] == ':') {
		uint16_t bit;

		if (v->bmode == BM_TRAILER || (v->bseen & SEEN_REGULAR)) {
			v->bseen |= B_BAD;
			return;
		}
		if (lit_is(n, nl, ":method"))
			bit = SEEN_METHOD;
		else if (lit_is(n, nl, ":scheme"))
			bit = SEEN_SCHEME;
		else if (lit_is(n, nl, ":authority"))
			bit = SEEN_AUTH;
		else if (lit_is(n, nl, ":path"))
			bit = SEEN_PATH;
		else if (lit_is(n, nl, ":protocol"))
			bit = SEEN_PROTO;
		else
			bit = B_BAD;
		if (v->bseen & bit) {
			v->bseen |= B_BAD; /* duplicate */
			return;
		}
		v->bseen |= bit;
		if (bit == SEEN_METHOD && lit_is(val, vl, "CONNECT"))
			v->bseen |= B_CONNECT;
		else if (bit == SEEN_AUTH)
			keep(s, HV_AUTHORITY, val, vl);
		else if (bit == SEEN_PATH && vl == 0)
			v->bseen |= B_BAD;
		return;
	}
	v->bseen |= SEEN_REGULAR;
	if (!name_ok(n, nl) || lit_is(n, nl, "connection") || lit_is(n, nl, "keep-alive") ||
	    lit_is(n, nl, "proxy-connection") || lit_is(n, nl, "transfer-encoding") ||
	    lit_is(n, nl, "upgrade") || (lit_is(n, nl, "te") && !lit_is(val, vl, "trailers"))) {
		v->bseen |= B_BAD;
		return;
	}
	if (v->bmode != BM_NEW)
		return;
	if (lit_is(n, nl, "baggage"))
		keep(s, HV_BAGGAGE, val, vl);
	else if (lit_is(n, nl, "forwarded"))
		keep(s, HV_FORWARDED, val, vl);
	else if (lit_is(n, nl, "traceparent"))
		keep(s, HV_TRACEPARENT, val, vl);
}

/* Feeds a header block fragment (final: the block ends here). */
static int inflate(struct wp_hbconn *c, const uint8_t *in, size_t inlen, bool final)
{
	static const uint8_t none[1];

	if (in == NULL)
		in = none;
	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t rv =
		        nghttp2_hd_inflate_hd2(c->u.srv.hd, &nv, &fl, (uint8_t *)in, inlen, final);

		if (rv < 0)
			return rv == NGHTTP2_ERR_NOMEM
			               ? conn_error(c, NGHTTP2_INTERNAL_ERROR, WP_CTR_HBONE_NOMEM)
			               : conn_error(c, NGHTTP2_COMPRESSION_ERROR,
			                            WP_CTR_HBONE_COMPRESSION_ERROR);
		in += rv;
		inlen -= (size_t)rv;
		if (fl & NGHTTP2_HD_INFLATE_EMIT)
			on_field(c, &nv);
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(c->u.srv.hd);
			return 0;
		}
		if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && inlen == 0)
			return 0;
	}
}

static struct wp_hbone_hval hval(const struct wp_hbstream *s, int idx)
{
	const struct h2srv_stream *t = &s->u.srv;
	struct wp_hbone_hval h = {NULL, 0};

	if (t->hset & (1u << idx)) {
		h.base = t->hv + t->hoff[idx];
		h.len = t->hlen[idx];
	}
	return h;
}

static void respond_internal(struct wp_hbstream *s, int status, enum wp_ctr k)
{
	h2_ctr(s->c, k);
	(void)wp_hbone_srv_respond(s, status);
}

/* A request header block is complete: validate, answer or hand over. */
static void request(struct wp_hbconn *c, struct wp_hbstream *s, uint16_t seen, bool end_stream)
{
	bool connect = seen & B_CONNECT;

	if (seen & (B_BIG | B_NOMEM)) {
		(void)emit_rst(c, s->id, NGHTTP2_INTERNAL_ERROR);
		wp_hbone_stream_free(s);
		return;
	}
	if ((seen & B_BAD) || !(seen & SEEN_METHOD) || (seen & SEEN_PROTO) ||
	    (connect && (!(seen & SEEN_AUTH) || (seen & (SEEN_SCHEME | SEEN_PATH)))) ||
	    (!connect && (seen & (SEEN_SCHEME | SEEN_PATH)) != (SEEN_SCHEME | SEEN_PATH))) {
		h2_ctr(c, WP_CTR_HBONE_MALFORMED_REQUEST);
		(void)emit_rst(c, s->id, NGHTTP2_PROTOCOL_ERROR);
		wp_hbone_stream_free(s);
		return;
	}
	if (end_stream)
		s->u.srv.rx_end = 1;
	if (!connect) {
		respond_internal(s, 400, WP_CTR_HBONE_NOT_CONNECT);
		return;
	}
	s->req.authority_text = hval(s, HV_AUTHORITY);
	if (s->req.authority_text.base == NULL ||
	    wp_sockaddr_parse(s->req.authority_text.base, &s->req.authority) != 0) {
		respond_internal(s, 400, WP_CTR_HBONE_BAD_AUTHORITY);
		return;
	}
	s->req.baggage = hval(s, HV_BAGGAGE);
	s->req.forwarded = hval(s, HV_FORWARDED);
	s->req.traceparent = hval(s, HV_TRACEPARENT);
	s->known = 1;
	c->ops->on_request(c, s, &s->req);
	if (end_stream && !s->u.srv.closing && c->ops->on_eof != NULL)
		c->ops->on_eof(s);
}

static void block_end(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;
	struct wp_hbstream *s = v->bs;
	uint8_t mode = v->bmode;
	uint16_t seen = v->bseen;
	bool es = v->bflags & NGHTTP2_FLAG_END_STREAM;

	v->bmode = BM_NONE;
	v->bs = NULL;
	if (mode == BM_IGNORE) {
		if (seen & B_REFUSE) {
			h2_ctr(c, WP_CTR_HBONE_STREAM_REFUSED);
			(void)emit_rst(c, v->bsid, NGHTTP2_REFUSED_STREAM);
		} else if (seen & B_NOMEM) {
			(void)emit_rst(c, v->bsid, NGHTTP2_INTERNAL_ERROR);
		}
		return;
	}
	if (s == NULL || s->u.srv.closing)
		return; /* reset by the application meanwhile */
	if (mode == BM_NEW) {
		request(c, s, seen, es);
		return;
	}
	/* Trailers: they may only end the stream. */
	if (seen & B_BIG) {
		(void)emit_rst(c, s->id, NGHTTP2_INTERNAL_ERROR);
		close_now(s, NGHTTP2_INTERNAL_ERROR);
	} else if (s->u.srv.rx_end) {
		stream_error(s, NGHTTP2_STREAM_CLOSED, WP_CTR_HBONE_STREAM_ERROR);
	} else if ((seen & B_BAD) || !es) {
		stream_error(s, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_MALFORMED_REQUEST);
	} else {
		peer_end(s);
	}
}

/* ---- frames ---- */

static void collect(struct h2srv *v, uint8_t n)
{
	v->phase = PH_COLLECT;
	v->need = n;
	v->fblen = 0;
}

static void body(struct h2srv *v, uint32_t n)
{
	v->body = n;
	v->phase = n > 0 ? PH_BODY : PH_SKIP;
}

/* A client stream id we have not seen yet: idle (RFC 9113 §5.1). */
static bool idle(const struct h2srv *v, int32_t sid)
{
	return (sid & 1) == 0 || sid > v->last_sid;
}

static int data_begin(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;
	struct wp_hbstream *s;
	bool padded = v->fflags & NGHTTP2_FLAG_PADDED;

	if (v->fsid == 0 || idle(v, v->fsid))
		return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
	if (padded && v->flen < 1)
		return conn_error(c, NGHTTP2_FRAME_SIZE_ERROR, WP_CTR_HBONE_FRAME_SIZE_ERROR);
	v->conn_rwin -= v->flen;
	if (v->conn_rwin < 0)
		return conn_error(c, NGHTTP2_FLOW_CONTROL_ERROR, WP_CTR_HBONE_FLOW_CONTROL_ERROR);
	s = find(c, v->fsid);
	if (s != NULL && s->u.srv.rx_end) {
		conn_consumed(c, v->flen);
		stream_error(s, NGHTTP2_STREAM_CLOSED, WP_CTR_HBONE_STREAM_ERROR);
		s = NULL;
	} else if (s != NULL) {
		s->u.srv.rwin -= v->flen;
		if (s->u.srv.rwin < 0) {
			conn_consumed(c, v->flen);
			stream_error(s, NGHTTP2_FLOW_CONTROL_ERROR,
			             WP_CTR_HBONE_FLOW_CONTROL_ERROR);
			s = NULL;
		}
	} else {
		/* A stream closed here: its DATA counts as consumed at once. */
		conn_consumed(c, v->flen);
	}
	v->cur = s;
	if (s == NULL)
		body(v, 0);
	else if (padded)
		collect(v, 1);
	else
		body(v, v->flen);
	return 0;
}

static void data_chunk(struct wp_hbconn *c, const uint8_t *p, size_t n)
{
	struct wp_hbstream *s = c->u.srv.cur;

	if (s == NULL)
		return;
	if (s->u.srv.closing) {
		conn_consumed(c, n);
	} else if (s->known && c->ops->on_data != NULL) {
		s->unconsumed += n;
		c->ops->on_data(s, p, n);
	} else {
		/* Nobody will take these: give the window back at once. */
		conn_consumed(c, n);
		stream_consumed(s, n);
	}
}

static int headers_begin(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;
	uint8_t prefix = (v->fflags & NGHTTP2_FLAG_PADDED ? 1 : 0) +
	                 (v->fflags & NGHTTP2_FLAG_PRIORITY ? 5 : 0);
	struct wp_hbstream *s = NULL;

	if (v->fsid == 0 || (v->fsid & 1) == 0)
		return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
	if (v->flen < prefix)
		return conn_error(c, NGHTTP2_FRAME_SIZE_ERROR, WP_CTR_HBONE_FRAME_SIZE_ERROR);
	c->conts = 0;
	v->bsid = v->fsid;
	v->bflags = v->fflags;
	v->bseen = 0;
	if (v->fsid > v->last_sid) {
		v->last_sid = v->fsid;
		v->bmode = BM_IGNORE;
		if (v->goaway_tx) {
			/* After our GOAWAY new streams are ignored (the peer knows
			 * from its last stream id that they were not processed). */
		} else if (c->nstreams >= c->cfg.max_streams) {
			v->bseen |= B_REFUSE;
		} else if ((s = wp_hbone_stream_new(c)) == NULL) {
			v->bseen |= B_NOMEM;
		} else {
			s->id = v->fsid;
			s->u.srv.rwin = c->cfg.stream_window;
			s->u.srv.swin = v->peer_iws;
			v->bmode = BM_NEW;
		}
	} else {
		s = find(c, v->fsid);
		v->bmode = s != NULL ? BM_TRAILER : BM_IGNORE;
	}
	v->bs = s;
	if (prefix > 0)
		collect(v, prefix);
	else
		body(v, v->flen);
	return 0;
}

static int apply_setting(struct wp_hbconn *c, uint16_t id, uint32_t val)
{
	struct h2srv *v = &c->u.srv;

	switch (id) {
	case NGHTTP2_SETTINGS_ENABLE_PUSH:
	case NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL:
		if (val > 1)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		break;
	case NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE: {
		int64_t delta = (int64_t)val - v->peer_iws;

		if (val > WIN_MAX)
			return conn_error(c, NGHTTP2_FLOW_CONTROL_ERROR,
			                  WP_CTR_HBONE_FLOW_CONTROL_ERROR);
		for (struct wp_hbstream *s = c->streams; s != NULL; s = s->next) {
			s->u.srv.swin += delta;
			if (s->u.srv.swin > WIN_MAX)
				return conn_error(c, NGHTTP2_FLOW_CONTROL_ERROR,
				                  WP_CTR_HBONE_FLOW_CONTROL_ERROR);
		}
		v->peer_iws = val;
		break;
	}
	case NGHTTP2_SETTINGS_MAX_FRAME_SIZE:
		if (val < 16384 || val > 16777215)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		v->peer_max_frame = val;
		break;
	default:
		/* HEADER_TABLE_SIZE: our encoder keeps no table at all;
		 * MAX_CONCURRENT_STREAMS: we open none; others: ignored. */
		break;
	}
	return 0;
}

/* The fixed part of a frame is in fb. */
static int collected(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;
	struct wp_hbstream *s;
	uint32_t x;

	switch (v->ftype) {
	case NGHTTP2_DATA:
		v->padlen = v->fb[0];
		if (v->padlen > v->rem)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		/* The padding counts as consumed at once. */
		conn_consumed(c, 1u + v->padlen);
		if (v->cur != NULL)
			stream_consumed(v->cur, 1u + v->padlen);
		body(v, v->rem - v->padlen);
		return 0;
	case NGHTTP2_HEADERS:
		v->padlen = v->fflags & NGHTTP2_FLAG_PADDED ? v->fb[0] : 0;
		if (v->padlen > v->rem)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		body(v, v->rem - v->padlen); /* the priority fields are ignored */
		return 0;
	case NGHTTP2_SETTINGS:
		v->fblen = 0;
		return apply_setting(c, (uint16_t)(v->fb[0] << 8 | v->fb[1]), be32(v->fb + 2));
	case NGHTTP2_PING:
		if (v->fflags & NGHTTP2_FLAG_ACK)
			c->ping_out = false;
		else
			(void)emit_ping(c, NGHTTP2_FLAG_ACK, v->fb);
		return 0;
	case NGHTTP2_GOAWAY:
		c->goaway_rx = true;
		h2_ctr(c, WP_CTR_HBONE_GOAWAY_RECEIVED);
		v->phase = PH_SKIP; /* debug data */
		return 0;
	case NGHTTP2_RST_STREAM:
		if (idle(v, v->fsid))
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		/*
		 * Rapid reset counts the streams the peer opened and reset; a
		 * reset of a stream already closed here costs nothing (python-h2
		 * answers each DATA frame in flight after it reset a stream so).
		 */
		s = find(c, v->fsid);
		if (s == NULL)
			return 0;
		s->peer_rst = 1;
		if (wp_hbone_rst_over_limit(c)) {
			wp_hbone_srv_terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
			return -1;
		}
		close_now(s, be32(v->fb));
		return 0;
	case NGHTTP2_WINDOW_UPDATE:
		x = be32(v->fb) & 0x7fffffffu;
		if (v->fsid == 0) {
			if (x == 0)
				return conn_error(c, NGHTTP2_PROTOCOL_ERROR,
				                  WP_CTR_HBONE_PROTOCOL_ERROR);
			v->conn_swin += x;
			if (v->conn_swin > WIN_MAX)
				return conn_error(c, NGHTTP2_FLOW_CONTROL_ERROR,
				                  WP_CTR_HBONE_FLOW_CONTROL_ERROR);
			return 0;
		}
		if (idle(v, v->fsid))
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		s = find(c, v->fsid);
		if (s == NULL)
			return 0;
		if (x == 0) {
			stream_error(s, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_STREAM_ERROR);
			return 0;
		}
		s->u.srv.swin += x;
		if (s->u.srv.swin > WIN_MAX)
			stream_error(s, NGHTTP2_FLOW_CONTROL_ERROR,
			             WP_CTR_HBONE_FLOW_CONTROL_ERROR);
		return 0;
	default:
		return 0;
	}
}

static int frame_begin(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;
	const uint8_t *h = v->hb;
	uint8_t t;

	v->flen = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
	v->ftype = t = h[3];
	v->fflags = h[4];
	v->fsid = (int32_t)(be32(h + 5) & 0x7fffffffu);
	v->rem = v->flen;
	v->cur = NULL;
	v->phase = PH_SKIP;
	if (v->flen > MAX_FRAME)
		return conn_error(c, NGHTTP2_FRAME_SIZE_ERROR, WP_CTR_HBONE_FRAME_SIZE_ERROR);
	if (!v->got_settings) {
		/* RFC 9113 §3.4: the preface's SETTINGS comes first. */
		if (t != NGHTTP2_SETTINGS || (v->fflags & NGHTTP2_FLAG_ACK))
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		v->got_settings = true;
	}
	if (v->bmode != BM_NONE && (t != NGHTTP2_CONTINUATION || v->fsid != v->bsid))
		return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
	switch (t) {
	case NGHTTP2_DATA:
		return data_begin(c);
	case NGHTTP2_HEADERS:
		return headers_begin(c);
	case NGHTTP2_PRIORITY:
		if (v->fsid == 0)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		if (v->flen != 5)
			return conn_error(c, NGHTTP2_FRAME_SIZE_ERROR,
			                  WP_CTR_HBONE_FRAME_SIZE_ERROR);
		return 0; /* ignored */
	case NGHTTP2_RST_STREAM:
		if (v->fsid == 0)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		if (v->flen != 4)
			return conn_error(c, NGHTTP2_FRAME_SIZE_ERROR,
			                  WP_CTR_HBONE_FRAME_SIZE_ERROR);
		collect(v, 4);
		return 0;
	case NGHTTP2_SETTINGS:
		if (v->fsid != 0)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		if ((v->fflags & NGHTTP2_FLAG_ACK) ? v->flen != 0 : v->flen % 6 != 0)
			return conn_error(c, NGHTTP2_FRAME_SIZE_ERROR,
			                  WP_CTR_HBONE_FRAME_SIZE_ERROR);
		collect(v, 6);
		return 0;
	case NGHTTP2_PUSH_PROMISE:
		return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
	case NGHTTP2_PING:
		if (v->fsid != 0)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		if (v->flen != 8)
			return conn_error(c, NGHTTP2_FRAME_SIZE_ERROR,
			                  WP_CTR_HBONE_FRAME_SIZE_ERROR);
		collect(v, 8);
		return 0;
	case NGHTTP2_GOAWAY:
		if (v->fsid != 0)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		if (v->flen < 8)
			return conn_error(c, NGHTTP2_FRAME_SIZE_ERROR,
			                  WP_CTR_HBONE_FRAME_SIZE_ERROR);
		collect(v, 8);
		return 0;
	case NGHTTP2_WINDOW_UPDATE:
		if (v->flen != 4)
			return conn_error(c, NGHTTP2_FRAME_SIZE_ERROR,
			                  WP_CTR_HBONE_FRAME_SIZE_ERROR);
		collect(v, 4);
		return 0;
	case NGHTTP2_CONTINUATION:
		if (v->bmode == BM_NONE)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		if (wp_hbone_cont_over_limit(c)) {
			wp_hbone_srv_terminate(c, NGHTTP2_ENHANCE_YOUR_CALM);
			return -1;
		}
		v->bflags |= v->fflags & NGHTTP2_FLAG_END_HEADERS;
		body(v, v->flen);
		return 0;
	default:
		return 0; /* unknown types are ignored (RFC 9113 §4.1) */
	}
}

static int frame_end(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;
	struct wp_hbstream *s = v->cur;

	v->rstate = RS_HEAD;
	v->hblen = 0;
	v->cur = NULL;
	switch (v->ftype) {
	case NGHTTP2_DATA:
		if (s != NULL && (v->fflags & NGHTTP2_FLAG_END_STREAM) && !s->u.srv.closing)
			peer_end(s);
		return 0;
	case NGHTTP2_HEADERS:
	case NGHTTP2_CONTINUATION:
		if (!(v->fflags & NGHTTP2_FLAG_END_HEADERS))
			return 0;
		if (inflate(c, NULL, 0, true) < 0)
			return -1;
		block_end(c);
		return 0;
	case NGHTTP2_SETTINGS:
		if (!(v->fflags & NGHTTP2_FLAG_ACK)) {
			uint8_t *p = out_room(c, 9, OUT_CONTROL);
			if (p != NULL)
				put_head(p, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
			return 0;
		}
		if (v->settings_unacked == 0)
			return conn_error(c, NGHTTP2_PROTOCOL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		v->settings_unacked--;
		if (nghttp2_hd_inflate_change_table_size(v->hd, c->cfg.header_table_size) != 0)
			return conn_error(c, NGHTTP2_INTERNAL_ERROR, WP_CTR_HBONE_PROTOCOL_ERROR);
		return 0;
	default:
		return 0;
	}
}

ssize_t wp_hbone_srv_input(struct wp_hbconn *c, const uint8_t *buf, size_t len)
{
	struct h2srv *v = &c->u.srv;
	size_t off = 0;

	while (off < len) {
		size_t n = len - off, k;
		int rv = 0;

		if (v->rstate == RS_PREFACE) {
			k = WP_MIN(n, PREFACE_LEN - (size_t)v->rem);
			if (memcmp(buf + off, preface + v->rem, k) != 0) {
				(void)conn_error(c, NGHTTP2_PROTOCOL_ERROR,
				                 WP_CTR_HBONE_PROTOCOL_ERROR);
				return -EPROTO;
			}
			v->rem += (uint32_t)k;
			off += k;
			if (v->rem == PREFACE_LEN) {
				v->rstate = RS_HEAD;
				v->hblen = 0;
			}
			continue;
		}
		if (v->rstate == RS_HEAD) {
			k = WP_MIN(n, 9u - v->hblen);
			memcpy(v->hb + v->hblen, buf + off, k);
			v->hblen += (uint8_t)k;
			off += k;
			if (v->hblen < 9)
				continue;
			v->rstate = RS_PAYLOAD;
			rv = frame_begin(c);
		} else {
			k = WP_MIN(n, (size_t)v->rem);
			switch (v->phase) {
			case PH_COLLECT:
				k = WP_MIN(k, (size_t)(v->need - v->fblen));
				memcpy(v->fb + v->fblen, buf + off, k);
				v->fblen += (uint8_t)k;
				v->rem -= (uint32_t)k;
				off += k;
				if (v->fblen == v->need) {
					if (v->ftype != NGHTTP2_SETTINGS)
						v->phase = PH_SKIP;
					rv = collected(c);
				}
				break;
			case PH_BODY:
				k = WP_MIN(k, (size_t)v->body);
				if (v->ftype == NGHTTP2_DATA)
					data_chunk(c, buf + off, k);
				else
					rv = inflate(c, buf + off, k, false);
				v->body -= (uint32_t)k;
				v->rem -= (uint32_t)k;
				off += k;
				if (v->body == 0)
					v->phase = PH_SKIP;
				break;
			default:
				v->rem -= (uint32_t)k;
				off += k;
				break;
			}
		}
		if (rv == 0 && v->rstate == RS_PAYLOAD && v->rem == 0)
			rv = frame_end(c);
		if (rv == 0)
			rv = check_oerr(c);
		if (rv < 0 || c->failed)
			return -EPROTO;
	}
	return (ssize_t)len;
}

/* ---- sending ---- */

static bool sendable(const struct wp_hbstream *s)
{
	const struct h2srv_stream *t = &s->u.srv;

	return t->tunnel && !t->tx_end && !t->closing && (s->slen > 0 || s->shut_out);
}

/* Copies DATA frames into the output, one per stream and round, within
 * the windows and one frame's worth of buffer. */
static int fill(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;
	bool progress = true;

	while (progress) {
		struct wp_hbstream *s, *next;

		progress = false;
		for (s = c->streams; s != NULL; s = next) {
			struct h2srv_stream *t = &s->u.srv;
			size_t n;
			bool eof;
			uint8_t *p;

			next = s->next;
			if (!sendable(s))
				continue;
			if (v->olen + 9 >= DATA_TARGET)
				return 0;
			n = WP_MIN((size_t)s->slen, (size_t)v->peer_max_frame);
			n = WP_MIN(n, (size_t)(DATA_TARGET - 9 - v->olen));
			n = WP_MIN(n, (size_t)WP_MAX(t->swin, 0));
			n = WP_MIN(n, (size_t)WP_MAX(v->conn_swin, 0));
			eof = s->shut_out && n == s->slen;
			if (n == 0 && !eof)
				continue;
			p = out_room(c, 9 + n, OUT_DATA);
			if (p == NULL)
				return -ENOMEM;
			put_head(p, (uint32_t)n, NGHTTP2_DATA, eof ? NGHTTP2_FLAG_END_STREAM : 0,
			         s->id);
			(void)wp_hbone_sbuf_take(s, p + 9, n);
			t->swin -= (int64_t)n;
			v->conn_swin -= (int64_t)n;
			progress = true;
			if (eof) {
				t->tx_end = 1;
				if (t->rx_end)
					close_now(s, NGHTTP2_NO_ERROR);
			}
		}
	}
	return 0;
}

ssize_t wp_hbone_srv_peek(struct wp_hbconn *c, const uint8_t **p)
{
	struct h2srv *v = &c->u.srv;

	if (!c->failed) {
		sweep(c);
		for (int round = 0; round < 2; round++) {
			if (fill(c) != 0 && v->olen == 0) {
				c->failed = true;
				return -ENOMEM;
			}
			/* on_writable may queue more: one more round. */
			if (!wp_hbone_notify_writable(c))
				break;
		}
		sweep(c);
		/* Rotate, so that no stream always goes first. */
		if (c->streams != NULL && c->streams != c->tail) {
			struct wp_hbstream *s = c->streams;
			c->streams = s->next;
			c->streams->prev = NULL;
			s->prev = c->tail;
			s->next = NULL;
			c->tail->next = s;
			c->tail = s;
		}
		if (check_oerr(c) != 0 && v->olen == 0)
			return -EPROTO;
	}
	if (v->olen == 0) {
		if (v->out != NULL)
			out_release(c);
		*p = NULL;
		return 0;
	}
	*p = v->out + v->ohead;
	return (ssize_t)v->olen;
}

void wp_hbone_srv_advance(struct wp_hbconn *c, size_t n)
{
	struct h2srv *v = &c->u.srv;

	WP_ASSERT(n <= v->olen);
	v->ohead += (uint32_t)n;
	v->olen -= (uint32_t)n;
	if (v->olen == 0)
		out_release(c); /* idle connections hold no output buffer */
}

/* ---- the connection ---- */

int wp_hbone_srv_init(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;

	if (nghttp2_hd_inflate_new2(&v->hd, wp_h2mem_nghttp2(c->mem)) != 0)
		return -ENOMEM;
	v->peer_iws = 65535;
	v->peer_max_frame = 16384;
	v->conn_swin = 65535;
	v->conn_rwin = conn_limit(c);
	if (emit_settings(c) != 0 ||
	    (conn_limit(c) > 65535 && emit_wu(c, 0, conn_limit(c) - 65535) != 0)) {
		wp_hbone_srv_fini(c);
		return -ENOMEM;
	}
	v->settings_unacked = 1;
	v->oerr = 0;
	return 0;
}

void wp_hbone_srv_fini(struct wp_hbconn *c)
{
	struct h2srv *v = &c->u.srv;

	if (v->hd != NULL)
		nghttp2_hd_inflate_del(v->hd);
	v->hd = NULL;
	out_release(c);
}

int wp_hbone_srv_ping(struct wp_hbconn *c)
{
	return emit_ping(c, 0, NULL);
}

int wp_hbone_srv_drain(struct wp_hbconn *c)
{
	uint8_t *p;

	if (c->failed)
		return -EPROTO;
	p = out_room(c, 17, OUT_FORCE);
	if (p == NULL)
		return -ENOMEM;
	put_head(p, 8, NGHTTP2_GOAWAY, 0, 0);
	put32(p + 9, (uint32_t)c->u.srv.last_sid);
	put32(p + 13, NGHTTP2_NO_ERROR);
	c->u.srv.goaway_tx = true;
	return 0;
}

bool wp_hbone_srv_done(const struct wp_hbconn *c)
{
	const struct h2srv *v = &c->u.srv;

	if (v->olen > 0)
		return false;
	return c->failed || (c->nstreams == 0 && (v->goaway_tx || c->goaway_rx));
}

/* ---- streams: the application's side ---- */

int wp_hbone_srv_respond(struct wp_hbstream *s, int status)
{
	struct wp_hbconn *c = s->c;
	struct h2srv *v = &c->u.srv;
	struct h2srv_stream *t = &s->u.srv;
	uint8_t blk[6];
	size_t n = 0;
	uint8_t *p;

	if (!c->failed && !t->closing) {
		/* Our encoder keeps no dynamic table: say so once (RFC 7541
		 * §6.3), then only static-table or literal fields. */
		if (!v->hpack_sized)
			blk[n++] = 0x20;
		switch (status) {
		case 200:
			blk[n++] = 0x88;
			break;
		case 204:
			blk[n++] = 0x89;
			break;
		case 206:
			blk[n++] = 0x8a;
			break;
		case 304:
			blk[n++] = 0x8b;
			break;
		case 400:
			blk[n++] = 0x8c;
			break;
		case 404:
			blk[n++] = 0x8d;
			break;
		case 500:
			blk[n++] = 0x8e;
			break;
		default:
			/* Literal without indexing, name :status (static 8). */
			blk[n++] = 0x08;
			blk[n++] = 3;
			blk[n++] = (uint8_t)('0' + status / 100);
			blk[n++] = (uint8_t)('0' + status / 10 % 10);
			blk[n++] = (uint8_t)('0' + status % 10);
			break;
		}
		p = out_room(c, 9 + n, OUT_CONTROL);
		if (p == NULL)
			return -ENOMEM;
		put_head(p, (uint32_t)n, NGHTTP2_HEADERS,
		         NGHTTP2_FLAG_END_HEADERS | (status == 200 ? 0 : NGHTTP2_FLAG_END_STREAM),
		         s->id);
		memcpy(p + 9, blk, n);
		v->hpack_sized = true;
	}
	s->responded = 1;
	if (status == 200) {
		t->tunnel = 1;
		h2_ctr(c, WP_CTR_HBONE_TUNNEL_OPENED);
		return 0;
	}
	t->tx_end = 1;
	s->local_close = 1;
	wp_hbone_count_response(s, status);
	if (t->rx_end)
		close_later(s, NGHTTP2_NO_ERROR);
	return 0;
}

int wp_hbone_srv_consume(struct wp_hbstream *s, size_t n)
{
	conn_consumed(s->c, n);
	stream_consumed(s, n);
	return 0;
}

int wp_hbone_srv_reset(struct wp_hbstream *s, uint32_t code)
{
	struct h2srv_stream *t = &s->u.srv;
	int rv = 0;

	if (t->closing)
		return 0;
	s->local_close = 1;
	if (!s->c->failed)
		rv = emit_rst(s->c, s->id, code);
	close_later(s, code);
	return rv;
}
