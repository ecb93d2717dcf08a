/*
 * HTTP/1.1 serialisers for the proxy: the request head sent upstream, the
 * response head sent back to the client, chunk framing, and minimal error
 * responses. Everything writes into a caller-provided buffer and either
 * fits or returns -ENOSPC; nothing allocates.
 *
 * Hop-by-hop headers (Connection and every header it names, Keep-Alive,
 * Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade) were flagged at
 * parse time; here they are dropped and the few that matter are rewritten
 * for the next hop: the body framing, `te: trailers`, and
 * `connection: upgrade` + Upgrade when the connection is being upgraded.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http1.h"
#include "wp/counters.h"
#include "wp/http_reason.h"

struct out {
	char *buf;
	size_t cap;
	size_t len;
	bool full;
};

static inline void put(struct out *o, const char *s, size_t n)
{
	if (WP_UNLIKELY(n > o->cap - o->len)) {
		o->full = true;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

#define PUT_LIT(o, s) put((o), (s), sizeof(s) - 1)

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, tmp + sizeof(tmp) - n, n);
}

static void put_hdr(struct out *o, const char *name, size_t nlen, const char *val, size_t vlen)
{
	put(o, name, nlen);
	PUT_LIT(o, ": ");
	put(o, val, vlen);
	PUT_LIT(o, "\r\n");
}

static bool name_in(const struct wp_http_hdr *list, uint16_t n, const struct wp_http_hdr *h)
{
	for (uint16_t i = 0; i < n; i++)
		if (list[i].name_len == h->name_len &&
		    strncasecmp(list[i].name, h->name, h->name_len) == 0)
			return true;
	return false;
}

#define SHADOW_SUFFIX "-shadow"

/* host: <v> with "-shadow" inserted before the port ("[v6]:port" aware). */
static void put_shadow_host(struct out *o, const char *v, size_t len)
{
	size_t cut = len;

	for (size_t i = len; i-- > 0;) {
		if (v[i] == ':') {
			cut = i;
			break;
		}
		if (v[i] < '0' || v[i] > '9')
			break;
	}
	PUT_LIT(o, "host: ");
	put(o, v, cut);
	PUT_LIT(o, SHADOW_SUFFIX);
	put(o, v + cut, len - cut);
	PUT_LIT(o, "\r\n");
}

/* Writes the end-to-end headers of <m> (hop-by-hop and hook-removed ones
 * dropped), then the trace headers, the hook's set and add headers. <shadow>: the host header
 * is written with the mirror suffix. */
static void put_headers(struct out *o, const struct wp_http1_msg *m,
                        const struct wp_http_hdr_mods *mods, const struct wp_http_hdr_mods *trace,
                        bool shadow)
{
	for (uint16_t i = 0; i < m->n_hdrs; i++) {
		const struct wp_http_hdr *h = &m->hdrs[i];
		if (h->flags & WP_HDR_F_HOP)
			continue;
		if (mods && (name_in(mods->remove, mods->n_remove, h) ||
		             name_in(mods->set, mods->n_set, h)))
			continue;
		if (trace && (name_in(trace->remove, trace->n_remove, h) ||
		              name_in(trace->set, trace->n_set, h)))
			continue;
		if (shadow && h->id == WP_HDR_HOST)
			put_shadow_host(o, h->value, h->value_len);
		else
			put_hdr(o, h->name, h->name_len, h->value, h->value_len);
	}
	for (uint16_t i = 0; trace && i < trace->n_set; i++)
		put_hdr(o, trace->set[i].name, trace->set[i].name_len, trace->set[i].value,
		        trace->set[i].value_len);
	if (!mods)
		return;
	for (uint16_t i = 0; i < mods->n_set; i++)
		put_hdr(o, mods->set[i].name, mods->set[i].name_len, mods->set[i].value,
		        mods->set[i].value_len);
	for (uint16_t i = 0; i < mods->n_add; i++)
		put_hdr(o, mods->add[i].name, mods->add[i].name_len, mods->add[i].value,
		        mods->add[i].value_len);
}

static void put_upgrade(struct out *o, const struct wp_http1_msg *m)
{
	PUT_LIT(o, "connection: upgrade\r\n");
	for (uint16_t i = 0; i < m->n_hdrs; i++)
		if (m->hdrs[i].id == WP_HDR_UPGRADE)
			put_hdr(o, "upgrade", 7, m->hdrs[i].value, m->hdrs[i].value_len);
}

static const char hexd[16] = "0123456789abcdef";

void wp_http_reqid_seed(struct wp_http_reqid_rng *r, uint64_t seed)
{
	/* splitmix64 expands the seed into the four xoshiro words */
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		r->s[i] = z ^ (z >> 31);
	}
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t xoshiro_next(struct wp_http_reqid_rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

void wp_http_reqid_gen(struct wp_http_reqid_rng *r, char out[36])
{
	uint8_t b[16];
	uint64_t a = xoshiro_next(r), c = xoshiro_next(r);

	memcpy(b, &a, 8);
	memcpy(b + 8, &c, 8);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	size_t k = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[k++] = '-';
		out[k++] = hexd[b[i] >> 4];
		out[k++] = hexd[b[i] & 0xf];
	}
}

