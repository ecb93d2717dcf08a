/*
 * AuthorizationPolicy semantics on a waypoint, case by case, mostly after
 * the examples of Istio's "Authorization Policy" reference and its tasks:
 * parsing (cp/model/authz_parse.c), attachment and compilation
 * (cp/resolve/authz_compile.c) and decisions (lib/authz.c), with paths
 * normalized as the data path will (lib/path_norm.c); and the tables in
 * snapshots (cp/resolve/snap_build.c) and the config dump.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "authz_compile.h"
#include "wp/path_norm.h"
#include "wp/addr.h"
#include "wp/cp_json.h"
#include "wp/model.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

struct fx {
	struct wp_obj *o[16];
	uint32_t n;
	struct wp_authz_compile_in in;
	struct wp_authz_table *t;
	struct wp_authz_scratch sc;
	struct wp_authz_db_cache cache;
};

static int take(void *ctx, struct wp_obj *o)
{
	struct fx *f = ctx;

	assert_true(f->n < 16);
	f->o[f->n++] = o;
	return 0;
}

/* Parses yaml and compiles it for Service a/svc behind waypoint a/wp. */
static void load(struct fx *f, const char *yaml)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(wp_model_parse(yaml, strlen(yaml), "p.yaml", take, NULL, f), 0);
	f->in = (struct wp_authz_compile_in){
	        .gw_ns = "a",
	        .gw_name = "wp",
	        .gw_class = "istio-waypoint",
	        .dest_kind = WP_AUTHZ_DEST_SERVICE,
	        .dest_ns = "a",
	        .dest_name = "svc",
	        .n_policies = f->n,
	        .policies = (const struct wp_obj *const *)f->o,
	        .cache = &f->cache,
	};
	f->t = wp_authz_compile(&f->in);
	assert_non_null(f->t);
	assert_int_equal(wp_authz_scratch_reserve(&f->sc, f->t), 0);
}

static void unload(struct fx *f)
{
	wp_authz_table_free(f->t);
	assert_int_equal(f->cache.n, 0);
	wp_authz_scratch_fini(&f->sc);
	for (uint32_t i = 0; i < f->n; i++)
		wp_obj_free(f->o[i]);
}

struct rq {
	const char *principal, *src, *host, *method, *target, *sni;
	uint16_t port;
	bool tcp;
	const char *hname, *hval; /* one header */
};

static const char *one_hdr(void *ctx, const char *name, uint32_t len, uint32_t *vl)
{
	const struct rq *r = ctx;

	if (!r->hname || strlen(r->hname) != len || memcmp(r->hname, name, len))
		return NULL;
	*vl = (uint32_t)strlen(r->hval);
	return r->hval;
}

static struct wp_authz_decision decide(struct fx *f, struct rq r)
{
	struct wp_authz_req q = {0};
	struct wp_authz_decision d;
	char path[256];
	size_t ol = 0, pl = 0;

	q.principal = r.principal ? r.principal : "cluster.local/ns/a/sa/client";
	q.principal_len = (uint32_t)strlen(q.principal);
	assert_int_equal(wp_addr_parse(r.src ? r.src : "10.0.0.1", &q.src_ip), 0);
	q.remote_ip = q.src_ip;
	assert_int_equal(wp_addr_parse("10.96.0.10", &q.dst_ip), 0);
	q.dst_port = r.port ? r.port : 80;
	q.is_http = !r.tcp;
	q.host = r.host ? r.host : "svc.a.svc.cluster.local";
	q.host_len = (uint32_t)strlen(q.host);
	q.method = r.method ? r.method : "GET";
	q.method_len = (uint32_t)strlen(q.method);
	assert_int_equal(wp_path_norm(r.target ? r.target : "/", strlen(r.target ? r.target : "/"),
	                              path, sizeof(path), &ol, &pl),
	                 0);
	q.path = path;
	q.path_len = (uint32_t)pl;
	if (r.sni) {
		q.sni = r.sni;
		q.sni_len = (uint32_t)strlen(r.sni);
	}
	q.header = one_hdr;
	q.header_ctx = &r;
	wp_authz_eval(f->t, &f->sc, &q, &d);
	return d;
}

