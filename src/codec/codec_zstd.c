/* zstd: Zstandard frames, readable by `zstd -dc`.
 *
 * Levels 1..19 as in the zstd CLI (default 1; 20..22 need --ultra-sized
 * windows and are not offered). The frame carries a content checksum, so
 * corruption that decodes cleanly is still caught at the frame's end. One
 * ZSTD_CCtx per encoder, reused for the whole stream: no global state.
 *
 * auto (--compression auto) is the same encoder with a controller
 * (zstd_auto_next_level). Every AUTO_WINDOW bytes of input it looks at how
 * the window went: the time spent compressing, the time the writes below
 * it (checksum, store: an upload) kept it waiting, the input rate, and how
 * much CPU the machine had idle. While the upload kept it waiting and CPU
 * was idle, a higher level sends fewer bytes for CPU nobody needed; while
 * compressing took the time, or the machine had no CPU to spare (on a
 * shared machine a higher level takes CPU from whoever is the bottleneck,
 * the server even), a lower one. It also remembers the input rate it
 * measured at each level for a few windows and does not step where it
 * was slower, and steps back where it was faster. Single-threaded libzstd
 * applies a new level only to a new frame, so a change ends the frame and
 * the next one starts at the new level: `zstd -dc` reads the frame
 * sequence as one stream, and restore sees plain zstd. Its lowest level is
 * AUTO_FLOOR (zstd --fast=4, about lz4's speed and ratio here), its
 * highest the level given (default 3: beyond it this kind of data gains
 * ~1% for twice the CPU, bench/CODECS.md), and the window is fixed at
 * AUTO_WINDOW_LOG whatever the level, so that its memory stays that of
 * level 3 (about 3.5 MB per stream). */
#include "codec/codec.h"
#include "codec/codec_filter.h"
#include "codec/codec_impl.h"
#include "util/cpustat.h"
#include "util/err.h"
#include "util/fdio.h"
#include "util/trace.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

/* The decoder's window (the memory a frame can make it allocate) is
 * limited to 2^24 = 16 MiB: zstd's default lets a frame ask for 128 MiB per
 * stream, and a hostile stream would. crstream's own frames never need more
 * than 8 MiB (level 19 on large inputs uses a 2^23 window); a stream
 * compressed elsewhere with a larger window (zstd --long, --ultra levels)
 * is refused with this limit in the message. */
#define ZSTD_WINDOW_LOG_MAX 24

#define AUTO_WINDOW ((uint64_t)16 << 20)
#define AUTO_FLOOR (-4)
#define AUTO_WINDOW_LOG 21
_Static_assert(19 - AUTO_FLOOR + 1 == ZSTD_AUTO_LEVELS, "one slot per level from AUTO_FLOOR to 19");

/* Flush once less than this is free: zstd may leave a little room unused
 * when its input runs out, and tiny writes downstream are not worth it. */
#define ZSTD_MIN_ROOM ((size_t)64 << 10)

/* The controller's state (auto only). */
struct zstd_auto {
	int ceiling;
	struct zstd_auto_window w;	/* the current window, so far */
	uint64_t window_start_ns;
	struct cpu_sample cpu_start;
	bool have_cpu;
	struct zstd_auto_memory mem;
	uint64_t in_at[ZSTD_AUTO_LEVELS];	/* input bytes compressed at level l - AUTO_FLOOR */
	unsigned changes;
};

struct zstd_encoder {
	struct codec_encoder e;
	ZSTD_CCtx *cctx;
	int level;
	bool in_frame;		/* input went into a frame not yet ended */
	unsigned frames;	/* frames ended */
	struct zstd_auto *adapt;	/* NULL: the level stays */
};


/* One ZSTD_compressStream2() call into the free part of e->out. */
static size_t zstd_run(struct zstd_encoder *z, ZSTD_inBuffer *in, ZSTD_EndDirective mode)
{
	struct codec_encoder *e = &z->e;
	ZSTD_outBuffer out = { e->out, e->out_cap, e->out_len };
	size_t r = ZSTD_compressStream2(z->cctx, &out, in, mode);
	e->out_len = out.pos;
	return r;
}

static int zstd_adapt(struct zstd_encoder *z);

