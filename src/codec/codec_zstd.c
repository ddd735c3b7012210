/* zstd: Zstandard frames, readable by `zstd -dc`.
 *
 * Levels 1..19 as in the zstd CLI (default 1; 20..22 need --ultra-sized
 * windows and are not offered). The frame carries a content checksum, so
 * corruption that decodes cleanly is still caught at the frame's end. One
 * ZSTD_CCtx per encoder, reused for the whole stream: no global state. */
#include "codec/codec.h"
#include "codec/codec_filter.h"
#include "codec/codec_impl.h"
#include "util/err.h"

#include <stdlib.h>
#include <zstd.h>
#include <zstd_errors.h>

/* The decoder's window (the memory a frame can make it allocate) is
 * limited to 2^24 = 16 MiB: zstd's default lets a frame ask for 128 MiB per
 * stream, and a hostile stream would. crstream's own frames never need more
 * than 8 MiB (level 19 on large inputs uses a 2^23 window); a stream
 * compressed elsewhere with a larger window (zstd --long, --ultra levels)
 * is refused with this limit in the message. */
#define ZSTD_WINDOW_LOG_MAX 24

/* Flush once less than this is free: zstd may leave a little room unused
 * when its input runs out, and tiny writes downstream are not worth it. */
#define ZSTD_MIN_ROOM ((size_t)64 << 10)

struct zstd_encoder {
	struct codec_encoder e;
	ZSTD_CCtx *cctx;
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

static int zstd_compress(struct codec_encoder *e, const void *buf, size_t len)
{
	struct zstd_encoder *z = (struct zstd_encoder *)e;
	ZSTD_inBuffer in = { buf, len, 0 };
	while (in.pos < in.size) {
		if (codec_encoder_reserve(e, ZSTD_MIN_ROOM) < 0)
			return -1;
		size_t r = zstd_run(z, &in, ZSTD_e_continue);
		if (ZSTD_isError(r))
			return err_set("zstd encoder: at input offset %llu: %s",
				       (unsigned long long)(e->w.bytes_in + in.pos),
				       ZSTD_getErrorName(r));
	}
	return 0;
}

static int zstd_finish(struct codec_encoder *e)
{
	struct zstd_encoder *z = (struct zstd_encoder *)e;
	ZSTD_inBuffer in = { NULL, 0, 0 };
	for (;;) {
		if (codec_encoder_reserve(e, ZSTD_MIN_ROOM) < 0)
			return -1;
		size_t left = zstd_run(z, &in, ZSTD_e_end);
		if (ZSTD_isError(left))
			return err_set("zstd encoder: ending the frame: %s", ZSTD_getErrorName(left));
		if (left == 0)
			return 0;
		/* More to flush than fitted: make room and go on. */
		if (codec_encoder_flush(e) < 0)
			return -1;
	}
}

static void zstd_encoder_destroy(struct codec_encoder *e)
{
	struct zstd_encoder *z = (struct zstd_encoder *)e;
	ZSTD_freeCCtx(z->cctx);
	codec_encoder_release(e);
	free(z);
}

static const struct codec_encoder_hooks zstd_encoder_hooks = {
	.compress = zstd_compress,
	.finish = zstd_finish,
	.destroy = zstd_encoder_destroy,
};

static int zstd_configure(ZSTD_CCtx *cctx, int level)
{
	size_t r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level);
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	if (ZSTD_isError(r))
		return err_set("zstd encoder: setting level %d: %s", level, ZSTD_getErrorName(r));
	return 0;
}

static struct writer *zstd_encoder(int level, struct writer *next)
{
	if (codec_check_level(&codec_zstd, level) < 0)
		return NULL;
	struct zstd_encoder *z = calloc(1, sizeof(*z));
	if (!z) {
		err_set("zstd encoder: out of memory");
		return NULL;
	}
	z->cctx = ZSTD_createCCtx();
	if (!z->cctx) {
		err_set("zstd encoder: cannot create a compression context");
		free(z);
		return NULL;
	}
	if (zstd_configure(z->cctx, level) < 0 ||
	    codec_encoder_init(&z->e, &zstd_encoder_hooks, "zstd", CODEC_OUT_CAP, next) < 0) {
		ZSTD_freeCCtx(z->cctx);
		free(z);
		return NULL;
	}
	return &z->e.w;
}

struct zstd_decoder {
	struct codec_decoder d;
	ZSTD_DCtx *dctx;
};

static int zstd_step(struct codec_decoder *d, const unsigned char *in, size_t in_len,
		     unsigned char *out, size_t cap, struct codec_step *st)
{
	struct zstd_decoder *z = (struct zstd_decoder *)d;
	ZSTD_inBuffer src = { in, in_len, 0 };
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
