/*
 * The tunnel layer's private header: what tunnel.c (sessions, tunnels,
 * the splice, CONNECT decisions) and the L7 host adapters l7_glue.c
 * (HTTP/1.1 proxy) and l7_h2_glue.c (h2c / gRPC proxy) share. Nothing
 * outside dp/tunnel includes it.
 */
#ifndef WP_DP_TUNNEL_TUNNEL_INT_H
#define WP_DP_TUNNEL_TUNNEL_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "hbone.h"
#include "lb_cache.h"
#include "pipeline.h"
#include "bq.h"
#include "l7.h"
#include "tunnel.h"
#include "twheel.h"
#include "tcp.h"
#include "wp/counters.h"
#include "wp/snapshot.h"

#define IOBUF           16384
#define POOL_BUCKETS    1024 /* originated connections: hash of (dst ip, identity) */
#define MAX_GW_PER_SESS 4
#define TICK_MS         100 /* the timer wheel's tick, and the poll's other periodic work */
#define IDLE_TRIM_MS    1000
#define HBONE_PORT      15008

enum sess_state {
	SESS_FREE = 0,
	SESS_CONNECTING, /* client: TCP SYN sent */
	SESS_HANDSHAKE,  /* TLS handshake running */
	SESS_READY,      /* HTTP/2 session up */
	SESS_CLOSING,    /* flushing the last ciphertext (alert, GOAWAY) */
	SESS_DEAD,       /* on the dead list */
};

struct tunnel;

/* One of the worker's ports (dp/app/app.h) as the tunnels use it: the accept
 * callback's argument, and where a session's upstreams are opened. */
struct wp_tun_port {
	struct wp_tunnel_worker *tw;
	const struct wp_app_port *io;
};

struct sess {
	struct wp_tunnel_worker *tw;
	struct wp_tun_port *port;
	struct wp_tcp_conn *tcp; /* NULL once TCP is gone */
	struct wp_tls_conn *tls;
	struct wp_hbconn *h2;
	uint8_t state;
	bool client;
	bool dirty;       /* on the dirty list */
	bool in_pump;     /* pump running: TCP callbacks only feed */
	bool need_resume; /* TCP holds ciphertext that TLS refused */
	bool drained;     /* GOAWAY sent */
	bool tcp_eof;
	bool hs_gated;  /* server: holds a place in the handshake gate */
	bool hs_queued; /* on tw->hs_wait: its handshake step waits its turn */
	uint8_t n_gw;
	uint64_t gw_hash[MAX_GW_PER_SESS]; /* server: Gateways it carried tunnels for */
	uint64_t deadline_ms;              /* set-up must finish by then (0 = none) */
	uint64_t last_active_ms;
	bool trimmed;                /* TLS buffers released since last active */
	struct wp_twheel_node timer; /* in tw->wheel at its next deadline (wp_tun_sess_timer) */
	/* client (originate) side */
	uint32_t dst_ip; /* network order */
	uint64_t id_hash;
	uint32_t n_waiting;
	struct tunnel *waiting; /* tunnels waiting for the HTTP/2 session */
	struct sess *pnext;     /* pool bucket */
	bool on_dead;
	struct sess *next, *prev; /* live list */
	struct sess *dnext;       /* dirty list */
	struct sess *hnext;       /* tw->hs_wait */
	struct sess *xnext;       /* dead list */
};

enum end_kind {
	END_NONE = 0,
	END_H2,  /* an HTTP/2 stream (inbound, or originated) */
	END_TCP, /* a plaintext TCP connection */
	END_L7,  /* the HTTP proxy (dp/tunnel/l7.h) */
};

struct end {
	uint8_t kind;
	bool eof_in; /* the peer half-closed towards us */
	bool shut;   /* we half-closed towards the peer */
	bool gone;   /* the stream / connection no longer exists */
	struct wp_hbstream *s;
	struct wp_tcp_conn *c;
	struct sess *sess; /* END_H2: its connection */
	struct wp_bq q;    /* bytes waiting to be written to this end */
};

