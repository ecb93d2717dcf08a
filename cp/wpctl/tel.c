/*
 * wpctl's client of waypointd's DPDK telemetry socket
 * (/var/run/dpdk/<prefix>/dpdk_telemetry.v2, the socket dpdk-telemetry.py
 * reads), shared by wpctl stats and wpctl top (see wpctl.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "wpctl.h"

int wp_wpctl_tel_open(struct wp_wpctl_tel *t, const char *prefix)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	ssize_t n;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "/var/run/dpdk/%s/dpdk_telemetry.v2", prefix);
	t->fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (t->fd < 0)
		return -errno;
	if (connect(t->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		int e = errno;
		fprintf(stderr,
		        "wpctl: cannot connect to %s: %s (is waypointd running with "
		        "eal.file_prefix=%s?)\n",
		        sun.sun_path, strerror(e), prefix);
		close(t->fd);
		return -e;
	}
	n = recv(t->fd, t->buf, sizeof(t->buf) - 1, 0); /* the greeting */
	if (n <= 0) {
		close(t->fd);
		return -EIO;
	}
	return 0;
}

/* Sends one command; returns the value under the command's key (caller decrefs). */
json_t *wp_wpctl_tel_query(struct wp_wpctl_tel *t, const char *cmd)
{
	json_error_t jerr;
	json_t *root, *v;
	ssize_t n;

	if (send(t->fd, cmd, strlen(cmd), 0) < 0)
		return NULL;
	n = recv(t->fd, t->buf, sizeof(t->buf) - 1, 0);
	if (n <= 0)
		return NULL;
	t->buf[n] = '\0';
	root = json_loads(t->buf, 0, &jerr);
	if (root == NULL) {
		fprintf(stderr, "wpctl: bad telemetry reply to %s: %s\n", cmd, jerr.text);
		return NULL;
	}
	{
		char key[64];

		snprintf(key, sizeof(key), "%.*s", (int)strcspn(cmd, ","), cmd);
		v = json_object_get(root, key);
	}
	json_incref(v);
	json_decref(root);
	return v;
}

/*
 * Telemetry nests the counters in one dict per name prefix (a telemetry
 * dict holds at most 256 values); merge them back into one flat object.
 */
json_t *wp_wpctl_tel_flatten(json_t *o)
{
	json_t *flat = json_object(), *v, *iv;
	const char *k, *ik;

	json_object_foreach(o, k, v)
	{
		if (json_is_object(v)) {
			json_object_foreach(v, ik, iv) json_object_set(flat, ik, iv);
		} else {
			json_object_set(flat, k, v);
		}
	}
	json_decref(o);
	return flat;
}

/* {"tsc_hz": .., "workers": [per-worker dicts], "control_plane": {..},
 *  "total": {..}}; the total includes the control plane's counters. */
json_t *wp_wpctl_tel_collect(struct wp_wpctl_tel *t)
{
	json_t *info = wp_wpctl_tel_query(t, "/wp/info"), *ids = NULL, *out = NULL, *arr, *total,
	       *v, *cp;
	size_t i;

	if (info == NULL || (ids = wp_wpctl_tel_query(t, "/wp/workers")) == NULL)
		goto done;
	arr = json_array();
	json_array_foreach(ids, i, v)
	{
		char cmd[64];
		json_t *w;

		snprintf(cmd, sizeof(cmd), "/wp/worker,%lld", json_integer_value(v));
		w = wp_wpctl_tel_query(t, cmd);
		if (w == NULL) {
			json_decref(arr);
			goto done;
		}
		json_array_append_new(arr, wp_wpctl_tel_flatten(w));
	}
	total = wp_wpctl_tel_query(t, "/wp/stats");
	if (total == NULL) {
		json_decref(arr);
		goto done;
	}
	total = wp_wpctl_tel_flatten(total);
	cp = wp_wpctl_tel_query(t, "/wp/cp");
	cp = cp ? wp_wpctl_tel_flatten(cp) : json_object();
	out = json_pack("{s:O, s:O, s:o, s:o, s:o}", "version", json_object_get(info, "version"),
	                "tsc_hz", json_object_get(info, "tsc_hz"), "workers", arr, "control_plane",
	                cp, "total", total);
done:
	json_decref(info);
	json_decref(ids);
	return out;
}

void wp_wpctl_tel_close(struct wp_wpctl_tel *t)
{
	close(t->fd);
}

double wp_wpctl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void wp_wpctl_sleep_until(double t)
{
	struct timespec ts = {.tv_sec = (time_t)t,
	                      .tv_nsec = (long)((t - (double)(time_t)t) * 1e9)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}
