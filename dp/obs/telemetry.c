/*
 * DPDK telemetry commands for waypointd (see telemetry.h). Telemetry
 * callbacks take no user argument in DPDK 22.11, so the worker table lives
 * in this file's one static registry, written once before the workers start
 * and only read afterwards. The control plane's counters come through a
 * hook that the process sets and clears (under a lock: the control plane
 * goes away before the telemetry thread does).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_telemetry.h>

#include "snapview.h"
#include "telemetry.h"
#include "wp/common.h"

static struct {
	struct wp_stats *const *stats;
	const unsigned *lcores;
	unsigned n;
	uint64_t tsc_hz;
} reg;

static struct {
	pthread_mutex_t lock;
	wp_telemetry_cp_cb fn;
	void *ctx;
} cp_hook = {.lock = PTHREAD_MUTEX_INITIALIZER};

void wp_telemetry_set_cp(wp_telemetry_cp_cb fn, void *ctx)
{
	pthread_mutex_lock(&cp_hook.lock);
	cp_hook.fn = fn;
	cp_hook.ctx = ctx;
	pthread_mutex_unlock(&cp_hook.lock);
}

/* The control plane's counters into out (all 0 without a hook). */
static void cp_counters(uint64_t *out)
{
	memset(out, 0, sizeof(uint64_t) * WP_CTR_MAX);
	pthread_mutex_lock(&cp_hook.lock);
	if (cp_hook.fn)
		cp_hook.fn(cp_hook.ctx, out);
	pthread_mutex_unlock(&cp_hook.lock);
}

static inline uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Sums the workers named by ids[0..n) into *out. */
static void sum(const unsigned *ids, unsigned n, struct wp_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned k = 0; k < n; k++) {
		const struct wp_stats *s = reg.stats[ids[k]];

		out->rx_pkts += load(&s->rx_pkts);
		out->rx_bytes += load(&s->rx_bytes);
		out->tx_pkts += load(&s->tx_pkts);
		out->tx_bytes += load(&s->tx_bytes);
		out->busy_cycles += load(&s->busy_cycles);
		out->idle_cycles += load(&s->idle_cycles);
		out->io_cycles += load(&s->io_cycles);
		out->loops += load(&s->loops);
		out->busy_loops += load(&s->busy_loops);
		out->tcp_conns += load(&s->tcp_conns);
		out->tcp_established += load(&s->tcp_established);
		out->tcp_time_wait += load(&s->tcp_time_wait);
		out->tcp_rcv_bufs += load(&s->tcp_rcv_bufs);
		out->tcp_snd_bufs += load(&s->tcp_snd_bufs);
		out->hbone_conns += load(&s->hbone_conns);
		out->tunnels += load(&s->tunnels);
		for (unsigned i = 0; i < WP_CTR_MAX; i++)
			out->ctr[i] += load(&s->ctr[i]);
	}
}

/*
 * A telemetry dict holds at most RTE_TEL_MAX_DICT_ENTRIES values, fewer than
 * we have counters, so the counters travel in one nested dict per name
 * prefix ("tcp", "tls", "tunnel", ...), each holding the counters' full
 * names: {"tcp": {"tcp_rst_sent": 3, ...}, ...}. Readers flatten them.
 */
static void add_counter_groups(struct rte_tel_data *d, const struct wp_stats *s,
                               const char *const *only)
{
	struct group {
		char prefix[24];
		struct rte_tel_data *c;
	} groups[RTE_TEL_MAX_DICT_ENTRIES / 2];
	unsigned n = 0;

	for (unsigned i = 0; i < WP_CTR_MAX; i++) {
		const char *name = wp_ctr_info[i].name;
		size_t plen = strcspn(name, "_");
		unsigned g;

		if (plen >= sizeof(groups[0].prefix))
			plen = sizeof(groups[0].prefix) - 1;
		if (only) {
			const char *const *o = only;

			while (*o && (strlen(*o) != plen || strncmp(*o, name, plen)))
				o++;
			if (!*o)
				continue;
		}
		for (g = 0; g < n; g++)
			if (strlen(groups[g].prefix) == plen &&
			    !strncmp(groups[g].prefix, name, plen))
				break;
		if (g == n) {
			if (n == WP_ARRAY_SIZE(groups))
				continue; /* cannot happen with today's prefixes; counted nowhere */
			groups[n].c = rte_tel_data_alloc();
			if (groups[n].c == NULL)
				continue;
			memcpy(groups[n].prefix, name, plen);
			groups[n].prefix[plen] = '\0';
			rte_tel_data_start_dict(groups[n].c);
			n++;
		}
		rte_tel_data_add_dict_u64(groups[g].c, name, s->ctr[i]);
	}
	for (unsigned g = 0; g < n; g++)
		if (rte_tel_data_add_dict_container(d, groups[g].prefix, groups[g].c, 0) != 0)
			rte_tel_data_free(groups[g].c);
}

