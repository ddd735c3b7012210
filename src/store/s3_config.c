/* Where an s3:// or gs:// store's settings come from.
 *
 * Credentials, as one set (key id, secret and token from the same source):
 *   s3://  1. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *          2. config s3.access_key_id, s3.secret_access_key, s3.session_token
 *          3. profile AWS_PROFILE (default "default") in
 *             AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials), then in
 *             AWS_CONFIG_FILE (~/.aws/config, section "[profile NAME]")
 *   gs://  1. GCS_HMAC_ACCESS_ID, GCS_HMAC_SECRET
 *          2. config gcs.hmac_access_id, gcs.hmac_secret
 * Region (s3://): AWS_REGION, AWS_DEFAULT_REGION, s3.region, the profile's
 *   region, else us-east-1. gs:// always signs for region "auto".
 * Endpoint (s3://): AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, s3.endpoint, the
 *   profile's endpoint_url, else https://s3.REGION.amazonaws.com.
 *   gs://: gcs.endpoint, else https://storage.googleapis.com.
 * Addressing: s3.addressing = path|virtual; by default virtual-hosted on
 *   AWS (path-style for bucket names with dots, which break TLS names), and
 *   path-style on custom endpoints (MinIO, Ceph, Swift, R2) and GCS.
 * Tuning (both schemes): s3.part_size (>= 5 MiB, default 8 MiB),
 *   s3.parts_in_flight (2-64, default 4), s3.timeout_seconds (a transfer
 *   making no progress for that long fails and is retried, default 30),
 *   s3.request_timeout_seconds (a request, retries included, that has not
 *   completed after that long fails, however steadily bytes trickle in;
 *   default 600), s3.connect_timeout_seconds (default 10), s3.retries
 *   (default 5).
 * An http:// endpoint other than loopback is used with a warning: the
 *   images and the requests (signed, but readable) travel in clear.
 *
 * Secrets never appear in messages. */
#include "store/s3.h"
#include "util/err.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *cfg(const struct store_options *opt, const char *key)
{
	if (!opt || !opt->config)
		return NULL;
	const char *v = opt->config(opt->ctx, key);
	return v && *v ? v : NULL;
}

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int dup_into(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
	if (src && !*dst)
		return err_set("out of memory");
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Looks key up in [section] of an INI file (the AWS shared files). *out is
 * NULL when the file, section or key is missing. Indented lines belong to
 * nested settings ("s3 =\n  addressing_style = path") and are skipped. */
static int ini_get(const char *path, const char *section, const char *key, char **out)
{
	*out = NULL;
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT || errno == ENOTDIR ? 0 : err_sys("%s", path);
	char line[4096];
	bool in = false;
	int rc = 0;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == ' ' || line[0] == '\t')
			continue;
		char *l = trim(line);
		if (*l == '#' || *l == ';' || *l == '\0')
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');
			if (e)
				*e = '\0';
			in = strcmp(trim(l + 1), section) == 0;
			continue;
		}
		char *eq = strchr(l, '=');
		if (!in || !eq)
			continue;
		*eq = '\0';
		if (strcmp(trim(l), key) == 0) {
			rc = dup_into(out, trim(eq + 1));
			break;
		}
	}
	fclose(f);
	return rc;
}

static int home_file(const char *envname, const char *rel, char *buf, size_t size)
{
	const char *p = env(envname);
	if (p) {
		snprintf(buf, size, "%s", p);
		return 0;
	}
	const char *home = env("HOME");
	if (!home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home)
		return -1;
	snprintf(buf, size, "%s/%s", home, rel);
	return 0;
}

