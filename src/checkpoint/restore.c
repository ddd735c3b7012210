/* crstream restore.
 *
 *   store objects -> N workers (fetch -> checksum -> decoder) -> N pipes
 *                 -> serve engine -> CRIU --stream
 *
 * CRIU runs our post-restore hook once it has consumed every image and
 * before the restored tasks run. The hook waits for every stream to reach
 * its end and requires: no decode error, every checksum as in the manifest,
 * every image file present with its recorded size. Otherwise it refuses and
 * CRIU kills the restored tree: a bad checkpoint is never half-restored. */
#include "checkpoint/restore.h"
#include "checkpoint/hook.h"
#include "checkpoint/layout.h"
#include "checkpoint/protect.h"
#include "checkpoint/progress.h"
#include "checkpoint/session.h"
#include "checkpoint/streams.h"
#include "criu/criu_exec.h"
#include "util/fdio.h"
#include "util/strmap.h"
#include "util/trace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

struct restore {
	const struct restore_opts *o;
	struct restore_result *r;
	struct store *store;
	struct layout lay;
	struct protect *prot;	/* decryption and the trust policy, or NULL */
	char privdir[PATH_MAX];
	char plain_dir[PATH_MAX + 16];	/* plain: CRIU's -D, links to plain[] */
	struct reader **plain;	/* plain: the image files, open and checked */
	size_t nplain;
	char log_path[PATH_MAX + 32];
	char pid_path[PATH_MAX + 32];
	struct stream_set streams;
	struct engine_opts eo;
	struct engine_result eres;
	struct shard_stat *stats;
	uint64_t *shard_limits;	/* the manifest's raw_bytes per stream */
	struct engine_thread et;
	int cancel_fd;
	struct hook_server hook;
	pthread_mutex_t mu;	/* guards files, loaded* */
	struct strmap files;	/* name -> size (as uintptr_t) of every file read */
	struct strmap manifest_files;	/* the names the manifest lists */
	bool loaded;
	int loaded_rc;
	char loaded_err[ERR_MAX];
	pthread_cond_t loaded_cv;
	atomic_bool interrupted;
	uint64_t t0;
	struct progress_meter meter;
	_Atomic int phase;		/* enum ckpt_phase; the hook thread moves it on */
	uint64_t raw_total;		/* shard bytes the manifest promises, 0 if unknown */
};

/* ---- engine callbacks ---- */

static void on_file(void *arg, const char *name, uint64_t size)
{
	struct restore *x = arg;
	pthread_mutex_lock(&x->mu);
	if (!strmap_add(&x->files, name, (void *)(uintptr_t)size))
		warnx_("cannot record %s: %s", name, err_msg());
	pthread_mutex_unlock(&x->mu);
}

static void on_loaded(void *arg, int rc, const char *msg)
{
	struct restore *x = arg;
	pthread_mutex_lock(&x->mu);
	x->loaded = true;
	x->loaded_rc = rc;
	snprintf(x->loaded_err, sizeof(x->loaded_err), "%s", msg);
	pthread_cond_broadcast(&x->loaded_cv);
	pthread_mutex_unlock(&x->mu);
}

/* The manifest knows every file of the image: CRIU's probes for optional
 * images need not wait for the whole image to be read, and a file it does
 * not list is refused as soon as it appears. */
static bool in_image(void *arg, const char *name)
{
	struct restore *x = arg;
	return strmap_get(&x->manifest_files, name) != NULL;
}

/* ... and it knows each file's size: a byte more is refused at once. */
static uint64_t recorded_size(void *arg, const char *name)
{
	struct restore *x = arg;
	struct strmap_entry *e = strmap_get(&x->manifest_files, name);
	return e ? ((const struct manifest_file *)e->value)->size : 0;
}

/* ---- the post-restore hook: verify before anything resumes ---- */

/* Stops the engine, then the workers (in that order: the engine reads the
 * pipes the workers write, and their fds must not close under it). */
static void stop_all(struct restore *x)
{
	uint64_t one = 1;
	(void)!write(x->cancel_fd, &one, sizeof(one));
	engine_thread_join(&x->et);
	streams_abort(&x->streams);
}

