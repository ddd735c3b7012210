/* Periodic checkpoints: a scheduler thread starts each job's policy dump
 * when it is due (with leave-running: the job goes on), and a completed
 * one prunes the policy's older checkpoints. Pruning only ever follows a
 * newer complete checkpoint, so a job always keeps at least one. */
#include "daemon/daemon.h"
#include "cli/config.h"
#include "codec/codec.h"
#include "store/store.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

int policy_check(struct daemon *d, const struct policy_request *p, struct rpc_status *st)
{
	(void)d;
	if (!p->given)
		return 0;
	if (p->interval > 366u * 86400)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "policy.interval_seconds %u: at most a year",
				 p->interval);
	if (p->keep > 10000)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "policy.keep %u: at most 10000", p->keep);
	if (p->streams > 64)
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "policy.streams %u: at most 64",
				 p->streams);
	if (p->compression && *p->compression && !codec_by_name(p->compression))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT, "policy.compression \"%s\": unknown (use %s)",
				 p->compression, codec_names());
	if (p->dir && *p->dir && p->dir[0] != '/' && !store_is_remote(p->dir))
		return rpc_error(st, GRPC_STATUS_INVALID_ARGUMENT,
				 "policy.dir \"%s\": must be an absolute path or an s3:// or gs:// URL",
				 p->dir);
	return 0;
}

int policy_set(struct daemon *d, const char *jid, const struct policy_request *p,
	       struct rpc_status *st)
{
	struct job_row j;
	if (policy_check(d, p, st) < 0)
		return -1;
	pthread_mutex_lock(&d->mu);
	int rc = job_get(d, jid, &j, st);
	if (rc == 0) {
		j.policy_interval = p->interval;
		j.policy_keep = p->keep ? p->keep : (uint32_t)config_uint(d->cfg, "policy.keep");
		snprintf(j.policy_dir, sizeof(j.policy_dir), "%s", p->dir ? p->dir : "");
		j.policy_streams = (int)p->streams;
		snprintf(j.policy_compression, sizeof(j.policy_compression), "%s",
			 p->compression ? p->compression : "");
		j.policy_next_ms = p->interval ? unix_ms() + (int64_t)p->interval * 1000 : 0;
		if (catalog_update_job(d->cat, &j) < 0)
			rc = rpc_error(st, GRPC_STATUS_INTERNAL, "%s", err_msg());
	}
	pthread_mutex_unlock(&d->mu);
	return rc;
}

/* ---- the scheduler ---- */

struct due {
	struct job_row *rows;
	size_t n;
};

static int collect_due(const struct job_row *j, void *arg)
{
	struct due *due = arg;
	if (!j->policy_interval || strcmp(j->state, "running") || j->policy_next_ms > unix_ms())
		return 0;
	struct job_row *g = realloc(due->rows, (due->n + 1) * sizeof(*g));
	if (!g)
		return err_set("out of memory");
	due->rows = g;
	due->rows[due->n++] = *j;
	return 0;
}

static void start_policy_dump(struct daemon *d, struct job_row *j)
{
	struct rpc_status st = {0};
	const char *dir = j->policy_dir[0] ? j->policy_dir : config_get(d->cfg, "policy.dir");
	struct dump_request rq = {
		.jid = j->jid,
		.dir = *dir ? dir : NULL,
		.streams = j->policy_streams ? j->policy_streams : -1,
		.compression = j->policy_compression[0] ? j->policy_compression : NULL,
		.leave_running = true,
		.criu.shell_job = -1,
		.policy = true,
	};
	struct op *op;
	pthread_mutex_lock(&d->mu);
	bool busy = op_busy_job(d, j->jid);
	pthread_mutex_unlock(&d->mu);
	if (busy)
		return;	/* due again at the next look, once the other ends */
	if (op_start_dump(d, &rq, &op, &st) == 0)
		op_put(d, op);
	else
		warnx_("job %s: periodic checkpoint not started: %s", j->jid, st.msg);
	/* The next one is due an interval from now, whether this one could
	 * start or not. */
	pthread_mutex_lock(&d->mu);
	struct job_row now;
	if (catalog_get_job(d->cat, j->jid, &now) == 0 && now.policy_interval) {
		now.policy_next_ms = unix_ms() + (int64_t)now.policy_interval * 1000;
		if (catalog_update_job(d->cat, &now) < 0)
			warnx_("%s", err_msg());
	}
	pthread_mutex_unlock(&d->mu);
}

