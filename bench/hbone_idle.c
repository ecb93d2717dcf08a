/*
 * Idle HBONE connection load generator for bench/hbone_bench.py (kernel
 * sockets, OpenSSL, epoll; not a data path). It opens N connections the way
 * a ztunnel does -- TCP, TLS 1.3 with a client certificate, ALPN h2, the
 * HTTP/2 preface and SETTINGS, and with --connect one CONNECT stream to
 * AUTHORITY so that each connection carries a tunnel -- with at most
 * --parallel of them in set-up at once (default 128) and, with --rate, at
 * most R * t started by t seconds (all processes together), from --nsrc
 * consecutive source addresses starting at --src (one address has only
 * ~28k ephemeral ports towards one server port). Then it holds them idle
 * for --hold seconds, answering each keepalive PING with its ACK, and
 * closes them all.
 *
 *   hbone_idle --addr IP:PORT --cert C --key K --ca CA --conns N
 *              [--src IP --nsrc K] [--connect HOST:PORT] [--parallel P]
 *              [--rate R] [--hold S] [--timeout S] [--per-proc M]
 *
 * A process's descriptors are capped by its hard RLIMIT_NOFILE, which a
 * container without CAP_SYS_RESOURCE cannot raise, so the connections are
 * split over ceil(N / M) processes (default M 16000), one epoll thread
 * each; the parent sums their reports and starts their holds together once
 * all are set up. Prints two JSON lines: after set-up {"established",
 * "failed", "setup_s", "rate_per_s", ...}, then after the hold {"alive",
 * "closed_during_hold", "pings": {per-connection min/mean/max, the longest
 * gap without a PING}, ...}. Between the two the connections send nothing
 * but PING ACKs, so the server's memory can be read at idle. HTTP/2 is
 * framed by hand: the client needs a few frame types, and an HTTP/2 library
 * session per connection would cost more than the server it measures.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum state { S_FREE, S_CONNECTING, S_TLS, S_H2, S_IDLE, S_DEAD };

/* Why a connection failed in set-up or ended during the hold. */
#define REASONS(X)                                                                                 \
	X(socket)                                                                                  \
	X(connect)                                                                                 \
	X(tls)                                                                                     \
	X(write)                                                                                   \
	X(closed)                                                                                  \
	X(goaway)                                                                                  \
	X(refused)                                                                                 \
	X(timeout)
#define X(n) R_##n,
enum reason { REASONS(X) R_COUNT };
#undef X
#define X(n) #n,
static const char *const reason_name[] = {REASONS(X)};
#undef X

/*
 * One connection. The frame parser is incremental so that no per-connection
 * read buffer is needed: the 9-byte frame header is gathered, then the
 * payload is skipped except for a PING's 8 bytes. Times are ms since start.
 */
struct conn {
	SSL *ssl;
	int fd;
	uint8_t state;
	uint8_t hlen;    /* frame header bytes gathered */
	uint8_t hdr[9];  /* the current frame's header */
	uint8_t ping[8]; /* the current PING's payload */
	uint32_t left;   /* payload bytes of the current frame still to come */
	uint32_t plen;   /* payload length of the current frame */
	uint32_t t0;     /* set-up start */
	uint32_t last_ping;
	uint32_t max_gap; /* longest time without a PING during the hold */
	uint32_t pings;   /* PINGs received during the hold */
};

static struct {
	struct conn *c;
	long n, first, next, inflight, established, fails[R_COUNT], closed[R_COUNT];
	long writes_blocked, acks;
	int ep, parallel, nsrc, holding, go_fd;
	long rate; /* connections started per second in this process (0: no pacing) */
	uint32_t timeout_ms, hold_start;
	struct sockaddr_in dst, src;
	SSL_CTX *ctx;
	unsigned char req[512]; /* preface + SETTINGS [+ HEADERS CONNECT] */
	size_t req_len;
	int tunnel;
	struct timespec start;
} g;

static uint32_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)((ts.tv_sec - g.start.tv_sec) * 1000 +
	                  (ts.tv_nsec - g.start.tv_nsec) / 1000000);
}

static void watch(struct conn *c, uint32_t events, int op)
{
	struct epoll_event ev = {.events = events, .data.u32 = (uint32_t)(c - g.c)};

	epoll_ctl(g.ep, op, c->fd, &ev);
}

