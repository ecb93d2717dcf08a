/*
 * The compiled authorization engine (cp/resolve/authz_compile.c +
 * lib/authz.c) against the reference evaluator (authz_ref.c) on random
 * (policy set, request) pairs: every field and its negation, every value
 * form (exact, prefix*, *suffix, *), every when key, every action, every
 * target kind, selector / dry-run / misplaced policies, invalid policies,
 * trust-domain aliases, HTTP and opaque TCP requests. Policies are written
 * as YAML and go through the model parser, as they would from a manifest.
 * Any disagreement fails with the seed, the policy set and the request.
 *
 *   WP_AUTHZ_SEED=<n> WP_AUTHZ_SETS=<n> build/tests/unit/dp/l7/test_authz
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "authz_ref.h"
#include "wp/addr.h"
#include "wp/model.h"

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

#define PICK(a) (a)[rnd(sizeof(a) / sizeof((a)[0]))]

/* Value pools shared by policies and requests, so that rules hit. */
static const char *const principals[] = {
        "cluster.local/ns/a/sa/x",
        "cluster.local/ns/a/sa/y",
        "cluster.local/ns/foo/sa/default",
        "td2/ns/a/sa/x",
        "other.org/ns/b/sa/x",
        "cluster.local/ns/b/sa/ns",
        "cluster.local/ns/sa/sa/x",
        "cluster.local/ns/a/x/sa/x/y",
};
static const char *const principal_vals[] = {
        "cluster.local/ns/a/sa/x",
        "cluster.local/ns/a/*",
        "*/sa/x",
        "*",
        "td2/ns/a/sa/x",
        "other.org/ns/b/sa/x",
        "*/ns/b/sa/x",
        "cluster.local/*",
        "*local/ns/a/sa/y",
        "td*/ns/a/sa/x",
        "*x",
        "cluster.local/ns/foo/sa/default",
};
static const char *const ns_vals[] = {"a", "b", "foo", "f*", "*o", "*", "sa", "*a"};
static const char *const sa_vals[] = {"x", "a/x", "foo/default", "y", "b/ns", "sa/x", "a/y"};
static const char *const cidr_vals[] = {
        "10.0.0.0/8",    "10.1.0.0/16", "10.1.2.3",  "192.168.0.0/24", "10.1.2.0/24",
        "2001:db8::/32", "2001:db8::1", "0.0.0.0/0", "10.1.2.3/31",    "::/0",
};
static const char *const ips[] = {
        "10.1.2.3",    "10.1.9.9",    "10.200.0.1", "192.168.0.7",
        "2001:db8::1", "2001:db9::5", "8.8.8.8",    "10.1.2.2",
};
static const char *const host_vals[] = {"example.com", "*.example.com", "EXAMPLE.com:8080", "api.*",
                                        "*",           "*:8080"};
static const char *const hosts[] = {"example.com", "a.example.com", "Example.COM:8080",
                                    "api.foo",     "x.EXAMPLE.com", "other"};
static const char *const port_vals[] = {"80", "8080", "443", "9080"};
static const uint16_t ports[] = {80, 8080, 443, 9080, 1234};
static const char *const method_vals[] = {"GET", "POST", "PU*", "*T", "*", "get"};
static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "get"};
static const char *const path_vals[] = {"/",         "/admin", "/admin/*", "*/info",
                                        "/api/v1/*", "*",      "/info"};
static const char *const paths[] = {"/",         "/admin", "/admin/x", "/x/info",
                                    "/api/v1/y", "/info",  "/ADMIN"};
static const char *const hdr_names[] = {"x-a", "x-b", "X-A"};
static const char *const hdr_vals[] = {"1", "2*", "*z", "*", "abz"};
static const char *const hdrs[] = {"1", "2", "21", "abz", "", "z"};
static const char *const sni_vals[] = {"a.com", "*.com", "b.*", "*"};
static const char *const snis[] = {"a.com", "b.com", "b.org", ""};
static const char *const jwt_keys[] = {"request.auth.principal", "request.auth.audiences",
                                       "request.auth.presenter", "request.auth.claims[iss]",
                                       "request.auth.claims[groups][x]"};

struct buf {
	char *p;
	size_t n, cap;
};

