/*
 * wpctl waypoint generate|apply|delete|list|status: istioctl's waypoint
 * verbs, with its flags, output and error texts (DESIGN §6), talking to the
 * API server through cp/kube.
 *
 * Differences from istioctl, on purpose: --class picks the GatewayClass
 * (default istio-waypoint, as istioctl); list/status/delete also consider
 * Gateways of the class named by --class (default WP_WPCTL_APPLIANCE_CLASS,
 * the appliance's own class from deploy/gatewayclass.yaml) besides
 * istio-waypoint; status without --wait prints once instead of polling
 * until Programmed. generate prints what istioctl prints (its testdata):
 * apiVersion first, so `wpctl waypoint generate | kubectl apply -f -` works
 * (the seed's example output without it was a documentation slip).
 *
 * Flags follow istioctl's cobra tree: each verb takes only its own flags
 * plus the global ones (-n, -i, -c, --context, --name); `VERB --help` shows
 * them. Usage errors exit 2, API and runtime failures 1 (wpctl.h). Unlike
 * cobra, a stray word after generate, apply or list is refused rather than
 * ignored.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "kube.h"
#include "lease.h"
#include "member.h"
#include "wpctl.h"

#define ISTIO_WAYPOINT_CLASS     "istio-waypoint"
#define WP_WPCTL_APPLIANCE_CLASS "waypointd"
#define LABEL_WAYPOINT_FOR       "istio.io/waypoint-for"
#define LABEL_USE_WAYPOINT       "istio.io/use-waypoint"
#define LABEL_DATAPLANE_MODE     "istio.io/dataplane-mode"
#define LABEL_REV                "istio.io/rev"
#define FIELD_MANAGER            "istioctl"

/* Which commands a flag belongs to, as in istioctl's cobra tree: the
 * global flags (-n, -i, -c, --context) and waypoint's persistent --name
 * apply everywhere, the others to the verbs that define them. */
enum {
	V_GROUP = 1 << 0, /* `wpctl waypoint` itself */
	V_GENERATE = 1 << 1,
	V_APPLY = 1 << 2,
	V_DELETE = 1 << 3,
	V_LIST = 1 << 4,
	V_STATUS = 1 << 5,
	V_ANY = (1 << 6) - 1,
};

struct opts {
	unsigned verb;        /* V_* of the verb, V_GROUP when none */
	const char *ns;       /* -n, NULL when not given */
	const char *istio_ns; /* -i: accepted as istioctl's global flag; no waypoint
	                       * verb reads it there either */
	const char *name;
	const char *traffic; /* --for, NULL when not given */
	const char *revision;
	const char *klass; /* --class, NULL when not given */
	const char *kubeconfig;
	const char *context;
	bool enroll, overwrite, wait, all, all_ns, help;
	double timeout; /* seconds */
	char **args;
	int nargs;
	unsigned long seen; /* bit i: flags[i] was given */
};

enum { F_STRING, F_BOOL, F_DURATION };

/* One line of a verb's help. A flag listed twice (its text differs per
 * verb, as istioctl's) shares its name, type and field. */
struct flag {
	const char *lng;
	char shrt;
	uint8_t type;
	unsigned verbs;
	size_t off;
	const char *arg; /* value placeholder in the help */
	const char *help;
};

static const struct flag flags[] = {
        {"all", 0, F_BOOL, V_DELETE, offsetof(struct opts, all), "",
         "Delete all waypoints in the namespace"},
        {"all-namespaces", 'A', F_BOOL, V_LIST, offsetof(struct opts, all_ns), "",
         "List all waypoints in all namespaces"},
        {"class", 0, F_STRING, V_GENERATE | V_APPLY, offsetof(struct opts, klass), "string",
         "GatewayClass of the waypoint (default \"istio-waypoint\")"},
        {"class", 0, F_STRING, V_DELETE | V_LIST | V_STATUS, offsetof(struct opts, klass), "string",
         "Also consider Gateways of this class (default \"waypointd\")"},
        {"context", 0, F_STRING, V_ANY, offsetof(struct opts, context), "string",
         "Kubernetes configuration context"},
        {"enroll-namespace", 0, F_BOOL, V_APPLY, offsetof(struct opts, enroll), "",
         "If set, the namespace will be labeled with the waypoint name"},
        {"for", 0, F_STRING, V_GENERATE | V_APPLY, offsetof(struct opts, traffic), "string",
         "Specify the traffic type [all none service workload] for the waypoint"},
        {"help", 'h', F_BOOL, V_ANY, offsetof(struct opts, help), "", "help for this command"},
        {"istioNamespace", 'i', F_STRING, V_ANY, offsetof(struct opts, istio_ns), "string",
         "Istio system namespace (default \"istio-system\")"},
        {"kubeconfig", 'c', F_STRING, V_ANY, offsetof(struct opts, kubeconfig), "string",
         "Kubernetes configuration file"},
        {"name", 0, F_STRING, V_ANY, offsetof(struct opts, name), "string",
         "name of the waypoint (default \"waypoint\")"},
        {"namespace", 'n', F_STRING, V_ANY, offsetof(struct opts, ns), "string",
         "Kubernetes namespace"},
        {"overwrite", 0, F_BOOL, V_APPLY, offsetof(struct opts, overwrite), "",
         "Overwrite the existing Waypoint used by the namespace"},
        {"revision", 'r', F_STRING, V_GENERATE | V_APPLY, offsetof(struct opts, revision), "string",
         "The revision to label the waypoint with"},
        {"revision", 'r', F_STRING, V_DELETE, offsetof(struct opts, revision), "string",
         "Delete the specified version of the waypoint in the namespace"},
        {"wait", 'w', F_BOOL, V_APPLY, offsetof(struct opts, wait), "",
         "Wait for the waypoint to be ready"},
        {"wait", 'w', F_BOOL, V_STATUS, offsetof(struct opts, wait), "", "Wait for status"},
        {"waypoint-timeout", 0, F_DURATION, V_APPLY, 0, "duration",
         "Timeout for waiting for waypoint ready (default 1m30s)"},
        {"waypoint-timeout", 0, F_DURATION, V_STATUS, 0, "duration",
         "Timeout for retrieving status for waypoint (default 1m30s)"},
};

