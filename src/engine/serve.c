/* Serve: shards -> CRIU.
 *
 * Two threads. The ingest thread merges the shards and files each chunk of
 * file data as an extent: in memory while the memory budget lasts, as a
 * reference into the shard itself when the shard is a regular file (no copy
 * at all), otherwise in a spill file. The main thread answers CRIU: a file
 * is "there" as soon as its name has been seen, and its extents are pumped
 * into CRIU's pipe as they arrive, without blocking, so CRIU may read several
 * files at once. An extent is freed as soon as CRIU has taken it.
 *
 * CRIU reads inventory.img first, and dump writes it last, so in practice
 * the whole image has been ingested before CRIU gets its first answer; the
 * budget and the spill file are what keep that from costing the image's
 * size in memory. */
#include "engine/engine.h"
#include "engine/bufpool.h"
#include "engine/engine_util.h"
#include "criu/criu_socket.h"
#include "criu/files_patch.h"
#include "shard/shard_reader.h"
#include "util/err.h"
#include "util/fdio.h"
#include "util/fmt.h"
#include "util/strmap.h"
#include "util/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_MEMORY_LIMIT (64u << 20)
#define CRIU_PIPE_WANT (1 << 20)
/* While the ingest waits for CRIU to free memory, how often it looks
 * whether it should spill after all, and how long it waits at most while
 * CRIU waits for the ingest (see get_buffer). */
#define WAIT_SLICE_MS 10
#define SPILL_AFTER_MS 200
/* Lent buffers CRIU has read are taken back every this many bytes sent
 * (at most an eighth of the budget), or when the ingest needs them:
 * asking the pipe costs its lock, which CRIU holds while it copies. */
#define RECLAIM_STEP ((uint64_t)4 << 20)

enum extent_kind {
	EXT_POOL,	/* bytes in a pool buffer (given to CRIU by reference) */
	EXT_HEAP,	/* bytes in a malloc'd buffer (files.img being patched) */
	EXT_FILE,	/* bytes in a file: the spill file or a regular shard */
};

struct extent {
	struct extent *next;
	enum extent_kind kind;
	size_t len;
	size_t pos;	/* bytes already given to CRIU */
	char *buf;	/* EXT_POOL, EXT_HEAP */
	int fd;		/* EXT_FILE: the bytes are in fd at off */
	loff_t off;
	uint64_t end;	/* in flight: where it ends in the pipe's byte stream */
};

/* The ingest sink hands out two kinds of handles. */
struct handle {
	bool external;
};

/* An image file, buffered until CRIU takes it. */
struct sfile {
	struct handle h;
	const char *name;	/* key in the files map */
	struct extent *head, *tail;	/* not yet given to CRIU */
	uint64_t size;		/* bytes received */
	uint64_t limit;		/* bytes it may have (the manifest's size) */
	bool complete;		/* file_eof seen */
	bool requested;		/* CRIU asked for it */
	bool dropped;		/* CRIU closed its pipe early: discard the rest */
	bool hold;		/* keep in memory, answer only once complete (patching) */
	/* main thread only */
	int pipe;		/* CRIU's pipe while serving, else -1 */
	bool starved;		/* waiting for ingest, EPOLLOUT disarmed */
	bool draining;		/* all sent, waiting for CRIU to read what we lent it */
	uint64_t sent;		/* bytes put into the pipe */
	uint64_t reclaimed_at;	/* sent at the last reclaim */
	/* Pool buffers vmspliced into the pipe: CRIU reads them in place, so
	 * they go back to the pool only once it has read past them. */
	struct extent *inflight, *inflight_tail;
	struct sfile *next_active;
};

/* An external file: not buffered, its data goes straight to its fd. */
struct xfile {
	struct handle h;
	int fd;
	const char *name;
	uint64_t size;
};

struct serve {
	const struct engine_opts *o;
	struct engine_result *res;

	pthread_mutex_t mu;	/* guards the files map, extents and the fields below */
	struct strmap files;
	bool ingest_done;
	int ingest_rc;
	char ingest_err[ERR_MAX];
	struct bufpool pool;	/* the memory budget, in reusable buffers */
	uint64_t mem_limit;

