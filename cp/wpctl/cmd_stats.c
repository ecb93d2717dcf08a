/*
 * wpctl stats: per-core data-plane statistics read from waypointd's DPDK
 * telemetry socket (/var/run/dpdk/<prefix>/dpdk_telemetry.v2), the same
 * socket dpdk-telemetry.py reads. Prints a table (one column per worker,
 * one for the control plane's counters, and a total), or JSON with --json;
 * --watch prints again every interval (see usage()).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "wpctl.h"

static unsigned long long get_u64(json_t *o, const char *k)
{
	return (unsigned long long)json_integer_value(json_object_get(o, k));
}

static void print_table(json_t *s, bool all)
{
	json_t *workers = json_object_get(s, "workers"), *total = json_object_get(s, "total"), *w,
	       *cp = json_object_get(s, "control_plane");
	size_t i;
	const char *key;
	json_t *val;

	printf("%-28s", "COUNTER");
	json_array_foreach(workers, i, w)
	{
		char h[32];
		snprintf(h, sizeof(h), "worker%llu", get_u64(w, "worker"));
		printf(" %14s", h);
	}
	printf(" %14s %14s\n", "cp", "TOTAL");
	printf("%-28s", "busy%");
	json_array_foreach(workers, i, w)
	{
		double b = (double)get_u64(w, "busy_cycles"),
		       id = (double)get_u64(w, "idle_cycles");
		printf(" %13.1f%%", b + id > 0 ? 100.0 * b / (b + id) : 0.0);
	}
	printf(" %14s %14s\n", "", "");
	json_object_foreach(total, key, val)
	{
		bool fixed = !strcmp(key, "rx_packets") || !strcmp(key, "rx_bytes") ||
		             !strcmp(key, "tx_packets") || !strcmp(key, "tx_bytes") ||
		             !strcmp(key, "busy_cycles") || !strcmp(key, "idle_cycles");

		if (!strcmp(key, "workers") || !strcmp(key, "loops") || !strcmp(key, "busy_loops"))
			continue;
		if (!fixed && !all && json_integer_value(val) == 0)
			continue;
		printf("%-28s", key);
		json_array_foreach(workers, i, w) printf(" %14llu", get_u64(w, key));
		printf(" %14llu %14llu\n", get_u64(cp, key),
		       (unsigned long long)json_integer_value(val));
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: wpctl stats [--prefix P] [--json] [--all] [--watch [SECONDS]]\n"
	           "\n"
	           "  -p, --prefix P   DPDK file prefix of the waypointd to read (default:\n"
	           "                   $WP_PREFIX, else \"waypointd\")\n"
	           "  -j, --json       print JSON instead of a table\n"
	           "  -a, --all        list counters that are still zero too\n"
	           "  -w, --watch [S]  print again every S seconds (default 1) until\n"
	           "                   interrupted: redrawn in place on a terminal, one\n"
	           "                   after the other (no escape sequences) otherwise\n");
}

/* The optional argument of --watch, given as "--watch=S" or "--watch S". */
static const char *watch_arg(int argc, char **argv)
{
	char *end;

	if (optarg)
		return optarg;
	if (optind < argc && argv[optind][0] != '-') {
		strtod(argv[optind], &end);
		if (*end == '\0')
			return argv[optind++];
	}
	return NULL;
}

int wp_wpctl_stats(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"prefix", required_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
	        {"all", no_argument, NULL, 'a'},          {"watch", optional_argument, NULL, 'w'},
	        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *prefix = getenv("WP_PREFIX") ?: "waypointd", *w;
	bool json = false, all = false, tty = isatty(STDOUT_FILENO);
	double watch = 0, next;
	struct wp_wpctl_tel *t;
	int opt, rc = 1;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:jaw::h", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			prefix = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'a':
			all = true;
			break;
		case 'w':
			w = watch_arg(argc, argv);
			watch = w ? atof(w) : 1.0;
			if (watch <= 0) {
				fprintf(stderr, "wpctl: --watch needs a positive interval\n");
				return 2;
			}
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
		usage(stderr);
		return 2;
	}
	t = malloc(sizeof(*t));
	if (t == NULL || wp_wpctl_tel_open(t, prefix) != 0) {
		free(t);
		return 1;
	}
	next = wp_wpctl_now();
	for (unsigned n = 0;; n++) {
		json_t *s = wp_wpctl_tel_collect(t);

		if (s == NULL) {
			fprintf(stderr,
			        "wpctl: waypointd did not answer the /wp/ telemetry commands\n");
			break;
		}
		if (watch > 0 && tty)
			printf("\033[H\033[2J");
		else if (n > 0 && !json)
			printf("\n");
		if (json) {
			/* one document per line when printing again */
			json_dumpf(s, stdout,
			           watch > 0 ? JSON_COMPACT | JSON_SORT_KEYS
			                     : JSON_INDENT(2) | JSON_SORT_KEYS);
			printf("\n");
		} else {
			print_table(s, all);
		}
		fflush(stdout);
		json_decref(s);
		if (watch <= 0) {
			rc = 0;
			break;
		}
		/* the next deadline, not now + interval: the interval holds
		 * however long a read takes */
		next += watch;
		wp_wpctl_sleep_until(next);
	}
	wp_wpctl_tel_close(t);
	free(t);
	return rc;
}
