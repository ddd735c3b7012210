#include "checkpoint/manifest.h"
#include "store/store.h"
#include "util/err.h"
#include "util/strmap.h"
#include "util/fdio.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void utc_now(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int manifest_add_file(struct manifest *m, const char *name, uint64_t size)
{
	if (m->nfiles == m->files_cap) {
		size_t cap = m->files_cap ? m->files_cap * 2 : 64;
		struct manifest_file *f = realloc(m->files, cap * sizeof(*f));
		if (!f)
			return err_set("out of memory");
		m->files = f;
		m->files_cap = cap;
	}
	struct manifest_file *f = &m->files[m->nfiles];
	memset(f, 0, sizeof(*f));
	f->name = strdup(name);
	if (!f->name)
		return err_set("out of memory");
	f->size = size;
	m->nfiles++;
	m->image_bytes += size;
	return 0;
}

int manifest_check_files(const struct manifest *m, const struct strmap *seen)
{
	for (size_t i = 0; i < m->nfiles; i++) {
		struct strmap_entry *e = strmap_get(seen, m->files[i].name);
		if (!e)
			return err_set("image file %s (in the manifest) is not in the streams",
				       m->files[i].name);
		uint64_t size = (uintptr_t)e->value;
		if (size != m->files[i].size)
			return err_set("image file %s has %llu bytes, the manifest says %llu",
				       m->files[i].name, (unsigned long long)size,
				       (unsigned long long)m->files[i].size);
	}
	if (seen->count != m->nfiles)
		return err_set("the streams hold %zu image files, the manifest lists %zu", seen->count,
			       m->nfiles);
	return 0;
}

void manifest_free(struct manifest *m)
{
	for (char **r = m->prot.recipients; r && *r; r++)
		free(*r);
	free(m->prot.recipients);
	for (size_t i = 0; i < m->nfiles; i++)
		free(m->files[i].name);
	free(m->files);
	free(m->stream);
	free(m->error);
	free(m->name);
	free(m->criu_version);
	free(m->hostname);
	free(m->kernel);
	free(m->tool_version);
	memset(m, 0, sizeof(*m));
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	if (v && *v)
		json_object_object_add(o, key, json_object_new_string(v));
}

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

static void add_protection(struct json_object *o, const struct manifest_protection *p)
{
	add_str(o, "encryption", p->encryption);
	if (p->recipients) {
		struct json_object *arr = json_object_new_array();
		for (char **r = p->recipients; *r; r++)
			json_object_array_add(arr, json_object_new_string(*r));
		json_object_object_add(o, "recipients", arr);
	}
	add_str(o, "digest_algorithm", p->digest_algorithm);
	if (p->chunk_size)
		add_u64(o, "chunk_size", p->chunk_size);
}

char *manifest_to_json(const struct manifest *m)
{
	struct json_object *o = json_object_new_object();
	add_str(o, "format", MANIFEST_FORMAT);
	json_object_object_add(o, "format_version", json_object_new_int(MANIFEST_VERSION));
	json_object_object_add(o, "complete", json_object_new_boolean(m->complete));
	add_str(o, "error", m->error);
	add_str(o, "name", m->name);
	json_object_object_add(o, "streams", json_object_new_int(m->streams));
	add_str(o, "compression", m->compression);
	json_object_object_add(o, "level", json_object_new_int(m->level));
	add_str(o, "checksum_algorithm", CHECKSUM_ALGO);
	add_protection(o, &m->prot);
	if (m->stream) {
		struct json_object *arr = json_object_new_array();
		for (int i = 0; i < m->streams; i++) {
			const struct manifest_stream *s = &m->stream[i];
			struct json_object *e = json_object_new_object();
			add_str(e, "file", s->file);
			add_u64(e, "stored_bytes", s->stored_bytes);
			add_u64(e, "raw_bytes", s->raw_bytes);
			add_str(e, "checksum", s->checksum);
			add_str(e, "chunk_digests", s->chunk_digests);
			add_str(e, "digest", s->digest);
			json_object_array_add(arr, e);
		}
		json_object_object_add(o, "stream_files", arr);
	}
	struct json_object *files = json_object_new_array();
	for (size_t i = 0; i < m->nfiles; i++) {
		struct json_object *e = json_object_new_object();
		add_str(e, "name", m->files[i].name);
		add_u64(e, "size", m->files[i].size);
		add_str(e, "checksum", m->files[i].checksum);
		json_object_array_add(files, e);
	}
	json_object_object_add(o, "files", files);
	add_u64(o, "image_bytes", m->image_bytes);
	json_object_object_add(o, "pid", json_object_new_int(m->pid));
	add_str(o, "hostname", m->hostname);
	add_str(o, "kernel", m->kernel);
	add_str(o, "criu_version", m->criu_version);
	add_str(o, "crstream_version", m->tool_version);
	add_str(o, "started_at", m->started_at);
	add_str(o, "finished_at", m->finished_at);
	json_object_object_add(o, "shell_job", json_object_new_boolean(m->shell_job));
	json_object_object_add(o, "tcp_established", json_object_new_boolean(m->tcp_established));
	add_u64(o, "frozen_us", m->frozen_us);
	add_u64(o, "dump_ms", m->dump_ms);
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							     JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = NULL;
	if (asprintf(&out, "%s\n", text) < 0)
		out = NULL;
	json_object_put(o);
	if (!out)
		err_set("out of memory");
	return out;
}