static void *scheduler_main(void *arg)
{
	struct daemon *d = arg;
	struct pollfd p = {.fd = d->policy_stop_fd, .events = POLLIN};
	for (;;) {
		int n = poll(&p, 1, 250);
		if (n > 0 || (n < 0 && errno != EINTR))
			break;
		struct due due = {0};
		if (catalog_each_job(d->cat, collect_due, &due) < 0)
			warnx_("policies: %s", err_msg());
		for (size_t i = 0; i < due.n; i++) {
			pthread_mutex_lock(&d->mu);
			bool draining = d->draining;
			pthread_mutex_unlock(&d->mu);
			if (draining)
				break;
			start_policy_dump(d, &due.rows[i]);
		}
		free(due.rows);
	}
	return NULL;
}

int policy_start(struct daemon *d)
{
	d->policy_stop_fd = eventfd(0, EFD_CLOEXEC);
	if (d->policy_stop_fd < 0)
		return err_sys("eventfd");
	if (pthread_create(&d->policy, NULL, scheduler_main, d) != 0)
		return err_set("cannot start the policy thread");
	d->policy_started = true;
	return 0;
}

void policy_stop(struct daemon *d)
{
	if (!d->policy_started)
		return;
	uint64_t one = 1;
	(void)!write(d->policy_stop_fd, &one, sizeof(one));
	pthread_join(d->policy, NULL);
	close(d->policy_stop_fd);
	d->policy_started = false;
}

/* ---- pruning ---- */

struct rows {
	struct ckpt_row *r;
	size_t n;
};

static int collect_policy_rows(const struct ckpt_row *r, void *arg)
{
	struct rows *rows = arg;
	if (!r->policy)
		return 0;
	struct ckpt_row *g = realloc(rows->r, (rows->n + 1) * sizeof(*g));
	if (!g)
		return err_set("out of memory");
	rows->r = g;
	rows->r[rows->n++] = *r;
	return 0;
}

void policy_prune(struct daemon *d, const char *jid)
{
	struct job_row j;
	struct rows rows = {0};
	if (catalog_get_job(d->cat, jid, &j) != 0 || !j.policy_keep)
		return;
	/* Oldest first. */
	if (catalog_each_checkpoint(d->cat, jid, NULL, NULL, collect_policy_rows, &rows) < 0) {
		warnx_("job %s: pruning: %s", jid, err_msg());
		return;
	}
	size_t complete = 0, newest_complete = 0;
	for (size_t i = 0; i < rows.n; i++)
		if (!strcmp(rows.r[i].state, "complete")) {
			complete++;
			newest_complete = i;
		}
	size_t extra = complete > j.policy_keep ? complete - j.policy_keep : 0;
	for (size_t i = 0; i < rows.n; i++) {
		struct ckpt_row *r = &rows.r[i];
		bool old_complete = !strcmp(r->state, "complete") && extra > 0;
		bool stale = !strcmp(r->state, "incomplete") && complete && i < newest_complete;
		if (!old_complete && !stale)
			continue;
		if (old_complete)
			extra--;
		struct rpc_status st = {0};
		unsigned objects;
		if (checkpoint_delete(d, r, &objects, &st) < 0)
			warnx_("job %s: pruning %s: %s", jid, r->location, st.msg);
	}
	free(rows.r);
}
