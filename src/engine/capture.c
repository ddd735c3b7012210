/* Capture: CRIU -> shards. CRIU hands us one pipe per image file; we move
 * what arrives in each pipe into the shards with splice(), so page data
 * never passes through our memory. */
#include "engine/engine.h"
#include "engine/engine_util.h"
#include "engine/park.h"
#include "criu/criu_socket.h"
#include "shard/shard_writer.h"
#include "util/err.h"
#include "util/fdio.h"
#include "util/strmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* CRIU's pages pipe: larger pipes mean fewer wake-ups. The kernel caps it at
 * pipe-max-size; pipe_grow() settles for what it allows. */
#define CRIU_PIPE_WANT (4 << 20)

enum input_kind { IN_CRIU_CONN, IN_FILE, IN_CANCEL, IN_FINISH };

struct input {
	struct input *prev, *next;	/* every registered input */
	enum input_kind kind;
	int fd;			/* owned, except the cancel and finish fds */
	const char *name;	/* IN_FILE: key in the names map */
	uint64_t size;		/* IN_FILE: bytes received */
	struct deferred *deferred;	/* IN_FILE: parked until the end, or NULL */
};

/* A file whose data is parked (see park.h) and written after all others. */
struct deferred {
	struct deferred *next;
	const char *name;
	struct park_chain chain;
	uint64_t size;
	bool complete;		/* CRIU closed its pipe */
};

struct capture {
	const struct engine_opts *o;
	struct shard_writer w;
	struct strmap names;	/* every file name seen: duplicates are refused */
	int epfd;
	struct input *inputs;
	int live;		/* inputs registered (connection, files, cancel) */
	bool started;		/* checkpoint-start announced */
	struct deferred *deferred, **deferred_tail;	/* in CRIU's order */
	uint64_t start_ms;
	struct engine_result *res;
};

static int watch(struct capture *c, struct input *in)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = in};
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, in->fd, &ev) < 0)
		return err_sys("epoll_ctl(ADD) of fd %d", in->fd);
	in->prev = NULL;
	in->next = c->inputs;
	if (c->inputs)
		c->inputs->prev = in;
	c->inputs = in;
	c->live++;
	return 0;
}

static void unwatch(struct capture *c, struct input *in)
{
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, in->fd, NULL);
	if (in->kind != IN_CANCEL && in->kind != IN_FINISH)
		close(in->fd);
	if (in->prev)
		in->prev->next = in->next;
	else
		c->inputs = in->next;
	if (in->next)
		in->next->prev = in->prev;
	free(in);
	c->live--;
}

/* A file input: a CRIU image pipe or an external file. */
static struct input *new_file_input(struct capture *c, const char *name, int fd)
{
	struct input *in = calloc(1, sizeof(*in));
	struct strmap_entry *e = in ? strmap_add(&c->names, name, NULL) : NULL;
	if (!e) {
		if (in)
			err_set("%s is sent twice", name);
		else
			err_set("out of memory");
		free(in);
		return NULL;
	}
	in->kind = IN_FILE;
	in->fd = fd;
	in->name = e->key;
	return in;
}

/* pages-<id>.img: the bulk of an image, and what restore needs last. */
static bool is_page_data(const char *name)
{
	size_t n = strlen(name);
	return !strncmp(name, "pages-", 6) && n > 10 && !strcmp(name + n - 4, ".img");
}

static int defer(struct capture *c, struct input *in)
{
	struct deferred *d = calloc(1, sizeof(*d));
	if (!d)
		return err_set("out of memory");
	d->name = in->name;
	*c->deferred_tail = d;
	c->deferred_tail = &d->next;
	in->deferred = d;
	return 0;
}

/* Writes a deferred file out now: its parked data, then its end if CRIU
 * has closed it. Used at the end, and early when parking fails. */
static int flush_deferred(struct capture *c, struct deferred *d)
{
	if (park_drain(&d->chain, &c->w, d->name) < 0)
		return -1;
	if (!d->complete)
		return 0;
	if (shard_writer_file_eof(&c->w, d->name) < 0)
		return -1;
	c->res->files++;
	if (c->o->on_file)
		c->o->on_file(c->o->arg, d->name, d->size);
	return 0;
}

/* Parks what is queued in a deferred file's pipe. If parking fails (out of
 * fds), the file is written out as far as it goes and streams on
 * directly: its own order is kept, only its place at the end is lost. */
static int park_queued(struct capture *c, struct input *in, size_t queued)
{
	size_t taken;
	if (park_take(&in->deferred->chain, in->fd, queued, &taken) == 0)
		return 0;
	warnx_("%s: %s; writing it directly from here on", in->name, err_msg());
	if (flush_deferred(c, in->deferred) < 0)
		return -1;
	in->deferred->name = NULL;	/* written through: nothing left to do at the end */
	in->deferred = NULL;
	return shard_writer_move(&c->w, in->name, in->fd, queued - taken);
}

