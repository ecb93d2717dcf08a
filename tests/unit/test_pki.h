/*
 * Unit tests that need certificates make a fresh PKI with
 * tests/pki/mkpki.sh (its path is the test's first argument, from meson)
 * in a temporary directory, run their group, and remove the directory.
 */
#ifndef WP_TESTS_UNIT_TEST_PKI_H
#define WP_TESTS_UNIT_TEST_PKI_H

#include <stdio.h>
#include <stdlib.h>

/* Makes the PKI in a new /tmp/wp-<tag>-pki.XXXXXX written to dir. 0, or 1
 * with a message. */
static inline int test_pki_make(int argc, char **argv, const char *tag, char *dir, size_t dir_len)
{
	char cmd[1024];

	if (argc < 2) {
		fprintf(stderr, "usage: %s path/to/mkpki.sh\n", argv[0]);
		return 1;
	}
	snprintf(dir, dir_len, "/tmp/wp-%s-pki.XXXXXX", tag);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null", argv[1], dir);
	if (system(cmd) != 0) {
		fprintf(stderr, "mkpki failed\n");
		return 1;
	}
	return 0;
}

/* Removes the PKI; returns rc, or 1 when rc was 0 and the removal failed. */
static inline int test_pki_remove(const char *dir, int rc)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}

#endif /* WP_TESTS_UNIT_TEST_PKI_H */
