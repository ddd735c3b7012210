/* gzip: an RFC 1952 stream (one member per encoder; concatenated members
 * decode as one stream, like gzip -dc does). Readable by `gzip -dc`. The
 * deflate work is ISA-L's: see codec_igzip.c for the level mapping. */
#include "codec/codec.h"
#include "codec/codec_impl.h"

static struct writer *gzip_encoder(int level, struct writer *next)
{
	return igzip_encoder(&codec_gzip, false, level, next);
}

static struct reader *gzip_decoder(struct reader *next)
{
	return igzip_decoder(&codec_gzip, false, next);
}

const struct codec codec_gzip = {
	.name = "gzip",
	.extension = ".gz",
	.default_level = 1,
	.min_level = 1,
	.max_level = 9,
	.encoder = gzip_encoder,
	.decoder = gzip_decoder,
};
