/* Raw library throughput, to back the choices made in src/codec/: ISA-L
 * (igzip) against zlib for gzip/zlib streams, and lz4 frame block sizes.
 * Both sides stream the same way the codec filters do: 1 MiB of input per
 * call, 1 MiB output buffers, one core. See bench/CODECS.md.
 *
 *   codec_libs [MiB [reps]]      (default 256 MiB, best of 3) */
#include "bench_data.h"

#include <isa-l/igzip_lib.h>
#include <lz4frame.h>
#include <zlib.h>

#define CHUNK ((size_t)1 << 20)

struct blob {
	unsigned char *data;
	size_t len;
	size_t cap;
};

static void die(const char *what)
{
	fprintf(stderr, "codec_libs: %s\n", what);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (!p)
		die("out of memory");
	return p;
}

static size_t zlib_compress(const unsigned char *in, size_t len, struct blob *out, int level)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	if (deflateInit2(&s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		die("deflateInit2");
	out->len = 0;
	for (size_t off = 0;;) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		int flush = off + n == len ? Z_FINISH : Z_NO_FLUSH;
		s.next_in = (unsigned char *)in + off;
		s.avail_in = (uInt)n;
		int rc;
		do {
			s.next_out = out->data + out->len;
			s.avail_out = (uInt)(out->cap - out->len < CHUNK ? out->cap - out->len : CHUNK);
			rc = deflate(&s, flush);
			if (rc == Z_STREAM_ERROR)
				die("deflate");
			out->len = (size_t)(s.next_out - out->data);
		} while (s.avail_out == 0);
		off += n;
		if (rc == Z_STREAM_END)
			break;
	}
	deflateEnd(&s);
	return out->len;
}

static size_t isal_level_buf_size(int level)
{
	switch (level) {
	case 1: return ISAL_DEF_LVL1_DEFAULT;
	case 2: return ISAL_DEF_LVL2_DEFAULT;
	case 3: return ISAL_DEF_LVL3_DEFAULT;
	default: return 0;
	}
}

static size_t isal_compress(const unsigned char *in, size_t len, struct blob *out, int level)
{
	struct isal_zstream s;
	size_t lb = isal_level_buf_size(level);
	unsigned char *level_buf = lb ? xmalloc(lb) : NULL;
	isal_deflate_init(&s);
	s.level = (uint32_t)level;
	s.level_buf = level_buf;
	s.level_buf_size = (uint32_t)lb;
	s.gzip_flag = IGZIP_GZIP;
	out->len = 0;
	for (size_t off = 0;;) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		s.next_in = (unsigned char *)in + off;
		s.avail_in = (uint32_t)n;
		s.end_of_stream = off + n == len;
		do {
			s.next_out = out->data + out->len;
			s.avail_out = (uint32_t)(out->cap - out->len < CHUNK ? out->cap - out->len : CHUNK);
			if (isal_deflate(&s) != COMP_OK)
				die("isal_deflate");
			out->len = (size_t)(s.next_out - out->data);
		} while (s.avail_out == 0);
		off += n;
		if (s.end_of_stream && s.internal_state.state == ZSTATE_END)
			break;
	}
	free(level_buf);
	return out->len;
}

/* Decompress into a 1 MiB buffer over and over, like a reader's caller;
 * returns the decompressed size. */
static size_t zlib_decompress(const struct blob *in, unsigned char *out)
{
	z_stream s;
	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, 15 + 16) != Z_OK)
		die("inflateInit2");
	size_t total = 0, off = 0;
	int rc = Z_OK;
	while (rc != Z_STREAM_END) {
		if (s.avail_in == 0) {
			size_t n = in->len - off < CHUNK ? in->len - off : CHUNK;
			s.next_in = in->data + off;
			s.avail_in = (uInt)n;
			off += n;
		}
		s.next_out = out;
		s.avail_out = CHUNK;
		rc = inflate(&s, Z_NO_FLUSH);
		if (rc != Z_OK && rc != Z_STREAM_END)
			die("inflate");
		total += CHUNK - s.avail_out;
	}
	inflateEnd(&s);
	return total;
}

