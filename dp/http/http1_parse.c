/*
 * HTTP/1.x message parser: llhttp drives the grammar, this file turns its
 * callbacks into one event per wp_http1_parse() call.
 *
 * Every callback that produces an event (head complete, body slice, message
 * complete) returns HPE_PAUSED, so llhttp_execute() stops right behind the
 * event and llhttp_get_error_pos() says how much was consumed; the next call
 * resumes. Header names, values, the target and the reason phrase are copied
 * into the arena as they arrive (a name or value may come in several pieces
 * across feeds), so the caller may recycle input buffers at once.
 *
 * llhttp (strict: no lenient flags) refuses Content-Length with
 * Transfer-Encoding, duplicate or malformed Content-Length, Transfer-Encoding
 * not ending in chunked and bad chunk sizes. On top of it this file refuses
 * what llhttp's default build lets through: obs-fold, header names that are
 * not tokens ("Transfer-Encoding : chunked"), missing or repeated Host, and it
 * enforces the size limits. Each refusal increments its own counter.
 *
 * Line endings: outside body bytes (request/status line, fields, chunk
 * framing, trailers) every CR must be followed by LF and every LF preceded
 * by CR. llhttp's default build ends a head at CR + any byte ("\r\n\rX"
 * swallows the X) and takes a bare LF as the empty line; RFC 9112 2.2 lets a
 * recipient take bare LF as a line end, but only if it does so everywhere,
 * and llhttp refuses it after a field value. So a head ends only at CRLF
 * CRLF, checked here over the bytes llhttp consumed, in order, whatever the
 * feeds (check_crlf()).
 *
 * An absolute-form target (RFC 9112 3.2.2: "GET http://a/p HTTP/1.1") is
 * turned into origin-form, its authority becoming the Host field, so routing
 * and the upstream see the same host the target named.
 */
#include <errno.h>
#include <string.h>

#include "http1.h"
#include "wp/counters.h"

const struct wp_http1_limits wp_http1_default_limits = {
        .max_line = 8192,
        .max_header_bytes = 60 * 1024,
        .max_headers = 100,
};

/* RFC 9110 tchar. */
static const uint8_t tchar[256] = {
        ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
        ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
        ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
        ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1,
        ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1,  ['n'] = 1, ['o'] = 1,
        ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,  ['v'] = 1, ['w'] = 1,
        ['x'] = 1, ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,  ['D'] = 1, ['E'] = 1,
        ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,  ['L'] = 1, ['M'] = 1,
        ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,  ['T'] = 1, ['U'] = 1,
        ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
};

static inline char lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
}

static inline struct wp_http1_parser *P(llhttp_t *ll)
{
	return wp_container_of(ll, struct wp_http1_parser, ll);
}

/* Records the first error of this message: the counter is bumped here, once. */
static int fail(struct wp_http1_parser *p, uint16_t status, enum wp_ctr c)
{
	if (!p->err_ctr_set) {
		p->err_ctr_set = 1;
		p->err_status = status;
		p->err_ctr = (uint16_t)c;
		wp_ctr_inc(p->ctr, c);
	}
	return HPE_USER;
}

static inline uint16_t bad_status(const struct wp_http1_parser *p)
{
	return p->ll.type == HTTP_REQUEST ? 400 : 502;
}

static inline uint16_t big_status(const struct wp_http1_parser *p)
{
	return p->ll.type == HTTP_REQUEST ? 431 : 502;
}

/* Appends <len> bytes to the arena; lower-cases them when asked. */
static int arena_put(struct wp_http1_parser *p, const char *at, size_t len, bool lc)
{
	if (len > p->bytes_cap - p->bytes_used)
		return -ENOSPC;
	char *dst = p->bytes + p->bytes_used;
	if (lc) {
		for (size_t i = 0; i < len; i++)
			dst[i] = lower(at[i]);
	} else {
		memcpy(dst, at, len);
	}
	p->bytes_used += (uint32_t)len;
	return 0;
}

