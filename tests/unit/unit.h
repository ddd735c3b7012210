/* A minimal unit-test harness: each test_*.c is one program; CHECK records
 * a failure with file:line and the expression and carries on; the program
 * exits non-zero if any check failed. RUN prints one line per test,
 * "ok   NAME", "FAIL NAME" or "skip NAME: why" (a test that called
 * UNIT_SKIP), which tests/run.sh counts. */
#ifndef CRSTREAM_TEST_UNIT_H
#define CRSTREAM_TEST_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_failures;
static int unit_checks;
static char unit_skipped[256];	/* set by UNIT_SKIP: why the current test did not run */

/* Marks the current test skipped (it should return right after). */
#define UNIT_SKIP(...) snprintf(unit_skipped, sizeof(unit_skipped), __VA_ARGS__)

#define CHECK(expr)                                                                  \
	do {                                                                         \
		unit_checks++;                                                       \
		if (!(expr)) {                                                       \
			unit_failures++;                                             \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
				#expr);                                              \
		}                                                                    \
	} while (0)

/* The current error message (util/err.h) contains `needle`. */
#define CHECK_ERR(needle)                                                            \
	do {                                                                         \
		unit_checks++;                                                       \
		if (!strstr(err_msg(), (needle))) {                                  \
			unit_failures++;                                             \
			fprintf(stderr, "%s:%d: error message \"%s\" lacks \"%s\"\n",  \
				__FILE__, __LINE__, err_msg(), (needle));            \
		}                                                                    \
	} while (0)

#define RUN(test)                                                                    \
	do {                                                                         \
		int before = unit_failures;                                          \
		unit_skipped[0] = '\0';                                              \
		test();                                                              \
		if (unit_failures == before && unit_skipped[0])                      \
			fprintf(stderr, "skip %s: %s\n", #test, unit_skipped);       \
		else                                                                 \
			fprintf(stderr, "%s %s\n",                                   \
				unit_failures == before ? "ok  " : "FAIL", #test);   \
	} while (0)

static inline int unit_done(void)
{
	fprintf(stderr, "%d checks, %d failed\n", unit_checks, unit_failures);
	return unit_failures ? 1 : 0;
}

#endif
