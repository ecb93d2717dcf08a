/*
 * JSON views of the control plane's state (jansson), shared by the admin
 * server (GET /config_dump, GET /enrollment) and wpctl's offline mode.
 */
#ifndef WP_CP_JSON_H
#define WP_CP_JSON_H

#include <jansson.h>

#include "wp/resolve.h"
#include "wp/snapshot.h"

/* The snapshot as JSON (new reference), or NULL. s may be NULL ("null"). */
json_t *wp_snapshot_json(const struct wp_snapshot *s);

/* [{"kind","namespace","name","waypoint": "ns/name"|null,"reason"}, ...]
 * for every Service and Pod (the `wpctl enrollment -o json` format). With
 * details, each row also has "message", "via" and "served". */
json_t *wp_enrollment_json(struct wp_resolver *r, bool details);

#endif /* WP_CP_JSON_H */