/* Sets the message explaining a failed restore: a worker's error (decode,
 * checksum, read) explains the engine's (a shard that ended early), which
 * explains CRIU's (fallback). Returns -1. */
static int failure_reason(struct restore *x, const char *fallback)
{
	if (streams_error(&x->streams) < 0)
		return -1;
	if (x->et.done && x->et.rc < 0 && !strstr(x->et.err, "cancelled"))
		return err_set("%s", x->et.err);
	return err_set("%s", fallback);
}

static int verify(struct restore *x)
{
	atomic_store(&x->phase, CKPT_VERIFYING);
	trace("restore", "post-restore hook: verifying");
	/* A plain image directory was verified before CRIU started. */
	if (x->lay.streams == 0)
		return atomic_load(&x->interrupted) ? err_set("interrupted") : 0;
	pthread_mutex_lock(&x->mu);
	while (!x->loaded)
		pthread_cond_wait(&x->loaded_cv, &x->mu);
	int loaded_rc = x->loaded_rc;
	char loaded_err[ERR_MAX];
	snprintf(loaded_err, sizeof(loaded_err), "%s", x->loaded_err);
	pthread_mutex_unlock(&x->mu);
	if (loaded_rc < 0) {
		/* Workers may be blocked on pipes the engine stopped reading. */
		stop_all(x);
		return failure_reason(x, loaded_err);
	}
	/* Every shard was read to its end, so every worker has finished:
	 * collect decode errors and checksum verdicts. */
	if (streams_wait_restore(&x->streams) < 0)
		return -1;
	int rc = 0;
	pthread_mutex_lock(&x->mu);
	if (x->lay.have_manifest)
		rc = manifest_check_files(&x->lay.m, &x->files);
	pthread_mutex_unlock(&x->mu);
	if (rc == 0 && atomic_load(&x->interrupted))
		rc = err_set("interrupted");
	trace("restore", "post-restore hook: %s", rc == 0 ? "verified" : err_msg());
	return rc;
}

/* CRIU's post-restore: may the restored tree run? */
static int on_post_restore(void *arg)
{
	return verify(arg);
}

/* ---- running CRIU ---- */

static void on_signal(void *arg, int sig)
{
	struct restore *x = arg;
	(void)sig;
	atomic_store(&x->interrupted, true);
	/* Cutting CRIU's image supply makes the restore fail, and CRIU then
	 * kills what it had restored. */
	uint64_t one = 1;
	if (x->cancel_fd >= 0)
		(void)!write(x->cancel_fd, &one, sizeof(one));
}

static int build_argv(struct restore *x, const char *images_dir, struct argv *a)
{
	const struct restore_opts *o = x->o;
	int rc = criu_argv_start(a, o->criu, "restore", x->lay.streams > 0, images_dir, x->log_path,
				 x->hook.script_path);
	rc |= argv_addf(a, "--pidfile=%s", x->pid_path);
	if (o->detach)
		rc |= argv_add(a, "--restore-detached");
	/* As recorded at dump time unless the user says otherwise. */
	if (o->shell_job == 1 || (o->shell_job < 0 && x->lay.m.shell_job))
		rc |= argv_add(a, "--shell-job");
	if (o->tcp_established || x->lay.m.tcp_established)
		rc |= argv_add(a, "--tcp-established");
	if (o->tcp_close)
		rc |= argv_add(a, "--tcp-close");
	if (o->leave_stopped)
		rc |= argv_add(a, "--leave-stopped");
	for (int i = 0; i < o->ncriu_opts; i++)
		rc |= argv_add(a, o->criu_opts[i]);
	return rc ? -1 : 0;
}

/* From the thread that waits for CRIU only (the sink's contract). */
static void report_progress(struct restore *x)
{
	struct ckpt_progress p = {.op = "restore", .target = x->o->path,
				  .phase = atomic_load(&x->phase), .streams = x->lay.streams,
				  .total_bytes = x->raw_total};
	p.captured_bytes = __atomic_load_n(&x->eres.file_bytes, __ATOMIC_RELAXED);
	streams_progress(&x->streams, &p.done_bytes, &p.stored_bytes);
	progress_meter_emit(&x->meter, &p);
}

