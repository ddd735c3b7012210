/* Codec layer: round trips with awkward write and read sizes, truncated,
 * corrupt, trailing and concatenated input, writer close/abort ordering,
 * parallel use, and interoperability with the standard command-line tools
 * in both directions. */
#include "codec/codec.h"
#include "codec/codec_filter.h"
#include "codec/codec_impl.h"
#include "util/err.h"
#include "util/stream.h"

#include "unit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define MIB ((size_t)1 << 20)
#define BIG_LEN (64 * MIB)

/* ---- test data: 4 KiB pages, 40% zero, 30% random, 30% text-like ---- */

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void fill_page(unsigned char *p, size_t n, uint64_t *s)
{
	static const char *const words[] = { "criu ", "page ", "stream ", "shard ",
					     "restore ", "0x7f3a ", "pid=42 ", "\n" };
	unsigned kind = (unsigned)(rnd(s) % 10);
	if (kind < 4) {
		memset(p, 0, n);
	} else if (kind < 7) {
		for (size_t i = 0; i < n; i++)
			p[i] = (unsigned char)rnd(s);
	} else {
		for (size_t i = 0; i < n;) {
			const char *w = words[rnd(s) % 8];
			size_t l = strlen(w) < n - i ? strlen(w) : n - i;
			memcpy(p + i, w, l);
			i += l;
		}
	}
}

static unsigned char *mixed_data(size_t len, uint64_t seed)
{
	unsigned char *buf = malloc(len ? len : 1);
	if (!buf)
		abort();
	uint64_t s = seed | 1;
	for (size_t off = 0; off < len; off += 4096)
		fill_page(buf + off, len - off < 4096 ? len - off : 4096, &s);
	return buf;
}

static unsigned char *big_data; /* BIG_LEN bytes, made once */

/* ---- a writer that records how it was used ---- */

struct probe_log {
	struct membuf mb;
	size_t writes;
	size_t min_write;	/* smallest write but the last (init SIZE_MAX) */
	size_t last_write;
	size_t fail_after;	/* fail writes once this many bytes were taken (0: never) */
	bool fail_close;
	bool closed;
	bool aborted;
};

struct probe_writer {
	struct writer w;
	struct probe_log *log;
};

static int probe_write(struct writer *w, const void *buf, size_t len)
{
	struct probe_log *log = ((struct probe_writer *)w)->log;
	if (log->fail_after && log->mb.len + len > log->fail_after)
		return err_set("probe: disk full at offset %zu", log->mb.len);
	unsigned char *p = realloc(log->mb.data, log->mb.len + len + 1);
	if (!p)
		return err_set("probe: out of memory");
	log->mb.data = p;
	memcpy(p + log->mb.len, buf, len);
	log->mb.len += len;
	if (log->writes > 0 && log->last_write < log->min_write)
		log->min_write = log->last_write;
	log->last_write = len;
	log->writes++;
	return 0;
}

static int probe_close(struct writer *w)
{
	struct probe_log *log = ((struct probe_writer *)w)->log;
	free(w);
	log->closed = true;
	return log->fail_close ? err_set("probe: close failed") : 0;
}

static void probe_abort(struct writer *w)
{
	((struct probe_writer *)w)->log->aborted = true;
	free(w);
}

static const struct writer_ops probe_ops = {
	.write = probe_write, .close = probe_close, .abort = probe_abort};

static struct writer *probe_writer(struct probe_log *log)
{
	struct probe_writer *p = calloc(1, sizeof(*p));
	if (!p)
		abort();
	p->w.ops = &probe_ops;
	p->log = log;
	return &p->w;
}

/* ---- encode / decode helpers ---- */

/* Write sizes cycle through `pattern` (0-terminated); NULL: one write. */
static int encode_with(const struct codec *c, int level, const unsigned char *data, size_t len,
		       const size_t *pattern, struct membuf *out)
{
	struct writer *sink = membuf_writer(out);
	struct writer *w = sink ? c->encoder(level, sink) : NULL;
	if (!w) {
		writer_abort(sink);
		return -1;
	}
	for (size_t off = 0, i = 0; off < len; i++) {
		size_t n = pattern ? pattern[i] : len;
		if (!pattern || !pattern[i + 1])
			i = (size_t)-1;
		n = n < len - off ? n : len - off;
		if (writer_write(w, data + off, n) < 0) {
			writer_abort(w);
			return -1;
		}
		off += n;
	}
	if (w->bytes_in != len) {
		writer_abort(w);
		return err_set("encoder counted %llu bytes in, not %zu",
			       (unsigned long long)w->bytes_in, len);
	}
	return writer_close(w);
}

static int encode(const struct codec *c, const unsigned char *data, size_t len,
		  struct membuf *out)
{
	return encode_with(c, c->default_level, data, len, NULL, out);
}

