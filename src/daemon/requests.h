/* A dump or restore request, from its wire message (Cedana's daemon.Daemon
 * or crstream.v1) to the operation layer's struct dump_request / struct
 * restore_request, and the checks every request passes before anything
 * runs. Pure functions of the message: no daemon state, no I/O, so that
 * tests/fuzz/fuzz_daemon_request.c drives exactly what the handlers do.
 *
 * Each returns 0, or -1 with st set: INVALID_ARGUMENT (or UNIMPLEMENTED)
 * naming the request field. The requests point into the message, which
 * must outlive them. */
#ifndef CRSTREAM_DAEMON_REQUESTS_H
#define CRSTREAM_DAEMON_REQUESTS_H

#include "daemon/daemon.h"
#include "crstream_v1.pb-c.h"
#include "daemon.pb-c.h"

int cedana_dump_request(const Daemon__DumpReq *r, struct dump_request *rq, struct rpc_status *st);
int cedana_restore_request(const Daemon__RestoreReq *r, struct restore_request *rq,
			   struct rpc_status *st);
int v1_dump_request(const Crstream__V1__DumpRequest *r, struct dump_request *rq,
		    struct rpc_status *st);
void v1_restore_request(const Crstream__V1__RestoreRequest *r, struct restore_request *rq);

/* The fields' own rules (names, paths, ranges, codec and level, CRIU
 * flags); default_compression stands for an unset Compression. What needs
 * the machine (the process, the job, the catalog) is ops.c's to check. */
int check_dump_request(const struct dump_request *rq, const char *default_compression,
		       struct rpc_status *st);
int check_restore_request(const struct restore_request *rq, struct rpc_status *st);
/* A request's path field: unset, absolute without "..", or (remote_ok)
 * an s3:// or gs:// URL. field names it in the message. */
int check_request_path(const char *field, const char *v, bool remote_ok, struct rpc_status *st);

/* A string field a request set (protobuf-c gives "" for an unset one). */
static inline bool field_set(const char *s)
{
	return s && *s;
}

#endif
