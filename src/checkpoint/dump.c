/* crstream dump.
 *
 *   CRIU --stream -> capture engine -> N pipes -> N workers
 *                    (encoder -> checksum -> store object)
 *
 * Ordering is what makes a checkpoint safe to kill for: CRIU runs our
 * post-dump hook after its last image and before it kills the tree. The
 * hook ends the capture, closes every stream (frames finished, objects
 * fsync'd or uploads completed) and writes the final manifest; only then
 * does it let CRIU go on. Any failure before that point makes the hook say
 * no, and CRIU resumes the tree instead. */
#include "checkpoint/dump.h"
#include "checkpoint/hook.h"
#include "checkpoint/manifest.h"
#include "checkpoint/protect.h"
#include "checkpoint/progress.h"
#include "checkpoint/session.h"
#include "checkpoint/streams.h"
#include "criu/criu_exec.h"
#include "util/fdio.h"
#include "util/version.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

struct dump {
	const struct dump_opts *o;
	struct dump_result *r;
	struct store *store;
	char prefix[300];		/* "NAME/" */
	char privdir[PATH_MAX];
	char log_path[PATH_MAX + 32];
	struct manifest m;
	struct protect *prot;		/* encryption and signing, or NULL */
	pthread_mutex_t mu;		/* guards m.files (engine thread adds) */
	struct stream_set streams;
	struct engine_opts eo;
	struct engine_result eres;
	struct shard_stat *stats;
	struct engine_thread et;
	int cancel_fd;
	int finish_fd;
	struct hook_server hook;
	atomic_bool interrupted;
	uint64_t t0;
	struct progress_meter meter;
	_Atomic int phase;		/* enum ckpt_phase; the hook thread moves it on */
	char target[64];		/* "pid 1234", for progress reports */
};

/* ---- setup ---- */

static int check_target(pid_t pid)
{
	if (pid <= 0)
		return err_set("invalid pid %d", (int)pid);
	if (!process_alive(pid))
		return err_set("no process with pid %d", (int)pid);
	if (pid == getpid())
		return err_set("crstream cannot dump itself");
	return 0;
}

static void fill_host_info(struct manifest *m)
{
	struct utsname u;
	if (uname(&u) == 0) {
		m->hostname = strdup(u.nodename);
		if (asprintf(&m->kernel, "%s %s", u.sysname, u.release) < 0)
			m->kernel = NULL;
	}
	m->tool_version = strdup(CRSTREAM_VERSION);
}

static int init_manifest(struct dump *d)
{
	const struct dump_opts *o = d->o;
	struct manifest *m = &d->m;
	char version[64] = "";
	if (criu_version(o->criu, version, sizeof(version)) < 0)
		return err_prefix("CRIU at %s", o->criu);
	m->criu_version = strdup(version);
	m->name = strdup(d->r->name);
	m->streams = o->streams;
	/* What the streams are, not what made them ("auto" writes zstd):
	 * restore goes by this name. */
	snprintf(m->compression, sizeof(m->compression), "%s",
		 o->streams ? codec_format(o->codec)->name : "none");
	m->level = o->level;
	m->pid = (int)o->pid;
	fill_host_info(m);
	utc_now(m->started_at, sizeof(m->started_at));
	m->error = strdup("dump in progress (or interrupted before it finished)");
	if (!m->name || !m->criu_version)
		return err_set("out of memory");
	return protect_describe(d->prot, m);
}

static int put_manifest(struct dump *d)
{
	char key[400];
	snprintf(key, sizeof(key), "%s%s", d->prefix, MANIFEST_NAME);
	char *json = manifest_to_json(&d->m);
	if (!json)
		return -1;
	/* The signature first: once the manifest says complete, its
	 * signature is there too. */
	int rc = d->m.complete ? protect_sign(d->prot, d->store, d->prefix, json) : 0;
	if (rc < 0) {
		free(json);
		return -1;
	}
	rc = d->store->ops->put(d->store, key, json, strlen(json));
	free(json);
	return rc < 0 ? err_prefix("writing the manifest") : 0;
}

