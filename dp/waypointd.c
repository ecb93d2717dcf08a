/*
 * waypointd: the process. Reads the configuration, initialises the EAL and
 * the ports, registers telemetry, launches one worker per worker lcore and
 * keeps the main lcore for the control plane. SIGINT/SIGTERM stop the
 * workers, close the ports (a TAP interface disappears with its port) and
 * exit 0. With HBONE on, SIGTERM first drains: GOAWAY on every inbound
 * connection, then up to hbone.drain_timeout_ms for open tunnels to finish
 * (a second signal cuts it short). With kubernetes.membership the
 * appliance is an endpoint of the waypoint's Service once it is ready, and
 * SIGTERM deregisters it before anything else, then waits
 * kubernetes.deregister_grace_ms for the ztunnels to stop choosing it.
 *
 * With ca.enabled the certificate comes from istiod's CA (wp/ca.h): the
 * client thread starts before the data path and main waits for its first
 * certificate before loading the TLS files.
 *
 * Under systemd (Type=notify, wp/sdnotify.h) it says READY=1 once the ports
 * are up, the workers run and the first snapshot is published, and
 * STOPPING=1 when SIGTERM starts the drain. SIGHUP (ExecReload) reloads
 * what can change while running and logs what needs a restart: see
 * on_reload().
 *
 * Its log lines, and DPDK's (dpdk_log_stream()), go through wp/log.h: with
 * syslog priorities when stdout or stderr is the journal.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>

#include "diag_client.h"
#include "outlier.h"
#include "prom.h"
#include "telemetry.h"
#include "port.h"
#include "tunnel.h"
#include "worker.h"
#include "wp/addr.h"
#include "wp/accesslog.h"
#include "wp/ca.h"
#include "wp/config.h"
#include "wp/cp.h"
#include "wp/log.h"
#include "wp/sdnotify.h"
#include "wp/snapshot.h"
#include "wp/source.h"
#include "wp/tracing.h"

#define MAX_SETS 64

static volatile bool quit, stop, drain, hup;
static char runtime_dir[PATH_MAX];         /* the EAL's, removed at exit once empty */
static struct wp_alog_writer *alog_writer; /* set before SIGUSR1 is handled */

static void on_signal(int sig)
{
	if (sig == SIGHUP) {
		hup = true;
		return;
	}
	if (sig == SIGUSR1) { /* logrotate: the access log reopens its file */
		wp_alog_writer_reopen(alog_writer);
		return;
	}
	if (stop)
		quit = true; /* a second signal: no more waiting for the drain */
	stop = true;
}

/* The groups of waypoint.conf in the order struct wp_config holds them:
 * each runs from its first member to the next group's (the last one to the
 * end), for telling which of them a SIGHUP found changed. */
#define GROUP(name, first)                                                                         \
	{                                                                                          \
		name, offsetof(struct wp_config, first)                                            \
	}
static const struct {
	const char *name;
	size_t from;
} groups[] = {
        GROUP("workers", workers),
        GROUP("eal", eal_lcores),
        GROUP("polling", poll_mode),
        GROUP("ports", n_ports),
        GROUP("mbufs_per_worker", mbufs_per_worker),
        GROUP("arp", arp_entries),
        GROUP("fault", fault),
        GROUP("tcp", tcp),
        GROUP("cluster", cluster),
        GROUP("admin", admin),
        GROUP("kubernetes", kubernetes),
        GROUP("tls", tls),
        GROUP("hbone", hbone),
        GROUP("ca", ca),
};
#undef GROUP

/*
 * SIGHUP. What changes while running is already picked up without it: the
 * manifest directory (inotify), the Kubernetes objects (watch), and the TLS
 * files (checked every tls.reload_ms); a SIGHUP makes that TLS check happen
 * now. waypoint.conf itself is read once at start (ports, pools and
 * lcores are sized from it), so the file is read again only to log which
 * groups differ from the running ones and need a restart, or why it does
 * not load. Every struct wp_config starts zeroed (wp_config_load), so
 * comparing bytes compares values.
 */
static void on_reload(const struct wp_config *cfg, const char *const *sets, unsigned n_sets,
                      struct wp_tunnel_shared *tunnels)
{
	static struct wp_config now;
	char err[WP_CONFIG_ERRLEN], changed[256] = "";
	size_t off = 0;

