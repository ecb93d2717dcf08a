/*
 * The `tls` and `hbone` groups of waypoint.conf (cp/config/config.c), which
 * dp/tunnel reads: defaults (TLS 1.3 only, tickets on, 1 s reload; HBONE
 * off on 15008 with ztunnel's windows), every key read, --set on groups the
 * file lacks (what tests/testbed does), range edges accepted, and refused
 * values named as FILE:LINE: key 'group.key'. The `ca` group (cp/ca):
 * defaults, and with it enabled the tls files pointing at its identity
 * file and root.
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

/* A config file: line 1 is the port, <text> starts on line 2. */
static const char *write_conf(const char *text)
{
	FILE *f;

	strcpy(path, "/tmp/wp-config-tls-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("ports = ( { device = \"net_tap0,iface=wp0\"; ip = \"10.1.0.2\"; } );\n", f);
	fputs(text, f);
	fclose(f);
	return path;
}

static int load(const char *text, const char *const *sets, unsigned n, struct wp_config *cfg,
                char *err)
{
	int rc = wp_config_load(write_conf(text), sets, n, cfg, err, WP_CONFIG_ERRLEN);

	unlink(path);
	return rc;
}

static void test_defaults(void **state)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(load("", NULL, 0, &cfg, err), 0);
	assert_string_equal(cfg.tls.cert, "");
	assert_string_equal(cfg.tls.key, "");
	assert_string_equal(cfg.tls.ca, "");
	assert_string_equal(cfg.tls.trust_domain, "cluster.local");
	assert_int_equal(cfg.tls.n_aliases, 0);
	assert_false(cfg.tls.allow_tls12);
	assert_true(cfg.tls.session_tickets);
	assert_false(cfg.tls.openssl_handshake);
	/* AES-128-GCM first */
	assert_int_equal(cfg.tls.n_suites13, 2);
	assert_int_equal(cfg.tls.suites13[0], 0x1301);
	assert_int_equal(cfg.tls.suites13[1], 0x1302);
	assert_int_equal(cfg.tls.reload_ms, 1000);
	assert_false(cfg.hbone.enabled);
	assert_int_equal(cfg.hbone.port, 15008);
	assert_int_equal(cfg.hbone.max_streams, 100);
	assert_int_equal(cfg.hbone.stream_window, 4u << 20);
	assert_int_equal(cfg.hbone.conn_window, 16u << 20);
	assert_int_equal(cfg.hbone.ping_interval_ms, 10000);
	assert_int_equal(cfg.hbone.ping_timeout_ms, 20000);
	assert_int_equal(cfg.hbone.max_sessions, 16384);
	assert_int_equal(cfg.hbone.max_handshakes, 1024);
	assert_int_equal(cfg.hbone.max_tunnels, 65536);
	assert_int_equal(cfg.hbone.pool_streams, 100);
	assert_int_equal(cfg.hbone.connect_timeout_ms, 5000);
	assert_int_equal(cfg.hbone.drain_timeout_ms, 10000);
	assert_int_equal(cfg.hbone.memory_mb, 512);
	assert_int_equal(cfg.hbone.header_table_size, 0);
	assert_int_equal(cfg.l7.max_sessions, 256);
	assert_int_equal(cfg.l7.max_upstreams, 512);
	assert_int_equal(cfg.l7.h2_max_sessions, 64);
	assert_int_equal(cfg.l7.h2_max_upstreams, 128);
}

static void test_every_key(void **state)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(load("tls = {\n"
	                      "  cert = \"/etc/wp/cert.pem\";\n"
	                      "  key = \"/etc/wp/key.pem\";\n"
	                      "  ca = \"/etc/wp/ca.pem\";\n"
	                      "  trust_domain = \"mesh.example\";\n"
	                      "  trust_domain_aliases = [\"old.example\", \"cluster.local\"];\n"
	                      "  allow_tls12 = true;\n"
	                      "  session_tickets = false;\n"
	                      "  openssl_handshake = true;\n"
	                      "  ciphersuites = \"TLS_AES_256_GCM_SHA384:"
	                      "TLS_AES_128_GCM_SHA256\";\n"
	                      "  reload_ms = 0;\n"
	                      "};\n"
	                      "hbone = {\n"
	                      "  enabled = true;\n"
	                      "  port = 15009;\n"
	                      "  max_streams = 1000;\n"
	                      "  stream_window = 65535;\n"
	                      "  conn_window = 2147483647;\n"
	                      "  ping_interval_ms = 100;\n"
	                      "  ping_timeout_ms = 250;\n"
	                      "  max_sessions = 4;\n"
	                      "  max_handshakes = 1;\n"
	                      "  max_tunnels = 8;\n"
	                      "  pool_streams = 1;\n"
	                      "  connect_timeout_ms = 10;\n"
	                      "  drain_timeout_ms = 0;\n"
	                      "  memory_mb = 1;\n"
	                      "  header_table_size = 4096;\n"
	                      "};\n"
	                      "l7 = {\n"
	                      "  max_sessions = 3000;\n"
	                      "  max_upstreams = 1;\n"
	                      "  h2_max_sessions = 7;\n"
	                      "  h2_max_upstreams = 1048576;\n"
	                      "};\n",
	                      NULL, 0, &cfg, err),
	                 0);
	assert_string_equal(cfg.tls.cert, "/etc/wp/cert.pem");
	assert_string_equal(cfg.tls.key, "/etc/wp/key.pem");
	assert_string_equal(cfg.tls.ca, "/etc/wp/ca.pem");
	assert_string_equal(cfg.tls.trust_domain, "mesh.example");
	assert_int_equal(cfg.tls.n_aliases, 2);
	assert_string_equal(cfg.tls.aliases[0], "old.example");
	assert_string_equal(cfg.tls.aliases[1], "cluster.local");
	assert_true(cfg.tls.allow_tls12);
	assert_false(cfg.tls.session_tickets);
	assert_true(cfg.tls.openssl_handshake);
	assert_int_equal(cfg.tls.n_suites13, 2);
	assert_int_equal(cfg.tls.suites13[0], 0x1302);
	assert_int_equal(cfg.tls.suites13[1], 0x1301);
	assert_int_equal(cfg.tls.reload_ms, 0);
	assert_true(cfg.hbone.enabled);
	assert_int_equal(cfg.hbone.port, 15009);
	assert_int_equal(cfg.hbone.max_streams, 1000);
	assert_int_equal(cfg.hbone.stream_window, 65535);
	assert_int_equal(cfg.hbone.conn_window, 0x7fffffff);
	assert_int_equal(cfg.hbone.ping_interval_ms, 100);
	assert_int_equal(cfg.hbone.ping_timeout_ms, 250);
	assert_int_equal(cfg.hbone.max_sessions, 4);
	assert_int_equal(cfg.hbone.max_handshakes, 1);
	assert_int_equal(cfg.hbone.max_tunnels, 8);
	assert_int_equal(cfg.hbone.pool_streams, 1);
	assert_int_equal(cfg.hbone.connect_timeout_ms, 10);
	assert_int_equal(cfg.hbone.drain_timeout_ms, 0);
	assert_int_equal(cfg.hbone.memory_mb, 1);
	assert_int_equal(cfg.l7.max_sessions, 3000);
	assert_int_equal(cfg.l7.max_upstreams, 1);
	assert_int_equal(cfg.l7.h2_max_sessions, 7);
	assert_int_equal(cfg.l7.h2_max_upstreams, 1048576);
	assert_int_equal(cfg.hbone.header_table_size, 4096);
}