static void out(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void out(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if ((size_t)n < b->cap - b->n)
			break;
		b->cap = b->cap * 2 + (size_t)n;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	b->n += (size_t)n;
}

static void list(struct buf *b, const char *key, const char *const *pool, size_t np)
{
	uint32_t n = 1 + rnd(3);

	out(b, "%s: [", key);
	for (uint32_t i = 0; i < n; i++)
		out(b, "%s\"%s\"", i ? ", " : "", pool[rnd((uint32_t)np)]);
	out(b, "]");
}

#define LIST(b, key, pool) list(b, key, pool, sizeof(pool) / sizeof((pool)[0]))

/* One source or operation field (sometimes negated, sometimes both). */
static void field(struct buf *b, const char *pos, const char *neg, const char *const *pool,
                  size_t np)
{
	uint32_t w = rnd(4); /* 0, 3: values; 1: notValues; 2: both */

	if (w != 1)
		list(b, pos, pool, np);
	if (w == 2)
		out(b, ", ");
	if (w == 1 || w == 2)
		list(b, neg, pool, np);
}

#define FIELD(b, p, n, pool) field(b, p, n, pool, sizeof(pool) / sizeof((pool)[0]))

static void source(struct buf *b)
{
	uint32_t n = rnd(3), k = 0;

	out(b, "{source: {");
	for (uint32_t i = 0; i < n; i++) {
		if (k++)
			out(b, ", ");
		switch (rnd(6)) {
		case 0:
			FIELD(b, "principals", "notPrincipals", principal_vals);
			break;
		case 1:
			FIELD(b, "namespaces", "notNamespaces", ns_vals);
			break;
		case 2:
			FIELD(b, "serviceAccounts", "notServiceAccounts", sa_vals);
			break;
		case 3:
			FIELD(b, "ipBlocks", "notIpBlocks", cidr_vals);
			break;
		case 4:
			FIELD(b, "remoteIpBlocks", "notRemoteIpBlocks", cidr_vals);
			break;
		default:
			FIELD(b, "requestPrincipals", "notRequestPrincipals", principal_vals);
			break;
		}
	}
	out(b, "}}");
}

static void operation(struct buf *b)
{
	uint32_t n = rnd(3);

	out(b, "{operation: {");
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			out(b, ", ");
		switch (rnd(4)) {
		case 0:
			FIELD(b, "hosts", "notHosts", host_vals);
			break;
		case 1:
			FIELD(b, "ports", "notPorts", port_vals);
			break;
		case 2:
			FIELD(b, "methods", "notMethods", method_vals);
			break;
		default:
			FIELD(b, "paths", "notPaths", path_vals);
			break;
		}
	}
	out(b, "}}");
}

static void when(struct buf *b)
{
	const char *key;
	const char *const *pool;
	size_t np;

	switch (rnd(11)) {
	case 0:
		key = "source.ip", pool = cidr_vals, np = 10;
		break;
	case 1:
		key = "remote.ip", pool = cidr_vals, np = 10;
		break;
	case 2:
		key = "destination.ip", pool = cidr_vals, np = 10;
		break;
	case 3:
		key = "source.namespace", pool = ns_vals, np = 8;
		break;
	case 4:
		key = "source.principal", pool = principal_vals, np = 12;
		break;
	case 5:
		key = "source.serviceAccount", pool = sa_vals, np = 7;
		break;
	case 6:
		key = "destination.port", pool = port_vals, np = 4;
		break;
	case 7:
		key = "connection.sni", pool = sni_vals, np = 4;
		break;
	case 8:
		key = PICK(jwt_keys), pool = principal_vals, np = 12;
		break;
	default: {
		static char hk[64];

		snprintf(hk, sizeof(hk), "request.headers[%s]", PICK(hdr_names));
		key = hk, pool = hdr_vals, np = 5;
		break;
	}
	}
	out(b, "{key: \"%s\", ", key);
	field(b, "values", "notValues", pool, np);
	out(b, "}");
}

static void bad_rule(struct buf *b)
{
	switch (rnd(5)) {
	case 0:
		out(b, "{from: [{source: {ipBlocks: [\"10.0.0.0/99\"]}}]}");
		break;
	case 1:
		out(b, "{to: [{operation: {paths: [\"/a*b\"]}}]}");
		break;
	case 2:
		out(b, "{when: [{key: \"request.nope\", values: [\"1\"]}]}");
		break;
	case 3:
		out(b, "{to: [{operation: {ports: [\"http\"]}}]}");
		break;
	default:
		out(b, "{from: [{source: {principal: [\"x\"]}}]}");
		break;
	}
}

static void rule(struct buf *b)
{
	uint32_t parts = rnd(8), k = 0;

	if (!rnd(40)) {
		bad_rule(b);
		return;
	}
	out(b, "{");
	if (parts & 1) {
		uint32_t n = 1 + rnd(2);

		out(b, "from: [");
		for (uint32_t i = 0; i < n; i++) {
			if (i)
				out(b, ", ");
			source(b);
		}
		out(b, "]");
		k++;
	}
	if (parts & 2) {
		uint32_t n = 1 + rnd(2);

		out(b, "%sto: [", k++ ? ", " : "");
		for (uint32_t i = 0; i < n; i++) {
			if (i)
				out(b, ", ");
			operation(b);
		}
		out(b, "]");
	}
	if (parts & 4) {
		uint32_t n = 1 + rnd(2);

		out(b, "%swhen: [", k++ ? ", " : "");
		for (uint32_t i = 0; i < n; i++) {
			if (i)
				out(b, ", ");
			when(b);
		}
		out(b, "]");
	}
	out(b, "}");
}

