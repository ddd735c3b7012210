/* subject: the processes the integration tests checkpoint and restore.
 *
 *   subject <mode> --status FILE [mode options]
 *
 * Every mode runs one main loop that bumps a progress counter every 10 ms
 * and rewrites FILE (atomically: FILE.tmp + rename) every 100 ms, and at
 * once when a tick comes late (the process was stopped: frozen, dumped,
 * restored), so that a process that runs at all leaves a trace: the
 * file's heartbeat (counter, heartbeat_ms = wall-clock time).  SIGUSR1
 * makes the subject check its whole state and publish state=verified or
 * state=failed with a reason.  tests/subjects/README.md is the contract. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TICK_MS 10
#define STATUS_EVERY_TICKS 10 /* 100 ms */
#define LATE_TICK_MS 50	      /* a tick this late: we were stopped, say so now */
#define PATTERN_PAGE 4096     /* pattern granularity, independent of the MMU page */
#define MIB (1024ull * 1024ull)
#define DETAIL_MAX 512
#define EXTRA_MAX 2048

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static const char *program_mode = "?";

static void print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void print_error(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "subject %s: ", program_mode);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t realtime_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* cannot fail for CLOCK_MONOTONIC */
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	/* An early wake-up (EINTR) only shortens one wait; callers loop anyway. */
	nanosleep(&ts, NULL);
}

/* splitmix64: tiny, fast, and good enough to make incompressible bytes. */
static uint64_t splitmix64_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t state = a * 0xd6e8feb86659fd93ull ^ b;
	state = splitmix64_next(&state) ^ c;
	return splitmix64_next(&state);
}

static int parse_u64(const char *text, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-')
		return -1;
	*out = v;
	return 0;
}

/* Writes all of buf, retrying short writes; -1 with errno on failure. */
static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Page pattern shared by the mem and threads modes                    */
/* ------------------------------------------------------------------ */

enum page_kind { PAGE_ZERO, PAGE_RANDOM, PAGE_TEXT };

static const char *page_kind_name(enum page_kind kind)
{
	return kind == PAGE_ZERO ? "zero" : kind == PAGE_RANDOM ? "random" : "text";
}

/* ~40% zero, ~30% random, ~30% text: roughly what a real heap looks like
 * to a compressor. */
static enum page_kind page_kind_of(uint64_t seed, uint64_t page_index)
{
	unsigned bucket = (unsigned)(hash3(seed, page_index, 0x6b696e64) % 10);
	return bucket < 4 ? PAGE_ZERO : bucket < 7 ? PAGE_RANDOM : PAGE_TEXT;
}

/* Incompressible bytes from four interleaved xorshift64 lanes: the lanes
 * are independent, so the CPU runs them in parallel (~3x splitmix64's
 * speed, which matters when filling gigabytes). */
static void fill_random(uint64_t stream_seed, unsigned char *out, size_t len)
{
	uint64_t seed = stream_seed;
	uint64_t lane[4];
	for (int i = 0; i < 4; i++)
		lane[i] = splitmix64_next(&seed) | 1; /* xorshift must not start at 0 */
	size_t pos = 0;
	while (pos < len) {
		for (int i = 0; i < 4; i++) {
			lane[i] ^= lane[i] << 13;
			lane[i] ^= lane[i] >> 7;
			lane[i] ^= lane[i] << 17;
		}
		size_t n = len - pos < sizeof(lane) ? len - pos : sizeof(lane);
		memcpy(out + pos, lane, n);
		pos += n;
	}
}

static const char *const vocabulary[64] = {
	"the",	   "process",  "memory",   "page",	  "restore", "checkpoint", "kernel",  "stream",
	"of",	   "and",      "to",	   "a",		  "in",	     "is",	   "that",    "for",
	"image",   "file",     "socket",   "thread",  "signal",  "pipe",	   "tree",    "child",
	"parent",  "counter",  "value",	   "data",	  "buffer",  "offset",	   "length",  "header",
	"with",	   "on",       "as",	   "by",	  "this",    "be",	   "from",    "at",
	"error",   "status",   "verify",   "state",	  "ready",   "running",	   "stopped", "frozen",
	"network", "address",  "port",	   "listen",  "accept",  "connect",	   "reply",   "request",
	"zstd",	   "lz4",      "compress", "shard",	  "chunk",   "object",	   "store",   "upload",
};

/* Each vocabulary word followed by its separator, padded to 16 bytes so
 * the text generator can copy a whole entry with one fixed-size memcpy. */
struct text_token {
	char bytes[16];
	size_t len;
};
static struct text_token text_tokens[128]; /* [0,64): word + ' ', [64,128): word + ".\n" */

static void init_text_tokens(void)
{
	for (int i = 0; i < 128; i++) {
		struct text_token *t = &text_tokens[i];
		const char *sep = i < 64 ? " " : ".\n";
		t->len = (size_t)snprintf(t->bytes, sizeof(t->bytes), "%s%s", vocabulary[i & 63], sep);
	}
}

/* Text-like bytes: words from a small vocabulary, separated by spaces and
 * the occasional sentence end, so it compresses like logs or source. */
static void fill_text(uint64_t stream_seed, unsigned char *out, size_t len)
{
	uint64_t state = stream_seed;
	uint64_t bits = 0;
	unsigned bits_left = 0;
	size_t pos = 0;
	while (pos < len) {
		if (bits_left < 10) {
			bits = splitmix64_next(&state);
			bits_left = 64;
		}
		bool sentence_end = ((bits >> 6) & 15) == 0;
		const struct text_token *t = &text_tokens[(bits & 63) + (sentence_end ? 64 : 0)];
		bits >>= 10;
		bits_left -= 10;
		if (pos + sizeof(t->bytes) <= len) {
			memcpy(out + pos, t->bytes, sizeof(t->bytes)); /* the excess is overwritten next */
		} else {
			size_t n = len - pos < t->len ? len - pos : t->len;
			memcpy(out + pos, t->bytes, n);
		}
		pos += t->len;
	}
}

/* The expected content of pattern page page_index (PATTERN_PAGE bytes). */
static void generate_page(uint64_t seed, uint64_t page_index, unsigned char *out)
{
	switch (page_kind_of(seed, page_index)) {
	case PAGE_ZERO:
		memset(out, 0, PATTERN_PAGE);
		break;
	case PAGE_RANDOM:
		fill_random(hash3(seed, page_index, 0x72616e64), out, PATTERN_PAGE);
		break;
	case PAGE_TEXT:
		fill_text(hash3(seed, page_index, 0x74657874), out, PATTERN_PAGE);
		break;
	}
}

