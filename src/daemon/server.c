#include "daemon/server.h"
#include "cli/config.h"
#include "util/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Calls handled at once; beyond, RESOURCE_EXHAUSTED. */
#define MAX_CALLS 256

struct server {
	struct daemon *d;
	grpc_server *main;		/* the services */
	grpc_server *deny;		/* PERMISSION_DENIED to everything */
	grpc_completion_queue *cq;	/* new calls, for both */
	int listen_fd;
	int stop_fd;
	pthread_t acceptor, dispatcher;
	bool started, acceptor_started, dispatcher_started;
	unsigned allowed[64];
	int nallowed;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int calls;			/* handlers running */
};

struct call_ctx {
	struct server *s;
	grpc_server *from;
	struct rpc_call c;
};

static int shutdown_tag_main, shutdown_tag_deny;

/* ---- dispatching calls ---- */

static const struct method *find_method(const char *path)
{
	const struct method *tables[] = {cedana_methods, v1_methods};
	for (size_t t = 0; t < 2; t++)
		for (const struct method *m = tables[t]; m->path; m++)
			if (!strcmp(m->path, path))
				return m;
	return NULL;
}

static void dispatch(struct server *s, struct rpc_call *c)
{
	struct rpc_status st = {0};
	const struct method *m = find_method(c->method);
	if (!m) {
		rpc_error(&st, GRPC_STATUS_UNIMPLEMENTED, "%s is not implemented by crstream",
			  c->method);
		rpc_call_finish(c, NULL, &st);
		return;
	}
	grpc_byte_buffer *bb;
	if (rpc_call_recv(c, &bb) < 0)
		return;
	ProtobufCMessage *req = bb ? rpc_unpack(m->request, bb) : NULL;
	if (bb)
		grpc_byte_buffer_destroy(bb);
	if (!req) {
		rpc_error(&st, GRPC_STATUS_INVALID_ARGUMENT, "the request is not a valid %s message",
			  m->request->name);
		rpc_call_finish(c, NULL, &st);
		return;
	}
	m->handle(s->d, c, req);
	protobuf_c_message_free_unpacked(req, NULL);
}

