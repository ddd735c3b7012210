/* Byte streams as small vtables, stacked the way libarchive stacks its
 * filters: a codec's encoder is a writer that writes into the next writer
 * (a store object); a decoder is a reader that reads from the next reader.
 * Layers above see only `struct writer` / `struct reader`, so adding a
 * codec or a store touches nothing else.
 *
 * Errors: every op returning int returns 0 or -1 with err_set() called (see
 * util/err.h); messages name the object (file, URL) and offset they concern. */
#ifndef CRSTREAM_UTIL_STREAM_H
#define CRSTREAM_UTIL_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct writer;
struct reader;

struct writer_ops {
	/* Append len bytes. */
	int (*write)(struct writer *w, const void *buf, size_t len);
	/* Finish the stream (flush frames, commit, make durable) and free w.
	 * A filter closes its next writer too. After a failed close the
	 * stream is not committed; w is freed either way. */
	int (*close)(struct writer *w);
	/* Give up: discard what was written (as far as the layer can) and
	 * free w and every writer below it. */
	void (*abort)(struct writer *w);
	/* Optional: the fd of the local file this sink appends to, so that a
	 * caller may splice() bytes into it without copying them through
	 * memory (it then accounts for them in bytes_in itself). */
	int (*local_fd)(struct writer *w);
};

struct writer {
	const struct writer_ops *ops;
	struct writer *next;	/* downstream writer, for filters; NULL for sinks */
	uint64_t bytes_in;	/* bytes accepted by write() so far */
};

struct reader_ops {
	/* Read up to cap bytes; returns the count, 0 at the clean end of the
	 * stream, -1 on error (a truncated or corrupt stream is an error,
	 * never a clean end). */
	ssize_t (*read)(struct reader *r, void *buf, size_t cap);
	/* Free r and every reader below it. */
	void (*close)(struct reader *r);
	/* Optional: the fd of the local file this source reads, for readers
	 * of regular files that can do better than read() (splice, mmap). */
	int (*local_fd)(struct reader *r);
};

struct reader {
	const struct reader_ops *ops;
	struct reader *next;	/* upstream reader, for filters; NULL for sources */
	uint64_t bytes_out;	/* bytes returned by read() so far */
};

static inline int writer_write(struct writer *w, const void *buf, size_t len)
{
	int rc = w->ops->write(w, buf, len);
	if (rc == 0)
		w->bytes_in += len;
	return rc;
}

static inline int writer_close(struct writer *w)
{
	return w->ops->close(w);
}

static inline void writer_abort(struct writer *w)
{
	if (w)
		w->ops->abort(w);
}

static inline ssize_t reader_read(struct reader *r, void *buf, size_t cap)
{
	ssize_t n = r->ops->read(r, buf, cap);
	if (n > 0)
		r->bytes_out += (uint64_t)n;
	return n;
}

static inline void reader_close(struct reader *r)
{
	if (r)
		r->ops->close(r);
}

/* Read exactly len bytes unless the stream ends first; returns the count
 * (< len only at the end) or -1. */
ssize_t reader_read_full(struct reader *r, void *buf, size_t len);

/* In-memory endpoints, for tests and small objects. */
struct membuf {
	unsigned char *data;
	size_t len;
	size_t cap;
};
/* A writer appending to *mb (owned by the caller; free(mb->data) after). */
struct writer *membuf_writer(struct membuf *mb);
/* A reader over len bytes at data (not copied, must outlive the reader).
 * If chunk > 0, each read returns at most chunk bytes (to test filters
 * against short reads). */
struct reader *mem_reader(const void *data, size_t len, size_t chunk);

#endif
