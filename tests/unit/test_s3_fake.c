/* The S3 backend against a scripted in-process HTTP server, for what a
 * real server will not do on demand: 503 SlowDown then success, a 403
 * that must not be retried, CompleteMultipartUpload answering 200 with an
 * <Error> body, opaque (non-MD5) part ETags, GCS signing scope, a kept-alive
 * connection reset under a PUT. Also checks that over plain http
 * x-amz-content-sha256 is the body's hash, and rebuilds a virtual-hosted
 * GCS request's whole canonical request from what arrived on the wire and
 * checks its signature with OpenSSL, independently of store/sigv4.c. And
 * the hostile server: one that trickles its answer a byte at a time (the
 * request deadline ends it), lists keys outside the prefix asked for, or
 * answers a manifest's GET with more than a manifest may have. */
#include "store/s3.h"
#include "util/err.h"
#include "unit.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

enum mode { FLAKY, DENY, DOWN, MPU, TRICKLE, LIST_OUTSIDE, HUGE };

static struct {
	pthread_mutex_t mu;
	enum mode mode;
	int requests;
	int complete_transient;	/* Complete answers 200+InternalError this often */
	bool complete_fatal;	/* Complete answers 200+InvalidPart */
	bool aborted;
	bool hash_mismatch;
	/* The second request on each connection gets no answer, the connection
	 * is reset (a server that died while the client kept the connection
	 * alive); fresh connections are served. */
	bool reset_reused;
	/* MPU: this many create multipart uploads make upload "lost", then
	 * reset the connection instead of answering; list uploads shows it
	 * (and another key's) until it is aborted. */
	int create_lost;
	bool created;
	bool aborted_lost;
	bool aborted_other;
	char complete_body[4096];
	char last_auth[512];
	char last_target[1024];
	int trickled;		/* TRICKLE: bytes of the body sent */
	char last_head[8192];	/* the request line and headers, as received */
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int port;

struct req {
	char method[16], target[1024], auth[512], sha[80];
	char *body;
	size_t len;
};

static void respond(int fd, int status, const char *extra, const char *body)
{
	char head[512];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status,
			 strlen(body), extra);
	if (write(fd, head, (size_t)n) != n || write(fd, body, strlen(body)) != (ssize_t)strlen(body))
		return;
}

#define ERRDOC(code, msg) "<?xml version=\"1.0\"?><Error><Code>" code "</Code><Message>" msg "</Message></Error>"

