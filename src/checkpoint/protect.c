#include "checkpoint/protect.h"
#include "checkpoint/hold.h"
#include "crypt/crypt.h"
#include "util/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 64

struct protect {
	const struct crypt_ops *ops;
	struct stream_filters filters;
	/* dump */
	struct age_recipients *recipients;
	char sign_key[4096];
	char fingerprint[80];
	/* Per stream (each slot allocated on its own: filters hold them while
	 * the array grows): the dump's digest writers fill them, a restore's
	 * verifying readers check against them. */
	struct chunk_digests **digests;
	int ndigests;
	/* restore */
	struct age_identities *identities;
	struct trusted_keys *trusted;
	struct layout_vet vet;
	struct store *store;
	bool encrypted;
	bool verify;		/* a trust policy: chunks are checked */
	struct held *held;	/* verify-first: the verified copies, or NULL */
	char trust[160];
};

/* Calls fn on every comma-separated entry of list. */
static int each_entry(const char *list, int (*fn)(struct protect *p, const char *entry),
		      struct protect *p)
{
	char *copy = strdup(list), *save = NULL;
	if (!copy)
		return err_set("out of memory");
	int rc = 0;
	for (char *e = strtok_r(copy, ",", &save); e && rc == 0; e = strtok_r(NULL, ",", &save)) {
		while (*e == ' ' || *e == '\n' || *e == '\t')
			e++;
		size_t n = strlen(e);
		while (n && (e[n - 1] == ' ' || e[n - 1] == '\n' || e[n - 1] == '\t'))
			e[--n] = '\0';
		if (n)
			rc = fn(p, e);
	}
	free(copy);
	return rc;
}

static int load(struct protect *p, const char *what)
{
	if (!p->ops && !(p->ops = crypt_load(what)))
		return -1;
	return 0;
}

static struct protect *protect_alloc(void)
{
	struct protect *p = calloc(1, sizeof(*p));
	if (!p)
		err_set("out of memory");
	return p;
}

void protect_free(struct protect *p)
{
	if (!p)
		return;
	if (p->ops) {
		if (p->recipients)
			p->ops->recipients_free(p->recipients);
		if (p->identities)
			p->ops->identities_free(p->identities);
		if (p->trusted)
			p->ops->trusted_free(p->trusted);
	}
	for (int i = 0; i < p->ndigests; i++) {
		if (p->digests[i])
			chunk_digests_free(p->digests[i]);
		free(p->digests[i]);
	}
	free(p->digests);
	held_free(p->held);
	free(p);
}

bool protect_encrypts(const struct protect *p)
{
	return p && p->recipients;
}

bool protect_signs(const struct protect *p)
{
	return p && p->sign_key[0];
}

const struct stream_filters *protect_filters(struct protect *p)
{
	return p && p->filters.ctx ? &p->filters : NULL;
}

/* Stream index's digest slot, made on first use. */
static struct chunk_digests *digest_slot(struct protect *p, int index)
{
	if (index >= p->ndigests) {
		int n = index + 1 > 2 * p->ndigests ? index + 1 : 2 * p->ndigests;
		struct chunk_digests **d = realloc(p->digests, (size_t)n * sizeof(*d));
		if (!d) {
			err_set("out of memory");
			return NULL;
		}
		memset(d + p->ndigests, 0, (size_t)(n - p->ndigests) * sizeof(*d));
		p->digests = d;
		p->ndigests = n;
	}
	if (!p->digests[index] && !(p->digests[index] = calloc(1, sizeof(struct chunk_digests))))
		err_set("out of memory");
	return p->digests[index];
}

/* ---- dump ---- */

/* encoder -> age -> chunk digests -> (checksum -> store) */
static struct writer *wrap_writer(void *ctx, int index, struct writer *next)
{
	struct protect *p = ctx;
	struct writer *w = next;
	if (protect_signs(p)) {
		struct chunk_digests *d = digest_slot(p, index);
		struct writer *dw = d ? p->ops->digest_writer(w, d) : NULL;
		if (!dw) {
			writer_abort(w);
			return NULL;
		}
		w = dw;
	}
	if (p->recipients) {
		struct writer *aw = p->ops->age_writer(w, p->recipients);
		if (!aw) {
			writer_abort(w);
			return NULL;
		}
		w = aw;
	}
	return w;
}

static int add_recipient(struct protect *p, const char *entry)
{
	return p->ops->recipients_add(p->recipients, entry);
}

