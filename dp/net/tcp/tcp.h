/*
 * The per-core user-space TCP stack (RFC 9293), written sans-I/O.
 *
 * One struct wp_tcp_stack lives on each worker lcore and owns every TCP
 * connection of that core: control blocks, send/receive buffers and the
 * TIME_WAIT table come from pools sized at wp_tcp_stack_create(); nothing on
 * the packet path calls malloc. The stack never touches a device or a clock:
 *
 *   input   the worker hands each TCP segment (header + payload, already
 *           checked by dp/net for IPv4 validity) to wp_tcp_input() with the
 *           current time;
 *   output  segments leave through the wp_tcp_io_ops the worker gave at
 *           create: tx_alloc() returns room for one segment (the worker keeps
 *           headroom for Ethernet + IPv4 in front of it), the stack writes the
 *           whole TCP header, options, payload and checksum, then tx_send();
 *   time    the worker calls wp_tcp_timers() once per loop iteration (a 1 ms
 *           timer wheel: retransmission, delayed ACK, persist, keepalive,
 *           TIME_WAIT expiry).
 *
 * Layers above (TLS, HBONE, HTTP, the diagnostic services in tcp_diag.h) use
 * the connection API at the bottom of this file: callbacks for events, plus
 * wp_tcp_send() / wp_tcp_recv_resume() / wp_tcp_shutdown() / wp_tcp_close() /
 * wp_tcp_abort().
 *
 * Every call of this API must be made on the stack's own lcore. Callbacks run
 * synchronously from inside wp_tcp_input(), wp_tcp_timers() or an API call;
 * they may call back into the API (send, shutdown, close, abort, resume).
 */
#ifndef WP_DP_TCP_H
#define WP_DP_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "wp/addr_types.h"
#include "wp/common.h"

struct wp_tcp_stack;
struct wp_tcp_conn;

#define WP_TCP_MAX_LISTENERS 32
#define WP_TCP_MAX_OOO       16 /* upper bound for wp_tcp_config.max_ooo_ranges */

enum wp_tcp_state {
	WP_TCP_CLOSED = 0, /* a block whose connection ended, waiting for the app to read */
	WP_TCP_SYN_SENT,
	WP_TCP_SYN_RECEIVED,
	WP_TCP_ESTABLISHED,
	WP_TCP_FIN_WAIT_1,
	WP_TCP_FIN_WAIT_2,
	WP_TCP_CLOSE_WAIT,
	WP_TCP_CLOSING,
	WP_TCP_LAST_ACK,
	WP_TCP_TIME_WAIT, /* only while the app still reads; then a compact TIME_WAIT entry */
	WP_TCP_STATE_MAX
};

enum wp_tcp_close_reason {
	WP_TCP_CLOSE_NORMAL,  /* both FINs exchanged and acknowledged */
	WP_TCP_CLOSE_RESET,   /* the peer sent an acceptable RST (or refused our SYN) */
	WP_TCP_CLOSE_TIMEOUT, /* retransmissions, SYN retries or keepalive exhausted */
	WP_TCP_CLOSE_ABORTED, /* the stack dropped it (listener removed) */
};

/* Limits and knobs. wp_tcp_config_default() fills sensible values. */
struct wp_tcp_config {
	uint32_t local_ip;              /* network order; source address of active opens */
	uint32_t max_conns;             /* control blocks (embryonic + established + closing) */
	uint32_t syn_backlog;           /* per listener: SYN_RECEIVED blocks before SYN cookies */
	uint32_t accept_backlog;        /* per listener: established, not yet accepted */
	uint32_t time_wait_max;         /* compact TIME_WAIT entries; the oldest is recycled */
	uint32_t rcv_buf;               /* receive buffer (= max window) per connection, bytes */
	uint32_t snd_buf;               /* send buffer per connection, bytes */
	uint32_t rcv_buf_count;         /* receive buffers in the pool (0: max_conns) */
	uint32_t snd_buf_count;         /* send buffers in the pool (0: max_conns) */
	uint16_t mss;                   /* our MSS (advertised; the peer's is clamped to it) */
	uint16_t max_ooo_ranges;        /* out-of-order ranges held per connection (<= 16) */
	uint32_t rto_min_us;            /* 200 ms like Linux */
	uint32_t rto_max_us;            /* backoff ceiling */
	uint32_t rto_initial_us;        /* before the first RTT sample (SYN) */
	uint8_t max_retries;            /* RTO expiries for one segment before abort */
	uint8_t syn_retries;            /* SYN retransmissions before connect fails */
	uint8_t synack_retries;         /* SYN-ACK retransmissions before the embryo dies */
	uint8_t keepalive_probes;       /* unanswered probes before abort */
	uint32_t delack_us;             /* delayed ACK (<= 40 ms) */
	uint32_t time_wait_us;          /* TIME_WAIT duration (short: proxy) */
	uint32_t fin_wait2_us;          /* FIN_WAIT_2 limit once the app closed */
	uint32_t keepalive_idle_ms;     /* 0: keepalive off (each connection's default) */
	uint32_t keepalive_intvl_ms;    /* between probes */
	uint32_t challenge_ack_per_sec; /* RFC 5961 challenge ACK rate limit */
	uint16_t eph_port_lo, eph_port_hi; /* ephemeral range for active opens */
	bool window_scaling, timestamps, sack;
	/* the device fills in checksums: segments leave with the pseudo-header
	 * sum in the field (wp_tcp_phdr_sum()), not the checksum */
	bool tx_cksum_offload;
	/* TCP segmentation offload: new data goes out in segments of up to
	 * tso_max payload bytes (0: off) that the device cuts into segments
	 * of at most tso_mss bytes of options and payload each (<= mss) */
	uint32_t tso_max;
	uint16_t tso_mss;
	/* receive coalescing (GRO): wp_tcp_input() only files a connection's
	 * segments; its app sees the data, and the peer gets its ACK, once per
	 * receive burst, at wp_tcp_rx_flush() (which the caller must then make
	 * after each burst, before wp_tcp_timers()) */
	bool rx_coalesce;
	uint64_t seed; /* 0: secret from getrandom(); else derived (tests) */
};

