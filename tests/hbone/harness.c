/*
 * Test-only harness: runs dp/tls + dp/hbone over kernel sockets on
 * loopback, so the sans-I/O layers can be checked against python3-h2
 * (tests/hbone/client.py, dest.py) before the user-space TCP exists. This
 * is NOT a data path: the appliance never uses kernel sockets for traffic.
 *
 * Server mode (default): listens on 127.0.0.1, terminates TLS+HBONE and
 * echoes every tunnel. The :authority port picks the answer: 1 -> 503,
 * 2 -> 401, 3 -> 400, anything else -> 200 + echo.
 *   harness --certs DIR [--listen 127.0.0.1:0]
 * prints "listening 127.0.0.1:PORT"; SIGUSR1 prints one JSON line of
 * stats (connections, memory, non-zero counters); SIGTERM drains (GOAWAY)
 * and exits when the last connection is done.
 *
 * Originate mode: HBONE client to a destination (dest.py), N tunnels of
 * B bytes each, echo verified.
 *   harness --certs DIR --originate 127.0.0.1:PORT --tunnels N --bytes B
 *           [--expect-peer spiffe://...] [--authority ip:port]
 * exits 0 when every tunnel echoed its bytes.
 *
 * The wiring here (feed/handshake/read/input, peek/write/take/send) is the
 * sequence the worker will run on user-space TCP connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hbone.h"
#include "tls.h"
#include "wp/addr.h"
#include "wp/counters.h"

#define MAX_CONNS 4096
#define IOBUF     (64 * 1024)

static const char *ctr_names[] = {
#define WP_CTR(n, k, d) #n,
#include "wp/counters/list.h"
#undef WP_CTR
};

static uint64_t ctrs[WP_CTR_MAX];
static volatile sig_atomic_t want_stats, want_drain;
static struct wp_h2mem *mem;

struct hconn {
	int fd;
	bool client;
	bool closing; /* flush what is pending, then close */
	bool eof_in;
	struct wp_tls_conn *tls;
	struct wp_hbconn *h2;
	uint8_t *in; /* ciphertext read, not yet fed */
	size_t inoff, inlen;
	uint8_t *out; /* ciphertext taken, not yet sent */
	size_t outoff, outlen;
};

/* An echo tunnel (server) or a checked tunnel (originate). */
struct estream {
	struct wp_hbstream *s;
	uint8_t *buf;
	size_t len, cap;
	bool eof;
	/* originate */
	size_t want, sent, got;
	uint32_t seed;
	bool ok, status200, done;
};

static struct hconn *conns[MAX_CONNS];
static int nconns;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint8_t pattern(uint32_t seed, size_t i)
{
	return (uint8_t)((i * 131 + seed * 7 + (i >> 11)) & 0xff);
}

/* ---- server echo application ---- */

static void echo_flush(struct estream *e)
{
	while (e->len > 0) {
		ssize_t n = wp_hbstream_write(e->s, e->buf, e->len);
		if (n <= 0)
			break;
		/* The "upstream" (the echo buffer's way out) took them. */
		(void)wp_hbstream_consume(e->s, (size_t)n);
		memmove(e->buf, e->buf + n, e->len - (size_t)n);
		e->len -= (size_t)n;
	}
	if (e->eof && e->len == 0)
		(void)wp_hbstream_shutdown(e->s);
}

static void srv_request(struct wp_hbconn *c, struct wp_hbstream *s, const struct wp_hbone_req *req)
{
	struct estream *e;

	(void)c;
	switch (req->authority.port) {
	case 1:
		(void)wp_hbstream_respond(s, 503);
		return;
	case 2:
		(void)wp_hbstream_respond(s, 401);
		return;
	case 3:
		(void)wp_hbstream_respond(s, 400);
		return;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		(void)wp_hbstream_respond(s, 503);
		return;
	}
	e->s = s;
	wp_hbstream_set_app(s, e);
	(void)wp_hbstream_respond(s, 200);
}