static int on_message_begin(llhttp_t *ll)
{
	struct wp_http1_parser *p = P(ll);
	uint8_t req_method = p->msg.method;

	memset(&p->msg, 0, sizeof(p->msg));
	p->msg.hdrs = p->hdr_mem;
	p->msg.method = p->ll.type == HTTP_RESPONSE ? req_method : 0;
	p->bytes_used = 0;
	p->hdr_bytes = 0;
	/* the spaces and "HTTP/" (and the status code) that no callback reports */
	p->line_len = p->ll.type == HTTP_REQUEST ? 7 : 10;
	p->n_lines = 0;
	p->in_field = 0;
	p->trailers = 0;
	p->phase = WP_HTTP1_PH_HEAD;
	return 0;
}

static int line_piece(struct wp_http1_parser *p, size_t len)
{
	p->line_len += (uint32_t)len;
	if (p->line_len > p->lim.max_line)
		return fail(p, big_status(p), WP_CTR_HTTP1_LINE_TOO_LONG);
	return 0;
}

static int on_method(llhttp_t *ll, const char *at, size_t len)
{
	(void)at;
	return line_piece(P(ll), len);
}

static int on_version(llhttp_t *ll, const char *at, size_t len)
{
	(void)at;
	return line_piece(P(ll), len);
}

static int on_url(llhttp_t *ll, const char *at, size_t len)
{
	struct wp_http1_parser *p = P(ll);
	int rc = line_piece(p, len);
	if (rc)
		return rc;
	if (p->msg.target == NULL)
		p->msg.target = p->bytes + p->bytes_used;
	/* the line limit is below the arena size, so this cannot fail */
	if (arena_put(p, at, len, false))
		return fail(p, big_status(p), WP_CTR_HTTP1_LINE_TOO_LONG);
	p->msg.target_len += (uint32_t)len;
	return 0;
}

static int on_status(llhttp_t *ll, const char *at, size_t len)
{
	struct wp_http1_parser *p = P(ll);
	int rc = line_piece(p, len);
	if (rc)
		return rc;
	if (p->msg.reason == NULL)
		p->msg.reason = p->bytes + p->bytes_used;
	if (arena_put(p, at, len, false))
		return fail(p, big_status(p), WP_CTR_HTTP1_LINE_TOO_LONG);
	p->msg.reason_len += (uint16_t)len;
	return 0;
}

static inline struct wp_http_hdr *cur_hdr(struct wp_http1_parser *p)
{
	return &p->hdr_mem[p->msg.n_hdrs + p->msg.n_trailers];
}

static int hdr_bytes(struct wp_http1_parser *p, size_t len)
{
	p->hdr_bytes += (uint32_t)len;
	if (p->hdr_bytes > p->lim.max_header_bytes)
		return fail(p, big_status(p), WP_CTR_HTTP1_HEADERS_TOO_LARGE);
	return 0;
}

static int on_header_field(llhttp_t *ll, const char *at, size_t len)
{
	struct wp_http1_parser *p = P(ll);
	struct wp_http_hdr *h;

	if (p->in_field != 1) {
		if (p->n_lines >= p->lim.max_headers)
			return fail(p, big_status(p), WP_CTR_HTTP1_TOO_MANY_HEADERS);
		p->n_lines++;
		h = cur_hdr(p);
		memset(h, 0, sizeof(*h));
		h->name = p->bytes + p->bytes_used;
		p->in_field = 1;
	}
	h = cur_hdr(p);
	if (hdr_bytes(p, len))
		return HPE_USER;
	if (arena_put(p, at, len, true))
		return fail(p, big_status(p), WP_CTR_HTTP1_HEADERS_TOO_LARGE);
	h->name_len += (uint16_t)len;
	p->name_end = (const uint8_t *)at + len;
	return 0;
}

struct known {
	const char *name;
	uint8_t len;
	uint8_t id;
	uint8_t hop;
};

static const struct known known_hdrs[] = {
        {"connection", 10, WP_HDR_CONNECTION, 1},
        {"content-length", 14, WP_HDR_CONTENT_LENGTH, 0},
        {"cookie", 6, WP_HDR_COOKIE, 0},
        {"expect", 6, WP_HDR_EXPECT, 0},
        {"host", 4, WP_HDR_HOST, 0},
        {"keep-alive", 10, WP_HDR_KEEP_ALIVE, 1},
        {"proxy-connection", 16, WP_HDR_PROXY_CONNECTION, 1},
        {"te", 2, WP_HDR_TE, 1},
        {"trailer", 7, WP_HDR_TRAILER, 1},
        {"transfer-encoding", 17, WP_HDR_TRANSFER_ENCODING, 1},
        {"upgrade", 7, WP_HDR_UPGRADE, 1},
        {"x-request-id", 12, WP_HDR_X_REQUEST_ID, 0},
};

