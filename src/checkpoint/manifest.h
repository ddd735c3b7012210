/* The checkpoint manifest (manifest.json): what a checkpoint holds and how
 * to read it back. A dump writes a stub with "complete": false first, and
 * the final manifest last, atomically; a checkpoint whose manifest is not
 * complete is refused by restore. */
#ifndef CRSTREAM_CHECKPOINT_MANIFEST_H
#define CRSTREAM_CHECKPOINT_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shard/marker.h"	/* IMAGE_FILES_MAX */

#define MANIFEST_NAME "manifest.json"
/* Signed checkpoints (checkpoint/protect.h): the manifest's signature, and
 * each stream's chunk digest list. */
#define SIGNATURE_NAME MANIFEST_NAME ".sig"
#define CHUNKS_NAME_FMT "chunks-%d.sha256"
#define MANIFEST_FORMAT "crstream-checkpoint"
#define MANIFEST_VERSION 1
#define CHECKSUM_ALGO "xxh128"
#define CHECKSUM_HEX 32
/* Streams per checkpoint, on dump as on restore. */
#define STREAMS_MAX 64

#define DIGEST_FIELD_HEX 64

struct manifest_stream {
	char file[64];		/* "img-0.lz4" */
	uint64_t stored_bytes;	/* bytes in the store */
	uint64_t raw_bytes;	/* shard bytes before compression */
	char checksum[CHECKSUM_HEX + 1];	/* xxh128 of the stored bytes, hex */
	/* Signed checkpoints (see checkpoint/protect.h): the object listing
	 * the digest of every chunk of the stored bytes, and the digest of
	 * that object. Empty otherwise. */
	char chunk_digests[64];
	char digest[DIGEST_FIELD_HEX + 1];
};

/* How the streams are protected (checkpoint/protect.h). */
struct manifest_protection {
	char encryption[8];	/* "age", or "" */
	char **recipients;	/* age1... (public keys), NULL-terminated */
	char digest_algorithm[16];	/* "sha256" when streams carry chunk digests */
	uint64_t chunk_size;	/* stored bytes per chunk digest */
};

struct manifest_file {
	char *name;
	uint64_t size;
	char checksum[CHECKSUM_HEX + 1];	/* only for unstreamed (N=0) checkpoints */
};

struct manifest {
	bool complete;
	char *error;		/* why an incomplete dump stopped, if known */
	char *name;
	int streams;		/* 0: plain CRIU image directory */
	char compression[16];
	int level;
	struct manifest_stream *stream;	/* streams entries */
	struct manifest_file *files;
	size_t nfiles;
	size_t files_cap;
	int pid;
	char *criu_version;
	char *hostname;
	char *kernel;
	char *tool_version;
	char started_at[32];	/* UTC, ISO 8601 */
	char finished_at[32];
	uint64_t frozen_us;	/* CRIU's frozen time: freeze to kill */
	uint64_t dump_ms;	/* crstream dump wall time */
	uint64_t image_bytes;	/* sum of the image files' sizes */
	bool shell_job;		/* dumped with --shell-job: restore needs it too */
	bool tcp_established;	/* likewise for --tcp-established */
	struct manifest_protection prot;
};

/* Serialise (pretty JSON, trailing newline) into a malloc'd string. */
char *manifest_to_json(const struct manifest *m);

/* Parse and validate a manifest. Errors name the field ("manifest.json:
 * streams[2].checksum is not 32 hex digits"). What it may hold is bounded
 * (STORE_SMALL_MAX bytes, STREAMS_MAX streams, IMAGE_FILES_MAX files, and
 * about as many JSON values as those need), and every file name is a
 * plain name (no '/', "..", NUL). */
int manifest_parse(const char *json, struct manifest *m);

struct strmap;
/* The image files read from a checkpoint's streams (name -> size, as
 * uintptr_t) are exactly those of the manifest, with its sizes. */
int manifest_check_files(const struct manifest *m, const struct strmap *seen);

/* Append an image file entry (copies name). */
int manifest_add_file(struct manifest *m, const char *name, uint64_t size);

void manifest_free(struct manifest *m);

/* Current UTC time as 2026-11-26T00:08:58Z. */
void utc_now(char *buf, size_t size);

#endif