/* Fills a fresh anonymous mapping.  Zero pages get one explicit write so
 * the kernel backs them with a real (zeroed) page: untouched or read-only
 * touched pages are not dumped by CRIU at all, which is not what a real
 * process's zeroed heap looks like. */
static void fill_pattern_range(unsigned char *base, uint64_t first, uint64_t end, uint64_t seed)
{
	for (uint64_t i = first; i < end; i++) {
		unsigned char *page = base + i * PATTERN_PAGE;
		if (page_kind_of(seed, i) == PAGE_ZERO)
			*(volatile unsigned char *)page = 0;
		else
			generate_page(seed, i, page);
	}
}

struct fill_job {
	pthread_t thread;
	unsigned char *base;
	uint64_t first, end, seed;
};

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static void *fill_job_main(void *arg)
{
	struct fill_job *job = arg;
	/* Faulting the range in with one call is ~1.5x faster than taking a
	 * fault per page.  Only an optimisation: before Linux 5.14 it fails
	 * with EINVAL and the writes below fault the pages in. */
	madvise(job->base + job->first * PATTERN_PAGE, (job->end - job->first) * PATTERN_PAGE, MADV_POPULATE_WRITE);
	fill_pattern_range(job->base, job->first, job->end, job->seed);
	return NULL;
}

#define MAX_FILL_THREADS 8

/* Fills `pages` pattern pages using one thread per CPU: first-touch page
 * faults dominate the fill (especially in VMs), and they scale with CPUs.
 * The helper threads are gone before the subject reports ready, so the
 * process CRIU dumps is single-threaded. */
static void fill_pattern(unsigned char *base, uint64_t pages, uint64_t seed)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t jobs_count = cpus < 1 ? 1 : cpus > MAX_FILL_THREADS ? MAX_FILL_THREADS : (uint64_t)cpus;
	struct fill_job jobs[MAX_FILL_THREADS];
	bool started[MAX_FILL_THREADS] = { false };
	for (uint64_t k = 0; k < jobs_count; k++) {
		jobs[k] = (struct fill_job){ .base = base, .seed = seed,
					     .first = pages * k / jobs_count, .end = pages * (k + 1) / jobs_count };
		/* Job 0 runs on this thread; if a thread cannot start, its job
		 * runs here too, after the others were started. */
		if (k > 0)
			started[k] = pthread_create(&jobs[k].thread, NULL, fill_job_main, &jobs[k]) == 0;
	}
	for (uint64_t k = 0; k < jobs_count; k++)
		if (!started[k])
			fill_job_main(&jobs[k]);
	for (uint64_t k = 1; k < jobs_count; k++)
		if (started[k])
			pthread_join(jobs[k].thread, NULL);
}

static bool page_is_zero(const unsigned char *page)
{
	static const unsigned char zeros[PATTERN_PAGE];
	return memcmp(page, zeros, PATTERN_PAGE) == 0;
}

/* Returns the index of the first page that differs from the pattern, or
 * `pages` if all match; *bad_offset gets the first differing byte. */
static uint64_t find_pattern_mismatch(const unsigned char *base, uint64_t pages, uint64_t seed,
				      size_t *bad_offset)
{
	unsigned char expected[PATTERN_PAGE];
	for (uint64_t i = 0; i < pages; i++) {
		const unsigned char *page = base + i * PATTERN_PAGE;
		bool zero = page_kind_of(seed, i) == PAGE_ZERO;
		if (zero && page_is_zero(page))
			continue;
		generate_page(seed, i, expected);
		if (!zero && memcmp(page, expected, PATTERN_PAGE) == 0)
			continue;
		size_t off = 0;
		while (off < PATTERN_PAGE && page[off] == expected[off])
			off++;
		*bad_offset = off;
		return i;
	}
	return pages;
}

/* hugetlb: from the huge page pool (/proc/sys/vm/nr_hugepages), which CRIU
 * restores differently from ordinary memory. */
static void *map_anonymous(size_t bytes, bool hugetlb)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | (hugetlb ? MAP_HUGETLB : 0);
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------------ */
/* Subject state, status file, main loop                               */
/* ------------------------------------------------------------------ */

struct options {
	const char *status_path;
	uint64_t mib;
	uint64_t seed;
	uint64_t threads;
	uint64_t children;
	const char *data_path;
	uint64_t port;
	bool have_mib, have_threads, have_children, have_port;
	bool hugetlb;
};

struct subject {
	const char *mode;
	const char *status_path;
	const char *state; /* "ready", "verified", "failed" */
	uint64_t counter;
	uint64_t verify_seq;
	uint64_t verify_started_ms;
	uint64_t last_verify_ms;
	char detail[DETAIL_MAX];
	char extra[EXTRA_MAX]; /* mode-specific "key=value\n" lines */
};

enum verify_result { VERIFY_OK, VERIFY_FAILED, VERIFY_PENDING };

struct mode_ops {
	const char *name;
	/* Builds the mode's state; on failure returns -1 with subject->detail set. */
	int (*setup)(struct subject *s, const struct options *o);
	/* fd the main loop polls for input (-1 for none), and its handler. */
	int (*input_fd)(void);
	void (*on_input)(struct subject *s);
	/* Called every tick, after the counter was bumped. */
	void (*on_tick)(struct subject *s);
	/* starting=true on SIGUSR1, then false on each tick while PENDING.
	 * Sets subject->detail to the outcome. */
	enum verify_result (*verify)(struct subject *s, bool starting);
	/* Refreshes subject->extra before each status write. */
	void (*describe)(struct subject *s);
};

static volatile sig_atomic_t verify_requested;

static void on_sigusr1(int sig)
{
	(void)sig;
	verify_requested = 1;
}

