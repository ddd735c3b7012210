/* Layout detection: what restore and inspect make of a checkpoint
 * location's listing and manifest.json, through an in-memory store.
 *
 * Input: the listing, one object per line as "SIZE NAME" (a line without
 * a size is an object of 0 bytes); then FUZZ_SEPARATOR and manifest.json.
 * Without a separator there is no manifest object.
 *
 * Properties: a failure has a message; a detected layout names 1..N
 * streams that exist in the listing with a codec, and a checkpoint that is
 * not complete is never accepted. */
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

static bool listed(const struct fake_store *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->e[i].key, name))
			return true;
	return false;
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
		for (int i = 0; i < lay.streams; i++)
			FUZZ_CHECK(lay.files && lay.files[i] && listed(&f, lay.files[i]),
				   "stream %d (%s) is not in the listing", i,
				   lay.files && lay.files[i] ? lay.files[i] : "none");
		FUZZ_CHECK(lay.streams == 0 || !lay.files[lay.streams], "files[] not terminated");
		layout_free(&lay);
	}
	free(listing);
	return 0;
}