static void on_tick(void *arg)
{
	report_progress(arg);
}

/* Verify-first: stored bytes read and verified, before CRIU starts. The
 * session takes SIGINT and SIGTERM only once CRIU runs; until then a
 * pending one stops the copies. */
static void on_held(void *arg, uint64_t held, uint64_t total)
{
	struct restore *x = arg;
	if (session_interrupted())
		atomic_store(&x->interrupted, true);
	struct ckpt_progress p = {.op = "restore", .target = x->o->path, .phase = CKPT_VERIFYING,
				  .streams = x->lay.streams, .total_bytes = total,
				  .done_bytes = held, .stored_bytes = held};
	progress_meter_emit(&x->meter, &p);
}

static int run_criu(struct restore *x, const char *images_dir)
{
	struct argv a = {0};
	if (build_argv(x, images_dir, &a) < 0) {
		argv_free(&a);
		return -1;
	}
	struct criu_watch w = {.log_path = x->log_path, .on_signal = on_signal, .on_tick = on_tick,
			       .arg = x};
	atomic_store(&x->phase, CKPT_FETCHING);
	report_progress(x);
	trace("restore", "starting CRIU");
	int rc = session_run_criu(x->privdir, &a, &w, &x->r->criu_ms);
	trace("restore", "CRIU exited (%s)", rc == 0 ? "ok" : "failed");
	/* The last event: what follows is bookkeeping (and any warnings). */
	bool verified = x->lay.streams == 0 || (x->hook.answered && x->hook.rc == 0);
	atomic_store(&x->phase, rc == 0 && verified ? CKPT_DONE : CKPT_FAILED);
	report_progress(x);
	return rc;
}

static int read_pid(const char *path, pid_t *pid)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("CRIU wrote no pid file %s", path);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || (*pid = (pid_t)atoi(buf)) <= 0)
		return err_set("CRIU's pid file %s is empty", path);
	return 0;
}

/* ---- plain image directories (--streams 0 dumps) ---- */

/* CRIU reads a plain image directory by path, and the directory is
 * whoever wrote it's: a file checked here could be another one by the time
 * CRIU opens it. So each image file is opened once (a regular file, not
 * through a symbolic link), checked against the manifest (size, checksum)
 * and kept open, and CRIU gets a private directory of symbolic links to
 * those descriptors (/proc/PID/fd/N): it reads exactly what was checked,
 * and never writes into the checkpoint (its stats-restore lands in the
 * private directory). */
static int hold_fds(size_t n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 256;	/* room for everything else */
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return err_sys("getrlimit(RLIMIT_NOFILE)");
	if (rl.rlim_cur >= want)
		return 0;
	if (rl.rlim_max < want)
		return err_set("the image has %zu files, more than the open-file limit (%llu) lets "
			       "a restore hold open", n, (unsigned long long)rl.rlim_max);
	rl.rlim_cur = want;
	return setrlimit(RLIMIT_NOFILE, &rl) < 0 ? err_sys("setrlimit(RLIMIT_NOFILE)") : 0;
}

static int check_plain_file(struct restore *x, const struct manifest_file *mf, int dirfd)
{
	uint64_t size;
	char hex[CHECKSUM_HEX + 1], target[64];
	struct reader *r = x->store->ops->open_read(x->store, mf->name, &size);
	if (!r)
		return -1;
	x->plain[x->nplain++] = r;
	int fd = r->ops->local_fd ? r->ops->local_fd(r) : -1;
	if (fd < 0)
		return err_set("a plain image directory must be local");
	if (checksum_fd(fd, hex, &size) < 0)
		return err_prefix("image file %s", mf->name);
	if (size != mf->size)
		return err_set("image file %s has %llu bytes, the manifest says %llu", mf->name,
			       (unsigned long long)size, (unsigned long long)mf->size);
	if (mf->checksum[0] && strcmp(hex, mf->checksum))
		return err_set("image file %s: checksum mismatch (corrupt image)", mf->name);
	snprintf(target, sizeof(target), "/proc/%d/fd/%d", (int)getpid(), fd);
	if (symlinkat(target, dirfd, mf->name) < 0)
		return err_sys("image file %s: symlink in %s", mf->name, x->plain_dir);
	x->r->image_bytes += size;
	return 0;
}

