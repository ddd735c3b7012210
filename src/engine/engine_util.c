#include "engine/engine.h"
#include "engine/engine_util.h"
#include "util/err.h"
#include "util/fdio.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void emit_raw(int progress_fd, const char *line, size_t len)
{
	/* Progress is advisory: a reader that went away must not fail the
	 * checkpoint, so the result is deliberately ignored. */
	(void)!write_full(progress_fd, line, len);
}

void engine_opts_init(struct engine_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->progress_fd = -1;
	o->cancel_fd = -1;
	o->finish_fd = -1;
}

void engine_emit(int progress_fd, const char *line)
{
	if (progress_fd < 0)
		return;
	size_t len = strlen(line);
	char *buf = malloc(len + 1);
	if (!buf)
		return;
	memcpy(buf, line, len);
	buf[len] = '\n';
	/* One write per line, so that lines never interleave. */
	emit_raw(progress_fd, buf, len + 1);
	free(buf);
}

void engine_emit_stats(int progress_fd, const struct shard_stat *s, int n)
{
	if (progress_fd < 0)
		return;
	size_t cap = 32 + (size_t)n * 80;
	char *buf = malloc(cap);
	if (!buf)
		return;
	size_t used = (size_t)snprintf(buf, cap, "{\"shards\":[");
	for (int i = 0; i < n; i++)
		used += (size_t)snprintf(buf + used, cap - used,
					 "%s{\"size\":%" PRIu64 ",\"transfer_duration_millis\":%" PRIu64 "}",
					 i ? "," : "", s[i].bytes, s[i].millis);
	snprintf(buf + used, cap - used, "]}");
	engine_emit(progress_fd, buf);
	free(buf);
}

int engine_accept(struct criu_listener *l, int cancel_fd)
{
	struct pollfd pfd[2] = {
		{.fd = l->fd, .events = POLLIN},
		{.fd = cancel_fd, .events = POLLIN},
	};
	for (;;) {
		int n = poll(pfd, cancel_fd >= 0 ? 2 : 1, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return err_sys("poll on %s", l->path);
		if (cancel_fd >= 0 && pfd[1].revents)
			return err_set("cancelled while waiting for CRIU to connect to %s", l->path);
		if (pfd[0].revents)
			return criu_accept(l);
	}
}

/* Image files land in one directory: a name that could climb out of it is
 * refused, whatever produced the shard. */
int engine_check_name(const char *name)
{
	if (!is_plain_name(name))
		return err_set("unsafe file name \"%s\" in the image", name);
	return 0;
}

/* Index of the external file called `name`, or -1. */
int engine_find_ext(const struct engine_opts *o, const char *name)
{
	for (int i = 0; i < o->next; i++)
		if (strcmp(o->ext[i].name, name) == 0)
			return i;
	return -1;
}

int engine_missing_ext(const struct engine_opts *o, const bool *used)
{
	for (int i = 0; i < o->next; i++)
		if (!used[i])
			return err_set("external file %s is not in the image", o->ext[i].name);
	return 0;
}

