/*
 * The harness of the tunnel-layer tests (test_tunnel.c): dp/tunnel runs
 * over the I/O interface of dp/app.h without DPDK. Two user-space TCP
 * stacks pass segments to each other through an in-memory FIFO (the fake
 * I/O ops hand each segment to the stack owning its destination address):
 *
 *   W 10.0.0.1  the waypoint: the tunnel worker listens on 15008;
 *   P 10.0.0.2  the network: the HBONE client (TLS 1.3 with productpage's
 *               certificate from tests/pki/mkpki.sh, dp/tls + the dp/hbone
 *               client) and the plaintext destination on port 8080 (the
 *               echo Service's pod).
 *
 * The snapshot comes from the real resolver (cp/resolve) fed manifests and
 * is published in a real slot. The clock is the harness's: each pump round
 * advances it 1 ms. Each test executable includes this once; its functions
 * are static, used by every test.
 */
#ifndef WP_TESTS_UNIT_DP_TUNNEL_TUNNEL_HARNESS_H
#define WP_TESTS_UNIT_DP_TUNNEL_TUNNEL_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "hbone.h"
#include "mem.h"
#include "outlier.h"
#include "tcp.h"
#include "tls.h"
#include "tunnel.h"
#include "wp/addr.h"
#include "wp/config.h"
#include "wp/counters.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

#define W_IP      "10.0.0.1"
#define P_IP      "10.0.0.2"
#define DEST_PORT 8080
#define NSEG      8192

/* ---- the link: a FIFO of segments between the two stacks ---- */

struct seg {
	uint32_t src, dst;
	uint16_t len;
	uint8_t b[1600];
};

static struct {
	struct seg *q;
	unsigned head, tail; /* tail - head segments in flight */
	uint8_t tx[2048];    /* the one segment being built (alloc, then send) */
	uint64_t now_us;
} L;

static uint8_t *link_alloc(void *arg, uint16_t len, void **h)
{
	(void)arg;
	assert_true(len <= sizeof(L.q[0].b));
	*h = L.tx;
	return L.tx;
}

static void link_send(void *arg, void *h, uint32_t src, uint32_t dst, uint16_t len,
                      uint16_t tso_segsz)
{
	struct seg *s = &L.q[L.tail % NSEG];

	(void)arg;
	assert_int_equal(tso_segsz, 0); /* TSO is off here */
	(void)h;
	assert_true(L.tail - L.head < NSEG);
	s->src = src;
	s->dst = dst;
	s->len = len;
	memcpy(s->b, L.tx, len);
	L.tail++;
}

/* ---- the I/O interface the tunnel worker gets (dp/app.h) ---- */

static bool any_port(uint16_t port, void *arg)
{
	(void)port;
	(void)arg;
	return true;
}

static int h_pick_port(const struct wp_app_port *p, uint32_t dst_ip, uint16_t dst_port,
                       uint16_t *port)
{
	return wp_tcp_pick_port(p->tcp, dst_ip, dst_port, any_port, NULL, port);
}

static uint64_t h_now_us(void *ctx)
{
	(void)ctx;
	return L.now_us;
}

static void *h_zalloc(void *ctx, const char *name, size_t size, unsigned align)
{
	void *p;

	(void)ctx;
	(void)name;
	if (align < sizeof(void *))
		align = sizeof(void *);
	if (posix_memalign(&p, align, size) != 0)
		return NULL;
	memset(p, 0, size);
	return p;
}

static void h_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

/* ---- the world ---- */

struct cstream { /* one CONNECT stream of the test client */
	struct wp_hbstream *s;
	int status;
	bool eof, closed;
	enum wp_hbone_close why;
	uint32_t err;
	uint8_t rx[65536];
	size_t rxlen;
};

struct dest { /* the plaintext destination's connection */
	struct wp_tcp_conn *c;
	bool accepted, eof, closed, paused, echo;
	bool linger; /* at EOF, no FIN back: the connection stays half-open */
	enum wp_tcp_close_reason why;
	size_t rxlen;
	uint8_t rx[65536]; /* the first bytes (the echo tests' payloads) */
};

static char pki[256];
static struct {
	struct wp_config cfg;
	struct wp_tunnel_shared sh;
	bool drain;
	uint64_t wctr[WP_CTR_MAX], pctr[WP_CTR_MAX], cctr[WP_CTR_MAX];
	struct wp_tcp_stack *w, *p;
	uint32_t w_ip, p_ip;
	struct wp_snapshot_slot *slot;
	struct wp_resolver *res;
	struct wp_app_io io;
	struct wp_tunnel_worker *tw;
	/* the client */
	struct wp_tls_ctx *cctx;
	struct wp_h2mem *cmem;
	struct wp_tcp_conn *cc;
	struct wp_tls_conn *ctls;
	struct wp_hbconn *ch2;
	bool c_closed;
	struct cstream st[8];
	unsigned n_st;
	struct dest dest;
	uint8_t buf[16384];
} H;

