/* One S3 request: URL and SigV4 headers built here, sent with a libcurl
 * easy handle, retried with exponential backoff and jitter on 5xx, 429,
 * SlowDown/RequestTimeout, timeouts and dropped connections. 4xx answers
 * (bad credentials, permissions, missing bucket) are final: retrying
 * cannot fix them and only delays the error. */
#include "store/s3.h"
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ERR_BODY_MAX (64 << 10)	/* error documents are small */
/* Bodies collected whole (listings, small objects): a page of 1000 keys is
 * a few hundred KiB; a server sending more is not answering what we asked. */
#define COLLECT_MAX ((size_t)16 << 20)
#define BACKOFF_BASE_MS 200
#define BACKOFF_CAP_MS 20000
#define TRANSFER_BUF (512L << 10)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURL *s3_handle_new(void)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		err_set("libcurl initialisation failed: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	CURL *h = curl_easy_init();
	if (!h)
		err_set("curl_easy_init failed");
	return h;
}

CURL *s3_handle_get(struct s3_store *st)
{
	pthread_mutex_lock(&st->lock);
	CURL *h = st->idle;
	st->idle = NULL;
	pthread_mutex_unlock(&st->lock);
	return h ? h : s3_handle_new();
}

void s3_handle_put(struct s3_store *st, CURL *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&st->lock);
	if (!st->idle) {
		st->idle = h;
		h = NULL;
	}
	pthread_mutex_unlock(&st->lock);
	if (h)
		curl_easy_cleanup(h);
}

const char *s3_url(const struct s3_store *st, const char *full_key)
{
	static _Thread_local char buf[1200];
	snprintf(buf, sizeof(buf), "%s://%s%s%s", st->conf.scheme, st->conf.bucket,
		 full_key && *full_key ? "/" : "", full_key ? full_key : "");
	return buf;
}

void s3_resp_free(struct s3_resp *r)
{
	sbuf_free(&r->body);
}

/* State of one attempt, seen by the curl callbacks. */
struct attempt {
	struct s3_req *rq;
	struct s3_resp *resp;
	const unsigned char *body;
	size_t body_off;
	char reason[64];	/* status line's reason phrase */
	bool sink_stopped;
	bool too_big;		/* a collected body went over its limit */
	long timeout_ms;	/* what is left of the request's deadline */
};

void s3_resp_header(struct s3_resp *resp, char *reason, size_t reason_size, const char *p,
		    size_t len)
{
	char line[512];
	size_t l = len < sizeof(line) - 1 ? len : sizeof(line) - 1;
	memcpy(line, p, l);
	line[l] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* A new response (after "100 Continue" or a retry): start over. */
		char *sp = strchr(line, ' ');
		resp->status = sp ? strtol(sp + 1, &sp, 10) : 0;
		snprintf(reason, reason_size, "%s", sp && *sp == ' ' ? sp + 1 : "");
		resp->etag[0] = resp->content_range[0] = '\0';
		resp->has_length = false;
		return;
	}
	char *colon = strchr(line, ':');
	if (!colon)
		return;
	*colon = '\0';
	char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strcasecmp(line, "ETag") == 0) {
		snprintf(resp->etag, sizeof(resp->etag), "%s", v);
	} else if (strcasecmp(line, "Content-Range") == 0) {
		snprintf(resp->content_range, sizeof(resp->content_range), "%s", v);
	} else if (strcasecmp(line, "Content-Length") == 0) {
		resp->content_length = strtoull(v, NULL, 10);
		resp->has_length = true;
	}
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	size_t len = size * n;
	s3_resp_header(a->resp, a->reason, sizeof(a->reason), p, len);
	return len;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	size_t len = size * n;
	long st = a->resp->status;
	if (a->rq->sink && st >= 200 && st < 300) {
		if (!a->rq->sink(a->rq->sink_arg, p, len)) {
			a->sink_stopped = true;
			return 0;
		}
		return len;
	}
	bool is_err = st < 200 || st >= 300;
	if (is_err && a->resp->body.len + len > ERR_BODY_MAX)
		return len;	/* keep the start of an oversized error body */
	size_t max = a->rq->body_max ? a->rq->body_max : COLLECT_MAX;
	if (!is_err && len > max - a->resp->body.len) {
		a->too_big = true;
		return 0;
	}
	sbuf_add(&a->resp->body, p, len);
	return a->resp->body.oom ? 0 : len;
}

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
	struct attempt *a = arg;
	size_t left = a->rq->body_len - a->body_off;
	size_t len = size * n < left ? size * n : left;
	if (len)
		memcpy(p, a->body + a->body_off, len);
	a->body_off += len;
	return len;
}

