/* The shard format: hand-built fixtures decoded by our reader, our writer's
 * output checked byte for byte against the format, and every malformation
 * refused with a message naming the shard, offset and file. */
#include "unit.h"
#include "fixture.h"
#include "shard/marker.h"
#include "shard/shard_reader.h"
#include "shard/shard_writer.h"
#include "util/err.h"

#include <fcntl.h>
#include <unistd.h>

/* ---- a sink that keeps every file in memory ---- */

struct mfile {
	char name[64];
	unsigned char data[1 << 16];
	size_t len;
	int eof;
};

struct msink {
	struct mfile files[16];
	int n;
};

static void *m_open(void *ctx, const char *name)
{
	struct msink *s = ctx;
	struct mfile *f = &s->files[s->n++];
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->len = 0;
	f->eof = 0;
	return f;
}

static int m_data(void *ctx, void *file, struct shard_in *in, uint32_t len)
{
	(void)ctx;
	struct mfile *f = file;
	if (f->len + len > sizeof(f->data))
		return err_set("test file too large");
	if (shard_in_read(in, f->data + f->len, len) < 0)
		return -1;
	f->len += len;
	return 0;
}

static int m_eof(void *ctx, void *file)
{
	(void)ctx;
	((struct mfile *)file)->eof = 1;
	return 0;
}

static const struct image_sink_ops msink_ops = {.open = m_open, .data = m_data, .eof = m_eof};

static struct mfile *find(struct msink *s, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->files[i].name, name))
			return &s->files[i];
	return NULL;
}

/* Reads the given fixtures as shards; returns shard_reader_run's result. */
static int read_fixtures(struct fx *fx, int n, struct msink *sink)
{
	int fds[8] = {0};
	struct shard_reader r;
	memset(sink, 0, sizeof(*sink));
	for (int i = 0; i < n; i++)
		fds[i] = fx_file(&fx[i]);
	int rc = shard_reader_init(&r, fds, n, &msink_ops, sink);
	if (rc == 0) {
		err_clear();
		rc = shard_reader_run(&r);
		shard_reader_free(&r);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return rc;
}

/* ---- decoding hand-built images ---- */

static void test_single_shard_image(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "inventory.img");
	fx_data(&f, 1, "abc", 3);
	fx_data(&f, 2, "defg", 4);
	fx_file_eof(&f, 3);
	fx_filename(&f, 4, "empty.img");
	fx_file_eof(&f, 5);
	fx_image_eof(&f, 6);
	struct msink s;
	CHECK(read_fixtures(&f, 1, &s) == 0);
	struct mfile *inv = find(&s, "inventory.img");
	CHECK(inv && inv->len == 7 && !memcmp(inv->data, "abcdefg", 7) && inv->eof);
	struct mfile *empty = find(&s, "empty.img");
	CHECK(empty && empty->len == 0 && empty->eof);
}

/* Files interleave and a file's chunks spread over shards: the current
 * file is whatever the last filename marker in seq order named, whichever
 * shard carried it. */
static void test_interleaved_across_shards(void)
{
	struct fx f[3] = {0};
	fx_filename(&f[0], 0, "pages-1.img");
	fx_data(&f[1], 1, "P1", 2);
	fx_filename(&f[2], 2, "pagemap-1.img");
	fx_data(&f[0], 3, "M1", 2);
	fx_filename(&f[1], 4, "pages-1.img");
	fx_data(&f[2], 5, "P2", 2);
	fx_file_eof(&f[0], 6);
	fx_filename(&f[1], 7, "pagemap-1.img");
	fx_data(&f[1], 8, "M2", 2);
	fx_file_eof(&f[2], 9);
	fx_image_eof(&f[0], 10);
	struct msink s;
	CHECK(read_fixtures(f, 3, &s) == 0);
	struct mfile *p = find(&s, "pages-1.img"), *m = find(&s, "pagemap-1.img");
	CHECK(p && p->len == 4 && !memcmp(p->data, "P1P2", 4) && p->eof);
	CHECK(m && m->len == 4 && !memcmp(m->data, "M1M2", 4) && m->eof);
}

