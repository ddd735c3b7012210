/* The CRIU <-> streamer protocol (spec section 1): a UNIX stream socket in
 * the images dir, file-name requests, pipes passed with SCM_RIGHTS. */
#ifndef CRSTREAM_CRIU_SOCKET_H
#define CRSTREAM_CRIU_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

#define CRIU_CAPTURE_SOCKET "streamer-capture.sock"
#define CRIU_SERVE_SOCKET "streamer-serve.sock"

/* CRIU image file names are short ("pages-12.img"); a longer request is
 * corruption or a different peer. */
#define CRIU_NAME_MAX 1024

struct criu_listener {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* Unlink a stale socket at images_dir/sock_name, bind (mode 0600 whatever
 * the umask) and listen. */
int criu_listen(struct criu_listener *l, const char *images_dir, const char *sock_name);

/* Accept CRIU's single connection: its peer must be root or our real uid
 * (SO_PEERCRED). Returns the connection fd or -1. */
int criu_accept(struct criu_listener *l);

/* Close the listening socket and remove its path. */
void criu_listener_close(struct criu_listener *l);

/* Read one file request. Returns 1 with the name in `name`, 0 when CRIU has
 * closed the connection, -1 on error. */
int criu_read_request(int conn, char *name, size_t cap);

/* Restore only: answer the pending request. */
int criu_send_reply(int conn, bool exists);

/* Receive the pipe CRIU sends after a request. `criu_writes` tells which
 * end we expect: the read end on dump (CRIU writes), the write end on
 * restore. Returns the fd (close-on-exec) or -1. */
int criu_recv_pipe(int conn, bool criu_writes);

#endif