static uint64_t now_ms(void)
{
	return L.now_us / 1000;
}

/* Hands every segment in flight to its stack (and what that makes, too). */
static bool deliver(void)
{
	bool moved = L.head != L.tail;

	while (L.head != L.tail) {
		struct seg s = L.q[L.head % NSEG];

		L.head++;
		if (s.dst == H.w_ip)
			(void)wp_tcp_input(H.w, s.src, s.dst, s.b, s.len, L.now_us);
		else if (s.dst == H.p_ip)
			(void)wp_tcp_input(H.p, s.src, s.dst, s.b, s.len, L.now_us);
	}
	return moved;
}

/* ---- the client: TCP -> TLS -> HTTP/2 on stack P ---- */

static void cli_on_response(struct wp_hbstream *s, int status)
{
	struct cstream *cs = wp_hbstream_app(s);

	cs->status = status;
}

static void cli_on_data(struct wp_hbstream *s, const uint8_t *d, size_t len)
{
	struct cstream *cs = wp_hbstream_app(s);
	size_t room = sizeof(cs->rx) - cs->rxlen;

	memcpy(cs->rx + cs->rxlen, d, WP_MIN(len, room));
	cs->rxlen += WP_MIN(len, room);
	(void)wp_hbstream_consume(s, len);
}

static void cli_on_eof(struct wp_hbstream *s)
{
	struct cstream *cs = wp_hbstream_app(s);

	cs->eof = true;
}

static void cli_on_close(struct wp_hbstream *s, enum wp_hbone_close why, uint32_t err)
{
	struct cstream *cs = wp_hbstream_app(s);

	cs->closed = true;
	cs->why = why;
	cs->err = err;
	cs->s = NULL;
}

static const struct wp_hbone_ops cli_ops = {
        .on_response = cli_on_response,
        .on_data = cli_on_data,
        .on_eof = cli_on_eof,
        .on_close = cli_on_close,
};

static size_t cli_tcp_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	ssize_t n = wp_tls_conn_feed(H.ctls, d, len);

	(void)c;
	(void)arg;
	return n > 0 ? (size_t)n : 0;
}

static void cli_tcp_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	(void)c;
	(void)arg;
	(void)why;
	H.cc = NULL;
	H.c_closed = true;
}

static const struct wp_tcp_callbacks cli_tcp_cbs = {
        .data = cli_tcp_data,
        .closed = cli_tcp_closed,
};

/* One step of the client: handshake, plaintext in, frames out, ciphertext out. */
static void cli_step(void)
{
	ssize_t n;

	if (H.cc == NULL)
		return;
	wp_tcp_recv_resume(H.cc); /* what TLS refused last time */
	if (!wp_tls_conn_established(H.ctls)) {
		if (wp_tls_conn_handshake(H.ctls) == 1 && H.ch2 == NULL) {
			H.ch2 = wp_hbconn_new(false, NULL, H.cmem, &cli_ops, NULL, H.cctr,
			                      now_ms());
			assert_non_null(H.ch2);
		}
	}
	if (H.ch2 != NULL) {
		while ((n = wp_tls_conn_read(H.ctls, H.buf, sizeof(H.buf))) > 0)
			assert_true(wp_hbconn_input(H.ch2, H.buf, (size_t)n, now_ms()) >= 0);
		(void)wp_hbconn_tick(H.ch2, now_ms());
		for (;;) {
			const uint8_t *p;
			ssize_t w;

			n = wp_hbconn_peek(H.ch2, &p);
			if (n <= 0)
				break;
			w = wp_tls_conn_write(H.ctls, p, (size_t)n);
			if (w <= 0)
				break;
			wp_hbconn_advance(H.ch2, (size_t)w);
		}
	}
	for (;;) {
		size_t space = wp_tcp_send_space(H.cc), pend = wp_tls_conn_pending(H.ctls);

		if (pend == 0 || space == 0)
			break;
		n = (ssize_t)wp_tls_conn_take(H.ctls, H.buf,
		                              WP_MIN(WP_MIN(space, pend), sizeof(H.buf)));
		if (n <= 0)
			break;
		assert_int_equal(wp_tcp_send(H.cc, H.buf, (size_t)n), n);
	}
}

/* ---- the destination: a plaintext server on P:8080 ---- */

