/*
 * `wpctl enrollment [--dir DIR] [--admin HOST:PORT] [--store]
 * [-o table|wide|json|yaml]`: every Service and Pod with the waypoint it is
 * bound to and why. With --dir the view is computed offline from a manifest
 * directory (the same parser and resolver waypointd runs; -o json/yaml print
 * the rows). Otherwise it is fetched from the running appliance's admin
 * endpoint (GET /enrollment): what the workers run, or with --store the
 * control plane's object store; the table opens with a line saying which and
 * what is not current yet, and -o json/yaml print the endpoint's object
 * (view, snapshot_version, synced, lagging, note, rows). Rows carry every
 * field in every format: kind, namespace, name, waypoint, reason, message,
 * via (self or namespace: where the use-waypoint label came from) and served
 * (whether this appliance serves that waypoint); the table leaves out via
 * and served, -o wide adds them. Columns are as wide as their widest cell,
 * as kubectl's printers make them.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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
	           "  -o, --output FORMAT  table (default), wide (adds VIA and SERVED), json "
	           "or yaml\n");
}

/* The table's columns: header and row field; the wide ones only with -o
 * wide. MESSAGE stays last (it is long and unpadded). */
static const struct column {
	const char *head, *field;
	bool wide;
} columns[] = {
        {"KIND", "kind", false},         {"NAMESPACE", "namespace", false}, {"NAME", "name", false},
        {"WAYPOINT", "waypoint", false}, {"REASON", "reason", false},       {"VIA", "via", true},
        {"SERVED", "served", true},      {"MESSAGE", "message", false},
};
#define N_COLUMNS (sizeof(columns) / sizeof(columns[0]))

/* A cell's text: strings as they are, booleans as true/false, null/absent
 * as "-" (the message column: empty). */
static const char *cell(json_t *row, const struct column *c)
{
	json_t *v = json_object_get(row, c->field);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	return strcmp(c->field, "message") ? "-" : "";
}

static void print_table(json_t *rows, bool wide)
{
	size_t width[N_COLUMNS], i, last = N_COLUMNS - 1;
	json_t *r;

	for (size_t c = 0; c < N_COLUMNS; c++)
		width[c] = strlen(columns[c].head);
	json_array_foreach(rows, i, r)
	{
		for (size_t c = 0; c < N_COLUMNS; c++) {
			size_t n = strlen(cell(r, &columns[c]));

			if (n > width[c])
				width[c] = n;
		}
	}
	/* Three spaces between columns, as kubectl's tabwriter pads. */
	for (size_t c = 0; c < last; c++)
		if (wide || !columns[c].wide)
			printf("%-*s   ", (int)width[c], columns[c].head);
	printf("%s\n", columns[last].head);
	json_array_foreach(rows, i, r)
	{
		for (size_t c = 0; c < last; c++)
			if (wide || !columns[c].wide)
				printf("%-*s   ", (int)width[c], cell(r, &columns[c]));
		printf("%s\n", cell(r, &columns[last]));
	}
}

/* A string YAML reads back as the same string without quotes: no YAML 1.1
 * keyword or number, no indicator characters (see PITFALLS: YAML booleans). */
static bool yaml_plain(const char *s)
{
	static const char *const words[] = {"true", "false", "yes", "no", "on",
	                                    "off",  "null",  "y",   "n",  "~"};
	char *end;

	if (!s[0] || isspace((unsigned char)s[0]) || isspace((unsigned char)s[strlen(s) - 1]))
		return false;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcasecmp(s, words[i]))
			return false;
	strtod(s, &end);
	if (!*end)
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-") ==
	               strlen(s) &&
	       s[0] != '-' && s[0] != '.';
}

static void yaml_scalar(json_t *v)
{
	char *q;

	if (json_is_string(v) && yaml_plain(json_string_value(v))) {
		fputs(json_string_value(v), stdout);
		return;
	}
	/* A JSON scalar is a valid YAML flow scalar (double-quoted string). */
	q = json_dumps(v, JSON_ENCODE_ANY);
	fputs(q ? q : "null", stdout);
	free(q);
}

/* The JSON value v as block YAML at indent (in spaces); in_seq: v is a
 * sequence item whose "- " is already printed. Key order as in the JSON. */
static void yaml_value(json_t *v, int indent, bool in_seq)
{
	const char *key;
	json_t *x;
	size_t i;
	bool first = true;

	if (json_is_object(v) && json_object_size(v)) {
		json_object_foreach(v, key, x)
		{
			if (!(in_seq && first))
				printf("%*s", indent, "");
			first = false;
			printf("%s:", key);
			if ((json_is_object(x) && json_object_size(x)) ||
			    (json_is_array(x) && json_array_size(x))) {
				putchar('\n');
				yaml_value(x, json_is_array(x) ? indent : indent + 2, false);
			} else {
				putchar(' ');
				yaml_value(x, indent + 2, false);
			}
		}
	} else if (json_is_array(v) && json_array_size(v)) {
		json_array_foreach(v, i, x)
		{
			if (!(in_seq && i == 0))
				printf("%*s", indent, "");
			fputs("- ", stdout);
			yaml_value(x, indent + 2, true);
		}
	} else {
		if (json_is_object(v))
			fputs("{}", stdout);
		else if (json_is_array(v))
			fputs("[]", stdout);
		else
			yaml_scalar(v);
		putchar('\n');
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
	if (optind < argc ||
	    (strcmp(out, "json") && strcmp(out, "yaml") && strcmp(out, "table") &&
	     strcmp(out, "wide")) ||
	    (store && dir)) {
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
		rows = wp_enrollment_json(r, true);
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
	}
	if (!rows) {
		fprintf(stderr, "wpctl: out of memory\n");
		return 1;
	}
	if (!strcmp(out, "json")) {
		if (json_dumpf(view ? view : rows, stdout, JSON_INDENT(2)) || putchar('\n') == EOF)
			rc = 1;
	} else if (!strcmp(out, "yaml")) {
		yaml_value(view ? view : rows, 0, false);
	} else {
		if (view)
			printf("# %s: %s\n", json_string_value(json_object_get(view, "view")),
			       json_string_value(json_object_get(view, "note")));
		print_table(rows, !strcmp(out, "wide"));
	}
	if (fflush(stdout) != 0)
		rc = 1;
	json_decref(rows);
	json_decref(view);
	return rc;
}
