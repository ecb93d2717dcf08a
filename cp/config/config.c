/*
 * Loads conf/waypoint.conf (libconfig) into struct wp_config.
 *
 * Three passes: libconfig parses the file; each --set override is applied to
 * the parsed tree (so an override is type-checked exactly like the file);
 * then a schema walk copies every known key into the struct, checking type
 * and range and refusing unknown keys. Errors carry "FILE:LINE: key 'k'" so
 * the operator knows where to look; a value an override put there (or a
 * key it added) is reported as "--set k=v: key 'k'" instead, since the file
 * is not where it must be fixed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "wp/addr.h"
#include "wp/config.h"
#include "wp/tls_suites.h"

/* Settings an override created or assigned, each with its argument, so an
 * error about one names the --set and not the file's line. */
#define MAX_SET_NODES 256

struct set_node {
	const config_setting_t *s;
	const char *assignment;
};

struct loader {
	config_t lc;
	const char *path;
	char *err;
	size_t errlen;
	int failed;
	unsigned n_set_nodes;
	struct set_node set_nodes[MAX_SET_NODES];
};

/* The --set argument that last wrote <s>, or NULL. */
static const char *set_by(const struct loader *ld, const config_setting_t *s)
{
	for (unsigned i = ld->n_set_nodes; s != NULL && i-- > 0;)
		if (ld->set_nodes[i].s == s)
			return ld->set_nodes[i].assignment;
	return NULL;
}

static void note_set(struct loader *ld, const config_setting_t *s, const char *assignment)
{
	if (ld->n_set_nodes < MAX_SET_NODES)
		ld->set_nodes[ld->n_set_nodes++] = (struct set_node){s, assignment};
}

static void fail(struct loader *ld, const config_setting_t *s, const char *key, const char *fmt,
                 ...)
{
	char msg[256];
	const char *set;
	va_list ap;

	if (ld->failed)
		return; /* keep the first error: it is the one to fix first */
	ld->failed = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set = set_by(ld, s);
	if (set != NULL)
		snprintf(ld->err, ld->errlen, "--set %s: key '%s': %s", set, key, msg);
	else if (s != NULL && config_setting_source_line(s) > 0)
		snprintf(ld->err, ld->errlen, "%s:%u: key '%s': %s", ld->path,
		         config_setting_source_line(s), key, msg);
	else
		snprintf(ld->err, ld->errlen, "%s: key '%s': %s", ld->path, key, msg);
}

/* ---- --set overrides ---------------------------------------------------- */

static int parse_index(const char *seg, int *idx)
{
	char *end;
	long v;
	const char *p = seg;

	if (*p == '[')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	v = strtol(p, &end, 10);
	if (seg[0] == '[') {
		if (*end != ']' || end[1] != '\0')
			return -1;
	} else if (*end != '\0') {
		return -1;
	}
	*idx = (int)v;
	return 0;
}

/* Infers the type of a value for a key that the file does not have. */
static int infer_type(const char *v)
{
	char *end;

	if (!strcmp(v, "true") || !strcmp(v, "false"))
		return CONFIG_TYPE_BOOL;
	strtoll(v, &end, 0);
	if (*v != '\0' && *end == '\0')
		return CONFIG_TYPE_INT64;
	strtod(v, &end);
	if (*v != '\0' && *end == '\0')
		return CONFIG_TYPE_FLOAT;
	return CONFIG_TYPE_STRING;
}

/* Gives <s> the text <v> in the type it has; NULL, or what is wrong with v
 * for that type. */
static const char *set_value(config_setting_t *s, const char *v)
{
	char *end;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: {
		long long n;

		errno = 0;
		n = strtoll(v, &end, 0);
		if (*v == '\0' || *end != '\0')
			return "expected an integer";
		if (errno == ERANGE)
			return "integer out of range";
		if (config_setting_type(s) == CONFIG_TYPE_INT) {
			/* refuse what does not fit an int, rather than take it
			 * modulo 2^32 (workers=4294967298 is not 2 workers) */
			if (n < INT_MIN || n > INT_MAX)
				return "integer out of range";
			(void)config_setting_set_int(s, (int)n);
		} else {
			(void)config_setting_set_int64(s, n);
		}
		return NULL;
	}
	case CONFIG_TYPE_FLOAT: {
		double d = strtod(v, &end);

		if (*v == '\0' || *end != '\0')
			return "expected a number";
		(void)config_setting_set_float(s, d);
		return NULL;
	}
	case CONFIG_TYPE_BOOL:
		if (strcmp(v, "true") && strcmp(v, "false"))
			return "expected true or false";
		(void)config_setting_set_bool(s, !strcmp(v, "true"));
		return NULL;
	case CONFIG_TYPE_STRING:
		return config_setting_set_string(s, v) == CONFIG_TRUE ? NULL : "out of memory";
	default:
		return "a group or list, not a single value";
	}
}

static int apply_set(struct loader *ld, const char *assignment)
{
	char buf[512], key[512], *eq, *path, *val, *seg, *save = NULL, *next;
	config_setting_t *s = config_root_setting(&ld->lc);
	const char *why;

	if (strlen(assignment) >= sizeof(buf))
		goto bad;
	strcpy(buf, assignment);
	eq = strchr(buf, '=');
	if (eq == NULL || eq == buf)
		goto bad;
	*eq = '\0';
	path = buf;
	val = eq + 1;
	strcpy(key, path);

	for (seg = strtok_r(path, ".", &save); seg != NULL; seg = next) {
		config_setting_t *child;
		int idx;

		next = strtok_r(NULL, ".", &save);
		if (parse_index(seg, &idx) == 0) {
			child = config_setting_get_elem(s, (unsigned)idx);
		} else {
			if (!config_setting_is_group(s)) {
				snprintf(ld->err, ld->errlen, "--set %s: '%s' is not a group",
				         assignment, seg);
				return -EINVAL;
			}
			child = config_setting_get_member(s, seg);
			if (child == NULL) {
				child = config_setting_add(
				        s, seg, next ? CONFIG_TYPE_GROUP : infer_type(val));
				note_set(ld, child, assignment); /* the file never had it */
			}
		}
		if (child == NULL) {
			snprintf(ld->err, ld->errlen, "--set %s: no element '%s' there", assignment,
			         seg);
			return -EINVAL;
		}
		s = child;
	}
	why = set_value(s, val);
	if (why != NULL) {
		snprintf(ld->err, ld->errlen, "--set %s: key '%s': %s", assignment, key, why);
		return -EINVAL;
	}
	note_set(ld, s, assignment);
	return 0;
bad:
	snprintf(ld->err, ld->errlen, "--set '%s': expected path=value", assignment);
	return -EINVAL;
}

/* ---- schema walk -------------------------------------------------------- */

/* Refuses members of <g> that are not in the NULL-terminated <known>. */
static void check_known(struct loader *ld, const config_setting_t *g, const char *prefix,
                        const char *const *known)
{
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		int ok = 0;

		for (const char *const *k = known; *k; k++)
			if (name && !strcmp(name, *k))
				ok = 1;
		if (!ok) {
			char key[128];
			snprintf(key, sizeof(key), "%s%s", prefix, name ? name : "?");
			fail(ld, m, key, "unknown key");
		}
	}
}

static const config_setting_t *member(const config_setting_t *g, const char *name)
{
	return g ? config_setting_get_member(g, name) : NULL;
}

