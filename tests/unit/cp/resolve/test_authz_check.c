/*
 * The authorization check of one request (cp/resolve/authz_check.c), on the
 * manifest fixture tests/unit/cp/resolve/authz_check/: ALLOW, DENY, AUDIT, no
 * policy, ignored policies, fail-closed, opaque TCP, the destination's
 * forms, refusals; the query-string round trip the admin endpoint uses;
 * the config dump's authorization object (applied, ignored with why,
 * errors); and GET /authz/check of the control plane's admin endpoint
 * (loopback) on the same fixture.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "authz_check.h"
#include "wp/counters.h"
#include "wp/cp.h"
#include "wp/cp_json.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

struct fx {
	struct wp_resolver *r;
	struct wp_snapshot *s;
	struct wp_authz_scratch sc;
};

static int setup(void **state)
{
	static struct fx f;
	struct wp_served served = {.class_name = "istio-waypoint"};

	memset(&f, 0, sizeof(f));
	f.r = wp_resolver_create(&served);
	assert_non_null(f.r);
	assert_true(wp_source_manifest_dir_load(FIXTURE_DIR, wp_resolver_sink(f.r)) >= 0);
	f.s = wp_resolver_build(f.r);
	assert_non_null(f.s);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	wp_authz_scratch_fini(&f->sc);
	wp_snapshot_free(f->s);
	wp_resolver_destroy(f->r);
	return 0;
}

/* Runs the check; returns the answer (asserting success). */
static json_t *check(struct fx *f, struct wp_authz_check_in in)
{
	json_t *a = NULL;
	char err[512] = "";

	if (!in.from)
		in.from = "cluster.local/ns/a/sa/other";
	assert_int_equal(wp_authz_check_run(f->s, &f->sc, &in, &a, err, sizeof(err)), 0);
	assert_non_null(a);
	return a;
}

static const char *str(json_t *a, const char *k)
{
	return json_string_value(json_object_get(a, k));
}

/* decision, reason, deciding policy ("-" for none) and rule, audited */
static void expect(json_t *a, const char *decision, const char *reason, const char *policy,
                   int rule, bool audited)
{
	json_t *p = json_object_get(a, "policy");

	assert_string_equal(str(a, "decision"), decision);
	assert_int_equal(json_is_true(json_object_get(a, "allowed")), !strcmp(decision, "ALLOW"));
	assert_string_equal(str(a, "reason"), reason);
	assert_int_equal(json_is_true(json_object_get(a, "audited")), audited);
	if (!strcmp(policy, "-")) {
		assert_true(json_is_null(p));
	} else {
		char nn[128];

		snprintf(nn, sizeof(nn), "%s/%s", str(p, "namespace"), str(p, "name"));
		assert_string_equal(nn, policy);
		assert_int_equal(json_integer_value(json_object_get(p, "rule")), rule);
	}
	json_decref(a);
}

static void test_allow_deny_audit(void **state)
{
	struct fx *f = *state;

	/* the ALLOW policy applies and nothing matches it */
	expect(check(f, (struct wp_authz_check_in){.to = "svc.a:80", .path = "/api/x"}), "DENY",
	       "no_allow_match", "-", 0, false);
	expect(check(f, (struct wp_authz_check_in){.to = "svc.a:80",
	                                           .path = "/api/x",
	                                           .from = "cluster.local/ns/a/sa/reader"}),
	       "ALLOW", "allow_match", "a/allow-reader", 0, false);
	/* spiffe:// is accepted; namespaces come from the principal */
	expect(check(f, (struct wp_authz_check_in){.to = "svc.a.svc.cluster.local:80",
	                                           .method = "POST",
	                                           .from = "spiffe://cluster.local/ns/ops/sa/x"}),
	       "ALLOW", "allow_match", "a/allow-reader", 1, false);
	/* AUDIT marks, never decides */
	expect(check(f, (struct wp_authz_check_in){.to = "svc.a:80",
	                                           .method = "DELETE",
	                                           .from = "cluster.local/ns/ops/sa/x"}),
	       "ALLOW", "allow_match", "a/allow-reader", 1, true);
	expect(check(f, (struct wp_authz_check_in){.to = "svc.a:80", .method = "DELETE"}), "DENY",
	       "no_allow_match", "-", 0, true);
	/* DENY before ALLOW; the path is normalized as the data path does */
	expect(check(f, (struct wp_authz_check_in){.to = "svc.a:80",
	                                           .path = "/api/%2e%2e/admin?x=1",
	                                           .from = "cluster.local/ns/a/sa/reader"}),
	       "DENY", "deny_match", "a/deny-admin", 0, false);
	/* a header condition, names compared lower-case */
	expect(check(f, (struct wp_authz_check_in){.to = "198.19.0.10:80",
	                                           .from = "cluster.local/ns/ops/sa/x",
	                                           .n_headers = 1,
	                                           .headers = {"X-Block=yes"}}),
	       "DENY", "deny_match", "a/deny-admin", 1, false);
	expect(check(f, (struct wp_authz_check_in){.to = "198.19.0.10:80",
	                                           .from = "cluster.local/ns/ops/sa/x",
	                                           .n_headers = 1,
	                                           .headers = {"x-block=no"}}),
	       "ALLOW", "allow_match", "a/allow-reader", 1, false);
}

