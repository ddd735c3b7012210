#include "engine/park.h"
#include "util/err.h"
#include "util/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#define PARK_PIPE_WANT (1 << 20)

struct park_pipe {
	struct park_pipe *next;
	int rd;
	int wr;		/* closed (-1) once the pipe is full */
	size_t len;	/* bytes in it */
};

void park_raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		/* Best effort: without it parking stops earlier, that is all. */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct park_pipe *new_pipe(struct park_chain *p)
{
	int fds[2];
	/* Blocking ends: filling uses SPLICE_F_NONBLOCK to notice a full pipe,
	 * draining must wait for the shard like any other write (an O_NONBLOCK
	 * end would make the whole pipe-to-pipe splice non-blocking). */
	if (pipe2(fds, O_CLOEXEC) < 0)
		return NULL;
	struct park_pipe *pp = calloc(1, sizeof(*pp));
	if (!pp) {
		close(fds[0]);
		close(fds[1]);
		errno = ENOMEM;
		return NULL;
	}
	pipe_grow(fds[0], PARK_PIPE_WANT);
	pp->rd = fds[0];
	pp->wr = fds[1];
	if (p->tail)
		p->tail->next = pp;
	else
		p->head = pp;
	p->tail = pp;
	return pp;
}

/* A pipe counts slots, not bytes: a full one refuses more (EAGAIN) even if
 * the pages in it are partial. Seal it and start the next. */
static void seal(struct park_pipe *pp)
{
	if (pp->wr >= 0) {
		close(pp->wr);
		pp->wr = -1;
	}
}

int park_take(struct park_chain *p, int src, size_t len, size_t *taken)
{
	*taken = 0;
	while (*taken < len) {
		struct park_pipe *pp = p->tail;
		if (!pp || pp->wr < 0) {
			if (!(pp = new_pipe(p)))
				return err_sys("cannot park page data (%llu bytes parked)",
					       (unsigned long long)p->bytes);
		}
		ssize_t n = splice(src, NULL, pp->wr, NULL, len - *taken,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			seal(pp);
			continue;
		}
		if (n <= 0)
			return err_sys("parking page data");
		pp->len += (size_t)n;
		p->bytes += (uint64_t)n;
		*taken += (size_t)n;
	}
	return 0;
}

int park_drain(struct park_chain *p, struct shard_writer *w, const char *name)
{
	int rc = 0;
	while (p->head && rc == 0) {
		struct park_pipe *pp = p->head;
		seal(pp);
		/* shard_writer_move blocks on the pipe when it needs to; ours are
		 * non-blocking but hold exactly len bytes, all there. */
		rc = shard_writer_move(w, name, pp->rd, pp->len);
		p->head = pp->next;
		close(pp->rd);
		free(pp);
	}
	if (!p->head)
		p->tail = NULL;
	p->bytes = 0;
	return rc;
}

void park_free(struct park_chain *p)
{
	while (p->head) {
		struct park_pipe *pp = p->head;
		p->head = pp->next;
		seal(pp);
		close(pp->rd);
		free(pp);
	}
	p->tail = NULL;
	p->bytes = 0;
}
