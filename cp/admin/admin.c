/*
 * The admin HTTP endpoint's server side: a loopback kernel socket served
 * from the control-plane thread, one short request at a time (GET only,
 * Connection: close). Deliberately tiny: the answers are built by the
 * runner (cp.c) and requests are bounded (8 KiB, 2 s) so a stuck client
 * cannot hold the control plane for long.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"

int wp_admin_listen(const struct wp_addr *addr, uint16_t port, uint16_t *bound)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int fd, one = 1;

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
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 16)) {
		int e = -errno;

		close(fd);
		return e;
	}
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	*bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                        : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		struct pollfd pf = {.fd = fd, .events = POLLOUT};
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return;
		if (poll(&pf, 1, 2000) <= 0)
			return;
	}
}

static void respond(int fd, int status, const char *ctype, const char *body, size_t blen)
{
	char hdr[256];
	const char *txt = status == 200   ? "OK"
	                  : status == 404 ? "Not Found"
	                  : status == 405 ? "Method Not Allowed"
	                  : status == 503 ? "Service Unavailable"
	                                  : "Bad Request";
	int n = snprintf(hdr, sizeof(hdr),
	                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	                 "Connection: close\r\n\r\n",
	                 status, txt, ctype, blen);

	write_all(fd, hdr, (size_t)n);
	write_all(fd, body, blen);
}

int wp_admin_serve_one(int lfd, wp_admin_handler_cb handler, void *ctx)
{
	char req[8192], method[16], path[1024];
	size_t len = 0;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct wp_admin_reply rep = {0};

	if (fd < 0)
		return errno == EAGAIN ? 0 : -errno;
	for (;;) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&pf, 1, 2000) <= 0)
			goto bad;
		r = recv(fd, req + len, sizeof(req) - 1 - len, 0);
		if (r <= 0)
			goto bad;
		len += (size_t)r;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
		if (len == sizeof(req) - 1)
			goto bad;
	}
	if (sscanf(req, "%15s %1023s HTTP/1.%*c", method, path) != 2)
		goto bad;
	if (strcmp(method, "GET")) {
		respond(fd, 405, "text/plain", "only GET\n", 9);
		close(fd);
		return -EINVAL;
	}
	handler(ctx, path, &rep);
	respond(fd, rep.status, rep.ctype ? rep.ctype : "application/json",
	        rep.body ? rep.body : "", rep.body ? strlen(rep.body) : 0);
	free(rep.body);
	close(fd);
	return rep.status == 200 ? 1 : -ENOENT;
bad:
	respond(fd, 400, "text/plain", "bad request\n", 12);
	close(fd);
	return -EINVAL;
}
