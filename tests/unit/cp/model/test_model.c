/*
 * Manifest parsing and the manifest-directory source: typed extraction,
 * JSON input, Lists, file:line:field errors for malformed documents while
 * the rest loads, and incremental inotify reloads that keep the last good
 * version of a bad edit.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wp/model.h"
#include "wp/resolve.h"
#include "wp/source.h"

struct got {
	struct wp_obj *objs[32];
	int n;
	char errs[16][WP_MODEL_ERRLEN];
	int ne;
};

static int on_obj(void *ctx, struct wp_obj *o)
{
	struct got *g = ctx;

	assert_true(g->n < 32);
	g->objs[g->n++] = o;
	return 0;
}

static void on_err(void *ctx, const struct wp_model_error *e)
{
	struct got *g = ctx;

	assert_true(g->ne < 16);
	snprintf(g->errs[g->ne++], WP_MODEL_ERRLEN, "%s", e->msg);
}

static void got_free(struct got *g)
{
	for (int i = 0; i < g->n; i++)
		wp_obj_free(g->objs[i]);
}

/* wp_model_parse_docs: every mapping document reaches doc_cb with its line,
 * the kinds the model skips and each item of a List included. */
struct docs {
	char seen[8][64];
	int n;
};

static void on_doc(void *ctx, const char *origin, const struct wp_ynode *root)
{
	struct docs *d = ctx;
	const struct wp_ynode *k = wp_ynode_get(root, "kind");

	assert_string_equal(origin, "d.yaml");
	assert_true(d->n < 8);
	snprintf(d->seen[d->n++], sizeof(d->seen[0]), "%s@%u", k ? k->value : "-", root->line);
}

static int drop_obj(void *ctx, struct wp_obj *o)
{
	(void)ctx;
	wp_obj_free(o);
	return 0;
}

static void test_parse_docs_sees_skipped_kinds(void **state)
{
	(void)state;
	const char *y = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n"
	                "apiVersion: v1\nkind: Servce\nmetadata: {name: s}\n---\n"
	                "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n"
	                "  metadata: {name: n}\n";
	struct docs d = {0};

	assert_int_equal(wp_model_parse_docs(y, strlen(y), "d.yaml", drop_obj, NULL, on_doc, &d),
	                 0);
	assert_int_equal(d.n, 3);
	assert_string_equal(d.seen[0], "Deployment@1");
	assert_string_equal(d.seen[1], "Servce@5");
	assert_string_equal(d.seen[2], "Namespace@12");
}

static void test_parse_service_pod(void **state)
{
	(void)state;
	const char *y = "apiVersion: v1\nkind: Service\nmetadata:\n  name: on\n  namespace: no\n"
	                "  labels: {a: 'yes', b: on}\nspec:\n  clusterIP: 10.0.0.1\n  ports:\n"
	                "  - name: http\n    port: 80\n    targetPort: web\n  selector: {app: x}\n"
	                "---\n# empty document above is fine\n---\napiVersion: apps/v1\nkind: "
	                "Deployment\nmetadata: {name: skipped}\n---\n"
	                "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: "
	                "istio-gw}\nspec: {}\n";
	struct got g = {0};

	assert_int_equal(wp_model_parse(y, strlen(y), "m.yaml", on_obj, on_err, &g), 0);
	assert_int_equal(g.n, 1); /* Deployment and Istio's networking Gateway skipped */
	struct wp_obj *o = g.objs[0];
	assert_int_equal(o->kind, WP_KIND_SERVICE);
	assert_string_equal(o->meta.name, "on"); /* YAML 1.1 booleans stay strings */
	assert_string_equal(o->meta.ns, "no");
	assert_string_equal(wp_labels_get(&o->meta.labels, "b"), "on");
	assert_int_equal(o->u.svc.n_ports, 1);
	assert_int_equal(o->u.svc.ports[0].port, 80);
	assert_string_equal(o->u.svc.ports[0].target_port_name, "web");
	assert_int_equal(o->u.svc.n_cluster_ips, 1);
	got_free(&g);
}

