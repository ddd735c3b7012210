/* The fd checks behind --shard-fds / --ext-file-fds messages, and the
 * size parser behind --memory-limit and the config. */
#include "unit.h"
#include "cli/cli.h"
#include "util/err.h"
#include "util/fdio.h"

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

int main(void)
{
	RUN(test_fd_not_open);
	RUN(test_fd_wrong_direction);
	RUN(test_parse_size);
	return unit_done();
}
