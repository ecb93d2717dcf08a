/*
 * Scrape cost of /stats/prometheus (dp/obs/prom.c): TSC cycles the
 * control-plane thread spends per scrape, at about 10,000 Istio series (and
 * at a larger table), with the cells spread over two cores as two workers
 * leave them. The label sets are those of a mesh: a full Istio label set
 * (24 labels with realistic values) per series, each label set on both
 * cores (the merge has work to do).
 *
 * A "series" is one sample line of the exposition (a counter, or one
 * bucket, _sum or _count of a histogram), as Prometheus counts them: an
 * HTTP label set makes 1 + 3 x (20 buckets + _sum + _count) = 67 series.
 *
 * The peer, measured in the same run on the same cells: a plain renderer
 * that walks every core's cells and writes each sample with snprintf, the
 * label text re-made each time and nothing merged (so it writes more lines
 * than the real exposition: twice the series, one per core). The ratio is
 * what prom.c's cached label texts and merge are worth.
 *
 *   ./build/bench/prom_scrape [label_sets]   (default: 150, ~10,000 series;
 *                                            then 10x as many)
 *
 * Prints the figures, then the same as one JSON line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "prom.h"
#include "wp/counters.h"
#include "wp/metrics.h"

#define CORES   2
#define SCRAPES 15

static struct wp_stats stats[CORES];

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint32_t in(struct wp_metrics_core *m, const char *s)
{
	return wp_metrics_intern(m, s, strlen(s));
}

/* Label set k: the values a bookinfo-like mesh gives, k varying the
 * destination workload and the response code. */
static void fill(struct wp_metrics_core *m, unsigned k)
{
	static const char *const codes[] = {"200", "404", "503", "504"};
	struct wp_metrics_labels l;
	char wl[64], svc[96];

	memset(&l, 0, sizeof(l));
	snprintf(wl, sizeof(wl), "reviews-v%u", k / 4);
	snprintf(svc, sizeof(svc), "reviews-%u.bookinfo.svc.cluster.local", k / 4);
	l.v[WP_ML_SOURCE_WORKLOAD] = in(m, "productpage-v1");
	l.v[WP_ML_SOURCE_WORKLOAD_NAMESPACE] = in(m, "bookinfo");
	l.v[WP_ML_SOURCE_PRINCIPAL] = in(m, "spiffe://cluster.local/ns/bookinfo/sa/productpage");
	l.v[WP_ML_SOURCE_APP] = l.v[WP_ML_SOURCE_CANONICAL_SERVICE] = in(m, "productpage");
	l.v[WP_ML_SOURCE_VERSION] = l.v[WP_ML_SOURCE_CANONICAL_REVISION] = in(m, "v1");
	l.v[WP_ML_SOURCE_CLUSTER] = in(m, "Kubernetes");
	l.v[WP_ML_DESTINATION_WORKLOAD] = in(m, wl);
	l.v[WP_ML_DESTINATION_WORKLOAD_NAMESPACE] = in(m, "bookinfo");
	l.v[WP_ML_DESTINATION_PRINCIPAL] = in(m, "spiffe://cluster.local/ns/bookinfo/sa/reviews");
	l.v[WP_ML_DESTINATION_APP] = l.v[WP_ML_DESTINATION_CANONICAL_SERVICE] = in(m, "reviews");
	l.v[WP_ML_DESTINATION_VERSION] = l.v[WP_ML_DESTINATION_CANONICAL_REVISION] = in(m, wl);
	l.v[WP_ML_DESTINATION_SERVICE] = in(m, svc);
	l.v[WP_ML_DESTINATION_SERVICE_NAME] = in(m, "reviews");
	l.v[WP_ML_DESTINATION_SERVICE_NAMESPACE] = in(m, "bookinfo");
	l.v[WP_ML_DESTINATION_CLUSTER] = in(m, "Kubernetes");
	l.v[WP_ML_REQUEST_PROTOCOL] = in(m, "http");
	l.v[WP_ML_RESPONSE_CODE] = in(m, codes[k % 4]);
	l.v[WP_ML_GRPC_RESPONSE_STATUS] = WP_METRICS_EMPTY;
	l.v[WP_ML_RESPONSE_FLAGS] = in(m, "-");
	l.v[WP_ML_CONNECTION_SECURITY_POLICY] = in(m, "mutual_tls");
	for (unsigned r = 0; r < 3; r++)
		wp_metrics_http_record(m, &l, 1000 * (k % 50) + 500 * r, 1024 + r, 2048 + k);
}

