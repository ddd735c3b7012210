/* The shard reader over N shards: markers merged by seq, the current file
 * tracked across shards, payloads handed to an image sink, Cedana's split
 * layout recognised.
 *
 * Input: one options byte, then the shards separated by FUZZ_SEPARATOR
 * (at most 8). Options: bit 0 allows Cedana's layout (as restore does for
 * stored streams); bits 1-2 pick how the sink consumes payloads (read,
 * skip, splice into a file); bit 3 passes the shards as pipes instead of
 * regular files when they fit in a pipe's buffer.
 *
 * Properties: the sink sees open/data/eof in a consistent order (data and
 * eof only for an open file, no file opened twice); after a successful
 * run every file reached its eof, and each shard's offset is its length. */
#include "fuzz.h"
#include "shard/shard_reader.h"

#include <fcntl.h>

#define MAX_SHARDS 8
#define MAX_FILES 4096

struct sink_file {
	char *name;
	uint64_t bytes;
	bool eof;
};

struct sink {
	int mode;	/* 0 read, 1 skip, 2 splice into out_fd */
	int out_fd;
	struct sink_file *files[MAX_FILES];
	int nfiles;
	int open_handles;	/* handles not yet ended or discarded */
};

static void *sink_open(void *ctx, const char *name)
{
	struct sink *s = ctx;
	FUZZ_CHECK(name[0] != '\0', "open with an empty name");
	for (int i = 0; i < s->nfiles; i++)
		FUZZ_CHECK(strcmp(s->files[i]->name, name) != 0, "file %s opened twice", name);
	if (s->nfiles == MAX_FILES) {
		err_set("harness: too many files");
		return NULL;
	}
	struct sink_file *f = calloc(1, sizeof(*f));
	FUZZ_CHECK(f && (f->name = strdup(name)), "out of memory");
	s->files[s->nfiles++] = f;
	s->open_handles++;
	return f;
}

static int sink_data(void *ctx, void *file, struct shard_in *in, uint32_t len)
{
	struct sink *s = ctx;
	struct sink_file *f = file;
	FUZZ_CHECK(!f->eof, "data for %s after its eof", f->name);
	uint64_t before = in->offset;
	int rc;
	if (s->mode == 0) {
		void *buf = malloc(len ? len : 1);
		FUZZ_CHECK(buf, "out of memory");
		rc = shard_in_read(in, buf, len);
		free(buf);
	} else if (s->mode == 1) {
		rc = shard_in_skip(in, len);
	} else {
		rc = shard_in_splice(in, s->out_fd, NULL, len);
	}
	if (rc < 0) {
		fuzz_failed_with_message("payload helper");
		return -1;
	}
	FUZZ_CHECK(in->offset == before + len, "payload of %u bytes moved the offset by %llu", len,
		   (unsigned long long)(in->offset - before));
	f->bytes += len;
	return 0;
}

static int sink_eof(void *ctx, void *file)
{
	struct sink *s = ctx;
	struct sink_file *f = file;
	FUZZ_CHECK(!f->eof, "second eof for %s", f->name);
	f->eof = true;
	s->open_handles--;
	return 0;
}

static void sink_discard(void *ctx, void *file)
{
	struct sink *s = ctx;
	struct sink_file *f = file;
	FUZZ_CHECK(!f->eof, "discard of %s after its eof", f->name);
	s->open_handles--;
}

static const struct image_sink_ops sink_ops = {
	.open = sink_open,
	.data = sink_data,
	.eof = sink_eof,
	.discard = sink_discard,
};

/* A pipe holding the bytes with its write end closed, or -1 if they do not
 * fit in its buffer. */
static int filled_pipe(const struct fuzz_part *part)
{
	int p[2];
	FUZZ_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe failed");
	if (part->len > (size_t)fcntl(p[1], F_GETPIPE_SZ)) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	FUZZ_CHECK(part->len == 0 || write(p[1], part->p, part->len) == (ssize_t)part->len,
		   "filling a pipe failed");
	close(p[1]);
	return p[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return -1;
	uint8_t opts = data[0];
	struct fuzz_part parts[MAX_SHARDS];
	int n = fuzz_split(data + 1, size - 1, parts, MAX_SHARDS);
	int fds[MAX_SHARDS];
	for (int i = 0; i < n; i++) {
		fds[i] = (opts & 8) ? filled_pipe(&parts[i]) : -1;
		if (fds[i] < 0)
			fds[i] = fuzz_memfd("shard", parts[i].p, parts[i].len);
	}
	struct sink s = {.mode = (opts >> 1) & 3, .out_fd = -1};
	if (s.mode == 3)
		s.mode = 0;
	if (s.mode == 2)
		s.out_fd = fuzz_memfd("out", "", 0);

	struct shard_reader r;
	err_clear();
	FUZZ_CHECK(shard_reader_init(&r, fds, n, &sink_ops, &s) == 0, "init: %s", err_msg());
	if (opts & 1)
		shard_reader_allow_cedana(&r);
	int rc = shard_reader_run(&r);
	if (rc < 0) {
		fuzz_failed_with_message("shard_reader_run");
	} else {
		for (int i = 0; i < s.nfiles; i++)
			FUZZ_CHECK(s.files[i]->eof, "run succeeded with %s incomplete", s.files[i]->name);
		for (int i = 0; i < n; i++)
			FUZZ_CHECK(r.shards[i].eof && r.shards[i].offset == parts[i].len,
				   "run succeeded with shard %d at offset %llu of %zu", i,
				   (unsigned long long)r.shards[i].offset, parts[i].len);
	}
	shard_reader_free(&r);
	FUZZ_CHECK(s.open_handles == 0, "%d handles neither ended nor discarded", s.open_handles);

	for (int i = 0; i < s.nfiles; i++) {
		free(s.files[i]->name);
		free(s.files[i]);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (s.out_fd >= 0)
		close(s.out_fd);
	return 0;
}
