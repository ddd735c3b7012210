/* `crstream restore`: bring a checkpoint back, streams read, checked and
 * decompressed in parallel while CRIU restores, and nothing resumed until
 * every stream checked out. */
#ifndef CRSTREAM_CHECKPOINT_RESTORE_H
#define CRSTREAM_CHECKPOINT_RESTORE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "checkpoint/progress.h"
#include "store/store.h"

struct restore_opts {
	const char *path;		/* the checkpoint: DIR/NAME, s3://.../NAME */
	const char *pid_file;		/* CRIU --pidfile, or NULL */
	int shell_job;			/* -1: as recorded (auto) */
	bool tcp_established;
	bool tcp_close;
	bool leave_stopped;
	bool detach;			/* --restore-detached (the default) */
	uint64_t memory_limit;
	uint64_t spill_limit;		/* 0: the image's size from the manifest */
	char *const *criu_opts;
	int ncriu_opts;
	const char *criu;
	const char *self;
	const struct store_options *store_opt;
	struct ckpt_progress_sink progress;	/* progress events (fn NULL: none) */
	/* Trusted checkpoints (checkpoint/protect.h), comma-separated files:
	 * age identities; OpenSSH .pub keys whose signature is required (a
	 * trust policy). "" or NULL: none. */
	const char *identities;
	const char *trusted_keys;
	/* Start CRIU only once every stream has been verified: under a trust
	 * policy, each stream's stored bytes are read, checked against the
	 * signed digests and held in $TMPDIR (their decoding then overlaps
	 * CRIU); without one, every stream is read, checksummed and decoded
	 * (the image held up to memory_limit, the rest spilled). Either way a
	 * checkpoint refused anywhere gives CRIU nothing. 1 on, 0 off, -1
	 * (the default): on under a trust policy, off without. */
	int verify_first;
};

struct restore_result {
	pid_t pid;			/* the restored tree's root */
	int streams;
	char compression[16];
	char layout[32];		/* "crstream", "criu-image-streamer", "cedana", "plain" */
	uint64_t image_bytes;
	uint64_t stored_bytes;
	uint64_t restore_ms;
	uint64_t criu_ms;
	uint64_t peak_buffered;
	uint64_t spilled;
	uint64_t served_bytes;		/* image bytes given to CRIU (also on failure) */
	bool encrypted;
	char trust[160];		/* "signature verified (SHA256:...)", "unsigned checkpoint", ... */
};

/* Call before any thread starts. SIGINT and SIGTERM end the process while
 * the checkpoint is being read; then they are blocked (as for
 * checkpoint_dump()) and end the restore cleanly, nothing resumed. */
int checkpoint_restore(const struct restore_opts *o, struct restore_result *r);

#endif
