/* Trusted checkpoints, as the checkpoint layer uses them: which filters
 * go on every stream, what goes into the manifest, and what a restore
 * checks before CRIU starts. The cryptography itself is in src/crypt/.
 *
 * A dump with recipients writes every stream as an age file
 * (img-N.ext.age: compressed, then encrypted). A dump with a signing key
 * also writes, per stream, chunks-N.sha256 (the SHA-256 of every 4 MiB of
 * stored bytes, one hex digest a line), puts each list's SHA-256 into the
 * manifest, and signs the final manifest into manifest.json.sig (SSHSIG).
 *
 * A restore decrypts with its identities. With trusted keys (a trust
 * policy) it refuses, before CRIU starts, a checkpoint without manifest,
 * unsigned, signed by another key, or whose manifest or chunk lists do not
 * verify; and every chunk of stored bytes is checked against its signed
 * digest before any of it goes further (decryption, decoder, CRIU). */
#ifndef CRSTREAM_CHECKPOINT_PROTECT_H
#define CRSTREAM_CHECKPOINT_PROTECT_H

#include <stdatomic.h>
#include <stdbool.h>

#include "checkpoint/hold.h"
#include "checkpoint/layout.h"
#include "checkpoint/manifest.h"
#include "checkpoint/streams.h"
#include "store/store.h"

struct protect;

/* ---- dump ---- */

/* recipients: age1... recipients and recipients files, comma-separated
 * (checkpoint.recipients); sign_key: a key file (checkpoint.sign_key).
 * Both may be empty; *out is NULL when neither is given. Keys are checked
 * here (a wrong file fails the dump before CRIU starts). */
int protect_dump_new(const char *recipients, const char *sign_key, struct protect **out);

/* What the manifest says about the protection (from the stub on). */
int protect_describe(const struct protect *p, struct manifest *m);

/* The filters for every stream; NULL when there are none. */
const struct stream_filters *protect_filters(struct protect *p);

/* After the streams are complete: stores each stream's chunk list and puts
 * its name and digest into m->stream[i] (signing dumps only). */
int protect_dump_streams(struct protect *p, struct store *store, const char *prefix,
			 struct manifest *m);

/* Signs the manifest text into prefix + manifest.json.sig (signing dumps
 * only; a no-op otherwise). */
int protect_sign(struct protect *p, struct store *store, const char *prefix, const char *json);

/* After a failed dump: removes what protect_dump_streams/protect_sign
 * stored. */
void protect_discard(struct protect *p, struct store *store, const char *prefix, int streams);

bool protect_encrypts(const struct protect *p);
bool protect_signs(const struct protect *p);

/* ---- restore ---- */

/* identities: age identity files (restore.identities); trusted: OpenSSH
 * .pub files (restore.trusted_keys); comma-separated, maybe empty. *out
 * is NULL when both are empty. */
int protect_restore_new(const char *identities, const char *trusted, struct protect **out);

/* The trust policy's manifest check for layout_detect_vetted(); NULL
 * without a policy. The store is the checkpoint's (for the signature). */
const struct layout_vet *protect_vet(struct protect *p, struct store *store);

/* After layout detection, before the streams start: an encrypted
 * checkpoint needs identities; under a policy the checkpoint must carry
 * chunk digests, whose lists are fetched and checked here. Records
 * whether the checkpoint is signed (for protect_trust). *pp may be NULL
 * and stays so unless something needs the plugin. */
int protect_restore_check(struct protect **pp, struct store *store, const struct layout *lay);

/* Both of the above: detects the layout of the checkpoint at path (in
 * store) under p's policy and checks it; errors are prefixed with path. */
int protect_open_checkpoint(struct store *store, const char *path, struct protect **pp,
			    struct layout *lay);

/* Under a trust policy (after protect_restore_check): whether chunks are
 * verified at all. */
bool protect_verifies(const struct protect *p);

/* Under a trust policy (else nothing to do): reads every stream through
 * its verifying reader into a private copy (checkpoint/hold.h), all at
 * once; -1 with the first failing stream's reason, or "interrupted" once
 * *stop is set. After it, protect_store() gives the copies' store. */
int protect_hold_verified(struct protect *p, struct store *store, const struct layout *lay,
			  const atomic_bool *stop, const struct hold_tick *tick);

/* The store the streams are to be read from: the held copies after
 * protect_hold_verified(), else store. */
struct store *protect_store(struct protect *p, struct store *store);

/* Every stream has opened its age header: the identities are wiped. */
void protect_restore_started(struct protect *p);

/* For the restore's output: "signature verified (SHA256:...)", "signed,
 * signature not checked (no trusted keys)" or "unsigned checkpoint". */
const char *protect_trust(const struct protect *p);

/* ---- front ends ---- */

/* One line on the keys p holds (no key material), for `crstream check`. */
void protect_summary(const struct protect *p, char *buf, size_t size);

/* For `crstream inspect`: the signature status of a manifest (json, len)
 * in store, checked against trusted (comma-separated .pub files) when not
 * empty. Returns -1 only when the trusted keys cannot be loaded. */
int protect_inspect(struct store *store, const char *trusted, const char *json, size_t len,
		    char *out, size_t size);

void protect_free(struct protect *p);

#endif
