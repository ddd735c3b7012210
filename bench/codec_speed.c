/* Single-core throughput of crstream's codec filters, through the same
 * API the engine uses: an encoder writing into an in-memory sink with
 * 1 MiB writes, then a decoder over mem_reader with 1 MiB reads. MB/s are
 * of uncompressed bytes per second of this thread's CPU time (10^6 B/s).
 *
 *   codec_speed [MiB [reps [codec[:level] ...]]]
 * defaults: 256 MiB, best of 3, every codec at its default level. */
#include "bench_data.h"
#include "bench_sink.h"

#include "codec/codec.h"
#include "util/err.h"
#include "util/stream.h"

#define IO_SIZE ((size_t)1 << 20)

static void fail(const char *what)
{
	fprintf(stderr, "codec_speed: %s: %s\n", what, err_msg());
	exit(1);
}

static double encode_once(const struct codec *c, int level, const unsigned char *data,
			  size_t len, struct blob_writer *sink)
{
	sink->len = 0;
	double t = bench_now();
	struct writer *w = c->encoder(level, &sink->w);
	if (!w)
		fail("encoder");
	for (size_t off = 0; off < len; off += IO_SIZE)
		if (writer_write(w, data + off, len - off < IO_SIZE ? len - off : IO_SIZE) < 0)
			fail("write");
	if (writer_close(w) < 0)
		fail("close");
	return bench_now() - t;
}

static double decode_once(const struct codec *c, const struct blob_writer *comp,
			  unsigned char *out, size_t expect)
{
	double t = bench_now();
	struct reader *src = mem_reader(comp->data, comp->len, 0);
	struct reader *r = src ? c->decoder(src) : NULL;
	if (!r)
		fail("decoder");
	size_t total = 0;
	for (;;) {
		ssize_t n = reader_read(r, out, IO_SIZE);
		if (n < 0)
			fail("read");
		if (n == 0)
			break;
		total += (size_t)n;
	}
	reader_close(r);
	t = bench_now() - t;
	if (total != expect) {
		fprintf(stderr, "codec_speed: %s decoded %zu bytes, not %zu\n", c->name, total,
			expect);
		exit(1);
	}
	return t;
}

static void bench_codec(const struct codec *c, int level, const unsigned char *data, size_t len,
			struct blob_writer *sink, unsigned char *out, int reps)
{
	double enc = 1e9, dec = 1e9;
	for (int i = 0; i < reps; i++) {
		double t = encode_once(c, level, data, len, sink);
		enc = t < enc ? t : enc;
	}
	for (int i = 0; i < reps; i++) {
		double t = decode_once(c, sink, out, len);
		dec = t < dec ? t : dec;
	}
	printf("| %-5s | %5d | %5.2f | %8.0f | %8.0f |\n", c->name, level,
	       (double)len / (double)sink->len, (double)len / enc / 1e6, (double)len / dec / 1e6);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	int reps = argc > 2 ? atoi(argv[2]) : 3;
	size_t len = mib << 20;
	unsigned char *data = malloc(len);
	unsigned char *out = malloc(IO_SIZE);
	struct blob_writer sink = { { &blob_ops, NULL, 0 }, NULL, 0, len + len / 4 + (8u << 20) };
	sink.data = malloc(sink.cap);
	if (!data || !out || !sink.data) {
		fprintf(stderr, "codec_speed: out of memory\n");
		return 1;
	}
	bench_fill(data, len, 42);
	printf("%zu MiB of mixed pages (40%% zero, 30%% random, 30%% text), best of %d, "
	       "1 MiB writes/reads, one thread\n\n",
	       mib, reps);
	printf("| codec | level | ratio | enc MB/s | dec MB/s |\n");
	printf("|-------|------:|------:|---------:|---------:|\n");
	if (argc > 3) {
		for (int i = 3; i < argc; i++) {
			char name[32];
			int level;
			int n = sscanf(argv[i], "%31[^:]:%d", name, &level);
			const struct codec *c = n >= 1 ? codec_by_name(name) : NULL;
			if (!c) {
				fprintf(stderr, "codec_speed: unknown codec %s (%s)\n", argv[i],
					codec_names());
				return 2;
			}
			bench_codec(c, n == 2 ? level : c->default_level, data, len, &sink, out,
				    reps);
		}
	} else {
		for (const struct codec *const *c = codecs; *c; c++)
			bench_codec(*c, (*c)->default_level, data, len, &sink, out, reps);
	}
	free(sink.data);
	free(out);
	free(data);
	return 0;
}