static void classify(struct wp_http_hdr *h)
{
	for (size_t i = 0; i < WP_ARRAY_SIZE(known_hdrs); i++) {
		if (h->name_len == known_hdrs[i].len &&
		    memcmp(h->name, known_hdrs[i].name, h->name_len) == 0) {
			h->id = known_hdrs[i].id;
			h->flags = known_hdrs[i].hop ? WP_HDR_F_HOP : 0;
			return;
		}
	}
}

static int on_header_field_complete(llhttp_t *ll)
{
	struct wp_http1_parser *p = P(ll);
	struct wp_http_hdr *h = cur_hdr(p);

	if (p->in_field != 1 || h->name_len == 0)
		return fail(p, bad_status(p), WP_CTR_HTTP1_HEADER_NAME_INVALID);
	for (uint16_t i = 0; i < h->name_len; i++)
		if (!tchar[(uint8_t)h->name[i]])
			return fail(p, bad_status(p), WP_CTR_HTTP1_HEADER_NAME_INVALID);
	classify(h);
	h->value = p->bytes + p->bytes_used;
	h->value_len = 0;
	p->in_field = 2;
	p->fold_lf = 0;
	return 0;
}

/* Whether a line feed lies between the end of the current header's name (or
 * the start of this feed, if the name ended in an earlier one) and <end>. */
static bool gap_has_lf(const struct wp_http1_parser *p, const uint8_t *end)
{
	const uint8_t *s = p->name_end ? p->name_end : p->feed;
	return s < end && memchr(s, '\n', (size_t)(end - s)) != NULL;
}

static int on_header_value(llhttp_t *ll, const char *at, size_t len)
{
	struct wp_http1_parser *p = P(ll);
	struct wp_http_hdr *h = cur_hdr(p);
	uint8_t prev;

	if (len == 0)
		return 0;
	/* llhttp's default build accepts obs-fold; refuse it. Between the name
	 * and the first value byte there may only be ':' and blanks; a later
	 * piece of a value follows value bytes, never a line break. */
	if (h->value_len == 0 && p->in_field == 2) {
		if (p->fold_lf || gap_has_lf(p, (const uint8_t *)at))
			return fail(p, bad_status(p), WP_CTR_HTTP1_OBS_FOLD);
	} else {
		prev = (const uint8_t *)at > p->feed ? (uint8_t)at[-1] : p->last_byte;
		if (prev == '\n' || prev == '\r')
			return fail(p, bad_status(p), WP_CTR_HTTP1_OBS_FOLD);
	}
	if (p->in_field != 2)
		return fail(p, bad_status(p), WP_CTR_HTTP1_MALFORMED);
	if (hdr_bytes(p, len))
		return HPE_USER;
	if (arena_put(p, at, len, false))
		return fail(p, big_status(p), WP_CTR_HTTP1_HEADERS_TOO_LARGE);
	h->value_len += (uint32_t)len;
	return 0;
}

/* A field value has no control character but HTAB (RFC 9110 5.5: obs-text
 * 0x80-0xff passes). Eight bytes at a time: a word with no byte below 0x20
 * and none equal to 0x7f is fine as a whole (the classic "has a byte less
 * than n" and "has a zero byte" tests, exact as booleans); a word that
 * fails them, a tab in it say, is looked at byte by byte. */
static bool value_ok(const uint8_t *v, size_t n)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t x, del;

		memcpy(&x, v + i, 8);
		del = x ^ (0x7f * ones);
		if (!(((x - 0x20 * ones) & ~x & highs) | ((del - ones) & ~del & highs)))
			continue;
		for (size_t k = i; k < i + 8; k++)
			if ((v[k] < 0x20 && v[k] != '\t') || v[k] == 0x7f)
				return false;
	}
	for (; i < n; i++)
		if ((v[i] < 0x20 && v[i] != '\t') || v[i] == 0x7f)
			return false;
	return true;
}