/* libcurl's sockets are not close-on-exec: CRIU, which crstream starts
 * while connections are open, would inherit them (and keep them open for
 * its lifetime). */
static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
	(void)arg, (void)purpose;
	return socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
}

/* libcurl replays a request whose kept-alive connection turns out to be
 * dead (reset before any answer), which needs the body from the start:
 * without this it fails with CURLE_SEND_FAIL_REWIND, not retried. */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct attempt *a = arg;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > a->rq->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	a->body_off = (size_t)offset;
	return CURL_SEEKFUNC_OK;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	const struct attempt *a = arg;
	return a->rq->cancel && atomic_load(a->rq->cancel) ? 1 : 0;
}

/* "/bucket/enc/key" or "/enc/key" (virtual-hosted); also the canonical
 * URI: the path is encoded exactly once and sent as is. */
static char *build_path(const struct s3_store *st, const char *key)
{
	struct sbuf b = {0};
	if (st->conf.path_style)
		sbuf_printf(&b, "/%s", st->conf.bucket);
	if (key) {
		char *k = sigv4_uri_encode(key, strlen(key), true);
		if (!k) {
			sbuf_free(&b);
			return NULL;
		}
		sbuf_printf(&b, "/%s", k);
		free(k);
	} else if (!st->conf.path_style) {
		sbuf_adds(&b, "/");
	}
	return sbuf_take(&b);
}

struct signed_req {
	char *url;
	struct curl_slist *headers;
};

static void signed_req_free(struct signed_req *s)
{
	free(s->url);
	curl_slist_free_all(s->headers);
	memset(s, 0, sizeof(*s));
}

static int add_header(struct curl_slist **l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int add_header(struct curl_slist **l, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return err_set("request header too long");
	struct curl_slist *nl = curl_slist_append(*l, line);
	if (!nl)
		return err_set("out of memory");
	*l = nl;
	return 0;
}

/* URL and headers for one attempt, signed now (x-amz-date is per attempt). */
static int sign_request(struct s3_store *st, const struct s3_req *rq, const char *payload_hash,
			struct signed_req *out)
{
	const struct s3_conf *c = &st->conf;
	char host[512], date[SIGV4_AMZ_DATE], auth[1024];
	int rc = -1;
	memset(out, 0, sizeof(*out));
	if (c->path_style)
		snprintf(host, sizeof(host), "%s", c->host);
	else
		snprintf(host, sizeof(host), "%s.%s", c->bucket, c->host);
	sigv4_amz_date((long long)time(NULL), date);
	char *path = build_path(st, rq->key);
	char *query = path ? sigv4_canonical_query(rq->query, rq->nquery) : NULL;
	if (!query)
		goto out;
	struct sigv4_header h[6];
	size_t nh = 0;
	h[nh++] = (struct sigv4_header){"host", host};
	h[nh++] = (struct sigv4_header){"x-amz-content-sha256", payload_hash};
	h[nh++] = (struct sigv4_header){"x-amz-date", date};
	if (c->session_token)
		h[nh++] = (struct sigv4_header){"x-amz-security-token", c->session_token};
	if (rq->range[0])
		h[nh++] = (struct sigv4_header){"range", rq->range};
	const struct sigv4_key key = {c->access_key, c->secret_key, c->region, "s3"};
	if (sigv4_authorization(&key, rq->method, path, query, h, nh, payload_hash, date, auth,
				sizeof(auth)) < 0)
		goto out;
	struct sbuf url = {0};
	sbuf_printf(&url, "%s://%s%s%s%s", c->https ? "https" : "http", host, path,
		    *query ? "?" : "", query);
	out->url = sbuf_take(&url);
	if (!out->url)
		goto out;
	for (size_t i = 0; i < nh; i++)
		if (add_header(&out->headers, "%s: %s", h[i].name, h[i].value) < 0)
			goto out;
	/* No "Expect: 100-continue" round trip; a default form content type
	 * would be wrong for our XML bodies. */
	if (add_header(&out->headers, "Authorization: %s", auth) < 0 ||
	    add_header(&out->headers, "Expect:") < 0 ||
	    add_header(&out->headers, "Content-Type:%s",
		       strcmp(rq->method, "POST") == 0 && rq->body_len ? " application/xml" : "") < 0)
		goto out;
	rc = 0;
out:
	explicit_bzero(auth, sizeof(auth));
	if (rc < 0)
		signed_req_free(out);
	free(path);
	free(query);
	return rc;
}

static CURLcode set_options(CURL *h, const struct s3_store *st, struct attempt *a,
			    const struct signed_req *sr, char *errbuf)
{
	const struct s3_req *rq = a->rq;
	const struct s3_conf *c = &st->conf;
	CURLcode e = CURLE_OK;
#define SET(opt, val)                                        \
	do {                                                 \
		if (e == CURLE_OK)                           \
			e = curl_easy_setopt(h, opt, val);   \
	} while (0)
	curl_easy_reset(h);
	SET(CURLOPT_URL, sr->url);
	SET(CURLOPT_HTTPHEADER, sr->headers);
	SET(CURLOPT_ERRORBUFFER, errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	/* Keys may hold "." and ".." segments: send the path as encoded. */
	SET(CURLOPT_PATH_AS_IS, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
	/* The request's deadline: a server trickling a byte now and then
	 * beats the low-speed limit below, not this. */
	SET(CURLOPT_TIMEOUT_MS, a->timeout_ms);
	/* A transfer stalled (< 1 byte/s) for timeout_s fails and is retried. */
	SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
	SET(CURLOPT_LOW_SPEED_TIME, c->timeout_s);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, a);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, a);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, a);
	/* Bodies of megabytes: libcurl's default buffers (16 KiB received,
	 * 64 KiB sent per call) cost a callback and a syscall every few
	 * dozen microseconds at link speed; 512 KiB is libcurl 7.88's most for
	 * both. */
	SET(CURLOPT_BUFFERSIZE, TRANSFER_BUF);
	if (strcmp(rq->method, "PUT") == 0) {
		SET(CURLOPT_UPLOAD_BUFFERSIZE, TRANSFER_BUF);
		SET(CURLOPT_UPLOAD, 1L);
		SET(CURLOPT_READFUNCTION, on_read);
		SET(CURLOPT_READDATA, a);
		SET(CURLOPT_SEEKFUNCTION, on_seek);
		SET(CURLOPT_SEEKDATA, a);
		SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->body_len);
	} else if (strcmp(rq->method, "POST") == 0) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDS, rq->body ? (const char *)rq->body : "");
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
	} else if (strcmp(rq->method, "HEAD") == 0) {
		SET(CURLOPT_NOBODY, 1L);
	} else if (strcmp(rq->method, "GET") != 0) {
		SET(CURLOPT_CUSTOMREQUEST, rq->method);
	}
