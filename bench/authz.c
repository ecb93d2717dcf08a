/*
 * Microbenchmark of authorization decisions: TSC cycles and ns per decision
 * of the compiled engine (cp/resolve/authz_compile.c + lib/authz.c) with
 * 10, 1,000 and 10,000 rules attached to one waypoint, against the
 * reference evaluator (tests/unit/dp/l7/authz_ref.c), a linear walk of the
 * same policies, on the same requests in the same run. The rules are a mix
 * of what meshes write: source principals (some negated), path prefixes and
 * suffixes with methods, a header condition on some, in ALLOW policies of 10
 * rules with a DENY and an AUDIT policy every few. The requests draw from
 * the same pools, so some match a rule and most hit several anchors. The
 * decisions of the two are compared first, on every request (on the first
 * 512 at 10,000 rules); a disagreement aborts the run.
 *
 *   ./build/bench/authz [seconds per measure]    (default 0.5)
 *
 * Figures: TSC cycles per decision (wall time: on a loaded machine it
 * includes time the thread was preempted), thread-CPU ns per decision and
 * the same as cycles at the TSC rate (what the code costs), the ratio of
 * the linear walk's CPU time to the engine's, and the compile time. Prints a
 * table, then the same as one JSON line.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "../tests/unit/dp/l7/authz_ref.h"
#include "wp/addr.h"
#include "wp/model.h"

#define N_REQ  4096
#define N_SA   400
#define N_PATH 300

static uint64_t rng = 0x2545f4914f6cdd1dULL;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

struct buf {
	char *p;
	size_t n, cap;
};

static void out(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if ((size_t)n < b->cap - b->n)
			break;
		b->cap = b->cap * 2 + (size_t)n;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	b->n += (size_t)n;
}

static void rule(struct buf *b)
{
	uint32_t kind = rnd(10);

	out(b, "  - from: [{source: {%s: [\"cluster.local/ns/ns%u/sa/sa%u\"]}}]\n",
	    rnd(8) ? "principals" : "notPrincipals", rnd(N_SA / 10), rnd(N_SA));
	if (kind < 5)
		out(b,
		    "    to: [{operation: {methods: [\"%s\"], paths: [\"/api/v%u/svc%u/*\"]}}]\n",
		    rnd(2) ? "GET" : "POST", rnd(3), rnd(N_PATH));
	else if (kind < 8)
		out(b, "    to: [{operation: {methods: [\"GET\"], paths: [\"*/res%u.json\"]}}]\n",
		    rnd(N_PATH));
	else
		out(b, "    to: [{operation: {paths: [\"/api/v%u/svc%u/items\"]}}]\n", rnd(3),
		    rnd(N_PATH));
	if (!rnd(4))
		out(b,
		    "    when: [{key: \"request.headers[x-tenant]\", values: [\"tenant-%u\"]}]\n",
		    rnd(50));
}

/* n rules in policies of 10: ALLOW mostly, a DENY every 4th, an AUDIT every 9th. */
static char *policies(uint32_t n, size_t *len)
{
	struct buf b = {malloc(1 << 16), 0, 1 << 16};

	for (uint32_t p = 0; p * 10 < n; p++) {
		const char *act = p % 9 == 8 ? "AUDIT" : p % 4 == 3 ? "DENY" : "ALLOW";
		uint32_t k = n - p * 10 < 10 ? n - p * 10 : 10;

		out(&b,
		    "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
		    "metadata: {name: p%05u, namespace: shop}\nspec:\n  action: %s\n"
		    "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: wp}]\n"
		    "  rules:\n",
		    p, act);
		for (uint32_t i = 0; i < k; i++)
			rule(&b);
	}
	*len = b.n;
	return b.p;
}

struct req {
	char principal[64], path[64], tenant[16];
	const char *method;
	struct wp_authz_req q;
};

static const char *tenant_hdr(void *ctx, const char *name, uint32_t len, uint32_t *vl)
{
	struct req *r = ctx;

	if (len != 8 || memcmp(name, "x-tenant", 8) || !r->tenant[0])
		return NULL;
	*vl = (uint32_t)strlen(r->tenant);
	return r->tenant;
}