static void srv_data(struct wp_hbstream *s, const uint8_t *d, size_t len)
{
	struct estream *e = wp_hbstream_app(s);

	if (e->len + len > e->cap) {
		e->cap = (e->len + len) * 2;
		e->buf = realloc(e->buf, e->cap);
		if (e->buf == NULL)
			abort();
	}
	memcpy(e->buf + e->len, d, len);
	e->len += len;
	echo_flush(e);
}

static void srv_eof(struct wp_hbstream *s)
{
	struct estream *e = wp_hbstream_app(s);
	e->eof = true;
	echo_flush(e);
}

static void srv_writable(struct wp_hbstream *s)
{
	echo_flush(wp_hbstream_app(s));
}

static void srv_close(struct wp_hbstream *s, enum wp_hbone_close why, uint32_t err)
{
	struct estream *e = wp_hbstream_app(s);

	(void)why;
	(void)err;
	if (e != NULL) {
		free(e->buf);
		free(e);
	}
}

static const struct wp_hbone_ops srv_ops = {
        .on_request = srv_request,
        .on_data = srv_data,
        .on_eof = srv_eof,
        .on_writable = srv_writable,
        .on_close = srv_close,
};

/* ---- originate application ---- */

static struct estream *otun;
static int ntun, tun_done;

static void cli_push(struct estream *e)
{
	uint8_t chunk[16384];

	if (!e->status200)
		return;
	while (e->sent < e->want) {
		size_t n = WP_MIN(sizeof(chunk), e->want - e->sent);
		for (size_t i = 0; i < n; i++)
			chunk[i] = pattern(e->seed, e->sent + i);
		ssize_t w = wp_hbstream_write(e->s, chunk, n);
		if (w <= 0)
			return;
		e->sent += (size_t)w;
	}
	(void)wp_hbstream_shutdown(e->s);
}

static void cli_response(struct wp_hbstream *s, int status)
{
	struct estream *e = wp_hbstream_app(s);
	e->status200 = status == 200;
	if (!e->status200)
		fprintf(stderr, "tunnel %d: status %d\n", wp_hbstream_id(s), status);
	cli_push(e);
}

static void cli_data(struct wp_hbstream *s, const uint8_t *d, size_t len)
{
	struct estream *e = wp_hbstream_app(s);

	for (size_t i = 0; i < len; i++)
		if (d[i] != pattern(e->seed, e->got + i))
			e->ok = false;
	e->got += len;
	(void)wp_hbstream_consume(s, len);
}

static void cli_eof(struct wp_hbstream *s)
{
	struct estream *e = wp_hbstream_app(s);
	e->eof = true;
}

static void cli_writable(struct wp_hbstream *s)
{
	cli_push(wp_hbstream_app(s));
}

static void cli_close(struct wp_hbstream *s, enum wp_hbone_close why, uint32_t err)
{
	struct estream *e = wp_hbstream_app(s);

	if (why != WP_HBONE_CLOSE_DONE || !e->eof || e->got != e->want)
		fprintf(stderr, "tunnel %d: closed why=%d err=%u got=%zu want=%zu\n",
		        wp_hbstream_id(s), why, err, e->got, e->want);
	e->ok = e->ok && why == WP_HBONE_CLOSE_DONE && e->eof && e->got == e->want;
	e->done = true;
	e->s = NULL;
	tun_done++;
}

static const struct wp_hbone_ops cli_ops = {
        .on_response = cli_response,
        .on_data = cli_data,
        .on_eof = cli_eof,
        .on_writable = cli_writable,
        .on_close = cli_close,
};

/* ---- connections ---- */

static struct hconn *hconn_new(int fd, struct wp_tls_ctx *ctx, bool client)
{
	struct hconn *h = calloc(1, sizeof(*h));

	if (h == NULL || nconns == MAX_CONNS)
		goto fail;
	h->fd = fd;
	h->client = client;
	h->in = malloc(IOBUF);
	h->out = malloc(IOBUF);
	h->tls = wp_tls_conn_new(ctx, client ? WP_TLS_CLIENT : WP_TLS_SERVER, ctrs);
	if (h->in == NULL || h->out == NULL || h->tls == NULL)
		goto fail;
	conns[nconns++] = h;
	return h;
fail:
	if (h != NULL) {
		wp_tls_conn_free(h->tls);
		free(h->in);
		free(h->out);
		free(h);
	}
	close(fd);
	return NULL;
}