	/* ingest thread only */
	int spill_fd;		/* appended by ingest, read by main at offsets */
	loff_t spill_end;
	uint64_t spill_cap;	/* bytes the spill file may take */
	char spill_why[96];	/* what sets spill_cap, for the message */
	bool *ext_used;
	struct shard_reader reader;

	int wake_fd;		/* eventfd: ingest -> main, "something changed" */
	int abort_fd;		/* eventfd: main -> ingest, "stop" */
	/* main -> ingest: CRIU is connected (or about to be) and waits for
	 * nothing from the ingest: waiting for buffers is safe. */
	atomic_bool may_wait;
	/* ingest -> main: the budget is spent, take back what CRIU has read. */
	atomic_bool want_buffers;
	uint64_t reclaim_step;

	/* main thread only */
	int epfd;
	int conn;
	bool have_pending;	/* a request waits for its answer */
	char pending[CRIU_NAME_MAX + 1];
	struct sfile *active;	/* files being pumped into CRIU's pipes */
};

static void wake(int fd)
{
	uint64_t one = 1;
	/* An eventfd write only fails when the counter would overflow, and
	 * then the reader is certainly awake already. */
	(void)!write(fd, &one, sizeof(one));
}

static void release_extent(struct serve *s, struct extent *e)
{
	if (e->kind == EXT_POOL)
		bufpool_put(&s->pool, e->buf);
	else if (e->kind == EXT_HEAP)
		free(e->buf);
	free(e);
}

static void release_list(struct serve *s, struct extent *e)
{
	while (e) {
		struct extent *next = e->next;
		release_extent(s, e);
		e = next;
	}
}

/* Caller holds mu. In-flight extents are not touched: they may still be in
 * a pipe. */
static void free_extents(struct serve *s, struct sfile *f)
{
	release_list(s, f->head);
	f->head = f->tail = NULL;
}

/* ---- ingest thread: the image sink --------------------------------------- */

static int open_spill(struct serve *s)
{
	const char *dir = s->o->spill_dir ? s->o->spill_dir : tmp_dir();
	s->spill_fd = tmpfile_open(dir);
	if (s->spill_fd < 0)
		return err_sys("cannot create a spill file in %s (the image exceeds the memory "
			       "limit of %llu bytes)", dir, (unsigned long long)s->mem_limit);
	/* A stream can claim any size: the spill stops at the limit given
	 * (by default the image's size in the manifest) and always leaves
	 * the filesystem a margin of free space. */
	uint64_t avail;
	if (fs_free_bytes(s->spill_fd, dir, &avail) < 0)
		return -1;
	s->spill_cap = avail > TMP_FREE_MARGIN ? avail - TMP_FREE_MARGIN : 0;
	snprintf(s->spill_why, sizeof(s->spill_why), "the free space in %.40s less %llu MiB", dir,
		 TMP_FREE_MARGIN >> 20);
	if (s->o->spill_limit && s->o->spill_limit < s->spill_cap) {
		s->spill_cap = s->o->spill_limit;
		snprintf(s->spill_why, sizeof(s->spill_why), "the spill limit");
	}
	return 0;
}

static int spill_room(struct serve *s, uint32_t len)
{
	if (len <= s->spill_cap - s->res->spilled)
		return 0;
	return err_set("the image needs more than %llu bytes of spill space (%s; "
		       "restore.spill_limit, --memory-limit)",
		       (unsigned long long)s->spill_cap, s->spill_why);
}

static void *ingest_open(void *ctx, const char *name)
{
	struct serve *s = ctx;
	int ext = engine_find_ext(s->o, name);
	if (ext >= 0) {
		struct xfile *x = calloc(1, sizeof(*x));
		if (!x) {
			err_set("out of memory");
			return NULL;
		}
		x->h.external = true;
		x->fd = s->o->ext[ext].fd;
		x->name = s->o->ext[ext].name;
		s->ext_used[ext] = true;
		return x;
	}
	if (s->o->in_image && !s->o->in_image(s->o->arg, name)) {
		err_set("%s is not in the image's manifest", name);
		return NULL;
	}
	struct sfile *f = calloc(1, sizeof(*f));
	if (!f) {
		err_set("out of memory");
		return NULL;
	}
	f->pipe = -1;
	f->hold = s->o->nremaps > 0 && strcmp(name, "files.img") == 0;
	f->limit = s->o->recorded_size ? s->o->recorded_size(s->o->arg, name) : UINT64_MAX;
	pthread_mutex_lock(&s->mu);
	struct strmap_entry *e = strmap_add(&s->files, name, f);
	if (e)
		f->name = e->key;
	pthread_mutex_unlock(&s->mu);
	if (!e) {
		free(f);
		return NULL;
	}
	wake(s->wake_fd);
	return f;
}

