/*
 * The sans-I/O request-head parser of the control plane's HTTP/1.1 server
 * (see httpd_req.h). Two passes: while bytes arrive, only the framing is
 * checked (every LF must follow a CR; the head ends at the first CRLF CRLF
 * within max_request bytes), resuming where the last call stopped so a
 * client trickling bytes costs linear time; once the head is complete, it
 * is parsed as a whole (RFC 9112 sections 3 and 5).
 */
#include <string.h>
#include <strings.h>

#include "httpd_req.h"

static bool tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A field-value byte: VCHAR, SP, HTAB or obs-text. */
static bool vchar(unsigned char c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

static bool name_is(const char *p, size_t n, const char *name)
{
	return strlen(name) == n && !strncasecmp(p, name, n);
}

/* Does the comma-separated list v[0..n) hold token tok (any case)? */
static bool list_has(const char *v, size_t n, const char *tok)
{
	size_t i = 0, tl = strlen(tok);

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - s == tl && !strncasecmp(v + s, tok, tl))
			return true;
	}
	return false;
}

/* Copies the request-target t[0..n) into req->path and req->query. */
static int set_target(struct wp_httpd_req *req, const char *t, size_t n)
{
	const char *q;
	size_t pl;

	if (n > WP_HTTPD_TARGET_MAX)
		return -414;
	if (n >= 7 &&
	    (!strncasecmp(t, "http://", 7) || (n >= 8 && !strncasecmp(t, "https://", 8)))) {
		/* absolute-form: the authority is not ours to check; keep the path */
		const char *a = t + (t[4] == ':' ? 7 : 8),
		           *slash = memchr(a, '/', n - (size_t)(a - t));
		const char *qm = memchr(a, '?', n - (size_t)(a - t));

		if (qm && (!slash || qm < slash))
			slash = NULL; /* "http://h?x": empty path, a query */
		if (!slash) {
			req->path[0] = '/';
			req->path[1] = '\0';
			q = qm;
			if (q) {
				memcpy(req->query, q + 1, n - (size_t)(q + 1 - t));
				req->query[n - (size_t)(q + 1 - t)] = '\0';
			} else {
				req->query[0] = '\0';
			}
			return 0;
		}
		n -= (size_t)(slash - t);
		t = slash;
	} else if (t[0] != '/' && !(n == 1 && t[0] == '*')) {
		return -400;
	}
	q = memchr(t, '?', n);
	pl = q ? (size_t)(q - t) : n;
	memcpy(req->path, t, pl);
	req->path[pl] = '\0';
	if (q) {
		memcpy(req->query, q + 1, n - pl - 1);
		req->query[n - pl - 1] = '\0';
	} else {
		req->query[0] = '\0';
	}
	return 0;
}

/* The request line h[0..n) (CRLF excluded). */
static int request_line(struct wp_httpd_req *req, const char *h, size_t n)
{
	size_t m = 0, ts, te;
	const char *v;
	int rc;

	while (m < n && tchar((unsigned char)h[m]))
		m++;
	if (m == 0 || m == n || h[m] != ' ')
		return -400;
	req->method = m == 3 && !memcmp(h, "GET", 3)    ? WP_HTTPD_GET
	              : m == 4 && !memcmp(h, "HEAD", 4) ? WP_HTTPD_HEAD
	                                                : WP_HTTPD_OTHER;
	ts = te = m + 1;
	while (te < n && h[te] > 0x20 && h[te] < 0x7f)
		te++;
	if (te == ts || te == n || h[te] != ' ')
		return -400;
	/* "HTTP/" DIGIT "." DIGIT and nothing after */
	v = h + te + 1;
	if (n - te - 1 != 8 || memcmp(v, "HTTP/", 5) || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
	    v[7] < '0' || v[7] > '9')
		return -400;
	if (v[5] != '1')
		return -505;
	req->minor = (unsigned)(v[7] - '0');
	rc = set_target(req, h + ts, te - ts);
	return rc;
}

/* Parses the complete head h[0..n) (n includes the final CRLF CRLF). */
static int parse_head(struct wp_httpd_req *req, const char *h, size_t n, size_t max_request)
{
	const char *end = h + n - 2; /* the empty line's CRLF */
	const char *line = h, *eol = memchr(h, '\r', n);
	unsigned hosts = 0, lengths = 0;
	bool te = false, close = false, ka = false;
	size_t body = 0;
	int rc;

	memset(req, 0, sizeof(*req));
	req->head_len = n;
	if (eol[1] != '\n') /* a bare CR */
		return -400;
	rc = request_line(req, line, (size_t)(eol - line));
	if (rc)
		return rc;
	for (line = eol + 2; line < end; line = eol + 2) {
		const char *colon, *v, *ve;

		eol = memchr(line, '\r', (size_t)(end - line) + 1);
		if (eol[1] != '\n')
			return -400;
		if (line[0] == ' ' || line[0] == '\t') /* obs-fold */
			return -400;
		for (colon = line; colon < eol && tchar((unsigned char)*colon); colon++)
			;
		if (colon == line || colon == eol || *colon != ':')
			return -400;
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		for (const char *c = v; c < ve; c++)
			if (!vchar((unsigned char)*c))
				return -400;
		if (name_is(line, (size_t)(colon - line), "host")) {
			hosts++;
		} else if (name_is(line, (size_t)(colon - line), "content-length")) {
			if (lengths++ || v == ve || ve - v > 18)
				return -400;
			for (const char *c = v; c < ve; c++) {
				if (*c < '0' || *c > '9')
					return -400;
				body = body * 10 + (size_t)(*c - '0');
			}
		} else if (name_is(line, (size_t)(colon - line), "transfer-encoding")) {
			te = true;
		} else if (name_is(line, (size_t)(colon - line), "connection")) {
			close |= list_has(v, (size_t)(ve - v), "close");
			ka |= list_has(v, (size_t)(ve - v), "keep-alive");
		}
	}
	if (hosts > 1 || (req->minor >= 1 && hosts == 0))
		return -400;
	if (te)
		return lengths ? -400 : -411; /* smuggling shape, or a body of unknown length */
	if (body > max_request || n + body > max_request)
		return -413;
	req->body_len = body;
	req->keep_alive = req->minor >= 1 ? !close : ka && !close;
	return 1;
}

int wp_httpd_req_parse(struct wp_httpd_req_parser *p, const char *buf, size_t len,
                       struct wp_httpd_req *req)
{
	size_t lim = len < p->max_request ? len : p->max_request;

	for (size_t i = p->scanned; i < lim; i++) {
		if (buf[i] != '\n')
			continue;
		if (i == 0 || buf[i - 1] != '\r')
			return -400; /* a bare LF: no line ends but at CRLF */
		if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
			return parse_head(req, buf, i + 1, p->max_request);
	}
	p->scanned = lim;
	if (len < p->max_request)
		return 0;
	/* no head within the limit: the request line itself, or the fields */
	return memchr(buf, '\n', p->max_request) ? -431 : -414;
}
