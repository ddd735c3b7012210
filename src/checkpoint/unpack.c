#include "checkpoint/unpack.h"
#include "checkpoint/protect.h"
#include "checkpoint/streams.h"
#include "engine/engine.h"
#include "util/err.h"
#include "util/strmap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct unpack {
	const struct unpack_opts *o;
	struct unpack_result *r;
	struct store *store;
	struct protect *prot;
	struct layout lay;
	struct stream_set streams;
	struct strmap files;	/* name -> size of every file written */
	bool made_dir;
};

static void on_file(void *arg, const char *name, uint64_t size)
{
	struct unpack *u = arg;
	if (!strmap_add(&u->files, name, (void *)(uintptr_t)size))
		warnx_("cannot record %s: %s", name, err_msg());
}

/* The output holds image files only (names without '/'): one level. */
static void remove_output(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	while (dp && (de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(dp), de->d_name, 0);
	if (dp)
		closedir(dp);
	rmdir(dir);
}

/* Runs the engine's extract on the streams; the workers' own errors
 * (verification, decryption, decoding) explain the engine's. */
static int extract_streams(struct unpack *u)
{
	const struct layout *lay = &u->lay;
	const char **sums = calloc((size_t)lay->streams, sizeof(char *));
	int *fds = calloc((size_t)lay->streams, sizeof(int));
	const char **labels = calloc((size_t)lay->streams, sizeof(char *));
	struct shard_stat *stats = calloc((size_t)lay->streams, sizeof(*stats));
	int rc = sums && fds && labels && stats ? 0 : err_set("out of memory");
	for (int i = 0; rc == 0 && lay->have_manifest && i < lay->streams; i++)
		sums[i] = lay->m.stream[i].checksum;
	if (rc == 0)
		rc = streams_start_restore(&u->streams, lay->streams, u->store, "", lay->files,
					   lay->have_manifest ? sums : NULL, lay->codec,
					   protect_filters(u->prot));
	protect_restore_started(u->prot);
	if (rc == 0) {
		struct engine_opts eo;
		struct engine_result res = {.shards = stats};
		engine_opts_init(&eo);
		for (int i = 0; i < lay->streams; i++) {
			fds[i] = u->streams.s[i].engine_fd;
			labels[i] = u->streams.s[i].file;
		}
		eo.images_dir = u->o->dir;
		eo.shard_fds = fds;
		eo.shard_labels = labels;
		eo.nshards = lay->streams;
		eo.allow_cedana = !lay->have_manifest;
		eo.on_file = on_file;
		eo.arg = u;
		rc = engine_extract(&eo, &res);
		if (rc < 0) {
			char engine_err[ERR_MAX];
			err_copy(engine_err, sizeof(engine_err));
			streams_abort(&u->streams);
			if (streams_error(&u->streams) == 0)
				err_set("%s", engine_err);
		} else {
			rc = streams_wait_restore(&u->streams);
		}
		u->r->files = res.files;
		u->r->bytes = res.file_bytes;
	}
	free(sums);
	free(fds);
	free(labels);
	free(stats);
	return rc;
}

static int run(struct unpack *u)
{
	const struct unpack_opts *o = u->o;
	if (protect_restore_new(o->identities ? o->identities : "",
				o->trusted_keys ? o->trusted_keys : "", &u->prot) < 0 ||
	    store_open(o->path, o->store_opt, &u->store) < 0 ||
	    protect_open_checkpoint(u->store, o->path, &u->prot, &u->lay) < 0 ||
	    strmap_init(&u->files) < 0)
		return -1;
	snprintf(u->r->trust, sizeof(u->r->trust), "%s", protect_trust(u->prot));
	if (u->lay.streams == 0)
		return err_set("%s is a plain CRIU image directory: its files are the image already",
			       o->path);
	/* A new directory, so that a failure can take everything back. */
	if (mkdir(o->dir, 0700) < 0)
		return err_sys("cannot create %s (extract writes into a new directory)", o->dir);
	u->made_dir = true;
	if (extract_streams(u) < 0)
		return -1;
	return u->lay.have_manifest ? manifest_check_files(&u->lay.m, &u->files) : 0;
}

int checkpoint_unpack(const struct unpack_opts *o, struct unpack_result *r)
{
	struct unpack u = {.o = o, .r = r};
	memset(r, 0, sizeof(*r));
	int rc = run(&u);
	char saved[ERR_MAX];
	err_copy(saved, sizeof(saved));
	/* Workers may still run (a later stream failed to start). */
	streams_abort(&u.streams);
	streams_free(&u.streams);
	if (rc < 0 && u.made_dir)
		remove_output(o->dir);
	if (u.files.buckets)
		strmap_free(&u.files);
	layout_free(&u.lay);
	protect_free(u.prot);
	store_close(u.store);
	err_set("%s", saved);
	return rc;
}
