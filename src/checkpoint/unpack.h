/* `crstream extract --path CKPT -D DIR`: a stored checkpoint's image files
 * into a new directory, as `criu dump` without streaming writes them —
 * decrypted, and under a trust policy verified chunk by chunk before any
 * of their bytes is written. */
#ifndef CRSTREAM_CHECKPOINT_UNPACK_H
#define CRSTREAM_CHECKPOINT_UNPACK_H

#include <stdint.h>

#include "store/store.h"

struct unpack_opts {
	const char *path;		/* the checkpoint */
	const char *dir;		/* the output directory, created (must not exist) */
	const struct store_options *store_opt;
	const char *identities;		/* as in restore_opts */
	const char *trusted_keys;
};

struct unpack_result {
	uint64_t files;
	uint64_t bytes;
	char trust[160];
};

/* On failure the output directory is removed again. */
int checkpoint_unpack(const struct unpack_opts *o, struct unpack_result *r);

#endif
