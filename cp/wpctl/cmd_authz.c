/*
 * `wpctl authz check --from PRINCIPAL --to HOST:PORT [...]`: the
 * AuthorizationPolicy decision for one concrete request, the policy and rule
 * that made it and whether an AUDIT policy matched (istioctl x authz check,
 * answering for a request rather than listing a proxy's policies).
 *
 * With --dir (or -c waypoint.conf: its manifest directory, served
 * Gateways, trust domain and aliases, root namespace, as waypointd reads
 * them) it is computed offline from a manifest directory (the parser,
 * resolver and compiler waypointd runs); otherwise the running appliance
 * answers from the snapshot its workers run (GET /authz/check on the admin
 * endpoint). Both go through cp/resolve/authz_check.c, which builds the
 * request as the data path does and renders the answer. Exit status: 0
 * when a decision was printed (ALLOW or DENY), 1 when none could be made
 * (unknown destination, unreachable endpoint), 2 for a usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz_check.h"
#include "wp/config.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"
#include "wpctl.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: wpctl authz check --from PRINCIPAL --to HOST:PORT [--method M] [--path P]\n"
	        "                         [--header K=V]... [--host AUTHORITY] [--source-ip IP]\n"
	        "                         [--remote-ip IP] [--tcp] [--dir DIR] [--admin "
	        "HOST:PORT]\n"
	        "                         [-o text|json]\n"
	        "The AuthorizationPolicy decision (ALLOW or DENY) for one request through the\n"
	        "waypoint, the policy and rule that decided, and whether an AUDIT policy matched.\n"
	        "  --from PRINCIPAL     the client's identity, cluster.local/ns/NS/sa/SA\n"
	        "                       (spiffe:// optional)\n"
	        "  --to HOST:PORT       the destination Service: its hostname "
	        "(name.ns.svc.cluster.local),\n"
	        "                       name.ns or a VIP, and the service port; or a\n"
	        "                       workload address and port (its waypoint's policies)\n"
	        "  --method M           request method (default GET)\n"
	        "  --path P             request target (default /), normalized as the data path\n"
	        "                       does; the query is not matched\n"
	        "  --header K=V         a request header (repeatable; several of one name are\n"
	        "                       joined with \",\")\n"
	        "  --host AUTHORITY     the :authority (default: --to as written)\n"
	        "  --source-ip IP       the HBONE peer's address (ipBlocks, source.ip; default "
	        "none)\n"
	        "  --remote-ip IP       the original client's (remoteIpBlocks; default "
	        "--source-ip)\n"
	        "  --tcp                an opaque TCP connection, not an HTTP request\n"
	        "  --dir DIR            decide offline from the manifests in DIR\n"
	        "  --gateway NS/NAME    (offline) treat this Gateway as served (repeatable)\n"
	        "  --class NAME         (offline) serve every Gateway of this class "
	        "(default istio-waypoint)\n"
	        "  -c, --config FILE    (offline) as waypointd with this waypoint.conf: its\n"
	        "                       manifest directory (unless --dir), served Gateways, trust\n"
	        "                       domain and aliases, root namespace\n"
	        "  --admin HOST:PORT    admin endpoint of a running waypointd "
	        "(default 127.0.0.1:15000)\n"
	        "  -o, --output FORMAT  text (default) or json\n"
	        "Exit status: 0 a decision was printed (ALLOW or DENY), 1 none could be made,\n"
	        "2 usage error.\n");
}

/* The answer offline: the snapshot of DIR, decided here. served as
 * waypointd would serve. */
