/*
 * The name/kind/description table behind enum wp_ctr (wp/counters.h), built
 * from the same .def rows, so the enum and the names can never disagree.
 * Names are the lower-case form of the enum suffix, made once at load time.
 */
#include <ctype.h>

#include "wp/counters.h"

static char lower_names[WP_CTR_MAX][64];

struct wp_ctr_info wp_ctr_info[WP_CTR_MAX] = {
#define WP_CTR(name, kind, desc) [WP_CTR_##name] = {#name, WP_CTR_KIND_##kind, desc},
#include "wp/counters/list.h"
#undef WP_CTR
};

__attribute__((constructor)) static void lower_case_names(void)
{
	for (unsigned i = 0; i < WP_CTR_MAX; i++) {
		const char *u = wp_ctr_info[i].name;
		unsigned j;

		for (j = 0; u[j] != '\0' && j < sizeof(lower_names[i]) - 1; j++)
			lower_names[i][j] = (char)tolower((unsigned char)u[j]);
		lower_names[i][j] = '\0';
		wp_ctr_info[i].name = lower_names[i];
	}
}