static int zstd_compress(struct codec_encoder *e, const void *buf, size_t len)
{
	struct zstd_encoder *z = (struct zstd_encoder *)e;
	struct zstd_auto *a = z->adapt;
	ZSTD_inBuffer in = { buf, len, 0 };
	while (in.pos < in.size) {
		uint64_t t0 = a ? now_ns() : 0;
		if (codec_encoder_reserve(e, ZSTD_MIN_ROOM) < 0)
			return -1;
		uint64_t t1 = a ? now_ns() : 0;
		size_t r = zstd_run(z, &in, ZSTD_e_continue);
		if (ZSTD_isError(r))
			return err_set("zstd encoder: at input offset %llu: %s",
				       (unsigned long long)(e->w.bytes_in + in.pos),
				       ZSTD_getErrorName(r));
		if (a) {
			a->w.wait_ns += t1 - t0;
			a->w.busy_ns += now_ns() - t1;
		}
	}
	z->in_frame = true;
	if (a) {
		a->w.in_bytes += len;
		a->in_at[z->level - AUTO_FLOOR] += len;
		if (a->w.in_bytes >= AUTO_WINDOW)
			return zstd_adapt(z);
	}
	return 0;
}

/* Ends the current frame into e->out (flushing as needed). */
static int zstd_end_frame(struct zstd_encoder *z)
{
	struct codec_encoder *e = &z->e;
	ZSTD_inBuffer in = { NULL, 0, 0 };
	for (;;) {
		if (codec_encoder_reserve(e, ZSTD_MIN_ROOM) < 0)
			return -1;
		size_t left = zstd_run(z, &in, ZSTD_e_end);
		if (ZSTD_isError(left))
			return err_set("zstd encoder: ending the frame: %s", ZSTD_getErrorName(left));
		if (left == 0) {
			z->in_frame = false;
			z->frames++;
			return 0;
		}
		/* More to flush than fitted: make room and go on. */
		if (codec_encoder_flush(e) < 0)
			return -1;
	}
}

static void trace_levels(const struct zstd_encoder *z)
{
	const struct zstd_auto *a = z->adapt;
	char buf[400];
	size_t len = 0;
	buf[0] = '\0';
	for (int i = 0; i < ZSTD_AUTO_LEVELS && len < sizeof(buf) - 32; i++)
		if (a->in_at[i])
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, " %d:%.1f", i + AUTO_FLOOR,
						(double)a->in_at[i] / (1 << 20));
	trace("zstd auto", "%p: %u level changes; MiB of input per level:%s", (const void *)z,
	      a->changes, buf);
}

static int zstd_finish(struct codec_encoder *e)
{
	struct zstd_encoder *z = (struct zstd_encoder *)e;
	if (z->adapt && trace_on())
		trace_levels(z);
	/* The last frame; at least one, even for an empty stream. */
	return z->in_frame || z->frames == 0 ? zstd_end_frame(z) : 0;
}

static int zstd_set_level(struct zstd_encoder *z, int level)
{
	size_t r = ZSTD_CCtx_setParameter(z->cctx, ZSTD_c_compressionLevel, level);
	if (ZSTD_isError(r))
		return err_set("zstd encoder: setting level %d: %s", level, ZSTD_getErrorName(r));
	z->level = level;
	return 0;
}

int zstd_encoder_set_level(struct writer *w, int level)
{
	struct zstd_encoder *z = (struct zstd_encoder *)w;
	if (level == z->level)
		return 0;
	/* A frame that has no input yet simply starts at the new level. */
	if (z->in_frame && zstd_end_frame(z) < 0)
		return -1;
	return zstd_set_level(z, level);
}

/* The level one step up or down from level (never 0: zstd's "default"). */
static int step(int level, int dir)
{
	int next = level + dir;
	return next == 0 ? next + dir : next;
}

int zstd_auto_next_level(int level, int floor, int ceiling, const struct zstd_auto_window *w,
			 struct zstd_auto_memory *m)
{
	int here = level - floor;
	/* What this window says of this level; other levels age. */
	if (w->wall_ns && w->in_bytes) {
		double rate = (double)w->in_bytes * 1e9 / (double)w->wall_ns;
		m->rate[here] = m->rate[here] > 0 ? (m->rate[here] + rate) / 2 : rate;
		m->age[here] = 0;
	}
	for (int i = 0; i < ZSTD_AUTO_LEVELS; i++)
		if (i != here && m->rate[i] > 0 && ++m->age[i] > ZSTD_AUTO_FORGET)
			m->rate[i] = 0;