static void get_uint(struct loader *ld, const config_setting_t *g, const char *prefix,
                     const char *name, unsigned long long min, unsigned long long max, void *out,
                     size_t width)
{
	const config_setting_t *s = member(g, name);
	char key[128];
	long long v;

	if (s == NULL)
		return; /* keep the default */
	snprintf(key, sizeof(key), "%s%s", prefix, name);
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		fail(ld, s, key, "expected an integer");
		return;
	}
	v = config_setting_get_int64(s);
	if (v < 0 || (unsigned long long)v < min || (unsigned long long)v > max) {
		fail(ld, s, key, "%lld is out of range [%llu, %llu]", v, min, max);
		return;
	}
	if (width == sizeof(uint64_t))
		*(uint64_t *)out = (uint64_t)v;
	else if (width == sizeof(unsigned))
		*(unsigned *)out = (unsigned)v;
	else if (width == sizeof(uint16_t))
		*(uint16_t *)out = (uint16_t)v;
	else
		*(uint8_t *)out = (uint8_t)v;
}

#define GET_UINT(ld, g, prefix, name, min, max, field)                                             \
	get_uint(ld, g, prefix, name, min, max, &(field), sizeof(field))

static void get_fraction(struct loader *ld, const config_setting_t *g, const char *prefix,
                         const char *name, double *out)
{
	const config_setting_t *s = member(g, name);
	char key[128];
	double v;

	if (s == NULL)
		return;
	snprintf(key, sizeof(key), "%s%s", prefix, name);
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_FLOAT:
		v = config_setting_get_float(s);
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		v = (double)config_setting_get_int64(s);
		break;
	default:
		fail(ld, s, key, "expected a number");
		return;
	}
	if (!(v >= 0.0 && v <= 1.0)) {
		fail(ld, s, key, "%g is not a fraction in [0, 1]", v);
		return;
	}
	*out = v;
}

static void get_bool(struct loader *ld, const config_setting_t *g, const char *prefix,
                     const char *name, bool *out)
{
	const config_setting_t *s = member(g, name);
	char key[128];

	if (s == NULL)
		return;
	snprintf(key, sizeof(key), "%s%s", prefix, name);
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		fail(ld, s, key, "expected true or false");
		return;
	}
	*out = config_setting_get_bool(s);
}

static void get_string(struct loader *ld, const config_setting_t *g, const char *prefix,
                       const char *name, char *out, size_t outlen)
{
	const config_setting_t *s = member(g, name);
	char key[128];
	const char *v;

	if (s == NULL)
		return;
	snprintf(key, sizeof(key), "%s%s", prefix, name);
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		fail(ld, s, key, "expected a string");
		return;
	}
	v = config_setting_get_string(s);
	if (strlen(v) >= outlen) {
		fail(ld, s, key, "longer than %zu characters", outlen - 1);
		return;
	}
	strcpy(out, v);
}

static void get_ipv4(struct loader *ld, const config_setting_t *g, const char *prefix,
                     const char *name, struct wp_addr *out)
{
	char text[64] = "", key[128];
	const config_setting_t *s = member(g, name);

	if (s == NULL)
		return;
	get_string(ld, g, prefix, name, text, sizeof(text));
	if (ld->failed)
		return;
	snprintf(key, sizeof(key), "%s%s", prefix, name);
	if (wp_addr_parse(text, out) != 0 || out->family != WP_AF_INET)
		fail(ld, s, key, "'%s' is not an IPv4 address", text);
}

static const config_setting_t *get_group(struct loader *ld, const char *name)
{
	const config_setting_t *s = config_lookup(&ld->lc, name);

	if (s != NULL && !config_setting_is_group(s)) {
		fail(ld, s, name, "expected a group { ... }");
		return NULL;
	}
	return s;
}

/* Whether eal.args holds <opt>: "--opt", or "--opt=..." when <opt> ends in
 * '=' (also "--opt" then, for options with an optional value). */
static bool eal_arg(const struct wp_config *cfg, const char *opt)
{
	size_t n = strlen(opt);

	for (unsigned i = 0; i < cfg->eal_nargs; i++) {
		const char *a = cfg->eal_args[i];

		if (opt[n - 1] == '='
		            ? !strncmp(a, opt, n) || (!strncmp(a, opt, n - 1) && !a[n - 1])
		            : !strcmp(a, opt))
			return true;
	}
	return false;
}

/*
 * The EAL memory options DPDK (22.11, at rte_eal_init) refuses together,
 * refused here with the keys that ask for them, so that --check-config
 * catches them. waypointd always passes -m eal.memory_mb, --in-memory for
 * eal.in_memory and --no-huge for eal.no_huge (or when the free hugepages
 * are too few, dp/port: not known here); eal.args adds the rest. --no-huge
 * with --in-memory is accepted (it is what the fallback runs).
 */
static void check_eal_memory(struct loader *ld, const config_setting_t *g,
                             const struct wp_config *cfg)
{
	bool in_memory = cfg->eal_in_memory || eal_arg(cfg, "--in-memory");
	bool no_huge = cfg->eal_no_huge || eal_arg(cfg, "--no-huge");
	bool legacy = eal_arg(cfg, "--legacy-mem");
	bool unlink = eal_arg(cfg, "--huge-unlink") || eal_arg(cfg, "--huge-unlink=always");
	const char *why = NULL;

	if (eal_arg(cfg, "--socket-mem="))
		why = "--socket-mem: DPDK refuses it with -m, which waypointd passes "
		      "(eal.memory_mb)";
	else if (legacy && in_memory)
		why = "--legacy-mem: DPDK refuses it with --in-memory (eal.in_memory = true)";
	else if (no_huge && eal_arg(cfg, "--huge-worker-stack="))
		why = "--huge-worker-stack: DPDK refuses it with --no-huge (eal.no_huge = true)";
	else if (no_huge && unlink && !in_memory)
		why = "--huge-unlink: DPDK refuses it with --no-huge (eal.no_huge = true) "
		      "unless eal.in_memory = true";
	else if (in_memory && eal_arg(cfg, "--huge-unlink=never"))
		why = "--huge-unlink=never: DPDK refuses it with --in-memory (eal.in_memory = "
		      "true)";
	else if (eal_arg(cfg, "--match-allocations") && (no_huge || legacy))
		why = "--match-allocations: DPDK refuses it with --no-huge (eal.no_huge = true) "
		      "and with --legacy-mem";
	else if (eal_arg(cfg, "--single-file-segments") && unlink && !in_memory)
		why = "--single-file-segments: DPDK refuses it with --huge-unlink unless "
		      "eal.in_memory = true";
	else if (eal_arg(cfg, "--socket-limit=") && legacy)
		why = "--socket-limit: DPDK refuses it with --legacy-mem";
	if (why != NULL)
		fail(ld, member(g, "args"), "eal.args", "%s", why);
}

