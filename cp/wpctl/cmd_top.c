/*
 * wpctl top: a live per-core view of waypointd. Every interval it reads
 * each worker's counters from DPDK telemetry (/wp/worker,<id>, as wpctl
 * stats does) and shows what changed since the previous read as rates:
 * packets and Gbit/s each way, requests/s (HTTP/1.1 and h2c requests
 * forwarded), tunnels opened/s, drops/s (every DROP counter) and busy %
 * (busy cycles over all cycles), beside the gauges (tunnels and HBONE
 * connections open, TCP connections). Redrawn in place on a terminal;
 * --once prints one interval and exits; -o json prints the rates with the
 * counter deltas and the measured interval they came from.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wpctl.h"

/* The counters a rate is computed from, per core. */
enum { RX_PKTS, RX_BYTES, TX_PKTS, TX_BYTES, REQUESTS, TUNNELS_OPENED, DROPS, BUSY, IDLE, N_DELTA };

static const char *const delta_names[N_DELTA] = {
        "rx_packets",     "rx_bytes", "tx_packets",  "tx_bytes",    "requests",
        "tunnels_opened", "drops",    "busy_cycles", "idle_cycles",
};

/* Gauges shown as read at the end of the interval. */
static const char *const gauges[] = {"tunnels", "hbone_conns", "tcp_conns", "tcp_established"};

struct core {
	unsigned id;
	uint64_t c[N_DELTA];
	uint64_t g[sizeof(gauges) / sizeof(gauges[0])];
};

struct sample {
	double t; /* when read (the middle of the reads) */
	unsigned n;
	struct core *core;
};

static uint64_t u64(json_t *o, const char *k)
{
	return (uint64_t)json_integer_value(json_object_get(o, k));
}

/* Reads every worker once. 0, or -1 when waypointd did not answer. */
static int read_sample(struct wp_wpctl_tel *t, struct sample *s)
{
	json_t *ids = wp_wpctl_tel_query(t, "/wp/workers"), *v;
	double t0 = wp_wpctl_now();
	size_t i;

	if (ids == NULL)
		return -1;
	s->n = (unsigned)json_array_size(ids);
	s->core = calloc(s->n ? s->n : 1, sizeof(*s->core));
	json_array_foreach(ids, i, v)
	{
		char cmd[64];
		json_t *w;
		struct core *c = &s->core[i];

		snprintf(cmd, sizeof(cmd), "/wp/worker,%lld", json_integer_value(v));
		w = wp_wpctl_tel_query(t, cmd);
		if (w == NULL) {
			json_decref(ids);
			free(s->core);
			s->core = NULL;
			return -1;
		}
		w = wp_wpctl_tel_flatten(w);
		c->id = (unsigned)json_integer_value(v);
		c->c[RX_PKTS] = u64(w, "rx_packets");
		c->c[RX_BYTES] = u64(w, "rx_bytes");
		c->c[TX_PKTS] = u64(w, "tx_packets");
		c->c[TX_BYTES] = u64(w, "tx_bytes");
		c->c[REQUESTS] = u64(w, "l7_h1p_request") + u64(w, "l7_h2p_request");
		c->c[TUNNELS_OPENED] = u64(w, "tunnel_opened");
		c->c[DROPS] = u64(w, "drops");
		c->c[BUSY] = u64(w, "busy_cycles");
		c->c[IDLE] = u64(w, "idle_cycles");
		for (size_t g = 0; g < sizeof(gauges) / sizeof(gauges[0]); g++)
			c->g[g] = u64(w, gauges[g]);
		json_decref(w);
	}
	json_decref(ids);
	s->t = (t0 + wp_wpctl_now()) / 2;
	return 0;
}

/* One row of rates (a core, or the total when id < 0) as JSON. */
static json_t *row(int id, const uint64_t *d, const uint64_t *g, double dt)
{
	json_t *o = json_object(), *deltas = json_object();
	double busy = (double)d[BUSY], all = (double)d[BUSY] + (double)d[IDLE];

	if (id >= 0)
		json_object_set_new(o, "core", json_integer(id));
	json_object_set_new(o, "rx_pps", json_real((double)d[RX_PKTS] / dt));
	json_object_set_new(o, "rx_gbps", json_real((double)d[RX_BYTES] * 8 / dt / 1e9));
	json_object_set_new(o, "tx_pps", json_real((double)d[TX_PKTS] / dt));
	json_object_set_new(o, "tx_gbps", json_real((double)d[TX_BYTES] * 8 / dt / 1e9));
	json_object_set_new(o, "requests_per_s", json_real((double)d[REQUESTS] / dt));
	json_object_set_new(o, "tunnels_opened_per_s", json_real((double)d[TUNNELS_OPENED] / dt));
	json_object_set_new(o, "drops_per_s", json_real((double)d[DROPS] / dt));
	/* the total's busy % is the mean of the cores' */
	json_object_set_new(o, "busy_pct", json_real(all > 0 ? 100.0 * busy / all : 0.0));
	for (size_t k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++)
		json_object_set_new(o, gauges[k], json_integer((json_int_t)g[k]));
	for (unsigned k = 0; k < N_DELTA; k++)
		json_object_set_new(deltas, delta_names[k], json_integer((json_int_t)d[k]));
	json_object_set_new(o, "delta", deltas);
	return o;
}