/* Ends a connection: a set-up failure, or a loss during the hold. */
static void end(struct conn *c, enum reason r)
{
	if (c->state == S_IDLE)
		g.closed[r]++;
	else {
		g.fails[r]++;
		g.inflight--;
	}
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	c->state = S_DEAD;
}

static int send_all(struct conn *c, const void *buf, int len)
{
	int n = SSL_write(c->ssl, buf, len);

	if (n == len)
		return 0;
	/* Only a few dozen bytes at a time on an otherwise silent socket: a
	 * full send buffer here means the peer stopped reading. */
	g.writes_blocked++;
	return -1;
}

static void start_one(void)
{
	struct conn *c = &g.c[g.next];
	struct sockaddr_in src = g.src;
	int one = 1, fd;

	src.sin_addr.s_addr =
	        htonl(ntohl(g.src.sin_addr.s_addr) + (uint32_t)((g.first + g.next) % g.nsrc));
	g.next++;
	g.inflight++;
	c->t0 = now_ms();
	c->state = S_CONNECTING;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	c->fd = fd;
	if (fd < 0) {
		end(c, R_socket);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* the port is chosen at connect() for the whole 4-tuple */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	if ((g.src.sin_addr.s_addr != 0 &&
	     bind(fd, (const struct sockaddr *)&src, sizeof(src)) != 0) ||
	    (connect(fd, (const struct sockaddr *)&g.dst, sizeof(g.dst)) != 0 &&
	     errno != EINPROGRESS)) {
		end(c, R_connect);
		return;
	}
	watch(c, EPOLLOUT, EPOLL_CTL_ADD);
}

static void established(struct conn *c)
{
	c->state = S_IDLE;
	g.inflight--;
	g.established++;
	c->last_ping = now_ms();
}

/* One whole frame header, or a PING payload, has arrived. */
static int frame(struct conn *c)
{
	uint8_t type = c->hdr[3], flags = c->hdr[4];
	uint32_t stream = ((uint32_t)(c->hdr[5] & 0x7f) << 24) | ((uint32_t)c->hdr[6] << 16) |
	                  ((uint32_t)c->hdr[7] << 8) | c->hdr[8];

	switch (type) {
	case 0x4: /* SETTINGS */
		if (!(flags & 1)) {
			static const unsigned char ack[] = {0, 0, 0, 4, 1, 0, 0, 0, 0};

			if (send_all(c, ack, sizeof(ack)) != 0) {
				end(c, R_write);
				return -1;
			}
			if (c->state == S_H2 && !g.tunnel)
				established(c);
		}
		break;
	case 0x1: /* HEADERS: the CONNECT's answer (a 200 leaves the stream open) */
		if (stream == 1 && c->state == S_H2) {
			if (flags & 1) {
				end(c, R_refused);
				return -1;
			}
			established(c);
		}
		break;
	case 0x3: /* RST_STREAM */
		if (stream == 1) {
			end(c, R_refused);
			return -1;
		}
		break;
	case 0x7: /* GOAWAY */
		end(c, R_goaway);
		return -1;
	case 0x6: /* PING, payload in c->ping */
		if (!(flags & 1)) {
			unsigned char ack[17] = {0, 0, 8, 6, 1, 0, 0, 0, 0};
			uint32_t t = now_ms();

			memcpy(ack + 9, c->ping, 8);
			if (send_all(c, ack, sizeof(ack)) != 0) {
				end(c, R_write);
				return -1;
			}
			g.acks++;
			if (g.holding && c->state == S_IDLE) {
				uint32_t since =
				        c->last_ping > g.hold_start ? c->last_ping : g.hold_start;

				if (t - since > c->max_gap)
					c->max_gap = t - since;
				c->pings++;
			}
			c->last_ping = t;
		}
		break;
	default:
		break;
	}
	return 0;
}

/* Feeds decrypted bytes to the frame parser. */
static int parse(struct conn *c, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (c->hlen < 9) {
			size_t want = 9u - c->hlen, k = want < n ? want : n;

			memcpy(c->hdr + c->hlen, p, k);
			c->hlen += (uint8_t)k;
			p += k;
			n -= k;
			if (c->hlen < 9)
				return 0;
			c->plen = c->left = ((uint32_t)c->hdr[0] << 16) |
			                    ((uint32_t)c->hdr[1] << 8) | c->hdr[2];
			if (c->hdr[3] == 0x6 && c->plen != 8) {
				end(c, R_closed); /* malformed PING */
				return -1;
			}
		} else {
			size_t k = c->left < n ? c->left : n;

			if (c->hdr[3] == 0x6)
				memcpy(c->ping + (8 - c->left), p, k);
			c->left -= (uint32_t)k;
			p += k;
			n -= k;
		}
		if (c->hlen == 9 && c->left == 0) {
			c->hlen = 0;
			if (frame(c) != 0)
				return -1;
		}
	}
	return 0;
}

