#include "shard/shard_reader.h"
#include "util/err.h"
#include "util/fdio.h"
#include "util/strmap.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SKIP_BUF (64 << 10)

struct reader_file {
	void *handle;
	bool complete;
	const char *name;	/* the map's key */
};

const char *shard_in_name(const struct shard_in *in, char *buf, size_t size)
{
	if (in->label)
		return in->label;
	snprintf(buf, size, "shard %d", in->index);
	return buf;
}

/* "shard 1: offset 123: " style prefix for the current message. */
static int shard_fail(const struct shard_in *in, uint64_t offset)
{
	char nb[32];
	return err_prefix("%s: offset %llu", shard_in_name(in, nb, sizeof(nb)),
			  (unsigned long long)offset);
}

int shard_reader_init(struct shard_reader *r, const int *fds, int nfds,
		      const struct image_sink_ops *ops, void *ctx)
{
	memset(r, 0, sizeof(*r));
	if (nfds < 1)
		return err_set("at least one shard is needed");
	r->shards = calloc((size_t)nfds, sizeof(*r->shards));
	if (!r->shards)
		return err_set("out of memory");
	if (strmap_init(&r->files) < 0) {
		free(r->shards);
		return -1;
	}
	r->ctx = ctx;
	r->ops = ops;
	r->nshards = nfds;
	r->start_ms = now_ms();
	r->abort_fd = -1;
	for (int i = 0; i < nfds; i++) {
		struct shard_in *s = &r->shards[i];
		struct stat st;
		s->fd = fds[i];
		s->index = i;
		if (fstat(s->fd, &st) < 0) {
			err_sys("shard %d (fd %d)", i, s->fd);
			shard_reader_free(r);
			return -1;
		}
		s->is_pipe = S_ISFIFO(st.st_mode);
		s->is_regular = S_ISREG(st.st_mode);
		s->abort_fd = -1;
		s->limit = UINT64_MAX;
	}
	return 0;
}

static int release_file(struct strmap_entry *e, void *arg)
{
	struct shard_reader *r = arg;
	struct reader_file *f = e->value;
	if (!f->complete && f->handle && r->ops->discard)
		r->ops->discard(r->ctx, f->handle);
	free(f);
	return 0;
}

void shard_reader_free(struct shard_reader *r)
{
	if (r->files.buckets) {
		strmap_each(&r->files, release_file, r);
		strmap_free(&r->files);
	}
	free(r->shards);
	r->shards = NULL;
}

void shard_reader_set_label(struct shard_reader *r, int i, const char *label)
{
	r->shards[i].label = label;
}

void shard_reader_set_limit(struct shard_reader *r, int i, uint64_t bytes)
{
	r->shards[i].limit = bytes;
}

/* Whether len more bytes at the shard's current offset stay within its
 * limit; sets the message if not. */
static bool within_limit(const struct shard_in *in, uint64_t at, uint64_t len)
{
	if (at <= in->limit && len <= in->limit - at)
		return true;
	err_set("the shard goes on past the %llu bytes its manifest records",
		(unsigned long long)in->limit);
	return false;
}

void shard_reader_set_abort_fd(struct shard_reader *r, int fd)
{
	r->abort_fd = fd;
	for (int i = 0; i < r->nshards; i++)
		r->shards[i].abort_fd = fd;
}

static struct reader_file *lookup(struct shard_reader *r, const char *name)
{
	struct strmap_entry *e = strmap_get(&r->files, name);
	return e ? e->value : NULL;
}

static struct reader_file *add_file(struct shard_reader *r, const char *name)
{
	if (r->files.count >= IMAGE_FILES_MAX) {
		err_set("more than %u image files: not an image crstream can read", IMAGE_FILES_MAX);
		return NULL;
	}
	struct reader_file *f = calloc(1, sizeof(*f));
	struct strmap_entry *e = f ? strmap_add(&r->files, name, f) : NULL;
	if (!e) {
		free(f);
		if (!f)
			err_set("out of memory");
		return NULL;
	}
	f->name = e->key;
	return f;
}

/* ---- payload helpers ---------------------------------------------------- */

static int truncated(struct shard_in *in, size_t got, size_t want)
{
	err_set("truncated: the shard ends %zu bytes into a %zu-byte payload", got, want);
	return shard_fail(in, in->offset);
}

/* Blocks until the shard has data (or EOF), unless the reader's abort fd
 * fires first: a pipe whose writer stalls must not keep us from stopping. */