static int refuse_existing(struct dump *d)
{
	char key[400];
	void *buf;
	size_t len;
	snprintf(key, sizeof(key), "%s%s", d->prefix, MANIFEST_NAME);
	int rc = d->store->ops->get(d->store, key, &buf, &len);
	if (rc < 0)
		return -1;
	if (rc == 0) {
		free(buf);
		return err_set("checkpoint %s already exists", d->r->location);
	}
	return 0;
}

static void default_name(pid_t pid, char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;
	char stamp[32];
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(buf, size, "dump-%d-%s", (int)pid, stamp);
}

/* ---- CRIU's command line ---- */

static int build_criu_argv(struct dump *d, const char *images_dir, struct argv *a)
{
	const struct dump_opts *o = d->o;
	/* CRIU refuses a tree that is not a session leader without it. */
	int shell_job = o->shell_job >= 0 ? o->shell_job : getsid(o->pid) != o->pid;
	d->m.shell_job = shell_job;
	d->m.tcp_established = o->tcp_established;
	int rc = criu_argv_start(a, o->criu, "dump", o->streams > 0, images_dir, d->log_path,
				 d->hook.script_path);
	rc |= argv_addf(a, "--tree=%d", (int)o->pid);
	if (o->leave_running)
		rc |= argv_add(a, "--leave-running");
	if (shell_job)
		rc |= argv_add(a, "--shell-job");
	if (o->tcp_established)
		rc |= argv_add(a, "--tcp-established");
	if (o->file_locks)
		rc |= argv_add(a, "--file-locks");
	if (o->ext_unix_sk)
		rc |= argv_add(a, "--ext-unix-sk");
	for (int i = 0; i < o->nexternal; i++)
		rc |= argv_addf(a, "--external=%s", o->external[i]);
	for (int i = 0; i < o->ncriu_opts; i++)
		rc |= argv_add(a, o->criu_opts[i]);
	return rc ? -1 : 0;
}

/* ---- the post-dump hook: make the checkpoint durable ---- */

static void on_file(void *arg, const char *name, uint64_t size)
{
	struct dump *d = arg;
	pthread_mutex_lock(&d->mu);
	if (manifest_add_file(&d->m, name, size) < 0)
		warnx_("cannot record %s in the manifest: %s", name, err_msg());
	pthread_mutex_unlock(&d->mu);
}

static int finish_streams(struct dump *d)
{
	uint64_t one = 1;
	/* CRIU has sent its last image: let the capture end the image. */
	if (write(d->finish_fd, &one, sizeof(one)) != sizeof(one))
		return err_sys("signalling the capture");
	if (engine_thread_join(&d->et) < 0) {
		char engine_err[ERR_MAX];
		err_copy(engine_err, sizeof(engine_err));
		streams_abort(&d->streams);
		/* A worker's error (a full disk, a failed upload) is the root
		 * cause of the capture's broken pipe. */
		return streams_error(&d->streams) < 0 ? -1 : err_set("%s", engine_err);
	}
	if (streams_finish_dump(&d->streams) < 0)
		return -1;
	d->m.stream = calloc((size_t)d->streams.n, sizeof(*d->m.stream));
	if (!d->m.stream)
		return err_set("out of memory");
	for (int i = 0; i < d->streams.n; i++) {
		struct stream *s = &d->streams.s[i];
		struct manifest_stream *ms = &d->m.stream[i];
		snprintf(ms->file, sizeof(ms->file), "%s", s->file);
		ms->stored_bytes = s->sum.bytes;
		ms->raw_bytes = s->raw_bytes;
		snprintf(ms->checksum, sizeof(ms->checksum), "%s", s->sum.hex);
		d->r->stored_bytes += s->sum.bytes;
	}
	return protect_dump_streams(d->prot, d->store, d->prefix, &d->m);
}