/*
 * How segments leave. tx_alloc() returns room for <len> bytes of TCP segment
 * (or NULL: the stack counts TCP_TX_ALLOC_FAIL and relies on retransmission)
 * and an opaque handle; the stack fills all <len> bytes and hands the handle
 * to tx_send(), which then owns it (prepends IPv4/Ethernet and transmits).
 * With tso_max set, <len> may exceed the MSS: tx_send() then gets the payload
 * per wire segment in <tso_segsz> (0 for an ordinary segment), and the
 * checksum field holds the pseudo-header sum without the length, for the
 * device to finish per segment. Addresses are IPv4, network order.
 */
struct wp_tcp_io_ops {
	uint8_t *(*tx_alloc)(void *arg, uint16_t len, void **handle);
	void (*tx_send)(void *arg, void *handle, uint32_t src_ip, uint32_t dst_ip, uint16_t len,
	                uint16_t tso_segsz);
	void *arg;
};

/* Snapshot of the stack's occupancy ("no control block left behind"). */
struct wp_tcp_gauges {
	uint32_t conns;                   /* control blocks in use */
	uint32_t state[WP_TCP_STATE_MAX]; /* ... by state */
	uint32_t time_wait;               /* compact TIME_WAIT entries */
	uint32_t syn_queue, accept_queue; /* summed over listeners */
	uint32_t rcv_bufs, snd_bufs;      /* pool buffers in use */
	uint32_t listeners;
};

void wp_tcp_config_default(struct wp_tcp_config *cfg);

/*
 * Creates a stack: allocates every pool now (start-up call). <ctr> is the
 * worker's counter array indexed by enum wp_ctr (wp/counters.h); it must
 * outlive the stack. Returns NULL on bad config or allocation failure.
 */
struct wp_tcp_stack *wp_tcp_stack_create(const struct wp_tcp_config *cfg,
                                         const struct wp_tcp_io_ops *ops, uint64_t *ctr);

/* Frees the stack and every connection without callbacks or segments. */
void wp_tcp_stack_destroy(struct wp_tcp_stack *st);

/*
 * Processes one TCP segment of <seg_len> bytes addressed src_ip -> dst_ip
 * (IPv4, network order). The buffer stays the caller's; payload is copied.
 * Returns 0 when the segment was processed (protocol-level drops included,
 * each counted) or -EINVAL when it was malformed (truncated, bad data
 * offset, bad checksum, bad flags; counted).
 */
int wp_tcp_input(struct wp_tcp_stack *st, uint32_t src_ip, uint32_t dst_ip, const uint8_t *seg,
                 uint16_t seg_len, uint64_t now_us);

/* wp_tcp_input() for a segment whose checksum the device verified. */
int wp_tcp_input_verified(struct wp_tcp_stack *st, uint32_t src_ip, uint32_t dst_ip,
                          const uint8_t *seg, uint16_t seg_len, uint64_t now_us);

/* A run of payload bytes in a segment that spans several buffers. */
struct wp_tcp_piece {
	const uint8_t *p;
	uint32_t len;
};

/*
 * wp_tcp_input_verified() for a segment held in several buffers, as a
 * device's LRO or a jumbo frame hands it over in an mbuf chain: <seg_len>
 * bytes at <seg> (the TCP header and options whole, then the first payload
 * bytes), then the rest of the payload in <more>[0..nmore). Its checksum
 * must have been verified, by the device or the caller.
 */
