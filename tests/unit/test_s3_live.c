/* The S3 backend against a real server (scripts/s3-server.sh starts a
 * local Swift with s3api). Runs only when CRSTREAM_TEST_S3_ENDPOINT and
 * the AWS_* credentials are set; exits 77 (skipped) otherwise.
 *
 *   eval "$(scripts/s3-server.sh start)" && build/tests/test_s3_live
 *
 * CRSTREAM_TEST_S3_BUCKET names the bucket (default crstream-test).
 * CRSTREAM_TEST_S3_BENCH_MB=1024 also measures upload/download MB/s. */
#include "store/s3.h"
#include "util/err.h"
#include "unit.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <strings.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *bucket;
static char base[256];		/* s3://bucket/crstream-live-PID/a b+c=d */
static char tmpdir[] = "/tmp/crstream-s3-live-XXXXXX";

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

static struct kv small_parts[] = {
	{"s3.part_size", "5MiB"}, {"s3.parts_in_flight", "3"}, {"s3.retries", "3"}, {NULL, NULL}};

static struct store *open_store(const char *loc, struct kv *cfg)
{
	struct store_options opt = {kv_config, cfg};
	struct store *s = NULL;
	/* Straight to the backend: store_open() would also pull in the
	 * local backend, which this test does not need. */
	if (s3_store_ops.open(loc, &opt, &s) < 0)
		fprintf(stderr, "store_open %s: %s\n", loc, err_msg());
	return s;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Deterministic bytes: position i of stream seed. */
static void fill(unsigned char *p, size_t n, uint64_t off, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t x = (off + i) / 8 * 0x9E3779B97F4A7C15ULL ^ seed;
		x ^= x >> 29;
		x *= 0xBF58476D1CE4E5B9ULL;
		x ^= x >> 32;
		p[i] = (unsigned char)(x >> (8 * ((off + i) % 8)));
	}
}

/* Writes size bytes of stream seed through w in uneven pieces. */
static int write_pattern(struct writer *w, uint64_t size, uint64_t seed)
{
	static unsigned char buf[1 << 20];
	uint64_t off = 0;
	size_t piece = 1000;
	while (off < size) {
		size_t n = size - off < piece ? (size_t)(size - off) : piece;
		fill(buf, n, off, seed);
		if (writer_write(w, buf, n) < 0)
			return -1;
		off += n;
		piece = piece * 3 % sizeof(buf) + 1;
	}
	return 0;
}

/* Reads the object back and compares with stream seed. */
static int check_pattern(struct store *s, const char *key, uint64_t size, uint64_t seed)
{
	static unsigned char got[1 << 20], want[1 << 20];
	uint64_t sz = 0, off = 0;
	struct reader *r = s->ops->open_read(s, key, &sz);
	if (!r)
		return -1;
	int rc = sz == size ? 0 : err_set("size %llu, expected %llu", (unsigned long long)sz,
					   (unsigned long long)size);
	while (rc == 0) {
		ssize_t n = reader_read(r, got, 777777);
		if (n < 0)
			rc = -1;
		if (n <= 0)
			break;
		fill(want, (size_t)n, off, seed);
		if (memcmp(got, want, (size_t)n) != 0)
			rc = err_set("data differs near offset %llu", (unsigned long long)off);
		off += (uint64_t)n;
	}
	if (rc == 0 && off != size)
		rc = err_set("read %llu bytes, expected %llu", (unsigned long long)off,
			     (unsigned long long)size);
	reader_close(r);
	return rc;
}

static int count_upload(const char *key, const char *id, void *arg)
{
	(void)id;
	fprintf(stderr, "  upload left: %s\n", key);
	(*(int *)arg)++;
	return 0;
}

static int uploads_left(struct store *s)
{
	int n = 0;
	if (s3_list_uploads(s, "", count_upload, &n) < 0) {
		fprintf(stderr, "list uploads: %s\n", err_msg());
		return -1;
	}
	return n;
}

struct seen {
	char keys[8][128];
	uint64_t sizes[8];
	int n;
};

static int collect(const struct store_entry *e, void *arg)
{
	struct seen *s = arg;
	if (s->n < 8) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", e->key);
		s->sizes[s->n++] = e->size;
	}
	return 0;
}