struct tunnel {
	struct wp_tunnel_worker *tw;
	struct end e[2]; /* 0: downstream (inbound stream), 1: upstream */
	struct wp_sockaddr target;
	bool live;
	bool responded; /* the inbound CONNECT got its answer */
	bool dead;
	bool counted_done;
	struct tunnel *wnext; /* waiting for an originated session */
	struct tunnel *dnext; /* dead list */
	struct wp_tunnel_l7_tun l7;
	/* downstream tunnel: its identity and policy for the request pipeline
	 * (dp/l7/pipeline.h); tcp_denied: authorization refused it as opaque
	 * TCP, but its port's protocol is sniffed: only HTTP may pass (each
	 * request then decided), anything else is reset */
	struct wp_pipe_conn pc;
	bool tcp_denied;
	/* L4 tunnel to a service port: counted open on its endpoint (what
	 * LEAST_REQUEST reads) from the pick until the tunnel is freed or its
	 * upstream is dropped for the L7 proxy (end_lb()) */
	struct wp_lb_active lb;
	/* opaque TCP idle timeout (DestinationRule tcp.idleTimeout, Istio's 1 h
	 * by default; 0: none): armed in tw->idle_wheel once the CONNECT is
	 * answered, closed when no byte passed either way for idle_ms */
	struct wp_twheel_node idle;
	uint32_t idle_ms;
	uint64_t active_ms; /* when a byte last passed */
	/* DestinationRule tcp.tcpKeepalive for the plaintext upstream connection
	 * wp_tun_connect_plain() opens (an opaque tunnel's, or an L7 proxy's
	 * upstream); time_ms 0: none */
	struct wp_route_keepalive keepalive;
};

struct wp_tunnel_worker {
	const struct wp_app_io *worker; /* the worker's I/O interface (dp/app/app.h) */
	struct wp_tunnel_shared *sh;
	uint64_t *ctr;
	struct wp_h2mem *mem;
	struct sess *sess_pool;
	struct sess *sess_free;
	struct sess *live;
	struct sess *dirty, *dead_sess;
	/* sessions whose handshake step waits for the next iteration (FIFO,
	 * via hnext; hsgate.h's share) */
	struct sess *hs_wait, **hs_wait_tail;
	struct wp_hsshare hs_share;
	uint32_t n_sess, n_tunnels;
	struct tunnel *tun_pool;
	struct tunnel *tun_free; /* via wnext */
	struct tunnel *dead_tun;
	struct sess *pool[POOL_BUCKETS];
	struct wp_lb_cache *lbc;  /* L4 tunnels' per-core load-balancer state */
	struct wp_pipe_core pipe; /* request pipeline: authorization scratch */
	uint64_t now_ms, last_tick_ms;
	struct wp_twheel wheel;      /* sessions by their next deadline */
	struct wp_twheel idle_wheel; /* opaque tunnels by their idle deadline */
	uint64_t snap_version;
	const struct wp_tls_ctx *seen_ctx;
	uint64_t seen_reload_failures;
	bool draining;
	bool listening[WP_MAX_PORTS];
	struct wp_tun_port ports[WP_MAX_PORTS];
	char td[256]; /* trust domain, for the expected upstream identity */
	struct wp_tunnel_gauges g;
	struct wp_tunnel_l7_worker l7;
};

static inline void ctr(struct wp_tunnel_worker *tw, enum wp_ctr k)
{
	wp_ctr_inc(tw->ctr, k);
}

/* Shared between tunnel.c, l7_glue.c and l7_h2_glue.c (defined in the
 * file named). */
int wp_tun_connect_hbone(struct tunnel *t, struct wp_tun_port *port,
                         const char *peer_id);                                  /* tunnel.c */
