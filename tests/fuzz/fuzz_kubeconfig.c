/*
 * libFuzzer driver for the kubeconfig reader (cp/kube/config.c,
 * wp_kube_config_parse over libyaml) and the base64 decoder of its -data
 * fields. The first input byte picks the context asked for (the file's
 * current-context, or a named one) and whether relative paths get a
 * directory; the rest is the file. Checks beyond memory safety:
 *   - success gives a non-empty server with no trailing slash, a client
 *     certificate only with its key, -data lengths that match the decoded
 *     bytes, and file paths made absolute when a directory was given;
 *   - failure is -EINVAL with a message and leaves nothing allocated;
 *   - wp_kube_b64decode of the raw input never writes past what it
 *     allocated and decodes only base64 (its output length is at most 3/4
 *     of the input's).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kube.h"

static void check_data(const char *p, size_t len)
{
	if (!p)
		return;
	/* -data fields are NUL-terminated after len bytes. */
	if (p[len] != '\0')
		abort();
}

static void check_path(const char *p, bool with_dir)
{
	if (p && with_dir && p[0] != '/')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ctxs[] = {NULL, "a", "prod", "fake"};
	struct wp_kube_config cfg;
	char err[256] = "";
	bool with_dir;
	const char *ctx;
	char *text;
	size_t n;
	int rc;

	if (size < 1)
		return 0;
	ctx = ctxs[data[0] & 3];
	with_dir = data[0] & 4;
	rc = wp_kube_config_parse(&cfg, (const char *)data + 1, size - 1,
	                          with_dir ? "/etc/kube" : NULL, ctx, err, sizeof(err));
	if (rc == 0) {
		size_t sl;

		if (!cfg.server || !(sl = strlen(cfg.server)) || cfg.server[sl - 1] == '/')
			abort();
		if ((cfg.cert_file || cfg.cert_data) != (cfg.key_file || cfg.key_data))
			abort();
		check_data(cfg.ca_data, cfg.ca_len);
		check_data(cfg.cert_data, cfg.cert_len);
		check_data(cfg.key_data, cfg.key_len);
		check_path(cfg.ca_file, with_dir);
		check_path(cfg.cert_file, with_dir);
		check_path(cfg.key_file, with_dir);
		check_path(cfg.token_file, with_dir);
		wp_kube_config_clear(&cfg);
	} else {
		static const struct wp_kube_config zero;

		if ((rc != -EINVAL && rc != -ENOMEM) || (rc == -EINVAL && !err[0]) ||
		    memcmp(&cfg, &zero, sizeof(cfg)))
			abort();
	}
	/* The decoder alone, on the raw bytes as a C string. */
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	char *dec = wp_kube_b64decode(text, &n);
	if (dec && (n > strlen(text) * 3 / 4 || dec[n] != '\0'))
		abort();
	free(dec);
	free(text);
	return 0;
}
