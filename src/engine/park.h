/* Parking file data by reference: bytes spliced out of CRIU's pipe into a
 * chain of our own pipes stay as references to the dumped process's pages
 * (CRIU vmsplices them), so holding a whole image costs pipe slots, not
 * memory or copies. Capture parks the page data this way until CRIU has
 * sent every other file, then writes it last: a restore then finds the
 * small files CRIU asks for first at the front of the streams and can
 * start while the pages are still arriving. */
#ifndef CRSTREAM_ENGINE_PARK_H
#define CRSTREAM_ENGINE_PARK_H

#include <stddef.h>
#include <stdint.h>

#include "shard/shard_writer.h"

struct park_pipe;

struct park_chain {
	struct park_pipe *head, *tail;
	uint64_t bytes;
};

/* Raise RLIMIT_NOFILE to its hard limit (one fd per MiB parked). */
void park_raise_fd_limit(void);

/* Move len bytes (already in src, a pipe) into the chain. On failure
 * (typically out of fds) *taken says how many moved; the rest is still in
 * src, so the caller can drain the chain and carry on without parking. */
int park_take(struct park_chain *p, int src, size_t len, size_t *taken);

/* Write everything parked to the shards as file `name`, and free the
 * pipes. */
int park_drain(struct park_chain *p, struct shard_writer *w, const char *name);

void park_free(struct park_chain *p);

#endif
