#include "checkpoint/checksum.h"
#include "util/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- the hash ---- */

struct checksum_state *checksum_new(void)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st || XXH3_128bits_reset(st) != XXH_OK) {
		XXH3_freeState(st);
		err_set("out of memory");
		return NULL;
	}
	return (struct checksum_state *)st;
}

void checksum_update(struct checksum_state *st, const void *p, size_t n)
{
	XXH3_128bits_update((XXH3_state_t *)st, p, n);
}

void checksum_final(struct checksum_state *st, struct checksum_result *res)
{
	XXH128_hash_t h = XXH3_128bits_digest((XXH3_state_t *)st);
	/* The canonical form is big-endian high then low, as xxh128sum prints. */
	snprintf(res->hex, sizeof(res->hex), "%016llx%016llx", (unsigned long long)h.high64,
		 (unsigned long long)h.low64);
	res->done = 1;
}

void checksum_free(struct checksum_state *st)
{
	XXH3_freeState((XXH3_state_t *)st);
}

/* ---- filters ---- */

struct sum_writer {
	struct writer w;
	struct checksum_state *st;
	struct checksum_result *res;
};

struct sum_reader {
	struct reader r;
	struct checksum_state *st;
	struct checksum_result *res;
};

static int sw_write(struct writer *w, const void *buf, size_t len)
{
	struct sum_writer *s = (struct sum_writer *)w;
	checksum_update(s->st, buf, len);
	/* Atomic: progress reports read it from another thread. */
	__atomic_fetch_add(&s->res->bytes, (uint64_t)len, __ATOMIC_RELAXED);
	return writer_write(w->next, buf, len);
}

static int sw_close(struct writer *w)
{
	struct sum_writer *s = (struct sum_writer *)w;
	checksum_final(s->st, s->res);
	int rc = writer_close(w->next);
	checksum_free(s->st);
	free(s);
	return rc;
}

static void sw_abort(struct writer *w)
{
	struct sum_writer *s = (struct sum_writer *)w;
	writer_abort(w->next);
	checksum_free(s->st);
	free(s);
}

static const struct writer_ops sum_writer_ops = {
	.write = sw_write,
	.close = sw_close,
	.abort = sw_abort,
};

struct writer *checksum_writer(struct writer *next, struct checksum_result *res)
{
	struct sum_writer *s = calloc(1, sizeof(*s));
	if (!s || !(s->st = checksum_new())) {
		free(s);
		err_set("out of memory");
		return NULL;
	}
	s->w.ops = &sum_writer_ops;
	s->w.next = next;
	s->res = res;
	res->bytes = 0;
	res->done = 0;
	return &s->w;
}

static ssize_t sr_read(struct reader *r, void *buf, size_t cap)
{
	struct sum_reader *s = (struct sum_reader *)r;
	ssize_t n = reader_read(r->next, buf, cap);
	if (n > 0) {
		if (s->st)
			checksum_update(s->st, buf, (size_t)n);
		__atomic_fetch_add(&s->res->bytes, (uint64_t)n, __ATOMIC_RELAXED);
	} else if (n == 0 && !s->res->done) {
		if (s->st)
			checksum_final(s->st, s->res);
		else
			s->res->done = 1;
	}
	return n;
}

static void sr_close(struct reader *r)
{
	struct sum_reader *s = (struct sum_reader *)r;
	reader_close(r->next);
	if (s->st)
		checksum_free(s->st);
	free(s);
}

static const struct reader_ops sum_reader_ops = {
	.read = sr_read,
	.close = sr_close,
};

struct reader *checksum_reader(struct reader *next, struct checksum_result *res, bool hash)
{
	struct sum_reader *s = calloc(1, sizeof(*s));
	if (!s || (hash && !(s->st = checksum_new()))) {
		free(s);
		err_set("out of memory");
		return NULL;
	}
	s->r.ops = &sum_reader_ops;
	s->r.next = next;
	s->res = res;
	res->bytes = 0;
	res->done = 0;
	return &s->r;
}

/* ---- whole files ---- */

int checksum_fd(int fd, char hex[33], uint64_t *size)
{
	struct checksum_state *st = checksum_new();
	unsigned char *buf = malloc(1 << 20);
	struct checksum_result res = {0};
	int rc = 0;
	if (!st || !buf) {
		rc = err_set("out of memory");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = err_sys("read");
			goto out;
		}
		if (n == 0)
			break;
		checksum_update(st, buf, (size_t)n);
		res.bytes += (uint64_t)n;
	}
	checksum_final(st, &res);
	snprintf(hex, 33, "%s", res.hex);
	*size = res.bytes;
out:
	checksum_free(st);
	free(buf);
	return rc;
}