/* A shard may carry no record at all (the reference writer leaves a shard
 * empty when the image is small). */
static void test_empty_shard(void)
{
	struct fx f[2] = {0};
	fx_filename(&f[0], 0, "a.img");
	fx_data(&f[0], 1, "x", 1);
	fx_file_eof(&f[0], 2);
	fx_filename(&f[0], 3, "b.img");
	fx_file_eof(&f[0], 4);
	fx_image_eof(&f[0], 5);
	struct msink s;
	CHECK(read_fixtures(f, 2, &s) == 0);
	CHECK(s.n == 2);
}

/* ---- our writer produces exactly the documented bytes ---- */

static void test_writer_bytes(void)
{
	char path[] = "/tmp/crstream-w-XXXXXX";
	int fd = mkstemp(path);
	unlink(path);
	struct shard_writer w;
	CHECK(shard_writer_init(&w, &fd, 1) == 0);
	CHECK(shard_writer_write(&w, "inventory.img", "abc", 3) == 0);
	CHECK(shard_writer_file_eof(&w, "inventory.img") == 0);
	CHECK(shard_writer_file_eof(&w, "empty.img") == 0);
	CHECK(shard_writer_image_eof(&w) == 0);
	shard_writer_free(&w);

	struct fx want = {0};
	fx_filename(&want, 0, "inventory.img");
	fx_data(&want, 1, "abc", 3);
	fx_file_eof(&want, 2);
	fx_filename(&want, 3, "empty.img");
	fx_file_eof(&want, 4);
	fx_image_eof(&want, 5);
	unsigned char got[512];
	ssize_t n = pread(fd, got, sizeof(got), 0);
	CHECK(n == (ssize_t)want.len);
	CHECK(n > 0 && !memcmp(got, want.buf, want.len));
	close(fd);
}

/* Chunks go to the shard that has received least when all have room,
 * and seq numbers stay global. */
static void test_writer_balances_files(void)
{
	int fds[2];
	char path[] = "/tmp/crstream-w-XXXXXX";
	for (int i = 0; i < 2; i++) {
		strcpy(path, "/tmp/crstream-w-XXXXXX");
		fds[i] = mkstemp(path);
		unlink(path);
	}
	struct shard_writer w;
	static char big[1 << 20];
	memset(big, 'z', sizeof(big));
	CHECK(shard_writer_init(&w, fds, 2) == 0);
	CHECK(shard_writer_write(&w, "pages-1.img", big, sizeof(big)) == 0);
	CHECK(shard_writer_file_eof(&w, "pages-1.img") == 0);
	CHECK(shard_writer_image_eof(&w) == 0);
	CHECK(w.shards[0].bytes > 0 && w.shards[1].bytes > 0);
	uint64_t a = w.shards[0].bytes, b = w.shards[1].bytes;
	CHECK((a > b ? a - b : b - a) < 300 * 1024);
	shard_writer_free(&w);
	lseek(fds[0], 0, SEEK_SET);
	lseek(fds[1], 0, SEEK_SET);
	struct msink *s = calloc(1, sizeof(*s));
	struct shard_reader r;
	CHECK(shard_reader_init(&r, fds, 2, &msink_ops, s) == 0);
	/* The sink caps files at 64 KiB: its error must surface, named. */
	CHECK(shard_reader_run(&r) < 0);
	CHECK_ERR("pages-1.img");
	CHECK_ERR("test file too large");
	shard_reader_free(&r);
	free(s);
	close(fds[0]);
	close(fds[1]);
}

/* ---- every malformation is refused, naming where ---- */

static void expect_error(struct fx *f, int n, const char *needle1, const char *needle2)
{
	struct msink s;
	CHECK(read_fixtures(f, n, &s) < 0);
	CHECK_ERR(needle1);
	if (needle2)
		CHECK_ERR(needle2);
}

static void test_truncated_marker_length(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "a.img");
	size_t good = f.len;
	fx_file_eof(&f, 1);
	f.len = good + 2;	/* two of the four length bytes */
	expect_error(&f, 1, "shard 0: offset 11", "truncated: the shard ends inside a marker length");
}

