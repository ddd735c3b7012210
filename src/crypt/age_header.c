/* The age v1 header (age-encryption.org/v1, c2sp.org/age): the version
 * line, one recipient stanza per recipient wrapping the file key, and the
 * MAC line. Written from the specification.
 *
 *   age-encryption.org/v1
 *   -> X25519 <base64 ephemeral share>
 *   <base64 body, wrapped at 64 columns, last line shorter than 64>
 *   --- <base64 HMAC-SHA-256 of everything up to and including "---">
 *
 * The parser is strict (canonical base64, exact line shapes) and never
 * reads past len: it is fed untrusted bytes straight from storage. */
#include "crypt/crypt_impl.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGE_VERSION_LINE "age-encryption.org/v1\n"
#define AGE_VERSION_PREFIX "age-encryption.org/"
#define X25519_INFO "age-encryption.org/v1/X25519"
#define B64_COLUMNS 64
/* A stanza body larger than this is refused (an X25519 body is 32 bytes;
 * plugins' bodies are small too). */
#define AGE_BODY_MAX 4096

static bool is_vchar(uint8_t c)
{
	return c >= 0x21 && c <= 0x7e;
}

static bool is_b64char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* The line starting at pos: its length without the LF; 1 if there is no
 * LF before len (need more input), 0 otherwise. */
static int next_line(const uint8_t *buf, size_t len, size_t pos, size_t *line_len)
{
	const uint8_t *lf = memchr(buf + pos, '\n', len - pos);
	if (!lf)
		return 1;
	*line_len = (size_t)(lf - (buf + pos));
	return 0;
}

/* "-> arg arg..." into the stanza's args, pointing into h->text. */
static int parse_args(struct age_header *h, struct age_stanza *st, size_t pos, size_t n)
{
	char *line = h->text + pos + 3;
	size_t len = n - 3;
	for (size_t i = 0; i < len; i++)
		if (!is_vchar((uint8_t)line[i]) && line[i] != ' ')
			return err_set("age header: a stanza argument with a non-printable byte");
	line[len] = '\0';	/* the LF, in the private copy */
	for (char *p = line;;) {
		char *sp = strchr(p, ' ');
		if (sp == p || !*p)
			return err_set("age header: an empty stanza argument");
		if (st->nargs == (int)(sizeof(st->args) / sizeof(st->args[0])))
			return err_set("age header: a stanza with more than %d arguments", st->nargs);
		st->args[st->nargs++] = p;
		if (!sp)
			return 0;
		*sp = '\0';
		p = sp + 1;
	}
}

/* The body lines after a stanza's argument line: full 64-column lines,
 * then a shorter one (maybe empty). Advances *pos past them. */
static int parse_body(const uint8_t *buf, size_t len, size_t *pos, struct age_stanza *st)
{
	char b64[AGE_BODY_MAX / 3 * 4 + 8];
	size_t b64_n = 0;
	for (;;) {
		size_t n;
		if (next_line(buf, len, *pos, &n))
			return 1;
		if (n > B64_COLUMNS)
			return err_set("age header: a stanza body line longer than 64 columns");
		for (size_t i = 0; i < n; i++)
			if (!is_b64char(buf[*pos + i]))
				return err_set("age header: a stanza body that is not base64");
		if (b64_n + n > sizeof(b64) - 1)
			return err_set("age header: a stanza body larger than %d bytes", AGE_BODY_MAX);
		memcpy(b64 + b64_n, buf + *pos, n);
		b64_n += n;
		*pos += n + 1;
		if (n < B64_COLUMNS)
			break;
	}
	st->body = malloc(b64_n / 4 * 3 + 3);
	if (!st->body)
		return err_set("out of memory");
	long got = b64_decode(b64, b64_n, st->body, b64_n / 4 * 3 + 3, false);
	if (got < 0)
		return err_set("age header: a stanza body that is not canonical base64");
	st->body_len = (size_t)got;
	return 0;
}

static int parse_mac(const uint8_t *buf, size_t pos, size_t n, struct age_header *h)
{
	/* "--- " then 43 base64 characters: 32 bytes. */
	if (n != 4 + 43 || buf[pos + 3] != ' ')
		return err_set("age header: a malformed MAC line");
	if (b64_decode((const char *)buf + pos + 4, 43, h->mac, sizeof(h->mac), false) != 32)
		return err_set("age header: a MAC that is not canonical base64");
	h->mac_covered = pos + 3;
	h->len = pos + n + 1;
	return 0;
}

