#include "daemon/rpc.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	_Alignas(max_align_t) unsigned char data[];
};

struct arena {
	struct arena_block *head;
};

static void *xcalloc(size_t n)
{
	void *p = calloc(1, n);
	if (!p) {
		fputs("crstream daemon: out of memory\n", stderr);
		abort();
	}
	return p;
}

struct arena *arena_new(void)
{
	return xcalloc(sizeof(struct arena));
}

void arena_free(struct arena *a)
{
	if (!a)
		return;
	for (struct arena_block *b = a->head, *next; b; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

void *arena_alloc(struct arena *a, size_t n)
{
	const size_t align = _Alignof(max_align_t);
	n = (n + align - 1) / align * align;
	struct arena_block *b = a->head;
	if (!b || b->size - b->used < n) {
		size_t size = n > 8192 ? n : 8192;
		b = xcalloc(sizeof(*b) + size);
		b->size = size;
		b->next = a->head;
		a->head = b;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	size_t n = strlen(s ? s : "") + 1;
	char *p = arena_alloc(a, n);
	memcpy(p, s ? s : "", n);
	return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *p = arena_alloc(a, (size_t)(n < 0 ? 0 : n) + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
	va_end(ap);
	return p;
}

/* Capacity grows by doubling: a new array whenever n reaches 4, 8, 16... */
void arena_push(struct arena *a, void *array_field, size_t *n, void *p)
{
	void ***array = array_field;
	if (*n == 0 || (*n >= 4 && (*n & (*n - 1)) == 0)) {
		size_t cap = *n < 4 ? 4 : *n * 2;
		void **grown = arena_alloc(a, cap * sizeof(void *));
		if (*n)
			memcpy(grown, *array, *n * sizeof(void *));
		*array = grown;
	}
	(*array)[(*n)++] = p;
}


/* ---- messages ---- */

grpc_byte_buffer *rpc_pack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	grpc_slice slice = grpc_slice_malloc(n);
	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(slice));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

ProtobufCMessage *rpc_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader reader;
	if (!grpc_byte_buffer_reader_init(&reader, bb))
		return NULL;
	grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(slice),
							GRPC_SLICE_START_PTR(slice));
	grpc_slice_unref(slice);
	return m;
}

/* ---- server side ---- */

/* Runs a batch on the call's own queue and waits for it. */
static bool run_batch(grpc_call *call, grpc_completion_queue *cq, const grpc_op *ops, size_t n)
{
	void *tag = (void *)ops;
	if (grpc_call_start_batch(call, ops, n, tag, NULL) != GRPC_CALL_OK)
		return false;
	grpc_event ev = grpc_completion_queue_pluck(cq, tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

int rpc_call_recv(struct rpc_call *c, grpc_byte_buffer **bb)
{
	*bb = NULL;
	grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
	op.data.recv_message.recv_message = bb;
	if (!run_batch(c->call, c->cq, &op, 1)) {
		c->gone = true;
		return -1;
	}
	return 0;
}

static void add_initial_metadata(struct rpc_call *c, grpc_op *ops, size_t *n)
{
	if (c->metadata_sent)
		return;
	ops[(*n)++] = (grpc_op){.op = GRPC_OP_SEND_INITIAL_METADATA};
	c->metadata_sent = true;
}

int rpc_call_send(struct rpc_call *c, const ProtobufCMessage *m)
{
	if (c->gone)
		return -1;
	grpc_op ops[2];
	size_t n = 0;
	add_initial_metadata(c, ops, &n);
	grpc_byte_buffer *bb = rpc_pack(m);
	ops[n] = (grpc_op){.op = GRPC_OP_SEND_MESSAGE};
	ops[n++].data.send_message.send_message = bb;
	bool ok = run_batch(c->call, c->cq, ops, n);
	grpc_byte_buffer_destroy(bb);
	if (!ok)
		c->gone = true;
	return ok ? 0 : -1;
}

void rpc_call_finish(struct rpc_call *c, const ProtobufCMessage *m, const struct rpc_status *st)
{
	grpc_op ops[4];
	size_t n = 0;
	int cancelled = 0;
	grpc_byte_buffer *bb = NULL;
	grpc_slice details = grpc_slice_from_copied_string(st->code == GRPC_STATUS_OK ? "" : st->msg);
	add_initial_metadata(c, ops, &n);
	if (m && st->code == GRPC_STATUS_OK && !c->gone) {
		bb = rpc_pack(m);
		ops[n] = (grpc_op){.op = GRPC_OP_SEND_MESSAGE};
		ops[n++].data.send_message.send_message = bb;
	}
	ops[n] = (grpc_op){.op = GRPC_OP_SEND_STATUS_FROM_SERVER};
	ops[n].data.send_status_from_server.status = st->code;
	ops[n++].data.send_status_from_server.status_details = &details;
	ops[n] = (grpc_op){.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
	ops[n++].data.recv_close_on_server.cancelled = &cancelled;
	run_batch(c->call, c->cq, ops, n);
	grpc_slice_unref(details);
	if (bb)
		grpc_byte_buffer_destroy(bb);
}

/* ---- client side ---- */

int rpc_client_open(const char *addr, struct rpc_client *c, struct rpc_status *st)
{
	memset(c, 0, sizeof(*c));
	if (addr[0] == '/')
		snprintf(c->target, sizeof(c->target), "unix://%s", addr);
	else if (!strncmp(addr, "unix:", 5))
		snprintf(c->target, sizeof(c->target), "%s", addr);
	else
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "daemon address \"%s\": use unix:///path/to/socket", addr);
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	c->channel = grpc_channel_create(c->target, creds, NULL);
	grpc_channel_credentials_release(creds);
	c->cq = grpc_completion_queue_create_for_pluck(NULL);
	return 0;
}

void rpc_client_close(struct rpc_client *c)
{
	if (c->channel)
		grpc_channel_destroy(c->channel);
	if (c->cq) {
		grpc_completion_queue_shutdown(c->cq);
		grpc_completion_queue_destroy(c->cq);
	}
	memset(c, 0, sizeof(*c));
}

struct rpc_stream {
	struct rpc_client *client;
	grpc_call *call;
	grpc_metadata_array initial, trailing;
	grpc_status_code status;
	grpc_slice details;
	bool ended;
};

static void stream_free(struct rpc_stream *s)
{
	grpc_metadata_array_destroy(&s->initial);
	grpc_metadata_array_destroy(&s->trailing);
	grpc_slice_unref(s->details);
	if (s->call)
		grpc_call_unref(s->call);
	free(s);
}

/* Starts the call: request sent, half-closed, status awaited in the end. */
static int start_call(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
		      struct rpc_stream **out, struct rpc_status *st)
{
	struct rpc_stream *s = xcalloc(sizeof(*s));
	s->client = c;
	s->details = grpc_empty_slice();
	grpc_metadata_array_init(&s->initial);
	grpc_metadata_array_init(&s->trailing);
	grpc_slice m = grpc_slice_from_copied_string(method);
	s->call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, m, NULL,
					   gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_slice_unref(m);
	grpc_byte_buffer *bb = rpc_pack(req);
	grpc_op ops[4] = {
		{.op = GRPC_OP_SEND_INITIAL_METADATA},
		{.op = GRPC_OP_SEND_MESSAGE},
		{.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT},
		{.op = GRPC_OP_RECV_INITIAL_METADATA},
	};
	ops[1].data.send_message.send_message = bb;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial;
	bool ok = run_batch(s->call, c->cq, ops, 4);
	grpc_byte_buffer_destroy(bb);
	*out = s;
	(void)ok;	/* a failure shows in the status, read at the end */
	(void)st;
	return 0;
}

static int finish_call(struct rpc_stream *s, struct rpc_status *st)
{
	grpc_op op = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
	op.data.recv_status_on_client.trailing_metadata = &s->trailing;
	op.data.recv_status_on_client.status = &s->status;
	op.data.recv_status_on_client.status_details = &s->details;
	run_batch(s->call, s->client->cq, &op, 1);
	int rc = 0;
	if (s->status != GRPC_STATUS_OK) {
		char *text = grpc_slice_to_c_string(s->details);
		rc = rpc_error(st, s->status, "%s", text);
		gpr_free(text);
	}
	stream_free(s);
	return rc;
}

int rpc_client_stream(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
		      struct rpc_stream **out, struct rpc_status *st)
{
	return start_call(c, method, req, out, st);
}

int rpc_stream_next(struct rpc_stream *s, const ProtobufCMessageDescriptor *d,
		    ProtobufCMessage **m, struct rpc_status *st)
{
	*m = NULL;
	if (s->ended)
		return 0;
	grpc_byte_buffer *bb = NULL;
	grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
	op.data.recv_message.recv_message = &bb;
	if (!run_batch(s->call, s->client->cq, &op, 1) || !bb) {
		s->ended = true;
		return 0;
	}
	*m = rpc_unpack(d, bb);
	grpc_byte_buffer_destroy(bb);
	if (!*m)
		return rpc_error(st, GRPC_STATUS_INTERNAL, "the daemon's answer is not a valid %s",
				 d->name);
	return 1;
}

int rpc_stream_close(struct rpc_stream *s, struct rpc_status *st)
{
	/* A stream not read to its end (the client stops watching) is
	 * cancelled; for the daemon that is a client going away, which does
	 * not stop the operation. */
	if (!s->ended)
		grpc_call_cancel(s->call, NULL);
	return finish_call(s, st);
}

int rpc_client_unary(struct rpc_client *c, const char *method, const ProtobufCMessage *req,
		     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
		     struct rpc_status *st)
{
	struct rpc_stream *s;
	*resp = NULL;
	if (start_call(c, method, req, &s, st) < 0)
		return -1;
	int got = rpc_stream_next(s, resp_desc, resp, st);
	struct rpc_status fin = {0};
	int rc = finish_call(s, &fin);
	if (rc < 0 || got < 0) {
		if (*resp)
			protobuf_c_message_free_unpacked(*resp, NULL);
		*resp = NULL;
		if (rc < 0)
			*st = fin;
		return -1;
	}
	if (got == 0)
		return rpc_error(st, GRPC_STATUS_INTERNAL, "the daemon sent no answer to %s", method);
	return 0;
}
