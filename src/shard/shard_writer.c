#include "shard/shard_writer.h"
#include "util/err.h"
#include "util/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARD_PIPE_WANT (1 << 20)
#define PAGE 4096
#define COPY_BUF_SIZE (256 << 10)

int shard_writer_init(struct shard_writer *w, const int *fds, int nfds)
{
	memset(w, 0, sizeof(*w));
	if (nfds < 1)
		return err_set("at least one shard is needed");
	w->shards = calloc((size_t)nfds, sizeof(*w->shards));
	if (!w->shards)
		return err_set("out of memory");
	w->nshards = nfds;
	int min_cap = INT_MAX;
	for (int i = 0; i < nfds; i++) {
		struct shard_out *s = &w->shards[i];
		struct stat st;
		s->fd = fds[i];
		s->index = i;
		if (fstat(s->fd, &st) < 0) {
			err_sys("shard %d (fd %d)", i, s->fd);
			shard_writer_free(w);
			return -1;
		}
		s->is_pipe = S_ISFIFO(st.st_mode);
		if (s->is_pipe) {
			s->capacity = pipe_grow(s->fd, SHARD_PIPE_WANT);
			if (s->capacity < 0) {
				err_sys("shard %d (fd %d): cannot size pipe", i, s->fd);
				shard_writer_free(w);
				return -1;
			}
			s->room = 0; /* unknown until the first refresh */
			if (s->capacity < min_cap)
				min_cap = s->capacity;
		} else {
			s->room = LONG_MAX;
		}
	}
	if (min_cap == INT_MAX)
		min_cap = SHARD_PIPE_WANT;
	/* A chunk of a quarter of the pipe (minus the page its marker takes)
	 * keeps several chunks in flight per shard, so a stalled shard is
	 * noticed before it blocks us for long. */
	long chunk = min_cap / 4 - PAGE;
	w->chunk_max = (size_t)(chunk < PAGE ? PAGE : chunk);
	return 0;
}

void shard_writer_free(struct shard_writer *w)
{
	free(w->shards);
	free(w->copy_buf);
	w->shards = NULL;
	w->copy_buf = NULL;
}

static int refresh_rooms(struct shard_writer *w)
{
	for (int i = 0; i < w->nshards; i++) {
		struct shard_out *s = &w->shards[i];
		if (!s->is_pipe)
			continue;
		int queued = pipe_queued(s->fd);
		if (queued < 0)
			return err_sys("shard %d (fd %d): FIONREAD", i, s->fd);
		s->room = (long)s->capacity - queued;
	}
	return 0;
}

/* Most room first; among equals (always the case for regular files), the
 * shard that has received the least, so that shards stay balanced. */
static struct shard_out *roomiest(struct shard_writer *w)
{
	struct shard_out *best = &w->shards[0];
	for (int i = 1; i < w->nshards; i++) {
		struct shard_out *s = &w->shards[i];
		if (s->room > best->room || (s->room == best->room && s->bytes < best->bytes))
			best = s;
	}
	return best;
}

/* The shard with the most free space. Rooms only shrink between refreshes
 * (we only know what we wrote, not what the consumer drained), so refresh
 * all of them when the best one looks too full: refreshing only the chosen
 * one could starve a shard whose consumer caught up. */
static struct shard_out *pick_shard(struct shard_writer *w, size_t need)
{
	struct shard_out *best = roomiest(w);
	if (best->room >= (long)need)
		return best;
	if (refresh_rooms(w) < 0)
		return NULL;
	return roomiest(w);
}

static int copy_bytes(struct shard_writer *w, struct shard_out *s, int src, size_t len)
{
	if (!w->copy_buf && !(w->copy_buf = malloc(COPY_BUF_SIZE)))
		return err_set("out of memory");
	while (len > 0) {
		size_t want = len < COPY_BUF_SIZE ? len : COPY_BUF_SIZE;
		ssize_t n = read_full(src, w->copy_buf, want);
		if (n < 0)
			return err_sys("reading input fd %d", src);
		if ((size_t)n < want)
			return err_set("input fd %d ended %zu bytes early", src, len - (size_t)n);
		if (write_full(s->fd, w->copy_buf, want) < 0)
			return err_sys("shard %d (fd %d): write at offset %llu", s->index, s->fd,
				       (unsigned long long)s->bytes);
		s->bytes += want;
		len -= want;
	}
	return 0;
}

