/* What a checkpoint location holds and how to read it: a crstream
 * checkpoint (manifest.json), a plain CRIU image directory sealed by
 * crstream (manifest with 0 streams), or bare img-N[.ext] streams written
 * by criu-image-streamer setups or Cedana (no manifest: the stream count
 * and codec come from the names). */
#include "checkpoint/layout.h"
#include "util/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct listing {
	struct store_entry *e;
	size_t n;
	size_t cap;
};

/* A checkpoint holds its image files (plain) or streams, a manifest and a
 * log: a location with far more objects is not one, and listing it all
 * must not cost what its writer chose. */
#define LISTING_MAX (IMAGE_FILES_MAX + STREAMS_MAX + 16)

static int collect(const struct store_entry *e, void *arg)
{
	struct listing *l = arg;
	if (l->n == LISTING_MAX)
		return err_set("more than %u objects: not a checkpoint crstream can read",
			       LISTING_MAX);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct store_entry *p = realloc(l->e, cap * sizeof(*p));
		if (!p)
			return err_set("out of memory");
		l->e = p;
		l->cap = cap;
	}
	l->e[l->n] = *e;
	l->e[l->n].key = strdup(e->key);
	if (!l->e[l->n].key)
		return err_set("out of memory");
	l->n++;
	return 0;
}

static void free_listing(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free((char *)l->e[i].key);
	free(l->e);
}

static const struct store_entry *find(const struct listing *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->e[i].key, key))
			return &l->e[i];
	return NULL;
}

/* "img-12.lz4" -> 12 and ".lz4"; -1 if the name is not a stream's. */
static int stream_index(const char *name, const char **ext)
{
	if (strncmp(name, "img-", 4) || !isdigit((unsigned char)name[4]))
		return -1;
	char *end;
	long i = strtol(name + 4, &end, 10);
	if (i < 0 || i > 4096 || (*end && *end != '.') || strchr(name, '/'))
		return -1;
	*ext = end;
	return (int)i;
}

static int count_streams(const struct listing *l, int *n, const char **ext)
{
	*n = 0;
	*ext = NULL;
	for (size_t i = 0; i < l->n; i++) {
		const char *e;
		int idx = stream_index(l->e[i].key, &e);
		if (idx < 0)
			continue;
		if (idx >= STREAMS_MAX)
			return err_set("%s: a checkpoint has at most %d streams", l->e[i].key,
				       STREAMS_MAX);
		if (*ext && strcmp(*ext, e))
			return err_set("streams with different extensions: img-*%s and %s", *ext,
				       l->e[i].key);
		*ext = e;
		if (idx + 1 > *n)
			*n = idx + 1;
	}
	return 0;
}

static int set_files(struct layout *lay, const char *ext)
{
	lay->files = calloc((size_t)lay->streams + 1, sizeof(char *));
	if (!lay->files)
		return err_set("out of memory");
	for (int i = 0; i < lay->streams; i++)
		if (asprintf(&lay->files[i], "img-%d%s", i, ext) < 0)
			return err_set("out of memory");
	return 0;
}

/* With a manifest: every stream it lists is there with its exact size, and
 * no other img-* stream is. */
static int check_streams(struct layout *lay, const struct listing *l)
{
	int found;
	const char *ext;
	if (count_streams(l, &found, &ext) < 0)
		return -1;
	for (int i = 0; i < lay->streams; i++) {
		const struct manifest_stream *ms = &lay->m.stream[i];
		const struct store_entry *e = find(l, ms->file);
		if (!e)
			return err_set("stream %s is missing", ms->file);
		if (e->size != ms->stored_bytes)
			return err_set("stream %s has %llu bytes, the manifest says %llu (%s)", ms->file,
				       (unsigned long long)e->size,
				       (unsigned long long)ms->stored_bytes,
				       e->size < ms->stored_bytes ? "truncated" : "altered");
		lay->stored_bytes += e->size;
	}
	if (found != lay->streams)
		return err_set("stream count mismatch: the manifest lists %d streams, the "
			       "checkpoint holds img-0..img-%d", lay->streams, found - 1);
	lay->files = calloc((size_t)lay->streams + 1, sizeof(char *));
	if (!lay->files)
		return err_set("out of memory");
	for (int i = 0; i < lay->streams; i++)
		if (!(lay->files[i] = strdup(lay->m.stream[i].file)))
			return err_set("out of memory");
	return 0;
}

/* chunks-N.sha256 (and its temporary name), N a stream index. */
static bool is_chunk_list_name(const char *name)
{
	char canonical[64];
	char *end;
	if (strncmp(name, "chunks-", 7) || !isdigit((unsigned char)name[7]))
		return false;
	long i = strtol(name + 7, &end, 10);
	if (i < 0 || i >= STREAMS_MAX)
		return false;
	snprintf(canonical, sizeof(canonical), CHUNKS_NAME_FMT, (int)i);
	return !strcmp(name, canonical) ||
	       (!strncmp(name, canonical, strlen(canonical)) && !strcmp(name + strlen(canonical), ".tmp"));
}

/* The names of a checkpoint that are not image files: crstream's, and
 * CRIU's own in plain image directories (stats-restore from restores by
 * crstream before it kept CRIU out of them). */
static bool is_own_name(const char *name)
{
	static const char *const own[] = {
		MANIFEST_NAME, MANIFEST_NAME ".tmp", "criu-dump.log", "stats-dump", "stats-restore",
		SIGNATURE_NAME, SIGNATURE_NAME ".tmp",
	};
	for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
		if (!strcmp(name, own[i]))
			return true;
	return is_chunk_list_name(name);
}

