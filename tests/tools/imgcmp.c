/* imgcmp [-v] [--ignore GLOB]... DIR_A DIR_B
 *
 * Compares two CRIU image directories made by two dumps of the same
 * (stopped) process: both must hold the same files, byte for byte, except
 * for the fields that legitimately change from one dump to the next:
 *
 *   inventory.img  dump_uptime (field 8) and dump_criu_run_id (field 13)
 *                  of inventory_entry (images/inventory.proto)
 *   timens-*.img   monotonic and boottime tv_sec/tv_nsec of timens_entry
 *                  (images/timens.proto)
 *
 * Those two kinds are decoded at the protobuf wire level and compared
 * field by field; a varying field may even change length (varints), so
 * offsets after it shift.  Files matching stats-* and *.log are ignored
 * (CRIU's own statistics and logs), as are those given with --ignore.
 *
 * Every difference is printed on stdout with its file and offset.  Exit
 * status: 0 identical, 1 differences found, 2 usage or I/O error. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* criu/include/magic.h: most images start with IMG_COMMON_MAGIC, service
 * images (stats, irmap cache) with IMG_SERVICE_MAGIC, then the image's own
 * magic; inventory.img and raw images (pages-*.img...) have no head magic. */
#define IMG_COMMON_MAGIC 0x54564319u
#define IMG_SERVICE_MAGIC 0x55105940u

#define MAX_IGNORES 32
#define MAX_PRINTED_RANGES 20
#define MAX_STRUCTURED_FILE (64u << 20)
#define CHUNK (1u << 20)

/* ------------------------------------------------------------------ */
/* Reporting                                                           */
/* ------------------------------------------------------------------ */

static int differences;
static int allowed_differences;
static bool verbose;
static bool io_error;

static void report(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(const char *file, const char *fmt, ...)
{
	va_list ap;
	printf("%s: ", file);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	differences++;
}

static void fail_io(const char *what, const char *path)
{
	fprintf(stderr, "imgcmp: %s %s: %s\n", what, path, strerror(errno));
	io_error = true;
}

/* ------------------------------------------------------------------ */
/* Protobuf wire format                                                */
/* ------------------------------------------------------------------ */

enum wire_type { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

struct pb_field {
	uint32_t number;
	unsigned wire_type;
	uint64_t value;	     /* varint, fixed64, fixed32 */
	const uint8_t *data; /* length-delimited payload */
	size_t len;
	size_t offset;	    /* of the field's key, in the file */
	size_t data_offset; /* of the length-delimited payload, in the file */
};

struct pb_message {
	struct pb_field *fields;
	size_t count, capacity;
};

static int read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*pos >= len)
			return -1;
		uint8_t byte = buf[(*pos)++];
		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*out = v;
			return 0;
		}
	}
	return -1; /* more than 10 bytes */
}

static uint64_t read_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

/* Splits one message into its fields.  base is buf's offset in the file.
 * Returns 0, or -1 with *bad_offset at the field that does not parse. */