static int cmd_generate(const struct opts *o);
static int cmd_apply(const struct opts *o);
static int cmd_delete(const struct opts *o);
static int cmd_list(const struct opts *o);
static int cmd_status(const struct opts *o);

static const struct verb {
	const char *name;
	unsigned bit;
	const char *args; /* positional arguments in the usage line */
	const char *desc;
	int (*run)(const struct opts *o);
} verbs[] = {
        {"generate", V_GENERATE, "", "Generate a waypoint configuration as YAML", cmd_generate},
        {"apply", V_APPLY, "", "Apply a waypoint configuration to the cluster", cmd_apply},
        {"delete", V_DELETE, " [NAME...]", "Delete a waypoint configuration from the cluster",
         cmd_delete},
        {"list", V_LIST, "", "List managed waypoint configurations in the cluster", cmd_list},
        {"status", V_STATUS, "", "Show the status of waypoints in a namespace", cmd_status},
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* The help of one verb (or of the group), with the flags that apply to it. */
static void usage(FILE *f, unsigned verb)
{
	const struct verb *v = NULL;

	for (size_t i = 0; i < WP_ARRAY_SIZE(verbs); i++)
		if (verbs[i].bit == verb)
			v = &verbs[i];
	if (v) {
		fprintf(f, "%s\n\nusage: wpctl waypoint %s%s [flags]\n", v->desc, v->name, v->args);
	} else {
		fprintf(f, "A group of commands used to manage waypoint configuration\n\n"
		           "usage: wpctl waypoint COMMAND [flags]\n\ncommands:\n");
		for (size_t i = 0; i < WP_ARRAY_SIZE(verbs); i++)
			fprintf(f, "  %-10s %s\n", verbs[i].name, verbs[i].desc);
	}
	fprintf(f, "\nflags:\n");
	for (size_t i = 0; i < WP_ARRAY_SIZE(flags); i++) {
		const struct flag *fl = &flags[i];
		char lhs[64];

		if (!(fl->verbs & verb))
			continue;
		snprintf(lhs, sizeof(lhs), "%c%c%c --%s %s", fl->shrt ? '-' : ' ',
		         fl->shrt ? fl->shrt : ' ', fl->shrt ? ',' : ' ', fl->lng, fl->arg);
		fprintf(f, "  %-28s %s\n", lhs, fl->help);
	}
	if (!v)
		fprintf(f, "\n'wpctl waypoint COMMAND --help' describes one command.\n");
}

/* Go duration: "90s", "1m30s", "500ms", "2h". Returns seconds or -1. */
static double parse_duration(const char *s)
{
	double total = 0;

	if (!strcmp(s, "0"))
		return 0;
	while (*s) {
		char *end;
		double v = strtod(s, &end);

		if (end == s)
			return -1;
		s = end;
		if (!strncmp(s, "ms", 2))
			v /= 1000, s += 2;
		else if (!strncmp(s, "us", 2))
			v /= 1e6, s += 2;
		else if (!strncmp(s, "ns", 2))
			v /= 1e9, s += 2;
		else if (*s == 's')
			s++;
		else if (*s == 'm')
			v *= 60, s++;
		else if (*s == 'h')
			v *= 3600, s++;
		else
			return -1;
		total += v;
	}
	return total;
}

static bool parse_bool(const char *v, bool *out)
{
	if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "t")) {
		*out = true;
		return true;
	}
	if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "f")) {
		*out = false;
		return true;
	}
	return false;
}

