/* Streaming upload: a writer that turns an object of unknown length into
 * a multipart upload while it is being written.
 *
 * write() copies into the part being filled. A full part goes to a queue
 * served by parts_in_flight - 1 worker threads, each with its own curl
 * handle, so several UploadPart requests run while the caller keeps
 * writing. Memory per stream: the part being filled plus the parts queued
 * or uploading stay within max(part_size * parts_in_flight, 2 * current
 * part size); write() blocks only when that budget is used up. The second
 * term matters only once parts have grown past half the budget (objects
 * over ~5.9 GiB at the defaults): streaming needs one part filling while
 * one uploads, and no part can be sent before it is complete, because
 * S3 wants its length up front and a retry needs its bytes.
 *
 * Part sizes grow (s3_part_size_for) so 10,000 parts hold over 1 TiB.
 * An object smaller than one part is sent as one PutObject at close().
 * Any failure, and abort(), aborts the multipart upload. */
#include "store/s3.h"
#include "util/bigbuf.h"
#include "util/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIRST_BUF (256 << 10)	/* part 1 grows from here: small objects stay small */

struct part {
	struct part *next;
	unsigned char *data;	/* malloc'd for part 1, which grows; else mapped */
	size_t len;
	size_t cap;
	unsigned number;
};

struct s3_writer {
	struct writer w;
	struct s3_store *st;
	char *key;		/* full key in the bucket */
	struct part *cur;	/* being filled, or NULL */
	unsigned next_number;	/* number of the next part to fill */
	uint64_t total;
	char *upload_id;	/* set once the multipart upload exists */
	bool create_unsure;	/* an attempt to create it may have made another */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct part *qhead, *qtail;
	/* Uploaded parts whose buffers wait for reuse: a fresh 8 MiB buffer
	 * per part cost a page fault per 4 KiB (util/bigbuf.h). */
	struct part *spare;
	uint64_t mem_inflight;	/* bytes of parts queued or uploading */
	unsigned busy;		/* parts queued or uploading */
	bool stop;
	bool failed;
	char err[ERR_MAX];
	atomic_bool cancel;	/* aborts transfers in progress */
	pthread_t *threads;
	unsigned nthreads;
	char **etags;		/* etags[n - 1] for part n */
	unsigned nparts;	/* parts submitted */
};

static void part_free(struct part *p)
{
	if (p) {
		if (p->number == 1)
			free(p->data);
		else
			bigbuf_unmap(p->data, p->cap);
		free(p);
	}
}

/* Keeps an uploaded part's buffer for a later part (mu held). */
static void part_recycle(struct s3_writer *w, struct part *p)
{
	if (p->number == 1) {
		part_free(p);
		return;
	}
	p->next = w->spare;
	w->spare = p;
}

static uint64_t mem_limit(const struct s3_writer *w, uint64_t target)
{
	uint64_t budget = w->st->conf.part_size * w->st->conf.parts_in_flight;
	return budget > 2 * target ? budget : 2 * target;
}

/* Records the first failure; the caller holds mu. */
static void fail_locked(struct s3_writer *w, const char *msg)
{
	if (!w->failed) {
		w->failed = true;
		snprintf(w->err, sizeof(w->err), "%s", msg);
	}
	atomic_store(&w->cancel, true);
	pthread_cond_broadcast(&w->cv);
}

static int upload_part(struct s3_writer *w, CURL *h, struct part *p, char **etag)
{
	char num[16], what[32];
	snprintf(num, sizeof(num), "%u", p->number);
	snprintf(what, sizeof(what), "PUT part %u", p->number);
	struct sigv4_param q[] = {{"partNumber", num}, {"uploadId", w->upload_id}};
	struct s3_req rq = {.method = "PUT", .key = w->key, .query = q, .nquery = 2,
			    .body = p->data, .body_len = p->len, .what = what, .cancel = &w->cancel};
	struct s3_resp resp = {0};
	int rc = s3_perform(w->st, h, &rq, &resp);
	/* The ETag is an opaque token (not an MD5 on GCS or for SSE-KMS):
	 * kept verbatim for CompleteMultipartUpload, never checked. */
	if (rc == 0 && !resp.etag[0])
		rc = err_set("%s: %s: no ETag in the answer", s3_url(w->st, w->key), what);
	if (rc == 0 && !(*etag = strdup(resp.etag)))
		rc = err_set("out of memory");
	s3_resp_free(&resp);
	return rc;
}

