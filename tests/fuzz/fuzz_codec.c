/* A codec's decoder (built once per codec: FUZZ_CODEC is its name), as
 * restore runs it over a stored stream: concatenated frames, truncation,
 * trailing garbage, corrupt blocks and checksums.
 *
 * Input: one byte choosing how the compressed bytes arrive (the size of
 * each read from below) and how large the caller's read buffer is, then
 * the compressed stream.
 *
 * Properties: the decoder's verdict and output do not depend on how its
 * input is chunked or how much the caller asks for at once (the stream is
 * decoded the options' way, one compressed byte per read from below, and
 * 7 bytes per read from above, and the results compared); a read never
 * returns more than asked; after an error the decoder keeps failing; a
 * failure has a message. For gzip and zlib, crstream must decode exactly
 * the streams zlib decodes (members or streams one after another, as
 * gzip -dc reads them), to the same bytes. Output past 4 MiB is not looked at: the decoders have no
 * size limit of their own (restore bounds a stream by the manifest).
 *
 * Mutations: libFuzzer's, plus a new options byte one time in eight (a
 * single byte in front of kilobytes is otherwise rarely picked) and a run
 * of bytes grown long one time in sixteen (fuzz_grow_run). */
#include "fuzz.h"
#include "fuzz_mutate.h"
#include "codec/codec.h"

#include <zlib.h>

#ifndef FUZZ_CODEC
#error "build with -DFUZZ_CODEC='\"lz4\"' (or another codec's name)"
#endif

#define OUTPUT_CAP ((size_t)4 << 20)
/* Reading 7 bytes at a time is slow: only the start is compared. */
#define SMALL_READS_CAP ((size_t)64 << 10)

static const size_t read_sizes[] = {1, 7, 4096, 65536, 1 << 20};
static const size_t chunk_sizes[] = {0, 1, 3, 17, 512, 4096};

/* Output buffers are allocated once: fresh megabytes for every input would
 * cost more in page faults than the decoding. */
struct result {
	int status;		/* 0 clean end, -1 error, 1 stopped at OUTPUT_CAP */
	unsigned char *out;
	size_t len;
	char error[ERR_MAX];	/* the message of the error */
};

static unsigned char *output_buffer(int which)
{
	static unsigned char *bufs[4];
	if (!bufs[which]) {
		bufs[which] = malloc(OUTPUT_CAP);
		FUZZ_CHECK(bufs[which], "out of memory");
	}
	return bufs[which];
}

static void decode(const struct codec *c, const uint8_t *data, size_t size, size_t chunk,
		   size_t read_size, size_t cap, struct result *res, int which)
{
	static unsigned char buf[1 << 20];
	struct reader *src = mem_reader(data, size, chunk);
	FUZZ_CHECK(src, "mem_reader: %s", err_msg());
	struct reader *r = c->decoder(src);
	FUZZ_CHECK(r, "%s decoder: %s", c->name, err_msg());
	res->out = output_buffer(which);
	res->error[0] = '\0';
	FUZZ_CHECK(cap <= OUTPUT_CAP, "cap %zu", cap);
	res->len = 0;
	for (;;) {
		size_t want = read_size;
		if (want > cap - res->len)
			want = cap - res->len;
		if (want == 0) {
			res->status = 1;
			break;
		}
		err_clear();
		ssize_t n = reader_read(r, buf, want);
		if (n < 0) {
			fuzz_failed_with_message("decoder read");
			err_copy(res->error, sizeof(res->error));
			FUZZ_CHECK(reader_read(r, buf, want) < 0, "%s decoder: a read after an error "
				   "did not fail", c->name);
			res->status = -1;
			break;
		}
		FUZZ_CHECK((size_t)n <= want, "read of %zu returned %zd", want, n);
		if (n == 0) {
			FUZZ_CHECK(reader_read(r, buf, want) == 0, "%s decoder: a read after the end "
				   "did not return 0", c->name);
			res->status = 0;
			break;
		}
		memcpy(res->out + res->len, buf, (size_t)n);
		res->len += (size_t)n;
	}
	FUZZ_CHECK(r->bytes_out == res->len, "bytes_out %llu, returned %zu",
		   (unsigned long long)r->bytes_out, res->len);
	reader_close(r);
}

/* x and ref are the same stream decoded two ways: the same verdict where
 * both went to the end, the same bytes as far as both got. */
