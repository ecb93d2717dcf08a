/*
 * Microbenchmark of the HTTP/1.1 proxy session (dp/l7/h1proxy.c), no I/O:
 * ns and TSC cycles per request for one keep-alive exchange through the
 * whole L7 path of a tunnel — parse a 1 KiB request, route it (an HTTPRoute
 * with a path match and a 80/20 weighted split), least-request pick, pooled
 * upstream reuse, upstream head written (hop-by-hop stripped, x-request-id
 * added), then parse a response with a 1 KiB body and write it back. What it
 * leaves out is the transport: TCP, TLS and HTTP/2 of the HBONE tunnel and
 * of the upstream. The peer measured in the same run on the same bytes is
 * the codec alone (request parse + head write + response parse + head write,
 * no routing, no pool): the ratio is what routing and the session cost.
 * The proxy loop also runs, interleaved in the same run, with the request
 * pipeline's completion stage on (Istio metrics recorded per request, from a
 * connection with an identity and baggage) and with metrics plus the access
 * log (lines to a writer thread writing to /dev/null), and with metrics plus
 * tracing at 0 % (a new trace id and traceparent upstream, no span) and
 * 100 % (also one span per request to the exporter thread, which POSTs its
 * batches to a sink on loopback): the extra cycles per request are what the
 * completion stage costs.
 *
 *   ./build/bench/h1proxy [iterations]     (default 1,000,000)
 *
 * Prints the figures, then the same as one JSON line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "route_compile.h"
#include "h1proxy.h"
#include "pipeline.h"
#include "wp/accesslog.h"
#include "wp/config.h"
#include "wp/counters.h"
#include "wp/model.h"
#include "wp/snapshot_types.h"
#include "wp/tracing.h"

static uint64_t ctr[WP_CTR_MAX];

static int lookup(void *ctx, const char *ns, const char *name, uint16_t port, struct wp_arena *a,
                  struct wp_route_svc_eps *out)
{
	static const char *names[] = {"reviews", "reviews-v1", "reviews-v2"};
	struct wp_snap_endpoint *ep;
	const struct wp_labels **lab;

	(void)ctx;
	(void)ns;
	(void)port;
	for (unsigned s = 0; s < 3; s++) {
		if (strcmp(name, names[s]))
			continue;
		ep = wp_arena_alloc(a, sizeof(*ep) * 4);
		lab = wp_arena_alloc(a, sizeof(*lab) * 4);
		if (!ep || !lab)
			return -ENOMEM;
		memset(ep, 0, sizeof(*ep) * 4);
		for (unsigned k = 0; k < 4; k++) {
			ep[k].addr.family = WP_AF_INET;
			ep[k].addr.v4 = __builtin_bswap32(0x0a000000u | ((s + 1) << 8) | (k + 1));
			ep[k].port = 9080;
			ep[k].ready = true;
			lab[k] = NULL;
		}
		out->port_name = "http";
		out->n = 4;
		out->eps = ep;
		out->labels = lab;
		return 0;
	}
	return -ENOENT;
}

static struct wp_obj *objs[8];
static unsigned n_objs;

static int obj_cb(void *ctx, struct wp_obj *o)
{
	(void)ctx;
	if (n_objs < 8)
		objs[n_objs++] = o;
	return 0;
}

static void err_cb(void *ctx, const struct wp_model_error *e)
{
	(void)ctx;
	fprintf(stderr, "model: %s\n", e->msg);
	exit(1);
}

static const char route_yaml[] =
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n"
        "  name: r\n  namespace: default\nspec:\n  parentRefs:\n  - kind: Service\n"
        "    group: \"\"\n    name: reviews\n    port: 9080\n  rules:\n"
        "  - matches: [{path: {type: PathPrefix, value: /admin}}]\n"
        "    backendRefs: [{name: reviews, port: 9080}]\n"
        "  - matches: [{path: {type: PathPrefix, value: /productpage}}]\n"
        "    backendRefs:\n    - {name: reviews-v1, port: 9080, weight: 80}\n"
        "    - {name: reviews-v2, port: 9080, weight: 20}\n";

static struct wp_h1p_up *ups[64];
static unsigned n_ups;

static int op_open(void *host, struct wp_h1p_up *up, const struct wp_snap_endpoint *ep)
{
	(void)host;
	(void)ep;
	if (n_ups < 64)
		ups[n_ups++] = up;
	return 0;
}

static void op_close(void *host, struct wp_h1p_up *up)
{
	(void)host;
	(void)up;
}

static const struct wp_h1p_ops ops = {.up_open = op_open, .up_close = op_close};

static char req[1100], resp[1200];
static size_t req_len, resp_len;

static void make_msgs(void)
{
	static const char head[] =
	        "GET /productpage/api/v1/products/0/reviews?user=jason&page=2 HTTP/1.1\r\n"
	        "Host: reviews.bookinfo.svc.cluster.local:9080\r\n"
	        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
	        "Gecko) Chrome/120.0 Safari/537.36\r\n"
	        "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
	        "Accept-Language: en-US,en;q=0.9\r\n"
	        "Accept-Encoding: gzip, deflate\r\n"
	        "Connection: keep-alive\r\n"
	        "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n"
	        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
	        "X-Pad: ";
	size_t n = sizeof(head) - 1;

	memcpy(req, head, n);
	memset(req + n, 'p', 1024 - n - 4);
	n = 1024 - 4;
	memcpy(req + n, "\r\n\r\n", 4);
	req_len = 1024;
	n = (size_t)snprintf(resp, sizeof(resp),
	                     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	                     "Server: envoy\r\nContent-Length: 1024\r\n\r\n");
	memset(resp + n, 'r', 1024);
	resp_len = n + 1024;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static void die(const char *what)
{
	fprintf(stderr, "h1proxy bench: %s\n", what);
	exit(1);
}

/* <iters> keep-alive exchanges on <s>; returns TSC cycles per request. */
static double run_proxy(struct wp_h1p_sess *s, long iters, uint64_t *bytes_up, uint64_t *bytes_down)
{
	uint64_t c0 = __rdtsc();

	for (long i = 0; i < iters; i++) {
		struct wp_h1p_up *up;
		const uint8_t *p;
		size_t n;

		if (wp_h1p_down_in(s, (const uint8_t *)req, req_len) != req_len)
			die("request not taken");
		up = wp_h1p_sess_up(s);
		if (!up)
			die("no upstream");
		wp_h1p_up_connected(up);
		n = wp_h1p_up_peek(up, &p);
		*bytes_up += n;
		wp_h1p_up_consume(up, n);
		if (wp_h1p_up_in(up, (const uint8_t *)resp, resp_len) != resp_len)
			die("response not taken");
		n = wp_h1p_down_peek(s, &p);
		*bytes_down += n;
		wp_h1p_down_consume(s, n);
	}
	return (double)(__rdtsc() - c0) / iters;
}