/* Returns true to reset the connection instead of answering. */
static bool handle(int fd, const struct req *r)
{
	bool reset = false;
	char sha[SIGV4_HEX];
	pthread_mutex_lock(&srv.mu);
	int n = ++srv.requests;
	snprintf(srv.last_auth, sizeof(srv.last_auth), "%s", r->auth);
	snprintf(srv.last_target, sizeof(srv.last_target), "%s", r->target);
	if (sigv4_sha256_hex(r->body ? r->body : "", r->len, sha) < 0 || strcmp(sha, r->sha) != 0)
		srv.hash_mismatch = true;
	bool uploads = strstr(r->target, "?uploads=") != NULL;
	bool part = strstr(r->target, "partNumber=") != NULL;
	bool upid = strstr(r->target, "uploadId=") != NULL;
	switch (srv.mode) {
	case FLAKY:
		if (n <= 2)
			respond(fd, 503, "", ERRDOC("SlowDown", "Please reduce your request rate."));
		else
			respond(fd, 200, "ETag: \"x\"\r\n", "");
		break;
	case DENY:
		respond(fd, 403, "", ERRDOC("AccessDenied", "Access Denied"));
		break;
	case DOWN:
		respond(fd, 503, "", ERRDOC("ServiceUnavailable", "Try later"));
		break;
	case TRICKLE:
		break;	/* below, without the lock */
	case LIST_OUTSIDE:
		respond(fd, 200, "", "<ListBucketResult><IsTruncated>false</IsTruncated>"
				     "<Contents><Key>pre/ck/manifest.json</Key><Size>1</Size></Contents>"
				     "<Contents><Key>other/secret</Key><Size>1</Size></Contents>"
				     "</ListBucketResult>");
		break;
	case HUGE: {
		size_t n = (5u << 20) + 1;
		char *body = malloc(n + 1);
		if (body) {
			memset(body, ' ', n);
			body[n] = '\0';
			respond(fd, 200, "", body);
			free(body);
		}
		break;
	}
	case MPU:
		if (strcmp(r->method, "POST") == 0 && uploads && srv.create_lost > 0) {
			srv.create_lost--;
			srv.created = true;
			reset = true;
		} else if (strcmp(r->method, "GET") == 0 && strstr(r->target, "uploads=")) {
			respond(fd, 200, "", srv.created && !srv.aborted_lost
				? "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
				  "<Upload><Key>pre/objx</Key><UploadId>other</UploadId></Upload>"
				  "<Upload><Key>pre/obj</Key><UploadId>lost</UploadId></Upload>"
				  "</ListMultipartUploadsResult>"
				: "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
				  "</ListMultipartUploadsResult>");
		} else if (strcmp(r->method, "DELETE") == 0 && strstr(r->target, "uploadId=other")) {
			srv.aborted_other = true;
			respond(fd, 204, "", "");
		} else if (strcmp(r->method, "DELETE") == 0 && strstr(r->target, "uploadId=lost")) {
			srv.aborted_lost = true;
			respond(fd, 204, "", "");
		} else if (strcmp(r->method, "POST") == 0 && uploads) {
			respond(fd, 200, "", "<InitiateMultipartUploadResult><UploadId>UP/1+=</UploadId>"
					     "</InitiateMultipartUploadResult>");
		} else if (strcmp(r->method, "PUT") == 0 && part) {
			char etag[64];
			/* Opaque, GCS-like: not an MD5 of anything. */
			snprintf(etag, sizeof(etag), "ETag: \"gcs-%s\"\r\n", strstr(r->target, "partNumber=") + 11);
			etag[strcspn(etag, "&")] = '\0';
			strcat(etag, "\"\r\n");
			respond(fd, 200, etag, "");
		} else if (strcmp(r->method, "POST") == 0 && upid) {
			snprintf(srv.complete_body, sizeof(srv.complete_body), "%.*s", (int)r->len, r->body);
			if (srv.complete_transient-- > 0)
				respond(fd, 200, "", "  \n" ERRDOC("InternalError", "We encountered an internal error."));
			else if (srv.complete_fatal)
				respond(fd, 200, "", ERRDOC("InvalidPart", "One or more of the specified parts could not be found."));
			else
				respond(fd, 200, "", "<CompleteMultipartUploadResult><ETag>\"e-3\"</ETag>"
						     "</CompleteMultipartUploadResult>");
		} else if (strcmp(r->method, "DELETE") == 0 && upid) {
			srv.aborted = true;
			respond(fd, 204, "", "");
		} else {
			respond(fd, 200, "", "");
		}
		break;
	}
	enum mode mode = srv.mode;
	pthread_mutex_unlock(&srv.mu);
	if (mode == TRICKLE) {
		/* Two bytes a second beat any low-speed limit; give up after
		 * 20 s so that a client without a deadline fails, not hangs. */
		static const char head[] = "HTTP/1.1 200 X\r\nContent-Length: 100000\r\n\r\n";
		if (send(fd, head, sizeof(head) - 1, MSG_NOSIGNAL) < 0)
			return false;
		for (int i = 0; i < 40; i++) {
			struct timespec ts = {0, 500 * 1000000L};
			nanosleep(&ts, NULL);
			if (send(fd, "{", 1, MSG_NOSIGNAL) != 1)
				break;
			pthread_mutex_lock(&srv.mu);
			srv.trickled++;
			pthread_mutex_unlock(&srv.mu);
		}
		shutdown(fd, SHUT_RDWR);	/* whoever is still there sees the end */
		return false;
	}
	return reset;
}

static const char *header(const char *head, const char *name, char *out, size_t size)
{
	const char *p = strcasestr(head, name);
	out[0] = '\0';
	if (p) {
		p += strlen(name);
		snprintf(out, size, "%.*s", (int)strcspn(p, "\r\n"), p);
	}
	return out;
}

