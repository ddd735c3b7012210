/* zlib: an RFC 1950 stream (2-byte header, deflate, Adler-32). Readable by
 * zlib's inflate(), e.g. `zlib-flate -uncompress` (Debian's qpdf) or
 * python3's zlib.decompress(). Concatenated streams decode as one, for
 * symmetry with the other codecs. Deflate is done by ISA-L: see
 * codec_igzip.c for the level mapping. */
#include "codec/codec.h"
#include "codec/codec_impl.h"

static struct writer *zlib_encoder(int level, struct writer *next)
{
	return igzip_encoder(&codec_zlib, true, level, next);
}

static struct reader *zlib_decoder(struct reader *next)
{
	return igzip_decoder(&codec_zlib, true, next);
}

const struct codec codec_zlib = {
	.name = "zlib",
	.extension = ".zlib",
	.default_level = 1,
	.min_level = 1,
	.max_level = 9,
	.encoder = zlib_encoder,
	.decoder = zlib_decoder,
};
