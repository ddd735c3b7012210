/* Layout detection: what restore and inspect make of a checkpoint
 * location's listing and manifest.json, through an in-memory store.
 *
 * Input: the listing, one object per line as "SIZE NAME" (a line without
 * a size is an object of 0 bytes); then FUZZ_SEPARATOR and manifest.json.
 * Without a separator there is no manifest object.
 *
 * Properties: a failure has a message and leaves nothing allocated; a
 * detected layout has a codec and names streams that exist in the listing,
 * with the sizes the manifest records (if there is one) adding up to
 * stored_bytes; a checkpoint that is not complete is never accepted. */
#include "fuzz.h"
#include "checkpoint/layout.h"

#define MAX_OBJECTS 4096

struct fake_store {
	struct store base;
	struct store_entry e[MAX_OBJECTS];
	size_t n;
	const char *manifest;	/* NUL-terminated, or NULL: none */
	size_t manifest_len;
};

static int fake_list(struct store *s, const char *prefix, store_list_fn fn, void *arg)
{
	struct fake_store *f = (struct fake_store *)s;
	for (size_t i = 0; i < f->n; i++) {
		if (strncmp(f->e[i].key, prefix, strlen(prefix)) != 0)
			continue;
		int rc = fn(&f->e[i], arg);
		if (rc)
			return rc;
	}
	return 0;
}

static int fake_get(struct store *s, const char *key, void **buf, size_t *len)
{
	struct fake_store *f = (struct fake_store *)s;
	if (strcmp(key, MANIFEST_NAME) != 0 || !f->manifest)
		return 1;
	*buf = fuzz_cstr((const uint8_t *)f->manifest, f->manifest_len);
	*len = f->manifest_len;
	return 0;
}

static const struct store_ops fake_ops = {
	.scheme = "fuzz",
	.list = fake_list,
	.get = fake_get,
};

/* Parses the listing part into entries pointing into `text` (modified). */
static void parse_listing(struct fake_store *f, char *text)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line && f->n < MAX_OBJECTS;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end;
		unsigned long long size = strtoull(line, &end, 10);
		if (end != line && *end == ' ')
			line = end + 1;
		else
			size = 0;
		f->e[f->n].key = line;
		f->e[f->n].size = size;
		f->n++;
	}
}

/* The listing's entry for name, or NULL. */
static const struct store_entry *listed(const struct fake_store *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->e[i].key, name))
			return &f->e[i];
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[2];
	int n = fuzz_split(data, size, parts, 2);
	static struct fake_store f;
	memset(&f, 0, sizeof(f));
	f.base.ops = &fake_ops;
	f.base.location = "fuzz://checkpoint";
	char *listing = fuzz_cstr(parts[0].p, parts[0].len);
	parse_listing(&f, listing);
	if (n == 2) {
		f.manifest = (const char *)parts[1].p;
		f.manifest_len = parts[1].len;
	}

	struct layout lay;
	err_clear();
	/* A failed detection must leave nothing to free (inspect relies on
	 * it): leak detection checks that layout_free is not needed. */
	if (layout_detect(&f.base, f.base.location, &lay) < 0) {
		fuzz_failed_with_message("layout_detect");
	} else {
		FUZZ_CHECK(lay.codec, "layout %s without a codec", lay.kind);
		FUZZ_CHECK(!lay.have_manifest || lay.m.complete, "an incomplete checkpoint accepted");
		FUZZ_CHECK(lay.streams >= 0 && (lay.streams > 0 || lay.have_manifest),
			   "%d streams without a manifest", lay.streams);
		uint64_t stored = 0;
		for (int i = 0; i < lay.streams; i++) {
			const struct store_entry *e = lay.files && lay.files[i] ? listed(&f, lay.files[i]) : NULL;
			FUZZ_CHECK(e, "stream %d (%s) is not in the listing", i,
				   lay.files && lay.files[i] ? lay.files[i] : "none");
			FUZZ_CHECK(!lay.have_manifest || e->size == lay.m.stream[i].stored_bytes,
				   "stream %s has %llu bytes, the manifest says %llu", e->key,
				   (unsigned long long)e->size,
				   (unsigned long long)lay.m.stream[i].stored_bytes);
			stored += e->size;
		}
		FUZZ_CHECK(stored == lay.stored_bytes, "stored_bytes %llu, the streams hold %llu",
			   (unsigned long long)lay.stored_bytes, (unsigned long long)stored);
		FUZZ_CHECK(lay.streams == 0 || !lay.files[lay.streams], "files[] not terminated");
		layout_free(&lay);
	}
	free(listing);
	return 0;
}
