#include "util/stream.h"
#include "util/err.h"

#include <stdlib.h>
#include <string.h>

ssize_t reader_read_full(struct reader *r, void *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = reader_read(r, (char *)buf + done, len - done);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

struct membuf_writer {
	struct writer w;
	struct membuf *mb;
};

static int mbw_write(struct writer *w, const void *buf, size_t len)
{
	struct membuf *mb = ((struct membuf_writer *)w)->mb;
	if (len == 0)
		return 0; /* mb->data may still be NULL: no memcpy on it */
	if (mb->len + len > mb->cap) {
		size_t cap = mb->cap ? mb->cap : 4096;
		while (cap < mb->len + len)
			cap *= 2;
		unsigned char *p = realloc(mb->data, cap);
		if (!p)
			return err_set("out of memory");
		mb->data = p;
		mb->cap = cap;
	}
	memcpy(mb->data + mb->len, buf, len);
	mb->len += len;
	return 0;
}

static int mbw_close(struct writer *w)
{
	free(w);
	return 0;
}

static void mbw_abort(struct writer *w)
{
	free(w);
}

static const struct writer_ops membuf_writer_ops = {
	.write = mbw_write,
	.close = mbw_close,
	.abort = mbw_abort,
};

struct writer *membuf_writer(struct membuf *mb)
{
	struct membuf_writer *w = calloc(1, sizeof(*w));
	if (!w) {
		err_set("out of memory");
		return NULL;
	}
	w->w.ops = &membuf_writer_ops;
	w->mb = mb;
	return &w->w;
}

struct mem_reader {
	struct reader r;
	const unsigned char *data;
	size_t len;
	size_t pos;
	size_t chunk;
};

static ssize_t mr_read(struct reader *r, void *buf, size_t cap)
{
	struct mem_reader *m = (struct mem_reader *)r;
	size_t n = m->len - m->pos;
	if (n > cap)
		n = cap;
	if (m->chunk && n > m->chunk)
		n = m->chunk;
	if (n == 0)
		return 0; /* data may be NULL for an empty reader */
	memcpy(buf, m->data + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

static void mr_close(struct reader *r)
{
	free(r);
}

static const struct reader_ops mem_reader_ops = {
	.read = mr_read,
	.close = mr_close,
};

struct reader *mem_reader(const void *data, size_t len, size_t chunk)
{
	struct mem_reader *m = calloc(1, sizeof(*m));
	if (!m) {
		err_set("out of memory");
		return NULL;
	}
	m->r.ops = &mem_reader_ops;
	m->data = data;
	m->len = len;
	m->chunk = chunk;
	return &m->r;
}
