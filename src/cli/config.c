#include "cli/config.h"
#include "cli/cli.h"
#include "codec/codec.h"
#include "util/err.h"

#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* T_LIST: comma-separated strings (in the file also a JSON array). */
enum config_type { T_STRING, T_UINT, T_INT, T_BOOL, T_SIZE, T_CODEC, T_LIST, T_UIDS };

struct config_key {
	const char *key;
	enum config_type type;
	const char *def;	/* NULL: unset unless given */
	bool secret;
	const char *help;
};

static const struct config_key keys[] = {
	{"checkpoint.streams", T_UINT, NULL, false,
	 "parallel streams per dump; 0 = plain CRIU image directory (default: online CPUs, at most 8)"},
	{"checkpoint.compression", T_CODEC, "lz4", false, "none, lz4, zstd, gzip, zlib or auto"},
	{"checkpoint.level", T_INT, NULL, false, "compression level (default: the codec's)"},
	{"checkpoint.dir", T_STRING, "/var/lib/crstream/checkpoints", false,
	 "where dumps go: a directory, s3://bucket/prefix or gs://bucket/prefix"},
	{"checkpoint.recipients", T_LIST, NULL, false,
	 "encrypt streams with age to these recipients: age1... keys or recipients files"},
	{"checkpoint.sign_key", T_STRING, NULL, false,
	 "sign the manifest with this Ed25519 key file (OpenSSH format, crstream keygen --sign)"},
	{"restore.memory_limit", T_SIZE, "64M", false,
	 "image data a restore holds in memory before spilling to $TMPDIR"},
	{"restore.identities", T_LIST, NULL, false,
	 "age identity files that decrypt encrypted checkpoints"},
	{"restore.trusted_keys", T_LIST, NULL, false,
	 "accept only checkpoints signed by one of these public keys (.pub files)"},
	{"restore.verify_first", T_BOOL, NULL, false,
	 "start CRIU only after every stream was read and verified (default: true under a "
	 "trust policy, holding the stored bytes in $TMPDIR; false without one)"},
	{"restore.spill_limit", T_SIZE, NULL, false,
	 "image data a restore may spill to $TMPDIR (default: the image's size from its "
	 "manifest; never more than the free space less 64 MiB)"},
	{"criu.path", T_STRING, "criu", false, "the CRIU binary (also $CRSTREAM_CRIU)"},
	{"criu.leave_running", T_BOOL, "false", false, "keep dumped processes running"},
	{"s3.access_key_id", T_STRING, NULL, false, "S3 credentials (after AWS_* variables)"},
	{"s3.secret_access_key", T_STRING, NULL, true, "S3 credentials"},
	{"s3.session_token", T_STRING, NULL, true, "S3 credentials"},
	{"s3.region", T_STRING, NULL, false, "S3 region (default us-east-1)"},
	{"s3.endpoint", T_STRING, NULL, false, "S3 endpoint URL (MinIO, Ceph, Swift, R2)"},
	{"s3.addressing", T_STRING, NULL, false, "path or virtual"},
	{"s3.part_size", T_SIZE, NULL, false, "first multipart part size (grows for large streams)"},
	{"s3.parts_in_flight", T_UINT, NULL, false, "parts uploaded at once per stream"},
	{"s3.timeout_seconds", T_UINT, NULL, false, "a request stalled this long is retried"},
	{"s3.request_timeout_seconds", T_UINT, NULL, false,
	 "a request (retries included) not done after this long fails (default 600)"},
	{"s3.connect_timeout_seconds", T_UINT, NULL, false, "connection timeout"},
	{"s3.retries", T_UINT, NULL, false, "retries of a failed request"},
	{"gcs.hmac_access_id", T_STRING, NULL, false, "GCS HMAC key (after GCS_HMAC_ACCESS_ID)"},
	{"gcs.hmac_secret", T_STRING, NULL, true, "GCS HMAC secret"},
	{"gcs.endpoint", T_STRING, NULL, false, "GCS XML API endpoint (default storage.googleapis.com)"},
	{"daemon.socket", T_STRING, "/run/crstream/crstream.sock", false,
	 "the daemon's unix socket (0600, in a 0700 directory)"},
	{"daemon.db", T_STRING, "/var/lib/crstream/crstream.db", false,
	 "the daemon's catalog of jobs and checkpoints (SQLite)"},
	{"daemon.allowed_uids", T_UIDS, NULL, false,
	 "non-root uids the daemon serves, e.g. [1000, 1001] (default: root only)"},
	{"daemon.listen", T_STRING, NULL, false,
	 "HOST:PORT: also serve on TCP, with TLS client certificates (default: off)"},
	{"daemon.tls_cert", T_STRING, NULL, false, "the daemon's TLS certificate chain (PEM) for daemon.listen"},
	{"daemon.tls_key", T_STRING, NULL, true, "its private key (PEM)"},
	{"daemon.tls_client_ca", T_STRING, NULL, false,
	 "CA certificates (PEM) that client certificates must chain to"},
	{"daemon.job_logs", T_STRING, "/var/lib/crstream/logs", false,
	 "where the stdout/stderr of jobs the daemon runs go"},
	{"policy.keep", T_UINT, "3", false,
	 "complete checkpoints a periodic policy keeps, unless the policy says"},
	{"policy.dir", T_STRING, NULL, false,
	 "where periodic checkpoints go, unless the policy says (default: checkpoint.dir)"},
};