/* ---- parsing ---- */

static struct json_object *field(struct json_object *o, const char *key, json_type type,
				 bool required, const char *where)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v)) {
		if (required)
			err_set("%s: missing \"%s\"", where, key);
		return NULL;
	}
	if (!json_object_is_type(v, type)) {
		err_set("%s: \"%s\" has the wrong type", where, key);
		return NULL;
	}
	return v;
}

static int get_u64(struct json_object *o, const char *key, uint64_t *out, const char *where)
{
	struct json_object *v = field(o, key, json_type_int, true, where);
	if (!v)
		return -1;
	int64_t n = json_object_get_int64(v);
	if (n < 0)
		return err_set("%s: \"%s\" is negative", where, key);
	*out = (uint64_t)n;
	return 0;
}

static char *opt_str(struct json_object *o, const char *key)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return strdup(json_object_get_string(v));
}

static void copy_opt(struct json_object *o, const char *key, char *buf, size_t size)
{
	char *s = opt_str(o, key);
	snprintf(buf, size, "%s", s ? s : "");
	free(s);
}


static bool is_hex(const char *s, size_t len)
{
	if (strlen(s) != len)
		return false;
	for (const char *p = s; *p; p++)
		if (!strchr("0123456789abcdef", *p))
			return false;
	return true;
}

/* A signed checkpoint's per-stream digest fields (both or neither). */
static int parse_stream_digests(struct json_object *e, struct manifest_stream *s, const char *where)
{
	char *list = opt_str(e, "chunk_digests"), *digest = opt_str(e, "digest");
	int rc = 0;
	if (!list != !digest)
		rc = err_set("%s: \"chunk_digests\" and \"digest\" go together", where);
	else if (list && (strlen(list) >= sizeof(s->chunk_digests) || !is_plain_name(list)))
		rc = err_set("%s: bad chunk_digests name \"%s\"", where, list);
	else if (digest && !is_hex(digest, DIGEST_FIELD_HEX))
		rc = err_set("%s: digest is not %d lowercase hex digits", where, DIGEST_FIELD_HEX);
	else if (list) {
		strcpy(s->chunk_digests, list);
		strcpy(s->digest, digest);
	}
	free(list);
	free(digest);
	return rc;
}

static int parse_protection(struct json_object *o, struct manifest_protection *p)
{
	struct json_object *v;
	copy_opt(o, "encryption", p->encryption, sizeof(p->encryption));
	if (p->encryption[0] && strcmp(p->encryption, "age"))
		return err_set("%s: unknown encryption \"%s\"", MANIFEST_NAME, p->encryption);
	if ((v = field(o, "recipients", json_type_array, false, MANIFEST_NAME))) {
		size_t n = json_object_array_length(v);
		if (!(p->recipients = calloc(n + 1, sizeof(char *))))
			return err_set("out of memory");
		for (size_t i = 0; i < n; i++) {
			const char *r = json_object_get_string(json_object_array_get_idx(v, i));
			if (!(p->recipients[i] = strdup(r ? r : "")))
				return err_set("out of memory");
		}
	}
	copy_opt(o, "digest_algorithm", p->digest_algorithm, sizeof(p->digest_algorithm));
	if (json_object_object_get_ex(o, "chunk_size", &v))
		p->chunk_size = (uint64_t)json_object_get_int64(v);
	return 0;
}