/* The span exporter's collector: reads each POST whole (head, then
 * content-length bytes) and answers 200; ends with the listening socket. */
static void *sink_main(void *arg)
{
	int ls = *(int *)arg, fd;
	static char buf[1 << 16];

	while ((fd = accept(ls, NULL, NULL)) >= 0) {
		size_t got = 0, want = 0;
		ssize_t k;

		while ((k = recv(fd, buf + (got < 4096 ? got : 4096), 4096, 0)) > 0) {
			got += (size_t)k;
			if (!want && got >= 4) {
				char *end = memmem(buf, got < 8192 ? got : 8192, "\r\n\r\n", 4);
				char *cl = memmem(buf, got < 8192 ? got : 8192,
				                  "content-length: ", 16);

				if (end && cl)
					want = (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10);
			}
			if (want && got >= want)
				break;
		}
		(void)send(fd, "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", 38, MSG_NOSIGNAL);
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 1000000;
	const struct wp_obj *routes[1];
	struct wp_route_compile_in in = {
	        .ns = "default",
	        .name = "reviews",
	        .port = 9080,
	        .port_name = "http",
	        .routes = routes,
	        .lookup = lookup,
	};
	struct wp_route_core rc;
	struct wp_route_table *t;
	struct wp_h1p_core *core;
	struct wp_h1p_sess *s;
	uint64_t bytes_up = 0, bytes_down = 0, c0, c1;
	double t0, t1, proxy_ns, proxy_cyc;

	make_msgs();
	if (wp_model_parse(route_yaml, strlen(route_yaml), "r.yaml", obj_cb, err_cb, NULL) != 0 ||
	    n_objs != 1)
		die("route yaml");
	routes[0] = objs[0];
	in.n_routes = 1;
	t = wp_route_table_build(&in);
	if (!t || t->n_errors)
		die("route compile");
	wp_route_core_init(&rc, 1, ctr);
	if (wp_route_core_reserve(&rc, t))
		die("scratch");
	core = wp_h1p_core_create(&wp_h1p_default_cfg, &ops, NULL, &rc, 1, ctr);
	s = core ? wp_h1p_sess_open(core, t, NULL, "reviews:9080", 12) : NULL;
	if (!s)
		die("core");

	/* the proxy: request in, upstream bytes out, response in, client bytes out */
	t0 = now_ns();
	c0 = __rdtsc();
	proxy_cyc = run_proxy(s, iters, &bytes_up, &bytes_down);
	c1 = __rdtsc();
	t1 = now_ns();
	proxy_ns = (t1 - t0) / iters;
	(void)c1;

	/* the same with the completion stage on: metrics, then metrics and the
	 * access log; five rounds of each, interleaved, the least of each kept
	 * (the machine is shared: the least is the least disturbed) */
	{
		static struct wp_pipe_core pc, pc0;
		static struct wp_pipe_conn conn, conn0;
		static const struct wp_snap_service svc = {
		        .ns = "default",
		        .name = "reviews",
		        .hostname = "reviews.default.svc.cluster.local"};
		static const char bg[] =
		        "k8s.cluster.name=east,k8s.namespace.name=default,"
		        "k8s.deployment.name=productpage-v1,service.name=productpage,"
		        "service.version=v1";
		struct wp_metrics_core *cells = wp_metrics_core_create(2048, ctr);
		struct wp_alog_ring *ring = wp_alog_ring_create(4096, ctr);
		struct wp_alog_writer *w =
		        ring ? wp_alog_writer_start(&ring, 1, "/dev/null", false) : NULL;
		struct wp_h1p_sess *sm = wp_h1p_sess_open(core, t, NULL, "reviews:9080", 12);
		struct wp_h1p_sess *s0 = wp_h1p_sess_open(core, t, NULL, "reviews:9080", 12);
		double best[5] = {1e30, 1e30, 1e30, 1e30, 1e30};
		struct wp_tracing_config tc = {.protocol = WP_TRACE_OTLP,
		                               .path = "/v1/traces",
		                               .service_name = "waypoint",
		                               .ring_entries = 65536,
		                               .batch_spans = 256,
		                               .flush_ms = 100,
		                               .timeout_ms = 2000};
		struct sockaddr_in sa = {.sin_family = AF_INET,
		                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t sl = sizeof(sa);
		int ls = socket(AF_INET, SOCK_STREAM, 0);
		struct wp_trace_exporter *x = NULL;
		pthread_t sink;
		long k = iters / 5 > 0 ? iters / 5 : 1;
		uint64_t u = 0, d = 0;

		if (!cells || !w || !sm || !s0)
			die("completion stage");
		if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 16) ||
		    getsockname(ls, (struct sockaddr *)&sa, &sl) ||
		    pthread_create(&sink, NULL, sink_main, &ls))
			die("span sink");
		snprintf(tc.collector, sizeof(tc.collector), "127.0.0.1:%u", ntohs(sa.sin_port));
		x = wp_trace_exporter_start(&tc, &(struct wp_trace_resource){.service_name = ""},
		                            1);
		if (!x)
			die("span exporter");
		wp_pipe_core_init(&pc, ctr);
		wp_pipe_core_set_metrics(&pc, cells, "cluster.local", "cluster.local",
		                         "Kubernetes");
		wp_pipe_core_clock(&pc, 1000000, 1);
		conn.core = &pc;
		conn.tel.sampling_ppm = -1; /* no Telemetry resource: the rates set below */
		conn.principal = "cluster.local/ns/default/sa/productpage";
		conn.principal_len = (uint32_t)strlen(conn.principal);
		wp_pipe_conn_labels(&conn, bg, sizeof(bg) - 1, &svc, NULL);
		wp_h1p_sess_set_conn(sm, &conn);
		/* "off": the same connection (normalize, authorize), no cells */
		wp_pipe_core_init(&pc0, ctr);
		conn0 = conn;
		conn0.core = &pc0;
		wp_pipe_conn_labels(&conn0, bg, sizeof(bg) - 1, &svc, NULL);
		wp_h1p_sess_set_conn(s0, &conn0);
		for (int round = 0; round < 5; round++) {
			double c;

			c = run_proxy(s0, k, &u, &d);
			best[0] = c < best[0] ? c : best[0];
			/* the ring is there (a Telemetry could turn the log on),
			 * the configuration leaves it off */
			wp_pipe_core_set_alog(&pc, ring, false, 0);
			c = run_proxy(sm, k, &u, &d);
			best[1] = c < best[1] ? c : best[1];
			wp_pipe_core_set_alog(&pc, ring, true, 1);
			c = run_proxy(sm, k, &u, &d);
			best[2] = c < best[2] ? c : best[2];
			wp_pipe_core_set_alog(&pc, ring, false, 0);
			wp_pipe_core_set_trace(&pc, wp_trace_exporter_ring(x, 0), 0, WP_TRACE_OTLP,
			                       1);
			c = run_proxy(sm, k, &u, &d);
			best[3] = c < best[3] ? c : best[3];
			wp_pipe_core_set_trace(&pc, wp_trace_exporter_ring(x, 0), 1000000,
			                       WP_TRACE_OTLP, 1);
			c = run_proxy(sm, k, &u, &d);
			best[4] = c < best[4] ? c : best[4];
			wp_pipe_core_set_trace(&pc, NULL, 0, WP_TRACE_OTLP, 1);
		}
		printf("h1proxy: completion stage, %ld exchanges x 5 rounds each, least cycles per "
		       "request: off %.0f, metrics %.0f (%+.1f %%), metrics + access log %.0f "
		       "(%+.1f %%); access-log lines dropped (ring full): %llu\n",
		       k, best[0], best[1], 100 * (best[1] - best[0]) / best[0], best[2],
		       100 * (best[2] - best[0]) / best[0],
		       (unsigned long long)ctr[WP_CTR_ACCESS_LOG_DROPPED]);
		printf("{\"bench\": \"h1proxy_completion\", \"iterations\": %ld, \"off_cycles\": "
		       "%.0f, "
		       "\"metrics_cycles\": %.0f, \"metrics_alog_cycles\": %.0f, \"alog_dropped\": "
		       "%llu}\n",
		       k, best[0], best[1], best[2],
		       (unsigned long long)ctr[WP_CTR_ACCESS_LOG_DROPPED]);
		{
			wp_trace_exporter_stop(x); /* sends what is left */
			printf("h1proxy: with tracing, least cycles per request: sampling 0 %% "
			       "%.0f "
			       "(%+.1f %% over metrics), sampling 100 %% %.0f (%+.1f %%); spans "
			       "dropped "
			       "(ring full): %llu\n",
			       best[3], 100 * (best[3] - best[1]) / best[1], best[4],
			       100 * (best[4] - best[1]) / best[1],
			       (unsigned long long)ctr[WP_CTR_TRACE_SPAN_DROPPED]);
			printf("{\"bench\": \"h1proxy_tracing\", \"iterations\": %ld, "
			       "\"metrics_cycles\": %.0f, \"trace0_cycles\": %.0f, "
			       "\"trace100_cycles\": "
			       "%.0f, \"spans_dropped\": %llu}\n",
			       k, best[1], best[3], best[4],
			       (unsigned long long)ctr[WP_CTR_TRACE_SPAN_DROPPED]);
			shutdown(ls, SHUT_RDWR);
			close(ls);
			pthread_join(sink, NULL);
		}
		wp_h1p_sess_close(sm);
		wp_h1p_sess_close(s0);
		wp_pipe_core_fini(&pc0);
		wp_alog_writer_stop(w);
		wp_alog_ring_destroy(ring);
		wp_pipe_core_fini(&pc);
		wp_metrics_core_destroy(cells);
	}

	/* the peer: the codec alone on the same bytes */
	{
		struct wp_http1_limits lim = wp_http1_default_limits;
		size_t asz = wp_http1_arena_size(&lim);
		void *qa = aligned_alloc(64, (asz + 63) & ~(size_t)63);
		void *ra = aligned_alloc(64, (asz + 63) & ~(size_t)63);
		struct wp_http1_parser qp, rp;
		struct wp_http_reqid_rng rng;
		static char out[8192];
		double codec_ns, codec_cyc;

		wp_http_reqid_seed(&rng, 1);
		if (!qa || !ra || wp_http1_parser_init(&qp, HTTP_REQUEST, &lim, qa, asz, ctr))
			die("codec");
		t0 = now_ns();
		c0 = __rdtsc();
		for (long i = 0; i < iters; i++) {
			struct wp_http1_ev ev;
			struct wp_http1_msg reqm;
			struct wp_http1_req_opts o = {.rng = &rng};
			enum wp_http1_framing f;
			size_t used = 0;

			do {
				used += wp_http1_parse(&qp, (const uint8_t *)req + used,
				                       req_len - used, &ev);
				if (ev.type == WP_HTTP1_EV_HEAD) {
					reqm = *ev.msg;
					if (wp_http1_write_request_head(ev.msg, &o, out,
					                                sizeof(out)) <= 0)
						die("write");
				}
			} while (ev.type != WP_HTTP1_EV_DONE);
			if (wp_http1_parser_init(&rp, HTTP_RESPONSE, &lim, ra, asz, ctr))
				die("codec");
			wp_http1_parser_expect_response(&rp, HTTP_GET);
			used = 0;
			do {
				used += wp_http1_parse(&rp, (const uint8_t *)resp + used,
				                       resp_len - used, &ev);
				if (ev.type == WP_HTTP1_EV_HEAD &&
				    wp_http1_write_response_head(ev.msg, &reqm, true, NULL, &f, out,
				                                 sizeof(out)) <= 0)
					die("write");
				if (ev.type == WP_HTTP1_EV_BODY)
					memcpy(out, ev.data, ev.len);
			} while (ev.type != WP_HTTP1_EV_DONE);
		}
		c1 = __rdtsc();
		t1 = now_ns();
		codec_ns = (t1 - t0) / iters;
		codec_cyc = (double)(c1 - c0) / iters;
		printf("h1proxy: %ld keep-alive exchanges (1 KiB request, 1 KiB response body)\n",
		       iters);
		printf("  proxy session (route+LB+pool+codec): %8.1f ns %8.0f cycles per request "
		       "(%.2f M req/s per core)\n",
		       proxy_ns, proxy_cyc, 1e3 / proxy_ns);
		printf("  codec alone (parse+write both ways): %8.1f ns %8.0f cycles per request\n",
		       codec_ns, codec_cyc);
		printf("  ratio (proxy / codec): %.2f;  bytes up %.0f, down %.0f per request; "
		       "upstream connections opened: %u\n",
		       proxy_cyc / codec_cyc, (double)bytes_up / iters, (double)bytes_down / iters,
		       n_ups);
		printf("{\"bench\": \"h1proxy\", \"iterations\": %ld, \"proxy_ns\": %.1f, "
		       "\"proxy_cycles\": %.0f, \"peer\": \"codec alone\", \"peer_ns\": %.1f, "
		       "\"peer_cycles\": %.0f, \"ratio_cycles_proxy_over_peer\": %.2f, "
		       "\"upstream_connections\": %u}\n",
		       iters, proxy_ns, proxy_cyc, codec_ns, codec_cyc, proxy_cyc / codec_cyc,
		       n_ups);
		free(qa);
		free(ra);
	}
	wp_h1p_sess_close(s);
	wp_h1p_core_destroy(core);
	wp_route_core_fini(&rc);
	wp_route_table_free(t);
	wp_obj_free(objs[0]);
	return 0;
}
