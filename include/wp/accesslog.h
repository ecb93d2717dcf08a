/*
 * Access log (dp/obs/accesslog.c): one line per HTTP request (and per
 * opaque TCP connection, as Envoy logs its TCP proxy's), in Istio's
 * default text format (what meshConfig.accessLogFile writes) or its JSON
 * encoding (accessLogEncoding: JSON), written by a thread of its own.
 *
 * Workers never format nor write: the request pipeline's completion stage
 * (dp/l7/pipeline_obs.c) copies the request's fields into a fixed-size
 * entry of its core's ring (single producer, single consumer, sized at
 * start; no allocation, no lock, only an acquire load and a release store)
 * and goes on. When the ring is full the line is dropped and counted
 * (ACCESS_LOG_DROPPED), a worker never waits. The writer thread drains the
 * rings, formats and writes in batches, and reopens its file when asked
 * (SIGUSR1, for logrotate).
 */
#ifndef WP_ACCESSLOG_H
#define WP_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wp/addr_types.h"

/* A text field of an entry: at most cap bytes kept (longer values are cut). */
#define WP_ALOG_FIELD(name, cap)                                                                   \
	uint16_t name##_len;                                                                       \
	char name[cap]

enum wp_alog_proto {
	WP_ALOG_HTTP10 = 0,
	WP_ALOG_HTTP11,
	WP_ALOG_HTTP2,
	WP_ALOG_TCP, /* an opaque TCP connection: method, path and protocol "-" */
};

/* One request, as the completion stage saw it. */
struct wp_alog_entry {
	uint64_t start_us;    /* wall clock, µs since the epoch */
	uint64_t duration_us; /* request start to its end */
	uint64_t bytes_rx, bytes_tx;
	uint16_t status; /* 0: no response */
	uint8_t proto;   /* enum wp_alog_proto */
	bool has_upstream;
	struct wp_addr upstream;
	uint16_t upstream_port;
	struct wp_addr local, remote; /* the CONNECT target, the original client */
	uint16_t local_port;
	WP_ALOG_FIELD(method, 16);
	WP_ALOG_FIELD(path, 512);
	WP_ALOG_FIELD(authority, 160);
	WP_ALOG_FIELD(user_agent, 160);
	WP_ALOG_FIELD(request_id, 64);
	WP_ALOG_FIELD(xff, 96);
	WP_ALOG_FIELD(flags, 48);
	WP_ALOG_FIELD(cluster, 192);
};

struct wp_alog_ring;
struct wp_alog_writer;

/* A core's ring of <entries> (rounded up to a power of two); NULL when out
 * of memory. <ctr>: the owner's counters (ACCESS_LOG_DROPPED). */
struct wp_alog_ring *wp_alog_ring_create(unsigned entries, uint64_t *ctr);
void wp_alog_ring_destroy(struct wp_alog_ring *r);

/* Producer (the owning core only): a free entry to fill, or NULL (ring
 * full: the line is dropped and counted). Then wp_alog_commit(). */
struct wp_alog_entry *wp_alog_reserve(struct wp_alog_ring *r);
void wp_alog_commit(struct wp_alog_ring *r);

/* Copies s[0..len) into a field of <cap> bytes (cut beyond). */
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

/* Formats <e> as one line (with its '\n') into buf; returns its length
 * (0 when buf is too small). json: Istio's JSON encoding. */
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
