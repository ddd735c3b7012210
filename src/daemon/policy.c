/* Periodic checkpoints (filled in below). */
#include "daemon/daemon.h"

int policy_start(struct daemon *d)
{
	(void)d;
	return 0;
}

void policy_stop(struct daemon *d)
{
	(void)d;
}

void policy_prune(struct daemon *d, const char *jid)
{
	(void)d;
	(void)jid;
}
