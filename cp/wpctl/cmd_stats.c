/*
 * wpctl stats: per-core data-plane statistics read from waypointd's DPDK
 * telemetry socket (/var/run/dpdk/<prefix>/dpdk_telemetry.v2), the same
 * socket dpdk-telemetry.py reads. Prints a table (one column per worker,
 * one for the control plane's counters, and a total), or JSON with --json;
 * --watch redraws every interval.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "wpctl.h"

#define TEL_BUF (64 * 1024)

struct tel {
	int fd;
	char buf[TEL_BUF];
};

static int tel_open(struct tel *t, const char *prefix)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	ssize_t n;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "/var/run/dpdk/%s/dpdk_telemetry.v2", prefix);
	t->fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (t->fd < 0)
		return -errno;
	if (connect(t->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;
		fprintf(stderr,
		        "wpctl: cannot connect to %s: %s (is waypointd running with "
		        "eal.file_prefix=%s?)\n",
		        sun.sun_path, strerror(e), prefix);
		close(t->fd);
		return -e;
	}
	n = recv(t->fd, t->buf, sizeof(t->buf) - 1, 0); /* the greeting */
	if (n <= 0) {
		close(t->fd);
		return -EIO;
	}
	return 0;
}

/* Sends one command; returns the value under the command's key (caller decrefs). */
static json_t *tel_query(struct tel *t, const char *cmd)
{
	json_error_t jerr;
	json_t *root, *v;
	ssize_t n;

	if (send(t->fd, cmd, strlen(cmd), 0) < 0)
		return NULL;
	n = recv(t->fd, t->buf, sizeof(t->buf) - 1, 0);
	if (n <= 0)
		return NULL;
	t->buf[n] = '\0';
	root = json_loads(t->buf, 0, &jerr);
	if (root == NULL) {
		fprintf(stderr, "wpctl: bad telemetry reply to %s: %s\n", cmd, jerr.text);
		return NULL;
	}
	{
		char key[64];

		snprintf(key, sizeof(key), "%.*s", (int)strcspn(cmd, ","), cmd);
		v = json_object_get(root, key);
	}
	json_incref(v);
	json_decref(root);
	return v;
}

/*
 * Telemetry nests the counters in one dict per name prefix (a telemetry
 * dict holds at most 256 values); merge them back into one flat object.
 */
static json_t *flatten(json_t *o)
{
	json_t *flat = json_object(), *v, *iv;
	const char *k, *ik;

	json_object_foreach(o, k, v)
	{
		if (json_is_object(v)) {
			json_object_foreach(v, ik, iv) json_object_set(flat, ik, iv);
		} else {
			json_object_set(flat, k, v);
		}
	}
	json_decref(o);
	return flat;
}

/* {"tsc_hz": .., "workers": [per-worker dicts], "control_plane": {..},
 *  "total": {..}}; the total includes the control plane's counters. */
static json_t *collect(struct tel *t)
{
	json_t *info = tel_query(t, "/wp/info"), *ids = NULL, *out = NULL, *arr, *total, *v, *cp;
	size_t i;

	if (info == NULL || (ids = tel_query(t, "/wp/workers")) == NULL)
		goto done;
	arr = json_array();
	json_array_foreach(ids, i, v)
	{
		char cmd[64];
		json_t *w;

		snprintf(cmd, sizeof(cmd), "/wp/worker,%lld", json_integer_value(v));
		w = tel_query(t, cmd);
		if (w == NULL) {
			json_decref(arr);
			goto done;
		}
		json_array_append_new(arr, flatten(w));
	}
	total = tel_query(t, "/wp/stats");
	if (total == NULL) {
		json_decref(arr);
		goto done;
	}
	total = flatten(total);
	cp = tel_query(t, "/wp/cp");
	cp = cp ? flatten(cp) : json_object();
	out = json_pack("{s:O, s:O, s:o, s:o, s:o}", "version", json_object_get(info, "version"),
	                "tsc_hz", json_object_get(info, "tsc_hz"), "workers", arr, "control_plane",
	                cp, "total", total);
done:
	json_decref(info);
	json_decref(ids);
	return out;
}

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

		if (!strcmp(key, "workers") || !strcmp(key, "loops"))
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
	           "  -w, --watch [S]  redraw every S seconds (default 1) until interrupted\n");
}

int wp_wpctl_stats(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"prefix", required_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
	        {"all", no_argument, NULL, 'a'},          {"watch", optional_argument, NULL, 'w'},
	        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *prefix = getenv("WP_PREFIX") ?: "waypointd";
	bool json = false, all = false;
	double watch = 0;
	struct tel *t;
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
			watch = optarg ? atof(optarg) : 1.0;
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
	t = malloc(sizeof(*t));
	if (t == NULL || tel_open(t, prefix) != 0) {
		free(t);
		return 1;
	}
	for (;;) {
		json_t *s = collect(t);

		if (s == NULL) {
			fprintf(stderr,
			        "wpctl: waypointd did not answer the /wp/ telemetry commands\n");
			break;
		}
		if (watch > 0)
			printf("\033[H\033[2J");
		if (json) {
			json_dumpf(s, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
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
		usleep((useconds_t)(watch * 1e6));
	}
	close(t->fd);
	free(t);
	return rc;
}
