/* Extract: shards -> a directory of image files (plus external files to
 * their fds), the image exactly as `criu dump` without streaming writes it. */
#include "engine/engine.h"
#include "engine/engine_util.h"
#include "shard/shard_reader.h"
#include "util/err.h"
#include "util/fdio.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct extract {
	const struct engine_opts *o;
	struct engine_result *res;
	int dirfd;
	bool *ext_used;
};

struct out_file {
	int fd;
	bool external;
	uint64_t size;
	char name[];
};

static void *x_open(void *ctx, const char *name)
{
	struct extract *x = ctx;
	struct out_file *f = calloc(1, sizeof(*f) + strlen(name) + 1);
	if (!f) {
		err_set("out of memory");
		return NULL;
	}
	strcpy(f->name, name);
	int ext = engine_find_ext(x->o, name);
	if (ext >= 0) {
		f->fd = x->o->ext[ext].fd;
		f->external = true;
		x->ext_used[ext] = true;
		return f;
	}
	if (engine_check_name(name) < 0) {
		free(f);
		return NULL;
	}
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", x->o->images_dir, name);
	/* Never through a symbolic link planted in the directory, never over
	 * an existing file. */
	f->fd = file_create_at(x->dirfd, name, O_WRONLY, path);
	if (f->fd < 0) {
		free(f);
		return NULL;
	}
	return f;
}

static int x_data(void *ctx, void *file, struct shard_in *in, uint32_t len)
{
	struct extract *x = ctx;
	struct out_file *f = file;
	x->res->file_bytes += len;
	f->size += len;
	return shard_in_splice(in, f->fd, NULL, len);
}

static int x_eof(void *ctx, void *file)
{
	struct extract *x = ctx;
	struct out_file *f = file;
	/* Closing an external fd is how its reader (tar, say) learns the file
	 * is complete. */
	int rc = close(f->fd);
	if (x->o->on_file)
		x->o->on_file(x->o->arg, f->name, f->size);
	free(f);
	x->res->files++;
	return rc < 0 ? err_sys("close") : 0;
}

static void x_discard(void *ctx, void *file)
{
	(void)ctx;
	struct out_file *f = file;
	if (!f->external)
		close(f->fd);
	free(f);
}

static const struct image_sink_ops extract_ops = {
	.open = x_open,
	.data = x_data,
	.eof = x_eof,
	.discard = x_discard,
};

int engine_extract(const struct engine_opts *o, struct engine_result *res)
{
	struct extract x = {.o = o, .res = res};
	struct shard_reader r;
	int rc = -1;

	if (mkdir_p(o->images_dir, 0700) < 0)
		return -1;
	/* Ours and private, whoever made it: nobody else may swap what we
	 * write in it. */
	x.dirfd = dir_open_at(AT_FDCWD, o->images_dir, false, true, o->images_dir);
	if (x.dirfd < 0)
		return -1;
	x.ext_used = calloc((size_t)o->next + 1, sizeof(bool));
	if (!x.ext_used) {
		close(x.dirfd);
		return err_set("out of memory");
	}
	if (shard_reader_init(&r, o->shard_fds, o->nshards, &extract_ops, &x) == 0) {
		for (int i = 0; o->shard_labels && i < o->nshards; i++)
			shard_reader_set_label(&r, i, o->shard_labels[i]);
		if (o->allow_cedana)
			shard_reader_allow_cedana(&r);
		rc = shard_reader_run(&r);
		if (rc == 0)
			rc = engine_missing_ext(o, x.ext_used);
		if (rc == 0) {
			for (int i = 0; i < o->nshards; i++) {
				res->shards[i].bytes = r.shards[i].offset;
				res->shards[i].millis = r.shards[i].done_ms;
			}
			engine_emit_stats(o->progress_fd, res->shards, o->nshards);
		}
		shard_reader_free(&r);
	}
	free(x.ext_used);
	close(x.dirfd);
	return rc;
}
