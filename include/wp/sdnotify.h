/*
 * The service manager's notification protocol (systemd's sd_notify), without
 * libsystemd: one datagram of "KEY=VALUE" lines to the unix socket named by
 * $NOTIFY_SOCKET. waypointd runs as Type=notify (deploy/waypointd.service):
 *
 *   READY=1      main thread, once the ports are up, the workers run and the
 *                first snapshot is published (dp/waypointd.c);
 *   STOPPING=1   main thread, when SIGTERM starts the drain;
 *   WATCHDOG=1   the control-plane thread, from its loop, every half of
 *                $WATCHDOG_USEC, so a wedged control plane is restarted.
 *
 * wp_sdnotify_init() reads and unsets the environment once, on the main
 * thread before any other thread exists (children inherit none of it);
 * after that the send functions may be called from any thread: the state
 * is read-only but for the watchdog's deadline, which only the
 * control-plane thread touches. Without $NOTIFY_SOCKET everything is a
 * no-op, so a run from a shell or a test behaves as before.
 */
#ifndef WP_SDNOTIFY_H
#define WP_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Reads $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace),
 * $WATCHDOG_USEC and $WATCHDOG_PID (the watchdog is ours only when it is
 * unset or names this process) and unsets them. 0, or -errno when
 * $NOTIFY_SOCKET is set but unusable (message on stderr; notifications are
 * then off).
 */
int wp_sdnotify_init(void);

/* True when $NOTIFY_SOCKET was set and usable. */
bool wp_sdnotify_enabled(void);

/* Sends <state> ("READY=1", "STOPPING=1\nSTATUS=draining", ...). 0 when
 * sent or when notifications are off, -errno otherwise (counted). */
int wp_sdnotify_send(const char *state);

/* The watchdog interval in microseconds, 0 when none was asked for. */
uint64_t wp_sdnotify_watchdog_usec(void);

/*
 * Sends WATCHDOG=1 when half the interval has passed since the last one
 * (the first call sends at once). Call it often (the control-plane loop
 * turns at least every 200 ms); a no-op without a watchdog. Returns 1 when
 * it sent, 0 when nothing was due, -errno when the send failed.
 */
int wp_sdnotify_watchdog(uint64_t now_ms);

/* Notifications that could not be sent since start (any thread). */
uint64_t wp_sdnotify_failures(void);

#endif