static size_t dest_data(struct wp_tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
	struct dest *x = arg;
	size_t room = sizeof(x->rx) - WP_MIN(x->rxlen, sizeof(x->rx));

	if (x->paused)
		return 0;
	memcpy(x->rx + WP_MIN(x->rxlen, sizeof(x->rx)), d, WP_MIN(len, room));
	x->rxlen += len;
	if (x->echo)
		assert_int_equal(wp_tcp_send(c, d, len), (ssize_t)len);
	return len;
}

static void dest_eof(struct wp_tcp_conn *c, void *arg)
{
	struct dest *x = arg;

	x->eof = true;
	if (!x->linger)
		(void)wp_tcp_shutdown(c);
}

static void dest_closed(struct wp_tcp_conn *c, void *arg, enum wp_tcp_close_reason why)
{
	struct dest *x = arg;

	(void)c;
	x->closed = true;
	x->why = why;
	x->c = NULL;
}

static const struct wp_tcp_callbacks dest_cbs = {
        .data = dest_data,
        .eof = dest_eof,
        .closed = dest_closed,
};

static int dest_accept(struct wp_tcp_conn *c, void *arg)
{
	(void)arg;
	H.dest.c = c;
	H.dest.accepted = true;
	wp_tcp_conn_set_callbacks(c, &dest_cbs, &H.dest);
	return 0;
}

/* ---- driving ---- */

/* <rounds> rounds of 1 ms: segments, the tunnel's poll, the client, timers. */
static void pump(unsigned rounds)
{
	for (unsigned i = 0; i < rounds; i++) {
		L.now_us += 1000;
		(void)deliver();
		(void)wp_tunnel_poll(H.tw, L.now_us);
		cli_step();
		(void)deliver();
		wp_tcp_timers(H.w, L.now_us);
		wp_tcp_timers(H.p, L.now_us);
	}
}

/* Pumps until cond() holds, at most <max> rounds; returns cond(). */
static bool pump_until(bool (*cond)(void), unsigned max)
{
	for (unsigned i = 0; i < max && !cond(); i++)
		pump(1);
	return cond();
}

static bool cli_ready(void)
{
	return H.ch2 != NULL && wp_tls_conn_established(H.ctls);
}

/* Opens a CONNECT to <authority> on the client's session. */
static struct cstream *cli_connect(const char *authority)
{
	struct cstream *cs = &H.st[H.n_st++];
	struct wp_sockaddr sa;

	assert_true(H.n_st <= 8);
	memset(cs, 0, sizeof(*cs));
	assert_int_equal(wp_sockaddr_parse(authority, &sa), 0);
	cs->s = wp_hbconn_open(H.ch2, &sa, NULL, NULL, NULL, cs);
	assert_non_null(cs->s);
	return cs;
}

static const char *manifests =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata:\n"
        "  name: istio-waypoint\nspec:\n  controllerName: istio.io/mesh-controller\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n  labels:\n"
        "    istio.io/use-waypoint: waypoint\n"
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n"
        "  name: waypoint\n  namespace: app\nspec:\n  gatewayClassName: istio-waypoint\n"
        "  listeners:\n  - name: mesh\n    port: 15008\n    protocol: HBONE\n"
        /* echo: one ready pod, P's address */
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: app}\n"
        "spec:\n  clusterIP: 10.96.0.10\n  selector: {app: echo}\n  ports:\n"
        "  - {name: tcp-echo, port: 80, targetPort: 8080}\n"
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: echo-1\n  namespace: app\n"
        "  labels: {app: echo}\nspec:\n  serviceAccountName: echo\n"
        "status: {phase: Running, podIP: " P_IP "}\n"
        /* empty: no pod behind it */
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: empty, namespace: app}\n"
        "spec:\n  clusterIP: 10.96.0.11\n  selector: {app: nobody}\n  ports:\n"
        "  - {name: tcp-empty, port: 80, targetPort: 8080}\n";

/* Loads <yaml> into the resolver and publishes the snapshot it builds. */
static void publish(const char *yaml)
{
	const char *const *errs;
	struct wp_snapshot *snap;

	assert_true(wp_source_deliver_text(wp_resolver_sink(H.res), "test.yaml", yaml,
	                                   strlen(yaml)) > 0);
	assert_int_equal(wp_resolver_errors(H.res, &errs), 0);
	snap = wp_resolver_build(H.res);
	assert_non_null(snap);
	assert_int_equal(wp_snapshot_publish(H.slot, snap), 0);
}