static void set_detail(struct subject *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_detail(struct subject *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->detail, sizeof(s->detail), fmt, ap);
	va_end(ap);
	/* The status format is one key=value per line. */
	for (char *p = s->detail; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static void append_extra(struct subject *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append_extra(struct subject *s, const char *fmt, ...)
{
	size_t used = strlen(s->extra);
	if (used >= sizeof(s->extra) - 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->extra + used, sizeof(s->extra) - used, fmt, ap);
	va_end(ap);
}

/* Writes FILE.tmp and renames it over FILE.  The descriptor lives only for
 * open+write+close, so a dump almost never sees it; and since it is closed
 * before the rename, a dump that does catch it records FILE.tmp, which
 * stays in place until the restored process renames it. */
static int write_status(struct subject *s)
{
	char text[DETAIL_MAX + EXTRA_MAX + 256];
	int len = snprintf(text, sizeof(text),
			   "mode=%s\npid=%d\nstate=%s\ncounter=%" PRIu64 "\nheartbeat_ms=%" PRIu64
			   "\nverify_seq=%" PRIu64 "\nverify_ms=%" PRIu64 "\ndetail=%s\n%s",
			   s->mode, (int)getpid(), s->state, s->counter, realtime_ms(), s->verify_seq,
			   s->last_verify_ms, s->detail, s->extra);
	if (len < 0 || (size_t)len >= sizeof(text))
		len = (int)strlen(text);

	char tmp_path[4096];
	if ((size_t)snprintf(tmp_path, sizeof(tmp_path), "%s.tmp", s->status_path) >= sizeof(tmp_path)) {
		print_error("status path too long: %s", s->status_path);
		return -1;
	}
	int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		print_error("cannot open %s: %s", tmp_path, strerror(errno));
		return -1;
	}
	int rc = write_all(fd, text, (size_t)len);
	int saved = errno;
	if (close(fd) < 0 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	if (rc < 0) {
		print_error("cannot write %s: %s", tmp_path, strerror(saved));
		return -1;
	}
	if (rename(tmp_path, s->status_path) < 0) {
		print_error("cannot rename %s to %s: %s", tmp_path, s->status_path, strerror(errno));
		return -1;
	}
	return 0;
}

static void publish_status(struct subject *s, const struct mode_ops *ops)
{
	s->extra[0] = '\0';
	if (ops->describe)
		ops->describe(s);
	/* A failed write is reported on stderr and retried on the next period;
	 * the subject itself keeps running. */
	write_status(s);
}

static void finish_verification(struct subject *s, enum verify_result result)
{
	s->state = result == VERIFY_OK ? "verified" : "failed";
	s->verify_seq++;
	s->last_verify_ms = monotonic_ms() - s->verify_started_ms;
}

static int install_signal_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1; /* no SA_RESTART: we want poll() to wake up */
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		return -1;
	/* Peers closing pipes or sockets must show up as EPIPE, not kill us. */
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		return -1;
	return 0;
}

static int run_main_loop(struct subject *s, const struct mode_ops *ops)
{
	bool verifying = false;
	uint64_t next_tick = monotonic_ms() + TICK_MS;
	uint64_t ticks_since_status = 0;

	publish_status(s, ops);
	for (;;) {
		uint64_t now = monotonic_ms();
		int timeout = next_tick > now ? (int)(next_tick - now) : 0;
		struct pollfd pfd = { .fd = ops->input_fd ? ops->input_fd() : -1, .events = POLLIN };
		int n = poll(&pfd, 1, timeout);
		if (n < 0 && errno != EINTR) {
			print_error("poll failed: %s", strerror(errno));
			return 1;
		}
		if (n > 0 && (pfd.revents & POLLIN))
			ops->on_input(s);

		if (verify_requested && !verifying) {
			verify_requested = 0;
			verifying = true;
			s->verify_started_ms = monotonic_ms();
			enum verify_result r = ops->verify(s, true);
			if (r != VERIFY_PENDING) {
				verifying = false;
				finish_verification(s, r);
				publish_status(s, ops);
				ticks_since_status = 0;
			}
		}

		now = monotonic_ms();
		if (now < next_tick)
			continue;
		/* One increment per tick actually run: after a restore (or any
		 * long stop) the counter resumes where it was, without catching
		 * up on the time the process was not running. */
		bool late = now - next_tick > LATE_TICK_MS;
		next_tick = now + TICK_MS;
		s->counter++;
		if (ops->on_tick)
			ops->on_tick(s);
		if (verifying) {
			enum verify_result r = ops->verify(s, false);
			if (r != VERIFY_PENDING) {
				verifying = false;
				finish_verification(s, r);
				publish_status(s, ops);
				ticks_since_status = 0;
				continue;
			}
		}
		if (++ticks_since_status >= STATUS_EVERY_TICKS || late) {
			publish_status(s, ops);
			ticks_since_status = 0;
		}
	}
}

/* ------------------------------------------------------------------ */
/* mem                                                                 */
/* ------------------------------------------------------------------ */

static struct {
	unsigned char *base;
	uint64_t pages;
	uint64_t seed;
	uint64_t mib;
	uint64_t fill_ms;
} mem;

static int mem_setup(struct subject *s, const struct options *o)
{
	if (!o->have_mib || o->mib == 0) {
		set_detail(s, "mem needs --mib N (N >= 1)");
		return -1;
	}
	mem.mib = o->mib;
	mem.seed = o->seed;
	mem.pages = o->mib * MIB / PATTERN_PAGE;
	mem.base = map_anonymous(o->mib * MIB, o->hugetlb);
	if (!mem.base) {
		set_detail(s, "cannot map %" PRIu64 " MiB%s: %s", o->mib, o->hugetlb ? " of huge pages" : "",
			   strerror(errno));
		return -1;
	}
	uint64_t start = monotonic_ms();
	fill_pattern(mem.base, mem.pages, mem.seed);
	mem.fill_ms = monotonic_ms() - start;
	set_detail(s, "filled %" PRIu64 " MiB in %" PRIu64 " ms", mem.mib, mem.fill_ms);
	return 0;
}

static enum verify_result mem_verify(struct subject *s, bool starting)
{
	(void)starting;
	size_t offset = 0;
	uint64_t bad = find_pattern_mismatch(mem.base, mem.pages, mem.seed, &offset);
	if (bad < mem.pages) {
		set_detail(s, "page %" PRIu64 " (%s) differs at byte %zu (address offset %" PRIu64 ")", bad,
			   page_kind_name(page_kind_of(mem.seed, bad)), offset, bad * PATTERN_PAGE + offset);
		return VERIFY_FAILED;
	}
	set_detail(s, "all %" PRIu64 " pages of %" PRIu64 " MiB match", mem.pages, mem.mib);
	return VERIFY_OK;
}

static void mem_describe(struct subject *s)
{
	append_extra(s, "mib=%" PRIu64 "\nseed=%" PRIu64 "\nfill_ms=%" PRIu64 "\n", mem.mib, mem.seed,
		     mem.fill_ms);
}

/* ------------------------------------------------------------------ */
/* threads                                                             */
/* ------------------------------------------------------------------ */

/* Each thread owns a region of pages.  Page 0 holds a record with the
 * thread's counter; every other page is a data page whose body is derived
 * from (seed, thread, page, generation), with the generation in its header.
 * Each step the thread rewrites one data page with the next generation and
 * then the record, so a checkpoint can catch a thread mid-write; the
 * per-thread mutex makes the verifier see only completed steps. */

#define RECORD_MAGIC 0x5245434f52443031ull /* "RECORD01" */
#define DATA_MAGIC 0x44415441504147ull	   /* "DATAPAG" */

struct thread_record {
	uint64_t magic;
	uint64_t thread_index;
	uint64_t counter;
	uint64_t last_page;
	uint64_t checksum;
};

struct data_header {
	uint64_t magic;
	uint64_t thread_index;
	uint64_t page_index;
	uint64_t generation;
	uint64_t checksum;
};

struct worker {
	pthread_t thread;
	pthread_mutex_t lock;
	uint64_t index;
	unsigned char *region;
	uint64_t pages;
	_Atomic uint64_t counter;
};

static struct {
	struct worker *workers;
	uint64_t count;
	uint64_t seed;
	uint64_t region_bytes;
} thr;

static uint64_t record_checksum(const struct thread_record *r)
{
	return hash3(r->magic ^ r->thread_index, r->counter, r->last_page);
}

static uint64_t header_checksum(const struct data_header *h)
{
	return hash3(h->magic ^ h->thread_index, h->page_index, h->generation);
}

static void write_data_page(unsigned char *page, uint64_t thread_index, uint64_t page_index, uint64_t generation)
{
	struct data_header h = {
		.magic = DATA_MAGIC, .thread_index = thread_index, .page_index = page_index, .generation = generation
	};
	h.checksum = header_checksum(&h);
	fill_random(hash3(thr.seed ^ thread_index, page_index, generation), page + sizeof(h),
		    PATTERN_PAGE - sizeof(h));
	memcpy(page, &h, sizeof(h));
}

static void write_record(struct worker *w, uint64_t counter, uint64_t last_page)
{
	struct thread_record r = {
		.magic = RECORD_MAGIC, .thread_index = w->index, .counter = counter, .last_page = last_page
	};
	r.checksum = record_checksum(&r);
	memcpy(w->region, &r, sizeof(r));
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->lock);
		uint64_t counter = atomic_load(&w->counter) + 1;
		uint64_t page = 1 + counter % (w->pages - 1);
		struct data_header h;
		memcpy(&h, w->region + page * PATTERN_PAGE, sizeof(h));
		write_data_page(w->region + page * PATTERN_PAGE, w->index, page, h.generation + 1);
		write_record(w, counter, page);
		atomic_store(&w->counter, counter);
		pthread_mutex_unlock(&w->lock);
		sleep_ms(1);
	}
	return NULL;
}