static int on_header_value_complete(llhttp_t *ll)
{
	struct wp_http1_parser *p = P(ll);
	struct wp_http_hdr *h = cur_hdr(p);

	if (p->in_field != 2)
		return fail(p, bad_status(p), WP_CTR_HTTP1_MALFORMED);
	while (h->value_len > 0 &&
	       (h->value[h->value_len - 1] == ' ' || h->value[h->value_len - 1] == '\t'))
		h->value_len--;
	if (!value_ok((const uint8_t *)h->value, h->value_len))
		return fail(p, bad_status(p), WP_CTR_HTTP1_HEADER_VALUE_INVALID);
	if (p->trailers)
		p->msg.n_trailers++;
	else
		p->msg.n_hdrs++;
	p->in_field = 0;
	return 0;
}

static bool ieq(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (lower(a[i]) != b[i])
			return false;
	return true;
}

/* Calls fn(token) for each comma-separated token of <v> (OWS trimmed). */
#define FOR_EACH_TOKEN(v, vlen, tok, tlen, body)                                                   \
	do {                                                                                       \
		size_t i_ = 0;                                                                     \
		while (i_ < (vlen)) {                                                              \
			while (i_ < (vlen) &&                                                      \
			       ((v)[i_] == ' ' || (v)[i_] == '\t' || (v)[i_] == ','))              \
				i_++;                                                              \
			size_t s_ = i_;                                                            \
			while (i_ < (vlen) && (v)[i_] != ',')                                      \
				i_++;                                                              \
			size_t e_ = i_;                                                            \
			while (e_ > s_ && ((v)[e_ - 1] == ' ' || (v)[e_ - 1] == '\t'))             \
				e_--;                                                              \
			if (e_ > s_) {                                                             \
				const char *tok = (v) + s_;                                        \
				size_t tlen = e_ - s_;                                             \
				body;                                                              \
			}                                                                          \
		}                                                                                  \
	} while (0)

/* Marks every header named by a Connection token as hop-by-hop, except the
 * ones the next hop needs to frame and route the message. */
static void mark_connection_tokens(struct wp_http1_msg *m)
{
	for (uint16_t c = 0; c < m->n_hdrs; c++) {
		const struct wp_http_hdr *ch = &m->hdrs[c];
		if (ch->id != WP_HDR_CONNECTION)
			continue;
		FOR_EACH_TOKEN(ch->value, ch->value_len, tok, tlen, {
			for (uint16_t j = 0; j < m->n_hdrs; j++) {
				struct wp_http_hdr *h = &m->hdrs[j];
				/* "Connection: content-length" must not strip the
				 * framing (the body would become a smuggled
				 * request), nor "Connection: host" the authority */
				if (h->id == WP_HDR_CONTENT_LENGTH || h->id == WP_HDR_HOST)
					continue;
				if (ieq(tok, tlen, h->name, h->name_len))
					h->flags |= WP_HDR_F_HOP;
			}
		});
	}
}

/* RFC 9112 3.2.2: the authority of an absolute-form target replaces Host
 * (added when the request had none, HTTP/1.0); the target goes on in
 * origin-form ("/" when it had no path). Rewritten in place in the arena:
 * the authority moves one byte left into the "//" when a '/' must be put
 * before a query. Other forms: origin-form, "*" and CONNECT's authority-form
 * are left alone; any other scheme is refused (400). */