static size_t isal_decompress(const struct blob *in, unsigned char *out, struct inflate_state *s)
{
	isal_inflate_init(s);
	s->crc_flag = ISAL_GZIP;
	size_t total = 0, off = 0;
	while (s->block_state != ISAL_BLOCK_FINISH) {
		if (s->avail_in == 0) {
			size_t n = in->len - off < CHUNK ? in->len - off : CHUNK;
			if (n == 0)
				die("isal_inflate: truncated");
			s->next_in = in->data + off;
			s->avail_in = (uint32_t)n;
			off += n;
		}
		s->next_out = out;
		s->avail_out = CHUNK;
		if (isal_inflate(s) != ISAL_DECOMP_OK)
			die("isal_inflate");
		total += CHUNK - s->avail_out;
	}
	return total;
}

static size_t lz4_compress(const unsigned char *in, size_t len, struct blob *out,
			   LZ4F_preferences_t *prefs)
{
	LZ4F_cctx *c;
	if (LZ4F_isError(LZ4F_createCompressionContext(&c, LZ4F_VERSION)))
		die("lz4 ctx");
	size_t r = LZ4F_compressBegin(c, out->data, out->cap, prefs);
	if (LZ4F_isError(r))
		die("LZ4F_compressBegin");
	out->len = r;
	for (size_t off = 0; off < len; off += CHUNK) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		r = LZ4F_compressUpdate(c, out->data + out->len, out->cap - out->len, in + off, n,
					NULL);
		if (LZ4F_isError(r))
			die("LZ4F_compressUpdate");
		out->len += r;
	}
	r = LZ4F_compressEnd(c, out->data + out->len, out->cap - out->len, NULL);
	if (LZ4F_isError(r))
		die("LZ4F_compressEnd");
	out->len += r;
	LZ4F_freeCompressionContext(c);
	return out->len;
}

static size_t lz4_decompress(const struct blob *in, unsigned char *out)
{
	LZ4F_dctx *d;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
		die("lz4 dctx");
	size_t total = 0, off = 0, hint = 1;
	while (hint != 0) {
		size_t src = in->len - off < CHUNK ? in->len - off : CHUNK;
		size_t dst = CHUNK;
		hint = LZ4F_decompress(d, out, &dst, in->data + off, &src, NULL);
		if (LZ4F_isError(hint))
			die("LZ4F_decompress");
		off += src;
		total += dst;
	}
	LZ4F_freeDecompressionContext(d);
	return total;
}

struct result {
	double comp_mbs;
	double decomp_mbs;
	double ratio;
};

static void report(const char *name, struct result r)
{
	printf("%-28s ratio %5.2f  compress %7.0f MB/s  decompress %7.0f MB/s\n", name, r.ratio,
	       r.comp_mbs, r.decomp_mbs);
	fflush(stdout);
}

enum lib { ZLIB, ISAL, LZ4 };

struct run {
	enum lib lib;
	int level;
	LZ4F_preferences_t lz4;
	int inflater;	/* for deflate streams: ZLIB or ISAL */
};

static struct result measure(const struct run *run, const unsigned char *data, size_t len,
			     struct blob *comp, unsigned char *out, int reps)
{
	static struct inflate_state ist;
	struct result r = { 0, 0, 0 };
	double best_c = 1e9, best_d = 1e9;
	for (int i = 0; i < reps; i++) {
		double t = bench_now();
		if (run->lib == ZLIB)
			zlib_compress(data, len, comp, run->level);
		else if (run->lib == ISAL)
			isal_compress(data, len, comp, run->level);
		else
			lz4_compress(data, len, comp, (LZ4F_preferences_t *)&run->lz4);
		t = bench_now() - t;
		best_c = t < best_c ? t : best_c;
	}
	for (int i = 0; i < reps; i++) {
		double t = bench_now();
		size_t got = run->lib == LZ4	     ? lz4_decompress(comp, out)
			     : run->inflater == ZLIB ? zlib_decompress(comp, out)
						     : isal_decompress(comp, out, &ist);
		t = bench_now() - t;
		if (got != len)
			die("decompressed size differs");
		best_d = t < best_d ? t : best_d;
	}
	r.ratio = (double)len / (double)comp->len;
	r.comp_mbs = (double)len / best_c / 1e6;
	r.decomp_mbs = (double)len / best_d / 1e6;
	return r;
}

