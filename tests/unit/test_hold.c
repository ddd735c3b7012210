/* checkpoint/hold.c: every stream read to its end into a private copy
 * before anything else reads it; the first real failure reported, not the
 * streams it stopped; the copies read back through their store. Readers
 * here are in-memory fakes; tests/integration/test_crypto.sh drives the
 * real thing (verifying readers, CRIU, a full $TMPDIR). */
#include "unit.h"
#include "checkpoint/hold.h"
#include "util/err.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* A reader that gives `good` bytes of `data` and then fails, the way a
 * verifying reader does at a chunk that does not match. */
struct failing_r {
	struct reader r;
	const uint8_t *data;
	size_t good, at;
};

static ssize_t fr_read(struct reader *r, void *buf, size_t cap)
{
	struct failing_r *f = (struct failing_r *)r;
	if (f->at == f->good)
		return err_set("chunk 2 does not match its signed SHA-256");
	size_t n = f->good - f->at < cap ? f->good - f->at : cap;
	memcpy(buf, f->data + f->at, n);
	f->at += n;
	return (ssize_t)n;
}

static void fr_close(struct reader *r)
{
	free(r);
}

static const struct reader_ops failing_ops = {.read = fr_read, .close = fr_close};

static struct reader *failing_reader(const uint8_t *data, size_t good)
{
	struct failing_r *f = calloc(1, sizeof(*f));
	f->r.ops = &failing_ops;
	f->data = data;
	f->good = good;
	return &f->r;
}

static uint8_t *pattern(size_t len, unsigned seed)
{
	uint8_t *p = malloc(len);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed + (i >> 12));
	return p;
}

static bool read_back(struct store *s, const char *key, const uint8_t *want, size_t len)
{
	uint64_t size = 0;
	struct reader *r = s->ops->open_read(s, key, &size);
	if (!r || size != len)
		return false;
	uint8_t *got = malloc(len + 1);
	ssize_t n = reader_read_full(r, got, len + 1);
	bool same = n == (ssize_t)len && !memcmp(got, want, len);
	free(got);
	reader_close(r);
	return same;
}

static void test_streams_held_and_read_back(void)
{
	const size_t len[3] = {0, 3 << 20, (5 << 20) + 17};
	const char *keys[3] = {"img-0.lz4", "img-1.lz4", "img-2.lz4"};
	uint8_t *data[3];
	struct reader *in[3];
	uint64_t bytes[3];
	for (int i = 0; i < 3; i++) {
		data[i] = pattern(len[i] ? len[i] : 1, (unsigned)i);
		in[i] = mem_reader(data[i], len[i], 65536 + (size_t)i);
		bytes[i] = len[i];
	}
	atomic_bool stop;
	atomic_init(&stop, false);
	struct held *h = NULL;
	CHECK(hold_streams(in, keys, bytes, 3, &stop, NULL, &h) == 0);
	CHECK(h != NULL);
	if (h) {
		struct store *s = held_store(h);
		for (int i = 0; i < 3; i++)
			CHECK(read_back(s, keys[i], data[i], len[i]));
		/* Each open reads from the start, whatever other readers did. */
		CHECK(read_back(s, keys[2], data[2], len[2]));
		uint64_t size;
		CHECK(s->ops->open_read(s, "img-9.lz4", &size) == NULL);
		CHECK_ERR("img-9.lz4: not held");
		held_free(h);
	}
	for (int i = 0; i < 3; i++)
		free(data[i]);
}

static void test_first_real_failure_is_reported(void)
{
	const char *keys[3] = {"img-0.zst", "img-1.zst", "img-2.zst"};
	uint8_t *data = pattern(8 << 20, 7);
	struct reader *in[3] = {mem_reader(data, 8 << 20, 0), failing_reader(data, 1 << 20),
				mem_reader(data, 8 << 20, 0)};
	uint64_t bytes[3] = {8 << 20, 8 << 20, 8 << 20};
	atomic_bool stop;
	atomic_init(&stop, false);
	struct held *h = NULL;
	CHECK(hold_streams(in, keys, bytes, 3, &stop, NULL, &h) < 0);
	CHECK(h == NULL);
	CHECK_ERR("img-1.zst: chunk 2 does not match");
	CHECK(!strstr(err_msg(), "stopped"));
	free(data);
}

static void test_stop_says_interrupted(void)
{
	const char *keys[1] = {"img-0"};
	uint8_t *data = pattern(4 << 20, 3);
	struct reader *in[1] = {mem_reader(data, 4 << 20, 0)};
	uint64_t bytes[1] = {4 << 20};
	atomic_bool stop;
	atomic_init(&stop, true);
	struct held *h = NULL;
	CHECK(hold_streams(in, keys, bytes, 1, &stop, NULL, &h) < 0);
	CHECK(h == NULL);
	CHECK_ERR("interrupted");
	free(data);
}

/* A reader that takes its time: 40 reads of 64 KiB, 15 ms each. */
struct slow_r {
	struct reader r;
	int left;
};

static ssize_t slow_read(struct reader *r, void *buf, size_t cap)
{
	struct slow_r *s = (struct slow_r *)r;
	if (s->left == 0)
		return 0;
	s->left--;
	struct timespec t = {.tv_nsec = 15 * 1000 * 1000};
	nanosleep(&t, NULL);
	size_t n = cap < 65536 ? cap : 65536;
	memset(buf, 'x', n);
	return (ssize_t)n;
}

static void slow_close(struct reader *r)
{
	free(r);
}

static const struct reader_ops slow_ops = {.read = slow_read, .close = slow_close};

struct ticks {
	int count;
	uint64_t last, total;
	bool went_back;
};

static void count_tick(void *arg, uint64_t held, uint64_t total)
{
	struct ticks *t = arg;
	t->went_back |= held < t->last;
	t->count++;
	t->last = held;
	t->total = total;
}

/* The caller hears about progress while it waits (0.6 s here: at least
 * one tick at five a second), and the numbers only grow. */
static void test_progress_ticks_while_holding(void)
{
	struct slow_r *s = calloc(1, sizeof(*s));
	s->r.ops = &slow_ops;
	s->left = 40;
	struct reader *in[1] = {&s->r};
	const char *keys[1] = {"img-0"};
	uint64_t bytes[1] = {40 * 65536};
	atomic_bool stop;
	atomic_init(&stop, false);
	struct ticks t = {0};
	struct hold_tick tick = {count_tick, &t};
	struct held *h = NULL;
	CHECK(hold_streams(in, keys, bytes, 1, &stop, &tick, &h) == 0);
	CHECK(t.count >= 1);
	CHECK(!t.went_back);
	CHECK(t.total == 40 * 65536);
	CHECK(t.last <= t.total);
	held_free(h);
}

int main(void)
{
	RUN(test_streams_held_and_read_back);
	RUN(test_first_real_failure_is_reported);
	RUN(test_stop_says_interrupted);
	RUN(test_progress_ticks_while_holding);
	return unit_done();
}