static void test_no_policy_and_ignored(void **state)
{
	struct fx *f = *state;
	json_t *a;

	/* a/open: only a selector, a namespace-wide and a dry-run DENY name it;
	 * none applies on a waypoint */
	a = check(f, (struct wp_authz_check_in){.to = "open.a:80"});
	assert_int_equal(json_array_size(json_object_get(a, "policies")), 0);
	expect(a, "ALLOW", "no_policy", "-", 0, false);
	/* opaque TCP: the ALLOW's principal and port hold */
	expect(check(f, (struct wp_authz_check_in){.to = "db.a:5432",
	                                           .tcp = true,
	                                           .from = "cluster.local/ns/a/sa/reader"}),
	       "ALLOW", "allow_match", "a/db-reader", 0, false);
	expect(check(f, (struct wp_authz_check_in){.to = "db.a:5432", .tcp = true}), "DENY",
	       "no_allow_match", "-", 0, false);
	/* a DENY that cannot be read denies all (fail closed), and says why */
	a = check(f, (struct wp_authz_check_in){.to = "broken.a:80"});
	assert_int_equal(json_array_size(json_object_get(a, "errors")), 1);
	assert_non_null(strstr(json_string_value(json_array_get(json_object_get(a, "errors"), 0)),
	                       "10-policies.yaml"));
	expect(a, "DENY", "deny_invalid_policy", "a/bad-deny", 0, false);
}

/* A cluster without any AuthorizationPolicy: no table at all, allowed. */
static void test_no_table(void **state)
{
	static const char yaml[] =
	        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels:\n"
	        "    istio.io/use-waypoint: wp\n"
	        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n"
	        "  name: wp\n  namespace: a\nspec:\n  gatewayClassName: istio-waypoint\n"
	        "  listeners:\n  - {name: mesh, port: 15008, protocol: HBONE}\n"
	        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n  namespace: a\n"
	        "spec:\n  clusterIP: 198.19.0.10\n  ports: [{name: http, port: 80}]\n";
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct fx f = {.r = wp_resolver_create(&served)};
	void *st = &f;

	(void)state;
	assert_non_null(f.r);
	assert_true(wp_source_deliver_text(wp_resolver_sink(f.r), "t.yaml", yaml, strlen(yaml)) >
	            0);
	f.s = wp_resolver_build(f.r);
	assert_non_null(f.s);
	assert_null(f.s->services[0]->authz);
	expect(check(&f, (struct wp_authz_check_in){.to = "svc.a:80", .path = "/admin"}), "ALLOW",
	       "no_policy", "-", 0, false);
	teardown(&st);
}