int wp_tcp_input_pieces(struct wp_tcp_stack *st, uint32_t src_ip, uint32_t dst_ip,
                        const uint8_t *seg, uint16_t seg_len, const struct wp_tcp_piece *more,
                        unsigned nmore, uint64_t now_us);

/*
 * With rx_coalesce: hands each connection that received segments since the
 * last call its in-order data (one callback for the burst), then sends what
 * they made due (one ACK for the burst, new data the ACKs allowed).
 * Returns how many connections it served.
 */
unsigned wp_tcp_rx_flush(struct wp_tcp_stack *st, uint64_t now_us);

/* Runs expired timers. Call once per loop iteration with a monotonic clock. */
void wp_tcp_timers(struct wp_tcp_stack *st, uint64_t now_us);

void wp_tcp_stack_gauges(const struct wp_tcp_stack *st, struct wp_tcp_gauges *g);

/* ---- passive open -------------------------------------------------------- */

/*
 * Called when a connection to a listener is established. The callee takes
 * the connection by calling wp_tcp_conn_set_callbacks() and returning 0; from
 * then on it owns the pointer (see "lifetime" below). Return -EAGAIN to leave
 * it in the accept queue (retry with wp_tcp_accept_resume()), any other
 * negative value to refuse it (RST).
 */
typedef int (*wp_tcp_accept_cb)(struct wp_tcp_conn *c, void *arg);

/* Listens on <port> (any local address). 0, -EADDRINUSE or -ENOSPC. */
int wp_tcp_listen(struct wp_tcp_stack *st, uint16_t port, wp_tcp_accept_cb cb, void *arg);
/* Stops listening; embryonic and not-yet-accepted connections are reset. */
int wp_tcp_unlisten(struct wp_tcp_stack *st, uint16_t port);
/* Offers the accept queue of <port> to its accept callback again. */
void wp_tcp_accept_resume(struct wp_tcp_stack *st, uint16_t port);

/* ---- connection API ------------------------------------------------------ */

typedef void (*wp_tcp_connected_cb)(struct wp_tcp_conn *c, void *arg);
/*
 * In-order bytes for the app. Returns how many it consumed (<= len); bytes
 * left unconsumed stay buffered, the advertised window shrinks, and the stack
 * offers them again only after wp_tcp_recv_resume().
 */
typedef size_t (*wp_tcp_data_cb)(struct wp_tcp_conn *c, void *arg, const uint8_t *data, size_t len);
/* The peer sent FIN and every byte before it was consumed (read side done). */
typedef void (*wp_tcp_eof_cb)(struct wp_tcp_conn *c, void *arg);
/* Send space was freed after wp_tcp_send() accepted less than asked. */
typedef void (*wp_tcp_writable_cb)(struct wp_tcp_conn *c, void *arg);
/* The connection is over; the pointer is invalid once this returns. */
typedef void (*wp_tcp_closed_cb)(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why);

struct wp_tcp_callbacks {
	wp_tcp_connected_cb connected; /* active opens only */
	wp_tcp_data_cb data;           /* NULL: bytes are discarded */
	wp_tcp_eof_cb eof;             /* optional */
	wp_tcp_writable_cb writable;   /* optional */
	wp_tcp_closed_cb closed;       /* optional */
};

/*
 * Lifetime of a struct wp_tcp_conn pointer (the stack owns the memory):
 *  - it becomes the app's when wp_tcp_connect() returns it or when the
 *    accept callback returns 0;
 *  - it stays valid until either the closed callback returns (the stack
 *    ended it: normal close, reset, timeout), or the app's own call to
 *    wp_tcp_close() or wp_tcp_abort() returns; after wp_tcp_close() /
 *    wp_tcp_abort() no callback is made for it any more;
 *  - the app must eventually do one of these; a connection whose peer closed
 *    normally reports closed(NORMAL) only after the app consumed every byte
 *    and the eof callback ran.
 * Callback structs must outlive the connections that use them.
 */

/*
 * Opens a connection from cfg.local_ip:<local_port> (0: pick a free
 * ephemeral port) to dst_ip:dst_port and sends the SYN. On 0, *connp is the
 * app's; connected() or closed() reports the outcome. -EADDRINUSE (4-tuple
 * busy), -EADDRNOTAVAIL (no free port), -ENOBUFS (no control block).
 */
int wp_tcp_connect(struct wp_tcp_stack *st, uint32_t dst_ip, uint16_t dst_port, uint16_t local_port,
                   const struct wp_tcp_callbacks *cbs, void *arg,
                   struct wp_tcp_conn **connp) WP_MUST_CHECK;

typedef bool (*wp_tcp_port_pred_cb)(uint16_t port, void *arg);

