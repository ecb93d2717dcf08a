/*
 * waypointd's configuration: the libconfig file (conf/waypoint.conf) plus
 * --set overrides, validated into one plain struct that the rest of the
 * process reads. Every error names the file (or "--set"), the line and the
 * key, so an operator can fix it without reading code.
 */
#ifndef WP_CONFIG_H
#define WP_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "wp/addr_types.h"
#include "wp/tls_suites.h"

#define WP_MAX_PORTS     8
#define WP_MAX_WORKERS   64
#define WP_MAX_EAL_ARGS  16
#define WP_CONFIG_ERRLEN 512

enum wp_poll_mode {
	WP_POLL_BUSY,
	WP_POLL_ADAPTIVE,
};

/*
 * ports.[N].checksum_offload, ports.[N].tso and ports.[N].lro: who computes
 * and verifies TCP checksums, who cuts large TCP segments to the MSS, who
 * joins received ones.
 */
enum wp_offload {
	WP_OFFLOAD_AUTO = 0, /* the device, when it is a NIC / VF that can */
	WP_OFFLOAD_ON,       /* the device (its driver), or fail to start */
	WP_OFFLOAD_OFF,      /* waypointd */
};

struct wp_port_config {
	char device[256];       /* DPDK device string: vdev args or PCI address */
	struct wp_addr ip;      /* the appliance's address on this port */
	uint8_t prefix;         /* on-link prefix length */
	struct wp_addr gateway; /* default route; family NONE = none */
	uint16_t mtu;
	uint16_t rx_desc;
	uint16_t tx_desc;
	bool diag; /* TCP echo (7), discard (9) and source (19) services */
	enum wp_offload cksum_offload;
	enum wp_offload tso; /* TCP segmentation offload */
	enum wp_offload lro; /* the device joins received TCP segments */
	bool gro;            /* receive coalescing: one delivery and ACK per flow per burst */
};

/* The per-worker TCP stack's limits (dp/net/tcp); per worker and port. */
struct wp_tcp_limits {
	unsigned max_conns;      /* control blocks */
	unsigned syn_backlog;    /* per listener, before SYN cookies */
	unsigned accept_backlog; /* per listener */
	unsigned time_wait_max;  /* compact TIME_WAIT entries */
	unsigned time_wait_ms;
	unsigned rcv_buf;     /* bytes per connection (the largest window) */
	unsigned snd_buf;     /* bytes per connection */
	unsigned buffers;     /* receive and send buffers each, in the pool */
	unsigned keepalive_s; /* 0 = off */
};

struct wp_fault_config {
	double rx_drop, rx_dup, rx_reorder; /* fractions 0..1 */
	double tx_drop, tx_dup, tx_reorder;
	uint64_t seed;
};

#define WP_MAX_SERVED_GATEWAYS 64

/* cluster.manifest_dir when the file does not set it (also `wpctl analyze`'s
 * default directory). */
#define WP_DEFAULT_MANIFEST_DIR "conf/cluster"

/* What the control plane watches and serves (cp/, DESIGN §2). */
struct wp_cluster_config {
	char manifest_dir[PATH_MAX]; /* "" = no manifest source */
	char gateway_class[128];     /* serve every Gateway of this class; "" = none by class */
	unsigned n_gateways;         /* and these "ns/name" Gateways */
	char gateways[WP_MAX_SERVED_GATEWAYS][256];
	char cluster_domain[128];
	char root_namespace[64]; /* Istio's root namespace (GatewayClass-wide policies) */
	unsigned debounce_ms;
};

struct wp_admin_config {
	bool enabled;
	struct wp_addr address; /* kernel socket, loopback by default */
	uint16_t port;
	unsigned max_clients;        /* connections at once; one more gets 503 */
	unsigned request_timeout_ms; /* to send a request and read its answer */
	unsigned max_request_bytes;  /* head + body (431/414/413 beyond) */
};

