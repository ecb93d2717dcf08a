/*
 * The `kubernetes` group of waypoint.conf (cp/config/config.c): defaults
 * (off, status on, the appliance's controllerName and Service name), every
 * key read, --set on a group the file lacks, and refused values named by
 * key.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wp/config.h"

static char path[64];

static const char *write_conf(const char *text)
{
	FILE *f;

	strcpy(path, "/tmp/wp-config-kube-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("ports = ( { device = \"net_tap0,iface=wp0\"; ip = \"10.1.0.2\"; } );\n", f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_defaults(void **state)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(wp_config_load(write_conf(""), NULL, 0, &cfg, err, sizeof(err)), 0);
	unlink(path);
	assert_false(cfg.kubernetes.enabled);
	assert_true(cfg.kubernetes.status);
	assert_false(cfg.kubernetes.standalone);
	assert_string_equal(cfg.kubernetes.kubeconfig, "");
	assert_string_equal(cfg.kubernetes.controller_name, "waypointd.io/controller");
	assert_string_equal(cfg.kubernetes.service_name, "waypointd");
	assert_int_equal(cfg.kubernetes.n_addresses, 0);
	assert_int_equal(cfg.kubernetes.page_limit, 500);
	assert_int_equal(cfg.kubernetes.backoff_base_ms, 800);
	assert_int_equal(cfg.kubernetes.backoff_max_ms, 30000);
	assert_int_equal(cfg.kubernetes.sync_wait_ms, 10000);
	assert_int_equal(cfg.kubernetes.max_event_bytes, 4u << 20);
	assert_int_equal(cfg.kubernetes.max_list_bytes, 64u << 20);
	/* leader election on, client-go's timings */
	assert_true(cfg.kubernetes.leader_election);
	assert_string_equal(cfg.kubernetes.lease_name, "");
	assert_string_equal(cfg.kubernetes.identity, "");
	assert_int_equal(cfg.kubernetes.lease_duration_ms, 15000);
	assert_int_equal(cfg.kubernetes.renew_deadline_ms, 10000);
	assert_int_equal(cfg.kubernetes.retry_period_ms, 2000);
	/* membership off; when on, renewed every 5 s, dead after 15 s */
	assert_false(cfg.kubernetes.membership);
	assert_string_equal(cfg.kubernetes.member_address, "");
	assert_string_equal(cfg.kubernetes.member_service_account, "");
	assert_int_equal(cfg.kubernetes.member_renew_ms, 5000);
	assert_int_equal(cfg.kubernetes.member_ttl_ms, 15000);
	assert_int_equal(cfg.kubernetes.deregister_grace_ms, 5000);
	/* the shipped file keeps it off: the embedded default is the manifest dir */
	assert_int_equal(wp_config_load(WP_SOURCE_ROOT "/conf/waypoint.conf", NULL, 0, &cfg, err,
	                                sizeof(err)),
	                 0);
	assert_false(cfg.kubernetes.enabled);
}

static void test_every_key(void **state)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(wp_config_load(write_conf("kubernetes = {\n"
	                                           "  enabled = true;\n"
	                                           "  kubeconfig = \"/etc/kube/config\";\n"
	                                           "  context = \"prod\";\n"
	                                           "  namespace = \"apps\";\n"
	                                           "  status = false;\n"
	                                           "  standalone = true;\n"
	                                           "  controller_name = \"example.com/wp\";\n"
	                                           "  service_name = \"wp\";\n"
	                                           "  service_namespace = \"wp-system\";\n"
	                                           "  addresses = [\"10.0.0.5\", \"fd00::5\"];\n"
	                                           "  page_limit = 100;\n"
	                                           "  watch_timeout_s = 60;\n"
	                                           "  backoff_base_ms = 100;\n"
	                                           "  backoff_max_ms = 2000;\n"
	                                           "  sync_wait_ms = 1500;\n"
	                                           "  max_event_bytes = 65536;\n"
	                                           "  max_list_bytes = 1048576;\n"
	                                           "  leader_election = false;\n"
	                                           "  lease_name = \"wp-lease\";\n"
	                                           "  lease_namespace = \"wp-system\";\n"
	                                           "  identity = \"node-1\";\n"
	                                           "  lease_duration_ms = 6000;\n"
	                                           "  renew_deadline_ms = 4000;\n"
	                                           "  retry_period_ms = 1000;\n"
	                                           "  membership = true;\n"
	                                           "  member_address = \"10.1.0.7\";\n"
	                                           "  member_service_account = \"wp-sa\";\n"
	                                           "  member_renew_ms = 1000;\n"
	                                           "  member_ttl_ms = 3000;\n"
	                                           "  deregister_grace_ms = 250;\n"
	                                           "};\n"),
	                                NULL, 0, &cfg, err, sizeof(err)),
	                 0);
	unlink(path);
	assert_true(cfg.kubernetes.enabled);
	assert_string_equal(cfg.kubernetes.kubeconfig, "/etc/kube/config");
	assert_string_equal(cfg.kubernetes.context, "prod");
	assert_string_equal(cfg.kubernetes.namespace, "apps");
	assert_false(cfg.kubernetes.status);
	assert_true(cfg.kubernetes.standalone);
	assert_string_equal(cfg.kubernetes.controller_name, "example.com/wp");
	assert_string_equal(cfg.kubernetes.service_name, "wp");
	assert_string_equal(cfg.kubernetes.service_namespace, "wp-system");
	assert_int_equal(cfg.kubernetes.n_addresses, 2);
	assert_string_equal(cfg.kubernetes.addresses[1], "fd00::5");
	assert_int_equal(cfg.kubernetes.page_limit, 100);
	assert_int_equal(cfg.kubernetes.watch_timeout_s, 60);
	assert_int_equal(cfg.kubernetes.backoff_base_ms, 100);
	assert_int_equal(cfg.kubernetes.backoff_max_ms, 2000);
	assert_int_equal(cfg.kubernetes.sync_wait_ms, 1500);
	assert_int_equal(cfg.kubernetes.max_event_bytes, 65536);
	assert_int_equal(cfg.kubernetes.max_list_bytes, 1048576);
	assert_false(cfg.kubernetes.leader_election);
	assert_string_equal(cfg.kubernetes.lease_name, "wp-lease");
	assert_string_equal(cfg.kubernetes.lease_namespace, "wp-system");
	assert_string_equal(cfg.kubernetes.identity, "node-1");
	assert_int_equal(cfg.kubernetes.lease_duration_ms, 6000);
	assert_int_equal(cfg.kubernetes.renew_deadline_ms, 4000);
	assert_int_equal(cfg.kubernetes.retry_period_ms, 1000);
	assert_true(cfg.kubernetes.membership);
	assert_string_equal(cfg.kubernetes.member_address, "10.1.0.7");
	assert_string_equal(cfg.kubernetes.member_service_account, "wp-sa");
	assert_int_equal(cfg.kubernetes.member_renew_ms, 1000);
	assert_int_equal(cfg.kubernetes.member_ttl_ms, 3000);
	assert_int_equal(cfg.kubernetes.deregister_grace_ms, 250);
}

