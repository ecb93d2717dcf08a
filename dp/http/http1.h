/*
 * HTTP/1.1 proxy codec, sans-I/O, on top of llhttp (strict: no lenient
 * flags). The proxy (dp/l7) owns the connections and the buffers; this
 * module only turns bytes into events and heads back into bytes.
 *
 * Parsing (client requests and upstream responses): wp_http1_parse() is fed
 * arbitrary slices and returns how many bytes it consumed plus at most one
 * event: a head is complete (method/status, target, version and headers,
 * copied into a bounded arena because input buffers are recycled; a head
 * ends only at CRLF CRLF, an absolute-form target becomes origin-form plus
 * Host), a body
 * slice (pointing into the caller's input: streamed, never buffered), the
 * message is complete (with trailers), the connection switches to raw
 * passthrough (Upgrade / CONNECT: the raw bytes start right after the bytes
 * consumed), or an error with the status the proxy must answer (400, 431,
 * 502) before closing. The parser stops after each head and each message, so
 * pipelined requests are handed out one at a time.
 *
 * Serialising: wp_http1_write_request_head() writes the head sent upstream
 * (hop-by-hop headers removed, body re-framed, x-request-id added when
 * missing, header add/set/remove hooks for HTTPRoute filters);
 * wp_http1_write_response_head() writes the head sent back to the client;
 * the chunk helpers frame body slices; wp_http1_write_error() writes a
 * minimal error response with `connection: close`.
 *
 * Nothing here allocates: the parser lives in the caller's connection
 * object and its arena in memory the caller provides (per-core pools).
 */
#ifndef WP_DP_HTTP1_H
#define WP_DP_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "wp/common.h"
#include "wp/http_hdr.h"

/* Limits applied to one message head (request line / status line, headers,
 * trailers). Exceeding one on a request is a 431 decision. */
struct wp_http1_limits {
	uint32_t max_line;         /* method + target + version bytes (or status line) */
	uint32_t max_header_bytes; /* sum of header (and trailer) name + value bytes */
	uint16_t max_headers;      /* header + trailer lines */
};

/* Envoy-like defaults: 8 KiB line, 60 KiB headers, 100 headers. */
extern const struct wp_http1_limits wp_http1_default_limits;

/* wp_http1_msg.flags */
#define WP_HTTP1_F_KEEP_ALIVE      0x001 /* connection may carry another message */
#define WP_HTTP1_F_CHUNKED         0x002 /* body is chunked */
#define WP_HTTP1_F_CONTENT_LENGTH  0x004 /* body length is content_length */
#define WP_HTTP1_F_BODY_UNTIL_EOF  0x008 /* response body ends when upstream closes */
#define WP_HTTP1_F_UPGRADE         0x010 /* Upgrade (with Connection: upgrade) or CONNECT */
#define WP_HTTP1_F_CONNECT         0x020 /* CONNECT request */
#define WP_HTTP1_F_EXPECT_CONTINUE 0x040 /* Expect: 100-continue */
#define WP_HTTP1_F_TE_TRAILERS     0x080 /* request TE lists "trailers" */
#define WP_HTTP1_F_NO_BODY         0x100 /* response can have no body (HEAD, 1xx, 204, 304) */

/* One message head as parsed. Everything it points to lives in the parser's
 * arena and stays valid until the parser is fed again after the
 * WP_HTTP1_EV_DONE of this message (or reset). */
struct wp_http1_msg {
	const char *target; /* request-target (requests; an absolute-form one is
	                     * given in origin-form, its authority as Host) */
	const char *reason; /* reason phrase (responses) */
	struct wp_http_hdr *hdrs;
	struct wp_http_hdr *trailers; /* valid at WP_HTTP1_EV_DONE */
	uint64_t content_length;      /* if WP_HTTP1_F_CONTENT_LENGTH */
	uint32_t target_len;
	uint32_t flags; /* WP_HTTP1_F_* */
	uint16_t reason_len;
	uint16_t n_hdrs;
	uint16_t n_trailers;
	uint16_t status; /* responses */
	uint8_t method;  /* enum llhttp_method (requests; for responses: the request's) */
	uint8_t http_major;
	uint8_t http_minor;
};

enum wp_http1_ev_type {
	WP_HTTP1_EV_NONE = 0, /* everything consumed, need more bytes */
	WP_HTTP1_EV_HEAD,     /* msg head complete (ev.msg) */
	WP_HTTP1_EV_BODY,     /* ev.data/ev.len: body bytes, a slice of the input */
	WP_HTTP1_EV_DONE,     /* message complete (ev.msg, trailers filled in) */
	WP_HTTP1_EV_UPGRADE,  /* passthrough from input + consumed on */
	WP_HTTP1_EV_ERROR,    /* ev.status to answer, then close; parser is dead */
};

struct wp_http1_ev {
	enum wp_http1_ev_type type;
	uint16_t status;          /* EV_ERROR: 400, 431, 502 ... */
	uint16_t ctr;             /* EV_ERROR: the enum wp_ctr that was incremented */
	const uint8_t *data;      /* EV_BODY */
	size_t len;               /* EV_BODY */
	struct wp_http1_msg *msg; /* EV_HEAD, EV_DONE */
};