/* The profile's value for key: credentials file first, then config file. */
static int profile_get(const char *key, bool creds_file_too, char **out)
{
	const char *profile = env("AWS_PROFILE") ? env("AWS_PROFILE") : "default";
	char path[4096], section[512];
	*out = NULL;
	if (creds_file_too &&
	    home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials", path, sizeof(path)) == 0) {
		if (ini_get(path, profile, key, out) < 0)
			return -1;
		if (*out)
			return 0;
	}
	if (home_file("AWS_CONFIG_FILE", ".aws/config", path, sizeof(path)) < 0)
		return 0;
	if (strcmp(profile, "default") == 0)
		snprintf(section, sizeof(section), "default");
	else
		snprintf(section, sizeof(section), "profile %s", profile);
	return ini_get(path, section, key, out);
}

/* One source's key pair; both or neither must be set. */
static int take_pair(struct s3_conf *c, const char *id, const char *secret, const char *token,
		     const char *id_name, const char *secret_name, const char *source)
{
	if (!id && !secret)
		return 0;
	if (!id || !secret)
		return err_set("%s is set but %s is not", id ? id_name : secret_name,
			       id ? secret_name : id_name);
	if (dup_into(&c->access_key, id) < 0 || dup_into(&c->secret_key, secret) < 0 ||
	    dup_into(&c->session_token, token) < 0)
		return -1;
	c->cred_source = source;
	return 1;
}

static int load_profile_creds(struct s3_conf *c)
{
	char *id = NULL, *secret = NULL, *token = NULL;
	int rc = -1;
	if (profile_get("aws_access_key_id", true, &id) < 0 ||
	    profile_get("aws_secret_access_key", true, &secret) < 0 ||
	    profile_get("aws_session_token", true, &token) < 0)
		goto out;
	rc = take_pair(c, id, secret, token, "aws_access_key_id (profile)",
		       "aws_secret_access_key (profile)", "profile");
out:
	free(id);
	free(secret);
	free(token);
	return rc;
}

