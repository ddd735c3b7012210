/* Test data for the codec benchmarks: memory-image-like pages, each 4 KiB
 * page chosen at random as zero (40%), random bytes (30%, like already
 * compressed or encrypted data) or text-like (30%, words from a small
 * vocabulary, like heaps full of strings). Deterministic for a seed. */
#ifndef CRSTREAM_BENCH_DATA_H
#define CRSTREAM_BENCH_DATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_PAGE 4096

static inline uint64_t bench_rand(uint64_t *s)
{
	/* xorshift64*: fast, and good enough for filler bytes. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static inline void bench_text_page(unsigned char *p, uint64_t *s, char words[][12], int nwords)
{
	size_t i = 0;
	while (i < BENCH_PAGE) {
		const char *w = words[bench_rand(s) % (uint64_t)nwords];
		size_t n = strlen(w);
		if (n > BENCH_PAGE - i)
			n = BENCH_PAGE - i;
		memcpy(p + i, w, n);
		i += n;
		if (i < BENCH_PAGE)
			p[i++] = bench_rand(s) % 8 ? ' ' : '\n';
	}
}

static inline void bench_fill(unsigned char *buf, size_t len, uint64_t seed)
{
	static char words[1024][12];
	uint64_t s = seed | 1;
	for (int w = 0; w < 1024; w++) {
		size_t n = 2 + bench_rand(&s) % 9;
		for (size_t i = 0; i < n; i++)
			words[w][i] = (char)('a' + bench_rand(&s) % 26);
		words[w][n] = '\0';
	}
	for (size_t off = 0; off < len; off += BENCH_PAGE) {
		unsigned char *p = buf + off;
		size_t n = len - off < BENCH_PAGE ? len - off : BENCH_PAGE;
		unsigned kind = (unsigned)(bench_rand(&s) % 10);
		if (n < BENCH_PAGE || kind < 4) {
			memset(p, 0, n);
		} else if (kind < 7) {
			for (size_t i = 0; i + 8 <= BENCH_PAGE; i += 8) {
				uint64_t r = bench_rand(&s);
				memcpy(p + i, &r, 8);
			}
		} else {
			bench_text_page(p, &s, words, 1024);
		}
	}
}

static inline double bench_now(void)
{
	struct timespec ts;
	/* CPU time of this thread: other work on a shared machine does not
	 * count against the codec. */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