/* tests/testbed: --certs and the HBONE tests' small PING timers via --set. */
static void test_set(void **state)
{
	const char *sets[] = {"tls.cert=/tmp/c/cert.pem", "tls.key=/tmp/c/key.pem",
	                      "tls.ca=/tmp/c/ca.pem",     "tls.reload_ms=200",
	                      "hbone.enabled=true",       "hbone.ping_interval_ms=300",
	                      "hbone.ping_timeout_ms=600"};
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(load("", sets, 7, &cfg, err), 0);
	assert_string_equal(cfg.tls.cert, "/tmp/c/cert.pem");
	assert_string_equal(cfg.tls.key, "/tmp/c/key.pem");
	assert_string_equal(cfg.tls.ca, "/tmp/c/ca.pem");
	assert_int_equal(cfg.tls.reload_ms, 200);
	assert_true(cfg.hbone.enabled);
	assert_int_equal(cfg.hbone.ping_interval_ms, 300);
	assert_int_equal(cfg.hbone.ping_timeout_ms, 600);
	/* untouched keys keep their defaults */
	assert_int_equal(cfg.hbone.port, 15008);
	assert_string_equal(cfg.tls.trust_domain, "cluster.local");
	/* --set overrides what the file says */
	const char *one[] = {"hbone.port=16000"};
	assert_int_equal(load("hbone = { port = 15010; };\n", one, 1, &cfg, err), 0);
	assert_int_equal(cfg.hbone.port, 16000);
	/* a suite list as hbone_bench.py passes it */
	const char *suites[] = {"tls.ciphersuites=TLS_AES_256_GCM_SHA384"};
	assert_int_equal(load("", suites, 1, &cfg, err), 0);
	assert_int_equal(cfg.tls.n_suites13, 1);
	assert_int_equal(cfg.tls.suites13[0], 0x1302);
}

/*
 * <text> must be refused; the message must name the file, <line> (0: no
 * line, a --set value) and the key, and contain <why>.
 */
