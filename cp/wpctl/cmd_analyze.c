/*
 * `wpctl analyze [--dir DIR | --config FILE] [-o log|json]
 * [--failure-threshold LEVEL]`: istioctl analyze for a manifest directory.
 *
 * The directory is read exactly as waypointd reads it
 * (wp_source_manifest_dir_load into a sink of ours), so every document
 * waypointd would reject is an Error here, with its file and line. The sink's
 * document hook also shows us each document before the model types it, which
 * is how the checks the model does not make get their input:
 *
 *   Error    a name, namespace or label Kubernetes would refuse (RFC 1123 /
 *            1035 names per kind, qualified label keys, label values): the
 *            API server answers 422 to such a manifest;
 *   Warning  a kind waypointd does not read (a misspelt `kind:` would
 *            otherwise vanish without a word), a kind in an API group or
 *            version it is not served in, istio.io/use-waypoint naming a
 *            Gateway no manifest defines, istio.io/waypoint-for with a value
 *            istiod does not know.
 *
 * Messages go to stdout as `LEVEL [FILE:LINE] message` (or a JSON array),
 * the all-clear line to stderr as istioctl prints it; the exit status is 1 when one is at or above
 * --failure-threshold (Error by default, as istioctl), 2 on a usage error.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "wp/config.h"
#include "wp/model.h"
#include "wp/source.h"
#include "wpctl.h"

enum level { L_INFO, L_WARNING, L_ERROR };
static const char *const level_names[] = {"Info", "Warning", "Error"};

struct msg {
	enum level level;
	char *file;
	unsigned line; /* 0: the file as a whole */
	unsigned seq;  /* order of arrival, to keep sorting stable */
	char *text;
};

struct analysis {
	struct msg *msgs;
	unsigned n_msgs, cap_msgs;
	struct wp_obj **objs; /* every object the model accepted */
	unsigned n_objs, cap_objs;
	bool oom;
};

/* The API group and versions Kubernetes serves each kind we read in. */
static const struct {
	enum wp_kind kind;
	const char *group;
	const char *const versions[4];
} served[] = {
        {WP_KIND_NAMESPACE, "", {"v1"}},
        {WP_KIND_SERVICE, "", {"v1"}},
        {WP_KIND_POD, "", {"v1"}},
        {WP_KIND_ENDPOINTSLICE, "discovery.k8s.io", {"v1"}},
        {WP_KIND_GATEWAY, "gateway.networking.k8s.io", {"v1", "v1beta1"}},
        {WP_KIND_GATEWAYCLASS, "gateway.networking.k8s.io", {"v1", "v1beta1"}},
        {WP_KIND_HTTPROUTE, "gateway.networking.k8s.io", {"v1", "v1beta1"}},
        {WP_KIND_AUTHORIZATIONPOLICY, "security.istio.io", {"v1", "v1beta1"}},
        {WP_KIND_DESTINATIONRULE, "networking.istio.io", {"v1", "v1beta1", "v1alpha3"}},
        {WP_KIND_SERVICEENTRY, "networking.istio.io", {"v1", "v1beta1", "v1alpha3"}},
        {WP_KIND_VIRTUALSERVICE, "networking.istio.io", {"v1", "v1beta1", "v1alpha3"}},
        {WP_KIND_TELEMETRY, "telemetry.istio.io", {"v1", "v1alpha1"}},
};