static int make_durable(struct dump *d)
{
	if (atomic_load(&d->interrupted))
		return err_set("interrupted");
	atomic_store(&d->phase, CKPT_STORING);
	if (d->o->streams > 0 && finish_streams(d) < 0)
		return -1;
	if (atomic_load(&d->interrupted))
		return err_set("interrupted");
	atomic_store(&d->phase, CKPT_SEALING);
	d->m.complete = true;
	free(d->m.error);
	d->m.error = NULL;
	utc_now(d->m.finished_at, sizeof(d->m.finished_at));
	d->m.dump_ms = now_ms() - d->t0;
	return put_manifest(d);
}

static int dump_plain_seal(struct dump *d);

/* CRIU's post-dump: may it kill (or resume) the tree now? */
static int on_post_dump(void *arg)
{
	struct dump *d = arg;
	return d->o->streams > 0 ? make_durable(d) : dump_plain_seal(d);
}

/* ---- while CRIU runs ---- */

static void on_signal(void *arg, int sig)
{
	struct dump *d = arg;
	(void)sig;
	atomic_store(&d->interrupted, true);
	/* Failing the capture makes CRIU's writes fail: it backs out and
	 * resumes the tasks. The hook, if it runs, says no as well; workers
	 * still compressing stop at once. */
	streams_cancel(&d->streams);
	uint64_t one = 1;
	if (d->cancel_fd >= 0)
		(void)!write(d->cancel_fd, &one, sizeof(one));
}

/* From the thread that waits for CRIU only (the sink's contract). */
static void report_progress(struct dump *d)
{
	struct ckpt_progress p = {.op = "dump", .target = d->target, .phase = atomic_load(&d->phase),
				  .streams = d->o->streams};
	p.captured_bytes = __atomic_load_n(&d->eres.file_bytes, __ATOMIC_RELAXED);
	streams_progress(&d->streams, &p.done_bytes, &p.stored_bytes);
	/* Once CRIU has sent its last image, the capture knows the image's
	 * size, and storing it is what is left. */
	if (p.phase >= CKPT_STORING)
		p.total_bytes = p.captured_bytes;
	progress_meter_emit(&d->meter, &p);
}

static void on_tick(void *arg)
{
	report_progress(arg);
}

/* ---- running the streamed dump ---- */

static int start_engine(struct dump *d)
{
	const struct dump_opts *o = d->o;
	if (streams_start_dump(&d->streams, o->streams, d->store, d->prefix, o->codec, o->level,
			       protect_filters(d->prot)) < 0)
		return -1;
	int *fds = calloc((size_t)o->streams, sizeof(int));
	d->stats = calloc((size_t)o->streams, sizeof(*d->stats));
	if (!fds || !d->stats) {
		free(fds);
		return err_set("out of memory");
	}
	for (int i = 0; i < o->streams; i++)
		fds[i] = d->streams.s[i].engine_fd;
	engine_opts_init(&d->eo);
	d->eo.images_dir = d->privdir;
	d->eo.shard_fds = fds;
	d->eo.nshards = o->streams;
	d->eo.cancel_fd = d->cancel_fd;
	d->eo.finish_fd = d->finish_fd;
	/* Safe here: the post-dump hook ends the capture before CRIU lets the
	 * tree run again or die. */
	d->eo.defer_pages = true;
	d->eo.on_file = on_file;
	d->eo.arg = d;
	d->eres.shards = d->stats;
	return engine_thread_start(&d->et, engine_capture, &d->eo, &d->eres);
}

static int run_criu(struct dump *d, const char *images_dir)
{
	struct argv a = {0};
	if (build_criu_argv(d, images_dir, &a) < 0) {
		argv_free(&a);
		return -1;
	}
	struct criu_watch w = {.log_path = d->log_path, .on_signal = on_signal, .on_tick = on_tick,
			       .arg = d};
	atomic_store(&d->phase, CKPT_CAPTURING);
	report_progress(d);
	int rc = session_run_criu(d->privdir, &a, &w, &d->r->criu_ms);
	/* The last event: what follows is bookkeeping (and any warnings). */
	atomic_store(&d->phase, rc == 0 && d->hook.answered && d->hook.rc == 0 ? CKPT_DONE
										: CKPT_FAILED);
	report_progress(d);
	return rc;
}