static void on_read(struct conn *c)
{
	static uint8_t buf[16384];

	for (;;) {
		int n = SSL_read(c->ssl, buf, sizeof(buf));

		if (n > 0) {
			if (parse(c, buf, (size_t)n) != 0)
				return;
			continue;
		}
		if (SSL_get_error(c->ssl, n) == SSL_ERROR_WANT_READ)
			return;
		end(c, R_closed);
		return;
	}
}

static void handshake(struct conn *c)
{
	int rc = SSL_do_handshake(c->ssl);

	if (rc == 1) {
		c->state = S_H2;
		watch(c, EPOLLIN, EPOLL_CTL_MOD);
		if (send_all(c, g.req, (int)g.req_len) != 0) {
			end(c, R_write);
			return;
		}
		on_read(c);
		return;
	}
	switch (SSL_get_error(c->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		watch(c, EPOLLIN, EPOLL_CTL_MOD);
		break;
	case SSL_ERROR_WANT_WRITE:
		watch(c, EPOLLOUT, EPOLL_CTL_MOD);
		break;
	default:
		end(c, R_tls);
	}
}

static void on_event(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	switch (c->state) {
	case S_CONNECTING:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
			end(c, R_connect);
			return;
		}
		c->ssl = SSL_new(g.ctx);
		if (c->ssl == NULL) {
			end(c, R_tls);
			return;
		}
		SSL_set_fd(c->ssl, c->fd);
		SSL_set_connect_state(c->ssl);
		c->state = S_TLS;
		handshake(c);
		break;
	case S_TLS:
		handshake(c);
		break;
	case S_H2:
	case S_IDLE:
		on_read(c);
		break;
	default:
		break;
	}
}

/* Set-up timeouts, checked once a second over the connections in flight. */
static void sweep(void)
{
	uint32_t t = now_ms();

	for (long i = 0; i < g.next; i++) {
		struct conn *c = &g.c[i];

		if (c->state >= S_CONNECTING && c->state <= S_H2 && t - c->t0 > g.timeout_ms)
			end(c, R_timeout);
	}
}

/* One epoll round; *go is set when the parent's start-the-hold byte came. */
static void loop_once(int wait_ms, int *go)
{
	struct epoll_event ev[256];
	int n = epoll_wait(g.ep, ev, 256, wait_ms);

	for (int i = 0; i < n; i++) {
		struct conn *c;

		if (ev[i].data.u32 == UINT32_MAX) {
			char b;

			*go = read(g.go_fd, &b, 1) == 1 || *go;
			epoll_ctl(g.ep, EPOLL_CTL_DEL, g.go_fd, NULL);
			continue;
		}
		c = &g.c[ev[i].data.u32];

		if (c->state != S_DEAD)
			on_event(c);
	}
}

static size_t hpack_literal(unsigned char *p, unsigned idx, const char *v)
{
	size_t n = strlen(v);

	/* literal without indexing, indexed name (idx < 15), raw value (< 127) */
	p[0] = (unsigned char)idx;
	p[1] = (unsigned char)n;
	memcpy(p + 2, v, n);
	return n + 2;
}