static bool aborted(const struct serve *s)
{
	struct pollfd p = {.fd = s->abort_fd, .events = POLLIN};
	return poll(&p, 1, 0) == 1;
}

/* A pool buffer for f's data, or NULL: spill it. When the budget is spent,
 * waiting for CRIU to give buffers back beats copying to the spill file.
 * While CRIU waits for nothing from the ingest, waiting is safe: CRIU will
 * read what it was lent or ask for what fills the pool (spilling then,
 * while CRIU merely started, forked and read its small images, cost lz4 x2
 * restores tens of MB of spill file each). While CRIU does wait for the
 * ingest (a file not seen yet, more of one it reads), the data it waits
 * for may lie past what holds the pool: wait a little only for a file CRIU
 * reads (its buffers come back as it does), then spill. */
static char *get_buffer(struct serve *s, struct sfile *f)
{
	char *buf = bufpool_get(&s->pool);
	uint64_t criu_waiting_ms = 0;
	/* A budget under one buffer has nothing to wait for. */
	while (!buf && s->pool.max && !aborted(s)) {
		if (!atomic_load(&s->may_wait)) {
			pthread_mutex_lock(&s->mu);
			bool being_read = f->requested && !f->dropped;
			pthread_mutex_unlock(&s->mu);
			if (!being_read || criu_waiting_ms >= SPILL_AFTER_MS)
				return NULL;
			criu_waiting_ms += WAIT_SLICE_MS;
		}
		if (!atomic_exchange(&s->want_buffers, true))
			wake(s->wake_fd);
		buf = bufpool_get_wait(&s->pool, WAIT_SLICE_MS);
	}
	return buf;
}

/* Takes the next bytes of f's payload (at most len) from the shard into a
 * new extent: a reference into the shard itself when it is a regular file
 * (no copy, no memory: served straight from the page cache), else a pool
 * buffer while the budget lasts, else the spill file. files.img is kept
 * whole in memory when it is to be patched. */
static struct extent *take_payload(struct serve *s, struct sfile *f, struct shard_in *in,
				   uint32_t len)
{
	struct extent *e = calloc(1, sizeof(*e));
	if (!e) {
		err_set("out of memory");
		return NULL;
	}
	e->fd = -1;
	e->len = len;
	if (f->hold) {
		e->kind = EXT_HEAP;
		if (!(e->buf = malloc(len ? len : 1))) {
			free(e);
			err_set("out of memory");
			return NULL;
		}
	} else if (in->is_regular) {
		e->kind = EXT_FILE;	/* referenced in place, below */
	} else if ((e->buf = get_buffer(s, f))) {
		e->kind = EXT_POOL;
		if (e->len > BUFPOOL_CHUNK)
			e->len = BUFPOOL_CHUNK;
	} else {
		e->kind = EXT_FILE;
	}
	int rc;
	if (e->kind != EXT_FILE) {
		rc = shard_in_read(in, e->buf, e->len);
	} else if (in->is_regular) {
		/* The bytes already sit in a file: point at them. */
		e->fd = in->fd;
		e->off = (loff_t)in->offset;
		rc = shard_in_skip(in, len);
	} else {
		rc = s->spill_fd < 0 ? open_spill(s) : 0;
		if (rc == 0)
			rc = spill_room(s, len);
		if (rc == 0) {
			e->fd = s->spill_fd;
			e->off = s->spill_end;
			rc = shard_in_splice(in, s->spill_fd, &s->spill_end, len);
			s->res->spilled += len;
		}
	}
	if (rc < 0) {
		release_extent(s, e);
		return NULL;
	}
	return e;
}

