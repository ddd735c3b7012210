#include "checkpoint/hook.h"
#include "util/err.h"
#include "util/fdio.h"
#include "util/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Actions the dump/restore wants a say in; CRIU's other actions (pre-dump,
 * network-lock, ...) pass without asking. */
static const char *const decided_actions[] = {"post-dump", "post-restore", NULL};

static void serve_connection(struct hook_server *h, int c)
{
	char action[64];
	ssize_t n = read(c, action, sizeof(action) - 1);
	if (n <= 0)
		return;
	action[n] = '\0';
	action[strcspn(action, "\n")] = '\0';
	int rc = 0;
	trace("hook", "CRIU's %s", action);
	if (!strcmp(action, h->action)) {
		rc = h->handler(h->arg);
		if (rc < 0)
			err_copy(h->err, sizeof(h->err));
		h->rc = rc;
		h->answered = true;
	}
	char reply[ERR_MAX + 16];
	int len = snprintf(reply, sizeof(reply), rc == 0 ? "ok\n" : "fail %s\n", h->err);
	if (len > 0)
		(void)!write_full(c, reply, (size_t)len < sizeof(reply) ? (size_t)len : sizeof(reply) - 1);
}

static void *server_main(void *arg)
{
	struct hook_server *h = arg;
	struct pollfd pfd[2] = {{.fd = h->fd, .events = POLLIN}, {.fd = h->stop_fd, .events = POLLIN}};
	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		int c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		/* CRIU runs its scripts one at a time: no need for more. */
		serve_connection(h, c);
		close(c);
	}
	return NULL;
}

static int write_script(struct hook_server *h, const char *dir, const char *self)
{
	snprintf(h->script_path, sizeof(h->script_path), "%s/action-script", dir);
	int fd = open(h->script_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	if (fd < 0)
		return err_sys("cannot create %s", h->script_path);
	/* CRIU runs the script for each of its actions (pre-stream, pre-dump
	 * or pre-restore, post-*, pre-resume, post-resume, network-lock...),
	 * several of them while the tree is frozen or before it runs: the
	 * shell lets those we do not decide pass without starting crstream. */
	char text[8192];
	int n = snprintf(text, sizeof(text),
			 "#!/bin/sh\n"
			 "# Installed by crstream for one dump/restore: asks it whether CRIU may go on.\n"
			 "case \"$CRTOOLS_SCRIPT_ACTION\" in\n"
			 "%s) exec '%s' hook '%s' ;;\n"
			 "esac\n"
			 "exit 0\n", h->action, self, h->sock_path);
	int rc = 0;
	if (n < 0 || (size_t)n >= sizeof(text) || strchr(self, '\'') || strchr(h->sock_path, '\''))
		rc = err_set("cannot quote %s for the action script", self);
	else if (write_full(fd, text, (size_t)n) < 0)
		rc = err_sys("writing %s", h->script_path);
	if (close(fd) < 0 && rc == 0)
		rc = err_sys("writing %s", h->script_path);
	return rc;
}

int hook_server_start(struct hook_server *h, const char *dir, const char *self,
		      const char *action, hook_handler handler, void *arg)
{
	memset(h, 0, sizeof(*h));
	h->fd = -1;
	h->stop_fd = -1;
	h->action = action;
	h->handler = handler;
	h->arg = arg;
	int n = snprintf(h->sock_path, sizeof(h->sock_path), "%s/hook.sock", dir);
	if (n < 0 || (size_t)n >= sizeof(h->sock_path))
		return err_set("hook socket path too long: %s/hook.sock", dir);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	memcpy(addr.sun_path, h->sock_path, (size_t)n + 1);
	h->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	h->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (h->fd < 0 || h->stop_fd < 0) {
		err_sys("hook socket");
		goto fail;
	}
	unlink(h->sock_path);
	if (bind(h->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(h->fd, 4) < 0) {
		err_sys("cannot listen on %s", h->sock_path);
		goto fail;
	}
	if (write_script(h, dir, self) < 0)
		goto fail;
	if (pthread_create(&h->thread, NULL, server_main, h) != 0) {
		err_set("cannot start the hook thread");
		goto fail;
	}
	h->running = 1;
	return 0;
fail:
	if (h->fd >= 0)
		close(h->fd);
	if (h->stop_fd >= 0)
		close(h->stop_fd);
	h->fd = h->stop_fd = -1;
	return -1;
}

void hook_server_stop(struct hook_server *h)
{
	if (h->running) {
		uint64_t one = 1;
		(void)!write(h->stop_fd, &one, sizeof(one));
		pthread_join(h->thread, NULL);
		h->running = 0;
	}
	if (h->fd >= 0) {
		close(h->fd);
		unlink(h->sock_path);
	}
	if (h->stop_fd >= 0)
		close(h->stop_fd);
	h->fd = h->stop_fd = -1;
}

int hook_client(const char *sock_path)
{
	const char *action = getenv("CRTOOLS_SCRIPT_ACTION");
	if (!action)
		return 0;
	bool decided = false;
	for (int i = 0; decided_actions[i]; i++)
		decided |= !strcmp(action, decided_actions[i]);
	if (!decided)
		return 0;
	/* From here on, any failure to get an answer means "no": CRIU then
	 * resumes the dumped tasks, or kills the half-restored ones. */
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(sock_path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "crstream hook: socket path too long\n");
		return 1;
	}
	strcpy(addr.sun_path, sock_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		fprintf(stderr, "crstream hook: %s: cannot reach crstream at %s: %s\n", action,
			sock_path, strerror(errno));
		return 1;
	}
	char msg[80];
	int n = snprintf(msg, sizeof(msg), "%s\n", action);
	char reply[700];
	ssize_t got = -1;
	if (write_full(fd, msg, (size_t)n) == 0)
		got = read_full(fd, reply, sizeof(reply) - 1);
	close(fd);
	if (got <= 0) {
		fprintf(stderr, "crstream hook: %s: no answer from crstream\n", action);
		return 1;
	}
	reply[got] = '\0';
	if (!strncmp(reply, "ok", 2))
		return 0;
	fprintf(stderr, "crstream hook: %s refused: %s", action, reply + (got > 5 ? 5 : 0));
	return 1;
}