/* Read with mem_reader chunks of `chunk` bytes and read caps cycling
 * through `caps` (0-terminated); NULL: 1 MiB reads. */
static int decode_with(const struct codec *c, const unsigned char *comp, size_t comp_len,
		       size_t chunk, const size_t *caps, struct membuf *out)
{
	static const size_t one_mib[] = { MIB, 0 };
	caps = caps ? caps : one_mib;
	struct reader *src = mem_reader(comp, comp_len, chunk);
	struct reader *r = src ? c->decoder(src) : NULL;
	if (!r) {
		reader_close(src);
		return -1;
	}
	for (size_t i = 0;; i = caps[i + 1] ? i + 1 : 0) {
		if (out->cap - out->len < caps[i]) {
			size_t cap = out->cap ? out->cap : 4096;
			while (cap - out->len < caps[i])
				cap *= 2;
			unsigned char *p = realloc(out->data, cap);
			if (!p)
				abort();
			out->data = p;
			out->cap = cap;
		}
		ssize_t n = reader_read(r, out->data + out->len, caps[i]);
		if (n < 0) {
			reader_close(r);
			return -1;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	int rc = r->bytes_out == out->len ? 0 : err_set("decoder bytes_out is wrong");
	reader_close(r);
	return rc;
}

static int decode(const struct codec *c, const struct membuf *comp, struct membuf *out)
{
	return decode_with(c, comp->data, comp->len, 0, NULL, out);
}

static bool same(const struct membuf *mb, const unsigned char *data, size_t len)
{
	return mb->len == len && (len == 0 || memcmp(mb->data, data, len) == 0);
}

static void membuf_free(struct membuf *mb)
{
	free(mb->data);
	memset(mb, 0, sizeof(*mb));
}

static bool compresses(const struct codec *c)
{
	return strcmp(c->name, "none") != 0;
}

/* ---- the table ---- */

static void test_table(void)
{
	const char *names[] = { "none", "lz4", "zstd", "gzip", "zlib", "auto" };
	for (size_t i = 0; i < 6; i++) {
		const struct codec *c = codec_by_name(names[i]);
		CHECK(c && strcmp(c->name, names[i]) == 0);
		CHECK(c && c->min_level <= c->default_level && c->default_level <= c->max_level);
	}
	CHECK(codec_by_name("xz") == NULL);
	CHECK(strcmp(codec_names(), "none, lz4, zstd, gzip, zlib, auto") == 0);
	/* auto writes zstd: checkpoints record zstd, files are named .zst. */
	CHECK(codec_format(codec_by_name("auto")) == codec_by_name("zstd"));
	CHECK(codec_format(codec_by_name("lz4")) == codec_by_name("lz4"));

	CHECK(codec_by_filename("img-0.lz4") == codec_by_name("lz4"));
	CHECK(codec_by_filename("/var/ck/img-1.zst") == codec_by_name("zstd"));
	CHECK(codec_by_filename("img-0.gz") == codec_by_name("gzip"));
	CHECK(codec_by_filename("img-0.zlib") == codec_by_name("zlib"));
	CHECK(codec_by_filename("img-0") == codec_by_name("none"));
	CHECK(codec_by_filename("dir.d/img-0") == codec_by_name("none"));
	CHECK(codec_by_filename(".hidden") == codec_by_name("none"));
	CHECK(codec_by_filename("img-0.tar") == NULL);
	CHECK(codec_by_filename("img-0.zst.part") == NULL);
}

static void test_bad_level(void)
{
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		if (!compresses(c))
			continue;
		struct probe_log log = { .min_write = SIZE_MAX };
		struct writer *next = probe_writer(&log);
		err_clear();
		CHECK(c->encoder(c->max_level + 1, next) == NULL);
		CHECK_ERR(c->name);
		CHECK_ERR("level");
		CHECK(c->encoder(c->min_level - 1, next) == NULL);
		/* next is still ours. */
		CHECK(!log.closed && !log.aborted);
		CHECK(writer_close(next) == 0);
		free(log.mb.data);
	}
}

/* ---- round trips ---- */

static void roundtrip(const struct codec *c, int level, const unsigned char *data, size_t len,
		      const size_t *wpattern, size_t chunk, const size_t *caps)
{
	struct membuf comp = { 0 }, plain = { 0 };
	int rc = encode_with(c, level, data, len, wpattern, &comp);
	CHECK(rc == 0);
	if (rc == 0) {
		rc = decode_with(c, comp.data, comp.len, chunk, caps, &plain);
		CHECK(rc == 0);
		CHECK(same(&plain, data, len));
		if (rc < 0 || !same(&plain, data, len))
			fprintf(stderr, "  %s level %d, %zu bytes: %s\n", c->name, level, len,
				err_msg());
	}
	membuf_free(&comp);
	membuf_free(&plain);
}

static void test_roundtrip_small(void)
{
	static const size_t writes[] = { 1, 7, 4096, 65536 + 3, 0 };
	static const size_t caps[] = { 1, 13, 4096, MIB, 3, 0 };
	size_t len = MIB + 17;
	unsigned char *data = mixed_data(len, 7);
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		roundtrip(c, c->default_level, data, 0, NULL, 1, NULL);
		roundtrip(c, c->default_level, data, 1, NULL, 1, caps);
		roundtrip(c, c->default_level, data, len, writes, 7, caps);
		roundtrip(c, c->default_level, data, len, NULL, 0, NULL);
		/* Every level is accepted and decodes back. */
		for (int level = c->min_level; level <= c->max_level; level++)
			roundtrip(c, level, data, 100000, NULL, 0, NULL);
	}
	free(data);
}