	if (wp_config_load(cfg->path, sets, n_sets, &now, err, sizeof(err)) != 0) {
		wp_log(WP_LOG_ERR, "waypointd: SIGHUP: %s; the running configuration stays\n", err);
	} else {
		for (size_t i = 0; i < WP_ARRAY_SIZE(groups) && off < sizeof(changed); i++) {
			size_t to =
			        i + 1 < WP_ARRAY_SIZE(groups) ? groups[i + 1].from : sizeof(now);

			if (memcmp((const char *)&now + groups[i].from,
			           (const char *)cfg + groups[i].from, to - groups[i].from))
				off += (size_t)snprintf(changed + off, sizeof(changed) - off,
				                        "%s%s", off ? ", " : "", groups[i].name);
		}
		if (off)
			wp_log_out(WP_LOG_NOTICE,
			           "waypointd: SIGHUP: %s changed (%s): restart to apply it\n",
			           cfg->path, changed);
		else
			wp_log_out(WP_LOG_INFO, "waypointd: SIGHUP: %s unchanged\n", cfg->path);
	}
	if (tunnels != NULL && cfg->tls.reload_ms == 0)
		wp_log_out(WP_LOG_NOTICE,
		           "waypointd: SIGHUP: tls.reload_ms = 0: the TLS files are not re-read\n");
	else if (tunnels != NULL)
		tunnels->next_check_ms = 0; /* the next tick checks the files */
}

/* DPDK's log, one message per write (rte_vlog flushes after each), to
 * stderr with the message's level: RTE_LOG_EMERG (1) .. RTE_LOG_DEBUG (8)
 * are syslog's 0 .. 7 plus one; the three above ERR count as errors, and
 * text written outside rte_log (dumps: no current level) as info. The
 * cookie remembers whether the last message ended its line (a few are
 * printed in pieces). */
static ssize_t dpdk_log_write(void *cookie, const char *buf, size_t len)
{
	bool *open_line = cookie;
	uint32_t lvl = rte_log_cur_msg_loglevel();
	enum wp_log_level level =
	        lvl >= RTE_LOG_EMERG && lvl <= RTE_LOG_DEBUG ? (int)lvl - 1 : WP_LOG_INFO;

	if (len == 0)
		return 0;
	wp_log_text(stderr, level < WP_LOG_ERR ? WP_LOG_ERR : level, buf, len, *open_line);
	*open_line = buf[len - 1] != '\n';
	return (ssize_t)len;
}

/* Before rte_eal_init, so that the EAL's own start-up messages take this
 * path too; on failure DPDK keeps its default (stdout). */
static void dpdk_log_stream(void)
{
	static bool open_line;
	FILE *f = fopencookie(&open_line, "w", (cookie_io_functions_t){.write = dpdk_log_write});

	if (f == NULL || rte_openlog_stream(f) != 0)
		wp_log(WP_LOG_WARNING, "waypointd: warning: DPDK's log keeps its own stream\n");
}

/* DPDK leaves its runtime directory (/var/run/dpdk/<eal.file_prefix>)
 * behind; its telemetry removes the socket in it from an exit handler.
 * Registered before the EAL starts, this one runs after that one. */
