#include "util/plugin.h"
#include "paths.h"
#include "util/err.h"
#include "util/fdio.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The directory holding plugin file, by the order in plugin.h, and how to
 * name it in an error. */
static void plugin_dir(const char *file, char *dir, size_t size, char *label, size_t label_size)
{
	const char *env = getenv("CRSTREAM_PLUGIN_DIR");
	if (env && *env) {
		snprintf(dir, size, "%s", env);
		snprintf(label, label_size, "CRSTREAM_PLUGIN_DIR=%s", env);
		return;
	}
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash)
			*slash = '\0';
		snprintf(path, sizeof(path), "%s/%s", exe, file);
		if (access(path, F_OK) == 0) {
			snprintf(dir, size, "%s", exe);
			snprintf(label, label_size, "%s (crstream's directory)", exe);
			return;
		}
	}
	snprintf(dir, size, "%s", CRSTREAM_PLUGIN_DIR_BUILTIN);
	snprintf(label, label_size, "plugin directory %s", dir);
}

int plugin_load(const char *file, char *path, size_t size, void **handle_out)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	char dir[PATH_MAX], label[PATH_MAX + 64];
	plugin_dir(file, dir, sizeof(dir), label, sizeof(label));
	if (snprintf(path, size, "%s/%s", dir, file) >= (int)size)
		return err_set("path too long: %s", dir);
	if (path_trusted(dir, label) < 0 || path_trusted(path, NULL) < 0)
		return -1;
	/* dlopen() of a loaded object only takes a reference: no table of
	 * handles is needed, and the reference is never dropped. */
	pthread_mutex_lock(&mu);
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	pthread_mutex_unlock(&mu);
	if (!handle)
		return err_set("%s", dlerror());
	if (handle_out)
		*handle_out = handle;
	return 0;
}

void *plugin_symbol(const char *file, const char *sym, const char *what,
		    const char *missing_hint)
{
	void *handle;
	char path[PATH_MAX];
	if (plugin_load(file, path, sizeof(path), &handle) < 0) {
		if (missing_hint && access(path, F_OK) < 0 && errno == ENOENT)
			err_set("%s needs the plugin %s, which is not installed (%s)", what, path,
				missing_hint);
		else
			err_prefix("%s needs the plugin %s", what, path);
		return NULL;
	}
	void *p = dlsym(handle, sym);
	if (!p)
		err_set("%s: %s has no %s", what, path, sym);
	return p;
}
