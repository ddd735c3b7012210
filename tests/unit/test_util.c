/* The fd checks behind --shard-fds / --ext-file-fds messages, the size
 * parser behind --memory-limit and the config, the name table's hash and
 * the escaping of checkpoint strings. */
#include "unit.h"
#include "cli/cli.h"
#include "util/err.h"
#include "util/fdio.h"
#include "util/fmt.h"
#include "util/strmap.h"

#include <fcntl.h>
#include <unistd.h>

static void test_fd_not_open(void)
{
	CHECK(fd_check(987, true, "--shard-fds: fd 987", NULL) < 0);
	CHECK_ERR("--shard-fds: fd 987 is not open");
}

static void test_fd_wrong_direction(void)
{
	int p[2];
	CHECK(pipe(p) == 0);
	enum fd_kind kind;
	CHECK(fd_check(p[0], true, "--shard-fds: fd 3", &kind) < 0);
	CHECK_ERR("fd 3 is open read-only, but it must be writable here");
	CHECK(fd_check(p[1], false, "--ext-file-fds: fs.tar (fd 4)", &kind) < 0);
	CHECK_ERR("fs.tar (fd 4) is open write-only, but it must be readable here");
	CHECK(fd_check(p[1], true, "x", &kind) == 0 && kind == FD_PIPE);
	close(p[0]);
	close(p[1]);
	int f = open("/dev/null", O_RDWR);
	CHECK(fd_check(f, true, "x", &kind) == 0 && kind == FD_OTHER);
	close(f);
}

static void test_parse_size(void)
{
	uint64_t v;
	CHECK(parse_size("4096", &v) == 0 && v == 4096);
	CHECK(parse_size("64M", &v) == 0 && v == 64u << 20);
	CHECK(parse_size("1GiB", &v) == 0 && v == 1u << 30);
	CHECK(parse_size("2k", &v) == 0 && v == 2048);
	CHECK(parse_size("-1", &v) < 0);
	CHECK(parse_size("lots", &v) < 0);
	CHECK(parse_size("12Q", &v) < 0);
	CHECK(parse_size("", &v) < 0);
	CHECK(parse_size("99999999999T", &v) < 0);
}

/* Names that all collide under an unseeded multiplicative string hash
 * (djb2, h * 33 + c, the table's hash before): the two-byte blocks "Ab"
 * and "BA" add the same to it, so every string of k such blocks hashes
 * alike. Seeded, they must spread over the buckets like any names. */
static void test_strmap_crafted_names_spread(void)
{
	struct strmap m;
	CHECK(strmap_init(&m) == 0);
	enum { BLOCKS = 12, NAMES = 1 << BLOCKS };
	for (unsigned i = 0; i < NAMES; i++) {
		char name[2 * BLOCKS + 8];
		for (unsigned b = 0; b < BLOCKS; b++)
			memcpy(name + 2 * b, (i >> b) & 1 ? "BA" : "Ab", 2);
		strcpy(name + 2 * BLOCKS, ".img");
		CHECK(strmap_add(&m, name, NULL) != NULL);
	}
	size_t longest = 0;
	for (size_t b = 0; b < m.nbuckets; b++) {
		size_t len = 0;
		for (struct strmap_entry *e = m.buckets[b]; e; e = e->next)
			len++;
		if (len > longest)
			longest = len;
	}
	/* 4096 names in >= 2048 buckets: chains of a handful at most, not
	 * one chain of 4096. */
	CHECK(m.count == NAMES);
	CHECK(longest <= 16);
	if (longest > 16)
		fprintf(stderr, "longest chain: %zu of %d names\n", longest, NAMES);
	struct strmap other;
	CHECK(strmap_init(&other) == 0);
	CHECK(other.seed != m.seed);	/* a seed per map */
	strmap_free(&other);
	strmap_free(&m);
}

static void test_escape_text(void)
{
	char out[128];
	CHECK(!strcmp(escape_text("pages-1.img", out, sizeof(out)), "pages-1.img"));
	CHECK(!strcmp(escape_text("a\033]0;owned\007b", out, sizeof(out)), "a\\x1b]0;owned\\x07b"));
	CHECK(!strcmp(escape_text("line\nforged", out, sizeof(out)), "line\\x0aforged"));
	CHECK(!strcmp(escape_text("del\x7f", out, sizeof(out)), "del\\x7f"));
	/* UTF-8 text stays; C1 controls, stray and overlong bytes do not. */
	CHECK(!strcmp(escape_text("h\xc3\xa9te", out, sizeof(out)), "h\xc3\xa9te"));
	CHECK(!strcmp(escape_text("\xc2\x9b" "2J", out, sizeof(out)), "\\xc2\\x9b2J"));
	CHECK(!strcmp(escape_text("\xff\xc0\xaf", out, sizeof(out)), "\\xff\\xc0\\xaf"));
	CHECK(!strcmp(escape_text("cut\xe2\x82", out, sizeof(out)), "cut\\xe2\\x82"));
	/* Cut whole pieces, never inside one. */
	CHECK(!strcmp(escape_text("ab\033", out, 5), "ab"));
}

int main(void)
{
	RUN(test_fd_not_open);
	RUN(test_fd_wrong_direction);
	RUN(test_parse_size);
	RUN(test_strmap_crafted_names_spread);
	RUN(test_escape_text);
	return unit_done();
}