static const char *const actions[] = {"ALLOW", "ALLOW", "DENY", "DENY", "AUDIT", "CUSTOM"};
static const char *const namespaces[] = {"a", "b", "istio-system"};

static void policy(struct buf *b, uint32_t idx)
{
	uint32_t t = rnd(12), nr = rnd(4);
	const char *ns = PICK(namespaces);

	out(b,
	    "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
	    "metadata: {name: p%u, namespace: %s%s}\nspec:\n",
	    idx, ns, !rnd(30) ? ", annotations: {istio.io/dry-run: \"true\"}" : "");
	out(b, "  action: %s\n", PICK(actions));
	switch (t) {
	case 0:
		out(b, "  selector: {matchLabels: {app: x}}\n");
		break;
	case 1:
		break; /* neither: namespace-wide (ztunnel) */
	case 2:
		out(b, "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: "
		       "wp2}]\n");
		break;
	case 3:
		out(b, "  targetRefs: [{kind: GatewayClass, group: gateway.networking.k8s.io, "
		       "name: istio-waypoint}]\n");
		break;
	case 4:
		out(b, "  targetRefs: [{kind: ServiceEntry, group: networking.istio.io, name: "
		       "se}]\n");
		break;
	case 5:
		out(b, "  targetRefs: [{kind: Service, group: \"\", name: other}, {kind: "
		       "Service, group: \"\", name: svc}]\n");
		break;
	case 6:
	case 7:
		out(b, "  targetRefs: [{kind: Service, group: \"\", name: svc}]\n");
		break;
	default:
		out(b, "  targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: "
		       "wp}]\n");
		break;
	}
	if (!rnd(60)) {
		out(b, "  bogus: 1\n");
	}
	if (nr == 3 && rnd(2)) {
		out(b, "  rules: [{}]\n");
		return;
	}
	out(b, "  rules: [");
	for (uint32_t i = 0; i < nr; i++) {
		if (i)
			out(b, ", ");
		rule(b);
	}
	out(b, "]\n");
}

struct objs {
	const struct wp_obj *o[64];
	uint32_t n;
};

static int take(void *ctx, struct wp_obj *o)
{
	struct objs *s = ctx;

	assert_true(s->n < 64);
	s->o[s->n++] = o;
	return 0;
}

static void parse_err(void *ctx, const struct wp_model_error *e)
{
	(void)ctx;
	fprintf(stderr, "%s\n", e->msg);
}

struct hdrset {
	const char *a, *b; /* x-a, x-b values or NULL */
};

static const char *hdr_cb(void *ctx, const char *name, uint32_t len, uint32_t *vl)
{
	const struct hdrset *h = ctx;
	const char *v = NULL;

	if (len == 3 && !memcmp(name, "x-a", 3))
		v = h->a;
	else if (len == 3 && !memcmp(name, "x-b", 3))
		v = h->b;
	if (v)
		*vl = (uint32_t)strlen(v);
	return v;
}

static void random_req(struct wp_authz_req *q, struct hdrset *h)
{
	memset(q, 0, sizeof(*q));
	if (rnd(8)) {
		q->principal = PICK(principals);
		q->principal_len = (uint32_t)strlen(q->principal);
	}
	assert_int_equal(wp_addr_parse(PICK(ips), &q->src_ip), 0);
	assert_int_equal(wp_addr_parse(PICK(ips), &q->remote_ip), 0);
	assert_int_equal(wp_addr_parse(PICK(ips), &q->dst_ip), 0);
	q->dst_port = PICK(ports);
	q->is_http = rnd(4) != 0;
	if (rnd(8)) {
		q->host = PICK(hosts);
		q->host_len = (uint32_t)strlen(q->host);
	}
	q->method = PICK(methods);
	q->method_len = (uint32_t)strlen(q->method);
	q->path = PICK(paths);
	q->path_len = (uint32_t)strlen(q->path);
	if (rnd(2)) {
		q->sni = PICK(snis);
		q->sni_len = (uint32_t)strlen(q->sni);
	}
	h->a = rnd(3) ? PICK(hdrs) : NULL;
	h->b = rnd(3) ? PICK(hdrs) : NULL;
	q->header = hdr_cb;
	q->header_ctx = h;
}

static bool same(const struct wp_authz_decision *x, const struct wp_authz_decision *y)
{
	return x->allowed == y->allowed && x->audited == y->audited && x->reason == y->reason &&
	       x->rule == y->rule && !!x->ns == !!y->ns && (!x->ns || !strcmp(x->ns, y->ns)) &&
	       (!x->name || !strcmp(x->name, y->name));
}

