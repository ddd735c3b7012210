/* The "none" codec: the shard bytes as they are. Both directions are
 * passthrough filters that add no buffering and no copy; the layers around
 * them already read and write in large blocks. */
#include "codec/codec.h"
#include "codec/codec_impl.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdlib.h>

/* Only a failed write is remembered, so that closing after it aborts
 * next instead of committing a stream with a hole, as the other codecs do. */
struct none_writer {
	struct writer w;
	bool failed;
};

static int none_write(struct writer *w, const void *buf, size_t len)
{
	struct none_writer *nw = (struct none_writer *)w;
	if (nw->failed)
		return err_set("none encoder: write after an earlier failure");
	if (writer_write(w->next, buf, len) < 0) {
		nw->failed = true;
		return -1;
	}
	return 0;
}

static int none_close(struct writer *w)
{
	struct writer *next = w->next;
	bool failed = ((struct none_writer *)w)->failed;
	free(w);
	if (failed) {
		writer_abort(next);
		return err_set("none encoder: not finishing a stream whose write failed");
	}
	return writer_close(next);
}

static void none_abort(struct writer *w)
{
	struct writer *next = w->next;
	free(w);
	writer_abort(next);
}

static const struct writer_ops none_writer_ops = {
	.write = none_write,
	.close = none_close,
	.abort = none_abort,
};

static struct writer *none_encoder(int level, struct writer *next)
{
	(void)level; /* nothing to tune */
	struct none_writer *nw = calloc(1, sizeof(*nw));
	if (!nw) {
		err_set("none encoder: out of memory");
		return NULL;
	}
	nw->w.ops = &none_writer_ops;
	nw->w.next = next;
	return &nw->w;
}

static ssize_t none_read(struct reader *r, void *buf, size_t cap)
{
	return reader_read(r->next, buf, cap);
}

static void none_close_reader(struct reader *r)
{
	struct reader *next = r->next;
	free(r);
	reader_close(next);
}

static const struct reader_ops none_reader_ops = {
	.read = none_read,
	.close = none_close_reader,
};

static struct reader *none_decoder(struct reader *next)
{
	struct reader *r = calloc(1, sizeof(*r));
	if (!r) {
		err_set("none decoder: out of memory");
		return NULL;
	}
	r->ops = &none_reader_ops;
	r->next = next;
	return r;
}

const struct codec codec_none = {
	.name = "none",
	.extension = "",
	.default_level = 0,
	.min_level = 0,
	.max_level = 0,
	.encoder = none_encoder,
	.decoder = none_decoder,
};