static void make_reqs(struct req *rs)
{
	for (uint32_t i = 0; i < N_REQ; i++) {
		struct req *r = &rs[i];
		struct wp_authz_req *q = &r->q;

		snprintf(r->principal, sizeof(r->principal), "cluster.local/ns/ns%u/sa/sa%u",
		         rnd(N_SA / 10), rnd(N_SA));
		switch (rnd(3)) {
		case 0:
			snprintf(r->path, sizeof(r->path), "/api/v%u/svc%u/items", rnd(3),
			         rnd(N_PATH));
			break;
		case 1:
			snprintf(r->path, sizeof(r->path), "/files/x/res%u.json", rnd(N_PATH));
			break;
		default:
			snprintf(r->path, sizeof(r->path), "/static/app.js");
			break;
		}
		if (rnd(2))
			snprintf(r->tenant, sizeof(r->tenant), "tenant-%u", rnd(50));
		r->method = rnd(3) ? "GET" : "POST";
		memset(q, 0, sizeof(*q));
		q->principal = r->principal;
		q->principal_len = (uint32_t)strlen(r->principal);
		wp_addr_parse("10.1.2.3", &q->src_ip);
		q->remote_ip = q->src_ip;
		wp_addr_parse("10.96.0.10", &q->dst_ip);
		q->dst_port = 8080;
		q->is_http = true;
		q->host = "shop.example.com";
		q->host_len = 16;
		q->method = r->method;
		q->method_len = (uint32_t)strlen(r->method);
		q->path = r->path;
		q->path_len = (uint32_t)strlen(r->path);
		q->header = tenant_hdr;
		q->header_ctx = r;
	}
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct objs {
	struct wp_obj **o;
	uint32_t n, cap;
};

static int take(void *ctx, struct wp_obj *o)
{
	struct objs *s = ctx;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->o = realloc(s->o, sizeof(*s->o) * s->cap);
		if (!s->o)
			abort();
	}
	s->o[s->n++] = o;
	return 0;
}

struct result {
	uint32_t rules;
	double compile_ms, eng_cyc, eng_ns, eng_cpu, ref_cyc, ref_ns, ref_cpu;
	uint32_t allowed, audited, checked;
};

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* TSC cycles, wall ns and thread-CPU ns per decision of body over the
 * request pool, in rounds of 16 requests, for about secs. On a loaded
 * machine the TSC and wall figures include time the thread was not
 * running; the CPU figure does not. */
#define MEASURE(secs, body, cyc, ns, cpu)                                                          \
	do {                                                                                       \
		uint64_t n_ = 0, c0_ = __rdtsc();                                                  \
		double t0_ = now(), p0_ = cpu_now(), t1_;                                          \
		uint32_t i = 0;                                                                    \
		do {                                                                               \
			for (uint32_t k_ = 0; k_ < 16; k_++, n_++, i = (i + 1) % N_REQ) {          \
				body;                                                              \
			}                                                                          \
			t1_ = now();                                                               \
		} while (t1_ - t0_ < (secs));                                                      \
		(cyc) = (double)(__rdtsc() - c0_) / (double)n_;                                    \
		(ns) = (t1_ - t0_) * 1e9 / (double)n_;                                             \
		(cpu) = (cpu_now() - p0_) * 1e9 / (double)n_;                                      \
	} while (0)

static void run(uint32_t n_rules, double secs, struct req *rs, struct result *res)
{
	size_t len;
	char *yaml = policies(n_rules, &len);
	struct objs os = {0};
	struct wp_authz_db_cache cache = {0};
	struct wp_authz_scratch sc = {0};
	struct wp_authz_compile_in in = {
	        .gw_ns = "shop",
	        .gw_name = "wp",
	        .gw_class = "istio-waypoint",
	        .dest_kind = WP_AUTHZ_DEST_SERVICE,
	        .dest_ns = "shop",
	        .dest_name = "cart",
	        .cache = &cache,
	};
	struct wp_authz_table *t;
	struct authz_ref ref;
	struct wp_authz_decision de, dr;
	volatile uint32_t sink = 0;
	double t0;

	if (wp_model_parse(yaml, len, "bench.yaml", take, NULL, &os))
		abort();
	in.policies = (const struct wp_obj *const *)os.o;
	in.n_policies = os.n;
	t0 = now();
	t = wp_authz_compile(&in);
	res->compile_ms = (now() - t0) * 1e3;
	if (!t || t->broken || t->n_rules != n_rules || wp_authz_scratch_reserve(&sc, t) ||
	    authz_ref_init(&ref, &in))
		abort();
	res->rules = n_rules;
	res->allowed = res->audited = 0;
	/* the linear walk is slow at 10,000 rules: check the first 512 there */
	res->checked = n_rules > 1000 ? 512 : N_REQ;
	for (uint32_t i = 0; i < res->checked; i++) {
		wp_authz_eval(t, &sc, &rs[i].q, &de);
		authz_ref_eval(&ref, &rs[i].q, &dr);
		if (de.allowed != dr.allowed || de.audited != dr.audited ||
		    de.reason != dr.reason || de.rule != dr.rule) {
			fprintf(stderr,
			        "authz bench: engine and reference disagree on request %u\n", i);
			abort();
		}
		res->allowed += de.allowed;
		res->audited += de.audited;
	}
	MEASURE(secs, wp_authz_eval(t, &sc, &rs[i].q, &de);
	        sink += de.allowed, res->eng_cyc, res->eng_ns, res->eng_cpu);
	MEASURE(secs, authz_ref_eval(&ref, &rs[i].q, &dr);
	        sink += dr.allowed, res->ref_cyc, res->ref_ns, res->ref_cpu);
	(void)sink;
	authz_ref_fini(&ref);
	wp_authz_table_free(t);
	wp_authz_scratch_fini(&sc);
	for (uint32_t i = 0; i < os.n; i++)
		wp_obj_free(os.o[i]);
	free(os.o);
	free(yaml);
}