static void load_eal(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {"lcores",  "file_prefix", "memory_mb", "in_memory",
	                                    "no_huge", "log_level",   "args",      NULL};
	const config_setting_t *g = get_group(ld, "eal"), *args;

	if (g == NULL)
		return;
	check_known(ld, g, "eal.", known);
	get_string(ld, g, "eal.", "lcores", cfg->eal_lcores, sizeof(cfg->eal_lcores));
	get_string(ld, g, "eal.", "file_prefix", cfg->eal_file_prefix,
	           sizeof(cfg->eal_file_prefix));
	GET_UINT(ld, g, "eal.", "memory_mb", 16, 1 << 20, cfg->eal_memory_mb);
	get_bool(ld, g, "eal.", "in_memory", &cfg->eal_in_memory);
	get_bool(ld, g, "eal.", "no_huge", &cfg->eal_no_huge);
	get_string(ld, g, "eal.", "log_level", cfg->eal_log_level, sizeof(cfg->eal_log_level));
	args = member(g, "args");
	if (args != NULL) {
		int n = config_setting_length(args);

		if (!config_setting_is_array(args) && !config_setting_is_list(args)) {
			fail(ld, args, "eal.args", "expected an array of strings");
			return;
		}
		if (n > WP_MAX_EAL_ARGS) {
			fail(ld, args, "eal.args", "at most %d arguments", WP_MAX_EAL_ARGS);
			return;
		}
		for (int i = 0; i < n; i++) {
			const config_setting_t *a = config_setting_get_elem(args, (unsigned)i);
			const char *v = config_setting_get_string(a);

			if (v == NULL || strlen(v) >= sizeof(cfg->eal_args[0])) {
				fail(ld, a, "eal.args", "element %d is not a string (or too long)",
				     i);
				return;
			}
			strcpy(cfg->eal_args[cfg->eal_nargs++], v);
		}
	}
	if (strchr(cfg->eal_file_prefix, '/') || cfg->eal_file_prefix[0] == '\0')
		fail(ld, member(g, "file_prefix"), "eal.file_prefix",
		     "must be a non-empty name without '/'");
	check_eal_memory(ld, g, cfg);
}

static void load_polling(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {"mode", "idle_polls", "sleep_us", "first_sleep_us",
	                                    NULL};
	const config_setting_t *g = get_group(ld, "polling");
	char mode[32] = "";

	if (g == NULL)
		return;
	check_known(ld, g, "polling.", known);
	get_string(ld, g, "polling.", "mode", mode, sizeof(mode));
	if (mode[0] != '\0') {
		if (!strcmp(mode, "busy"))
			cfg->poll_mode = WP_POLL_BUSY;
		else if (!strcmp(mode, "adaptive"))
			cfg->poll_mode = WP_POLL_ADAPTIVE;
		else
			fail(ld, member(g, "mode"), "polling.mode",
			     "'%s' is neither \"busy\" nor \"adaptive\"", mode);
	}
	GET_UINT(ld, g, "polling.", "idle_polls", 1, 1u << 30, cfg->poll_idle_polls);
	GET_UINT(ld, g, "polling.", "sleep_us", 1, 1000000, cfg->poll_sleep_us);
	GET_UINT(ld, g, "polling.", "first_sleep_us", 1, 1000000, cfg->poll_first_sleep_us);
	if (cfg->poll_first_sleep_us > cfg->poll_sleep_us && member(g, "first_sleep_us") == NULL)
		cfg->poll_first_sleep_us = cfg->poll_sleep_us; /* only sleep_us was given */
	else if (cfg->poll_first_sleep_us > cfg->poll_sleep_us)
		fail(ld, member(g, "first_sleep_us"), "polling.first_sleep_us",
		     "%u is longer than polling.sleep_us (%u), the longest sleep",
		     cfg->poll_first_sleep_us, cfg->poll_sleep_us);
}

/* An offload setting: "auto" (the default), "on" or "off". */
static void get_offload(struct loader *ld, const config_setting_t *g, const char *prefix,
                        const char *name, enum wp_offload *out)
{
	char v[16] = "", key[48];

	get_string(ld, g, prefix, name, v, sizeof(v));
	if (v[0] == '\0' || !strcmp(v, "auto"))
		*out = WP_OFFLOAD_AUTO;
	else if (!strcmp(v, "on"))
		*out = WP_OFFLOAD_ON;
	else if (!strcmp(v, "off"))
		*out = WP_OFFLOAD_OFF;
	else {
		snprintf(key, sizeof(key), "%s%s", prefix, name);
		fail(ld, member(g, name), key, "'%s' is not \"auto\", \"on\" or \"off\"", v);
	}
}

/* The gateway is the next hop off the subnet: it must be on the subnet (the
 * port resolves it with ARP), and not the port's own address. */
static void check_gateway(struct loader *ld, const config_setting_t *g, const char *prefix,
                          const struct wp_port_config *p)
{
	uint32_t mask = htonl(~0u << (32 - p->prefix)); /* prefix is 1..32 */
	struct wp_addr net = wp_addr_v4(p->ip.v4 & mask);
	char key[48], gw[WP_ADDR_STRLEN], ip[WP_ADDR_STRLEN];

	if (ld->failed || p->gateway.family != WP_AF_INET)
		return;
	snprintf(key, sizeof(key), "%sgateway", prefix);
	wp_addr_format(&p->gateway, gw, sizeof(gw));
	wp_addr_format(&net, ip, sizeof(ip));
	if ((p->gateway.v4 ^ p->ip.v4) & mask)
		fail(ld, member(g, "gateway"), key, "%s is outside the port's subnet %s/%u", gw, ip,
		     p->prefix);
	else if (p->gateway.v4 == p->ip.v4)
		fail(ld, member(g, "gateway"), key, "%s is the port's own address", gw);
}

static void load_ports(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {
	        "device",           "ip",  "prefix", "gateway", "mtu", "rx_desc", "tx_desc", "diag",
	        "checksum_offload", "tso", "lro",    "gro",     NULL};
	const config_setting_t *list = config_lookup(&ld->lc, "ports");
	int n;

	if (list == NULL) {
		fail(ld, NULL, "ports", "missing: at least one port is required");
		return;
	}
	if (!config_setting_is_list(list) && !config_setting_is_array(list)) {
		fail(ld, list, "ports", "expected a list ( { ... }, ... )");
		return;
	}
	n = config_setting_length(list);
	if (n < 1 || n > WP_MAX_PORTS) {
		fail(ld, list, "ports", "between 1 and %d ports, not %d", WP_MAX_PORTS, n);
		return;
	}
	cfg->n_ports = (unsigned)n;
	for (int i = 0; i < n && !ld->failed; i++) {
		const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
		struct wp_port_config *p = &cfg->ports[i];
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "ports.[%d].", i);
		if (!config_setting_is_group(g)) {
			fail(ld, g, prefix, "expected a group { ... }");
			return;
		}
		p->mtu = 1500;
		p->rx_desc = 1024;
		p->tx_desc = 1024;
		p->prefix = 24;
		p->gro = true;
		check_known(ld, g, prefix, known);
		get_string(ld, g, prefix, "device", p->device, sizeof(p->device));
		if (!ld->failed && p->device[0] == '\0')
			fail(ld, g, prefix, "'device' is required");
		if (!ld->failed && member(g, "ip") == NULL)
			fail(ld, g, prefix, "'ip' is required");
		get_ipv4(ld, g, prefix, "ip", &p->ip);
		GET_UINT(ld, g, prefix, "prefix", 1, 32, p->prefix);
		get_ipv4(ld, g, prefix, "gateway", &p->gateway);
		GET_UINT(ld, g, prefix, "mtu", 576, 9000, p->mtu);
		GET_UINT(ld, g, prefix, "rx_desc", 64, 32768, p->rx_desc);
		GET_UINT(ld, g, prefix, "tx_desc", 64, 32768, p->tx_desc);
		get_bool(ld, g, prefix, "diag", &p->diag);
		get_offload(ld, g, prefix, "checksum_offload", &p->cksum_offload);
		get_offload(ld, g, prefix, "tso", &p->tso);
		get_offload(ld, g, prefix, "lro", &p->lro);
		get_bool(ld, g, prefix, "gro", &p->gro);
		check_gateway(ld, g, prefix, p);
	}
}