/* Prometheus metrics (cp/admin, dp/obs/prom.c, wp/metrics.h). */
struct wp_metrics_config {
	bool enabled;
	struct wp_addr address;       /* kernel socket; 0.0.0.0 by default */
	uint16_t port;                /* Istio's merged-metrics port, 15020; 0 = any free port */
	uint16_t envoy_port;          /* Envoy's prometheus port, 15090; 0 = none */
	unsigned max_series_per_core; /* Istio label sets per core (HTTP, and TCP), then overflow */
	char cluster_id[64]; /* destination_cluster: Istio's CLUSTER_ID, "Kubernetes" by default */
};

/* The access log (wp/accesslog.h), as meshConfig.accessLogFile /
 * accessLogEncoding turn it on for Istio's proxies. */
struct wp_access_log_config {
	char file[PATH_MAX];   /* "" = off; "/dev/stdout" = standard output */
	bool json;             /* encoding = "JSON" (else "TEXT") */
	unsigned ring_entries; /* per core, to the writer thread; lines beyond are dropped */
};

/* Tracing (wp/tracing.h): spans of sampled requests exported to a
 * collector, as a Telemetry resource's tracing provider turns it on for
 * Istio's proxies. Off while collector is "". */
enum wp_trace_protocol {
	WP_TRACE_OTLP = 0, /* OTLP/HTTP JSON, POST /v1/traces */
	WP_TRACE_ZIPKIN,   /* Zipkin v2 JSON, POST /api/v2/spans */
};
struct wp_tracing_config {
	char collector[256];         /* "host:port" (a name, IPv4, or [IPv6]); "" = off */
	uint8_t protocol;            /* enum wp_trace_protocol */
	char path[256];              /* the collector's path; "" = the protocol's */
	uint32_t sampling_ppm;       /* randomSamplingPercentage, in millionths (1% = 10000) */
	char service_name[128];      /* service.name / localEndpoint.serviceName */
	char ns[64];                 /* istio.namespace: the waypoint's namespace */
	char canonical_revision[64]; /* istio.canonical_revision */
	char mesh_id[128];           /* istio.mesh_id */
	char node_id[256];           /* node_id tag ("" as Envoy without one) */
	char zone[64];               /* zone tag */
	unsigned ring_entries;       /* spans in flight per core; beyond: dropped */
	unsigned batch_spans;        /* spans per POST at most */
	unsigned flush_ms;           /* a batch waits at most this long */
	unsigned timeout_ms;         /* connect + send + answer of one POST */
};

/* mTLS material for HBONE (dp/tls): PEM files, reloaded when they change. */
#define WP_MAX_TD_ALIASES 8
struct wp_tls_files_config {
	char cert[PATH_MAX]; /* the waypoint's chain, leaf first */
	char key[PATH_MAX];
	char ca[PATH_MAX]; /* trusted roots */
	char trust_domain[256];
	unsigned n_aliases;
	char aliases[WP_MAX_TD_ALIASES][256];
	bool allow_tls12;               /* default false: TLS 1.3 only */
	bool session_tickets;           /* server side; default true */
	bool openssl_handshake;         /* inbound: OpenSSL runs every handshake; default false */
	unsigned ticket_key_rotation_s; /* ticket keys: a new one each period; default 3600 */
	unsigned reload_ms;             /* how often the files are checked; 0 = never */
	/* TLS 1.3 suites, preferred first (wp/tls_suites.h); default
	 * WP_TLS13_SUITES_DEFAULT */
	uint16_t suites13[WP_TLS13_SUITES_MAX];
	unsigned n_suites13;
};