enum wp_http1_phase {
	WP_HTTP1_PH_IDLE = 0,
	WP_HTTP1_PH_HEAD,
	WP_HTTP1_PH_BODY,
	WP_HTTP1_PH_TUNNEL,
	WP_HTTP1_PH_DEAD,
};

/* One parser per direction per connection. Opaque in use; the layout is
 * public so it can be embedded in pooled connection objects. */
struct wp_http1_parser {
	llhttp_t ll;
	struct wp_http1_msg msg;
	struct wp_http1_limits lim;
	uint64_t *ctr; /* per-core counters (wp/counters.h), not owned */
	/* arena: hdr array (max_headers) then bytes; memory not owned */
	struct wp_http_hdr *hdr_mem;
	char *bytes;
	uint32_t bytes_cap;
	uint32_t bytes_used;
	uint32_t hdr_bytes; /* name + value bytes of this message */
	uint32_t line_len;
	uint16_t n_lines; /* header + trailer lines of this message */
	uint8_t phase;    /* enum wp_http1_phase */
	uint8_t in_field; /* 1: inside a header name, 2: inside its value */
	uint8_t trailers; /* header callbacks now carry trailers */
	uint8_t err_ctr_set;
	uint8_t req_method; /* responses: method of the request being answered */
	uint8_t last_byte;  /* last byte of the previous feed (obs-fold test) */
	uint8_t crlf_prev;  /* last byte consumed outside a body (0 after body bytes) */
	uint16_t err_status;
	uint16_t err_ctr;
	uint8_t pending; /* enum wp_http1_ev_type set by a callback */
	uint8_t fold_lf; /* a LF was seen between the current name and value */
	const uint8_t *feed;
	const uint8_t *name_end; /* end of the current name, if in this feed */
	const uint8_t *body;
	size_t body_len;
};

/* Inside a message: part of it was parsed, the rest has not come. */
static inline bool wp_http1_mid_message(const struct wp_http1_parser *p)
{
	return p->phase == WP_HTTP1_PH_HEAD || p->phase == WP_HTTP1_PH_BODY;
}

/* Bytes of arena memory a parser needs for <lim>. */
size_t wp_http1_arena_size(const struct wp_http1_limits *lim);

/* Initialises <p> to parse requests (type HTTP_REQUEST) or responses
 * (HTTP_RESPONSE). <arena> (wp_http1_arena_size(lim) bytes, aligned for
 * pointers) and <ctr> stay the caller's and must outlive the parser.
 * Returns 0 or -EINVAL. */
int wp_http1_parser_init(struct wp_http1_parser *p, enum llhttp_type type,
                         const struct wp_http1_limits *lim, void *arena, size_t arena_size,
                         uint64_t *ctr) WP_MUST_CHECK;

/* Responses only: the method of the request whose response comes next (HEAD
 * and CONNECT change how the response is framed). Call before feeding each
 * response head. */
void wp_http1_parser_expect_response(struct wp_http1_parser *p, uint8_t method);

/* Feeds <len> bytes. Returns the number of bytes consumed (0..len) and sets
 * *ev to at most one event. Call again with the rest (even when that is 0
 * bytes: an event may still be pending, e.g. EV_DONE right behind the EV_HEAD
 * of a bodyless request) until it reports EV_NONE, EV_UPGRADE or EV_ERROR;
 * EV_NONE always means every byte was consumed. Bytes not consumed
 * are still the caller's to re-feed (after EV_UPGRADE they are the tunnel's
 * first bytes, after EV_ERROR they are discarded). Body slices point into
 * <data>. Never fails otherwise: errors come back as EV_ERROR. */
size_t wp_http1_parse(struct wp_http1_parser *p, const uint8_t *data, size_t len,
                      struct wp_http1_ev *ev);

/* The peer closed its sending side. Completes a response read until EOF
 * (EV_DONE), reports EV_NONE if between messages, and EV_ERROR (counted) if a
 * message was cut short. */
void wp_http1_parse_eof(struct wp_http1_parser *p, struct wp_http1_ev *ev);

/* First header named <name> (lower-case, <len> bytes) in <msg>, or NULL. */
const struct wp_http_hdr *wp_http1_find(const struct wp_http1_msg *msg, const char *name,
                                        size_t len);

/* An owned copy of a struct wp_http_hdr_mods: a proxy keeps the rule's
 * ResponseHeaderModifier here, since the route table (in an RCU snapshot)
 * may go away before the response comes. */
#define WP_HTTP_MODS_COPY_HDRS  16
#define WP_HTTP_MODS_COPY_BYTES 2048
struct wp_http_mods_copy {
	struct wp_http_hdr_mods mods; /* points into hdrs[] / bytes[] */
	struct wp_http_hdr hdrs[WP_HTTP_MODS_COPY_HDRS];
	char bytes[WP_HTTP_MODS_COPY_BYTES];
};

/* Copies <src> into <dst>. 0, or -ENOSPC when it does not fit (then
 * <dst> is unusable). */