/* The sum of the DROP rows: every packet or request discarded. */
static uint64_t drops(const struct wp_stats *s)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < WP_CTR_MAX; i++)
		if (wp_ctr_info[i].kind == WP_CTR_KIND_DROP)
			n += s->ctr[i];
	return n;
}

static void fill(struct rte_tel_data *d, const struct wp_stats *s)
{
	rte_tel_data_add_dict_u64(d, "rx_packets", s->rx_pkts);
	rte_tel_data_add_dict_u64(d, "rx_bytes", s->rx_bytes);
	rte_tel_data_add_dict_u64(d, "tx_packets", s->tx_pkts);
	rte_tel_data_add_dict_u64(d, "tx_bytes", s->tx_bytes);
	rte_tel_data_add_dict_u64(d, "busy_cycles", s->busy_cycles);
	rte_tel_data_add_dict_u64(d, "idle_cycles", s->idle_cycles);
	rte_tel_data_add_dict_u64(d, "io_cycles", s->io_cycles);
	rte_tel_data_add_dict_u64(d, "loops", s->loops);
	rte_tel_data_add_dict_u64(d, "busy_loops", s->busy_loops);
	rte_tel_data_add_dict_u64(d, "tcp_conns", s->tcp_conns);
	rte_tel_data_add_dict_u64(d, "tcp_established", s->tcp_established);
	rte_tel_data_add_dict_u64(d, "tcp_time_wait", s->tcp_time_wait);
	rte_tel_data_add_dict_u64(d, "tcp_rcv_bufs", s->tcp_rcv_bufs);
	rte_tel_data_add_dict_u64(d, "tcp_snd_bufs", s->tcp_snd_bufs);
	rte_tel_data_add_dict_u64(d, "hbone_conns", s->hbone_conns);
	rte_tel_data_add_dict_u64(d, "tunnels", s->tunnels);
	rte_tel_data_add_dict_u64(d, "drops", drops(s));
	add_counter_groups(d, s, NULL);
}

static int cmd_info(const char *cmd WP_UNUSED, const char *params WP_UNUSED, struct rte_tel_data *d)
{
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_string(d, "version", WP_VERSION);
	rte_tel_data_add_dict_u64(d, "workers", reg.n);
	rte_tel_data_add_dict_u64(d, "tsc_hz", reg.tsc_hz);
	rte_tel_data_add_dict_u64(d, "counters", WP_CTR_MAX);
	return 0;
}

static int cmd_workers(const char *cmd WP_UNUSED, const char *params WP_UNUSED,
                       struct rte_tel_data *d)
{
	rte_tel_data_start_array(d, RTE_TEL_INT_VAL);
	for (unsigned i = 0; i < reg.n; i++)
		rte_tel_data_add_array_int(d, (int)i);
	return 0;
}

static int cmd_worker(const char *cmd WP_UNUSED, const char *params, struct rte_tel_data *d)
{
	struct wp_stats s;
	unsigned id;
	char *end;

	if (params == NULL || *params == '\0')
		return -EINVAL;
	id = (unsigned)strtoul(params, &end, 10);
	if (*end != '\0' || id >= reg.n)
		return -EINVAL;
	sum(&id, 1, &s);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "worker", id);
	rte_tel_data_add_dict_u64(d, "lcore", reg.lcores[id]);
	fill(d, &s);
	return 0;
}