#define HDR(ns, name, action, refs)                                                                \
	"---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: " name \
	", namespace: " ns "}\nspec:\n  action: " action "\n  targetRefs: [" refs "]\n"
#define TO_SVC "{kind: Service, group: \"\", name: svc}"
#define TO_GW  "{kind: Gateway, group: gateway.networking.k8s.io, name: wp}"

static void test_principals_and_namespaces(void **state)
{
	struct fx f;

	(void)state;
	load(&f, HDR("a", "viewer", "ALLOW", TO_SVC) "  rules:\n"
	                                             "  - from:\n"
	                                             "    - source:\n"
	                                             "        principals: "
	                                             "[\"cluster.local/ns/a/sa/sleep\"]\n"
	                                             "    - source:\n"
	                                             "        namespaces: [\"prod-*\"]\n");
	assert_true(decide(&f, (struct rq){.principal = "cluster.local/ns/a/sa/sleep"}).allowed);
	assert_true(decide(&f, (struct rq){.principal = "cluster.local/ns/prod-eu/sa/x"}).allowed);
	{
		struct wp_authz_decision d =
		        decide(&f, (struct rq){.principal = "cluster.local/ns/a/sa/other"});

		assert_false(d.allowed);
		assert_int_equal(d.reason, WP_AUTHZ_R_NO_ALLOW_MATCH);
	}
	/* principals are written without spiffe:// and compared whole */
	assert_false(decide(&f, (struct rq){.principal = "cluster.local/ns/a/sa/sleeper"}).allowed);
	unload(&f);
}

static void test_trust_domain_aliases(void **state)
{
	static const char *const aliases[] = {"old-td"};
	struct fx f;

	(void)state;
	load(&f, HDR("a", "td", "ALLOW", TO_SVC) "  rules: [{from: [{source: {principals: "
	                                         "[\"cluster.local/ns/a/sa/x\"]}}]}]\n");
	wp_authz_table_free(f.t);
	f.in.trust_domain = "new-td";
	f.in.aliases = aliases;
	f.in.n_aliases = 1;
	f.t = wp_authz_compile(&f.in);
	assert_non_null(f.t);
	assert_int_equal(wp_authz_scratch_reserve(&f.sc, f.t), 0);
	/* "cluster.local" stands for the local trust domain and its aliases */
	assert_true(decide(&f, (struct rq){.principal = "new-td/ns/a/sa/x"}).allowed);
	assert_true(decide(&f, (struct rq){.principal = "old-td/ns/a/sa/x"}).allowed);
	assert_false(decide(&f, (struct rq){.principal = "cluster.local/ns/a/sa/x"}).allowed);
	unload(&f);
}

static void test_service_accounts(void **state)
{
	struct fx f;

	(void)state;
	load(&f, HDR("a", "sa", "ALLOW", TO_SVC) "  rules: [{from: [{source: {serviceAccounts: "
	                                         "[\"client\", \"b/robot\"]}}]}]\n");
	assert_true(decide(&f, (struct rq){.principal = "cluster.local/ns/a/sa/client"}).allowed);
	assert_true(decide(&f, (struct rq){.principal = "td/ns/b/sa/robot"}).allowed);
	assert_false(decide(&f, (struct rq){.principal = "td/ns/b/sa/client"}).allowed);
	assert_false(decide(&f, (struct rq){.principal = "td/ns/a/sa/client-x"}).allowed);
	unload(&f);
}