int main(int argc, char **argv)
{
	static const uint32_t sizes[] = {10, 1000, 10000};
	double secs = argc > 1 ? atof(argv[1]) : 0.5;
	struct req *rs = calloc(N_REQ, sizeof(*rs));
	struct result res[3];
	double ghz;

	if (!rs || secs <= 0) {
		fprintf(stderr, "usage: %s [seconds per measure]\n", argv[0]);
		return 2;
	}
	make_reqs(rs);
	{
		/* the TSC rate, to turn CPU ns into cycles */
		uint64_t c0 = __rdtsc();
		double t0 = now();

		while (now() - t0 < 0.05)
			;
		ghz = (double)(__rdtsc() - c0) / ((now() - t0) * 1e9);
	}
	for (int i = 0; i < 3; i++)
		run(sizes[i], secs, rs, &res[i]);
	printf("authz: per decision, compiled engine vs reference linear walk (%u requests, "
	       "same run; TSC %.2f GHz)\n",
	       N_REQ, ghz);
	printf("  %6s %10s %10s %10s %13s %13s %9s %10s %7s\n", "rules", "eng_tsc", "eng_cpu_c",
	       "eng_cpu_ns", "linear_tsc", "linear_cpu_ns", "ratio", "compile_ms", "allowed");
	for (int i = 0; i < 3; i++)
		printf("  %6u %10.0f %10.0f %10.1f %13.0f %13.1f %8.1fx %10.1f %6.1f%%\n",
		       res[i].rules, res[i].eng_cyc, res[i].eng_cpu * ghz, res[i].eng_cpu,
		       res[i].ref_cyc, res[i].ref_cpu, res[i].ref_cpu / res[i].eng_cpu,
		       res[i].compile_ms, 100.0 * res[i].allowed / res[i].checked);
	printf("{\"bench\": \"authz\", \"requests\": %u, \"tsc_ghz\": %.3f, \"results\": [", N_REQ,
	       ghz);
	for (int i = 0; i < 3; i++)
		printf("%s{\"rules\": %u, \"engine_tsc_cycles\": %.0f, \"engine_cpu_cycles\": "
		       "%.0f, "
		       "\"engine_cpu_ns\": %.1f, \"linear_tsc_cycles\": %.0f, "
		       "\"linear_cpu_cycles\": %.0f, \"linear_cpu_ns\": %.1f, "
		       "\"ratio_cpu_linear_over_engine\": %.1f, \"compile_ms\": %.1f, "
		       "\"allowed_share\": %.3f, \"audited_share\": %.3f}",
		       i ? ", " : "", res[i].rules, res[i].eng_cyc, res[i].eng_cpu * ghz,
		       res[i].eng_cpu, res[i].ref_cyc, res[i].ref_cpu * ghz, res[i].ref_cpu,
		       res[i].ref_cpu / res[i].eng_cpu, res[i].compile_ms,
		       (double)res[i].allowed / res[i].checked,
		       (double)res[i].audited / res[i].checked);
	printf("], \"goal\": \"engine < 1000 cycles and >= 50x the linear walk at 10000 "
	       "rules\"}\n");
	free(rs);
	return 0;
}
