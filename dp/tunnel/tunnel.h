/*
 * Tunnels: the HBONE data plane glue (issue 5). Per worker it runs
 *
 *   inbound  an HBONE server on port 15008 of every port's user-space TCP
 *            stack: TCP -> TLS 1.3 (dp/tls, client certificate required) ->
 *            HTTP/2 (dp/hbone) -> one CONNECT stream per tunnel;
 *   policy   the :authority looked up in the current snapshot (400 when not
 *            captured), an endpoint picked round robin (503 when none);
 *   upstream plaintext TCP to podIP:port, or HBONE originate (TLS with the
 *            waypoint's own certificate to podIP:15008, CONNECT
 *            podIP:targetPort) when the endpoint is ambient, over per-worker
 *            pooled connections of up to hbone.pool_streams streams;
 *   splice   bytes both ways with end-to-end flow control: a stream's
 *            window reopens only as the other side takes its bytes, and TCP
 *            sources are read only as fast as the other side accepts, so a
 *            slow reader slows the writer and nothing grows without bound.
 *
 * 200 is sent only once the upstream is connected (TCP established, or the
 * destination answered 200). Half-close maps to FIN / END_STREAM, resets to
 * RST / RST_STREAM. Drain: GOAWAY on SIGTERM (wp_tunnel_shared.drain) and
 * when a Gateway a connection served leaves the snapshot.
 *
 * Threads: struct wp_tunnel_shared is built on the main thread and read by
 * every worker (the TLS store is RCU-published); struct wp_tunnel_worker is
 * one worker's and only that worker touches it, except the gauges.
 */
#ifndef WP_DP_TUNNEL_H
#define WP_DP_TUNNEL_H

#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "hbone.h"
#include "telemetry.h"
#include "tls.h"
#include "hsgate.h"
#include "wp/common.h"
#include "wp/config.h"
#include "wp/stats_types.h"

struct wp_tunnel_worker;

/* What every worker shares (read-only for workers but the RCU store). */
struct wp_tunnel_shared {
	const struct wp_config *cfg;
	struct wp_tls_store tls;
	struct wp_hbone_config h2;
	volatile const bool *drain; /* set by the main thread on SIGTERM */
	struct wp_outlier *outlier; /* outlier ejections, every worker's (dp/l7/outlier.h); lives
	                             * until exit: the telemetry thread reads it */
	/* TLS reload, main thread only */
	uint64_t next_check_ms;
	uint64_t reload_failures; /* failed reloads; workers count them (tls_reload_failed) */
	bool reload_failing;      /* the last attempt failed (logged once per streak) */
	struct wp_tls_ctx *retired;
	uint64_t retired_loops[WP_MAX_WORKERS];
};

/* Per-worker occupancy; written by the worker, read by anyone. */
struct wp_tunnel_gauges {
	uint64_t sessions_in;  /* inbound HBONE connections */
	uint64_t sessions_out; /* originated HBONE connections */
	uint64_t tunnels;      /* open tunnels */
	uint64_t queued_bytes; /* tunnel bytes waiting for a slow side */
	uint64_t h2_live;      /* HTTP/2 + tunnel buffer bytes held (wp_h2mem) */
	uint64_t h2_slab;      /* slabs carved by the worker's allocator */
	int64_t tls_live;      /* OpenSSL bytes allocated by this worker's thread */
	struct wp_hsgate hs;   /* inbound connections in TCP+TLS set-up (hbone.max_handshakes) */
};

/*
 * Loads the TLS material named by cfg->tls and prepares the HTTP/2
 * settings. <cfg> and <drain> must outlive it. 0 or -errno (message on
 * stderr).
 */
int wp_tunnel_shared_init(struct wp_tunnel_shared *sh, const struct wp_config *cfg,
                          volatile const bool *drain) WP_MUST_CHECK;

/*
 * Main thread, periodically: reloads the certificate, key and roots when
 * their files changed (every tls.reload_ms), and frees a replaced context
 * once every worker finished the loop iteration it might have read it in
 * (stats[i]->loops, one per worker, n of them). Returns 1 when a new
 * context was published, 0 otherwise, -errno when a reload failed (the old
 * context stays).
 */
int wp_tunnel_shared_tick(struct wp_tunnel_shared *sh, struct wp_stats *const *stats, unsigned n,
                          uint64_t now_ms);

/* After the workers stopped. */
void wp_tunnel_shared_fini(struct wp_tunnel_shared *sh);

/*
 * Creates a worker's tunnel state over its I/O interface <io> (dp/app/app.h;
 * it must outlive the tunnels) and listens on hbone.port on each of its
 * ports (start-up, before the lcore runs). NULL on failure. The worker
 * then runs it with wp_tunnel_app_ops (wp_worker_add_app).
 */
struct wp_tunnel_worker *wp_tunnel_worker_create(const struct wp_app_io *io,
                                                 struct wp_tunnel_shared *sh);

/* wp_tunnel_poll, _stop, _destroy and the gauges, for the worker (app = the tunnel worker). */
extern const struct wp_app_ops wp_tunnel_app_ops;

/* Worker lcore, once per loop iteration. Returns work done (0 = idle). */
unsigned wp_tunnel_poll(struct wp_tunnel_worker *tw, uint64_t now_us);

/* Worker lcore, at exit: aborts every connection it still holds. */
void wp_tunnel_worker_stop(struct wp_tunnel_worker *tw);

/* After the lcore returned (before the TCP stacks go). NULL is a no-op. */
void wp_tunnel_worker_destroy(struct wp_tunnel_worker *tw);

/* Adds <tw>'s gauges into <sum> (any thread; the handshake peak is a maximum). */
void wp_tunnel_worker_gauges_add(const struct wp_tunnel_worker *tw,
                                 struct wp_telemetry_tunnels *sum);

/* Inbound connections + tunnels still open (any thread): the drain waits for 0. */
uint64_t wp_tunnel_worker_active(const struct wp_tunnel_worker *tw);

#endif /* WP_DP_TUNNEL_H */