static void test_paths_normalized(void **state)
{
	struct fx f;

	(void)state;
	load(&f, HDR("a", "no-admin", "DENY", TO_GW) "  rules: [{to: [{operation: {paths: "
	                                             "[\"/admin\", \"/admin/*\"]}}]}]\n");
	assert_false(decide(&f, (struct rq){.target = "/admin"}).allowed);
	assert_false(decide(&f, (struct rq){.target = "/public/%2e%2e/admin"}).allowed);
	assert_false(decide(&f, (struct rq){.target = "/public/..\\admin/x"}).allowed);
	assert_false(decide(&f, (struct rq){.target = "/%61dmin/x?y=1"}).allowed);
	assert_true(decide(&f, (struct rq){.target = "/public/admin"}).allowed);
	/* BASE keeps "//" and %2F: Istio's documented gap, same here */
	assert_true(decide(&f, (struct rq){.target = "//admin"}).allowed);
	assert_true(decide(&f, (struct rq){.target = "/admin%2Fx"}).allowed);
	{
		struct wp_authz_decision d = decide(&f, (struct rq){.target = "/admin"});

		assert_int_equal(d.reason, WP_AUTHZ_R_DENY_MATCH);
		assert_string_equal(d.name, "no-admin");
		assert_int_equal(d.rule, 0);
	}
	unload(&f);
}

static void test_hosts_ports_methods(void **state)
{
	struct fx f;

	(void)state;
	load(&f, HDR("a", "ops", "ALLOW", TO_SVC) "  rules:\n"
	                                          "  - to:\n"
	                                          "    - operation:\n"
	                                          "        hosts: [\"example.com\", "
	                                          "\"*.example.com:8080\"]\n"
	                                          "        methods: [\"GET\", \"HEAD\"]\n"
	                                          "        notPorts: [\"9090\"]\n");
	assert_true(decide(&f, (struct rq){.host = "EXAMPLE.com"}).allowed);
	assert_true(decide(&f, (struct rq){.host = "api.Example.COM:8080"}).allowed);
	/* hosts match with or without the port the client sent */
	assert_true(decide(&f, (struct rq){.host = "example.com:80"}).allowed);
	assert_false(decide(&f, (struct rq){.host = "example.com.evil:80"}).allowed);
	/* a value with a port needs that port */
	assert_false(decide(&f, (struct rq){.host = "api.example.com"}).allowed);
	assert_false(decide(&f, (struct rq){.host = "api.example.com:8081"}).allowed);
	assert_false(decide(&f, (struct rq){.host = "example.com", .method = "POST"}).allowed);
	/* methods are case-sensitive */
	assert_false(decide(&f, (struct rq){.host = "example.com", .method = "get"}).allowed);
	assert_false(decide(&f, (struct rq){.host = "example.com", .port = 9090}).allowed);
	unload(&f);
}

static void test_when_headers_and_sni(void **state)
{
	struct fx f;

	(void)state;
	load(&f, HDR("a", "hdr", "ALLOW", TO_SVC) "  rules:\n"
	                                          "  - when:\n"
	                                          "    - key: request.headers[X-Version]\n"
	                                          "      values: [\"v1*\"]\n"
	                                          "      notValues: [\"v1-beta\"]\n"
	                                          "    - key: connection.sni\n"
	                                          "      notValues: [\"*.internal\"]\n");
	assert_true(decide(&f, (struct rq){.hname = "x-version", .hval = "v1.2"}).allowed);
	assert_false(decide(&f, (struct rq){.hname = "x-version", .hval = "v1-beta"}).allowed);
	assert_false(decide(&f, (struct rq){.hname = "x-version", .hval = "v2"}).allowed);
	assert_false(decide(&f, (struct rq){0}).allowed);
	assert_false(
	        decide(&f, (struct rq){.hname = "x-version", .hval = "v1", .sni = "db.internal"})
	                .allowed);
	unload(&f);
}

