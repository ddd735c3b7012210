#include "checkpoint/streams.h"
#include "util/fdio.h"
#include "util/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* One pipe's worth: the engine's writes arrive in chunks of a quarter of
 * it, so the worker wakes up a few times per pipe-full, not per chunk. */
#define WORKER_BUF (1u << 20)
/* A dump worker's reads: the engine writes chunks of a quarter MiB, and a
 * small buffer keeps a dump's memory footprint small. */
#define DUMP_READ_BUF (256u << 10)
#define PIPE_WANT (1 << 20)

void stream_file_name(int i, const struct codec *codec, const char *suffix, char *buf,
		      size_t size)
{
	snprintf(buf, size, "img-%d%s%s", i, codec->extension, suffix ? suffix : "");
}

static void fail(struct stream *s)
{
	s->rc = -1;
	err_prefix("%s", s->file);
	err_copy(s->err, sizeof(s->err));
}

/* Adds bytes [off, off+len) of a regular file to the hash, read through a
 * mapping: no copy, the pages are in the page cache already. */
static int hash_file_range(int fd, uint64_t off, size_t len, struct checksum_state *st)
{
	const uint64_t page = 4096;
	uint64_t map_off = off & ~(page - 1);
	size_t map_len = len + (size_t)(off - map_off);
	if (len == 0)
		return 0;
	void *p = mmap(NULL, map_len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)map_off);
	if (p == MAP_FAILED)
		return err_sys("mmap for the checksum at offset %llu", (unsigned long long)off);
	checksum_update(st, (char *)p + (off - map_off), len);
	munmap(p, map_len);
	return 0;
}

/* ---- dump ---- */

static void *dump_worker(void *arg)
{
	struct stream *s = arg;
	unsigned char *buf = malloc(DUMP_READ_BUF);
	if (!buf) {
		err_set("out of memory");
		goto failed;
	}
	for (;;) {
		if (atomic_load(&s->aborting))
			goto called_off;
		ssize_t n = read(s->worker_fd, buf, DUMP_READ_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_sys("reading shard %d", s->index);
			goto failed;
		}
		if (n == 0)
			break;
		if (writer_write(s->out, buf, (size_t)n) < 0)
			goto failed;
		__atomic_fetch_add(&s->raw_bytes, (uint64_t)n, __ATOMIC_RELAXED);
	}
	/* End of the shard: finish the frame and make the object durable,
	 * unless the dump is being called off, when it must not exist. */
	struct writer *w = s->out;
	s->out = NULL;
	if (atomic_load(&s->aborting)) {
		writer_abort(w);
		free(buf);
		return NULL;
	}
	if (writer_close(w) < 0)
		goto failed;
	s->committed = true;
	free(buf);
	return NULL;
failed:
	fail(s);
called_off:	/* not this stream's failure: whoever called it off says why */
	writer_abort(s->out);
	s->out = NULL;
	/* Closing our end makes the engine's next write fail at once rather
	 * than block on a pipe nobody drains. */
	close(s->worker_fd);
	s->worker_fd = -1;
	free(buf);
	return NULL;
}

/* Uncompressed to a local file: splice the shard from the pipe into the
 * file (the kernel's one copy, as when CRIU writes its own images) and
 * hash what landed through a mapping, instead of reading every byte in
 * and writing it out again. */
static void *dump_splice_worker(void *arg)
{
	struct stream *s = arg;
	int fd = s->out->ops->local_fd(s->out);
	struct checksum_state *st = checksum_new();
	if (!st)
		goto failed;
	for (;;) {
		if (atomic_load(&s->aborting))
			goto called_off;
		ssize_t n = splice(s->worker_fd, NULL, fd, NULL, WORKER_BUF, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_sys("write at offset %llu", (unsigned long long)s->raw_bytes);
			goto failed;
		}
		if (n == 0)
			break;
		if (hash_file_range(fd, s->raw_bytes, (size_t)n, st) < 0)
			goto failed;
		__atomic_fetch_add(&s->raw_bytes, (uint64_t)n, __ATOMIC_RELAXED);
		s->out->bytes_in += (uint64_t)n;
		__atomic_fetch_add(&s->sum.bytes, (uint64_t)n, __ATOMIC_RELAXED);
	}
	checksum_final(st, &s->sum);
	checksum_free(st);
	st = NULL;
	struct writer *w = s->out;
	s->out = NULL;
	if (atomic_load(&s->aborting)) {
		writer_abort(w);
		return NULL;
	}
	if (writer_close(w) < 0)
		goto failed;
	s->committed = true;
	return NULL;
failed:
	fail(s);
called_off:
	checksum_free(st);
	writer_abort(s->out);
	s->out = NULL;
	close(s->worker_fd);
	s->worker_fd = -1;
	return NULL;
}

