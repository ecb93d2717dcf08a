/*
 * Unit tests for lib/log.c (wp/log.h): lines carry "<N>" syslog priorities
 * exactly when the stream is the one $JOURNAL_STREAM names, the text is
 * otherwise unchanged, every line of a message is prefixed, and a message
 * continued across writes (DPDK prints some in pieces) is prefixed once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "wp/log.h"

static char path[64];
static int saved_err = -1;

/* Points stderr at a fresh file; returns its "dev:ino" in id. */
static void capture(char *id, size_t len)
{
	struct stat st;
	int fd;

	strcpy(path, "/tmp/wp-log-test-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(id, len, "%llu:%llu", (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	fflush(stderr);
	saved_err = dup(2);
	assert_true(saved_err >= 0);
	assert_int_equal(dup2(fd, 2), 2);
	close(fd);
}

/* Restores stderr and returns what was written (static buffer). */
static const char *captured(void)
{
	static char buf[1024];
	FILE *f;
	size_t n;

	fflush(stderr);
	dup2(saved_err, 2);
	close(saved_err);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	unlink(path);
	return buf;
}

static void write_some(void)
{
	wp_log(WP_LOG_ERR, "waypointd: %s\n", "no");
	wp_log(WP_LOG_WARNING, "two\nlines\n");
	wp_log(WP_LOG_DEBUG, "debug\n");
	wp_log_text(stderr, WP_LOG_INFO, "EAL: in ", 8, false);
	wp_log_text(stderr, WP_LOG_INFO, "pieces\n", 7, true);
	wp_log_out(WP_LOG_INFO, "%s", ""); /* stdout: nothing here */
}

static void test_journal_prefixes(void **state)
{
	char id[64];

	(void)state;
	capture(id, sizeof(id));
	setenv("JOURNAL_STREAM", id, 1);
	wp_log_init();
	write_some();
	assert_string_equal(captured(),
	                    "<3>waypointd: no\n<4>two\n<4>lines\n<7>debug\n<6>EAL: in pieces\n");
}

static void test_no_journal_no_prefix(void **state)
{
	char id[64];

	(void)state;
	capture(id, sizeof(id));
	unsetenv("JOURNAL_STREAM");
	wp_log_init();
	write_some();
	assert_string_equal(captured(), "waypointd: no\ntwo\nlines\ndebug\nEAL: in pieces\n");
}

/* $JOURNAL_STREAM inherited by something whose stderr went elsewhere (a
 * redirect in a unit's shell): not the journal. */
static void test_other_stream_no_prefix(void **state)
{
	char id[64];

	(void)state;
	capture(id, sizeof(id));
	setenv("JOURNAL_STREAM", "1:2", 1);
	wp_log_init();
	wp_log(WP_LOG_ERR, "plain\n");
	assert_string_equal(captured(), "plain\n");
	setenv("JOURNAL_STREAM", "garbage", 1);
	capture(id, sizeof(id));
	wp_log_init();
	wp_log(WP_LOG_ERR, "plain\n");
	assert_string_equal(captured(), "plain\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_journal_prefixes),
	        cmocka_unit_test(test_no_journal_no_prefix),
	        cmocka_unit_test(test_other_stream_no_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