static void *conn_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	const size_t cap = 8 << 20;	/* a 5 MiB part and its headers */
	char *buf = malloc(cap);
	size_t have = 0;
	int nth = 0;	/* requests on this connection */
	if (!buf)
		goto out;
	for (;;) {
		char *end = NULL;
		pthread_mutex_lock(&srv.mu);
		bool reset_now = srv.reset_reused && ++nth == 2;
		pthread_mutex_unlock(&srv.mu);
		while (!(end = memmem(buf, have, "\r\n\r\n", 4))) {
			ssize_t n = read(fd, buf + have, cap - have - 1);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		*end = '\0';
		struct req r = {0};
		char cl[32];
		sscanf(buf, "%15s %1023s", r.method, r.target);
		header(buf, "\nAuthorization: ", r.auth, sizeof(r.auth));
		header(buf, "\nx-amz-content-sha256: ", r.sha, sizeof(r.sha));
		r.len = strtoul(header(buf, "\nContent-Length: ", cl, sizeof(cl)), NULL, 10);
		size_t hlen = (size_t)(end + 4 - buf);
		while (have < hlen + r.len) {
			ssize_t n = read(fd, buf + have, cap - have - 1);
			if (n <= 0)
				goto out;
			have += (size_t)n;
		}
		r.body = buf + hlen;
		pthread_mutex_lock(&srv.mu);
		snprintf(srv.last_head, sizeof(srv.last_head), "%s", buf);
		pthread_mutex_unlock(&srv.mu);
		if (!reset_now)
			reset_now = handle(fd, &r);
		if (reset_now) {
			/* The whole request read, no answer: close with a RST. */
			struct linger lg = {.l_onoff = 1, .l_linger = 0};
			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			pthread_mutex_lock(&srv.mu);
			srv.requests++;
			pthread_mutex_unlock(&srv.mu);
			goto out;
		}
		memmove(buf, buf + hlen + r.len, have - hlen - r.len);
		have -= hlen + r.len;
	}
out:
	free(buf);
	close(fd);
	return NULL;
}

static void *server_main(void *arg)
{
	int lfd = (int)(intptr_t)arg;
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		pthread_t t;
		if (fd < 0)
			continue;
		if (pthread_create(&t, NULL, conn_main, (void *)(intptr_t)fd) != 0)
			close(fd);
		else
			pthread_detach(t);
	}
	return NULL;
}

static int start_server(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	pthread_t t;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 16) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0 ||
	    pthread_create(&t, NULL, server_main, (void *)(intptr_t)lfd) != 0)
		return -1;
	pthread_detach(t);
	port = ntohs(sa.sin_port);
	return 0;
}

struct kv {
	const char *k, *v;
};

static const char *kv_config(void *ctx, const char *key)
{
	for (const struct kv *p = ctx; p && p->k; p++)
		if (strcmp(p->k, key) == 0)
			return p->v;
	return NULL;
}

static char endpoint[64];

static struct store *open_at(const char *loc, const char *retries)
{
	struct kv cfg[] = {{"s3.endpoint", endpoint}, {"s3.retries", retries},
			   {"s3.part_size", "5M"}, {"gcs.endpoint", endpoint},
			   {"gcs.hmac_access_id", "GOOG1EXAMPLE"}, {"gcs.hmac_secret", "gsecret"},
			   {NULL, NULL}};
	struct store_options opt = {kv_config, cfg};
	struct store *s = NULL;
	if (s3_store_ops.open(loc, &opt, &s) < 0)
		fprintf(stderr, "open %s: %s\n", loc, err_msg());
	return s;
}

static struct store *open_with(const char *loc, const char *key, const char *value)
{
	struct kv cfg[] = {{"s3.endpoint", endpoint}, {"s3.retries", "3"}, {key, value},
			   {NULL, NULL}};
	struct store_options opt = {kv_config, cfg};
	struct store *s = NULL;
	if (s3_store_ops.open(loc, &opt, &s) < 0)
		fprintf(stderr, "open %s: %s\n", loc, err_msg());
	return s;
}

static void reset(enum mode m)
{
	pthread_mutex_lock(&srv.mu);
	srv.mode = m;
	srv.requests = 0;
	srv.aborted = false;
	srv.complete_transient = 0;
	srv.complete_fatal = false;
	srv.complete_body[0] = '\0';
	srv.reset_reused = false;
	srv.create_lost = 0;
	srv.created = false;
	srv.aborted_lost = false;
	srv.aborted_other = false;
	srv.trickled = 0;
	pthread_mutex_unlock(&srv.mu);
}