/* The client's first flight: preface, empty SETTINGS, optionally a CONNECT. */
static void build_request(const char *authority)
{
	static const unsigned char head[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
	                                    "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
	unsigned char *p = g.req + sizeof(head) - 1, *hf;
	size_t blk;

	memcpy(g.req, head, sizeof(head) - 1);
	if (authority == NULL) {
		g.req_len = sizeof(head) - 1;
		return;
	}
	/* HEADERS, END_HEADERS, stream 1: :method CONNECT, :authority */
	hf = p;
	p += 9;
	p += hpack_literal(p, 2, "CONNECT");
	p += hpack_literal(p, 1, authority);
	blk = (size_t)(p - hf - 9);
	hf[0] = 0;
	hf[1] = (unsigned char)(blk >> 8);
	hf[2] = (unsigned char)blk;
	hf[3] = 1;
	hf[4] = 4;
	hf[5] = hf[6] = hf[7] = 0;
	hf[8] = 1;
	g.req_len = (size_t)(p - g.req);
}

static int parse_addr(const char *s, struct sockaddr_in *sin)
{
	char host[64];
	const char *colon = strrchr(s, ':');

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: hbone_idle --addr IP:PORT --cert C --key K --ca CA --conns N\n"
	                "  [--src IP --nsrc K] [--connect HOST:PORT] [--parallel P] [--hold S]"
	                " [--rate R] [--timeout S] [--per-proc M]\n");
	exit(2);
}

/*
 * What one process reports, once after its set-up and once after the hold;
 * the parent sums them.
 */
struct report {
	long established, fails[R_COUNT], closed[R_COUNT];
	uint32_t setup_ms, hold_ms;
	long alive, pmin, pmax, ptotal, zero, gap_max, acks, writes_blocked;
};

static int write_all(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

/*
 * One process's share: connections [first, first + n). Set-up, report, keep
 * answering PINGs until the parent says every process is done with set-up
 * (a byte on go_fd), hold for hold_ms from there, report, close.
 */
static int run(int out_fd, uint32_t hold_ms)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
	struct report r;
	uint32_t last_sweep = 0;
	int go = 0;

	memset(&r, 0, sizeof(r));
	g.c = calloc((size_t)g.n, sizeof(*g.c));
	g.ep = epoll_create1(0);
	if (g.c == NULL || g.ep < 0 || epoll_ctl(g.ep, EPOLL_CTL_ADD, g.go_fd, &ev) != 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &g.start);

	/* set-up: keep P connections in flight until all N were tried, and
	 * with a rate, no more started by t than rate * t (plus one) */
	while (g.next < g.n || g.inflight > 0) {
		while (g.next < g.n && g.inflight < g.parallel &&
		       (g.rate == 0 || g.next * 1000 < (long)now_ms() * g.rate + 1000))
			start_one();
		loop_once(g.rate ? 10 : 100, &go);
		if (now_ms() - last_sweep >= 1000) {
			last_sweep = now_ms();
			sweep();
		}
	}
	r.setup_ms = now_ms();
	r.established = g.established;
	memcpy(r.fails, g.fails, sizeof(r.fails));
	if (write_all(out_fd, &r, sizeof(r)) != 0)
		return 1;
	while (!go)
		loop_once(200, &go);

	/* hold: answer PINGs, count them per connection */
	g.hold_start = now_ms();
	g.holding = 1;
	while (now_ms() - g.hold_start < hold_ms)
		loop_once(200, &go);
	{
		uint32_t t = now_ms();

		r.pmin = -1;
		for (long i = 0; i < g.n; i++) {
			struct conn *c = &g.c[i];
			uint32_t since;

			if (c->state != S_IDLE)
				continue;
			r.alive++;
			/* the silence since the last PING counts up to the end of the hold */
			since = c->last_ping > g.hold_start ? c->last_ping : g.hold_start;
			if (t - since > c->max_gap)
				c->max_gap = t - since;
			if (r.pmin < 0 || c->pings < r.pmin)
				r.pmin = c->pings;
			if (c->pings > r.pmax)
				r.pmax = c->pings;
			if (c->pings == 0)
				r.zero++;
			if (c->max_gap > r.gap_max)
				r.gap_max = c->max_gap;
			r.ptotal += c->pings;
		}
		r.hold_ms = t - g.hold_start;
	}
	memcpy(r.closed, g.closed, sizeof(r.closed));
	r.acks = g.acks;
	r.writes_blocked = g.writes_blocked;
	if (write_all(out_fd, &r, sizeof(r)) != 0)
		return 1;
	for (long i = 0; i < g.n; i++)
		if (g.c[i].state == S_IDLE) {
			SSL_free(g.c[i].ssl);
			close(g.c[i].fd);
		}
	free(g.c);
	return 0;
}