static int load_creds(struct s3_conf *c, const struct store_options *opt)
{
	int rc;
	if (c->gcs) {
		rc = take_pair(c, env("GCS_HMAC_ACCESS_ID"), env("GCS_HMAC_SECRET"), NULL,
			       "GCS_HMAC_ACCESS_ID", "GCS_HMAC_SECRET", "environment");
		if (rc == 0)
			rc = take_pair(c, cfg(opt, "gcs.hmac_access_id"), cfg(opt, "gcs.hmac_secret"),
				       NULL, "gcs.hmac_access_id", "gcs.hmac_secret", "config");
		if (rc == 0)
			return err_set("no HMAC key: set GCS_HMAC_ACCESS_ID and GCS_HMAC_SECRET, "
				       "or gcs.hmac_access_id and gcs.hmac_secret");
		return rc < 0 ? -1 : 0;
	}
	rc = take_pair(c, env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"),
		       env("AWS_SESSION_TOKEN"), "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		       "environment");
	if (rc == 0)
		rc = take_pair(c, cfg(opt, "s3.access_key_id"), cfg(opt, "s3.secret_access_key"),
			       cfg(opt, "s3.session_token"), "s3.access_key_id",
			       "s3.secret_access_key", "config");
	if (rc == 0)
		rc = load_profile_creds(c);
	if (rc == 0)
		return err_set("no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
			       "s3.access_key_id and s3.secret_access_key, or a profile in "
			       "~/.aws/credentials");
	return rc < 0 ? -1 : 0;
}

/* "127.0.0.1", "localhost:9000", "[::1]:80": traffic that never leaves
 * the machine. */
static bool loopback_host(const char *host)
{
	char h[256];
	snprintf(h, sizeof(h), "%s", host);
	if (h[0] == '[') {
		h[strcspn(h, "]")] = '\0';
		return strcmp(h + 1, "::1") == 0;
	}
	h[strcspn(h, ":")] = '\0';
	if (strcasecmp(h, "localhost") == 0)
		return true;
	unsigned a, b, c, d;
	char extra;
	return sscanf(h, "%u.%u.%u.%u%c", &a, &b, &c, &d, &extra) == 4 && a == 127 && b < 256 &&
	       c < 256 && d < 256;
}

/* Splits "http[s]://host[:port][/]" into c->https / c->host, dropping the
 * scheme's default port (so the Host header we sign is the one curl would
 * send). A path after the host is not supported. */
static int parse_endpoint(struct s3_conf *c, const char *url)
{
	const char *h;
	if (strncasecmp(url, "https://", 8) == 0) {
		c->https = true;
		h = url + 8;
	} else if (strncasecmp(url, "http://", 7) == 0) {
		c->https = false;
		h = url + 7;
	} else {
		return err_set("endpoint %s: not an http:// or https:// URL", url);
	}
	size_t n = strcspn(h, "/?#");
	if (n == 0)
		return err_set("endpoint %s: no host", url);
	if (h[n] && strcmp(h + n, "/") != 0)
		return err_set("endpoint %s: a path after the host is not supported", url);
	char *host = strndup(h, n);
	if (!host)
		return err_set("out of memory");
	const char *dflt = c->https ? ":443" : ":80";
	size_t dl = strlen(dflt);
	if (n > dl && strcmp(host + n - dl, dflt) == 0 && host[0] != '[')
		host[n - dl] = '\0';
	free(c->host);
	c->host = host;
	if (dup_into(&c->endpoint, url) < 0)
		return -1;
	size_t el = strlen(c->endpoint);
	if (el && c->endpoint[el - 1] == '/')
		c->endpoint[el - 1] = '\0';
	return 0;
}

/* s3://bucket[/prefix[/]] */
static int parse_location(struct s3_conf *c, const char *location)
{
	c->gcs = strncmp(location, "gs://", 5) == 0;
	if (!c->gcs && strncmp(location, "s3://", 5) != 0)
		return err_set("not an s3:// or gs:// location");
	if (dup_into(&c->scheme, c->gcs ? "gs" : "s3") < 0)
		return -1;
	const char *b = location + 5;
	size_t n = strcspn(b, "/");
	if (n == 0)
		return err_set("no bucket name");
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)b[i]) && !strchr("-._", b[i]))
			return err_set("bucket name \"%.*s\" has a character other than "
				       "letters, digits, '-', '.', '_'", (int)n, b);
	c->bucket = strndup(b, n);
	const char *p = b + n;
	while (*p == '/')
		p++;
	c->prefix = strdup(p);
	if (!c->bucket || !c->prefix)
		return err_set("out of memory");
	size_t pl = strlen(c->prefix);
	while (pl && c->prefix[pl - 1] == '/')
		c->prefix[--pl] = '\0';
	return 0;
}

static int load_endpoint(struct s3_conf *c, const struct store_options *opt)
{
	char *prof = NULL;
	const char *url;
	char dflt[256];
	bool custom = true;
	if (c->gcs) {
		url = cfg(opt, "gcs.endpoint");
		if (!url) {
			url = "https://storage.googleapis.com";
			custom = false;
		}
	} else {
		url = env("AWS_ENDPOINT_URL_S3") ? env("AWS_ENDPOINT_URL_S3") : env("AWS_ENDPOINT_URL");
		if (!url)
			url = cfg(opt, "s3.endpoint");
		if (!url && profile_get("endpoint_url", false, &prof) < 0)
			return -1;
		if (!url)
			url = prof;
		if (!url) {
			snprintf(dflt, sizeof(dflt), "https://s3.%s.amazonaws.com", c->region);
			url = dflt;
			custom = false;
		}
	}
	int rc = parse_endpoint(c, url);
	free(prof);
	if (rc < 0)
		return -1;
	if (!c->https && !loopback_host(c->host))
		warnx_("warning: endpoint %s is plain http: checkpoint images and requests "
		       "travel unencrypted", c->endpoint);
	const char *addr = cfg(opt, "s3.addressing");
	if (addr && strcmp(addr, "path") == 0)
		c->path_style = true;
	else if (addr && strcmp(addr, "virtual") == 0)
		c->path_style = false;
	else if (addr)
		return err_set("s3.addressing \"%s\": expected path or virtual", addr);
	else
		c->path_style = custom || c->gcs || (c->https && strchr(c->bucket, '.'));
	return 0;
}