static void test_retry_then_ok(void)
{
	reset(FLAKY);
	struct store *s = open_at("s3://bkt/pre", "3");
	CHECK(s && s->ops->put(s, "k", "data", 4) == 0);
	CHECK(srv.requests == 3 && s3_store_stats(s)->retries == 2);
	store_close(s);
}

static void test_no_retry_on_403(void)
{
	reset(DENY);
	struct store *s = open_at("s3://bkt/pre", "5");
	CHECK(s && s->ops->put(s, "k", "data", 4) < 0);
	CHECK_ERR("s3://bkt/pre/k: PUT: 403 AccessDenied: Access Denied");
	CHECK(srv.requests == 1 && s3_store_stats(s)->retries == 0);
	void *buf;
	size_t len;
	CHECK(s->ops->get(s, "k", &buf, &len) < 0);
	CHECK_ERR("GET: 403 AccessDenied");
	store_close(s);
}

/* A refused probe says why, not just "403 Forbidden". */
static void test_probe_names_the_refusal(void)
{
	reset(DENY);
	struct store *s = open_at("s3://bkt/pre", "5");
	char report[512];
	CHECK(s && s->ops->probe(s, report, sizeof(report)) < 0);
	CHECK_ERR("s3://bkt: LIST: 403 AccessDenied: Access Denied");
	CHECK(strstr(srv.last_target, "/bkt?") && strstr(srv.last_target, "prefix=pre%2F"));
	reset(MPU);
	CHECK(s && s->ops->probe(s, report, sizeof(report)) == 0);
	CHECK(strstr(report, "write+delete ok") != NULL);
	store_close(s);
}

/* Connections are close-on-exec: the CRIU crstream starts must not
 * inherit them. */
