#include "checkpoint/dump.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fdio.h"
#include "util/fmt.h"

#include "checkpoint/session.h"
#include "criu/criu_exec.h"
#include "paths.h"

#include <dirent.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int self_path(char *buf, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", buf, size - 1);
	if (n < 0)
		return err_sys("cannot find the crstream binary (/proc/self/exe)");
	buf[n] = '\0';
	return 0;
}

void json_print_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

void print_dump_summary(const struct dump_result *r)
{
	char img[32], stored[32];
	format_bytes(r->image_bytes, img, sizeof(img));
	format_bytes(r->stored_bytes, stored, sizeof(stored));
	printf("checkpoint %s\n", r->location);
	if (r->streams)
		printf("  %s of image in %d %s stream%s: %s stored (ratio %.2f)\n", img, r->streams,
		       r->compression, r->streams == 1 ? "" : "s", stored,
		       r->stored_bytes ? (double)r->image_bytes / (double)r->stored_bytes : 1.0);
	else
		printf("  %s of image, plain CRIU image directory\n", img);
	printf("  frozen %.0f ms, CRIU %llu ms, total %llu ms\n", (double)r->frozen_us / 1000.0,
	       (unsigned long long)r->criu_ms, (unsigned long long)r->dump_ms);
	if (r->encrypted || r->signed_manifest)
		printf("  %s%s%s\n", r->encrypted ? "streams encrypted with age" : "",
		       r->encrypted && r->signed_manifest ? ", " : "",
		       r->signed_manifest ? "manifest signed (manifest.json.sig)" : "");
}

int flag_list_add(struct flag_list *l, const char *v)
{
	if (!*v || strchr(v, ','))
		return err_set("\"%s\": a key or file name must be non-empty and without commas", v);
	size_t old = l->joined ? strlen(l->joined) : 0;
	char *p = realloc(l->joined, old + strlen(v) + 2);
	if (!p)
		return err_set("out of memory");
	sprintf(p + old, "%s%s", old ? "," : "", v);
	l->joined = p;
	l->n++;
	return 0;
}

void flag_list_free(struct flag_list *l)
{
	free(l->joined);
	l->joined = NULL;
	l->n = 0;
}

/* Peak RSS from /proc/self/status (VmHWM): getrusage's ru_maxrss carries
 * over exec() from whatever started us, and would report its peak. */