static void load_arp(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {"entries", "pending", "ttl_s", NULL};
	const config_setting_t *g = get_group(ld, "arp");

	if (g == NULL)
		return;
	check_known(ld, g, "arp.", known);
	GET_UINT(ld, g, "arp.", "entries", 16, 1u << 20, cfg->arp_entries);
	GET_UINT(ld, g, "arp.", "pending", 1, 1u << 16, cfg->arp_pending);
	GET_UINT(ld, g, "arp.", "ttl_s", 1, 86400, cfg->arp_ttl_s);
}

static void load_tcp(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {
	        "max_conns", "syn_backlog", "accept_backlog", "time_wait_max", "time_wait_ms",
	        "rcv_buf",   "snd_buf",     "buffers",        "keepalive_s",   NULL};
	const config_setting_t *g = get_group(ld, "tcp");
	struct wp_tcp_limits *t = &cfg->tcp;

	if (g == NULL)
		return;
	check_known(ld, g, "tcp.", known);
	GET_UINT(ld, g, "tcp.", "max_conns", 16, 1u << 24, t->max_conns);
	GET_UINT(ld, g, "tcp.", "syn_backlog", 1, 1u << 20, t->syn_backlog);
	GET_UINT(ld, g, "tcp.", "accept_backlog", 1, 1u << 20, t->accept_backlog);
	GET_UINT(ld, g, "tcp.", "time_wait_max", 16, 1u << 24, t->time_wait_max);
	GET_UINT(ld, g, "tcp.", "time_wait_ms", 0, 120000, t->time_wait_ms);
	GET_UINT(ld, g, "tcp.", "rcv_buf", 4096, 1u << 30, t->rcv_buf);
	GET_UINT(ld, g, "tcp.", "snd_buf", 4096, 1u << 30, t->snd_buf);
	GET_UINT(ld, g, "tcp.", "buffers", 16, 1u << 24, t->buffers);
	GET_UINT(ld, g, "tcp.", "keepalive_s", 0, 86400, t->keepalive_s);
}

static void load_cluster(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {
	        "manifest_dir",   "gateway_class", "gateways", "cluster_domain",
	        "root_namespace", "debounce_ms",   NULL};
	const config_setting_t *g = get_group(ld, "cluster"), *list;
	struct wp_cluster_config *c = &cfg->cluster;

	if (g == NULL)
		return;
	check_known(ld, g, "cluster.", known);
	get_string(ld, g, "cluster.", "manifest_dir", c->manifest_dir, sizeof(c->manifest_dir));
	get_string(ld, g, "cluster.", "gateway_class", c->gateway_class, sizeof(c->gateway_class));
	get_string(ld, g, "cluster.", "cluster_domain", c->cluster_domain,
	           sizeof(c->cluster_domain));
	get_string(ld, g, "cluster.", "root_namespace", c->root_namespace,
	           sizeof(c->root_namespace));
	if (!ld->failed && c->root_namespace[0] == '\0')
		fail(ld, member(g, "root_namespace"), "cluster.root_namespace",
		     "must not be empty");
	GET_UINT(ld, g, "cluster.", "debounce_ms", 0, 60000, c->debounce_ms);
	list = member(g, "gateways");
	if (list == NULL)
		return;
	if (!config_setting_is_array(list) && !config_setting_is_list(list)) {
		fail(ld, list, "cluster.gateways",
		     "expected an array of \"namespace/name\" strings");
		return;
	}
	for (int i = 0; i < config_setting_length(list) && !ld->failed; i++) {
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		const char *v = config_setting_get_string(e), *slash;

		if (v == NULL || (slash = strchr(v, '/')) == NULL || slash == v ||
		    slash[1] == '\0' || strchr(slash + 1, '/') != NULL ||
		    strlen(v) >= sizeof(c->gateways[0])) {
			fail(ld, e, "cluster.gateways",
			     "element %d is not a \"namespace/name\" string", i);
			return;
		}
		if (c->n_gateways == WP_MAX_SERVED_GATEWAYS) {
			fail(ld, e, "cluster.gateways", "at most %d gateways",
			     WP_MAX_SERVED_GATEWAYS);
			return;
		}
		strcpy(c->gateways[c->n_gateways++], v);
	}
}

