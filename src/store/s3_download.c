/* Streaming download: a reader that keeps ranged GETs ahead of the
 * consumer.
 *
 * The object (size and ETag from HEAD) is cut into chunks of part_size
 * bytes. parts_in_flight fetcher threads, each with its own curl handle,
 * fill a ring of as many chunk buffers: chunk i goes to slot i % n once the
 * consumer has finished chunk i - n, so memory stays within part_size *
 * parts_in_flight and several ranges download in parallel.
 *
 * The consumer reads a chunk while it arrives, not once it is complete:
 * with several streams sharing a link, a whole 8 MiB chunk takes seconds,
 * and the first bytes of a restore (the images CRIU asks for first) would
 * wait for all of it.
 *
 * A connection dropped in the middle of a range is resumed from the last
 * byte received (Range: bytes=N-END), not restarted. Every answer must
 * carry the ETag HEAD saw, so an object replaced while being read is an
 * error instead of a silent mix of two versions. */
#include "store/s3.h"
#include "util/bigbuf.h"
#include "util/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum slot_state { SLOT_EMPTY, SLOT_FILLING, SLOT_READY };

struct slot {
	unsigned char *buf;
	size_t len;
	/* Bytes of buf received so far: the fetcher publishes them as they
	 * come, the consumer may read that far while the slot is FILLING. */
	atomic_size_t filled;
	uint64_t index;		/* the chunk this slot holds or waits for */
	enum slot_state state;
};

struct s3_reader {
	struct reader r;
	struct s3_store *st;
	char *key;		/* full key */
	uint64_t size;
	char etag[128];
	uint64_t chunk;
	uint64_t nchunks;
	unsigned nslots;
	struct slot *slots;
	pthread_t *threads;
	unsigned nthreads;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t next_fetch;	/* next chunk a fetcher takes */
	uint64_t cur;		/* chunk the consumer reads */
	size_t pos;		/* offset in it */
	bool stop;
	bool failed;
	char err[ERR_MAX];
	atomic_bool cancel;
	/* The consumer waits for bytes of a slot being filled: the fetcher
	 * wakes it (set before it looks at `filled` again, and the fetcher
	 * publishes `filled` before it looks at this: one of them sees the
	 * other). */
	atomic_bool consumer_waits;
};

/* One ranged GET of [start, start + want) into slot->buf. */
struct fetch {
	struct s3_reader *r;
	struct s3_resp *resp;
	struct slot *slot;
	unsigned char *buf;
	uint64_t start;
	size_t want;
	size_t got;
};

static void set_range(struct fetch *f, struct s3_req *rq)
{
	snprintf(rq->range, sizeof(rq->range), "bytes=%" PRIu64 "-%" PRIu64, f->start + f->got,
		 f->start + f->want - 1);
}

/* Before a retry: ask only for the bytes not received yet. */
static void resume(void *arg, struct s3_req *rq)
{
	struct fetch *f = arg;
	if (f->got)
		atomic_fetch_add(&f->r->st->stats.resumes, 1);
	set_range(f, rq);
}