/* Usage errors exit 2 (wpctl.h); the text is istioctl's. */
static int usage_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("Error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

/*
 * Parses every flag wherever it stands (cobra lets flags come before or after
 * the verb); the words left are o->args. A problem is kept in err (the first
 * one) rather than printed: --help anywhere wins over it. Returns 0 or 2.
 */
static int parse_flags(struct opts *o, int argc, char **argv, char *err, size_t errlen)
{
	bool dashdash = false;

	o->args = calloc((size_t)argc + 1, sizeof(char *));
	if (!o->args) {
		snprintf(err, errlen, "out of memory");
		return 1;
	}
	for (int i = 0; i < argc; i++) {
		char *a = argv[i], *val = NULL, *eq;
		const char *lname = NULL;
		char sname = 0;
		size_t f;

		if (dashdash || a[0] != '-' || !a[1]) {
			o->args[o->nargs++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			dashdash = true;
			continue;
		}
		if (a[1] == '-') {
			lname = a + 2;
			if ((eq = strchr(a, '='))) {
				*eq = 0;
				val = eq + 1;
			}
		} else {
			sname = a[1];
			if (a[2])
				val = a[2] == '=' ? a + 3 : a + 2;
		}
		for (f = 0; f < WP_ARRAY_SIZE(flags); f++)
			if ((lname && !strcmp(lname, flags[f].lng)) ||
			    (sname && sname == flags[f].shrt))
				break;
		if (f == WP_ARRAY_SIZE(flags)) {
			if (err[0])
				continue;
			if (lname)
				snprintf(err, errlen, "unknown flag: --%s", lname);
			else
				snprintf(err, errlen, "unknown shorthand flag: '%c' in %s", sname,
				         a);
			continue;
		}
		o->seen |= 1ul << f;
		if (flags[f].type == F_BOOL) {
			if (!parse_bool(val, (bool *)((char *)o + flags[f].off)) && !err[0])
				snprintf(err, errlen, "invalid argument \"%s\" for \"--%s\" flag",
				         val, flags[f].lng);
			continue;
		}
		if (!val) {
			if (i + 1 >= argc) {
				if (!err[0])
					snprintf(err, errlen, "flag needs an argument: --%s",
					         flags[f].lng);
				continue;
			}
			val = argv[++i];
		}
		if (flags[f].type == F_DURATION) {
			o->timeout = parse_duration(val);
			if (o->timeout < 0 && !err[0])
				snprintf(err, errlen,
				         "invalid argument \"%s\" for \"--%s\" flag: time: "
				         "invalid duration \"%s\"",
				         val, flags[f].lng, val);
			continue;
		}
		*(const char **)((char *)o + flags[f].off) = val;
	}
	return err[0] ? 2 : 0;
}

/* The first flag given that the verb does not define, or NULL. */
static const char *foreign_flag(const struct opts *o)
{
	for (size_t f = 0; f < WP_ARRAY_SIZE(flags); f++) {
		bool ok = false;

		if (!(o->seen & (1ul << f)))
			continue;
		for (size_t g = 0; g < WP_ARRAY_SIZE(flags); g++)
			if (!strcmp(flags[g].lng, flags[f].lng) && (flags[g].verbs & o->verb))
				ok = true;
		if (!ok)
			return flags[f].lng;
	}
	return NULL;
}

/* --- Kubernetes access ---------------------------------------------------- */

struct session {
	struct wp_kube *k;
	char *ctx_ns; /* namespace of the kubeconfig context */
};

static int connect_kube(const struct opts *o, struct session *s)
{
	struct wp_kube_config cfg;
	char err[512] = "";
	int ret;

	if (o->kubeconfig || o->context || !getenv("KUBERNETES_SERVICE_HOST"))
		ret = wp_kube_config_load(&cfg, o->kubeconfig, o->context, err, sizeof(err));
	else
		ret = wp_kube_config_in_cluster(&cfg, getenv("WP_KUBE_SA_DIR"));
	if (ret == -ENOENT && !o->kubeconfig && !o->context)
		ret = wp_kube_config_in_cluster(&cfg, getenv("WP_KUBE_SA_DIR"));
	if (ret)
		return fail("failed to create Kubernetes client: %s",
		            err[0] ? err : "no kubeconfig and not in a cluster");
	s->k = wp_kube_new(&cfg);
	s->ctx_ns = cfg.namespace ? strdup(cfg.namespace) : NULL;
	wp_kube_config_clear(&cfg);
	if (!s->k)
		return fail("failed to create Kubernetes client: cannot set up libcurl");
	return 0;
}

static void session_close(struct session *s)
{
	wp_kube_free(s->k);
	free(s->ctx_ns);
}

/* ctx.NamespaceOrDefault(ctx.Namespace()) */
static const char *ns_or_default(const struct opts *o, const struct session *s)
{
	if (o->ns && o->ns[0])
		return o->ns;
	if (s && s->ctx_ns && s->ctx_ns[0])
		return s->ctx_ns;
	return "default";
}

/* Turns an API error answer into istioctl-like text. */
static int api_fail(const char *prefix, struct wp_kube_resp *r)
{
	int ret = fail("%s%s", prefix ? prefix : "", wp_kube_resp_message(r));
	wp_kube_resp_clear(r);
	return ret;
}

/* GET the namespace; 0 and *out (caller decrefs), or an exit status. */
static int get_namespace(struct session *s, const char *ns, json_t **out)
{
	struct wp_kube_resp r;
	char path[512];

	wp_kube_path(path, sizeof(path), &wp_kube_resources[WP_KUBE_RES_NAMESPACE], NULL, ns, NULL);
	if (wp_kube_get(s->k, path, &r) != 0)
		return api_fail("failed to get namespace: ", &r);
	if (r.status == 404) {
		wp_kube_resp_clear(&r);
		return fail("namespace: %s not found", ns);
	}
	if (r.status != 200 || !r.json) {
		char pre[300];
		snprintf(pre, sizeof(pre), "failed to get namespace %s: ", ns);
		return api_fail(pre, &r);
	}
	*out = json_incref(r.json);
	wp_kube_resp_clear(&r);
	return 0;
}

static const char *label_of(json_t *obj, const char *key)
{
	return json_string_value(
	        json_object_get(json_object_get(json_object_get(obj, "metadata"), "labels"), key));
}

/* --- generate / apply ------------------------------------------------------ */

/* --for and --name as istioctl's makeGateway checks them, before anything
 * is sent: a usage error (2) after printing, or 0. */
static int check_gateway_flags(const struct opts *o)
{
	const char *t = o->traffic;

	if (t && strcmp(t, "all") && strcmp(t, "none") && strcmp(t, "service") &&
	    strcmp(t, "workload"))
		return usage_fail("failed to create gateway: invalid traffic type: %s. Valid "
		                  "options are: [all none service workload]",
		                  t);
	if (o->name && !strcmp(o->name, "none"))
		return usage_fail("failed to create gateway: invalid name provided for waypoint, "
		                  "'none' is a reserved value");
	return 0;
}

/* The waypoint name after istioctl's defaulting ("none" was refused by
 * check_gateway_flags). */
static const char *waypoint_name(const struct opts *o)
{
	return o->name && o->name[0] ? o->name : "waypoint";
}

/* YAML as sigs.k8s.io/yaml prints the Gateway (keys sorted). Names and
 * values are Kubernetes names (no quoting needed) except a revision, which
 * is quoted when it could read as something else. */
static void print_yaml_scalar(const char *v)
{
	bool plain = v[0] && strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                               "0123456789-._/") == strlen(v);
	bool numeric = strspn(v, "0123456789.-") == strlen(v);

	if (plain && !numeric && strcmp(v, "true") && strcmp(v, "false") && strcmp(v, "null") &&
	    strcmp(v, "yes") && strcmp(v, "no") && strcmp(v, "on") && strcmp(v, "off"))
		printf("%s\n", v);
	else
		printf("\"%s\"\n", v);
}

static int cmd_generate(const struct opts *o)
{
	const char *name = waypoint_name(o);
	const char *ns = o->ns && o->ns[0] ? o->ns : NULL;

	printf("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n");
	if (o->revision || o->traffic) {
		printf("  labels:\n");
		if (o->revision) {
			printf("    " LABEL_REV ": ");
			print_yaml_scalar(o->revision);
		}
		if (o->traffic)
			printf("    " LABEL_WAYPOINT_FOR ": %s\n", o->traffic);
	}
	printf("  name: %s\n", name);
	if (ns)
		printf("  namespace: %s\n", ns);
	printf("spec:\n  gatewayClassName: %s\n  listeners:\n  - name: mesh\n    port: 15008\n"
	       "    protocol: HBONE\n",
	       o->klass ? o->klass : ISTIO_WAYPOINT_CLASS);
	return 0;
}

static json_t *make_gateway(const struct opts *o, const char *name, const char *ns)
{
	json_t *labels = json_object();
	json_t *gw;

	if (o->traffic)
		json_object_set_new(labels, LABEL_WAYPOINT_FOR, json_string(o->traffic));
	if (o->revision)
		json_object_set_new(labels, LABEL_REV, json_string(o->revision));
	gw = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:[{s:s, s:i, s:s}]}}", "apiVersion",
	               "gateway.networking.k8s.io/v1", "kind", "Gateway", "metadata", "name", name,
	               "namespace", ns, "spec", "gatewayClassName",
	               o->klass ? o->klass : ISTIO_WAYPOINT_CLASS, "listeners", "name", "mesh",
	               "port", 15008, "protocol", "HBONE");
	if (json_object_size(labels))
		json_object_set(json_object_get(gw, "metadata"), "labels", labels);
	json_decref(labels);
	return gw;
}