static void test_parse_json_and_list(void **state)
{
	(void)state;
	const char *j = "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"p\","
	                "\"namespace\":\"n\",\"labels\":{\"app\":\"x\"}},\"spec\":{\"containers\":"
	                "[{\"name\":\"c\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080}]}],"
	                "\"serviceAccountName\":\"sa\"},\"status\":{\"phase\":\"Running\","
	                "\"podIPs\":[{\"ip\":\"10.1.2.3\"}],\"conditions\":[{\"type\":\"Ready\","
	                "\"status\":\"False\"}]}}";
	char err[256];
	struct wp_obj *o = wp_model_parse_one(j, strlen(j), "k8s:Pod/n/p", err, sizeof(err));

	assert_non_null(o);
	assert_int_equal(o->kind, WP_KIND_POD);
	assert_string_equal(o->u.pod.service_account, "sa");
	assert_int_equal(o->u.pod.n_ips, 1);
	assert_int_equal(o->u.pod.n_cports, 1);
	assert_int_equal(o->u.pod.cports[0].port, 8080);
	assert_false(o->u.pod.ready);
	wp_obj_free(o);

	const char *l =
	        "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"items\":["
	        "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\"}},"
	        "{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"b\"}}]}";
	struct got g = {0};
	assert_int_equal(wp_model_parse(l, strlen(l), "list.json", on_obj, on_err, &g), 0);
	assert_int_equal(g.n, 2);
	assert_string_equal(g.objs[1]->meta.name, "b");
	got_free(&g);
}

/* A Pod's telemetry metadata follows istiod's rules: the workload from the
 * workload-name label, else the controller of a Pod whose name was
 * generated (Deployment through its ReplicaSet's pod-template-hash, Argo
 * Rollout, DeploymentConfig, CronJob through its Job's timestamp, any other
 * controller by name), else the Pod; canonical service and revision from
 * Istio's, then Kubernetes', then the plain labels, else the workload and
 * "latest". */
