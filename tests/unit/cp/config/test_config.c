/*
 * Unit tests for waypoint.conf loading (cp/config/config.c): the shipped
 * file validates, --set overrides are typed like the file, and every kind of
 * mistake is refused with FILE:LINE and the key's name.
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

#include "wp/addr.h"
#include "wp/config.h"

static char path[64];

static const char *write_conf(const char *text)
{
	FILE *f;

	strcpy(path, "/tmp/wp-config-test-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static const char *base = "ports = ( { device = \"net_tap0,iface=wp0\"; ip = \"10.1.0.2\";\n"
                          "            prefix = 16; gateway = \"10.1.0.1\"; } );\n";

static void test_shipped_config_is_valid(void **state)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(wp_config_load(WP_SOURCE_ROOT "/conf/waypoint.conf", NULL, 0, &cfg, err,
	                                sizeof(err)),
	                 0);
	assert_int_equal(cfg.n_ports, 1);
	assert_int_equal(cfg.poll_mode, WP_POLL_ADAPTIVE);
	assert_true(cfg.eal_in_memory);
}

static void test_values_and_defaults(void **state)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "", ip[WP_ADDR_STRLEN];

	(void)state;
	assert_int_equal(wp_config_load(write_conf(base), NULL, 0, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 1);
	assert_string_equal(cfg.ports[0].device, "net_tap0,iface=wp0");
	assert_int_equal(cfg.ports[0].cksum_offload, WP_OFFLOAD_AUTO);
	assert_int_equal(cfg.ports[0].tso, WP_OFFLOAD_AUTO);
	assert_int_equal(cfg.ports[0].lro, WP_OFFLOAD_AUTO);
	assert_true(cfg.ports[0].gro);
	assert_string_equal(wp_addr_format(&cfg.ports[0].ip, ip, sizeof(ip)), "10.1.0.2");
	assert_int_equal(cfg.ports[0].prefix, 16);
	assert_int_equal(cfg.ports[0].mtu, 1500);
	assert_string_equal(cfg.eal_file_prefix, "waypointd");
	assert_true(cfg.fault.rx_drop == 0.0);
	assert_int_equal(cfg.admin.max_clients, 32);
	assert_int_equal(cfg.admin.request_timeout_ms, 5000);
	assert_int_equal(cfg.admin.max_request_bytes, 8192);
	assert_true(cfg.metrics.enabled);
	assert_string_equal(wp_addr_format(&cfg.metrics.address, ip, sizeof(ip)), "0.0.0.0");
	assert_int_equal(cfg.metrics.port, 15020);
	assert_int_equal(cfg.metrics.envoy_port, 15090);
	assert_int_equal(cfg.metrics.max_series_per_core, 2048);
	unlink(path);
}

static void test_set_overrides(void **state)
{
	const char *sets[] = {"workers=3",
	                      "ports.[0].ip=10.1.0.9",
	                      "ports.0.mtu=9000",
	                      "fault.rx_drop=0.25",
	                      "polling.mode=busy",
	                      "eal.in_memory=false",
	                      "eal.file_prefix=other",
	                      "ports.[0].checksum_offload=off",
	                      "ports.[0].tso=on",
	                      "ports.[0].lro=off",
	                      "ports.[0].gro=false"};
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "", ip[WP_ADDR_STRLEN];

	(void)state;
	assert_int_equal(wp_config_load(write_conf(base), sets, 11, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.ports[0].cksum_offload, WP_OFFLOAD_OFF);
	assert_false(cfg.ports[0].gro);
	assert_int_equal(cfg.ports[0].tso, WP_OFFLOAD_ON);
	assert_int_equal(cfg.ports[0].lro, WP_OFFLOAD_OFF);
	assert_int_equal(cfg.workers, 3);
	assert_string_equal(wp_addr_format(&cfg.ports[0].ip, ip, sizeof(ip)), "10.1.0.9");
	assert_int_equal(cfg.ports[0].mtu, 9000);
	assert_true(cfg.fault.rx_drop == 0.25);
	assert_int_equal(cfg.poll_mode, WP_POLL_BUSY);
	assert_false(cfg.eal_in_memory);
	assert_string_equal(cfg.eal_file_prefix, "other");
	unlink(path);
}

/* Adaptive sleeps: defaults, and a sleep_us below the default first sleep
 * given alone caps the first sleep instead of failing. */