static int ingest_data(void *ctx, void *file, struct shard_in *in, uint32_t len)
{
	struct serve *s = ctx;
	if (((struct handle *)file)->external) {
		((struct xfile *)file)->size += len;
		return shard_in_splice(in, ((struct xfile *)file)->fd, NULL, len);
	}
	struct sfile *f = file;
	/* Only this thread changes f->size. */
	if (len > f->limit - f->size)
		return err_set("longer than the %llu bytes its manifest records (%u more bytes at "
			       "offset %llu)", (unsigned long long)f->limit, len,
			       (unsigned long long)f->size);
	if (f->hold && f->size + len > s->mem_limit / 4)
		return err_set("over %llu bytes: --tcp-listen-remap holds files.img in memory "
			       "and patches a copy, within a quarter of the memory limit",
			       (unsigned long long)(s->mem_limit / 4));
	while (len > 0) {
		pthread_mutex_lock(&s->mu);
		bool dropped = f->dropped;
		pthread_mutex_unlock(&s->mu);
		if (dropped)	/* CRIU did not want the rest of it */
			return shard_in_skip(in, len);
		struct extent *e = take_payload(s, f, in, len);
		if (!e)
			return -1;
		len -= (uint32_t)e->len;
		s->res->file_bytes += e->len;
		pthread_mutex_lock(&s->mu);
		f->size += e->len;
		if (f->dropped) {
			pthread_mutex_unlock(&s->mu);
			release_extent(s, e);
			continue;
		}
		if (f->tail)
			f->tail->next = e;
		else
			f->head = e;
		f->tail = e;
		pthread_mutex_unlock(&s->mu);
		wake(s->wake_fd);
	}
	return 0;
}

static int ingest_eof(void *ctx, void *file)
{
	struct serve *s = ctx;
	s->res->files++;
	if (((struct handle *)file)->external) {
		struct xfile *x = file;
		if (s->o->on_file)
			s->o->on_file(s->o->arg, x->name, x->size);
		/* Closing is how the external reader (tar) sees the end. */
		int rc = close(x->fd);
		free(x);
		return rc < 0 ? err_sys("closing external file fd") : 0;
	}
	struct sfile *f = file;
	pthread_mutex_lock(&s->mu);
	f->complete = true;
	uint64_t size = f->size;
	pthread_mutex_unlock(&s->mu);
	trace("serve", "ingested %s (%llu bytes)", f->name, (unsigned long long)size);
	if (s->o->on_file)
		s->o->on_file(s->o->arg, f->name, size);
	wake(s->wake_fd);
	return 0;
}

static void ingest_discard(void *ctx, void *file)
{
	(void)ctx;
	/* sfiles stay in the map (freed with it); external handles are ours. */
	if (((struct handle *)file)->external)
		free(file);
}

static const struct image_sink_ops serve_ops = {
	.open = ingest_open,
	.data = ingest_data,
	.eof = ingest_eof,
	.discard = ingest_discard,
};

static void *ingest_main(void *arg)
{
	struct serve *s = arg;
	int rc = shard_reader_run(&s->reader);
	if (rc == 0)
		rc = engine_missing_ext(s->o, s->ext_used);
	pthread_mutex_lock(&s->mu);
	s->ingest_done = true;
	s->ingest_rc = rc;
	if (rc < 0)
		err_copy(s->ingest_err, sizeof(s->ingest_err));
	pthread_mutex_unlock(&s->mu);
	if (s->o->on_loaded)
		s->o->on_loaded(s->o->arg, rc, rc < 0 ? s->ingest_err : "");
	wake(s->wake_fd);
	return NULL;
}

/* ---- main thread: answering CRIU ------------------------------------------ */

static int arm(struct serve *s, struct sfile *f, bool writable)
{
	struct epoll_event ev = {.events = writable ? EPOLLOUT : 0, .data.ptr = f};
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, f->pipe, &ev) < 0)
		return err_sys("epoll_ctl(MOD)");
	f->starved = !writable;
	return 0;
}

/* Gives back the pool buffers CRIU has read past: what went into the pipe
 * minus what still waits in it. */
static void reclaim(struct serve *s, struct sfile *f)
{
	if (!f->inflight || f->pipe < 0)
		return;
	int queued = pipe_queued(f->pipe);
	if (queued < 0)
		return;		/* cannot tell: keep them lent */
	uint64_t consumed = f->sent - (uint64_t)queued;
	f->reclaimed_at = f->sent;
	while (f->inflight && f->inflight->end <= consumed) {
		struct extent *e = f->inflight;
		f->inflight = e->next;
		release_extent(s, e);
	}
	if (!f->inflight)
		f->inflight_tail = NULL;
}

