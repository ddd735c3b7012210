/* The terminal rendering of progress events: one line on stderr, redrawn
 * in place, erased when the operation ends.
 *
 *   crstream: dump pid 12: capturing 310.2 MiB from CRIU, 2 streams
 *   crstream: dump pid 12: storing 120.0 MiB of 512.1 MiB (23%), 45.0 MiB/s, ETA 9s, 2 streams
 *   crstream: restore /ck/x: verifying 60.0 MiB of 240.3 MiB (24%), 300.0 MiB/s, ETA 1s, 2 streams
 *   crstream: restore /ck/x: fetching 80.0 MiB of 512.1 MiB (15%), 210.0 MiB/s, ETA 2s, 2 streams */
#include "cli/cli.h"
#include "checkpoint/progress.h"
#include "util/fmt.h"

#include <inttypes.h>
#include <stdio.h>

static void format_eta(int64_t ms, char *buf, size_t size)
{
	int64_t s = (ms + 999) / 1000;
	if (s >= 3600)
		snprintf(buf, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s / 60 % 60);
	else if (s >= 60)
		snprintf(buf, size, "%" PRId64 "m%02" PRId64 "s", s / 60, s % 60);
	else
		snprintf(buf, size, "%" PRId64 "s", s);
}

/* "120.0 MiB of 512.1 MiB (23%), 45.0 MiB/s, ETA 9s" (the parts known). */
static void format_work(const struct ckpt_progress *p, char *buf, size_t size)
{
	char done[32], total[32], rate[32], eta[32];
	format_bytes(p->done_bytes, done, sizeof(done));
	int n;
	if (p->total_bytes) {
		format_bytes(p->total_bytes, total, sizeof(total));
		n = snprintf(buf, size, "%s of %s (%d%%)", done, total,
			     (int)(p->done_bytes * 100 / p->total_bytes));
	} else {
		n = snprintf(buf, size, "%s", done);
	}
	if (n < 0 || (size_t)n >= size)
		return;
	format_bytes(p->rate, rate, sizeof(rate));
	n += snprintf(buf + n, size - (size_t)n, ", %s/s", rate);
	if (p->eta_ms >= 0 && (size_t)n < size) {
		format_eta(p->eta_ms, eta, sizeof(eta));
		snprintf(buf + n, size - (size_t)n, ", ETA %s", eta);
	}
}

void progress_line_render(void *arg, const struct ckpt_progress *p)
{
	bool *drawn = arg;
	if (p->phase == CKPT_DONE || p->phase == CKPT_FAILED) {
		if (*drawn)
			fputs("\r\033[K", stderr);
		*drawn = false;
		return;
	}
	char what[160] = "", captured[32];
	switch (p->phase) {
	case CKPT_CAPTURING:
		format_bytes(p->captured_bytes, captured, sizeof(captured));
		snprintf(what, sizeof(what), "%s from CRIU", captured);
		break;
	case CKPT_STORING:
	case CKPT_FETCHING:
		format_work(p, what, sizeof(what));
		break;
	case CKPT_VERIFYING:	/* before CRIU starts (verify-first): stored bytes */
		if (p->done_bytes < p->total_bytes)
			format_work(p, what, sizeof(what));
		break;
	default:
		break;
	}
	fprintf(stderr, "\rcrstream: %s %s: %s%s%s, %d stream%s\033[K", p->op, p->target,
		ckpt_phase_name(p->phase), what[0] ? " " : "", what, p->streams,
		p->streams == 1 ? "" : "s");
	fflush(stderr);
	*drawn = true;
}