static int threads_setup(struct subject *s, const struct options *o)
{
	if (!o->have_threads || o->threads == 0 || o->threads > 1024) {
		set_detail(s, "threads needs --threads T (1..1024)");
		return -1;
	}
	if (!o->have_mib || o->mib == 0) {
		set_detail(s, "threads needs --mib N (N >= 1, split evenly between the threads)");
		return -1;
	}
	thr.count = o->threads;
	thr.seed = o->seed;
	thr.region_bytes = o->mib * MIB / o->threads / PATTERN_PAGE * PATTERN_PAGE;
	if (thr.region_bytes < 2 * PATTERN_PAGE) {
		set_detail(s, "--mib %" PRIu64 " is too small for %" PRIu64 " threads (need 8 KiB each)", o->mib,
			   o->threads);
		return -1;
	}
	thr.workers = calloc(thr.count, sizeof(*thr.workers));
	if (!thr.workers) {
		set_detail(s, "out of memory");
		return -1;
	}
	for (uint64_t i = 0; i < thr.count; i++) {
		struct worker *w = &thr.workers[i];
		w->index = i;
		w->pages = thr.region_bytes / PATTERN_PAGE;
		w->region = map_anonymous(thr.region_bytes, false);
		if (!w->region) {
			set_detail(s, "cannot map region of thread %" PRIu64 ": %s", i, strerror(errno));
			return -1;
		}
		for (uint64_t p = 1; p < w->pages; p++)
			write_data_page(w->region + p * PATTERN_PAGE, i, p, 0);
		write_record(w, 0, 0);
		int err = pthread_mutex_init(&w->lock, NULL);
		if (err) {
			set_detail(s, "pthread_mutex_init: %s", strerror(err));
			return -1;
		}
	}
	/* Workers block SIGUSR1 so it always wakes the main thread's poll(). */
	sigset_t usr1, old;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, &old);
	for (uint64_t i = 0; i < thr.count; i++) {
		int err = pthread_create(&thr.workers[i].thread, NULL, worker_main, &thr.workers[i]);
		if (err) {
			set_detail(s, "pthread_create: %s", strerror(err));
			return -1;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	set_detail(s, "%" PRIu64 " threads with %" PRIu64 " KiB each", thr.count, thr.region_bytes / 1024);
	return 0;
}

/* Checks one worker's region under its lock; returns false with detail set. */
static bool check_worker_region(struct subject *s, struct worker *w)
{
	bool ok = false;
	pthread_mutex_lock(&w->lock);
	struct thread_record r;
	memcpy(&r, w->region, sizeof(r));
	uint64_t counter = atomic_load(&w->counter);
	unsigned char expected[PATTERN_PAGE];
	if (r.magic != RECORD_MAGIC || r.thread_index != w->index || r.checksum != record_checksum(&r)) {
		set_detail(s, "thread %" PRIu64 ": record page is corrupt", w->index);
		goto out;
	}
	if (r.counter != counter) {
		set_detail(s, "thread %" PRIu64 ": record counter %" PRIu64 " != live counter %" PRIu64, w->index,
			   r.counter, counter);
		goto out;
	}
	for (uint64_t p = 1; p < w->pages; p++) {
		unsigned char *page = w->region + p * PATTERN_PAGE;
		struct data_header h;
		memcpy(&h, page, sizeof(h));
		if (h.magic != DATA_MAGIC || h.thread_index != w->index || h.page_index != p ||
		    h.checksum != header_checksum(&h)) {
			set_detail(s, "thread %" PRIu64 ": header of page %" PRIu64 " is corrupt", w->index, p);
			goto out;
		}
		fill_random(hash3(thr.seed ^ w->index, p, h.generation), expected, PATTERN_PAGE - sizeof(h));
		if (memcmp(page + sizeof(h), expected, PATTERN_PAGE - sizeof(h)) != 0) {
			set_detail(s, "thread %" PRIu64 ": body of page %" PRIu64 " (generation %" PRIu64 ") differs",
				   w->index, p, h.generation);
			goto out;
		}
	}
	ok = true;
out:
	pthread_mutex_unlock(&w->lock);
	return ok;
}

#define THREADS_ADVANCE_TIMEOUT_MS 3000

static enum verify_result threads_verify(struct subject *s, bool starting)
{
	(void)starting;
	uint64_t *before = calloc(thr.count, sizeof(*before));
	if (!before) {
		set_detail(s, "out of memory");
		return VERIFY_FAILED;
	}
	enum verify_result result = VERIFY_FAILED;
	for (uint64_t i = 0; i < thr.count; i++)
		before[i] = atomic_load(&thr.workers[i].counter);
	for (uint64_t i = 0; i < thr.count; i++)
		if (!check_worker_region(s, &thr.workers[i]))
			goto out;
	/* Alive means advancing: every counter must move past its sample. */
	uint64_t deadline = monotonic_ms() + THREADS_ADVANCE_TIMEOUT_MS;
	for (uint64_t i = 0; i < thr.count; i++) {
		while (atomic_load(&thr.workers[i].counter) <= before[i]) {
			if (monotonic_ms() > deadline) {
				set_detail(s, "thread %" PRIu64 " is not advancing (counter stuck at %" PRIu64 ")", i,
					   before[i]);
				goto out;
			}
			sleep_ms(1);
		}
	}
	set_detail(s, "%" PRIu64 " threads alive and advancing, all regions intact", thr.count);
	result = VERIFY_OK;
out:
	free(before);
	return result;
}

static void threads_describe(struct subject *s)
{
	append_extra(s, "threads=%" PRIu64 "\nregion_kib=%" PRIu64 "\nthread_counters=", thr.count,
		     thr.region_bytes / 1024);
	for (uint64_t i = 0; i < thr.count; i++)
		append_extra(s, "%s%" PRIu64, i ? "," : "", atomic_load(&thr.workers[i].counter));
	append_extra(s, "\n");
}

/* ------------------------------------------------------------------ */
/* tree                                                                */
/* ------------------------------------------------------------------ */

/* The parent feeds each child 1, 2, 3, ... (u64, native endian) through
 * its own pipe; a child checks each value is the previous plus one.  The
 * children publish their progress in a shared anonymous mapping made
 * before fork (so it needs no file) and answer verification requests
 * through it: the parent bumps request_seq, the child checks itself and
 * stores ack_ok then ack_seq. */

#define TREE_VERIFY_TIMEOUT_MS 3000
#define CHILD_POLL_MS 20

struct child_slot {
	_Atomic uint64_t received;
	_Atomic uint64_t last_value;
	_Atomic uint64_t errors;
	_Atomic uint64_t request_seq;
	_Atomic uint64_t ack_seq;
	_Atomic uint64_t ack_ok;
	char first_error[128];
} __attribute__((aligned(64)));

struct child_info {
	pid_t pid;
	int write_fd;
	uint64_t next_value;
	bool alive;
	bool broken_pipe;
	char exit_reason[64];
};

static struct {
	struct child_slot *slots; /* shared with the children */
	struct child_info *children;
	uint64_t count;
	uint64_t request_seq;
	uint64_t *received_at_request;
} tree;

static void child_process_values(struct child_slot *slot, const unsigned char *buf, size_t len)
{
	for (size_t off = 0; off + 8 <= len; off += 8) {
		uint64_t value;
		memcpy(&value, buf + off, 8);
		uint64_t expected = atomic_load(&slot->last_value) + 1;
		if (value != expected && atomic_fetch_add(&slot->errors, 1) == 0)
			snprintf(slot->first_error, sizeof(slot->first_error),
				 "expected %" PRIu64 ", got %" PRIu64, expected, value);
		atomic_store(&slot->last_value, value);
		atomic_fetch_add(&slot->received, 1);
	}
}

static void child_answer_request(struct child_slot *slot)
{
	uint64_t request = atomic_load(&slot->request_seq);
	if (request == atomic_load(&slot->ack_seq))
		return;
	/* No gap and no duplicate means exactly one value per number so far. */
	bool ok = atomic_load(&slot->errors) == 0 && atomic_load(&slot->received) == atomic_load(&slot->last_value);
	atomic_store(&slot->ack_ok, ok);
	atomic_store(&slot->ack_seq, request);
}

static void child_main(struct child_slot *slot, int read_fd)
{
	unsigned char buf[8 * 512];
	size_t carry = 0;
	for (;;) {
		struct pollfd pfd = { .fd = read_fd, .events = POLLIN };
		int n = poll(&pfd, 1, CHILD_POLL_MS);
		if (n < 0 && errno != EINTR)
			_exit(3);
		child_answer_request(slot);
		if (n <= 0)
			continue;
		ssize_t got = read(read_fd, buf + carry, sizeof(buf) - carry);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0)
			_exit(3);
		if (got == 0)
			_exit(0); /* the parent is gone */
		size_t len = carry + (size_t)got;
		size_t whole = len / 8 * 8;
		child_process_values(slot, buf, whole);
		carry = len - whole;
		memmove(buf, buf + whole, carry);
	}
}