static void test_sockets_are_cloexec(void)
{
	reset(FLAKY);
	srv.requests = 10;
	struct store *s = open_at("s3://bkt/pre", "0");
	CHECK(s && s->ops->put(s, "k", "data", 4) == 0);
	struct s3_store *st = (struct s3_store *)s;
	curl_socket_t fd = CURL_SOCKET_BAD;
	CHECK(st && st->idle &&
	      curl_easy_getinfo(st->idle, CURLINFO_ACTIVESOCKET, &fd) == CURLE_OK &&
	      fd != CURL_SOCKET_BAD);
	CHECK(fd != CURL_SOCKET_BAD && (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	store_close(s);
}

static void test_retries_exhausted(void)
{
	reset(DOWN);
	struct store *s = open_at("s3://bkt", "2");
	CHECK(s && s->ops->remove(s, "k") < 0);
	CHECK_ERR("s3://bkt/k: DELETE: 503 ServiceUnavailable: Try later (after 3 attempts)");
	CHECK(srv.requests == 3);
	store_close(s);
}

static int write_n(struct writer *w, size_t n)
{
	static char buf[1 << 20];
	memset(buf, 'z', sizeof(buf));
	for (size_t off = 0; off < n; off += sizeof(buf))
		if (writer_write(w, buf, n - off < sizeof(buf) ? n - off : sizeof(buf)) < 0)
			return -1;
	return 0;
}

/* 11 MiB with 5 MiB parts: three parts, the last short. */
static void test_complete_200_error(void)
{
	reset(MPU);
	srv.complete_transient = 1;
	struct store *s = open_at("s3://bkt/pre", "2");
	struct writer *w = s ? s->ops->create(s, "obj") : NULL;
	CHECK(w && write_n(w, 11 << 20) == 0);
	CHECK(w && writer_close(w) == 0);
	/* The opaque ETags go back verbatim, XML-escaped, in part order. */
	CHECK(strstr(srv.complete_body, "<Part><PartNumber>1</PartNumber><ETag>&quot;gcs-1&quot;</ETag>"
					"</Part><Part><PartNumber>2</PartNumber><ETag>&quot;gcs-2&quot;"
					"</ETag></Part><Part><PartNumber>3</PartNumber>") != NULL);
	CHECK(!srv.aborted);

	reset(MPU);
	srv.complete_fatal = true;
	w = s ? s->ops->create(s, "obj") : NULL;
	CHECK(w && write_n(w, 11 << 20) == 0);
	CHECK(w && writer_close(w) < 0);
	CHECK_ERR("s3://bkt/pre/obj: complete multipart upload: 200 with error InvalidPart");
	CHECK(srv.aborted);
	CHECK(!srv.hash_mismatch);
	store_close(s);
}

static void test_gcs_scope(void)
{
	reset(FLAKY);
	srv.requests = 10;
	struct store *s = open_at("gs://gbkt/p q", "0");
	CHECK(s && s->ops->put(s, "k+1", "abc", 3) == 0);
	CHECK(strstr(srv.last_auth, "Credential=GOOG1EXAMPLE/") &&
	      strstr(srv.last_auth, "/auto/s3/aws4_request,"));
	CHECK(strcmp(srv.last_target, "/gbkt/p%20q/k%2B1") == 0);
	CHECK(!strstr(srv.last_auth, "gsecret") && !srv.hash_mismatch);
	store_close(s);
}

/* The value of header `name` (lower case) in a raw request head, trimmed. */
static void head_value(const char *head, const char *name, char *out, size_t size)
{
	out[0] = '\0';
	for (const char *line = strstr(head, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
		const char *p = line + 2;
		size_t n = strlen(name);
		if (strncasecmp(p, name, n) != 0 || p[n] != ':')
			continue;
		p += n + 1;
		while (*p == ' ')
			p++;
		snprintf(out, size, "%.*s", (int)strcspn(p, "\r\n"), p);
		return;
	}
}

static void hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* gs://gbkt, virtual-hosted (s3.addressing=virtual): the bucket is in the
 * Host, not the path, and the signature is scoped to GCS's region "auto".
 * The canonical request is rebuilt from the bytes the server received and
 * compared whole with the one AWS's SigV4 rules give for this request;
 * the signature is recomputed from it with OpenSSL's HMAC. */
static void test_gcs_virtual_hosted_canonical_request(void)
{
	reset(FLAKY);
	srv.requests = 10;
	char ep[64];
	snprintf(ep, sizeof(ep), "http://localhost:%d", port);
	struct kv cfg[] = {{"gcs.endpoint", ep}, {"s3.addressing", "virtual"}, {"s3.retries", "0"},
			   {"gcs.hmac_access_id", "GOOG1EXAMPLE"}, {"gcs.hmac_secret", "gsecret"},
			   {NULL, NULL}};
	struct store_options opt = {kv_config, cfg};
	struct store *s = NULL;
	CHECK(s3_store_ops.open("gs://gbkt/p q", &opt, &s) == 0);
	CHECK(s && s->ops->put(s, "k+1~=", "abc", 3) == 0);
	store_close(s);

	char head[8192], date[32], auth[512];
	pthread_mutex_lock(&srv.mu);
	snprintf(head, sizeof(head), "%s", srv.last_head);
	pthread_mutex_unlock(&srv.mu);
	head_value(head, "x-amz-date", date, sizeof(date));
	head_value(head, "authorization", auth, sizeof(auth));
	CHECK(strlen(date) == 16);
	char day[9];
	snprintf(day, sizeof(day), "%.8s", date);

	/* What arrived, as SigV4 canonicalises it: the request line's path
	 * and query, then each signed header (lower-cased name, trimmed value). */
	char method[16], target[1024], signed_headers[256];
	CHECK(sscanf(head, "%15s %1023s", method, target) == 2);
	const char *sh = strstr(auth, "SignedHeaders=");
	snprintf(signed_headers, sizeof(signed_headers), "%.*s", sh ? (int)strcspn(sh + 14, ",") : 0,
		 sh ? sh + 14 : "");
	char got[4096];
	int n = snprintf(got, sizeof(got), "%s\n%.*s\n%s\n", method, (int)strcspn(target, "?"), target,
			 strchr(target, '?') ? strchr(target, '?') + 1 : "");
	char names[256], *save = NULL;
	snprintf(names, sizeof(names), "%s", signed_headers);
	for (char *h = strtok_r(names, ";", &save); h; h = strtok_r(NULL, ";", &save)) {
		char v[512];
		head_value(head, h, v, sizeof(v));
		n += snprintf(got + n, sizeof(got) - (size_t)n, "%s:%s\n", h, v);
	}
	char payload[80];
	head_value(head, "x-amz-content-sha256", payload, sizeof(payload));
	snprintf(got + n, sizeof(got) - (size_t)n, "\n%s\n%s", signed_headers, payload);

	/* What it must be. */
	char want[4096];
	snprintf(want, sizeof(want),
		 "PUT\n"
		 "/p%%20q/k%%2B1~%%3D\n"
		 "\n"
		 "host:gbkt.localhost:%d\n"
		 "x-amz-content-sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
		 "x-amz-date:%s\n"
		 "\n"
		 "host;x-amz-content-sha256;x-amz-date\n"
		 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		 port, date);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "  canonical request received:\n%s\n  expected:\n%s\n", got, want);
	CHECK(strcmp(got, want) == 0);

	/* The scope and the signature, by OpenSSL from the canonical request. */
	char scope[128], cred[200];
	snprintf(scope, sizeof(scope), "%s/auto/s3/aws4_request", day);
	snprintf(cred, sizeof(cred), "Credential=GOOG1EXAMPLE/%s,", scope);
	CHECK(strncmp(auth, "AWS4-HMAC-SHA256 ", 17) == 0 && strstr(auth, cred) != NULL);
	unsigned char digest[SHA256_DIGEST_LENGTH], k[EVP_MAX_MD_SIZE];
	unsigned int klen;
	char creq_hex[2 * SHA256_DIGEST_LENGTH + 1], sts[512], sig[2 * SHA256_DIGEST_LENGTH + 1];
	SHA256((const unsigned char *)want, strlen(want), digest);
	hex(digest, sizeof(digest), creq_hex);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s\n%s", date, scope, creq_hex);
	const char *steps[] = {day, "auto", "s3", "aws4_request", sts};
	unsigned char key[64];
	size_t keylen = (size_t)snprintf((char *)key, sizeof(key), "AWS4gsecret");
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)steps[i], strlen(steps[i]), k, &klen);
		memcpy(key, k, klen);
		keylen = klen;
	}
	hex(key, keylen, sig);
	const char *at = strstr(auth, "Signature=");
	CHECK(at && strcmp(at + 10, sig) == 0);
}