	uint64_t total = w->busy_ns + w->wait_ns;
	int dir = 0;
	bool idle_known = w->idle_cores >= 0;
	if (total && w->wait_ns * 4 >= total && (!idle_known || w->idle_cores >= ZSTD_AUTO_IDLE_UP))
		dir = 1;	/* the upload waits, CPU to spare: compress harder */
	else if (total && w->wait_ns * 20 < total)
		dir = -1;	/* compressing is the bottleneck */
	else if (idle_known && w->idle_cores < ZSTD_AUTO_IDLE_NONE)
		dir = -1;	/* no CPU to spare: leave it to whoever needs it */

	int up = step(level, 1), down = step(level, -1);
	double r = m->rate[here];
	double r_up = up <= ceiling ? m->rate[up - floor] : 0;
	double r_down = down >= floor ? m->rate[down - floor] : 0;
	/* Where it was clearly faster, go back; where it was clearly slower,
	 * do not go. */
	if (r > 0 && r_up > r * 1.05 && r_up >= r_down)
		return up;
	if (r > 0 && r_down > r * 1.05)
		return down;
	int next = dir ? step(level, dir) : level;
	if (next < floor || next > ceiling)
		return level;
	double r_next = m->rate[next - floor];
	if (r > 0 && r_next > 0 && r_next < r * 0.95)
		return level;
	return next;
}

/* End of a window: move the level if the controller says so. */
static int zstd_adapt(struct zstd_encoder *z)
{
	struct zstd_auto *a = z->adapt;
	uint64_t now = now_ns();
	struct cpu_sample cpu;
	a->w.wall_ns = now - a->window_start_ns;
	a->w.idle_cores = -1;
	if (cpu_sample(&cpu) == 0) {
		if (a->have_cpu)
			a->w.idle_cores = cpu_idle_cores(&a->cpu_start, &cpu);
		a->cpu_start = cpu;
		a->have_cpu = true;
	}
	int next = zstd_auto_next_level(z->level, AUTO_FLOOR, a->ceiling, &a->w, &a->mem);
	trace("zstd auto", "%p: %.1f MiB in %.0f ms (%.0f MB/s): compressing %.0f ms, waiting %.0f ms, "
	      "%.2f CPUs idle; level %d%s%d", (void *)z, (double)a->w.in_bytes / (1 << 20),
	      (double)a->w.wall_ns / 1e6, (double)a->w.in_bytes * 1e3 / (double)(a->w.wall_ns + 1),
	      (double)a->w.busy_ns / 1e6, (double)a->w.wait_ns / 1e6, a->w.idle_cores, z->level,
	      next == z->level ? " stays " : " -> ", next);
	memset(&a->w, 0, sizeof(a->w));
	a->window_start_ns = now;
	if (next == z->level)
		return 0;
	a->changes++;
	return zstd_encoder_set_level(&z->e.w, next);
}

static void zstd_encoder_destroy(struct codec_encoder *e)
{
	struct zstd_encoder *z = (struct zstd_encoder *)e;
	ZSTD_freeCCtx(z->cctx);
	free(z->adapt);
	codec_encoder_release(e);
	free(z);
}

static const struct codec_encoder_hooks zstd_encoder_hooks = {
	.compress = zstd_compress,
	.finish = zstd_finish,
	.destroy = zstd_encoder_destroy,
};

static int zstd_configure(ZSTD_CCtx *cctx, int level, bool adaptive)
{
	size_t r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	/* Set, it stays whatever the level (see the top of this file). */
	if (!ZSTD_isError(r) && adaptive)
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, AUTO_WINDOW_LOG);
	if (ZSTD_isError(r))
		return err_set("zstd encoder: setting level %d: %s", level, ZSTD_getErrorName(r));
	return 0;
}

static struct writer *new_encoder(const struct codec *c, int level, struct writer *next)
{
	if (codec_check_level(c, level) < 0)
		return NULL;
	bool adaptive = c == &codec_auto;
	struct zstd_encoder *z = calloc(1, sizeof(*z));
	if (z && adaptive && (z->adapt = calloc(1, sizeof(*z->adapt)))) {
		z->adapt->ceiling = level;
		z->adapt->window_start_ns = now_ns();
		z->adapt->have_cpu = cpu_sample(&z->adapt->cpu_start) == 0;
	}
	if (!z || (adaptive && !z->adapt)) {
		free(z);
		err_set("%s encoder: out of memory", c->name);
		return NULL;
	}
	/* auto starts at zstd's default level and moves from there. */
	z->level = adaptive ? codec_zstd.default_level : level;
	z->cctx = ZSTD_createCCtx();
	if (!z->cctx) {
		err_set("zstd encoder: cannot create a compression context");
		free(z->adapt);
		free(z);
		return NULL;
	}
	if (zstd_configure(z->cctx, z->level, adaptive) < 0 ||
	    codec_encoder_init(&z->e, &zstd_encoder_hooks, c->name, CODEC_OUT_CAP, next) < 0) {
		ZSTD_freeCCtx(z->cctx);
		free(z->adapt);
		free(z);
		return NULL;
	}
	return &z->e.w;
}

