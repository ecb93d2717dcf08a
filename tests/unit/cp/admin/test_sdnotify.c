/*
 * The service manager's notifications (cp/admin/sdnotify.c): the test
 * binds the datagram socket systemd would and reads what arrives, for a
 * path and an abstract name; the watchdog's half-interval cadence and its
 * WATCHDOG_PID check; the environment unset after init; what happens with
 * no socket, a bad one, or one nobody listens on.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "wp/sdnotify.h"

struct peer {
	int fd;
	char path[108]; /* "" for an abstract socket */
};

/* Binds a datagram socket at a fresh path (or abstract name) and points
 * NOTIFY_SOCKET at it. */
static void peer_open(struct peer *p, bool abstract)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 2};
	socklen_t len;
	char env[120];

	p->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(p->fd >= 0);
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (abstract) {
		int n = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "wp-sdnotify-%d",
		                 getpid());

		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
		snprintf(env, sizeof(env), "@%s", a.sun_path + 1);
		p->path[0] = '\0';
	} else {
		snprintf(p->path, sizeof(p->path), "/tmp/wp-sdnotify-%d.sock", getpid());
		unlink(p->path);
		strcpy(a.sun_path, p->path);
		len = sizeof(a);
		snprintf(env, sizeof(env), "%s", p->path);
	}
	assert_int_equal(bind(p->fd, (struct sockaddr *)&a, len), 0);
	setenv("NOTIFY_SOCKET", env, 1);
}

static void peer_close(struct peer *p)
{
	close(p->fd);
	if (p->path[0])
		unlink(p->path);
}

/* The next datagram, as a string ("" after the 2 s timeout). */
static const char *peer_recv(struct peer *p)
{
	static char buf[256];
	ssize_t n = recv(p->fd, buf, sizeof(buf) - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

/* Nothing waiting on the socket. */
static void peer_empty(struct peer *p)
{
	char c;

	assert_int_equal(recv(p->fd, &c, 1, MSG_DONTWAIT), -1);
}

static void clear_env(void)
{
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void test_off_without_socket(void **state)
{
	(void)state;
	clear_env();
	setenv("WATCHDOG_USEC", "1000000", 1);
	assert_int_equal(wp_sdnotify_init(), 0);
	assert_false(wp_sdnotify_enabled());
	assert_int_equal(wp_sdnotify_send("READY=1"), 0);
	assert_int_equal(wp_sdnotify_watchdog_usec(), 0);
	assert_int_equal(wp_sdnotify_watchdog(1000), 0);
	assert_null(getenv("WATCHDOG_USEC"));
}

static void send_and_read(bool abstract)
{
	struct peer p;

	clear_env();
	peer_open(&p, abstract);
	assert_int_equal(wp_sdnotify_init(), 0);
	assert_true(wp_sdnotify_enabled());
	/* children (an exec credential plugin) must not inherit it */
	assert_null(getenv("NOTIFY_SOCKET"));
	assert_int_equal(wp_sdnotify_send("READY=1\nSTATUS=ok"), 0);
	assert_string_equal(peer_recv(&p), "READY=1\nSTATUS=ok");
	assert_int_equal(wp_sdnotify_send("STOPPING=1"), 0);
	assert_string_equal(peer_recv(&p), "STOPPING=1");
	assert_int_equal(wp_sdnotify_watchdog(1), 0); /* no WATCHDOG_USEC */
	peer_empty(&p);
	peer_close(&p);
}

static void test_path_socket(void **state)
{
	(void)state;
	send_and_read(false);
}

static void test_abstract_socket(void **state)
{
	(void)state;
	send_and_read(true);
}

static void test_watchdog_half_interval(void **state)
{
	struct peer p;

	(void)state;
	clear_env();
	peer_open(&p, false);
	setenv("WATCHDOG_USEC", "1000000", 1);
	assert_int_equal(wp_sdnotify_init(), 0);
	assert_int_equal(wp_sdnotify_watchdog_usec(), 1000000);
	assert_int_equal(wp_sdnotify_watchdog(10000), 1); /* the first at once */
	assert_string_equal(peer_recv(&p), "WATCHDOG=1");
	assert_int_equal(wp_sdnotify_watchdog(10200), 0);
	assert_int_equal(wp_sdnotify_watchdog(10499), 0);
	peer_empty(&p);
	assert_int_equal(wp_sdnotify_watchdog(10500), 1); /* 1 s / 2 later */
	assert_string_equal(peer_recv(&p), "WATCHDOG=1");
	assert_int_equal(wp_sdnotify_watchdog(10999), 0);
	assert_int_equal(wp_sdnotify_watchdog(11000), 1);
	assert_string_equal(peer_recv(&p), "WATCHDOG=1");
	peer_close(&p);
}

static void test_watchdog_pid(void **state)
{
	struct peer p;
	char pid[32];

	(void)state;
	clear_env();
	peer_open(&p, false);
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", "1", 1); /* another process's watchdog */
	assert_int_equal(wp_sdnotify_init(), 0);
	assert_true(wp_sdnotify_enabled());
	assert_int_equal(wp_sdnotify_watchdog_usec(), 0);
	assert_int_equal(wp_sdnotify_watchdog(1), 0);
	peer_close(&p);

	peer_open(&p, false);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	assert_int_equal(wp_sdnotify_init(), 0);
	assert_int_equal(wp_sdnotify_watchdog_usec(), 2000000);
	assert_null(getenv("WATCHDOG_PID"));
	peer_close(&p);

	peer_open(&p, false);
	setenv("WATCHDOG_USEC", "soon", 1);
	assert_int_equal(wp_sdnotify_init(), 0);
	assert_int_equal(wp_sdnotify_watchdog_usec(), 0);
	peer_close(&p);
}

static void test_bad_socket(void **state)
{
	(void)state;
	clear_env();
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(wp_sdnotify_init(), -EINVAL);
	assert_false(wp_sdnotify_enabled());
	assert_int_equal(wp_sdnotify_send("READY=1"), 0);
}

static void test_nobody_listening(void **state)
{
	char path[64];
	uint64_t before = wp_sdnotify_failures();

	(void)state;
	clear_env();
	snprintf(path, sizeof(path), "/tmp/wp-sdnotify-none-%d.sock", getpid());
	unlink(path);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_int_equal(wp_sdnotify_init(), 0);
	assert_int_equal(wp_sdnotify_send("READY=1"), -ENOENT);
	assert_int_equal(wp_sdnotify_send("STOPPING=1"), -ENOENT);
	assert_int_equal(wp_sdnotify_failures(), before + 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_off_without_socket),
	        cmocka_unit_test(test_path_socket),
	        cmocka_unit_test(test_abstract_socket),
	        cmocka_unit_test(test_watchdog_half_interval),
	        cmocka_unit_test(test_watchdog_pid),
	        cmocka_unit_test(test_bad_socket),
	        cmocka_unit_test(test_nobody_listening),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