static int load_region(struct s3_conf *c, const struct store_options *opt)
{
	if (c->gcs)
		return dup_into(&c->region, "auto");
	const char *r = env("AWS_REGION") ? env("AWS_REGION") : env("AWS_DEFAULT_REGION");
	if (!r)
		r = cfg(opt, "s3.region");
	if (r)
		return dup_into(&c->region, r);
	char *prof = NULL;
	if (profile_get("region", false, &prof) < 0)
		return -1;
	int rc = dup_into(&c->region, prof ? prof : "us-east-1");
	free(prof);
	return rc;
}

static int num_key(const struct store_options *opt, const char *key, unsigned long long lo,
		   unsigned long long hi, bool size, unsigned long long *v)
{
	const char *s = cfg(opt, key);
	if (!s)
		return 0;
	char *end;
	errno = 0;
	int bad = size ? s3_parse_size(s, v) < 0
		       : (!isdigit((unsigned char)*s) || (*v = strtoull(s, &end, 10), errno || *end));
	if (bad || *v < lo || *v > hi)
		return err_set("%s \"%s\": expected %s from %llu to %llu", key, s,
			       size ? "a size" : "a number", lo, hi);
	return 0;
}

static int load_tuning(struct s3_conf *c, const struct store_options *opt)
{
	unsigned long long v;
	c->part_size = S3_DEFAULT_PART;
	c->parts_in_flight = S3_DEFAULT_IN_FLIGHT;
	c->timeout_s = 30;
	c->request_timeout_s = 600;
	c->connect_timeout_s = 10;
	c->retries = 5;
	v = c->part_size;
	if (num_key(opt, "s3.part_size", S3_MIN_PART, S3_MAX_PART, true, &v) < 0)
		return -1;
	c->part_size = v;
	v = c->parts_in_flight;
	if (num_key(opt, "s3.parts_in_flight", 2, 64, false, &v) < 0)
		return -1;
	c->parts_in_flight = (unsigned)v;
	v = (unsigned long long)c->timeout_s;
	if (num_key(opt, "s3.timeout_seconds", 1, 3600, false, &v) < 0)
		return -1;
	c->timeout_s = (long)v;
	v = (unsigned long long)c->request_timeout_s;
	if (num_key(opt, "s3.request_timeout_seconds", 1, 86400, false, &v) < 0)
		return -1;
	c->request_timeout_s = (long)v;
	v = (unsigned long long)c->connect_timeout_s;
	if (num_key(opt, "s3.connect_timeout_seconds", 1, 600, false, &v) < 0)
		return -1;
	c->connect_timeout_s = (long)v;
	v = c->retries;
	if (num_key(opt, "s3.retries", 0, 30, false, &v) < 0)
		return -1;
	c->retries = (unsigned)v;
	return 0;
}

int s3_conf_load(struct s3_conf *c, const char *location, const struct store_options *opt)
{
	memset(c, 0, sizeof(*c));
	if (parse_location(c, location) < 0 || load_region(c, opt) < 0 ||
	    load_endpoint(c, opt) < 0 || load_creds(c, opt) < 0 || load_tuning(c, opt) < 0) {
		err_prefix("%s", location);
		s3_conf_free(c);
		return -1;
	}
	return 0;
}

static void free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void s3_conf_free(struct s3_conf *c)
{
	free(c->scheme);
	free(c->bucket);
	free(c->prefix);
	free(c->access_key);
	free_secret(c->secret_key);
	free_secret(c->session_token);
	free(c->region);
	free(c->endpoint);
	free(c->host);
	memset(c, 0, sizeof(*c));
}

uint64_t s3_part_size_for(const struct s3_conf *c, unsigned n)
{
	uint64_t mult = 1 + (n ? n - 1 : 0) / S3_PART_GROW_EVERY;
	uint64_t sz = c->part_size * mult;
	return sz > S3_MAX_PART ? S3_MAX_PART : sz;
}
