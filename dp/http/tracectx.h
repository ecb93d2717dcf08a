/*
 * Trace context propagation headers (dp/http/tracectx.c): W3C Trace Context
 * (traceparent; tracestate is passed on untouched) and Zipkin B3, in its
 * single-header (`b3`) and multi-header (x-b3-traceid, x-b3-spanid,
 * x-b3-parentspanid, x-b3-sampled, x-b3-flags) forms.
 *
 * A proxy offers each request header to wp_tc_header() (names are matched
 * case-insensitively; other headers cost a length test), then
 * wp_tc_finish() parses what it kept, strictly: a malformed header is
 * treated as absent and counted by the caller. Nothing allocates; the
 * slices point into the request head and are only read before it goes.
 *
 * wp_tc_render() writes the headers of the upstream request once the
 * waypoint made its span: the same trace id, the waypoint's span id, the
 * incoming span id as parent, in every format the request came with (or
 * a default format for a new trace). It returns header hooks the
 * HTTP/1.1 writer and the h2 header block apply like a "set" list.
 */
#ifndef WP_DP_HTTP_TRACECTX_H
#define WP_DP_HTTP_TRACECTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wp/http_hdr.h"

/* Header formats, one bit each. */
#define WP_TC_W3C 0x1 /* traceparent */
#define WP_TC_B3  0x2 /* b3 (single header) */
#define WP_TC_B3M 0x4 /* x-b3-* (multi header) */

struct wp_tc_slice {
	const char *p;
	uint32_t len;
	uint8_t n; /* times the header came; more than one is malformed */
};

/* What a request carried. */
struct wp_tracectx {
	uint8_t trace_id[16]; /* a 64-bit B3 id is in the low 8 bytes */
	uint8_t span_id[8];   /* the caller's span: the waypoint's span's parent */
	bool has_ctx;         /* trace_id / span_id valid */
	int8_t sampled;       /* 1, 0, or -1: the request carried no decision */
	bool b3_64;           /* the B3 trace id came with 16 hex digits */
	uint8_t present;      /* WP_TC_*: formats whose headers came (valid or not) */
	uint8_t invalid;      /* headers refused by wp_tc_finish */
	/* while offering: the raw headers */
	struct wp_tc_slice tp, b3, tid, sid, smp, flg;
};

void wp_tc_init(struct wp_tracectx *t);

/* Offers one request header. */
void wp_tc_header(struct wp_tracectx *t, const char *name, size_t nlen, const char *val,
                  size_t vlen);

/* Parses the offered headers: traceparent first, then b3, then x-b3-*.
 * Returns the number of malformed ones (then ignored). */
unsigned wp_tc_finish(struct wp_tracectx *t);

/* The headers for the upstream request, as header hooks: <set> replaces
 * the request's fields of the same name, <remove> drops one. */
#define WP_TC_OUT_MAX 6
struct wp_tc_out {
	struct wp_http_hdr_mods mods;
	struct wp_http_hdr set[WP_TC_OUT_MAX];
	struct wp_http_hdr remove[1];
	char buf[256];
};

/*
 * Fills <o> for a request going on in trace <trace_id> as span <span_id>
 * (sampled or not), in the formats <fmt> (WP_TC_*: those the request came
 * with, or a default for a new trace). <parent>: the caller's span id
 * (NULL: none, x-b3-parentspanid is removed); <b3_64>: B3 headers carry
 * the low 64 bits of the trace id, as they came. Returns &o->mods.
 */
const struct wp_http_hdr_mods *wp_tc_render(uint8_t fmt, const uint8_t trace_id[16],
                                            const uint8_t span_id[8], const uint8_t *parent,
                                            bool b3_64, bool sampled, struct wp_tc_out *o);

/* Lower-case hex of <n> bytes into <out> (2n characters, no NUL). */
void wp_tc_hex(const uint8_t *b, size_t n, char *out);

#endif /* WP_DP_HTTP_TRACECTX_H */