static void load_kubernetes(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {"enabled",
	                                    "kubeconfig",
	                                    "context",
	                                    "namespace",
	                                    "status",
	                                    "standalone",
	                                    "controller_name",
	                                    "service_name",
	                                    "service_namespace",
	                                    "addresses",
	                                    "page_limit",
	                                    "watch_timeout_s",
	                                    "backoff_base_ms",
	                                    "backoff_max_ms",
	                                    "sync_wait_ms",
	                                    "max_event_bytes",
	                                    "max_list_bytes",
	                                    "leader_election",
	                                    "lease_name",
	                                    "lease_namespace",
	                                    "identity",
	                                    "lease_duration_ms",
	                                    "renew_deadline_ms",
	                                    "retry_period_ms",
	                                    "membership",
	                                    "member_address",
	                                    "member_service_account",
	                                    "member_renew_ms",
	                                    "member_ttl_ms",
	                                    "deregister_grace_ms",
	                                    NULL};
	const config_setting_t *g = get_group(ld, "kubernetes"), *list;
	struct wp_kubernetes_config *k = &cfg->kubernetes;

	if (g == NULL)
		return;
	check_known(ld, g, "kubernetes.", known);
	get_bool(ld, g, "kubernetes.", "enabled", &k->enabled);
	get_string(ld, g, "kubernetes.", "kubeconfig", k->kubeconfig, sizeof(k->kubeconfig));
	get_string(ld, g, "kubernetes.", "context", k->context, sizeof(k->context));
	get_string(ld, g, "kubernetes.", "namespace", k->namespace, sizeof(k->namespace));
	get_bool(ld, g, "kubernetes.", "status", &k->status);
	get_bool(ld, g, "kubernetes.", "standalone", &k->standalone);
	get_string(ld, g, "kubernetes.", "controller_name", k->controller_name,
	           sizeof(k->controller_name));
	get_string(ld, g, "kubernetes.", "service_name", k->service_name, sizeof(k->service_name));
	get_string(ld, g, "kubernetes.", "service_namespace", k->service_namespace,
	           sizeof(k->service_namespace));
	GET_UINT(ld, g, "kubernetes.", "page_limit", 1, 100000, k->page_limit);
	GET_UINT(ld, g, "kubernetes.", "watch_timeout_s", 1, 86400, k->watch_timeout_s);
	GET_UINT(ld, g, "kubernetes.", "backoff_base_ms", 1, 600000, k->backoff_base_ms);
	GET_UINT(ld, g, "kubernetes.", "backoff_max_ms", 1, 3600000, k->backoff_max_ms);
	GET_UINT(ld, g, "kubernetes.", "sync_wait_ms", 1, 3600000, k->sync_wait_ms);
	GET_UINT(ld, g, "kubernetes.", "max_event_bytes", 4096, 1u << 30, k->max_event_bytes);
	GET_UINT(ld, g, "kubernetes.", "max_list_bytes", 4096, 0xffffffffu, k->max_list_bytes);
	get_bool(ld, g, "kubernetes.", "leader_election", &k->leader_election);
	get_string(ld, g, "kubernetes.", "lease_name", k->lease_name, sizeof(k->lease_name));
	get_string(ld, g, "kubernetes.", "lease_namespace", k->lease_namespace,
	           sizeof(k->lease_namespace));
	get_string(ld, g, "kubernetes.", "identity", k->identity, sizeof(k->identity));
	GET_UINT(ld, g, "kubernetes.", "lease_duration_ms", 1000, 3600000, k->lease_duration_ms);
	GET_UINT(ld, g, "kubernetes.", "renew_deadline_ms", 500, 3600000, k->renew_deadline_ms);
	GET_UINT(ld, g, "kubernetes.", "retry_period_ms", 100, 600000, k->retry_period_ms);
	get_bool(ld, g, "kubernetes.", "membership", &k->membership);
	get_string(ld, g, "kubernetes.", "member_address", k->member_address,
	           sizeof(k->member_address));
	get_string(ld, g, "kubernetes.", "member_service_account", k->member_service_account,
	           sizeof(k->member_service_account));
	GET_UINT(ld, g, "kubernetes.", "member_renew_ms", 100, 600000, k->member_renew_ms);
	GET_UINT(ld, g, "kubernetes.", "member_ttl_ms", 200, 3600000, k->member_ttl_ms);
	GET_UINT(ld, g, "kubernetes.", "deregister_grace_ms", 0, 600000, k->deregister_grace_ms);
	if (!ld->failed && k->member_address[0]) {
		struct wp_addr a;

		if (wp_addr_parse(k->member_address, &a) != 0)
			fail(ld, member(g, "member_address"), "kubernetes.member_address",
			     "'%s' is not an IP address", k->member_address);
	}
	/* a live member renews at least twice within the TTL */
	if (!ld->failed && k->member_ttl_ms < 2 * k->member_renew_ms)
		fail(ld, member(g, "member_ttl_ms"), "kubernetes.member_ttl_ms",
		     "must be at least twice member_renew_ms (%u)", k->member_renew_ms);
	/* client-go's rules: the holder must give up before others may take
	 * over, and must try more than once before it gives up */
	if (!ld->failed && k->renew_deadline_ms >= k->lease_duration_ms)
		fail(ld, member(g, "renew_deadline_ms"), "kubernetes.renew_deadline_ms",
		     "must be shorter than lease_duration_ms (%u)", k->lease_duration_ms);
	if (!ld->failed && k->retry_period_ms >= k->renew_deadline_ms)
		fail(ld, member(g, "retry_period_ms"), "kubernetes.retry_period_ms",
		     "must be shorter than renew_deadline_ms (%u)", k->renew_deadline_ms);
	if (!ld->failed && k->controller_name[0] == '\0')
		fail(ld, member(g, "controller_name"), "kubernetes.controller_name",
		     "must not be empty");
	if (!ld->failed && k->service_name[0] == '\0')
		fail(ld, member(g, "service_name"), "kubernetes.service_name", "must not be empty");
	if (!ld->failed && k->backoff_base_ms > k->backoff_max_ms)
		fail(ld, member(g, "backoff_base_ms"), "kubernetes.backoff_base_ms",
		     "larger than backoff_max_ms (%u)", k->backoff_max_ms);
	if (!ld->failed && k->max_list_bytes < k->max_event_bytes)
		fail(ld, member(g, "max_list_bytes"), "kubernetes.max_list_bytes",
		     "smaller than max_event_bytes (%u): a page must hold the largest object",
		     k->max_event_bytes);
	list = member(g, "addresses");
	if (list == NULL || ld->failed)
		return;
	if (!config_setting_is_array(list) && !config_setting_is_list(list)) {
		fail(ld, list, "kubernetes.addresses", "expected an array of IP address strings");
		return;
	}
	for (int i = 0; i < config_setting_length(list) && !ld->failed; i++) {
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		const char *v = config_setting_get_string(e);
		struct wp_addr a;

		if (v == NULL || strlen(v) >= sizeof(k->addresses[0]) ||
		    wp_addr_parse(v, &a) != 0) {
			fail(ld, e, "kubernetes.addresses", "element %d is not an IP address", i);
			return;
		}
		if (k->n_addresses == WP_MAX_STATUS_ADDRS) {
			fail(ld, e, "kubernetes.addresses", "at most %d addresses",
			     WP_MAX_STATUS_ADDRS);
			return;
		}
		strcpy(k->addresses[k->n_addresses++], v);
	}
}

static void load_admin(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {
	        "enabled",           "address", "port", "max_clients", "request_timeout_ms",
	        "max_request_bytes", NULL};
	const config_setting_t *g = get_group(ld, "admin");

	if (g == NULL)
		return;
	check_known(ld, g, "admin.", known);
	get_bool(ld, g, "admin.", "enabled", &cfg->admin.enabled);
	get_ipv4(ld, g, "admin.", "address", &cfg->admin.address);
	GET_UINT(ld, g, "admin.", "port", 0, 65535, cfg->admin.port);
	GET_UINT(ld, g, "admin.", "max_clients", 1, 1024, cfg->admin.max_clients);
	GET_UINT(ld, g, "admin.", "request_timeout_ms", 100, 600000, cfg->admin.request_timeout_ms);
	GET_UINT(ld, g, "admin.", "max_request_bytes", 1024, 1 << 20, cfg->admin.max_request_bytes);
}

static void load_metrics(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {
	        "enabled",    "address", "port", "envoy_port", "max_series_per_core",
	        "cluster_id", NULL};
	const config_setting_t *g = get_group(ld, "metrics");
	struct wp_metrics_config *m = &cfg->metrics;

	if (g == NULL)
		return;
	check_known(ld, g, "metrics.", known);
	get_bool(ld, g, "metrics.", "enabled", &m->enabled);
	get_ipv4(ld, g, "metrics.", "address", &m->address);
	GET_UINT(ld, g, "metrics.", "port", 0, 65535, m->port);
	GET_UINT(ld, g, "metrics.", "envoy_port", 0, 65535, m->envoy_port);
	GET_UINT(ld, g, "metrics.", "max_series_per_core", 1, 1u << 20, m->max_series_per_core);
	get_string(ld, g, "metrics.", "cluster_id", m->cluster_id, sizeof(m->cluster_id));
	if (!ld->failed && m->port && m->port == m->envoy_port)
		fail(ld, member(g, "envoy_port"), "metrics.envoy_port", "the same as metrics.port");
}

static void load_access_log(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {"file", "encoding", "ring_entries", NULL};
	const config_setting_t *g = get_group(ld, "access_log");
	struct wp_access_log_config *a = &cfg->access_log;
	char enc[16] = "TEXT";

	if (g == NULL)
		return;
	check_known(ld, g, "access_log.", known);
	get_string(ld, g, "access_log.", "file", a->file, sizeof(a->file));
	get_string(ld, g, "access_log.", "encoding", enc, sizeof(enc));
	GET_UINT(ld, g, "access_log.", "ring_entries", 16, 1u << 20, a->ring_entries);
	if (!strcmp(enc, "JSON"))
		a->json = true;
	else if (strcmp(enc, "TEXT") != 0 && !ld->failed)
		fail(ld, member(g, "encoding"), "access_log.encoding", "TEXT or JSON, not %s", enc);
}

/* "host:port", "[v6]:port": true when it has that shape, a port 1..65535. */
static bool host_port(const char *v)
{
	const char *colon = strrchr(v, ':');
	char *end;
	long port;

	if (!colon || colon == v)
		return false;
	if (v[0] == '[' ? colon[-1] != ']' : memchr(v, ':', (size_t)(colon - v)) != NULL)
		return false; /* an IPv6 address goes in brackets */
	if (colon[1] < '0' || colon[1] > '9')
		return false;
	port = strtol(colon + 1, &end, 10);
	return *end == '\0' && port >= 1 && port <= 65535;
}

