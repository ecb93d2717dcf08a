/*
 * The manifest-directory source (see wp/source.h). Every *.yaml, *.yml and
 * *.json file directly in the directory is parsed at start; inotify then
 * reports files written, moved in or out, or deleted, and only those files
 * are re-read. For each file the source remembers which objects it
 * delivered, so a re-read turns into upserts for what is there and removes
 * for what left. Editors that save by rename (vim, kubectl-style atomic
 * writes) show up as IN_MOVED_TO and are handled like a write.
 *
 * A written file is read when its writer closes it (IN_CLOSE_WRITE), never
 * on IN_MODIFY: an editor that truncates the file and then writes the new
 * text would otherwise have it read empty in between, and every object in
 * it would be withdrawn from the snapshot for a moment
 * (tests/integration/test_manifest_edit.sh holds a file truncated for 1 s).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wp/model.h"
#include "wp/source.h"

#define MAX_FILE_SIZE (64u << 20)

struct okey {
	enum wp_kind kind;
	char *ns;
	char *name;
};

struct mfile {
	struct mfile *next;
	char *name;
	struct okey *keys; /* sorted */
	unsigned n_keys;
};

struct mdir {
	struct wp_source base;
	char *dir;
	int ifd;
	struct mfile *files;
};

static int key_cmp(const void *a, const void *b)
{
	const struct okey *x = a, *y = b;
	int c;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	c = strcmp(x->ns, y->ns);
	return c ? c : strcmp(x->name, y->name);
}

static void keys_free(struct okey *k, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		free(k[i].ns);
		free(k[i].name);
	}
	free(k);
}

static bool wanted(const char *name)
{
	size_t l = strlen(name);

	if (name[0] == '.' || name[l - 1] == '~')
		return false;
	return (l > 5 && !strcmp(name + l - 5, ".yaml")) ||
	       (l > 4 && !strcmp(name + l - 4, ".yml")) ||
	       (l > 5 && !strcmp(name + l - 5, ".json"));
}

struct collect {
	struct wp_obj **objs;
	unsigned n, cap;
	struct okey *rej; /* rejected documents that named themselves */
	unsigned n_rej, cap_rej;
	const struct wp_source_sink *sink;
	bool oom;
};

static int c_obj(void *ctx, struct wp_obj *o)
{
	struct collect *c = ctx;

	if (c->n == c->cap) {
		unsigned nc = c->cap ? c->cap * 2 : 32;
		struct wp_obj **v = realloc(c->objs, nc * sizeof(*v));

		if (!v) {
			wp_obj_free(o);
			c->oom = true;
			return -ENOMEM;
		}
		c->objs = v;
		c->cap = nc;
	}
	c->objs[c->n++] = o;
	return 0;
}

static void c_err(void *ctx, const struct wp_model_error *e)
{
	struct collect *c = ctx;

	c->sink->ops->error(c->sink->ctx, e->origin, e->msg);
	if (e->kind == WP_KIND_NONE || !e->name)
		return;
	if (c->n_rej == c->cap_rej) {
		unsigned nc = c->cap_rej ? c->cap_rej * 2 : 8;
		struct okey *v = realloc(c->rej, nc * sizeof(*v));

		if (!v)
			return;
		c->rej = v;
		c->cap_rej = nc;
	}
	c->rej[c->n_rej].kind = e->kind;
	c->rej[c->n_rej].ns = strdup(e->ns ? e->ns : "");
	c->rej[c->n_rej].name = strdup(e->name);
	c->n_rej++;
}

static void c_doc(void *ctx, const char *origin, const struct wp_ynode *root)
{
	struct collect *c = ctx;

	c->sink->ops->document(c->sink->ctx, origin, root);
}

static char *read_file(const char *path, size_t *len, int *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_FILE_SIZE) {
		*err = -EINVAL;
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		*err = -ENOMEM;
		close(fd);
		return NULL;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	*len = off;
	return buf;
}

static struct mfile **find_file(struct mdir *md, const char *name)
{
	struct mfile **pp = &md->files;

	while (*pp && strcmp((*pp)->name, name))
		pp = &(*pp)->next;
	return pp;
}

/* Re-reads one file and applies the difference. Returns rejected count,
 * or -errno. */
