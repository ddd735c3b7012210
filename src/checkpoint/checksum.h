/* Stream checksums: XXH3-128 of a stream's stored bytes, computed in
 * passing by a writer filter on dump and a reader filter on restore.
 * XXH3 hashes at memory speed (tens of GB/s here), so integrity costs the
 * data path nothing measurable; users can check a stream by hand with
 * `xxh128sum img-0.lz4`. */
#ifndef CRSTREAM_CHECKPOINT_CHECKSUM_H
#define CRSTREAM_CHECKPOINT_CHECKSUM_H

#include <stdbool.h>
#include <stdint.h>

#include "util/stream.h"

struct checksum_result {
	char hex[33];		/* filled when the stream is complete */
	uint64_t bytes;		/* bytes that went through */
	int done;
};

/* A writer filter hashing what goes to next; the result is filled at
 * close, before next is closed. */
struct writer *checksum_writer(struct writer *next, struct checksum_result *res);

/* A reader filter hashing what comes from next; the result is filled when
 * next reports its end. With hash false it only counts (res->hex stays
 * ""): for streams whose bytes something stronger checks. */
struct reader *checksum_reader(struct reader *next, struct checksum_result *res, bool hash);

/* The same hash by hand, for bytes that never pass through a filter
 * (spliced into a file, read through a mapping). */
struct checksum_state;
struct checksum_state *checksum_new(void);
void checksum_update(struct checksum_state *st, const void *p, size_t n);
/* Fills res->hex and res->done (res->bytes is the caller's). */
void checksum_final(struct checksum_state *st, struct checksum_result *res);
void checksum_free(struct checksum_state *st);

/* Checksum of a whole file from its current offset (hex as above). */
int checksum_fd(int fd, char hex[33], uint64_t *size);

#endif
