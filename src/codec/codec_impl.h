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
 * tests. Its levels run from -4 up to at most 19. */
#define ZSTD_AUTO_LEVELS 24	/* -4 .. 19: slot level + 4 (that of 0 unused) */
#define ZSTD_AUTO_FORGET 8	/* windows a measured rate is kept unvisited */
#define ZSTD_AUTO_IDLE_UP 0.25	/* idle CPUs needed to compress harder */
#define ZSTD_AUTO_IDLE_NONE 0.1	/* fewer idle CPUs: the machine is saturated */

/* One window of input, as the encoder saw it. */
struct zstd_auto_window {
	uint64_t busy_ns;	/* compressing */
	uint64_t wait_ns;	/* waiting for the writes below (checksum, store) */
	uint64_t wall_ns;	/* the whole window */
	uint64_t in_bytes;
	double idle_cores;	/* the machine's idle CPUs meanwhile, < 0 unknown */
};

/* The input rate last measured at each level (bytes/s, 0 unknown; slot
 * level - floor), and for how many windows it has not been visited.
 * Zeroed to start. */
struct zstd_auto_memory {
	double rate[ZSTD_AUTO_LEVELS];
	unsigned age[ZSTD_AUTO_LEVELS];
};

/* The level after window w at level, within floor..ceiling, never 0
 * (zstd's "default", 3): one step up while the writes below waited a
 * quarter of the time or more and a quarter CPU was idle; one down while
 * they waited under a twentieth of it, or while the machine had under a
 * tenth of a CPU idle; back to a neighbour whose remembered rate was 5%
 * better; never to one whose rate was 5% worse; else the same. Records
 * w's rate for level in m and ages the others. */
int zstd_auto_next_level(int level, int floor, int ceiling, const struct zstd_auto_window *w,
			 struct zstd_auto_memory *m);
/* Ends the frame of a zstd or auto encoder and starts the next one at
 * level (what the controller does on a change). */
int zstd_encoder_set_level(struct writer *encoder, int level);

#endif