static int open_plain(struct restore *x)
{
	const struct manifest *m = &x->lay.m;
	if (store_is_remote(x->o->path))
		return err_set("a plain image directory must be local");
	if (hold_fds(m->nfiles) < 0)
		return -1;
	if (!(x->plain = calloc(m->nfiles + 1, sizeof(*x->plain))))
		return err_set("out of memory");
	snprintf(x->plain_dir, sizeof(x->plain_dir), "%s/images", x->privdir);
	int dirfd = dir_open_at(AT_FDCWD, x->plain_dir, true, true, x->plain_dir);
	if (dirfd < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < m->nfiles; i++) {
		rc = check_plain_file(x, &m->files[i], dirfd);
		if (rc == 0 && session_interrupted())
			rc = err_set("interrupted");
	}
	close(dirfd);
	return rc;
}

/* ---- streamed restore ---- */

static int start_streams(struct restore *x)
{
	const struct layout *lay = &x->lay;
	const char **sums = NULL;
	bool policy = protect_verifies(x->prot);
	/* Under a trust policy the signed SHA-256 chunk digests check every
	 * stored byte: the manifest's XXH3 of the same bytes would add only
	 * a second pass over them. */
	if (lay->have_manifest && !policy) {
		if (!(sums = calloc((size_t)lay->streams, sizeof(char *))))
			return err_set("out of memory");
		for (int i = 0; i < lay->streams; i++)
			sums[i] = lay->m.stream[i].checksum;
	}
	/* Under a trust policy the default is to verify everything before
	 * CRIU starts, holding the verified stored bytes; without one,
	 * --verify-first decodes everything before CRIU starts. */
	if (policy && x->o->verify_first != 0) {
		trace("restore", "verifying every stream before CRIU starts");
		struct hold_tick tick = {on_held, x};
		if (protect_hold_verified(x->prot, x->store, lay, &x->interrupted, &tick) < 0) {
			free(sums);
			return -1;
		}
		trace("restore", "every stream verified");
	}
	int rc = streams_start_restore(&x->streams, lay->streams, protect_store(x->prot, x->store),
				       "", lay->files, sums,
				       lay->codec, protect_filters(x->prot));
	trace("restore", "stream workers started");
	free(sums);
	if (rc < 0)
		return -1;
	/* Every stream has opened its age header: the keys can go. */
	protect_restore_started(x->prot);
	int *fds = calloc((size_t)lay->streams, sizeof(int));
	const char **labels = calloc((size_t)lay->streams, sizeof(char *));
	x->stats = calloc((size_t)lay->streams, sizeof(*x->stats));
	x->shard_limits = calloc((size_t)lay->streams, sizeof(uint64_t));
	if (!fds || !labels || !x->stats || !x->shard_limits) {
		free(fds);
		free(labels);
		return err_set("out of memory");
	}
	for (int i = 0; i < lay->streams; i++) {
		struct stream *s = &x->streams.s[i];
		fds[i] = s->engine_fd;
		labels[i] = s->file;
	}
	engine_opts_init(&x->eo);
	x->eo.images_dir = x->privdir;
	x->eo.shard_fds = fds;
	x->eo.shard_labels = labels;
	x->eo.nshards = lay->streams;
	x->eo.cancel_fd = x->cancel_fd;
	x->eo.memory_limit = x->o->memory_limit;
	x->eo.load_before_listen = !policy && x->o->verify_first == 1;
	x->eo.allow_cedana = !lay->have_manifest;
	x->eo.on_file = on_file;
	x->eo.on_loaded = on_loaded;
	/* What the manifest promises is enforced where a stream breaks it:
	 * a shard longer than its raw size, a file longer than its size, a
	 * file it does not list; and the spill is bounded by the image's
	 * size unless the user says otherwise. */
	x->eo.spill_limit = x->o->spill_limit ? x->o->spill_limit : lay->m.image_bytes;
	if (lay->have_manifest) {
		x->eo.in_image = in_image;
		x->eo.recorded_size = recorded_size;
		for (int i = 0; i < lay->streams; i++)
			x->shard_limits[i] = lay->m.stream[i].raw_bytes;
		x->eo.shard_limits = x->shard_limits;
	}
	x->eo.arg = x;
	x->eres.shards = x->stats;
	return engine_thread_start(&x->et, engine_serve, &x->eo, &x->eres);
}