static long long peak_rss_bytes(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %lld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

void print_self_usage_json(FILE *out)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return;
	double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		     (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	/* crstream's own cost, CRIU (a child) excluded. */
	fprintf(out, ",\"peak_rss_bytes\":%lld,\"cpu_seconds\":%.3f", peak_rss_bytes(), cpu);
}

int open_location(const char *location, struct config **cfg, struct store **s)
{
	*s = NULL;
	if (config_load(cfg) < 0)
		return -1;
	if (!location)
		location = config_get(*cfg, "checkpoint.dir");
	/* Static: the store keeps the pointer for its whole life, which ends
	 * with the command. */
	static struct store_options so;
	so.config = config_lookup;
	so.ctx = *cfg;
	return store_open(location, &so, s);
}

static void location_help(const struct location_cmd *c)
{
	char term[64];
	snprintf(term, sizeof(term), "-%c, --%s %s", c->option[0], c->option, c->metavar);
	printf("Usage: %s\n\n%s\nOptions:\n", c->usage, c->help);
	printf("  %-23s the same as the argument%s\n", term,
	       c->optional ? " (default: checkpoint.dir)" : "");
	if (c->options)
		fputs(c->options, stdout);
	printf("  %-23s this help\n\n", "-h, --help");
	printf("Exit status: 0 on success, 1 on failure, 2 on misuse.\n");
}

int location_args(int argc, char **argv, const struct location_cmd *c, const char **loc)
{
	const struct option opts[] = {
		{c->option, required_argument, NULL, c->option[0]},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	char shorts[8], cmd[64];
	snprintf(shorts, sizeof(shorts), "%c:h", c->option[0]);
	snprintf(cmd, sizeof(cmd), "crstream %s", c->name);
	*loc = NULL;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		if (o == 'h') {
			location_help(c);
			return 0;
		}
		if (o != c->option[0])
			return EXIT_USAGE;
		*loc = optarg;
	}
	/* argv[1] is the command itself. */
	int extra = argc - optind - 1;
	if (extra > (*loc ? 0 : 1))
		return usage_error(cmd, "unexpected argument \"%s\"", argv[argc - 1]);
	if (extra == 1)
		*loc = argv[optind + 1];
	if (!*loc && !c->optional)
		return usage_error(cmd, "usage: %s", c->usage);
	return -1;
}

bool asks_for_help(int argc, char **argv)
{
	for (int i = 2; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

int require_privilege(const char *cmd)
{
	if (geteuid() == 0)
		return 0;
	/* CAP_SYS_ADMIN (21) or CAP_CHECKPOINT_RESTORE (40) in CapEff. */
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long eff = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	if (f)
		fclose(f);
	if (eff & (1ULL << 21 | 1ULL << 40))
		return 0;
	return err_set("crstream %s needs root (or CAP_CHECKPOINT_RESTORE): CRIU must stop, read "
		       "and rebuild processes; run it as root, e.g. sudo crstream %s", cmd, cmd);
}

/* The newest CACHE/criu-VERSION/criu (scripts/provision-criu.sh's cache),
 * into buf. crstream runs it as root: the cache, the version's directory
 * and the binary must be root's and writable by nobody else (a refused
 * one is said, and the next older one tried). */
static int cached_criu(const char *cache, char *buf, size_t size)
{
	struct dirent **names;
	if (path_trusted(cache, cache) < 0) {
		if (access(cache, F_OK) == 0)
			warnx_("not looking for CRIU in %s", err_msg());
		return -1;
	}
	int n = scandir(cache, &names, NULL, versionsort);
	int found = -1;
	for (int i = n - 1; i >= 0; i--) {
		char dir[PATH_MAX], path[PATH_MAX + 8];
		snprintf(dir, sizeof(dir), "%s/%s", cache, names[i]->d_name);
		snprintf(path, sizeof(path), "%s/criu", dir);
		if (found < 0 && !strncmp(names[i]->d_name, "criu-", 5) && access(path, X_OK) == 0) {
			if (path_trusted(dir, dir) < 0 || path_trusted(path, path) < 0)
				warnx_("not using %s", err_msg());
			else if (snprintf(buf, size, "%s", path) < (int)size)
				found = 0;
		}
		free(names[i]);
	}
	if (n >= 0)
		free(names);
	return found;
}

/* True if the CRIU at path predates 4.1 (or does not say its version). */
static bool criu_too_old(const char *path)
{
	char v[64];
	int major = 0, minor = 0;
	if (criu_version(path, v, sizeof(v)) < 0 || sscanf(v, "%d.%d", &major, &minor) != 2)
		return true;
	return major < 4 || (major == 4 && minor < 1);
}

int find_criu(const char *want, char *buf, size_t size)
{
	bool in_path = resolve_program(want, buf, size) == 0;
	/* An explicit choice is used or refused; only the default name may
	 * be found elsewhere. */
	if (strcmp(want, "criu"))
		return in_path ? 0 : err_prefix("criu.path");
	const char *cache = getenv("CRSTREAM_CACHE_DIR");
	if (!cache || !*cache)
		cache = CRSTREAM_CACHE_DIR_DEFAULT;
	/* PATH first; but Debian 12's own CRIU (3.17) cannot work, and a
	 * provisioned one can. */
	if (in_path) {
		char cached[PATH_MAX];
		if (criu_too_old(buf) && cached_criu(cache, cached, sizeof(cached)) == 0)
			snprintf(buf, size, "%s", cached);
		return 0;
	}
	if (cached_criu(cache, buf, size) == 0)
		return 0;
	char provisioner[PATH_MAX];
	snprintf(provisioner, sizeof(provisioner), "%s/provision-criu", CRSTREAM_LIBEXEC_DIR);
	bool have = access(provisioner, X_OK) == 0;
	return err_set("CRIU not found (no criu in PATH nor in %s): crstream needs CRIU 4.1 "
		       "or later; %s%s, or set criu.path in %s (or CRSTREAM_CRIU) to the one you "
		       "have", cache,
		       have ? "build one with " : "install one (crstream's scripts/setup.sh builds one)",
		       have ? provisioner : "", CONFIG_DEFAULT_PATH);
}

int close_location(struct config *cfg, struct store *s, int rc)
{
	store_close(s);
	config_free(cfg);
	if (rc < 0) {
		err_print(NULL);
		return 1;
	}
	return 0;
}
