/*
 * The diagnostic TCP client (see diag_client.h). The telemetry thread builds
 * a job (allocating its per-connection state there, off the data path) and
 * publishes it with one atomic pointer store; each worker notices the new
 * job on its next poll, opens its share of connections at a bounded rate,
 * and reports through its own counters and the job's per-worker totals.
 * A new job is accepted only once every worker finished the previous one,
 * so the previous job can be freed safely.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_malloc.h>
#include <rte_telemetry.h>

#include "diag_client.h"
#include "worker.h"
#include "wp/addr.h"

#define OPEN_PER_POLL 32
#define MAX_INFLIGHT  512 /* per worker: open connections at any time */
#define CHUNK         4096

struct client_conn {
	struct wp_worker *w;
	struct wp_tcp_conn *c;
	uint32_t k;
	uint64_t sent;
	uint64_t verified;
	uint8_t done; /* 0 running, 1 ok, 2 failed */
};

struct worker_share {
	struct client_conn *conns;
	uint32_t n;        /* connections this worker opens */
	uint32_t opened;   /* how many it opened so far */
	uint32_t finished; /* ok + failed */
	uint32_t ok, failed, mismatch;
	uint64_t bytes;
	volatile uint8_t done; /* the worker will not touch the job again */
} WP_CACHE_ALIGNED;

struct job {
	uint32_t id;
	uint32_t dst_ip; /* network order */
	uint16_t dst_port;
	uint32_t conns;
	uint64_t bytes;
	struct worker_share share[WP_MAX_WORKERS];
};

static struct {
	struct wp_worker *const *workers;
	unsigned n;
	struct job *job; /* the current job, published to workers */
	uint32_t next_id;
} reg;

/* ---- worker side ---------------------------------------------------------- */

static struct worker_share *share_of(struct wp_worker *w, struct job *j)
{
	return &j->share[w->id];
}

static void finish(struct client_conn *cc, bool ok)
{
	struct job *j = __atomic_load_n(&reg.job, __ATOMIC_ACQUIRE);
	struct worker_share *s = share_of(cc->w, j);

	if (cc->done)
		return;
	cc->done = ok ? 1 : 2;
	s->finished++;
	if (ok) {
		s->ok++;
		wp_ctr_inc(cc->w->stats.ctr, WP_CTR_DIAG_CLIENT_CONN_OK);
	} else {
		s->failed++;
		wp_ctr_inc(cc->w->stats.ctr, WP_CTR_DIAG_CLIENT_CONN_FAILED);
	}
}

static void push(struct client_conn *cc)
{
	struct job *j = __atomic_load_n(&reg.job, __ATOMIC_ACQUIRE);
	uint8_t buf[CHUNK];

	while (cc->sent < j->bytes) {
		size_t len = (size_t)WP_MIN((uint64_t)CHUNK, j->bytes - cc->sent);
		ssize_t n;

		for (size_t i = 0; i < len; i++)
			buf[i] = wp_diag_pattern(cc->sent + i, cc->k);
		/* Asking for more than fits arms the writable() callback. */
		n = wp_tcp_send(cc->c, buf, len);
		if (n <= 0)
			return;
		cc->sent += (uint64_t)n;
		if ((size_t)n < len)
			return;
	}
}

static void on_connected(struct wp_tcp_conn *c WP_UNUSED, void *arg)
{
	push(arg);
}

static void on_writable(struct wp_tcp_conn *c WP_UNUSED, void *arg)
{
	push(arg);
}

static size_t on_data(struct wp_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
	struct client_conn *cc = arg;
	struct job *j = __atomic_load_n(&reg.job, __ATOMIC_ACQUIRE);
	struct worker_share *s = share_of(cc->w, j);

	for (size_t i = 0; i < len; i++) {
		if (cc->verified + i >= j->bytes ||
		    data[i] != wp_diag_pattern(cc->verified + i, cc->k)) {
			s->mismatch++;
			wp_ctr_inc(cc->w->stats.ctr, WP_CTR_DIAG_CLIENT_MISMATCH);
			finish(cc, false);
			cc->c = NULL;
			wp_tcp_abort(c);
			return len;
		}
	}
	cc->verified += len;
	s->bytes += len;
	wp_ctr_add(cc->w->stats.ctr, WP_CTR_DIAG_CLIENT_BYTES, len);
	if (cc->verified == j->bytes) {
		finish(cc, true);
		cc->c = NULL;
		wp_tcp_close(c);
	}
	return len;
}

static void on_eof(struct wp_tcp_conn *c, void *arg)
{
	struct client_conn *cc = arg;

	finish(cc, false); /* the server closed before echoing everything */
	cc->c = NULL;
	wp_tcp_close(c);
}

static void on_closed(struct wp_tcp_conn *c WP_UNUSED, void *arg,
                      enum wp_tcp_close_reason why WP_UNUSED)
{
	struct client_conn *cc = arg;

	cc->c = NULL;
	finish(cc, false);
}

static const struct wp_tcp_callbacks client_cbs = {
        .connected = on_connected,
        .data = on_data,
        .eof = on_eof,
        .writable = on_writable,
        .closed = on_closed,
};