/* A string field that is a plain file name (json-c strings may hold NUL). */
static const char *plain_name(struct json_object *s)
{
	const char *name = json_object_get_string(s);
	if ((size_t)json_object_get_string_len(s) != strlen(name) || !is_plain_name(name))
		return NULL;
	return name;
}

static int parse_streams(struct json_object *o, struct manifest *m)
{
	struct json_object *arr = field(o, "stream_files", json_type_array, m->complete,
					MANIFEST_NAME);
	if (!arr)
		return m->complete ? -1 : 0;
	if ((int)json_object_array_length(arr) != m->streams)
		return err_set("%s: %d stream_files for %d streams", MANIFEST_NAME,
			       (int)json_object_array_length(arr), m->streams);
	m->stream = calloc((size_t)m->streams + 1, sizeof(*m->stream));
	if (!m->stream)
		return err_set("out of memory");
	for (int i = 0; i < m->streams; i++) {
		char where[64];
		snprintf(where, sizeof(where), "%s: stream_files[%d]", MANIFEST_NAME, i);
		struct json_object *e = json_object_array_get_idx(arr, (size_t)i);
		struct manifest_stream *s = &m->stream[i];
		struct json_object *file = field(e, "file", json_type_string, true, where);
		struct json_object *sum = field(e, "checksum", json_type_string, true, where);
		if (!file || !sum || get_u64(e, "stored_bytes", &s->stored_bytes, where) < 0 ||
		    get_u64(e, "raw_bytes", &s->raw_bytes, where) < 0)
			return -1;
		const char *fname = plain_name(file);
		if (!fname || strlen(fname) >= sizeof(s->file))
			return err_set("%s: bad file name \"%s\"", where, json_object_get_string(file));
		strcpy(s->file, fname);
		if (!is_hex(json_object_get_string(sum), CHECKSUM_HEX))
			return err_set("%s: checksum is not %d lowercase hex digits", where, CHECKSUM_HEX);
		strcpy(s->checksum, json_object_get_string(sum));
		if (parse_stream_digests(e, s, where) < 0)
			return -1;
	}
	return 0;
}

static int parse_files(struct json_object *o, struct manifest *m)
{
	struct json_object *arr = field(o, "files", json_type_array, m->complete, MANIFEST_NAME);
	if (!arr)
		return m->complete ? -1 : 0;
	size_t n = json_object_array_length(arr);
	if (n > IMAGE_FILES_MAX)
		return err_set("%s: %zu files, more than the %u an image may have", MANIFEST_NAME, n,
			       IMAGE_FILES_MAX);
	for (size_t i = 0; i < n; i++) {
		char where[64];
		snprintf(where, sizeof(where), "%s: files[%zu]", MANIFEST_NAME, i);
		struct json_object *e = json_object_array_get_idx(arr, i);
		struct json_object *name = field(e, "name", json_type_string, true, where);
		uint64_t size = 0;
		if (name && !plain_name(name))
			return err_set("%s: unsafe file name \"%s\"", where, json_object_get_string(name));
		if (!name || get_u64(e, "size", &size, where) < 0 ||
		    manifest_add_file(m, json_object_get_string(name), size) < 0)
			return -1;
		char *sum = opt_str(e, "checksum");
		if (sum && is_hex(sum, CHECKSUM_HEX))
			strcpy(m->files[m->nfiles - 1].checksum, sum);
		free(sum);
	}
	return 0;
}

/* json-c spends about a kilobyte per object and a hundred bytes per value:
 * a few MiB of "{}" or "[1,1,..." would cost it gigabytes. A manifest has
 * an object per file and per stream and a few values in each; text with
 * many more is refused before it is parsed. */
#define SHAPE_OBJECTS (IMAGE_FILES_MAX + STREAMS_MAX + 16)
#define SHAPE_ARRAYS 16
#define SHAPE_COMMAS (4 * (IMAGE_FILES_MAX + STREAMS_MAX) + 64)

