/*
 * Log lines with syslog priorities for the journal (wp/log.h). The state
 * is two flags set by wp_log_init() on the main thread before any other
 * thread logs, read-only afterwards.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wp/log.h"

static bool journal_out, journal_err;

/* Whether fd is the stream $JOURNAL_STREAM ("DEV:INO") names. */
static bool is_journal(int fd, const char *env)
{
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (env == NULL || sscanf(env, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return false;
	return fstat(fd, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void wp_log_init(void)
{
	const char *env = getenv("JOURNAL_STREAM");

	journal_out = is_journal(fileno(stdout), env);
	journal_err = is_journal(fileno(stderr), env);
}

void wp_log_text(FILE *f, enum wp_log_level level, const char *text, size_t len, bool continued)
{
	bool prefix = f == stderr ? journal_err : f == stdout && journal_out;

	flockfile(f);
	while (len > 0) {
		const char *nl = memchr(text, '\n', len);
		size_t n = nl ? (size_t)(nl - text) + 1 : len;

		if (prefix && !continued)
			fprintf(f, "<%d>", (int)level);
		fwrite(text, 1, n, f);
		continued = false;
		text += n;
		len -= n;
	}
	fflush(f);
	funlockfile(f);
}

static void vlog(FILE *f, enum wp_log_level level, const char *fmt, va_list ap)
{
	char buf[2048];
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf)) { /* cut, and still one line */
		memcpy(buf + sizeof(buf) - 5, "...\n", 5);
		n = sizeof(buf) - 1;
	}
	wp_log_text(f, level, buf, (size_t)n, false);
}

void wp_log(enum wp_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(stderr, level, fmt, ap);
	va_end(ap);
}

void wp_log_out(enum wp_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(stdout, level, fmt, ap);
	va_end(ap);
}
