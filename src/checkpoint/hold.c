#include "checkpoint/hold.h"
#include "util/err.h"
#include "util/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Read from the verifying reader this much at a time. */
#define HOLD_BUF ((size_t)1 << 20)

struct held_copy {
	struct reader *in;
	const char *key;
	uint64_t bytes;		/* the signed size */
	int fd;
	const atomic_bool *stop;
	atomic_bool *failed;	/* any copy failed: the others stop */
	struct held *h;		/* for the finish signal */
	_Atomic uint64_t held;	/* bytes in the copy so far */
	pthread_t thread;
	bool started;
	bool stopped;		/* gave up because another failed (or *stop) */
	int rc;
	char err[ERR_MAX];
};

struct held {
	struct store store;	/* first: held_store() hands out &h->store */
	struct held_copy *c;
	int n;
	atomic_bool failed;
	pthread_mutex_t lock;
	pthread_cond_t finished;	/* a copy thread ended */
	int running;
};

static int open_copy(struct held_copy *c, const char *dir)
{
	c->fd = tmpfile_open(dir);
	if (c->fd < 0)
		return err_sys("%s: cannot create a file in %s to hold it until it is verified",
			       c->key, dir);
	return 0;
}

/* All copies go to one directory: room for all of them, checked once. */
static int check_room(int fd, const char *dir, uint64_t need)
{
	uint64_t avail;
	if (fs_free_bytes(fd, dir, &avail) < 0)
		return -1;
	if (need + TMP_FREE_MARGIN > avail)
		return err_set("the checkpoint's %llu stored bytes are held in %s until every stream "
			       "is verified, and it has %llu bytes free, less a margin of %llu MiB "
			       "(set TMPDIR, or restore.verify_first = false to stream verified "
			       "chunks)",
			       (unsigned long long)need, dir, (unsigned long long)avail,
			       TMP_FREE_MARGIN >> 20);
	return 0;
}

/* One stream, to its end, into its file. */
static int copy_all(struct held_copy *c)
{
	uint8_t *buf = malloc(HOLD_BUF);
	if (!buf)
		return err_set("out of memory");
	uint64_t at = 0;
	int rc = 0;
	for (;;) {
		if (atomic_load(c->stop) || atomic_load(c->failed)) {
			c->stopped = true;
			rc = err_set("stopped");
			break;
		}
		ssize_t n = reader_read(c->in, buf, HOLD_BUF);
		if (n <= 0) {
			rc = (int)n;
			break;
		}
		if (write_full(c->fd, buf, (size_t)n) < 0) {
			rc = err_sys("holding it in %s at byte %llu", tmp_dir(), (unsigned long long)at);
			break;
		}
		at += (uint64_t)n;
		atomic_store(&c->held, at);
	}
	free(buf);
	return rc;
}

static void *copy_thread(void *arg)
{
	struct held_copy *c = arg;
	c->rc = copy_all(c);
	if (c->rc < 0) {
		atomic_store(c->failed, true);
		err_prefix("%s", c->key);
		err_copy(c->err, sizeof(c->err));
	}
	pthread_mutex_lock(&c->h->lock);
	c->h->running--;
	pthread_cond_broadcast(&c->h->finished);
	pthread_mutex_unlock(&c->h->lock);
	return NULL;
}

/* Waits for the copy threads, ticking about five times a second. */
static void wait_copies(struct held *h, const struct hold_tick *tick)
{
	uint64_t total = 0;
	for (int i = 0; i < h->n; i++)
		total += h->c[i].bytes;
	pthread_mutex_lock(&h->lock);
	while (h->running > 0) {
		struct timespec until = deadline_after_ms(200);
		if (pthread_cond_timedwait(&h->finished, &h->lock, &until) != ETIMEDOUT || !tick)
			continue;
		uint64_t held = 0;
		for (int i = 0; i < h->n; i++)
			held += atomic_load(&h->c[i].held);
		pthread_mutex_unlock(&h->lock);
		tick->fn(tick->arg, held, total);
		pthread_mutex_lock(&h->lock);
	}
	pthread_mutex_unlock(&h->lock);
}

/* The reason to report: a stream's own failure before the "stopped" of
 * the streams it stopped, and "interrupted" before either. */
static int first_failure(struct held *h, const atomic_bool *stop)
{
	if (atomic_load(stop))
		return err_set("interrupted");
	for (int i = 0; i < h->n; i++)
		if (h->c[i].rc < 0 && !h->c[i].stopped)
			return err_set("%s", h->c[i].err);
	for (int i = 0; i < h->n; i++)
		if (h->c[i].rc < 0)
			return err_set("%s", h->c[i].err);
	return 0;
}

