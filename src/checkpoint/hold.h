/* Verify-first for restores under a trust policy: every stream is read
 * through its verifying reader, all streams at once (a thread each), into
 * an unlinked temporary file, before the restore starts CRIU. A checkpoint
 * damaged anywhere, even in its last chunk, is refused before CRIU has a
 * byte; the held bytes are the stored ones (compressed, and encrypted if
 * the checkpoint is), verified once, and decrypting and decoding them
 * still overlaps CRIU's work. The restore then reads the held copies
 * through a store of their own (held_store), so the layers above do not
 * change.
 *
 * A held copy lives in a file only this process can reach (O_TMPFILE):
 * what was verified is what is decoded, whoever can write the checkpoint. */
#ifndef CRSTREAM_CHECKPOINT_HOLD_H
#define CRSTREAM_CHECKPOINT_HOLD_H

#include <stdatomic.h>
#include <stdint.h>

#include "store/store.h"
#include "util/stream.h"

struct held;

/* Called from hold_streams' caller a few times a second while it waits:
 * bytes held so far and in all. */
struct hold_tick {
	void (*fn)(void *arg, uint64_t held, uint64_t total);
	void *arg;
};

/* Reads in[0..n) to their ends into unlinked files in $TMPDIR (else /tmp),
 * after checking that it has room for bytes[i] each (the signed sizes).
 * Closes every reader. 0 with *out set once all are held; -1 with the
 * first failure, prefixed with its stream's key, or "interrupted" once
 * *stop is set. keys[i] names stream i, in errors and in the held store.
 * tick may be NULL. */
int hold_streams(struct reader **in, const char *const *keys, const uint64_t *bytes, int n,
		 const atomic_bool *stop, const struct hold_tick *tick, struct held **out);

/* A store whose objects are the held copies: open_read(keys[i]) reads copy
 * i from its start. It only reads; it lives as long as h. */
struct store *held_store(struct held *h);

void held_free(struct held *h);

#endif