static void test_truncated_marker_body(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "inventory.img");
	f.len -= 3;
	expect_error(&f, 1, "shard 0: offset 0", "inside a marker (");
}

static void test_truncated_payload(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "pages-1.img");
	fx_data(&f, 1, "0123456789", 10);
	f.len -= 4;
	expect_error(&f, 1, "pages-1.img", "truncated: the shard ends 6 bytes into a 10-byte payload");
	CHECK_ERR("seq 1 (file_data)");
}

static void test_oversized_marker(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "a.img");
	unsigned char huge[4] = {0xff, 0xff, 0xff, 0x7f};
	memcpy(f.buf + f.len, huge, 4);
	f.len += 4;
	expect_error(&f, 1, "marker length 2147483647 is not below the 10240-byte limit", "offset 11");
}

static void test_malformed_marker(void)
{
	struct fx f = {0};
	unsigned char junk[] = {5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff};
	memcpy(f.buf, junk, sizeof(junk));
	f.len = sizeof(junk);
	expect_error(&f, 1, "malformed marker", "shard 0: offset 0");
}

static void test_marker_without_body(void)
{
	struct fx f = {0};
	unsigned char m[] = {2, 0, 0, 0, 0x08, 0x00};	/* seq only */
	memcpy(f.buf, m, sizeof(m));
	f.len = sizeof(m);
	expect_error(&f, 1, "no body", NULL);
}

static void test_seq_gap(void)
{
	struct fx f[2] = {0};
	fx_filename(&f[0], 0, "a.img");
	fx_data(&f[0], 1, "x", 1);
	/* seq 2 was in a shard that is lost */
	fx_file_eof(&f[1], 3);
	fx_image_eof(&f[1], 4);
	expect_error(f, 2, "marker seq 2 is in no shard", "lowest 3");
}

static void test_data_without_file(void)
{
	struct fx f = {0};
	fx_data(&f, 0, "x", 1);
	expect_error(&f, 1, "file_data (1 bytes) with no current file", "shard 0: offset 0");
}

static void test_data_after_file_eof(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "a.img");
	fx_file_eof(&f, 1);
	fx_data(&f, 2, "x", 1);
	expect_error(&f, 1, "with no current file", "seq 2");
}

static void test_missing_image_eof(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "a.img");
	fx_file_eof(&f, 1);
	expect_error(&f, 1, "every shard ended without image_eof after 2 markers", NULL);
}

static void test_image_eof_with_open_file(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "pages-1.img");
	fx_data(&f, 1, "x", 1);
	fx_image_eof(&f, 2);
	expect_error(&f, 1, "image_eof while file pages-1.img is incomplete", NULL);
}

static void test_duplicate_seq(void)
{
	struct fx f[2] = {0};
	fx_filename(&f[0], 0, "a.img");
	fx_file_eof(&f[0], 1);
	fx_file_eof(&f[1], 1);
	fx_image_eof(&f[0], 2);
	expect_error(f, 2, "appears twice", NULL);
}

static void test_file_twice(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "a.img");
	fx_file_eof(&f, 1);
	fx_filename(&f, 2, "a.img");
	fx_file_eof(&f, 3);
	fx_image_eof(&f, 4);
	expect_error(&f, 1, "file a.img appears again after its file_eof", NULL);
}

static void test_data_after_image_eof(void)
{
	struct fx f[2] = {0};
	fx_filename(&f[0], 0, "a.img");
	fx_file_eof(&f[0], 1);
	fx_image_eof(&f[0], 2);
	fx_filename(&f[1], 3, "b.img");
	expect_error(f, 2, "after image_eof", "shard 1");
}

static void test_label_in_messages(void)
{
	struct fx f = {0};
	fx_filename(&f, 0, "a.img");
	f.len -= 1;
	int fd = fx_file(&f);
	struct msink s = {0};
	struct shard_reader r;
	CHECK(shard_reader_init(&r, &fd, 1, &msink_ops, &s) == 0);
	shard_reader_set_label(&r, 0, "img-0.lz4");
	CHECK(shard_reader_run(&r) < 0);
	CHECK_ERR("img-0.lz4: offset 0");
	shard_reader_free(&r);
	close(fd);
}

