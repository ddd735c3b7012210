#include "checkpoint/progress.h"
#include "util/fdio.h"

#include <stddef.h>

static const char *const phase_names[] = {
	[CKPT_PREPARING] = "preparing", [CKPT_CAPTURING] = "capturing",
	[CKPT_STORING] = "storing",	[CKPT_SEALING] = "sealing",
	[CKPT_FETCHING] = "fetching",	[CKPT_VERIFYING] = "verifying",
	[CKPT_DONE] = "done",		[CKPT_FAILED] = "failed",
};

const char *ckpt_phase_name(enum ckpt_phase phase)
{
	if ((size_t)phase < sizeof(phase_names) / sizeof(phase_names[0]) && phase_names[phase])
		return phase_names[phase];
	return "unknown";
}

void progress_meter_init(struct progress_meter *m, const struct ckpt_progress_sink *sink)
{
	*m = (struct progress_meter){.t0_ms = now_ms(), .last_phase = CKPT_PREPARING};
	if (sink)
		m->sink = *sink;
}

/* The rate follows the last interval's, weighted so that one slow or fast
 * tick (a part upload finishing, a stall) does not make the ETA jump about;
 * a new phase starts its rate afresh, since each phase moves at its own
 * pace. */
static void update_rate(struct progress_meter *m, const struct ckpt_progress *p, uint64_t t)
{
	if (p->phase != m->last_phase || p->done_bytes < m->last_done) {
		m->rate = 0;
		m->last_phase = p->phase;
		m->last_ms = t;
		m->last_done = p->done_bytes;
		return;
	}
	if (t < m->last_ms + 200)	/* too short an interval to say anything */
		return;
	double interval = (double)(p->done_bytes - m->last_done) * 1000.0 / (double)(t - m->last_ms);
	m->rate = m->rate > 0 ? 0.7 * m->rate + 0.3 * interval : interval;
	m->last_ms = t;
	m->last_done = p->done_bytes;
}

void progress_meter_emit(struct progress_meter *m, struct ckpt_progress *p)
{
	if (!m->sink.fn)
		return;
	uint64_t t = now_ms();
	update_rate(m, p, t);
	if (p->total_bytes && p->done_bytes > p->total_bytes)
		p->done_bytes = p->total_bytes;
	p->elapsed_ms = t - m->t0_ms;
	p->rate = (uint64_t)m->rate;
	p->eta_ms = -1;
	if (p->total_bytes && p->rate > 0 && p->phase != CKPT_DONE && p->phase != CKPT_FAILED)
		p->eta_ms = (int64_t)((p->total_bytes - p->done_bytes) * 1000 / p->rate);
	m->sink.fn(m->sink.arg, p);
}
