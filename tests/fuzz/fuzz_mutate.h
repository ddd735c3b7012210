/* Structure-aware mutation for the harnesses whose inputs are protobuf
 * messages behind length prefixes (shard markers, CRIU requests, files.img
 * entries).
 *
 * Why: libFuzzer's byte mutations rarely keep a protobuf length and the
 * length prefix around it consistent, and the protobuf-c and library code
 * that would reward getting them right is not instrumented, so a file name
 * of 64 bytes or a record moved to another shard is hardly ever produced.
 * fuzz_grow_run() makes a field longer than any seed's in one step.
 * These helpers parse a message at the wire level (tag, varint, length-
 * delimited, fixed32/64), change one thing (a varint to an interesting
 * value, a string grown or shrunk, a field duplicated, dropped, swapped or
 * renumbered, a nested message mutated in turn) and write it back with
 * every length right. Harnesses call them from LLVMFuzzerCustomMutator
 * and fall back to LLVMFuzzerMutate (libFuzzer's own mutations) on part
 * of the calls, so malformed encodings keep being tried too. */
#ifndef CRSTREAM_FUZZ_MUTATE_H
#define CRSTREAM_FUZZ_MUTATE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);

/* ---- randomness: seeded by libFuzzer for each mutation ---- */

static uint64_t fuzz_rng_state = 1;

static inline void fuzz_rng_seed(unsigned seed)
{
	fuzz_rng_state = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 1;
}

/* A number in [0, n) (n > 0). */
static inline size_t fuzz_rand(size_t n)
{
	fuzz_rng_state ^= fuzz_rng_state << 13;
	fuzz_rng_state ^= fuzz_rng_state >> 7;
	fuzz_rng_state ^= fuzz_rng_state << 17;
	return (size_t)(fuzz_rng_state % n);
}

/* Inserts 16..1024 more copies of the byte at a random position: a name,
 * a header line or a string grown past a fixed-size buffer in one step,
 * which libFuzzer's own insertions (up to 128 bytes, anywhere) rarely
 * achieve where nothing rewards the lengths in between. Returns the new
 * size (size itself if there is no room). */
static inline size_t fuzz_grow_run(uint8_t *data, size_t size, size_t max)
{
	if (size == 0 || size >= max)
		return size;
	size_t at = fuzz_rand(size), n = 16 + fuzz_rand(1009);
	if (n > max - size)
		n = max - size;
	memmove(data + at + n, data + at, size - at);
	memset(data + at, data[at + n], n);
	return size + n;
}

/* ---- protobuf wire format ---- */

#define PB_MAX_FIELDS 64

struct pb_field {
	uint32_t num;
	uint8_t type;		/* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	uint64_t value;		/* varint, fixed */
	const uint8_t *data;	/* length-delimited content */
	size_t len;
};

static inline int pb_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*pos >= len)
			return -1;
		uint8_t b = p[(*pos)++];
		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

/* Splits a message into its fields; -1 unless the whole buffer is a
 * well-formed message of at most max fields. */
static inline int pb_parse(const uint8_t *p, size_t len, struct pb_field *f, int max)
{
	size_t pos = 0;
	int n = 0;
	while (pos < len) {
		uint64_t key, v;
		if (n == max || pb_varint(p, len, &pos, &key) < 0 || (key >> 3) == 0 ||
		    (key >> 3) > 0x1fffffff)
			return -1;
		f[n].num = (uint32_t)(key >> 3);
		f[n].type = key & 7;
		f[n].data = NULL;
		f[n].len = 0;
		f[n].value = 0;
		switch (f[n].type) {
		case 0:
			if (pb_varint(p, len, &pos, &f[n].value) < 0)
				return -1;
			break;
		case 1:
		case 5: {
			size_t w = f[n].type == 1 ? 8 : 4;
			if (len - pos < w)
				return -1;
			for (size_t i = 0; i < w; i++)
				f[n].value |= (uint64_t)p[pos + i] << (8 * i);
			pos += w;
			break;
		}
		case 2:
			if (pb_varint(p, len, &pos, &v) < 0 || v > len - pos)
				return -1;
			f[n].data = p + pos;
			f[n].len = (size_t)v;
			pos += (size_t)v;
			break;
		default:
			return -1;
		}
		n++;
	}
	return n;
}

