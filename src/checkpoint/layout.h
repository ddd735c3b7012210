/* Recognising a checkpoint's layout before restoring or inspecting it. */
#ifndef CRSTREAM_CHECKPOINT_LAYOUT_H
#define CRSTREAM_CHECKPOINT_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoint/manifest.h"
#include "codec/codec.h"
#include "store/store.h"

struct layout {
	char kind[32];		/* "crstream", "plain", "criu-image-streamer" */
	bool have_manifest;
	struct manifest m;	/* when have_manifest */
	int streams;
	const struct codec *codec;
	char **files;		/* stream object names, index order, NULL-terminated */
	uint64_t stored_bytes;
	bool encrypted;		/* the streams are age files (img-N.ext.age) */
};

/* A restore's trust policy (checkpoint/protect.h): vet() sees the raw
 * manifest before it is parsed, and a checkpoint without a manifest is
 * refused instead of being recognised by its stream names. */
struct layout_vet {
	int (*vet)(void *arg, const char *json, size_t len);
	void *arg;
};

/* Reads the manifest (or, without one, the img-N names) and checks that
 * the streams are all there with the sizes recorded. A checkpoint whose
 * dump did not finish is refused here. Errors name the location. On
 * failure lay holds nothing (no layout_free needed, though it is
 * harmless). */
int layout_detect(struct store *s, const char *location, struct layout *lay);
/* The same under a trust policy (vet may be NULL: no policy). */
int layout_detect_vetted(struct store *s, const char *location, const struct layout_vet *vet,
			 struct layout *lay);
void layout_free(struct layout *lay);

/* Whether `name` (an object at the top of a checkpoint) is one of the
 * files a checkpoint is made of: its manifest (and the manifest's
 * temporary name), CRIU's logs and statistics, a stream img-N[.ext], or,
 * in a plain image directory, an image file its manifest m lists (m may
 * be NULL). What `rm` removes, and all a plain image directory may hold. */
bool layout_owns_name(const struct manifest *m, const char *name);

#endif
