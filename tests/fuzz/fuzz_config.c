/*
 * libFuzzer driver for the configuration loader (cp/config/config.c):
 * libconfig text plus `--set path=value` overrides, as waypointd's command
 * line gives them. The input is the file text up to the first NUL byte, then
 * up to 8 NUL-separated overrides. The file is written to a memfd and loaded
 * through its /proc/self/fd path. Checks:
 *
 *   - the answer is 0 or -EINVAL; an error is a NUL-terminated message naming
 *     the file or "--set", a success leaves the message empty;
 *   - loading twice gives the same struct byte for byte and the same message;
 *   - an accepted configuration is inside the documented bounds (counts within
 *     their arrays, strings NUL-terminated, fractions in [0, 1], addresses
 *     IPv4, first sleep <= longest sleep, backoff base <= max);
 *   - an accepted integer override reads back as the number given
 *     (`--set workers=N` means N workers, not N modulo 2^32).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "wp/common.h"
#include "wp/config.h"

#define MAX_SETS 8

/* libconfig 1.7.3 (Debian 12) leaks the text of a string token when a
 * syntax error follows it (hyperrealm/libconfig#142, fixed upstream with a
 * bison %destructor); the loader destroys the config_t it was given, so
 * leaks reported from inside libconfig are libconfig's. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libconfig.so\n";
}

static int fd = -1;
static char path[64];

/* Integer keys whose value an override must set verbatim. */
static const struct {
	const char *key;
	size_t off;
	size_t width;
} int_keys[] = {
        {"workers", offsetof(struct wp_config, workers), sizeof(unsigned)},
        {"mbufs_per_worker", offsetof(struct wp_config, mbufs_per_worker), sizeof(unsigned)},
        {"arp.entries", offsetof(struct wp_config, arp_entries), sizeof(unsigned)},
        {"tcp.max_conns", offsetof(struct wp_config, tcp.max_conns), sizeof(unsigned)},
        {"tcp.rcv_buf", offsetof(struct wp_config, tcp.rcv_buf), sizeof(unsigned)},
        {"hbone.port", offsetof(struct wp_config, hbone.port), sizeof(uint16_t)},
        {"hbone.max_streams", offsetof(struct wp_config, hbone.max_streams), sizeof(unsigned)},
        {"admin.port", offsetof(struct wp_config, admin.port), sizeof(uint16_t)},
        {"ports.[0].mtu", offsetof(struct wp_config, ports[0].mtu), sizeof(uint16_t)},
        {"ports.[0].prefix", offsetof(struct wp_config, ports[0].prefix), sizeof(uint8_t)},
        {"fault.seed", offsetof(struct wp_config, fault.seed), sizeof(uint64_t)},
};

static uint64_t field(const struct wp_config *cfg, size_t off, size_t width)
{
	const char *p = (const char *)cfg + off;

	switch (width) {
	case sizeof(uint64_t):
		return *(const uint64_t *)p;
	case sizeof(unsigned):
		return *(const unsigned *)p;
	case sizeof(uint16_t):
		return *(const uint16_t *)p;
	default:
		return *(const uint8_t *)p;
	}
}

static void check_str(const char *s, size_t cap)
{
	if (memchr(s, '\0', cap) == NULL)
		abort();
}