static void test_allow_deny_audit(void **state)
{
	struct fx f;
	struct wp_authz_decision d;

	(void)state;
	load(&f, HDR("a", "allow-get", "ALLOW",
	             TO_SVC) "  rules: [{to: [{operation: {methods: "
	                     "[\"GET\", \"POST\"]}}]}]\n" HDR(
	                             "a", "deny-post", "DENY",
	                             TO_GW) "  rules: [{to: [{operation: {methods: "
	                                    "[\"POST\"]}}]}]\n" HDR("a", "audit-all", "AUDIT",
	                                                            TO_SVC) "  rules: [{to: "
	                                                                    "[{operation: {paths: "
	                                                                    "[\"/*\"]}}]}]\n");
	d = decide(&f, (struct rq){.target = "/x"});
	assert_true(d.allowed);
	assert_true(d.audited);
	assert_int_equal(d.reason, WP_AUTHZ_R_ALLOW_MATCH);
	assert_string_equal(d.name, "allow-get");
	d = decide(&f, (struct rq){.method = "POST", .target = "/x"});
	assert_false(d.allowed);
	assert_true(d.audited); /* AUDIT never changes the decision */
	assert_string_equal(d.name, "deny-post");
	d = decide(&f, (struct rq){.method = "PUT"});
	assert_false(d.allowed);
	assert_int_equal(d.reason, WP_AUTHZ_R_NO_ALLOW_MATCH);
	unload(&f);
}

static void test_empty_rules(void **state)
{
	struct fx f;

	(void)state;
	/* ALLOW with no rules matches nothing: allow-nothing */
	load(&f, HDR("a", "allow-nothing", "ALLOW", TO_SVC));
	assert_false(decide(&f, (struct rq){0}).allowed);
	unload(&f);
	/* rules: [{}] matches everything */
	load(&f, HDR("a", "allow-all", "ALLOW", TO_SVC) "  rules: [{}]\n" HDR("a", "deny-nothing",
	                                                                      "DENY", TO_SVC));
	assert_true(decide(&f, (struct rq){0}).allowed);
	assert_true(decide(&f, (struct rq){.tcp = true}).allowed);
	unload(&f);
}

