#include "util/plugin.h"
#include "util/err.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int plugin_path(const char *file, char *buf, size_t size)
{
	const char *dir = getenv("CRSTREAM_PLUGIN_DIR");
	if (dir && *dir)
		return snprintf(buf, size, "%s/%s", dir, file) < (int)size ? 0 : -1;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -1;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	return snprintf(buf, size, "%s/%s", exe, file) < (int)size ? 0 : -1;
}

void *plugin_symbol(const char *file, const char *sym, const char *what)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	char path[PATH_MAX];
	if (plugin_path(file, path, sizeof(path)) < 0) {
		err_set("%s: cannot locate the plugin %s", what, file);
		return NULL;
	}
	/* dlopen() of a loaded object only takes a reference: no table of
	 * handles is needed, and the reference is never dropped. */
	pthread_mutex_lock(&mu);
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	pthread_mutex_unlock(&mu);
	if (!handle) {
		err_set("%s needs the plugin %s: %s", what, path, dlerror());
		return NULL;
	}
	void *p = dlsym(handle, sym);
	if (!p)
		err_set("%s: %s has no %s", what, path, sym);
	return p;
}
