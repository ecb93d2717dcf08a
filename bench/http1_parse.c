/*
 * Microbenchmark of the HTTP/1.1 codec (dp/http): ns and TSC cycles per
 * request for parsing a typical 1 KiB request head (all events: head, done)
 * and serialising the upstream head (hop-by-hop stripping, x-request-id
 * generation). The peer, measured in the same run on the same bytes, is bare
 * llhttp_execute() with no callbacks: the ratio is what the proxy layer
 * (arena copies, checks, events, serialiser) costs on top of the grammar.
 *
 *   ./build/bench/http1_parse [iterations]     (default 2,000,000)
 *
 * Prints the figures, then the same as one JSON line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "http1.h"
#include "wp/counters.h"

static char req[2048];
static size_t req_len;

static void make_request(void)
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
	        "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; "
	        "_ga=GA1.2.1234567890.1700000000\r\n"
	        "Cache-Control: no-cache\r\n"
	        "Pragma: no-cache\r\n"
	        "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
	        "X-Forwarded-Proto: http\r\n"
	        "X-B3-Sampled: 1\r\n";
	static const char tail[] = "\r\n";
	size_t n = sizeof(head) - 1;
	memcpy(req, head, n);
	/* pad with one header to exactly 1024 bytes */
	const char *pad = "X-Pad: ";
	size_t room = 1024 - n - (sizeof(tail) - 1) - strlen(pad) - 2;
	memcpy(req + n, pad, strlen(pad));
	n += strlen(pad);
	memset(req + n, 'p', room);
	n += room;
	memcpy(req + n, "\r\n", 2);
	n += 2;
	memcpy(req + n, tail, sizeof(tail) - 1);
	n += sizeof(tail) - 1;
	req_len = n;
}

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

struct result {
	double ns;
	double cycles;
};

static uint64_t sink;

static struct result run_ours(long iters)
{
	static uint64_t ctr[WP_CTR_MAX];
	struct wp_http1_limits lim = wp_http1_default_limits;
	size_t asz = wp_http1_arena_size(&lim);
	void *arena = aligned_alloc(64, (asz + 63) & ~(size_t)63);
	struct wp_http1_parser p;
	struct wp_http_reqid_rng rng;
	struct wp_http1_req_opts o = {.rng = &rng};
	static char out[4096];

	wp_http_reqid_seed(&rng, 1);
	if (wp_http1_parser_init(&p, HTTP_REQUEST, &lim, arena, asz, ctr)) {
		fprintf(stderr, "parser init failed\n");
		exit(1);
	}
	double t0 = now_ns();
	uint64_t c0 = __rdtsc();
	for (long i = 0; i < iters; i++) {
		const uint8_t *in = (const uint8_t *)req;
		size_t off = 0;
		struct wp_http1_ev ev;
		for (;;) {
			off += wp_http1_parse(&p, in + off, req_len - off, &ev);
			if (ev.type == WP_HTTP1_EV_HEAD) {
				int n = wp_http1_write_request_head(ev.msg, &o, out, sizeof(out));
				if (n < 0) {
					fprintf(stderr, "serialise failed\n");
					exit(1);
				}
				sink += (uint64_t)n;
			} else if (ev.type == WP_HTTP1_EV_NONE) {
				break;
			} else if (ev.type != WP_HTTP1_EV_DONE) {
				fprintf(stderr, "unexpected event %d\n", ev.type);
				exit(1);
			}
		}
	}
	uint64_t c1 = __rdtsc();
	double t1 = now_ns();
	free(arena);
	return (struct result){(t1 - t0) / iters, (double)(c1 - c0) / iters};
}

static struct result run_bare(long iters)
{
	llhttp_settings_t s;
	llhttp_t p;

	llhttp_settings_init(&s);
	llhttp_init(&p, HTTP_REQUEST, &s);
	double t0 = now_ns();
	uint64_t c0 = __rdtsc();
	for (long i = 0; i < iters; i++) {
		if (llhttp_execute(&p, req, req_len) != HPE_OK) {
			fprintf(stderr, "llhttp: %s\n", llhttp_get_error_reason(&p));
			exit(1);
		}
		sink += p.method;
	}
	uint64_t c1 = __rdtsc();
	double t1 = now_ns();
	return (struct result){(t1 - t0) / iters, (double)(c1 - c0) / iters};
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 2000000;
	if (iters <= 0)
		iters = 1;
	make_request();
	/* warm up both */
	run_ours(iters / 10 + 1);
	run_bare(iters / 10 + 1);
	struct result a = run_ours(iters);
	struct result b = run_bare(iters);
	printf("http1_parse: %zu-byte request, %ld iterations\n", req_len, iters);
	printf("  waypointd parse+serialise: %8.1f ns  %8.0f cycles per request\n", a.ns, a.cycles);
	printf("  bare llhttp_execute:       %8.1f ns  %8.0f cycles per request\n", b.ns, b.cycles);
	printf("  ratio (waypointd / bare llhttp): %.2f\n", a.cycles / b.cycles);
	printf("{\"bench\": \"http1_parse\", \"request_bytes\": %zu, \"iterations\": %ld, "
	       "\"waypointd_ns\": %.1f, \"waypointd_cycles\": %.0f, \"peer\": "
	       "\"bare llhttp_execute\", \"peer_ns\": %.1f, \"peer_cycles\": %.0f, "
	       "\"ratio_cycles_waypointd_over_peer\": %.2f}\n",
	       req_len, iters, a.ns, a.cycles, b.ns, b.cycles, a.cycles / b.cycles);
	return sink == 0;
}