static void *worker(void *arg)
{
	struct s3_writer *w = arg;
	CURL *h = s3_handle_new();
	pthread_mutex_lock(&w->mu);
	if (!h)
		fail_locked(w, err_msg());
	for (;;) {
		while (!w->qhead && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		struct part *p = w->qhead;
		if (!p)
			break;
		w->qhead = p->next;
		if (!w->qhead)
			w->qtail = NULL;
		char *etag = NULL;
		if (!w->failed) {
			pthread_mutex_unlock(&w->mu);
			int rc = upload_part(w, h, p, &etag);
			pthread_mutex_lock(&w->mu);
			if (rc < 0)
				fail_locked(w, err_msg());
			else
				w->etags[p->number - 1] = etag;
		}
		w->mem_inflight -= p->cap;
		w->busy--;
		part_recycle(w, p);
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	if (h)
		curl_easy_cleanup(h);
	return NULL;
}

static int start_multipart(struct s3_writer *w)
{
	struct sigv4_param q[] = {{"uploads", NULL}};
	struct s3_req rq = {.method = "POST", .key = w->key, .query = q, .nquery = 1,
			    .what = "create multipart upload"};
	struct s3_resp resp = {0};
	int rc = s3_perform(w->st, NULL, &rq, &resp);
	w->create_unsure = resp.maybe_done;
	if (rc == 0) {
		struct xml_span all = {resp.body.s ? resp.body.s : "", resp.body.len};
		w->upload_id = xml_text(all, "UploadId", NULL);
		if (!w->upload_id || !*w->upload_id)
			rc = err_set("%s: create multipart upload: no UploadId in the answer",
				     s3_url(w->st, w->key));
	}
	s3_resp_free(&resp);
	if (rc < 0)
		return -1;
	w->etags = calloc(S3_MAX_PARTS, sizeof(*w->etags));
	w->nthreads = w->st->conf.parts_in_flight - 1;
	w->threads = calloc(w->nthreads, sizeof(*w->threads));
	if (!w->etags || !w->threads)
		return err_set("out of memory");
	for (unsigned i = 0; i < w->nthreads; i++) {
		int e = pthread_create(&w->threads[i], NULL, worker, w);
		if (e) {
			w->nthreads = i;
			errno = e;
			return err_sys("%s: starting upload thread", s3_url(w->st, w->key));
		}
	}
	return 0;
}

static int submit(struct s3_writer *w, struct part *p)
{
	if (p->number > S3_MAX_PARTS) {
		part_free(p);
		return err_set("%s: object exceeds %d parts", s3_url(w->st, w->key), S3_MAX_PARTS);
	}
	if (!w->upload_id && start_multipart(w) < 0) {
		part_free(p);
		return -1;
	}
	pthread_mutex_lock(&w->mu);
	p->next = NULL;
	if (w->qtail)
		w->qtail->next = p;
	else
		w->qhead = p;
	w->qtail = p;
	w->busy++;
	w->mem_inflight += p->cap;
	w->nparts = p->number;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

/* The next part's buffer; waits while the memory budget is used up. */
static struct part *part_new(struct s3_writer *w)
{
	unsigned n = w->next_number;
	uint64_t target = s3_part_size_for(&w->st->conf, n);
	pthread_mutex_lock(&w->mu);
	while (!w->failed && w->busy && w->mem_inflight + target > mem_limit(w, target))
		pthread_cond_wait(&w->cv, &w->mu);
	bool failed = w->failed;
	/* A spare buffer of the size this part needs, else a new one. */
	struct part *p = NULL;
	while (n > 1 && !p && w->spare) {
		p = w->spare;
		w->spare = p->next;
		if (p->cap != target) {
			part_free(p);
			p = NULL;
		}
	}
	pthread_mutex_unlock(&w->mu);
	if (failed) {
		part_free(p);
		err_set("%s", w->err);
		return NULL;
	}
	if (p) {
		p->len = 0;
		p->next = NULL;
		p->number = n;
		w->next_number++;
		return p;
	}
	p = calloc(1, sizeof(*p));
	if (p) {
		p->number = n;
		p->cap = n == 1 && target > FIRST_BUF ? FIRST_BUF : target;
		p->data = n == 1 ? malloc(p->cap) : bigbuf_map(p->cap);
	}
	if (!p || !p->data) {
		part_free(p);
		err_set("out of memory");
		return NULL;
	}
	p->number = n;
	w->next_number++;
	return p;
}

static int w_write(struct writer *wr, const void *buf, size_t len)
{
	struct s3_writer *w = (struct s3_writer *)wr;
	const unsigned char *src = buf;
	while (len) {
		if (!w->cur && !(w->cur = part_new(w)))
			return -1;
		struct part *p = w->cur;
		uint64_t target = s3_part_size_for(&w->st->conf, p->number);
		if (p->len == p->cap && p->cap < target) {	/* part 1 grows */
			size_t cap = p->cap * 2 < target ? p->cap * 2 : (size_t)target;
			unsigned char *d = realloc(p->data, cap);
			if (!d)
				return err_set("out of memory");
			p->data = d;
			p->cap = cap;
		}
		size_t n = p->cap - p->len < len ? p->cap - p->len : len;
		memcpy(p->data + p->len, src, n);
		p->len += n;
		w->total += n;
		src += n;
		len -= n;
		if (p->len == target) {
			w->cur = NULL;
			if (submit(w, p) < 0)
				return -1;
		}
	}
	return 0;
}

/* Waits for the queue to drain, then stops and joins the workers. */
static void stop_workers(struct s3_writer *w, bool drain)
{
	pthread_mutex_lock(&w->mu);
	while (drain && w->busy && !w->failed)
		pthread_cond_wait(&w->cv, &w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (unsigned i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	w->nthreads = 0;
}

static void writer_free(struct s3_writer *w)
{
	part_free(w->cur);
	while (w->qhead) {
		struct part *p = w->qhead;
		w->qhead = p->next;
		part_free(p);
	}
	while (w->spare) {
		struct part *p = w->spare;
		w->spare = p->next;
		part_free(p);
	}
	if (w->etags)
		for (unsigned i = 0; i < S3_MAX_PARTS; i++)
			free(w->etags[i]);
	free(w->etags);
	free(w->threads);
	free(w->upload_id);
	free(w->key);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* An attempt to create the multipart upload whose answer was lost may
 * have made one whose id we never learned (CreateMultipartUpload is not
 * idempotent): once ours is completed or aborted, any upload still in
 * progress for our key is such a leftover. */
static void abort_leftovers(struct s3_writer *w)
{
	if (w->create_unsure && s3_abort_uploads_of(w->st, w->key) < 0)
		warnx_("%s (looking for an upload a lost create answer may have left behind)",
		       err_msg());
}

/* Aborts the multipart upload, if any, and leftovers, keeping the current
 * error message (the one that explains why). */
static void abort_upload(struct s3_writer *w)
{
	if (!w->upload_id && !w->create_unsure)
		return;
	char saved[ERR_MAX];
	err_copy(saved, sizeof(saved));
	if (w->upload_id && s3_abort_upload(w->st, w->key, w->upload_id) < 0)
		warnx_("%s (upload id %s left behind)", err_msg(), w->upload_id);
	abort_leftovers(w);
	err_set("%s", saved);
}

static int put_whole(struct s3_writer *w)
{
	struct s3_req rq = {.method = "PUT", .key = w->key, .body = w->cur ? w->cur->data : NULL,
			    .body_len = w->cur ? w->cur->len : 0, .what = "PUT"};
	struct s3_resp resp = {0};
	int rc = s3_perform(w->st, NULL, &rq, &resp);
	s3_resp_free(&resp);
	return rc;
}

static char *complete_body(const struct s3_writer *w)
{
	struct sbuf b = {0};
	sbuf_adds(&b, "<CompleteMultipartUpload>");
	for (unsigned i = 0; i < w->nparts; i++) {
		sbuf_printf(&b, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
		sbuf_add_xml(&b, w->etags[i] ? w->etags[i] : "");
		sbuf_adds(&b, "</ETag></Part>");
	}
	sbuf_adds(&b, "</CompleteMultipartUpload>");
	return sbuf_take(&b);
}

/* Checks a 2xx answer to CompleteMultipartUpload: S3 documents that it
 * may answer 200 and still fail, with an <Error> document in the body
 * (possibly after whitespace it sent to keep the connection alive).
 * Returns 0, 1 to retry (InternalError, SlowDown), or -1. */
static int complete_answer(struct s3_writer *w, const struct sbuf *body)
{
	struct xml_span all = {body->s ? body->s : "", body->len};
	const char *pos = all.p;
	struct xml_span e;
	if (xml_next(&pos, all.p + all.len, "Error", &e)) {
		char *code = xml_text(e, "Code", NULL), *msg = xml_text(e, "Message", NULL);
		bool again = code && (strcmp(code, "InternalError") == 0 ||
				      strcmp(code, "SlowDown") == 0 ||
				      strcmp(code, "ServiceUnavailable") == 0);
		err_set("%s: complete multipart upload: 200 with error %s: %s",
			s3_url(w->st, w->key), code ? code : "(no code)", msg ? msg : "");
		free(code);
		free(msg);
		return again ? 1 : -1;
	}
	pos = all.p;
	if (!xml_next(&pos, all.p + all.len, "CompleteMultipartUploadResult", &e))
		return err_set("%s: complete multipart upload: no CompleteMultipartUploadResult "
			       "in the answer", s3_url(w->st, w->key));
	return 0;
}

static int complete(struct s3_writer *w)
{
	char *xml = complete_body(w);
	if (!xml)
		return -1;
	struct sigv4_param q[] = {{"uploadId", w->upload_id}};
	int rc;
	for (unsigned attempt = 0;; attempt++) {
		struct s3_req rq = {.method = "POST", .key = w->key, .query = q, .nquery = 1,
				    .body = xml, .body_len = strlen(xml),
				    .what = "complete multipart upload"};
		struct s3_resp resp = {0};
		rc = s3_perform(w->st, NULL, &rq, &resp);
		if (rc == 0)
			rc = complete_answer(w, &resp.body);
		s3_resp_free(&resp);
		if (rc <= 0 || attempt >= w->st->conf.retries)
			break;
		struct timespec ts = {0, (200L << (attempt < 2 ? attempt : 2)) * 1000000L};
		nanosleep(&ts, NULL);
	}
	free(xml);
	return rc == 0 ? 0 : -1;
}

static int w_close(struct writer *wr)
{
	struct s3_writer *w = (struct s3_writer *)wr;
	int rc = 0;
	if (!w->upload_id) {
		rc = put_whole(w);
		writer_free(w);
		return rc;
	}
	if (w->cur && w->cur->len) {
		struct part *p = w->cur;
		w->cur = NULL;
		rc = submit(w, p);
	}
	stop_workers(w, rc == 0);
	if (rc == 0 && w->failed)
		rc = err_set("%s", w->err);
	if (rc == 0)
		rc = complete(w);
	if (rc < 0)
		abort_upload(w);
	else
		abort_leftovers(w);
	writer_free(w);
	return rc;
}

static void w_abort(struct writer *wr)
{
	struct s3_writer *w = (struct s3_writer *)wr;
	atomic_store(&w->cancel, true);
	stop_workers(w, false);
	abort_upload(w);
	writer_free(w);
}

static const struct writer_ops s3_writer_ops = {
	.write = w_write,
	.close = w_close,
	.abort = w_abort,
};

struct writer *s3_writer_new(struct s3_store *st, const char *key)
{
	struct s3_writer *w = calloc(1, sizeof(*w));
	if (!w) {
		err_set("out of memory");
		return NULL;
	}
	w->w.ops = &s3_writer_ops;
	w->st = st;
	w->next_number = 1;
	atomic_init(&w->cancel, false);
	w->key = s3_full_key(st, key);
	if (!w->key || pthread_mutex_init(&w->mu, NULL) != 0) {
		free(w->key);
		free(w);
		err_set("out of memory");
		return NULL;
	}
	if (pthread_cond_init(&w->cv, NULL) != 0) {
		pthread_mutex_destroy(&w->mu);
		free(w->key);
		free(w);
		err_set("out of memory");
		return NULL;
	}
	return &w->w;
}