/* The HBONE server (port 15008), originate pools and L4 tunnels (dp/tunnel). */
struct wp_hbone_listen_config {
	bool enabled;
	uint16_t port;
	unsigned max_streams;   /* concurrent CONNECT streams per connection */
	unsigned stream_window; /* bytes */
	unsigned conn_window;   /* bytes */
	unsigned ping_interval_ms;
	unsigned ping_timeout_ms;
	unsigned max_sessions;       /* HBONE connections (in + out) per worker */
	unsigned max_handshakes;     /* inbound ones in TCP+TLS set-up per worker */
	unsigned handshake_share;    /* % of a worker handshakes may take while other work waits */
	unsigned max_tunnels;        /* tunnels per worker */
	unsigned pool_streams;       /* streams per originated connection */
	unsigned connect_timeout_ms; /* upstream TCP + TLS */
	unsigned drain_timeout_ms;   /* SIGTERM: how long open tunnels may finish */
	unsigned memory_mb;          /* per-worker budget: HTTP/2 state + tunnel buffers */
	unsigned header_table_size;  /* HPACK table the peer may use towards us (0: none) */
};

/* The L7 proxies' per-worker pools (dp/l7): sessions are the client
 * tunnels of HTTP service ports, upstreams their pooled connections. Each
 * is capped at a quarter (HTTP/1.1) or an eighth (h2c) of
 * hbone.max_tunnels, since sessions and upstreams are tunnels too. A
 * CONNECT to an HTTP port that finds no session free is refused (503),
 * never served at L4 (its routes and policies would not apply). */
struct wp_l7_config {
	unsigned max_sessions;     /* HTTP/1.1 client tunnels (~180 KiB each) */
	unsigned max_upstreams;    /* HTTP/1.1 upstream connections */
	unsigned h2_max_sessions;  /* h2c / gRPC client tunnels */
	unsigned h2_max_upstreams; /* the h2c proxy's upstream connections */
};

/* The Kubernetes list/watch source and Gateway status writer (cp/kube). */
#define WP_MAX_STATUS_ADDRS 8
struct wp_kubernetes_config {
	bool enabled;               /* off: the manifest directory alone */
	char kubeconfig[PATH_MAX];  /* "" = in-cluster when KUBERNETES_SERVICE_HOST is set,
	                             * else $KUBECONFIG or ~/.kube/config */
	char context[128];          /* "" = the kubeconfig's current-context */
	char namespace[64];         /* watch one namespace; "" = all */
	bool status;                /* write Gateway status for the Gateways it owns */
	bool standalone;            /* no istiod: program every Gateway it serves */
	char controller_name[256];  /* our GatewayClass's controllerName */
	char service_name[64];      /* status.addresses Hostname <name>.<ns>.svc.<domain> */
	char service_namespace[64]; /* "" = the Gateway's namespace */
	unsigned n_addresses;       /* IPAddress entries instead of the Hostname */
	char addresses[WP_MAX_STATUS_ADDRS][64];
	unsigned page_limit;      /* items per LIST page */
	unsigned watch_timeout_s; /* server-side watch timeout, then rewatch */
	unsigned backoff_base_ms; /* first retry delay, doubling ... */
	unsigned backoff_max_ms;  /* ... up to this */
	unsigned sync_wait_ms;    /* start-up wait for the first full sync */
	unsigned max_event_bytes; /* longest watch event line (else relist) */
	unsigned max_list_bytes;  /* longest LIST page (else retry) */
	/* Leader election among the appliances of one waypoint (cp/kube/lease.c):
	 * only the holder of Lease lease_namespace/lease_name writes status. */
	bool leader_election;
	char lease_name[128];       /* "" = waypointd-<cluster.gateway_class>, else
	                             * waypointd-<service_name> */
	char lease_namespace[64];   /* "" = service_namespace, else the kubeconfig's or
	                             * pod's namespace, else "default" */
	char identity[128];         /* holderIdentity; "" = the host name */
	unsigned lease_duration_ms; /* client-go defaults: 15000, */
	unsigned renew_deadline_ms; /* 10000, */
	unsigned retry_period_ms;   /* 2000 */
	/* Membership (cp/kube/member.c): this appliance keeps a WorkloadEntry
	 * for itself, selected by the Service service_name, while it is ready;
	 * the Lease holder deletes entries not renewed for member_ttl_ms. */
	bool membership;
	char member_address[64];         /* "" = ports.[0].ip */
	char member_service_account[64]; /* "" = service_name */
	unsigned member_renew_ms;        /* 5000 */
	unsigned member_ttl_ms;          /* 15000 (> member_renew_ms) */
	unsigned deregister_grace_ms;    /* SIGTERM: deregistered, wait this long
	                                  * before the GOAWAY drain (5000) */
};