static void test_roundtrip_big(void)
{
	static const size_t writes[] = { 65536 * 16 + 5, 1, 3 * MIB, 4096, 0 };
	static const size_t caps[] = { MIB, 4095, 7 * MIB, 0 };
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		struct probe_log log = { .min_write = SIZE_MAX };
		struct writer *w = c->encoder(c->default_level, probe_writer(&log));
		CHECK(w != NULL);
		if (!w)
			continue;
		for (size_t off = 0, i = 0; off < BIG_LEN; i = writes[i + 1] ? i + 1 : 0) {
			size_t n = writes[i] < BIG_LEN - off ? writes[i] : BIG_LEN - off;
			CHECK(writer_write(w, big_data + off, n) == 0);
			off += n;
		}
		CHECK(writer_close(w) == 0);
		CHECK(log.closed && !log.aborted);
		if (compresses(c)) {
			/* Large writes downstream; and the data does shrink. */
			CHECK(log.min_write == SIZE_MAX || log.min_write >= 64 * 1024);
			CHECK(log.mb.len < BIG_LEN * 3 / 4);
			fprintf(stderr, "  %s: %zu -> %zu bytes in %zu writes\n", c->name,
				(size_t)BIG_LEN, log.mb.len, log.writes);
		}
		struct membuf plain = { 0 };
		CHECK(decode_with(c, log.mb.data, log.mb.len, 65537, caps, &plain) == 0);
		CHECK(same(&plain, big_data, BIG_LEN));
		membuf_free(&plain);
		free(log.mb.data);
	}
}

/* The zstd decoder's window is capped (a hostile frame could ask for
 * 2 GiB): our strongest level still decodes, a frame whose header asks
 * for a 32 MiB window (as zstd --long makes) is refused, saying why. */
static void test_zstd_window_limit(void)
{
	const struct codec *c = codec_by_name("zstd");
	struct membuf comp = { 0 }, plain = { 0 };
	CHECK(encode_with(c, 19, big_data, 16 * MIB, NULL, &comp) == 0);
	CHECK(decode(c, &comp, &plain) == 0 && same(&plain, big_data, 16 * MIB));
	membuf_free(&plain);
	membuf_free(&comp);

	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t cap = ZSTD_compressBound(MIB) + 64;
	unsigned char *frame = malloc(cap);
	CHECK(!ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_windowLog, 25)));
	/* Streamed without a pledged size: the header declares the window. */
	ZSTD_inBuffer in = { big_data, MIB, 0 };
	ZSTD_outBuffer out = { frame, cap, 0 };
	CHECK(!ZSTD_isError(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_continue)));
	CHECK(ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end) == 0);
	CHECK(decode_with(c, frame, out.pos, 0, NULL, &plain) < 0);
	CHECK_ERR("needs a window over the 16 MiB crstream allows");
	membuf_free(&plain);
	free(frame);
	ZSTD_freeCCtx(cctx);
}

/* ---- damaged input ---- */

static void test_truncated(void)
{
	size_t len = MIB + 17;
	unsigned char *data = mixed_data(len, 11);
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		struct membuf comp = { 0 };
		CHECK(encode(c, data, len, &comp) == 0);
		size_t cuts[] = { 0, 1, 5, comp.len / 3, comp.len / 2, comp.len - 4, comp.len - 1 };
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
			struct membuf plain = { 0 };
			err_clear();
			int rc = decode_with(c, comp.data, cuts[i], 0, NULL, &plain);
			if (compresses(c)) {
				CHECK(rc < 0);
				CHECK_ERR(codec_format(c)->name);
				CHECK_ERR("truncated");
			} else {
				CHECK(rc == 0 && same(&plain, data, cuts[i]));
			}
			membuf_free(&plain);
		}
		/* An empty stream that was cut inside its only frame. */
		struct membuf empty = { 0 }, plain = { 0 };
		CHECK(encode(c, data, 0, &empty) == 0);
		if (compresses(c)) {
			CHECK(empty.len > 0);
			CHECK(decode_with(c, empty.data, empty.len - 1, 0, NULL, &plain) < 0);
			CHECK_ERR(codec_format(c)->name);
		}
		membuf_free(&plain);
		membuf_free(&empty);
		membuf_free(&comp);
	}
	free(data);
}