static void test_polling_sleeps(void **state)
{
	const char *short_sleep[] = {"polling.sleep_us=1"};
	const char *both[] = {"polling.sleep_us=500", "polling.first_sleep_us=7"};
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(wp_config_load(write_conf(base), NULL, 0, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.poll_first_sleep_us, 2);
	assert_int_equal(cfg.poll_sleep_us, 100);
	unlink(path);
	assert_int_equal(wp_config_load(write_conf(base), short_sleep, 1, &cfg, err, sizeof(err)),
	                 0);
	assert_int_equal(cfg.poll_first_sleep_us, 1);
	assert_int_equal(cfg.poll_sleep_us, 1);
	unlink(path);
	assert_int_equal(wp_config_load(write_conf(base), both, 2, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.poll_first_sleep_us, 7);
	assert_int_equal(cfg.poll_sleep_us, 500);
	unlink(path);
}

struct bad {
	const char *text; /* appended to base, or the whole file when it has no ports */
	const char *set;
	const char *expect[3]; /* substrings of the error */
};

static void check_bad(const struct bad *b)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "", text[2048];
	const char *sets[1] = {b->set};

	snprintf(text, sizeof(text), "%s%s", strstr(b->text, "ports") ? "" : base, b->text);
	assert_int_equal(
	        wp_config_load(write_conf(text), sets, b->set ? 1 : 0, &cfg, err, sizeof(err)),
	        -EINVAL);
	for (int i = 0; i < 3 && b->expect[i]; i++) {
		if (strstr(err, b->expect[i]) == NULL)
			fail_msg("error \"%s\" lacks \"%s\"", err, b->expect[i]);
	}
	unlink(path);
}

static void test_errors_name_file_line_key(void **state)
{
	static const struct bad cases[] = {
	        {"wrkers = 2;\n", NULL, {":3:", "key 'wrkers'", "unknown key"}},
	        {"workers = \"two\";\n", NULL, {":3:", "key 'workers'", "integer"}},
	        {"workers = 0;\n", NULL, {":3:", "key 'workers'", "out of range"}},
	        {"fault = { rx_drop = 1.5; };\n", NULL, {":3:", "fault.rx_drop", "fraction"}},
	        {"polling = { mode = \"sometimes\"; };\n", NULL, {":3:", "polling.mode", "busy"}},
	        {"polling = { sleep_us = 10; first_sleep_us = 20; };\n",
	         NULL,
	         {":3:", "polling.first_sleep_us", "longer than polling.sleep_us (10)"}},
	        {"eal = { lcores = 3; };\n", NULL, {":3:", "eal.lcores", "string"}},
	        {"arp = { entries = 1; };\n", NULL, {":3:", "arp.entries", "out of range"}},
	        {"admin = { max_clients = 0; };\n",
	         NULL,
	         {":3:", "admin.max_clients", "out of range"}},
	        {"admin = { request_timeout_ms = 10; };\n",
	         NULL,
	         {":3:", "admin.request_timeout_ms", "out of range"}},
	        {"admin = { max_request_bytes = 100; };\n",
	         NULL,
	         {":3:", "admin.max_request_bytes", "out of range"}},
	        {"metrics = { max_series_per_core = 0; };\n",
	         NULL,
	         {":3:", "metrics.max_series_per_core", "out of range"}},
	        {"metrics = { port = 9000; envoy_port = 9000; };\n",
	         NULL,
	         {":3:", "metrics.envoy_port", "the same as metrics.port"}},
	        {"metrics = { address = \"x\"; };\n",
	         NULL,
	         {":3:", "metrics.address", "not an IPv4 address"}},
	        {"ports = ( { device = \"x\"; ip = \"300.1.1.1\"; } );\n",
	         NULL,
	         {":1:", "ports.[0].ip", "not an IPv4 address"}},
	        {"ports = ( { ip = \"1.1.1.1\"; } );\n", NULL, {"ports.[0]", "device", "required"}},
	        {"ports = ( { device = \"x\"; ip = \"1.1.1.1\"; checksum_offload = \"yes\"; } );\n",
	         NULL,
	         {":1:", "ports.[0].checksum_offload", "'yes' is not \"auto\", \"on\" or \"off\""}},
	        {"ports = ( { device = \"x\"; ip = \"1.1.1.1\"; tso = true; } );\n",
	         NULL,
	         {":1:", "ports.[0].tso", "expected a string"}},
	        {"ports = ( { device = \"x\"; ip = \"1.1.1.1\"; lro = \"always\"; } );\n",
	         NULL,
	         {":1:", "ports.[0].lro", "'always' is not \"auto\", \"on\" or \"off\""}},
	        {"ports = ( { device = \"x\"; ip = \"1.1.1.1\"; speed = 1; } );\n",
	         NULL,
	         {":1:", "ports.[0].speed", "unknown key"}},
	        {"\nworkers = = 2;\n", NULL, {":4:", "syntax error", NULL}},
	        {"", "workers=abc", {"--set workers=abc: key 'workers'", "integer"}},
	        {"workers = 2;\n",
	         "workers=abc",
	         {"--set workers=abc: key 'workers': expected an integer"}},
	        /* found by fuzz_config: not modulo 2^32, not clamped to 2^63-1 */
	        {"workers = 2;\n",
	         "workers=4294967298",
	         {"--set workers=4294967298: key 'workers': integer out of range"}},
	        {"",
	         "fault.seed=99999999999999999999",
	         {"--set fault.seed=99999999999999999999: key 'fault.seed'", "out of range"}},
	        {"", "ports.[4].ip=1.1.1.1", {"--set", "no element", NULL}},
	        {"", "noequals", {"--set", "path=value", NULL}},
	        {"", "ports.[0].mtu=100", {"ports.[0].mtu", "out of range", NULL}},
	        /* the gateway is the next hop off the port's subnet */
	        {"ports = ( { device = \"x\"; ip = \"10.0.0.2\"; prefix = 24;\n"
	         "            gateway = \"10.0.1.1\"; } );\n",
	         NULL,
	         {":2: key 'ports.[0].gateway'",
	          "10.0.1.1 is outside the port's subnet 10.0.0.0/24"}},
	        {"ports = ( { device = \"x\"; ip = \"10.0.0.2\"; gateway = \"10.0.0.2\"; } );\n",
	         NULL,
	         {":1: key 'ports.[0].gateway'", "the port's own address"}},
	        /* EAL memory options DPDK refuses together */
	        {"eal = { args = [ \"--legacy-mem\" ]; };\n",
	         NULL,
	         {":3: key 'eal.args'", "--legacy-mem", "--in-memory"}},
	        {"eal = { args = [ \"--socket-mem\", \"512\" ]; };\n",
	         NULL,
	         {":3: key 'eal.args'", "--socket-mem", "-m"}},
	        {"eal = { in_memory = false; no_huge = true; args = [ \"--huge-unlink\" ]; };\n",
	         NULL,
	         {":3: key 'eal.args'", "--huge-unlink", "--no-huge"}},
	        {"eal = { no_huge = true; args = [ \"--match-allocations\" ]; };\n",
	         NULL,
	         {":3: key 'eal.args'", "--match-allocations", NULL}},
	        {"eal = { args = [ \"--huge-unlink=never\" ]; };\n",
	         NULL,
	         {":3: key 'eal.args'", "--huge-unlink=never", "--in-memory"}},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_bad(&cases[i]);
}

/* A value an override gave (or a key it added) is its argument's fault, not
 * the file's: the error names the --set, even where the file has the key. */
static void test_set_errors_name_the_argument(void **state)
{
	static const struct bad cases[] = {
	        {"tcp = { rcv_buf = 65536; };\n",
	         "tcp.rcv_buf=abc",
	         {"--set tcp.rcv_buf=abc: key 'tcp.rcv_buf': expected an integer"}},
	        {"", "tcp.rcv_buf=abc", {"--set tcp.rcv_buf=abc: key 'tcp.rcv_buf'", "integer"}},
	        {"", "ports.[0].prefix=0", {"--set ports.[0].prefix=0: key 'ports.[0].prefix'"}},
	        {"fault = { rx_drop = 0.5; };\n",
	         "fault.rx_drop=2",
	         {"--set fault.rx_drop=2: key 'fault.rx_drop'", "fraction"}},
	        {"eal = { in_memory = false; };\n",
	         "eal.in_memory=yes",
	         {"--set eal.in_memory=yes: key 'eal.in_memory': expected true or false"}},
	        {"", "ports.[0].gateway=10.2.0.1", {"--set ports.[0].gateway=10.2.0.1", "outside"}},
	        {"", "colour=red", {"--set colour=red: key 'colour': unknown key"}},
	        {"", "polling.speed=3", {"--set polling.speed=3: key 'polling.speed'", "unknown"}},
	};
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";
	const char *other[] = {"workers=2"};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_bad(&cases[i]);
	/* a mistake in the file stays the file's when an override touched
	 * another key */
	assert_int_equal(wp_config_load(write_conf("ports = ( { device = \"x\"; ip = \"1.1.1.1\";"
	                                           " mtu = 1; } );\n"),
	                                other, 1, &cfg, err, sizeof(err)),
	                 -EINVAL);
	assert_non_null(strstr(err, ":1: key 'ports.[0].mtu'"));
	unlink(path);
}

/* What DPDK accepts passes: --no-huge with --in-memory is what the hugepage
 * fallback runs; --huge-unlink without hugepages is fine in memory. */
/* tracing: defaults, values, the protocol's path, and refusals naming the key */
static void test_tracing(void **state)
{
	static const char *const bad[][2] = {
	        {"tracing = { protocol = \"jaeger\"; };\n", "tracing.protocol"},
	        {"tracing = { sampling = 100.5; };\n", "tracing.sampling"},
	        {"tracing = { sampling = \"all\"; };\n", "tracing.sampling"},
	        {"tracing = { collector = \"collector\"; };\n", "tracing.collector"},
	        {"tracing = { collector = \"c:+80\"; };\n", "tracing.collector"},
	        {"tracing = { collector = \"c:65536\"; };\n", "tracing.collector"},
	        {"tracing = { collector = \"::1:80\"; };\n", "tracing.collector"},
	        {"tracing = { path = \"v1/traces\"; };\n", "tracing.path"},
	        {"tracing = { path = \"/v1 /traces\"; };\n", "tracing.path"},
	        {"tracing = { batch_spans = 0; };\n", "tracing.batch_spans"},
	        {"tracing = { flush_ms = 1; };\n", "tracing.flush_ms"},
	        {"tracing = { colector = \"a:1\"; };\n", "tracing.colector"},
	};
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "", text[512];

	(void)state;
	assert_int_equal(wp_config_load(write_conf(base), NULL, 0, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.tracing.collector, ""); /* off */
	assert_int_equal(cfg.tracing.sampling_ppm, 10000);
	snprintf(text, sizeof(text),
	         "%stracing = { collector = \"[fd00::1]:9411\"; protocol = "
	         "\"zipkin\"; sampling = 0.25; namespace = \"istio-system\"; };\n",
	         base);
	assert_int_equal(wp_config_load(write_conf(text), NULL, 0, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.tracing.collector, "[fd00::1]:9411");
	assert_int_equal(cfg.tracing.protocol, WP_TRACE_ZIPKIN);
	assert_string_equal(cfg.tracing.path, "/api/v2/spans");
	assert_int_equal(cfg.tracing.sampling_ppm, 2500);
	assert_string_equal(cfg.tracing.ns, "istio-system");
	snprintf(text, sizeof(text),
	         "%stracing = { collector = \"otel.obs:4318\"; sampling = 100; "
	         "};\n",
	         base);
	assert_int_equal(wp_config_load(write_conf(text), NULL, 0, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.tracing.protocol, WP_TRACE_OTLP);
	assert_string_equal(cfg.tracing.path, "/v1/traces");
	assert_int_equal(cfg.tracing.sampling_ppm, 1000000);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", base, bad[i][0]);
		if (wp_config_load(write_conf(text), NULL, 0, &cfg, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted: %s", bad[i][0]);
		if (!strstr(err, ":3:") || !strstr(err, bad[i][1]))
			fail_msg("%s: %s", bad[i][0], err);
	}
	unlink(path);
}

static void test_eal_memory_accepted(void **state)
{
	static const char *const ok[] = {
	        "eal = { no_huge = true; in_memory = true; };\n",
	        "eal = { no_huge = false; in_memory = false; args = [ \"--legacy-mem\" ]; };\n",
	        "eal = { no_huge = true; args = [ \"--huge-unlink\" ]; };\n",
	        "eal = { args = [ \"--match-allocations\" ]; };\n",
	};
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "", text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", base, ok[i]);
		if (wp_config_load(write_conf(text), NULL, 0, &cfg, err, sizeof(err)) != 0)
			fail_msg("%s: %s", ok[i], err);
		unlink(path);
	}
}

static void test_missing_file(void **state)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(
	        wp_config_load("/nonexistent/waypoint.conf", NULL, 0, &cfg, err, sizeof(err)),
	        -EINVAL);
	assert_non_null(strstr(err, "/nonexistent/waypoint.conf: cannot read"));
}

static void test_addr_parse(void **state)
{
	struct wp_sockaddr sa;
	char buf[WP_ADDR_STRLEN];

	(void)state;
	assert_int_equal(wp_sockaddr_parse("10.0.0.1:8080", &sa), 0);
	assert_int_equal(sa.port, 8080);
	assert_string_equal(wp_sockaddr_format(&sa, buf, sizeof(buf)), "10.0.0.1:8080");
	assert_int_equal(wp_sockaddr_parse("[fd00::1]:443", &sa), 0);
	assert_int_equal(sa.addr.family, WP_AF_INET6);
	assert_string_equal(wp_sockaddr_format(&sa, buf, sizeof(buf)), "[fd00::1]:443");
	assert_int_equal(wp_sockaddr_parse("10.0.0.1", &sa), -EINVAL);
	assert_int_equal(wp_sockaddr_parse("10.0.0.1:", &sa), -EINVAL);
	assert_int_equal(wp_sockaddr_parse("10.0.0.1:65536", &sa), -EINVAL);
	assert_int_equal(wp_sockaddr_parse("10.0.0.1:+80", &sa), -EINVAL);
	assert_int_equal(wp_sockaddr_parse("fd00::1:80", &sa), -EINVAL);
	assert_int_equal(wp_sockaddr_parse("[10.0.0.1]:80", &sa), -EINVAL);
	assert_int_equal(wp_sockaddr_parse("[fd00::1]80", &sa), -EINVAL);
	assert_int_equal(wp_sockaddr_parse("host.example:80", &sa), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_shipped_config_is_valid),
	        cmocka_unit_test(test_values_and_defaults),
	        cmocka_unit_test(test_set_overrides),
	        cmocka_unit_test(test_polling_sleeps),
	        cmocka_unit_test(test_errors_name_file_line_key),
	        cmocka_unit_test(test_set_errors_name_the_argument),
	        cmocka_unit_test(test_tracing),
	        cmocka_unit_test(test_eal_memory_accepted),
	        cmocka_unit_test(test_missing_file),
	        cmocka_unit_test(test_addr_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