/* {"interval_s", "cores": [rows], "total": row} from two samples of the
 * same workers. */
static json_t *rates(const struct sample *a, const struct sample *b)
{
	json_t *out = json_object(), *cores = json_array();
	uint64_t td[N_DELTA] = {0}, tg[sizeof(gauges) / sizeof(gauges[0])] = {0};
	double dt = b->t - a->t;

	for (unsigned i = 0; i < b->n && i < a->n; i++) {
		uint64_t d[N_DELTA];

		for (unsigned k = 0; k < N_DELTA; k++) {
			d[k] = b->core[i].c[k] - a->core[i].c[k];
			td[k] += d[k];
		}
		for (size_t k = 0; k < sizeof(gauges) / sizeof(gauges[0]); k++)
			tg[k] += b->core[i].g[k];
		json_array_append_new(cores, row((int)b->core[i].id, d, b->core[i].g, dt));
	}
	json_object_set_new(out, "interval_s", json_real(dt));
	json_object_set_new(out, "cores", cores);
	json_object_set_new(out, "total", row(-1, td, tg, dt));
	return out;
}

static double num(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static void print_row(const char *name, json_t *r)
{
	printf("%-6s %11.0f %8.3f %11.0f %8.3f %10.0f %9.1f %8lld %8lld %9lld %6.1f %9.0f\n", name,
	       num(r, "rx_pps"), num(r, "rx_gbps"), num(r, "tx_pps"), num(r, "tx_gbps"),
	       num(r, "requests_per_s"), num(r, "tunnels_opened_per_s"),
	       json_integer_value(json_object_get(r, "tunnels")),
	       json_integer_value(json_object_get(r, "hbone_conns")),
	       json_integer_value(json_object_get(r, "tcp_conns")), num(r, "busy_pct"),
	       num(r, "drops_per_s"));
}

static void print_table(json_t *r)
{
	json_t *c;
	size_t i;

	printf("over %.2f s\n", num(r, "interval_s"));
	printf("%-6s %11s %8s %11s %8s %10s %9s %8s %8s %9s %6s %9s\n", "CORE", "RX pkt/s",
	       "RX Gb/s", "TX pkt/s", "TX Gb/s", "req/s", "tun new/s", "tunnels", "hbone",
	       "tcp conns", "busy%", "drops/s");
	json_array_foreach(json_object_get(r, "cores"), i, c)
	{
		char n[16];

		snprintf(n, sizeof(n), "%lld", json_integer_value(json_object_get(c, "core")));
		print_row(n, c);
	}
	print_row("total", json_object_get(r, "total"));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: wpctl top [--prefix P] [--interval S] [--once] [-o table|json]\n"
	           "\n"
	           "  -p, --prefix P     DPDK file prefix of the waypointd to read (default:\n"
	           "                     $WP_PREFIX, else \"waypointd\")\n"
	           "  -i, --interval S   seconds between reads; each rate covers one (default 1)\n"
	           "      --once         print one interval's rates and exit\n"
	           "  -o, --output F     table (default) or json (rates, the counter deltas\n"
	           "                     and the measured interval)\n"
	           "Redrawn in place on a terminal, printed one after the other otherwise.\n");
}

int wp_wpctl_top(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"prefix", required_argument, NULL, 'p'},
	        {"interval", required_argument, NULL, 'i'},
	        {"once", no_argument, NULL, '1'},
	        {"output", required_argument, NULL, 'o'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *prefix = getenv("WP_PREFIX") ?: "waypointd";
	bool once = false, json = false, tty = isatty(STDOUT_FILENO);
	double interval = 1.0, next;
	struct wp_wpctl_tel *t;
	struct sample prev = {0}, cur;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:i:o:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			prefix = optarg;
			break;
		case 'i':
			interval = atof(optarg);
			if (interval <= 0) {
				fprintf(stderr, "wpctl: --interval needs a positive number\n");
				return 2;
			}
			break;
		case '1':
			once = true;
			break;
		case 'o':
			if (strcmp(optarg, "json") && strcmp(optarg, "table")) {
				fprintf(stderr, "wpctl: -o table or -o json\n");
				return 2;
			}
			json = !strcmp(optarg, "json");
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wpctl: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	t = malloc(sizeof(*t));
	if (t == NULL || wp_wpctl_tel_open(t, prefix) != 0) {
		free(t);
		return 1;
	}
	if (read_sample(t, &prev) != 0)
		goto unanswered;
	next = wp_wpctl_now();
	for (unsigned n = 0;; n++) {
		json_t *r;

		next += interval;
		wp_wpctl_sleep_until(next);
		if (read_sample(t, &cur) != 0)
			goto unanswered;
		r = rates(&prev, &cur);
		if (tty && !once)
			printf("\033[H\033[2J");
		else if (n > 0 && !json)
			printf("\n");
		if (json) {
			json_dumpf(r, stdout, once ? JSON_INDENT(2) : JSON_COMPACT);
			printf("\n");
		} else {
			print_table(r);
		}
		fflush(stdout);
		json_decref(r);
		free(prev.core);
		prev = cur;
		if (once) {
			rc = 0;
			break;
		}
	}
	goto out;
unanswered:
	fprintf(stderr, "wpctl: waypointd did not answer the /wp/ telemetry commands\n");
out:
	free(prev.core);
	wp_wpctl_tel_close(t);
	free(t);
	return rc;
}