static void test_corrupt(void)
{
	size_t len = MIB + 17;
	unsigned char *data = mixed_data(len, 13);
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		struct membuf comp = { 0 };
		CHECK(encode(c, data, len, &comp) == 0);
		/* The middle, the last byte of the data and the checksum. */
		size_t at[] = { comp.len / 2, comp.len / 3 + 1, comp.len - 9, comp.len - 1 };
		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			struct membuf plain = { 0 };
			comp.data[at[i]] ^= 0x55;
			err_clear();
			int rc = decode_with(c, comp.data, comp.len, 0, NULL, &plain);
			if (compresses(c)) {
				CHECK(rc < 0);
				CHECK_ERR(codec_format(c)->name);
				if (rc == 0)
					fprintf(stderr, "  %s: flip at %zu of %zu went unnoticed\n",
						c->name, at[i], comp.len);
			} else {
				CHECK(rc == 0 && plain.len == len);
				CHECK(plain.data[at[i]] == (data[at[i]] ^ 0x55));
			}
			comp.data[at[i]] ^= 0x55;
			membuf_free(&plain);
		}
		membuf_free(&comp);
	}
	free(data);
}

static void test_trailing_garbage(void)
{
	size_t len = 200000;
	unsigned char *data = mixed_data(len, 17);
	static const char *const tails[] = { "garbage, not a frame", "\0", "\x1f", "\0\0\0\0\0\0\0\0" };
	static const size_t tail_len[] = { 20, 1, 1, 8 };
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		for (size_t t = 0; t < 4; t++) {
			struct membuf comp = { 0 }, plain = { 0 };
			CHECK(encode(c, data, len, &comp) == 0);
			struct writer *app = membuf_writer(&comp);
			CHECK(app && writer_write(app, tails[t], tail_len[t]) == 0);
			CHECK(app && writer_close(app) == 0);
			err_clear();
			int rc = decode(c, &comp, &plain);
			if (compresses(c)) {
				CHECK(rc < 0);
				CHECK_ERR(codec_format(c)->name);
				/* The good frame's data came out before the error. */
				CHECK(plain.len == len && memcmp(plain.data, data, len) == 0);
			} else {
				CHECK(rc == 0 && plain.len == len + tail_len[t]);
			}
			membuf_free(&comp);
			membuf_free(&plain);
		}
	}
	free(data);
}

static void test_decoder_stays_failed(void)
{
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		if (!compresses(c))
			continue;
		static const char junk[] = "this is not compressed data at all......";
		struct reader *r = c->decoder(mem_reader(junk, sizeof(junk), 0));
		char buf[64];
		CHECK(r && reader_read(r, buf, sizeof(buf)) < 0);
		CHECK_ERR(codec_format(c)->name);
		CHECK(r && reader_read(r, buf, sizeof(buf)) < 0);
		reader_close(r);
	}
}

static void test_concatenated(void)
{
	size_t la = 300000, lb = MIB + 5;
	unsigned char *a = mixed_data(la, 19), *b = mixed_data(lb, 23);
	unsigned char *ab = malloc(la + lb);
	if (!ab)
		abort();
	memcpy(ab, a, la);
	memcpy(ab + la, b, lb);
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		struct membuf comp = { 0 }, plain = { 0 };
		/* a, an empty stream, b: three frames back to back. */
		CHECK(encode(c, a, la, &comp) == 0);
		CHECK(encode(c, a, 0, &comp) == 0);
		CHECK(encode(c, b, lb, &comp) == 0);
		CHECK(decode_with(c, comp.data, comp.len, 4097, NULL, &plain) == 0);
		CHECK(same(&plain, ab, la + lb));
		if (!same(&plain, ab, la + lb))
			fprintf(stderr, "  %s: concatenation: %s\n", c->name, err_msg());
		membuf_free(&comp);
		membuf_free(&plain);
	}
	free(ab);
	free(b);
	free(a);
}

/* Small frames back to back, read in tiny pieces: frame ends then fall in
 * every position relative to the input chunks and output caps (for ISA-L,
 * whose read-ahead past a zlib trailer must be handed to the next frame). */