int wp_http_mods_copy(struct wp_http_mods_copy *dst, const struct wp_http_hdr_mods *src);

/* Per-core generator of x-request-id values (UUIDv4, xoshiro256**). */
struct wp_http_reqid_rng {
	uint64_t s[4];
};

/* Seeds <r> (e.g. from the lcore id and the TSC). */
void wp_http_reqid_seed(struct wp_http_reqid_rng *r, uint64_t seed);

/* Writes a random UUIDv4 (36 characters, no NUL) into <out>. */
void wp_http_reqid_gen(struct wp_http_reqid_rng *r, char out[36]);

#define WP_HTTP1_REQID_LEN 36

/* Options for wp_http1_write_request_head(). */
struct wp_http1_req_opts {
	const struct wp_http_hdr_mods *mods; /* may be NULL */
	/* the trace headers of the waypoint's span (dp/http/tracectx.h),
	 * applied after <mods>: its set replaces, its remove drops; NULL */
	const struct wp_http_hdr_mods *trace;
	struct wp_http_reqid_rng *rng; /* NULL: never add x-request-id */
	char *reqid_out;               /* if non-NULL: receives the generated id (36 bytes) */
	bool *reqid_generated;         /* if non-NULL: set to whether one was generated */
	uint64_t *ctr;                 /* per-core counters, may be NULL */
	/* written as host: when the request has no Host (HTTP/1.0 clients) */
	const char *authority;
	size_t authority_len;
	/* a mirrored copy (Envoy's shadow request): the host name gets the
	 * suffix "-shadow" (before any :port) and "connection: close" is sent,
	 * since nobody waits for the response */
	bool shadow;
	/* if non-NULL and the request has no x-request-id: this one (36 bytes)
	 * is written instead of a generated one (a mirror carries the id of
	 * the request it copies) */
	const char *reqid;
};

/* Writes the upstream request head for <req> into <buf> (HTTP/1.1, hop-by-hop
 * headers removed, content-length passed through or transfer-encoding:
 * chunked if the client body was chunked, Upgrade kept for upgrades).
 * Returns bytes written or -ENOSPC (nothing usable in <buf>). */
int wp_http1_write_request_head(const struct wp_http1_msg *req,
                                const struct wp_http1_req_opts *opts, char *buf,
                                size_t cap) WP_MUST_CHECK;

/* How the response body will be framed towards the client. */
enum wp_http1_framing {
	WP_HTTP1_FRAME_NONE,    /* no body bytes follow */
	WP_HTTP1_FRAME_LENGTH,  /* content-length passed through, copy body as is */
	WP_HTTP1_FRAME_CHUNKED, /* wrap each body slice with the chunk helpers */
	WP_HTTP1_FRAME_CLOSE,   /* copy body as is, then close the client connection */
	WP_HTTP1_FRAME_TUNNEL,  /* 101 / CONNECT 2xx: raw passthrough follows */
};

/* Writes the head of <resp> for a client that spoke <req> (its version, method
 * and keep-alive wish). <client_keep_alive> is the proxy's decision to keep
 * the client connection open after this response. *framing (out) says how
 * to send the body. Returns bytes written or -ENOSPC. */
int wp_http1_write_response_head(const struct wp_http1_msg *resp, const struct wp_http1_msg *req,
                                 bool client_keep_alive, const struct wp_http_hdr_mods *mods,
                                 enum wp_http1_framing *framing, char *buf,
                                 size_t cap) WP_MUST_CHECK;

/* Chunk framing: "<hex len>\r\n" before a slice and "\r\n" after it. A zero
 * <len> is refused (-EINVAL): use wp_http1_write_last_chunk(). */
int wp_http1_write_chunk_header(size_t len, char *buf, size_t cap) WP_MUST_CHECK;
#define WP_HTTP1_CHUNK_END     "\r\n"
#define WP_HTTP1_CHUNK_END_LEN 2

/* "0\r\n" + trailers + "\r\n". Returns bytes written or -ENOSPC. */
int wp_http1_write_last_chunk(const struct wp_http_hdr *trailers, uint16_t n, char *buf,
                              size_t cap) WP_MUST_CHECK;

/* A local answer: <status> with a text/plain <body>; keep_alive false adds
 * "connection: close". <head_only> (the answer to a HEAD request): the
 * head alone, its content-length still the body's. Returns the length, or
 * -ENOSPC / -EINVAL. */
int wp_http1_write_local(uint16_t status, const char *body, size_t body_len, bool keep_alive,
                         bool head_only, char *buf, size_t cap) WP_MUST_CHECK;

/* A minimal response for <status> (400, 408, 413, 414, 417, 431, 500, 502,
 * 503, 504, 505 ...) with a short text body and `connection: close`
 * (<head_only> as above). Returns bytes written or -ENOSPC. */
int wp_http1_write_error(uint16_t status, bool head_only, char *buf, size_t cap) WP_MUST_CHECK;

/* "HTTP/1.1 100 Continue\r\n\r\n" into <buf>; returns its length or -ENOSPC. */
int wp_http1_write_continue(char *buf, size_t cap) WP_MUST_CHECK;

#endif /* WP_DP_HTTP1_H */
