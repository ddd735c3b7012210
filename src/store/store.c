#include "store/store.h"
#include "util/err.h"
#include "util/plugin.h"

#include <stdio.h>
#include <string.h>

extern const struct store_ops local_store_ops;

/* The object-storage backend (s3://, gs://) lives in a plugin,
 * crstream-s3.so: libcurl, OpenSSL and their dependencies are only loaded
 * by the commands that need them, which keeps a local dump's memory
 * footprint small (util/plugin.h: where it is looked for, and which
 * directories are trusted). */

#define S3_PLUGIN "crstream-s3.so"

static bool remote_handles(const char *location)
{
	return store_is_remote(location);
}

int store_plugin_load(char *path, size_t size, void **handle)
{
	return plugin_load(S3_PLUGIN, path, size, handle);
}

/* The plugin's ops for this location's scheme, loading it on first use. */
static const struct store_ops *remote_ops(const char *location)
{
	char what[300];
	snprintf(what, sizeof(what), "%.200s: object storage", location);
	const char *sym = strncmp(location, "gs://", 5) ? "s3_store_ops" : "gs_store_ops";
	return plugin_symbol(S3_PLUGIN, sym, what, NULL);
}

static int remote_open(const char *location, const struct store_options *opt, struct store **out)
{
	const struct store_ops *ops = remote_ops(location);
	return ops ? ops->open(location, opt, out) : -1;
}

/* Stands for the plugin's backends until one is opened: the stores it
 * returns carry the plugin's own ops. */
static const struct store_ops remote_store_ops = {
	.scheme = "s3/gs",
	.handles = remote_handles,
	.open = remote_open,
};

/* Order matters: the local backend takes whatever the others do not. */
const struct store_ops *const store_backends[] = {
	&remote_store_ops,
	&local_store_ops,
	NULL,
};

int store_open(const char *location, const struct store_options *opt, struct store **out)
{
	*out = NULL;
	if (!location || !*location)
		return err_set("empty checkpoint location");
	for (int i = 0; store_backends[i]; i++)
		if (store_backends[i]->handles(location))
			return store_backends[i]->open(location, opt, out);
	return err_set("%s: no storage backend handles this location", location);
}

bool store_is_remote(const char *location)
{
	return strncmp(location, "s3://", 5) == 0 || strncmp(location, "gs://", 5) == 0;
}