/* Best effort: the log is for diagnosis, a failure to keep it is not a
 * failed dump. True if it was kept. */
static bool keep_log(struct dump *d)
{
	int fd = open(d->log_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char key[400];
	snprintf(key, sizeof(key), "%scriu-dump.log", d->prefix);
	struct writer *w = d->store->ops->create(d->store, key);
	char buf[65536];
	ssize_t n;
	int rc = w ? 0 : -1;
	while (rc == 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		rc = writer_write(w, buf, (size_t)n);
	close(fd);
	if (w && rc == 0)
		rc = writer_close(w);
	else
		writer_abort(w);
	if (rc < 0)
		warnx_("could not keep CRIU's log in the checkpoint: %s", err_msg());
	return rc == 0;
}

/* After a failure: no stream objects, a manifest that says why. True if
 * CRIU's log was kept in the checkpoint. */
static bool fail_checkpoint(struct dump *d, const char *why)
{
	uint64_t one = 1;
	if (d->cancel_fd >= 0)
		(void)!write(d->cancel_fd, &one, sizeof(one));
	engine_thread_join(&d->et);
	streams_abort(&d->streams);
	/* Streams that made it into the store before the failure go too. */
	for (int i = 0; i < d->streams.n; i++)
		if (d->streams.s[i].committed && d->store->ops->remove(d->store, d->streams.s[i].key) < 0)
			warnx_("could not remove %s: %s", d->streams.s[i].key, err_msg());
	protect_discard(d->prot, d->store, d->prefix, d->streams.n);
	d->m.complete = false;
	free(d->m.error);
	d->m.error = strdup(why);
	utc_now(d->m.finished_at, sizeof(d->m.finished_at));
	char saved[ERR_MAX];
	err_copy(saved, sizeof(saved));
	if (put_manifest(d) < 0)
		warnx_("could not mark the checkpoint incomplete: %s", err_msg());
	bool kept = keep_log(d);
	err_set("%s", saved);
	return kept;
}

/* The most telling reason for a failed dump: our hook's, the workers',
 * the engine's, then CRIU's. */
static void pick_reason(struct dump *d, char *buf, size_t size)
{
	if (atomic_load(&d->interrupted)) {
		snprintf(buf, size, "interrupted");
		return;
	}
	if (d->hook.answered && d->hook.rc < 0) {
		snprintf(buf, size, "%s", d->hook.err);
		return;
	}
	if (streams_error(&d->streams) < 0) {
		snprintf(buf, size, "%s", err_msg());
		return;
	}
	pthread_mutex_lock(&d->et.mu);
	bool engine_failed = d->et.done && d->et.rc < 0;
	if (engine_failed)
		snprintf(buf, size, "%s", d->et.err);
	pthread_mutex_unlock(&d->et.mu);
	if (!engine_failed)
		snprintf(buf, size, "%s", err_msg());
}

/* CRIU writes stats-dump after our hook, with its own umask: bring every
 * file of a plain image directory back to 0600. */
static void privatize_files(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	while (dp && (de = readdir(dp)))
		if (de->d_type == DT_REG && fchmodat(dirfd(dp), de->d_name, 0600, 0) < 0)
			warnx_("cannot make %s/%s private: %s", dir, de->d_name, strerror(errno));
	if (dp)
		closedir(dp);
}

static int finish_success(struct dump *d, const char *images_dir)
{
	struct criu_dump_stats st;
	if (d->o->streams == 0)
		privatize_files(images_dir);
	if (criu_read_dump_stats(images_dir, &st) == 0) {
		d->r->frozen_us = st.frozen_us;
		d->m.frozen_us = st.frozen_us;
		d->m.dump_ms = now_ms() - d->t0;
		/* The checkpoint is complete already; this only adds timings. */
		if (put_manifest(d) < 0)
			warnx_("could not add timings to the manifest: %s", err_msg());
	}
	keep_log(d);
	d->r->image_bytes = d->m.image_bytes;
	if (!d->o->leave_running && !wait_process_exit(d->o->pid, 30000))
		warnx_("pid %d is still alive 30 s after the dump", (int)d->o->pid);
	return 0;
}

static int dump_plain_start(struct dump *d, char *images_dir, size_t size);

static int run_dump(struct dump *d)
{
	char images_dir[PATH_MAX];
	if (d->o->streams > 0) {
		snprintf(images_dir, sizeof(images_dir), "%s", d->privdir);
		if (start_engine(d) < 0)
			return -1;
	} else if (dump_plain_start(d, images_dir, sizeof(images_dir)) < 0) {
		return -1;
	}
	if (hook_server_start(&d->hook, d->privdir, d->o->self, "post-dump", on_post_dump, d) < 0)
		return -1;
	int rc = run_criu(d, images_dir);
	hook_server_stop(&d->hook);
	if (rc == 0 && d->hook.answered && d->hook.rc == 0)
		return finish_success(d, images_dir);
	char why[ERR_MAX];
	pick_reason(d, why, sizeof(why));
	if (rc == 0 && !d->hook.answered)
		snprintf(why, sizeof(why), "CRIU finished without running the post-dump hook");
	bool log_kept = fail_checkpoint(d, why);
	/* What we see now, not what should have happened: a concurrent dump
	 * may hold the process, or have ended it. */
	char fate[256];
	enum process_state st = process_describe(d->o->pid, fate, sizeof(fate));
	d->r->process_state = process_state_name(st);
	d->r->process_running = st == PROCESS_RUNNING;
	return err_set("%s (%s%s%s%s)", why, fate, log_kept ? "; CRIU's log: " : "",
		       log_kept ? d->r->location : "", log_kept ? "/criu-dump.log" : "");
}

/* ---- --streams 0: a plain CRIU image directory ---- */

static const char *local_root(const char *dir)
{
	return strncmp(dir, "file://", 7) ? dir : dir + 7;
}

static int plain_dir(struct dump *d, char *images_dir, size_t size)
{
	if (snprintf(images_dir, size, "%s/%s", local_root(d->o->dir), d->r->name) >= (int)size)
		return err_set("path too long: %s/%s", d->o->dir, d->r->name);
	return 0;
}

/* CRIU writes the plain image itself, by name, through whatever it finds:
 * the directory (ours and private: the manifest stub's write checked it)
 * must hold nothing but that stub. */
static int dump_plain_start(struct dump *d, char *images_dir, size_t size)
{
	if (plain_dir(d, images_dir, size) < 0)
		return -1;
	DIR *dp = opendir(images_dir);
	if (!dp)
		return err_sys("cannot list %s", images_dir);
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    strcmp(de->d_name, MANIFEST_NAME))
			rc = err_set("%s is not empty (%s is there): CRIU would write over it",
				     images_dir, de->d_name);
	closedir(dp);
	return rc;
}

/* Seal what CRIU wrote: each file's size and checksum into the manifest,
 * every file and the directory fsync'd, modes 0600. */
static int seal_file(struct dump *d, int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys("%s/%s", d->r->location, name);
	char hex[CHECKSUM_HEX + 1];
	uint64_t size;
	int rc = checksum_fd(fd, hex, &size);
	if (rc == 0 && (fsync(fd) < 0 || fchmod(fd, 0600) < 0))
		rc = err_sys("%s/%s", d->r->location, name);
	close(fd);
	if (rc == 0 && manifest_add_file(&d->m, name, size) == 0)
		snprintf(d->m.files[d->m.nfiles - 1].checksum, CHECKSUM_HEX + 1, "%s", hex);
	return rc;
}

static int dump_plain_seal(struct dump *d)
{
	if (atomic_load(&d->interrupted))
		return err_set("interrupted");
	char dir[PATH_MAX];
	plain_dir(d, dir, sizeof(dir));
	DIR *dp = opendir(dir);
	if (!dp)
		return err_sys("cannot list %s", dir);
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(dp))) {
		if (de->d_type != DT_REG || !strcmp(de->d_name, MANIFEST_NAME) ||
		    strstr(de->d_name, ".tmp"))
			continue;
		rc = seal_file(d, dirfd(dp), de->d_name);
	}
	if (rc == 0 && fsync(dirfd(dp)) < 0)
		rc = err_sys("fsync %s", dir);
	closedir(dp);
	return rc < 0 ? -1 : make_durable(d);
}

