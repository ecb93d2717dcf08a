/*
 * Path normalization (see path_norm.h): one pass over the path, writing the
 * canonical form; dot segments are resolved against what was already
 * written, so "/a/b/../" backs the output up to the slash before "b". The
 * per-byte classes are those of the Chromium canonicalizer Envoy uses.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "wp/path_norm.h"

enum {
	PASS = 0,  /* copied as is, kept escaped when it came escaped */
	UNRES = 1, /* unreserved: decoded when it came escaped */
	ESC = 2,   /* must be percent-encoded */
	BAD = 3,   /* NUL: invalid */
};

static uint8_t byte_class(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '_' || c == '~')
		return UNRES;
	if (!c)
		return BAD;
	if (c < 0x20 || c >= 0x7f)
		return ESC;
	switch (c) {
	case ' ':
	case '"':
	case '#':
	case '%':
	case '<':
	case '>':
	case '?':
	case '\\':
	case '^':
	case '`':
	case '{':
	case '|':
	case '}':
		return ESC;
	default:
		return PASS; /* ! $ & ' ( ) * + , . / : ; = @ [ ] */
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A valid escape at s[i..i+3) within n: its byte, else -1. */
static int escape_at(const char *s, size_t i, size_t n)
{
	if (i + 3 > n || hexval(s[i + 1]) < 0 || hexval(s[i + 2]) < 0)
		return -1;
	return hexval(s[i + 1]) << 4 | hexval(s[i + 2]);
}

static bool is_slash(char c)
{
	return c == '/' || c == '\\';
}

/* Length of a dot at s[i] ("." or "%2e"), or 0. */
static size_t dot_at(const char *s, size_t i, size_t n)
{
	if (s[i] == '.')
		return 1;
	if (s[i] == '%' && i + 3 <= n && s[i + 1] == '2' && (s[i + 2] == 'e' || s[i + 2] == 'E'))
		return 3;
	return 0;
}

struct out {
	char *p;
	size_t n, cap;
	bool full;
};

static void put(struct out *o, char c)
{
	if (o->n + 1 >= o->cap) {
		o->full = true;
		return;
	}
	o->p[o->n++] = c;
}

static void put_escaped(struct out *o, unsigned char c)
{
	static const char hex[] = "0123456789ABCDEF";

	put(o, '%');
	put(o, hex[c >> 4]);
	put(o, hex[c & 15]);
}

/* After decoding a byte close behind a '%' that started no escape, make
 * sure the output does not now hold a valid escape there ("%%30%30" must
 * not become "%00"): such a '%' is written as "%25". */
static void nested(struct out *o, const char *s, size_t next, size_t n, size_t bad_pct)
{
	size_t len = o->n;
	char last = o->p[len - 1];
	bool add_next = bad_pct == len - 2;

	if (add_next) {
		if (next == n || (unsigned char)s[next] >= 0x80)
			return;
		put(o, s[next]);
		if (o->full)
			return;
	}
	if (escape_at(o->p, bad_pct, o->n) >= 0) {
		if (!add_next)
			put(o, o->p[bad_pct + 1]);
		if (o->full)
			return;
		o->p[bad_pct + 1] = '2';
		o->p[bad_pct + 2] = '5';
		put(o, last);
	} else if (add_next) {
		o->n = len;
	}
}

/* Back the output (which ends with '/') up to the previous slash, never
 * above the first one. */
static void up(struct out *o)
{
	size_t i = o->n - 1;

	if (i == 0)
		return;
	i--;
	while (i > 0 && o->p[i] != '/')
		i--;
	o->n = i + 1;
}

static bool norm_path(const char *s, size_t n, struct out *o)
{
	size_t bad_pct = SIZE_MAX;
	bool ok = true;

	if (!n || !is_slash(s[0]))
		put(o, '/');
	for (size_t i = 0; i < n && !o->full; i++) {
		unsigned char c = (unsigned char)s[i];
		size_t dl = dot_at(s, i, n);

		if (dl) {
			size_t j = i + dl, d2;

			if (!o->n || o->p[o->n - 1] != '/') {
				put(o, '.');
			} else if (j == n) {
				/* "." at the end: current directory */
			} else if (is_slash(s[j])) {
				dl += 1;
			} else if ((d2 = dot_at(s, j, n)) && (j + d2 == n || is_slash(s[j + d2]))) {
				up(o);
				dl += d2 + (j + d2 < n);
			} else {
				put(o, '.');
			}
			i += dl - 1;
			continue;
		}
		if (c == '\\') {
			put(o, '/');
		} else if (c == '%') {
			int v = escape_at(s, i, n);

			if (v < 0) {
				bad_pct = o->n;
				put(o, '%');
				continue;
			}
			i += 2;
			if (byte_class((unsigned char)v) == UNRES) {
				put(o, (char)v);
				if (bad_pct != SIZE_MAX && bad_pct + 3 >= o->n && bad_pct < o->n &&
				    o->p[bad_pct] == '%')
					nested(o, s, i + 1, n, bad_pct);
			} else {
				put(o, '%');
				put(o, s[i - 1]);
				put(o, s[i]);
				if (byte_class((unsigned char)v) == BAD)
					ok = false;
			}
		} else if (byte_class(c) == BAD) {
			put_escaped(o, c);
			ok = false;
		} else if (byte_class(c) == ESC) {
			put_escaped(o, c);
		} else {
			put(o, (char)c);
		}
	}
	return ok;
}

int wp_path_norm(const char *in, size_t len, char *out, size_t cap, size_t *out_len,
                 size_t *path_len)
{
	struct out o = {out, 0, cap, false};
	size_t pl = 0, ql, qe;
	bool ok;

	if (!cap)
		return -ENOSPC;
	while (pl < len && in[pl] != '?' && in[pl] != '#')
		pl++;
	ok = norm_path(in, pl, &o);
	*path_len = o.n;
	if (pl < len && in[pl] == '?') {
		qe = pl;
		while (qe < len && in[qe] != '#')
			qe++;
		ql = qe - pl;
		if (o.n + ql + 1 > cap)
			o.full = true;
		else {
			memcpy(out + o.n, in + pl, ql);
			o.n += ql;
		}
	}
	if (o.full)
		return -ENOSPC;
	out[o.n] = 0;
	*out_len = o.n;
	return ok ? 0 : -EINVAL;
}
