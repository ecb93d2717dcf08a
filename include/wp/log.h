/*
 * waypointd's log lines, with levels a service manager understands.
 *
 * Lines go to stderr (wp_log) or, for the few that always went there, to
 * stdout (wp_log_out), with their text unchanged. When the stream is the
 * systemd journal (the service manager sets $JOURNAL_STREAM to the
 * "device:inode" of the stream it connected, and that is what the fd is),
 * each line starts with "<N>", its syslog priority (sd-daemon.h's
 * convention), so journald files it at that level: an error is <3>, not
 * the unit's default. Anywhere else (a shell, a file, a test's pipe) the
 * lines carry no prefix.
 *
 * wp_log_init() reads the environment once, on the main thread before
 * other threads log; without it nothing is prefixed (wpctl never calls
 * it). The write functions may be called from any thread: each line is
 * written whole under the stream's lock. The DPDK log goes through
 * wp_log_text (dp/waypointd.c), its levels mapped onto these.
 */
#ifndef WP_LOG_H
#define WP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* syslog(3) priorities */
enum wp_log_level {
	WP_LOG_ERR = 3,
	WP_LOG_WARNING = 4,
	WP_LOG_NOTICE = 5,
	WP_LOG_INFO = 6,
	WP_LOG_DEBUG = 7,
};

/* Whether stdout and stderr are the journal ($JOURNAL_STREAM names the
 * one they are connected to). Call again after they change (tests). */
void wp_log_init(void);

/* One message (printf format) to stderr, or to stdout. */
void wp_log(enum wp_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void wp_log_out(enum wp_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/*
 * len bytes of text to f (stdout or stderr), each line prefixed when f is
 * the journal. continued: the text goes on with a line an earlier call
 * left unfinished (no newline), so its first line gets no prefix.
 */
void wp_log_text(FILE *f, enum wp_log_level level, const char *text, size_t len, bool continued);

#endif /* WP_LOG_H */
