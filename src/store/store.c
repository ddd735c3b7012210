#include "store/store.h"
#include "paths.h"
#include "util/err.h"
#include "util/fdio.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const struct store_ops local_store_ops;

/* The object-storage backend (s3://, gs://) lives in a plugin,
 * crstream-s3.so: libcurl, OpenSSL and their dependencies are only loaded
 * by the commands that need them, which keeps a local dump's memory
 * footprint small.
 *
 * Where it is, first match: $CRSTREAM_PLUGIN_DIR; next to the crstream
 * binary (a build tree); the directory compiled in (`make install`'s
 * $(PREFIX)/lib/crstream). crstream runs as root, and loading a plugin runs
 * its code: the directory and the file must belong to root (or to the user
 * running crstream) and be writable by nobody else, or they are refused. */

#define S3_PLUGIN "crstream-s3.so"

static bool remote_handles(const char *location)
{
	return store_is_remote(location);
}

/* The plugin's directory, by the order above, and how to name it. */
static void plugin_dir(char *dir, size_t size, char *label, size_t label_size)
{
	const char *env = getenv("CRSTREAM_PLUGIN_DIR");
	if (env && *env) {
		snprintf(dir, size, "%s", env);
		snprintf(label, label_size, "CRSTREAM_PLUGIN_DIR=%s", env);
		return;
	}
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		snprintf(path, sizeof(path), "%s/%s", exe, S3_PLUGIN);
		if (access(path, F_OK) == 0) {
			snprintf(dir, size, "%s", exe);
			snprintf(label, label_size, "%s (crstream's directory)", exe);
			return;
		}
	}
	snprintf(dir, size, "%s", CRSTREAM_PLUGIN_DIR_BUILTIN);
	snprintf(label, label_size, "plugin directory %s", dir);
}

int store_plugin_load(char *path, size_t size, void **handle_out)
{
	static void *handle;
	static char loaded[PATH_MAX];
	if (!handle) {
		char dir[PATH_MAX], label[PATH_MAX + 64];
		plugin_dir(dir, sizeof(dir), label, sizeof(label));
		if (snprintf(path, size, "%s/%s", dir, S3_PLUGIN) >= (int)size)
			return err_set("path too long: %s", dir);
		if (path_trusted(dir, label) < 0 || path_trusted(path, NULL) < 0)
			return -1;
		handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (!handle)
			return err_set("%s", dlerror());
		snprintf(loaded, sizeof(loaded), "%s", path);
	}
	snprintf(path, size, "%s", loaded);
	if (handle_out)
		*handle_out = handle;
	return 0;
}

/* The plugin's ops for this location's scheme, loading it on first use. */
static const struct store_ops *remote_ops(const char *location)
{
	void *handle;
	char path[PATH_MAX];
	if (store_plugin_load(path, sizeof(path), &handle) < 0) {
		err_prefix("%s: object storage needs the plugin %s", location, path);
		return NULL;
	}
	const char *sym = strncmp(location, "gs://", 5) ? "s3_store_ops" : "gs_store_ops";
	const struct store_ops *ops = dlsym(handle, sym);
	if (!ops)
		err_set("%s: %s has no %s", location, path, sym);
	return ops;
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
