/* Real third-party bytes (tests/fixtures, see each README) through the
 * code a restore runs: Cedana's split layout through the engine with
 * allow_cedana (what `crstream restore` enables for checkpoints without a
 * manifest), and criu-image-streamer's .lz4 shards through the lz4 codec.
 * The expected image files are the SHA-256 sums of what each program's own
 * `extract` wrote; `crstream extract` of the reference layout is tested
 * from the command line (tests/integration/test_third_party.sh).
 *
 * CRSTREAM_TEST_FIXTURES names the fixture directory (default
 * tests/fixtures, relative to the repository root where tests/run.sh
 * runs); without it the program is skipped (exit 77). */
#include "codec/codec.h"
#include "engine/engine.h"
#include "store/sigv4.h"
#include "util/err.h"
#include "util/fdio.h"
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *fixtures;

struct blob {
	unsigned char *data;
	size_t len;
};

static struct blob load(const char *dir, const char *name)
{
	char path[4096];
	struct blob b = {NULL, 0};
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !(b.data = malloc((size_t)st.st_size + 1)) ||
	    read_full(fd, b.data, (size_t)st.st_size) != (ssize_t)st.st_size) {
		fprintf(stderr, "cannot read %s\n", path);
		free(b.data);
		b.data = NULL;
	} else {
		b.len = (size_t)st.st_size;
		b.data[b.len] = '\0';
	}
	if (fd >= 0)
		close(fd);
	return b;
}