static int check_offline(const char *dir, const struct wp_served *served,
                         const struct wp_authz_check_in *in, json_t **ans)
{
	struct wp_authz_scratch sc = {0};
	struct wp_resolver *r = wp_resolver_create(served);
	struct wp_snapshot *s = NULL;
	const char *const *errs;
	char err[512];
	unsigned ne;
	int lr, rc = 1;

	if (!r) {
		fprintf(stderr, "wpctl: out of memory\n");
		return 1;
	}
	lr = wp_source_manifest_dir_load(dir, wp_resolver_sink(r));
	if (lr < 0) {
		fprintf(stderr, "wpctl: cannot read %s: %s\n", dir, strerror(-lr));
		goto out;
	}
	ne = wp_resolver_errors(r, &errs);
	for (unsigned i = 0; i < ne; i++)
		fprintf(stderr, "wpctl: %s\n", errs[i]);
	s = wp_resolver_build(r);
	if (!s) {
		fprintf(stderr, "wpctl: out of memory\n");
		goto out;
	}
	if (wp_authz_check_run(s, &sc, in, ans, err, sizeof(err)))
		fprintf(stderr, "wpctl: %s\n", err);
	else
		rc = 0;
out:
	wp_authz_scratch_fini(&sc);
	wp_snapshot_free(s);
	wp_resolver_destroy(r);
	return rc;
}

/* The served set, trust domain and root namespace of a waypoint.conf, as
 * waypointd takes them (dp/waypointd.c); *dir its manifest directory
 * unless one was given. 0, or 1 after saying why. */
static int from_config(const char *path, struct wp_config *cfg, struct wp_served *served,
                       const char **gws, const char **aliases, const char **dir)
{
	char err[512];

	if (wp_config_load(path, NULL, 0, cfg, err, sizeof(err))) {
		fprintf(stderr, "wpctl: %s\n", err);
		return 1;
	}
	for (unsigned i = 0; i < cfg->cluster.n_gateways; i++)
		gws[i] = cfg->cluster.gateways[i];
	for (unsigned i = 0; i < cfg->tls.n_aliases; i++)
		aliases[i] = cfg->tls.aliases[i];
	*served = (struct wp_served){
	        .n_gateways = cfg->cluster.n_gateways,
	        .gateways = gws,
	        .class_name = cfg->cluster.gateway_class,
	        .cluster_domain = cfg->cluster.cluster_domain,
	        .root_ns = cfg->cluster.root_namespace,
	        .trust_domain = cfg->tls.trust_domain,
	        .n_aliases = cfg->tls.n_aliases,
	        .aliases = aliases,
	};
	if (!*dir && !cfg->cluster.manifest_dir[0]) {
		fprintf(stderr, "wpctl: %s has no cluster.manifest_dir: give --dir\n", path);
		return 1;
	}
	if (!*dir)
		*dir = cfg->cluster.manifest_dir;
	return 0;
}

/* The answer of the running appliance. */
static int check_online(const char *admin, const struct wp_authz_check_in *in, json_t **ans)
{
	char *q = wp_authz_check_query(in), *path = NULL, *body = NULL;
	json_error_t jerr;
	int st, rc = 1;

	if (!q || asprintf(&path, "/authz/check?%s", q) < 0) {
		fprintf(stderr, "wpctl: out of memory\n");
		free(q);
		return 1;
	}
	free(q);
	st = wp_wpctl_admin_get(admin, path, &body);
	if (st == 200) {
		*ans = json_loads(body, 0, &jerr);
		if (json_is_object(*ans))
			rc = 0;
		else
			fprintf(stderr, "wpctl: bad answer from %s: %s\n", admin, jerr.text);
	} else if (st > 0) {
		/* 400, 404, 503: the endpoint says why in {"error": ...} */
		json_t *e = body ? json_loads(body, 0, NULL) : NULL;
		const char *why = json_string_value(json_object_get(e, "error"));

		fprintf(stderr, "wpctl: %s/authz/check answered %d%s%s\n", admin, st,
		        why ? ": " : "", why ? why : "");
		json_decref(e);
	}
	free(body);
	free(path);
	return rc;
}