/* Other spellings of a key: Cedana's configuration says
 * checkpoint.stream for crstream's checkpoint.streams. */
static const struct { const char *alias, *key; } key_aliases[] = {
	{"checkpoint.stream", "checkpoint.streams"},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct config {
	char *value[NKEYS];
	enum config_source source[NKEYS];
	char *origin[NKEYS];	/* file path or variable name */
	char *path;
	char default_streams[16];
};

static int key_index(const char *key)
{
	for (size_t i = 0; i < sizeof(key_aliases) / sizeof(key_aliases[0]); i++)
		if (!strcmp(key_aliases[i].alias, key))
			key = key_aliases[i].key;
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].key, key))
			return (int)i;
	return -1;
}

static const char *type_name(enum config_type t)
{
	switch (t) {
	case T_STRING: return "a string";
	case T_UINT: return "a non-negative integer";
	case T_INT: return "an integer";
	case T_BOOL: return "true or false";
	case T_SIZE: return "a size in bytes (e.g. 268435456 or \"256M\")";
	case T_CODEC: return "one of none, lz4, zstd, gzip, zlib, auto";
	case T_LIST: return "a string (comma-separated) or an array of strings";
	case T_UIDS: return "a list of uids (e.g. [1000, 1001] or \"1000,1001\")";
	}
	return "?";
}

static bool valid_integer(const char *s, bool allow_negative)
{
	if (allow_negative && *s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* Checks a textual value against the key's type and normalises booleans. */
static int validate(const struct config_key *k, const char *value, char **out)
{
	bool ok = true;
	const char *norm = value;
	uint64_t size;
	switch (k->type) {
	case T_STRING:
	case T_LIST:
		break;
	case T_UINT:
		ok = valid_integer(value, false) && strlen(value) < 19;
		break;
	case T_INT:
		ok = valid_integer(value, true) && strlen(value) < 19;
		break;
	case T_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "yes"))
			norm = "true";
		else if (!strcmp(value, "false") || !strcmp(value, "0") || !strcmp(value, "no"))
			norm = "false";
		else
			ok = false;
		break;
	case T_SIZE:
		ok = parse_size(value, &size) == 0;
		break;
	case T_CODEC:
		ok = codec_by_name(value) != NULL;
		break;
	case T_UIDS:
		ok = config_parse_uids(value, NULL, 0) >= 0;
		break;
	}
	if (!ok)
		return err_set("%s must be %s, got \"%s\"", k->key, type_name(k->type), value);
	*out = strdup(norm);
	return *out ? 0 : err_set("out of memory");
}

static int assign(struct config *c, int i, const char *value, enum config_source src,
		  const char *origin)
{
	char *norm;
	if (validate(&keys[i], value, &norm) < 0)
		return -1;
	free(c->value[i]);
	free(c->origin[i]);
	c->value[i] = norm;
	c->source[i] = src;
	c->origin[i] = origin ? strdup(origin) : NULL;
	return 0;
}

/* A JSON scalar as the text the validators read; NULL for other types. */
static const char *json_scalar(struct json_object *v, char *buf, size_t size)
{
	switch (json_object_get_type(v)) {
	case json_type_string:
		return json_object_get_string(v);
	case json_type_int:
		snprintf(buf, size, "%lld", (long long)json_object_get_int64(v));
		return buf;
	case json_type_boolean:
		return json_object_get_boolean(v) ? "true" : "false";
	default:
		return NULL;
	}
}