static void deflate_runs(const unsigned char *data, size_t len, struct blob *comp,
			 unsigned char *out, int reps)
{
	char name[64];
	static const int zlib_levels[] = { 1, 3, 6, 9 };
	for (size_t i = 0; i < sizeof(zlib_levels) / sizeof(zlib_levels[0]); i++) {
		for (int inf = ZLIB; inf <= ISAL; inf++) {
			struct run run = { .lib = ZLIB, .level = zlib_levels[i], .inflater = inf };
			snprintf(name, sizeof(name), "zlib -%d, inflate %s", zlib_levels[i],
				 inf == ZLIB ? "zlib" : "isal");
			report(name, measure(&run, data, len, comp, out, reps));
		}
	}
	for (int level = 0; level <= 3; level++) {
		for (int inf = ZLIB; inf <= ISAL; inf++) {
			struct run run = { .lib = ISAL, .level = level, .inflater = inf };
			snprintf(name, sizeof(name), "isal -%d, inflate %s", level,
				 inf == ZLIB ? "zlib" : "isal");
			report(name, measure(&run, data, len, comp, out, reps));
		}
	}
}

static void lz4_runs(const unsigned char *data, size_t len, struct blob *comp,
		     unsigned char *out, int reps)
{
	static const struct {
		LZ4F_blockSizeID_t id;
		const char *name;
	} sizes[] = { { LZ4F_max64KB, "64KB" }, { LZ4F_max256KB, "256KB" },
		      { LZ4F_max1MB, "1MB" }, { LZ4F_max4MB, "4MB" } };
	char name[64];
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		for (int linked = 0; linked <= 1; linked++) {
			struct run run = { .lib = LZ4 };
			run.lz4 = (LZ4F_preferences_t)LZ4F_INIT_PREFERENCES;
			run.lz4.frameInfo.blockSizeID = sizes[i].id;
			run.lz4.frameInfo.blockMode =
				linked ? LZ4F_blockLinked : LZ4F_blockIndependent;
			run.lz4.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
			run.lz4.compressionLevel = 1;
			snprintf(name, sizeof(name), "lz4 -1 %s %s", sizes[i].name,
				 linked ? "linked" : "indep");
			report(name, measure(&run, data, len, comp, out, reps));
		}
	}
	/* What the content checksum costs (the codec has since dropped it for
	 * block checksums: see src/codec/codec_lz4.c). */
	struct run run = { .lib = LZ4 };
	run.lz4 = (LZ4F_preferences_t)LZ4F_INIT_PREFERENCES;
	run.lz4.frameInfo.blockSizeID = LZ4F_max64KB;
	run.lz4.frameInfo.blockMode = LZ4F_blockIndependent;
	run.lz4.compressionLevel = 1;
	report("lz4 -1 64KB indep, no cksum", measure(&run, data, len, comp, out, reps));
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	int reps = argc > 2 ? atoi(argv[2]) : 3;
	const char *only = argc > 3 ? argv[3] : "";
	size_t len = mib << 20;
	unsigned char *data = xmalloc(len);
	bench_fill(data, len, 42);
	struct blob comp = { xmalloc(len + len / 8 + (1 << 20)), 0, len + len / 8 + (1 << 20) };
	unsigned char *out = xmalloc(CHUNK);
	printf("%zu MiB of mixed pages, best of %d, single thread\n", mib, reps);
	if (strcmp(only, "lz4") != 0)
		deflate_runs(data, len, &comp, out, reps);
	if (strcmp(only, "deflate") != 0)
		lz4_runs(data, len, &comp, out, reps);
	free(out);
	free(comp.data);
	free(data);
	return 0;
}
