/*
 * cp/admin/httpd_req.c (the sans-I/O request parser) and cp/admin/httpd.c
 * (the non-blocking server): the parser's answers, whole and cut at every
 * byte; then the server on loopback sockets, driven by the test with its
 * own clock: answers, keep-alive and pipelining, partial input, a slow
 * client beside a quick one, the per-request deadline, the client cap,
 * oversized requests and two listeners with their own tables.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "wp/counters.h"

/* ---- parser ----------------------------------------------------------------- */

static int parse(const char *s, size_t max, struct wp_httpd_req *req)
{
	struct wp_httpd_req_parser p = {.max_request = max};

	return wp_httpd_req_parse(&p, s, strlen(s), req);
}

/* The same input fed one byte more at a time gives the same answer, and
 * "incomplete" until the end. */
static int parse_bytewise(const char *s, size_t max, struct wp_httpd_req *req)
{
	struct wp_httpd_req_parser p = {.max_request = max};
	size_t n = strlen(s);

	for (size_t i = 1; i <= n; i++) {
		int rc = wp_httpd_req_parse(&p, s, i, req);

		if (rc != 0 || i == n)
			return rc;
	}
	return 0;
}

static void test_parse_ok(void **state)
{
	struct wp_httpd_req r;

	(void)state;
	assert_int_equal(parse("GET /config_dump?a=1 HTTP/1.1\r\nHost: x\r\n\r\n", 8192, &r), 1);
	assert_int_equal(r.method, WP_HTTPD_GET);
	assert_string_equal(r.path, "/config_dump");
	assert_string_equal(r.query, "a=1");
	assert_int_equal(r.minor, 1);
	assert_true(r.keep_alive);
	assert_int_equal(r.head_len, strlen("GET /config_dump?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
	assert_int_equal(r.body_len, 0);

	assert_int_equal(parse("HEAD /x HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, "
	                       "CLOSE\r\n\r\n",
	                       8192, &r),
	                 1);
	assert_int_equal(r.method, WP_HTTPD_HEAD);
	assert_false(r.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", 8192, &r), 1);
	assert_false(r.keep_alive);
	assert_int_equal(parse("GET / HTTP/1.0\r\nconnection:keep-alive\r\n\r\n", 8192, &r), 1);
	assert_true(r.keep_alive);
	assert_int_equal(parse("DELETE /x HTTP/1.1\r\nHost: x\r\n\r\n", 8192, &r), 1);
	assert_int_equal(r.method, WP_HTTPD_OTHER);
	assert_int_equal(parse("GET http://h:15000/stats?x HTTP/1.1\r\nHost: h\r\n\r\n", 8192, &r),
	                 1);
	assert_string_equal(r.path, "/stats");
	assert_string_equal(r.query, "x");
	assert_int_equal(parse("GET http://h HTTP/1.1\r\nHost: h\r\n\r\n", 8192, &r), 1);
	assert_string_equal(r.path, "/");
	assert_int_equal(
	        parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 8192, &r), 1);
	assert_int_equal(r.body_len, 5);
	/* an empty field value and trailing whitespace are fine */
	assert_int_equal(parse("GET / HTTP/1.1\r\nHost: x\r\nX-A:\r\nX-B: v \t\r\n\r\n", 8192, &r),
	                 1);
}

static void test_parse_refusals(void **state)
{
	static const struct {
		const char *in;
		int rc;
	} cases[] = {
	        {"GET / HTTP/1.1\nHost: x\n\n", -400},                  /* bare LF */
	        {"GET / HTTP/1.1\r\nHost: x\r\n\n", -400},              /* bare LF at the end */
	        {"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", -400}, /* obs-fold */
	        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", -400},           /* space before colon */
	        {"GET / HTTP/1.1\r\n\r\n", -400},                       /* no Host */
	        {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", -400},
	        {"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", -400},  /* bare CR */
	        {"GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", -400}, /* control character */
	        {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", -400},
	        {"GET x HTTP/1.1\r\nHost: x\r\n\r\n", -400},
	        {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", -400},
	        {"GET / HTTP/11\r\nHost: x\r\n\r\n", -400},
	        {"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", -400},
	        {"G(T / HTTP/1.1\r\nHost: x\r\n\r\n", -400},
	        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", -505},
	        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", -411},
	        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: "
	         "3\r\n\r\n",
	         -400},
	        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
	         -400},
	        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\n", -400},
	        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", -400},
	        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n", -413},
	};
	struct wp_httpd_req r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int whole = parse(cases[i].in, 1024, &r),
		    cut = parse_bytewise(cases[i].in, 1024, &r);

		if (whole != cases[i].rc || cut != cases[i].rc)
			fail_msg("case %zu: %d whole, %d cut, expected %d", i, whole, cut,
			         cases[i].rc);
	}
}

static void test_parse_limits(void **state)
{
	static char big[4096];
	struct wp_httpd_req_parser p = {.max_request = 1024};
	struct wp_httpd_req r;
	size_t n;

	(void)state;
	/* a request line longer than the limit: 414; fields: 431 */
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	assert_int_equal(wp_httpd_req_parse(&p, big, 1023, &r), 0);
	assert_int_equal(wp_httpd_req_parse(&p, big, 1024, &r), -414);
	n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: x\r\nX: ");
	memset(big + n, 'b', sizeof(big) - n);
	wp_httpd_req_reset(&p);
	assert_int_equal(wp_httpd_req_parse(&p, big, 1024, &r), -431);
	/* a target beyond WP_HTTPD_TARGET_MAX in a head within the limit */
	n = (size_t)snprintf(big, sizeof(big), "GET /%0*d HTTP/1.1\r\nHost: x\r\n\r\n",
	                     WP_HTTPD_TARGET_MAX, 0);
	p.max_request = sizeof(big);
	wp_httpd_req_reset(&p);
	assert_int_equal(wp_httpd_req_parse(&p, big, n, &r), -414);
	/* exactly at the limit is fine */
	n = (size_t)snprintf(big, sizeof(big),
	                     "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n");
	p.max_request = n + 3;
	wp_httpd_req_reset(&p);
	assert_int_equal(wp_httpd_req_parse(&p, big, n, &r), 1);
	p.max_request = n + 2;
	wp_httpd_req_reset(&p);
	assert_int_equal(wp_httpd_req_parse(&p, big, n, &r), -413);
}

static void test_parse_pipelined(void **state)
{
	static const char two[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: "
	                          "x\r\nConnection: close\r\n\r\nGET /c";
	struct wp_httpd_req_parser p = {.max_request = 8192};
	struct wp_httpd_req r;
	size_t off;

	(void)state;
	assert_int_equal(wp_httpd_req_parse(&p, two, sizeof(two) - 1, &r), 1);
	assert_string_equal(r.path, "/a");
	off = r.head_len;
	wp_httpd_req_reset(&p);
	assert_int_equal(wp_httpd_req_parse(&p, two + off, sizeof(two) - 1 - off, &r), 1);
	assert_string_equal(r.path, "/b");
	assert_false(r.keep_alive);
	off += r.head_len;
	wp_httpd_req_reset(&p);
	assert_int_equal(wp_httpd_req_parse(&p, two + off, sizeof(two) - 1 - off, &r), 0);
}

/* ---- server ------------------------------------------------------------------- */

static uint64_t ctr[WP_CTR_MAX];
static uint64_t clock0; /* the server's clock unless a test moves it */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void h_hello(void *ctx, const struct wp_httpd_req *req, struct wp_httpd_reply *rep)
{
	char buf[2 * WP_HTTPD_TARGET_MAX + 16];

	snprintf(buf, sizeof(buf), "%s %s?%s\n", (const char *)ctx, req->path, req->query);
	rep->status = 200;
	rep->ctype = "text/plain";
	rep->body = strdup(buf);
}

static void h_big(void *ctx, const struct wp_httpd_req *req, struct wp_httpd_reply *rep)
{
	(void)ctx;
	(void)req;
	rep->status = 200;
	rep->body = malloc(16 << 20);
	memset(rep->body, 'z', (16 << 20) - 1);
	rep->body[(16 << 20) - 1] = '\0';
}

static const struct wp_httpd_route routes_a[] = {
        {"/hello", h_hello},
        {"/big", h_big},
        {NULL, NULL},
};
static const struct wp_httpd_route routes_b[] = {
        {"/metrics", h_hello},
        {NULL, NULL},
};

static struct wp_httpd *server(unsigned max_clients, unsigned max_request, uint16_t *port)
{
	struct wp_httpd_config cfg = {
	        .max_clients = max_clients,
	        .request_timeout_ms = 1000,
	        .max_request_bytes = max_request,
	        .ctr = ctr,
	};
	struct wp_httpd *h = wp_httpd_create(&cfg);
	struct wp_addr any = {0};

	memset(ctr, 0, sizeof(ctr));
	clock0 = now_ms();
	assert_non_null(h);
	assert_int_equal(wp_httpd_listen(h, &any, 0, routes_a, "A", port), 0);
	return h;
}

/* A connected client; rcvbuf > 0 sets its receive buffer first. */
static int client_rcvbuf(uint16_t port, int rcvbuf)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static int client(uint16_t port)
{
	return client_rcvbuf(port, 0);
}

static void sends(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Runs the server (at time at, 0 = clock0) for up to ~0.5 s, reading what fd
 * receives into buf (NUL-terminated) until want bytes or EOF. Returns the
 * bytes read, or -1 - bytes when the connection was closed. */
static int pump(struct wp_httpd *h, uint64_t at, int fd, char *buf, size_t cap, size_t want)
{
	size_t got = 0;

	for (int i = 0; i < 100; i++) {
		struct pollfd pf = {.fd = wp_httpd_fd(h), .events = POLLIN};
		ssize_t r;

		poll(&pf, 1, 5);
		wp_httpd_run(h, at ? at : clock0);
		while (got < cap - 1 && (r = recv(fd, buf + got, cap - 1 - got, MSG_DONTWAIT)) > 0)
			got += (size_t)r;
		buf[got] = '\0';
		if (got >= want)
			return (int)got;
		if (r == 0 || (r < 0 && errno != EAGAIN)) /* closed */
			return -1 - (int)got;
	}
	return (int)got;
}

static void test_server_answers(void **state)
{
	uint16_t port;
	struct wp_httpd *h = server(4, 8192, &port);
	static const char want[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
	                           "13\r\nConnection: keep-alive\r\n\r\nA /hello?x=1\n";
	char buf[4096];
	int fd = client(port);

	(void)state;
	sends(fd, "GET /hello?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_int_equal(pump(h, 0, fd, buf, sizeof(buf), strlen(want)), (int)strlen(want));
	assert_string_equal(buf, want);
	/* the same connection again (keep-alive), HEAD: no body */
	sends(fd, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(pump(h, 0, fd, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "Content-Length: 10\r\n"));
	assert_non_null(strstr(buf, "\r\n\r\n"));
	assert_string_equal(strstr(buf, "\r\n\r\n"), "\r\n\r\n");
	/* 404 keeps the connection; 405 too, with Allow */
	sends(fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(pump(h, 0, fd, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 404 Not Found\r\n"));
	/* HEAD of a 404: the length, no body; the connection goes on */
	sends(fd, "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(pump(h, 0, fd, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 404 Not Found\r\n"));
	assert_string_equal(strstr(buf, "\r\n\r\n"), "\r\n\r\n");
	sends(fd, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
	assert_true(pump(h, 0, fd, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "HTTP/1.1 405 Method Not Allowed\r\n"));
	assert_non_null(strstr(buf, "Allow: GET, HEAD\r\n"));
	/* a malformed one ends the connection */
	sends(fd, "GET / HTTP/1.1\nHost: x\n\n");
	assert_true(pump(h, 0, fd, buf, sizeof(buf), 1 << 20) < 0);
	assert_non_null(strstr(buf, "HTTP/1.1 400 Bad Request\r\n"));
	assert_non_null(strstr(buf, "Connection: close\r\n"));
	close(fd);
	assert_int_equal(ctr[WP_CTR_ADMIN_REQUEST], 2);
	assert_int_equal(ctr[WP_CTR_ADMIN_NOT_FOUND], 2);
	assert_int_equal(ctr[WP_CTR_ADMIN_BAD_REQUEST], 2);
	wp_httpd_destroy(h);
}

static void test_server_pipelined_and_partial(void **state)
{
	uint16_t port;
	struct wp_httpd *h = server(4, 8192, &port);
	char buf[4096];
	int fd = client(port), n;
	const char *a, *b;

	(void)state;
	/* six requests in one write (more than one turn's worth); the last
	 * closes */
	sends(fd, "GET /hello?1 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?2 HTTP/1.1\r\nHost: x\r\n\r\n"
	          "GET /hello?3 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?4 HTTP/1.1\r\nHost: x\r\n\r\n"
	          "GET /hello?5 HTTP/1.1\r\nHost: x\r\n\r\n"
	          "GET /hello?6 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	n = pump(h, 0, fd, buf, sizeof(buf), 1 << 20);
	assert_true(n < 0); /* closed after the sixth */
	a = buf;
	for (int i = 1; i <= 6; i++) {
		char want[32];

		snprintf(want, sizeof(want), "A /hello?%d\n", i);
		b = strstr(buf, want);
		if (!b || b < a)
			fail_msg("answer %d missing or out of order: %s", i, buf);
		a = b;
	}
	close(fd);
	/* one request in pieces, the server run between them */
	fd = client(port);
	sends(fd, "GET /hel");
	assert_int_equal(pump(h, 0, fd, buf, sizeof(buf), 1), 0);
	sends(fd, "lo?p HTTP/1.1\r\nHo");
	assert_int_equal(pump(h, 0, fd, buf, sizeof(buf), 1), 0);
	sends(fd, "st: x\r\n\r");
	assert_int_equal(pump(h, 0, fd, buf, sizeof(buf), 1), 0);
	sends(fd, "\n");
	assert_true(pump(h, 0, fd, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "A /hello?p\n"));
	close(fd);
	assert_int_equal(ctr[WP_CTR_ADMIN_REQUEST], 7);
	wp_httpd_destroy(h);
}

/* A client that never finishes its request does not hold anyone else, and
 * is closed at its deadline (with a 408); one that sends nothing is closed
 * too; both count as timeouts; an idle keep-alive connection is closed
 * without counting. */
static void test_server_deadline(void **state)
{
	uint16_t port;
	struct wp_httpd *h = server(4, 8192, &port);
	char buf[4096];
	int slow = client(port), mute = client(port), quick = client(port);
	uint64_t t0 = now_ms();

	(void)state;
	sends(slow, "GET /hello HTTP/1.1\r\n");
	sends(quick, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(pump(h, t0, quick, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "200 OK"));
	assert_int_equal(pump(h, t0 + 900, slow, buf, sizeof(buf), 1), 0);
	assert_in_range(wp_httpd_timeout(h, t0 + 900), 1, 1000);
	/* past the deadline of all three (quick's restarted after its answer) */
	assert_true(pump(h, t0 + 3000, slow, buf, sizeof(buf), 1 << 20) < 0);
	assert_non_null(strstr(buf, "408 Request Timeout"));
	assert_true(pump(h, t0 + 3000, mute, buf, sizeof(buf), 1 << 20) == -1);
	assert_true(pump(h, t0 + 3000, quick, buf, sizeof(buf), 1 << 20) == -1);
	assert_int_equal(ctr[WP_CTR_ADMIN_TIMEOUT], 2);
	assert_int_equal(wp_httpd_timeout(h, t0 + 3000), -1);
	close(slow);
	close(mute);
	close(quick);
	wp_httpd_destroy(h);
}

/* An answer the client does not read is bounded by the deadline too. */
static void test_server_unread_answer(void **state)
{
	uint16_t port;
	struct wp_httpd *h = server(4, 8192, &port);
	int fd = client_rcvbuf(port, 4096);
	uint64_t t0 = now_ms();

	(void)state;
	sends(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
	for (int i = 0; i < 10; i++)
		wp_httpd_run(h, t0);
	assert_true(wp_httpd_timeout(h, t0) > 0); /* still writing */
	wp_httpd_run(h, t0 + 1001);
	assert_int_equal(wp_httpd_timeout(h, t0 + 1001), -1);
	assert_int_equal(ctr[WP_CTR_ADMIN_TIMEOUT], 1);
	close(fd);
	wp_httpd_destroy(h);
}

static void test_server_client_cap(void **state)
{
	uint16_t port;
	struct wp_httpd *h = server(2, 8192, &port);
	char buf[4096];
	int a = client(port), b = client(port), c;

	(void)state;
	assert_int_equal(pump(h, 0, a, buf, sizeof(buf), 1), 0);
	c = client(port);
	assert_true(pump(h, 0, c, buf, sizeof(buf), 1 << 20) < 0);
	assert_non_null(strstr(buf, "HTTP/1.1 503 Service Unavailable\r\n"));
	assert_int_equal(ctr[WP_CTR_ADMIN_CLIENT_REFUSED], 1);
	/* the two admitted still get answers */
	sends(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(pump(h, 0, b, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "200 OK"));
	/* a closed slot is free again */
	close(a);
	close(c);
	assert_int_equal(pump(h, 0, b, buf, sizeof(buf), 1), 0);
	c = client(port);
	sends(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(pump(h, 0, c, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "200 OK"));
	assert_int_equal(ctr[WP_CTR_ADMIN_CLIENT_REFUSED], 1);
	close(b);
	close(c);
	wp_httpd_destroy(h);
}

static void test_server_too_large(void **state)
{
	uint16_t port;
	struct wp_httpd *h = server(4, 1024, &port);
	static char big[2048];
	char buf[4096];
	int fd = client(port);

	(void)state;
	snprintf(big, sizeof(big), "GET /hello HTTP/1.1\r\nHost: x\r\nX: %01500d\r\n\r\n", 0);
	sends(fd, big);
	assert_true(pump(h, 0, fd, buf, sizeof(buf), 1 << 20) < 0);
	assert_non_null(strstr(buf, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
	close(fd);
	fd = client(port);
	sends(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
	assert_true(pump(h, 0, fd, buf, sizeof(buf), 1 << 20) < 0);
	assert_non_null(strstr(buf, "HTTP/1.1 413 Content Too Large\r\n"));
	close(fd);
	assert_int_equal(ctr[WP_CTR_ADMIN_TOO_LARGE], 2);
	assert_int_equal(ctr[WP_CTR_ADMIN_REQUEST], 0);
	wp_httpd_destroy(h);
}

/* Two listeners on one server, each with its own table and context. */
static void test_server_two_listeners(void **state)
{
	uint16_t pa, pb;
	struct wp_httpd *h = server(4, 8192, &pa);
	struct wp_addr any = {0};
	char buf[4096];
	int a, b;

	(void)state;
	assert_int_equal(wp_httpd_listen(h, &any, 0, routes_b, "B", &pb), 0);
	a = client(pa);
	b = client(pb);
	sends(a, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	sends(b, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	assert_true(pump(h, 0, a, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "404 Not Found"));
	assert_true(pump(h, 0, b, buf, sizeof(buf), 1) > 0);
	assert_non_null(strstr(buf, "B /metrics?\n"));
	close(a);
	close(b);
	wp_httpd_destroy(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_ok),
	        cmocka_unit_test(test_parse_refusals),
	        cmocka_unit_test(test_parse_limits),
	        cmocka_unit_test(test_parse_pipelined),
	        cmocka_unit_test(test_server_answers),
	        cmocka_unit_test(test_server_pipelined_and_partial),
	        cmocka_unit_test(test_server_deadline),
	        cmocka_unit_test(test_server_unread_answer),
	        cmocka_unit_test(test_server_client_cap),
	        cmocka_unit_test(test_server_too_large),
	        cmocka_unit_test(test_server_two_listeners),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
