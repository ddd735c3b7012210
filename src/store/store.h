/* Stores: where checkpoints live. A store is opened on a location (a local
 * or FUSE-mounted directory, s3://bucket/prefix, gs://bucket/prefix) and
 * holds objects named by keys relative to it ("NAME/img-0.lz4").
 *
 * A store is a small vtable; dump/restore talk to `struct store` only, so
 * adding a backend means one new file and one line in store.c's table.
 *
 * Errors: 0 / -1 with err_set(), as everywhere; messages name the URL/path
 * and key. */
#ifndef CRSTREAM_STORE_H
#define CRSTREAM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/stream.h"

struct store;

/* Small objects (manifests) are read whole into memory: this is as large
 * as one may be. A checkpoint's manifest is a few hundred bytes per image
 * file; anything far larger is not a manifest crstream wrote. */
#define STORE_SMALL_MAX (4u << 20)

struct store_options {
	/* Looks up a configuration value by key ("s3.region",
	 * "s3.part_size", ...); NULL when unset. May be NULL itself. */
	const char *(*config)(void *ctx, const char *key);
	void *ctx;
};

struct store_entry {
	const char *key;	/* relative to the store's location */
	uint64_t size;
	int64_t mtime;		/* seconds since the epoch, 0 if unknown */
};

typedef int (*store_list_fn)(const struct store_entry *e, void *arg);

struct store_ops {
	const char *scheme;	/* "file", "s3", "gs" */
	/* True if this backend handles the location (by its URL scheme). */
	bool (*handles)(const char *location);
	int (*open)(const char *location, const struct store_options *opt, struct store **out);

	/* A streaming writer for a new object. Data may be uploaded while it
	 * is written; close() makes the object complete and durable (local:
	 * fsync of file and directory; S3: the multipart upload completed).
	 * abort(), and a close() that fails, leave no object and no partial
	 * upload behind. Parent
	 * "directories" are created as needed (local: mode 0700; files are
	 * 0600 whatever the umask). */
	struct writer *(*create)(struct store *s, const char *key);

	/* A reader over a whole object; *size gets its size. */
	struct reader *(*open_read)(struct store *s, const char *key, uint64_t *size);

	/* A small object in one step, atomically: readers see the old object
	 * or the new one, never a mix (local: temp file, fsync, rename). */
	int (*put)(struct store *s, const char *key, const void *buf, size_t len);

	/* Whole small object into a malloc'd buffer (NUL-terminated, not
	 * counted in *len). Returns 0, 1 if there is no such object (no error
	 * set), or -1; an object larger than STORE_SMALL_MAX is an error. */
	int (*get)(struct store *s, const char *key, void **buf, size_t *len);

	/* Every object whose key starts with prefix ("" for all), in no
	 * particular order. fn's non-zero return stops the walk and is
	 * returned. */
	int (*list)(struct store *s, const char *prefix, store_list_fn fn, void *arg);

	/* Delete one object; a missing object is not an error. */
	int (*remove)(struct store *s, const char *key);

	/* Checks that the location is usable: reachable, credentials accepted,
	 * an object can be written and deleted. Writes a one-line summary
	 * (no secrets) into report. */
	int (*probe)(struct store *s, char *report, size_t size);

	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	char *location;		/* as given by the user, for messages */
};

/* Picks the backend for a location and opens it. */
int store_open(const char *location, const struct store_options *opt, struct store **out);

/* Finds, checks and loads the object-storage plugin (once): 0 with its
 * path in path (and its dlopen handle in *handle if not NULL), or -1 with
 * the reason it cannot be used (path then says where it was looked for). */
int store_plugin_load(char *path, size_t size, void **handle);

/* True if the location names object storage (s3://, gs://). */
bool store_is_remote(const char *location);

static inline void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

/* NULL-terminated table of every backend; the last one (local) takes any
 * location the others do not. */
extern const struct store_ops *const store_backends[];

#endif