#undef SET
	return e;
}

static bool retryable_curl(CURLcode e)
{
	switch (e) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool retryable_status(long st, const char *code)
{
	if ((st >= 500 && st != 501) || st == 429 || st == 408)
		return true;
	return code && (strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
			strcmp(code, "InternalError") == 0 || strcmp(code, "ServiceUnavailable") == 0);
}

/* Sleeps a random time in [d/2, d), d = base * 2^attempt capped; wakes
 * early when cancelled. */
static void backoff(unsigned attempt, const atomic_bool *cancel)
{
	static _Thread_local unsigned seed;
	if (!seed)
		seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)&seed ^ (unsigned)getpid();
	long d = BACKOFF_BASE_MS;
	for (unsigned i = 0; i < attempt && d < BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	long ms = d / 2 + (long)(rand_r(&seed) % (unsigned)(d / 2 + 1));
	while (ms > 0 && !(cancel && atomic_load(cancel))) {
		long step = ms < 50 ? ms : 50;
		struct timespec ts = {0, step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/* "403 SignatureDoesNotMatch: The request signature ..." from an S3
 * error document, or the status line when there is none (HEAD). */
static void describe_status(const struct s3_resp *r, const char *reason, char *code_out,
			    size_t code_size, char *buf, size_t size)
{
	struct xml_span all = {r->body.s ? r->body.s : "", r->body.len};
	char *code = xml_text(all, "Code", NULL);
	char *msg = xml_text(all, "Message", NULL);
	snprintf(code_out, code_size, "%s", code ? code : "");
	if (code)
		snprintf(buf, size, "%ld %s: %s", r->status, code, msg ? msg : "");
	else
		snprintf(buf, size, "%ld %s", r->status, *reason ? reason : "(no error document)");
	free(code);
	free(msg);
}

static bool status_ok(const struct s3_req *rq, long st)
{
	return (st >= 200 && st < 300) || st == rq->ok_status[0] || st == rq->ok_status[1];
}

enum verdict { DONE, FAIL, RETRY };

/* Sets *maybe_done when the attempt failed after the request may have
 * reached the server (anything but a failure to connect), or the server
 * answered 5xx. */
static enum verdict one_attempt(struct s3_store *st, CURL *h, struct s3_req *rq,
				struct s3_resp *resp, const char *payload_hash, long timeout_ms,
				char *why, size_t why_size, bool *maybe_done)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct signed_req sr;
	struct attempt a = {.rq = rq, .resp = resp, .body = rq->body, .timeout_ms = timeout_ms};
	resp->status = 0;
	resp->body.len = 0;
	if (resp->body.s)
		resp->body.s[0] = '\0';
	if (sign_request(st, rq, payload_hash, &sr) < 0) {
		snprintf(why, why_size, "%s", err_msg());
		return FAIL;
	}
	CURLcode e = set_options(h, st, &a, &sr, errbuf);
	if (e == CURLE_OK) {
		atomic_fetch_add(&st->stats.requests, 1);
		e = curl_easy_perform(h);
	}
	signed_req_free(&sr);
	if (e != CURLE_OK) {
		if (e != CURLE_COULDNT_RESOLVE_HOST && e != CURLE_COULDNT_CONNECT &&
		    e != CURLE_SSL_CONNECT_ERROR)
			*maybe_done = true;
		if (a.sink_stopped)
			snprintf(why, why_size, "%s", err_msg());
		else if (a.too_big)
			snprintf(why, why_size, "the answer has more than the %zu bytes expected",
				 rq->body_max ? rq->body_max : COLLECT_MAX);
		else if (e == CURLE_ABORTED_BY_CALLBACK)
			snprintf(why, why_size, "cancelled");
		else
			snprintf(why, why_size, "%s://%s: %s", st->conf.https ? "https" : "http",
				 st->conf.host, *errbuf ? errbuf : curl_easy_strerror(e));
		return !a.sink_stopped && !a.too_big && retryable_curl(e) ? RETRY : FAIL;
	}
	if (status_ok(rq, resp->status))
		return DONE;
	if (resp->status >= 500)
		*maybe_done = true;
	char code[128];
	describe_status(resp, a.reason, code, sizeof(code), why, why_size);
	return retryable_status(resp->status, code) ? RETRY : FAIL;
}

int s3_perform(struct s3_store *st, CURL *h, struct s3_req *rq, struct s3_resp *resp)
{
	char payload_hash[SIGV4_HEX] = SIGV4_UNSIGNED_PAYLOAD;
	char why[ERR_MAX];
	bool own = !h;
	const char *url = s3_url(st, rq->key);
	char where[1200];
	snprintf(where, sizeof(where), "%s", url);
	/* Over https TLS protects the body; over plain http the signature
	 * must cover it. */
	if (!st->conf.https && sigv4_sha256_hex(rq->body ? rq->body : "", rq->body_len,
						payload_hash) < 0)
		return err_prefix("%s: %s", where, rq->what);
	if (own && !(h = s3_handle_get(st)))
		return err_prefix("%s: %s", where, rq->what);
	unsigned attempt = 0;
	unsigned retries = st->conf.retries > rq->min_retries ? st->conf.retries : rq->min_retries;
	enum verdict v;
	bool maybe_done = false;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	const long deadline_ms = st->conf.request_timeout_s * 1000;
	bool late = false;
	for (;;) {
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = deadline_ms - ((t.tv_sec - t0.tv_sec) * 1000 +
					   (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (attempt && left <= 0) {
			late = true;
			break;
		}
		v = one_attempt(st, h, rq, resp, payload_hash, left > 0 ? left : 1, why, sizeof(why),
				&maybe_done);
		if (v != RETRY || attempt >= retries ||
		    (rq->cancel && atomic_load(rq->cancel)))
			break;
		backoff(attempt++, rq->cancel);
		atomic_fetch_add(&st->stats.retries, 1);
		if (rq->before_retry)
			rq->before_retry(rq->sink_arg, rq);
	}
	if (own)
		s3_handle_put(st, h);
	resp->maybe_done = maybe_done;
	if (v == DONE)
		return 0;
	if (late)
		return err_set("%s: %s: not done within %ld s (s3.request_timeout_seconds): %s", where,
			       rq->what, st->conf.request_timeout_s, why);
	if (attempt)
		return err_set("%s: %s: %s (after %u attempts)", where, rq->what, why, attempt + 1);
	return err_set("%s: %s: %s", where, rq->what, why);
}
