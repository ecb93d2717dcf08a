/*
 * The kernel-side peer of bench/tcp_bench.py: the same three TCP diagnostic
 * services waypointd offers (echo 7, discard 9, source 19) served through
 * kernel sockets by one epoll thread, so that the kernel run's CPU is the
 * kernel's TCP and a minimal server, not an interpreter.
 *
 *   tcp_peer [PORT_OFFSET]      prints {"ready": true} once listening
 *
 * discard reads until EOF and closes; source reads one decimal line (the
 * byte count), sends that many zero bytes and closes; echo writes back what
 * it reads until EOF. Runs until killed (the benchmark owns its lifetime).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK (1 << 20)
#define MAXFD 65536

enum svc { ECHO, DISCARD, SOURCE };

/* One accepted connection; the listeners' fds map to their service. */
struct conn {
	enum svc svc;
	int listener;
	char line[32]; /* source: the request line so far */
	size_t line_len;
	unsigned long long left; /* source: bytes still to send */
	unsigned char *pend;     /* echo: bytes the client has not taken yet (owned) */
	size_t pend_off, pend_len;
};

static struct conn *conns[MAXFD];
static unsigned char buf[CHUNK];
static unsigned char zeros[CHUNK];

static void drop(int ep, int fd)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	close(fd);
	free(conns[fd]->pend);
	free(conns[fd]);
	conns[fd] = NULL;
}

static void want(int ep, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};

	epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

/* Sends what the source connection still owes; 1 when done, 0 if blocked, -1 on error. */
static int source_send(int fd, struct conn *c)
{
	while (c->left) {
		size_t n = c->left < CHUNK ? (size_t)c->left : CHUNK;
		ssize_t w = write(fd, zeros, n);

		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->left -= (unsigned long long)w;
	}
	return 1;
}

/* Echo: writes what is pending; 1 when all written, 0 if blocked, -1 on error. */
static int echo_flush(int fd, struct conn *c)
{
	while (c->pend_len) {
		ssize_t w = write(fd, c->pend + c->pend_off, c->pend_len);

		if (w < 0)
			return errno == EAGAIN ? 0 : -1;
		c->pend_off += (size_t)w;
		c->pend_len -= (size_t)w;
	}
	return 1;
}

/* Echo: writes r bytes of buf; what the socket does not take is kept. */
static int echo_write(int fd, struct conn *c, size_t r)
{
	ssize_t w = write(fd, buf, r);

	if (w < 0 && errno != EAGAIN)
		return -1;
	if (w < 0)
		w = 0;
	if ((size_t)w == r)
		return 1;
	c->pend = malloc(r - (size_t)w);
	if (c->pend == NULL)
		return -1;
	memcpy(c->pend, buf + w, r - (size_t)w);
	c->pend_off = 0;
	c->pend_len = r - (size_t)w;
	return 0;
}

static void on_event(int ep, int fd)
{
	struct conn *c = conns[fd];
	ssize_t r;
	int rc;

	if (c->svc == SOURCE && c->left) {
		if (source_send(fd, c) != 0)
			drop(ep, fd);
		return;
	}
	if (c->svc == ECHO && c->pend_len) {
		rc = echo_flush(fd, c);
		if (rc < 0)
			drop(ep, fd);
		if (rc <= 0)
			return;
		free(c->pend);
		c->pend = NULL;
		want(ep, fd, EPOLLIN);
	}
	for (;;) {
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			drop(ep, fd);
			return;
		}
		if (c->svc == DISCARD)
			continue;
		if (c->svc == ECHO) {
			rc = echo_write(fd, c, (size_t)r);
			if (rc < 0)
				drop(ep, fd);
			else if (rc == 0) /* the client does not read: stop reading too */
				want(ep, fd, EPOLLOUT);
			if (rc <= 0)
				return;
			continue;
		}
		/* source: collect the line, then send */
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] == '\n') {
				c->line[c->line_len] = '\0';
				c->left = strtoull(c->line, NULL, 10);
				rc = source_send(fd, c);
				if (rc != 0)
					drop(ep, fd);
				else
					want(ep, fd, EPOLLOUT);
				return;
			}
			if (c->line_len + 1 < sizeof(c->line))
				c->line[c->line_len++] = (char)buf[i];
		}
	}
}

static int listen_on(int ep, int port, enum svc svc)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct epoll_event ev = {.events = EPOLLIN};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (fd < 0 || fd >= MAXFD)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4096) != 0)
		return -1;
	conns[fd] = calloc(1, sizeof(struct conn));
	if (conns[fd] == NULL)
		return -1;
	conns[fd]->svc = svc;
	conns[fd]->listener = 1;
	ev.data.fd = fd;
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

int main(int argc, char **argv)
{
	int off = argc > 1 ? atoi(argv[1]) : 0, ep = epoll_create1(0);
	struct epoll_event evs[256];

	if (ep < 0 || listen_on(ep, 7 + off, ECHO) || listen_on(ep, 9 + off, DISCARD) ||
	    listen_on(ep, 19 + off, SOURCE)) {
		perror("tcp_peer");
		return 1;
	}
	printf("{\"ready\": true}\n");
	fflush(stdout);
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (conns[fd] && conns[fd]->listener) {
				int c;

				while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};

					if (c >= MAXFD ||
					    (conns[c] = calloc(1, sizeof(struct conn))) == NULL) {
						close(c);
						continue;
					}
					conns[c]->svc = conns[fd]->svc;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			if (conns[fd])
				on_event(ep, fd);
		}
	}
}