static void bad(const char *text, const char *set, int line, const char *key, const char *why)
{
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "", want[128];
	const char *sets[1] = {set};

	assert_int_equal(load(text, sets, set ? 1 : 0, &cfg, err), -EINVAL);
	if (line > 0)
		snprintf(want, sizeof(want), "%s:%d: key '%s'", path, line, key);
	else
		snprintf(want, sizeof(want), "key '%s'", key);
	if (strstr(err, want) == NULL || strstr(err, why) == NULL)
		fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err, want, why);
}

static void test_refused(void **state)
{
	char many[1024] = "tls = {\n  trust_domain_aliases = [";

	(void)state;
	/* tls */
	bad("tls = {\n  certs = \"x\";\n};\n", NULL, 3, "tls.certs", "unknown key");
	bad("tls = {\n  reload_ms = 3600001;\n};\n", NULL, 3, "tls.reload_ms", "out of range");
	bad("tls = {\n  reload_ms = -1;\n};\n", NULL, 3, "tls.reload_ms", "");
	bad("tls = {\n  allow_tls12 = 1;\n};\n", NULL, 3, "tls.allow_tls12", "true or false");
	bad("tls = {\n  session_tickets = \"yes\";\n};\n", NULL, 3, "tls.session_tickets",
	    "true or false");
	bad("tls = {\n  cert = 5;\n};\n", NULL, 3, "tls.cert", "");
	bad("tls = {\n\n  trust_domain = \"\";\n};\n", NULL, 4, "tls.trust_domain",
	    "must not be empty");
	bad("tls = {\n  trust_domain_aliases = \"a.example\";\n};\n", NULL, 3,
	    "tls.trust_domain_aliases", "array of strings");
	bad("tls = {\n  trust_domain_aliases = [\"a\", \"\"];\n};\n", NULL, 3,
	    "tls.trust_domain_aliases", "element 1");
	for (int i = 0; i <= WP_MAX_TD_ALIASES; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s\"td%d.example\"",
		         i ? ", " : "", i);
	strcat(many, "];\n};\n");
	bad(many, NULL, 3, "tls.trust_domain_aliases", "at most");
	bad("tls = {\n  ciphersuites = \"TLS_CHACHA20_POLY1305_SHA256\";\n};\n", NULL, 3,
	    "tls.ciphersuites",
	    "unknown TLS 1.3 suite 'TLS_CHACHA20_POLY1305_SHA256'; expected TLS_AES_128_GCM_SHA256 "
	    "or TLS_AES_256_GCM_SHA384");
	bad("tls = {\n  ciphersuites = \"TLS_AES_128_GCM_SHA256:TLS_AES_128_GCM_SHA256\";\n};\n",
	    NULL, 3, "tls.ciphersuites", "TLS_AES_128_GCM_SHA256 is listed twice");
	bad("tls = {\n  ciphersuites = \"\";\n};\n", NULL, 3, "tls.ciphersuites", "an empty entry");
	bad("tls = {\n  ciphersuites = \"TLS_AES_128_GCM_SHA256:\";\n};\n", NULL, 3,
	    "tls.ciphersuites", "an empty entry");
	bad("tls = {\n  ciphersuites = [\"TLS_AES_128_GCM_SHA256\"];\n};\n", NULL, 3,
	    "tls.ciphersuites", "expected a string");
	/* hbone */
	bad("hbone = {\n  enable = true;\n};\n", NULL, 3, "hbone.enable", "unknown key");
	bad("hbone = {\n  enabled = \"on\";\n};\n", NULL, 3, "hbone.enabled", "true or false");
	bad("hbone = {\n  port = 0;\n};\n", NULL, 3, "hbone.port", "out of range");
	bad("hbone = {\n  port = 65536;\n};\n", NULL, 3, "hbone.port", "out of range");
	bad("hbone = {\n  max_streams = 1001;\n};\n", NULL, 3, "hbone.max_streams", "out of range");
	bad("hbone = {\n  stream_window = 65534;\n};\n", NULL, 3, "hbone.stream_window",
	    "out of range");
	bad("hbone = {\n  conn_window = 2147483648;\n};\n", NULL, 3, "hbone.conn_window",
	    "out of range");
	bad("hbone = {\n  ping_interval_ms = 99;\n};\n", NULL, 3, "hbone.ping_interval_ms",
	    "out of range");
	bad("hbone = {\n  ping_timeout_ms = 50;\n};\n", NULL, 3, "hbone.ping_timeout_ms",
	    "out of range");
	bad("hbone = {\n  max_sessions = 3;\n};\n", NULL, 3, "hbone.max_sessions", "out of range");
	bad("hbone = {\n  max_handshakes = 0;\n};\n", NULL, 3, "hbone.max_handshakes",
	    "out of range");
	bad("hbone = {\n  max_handshakes = 4194305;\n};\n", NULL, 3, "hbone.max_handshakes",
	    "out of range");
	bad("", "hbone.max_handshakes=-1", 0, "hbone.max_handshakes", "");
	bad("hbone = {\n  max_tunnels = 4194305;\n};\n", NULL, 3, "hbone.max_tunnels",
	    "out of range");
	bad("hbone = {\n  pool_streams = 0;\n};\n", NULL, 3, "hbone.pool_streams", "out of range");
	bad("hbone = {\n  connect_timeout_ms = 9;\n};\n", NULL, 3, "hbone.connect_timeout_ms",
	    "out of range");
	bad("hbone = {\n  drain_timeout_ms = 600001;\n};\n", NULL, 3, "hbone.drain_timeout_ms",
	    "out of range");
	bad("hbone = {\n  memory_mb = 0;\n};\n", NULL, 3, "hbone.memory_mb", "out of range");
	bad("hbone = {\n  memory_mb = 1.5;\n};\n", NULL, 3, "hbone.memory_mb", "");
	bad("hbone = {\n  header_table_size = 65537;\n};\n", NULL, 3, "hbone.header_table_size",
	    "out of range");
	bad("l7 = {\n  max_sessions = 0;\n};\n", NULL, 3, "l7.max_sessions", "out of range");
	bad("l7 = {\n  h2_max_upstreams = 1048577;\n};\n", NULL, 3, "l7.h2_max_upstreams",
	    "out of range");
	bad("l7 = {\n  sessions = 5;\n};\n", NULL, 3, "l7.sessions", "");
	/* the first error wins: line 3 before line 4 */
	bad("hbone = {\n  port = 0;\n  max_streams = 0;\n};\n", NULL, 3, "hbone.port",
	    "out of range");
	/* --set values are checked the same way */
	bad("", "hbone.ping_interval_ms=10", 0, "hbone.ping_interval_ms", "out of range");
	bad("", "tls.allow_tls12=maybe", 0, "tls.allow_tls12", "");
	bad("", "hbone.bogus=1", 0, "hbone.bogus", "unknown key");
}