static void remove_runtime_dir(void)
{
	if (runtime_dir[0] != '\0')
		(void)rmdir(runtime_dir); /* fails, harmlessly, unless empty */
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* /wp/tunnels (dp/obs/telemetry.h) reads each worker's tunnel gauges. */
static void tunnels_add(const void *tw, struct wp_telemetry_tunnels *sum)
{
	wp_tunnel_worker_gauges_add(tw, sum);
}

/* The control plane's counters for telemetry (called on its thread). */
static void cp_counters(void *cp, uint64_t *out)
{
	wp_cp_counters(cp, out);
}

/* The Kubernetes source's counters, for the control plane to publish
 * (called on the control-plane thread, which owns the source). */
/* The control plane's extra counters: the Kubernetes source's (which
 * fills every row) plus the CA client's (added). */
struct extra_counters {
	struct wp_source *kube;
	struct wp_ca *ca;
	struct wp_trace_exporter *trace; /* the span exporter's TRACE_* counters */
};

static void extra_counters(void *arg, uint64_t *out)
{
	struct extra_counters *x = arg;

	if (x->kube != NULL)
		wp_kube_source_counters(x->kube, out);
	else
		memset(out, 0, sizeof(uint64_t) * WP_CTR_MAX);
	if (x->ca != NULL)
		wp_ca_counters(x->ca, out);
	wp_trace_exporter_counters(x->trace, out);
}

/* /stats/prometheus, rendered on the control-plane thread. */
static char *prometheus(void *prom, const uint64_t *cp_ctr, size_t *len)
{
	return wp_prom_render(prom, cp_ctr, len);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: waypointd [-c FILE] [--set path=value]... [--check-config]\n"
	           "\n"
	           "  -c, --config FILE    configuration file (default " WP_DEFAULT_CONFIG ")\n"
	           "  -s, --set PATH=VALUE override one key, e.g. --set workers=2 or\n"
	           "                       --set ports.[0].ip=198.18.0.2 (repeatable)\n"
	           "      --check-config   validate the configuration and exit\n"
	           "  -h, --help           this text\n"
	           "  -V, --version        print the version\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'}, {"set", required_argument, NULL, 's'},
	        {"check-config", no_argument, NULL, 'C'}, {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	static struct wp_config cfg;
	static struct wp_ports ports;
	static struct wp_steer steer;
	static struct wp_tunnel_shared tunnels;
	static struct extra_counters extra;
	bool hbone = false;
	const char *gateways[WP_MAX_SERVED_GATEWAYS];
	const char *td_aliases[WP_MAX_TD_ALIASES];
	struct wp_cp_config cpc;
	struct wp_cp *cp = NULL;
	const char *path = WP_DEFAULT_CONFIG;
	const char *sets[MAX_SETS];
	unsigned n_sets = 0, lcores[WP_MAX_WORKERS], id = 0, lcore;
	static struct wp_worker *workers[WP_MAX_WORKERS]; /* telemetry reads it until exit */
	static const void *tunnel_w[WP_MAX_WORKERS];      /* each worker's tunnels: telemetry too */
	struct wp_stats *stats[WP_MAX_WORKERS];
	static struct wp_metrics_core *cells[WP_MAX_WORKERS]; /* the scrapes read them until exit */
	static struct wp_alog_ring *alog_rings[WP_MAX_WORKERS]; /* access log: per worker */
	struct wp_prom *prom = NULL;
	bool check_only = false, ready = false;
	char err[WP_CONFIG_ERRLEN];
	struct sigaction sa;
	int opt, rc = 1;

	/* OpenSSL's allocations are counted per thread (tunnel memory gauges)
	 * and its freed blocks cached per thread (dp/tls/mem.c): this must
	 * come before anything allocates through OpenSSL. */
	(void)wp_tls_mem_accounting_enable();
	wp_log_init();
	while ((opt = getopt_long(argc, argv, "c:s:hV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 's':
			if (n_sets == MAX_SETS) {
				wp_log(WP_LOG_ERR, "waypointd: at most %d --set options\n",
				       MAX_SETS);
				return 2;
			}
			sets[n_sets++] = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("waypointd %s\n", WP_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		wp_log(WP_LOG_ERR, "waypointd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	/* Start-up would refuse what the checks refuse, later and less
	 * precisely: they run before anything starts, and for --check-config. */
	if (wp_config_load(path, sets, n_sets, &cfg, err, sizeof(err)) != 0 ||
	    wp_config_check_files(&cfg, err, sizeof(err)) != 0) {
		wp_log(WP_LOG_ERR, "waypointd: %s\n", err);
		return 1;
	}
	if (check_only) {
		printf("%s: configuration ok (%u workers, %u ports)\n", path, cfg.workers,
		       cfg.n_ports);
		return 0;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* before, it ended the process */
	sigaction(SIGUSR1, &sa, NULL);
	(void)wp_sdnotify_init(); /* before the EAL starts threads: it unsets variables */
	dpdk_log_stream();

	(void)atexit(remove_runtime_dir);
	if (wp_port_eal_init(&cfg, argv[0], err, sizeof(err)) != 0) {
		wp_log(WP_LOG_ERR, "waypointd: %s\n", err);
		return 1;
	}
	snprintf(runtime_dir, sizeof(runtime_dir), "%s", rte_eal_get_runtime_dir());
	if (wp_ports_start(&cfg, &ports, err, sizeof(err)) != 0) {
		wp_log(WP_LOG_ERR, "waypointd: %s\n", err);
		goto out_ports;
	}
	memset(&cpc, 0, sizeof(cpc));
	for (unsigned i = 0; i < cfg.cluster.n_gateways; i++)
		gateways[i] = cfg.cluster.gateways[i];
	cpc.manifest_dir = cfg.cluster.manifest_dir;
	cpc.served.n_gateways = cfg.cluster.n_gateways;
	cpc.served.gateways = gateways;
	cpc.served.class_name = cfg.cluster.gateway_class;
	cpc.served.cluster_domain = cfg.cluster.cluster_domain;
	cpc.served.root_ns = cfg.cluster.root_namespace;
	cpc.served.trust_domain = cfg.tls.trust_domain;
	cpc.served.n_aliases = cfg.tls.n_aliases;
	for (unsigned i = 0; i < cfg.tls.n_aliases; i++)
		td_aliases[i] = cfg.tls.aliases[i];
	cpc.served.aliases = td_aliases;
	cpc.admin_addr = cfg.admin.address;
	cpc.admin_port = cfg.admin.port;
	cpc.admin_disabled = !cfg.admin.enabled;
	cpc.admin_max_clients = cfg.admin.max_clients;
	cpc.admin_request_timeout_ms = cfg.admin.request_timeout_ms;
	cpc.admin_max_request_bytes = cfg.admin.max_request_bytes;
	cpc.metrics_enabled = cfg.metrics.enabled;
	cpc.metrics_addr = cfg.metrics.address;
	cpc.metrics_port = cfg.metrics.port;
	cpc.metrics_envoy_port = cfg.metrics.envoy_port;
	cpc.n_workers = cfg.workers;
	cpc.debounce_ms = cfg.cluster.debounce_ms;
	cpc.sync_wait_ms = cfg.kubernetes.sync_wait_ms;
	cp = wp_cp_create(&cpc);
	if (cp != NULL && cfg.kubernetes.enabled) {
		struct wp_source *ks = wp_kube_source_from_config(&cfg, err, sizeof(err));

		if (ks == NULL || wp_cp_add_source(cp, ks) != 0) {
			wp_log(WP_LOG_ERR, "waypointd: %s\n", ks ? "too many sources" : err);
			wp_source_destroy(ks);
			goto out_cp;
		}
		extra.kube = ks;
	}
	if (cp != NULL && cfg.ca.enabled) {
		/* Before the control plane starts: /certs and the counters see it. */
		extra.ca = wp_ca_start(&cfg);
		if (extra.ca == NULL)
			goto out_cp;
	}
	wp_ca_certs_register(extra.ca, cfg.tls.cert[0] ? cfg.tls.cert : NULL);
	if (cp != NULL && cfg.tracing.collector[0]) {
		/* before the control plane starts: its counters read the exporter */
		const struct wp_trace_resource res = {.cluster_id = cfg.metrics.cluster_id};

		extra.trace = wp_trace_exporter_start(&cfg.tracing, &res, cfg.workers);
		if (extra.trace == NULL) {
			wp_log(WP_LOG_ERR, "waypointd: cannot start the span exporter: %s\n",
			       strerror(errno));
			goto out_cp;
		}
	}
	if (cp != NULL)
		wp_cp_set_extra_counters(cp, extra_counters, &extra);
	if (cp == NULL || wp_cp_start(cp) != 0) {
		wp_log(WP_LOG_ERR, "waypointd: the control plane did not start (see above)\n");
		goto out_cp;
	}
	if (extra.ca != NULL) {
		/* The data path loads tls.cert once at start: it needs the first
		 * certificate (the CA thread retries with backoff and logs why). */
		(void)wp_sdnotify_send("STATUS=waiting for the first certificate from the CA");
		while (!stop && !wp_ca_ready(extra.ca))
			usleep(20000);
		if (stop)
			goto out_cp;
	}
	if (cfg.hbone.enabled) {
		if (wp_tunnel_shared_init(&tunnels, &cfg, &drain) != 0)
			goto out_cp;
		hbone = true;
	}
	if (wp_steer_create(&steer, cfg.workers) != 0) {
		wp_log(WP_LOG_ERR, "waypointd: cannot create the steering rings\n");
		goto out_cp;
	}
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		if (id == cfg.workers)
			break;
		workers[id] = wp_worker_create(id, lcore, &cfg, &ports, &steer, &quit);
		if (workers[id] == NULL) {
			wp_log(WP_LOG_ERR, "waypointd: cannot allocate worker %u\n", id);
			goto out_workers;
		}
		workers[id]->slot = wp_cp_slot(cp);
		/* the cells first: the tunnel worker's request pipeline records into them */
		cells[id] = wp_metrics_core_create(cfg.metrics.max_series_per_core,
		                                   workers[id]->stats.ctr);
		if (cells[id] == NULL) {
			wp_log(WP_LOG_ERR, "waypointd: cannot allocate worker %u's metric cells\n",
			       id);
			id++;
			goto out_workers;
		}
		workers[id]->metrics = cells[id];
		/* the access-log ring exists even when access_log.file is unset:
		 * a Telemetry resource can turn the log on for a waypoint */
		alog_rings[id] =
		        wp_alog_ring_create(cfg.access_log.ring_entries, workers[id]->stats.ctr);
		if (alog_rings[id] == NULL) {
			wp_log(WP_LOG_ERR,
			       "waypointd: cannot allocate worker %u's access-log ring\n", id);
			id++;
			goto out_workers;
		}
		workers[id]->alog = alog_rings[id];
		workers[id]->trace = wp_trace_exporter_ring(extra.trace, id); /* NULL: off */
		if (hbone) {
			struct wp_tunnel_worker *tw =
			        wp_tunnel_worker_create(wp_worker_io(workers[id]), &tunnels);

			if (tw == NULL ||
			    wp_worker_add_app(workers[id], &wp_tunnel_app_ops, tw) != 0) {
				wp_tunnel_worker_destroy(tw);
				wp_log(WP_LOG_ERR, "waypointd: cannot set up HBONE on worker %u\n",
				       id);
				id++;
				goto out_workers;
			}
			tunnel_w[id] = tw;
		}
		stats[id] = &workers[id]->stats;
		lcores[id] = lcore;
		id++;
	}
	/* without access_log.file, lines a Telemetry asks for go to stdout, as
	 * Istio's built-in envoy provider writes them */
	alog_writer = wp_alog_writer_start(alog_rings, cfg.workers, cfg.access_log.file,
	                                   cfg.access_log.json);
	if (alog_writer == NULL) {
		wp_log(WP_LOG_ERR, "waypointd: access_log.file %s: %s\n",
		       cfg.access_log.file[0] ? cfg.access_log.file : "(stdout)", strerror(errno));
		goto out_workers;
	}
	wp_telemetry_set_cp(cp_counters, cp);
	prom = wp_prom_create(stats, cells, cfg.workers, rte_get_tsc_hz());
	if (prom == NULL)
		wp_log(WP_LOG_WARNING,
		       "waypointd: warning: no memory for /stats/prometheus (503)\n");
	else
		wp_cp_set_prometheus(cp, prometheus, prom);
	if (wp_telemetry_register(stats, lcores, cfg.workers, rte_get_tsc_hz()) != 0 ||
	    wp_diag_client_register(workers, cfg.workers) != 0 ||
	    (hbone && wp_telemetry_tunnels_register(tunnel_w, cfg.workers, tunnels_add) != 0) ||
	    (hbone && wp_outlier_telemetry_register(tunnels.outlier) != 0))
		wp_log(WP_LOG_WARNING, "waypointd: warning: telemetry commands not registered\n");
	for (unsigned w = 0; w < cfg.workers; w++)
		rte_eal_remote_launch(wp_worker_main, workers[w], lcores[w]);
	for (unsigned i = 0; i < ports.n; i++) {
		char ip[WP_ADDR_STRLEN];

		const struct wp_port *p = &ports.port[i];
		const char *cksum = p->tx_tcp_cksum && p->rx_tcp_cksum ? "device"
		                    : p->tx_tcp_cksum                  ? "device on transmit"
		                    : p->rx_tcp_cksum                  ? "device on receive"
		                                                       : "software";

		wp_log_out(
		        WP_LOG_INFO,
		        "waypointd %s: port %s (%s, TCP segmentation: %s, TCP checksums: %s, "
		        "receive coalescing: %s, LRO: %s) %s/%u MTU %u, %u workers, %s polling\n",
		        WP_VERSION, p->name, p->rss ? "RSS" : "software steering",
		        p->tso ? "device (TSO)" : "software", cksum,
		        cfg.ports[i].gro ? "on" : "off", p->lro ? "device" : "off",
		        wp_addr_format(&cfg.ports[i].ip, ip, sizeof(ip)), cfg.ports[i].prefix,
		        cfg.ports[i].mtu, cfg.workers,
		        cfg.poll_mode == WP_POLL_BUSY ? "busy" : "adaptive");
	}
	wp_log_out(WP_LOG_INFO, "waypointd: TLS records: AES-GCM on %s, ChaCha20-Poly1305 on %s\n",
	           wp_tls_record_crypto(0x1301), wp_tls_record_crypto(0x1303));

	if (wp_snapshot_get(wp_cp_slot(cp)) == NULL)
		(void)wp_sdnotify_send("STATUS=ports up, waiting for the first snapshot");
	while (!stop) {
		usleep(20000);
		if (!ready && wp_snapshot_get(wp_cp_slot(cp)) != NULL) {
			ready = true;
			(void)wp_sdnotify_send("READY=1\nSTATUS=ports up, snapshot published");
			if (extra.kube) /* an endpoint of the waypoint Service from now */
				wp_kube_source_set_ready(extra.kube, true);
		}
		if (hup) {
			hup = false;
			on_reload(&cfg, sets, n_sets, hbone ? &tunnels : NULL);
		}
		if (hbone)
			(void)wp_tunnel_shared_tick(&tunnels, stats, cfg.workers, mono_ms());
	}
	(void)wp_sdnotify_send("STOPPING=1\nSTATUS=draining");
	if (extra.kube && cfg.kubernetes.membership && ready) {
		/* Out of the Service's endpoints first, then give the ztunnels
		 * the grace period to stop choosing us, then GOAWAY (never
		 * ready: never registered, nothing to wait for). */
		uint64_t until;
		bool gone = wp_kube_source_deregister(extra.kube, 5.0);

		wp_log_out(WP_LOG_INFO, "waypointd: %s; %u ms before the drain\n",
		           gone ? "deregistered from the waypoint Service"
		                : "deregistration not confirmed (the API server did not answer)",
		           cfg.kubernetes.deregister_grace_ms);
		until = mono_ms() + cfg.kubernetes.deregister_grace_ms;
		while (!quit && mono_ms() < until)
			usleep(20000);
	}
	if (hbone) {
		uint64_t until = mono_ms() + cfg.hbone.drain_timeout_ms, active = 0;

		drain = true;
		do {
			usleep(20000);
			active = 0;
			for (unsigned w = 0; w < cfg.workers; w++)
				active += wp_tunnel_worker_active(tunnel_w[w]);
		} while (active > 0 && !quit && mono_ms() < until);
		wp_log_out(WP_LOG_INFO,
		           "waypointd: drained%s (%llu connections and tunnels left)\n",
		           active ? " until the timeout" : "", (unsigned long long)active);
	}
	rc = 0;

out_workers:
	quit = true;
	rte_eal_mp_wait_lcore();
	wp_cp_set_prometheus(cp, NULL, NULL); /* before what it reads goes */
	wp_prom_destroy(prom);
	for (unsigned w = 0; w < cfg.workers; w++)
		wp_worker_destroy(workers[w]); /* (closing sessions may still log) */
	wp_alog_writer_stop(alog_writer);      /* writes what the rings hold */
	alog_writer = NULL;
	for (unsigned w = 0; w < cfg.workers; w++) {
		wp_metrics_core_destroy(cells[w]);
		wp_alog_ring_destroy(alog_rings[w]);
	}
	wp_steer_destroy(&steer);
	if (hbone)
		wp_tunnel_shared_fini(&tunnels);
out_cp:
	wp_telemetry_set_cp(NULL, NULL); /* before the counters it reads go */
	wp_cp_destroy(cp);
	wp_trace_exporter_stop(extra.trace); /* after the workers and the counters' reader */
	wp_ca_stop(extra.ca); /* after the control plane: /certs and its counters read it */
out_ports:
	wp_ports_stop(&ports);
	rte_eal_cleanup();
	return rc;
}
