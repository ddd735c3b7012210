/* Trusted checkpoints: encryption at rest in the age format and Ed25519
 * signatures in OpenSSH's SSHSIG format, both checkable with standard
 * tools (`age -d`, `ssh-keygen -Y verify`).
 *
 * Like the codecs, the cryptography is a set of writer/reader filters
 * (util/stream.h), stacked by the checkpoint layer between the codec and
 * the store:
 *
 *   dump:    encoder -> age_writer -> digest_writer -> checksum -> store
 *   restore: store -> checksum -> verify_reader -> age_reader -> decoder
 *
 * It lives in a plugin, crstream-crypt.so (libcrypto alone costs a process
 * ~1.4 MB of RSS at startup, two thirds of a local dump's), loaded by
 * crypt_load() when a command uses a key. Everything the rest of crstream
 * calls is in struct crypt_ops.
 *
 * Keys are secrets: identity and signing-key files must be private (no
 * group/other permissions) and owned by the caller, else they are refused;
 * key material is wiped from memory as soon as it has been used and never
 * appears in messages. */
#ifndef CRSTREAM_CRYPT_H
#define CRSTREAM_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "util/stream.h"

#define CRYPT_PLUGIN "crstream-crypt.so"
/* An encrypted stream's object name ends with this ("img-0.lz4.age"). */
#define AGE_SUFFIX ".age"
/* The digest of stored bytes a signed manifest carries. SHA-256 runs at
 * 1.6 GB/s per core here with the SHA extensions, BLAKE2b-512 at 1.1 GB/s
 * (bench/crypto-speed). */
#define DIGEST_ALGO "sha256"
#define DIGEST_LEN 32
#define DIGEST_HEX (2 * DIGEST_LEN)
/* Stored bytes per chunk digest: a restore holds one chunk per stream
 * while it verifies it; 1 TiB of checkpoint needs 262,144 digests (16 MiB
 * as text). */
#define DIGEST_CHUNK ((uint64_t)4 << 20)
/* The SSHSIG namespace of a manifest signature (ssh-keygen -Y ... -n). */
#define SIGNATURE_NAMESPACE "crstream"

struct age_recipients;	/* X25519 public keys a dump encrypts to */
struct age_identities;	/* X25519 secret keys a restore decrypts with */
struct trusted_keys;	/* Ed25519 public keys a restore accepts signatures of */

/* SHA-256 of each DIGEST_CHUNK of a stream's stored bytes (the last chunk
 * may be shorter); what the signed manifest covers, through the digest
 * of its text form. */
struct chunk_digests {
	uint64_t chunk_size;
	uint64_t bytes;		/* the stream's length */
	uint64_t count;		/* ceil(bytes / chunk_size) */
	unsigned char (*digest)[DIGEST_LEN];
};

struct crypt_ops {
	/* ---- age keys ---- */
	struct age_recipients *(*recipients_new)(void);
	/* Adds "age1..." or, for anything else, every recipient in the file
	 * of that name (one a line, # comments), as `age -R` reads it. */
	int (*recipients_add)(struct age_recipients *r, const char *spec);
	size_t (*recipients_count)(const struct age_recipients *r);
	/* The i-th recipient as "age1..." (for the manifest). */
	const char *(*recipient_text)(const struct age_recipients *r, size_t i);
	void (*recipients_free)(struct age_recipients *r);

	struct age_identities *(*identities_new)(void);
	/* Adds the identities of an age identity file (AGE-SECRET-KEY-1...,
	 * as age-keygen writes it); refused unless private and ours. */
	int (*identities_add_file)(struct age_identities *ids, const char *path);
	/* Wipes the keys. */
	void (*identities_free)(struct age_identities *ids);

	/* A new identity file at path (0600, never overwriting); its
	 * recipient "age1..." into recipient. */
	int (*keygen_age)(const char *path, char *recipient, size_t size);

	/* ---- signatures ---- */
	/* A new Ed25519 key: path (OpenSSH private key format, 0600) and
	 * path.pub ("ssh-ed25519 AAAA... crstream"), neither overwritten;
	 * the public line into pub. */
	int (*keygen_sign)(const char *path, char *pub, size_t size);
	/* Loads the signing key (an unencrypted OpenSSH ssh-ed25519 private
	 * key; refused unless private and ours) to check it, and puts its
	 * fingerprint ("SHA256:...") into fp. The key is wiped again. */
	int (*sign_key_check)(const char *path, char *fp, size_t size);
	/* The armored SSHSIG signature of msg by the key in path, whose
	 * fingerprint must still be fp (malloc'd, *len bytes). The key is
	 * loaded for this call only. */
	char *(*sign)(const char *path, const char *fp, const void *msg, size_t len, size_t *siglen);

	struct trusted_keys *(*trusted_new)(void);
	/* Adds the ssh-ed25519 public keys of an OpenSSH .pub file. */
	int (*trusted_add_file)(struct trusted_keys *t, const char *path);
	void (*trusted_free)(struct trusted_keys *t);
	/* Checks an armored SSHSIG signature of msg: namespace, a valid
	 * Ed25519 signature, and a signer among t. The signer's fingerprint
	 * goes into signer; -1 with the reason otherwise. */
	int (*verify)(const struct trusted_keys *t, const void *msg, size_t len, const char *sig,
		      size_t siglen, char *signer, size_t size);

	/* ---- filters ---- */
	/* Encrypts what is written into an age file written to next. On
	 * failure NULL, and next is still the caller's. */
	struct writer *(*age_writer)(struct writer *next, const struct age_recipients *r);
	/* Decrypts the age file read from next. Reads and opens the header
	 * before returning (so a wrong identity or a damaged header fails
	 * here); ids are not needed afterwards. NULL on failure (next still
	 * the caller's). */
	struct reader *(*age_reader)(struct reader *next, const struct age_identities *ids);
	/* Records the digest of every chunk of what goes to next into *out
	 * (filled at close, before next is closed). */
	struct writer *(*digest_writer)(struct writer *next, struct chunk_digests *out);
	/* Reads next a whole chunk at a time and returns a chunk's bytes only
	 * once its digest matched `expect` (which must outlive the reader); a
	 * stream shorter or longer than expect->bytes is an error. */
	struct reader *(*verify_reader)(struct reader *next, const struct chunk_digests *expect);

	/* ---- chunk digest lists ---- */
	/* Text form: one lowercase hex digest per line (malloc'd). */
	char *(*digests_format)(const struct chunk_digests *d, size_t *len);
	/* Parses the text form of a stream of `bytes` bytes in chunks of
	 * chunk_size; the count must match. */
	int (*digests_parse)(const char *text, size_t len, uint64_t chunk_size, uint64_t bytes,
			     struct chunk_digests *d);
	/* Lowercase hex SHA-256 of buf. */
	int (*digest_hex)(const void *buf, size_t len, char hex[DIGEST_HEX + 1]);
};

/* The plugin's ops, loading it on first use; NULL (error set) if it
 * cannot be loaded. `what` says what needs it, for the message. */
const struct crypt_ops *crypt_load(const char *what);

static inline void chunk_digests_free(struct chunk_digests *d)
{
	free(d->digest);
	d->digest = NULL;
	d->count = 0;
}

#endif