static void hconn_free(int i)
{
	struct hconn *h = conns[i];

	wp_hbconn_free(h->h2);
	wp_tls_conn_free(h->tls);
	close(h->fd);
	free(h->in);
	free(h->out);
	free(h);
	conns[i] = conns[--nconns];
}

/* One pass of the worker's sequence. Returns false when h is finished. */
static bool service(struct hconn *h, uint64_t now)
{
	uint8_t pt[16384];
	bool progress;
	int guard = 0;

	do {
		ssize_t n;
		progress = false;
		/* TCP -> TLS */
		if (h->inlen == 0 && !h->eof_in) {
			n = recv(h->fd, h->in, IOBUF, 0);
			if (n > 0) {
				h->inoff = 0;
				h->inlen = (size_t)n;
			} else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				h->eof_in = true;
				wp_tls_conn_feed_eof(h->tls);
				progress = true;
			}
		}
		if (h->inlen > 0) {
			n = wp_tls_conn_feed(h->tls, h->in + h->inoff, h->inlen);
			if (n < 0)
				return false;
			h->inoff += (size_t)n;
			h->inlen -= (size_t)n;
			progress |= n > 0;
		}
		/* Handshake, then the HTTP/2 session on top. */
		if (h->h2 == NULL && !h->closing) {
			int r = wp_tls_conn_handshake(h->tls);
			if (r < 0) {
				h->closing = true; /* the alert is in the output */
			} else if (r == 1) {
				h->h2 = wp_hbconn_new(!h->client, NULL, mem,
				                      h->client ? &cli_ops : &srv_ops, h, ctrs,
				                      now);
				if (h->h2 == NULL)
					return false;
				progress = true;
			}
		}
		/* TLS -> HTTP/2 */
		while (h->h2 != NULL && (n = wp_tls_conn_read(h->tls, pt, sizeof(pt))) > 0) {
			if (wp_hbconn_input(h->h2, pt, (size_t)n, now) < 0)
				h->closing = true;
			progress = true;
		}
		if (h->h2 != NULL && n < 0 && n != WP_AGAIN)
			h->closing = true; /* close_notify, reset or TLS error */
		/* HTTP/2 -> TLS */
		if (h->h2 != NULL) {
			const uint8_t *p;
			while ((n = wp_hbconn_peek(h->h2, &p)) > 0) {
				ssize_t w = wp_tls_conn_write(h->tls, p, (size_t)n);
				if (w <= 0)
					break;
				wp_hbconn_advance(h->h2, (size_t)w);
				progress = true;
			}
		}
		/* TLS -> TCP */
		if (h->outlen == 0) {
			h->outoff = 0;
			h->outlen = wp_tls_conn_take(h->tls, h->out, IOBUF);
		}
		while (h->outlen > 0) {
			n = send(h->fd, h->out + h->outoff, h->outlen, MSG_NOSIGNAL);
			if (n <= 0) {
				if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
					return false;
				break;
			}
			h->outoff += (size_t)n;
			h->outlen -= (size_t)n;
			progress = true;
			if (h->outlen == 0) {
				h->outoff = 0;
				h->outlen = wp_tls_conn_take(h->tls, h->out, IOBUF);
			}
		}
	} while (progress && ++guard < 64);

	if (h->h2 != NULL && wp_hbconn_tick(h->h2, now) < 0)
		h->closing = true;
	if (h->outlen > 0 || wp_tls_conn_pending(h->tls) > 0)
		return true;
	if (h->h2 != NULL && wp_hbconn_done(h->h2))
		return false;
	if (h->closing || (h->eof_in && h->inlen == 0))
		return false;
	return true;
}