/* What the request looked like, as the data path builds it. */
static void test_request_fields(void **state)
{
	struct fx *f = *state;
	json_t *a = check(f, (struct wp_authz_check_in){.to = "svc.a:80",
	                                                .from = "spiffe://cluster.local/ns/a/sa/x",
	                                                .path = "/a/./b/../c?q=1",
	                                                .method = "PUT",
	                                                .source_ip = "10.0.0.5",
	                                                .n_headers = 2,
	                                                .headers = {"X-A=1", "x-a=2"}});
	json_t *r = json_object_get(a, "request");

	assert_string_equal(str(r, "principal"), "cluster.local/ns/a/sa/x");
	assert_string_equal(str(r, "src_ip"), "10.0.0.5");
	assert_string_equal(str(r, "remote_ip"), "10.0.0.5");
	assert_string_equal(str(r, "dst_ip"), "198.19.0.10");
	assert_int_equal(json_integer_value(json_object_get(r, "dst_port")), 80);
	assert_string_equal(str(r, "host"), "svc.a:80");
	assert_string_equal(str(r, "method"), "PUT");
	assert_string_equal(str(r, "path"), "/a/c");
	assert_string_equal(str(json_object_get(r, "headers"), "x-a"), "1,2");
	assert_true(json_is_true(json_object_get(r, "http")));
	assert_string_equal(str(json_object_get(a, "service"), "waypoint"), "a/wp");
	json_decref(a);
	a = check(f, (struct wp_authz_check_in){.to = "svc.a:80",
	                                        .host = "svc.a.svc.cluster.local",
	                                        .source_ip = "10.0.0.5",
	                                        .remote_ip = "192.0.2.1"});
	r = json_object_get(a, "request");
	assert_string_equal(str(r, "host"), "svc.a.svc.cluster.local");
	assert_string_equal(str(r, "remote_ip"), "192.0.2.1");
	assert_string_equal(str(r, "path"), "/");
	assert_string_equal(str(r, "method"), "GET");
	json_decref(a);
}

static void test_refusals(void **state)
{
	struct fx *f = *state;
	static const struct {
		struct wp_authz_check_in in;
		int rc;
		const char *msg;
	} bad[] = {
	        {{.to = "svc.a:80"}, -EINVAL, "--from"},
	        {{.from = "cluster.local/ns/a", .to = "svc.a:80"}, -EINVAL, "principal"},
	        {{.from = "cluster.local/ns/a/sa/x", .to = "svc.a"}, -EINVAL, "HOST:PORT"},
	        {{.from = "cluster.local/ns/a/sa/x", .to = "svc.a:0"}, -EINVAL, "HOST:PORT"},
	        {{.from = "cluster.local/ns/a/sa/x", .to = "svc.a:80", .source_ip = "x"},
	         -EINVAL,
	         "--source-ip"},
	        {{.from = "cluster.local/ns/a/sa/x", .to = "svc.a:80", .path = "a"},
	         -EINVAL,
	         "--path"},
	        {{.from = "cluster.local/ns/a/sa/x", .to = "svc.a:80", .path = "/a%00"},
	         -EINVAL,
	         "400"},
	        {{.from = "cluster.local/ns/a/sa/x",
	          .to = "svc.a:80",
	          .n_headers = 1,
	          .headers = {"novalue"}},
	         -EINVAL,
	         "NAME=VALUE"},
	        {{.from = "cluster.local/ns/a/sa/x", .to = "nosuch.a:80"}, -ENOENT, "captures"},
	        {{.from = "cluster.local/ns/a/sa/x", .to = "198.19.0.99:80"}, -ENOENT, "captures"},
	        {{.from = "cluster.local/ns/a/sa/x", .to = "svc.a:81"}, -ENOENT, "no port 81"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *a = NULL;
		char err[512] = "";

		assert_int_equal(wp_authz_check_run(f->s, &f->sc, &bad[i].in, &a, err, sizeof(err)),
		                 bad[i].rc);
		assert_null(a);
		if (!strstr(err, bad[i].msg))
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].msg);
	}
}

