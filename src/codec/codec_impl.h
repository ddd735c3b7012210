/* The codec descriptors, each defined in its own codec_<name>.c and listed
 * in codec.c's table (internal to src/codec/). */
#ifndef CRSTREAM_CODEC_IMPL_H
#define CRSTREAM_CODEC_IMPL_H

#include <stdbool.h>

#include "codec/codec.h"

extern const struct codec codec_none;
extern const struct codec codec_lz4;
extern const struct codec codec_zstd;
extern const struct codec codec_gzip;
extern const struct codec codec_zlib;

/* 0 if level is within c's range, else -1 with a message naming c. */
int codec_check_level(const struct codec *c, int level);

/* Deflate through ISA-L, in gzip or zlib framing (codec_igzip.c); c is
 * the codec the stream is named and range-checked by. */
struct writer *igzip_encoder(const struct codec *c, bool zlib_framing, int level,
			     struct writer *next);
struct reader *igzip_decoder(const struct codec *c, bool zlib_framing, struct reader *next);

#endif