static int parse(const uint8_t *buf, size_t len, struct age_header *h)
{
	size_t vlen = strlen(AGE_VERSION_LINE);
	if (len < vlen)
		return memcmp(buf, AGE_VERSION_LINE, len) ? err_set("not an age file") : 1;
	if (memcmp(buf, AGE_VERSION_LINE, vlen)) {
		if (!memcmp(buf, AGE_VERSION_PREFIX, strlen(AGE_VERSION_PREFIX)))
			return err_set("age file of an unsupported version (this reads v1)");
		return err_set("not an age file (no \"age-encryption.org/v1\" line)");
	}
	size_t pos = vlen;
	for (;;) {
		size_t n;
		if (next_line(buf, len, pos, &n))
			return 1;
		if (n >= 3 && !memcmp(buf + pos, "---", 3)) {
			if (h->nstanzas == 0)
				return err_set("age header: no recipient stanza");
			return parse_mac(buf, pos, n, h);
		}
		if (n < 3 || memcmp(buf + pos, "-> ", 3))
			return err_set("age header: a line that is neither a stanza nor the MAC");
		if (h->nstanzas == AGE_MAX_STANZAS)
			return err_set("age header: more than %d recipient stanzas", AGE_MAX_STANZAS);
		struct age_stanza *st = &h->stanza[h->nstanzas++];
		if (parse_args(h, st, pos, n) < 0)
			return -1;
		pos += n + 1;
		int rc = parse_body(buf, len, &pos, st);
		if (rc)
			return rc;
	}
}

int age_header_parse(const uint8_t *buf, size_t len, struct age_header *h)
{
	memset(h, 0, sizeof(*h));
	if (len > AGE_HEADER_MAX)
		len = AGE_HEADER_MAX;
	h->text = malloc(len + 1);
	if (!h->text)
		return err_set("out of memory");
	memcpy(h->text, buf, len);
	h->text[len] = '\0';
	int rc = parse(buf, len, h);
	if (rc == 1 && len == AGE_HEADER_MAX)
		rc = err_set("age header larger than %zu bytes", AGE_HEADER_MAX);
	if (rc != 0)
		age_header_free(h);
	return rc;
}

void age_header_free(struct age_header *h)
{
	for (int i = 0; i < h->nstanzas; i++)
		free(h->stanza[i].body);
	free(h->text);
	memset(h, 0, sizeof(*h));
}

/* ---- X25519 stanzas ---- */

static const uint8_t zero_nonce[AEAD_NONCE_LEN];

static int wrap_key(const uint8_t shared[X25519_LEN], const uint8_t share[X25519_LEN],
		    const uint8_t recipient[X25519_LEN], uint8_t key[32])
{
	uint8_t salt[2 * X25519_LEN];
	memcpy(salt, share, X25519_LEN);
	memcpy(salt + X25519_LEN, recipient, X25519_LEN);
	return hkdf_sha256(shared, X25519_LEN, salt, sizeof(salt), X25519_INFO, key);
}

/* "-> X25519 <share>\n<body>\n" for one recipient. */
static int x25519_stanza(const uint8_t file_key[AGE_FILE_KEY_LEN],
			 const uint8_t recipient[X25519_LEN], char *out, size_t size)
{
	uint8_t eph[X25519_LEN], share[X25519_LEN], shared[X25519_LEN], key[32];
	uint8_t body[AGE_FILE_KEY_LEN + AEAD_TAG_LEN];
	struct aead *a = NULL;
	int rc = -1;
	if (random_bytes(eph, sizeof(eph)) < 0 || x25519_public(eph, share) < 0 ||
	    x25519_shared(eph, recipient, shared) < 0 || wrap_key(shared, share, recipient, key) < 0 ||
	    !(a = aead_new(key)) || aead_seal(a, zero_nonce, file_key, AGE_FILE_KEY_LEN, body) < 0)
		goto out;
	char share64[48], body64[48];
	b64_encode(share, sizeof(share), share64, false);
	b64_encode(body, sizeof(body), body64, false);
	rc = snprintf(out, size, "-> X25519 %s\n%s\n", share64, body64) < (int)size ? 0 : -1;
out:
	aead_free(a);
	wipe(eph, sizeof(eph));
	wipe(shared, sizeof(shared));
	wipe(key, sizeof(key));
	return rc;
}

static int header_mac(const uint8_t file_key[AGE_FILE_KEY_LEN], const void *text, size_t len,
		      uint8_t mac[32])
{
	uint8_t key[32];
	int rc = hkdf_sha256(file_key, AGE_FILE_KEY_LEN, NULL, 0, "header", key);
	if (rc == 0)
		rc = hmac_sha256(key, sizeof(key), text, len, mac);
	wipe(key, sizeof(key));
	return rc;
}

