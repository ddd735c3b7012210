/* The object-storage store: s3://bucket/prefix and gs://bucket/prefix.
 * Small-object ops live here; streaming writers and readers in
 * s3_upload.c / s3_download.c. */
#include "store/s3.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct s3_store *S(struct store *s)
{
	return (struct s3_store *)s;
}

char *s3_full_key(const struct s3_store *st, const char *key)
{
	struct sbuf b = {0};
	while (*key == '/')
		key++;
	if (*st->conf.prefix)
		sbuf_printf(&b, "%s/%s", st->conf.prefix, key);
	else
		sbuf_adds(&b, key);
	return sbuf_take(&b);
}

const struct s3_stats *s3_store_stats(const struct store *s)
{
	return &((const struct s3_store *)s)->stats;
}

static bool s3_handles(const char *location)
{
	return strncmp(location, "s3://", 5) == 0;
}

static bool gs_handles(const char *location)
{
	return strncmp(location, "gs://", 5) == 0;
}

static int s3_open(const char *location, const struct store_options *opt, struct store **out)
{
	*out = NULL;
	struct s3_store *st = calloc(1, sizeof(*st));
	if (!st)
		return err_set("out of memory");
	if (s3_conf_load(&st->conf, location, opt) < 0) {
		free(st);
		return -1;
	}
	st->base.ops = st->conf.gcs ? &gs_store_ops : &s3_store_ops;
	st->base.location = strdup(location);
	int prc = pthread_mutex_init(&st->lock, NULL);
	if (!st->base.location || prc != 0) {
		s3_conf_free(&st->conf);
		free(st->base.location);
		free(st);
		return err_set("out of memory");
	}
	*out = &st->base;
	return 0;
}

static void s3_close(struct store *s)
{
	struct s3_store *st = S(s);
	if (st->idle)
		curl_easy_cleanup(st->idle);
	pthread_mutex_destroy(&st->lock);
	s3_conf_free(&st->conf);
	free(st->base.location);
	free(st);
}

static int s3_put(struct store *s, const char *key, const void *buf, size_t len)
{
	struct s3_store *st = S(s);
	char *fk = s3_full_key(st, key);
	if (!fk)
		return -1;
	struct s3_req rq = {.method = "PUT", .key = fk, .body = buf, .body_len = len, .what = "PUT"};
	struct s3_resp resp = {0};
	int rc = s3_perform(st, NULL, &rq, &resp);
	s3_resp_free(&resp);
	free(fk);
	return rc;
}

static int s3_get(struct store *s, const char *key, void **buf, size_t *len)
{
	struct s3_store *st = S(s);
	*buf = NULL;
	*len = 0;
	char *fk = s3_full_key(st, key);
	if (!fk)
		return -1;
	struct s3_req rq = {.method = "GET", .key = fk, .what = "GET", .ok_status = {404},
			    .body_max = STORE_SMALL_MAX};
	struct s3_resp resp = {0};
	int rc = s3_perform(st, NULL, &rq, &resp);
	if (rc == 0 && resp.status == 404) {
		rc = 1;
	} else if (rc == 0) {
		size_t n = resp.body.len;
		char *data = sbuf_take(&resp.body);
		if (!data)
			rc = err_prefix("%s: GET", s3_url(st, fk));
		*buf = data;
		*len = data ? n : 0;
	}
	s3_resp_free(&resp);
	free(fk);
	return rc;
}

static int s3_remove(struct store *s, const char *key)
{
	struct s3_store *st = S(s);
	char *fk = s3_full_key(st, key);
	if (!fk)
		return -1;
	/* S3 answers 204 either way; others may say 404 for a missing key. */
	struct s3_req rq = {.method = "DELETE", .key = fk, .what = "DELETE", .ok_status = {404}};
	struct s3_resp resp = {0};
	int rc = s3_perform(st, NULL, &rq, &resp);
	s3_resp_free(&resp);
	free(fk);
	return rc;
}

int s3_head(struct s3_store *st, const char *full_key, uint64_t *size, char *etag, size_t etag_size)
{
	struct s3_req rq = {.method = "HEAD", .key = full_key, .what = "HEAD", .ok_status = {404}};
	struct s3_resp resp = {0};
	int rc = s3_perform(st, NULL, &rq, &resp);
	if (rc == 0 && resp.status == 404) {
		rc = 1;
	} else if (rc == 0 && !resp.has_length) {
		rc = err_set("%s: HEAD: no Content-Length in the answer", s3_url(st, full_key));
	} else if (rc == 0) {
		*size = resp.content_length;
		if (etag)
			snprintf(etag, etag_size, "%s", resp.etag);
	}
	s3_resp_free(&resp);
	return rc;
}