static void load_tracing(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {
	        "collector",    "protocol",           "path",     "sampling",   "service_name",
	        "namespace",    "canonical_revision", "mesh_id",  "node_id",    "zone",
	        "ring_entries", "batch_spans",        "flush_ms", "timeout_ms", NULL};
	const config_setting_t *g = get_group(ld, "tracing"), *s;
	struct wp_tracing_config *t = &cfg->tracing;
	char proto[16] = "otlp";
	double pct = -1;

	if (g == NULL)
		return;
	check_known(ld, g, "tracing.", known);
	get_string(ld, g, "tracing.", "collector", t->collector, sizeof(t->collector));
	get_string(ld, g, "tracing.", "protocol", proto, sizeof(proto));
	get_string(ld, g, "tracing.", "path", t->path, sizeof(t->path));
	get_string(ld, g, "tracing.", "service_name", t->service_name, sizeof(t->service_name));
	get_string(ld, g, "tracing.", "namespace", t->ns, sizeof(t->ns));
	get_string(ld, g, "tracing.", "canonical_revision", t->canonical_revision,
	           sizeof(t->canonical_revision));
	get_string(ld, g, "tracing.", "mesh_id", t->mesh_id, sizeof(t->mesh_id));
	get_string(ld, g, "tracing.", "node_id", t->node_id, sizeof(t->node_id));
	get_string(ld, g, "tracing.", "zone", t->zone, sizeof(t->zone));
	GET_UINT(ld, g, "tracing.", "ring_entries", 16, 1u << 20, t->ring_entries);
	GET_UINT(ld, g, "tracing.", "batch_spans", 1, 4096, t->batch_spans);
	GET_UINT(ld, g, "tracing.", "flush_ms", 10, 60000, t->flush_ms);
	GET_UINT(ld, g, "tracing.", "timeout_ms", 100, 60000, t->timeout_ms);
	s = member(g, "sampling");
	if (s != NULL && !ld->failed) {
		if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
			pct = config_setting_get_float(s);
		else if (config_setting_type(s) == CONFIG_TYPE_INT ||
		         config_setting_type(s) == CONFIG_TYPE_INT64)
			pct = (double)config_setting_get_int64(s);
		if (!(pct >= 0.0 && pct <= 100.0))
			fail(ld, s, "tracing.sampling", "expected a percentage in [0, 100]");
		else
			t->sampling_ppm = (uint32_t)(pct * 10000.0 + 0.5);
	}
	if (ld->failed)
		return;
	if (!strcmp(proto, "zipkin"))
		t->protocol = WP_TRACE_ZIPKIN;
	else if (!strcmp(proto, "otlp"))
		t->protocol = WP_TRACE_OTLP;
	else
		fail(ld, member(g, "protocol"), "tracing.protocol", "otlp or zipkin, not %s",
		     proto);
	if (t->collector[0] && !host_port(t->collector))
		fail(ld, member(g, "collector"), "tracing.collector",
		     "expected host:port (or [IPv6]:port), not %s", t->collector);
	if (t->path[0] && t->path[0] != '/')
		fail(ld, member(g, "path"), "tracing.path", "must start with /, not %s", t->path);
	for (const char *c = t->path; *c && !ld->failed; c++)
		if (*c <= ' ' || *c >= 0x7f)
			fail(ld, member(g, "path"), "tracing.path", "has a space or control byte");
	if (!t->path[0])
		strcpy(t->path, t->protocol == WP_TRACE_ZIPKIN ? "/api/v2/spans" : "/v1/traces");
}

static void load_tls(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {"cert",
	                                    "key",
	                                    "ca",
	                                    "trust_domain",
	                                    "trust_domain_aliases",
	                                    "allow_tls12",
	                                    "session_tickets",
	                                    "openssl_handshake",
	                                    "ciphersuites",
	                                    "ticket_key_rotation_s",
	                                    "reload_ms",
	                                    NULL};
	const config_setting_t *g = get_group(ld, "tls"), *list;
	struct wp_tls_files_config *t = &cfg->tls;
	char suites[128] = "", why[160];
	int n;

	if (g == NULL)
		return;
	check_known(ld, g, "tls.", known);
	get_string(ld, g, "tls.", "cert", t->cert, sizeof(t->cert));
	get_string(ld, g, "tls.", "key", t->key, sizeof(t->key));
	get_string(ld, g, "tls.", "ca", t->ca, sizeof(t->ca));
	get_string(ld, g, "tls.", "trust_domain", t->trust_domain, sizeof(t->trust_domain));
	get_bool(ld, g, "tls.", "allow_tls12", &t->allow_tls12);
	get_bool(ld, g, "tls.", "session_tickets", &t->session_tickets);
	get_bool(ld, g, "tls.", "openssl_handshake", &t->openssl_handshake);
	get_string(ld, g, "tls.", "ciphersuites", suites, sizeof(suites));
	if (!ld->failed && member(g, "ciphersuites") != NULL) {
		n = wp_tls13_suites_parse(suites, t->suites13, why, sizeof(why));
		if (n < 0)
			fail(ld, member(g, "ciphersuites"), "tls.ciphersuites", "%s", why);
		else
			t->n_suites13 = (unsigned)n;
	}
	GET_UINT(ld, g, "tls.", "ticket_key_rotation_s", 60, 86400, t->ticket_key_rotation_s);
	GET_UINT(ld, g, "tls.", "reload_ms", 0, 3600000, t->reload_ms);
	if (!ld->failed && t->trust_domain[0] == '\0')
		fail(ld, member(g, "trust_domain"), "tls.trust_domain", "must not be empty");
	list = member(g, "trust_domain_aliases");
	if (list == NULL)
		return;
	if (!config_setting_is_array(list) && !config_setting_is_list(list)) {
		fail(ld, list, "tls.trust_domain_aliases", "expected an array of strings");
		return;
	}
	for (int i = 0; i < config_setting_length(list) && !ld->failed; i++) {
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		const char *v = config_setting_get_string(e);

		if (v == NULL || v[0] == '\0' || strlen(v) >= sizeof(t->aliases[0])) {
			fail(ld, e, "tls.trust_domain_aliases", "element %d is not a trust domain",
			     i);
			return;
		}
		if (t->n_aliases == WP_MAX_TD_ALIASES) {
			fail(ld, e, "tls.trust_domain_aliases", "at most %d aliases",
			     WP_MAX_TD_ALIASES);
			return;
		}
		strcpy(t->aliases[t->n_aliases++], v);
	}
}