/* Moves len bytes from src to the shard without copying them through our
 * memory when the kernel allows it (pipe to pipe, pipe to file). */
static int move_bytes(struct shard_writer *w, struct shard_out *s, int src, size_t len)
{
	while (len > 0) {
		ssize_t n = splice(src, NULL, s->fd, NULL, len, SPLICE_F_MOVE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EINVAL)	/* neither end is a pipe */
				return copy_bytes(w, s, src, len);
			return err_sys("shard %d (fd %d): write at offset %llu", s->index, s->fd,
				       (unsigned long long)s->bytes);
		}
		if (n == 0)
			return err_set("input fd %d ended %zu bytes early", src, len);
		s->bytes += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes the marker of one record into the chosen shard; returns that shard
 * (whose payload, if any, the caller then writes) or NULL. */
static struct shard_out *put_marker(struct shard_writer *w, struct marker *m, size_t payload)
{
	uint8_t hdr[MARKER_RECORD_MAX];
	m->seq = w->seq;
	int len = marker_encode(m, hdr);
	if (len < 0)
		return NULL;
	/* In a pipe the marker occupies a page slot of its own: spliced pages
	 * never merge with it. */
	struct shard_out *s = pick_shard(w, PAGE + payload);
	if (!s)
		return NULL;
	if (write_full(s->fd, hdr, (size_t)len) < 0) {
		err_sys("shard %d (fd %d): write at offset %llu", s->index, s->fd,
			(unsigned long long)s->bytes);
		return NULL;
	}
	w->seq++;
	s->bytes += (uint64_t)len;
	if (s->is_pipe)
		s->room -= (long)(PAGE + payload);
	return s;
}

static int select_file(struct shard_writer *w, const char *name)
{
	if (w->have_current && strcmp(w->current, name) == 0)
		return 0;
	struct marker m = {.kind = MARKER_FILENAME};
	size_t nlen = strlen(name);
	if (nlen > MARKER_NAME_MAX)
		return err_set("file name longer than %u bytes: %.64s...", MARKER_NAME_MAX, name);
	memcpy(m.name, name, nlen + 1);
	if (!put_marker(w, &m, 0))
		return -1;
	memcpy(w->current, name, nlen + 1);
	w->have_current = true;
	return 0;
}

int shard_writer_move(struct shard_writer *w, const char *name, int src, size_t len)
{
	if (select_file(w, name) < 0)
		return -1;
	while (len > 0) {
		size_t chunk = len < w->chunk_max ? len : w->chunk_max;
		struct marker m = {.kind = MARKER_FILE_DATA, .data_len = (uint32_t)chunk};
		struct shard_out *s = put_marker(w, &m, chunk);
		if (!s || move_bytes(w, s, src, chunk) < 0)
			return err_prefix("%s", name);
		len -= chunk;
	}
	return 0;
}

int shard_writer_write(struct shard_writer *w, const char *name, const void *buf, size_t len)
{
	if (select_file(w, name) < 0)
		return -1;
	const char *p = buf;
	while (len > 0) {
		size_t chunk = len < w->chunk_max ? len : w->chunk_max;
		struct marker m = {.kind = MARKER_FILE_DATA, .data_len = (uint32_t)chunk};
		struct shard_out *s = put_marker(w, &m, chunk);
		if (!s)
			return err_prefix("%s", name);
		if (write_full(s->fd, p, chunk) < 0)
			return err_sys("%s: shard %d (fd %d): write at offset %llu", name, s->index,
				       s->fd, (unsigned long long)s->bytes);
		s->bytes += chunk;
		p += chunk;
		len -= chunk;
	}
	return 0;
}

int shard_writer_file_eof(struct shard_writer *w, const char *name)
{
	if (select_file(w, name) < 0)
		return -1;
	struct marker m = {.kind = MARKER_FILE_EOF};
	if (!put_marker(w, &m, 0))
		return err_prefix("%s", name);
	/* Nothing is current any more: a reader that, like the reference one,
	 * keeps the last file current would otherwise misfile later data. */
	w->have_current = false;
	return 0;
}

int shard_writer_image_eof(struct shard_writer *w)
{
	struct marker m = {.kind = MARKER_IMAGE_EOF};
	return put_marker(w, &m, 0) ? 0 : -1;
}
