/*
 * RFC 7239 Forwarded for= extraction (dp/http/forwarded.c): ztunnel's form,
 * tokens and quoted strings, IPv6 with and without port, several
 * parameters and elements, and what must be refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "forwarded.h"
#include "wp/addr.h"

static int fwd(const char *v, char *out)
{
	struct wp_addr a;
	int rc = wp_forwarded_for(v, strlen(v), &a);

	if (rc == 0)
		wp_addr_format(&a, out, WP_ADDR_STRLEN);
	return rc;
}

static void test_accepted(void **state)
{
	static const struct {
		const char *in, *want;
	} ok[] = {
	        {"for=\"10.1.2.3:43210\";host=reviews.default.svc.cluster.local", "10.1.2.3"},
	        {"for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"},
	        {"host=a.b; For=\"198.18.1.10\"", "198.18.1.10"},
	        {"for=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"},
	        {"for=\"[2001:db8::1]\"", "2001:db8::1"},
	        {"  for = 10.0.0.1 , for=10.0.0.2", "10.0.0.1"},
	};
	char buf[WP_ADDR_STRLEN];

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(fwd(ok[i].in, buf), 0);
		assert_string_equal(buf, ok[i].want);
	}
}

static void test_refused(void **state)
{
	char buf[WP_ADDR_STRLEN];

	(void)state;
	assert_int_equal(fwd("", buf), -ENOENT);
	assert_int_equal(fwd("host=x;proto=http", buf), -ENOENT);
	assert_int_equal(fwd("host=x, for=10.0.0.1", buf), -ENOENT); /* not the first element */
	assert_int_equal(fwd("for=unknown", buf), -EINVAL);
	assert_int_equal(fwd("for=_hidden", buf), -EINVAL);
	assert_int_equal(fwd("for=\"10.0.0.1", buf), -EINVAL); /* unterminated */
	assert_int_equal(fwd("for=\"[2001:db8::1\"", buf), -EINVAL);
	assert_int_equal(fwd("for=300.1.1.1", buf), -EINVAL);
	assert_int_equal(
	        fwd("for=\"11111111111111111111111111111111111111111111111111111111111\"", buf),
	        -EINVAL);
	assert_int_equal(fwd("for", buf), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_accepted),
	        cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
