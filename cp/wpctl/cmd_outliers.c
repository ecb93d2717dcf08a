/*
 * wpctl outliers: the endpoints DestinationRule outlier detection ejected,
 * read from waypointd's DPDK telemetry socket (/wp/outliers, see
 * dp/l7/outlier.h): per endpoint its cluster, why it was ejected last
 * (5xx, gateway or local-origin), its ejections in a row (the multiplier
 * of baseEjectionTime) and ever, and the seconds left until it returns
 * (0: back in service); then how many are ejected now, by reason. --json
 * prints the telemetry reply as it is.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "wpctl.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: wpctl outliers [--prefix P] [--json]\n"
	           "\n"
	           "  -p, --prefix P   DPDK file prefix of the waypointd to read (default:\n"
	           "                   $WP_PREFIX, else \"waypointd\")\n"
	           "  -j, --json       print JSON instead of a table\n");
}

static const char *str_at(json_t *o, const char *k, size_t i)
{
	const char *s = json_string_value(json_array_get(json_object_get(o, k), i));

	return s ? s : "-";
}

static unsigned long long u64_at(json_t *o, const char *k, size_t i)
{
	return (unsigned long long)json_integer_value(json_array_get(json_object_get(o, k), i));
}

static unsigned long long u64_of(json_t *o, const char *k)
{
	return (unsigned long long)json_integer_value(json_object_get(o, k));
}

static void print_table(json_t *o)
{
	size_t n = json_array_size(json_object_get(o, "endpoint"));

	printf("%-24s %-13s %-9s %6s %6s %5s  %s\n", "ENDPOINT", "STATE", "REASON", "INROW",
	       "TOTAL", "LEFT", "CLUSTER");
	for (size_t i = 0; i < n; i++) {
		unsigned long long left = u64_at(o, "seconds_left", i);

		printf("%-24s %-13s %-9s %6llu %6llu %4llus  %s\n", str_at(o, "endpoint", i),
		       left ? "ejected" : "in service", str_at(o, "reason", i),
		       u64_at(o, "ejections", i), u64_at(o, "total", i), left,
		       str_at(o, "cluster", i));
	}
	printf("\nejected now: %llu (5xx %llu, gateway %llu, local-origin %llu); "
	       "ejections ever: %llu\n",
	       u64_of(o, "ejected_active"), u64_of(o, "ejected_active_5xx"),
	       u64_of(o, "ejected_active_gateway"), u64_of(o, "ejected_active_local_origin"),
	       u64_of(o, "ejections_total"));
}

int wp_wpctl_outliers(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"prefix", required_argument, NULL, 'p'},
	        {"json", no_argument, NULL, 'j'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *prefix = getenv("WP_PREFIX") ?: "waypointd";
	struct wp_wpctl_tel *t;
	bool json = false;
	json_t *o;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "p:jh", opts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			prefix = optarg;
			break;
		case 'j':
			json = true;
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
	o = wp_wpctl_tel_query(t, "/wp/outliers");
	wp_wpctl_tel_close(t);
	free(t);
	if (!json_is_object(o)) {
		fprintf(stderr, "wpctl: waypointd did not answer /wp/outliers (no HBONE data "
		                "path?)\n");
		json_decref(o);
		return 1;
	}
	if (json) {
		json_dumpf(o, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		printf("\n");
	} else {
		print_table(o);
	}
	json_decref(o);
	return 0;
}