/* wpctl's query and the admin endpoint's parse give back the same request. */
static void test_query_round_trip(void **state)
{
	struct wp_authz_check_in in = {
	        .from = "spiffe://cluster.local/ns/a/sa/x",
	        .to = "svc.a:80",
	        .host = "h",
	        .method = "GET",
	        .path = "/a b/%2e%2e/c?x=1&y=+",
	        .source_ip = "10.0.0.1",
	        .remote_ip = "10.0.0.2",
	        .tcp = true,
	        .n_headers = 2,
	        .headers = {"k=v=w", "x-y=a&b"},
	};
	struct wp_authz_check_in out;
	char err[256];
	char *q = wp_authz_check_query(&in);

	(void)state;
	assert_non_null(q);
	assert_null(strchr(q, ' '));
	assert_int_equal(wp_authz_check_parse_query(q, &out, err, sizeof(err)), 0);
	assert_string_equal(out.from, in.from);
	assert_string_equal(out.to, in.to);
	assert_string_equal(out.host, in.host);
	assert_string_equal(out.method, in.method);
	assert_string_equal(out.path, in.path);
	assert_string_equal(out.source_ip, in.source_ip);
	assert_string_equal(out.remote_ip, in.remote_ip);
	assert_true(out.tcp);
	assert_int_equal(out.n_headers, 2);
	assert_string_equal(out.headers[0], "k=v=w");
	assert_string_equal(out.headers[1], "x-y=a&b");
	wp_authz_check_fini(&out);
	free(q);
	/* refusals */
	assert_int_equal(wp_authz_check_parse_query("from=a&nope=1", &out, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, "nope"));
	assert_int_equal(wp_authz_check_parse_query("to=a&to=b", &out, err, sizeof(err)), -EINVAL);
	assert_int_equal(wp_authz_check_parse_query("path=%2", &out, err, sizeof(err)), -EINVAL);
	assert_int_equal(wp_authz_check_parse_query("path=%00", &out, err, sizeof(err)), -EINVAL);
	assert_int_equal(wp_authz_check_parse_query("from", &out, err, sizeof(err)), -EINVAL);
	assert_int_equal(wp_authz_check_parse_query("", &out, err, sizeof(err)), 0);
	assert_null(out.from);
	wp_authz_check_fini(&out);
}

/* The config dump's authorization object: applied policies with their
 * compiled rules, ignored ones with why, unreadable ones with file:line. */
static void test_config_dump(void **state)
{
	struct fx *f = *state;
	json_t *j = wp_snapshot_json(f->s), *svcs = json_object_get(j, "services"), *v;
	size_t i;
	bool seen_open = false, seen_svc = false, seen_broken = false;

	json_array_foreach(svcs, i, v)
	{
		json_t *az = json_object_get(v, "authorization");
		json_t *pol = json_object_get(az, "policies"),
		       *ign = json_object_get(az, "ignored");
		char *text = json_dumps(az, JSON_COMPACT);

		assert_non_null(az);
		if (!strcmp(str(v, "name"), "open")) {
			seen_open = true;
			assert_int_equal(json_array_size(pol), 0);
			assert_int_equal(json_array_size(ign), 3);
			assert_non_null(strstr(text,
			                       "{\"namespace\":\"a\",\"name\":\"dry\",\"why\":"
			                       "\"istio.io/dry-run"));
			assert_non_null(
			        strstr(text, "\"name\":\"ns-wide\",\"why\":\"no targetRefs"));
			assert_non_null(strstr(text, "\"name\":\"sel\",\"why\":\"spec.selector"));
		} else if (!strcmp(str(v, "name"), "svc")) {
			seen_svc = true;
			assert_int_equal(json_array_size(pol), 3);
			assert_non_null(strstr(text,
			                       "{\"namespace\":\"a\",\"name\":\"allow-reader\","
			                       "\"action\":\"ALLOW\",\"targetRef\":\"Service\","
			                       "\"compiledRules\":2}"));
			assert_true(json_is_true(json_object_get(az, "hasAllow")));
			assert_true(json_is_false(json_object_get(az, "broken")));
		} else if (!strcmp(str(v, "name"), "broken")) {
			seen_broken = true;
			assert_int_equal(json_array_size(json_object_get(az, "errors")), 1);
			assert_non_null(strstr(text, "10-policies.yaml:"));
			assert_non_null(strstr(text,
			                       "\"name\":\"bad-deny\",\"action\":\"DENY\","
			                       "\"targetRef\":\"Service\",\"compiledRules\":1,"
			                       "\"errors\":[\"" FIXTURE_DIR "/10-policies.yaml:"));
		}
		free(text);
	}
	assert_true(seen_open && seen_svc && seen_broken);
	json_decref(j);
}

