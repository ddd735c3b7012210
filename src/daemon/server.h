/* The daemon's listeners and its gRPC server.
 *
 * The unix socket is crstream's own: it accepts each connection, reads the
 * caller's credentials (SO_PEERCRED) and only then hands the connection to
 * gRPC (grpc_server_add_channel_from_fd). Callers that may not use the
 * daemon get a second, tiny gRPC server whose every answer is
 * PERMISSION_DENIED with the reason, rather than a bare disconnect.
 * Who may: root, the daemon's own user, and daemon.allowed_uids.
 *
 * The socket is 0600 in a 0700 directory, unless daemon.allowed_uids is
 * set: then others must be able to reach it at all (0666 in a 0711
 * directory) and SO_PEERCRED alone decides.
 *
 * TCP (daemon.listen) is served only with TLS and client certificates
 * verified against daemon.tls_client_ca. */
#ifndef CRSTREAM_DAEMON_SERVER_H
#define CRSTREAM_DAEMON_SERVER_H

#include "daemon/daemon.h"

/* A service method: the handler answers the call itself (rpc_call_finish)
 * from its decoded request. */
struct method {
	const char *path;		/* "/daemon.Daemon/Dump" */
	const ProtobufCMessageDescriptor *request;
	void (*handle)(struct daemon *d, struct rpc_call *c, const ProtobufCMessage *req);
};

extern const struct method cedana_methods[];
extern const struct method v1_methods[];

int server_start(struct daemon *d, const char *socket_path, const char *listen);
/* Stops accepting, cancels the calls still open, waits for their
 * handlers. */
void server_stop(struct daemon *d);

#endif