/* What tests/testbed does: --set on keys of a group the file lacks. */
static void test_set(void **state)
{
	const char *sets[] = {"kubernetes.enabled=true", "kubernetes.kubeconfig=/tmp/kc",
	                      "kubernetes.standalone=true", "kubernetes.sync_wait_ms=500"};
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(wp_config_load(write_conf(""), sets, 4, &cfg, err, sizeof(err)), 0);
	unlink(path);
	assert_true(cfg.kubernetes.enabled);
	assert_string_equal(cfg.kubernetes.kubeconfig, "/tmp/kc");
	assert_true(cfg.kubernetes.standalone);
	assert_int_equal(cfg.kubernetes.sync_wait_ms, 500);
}

static void bad(const char *text, const char *set, const char *a, const char *b)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";
	const char *sets[1] = {set};

	assert_int_equal(
	        wp_config_load(write_conf(text), sets, set ? 1 : 0, &cfg, err, sizeof(err)),
	        -EINVAL);
	unlink(path);
	if (!strstr(err, a) || !strstr(err, b))
		fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err, a, b);
}

static void test_refused(void **state)
{
	(void)state;
	bad("kubernetes = { enable = true; };\n", NULL, "kubernetes.enable", "unknown key");
	bad("kubernetes = { enabled = 1; };\n", NULL, "kubernetes.enabled", "true or false");
	bad("kubernetes = { addresses = [\"10.0.0.300\"]; };\n", NULL, "kubernetes.addresses",
	    "not an IP address");
	bad("kubernetes = { service_name = \"\"; };\n", NULL, "kubernetes.service_name",
	    "must not be empty");
	bad("kubernetes = { backoff_base_ms = 5000; backoff_max_ms = 100; };\n", NULL,
	    "kubernetes.backoff_base_ms", "larger");
	bad("kubernetes = { page_limit = 0; };\n", NULL, "kubernetes.page_limit", "out of range");
	bad("kubernetes = { max_event_bytes = 100; };\n", NULL, "kubernetes.max_event_bytes",
	    "out of range");
	bad("kubernetes = { max_event_bytes = 1048576; max_list_bytes = 65536; };\n", NULL,
	    "kubernetes.max_list_bytes", "smaller than max_event_bytes");
	bad("", "kubernetes.enabled=yes", "kubernetes.enabled", "true or false");
	bad("kubernetes = { renew_deadline_ms = 15000; };\n", NULL, "kubernetes.renew_deadline_ms",
	    "shorter than lease_duration_ms");
	bad("kubernetes = { retry_period_ms = 10000; };\n", NULL, "kubernetes.retry_period_ms",
	    "shorter than renew_deadline_ms");
	bad("kubernetes = { member_address = \"node-1\"; };\n", NULL, "kubernetes.member_address",
	    "not an IP address");
	bad("kubernetes = { member_renew_ms = 5000; member_ttl_ms = 9000; };\n", NULL,
	    "kubernetes.member_ttl_ms", "at least twice member_renew_ms");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults),
	        cmocka_unit_test(test_every_key),
	        cmocka_unit_test(test_set),
	        cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