int protect_dump_new(const char *recipients, const char *sign_key, struct protect **out)
{
	*out = NULL;
	if (!*recipients && !*sign_key)
		return 0;
	struct protect *p = protect_alloc();
	if (!p || load(p, *recipients ? "encryption (--recipient)" : "signing (--sign-key)") < 0)
		goto fail;
	if (*recipients) {
		if (!(p->recipients = p->ops->recipients_new()) ||
		    each_entry(recipients, add_recipient, p) < 0)
			goto fail;
		if (p->ops->recipients_count(p->recipients) == 0) {
			err_set("checkpoint.recipients lists no recipient");
			goto fail;
		}
	}
	if (*sign_key) {
		if (snprintf(p->sign_key, sizeof(p->sign_key), "%s", sign_key) >= (int)sizeof(p->sign_key)) {
			err_set("signing key path too long");
			goto fail;
		}
		if (p->ops->sign_key_check(sign_key, p->fingerprint, sizeof(p->fingerprint)) < 0)
			goto fail;
	}
	p->filters = (struct stream_filters){.wrap_writer = wrap_writer,
					     .suffix = p->recipients ? AGE_SUFFIX : "",
					     .ctx = p};
	*out = p;
	return 0;
fail:
	protect_free(p);
	return -1;
}

int protect_describe(const struct protect *p, struct manifest *m)
{
	if (!p)
		return 0;
	struct manifest_protection *mp = &m->prot;
	if (p->recipients) {
		snprintf(mp->encryption, sizeof(mp->encryption), "age");
		size_t n = p->ops->recipients_count(p->recipients);
		if (!(mp->recipients = calloc(n + 1, sizeof(char *))))
			return err_set("out of memory");
		for (size_t i = 0; i < n; i++)
			if (!(mp->recipients[i] = strdup(p->ops->recipient_text(p->recipients, i))))
				return err_set("out of memory");
	}
	if (protect_signs(p)) {
		snprintf(mp->digest_algorithm, sizeof(mp->digest_algorithm), "%s", DIGEST_ALGO);
		mp->chunk_size = DIGEST_CHUNK;
	}
	return 0;
}

int protect_dump_streams(struct protect *p, struct store *store, const char *prefix,
			 struct manifest *m)
{
	if (!protect_signs(p))
		return 0;
	for (int i = 0; i < m->streams; i++) {
		struct manifest_stream *ms = &m->stream[i];
		struct chunk_digests *d = i < p->ndigests ? p->digests[i] : NULL;
		if (!d || d->bytes != ms->stored_bytes)
			return err_set("%s: chunk digests cover %llu of %llu bytes", ms->file,
				       (unsigned long long)(d ? d->bytes : 0),
				       (unsigned long long)ms->stored_bytes);
		char key[4200];
		size_t len;
		snprintf(ms->chunk_digests, sizeof(ms->chunk_digests), CHUNKS_NAME_FMT, i);
		snprintf(key, sizeof(key), "%s%s", prefix, ms->chunk_digests);
		char *text = p->ops->digests_format(d, &len);
		int rc = text ? p->ops->digest_hex(text, len, ms->digest) : -1;
		if (rc == 0)
			rc = store->ops->put(store, key, text, len);
		free(text);
		if (rc < 0)
			return err_prefix("%s", ms->chunk_digests);
	}
	return 0;
}

int protect_sign(struct protect *p, struct store *store, const char *prefix, const char *json)
{
	if (!protect_signs(p))
		return 0;
	size_t siglen;
	char key[4200];
	char *sig = p->ops->sign(p->sign_key, p->fingerprint, json, strlen(json), &siglen);
	if (!sig)
		return err_prefix("signing the manifest");
	snprintf(key, sizeof(key), "%s%s", prefix, SIGNATURE_NAME);
	int rc = store->ops->put(store, key, sig, siglen);
	free(sig);
	return rc < 0 ? err_prefix("writing %s", SIGNATURE_NAME) : 0;
}

void protect_discard(struct protect *p, struct store *store, const char *prefix, int streams)
{
	if (!protect_signs(p))
		return;
	char key[4200];
	for (int i = 0; i < streams; i++) {
		snprintf(key, sizeof(key), "%s" CHUNKS_NAME_FMT, prefix, i);
		store->ops->remove(store, key);
	}
	snprintf(key, sizeof(key), "%s%s", prefix, SIGNATURE_NAME);
	store->ops->remove(store, key);
}

/* ---- restore ---- */

/* (checksum -> store) -> verify chunks -> age -> decoder */
static struct reader *wrap_reader(void *ctx, int index, struct reader *next)
{
	struct protect *p = ctx;
	struct reader *r = next;
	/* Held copies were verified on their way in. */
	if (p->verify && !p->held) {
		struct reader *vr = index < p->ndigests && p->digests[index]
					    ? p->ops->verify_reader(r, p->digests[index])
					    : NULL;
		if (!vr) {
			reader_close(r);
			return NULL;
		}
		r = vr;
	}
	if (p->encrypted) {
		struct reader *ar = p->ops->age_reader(r, p->identities);
		if (!ar) {
			reader_close(r);
			return NULL;
		}
		r = ar;
	}
	return r;
}

