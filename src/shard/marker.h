/* Shard records: [u32 little-endian length][protobuf marker][payload?].
 * See ../shared/spec/criu-streaming.md section 2 and proto/marker.proto. */
#ifndef CRSTREAM_SHARD_MARKER_H
#define CRSTREAM_SHARD_MARKER_H

#include <stddef.h>
#include <stdint.h>

/* Markers at or above this size are corruption, never an allocation size
 * (the reference implementation draws the line at the same place). */
#define MARKER_MAX_LEN 10240u
/* Longest record header: the length prefix plus the largest marker. */
#define MARKER_RECORD_MAX (4u + MARKER_MAX_LEN)
/* Longest file name a marker may carry, leaving room for the other fields. */
#define MARKER_NAME_MAX 4096u
/* Most files an image may have. CRIU writes about ten per process and one
 * per thread, so this is a tree of well over a thousand processes; the
 * bound keeps what a hostile image can make a reader allocate (a table
 * entry per name, a manifest entry per file) to a few MiB. */
#define IMAGE_FILES_MAX 16384u

enum marker_kind {
	MARKER_FILENAME,
	MARKER_FILE_DATA,
	MARKER_FILE_EOF,
	MARKER_IMAGE_EOF,
};

struct marker {
	uint64_t seq;
	enum marker_kind kind;
	uint32_t data_len;	/* MARKER_FILE_DATA: payload bytes that follow */
	char name[MARKER_NAME_MAX + 1];	/* MARKER_FILENAME */
};

/* Encode the whole record header (length prefix + marker) into out, which
 * must hold MARKER_RECORD_MAX bytes. Returns its length, or -1 (name too
 * long). */
int marker_encode(const struct marker *m, uint8_t *out);

/* Decode a marker body of len bytes (the length prefix already stripped).
 * Returns 0, or -1 with a message describing the malformation. */
int marker_decode(const uint8_t *buf, size_t len, struct marker *m);

/* Little-endian u32 helpers for the length prefix. */
static inline uint32_t le32_load(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline void le32_store(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

const char *marker_kind_name(enum marker_kind kind);

#endif
