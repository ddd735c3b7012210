/* Writes an image as N shard streams (spec section 2): chunks of file data
 * behind markers, one seq counter across all shards, each chunk sent to the
 * shard with the most free pipe space so that a slow shard gets less. */
#ifndef CRSTREAM_SHARD_WRITER_H
#define CRSTREAM_SHARD_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/marker.h"

struct shard_out {
	int fd;
	int index;
	bool is_pipe;
	int capacity;	/* pipe capacity in bytes (pipes only) */
	long room;	/* lower bound of free pipe space, refreshed lazily */
	uint64_t bytes;	/* bytes written so far: the shard's offset */
};

struct shard_writer {
	struct shard_out *shards;
	int nshards;
	uint64_t seq;
	size_t chunk_max;	/* largest payload behind one marker */
	bool have_current;
	char current[MARKER_NAME_MAX + 1];
	uint8_t *copy_buf;	/* fallback when splice() cannot be used */
};

/* fds are the shard outputs (pipes or regular files), not owned. The pipes
 * are grown towards 1 MiB; chunks are sized from the result. */
int shard_writer_init(struct shard_writer *w, const int *fds, int nfds);
void shard_writer_free(struct shard_writer *w);

/* Move exactly len bytes of `name` from src (a pipe or a file) into the
 * shards, in chunks. The bytes must be available (FIONREAD said so, or src is
 * a file), so this never waits on the producer. */
int shard_writer_move(struct shard_writer *w, const char *name, int src, size_t len);

/* Append len bytes of `name` from memory. */
int shard_writer_write(struct shard_writer *w, const char *name, const void *buf, size_t len);

/* The file is complete (a zero-length file is a filename + file_eof). */
int shard_writer_file_eof(struct shard_writer *w, const char *name);

/* The image is complete: the last marker. */
int shard_writer_image_eof(struct shard_writer *w);

#endif