static int make_pipe(struct stream *s, bool engine_writes)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return err_sys("pipe");
	s->engine_fd = engine_writes ? p[1] : p[0];
	s->worker_fd = engine_writes ? p[0] : p[1];
	/* Best effort: a smaller pipe only means more wake-ups. */
	pipe_grow(p[0], PIPE_WANT);
	return 0;
}

static int alloc_set(struct stream_set *set, int n)
{
	set->n = 0;
	set->s = calloc((size_t)n, sizeof(*set->s));
	if (!set->s)
		return err_set("out of memory");
	for (int i = 0; i < n; i++) {
		set->s[i].index = i;
		set->s[i].engine_fd = set->s[i].worker_fd = -1;
	}
	return 0;
}

static struct writer *dump_chain(struct stream *s, struct store *store, const struct codec *codec,
				 int level, const struct stream_filters *f)
{
	struct writer *obj = store->ops->create(store, s->key);
	if (!obj)
		return NULL;
	struct writer *sum = checksum_writer(obj, &s->sum);
	if (!sum) {
		writer_abort(obj);
		return NULL;
	}
	if (f && !(sum = f->wrap_writer(f->ctx, s->index, sum)))
		return NULL;
	struct writer *enc = codec->encoder(level, sum);
	if (!enc) {
		writer_abort(sum);
		return NULL;
	}
	return enc;
}

int streams_start_dump(struct stream_set *set, int n, struct store *store, const char *prefix,
		       const struct codec *codec, int level, const struct stream_filters *filters)
{
	if (alloc_set(set, n) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct stream *s = &set->s[i];
		set->n = i + 1;
		stream_file_name(i, codec, filters ? filters->suffix : NULL, s->file, sizeof(s->file));
		snprintf(s->key, sizeof(s->key), "%s%s", prefix, s->file);
		void *(*worker)(void *) = dump_worker;
		if (!strcmp(codec->name, "none") && !filters &&
		    (s->out = store->ops->create(store, s->key)) && s->out->ops->local_fd) {
			worker = dump_splice_worker;
		} else {
			writer_abort(s->out);
			if (!(s->out = dump_chain(s, store, codec, level, filters)))
				return err_prefix("%s", s->file);
		}
		if (make_pipe(s, true) < 0)
			return -1;
		if (pthread_create(&s->thread, NULL, worker, s) != 0)
			return err_set("cannot start the worker of %s", s->file);
		s->started = true;
	}
	return 0;
}

int streams_error(const struct stream_set *set)
{
	for (int i = 0; i < set->n; i++)
		if (set->s[i].rc < 0)
			return err_set("%s", set->s[i].err);
	return 0;
}

static int join_all(struct stream_set *set)
{
	for (int i = 0; i < set->n; i++) {
		struct stream *s = &set->s[i];
		if (s->started) {
			pthread_join(s->thread, NULL);
			s->started = false;
		}
	}
	return streams_error(set);
}

int streams_finish_dump(struct stream_set *set)
{
	for (int i = 0; i < set->n; i++) {
		if (set->s[i].engine_fd >= 0) {
			close(set->s[i].engine_fd);
			set->s[i].engine_fd = -1;
		}
	}
	return join_all(set);
}

/* ---- restore ---- */

/* Puts len bytes into the engine's pipe by reference (vmsplice): the
 * engine's read() is then the only copy between decoder and engine. */
