#include "store/store.h"
#include "util/err.h"

#include <string.h>

extern const struct store_ops local_store_ops;
extern const struct store_ops s3_store_ops;
extern const struct store_ops gs_store_ops;

/* Order matters: the local backend takes whatever the others do not. */
const struct store_ops *const store_backends[] = {
	&s3_store_ops,
	&gs_store_ops,
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