static bool seen_has(const struct seen *s, const char *key, uint64_t size)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->keys[i], key) == 0 && s->sizes[i] == size)
			return true;
	return false;
}

static void test_small_ops(void)
{
	struct store *s = open_store(base, NULL);
	CHECK(s != NULL);
	if (!s)
		return;
	void *buf = NULL;
	size_t len = 0;
	CHECK(s->ops->put(s, "x/one", "hello", 5) == 0);
	CHECK(s->ops->put(s, "x/sp ace+eq=", "", 0) == 0);
	CHECK(s->ops->put(s, "y", "world!", 6) == 0);
	CHECK(s->ops->get(s, "x/one", &buf, &len) == 0);
	CHECK(buf && len == 5 && memcmp(buf, "hello", 6) == 0);
	free(buf);
	CHECK(s->ops->get(s, "x/missing", &buf, &len) == 1);
	struct seen all = {0}, x = {0};
	CHECK(s->ops->list(s, "", collect, &all) == 0);
	CHECK(all.n == 3 && seen_has(&all, "x/one", 5) && seen_has(&all, "y", 6) &&
	      seen_has(&all, "x/sp ace+eq=", 0));
	CHECK(s->ops->list(s, "x/", collect, &x) == 0);
	CHECK(x.n == 2);
	CHECK(s->ops->remove(s, "x/one") == 0);
	CHECK(s->ops->remove(s, "x/one") == 0);	/* missing: not an error */
	CHECK(s->ops->get(s, "x/one", &buf, &len) == 1);
	CHECK(s->ops->remove(s, "x/sp ace+eq=") == 0 && s->ops->remove(s, "y") == 0);
	char report[512];
	CHECK(s->ops->probe(s, report, sizeof(report)) == 0);
	fprintf(stderr, "  probe: %s\n", report);
	CHECK(strstr(report, "write+delete ok") && strstr(report, "path-style") &&
	      !strstr(report, getenv("AWS_SECRET_ACCESS_KEY")));
	store_close(s);
}

static void test_multipart(void)
{
	struct store *s = open_store(base, small_parts);
	if (!s)
		{ CHECK(0); return; }
	const uint64_t size = 3 * (5 << 20) + (3 << 20) + 12345;	/* 4 parts */
	struct writer *w = s->ops->create(s, "mp/img-0.lz4");
	CHECK(w && write_pattern(w, size, 1) == 0);
	CHECK(w && writer_close(w) == 0);
	if (check_pattern(s, "mp/img-0.lz4", size, 1) < 0) {
		fprintf(stderr, "  multipart read back: %s\n", err_msg());
		CHECK(0);
	}
	/* An object smaller than a part is one PutObject. */
	w = s->ops->create(s, "mp/small");
	CHECK(w && write_pattern(w, 4000, 2) == 0 && writer_close(w) == 0);
	CHECK(check_pattern(s, "mp/small", 4000, 2) == 0);
	/* Exactly one part, and empty. */
	w = s->ops->create(s, "mp/exact");
	CHECK(w && write_pattern(w, 5 << 20, 3) == 0 && writer_close(w) == 0);
	CHECK(check_pattern(s, "mp/exact", 5 << 20, 3) == 0);
	w = s->ops->create(s, "mp/empty");
	CHECK(w && writer_close(w) == 0);
	CHECK(check_pattern(s, "mp/empty", 0, 4) == 0);
	CHECK(uploads_left(s) == 0);
	store_close(s);
}

static void test_abort(void)
{
	struct store *s = open_store(base, small_parts);
	if (!s)
		{ CHECK(0); return; }
	struct writer *w = s->ops->create(s, "ab/never");
	CHECK(w && write_pattern(w, 12 << 20, 5) == 0);	/* two parts sent */
	writer_abort(w);
	CHECK(uploads_left(s) == 0);
	void *buf;
	size_t len;
	CHECK(s->ops->get(s, "ab/never", &buf, &len) == 1);
	store_close(s);
}

