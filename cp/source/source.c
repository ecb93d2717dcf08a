/*
 * Helpers shared by every source (see wp/source.h).
 */
#include <errno.h>

#include "wp/model.h"
#include "wp/source.h"

struct deliver {
	const struct wp_source_sink *sink;
	int n;
};

static int on_obj(void *ctx, struct wp_obj *obj)
{
	struct deliver *d = ctx;

	if (d->sink->ops->upsert(d->sink->ctx, obj) == 0)
		d->n++;
	return 0;
}

static void on_err(void *ctx, const struct wp_model_error *e)
{
	struct deliver *d = ctx;

	d->sink->ops->error(d->sink->ctx, e->origin, e->msg);
}

int wp_source_deliver_text(const struct wp_source_sink *sink, const char *origin, const char *buf,
                           size_t len)
{
	struct deliver d = {.sink = sink};
	int rc;

	sink->ops->clear_errors(sink->ctx, origin);
	rc = wp_model_parse(buf, len, origin, on_obj, on_err, &d);
	if (rc < 0)
		return rc;
	return d.n;
}