/* The most telling reason for a failed restore: ours before CRIU's (a bad
 * stream explains CRIU's failure, not the other way round). */
static void pick_reason(struct restore *x, const char *criu_err, char *buf, size_t size)
{
	if (atomic_load(&x->interrupted))
		snprintf(buf, size, "interrupted");
	else if (x->hook.answered && x->hook.rc < 0)
		snprintf(buf, size, "%s", x->hook.err);
	else {
		stop_all(x);
		failure_reason(x, criu_err);
		snprintf(buf, size, "%s", err_msg());
	}
}

/* CRIU went on although the post-restore hook refused (it must not: a
 * broken hook client or a CRIU that ignores the script's status). The
 * tree it restored was never verified, so it must not run. Returns -1. */
static int kill_unverified_tree(struct restore *x)
{
	pid_t pid;
	if (read_pid(x->pid_path, &pid) == 0) {
		/* A restored tree keeps its process group: the whole group. */
		if (getpgid(pid) == pid)
			kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	return err_set("%s (CRIU went on after the refusal; the restored process was killed)",
		       x->hook.err);
}

static int run_restore(struct restore *x)
{
	char images_dir[PATH_MAX + 16];
	bool plain = x->lay.streams == 0;
	if (plain) {
		if (open_plain(x) < 0)
			return -1;
		snprintf(images_dir, sizeof(images_dir), "%s", x->plain_dir);
	} else {
		snprintf(images_dir, sizeof(images_dir), "%s", x->privdir);
		/* With verify_first the engine has read every stream by now: a
		 * stream's own error explains the engine's. */
		if (start_streams(x) < 0) {
			char engine_err[ERR_MAX];
			err_copy(engine_err, sizeof(engine_err));
			stop_all(x);
			return failure_reason(x, engine_err);
		}
	}
	if (hook_server_start(&x->hook, x->privdir, x->o->self, "post-restore", on_post_restore, x) < 0)
		return -1;
	char criu_err[ERR_MAX];
	int rc = run_criu(x, images_dir);
	err_copy(criu_err, sizeof(criu_err));
	hook_server_stop(&x->hook);
	if (rc == 0 && !plain && !x->hook.answered)
		rc = err_set("CRIU finished without running the post-restore hook");
	if (rc == 0 && x->hook.answered && x->hook.rc < 0)
		return kill_unverified_tree(x);
	if (rc < 0) {
		char why[ERR_MAX];
		if (plain)
			return err_set("%s", criu_err);
		pick_reason(x, criu_err, why, sizeof(why));
		return err_set("%s", why);
	}
	if (!plain && engine_thread_join(&x->et) < 0)
		warnx_("after the restore: %s", err_msg());
	x->r->peak_buffered = x->eres.peak_buffered;
	x->r->spilled = x->eres.spilled;
	if (!plain)
		x->r->image_bytes = x->eres.file_bytes;
	return read_pid(x->pid_path, &x->r->pid);
}

static int prepare(struct restore *x)
{
	const struct restore_opts *o = x->o;
	/* Reading the checkpoint may block (a stalled server, a stuck
	 * mount): until it is read, SIGINT and SIGTERM end the process at
	 * once, which has nothing to clean up yet. From then on the session
	 * takes them and cleans up. */
	if (session_exit_on_signals() < 0)
		return -1;
	if (protect_restore_new(o->identities ? o->identities : "",
				o->trusted_keys ? o->trusted_keys : "", &x->prot) < 0)
		return -1;
	if (store_open(x->o->path, x->o->store_opt, &x->store) < 0)
		return -1;
	trace("restore", "reading the manifest");
	if (protect_open_checkpoint(x->store, x->o->path, &x->prot, &x->lay) < 0)
		return -1;
	trace("restore", "manifest read: %d streams, %s", x->lay.streams, x->lay.codec->name);
	if (session_block_signals() < 0)
		return -1;
	x->r->encrypted = x->lay.encrypted;
	snprintf(x->r->trust, sizeof(x->r->trust), "%s", protect_trust(x->prot));
	x->r->streams = x->lay.streams;
	snprintf(x->r->compression, sizeof(x->r->compression), "%s", x->lay.codec->name);
	snprintf(x->r->layout, sizeof(x->r->layout), "%s", x->lay.kind);
	x->r->stored_bytes = x->lay.stored_bytes;
	for (int i = 0; x->lay.have_manifest && i < x->lay.streams; i++)
		x->raw_total += x->lay.m.stream[i].raw_bytes;
	if (session_mkdir(x->privdir, sizeof(x->privdir)) < 0)
		return -1;
	snprintf(x->log_path, sizeof(x->log_path), "%s/criu-restore.log", x->privdir);
	if (x->o->pid_file)
		snprintf(x->pid_path, sizeof(x->pid_path), "%s", x->o->pid_file);
	else
		snprintf(x->pid_path, sizeof(x->pid_path), "%s/restored.pid", x->privdir);
	x->cancel_fd = eventfd(0, EFD_CLOEXEC);
	if (x->cancel_fd < 0)
		return err_sys("eventfd");
	if (strmap_init(&x->files) < 0 || strmap_init(&x->manifest_files) < 0)
		return -1;
	for (size_t i = 0; i < x->lay.m.nfiles; i++)
		if (!strmap_add(&x->manifest_files, x->lay.m.files[i].name, &x->lay.m.files[i]))
			return err_prefix("%s", MANIFEST_NAME);
	return 0;
}

/* Keep the log of a failed restore where the user can read it, and say
 * where in the message. */
static void keep_log(struct restore *x)
{
	char kept[PATH_MAX + 64], saved[ERR_MAX];
	const char *tmp = getenv("TMPDIR");
	snprintf(kept, sizeof(kept), "%s/crstream-restore-%d.log", tmp && *tmp ? tmp : "/tmp",
		 (int)getpid());
	err_copy(saved, sizeof(saved));
	if (rename(x->log_path, kept) == 0)
		err_set("%s (CRIU's log: %s)", saved, kept);
	else
		err_set("%s", saved);
}

static void cleanup(struct restore *x)
{
	if (x->cancel_fd >= 0)
		stop_all(x);
	streams_free(&x->streams);
	free((void *)x->eo.shard_fds);
	free((void *)x->eo.shard_labels);
	free(x->stats);
	free(x->shard_limits);
	if (x->cancel_fd >= 0)
		close(x->cancel_fd);
	if (x->plain_dir[0])
		session_rmdir(x->plain_dir);
	for (size_t i = 0; i < x->nplain; i++)
		reader_close(x->plain[i]);
	free(x->plain);
	if (x->privdir[0])
		session_rmdir(x->privdir);
	if (x->files.buckets)
		strmap_free(&x->files);
	if (x->manifest_files.buckets)
		strmap_free(&x->manifest_files);
	layout_free(&x->lay);
	protect_free(x->prot);
	store_close(x->store);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->loaded_cv);
}

int checkpoint_restore(const struct restore_opts *o, struct restore_result *r)
{
	struct restore *x = calloc(1, sizeof(*x));
	if (!x)
		return err_set("out of memory");
	memset(r, 0, sizeof(*r));
	x->o = o;
	x->r = r;
	x->cancel_fd = -1;
	x->t0 = now_ms();
	progress_meter_init(&x->meter, &o->progress);
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->loaded_cv, NULL);
	int rc = prepare(x);
	if (rc == 0)
		rc = run_restore(x);
	if (rc < 0 && x->privdir[0] && access(x->log_path, R_OK) == 0)
		keep_log(x);
	char saved[ERR_MAX];
	err_copy(saved, sizeof(saved));
	cleanup(x);
	r->served_bytes = x->eres.served_bytes;	/* the engine has stopped */
	err_set("%s", saved);
	r->restore_ms = now_ms() - x->t0;
	free(x);
	return rc;
}
