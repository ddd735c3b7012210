/* subreaper CMD [ARGS...]
 *
 * Runs CMD as a child while acting as a child subreaper: every process
 * orphaned below us (e.g. a tree restored by `criu restore -d`, whose
 * parent criu exits) is reparented to us and reaped the moment it dies.
 * That matters for checkpoint/restore tests: PID 1 on the test machines
 * reaps orphaned zombies only every few seconds, and restoring a process
 * whose PID is still held by a zombie fails ("Can't fork for PID").
 *
 * SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to CMD.  When CMD
 * exits, every process still adopted by us is SIGKILLed and reaped, so a
 * test run never leaks processes; the number killed is printed on stderr.
 * The exit status is CMD's (128+N if it died of signal N). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLEANUP_TIMEOUT_MS 10000

static void die(const char *what)
{
	fprintf(stderr, "subreaper: %s: %s\n", what, strerror(errno));
	exit(125);
}

static int exit_code_of(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 125;
}

/* Reaps every child that has exited; records CMD's status if it is one. */
static void reap_exited(pid_t cmd, bool *cmd_done, int *cmd_status)
{
	for (;;) {
		int wstatus;
		pid_t pid = waitpid(-1, &wstatus, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return; /* 0: children remain, none exited; -1/ECHILD: no children */
		if (pid == cmd) {
			*cmd_done = true;
			*cmd_status = wstatus;
		}
	}
}

/* Reads state and parent PID from /proc/PID/stat; false if it is gone. */
static bool read_proc_stat(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may contain anything, even ") "; skip to the last ')'. */
	char *close_paren = strrchr(buf, ')');
	int parent;
	if (!close_paren || sscanf(close_paren + 1, " %c %d", state, &parent) != 2)
		return false;
	*ppid = parent;
	return true;
}

/* PIDs already sent SIGKILL, so one that takes a while to die is counted
 * once.  Overflow only makes the count high, never skips a kill. */
#define MAX_TRACKED 4096
static pid_t killed_pids[MAX_TRACKED];
static int killed_count;

static bool already_killed(pid_t pid)
{
	for (int i = 0; i < killed_count && i < MAX_TRACKED; i++)
		if (killed_pids[i] == pid)
			return true;
	return false;
}

/* SIGKILLs every live child of ours; returns how many new ones it signalled. */
static int kill_live_children(void)
{
	DIR *proc = opendir("/proc");
	if (!proc)
		die("cannot open /proc");
	pid_t self = getpid();
	int killed = 0;
	struct dirent *entry;
	while ((entry = readdir(proc)) != NULL) {
		char *end;
		long pid = strtol(entry->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char state;
		pid_t ppid;
		if (!read_proc_stat((pid_t)pid, &state, &ppid) || ppid != self || state == 'Z')
			continue;
		if (kill((pid_t)pid, SIGKILL) == 0) {
			if (!already_killed((pid_t)pid)) {
				if (killed_count < MAX_TRACKED)
					killed_pids[killed_count] = (pid_t)pid;
				killed_count++;
				killed++;
			}
		} else if (errno != ESRCH)
			fprintf(stderr, "subreaper: cannot kill %ld: %s\n", pid, strerror(errno));
	}
	closedir(proc);
	return killed;
}

static bool have_children(void)
{
	siginfo_t info;
	memset(&info, 0, sizeof(info));
	/* WNOWAIT: only asks; the loop below does the reaping. */
	return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* Kills and reaps everything we adopted.  Killing a process reparents its
 * own children to us, so repeat until nothing is left. */
static int kill_adopted_processes(void)
{
	int total = 0;
	struct timespec pause = { .tv_sec = 0, .tv_nsec = 10 * 1000 * 1000 };
	for (int waited_ms = 0; have_children(); waited_ms += 10) {
		if (waited_ms >= CLEANUP_TIMEOUT_MS) {
			fprintf(stderr, "subreaper: children still alive after %d ms of SIGKILL, giving up\n",
				CLEANUP_TIMEOUT_MS);
			break;
		}
		total += kill_live_children();
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		nanosleep(&pause, NULL);
	}
	return total;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: subreaper CMD [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		die("prctl(PR_SET_CHILD_SUBREAPER)");

	/* Block the signals we handle before forking, so none is lost
	 * between fork and the first sigwaitinfo(). */
	sigset_t handled, original;
	sigemptyset(&handled);
	int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&handled, forwarded[i]);
	sigaddset(&handled, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &handled, &original) < 0)
		die("sigprocmask");

	pid_t cmd = fork();
	if (cmd < 0)
		die("fork");
	if (cmd == 0) {
		sigprocmask(SIG_SETMASK, &original, NULL);
		execvp(argv[1], argv + 1);
		fprintf(stderr, "subreaper: cannot run %s: %s\n", argv[1], strerror(errno));
		_exit(127);
	}

	bool cmd_done = false;
	int cmd_status = 0;
	while (!cmd_done) {
		siginfo_t info;
		int sig = sigwaitinfo(&handled, &info);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			die("sigwaitinfo");
		}
		if (sig == SIGCHLD)
			reap_exited(cmd, &cmd_done, &cmd_status);
		else if (kill(cmd, sig) < 0 && errno != ESRCH)
			fprintf(stderr, "subreaper: cannot forward signal %d: %s\n", sig, strerror(errno));
	}

	int killed = kill_adopted_processes();
	if (killed > 0)
		fprintf(stderr, "subreaper: killed %d leftover process%s\n", killed, killed == 1 ? "" : "es");
	return exit_code_of(cmd_status);
}