static void test_pod_workload(void **state)
{
	(void)state;
	static const struct {
		const char *meta; /* inside metadata: after the name */
		const char *workload, *canon, *rev;
	} cases[] = {
	        /* no generateName: the Pod itself, even with an owner */
	        {"labels: {app: a}\n  ownerReferences: [{kind: ReplicaSet, name: rs-1, "
	         "controller: true}]",
	         "p-x", "a", "latest"},
	        {"generateName: web-v1-5f7d9c-\n  labels: {pod-template-hash: 5f7d9c, version: "
	         "v1}\n  ownerReferences: [{kind: ReplicaSet, name: web-v1-5f7d9c, controller: "
	         "true}]",
	         "web-v1", "web-v1", "v1"},
	        /* a hash that is not the ReplicaSet's suffix: the ReplicaSet */
	        {"generateName: rs-\n  labels: {pod-template-hash: zzz}\n  ownerReferences: "
	         "[{kind: ReplicaSet, name: rs-abc, controller: true}]",
	         "rs-abc", "rs-abc", "latest"},
	        {"generateName: r-\n  labels: {rollouts-pod-template-hash: 77d}\n  "
	         "ownerReferences: [{kind: ReplicaSet, name: canary-77d, controller: true}]",
	         "canary", "canary", "latest"},
	        {"generateName: dc-\n  labels: {deploymentconfig: shop}\n  ownerReferences: "
	         "[{kind: ReplicationController, name: shop-3, controller: true}]",
	         "shop", "shop", "latest"},
	        {"generateName: j-\n  ownerReferences: [{kind: Job, name: nightly-28871040, "
	         "controller: true}]",
	         "nightly", "nightly", "latest"},
	        /* seven digits is not a CronJob's timestamp */
	        {"generateName: j-\n  ownerReferences: [{kind: Job, name: once-2887104, "
	         "controller: true}]",
	         "once-2887104", "once-2887104", "latest"},
	        {"generateName: s-\n  ownerReferences: [{kind: StatefulSet, name: db, controller: "
	         "true}]",
	         "db", "db", "latest"},
	        /* an owner that is not the controller does not count */
	        {"generateName: s-\n  ownerReferences: [{kind: StatefulSet, name: db}]", "p-x",
	         "p-x", "latest"},
	        {"generateName: s-\n  labels: {service.istio.io/workload-name: named, "
	         "app.kubernetes.io/name: k8s-name, app: plain, app.kubernetes.io/version: "
	         "\"2.1\", version: v9}\n  ownerReferences: [{kind: StatefulSet, name: db, "
	         "controller: true}]",
	         "named", "k8s-name", "2.1"},
	        {"labels: {service.istio.io/canonical-name: istio-name, app: plain, "
	         "service.istio.io/canonical-revision: r7, version: v9}",
	         "p-x", "istio-name", "r7"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char y[1024], err[256];
		struct wp_obj *o;

		snprintf(y, sizeof(y), "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p-x\n  %s\n",
		         cases[i].meta);
		o = wp_model_parse_one(y, strlen(y), "pod.yaml", err, sizeof(err));
		if (!o)
			fail_msg("case %zu: %s", i, err);
		assert_string_equal(o->u.pod.workload, cases[i].workload);
		assert_string_equal(o->u.pod.canonical_name, cases[i].canon);
		assert_string_equal(o->u.pod.canonical_revision, cases[i].rev);
		wp_obj_free(o);
	}
}

/* Each malformed document is rejected with FILE:LINE: ... FIELD: problem,
 * and the good documents around it still load. */
static void test_malformed(void **state)
{
	(void)state;
	static const struct {
		const char *doc;
		const char *want; /* substring of the message */
	} cases[] = {
	        {"apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports:\n"
	         "  - port: 99999\n",
	         "bad.yaml:6: Service default/s: spec.ports[0].port: expected a port number"},
	        {"apiVersion: v1\nkind: Service\nmetadata: {name: s2}\nspec:\n  clusterIP: "
	         "10.0.0.999\n",
	         ":5: Service default/s2: spec.clusterIP: expected an IP address"},
	        {"apiVersion: v1\nkind: Pod\nmetadata:\n  namespace: x\n",
	         "metadata.name: required field missing"},
	        {"apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus:\n  podIP: nope\n",
	         ":5: Pod default/p: status.podIP: expected an IP address"},
	        {"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g}\n"
	         "spec:\n  gatewayClassName: c\n  listeners:\n  - name: mesh\n    port: 15008\n"
	         "    protocol: HBONE\n    allowedRoutes:\n      namespaces:\n        from: Some\n",
	         ":12: Gateway default/g: spec.listeners[0].allowedRoutes.namespaces.from: must "
	         "be"},
	        {"apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: g2}\n"
	         "spec:\n  listeners: []\n",
	         "spec.gatewayClassName: required field missing"},
	        {"apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: e}\n"
	         "addressType: IPv4\nendpoints:\n- addresses: [1.2.3.4]\n  conditions: {ready: "
	         "maybe}\n",
	         ":7: EndpointSlice default/e: endpoints[0].conditions.ready: expected true or "
	         "false"},
	        {"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  labels: [a, b]\n",
	         ":5: Namespace n: metadata.labels: expected a mapping"},
	        {"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: "
	         "a}\nspec:\n  action: MAYBE\n",
	         ":5: AuthorizationPolicy default/a: spec.action: must be ALLOW"},
	        {"kind: Pod\nmetadata: {name: x}\n", ":1: apiVersion: required field missing"},
	        {"- just\n- a list\n", ":1: document is not a mapping"},
	};
	const char *good = "apiVersion: v1\nkind: Namespace\nmetadata: {name: good}\n";

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[2048];
		struct got g = {0};

		snprintf(buf, sizeof(buf), "%s---\n%s---\n%s", cases[i].doc, good, good);
		assert_int_equal(wp_model_parse(buf, strlen(buf), "bad.yaml", on_obj, on_err, &g),
		                 1);
		assert_int_equal(g.n, 2);
		assert_int_equal(g.ne, 1);
		if (!strstr(g.errs[0], cases[i].want))
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, g.errs[0], cases[i].want);
		assert_true(!strncmp(g.errs[0], "bad.yaml:", 9));
		got_free(&g);
	}
	/* a YAML syntax error names its line; documents before it were seen */
	const char *syn = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkey: [1, 2\n";
	struct got g = {0};
	assert_int_equal(wp_model_parse(syn, strlen(syn), "syn.yaml", on_obj, on_err, &g),
	                 -EBADMSG);
	assert_int_equal(g.ne, 1);
	assert_non_null(strstr(g.errs[0], "syn.yaml:"));
	assert_non_null(strstr(g.errs[0], "YAML syntax error"));
	got_free(&g);
}