bool layout_owns_name(const struct manifest *m, const char *name)
{
	if (is_own_name(name))
		return true;
	const char *ext;
	int idx = stream_index(name, &ext);
	char plain[64];
	/* Encrypted streams are the codec's name + ".age". */
	size_t n = strlen(name);
	snprintf(plain, sizeof(plain), "%.*s", (int)(n > 4 && !strcmp(name + n - 4, ".age") ? n - 4 : n),
		 name);
	if (idx >= 0 && idx < STREAMS_MAX && n < sizeof(plain) && codec_by_filename(plain))
		return true;
	for (size_t i = 0; m && m->streams == 0 && i < m->nfiles; i++)
		if (!strcmp(name, m->files[i].name))
			return true;
	return false;
}

/* A plain image directory holds what its manifest lists and nothing else:
 * CRIU would read any file put next to them. */
static int check_plain(const struct layout *lay, const struct listing *l)
{
	/* Not as image files either: CRIU writes stats-restore where it
	 * reads the image from. */
	for (size_t i = 0; i < lay->m.nfiles; i++)
		if (is_own_name(lay->m.files[i].name))
			return err_set("%s: %s is listed as an image file", MANIFEST_NAME,
				       lay->m.files[i].name);
	for (size_t i = 0; i < l->n; i++)
		if (!layout_owns_name(&lay->m, l->e[i].key))
			return err_set("%s is in the image directory but not in its %s", l->e[i].key,
				       MANIFEST_NAME);
	return 0;
}

static int from_manifest(struct layout *lay, const char *json, const struct listing *l)
{
	if (manifest_parse(json, &lay->m) < 0)
		return -1;
	lay->have_manifest = true;
	if (!lay->m.complete)
		return err_set("the checkpoint is incomplete: its dump did not finish (%s)",
			       lay->m.error ? lay->m.error : "no reason recorded");
	lay->streams = lay->m.streams;
	if (lay->streams == 0) {
		snprintf(lay->kind, sizeof(lay->kind), "plain");
		lay->codec = codec_by_name("none");
		return check_plain(lay, l);
	}
	snprintf(lay->kind, sizeof(lay->kind), "crstream");
	lay->encrypted = !strcmp(lay->m.prot.encryption, "age");
	lay->codec = codec_by_name(lay->m.compression);
	if (!lay->codec)
		return err_set("%s: unknown compression \"%s\"", MANIFEST_NAME, lay->m.compression);
	return check_streams(lay, l);
}

static int from_names(struct layout *lay, const struct listing *l, const char *location)
{
	const char *ext;
	if (count_streams(l, &lay->streams, &ext) < 0)
		return -1;
	if (lay->streams == 0)
		return err_set("%s is not a checkpoint: no %s and no img-N streams", location,
			       MANIFEST_NAME);
	char first[64];
	snprintf(first, sizeof(first), "img-0%s", ext ? ext : "");
	/* Encrypted with age after compression: img-0.lz4.age. */
	size_t fl = strlen(first);
	if (fl > 4 && !strcmp(first + fl - 4, ".age")) {
		lay->encrypted = true;
		first[fl - 4] = '\0';
	}
	lay->codec = codec_by_filename(first);
	if (!lay->codec)
		return err_set("%s/%s: unknown compression extension \"%s\"", location, first, ext);
	for (int i = 0; i < lay->streams; i++) {
		char name[64];
		snprintf(name, sizeof(name), "img-%d%s", i, ext);
		const struct store_entry *e = find(l, name);
		if (!e)
			return err_set("%s: stream %s is missing (img-0..img-%d expected)", location,
				       name, lay->streams - 1);
		lay->stored_bytes += e->size;
	}
	snprintf(lay->kind, sizeof(lay->kind), "criu-image-streamer");
	return set_files(lay, ext);
}

int layout_detect(struct store *s, const char *location, struct layout *lay)
{
	return layout_detect_vetted(s, location, NULL, lay);
}

int layout_detect_vetted(struct store *s, const char *location, const struct layout_vet *vet,
			 struct layout *lay)
{
	memset(lay, 0, sizeof(*lay));
	struct listing l = {0};
	void *json = NULL;
	size_t len;
	/* The store's errors name the location already, from_names's too. */
	int rc = s->ops->list(s, "", collect, &l);
	if (rc == 0)
		rc = s->ops->get(s, MANIFEST_NAME, &json, &len);
	if (rc == 0 && vet)
		rc = vet->vet(vet->arg, json, len);
	if (rc == 0)
		rc = from_manifest(lay, json, &l) < 0 ? err_prefix("%s", location) : 0;
	else if (rc == 1 && vet)
		rc = err_set("%s: no %s: the trust policy (restore.trusted_keys) accepts only a "
			     "signed manifest", location, MANIFEST_NAME);
	else if (rc == 1)
		rc = from_names(lay, &l, location);
	free(json);
	free_listing(&l);
	if (rc < 0) {
		layout_free(lay);
		return -1;
	}
	return 0;
}

void layout_free(struct layout *lay)
{
	for (int i = 0; lay->files && lay->files[i]; i++)
		free(lay->files[i]);
	free(lay->files);
	manifest_free(&lay->m);
	memset(lay, 0, sizeof(*lay));
}