int wp_tun_connect_plain(struct tunnel *t, struct wp_tun_port *port);           /* tunnel.c */
void wp_tun_end_flush(struct tunnel *t, int i);                                 /* tunnel.c */
void wp_tun_end_shut(struct tunnel *t, int i);                                  /* tunnel.c */
size_t wp_tun_end_write(struct tunnel *t, int i, const uint8_t *p, size_t len); /* tunnel.c */
const struct wp_addr *wp_tun_l7_client(struct tunnel *t, const struct sess *s,
                                       const struct wp_hbone_req *req);  /* l7_glue.c */
void wp_tun_l7_connected(struct tunnel *t);                              /* l7_glue.c */
void wp_tun_l7_detach(struct tunnel *t);                                 /* l7_glue.c */
void wp_tun_l7_drain(struct wp_tunnel_worker *tw);                       /* l7_glue.c */
void wp_tun_l7_eof(struct tunnel *t);                                    /* l7_glue.c */
size_t wp_tun_l7_input(struct tunnel *t, const uint8_t *p, size_t len);  /* l7_glue.c */
void wp_tun_l7_mark(struct tunnel *t);                                   /* l7_glue.c */
void wp_tun_l7_pump_all(struct wp_tunnel_worker *tw);                    /* l7_glue.c */
void wp_tun_l7_refresh_routes(struct tunnel *t);                         /* l7_glue.c */
void wp_tun_l7_sniff(struct tunnel *t, const uint8_t *data, size_t len); /* l7_glue.c */
void wp_tun_l7_sniff_arm(struct tunnel *t, const struct wp_hbone_req *req,
                         const struct wp_snap_dest *d); /* l7_glue.c */
bool wp_tun_l7_sniffs(const struct wp_tunnel_worker *tw,
                      const struct wp_snap_svc_port *p); /* l7_glue.c */
bool wp_tun_l7_start(struct sess *s, struct wp_hbstream *hs, const struct wp_hbone_req *req,
                     const struct wp_snapshot *snap, const struct wp_snap_dest *d); /* l7_glue.c */
void wp_tun_l7_unlist(struct tunnel *t);                                            /* l7_glue.c */
void wp_tun_l7_refuse(struct wp_tunnel_worker *tw, struct wp_hbstream *hs);         /* l7_glue.c */
struct tunnel *wp_tun_l7_up_alloc(struct wp_tunnel_worker *tw, const struct wp_snap_endpoint *ep,
                                  int *rc); /* l7_glue.c */
int wp_tun_l7_up_connect(struct tunnel *t, const struct wp_snap_endpoint *ep,
                         struct wp_tun_port *port); /* l7_glue.c */
void wp_tun_l7_up_let_go(struct tunnel *t);         /* l7_glue.c */
bool wp_tun_l7_wants(const struct wp_tunnel_worker *tw,
                     const struct wp_snap_svc_port *p);                      /* l7_glue.c */
void wp_tun_l7_worker_fini(struct wp_tunnel_worker *tw);                     /* l7_glue.c */
void wp_tun_l7_worker_init(struct wp_tunnel_worker *tw);                     /* l7_glue.c */
void wp_tun_l7_worker_stop(struct wp_tunnel_worker *tw);                     /* l7_glue.c */
bool wp_tun_l7h2_connected(struct tunnel *t);                                /* l7_h2_glue.c */
bool wp_tun_l7h2_detach(struct tunnel *t);                                   /* l7_h2_glue.c */
void wp_tun_l7h2_drain(struct wp_tunnel_worker *tw);                         /* l7_h2_glue.c */
bool wp_tun_l7h2_eof(struct tunnel *t);                                      /* l7_h2_glue.c */
bool wp_tun_l7h2_hold(const uint8_t *p, size_t len);                         /* l7_h2_glue.c */
size_t wp_tun_l7h2_input(struct tunnel *t, const uint8_t *p, size_t len);    /* l7_h2_glue.c */
bool wp_tun_l7h2_on_http(struct tunnel *t, const uint8_t *data, size_t len); /* l7_h2_glue.c */
bool wp_tun_l7h2_proto(const struct wp_snap_svc_port *p);                    /* l7_h2_glue.c */
bool wp_tun_l7h2_pump(struct tunnel *t);                                     /* l7_h2_glue.c */
bool wp_tun_l7h2_sniff(struct tunnel *t, const uint8_t *data, size_t len);   /* l7_h2_glue.c */
void wp_tun_l7h2_sniff_done(struct tunnel *t, bool l7);                      /* l7_h2_glue.c */
bool wp_tun_l7h2_start(struct sess *s, struct wp_hbstream *hs, const struct wp_hbone_req *req,
                       const struct wp_snapshot *snap,
                       const struct wp_snap_dest *d);   /* l7_h2_glue.c */
