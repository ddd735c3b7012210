/* Fixed-size buffers for image data held in memory: allocated on first
 * need up to a byte limit, then reused. Reuse matters: faulting in fresh
 * anonymous memory runs at about half a GB/s here, several times slower
 * than copying into pages already faulted in. Thread-safe. */
#ifndef CRSTREAM_ENGINE_BUFPOOL_H
#define CRSTREAM_ENGINE_BUFPOOL_H

#include <pthread.h>
#include <stddef.h>

#define BUFPOOL_CHUNK ((size_t)256 << 10)

struct bufpool {
	pthread_mutex_t mu;
	pthread_cond_t returned;	/* a buffer came back */
	void *free;		/* free list, linked through the buffers */
	size_t in_use;
	size_t allocated;
	size_t max;		/* buffers */
	size_t peak;		/* most in use at once */
};

void bufpool_init(struct bufpool *p, size_t max_bytes);
/* A BUFPOOL_CHUNK-byte buffer, or NULL once the limit is reached. */
void *bufpool_get(struct bufpool *p);
/* Like bufpool_get, but when the limit is reached waits up to timeout_ms
 * for a buffer to come back. */
void *bufpool_get_wait(struct bufpool *p, int timeout_ms);
void bufpool_put(struct bufpool *p, void *buf);
/* Frees every buffer (all must have been put back). */
void bufpool_destroy(struct bufpool *p);

#endif
