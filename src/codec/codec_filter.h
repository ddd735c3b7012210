/* Plumbing shared by the compressing codecs (internal to src/codec/).
 *
 * Encoders: a struct codec_encoder is the writer; each codec supplies a
 * compress / finish / destroy hook and compresses into the encoder's output
 * buffer, which goes to the next writer in large writes (CODEC_OUT_CAP).
 * The generic part handles close/abort ordering and a sticky failure state.
 *
 * Decoders: a struct codec_decoder is the reader; each codec supplies a
 * step hook that decodes some of the buffered input straight into the
 * caller's buffer. The generic part owns the input buffer and the frame
 * bookkeeping that every format needs in the same way: concatenated frames,
 * truncation (end of input inside a frame), an empty input, and compressed
 * offsets in error messages. */
#ifndef CRSTREAM_CODEC_FILTER_H
#define CRSTREAM_CODEC_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/stream.h"

/* Encoder output buffer: flushed to next only when (nearly) full, so the
 * store below sees writes of about this size. A quarter MiB keeps a
 * stream's encoder to a few hundred KiB of memory (a dump's footprint is
 * this times the streams) while writes stay large. */
#define CODEC_OUT_CAP ((size_t)256 << 10)
/* Decoder input buffer: one read from next fills up to this much. The
 * fuzz build makes it smaller (tests/fuzz/README.md), so that small inputs
 * cross refills too. */
#ifndef CODEC_IN_CAP
#define CODEC_IN_CAP ((size_t)1 << 20)
#endif

struct codec_encoder;

struct codec_encoder_hooks {
	/* Compress len bytes into e->out (flushing it with
	 * codec_encoder_flush() when it lacks room). */
	int (*compress)(struct codec_encoder *e, const void *buf, size_t len);
	/* End the frame into e->out (flushing as needed). */
	int (*finish)(struct codec_encoder *e);
	/* Free the codec's own state and e itself (not next). */
	void (*destroy)(struct codec_encoder *e);
};

struct codec_encoder {
	struct writer w;	/* first: the encoder is used as a writer */
	const struct codec_encoder_hooks *hooks;
	const char *codec;	/* codec name, for messages */
	unsigned char *out;	/* compressed bytes not yet written to next */
	size_t out_len;
	size_t out_cap;
	uint64_t out_total;	/* compressed bytes handed to next so far */
	bool failed;		/* a write failed: the frame is unusable */
};

/* Set up the writer part and allocate e->out (out_cap bytes). On failure
 * nothing is allocated and -1 is returned; next stays the caller's. */
int codec_encoder_init(struct codec_encoder *e, const struct codec_encoder_hooks *hooks,
		       const char *codec, size_t out_cap, struct writer *next);

/* Write the buffered output to next and empty the buffer. */
int codec_encoder_flush(struct codec_encoder *e);

/* Make sure at least `need` bytes of e->out are free, flushing if not.
 * `need` must not exceed out_cap. */
int codec_encoder_reserve(struct codec_encoder *e, size_t need);

/* Free e->out; for the destroy hooks. */
void codec_encoder_release(struct codec_encoder *e);

struct codec_decoder;

/* What one decode step did. */
struct codec_step {
	size_t consumed;	/* input bytes used */
	size_t produced;	/* output bytes written */
	bool frame_end;		/* a frame ended; the decoder is ready for the next */
	/* Input bytes consumed (now or earlier) that the decoder holds for
	 * the next frame: libraries that read ahead past a frame's end hand
	 * them back this way, so frame offsets and end checks stay exact. */
	size_t held;
};

struct codec_decoder_hooks {
	/* Decode from in[0..in_len) into out[0..cap). On corrupt input,
	 * err_set() the library's description and return -1. */
	int (*step)(struct codec_decoder *d, const unsigned char *in, size_t in_len,
		    unsigned char *out, size_t cap, struct codec_step *st);
	/* Free the codec's own state and d itself (not next, not in). */
	void (*destroy)(struct codec_decoder *d);
};

struct codec_decoder {
	struct reader r;	/* first: the decoder is used as a reader */
	const struct codec_decoder_hooks *hooks;
	const char *codec;
	unsigned char *in;	/* compressed bytes read from next */
	size_t in_len;
	size_t in_pos;		/* in[in_pos..in_len) not yet given to step */
	uint64_t offset;	/* compressed bytes consumed so far */
	uint64_t frame_start;	/* compressed offset of the current frame */
	uint64_t frames;	/* frames decoded completely */
	bool in_frame;		/* bytes of a not yet finished frame were consumed */
	bool eof;		/* next reported its end */
	bool done;		/* clean end returned */
	bool failed;
};

/* Set up the reader part and allocate the input buffer; -1 on failure
 * (nothing allocated, next stays the caller's). */
int codec_decoder_init(struct codec_decoder *d, const struct codec_decoder_hooks *hooks,
		       const char *codec, struct reader *next);

/* Free d->in; for the destroy hooks. */
void codec_decoder_release(struct codec_decoder *d);

#endif