static void show(const char *who, const struct wp_authz_decision *d)
{
	fprintf(stderr, "%s: allowed=%d audited=%d reason=%s policy=%s/%s rule=%d\n", who,
	        d->allowed, d->audited, wp_authz_reason_name(d->reason), d->ns ? d->ns : "-",
	        d->name ? d->name : "-", d->rule);
}

static void test_differential(void **state)
{
	const char *env = getenv("WP_AUTHZ_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	uint32_t sets = getenv("WP_AUTHZ_SETS") ? (uint32_t)atoi(getenv("WP_AUTHZ_SETS")) : 1000;
	uint32_t per_set = 100, pairs = 0, allowed = 0, audited = 0;
	uint32_t reasons[8] = {0};
	struct wp_authz_db_cache cache = {0};
	struct wp_authz_scratch sc = {0};
	static const char *const alias1[] = {"td2"};

	(void)state;
	rng = seed * 0x9e3779b97f4a7c15ULL | 1;
	for (uint32_t s = 0; s < sets; s++) {
		struct buf b = {malloc(4096), 0, 4096};
		struct objs os = {.n = 0};
		uint32_t np = 1 + rnd(6);
		struct wp_authz_compile_in in = {
		        .gw_ns = "a",
		        .gw_name = "wp",
		        .gw_class = "istio-waypoint",
		        .dest_kind = (uint8_t)rnd(3),
		        .dest_ns = "a",
		        .dest_name = rnd(2) ? "svc" : "se",
		        .cache = &cache,
		};
		struct wp_authz_table *t;
		struct authz_ref ref;

		if (rnd(3) == 0) {
			in.n_aliases = 1;
			in.aliases = alias1;
		}
		if (rnd(4) == 0)
			in.trust_domain = "td2";
		for (uint32_t i = 0; i < np; i++)
			policy(&b, i);
		if (wp_model_parse(b.p, b.n, "gen.yaml", take, parse_err, &os)) {
			fprintf(stderr, "%.*s\n", (int)b.n, b.p);
			fail();
		}
		in.policies = os.o;
		in.n_policies = os.n;
		t = wp_authz_compile(&in);
		assert_non_null(t);
		assert_false(t->broken);
		assert_int_equal(wp_authz_scratch_reserve(&sc, t), 0);
		assert_int_equal(authz_ref_init(&ref, &in), 0);
		for (uint32_t k = 0; k < per_set; k++) {
			struct wp_authz_req q;
			struct hdrset h;
			struct wp_authz_decision de, dr;

			random_req(&q, &h);
			wp_authz_eval(t, &sc, &q, &de);
			authz_ref_eval(&ref, &q, &dr);
			if (!same(&de, &dr)) {
				fprintf(stderr,
				        "disagreement: seed %llu set %u request %u (rerun with "
				        "WP_AUTHZ_SEED=%llu)\n%.*s\nrequest: principal=%.*s "
				        "http=%d host=%.*s method=%.*s path=%.*s port=%u sni=%.*s "
				        "x-a=%s x-b=%s\n",
				        (unsigned long long)seed, s, k, (unsigned long long)seed,
				        (int)b.n, b.p, (int)q.principal_len,
				        q.principal ? q.principal : "", q.is_http, (int)q.host_len,
				        q.host ? q.host : "", (int)q.method_len, q.method,
				        (int)q.path_len, q.path, q.dst_port, (int)q.sni_len,
				        q.sni ? q.sni : "", h.a ? h.a : "(none)",
				        h.b ? h.b : "(none)");
				show("engine", &de);
				show("reference", &dr);
				fail();
			}
			pairs++;
			allowed += de.allowed;
			audited += de.audited;
			reasons[de.reason]++;
		}
		authz_ref_fini(&ref);
		wp_authz_table_free(t);
		for (uint32_t i = 0; i < os.n; i++)
			wp_obj_free((struct wp_obj *)os.o[i]);
		free(b.p);
	}
	assert_int_equal(cache.n, 0);
	wp_authz_scratch_fini(&sc);
	printf("authz differential: seed %llu, %u pairs, 0 disagreements; allowed %u, audited "
	       "%u; reasons:",
	       (unsigned long long)seed, pairs, allowed, audited);
	for (int i = 0; i <= WP_AUTHZ_R_TABLE_ERROR; i++)
		printf(" %s=%u", wp_authz_reason_name((enum wp_authz_reason)i), reasons[i]);
	printf("\n");
	/* every outcome must have been exercised */
	for (int i = 0; i < WP_AUTHZ_R_TABLE_ERROR; i++)
		assert_true(reasons[i] > 0);
	assert_true(audited > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_differential),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