static struct writer *zstd_encoder(int level, struct writer *next)
{
	return new_encoder(&codec_zstd, level, next);
}

static struct writer *auto_encoder(int level, struct writer *next)
{
	return new_encoder(&codec_auto, level, next);
}

struct zstd_decoder {
	struct codec_decoder d;
	ZSTD_DCtx *dctx;
	bool at_frame_start;
};

static int zstd_step(struct codec_decoder *d, const unsigned char *in, size_t in_len,
		     unsigned char *out, size_t cap, struct codec_step *st)
{
	struct zstd_decoder *z = (struct zstd_decoder *)d;
	/* A frame's first byte goes in alone. Given a whole frame whose
	 * declared size fits the output, libzstd (1.5.4) decodes it in one
	 * pass, which refuses some malformed blocks (a compressed block of
	 * size 0) that its streaming path accepts: the verdict on the same
	 * bytes would depend on how reads happen to fall (found by
	 * fuzz_codec_zstd). Splitting the header keeps every frame on the
	 * streaming path, at the cost of one call per frame. */
	ZSTD_inBuffer src = { in, z->at_frame_start && in_len > 1 ? 1 : in_len, 0 };
	ZSTD_outBuffer dst = { out, cap, 0 };
	size_t r = ZSTD_decompressStream(z->dctx, &dst, &src);
	if (ZSTD_isError(r) && ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge)
		return err_set("%s (the frame needs a window over the %u MiB crstream allows)",
			       ZSTD_getErrorName(r), (1u << ZSTD_WINDOW_LOG_MAX) >> 20);
	if (ZSTD_isError(r))
		return err_set("%s", ZSTD_getErrorName(r));
	st->consumed = src.pos;
	st->produced = dst.pos;
	/* 0: a frame is fully decoded and flushed; zstd stops at the frame's
	 * end, and its next call starts a new frame. */
	st->frame_end = r == 0;
	if (src.pos > 0)
		z->at_frame_start = false;
	if (st->frame_end)
		z->at_frame_start = true;
	return 0;
}

static void zstd_decoder_destroy(struct codec_decoder *d)
{
	struct zstd_decoder *z = (struct zstd_decoder *)d;
	ZSTD_freeDCtx(z->dctx);
	codec_decoder_release(d);
	free(z);
}

static const struct codec_decoder_hooks zstd_decoder_hooks = {
	.step = zstd_step,
	.destroy = zstd_decoder_destroy,
};

static struct reader *zstd_decoder(struct reader *next)
{
	struct zstd_decoder *z = calloc(1, sizeof(*z));
	if (!z) {
		err_set("zstd decoder: out of memory");
		return NULL;
	}
	z->at_frame_start = true;
	z->dctx = ZSTD_createDCtx();
	if (!z->dctx) {
		err_set("zstd decoder: cannot create a decompression context");
		free(z);
		return NULL;
	}
	size_t r = ZSTD_DCtx_setParameter(z->dctx, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
	if (ZSTD_isError(r)) {
		err_set("zstd decoder: limiting the window: %s", ZSTD_getErrorName(r));
		ZSTD_freeDCtx(z->dctx);
		free(z);
		return NULL;
	}
	if (codec_decoder_init(&z->d, &zstd_decoder_hooks, "zstd", next) < 0) {
		ZSTD_freeDCtx(z->dctx);
		free(z);
		return NULL;
	}
	return &z->d.r;
}

const struct codec codec_zstd = {
	.name = "zstd",
	.extension = ".zst",
	.default_level = 1,
	.min_level = 1,
	.max_level = 19,
	.encoder = zstd_encoder,
	.decoder = zstd_decoder,
};

const struct codec codec_auto = {
	.name = "auto",
	.extension = ".zst",
	.default_level = 3,
	.min_level = 1,
	.max_level = 19,
	.writes_as = &codec_zstd,
	.encoder = auto_encoder,
	.decoder = zstd_decoder,
};
