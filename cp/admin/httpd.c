/*
 * The control plane's HTTP/1.1 server (see httpd.h): listeners and
 * connections on one level-triggered epoll descriptor, driven by the
 * owner's loop through wp_httpd_run. A connection is a small state
 * machine: READING (bytes into its buffer until httpd_req.c finds a whole
 * request), WRITING (the answer, header and body in one sendmsg, resumed on
 * EPOLLOUT), then READING again for the next request, or LINGER: after an
 * answer that closes the connection, our side is shut down and what the
 * client still sends is read and dropped for a moment, so the kernel does
 * not reset the connection under an answer the client has not read yet.
 * Every state has the connection's deadline; nothing waits anywhere else.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "httpd.h"
#include "wp/common.h"
#include "wp/counters.h"
#include "wp/http_reason.h"

#define ACCEPTS_PER_RUN  64  /* then other work gets a turn */
#define EVENTS_PER_RUN   32  /* the rest stay ready for the next run */
#define LINGER_MS        500 /* how long a closing connection drains the client */
#define LINGER_READS     16  /* reads per event while lingering */
#define ACCEPT_PAUSE_MS  100 /* after accept() fails for want of resources */
#define ANSWERS_PER_TURN 4   /* pipelined answers to one client before the others get a turn */

enum kind { LISTENER, CONN };
enum state { READING, WRITING, LINGER };

struct listener {
	enum kind kind; /* first: epoll data points at a listener or a conn */
	struct listener *next;
	int fd;
	unsigned n_conns;
	uint64_t paused_until; /* 0 = accepting */
	const struct wp_httpd_route *routes;
	void *ctx;
};

struct conn {
	enum kind kind;
	struct conn *prev, *next;
	struct listener *l;
	int fd;
	enum state st;
	bool served;      /* an answer was written: an idle close is no timeout */
	bool close_after; /* the answer being written is the last */
	uint64_t deadline;
	struct wp_httpd_req_parser p;
	struct wp_httpd_req req;
	char hdr[320];
	size_t hdr_len;
	char *body; /* malloc'd by a handler, or a static text when !body_owned */
	bool body_owned;
	size_t body_len, sent; /* sent counts header bytes, then body bytes */
	size_t in_len;
	char buf[]; /* max_request_bytes */
};

struct wp_httpd {
	struct wp_httpd_config cfg;
	int epfd;
	struct listener *listeners;
	struct conn *conns;
};

static void count(struct wp_httpd *h, enum wp_ctr c)
{
	wp_ctr_inc(h->cfg.ctr, c);
}

/* ---- set-up ----------------------------------------------------------------- */

struct wp_httpd *wp_httpd_create(const struct wp_httpd_config *cfg)
{
	struct wp_httpd *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->cfg = *cfg;
	h->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epfd < 0) {
		free(h);
		return NULL;
	}
	return h;
}

int wp_httpd_listen(struct wp_httpd *h, const struct wp_addr *addr, uint16_t port,
                    const struct wp_httpd_route *routes, void *ctx, uint16_t *bound)
{
	struct sockaddr_storage ss = {0};
	struct epoll_event ev = {.events = EPOLLIN};
	struct listener *l;
	socklen_t sl;
	int fd, one = 1, e;

	if (addr->family == WP_AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, addr->v6, 16);
		s6->sin6_port = htons(port);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr =
		        addr->family == WP_AF_INET ? addr->v4 : htonl(INADDR_LOOPBACK);
		s4->sin_port = htons(port);
		sl = sizeof(*s4);
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		e = -errno;
		free(l);
		return e;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 64))
		goto fail;
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl))
		goto fail;
	*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                        : ((struct sockaddr_in *)&ss)->sin_port);
	l->kind = LISTENER;
	l->fd = fd;
	l->routes = routes;
	l->ctx = ctx;
	ev.data.ptr = l;
	if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev))
		goto fail;
	l->next = h->listeners;
	h->listeners = l;
	return 0;
fail:
	e = -errno;
	close(fd);
	free(l);
	return e;
}

int wp_httpd_fd(const struct wp_httpd *h)
{
	return h->epfd;
}

