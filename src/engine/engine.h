/* The streaming engine between CRIU and the shards: capture (CRIU -> shards),
 * serve (shards -> CRIU) and extract (shards -> directory). This is what
 * `crstream capture|serve|extract` and `criu-image-streamer` run, and what
 * `crstream dump|restore` run in-process behind their codecs and stores. */
#ifndef CRSTREAM_ENGINE_H
#define CRSTREAM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "criu/files_patch.h"

/* A non-CRIU file woven into the image under its own name (e.g. fs.tar):
 * read from fd on capture, written to fd on serve/extract. */
struct ext_file {
	const char *name;
	int fd;
};

struct shard_stat {
	uint64_t bytes;
	uint64_t millis;
};

struct engine_opts {
	const char *images_dir;	/* where CRIU's socket lives */
	const int *shard_fds;
	int nshards;
	const char *const *shard_labels;	/* optional, for messages */
	const struct ext_file *ext;
	int next;
	int progress_fd;	/* -1: no progress messages */
	int cancel_fd;		/* -1, or an fd that becomes readable to abort */

	/* capture: hold page data (pages-*.img) by reference until CRIU has
	 * sent every other file, and write it last, so that a restore can
	 * start before the pages arrive. Only when the capture ends before
	 * CRIU resumes or kills the tree (the post-dump hook, finish_fd):
	 * parked pages are the live process's memory. */
	bool defer_pages;

	/* serve only */
	const struct port_remap *remaps;
	int nremaps;
	size_t memory_limit;	/* bytes of file data held in memory; 0 = default */
	const char *spill_dir;	/* where data beyond the limit goes; NULL = $TMPDIR */
	/* criu-image-streamer's order: load the whole image, print statistics,
	 * then open the socket. Otherwise the socket opens at once and CRIU is
	 * served each file as soon as it can be. */
	bool load_before_listen;
	/* Accept Cedana's split shard-0 layout (stored checkpoints only). */
	bool allow_cedana;
	/* serve: whether a file is in the image at all (from a manifest), so
	 * that CRIU's probes for absent files are answered at once instead of
	 * after the whole image has been read, and a file the image should
	 * not have is refused as soon as its name appears. NULL: wait for the
	 * image, take any file. */
	bool (*in_image)(void *arg, const char *name);
	/* serve: the size a manifest records for a file: a byte more is
	 * refused where it arrives. NULL: no limit. */
	uint64_t (*recorded_size)(void *arg, const char *name);
	/* serve: bytes each shard may have (from a manifest), NULL: any. */
	const uint64_t *shard_limits;
	/* serve: bytes that may go to the spill file; 0: no limit but the
	 * free space there, which always bounds it (less a margin). */
	uint64_t spill_limit;

	/* capture: an fd that becomes readable once CRIU has sent its last
	 * file (its post-dump hook runs before it closes the socket): take
	 * the requests already queued, finish the files in flight, and end
	 * the image without waiting for the socket to close. -1: none. */
	int finish_fd;

	/* Optional callbacks (called from engine threads). */
	void (*on_listen)(void *listen_arg);	/* the socket listens: CRIU may start */
	void *listen_arg;
	/* A file is complete in the image (capture: received whole; serve and
	 * extract: read whole from the shards). */
	void (*on_file)(void *arg, const char *name, uint64_t size);
	/* serve: every shard has been read; rc < 0 if the image is bad (the
	 * message is in msg). CRIU may still be reading. */
	void (*on_loaded)(void *arg, int rc, const char *msg);
	void *arg;
};

/* Per-run results, filled for the caller (dump/restore record them). */
struct engine_result {
	struct shard_stat *shards;	/* nshards entries, caller-allocated */
	uint64_t files;			/* image files moved */
	uint64_t file_bytes;		/* their payload bytes */
	uint64_t peak_buffered;		/* serve: most file bytes held in memory */
	uint64_t spilled;		/* serve: bytes that went to the spill file */
	uint64_t served_bytes;		/* serve: file bytes put into CRIU's pipes */
};

/* Zero everything and set every fd field to -1 ("none"). */
void engine_opts_init(struct engine_opts *o);

int engine_capture(const struct engine_opts *o, struct engine_result *res);
int engine_serve(const struct engine_opts *o, struct engine_result *res);
int engine_extract(const struct engine_opts *o, struct engine_result *res);

/* The statistics line of criu-image-streamer:
 * {"shards":[{"size":N,"transfer_duration_millis":M},...]} */
void engine_emit_stats(int progress_fd, const struct shard_stat *s, int n);
void engine_emit(int progress_fd, const char *line);

#endif
