/*
 * `wpctl config dump [--admin HOST:PORT] [--store]`: prints the running
 * snapshot as JSON (GET /config_dump on the admin endpoint; with --store
 * also the object store's counts, ?view=store), and on stderr what the
 * endpoint says when that view is not current. Also home of the tiny
 * HTTP/1.1 GET client the admin-talking commands share; the admin server
 * is on loopback by default, so a plain socket is enough.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>

#include "wpctl.h"

int wp_wpctl_admin_get(const char *hostport, const char *path, char **body)
{
	char host[256], *req = NULL;
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
	struct timeval tv = {.tv_sec = 10};
	size_t len = 0, cap = 65536;
	char *buf = NULL, *sep;
	int fd = -1, status = -1, n;

	*body = NULL;
	if (!colon || (size_t)(colon - hostport) >= sizeof(host)) {
		fprintf(stderr, "wpctl: --admin wants HOST:PORT, got %s\n", hostport);
		return -EINVAL;
	}
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai) || !ai) {
		fprintf(stderr, "wpctl: cannot resolve %s\n", hostport);
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
		fprintf(stderr, "wpctl: cannot connect to the admin endpoint %s: %s\n", hostport,
		        strerror(errno));
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* sized to the path: /authz/check carries a whole request in its query */
	n = asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path,
	             hostport);
	if (n < 0) {
		req = NULL;
		fprintf(stderr, "wpctl: out of memory\n");
		goto out;
	}
	if (write(fd, req, (size_t)n) != n) {
		fprintf(stderr, "wpctl: write to %s failed\n", hostport);
		goto out;
	}
	buf = malloc(cap);
	while (buf) {
		ssize_t r;

		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (!buf)
		goto out;
	buf[len] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.", 7) || !sep || sscanf(buf + 8, " %d", &status) != 1) {
		fprintf(stderr, "wpctl: malformed answer from %s\n", hostport);
		status = -EPROTO;
		goto out;
	}
	*body = strdup(sep + 4);
out:
	free(req);
	free(buf);
	if (fd >= 0)
		close(fd);
	freeaddrinfo(ai);
	return status;
}

int wp_wpctl_config(int argc, char **argv)
{
	static const char usage[] = "usage: wpctl config dump [--admin HOST:PORT] [--store]\n";
	const char *admin = "127.0.0.1:15000", *path = "/config_dump";
	char *body = NULL;
	json_t *dump;
	int st;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "dump")) {
		fputs(usage, stderr);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(argv[i], "--admin") && i + 1 < argc) {
			admin = argv[++i];
		} else if (!strncmp(argv[i], "--admin=", 8)) {
			admin = argv[i] + 8;
		} else if (!strcmp(argv[i], "--store")) {
			path = "/config_dump?view=store";
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	st = wp_wpctl_admin_get(admin, path, &body);
	if (st != 200) {
		if (st > 0)
			fprintf(stderr, "wpctl: %s%s answered %d\n", admin, path, st);
		free(body);
		return 1;
	}
	/* Say it on stderr too when the view is not the current running state:
	 * the JSON alone is easy to take for it. */
	dump = json_loads(body, 0, NULL);
	if (dump) {
		const char *view = json_string_value(json_object_get(dump, "view"));
		const char *note = json_string_value(json_object_get(dump, "note"));

		if (note && (json_array_size(json_object_get(dump, "lagging")) || !view ||
		             strcmp(view, "snapshot")))
			fprintf(stderr, "wpctl: %s\n", note);
		json_decref(dump);
	}
	fputs(body, stdout);
	if (body[0] && body[strlen(body) - 1] != '\n')
		putchar('\n');
	free(body);
	return 0;
}
