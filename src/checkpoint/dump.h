/* `crstream dump`: checkpoint a process tree through N compressed streams
 * into a store, durable before CRIU kills the tree. */
#ifndef CRSTREAM_CHECKPOINT_DUMP_H
#define CRSTREAM_CHECKPOINT_DUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "checkpoint/progress.h"
#include "codec/codec.h"
#include "store/store.h"
#include "util/err.h"

struct dump_opts {
	pid_t pid;
	int streams;			/* 0: plain CRIU image directory */
	const char *dir;		/* store location */
	const char *name;		/* NULL: dump-<pid>-<UTC time> */
	const struct codec *codec;
	int level;
	bool leave_running;
	int shell_job;			/* -1: when the target is not a session leader */
	bool tcp_established;
	bool file_locks;
	bool ext_unix_sk;
	char *const *external;		/* --external values */
	int nexternal;
	char *const *criu_opts;		/* passed through to CRIU */
	int ncriu_opts;
	const char *criu;		/* CRIU binary */
	const char *self;		/* the crstream binary, for CRIU's action script */
	const struct store_options *store_opt;
	struct ckpt_progress_sink progress;	/* progress events (fn NULL: none) */
	/* Trusted checkpoints (checkpoint/protect.h): age recipients and
	 * recipients files, comma-separated; the signing key file. "" or
	 * NULL: none. */
	const char *recipients;
	const char *sign_key;
};

struct dump_result {
	char location[4200];		/* where the checkpoint is: DIR/NAME */
	char name[256];
	int streams;
	char compression[16];
	uint64_t image_bytes;		/* CRIU image files, uncompressed */
	uint64_t stored_bytes;		/* what the streams take in the store */
	uint64_t frozen_us;		/* CRIU: tasks frozen until killed */
	uint64_t dump_ms;		/* the whole command */
	uint64_t criu_ms;		/* CRIU's run */
	/* After a failure, what crstream saw of the process: "running",
	 * "stopped", "traced" (held by another tracer) or "gone". */
	const char *process_state;
	bool process_running;		/* process_state is "running" */
	bool encrypted;			/* streams are age files */
	bool signed_manifest;		/* manifest.json.sig written */
};

/* Signals SIGINT/SIGTERM/SIGCHLD must be blocked (session_block_signals)
 * before this is called. */
int checkpoint_dump(const struct dump_opts *o, struct dump_result *r);

#endif
