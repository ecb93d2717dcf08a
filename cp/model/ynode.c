/*
 * The YAML/JSON node layer of manifest parsing (see wp/model.h and
 * parse_int.h). libyaml's event parser builds a small node tree per
 * document (scalars kept as text, with line numbers, in a per-document
 * arena); each document's root, or each item of a "...List" document, is
 * handed to the object layer (wp_model_extract in parse.c) and the result
 * to the caller's callbacks. JSON goes through the same path: libyaml reads
 * it as flow-style YAML.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "parse_int.h"

#define MAX_DEPTH 64

/* ---- node tree ------------------------------------------------------------- */

static struct wp_ynode *node_new(struct wp_arena *a, enum wp_ynode_type t, uint32_t line)
{
	struct wp_ynode *n = wp_arena_alloc(a, sizeof(*n));

	if (n) {
		n->type = (uint8_t)t;
		n->line = line;
	}
	return n;
}

static void node_add(struct wp_ynode *parent, struct wp_ynode *c)
{
	if (parent->last)
		parent->last->next = c;
	else
		parent->child = c;
	parent->last = c;
	parent->n++;
}

const struct wp_ynode *wp_ynode_get(const struct wp_ynode *map, const char *key)
{
	if (!map || map->type != WP_YNODE_MAP)
		return NULL;
	for (const struct wp_ynode *c = map->child; c; c = c->next)
		if (!strcmp(c->key, key))
			return c;
	return NULL;
}

bool wp_ynode_is_null(const struct wp_ynode *n)
{
	if (!n)
		return true;
	if (n->type != WP_YNODE_SCALAR || !n->plain)
		return false;
	return !strcmp(n->value, "null") || !strcmp(n->value, "~") || !n->value[0] ||
	       !strcmp(n->value, "Null") || !strcmp(n->value, "NULL");
}

struct wp_ynode *wp_ynode_copy(struct wp_arena *a, const struct wp_ynode *s)
{
	struct wp_ynode *d = node_new(a, s->type, s->line);

	if (!d)
		return NULL;
	d->plain = s->plain;
	d->key = wp_arena_strdup(a, s->key);
	d->value = wp_arena_strdup(a, s->value);
	for (const struct wp_ynode *c = s->child; c; c = c->next) {
		struct wp_ynode *cc = wp_ynode_copy(a, c);

		if (!cc)
			return NULL;
		node_add(d, cc);
	}
	return d;
}

/* ---- documents ------------------------------------------------------------- */

struct run {
	const char *origin;
	wp_model_obj_cb obj_cb;
	wp_model_err_cb err_cb;
	wp_model_doc_cb doc_cb;
	void *ctx;
	int rejected;
	int stop; /* callback's negative return */
};

static void report(struct run *r, struct pctx *p, uint32_t line)
{
	struct wp_model_error e = {
	        .origin = r->origin,
	        .line = line,
	        .kind = p->o ? p->o->kind : WP_KIND_NONE,
	        .ns = p->o ? p->o->meta.ns : NULL,
	        .name = p->o ? p->o->meta.name : NULL,
	        .msg = p->msg,
	};

	r->rejected++;
	if (r->err_cb)
		r->err_cb(r->ctx, &e);
}

static void handle_root(struct run *r, const struct wp_ynode *root)
{
	struct pctx p = {0};
	const struct wp_ynode *kn, *items;
	struct wp_obj *o;

	if (wp_ynode_is_null(root))
		return; /* empty document */
	if (root->type != WP_YNODE_MAP) {
		p.o = NULL;
		snprintf(p.msg, sizeof(p.msg), "%s:%u: document is not a mapping", r->origin,
		         root->line);
		report(r, &p, root->line);
		return;
	}
	kn = wp_ynode_get(root, "kind");
	items = wp_ynode_get(root, "items");
	if (kn && kn->type == WP_YNODE_SCALAR && strlen(kn->value) >= 4 &&
	    !strcmp(kn->value + strlen(kn->value) - 4, "List") && items &&
	    items->type == WP_YNODE_SEQ) {
		for (const struct wp_ynode *c = items->child; c && !r->stop; c = c->next)
			handle_root(r, c);
		return;
	}
	if (r->doc_cb)
		r->doc_cb(r->ctx, r->origin, root);
	o = wp_model_extract(&p, root, r->origin);
	if (o) {
		int rc = r->obj_cb(r->ctx, o);

		if (rc < 0)
			r->stop = rc;
		return;
	}
	if (p.failed)
		report(r, &p, root->line);
	wp_obj_free(p.o);
}

int wp_model_parse(const char *buf, size_t len, const char *origin, wp_model_obj_cb obj_cb,
                   wp_model_err_cb err_cb, void *ctx)
{
	return wp_model_parse_docs(buf, len, origin, obj_cb, err_cb, NULL, ctx);
}