/* GET path on loopback:port; the status, the body in body. */
static int http_get(uint16_t port, const char *path, char *body, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	static char req[4096], buf[1 << 16];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), st = -1;
	ssize_t n;
	char *sep;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	             path);
	assert_true(n > 0 && (size_t)n < sizeof(req));
	assert_int_equal(write(fd, req, (size_t)n), n);
	while ((n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = '\0';
	sscanf(buf, "HTTP/1.1 %d", &st);
	sep = strstr(buf, "\r\n\r\n");
	snprintf(body, len, "%s", sep ? sep + 4 : "");
	return st;
}

/* The running control plane answers from its published snapshot, with the
 * query wpctl sends; refusals are 400/404 with {"error"} and counted. */
static void test_admin_endpoint(void **state)
{
	struct wp_cp_config cfg = {
	        .manifest_dir = FIXTURE_DIR,
	        .served = {.class_name = "istio-waypoint"},
	        .n_workers = 1,
	        .debounce_ms = 10,
	};
	struct wp_authz_check_in in = {.from = "cluster.local/ns/a/sa/reader",
	                               .to = "svc.a:80",
	                               .path = "/api/%2E%2E/admin"};
	static char body[1 << 16], path[4096];
	static uint64_t ctr[WP_CTR_MAX];
	struct wp_cp *cp = wp_cp_create(&cfg);
	char *q;
	json_t *j;

	(void)state;
	assert_non_null(cp);
	assert_int_equal(wp_cp_start(cp), 0);
	q = wp_authz_check_query(&in);
	snprintf(path, sizeof(path), "/authz/check?%s", q);
	free(q);
	assert_int_equal(http_get(wp_cp_admin_port(cp), path, body, sizeof(body)), 200);
	j = json_loads(body, 0, NULL);
	assert_non_null(j);
	assert_string_equal(str(j, "view"), "snapshot");
	assert_string_equal(str(json_object_get(j, "request"), "path"), "/admin");
	json_object_del(j, "view");
	expect(j, "DENY", "deny_match", "a/deny-admin", 0, false);
	/* the same request offline: the same answer but for the snapshot */
	in.method = "DELETE";
	in.path = NULL;
	in.from = "cluster.local/ns/ops/sa/x";
	q = wp_authz_check_query(&in);
	snprintf(path, sizeof(path), "/authz/check?%s", q);
	free(q);
	assert_int_equal(http_get(wp_cp_admin_port(cp), path, body, sizeof(body)), 200);
	j = json_loads(body, 0, NULL);
	{
		struct fx *f = *state;
		json_t *off = check(f, in);

		json_object_del(j, "view");
		json_object_del(j, "snapshot_version");
		json_object_del(off, "snapshot_version");
		assert_true(json_equal(j, off));
		json_decref(off);
	}
	expect(j, "ALLOW", "allow_match", "a/allow-reader", 1, true);
	assert_int_equal(
	        http_get(wp_cp_admin_port(cp), "/authz/check?to=svc.a:80", body, sizeof(body)),
	        400);
	assert_non_null(strstr(body, "\"error\": \"--from"));
	assert_int_equal(http_get(wp_cp_admin_port(cp),
	                          "/authz/check?from=cluster.local/ns/a/sa/x&to=nosuch.a:80", body,
	                          sizeof(body)),
	                 404);
	assert_non_null(strstr(body, "captures"));
	assert_int_equal(http_get(wp_cp_admin_port(cp), "/authz/check?bogus=1", body, sizeof(body)),
	                 400);
	/* republished for other threads at the next turn of the loop */
	for (int i = 0; i < 200; i++) {
		wp_cp_counters(cp, ctr);
		if (ctr[WP_CTR_ADMIN_AUTHZ_CHECK_REFUSED] == 3)
			break;
		usleep(10000);
	}
	assert_int_equal(ctr[WP_CTR_ADMIN_AUTHZ_CHECK_REFUSED], 3);
	wp_cp_destroy(cp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_allow_deny_audit),
	        cmocka_unit_test(test_no_policy_and_ignored),
	        cmocka_unit_test(test_no_table),
	        cmocka_unit_test(test_request_fields),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_query_round_trip),
	        cmocka_unit_test(test_config_dump),
	        cmocka_unit_test(test_admin_endpoint),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
