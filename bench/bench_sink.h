/* bench_sink.h - a writer into a preallocated buffer, for the speed
 * benchmarks that time crstream's writer chains (codec_speed,
 * crypto_speed): no realloc inside the timing; the bench owns the buffer.
 */
#ifndef CRSTREAM_BENCH_SINK_H
#define CRSTREAM_BENCH_SINK_H

#include "util/err.h"
#include "util/stream.h"

#include <string.h>

struct blob_writer {
	struct writer w;
	unsigned char *data;
	size_t len;
	size_t cap;
};

static inline int blob_write(struct writer *w, const void *buf, size_t len)
{
	struct blob_writer *b = (struct blob_writer *)w;
	if (len > b->cap - b->len)
		return err_set("bench sink full at %zu bytes", b->len);
	memcpy(b->data + b->len, buf, len);
	b->len += len;
	return 0;
}

static inline int blob_close(struct writer *w)
{
	(void)w; /* the bench owns the sink */
	return 0;
}

static inline void blob_abort(struct writer *w)
{
	(void)w;
}

static const struct writer_ops blob_ops = { .write = blob_write, .close = blob_close, .abort = blob_abort };

#endif
