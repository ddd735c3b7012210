/* Fixed-size buffers for image data held in memory: allocated on first
 * need up to a byte limit, then reused. Reuse matters: faulting in fresh
 * anonymous memory runs at about half a GB/s here, several times slower
 * than copying into pages already faulted in. For the same reason the
 * buffers are carved out of one mapping with huge pages (util/bigbuf.h):
 * the first use of the pool (all of it, for an image smaller than the
 * budget) then costs one fault per 2 MiB instead of one per 4 KiB.
 * Thread-safe. */
#ifndef CRSTREAM_ENGINE_BUFPOOL_H
#define CRSTREAM_ENGINE_BUFPOOL_H

#include <pthread.h>
#include <stddef.h>

#define BUFPOOL_CHUNK ((size_t)256 << 10)

struct bufpool {
	pthread_mutex_t mu;
	pthread_cond_t returned;	/* a buffer came back */
	void *free;		/* free list, linked through the buffers */
	char *region;		/* max buffers, mapped at init (NULL: none) */
	size_t in_use;
	size_t allocated;
	size_t max;		/* buffers */
	size_t peak;		/* most in use at once */
};

/* Maps the pool's region (address space only: pages come on first use);
 * a pool that cannot map it has no buffers (bufpool_get gives NULL). */
void bufpool_init(struct bufpool *p, size_t max_bytes);
/* A BUFPOOL_CHUNK-byte buffer, or NULL once the limit is reached. */
void *bufpool_get(struct bufpool *p);
/* Like bufpool_get, but when the limit is reached waits up to timeout_ms
 * for a buffer to come back. */
void *bufpool_get_wait(struct bufpool *p, int timeout_ms);
void bufpool_put(struct bufpool *p, void *buf);
/* Unmaps the region (every buffer must have been put back). */
void bufpool_destroy(struct bufpool *p);

#endif