static int tree_setup(struct subject *s, const struct options *o)
{
	if (!o->have_children || o->children == 0 || o->children > 256) {
		set_detail(s, "tree needs --children C (1..256)");
		return -1;
	}
	tree.count = o->children;
	size_t slots_bytes = tree.count * sizeof(struct child_slot);
	tree.slots = mmap(NULL, slots_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	tree.children = calloc(tree.count, sizeof(*tree.children));
	tree.received_at_request = calloc(tree.count, sizeof(*tree.received_at_request));
	if (tree.slots == MAP_FAILED || !tree.children || !tree.received_at_request) {
		set_detail(s, "cannot allocate tree state: %s", strerror(errno));
		return -1;
	}
	for (uint64_t i = 0; i < tree.count; i++) {
		int fds[2];
		if (pipe(fds) < 0) {
			set_detail(s, "pipe: %s", strerror(errno));
			return -1;
		}
		pid_t pid = fork();
		if (pid < 0) {
			set_detail(s, "fork: %s", strerror(errno));
			return -1;
		}
		if (pid == 0) {
			/* Keep only our read end: the write ends to us and to our
			 * siblings must close when the parent dies, so we see EOF. */
			signal(SIGUSR1, SIG_IGN);
			if (dup2(fds[0], 3) < 0)
				_exit(3);
			close_range(4, ~0u, 0);
			child_main(&tree.slots[i], 3);
		}
		close(fds[0]);
		/* Non-blocking: a stopped child must not stall the parent. */
		if (fcntl(fds[1], F_SETFL, O_NONBLOCK) < 0 || fcntl(fds[1], F_SETFD, FD_CLOEXEC) < 0) {
			set_detail(s, "fcntl on pipe: %s", strerror(errno));
			return -1;
		}
		tree.children[i] = (struct child_info){ .pid = pid, .write_fd = fds[1], .next_value = 1, .alive = true };
	}
	set_detail(s, "%" PRIu64 " children running", tree.count);
	return 0;
}

static void tree_reap_children(void)
{
	for (;;) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, WNOHANG);
		if (pid <= 0)
			return;
		for (uint64_t i = 0; i < tree.count; i++) {
			struct child_info *c = &tree.children[i];
			if (c->pid != pid)
				continue;
			c->alive = false;
			if (WIFSIGNALED(wstatus))
				snprintf(c->exit_reason, sizeof(c->exit_reason), "killed by signal %d", WTERMSIG(wstatus));
			else
				snprintf(c->exit_reason, sizeof(c->exit_reason), "exited with status %d",
					 WEXITSTATUS(wstatus));
		}
	}
}