static void test_connection_refused(void)
{
	struct kv cfg[] = {{"s3.endpoint", "http://127.0.0.1:1"}, {"s3.retries", "1"}, {NULL, NULL}};
	struct store_options opt = {kv_config, cfg};
	struct store *s = NULL;
	CHECK(s3_store_ops.open("s3://bkt", &opt, &s) == 0);
	CHECK(s && s->ops->put(s, "k", "x", 1) < 0);
	CHECK_ERR("s3://bkt/k: PUT: http://127.0.0.1:1: ");
	CHECK_ERR("(after 2 attempts)");
	store_close(s);
}

/* A PUT on a kept-alive connection the server has reset: libcurl replays
 * the request on a new connection, which needs the body rewound. The PUT
 * must succeed (not fail at once with "Recv failure: Connection reset by
 * peer" as if retries were exhausted). */
static void test_put_on_reset_connection(void)
{
	reset(FLAKY);
	srv.requests = 10;	/* past FLAKY's 503s */
	srv.reset_reused = true;
	struct store *s = open_at("s3://bkt/pre", "0");
	CHECK(s && s->ops->put(s, "k1", "first", 5) == 0);
	CHECK(s && s->ops->put(s, "k2", "second", 6) == 0);
	CHECK(srv.requests == 13 && !srv.hash_mismatch);
	/* Parts of a multipart upload, each worker on its kept-alive handle. */
	reset(MPU);
	srv.reset_reused = true;
	struct writer *w = s ? s->ops->create(s, "obj") : NULL;
	CHECK(w && write_n(w, 16 << 20) == 0);
	CHECK(w && writer_close(w) == 0);
	CHECK(strstr(srv.complete_body, "<PartNumber>4</PartNumber>") && !srv.aborted);
	CHECK(!srv.hash_mismatch);
	store_close(s);
}

/* The server makes the multipart upload but its answer is lost: the
 * writer must find that upload (of exactly its key) and abort it, or it
 * stays behind, unknown, costing storage; whether the create then fails
 * (the writer is aborted) or succeeds on a retry (the object completes). */