static void check_bounds(const struct wp_config *c)
{
	if (c->workers < 1 || c->workers > WP_MAX_WORKERS || c->n_ports < 1 ||
	    c->n_ports > WP_MAX_PORTS || c->eal_nargs > WP_MAX_EAL_ARGS ||
	    c->cluster.n_gateways > WP_MAX_SERVED_GATEWAYS ||
	    c->tls.n_aliases > WP_MAX_TD_ALIASES || c->kubernetes.n_addresses > WP_MAX_STATUS_ADDRS)
		abort();
	if (c->poll_first_sleep_us > c->poll_sleep_us ||
	    c->kubernetes.backoff_base_ms > c->kubernetes.backoff_max_ms)
		abort();
	for (unsigned i = 0; i < c->n_ports; i++) {
		const struct wp_port_config *p = &c->ports[i];

		check_str(p->device, sizeof(p->device));
		if (!p->device[0] || p->ip.family != WP_AF_INET || p->prefix < 1 ||
		    p->prefix > 32 || p->mtu < 576 || p->mtu > 9000 ||
		    (p->gateway.family != 0 && p->gateway.family != WP_AF_INET))
			abort();
	}
	const double fr[] = {c->fault.rx_drop, c->fault.rx_dup, c->fault.rx_reorder,
	                     c->fault.tx_drop, c->fault.tx_dup, c->fault.tx_reorder};
	for (size_t i = 0; i < WP_ARRAY_SIZE(fr); i++)
		if (!(fr[i] >= 0.0 && fr[i] <= 1.0))
			abort();
	check_str(c->eal_lcores, sizeof(c->eal_lcores));
	check_str(c->eal_file_prefix, sizeof(c->eal_file_prefix));
	check_str(c->eal_log_level, sizeof(c->eal_log_level));
	for (unsigned i = 0; i < c->eal_nargs; i++)
		check_str(c->eal_args[i], sizeof(c->eal_args[i]));
	check_str(c->cluster.manifest_dir, sizeof(c->cluster.manifest_dir));
	check_str(c->cluster.gateway_class, sizeof(c->cluster.gateway_class));
	check_str(c->cluster.cluster_domain, sizeof(c->cluster.cluster_domain));
	for (unsigned i = 0; i < c->cluster.n_gateways; i++) {
		const char *g = c->cluster.gateways[i], *slash = strchr(g, '/');

		check_str(g, sizeof(c->cluster.gateways[i]));
		if (slash == NULL || slash == g || !slash[1] || strchr(slash + 1, '/'))
			abort();
	}
	for (unsigned i = 0; i < c->tls.n_aliases; i++)
		if (!c->tls.aliases[i][0])
			abort();
	if (!c->tls.trust_domain[0] || !c->kubernetes.controller_name[0] ||
	    !c->kubernetes.service_name[0])
		abort();
	if (c->admin.address.family != WP_AF_INET)
		abort();
}

/* The path of an override as the loader walks it (empty segments dropped,
 * as strtok does), in key; false when it does not fit. */
static bool key_of(const char *s, size_t len, char *key, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.' && (o == 0 || key[o - 1] == '.'))
			continue;
		if (o + 1 >= cap)
			return false;
		key[o++] = s[i];
	}
	if (o > 0 && key[o - 1] == '.')
		o--;
	key[o] = '\0';
	return true;
}

/* The last override of each known integer key must read back verbatim. */
static void check_overrides(const struct wp_config *cfg, const char *const *sets, unsigned n)
{
	for (size_t k = 0; k < WP_ARRAY_SIZE(int_keys); k++) {
		const char *val = NULL;
		long long v;
		char *end;

		for (unsigned i = 0; i < n; i++) {
			const char *eq = strchr(sets[i], '=');
			char key[128];

			if (eq && key_of(sets[i], (size_t)(eq - sets[i]), key, sizeof(key)) &&
			    !strcmp(key, int_keys[k].key))
				val = eq + 1;
		}
		if (val == NULL || !*val)
			continue;
		errno = 0;
		v = strtoll(val, &end, 0);
		if (*end || errno || v < 0)
			continue; /* not a number the loader could have accepted */
		if (field(cfg, int_keys[k].off, int_keys[k].width) != (uint64_t)v)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wp_config a, b;
	char *buf, err_a[WP_CONFIG_ERRLEN], err_b[WP_CONFIG_ERRLEN];
	const char *sets[MAX_SETS];
	unsigned n_sets = 0;
	size_t flen;
	int rc_a, rc_b;

	if (size > 65536)
		return 0;
	if (fd < 0) {
		fd = memfd_create("fuzz_config", 0);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	buf = malloc(size + 1);
	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	flen = strlen(buf);
	for (size_t off = flen + 1; off < size + 1 && n_sets < MAX_SETS;
	     off += strlen(buf + off) + 1)
		sets[n_sets++] = buf + off;
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, flen, 0) != (ssize_t)flen)
		abort();

	memset(err_a, 0, sizeof(err_a));
	memset(err_b, 0x55, sizeof(err_b));
	err_b[0] = '\0';
	rc_a = wp_config_load(path, sets, n_sets, &a, err_a, sizeof(err_a));
	rc_b = wp_config_load(path, sets, n_sets, &b, err_b, sizeof(err_b));
	if (rc_a != rc_b || strcmp(err_a, err_b) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
		abort();
	if (rc_a == 0) {
		if (err_a[0])
			abort();
		check_bounds(&a);
		check_overrides(&a, sets, n_sets);
	} else {
		if (rc_a != -EINVAL || !err_a[0] || memchr(err_b, '\0', sizeof(err_b)) == NULL)
			abort();
		if (strncmp(err_a, path, strlen(path)) != 0 && strncmp(err_a, "--set", 5) != 0)
			abort();
	}
	free(buf);
	return 0;
}