static int absolute_form(struct wp_http1_parser *p)
{
	struct wp_http1_msg *m = &p->msg;
	char *t = (char *)m->target;
	uint32_t len = m->target_len, a, e;
	struct wp_http_hdr *host = NULL;

	if (m->method == HTTP_CONNECT || len == 0 || t[0] == '/' || (len == 1 && t[0] == '*'))
		return 0;
	if (len >= 7 && ieq(t, 7, "http://", 7))
		a = 7;
	else if (len >= 8 && ieq(t, 8, "https://", 8))
		a = 8;
	else
		return fail(p, 400, WP_CTR_HTTP1_TARGET_INVALID);
	for (e = a; e < len && t[e] != '/' && t[e] != '?' && t[e] != '#'; e++)
		if (t[e] == '@') /* userinfo (RFC 9110 4.2.4): an error */
			return fail(p, 400, WP_CTR_HTTP1_TARGET_INVALID);
	if (e == a)
		return fail(p, 400, WP_CTR_HTTP1_TARGET_INVALID);
	for (uint16_t i = 0; i < m->n_hdrs; i++)
		if (m->hdrs[i].id == WP_HDR_HOST)
			host = &m->hdrs[i];
	if (!host) {
		if (m->n_hdrs >= p->lim.max_headers)
			return fail(p, 431, WP_CTR_HTTP1_TOO_MANY_HEADERS);
		host = &m->hdrs[m->n_hdrs++];
		p->n_lines++;
		memset(host, 0, sizeof(*host));
		host->name = "host";
		host->name_len = 4;
		host->id = WP_HDR_HOST;
	}
	host->value_len = e - a;
	if (e < len && t[e] == '/') {
		host->value = t + a;
	} else {
		memmove(t + a - 1, t + a, e - a);
		host->value = t + a - 1;
		t[--e] = '/';
	}
	m->target = t + e;
	m->target_len = len - e;
	wp_ctr_inc(p->ctr, WP_CTR_HTTP1_ABSOLUTE_FORM);
	return 0;
}

static int request_head(struct wp_http1_parser *p)
{
	struct wp_http1_msg *m = &p->msg;
	unsigned hosts = 0;

	for (uint16_t i = 0; i < m->n_hdrs; i++) {
		const struct wp_http_hdr *h = &m->hdrs[i];
		switch (h->id) {
		case WP_HDR_HOST:
			hosts++;
			break;
		case WP_HDR_EXPECT:
			if (m->http_minor >= 1 && ieq(h->value, h->value_len, "100-continue", 12))
				m->flags |= WP_HTTP1_F_EXPECT_CONTINUE;
			break;
		case WP_HDR_TE:
			FOR_EACH_TOKEN(h->value, h->value_len, tok, tlen, {
				if (ieq(tok, tlen, "trailers", 8))
					m->flags |= WP_HTTP1_F_TE_TRAILERS;
			});
			break;
		default:
			break;
		}
	}
	if (hosts > 1)
		return fail(p, 400, WP_CTR_HTTP1_HOST_DUPLICATE);
	if (hosts == 0 && m->http_major == 1 && m->http_minor >= 1)
		return fail(p, 400, WP_CTR_HTTP1_HOST_MISSING);
	if (m->http_major != 1)
		return fail(p, 400, WP_CTR_HTTP1_VERSION_INVALID);
	if (m->method == HTTP_CONNECT)
		m->flags |= WP_HTTP1_F_CONNECT;
	if (absolute_form(p))
		return HPE_USER;
	wp_ctr_inc(p->ctr, WP_CTR_HTTP1_REQ_HEAD);
	return 0;
}

static int response_head(struct wp_http1_parser *p)
{
	struct wp_http1_msg *m = &p->msg;
	llhttp_t *ll = &p->ll;

	m->status = (uint16_t)ll->status_code;
	if (m->http_major != 1)
		return fail(p, 502, WP_CTR_HTTP1_VERSION_INVALID);
	/* no body whatever Content-Length or Transfer-Encoding say (RFC 9110
	 * 6.4.1); llhttp would read one after a 1xx, 204 or 304 that has them */
	if (m->method == HTTP_HEAD || m->status / 100 == 1 || m->status == 204 ||
	    m->status == 304) {
		m->flags |= WP_HTTP1_F_NO_BODY;
		ll->flags |= F_SKIPBODY;
	}
	if (m->status == 101 || (m->method == HTTP_CONNECT && m->status / 100 == 2)) {
		/* the rest of the connection is another protocol */
		ll->upgrade = 1;
		ll->flags |= F_SKIPBODY;
		m->flags |= WP_HTTP1_F_NO_BODY;
	}
	wp_ctr_inc(p->ctr, WP_CTR_HTTP1_RESP_HEAD);
	return 0;
}