static void test_create_answer_lost(void)
{
	reset(MPU);
	srv.create_lost = 1;
	struct store *s = open_at("s3://bkt/pre", "0");
	struct writer *w = s ? s->ops->create(s, "obj") : NULL;
	CHECK(w && write_n(w, 6 << 20) < 0);
	CHECK_ERR("s3://bkt/pre/obj: create multipart upload: http://127.0.0.1:");
	writer_abort(w);
	CHECK(srv.created && srv.aborted_lost && !srv.aborted_other);
	CHECK_ERR("create multipart upload");	/* still the reason */
	store_close(s);

	reset(MPU);
	srv.create_lost = 1;
	s = open_at("s3://bkt/pre", "1");
	w = s ? s->ops->create(s, "obj") : NULL;
	CHECK(w && write_n(w, 11 << 20) == 0);
	CHECK(w && writer_close(w) == 0);
	CHECK(srv.created && srv.aborted_lost && !srv.aborted_other && !srv.aborted);
	CHECK(strstr(srv.complete_body, "<PartNumber>3</PartNumber>") != NULL);
	store_close(s);

	/* Refused before reaching any server: nothing to look for. */
	struct kv cfg[] = {{"s3.endpoint", "http://127.0.0.1:1"}, {"s3.retries", "0"}, {NULL, NULL}};
	struct store_options opt = {kv_config, cfg};
	CHECK(s3_store_ops.open("s3://bkt", &opt, &s) == 0);
	w = s ? s->ops->create(s, "obj") : NULL;
	CHECK(w && write_n(w, 9 << 20) < 0);
	writer_abort(w);
	CHECK(s && s3_store_stats(s)->requests == 1);
	store_close(s);
}

/* Bytes trickling in, never finishing: the request's deadline, not the
 * low-speed limit, ends it, and it is not retried past the deadline. */
static void test_request_deadline(void)
{
	reset(TRICKLE);
	struct store *s = open_with("s3://bkt/pre", "s3.request_timeout_seconds", "2");
	void *buf = NULL;
	size_t len;
	CHECK(s && s->ops->get(s, "ck/manifest.json", &buf, &len) < 0);
	CHECK_ERR("not done within 2 s (s3.request_timeout_seconds)");
	/* Cut after about 2 s (4 bytes), not when the server gave up. */
	pthread_mutex_lock(&srv.mu);
	int sent = srv.trickled;
	pthread_mutex_unlock(&srv.mu);
	CHECK(sent < 40);
	free(buf);
	store_close(s);
}

static int count_key(const struct store_entry *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

/* A listing naming keys outside the prefix asked for: refused, nothing
 * handed on (rm would delete them, restore read them). */
static void test_listing_outside_prefix(void)
{
	reset(LIST_OUTSIDE);
	struct store *s = open_at("s3://bkt/pre", "0");
	int n = 0;
	CHECK(s && s->ops->list(s, "ck/", count_key, &n) < 0);
	CHECK_ERR("the answer has key \"other/secret\", outside the prefix asked for");
	CHECK(n <= 1);
	store_close(s);
}

/* A manifest's GET answered with more than a manifest may have. */
static void test_small_object_too_big(void)
{
	reset(HUGE);
	struct store *s = open_at("s3://bkt/pre", "3");
	void *buf = NULL;
	size_t len;
	CHECK(s && s->ops->get(s, "ck/manifest.json", &buf, &len) < 0);
	CHECK_ERR("the answer has more than the 4194304 bytes expected");
	CHECK(srv.requests == 1);	/* not retried */
	free(buf);
	store_close(s);
}

int main(void)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("GCS_HMAC_ACCESS_ID");
	unsetenv("GCS_HMAC_SECRET");
	if (start_server() < 0) {
		perror("server");
		return 1;
	}
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
	RUN(test_retry_then_ok);
	RUN(test_no_retry_on_403);
	RUN(test_probe_names_the_refusal);
	RUN(test_sockets_are_cloexec);
	RUN(test_retries_exhausted);
	RUN(test_complete_200_error);
	RUN(test_gcs_scope);
	RUN(test_gcs_virtual_hosted_canonical_request);
	RUN(test_connection_refused);
	RUN(test_put_on_reset_connection);
	RUN(test_create_answer_lost);
	RUN(test_request_deadline);
	RUN(test_listing_outside_prefix);
	RUN(test_small_object_too_big);
	return unit_done();
}