static bool reclaim_due(const struct serve *s, const struct sfile *f)
{
	return f->sent - f->reclaimed_at >= s->reclaim_step || atomic_load(&s->want_buffers);
}

/* True once CRIU has closed its end: nothing lent can be read any more. */
static bool reader_gone(int pipe)
{
	struct pollfd p = {.fd = pipe, .events = POLLOUT};
	return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

static void close_transfer(struct serve *s, struct sfile *f)
{
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, f->pipe, NULL);
	close(f->pipe);
	f->pipe = -1;
	/* With our end closed the pipe's pages are no one's to read. */
	release_list(s, f->inflight);
	f->inflight = f->inflight_tail = NULL;
	f->draining = false;
	struct sfile **pp = &s->active;
	while (*pp && *pp != f)
		pp = &(*pp)->next_active;
	if (*pp)
		*pp = f->next_active;
}

/* Everything of f is in the pipe. Closing it now would be wrong while CRIU
 * has not read the buffers we lent it (vmsplice): they would go back to
 * the pool and be overwritten under CRIU's feet. So wait until it has. */
static int finish_transfer(struct serve *s, struct sfile *f)
{
	reclaim(s, f);
	if (!f->inflight || reader_gone(f->pipe)) {
		if (!f->draining)
			trace("serve", "served %s", f->name);
		close_transfer(s, f);
		return 0;
	}
	if (!f->draining) {
		f->draining = true;
		return f->starved ? 0 : arm(s, f, false);
	}
	return 0;
}

static void sent(struct serve *s, struct sfile *f, struct extent *e, size_t n)
{
	e->pos += n;
	f->sent += n;
	s->res->served_bytes += n;
	if (e->pos < e->len)
		return;
	pthread_mutex_lock(&s->mu);
	f->head = e->next;
	if (!f->head)
		f->tail = NULL;
	pthread_mutex_unlock(&s->mu);
	if (e->kind != EXT_POOL) {
		release_extent(s, e);
		return;
	}
	e->next = NULL;
	e->end = f->sent;
	if (f->inflight_tail)
		f->inflight_tail->next = e;
	else
		f->inflight = e;
	f->inflight_tail = e;
}

/* Gives CRIU as much of f as its pipe takes without blocking. Pool buffers
 * go in by reference (vmsplice): CRIU's read() copies them straight into
 * the restored process, the only copy on the way. */