static void test_concatenated_tiny(void)
{
	static const size_t sizes[] = { 0, 1, 0, 0, 100, 5000, 0 };
	static const size_t caps_1[] = { 1, 0 }, caps_mixed[] = { 1, 2, 4096, 3, 0 };
	unsigned char *data = mixed_data(6000, 37);
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		struct membuf comp = { 0 }, expect = { 0 };
		struct writer *e = membuf_writer(&expect);
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			CHECK(encode(c, data, sizes[i], &comp) == 0);
			CHECK(e && writer_write(e, data, sizes[i]) == 0);
		}
		CHECK(e && writer_close(e) == 0);
		for (size_t chunk = 0; chunk <= 9; chunk++) {
			struct membuf plain = { 0 };
			const size_t *caps = chunk % 2 ? caps_1 : caps_mixed;
			CHECK(decode_with(c, comp.data, comp.len, chunk, caps, &plain) == 0);
			CHECK(same(&plain, expect.data, expect.len));
			if (!same(&plain, expect.data, expect.len))
				fprintf(stderr, "  %s, chunk %zu: %s\n", c->name, chunk, err_msg());
			membuf_free(&plain);
		}
		membuf_free(&comp);
		membuf_free(&expect);
	}
	free(data);
}

/* ---- auto: zstd whose level moves between frames ---- */

static bool have_tool(const char *tool);
static bool run_shell(const char *cmd);
static bool write_file(const char *path, const void *data, size_t len);
static bool read_file(const char *path, struct membuf *mb);

/* One window of auto's controller: compressing busy ms, waiting wait ms,
 * at rate MB/s of input, with idle CPUs idle (< 0: unknown). */
static int auto_next(int level, int ceiling, double busy, double wait, double rate, double idle,
		     struct zstd_auto_memory *m)
{
	struct zstd_auto_window w = {.busy_ns = (uint64_t)(busy * 1e6), .wait_ns = (uint64_t)(wait * 1e6),
				     .in_bytes = 16 << 20, .idle_cores = idle};
	w.wall_ns = (uint64_t)((double)w.in_bytes / (rate * 1e6) * 1e9);
	return zstd_auto_next_level(level, -4, ceiling, &w, m);
}

static void test_auto_controller(void)
{
	struct zstd_auto_memory m;
	/* The writes below waited half the time, CPU idle: the upload is the
	 * bottleneck, one level up (never to 0, zstd's "default"). */
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(1, 3, 50, 50, 100, 1.0, &m) == 2);
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(-1, 3, 50, 50, 100, 1.0, &m) == 1);
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(3, 3, 10, 90, 100, 1.0, &m) == 3);	/* at the ceiling */
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(5, 9, 75, 25, 100, -1, &m) == 6);	/* a quarter; idle unknown */
	/* ... but not with the machine's CPUs all busy: down instead (on a
	 * shared machine, the server may be what waits for CPU). */
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(2, 3, 50, 50, 100, 0.2, &m) == 2);	/* some idle: stay */
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(2, 3, 50, 50, 100, 0.05, &m) == 1);	/* none idle: down */
	/* The writes hardly waited: compressing is the bottleneck, one down. */
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(1, 3, 100, 1, 100, 1.0, &m) == -1);
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(-4, 3, 100, 0, 100, 1.0, &m) == -4);	/* at the floor */
	/* In between, or nothing measured: it stays. */
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(2, 3, 90, 10, 100, 1.0, &m) == 2);
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(2, 3, 0, 0, 100, 1.0, &m) == 2);

	/* Memory: level 2 measured 100 MB/s, then level 3 only 80: the next
	 * window at 3 goes back to 2 whatever the waits say, and from 2 it
	 * does not try 3 again while it remembers... */
	memset(&m, 0, sizeof(m));
	CHECK(auto_next(2, 3, 50, 50, 100, 1.0, &m) == 3);
	CHECK(auto_next(3, 3, 50, 50, 80, 1.0, &m) == 2);
	CHECK(auto_next(2, 3, 50, 50, 100, 1.0, &m) == 2);
	/* ... for ZSTD_AUTO_FORGET windows; then it looks again. */
	int level = 2;
	for (int i = 1; i < ZSTD_AUTO_FORGET; i++)
		level = auto_next(level, 3, 50, 50, 100, 1.0, &m);
	CHECK(level == 2);
	CHECK(auto_next(2, 3, 50, 50, 100, 1.0, &m) == 3);
}

/* Level changes end the frame and start the next one at the new level:
 * the output is a zstd frame sequence that decodes to the input, one
 * frame per level used (a change before any new input makes no frame). */
