/* The codec descriptors, each defined in its own codec_<name>.c and listed
 * in codec.c's table (internal to src/codec/). */
#ifndef CRSTREAM_CODEC_IMPL_H
#define CRSTREAM_CODEC_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "codec/codec.h"

extern const struct codec codec_none;
extern const struct codec codec_lz4;
extern const struct codec codec_zstd;
extern const struct codec codec_gzip;
extern const struct codec codec_zlib;
extern const struct codec codec_auto;

/* 0 if level is within c's range, else -1 with a message naming c. */
int codec_check_level(const struct codec *c, int level);

/* Deflate through ISA-L, in gzip or zlib framing (codec_igzip.c); c is
 * the codec the stream is named and range-checked by. */
struct writer *igzip_encoder(const struct codec *c, bool zlib_framing, int level,
			     struct writer *next);
struct reader *igzip_decoder(const struct codec *c, bool zlib_framing, struct reader *next);

/* --compression auto's controller (codec_zstd.c), exposed for its unit
 * tests. The level after a window in which compressing took busy_ns and
 * the writes below the encoder waited wait_ns: one step up while the
 * writes waited for a quarter of the time or more, one down while they
 * waited under a twentieth, else the same; within floor..ceiling, never
 * 0 (zstd's "default", i.e. 3). */
int zstd_auto_next_level(int level, int floor, int ceiling, uint64_t busy_ns, uint64_t wait_ns);
/* Ends the frame of a zstd or auto encoder and starts the next one at
 * level (what the controller does on a change). */
int zstd_encoder_set_level(struct writer *encoder, int level);

#endif