static int pump(struct serve *s, struct sfile *f)
{
	if (f->pipe < 0 || f->draining)	/* finished earlier in the same epoll batch */
		return 0;
	if (reclaim_due(s, f))
		reclaim(s, f);
	for (;;) {
		pthread_mutex_lock(&s->mu);
		struct extent *e = f->head;
		bool complete = f->complete;
		pthread_mutex_unlock(&s->mu);
		if (!e) {
			if (complete)
				return finish_transfer(s, f);
			return f->starved ? 0 : arm(s, f, false);
		}
		ssize_t n;
		size_t want = e->len - e->pos;
		if (e->kind == EXT_POOL) {
			struct iovec iov = {.iov_base = e->buf + e->pos, .iov_len = want};
			n = vmsplice(f->pipe, &iov, 1, SPLICE_F_NONBLOCK);
		} else if (e->kind == EXT_HEAP) {
			n = write(f->pipe, e->buf + e->pos, want);
		} else {
			loff_t off = e->off + (loff_t)e->pos;
			n = splice(e->fd, &off, f->pipe, NULL, want, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return f->starved ? arm(s, f, true) : 0;
		if (n < 0 && errno == EPIPE) {
			/* CRIU stopped reading before the end (it does for some
			 * images, nftables for one): not an error, drop the rest. */
			pthread_mutex_lock(&s->mu);
			f->dropped = true;
			free_extents(s, f);
			pthread_mutex_unlock(&s->mu);
			close_transfer(s, f);
			return 0;
		}
		if (n < 0)
			return err_sys("%s: writing to CRIU's pipe", f->name);
		if (n == 0)
			return err_set("%s: the extent at offset %lld ended early", f->name,
				       (long long)e->off);
		sent(s, f, e, (size_t)n);
	}
}

/* --tcp-listen-remap: replace files.img's extents by the patched image. */
static int patch_files_img(struct serve *s, struct sfile *f)
{
	uint8_t *buf = malloc(f->size ? f->size : 1);
	if (!buf)
		return err_set("out of memory");
	size_t at = 0;
	for (struct extent *e = f->head; e; e = e->next) {
		memcpy(buf + at, e->buf, e->len);
		at += e->len;
	}
	uint8_t *out;
	size_t out_len;
	int rc = criu_patch_tcp_listen(buf, at, s->o->remaps, s->o->nremaps, &out, &out_len);
	free(buf);
	if (rc < 0)
		return -1;
	struct extent *e = calloc(1, sizeof(*e));
	if (!e) {
		free(out);
		return err_set("out of memory");
	}
	*e = (struct extent){.kind = EXT_HEAP, .len = out_len, .buf = (char *)out, .fd = -1};
	pthread_mutex_lock(&s->mu);
	free_extents(s, f);
	f->head = f->tail = e;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

static int start_transfer(struct serve *s, struct sfile *f)
{
	if (criu_send_reply(s->conn, true) < 0)
		return -1;
	int fd = criu_recv_pipe(s->conn, false);
	if (fd < 0)
		return err_prefix("%s", f->name);
	f->pipe = fd;
	if (set_nonblock(fd, true) < 0 || pipe_grow(fd, CRIU_PIPE_WANT) < 0) {
		close(fd);
		f->pipe = -1;
		return err_prefix("%s: CRIU's pipe", f->name);
	}
	if (f->hold && patch_files_img(s, f) < 0) {
		close(fd);
		f->pipe = -1;
		return -1;
	}
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = f};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		f->pipe = -1;
		return err_sys("epoll_ctl(ADD)");
	}
	f->next_active = s->active;
	s->active = f;
	return pump(s, f);
}

/* While a request waits for its answer CRIU sends nothing more, so the
 * connection is not polled for input (level-triggered epoll would spin on
 * a hang-up); hang-ups are reported regardless. */
static int listen_to_criu(struct serve *s, bool on)
{
	struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = &s->conn};
	if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->conn, &ev) < 0)
		return err_sys("epoll_ctl(MOD) on CRIU's connection");
	return 0;
}

/* A file goes to CRIU once: what it has taken is freed as it goes. CRIU
 * 4.2.1 asks again only for a pages image, when its restorer is to fill a
 * mapping it could not premap (private hugetlb): the restorer preadv()s
 * the second pipe at file offsets, which fails on any pipe, so serving it
 * again could not help (tests/zdtm/RESULTS.md). */
static int refuse_second_request(const char *name)
{
	bool pages = strncmp(name, "pages-", 6) == 0;
	return err_set("CRIU requested %s twice; a streamed image file is served once%s", name,
		       pages ? " (CRIU re-reads a pages image by offset to fill private hugetlb "
			       "mappings, which it cannot restore from a stream)" : "");
}

/* Answers the pending request if that can be decided yet: the file exists
 * once its name was seen; it does not once the whole image has been read. */
static int answer_pending(struct serve *s)
{
	if (!s->have_pending)
		return 0;
	pthread_mutex_lock(&s->mu);
	struct strmap_entry *e = strmap_get(&s->files, s->pending);
	struct sfile *f = e ? e->value : NULL;
	bool done = s->ingest_done;
	bool twice = f && f->requested;
	/* Unseen so far: absent for sure once the image has been read, or
	 * right away if the manifest says the image has no such file. */
	bool absent = !f && (done || (s->o->in_image && !s->o->in_image(s->o->arg, s->pending)));
	bool wait = f ? (f->hold && !f->complete) : !absent;
	if (f && !twice && !wait)
		f->requested = true;
	pthread_mutex_unlock(&s->mu);

	if (twice)
		return refuse_second_request(s->pending);
	if (wait)
		return 0;
	trace("serve", "answer %s: %s", s->pending, f ? "yes" : "no");
	s->have_pending = false;
	if (listen_to_criu(s, true) < 0)
		return -1;
	if (f)
		return start_transfer(s, f);
	return criu_send_reply(s->conn, false);
}

