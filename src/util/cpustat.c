#include "util/cpustat.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cpu_sample(struct cpu_sample *s)
{
	char buf[512];
	int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || strncmp(buf, "cpu ", 4) != 0) {
		errno = EINVAL;
		return -1;
	}
	buf[n] = '\0';
	/* "cpu  user nice system idle iowait irq softirq steal ..." */
	uint64_t v[10] = {0};
	char *p = buf + 4, *end;
	int k = 0;
	for (; k < 10; k++, p = end) {
		v[k] = strtoull(p, &end, 10);
		if (end == p)
			break;
	}
	if (k < 4) {
		errno = EINVAL;
		return -1;
	}
	s->idle = v[3] + v[4];
	s->total = 0;
	for (int i = 0; i < k && i < 8; i++)	/* guest time is in user already */
		s->total += v[i];
	return 0;
}

double cpu_idle_cores(const struct cpu_sample *before, const struct cpu_sample *after)
{
	if (after->total <= before->total || after->idle < before->idle)
		return 0;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double frac = (double)(after->idle - before->idle) / (double)(after->total - before->total);
	return frac * (double)(ncpu > 0 ? ncpu : 1);
}