static void print_reasons(const char *key, const long *r)
{
	int first = 1;

	printf("\"%s\": {", key);
	for (int i = 0; i < R_COUNT; i++)
		if (r[i]) {
			printf("%s\"%s\": %ld", first ? "" : ", ", reason_name[i], r[i]);
			first = 0;
		}
	printf("}");
}

/* Reads one report from each process and sums them into *sum. */
static int gather(int fd, int procs, struct report *sum)
{
	memset(sum, 0, sizeof(*sum));
	sum->pmin = -1;
	for (int k = 0; k < procs; k++) {
		struct report r;
		size_t got = 0;

		while (got < sizeof(r)) {
			ssize_t n = read(fd, (char *)&r + got, sizeof(r) - got);

			if (n <= 0)
				return -1;
			got += (size_t)n;
		}
		sum->established += r.established;
		for (int i = 0; i < R_COUNT; i++) {
			sum->fails[i] += r.fails[i];
			sum->closed[i] += r.closed[i];
		}
		if (r.setup_ms > sum->setup_ms)
			sum->setup_ms = r.setup_ms;
		if (r.hold_ms > sum->hold_ms)
			sum->hold_ms = r.hold_ms;
		sum->alive += r.alive;
		if (r.alive && (sum->pmin < 0 || r.pmin < sum->pmin))
			sum->pmin = r.pmin;
		if (r.pmax > sum->pmax)
			sum->pmax = r.pmax;
		if (r.gap_max > sum->gap_max)
			sum->gap_max = r.gap_max;
		sum->ptotal += r.ptotal;
		sum->zero += r.zero;
		sum->acks += r.acks;
		sum->writes_blocked += r.writes_blocked;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const unsigned char alpn[] = "\x02h2";
	static const struct option opts[] = {{"addr", 1, 0, 'a'},     {"cert", 1, 0, 'c'},
	                                     {"key", 1, 0, 'k'},      {"ca", 1, 0, 'A'},
	                                     {"conns", 1, 0, 'n'},    {"src", 1, 0, 's'},
	                                     {"nsrc", 1, 0, 'S'},     {"connect", 1, 0, 'C'},
	                                     {"parallel", 1, 0, 'p'}, {"hold", 1, 0, 'h'},
	                                     {"timeout", 1, 0, 't'},  {"per-proc", 1, 0, 'P'},
	                                     {"rate", 1, 0, 'r'},     {0, 0, 0, 0}};
	const char *addr = NULL, *cert = NULL, *key = NULL, *ca = NULL, *connect_to = NULL;
	double hold = 30, timeout = 30;
	long total, per_proc = 16000, failed = 0, parallel, rate = 0;
	int procs, up[2], go[2], o;
	struct report sum;
	struct rlimit rl;

	/* waypointd resets a TLS handshake still unfinished after
	 * hbone.connect_timeout_ms (5 s): keep the queue short of that */
	g.parallel = 128;
	g.nsrc = 1;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'a':
			addr = optarg;
			break;
		case 'c':
			cert = optarg;
			break;
		case 'k':
			key = optarg;
			break;
		case 'A':
			ca = optarg;
			break;
		case 'n':
			g.n = atol(optarg);
			break;
		case 's':
			g.src.sin_family = AF_INET;
			if (inet_pton(AF_INET, optarg, &g.src.sin_addr) != 1)
				usage();
			break;
		case 'S':
			g.nsrc = atoi(optarg);
			break;
		case 'C':
			connect_to = optarg;
			break;
		case 'p':
			g.parallel = atoi(optarg);
			break;
		case 'h':
			hold = atof(optarg);
			break;
		case 't':
			timeout = atof(optarg);
			break;
		case 'P':
			per_proc = atol(optarg);
			break;
		case 'r':
			rate = atol(optarg);
			break;
		default:
			usage();
		}
	}
	if (addr == NULL || cert == NULL || key == NULL || ca == NULL || g.n <= 0 ||
	    g.n > 1000000 || g.nsrc <= 0 || g.parallel <= 0 || per_proc <= 0 || rate < 0 ||
	    parse_addr(addr, &g.dst) != 0 || (connect_to != NULL && strlen(connect_to) > 100) ||
	    hold < 0 || hold > 3600)
		usage();
	g.timeout_ms = (uint32_t)(timeout * 1000);
	g.tunnel = connect_to != NULL;
	build_request(connect_to);
	total = g.n;
	/* a process's descriptors are capped by its hard limit, which an
	 * unprivileged container cannot raise: one process per per_proc */
	procs = (int)((total + per_proc - 1) / per_proc);
	parallel = g.parallel;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max < (rlim_t)per_proc + 64 ||
	    (total > per_proc ? per_proc : total) + 64 > (long)rl.rlim_max) {
		fprintf(stderr, "hbone_idle: RLIMIT_NOFILE hard limit %ld: lower --per-proc\n",
		        (long)rl.rlim_max);
		return 1;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	signal(SIGPIPE, SIG_IGN);
	g.ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(g.ctx, TLS1_3_VERSION);
	SSL_CTX_set_alpn_protos(g.ctx, alpn, sizeof(alpn) - 1);
	SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET);
	/* idle connections hold no record buffers */
	SSL_CTX_set_mode(g.ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(g.ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(g.ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(g.ctx, ca, NULL) != 1) {
		ERR_print_errors_fp(stderr);
		return 1;
	}
	SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER, NULL);
	if (pipe(up) != 0 || pipe(go) != 0)
		return 1;
	for (int k = 0; k < procs; k++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("hbone_idle: fork");
			return 1;
		}
		if (pid == 0) {
			/* never outlive the parent (a benchmark killing it on failure) */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == 1)
				_exit(1);
			close(up[0]);
			close(go[1]);
			g.go_fd = go[0];
			g.first = total * k / procs;
			g.n = total * (k + 1) / procs - g.first;
			g.parallel = (int)(parallel * (k + 1) / procs - parallel * k / procs);
			if (g.parallel < 1)
				g.parallel = 1;
			g.rate = rate * (k + 1) / procs - rate * k / procs;
			if (rate > 0 && g.rate < 1)
				g.rate = 1;
			_exit(run(up[1], (uint32_t)(hold * 1000)));
		}
	}
	close(up[1]);
	close(go[0]);
	if (gather(up[0], procs, &sum) != 0)
		return 1;
	for (int i = 0; i < R_COUNT; i++)
		failed += sum.fails[i];
	printf("{\"conns\": %ld, \"established\": %ld, \"failed\": %ld, ", total, sum.established,
	       failed);
	print_reasons("fail_reasons", sum.fails);
	printf(", \"tunnels\": %s, \"sources\": %d, \"processes\": %d, \"parallel\": %d, "
	       "\"rate_cap\": %ld, \"setup_s\": %.3f, \"rate_per_s\": %.1f}\n",
	       g.tunnel ? "true" : "false", g.nsrc, procs, g.parallel, rate, sum.setup_ms / 1000.0,
	       sum.setup_ms ? sum.established * 1000.0 / sum.setup_ms : 0.0);
	fflush(stdout);
	/* every process is idle now: start the hold in all of them at once */
	for (int k = 0; k < procs; k++)
		if (write_all(go[1], "g", 1) != 0)
			return 1;
	if (gather(up[0], procs, &sum) != 0)
		return 1;
	printf("{\"hold_s\": %.3f, \"alive\": %ld, ", sum.hold_ms / 1000.0, sum.alive);
	print_reasons("closed_during_hold", sum.closed);
	printf(", \"pings\": {\"min\": %ld, \"mean\": %.3f, \"max\": %ld, \"total\": %ld, "
	       "\"conns_without\": %ld, \"max_gap_ms\": %ld}, \"acks_sent\": %ld, "
	       "\"writes_blocked\": %ld}\n",
	       sum.pmin < 0 ? 0 : sum.pmin, sum.alive ? (double)sum.ptotal / sum.alive : 0.0,
	       sum.pmax, sum.ptotal, sum.zero, sum.gap_max, sum.acks, sum.writes_blocked);
	fflush(stdout);
	while (wait(NULL) > 0)
		;
	SSL_CTX_free(g.ctx);
	return 0;
}
