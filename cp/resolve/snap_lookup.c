/*
 * wp_snapshot_lookup (wp/snapshot.h): the one snapshot read the data path
 * makes per connection, on the workers, lock-free on a published snapshot.
 * Kept apart from the builder so that it depends only on the snapshot's
 * types and its hash (snap_dest.h), not on the resolver.
 */
#include "snap_dest.h"
#include "wp/snapshot.h"

const struct wp_snap_dest *wp_snapshot_lookup(const struct wp_snapshot *s,
                                              const struct wp_sockaddr *dst)
{
	struct wp_sockaddr k = *dst;

	if (!s || !s->dests)
		return NULL;
	for (int pass = 0; pass < 2; pass++) {
		uint32_t i = (uint32_t)dest_hash(&k) & s->dest_mask;

		for (;;) {
			const struct wp_snap_dest *d = &s->dests[i];

			if (!d->kind)
				break;
			if (key_eq(&d->key, &k))
				return d;
			i = (i + 1) & s->dest_mask;
		}
		k.port = 0;
	}
	return NULL;
}