static void load_hbone(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {"enabled",
	                                    "port",
	                                    "max_streams",
	                                    "stream_window",
	                                    "conn_window",
	                                    "ping_interval_ms",
	                                    "ping_timeout_ms",
	                                    "max_sessions",
	                                    "max_handshakes",
	                                    "max_tunnels",
	                                    "pool_streams",
	                                    "connect_timeout_ms",
	                                    "drain_timeout_ms",
	                                    "memory_mb",
	                                    "header_table_size",
	                                    "handshake_share",
	                                    NULL};
	const config_setting_t *g = get_group(ld, "hbone");
	struct wp_hbone_listen_config *h = &cfg->hbone;

	if (g == NULL)
		return;
	check_known(ld, g, "hbone.", known);
	get_bool(ld, g, "hbone.", "enabled", &h->enabled);
	GET_UINT(ld, g, "hbone.", "port", 1, 65535, h->port);
	GET_UINT(ld, g, "hbone.", "max_streams", 1, 1000, h->max_streams);
	GET_UINT(ld, g, "hbone.", "stream_window", 65535, 0x7fffffff, h->stream_window);
	GET_UINT(ld, g, "hbone.", "conn_window", 65535, 0x7fffffff, h->conn_window);
	GET_UINT(ld, g, "hbone.", "ping_interval_ms", 100, 3600000, h->ping_interval_ms);
	GET_UINT(ld, g, "hbone.", "ping_timeout_ms", 100, 3600000, h->ping_timeout_ms);
	GET_UINT(ld, g, "hbone.", "max_sessions", 4, 1u << 22, h->max_sessions);
	GET_UINT(ld, g, "hbone.", "max_handshakes", 1, 1u << 22, h->max_handshakes);
	GET_UINT(ld, g, "hbone.", "handshake_share", 1, 100, h->handshake_share);
	GET_UINT(ld, g, "hbone.", "max_tunnels", 4, 1u << 22, h->max_tunnels);
	GET_UINT(ld, g, "hbone.", "pool_streams", 1, 1000, h->pool_streams);
	GET_UINT(ld, g, "hbone.", "connect_timeout_ms", 10, 600000, h->connect_timeout_ms);
	GET_UINT(ld, g, "hbone.", "drain_timeout_ms", 0, 600000, h->drain_timeout_ms);
	GET_UINT(ld, g, "hbone.", "memory_mb", 1, 1u << 20, h->memory_mb);
	GET_UINT(ld, g, "hbone.", "header_table_size", 0, 65536, h->header_table_size);
}

static void load_l7(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {"max_sessions", "max_upstreams", "h2_max_sessions",
	                                    "h2_max_upstreams", NULL};
	const config_setting_t *g = get_group(ld, "l7");
	struct wp_l7_config *l = &cfg->l7;

	if (g == NULL)
		return;
	check_known(ld, g, "l7.", known);
	GET_UINT(ld, g, "l7.", "max_sessions", 1, 1u << 20, l->max_sessions);
	GET_UINT(ld, g, "l7.", "max_upstreams", 1, 1u << 20, l->max_upstreams);
	GET_UINT(ld, g, "l7.", "h2_max_sessions", 1, 1u << 20, l->h2_max_sessions);
	GET_UINT(ld, g, "l7.", "h2_max_upstreams", 1, 1u << 20, l->h2_max_upstreams);
}

static void load_ca(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {
	        "enabled",    "address",         "server_name",     "root_cert",  "token_file",
	        "cluster_id", "namespace",       "service_account", "lifetime_s", "dir",
	        "timeout_ms", "backoff_base_ms", "backoff_max_ms",  NULL};
	const config_setting_t *g = get_group(ld, "ca");
	struct wp_ca_config *c = &cfg->ca;

	if (g != NULL) {
		check_known(ld, g, "ca.", known);
		get_bool(ld, g, "ca.", "enabled", &c->enabled);
		get_string(ld, g, "ca.", "address", c->address, sizeof(c->address));
		get_string(ld, g, "ca.", "server_name", c->server_name, sizeof(c->server_name));
		get_string(ld, g, "ca.", "root_cert", c->root_cert, sizeof(c->root_cert));
		get_string(ld, g, "ca.", "token_file", c->token_file, sizeof(c->token_file));
		get_string(ld, g, "ca.", "cluster_id", c->cluster_id, sizeof(c->cluster_id));
		get_string(ld, g, "ca.", "namespace", c->namespace, sizeof(c->namespace));
		get_string(ld, g, "ca.", "service_account", c->service_account,
		           sizeof(c->service_account));
		GET_UINT(ld, g, "ca.", "lifetime_s", 10, 365 * 86400, c->lifetime_s);
		get_string(ld, g, "ca.", "dir", c->dir, sizeof(c->dir));
		GET_UINT(ld, g, "ca.", "timeout_ms", 100, 600000, c->timeout_ms);
		GET_UINT(ld, g, "ca.", "backoff_base_ms", 10, 3600000, c->backoff_base_ms);
		GET_UINT(ld, g, "ca.", "backoff_max_ms", 10, 3600000, c->backoff_max_ms);
	}
	if (ld->failed || !c->enabled)
		return;
	if (c->namespace[0] == '\0' || c->service_account[0] == '\0')
		fail(ld, member(g, "namespace"), "ca.namespace",
		     "ca.namespace and ca.service_account name our identity: both are needed");
	else if (strchr(c->address, ':') == NULL)
		fail(ld, member(g, "address"), "ca.address", "expected HOST:PORT");
	else if (c->root_cert[0] == '\0' || c->dir[0] == '\0' || c->server_name[0] == '\0')
		fail(ld, g, "ca", "root_cert, dir and server_name must not be empty");
	else if (strlen(c->dir) + sizeof("/identity.pem") > sizeof(cfg->tls.cert))
		fail(ld, member(g, "dir"), "ca.dir", "too long");
	if (ld->failed)
		return;
	/* The data path loads key and chain from one file the CA thread
	 * replaces whole: a reload never pairs a new chain with an old key.
	 * The roots are the mesh root the CA signs with. The files named in
	 * tls.cert, tls.key and tls.ca (the shipped defaults) are not used. */
	snprintf(cfg->tls.cert, sizeof(cfg->tls.cert), "%s/identity.pem", c->dir);
	strcpy(cfg->tls.key, cfg->tls.cert);
	strcpy(cfg->tls.ca, c->root_cert);
}

static void load_fault(struct loader *ld, struct wp_config *cfg)
{
	static const char *const known[] = {"rx_drop", "rx_dup",     "rx_reorder", "tx_drop",
	                                    "tx_dup",  "tx_reorder", "seed",       NULL};
	const config_setting_t *g = get_group(ld, "fault");
	struct wp_fault_config *f = &cfg->fault;

	if (g == NULL)
		return;
	check_known(ld, g, "fault.", known);
	get_fraction(ld, g, "fault.", "rx_drop", &f->rx_drop);
	get_fraction(ld, g, "fault.", "rx_dup", &f->rx_dup);
	get_fraction(ld, g, "fault.", "rx_reorder", &f->rx_reorder);
	get_fraction(ld, g, "fault.", "tx_drop", &f->tx_drop);
	get_fraction(ld, g, "fault.", "tx_dup", &f->tx_dup);
	get_fraction(ld, g, "fault.", "tx_reorder", &f->tx_reorder);
	GET_UINT(ld, g, "fault.", "seed", 0, UINT64_MAX, f->seed);
}