/* ---- the store of held copies ---- */

struct copy_reader {
	struct reader r;
	int fd;
	uint64_t off;	/* pread: the copies share the file's offset */
};

static ssize_t copy_read(struct reader *r, void *buf, size_t cap)
{
	struct copy_reader *c = (struct copy_reader *)r;
	ssize_t n;
	do
		n = pread(c->fd, buf, cap, (off_t)c->off);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_sys("reading a held copy at byte %llu", (unsigned long long)c->off);
	c->off += (uint64_t)n;
	return n;
}

static void copy_close(struct reader *r)
{
	struct copy_reader *c = (struct copy_reader *)r;
	close(c->fd);
	free(c);
}

static const struct reader_ops copy_reader_ops = {.read = copy_read, .close = copy_close};

static struct reader *held_open_read(struct store *s, const char *key, uint64_t *size)
{
	struct held *h = (struct held *)s;
	for (int i = 0; i < h->n; i++) {
		if (strcmp(h->c[i].key, key))
			continue;
		struct copy_reader *c = calloc(1, sizeof(*c));
		if (!c) {
			err_set("out of memory");
			return NULL;
		}
		struct stat st;
		c->fd = fcntl(h->c[i].fd, F_DUPFD_CLOEXEC, 0);
		if (c->fd < 0 || fstat(c->fd, &st) < 0) {
			err_sys("reopening the held copy of %s", key);
			if (c->fd >= 0)
				close(c->fd);
			free(c);
			return NULL;
		}
		c->r.ops = &copy_reader_ops;
		*size = (uint64_t)st.st_size;
		return &c->r;
	}
	err_set("%s: not held", key);
	return NULL;
}

static void held_store_close(struct store *s)
{
	(void)s; /* held_free() frees it */
}

static const struct store_ops held_ops = {
	.scheme = "held",
	.open_read = held_open_read,
	.close = held_store_close,
};

struct store *held_store(struct held *h)
{
	return &h->store;
}

void held_free(struct held *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->n; i++) {
		reader_close(h->c[i].in);
		if (h->c[i].fd >= 0)
			close(h->c[i].fd);
	}
	free(h->c);
	pthread_cond_destroy(&h->finished);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int hold_streams(struct reader **in, const char *const *keys, const uint64_t *bytes, int n,
		 const atomic_bool *stop, const struct hold_tick *tick, struct held **out)
{
	*out = NULL;
	struct held *h = calloc(1, sizeof(*h));
	if (!h || !(h->c = calloc((size_t)n, sizeof(*h->c)))) {
		free(h);
		for (int i = 0; i < n; i++)
			reader_close(in[i]);
		return err_set("out of memory");
	}
	h->store = (struct store){.ops = &held_ops, .location = "(verified copies)"};
	h->n = n;
	atomic_init(&h->failed, false);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->finished, NULL);
	for (int i = 0; i < n; i++)
		h->c[i] = (struct held_copy){.in = in[i], .key = keys[i], .bytes = bytes[i], .fd = -1,
					     .stop = stop, .failed = &h->failed, .h = h};
	uint64_t need = 0;
	for (int i = 0; i < n; i++)
		need += bytes[i];
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		struct held_copy *c = &h->c[i];
		if (open_copy(c, tmp_dir()) < 0 || (i == 0 && check_room(c->fd, tmp_dir(), need) < 0)) {
			rc = -1;
			break;
		}
		pthread_mutex_lock(&h->lock);
		h->running++;
		pthread_mutex_unlock(&h->lock);
		if (pthread_create(&c->thread, NULL, copy_thread, c) != 0) {
			pthread_mutex_lock(&h->lock);
			h->running--;
			pthread_mutex_unlock(&h->lock);
			rc = err_set("%s: cannot start a thread to hold it", c->key);
		} else {
			c->started = true;
		}
	}
	if (rc < 0)
		atomic_store(&h->failed, true);
	wait_copies(h, tick);
	for (int i = 0; i < n; i++) {
		if (h->c[i].started)
			pthread_join(h->c[i].thread, NULL);
		reader_close(h->c[i].in);
		h->c[i].in = NULL;
	}
	if (rc == 0)
		rc = first_failure(h, stop);
	if (rc < 0) {
		char why[ERR_MAX];
		err_copy(why, sizeof(why));
		held_free(h);
		return err_set("%s", why);
	}
	*out = h;
	return 0;
}
