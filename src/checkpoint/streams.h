/* The N streams of a checkpoint, each a pipe on the engine's side and a
 * worker thread on the other: on dump the worker compresses what the
 * engine writes and stores it (encoder -> checksum -> store object); on
 * restore it fetches, checks and decompresses a stored stream and feeds it
 * to the engine. One worker per stream, so N streams use N cores. */
#ifndef CRSTREAM_CHECKPOINT_STREAMS_H
#define CRSTREAM_CHECKPOINT_STREAMS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "checkpoint/checksum.h"
#include "codec/codec.h"
#include "store/store.h"
#include "util/err.h"

struct stream {
	int index;
	char file[64];		/* object name within the checkpoint: "img-0.lz4" */
	char key[4200];		/* store key: "NAME/img-0.lz4" */
	int engine_fd;		/* the engine's end of the pipe */
	int worker_fd;		/* the worker's end */
	struct writer *out;	/* dump: encoder -> checksum -> store */
	struct reader *in;	/* restore: store -> checksum -> decoder */
	struct checksum_result sum;
	uint64_t raw_bytes;	/* shard bytes through the codec (the worker adds
				 * atomically: progress reports read it) */
	uint64_t stored_bytes;	/* restore: the object's size */
	const char *expect_checksum;	/* restore: from the manifest, or NULL */
	pthread_t thread;
	bool started;
	atomic_bool aborting;	/* dump: stop and discard the object */
	bool committed;		/* dump: the object is complete in the store */
	int rc;
	char err[ERR_MAX];
};

struct stream_set {
	struct stream *s;
	int n;
};

/* More filters between the codec and the checksum, for every stream (the
 * crypto layer's encryption and chunk digests, see checkpoint/protect.h).
 * The wrappers return the writer the encoder writes into / the reader the
 * decoder reads from; on failure they return NULL and have aborted or
 * closed `next`. Streams with filters never take the splice paths. */
struct stream_filters {
	struct writer *(*wrap_writer)(void *ctx, int index, struct writer *next);
	struct reader *(*wrap_reader)(void *ctx, int index, struct reader *next);
	const char *suffix;	/* dump: appended to the stream names (".age") */
	void *ctx;
};

/* Stream object names: "img-<i><codec extension><suffix>". */
void stream_file_name(int i, const struct codec *codec, const char *suffix, char *buf,
		      size_t size);

/* Dump: create n stored streams under prefix ("NAME/") and start their
 * workers. Write the shards to set->s[i].engine_fd. filters may be NULL. */
int streams_start_dump(struct stream_set *set, int n, struct store *store, const char *prefix,
		       const struct codec *codec, int level, const struct stream_filters *filters);

/* Dump: end of data. Closes the engine ends, waits for the workers to
 * finish their frames and make the objects durable. Returns the first
 * worker error. */
int streams_finish_dump(struct stream_set *set);

/* Restore: open n stored streams (files[i] under prefix, expected to hash
 * to checksums[i] when checksums is not NULL) and start feeding them; read
 * the shards from set->s[i].engine_fd (a pipe, or for uncompressed local
 * streams the file itself). filters may be NULL. */
int streams_start_restore(struct stream_set *set, int n, struct store *store, const char *prefix,
			  char *const *files, const char *const *checksums,
			  const struct codec *codec, const struct stream_filters *filters);

/* Restore: wait for every worker to reach the end of its stream; returns
 * the first error (a decode error, a checksum mismatch, a read error). */
int streams_wait_restore(struct stream_set *set);

/* Ask dump workers to stop and discard their objects as soon as they can
 * (callable from any thread, e.g. on SIGINT). */
void streams_cancel(struct stream_set *set);

/* Stop everything (error paths): workers are told to stop, dump objects
 * are aborted (deleted / multipart aborted). Safe to call twice. */
void streams_abort(struct stream_set *set);

/* The first worker's error as the current message (-1), or 0 if none
 * failed. A worker stopped by streams_cancel/abort has not failed. */
int streams_error(const struct stream_set *set);

/* For progress reports, from any thread while the workers run: shard
 * bytes through the codecs so far, and bytes written to (dump) or read
 * from (restore) the store. */
void streams_progress(const struct stream_set *set, uint64_t *raw, uint64_t *stored);

/* Free the set (after finish/wait/abort). */
void streams_free(struct stream_set *set);

#endif
