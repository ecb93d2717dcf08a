/*
 * Unit tests for the Kubernetes client pieces that need no server:
 * kubeconfig parsing (contexts, relative paths, -data fields, tokens,
 * errors), exec credential plugins (ExecCredential decoding, RFC 3339
 * expiry, a real plugin run through /bin/sh with its cache, expiry and
 * refusal), in-cluster configuration, watch-event decoding, the backoff
 * schedule, resource paths, and the Gateway status policy.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kube.h"
#include "status.h"

static const char kubeconfig[] = "apiVersion: v1\n"
                                 "kind: Config\n"
                                 "current-context: on\n" /* YAML 1.1 would make this a boolean */
                                 "clusters:\n"
                                 "- name: a\n"
                                 "  cluster:\n"
                                 "    server: https://10.0.0.1:6443/\n"
                                 "    certificate-authority: certs/ca.crt\n"
                                 "- name: b\n"
                                 "  cluster:\n"
                                 "    server: https://b.example:443\n"
                                 "    certificate-authority-data: aGVsbG8gY2E=\n"
                                 "    insecure-skip-tls-verify: true\n"
                                 "users:\n"
                                 "- name: tok\n"
                                 "  user:\n"
                                 "    token: abc.def\n"
                                 "- name: cert\n"
                                 "  user:\n"
                                 "    client-certificate-data: Y2VydA==\n"
                                 "    client-key-data: a2V5\n"
                                 "- name: file\n"
                                 "  user:\n"
                                 "    tokenFile: /var/tok\n"
                                 "    client-certificate: c.crt\n"
                                 "    client-key: /abs/c.key\n"
                                 "- name: plugin\n"
                                 "  user:\n"
                                 "    exec:\n"
                                 "      command: aws\n"
                                 "contexts:\n"
                                 "- name: on\n"
                                 "  context:\n"
                                 "    cluster: a\n"
                                 "    user: tok\n"
                                 "    namespace: team-1\n"
                                 "- name: second\n"
                                 "  context:\n"
                                 "    cluster: b\n"
                                 "    user: cert\n"
                                 "- name: third\n"
                                 "  context:\n"
                                 "    cluster: a\n"
                                 "    user: file\n"
                                 "- name: broken\n"
                                 "  context:\n"
                                 "    cluster: nope\n"
                                 "    user: tok\n"
                                 "- name: execctx\n"
                                 "  context:\n"
                                 "    cluster: a\n"
                                 "    user: plugin\n";

static void test_kubeconfig_current_context(void **state)
{
	struct wp_kube_config c;
	char err[256] = "";

	(void)state;
	assert_int_equal(wp_kube_config_parse(&c, kubeconfig, strlen(kubeconfig), "/home/u/.kube",
	                                      NULL, err, sizeof(err)),
	                 0);
	assert_string_equal(c.server, "https://10.0.0.1:6443");
	assert_string_equal(c.ca_file, "/home/u/.kube/certs/ca.crt");
	assert_string_equal(c.token, "abc.def");
	assert_string_equal(c.namespace, "team-1");
	assert_null(c.token_file);
	assert_null(c.cert_data);
	assert_false(c.insecure);
	wp_kube_config_clear(&c);
	assert_null(c.server);
}

static void test_kubeconfig_data_fields(void **state)
{
	struct wp_kube_config c;
	char err[256] = "";

	(void)state;
	assert_int_equal(wp_kube_config_parse(&c, kubeconfig, strlen(kubeconfig), NULL, "second",
	                                      err, sizeof(err)),
	                 0);
	assert_string_equal(c.server, "https://b.example:443");
	assert_int_equal(c.ca_len, 8);
	assert_memory_equal(c.ca_data, "hello ca", 8);
	assert_int_equal(c.cert_len, 4);
	assert_memory_equal(c.cert_data, "cert", 4);
	assert_memory_equal(c.key_data, "key", 3);
	assert_true(c.insecure);
	assert_null(c.namespace);
	assert_null(c.token);
	wp_kube_config_clear(&c);
}

