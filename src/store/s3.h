/* Object-storage backend (s3://bucket/prefix, gs://bucket/prefix): the
 * pieces shared by its files.
 *
 *   s3.c           store ops: open, put, get, list, remove, probe, close
 *   s3_config.c    location parsing; credentials, region, endpoint, tuning
 *   s3_http.c      one signed request with retries (libcurl easy handles)
 *   s3_upload.c    streaming multipart-upload writer
 *   s3_download.c  prefetching ranged-GET reader with resume
 *   sigv4.c        AWS Signature Version 4
 */
#ifndef CRSTREAM_STORE_S3_H
#define CRSTREAM_STORE_S3_H

#include "store/s3_str.h"
#include "store/sigv4.h"
#include "store/store.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

extern const struct store_ops s3_store_ops;
extern const struct store_ops gs_store_ops;

#define S3_MIN_PART (5ULL << 20)		/* S3: every part but the last */
#define S3_MAX_PART (5ULL << 30)
#define S3_MAX_PARTS 10000
#define S3_DEFAULT_PART (8ULL << 20)
#define S3_DEFAULT_IN_FLIGHT 4
/* Part n (1-based) is part_size * (1 + (n - 1) / S3_PART_GROW_EVERY): with
 * 8 MiB, parts 1-250 are 8 MiB, 251-500 16 MiB, ... 10,000 parts hold
 * 1.56 TiB; 1 TiB needs about 8,100 of them. */
#define S3_PART_GROW_EVERY 250

struct s3_conf {
	bool gcs;		/* gs:// */
	char *scheme;		/* "s3" or "gs", for messages */
	char *bucket;
	char *prefix;		/* no leading or trailing '/'; "" for none */
	char *access_key;
	char *secret_key;
	char *session_token;	/* NULL if none */
	const char *cred_source; /* "environment", "config", "profile NAME" */
	char *region;
	char *endpoint;		/* "https://host[:port]" as given, for reports */
	char *host;		/* "host[:port]", default port dropped */
	bool https;
	bool path_style;
	uint64_t part_size;
	unsigned parts_in_flight;
	long timeout_s;		/* stall timeout of a transfer */
	long request_timeout_s;	/* deadline of a request, retries included */
	long connect_timeout_s;
	unsigned retries;	/* after the first attempt */
};

/* Parses the location and resolves everything (see s3_config.c for the
 * order of sources). */
int s3_conf_load(struct s3_conf *c, const char *location, const struct store_options *opt);
void s3_conf_free(struct s3_conf *c);
/* Part size for part number n (1-based) under the growth rule. */
uint64_t s3_part_size_for(const struct s3_conf *c, unsigned n);

/* Counters, for tests and the probe report. */
struct s3_stats {
	atomic_uint_fast64_t requests;	/* attempts sent */
	atomic_uint_fast64_t retries;	/* attempts that were retries */
	atomic_uint_fast64_t resumes;	/* ranged GETs resumed mid-range */
};

struct s3_store {
	struct store base;
	struct s3_conf conf;
	struct s3_stats stats;
	pthread_mutex_t lock;
	CURL *idle;		/* one cached handle for store-level ops */
};

/* Full object key in the bucket: "prefix/key" (or key when no prefix);
 * malloc'd or NULL (error set). */
char *s3_full_key(const struct s3_store *st, const char *key);

/* A request. The path is the bucket (key NULL) or an object. */
struct s3_req {
	const char *method;	/* "GET", "PUT", "POST", "DELETE", "HEAD" */
	const char *key;	/* full key in the bucket, or NULL */
	const struct sigv4_param *query;
	size_t nquery;
	const void *body;	/* request body (PUT/POST), may be NULL */
	size_t body_len;
	char range[64];		/* "bytes=N-M" or "" */
	const char *what;	/* for messages: "PUT part 3", "GET", ... */
	/* Streaming receive of a 2xx body; NULL collects it in the response.
	 * Returns false to stop (then *sink_err names why). */
	bool (*sink)(void *arg, const void *p, size_t n);
	void *sink_arg;
	/* Called before each retry, e.g. to move the range past bytes
	 * already received. */
	void (*before_retry)(void *arg, struct s3_req *rq);
	/* Set from another thread to stop the transfer (abort/close). */
	const atomic_bool *cancel;
	/* Status codes that are answers, not errors (e.g. 404 for get). */
	long ok_status[2];
	/* Retry at least this often whatever s3.retries says (cleanup). */
	unsigned min_retries;
	/* Most bytes of a body collected in the response (no sink); 0: a
	 * default that any listing page fits. */
	size_t body_max;
};

struct s3_resp {
	long status;
	struct sbuf body;	/* error bodies, or the body without a sink */
	char etag[128];
	char content_range[96];
	uint64_t content_length;
	bool has_length;
	/* Set when an attempt failed after it may have reached the server
	 * (sent and its answer lost, or answered 5xx): a request that failed
	 * may still have been carried out, one that succeeded may have been
	 * carried out twice. */
	bool maybe_done;
};

/* Performs rq on handle h (NULL: the store's cached one) with retries and
 * backoff. Returns 0 on a 2xx or an ok_status (resp->status tells which),
 * -1 otherwise with a message "s3://bucket/key: WHAT: 403 Code: Message".
 * resp must be zeroed by the caller and freed with s3_resp_free(). */
int s3_perform(struct s3_store *st, CURL *h, struct s3_req *rq, struct s3_resp *resp);
void s3_resp_free(struct s3_resp *r);
/* Takes one response header line as libcurl hands it over (CRLF included,
 * not NUL-terminated) into resp: a status line starts a new response
 * (status, and its reason phrase into reason), ETag, Content-Range and
 * Content-Length are kept, other headers ignored. */
void s3_resp_header(struct s3_resp *resp, char *reason, size_t reason_size, const char *line,
		    size_t len);

CURL *s3_handle_new(void);
/* The store's cached handle (or a new one) and its return. */
CURL *s3_handle_get(struct s3_store *st);
void s3_handle_put(struct s3_store *st, CURL *h);

/* "s3://bucket/full/key" for messages; static per thread. */
const char *s3_url(const struct s3_store *st, const char *full_key);

/* Upload and download (s3_upload.c, s3_download.c). */
struct writer *s3_writer_new(struct s3_store *st, const char *key);
struct reader *s3_reader_new(struct s3_store *st, const char *key, uint64_t *size);
/* HEAD: size and ETag; returns 0, 1 if missing, -1. */
int s3_head(struct s3_store *st, const char *full_key, uint64_t *size, char *etag, size_t etag_size);

/* Multipart uploads in progress under the store's prefix + key_prefix
 * (ListMultipartUploads); fn gets full keys. For tests and cleanup. */
int s3_list_uploads(struct store *s, const char *key_prefix,
		    int (*fn)(const char *key, const char *upload_id, void *arg), void *arg);
/* AbortMultipartUpload by id (full key). */
int s3_abort_upload(struct s3_store *st, const char *full_key, const char *upload_id);
/* Aborts every upload in progress for exactly this full key: after a
 * create multipart upload whose answer was lost, the server may hold one
 * whose id we never learned. Returns how many, or -1. */
int s3_abort_uploads_of(struct s3_store *st, const char *full_key);
const struct s3_stats *s3_store_stats(const struct store *s);

#endif