/* ---- connections -------------------------------------------------------------- */

static void set_events(struct wp_httpd *h, struct conn *c, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = c};

	epoll_ctl(h->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void drop_body(struct conn *c)
{
	if (c->body_owned)
		free(c->body);
	c->body = NULL;
	c->body_owned = false;
	c->body_len = 0;
}

static void conn_close(struct wp_httpd *h, struct conn *c)
{
	close(c->fd); /* also leaves the epoll set */
	drop_body(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		h->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->l->n_conns--;
	free(c);
}

/* Answers a connection beyond the cap without keeping it: one non-blocking
 * send into an empty socket buffer, then close. */
static void refuse(int fd)
{
	static const char msg[] =
	        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
	        "Content-Length: 17\r\nConnection: close\r\n\r\ntoo many clients\n";

	(void)!send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void accept_some(struct wp_httpd *h, struct listener *l, uint64_t now)
{
	for (int i = 0; i < ACCEPTS_PER_RUN; i++) {
		struct epoll_event ev = {.events = EPOLLIN};
		int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct conn *c;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* out of descriptors or memory: the pending connection
			 * stays queued and the listener readable; rest a moment
			 * rather than spin on it */
			count(h, WP_CTR_ADMIN_ACCEPT_FAILED);
			l->paused_until = now + ACCEPT_PAUSE_MS;
			ev.events = 0;
			ev.data.ptr = l;
			epoll_ctl(h->epfd, EPOLL_CTL_MOD, l->fd, &ev);
			return;
		}
		if (l->n_conns >= h->cfg.max_clients) {
			count(h, WP_CTR_ADMIN_CLIENT_REFUSED);
			refuse(fd);
			continue;
		}
		c = malloc(sizeof(*c) + h->cfg.max_request_bytes);
		if (!c) {
			count(h, WP_CTR_ADMIN_ACCEPT_FAILED);
			refuse(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->kind = CONN;
		c->fd = fd;
		c->l = l;
		c->st = READING;
		c->deadline = now + h->cfg.request_timeout_ms;
		c->p.max_request = h->cfg.max_request_bytes;
		ev.data.ptr = c;
		if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			count(h, WP_CTR_ADMIN_ACCEPT_FAILED);
			close(fd);
			free(c);
			continue;
		}
		c->next = h->conns;
		if (h->conns)
			h->conns->prev = c;
		h->conns = c;
		l->n_conns++;
	}
}

/* Prepares the answer: status line and headers into c->hdr; body (owned
 * when own) is sent unless the request was HEAD. */
static void answer(struct conn *c, int status, const char *ctype, char *body, bool own,
                   bool keep_alive)
{
	size_t blen = body ? strlen(body) : 0;
	int n;

	n = snprintf(c->hdr, sizeof(c->hdr),
	             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
	             "Connection: %s\r\n\r\n",
	             status, wp_http_reason((unsigned)status), ctype ? ctype : "application/json",
	             blen, status == 405 ? "Allow: GET, HEAD\r\n" : "",
	             keep_alive ? "keep-alive" : "close");
	c->hdr_len = (size_t)n < sizeof(c->hdr) ? (size_t)n : sizeof(c->hdr) - 1;
	c->body = body;
	c->body_owned = own;
	c->body_len = blen;
	if (c->req.method == WP_HTTPD_HEAD) /* the length is announced, the body is not sent */
		drop_body(c);
	c->sent = 0;
	c->close_after = !keep_alive;
	c->st = WRITING;
}

static void answer_error(struct wp_httpd *h, struct conn *c, int status)
{
	static char text[][32] = {"bad request\n", "request too large\n", "not found\n",
	                          "only GET and HEAD\n"};
	char *body = status == 404                                     ? text[2]
	             : status == 405                                   ? text[3]
	             : status == 413 || status == 414 || status == 431 ? text[1]
	                                                               : text[0];

	count(h, status == 404                                     ? WP_CTR_ADMIN_NOT_FOUND
	         : status == 413 || status == 414 || status == 431 ? WP_CTR_ADMIN_TOO_LARGE
	                                                           : WP_CTR_ADMIN_BAD_REQUEST);
	/* a malformed or oversized request leaves the stream out of step:
	 * the connection ends with the answer; 404 and 405 were whole requests */
	answer(c, status, "text/plain", body, false,
	       (status == 404 || status == 405) && c->req.keep_alive);
}

static void dispatch(struct wp_httpd *h, struct conn *c)
{
	const struct wp_httpd_route *r;
	struct wp_httpd_reply rep = {0};

	if (c->req.method == WP_HTTPD_OTHER) {
		answer_error(h, c, 405);
		return;
	}
	for (r = c->l->routes; r->path; r++)
		if (!strcmp(r->path, c->req.path))
			break;
	if (!r->path) {
		answer_error(h, c, 404);
		return;
	}
	r->fn(c->l->ctx, &c->req, &rep);
	count(h, WP_CTR_ADMIN_REQUEST);
	answer(c, rep.status, rep.ctype, rep.body, true, c->req.keep_alive);
}

/* Writes what the socket takes. 1 all written, 0 more to write, <0 error. */
static int flush(struct conn *c)
{
	while (c->sent < c->hdr_len + c->body_len) {
		struct iovec iov[2];
		struct msghdr m = {.msg_iov = iov};
		ssize_t w;

		if (c->sent < c->hdr_len) {
			iov[0].iov_base = c->hdr + c->sent;
			iov[0].iov_len = c->hdr_len - c->sent;
			iov[1].iov_base = c->body;
			iov[1].iov_len = c->body_len;
			m.msg_iovlen = c->body_len ? 2 : 1;
		} else {
			iov[0].iov_base = c->body + (c->sent - c->hdr_len);
			iov[0].iov_len = c->hdr_len + c->body_len - c->sent;
			m.msg_iovlen = 1;
		}
		w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		}
		c->sent += (size_t)w;
	}
	return 1;
}

/*
 * Moves a connection on as far as it can go without waiting: parses what
 * it holds, answers, writes, and starts on the next pipelined request.
 * eof: the client will send nothing more. Returns false when c was closed.
 */
static bool advance(struct wp_httpd *h, struct conn *c, uint64_t now, bool eof)
{
	for (unsigned answered = 0;; answered++) {
		int rc;

		if (c->st == READING && answered == ANSWERS_PER_TURN && c->in_len) {
			/* more pipelined requests are buffered: come back next run
			 * (the socket is writable, so EPOLLOUT fires at once) */
			set_events(h, c, EPOLLIN | EPOLLOUT);
			return true;
		}

		if (c->st == READING) {
			rc = wp_httpd_req_parse(&c->p, c->buf, c->in_len, &c->req);
			if (rc == 1 && c->in_len < c->req.head_len + c->req.body_len)
				rc = 0; /* the body is still on its way */
			if (rc == 0) {
				if (!eof)
					return true;
				if (c->in_len)
					count(h, WP_CTR_ADMIN_CLIENT_CLOSED);
				conn_close(h, c);
				return false;
			}
			if (rc < 0) {
				c->req.method =
				        WP_HTTPD_GET; /* what the head said no longer counts */
				c->req.keep_alive = false;
				answer_error(h, c, -rc);
			} else {
				size_t used = c->req.head_len + c->req.body_len;

				dispatch(h, c);
				/* what follows is the next request (pipelining) */
				memmove(c->buf, c->buf + used, c->in_len - used);
				c->in_len -= used;
				wp_httpd_req_reset(&c->p);
			}
		}
		if (c->st == LINGER)
			return true;
		rc = flush(c);
		if (rc < 0) {
			count(h, WP_CTR_ADMIN_CLIENT_CLOSED);
			conn_close(h, c);
			return false;
		}
		if (rc == 0) {
			set_events(h, c, EPOLLOUT);
			return true;
		}
		drop_body(c);
		c->served = true;
		if (c->close_after) {
			shutdown(c->fd, SHUT_WR);
			c->st = LINGER;
			c->deadline = now + LINGER_MS;
			set_events(h, c, EPOLLIN);
			return true;
		}
		c->st = READING;
		c->deadline = now + h->cfg.request_timeout_ms;
		set_events(h, c, EPOLLIN);
	}
}

static void on_readable(struct wp_httpd *h, struct conn *c, uint64_t now)
{
	bool eof = false;

	if (c->st == LINGER) {
		for (int i = 0; i < LINGER_READS; i++) {
			ssize_t r = recv(c->fd, c->buf, h->cfg.max_request_bytes, 0);

			if (r > 0)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			conn_close(h, c); /* the client closed too: done */
			return;
		}
		return;
	}
	while (c->in_len < h->cfg.max_request_bytes) {
		ssize_t r =
		        recv(c->fd, c->buf + c->in_len, h->cfg.max_request_bytes - c->in_len, 0);

		if (r > 0) {
			c->in_len += (size_t)r;
			continue;
		}
		if (r == 0) {
			eof = true;
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		count(h, WP_CTR_ADMIN_CLIENT_CLOSED);
		conn_close(h, c);
		return;
	}
	/* A full buffer with nothing to parse is answered by the parser
	 * (431/414/413); bytes beyond it wait in the socket. */
	advance(h, c, now, eof);
}

static void on_event(struct wp_httpd *h, struct conn *c, uint32_t events, uint64_t now)
{
	if (c->st == WRITING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			advance(h, c, now, false);
		return;
	}
	if (c->st == READING && (events & EPOLLOUT)) {
		/* the rest of a pipelined batch (advance() asked for this) */
		set_events(h, c, EPOLLIN);
		if (!advance(h, c, now, false))
			return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		on_readable(h, c, now);
}

/* Closes what ran out of time. A client that never finished a request (or
 * never read its answer) counts as a timeout; one idle between requests
 * is just closed; a request half received gets a 408 if the socket takes
 * it at once. */
static void expire(struct wp_httpd *h, uint64_t now)
{
	struct conn *c = h->conns, *next;

	for (; c; c = next) {
		next = c->next;
		if (c->deadline > now)
			continue;
		if (c->st == WRITING || (c->st == READING && (c->in_len || !c->served)))
			count(h, WP_CTR_ADMIN_TIMEOUT);
		if (c->st == READING && c->in_len) {
			static const char msg[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: "
			                          "0\r\nConnection: close\r\n\r\n";

			(void)!send(c->fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
		conn_close(h, c);
	}
	for (struct listener *l = h->listeners; l; l = l->next) {
		if (l->paused_until && l->paused_until <= now) {
			struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};

			l->paused_until = 0;
			epoll_ctl(h->epfd, EPOLL_CTL_MOD, l->fd, &ev);
		}
	}
}

int wp_httpd_timeout(const struct wp_httpd *h, uint64_t now_ms)
{
	uint64_t first = UINT64_MAX;

	for (const struct conn *c = h->conns; c; c = c->next)
		if (c->deadline < first)
			first = c->deadline;
	for (const struct listener *l = h->listeners; l; l = l->next)
		if (l->paused_until && l->paused_until < first)
			first = l->paused_until;
	if (first == UINT64_MAX)
		return -1;
	if (first <= now_ms)
		return 0;
	return first - now_ms > INT32_MAX ? INT32_MAX : (int)(first - now_ms);
}

void wp_httpd_run(struct wp_httpd *h, uint64_t now_ms)
{
	struct epoll_event evs[EVENTS_PER_RUN];
	int n = epoll_wait(h->epfd, evs, EVENTS_PER_RUN, 0);

	for (int i = 0; i < n; i++) {
		enum kind *k = evs[i].data.ptr;

		if (*k == LISTENER)
			accept_some(h, (struct listener *)k, now_ms);
		else
			on_event(h, (struct conn *)k, evs[i].events, now_ms);
	}
	expire(h, now_ms);
}

void wp_httpd_destroy(struct wp_httpd *h)
{
	if (!h)
		return;
	while (h->conns)
		conn_close(h, h->conns);
	while (h->listeners) {
		struct listener *l = h->listeners;

		h->listeners = l->next;
		close(l->fd);
		free(l);
	}
	close(h->epfd);
	free(h);
}