static int add_identity(struct protect *p, const char *entry)
{
	return p->ops->identities_add_file(p->identities, entry);
}

static int add_trusted(struct protect *p, const char *entry)
{
	return p->ops->trusted_add_file(p->trusted, entry);
}

int protect_restore_new(const char *identities, const char *trusted, struct protect **out)
{
	*out = NULL;
	if (!*identities && !*trusted)
		return 0;
	struct protect *p = protect_alloc();
	if (!p || load(p, *identities ? "decryption (--identity)" : "verification (--trusted-key)") < 0)
		goto fail;
	if (*identities && (!(p->identities = p->ops->identities_new()) ||
			    each_entry(identities, add_identity, p) < 0))
		goto fail;
	if (*trusted && (!(p->trusted = p->ops->trusted_new()) ||
			 each_entry(trusted, add_trusted, p) < 0))
		goto fail;
	*out = p;
	return 0;
fail:
	protect_free(p);
	return -1;
}

static int fetch(struct store *store, const char *key, void **buf, size_t *len, const char *why)
{
	int rc = store->ops->get(store, key, buf, len);
	if (rc == 1)
		return err_set("no %s: %s", key, why);
	return rc < 0 ? err_prefix("%s", key) : 0;
}

/* The policy's check of the raw manifest: a signature by a trusted key. */
static int vet_manifest(void *arg, const char *json, size_t len)
{
	struct protect *p = arg;
	void *sig = NULL;
	size_t siglen;
	char signer[80];
	if (fetch(p->store, SIGNATURE_NAME, &sig, &siglen,
		  "unsigned checkpoint, and the trust policy (restore.trusted_keys) requires a "
		  "signature") < 0)
		return -1;
	int rc = p->ops->verify(p->trusted, json, len, sig, siglen, signer, sizeof(signer));
	free(sig);
	if (rc < 0)
		return err_prefix("%s", SIGNATURE_NAME);
	snprintf(p->trust, sizeof(p->trust), "signature verified (%s)", signer);
	return 0;
}

const struct layout_vet *protect_vet(struct protect *p, struct store *store)
{
	if (!p || !p->trusted)
		return NULL;
	p->store = store;
	p->vet = (struct layout_vet){.vet = vet_manifest, .arg = p};
	return &p->vet;
}

/* Fetches stream i's chunk list and checks it against the manifest. */
static int load_chunk_list(struct protect *p, struct store *store, const struct manifest *m, int i)
{
	const struct manifest_stream *ms = &m->stream[i];
	if (!ms->chunk_digests[0])
		return err_set("%s: no chunk digests in the signed manifest", ms->file);
	void *text = NULL;
	size_t len;
	char hex[DIGEST_HEX + 1];
	struct chunk_digests *d = digest_slot(p, i);
	if (!d || fetch(store, ms->chunk_digests, &text, &len, "a chunk list the manifest names") < 0)
		return -1;
	int rc = p->ops->digest_hex(text, len, hex);
	if (rc == 0 && strcmp(hex, ms->digest))
		rc = err_set("%s: its SHA-256 is not the one in the signed manifest (altered)",
			     ms->chunk_digests);
	if (rc == 0 && p->ops->digests_parse(text, len, m->prot.chunk_size, ms->stored_bytes, d) < 0)
		rc = err_prefix("%s", ms->chunk_digests);
	free(text);
	return rc;
}

static int check_policy(struct protect *p, struct store *store, const struct layout *lay)
{
	const struct manifest *m = &lay->m;
	if (lay->streams == 0)
		return err_set("a plain image directory (--streams 0) carries no chunk digests: the "
			       "trust policy cannot verify it");
	if (strcmp(m->prot.digest_algorithm, DIGEST_ALGO))
		return err_set("%s: digest_algorithm \"%s\" (this crstream verifies \"%s\")",
			       MANIFEST_NAME, m->prot.digest_algorithm, DIGEST_ALGO);
	for (int i = 0; i < lay->streams; i++)
		if (load_chunk_list(p, store, m, i) < 0)
			return -1;
	p->verify = true;
	return 0;
}

/* Without a policy: say whether there is a signature at all. */
static void note_unchecked(struct protect *p, struct store *store, const struct layout *lay)
{
	void *sig = NULL;
	size_t len;
	int rc = lay->have_manifest ? store->ops->get(store, SIGNATURE_NAME, &sig, &len) : 1;
	free(sig);
	if (p)
		snprintf(p->trust, sizeof(p->trust), "%s",
			 rc == 0 ? "signed, signature not checked (no trusted keys)"
				 : "unsigned checkpoint");
}

