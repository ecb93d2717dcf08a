/*
 * The request side of the control plane's small HTTP/1.1 server (httpd.c):
 * a sans-I/O parser that decides, from the bytes a connection has received
 * so far, whether a complete and acceptable request head is there, and what
 * it asks for. It never allocates and never touches a socket, so it is unit
 * tested and fuzzed on its own (tests/fuzz/fuzz_admin_http.c).
 *
 * It is strict on purpose, because what it accepts must mean the same thing
 * to every client and proxy in front of it: a head ends only at CRLF CRLF,
 * a bare LF, an obs-folded line, whitespace before a colon, a control
 * character, a second Host or Content-Length, or a bad version is refused,
 * and a body is accepted only with a Content-Length (411 otherwise). The
 * answer never depends on how the input was cut into reads.
 */
#ifndef WP_CP_ADMIN_HTTPD_REQ_H
#define WP_CP_ADMIN_HTTPD_REQ_H

#include <stdbool.h>
#include <stddef.h>

/* Longest request-target accepted (414 beyond). */
#define WP_HTTPD_TARGET_MAX 2048

enum wp_httpd_method {
	WP_HTTPD_GET,
	WP_HTTPD_HEAD,
	WP_HTTPD_OTHER, /* a valid token the server does not serve (405) */
};

/* One parsed request head. path and query are NUL-terminated copies, so
 * the request outlives the connection's input buffer. */
struct wp_httpd_req {
	enum wp_httpd_method method;
	unsigned minor;                      /* HTTP/1.<minor> */
	bool keep_alive;                     /* another request may follow on the connection */
	size_t head_len;                     /* bytes of the head, the final CRLF CRLF included */
	size_t body_len;                     /* Content-Length; 0 without one */
	char path[WP_HTTPD_TARGET_MAX + 1];  /* "/config_dump" (absolute-form: the path part) */
	char query[WP_HTTPD_TARGET_MAX + 1]; /* after '?', without it; "" when none */
};

/* Per-connection parser state: where the search for the end of the head
 * stopped. Zero it (wp_httpd_req_reset) at the start of every request. */
struct wp_httpd_req_parser {
	size_t scanned;
	size_t max_request; /* head + body; set once */
};

static inline void wp_httpd_req_reset(struct wp_httpd_req_parser *p)
{
	p->scanned = 0;
}

/*
 * Looks at buf[0..len), the bytes of one request received so far (the same
 * bytes again, plus more, on the next call), for a complete head.
 *   0     incomplete: call again when more bytes arrived
 *   1     complete: *req is filled; the body is the req->body_len bytes
 *         after req->head_len (head + body fit within max_request)
 *   <0    the request is refused: minus the status to answer before
 *         closing the connection (-400 malformed, -411 body without a
 *         length, -413 head + body over max_request, -414 target too long,
 *         -431 head over max_request, -505 not HTTP/1.x)
 * Bytes after the head (a body, pipelined requests) are not looked at.
 */
int wp_httpd_req_parse(struct wp_httpd_req_parser *p, const char *buf, size_t len,
                       struct wp_httpd_req *req);

#endif /* WP_CP_ADMIN_HTTPD_REQ_H */