static void announce_start(struct capture *c, const char *name)
{
	/* cpuinfo.img comes before CRIU freezes anything; any other file means
	 * the tasks are stopped, which is when a controller may tar their
	 * files. */
	if (c->started || strcmp(name, "cpuinfo.img") == 0)
		return;
	c->started = true;
	c->start_ms = now_ms();
	engine_emit(c->o->progress_fd, "checkpoint-start");
}

static int on_request(struct capture *c, struct input *conn)
{
	char name[CRIU_NAME_MAX + 1];
	int rc = criu_read_request(conn->fd, name, sizeof(name));
	if (rc < 0)
		return -1;
	if (rc == 0) {
		/* CRIU is done asking; files may still be flowing. */
		unwatch(c, conn);
		return 0;
	}
	announce_start(c, name);
	int fd = criu_recv_pipe(conn->fd, true);
	if (fd < 0)
		return err_prefix("%s", name);
	if (pipe_grow(fd, CRIU_PIPE_WANT) < 0) {
		err_sys("%s: sizing CRIU's pipe", name);
		close(fd);
		return -1;
	}
	struct input *in = new_file_input(c, name, fd);
	if (!in) {
		close(fd);
		return err_prefix("CRIU");
	}
	if (c->o->defer_pages && is_page_data(name) && defer(c, in) < 0) {
		close(fd);
		free(in);
		return -1;
	}
	if (watch(c, in) < 0) {
		close(fd);
		free(in);
		return -1;
	}
	return 0;
}

/* Moves what is waiting in a file's pipe to the shards; at EOF, closes the
 * file in the image. */
static int on_file(struct capture *c, struct input *in, uint32_t events)
{
	int queued = pipe_queued(in->fd);
	if (queued < 0)
		return err_sys("%s: FIONREAD", in->name);
	if (queued > 0) {
		int rc = in->deferred ? park_queued(c, in, (size_t)queued)
				      : shard_writer_move(&c->w, in->name, in->fd, (size_t)queued);
		if (rc < 0)
			return -1;
		c->res->file_bytes += (uint64_t)queued;
		in->size += (uint64_t)queued;
		return 0;
	}
	if (!(events & (EPOLLHUP | EPOLLERR)))
		return 0;	/* spurious wake-up */
	if (in->deferred) {
		in->deferred->complete = true;
		in->deferred->size = in->size;
		unwatch(c, in);
		return 0;
	}
	if (shard_writer_file_eof(&c->w, in->name) < 0)
		return -1;
	c->res->files++;
	if (c->o->on_file)
		c->o->on_file(c->o->arg, in->name, in->size);
	unwatch(c, in);
	return 0;
}

/* External inputs that are regular files cannot be polled; their content
 * is complete already, so they go in whole once CRIU is done. */
static int add_regular_ext(struct capture *c, const struct ext_file *x)
{
	struct stat st;
	if (fstat(x->fd, &st) < 0)
		return err_sys("external file %s (fd %d)", x->name, x->fd);
	off_t pos = lseek(x->fd, 0, SEEK_CUR);
	if (pos < 0)
		pos = 0;
	size_t len = st.st_size > pos ? (size_t)(st.st_size - pos) : 0;
	if (shard_writer_move(&c->w, x->name, x->fd, len) < 0 ||
	    shard_writer_file_eof(&c->w, x->name) < 0)
		return -1;
	c->res->files++;
	c->res->file_bytes += len;
	if (c->o->on_file)
		c->o->on_file(c->o->arg, x->name, len);
	return 0;
}

static int add_inputs(struct capture *c, int conn)
{
	struct input *in = calloc(1, sizeof(*in));
	if (!in) {
		close(conn);
		return err_set("out of memory");
	}
	in->kind = IN_CRIU_CONN;
	in->fd = conn;
	if (watch(c, in) < 0) {
		close(conn);
		free(in);
		return -1;
	}
	for (int i = 0; i < c->o->next; i++) {
		const struct ext_file *x = &c->o->ext[i];
		struct stat st;
		if (fstat(x->fd, &st) < 0)
			return err_sys("external file %s (fd %d)", x->name, x->fd);
		if (S_ISREG(st.st_mode))
			continue;
		int fd = dup(x->fd);
		if (fd < 0)
			return err_sys("external file %s (fd %d)", x->name, x->fd);
		struct input *f = new_file_input(c, x->name, fd);
		if (!f || watch(c, f) < 0) {
			close(fd);
			free(f);
			return -1;
		}
	}
	int special[2][2] = {{IN_CANCEL, c->o->cancel_fd}, {IN_FINISH, c->o->finish_fd}};
	for (int i = 0; i < 2; i++) {
		if (special[i][1] < 0)
			continue;
		struct input *k = calloc(1, sizeof(*k));
		if (!k)
			return err_set("out of memory");
		k->kind = special[i][0];
		k->fd = special[i][1];
		if (watch(c, k) < 0) {
			free(k);
			return -1;
		}
	}
	return 0;
}

