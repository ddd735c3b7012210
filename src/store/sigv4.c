#include "store/sigv4.h"
#include "store/s3_str.h"
#include "util/err.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char hexdig[] = "0123456789abcdef";

static void to_hex(const unsigned char *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdig[d[i] >> 4];
		out[2 * i + 1] = hexdig[d[i] & 15];
	}
	out[2 * n] = '\0';
}

int sigv4_sha256_hex(const void *data, size_t len, char out[SIGV4_HEX])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	if (!SHA256(data, len, md))
		return err_set("SHA-256 failed (OpenSSL)");
	to_hex(md, sizeof(md), out);
	return 0;
}

static int hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int olen = 0;
	if (!HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &olen) ||
	    olen != 32)
		return err_set("HMAC-SHA256 failed (OpenSSL)");
	return 0;
}

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

char *sigv4_uri_encode(const char *s, size_t len, bool keep_slash)
{
	struct sbuf b = {0};
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			sbuf_add(&b, (const char *)&c, 1);
		} else {
			char e[3] = {'%', "0123456789ABCDEF"[c >> 4], "0123456789ABCDEF"[c & 15]};
			sbuf_add(&b, e, 3);
		}
	}
	return sbuf_take(&b);
}

struct enc_pair {
	char *name;
	char *value;
};

static int cmp_pair(const void *a, const void *b)
{
	const struct enc_pair *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

char *sigv4_canonical_query(const struct sigv4_param *p, size_t n)
{
	struct enc_pair *pairs = calloc(n ? n : 1, sizeof(*pairs));
	struct sbuf b = {0};
	char *out = NULL;
	if (!pairs) {
		err_set("out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *v = p[i].value ? p[i].value : "";
		pairs[i].name = sigv4_uri_encode(p[i].name, strlen(p[i].name), false);
		pairs[i].value = sigv4_uri_encode(v, strlen(v), false);
		if (!pairs[i].name || !pairs[i].value)
			goto out;
	}
	/* Sorted by encoded name (byte order), then value, per SigV4. */
	qsort(pairs, n, sizeof(*pairs), cmp_pair);
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&b, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
	out = sbuf_take(&b);
out:
	for (size_t i = 0; i < n; i++) {
		free(pairs[i].name);
		free(pairs[i].value);
	}
	free(pairs);
	sbuf_free(&b);
	return out;
}

void sigv4_amz_date(long long t, char out[SIGV4_AMZ_DATE])
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!gmtime_r(&tt, &tm) || !strftime(out, SIGV4_AMZ_DATE, "%Y%m%dT%H%M%SZ", &tm))
		strcpy(out, "19700101T000000Z");
}

struct canon_header {
	char *name;
	const char *value;
};

static int cmp_header(const void *a, const void *b)
{
	return strcmp(((const struct canon_header *)a)->name, ((const struct canon_header *)b)->name);
}

/* Value with leading/trailing blanks trimmed and inner runs squeezed. */
static void add_trimmed(struct sbuf *b, const char *v)
{
	while (*v == ' ' || *v == '\t')
		v++;
	bool space = false;
	for (; *v; v++) {
		if (*v == ' ' || *v == '\t') {
			space = true;
			continue;
		}
		if (space)
			sbuf_add(b, " ", 1);
		space = false;
		sbuf_add(b, v, 1);
	}
}

/* Lower-cased, sorted copies of the header names (values borrowed). */
static struct canon_header *sorted_headers(const struct sigv4_header *h, size_t nh)
{
	struct canon_header *ch = calloc(nh ? nh : 1, sizeof(*ch));
	if (!ch)
		return NULL;
	for (size_t i = 0; i < nh; i++) {
		ch[i].name = strdup(h[i].name);
		ch[i].value = h[i].value;
		if (!ch[i].name) {
			for (size_t j = 0; j < i; j++)
				free(ch[j].name);
			free(ch);
			return NULL;
		}
		for (char *c = ch[i].name; *c; c++)
			*c = (char)tolower((unsigned char)*c);
	}
	qsort(ch, nh, sizeof(*ch), cmp_header);
	return ch;
}