/* A JSON array of strings as "a,b,c"; NULL if v is not one. */
static char *join_array(struct json_object *v)
{
	if (!json_object_is_type(v, json_type_array))
		return NULL;
	size_t n = json_object_array_length(v), len = 1;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		if (!json_object_is_type(e, json_type_string))
			return NULL;
		len += strlen(json_object_get_string(e)) + 1;
	}
	char *out = calloc(1, len);
	for (size_t i = 0; out && i < n; i++) {
		if (i)
			strcat(out, ",");
		strcat(out, json_object_get_string(json_object_array_get_idx(v, i)));
	}
	return out;
}

/* [1000, 1001] as "1000,1001"; NULL if an element is not an integer. */
static const char *json_int_list(struct json_object *a, char *buf, size_t size)
{
	size_t n = 0, len = json_object_array_length(a);
	buf[0] = '\0';
	for (size_t i = 0; i < len; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_int))
			return NULL;
		int w = snprintf(buf + n, size - n, "%s%lld", i ? "," : "",
				 (long long)json_object_get_int64(e));
		if (w < 0 || (size_t)w >= size - n)
			return NULL;
		n += (size_t)w;
	}
	return buf;
}

static int load_section(struct config *c, const char *section, struct json_object *obj)
{
	if (!json_object_is_type(obj, json_type_object))
		return err_set("%s: \"%s\" must be an object of keys", c->path, section);
	json_object_object_foreach(obj, name, v) {
		char key[128], buf[32];
		snprintf(key, sizeof(key), "%s.%s", section, name);
		int i = key_index(key);
		if (i < 0)
			return err_set("%s: unknown key \"%s\" (see crstream config show)", c->path, key);
		char list[512];
		char *joined = keys[i].type == T_LIST ? join_array(v) : NULL;
		const char *text = joined ? joined
				   : keys[i].type == T_UIDS && json_object_is_type(v, json_type_array)
					   ? json_int_list(v, list, sizeof(list))
					   : json_scalar(v, buf, sizeof(buf));
		bool type_ok = text != NULL;
		/* Booleans and numbers must be JSON booleans and numbers. */
		if (keys[i].type == T_BOOL && !json_object_is_type(v, json_type_boolean))
			type_ok = false;
		if ((keys[i].type == T_UINT || keys[i].type == T_INT) &&
		    !json_object_is_type(v, json_type_int))
			type_ok = false;
		if ((keys[i].type == T_STRING || keys[i].type == T_CODEC ||
		     (keys[i].type == T_LIST && !joined) ||
		     (keys[i].type == T_UIDS && !json_object_is_type(v, json_type_array))) &&
		    !json_object_is_type(v, json_type_string))
			type_ok = false;
		int rc = type_ok ? assign(c, i, text, CFG_FILE, c->path) : 0;
		free(joined);
		if (!type_ok)
			return err_set("%s: %s must be %s", c->path, key, type_name(keys[i].type));
		if (rc < 0)
			return err_prefix("%s", c->path);
	}
	return 0;
}

static int load_file(struct config *c, bool must_exist)
{
	FILE *f = fopen(c->path, "r");
	if (!f) {
		if (errno == ENOENT && !must_exist)
			return 0;
		return err_sys("cannot read config file %s", c->path);
	}
	fclose(f);
	struct json_object *root = json_object_from_file(c->path);
	if (!root)
		return err_set("%s: not valid JSON (%s)", c->path, json_util_get_last_err());
	int rc = 0;
	if (!json_object_is_type(root, json_type_object)) {
		rc = err_set("%s: the top level must be an object like {\"checkpoint\": {...}}", c->path);
	} else {
		json_object_object_foreach(root, section, obj) {
			if ((rc = load_section(c, section, obj)) < 0)
				break;
		}
	}
	json_object_put(root);
	return rc;
}

static void env_name(const char *key, char *buf, size_t size)
{
	size_t n = (size_t)snprintf(buf, size, "CRSTREAM_");
	for (const char *p = key; *p && n + 1 < size; p++)
		buf[n++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
	buf[n] = '\0';
}

static int load_env(struct config *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		char name[96];
		env_name(keys[i].key, name, sizeof(name));
		const char *v = getenv(name);
		/* The engine issue's name for the CRIU path. */
		if (!v && !strcmp(keys[i].key, "criu.path") && getenv("CRSTREAM_CRIU")) {
			v = getenv("CRSTREAM_CRIU");
			strcpy(name, "CRSTREAM_CRIU");
		}
		/* Cedana's spelling, when crstream's is not set. */
		if (!v && !strcmp(keys[i].key, "checkpoint.streams") && getenv("CRSTREAM_CHECKPOINT_STREAM")) {
			v = getenv("CRSTREAM_CHECKPOINT_STREAM");
			strcpy(name, "CRSTREAM_CHECKPOINT_STREAM");
		}
		if (v && assign(c, (int)i, v, CFG_ENV, name) < 0)
			return err_prefix("environment variable %s", name);
	}
	return 0;
}