static int check_shape(const char *json, size_t len)
{
	size_t objects = 0, arrays = 0, commas = 0;
	bool in_string = false;
	if (len > STORE_SMALL_MAX)
		return err_set("%s: %zu bytes, more than the %u a manifest may have", MANIFEST_NAME,
			       len, STORE_SMALL_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = json[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
			continue;
		}
		objects += c == '{';
		arrays += c == '[';
		commas += c == ',';
		in_string = c == '"';
	}
	if (objects > SHAPE_OBJECTS || arrays > SHAPE_ARRAYS || commas > SHAPE_COMMAS)
		return err_set("%s: %zu objects, %zu arrays and %zu values: far more than a manifest "
			       "of at most %u files holds", MANIFEST_NAME, objects, arrays, commas + 1,
			       IMAGE_FILES_MAX);
	return 0;
}

int manifest_parse(const char *json, struct manifest *m)
{
	memset(m, 0, sizeof(*m));
	size_t len = strlen(json);
	if (check_shape(json, len) < 0)
		return -1;
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return err_set("out of memory");
	struct json_object *o = json_tokener_parse_ex(tok, json, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!o || jerr != json_tokener_success) {
		json_object_put(o);
		return err_set("%s: not valid JSON (%s)", MANIFEST_NAME, json_tokener_error_desc(jerr));
	}
	int rc = -1;
	struct json_object *v;
	if (!json_object_is_type(o, json_type_object)) {
		err_set("%s: not a JSON object", MANIFEST_NAME);
		goto out;
	}
	char *format = opt_str(o, "format");
	bool ours = format && !strcmp(format, MANIFEST_FORMAT);
	free(format);
	if (!ours) {
		err_set("%s: not a crstream manifest (\"format\" is not \"%s\")", MANIFEST_NAME,
			MANIFEST_FORMAT);
		goto out;
	}
	if (!(v = field(o, "format_version", json_type_int, true, MANIFEST_NAME)))
		goto out;
	if (json_object_get_int(v) != MANIFEST_VERSION) {
		err_set("%s: format_version %d is not supported (this crstream reads %d)",
			MANIFEST_NAME, json_object_get_int(v), MANIFEST_VERSION);
		goto out;
	}
	if (!(v = field(o, "complete", json_type_boolean, true, MANIFEST_NAME)))
		goto out;
	m->complete = json_object_get_boolean(v);
	if (!(v = field(o, "streams", json_type_int, true, MANIFEST_NAME)))
		goto out;
	m->streams = json_object_get_int(v);
	if (m->streams < 0 || m->streams > STREAMS_MAX) {
		err_set("%s: streams %d is out of range (0..%d)", MANIFEST_NAME, m->streams,
			STREAMS_MAX);
		goto out;
	}
	copy_opt(o, "compression", m->compression, sizeof(m->compression));
	if (json_object_object_get_ex(o, "level", &v))
		m->level = json_object_get_int(v);
	if (json_object_object_get_ex(o, "pid", &v))
		m->pid = json_object_get_int(v);
	m->error = opt_str(o, "error");
	m->name = opt_str(o, "name");
	m->hostname = opt_str(o, "hostname");
	m->kernel = opt_str(o, "kernel");
	m->criu_version = opt_str(o, "criu_version");
	m->tool_version = opt_str(o, "crstream_version");
	copy_opt(o, "started_at", m->started_at, sizeof(m->started_at));
	copy_opt(o, "finished_at", m->finished_at, sizeof(m->finished_at));
	if (json_object_object_get_ex(o, "frozen_us", &v))
		m->frozen_us = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "dump_ms", &v))
		m->dump_ms = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "shell_job", &v))
		m->shell_job = json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "tcp_established", &v))
		m->tcp_established = json_object_get_boolean(v);
	if (parse_protection(o, &m->prot) < 0)
		goto out;
	if (m->streams > 0 && parse_streams(o, m) < 0)
		goto out;
	if (parse_files(o, m) < 0)
		goto out;
	rc = 0;
out:
	json_object_put(o);
	if (rc < 0) {
		char saved[ERR_MAX];
		err_copy(saved, sizeof(saved));
		manifest_free(m);
		err_set("%s", saved);
	}
	return rc;
}
