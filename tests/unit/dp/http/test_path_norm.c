/*
 * Path normalization (lib/path_norm.c): Envoy's normalize_path as Istio
 * configures it by default (pathNormalization BASE): dot segments, encoded
 * dots, backslashes, unreserved escapes decoded, %2F / %5C and "//" kept,
 * raw characters escaped, nested escapes, NUL refused, query kept, fragment
 * dropped, output bound.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "wp/path_norm.h"

static void expect(const char *in, const char *want, size_t want_path_len)
{
	char out[512];
	size_t ol = 0, pl = 0;
	int rc = wp_path_norm(in, strlen(in), out, sizeof(out), &ol, &pl);

	if (rc || strcmp(out, want) || pl != want_path_len) {
		print_error("wp_path_norm(\"%s\") = %d \"%s\" (path %zu), want \"%s\" (path %zu)\n",
		            in, rc, rc ? "" : out, pl, want, want_path_len);
		fail();
	}
	assert_int_equal(ol, strlen(want));
}

#define EXPECT_PATH(in, want) expect(in, want, strlen(want))

static void test_dot_segments(void **state)
{
	(void)state;
	EXPECT_PATH("/a/b/../c", "/a/c");
	EXPECT_PATH("/a/./b", "/a/b");
	EXPECT_PATH("/../a", "/a");
	EXPECT_PATH("/..", "/");
	EXPECT_PATH("/.", "/");
	EXPECT_PATH("/a/..", "/");
	EXPECT_PATH("/a/.", "/a/");
	EXPECT_PATH("/a/b/../../../c", "/c");
	EXPECT_PATH("/a/.b", "/a/.b");
	EXPECT_PATH("/a/..b", "/a/..b");
	EXPECT_PATH("/a/b.", "/a/b.");
	EXPECT_PATH("/a/...", "/a/...");
}

static void test_encoded_dots_and_backslashes(void **state)
{
	(void)state;
	/* the classic walk past a DENY on /admin */
	EXPECT_PATH("/public/%2e%2e/admin", "/admin");
	EXPECT_PATH("/public/%2E%2e/admin", "/admin");
	EXPECT_PATH("/public/.%2e/admin", "/admin");
	EXPECT_PATH("/a/%2e/b", "/a/b");
	EXPECT_PATH("/a/%2eb", "/a/.b");
	EXPECT_PATH("\\a\\..\\b", "/b");
	EXPECT_PATH("/a\\b", "/a/b");
	EXPECT_PATH("/a/..\\admin", "/admin");
}

static void test_escapes(void **state)
{
	(void)state;
	EXPECT_PATH("/%41%7e%2D%5f%30", "/A~-_0");
	EXPECT_PATH("/%61dmin", "/admin");
	/* BASE keeps encoded slashes and backslashes, with the case sent */
	EXPECT_PATH("/a%2Fb", "/a%2Fb");
	EXPECT_PATH("/a%2fb", "/a%2fb");
	EXPECT_PATH("/a%5Cb", "/a%5Cb");
	/* and does not merge slashes */
	EXPECT_PATH("/a//b", "/a//b");
	EXPECT_PATH("//admin", "//admin");
	/* reserved characters stay encoded, raw unsafe ones get encoded */
	EXPECT_PATH("/a%3Fb%23c", "/a%3Fb%23c");
	EXPECT_PATH("/a b\"<>^`{|}", "/a%20b%22%3C%3E%5E%60%7B%7C%7D");
	EXPECT_PATH("/\xc3\xbc", "/%C3%BC");
	EXPECT_PATH("/a!$&'()*+,;=:@[]", "/a!$&'()*+,;=:@[]");
	/* a '%' that starts no escape is kept... */
	EXPECT_PATH("/100%", "/100%");
	EXPECT_PATH("/%zz", "/%zz");
	/* ...unless decoding next to it would forge one */
	EXPECT_PATH("/%%30%30", "/%2500");
	EXPECT_PATH("/%%41", "/%A");
	EXPECT_PATH("/%4%31", "/%2541");
}

static void test_query_fragment_and_shape(void **state)
{
	(void)state;
	expect("/a/../b?x=/../y&z=%41", "/b?x=/../y&z=%41", 2);
	expect("/a#frag?q", "/a", 2);
	expect("/a?q#frag", "/a?q", 2);
	EXPECT_PATH("", "/");
	EXPECT_PATH("a/b", "/a/b");
	expect("?q", "/?q", 1);
}

static void test_refused_and_bounds(void **state)
{
	char out[64];
	size_t ol, pl;
	static const char nul[] = "/a\0b";

	(void)state;
	assert_int_equal(wp_path_norm("/a%00b", 6, out, sizeof(out), &ol, &pl), -EINVAL);
	assert_int_equal(wp_path_norm(nul, sizeof(nul) - 1, out, sizeof(out), &ol, &pl), -EINVAL);
	assert_int_equal(wp_path_norm("/abcdef", 7, out, 4, &ol, &pl), -ENOSPC);
	assert_int_equal(wp_path_norm("/abc?defgh", 10, out, 6, &ol, &pl), -ENOSPC);
	/* the documented bound always suffices: every byte escaped */
	{
		char in[40], big[WP_PATH_NORM_MAX(40)];

		memset(in, ' ', sizeof(in));
		in[0] = 'x';
		assert_int_equal(wp_path_norm(in, sizeof(in), big, sizeof(big), &ol, &pl), 0);
		assert_int_equal(ol, 1 + 1 + 39 * 3);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_dot_segments),
	        cmocka_unit_test(test_encoded_dots_and_backslashes),
	        cmocka_unit_test(test_escapes),
	        cmocka_unit_test(test_query_fragment_and_shape),
	        cmocka_unit_test(test_refused_and_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
