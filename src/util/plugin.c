#include "util/plugin.h"
#include "util/err.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t plugin_mu = PTHREAD_MUTEX_INITIALIZER;

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
	char path[PATH_MAX];
	if (plugin_path(file, path, sizeof(path)) < 0) {
		err_set("%s: cannot locate the plugin %s", what, file);
		return NULL;
	}
	/* dlopen of a loaded object returns the same handle: no bookkeeping,
	 * only one loader at a time. */
	pthread_mutex_lock(&plugin_mu);
	void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	void *p = handle ? dlsym(handle, sym) : NULL;
	if (!handle)
		err_set("%s needs the plugin %s: %s", what, path, dlerror());
	else if (!p)
		err_set("%s: the plugin %s has no %s", what, path, sym);
	pthread_mutex_unlock(&plugin_mu);
	return p;
}