static int finish(struct out *o)
{
	if (o->full || o->len > INT32_MAX)
		return -ENOSPC;
	return (int)o->len;
}

int wp_http1_write_request_head(const struct wp_http1_msg *req,
                                const struct wp_http1_req_opts *opts, char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap};
	const struct wp_http_hdr_mods *mods = opts ? opts->mods : NULL;
	const char *mname = llhttp_method_name((llhttp_method_t)req->method);
	bool has_id = false, has_host = false;
	bool upgrade = (req->flags & WP_HTTP1_F_UPGRADE) && !(req->flags & WP_HTTP1_F_CONNECT);

	if (opts && opts->reqid_generated)
		*opts->reqid_generated = false;
	put(&o, mname, strlen(mname));
	PUT_LIT(&o, " ");
	put(&o, req->target, req->target_len);
	PUT_LIT(&o, " HTTP/1.1\r\n");
	for (uint16_t i = 0; i < req->n_hdrs; i++) {
		if (req->hdrs[i].id == WP_HDR_X_REQUEST_ID && req->hdrs[i].value_len > 0)
			has_id = true;
		else if (req->hdrs[i].id == WP_HDR_HOST)
			has_host = true;
	}
	if (!has_host && opts && opts->authority) {
		if (opts->shadow)
			put_shadow_host(&o, opts->authority, opts->authority_len);
		else
			put_hdr(&o, "host", 4, opts->authority, opts->authority_len);
	}
	put_headers(&o, req, mods, opts ? opts->trace : NULL, opts && opts->shadow);
	if (!has_id && opts && opts->reqid) {
		put_hdr(&o, "x-request-id", 12, opts->reqid, WP_HTTP1_REQID_LEN);
	} else if (!has_id && opts && opts->rng) {
		char id[WP_HTTP1_REQID_LEN];
		wp_http_reqid_gen(opts->rng, id);
		put_hdr(&o, "x-request-id", 12, id, sizeof(id));
		if (opts->reqid_out)
			memcpy(opts->reqid_out, id, sizeof(id));
		if (opts->reqid_generated)
			*opts->reqid_generated = true;
		if (opts->ctr)
			wp_ctr_inc(opts->ctr, WP_CTR_HTTP1_REQID_GENERATED);
	}
	if (req->flags & WP_HTTP1_F_CHUNKED)
		PUT_LIT(&o, "transfer-encoding: chunked\r\n");
	if (req->flags & WP_HTTP1_F_TE_TRAILERS)
		PUT_LIT(&o, "te: trailers\r\n");
	if (upgrade)
		put_upgrade(&o, req);
	if (opts && opts->shadow)
		PUT_LIT(&o, "connection: close\r\n");
	PUT_LIT(&o, "\r\n");
	return finish(&o);
}

int wp_http1_write_response_head(const struct wp_http1_msg *resp, const struct wp_http1_msg *req,
                                 bool client_keep_alive, const struct wp_http_hdr_mods *mods,
                                 enum wp_http1_framing *framing, char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap};
	bool client10 = req->http_major == 1 && req->http_minor == 0;
	bool interim = resp->status / 100 == 1 && resp->status != 101;
	bool tunnel =
	        resp->status == 101 || (req->method == HTTP_CONNECT && resp->status / 100 == 2);
	enum wp_http1_framing f;

	if (tunnel)
		f = WP_HTTP1_FRAME_TUNNEL;
	else if (resp->flags & WP_HTTP1_F_NO_BODY)
		f = WP_HTTP1_FRAME_NONE;
	else if (resp->flags & WP_HTTP1_F_CONTENT_LENGTH)
		f = WP_HTTP1_FRAME_LENGTH;
	else if (resp->flags & (WP_HTTP1_F_CHUNKED | WP_HTTP1_F_BODY_UNTIL_EOF))
		f = client10 ? WP_HTTP1_FRAME_CLOSE : WP_HTTP1_FRAME_CHUNKED;
	else
		f = WP_HTTP1_FRAME_NONE;

	PUT_LIT(&o, "HTTP/1.1 ");
	put_u64(&o, resp->status);
	PUT_LIT(&o, " ");
	if (resp->reason_len > 0) {
		put(&o, resp->reason, resp->reason_len);
	} else {
		const char *r = wp_http_reason(resp->status);
		put(&o, r, strlen(r));
	}
	PUT_LIT(&o, "\r\n");
	put_headers(&o, resp, mods, NULL, false);
	if (f == WP_HTTP1_FRAME_CHUNKED)
		PUT_LIT(&o, "transfer-encoding: chunked\r\n");
	if (resp->status == 101) {
		put_upgrade(&o, resp);
	} else if (!interim && !tunnel) {
		if (!client_keep_alive || f == WP_HTTP1_FRAME_CLOSE)
			PUT_LIT(&o, "connection: close\r\n");
		else if (client10)
			PUT_LIT(&o, "connection: keep-alive\r\n");
	}
	PUT_LIT(&o, "\r\n");
	*framing = f;
	return finish(&o);
}