static int on_headers_complete(llhttp_t *ll)
{
	struct wp_http1_parser *p = P(ll);
	struct wp_http1_msg *m = &p->msg;
	int rc;

	if (p->in_field != 0)
		return fail(p, bad_status(p), WP_CTR_HTTP1_MALFORMED);
	m->http_major = ll->http_major;
	m->http_minor = ll->http_minor;
	mark_connection_tokens(m);
	if (ll->type == HTTP_REQUEST) {
		m->method = ll->method;
		rc = request_head(p);
	} else {
		rc = response_head(p);
	}
	if (rc)
		return -1;
	if (ll->flags & F_CHUNKED)
		m->flags |= WP_HTTP1_F_CHUNKED;
	else if (ll->flags & F_CONTENT_LENGTH) {
		m->flags |= WP_HTTP1_F_CONTENT_LENGTH;
		m->content_length = ll->content_length;
	}
	if (ll->upgrade)
		m->flags |= WP_HTTP1_F_UPGRADE;
	if (llhttp_message_needs_eof(ll))
		m->flags |= WP_HTTP1_F_BODY_UNTIL_EOF;
	if (llhttp_should_keep_alive(ll))
		m->flags |= WP_HTTP1_F_KEEP_ALIVE;
	m->trailers = p->hdr_mem + m->n_hdrs;
	p->trailers = 1;
	p->phase = WP_HTTP1_PH_BODY;
	p->pending = WP_HTTP1_EV_HEAD;
	return HPE_PAUSED;
}

static int on_body(llhttp_t *ll, const char *at, size_t len)
{
	struct wp_http1_parser *p = P(ll);

	if (len == 0)
		return 0;
	p->body = (const uint8_t *)at;
	p->body_len = len;
	p->pending = WP_HTTP1_EV_BODY;
	return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *ll)
{
	struct wp_http1_parser *p = P(ll);

	if (p->in_field != 0)
		return fail(p, bad_status(p), WP_CTR_HTTP1_MALFORMED);
	p->msg.trailers = p->hdr_mem + p->msg.n_hdrs;
	p->phase = WP_HTTP1_PH_IDLE;
	p->pending = WP_HTTP1_EV_DONE;
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
        .on_message_begin = on_message_begin,
        .on_url = on_url,
        .on_status = on_status,
        .on_method = on_method,
        .on_version = on_version,
        .on_header_field = on_header_field,
        .on_header_value = on_header_value,
        .on_headers_complete = on_headers_complete,
        .on_body = on_body,
        .on_message_complete = on_message_complete,
        .on_header_field_complete = on_header_field_complete,
        .on_header_value_complete = on_header_value_complete,
};

size_t wp_http1_arena_size(const struct wp_http1_limits *lim)
{
	size_t hdrs = (size_t)lim->max_headers * sizeof(struct wp_http_hdr);
	return hdrs + lim->max_line + lim->max_header_bytes;
}

int wp_http1_parser_init(struct wp_http1_parser *p, enum llhttp_type type,
                         const struct wp_http1_limits *lim, void *arena, size_t arena_size,
                         uint64_t *ctr)
{
	if (!p || !lim || !arena || !ctr || lim->max_headers == 0 || lim->max_line == 0 ||
	    (type != HTTP_REQUEST && type != HTTP_RESPONSE) ||
	    arena_size < wp_http1_arena_size(lim) || ((uintptr_t)arena % sizeof(void *)) != 0 ||
	    (uint64_t)lim->max_line + lim->max_header_bytes > UINT32_MAX / 2)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	llhttp_init(&p->ll, type, &settings);
	p->lim = *lim;
	p->ctr = ctr;
	p->hdr_mem = arena;
	p->bytes = (char *)arena + (size_t)lim->max_headers * sizeof(struct wp_http_hdr);
	p->bytes_cap = lim->max_line + lim->max_header_bytes;
	p->msg.hdrs = p->hdr_mem;
	p->msg.trailers = p->hdr_mem;
	return 0;
}

void wp_http1_parser_expect_response(struct wp_http1_parser *p, uint8_t method)
{
	p->msg.method = method;
}

