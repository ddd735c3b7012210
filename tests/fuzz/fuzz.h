/* Helpers shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
 *
 * Each harness defines LLVMFuzzerTestOneInput() and calls the project's
 * public functions on the input. Besides the sanitizers' findings, a
 * harness aborts (libFuzzer then keeps the input as a crash) when a
 * property every parser here promises is broken: a failure always comes
 * with a one-line message (err_msg() not empty). */
#ifndef CRSTREAM_FUZZ_H
#define CRSTREAM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/err.h"

/* Stops the run with a message; libFuzzer reports the input as a crash. */
#define FUZZ_CHECK(cond, ...)                                                          \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "fuzz: %s:%d: check failed: %s: ", __FILE__,   \
				__LINE__, #cond);                                      \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
			abort();                                                       \
		}                                                                      \
	} while (0)

/* After a call that returned failure: it must have said why. */
static inline void fuzz_failed_with_message(const char *what)
{
	FUZZ_CHECK(err_msg()[0] != '\0', "%s failed without an error message", what);
}

/* A NUL-terminated copy of the input, for parsers of C strings. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	FUZZ_CHECK(s, "out of memory");
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* A memory-backed regular file holding the bytes, positioned at 0. */
static inline int fuzz_memfd(const char *name, const void *data, size_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0, "memfd_create failed");
	size_t done = 0;
	while (done < size) {
		ssize_t n = write(fd, (const char *)data + done, size - done);
		FUZZ_CHECK(n > 0, "writing the memfd failed");
		done += (size_t)n;
	}
	FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek failed");
	return fd;
}

/* Splits an input into parts at a separator that mutations rarely create
 * by chance and seed files never contain, so that the fuzzer can grow and
 * shrink each part independently. Fills at most max parts (the last takes
 * the rest); returns how many. */
#define FUZZ_SEPARATOR "\n--next-part--\n"

struct fuzz_part {
	const uint8_t *p;
	size_t len;
};

static inline int fuzz_split(const uint8_t *data, size_t size, struct fuzz_part *parts, int max)
{
	const size_t seplen = sizeof(FUZZ_SEPARATOR) - 1;
	int n = 0;
	while (n < max - 1) {
		const uint8_t *sep = size >= seplen ? memmem(data, size, FUZZ_SEPARATOR, seplen) : NULL;
		if (!sep)
			break;
		parts[n].p = data;
		parts[n].len = (size_t)(sep - data);
		n++;
		size -= (size_t)(sep - data) + seplen;
		data = sep + seplen;
	}
	parts[n].p = data;
	parts[n].len = size;
	return n + 1;
}

#endif