static int on_request(struct serve *s, uint32_t events)
{
	if (s->have_pending)
		return err_set("CRIU closed the connection while waiting for %s (events 0x%x)",
			       s->pending, events);
	int rc = criu_read_request(s->conn, s->pending, sizeof(s->pending));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->conn, NULL);
		close(s->conn);
		s->conn = -1;
		return 0;
	}
	s->have_pending = true;
	trace("serve", "request %s", s->pending);
	if (listen_to_criu(s, false) < 0)
		return -1;
	return answer_pending(s);
}

/* Ingest made progress: answer a waiting request, feed starved pipes, and
 * fail at once if the image turned out to be bad. */
static int on_wake(struct serve *s)
{
	uint64_t n;
	(void)!read(s->wake_fd, &n, sizeof(n));
	pthread_mutex_lock(&s->mu);
	bool failed = s->ingest_done && s->ingest_rc < 0;
	pthread_mutex_unlock(&s->mu);
	if (failed)
		return err_set("%s", s->ingest_err);
	if (answer_pending(s) < 0)
		return -1;
	/* The ingest is short of buffers: give back what CRIU has read. */
	if (atomic_load(&s->want_buffers)) {
		for (struct sfile *f = s->active; f; f = f->next_active)
			reclaim(s, f);
		atomic_store(&s->want_buffers, false);
	}
	for (struct sfile *f = s->active, *next; f; f = next) {
		next = f->next_active;
		if (f->starved && pump(s, f) < 0)
			return -1;
	}
	return 0;
}

/* Whether CRIU waits for the ingest: for the answer to a request (a file
 * not seen yet), or for more of a file it is reading. */
static bool criu_waits_for_ingest(struct serve *s)
{
	if (s->have_pending)
		return true;
	for (struct sfile *f = s->active; f; f = f->next_active)
		if (f->pipe >= 0 && f->starved && !f->draining)
			return true;
	return false;
}

static bool finished(struct serve *s)
{
	pthread_mutex_lock(&s->mu);
	bool done = s->ingest_done;
	pthread_mutex_unlock(&s->mu);
	return s->conn < 0 && !s->active && done;
}

static int serve_loop(struct serve *s)
{
	int wake_tag = 0, cancel_tag = 0;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &wake_tag};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &ev) < 0)
		return err_sys("epoll_ctl(ADD)");
	ev.data.ptr = &s->conn;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->conn, &ev) < 0)
		return err_sys("epoll_ctl(ADD)");
	if (s->o->cancel_fd >= 0) {
		ev.data.ptr = &cancel_tag;
		if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->o->cancel_fd, &ev) < 0)
			return err_sys("epoll_ctl(ADD)");
	}
	if (on_wake(s) < 0)	/* the image may be fully read already */
		return -1;
	while (!finished(s)) {
		struct epoll_event evs[16];
		/* No event says when CRIU has read what it borrowed: while some
		 * file waits for that, look again every millisecond. */
		bool draining = false;
		for (struct sfile *f = s->active, *next; f; f = next) {
			next = f->next_active;
			if (f->draining && finish_transfer(s, f) < 0)
				return -1;
			draining |= f->pipe >= 0 && f->draining;
		}
		int n = epoll_wait(s->epfd, evs, 16, draining ? 1 : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys("epoll_wait");
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			int rc;
			if (tag == &cancel_tag)
				rc = err_set("serve cancelled");
			else if (tag == &wake_tag)
				rc = on_wake(s);
			else if (tag == &s->conn)
				rc = on_request(s, evs[i].events);
			else
				rc = pump(s, tag);
			if (rc < 0)
				return -1;
		}
		atomic_store(&s->may_wait, s->conn >= 0 && !criu_waits_for_ingest(s));
	}
	return 0;
}

/* ---- setup and teardown --------------------------------------------------- */

static int free_sfile(struct strmap_entry *e, void *arg)
{
	struct sfile *f = e->value;
	free_extents(arg, f);
	if (f->pipe >= 0)
		close(f->pipe);
	release_list(arg, f->inflight);	/* after the close: no reader left */
	free(f);
	return 0;
}

static void report_shards(struct serve *s)
{
	for (int i = 0; i < s->o->nshards; i++) {
		s->res->shards[i].bytes = s->reader.shards[i].offset;
		s->res->shards[i].millis = s->reader.shards[i].done_ms;
	}
}

