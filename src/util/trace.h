/* CRSTREAM_TRACE=1: one timeline on stderr of what a dump or restore does
 * and when, across threads and layers ("[  0.093 serve] request
 * pages-1.img"), for finding where the time goes. Off, a trace() call costs
 * one load and a branch.
 *
 * Times are seconds since the first trace_on() or trace() call; the CLI
 * makes that call first thing, so that the timeline starts with the
 * process. */
#ifndef CRSTREAM_UTIL_TRACE_H
#define CRSTREAM_UTIL_TRACE_H

#include <stdbool.h>

/* Whether tracing is on (reads CRSTREAM_TRACE once). */
bool trace_on(void);

/* One line, "[seconds who] message", written in one piece. */
void trace(const char *who, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
