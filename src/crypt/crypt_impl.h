/* Internals of the crypto plugin (src/crypt/, except crypt_load.c): the
 * primitives over OpenSSL 3's EVP interface, text encodings and key files.
 * Every function returns 0 / -1 with err_set() unless it says otherwise. */
#ifndef CRSTREAM_CRYPT_IMPL_H
#define CRSTREAM_CRYPT_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypt/crypt.h"

#define X25519_LEN 32
#define ED25519_LEN 32
#define ED25519_SIG_LEN 64
#define AEAD_TAG_LEN 16
#define AEAD_NONCE_LEN 12

/* ---- primitives (crypt_evp.c) ---- */

/* Overwrites n bytes in a way the compiler keeps. */
void wipe(void *p, size_t n);
/* wipe() then free(); p may be NULL. */
void wipe_free(void *p, size_t n);
int random_bytes(void *buf, size_t n);

int x25519_public(const uint8_t secret[X25519_LEN], uint8_t pub[X25519_LEN]);
/* X25519(secret, peer); refuses an all-zero result (a low-order peer). */
int x25519_shared(const uint8_t secret[X25519_LEN], const uint8_t peer[X25519_LEN],
		  uint8_t out[X25519_LEN]);

/* HKDF-SHA-256 (RFC 5869), 32 bytes of output. */
int hkdf_sha256(const uint8_t *ikm, size_t ikm_len, const uint8_t *salt, size_t salt_len,
		const char *info, uint8_t out[32]);
int hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t out[32]);
int sha256(const void *data, size_t len, uint8_t out[32]);
int sha512(const void *data, size_t len, uint8_t out[64]);

/* ChaCha20-Poly1305 (RFC 7539) with a context reused across calls. */
struct aead;
struct aead *aead_new(const uint8_t key[32]);
void aead_free(struct aead *a);
/* out gets len bytes of ciphertext and the tag (len + 16 bytes). */
int aead_seal(struct aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *in, size_t len,
	      uint8_t *out);
/* in is len bytes of ciphertext followed by the tag; out gets len bytes.
 * Returns -1 without a message when the tag does not match. */
int aead_open(struct aead *a, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *in, size_t len,
	      uint8_t *out);

/* Ed25519 from a 32-byte seed (RFC 8032). */
int ed25519_generate(uint8_t seed[ED25519_LEN], uint8_t pub[ED25519_LEN]);
int ed25519_public(const uint8_t seed[ED25519_LEN], uint8_t pub[ED25519_LEN]);
int ed25519_sign(const uint8_t seed[ED25519_LEN], const void *msg, size_t len,
		 uint8_t sig[ED25519_SIG_LEN]);
/* 1 if the signature is valid, 0 if not, -1 on error. */
int ed25519_verify(const uint8_t pub[ED25519_LEN], const void *msg, size_t len,
		   const uint8_t sig[ED25519_SIG_LEN]);

/* Constant-time comparison: 0 if equal. */
int ct_compare(const void *a, const void *b, size_t n);

/* ---- encodings (encoding.c) ---- */

/* Base64 with the standard alphabet (RFC 4648, section 4), with or without
 * '=' padding. The encoder writes b64_len(n) characters and a NUL. */
size_t b64_len(size_t n, bool pad);
void b64_encode(const uint8_t *in, size_t n, char *out, bool pad);
/* Strict: canonical encodings only (unused bits zero, padding exactly as
 * the encoder writes it, or none if !pad). Returns the decoded length, or
 * -1 without a message if the text is not such an encoding or does not
 * fit cap bytes. */
long b64_decode(const char *in, size_t len, uint8_t *out, size_t cap, bool pad);

/* Bech32 (BIP 173) without its length limit, as age uses it. The
 * encoder writes hrp in the case given, the data in the same case. */
int bech32_encode(const char *hrp, const uint8_t *data, size_t n, char *out, size_t size);
/* Decodes an all-lowercase or all-uppercase string; the human-readable
 * part goes to hrp in lowercase. Returns the data length or -1 (no
 * message). */
long bech32_decode(const char *s, char *hrp, size_t hrp_size, uint8_t *data, size_t cap);

/* Lowercase hex; out gets 2n characters and a NUL. */
void hex_encode(const uint8_t *in, size_t n, char *out);

/* ---- key files (keyfile.c) ---- */

/* Reads a small text file (at most 64 KiB) into a NUL-terminated buffer
 * to be released with wipe_free(buf, *len + 1). With `secret`, refuses a
 * file that is not a regular file owned by the caller without group or
 * other permissions. `what` names the file's role in messages. */