static void test_selector_match(void **state)
{
	(void)state;
	struct wp_kv kv[] = {{"env", "dev"}, {"team", "a"}};
	struct wp_labels l = {2, kv};
	const char *vals[] = {"prod", "stage"};
	struct wp_sel_expr ex = {"env", WP_SEL_NOT_IN, 2, vals};
	struct wp_label_selector s = {.n_expr = 1, .expr = &ex};

	assert_true(wp_selector_match(&s, &l));
	ex.op = WP_SEL_IN;
	assert_false(wp_selector_match(&s, &l));
	ex.op = WP_SEL_EXISTS;
	ex.n_values = 0;
	assert_true(wp_selector_match(&s, &l));
	ex.key = "nope";
	assert_false(wp_selector_match(&s, &l));
	ex.op = WP_SEL_DOES_NOT_EXIST;
	assert_true(wp_selector_match(&s, &l));
}

/* ---- manifest directory ------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512], tmp[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(rename(tmp, path), 0); /* atomic, like kubectl/editors */
}

static int poll_until(struct wp_source *src)
{
	for (int i = 0; i < 200; i++) {
		int n = src->ops->poll(src);

		if (n > 0)
			return n;
		usleep(5000);
	}
	return 0;
}

static void test_manifest_dir(void **state)
{
	(void)state;
	char dir[] = "/tmp/wp-cp-test-XXXXXX";
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct wp_resolver *r = wp_resolver_create(&served);
	const char *const *errs;
	struct wp_source *src;
	char cmd[600];

	assert_non_null(mkdtemp(dir));
	write_file(dir, "a.yaml",
	           "apiVersion: v1\nkind: Namespace\nmetadata: {name: n1}\n---\napiVersion: v1\n"
	           "kind: Service\nmetadata: {name: s1, namespace: n1}\nspec:\n  ports:\n"
	           "  - port: 80\n");
	write_file(dir, "b.json",
	           "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"n2\"}}");
	write_file(dir, "ignored.txt", "not: yaml: at: all: [");
	src = wp_source_manifest_dir_create(dir);
	assert_non_null(src);
	assert_int_equal(src->ops->start(src, wp_resolver_sink(r)), 0);
	assert_int_equal(wp_resolver_count(r, WP_KIND_NAMESPACE), 2);
	assert_int_equal(wp_resolver_count(r, WP_KIND_SERVICE), 1);
	assert_int_equal(wp_resolver_errors(r, &errs), 0);

	/* a bad edit of s1: rejected with its line and field, last good kept,
	 * the file's other objects still applied (n1 -> n1 and n3) */
	write_file(dir, "a.yaml",
	           "apiVersion: v1\nkind: Namespace\nmetadata: {name: n3}\n---\napiVersion: v1\n"
	           "kind: Service\nmetadata: {name: s1, namespace: n1}\nspec:\n  ports:\n"
	           "  - port: eighty\n");
	assert_true(poll_until(src) > 0);
	assert_int_equal(wp_resolver_count(r, WP_KIND_SERVICE), 1);
	assert_int_equal(wp_resolver_count(r, WP_KIND_NAMESPACE), 2); /* n1 left, n3 came */
	assert_int_equal(wp_resolver_errors(r, &errs), 1);
	assert_non_null(strstr(errs[0], "a.yaml:10: Service n1/s1: spec.ports[0].port:"));

	/* a syntax error keeps everything the file had */
	write_file(dir, "a.yaml", "apiVersion: v1\nkind: [\n");
	assert_true(poll_until(src) > 0);
	assert_int_equal(wp_resolver_count(r, WP_KIND_SERVICE), 1);
	assert_int_equal(wp_resolver_count(r, WP_KIND_NAMESPACE), 2);
	assert_int_equal(wp_resolver_errors(r, &errs), 1);
	assert_non_null(strstr(errs[0], "YAML syntax error"));

	/* fixed: errors clear, the file's content is exactly the new one */
	write_file(dir, "a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: n4}\n");
	assert_true(poll_until(src) > 0);
	assert_int_equal(wp_resolver_errors(r, &errs), 0);
	assert_int_equal(wp_resolver_count(r, WP_KIND_SERVICE), 0);
	assert_int_equal(wp_resolver_count(r, WP_KIND_NAMESPACE), 2); /* n2, n4 */

	/* deleting a file removes its objects */
	snprintf(cmd, sizeof(cmd), "%s/b.json", dir);
	assert_int_equal(unlink(cmd), 0);
	assert_true(poll_until(src) > 0);
	assert_int_equal(wp_resolver_count(r, WP_KIND_NAMESPACE), 1);

	wp_source_destroy(src);
	wp_resolver_destroy(r);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* An editor that truncates the file, then writes the new text through the
 * same descriptor: the empty file is never read (the source waits for the
 * close, IN_CLOSE_WRITE), so its objects never leave the resolver. */
static void test_manifest_dir_truncate(void **state)
{
	(void)state;
	static const char v1[] = "apiVersion: v1\nkind: Namespace\nmetadata: {name: n1}\n---\n"
	                         "apiVersion: v1\nkind: Service\nmetadata: {name: s1, namespace: "
	                         "n1}\nspec:\n  ports:\n  - port: 80\n";
	static const char v2[] = "---\napiVersion: v1\nkind: Service\nmetadata: {name: s2, "
	                         "namespace: n1}\nspec:\n  ports:\n  - port: 81\n";
	char dir[] = "/tmp/wp-cp-test-XXXXXX", path[600], cmd[600];
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct wp_resolver *r = wp_resolver_create(&served);
	struct wp_source *src;
	int fd;

	assert_non_null(mkdtemp(dir));
	write_file(dir, "a.yaml", v1);
	src = wp_source_manifest_dir_create(dir);
	assert_non_null(src);
	assert_int_equal(src->ops->start(src, wp_resolver_sink(r)), 0);
	assert_int_equal(wp_resolver_count(r, WP_KIND_SERVICE), 1);

	snprintf(path, sizeof(path), "%s/a.yaml", dir);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	for (int i = 0; i < 20; i++) { /* 100 ms empty and open */
		assert_int_equal(src->ops->poll(src), 0);
		usleep(5000);
	}
	assert_int_equal(wp_resolver_count(r, WP_KIND_NAMESPACE), 1);
	assert_int_equal(wp_resolver_count(r, WP_KIND_SERVICE), 1);
	assert_int_equal(write(fd, v1, strlen(v1)), (ssize_t)strlen(v1));
	assert_int_equal(write(fd, v2, strlen(v2)), (ssize_t)strlen(v2));
	assert_int_equal(src->ops->poll(src), 0); /* written, not yet closed */
	assert_int_equal(close(fd), 0);
	assert_true(poll_until(src) > 0);
	assert_int_equal(wp_resolver_count(r, WP_KIND_NAMESPACE), 1);
	assert_int_equal(wp_resolver_count(r, WP_KIND_SERVICE), 2);

	wp_source_destroy(src);
	wp_resolver_destroy(r);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_service_pod),
	        cmocka_unit_test(test_parse_json_and_list),
	        cmocka_unit_test(test_pod_workload),
	        cmocka_unit_test(test_malformed),
	        cmocka_unit_test(test_selector_match),
	        cmocka_unit_test(test_parse_docs_sees_skipped_kinds),
	        cmocka_unit_test(test_manifest_dir),
	        cmocka_unit_test(test_manifest_dir_truncate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