static int lend(int fd, const unsigned char *buf, size_t len)
{
	while (len > 0) {
		struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
		ssize_t n = vmsplice(fd, &iov, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Two buffers, each at least as large as the pipe: once a full buffer has
 * gone into the pipe, whatever was in it before has been read, so the
 * other buffer is free again. They are mapped, not malloc'd, so that the
 * last one, possibly still in the pipe when the worker ends, is never
 * handed to anyone else: unmapped pages live on until the pipe lets go. */
static void *restore_worker(void *arg)
{
	struct stream *s = arg;
	unsigned char *bufs = mmap(NULL, 2 * WORKER_BUF, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int cap = fcntl(s->worker_fd, F_GETPIPE_SZ);
	bool by_reference = cap > 0 && (size_t)cap <= WORKER_BUF;
	if (bufs == MAP_FAILED) {
		bufs = NULL;
		err_sys("mmap");
		goto failed;
	}
	for (int cur = 0;; cur ^= 1) {
		unsigned char *buf = bufs + (size_t)cur * WORKER_BUF;
		ssize_t n = reader_read_full(s->in, buf, WORKER_BUF);
		if (n < 0)
			goto failed;
		if (n == 0)
			break;
		if (s->raw_bytes == 0)
			trace("restore", "%s: first %zd bytes decoded", s->file, n);
		int rc = by_reference ? lend(s->worker_fd, buf, (size_t)n)
				      : write_full(s->worker_fd, buf, (size_t)n);
		if (rc < 0) {
			/* The engine stopped reading: it has failed or been
			 * told to stop; its error is the one to report. */
			if (errno == EPIPE)
				break;
			err_sys("feeding shard %d", s->index);
			goto failed;
		}
		__atomic_fetch_add(&s->raw_bytes, (uint64_t)n, __ATOMIC_RELAXED);
	}
	trace("restore", "%s: end of stream, %llu bytes decoded", s->file,
	      (unsigned long long)s->raw_bytes);
	if (s->sum.done && s->sum.bytes != s->stored_bytes) {
		err_set("read %llu bytes, the object has %llu",
			(unsigned long long)s->sum.bytes, (unsigned long long)s->stored_bytes);
		goto failed;
	}
	if (s->sum.done && s->expect_checksum && strcmp(s->sum.hex, s->expect_checksum)) {
		err_set("checksum mismatch: xxh128 %s, the manifest says %s (corrupt stream)",
			s->sum.hex, s->expect_checksum);
		goto failed;
	}
	close(s->worker_fd);
	s->worker_fd = -1;
	munmap(bufs, 2 * WORKER_BUF);
	return NULL;
failed:
	fail(s);
	close(s->worker_fd);
	s->worker_fd = -1;
	if (bufs)
		munmap(bufs, 2 * WORKER_BUF);
	return NULL;
}

/* Uncompressed in a local file: the engine reads the file itself (it
 * serves CRIU straight from the page cache), and this worker only checks
 * the file's checksum, through a mapping. */
static void *restore_hash_worker(void *arg)
{
	struct stream *s = arg;
	int fd = s->in->ops->local_fd(s->in);
	struct checksum_state *st = checksum_new();
	const size_t window = 8u << 20;
	if (!st)
		goto failed;
	for (uint64_t off = 0; off < s->stored_bytes; off += window) {
		size_t len = s->stored_bytes - off < window ? (size_t)(s->stored_bytes - off) : window;
		if (hash_file_range(fd, off, len, st) < 0)
			goto failed;
	}
	s->sum.bytes = s->raw_bytes = s->stored_bytes;
	checksum_final(st, &s->sum);
	checksum_free(st);
	if (s->expect_checksum && strcmp(s->sum.hex, s->expect_checksum)) {
		err_set("checksum mismatch: xxh128 %s, the manifest says %s (corrupt stream)",
			s->sum.hex, s->expect_checksum);
		fail(s);
	}
	return NULL;
failed:
	fail(s);
	checksum_free(st);
	return NULL;
}

/* The fast path above, when the stream is uncompressed in a local file:
 * the engine gets its own descriptor of the file. */
static int direct_restore(struct stream *s, struct store *store, const struct codec *codec,
			  const struct stream_filters *f)
{
	if (strcmp(codec->name, "none") || f)
		return 0;
	struct reader *obj = store->ops->open_read(store, s->key, &s->stored_bytes);
	if (!obj)
		return -1;
	if (!obj->ops->local_fd) {
		reader_close(obj);
		return 0;
	}
	s->engine_fd = fcntl(obj->ops->local_fd(obj), F_DUPFD_CLOEXEC, 0);
	if (s->engine_fd < 0) {
		reader_close(obj);
		return err_sys("%s", s->file);
	}
	s->in = obj;
	return 1;
}

static struct reader *restore_chain(struct stream *s, struct store *store, const struct codec *codec,
				    const struct stream_filters *f)
{
	struct reader *obj = store->ops->open_read(store, s->key, &s->stored_bytes);
	if (!obj)
		return NULL;
	struct reader *sum = checksum_reader(obj, &s->sum, s->expect_checksum != NULL);
	if (!sum) {
		reader_close(obj);
		return NULL;
	}
	if (f && !(sum = f->wrap_reader(f->ctx, s->index, sum)))
		return NULL;
	struct reader *dec = codec->decoder(sum);
	if (!dec) {
		reader_close(sum);
		return NULL;
	}
	return dec;
}

int streams_start_restore(struct stream_set *set, int n, struct store *store, const char *prefix,
			  char *const *files, const char *const *checksums, const struct codec *codec,
			  const struct stream_filters *filters)
{
	if (alloc_set(set, n) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct stream *s = &set->s[i];
		set->n = i + 1;
		snprintf(s->file, sizeof(s->file), "%s", files[i]);
		snprintf(s->key, sizeof(s->key), "%s%s", prefix, s->file);
		s->expect_checksum = checksums ? checksums[i] : NULL;
		void *(*worker)(void *) = restore_worker;
		int direct = direct_restore(s, store, codec, filters);
		if (direct < 0)
			return -1;
		if (direct) {
			worker = restore_hash_worker;
		} else {
			if (!(s->in = restore_chain(s, store, codec, filters)))
				return err_prefix("%s", s->file);
			if (make_pipe(s, false) < 0)
				return -1;
		}
		if (pthread_create(&s->thread, NULL, worker, s) != 0)
			return err_set("cannot start the worker of %s", s->file);
		s->started = true;
	}
	return 0;
}

int streams_wait_restore(struct stream_set *set)
{
	return join_all(set);
}

void streams_cancel(struct stream_set *set)
{
	for (int i = 0; i < set->n; i++)
		atomic_store(&set->s[i].aborting, true);
}

void streams_abort(struct stream_set *set)
{
	/* Closing the engine ends makes dump workers see the end of data and
	 * restore workers get EPIPE; either way they stop, and dump workers
	 * that see `aborting` discard their objects instead of committing. */
	for (int i = 0; i < set->n; i++) {
		atomic_store(&set->s[i].aborting, true);
		if (set->s[i].engine_fd >= 0) {
			close(set->s[i].engine_fd);
			set->s[i].engine_fd = -1;
		}
	}
	join_all(set);
}

void streams_progress(const struct stream_set *set, uint64_t *raw, uint64_t *stored)
{
	*raw = *stored = 0;
	for (int i = 0; i < set->n; i++) {
		*raw += __atomic_load_n(&set->s[i].raw_bytes, __ATOMIC_RELAXED);
		*stored += __atomic_load_n(&set->s[i].sum.bytes, __ATOMIC_RELAXED);
	}
}

void streams_free(struct stream_set *set)
{
	for (int i = 0; i < set->n; i++) {
		struct stream *s = &set->s[i];
		writer_abort(s->out);
		reader_close(s->in);
		if (s->engine_fd >= 0)
			close(s->engine_fd);
		if (s->worker_fd >= 0)
			close(s->worker_fd);
	}
	free(set->s);
	set->s = NULL;
	set->n = 0;
}
