#include "util/trace.h"
#include "util/fmt.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool enabled;
static struct timespec t0;

static void init(void)
{
	clock_gettime(CLOCK_MONOTONIC, &t0);
	enabled = getenv("CRSTREAM_TRACE") != NULL;
}

bool trace_on(void)
{
	pthread_once(&once, init);
	return enabled;
}

void trace(const char *who, const char *fmt, ...)
{
	if (!trace_on())
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	double t = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Whole lines, whatever other threads print; messages escaped, for
	 * they carry names from the image. */
	flockfile(stderr);
	fprintf(stderr, "[%7.3f %s] ", t, who);
	fputs_escaped(line, stderr);
	fputc('\n', stderr);
	funlockfile(stderr);
}