static void add(struct analysis *a, enum level lv, const char *file, unsigned line, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
static void add(struct analysis *a, enum level lv, const char *file, unsigned line, const char *fmt,
                ...)
{
	struct msg *m;
	va_list ap;
	int n;

	if (a->n_msgs == a->cap_msgs) {
		unsigned nc = a->cap_msgs ? a->cap_msgs * 2 : 16;
		struct msg *v = realloc(a->msgs, nc * sizeof(*v));

		if (!v) {
			a->oom = true;
			return;
		}
		a->msgs = v;
		a->cap_msgs = nc;
	}
	m = &a->msgs[a->n_msgs];
	m->level = lv;
	m->line = line;
	m->seq = a->n_msgs;
	m->file = strdup(file);
	va_start(ap, fmt);
	n = vasprintf(&m->text, fmt, ap);
	va_end(ap);
	if (!m->file || n < 0) {
		free(m->file);
		a->oom = true;
		return;
	}
	a->n_msgs++;
}

/* ---- Kubernetes name rules (k8s.io/apimachinery validation) ---------- */

static bool alnum_lower(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..n) */
static bool rfc1123_label_chars(const char *s, size_t n)
{
	if (!n || !alnum_lower(s[0]) || !alnum_lower(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!alnum_lower(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* RFC 1123 subdomain: labels joined by '.', 253 characters at most. */
static bool rfc1123_subdomain(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > 253)
		return false;
	for (const char *p = s;;) {
		size_t l = strcspn(p, ".");

		if (!rfc1123_label_chars(p, l))
			return false;
		if (!p[l])
			return true;
		p += l + 1;
	}
}

/* Explains why name is not valid for kind, or NULL when it is. */
static const char *bad_name(enum wp_kind kind, const char *name)
{
	size_t n = strlen(name);

	switch (kind) {
	case WP_KIND_NAMESPACE:
		if (n > 63)
			return "must be no more than 63 characters";
		if (!rfc1123_label_chars(name, n))
			return "a lowercase RFC 1123 label must consist of lower case alphanumeric "
			       "characters or '-', and must start and end with an alphanumeric "
			       "character";
		return NULL;
	case WP_KIND_SERVICE:
		if (n > 63)
			return "must be no more than 63 characters";
		if (!rfc1123_label_chars(name, n) || isdigit((unsigned char)name[0]))
			return "a DNS-1035 label must consist of lower case alphanumeric "
			       "characters "
			       "or '-', start with an alphabetic character, and end with an "
			       "alphanumeric character";
		return NULL;
	default:
		if (n > 253)
			return "must be no more than 253 characters";
		if (!rfc1123_subdomain(name))
			return "a lowercase RFC 1123 subdomain must consist of lower case "
			       "alphanumeric characters, '-' or '.', and must start and end with "
			       "an "
			       "alphanumeric character";
		return NULL;
	}
}

/* ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9] over s[0..n), n <= 63 */
static bool label_name_chars(const char *s, size_t n)
{
	if (!n || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

static const char *const label_rule =
        "must be 63 characters or less and consist of alphanumeric characters, '-', '_' or "
        "'.', starting and ending with an alphanumeric character";

/* A label key: [DNS-1123 subdomain prefix "/"] name. */
static const char *bad_label_key(const char *key)
{
	const char *slash = strchr(key, '/');
	char prefix[256];

	if (!slash)
		return label_name_chars(key, strlen(key)) ? NULL : label_rule;
	if (strchr(slash + 1, '/'))
		return "a qualified name has at most one '/'";
	if ((size_t)(slash - key) >= sizeof(prefix) || slash == key)
		return "the prefix must be a DNS-1123 subdomain of 253 characters or less";
	memcpy(prefix, key, (size_t)(slash - key));
	prefix[slash - key] = '\0';
	if (!rfc1123_subdomain(prefix))
		return "the prefix must be a lowercase RFC 1123 subdomain (alphanumerics, '-', "
		       "'.')";
	return label_name_chars(slash + 1, strlen(slash + 1)) ? NULL : label_rule;
}

static const char *bad_label_value(const char *v)
{
	if (!v[0])
		return NULL;
	return label_name_chars(v, strlen(v)) ? NULL : label_rule;
}

/* ---- per-document checks (the sink's document hook) ------------------- */

static const char *scalar(const struct wp_ynode *map, const char *key)
{
	const struct wp_ynode *n = wp_ynode_get(map, key);

	return n && n->type == WP_YNODE_SCALAR && !wp_ynode_is_null(n) ? n->value : NULL;
}

/* Levenshtein distance, case-insensitive, capped at 3. */
static unsigned distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[64];

	if (la >= 63 || lb >= 63)
		return 3;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned diag = row[0];

		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned up = row[j];
			unsigned best = diag + (tolower((unsigned char)a[i - 1]) !=
			                        tolower((unsigned char)b[j - 1]));

			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] < 3 ? row[lb] : 3;
}

static const char *group_of(enum wp_kind k)
{
	for (size_t i = 0; i < WP_ARRAY_SIZE(served); i++)
		if (served[i].kind == k)
			return served[i].group;
	return "";
}

static void check_kind(struct analysis *a, const char *file, unsigned line, const char *kind,
                       const char *apiv, enum wp_kind k)
{
	const char *slash = strchr(apiv, '/');
	const char *version = slash ? slash + 1 : apiv;
	enum wp_kind other;

	if (k != WP_KIND_NONE) {
		for (size_t i = 0; i < WP_ARRAY_SIZE(served); i++) {
			if (served[i].kind != k)
				continue;
			for (size_t v = 0; v < 4 && served[i].versions[v]; v++)
				if (!strcmp(version, served[i].versions[v]))
					return;
		}
		add(a, L_WARNING, file, line,
		    "apiVersion %s: Kubernetes does not serve %s in version %s; waypointd reads "
		    "it, the API server would refuse it",
		    apiv, kind, version);
		return;
	}
	other = wp_kind_from_name(kind, NULL);
	if (other != WP_KIND_NONE) {
		const char *g = group_of(other);

		add(a, L_WARNING, file, line,
		    "%s of apiVersion %s is not a kind waypointd reads (it reads %s of %s); the "
		    "object is ignored",
		    kind, apiv, kind, g[0] ? g : "the core group (apiVersion v1)");
		return;
	}
	for (int i = WP_KIND_NONE + 1; i < WP_KIND_MAX; i++) {
		if (distance(kind, wp_kind_name((enum wp_kind)i)) <= 2) {
			add(a, L_WARNING, file, line,
			    "unknown kind %s (apiVersion %s) is ignored: did you mean %s?", kind,
			    apiv, wp_kind_name((enum wp_kind)i));
			return;
		}
	}
	add(a, L_WARNING, file, line,
	    "kind %s (apiVersion %s) is not one waypointd reads; the object is ignored", kind,
	    apiv);
}

static void on_document(void *ctx, const char *file, const struct wp_ynode *root)
{
	struct analysis *a = ctx;
	const char *kind = scalar(root, "kind"), *apiv = scalar(root, "apiVersion");
	const struct wp_ynode *meta = wp_ynode_get(root, "metadata"), *n, *labels;
	const char *why, *name, *ns;
	enum wp_kind k;
	char id[600];

	if (!kind || !apiv)
		return; /* the model reports it */
	k = wp_kind_from_name(kind, apiv);
	check_kind(a, file, root->line, kind, apiv, k);
	if (k == WP_KIND_NONE || !meta || meta->type != WP_YNODE_MAP)
		return; /* ignored by waypointd, or rejected by the model */
	name = scalar(meta, "name") ? scalar(meta, "name") : "?";
	ns = scalar(meta, "namespace") ? scalar(meta, "namespace") : "default";
	if (wp_kind_namespaced(k))
		snprintf(id, sizeof(id), "%s %s/%s", kind, ns, name);
	else
		snprintf(id, sizeof(id), "%s %s", kind, name);
	n = wp_ynode_get(meta, "name");
	if (n && n->type == WP_YNODE_SCALAR && n->value[0] && (why = bad_name(k, n->value)))
		add(a, L_ERROR, file, n->line, "%s: metadata.name: Invalid value: \"%s\": %s", id,
		    n->value, why);
	n = wp_ynode_get(meta, "namespace");
	if (wp_kind_namespaced(k) && n && n->type == WP_YNODE_SCALAR && !wp_ynode_is_null(n) &&
	    (why = bad_name(WP_KIND_NAMESPACE, n->value)))
		add(a, L_ERROR, file, n->line, "%s: metadata.namespace: Invalid value: \"%s\": %s",
		    id, n->value, why);
	labels = wp_ynode_get(meta, "labels");
	if (!labels || labels->type != WP_YNODE_MAP)
		return;
	for (const struct wp_ynode *l = labels->child; l; l = l->next) {
		if ((why = bad_label_key(l->key)))
			add(a, L_ERROR, file, l->line,
			    "%s: metadata.labels: Invalid value: \"%s\": %s", id, l->key, why);
		if (l->type == WP_YNODE_SCALAR && (why = bad_label_value(l->value)))
			add(a, L_ERROR, file, l->line,
			    "%s: metadata.labels: Invalid value: \"%s\": %s", id, l->value, why);
	}
}

/* ---- sink ----------------------------------------------------------------- */

static int on_upsert(void *ctx, struct wp_obj *obj)
{
	struct analysis *a = ctx;

	if (a->n_objs == a->cap_objs) {
		unsigned nc = a->cap_objs ? a->cap_objs * 2 : 64;
		struct wp_obj **v = realloc(a->objs, nc * sizeof(*v));

		if (!v) {
			a->oom = true;
			wp_obj_free(obj);
			return -ENOMEM;
		}
		a->objs = v;
		a->cap_objs = nc;
	}
	a->objs[a->n_objs++] = obj;
	return 0;
}

static int on_remove(void *ctx, enum wp_kind kind, const char *ns, const char *name)
{
	(void)ctx, (void)kind, (void)ns, (void)name;
	return 0; /* a one-shot load never withdraws anything */
}

/* msg is "ORIGIN:LINE: text" or "ORIGIN: text" (wp/source.h). */
static void on_error(void *ctx, const char *origin, const char *msg)
{
	struct analysis *a = ctx;
	size_t ol = strlen(origin);
	unsigned line = 0;
	const char *text = msg;

	if (!strncmp(msg, origin, ol) && msg[ol] == ':') {
		char *end;
		unsigned long l = strtoul(msg + ol + 1, &end, 10);

		if (end != msg + ol + 1 && *end == ':') {
			line = (unsigned)l;
			text = end + 1;
		} else {
			text = msg + ol + 1;
		}
		text += strspn(text, " ");
	}
	add(a, L_ERROR, origin, line, "%s", text);
}

static void on_clear_errors(void *ctx, const char *origin)
{
	(void)ctx, (void)origin;
}

static void on_synced(void *ctx, const char *source_name)
{
	(void)ctx, (void)source_name;
}

static const struct wp_source_sink_ops sink_ops = {
        .upsert = on_upsert,
        .remove = on_remove,
        .error = on_error,
        .clear_errors = on_clear_errors,
        .synced = on_synced,
        .document = on_document,
};

/* ---- cross-object waypoint checks ------------------------------------- */

static bool gateway_exists(const struct analysis *a, const char *ns, const char *name)
{
	for (unsigned i = 0; i < a->n_objs; i++) {
		const struct wp_obj *o = a->objs[i];

		if (o->kind == WP_KIND_GATEWAY && !strcmp(o->meta.ns, ns) &&
		    !strcmp(o->meta.name, name))
			return true;
	}
	return false;
}

static void check_waypoints(struct analysis *a, const char *dir)
{
	unsigned n = a->n_objs;

	for (unsigned i = 0; i < n; i++) {
		const struct wp_obj *o = a->objs[i];
		const char *use = wp_labels_get(&o->meta.labels, WP_LABEL_USE_WAYPOINT);
		const char *wf = wp_labels_get(&o->meta.labels, WP_LABEL_WAYPOINT_FOR);
		const char *kn = wp_kind_name(o->kind);
		char id[600];

		snprintf(id, sizeof(id), "%s %s%s%s", kn, o->meta.ns, o->meta.ns[0] ? "/" : "",
		         o->meta.name);
		if (use && strcmp(use, "none") &&
		    (o->kind == WP_KIND_NAMESPACE || o->kind == WP_KIND_SERVICE ||
		     o->kind == WP_KIND_POD || o->kind == WP_KIND_SERVICEENTRY)) {
			const char *wns = wp_labels_get(&o->meta.labels, WP_LABEL_USE_WAYPOINT_NS);
			const char *tns =
			        wns ? wns
			            : (o->kind == WP_KIND_NAMESPACE ? o->meta.name : o->meta.ns);

			if (!gateway_exists(a, tns, use))
				add(a, L_WARNING, o->origin, o->line,
				    "%s: " WP_LABEL_USE_WAYPOINT " names Gateway %s/%s, which no "
				    "manifest in %s defines",
				    id, tns, use, dir);
		}
		if (wf && (o->kind == WP_KIND_GATEWAY || o->kind == WP_KIND_GATEWAYCLASS) &&
		    strcmp(wf, "all") && strcmp(wf, "none") && strcmp(wf, "service") &&
		    strcmp(wf, "workload"))
			add(a, L_WARNING, o->origin, o->line,
			    "%s: " WP_LABEL_WAYPOINT_FOR
			    " \"%s\" is not one of all, none, service, "
			    "workload; the waypoint takes no traffic",
			    id, wf);
	}
}

/* ---- output ------------------------------------------------------------- */

static int msg_cmp(const void *x, const void *y)
{
	const struct msg *a = x, *b = y;
	int c = strcmp(a->file, b->file);

	if (c)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int print_json(const struct analysis *a)
{
	json_t *arr = json_array();
	int rc = 0;

	for (unsigned i = 0; arr && i < a->n_msgs; i++) {
		const struct msg *m = &a->msgs[i];

		if (json_array_append_new(arr,
		                          json_pack("{s:s, s:s, s:I, s:s}", "level",
		                                    level_names[m->level], "file", m->file, "line",
		                                    (json_int_t)m->line, "message", m->text)))
			rc = 1;
	}
	if (!arr || rc || json_dumpf(arr, stdout, JSON_INDENT(2)) || putchar('\n') == EOF)
		rc = 1;
	json_decref(arr);
	return rc;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Analyze a manifest directory as waypointd reads it and print validation "
	        "messages\n\n"
	        "usage: wpctl analyze [--dir DIR | --config FILE] [-o log|json] "
	        "[--failure-threshold LEVEL]\n\n"
	        "flags:\n"
	        "      --dir DIR                  the manifest directory (default \"%s\", "
	        "cluster.manifest_dir's default)\n"
	        "      --config FILE              analyze the cluster.manifest_dir of this "
	        "waypoint.conf (a relative one from the current directory, as waypointd)\n"
	        "  -o, --output FORMAT            log (default): LEVEL [FILE:LINE] message; json: "
	        "an array of {level, file, line, message}\n"
	        "      --failure-threshold LEVEL  exit 1 from this severity on: Info, Warning or "
	        "Error (default Error)\n"
	        "  -h, --help                     help for analyze\n\n"
	        "Errors: documents waypointd rejects, and names or labels the Kubernetes API\n"
	        "refuses. Warnings: kinds waypointd does not read, apiVersions Kubernetes does\n"
	        "not serve, istio.io/use-waypoint naming a Gateway the directory lacks,\n"
	        "istio.io/waypoint-for values istiod does not know.\n",
	        WP_DEFAULT_MANIFEST_DIR);
}

/* cluster.manifest_dir of a waypoint.conf, or NULL after printing why. */
static char *dir_of_config(const char *path)
{
	struct wp_config *cfg = calloc(1, sizeof(*cfg));
	char err[512];
	char *dir = NULL;

	if (!cfg) {
		fprintf(stderr, "wpctl: out of memory\n");
		return NULL;
	}
	if (wp_config_load(path, NULL, 0, cfg, err, sizeof(err)))
		fprintf(stderr, "wpctl: %s\n", err);
	else if (!cfg->cluster.manifest_dir[0])
		fprintf(stderr,
		        "wpctl: %s: cluster.manifest_dir is empty (objects come from Kubernetes); "
		        "nothing to analyze\n",
		        path);
	else if (!(dir = strdup(cfg->cluster.manifest_dir)))
		fprintf(stderr, "wpctl: out of memory\n");
	free(cfg);
	return dir;
}

int wp_wpctl_analyze(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"dir", required_argument, NULL, 'd'},
	        {"config", required_argument, NULL, 'C'},
	        {"output", required_argument, NULL, 'o'},
	        {"failure-threshold", required_argument, NULL, 't'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct analysis a = {0};
	const struct wp_source_sink sink = {.ops = &sink_ops, .ctx = &a};
	const char *dir_arg = NULL, *config = NULL, *out = "log";
	enum level threshold = L_ERROR, worst = L_INFO;
	char *dir = NULL;
	int c, rc = 0, lr;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir_arg = optarg;
			break;
		case 'C':
			config = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 't':
			for (threshold = L_INFO; threshold <= L_ERROR; threshold++)
				if (!strcasecmp(optarg, level_names[threshold]))
					break;
			if (threshold > L_ERROR) {
				fprintf(stderr,
				        "wpctl analyze: --failure-threshold wants Info, Warning or "
				        "Error, not \"%s\"\n",
				        optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "wpctl analyze: flag needs an argument: %s\n",
			        argv[optind - 1]);
			return 2;
		default:
			fprintf(stderr, "wpctl analyze: unknown flag: %s\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc && !strcmp(argv[optind], "help")) {
		usage(stdout);
		return 0;
	}
	if (optind < argc) {
		fprintf(stderr, "wpctl analyze: unexpected argument \"%s\" (use --dir DIR)\n",
		        argv[optind]);
		return 2;
	}
	if (strcmp(out, "log") && strcmp(out, "json")) {
		fprintf(stderr, "wpctl analyze: --output wants log or json, not \"%s\"\n", out);
		return 2;
	}
	if (dir_arg && config) {
		fprintf(stderr, "wpctl analyze: --dir and --config exclude each other\n");
		return 2;
	}
	dir = config ? dir_of_config(config) : strdup(dir_arg ? dir_arg : WP_DEFAULT_MANIFEST_DIR);
	if (!dir)
		return 1;

	lr = wp_source_manifest_dir_load(dir, &sink);
	if (lr < 0) {
		fprintf(stderr, "wpctl: cannot read %s: %s\n", dir, strerror(-lr));
		rc = 1;
		goto out;
	}
	check_waypoints(&a, dir);
	if (a.oom) {
		fprintf(stderr, "wpctl: out of memory\n");
		rc = 1;
		goto out;
	}
	if (a.n_msgs) /* NULL when there is none: qsort() must not see it */
		qsort(a.msgs, a.n_msgs, sizeof(*a.msgs), msg_cmp);
	for (unsigned i = 0; i < a.n_msgs; i++)
		if (a.msgs[i].level > worst)
			worst = a.msgs[i].level;
	if (!strcmp(out, "json")) {
		rc = print_json(&a);
	} else {
		for (unsigned i = 0; i < a.n_msgs; i++) {
			const struct msg *m = &a.msgs[i];

			if (m->line)
				printf("%s [%s:%u] %s\n", level_names[m->level], m->file, m->line,
				       m->text);
			else
				printf("%s [%s] %s\n", level_names[m->level], m->file, m->text);
		}
	}
	/* as istioctl: the all-clear on stderr, so stdout holds only messages */
	if (!rc && !a.n_msgs)
		fprintf(stderr, "\u2714 No validation issues found when analyzing directory %s.\n",
		        dir);
	if (!rc && a.n_msgs && worst >= threshold) {
		fflush(stdout);
		fprintf(stderr, "Error: Analyzers found issues when analyzing directory %s.\n",
		        dir);
		rc = 1;
	}
out:
	for (unsigned i = 0; i < a.n_msgs; i++) {
		free(a.msgs[i].file);
		free(a.msgs[i].text);
	}
	free(a.msgs);
	for (unsigned i = 0; i < a.n_objs; i++)
		wp_obj_free(a.objs[i]);
	free(a.objs);
	free(dir);
	return rc;
}
