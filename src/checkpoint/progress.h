/* Progress of a dump or restore, as events the checkpoint layer emits and
 * each front end renders its own way: the CLI as its terminal line, the
 * daemon as messages of its progress stream. The checkpoint layer knows
 * nothing about terminals or RPCs; it fills a snapshot a few times a
 * second and at every change of phase.
 *
 * What the numbers mean, so that every front end says the same thing:
 *   captured_bytes  image bytes CRIU has handed over (dump) or been served
 *                   (restore) so far;
 *   done_bytes / total_bytes
 *                   the long part of the work: shard bytes compressed and
 *                   handed to the store (dump), or fetched and decoded
 *                   (restore), against what they will add up to
 *                   (total 0 while not known: a dump learns it when CRIU
 *                   has sent its last image);
 *   stored_bytes    bytes written to, or read from, the store (compressed).
 * rate is done_bytes per second (smoothed), eta_ms the time left at that
 * rate (-1 when not known). */
#ifndef CRSTREAM_CHECKPOINT_PROGRESS_H
#define CRSTREAM_CHECKPOINT_PROGRESS_H

#include <stdint.h>

enum ckpt_phase {
	CKPT_PREPARING,	/* opening the location, starting CRIU */
	CKPT_CAPTURING,	/* dump: CRIU sends the image (the tree is frozen) */
	CKPT_STORING,	/* dump: the last images compressed and stored */
	CKPT_SEALING,	/* dump: the final manifest written */
	CKPT_FETCHING,	/* restore: streams fetched and decoded, CRIU restoring */
	CKPT_VERIFYING,	/* restore: every stream checked before the tree runs */
	CKPT_DONE,
	CKPT_FAILED,
};

/* "preparing", "capturing", ... */
const char *ckpt_phase_name(enum ckpt_phase phase);

struct ckpt_progress {
	const char *op;		/* "dump" or "restore" */
	const char *target;	/* "pid 1234", or the checkpoint's location */
	enum ckpt_phase phase;
	int streams;
	uint64_t elapsed_ms;
	uint64_t captured_bytes;
	uint64_t done_bytes;
	uint64_t total_bytes;
	uint64_t stored_bytes;
	uint64_t rate;		/* done_bytes per second */
	int64_t eta_ms;
};

/* Where events go. Called from the thread that runs the dump/restore
 * (never concurrently for one operation); must not block for long. */
struct ckpt_progress_sink {
	void (*fn)(void *arg, const struct ckpt_progress *p);
	void *arg;
};

/* Turns counter snapshots into events: elapsed time, a smoothed rate and
 * an ETA, then hands them to the sink. */
struct progress_meter {
	struct ckpt_progress_sink sink;
	uint64_t t0_ms;
	uint64_t last_ms;
	uint64_t last_done;
	double rate;
	enum ckpt_phase last_phase;
};

void progress_meter_init(struct progress_meter *m, const struct ckpt_progress_sink *sink);

/* Completes p (elapsed_ms, rate, eta_ms) and emits it, if there is a sink. */
void progress_meter_emit(struct progress_meter *m, struct ckpt_progress *p);

#endif
