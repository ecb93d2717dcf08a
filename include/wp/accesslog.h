/*
 * Access log (dp/obs/accesslog.c): one line per HTTP request (and per
 * opaque TCP connection, as Envoy logs its TCP proxy's), in Istio's
 * default text format (what meshConfig.accessLogFile writes) or its JSON
 * encoding (accessLogEncoding: JSON), written by a thread of its own.
 *
 * Workers never format nor write: the request pipeline's completion stage
 * (dp/l7/pipeline_obs.c) writes an entry into its core's ring (single
 * producer, single consumer, sized at start; no allocation, no lock) and
 * goes on. An entry is compact, as the worker pays for every cache line it
 * writes: a small fixed part of raw numbers (times in µs, sizes, status,
 * addresses; the writer turns them into text) followed by the text fields
 * back to back, each as long as it is (a typical entry is about 250 bytes,
 * four cache lines). Every text field is a copy: the writer formats later,
 * when the request's buffers and the snapshot the worker read may be gone.
 * When the ring is full the line is dropped and counted
 * (ACCESS_LOG_DROPPED), a worker never waits. The writer thread drains the
 * rings, formats and writes in batches, and reopens its file when asked
 * (SIGUSR1, for logrotate).
 */
#ifndef WP_ACCESSLOG_H
#define WP_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wp/addr_types.h"

/* A fixed-size text field (the span entries of wp/tracing.h): at most cap
 * bytes kept (longer values are cut). */
#define WP_ALOG_FIELD(name, cap)                                                                   \
	uint16_t name##_len;                                                                       \
	char name[cap]

enum wp_alog_proto {
	WP_ALOG_HTTP10 = 0,
	WP_ALOG_HTTP11,
	WP_ALOG_HTTP2,
	WP_ALOG_TCP, /* an opaque TCP connection: method, path and protocol "-" */
};

/* The text fields of an entry, in the order they follow its fixed part,
 * and the most bytes of each kept (longer values are cut). */
#define WP_ALOG_TEXT(X)                                                                            \
	X(METHOD, 16)                                                                              \
	X(PATH, 512)                                                                               \
	X(AUTHORITY, 160)                                                                          \
	X(USER_AGENT, 160)                                                                         \
	X(REQUEST_ID, 64)                                                                          \
	X(XFF, 96)                                                                                 \
	X(FLAGS, 48)                                                                               \
	X(CLUSTER, 192)

enum wp_alog_text_id {
#define WP_ALOG_TEXT_ID(id, cap) WP_ALOG_##id,
	WP_ALOG_TEXT(WP_ALOG_TEXT_ID)
#undef WP_ALOG_TEXT_ID
	        WP_ALOG_NTEXT
};

/* One request, as the completion stage saw it: this fixed part, then its
 * text fields (len[i] bytes each, in enum wp_alog_text_id order) right
 * after it. */
struct wp_alog_entry {
	uint64_t start_us;    /* wall clock, µs since the epoch */
	uint64_t duration_us; /* request start to its end */
	uint64_t bytes_rx, bytes_tx;
	struct wp_addr upstream;
	struct wp_addr local, remote; /* the CONNECT target, the original client */
	uint16_t upstream_port;
	uint16_t local_port;
	uint16_t status; /* 0: no response */
	uint8_t proto;   /* enum wp_alog_proto */
	bool has_upstream;
	uint16_t len[WP_ALOG_NTEXT];
};

/* A text field's value as the producer has it (NULL or len 0: absent). */
struct wp_alog_text {
	const char *s;
	size_t len;
};

/* The most bytes of text field <i> an entry keeps. */
static inline size_t wp_alog_text_cap(unsigned i)
{
	static const uint16_t cap[WP_ALOG_NTEXT] = {
#define WP_ALOG_TEXT_CAP(id, c) c,
	        WP_ALOG_TEXT(WP_ALOG_TEXT_CAP)
#undef WP_ALOG_TEXT_CAP
	};

	return cap[i];
}

/* The bytes an entry with text fields <t> takes (each cut to its cap). */
static inline size_t wp_alog_entry_size(const struct wp_alog_text t[WP_ALOG_NTEXT])
{
	size_t n = sizeof(struct wp_alog_entry);

	for (unsigned i = 0; i < WP_ALOG_NTEXT; i++) {
		size_t l = t[i].s ? t[i].len : 0, cap = wp_alog_text_cap(i);

		n += l < cap ? l : cap;
	}
	return n;
}

/* Copies the text fields <t> (each cut to its cap) after <e>'s fixed part
 * and sets e->len; <e> has wp_alog_entry_size(t) bytes. */
static inline void wp_alog_entry_text(struct wp_alog_entry *e,
                                      const struct wp_alog_text t[WP_ALOG_NTEXT])
{
	char *p = (char *)(e + 1);

	for (unsigned i = 0; i < WP_ALOG_NTEXT; i++) {
		size_t l = t[i].s ? t[i].len : 0, cap = wp_alog_text_cap(i);

		if (l > cap)
			l = cap;
		if (l)
			memcpy(p, t[i].s, l);
		e->len[i] = (uint16_t)l;
		p += l;
	}
}

struct wp_alog_ring;
struct wp_alog_writer;

/* A core's ring with room for about <entries> lines (WP_ALOG_RING_LINE
 * bytes each; a byte ring rounded up to a power of two); NULL when out of
 * memory. <ctr>: the owner's counters (ACCESS_LOG_DROPPED). */
#define WP_ALOG_RING_LINE 512
struct wp_alog_ring *wp_alog_ring_create(unsigned entries, uint64_t *ctr);
void wp_alog_ring_destroy(struct wp_alog_ring *r);

/* Producer (the owning core only): an entry with its text fields <t>
 * copied in, whose fixed part the caller fills before wp_alog_commit();
 * or NULL (ring full: the line is dropped and counted). */
struct wp_alog_entry *wp_alog_reserve(struct wp_alog_ring *r,
                                      const struct wp_alog_text t[WP_ALOG_NTEXT]);
void wp_alog_commit(struct wp_alog_ring *r);

/* Copies s[0..len) into a fixed-size field of <cap> bytes (cut beyond). */
static inline void wp_alog_set(char *dst, uint16_t *dst_len, size_t cap, const char *s, size_t len)
{
	if (!s)
		len = 0;
	if (len > cap)
		len = cap;
	for (size_t i = 0; i < len; i++)
		dst[i] = s[i];
	*dst_len = (uint16_t)len;
}
#define WP_ALOG_SET(e, field, s, len)                                                              \
	wp_alog_set((e)->field, &(e)->field##_len, sizeof((e)->field), s, len)

/* Formats <e> (its fixed part and the text after it) as one line (with
 * its '\n') into buf; returns its length (0 when buf is too small).
 * json: Istio's JSON encoding. */
size_t wp_alog_format(const struct wp_alog_entry *e, bool json, char *buf, size_t cap);

/* Starts the writer thread over <n> rings, appending to <path> ("" or
 * "/dev/stdout": standard output). NULL (errno) when the file cannot be
 * opened or the thread not started. */
struct wp_alog_writer *wp_alog_writer_start(struct wp_alog_ring *const *rings, unsigned n,
                                            const char *path, bool json);

/* Asks the writer to reopen its file (async-signal-safe: sets a flag). */
void wp_alog_writer_reopen(struct wp_alog_writer *w);

/* Writes what the rings still hold, stops the thread and frees it. */
void wp_alog_writer_stop(struct wp_alog_writer *w);

/* Lines written so far. */
uint64_t wp_alog_writer_lines(const struct wp_alog_writer *w);

#endif /* WP_ACCESSLOG_H */