static void test_auto_level_changes(void)
{
	const struct codec *c = codec_by_name("auto");
	const int levels[] = { 1, 5, -4, -4, 2 };
	const size_t part = 700000;
	struct membuf comp = { 0 }, plain = { 0 };
	struct writer *w = c->encoder(3, membuf_writer(&comp));
	CHECK(w != NULL);
	if (!w)
		return;
	for (size_t i = 0; i < 5; i++) {
		CHECK(zstd_encoder_set_level(w, levels[i]) == 0);
		if (i != 2)	/* -4 twice in a row, and once with no input */
			CHECK(writer_write(w, big_data + i * part, part) == 0);
	}
	CHECK(zstd_encoder_set_level(w, 1) == 0);	/* at the very end */
	CHECK(writer_close(w) == 0);

	unsigned char *expect = malloc(4 * part);
	if (!expect)
		abort();
	for (size_t i = 0, j = 0; i < 5; i++)
		if (i != 2)
			memcpy(expect + part * j++, big_data + i * part, part);
	struct reader *r = codec_by_name("zstd")->decoder(mem_reader(comp.data, comp.len, 0));
	unsigned char buf[65536];
	ssize_t n;
	struct writer *out = membuf_writer(&plain);
	while (r && (n = reader_read(r, buf, sizeof(buf))) > 0)
		CHECK(writer_write(out, buf, (size_t)n) == 0);
	CHECK(writer_close(out) == 0);
	CHECK(same(&plain, expect, 4 * part));
	/* Levels 1, 5, -4, 2: four frames. */
	CHECK(r && ((struct codec_decoder *)r)->frames == 4);
	reader_close(r);

	/* zstd's own tool reads the sequence as one stream. */
	char dir[] = "/tmp/crstream-test-auto-XXXXXX", cmd[512];
	if (have_tool("zstd") && mkdtemp(dir)) {
		char path[128], back[128];
		snprintf(path, sizeof(path), "%s/auto.zst", dir);
		snprintf(back, sizeof(back), "%s/auto.out", dir);
		struct membuf theirs = { 0 };
		CHECK(write_file(path, comp.data, comp.len));
		snprintf(cmd, sizeof(cmd), "zstd -dcq < %s > %s", path, back);
		CHECK(run_shell(cmd));
		CHECK(read_file(back, &theirs));
		CHECK(same(&theirs, expect, 4 * part));
		membuf_free(&theirs);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		CHECK(system(cmd) == 0);
	}
	free(expect);
	membuf_free(&comp);
	membuf_free(&plain);
}

/* A gzip member whose header has every optional field (FEXTRA, FNAME,
 * FCOMMENT, FHCRC), then a plain one, read in pieces of every size: each
 * split of the header must give the same answer (ISA-L's own header
 * parser needs a whole header in one call, intel/isa-l#224), and a wrong
 * header CRC must be refused wherever the pieces end. */
static void test_gzip_header_fields_split(void)
{
	const struct codec *c = codec_by_name("gzip");
	size_t len = 3000;
	unsigned char *data = mixed_data(len, 41);
	struct membuf plain_member = { 0 };
	CHECK(encode(c, data, len, &plain_member) == 0 && plain_member.len > 10);
	static const unsigned char fixed[] = { 0x1f, 0x8b, 8, 0x02 | 0x04 | 0x08 | 0x10, 1, 2, 3, 4, 0, 3 };
	static const unsigned char fields[] = { 5, 0, 'e', 'x', 't', 'r', 'a', 'i', 'm', 'g', '-', '0',
						0, 'a', ' ', 'n', 'o', 't', 'e', 0 };
	unsigned char stream[16384];
	size_t n = 0;
	memcpy(stream, fixed, sizeof(fixed));
	n += sizeof(fixed);
	memcpy(stream + n, fields, sizeof(fields));
	n += sizeof(fields);
	uLong hcrc = crc32(0, stream, (uInt)n) & 0xffff;
	size_t hcrc_at = n;
	stream[n++] = (unsigned char)hcrc;
	stream[n++] = (unsigned char)(hcrc >> 8);
	/* Deflate data and trailer of the plain member, then that member whole. */
	CHECK(n + 2 * plain_member.len < sizeof(stream));
	memcpy(stream + n, plain_member.data + 10, plain_member.len - 10);
	n += plain_member.len - 10;
	memcpy(stream + n, plain_member.data, plain_member.len);
	n += plain_member.len;
	unsigned char *twice = malloc(2 * len);
	if (!twice)
		abort();
	memcpy(twice, data, len);
	memcpy(twice + len, data, len);
	static const size_t caps[] = { 7, 4096, 0 };
	for (size_t chunk = 0; chunk <= hcrc_at + 3; chunk++) {
		struct membuf out = { 0 };
		CHECK(decode_with(c, stream, n, chunk, caps, &out) == 0);
		CHECK(same(&out, twice, 2 * len));
		if (!same(&out, twice, 2 * len))
			fprintf(stderr, "  header fields, chunk %zu: %s\n", chunk, err_msg());
		membuf_free(&out);
		stream[hcrc_at] ^= 1;
		CHECK(decode_with(c, stream, n, chunk, caps, &out) < 0);
		CHECK(strstr(err_msg(), "header checksum mismatch") != NULL);
		membuf_free(&out);
		stream[hcrc_at] ^= 1;
	}
	stream[3] |= 0x20; /* a reserved flag */
	struct membuf out = { 0 };
	CHECK(decode_with(c, stream, n, 1, caps, &out) < 0);
	CHECK(strstr(err_msg(), "reserved flags") != NULL);
	membuf_free(&out);
	free(twice);
	membuf_free(&plain_member);
	free(data);
}