/*
 * Walks the ephemeral range (from a rotating start) and stores in *port the
 * first local port that is free towards dst_ip:dst_port (no connection, no
 * TIME_WAIT entry, no listener) and for which pred(port, pred_arg) is true
 * (pred NULL: any). The glue uses pred to pick a port whose RSS hash lands on
 * this core. 0 or -EADDRNOTAVAIL.
 */
int wp_tcp_pick_port(struct wp_tcp_stack *st, uint32_t dst_ip, uint16_t dst_port,
                     wp_tcp_port_pred_cb pred, void *pred_arg, uint16_t *port) WP_MUST_CHECK;

/* Sets the callbacks (inside the accept callback, or to swap layers later). */
void wp_tcp_conn_set_callbacks(struct wp_tcp_conn *c, const struct wp_tcp_callbacks *cbs,
                               void *arg);

/*
 * Queues up to <len> bytes; sends as soon as the windows allow (no Nagle).
 * Returns bytes accepted (0 when the send buffer is full: writable() follows
 * when space frees), -EPIPE after shutdown, -ENOTCONN in a state that cannot
 * send, -ENOBUFS when the send-buffer pool is empty (counted; retry later).
 */
ssize_t wp_tcp_send(struct wp_tcp_conn *c, const void *data, size_t len);

/* Bytes the app can still queue right now. */
size_t wp_tcp_send_space(const struct wp_tcp_conn *c);

/*
 * Zero-copy queueing, for a layer that can write its bytes where they go
 * (TLS sealing records): the send buffer's free space as up to two pieces
 * (v[0] then v[1]; it wraps once), and its total size, or the errors of
 * wp_tcp_send. Nothing is queued until wp_tcp_send_commit(c, n) queues
 * the first n bytes written there (n <= the size; 0 when nothing was
 * written; no other call on c in between). A free space smaller than
 * <want> arms writable(), as a send that takes less than offered does.
 */
ssize_t wp_tcp_send_reserve(struct wp_tcp_conn *c, size_t want, struct iovec v[2]);
void wp_tcp_send_commit(struct wp_tcp_conn *c, size_t n);

/*
 * Delayed ACKs for request/response traffic (off by default). With <on>,
 * once the connection answers data within delack_us of receiving it, the
 * ACK of a short pushed segment is not sent at once: the answer carries it,
 * or the delayed-ACK timer sends it (and the connection ACKs at once again
 * until it next answers in time). A keep-alive exchange then costs no pure
 * ACK. The app must call wp_tcp_quickack() whenever it consumed what came
 * and waits for the rest of a unit (a TLS record, an HTTP message): a peer
 * whose Nagle holds that rest back until it sees an ACK would otherwise
 * stall until the timer.
 */
void wp_tcp_set_delack(struct wp_tcp_conn *c, bool on);

/*
 * This connection's keepalive, over the stack's: after <idle_ms> without a
 * segment from the peer (0: keepalive off), a probe every <intvl_ms>; the
 * connection is reset (closed WP_TCP_CLOSE_TIMEOUT) when <probes> in a
 * row go unanswered. Takes effect at once on an open connection, from
 * the peer's last segment; on one still connecting, once it is open.
 */
void wp_tcp_set_keepalive(struct wp_tcp_conn *c, uint32_t idle_ms, uint32_t intvl_ms,
                          uint8_t probes);

/* Sends a held ACK now (see wp_tcp_set_delack); nothing when none is held. */
void wp_tcp_quickack(struct wp_tcp_conn *c);

/* Offers buffered received bytes to the data callback again (backpressure end). */
void wp_tcp_recv_resume(struct wp_tcp_conn *c);

/* Half-close: FIN after all queued data; reading continues. 0 or -ENOTCONN. */
int wp_tcp_shutdown(struct wp_tcp_conn *c);

/*
 * The app is done with <c>: no more callbacks, the pointer is invalid on
 * return. Queued data is still delivered and FIN sent (graceful), unless
 * unread received data is pending or more arrives later: then RST.
 */
void wp_tcp_close(struct wp_tcp_conn *c);

/* Sends RST and frees the connection now; the pointer is invalid on return. */
void wp_tcp_abort(struct wp_tcp_conn *c);

struct wp_tcp_conn_info {
	struct wp_addr local, remote;
	uint16_t local_port, remote_port;
	enum wp_tcp_state state;
	uint32_t snd_queued; /* bytes not yet acknowledged */
	uint32_t rcv_queued; /* bytes received, not consumed */
	uint32_t srtt_us, rto_us, cwnd, snd_wnd, mss;
	bool ts_ok, sack_ok, ws_ok;
};

void wp_tcp_conn_info(const struct wp_tcp_conn *c, struct wp_tcp_conn_info *info);

const char *wp_tcp_state_name(enum wp_tcp_state s);

#endif /* WP_DP_TCP_H */
