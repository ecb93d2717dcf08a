/*
 * HBONE: HTTP/2 CONNECT tunnels, sans-I/O.
 *
 * A struct wp_hbconn is one HTTP/2 connection over an established TLS
 * connection, either a server (inbound HBONE from ztunnel, port 15008) or a
 * client (HBONE originate to podIP:15008). A struct wp_hbstream is one CONNECT
 * stream on it: a TCP tunnel. The server is our own RFC 9113 framer
 * (h2srv.c, with nghttp2's HPACK inflater; ~1.5 KB per idle connection),
 * the client an nghttp2 session (conn.c); both behave the same through
 * this API.
 *
 * The worker moves bytes: plaintext from TLS goes to wp_hbconn_input(), and
 * whatever wp_hbconn_peek() offers goes to TLS (wp_hbconn_advance() by what TLS
 * accepted). The application (policy, upstream) gets callbacks
 * (struct wp_hbone_ops) and answers with wp_hbstream_respond(), wp_hbstream_write(),
 * wp_hbstream_consume(), wp_hbstream_shutdown() and wp_hbstream_reset().
 *
 * Flow control is end to end: received tunnel bytes are only acknowledged
 * to the peer (WINDOW_UPDATE) when the application calls wp_hbstream_consume()
 * after its upstream took them; bytes for the peer wait in a bounded
 * per-stream buffer (wp_hbstream_write accepts what fits, on_writable says when
 * there is room again).
 *
 * Memory comes from a per-core struct wp_h2mem (mem.h). Time is passed in
 * (milliseconds, any monotonic origin).
 */
#ifndef WP_DP_HBONE_H
#define WP_DP_HBONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mem.h"
#include "wp/addr_types.h"
#include "wp/common.h"

struct wp_hbconn;
struct wp_hbstream;

struct wp_hbone_config {
	uint32_t max_streams;       /* concurrent CONNECT streams: 100 */
	uint32_t stream_window;     /* initial stream window: 4 MiB */
	uint32_t conn_window;       /* connection window: 16 MiB */
	uint32_t max_header_list;   /* request header bytes (RFC 7541 sizes): 16 KiB */
	uint32_t max_continuations; /* CONTINUATION frames per header block: 8 */
	uint32_t rst_per_sec;       /* peer RST_STREAMs per second before GOAWAY: 200 */
	uint32_t ping_interval_ms;  /* keepalive PING after this much silence: 10 s */
	uint32_t ping_timeout_ms;   /* close when the PING ACK is this late: 20 s */
	uint32_t stream_sndbuf;     /* bytes buffered per stream towards the peer: 64 KiB */
	/* HPACK dynamic table the peer's encoder may use towards us
	 * (SETTINGS_HEADER_TABLE_SIZE): 0, so an idle connection keeps no
	 * header entries (a CONNECT's headers then travel as literals, ~200
	 * bytes). Our own encoder never indexes either. */
	uint32_t header_table_size;
};

/* Fills in the defaults above. */
void wp_hbone_config_default(struct wp_hbone_config *cfg);

/* A slice of a header value, NUL-terminated; base NULL when absent. */
struct wp_hbone_hval {
	const char *base;
	size_t len;
};

/* What a CONNECT request carried (server side). Valid during on_request
 * and, through wp_hbstream_request(), until the stream closes. */
struct wp_hbone_req {
	struct wp_sockaddr authority; /* parsed :authority */
	struct wp_hbone_hval authority_text;
	struct wp_hbone_hval baggage;
	struct wp_hbone_hval forwarded;
	struct wp_hbone_hval traceparent;
};

enum wp_hbone_close {
	WP_HBONE_CLOSE_DONE,  /* both directions ended (END_STREAM each way) */
	WP_HBONE_CLOSE_EOF,   /* the peer reset with NO_ERROR or CANCEL: EOF */
	WP_HBONE_CLOSE_RESET, /* the peer reset with another error */
	WP_HBONE_CLOSE_LOCAL, /* we reset it (wp_hbstream_reset) or answered non-200 */
	WP_HBONE_CLOSE_ABORT, /* the connection went away */
};

/*
 * Callbacks. s belongs to the connection; the application keeps its own
 * state in wp_hbstream_set_app(). Every stream the application has seen
 * (on_request / wp_hbconn_open) gets exactly one on_close, after which s is
 * gone. Callbacks run inside wp_hbconn_input/peek/tick/free; they may call
 * the wp_hbstream_* functions but not wp_hbconn_input or wp_hbconn_free.
 */
struct wp_hbone_ops {
	/* Server: a CONNECT to a well-formed ip:port arrived. Answer now or
	 * later with wp_hbstream_respond(). (Non-CONNECT and bad authorities are
	 * answered 400 by this module and never reach the application.) */
	void (*on_request)(struct wp_hbconn *c, struct wp_hbstream *s,
	                   const struct wp_hbone_req *req);
	/* Client: the response arrived; 200 means the tunnel is open. Any
	 * other status is followed by on_close. */
	void (*on_response)(struct wp_hbstream *s, int status);
	/* Tunnel bytes from the peer, borrowed for the call. Call
	 * wp_hbstream_consume(s, n) once the upstream took them. */
	void (*on_data)(struct wp_hbstream *s, const uint8_t *data, size_t len);
	/* The peer half-closed its direction (END_STREAM). */
	void (*on_eof)(struct wp_hbstream *s);
	/* The send buffer has room again after wp_hbstream_write accepted less
	 * than asked. */
	void (*on_writable)(struct wp_hbstream *s);
	/* The stream is gone; h2_error is the RST code when one was seen. */
	void (*on_close)(struct wp_hbstream *s, enum wp_hbone_close why, uint32_t h2_error);
};

