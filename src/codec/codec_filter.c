#include "codec/codec_filter.h"
#include "util/err.h"

#include <stdlib.h>

/* Abort next without letting it overwrite the message that explains why. */
static void abort_keeping_error(struct writer *next)
{
	char msg[ERR_MAX];
	err_copy(msg, sizeof(msg));
	writer_abort(next);
	err_set("%s", msg);
}

static int encoder_write(struct writer *w, const void *buf, size_t len)
{
	struct codec_encoder *e = (struct codec_encoder *)w;
	if (e->failed)
		return err_set("%s encoder: write after an earlier failure", e->codec);
	if (len == 0)
		return 0;
	if (e->hooks->compress(e, buf, len) < 0) {
		e->failed = true;
		return -1;
	}
	return 0;
}

static int encoder_close(struct writer *w)
{
	struct codec_encoder *e = (struct codec_encoder *)w;
	struct writer *next = w->next;
	int rc = 0;
	if (e->failed)
		rc = err_set("%s encoder: not finishing a stream whose write failed", e->codec);
	else if (e->hooks->finish(e) < 0 || codec_encoder_flush(e) < 0)
		rc = -1;
	e->hooks->destroy(e);
	if (rc < 0) {
		/* A partial frame must not be committed below us. */
		abort_keeping_error(next);
		return -1;
	}
	return writer_close(next);
}

static void encoder_abort(struct writer *w)
{
	struct codec_encoder *e = (struct codec_encoder *)w;
	struct writer *next = w->next;
	e->hooks->destroy(e);
	writer_abort(next);
}

static const struct writer_ops codec_encoder_ops = {
	.write = encoder_write,
	.close = encoder_close,
	.abort = encoder_abort,
};

int codec_encoder_init(struct codec_encoder *e, const struct codec_encoder_hooks *hooks,
		       const char *codec, size_t out_cap, struct writer *next)
{
	e->out = malloc(out_cap);
	if (!e->out)
		return err_set("%s encoder: cannot allocate %zu-byte output buffer", codec,
			       out_cap);
	e->w.ops = &codec_encoder_ops;
	e->w.next = next;
	e->w.bytes_in = 0;
	e->hooks = hooks;
	e->codec = codec;
	e->out_len = 0;
	e->out_cap = out_cap;
	e->out_total = 0;
	e->failed = false;
	return 0;
}

int codec_encoder_flush(struct codec_encoder *e)
{
	if (e->out_len == 0)
		return 0;
	if (writer_write(e->w.next, e->out, e->out_len) < 0)
		return -1;
	e->out_total += e->out_len;
	e->out_len = 0;
	return 0;
}

int codec_encoder_reserve(struct codec_encoder *e, size_t need)
{
	if (e->out_cap - e->out_len >= need)
		return 0;
	return codec_encoder_flush(e);
}

void codec_encoder_release(struct codec_encoder *e)
{
	free(e->out);
	e->out = NULL;
}

/* ---- decoders ---- */

static ssize_t decoder_fail(struct codec_decoder *d)
{
	d->failed = true;
	return -1;
}

static ssize_t decoder_corrupt(struct codec_decoder *d, size_t avail)
{
	unsigned long long upto = d->offset + avail;
	if (!d->in_frame && d->frames > 0)
		err_prefix("%s: bytes after frame %llu (compressed offset %llu..%llu) are not a "
			   "valid frame",
			   d->codec, (unsigned long long)d->frames,
			   (unsigned long long)d->frame_start, upto);
	else
		err_prefix("corrupt %s frame %llu (starts at compressed offset %llu, error "
			   "before offset %llu)",
			   d->codec, (unsigned long long)d->frames + 1,
			   (unsigned long long)d->frame_start, upto);
	return decoder_fail(d);
}

static ssize_t decoder_truncated(struct codec_decoder *d)
{
	if (d->offset == 0)
		err_set("truncated %s stream: no frame in empty input", d->codec);
	else
		err_set("truncated %s frame after %llu compressed bytes (frame %llu starts at "
			"offset %llu)",
			d->codec, (unsigned long long)d->offset, (unsigned long long)d->frames + 1,
			(unsigned long long)d->frame_start);
	return decoder_fail(d);
}

/* Refill the (fully consumed) input buffer; returns bytes read, 0 at the
 * end of next, -1 on error. */
static ssize_t decoder_refill(struct codec_decoder *d)
{
	if (d->eof)
		return 0;
	ssize_t n = reader_read(d->r.next, d->in, CODEC_IN_CAP);
	if (n < 0)
		return -1;
	if (n == 0)
		d->eof = true;
	d->in_pos = 0;
	d->in_len = (size_t)n;
	return n;
}

static ssize_t decoder_read(struct reader *r, void *buf, size_t cap)
{
	struct codec_decoder *d = (struct codec_decoder *)r;
	if (d->failed)
		return err_set("%s decoder: read after an earlier error", d->codec);
	if (d->done || cap == 0)
		return 0;
	for (;;) {
		struct codec_step st = { 0, 0, false, 0 };
		size_t avail = d->in_len - d->in_pos;
		if (d->hooks->step(d, d->in + d->in_pos, avail, buf, cap, &st) < 0)
			return decoder_corrupt(d, avail);
		d->in_pos += st.consumed;
		d->offset += st.consumed;
		if (st.consumed)
			d->in_frame = true;
		if (st.frame_end && d->in_frame) {
			d->frames++;
			d->in_frame = st.held > 0;
			d->frame_start = d->offset - st.held;
		}
		if (st.produced)
			return (ssize_t)st.produced;
		if (d->in_pos < d->in_len) {
			if (st.consumed || st.frame_end)
				continue;
			err_set("%s decoder: no progress at compressed offset %llu", d->codec,
				(unsigned long long)d->offset);
			return decoder_fail(d);
		}
		ssize_t n = decoder_refill(d);
		if (n < 0)
			return decoder_fail(d);
		if (n > 0)
			continue;
		if (d->in_frame || d->frames == 0)
			return decoder_truncated(d);
		d->done = true;
		return 0;
	}
}

static void decoder_close(struct reader *r)
{
	struct codec_decoder *d = (struct codec_decoder *)r;
	struct reader *next = r->next;
	d->hooks->destroy(d);
	reader_close(next);
}

static const struct reader_ops codec_decoder_ops = {
	.read = decoder_read,
	.close = decoder_close,
};

int codec_decoder_init(struct codec_decoder *d, const struct codec_decoder_hooks *hooks,
		       const char *codec, struct reader *next)
{
	d->in = malloc(CODEC_IN_CAP);
	if (!d->in)
		return err_set("%s decoder: cannot allocate %zu-byte input buffer", codec,
			       CODEC_IN_CAP);
	d->r.ops = &codec_decoder_ops;
	d->r.next = next;
	d->r.bytes_out = 0;
	d->hooks = hooks;
	d->codec = codec;
	d->in_len = 0;
	d->in_pos = 0;
	d->offset = 0;
	d->frame_start = 0;
	d->frames = 0;
	d->in_frame = false;
	d->eof = false;
	d->done = false;
	d->failed = false;
	return 0;
}

void codec_decoder_release(struct codec_decoder *d)
{
	free(d->in);
	d->in = NULL;
}