/* Maps an llhttp error (not one of ours) to a counter. */
static enum wp_ctr map_error(const struct wp_http1_parser *p, llhttp_errno_t e)
{
	switch (e) {
	case HPE_UNEXPECTED_CONTENT_LENGTH:
		return (p->ll.flags & (F_TRANSFER_ENCODING | F_CHUNKED))
		               ? WP_CTR_HTTP1_CL_WITH_TE
		               : WP_CTR_HTTP1_CL_DUPLICATE;
	case HPE_INVALID_CONTENT_LENGTH:
		return WP_CTR_HTTP1_CL_INVALID;
	case HPE_INVALID_TRANSFER_ENCODING:
		return WP_CTR_HTTP1_TE_INVALID;
	case HPE_INVALID_CHUNK_SIZE:
		return WP_CTR_HTTP1_CHUNK_INVALID;
	case HPE_INVALID_HEADER_TOKEN:
		/* llhttp says "Invalid header value char" or "... field char/token" */
		return strstr(llhttp_get_error_reason(&p->ll), "value")
		               ? WP_CTR_HTTP1_HEADER_VALUE_INVALID
		               : WP_CTR_HTTP1_HEADER_NAME_INVALID;
	case HPE_INVALID_METHOD:
		return WP_CTR_HTTP1_METHOD_INVALID;
	case HPE_INVALID_URL:
		return WP_CTR_HTTP1_TARGET_INVALID;
	case HPE_INVALID_VERSION:
	case HPE_PAUSED_H2_UPGRADE:
		return WP_CTR_HTTP1_VERSION_INVALID;
	case HPE_INVALID_STATUS:
		return WP_CTR_HTTP1_STATUS_INVALID;
	case HPE_CR_EXPECTED:
	case HPE_LF_EXPECTED:
		return p->phase == WP_HTTP1_PH_BODY ? WP_CTR_HTTP1_CHUNK_INVALID
		                                    : WP_CTR_HTTP1_LINE_ENDING_INVALID;
	case HPE_STRICT:
		return p->phase == WP_HTTP1_PH_BODY ? WP_CTR_HTTP1_CHUNK_INVALID
		                                    : WP_CTR_HTTP1_MALFORMED;
	case HPE_CLOSED_CONNECTION:
		return WP_CTR_HTTP1_DATA_AFTER_CLOSE;
	default:
		return WP_CTR_HTTP1_MALFORMED;
	}
}

/* The bytes llhttp consumed in [s, e) were no body bytes (head, chunk
 * framing, trailers); <body> says a body slice follows them. False when a CR
 * is not followed by LF or a LF not preceded by CR (see the top of the file). */
static bool check_crlf(struct wp_http1_parser *p, const uint8_t *s, const uint8_t *e, bool body)
{
	uint8_t prev = p->crlf_prev;

	if (s < e) {
		/* each LF after a CR (the one before s: prev), each CR before an
		 * LF (the last byte's: the next feed's first); memchr leaps over
		 * the bytes between line ends */
		for (const uint8_t *q = s; (q = memchr(q, '\n', (size_t)(e - q))) != NULL; q++)
			if ((q > s ? q[-1] : prev) != '\r')
				return false;
		if (prev == '\r' && s[0] != '\n')
			return false;
		for (const uint8_t *q = s; (q = memchr(q, '\r', (size_t)(e - q))) != NULL; q++)
			if (q + 1 < e && q[1] != '\n')
				return false;
		prev = e[-1];
	}
	if (body && prev == '\r')
		return false;
	p->crlf_prev = body ? 0 : prev;
	return true;
}

static void set_error(struct wp_http1_parser *p, struct wp_http1_ev *ev)
{
	p->phase = WP_HTTP1_PH_DEAD;
	ev->type = WP_HTTP1_EV_ERROR;
	ev->status = p->err_status;
	ev->ctr = p->err_ctr;
}

size_t wp_http1_parse(struct wp_http1_parser *p, const uint8_t *data, size_t len,
                      struct wp_http1_ev *ev)
{
	llhttp_errno_t e;
	size_t used;

