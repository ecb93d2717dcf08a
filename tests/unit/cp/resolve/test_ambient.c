/*
 * The snapshot's ambient flag (wp_snap_endpoint.ambient,
 * wp_snap_workload.ambient): the data plane reaches a workload by HBONE when
 * its namespace is istio.io/dataplane-mode=ambient and the pod does not opt
 * out, in plaintext otherwise. Also checks that relabelling the namespace
 * rebuilds the blocks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "wp/addr.h"
#include "wp/model.h"
#include "wp/resolve.h"
#include "wp/snapshot.h"
#include "wp/source.h"

static void load(struct wp_resolver *r, const char *yaml)
{
	int n = wp_source_deliver_text(wp_resolver_sink(r), "test.yaml", yaml, strlen(yaml));
	const char *const *errs;

	assert_true(n > 0);
	assert_int_equal(wp_resolver_errors(r, &errs), 0);
}

static const char *ns_yaml(const char *ns, const char *mode)
{
	static char b[2][512];
	static int i;
	char *p = b[i++ % 2];

	snprintf(p, 512,
	         "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n  labels:\n"
	         "    istio.io/use-waypoint: wp\n%s%s%s",
	         ns, mode ? "    istio.io/dataplane-mode: " : "", mode ? mode : "",
	         mode ? "\n" : "");
	return p;
}

static const char *pod_yaml(const char *ns, const char *name, const char *ip, const char *mode)
{
	static char b[4][768];
	static int i;
	char *p = b[i++ % 4];

	snprintf(p, 768,
	         "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\n  namespace: %s\n"
	         "  labels:\n    app: echo\n%s%s%s"
	         "spec:\n  serviceAccountName: echo\nstatus:\n  phase: Running\n  podIP: %s\n"
	         "  conditions:\n  - type: Ready\n    status: \"True\"\n",
	         name, ns, mode ? "    istio.io/dataplane-mode: " : "", mode ? mode : "",
	         mode ? "\n" : "", ip);
	return p;
}

static const char *svc_gw_yaml(const char *ns, const char *vip)
{
	static char b[2][1024];
	static int i;
	char *p = b[i++ % 2];

	snprintf(p, 1024,
	         "---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n"
	         "  name: wp\n  namespace: %s\n  labels:\n    istio.io/waypoint-for: all\n"
	         "spec:\n  gatewayClassName: istio-waypoint\n  listeners:\n  - name: mesh\n"
	         "    port: 15008\n    protocol: HBONE\n"
	         "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: echo\n  namespace: %s\n"
	         "spec:\n  clusterIP: %s\n  selector:\n    app: echo\n  ports:\n  - name: tcp\n"
	         "    port: 7000\n    targetPort: 7001\n",
	         ns, ns, vip);
	return p;
}

static const struct wp_snap_endpoint *ep_by_ip(const struct wp_snapshot *s, const char *vip,
                                               const char *ip)
{
	struct wp_sockaddr sa;
	struct wp_addr want;
	const struct wp_snap_dest *d;
	const struct wp_snap_svc_port *p;

	assert_int_equal(wp_sockaddr_parse(vip, &sa), 0);
	assert_int_equal(wp_addr_parse(ip, &want), 0);
	d = wp_snapshot_lookup(s, &sa);
	assert_non_null(d);
	assert_int_equal(d->kind, WP_DEST_SERVICE);
	p = &d->svc->ports[d->port_idx];
	for (uint32_t i = 0; i < p->n_endpoints; i++)
		if (wp_addr_eq(&p->endpoints[i].addr, &want)) {
			assert_int_equal(p->endpoints[i].port, 7001);
			return &p->endpoints[i];
		}
	fail_msg("no endpoint %s behind %s", ip, vip);
	return NULL;
}

static const struct wp_snap_workload *wl_by_ip(const struct wp_snapshot *s, const char *ip)
{
	struct wp_sockaddr sa;
	const struct wp_snap_dest *d;
	char buf[64];

	snprintf(buf, sizeof(buf), "%s:1234", ip);
	assert_int_equal(wp_sockaddr_parse(buf, &sa), 0);
	d = wp_snapshot_lookup(s, &sa);
	assert_non_null(d);
	assert_int_equal(d->kind, WP_DEST_WORKLOAD);
	return d->wl;
}

static void test_ambient_flags(void **state)
{
	struct wp_served served = {.class_name = "istio-waypoint"};
	struct wp_resolver *r = wp_resolver_create(&served);
	struct wp_snapshot *s;

	(void)state;
	assert_non_null(r);
	load(r, ns_yaml("mesh", "ambient"));
	load(r, ns_yaml("plain", NULL));
	load(r, svc_gw_yaml("mesh", "198.19.1.1"));
	load(r, svc_gw_yaml("plain", "198.19.1.2"));
	load(r, pod_yaml("mesh", "a", "198.18.1.1", NULL));
	load(r, pod_yaml("mesh", "b", "198.18.1.2", "none"));
	load(r, pod_yaml("plain", "c", "198.18.1.3", NULL));
	load(r, pod_yaml("plain", "d", "198.18.1.4", "ambient"));
	s = wp_resolver_build(r);
	assert_non_null(s);
	assert_true(ep_by_ip(s, "198.19.1.1:7000", "198.18.1.1")->ambient);
	assert_false(ep_by_ip(s, "198.19.1.1:7000", "198.18.1.2")->ambient); /* opted out */
	assert_false(ep_by_ip(s, "198.19.1.2:7000", "198.18.1.3")->ambient);
	assert_true(ep_by_ip(s, "198.19.1.2:7000", "198.18.1.4")->ambient); /* opted in */
	assert_true(wl_by_ip(s, "198.18.1.1")->ambient);
	assert_false(wl_by_ip(s, "198.18.1.2")->ambient);
	assert_false(wl_by_ip(s, "198.18.1.3")->ambient);
	wp_snapshot_free(s);

	/* The namespace leaves the mesh: its blocks are rebuilt. */
	load(r, ns_yaml("mesh", "none"));
	s = wp_resolver_build(r);
	assert_non_null(s);
	assert_false(ep_by_ip(s, "198.19.1.1:7000", "198.18.1.1")->ambient);
	assert_false(wl_by_ip(s, "198.18.1.1")->ambient);
	assert_true(ep_by_ip(s, "198.19.1.2:7000", "198.18.1.4")->ambient);
	wp_snapshot_free(s);
	wp_resolver_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ambient_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