static int set_nonblock(int fd)
{
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void print_stats(int64_t tls_base, size_t h2_base)
{
	struct wp_h2mem_stats st;
	int established = 0;

	for (int i = 0; i < nconns; i++) {
		wp_tls_conn_trim(conns[i]->tls); /* what an idle timer would do */
		established += conns[i]->h2 != NULL;
	}
	wp_h2mem_stats(mem, &st);
	printf("{\"conns\": %d, \"established\": %d, \"tls_bytes\": %lld, \"h2_bytes\": %zu, "
	       "\"h2_held\": %zu, \"counters\": {",
	       nconns, established, (long long)(wp_tls_mem_live() - tls_base),
	       st.live_bytes - h2_base, st.held_bytes);
	for (int i = 0, first = 1; i < WP_CTR_MAX; i++) {
		if (ctrs[i] == 0)
			continue;
		printf("%s\"%s\": %llu", first ? "" : ", ", ctr_names[i],
		       (unsigned long long)ctrs[i]);
		first = 0;
	}
	printf("}}\n");
	fflush(stdout);
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		want_stats = 1;
	else
		want_drain = 1;
}

static int parse_loopback(const char *s, struct sockaddr_in *sin)
{
	struct wp_sockaddr sa;

	if (wp_sockaddr_parse(s, &sa) != 0 || sa.addr.family != WP_AF_INET ||
	    (ntohl(sa.addr.v4) >> 24) != 127)
		return -EINVAL;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = sa.addr.v4;
	sin->sin_port = htons(sa.port);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: harness --certs DIR [--listen 127.0.0.1:0] | --originate "
	                "127.0.0.1:PORT --tunnels N --bytes B [--expect-peer ID]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"certs", required_argument, NULL, 'c'},
	        {"listen", required_argument, NULL, 'l'},
	        {"originate", required_argument, NULL, 'o'},
	        {"tunnels", required_argument, NULL, 'n'},
	        {"bytes", required_argument, NULL, 'b'},
	        {"expect-peer", required_argument, NULL, 'p'},
	        {"authority", required_argument, NULL, 'a'},
	        {"identity", required_argument, NULL, 'i'},
	        {NULL, 0, NULL, 0},
	};
	const char *certs = NULL, *listen_at = "127.0.0.1:0", *originate = NULL, *peer = NULL;
	const char *authority = "10.0.0.1:8080", *identity = NULL;
	char cert[512], key[512], ca[512];
	size_t nbytes = 65536;
	struct wp_tls_config cfg = {0};
	struct wp_tls_store store;
	struct sockaddr_in sin;
	int opt, lfd = -1, rc = 0;
	int64_t tls_base;
	size_t h2_base;
	struct wp_h2mem_stats st;

	if (wp_tls_mem_accounting_enable() != 0)
		return 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			certs = optarg;
			break;
		case 'l':
			listen_at = optarg;
			break;
		case 'o':
			originate = optarg;
			break;
		case 'n':
			ntun = atoi(optarg);
			break;
		case 'b':
			nbytes = strtoul(optarg, NULL, 10);
			break;
		case 'p':
			peer = optarg;
			break;
		case 'a':
			authority = optarg;
			break;
		case 'i':
			identity = optarg;
			break;
		default:
			usage();
		}
	}
	if (certs == NULL)
		usage();
	if (identity != NULL) {
		snprintf(cert, sizeof(cert), "%s/%s.pem", certs, identity);
		snprintf(key, sizeof(key), "%s/%s-key.pem", certs, identity);
	} else {
		snprintf(cert, sizeof(cert), "%s/cert.pem", certs);
		snprintf(key, sizeof(key), "%s/key.pem", certs);
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
	cfg.cert_file = cert;
	cfg.key_file = key;
	cfg.ca_file = ca;
	cfg.trust_domain = "cluster.local";
	if (wp_tls_store_init(&store, &cfg) != 0) {
		fprintf(stderr, "cannot load %s\n", certs);
		return 1;
	}
	mem = wp_h2mem_new(1 << 20, 0);
	signal(SIGUSR1, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	tls_base = wp_tls_mem_live();
	wp_h2mem_stats(mem, &st);
	h2_base = st.live_bytes;

	if (originate != NULL) {
		struct hconn *h;
		struct wp_sockaddr auth;
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (parse_loopback(originate, &sin) != 0 ||
		    wp_sockaddr_parse(authority, &auth) != 0)
			usage();
		if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
			perror("connect");
			return 1;
		}
		set_nonblock(fd);
		h = hconn_new(fd, wp_tls_store_get(&store), true);
		if (h == NULL || (peer != NULL && wp_tls_conn_set_expected_peer(h->tls, peer) != 0))
			return 1;
		otun = calloc((size_t)ntun, sizeof(*otun));
		bool opened = false;
		uint64_t deadline = now_ms() + 60000;
		while (tun_done < ntun && now_ms() < deadline) {
			struct pollfd p = {h->fd, POLLIN, 0};
			if (h->outlen > 0)
				p.events |= POLLOUT;
			(void)poll(&p, 1, 50);
			if (!service(h, now_ms())) {
				fprintf(stderr, "connection ended (%s)\n",
				        wp_tls_fail_str(wp_tls_conn_fail_reason(h->tls)));
				break;
			}
			if (!opened && h->h2 != NULL) {
				for (int i = 0; i < ntun; i++) {
					otun[i].want = nbytes;
					otun[i].seed = (uint32_t)i + 1;
					otun[i].ok = true;
					otun[i].s = wp_hbconn_open(h->h2, &auth,
					                           "k8s.namespace.name=default",
					                           NULL, NULL, &otun[i]);
					if (otun[i].s == NULL) {
						fprintf(stderr, "open %d: %s\n", i,
						        strerror(errno));
						return 1;
					}
				}
				opened = true;
			}
		}
		for (int i = 0; i < ntun; i++)
			if (!otun[i].done || !otun[i].ok)
				rc = 1;
		printf("{\"tunnels\": %d, \"done\": %d, \"ok\": %s, \"peer\": \"%s\"}\n", ntun,
		       tun_done, rc == 0 ? "true" : "false",
		       h->tls && wp_tls_conn_peer_id(h->tls) ? wp_tls_conn_peer_id(h->tls) : "");
		while (nconns > 0)
			hconn_free(0);
		free(otun);
		wp_h2mem_destroy(mem);
		wp_tls_store_fini(&store);
		return rc;
	}

	if (parse_loopback(listen_at, &sin) != 0)
		usage();
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	opt = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &opt, sizeof(opt));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, 512) != 0) {
		perror("listen");
		return 1;
	}
	set_nonblock(lfd);
	socklen_t slen = sizeof(sin);
	getsockname(lfd, (struct sockaddr *)&sin, &slen);
	printf("listening 127.0.0.1:%u\n", ntohs(sin.sin_port));
	fflush(stdout);

	static struct pollfd pfd[MAX_CONNS + 1];
	bool draining = false;
	for (;;) {
		int np = 0;
		if (!draining)
			pfd[np++] = (struct pollfd){lfd, POLLIN, 0};
		for (int i = 0; i < nconns; i++) {
			short ev = conns[i]->inlen == 0 ? POLLIN : 0;
			if (conns[i]->outlen > 0)
				ev |= POLLOUT;
			pfd[np++] = (struct pollfd){conns[i]->fd, ev, 0};
		}
		(void)poll(pfd, (nfds_t)np, 100);
		if (!draining) {
			int fd;
			while ((fd = accept(lfd, NULL, NULL)) >= 0) {
				set_nonblock(fd);
				(void)hconn_new(fd, wp_tls_store_get(&store), false);
			}
		}
		uint64_t now = now_ms();
		for (int i = 0; i < nconns;) {
			if (!service(conns[i], now))
				hconn_free(i);
			else
				i++;
		}
		if (want_stats) {
			want_stats = 0;
			print_stats(tls_base, h2_base);
		}
		if (want_drain && !draining) {
			draining = true;
			close(lfd);
			for (int i = 0; i < nconns; i++) {
				if (conns[i]->h2 != NULL)
					(void)wp_hbconn_drain(conns[i]->h2);
				else
					conns[i]->closing = true;
			}
		}
		if (draining && nconns == 0)
			break;
	}
	print_stats(tls_base, h2_base);
	wp_h2mem_destroy(mem);
	wp_tls_store_fini(&store);
	return 0;
}
