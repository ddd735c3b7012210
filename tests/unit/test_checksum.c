/* checkpoint/checksum.c's reader filter: hashing, and counting only (for
 * streams whose bytes the signed chunk digests check instead). */
#include "unit.h"
#include "checkpoint/checksum.h"
#include "util/err.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static void read_through(const void *data, size_t len, bool hash, struct checksum_result *res)
{
	struct reader *r = checksum_reader(mem_reader(data, len, 4096 + 7), res, hash);
	CHECK(r != NULL);
	char buf[10000];
	ssize_t n;
	while ((n = reader_read(r, buf, sizeof(buf))) > 0)
		;
	CHECK(n == 0);
	reader_close(r);
}

static void test_reader_hashes_or_only_counts(void)
{
	size_t len = 300000;
	char *data = malloc(len);
	for (size_t i = 0; i < len; i++)
		data[i] = (char)(i * 7 + (i >> 9));
	/* The same bytes as a whole file, hashed by checksum_fd. */
	int fd = memfd_create("checksum", MFD_CLOEXEC);
	CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len && lseek(fd, 0, SEEK_SET) == 0);
	char whole[33] = "";
	uint64_t size = 0;
	CHECK(checksum_fd(fd, whole, &size) == 0);
	close(fd);

	struct checksum_result hashed = {0}, counted = {0};
	read_through(data, len, true, &hashed);
	read_through(data, len, false, &counted);
	CHECK(hashed.done && hashed.bytes == len && size == len && !strcmp(hashed.hex, whole));
	CHECK(counted.done && counted.bytes == len && counted.hex[0] == '\0');
	free(data);
}

int main(void)
{
	RUN(test_reader_hashes_or_only_counts);
	return unit_done();
}