/* An unlinked temporary file holding len bytes of data, at offset 0. */
static int temp_file(const void *data, size_t len)
{
	char path[] = "/tmp/crstream-fx-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	unlink(path);
	if (write_full(fd, data, len) < 0 || lseek(fd, 0, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static char *temp_dir(void)
{
	static char dirs[8][64];
	static int n;
	char *d = dirs[n++ % 8];
	snprintf(d, 64, "/tmp/crstream-fx-out-XXXXXX");
	return mkdtemp(d);
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(dir);
}

/* Extracts shards[0..n) (possibly altered copies) into a new directory;
 * returns engine_extract's result, the directory in *out. */
static int extract(struct blob *shards, int n, bool cedana, char **out)
{
	int fds[8];
	struct shard_stat stats[8];
	for (int i = 0; i < n; i++)
		fds[i] = temp_file(shards[i].data, shards[i].len);
	struct engine_opts o;
	struct engine_result res;
	memset(&res, 0, sizeof(res));
	engine_opts_init(&o);
	*out = temp_dir();
	o.images_dir = *out;
	o.shard_fds = fds;
	o.nshards = n;
	o.allow_cedana = cedana;
	res.shards = stats;
	int rc = engine_extract(&o, &res);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return rc;
}

/* dir holds exactly the files SHA256SUMS lists, with those contents, plus
 * (Cedana) metadata.json naming every one of them. */
static void check_files(const char *dir, const char *sums_dir, bool cedana)
{
	struct blob sums = load(sums_dir, "SHA256SUMS");
	struct blob meta = {NULL, 0};
	if (cedana) {
		meta = load(dir, "metadata.json");
		CHECK(meta.data && meta.data[0] == '[');
	}
	int listed = 0;
	char *save = NULL;
	for (char *line = strtok_r((char *)sums.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char want[SIGV4_HEX], name[256], got[SIGV4_HEX] = "";
		if (sscanf(line, "%64s %255s", want, name) != 2)
			continue;
		listed++;
		struct blob f = load(dir, name);
		if (f.data)
			sigv4_sha256_hex(f.data, f.len, got);
		if (strcmp(got, want) != 0)
			fprintf(stderr, "  %s/%s: sha256 %s, expected %s\n", dir, name, got, want);
		CHECK(strcmp(got, want) == 0);
		free(f.data);
		if (meta.data) {
			char quoted[260];
			snprintf(quoted, sizeof(quoted), "\"%s\"", name);
			CHECK(strstr((char *)meta.data, quoted) != NULL);
		}
	}
	CHECK(listed == 12);
	int present = 0;
	DIR *d = opendir(dir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && strcmp(de->d_name, cedana ? "metadata.json" : "") != 0)
			present++;
	if (d)
		closedir(d);
	CHECK(present == listed);
	free(sums.data);
	free(meta.data);
}

static void cedana_set(const char *sub, int n)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/cedana-image-streamer%s", fixtures, sub);
	struct blob shards[8];
	for (int i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "img-%d", i);
		shards[i] = load(dir, name);
		if (!shards[i].data) {
			CHECK(0);
			return;
		}
	}
	char *out;
	int rc = extract(shards, n, true, &out);
	if (rc < 0)
		fprintf(stderr, "  %s: %s\n", dir, err_msg());
	CHECK(rc == 0);
	check_files(out, dir, true);
	remove_dir(out);

	/* Without allow_cedana (the reference layout only), it is refused. */
	CHECK(extract(shards, n, false, &out) < 0);
	CHECK_ERR("appears twice");
	remove_dir(out);

	/* A flipped byte in the first marker of the last data shard: its tag
	 * (offset 4) made invalid. */
	struct blob *last = &shards[n - 1];
	unsigned char saved = last->data[4];
	last->data[4] = 0xff;
	CHECK(extract(shards, n, true, &out) < 0);
	char want[64];
	snprintf(want, sizeof(want), "shard %d: offset 0: ", n - 1);
	CHECK_ERR(want);
	last->data[4] = saved;
	remove_dir(out);

	/* Truncated in the middle of the last data shard. */
	size_t full = last->len;
	last->len = full / 2;
	CHECK(extract(shards, n, true, &out) < 0);
	snprintf(want, sizeof(want), "shard %d: offset ", n - 1);
	CHECK_ERR(want);
	CHECK_ERR("truncated");
	last->len = full;
	remove_dir(out);

	/* Cedana's small-file shard cut short: refused too. */
	size_t small = shards[0].len;
	shards[0].len = small - 10;
	CHECK(extract(shards, n, true, &out) < 0);
	CHECK_ERR("shard 0: offset ");
	shards[0].len = small;
	remove_dir(out);
	for (int i = 0; i < n; i++)
		free(shards[i].data);
}

static void test_cedana_2_shards(void)
{
	cedana_set("", 2);
}

static void test_cedana_4_shards(void)
{
	cedana_set("/4-shards", 4);
}

/* Decodes all of data through the lz4 codec; the raw bytes in *out. */
static int lz4_decode(const struct blob *data, struct membuf *out)
{
	const struct codec *c = codec_by_name("lz4");
	struct reader *src = mem_reader(data->data, data->len, 0);
	struct reader *r = src ? c->decoder(src) : NULL;
	if (!r) {
		reader_close(src);
		return -1;
	}
	memset(out, 0, sizeof(*out));
	struct writer *w = membuf_writer(out);
	unsigned char buf[65536];
	ssize_t n;
	int rc = 0;
	while ((n = reader_read(r, buf, sizeof(buf))) > 0)
		if (writer_write(w, buf, (size_t)n) < 0)
			rc = -1;
	if (n < 0)
		rc = -1;
	reader_close(r);
	writer_close(w);
	return rc;
}

/* The .lz4 shards (`lz4 -1` of the raw ones) decode to the raw shards;
 * a flipped byte or a cut is a decode error, never a shorter stream. */
static void test_upstream_lz4_shards(void)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/criu-image-streamer-1.0.0", fixtures);
	for (int i = 0; i < 2; i++) {
		char name[16];
		snprintf(name, sizeof(name), "img-%d", i);
		struct blob raw = load(dir, name);
		strcat(name, ".lz4");
		struct blob lz = load(dir, name);
		if (!raw.data || !lz.data) {
			CHECK(0);
			return;
		}
		struct membuf out;
		CHECK(lz4_decode(&lz, &out) == 0);
		CHECK(out.len == raw.len && memcmp(out.data, raw.data, raw.len) == 0);
		free(out.data);

		lz.data[lz.len / 2] ^= 0x40;
		CHECK(lz4_decode(&lz, &out) < 0);
		fprintf(stderr, "  %s, flipped: %s\n", name, err_msg());
		free(out.data);
		lz.data[lz.len / 2] ^= 0x40;

		struct blob cut = {lz.data, lz.len - 100};
		CHECK(lz4_decode(&cut, &out) < 0);
		CHECK_ERR("truncated");
		free(out.data);
		free(raw.data);
		free(lz.data);
	}
}

int main(void)
{
	fixtures = getenv("CRSTREAM_TEST_FIXTURES") ? getenv("CRSTREAM_TEST_FIXTURES") : "tests/fixtures";
	char probe[4096];
	snprintf(probe, sizeof(probe), "%s/cedana-image-streamer/SHA256SUMS", fixtures);
	if (access(probe, R_OK) != 0) {
		printf("SKIP: no fixtures at %s (set CRSTREAM_TEST_FIXTURES)\n", fixtures);
		return 77;
	}
	RUN(test_cedana_2_shards);
	RUN(test_cedana_4_shards);
	RUN(test_upstream_lz4_shards);
	return unit_done();
}
