/*
 * `wpctl enrollment [--dir DIR] [--admin HOST:PORT] [--store] [-o table|json]`:
 * every Service and Pod with the waypoint it is bound to and why. With --dir
 * the view is computed offline from a manifest directory (the same parser
 * and resolver waypointd runs; -o json prints the rows). Otherwise it is
 * fetched from the running appliance's admin endpoint (GET /enrollment):
 * what the workers run, or with --store the control plane's object store;
 * the table opens with a line saying which and what is not current yet, and
 * -o json prints the endpoint's object (view, snapshot_version, synced,
 * lagging, note, rows).
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "wp/cp_json.h"
#include "wp/model.h"
#include "wp/resolve.h"
#include "wp/source.h"
#include "wpctl.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: wpctl enrollment [--dir DIR] [--admin HOST:PORT] [--store] "
	           "[-o table|json]\n"
	           "  --dir DIR            compute offline from the manifests in DIR\n"
	           "  --admin HOST:PORT    admin endpoint of a running waypointd "
	           "(default 127.0.0.1:15000)\n"
	           "  --store              the appliance's object store (what it has received, "
	           "maybe half-listed)\n"
	           "                       instead of the snapshot its workers run\n"
	           "  --gateway NS/NAME    (offline) treat this Gateway as served (repeatable)\n"
	           "  --class NAME         (offline) serve every Gateway of this class "
	           "(default istio-waypoint)\n"
	           "  -o, --output FORMAT  table (default) or json\n");
}

static void print_table(json_t *rows)
{
	size_t i;
	json_t *r;

	printf("%-8s %-20s %-32s %-32s %-24s %s\n", "KIND", "NAMESPACE", "NAME", "WAYPOINT",
	       "REASON", "MESSAGE");
	json_array_foreach(rows, i, r)
	{
		const char *wp = json_string_value(json_object_get(r, "waypoint"));
		const char *msg = json_string_value(json_object_get(r, "message"));

		printf("%-8s %-20s %-32s %-32s %-24s %s\n",
		       json_string_value(json_object_get(r, "kind")),
		       json_string_value(json_object_get(r, "namespace")),
		       json_string_value(json_object_get(r, "name")), wp ? wp : "-",
		       json_string_value(json_object_get(r, "reason")), msg ? msg : "");
	}
}

int wp_wpctl_enrollment(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"dir", required_argument, NULL, 'd'},    {"admin", required_argument, NULL, 'a'},
	        {"output", required_argument, NULL, 'o'}, {"gateway", required_argument, NULL, 'g'},
	        {"class", required_argument, NULL, 'c'},  {"store", no_argument, NULL, 's'},
	        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	const char *dir = NULL, *admin = "127.0.0.1:15000", *out = "table", *cls = NULL;
	const char *gws[64];
	unsigned n_gws = 0;
	json_t *rows = NULL, *view = NULL;
	bool store = false;
	int c, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "d:a:o:g:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'a':
			admin = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'g':
			if (n_gws < WP_ARRAY_SIZE(gws))
				gws[n_gws++] = optarg;
			break;
		case 'c':
			cls = optarg;
			break;
		case 's':
			store = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || (strcmp(out, "json") && strcmp(out, "table")) || (store && dir)) {
		usage(stderr);
		return 2;
	}
	if (dir) {
		struct wp_served served = {
		        .n_gateways = n_gws,
		        .gateways = gws,
		        .class_name = cls ? cls : (n_gws ? NULL : "istio-waypoint"),
		};
		struct wp_resolver *r = wp_resolver_create(&served);
		const char *const *errs;
		unsigned ne;
		int lr;

		if (!r) {
			fprintf(stderr, "wpctl: out of memory\n");
			return 1;
		}
		lr = wp_source_manifest_dir_load(dir, wp_resolver_sink(r));
		if (lr < 0) {
			fprintf(stderr, "wpctl: cannot read %s: %s\n", dir, strerror(-lr));
			wp_resolver_destroy(r);
			return 1;
		}
		ne = wp_resolver_errors(r, &errs);
		for (unsigned i = 0; i < ne; i++)
			fprintf(stderr, "wpctl: %s\n", errs[i]);
		rows = wp_enrollment_json(r, !strcmp(out, "table"));
		wp_resolver_destroy(r);
	} else {
		char *body = NULL;
		json_error_t jerr;
		const char *path = store ? "/enrollment?view=store" : "/enrollment";
		int st = wp_wpctl_admin_get(admin, path, &body);

		if (st != 200) {
			if (st > 0)
				fprintf(stderr, "wpctl: %s%s answered %d\n", admin, path, st);
			free(body);
			return 1;
		}
		view = json_loads(body, 0, &jerr);
		free(body);
		rows = json_incref(json_object_get(view, "rows"));
		if (!json_is_array(rows)) {
			fprintf(stderr, "wpctl: bad answer from %s: %s\n", admin,
			        view ? "no rows" : jerr.text);
			json_decref(view);
			json_decref(rows);
			return 1;
		}
		if (!strcmp(out, "json")) {
			/* the documented format: drop the detail fields */
			size_t i;
			json_t *r;

			json_array_foreach(rows, i, r)
			{
				json_object_del(r, "message");
				json_object_del(r, "via");
				json_object_del(r, "served");
			}
		}
	}
	if (!rows) {
		fprintf(stderr, "wpctl: out of memory\n");
		return 1;
	}
	if (!strcmp(out, "json")) {
		if (json_dumpf(view ? view : rows, stdout, JSON_INDENT(2)) || putchar('\n') == EOF)
			rc = 1;
	} else {
		if (view)
			printf("# %s: %s\n", json_string_value(json_object_get(view, "view")),
			       json_string_value(json_object_get(view, "note")));
		print_table(rows);
	}
	json_decref(rows);
	json_decref(view);
	return rc;
}
