#include "engine/bufpool.h"
#include "util/bigbuf.h"
#include "util/fdio.h"

#include <stdlib.h>
#include <time.h>

void bufpool_init(struct bufpool *p, size_t max_bytes)
{
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->returned, NULL);
	p->free = NULL;
	p->in_use = p->allocated = p->peak = 0;
	p->max = max_bytes / BUFPOOL_CHUNK;
	p->region = NULL;
	if (p->max == 0)
		return;
	if (!(p->region = bigbuf_map(p->max * BUFPOOL_CHUNK)))
		p->max = 0;
}

/* Caller holds mu. */
static void *take(struct bufpool *p)
{
	void *buf = NULL;
	if (p->free) {
		buf = p->free;
		p->free = *(void **)buf;
	} else if (p->allocated < p->max) {
		buf = p->region + p->allocated * BUFPOOL_CHUNK;
		p->allocated++;
	}
	if (buf && ++p->in_use > p->peak)
		p->peak = p->in_use;
	return buf;
}

void *bufpool_get(struct bufpool *p)
{
	pthread_mutex_lock(&p->mu);
	void *buf = take(p);
	pthread_mutex_unlock(&p->mu);
	return buf;
}

void *bufpool_get_wait(struct bufpool *p, int timeout_ms)
{
	struct timespec until = deadline_after_ms(timeout_ms);
	pthread_mutex_lock(&p->mu);
	void *buf;
	while (!(buf = take(p)))
		if (pthread_cond_timedwait(&p->returned, &p->mu, &until) != 0)
			break;
	pthread_mutex_unlock(&p->mu);
	return buf;
}

void bufpool_put(struct bufpool *p, void *buf)
{
	pthread_mutex_lock(&p->mu);
	*(void **)buf = p->free;
	p->free = buf;
	p->in_use--;
	pthread_cond_signal(&p->returned);
	pthread_mutex_unlock(&p->mu);
}

void bufpool_destroy(struct bufpool *p)
{
	bigbuf_unmap(p->region, p->max * BUFPOOL_CHUNK);
	p->region = NULL;
	p->free = NULL;
	pthread_cond_destroy(&p->returned);
	pthread_mutex_destroy(&p->mu);
}