int wp_model_parse_docs(const char *buf, size_t len, const char *origin, wp_model_obj_cb obj_cb,
                        wp_model_err_cb err_cb, wp_model_doc_cb doc_cb, void *ctx)
{
	struct run r = {
	        .origin = origin, .obj_cb = obj_cb, .err_cb = err_cb, .doc_cb = doc_cb, .ctx = ctx};
	struct wp_ynode *stack[MAX_DEPTH];
	struct wp_ynode *root = NULL;
	const char *pending_key = NULL;
	const char *keys[MAX_DEPTH];
	int depth = 0, rc = 0;
	struct wp_arena doc;
	yaml_parser_t parser;
	yaml_event_t ev;
	bool done = false;

	wp_arena_init(&doc, 16384);
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	while (!done && !r.stop) {
		struct wp_ynode *n = NULL;
		uint32_t line;

		if (!yaml_parser_parse(&parser, &ev)) {
			struct pctx p = {0};

			snprintf(p.msg, sizeof(p.msg), "%s:%zu: YAML syntax error: %s%s%s", origin,
			         parser.problem_mark.line + 1,
			         parser.problem ? parser.problem : "unknown",
			         parser.context ? " " : "", parser.context ? parser.context : "");
			report(&r, &p, (uint32_t)parser.problem_mark.line + 1);
			rc = -EBADMSG;
			break;
		}
		line = (uint32_t)ev.start_mark.line + 1;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			root = NULL;
			depth = 0;
			pending_key = NULL;
			wp_arena_free(&doc);
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (root)
				handle_root(&r, root);
			root = NULL;
			wp_arena_free(&doc);
			break;
		case YAML_ALIAS_EVENT: {
			struct pctx p = {0};

			snprintf(p.msg, sizeof(p.msg), "%s:%u: YAML aliases are not supported",
			         origin, line);
			report(&r, &p, line);
			rc = -EBADMSG;
			done = true;
			break;
		}
		case YAML_SCALAR_EVENT:
			/* a scalar in a map with no pending key is a key */
			if (depth > 0 && stack[depth - 1]->type == WP_YNODE_MAP && !pending_key) {
				pending_key =
				        wp_arena_strndup(&doc, (const char *)ev.data.scalar.value,
				                         ev.data.scalar.length);
				if (!pending_key)
					rc = -ENOMEM;
				break;
			}
			n = node_new(&doc, WP_YNODE_SCALAR, line);
			if (n) {
				n->value =
				        wp_arena_strndup(&doc, (const char *)ev.data.scalar.value,
				                         ev.data.scalar.length);
				n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			}
			if (!n || !n->value)
				rc = -ENOMEM;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (depth > 0 && stack[depth - 1]->type == WP_YNODE_MAP && !pending_key) {
				struct pctx p = {0};

				snprintf(p.msg, sizeof(p.msg),
				         "%s:%u: complex mapping keys are not supported", origin,
				         line);
				report(&r, &p, line);
				rc = -EBADMSG;
				done = true;
				break;
			}
			n = node_new(&doc,
			             ev.type == YAML_MAPPING_START_EVENT ? WP_YNODE_MAP
			                                                 : WP_YNODE_SEQ,
			             line);
			if (!n)
				rc = -ENOMEM;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			pending_key = keys[depth];
			n = stack[depth];
			/* re-attach below with its key, as a finished node */
			if (depth == 0) {
				root = n;
				n = NULL;
			} else {
				struct wp_ynode *parent = stack[depth - 1];

				n->key = pending_key;
				node_add(parent, n);
				pending_key = NULL;
				n = NULL;
			}
			break;
		default:
			break;
		}
		if (rc == -ENOMEM) {
			yaml_event_delete(&ev);
			break;
		}
		if (n) {
			if (n->type == WP_YNODE_SCALAR) {
				if (depth == 0) {
					root = n;
				} else {
					n->key = pending_key;
					node_add(stack[depth - 1], n);
					pending_key = NULL;
				}
			} else {
				if (depth >= MAX_DEPTH) {
					struct pctx p = {0};

					snprintf(p.msg, sizeof(p.msg),
					         "%s:%u: nesting deeper than %d levels", origin,
					         line, MAX_DEPTH);
					report(&r, &p, line);
					rc = -EBADMSG;
					done = true;
				} else {
					keys[depth] = pending_key;
					pending_key = NULL;
					stack[depth++] = n;
				}
			}
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	wp_arena_free(&doc);
	if (r.stop)
		return r.stop;
	if (rc)
		return rc;
	return r.rejected;
}

struct one {
	struct wp_obj *obj;
	int count;
	char *err;
	size_t errlen;
};

static int one_obj(void *ctx, struct wp_obj *o)
{
	struct one *x = ctx;

	if (x->obj) {
		wp_obj_free(o);
		x->count++;
		return 0;
	}
	x->obj = o;
	x->count++;
	return 0;
}

static void one_err(void *ctx, const struct wp_model_error *e)
{
	struct one *x = ctx;

	if (x->err && x->errlen && !x->err[0])
		snprintf(x->err, x->errlen, "%s", e->msg);
}

struct wp_obj *wp_model_parse_one(const char *buf, size_t len, const char *origin, char *err,
                                  size_t errlen)
{
	struct one x = {.err = err, .errlen = errlen};
	int rc;

	if (err && errlen)
		err[0] = '\0';
	rc = wp_model_parse(buf, len, origin, one_obj, one_err, &x);
	if (rc != 0 || x.count > 1) {
		if (x.count > 1 && err && errlen && !err[0])
			snprintf(err, errlen, "%s: expected one object, found %d", origin, x.count);
		wp_obj_free(x.obj);
		return NULL;
	}
	return x.obj;
}