int config_load(struct config **out)
{
	struct config *c = calloc(1, sizeof(*c));
	if (!c)
		return err_set("out of memory");
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	snprintf(c->default_streams, sizeof(c->default_streams), "%ld",
		 cpus < 1 ? 1 : cpus > 8 ? 8 : cpus);
	for (size_t i = 0; i < NKEYS; i++) {
		const char *def = keys[i].def;
		if (!strcmp(keys[i].key, "checkpoint.streams"))
			def = c->default_streams;
		c->value[i] = def ? strdup(def) : NULL;
		c->source[i] = CFG_DEFAULT;
	}
	const char *env_path = getenv("CRSTREAM_CONFIG");
	c->path = strdup(env_path && *env_path ? env_path : CONFIG_DEFAULT_PATH);
	if (!c->path || load_file(c, env_path && *env_path) < 0 || load_env(c) < 0) {
		config_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NKEYS; i++) {
		free(c->value[i]);
		free(c->origin[i]);
	}
	free(c->path);
	free(c);
}

int config_set_flag(struct config *c, const char *key, const char *value)
{
	int i = key_index(key);
	if (i < 0)
		return err_set("unknown configuration key \"%s\"", key);
	return assign(c, i, value, CFG_FLAG, NULL);
}

const char *config_get(const struct config *c, const char *key)
{
	int i = key_index(key);
	return i >= 0 && c->value[i] ? c->value[i] : "";
}

bool config_is_set(const struct config *c, const char *key)
{
	int i = key_index(key);
	return i >= 0 && c->value[i] != NULL;
}

uint64_t config_uint(const struct config *c, const char *key)
{
	const char *v = config_get(c, key);
	uint64_t size;
	int i = key_index(key);
	if (i >= 0 && keys[i].type == T_SIZE)
		return parse_size(v, &size) == 0 ? size : 0;
	return strtoull(v, NULL, 10);
}

int64_t config_int(const struct config *c, const char *key)
{
	return strtoll(config_get(c, key), NULL, 10);
}

bool config_bool(const struct config *c, const char *key)
{
	return !strcmp(config_get(c, key), "true");
}

const char *config_lookup(void *config, const char *key)
{
	struct config *c = config;
	int i = key_index(key);
	return i >= 0 ? c->value[i] : NULL;
}

int config_parse_uids(const char *s, unsigned *uids, int max)
{
	int n = 0;
	while (*s) {
		while (*s == ' ' || *s == ',')
			s++;
		if (!*s)
			break;
		char *end;
		errno = 0;
		unsigned long v = strtoul(s, &end, 10);
		if (end == s || errno || v > 0xfffffffeUL || (*end && *end != ',' && *end != ' '))
			return err_set("\"%s\" is not a uid", s);
		if (uids && n < max)
			uids[n] = (unsigned)v;
		n++;
		s = end;
	}
	return n;
}

const char *config_path(const struct config *c)
{
	return c->path;
}

void config_show(const struct config *c, FILE *out)
{
	fprintf(out, "config file: %s%s\n\n", c->path,
		access(c->path, R_OK) == 0 ? "" : " (not present)");
	for (size_t i = 0; i < NKEYS; i++) {
		const char *v = c->value[i];
		char shown[256];
		if (!v)
			snprintf(shown, sizeof(shown), "(unset)");
		else if (keys[i].secret)
			snprintf(shown, sizeof(shown), "******");
		else
			snprintf(shown, sizeof(shown), "%s", v);
		char where[300];
		switch (c->source[i]) {
		case CFG_DEFAULT:
			snprintf(where, sizeof(where), "default");
			break;
		case CFG_FILE:
			snprintf(where, sizeof(where), "file %s", c->origin[i]);
			break;
		case CFG_ENV:
			snprintf(where, sizeof(where), "env %s", c->origin[i]);
			break;
		case CFG_FLAG:
			snprintf(where, sizeof(where), "flag");
			break;
		}
		fprintf(out, "%-24s %-32s %s\n", keys[i].key, shown, where);
	}
}