/* ---- the writer contract: close, abort, failures below ---- */

static void test_close_and_abort(void)
{
	unsigned char *data = mixed_data(3 * MIB, 29);
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		struct probe_log closed = { .min_write = SIZE_MAX };
		struct probe_log aborted = { .min_write = SIZE_MAX };
		struct writer *w = c->encoder(c->default_level, probe_writer(&closed));
		CHECK(w && writer_write(w, data, 3 * MIB) == 0 && writer_close(w) == 0);
		CHECK(closed.closed && !closed.aborted);

		w = c->encoder(c->default_level, probe_writer(&aborted));
		CHECK(w && writer_write(w, data, 3 * MIB) == 0);
		writer_abort(w);
		CHECK(aborted.aborted && !aborted.closed);
		free(closed.mb.data);
		free(aborted.mb.data);
	}
	free(data);
}

static void test_failing_next(void)
{
	unsigned char *data = mixed_data(8 * MIB, 31);
	for (const struct codec *const *cp = codecs; *cp; cp++) {
		const struct codec *c = *cp;
		/* Writes below fail once 100 KiB went through. */
		struct probe_log log = { .min_write = SIZE_MAX, .fail_after = 100 * 1024 };
		struct writer *w = c->encoder(c->default_level, probe_writer(&log));
		CHECK(w != NULL);
		if (!w)
			continue;
		int rc = 0;
		for (size_t off = 0; off < 8 * MIB && rc == 0; off += MIB)
			rc = writer_write(w, data + off, MIB);
		err_clear();
		int close_rc = writer_close(w);
		CHECK(rc < 0 || close_rc < 0);
		CHECK(close_rc < 0);
		CHECK_ERR(rc < 0 ? c->name : "probe");
		/* The partial stream was aborted below, never committed. */
		CHECK(log.aborted && !log.closed);
		free(log.mb.data);

		/* A failing close below fails the encoder's close. */
		struct probe_log bad_close = { .min_write = SIZE_MAX, .fail_close = true };
		w = c->encoder(c->default_level, probe_writer(&bad_close));
		CHECK(w && writer_write(w, data, 1000) == 0);
		CHECK(w && writer_close(w) < 0);
		CHECK_ERR("probe: close failed");
		free(bad_close.mb.data);
	}
	free(data);
}

/* ---- many encoders and decoders at once ---- */

struct job {
	const struct codec *codec;
	const unsigned char *data;
	size_t len;
	bool ok;
};

static void *run_job(void *arg)
{
	struct job *j = arg;
	struct membuf comp = { 0 }, plain = { 0 };
	j->ok = encode(j->codec, j->data, j->len, &comp) == 0 && decode(j->codec, &comp, &plain) == 0 &&
		same(&plain, j->data, j->len);
	membuf_free(&comp);
	membuf_free(&plain);
	return NULL;
}

static void test_parallel(void)
{
	enum { PER_CODEC = 3, NCODECS = 5 };
	struct job jobs[PER_CODEC * NCODECS];
	pthread_t tids[PER_CODEC * NCODECS];
	for (size_t i = 0; i < PER_CODEC * NCODECS; i++) {
		jobs[i] = (struct job){ codecs[i % NCODECS], big_data + i * MIB, 4 * MIB + i, false };
		CHECK(pthread_create(&tids[i], NULL, run_job, &jobs[i]) == 0);
	}
	for (size_t i = 0; i < PER_CODEC * NCODECS; i++) {
		CHECK(pthread_join(tids[i], NULL) == 0);
		CHECK(jobs[i].ok);
	}
}

/* ---- the standard tools read what we write, and we read theirs ---- */

static char tmpdir[] = "/tmp/crstream-test-codec-XXXXXX";

static bool have_tool(const char *tool)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", tool);
	return system(cmd) == 0;
}

static bool run_shell(const char *cmd)
{
	int rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "  command failed (%d): %s\n", rc, cmd);
	return rc == 0;
}

static bool write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return false;
	bool ok = fwrite(data, 1, len, f) == len;
	return fclose(f) == 0 && ok;
}

static bool read_file(const char *path, struct membuf *mb)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	unsigned char buf[65536];
	size_t n;
	struct writer *w = membuf_writer(mb);
	bool ok = w != NULL;
	while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		ok = writer_write(w, buf, n) == 0;
	ok = !ferror(f) && ok;
	if (w)
		writer_close(w);
	fclose(f);
	return ok;
}

/* How each codec's standard tool decodes stdin to stdout, and encodes
 * (possibly in more than one way). */
struct cli {
	const char *codec;
	const char *tool;	/* must be installed for the check to run */
	const char *decode;
	const char *encode[3];
};

#define PY_INFLATE                                                                     \
	"python3 -c 'import sys,zlib; d=zlib.decompressobj(); "                        \
	"sys.stdout.buffer.write(d.decompress(sys.stdin.buffer.read())); "             \
	"sys.exit(0 if d.eof and not d.unused_data else 1)'"