/* "2009-10-12T17:50:30.000Z" -> seconds since the epoch (0 if unparsable). */
static int64_t parse_iso8601(const char *s)
{
	struct tm tm = {0};
	if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			 &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm);
}

struct list_ctx {
	struct s3_store *st;
	const char *asked;	/* the full prefix listed: every key starts with it */
	size_t strip;		/* length of "prefix/" to drop from keys */
	store_list_fn fn;
	void *arg;
};

/* Calls fn for each <Contents> of one ListObjectsV2 page; returns fn's
 * non-zero value, 0, or -1. */
static int list_page(struct list_ctx *lc, const struct sbuf *body)
{
	const char *pos = body->s ? body->s : "", *end = pos + body->len;
	struct xml_span c;
	while (xml_next(&pos, end, "Contents", &c)) {
		bool oom = false;
		char *key = xml_text(c, "Key", &oom);
		char *size = xml_text(c, "Size", &oom);
		char *mtime = xml_text(c, "LastModified", &oom);
		int rc = 0;
		if (!key || !size) {
			rc = err_set("%s: LIST: malformed <Contents> in the answer",
				     s3_url(lc->st, NULL));
		} else if (strncmp(key, lc->asked, strlen(lc->asked)) != 0) {
			/* Whatever the server says, nothing outside the location
			 * is ours to read or delete. */
			rc = err_set("%s: LIST: the answer has key \"%s\", outside the prefix "
				     "asked for", s3_url(lc->st, lc->asked), key);
		} else if (strlen(key) >= lc->strip) {
			struct store_entry e = {key + lc->strip, strtoull(size, NULL, 10),
						parse_iso8601(mtime)};
			rc = lc->fn(&e, lc->arg);
		}
		free(key);
		free(size);
		free(mtime);
		if (rc)
			return rc;
	}
	return 0;
}

static int s3_list(struct store *s, const char *prefix, store_list_fn fn, void *arg)
{
	struct s3_store *st = S(s);
	char *fp = s3_full_key(st, prefix ? prefix : "");
	if (!fp)
		return -1;
	struct list_ctx lc = {st, fp, *st->conf.prefix ? strlen(st->conf.prefix) + 1 : 0, fn, arg};
	char *token = NULL;
	int rc = 0;
	do {
		struct sigv4_param q[3] = {{"list-type", "2"}, {"prefix", fp}};
		size_t nq = 2;
		if (token)
			q[nq++] = (struct sigv4_param){"continuation-token", token};
		struct s3_req rq = {.method = "GET", .query = q, .nquery = nq, .what = "LIST"};
		struct s3_resp resp = {0};
		rc = s3_perform(st, NULL, &rq, &resp);
		if (rc == 0)
			rc = list_page(&lc, &resp.body);
		struct xml_span all = {resp.body.s ? resp.body.s : "", resp.body.len};
		char *trunc = rc == 0 ? xml_text(all, "IsTruncated", NULL) : NULL;
		free(token);
		token = trunc && strcmp(trunc, "true") == 0
				? xml_text(all, "NextContinuationToken", NULL) : NULL;
		if (rc == 0 && trunc && strcmp(trunc, "true") == 0 && !token)
			rc = err_set("%s: LIST: truncated answer without a continuation token",
				     s3_url(st, fp));
		free(trunc);
		s3_resp_free(&resp);
	} while (rc == 0 && token);
	free(token);
	free(fp);
	return rc;
}

/* An upload left behind costs storage until someone finds it: cleanup
 * keeps trying through an outage longer than the data requests do (8 tries
 * back off over about half a minute). */
#define CLEANUP_RETRIES 8

/* ListMultipartUploads under a full key prefix. */
static int list_uploads(struct s3_store *st, const char *fp, unsigned min_retries,
			int (*fn)(const char *key, const char *upload_id, void *arg), void *arg)
{
	char *km = NULL, *um = NULL;
	int rc = 0;
	bool more = true;
	while (rc == 0 && more) {
		struct sigv4_param q[4] = {{"uploads", NULL}, {"prefix", fp}};
		size_t nq = 2;
		if (km)
			q[nq++] = (struct sigv4_param){"key-marker", km};
		if (um)
			q[nq++] = (struct sigv4_param){"upload-id-marker", um};
		struct s3_req rq = {.method = "GET", .query = q, .nquery = nq, .what = "LIST uploads",
				    .min_retries = min_retries};
		struct s3_resp resp = {0};
		rc = s3_perform(st, NULL, &rq, &resp);
		const char *pos = resp.body.s ? resp.body.s : "", *end = pos + resp.body.len;
		struct xml_span u;
		while (rc == 0 && xml_next(&pos, end, "Upload", &u)) {
			char *k = xml_text(u, "Key", NULL), *id = xml_text(u, "UploadId", NULL);
			rc = k && id ? fn(k, id, arg) : err_set("%s: LIST uploads: malformed <Upload>",
								s3_url(st, fp));
			free(k);
			free(id);
		}
		struct xml_span all = {resp.body.s ? resp.body.s : "", resp.body.len};
		char *t = rc == 0 ? xml_text(all, "IsTruncated", NULL) : NULL;
		more = t && strcmp(t, "true") == 0;
		free(t);
		free(km);
		free(um);
		km = more ? xml_text(all, "NextKeyMarker", NULL) : NULL;
		um = more ? xml_text(all, "NextUploadIdMarker", NULL) : NULL;
		if (more && !km)
			more = false;
		s3_resp_free(&resp);
	}
	free(km);
	free(um);
	return rc;
}