/* Waits for ingest to end; after an error, tells it to stop first. */
static int join_ingest(struct serve *s, pthread_t th, bool stop)
{
	if (stop)
		wake(s->abort_fd);
	pthread_join(th, NULL);
	if (s->ingest_rc < 0 && !stop)
		return err_set("%s", s->ingest_err);
	return 0;
}

static int serve_image(struct serve *s)
{
	const struct engine_opts *o = s->o;
	struct criu_listener l = {.fd = -1};
	pthread_t th;
	int rc = -1;

	if (shard_reader_init(&s->reader, o->shard_fds, o->nshards, &serve_ops, s) < 0)
		return -1;
	for (int i = 0; o->shard_labels && i < o->nshards; i++)
		shard_reader_set_label(&s->reader, i, o->shard_labels[i]);
	shard_reader_set_abort_fd(&s->reader, s->abort_fd);
	for (int i = 0; o->shard_limits && i < o->nshards; i++)
		shard_reader_set_limit(&s->reader, i, o->shard_limits[i]);
	if (o->allow_cedana)
		shard_reader_allow_cedana(&s->reader);
	if (pthread_create(&th, NULL, ingest_main, s) != 0) {
		shard_reader_free(&s->reader);
		return err_set("cannot start the ingest thread");
	}
	if (o->load_before_listen) {
		/* criu-image-streamer's contract: statistics, then socket-init. */
		if (join_ingest(s, th, false) < 0)
			goto out_joined;
		report_shards(s);
		engine_emit_stats(o->progress_fd, s->res->shards, o->nshards);
	}
	if (criu_listen(&l, o->images_dir, CRIU_SERVE_SOCKET) < 0)
		goto out;
	engine_emit(o->progress_fd, "socket-init");
	if (o->on_listen)
		o->on_listen(o->listen_arg);
	s->conn = engine_accept(&l, o->cancel_fd);
	criu_listener_close(&l);
	if (s->conn < 0)
		goto out;
	rc = serve_loop(s);
out:
	if (o->load_before_listen)
		goto out_joined;
	if (join_ingest(s, th, rc < 0) < 0)
		rc = -1;
	if (rc == 0) {
		report_shards(s);
		engine_emit_stats(o->progress_fd, s->res->shards, o->nshards);
	}
out_joined:
	shard_reader_free(&s->reader);
	return rc;
}

int engine_serve(const struct engine_opts *o, struct engine_result *res)
{
	struct serve s = {
		.o = o,
		.res = res,
		.spill_fd = -1,
		.wake_fd = -1,
		.abort_fd = -1,
		.epfd = -1,
		.conn = -1,
		.mem_limit = o->memory_limit ? o->memory_limit : DEFAULT_MEMORY_LIMIT,
	};
	bufpool_init(&s.pool, s.mem_limit);
	s.reclaim_step = s.mem_limit / 8 < RECLAIM_STEP ? s.mem_limit / 8 : RECLAIM_STEP;
	/* Until CRIU connects, the ingest may wait for it; unless CRIU comes
	 * only once the whole image is read (criu-image-streamer's order). */
	atomic_init(&s.may_wait, !o->load_before_listen);
	atomic_init(&s.want_buffers, false);
	int rc = -1;
	if (mkdir_p(o->images_dir, 0700) < 0)
		return -1;
	pthread_mutex_init(&s.mu, NULL);
	s.ext_used = calloc((size_t)o->next + 1, sizeof(bool));
	s.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s.abort_fd = eventfd(0, EFD_CLOEXEC);
	s.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!s.ext_used || s.wake_fd < 0 || s.abort_fd < 0 || s.epfd < 0)
		err_sys("setting up serve");
	else if (strmap_init(&s.files) == 0) {
		rc = serve_image(&s);
		strmap_each(&s.files, free_sfile, &s);
		strmap_free(&s.files);
	}
	int fds[] = {s.conn, s.spill_fd, s.wake_fd, s.abort_fd, s.epfd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(s.ext_used);
	res->peak_buffered = s.pool.peak * BUFPOOL_CHUNK;
	bufpool_destroy(&s.pool);
	pthread_mutex_destroy(&s.mu);
	return rc;
}