	memset(ev, 0, sizeof(*ev));
	if (len == 0)
		data = (const uint8_t *)"";
	if (WP_UNLIKELY(p->phase == WP_HTTP1_PH_DEAD)) {
		set_error(p, ev);
		return len;
	}
	if (WP_UNLIKELY(p->phase == WP_HTTP1_PH_TUNNEL)) {
		ev->type = WP_HTTP1_EV_UPGRADE;
		return 0;
	}
	if (len > 0 && p->phase == WP_HTTP1_PH_IDLE && p->ll.initial_message_completed &&
	    !(p->msg.flags & (WP_HTTP1_F_KEEP_ALIVE | WP_HTTP1_F_UPGRADE))) {
		/* the last message closes the connection: nothing more is read.
		 * Not after an upgrade (HTTP/1.0 asks for one without keep-alive):
		 * llhttp reports it next, at the same offset, whether or not more
		 * bytes came in this feed */
		fail(p, bad_status(p), WP_CTR_HTTP1_DATA_AFTER_CLOSE);
		set_error(p, ev);
		return len;
	}
	llhttp_resume(&p->ll);
	p->feed = data;
	p->name_end = NULL;
	p->pending = WP_HTTP1_EV_NONE;
	e = llhttp_execute(&p->ll, (const char *)data, len);
	if (e == HPE_OK)
		used = len;
	else
		used = (size_t)((const uint8_t *)llhttp_get_error_pos(&p->ll) - data);
	WP_ASSERT(used <= len);
	/* a value not started yet: remember a line feed already seen after the
	 * name (the fold's value may start in a later feed) */
	if (p->in_field == 2 && cur_hdr(p)->value_len == 0 && gap_has_lf(p, data + used))
		p->fold_lf = 1;
	if (used > 0)
		p->last_byte = data[used - 1];
	if (e == HPE_OK || e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
		bool body = e == HPE_PAUSED && p->pending == WP_HTTP1_EV_BODY;

		if (!check_crlf(p, data, body ? p->body : data + used, body)) {
			fail(p, bad_status(p), WP_CTR_HTTP1_LINE_ENDING_INVALID);
			set_error(p, ev);
			return used;
		}
	}

	switch (e) {
	case HPE_OK:
		return used;
	case HPE_PAUSED:
		ev->type = p->pending;
		if (p->pending == WP_HTTP1_EV_BODY) {
			ev->data = p->body;
			ev->len = p->body_len;
		} else {
			ev->msg = &p->msg;
		}
		return used;
	case HPE_PAUSED_UPGRADE:
		p->phase = WP_HTTP1_PH_TUNNEL;
		wp_ctr_inc(p->ctr, WP_CTR_HTTP1_UPGRADE);
		ev->type = WP_HTTP1_EV_UPGRADE;
		return used;
	default:
		if (!p->err_ctr_set)
			fail(p, bad_status(p), map_error(p, e));
		set_error(p, ev);
		return used;
	}
}

void wp_http1_parse_eof(struct wp_http1_parser *p, struct wp_http1_ev *ev)
{
	llhttp_errno_t e;

	memset(ev, 0, sizeof(*ev));
	if (p->phase == WP_HTTP1_PH_DEAD) {
		set_error(p, ev);
		return;
	}
	if (p->phase == WP_HTTP1_PH_TUNNEL || p->phase == WP_HTTP1_PH_IDLE)
		return;
	llhttp_resume(&p->ll);
	p->pending = WP_HTTP1_EV_NONE;
	e = llhttp_finish(&p->ll);
	if (e == HPE_PAUSED && p->pending == WP_HTTP1_EV_DONE) {
		ev->type = WP_HTTP1_EV_DONE;
		ev->msg = &p->msg;
		return;
	}
	if (e == HPE_OK && p->phase == WP_HTTP1_PH_IDLE)
		return;
	fail(p, bad_status(p), WP_CTR_HTTP1_TRUNCATED);
	set_error(p, ev);
}

const struct wp_http_hdr *wp_http1_find(const struct wp_http1_msg *msg, const char *name,
                                        size_t len)
{
	for (uint16_t i = 0; i < msg->n_hdrs; i++) {
		const struct wp_http_hdr *h = &msg->hdrs[i];
		if (h->name_len == len && memcmp(h->name, name, len) == 0)
			return h;
	}
	return NULL;
}