int s3_list_uploads(struct store *s, const char *key_prefix,
		    int (*fn)(const char *key, const char *upload_id, void *arg), void *arg)
{
	struct s3_store *st = S(s);
	char *fp = s3_full_key(st, key_prefix ? key_prefix : "");
	int rc = fp ? list_uploads(st, fp, 0, fn, arg) : -1;
	free(fp);
	return rc;
}

int s3_abort_upload(struct s3_store *st, const char *full_key, const char *upload_id)
{
	struct sigv4_param q[] = {{"uploadId", upload_id}};
	struct s3_req rq = {.method = "DELETE", .key = full_key, .query = q, .nquery = 1,
			    .what = "abort multipart upload", .ok_status = {404},
			    .min_retries = CLEANUP_RETRIES};
	struct s3_resp resp = {0};
	int rc = s3_perform(st, NULL, &rq, &resp);
	s3_resp_free(&resp);
	return rc;
}

struct uploads_of {
	struct s3_store *st;
	const char *key;
	int n;
};

static int abort_if_ours(const char *key, const char *upload_id, void *arg)
{
	struct uploads_of *u = arg;
	if (strcmp(key, u->key) != 0)	/* "img-1" also lists "img-10" */
		return 0;
	if (s3_abort_upload(u->st, key, upload_id) < 0)
		return -1;
	u->n++;
	return 0;
}

int s3_abort_uploads_of(struct s3_store *st, const char *full_key)
{
	struct uploads_of u = {st, full_key, 0};
	int rc = list_uploads(st, full_key, CLEANUP_RETRIES, abort_if_ours, &u);
	return rc < 0 ? -1 : u.n;
}

/* Reachability, credentials and the bucket (a one-key LIST under the
 * prefix: unlike HEAD bucket, whose answer has no body, a refusal names
 * its reason, SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied or
 * NoSuchBucket; both need the same permission), then a write and a
 * delete. */
static int s3_probe(struct store *s, char *report, size_t size)
{
	struct s3_store *st = S(s);
	const struct s3_conf *c = &st->conf;
	char key[128], host[256];
	if (size)
		report[0] = '\0';
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(key, sizeof(key), ".crstream-probe-%.60s-%ld-%ld", host, (long)getpid(),
		 (long)time(NULL));
	char *fp = s3_full_key(st, "");
	if (!fp)
		return -1;
	struct sigv4_param q[] = {{"list-type", "2"}, {"max-keys", "1"}, {"prefix", fp}};
	struct s3_req rq = {.method = "GET", .query = q, .nquery = 3, .what = "LIST"};
	struct s3_resp resp = {0};
	int rc = s3_perform(st, NULL, &rq, &resp);
	s3_resp_free(&resp);
	free(fp);
	if (rc < 0)
		return -1;
	if (s3_put(s, key, "probe\n", 6) < 0 || s3_remove(s, key) < 0)
		return -1;
	snprintf(report, size, "%s at %s (%s, region %s, credentials from %s): write+delete ok",
		 s->location, c->endpoint, c->path_style ? "path-style" : "virtual-hosted",
		 c->region, c->cred_source);
	return 0;
}

static struct writer *s3_create(struct store *s, const char *key)
{
	return s3_writer_new(S(s), key);
}

static struct reader *s3_open_read(struct store *s, const char *key, uint64_t *size)
{
	return s3_reader_new(S(s), key, size);
}

#define S3_OPS(name, scheme_str, handles_fn)                                            \
	const struct store_ops name = {                                                \
		.scheme = scheme_str,                                                  \
		.handles = handles_fn,                                                 \
		.open = s3_open,                                                       \
		.create = s3_create,                                                   \
		.open_read = s3_open_read,                                             \
		.put = s3_put,                                                         \
		.get = s3_get,                                                         \
		.list = s3_list,                                                       \
		.remove = s3_remove,                                                   \
		.probe = s3_probe,                                                     \
		.close = s3_close,                                                     \
	}

S3_OPS(s3_store_ops, "s3", s3_handles);
S3_OPS(gs_store_ops, "gs", gs_handles);