static int pb_parse(const uint8_t *buf, size_t len, size_t base, struct pb_message *msg, size_t *bad_offset)
{
	msg->count = 0;
	size_t pos = 0;
	while (pos < len) {
		struct pb_field f = { .offset = base + pos };
		uint64_t key, length;
		*bad_offset = f.offset;
		if (read_varint(buf, len, &pos, &key) < 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
			return -1;
		f.number = (uint32_t)(key >> 3);
		f.wire_type = (unsigned)(key & 7);
		switch (f.wire_type) {
		case WT_VARINT:
			if (read_varint(buf, len, &pos, &f.value) < 0)
				return -1;
			break;
		case WT_FIXED64:
		case WT_FIXED32: {
			unsigned bytes = f.wire_type == WT_FIXED64 ? 8 : 4;
			if (len - pos < bytes)
				return -1;
			f.value = read_le(buf + pos, bytes);
			pos += bytes;
			break;
		}
		case WT_LEN:
			if (read_varint(buf, len, &pos, &length) < 0 || length > len - pos)
				return -1;
			f.data = buf + pos;
			f.data_offset = base + pos;
			f.len = (size_t)length;
			pos += (size_t)length;
			break;
		default: /* groups (3, 4) are not used by CRIU's proto2 images */
			return -1;
		}
		if (msg->count == msg->capacity) {
			size_t capacity = msg->capacity ? msg->capacity * 2 : 16;
			struct pb_field *grown = realloc(msg->fields, capacity * sizeof(*grown));
			if (!grown) {
				fprintf(stderr, "imgcmp: out of memory\n");
				exit(2);
			}
			msg->fields = grown;
			msg->capacity = capacity;
		}
		msg->fields[msg->count++] = f;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Structural comparison of inventory.img and timens-*.img              */
/* ------------------------------------------------------------------ */

/* A varying field is named by its path of field numbers from the entry's
 * top-level message, e.g. "1.2" = field 2 inside field 1. */
struct varying_field {
	const char *path;
	const char *name;
};

struct structured_image {
	const char *pattern;
	struct varying_field varying[5];
};

static const struct structured_image structured_images[] = {
	{ "inventory.img", { { "8", "dump_uptime" }, { "13", "dump_criu_run_id" } } },
	{ "timens-*.img",
	  { { "1.1", "monotonic.tv_sec" },
	    { "1.2", "monotonic.tv_nsec" },
	    { "2.1", "boottime.tv_sec" },
	    { "2.2", "boottime.tv_nsec" } } },
};

static const struct structured_image *structured_image_for(const char *name)
{
	for (size_t i = 0; i < sizeof(structured_images) / sizeof(structured_images[0]); i++)
		if (fnmatch(structured_images[i].pattern, name, 0) == 0)
			return &structured_images[i];
	return NULL;
}

static const char *varying_name(const struct structured_image *img, const char *path)
{
	for (size_t i = 0; i < sizeof(img->varying) / sizeof(img->varying[0]) && img->varying[i].path; i++)
		if (strcmp(img->varying[i].path, path) == 0)
			return img->varying[i].name;
	return NULL;
}

/* True if some varying field lies inside the message at path. */
static bool has_varying_inside(const struct structured_image *img, const char *path)
{
	size_t len = strlen(path);
	for (size_t i = 0; i < sizeof(img->varying) / sizeof(img->varying[0]) && img->varying[i].path; i++)
		if (strncmp(img->varying[i].path, path, len) == 0 && img->varying[i].path[len] == '.')
			return true;
	return false;
}

struct structured_context {
	const char *file;
	const struct structured_image *img;
	size_t entry;
};

static const char *wire_type_name(unsigned wt)
{
	switch (wt) {
	case WT_VARINT: return "varint";
	case WT_FIXED64: return "fixed64";
	case WT_LEN: return "length-delimited";
	case WT_FIXED32: return "fixed32";
	}
	return "?";
}

static void compare_fields(struct structured_context *c, const struct pb_field *fa, const struct pb_field *fb,
			   const char *path);

static void compare_messages(struct structured_context *c, const uint8_t *a, size_t alen, size_t abase,
			     const uint8_t *b, size_t blen, size_t bbase, const char *path)
{
	struct pb_message ma = { 0 }, mb = { 0 };
	size_t bad;
	const char *where = *path ? path : "(top level)";
	if (pb_parse(a, alen, abase, &ma, &bad) < 0) {
		report(c->file, "entry %zu, message %s: A does not parse as protobuf at offset %zu", c->entry, where, bad);
		goto out;
	}
	if (pb_parse(b, blen, bbase, &mb, &bad) < 0) {
		report(c->file, "entry %zu, message %s: B does not parse as protobuf at offset %zu", c->entry, where, bad);
		goto out;
	}
	size_t common = ma.count < mb.count ? ma.count : mb.count;
	for (size_t i = 0; i < common; i++) {
		const struct pb_field *fa = &ma.fields[i], *fb = &mb.fields[i];
		if (fa->number != fb->number || fa->wire_type != fb->wire_type) {
			/* Past this point the two field lists no longer line up. */
			report(c->file,
			       "entry %zu, message %s, field #%zu: A has field %u (%s) at offset %zu, "
			       "B has field %u (%s) at offset %zu",
			       c->entry, where, i, fa->number, wire_type_name(fa->wire_type), fa->offset, fb->number,
			       wire_type_name(fb->wire_type), fb->offset);
			goto out;
		}
		char field_path[256];
		snprintf(field_path, sizeof(field_path), "%s%s%u", path, *path ? "." : "", fa->number);
		compare_fields(c, fa, fb, field_path);
	}
	if (ma.count != mb.count)
		report(c->file, "entry %zu, message %s: A has %zu fields, B has %zu", c->entry, where, ma.count, mb.count);
out:
	free(ma.fields);
	free(mb.fields);
}

static void compare_fields(struct structured_context *c, const struct pb_field *fa, const struct pb_field *fb,
			   const char *path)
{
	const char *name = varying_name(c->img, path);
	if (name) {
		allowed_differences++;
		if (verbose)
			printf("%s: entry %zu, field %s (%s) at offset %zu/%zu may differ: skipped\n", c->file, c->entry,
			       path, name, fa->offset, fb->offset);
		return;
	}
	if (fa->wire_type == WT_LEN && has_varying_inside(c->img, path)) {
		compare_messages(c, fa->data, fa->len, fa->data_offset, fb->data, fb->len, fb->data_offset, path);
		return;
	}
	if (fa->wire_type != WT_LEN) {
		if (fa->value != fb->value)
			report(c->file, "entry %zu, field %s at offset %zu (A) / %zu (B): %s %llu != %llu", c->entry, path,
			       fa->offset, fb->offset, wire_type_name(fa->wire_type), (unsigned long long)fa->value,
			       (unsigned long long)fb->value);
		return;
	}
	if (fa->len != fb->len || memcmp(fa->data, fb->data, fa->len) != 0)
		report(c->file, "entry %zu, field %s at offset %zu (A) / %zu (B): %zu-byte and %zu-byte payloads differ",
		       c->entry, path, fa->offset, fb->offset, fa->len, fb->len);
}

static int read_whole_file(const char *path, uint8_t **buf, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail_io("cannot open", path);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)MAX_STRUCTURED_FILE) {
		if (st.st_size > (off_t)MAX_STRUCTURED_FILE)
			errno = EFBIG;
		fail_io("cannot read", path);
		close(fd);
		return -1;
	}
	*buf = malloc((size_t)st.st_size + 1);
	*len = 0;
	while (*buf && *len < (size_t)st.st_size) {
		ssize_t n = read(fd, *buf + *len, (size_t)st.st_size - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*len += (size_t)n;
	}
	int saved = errno;
	close(fd);
	if (!*buf || *len != (size_t)st.st_size) {
		errno = *buf ? saved : ENOMEM;
		fail_io("cannot read", path);
		free(*buf);
		return -1;
	}
	return 0;
}

static size_t image_header_length(const uint8_t *buf, size_t len)
{
	if (len < 4)
		return len;
	uint32_t first = (uint32_t)read_le(buf, 4);
	if ((first == IMG_COMMON_MAGIC || first == IMG_SERVICE_MAGIC) && len >= 8)
		return 8;
	return 4;
}

/* Next u32-length-prefixed entry at *pos: 1 found, 0 at the end, -1 truncated. */
static int next_entry(const uint8_t *buf, size_t len, size_t *pos, const uint8_t **data, size_t *size)
{
	if (*pos == len)
		return 0;
	if (len - *pos < 4)
		return -1;
	uint32_t n = (uint32_t)read_le(buf + *pos, 4);
	if (n > len - *pos - 4)
		return -1;
	*data = buf + *pos + 4;
	*size = n;
	*pos += 4 + (size_t)n;
	return 1;
}

static void compare_structured(const char *name, const char *path_a, const char *path_b,
			       const struct structured_image *img)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen, blen;
	if (read_whole_file(path_a, &a, &alen) < 0 || read_whole_file(path_b, &b, &blen) < 0)
		goto out;
	size_t ha = image_header_length(a, alen), hb = image_header_length(b, blen);
	if (ha != hb || memcmp(a, b, ha) != 0) {
		report(name, "image header (magic, bytes 0-%zu) differs", (ha > hb ? ha : hb) - 1);
		goto out;
	}
	struct structured_context c = { .file = name, .img = img };
	size_t pa = ha, pb = hb;
	for (;; c.entry++) {
		size_t entry_a = pa, entry_b = pb;
		const uint8_t *da, *db;
		size_t sa, sb;
		int ra = next_entry(a, alen, &pa, &da, &sa);
		int rb = next_entry(b, blen, &pb, &db, &sb);
		if (ra < 0 || rb < 0) {
			report(name, "entry %zu at offset %zu (A) / %zu (B): %s is truncated", c.entry, entry_a, entry_b,
			       ra < 0 ? "A" : "B");
			break;
		}
		if (ra == 0 || rb == 0) {
			if (ra != rb)
				report(name, "%s has more entries than %s, from entry %zu at offset %zu", ra ? "A" : "B",
				       ra ? "B" : "A", c.entry, ra ? entry_a : entry_b);
			break;
		}
		compare_messages(&c, da, sa, entry_a + 4, db, sb, entry_b + 4, "");
	}
out:
	free(a);
	free(b);
}

/* ------------------------------------------------------------------ */
/* Byte-for-byte comparison                                            */
/* ------------------------------------------------------------------ */

struct byte_ranges {
	const char *file;
	bool open;
	uint64_t start, end; /* current range [start, end) */
	uint8_t first_a[8], first_b[8];
	size_t first_len;
	uint64_t ranges;
};

static void flush_range(struct byte_ranges *r)
{
	if (!r->open)
		return;
	r->open = false;
	r->ranges++;
	if (r->ranges > MAX_PRINTED_RANGES)
		return;
	char ha[24] = "", hb[24] = "";
	for (size_t i = 0; i < r->first_len; i++) {
		sprintf(ha + 2 * i, "%02x", r->first_a[i]);
		sprintf(hb + 2 * i, "%02x", r->first_b[i]);
	}
	const char *more = r->end - r->start > r->first_len ? "..." : "";
	if (r->end - r->start == 1)
		report(r->file, "byte %llu differs (A: %s, B: %s)", (unsigned long long)r->start, ha, hb);
	else
		report(r->file, "bytes %llu-%llu differ (A: %s%s, B: %s%s)", (unsigned long long)r->start,
		       (unsigned long long)r->end - 1, ha, more, hb, more);
}

static void scan_chunk(struct byte_ranges *r, const uint8_t *a, const uint8_t *b, size_t len, uint64_t base)
{
	for (size_t i = 0; i < len; i++) {
		if (a[i] == b[i]) {
			flush_range(r);
			continue;
		}
		if (!r->open) {
			r->open = true;
			r->start = base + i;
			/* Show the first bytes of the range, stopping where they match again. */
			r->first_len = 0;
			while (r->first_len < sizeof(r->first_a) && i + r->first_len < len &&
			       a[i + r->first_len] != b[i + r->first_len])
				r->first_len++;
			memcpy(r->first_a, a + i, r->first_len);
			memcpy(r->first_b, b + i, r->first_len);
		}
		r->end = base + i + 1;
	}
}

static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void compare_bytes(const char *name, const char *path_a, const char *path_b)
{
	static uint8_t buf_a[CHUNK], buf_b[CHUNK];
	int fa = open(path_a, O_RDONLY | O_CLOEXEC);
	int fb = open(path_b, O_RDONLY | O_CLOEXEC);
	if (fa < 0 || fb < 0) {
		fail_io("cannot open", fa < 0 ? path_a : path_b);
		goto out;
	}
	struct stat sa, sb;
	if (fstat(fa, &sa) < 0 || fstat(fb, &sb) < 0) {
		fail_io("cannot stat", path_a); /* fstat on an open fd does not fail in practice */
		goto out;
	}
	if (sa.st_size != sb.st_size)
		report(name, "sizes differ: A has %lld bytes, B has %lld", (long long)sa.st_size, (long long)sb.st_size);

	struct byte_ranges r = { .file = name };
	uint64_t offset = 0;
	for (;;) {
		ssize_t na = read_full(fa, buf_a, CHUNK);
		ssize_t nb = read_full(fb, buf_b, CHUNK);
		if (na < 0 || nb < 0) {
			fail_io("cannot read", na < 0 ? path_a : path_b);
			goto out;
		}
		size_t common = (size_t)(na < nb ? na : nb);
		if (memcmp(buf_a, buf_b, common) != 0 || r.open)
			scan_chunk(&r, buf_a, buf_b, common, offset);
		offset += common;
		if (common < CHUNK)
			break; /* the shorter file ended; sizes were reported above */
	}
	flush_range(&r);
	if (r.ranges > MAX_PRINTED_RANGES)
		report(name, "... %llu more differing ranges not shown",
		       (unsigned long long)(r.ranges - MAX_PRINTED_RANGES));
out:
	if (fa >= 0)
		close(fa);
	if (fb >= 0)
		close(fb);
}

/* ------------------------------------------------------------------ */
/* Directories                                                         */
/* ------------------------------------------------------------------ */

static const char *ignores[MAX_IGNORES] = { "stats-*", "*.log" };
static int ignore_count = 2;

static bool ignored(const char *name)
{
	for (int i = 0; i < ignore_count; i++)
		if (fnmatch(ignores[i], name, 0) == 0)
			return true;
	return false;
}

static int compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the directory's entries, minus ignored ones. */
static char **list_dir(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	if (!d) {
		fail_io("cannot open directory", dir);
		return NULL;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || ignored(e->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			char **grown = realloc(names, cap * sizeof(*grown));
			if (!grown) {
				fprintf(stderr, "imgcmp: out of memory\n");
				exit(2);
			}
			names = grown;
		}
		if (!(names[n++] = strdup(e->d_name))) {
			fprintf(stderr, "imgcmp: out of memory\n");
			exit(2);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), compare_names);
	*count = n;
	return names ? names : calloc(1, sizeof(*names));
}

static void compare_file(const char *name, const char *dir_a, const char *dir_b)
{
	char path_a[4096], path_b[4096];
	snprintf(path_a, sizeof(path_a), "%s/%s", dir_a, name);
	snprintf(path_b, sizeof(path_b), "%s/%s", dir_b, name);
	struct stat sa, sb;
	if (lstat(path_a, &sa) < 0) {
		fail_io("cannot stat", path_a);
		return;
	}
	if (lstat(path_b, &sb) < 0) {
		fail_io("cannot stat", path_b);
		return;
	}
	if (!S_ISREG(sa.st_mode) || !S_ISREG(sb.st_mode)) {
		report(name, "not a regular file in %s", !S_ISREG(sa.st_mode) ? "A" : "B");
		return;
	}
	int before = differences;
	const struct structured_image *img = structured_image_for(name);
	if (img)
		compare_structured(name, path_a, path_b, img);
	else
		compare_bytes(name, path_a, path_b);
	if (verbose && differences == before)
		printf("%s: same%s\n", name, img ? " (compared field by field)" : "");
}

static int usage(void)
{
	fprintf(stderr, "usage: imgcmp [-v] [--ignore GLOB]... DIR_A DIR_B\n"
			"Compares two CRIU image directories; stats-* and *.log are always ignored.\n"
			"Exit: 0 identical, 1 differences (printed), 2 usage or I/O error.\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *dirs[2];
	int ndirs = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
			verbose = true;
		} else if (strcmp(argv[i], "--ignore") == 0) {
			if (i + 1 >= argc || ignore_count == MAX_IGNORES)
				return usage();
			ignores[ignore_count++] = argv[++i];
		} else if (argv[i][0] == '-' || ndirs == 2) {
			return usage();
		} else {
			dirs[ndirs++] = argv[i];
		}
	}
	if (ndirs != 2)
		return usage();

	size_t na, nb;
	char **a = list_dir(dirs[0], &na);
	char **b = list_dir(dirs[1], &nb);
	if (!a || !b)
		return 2;

	size_t i = 0, j = 0, compared = 0;
	while (i < na || j < nb) {
		int order = i == na ? 1 : j == nb ? -1 : strcmp(a[i], b[j]);
		if (order < 0) {
			report(a[i++], "only in A (%s)", dirs[0]);
		} else if (order > 0) {
			report(b[j++], "only in B (%s)", dirs[1]);
		} else {
			compare_file(a[i], dirs[0], dirs[1]);
			compared++;
			i++, j++;
		}
	}
	printf("imgcmp: %zu files compared, %d difference%s, %d varying field%s skipped\n", compared, differences,
	       differences == 1 ? "" : "s", allowed_differences, allowed_differences == 1 ? "" : "s");
	if (io_error)
		return 2;
	return differences ? 1 : 0;
}
