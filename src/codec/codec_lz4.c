/* lz4: the LZ4 frame format (lz4frame.h), readable by `lz4 -dc`.
 *
 * Levels follow the lz4 CLI: 1 (default) and 2 are the fast compressor,
 * 3..12 are the HC levels. Frames use independent 64 KiB blocks: for level
 * 1 they compressed and decompressed faster here than 4 MiB or linked
 * blocks (bench/CODECS.md), and they let the decoder write straight into
 * the caller's buffer. Each block carries a checksum (XXH32 of the
 * compressed block), so a corrupt block is reported when it is decoded;
 * there is no content checksum (see lz4_set_prefs): the manifest's
 * XXH3-128 covers the stream as a whole. */
#include "codec/codec.h"
#include "codec/codec_filter.h"
#include "codec/codec_impl.h"
#include "util/err.h"

#include <lz4frame.h>
#include <stdlib.h>

#define LZ4_BLOCK_SIZE_ID LZ4F_max64KB
/* Input handed to one LZ4F_compressUpdate(); bounds the output room that
 * each call must reserve. */
#define LZ4_IN_CHUNK ((size_t)256 << 10)

struct lz4_encoder {
	struct codec_encoder e;
	LZ4F_cctx *cctx;
	LZ4F_preferences_t prefs;
};

static int lz4_compress(struct codec_encoder *e, const void *buf, size_t len)
{
	struct lz4_encoder *z = (struct lz4_encoder *)e;
	const char *p = buf;
	while (len > 0) {
		size_t n = len < LZ4_IN_CHUNK ? len : LZ4_IN_CHUNK;
		if (codec_encoder_reserve(e, LZ4F_compressBound(n, &z->prefs)) < 0)
			return -1;
		size_t r = LZ4F_compressUpdate(z->cctx, e->out + e->out_len,
					       e->out_cap - e->out_len, p, n, NULL);
		if (LZ4F_isError(r))
			return err_set("lz4 encoder: at input offset %llu: %s",
				       (unsigned long long)e->w.bytes_in, LZ4F_getErrorName(r));
		e->out_len += r;
		p += n;
		len -= n;
	}
	return 0;
}

static int lz4_finish(struct codec_encoder *e)
{
	struct lz4_encoder *z = (struct lz4_encoder *)e;
	if (codec_encoder_reserve(e, LZ4F_compressBound(0, &z->prefs)) < 0)
		return -1;
	size_t r = LZ4F_compressEnd(z->cctx, e->out + e->out_len, e->out_cap - e->out_len, NULL);
	if (LZ4F_isError(r))
		return err_set("lz4 encoder: ending the frame: %s", LZ4F_getErrorName(r));
	e->out_len += r;
	return 0;
}

static void lz4_encoder_destroy(struct codec_encoder *e)
{
	struct lz4_encoder *z = (struct lz4_encoder *)e;
	LZ4F_freeCompressionContext(z->cctx);
	codec_encoder_release(e);
	free(z);
}

static const struct codec_encoder_hooks lz4_encoder_hooks = {
	.compress = lz4_compress,
	.finish = lz4_finish,
	.destroy = lz4_encoder_destroy,
};

static void lz4_set_prefs(LZ4F_preferences_t *prefs, int level)
{
	*prefs = (LZ4F_preferences_t)LZ4F_INIT_PREFERENCES;
	prefs->frameInfo.blockSizeID = LZ4_BLOCK_SIZE_ID;
	prefs->frameInfo.blockMode = LZ4F_blockIndependent;
	/* Block checksums (XXH32 of each compressed block) catch corruption at a
	 * fraction of the cost of the content checksum, which hashes every
	 * uncompressed byte and took a third of the decode time; the stream as
	 * a whole is covered by the manifest's XXH3-128. */
	prefs->frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	prefs->compressionLevel = level;
}

static struct writer *lz4_encoder(int level, struct writer *next)
{
	if (codec_check_level(&codec_lz4, level) < 0)
		return NULL;
	struct lz4_encoder *z = calloc(1, sizeof(*z));
	if (!z) {
		err_set("lz4 encoder: out of memory");
		return NULL;
	}
	lz4_set_prefs(&z->prefs, level);
	size_t r = LZ4F_createCompressionContext(&z->cctx, LZ4F_VERSION);
	if (LZ4F_isError(r)) {
		err_set("lz4 encoder: creating a context: %s", LZ4F_getErrorName(r));
		free(z);
		return NULL;
	}
	/* Room for one chunk's worst case on top of a full-size flush. */
	size_t cap = CODEC_OUT_CAP + LZ4F_compressBound(LZ4_IN_CHUNK, &z->prefs);
	if (codec_encoder_init(&z->e, &lz4_encoder_hooks, "lz4", cap, next) < 0) {
		LZ4F_freeCompressionContext(z->cctx);
		free(z);
		return NULL;
	}
	/* The header goes into the buffer now; next sees it with the data. */
	r = LZ4F_compressBegin(z->cctx, z->e.out, z->e.out_cap, &z->prefs);
	if (LZ4F_isError(r)) {
		err_set("lz4 encoder: starting a frame: %s", LZ4F_getErrorName(r));
		lz4_encoder_destroy(&z->e);
		return NULL;
	}
	z->e.out_len = r;
	return &z->e.w;
}

struct lz4_decoder {
	struct codec_decoder d;
	LZ4F_dctx *dctx;
};

static int lz4_step(struct codec_decoder *d, const unsigned char *in, size_t in_len,
		    unsigned char *out, size_t cap, struct codec_step *st)
{
	struct lz4_decoder *z = (struct lz4_decoder *)d;
	size_t produced = cap;
	size_t consumed = in_len;
	size_t hint = LZ4F_decompress(z->dctx, out, &produced, in, &consumed, NULL);
	if (LZ4F_isError(hint))
		return err_set("%s", LZ4F_getErrorName(hint));
	st->consumed = consumed;
	st->produced = produced;
	/* 0 means the frame is complete and fully flushed; the context is
	 * then ready for the next frame. */
	st->frame_end = hint == 0;
	return 0;
}

static void lz4_decoder_destroy(struct codec_decoder *d)
{
	struct lz4_decoder *z = (struct lz4_decoder *)d;
	LZ4F_freeDecompressionContext(z->dctx);
	codec_decoder_release(d);
	free(z);
}

static const struct codec_decoder_hooks lz4_decoder_hooks = {
	.step = lz4_step,
	.destroy = lz4_decoder_destroy,
};

static struct reader *lz4_decoder(struct reader *next)
{
	struct lz4_decoder *z = calloc(1, sizeof(*z));
	if (!z) {
		err_set("lz4 decoder: out of memory");
		return NULL;
	}
	size_t r = LZ4F_createDecompressionContext(&z->dctx, LZ4F_VERSION);
	if (LZ4F_isError(r)) {
		err_set("lz4 decoder: creating a context: %s", LZ4F_getErrorName(r));
		free(z);
		return NULL;
	}
	if (codec_decoder_init(&z->d, &lz4_decoder_hooks, "lz4", next) < 0) {
		LZ4F_freeDecompressionContext(z->dctx);
		free(z);
		return NULL;
	}
	return &z->d.r;
}

const struct codec codec_lz4 = {
	.name = "lz4",
	.extension = ".lz4",
	.default_level = 1,
	.min_level = 1,
	.max_level = 12,
	.encoder = lz4_encoder,
	.decoder = lz4_decoder,
};