/* 1 when the Gateway has Programmed=True. */
static int is_programmed(json_t *gw)
{
	json_t *conds = json_object_get(json_object_get(gw, "status"), "conditions"), *c;
	size_t i;

	json_array_foreach(conds, i, c)
	{
		const char *t = json_string_value(json_object_get(c, "type"));
		const char *st = json_string_value(json_object_get(c, "status"));
		if (t && st && !strcmp(t, "Programmed") && !strcmp(st, "True"))
			return 1;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd_apply(const struct opts *o)
{
	struct session s = {0};
	struct wp_kube_resp r;
	const char *name, *ns;
	json_t *nsobj = NULL, *gw;
	char path[512], *body;
	int ret;

	if ((ret = connect_kube(o, &s)))
		return ret;
	ns = ns_or_default(o, &s);
	ret = get_namespace(&s, ns, &nsobj);
	if (ret)
		goto out;
	if (o->enroll) {
		const char *cur = label_of(nsobj, LABEL_USE_WAYPOINT);
		const char *mode = label_of(nsobj, LABEL_DATAPLANE_MODE);

		if (!o->overwrite && cur && cur[0]) {
			printf("⚠️ Warning: namespace (%s) already has an enrolled Waypoint. "
			       "Consider "
			       "adding the `--overwrite` flag to your apply command.\n",
			       ns);
			goto out;
		}
		if (!mode || strcmp(mode, "ambient"))
			printf("⚠️ Warning: namespace is not enrolled in ambient. Consider "
			       "running\t`kubectl label namespace %s "
			       "istio.io/dataplane-mode=ambient`\n",
			       ns);
	}
	name = waypoint_name(o);
	gw = make_gateway(o, name, ns);
	body = json_dumps(gw, JSON_COMPACT);
	json_decref(gw);
	wp_kube_path(path, sizeof(path), &wp_kube_resources[WP_KUBE_RES_GATEWAY], ns, name, NULL);
	ret = wp_kube_patch(s.k, path, WP_KUBE_PATCH_APPLY, FIELD_MANAGER, false, body, &r);
	free(body);
	if (ret) {
		ret = api_fail("", &r);
		goto out;
	}
	if (r.status == 404) {
		char pre[128];
		snprintf(pre, sizeof(pre),
		         "missing Kubernetes Gateway CRDs need to be installed "
		         "before applying a waypoint: ");
		ret = api_fail(pre, &r);
		goto out;
	}
	if (r.status < 200 || r.status > 299) {
		ret = api_fail("", &r);
		goto out;
	}
	wp_kube_resp_clear(&r);
	printf("✅ waypoint %s/%s applied\n", ns, name);
	fflush(stdout);

	if (o->wait) {
		double start = now_s();
		for (;;) {
			int prog = 0;

			sleep(1);
			if (wp_kube_get(s.k, path, &r) == 0 && r.status == 200)
				prog = is_programmed(r.json);
			if (prog) {
				wp_kube_resp_clear(&r);
				break;
			}
			if (now_s() - start > o->timeout) {
				if (r.status == 200)
					ret = fail("timed out while waiting for waypoint\t%s/%s",
					           ns, name);
				else
					ret = fail(
					        "timed out while waiting for waypoint\t%s/%s: %s",
					        ns, name, wp_kube_resp_message(&r));
				wp_kube_resp_clear(&r);
				goto out;
			}
			wp_kube_resp_clear(&r);
		}
		printf("✅ waypoint %s/%s is ready!\n", ns, name);
	}
	if (o->enroll) {
		json_t *patch =
		        json_pack("{s:{s:{s:s}}}", "metadata", "labels", LABEL_USE_WAYPOINT, name);
		body = json_dumps(patch, JSON_COMPACT);
		json_decref(patch);
		wp_kube_path(path, sizeof(path), &wp_kube_resources[WP_KUBE_RES_NAMESPACE], NULL,
		             ns, NULL);
		ret = wp_kube_patch(s.k, path, WP_KUBE_PATCH_MERGE, NULL, false, body, &r);
		free(body);
		if (ret || r.status != 200) {
			char pre[300];
			snprintf(pre, sizeof(pre),
			         "failed to label namespace with waypoint: failed to update "
			         "namespace "
			         "%s: ",
			         ns);
			ret = api_fail(pre, &r);
			goto out;
		}
		wp_kube_resp_clear(&r);
		printf("✅ namespace %s labeled with \"" LABEL_USE_WAYPOINT ": %s\"\n", ns, name);
	}
	ret = 0;
out:
	if (nsobj)
		json_decref(nsobj);
	session_close(&s);
	return ret;
}

/* --- list / status / delete -------------------------------------------------- */

static bool is_waypoint_class(const struct opts *o, json_t *gw)
{
	const char *c =
	        json_string_value(json_object_get(json_object_get(gw, "spec"), "gatewayClassName"));

	if (!c)
		return false;
	return !strcmp(c, ISTIO_WAYPOINT_CLASS) ||
	       !strcmp(c, o->klass ? o->klass : WP_WPCTL_APPLIANCE_CLASS);
}

static const char *meta_str(json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(json_object_get(obj, "metadata"), key));
	return v ? v : "";
}

static int cmp_gw(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int r = strcmp(meta_str(x, "namespace"), meta_str(y, "namespace"));

	return r ? r : strcmp(meta_str(x, "name"), meta_str(y, "name"));
}

/* Lists Gateways (ns NULL: all), sorted by namespace/name. Returns the array
 * (caller decrefs) or NULL after printing an error. */
static json_t *list_gateways(struct session *s, const char *ns, const char *selector)
{
	struct wp_kube_resp r;
	char path[512], *url = NULL;
	json_t *items, *sorted;
	json_t **v;
	size_t n, i;

	wp_kube_path(path, sizeof(path), &wp_kube_resources[WP_KUBE_RES_GATEWAY], ns, NULL, NULL);
	if (selector) {
		char *esc = curl_easy_escape(NULL, selector, 0);
		if (!esc || asprintf(&url, "%s?labelSelector=%s", path, esc) < 0)
			url = NULL;
		curl_free(esc);
	}
	if (wp_kube_get(s->k, url ? url : path, &r) != 0) {
		free(url);
		api_fail("", &r);
		return NULL;
	}
	free(url);
	if (r.status != 200 || !(items = json_object_get(r.json, "items"))) {
		api_fail("", &r);
		return NULL;
	}
	n = json_array_size(items);
	v = calloc(n + 1, sizeof(*v));
	for (i = 0; i < n; i++)
		v[i] = json_array_get(items, i);
	qsort(v, n, sizeof(*v), cmp_gw);
	sorted = json_array();
	for (i = 0; i < n; i++)
		json_array_append(sorted, v[i]);
	free(v);
	wp_kube_resp_clear(&r);
	return sorted;
}

/* Go's text/tabwriter with minwidth 0, tabwidth 8, padding 5, padchar ' ',
 * flags 0, for rows that all have the same number of cells: every cell but
 * the last of a row is padded to the widest cell of its column plus 5. */
struct table {
	char **cells;
	size_t ncols, nrows, cap;
};

static void table_add(struct table *t, size_t ncols, ...)
{
	va_list ap;

	t->ncols = ncols;
	if ((t->nrows + 1) * ncols > t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		while (t->cap < (t->nrows + 1) * ncols)
			t->cap *= 2;
		t->cells = realloc(t->cells, t->cap * sizeof(char *));
	}
	va_start(ap, ncols);
	for (size_t i = 0; i < ncols; i++) {
		const char *c = va_arg(ap, const char *);
		t->cells[t->nrows * ncols + i] = strdup(c ? c : "");
	}
	va_end(ap);
	t->nrows++;
}

/* Display width of UTF-8 text (code points). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

static void table_print(struct table *t)
{
	size_t *w = calloc(t->ncols ? t->ncols : 1, sizeof(size_t));

	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c + 1 < t->ncols; c++) {
			size_t l = text_width(t->cells[r * t->ncols + c]);
			if (l > w[c])
				w[c] = l;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			if (c + 1 < t->ncols)
				printf("%s%*s", cell, (int)(w[c] + 5 - text_width(cell)), "");
			else
				printf("%s\n", cell);
		}
	}
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(w);
}

static int cmd_list(const struct opts *o)
{
	struct session s = {0};
	struct table t = {0};
	json_t *gws, *gw;
	size_t i;
	int ret;

	if ((ret = connect_kube(o, &s)))
		return ret;
	gws = list_gateways(&s, o->all_ns ? NULL : ns_or_default(o, &s), NULL);
	if (!gws) {
		session_close(&s);
		return 1;
	}
	if (json_array_size(gws) == 0) {
		printf("No waypoints found.\n");
		goto out;
	}
	if (o->all_ns)
		table_add(&t, 5, "NAMESPACE", "NAME", "REVISION", "TRAFFIC TYPE", "PROGRAMMED");
	else
		table_add(&t, 4, "NAME", "REVISION", "TRAFFIC TYPE", "PROGRAMMED");
	json_array_foreach(gws, i, gw)
	{
		const char *rev = label_of(gw, LABEL_REV);
		const char *traffic = label_of(gw, LABEL_WAYPOINT_FOR);
		const char *prog = "False";
		json_t *conds = json_object_get(json_object_get(gw, "status"), "conditions"), *c;
		size_t j;

		if (!is_waypoint_class(o, gw))
			continue;
		json_array_foreach(conds, j, c)
		{
			const char *ty = json_string_value(json_object_get(c, "type"));
			if (ty && !strcmp(ty, "Programmed"))
				prog = json_string_value(json_object_get(c, "status"));
		}
		if (!rev || !rev[0])
			rev = "default";
		if (!traffic || !traffic[0])
			traffic = "none";
		if (o->all_ns)
			table_add(&t, 5, meta_str(gw, "namespace"), meta_str(gw, "name"), rev,
			          traffic, prog);
		else
			table_add(&t, 4, meta_str(gw, "name"), rev, traffic, prog);
	}
	table_print(&t);
out:
	json_decref(gws);
	session_close(&s);
	return 0;
}

/* The appliances' leader-election Leases (cp/kube/lease.c): which one
 * writes the status shown above, and how fresh its Lease is. Printed only
 * when there are some; an API server that refuses the list (RBAC) leaves
 * the status table alone. */
static void print_leases(struct session *s)
{
	static const char path[] =
	        "/apis/coordination.k8s.io/v1/leases?labelSelector=" WP_KUBE_LEASE_LABEL_KEY
	        "%3D" WP_KUBE_LEASE_LABEL_VALUE;
	struct wp_kube_resp r;
	struct table t = {0};
	json_t *items, *l;
	size_t i;

	if (wp_kube_get(s->k, path, &r) != 0 || r.status != 200 ||
	    !json_array_size(items = json_object_get(r.json, "items"))) {
		wp_kube_resp_clear(&r);
		return;
	}
	table_add(&t, 5, "LEASE", "HOLDER", "RENEWED", "TRANSITIONS", "DURATION");
	json_array_foreach(items, i, l)
	{
		json_t *spec = json_object_get(l, "spec");
		const char *h = json_string_value(json_object_get(spec, "holderIdentity"));
		const char *rt = json_string_value(json_object_get(spec, "renewTime"));
		char name[256], ago[32], tr[24], dur[24];
		time_t when;

		snprintf(name, sizeof(name), "%s/%s", meta_str(l, "namespace"),
		         meta_str(l, "name"));
		if (rt && wp_kube_rfc3339_parse(rt, &when) == 0)
			snprintf(ago, sizeof(ago), "%llds ago", (long long)(time(NULL) - when));
		else
			snprintf(ago, sizeof(ago), "never");
		snprintf(tr, sizeof(tr), "%lld",
		         (long long)json_integer_value(json_object_get(spec, "leaseTransitions")));
		snprintf(dur, sizeof(dur), "%llds",
		         (long long)json_integer_value(
		                 json_object_get(spec, "leaseDurationSeconds")));
		table_add(&t, 5, name, h && h[0] ? h : "<none>", ago, tr, dur);
	}
	printf("\n");
	table_print(&t);
	wp_kube_resp_clear(&r);
}

/* The appliances registered as endpoints of the waypoint Services
 * (cp/kube/member.c: one WorkloadEntry each, labelled managed-by
 * waypointd): which appliance, its address and when it last renewed its
 * entry (the renew annotation against wpctl's clock). Printed only when
 * there are some; a refused list leaves the table alone. */
static void print_members(struct session *s)
{
	static const char path[] = "/apis/networking.istio.io/v1/"
	                           "workloadentries?labelSelector=" WP_KUBE_LEASE_LABEL_KEY
	                           "%3D" WP_KUBE_LEASE_LABEL_VALUE;
	struct wp_kube_resp r;
	struct table t = {0};
	json_t *items, *e;
	size_t i;

	if (wp_kube_get(s->k, path, &r) != 0 || r.status != 200 ||
	    !json_array_size(items = json_object_get(r.json, "items"))) {
		wp_kube_resp_clear(&r);
		return;
	}
	table_add(&t, 5, "MEMBER", "ENTRY", "SERVICE", "ADDRESS", "RENEWED");
	json_array_foreach(items, i, e)
	{
		json_t *md = json_object_get(e, "metadata");
		const char *id = json_string_value(
		        json_object_get(json_object_get(md, "labels"), WP_KUBE_MEMBER_ID_KEY));
		const char *svc = json_string_value(
		        json_object_get(json_object_get(md, "labels"), WP_KUBE_MEMBER_SELECT_KEY));
		const char *rt = json_string_value(json_object_get(
		        json_object_get(md, "annotations"), WP_KUBE_MEMBER_RENEW_KEY));
		const char *addr =
		        json_string_value(json_object_get(json_object_get(e, "spec"), "address"));
		char name[256], service[256], ago[32];
		time_t when;

		snprintf(name, sizeof(name), "%s/%s", meta_str(e, "namespace"),
		         meta_str(e, "name"));
		snprintf(service, sizeof(service), "%s/%s", meta_str(e, "namespace"),
		         svc ? svc : "?");
		if (rt && wp_kube_rfc3339_parse(rt, &when) == 0)
			snprintf(ago, sizeof(ago), "%llds ago", (long long)(time(NULL) - when));
		else
			snprintf(ago, sizeof(ago), "never");
		table_add(&t, 5, id ? id : "?", name, service, addr ? addr : "?", ago);
	}
	printf("\n");
	table_print(&t);
	wp_kube_resp_clear(&r);
}

static int cmd_status(const struct opts *o)
{
	struct session s = {0};
	struct table t = {0};
	const char *ns;
	json_t *gws, *gw;
	bool with_ns = !(o->ns && o->ns[0]);
	size_t i;
	int ret = 0;

	if ((ret = connect_kube(o, &s)))
		return ret;
	ns = ns_or_default(o, &s);
	gws = list_gateways(&s, ns, NULL);
	if (!gws) {
		session_close(&s);
		return 1;
	}
	if (json_array_size(gws) == 0) {
		printf("No waypoints found.\n");
		goto out;
	}
	if (with_ns)
		table_add(&t, 6, "NAMESPACE", "NAME", "STATUS", "TYPE", "REASON", "MESSAGE");
	else
		table_add(&t, 5, "NAME", "STATUS", "TYPE", "REASON", "MESSAGE");
	json_array_foreach(gws, i, gw)
	{
		double start = now_s();
		char path[512];

		if (!is_waypoint_class(o, gw))
			continue;
		wp_kube_path(path, sizeof(path), &wp_kube_resources[WP_KUBE_RES_GATEWAY], ns,
		             meta_str(gw, "name"), NULL);
		for (;;) {
			struct wp_kube_resp r;
			json_t *cur = gw, *conds, *c, *last = NULL;
			size_t j;
			int prog = 0;

			if (wp_kube_get(s.k, path, &r) == 0 && r.status == 200 && r.json)
				cur = r.json;
			conds = json_object_get(json_object_get(cur, "status"), "conditions");
			json_array_foreach(conds, j, c)
			{
				const char *ty = json_string_value(json_object_get(c, "type"));
				const char *st = json_string_value(json_object_get(c, "status"));
				last = c;
				if (ty && st && !strcmp(ty, "Programmed") && !strcmp(st, "True")) {
					prog = 1;
					break;
				}
			}
#define F(k) (last ? json_string_value(json_object_get(last, k)) : "")
			if (prog || !o->wait || now_s() - start > o->timeout) {
				if (with_ns)
					table_add(&t, 6, meta_str(cur, "namespace"),
					          meta_str(cur, "name"), F("status"), F("type"),
					          F("reason"), F("message"));
				else
					table_add(&t, 5, meta_str(cur, "name"), F("status"),
					          F("type"), F("reason"), F("message"));
			}
#undef F
			if (!prog && o->wait && now_s() - start > o->timeout) {
				table_print(&t);
				t = (struct table){0};
				ret = fail("timed out while retrieving status for waypoint\t%s/%s",
				           meta_str(cur, "namespace"), meta_str(cur, "name"));
				wp_kube_resp_clear(&r);
				goto out;
			}
			wp_kube_resp_clear(&r);
			if (prog || !o->wait)
				break;
			sleep(1);
		}
	}
	table_print(&t);
	print_leases(&s);
	print_members(&s);
out:
	json_decref(gws);
	session_close(&s);
	return ret;
}

static int cmd_delete(const struct opts *o)
{
	struct session s = {0};
	const char *ns;
	json_t *gws, *gw;
	char **names;
	size_t n = 0, i;
	int ret = 0;

	if ((ret = connect_kube(o, &s)))
		return ret;
	ns = ns_or_default(o, &s);
	if (o->all || o->revision) {
		char sel[300];
		snprintf(sel, sizeof(sel), LABEL_REV "=%s", o->revision ? o->revision : "");
		gws = list_gateways(&s, ns, o->revision ? sel : NULL);
	} else {
		gws = list_gateways(&s, ns, NULL);
	}
	if (!gws) {
		session_close(&s);
		return 1;
	}
	names = calloc(json_array_size(gws) + (size_t)o->nargs + 1, sizeof(char *));
	if (o->all || o->revision) {
		json_array_foreach(gws, i, gw)
		{
			if (is_waypoint_class(o, gw))
				names[n++] = strdup(meta_str(gw, "name"));
		}
	} else {
		for (int a = 0; a < o->nargs; a++) {
			bool found = false;
			json_array_foreach(gws, i, gw)
			{
				if (is_waypoint_class(o, gw) &&
				    !strcmp(meta_str(gw, "name"), o->args[a]))
					found = true;
			}
			if (found)
				names[n++] = strdup(o->args[a]);
			else
				printf("waypoint %s/%s not found\n", ns, o->args[a]);
		}
	}
	for (i = 0; i < n; i++) {
		struct wp_kube_resp r;
		char path[512];

		wp_kube_path(path, sizeof(path), &wp_kube_resources[WP_KUBE_RES_GATEWAY], ns,
		             names[i], NULL);
		if (wp_kube_delete(s.k, path, &r) != 0 ||
		    (r.status != 200 && r.status != 202 && r.status != 404)) {
			fprintf(stderr, "Error: %s\n", wp_kube_resp_message(&r));
			ret = 1;
		} else if (r.status == 404) {
			printf("waypoint %s/%s not found\n", ns, names[i]);
		} else {
			printf("waypoint %s/%s deleted\n", ns, names[i]);
		}
		wp_kube_resp_clear(&r);
		free(names[i]);
	}
	free(names);
	json_decref(gws);
	session_close(&s);
	return ret;
}

int wp_wpctl_waypoint(int argc, char **argv)
{
	struct opts o = {.timeout = 90, .verb = V_GROUP};
	const struct verb *v = NULL;
	char err[256] = "";
	const char *bad;
	char **args0;
	int ret;

	ret = parse_flags(&o, argc - 1, argv + 1, err, sizeof(err));
	args0 = o.args;
	/* The first word that is not a flag is the verb; `help [VERB]` is
	 * cobra's help command. */
	if (o.nargs && !strcmp(o.args[0], "help")) {
		o.help = true;
		o.args++;
		o.nargs--;
	}
	if (o.nargs) {
		for (size_t i = 0; i < WP_ARRAY_SIZE(verbs); i++)
			if (!strcmp(o.args[0], verbs[i].name))
				v = &verbs[i];
		if (v) {
			o.verb = v->bit;
			o.args++;
			o.nargs--;
		}
	}
	if (o.help) {
		usage(stdout, o.verb);
		ret = 0;
	} else if (ret) {
		ret = ret == 2 ? usage_fail("%s", err) : fail("%s", err);
	} else if ((bad = foreign_flag(&o))) {
		ret = usage_fail("unknown flag: --%s", bad);
	} else if (!v && o.nargs) {
		ret = usage_fail("unknown subcommand \"%s\"", o.args[0]);
	} else if (!v) {
		usage(stdout, V_GROUP);
		ret = 0;
	} else if (o.nargs && (o.verb & (V_GENERATE | V_APPLY | V_LIST))) {
		ret = usage_fail("unknown command \"%s\" for \"wpctl waypoint %s\"", o.args[0],
		                 v->name);
	} else if (o.nargs && o.verb == V_STATUS) {
		ret = usage_fail("unknown subcommand \"%s\"", o.args[0]);
	} else if (o.verb == V_DELETE && (o.all || o.revision) && o.nargs > 0) {
		ret = usage_fail("cannot specify waypoint names when deleting all waypoints");
	} else if (o.verb == V_DELETE && !(o.all || o.revision) && o.nargs == 0) {
		ret = usage_fail("must specify a waypoint name or delete all using --all or delete "
		                 "specific revision using --revision");
	} else if ((o.verb & (V_GENERATE | V_APPLY)) && (ret = check_gateway_flags(&o))) {
		/* printed */
	} else {
		ret = v->run(&o);
	}
	free(args0);
	return ret;
}