int keyfile_read(const char *path, bool secret, const char *what, char **buf, size_t *len);

/* Creates path with the given mode (umask not applied) and content,
 * fsync'd; never overwrites (O_EXCL). Removes the file on failure. */
int keyfile_create(const char *path, unsigned mode, const void *data, size_t len);

/* Splits text into lines (LF or CRLF), calling fn with each line without
 * its end (NUL-terminated in place), skipping blank lines and # comments.
 * fn's -1 stops the walk. */
int keyfile_lines(char *text, int (*fn)(void *arg, char *line, int lineno), void *arg);

/* ---- age header (age_header.c) ---- */

#define AGE_FILE_KEY_LEN 16
#define AGE_CHUNK ((size_t)64 << 10)
#define AGE_NONCE_LEN 16
/* Headers larger than this are refused (a stream's header is a few
 * hundred bytes; the format has no limit). */
#define AGE_HEADER_MAX ((size_t)64 << 10)
#define AGE_MAX_STANZAS 64

struct age_stanza {
	char *args[8];		/* point into the parsed buffer's copy */
	int nargs;
	uint8_t *body;
	size_t body_len;
};

struct age_header {
	struct age_stanza stanza[AGE_MAX_STANZAS];
	int nstanzas;
	size_t mac_covered;	/* header bytes the MAC covers: through "---" */
	size_t len;		/* the whole header, through the MAC line's LF */
	uint8_t mac[32];
	char *text;		/* private copy the args point into */
};

/* Parses an age v1 header at the start of buf. Returns 0 when a whole
 * header was parsed (h->len bytes), 1 when buf ends before the header
 * does (read more and call again), -1 when it is not a valid header. */
int age_header_parse(const uint8_t *buf, size_t len, struct age_header *h);
void age_header_free(struct age_header *h);

/* A header wrapping file_key for every recipient, MAC'd (malloc'd text). */
int age_header_make(const uint8_t file_key[AGE_FILE_KEY_LEN], const uint8_t (*recipients)[X25519_LEN],
		    size_t n, char **out, size_t *len);

/* Finds the stanza one of the identities opens and checks the header's
 * MAC; buf holds the raw header h was parsed from. */
int age_header_open(const struct age_header *h, const uint8_t *buf,
		    const uint8_t (*identities)[X25519_LEN], size_t n,
		    uint8_t file_key[AGE_FILE_KEY_LEN]);

/* HKDF-SHA-256(file key, salt = nonce, "payload"). */
int age_payload_key(const uint8_t file_key[AGE_FILE_KEY_LEN], const uint8_t nonce[AGE_NONCE_LEN],
		    uint8_t key[32]);

/* ---- the rest of the ops (for the ops table in plugin.c) ---- */

struct age_recipients *age_recipients_new(void);
int age_recipients_add(struct age_recipients *r, const char *spec);
size_t age_recipients_count(const struct age_recipients *r);
const char *age_recipient_text(const struct age_recipients *r, size_t i);
const uint8_t (*age_recipients_keys(const struct age_recipients *r))[X25519_LEN];
void age_recipients_free(struct age_recipients *r);
struct age_identities *age_identities_new(void);
int age_identities_add_file(struct age_identities *ids, const char *path);
size_t age_identities_count(const struct age_identities *ids);
const uint8_t (*age_identities_keys(const struct age_identities *ids))[X25519_LEN];
void age_identities_free(struct age_identities *ids);
int age_keygen(const char *path, char *recipient, size_t size);

struct writer *age_writer(struct writer *next, const struct age_recipients *r);
struct reader *age_reader(struct reader *next, const struct age_identities *ids);

int sshsig_keygen(const char *path, char *pub, size_t size);
int sshsig_key_check(const char *path, char *fp, size_t size);
char *sshsig_sign(const char *path, const char *fp, const void *msg, size_t len, size_t *siglen);
struct trusted_keys *sshsig_trusted_new(void);
int sshsig_trusted_add_file(struct trusted_keys *t, const char *path);
void sshsig_trusted_free(struct trusted_keys *t);
int sshsig_verify(const struct trusted_keys *t, const void *msg, size_t len, const char *sig,
		  size_t siglen, char *signer, size_t size);

struct writer *digest_writer(struct writer *next, struct chunk_digests *out);
struct reader *verify_reader(struct reader *next, const struct chunk_digests *expect);
char *digests_format(const struct chunk_digests *d, size_t *len);
int digests_parse(const char *text, size_t len, uint64_t chunk_size, uint64_t bytes,
		  struct chunk_digests *d);
int digest_hex(const void *buf, size_t len, char hex[DIGEST_HEX + 1]);

#endif
