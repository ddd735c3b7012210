/* The codec descriptors, each defined in its own codec_<name>.c and listed
 * in codec.c's table (internal to src/codec/). */
#ifndef CRSTREAM_CODEC_IMPL_H
#define CRSTREAM_CODEC_IMPL_H

#include "codec/codec.h"

extern const struct codec codec_none;
extern const struct codec codec_lz4;
extern const struct codec codec_zstd;

/* 0 if level is within c's range, else -1 with a message naming c. */
int codec_check_level(const struct codec *c, int level);

#endif