static void test_ignored_policies(void **state)
{
	struct fx f;

	(void)state;
	load(&f, "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	         "metadata: {name: sel, namespace: a}\n"
	         "spec: {action: DENY, selector: {matchLabels: {app: svc}}, rules: [{}]}\n"
	         "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	         "metadata: {name: nsw, namespace: a}\nspec: {action: DENY, rules: [{}]}\n"
	         "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	         "metadata: {name: dry, namespace: a, annotations: {istio.io/dry-run: \"true\"}}\n"
	         "spec: {action: DENY, targetRefs: [" TO_SVC "], rules: [{}]}\n"
	         "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	         "metadata: {name: cls, namespace: a}\n"
	         "spec: {action: DENY, targetRefs: [{kind: GatewayClass, group: "
	         "gateway.networking.k8s.io, name: istio-waypoint}], rules: [{}]}\n");
	assert_true(decide(&f, (struct rq){0}).allowed);
	assert_int_equal(f.t->n_policies, 0);
	assert_int_equal(f.t->n_ignored, 4);
	assert_string_equal(f.t->ignored[0].name, "cls");
	assert_non_null(strstr(f.t->ignored[0].why, "root namespace"));
	assert_string_equal(f.t->ignored[1].name, "dry");
	assert_non_null(strstr(f.t->ignored[2].why, "ztunnel"));
	assert_string_equal(f.t->ignored[3].name, "sel");
	assert_non_null(strstr(f.t->ignored[3].why, "selector"));
	unload(&f);
	/* the same GatewayClass policy in the root namespace applies */
	load(&f, "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	         "metadata: {name: cls, namespace: istio-system}\n"
	         "spec: {action: DENY, targetRefs: [{kind: GatewayClass, group: "
	         "gateway.networking.k8s.io, name: istio-waypoint}], rules: [{}]}\n");
	assert_false(decide(&f, (struct rq){0}).allowed);
	assert_string_equal(f.t->policies[0].attach, "GatewayClass");
	unload(&f);
}

static void test_custom_fails_closed(void **state)
{
	struct fx f;
	struct wp_authz_decision d;

	(void)state;
	load(&f, HDR("a", "ext", "CUSTOM", TO_SVC) "  provider: {name: opa}\n"
	                                           "  rules: [{to: [{operation: {paths: "
	                                           "[\"/secure/*\"]}}]}]\n");
	d = decide(&f, (struct rq){.target = "/secure/x"});
	assert_false(d.allowed);
	assert_int_equal(d.reason, WP_AUTHZ_R_CUSTOM);
	assert_string_equal(wp_authz_reason_name(d.reason), "custom_no_provider");
	assert_true(decide(&f, (struct rq){.target = "/public"}).allowed);
	/* on TCP the HTTP-only path is dropped: all TCP traffic is denied */
	assert_false(decide(&f, (struct rq){.tcp = true}).allowed);
	unload(&f);
}

static void test_tcp_rules(void **state)
{
	struct fx f;

	(void)state;
	/* an ALLOW rule with HTTP fields never matches TCP; the TCP-only rule does */
	load(&f, HDR("a", "allow", "ALLOW", TO_SVC) "  rules:\n"
	                                            "  - to: [{operation: {methods: [\"GET\"]}}]\n"
	                                            "  - to: [{operation: {ports: [\"5432\"]}}]\n");
	assert_true(decide(&f, (struct rq){0}).allowed);
	assert_false(decide(&f, (struct rq){.tcp = true, .port = 80}).allowed);
	assert_true(decide(&f, (struct rq){.tcp = true, .port = 5432}).allowed);
	unload(&f);
	/* a DENY rule drops its HTTP fields on TCP and applies with the rest */
	load(&f, HDR("a", "deny", "DENY", TO_SVC) "  rules:\n"
	                                          "  - from: [{source: {namespaces: [\"b\"]}}]\n"
	                                          "    to: [{operation: {paths: [\"/x\"]}}]\n");
	assert_true(decide(&f, (struct rq){.principal = "td/ns/b/sa/c", .target = "/y"}).allowed);
	assert_false(decide(&f, (struct rq){.principal = "td/ns/b/sa/c", .target = "/x"}).allowed);
	assert_false(decide(&f, (struct rq){.principal = "td/ns/b/sa/c", .tcp = true}).allowed);
	assert_true(decide(&f, (struct rq){.principal = "td/ns/a/sa/c", .tcp = true}).allowed);
	unload(&f);
}

static void test_jwt_fields(void **state)
{
	struct fx f;

	(void)state;
	/* Istio's "require a JWT" DENY: without RequestAuthentication no request
	 * carries a validated JWT, so every HTTP request is denied... */
	load(&f, HDR("a", "require-jwt", "DENY", TO_SVC) "  rules: [{from: [{source: "
	                                                 "{notRequestPrincipals: [\"*\"]}}]}]\n");
	assert_false(decide(&f, (struct rq){0}).allowed);
	assert_false(decide(&f, (struct rq){.tcp = true}).allowed); /* field dropped on TCP */
	unload(&f);
	/* ...and an ALLOW on requestPrincipals matches nothing */
	load(&f, HDR("a", "jwt", "ALLOW", TO_SVC) "  rules: [{from: [{source: "
	                                          "{requestPrincipals: [\"*\"]}}]}]\n");
	assert_false(decide(&f, (struct rq){0}).allowed);
	unload(&f);
}

static void test_invalid_fails_closed(void **state)
{
	struct fx f;
	struct wp_authz_decision d;

	(void)state;
	load(&f,
	     HDR("a", "bad-deny", "DENY", TO_SVC) "  rules:\n"
	                                          "  - from: [{source: {namespaces: [\"b\"]}}]\n"
	                                          "  - from:\n"
	                                          "    - source:\n"
	                                          "        ipBlocks: [\"10.0.0.0/33\"]\n");
	assert_int_equal(f.t->n_errors, 1);
	assert_string_equal(f.t->errors[0],
	                    "p.yaml:12: AuthorizationPolicy a/bad-deny: "
	                    "spec.rules[1].from[0].source.ipBlocks[0]: expected an IP address or "
	                    "CIDR, got \"10.0.0.0/33\"");
	d = decide(&f, (struct rq){0});
	assert_false(d.allowed);
	assert_int_equal(d.reason, WP_AUTHZ_R_DENY_INVALID);
	assert_int_equal(d.rule, 1);
	assert_false(decide(&f, (struct rq){.tcp = true}).allowed);
	unload(&f);
	/* an ALLOW rule that cannot be read matches nothing; the others work */
	load(&f,
	     HDR("a", "bad-allow", "ALLOW", TO_SVC) "  rules:\n"
	                                            "  - when: [{key: request.nope, values: "
	                                            "[\"1\"]}]\n"
	                                            "  - to: [{operation: {paths: [\"/ok\"]}}]\n");
	assert_int_equal(f.t->n_errors, 1);
	assert_non_null(strstr(f.t->errors[0], "p.yaml:9: AuthorizationPolicy a/bad-allow: "
	                                       "spec.rules[0].when[0].key: unknown attribute"));
	assert_false(decide(&f, (struct rq){.target = "/x"}).allowed);
	d = decide(&f, (struct rq){.target = "/ok"});
	assert_true(d.allowed);
	assert_int_equal(d.rule, 1);
	unload(&f);
}

static void test_databases_shared(void **state)
{
	struct fx f;
	struct wp_authz_table *t2;

	(void)state;
	load(&f, HDR("a", "p", "ALLOW", TO_GW) "  rules: [{to: [{operation: {paths: "
	                                       "[\"/a\", \"/b*\"]}}]}]\n");
	assert_int_equal(f.cache.n, 1);
	f.in.dest_name = "other"; /* another target behind the same waypoint */
	t2 = wp_authz_compile(&f.in);
	assert_non_null(t2);
	assert_int_equal(f.cache.n, 1);
	assert_ptr_equal(t2->sfields[0].db, f.t->sfields[0].db);
	wp_authz_table_free(t2);
	assert_int_equal(f.cache.n, 1);
	unload(&f);
}

/* The snapshot carries each captured Service's table, rebuilt when a policy
 * changes, and the config dump lists applied and ignored policies. */
static void test_snapshot_tables(void **state)
{
	static const char base[] =
	        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n  labels:\n"
	        "    istio.io/use-waypoint: wp\n"
	        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n"
	        "  name: wp\n  namespace: a\nspec:\n  gatewayClassName: istio-waypoint\n"
	        "  listeners:\n  - {name: mesh, port: 15008, protocol: HBONE}\n"
	        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n  namespace: a\n"
	        "spec:\n  clusterIP: 198.19.0.10\n  ports: [{name: http, port: 80}]\n"
	        "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	        "metadata: {name: sel, namespace: a}\n"
	        "spec: {selector: {matchLabels: {app: svc}}, rules: [{}]}\n";
	static const char deny[] = HDR("a", "no-admin", "DENY", TO_SVC) "  rules: [{to: "
	                                                                "[{operation: {paths: "
	                                                                "[\"/admin\"]}}]}]\n";
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct wp_resolver *r = wp_resolver_create(&served);
	static const char gwdeny[] = HDR("a", "gw-deny", "DENY", TO_GW) "  rules: [{to: "
	                                                                "[{operation: {paths: "
	                                                                "[\"/x\"]}}]}]\n";
	struct wp_snapshot *s1, *s2, *s3;
	struct wp_sockaddr sa;
	const struct wp_snap_dest *d;
	const struct wp_authz_table *t;
	json_t *j;
	char *text;

	(void)state;
	assert_non_null(r);
	assert_true(wp_source_deliver_text(wp_resolver_sink(r), "t.yaml", base, strlen(base)) > 0);
	assert_true(wp_source_deliver_text(wp_resolver_sink(r), "p.yaml", deny, strlen(deny)) > 0);
	s1 = wp_resolver_build(r);
	assert_non_null(s1);
	assert_int_equal(wp_sockaddr_parse("198.19.0.10:80", &sa), 0);
	d = wp_snapshot_lookup(s1, &sa);
	assert_non_null(d);
	t = d->svc->authz;
	assert_non_null(t);
	assert_int_equal(t->n_policies, 1);
	assert_string_equal(t->policies[0].name, "no-admin");
	assert_string_equal(t->policies[0].attach, "Service");
	assert_int_equal(t->n_ignored, 1);
	assert_string_equal(t->ignored[0].name, "sel");
	/* the waypoint's own table (CONNECTs to a workload) does not hold a
	 * Service's policy */
	assert_int_equal(s1->n_gateways, 1);
	assert_non_null(s1->gateways[0].authz);
	assert_int_equal(s1->gateways[0].authz->n_policies, 0);
	j = wp_snapshot_json(s1);
	text = json_dumps(j, JSON_COMPACT);
	assert_non_null(strstr(text, "\"authorization\":{\"enforced\":true,\"policies\":[{"
	                             "\"namespace\":\"a\",\"name\":\"no-admin\",\"action\":"
	                             "\"DENY\",\"targetRef\":\"Service\",\"compiledRules\":1}]"));
	assert_non_null(strstr(text, "\"why\":\"spec.selector: selector policies apply"));
	free(text);
	json_decref(j);
	/* the policy goes: the table is rebuilt without it (the old snapshot
	 * keeps its own, self-contained) */
	assert_int_equal(wp_resolver_remove(r, WP_KIND_AUTHORIZATIONPOLICY, "a", "no-admin"), 0);
	s2 = wp_resolver_build(r);
	assert_non_null(s2);
	d = wp_snapshot_lookup(s2, &sa);
	assert_non_null(d);
	assert_int_equal(d->svc->authz->n_policies, 0);
	assert_string_equal(t->policies[0].name, "no-admin");
	/* a policy on the Gateway: in the waypoint's table and the Service's */
	assert_true(wp_source_deliver_text(wp_resolver_sink(r), "g.yaml", gwdeny, strlen(gwdeny)) >
	            0);
	s3 = wp_resolver_build(r);
	assert_non_null(s3);
	assert_int_equal(s3->gateways[0].authz->n_policies, 1);
	assert_string_equal(s3->gateways[0].authz->policies[0].attach, "Gateway");
	d = wp_snapshot_lookup(s3, &sa);
	assert_int_equal(d->svc->authz->n_policies, 1);
	wp_snapshot_free(s3);
	wp_snapshot_free(s1);
	wp_snapshot_free(s2);
	wp_resolver_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_principals_and_namespaces),
	        cmocka_unit_test(test_trust_domain_aliases),
	        cmocka_unit_test(test_service_accounts),
	        cmocka_unit_test(test_paths_normalized),
	        cmocka_unit_test(test_hosts_ports_methods),
	        cmocka_unit_test(test_when_headers_and_sni),
	        cmocka_unit_test(test_allow_deny_audit),
	        cmocka_unit_test(test_empty_rules),
	        cmocka_unit_test(test_ignored_policies),
	        cmocka_unit_test(test_custom_fails_closed),
	        cmocka_unit_test(test_tcp_rules),
	        cmocka_unit_test(test_jwt_fields),
	        cmocka_unit_test(test_invalid_fails_closed),
	        cmocka_unit_test(test_databases_shared),
	        cmocka_unit_test(test_snapshot_tables),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