static int wait_input(struct shard_in *in)
{
	if (in->abort_fd < 0 || !in->is_pipe)
		return 0;
	struct pollfd pfd[2] = {{.fd = in->fd, .events = POLLIN}, {.fd = in->abort_fd, .events = POLLIN}};
	for (;;) {
		int n = poll(pfd, 2, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys("poll");
		if (pfd[1].revents)
			return err_set("aborted");
		return 0;
	}
}

/* Reads up to len bytes, stopping early only at EOF; *got says how many. */
static int in_read(struct shard_in *in, void *buf, size_t len, size_t *got)
{
	*got = 0;
	while (*got < len) {
		if (wait_input(in) < 0)
			return -1;
		ssize_t n = read(in->fd, (char *)buf + *got, len - *got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys("read");
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return 0;
}

int shard_in_read(struct shard_in *in, void *buf, size_t len)
{
	size_t got;
	if (in_read(in, buf, len, &got) < 0)
		return shard_fail(in, in->offset + got);
	if (got < len)
		return truncated(in, got, len);
	in->offset += len;
	return 0;
}

int shard_in_splice(struct shard_in *in, int out_fd, loff_t *out_off, size_t len)
{
	size_t done = 0;
	while (done < len) {
		if (wait_input(in) < 0)
			return shard_fail(in, in->offset);
		ssize_t n = splice(in->fd, NULL, out_fd, out_off, len - done, SPLICE_F_MOVE);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL) {
			/* Neither end is a pipe (file to file): copy. */
			char *buf = malloc(SKIP_BUF);
			if (!buf)
				return err_set("out of memory");
			while (done < len) {
				size_t want = len - done < SKIP_BUF ? len - done : SKIP_BUF;
				ssize_t r = read_full(in->fd, buf, want);
				int wr = r > 0 ? (out_off ? (pwrite(out_fd, buf, (size_t)r, *out_off) == r ? 0 : -1)
						 : write_full(out_fd, buf, (size_t)r)) : 0;
				if (r < 0 || wr < 0) {
					free(buf);
					err_sys(r < 0 ? "read" : "write to output fd %d", out_fd);
					return shard_fail(in, in->offset);
				}
				if ((size_t)r < want) {
					free(buf);
					return truncated(in, done + (size_t)r, len);
				}
				if (out_off)
					*out_off += r;
				in->offset += (uint64_t)r;
				done += (size_t)r;
			}
			free(buf);
			return 0;
		}
		if (n < 0) {
			err_sys("moving payload to fd %d", out_fd);
			return shard_fail(in, in->offset);
		}
		if (n == 0)
			return truncated(in, done, len);
		in->offset += (uint64_t)n;
		done += (size_t)n;
	}
	return 0;
}

int shard_in_skip(struct shard_in *in, size_t len)
{
	if (in->is_regular) {
		struct stat st;
		if (fstat(in->fd, &st) < 0) {
			err_sys("fstat");
			return shard_fail(in, in->offset);
		}
		off_t pos = lseek(in->fd, 0, SEEK_CUR);
		if (pos < 0) {
			err_sys("lseek");
			return shard_fail(in, in->offset);
		}
		if ((uint64_t)st.st_size - (uint64_t)pos < len)
			return truncated(in, (size_t)(st.st_size - pos), len);
		if (lseek(in->fd, (off_t)len, SEEK_CUR) < 0) {
			err_sys("lseek");
			return shard_fail(in, in->offset);
		}
		in->offset += len;
		return 0;
	}
	char buf[4096];
	while (len > 0) {
		size_t want = len < sizeof(buf) ? len : sizeof(buf);
		if (shard_in_read(in, buf, want) < 0)
			return -1;
		len -= want;
	}
	return 0;
}

/* ---- markers -------------------------------------------------------------- */

/* Reads the next record header of a shard into its pending slot, or marks
 * the shard ended when it stops cleanly at a record boundary. */
static int read_marker(struct shard_reader *r, struct shard_in *in)
{
	uint8_t hdr[4];
	uint8_t body[MARKER_MAX_LEN];
	uint64_t at = in->offset;
	size_t n;
	if (in_read(in, hdr, sizeof(hdr), &n) < 0)
		return shard_fail(in, at);
	if (n == 0) {
		in->eof = true;
		in->done_ms = now_ms() - r->start_ms;
		return 0;
	}
	if (n < 4) {
		err_set("truncated: the shard ends inside a marker length (%zu of 4 bytes)", n);
		return shard_fail(in, at);
	}
	uint32_t len = le32_load(hdr);
	if (len >= MARKER_MAX_LEN) {
		err_set("marker length %u is not below the %u-byte limit (corrupt shard?)", len,
			MARKER_MAX_LEN);
		return shard_fail(in, at);
	}
	if (!within_limit(in, at, 4 + (uint64_t)len))
		return shard_fail(in, at);
	if (in_read(in, body, len, &n) < 0)
		return shard_fail(in, at);
	if (n < len) {
		err_set("truncated: the shard ends inside a marker (%zu of %u bytes)", n, len);
		return shard_fail(in, at);
	}
	in->offset += 4 + len;
	if (marker_decode(body, len, &in->pending) < 0)
		return shard_fail(in, at);
	if (in->pending.seq < r->next_seq) {
		err_set("marker seq %llu appears twice", (unsigned long long)in->pending.seq);
		return shard_fail(in, at);
	}
	if (r->image_eof) {
		err_set("marker seq %llu (%s) after image_eof",
			(unsigned long long)in->pending.seq, marker_kind_name(in->pending.kind));
		return shard_fail(in, at);
	}
	in->has_pending = true;
	in->pending_offset = at;
	return 0;
}

static int refuse_incomplete(struct strmap_entry *e, void *arg)
{
	struct reader_file *f = e->value;
	(void)arg;
	return f->complete ? 0 : err_set("image_eof while file %s is incomplete", f->name);
}

static int process(struct shard_reader *r, struct shard_in *in)
{
	struct marker *m = &in->pending;
	struct reader_file *f = r->current;
	switch (m->kind) {
	case MARKER_FILENAME:
		f = lookup(r, m->name);
		if (f && f->complete)
			return err_set("file %s appears again after its file_eof", m->name);
		if (!f) {
			if (!(f = add_file(r, m->name)))
				return -1;
			f->handle = r->ops->open(r->ctx, m->name);
			if (!f->handle) {
				f->complete = true;	/* nothing to discard */
				return err_prefix("%s", m->name);
			}
		}
		r->current = f;
		return 0;
	case MARKER_FILE_DATA:
		if (!f)
			return err_set("file_data (%u bytes) with no current file", m->data_len);
		if (!within_limit(in, in->offset, m->data_len))
			return -1;
		if (r->ops->data(r->ctx, f->handle, in, m->data_len) < 0)
			return err_prefix("%s", f->name);
		return 0;
	case MARKER_FILE_EOF:
		if (!f)
			return err_set("file_eof with no current file");
		f->complete = true;
		r->current = NULL;
		if (r->ops->eof(r->ctx, f->handle) < 0)
			return err_prefix("%s", f->name);
		return 0;
	case MARKER_IMAGE_EOF:
		if (strmap_each(&r->files, refuse_incomplete, NULL))
			return -1;
		r->image_eof = true;
		return 0;
	}
	return err_set("unknown marker kind");
}

/* The shard holding the next marker in seq order, if any has read it. */
static struct shard_in *ready_shard(struct shard_reader *r)
{
	for (int i = 0; i < r->nshards; i++) {
		struct shard_in *s = &r->shards[i];
		if (s->has_pending && s->pending.seq == r->next_seq)
			return s;
	}
	return NULL;
}

/* Explains why the next marker can never arrive: every shard has ended or
 * holds a later marker. */
static int gap_error(struct shard_reader *r)
{
	bool any_pending = false;
	uint64_t lowest = UINT64_MAX;
	for (int i = 0; i < r->nshards; i++) {
		struct shard_in *s = &r->shards[i];
		if (s->has_pending) {
			any_pending = true;
			if (s->pending.seq < lowest)
				lowest = s->pending.seq;
		}
	}
	char nb[32];
	const char *cur = r->current ? r->current->name : "none";
	if (!any_pending) {
		struct shard_in *last = &r->shards[0];
		return err_set("image incomplete: every shard ended without image_eof after %llu "
			       "markers (current file: %s; %s ends at offset %llu)",
			       (unsigned long long)r->next_seq, cur,
			       shard_in_name(last, nb, sizeof(nb)),
			       (unsigned long long)last->offset);
	}
	return err_set("image incomplete: marker seq %llu is in no shard (every shard has ended "
		       "or is waiting at a later seq, the lowest %llu; current file: %s)",
		       (unsigned long long)r->next_seq, (unsigned long long)lowest, cur);
}

/* Picks a shard to read the next marker from. Only shards without a
 * pending marker qualify; among several pipes, wait for one that has data:
 * blocking on an empty one could deadlock when the writer is live and
 * itself blocked on a full sibling. */
static struct shard_in *shard_to_read(struct shard_reader *r, int *err)
{
	struct pollfd pfd[r->nshards + 1];
	struct shard_in *cand[r->nshards];
	int n = 0;
	*err = 0;
	for (int i = 0; i < r->nshards; i++) {
		struct shard_in *s = &r->shards[i];
		if (s->has_pending || s->eof)
			continue;
		if (!s->is_pipe)
			return s;
		cand[n] = s;
		pfd[n].fd = s->fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
		n++;
	}
	if (n <= 1)
		return n ? cand[0] : NULL;
	if (r->abort_fd >= 0) {
		pfd[n].fd = r->abort_fd;
		pfd[n].events = POLLIN;
		pfd[n].revents = 0;
	}
	for (;;) {
		int rc = poll(pfd, (nfds_t)n + (r->abort_fd >= 0), -1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			*err = err_sys("poll on shards");
			return NULL;
		}
		break;
	}
	if (r->abort_fd >= 0 && pfd[n].revents) {
		*err = err_set("aborted");
		return NULL;
	}
	for (int i = 0; i < n; i++)
		if (pfd[i].revents)
			return cand[i];
	return cand[0];
}

/* One generation of Cedana's streamer keeps the small image files in
 * shard 0, numbered by a seq counter of their own, and everything else in
 * shards 1..N-1 under another counter; both start at 0, and image_eof
 * ends the second. Seen from here: two shards begin with seq 0, which the
 * reference format never allows. */
static int detect_cedana(struct shard_reader *r, bool *split)
{
	int zeros = 0;
	*split = false;
	if (r->nshards < 2)
		return 0;
	for (int i = 0; i < r->nshards; i++) {
		struct shard_in *s = &r->shards[i];
		if (!s->has_pending && !s->eof && read_marker(r, s) < 0)
			return -1;
		zeros += s->has_pending && s->pending.seq == 0;
	}
	*split = zeros >= 2 && r->shards[0].has_pending && r->shards[0].pending.seq == 0;
	return 0;
}

/* Cedana's shard 0, read on its own with its own seq counter. */
static int run_small_file_shard(struct shard_reader *r)
{
	struct shard_in *s = &r->shards[0];
	for (uint64_t seq = 0;; seq++) {
		if (!s->has_pending && read_marker(r, s) < 0)
			return -1;
		if (!s->has_pending)
			break;	/* end of the shard */
		uint64_t at = s->pending_offset;
		s->has_pending = false;
		if (s->pending.seq != seq) {
			err_set("small-file shard: marker seq %llu where %llu was expected",
				(unsigned long long)s->pending.seq, (unsigned long long)seq);
			return shard_fail(s, at);
		}
		if (s->pending.kind == MARKER_IMAGE_EOF) {
			err_set("small-file shard: unexpected image_eof");
			return shard_fail(s, at);
		}
		r->markers++;
		if (process(r, s) < 0) {
			err_prefix("small-file shard: marker seq %llu (%s)",
				   (unsigned long long)s->pending.seq, marker_kind_name(s->pending.kind));
			return shard_fail(s, at);
		}
	}
	if (r->current) {
		err_set("small-file shard: ends inside %s", r->current->name);
		return shard_fail(s, s->offset);
	}
	return 0;
}

void shard_reader_allow_cedana(struct shard_reader *r)
{
	r->allow_cedana = true;
}

int shard_reader_run(struct shard_reader *r)
{
	if (r->allow_cedana) {
		bool split;
		if (detect_cedana(r, &split) < 0)
			return -1;
		if (split && run_small_file_shard(r) < 0)
			return -1;
		r->cedana = split;
	}
	for (;;) {
		struct shard_in *s = ready_shard(r);
		if (s) {
			uint64_t at = s->pending_offset;
			s->has_pending = false;
			r->next_seq++;
			r->markers++;
			if (process(r, s) < 0) {
				err_prefix("marker seq %llu (%s)", (unsigned long long)s->pending.seq,
					   marker_kind_name(s->pending.kind));
				return shard_fail(s, at);
			}
			continue;
		}
		int err;
		s = shard_to_read(r, &err);
		if (err)
			return -1;
		if (!s) {
			/* Nothing left to read. */
			bool pending = false;
			for (int i = 0; i < r->nshards; i++)
				pending |= r->shards[i].has_pending;
			if (r->image_eof && !pending)
				return 0;
			return gap_error(r);
		}
		if (read_marker(r, s) < 0)
			return -1;
	}
}