static bool sink(void *arg, const void *p, size_t n)
{
	struct fetch *f = arg;
	struct s3_reader *r = f->r;
	const char *url = s3_url(r->st, r->key);
	if (f->resp->status != 206 && !(f->got == 0 && f->start == 0 && f->want == r->size)) {
		err_set("%s: GET offset %" PRIu64 ": server answered %ld to a ranged request", url,
			f->start + f->got, f->resp->status);
		return false;
	}
	if (r->etag[0] && f->resp->etag[0] && strcmp(r->etag, f->resp->etag) != 0) {
		err_set("%s: GET offset %" PRIu64 ": object changed while being read (ETag %s, was %s)",
			url, f->start + f->got, f->resp->etag, r->etag);
		return false;
	}
	if (n > f->want - f->got) {
		err_set("%s: GET offset %" PRIu64 ": more bytes than the range asked for", url,
			f->start + f->got);
		return false;
	}
	memcpy(f->buf + f->got, p, n);
	f->got += n;
	/* Received bytes stay valid across a resumed retry: publish them. */
	atomic_store(&f->slot->filled, f->got);
	if (atomic_load(&r->consumer_waits)) {
		pthread_mutex_lock(&r->mu);
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	return true;
}

static int fetch_chunk(struct s3_reader *r, CURL *h, uint64_t index, struct slot *s)
{
	uint64_t start = index * r->chunk;
	uint64_t left = r->size - start;
	size_t want = (size_t)(left < r->chunk ? left : r->chunk);
	char what[64];
	snprintf(what, sizeof(what), "GET offset %" PRIu64, start);
	/* A slot keeps its buffer from chunk to chunk. */
	if (!s->buf && !(s->buf = bigbuf_map(r->chunk)))
		return err_sys("%s: a %" PRIu64 "-byte download buffer", s3_url(r->st, r->key), r->chunk);
	struct s3_resp resp = {0};
	struct fetch f = {r, &resp, s, s->buf, start, want, 0};
	struct s3_req rq = {.method = "GET", .key = r->key, .what = what, .sink = sink,
			    .sink_arg = &f, .before_retry = resume, .cancel = &r->cancel};
	set_range(&f, &rq);
	int rc = s3_perform(r->st, h, &rq, &resp);
	if (rc == 0 && f.got != want)
		rc = err_set("%s: GET offset %" PRIu64 ": answer ended after %zu of %zu bytes",
			     s3_url(r->st, r->key), start, f.got, want);
	s3_resp_free(&resp);
	return rc;
}

static void *fetcher(void *arg)
{
	struct s3_reader *r = arg;
	CURL *h = s3_handle_new();
	pthread_mutex_lock(&r->mu);
	if (!h && !r->failed) {
		r->failed = true;
		err_copy(r->err, sizeof(r->err));
	}
	while (!r->stop && !r->failed && r->next_fetch < r->nchunks) {
		uint64_t idx = r->next_fetch++;
		struct slot *s = &r->slots[idx % r->nslots];
		while (!r->stop && !r->failed && !(s->index == idx && s->state == SLOT_EMPTY))
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->stop || r->failed)
			break;
		/* Nothing of it is readable until the fetch publishes bytes. */
		atomic_store(&s->filled, 0);
		s->state = SLOT_FILLING;
		uint64_t left = r->size - idx * r->chunk;
		s->len = (size_t)(left < r->chunk ? left : r->chunk);
		pthread_mutex_unlock(&r->mu);
		int rc = fetch_chunk(r, h, idx, s);
		pthread_mutex_lock(&r->mu);
		if (rc < 0 && !r->failed) {
			r->failed = true;
			err_copy(r->err, sizeof(r->err));
			atomic_store(&r->cancel, true);
		}
		s->state = SLOT_READY;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	if (h)
		curl_easy_cleanup(h);
	return NULL;
}

/* Bytes of slot s the consumer may read now (under r->mu): all of a
 * complete chunk, what has arrived of one being filled, none of one not
 * yet started or another chunk's. */
static size_t readable(const struct s3_reader *r, const struct slot *s)
{
	if (s->index != r->cur)
		return 0;
	if (s->state == SLOT_READY)
		return s->len;
	return s->state == SLOT_FILLING ? atomic_load(&s->filled) : 0;
}

static ssize_t r_read(struct reader *rd, void *buf, size_t cap)
{
	struct s3_reader *r = (struct s3_reader *)rd;
	if (r->cur >= r->nchunks || cap == 0)
		return 0;
	struct slot *s = &r->slots[r->cur % r->nslots];
	pthread_mutex_lock(&r->mu);
	size_t have;
	while (!r->failed && (have = readable(r, s)) <= r->pos) {
		atomic_store(&r->consumer_waits, true);
		/* Published before we said we wait: do not sleep on it. */
		if (readable(r, s) > r->pos)
			break;
		pthread_cond_wait(&r->cv, &r->mu);
	}
	atomic_store(&r->consumer_waits, false);
	bool failed = r->failed;
	have = readable(r, s);
	pthread_mutex_unlock(&r->mu);
	if (failed)
		return err_set("%s", r->err);
	/* Bytes [pos, have) of the slot are ours until we hand it back. */
	size_t n = have - r->pos < cap ? have - r->pos : cap;
	memcpy(buf, s->buf + r->pos, n);
	r->pos += n;
	if (r->pos == s->len) {
		pthread_mutex_lock(&r->mu);
		/* Its fetcher may still be finishing the request, and owns the
		 * buffer until it has. */
		while (!r->failed && s->state != SLOT_READY)
			pthread_cond_wait(&r->cv, &r->mu);
		if (s->state != SLOT_READY) {
			pthread_mutex_unlock(&r->mu);
			return err_set("%s", r->err);
		}
		s->index = r->cur + r->nslots;
		s->state = SLOT_EMPTY;
		r->cur++;
		r->pos = 0;
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	return (ssize_t)n;
}

static void r_close(struct reader *rd)
{
	struct s3_reader *r = (struct s3_reader *)rd;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	atomic_store(&r->cancel, true);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	for (unsigned i = 0; i < r->nthreads; i++)
		pthread_join(r->threads[i], NULL);
	for (unsigned i = 0; r->slots && i < r->nslots; i++)
		bigbuf_unmap(r->slots[i].buf, r->chunk);
	free(r->slots);
	free(r->threads);
	free(r->key);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static const struct reader_ops s3_reader_ops = {
	.read = r_read,
	.close = r_close,
};

static int start_fetchers(struct s3_reader *r)
{
	r->nchunks = (r->size + r->chunk - 1) / r->chunk;
	r->nslots = r->st->conf.parts_in_flight;
	r->slots = calloc(r->nslots, sizeof(*r->slots));
	unsigned nt = r->nchunks < r->nslots ? (unsigned)r->nchunks : r->nslots;
	r->threads = calloc(nt ? nt : 1, sizeof(*r->threads));
	if (!r->slots || !r->threads)
		return err_set("out of memory");
	for (unsigned i = 0; i < r->nslots; i++) {
		r->slots[i].index = i;
		atomic_init(&r->slots[i].filled, 0);
	}
	for (unsigned i = 0; i < nt; i++) {
		int e = pthread_create(&r->threads[i], NULL, fetcher, r);
		if (e) {
			errno = e;
			return err_sys("%s: starting download thread", s3_url(r->st, r->key));
		}
		r->nthreads++;
	}
	return 0;
}

struct reader *s3_reader_new(struct s3_store *st, const char *key, uint64_t *size)
{
	struct s3_reader *r = calloc(1, sizeof(*r));
	if (!r) {
		err_set("out of memory");
		return NULL;
	}
	r->r.ops = &s3_reader_ops;
	r->st = st;
	r->chunk = st->conf.part_size;
	atomic_init(&r->cancel, false);
	atomic_init(&r->consumer_waits, false);
	if (pthread_mutex_init(&r->mu, NULL) != 0) {
		free(r);
		err_set("out of memory");
		return NULL;
	}
	if (pthread_cond_init(&r->cv, NULL) != 0) {
		pthread_mutex_destroy(&r->mu);
		free(r);
		err_set("out of memory");
		return NULL;
	}
	r->key = s3_full_key(st, key);
	int rc = r->key ? s3_head(st, r->key, &r->size, r->etag, sizeof(r->etag)) : -1;
	if (rc == 1)
		err_set("%s: no such object", s3_url(st, r->key));
	if (rc != 0 || start_fetchers(r) < 0) {
		r_close(&r->r);
		return NULL;
	}
	if (size)
		*size = r->size;
	return &r->r;
}