/* Cedana's split layout: shard 0 holds small files and metadata.json under
 * its own seq counter; shards 1..N-1 the rest under another. */
static void build_cedana(struct fx *f)
{
	fx_filename(&f[0], 0, "core-1.img");
	fx_data(&f[0], 1, "CORE", 4);
	fx_file_eof(&f[0], 2);
	fx_filename(&f[0], 3, "pagemap-1.img");
	fx_data(&f[0], 4, "PM", 2);
	fx_filename(&f[0], 5, "pagemap-1.img");	/* re-emitted after a big chunk */
	fx_file_eof(&f[0], 6);
	fx_filename(&f[0], 7, "metadata.json");
	const char *meta = "[\"core-1.img\",\"pagemap-1.img\",\"pages-1.img\"]";
	fx_data(&f[0], 8, meta, (uint32_t)strlen(meta));
	fx_file_eof(&f[0], 9);
	fx_filename(&f[1], 0, "pages-1.img");
	fx_data(&f[2], 1, "P1", 2);
	fx_data(&f[1], 2, "P2", 2);
	fx_file_eof(&f[2], 3);
	fx_image_eof(&f[1], 4);
}

static void test_cedana_split(void)
{
	struct fx f[3] = {0};
	build_cedana(f);
	int fds[3];
	for (int i = 0; i < 3; i++)
		fds[i] = fx_file(&f[i]);
	struct msink s = {0};
	struct shard_reader r;
	CHECK(shard_reader_init(&r, fds, 3, &msink_ops, &s) == 0);
	shard_reader_allow_cedana(&r);
	CHECK(shard_reader_run(&r) == 0);
	CHECK(r.cedana);
	shard_reader_free(&r);
	struct mfile *p = find(&s, "pages-1.img"), *core = find(&s, "core-1.img");
	CHECK(p && p->len == 4 && !memcmp(p->data, "P1P2", 4) && p->eof);
	CHECK(core && core->len == 4 && core->eof);
	CHECK(find(&s, "metadata.json") != NULL);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

/* Without the Cedana allowance the same shards are refused: seq 0 twice. */
static void test_cedana_needs_allowance(void)
{
	struct fx f[3] = {0};
	build_cedana(f);
	expect_error(f, 3, "appears twice", NULL);
}

/* A reference image is not mistaken for Cedana's. */
static void test_reference_not_cedana(void)
{
	struct fx f[2] = {0};
	fx_filename(&f[0], 0, "a.img");
	fx_data(&f[1], 1, "x", 1);
	fx_file_eof(&f[0], 2);
	fx_image_eof(&f[1], 3);
	int fds[2] = {fx_file(&f[0]), fx_file(&f[1])};
	struct msink s = {0};
	struct shard_reader r;
	CHECK(shard_reader_init(&r, fds, 2, &msink_ops, &s) == 0);
	shard_reader_allow_cedana(&r);
	CHECK(shard_reader_run(&r) == 0);
	CHECK(!r.cedana);
	shard_reader_free(&r);
	close(fds[0]);
	close(fds[1]);
}

int main(void)
{
	RUN(test_single_shard_image);
	RUN(test_interleaved_across_shards);
	RUN(test_empty_shard);
	RUN(test_writer_bytes);
	RUN(test_writer_balances_files);
	RUN(test_truncated_marker_length);
	RUN(test_truncated_marker_body);
	RUN(test_truncated_payload);
	RUN(test_oversized_marker);
	RUN(test_malformed_marker);
	RUN(test_marker_without_body);
	RUN(test_seq_gap);
	RUN(test_data_without_file);
	RUN(test_data_after_file_eof);
	RUN(test_missing_image_eof);
	RUN(test_image_eof_with_open_file);
	RUN(test_duplicate_seq);
	RUN(test_file_twice);
	RUN(test_data_after_image_eof);
	RUN(test_label_in_messages);
	RUN(test_cedana_split);
	RUN(test_cedana_needs_allowance);
	RUN(test_reference_not_cedana);
	return unit_done();
}
