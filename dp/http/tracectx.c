/*
 * Trace context headers (see tracectx.h): strict parsers for traceparent
 * (W3C Trace Context level 1), b3 and x-b3-*, and the writer of the
 * upstream request's headers.
 *
 * Strictness, as the specifications ask: lower-case hex only, exact
 * lengths, no all-zero trace or span id, traceparent version ff refused and
 * a version above 00 read by its first four fields (it may carry more
 * after a '-'); a header repeated is malformed. B3 accepts 16 or 32 hex
 * digits of trace id, sampling "0", "1" or "d" (debug: sampled); x-b3-sampled
 * also "true"/"false" as Zipkin's instrumentations write it, x-b3-flags "1"
 * (debug) samples.
 */
#include <string.h>
#include <strings.h>

#include "tracectx.h"

void wp_tc_init(struct wp_tracectx *t)
{
	memset(t, 0, sizeof(*t));
	t->sampled = -1;
}

static void keep(struct wp_tc_slice *s, const char *v, size_t len)
{
	s->p = v;
	s->len = (uint32_t)len;
	if (s->n < 255)
		s->n++;
}

void wp_tc_header(struct wp_tracectx *t, const char *name, size_t nlen, const char *val,
                  size_t vlen)
{
	if (nlen == 11 && !strncasecmp(name, "traceparent", 11)) {
		keep(&t->tp, val, vlen);
		t->present |= WP_TC_W3C;
	} else if (nlen == 2 && !strncasecmp(name, "b3", 2)) {
		keep(&t->b3, val, vlen);
		t->present |= WP_TC_B3;
	} else if (nlen >= 10 && nlen <= 17 && !strncasecmp(name, "x-b3-", 5)) {
		struct wp_tc_slice *s = NULL;

		if (nlen == 12 && !strncasecmp(name + 5, "traceid", 7))
			s = &t->tid;
		else if (nlen == 11 && !strncasecmp(name + 5, "spanid", 6))
			s = &t->sid;
		else if (nlen == 12 && !strncasecmp(name + 5, "sampled", 7))
			s = &t->smp;
		else if (nlen == 10 && !strncasecmp(name + 5, "flags", 5))
			s = &t->flg;
		else if (nlen == 17 && !strncasecmp(name + 5, "parentspanid", 12))
			t->present |= WP_TC_B3M; /* rewritten, never read */
		if (s) {
			keep(s, val, vlen);
			t->present |= WP_TC_B3M;
		}
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* <2n> lower-case hex digits into <n> bytes; false if any is not one, or
 * when all are zero. */
static bool unhex(const char *p, size_t n, uint8_t *out)
{
	uint8_t any = 0;

	for (size_t i = 0; i < n; i++) {
		int hi = hexval(p[2 * i]), lo = hexval(p[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
		any |= out[i];
	}
	return any != 0;
}

/* A B3 trace id of 16 or 32 hex digits into t->trace_id. */
static bool b3_trace_id(struct wp_tracectx *t, const char *p, size_t n)
{
	memset(t->trace_id, 0, sizeof(t->trace_id));
	if (n == 32)
		return unhex(p, 16, t->trace_id);
	if (n == 16) {
		t->b3_64 = true;
		return unhex(p, 8, t->trace_id + 8);
	}
	return false;
}

/* "vv-<32>-<16>-<2>[-...]" */
static bool parse_traceparent(struct wp_tracectx *t, const char *p, size_t n)
{
	uint8_t ver, flags;

	if (n < 55 || p[2] != '-' || p[35] != '-' || p[52] != '-')
		return false;
	if (hexval(p[0]) < 0 || hexval(p[1]) < 0 || hexval(p[53]) < 0 || hexval(p[54]) < 0)
		return false;
	ver = (uint8_t)(hexval(p[0]) << 4 | hexval(p[1]));
	flags = (uint8_t)(hexval(p[53]) << 4 | hexval(p[54]));
	if (ver == 0xff || (ver == 0 && n != 55) || (n > 55 && p[55] != '-'))
		return false;
	if (!unhex(p + 3, 16, t->trace_id) || !unhex(p + 36, 8, t->span_id))
		return false;
	t->sampled = flags & 1;
	return true;
}

static int b3_sampling(const char *p, size_t n)
{
	if (n == 1 && (p[0] == '1' || p[0] == 'd'))
		return 1;
	if (n == 1 && p[0] == '0')
		return 0;
	return -2;
}

/* "<tid>-<sid>[-<s>[-<pid>]]", or "<s>" alone (a decision, no context). */
static bool parse_b3(struct wp_tracectx *t, const char *p, size_t n)
{
	const char *d1 = memchr(p, '-', n), *d2, *d3;
	uint8_t pid[8];
	int s;

	if (!d1) {
		s = b3_sampling(p, n);
		if (s < -1)
			return false;
		t->sampled = (int8_t)s;
		return true;
	}
	if (!b3_trace_id(t, p, (size_t)(d1 - p)))
		return false;
	d2 = memchr(d1 + 1, '-', n - (size_t)(d1 + 1 - p));
	if ((size_t)((d2 ? d2 : p + n) - (d1 + 1)) != 16 || !unhex(d1 + 1, 8, t->span_id))
		return false;
	if (!d2)
		return true;
	d3 = memchr(d2 + 1, '-', n - (size_t)(d2 + 1 - p));
	s = b3_sampling(d2 + 1, (size_t)((d3 ? d3 : p + n) - (d2 + 1)));
	if (s < 0)
		return false;
	if (d3 && ((size_t)(p + n - (d3 + 1)) != 16 || !unhex(d3 + 1, 8, pid)))
		return false;
	t->sampled = (int8_t)s;
	return true;
}

static int b3m_sampled(const struct wp_tc_slice *s)
{
	if (s->len == 1 && s->p[0] != 'd') /* debug is x-b3-flags' */
		return b3_sampling(s->p, 1);
	if (s->len == 4 && !memcmp(s->p, "true", 4))
		return 1;
	if (s->len == 5 && !memcmp(s->p, "false", 5))
		return 0;
	return -2;
}

static bool parse_b3m(struct wp_tracectx *t, unsigned *bad)
{
	bool ok = true;
	int s = -1;

	if (t->smp.n) {
		s = t->smp.n == 1 ? b3m_sampled(&t->smp) : -2;
		if (s < -1) {
			(*bad)++;
			s = -1;
		}
	}
	if (t->flg.n) {
		if (t->flg.n == 1 && t->flg.len == 1 && t->flg.p[0] == '1')
			s = 1; /* debug */
		else if (!(t->flg.n == 1 && t->flg.len == 1 && t->flg.p[0] == '0'))
			(*bad)++;
	}
	if (t->tid.n || t->sid.n) {
		ok = t->tid.n == 1 && t->sid.n == 1 && b3_trace_id(t, t->tid.p, t->tid.len) &&
		     t->sid.len == 16 && unhex(t->sid.p, 8, t->span_id);
		if (!ok) {
			(*bad)++;
			t->b3_64 = false;
		}
	}
	if (s >= 0 && t->sampled < 0)
		t->sampled = (int8_t)s;
	return ok && t->tid.n;
}

unsigned wp_tc_finish(struct wp_tracectx *t)
{
	unsigned bad = 0;

	if (t->tp.n) {
		if (t->tp.n == 1 && parse_traceparent(t, t->tp.p, t->tp.len))
			t->has_ctx = true;
		else
			bad++;
	}
	if (t->b3.n && !t->has_ctx) {
		struct wp_tracectx c = *t;

		if (t->b3.n == 1 && parse_b3(&c, t->b3.p, t->b3.len)) {
			*t = c;
			t->has_ctx = memchr(t->b3.p, '-', t->b3.len) != NULL;
		} else {
			bad++;
		}
	} else if (t->b3.n && t->b3.n > 1) {
		bad++;
	}
	if ((t->tid.n || t->sid.n || t->smp.n || t->flg.n) && !t->has_ctx) {
		struct wp_tracectx c = *t;

		if (parse_b3m(&c, &bad)) {
			*t = c;
			t->has_ctx = true;
		} else if (c.sampled >= 0 && t->sampled < 0) {
			t->sampled = c.sampled; /* a decision without a context */
		}
	}
	if (!t->has_ctx)
		t->b3_64 = false;
	t->invalid = (uint8_t)(bad < 255 ? bad : 255);
	return bad;
}

void wp_tc_hex(const uint8_t *b, size_t n, char *out)
{
	static const char hx[16] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hx[b[i] >> 4];
		out[2 * i + 1] = hx[b[i] & 15];
	}
}

/* Appends header <name> with the next <len> bytes of o->buf as value. */
static void add(struct wp_tc_out *o, const char *name, char *v, size_t len)
{
	struct wp_http_hdr *h = &o->set[o->mods.n_set++];

	memset(h, 0, sizeof(*h));
	h->name = name;
	h->name_len = (uint16_t)strlen(name);
	h->value = v;
	h->value_len = (uint32_t)len;
}

const struct wp_http_hdr_mods *wp_tc_render(uint8_t fmt, const uint8_t trace_id[16],
                                            const uint8_t span_id[8], const uint8_t *parent,
                                            bool b3_64, bool sampled, struct wp_tc_out *o)
{
	const uint8_t *tid = b3_64 ? trace_id + 8 : trace_id;
	size_t tlen = b3_64 ? 16 : 32;
	char *p = o->buf;

	memset(&o->mods, 0, sizeof(o->mods));
	o->mods.set = o->set;
	o->mods.remove = o->remove;
	if (fmt & WP_TC_W3C) { /* 55 */
		char *v = p;

		memcpy(p, "00-", 3);
		wp_tc_hex(trace_id, 16, p + 3);
		p[35] = '-';
		wp_tc_hex(span_id, 8, p + 36);
		memcpy(p + 52, sampled ? "-01" : "-00", 3);
		p += 55;
		add(o, "traceparent", v, 55);
	}
	if (fmt & WP_TC_B3) { /* at most 32 + 1 + 16 + 2 + 17 = 68 */
		char *v = p;

		wp_tc_hex(tid, tlen / 2, p);
		p += tlen;
		*p++ = '-';
		wp_tc_hex(span_id, 8, p);
		p += 16;
		*p++ = '-';
		*p++ = sampled ? '1' : '0';
		if (parent) {
			*p++ = '-';
			wp_tc_hex(parent, 8, p);
			p += 16;
		}
		add(o, "b3", v, (size_t)(p - v));
	}
	if (fmt & WP_TC_B3M) { /* 32 + 16 + 16 + 1 */
		wp_tc_hex(tid, tlen / 2, p);
		add(o, "x-b3-traceid", p, tlen);
		p += tlen;
		wp_tc_hex(span_id, 8, p);
		add(o, "x-b3-spanid", p, 16);
		p += 16;
		if (parent) {
			wp_tc_hex(parent, 8, p);
			add(o, "x-b3-parentspanid", p, 16);
			p += 16;
		} else {
			o->remove[0] =
			        (struct wp_http_hdr){.name = "x-b3-parentspanid", .name_len = 17};
			o->mods.n_remove = 1;
		}
		*p = sampled ? '1' : '0';
		add(o, "x-b3-sampled", p, 1);
		p++;
	}
	return &o->mods;
}