static void call_free(struct call_ctx *x)
{
	if (x->c.call)
		grpc_call_unref(x->c.call);
	grpc_call_details_destroy(&x->c.details);
	grpc_metadata_array_destroy(&x->c.metadata);
	grpc_completion_queue_shutdown(x->c.cq);
	grpc_completion_queue_pluck(x->c.cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_completion_queue_destroy(x->c.cq);
	arena_free(x->c.arena);
	free(x);
}

static void *handler_main(void *arg)
{
	struct call_ctx *x = arg;
	struct server *s = x->s;
	size_t n = GRPC_SLICE_LENGTH(x->c.details.method);
	if (n >= sizeof(x->c.method))
		n = sizeof(x->c.method) - 1;
	memcpy(x->c.method, GRPC_SLICE_START_PTR(x->c.details.method), n);
	x->c.method[n] = '\0';
	x->c.arena = arena_new();
	if (x->from == s->deny) {
		struct rpc_status st;
		rpc_error(&st, GRPC_STATUS_PERMISSION_DENIED,
			  "this user may not use the crstream daemon (root only, unless "
			  "daemon.allowed_uids lists the uid)");
		rpc_call_finish(&x->c, NULL, &st);
	} else {
		dispatch(s, &x->c);
	}
	call_free(x);
	pthread_mutex_lock(&s->mu);
	s->calls--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int request_call(struct server *s, grpc_server *from)
{
	struct call_ctx *x = calloc(1, sizeof(*x));
	if (!x)
		return -1;
	x->s = s;
	x->from = from;
	x->c.cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_call_details_init(&x->c.details);
	grpc_metadata_array_init(&x->c.metadata);
	if (grpc_server_request_call(from, &x->c.call, &x->c.details, &x->c.metadata, x->c.cq, s->cq,
				     x) != GRPC_CALL_OK) {
		call_free(x);
		return -1;
	}
	return 0;
}

static void start_handler(struct server *s, struct call_ctx *x)
{
	pthread_attr_t attr;
	pthread_t t;
	pthread_mutex_lock(&s->mu);
	bool room = s->calls < MAX_CALLS;
	if (room)
		s->calls++;
	pthread_mutex_unlock(&s->mu);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (room && pthread_create(&t, &attr, handler_main, x) == 0) {
		pthread_attr_destroy(&attr);
		return;
	}
	pthread_attr_destroy(&attr);
	if (room) {
		pthread_mutex_lock(&s->mu);
		s->calls--;
		pthread_mutex_unlock(&s->mu);
	}
	struct rpc_status st;
	rpc_error(&st, GRPC_STATUS_RESOURCE_EXHAUSTED, "the daemon is handling %d calls already",
		  MAX_CALLS);
	x->c.arena = arena_new();
	rpc_call_finish(&x->c, NULL, &st);
	call_free(x);
}

static void *dispatcher_main(void *arg)
{
	struct server *s = arg;
	int shut = 0;
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		if (ev.tag == &shutdown_tag_main || ev.tag == &shutdown_tag_deny) {
			if (++shut == 2)
				grpc_completion_queue_shutdown(s->cq);
			continue;
		}
		struct call_ctx *x = ev.tag;
		if (!ev.success) {	/* the server is shutting down */
			call_free(x);
			continue;
		}
		grpc_server *from = x->from;
		start_handler(s, x);
		if (request_call(s, from) < 0)
			warnx_("cannot wait for more calls: out of memory");
	}
	return NULL;
}

/* ---- the unix socket ---- */

static bool allowed(struct server *s, uid_t uid)
{
	if (uid == 0 || uid == geteuid())
		return true;
	for (int i = 0; i < s->nallowed; i++)
		if (s->allowed[i] == uid)
			return true;
	return false;
}

static void *acceptor_main(void *arg)
{
	struct server *s = arg;
	struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN}, {.fd = s->stop_fd, .events = POLLIN}};
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			warnx_("socket: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				warnx_("socket: accept: %s", strerror(errno));
			continue;
		}
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
			warnx_("socket: SO_PEERCRED: %s", strerror(errno));
			close(fd);
			continue;
		}
		grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
		/* gRPC owns the fd from here on. */
		grpc_server_add_channel_from_fd(allowed(s, cred.uid) ? s->main : s->deny, fd, creds);
		grpc_server_credentials_release(creds);
	}
	return NULL;
}

static int make_socket_dir(const char *path, bool others)
{
	char dir[108];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	struct stat sb;
	if (stat(dir, &sb) == 0)
		return 0;	/* an existing directory keeps its mode: it may be /tmp */
	if (mkdir_p(dir, others ? 0711 : 0700) < 0)
		return -1;
	return chmod(dir, others ? 0711 : 0700) < 0 ? err_sys("chmod %s", dir) : 0;
}

