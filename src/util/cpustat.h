/* How busy the machine's CPUs are, from /proc/stat: for decisions that
 * must not take CPU the rest of the machine needs (--compression auto
 * raises its level only while some CPU is idle). */
#ifndef CRSTREAM_UTIL_CPUSTAT_H
#define CRSTREAM_UTIL_CPUSTAT_H

#include <stdint.h>

struct cpu_sample {
	uint64_t idle;	/* idle + iowait jiffies, all CPUs */
	uint64_t total;	/* all jiffies, all CPUs */
};

/* Reads the counters now; -1 (errno set) if /proc/stat cannot be read. */
int cpu_sample(struct cpu_sample *s);

/* Idle CPUs on average between two samples (0 .. number of CPUs); 0 when
 * no time passed between them. */
double cpu_idle_cores(const struct cpu_sample *before, const struct cpu_sample *after);

#endif
