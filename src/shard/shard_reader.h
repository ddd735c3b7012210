/* Reads an image back from N shard streams: merges their markers by seq,
 * tracks the current file and hands each file's data to an image sink.
 * Every malformation is refused with the shard, offset and file it concerns. */
#ifndef CRSTREAM_SHARD_READER_H
#define CRSTREAM_SHARD_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shard/marker.h"
#include "util/strmap.h"

struct reader_file;

struct shard_in {
	int fd;
	int index;
	bool is_pipe;
	bool is_regular;	/* a regular file: payload can be referenced by offset */
	uint64_t offset;	/* bytes consumed so far */
	bool eof;		/* ended cleanly at a record boundary */
	bool has_pending;	/* a marker read ahead, waiting for its seq */
	struct marker pending;
	uint64_t pending_offset;	/* where the pending record starts */
	uint64_t done_ms;	/* time from start to EOF */
	const char *label;	/* for messages: "shard 2" unless set */
	int abort_fd;		/* the reader's abort fd (-1: none) */
	uint64_t limit;		/* bytes the shard may have (UINT64_MAX: any) */
};

/* What the reader does with the image's files. Handles are the sink's. */
struct image_sink_ops {
	/* A file starts. Return a handle, or NULL with an error set. */
	void *(*open)(void *ctx, const char *name);
	/* len payload bytes of the file follow in `in`; consume exactly them
	 * with the shard_in_* helpers. */
	int (*data)(void *ctx, void *file, struct shard_in *in, uint32_t len);
	/* The file is complete. */
	int (*eof)(void *ctx, void *file);
	/* Release a handle that never reached eof (error paths). May be NULL. */
	void (*discard)(void *ctx, void *file);
};


struct shard_reader {
	struct shard_in *shards;
	int nshards;
	uint64_t next_seq;
	struct strmap files;	/* every file seen: name -> struct reader_file */
	struct reader_file *current;	/* NULL after file_eof */
	bool image_eof;
	const struct image_sink_ops *ops;
	void *ctx;
	uint64_t start_ms;
	uint64_t markers;
	int abort_fd;
	bool allow_cedana;	/* recognise Cedana's split layout */
	bool cedana;		/* ... and it was one */
};

/* fds: the shard inputs (pipes or regular files, not owned). */
int shard_reader_init(struct shard_reader *r, const int *fds, int nfds,
		      const struct image_sink_ops *ops, void *ctx);
void shard_reader_free(struct shard_reader *r);

/* Label shard i in messages (e.g. "img-2.lz4"); the string is not copied. */
void shard_reader_set_label(struct shard_reader *r, int i, const char *label);

/* Shard i holds at most `bytes` bytes (what a manifest promises): a record
 * that would go past it is refused before it is read, however much more
 * the shard would deliver. */
void shard_reader_set_limit(struct shard_reader *r, int i, uint64_t bytes);

/* While reading pipes, give up (error "aborted") as soon as fd becomes
 * readable. */
void shard_reader_set_abort_fd(struct shard_reader *r, int fd);

/* Also accept the layout of Cedana's streamer in which shard 0 holds the
 * small files under a seq counter of its own. Reads the first marker of
 * every shard before anything else, so only for shards that fill
 * independently (stored streams), never for a live capture. */
void shard_reader_allow_cedana(struct shard_reader *r);

/* Read until image_eof and the end of every shard. */
int shard_reader_run(struct shard_reader *r);

/* Payload helpers for sinks. Each consumes exactly len bytes or fails with a
 * message naming the shard and offset ("truncated" if the shard ends). */
int shard_in_read(struct shard_in *in, void *buf, size_t len);
/* To a pipe or a file; out_off as for splice(2) (NULL: file position). */
int shard_in_splice(struct shard_in *in, int out_fd, loff_t *out_off, size_t len);
/* Skip len bytes: lseek on a regular file, read and drop otherwise. */
int shard_in_skip(struct shard_in *in, size_t len);

/* Error-message label of a shard ("shard 1" or the label set). */
const char *shard_in_name(const struct shard_in *in, char *buf, size_t size);

#endif