int wp_http1_write_chunk_header(size_t len, char *buf, size_t cap)
{
	char tmp[18];
	size_t n = 0;

	if (len == 0)
		return -EINVAL;
	while (len) {
		tmp[sizeof(tmp) - 1 - n++] = hexd[len & 0xf];
		len >>= 4;
	}
	if (n + 2 > cap)
		return -ENOSPC;
	memcpy(buf, tmp + sizeof(tmp) - n, n);
	buf[n] = '\r';
	buf[n + 1] = '\n';
	return (int)(n + 2);
}

int wp_http1_write_last_chunk(const struct wp_http_hdr *trailers, uint16_t n, char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap};

	PUT_LIT(&o, "0\r\n");
	for (uint16_t i = 0; i < n; i++) {
		if (trailers[i].flags & WP_HDR_F_HOP)
			continue;
		put_hdr(&o, trailers[i].name, trailers[i].name_len, trailers[i].value,
		        trailers[i].value_len);
	}
	PUT_LIT(&o, "\r\n");
	return finish(&o);
}

int wp_http1_write_local(uint16_t status, const char *body, size_t body_len, bool keep_alive,
                         bool head_only, char *buf, size_t cap)
{
	struct out o = {.buf = buf, .cap = cap};
	const char *r = wp_http_reason(status);

	if (status < 100 || status > 999)
		return -EINVAL;
	PUT_LIT(&o, "HTTP/1.1 ");
	put_u64(&o, status);
	PUT_LIT(&o, " ");
	put(&o, r, strlen(r));
	PUT_LIT(&o, "\r\ncontent-type: text/plain\r\ncontent-length: ");
	put_u64(&o, body_len);
	if (keep_alive)
		PUT_LIT(&o, "\r\n\r\n");
	else
		PUT_LIT(&o, "\r\nconnection: close\r\n\r\n");
	if (!head_only)
		put(&o, body, body_len);
	return finish(&o);
}

int wp_http1_write_error(uint16_t status, bool head_only, char *buf, size_t cap)
{
	const char *r = wp_http_reason(status);
	char body[64];
	int n = snprintf(body, sizeof(body), "%u %s\n", status, r);

	if (n < 0 || (size_t)n >= sizeof(body))
		return -EINVAL;
	return wp_http1_write_local(status, body, (size_t)n, false, head_only, buf, cap);
}

int wp_http1_write_continue(char *buf, size_t cap)
{
	static const char c[] = "HTTP/1.1 100 Continue\r\n\r\n";
	if (cap < sizeof(c) - 1)
		return -ENOSPC;
	memcpy(buf, c, sizeof(c) - 1);
	return (int)(sizeof(c) - 1);
}

/* Appends <n> headers of <src> to the copy (names and values into bytes[]). */
static int copy_hdrs(struct wp_http_mods_copy *d, const struct wp_http_hdr *src, uint16_t n,
                     uint32_t *used_h, size_t *used_b, const struct wp_http_hdr **out)
{
	*out = &d->hdrs[*used_h];
	if (*used_h + n > WP_HTTP_MODS_COPY_HDRS)
		return -ENOSPC;
	for (uint16_t i = 0; i < n; i++) {
		struct wp_http_hdr *h = &d->hdrs[(*used_h)++];
		size_t vlen = src[i].value ? src[i].value_len : 0;

		if (*used_b + src[i].name_len + vlen > WP_HTTP_MODS_COPY_BYTES)
			return -ENOSPC;
		*h = src[i];
		memcpy(d->bytes + *used_b, src[i].name, src[i].name_len);
		h->name = d->bytes + *used_b;
		*used_b += src[i].name_len;
		if (vlen)
			memcpy(d->bytes + *used_b, src[i].value, vlen);
		h->value = d->bytes + *used_b; /* never NULL in the copy */
		h->value_len = (uint32_t)vlen;
		*used_b += vlen;
	}
	return 0;
}

int wp_http_mods_copy(struct wp_http_mods_copy *dst, const struct wp_http_hdr_mods *src)
{
	uint32_t uh = 0;
	size_t ub = 0;

	if (copy_hdrs(dst, src->set, src->n_set, &uh, &ub, &dst->mods.set) ||
	    copy_hdrs(dst, src->add, src->n_add, &uh, &ub, &dst->mods.add) ||
	    copy_hdrs(dst, src->remove, src->n_remove, &uh, &ub, &dst->mods.remove))
		return -ENOSPC;
	dst->mods.n_set = src->n_set;
	dst->mods.n_add = src->n_add;
	dst->mods.n_remove = src->n_remove;
	return 0;
}
