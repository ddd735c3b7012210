/* crstream.v1 (filled in below). */
#include "daemon/server.h"

const struct method v1_methods[] = {
	{NULL, NULL, NULL},
};