static int cmd_stats(const char *cmd WP_UNUSED, const char *params WP_UNUSED,
                     struct rte_tel_data *d)
{
	unsigned ids[WP_MAX_TEL_WORKERS];
	uint64_t cp[WP_CTR_MAX];
	struct wp_stats s;

	for (unsigned i = 0; i < reg.n; i++)
		ids[i] = i;
	sum(ids, reg.n, &s);
	cp_counters(cp);
	for (unsigned i = 0; i < WP_CTR_MAX; i++)
		s.ctr[i] += cp[i];
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "workers", reg.n);
	fill(d, &s);
	return 0;
}

static int cmd_cp(const char *cmd WP_UNUSED, const char *params WP_UNUSED, struct rte_tel_data *d)
{
	/* the name prefixes of the control plane's rows (cp.def, kube.def, ca.def) */
	static const char *const groups[] = {"cp", "admin", "kube", "ca", NULL};
	struct wp_stats s; /* only ctr is used */

	cp_counters(s.ctr);
	rte_tel_data_start_dict(d);
	add_counter_groups(d, &s, groups);
	return 0;
}

int wp_telemetry_register(struct wp_stats *const *stats, const unsigned *lcores, unsigned n,
                          uint64_t tsc_hz)
{
	if (n == 0 || n > WP_MAX_TEL_WORKERS)
		return -EINVAL;
	reg.stats = stats;
	reg.lcores = lcores;
	reg.n = n;
	reg.tsc_hz = tsc_hz;
	if (rte_telemetry_register_cmd("/wp/info", cmd_info, "waypointd version and workers") ||
	    rte_telemetry_register_cmd("/wp/workers", cmd_workers, "list of worker ids") ||
	    rte_telemetry_register_cmd("/wp/worker", cmd_worker,
	                               "one worker's statistics. Parameters: int worker_id") ||
	    rte_telemetry_register_cmd("/wp/stats", cmd_stats,
	                               "statistics summed over workers, and the control plane's "
	                               "counters") ||
	    rte_telemetry_register_cmd("/wp/cp", cmd_cp, "the control plane's counters") ||
	    wp_snapview_register(n))
		return -EEXIST;
	return 0;
}

/* ---- /wp/tunnels ---------------------------------------------------------------------------- */

static struct {
	const void *const *apps;
	unsigned n;
	wp_telemetry_tunnels_cb add;
} tun_reg;

static int cmd_tunnels(const char *cmd WP_UNUSED, const char *params WP_UNUSED,
                       struct rte_tel_data *d)
{
	struct wp_telemetry_tunnels s;

	memset(&s, 0, sizeof(s));
	for (unsigned i = 0; i < tun_reg.n; i++)
		if (tun_reg.apps[i] != NULL)
			tun_reg.add(tun_reg.apps[i], &s);
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "sessions_in", s.sessions_in);
	rte_tel_data_add_dict_u64(d, "sessions_out", s.sessions_out);
	rte_tel_data_add_dict_u64(d, "tunnels", s.tunnels);
	rte_tel_data_add_dict_u64(d, "queued_bytes", s.queued_bytes);
	rte_tel_data_add_dict_u64(d, "h2_held_bytes", s.h2_held_bytes);
	rte_tel_data_add_dict_u64(d, "h2_slab_bytes", s.h2_slab_bytes);
	rte_tel_data_add_dict_u64(d, "tls_live_bytes",
	                          s.tls_live_bytes > 0 ? (uint64_t)s.tls_live_bytes : 0);
	/* hbone.max_handshakes is per worker: the peak is the highest one. */
	rte_tel_data_add_dict_u64(d, "handshakes", s.handshakes);
	rte_tel_data_add_dict_u64(d, "handshakes_peak", s.handshakes_peak);
	return 0;
}

int wp_telemetry_tunnels_register(const void *const *apps, unsigned n, wp_telemetry_tunnels_cb add)
{
	tun_reg.apps = apps;
	tun_reg.n = n;
	tun_reg.add = add;
	return rte_telemetry_register_cmd("/wp/tunnels", cmd_tunnels,
	                                  "HBONE connections, tunnels and their memory, summed "
	                                  "over workers") == 0
	               ? 0
	               : -EEXIST;
}