static inline size_t pb_put_varint(uint8_t *out, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		out[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	out[n++] = (uint8_t)v;
	return n;
}

/* Writes the fields into out; 0 if they do not fit in max bytes. */
static inline size_t pb_serialize(const struct pb_field *f, int n, uint8_t *out, size_t max)
{
	size_t pos = 0;
	for (int i = 0; i < n; i++) {
		uint8_t head[20];
		size_t h = pb_put_varint(head, (uint64_t)f[i].num << 3 | f[i].type);
		size_t body = f[i].type == 0 ? 10 : f[i].type == 1 ? 8 : f[i].type == 5 ? 4 : 10 + f[i].len;
		if (pos + h + body > max)
			return 0;
		memcpy(out + pos, head, h);
		pos += h;
		if (f[i].type == 0) {
			pos += pb_put_varint(out + pos, f[i].value);
		} else if (f[i].type == 2) {
			pos += pb_put_varint(out + pos, f[i].len);
			if (f[i].len)
				memcpy(out + pos, f[i].data, f[i].len);
			pos += f[i].len;
		} else {
			for (size_t b = 0; b < (f[i].type == 1 ? 8u : 4u); b++)
				out[pos++] = (uint8_t)(f[i].value >> (8 * b));
		}
	}
	return pos;
}

/* Values at the edges of the parsers' checks: sizes, limits, bools. */
static inline uint64_t pb_interesting(void)
{
	static const uint64_t v[] = {
		0, 1, 2, 3, 7, 8, 10, 15, 16, 63, 64, 127, 128, 255, 256, 1024, 1025, 1040,
		4095, 4096, 4097, 10239, 10240, 65535, 65536, 1u << 20, 0x7fffffff, 0x80000000,
		0xffffffff, 0x100000000ull, 0x7fffffffffffffffull, 0xffffffffffffffffull,
	};
	return v[fuzz_rand(sizeof(v) / sizeof(v[0]))];
}

/* One structural mutation of the message in buf (len bytes, room for
 * max); returns the new length, or 0 if buf is not a message or the
 * result does not fit (the caller then mutates otherwise). `depth` bounds
 * the descent into nested messages. */
static inline size_t pb_mutate(uint8_t *buf, size_t len, size_t max, int depth)
{
	struct pb_field f[PB_MAX_FIELDS + 1];
	int n = pb_parse(buf, len, f, PB_MAX_FIELDS);
	if (n < 0)
		return 0;
	/* Field contents point into buf; the result is built in scratch. */
	static uint8_t scratch[4][1 << 16];
	uint8_t *content = scratch[depth & 3];
	uint8_t out[1 << 16];
	if (max > sizeof(out))
		max = sizeof(out);
	int i = n ? (int)fuzz_rand((size_t)n) : 0;
	switch (n ? fuzz_rand(8) : 7) {
	case 0: /* a number: an edge value, or a neighbour of the current one */
		if (f[i].type == 2)
			return 0;
		f[i].value = fuzz_rand(2) ? pb_interesting() : f[i].value + fuzz_rand(5) - 2;
		break;
	case 1: /* a string or nested message: its content mutated */
	case 2: {
		if (f[i].type != 2 || f[i].len > sizeof(scratch[0]) / 2)
			return 0;
		size_t cap = sizeof(scratch[0]);
		if (f[i].len)
			memcpy(content, f[i].data, f[i].len);
		size_t m = 0;
		if (depth < 3 && f[i].len && fuzz_rand(2))
			m = pb_mutate(content, f[i].len, cap, depth + 1);
		if (!m)
			m = LLVMFuzzerMutate(content, f[i].len, f[i].len * 2 + 16 < cap ? f[i].len * 2 + 16 : cap);
		f[i].data = content;
		f[i].len = m;
		break;
	}
	case 3: { /* grown by repeating itself, e.g. a name past a length limit */
		if (f[i].type != 2 || !f[i].len || f[i].len > sizeof(scratch[0]) / 2)
			return 0;
		size_t total = f[i].len * (2 + fuzz_rand(63));
		if (total > sizeof(scratch[0]))
			total = sizeof(scratch[0]);
		for (size_t k = 0; k < total; k++)
			content[k] = f[i].data[k % f[i].len];
		f[i].data = content;
		f[i].len = total;
		break;
	}
	case 4: /* a field dropped */
		memmove(&f[i], &f[i + 1], (size_t)(n - i - 1) * sizeof(f[0]));
		n--;
		break;
	case 5: /* a field repeated */
		if (n == PB_MAX_FIELDS)
			return 0;
		memmove(&f[i + 1], &f[i], (size_t)(n - i) * sizeof(f[0]));
		n++;
		break;
	case 6: /* two fields swapped, or a field renumbered */
		if (fuzz_rand(2)) {
			struct pb_field t = f[i];
			int j = (int)fuzz_rand((size_t)n);
			f[i] = f[j];
			f[j] = t;
		} else {
			f[i].num = 1 + (uint32_t)fuzz_rand(8);
		}
		break;
	default: /* a new field */
		if (n == PB_MAX_FIELDS)
			return 0;
		f[n].num = 1 + (uint32_t)fuzz_rand(8);
		f[n].type = fuzz_rand(3) ? 0 : 2;
		f[n].value = pb_interesting();
		f[n].data = NULL;
		f[n].len = 0;
		n++;
		break;
	}
	/* 0 also when nothing is left: an empty message is the caller's to make. */
	size_t out_len = pb_serialize(f, n, out, max);
	if (out_len)
		memcpy(buf, out, out_len);
	return out_len;
}

#endif
