/* age keys: X25519 recipients ("age1...", Bech32 with HRP "age") and
 * identities ("AGE-SECRET-KEY-1...", HRP "AGE-SECRET-KEY-"), in the files
 * age-keygen writes and `age -R` / `age -i` read. */
#include "crypt/crypt_impl.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RECIPIENT_HRP "age"
#define IDENTITY_HRP "AGE-SECRET-KEY-"
#define RECIPIENT_TEXT 80	/* "age1" + 52 data + 6 checksum characters, and some */
#define MAX_KEYS 256

struct age_recipients {
	uint8_t key[MAX_KEYS][X25519_LEN];
	char text[MAX_KEYS][RECIPIENT_TEXT];
	size_t n;
};

struct age_identities {
	uint8_t key[MAX_KEYS][X25519_LEN];
	size_t n;
};

struct age_recipients *age_recipients_new(void)
{
	struct age_recipients *r = calloc(1, sizeof(*r));
	if (!r)
		err_set("out of memory");
	return r;
}

static int add_recipient(struct age_recipients *r, const char *text)
{
	char hrp[16];
	uint8_t key[X25519_LEN + 1];
	if (!strncmp(text, "ssh-", 4))
		return err_set("\"%.20s...\": SSH recipients are not supported, use an age X25519 "
			       "recipient (age1..., from crstream keygen or age-keygen)", text);
	if (strncmp(text, "age1", 4) ||
	    bech32_decode(text, hrp, sizeof(hrp), key, sizeof(key)) != X25519_LEN ||
	    strcmp(hrp, RECIPIENT_HRP) || strlen(text) >= RECIPIENT_TEXT)
		return err_set("\"%s\" is not an age X25519 recipient (age1...)", text);
	for (size_t i = 0; i < r->n; i++)
		if (!memcmp(r->key[i], key, X25519_LEN))
			return 0;	/* the same key twice is one recipient */
	if (r->n == MAX_KEYS)
		return err_set("more than %d recipients", MAX_KEYS);
	memcpy(r->key[r->n], key, X25519_LEN);
	snprintf(r->text[r->n], RECIPIENT_TEXT, "%s", text);
	r->n++;
	return 0;
}

struct file_walk {
	const char *path;
	void *keys;
	int found;
};

static int recipient_line(void *arg, char *line, int lineno)
{
	struct file_walk *w = arg;
	if (add_recipient(w->keys, line) < 0)
		return err_prefix("%s:%d", w->path, lineno);
	w->found++;
	return 0;
}

int age_recipients_add(struct age_recipients *r, const char *spec)
{
	if (!strncmp(spec, "age1", 4) || !strncmp(spec, "ssh-", 4))
		return add_recipient(r, spec);
	char *text;
	size_t len;
	if (keyfile_read(spec, false, "recipients file", &text, &len) < 0)
		return -1;
	struct file_walk w = {.path = spec, .keys = r};
	int rc = keyfile_lines(text, recipient_line, &w);
	free(text);
	if (rc == 0 && w.found == 0)
		rc = err_set("recipients file %s lists no recipient", spec);
	return rc;
}

size_t age_recipients_count(const struct age_recipients *r)
{
	return r->n;
}

const char *age_recipient_text(const struct age_recipients *r, size_t i)
{
	return i < r->n ? r->text[i] : NULL;
}

const uint8_t (*age_recipients_keys(const struct age_recipients *r))[X25519_LEN]
{
	return (const uint8_t(*)[X25519_LEN])r->key;
}

void age_recipients_free(struct age_recipients *r)
{
	free(r);
}

struct age_identities *age_identities_new(void)
{
	struct age_identities *ids = calloc(1, sizeof(*ids));
	if (!ids)
		err_set("out of memory");
	return ids;
}

static int identity_line(void *arg, char *line, int lineno)
{
	struct file_walk *w = arg;
	struct age_identities *ids = w->keys;
	char hrp[32];
	uint8_t key[X25519_LEN + 1];
	long n = -1;
	if (!strncmp(line, "AGE-SECRET-KEY-1", 16))
		n = bech32_decode(line, hrp, sizeof(hrp), key, sizeof(key));
	/* Never the line itself in a message: it may be a key. */
	if (n != X25519_LEN || strcmp(hrp, "age-secret-key-"))
		n = err_set("%s:%d: not an age X25519 identity (AGE-SECRET-KEY-1...)", w->path,
			    lineno);
	else if (ids->n == MAX_KEYS)
		n = err_set("%s: more than %d identities", w->path, MAX_KEYS);
	else
		memcpy(ids->key[ids->n++], key, X25519_LEN);
	wipe(key, sizeof(key));
	wipe(line, strlen(line));
	if (n < 0)
		return -1;
	w->found++;
	return 0;
}

int age_identities_add_file(struct age_identities *ids, const char *path)
{
	char *text;
	size_t len;
	if (keyfile_read(path, true, "identity file", &text, &len) < 0)
		return -1;
	struct file_walk w = {.path = path, .keys = ids};
	int rc = keyfile_lines(text, identity_line, &w);
	wipe_free(text, len + 1);
	if (rc == 0 && w.found == 0)
		rc = err_set("identity file %s holds no identity", path);
	return rc;
}

size_t age_identities_count(const struct age_identities *ids)
{
	return ids->n;
}

const uint8_t (*age_identities_keys(const struct age_identities *ids))[X25519_LEN]
{
	return (const uint8_t(*)[X25519_LEN])ids->key;
}

void age_identities_free(struct age_identities *ids)
{
	wipe_free(ids, sizeof(*ids));
}

int age_keygen(const char *path, char *recipient, size_t size)
{
	uint8_t secret[X25519_LEN], pub[X25519_LEN];
	char secret_text[128], file[512], stamp[32];
	int rc = random_bytes(secret, sizeof(secret));
	if (rc == 0)
		rc = x25519_public(secret, pub);
	if (rc == 0)
		rc = bech32_encode(RECIPIENT_HRP, pub, sizeof(pub), recipient, size);
	if (rc == 0)
		rc = bech32_encode(IDENTITY_HRP, secret, sizeof(secret), secret_text,
				   sizeof(secret_text));
	if (rc == 0) {
		time_t t = time(NULL);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
		/* The layout age-keygen uses. */
		int n = snprintf(file, sizeof(file), "# created: %s\n# public key: %s\n%s\n", stamp,
				 recipient, secret_text);
		rc = keyfile_create(path, 0600, file, (size_t)n);
	}
	wipe(secret, sizeof(secret));
	wipe(secret_text, sizeof(secret_text));
	wipe(file, sizeof(file));
	return rc;
}