static int apply_file(struct mdir *md, const char *dir, const char *name,
                      const struct wp_source_sink *sink)
{
	struct mfile **pp = find_file(md, name), *f = *pp;
	struct collect c = {.sink = sink};
	struct okey *nk = NULL;
	unsigned nn = 0;
	char path[PATH_MAX];
	size_t len = 0;
	int rc, err = 0;
	char *buf;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	sink->ops->clear_errors(sink->ctx, path);
	buf = read_file(path, &len, &err);
	if (!buf) {
		if (err != -ENOENT) {
			char msg[PATH_MAX + 64];

			snprintf(msg, sizeof(msg), "%s: cannot read: %s", path, strerror(-err));
			sink->ops->error(sink->ctx, path, msg);
			return err;
		}
		/* gone: remove everything it delivered */
		if (f) {
			for (unsigned i = 0; i < f->n_keys; i++)
				sink->ops->remove(sink->ctx, f->keys[i].kind, f->keys[i].ns,
				                  f->keys[i].name);
			*pp = f->next;
			keys_free(f->keys, f->n_keys);
			free(f->name);
			free(f);
		}
		return 0;
	}
	rc = wp_model_parse_docs(buf, len, path, c_obj, c_err, sink->ops->document ? c_doc : NULL,
	                         &c);
	free(buf);
	if (rc < 0) {
		/* syntax error or no memory: the file's previous objects stay */
		for (unsigned i = 0; i < c.n; i++)
			wp_obj_free(c.objs[i]);
		free(c.objs);
		keys_free(c.rej, c.n_rej);
		return rc;
	}
	nk = calloc(c.n + c.n_rej + 1, sizeof(*nk));
	if (!nk) {
		for (unsigned i = 0; i < c.n; i++)
			wp_obj_free(c.objs[i]);
		free(c.objs);
		keys_free(c.rej, c.n_rej);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < c.n; i++) {
		nk[nn].kind = c.objs[i]->kind;
		nk[nn].ns = strdup(c.objs[i]->meta.ns);
		nk[nn].name = strdup(c.objs[i]->meta.name);
		nn++;
	}
	/* a rejected object keeps its last good version: keep its key */
	for (unsigned i = 0; i < c.n_rej; i++) {
		if (f && bsearch(&c.rej[i], f->keys, f->n_keys, sizeof(*f->keys), key_cmp)) {
			nk[nn++] = c.rej[i];
			c.rej[i].ns = c.rej[i].name = NULL;
		}
	}
	keys_free(c.rej, c.n_rej);
	qsort(nk, nn, sizeof(*nk), key_cmp);
	for (unsigned i = 0; i < c.n; i++)
		sink->ops->upsert(sink->ctx, c.objs[i]);
	free(c.objs);
	if (f) {
		for (unsigned i = 0; i < f->n_keys; i++)
			if (!bsearch(&f->keys[i], nk, nn, sizeof(*nk), key_cmp))
				sink->ops->remove(sink->ctx, f->keys[i].kind, f->keys[i].ns,
				                  f->keys[i].name);
		keys_free(f->keys, f->n_keys);
	} else {
		f = calloc(1, sizeof(*f));
		if (!f || !(f->name = strdup(name))) {
			free(f);
			keys_free(nk, nn);
			return -ENOMEM;
		}
		f->next = md->files;
		md->files = f;
	}
	f->keys = nk;
	f->n_keys = nn;
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int load_all(struct mdir *md, const struct wp_source_sink *sink)
{
	DIR *d = opendir(md->dir);
	struct dirent *de;
	char **names = NULL;
	unsigned n = 0, cap = 0;
	int bad = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!wanted(de->d_name))
			continue;
		if (n == cap) {
			unsigned nc = cap ? cap * 2 : 16;
			char **v = realloc(names, nc * sizeof(*v));

			if (!v)
				break;
			names = v;
			cap = nc;
		}
		if ((names[n] = strdup(de->d_name)))
			n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (unsigned i = 0; i < n; i++) {
		int rc = apply_file(md, md->dir, names[i], sink);

		bad += rc < 0 ? 1 : rc;
		free(names[i]);
	}
	free(names);
	return bad;
}

static int md_start(struct wp_source *src, const struct wp_source_sink *sink)
{
	struct mdir *md = (struct mdir *)src;
	int rc;

	src->sink = sink;
	md->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (md->ifd < 0)
		return -errno;
	if (inotify_add_watch(md->ifd, md->dir,
	                      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0)
		return -errno;
	rc = load_all(md, sink);
	if (rc < 0)
		return rc;
	sink->ops->synced(sink->ctx, src->ops->name);
	return 0;
}

static int md_fd(struct wp_source *src)
{
	return ((struct mdir *)src)->ifd;
}

static int md_poll(struct wp_source *src)
{
	struct mdir *md = (struct mdir *)src;
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	char *names[64];
	unsigned n = 0;
	int delivered = 0;
	ssize_t len;

	while ((len = read(md->ifd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + len;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			bool dup = false;

			p += sizeof(*ev) + ev->len;
			if (!ev->len || !wanted(ev->name))
				continue;
			for (unsigned i = 0; i < n; i++)
				if (!strcmp(names[i], ev->name))
					dup = true;
			if (!dup && n < WP_ARRAY_SIZE(names) && (names[n] = strdup(ev->name)))
				n++;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		apply_file(md, md->dir, names[i], src->sink);
		free(names[i]);
		delivered++;
	}
	return delivered;
}

static void md_destroy(struct wp_source *src)
{
	struct mdir *md = (struct mdir *)src;

	while (md->files) {
		struct mfile *f = md->files;

		md->files = f->next;
		keys_free(f->keys, f->n_keys);
		free(f->name);
		free(f);
	}
	if (md->ifd >= 0)
		close(md->ifd);
	free(md->dir);
	free(md);
}

static const struct wp_source_ops md_ops = {
        .name = "manifest-dir",
        .start = md_start,
        .fd = md_fd,
        .poll = md_poll,
        .destroy = md_destroy,
};

struct wp_source *wp_source_manifest_dir_create(const char *dir)
{
	struct mdir *md = calloc(1, sizeof(*md));

	if (!md)
		return NULL;
	md->base.ops = &md_ops;
	md->ifd = -1;
	md->dir = strdup(dir);
	if (!md->dir) {
		free(md);
		return NULL;
	}
	return &md->base;
}

int wp_source_manifest_dir_load(const char *dir, const struct wp_source_sink *sink)
{
	struct wp_source *src = wp_source_manifest_dir_create(dir);
	int rc;

	if (!src)
		return -ENOMEM;
	rc = load_all((struct mdir *)src, sink);
	md_destroy(src);
	return rc;
}