static int setup(void **state)
{
	struct wp_tcp_io_ops ops = {link_alloc, link_send, NULL};
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct wp_tcp_config tc;
	struct wp_tls_config cc = {0};
	char sets[4][600], cert[512], key[512], ca[512], err[WP_CONFIG_ERRLEN];
	const char *setp[6];
	int e = 0;

	(void)state;
	memset(&H, 0, sizeof(H));
	L.head = L.tail = 0;
	L.now_us = 1000000;
	L.q = calloc(NSEG, sizeof(*L.q));
	assert_non_null(L.q);
	snprintf(sets[0], sizeof(sets[0]), "tls.cert=%s/cert.pem", pki);
	snprintf(sets[1], sizeof(sets[1]), "tls.key=%s/key.pem", pki);
	snprintf(sets[2], sizeof(sets[2]), "tls.ca=%s/ca.pem", pki);
	/* a small window, so backpressure shows within a few hundred KiB */
	snprintf(sets[3], sizeof(sets[3]), "hbone.stream_window=65535");
	for (int i = 0; i < 4; i++)
		setp[i] = sets[i];
	setp[4] = "hbone.max_tunnels=64";
	setp[5] = "hbone.max_sessions=16";
	if (wp_config_load(WP_SOURCE_ROOT "/conf/waypoint.conf", setp, 6, &H.cfg, err,
	                   sizeof(err)) != 0)
		fail_msg("config: %s", err);
	assert_int_equal(wp_tunnel_shared_init(&H.sh, &H.cfg, &H.drain), 0);

	assert_int_equal(inet_pton(AF_INET, W_IP, &H.w_ip), 1);
	assert_int_equal(inet_pton(AF_INET, P_IP, &H.p_ip), 1);
	wp_tcp_config_default(&tc);
	tc.max_conns = 64; /* the pools are allocated up front: keep them small */
	tc.time_wait_max = 64;
	tc.local_ip = H.w_ip;
	H.w = wp_tcp_stack_create(&tc, &ops, H.wctr);
	tc.local_ip = H.p_ip;
	H.p = wp_tcp_stack_create(&tc, &ops, H.pctr);
	assert_non_null(H.w);
	assert_non_null(H.p);

	H.res = wp_resolver_create(&served);
	H.slot = wp_snapshot_slot_create(1);
	assert_non_null(H.res);
	assert_non_null(H.slot);
	publish(manifests);

	H.io.worker_id = 0;
	H.io.n_workers = 1;
	H.io.n_ports = 1;
	H.io.ports[0].tcp = H.w;
	H.io.pick_port = h_pick_port;
	H.io.now_us = h_now_us;
	H.io.zalloc = h_zalloc;
	H.io.free_fn = h_free;
	H.io.slot = H.slot;
	H.io.ctr = H.wctr;
	H.tw = wp_tunnel_worker_create(&H.io, &H.sh);
	assert_non_null(H.tw);
	assert_int_equal(wp_tcp_listen(H.p, DEST_PORT, dest_accept, NULL), 0);

	snprintf(cert, sizeof(cert), "%s/productpage.pem", pki);
	snprintf(key, sizeof(key), "%s/productpage-key.pem", pki);
	snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
	cc.cert_file = cert;
	cc.key_file = key;
	cc.ca_file = ca;
	cc.trust_domain = "cluster.local";
	H.cctx = wp_tls_ctx_new(&cc, &e);
	assert_non_null(H.cctx);
	H.cmem = wp_h2mem_new(1u << 20, 64u << 20);
	assert_non_null(H.cmem);
	H.ctls = wp_tls_conn_new(H.cctx, WP_TLS_CLIENT, H.cctr);
	assert_non_null(H.ctls);
	assert_int_equal(
	        wp_tcp_connect(H.p, H.w_ip, H.cfg.hbone.port, 0, &cli_tcp_cbs, NULL, &H.cc), 0);
	if (!pump_until(cli_ready, 2000))
		fail_msg("the client's TLS + HTTP/2 session did not come up");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (H.ch2 != NULL)
		wp_hbconn_free(H.ch2);
	H.ch2 = NULL;
	if (H.cc != NULL)
		wp_tcp_abort(H.cc);
	H.cc = NULL;
	pump(50);
	wp_tunnel_worker_stop(H.tw);
	wp_tunnel_worker_destroy(H.tw);
	wp_tls_conn_free(H.ctls);
	wp_tls_ctx_unref(H.cctx);
	wp_h2mem_destroy(H.cmem);
	wp_tcp_stack_destroy(H.w);
	wp_tcp_stack_destroy(H.p);
	wp_snapshot_slot_destroy(H.slot);
	wp_resolver_destroy(H.res);
	wp_tunnel_shared_fini(&H.sh);
	/* waypointd keeps the outlier table to the end of the process (DPDK
	 * telemetry may read it at any time); a test frees it itself */
	wp_outlier_free(H.sh.outlier);
	H.sh.outlier = NULL;
	free(L.q);
	return 0;
}

#endif /* WP_TESTS_UNIT_DP_TUNNEL_TUNNEL_HARNESS_H */