unsigned wp_diag_client_poll(struct wp_worker *w, uint64_t now_us WP_UNUSED)
{
	struct job *j = __atomic_load_n(&reg.job, __ATOMIC_ACQUIRE);
	struct worker_share *s;
	struct wp_worker_port *wp = &w->ports[0];
	unsigned opened = 0;

	if (j == NULL)
		return 0;
	s = share_of(w, j);
	if (s->done)
		return 0;
	if (s->finished == s->n) {
		__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
		return 1;
	}
	while (s->opened < s->n && opened < OPEN_PER_POLL &&
	       s->opened - s->finished < MAX_INFLIGHT) {
		struct client_conn *cc = &s->conns[s->opened];
		uint16_t port;

		/* Every local port busy (TIME_WAIT): wait for some to free up. */
		if (wp_worker_pick_port(wp, j->dst_ip, j->dst_port, &port) != 0)
			break;
		s->opened++;
		opened++;
		cc->w = w;
		if (wp_tcp_connect(wp->tcp, j->dst_ip, j->dst_port, port, &client_cbs, cc,
		                   &cc->c) != 0) {
			cc->c = NULL;
			finish(cc, false);
		}
	}
	return opened;
}

void wp_diag_client_stop(struct wp_worker *w)
{
	struct job *j = __atomic_load_n(&reg.job, __ATOMIC_ACQUIRE);
	struct worker_share *s;

	if (j == NULL)
		return;
	s = share_of(w, j);
	for (uint32_t i = 0; i < s->opened; i++) {
		struct client_conn *cc = &s->conns[i];

		if (cc->c != NULL) {
			struct wp_tcp_conn *c = cc->c;

			cc->c = NULL;
			finish(cc, false);
			wp_tcp_abort(c);
		}
	}
	__atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
}

/* ---- telemetry side -------------------------------------------------------- */

static bool job_running(const struct job *j)
{
	if (j == NULL)
		return false;
	for (unsigned i = 0; i < reg.n; i++)
		if (!__atomic_load_n(&j->share[i].done, __ATOMIC_ACQUIRE))
			return true;
	return false;
}

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	for (unsigned i = 0; i < reg.n; i++)
		rte_free(j->share[i].conns);
	rte_free(j);
}

static int cmd_start(const char *cmd WP_UNUSED, const char *params, struct rte_tel_data *d)
{
	char target[64];
	unsigned long long conns, bytes;
	struct wp_sockaddr dst;
	struct job *j, *old = reg.job;

	if (params == NULL || sscanf(params, "%63[^,],%llu,%llu", target, &conns, &bytes) != 3 ||
	    wp_sockaddr_parse(target, &dst) != 0 || dst.addr.family != WP_AF_INET || conns == 0 ||
	    conns > 1000000 || bytes == 0)
		return -EINVAL;
	if (job_running(old))
		return -EBUSY;
	j = rte_zmalloc("wp_diag_job", sizeof(*j), WP_CACHE_LINE);
	if (j == NULL)
		return -ENOMEM;
	j->id = ++reg.next_id;
	j->dst_ip = dst.addr.v4;
	j->dst_port = dst.port;
	j->conns = (uint32_t)conns;
	j->bytes = bytes;
	for (unsigned i = 0; i < reg.n; i++) {
		struct worker_share *s = &j->share[i];

		s->n = (uint32_t)(conns / reg.n + (i < conns % reg.n));
		s->conns = rte_zmalloc("wp_diag_conns", sizeof(*s->conns) * (s->n ? s->n : 1), 0);
		if (s->conns == NULL) {
			job_free(j);
			return -ENOMEM;
		}
		for (uint32_t k = 0; k < s->n; k++)
			s->conns[k].k = (uint32_t)(k * reg.n + i); /* unique per job */
	}
	__atomic_store_n(&reg.job, j, __ATOMIC_RELEASE);
	job_free(old); /* finished: no worker touches it any more */
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "job", j->id);
	return 0;
}

static int cmd_status(const char *cmd WP_UNUSED, const char *params WP_UNUSED,
                      struct rte_tel_data *d)
{
	struct job *j = __atomic_load_n(&reg.job, __ATOMIC_ACQUIRE);
	uint64_t done = 0, ok = 0, failed = 0, mismatch = 0, bytes = 0;

	rte_tel_data_start_dict(d);
	if (j == NULL) {
		rte_tel_data_add_dict_u64(d, "job", 0);
		return 0;
	}
	for (unsigned i = 0; i < reg.n; i++) {
		const struct worker_share *s = &j->share[i];

		done += __atomic_load_n(&s->finished, __ATOMIC_RELAXED);
		ok += __atomic_load_n(&s->ok, __ATOMIC_RELAXED);
		failed += __atomic_load_n(&s->failed, __ATOMIC_RELAXED);
		mismatch += __atomic_load_n(&s->mismatch, __ATOMIC_RELAXED);
		bytes += __atomic_load_n(&s->bytes, __ATOMIC_RELAXED);
	}
	rte_tel_data_add_dict_u64(d, "job", j->id);
	rte_tel_data_add_dict_u64(d, "connections", j->conns);
	rte_tel_data_add_dict_u64(d, "bytes_per_connection", j->bytes);
	rte_tel_data_add_dict_u64(d, "done", done);
	rte_tel_data_add_dict_u64(d, "ok", ok);
	rte_tel_data_add_dict_u64(d, "failed", failed);
	rte_tel_data_add_dict_u64(d, "mismatch", mismatch);
	rte_tel_data_add_dict_u64(d, "bytes_verified", bytes);
	rte_tel_data_add_dict_u64(d, "running", job_running(j));
	return 0;
}

int wp_diag_client_register(struct wp_worker *const *workers, unsigned n)
{
	reg.workers = workers;
	reg.n = n;
	if (rte_telemetry_register_cmd("/wp/tcp_client", cmd_start,
	                               "start a diagnostic TCP echo client job. Parameters: "
	                               "ip:port,connections,bytes") ||
	    rte_telemetry_register_cmd("/wp/tcp_client_status", cmd_status,
	                               "progress of the diagnostic TCP client job"))
		return -EEXIST;
	return 0;
}