static void test_wrong_secret(void)
{
	char *good = strdup(getenv("AWS_SECRET_ACCESS_KEY"));
	setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
	struct store *s = open_store(base, small_parts);
	setenv("AWS_SECRET_ACCESS_KEY", good, 1);
	free(good);
	if (!s)
		{ CHECK(0); return; }
	CHECK(s->ops->put(s, "auth/x", "x", 1) < 0);
	fprintf(stderr, "  put: %s\n", err_msg());
	CHECK_ERR("PUT: 403 SignatureDoesNotMatch");
	CHECK(!strstr(err_msg(), "not-the-secret"));
	struct writer *w = s->ops->create(s, "auth/big");
	int wrc = w ? write_pattern(w, 6 << 20, 6) : -1;
	CHECK(wrc < 0);
	fprintf(stderr, "  writer: %s\n", err_msg());
	CHECK_ERR("403");
	writer_abort(w);
	/* "At once" is a count, not a time: no request was retried. */
	CHECK(s3_store_stats(s)->retries == 0);
	store_close(s);
	struct store *g = open_store(base, NULL);
	CHECK(g && uploads_left(g) == 0);
	store_close(g);
}

/* A relay between the client and the server that cuts the first
 * `cuts` server-to-client streams after `after` bytes, and logs the
 * Range headers of the requests it carries. */
struct proxy {
	int lfd;
	int port;
	int upstream_port;
	atomic_int cuts;
	size_t after;
	pthread_mutex_t mu;
	char ranges[64][64];
	int nranges;
	atomic_bool quit;
	atomic_int active;
	atomic_int cut_done;
};

struct conn {
	struct proxy *p;
	int cfd;
};