/*
 * The mesh identity from istiod's CA (cp/ca, wp/ca.h). When enabled, the
 * certificate and key are issued and renewed: the loader points tls.cert
 * and tls.key at <dir>/identity.pem and tls.ca at root_cert (whatever the
 * file said for them).
 */
struct wp_ca_config {
	bool enabled;
	char address[256];         /* istiod's CA, HOST:PORT */
	char server_name[256];     /* the name istiod's certificate must carry */
	char root_cert[PATH_MAX];  /* the mesh root (istio-ca-root-cert), re-read per call */
	char token_file[PATH_MAX]; /* service-account token, audience istio-ca; "" = none */
	char cluster_id[64];       /* the ClusterID header */
	char namespace[64];        /* our identity: spiffe://<tls.trust_domain>/ns/<>/sa/<> */
	char service_account[256];
	unsigned lifetime_s;      /* requested validity_duration */
	char dir[PATH_MAX];       /* private directory for identity.pem */
	unsigned timeout_ms;      /* one call */
	unsigned backoff_base_ms; /* first retry after a failure, doubling ... */
	unsigned backoff_max_ms;  /* ... up to this */
};

struct wp_config {
	char path[PATH_MAX]; /* the file it came from */

	unsigned workers;
	char eal_lcores[256];
	char eal_file_prefix[64];
	unsigned eal_memory_mb;
	bool eal_in_memory;
	bool eal_no_huge;
	char eal_log_level[32];
	unsigned eal_nargs;
	char eal_args[WP_MAX_EAL_ARGS][256];

	enum wp_poll_mode poll_mode;
	unsigned poll_idle_polls;
	unsigned poll_sleep_us;       /* adaptive: the longest sleep */
	unsigned poll_first_sleep_us; /* adaptive: the first; doubled per idle sleep */

	unsigned n_ports;
	struct wp_port_config ports[WP_MAX_PORTS];

	unsigned mbufs_per_worker;
	unsigned arp_entries;
	unsigned arp_pending;
	unsigned arp_ttl_s;

	struct wp_fault_config fault;
	struct wp_tcp_limits tcp;
	struct wp_cluster_config cluster;
	struct wp_admin_config admin;
	struct wp_metrics_config metrics;
	struct wp_access_log_config access_log;
	struct wp_tracing_config tracing;
	struct wp_kubernetes_config kubernetes;
	struct wp_tls_files_config tls;
	struct wp_hbone_listen_config hbone;
	struct wp_l7_config l7;
	struct wp_ca_config ca;
};

/*
 * Reads <path>, applies the <n_sets> "path=value" overrides in order, and
 * validates the result into *cfg. Returns 0, or -EINVAL with a message of the
 * form "FILE:LINE: key 'x.y': problem" in err.
 */
int wp_config_load(const char *path, const char *const *sets, unsigned n_sets,
                   struct wp_config *cfg, char *err, size_t errlen);

/*
 * Checks what a loaded *cfg names outside itself as start-up uses it: the
 * manifest directory (cluster.manifest_dir, when set) opens; with
 * kubernetes.enabled, the kubeconfig (or in-cluster credentials) loads;
 * with hbone.enabled, tls.cert, tls.key and tls.ca read as PEM and the key
 * matches the certificate. Returns 0, or -EINVAL/-ENOMEM with "FILE: key
 * 'k' (PATH): problem" in err (cp/config/check.c; waypointd --check-config
 * and start-up).
 */
int wp_config_check_files(const struct wp_config *cfg, char *err, size_t errlen);

#endif /* WP_CONFIG_H */