void wp_tun_l7h2_tick(struct wp_tunnel_worker *tw);     /* l7_h2_glue.c */
void wp_tun_l7_fault_tick(struct wp_tunnel_worker *tw); /* l7_h2_glue.c */
bool wp_tun_l7h2_wants(const struct wp_tunnel_worker *tw,
                       const struct wp_snap_svc_port *p);  /* l7_h2_glue.c */
void wp_tun_l7h2_worker_fini(struct wp_tunnel_worker *tw); /* l7_h2_glue.c */
void wp_tun_l7h2_worker_init(struct wp_tunnel_worker *tw); /* l7_h2_glue.c */
void wp_tun_l7h2_worker_stop(struct wp_tunnel_worker *tw); /* l7_h2_glue.c */
void wp_tun_mark_dirty(struct sess *s);                    /* tunnel.c */
void wp_tun_peer_identity(const struct wp_tunnel_worker *tw, const char *ns, const char *sa,
                          char *buf, size_t len); /* tunnel.c */
void wp_tun_pipe_conn_fill(struct wp_pipe_conn *pc, struct wp_tunnel_worker *tw,
                           const struct sess *s, const struct wp_hbone_req *req,
                           const struct wp_snapshot *snap,
                           const struct wp_snap_dest *d); /* tunnel.c */
/* Copies the Telemetry settings of <d>'s waypoint (none without one). */
void wp_tun_pipe_conn_tel(struct wp_pipe_conn *pc, const struct wp_snapshot *snap,
                          const struct wp_snap_dest *d); /* tunnel.c */
bool wp_tun_req_source(const struct sess *s, const struct wp_hbone_req *req,
                       struct wp_addr *out);              /* tunnel.c */
struct tunnel *wp_tun_alloc(struct wp_tunnel_worker *tw); /* tunnel.c */
void wp_tun_check_done(struct tunnel *t);                 /* tunnel.c */
void wp_tun_free(struct tunnel *t);                       /* tunnel.c */
void wp_tun_kill(struct tunnel *t);                       /* tunnel.c */
void wp_tun_respond(struct tunnel *t, int status);        /* tunnel.c */
void wp_tun_unwait(struct tunnel *t);                     /* tunnel.c */
void wp_tun_client_ready(struct sess *s);                 /* tunnel.c */
int wp_tun_on_accept(struct wp_tcp_conn *c, void *arg);   /* session.c */
struct sess *wp_tun_sess_alloc(struct wp_tunnel_worker *tw, struct wp_tun_port *port,
                               bool client); /* session.c */
void wp_tun_sess_close(struct sess *s);      /* session.c */
void wp_tun_sess_free(struct sess *s);       /* session.c */
void wp_tun_hs_defer(struct sess *s);        /* session.c */
void wp_tun_sess_kill(struct sess *s);       /* session.c */
void wp_tun_sess_pump(struct sess *s);       /* session.c */
void wp_tun_sess_timer(struct sess *s);      /* session.c */
/* HTTP/2 callbacks of inbound (server) and originated (client) sessions
 * (tunnel.c), TCP callbacks of a session's connection (session.c) */
extern const struct wp_hbone_ops wp_tun_server_ops;
extern const struct wp_hbone_ops wp_tun_client_ops;
extern const struct wp_tcp_callbacks wp_tun_sess_tcp_cbs;

#endif /* WP_DP_TUNNEL_TUNNEL_INT_H */