static void test_ca(void **state)
{
	static const char *const on[] = {"ca.enabled=true", "ca.namespace=ns1",
	                                 "ca.service_account=wp", "ca.dir=/run/x"};
	static const char *const no_sa[] = {"ca.enabled=true", "ca.namespace=ns1"};
	static const char *const bad_addr[] = {"ca.enabled=true", "ca.namespace=ns1",
	                                       "ca.service_account=wp", "ca.address=istiod"};
	struct wp_config cfg;
	char err[WP_CONFIG_ERRLEN] = "";

	(void)state;
	assert_int_equal(load("tls = { cert = \"/c.pem\"; key = \"/k.pem\"; ca = \"/r.pem\"; };\n",
	                      NULL, 0, &cfg, err),
	                 0);
	assert_false(cfg.ca.enabled);
	assert_string_equal(cfg.ca.address, "istiod.istio-system.svc:15012");
	assert_string_equal(cfg.ca.server_name, "istiod.istio-system.svc");
	assert_string_equal(cfg.ca.root_cert, "/var/run/secrets/istio/root-cert.pem");
	assert_string_equal(cfg.ca.token_file, "/var/run/secrets/tokens/istio-token");
	assert_string_equal(cfg.ca.cluster_id, "Kubernetes");
	assert_int_equal(cfg.ca.lifetime_s, 86400);
	assert_int_equal(cfg.ca.backoff_base_ms, 1000);
	assert_int_equal(cfg.ca.backoff_max_ms, 60000);
	assert_string_equal(cfg.tls.cert, "/c.pem"); /* off: the files */
	/* on: the tls files are the CA's, whatever the file said */
	assert_int_equal(load("tls = { cert = \"/c.pem\"; key = \"/k.pem\"; ca = \"/r.pem\"; };\n",
	                      on, 4, &cfg, err),
	                 0);
	assert_string_equal(cfg.tls.cert, "/run/x/identity.pem");
	assert_string_equal(cfg.tls.key, "/run/x/identity.pem");
	assert_string_equal(cfg.tls.ca, "/var/run/secrets/istio/root-cert.pem");
	assert_int_equal(load("", no_sa, 2, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "ca.namespace"));
	assert_int_equal(load("", bad_addr, 4, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "'ca.address': expected HOST:PORT"));
	assert_int_equal(load("ca = { lifetime_s = 5; };\n", NULL, 0, &cfg, err), -EINVAL);
	assert_non_null(strstr(err, "ca.lifetime_s"));
	assert_int_equal(load("ca = { nope = 1; };\n", NULL, 0, &cfg, err), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_defaults), cmocka_unit_test(test_every_key),
	        cmocka_unit_test(test_set),      cmocka_unit_test(test_refused),
	        cmocka_unit_test(test_ca),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