static int check(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"from", required_argument, NULL, 'f'},
	        {"to", required_argument, NULL, 't'},
	        {"method", required_argument, NULL, 'm'},
	        {"path", required_argument, NULL, 'p'},
	        {"header", required_argument, NULL, 'H'},
	        {"host", required_argument, NULL, 'A'},
	        {"source-ip", required_argument, NULL, 's'},
	        {"remote-ip", required_argument, NULL, 'r'},
	        {"tcp", no_argument, NULL, 'T'},
	        {"dir", required_argument, NULL, 'd'},
	        {"gateway", required_argument, NULL, 'g'},
	        {"class", required_argument, NULL, 'K'},
	        {"admin", required_argument, NULL, 'a'},
	        {"config", required_argument, NULL, 'c'},
	        {"output", required_argument, NULL, 'o'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct wp_authz_check_in in = {0};
	const char *dir = NULL, *admin = "127.0.0.1:15000", *out = "text", *cls = NULL;
	const char *conf = NULL;
	const char *gws[WP_MAX_SERVED_GATEWAYS], *aliases[WP_MAX_TD_ALIASES];
	struct wp_served served = {0};
	struct wp_config *cfg = NULL;
	unsigned n_gws = 0;
	json_t *ans = NULL;
	char err[512];
	int c, rc;

	if (argc == 2 && !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			in.from = optarg;
			break;
		case 't':
			in.to = optarg;
			break;
		case 'm':
			in.method = optarg;
			break;
		case 'p':
			in.path = optarg;
			break;
		case 'H':
			if (in.n_headers == WP_AUTHZ_CHECK_MAX_HEADERS) {
				fprintf(stderr, "wpctl: more than %d --header\n",
				        WP_AUTHZ_CHECK_MAX_HEADERS);
				return 2;
			}
			in.headers[in.n_headers++] = optarg;
			break;
		case 'A':
			in.host = optarg;
			break;
		case 's':
			in.source_ip = optarg;
			break;
		case 'r':
			in.remote_ip = optarg;
			break;
		case 'T':
			in.tcp = true;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'g':
			if (n_gws == WP_ARRAY_SIZE(gws)) {
				fprintf(stderr, "wpctl: more than %zu --gateway\n",
				        WP_ARRAY_SIZE(gws));
				return 2;
			}
			gws[n_gws++] = optarg;
			break;
		case 'K':
			cls = optarg;
			break;
		case 'a':
			admin = optarg;
			break;
		case 'c':
			conf = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc || (strcmp(out, "text") && strcmp(out, "json")) ||
	    (conf && (n_gws || cls))) {
		usage(stderr);
		return 2;
	}
	if (wp_authz_check_validate(&in, err, sizeof(err))) {
		fprintf(stderr, "wpctl: %s\n", err);
		return 2;
	}
	if (conf) {
		cfg = calloc(1, sizeof(*cfg));
		rc = cfg ? from_config(conf, cfg, &served, gws, aliases, &dir) : 1;
		if (!cfg)
			fprintf(stderr, "wpctl: out of memory\n");
	} else {
		served.n_gateways = n_gws;
		served.gateways = gws;
		served.class_name = cls ? cls : (n_gws ? NULL : "istio-waypoint");
		rc = 0;
	}
	if (!rc)
		rc = dir ? check_offline(dir, &served, &in, &ans) : check_online(admin, &in, &ans);
	free(cfg);
	if (rc)
		return rc;
	if (!strcmp(out, "json")) {
		if (json_dumpf(ans, stdout, JSON_INDENT(2)) || putchar('\n') == EOF)
			rc = 1;
	} else {
		wp_authz_check_print(stdout, ans);
	}
	json_decref(ans);
	if (fflush(stdout))
		rc = 1;
	return rc;
}

int wp_wpctl_authz(int argc, char **argv)
{
	static const char verbs[] = "usage: wpctl authz check --from PRINCIPAL --to HOST:PORT "
	                            "[...]\n  check   the decision for one request "
	                            "('wpctl authz check --help')\n";

	if (argc >= 2 &&
	    (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		if (argc >= 3 && !strcmp(argv[2], "check")) {
			usage(stdout);
			return 0;
		}
		fputs(verbs, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "check")) {
		fputs(verbs, stderr);
		return 2;
	}
	return check(argc - 1, argv + 1);
}