static void add_signed_list(struct sbuf *b, const struct canon_header *ch, size_t nh)
{
	for (size_t i = 0; i < nh; i++)
		sbuf_printf(b, "%s%s", i ? ";" : "", ch[i].name);
}

char *sigv4_canonical_request(const char *method, const char *canonical_uri,
			      const char *canonical_query, const struct sigv4_header *h,
			      size_t nh, const char *payload_hash)
{
	struct canon_header *ch = sorted_headers(h, nh);
	if (!ch) {
		err_set("out of memory");
		return NULL;
	}
	struct sbuf b = {0};
	sbuf_printf(&b, "%s\n%s\n%s\n", method, canonical_uri, canonical_query);
	for (size_t i = 0; i < nh; i++) {
		sbuf_printf(&b, "%s:", ch[i].name);
		add_trimmed(&b, ch[i].value);
		sbuf_add(&b, "\n", 1);
	}
	sbuf_add(&b, "\n", 1);
	add_signed_list(&b, ch, nh);
	sbuf_printf(&b, "\n%s", payload_hash);
	for (size_t i = 0; i < nh; i++)
		free(ch[i].name);
	free(ch);
	return sbuf_take(&b);
}

char *sigv4_string_to_sign(const struct sigv4_key *k, const char *amz_date,
			   const char *canonical_request)
{
	char hash[SIGV4_HEX];
	if (sigv4_sha256_hex(canonical_request, strlen(canonical_request), hash) < 0)
		return NULL;
	struct sbuf b = {0};
	sbuf_printf(&b, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date, amz_date,
		    k->region, k->service, hash);
	return sbuf_take(&b);
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
 * "aws4_request"), then the signature is HMAC(kSigning, string to sign). */
static int signature(const struct sigv4_key *k, const char *amz_date, const char *sts,
		     char out[SIGV4_HEX])
{
	char date[9];
	unsigned char key[32];
	struct sbuf secret = {0};
	int rc = -1;
	memcpy(date, amz_date, 8);
	date[8] = '\0';
	sbuf_printf(&secret, "AWS4%s", k->secret_key);
	const char *s = sbuf_cstr(&secret);
	if (s && hmac(s, strlen(s), date, key) == 0 && hmac(key, 32, k->region, key) == 0 &&
	    hmac(key, 32, k->service, key) == 0 && hmac(key, 32, "aws4_request", key) == 0 &&
	    hmac(key, 32, sts, key) == 0) {
		to_hex(key, 32, out);
		rc = 0;
	}
	if (secret.s)
		OPENSSL_cleanse(secret.s, secret.cap);
	sbuf_free(&secret);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int sigv4_authorization(const struct sigv4_key *k, const char *method, const char *canonical_uri,
			const char *canonical_query, const struct sigv4_header *h, size_t nh,
			const char *payload_hash, const char *amz_date, char *out, size_t size)
{
	char sig[SIGV4_HEX];
	int rc = -1;
	if (strlen(amz_date) != 16)
		return err_set("sigv4: bad x-amz-date \"%s\"", amz_date);
	char *creq = sigv4_canonical_request(method, canonical_uri, canonical_query, h, nh,
					     payload_hash);
	char *sts = creq ? sigv4_string_to_sign(k, amz_date, creq) : NULL;
	struct canon_header *ch = sorted_headers(h, nh);
	struct sbuf b = {0};
	if (!sts || !ch || signature(k, amz_date, sts, sig) < 0) {
		if (!ch)
			err_set("out of memory");
		goto out;
	}
	sbuf_printf(&b, "AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/%s/aws4_request,SignedHeaders=",
		    k->access_key, amz_date, k->region, k->service);
	add_signed_list(&b, ch, nh);
	sbuf_printf(&b, ",Signature=%s", sig);
	const char *auth = sbuf_cstr(&b);
	if (!auth)
		goto out;
	if (strlen(auth) >= size) {
		err_set("sigv4: Authorization header longer than %zu bytes", size);
		goto out;
	}
	strcpy(out, auth);
	rc = 0;
out:
	if (ch)
		for (size_t i = 0; i < nh; i++)
			free(ch[i].name);
	free(ch);
	free(creq);
	free(sts);
	sbuf_free(&b);
	return rc;
}