#define PY_DEFLATE(level)                                                              \
	"python3 -c 'import sys,zlib; "                                                \
	"sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read(), " #level "))'"

static const struct cli clis[] = {
	{ "lz4", "lz4", "lz4 -dc", { "lz4 -c -q", "lz4 -q -9 -BD -B4 -c", "lz4 -q -1 --no-frame-crc -c" } },
	{ "zstd", "zstd", "zstd -dcq", { "zstd -c -q", "zstd -19 --no-check -c -q", NULL } },
	{ "gzip", "gzip", "gzip -dc", { "gzip -c", "gzip -9 -c", NULL } },
	{ "zlib", "zlib-flate", "zlib-flate -uncompress", { "zlib-flate -compress", NULL, NULL } },
	{ "zlib", "python3", PY_INFLATE, { PY_DEFLATE(6), PY_DEFLATE(1), PY_DEFLATE(9) } },
};

static void cli_reads_ours(const struct cli *t, const unsigned char *data, size_t len)
{
	const struct codec *c = codec_by_name(t->codec);
	char in[128], out[128], cmd[1024];
	snprintf(in, sizeof(in), "%s/ours%s", tmpdir, c->extension);
	snprintf(out, sizeof(out), "%s/ours.out", tmpdir);
	for (int level = c->min_level; level <= c->max_level; level += c->max_level > 9 ? 9 : 4) {
		struct membuf comp = { 0 }, plain = { 0 };
		CHECK(encode_with(c, level, data, len, NULL, &comp) == 0);
		CHECK(write_file(in, comp.data, comp.len));
		snprintf(cmd, sizeof(cmd), "%s < %s > %s", t->decode, in, out);
		CHECK(run_shell(cmd));
		CHECK(read_file(out, &plain));
		CHECK(same(&plain, data, len));
		if (!same(&plain, data, len))
			fprintf(stderr, "  %s (level %d) did not give the data back\n", t->decode,
				level);
		membuf_free(&comp);
		membuf_free(&plain);
	}
}

static void we_read_cli(const struct cli *t, const unsigned char *data, size_t len)
{
	const struct codec *c = codec_by_name(t->codec);
	char raw[128], comp_path[128], cmd[1024];
	snprintf(raw, sizeof(raw), "%s/raw", tmpdir);
	snprintf(comp_path, sizeof(comp_path), "%s/theirs", tmpdir);
	CHECK(write_file(raw, data, len));
	for (size_t i = 0; i < 3 && t->encode[i]; i++) {
		struct membuf comp = { 0 }, plain = { 0 };
		/* gzip given a file name records it in the header (FNAME). */
		if (i == 1 && strcmp(t->tool, "gzip") == 0)
			snprintf(cmd, sizeof(cmd), "%s %s > %s", t->encode[i], raw, comp_path);
		else
			snprintf(cmd, sizeof(cmd), "%s < %s > %s", t->encode[i], raw, comp_path);
		CHECK(run_shell(cmd));
		CHECK(read_file(comp_path, &comp));
		CHECK(decode_with(c, comp.data, comp.len, 0, NULL, &plain) == 0);
		CHECK(same(&plain, data, len));
		if (!same(&plain, data, len))
			fprintf(stderr, "  decoding `%s` output: %s\n", t->encode[i], err_msg());
		membuf_free(&comp);
		membuf_free(&plain);
	}
}

static void test_cli_interop(void)
{
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		CHECK(0);
		return;
	}
	size_t len = 3 * MIB + 5;
	const unsigned char *data = big_data + 5 * MIB;
	for (size_t i = 0; i < sizeof(clis) / sizeof(clis[0]); i++) {
		if (!have_tool(clis[i].tool)) {
			fprintf(stderr, "  skip %s interop via %s: not installed\n", clis[i].codec,
				clis[i].tool);
			continue;
		}
		cli_reads_ours(&clis[i], data, len);
		we_read_cli(&clis[i], data, len);
	}
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	big_data = mixed_data(BIG_LEN, 3);
	RUN(test_table);
	RUN(test_bad_level);
	RUN(test_roundtrip_small);
	RUN(test_roundtrip_big);
	RUN(test_zstd_window_limit);
	RUN(test_truncated);
	RUN(test_corrupt);
	RUN(test_trailing_garbage);
	RUN(test_decoder_stays_failed);
	RUN(test_concatenated);
	RUN(test_concatenated_tiny);
	RUN(test_auto_controller);
	RUN(test_auto_level_changes);
	RUN(test_gzip_header_fields_split);
	RUN(test_close_and_abort);
	RUN(test_failing_next);
	RUN(test_parallel);
	RUN(test_cli_interop);
	free(big_data);
	return unit_done();
}