int protect_restore_check(struct protect **pp, struct store *store, const struct layout *lay)
{
	struct protect *p = *pp;
	if (lay->encrypted) {
		if (!p || !p->identities)
			return err_set("the checkpoint is encrypted (age): give the identity to "
				       "decrypt it (--identity FILE or restore.identities)");
		p->encrypted = true;
	}
	if (p && p->trusted) {
		if (check_policy(p, store, lay) < 0)
			return -1;
	} else {
		if (!p && !(p = *pp = protect_alloc()))
			return -1;
		note_unchecked(p, store, lay);
	}
	if (p->encrypted || p->verify)
		p->filters = (struct stream_filters){.wrap_reader = wrap_reader, .ctx = p};
	return 0;
}

int protect_open_checkpoint(struct store *store, const char *path, struct protect **pp,
			    struct layout *lay)
{
	if (layout_detect_vetted(store, path, protect_vet(*pp, store), lay) < 0 ||
	    protect_restore_check(pp, store, lay) < 0)
		return err_prefix("%s", path);
	return 0;
}

bool protect_verifies(const struct protect *p)
{
	return p && p->verify;
}

int protect_hold_verified(struct protect *p, struct store *store, const struct layout *lay,
			  const atomic_bool *stop, const struct hold_tick *tick)
{
	if (!protect_verifies(p) || p->held)
		return 0;
	int n = lay->streams;
	struct reader **in = calloc((size_t)n, sizeof(*in));
	uint64_t *bytes = calloc((size_t)n, sizeof(*bytes));
	int rc = in && bytes ? 0 : err_set("out of memory");
	for (int i = 0; i < n && rc == 0; i++) {
		uint64_t size;
		struct reader *obj = store->ops->open_read(store, lay->files[i], &size);
		if (!obj || !(in[i] = p->ops->verify_reader(obj, p->digests[i]))) {
			if (obj)
				reader_close(obj);
			rc = err_prefix("%s", lay->files[i]);
		}
		bytes[i] = p->digests[i]->bytes;
	}
	if (rc == 0)
		rc = hold_streams(in, (const char *const *)lay->files, bytes, n, stop, tick,
				  &p->held);
	else
		for (int i = 0; i < n; i++)
			reader_close(in ? in[i] : NULL);
	free(in);
	free(bytes);
	return rc;
}

struct store *protect_store(struct protect *p, struct store *store)
{
	return p && p->held ? held_store(p->held) : store;
}

void protect_restore_started(struct protect *p)
{
	if (p && p->identities) {
		p->ops->identities_free(p->identities);
		p->identities = NULL;
	}
}

const char *protect_trust(const struct protect *p)
{
	return p && p->trust[0] ? p->trust : "unsigned checkpoint";
}

/* ---- front ends ---- */

void protect_summary(const struct protect *p, char *buf, size_t size)
{
	size_t n = 0;
	buf[0] = '\0';
	if (!p)
		return;
	if (p->recipients)
		n += (size_t)snprintf(buf + n, size - n, "streams encrypted with age to %zu recipient%s",
				      p->ops->recipients_count(p->recipients),
				      p->ops->recipients_count(p->recipients) == 1 ? "" : "s");
	if (protect_signs(p) && n < size)
		n += (size_t)snprintf(buf + n, size - n, "%smanifests signed by %s", n ? "; " : "",
				      p->fingerprint);
	if (p->identities && n < size)
		n += (size_t)snprintf(buf + n, size - n, "%sage identities loaded", n ? "; " : "");
	if (p->trusted && n < size)
		snprintf(buf + n, size - n, "%strust policy: only signed checkpoints are restored",
			 n ? "; " : "");
}

int protect_inspect(struct store *store, const char *trusted, const char *json, size_t len,
		    char *out, size_t size)
{
	void *sig = NULL;
	size_t siglen;
	int rc = store->ops->get(store, SIGNATURE_NAME, &sig, &siglen);
	if (rc < 0)
		return -1;
	if (rc == 1) {
		snprintf(out, size, "unsigned checkpoint");
		return 0;
	}
	struct protect *p = NULL;
	if (!*trusted) {
		snprintf(out, size, "signed (%s), not checked: no restore.trusted_keys", SIGNATURE_NAME);
		free(sig);
		return 0;
	}
	rc = protect_restore_new("", trusted, &p);
	char signer[80];
	if (rc == 0 && p->ops->verify(p->trusted, json, len, sig, siglen, signer, sizeof(signer)) == 0)
		snprintf(out, size, "signature verified (%s)", signer);
	else if (rc == 0)
		snprintf(out, size, "REFUSED by the trust policy: %s", err_msg());
	free(sig);
	protect_free(p);
	return rc;
}
