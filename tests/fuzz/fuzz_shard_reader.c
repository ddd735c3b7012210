/* The shard reader over N shards: markers merged by seq, the current file
 * tracked across shards, payloads handed to an image sink, Cedana's split
 * layout recognised.
 *
 * Input: one options byte, then the shards separated by FUZZ_SEPARATOR
 * (at most 8). Options: bit 0 allows Cedana's layout (as restore does for
 * stored streams); bits 1-2 pick how the sink consumes payloads (read,
 * skip, splice into a file); bit 3 passes the shards as pipes instead of
 * regular files when they fit in a pipe's buffer; bit 4 gives each shard a
 * limit, as serve does with the raw sizes a manifest records: its length
 * less bits 5-7 (0-7 bytes).
 *
 * Properties: the sink sees open/data/eof in a consistent order (data and
 * eof only for an open file, no file opened twice); after a successful
 * run every file reached its eof, and each shard's offset is its length
 * (and within its limit).
 *
 * Mutations: three in four work on whole records (a marker's fields, a
 * payload with its length, records duplicated, dropped, swapped or moved
 * to another shard, shards added), the others are libFuzzer's on the
 * bytes. */
#include "fuzz.h"
#include "fuzz_mutate.h"
#include "engine/engine_util.h"
#include "shard/shard_reader.h"

#include <fcntl.h>

#define MAX_SHARDS 8
#define MAX_FILES 4096

struct sink_file {
	char *name;
	uint64_t bytes;
	bool eof;
};

struct sink {
	int mode;	/* 0 read, 1 skip, 2 splice into out_fd */
	int out_fd;
	struct sink_file *files[MAX_FILES];
	int nfiles;
	int open_handles;	/* handles not yet ended or discarded */
};

static void *sink_open(void *ctx, const char *name)
{
	struct sink *s = ctx;
	FUZZ_CHECK(name[0] != '\0', "open with an empty name");
	/* As extract's and serve's sinks do: a name that could climb out of
	 * the images directory is refused. */
	if (engine_check_name(name) < 0)
		return NULL;
	for (int i = 0; i < s->nfiles; i++)
		FUZZ_CHECK(strcmp(s->files[i]->name, name) != 0, "file %s opened twice", name);
	if (s->nfiles == MAX_FILES) {
		err_set("harness: too many files");
		return NULL;
	}
	struct sink_file *f = calloc(1, sizeof(*f));
	FUZZ_CHECK(f && (f->name = strdup(name)), "out of memory");
	s->files[s->nfiles++] = f;
	s->open_handles++;
	return f;
}

static int sink_data(void *ctx, void *file, struct shard_in *in, uint32_t len)
{
	struct sink *s = ctx;
	struct sink_file *f = file;
	FUZZ_CHECK(!f->eof, "data for %s after its eof", f->name);
	uint64_t before = in->offset;
	int rc;
	if (s->mode == 0) {
		/* In pieces, as restore's sinks take a payload into bounded buffers. */
		static char buf[64 << 10];
		rc = 0;
		for (uint32_t left = len; rc == 0 && left > 0;) {
			size_t n = left < sizeof(buf) ? left : sizeof(buf);
			rc = shard_in_read(in, buf, n);
			left -= (uint32_t)n;
		}
	} else if (s->mode == 1) {
		rc = shard_in_skip(in, len);
	} else {
		rc = shard_in_splice(in, s->out_fd, NULL, len);
	}
	if (rc < 0) {
		fuzz_failed_with_message("payload helper");
		return -1;
	}
	FUZZ_CHECK(in->offset == before + len, "payload of %u bytes moved the offset by %llu", len,
		   (unsigned long long)(in->offset - before));
	f->bytes += len;
	return 0;
}

static int sink_eof(void *ctx, void *file)
{
	struct sink *s = ctx;
	struct sink_file *f = file;
	FUZZ_CHECK(!f->eof, "second eof for %s", f->name);
	f->eof = true;
	s->open_handles--;
	return 0;
}

