#include "codec/codec.h"
#include "codec/codec_impl.h"
#include "util/err.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

const struct codec *const codecs[] = {
	&codec_none, &codec_lz4, &codec_zstd, &codec_gzip, &codec_zlib, &codec_auto, NULL,
};

const struct codec *codec_by_name(const char *name)
{
	for (const struct codec *const *c = codecs; *c; c++)
		if (strcmp((*c)->name, name) == 0)
			return *c;
	return NULL;
}

const struct codec *codec_format(const struct codec *c)
{
	return c->writes_as ? c->writes_as : c;
}

/* The extension is the last ".suffix" of the final path component; a
 * leading dot (".hidden") does not start an extension. */
static const char *filename_extension(const char *filename)
{
	const char *base = strrchr(filename, '/');
	base = base ? base + 1 : filename;
	const char *dot = strrchr(base, '.');
	return dot && dot != base ? dot : "";
}

const struct codec *codec_by_filename(const char *filename)
{
	const char *ext = filename_extension(filename);
	/* A stream is named after its format, never after a codec that
	 * writes another's ("img-0.zst" is zstd, whoever wrote it). */
	for (const struct codec *const *c = codecs; *c; c++)
		if (!(*c)->writes_as && strcmp((*c)->extension, ext) == 0)
			return *c;
	return NULL;
}

/* Built once from the table, so that adding a codec stays a one-line
 * change; pthread_once because encoders run in many threads. */
static char names_buf[256];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void build_names(void)
{
	size_t len = 0;
	for (const struct codec *const *c = codecs; *c; c++) {
		int n = snprintf(names_buf + len, sizeof(names_buf) - len, "%s%s",
				 c == codecs ? "" : ", ", (*c)->name);
		if (n < 0 || (size_t)n >= sizeof(names_buf) - len)
			break; /* cannot happen with six short names */
		len += (size_t)n;
	}
}

const char *codec_names(void)
{
	pthread_once(&names_once, build_names);
	return names_buf;
}

int codec_check_level(const struct codec *c, int level)
{
	if (level < c->min_level || level > c->max_level)
		return err_set("%s: compression level %d out of range %d..%d", c->name, level,
			       c->min_level, c->max_level);
	return 0;
}