static void dump_cleanup(struct dump *d)
{
	streams_free(&d->streams);
	free((void *)d->eo.shard_fds);
	free(d->stats);
	if (d->cancel_fd >= 0)
		close(d->cancel_fd);
	if (d->finish_fd >= 0)
		close(d->finish_fd);
	if (d->privdir[0])
		session_rmdir(d->privdir);
	manifest_free(&d->m);
	protect_free(d->prot);
	store_close(d->store);
	pthread_mutex_destroy(&d->mu);
}

static int prepare(struct dump *d)
{
	const struct dump_opts *o = d->o;
	if (check_target(o->pid) < 0)
		return -1;
	if (o->name)
		snprintf(d->r->name, sizeof(d->r->name), "%s", o->name);
	else
		default_name(o->pid, d->r->name, sizeof(d->r->name));
	if (!d->r->name[0] || strchr(d->r->name, '/') || !strcmp(d->r->name, "..") ||
	    !strcmp(d->r->name, "."))
		return err_set("invalid checkpoint name \"%s\"", d->r->name);
	snprintf(d->prefix, sizeof(d->prefix), "%s/", d->r->name);
	snprintf(d->r->location, sizeof(d->r->location), "%s/%s", o->dir, d->r->name);
	if (o->streams == 0 && store_is_remote(o->dir))
		return err_set("--streams 0 (a plain CRIU image directory) needs a local directory, "
			       "not %s", o->dir);
	if (protect_dump_new(o->recipients ? o->recipients : "", o->sign_key ? o->sign_key : "",
			     &d->prot) < 0)
		return -1;
	/* CRIU writes a plain image directory itself: its plaintext would be
	 * on disk before anything could encrypt it, and nothing would check
	 * its files chunk by chunk on the way back. */
	if (o->streams == 0 && d->prot)
		return err_set("--streams 0 (a plain CRIU image directory) cannot be encrypted or "
			       "signed: CRIU writes its files in the clear; use --streams 1 or more");
	d->r->encrypted = protect_encrypts(d->prot);
	d->r->signed_manifest = protect_signs(d->prot);
	if (store_open(o->dir, o->store_opt, &d->store) < 0 || refuse_existing(d) < 0 ||
	    init_manifest(d) < 0 || session_mkdir(d->privdir, sizeof(d->privdir)) < 0)
		return -1;
	snprintf(d->log_path, sizeof(d->log_path), "%s/criu-dump.log", d->privdir);
	d->cancel_fd = eventfd(0, EFD_CLOEXEC);
	d->finish_fd = eventfd(0, EFD_CLOEXEC);
	if (d->cancel_fd < 0 || d->finish_fd < 0)
		return err_sys("eventfd");
	/* From here on the checkpoint exists, visibly incomplete. */
	return put_manifest(d);
}

int checkpoint_dump(const struct dump_opts *o, struct dump_result *r)
{
	struct dump *d = calloc(1, sizeof(*d));
	if (!d)
		return err_set("out of memory");
	memset(r, 0, sizeof(*r));
	d->o = o;
	d->r = r;
	d->cancel_fd = d->finish_fd = -1;
	d->t0 = now_ms();
	snprintf(d->target, sizeof(d->target), "pid %d", (int)o->pid);
	progress_meter_init(&d->meter, &o->progress);
	pthread_mutex_init(&d->mu, NULL);
	r->streams = o->streams;
	snprintf(r->compression, sizeof(r->compression), "%s",
		 o->streams ? codec_format(o->codec)->name : "none");
	int rc = prepare(d);
	if (rc == 0)
		rc = run_dump(d);
	r->dump_ms = now_ms() - d->t0;
	dump_cleanup(d);
	free(d);
	return rc;
}