/*
 * Creates a server (is_server) or client connection. mem, ops and ctrs
 * (per-core counter array, enum wp_ctr) must outlive it; cfg is copied
 * (NULL: defaults). The connection preface/SETTINGS are queued at once.
 */
struct wp_hbconn *wp_hbconn_new(bool is_server, const struct wp_hbone_config *cfg,
                                struct wp_h2mem *mem, const struct wp_hbone_ops *ops, void *app,
                                uint64_t *ctrs, uint64_t now_ms);
/* Frees the connection; open streams get on_close(ABORT). */
void wp_hbconn_free(struct wp_hbconn *c);
void *wp_hbconn_app(const struct wp_hbconn *c);

/*
 * Plaintext from TLS. Returns len (everything is consumed), or -EPROTO when
 * the session failed (abuse, protocol error): flush wp_hbconn_peek (it may
 * hold a GOAWAY) and close.
 */
ssize_t wp_hbconn_input(struct wp_hbconn *c, const uint8_t *buf, size_t len, uint64_t now_ms);
/*
 * Bytes to send to TLS: returns their count and sets *p (valid until the
 * next wp_hbconn_advance/peek/input), 0 when nothing is ready, -ENOMEM/-EPROTO
 * on failure. Call wp_hbconn_advance(c, n) with what TLS accepted.
 */
ssize_t wp_hbconn_peek(struct wp_hbconn *c, const uint8_t **p);
void wp_hbconn_advance(struct wp_hbconn *c, size_t n);
/*
 * Timers: PING keepalive and its timeout. Call when wp_hbconn_next_ms()
 * comes (earlier calls do nothing). Returns 0, or -ETIMEDOUT when the peer
 * stopped answering (close it).
 */
int wp_hbconn_tick(struct wp_hbconn *c, uint64_t now_ms);
/*
 * When wp_hbconn_tick next has work (ms, the clock passed to it and to
 * input): the PING ACK's deadline while a PING is out, else the end of the
 * PING interval after the last bytes received; UINT64_MAX once failed.
 * Input and tick move it (either way: an ACK ends the PING's wait).
 */
uint64_t wp_hbconn_next_ms(const struct wp_hbconn *c);
/* Graceful drain: GOAWAY (NO_ERROR) now; open streams run to their end,
 * new ones are refused. */
int wp_hbconn_drain(struct wp_hbconn *c);
/* True when nothing more will happen: both sides done (after GOAWAY and
 * the last stream) or the session failed and its output was taken. */
bool wp_hbconn_done(const struct wp_hbconn *c);
/* Open streams. */
uint32_t wp_hbconn_streams(const struct wp_hbconn *c);
/* Client: true while another stream may be opened. */
bool wp_hbconn_can_open(const struct wp_hbconn *c);

/*
 * Client: opens a CONNECT stream to authority (":authority ip:port", no
 * :scheme or :path), with optional baggage/forwarded/traceparent (NULL
 * to omit). Returns the stream, or NULL (errno: EAGAIN at the concurrency
 * limit, ECONNRESET after GOAWAY, ENOMEM).
 */
struct wp_hbstream *wp_hbconn_open(struct wp_hbconn *c, const struct wp_sockaddr *authority,
                                   const char *baggage, const char *forwarded,
                                   const char *traceparent, void *app);

/* Server: answers the CONNECT. 200 opens the tunnel (HEADERS without
 * END_STREAM); 400/401/503 (or any other status) end the stream.
 * 0, -EALREADY, or -ENOMEM. */
int wp_hbstream_respond(struct wp_hbstream *s, int status);
/* Copies up to len tunnel bytes for the peer into the stream's buffer.
 * Returns the bytes accepted (0: full, wait for on_writable) or -EPIPE
 * after wp_hbstream_shutdown/close. */
ssize_t wp_hbstream_write(struct wp_hbstream *s, const uint8_t *data, size_t len);
/* Half-close towards the peer: an empty DATA with END_STREAM once the
 * buffer is sent. */
int wp_hbstream_shutdown(struct wp_hbstream *s);
/* Acknowledges n bytes of on_data as taken by the upstream (opens the
 * peer's window). */
int wp_hbstream_consume(struct wp_hbstream *s, size_t n);
/* Resets the stream (RST_STREAM code, e.g. NGHTTP2_CANCEL for EOF). */
int wp_hbstream_reset(struct wp_hbstream *s, uint32_t h2_error);
void wp_hbstream_set_app(struct wp_hbstream *s, void *app);
void *wp_hbstream_app(const struct wp_hbstream *s);
struct wp_hbconn *wp_hbstream_conn(const struct wp_hbstream *s);
int32_t wp_hbstream_id(const struct wp_hbstream *s);
/* Server: the request (see struct wp_hbone_req). */
const struct wp_hbone_req *wp_hbstream_request(const struct wp_hbstream *s);
/* Bytes waiting in the send buffer. */
size_t wp_hbstream_pending(const struct wp_hbstream *s);

#endif /* WP_DP_HBONE_H */
