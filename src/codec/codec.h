/* Codecs: compression of a whole shard byte stream in the format's standard
 * frame, so that `lz4 -dc img-0.lz4`, `zstd -dc img-0.zst`, `gzip -dc
 * img-0.gz` (and zlib-flate -uncompress for .zlib) give the raw shard back.
 *
 * A codec is a vtable of two constructors: an encoder is a writer filter,
 * a decoder a reader filter (see util/stream.h). Adding a codec means one
 * new file and one line in codec.c's table; nothing above this layer
 * changes.
 *
 * Levels (min..max, default; the encoder constructor rejects others):
 *   none  0..0, 0   ignored
 *   lz4   1..12, 1  as the lz4 CLI: 1-2 fast, 3..12 LZ4HC; 64 KiB
 *                   independent blocks, block checksums (codec_lz4.c)
 *   zstd  1..19, 1  as the zstd CLI; frame checksum on; decoding refuses
 *                   windows over 16 MiB (codec_zstd.c)
 *   gzip  1..9, 1   gzip's scale mapped onto ISA-L igzip: 1 -> 1, 2 -> 2,
 *   zlib  1..9, 1   3..9 -> 3, ISA-L's strongest (codec_igzip.c)
 *   auto  1..19, 3  zstd whose level follows the bottleneck: raised while
 *                   the writes below it wait (a slow upload), lowered while
 *                   compressing is what takes the time; the level given is
 *                   the highest it may use, its lowest is zstd's fast -4.
 *                   A change ends the frame and starts the next one at the
 *                   new level: the stream is a standard zstd frame
 *                   sequence, stored as zstd (codec_zstd.c)
 * Measured speeds and ratios, and why ISA-L: bench/CODECS.md.
 *
 * Decoding: concatenated frames (gzip members, zstd/lz4 frames, zlib
 * streams) read as one stream, as the CLIs do. A compressed stream with
 * no frame at all (0 bytes) is reported as truncated: an encoder always
 * writes at least one frame, even for empty input. */
#ifndef CRSTREAM_CODEC_H
#define CRSTREAM_CODEC_H

#include <stdbool.h>

#include "util/stream.h"

struct codec {
	const char *name;	/* "none", "lz4", "zstd", "gzip", "zlib" */
	const char *extension;	/* ".lz4", ".zst", ".gz", ".zlib"; "" for none */
	int default_level;
	int min_level;
	int max_level;
	/* The codec whose format this one writes, when that is another's
	 * ("auto" writes zstd): checkpoints record that one, so reading them
	 * needs nothing of this codec. NULL: its own. */
	const struct codec *writes_as;
	/* An encoder writing the compressed stream into next. Closing it
	 * finishes the frame and closes next; aborting aborts next. On
	 * failure returns NULL (next untouched: the caller still owns it). */
	struct writer *(*encoder)(int level, struct writer *next);
	/* A decoder reading compressed bytes from next. It reports an error
	 * (never a clean end) when the stream stops inside a frame, fails a
	 * checksum, or has bytes after the last frame that are not a frame.
	 * Closing it closes next. NULL on failure (next untouched). */
	struct reader *(*decoder)(struct reader *next);
};

/* NULL-terminated table of every codec. */
extern const struct codec *const codecs[];

/* By name ("lz4"); NULL if unknown. */
const struct codec *codec_by_name(const char *name);

/* By a stream file name's extension ("img-0.zst" -> zstd, "img-0" ->
 * none); NULL if the name has an extension no codec uses. */
const struct codec *codec_by_filename(const char *filename);

/* The codec a checkpoint made with c records: c->writes_as or c. */
const struct codec *codec_format(const struct codec *c);

/* "none, lz4, zstd, gzip, zlib, auto", for messages and --help. */
const char *codec_names(void);

#endif
