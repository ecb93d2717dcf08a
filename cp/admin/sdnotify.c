/*
 * sd_notify without libsystemd (see wp/sdnotify.h): the protocol is one
 * AF_UNIX datagram per notification, so a socket of our own and sendto()
 * are all it takes, and the package needs no extra library. Lives beside
 * the control-plane runner because that thread pings the watchdog; the
 * main thread (dp/waypointd.c) sends READY and STOPPING.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "wp/log.h"
#include "wp/sdnotify.h"

static struct {
	int fd; /* -1: notifications off */
	struct sockaddr_un addr;
	socklen_t addr_len;
	uint64_t watchdog_usec;
	uint64_t next_ping_ms; /* control-plane thread only */
	uint64_t failures;     /* atomic */
	bool failing;          /* a send failed; logged once per streak (atomic) */
} sd = {.fd = -1};

static int parse_socket(const char *s)
{
	size_t n = strlen(s);

	memset(&sd.addr, 0, sizeof(sd.addr));
	sd.addr.sun_family = AF_UNIX;
	if ((s[0] != '/' && s[0] != '@') || n < 2 || n >= sizeof(sd.addr.sun_path))
		return -EINVAL;
	memcpy(sd.addr.sun_path, s, n);
	if (s[0] == '@') /* abstract: a leading NUL, no terminating one */
		sd.addr.sun_path[0] = '\0';
	else
		n++;
	sd.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	return 0;
}

static uint64_t parse_watchdog(const char *usec, const char *pid)
{
	char *end;
	unsigned long long v;

	if (usec == NULL || usec[0] == '\0')
		return 0;
	if (pid != NULL && pid[0] != '\0') {
		errno = 0;
		v = strtoull(pid, &end, 10);
		if (errno || *end || v != (unsigned long long)getpid())
			return 0; /* the watchdog is another process's */
	}
	errno = 0;
	v = strtoull(usec, &end, 10);
	if (errno || *end || v == 0) {
		wp_log(WP_LOG_WARNING,
		       "waypointd: ignoring WATCHDOG_USEC=%s (not a positive number)\n", usec);
		return 0;
	}
	return v;
}

int wp_sdnotify_init(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	int rc = 0;

	if (sd.fd >= 0)
		close(sd.fd);
	sd.fd = -1;
	sd.watchdog_usec = 0;
	sd.next_ping_ms = 0;
	if (s != NULL && s[0] != '\0') {
		rc = parse_socket(s);
		if (rc == 0) {
			sd.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (sd.fd < 0)
				rc = -errno;
		}
		if (rc)
			wp_log(WP_LOG_ERR, "waypointd: NOTIFY_SOCKET=%s: %s; no notifications\n", s,
			       strerror(-rc));
		else
			sd.watchdog_usec =
			        parse_watchdog(getenv("WATCHDOG_USEC"), getenv("WATCHDOG_PID"));
	}
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return rc;
}

bool wp_sdnotify_enabled(void)
{
	return sd.fd >= 0;
}

int wp_sdnotify_send(const char *state)
{
	size_t n = strlen(state);
	ssize_t w;

	if (sd.fd < 0)
		return 0;
	w = sendto(sd.fd, state, n, MSG_NOSIGNAL, (const struct sockaddr *)&sd.addr, sd.addr_len);
	if (w == (ssize_t)n) {
		__atomic_store_n(&sd.failing, false, __ATOMIC_RELAXED);
		return 0;
	}
	w = w < 0 ? -errno : -EMSGSIZE;
	__atomic_add_fetch(&sd.failures, 1, __ATOMIC_RELAXED);
	/* The service manager gone or its socket full: say so once, not at
	 * every watchdog ping. */
	if (!__atomic_exchange_n(&sd.failing, true, __ATOMIC_RELAXED))
		wp_log(WP_LOG_WARNING, "waypointd: cannot notify the service manager (%s): %s\n",
		       strerror((int)-w), state);
	return (int)w;
}

uint64_t wp_sdnotify_watchdog_usec(void)
{
	return sd.fd >= 0 ? sd.watchdog_usec : 0;
}

int wp_sdnotify_watchdog(uint64_t now_ms)
{
	int rc;

	if (sd.fd < 0 || sd.watchdog_usec == 0 || now_ms < sd.next_ping_ms)
		return 0;
	/* Half the interval, as systemd asks; at least 1 ms so a tiny value
	 * cannot turn every loop turn into a ping. */
	sd.next_ping_ms = now_ms + (sd.watchdog_usec / 2000 ? sd.watchdog_usec / 2000 : 1);
	rc = wp_sdnotify_send("WATCHDOG=1");
	return rc ? rc : 1;
}

uint64_t wp_sdnotify_failures(void)
{
	return __atomic_load_n(&sd.failures, __ATOMIC_RELAXED);
}