static void tree_on_tick(struct subject *s)
{
	(void)s;
	tree_reap_children();
	for (uint64_t i = 0; i < tree.count; i++) {
		struct child_info *c = &tree.children[i];
		if (!c->alive || c->broken_pipe)
			continue;
		ssize_t n = write(c->write_fd, &c->next_value, sizeof(c->next_value));
		if (n == (ssize_t)sizeof(c->next_value))
			c->next_value++;
		else if (n < 0 && errno == EPIPE)
			c->broken_pipe = true;
		/* EAGAIN (pipe full: child stopped or slow) just retries next tick;
		 * writes of 8 bytes to a pipe are atomic, so no partial writes. */
	}
}

/* Returns a failure reason for child i, or NULL if it looks fine so far. */
static const char *tree_child_problem(uint64_t i, char *buf, size_t len)
{
	struct child_info *c = &tree.children[i];
	struct child_slot *slot = &tree.slots[i];
	if (!c->alive)
		snprintf(buf, len, "child %" PRIu64 " (pid %d) %s", i, (int)c->pid, c->exit_reason);
	else if (c->broken_pipe)
		snprintf(buf, len, "child %" PRIu64 " (pid %d) closed its pipe", i, (int)c->pid);
	else if (atomic_load(&slot->errors) > 0)
		snprintf(buf, len, "child %" PRIu64 " saw %" PRIu64 " sequence errors, first: %s", i,
			 atomic_load(&slot->errors), slot->first_error);
	else
		return NULL;
	return buf;
}

static enum verify_result tree_verify(struct subject *s, bool starting)
{
	char reason[256];
	tree_reap_children();
	if (starting) {
		tree.request_seq++;
		for (uint64_t i = 0; i < tree.count; i++) {
			tree.received_at_request[i] = atomic_load(&tree.slots[i].received);
			atomic_store(&tree.slots[i].request_seq, tree.request_seq);
		}
	}
	for (uint64_t i = 0; i < tree.count; i++) {
		if (tree_child_problem(i, reason, sizeof(reason))) {
			set_detail(s, "%s", reason);
			return VERIFY_FAILED;
		}
	}
	bool timed_out = monotonic_ms() - s->verify_started_ms > TREE_VERIFY_TIMEOUT_MS;
	for (uint64_t i = 0; i < tree.count; i++) {
		struct child_slot *slot = &tree.slots[i];
		bool acked = atomic_load(&slot->ack_seq) == tree.request_seq;
		bool advanced = atomic_load(&slot->received) > tree.received_at_request[i];
		if (acked && !atomic_load(&slot->ack_ok)) {
			set_detail(s, "child %" PRIu64 " reports inconsistent counts: received %" PRIu64 ", last %" PRIu64,
				   i, atomic_load(&slot->received), atomic_load(&slot->last_value));
			return VERIFY_FAILED;
		}
		if (acked && advanced)
			continue;
		if (!timed_out)
			return VERIFY_PENDING;
		set_detail(s, "child %" PRIu64 " (pid %d) %s within %d ms", i, (int)tree.children[i].pid,
			   acked ? "received nothing new" : "did not answer", TREE_VERIFY_TIMEOUT_MS);
		return VERIFY_FAILED;
	}
	set_detail(s, "%" PRIu64 " children alive, sequences continuous and advancing", tree.count);
	return VERIFY_OK;
}

static void tree_describe(struct subject *s)
{
	append_extra(s, "children=%" PRIu64 "\nchild_pids=", tree.count);
	for (uint64_t i = 0; i < tree.count; i++)
		append_extra(s, "%s%d", i ? "," : "", (int)tree.children[i].pid);
	append_extra(s, "\nchild_received=");
	for (uint64_t i = 0; i < tree.count; i++)
		append_extra(s, "%s%" PRIu64, i ? "," : "", atomic_load(&tree.slots[i].received));
	append_extra(s, "\n");
}

/* ------------------------------------------------------------------ */
/* files                                                               */
/* ------------------------------------------------------------------ */

/* The data file is a header line followed by fixed-size records; record i
 * is a pure function of (seed, i), so the expected content is known from
 * the record count alone.  Records are appended with plain write() at the
 * descriptor's offset (not O_APPEND), so a wrongly restored offset shows. */