static void same_result(const struct codec *c, const struct result *x, const char *how,
			const struct result *ref)
{
	if (x->status != 1 && ref->status != 1) {
		FUZZ_CHECK(x->status == ref->status, "%s: %s ends with %d, byte by byte with %d",
			   c->name, how, x->status, ref->status);
		if (x->status == 0)
			FUZZ_CHECK(x->len == ref->len, "%s: %s gave %zu bytes, byte by byte %zu",
				   c->name, how, x->len, ref->len);
	}
	size_t common = x->len < ref->len ? x->len : ref->len;
	FUZZ_CHECK(memcmp(x->out, ref->out, common) == 0, "%s: %s and byte by byte differ "
		   "within the first %zu bytes", c->name, how, common);
}

/* zlib's view of a gzip (multi-member) or zlib (concatenated) stream;
 * 0 and the output, or -1 if zlib rejects it. */
static int zlib_reference(const uint8_t *data, size_t size, bool gzip, struct result *ref)
{
	ref->out = output_buffer(3);
	ref->len = 0;
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	FUZZ_CHECK(inflateInit2(&zs, gzip ? 16 + 15 : 15) == Z_OK, "inflateInit2");
	zs.next_in = (Bytef *)data;
	zs.avail_in = (uInt)size;
	int rc = -1;
	bool any = false;
	for (;;) {
		zs.next_out = ref->out + ref->len;
		zs.avail_out = (uInt)(OUTPUT_CAP - ref->len);
		int z = inflate(&zs, Z_NO_FLUSH);
		ref->len = OUTPUT_CAP - zs.avail_out;
		if (z == Z_STREAM_END) {
			any = true;
			if (zs.avail_in == 0) {
				rc = 0;
				break;
			}
			FUZZ_CHECK(inflateReset(&zs) == Z_OK, "inflateReset");
			continue;
		}
		if (z != Z_OK || zs.avail_out == 0 || zs.avail_in == 0)
			break;	/* corrupt, too large to compare, or truncated */
	}
	inflateEnd(&zs);
	return any ? rc : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct codec *c;
	if (!c) {
		c = codec_by_name(FUZZ_CODEC);
		FUZZ_CHECK(c, "no codec %s", FUZZ_CODEC);
	}
	if (size < 1)
		return -1;
	uint8_t how = data[0];
	data++;
	size--;
	size_t chunk = chunk_sizes[(how & 0x0f) % (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))];
	size_t read_size = read_sizes[(how >> 4) % (sizeof(read_sizes) / sizeof(read_sizes[0]))];

	/* The options' way, byte by byte from below, and 7 bytes at a time
	 * above: the caller's small reads keep the decoder stopping mid-block
	 * with input held, wherever the options byte points. */
	struct result a, b, t;
	decode(c, data, size, chunk, read_size, OUTPUT_CAP, &a, 0);
	decode(c, data, size, 1, 1 << 20, OUTPUT_CAP, &b, 1);
	decode(c, data, size, 0, 7, SMALL_READS_CAP, &t, 2);
	char how_a[64];
	snprintf(how_a, sizeof(how_a), "chunk %zu/read %zu", chunk, read_size);
	same_result(c, &a, how_a, &b);
	same_result(c, &t, "reads of 7", &b);

	/* gzip -dc and zlib's inflate read these streams: crstream must read
	 * what they read, as they read it, and refuse what they refuse. */
	bool gzip = !strcmp(c->name, "gzip");
	if (a.status != 1 && (gzip || !strcmp(c->name, "zlib"))) {
		struct result ref;
		bool zlib_ok = zlib_reference(data, size, gzip, &ref) == 0;
		FUZZ_CHECK(zlib_ok == (a.status == 0), "%s: zlib %s the stream, crstream %s it%s%s",
			   c->name, zlib_ok ? "decodes" : "refuses", a.status ? "refuses" : "decodes",
			   a.status ? ": " : "", a.error);
		FUZZ_CHECK(!zlib_ok || (ref.len == a.len && memcmp(ref.out, a.out, a.len) == 0),
			   "%s: crstream decoded %zu bytes, zlib %zu bytes, not the same", c->name,
			   a.len, ref.len);
	}
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
	fuzz_rng_seed(seed);
	switch (size >= 2 ? fuzz_rand(16) : 15) {
	case 0:
	case 1:
		data[0] = (uint8_t)fuzz_rand(256);
		return size;
	case 2: /* e.g. a gzip header's file name past 255 bytes */
		return 1 + fuzz_grow_run(data + 1, size - 1, max_size - 1);
	default:
		return LLVMFuzzerMutate(data, size, max_size);
	}
}