int age_header_make(const uint8_t file_key[AGE_FILE_KEY_LEN], const uint8_t (*recipients)[X25519_LEN],
		    size_t n, char **out, size_t *len)
{
	const size_t stanza_max = 128;
	size_t cap = strlen(AGE_VERSION_LINE) + n * stanza_max + 64;
	char *h = malloc(cap);
	if (!h)
		return err_set("out of memory");
	size_t pos = (size_t)snprintf(h, cap, "%s", AGE_VERSION_LINE);
	for (size_t i = 0; i < n; i++) {
		if (x25519_stanza(file_key, recipients[i], h + pos, stanza_max) < 0) {
			free(h);
			return err_prefix("age header");
		}
		pos += strlen(h + pos);
	}
	pos += (size_t)snprintf(h + pos, cap - pos, "---");
	uint8_t mac[32];
	if (header_mac(file_key, h, pos, mac) < 0) {
		free(h);
		return -1;
	}
	char mac64[48];
	b64_encode(mac, sizeof(mac), mac64, false);
	pos += (size_t)snprintf(h + pos, cap - pos, " %s\n", mac64);
	*out = h;
	*len = pos;
	return 0;
}

/* Tries every identity on one X25519 stanza: 1 and the file key if one
 * opens it, 0 if none does, -1 if the stanza is malformed. */
static int open_x25519(const struct age_stanza *st, const uint8_t (*ids)[X25519_LEN], size_t n,
		       uint8_t file_key[AGE_FILE_KEY_LEN])
{
	uint8_t share[X25519_LEN];
	if (st->nargs != 2 || b64_decode(st->args[1], strlen(st->args[1]), share, sizeof(share),
					 false) != X25519_LEN)
		return err_set("age header: a malformed X25519 stanza");
	/* The exact length first: no decryption attempt on anything else. */
	if (st->body_len != AGE_FILE_KEY_LEN + AEAD_TAG_LEN)
		return err_set("age header: an X25519 stanza body of %zu bytes", st->body_len);
	int found = 0;
	for (size_t i = 0; i < n && !found; i++) {
		uint8_t pub[X25519_LEN], shared[X25519_LEN], key[32];
		struct aead *a = NULL;
		int rc = x25519_public(ids[i], pub);
		if (rc == 0)
			rc = x25519_shared(ids[i], share, shared);
		if (rc == 0)
			rc = wrap_key(shared, share, pub, key);
		if (rc == 0 && !(a = aead_new(key)))
			rc = -1;
		if (rc == 0 && aead_open(a, zero_nonce, st->body, AGE_FILE_KEY_LEN, file_key) == 0)
			found = 1;
		aead_free(a);
		wipe(shared, sizeof(shared));
		wipe(key, sizeof(key));
		if (rc < 0)
			return -1;
	}
	return found;
}

int age_header_open(const struct age_header *h, const uint8_t *buf,
		    const uint8_t (*identities)[X25519_LEN], size_t n,
		    uint8_t file_key[AGE_FILE_KEY_LEN])
{
	int found = 0, x25519 = 0;
	for (int i = 0; i < h->nstanzas && !found; i++) {
		const struct age_stanza *st = &h->stanza[i];
		if (!strcmp(st->args[0], "scrypt"))
			return err_set("age file encrypted with a passphrase: crstream restores "
				       "files encrypted to X25519 recipients (age -r)");
		if (strcmp(st->args[0], "X25519"))
			continue;	/* another recipient type: not ours */
		x25519++;
		if ((found = open_x25519(st, identities, n, file_key)) < 0)
			return -1;
	}
	if (!found)
		return err_set("no identity matches: the file is encrypted to %d other X25519 "
			       "recipient%s (wrong --identity?)", x25519, x25519 == 1 ? "" : "s");
	uint8_t mac[32];
	int rc = header_mac(file_key, buf, h->mac_covered, mac);
	if (rc == 0 && ct_compare(mac, h->mac, sizeof(mac)))
		rc = err_set("age header: the MAC does not match (altered header)");
	if (rc < 0)
		wipe(file_key, AGE_FILE_KEY_LEN);
	return rc;
}

int age_payload_key(const uint8_t file_key[AGE_FILE_KEY_LEN], const uint8_t nonce[AGE_NONCE_LEN],
		    uint8_t key[32])
{
	return hkdf_sha256(file_key, AGE_FILE_KEY_LEN, nonce, AGE_NONCE_LEN, "payload", key);
}