static struct input *find_conn(struct capture *c)
{
	for (struct input *in = c->inputs; in; in = in->next)
		if (in->kind == IN_CRIU_CONN)
			return in;
	return NULL;
}

/* Inputs that never end by themselves (cancel, finish): not work in flight. */
static int background_inputs(struct capture *c)
{
	int n = 0;
	for (struct input *in = c->inputs; in; in = in->next)
		n += in->kind == IN_CANCEL || in->kind == IN_FINISH;
	return n;
}

/* CRIU has sent its last file: take the requests still queued in the
 * socket (each one whole: CRIU wrote them before running its hook), then
 * stop listening to it. */
static int on_finish(struct capture *c, struct input *finish)
{
	struct input *conn;
	while ((conn = find_conn(c))) {
		char byte;
		if (recv(conn->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) {
			unwatch(c, conn);	/* nothing queued, or CRIU is gone */
			break;
		}
		if (on_request(c, conn) < 0)	/* unwatches conn itself at EOF */
			return -1;
	}
	unwatch(c, finish);
	return 0;
}

static int run_loop(struct capture *c)
{
	struct epoll_event evs[16];
	/* The cancel and finish inputs never end by themselves; they are not
	 * work in flight. */
	while (c->live > background_inputs(c)) {
		int n = epoll_wait(c->epfd, evs, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return err_sys("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			struct input *in = evs[i].data.ptr;
			int rc = 0;
			if (in->kind == IN_CANCEL)
				rc = err_set("capture cancelled");
			else if (in->kind == IN_FINISH)
				rc = on_finish(c, in);
			else if (in->kind == IN_CRIU_CONN)
				rc = on_request(c, in);
			else
				rc = on_file(c, in, evs[i].events);
			if (rc < 0)
				return -1;
		}
	}
	return 0;
}

/* Closes whatever inputs are still registered (error paths). */
static void drop_inputs(struct capture *c)
{
	while (c->inputs)
		unwatch(c, c->inputs);
}

int engine_capture(const struct engine_opts *o, struct engine_result *res)
{
	struct capture c = {.o = o, .res = res, .epfd = -1};
	c.deferred_tail = &c.deferred;
	if (o->defer_pages)
		park_raise_fd_limit();
	struct criu_listener l = {.fd = -1};
	int conn = -1, rc = -1;

	if (mkdir_p(o->images_dir, 0700) < 0)
		return -1;
	if (strmap_init(&c.names) < 0)
		return -1;
	if (shard_writer_init(&c.w, o->shard_fds, o->nshards) < 0)
		goto out;
	if (criu_listen(&l, o->images_dir, CRIU_CAPTURE_SOCKET) < 0)
		goto out;
	engine_emit(o->progress_fd, "socket-init");
	if (o->on_listen)
		o->on_listen(o->listen_arg);
	conn = engine_accept(&l, o->cancel_fd);
	if (conn < 0)
		goto out;
	criu_listener_close(&l);
	c.start_ms = now_ms();
	c.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c.epfd < 0) {
		err_sys("epoll_create1");
		goto out;
	}
	rc = add_inputs(&c, conn);
	conn = -1;	/* owned by the epoll set now */
	if (rc == 0)
		rc = run_loop(&c);
	for (struct deferred *d = c.deferred; rc == 0 && d; d = d->next)
		if (d->name)
			rc = flush_deferred(&c, d);
	for (int i = 0; rc == 0 && i < o->next; i++) {
		struct stat st;
		if (fstat(o->ext[i].fd, &st) == 0 && S_ISREG(st.st_mode))
			rc = add_regular_ext(&c, &o->ext[i]);
	}
	if (rc == 0)
		rc = shard_writer_image_eof(&c.w);
	if (rc == 0) {
		uint64_t ms = now_ms() - c.start_ms;
		for (int i = 0; i < o->nshards; i++) {
			res->shards[i].bytes = c.w.shards[i].bytes;
			res->shards[i].millis = ms;
		}
		engine_emit_stats(o->progress_fd, res->shards, o->nshards);
	}
out:
	drop_inputs(&c);
	while (c.deferred) {
		struct deferred *d = c.deferred;
		c.deferred = d->next;
		park_free(&d->chain);
		free(d);
	}
	if (conn >= 0)
		close(conn);
	if (c.epfd >= 0)
		close(c.epfd);
	criu_listener_close(&l);
	shard_writer_free(&c.w);
	strmap_free(&c.names);
	return rc;
}
