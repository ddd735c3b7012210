/* Hand-built shard fixtures: records encoded byte by byte from the wire
 * format in the spec (section 2), independently of protobuf-c, so that the
 * tests check our reader and writer against the format itself. */
#ifndef CRSTREAM_TEST_FIXTURE_H
#define CRSTREAM_TEST_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx {
	unsigned char buf[1 << 16];
	size_t len;
};

static inline void fx_byte(struct fx *f, unsigned char b)
{
	f->buf[f->len++] = b;
}

static inline void fx_varint(struct fx *f, uint64_t v)
{
	while (v >= 0x80) {
		fx_byte(f, (unsigned char)(v | 0x80));
		v >>= 7;
	}
	fx_byte(f, (unsigned char)v);
}

/* One record: [u32 LE length][marker fields], then the payload if any.
 * seq is omitted when 0, as proto3 encoders do. */
static inline void fx_record(struct fx *f, uint64_t seq, int field, const void *val, size_t vlen,
			     uint64_t num)
{
	struct fx m = {.len = 0};
	if (seq) {
		fx_byte(&m, 0x08);
		fx_varint(&m, seq);
	}
	if (field == 2) {	/* filename: length-delimited */
		fx_byte(&m, 0x12);
		fx_varint(&m, vlen);
		memcpy(m.buf + m.len, val, vlen);
		m.len += vlen;
	} else {		/* file_data / file_eof / image_eof: varints */
		fx_byte(&m, (unsigned char)(field << 3));
		fx_varint(&m, num);
	}
	uint32_t len = (uint32_t)m.len;
	for (int i = 0; i < 4; i++)
		fx_byte(f, (unsigned char)(len >> (8 * i)));
	memcpy(f->buf + f->len, m.buf, m.len);
	f->len += m.len;
}

static inline void fx_filename(struct fx *f, uint64_t seq, const char *name)
{
	fx_record(f, seq, 2, name, strlen(name), 0);
}

static inline void fx_data(struct fx *f, uint64_t seq, const void *data, uint32_t len)
{
	fx_record(f, seq, 3, NULL, 0, len);
	memcpy(f->buf + f->len, data, len);
	f->len += len;
}

static inline void fx_file_eof(struct fx *f, uint64_t seq)
{
	fx_record(f, seq, 4, NULL, 0, 1);
}

static inline void fx_image_eof(struct fx *f, uint64_t seq)
{
	fx_record(f, seq, 5, NULL, 0, 1);
}

/* The fixture as a regular temp file, opened for reading at offset 0. */
static inline int fx_file(const struct fx *f)
{
	char path[] = "/tmp/crstream-fx-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		exit(2);
	}
	unlink(path);
	if (write(fd, f->buf, f->len) != (ssize_t)f->len || lseek(fd, 0, SEEK_SET) != 0) {
		perror("fixture write");
		exit(2);
	}
	return fd;
}

#endif
