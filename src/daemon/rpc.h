/* gRPC on gRPC's core library, with protobuf-c messages: what the daemon's
 * server and the CLI's client share. One call is driven by one thread,
 * batch by batch, on a completion queue of its own (a "pluck" queue), so
 * that a handler reads like a function: receive, work, send, finish.
 *
 * Errors: gRPC status codes with a one-line message (struct rpc_status). */
#ifndef CRSTREAM_DAEMON_RPC_H
#define CRSTREAM_DAEMON_RPC_H

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

/* ---- memory for one call's messages, freed at once ---- */

struct arena;
struct arena *arena_new(void);
void arena_free(struct arena *a);
/* Zeroed memory; the arena's allocations abort on exhaustion (a daemon
 * out of memory has nothing sensible left to do with a half-built
 * answer). */
void *arena_alloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends p to a repeated field of pointers (*array, *n). */
void arena_push(struct arena *a, void *array_field, size_t *n, void *p);

/* ---- status ---- */

struct rpc_status {
	grpc_status_code code;
	char msg[ERR_MAX];
};

/* Sets st; returns -1. */
int rpc_error(struct rpc_status *st, grpc_status_code code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "INVALID_ARGUMENT", ... */
const char *rpc_code_name(grpc_status_code code);

/* ---- messages ---- */

grpc_byte_buffer *rpc_pack(const ProtobufCMessage *m);
/* NULL if the bytes are not a valid message of that type. */
ProtobufCMessage *rpc_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb);

/* ---- the server's side of a call ---- */

struct rpc_call {
	grpc_call *call;
	grpc_completion_queue *cq;	/* this call's own (pluck) */
	grpc_call_details details;
	grpc_metadata_array metadata;
	char method[160];
	bool metadata_sent;
	bool gone;			/* a send failed: the client went away */
	struct arena *arena;		/* for the answers */
};

/* The request message (NULL bb: the client sent none). 0 or -1. */
int rpc_call_recv(struct rpc_call *c, grpc_byte_buffer **bb);
/* One message of a stream; -1 once the client has gone. */
int rpc_call_send(struct rpc_call *c, const ProtobufCMessage *m);
/* The last message (m may be NULL) and the status. */
void rpc_call_finish(struct rpc_call *c, const ProtobufCMessage *m, const struct rpc_status *st);

/* ---- the client's side ---- */

struct rpc_client {
	grpc_channel *channel;
	grpc_completion_queue *cq;
	char target[512];
};

/* addr: "unix:///path", "unix:/path" or a path (a unix socket). */
int rpc_client_open(const char *addr, struct rpc_client *c, struct rpc_status *st);
void rpc_client_close(struct rpc_client *c);

/* One request, one answer (*resp: free with protobuf_c_message_free_unpacked). */
int rpc_client_unary(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
		     struct rpc_status *st);

struct rpc_stream;
int rpc_client_stream(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
		      struct rpc_stream **out, struct rpc_status *st);
/* The next message: 1 (in *m), 0 at the end of the stream, -1 on error. */
int rpc_stream_next(struct rpc_stream *s, const ProtobufCMessageDescriptor *d,
		    ProtobufCMessage **m, struct rpc_status *st);
/* The call's final status (0 if OK) and the stream freed. */
int rpc_stream_close(struct rpc_stream *s, struct rpc_status *st);

#endif
