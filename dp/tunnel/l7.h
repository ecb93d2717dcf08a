/*
 * L7 in the tunnel (issue 6): the per-tunnel and per-worker state tunnel.c
 * keeps for HTTP/1.1 proxying. The glue itself is dp/tunnel/l7_glue.c
 * (with l7_h2_glue.c for HTTP/2), sharing the layer's types and functions
 * through tunnel_int.h.
 *
 * A CONNECT to a service port whose protocol is HTTP (appProtocol or port
 * name prefix `http`) is answered 200 at once and becomes a downstream L7
 * tunnel: end 0 the inbound stream, end 1 a struct wp_h1p_sess
 * (dp/l7/h1proxy.h) that parses requests, routes them and balances them.
 * Every upstream connection the proxy asks for is an upstream L7 tunnel:
 * end 0 the proxy's struct wp_h1p_up, end 1 a plaintext TCP connection or an
 * originated HBONE stream, made exactly as for L4 tunnels. The proxy pools
 * those per worker (keep-alive), so one upstream tunnel serves requests of
 * many downstream tunnels over its life.
 *
 * HTTP/2 ports (http2, grpc, grpc-web, kubernetes.io/h2c; or sniffed by
 * the connection preface) get the h2c / gRPC proxy instead
 * (dp/l7/h2proxy.h, glue in dp/tunnel/l7_h2_glue.c): end 1 of the
 * downstream tunnel is a struct wp_h2p_sess, end 0 of an upstream tunnel a
 * struct wp_h2p_up, an h2c connection whose streams serve requests of any
 * session of the worker at the same time.
 *
 * An HTTP/1.1 port whose client opens with the HTTP/2 preface (h2c with
 * prior knowledge; Envoy's codec auto-detection serves both there) gets an
 * h2c session too, opened with WP_H2P_SESS_H1_UPSTREAM: its requests go to
 * HTTP/1.1 upstream connections (struct wp_h2p_up with up->h1, one request
 * at a time, kept alive per worker and endpoint), the port's protocol.
 */
#ifndef WP_DP_TUNNEL_L7_H
#define WP_DP_TUNNEL_L7_H

#include <stdbool.h>
#include <stdint.h>

#include "h1proxy.h"
#include "h2proxy.h"
#include "wp/addr_types.h"
#include "wp/route.h"

struct tunnel;
struct wp_tun_port;

#define WP_TUNNEL_L7_AUTH_MAX 128

/* In struct tunnel. */
struct wp_tunnel_l7_tun {
	struct wp_h1p_sess *sess; /* downstream L7 tunnel: its proxy session */
	struct wp_h1p_up *up;     /* upstream L7 tunnel: the proxy's connection */
	struct tunnel *next;      /* pump list */
	bool listed;              /* on the pump list */
	bool close;               /* upstream: the proxy let go of it, close the transport */
	bool fin;                 /* ... with nothing in flight: FIN a plain TCP one */
	bool sniff; /* L4 tunnel to a port of unknown protocol: the first client bytes decide */
	bool no_session; /* ... they were HTTP but no proxy session was free: reset */
	/* downstream tunnel to an HTTP/1.1 port, no client bytes yet: an HTTP/2
	 * preface turns it into an h2c session with HTTP/1.1 upstreams */
	bool h2probe;
	struct wp_sockaddr dest; /* downstream: the CONNECT :authority (looked up per snapshot) */
	uint64_t routes_version; /* downstream: snapshot version of the table the session has */
	bool routes_valid;
	bool has_src;
	struct wp_addr src; /* downstream: the client (Forwarded for=, else the HBONE peer) */
	char auth[WP_TUNNEL_L7_AUTH_MAX]; /* downstream: "<service hostname>:<port>" */
	struct wp_h2p_sess *h2sess;       /* downstream h2c tunnel: its session (l7_h2_glue.c) */
	struct wp_h2p_up *h2up;           /* upstream h2c connection */
};

/* In struct wp_tunnel_worker. */
struct wp_tunnel_l7_worker {
	struct wp_h1p_core *core; /* NULL: L7 disabled (could not allocate) */
	struct wp_route_core rc;
	struct tunnel *pump;        /* tunnels whose proxy side has work */
	struct wp_h2p_core *h2core; /* h2c / gRPC proxy; NULL: HTTP/2 ports stay L4 */
	struct wp_tun_port *h2port; /* the port h2c upstreams are opened on */
};

#endif /* WP_DP_TUNNEL_L7_H */