/* The peer: every cell of every core, each sample written with snprintf
 * and its label text made again. Returns the bytes written. */
static size_t naive(struct wp_metrics_core *const *c, char *out, size_t cap)
{
	static const char *const fam[] = {"istio_request_duration_milliseconds",
	                                  "istio_request_bytes", "istio_response_bytes"};
	size_t o = 0;

	for (unsigned k = 0; k < CORES; k++)
		for (unsigned i = 0; i < wp_metrics_n_http(c[k]); i++) {
			const struct wp_metrics_http *h = wp_metrics_http_at(c[k], i);
			char lab[4096];
			size_t n = 0;

			for (unsigned j = 0; j < WP_ML_MAX; j++) {
				size_t vl;
				const char *v = wp_metrics_string(c[k], h->labels.v[j], &vl);

				n += (size_t)snprintf(lab + n, sizeof(lab) - n, "%s%s=\"%.*s\"",
				                      j ? "," : "", wp_metrics_label_names[j],
				                      (int)vl, v);
			}
			o += (size_t)snprintf(
			        out + o, cap - o,
			        "istio_requests_total{reporter=\"waypoint\",%s} %llu\n", lab,
			        (unsigned long long)wp_metrics_load(&h->requests));
			const struct wp_metrics_hist *hist[3] = {&h->duration, &h->req_bytes,
			                                         &h->resp_bytes};
			for (unsigned f = 0; f < 3; f++) {
				uint64_t cum = 0;

				for (unsigned b = 0; b < WP_METRICS_BUCKETS; b++) {
					cum += wp_metrics_load(&hist[f]->bucket[b]);
					o += (size_t)snprintf(out + o, cap - o,
					                      "%s_bucket{reporter=\"waypoint\",%s,"
					                      "le=\"%g\"} %llu\n",
					                      fam[f], lab,
					                      wp_metrics_bucket_bounds[b],
					                      (unsigned long long)cum);
				}
				cum += wp_metrics_load(&hist[f]->bucket[WP_METRICS_BUCKETS]);
				o += (size_t)snprintf(
				        out + o, cap - o,
				        "%s_bucket{reporter=\"waypoint\",%s,le=\"+Inf\"} "
				        "%llu\n%s_sum{reporter=\"waypoint\",%s} %llu\n"
				        "%s_count{reporter=\"waypoint\",%s} %llu\n",
				        fam[f], lab, (unsigned long long)cum, fam[f], lab,
				        (unsigned long long)wp_metrics_load(&hist[f]->sum), fam[f],
				        lab, (unsigned long long)cum);
			}
		}
	return o;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Median TSC cycles of SCRAPES calls; *bytes and *lines of the last one. */
static uint64_t measure_prom(struct wp_prom *p, size_t *bytes, unsigned *lines, uint64_t *first)
{
	uint64_t cyc[SCRAPES];
	size_t len = 0;
	char *t;

	for (unsigned i = 0; i < SCRAPES; i++) {
		uint64_t c0 = __rdtsc();

		t = wp_prom_render(p, NULL, &len);
		cyc[i] = __rdtsc() - c0;
		if (!t) {
			fprintf(stderr, "prom_scrape: out of memory\n");
			exit(1);
		}
		if (i + 1 < SCRAPES)
			free(t);
	}
	*first = cyc[0];
	*lines = 0;
	for (const char *q = t; (q = strstr(q, "\nistio_")) != NULL; q++)
		(*lines)++;
	*bytes = len;
	free(t);
	qsort(cyc + 1, SCRAPES - 1, sizeof(cyc[0]), cmp_u64);
	return cyc[1 + (SCRAPES - 1) / 2];
}

static uint64_t measure_naive(struct wp_metrics_core *const *c, size_t *bytes)
{
	size_t cap = (size_t)1 << 30;
	char *out = malloc(cap);
	uint64_t cyc[SCRAPES];

	if (!out) {
		fprintf(stderr, "prom_scrape: out of memory\n");
		exit(1);
	}
	for (unsigned i = 0; i < SCRAPES; i++) {
		uint64_t c0 = __rdtsc();

		*bytes = naive(c, out, cap);
		cyc[i] = __rdtsc() - c0;
	}
	free(out);
	qsort(cyc, SCRAPES, sizeof(cyc[0]), cmp_u64);
	return cyc[SCRAPES / 2];
}

int main(int argc, char **argv)
{
	unsigned base = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 150;
	double ghz, t0;
	uint64_t c0;

	if (base < 1 || base > 100000) {
		fprintf(stderr, "usage: prom_scrape [label_sets 1..100000]\n");
		return 2;
	}
	t0 = now();
	c0 = __rdtsc();
	while (now() - t0 < 0.1)
		;
	ghz = (double)(__rdtsc() - c0) / ((now() - t0) * 1e9);
	printf("prom_scrape: %d cores, each label set on every core, median of %d scrapes after "
	       "the first, TSC %.2f GHz\n",
	       CORES, SCRAPES - 1, ghz);
	struct {
		unsigned sets, lines;
		uint64_t cyc, first, ncyc;
		size_t bytes, nbytes;
	} r[2];

	for (unsigned round = 0; round < 2; round++) {
		unsigned sets = round ? base * 10 : base;
		struct wp_metrics_core *c[CORES];
		struct wp_stats *sp[CORES];
		struct wp_prom *p;

		for (unsigned k = 0; k < CORES; k++) {
			c[k] = wp_metrics_core_create(sets + 1, NULL);
			sp[k] = &stats[k];
			if (!c[k]) {
				fprintf(stderr, "prom_scrape: out of memory\n");
				return 1;
			}
			for (unsigned i = 0; i < sets; i++)
				fill(c[k], i);
		}
		p = wp_prom_create(sp, c, CORES, (uint64_t)(ghz * 1e9));
		if (!p) {
			fprintf(stderr, "prom_scrape: out of memory\n");
			return 1;
		}
		r[round].sets = sets;
		r[round].cyc = measure_prom(p, &r[round].bytes, &r[round].lines, &r[round].first);
		r[round].ncyc = measure_naive(c, &r[round].nbytes);
		wp_prom_destroy(p);
		for (unsigned k = 0; k < CORES; k++)
			wp_metrics_core_destroy(c[k]);
	}
	printf("%10s %8s %11s %14s %10s %10s %14s %14s %7s\n", "label_sets", "series", "bytes",
	       "cycles/scrape", "ms/scrape", "cyc/series", "first scrape", "naive cycles", "ratio");
	for (unsigned i = 0; i < 2; i++)
		printf("%10u %8u %11zu %14llu %10.2f %10.0f %14llu %14llu %7.2f\n", r[i].sets,
		       r[i].lines, r[i].bytes, (unsigned long long)r[i].cyc,
		       (double)r[i].cyc / ghz / 1e6, (double)r[i].cyc / r[i].lines,
		       (unsigned long long)r[i].first, (unsigned long long)r[i].ncyc,
		       (double)r[i].ncyc / (double)r[i].cyc);
	printf("ratio = the naive renderer's cycles over prom.c's (same cells, same run)\n");
	printf("{\"bench\":\"prom_scrape\",\"cores\":%d,\"tsc_ghz\":%.3f,\"rows\":[", CORES, ghz);
	for (unsigned i = 0; i < 2; i++)
		printf("%s{\"label_sets\":%u,\"series\":%u,\"bytes\":%zu,\"cycles_per_scrape\":%"
		       "llu,"
		       "\"first_scrape_cycles\":%llu,\"cycles_per_series\":%.0f,"
		       "\"naive_cycles\":%llu,\"naive_bytes\":%zu,\"naive_over_prom\":%.2f}",
		       i ? "," : "", r[i].sets, r[i].lines, r[i].bytes,
		       (unsigned long long)r[i].cyc, (unsigned long long)r[i].first,
		       (double)r[i].cyc / r[i].lines, (unsigned long long)r[i].ncyc, r[i].nbytes,
		       (double)r[i].ncyc / (double)r[i].cyc);
	printf("]}\n");
	return 0;
}