static void set_defaults(struct wp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->workers = 1;
	strcpy(cfg->eal_file_prefix, "waypointd");
	cfg->eal_memory_mb = 256;
	cfg->eal_in_memory = true;
	strcpy(cfg->eal_log_level, "notice");
	cfg->poll_mode = WP_POLL_ADAPTIVE;
	cfg->poll_idle_polls = 64;
	cfg->poll_sleep_us = 100;
	cfg->poll_first_sleep_us = 2;
	cfg->mbufs_per_worker = 16383;
	cfg->arp_entries = 1024;
	cfg->arp_pending = 256;
	cfg->arp_ttl_s = 300;
	cfg->fault.seed = 1;
	cfg->tcp.max_conns = 16384;
	cfg->tcp.syn_backlog = 1024;
	cfg->tcp.accept_backlog = 1024;
	cfg->tcp.time_wait_max = 16384;
	cfg->tcp.time_wait_ms = 2000;
	cfg->tcp.rcv_buf = 65536;
	cfg->tcp.snd_buf = 65536;
	cfg->tcp.buffers = 2048;
	cfg->tcp.keepalive_s = 0;
	strcpy(cfg->cluster.manifest_dir, WP_DEFAULT_MANIFEST_DIR);
	strcpy(cfg->cluster.cluster_domain, "cluster.local");
	strcpy(cfg->cluster.root_namespace, "istio-system");
	cfg->cluster.debounce_ms = 50;
	cfg->admin.enabled = true;
	cfg->admin.address = wp_addr_v4(htonl(0x7f000001));
	cfg->admin.port = 15000;
	cfg->admin.max_clients = 32;
	cfg->admin.request_timeout_ms = 5000;
	cfg->admin.max_request_bytes = 8192;
	cfg->metrics.enabled = true;
	cfg->metrics.address = wp_addr_v4(htonl(0));
	cfg->metrics.port = 15020;
	cfg->metrics.envoy_port = 15090;
	cfg->metrics.max_series_per_core = 2048;
	strcpy(cfg->metrics.cluster_id, "Kubernetes"); /* Istio's default CLUSTER_ID */
	cfg->access_log.ring_entries = 4096;
	cfg->tracing.sampling_ppm = 10000; /* Istio's default: 1% */
	strcpy(cfg->tracing.service_name, "waypoint");
	strcpy(cfg->tracing.canonical_revision, "latest");
	strcpy(cfg->tracing.mesh_id, "cluster.local");
	cfg->tracing.ring_entries = 4096;
	cfg->tracing.batch_spans = 256;
	cfg->tracing.flush_ms = 1000;
	cfg->tracing.timeout_ms = 2000;
	cfg->kubernetes.status = true;
	strcpy(cfg->kubernetes.controller_name, "waypointd.io/controller");
	strcpy(cfg->kubernetes.service_name, "waypointd");
	cfg->kubernetes.page_limit = 500;
	cfg->kubernetes.leader_election = true;
	cfg->kubernetes.lease_duration_ms = 15000;
	cfg->kubernetes.renew_deadline_ms = 10000;
	cfg->kubernetes.retry_period_ms = 2000;
	cfg->kubernetes.member_renew_ms = 5000;
	cfg->kubernetes.member_ttl_ms = 15000;
	cfg->kubernetes.deregister_grace_ms = 5000;
	cfg->kubernetes.watch_timeout_s = 300;
	cfg->kubernetes.backoff_base_ms = 800;
	cfg->kubernetes.backoff_max_ms = 30000;
	cfg->kubernetes.sync_wait_ms = 10000;
	cfg->kubernetes.max_event_bytes = 4u << 20;
	cfg->kubernetes.max_list_bytes = 64u << 20;
	strcpy(cfg->tls.trust_domain, "cluster.local");
	cfg->tls.session_tickets = true;
	cfg->tls.n_suites13 = (unsigned)wp_tls13_suites_parse(WP_TLS13_SUITES_DEFAULT,
	                                                      cfg->tls.suites13, NULL, 0);
	cfg->tls.ticket_key_rotation_s = 3600;
	cfg->tls.reload_ms = 1000;
	cfg->hbone.enabled = false;
	cfg->hbone.port = 15008;
	cfg->hbone.max_streams = 100;
	cfg->hbone.stream_window = 4u << 20;
	cfg->hbone.conn_window = 16u << 20;
	cfg->hbone.ping_interval_ms = 10000;
	cfg->hbone.ping_timeout_ms = 20000;
	cfg->hbone.max_sessions = 16384;
	cfg->hbone.max_handshakes = 1024;
	cfg->hbone.handshake_share = 50;
	cfg->hbone.max_tunnels = 65536;
	cfg->hbone.pool_streams = 100;
	cfg->hbone.connect_timeout_ms = 5000;
	cfg->hbone.drain_timeout_ms = 10000;
	cfg->hbone.memory_mb = 512;
	cfg->l7.max_sessions = 256;
	cfg->l7.max_upstreams = 512;
	cfg->l7.h2_max_sessions = 64;
	cfg->l7.h2_max_upstreams = 128;
	strcpy(cfg->ca.address, "istiod.istio-system.svc:15012");
	strcpy(cfg->ca.server_name, "istiod.istio-system.svc");
	strcpy(cfg->ca.root_cert, "/var/run/secrets/istio/root-cert.pem");
	strcpy(cfg->ca.token_file, "/var/run/secrets/tokens/istio-token");
	strcpy(cfg->ca.cluster_id, "Kubernetes");
	cfg->ca.lifetime_s = 86400;
	strcpy(cfg->ca.dir, "/run/waypointd/identity");
	cfg->ca.timeout_ms = 10000;
	cfg->ca.backoff_base_ms = 1000;
	cfg->ca.backoff_max_ms = 60000;
}

int wp_config_load(const char *path, const char *const *sets, unsigned n_sets,
                   struct wp_config *cfg, char *err, size_t errlen)
{
	static const char *const known[] = {
	        "workers",    "eal",     "polling", "ports", "arp",   "mbufs_per_worker", "fault",
	        "tcp",        "cluster", "admin",   "tls",   "hbone", "kubernetes",       "metrics",
	        "access_log", "ca",      "tracing", "l7",    NULL};
	struct loader ld = {.path = path, .err = err, .errlen = errlen};
	int rc = 0;

	set_defaults(cfg);
	if (strlen(path) >= sizeof(cfg->path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -EINVAL;
	}
	strcpy(cfg->path, path);
	config_init(&ld.lc);
	if (config_read_file(&ld.lc, path) != CONFIG_TRUE) {
		if (config_error_type(&ld.lc) == CONFIG_ERR_FILE_IO)
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		else
			snprintf(err, errlen, "%s:%d: %s", config_error_file(&ld.lc) ?: path,
			         config_error_line(&ld.lc), config_error_text(&ld.lc));
		rc = -EINVAL;
		goto out;
	}
	for (unsigned i = 0; i < n_sets; i++) {
		rc = apply_set(&ld, sets[i]);
		if (rc)
			goto out;
	}

	check_known(&ld, config_root_setting(&ld.lc), "", known);
	GET_UINT(&ld, config_root_setting(&ld.lc), "", "workers", 1, WP_MAX_WORKERS, cfg->workers);
	GET_UINT(&ld, config_root_setting(&ld.lc), "", "mbufs_per_worker", 1023, 1u << 22,
	         cfg->mbufs_per_worker);
	load_eal(&ld, cfg);
	load_polling(&ld, cfg);
	load_ports(&ld, cfg);
	load_arp(&ld, cfg);
	load_fault(&ld, cfg);
	load_tcp(&ld, cfg);
	load_cluster(&ld, cfg);
	load_admin(&ld, cfg);
	load_metrics(&ld, cfg);
	load_access_log(&ld, cfg);
	load_tracing(&ld, cfg);
	load_kubernetes(&ld, cfg);
	load_tls(&ld, cfg);
	load_hbone(&ld, cfg);
	load_l7(&ld, cfg);
	load_ca(&ld, cfg); /* after tls: it fills tls.cert, tls.key, tls.ca */
	rc = ld.failed ? -EINVAL : 0;
out:
	config_destroy(&ld.lc);
	return rc;
}