static void log_ranges(struct proxy *p, const char *buf, size_t n)
{
	const char *end = buf + n;
	for (const char *q = buf; q < end; q++) {
		if ((size_t)(end - q) > 13 && strncasecmp(q, "\nrange: bytes=", 14) == 0) {
			size_t l = strcspn(q + 14, "\r\n");
			pthread_mutex_lock(&p->mu);
			if (p->nranges < 64)
				snprintf(p->ranges[p->nranges++], 64, "%.*s", (int)l, q + 14);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

static void *relay(void *arg)
{
	struct conn *c = arg;
	struct proxy *p = c->p;
	int ufd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->upstream_port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ufd < 0 || connect(ufd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	size_t down = 0;
	bool decided = false;
	char local[65536];
	for (;;) {
		struct pollfd pf[2] = {{c->cfd, POLLIN, 0}, {ufd, POLLIN, 0}};
		if (poll(pf, 2, 200) < 0 || atomic_load(&p->quit))
			break;
		if (pf[0].revents) {
			ssize_t n = read(c->cfd, local, sizeof(local));
			if (n <= 0 || write(ufd, local, (size_t)n) != n)
				break;
			log_ranges(p, local, (size_t)n);
		}
		if (pf[1].revents) {
			ssize_t n = read(ufd, local, sizeof(local));
			if (n <= 0 || write(c->cfd, local, (size_t)n) != n)
				break;
			down += (size_t)n;
			/* Decide once per connection whether to cut it. */
			if (!decided && down > p->after) {
				decided = true;
				if (atomic_fetch_sub(&p->cuts, 1) > 0) {
					atomic_fetch_add(&p->cut_done, 1);
					break;
				}
			}
		}
	}
out:
	if (ufd >= 0)
		close(ufd);
	close(c->cfd);
	free(c);
	atomic_fetch_sub(&p->active, 1);
	return NULL;
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	while (!atomic_load(&p->quit)) {
		struct pollfd pf = {p->lfd, POLLIN, 0};
		if (poll(&pf, 1, 100) <= 0)
			continue;
		int cfd = accept(p->lfd, NULL, NULL);
		struct conn *c = cfd >= 0 ? malloc(sizeof(*c)) : NULL;
		pthread_t t;
		if (!c) {
			if (cfd >= 0)
				close(cfd);
			continue;
		}
		*c = (struct conn){p, cfd};
		atomic_fetch_add(&p->active, 1);
		if (pthread_create(&t, NULL, relay, c) != 0) {
			atomic_fetch_sub(&p->active, 1);
			close(cfd);
			free(c);
			continue;
		}
		pthread_detach(t);
	}
	return NULL;
}

static int proxy_start(struct proxy *p, pthread_t *t)
{
	const char *ep = getenv("AWS_ENDPOINT_URL");
	const char *colon = ep ? strrchr(ep, ':') : NULL;
	p->upstream_port = colon ? atoi(colon + 1) : 0;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof(sa);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (!p->upstream_port || p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(p->lfd, 16) < 0 || getsockname(p->lfd, (struct sockaddr *)&sa, &sl) < 0)
		return -1;
	p->port = ntohs(sa.sin_port);
	pthread_mutex_init(&p->mu, NULL);
	return pthread_create(t, NULL, proxy_main, p) == 0 ? 0 : -1;
}

static void proxy_stop(struct proxy *p, pthread_t t)
{
	atomic_store(&p->quit, true);
	pthread_join(t, NULL);
	while (atomic_load(&p->active) > 0)
		usleep(10000);
	close(p->lfd);
	pthread_mutex_destroy(&p->mu);
}

/* Downloads through a relay that drops connections mid-range: the reader
 * must resume each range where it broke (Range: bytes=N-, N inside a
 * chunk) and still deliver the exact bytes. */
static void test_resume(void)
{
	const uint64_t size = 23 << 20;
	struct store *s = open_store(base, small_parts);
	if (!s)
		{ CHECK(0); return; }
	struct writer *w = s->ops->create(s, "resume/obj");
	CHECK(w && write_pattern(w, size, 7) == 0 && writer_close(w) == 0);
	store_close(s);

	static struct proxy p;
	pthread_t t;
	memset(&p, 0, sizeof(p));
	atomic_init(&p.cuts, 3);
	p.after = 1 << 20;
	if (proxy_start(&p, &t) < 0)
		{ CHECK(0); return; }
	char ep[64], *saved = strdup(getenv("AWS_ENDPOINT_URL"));
	snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", p.port);
	setenv("AWS_ENDPOINT_URL", ep, 1);
	s = open_store(base, small_parts);
	setenv("AWS_ENDPOINT_URL", saved, 1);
	free(saved);
	if (s) {
		int rc = check_pattern(s, "resume/obj", size, 7);
		if (rc < 0)
			fprintf(stderr, "  resume read: %s\n", err_msg());
		CHECK(rc == 0);
		CHECK(s3_store_stats(s)->resumes >= 1);
		fprintf(stderr, "  %d connections cut, %llu ranges resumed\n", atomic_load(&p.cut_done),
			(unsigned long long)s3_store_stats(s)->resumes);
	}
	CHECK(atomic_load(&p.cut_done) == 3);
	bool mid = false;
	for (int i = 0; i < p.nranges; i++) {
		unsigned long long a = strtoull(p.ranges[i], NULL, 10);
		if (a % (5 << 20) != 0) {
			fprintf(stderr, "  resumed with Range: bytes=%s\n", p.ranges[i]);
			mid = true;
		}
	}
	CHECK(mid);
	store_close(s);
	proxy_stop(&p, t);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "  command failed (%d): %s\n", rc, cmd);
	return rc;
}

/* Objects written by us read with Debian's awscli, and the reverse (a
 * 20 MiB file, which awscli uploads in multiple parts). */
static void test_awscli(void)
{
	const char *aws = "/usr/bin/aws";
	if (access(aws, X_OK) != 0) {
		UNIT_SKIP("%s not installed (apt-get install awscli)", aws);
		return;
	}
	const uint64_t size = 13 << 20;
	struct store *s = open_store(base, small_parts);
	if (!s)
		{ CHECK(0); return; }
	struct writer *w = s->ops->create(s, "cli/ours");
	CHECK(w && write_pattern(w, size, 8) == 0 && writer_close(w) == 0);
	char url[512], mine[300], theirs[300];
	snprintf(url, sizeof(url), "%s", base);
	snprintf(mine, sizeof(mine), "%s/ours", tmpdir);
	snprintf(theirs, sizeof(theirs), "%s/theirs", tmpdir);
	const char *ep = getenv("AWS_ENDPOINT_URL");
	CHECK(sh("%s --endpoint-url %s s3 cp --only-show-errors '%s/cli/ours' '%s'", aws, ep, url,
		 mine) == 0);
	FILE *f = fopen(mine, "rb");
	static unsigned char a[1 << 20], b[1 << 20];
	uint64_t off = 0;
	bool same = f != NULL;
	size_t n;
	while (f && (n = fread(a, 1, sizeof(a), f)) > 0) {
		fill(b, n, off, 8);
		same = same && memcmp(a, b, n) == 0;
		off += n;
	}
	if (f)
		fclose(f);
	CHECK(same && off == size);

	f = fopen(theirs, "wb");
	for (off = 0; f && off < (20 << 20); off += sizeof(a)) {
		fill(a, sizeof(a), off, 9);
		CHECK(fwrite(a, 1, sizeof(a), f) == sizeof(a));
	}
	CHECK(f && fclose(f) == 0);
	CHECK(sh("%s --endpoint-url %s s3 cp --only-show-errors '%s' '%s/cli/theirs'", aws, ep, theirs,
		 url) == 0);
	if (check_pattern(s, "cli/theirs", 20 << 20, 9) < 0) {
		fprintf(stderr, "  awscli object read back: %s\n", err_msg());
		CHECK(0);
	}
	store_close(s);
}

/* Upload and download MB/s of a large object (CRSTREAM_TEST_S3_BENCH_MB). */
static void bench(unsigned mb)
{
	struct store *s = open_store(base, NULL);
	if (!s)
		{ CHECK(0); return; }
	static unsigned char buf[4 << 20];
	fill(buf, sizeof(buf), 0, 11);
	uint64_t size = (uint64_t)mb << 20;
	double t0 = now();
	struct writer *w = s->ops->create(s, "bench/obj");
	for (uint64_t off = 0; w && off < size; off += sizeof(buf))
		if (writer_write(w, buf, sizeof(buf)) < 0)
			break;
	int rc = w && w->bytes_in == size ? writer_close(w) : -1;
	double up = now() - t0;
	CHECK(rc == 0);
	t0 = now();
	uint64_t got = 0, sz = 0;
	struct reader *r = s->ops->open_read(s, "bench/obj", &sz);
	ssize_t n;
	static unsigned char in[4 << 20];
	while (r && (n = reader_read(r, in, sizeof(in))) > 0)
		got += (uint64_t)n;
	reader_close(r);
	double down = now() - t0;
	CHECK(got == size);
	fprintf(stderr, "  bench %u MiB: upload %.1f MB/s (%.1f s), download %.1f MB/s (%.1f s)\n",
		mb, size / 1e6 / up, up, size / 1e6 / down, down);
	CHECK(s->ops->remove(s, "bench/obj") == 0);
	store_close(s);
}

static int rm_entry(const struct store_entry *e, void *arg)
{
	struct store *s = arg;
	return s->ops->remove(s, e->key) < 0 ? -1 : 0;
}

int main(void)
{
	const char *ep = getenv("CRSTREAM_TEST_S3_ENDPOINT");
	if (!ep || !getenv("AWS_ACCESS_KEY_ID") || !getenv("AWS_SECRET_ACCESS_KEY")) {
		printf("SKIP: CRSTREAM_TEST_S3_ENDPOINT and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
		       "not set (eval \"$(scripts/s3-server.sh start)\")\n");
		return 77;
	}
	/* The tests talk to the endpoint under test, whatever else is set. */
	setenv("AWS_ENDPOINT_URL", ep, 1);
	unsetenv("AWS_ENDPOINT_URL_S3");
	bucket = getenv("CRSTREAM_TEST_S3_BUCKET") ? getenv("CRSTREAM_TEST_S3_BUCKET") : "crstream-test";
	/* A prefix that needs encoding: space, '+', '='. */
	snprintf(base, sizeof(base), "s3://%s/crstream-live-%d/a b+c=d", bucket, (int)getpid());
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	fprintf(stderr, "testing %s at %s\n", base, ep);
	RUN(test_small_ops);
	RUN(test_multipart);
	RUN(test_abort);
	RUN(test_wrong_secret);
	RUN(test_resume);
	RUN(test_awscli);
	const char *mb = getenv("CRSTREAM_TEST_S3_BENCH_MB");
	if (mb && atoi(mb) > 0)
		bench((unsigned)atoi(mb));
	struct store *s = open_store(base, NULL);
	if (s) {
		CHECK(s->ops->list(s, "", rm_entry, s) == 0);
		store_close(s);
	}
	sh("rm -rf '%s'", tmpdir);
	return unit_done();
}