static int listen_unix(struct server *s, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set("socket path too long (at most %zu bytes): %s", sizeof(sa.sun_path) - 1,
			       path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (make_socket_dir(path, s->nallowed > 0) < 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_sys("socket");
	/* A socket file left by a daemon that died: replace it, unless a
	 * daemon answers on it. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(fd);
		return err_set("%s: another daemon is listening on it", path);
	}
	if (errno == ECONNREFUSED)
		unlink(path);
	mode_t old = umask(0177);
	int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc < 0 || chmod(path, s->nallowed > 0 ? 0666 : 0600) < 0 || listen(fd, 64) < 0) {
		err_sys("%s", path);
		close(fd);
		return -1;
	}
	s->listen_fd = fd;
	return 0;
}

/* ---- TCP with TLS ---- */

static char *read_pem(struct daemon *d, const char *key)
{
	const char *path = config_get(d->cfg, key);
	FILE *f = *path ? fopen(path, "re") : NULL;
	if (!f) {
		if (*path)
			err_sys("%s %s", key, path);
		else
			err_set("daemon.listen needs %s: TCP is served only with TLS and client "
				"certificates", key);
		return NULL;
	}
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	char chunk[4096];
	size_t n;
	while (m && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	if (m)
		fclose(m);
	if (!buf)
		err_set("out of memory");
	return buf;
}

static int listen_tcp(struct server *s, const char *addr)
{
	char *cert = read_pem(s->d, "daemon.tls_cert");
	char *key = cert ? read_pem(s->d, "daemon.tls_key") : NULL;
	char *ca = key ? read_pem(s->d, "daemon.tls_client_ca") : NULL;
	int rc = -1;
	if (ca) {
		grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
		grpc_server_credentials *creds = grpc_ssl_server_credentials_create_ex(
			ca, &pair, 1, GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
		if (!creds)
			err_set("daemon.listen %s: the TLS files were refused", addr);
		else if (grpc_server_add_http2_port(s->main, addr, creds) == 0)
			err_set("daemon.listen %s: cannot listen there", addr);
		else
			rc = 0;
		if (creds)
			grpc_server_credentials_release(creds);
	}
	free(cert);
	free(key);
	free(ca);
	return rc;
}

/* ---- start and stop ---- */

int server_start(struct daemon *d, const char *socket_path, const char *listen)
{
	struct server *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set("out of memory");
	s->d = d;
	s->listen_fd = s->stop_fd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	d->server = s;
	const char *uids = config_get(d->cfg, "daemon.allowed_uids");
	s->nallowed = config_parse_uids(uids, s->allowed, 64);
	if (s->nallowed < 0 || s->nallowed > 64)
		return err_prefix("daemon.allowed_uids");
	s->main = grpc_server_create(NULL, NULL);
	s->deny = grpc_server_create(NULL, NULL);
	s->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(s->main, s->cq, NULL);
	grpc_server_register_completion_queue(s->deny, s->cq, NULL);
	if (listen && *listen && listen_tcp(s, listen) < 0)
		return -1;
	if (listen_unix(s, socket_path) < 0)
		return -1;
	grpc_server_start(s->main);
	grpc_server_start(s->deny);
	s->started = true;
	if (request_call(s, s->main) < 0 || request_call(s, s->deny) < 0)
		return err_set("cannot wait for calls");
	s->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (s->stop_fd < 0)
		return err_sys("eventfd");
	if (pthread_create(&s->dispatcher, NULL, dispatcher_main, s) != 0)
		return err_set("cannot start the dispatcher thread");
	s->dispatcher_started = true;
	if (pthread_create(&s->acceptor, NULL, acceptor_main, s) != 0)
		return err_set("cannot start the acceptor thread");
	s->acceptor_started = true;
	return 0;
}

void server_stop(struct daemon *d)
{
	struct server *s = d->server;
	if (!s)
		return;
	if (s->acceptor_started) {
		uint64_t one = 1;
		(void)!write(s->stop_fd, &one, sizeof(one));
		pthread_join(s->acceptor, NULL);
	}
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(d->socket_path);
	}
	if (s->started) {
		/* No new calls; those in flight get a while to answer (a dump's
		 * caller its result), then the stragglers are cancelled. */
		grpc_server_shutdown_and_notify(s->main, s->cq, &shutdown_tag_main);
		grpc_server_shutdown_and_notify(s->deny, s->cq, &shutdown_tag_deny);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 10;
		pthread_mutex_lock(&s->mu);
		while (s->calls > 0 && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
			;
		pthread_mutex_unlock(&s->mu);
		grpc_server_cancel_all_calls(s->main);
		grpc_server_cancel_all_calls(s->deny);
	}
	if (s->dispatcher_started)
		pthread_join(s->dispatcher, NULL);
	/* Handlers still running hold calls of these servers. */
	pthread_mutex_lock(&s->mu);
	while (s->calls > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	if (s->main) {
		grpc_server_destroy(s->main);
		grpc_server_destroy(s->deny);
	}
	if (s->cq) {
		if (!s->dispatcher_started) {
			grpc_completion_queue_shutdown(s->cq);
			while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
				       .type != GRPC_QUEUE_SHUTDOWN)
				;
		}
		grpc_completion_queue_destroy(s->cq);
	}
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	d->server = NULL;
}
