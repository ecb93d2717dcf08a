/*
 * TLS 1.3 suite names <-> ids (see wp/tls_suites.h): the configuration's
 * text is parsed once, by the control plane; dp/tls gets ids.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wp/common.h"
#include "wp/tls_suites.h"

static const struct {
	uint16_t id;
	const char *name;
} suites[] = {
        {0x1301, "TLS_AES_128_GCM_SHA256"},
        {0x1302, "TLS_AES_256_GCM_SHA384"},
};

const char *wp_tls13_suite_name(uint16_t id)
{
	for (size_t i = 0; i < WP_ARRAY_SIZE(suites); i++)
		if (suites[i].id == id)
			return suites[i].name;
	return NULL;
}

static int suite_id(const char *name, size_t len)
{
	for (size_t i = 0; i < WP_ARRAY_SIZE(suites); i++)
		if (strlen(suites[i].name) == len && memcmp(suites[i].name, name, len) == 0)
			return suites[i].id;
	return -1;
}

int wp_tls13_suites_parse(const char *list, uint16_t ids[WP_TLS13_SUITES_MAX], char *err,
                          size_t errlen)
{
	int n = 0;

	for (const char *p = list;; p++) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int id;

		if (len == 0) {
			snprintf(err, errlen,
			         "an empty entry; expected suite names separated by ':'");
			return -EINVAL;
		}
		id = suite_id(p, len);
		if (id < 0) {
			snprintf(err, errlen,
			         "unknown TLS 1.3 suite '%.*s'; expected TLS_AES_128_GCM_SHA256 or "
			         "TLS_AES_256_GCM_SHA384",
			         (int)(len > 64 ? 64 : len), p);
			return -EINVAL;
		}
		for (int i = 0; i < n; i++)
			if (ids[i] == id) {
				snprintf(err, errlen, "%.*s is listed twice", (int)len, p);
				return -EINVAL;
			}
		ids[n++] = (uint16_t)id;
		if (end == NULL)
			return n;
		p = end;
	}
}