static void test_kubeconfig_files_and_token_file(void **state)
{
	struct wp_kube_config c;
	char err[256] = "";

	(void)state;
	assert_int_equal(wp_kube_config_parse(&c, kubeconfig, strlen(kubeconfig), "/cfg", "third",
	                                      err, sizeof(err)),
	                 0);
	assert_string_equal(c.token_file, "/var/tok");
	assert_string_equal(c.cert_file, "/cfg/c.crt");
	assert_string_equal(c.key_file, "/abs/c.key");
	wp_kube_config_clear(&c);
}

static void test_kubeconfig_errors(void **state)
{
	struct wp_kube_config c;
	char err[256] = "";
	const char *nocur = "apiVersion: v1\nclusters: []\n";
	const char *bad = "clusters: [\n";

	(void)state;
	assert_int_equal(wp_kube_config_parse(&c, kubeconfig, strlen(kubeconfig), NULL, "missing",
	                                      err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "context \"missing\" not found");
	assert_int_equal(wp_kube_config_parse(&c, kubeconfig, strlen(kubeconfig), NULL, "broken",
	                                      err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "cluster \"nope\" of context \"broken\" not found");
	assert_int_equal(wp_kube_config_parse(&c, kubeconfig, strlen(kubeconfig), NULL, "execctx",
	                                      err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "user \"plugin\": exec apiVersion \"\" is not "
	                         "client.authentication.k8s.io/v1 or v1beta1");
	assert_int_equal(
	        wp_kube_config_parse(&c, nocur, strlen(nocur), NULL, NULL, err, sizeof(err)),
	        -EINVAL);
	assert_string_equal(err, "no current-context is set");
	assert_int_equal(wp_kube_config_parse(&c, bad, strlen(bad), NULL, NULL, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "YAML error"));
	assert_null(c.server);
}

/* Found by fuzz_kubeconfig: a server of slashes alone was accepted as "". */
static void test_kubeconfig_server_of_slashes(void **state)
{
	struct wp_kube_config c;
	char err[256] = "";
	const char *slashes = "clusters: [{name: c, cluster: {server: \"//\"}}]\n"
	                      "contexts: [{name: a, context: {cluster: c}}]\n"
	                      "current-context: a\n";

	(void)state;
	assert_int_equal(
	        wp_kube_config_parse(&c, slashes, strlen(slashes), NULL, NULL, err, sizeof(err)),
	        -EINVAL);
	assert_string_equal(err, "cluster \"c\" has no server");
	assert_null(c.server);
}

static void test_kubeconfig_load_from_env(void **state)
{
	char dir[] = "/tmp/kubecfgXXXXXX", path[300], err[256] = "";
	struct wp_kube_config c;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/config", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(kubeconfig, f);
	fclose(f);
	char env[700];
	snprintf(env, sizeof(env), "%s/does-not-exist:%s", dir, path);
	setenv("KUBECONFIG", env, 1);
	assert_int_equal(wp_kube_config_load(&c, NULL, NULL, err, sizeof(err)), 0);
	snprintf(env, sizeof(env), "%s/certs/ca.crt", dir);
	assert_string_equal(c.ca_file, env);
	wp_kube_config_clear(&c);
	setenv("KUBECONFIG", "/nonexistent/kc", 1);
	assert_int_equal(wp_kube_config_load(&c, NULL, NULL, err, sizeof(err)), -ENOENT);
	unsetenv("KUBECONFIG");
	unlink(path);
	rmdir(dir);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[300];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_in_cluster(void **state)
{
	char dir[] = "/tmp/kubesaXXXXXX", p[300];
	struct wp_kube_config c;

	(void)state;
	assert_non_null(mkdtemp(dir));
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(wp_kube_config_in_cluster(&c, dir), -ENOENT);
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "6443", 1);
	assert_int_equal(wp_kube_config_in_cluster(&c, dir), -ENOENT); /* no token file */
	write_file(dir, "token", "tok\n");
	write_file(dir, "ca.crt", "pem");
	write_file(dir, "namespace", "istio-system\n");
	assert_int_equal(wp_kube_config_in_cluster(&c, dir), 0);
	assert_string_equal(c.server, "https://[fd00::1]:6443");
	snprintf(p, sizeof(p), "%s/token", dir);
	assert_string_equal(c.token_file, p);
	snprintf(p, sizeof(p), "%s/ca.crt", dir);
	assert_string_equal(c.ca_file, p);
	assert_string_equal(c.namespace, "istio-system");
	wp_kube_config_clear(&c);
	setenv("KUBERNETES_SERVICE_PORT", "x1", 1);
	assert_int_equal(wp_kube_config_in_cluster(&c, dir), -EINVAL);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	for (const char *n = "token"; n; n = !strcmp(n, "token")    ? "ca.crt"
	                                     : !strcmp(n, "ca.crt") ? "namespace"
	                                                            : NULL) {
		snprintf(p, sizeof(p), "%s/%s", dir, n);
		unlink(p);
	}
	rmdir(dir);
}

static int parse(const char *s, struct wp_kube_event *ev)
{
	return wp_kube_event_parse(s, strlen(s), ev);
}

static void test_event_parse(void **state)
{
	struct wp_kube_event ev;

	(void)state;
	assert_int_equal(parse("{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":"
	                       "{\"name\":\"p\",\"resourceVersion\":\"17\"}}}",
	                       &ev),
	                 0);
	assert_int_equal(ev.type, WP_KUBE_EV_ADDED);
	assert_string_equal(ev.rv, "17");
	assert_string_equal(json_string_value(json_object_get(ev.object, "kind")), "Pod");
	wp_kube_event_clear(&ev);

	assert_int_equal(parse("{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":"
	                       "{\"resourceVersion\":\"99\"}}}",
	                       &ev),
	                 0);
	assert_int_equal(ev.type, WP_KUBE_EV_BOOKMARK);
	assert_string_equal(ev.rv, "99");
	wp_kube_event_clear(&ev);

	assert_int_equal(parse("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,"
	                       "\"reason\":\"Expired\"}}",
	                       &ev),
	                 0);
	assert_int_equal(ev.type, WP_KUBE_EV_ERROR);
	assert_int_equal(ev.code, 410);
	assert_null(ev.rv);
	wp_kube_event_clear(&ev);

	assert_int_equal(
	        parse("{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"x\"}}}", &ev), 0);
	assert_int_equal(ev.type, WP_KUBE_EV_DELETED);
	assert_null(ev.rv);
	wp_kube_event_clear(&ev);

	/* Malformed: not JSON, unknown type, no object, object without name,
	 * duplicate keys, truncated. */
	assert_int_equal(parse("nope", &ev), -EBADMSG);
	assert_int_equal(parse("{\"type\":\"RENAMED\",\"object\":{}}", &ev), -EBADMSG);
	assert_int_equal(parse("{\"type\":\"ADDED\"}", &ev), -EBADMSG);
	assert_int_equal(parse("{\"type\":\"ADDED\",\"object\":[]}", &ev), -EBADMSG);
	assert_int_equal(parse("{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{}}}", &ev),
	                 -EBADMSG);
	assert_int_equal(parse("{\"type\":\"ADDED\",\"type\":\"DELETED\",\"object\":{}}", &ev),
	                 -EBADMSG);
	assert_int_equal(parse("{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"na", &ev),
	                 -EBADMSG);
	assert_null(ev.object);
}

static void test_backoff(void **state)
{
	struct wp_kube_backoff b;
	double expect = 0.8;

	(void)state;
	wp_kube_backoff_init(&b, 0.8, 30, 12345);
	for (int i = 0; i < 12; i++) {
		double d = wp_kube_backoff_next(&b);
		double cap = expect > 30 ? 30 : expect;

		assert_true(d >= 0.75 * cap - 1e-9);
		assert_true(d <= 1.25 * cap + 1e-9);
		assert_true(d <= 30.0);
		expect *= 2;
	}
	/* Jitter: not all the same at the cap. */
	double a = wp_kube_backoff_next(&b), c = wp_kube_backoff_next(&b);
	assert_true(a != c);
	wp_kube_backoff_reset(&b);
	double d = wp_kube_backoff_next(&b);
	assert_true(d >= 0.6 && d <= 1.0);
}

static void test_paths(void **state)
{
	char buf[256];

	(void)state;
	wp_kube_path(buf, sizeof(buf), &wp_kube_resources[WP_KUBE_RES_POD], NULL, NULL, NULL);
	assert_string_equal(buf, "/api/v1/pods");
	wp_kube_path(buf, sizeof(buf), &wp_kube_resources[WP_KUBE_RES_GATEWAY], "ns1", "w",
	             "status");
	assert_string_equal(buf,
	                    "/apis/gateway.networking.k8s.io/v1/namespaces/ns1/gateways/w/status");
	wp_kube_path(buf, sizeof(buf), &wp_kube_resources[WP_KUBE_RES_NAMESPACE], "ignored",
	             "default", NULL);
	assert_string_equal(buf, "/api/v1/namespaces/default");
	assert_int_equal(
	        wp_kube_path(buf, 10, &wp_kube_resources[WP_KUBE_RES_POD], NULL, NULL, NULL),
	        -ENAMETOOLONG);
	size_t n;
	char *dec = wp_kube_b64decode("aGVs\nbG8=", &n);
	assert_int_equal(n, 5);
	assert_string_equal(dec, "hello");
	free(dec);
	assert_null(wp_kube_b64decode("a*b", &n));
}

static json_t *gw(const char *cls, const char *extra_spec)
{
	char buf[1024];

	snprintf(buf, sizeof(buf),
	         "{\"metadata\":{\"name\":\"w\",\"namespace\":\"apps\",\"generation\":3},"
	         "\"spec\":{\"gatewayClassName\":\"%s\",\"listeners\":[{\"name\":\"mesh\","
	         "\"port\":15008,\"protocol\":\"HBONE\"}]%s},"
	         "\"status\":{\"conditions\":[{\"type\":\"Other\",\"status\":\"True\"},"
	         "{\"type\":\"Programmed\",\"status\":\"True\",\"lastTransitionTime\":\"T0\"}]}}",
	         cls, extra_spec);
	return json_loads(buf, 0, NULL);
}

static void test_status_policy(void **state)
{
	struct wp_kube_status_policy p = {.controller_name = "waypointd.io/controller",
	                                  .service_name = "waypointd",
	                                  .cluster_domain = "cluster.local"};
	json_t *ours = gw("waypointd", ""), *istio = gw("istio-waypoint", "");
	json_t *manual = gw("istio-waypoint",
	                    ",\"addresses\":[{\"type\":\"Hostname\",\"value\":\"x.apps.svc\"}]");

	(void)state;
	assert_true(wp_kube_status_owns(&p, ours, "waypointd.io/controller"));
	assert_false(wp_kube_status_owns(&p, istio, "istio.io/mesh-controller"));
	assert_false(wp_kube_status_owns(&p, ours, NULL));
	p.standalone = true;
	assert_true(wp_kube_status_owns(&p, istio, "istio.io/mesh-controller"));
	assert_false(wp_kube_status_owns(&p, manual, "istio.io/mesh-controller"));
	assert_false(wp_kube_status_owns(&p, manual, NULL));

	json_t *st = wp_kube_status_desired(&p, ours, "T1");
	json_t *conds = json_object_get(st, "conditions");
	assert_int_equal(json_array_size(conds), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(conds, 0), "type")),
	                    "Other");
	json_t *prog = json_array_get(conds, 2);
	assert_string_equal(json_string_value(json_object_get(prog, "type")), "Programmed");
	assert_int_equal(json_integer_value(json_object_get(prog, "observedGeneration")), 3);
	/* Unchanged status keeps its transition time; the new one gets now. */
	assert_string_equal(json_string_value(json_object_get(prog, "lastTransitionTime")), "T0");
	assert_string_equal(
	        json_string_value(json_object_get(json_array_get(conds, 1), "lastTransitionTime")),
	        "T1");
	json_t *addr = json_array_get(json_object_get(st, "addresses"), 0);
	assert_string_equal(json_string_value(json_object_get(addr, "type")), "Hostname");
	assert_string_equal(json_string_value(json_object_get(addr, "value")),
	                    "waypointd.apps.svc.cluster.local");
	json_t *l = json_array_get(json_object_get(st, "listeners"), 0);
	assert_string_equal(json_string_value(json_object_get(l, "name")), "mesh");
	assert_int_equal(json_array_size(json_object_get(l, "conditions")), 3);
	/* Stable: applying the desired status and computing again is a no-op. */
	json_object_set(ours, "status", st);
	json_t *again = wp_kube_status_desired(&p, ours, "T2");
	assert_true(json_equal(again, st));
	json_decref(again);
	json_decref(st);

	const char *ips[] = {"198.18.0.2", "198.18.0.3"};
	p.ips = ips;
	p.n_ips = 2;
	st = wp_kube_status_desired(&p, istio, "T1");
	assert_int_equal(json_array_size(json_object_get(st, "addresses")), 2);
	addr = json_array_get(json_object_get(st, "addresses"), 1);
	assert_string_equal(json_string_value(json_object_get(addr, "type")), "IPAddress");
	assert_string_equal(json_string_value(json_object_get(addr, "value")), "198.18.0.3");
	json_decref(st);
	json_decref(ours);
	json_decref(istio);
	json_decref(manual);
}

/* With the served set given, ownership follows it: our class but not
 * served → no status; standalone → exactly the served ones, any class, but
 * never Istio's manual deployment. And the Service namespace override. */
static void test_status_policy_served(void **state)
{
	static const char *const served[] = {"apps/w", "other/x"};
	struct wp_kube_status_policy p = {.controller_name = "waypointd.io/controller",
	                                  .service_name = "waypointd",
	                                  .cluster_domain = "cluster.local",
	                                  .served_filter = true,
	                                  .served_gateways = served,
	                                  .n_served_gateways = 2};
	json_t *ours = gw("waypointd", ""), *istio = gw("istio-waypoint", "");
	json_t *manual = gw("istio-waypoint",
	                    ",\"addresses\":[{\"type\":\"Hostname\",\"value\":\"x.apps.svc\"}]");
	json_t *st, *addr;

	(void)state;
	/* gw() makes apps/w: served by name */
	assert_true(wp_kube_status_owns(&p, ours, "waypointd.io/controller"));
	assert_false(wp_kube_status_owns(&p, istio, "istio.io/mesh-controller"));
	p.n_served_gateways = 1;
	p.served_gateways = served + 1; /* only other/x */
	assert_false(wp_kube_status_owns(&p, ours, "waypointd.io/controller"));
	p.served_class = "waypointd"; /* served by class */
	assert_true(wp_kube_status_owns(&p, ours, "waypointd.io/controller"));
	assert_false(wp_kube_status_owns(&p, istio, "istio.io/mesh-controller"));
	p.standalone = true;
	assert_true(wp_kube_status_owns(&p, ours, NULL));
	assert_false(wp_kube_status_owns(&p, istio, "istio.io/mesh-controller")); /* not served */
	p.served_class = "istio-waypoint";
	assert_true(wp_kube_status_owns(&p, istio, "istio.io/mesh-controller"));
	assert_false(wp_kube_status_owns(&p, manual, "istio.io/mesh-controller"));

	p.service_namespace = "waypoint-system";
	st = wp_kube_status_desired(&p, ours, "T1");
	addr = json_array_get(json_object_get(st, "addresses"), 0);
	assert_string_equal(json_string_value(json_object_get(addr, "value")),
	                    "waypointd.waypoint-system.svc.cluster.local");
	json_decref(st);
	json_decref(ours);
	json_decref(istio);
	json_decref(manual);
}

static const char exec_head[] = "apiVersion: v1\n"
                                "current-context: x\n"
                                "clusters:\n"
                                "- name: c\n"
                                "  cluster:\n"
                                "    server: https://10.0.0.9:6443\n"
                                "    certificate-authority-data: aGVsbG8gY2E=\n"
                                "contexts:\n"
                                "- name: x\n"
                                "  context: {cluster: c, user: u}\n"
                                "users:\n"
                                "- name: u\n"
                                "  user:\n";

static int parse_user(struct wp_kube_config *c, const char *user, char *err, size_t errlen)
{
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s%s", exec_head, user);
	return wp_kube_config_parse(c, buf, strlen(buf), "/kc", NULL, err, errlen);
}

static void test_exec_config(void **state)
{
	struct wp_kube_config c;
	char err[512] = "";

	(void)state;
	assert_int_equal(parse_user(&c,
	                            "    exec:\n"
	                            "      apiVersion: client.authentication.k8s.io/v1beta1\n"
	                            "      command: aws\n"
	                            "      args: [eks, get-token]\n"
	                            "      interactiveMode: IfAvailable\n",
	                            err, sizeof(err)),
	                 0);
	assert_non_null(c.exec);
	assert_null(c.token);
	wp_kube_config_clear(&c);
	assert_null(c.exec);
	assert_int_equal(parse_user(&c,
	                            "    exec:\n"
	                            "      apiVersion: client.authentication.k8s.io/v1\n"
	                            "      command: gke-gcloud-auth-plugin\n"
	                            "      interactiveMode: Always\n",
	                            err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "interactiveMode \"Always\" needs a terminal"));
	assert_int_equal(parse_user(&c,
	                            "    exec:\n"
	                            "      apiVersion: client.authentication.k8s.io/v1alpha1\n"
	                            "      command: x\n",
	                            err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(parse_user(&c,
	                            "    exec:\n"
	                            "      apiVersion: client.authentication.k8s.io/v1\n"
	                            "      command: x\n"
	                            "      env: [{name: A}]\n",
	                            err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "user \"u\": exec env entries need a name and a value");
	assert_int_equal(parse_user(&c, "    auth-provider: {name: gcp}\n", err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "auth-provider plugins are not supported"));
	assert_null(c.server);
}

static void test_exec_cred_parse(void **state)
{
	const char *v1 = "client.authentication.k8s.io/v1";
	struct wp_kube_cred cr;
	char err[256] = "";
	const char *tok =
	        "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/"
	        "v1\",\"status\":{\"token\":\"t0k\",\"expirationTimestamp\":\"2030-01-02T03:"
	        "04:05Z\"}}";
	const char *cert =
	        "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s."
	        "io/v1\",\"status\":{\"clientCertificateData\":\"CERT\","
	        "\"clientKeyData\":\"KEY\"}}";
	const char *nokey =
	        "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s."
	        "io/v1\",\"status\":{\"clientCertificateData\":\"CERT\"}}";
	const char *empty =
	        "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s."
	        "io/v1\",\"status\":{}}";
	const char *badexp =
	        "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s."
	        "io/v1\",\"status\":{\"token\":\"a\",\"expirationTimestamp\":\"soon\"}}";
	time_t t;

	(void)state;
	assert_int_equal(wp_kube_exec_cred_parse(tok, strlen(tok), v1, &cr, err, sizeof(err)), 0);
	assert_string_equal(cr.token, "t0k");
	assert_int_equal(cr.expiry, 1893553445);
	assert_false(wp_kube_cred_expired(&cr, 1893553444));
	assert_true(wp_kube_cred_expired(&cr, 1893553445));
	wp_kube_cred_clear(&cr);
	assert_int_equal(wp_kube_exec_cred_parse(cert, strlen(cert), v1, &cr, err, sizeof(err)), 0);
	assert_null(cr.token);
	assert_int_equal(cr.cert_len, 4);
	assert_string_equal(cr.key_data, "KEY");
	assert_int_equal(cr.expiry, 0);
	assert_false(wp_kube_cred_expired(&cr, 1893553445));
	wp_kube_cred_clear(&cr);
	/* The apiVersion must be the one the kubeconfig asked for. */
	assert_int_equal(wp_kube_exec_cred_parse(tok, strlen(tok),
	                                         "client.authentication.k8s.io/v1beta1", &cr, err,
	                                         sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "kubeconfig asks for client.authentication.k8s.io/v1beta1"));
	assert_int_equal(wp_kube_exec_cred_parse(nokey, strlen(nokey), v1, &cr, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(wp_kube_exec_cred_parse(empty, strlen(empty), v1, &cr, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "neither token nor"));
	assert_int_equal(wp_kube_exec_cred_parse(badexp, strlen(badexp), v1, &cr, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(wp_kube_exec_cred_parse("token", 5, v1, &cr, err, sizeof(err)), -EINVAL);
	assert_null(cr.token);

	assert_int_equal(wp_kube_rfc3339_parse("2030-01-02T03:04:05.123456+01:30", &t), 0);
	assert_int_equal(t, 1893553445 - 5400);
	assert_int_equal(wp_kube_rfc3339_parse("2030-01-02t03:04:05-00:00", &t), 0);
	assert_int_equal(t, 1893553445);
	assert_int_equal(wp_kube_rfc3339_parse("2030-01-02T03:04:05", &t), -EINVAL);
	assert_int_equal(wp_kube_rfc3339_parse("2030-13-02T03:04:05Z", &t), -EINVAL);
	assert_int_equal(wp_kube_rfc3339_parse("2030-01-02T03:04:05Zjunk", &t), -EINVAL);
}

/* A plugin run for real: /bin/sh -c SCRIPT, which counts its runs in a
 * file and prints what the exit status and expiry given in $MODE say. */
static void test_exec_run(void **state)
{
	char dir[] = "/tmp/test_kube_execXXXXXX", user[2048], count[256], err[1024] = "";
	struct wp_kube_config c;
	struct wp_kube_cred cr;
	/* Not close-on-exec: the plugin must not get it all the same. */
	int leak = open("/dev/null", O_RDONLY);
	FILE *f;

	(void)state;
	assert_true(leak >= 3);
	assert_non_null(mkdtemp(dir));
	snprintf(count, sizeof(count), "%s/count", dir);
	snprintf(user, sizeof(user),
	         "    exec:\n"
	         "      apiVersion: client.authentication.k8s.io/v1\n"
	         "      command: /bin/sh\n"
	         "      provideClusterInfo: true\n"
	         "      installHint: get it\n"
	         "      env: [{name: COUNT, value: '%s'}]\n"
	         "      args:\n"
	         "      - -c\n"
	         "      - |\n"
	         "        echo x >> \"$COUNT\"\n"
	         "        n=$(wc -l < \"$COUNT\")\n"
	         "        case \"$KUBERNETES_EXEC_INFO\" in\n"
	         "        *'\"interactive\":false'*'\"server\":\"https://10.0.0.9:6443\"'*) ;;\n"
	         "        *) echo \"bad info $KUBERNETES_EXEC_INFO\" >&2; exit 3;;\n"
	         "        esac\n"
	         "        case \"$KUBERNETES_EXEC_INFO\" in *aGVsbG8gY2E=*) ;; *) exit 4;; esac\n"
	         "        if [ -e /proc/$$/fd/%d ]; then echo 'fd leaked' >&2; exit 5; fi\n"
	         "        if [ \"$(cat %s/mode)\" = fail ]; then echo 'no login' >&2; exit 2; fi\n"
	         "        exp=$(cat %s/mode)\n"
	         "        printf '{\"kind\":\"ExecCredential\",\"apiVersion\":"
	         "\"client.authentication.k8s.io/v1\",\"status\":{\"token\":\"tok-%%s\"%%s}}' "
	         "\"$n\" \"$exp\"\n",
	         count, leak, dir, dir);
	assert_int_equal(parse_user(&c, user, err, sizeof(err)), 0);

	/* No expiry: one run serves every request; a refusal runs it again. */
	snprintf(count, sizeof(count), "%s/mode", dir);
	f = fopen(count, "w");
	fclose(f);
	assert_int_equal(wp_kube_exec_credential(c.exec, 0, &cr, err, sizeof(err)), 1);
	assert_string_equal(cr.token, "tok-1");
	assert_int_equal(cr.gen, 1);
	wp_kube_cred_clear(&cr);
	assert_int_equal(wp_kube_exec_credential(c.exec, 0, &cr, err, sizeof(err)), 0);
	assert_string_equal(cr.token, "tok-1");
	wp_kube_cred_clear(&cr);
	assert_int_equal(wp_kube_exec_credential(c.exec, 1, &cr, err, sizeof(err)), 1);
	assert_string_equal(cr.token, "tok-2");
	wp_kube_cred_clear(&cr);
	/* Refusing a generation already replaced does not run it again. */
	assert_int_equal(wp_kube_exec_credential(c.exec, 1, &cr, err, sizeof(err)), 0);
	assert_string_equal(cr.token, "tok-2");
	wp_kube_cred_clear(&cr);

	/* An expired credential is renewed on the next call. */
	f = fopen(count, "w");
	fputs(",\"expirationTimestamp\":\"2001-01-01T00:00:00Z\"", f);
	fclose(f);
	assert_int_equal(wp_kube_exec_credential(c.exec, 2, &cr, err, sizeof(err)), 1);
	assert_string_equal(cr.token, "tok-3");
	assert_int_equal(cr.expiry, 978307200);
	wp_kube_cred_clear(&cr);
	assert_int_equal(wp_kube_exec_credential(c.exec, 0, &cr, err, sizeof(err)), 1);
	assert_string_equal(cr.token, "tok-4");
	wp_kube_cred_clear(&cr);

	/* A failing plugin: the error names the user and quotes stderr. */
	f = fopen(count, "w");
	fputs("fail", f);
	fclose(f);
	assert_true(wp_kube_exec_credential(c.exec, 0, &cr, err, sizeof(err)) < 0);
	assert_string_equal(err, "kubeconfig (in memory), user \"u\": exec plugin \"/bin/sh\" "
	                         "failed: exit status 2: no login");
	assert_null(cr.token);
	wp_kube_config_clear(&c);

	/* A command that is not there: the install hint follows. */
	assert_int_equal(parse_user(&c,
	                            "    exec:\n"
	                            "      apiVersion: client.authentication.k8s.io/v1\n"
	                            "      command: wp-no-such-plugin\n"
	                            "      installHint: install wp-no-such-plugin first\n",
	                            err, sizeof(err)),
	                 0);
	assert_int_equal(wp_kube_exec_credential(c.exec, 0, &cr, err, sizeof(err)), -ENOENT);
	assert_string_equal(err, "kubeconfig (in memory), user \"u\": exec plugin "
	                         "\"wp-no-such-plugin\": executable file not found in $PATH\n"
	                         "install wp-no-such-plugin first");
	wp_kube_config_clear(&c);
	unlink(count);
	snprintf(count, sizeof(count), "%s/count", dir);
	unlink(count);
	rmdir(dir);
	close(leak);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_kubeconfig_current_context),
	        cmocka_unit_test(test_kubeconfig_data_fields),
	        cmocka_unit_test(test_kubeconfig_files_and_token_file),
	        cmocka_unit_test(test_kubeconfig_errors),
	        cmocka_unit_test(test_kubeconfig_server_of_slashes),
	        cmocka_unit_test(test_kubeconfig_load_from_env),
	        cmocka_unit_test(test_exec_config),
	        cmocka_unit_test(test_exec_cred_parse),
	        cmocka_unit_test(test_exec_run),
	        cmocka_unit_test(test_in_cluster),
	        cmocka_unit_test(test_event_parse),
	        cmocka_unit_test(test_backoff),
	        cmocka_unit_test(test_paths),
	        cmocka_unit_test(test_status_policy),
	        cmocka_unit_test(test_status_policy_served),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