static void sink_discard(void *ctx, void *file)
{
	struct sink *s = ctx;
	struct sink_file *f = file;
	FUZZ_CHECK(!f->eof, "discard of %s after its eof", f->name);
	s->open_handles--;
}

static const struct image_sink_ops sink_ops = {
	.open = sink_open,
	.data = sink_data,
	.eof = sink_eof,
	.discard = sink_discard,
};

/* A pipe holding the bytes with its write end closed, or -1 if they do not
 * fit in its buffer. */
static int filled_pipe(const struct fuzz_part *part)
{
	int p[2];
	FUZZ_CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe failed");
	if (part->len > (size_t)fcntl(p[1], F_GETPIPE_SZ)) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	FUZZ_CHECK(part->len == 0 || write(p[1], part->p, part->len) == (ssize_t)part->len,
		   "filling a pipe failed");
	close(p[1]);
	return p[0];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return -1;
	uint8_t opts = data[0];
	struct fuzz_part parts[MAX_SHARDS];
	int n = fuzz_split(data + 1, size - 1, parts, MAX_SHARDS);
	int fds[MAX_SHARDS];
	for (int i = 0; i < n; i++) {
		fds[i] = (opts & 8) ? filled_pipe(&parts[i]) : -1;
		if (fds[i] < 0)
			fds[i] = fuzz_memfd("shard", parts[i].p, parts[i].len);
	}
	struct sink s = {.mode = (opts >> 1) & 3, .out_fd = -1};
	if (s.mode == 3)
		s.mode = 0;
	if (s.mode == 2)
		s.out_fd = fuzz_memfd("out", "", 0);

	struct shard_reader r;
	err_clear();
	FUZZ_CHECK(shard_reader_init(&r, fds, n, &sink_ops, &s) == 0, "init: %s", err_msg());
	if (opts & 1)
		shard_reader_allow_cedana(&r);
	uint64_t short_by = opts >> 5;
	for (int i = 0; (opts & 0x10) && i < n; i++)
		shard_reader_set_limit(&r, i, parts[i].len > short_by ? parts[i].len - short_by : 0);
	int rc = shard_reader_run(&r);
	if (rc < 0) {
		fuzz_failed_with_message("shard_reader_run");
	} else {
		for (int i = 0; i < s.nfiles; i++)
			FUZZ_CHECK(s.files[i]->eof, "run succeeded with %s incomplete", s.files[i]->name);
		for (int i = 0; i < n; i++) {
			FUZZ_CHECK(r.shards[i].eof && r.shards[i].offset == parts[i].len,
				   "run succeeded with shard %d at offset %llu of %zu", i,
				   (unsigned long long)r.shards[i].offset, parts[i].len);
			FUZZ_CHECK(r.shards[i].offset <= r.shards[i].limit, "shard %d read to %llu, "
				   "past its limit %llu", i, (unsigned long long)r.shards[i].offset,
				   (unsigned long long)r.shards[i].limit);
		}
	}
	shard_reader_free(&r);
	FUZZ_CHECK(s.open_handles == 0, "%d handles neither ended nor discarded", s.open_handles);

	for (int i = 0; i < s.nfiles; i++) {
		free(s.files[i]->name);
		free(s.files[i]);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	if (s.out_fd >= 0)
		close(s.out_fd);
	return 0;
}

/* ---- structure-aware mutation: the shards as lists of records ---- */

#define MAX_RECORDS 1024

struct record {
	int shard;
	const uint8_t *body;	/* the marker; NULL: bytes that are no record */
	size_t body_len;
	const uint8_t *payload;
	size_t payload_len;
};

static uint64_t data_len_of(const uint8_t *body, size_t len, bool *ok)
{
	struct pb_field f[PB_MAX_FIELDS];
	int n = pb_parse(body, len, f, PB_MAX_FIELDS);
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		if (f[i].num == 3 && f[i].type == 0)
			v = f[i].value;
	*ok = n >= 0;
	return v;
}

/* Splits each shard into records; what does not parse as one ends the
 * shard as a record without a marker. */
static int parse_records(const struct fuzz_part *parts, int nshards, struct record *r)
{
	int k = 0;
	for (int s = 0; s < nshards; s++) {
		const uint8_t *p = parts[s].p;
		size_t len = parts[s].len, pos = 0;
		while (pos < len && k < MAX_RECORDS) {
			bool ok = false;
			uint32_t blen = len - pos >= 4 ? le32_load(p + pos) : 0;
			uint64_t dlen = 0;
			if (len - pos >= 4 && blen <= len - pos - 4)
				dlen = data_len_of(p + pos + 4, blen, &ok);
			if (!ok || dlen > len - pos - 4 - blen) {
				r[k++] = (struct record){s, NULL, 0, p + pos, len - pos};
				break;
			}
			r[k++] = (struct record){s, p + pos + 4, blen, p + pos + 4 + blen, (size_t)dlen};
			pos += 4 + blen + (size_t)dlen;
		}
	}
	return k;
}

/* Bump allocator for new bodies and payloads, reset per mutation. */
static uint8_t arena[1 << 18];
static size_t arena_used;

static uint8_t *arena_take(size_t n)
{
	if (n > sizeof(arena) - arena_used)
		return NULL;
	arena_used += n;
	return arena + arena_used - n;
}

/* The body with its file_data length set to len (0 if it cannot be). */
static size_t set_data_len(const uint8_t *body, size_t blen, uint64_t len, uint8_t **out)
{
	struct pb_field f[PB_MAX_FIELDS];
	int n = pb_parse(body, blen, f, PB_MAX_FIELDS);
	size_t cap = blen + 16;
	if (n < 0 || !(*out = arena_take(cap)))
		return 0;
	for (int i = 0; i < n; i++)
		if (f[i].num == 3 && f[i].type == 0)
			f[i].value = len;
	return pb_serialize(f, n, *out, cap);
}

/* One change to the records; false if none could be made. */
static bool mutate_records(struct record *r, int *nrec, int *nshards, uint8_t *opts)
{
	int n = *nrec;
	int i = n ? (int)fuzz_rand((size_t)n) : 0;
	switch (n ? fuzz_rand(8) : 6) {
	case 0: { /* a marker's fields; its payload follows a new length 3 times in 4 */
		uint8_t *b;
		if (!r[i].body || !(b = arena_take(r[i].body_len * 2 + 64)))
			return false;
		memcpy(b, r[i].body, r[i].body_len);
		size_t m = pb_mutate(b, r[i].body_len, r[i].body_len * 2 + 64, 1);
		if (!m)
			return false;
		bool ok;
		uint64_t dlen = data_len_of(b, m, &ok);
		if (fuzz_rand(4) && dlen != r[i].payload_len && dlen <= 65536) {
			uint8_t *pl = arena_take((size_t)dlen);
			if (!pl)
				return false;
			for (size_t k = 0; k < dlen; k++)
				pl[k] = r[i].payload_len ? r[i].payload[k % r[i].payload_len] : 0;
			r[i].payload = pl;
			r[i].payload_len = (size_t)dlen;
		}
		r[i].body = b;
		r[i].body_len = m;
		return true;
	}
	case 1: { /* a payload's bytes and length, the marker following */
		size_t cap = r[i].payload_len * 2 + 64;
		uint8_t *pl = arena_take(cap), *b = NULL;
		if (!pl)
			return false;
		memcpy(pl, r[i].payload, r[i].payload_len);
		size_t m = LLVMFuzzerMutate(pl, r[i].payload_len, cap);
		if (r[i].body) {
			size_t bl = set_data_len(r[i].body, r[i].body_len, m, &b);
			if (!bl)
				return false;
			r[i].body = b;
			r[i].body_len = bl;
		}
		r[i].payload = pl;
		r[i].payload_len = m;
		return true;
	}
	case 2: /* a record repeated, in its shard or another */
		if (n == MAX_RECORDS)
			return false;
		memmove(&r[i + 1], &r[i], (size_t)(n - i) * sizeof(r[0]));
		r[i + 1].shard = fuzz_rand(2) ? r[i].shard : (int)fuzz_rand((size_t)*nshards);
		(*nrec)++;
		return true;
	case 3: /* a record dropped */
		memmove(&r[i], &r[i + 1], (size_t)(n - i - 1) * sizeof(r[0]));
		(*nrec)--;
		return true;
	case 4: { /* a record moved: another place, maybe another shard */
		struct record t = r[i];
		int j = (int)fuzz_rand((size_t)n);
		memmove(&r[i], &r[i + 1], (size_t)(n - i - 1) * sizeof(r[0]));
		memmove(&r[j + 1], &r[j], (size_t)(n - 1 - j) * sizeof(r[0]));
		t.shard = fuzz_rand(2) ? t.shard : (int)fuzz_rand((size_t)*nshards);
		r[j] = t;
		return true;
	}
	case 5: { /* two records swapped */
		int j = (int)fuzz_rand((size_t)n);
		struct record t = r[i];
		r[i] = r[j];
		r[j] = t;
		return true;
	}
	case 6: /* the options: one bit, or all of them */
		*opts = fuzz_rand(2) ? *opts ^ (uint8_t)(1u << fuzz_rand(8)) : (uint8_t)fuzz_rand(256);
		return true;
	default: /* a shard more (the records from i on), or one less */
		if (*nshards < MAX_SHARDS && fuzz_rand(2)) {
			for (int k = i; k < n; k++)
				if (r[k].shard == r[i].shard)
					r[k].shard = *nshards;
			(*nshards)++;
		} else if (*nshards > 1) {
			(*nshards)--;
			for (int k = 0; k < n; k++)
				if (r[k].shard == *nshards)
					r[k].shard = (int)fuzz_rand((size_t)*nshards);
		}
		return true;
	}
}

static size_t write_records(const struct record *r, int n, int nshards, uint8_t opts,
			    uint8_t *out, size_t max)
{
	static uint8_t buf[1 << 20];
	const size_t seplen = sizeof(FUZZ_SEPARATOR) - 1;
	size_t pos = 0;
	buf[pos++] = opts;
	for (int s = 0; s < nshards; s++) {
		if (s) {
			if (pos + seplen > sizeof(buf))
				return 0;
			memcpy(buf + pos, FUZZ_SEPARATOR, seplen);
			pos += seplen;
		}
		for (int k = 0; k < n; k++) {
			if (r[k].shard != s)
				continue;
			if (pos + 4 + r[k].body_len + r[k].payload_len > sizeof(buf))
				return 0;
			if (r[k].body) {
				le32_store(buf + pos, (uint32_t)r[k].body_len);
				memcpy(buf + pos + 4, r[k].body, r[k].body_len);
				pos += 4 + r[k].body_len;
			}
			memcpy(buf + pos, r[k].payload, r[k].payload_len);
			pos += r[k].payload_len;
		}
	}
	if (pos > max)
		return 0;
	memcpy(out, buf, pos);
	return pos;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned seed)
{
	fuzz_rng_seed(seed);
	if (size >= 1 && fuzz_rand(4)) {
		/* The input is rewritten from the records: keep a copy to point into. */
		static uint8_t copy[1 << 20];
		static struct record r[MAX_RECORDS];
		if (size <= sizeof(copy)) {
			memcpy(copy, data, size);
			struct fuzz_part parts[MAX_SHARDS];
			int nshards = fuzz_split(copy + 1, size - 1, parts, MAX_SHARDS);
			int nrec = parse_records(parts, nshards, r);
			uint8_t opts = copy[0];
			arena_used = 0;
			for (int k = 1 + (int)fuzz_rand(3); k > 0; k--)
				if (!mutate_records(r, &nrec, &nshards, &opts))
					break;
			size_t m = write_records(r, nrec, nshards, opts, data, max_size);
			if (m)
				return m;
		}
	}
	return LLVMFuzzerMutate(data, size, max_size);
}