#define FILES_INITIAL_RECORDS 64
#define FILES_MAX_RECORDS 100000 /* ~3.4 MB: stop growing, keep serving */
#define FILES_APPEND_EVERY_TICKS 10
#define FILES_HEADER "crstream test subject data file v1\n"
#define RECORD_LEN 34 /* "rec " + 12 digits + ' ' + 16 hex + '\n' */
#define SELF_CHECK_TIMEOUT_MS 2000

static struct {
	const char *path;
	int data_fd;
	int listen_fd;
	int port;
	uint64_t seed;
	uint64_t records;
	uint64_t connections;
	uint64_t counter; /* mirror of subject counter for replies */
	uint32_t crc_table[256];
} files;

static void crc32_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		files.crc_table[i] = c;
	}
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t len)
{
	crc = ~crc;
	while (len--)
		crc = files.crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* out gets exactly RECORD_LEN bytes plus a NUL (index < 10^12). */
static void format_record(uint64_t index, char out[RECORD_LEN + 1])
{
	char text[64];
	snprintf(text, sizeof(text), "rec %012" PRIu64 " %016" PRIx64 "\n", (uint64_t)(index % 1000000000000ull),
		 hash3(files.seed, index, 0x66696c65));
	memcpy(out, text, RECORD_LEN + 1);
}

static uint64_t expected_file_size(uint64_t records)
{
	return strlen(FILES_HEADER) + records * RECORD_LEN;
}

static int append_record(void)
{
	char rec[RECORD_LEN + 1];
	format_record(files.records, rec);
	if (write_all(files.data_fd, rec, RECORD_LEN) < 0)
		return -1;
	files.records++;
	return 0;
}

static int files_setup(struct subject *s, const struct options *o)
{
	if (!o->data_path || !o->have_port || o->port > 65535) {
		set_detail(s, "files needs --data FILE and --port P (0..65535, 0 = any)");
		return -1;
	}
	crc32_init();
	files.path = o->data_path;
	files.seed = o->seed;
	files.data_fd = open(o->data_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (files.data_fd < 0) {
		set_detail(s, "cannot open %s: %s", o->data_path, strerror(errno));
		return -1;
	}
	if (write_all(files.data_fd, FILES_HEADER, strlen(FILES_HEADER)) < 0) {
		set_detail(s, "cannot write %s: %s", o->data_path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < FILES_INITIAL_RECORDS; i++)
		if (append_record() < 0) {
			set_detail(s, "cannot write %s: %s", o->data_path, strerror(errno));
			return -1;
		}

	files.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (files.listen_fd < 0) {
		set_detail(s, "socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o->port) };
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t addr_len = sizeof(addr);
	if (setsockopt(files.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(files.listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(files.listen_fd, 64) < 0 ||
	    getsockname(files.listen_fd, (struct sockaddr *)&addr, &addr_len) < 0) {
		set_detail(s, "cannot listen on 127.0.0.1:%" PRIu64 ": %s", o->port, strerror(errno));
		return -1;
	}
	files.port = ntohs(addr.sin_port);
	set_detail(s, "data file %s open, listening on 127.0.0.1:%d", o->data_path, files.port);
	return 0;
}

/* CRC-32 of the whole file as read through our descriptor. */
static int crc_of_data_file(uint32_t *crc_out, uint64_t *size_out)
{
	unsigned char buf[65536];
	uint32_t crc = 0;
	uint64_t off = 0;
	for (;;) {
		ssize_t n = pread(files.data_fd, buf, sizeof(buf), (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		crc = crc32_update(crc, buf, (size_t)n);
		off += (uint64_t)n;
	}
	*crc_out = crc;
	*size_out = off;
	return 0;
}

static void serve_connection(int conn)
{
	char reply[256];
	uint32_t crc = 0;
	uint64_t size = 0;
	int len;
	if (crc_of_data_file(&crc, &size) < 0)
		len = snprintf(reply, sizeof(reply), "error pid=%d cannot read data file: %s\n", (int)getpid(),
			       strerror(errno));
	else
		len = snprintf(reply, sizeof(reply),
			       "pong pid=%d counter=%" PRIu64 " records=%" PRIu64 " size=%" PRIu64
			       " crc=%08x port=%d\n",
			       (int)getpid(), files.counter, files.records, size, crc, files.port);
	/* A client that went away already is its own problem. */
	if (send(conn, reply, (size_t)len, MSG_NOSIGNAL) < 0 && errno != EPIPE && errno != ECONNRESET)
		print_error("send: %s", strerror(errno));
	shutdown(conn, SHUT_WR);
	close(conn);
	files.connections++;
}

static int files_input_fd(void)
{
	return files.listen_fd;
}

static void files_on_input(struct subject *s)
{
	(void)s;
	for (;;) {
		int conn = accept4(files.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
				print_error("accept: %s", strerror(errno));
			return;
		}
		serve_connection(conn);
	}
}

static void files_on_tick(struct subject *s)
{
	files.counter = s->counter;
	if (s->counter % FILES_APPEND_EVERY_TICKS != 0 || files.records >= FILES_MAX_RECORDS)
		return;
	if (append_record() < 0)
		print_error("cannot append to %s: %s", files.path, strerror(errno));
}

/* Reads the file through our descriptor and compares it with what we wrote. */
static bool check_data_file(struct subject *s)
{
	uint64_t expected = expected_file_size(files.records);
	struct stat by_fd, by_path;
	if (fstat(files.data_fd, &by_fd) < 0) {
		set_detail(s, "fstat on data fd: %s", strerror(errno));
		return false;
	}
	if (stat(files.path, &by_path) < 0 || by_fd.st_dev != by_path.st_dev || by_fd.st_ino != by_path.st_ino) {
		set_detail(s, "data fd no longer refers to the file at %s", files.path);
		return false;
	}
	if ((uint64_t)by_fd.st_size != expected) {
		set_detail(s, "data file size %lld, expected %" PRIu64, (long long)by_fd.st_size, expected);
		return false;
	}
	off_t offset = lseek(files.data_fd, 0, SEEK_CUR);
	if (offset < 0 || (uint64_t)offset != expected) {
		set_detail(s, "data fd offset %lld, expected %" PRIu64, (long long)offset, expected);
		return false;
	}
	size_t header_len = strlen(FILES_HEADER);
	char buf[RECORD_LEN + 1];
	if (pread(files.data_fd, buf, header_len, 0) != (ssize_t)header_len || memcmp(buf, FILES_HEADER, header_len)) {
		set_detail(s, "data file header differs");
		return false;
	}
	for (uint64_t i = 0; i < files.records; i++) {
		char want[RECORD_LEN + 1];
		format_record(i, want);
		off_t at = (off_t)(header_len + i * RECORD_LEN);
		if (pread(files.data_fd, buf, RECORD_LEN, at) != RECORD_LEN || memcmp(buf, want, RECORD_LEN)) {
			set_detail(s, "data file record %" PRIu64 " (offset %lld) differs", i, (long long)at);
			return false;
		}
	}
	return true;
}

/* Connects to our own listening socket and expects our own pong back. The
 * port is read back from the socket first: a restore may have remapped it
 * (criu-image-streamer's --tcp-listen-remap). */
static bool check_listener(struct subject *s)
{
	struct sockaddr_in bound;
	socklen_t bound_len = sizeof(bound);
	if (getsockname(files.listen_fd, (struct sockaddr *)&bound, &bound_len) == 0)
		files.port = ntohs(bound.sin_port);
	int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (client < 0) {
		set_detail(s, "socket: %s", strerror(errno));
		return false;
	}
	bool ok = false;
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)files.port) };
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* On loopback the handshake completes in the kernel's backlog, so a
	 * blocking connect returns before we accept. */
	if (connect(client, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		set_detail(s, "cannot connect to own port %d: %s", files.port, strerror(errno));
		goto out;
	}
	char line[256];
	size_t got = 0;
	uint64_t deadline = monotonic_ms() + SELF_CHECK_TIMEOUT_MS;
	while (monotonic_ms() < deadline) {
		files_on_input(s);
		struct pollfd pfd = { .fd = client, .events = POLLIN };
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		ssize_t n = read(client, line + got, sizeof(line) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(line, '\n', got) || got == sizeof(line) - 1)
			break;
	}
	line[got] = '\0';
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "pong pid=%d ", (int)getpid());
	if (strncmp(line, prefix, strlen(prefix)) != 0) {
		set_detail(s, "own port %d answered \"%.80s\" instead of a pong", files.port, line);
		goto out;
	}
	ok = true;
out:
	close(client);
	return ok;
}

static enum verify_result files_verify(struct subject *s, bool starting)
{
	(void)starting;
	if (!check_data_file(s) || !check_listener(s))
		return VERIFY_FAILED;
	set_detail(s, "data file intact (%" PRIu64 " records), port %d answers", files.records, files.port);
	return VERIFY_OK;
}

static void files_describe(struct subject *s)
{
	append_extra(s, "port=%d\nrecords=%" PRIu64 "\ndata_size=%" PRIu64 "\nconnections=%" PRIu64 "\n", files.port,
		     files.records, expected_file_size(files.records), files.connections);
}

/* ------------------------------------------------------------------ */
/* Command line                                                        */
/* ------------------------------------------------------------------ */

static const struct mode_ops modes[] = {
	{ "mem", mem_setup, NULL, NULL, NULL, mem_verify, mem_describe },
	{ "threads", threads_setup, NULL, NULL, NULL, threads_verify, threads_describe },
	{ "tree", tree_setup, NULL, NULL, tree_on_tick, tree_verify, tree_describe },
	{ "files", files_setup, files_input_fd, files_on_input, files_on_tick, files_verify, files_describe },
};

static int usage(void)
{
	fprintf(stderr, "usage: subject mem     --status FILE --mib N [--seed S] [--hugetlb]\n"
			"       subject threads --status FILE --threads T --mib N [--seed S]\n"
			"       subject tree    --status FILE --children C\n"
			"       subject files   --status FILE --data FILE --port P [--seed S]\n"
			"Start it detached (setsid ... </dev/null >/dev/null 2>&1 &); SIGUSR1 verifies.\n"
			"See tests/subjects/README.md.\n");
	return 2;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option long_options[] = {
		{ "status", required_argument, NULL, 's' },   { "mib", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 'S' },     { "threads", required_argument, NULL, 't' },
		{ "children", required_argument, NULL, 'c' }, { "data", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },     { "hugetlb", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	*o = (struct options){ .seed = 1 };
	int opt;
	while ((opt = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		uint64_t *number = NULL;
		bool *seen = NULL;
		switch (opt) {
		case 's': o->status_path = optarg; continue;
		case 'd': o->data_path = optarg; continue;
		case 'H': o->hugetlb = true; continue;
		case 'm': number = &o->mib, seen = &o->have_mib; break;
		case 'S': number = &o->seed; break;
		case 't': number = &o->threads, seen = &o->have_threads; break;
		case 'c': number = &o->children, seen = &o->have_children; break;
		case 'p': number = &o->port, seen = &o->have_port; break;
		default: return -1;
		}
		if (parse_u64(optarg, number) < 0) {
			print_error("not a non-negative integer: %s", optarg);
			return -1;
		}
		if (seen)
			*seen = true;
	}
	if (optind != argc) {
		print_error("unexpected argument: %s", argv[optind]);
		return -1;
	}
	if (!o->status_path) {
		print_error("--status FILE is required");
		return -1;
	}
	return 0;
}

/* CRIU dumps a session leader's tree without --shell-job; make sure we
 * are one even if the caller forgot setsid (fails harmlessly if we are a
 * process group leader already, e.g. started from an interactive shell). */
static void become_session_leader(void)
{
	if (getsid(0) != getpid() && setsid() < 0)
		print_error("warning: not a session leader and setsid failed (%s); "
			    "start me with setsid so CRIU needs no --shell-job",
			    strerror(errno));
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const struct mode_ops *ops = NULL;
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(argv[1], modes[i].name) == 0)
			ops = &modes[i];
	if (!ops) {
		fprintf(stderr, "subject: unknown mode \"%s\"\n", argv[1]);
		return usage();
	}
	program_mode = ops->name;
	init_text_tokens();

	struct options o;
	if (parse_options(argc - 1, argv + 1, &o) < 0)
		return usage();
	become_session_leader();
	if (install_signal_handlers() < 0) {
		print_error("sigaction: %s", strerror(errno));
		return 1;
	}

	struct subject s = { .mode = ops->name, .status_path = o.status_path, .state = "ready" };
	if (ops->setup(&s, &o) < 0) {
		print_error("%s", s.detail);
		s.state = "failed";
		write_status(&s);
		return 1;
	}
	return run_main_loop(&s, ops);
}
